// Tests of src/ops/matmul.ts: gradient properties over batched and broadcast operands in all four
// transpose combinations, 1-D operands and the packed kernel's sizes; forward against a naive product;
// golden values and error messages.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { DTypeError, ShapeError } from '../../src/errors.js';
import * as ops from '../../src/ops/index.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { broadcastPairArb, numel, specArb } from '../helpers/arbitraries.js';
import { expectThrows, fromSpec, vals } from '../helpers/grad.js';
import { FAMILIES, assertOpGrad } from '../helpers/op-cases.js';

const f64 = (v: Parameters<typeof tensor>[0], requiresGrad = false): Tensor => tensor(v, { dtype: 'f64', requiresGrad });

describe('gradient properties (f64, eps 1e-6, rtol 1e-6)', () => {
  // Cases: broadcast batch axes × {A·B, Aᵀ·B, A·Bᵀ, Aᵀ·Bᵀ}, sometimes one operand without grad;
  // vector·matrix, matrix·vector, vector·vector; and a few sizes that take the packed GEMM path.
  for (const name of FAMILIES.matmul) {
    test(`${name}: gradCheck`, () => assertOpGrad(name, 60));
  }
});

/** Naive batched product of op(A)·op(B) with broadcast batch axes, from flat row-major values. */
function naive(a: { shape: number[]; values: number[] }, b: { shape: number[]; values: number[] }, ta: boolean, tb: boolean) {
  const ar = a.shape.length;
  const br = b.shape.length;
  const M = a.shape[ar - (ta ? 1 : 2)]!;
  const K = a.shape[ar - (ta ? 2 : 1)]!;
  const N = b.shape[br - (tb ? 2 : 1)]!;
  const ab = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const n = Math.max(ab.length, bb.length);
  const batch = Array.from({ length: n }, (_, i) => {
    const da = ab[i - (n - ab.length)] ?? 1;
    const db = bb[i - (n - bb.length)] ?? 1;
    return Math.max(da, db);
  });
  /** Flat offset of a batch index into an operand with batch shape `bs` (size-1 axes broadcast). */
  const off = (idx: number[], bs: number[]): number => {
    let o = 0;
    bs.forEach((d, i) => (o = o * d + (d === 1 ? 0 : idx[i + (n - bs.length)]!)));
    return o;
  };
  const out: number[] = [];
  const count = numel(batch);
  for (let q = 0; q < count; q++) {
    const idx: number[] = [];
    let r = q;
    for (let i = n - 1; i >= 0; i--) {
      idx[i] = r % batch[i]!;
      r = Math.floor(r / batch[i]!);
    }
    const ao = off(idx, ab) * M * K;
    const bo = off(idx, bb) * K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let p = 0; p < K; p++) s += a.values[ao + (ta ? p * M + i : i * K + p)]! * b.values[bo + (tb ? j * K + p : p * N + j)]!;
        out.push(s);
      }
    }
  }
  return { shape: [...batch, M, N], values: out };
}

describe('forward', () => {
  test('batched, broadcast, transposed products equal a naive triple loop', () => {
    fc.assert(
      fc.property(
        fc
          .tuple(broadcastPairArb({ maxRank: 3, maxDim: 3 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.boolean(), fc.boolean())
          .chain(([[ba, bb], M, K, N, ta, tb]) =>
            fc.tuple(specArb([...ba, ...(ta ? [K, M] : [M, K])], 'any', false), specArb([...bb, ...(tb ? [N, K] : [K, N])], 'any', false), fc.constant(ta), fc.constant(tb)),
          ),
        ([a, b, ta, tb]) => {
          const y = ops.matmul(fromSpec(a), fromSpec(b), { transposeA: ta, transposeB: tb });
          const ref = naive(a, b, ta, tb);
          expect(y.shape).toEqual(ref.shape);
          const got = vals(y);
          ref.values.forEach((v, i) => expect(Math.abs(got[i]! - v)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(v))));
        },
      ),
      { numRuns: 60 },
    );
  });

  test('golden values in all four transpose combinations', () => {
    const a = [[1, 2], [3, 4]];
    const at = [[1, 3], [2, 4]];
    const b = [[5, 6], [7, 8]];
    const bt = [[5, 7], [6, 8]];
    const want = [[19, 22], [43, 50]];
    expect(ops.matmul(f64(a), f64(b)).toArray()).toEqual(want);
    expect(ops.matmul(f64(at), f64(b), { transposeA: true }).toArray()).toEqual(want);
    expect(ops.matmul(f64(a), f64(bt), { transposeB: true }).toArray()).toEqual(want);
    expect(ops.matmul(f64(at), f64(bt), { transposeA: true, transposeB: true }).toArray()).toEqual(want);
  });

  test('1-D operands: the added axis is removed (torch.matmul)', () => {
    const m = f64([[5, 6], [7, 8]]);
    const r = ops.matmul(f64([1, 2]), m);
    expect(r.shape).toEqual([2]);
    expect(vals(r)).toEqual([19, 22]);
    const c = ops.matmul(f64([[1, 2], [3, 4]]), f64([5, 6]));
    expect(c.shape).toEqual([2]);
    expect(vals(c)).toEqual([17, 39]);
    const d = ops.matmul(f64([1, 2, 3]), f64([4, 5, 6]));
    expect(d.shape).toEqual([]);
    expect(d.item()).toBe(32);
    // A batch of matrices times a vector: [2,2,2]·[2] → [2,2].
    const bm = ops.matmul(f64([[[1, 0], [0, 1]], [[2, 0], [0, 2]]]), f64([3, 4]));
    expect(bm.toArray()).toEqual([[3, 4], [6, 8]]);
  });

  test('batch axes broadcast: [2,1,2,2]·[3,2,2] → [2,3,2,2]', () => {
    const a = tensor([1, 0, 0, 1, 2, 0, 0, 2], { shape: [2, 1, 2, 2], dtype: 'f64' });
    const b = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], { shape: [3, 2, 2], dtype: 'f64' });
    const y = ops.matmul(a, b);
    expect(y.shape).toEqual([2, 3, 2, 2]);
    expect(y.toArray()).toEqual([
      [[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 10], [11, 12]]],
      [[[2, 4], [6, 8]], [[10, 12], [14, 16]], [[18, 20], [22, 24]]],
    ]);
  });
});

