// The optimizers' WebAssembly updates give the TypeScript loops' bits: SGD (plain, momentum, dampening,
// Nesterov, weight decay, maximize) and Adam / AdamW (amsgrad, weight decay) over several steps, on f32
// parameters of odd and even lengths, inside and outside the WebAssembly heap.
import { afterAll, describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { setKernels, wasmHeap } from '../../src/kernels/wasm/runtime.js';
import { Adam, AdamW, SGD } from '../../src/optim/index.js';
import { Tensor } from '../../src/tensor/tensor.js';

afterAll(() => setKernels('auto'));

const values = (n: number, seed: number): Float32Array => {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 31 - 1) * 3);
};

type Make = (ps: Tensor[]) => { step(): void };

/** Parameters after `steps` updates with fresh gradients each step, on the given kernels. */
function train(kind: 'ts' | 'wasm', make: Make, sizes: number[], steps: number, seed: number, inHeap: boolean): Float32Array[] {
  setKernels(kind);
  const heap = wasmHeap();
  const place = (a: Float32Array): Float32Array => {
    if (!inHeap || heap === null) return a;
    const v = heap.view('f32', heap.alloc(a.byteLength), a.length) as Float32Array;
    v.set(a);
    return v;
  };
  const ps = sizes.map((n, i) => new Tensor(place(values(n, seed + i)), [n], true));
  const opt = make(ps);
  for (let t = 0; t < steps; t++) {
    ps.forEach((p, i) => (p.grad = new Tensor(place(values(p.size, seed * 31 + t * 7 + i)), p.shape)));
    opt.step();
  }
  return ps.map((p) => Float32Array.from(p.data));
}

const sizes = fc.array(fc.integer({ min: 1, max: 37 }), { minLength: 1, maxLength: 3 });
const common = { sizes, steps: fc.integer({ min: 1, max: 4 }), seed: fc.integer({ min: 1, max: 1e6 }), inHeap: fc.boolean() };

function sameBits(make: Make, c: { sizes: number[]; steps: number; seed: number; inHeap: boolean }): void {
  const ts = train('ts', make, c.sizes, c.steps, c.seed, false);
  const wasm = train('wasm', make, c.sizes, c.steps, c.seed, c.inHeap);
  ts.forEach((a, i) => expect(new Uint32Array(wasm[i]!.buffer, wasm[i]!.byteOffset, wasm[i]!.length)).toEqual(new Uint32Array(a.buffer, a.byteOffset, a.length)));
}

describe('optimizer updates in WebAssembly equal the TypeScript loops bit for bit', () => {
  test('SGD', () => {
    fc.assert(
      fc.property(
        fc.record({
          ...common, lr: fc.double({ min: 1e-4, max: 0.5, noNaN: true }), momentum: fc.constantFrom(0, 0.9, 0.5), dampening: fc.constantFrom(0, 0.1),
          nesterov: fc.boolean(), weightDecay: fc.constantFrom(0, 0.01), maximize: fc.boolean(),
        }),
        (c) => {
          const nesterov = c.nesterov && c.momentum > 0 && c.dampening === 0;
          sameBits((ps) => new SGD(ps, { lr: c.lr, momentum: c.momentum, dampening: c.dampening, nesterov, weightDecay: c.weightDecay, maximize: c.maximize }), c);
        },
      ),
      { numRuns: 120 },
    );
  });

  test('Adam and AdamW', () => {
    fc.assert(
      fc.property(
        fc.record({ ...common, lr: fc.double({ min: 1e-4, max: 0.1, noNaN: true }), amsgrad: fc.boolean(), weightDecay: fc.constantFrom(0, 0.01), maximize: fc.boolean(), decoupled: fc.boolean() }),
        (c) => {
          const opts = { lr: c.lr, amsgrad: c.amsgrad, weightDecay: c.weightDecay, maximize: c.maximize };
          sameBits((ps) => (c.decoupled ? new AdamW(ps, opts) : new Adam(ps, opts)), c);
        },
      ),
      { numRuns: 120 },
    );
  });
});
