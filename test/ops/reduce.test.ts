// Tests of src/ops/reduce.ts: gradient properties for sum, max and mean over every axis choice (negative
// axes, lists, keepdim), forward against a naive reference, golden values, ties, and error messages.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { ShapeError } from '../../src/errors.js';
import * as ops from '../../src/ops/index.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { axisArb, numel, reduceAxesArb, shapeArb, specArb } from '../helpers/arbitraries.js';
import { expectThrows, fromSpec, vals } from '../helpers/grad.js';
import { FAMILIES, assertOpGrad } from '../helpers/op-cases.js';

const f64 = (v: Parameters<typeof tensor>[0], requiresGrad = false): Tensor => tensor(v, { dtype: 'f64', requiresGrad });

describe('gradient properties (f64, eps 1e-6, rtol 1e-6)', () => {
  // Axes drawn: all (undefined), one axis, or any subset in any order (empty included), each possibly
  // negative; keepdim either way. max draws distinct values so no tie moves under the FD step.
  for (const name of FAMILIES.reduce) {
    test(`${name}: gradCheck`, () => assertOpGrad(name, 50));
  }
});

/** Naive reduction: walks every element's multi-index and folds it into its output position. */
function reference(values: number[], shape: number[], axes: number | number[] | undefined, keepdim: boolean, kind: 'sum' | 'max' | 'mean') {
  const rank = shape.length;
  const ax = axes === undefined ? shape.map((_, i) => i) : (typeof axes === 'number' ? [axes] : axes).map((a) => (a < 0 ? a + rank : a));
  const kept = shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const out = new Array<number>(numel(kept)).fill(kind === 'max' ? -Infinity : 0);
  const idx = new Array<number>(rank).fill(0);
  for (let flat = 0; flat < values.length; flat++) {
    let o = 0;
    for (let i = 0; i < rank; i++) o = o * kept[i]! + (ax.includes(i) ? 0 : idx[i]!);
    out[o] = kind === 'max' ? Math.max(out[o]!, values[flat]!) : out[o]! + values[flat]!;
    for (let i = rank - 1; i >= 0; i--) {
      if (++idx[i]! < shape[i]!) break;
      idx[i] = 0;
    }
  }
  const n = numel(ax.map((a) => shape[a]!));
  const shapeOut = keepdim ? kept : shape.filter((_, i) => !ax.includes(i));
  return { shape: shapeOut, values: kind === 'mean' ? out.map((v) => v / n) : out };
}

