// Tests of src/tensor/shape.ts: numel, strides, broadcasting rules (against a direct reading of the
// NumPy rule), broadcastsTo/broadcastStrides, and axis normalisation with its messages; plus the
// broadcasting kernels that the ops and the engine build on (expand and sum-back are inverse in layout).
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { ShapeError, ValueError } from '../../src/errors.js';
import { expandInto, zipKernel } from '../../src/kernels/broadcast.js';

const PAIR = zipKernel('x * 1000 + y');
import { sumToShape } from '../../src/kernels/elementwise.js';
import {
  broadcastShapes,
  broadcastStrides,
  broadcastsTo,
  checkShape,
  contiguousStrides,
  normAxes,
  normAxis,
  numel,
  sameShape,
} from '../../src/tensor/shape.js';
import { broadcastShapesArb } from '../helpers/arbitraries.js';
import { expectThrows } from '../helpers/grad.js';

/** Multi-index of a flat row-major offset. */
function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = flat % shape[i]!;
    flat = Math.floor(flat / shape[i]!);
  }
  return idx;
}

/** Flat offset into `from` of an index of the broadcast shape `to` (size-1 axes read position 0). */
function broadcastOffset(idx: number[], from: readonly number[], to: readonly number[]): number {
  const off = to.length - from.length;
  let o = 0;
  from.forEach((d, i) => (o = o * d + (d === 1 ? 0 : idx[i + off]!)));
  return o;
}