describe('gradient golden values', () => {
  test('d(a·b) = gy·bᵀ and aᵀ·gy; a broadcast operand gets its gradient summed over the batch', () => {
    const a = f64([[1, 2], [3, 4]], true);
    const b = f64([[[1, 0], [0, 1]], [[2, 0], [0, 2]]], true);
    ops.sum(ops.matmul(a, b)).backward();
    // Σ over the batch of gy·bᵀ with gy all ones: rows of b summed, over both matrices: 3 everywhere.
    expect(a.grad!.toArray()).toEqual([[3, 3], [3, 3]]);
    // aᵀ·1: column sums of a in every row, for each batch matrix.
    expect(b.grad!.toArray()).toEqual([[[4, 4], [6, 6]], [[4, 4], [6, 6]]]);
  });
});

describe('error messages', () => {
  test('inner sizes that differ name both operands and the transpose', () => {
    expectThrows(() => ops.matmul(f64([[1, 2, 3]]), f64([[1, 2]])), ShapeError, 'matmul: inner sizes differ: a [1,3] has 3 columns, b [1,2] has 1 rows');
    expectThrows(
      () => ops.matmul(f64([[1, 2], [3, 4], [5, 6]]), f64([[1, 2], [3, 4]]), { transposeA: true }),
      ShapeError,
      'matmul: inner sizes differ: aᵀ [3,2] has 3 columns, b [2,2] has 2 rows',
    );
    expectThrows(
      () => ops.matmul(f64([[1, 2, 3]]), f64([[1, 2], [3, 4], [5, 6], [7, 8]]), { transposeB: true }),
      ShapeError,
      'matmul: inner sizes differ: a [1,3] has 3 columns, bᵀ [4,2] has 2 rows',
    );
    // A 1-D operand is reported as the row it was promoted to.
    expectThrows(() => ops.matmul(f64([1, 2, 3]), f64([[1, 2], [3, 4]])), ShapeError, 'matmul: inner sizes differ: a [1,3] has 3 columns, b [2,2] has 2 rows');
  });

  test('batch axes that do not broadcast', () => {
    const a = tensor(new Array(12).fill(1), { shape: [2, 2, 3], dtype: 'f64' });
    const b = tensor(new Array(36).fill(1), { shape: [3, 3, 4], dtype: 'f64' });
    expectThrows(() => ops.matmul(a, b), ShapeError, 'matmul: shapes [2] and [3] cannot be broadcast (axis 0: 2 vs 3)');
  });

  test('0-d operands, transposed vectors, mixed dtypes', () => {
    expectThrows(() => ops.matmul(f64(2), f64([1, 2])), ShapeError, 'matmul: operands must have at least one axis (got [] and [2])');
    expectThrows(() => ops.matmul(f64([1, 2]), f64([1, 2]), { transposeA: true }), ShapeError, 'matmul: a 1-D operand cannot be transposed');
    expectThrows(
      () => ops.matmul(tensor([[1, 2]], { dtype: 'f32' }), f64([[1], [2]])),
      DTypeError,
      "matmul: dtypes differ (f32 and f64); convert with .clone('f32')",
    );
  });
});
