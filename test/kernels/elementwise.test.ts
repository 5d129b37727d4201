// The elementwise kernels (the engine's accumulation, a bias add and its gradient's row sum) give the
// same bits on the WebAssembly path (f32 arrays in the heap, long enough to take it) as the TypeScript
// loops, for lengths with and without a 4-lane tail.
import { fc, test } from '@fast-check/vitest';
import { afterAll, describe, expect } from 'vitest';
import { addFast, addInto, copyInto, sumToShape } from '../../src/kernels/elementwise.js';
import { setKernels, wasmHeap } from '../../src/kernels/wasm/runtime.js';

afterAll(() => setKernels('auto'));

function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 31 - 1) * 1e3);
}

/** A copy of `a` in the WebAssembly heap (where the kernels take the WebAssembly path). */
function inHeap(a: Float32Array): Float32Array {
  setKernels('wasm');
  const heap = wasmHeap()!;
  const v = heap.view('f32', heap.alloc(a.byteLength), a.length) as Float32Array;
  v.set(a);
  return v;
}

describe('addInto and copyInto', () => {
  test.prop([fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 1e6 })], { numRuns: 40 })('in the heap equal the TypeScript loops', (n, seed) => {
    const dst = values(n, seed);
    const src = values(n, seed * 7 + 1);
    const want = dst.map((v, i) => Math.fround(v + src[i]!));
    const sum = inHeap(dst);
    addInto(sum, inHeap(src));
    expect(sum).toEqual(want);
    const plain = Float32Array.from(dst);
    addInto(plain, src); // outside the heap: the loop
    expect(plain).toEqual(want);
    const copy = inHeap(dst);
    copyInto(copy, inHeap(src));
    expect(copy).toEqual(src);
  });

  // cols ≥ 2: a one-column bias is a scalar broadcast, which the loop handles.
  test.prop([fc.integer({ min: 1, max: 70 }), fc.integer({ min: 2, max: 90 }), fc.integer({ min: 1, max: 1e6 })], { numRuns: 40 })(
    'a bias row added to every row, and its gradient summed over the rows, equal the loops',
    (rows, cols, seed) => {
      // At least 1024 elements, or the kernels leave it to the loop.
      const r = Math.max(rows, Math.ceil(1024 / cols));
      const a = values(r * cols, seed);
      const row = values(cols, seed + 5);
      const out = inHeap(new Float32Array(r * cols));
      expect(addFast(inHeap(a), [r, cols], inHeap(row), [1, cols], out)).toBe(true);
      expect(out).toEqual(a.map((v, i) => Math.fround(v + row[i % cols]!)));
      const sums = inHeap(new Float32Array(cols).fill(Number.NaN));
      sumToShape(inHeap(a), [r, cols], sums, [cols]);
      const loop = new Float32Array(cols);
      sumToShape(a, [r, cols], loop, [cols]); // outside the heap: the loop
      expect(sums).toEqual(loop);
    },
  );
});

describe('sumSlotsF32 (the update jobs\' reduce)', () => {
  test.prop([fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 1e6 })], { numRuns: 40 })(
    'gives the bits of a copyF32/addF32 chain and the sum of its squares in the documented order, for any length, slot count and slot gap',
    (n, k, gap, seed) => {
      setKernels('wasm');
      const heap = wasmHeap()!;
      const K = heap.kernels;
      const stride = (n + gap) * 4;
      const first = heap.alloc(k * stride);
      for (let s = 0; s < k; s++) heap.view('f32', first + s * stride, n).set(values(n, seed + s));
      const chain = heap.alloc(n * 4);
      if (k === 1) K.copyF32(chain, first, n);
      else K.addF32(chain, first, first + stride, n);
      for (let s = 2; s < k; s++) K.addF32(chain, chain, first + s * stride, n);
      const fused = heap.alloc(n * 4);
      const sq = K.sumSlotsF32(fused, first, stride, k, n);
      expect(heap.view('f32', fused, n)).toEqual(heap.view('f32', chain, n));
      // Lanes 0-1 and 2-3 of each group of four in two pairs of f64 sums, then the tail (squares of f32 values are exact in f64).
      const c = heap.view('f32', chain, n);
      const lanes = [0, 0, 0, 0];
      let j = 0;
      for (; j + 4 <= n; j += 4) for (let l = 0; l < 4; l++) lanes[l]! += c[j + l]! * c[j + l]!;
      let want = (lanes[0]! + lanes[1]!) + (lanes[2]! + lanes[3]!);
      for (; j < n; j++) want += c[j]! * c[j]!;
      expect(Object.is(sq, want)).toBe(true);
      expect(Object.is(K.sumSlotsF32(chain, chain, 0, 1, n), want)).toBe(true); // k = 1 in place: the squares alone
      heap.release(fused, n * 4);
      heap.release(chain, n * 4);
      heap.release(first, k * stride);
    },
  );
});

describe('ownLines (taking cache lines over before a write pass)', () => {
  test.prop([fc.integer({ min: 0, max: 130 }), fc.integer({ min: 0, max: 700 }), fc.integer({ min: 1, max: 1e6 })], { numRuns: 40 })(
    'leaves every byte as it was, inside the range and around it',
    (offset, bytes, seed) => {
      setKernels('wasm');
      const heap = wasmHeap()!;
      const size = 1024;
      const at = heap.alloc(size);
      const region = new Uint8Array(heap.memory.buffer, at, size);
      const want = Uint8Array.from(values(size, seed), (v) => v & 255);
      region.set(want);
      heap.kernels.ownLines(at + offset, bytes);
      expect(Uint8Array.from(region)).toEqual(want);
      heap.release(at, size);
    },
  );

  test('stores only to bytes of its range: a byte another thread counts up on the same line loses no count', async () => {
    setKernels('wasm');
    const heap = wasmHeap()!;
    const at = heap.alloc(64 * 40);
    const counts = 200_000;
    const done = new Int32Array(new SharedArrayBuffer(4));
    const { Worker } = await import('node:worker_threads');
    // The counter is the first byte of the line the range starts in, 5 bytes before the range.
    const w = new Worker(
      `const { workerData: d } = require('node:worker_threads');
       const b = new Uint8Array(d.buffer, d.at, 1);
       for (let i = 0; i < d.counts; i++) Atomics.add(b, 0, 1);
       Atomics.store(d.done, 0, 1);`,
      { eval: true, workerData: { buffer: heap.memory.buffer, at, counts, done } },
    );
    const counter = new Uint8Array(heap.memory.buffer, at, 1);
    const start = Atomics.load(counter, 0);
    let passes = 0;
    const until = Date.now() + 10_000;
    while (Atomics.load(done, 0) === 0 && Date.now() < until) {
      heap.kernels.ownLines(at + 5, 64 * 39);
      passes++;
    }
    await w.terminate();
    expect(Atomics.load(done, 0)).toBe(1);
    expect(passes).toBeGreaterThan(0);
    expect(Atomics.load(counter, 0)).toBe((start + counts) & 255);
    heap.release(at, 64 * 40);
  });
});
