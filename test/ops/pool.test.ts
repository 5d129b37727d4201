// Tests of src/ops/pool.ts: gradient properties of maxPool2d, avgPool2d, adaptiveAvgPool2d and flatten;
// forward against a naive reference; golden values (argmax routing, first index on ties, −∞ padding, both
// avg divisors); error messages.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { backward } from '../../src/autograd/engine.js';
import { ShapeError, ValueError } from '../../src/errors.js';
import * as ops from '../../src/ops/index.js';
import { type Tensor, tensor } from '../../src/tensor/tensor.js';
import { numel, valuesArb } from '../helpers/arbitraries.js';
import { expectClose, expectThrows, vals } from '../helpers/grad.js';
import { FAMILIES, assertOpGrad } from '../helpers/op-cases.js';

const f64 = (v: Parameters<typeof tensor>[0], requiresGrad = false): Tensor => tensor(v, { dtype: 'f64', requiresGrad });

describe('gradient properties (f64, eps 1e-6, rtol 1e-6)', () => {
  // Cases: kernels 1..3 per axis, stride 1..3 or the default (= kernel), padding up to half the kernel,
  // both avg divisors; max pooling on pairwise distinct values so no window has a tie.
  for (const name of FAMILIES.pool) {
    test(`${name}: gradCheck`, () => assertOpGrad(name, 30));
  }
});

/** Pooling from the definition: −∞ padding for max; for avg PyTorch's divisor (kh·kw or the real count). */
function naivePool(kind: 'max' | 'avg', x: number[], [N, C, H, W]: number[], [kh, kw]: number[], [sh, sw]: number[], [ph, pw]: number[], countIncludePad: boolean): number[] {
  const oh = Math.floor((H! + 2 * ph! - kh!) / sh!) + 1;
  const ow = Math.floor((W! + 2 * pw! - kw!) / sw!) + 1;
  const out: number[] = [];
  for (let p = 0; p < N! * C!; p++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        let m = -Infinity;
        let s = 0;
        let count = 0;
        for (let i = 0; i < kh!; i++)
          for (let j = 0; j < kw!; j++) {
            const y = oy * sh! - ph! + i;
            const z = ox * sw! - pw! + j;
            if (y < 0 || y >= H! || z < 0 || z >= W!) continue;
            const v = x[(p * H! + y) * W! + z]!;
            m = Math.max(m, v);
            s += v;
            count++;
          }
        out.push(kind === 'max' ? m : s / (countIncludePad ? kh! * kw! : count));
      }
  return out;
}

describe('forward equals the definition', () => {
  test('random kernels, strides, paddings; both pools, both divisors', () => {
    const arb = fc
      .record({
        N: fc.integer({ min: 1, max: 3 }),
        C: fc.integer({ min: 1, max: 3 }),
        k: fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })),
        s: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
        p: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
        size: fc.tuple(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 10 })),
        cip: fc.boolean(),
      })
      .map((q) => ({ ...q, p: [Math.min(q.p[0], q.k[0] >> 1), Math.min(q.p[1], q.k[1] >> 1)] }))
      .filter((q) => q.k[0] <= q.size[0] + 2 * q.p[0]! && q.k[1] <= q.size[1] + 2 * q.p[1]!)
      .chain((q) => valuesArb(q.N * q.C * q.size[0] * q.size[1]).map((x) => ({ q, x })));
    fc.assert(
      fc.property(arb, ({ q, x }) => {
        const shape = [q.N, q.C, ...q.size];
        const xt = tensor(x, { shape, dtype: 'f64' });
        const k = q.k as [number, number];
        const s = q.s as [number, number];
        const p = q.p as [number, number];
        const label = JSON.stringify(q);
        expectClose(`max ${label}`, ops.maxPool2d(xt, k, s, p).data, naivePool('max', x, shape, k, s, p, true), 0, 0);
        expectClose(`avg ${label}`, ops.avgPool2d(xt, k, s, p, q.cip).data, naivePool('avg', x, shape, k, s, p, q.cip), 1e-14, 1e-14);
      }),
      { numRuns: 100 },
    );
  });
});

