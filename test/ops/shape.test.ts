// Tests of src/ops/shape.ts: gradient properties for every shape op (random reshapes, permutations, slice
// ranges, concat of 2–3 tensors, gather/indexSelect with repeated indices), forward against nested-array
// references, golden values and error messages.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { DTypeError, ShapeError, ValueError } from '../../src/errors.js';
import * as ops from '../../src/ops/index.js';
import { type NestedArray, tensor, type Tensor } from '../../src/tensor/tensor.js';
import { axisArb, permutationArb, shapeArb, specArb } from '../helpers/arbitraries.js';
import { expectThrows, fromSpec, vals } from '../helpers/grad.js';
import { FAMILIES, assertOpGrad } from '../helpers/op-cases.js';

const f64 = (v: Parameters<typeof tensor>[0], requiresGrad = false): Tensor => tensor(v, { dtype: 'f64', requiresGrad });

describe('gradient properties (f64, eps 1e-6, rtol 1e-6)', () => {
  for (const name of FAMILIES.shape) {
    test(`${name}: gradCheck`, () => assertOpGrad(name, 50));
  }
});

/** Applies `f` to the arrays found at nesting depth `depth` (depth 0: the array itself). */
function atDepth(a: NestedArray, depth: number, f: (xs: NestedArray[]) => NestedArray[]): NestedArray {
  if (depth === 0) return f(a as NestedArray[]);
  return (a as NestedArray[]).map((x) => atDepth(x, depth - 1, f));
}

/** Element at a multi-index of nested arrays. */
function at(a: NestedArray, idx: number[]): number {
  let v = a;
  for (const i of idx) v = (v as NestedArray[])[i]!;
  return v as number;
}