describe('forward', () => {
  test('sum, max and mean equal a naive reference for every axis choice and keepdim', () => {
    fc.assert(
      fc.property(
        shapeArb().chain((s) => fc.tuple(specArb(s, 'any'), reduceAxesArb(s.length), fc.boolean(), fc.constantFrom<('sum' | 'max' | 'mean')[]>('sum', 'max', 'mean'))),
        ([x, axes, keepdim, kind]) => {
          const y = ops[kind](fromSpec({ ...x, grad: false }), axes, keepdim);
          const ref = reference(x.values, x.shape, axes, keepdim, kind);
          expect(y.shape).toEqual(ref.shape);
          const got = vals(y);
          // Summation order differs from the reference's: allow rounding (values are O(1), ≤ 625 terms).
          ref.values.forEach((v, i) => expect(Math.abs(got[i]! - v)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(v))));
        },
      ),
      { numRuns: 60 },
    );
  });

  test('a negative axis means the same axis as its positive twin', () => {
    fc.assert(
      fc.property(
        shapeArb({ minRank: 1 }).chain((s) => fc.tuple(specArb(s, 'any', false), axisArb(s.length), fc.boolean())),
        ([x, axis, keepdim]) => {
          const r = x.shape.length;
          const pos = axis < 0 ? axis + r : axis;
          for (const kind of ['sum', 'max', 'mean'] as const) {
            const a = ops[kind](fromSpec(x), axis, keepdim);
            const b = ops[kind](fromSpec(x), pos - r, keepdim);
            const c = ops[kind](fromSpec(x), pos, keepdim);
            expect(a.shape).toEqual(c.shape);
            expect(vals(a)).toEqual(vals(c));
            expect(vals(b)).toEqual(vals(c));
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  test('golden values', () => {
    const x = f64([[1, 2, 3], [4, 5, 6]]);
    expect(ops.sum(x).shape).toEqual([]);
    expect(ops.sum(x).item()).toBe(21);
    expect(vals(ops.sum(x, 0))).toEqual([5, 7, 9]);
    expect(ops.sum(x, -1, true).toArray()).toEqual([[6], [15]]);
    expect(ops.sum(x, [1, 0]).item()).toBe(21);
    expect(ops.sum(x, []).toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(vals(ops.mean(x, 0))).toEqual([2.5, 3.5, 4.5]);
    expect(ops.mean(x).item()).toBe(3.5);
    // Divided by n, not multiplied by a rounded 1/n (which gives 1.6666666666666665), as PyTorch.
    expect(ops.mean(f64([0, 1, 4])).item()).toBe(5 / 3);
    expect(vals(ops.max(x, 1))).toEqual([3, 6]);
    expect(ops.max(x, 0, true).toArray()).toEqual([[4, 5, 6]]);
    expect(ops.max(x).item()).toBe(6);
    expect(ops.max(f64([-3, -1, -2])).item()).toBe(-1);
    expect(ops.sum(f64(4)).item()).toBe(4);
  });

  test('max propagates NaN (as PyTorch)', () => {
    expect(ops.max(f64([1, NaN, 2])).item()).toBeNaN();
  });

  test('argmax returns the first index on ties', () => {
    expect(Array.from(ops.argmax(f64([[1, 3, 2], [5, 4, 5]]), -1))).toEqual([1, 0]);
    expect(Array.from(ops.argmax(f64([[1, 3, 2], [5, 4, 5]]), 0))).toEqual([1, 1, 1]);
  });
});

describe('gradient golden values', () => {
  test('sum broadcasts the gradient back; mean scales it by 1/n', () => {
    const x = f64([[1, 2, 3], [4, 5, 6]], true);
    ops.sum(ops.mul(ops.sum(x, 1), f64([1, 10]))).backward();
    expect(x.grad!.toArray()).toEqual([[1, 1, 1], [10, 10, 10]]);
    const z = f64([[1, 2], [3, 4]], true);
    ops.mean(z).backward();
    expect(vals(z.grad)).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  test('max sends the gradient to the maximum; ties share it equally (torch.amax)', () => {
    const x = f64([[1, 3, 3], [7, 2, 7]], true);
    ops.sum(ops.mul(ops.max(x, 1), f64([1, 10]))).backward();
    expect(x.grad!.toArray()).toEqual([[0, 0.5, 0.5], [5, 0, 5]]);
    const y = f64([2, 5, 1], true);
    ops.max(y).backward();
    expect(vals(y.grad)).toEqual([0, 1, 0]);
  });
});

describe('error messages', () => {
  const x = f64([[1, 2, 3], [4, 5, 6]]);
  test('axes out of range, not integers, or repeated', () => {
    expectThrows(() => ops.sum(x, 2), ShapeError, 'sum: axis 2 is out of range for a tensor of rank 2');
    expectThrows(() => ops.max(x, -3), ShapeError, 'max: axis -3 is out of range for a tensor of rank 2');
    expectThrows(() => ops.mean(x, 0.5), ShapeError, 'mean: axis 0.5 is out of range for a tensor of rank 2');
    expectThrows(() => ops.sum(x, [1, -1]), ShapeError, 'sum: axes [1,-1] repeat an axis');
    expectThrows(() => ops.mean(x, [0, 0]), ShapeError, 'mean: axes [0,0] repeat an axis');
    expectThrows(() => ops.argmax(x, 2), ShapeError, 'argmax: axis 2 is out of range for a tensor of rank 2');
  });
});