describe('golden values', () => {
  const X = [[1, 5, 2, 0], [3, 4, 8, 7], [9, 9, 6, 1], [2, 9, 0, 3]];

  test('maxPool2d 2×2: the maxima, and each gradient at its argmax (first of equal maxima, as PyTorch)', () => {
    const x = f64([[X]], true);
    const y = ops.maxPool2d(x, 2);
    expect(y.shape).toEqual([1, 1, 2, 2]);
    expect(vals(y)).toEqual([5, 8, 9, 6]);
    backward(y, f64([[[[10, 20], [30, 40]]]]));
    // The bottom-left window holds 9 three times ((2,0), (2,1), (3,1)): the first in row-major order wins.
    expect(vals(x.grad)).toEqual([0, 10, 0, 0, 0, 0, 20, 0, 30, 0, 40, 0, 0, 0, 0, 0]);
  });

  test('maxPool2d pads with −∞: an all-negative input never pools to the padding', () => {
    const y = ops.maxPool2d(f64([[[[-3, -1], [-2, -4]]]]), 3, 1, 1);
    expect(vals(y)).toEqual([-1, -1, -1, -1]);
  });

  test('avgPool2d 3×3, stride 2, padding 1: padding zeros count in the divisor unless countIncludePad is false', () => {
    const x = f64([[X]], true);
    // Window (0,0) covers rows/cols −1..1: real values 1, 5, 3, 4 (sum 13); (0,1) cols 1..3: 5, 2, 0, 4, 8, 7 (26);
    // (1,0) rows 1..3, cols −1..1: 3, 4, 9, 9, 2, 9 (36); (1,1): 4, 8, 7, 9, 6, 1, 9, 0, 3 (47).
    expect(vals(ops.avgPool2d(x, 3, 2, 1))).toEqual([13 / 9, 26 / 9, 36 / 9, 47 / 9]);
    const y = ops.avgPool2d(x, 3, 2, 1, false);
    expect(vals(y)).toEqual([13 / 4, 26 / 6, 36 / 6, 47 / 9]);
    backward(y, f64([[[[1, 1], [1, 1]]]]));
    const q = 1 / 4, s = 1 / 6, n = 1 / 9;
    expectClose('avg dx', x.grad!.data, [
      q, q + s, s, s,
      q + s, q + s + s + n, s + n, s + n,
      s, s + n, n, n,
      s, s + n, n, n,
    ], 1e-15, 0);
  });

  test('adaptiveAvgPool2d(1) is the mean over H and W kept as [N,C,1,1]; flatten merges the trailing axes', () => {
    const x = f64([[X, X.map((r) => r.map((v) => -v))]]);
    const g = ops.adaptiveAvgPool2d(x);
    expect(g.shape).toEqual([1, 2, 1, 1]);
    expect(vals(g)).toEqual([69 / 16, -69 / 16]);
    expect(ops.flatten(g).shape).toEqual([1, 2]);
    expect(ops.flatten(x).shape).toEqual([1, 32]);
    expect(ops.flatten(x, 0).shape).toEqual([32]);
    expect(ops.flatten(x, 1, 2).shape).toEqual([1, 8, 4]);
    expect(ops.flatten(x, -2).shape).toEqual([1, 2, 16]);
  });
});

describe('bad input fails before any compute, naming the op and both shapes', () => {
  const x = (s: number[]): Tensor => tensor(new Array(numel(s)).fill(0), { shape: s });
  test('kernel larger than the padded input', () => {
    expectThrows(() => ops.maxPool2d(x([1, 1, 4, 4]), 5), ShapeError, 'maxPool2d: kernel 5×5 does not fit the padded input 4×4 (input [1,1,4,4], padding 0)');
    expectThrows(() => ops.avgPool2d(x([1, 1, 1, 4]), [4, 2], 1, [1, 0]), ShapeError, 'avgPool2d: kernel 4×2 does not fit the padded input 3×4 (input [1,1,1,4], padding [1,0])');
  });
  test('padding beyond half the kernel, bad sizes, non-4-D input', () => {
    expectThrows(() => ops.maxPool2d(x([1, 1, 4, 4]), 2, 1, 2), ValueError, 'maxPool2d: padding 2 must be at most half the kernel 2×2');
    expectThrows(() => ops.maxPool2d(x([1, 1, 4, 4]), 0), ValueError, 'maxPool2d: kernelSize must be a positive integer or a pair [h, w] of them (got 0)');
    expectThrows(() => ops.avgPool2d(x([1, 1, 4, 4]), 2, [1, 0]), ValueError, 'avgPool2d: stride must be a positive integer or a pair [h, w] of them (got [1,0])');
    expectThrows(() => ops.maxPool2d(x([4, 4]), 2), ShapeError, 'maxPool2d: input must be 4-D [N,C,H,W] (got [4,4])');
    expectThrows(() => ops.adaptiveAvgPool2d(x([1, 1, 4, 4]), 2), ValueError, 'adaptiveAvgPool2d: only output size 1 (1×1) is supported (got 2)');
    expectThrows(() => ops.adaptiveAvgPool2d(x([4, 4])), ShapeError, 'adaptiveAvgPool2d: input must be 4-D [N,C,H,W] or 3-D [C,H,W] (got [4,4])');
    expectThrows(() => ops.flatten(x([2, 3, 4]), 2, 1), ValueError, 'flatten: startDim 2 comes after endDim 1 for input [2,3,4]');
  });
});