describe('forward against references', () => {
  test('permute: out[i₀..] = x[i at dims⁻¹] for random permutations (negative dims included)', () => {
    fc.assert(
      fc.property(
        shapeArb().chain((s) => fc.tuple(specArb(s, 'any', false), permutationArb(s.length))),
        ([x, dims]) => {
          const t = fromSpec(x);
          const y = ops.permute(t, dims);
          const d = dims.map((a) => (a < 0 ? a + dims.length : a));
          expect(y.shape).toEqual(d.map((a) => x.shape[a]));
          const xa = t.toArray();
          const ya = y.toArray();
          // Walk every output index: output axis i is input axis d[i].
          const walk = (idx: number[]): void => {
            if (idx.length === y.ndim) {
              const src = new Array<number>(idx.length);
              d.forEach((a, i) => (src[a] = idx[i]!));
              expect(at(ya, idx)).toBe(at(xa, src));
              return;
            }
            for (let i = 0; i < y.shape[idx.length]!; i++) walk([...idx, i]);
          };
          walk([]);
        },
      ),
      { numRuns: 50 },
    );
  });

  test('slice follows Array.prototype.slice (Python ranges) along the axis', () => {
    fc.assert(
      fc.property(
        shapeArb({ minRank: 1, maxRank: 3 }).chain((s) =>
          axisArb(s.length).chain((axis) => {
            const len = s[axis < 0 ? axis + s.length : axis]!;
            return fc.tuple(specArb(s, 'any', false), fc.constant(axis), fc.integer({ min: -len - 2, max: len + 2 }), fc.option(fc.integer({ min: -len - 2, max: len + 2 })));
          }),
        ),
        ([x, axis, start, end]) => {
          const t = fromSpec(x);
          const y = ops.slice(t, axis, start, end ?? undefined);
          const ax = axis < 0 ? axis + x.shape.length : axis;
          expect(y.toArray()).toEqual(atDepth(t.toArray(), ax, (xs) => xs.slice(start, end ?? undefined)));
        },
      ),
      { numRuns: 60 },
    );
  });

  test('concat joins along the axis like nested Array.prototype.concat', () => {
    fc.assert(
      fc.property(
        shapeArb({ minRank: 1, maxRank: 3, maxDim: 3 }).chain((s) =>
          fc.tuple(fc.constant(s), axisArb(s.length), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 3 })),
        ),
        ([s, axis, lens]) => {
          const ax = axis < 0 ? axis + s.length : axis;
          let k = 0;
          const ts = lens.map((l) => {
            const shape = s.map((d, i) => (i === ax ? l : d));
            const n = shape.reduce((a, b) => a * b, 1);
            return tensor(Array.from({ length: n }, () => k++), { shape, dtype: 'f64' });
          });
          const y = ops.concat(ts, axis);
          // Zip the parts' nested arrays at depth ax and join there.
          const join = (parts: NestedArray[], depth: number): NestedArray =>
            depth === 0
              ? parts.flatMap((p) => p as NestedArray[])
              : (parts[0] as NestedArray[]).map((_, i) => join(parts.map((p) => (p as NestedArray[])[i]!), depth - 1));
          expect(y.toArray()).toEqual(join(ts.map((t) => t.toArray()), ax));
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('golden values', () => {
  const x = f64([[1, 2, 3], [4, 5, 6]]);

  test('reshape keeps the order, infers -1 and shares storage', () => {
    expect(ops.reshape(x, [3, 2]).toArray()).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect(ops.reshape(x, [-1]).shape).toEqual([6]);
    expect(ops.reshape(x, [1, -1, 2]).shape).toEqual([1, 3, 2]);
    expect(ops.reshape(f64([7]), []).shape).toEqual([]);
    expect(ops.reshape(x, [6]).data).toBe(x.data);
  });

  test('broadcastTo repeats along size-1 and new leading axes; an equal shape returns the input', () => {
    expect(ops.broadcastTo(f64([[1], [2]]), [2, 3]).toArray()).toEqual([[1, 1, 1], [2, 2, 2]]);
    expect(ops.broadcastTo(f64([1, 2]), [2, 2]).toArray()).toEqual([[1, 2], [1, 2]]);
    expect(ops.broadcastTo(x, [2, 3])).toBe(x);
  });

  test('permute and transpose', () => {
    expect(ops.permute(x, [1, 0]).toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(ops.transpose(x).toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
    const c = tensor([0, 1, 2, 3, 4, 5, 6, 7], { shape: [2, 2, 2], dtype: 'f64' });
    expect(ops.permute(c, [2, 0, 1]).toArray()).toEqual([[[0, 2], [4, 6]], [[1, 3], [5, 7]]]);
    expect(ops.transpose(c, 0, -1).toArray()).toEqual([[[0, 4], [2, 6]], [[1, 5], [3, 7]]]);
    const v = f64([1, 2]);
    expect(ops.transpose(v)).toBe(v);
  });

  test('slice with positive, negative and clamped bounds', () => {
    const r = f64([0, 1, 2, 3, 4, 5]);
    expect(vals(ops.slice(r, 0, 1, 4))).toEqual([1, 2, 3]);
    expect(vals(ops.slice(r, 0, -2))).toEqual([4, 5]);
    expect(vals(ops.slice(r, -1, 2, 100))).toEqual([2, 3, 4, 5]);
    expect(ops.slice(r, 0, 4, 1).shape).toEqual([0]);
    expect(ops.slice(x, -1, 0, 1).toArray()).toEqual([[1], [4]]);
    expect(ops.slice(x, 0, 1).toArray()).toEqual([[4, 5, 6]]);
  });

  test('concat along the first and the last axis', () => {
    expect(ops.concat([f64([[1, 2]]), f64([[3, 4], [5, 6]])], 0).toArray()).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect(ops.concat([f64([[1], [2]]), f64([[3, 4], [5, 6]])], -1).toArray()).toEqual([[1, 3, 4], [2, 5, 6]]);
  });

  test('gather picks per row; indexSelect picks the same positions in every row', () => {
    const g = f64([[10, 11, 12], [20, 21, 22]]);
    expect(ops.gather(g, 1, [2, 0, 1, 1]).toArray()).toEqual([[12, 10], [21, 21]]);
    expect(ops.gather(g, -1, Int32Array.from([1, 2])).toArray()).toEqual([[11], [22]]);
    expect(ops.gather(tensor([1, 2, 3, 4, 5, 6], { shape: [2, 3, 1], dtype: 'f64' }), 1, [0, 2]).toArray()).toEqual([[[1]], [[6]]]);
    expect(ops.indexSelect(g, 1, [2, 2, 0]).toArray()).toEqual([[12, 12, 10], [22, 22, 20]]);
    expect(ops.indexSelect(g, 0, [1]).toArray()).toEqual([[20, 21, 22]]);
  });
});

describe('gradient golden values', () => {
  test('gather and indexSelect scatter-add: a repeated index receives the sum of its gradients', () => {
    const g = f64([[10, 11, 12], [20, 21, 22]], true);
    ops.sum(ops.gather(g, 1, [2, 0, 1, 1])).backward();
    expect(g.grad!.toArray()).toEqual([[1, 0, 1], [0, 2, 0]]);
    const h = f64([[10, 11, 12], [20, 21, 22]], true);
    ops.sum(ops.mul(ops.indexSelect(h, 1, [2, 2, 0]), f64([1, 2, 4]))).backward();
    expect(h.grad!.toArray()).toEqual([[4, 0, 3], [4, 0, 3]]);
  });

  test('slice puts the gradient back at its place, zeros elsewhere', () => {
    const r = f64([0, 1, 2, 3, 4], true);
    ops.sum(ops.mul(ops.slice(r, 0, 1, 3), f64([5, 7]))).backward();
    expect(vals(r.grad)).toEqual([0, 5, 7, 0, 0]);
  });

  test('concat hands each input its own part of the gradient', () => {
    const a = f64([[1], [2]], true);
    const b = f64([[3, 4], [5, 6]], true);
    ops.sum(ops.mul(ops.concat([a, b], 1), f64([[1, 2, 3], [4, 5, 6]]))).backward();
    expect(a.grad!.toArray()).toEqual([[1], [4]]);
    expect(b.grad!.toArray()).toEqual([[2, 3], [5, 6]]);
  });
});

describe('error messages', () => {
  const x = f64([[1, 2, 3], [4, 5, 6]]);

  test('reshape', () => {
    expectThrows(() => ops.reshape(x, [4, 2]), ShapeError, 'reshape: shape [4,2] holds 8 elements, input [2,3] has 6');
    expectThrows(() => ops.reshape(x, [-1, -1]), ShapeError, 'reshape: shape [-1,-1] must hold non-negative integers and at most one -1');
    expectThrows(() => ops.reshape(x, [4, -1]), ShapeError, 'reshape: cannot infer the -1 in [4,-1] for 6 elements of [2,3]');
    expectThrows(() => ops.reshape(x, [2, 1.5]), ShapeError, 'reshape: shape [2,1.5] must hold non-negative integers and at most one -1');
  });

  test('broadcastTo', () => {
    expectThrows(() => ops.broadcastTo(x, [3, 3]), ShapeError, 'broadcastTo: shape [2,3] cannot be broadcast to [3,3]');
    expectThrows(() => ops.broadcastTo(x, [3]), ShapeError, 'broadcastTo: shape [2,3] cannot be broadcast to [3]');
  });

  test('permute and transpose', () => {
    expectThrows(() => ops.permute(x, [0, 0]), ShapeError, 'permute: dims [0,0] must be a permutation of the 2 axes of [2,3]');
    expectThrows(() => ops.permute(x, [0]), ShapeError, 'permute: dims [0] must be a permutation of the 2 axes of [2,3]');
    expectThrows(() => ops.permute(x, [0, 2]), ShapeError, 'permute: axis 2 is out of range for a tensor of rank 2');
    expectThrows(() => ops.transpose(x, 0, 3), ShapeError, 'transpose: axis 3 is out of range for a tensor of rank 2');
  });

  test('slice', () => {
    expectThrows(() => ops.slice(x, 2, 0), ShapeError, 'slice: axis 2 is out of range for a tensor of rank 2');
    expectThrows(() => ops.slice(x, 0, 0.5), ValueError, 'slice: start and end must be integers (got 0.5, undefined)');
    expectThrows(() => ops.slice(f64(1), 0, 0), ShapeError, 'slice: axis 0 is out of range for a tensor of rank 0');
  });

  test('concat', () => {
    expectThrows(() => ops.concat([]), ValueError, 'concat: needs a non-empty array of tensors');
    expectThrows(
      () => ops.concat([f64([[1, 2, 3], [1, 2, 3], [1, 2, 3]]), f64([[1, 2, 3, 4], [1, 2, 3, 4]])], 0),
      ShapeError,
      'concat: tensors[1] has shape [2,4], which does not match [3,3] outside axis 0',
    );
    expectThrows(() => ops.concat([x, f64([1, 2, 3])], 0), ShapeError, 'concat: tensors[1] has shape [3], which does not match [2,3] outside axis 0');
    expectThrows(() => ops.concat([x, tensor([[1, 2, 3]], { dtype: 'f32' })]), DTypeError, "concat: dtypes differ (f64 and f32); convert with .clone('f64')");
    expectThrows(() => ops.concat([f64(1), f64(2)]), ShapeError, 'concat: axis 0 is out of range for a tensor of rank 0');
  });

  test('gather and indexSelect', () => {
    expectThrows(() => ops.gather(x, 1, [0, 1, 5, 0]), ValueError, 'gather: index[2] = 5 is out of range [0, 3)');
    expectThrows(() => ops.gather(x, 1, [0, 1, 2]), ShapeError, 'gather: 3 indices do not divide among the 2 positions before axis 1 of [2,3]');
    expectThrows(() => ops.gather(x, 0, [0, 1]), ShapeError, 'gather: axis 0 must be the last non-trivial axis of [2,3]');
    expectThrows(() => ops.indexSelect(x, 1, [-1]), ValueError, 'indexSelect: index[0] = -1 is out of range [0, 3)');
    expectThrows(() => ops.indexSelect(x, 0, [0.5]), ValueError, 'indexSelect: index[0] = 0.5 is out of range [0, 2)');
    expectThrows(() => ops.indexSelect(x, 0, 'a' as unknown as number[]), ValueError, 'indexSelect: index must be an Int32Array or an array of integers');
    expectThrows(() => ops.indexSelect(f64(1), 0, [0]), ShapeError, 'indexSelect: axis 0 is out of range for a tensor of rank 0');
  });
});
