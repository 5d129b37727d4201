// ReLU and max pooling on the WebAssembly kernels give the TypeScript loops' bits, forward and backward:
// random NCHW shapes with odd sizes, strides, padding, tied maxima and NaN, in an arena step (so every
// array is in the heap and the WebAssembly path runs).
import { fc, test } from '@fast-check/vitest';
import { afterAll, describe, expect } from 'vitest';
import { setKernels, wasmHeap } from '../../src/kernels/wasm/runtime.js';
import { maxPool2d } from '../../src/ops/pool.js';
import { relu } from '../../src/ops/elementwise.js';
import { mul, sum } from '../../src/ops/index.js';
import { Arena } from '../../src/tensor/arena.js';
import { Tensor } from '../../src/tensor/tensor.js';

afterAll(() => setKernels('auto'));

/** Values from a small set (so windows tie), with NaN now and then. */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const next = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return Float32Array.from({ length: n }, () => (next() < 0.01 ? Number.NaN : Math.round(next() * 8 - 4) / 2));
}

type Run = (x: Tensor) => Tensor;

/** Output and input gradient of `f` (loss Σ out·w for fixed w) on the given kernels, copied out of the arena. */
function forwardBackward(kind: 'ts' | 'wasm', f: Run, shape: number[], seed: number): { out: Float32Array; grad: Float32Array } {
  setKernels(kind);
  const n = shape.reduce((a, b) => a * b, 1);
  const heap = wasmHeap();
  const data = heap === null ? values(n, seed) : (heap.view('f32', heap.alloc(n * 4), n) as Float32Array);
  if (heap !== null) data.set(values(n, seed));
  const x = new Tensor(data, shape, true);
  const arena = new Arena(1 << 16);
  let out = new Float32Array(0);
  arena.step(() => {
    const y = f(x);
    const w = new Tensor(values(y.size, seed * 3 + 1).map((v) => (Number.isNaN(v) ? 1 : v)), y.shape);
    sum(mul(y, w)).backward();
    out = Float32Array.from(y.data);
  });
  return { out, grad: Float32Array.from(x.grad!.data) };
}

const same = (f: Run, shape: number[], seed: number): void => {
  const ts = forwardBackward('ts', f, shape, seed);
  const wasm = forwardBackward('wasm', f, shape, seed);
  expect(Buffer.from(wasm.out.buffer)).toEqual(Buffer.from(ts.out.buffer));
  expect(Buffer.from(wasm.grad.buffer)).toEqual(Buffer.from(ts.grad.buffer));
};

describe('WebAssembly relu and maxPool2d', () => {
  test.prop([fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 1e6 })], { numRuns: 30 })('relu equals the loop, bit for bit', (n, seed) => {
    same(relu, [n], seed);
  });

  test.prop([
    fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 17 }), fc.integer({ min: 1, max: 17 }),
    fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 1 }), fc.integer({ min: 1, max: 1e6 }),
  ], { numRuns: 60 })('maxPool2d equals the loop, bit for bit (ties to the first, NaN wins)', (N, C, H, W, k, s, pad, seed) => {
    const kk = Math.min(k, H, W);
    const p = Math.min(pad, Math.floor(kk / 2));
    // Enough elements for the WebAssembly path (it skips arrays under 1024 elements).
    const n = Math.max(N, Math.ceil(1024 / (C * H * W)));
    same((x) => maxPool2d(x, kk, s, p), [n, C, H, W], seed);
  });
});
