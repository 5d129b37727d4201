// Tests of src/tensor/arena.ts: storage comes from the arena's SharedArrayBuffer, the same sequence of
// allocations reuses the same typed-array objects after a reset, a spill grows the buffer at the next
// reset, persistent storage bypasses it, and a whole forward/backward step is garbage-free in steady state.
import { describe, expect, test } from 'vitest';
import { StreamgradError } from '../../src/errors.js';
import { backward } from '../../src/autograd/engine.js';
import * as ops from '../../src/ops/index.js';
import { Arena, activeArena, withArena } from '../../src/tensor/arena.js';
import { type Storage, Tensor, allocStorage, tensor, zeros } from '../../src/tensor/tensor.js';
import { expectThrows } from '../helpers/grad.js';

describe('Arena', () => {
  test('storage allocated inside is a view over the arena\'s SharedArrayBuffer, 64-byte aligned', () => {
    const arena = new Arena(4096);
    const [a, b] = arena.step(() => [tensor([1, 2, 3]), zeros([5], { dtype: 'f64' })]);
    expect(a!.data.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(a!.data.buffer).toBe(b!.data.buffer);
    expect(a!.data.byteOffset % 64).toBe(0);
    expect(b!.data.byteOffset % 64).toBe(0);
    expect(b!.data.byteOffset).toBeGreaterThanOrEqual(a!.data.byteOffset + 12);
    expect(Array.from(a!.data)).toEqual([1, 2, 3]);
    expect(arena.stats().usedBytes).toBe(128);
  });

  test('after a reset the same sequence of allocations gets the same typed-array objects', () => {
    const arena = new Arena(1 << 16);
    const run = (): Storage[] =>
      arena.step(() => {
        const x = tensor([1, 2, 3, 4], { shape: [2, 2], dtype: 'f64' });
        const y = ops.exp(x);
        const z = ops.sum(ops.mul(y, x), 1);
        return [x.data, y.data, z.data, allocStorage('f32', 7, false)];
      });
    const first = run();
    const second = run();
    expect(second).toHaveLength(first.length);
    second.forEach((v, i) => expect(v).toBe(first[i]));
    expect(arena.stats().resets).toBe(2);
  });

  test('a different size at the same position gets a new view (never a stale one)', () => {
    const arena = new Arena(1 << 12);
    const a = arena.step(() => allocStorage('f64', 4, false));
    const b = arena.step(() => allocStorage('f64', 5, false));
    const c = arena.step(() => allocStorage('f32', 5, false));
    expect(b).not.toBe(a);
    expect(b.length).toBe(5);
    expect(c).toBeInstanceOf(Float32Array);
  });

  test('zero-filled allocations are zero even over reused memory', () => {
    const arena = new Arena(1 << 12);
    arena.step(() => allocStorage('f64', 8, false).fill(42));
    const z = arena.step(() => allocStorage('f64', 8, true));
    expect(Array.from(z)).toEqual(new Array(8).fill(0));
  });

  test('a step that outgrows the buffer spills to fresh buffers, and the next reset grows the arena to fit', () => {
    const arena = new Arena(256);
    const cap0 = arena.stats().capacityBytes;
    const spilled = arena.step(() => [allocStorage('f64', 16, false), allocStorage('f64', 100, false), allocStorage('f64', 100, false)]);
    // The first allocation fits (128 bytes); the next ones do not and each get a buffer of their own.
    expect(spilled[1]!.buffer).not.toBe(spilled[0]!.buffer);
    expect(spilled[1]!.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(spilled[2]!.length).toBe(100);
    expect(arena.stats().grows).toBe(0);
    const again = arena.step(() => [allocStorage('f64', 16, false), allocStorage('f64', 100, false), allocStorage('f64', 100, false)]);
    const st = arena.stats();
    expect(st.grows).toBe(1);
    expect(st.capacityBytes).toBeGreaterThan(cap0);
    expect(st.capacityBytes).toBeGreaterThanOrEqual(128 + 2 * 832);
    // Everything now comes from the one grown buffer, and keeps doing so.
    expect(again[1]!.buffer).toBe(again[0]!.buffer);
    expect(again[2]!.buffer).toBe(again[0]!.buffer);
    const third = arena.step(() => [allocStorage('f64', 16, false), allocStorage('f64', 100, false), allocStorage('f64', 100, false)]);
    third.forEach((v, i) => expect(v).toBe(again[i]));
    expect(arena.stats().grows).toBe(1);
  });

  test('persistent storage (clone, .grad) bypasses the arena', () => {
    const arena = new Arena(1 << 12);
    const x = tensor([1, 2], { dtype: 'f64', requiresGrad: true });
    const { inner, kept } = arena.step(() => {
      const y = ops.mul(x, x);
      backward(ops.sum(y));
      return { inner: y.data.buffer, kept: y.clone().data.buffer };
    });
    expect(kept).not.toBe(inner);
    expect(x.grad!.data.buffer).not.toBe(inner);
    // The gradient survives the next step overwriting the arena.
    arena.step(() => allocStorage('f64', 64, false).fill(-1));
    expect(Array.from(x.grad!.data)).toEqual([2, 4]);
  });

  test('withArena nests and restores; reset refuses while active', () => {
    const outer = new Arena(1 << 10);
    const inner = new Arena(1 << 10);
    expect(activeArena()).toBe(null);
    withArena(outer, () => {
      expect(activeArena()).toBe(outer);
      withArena(inner, () => expect(activeArena()).toBe(inner));
      expect(activeArena()).toBe(outer);
      expectThrows(() => outer.reset(), StreamgradError, 'Arena.reset: cannot reset an arena while it is active');
      expect(() => withArena(inner, () => {
        throw new Error('boom');
      })).toThrow('boom');
      expect(activeArena()).toBe(outer);
    });
    expect(activeArena()).toBe(null);
  });

  test('a training-like step allocates no new typed arrays in steady state', () => {
    const arena = new Arena(1 << 16);
    const w = tensor([[0.1, 0.2], [0.3, 0.4]], { dtype: 'f64', requiresGrad: true });
    const step = (): Set<Storage> => {
      const seen = new Set<Storage>();
      arena.step(() => {
        const x = tensor([[1, 2], [3, 4], [5, 6]], { dtype: 'f64' });
        const h = ops.tanh(ops.matmul(x, w, { transposeB: true }));
        const loss = ops.mean(ops.mul(h, h));
        backward(loss);
        for (const t of [x, h, loss]) seen.add(t.data);
      });
      return seen;
    };
    step();
    const a = step();
    const b = step();
    expect([...b]).toEqual([...a]);
    expect(arena.stats().grows).toBe(0);
    expect(w.grad).toBeInstanceOf(Tensor);
  });
});