describe('shape arithmetic', () => {
  test('numel, strides, sameShape, checkShape', () => {
    expect(numel([])).toBe(1);
    expect(numel([2, 3, 4])).toBe(24);
    expect(numel([2, 0])).toBe(0);
    expect(contiguousStrides([2, 3, 4])).toEqual([12, 4, 1]);
    expect(contiguousStrides([])).toEqual([]);
    expect(sameShape([2, 3], [2, 3])).toBe(true);
    expect(sameShape([2, 3], [3, 2])).toBe(false);
    expect(sameShape([1, 3], [3])).toBe(false);
    expect(checkShape('here', [2, 0])).toEqual([2, 0]);
    expectThrows(() => checkShape('here', [2, -1]), ValueError, 'here: shape must be an array of non-negative integers (got [2,-1])');
    expectThrows(() => checkShape('here', 'ab'), ValueError, 'here: shape must be an array of non-negative integers (got "ab")');
  });

  test('broadcastShapes follows NumPy: align right, sizes equal or 1', () => {
    expect(broadcastShapes('op', [3, 1], [1, 4])).toEqual([3, 4]);
    expect(broadcastShapes('op', [4], [2, 3, 4])).toEqual([2, 3, 4]);
    expect(broadcastShapes('op', [], [2, 2])).toEqual([2, 2]);
    expect(broadcastShapes('op', [5, 1, 3], [4, 1])).toEqual([5, 4, 3]);
    expectThrows(() => broadcastShapes('op', [2, 3], [4, 3]), ShapeError, 'op: shapes [2,3] and [4,3] cannot be broadcast (axis 0: 2 vs 4)');
    expectThrows(() => broadcastShapes('mul', [3], [2, 4]), ShapeError, 'mul: shapes [3] and [2,4] cannot be broadcast (axis 1: 3 vs 4)');
  });

  test('broadcastShapes of derived shapes gives back the shape they came from (or broadcasts within it)', () => {
    fc.assert(
      fc.property(broadcastShapesArb(2), ({ out, shapes: [a, b] }) => {
        const s = broadcastShapes('op', a!, b!);
        expect(broadcastShapes('op', b!, a!)).toEqual(s);
        expect(broadcastsTo(a!, s)).toBe(true);
        expect(broadcastsTo(b!, s)).toBe(true);
        expect(broadcastsTo(s, out)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  test('broadcastsTo', () => {
    expect(broadcastsTo([3, 1], [2, 3, 4])).toBe(true);
    expect(broadcastsTo([], [2])).toBe(true);
    expect(broadcastsTo([3], [3, 2])).toBe(false);
    expect(broadcastsTo([2, 3], [3])).toBe(false);
  });

  test('broadcastStrides reads the source at index position 0 along broadcast axes', () => {
    expect(broadcastStrides([3, 1], [2, 3, 4])).toEqual([0, 1, 0]);
    fc.assert(
      fc.property(broadcastShapesArb(1), ({ out, shapes: [from] }) => {
        const st = broadcastStrides(from!, out);
        for (let f = 0; f < numel(out); f++) {
          const idx = unravel(f, out);
          const o = idx.reduce((acc, v, i) => acc + v * st[i]!, 0);
          expect(o).toBe(broadcastOffset(idx, from!, out));
        }
      }),
      { numRuns: 60 },
    );
  });

  test('normAxis and normAxes', () => {
    expect(normAxis('op', -1, 3)).toBe(2);
    expect(normAxis('op', 0, 3)).toBe(0);
    // A 0-d tensor accepts axis 0 in reductions (as PyTorch).
    expect(normAxis('op', 0, 0)).toBe(0);
    expect(normAxes('op', undefined, 3)).toEqual([0, 1, 2]);
    expect(normAxes('op', [-1, 0], 3)).toEqual([0, 2]);
    expect(normAxes('op', 1, 3)).toEqual([1]);
    expect(normAxes('op', [], 3)).toEqual([]);
    expectThrows(() => normAxis('sum', 3, 3), ShapeError, 'sum: axis 3 is out of range for a tensor of rank 3');
    expectThrows(() => normAxis('sum', -4, 3), ShapeError, 'sum: axis -4 is out of range for a tensor of rank 3');
    expectThrows(() => normAxis('sum', 1.5, 3), ShapeError, 'sum: axis 1.5 is out of range for a tensor of rank 3');
    expectThrows(() => normAxes('sum', [0, -3], 3), ShapeError, 'sum: axes [0,-3] repeat an axis');
  });
});

describe('broadcasting kernels', () => {
  const vals = (n: number, k: number): Float64Array => Float64Array.from({ length: n }, (_, i) => i * 10 + k);

  test('expandInto and zipInto read each operand through broadcasting; sumToShape adds back every copy', () => {
    fc.assert(
      fc.property(broadcastShapesArb(2), ({ shapes: [a, b] }) => {
        const out = broadcastShapes('op', a!, b!);
        const n = numel(out);
        const av = vals(numel(a!), 1);
        const bv = vals(numel(b!), 2);
        const e = new Float64Array(n);
        expandInto(av, a!, e, out);
        const z = new Float64Array(n);
        PAIR(av, a!, bv, b!, z, out, 0, 0);
        for (let f = 0; f < n; f++) {
          const idx = unravel(f, out);
          const ia = broadcastOffset(idx, a!, out);
          const ib = broadcastOffset(idx, b!, out);
          expect(e[f]).toBe(av[ia]);
          expect(z[f]).toBe(av[ia]! * 1000 + bv[ib]!);
        }
        // Summing the expanded copy back: each source element, times the number of its copies.
        const back = new Float64Array(numel(a!));
        sumToShape(e, out, back, a!);
        const copies = n / Math.max(numel(a!), 1);
        back.forEach((v, i) => expect(v).toBe(av[i]! * copies));
      }),
      { numRuns: 100 },
    );
  });

  test('sumToShape of a random tensor onto a broadcastable shape equals a direct sum', () => {
    fc.assert(
      fc.property(broadcastShapesArb(1), ({ out, shapes: [to] }) => {
        const src = Float64Array.from({ length: numel(out) }, (_, i) => ((i * 7919) % 13) - 6);
        const dst = new Float64Array(numel(to!)).fill(99);
        sumToShape(src, out, dst, to!);
        const ref = new Float64Array(numel(to!));
        for (let f = 0; f < src.length; f++) ref[broadcastOffset(unravel(f, out), to!, out)]! += src[f]!;
        expect(Array.from(dst)).toEqual(Array.from(ref));
      }),
      { numRuns: 100 },
    );
  });
});
