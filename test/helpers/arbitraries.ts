// fast-check arbitraries for the op property tests: shapes, broadcast-compatible shape pairs, values in
// each op's safe domain (away from kinks, ties and poles, so central differences are valid) and indices.
import fc from 'fast-check';

export type Shape = number[];

export interface ShapeOptions {
  minRank?: number;
  maxRank?: number;
  /** Largest size of one axis (default 5). */
  maxDim?: number;
}

/** One axis size in 1..maxDim; 1 is drawn often on purpose (size-1 axes are where broadcasting bugs hide). */
export function dimArb(maxDim = 5): fc.Arbitrary<number> {
  return fc.oneof({ arbitrary: fc.constant(1), weight: 1 }, { arbitrary: fc.integer({ min: 1, max: maxDim }), weight: 3 });
}

/** A shape of rank minRank..maxRank (default 0..4), axes 1..maxDim. */
export function shapeArb(opts: ShapeOptions = {}): fc.Arbitrary<Shape> {
  return fc.array(dimArb(opts.maxDim ?? 5), { minLength: opts.minRank ?? 0, maxLength: opts.maxRank ?? 4 });
}

/**
 * A shape that broadcasts to `out`: some leading axes dropped, some axes set to 1. `drop` and `ones` are
 * raw draws (any non-negative integer / any booleans) so the caller can generate them with fast-check.
 */
export function deriveBroadcastable(out: readonly number[], drop: number, ones: readonly boolean[]): Shape {
  const d = Math.min(drop, out.length);
  return out.slice(d).map((s, i) => (ones[i] === true ? 1 : s));
}

/** Raw draws for deriveBroadcastable: a leading-axis drop count (often 0) and a mask of axes set to 1. */
function broadcastDrawArb(): fc.Arbitrary<{ drop: number; ones: boolean[] }> {
  return fc.record({
    drop: fc.oneof({ arbitrary: fc.constant(0), weight: 2 }, { arbitrary: fc.integer({ min: 0, max: 4 }), weight: 1 }),
    ones: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
  });
}

/**
 * `count` shapes that broadcast together to `out`, each derived from `out` by dropping leading axes and
 * setting axes to 1 on its own side (so [3,1] with [1,4], [4] with [2,3,4], and equal shapes all occur).
 */
export function broadcastShapesArb(count: number, opts: ShapeOptions = {}): fc.Arbitrary<{ out: Shape; shapes: Shape[] }> {
  return fc
    .tuple(
      shapeArb(opts),
      fc.array(broadcastDrawArb(), { minLength: count, maxLength: count }),
      // Sometimes keep every operand at the full shape (the fast path of the kernels).
      fc.boolean(),
    )
    .map(([out, draws, same]) => ({
      out,
      shapes: draws.map((d) => (same ? out.slice() : deriveBroadcastable(out, d.drop, d.ones))),
    }));
}

/** A pair of broadcast-compatible shapes. */
export function broadcastPairArb(opts: ShapeOptions = {}): fc.Arbitrary<[Shape, Shape]> {
  return broadcastShapesArb(2, opts).map(({ shapes }) => [shapes[0]!, shapes[1]!]);
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// ---- values ----------------------------------------------------------------------------------------

/** The domain a tensor's values are drawn from. */
export type Domain =
  /** Any value in [-2, 2]. */
  | 'any'
  /** (0.2, 3]: log, sqrt, pow's base. */
  | 'positive'
  /** ±[0.2, 3]: denominators. */
  | 'nonzero'
  /**
   * Pairwise distinct values on the grid (k + ½)·2e-3 within [-2, 2]: any two differ by ≥ 2e-3 and every
   * value is ≥ 1e-3 from 0 and from any multiple of 2e-3 (where clamp bounds are drawn). Kinks (abs, relu,
   * clamp) and ties (max) stay ≥ 1e-3 away, three orders of magnitude beyond the 1e-6 finite-difference step.
   */
  | 'distinct'
  /** 0 or 1: where's condition. */
  | 'mask'
  /** [-4, 4]: sigmoid, tanh, exp, softmax (wider, still no overflow). */
  | 'wide';

/** Grid step of the 'distinct' domain; clamp bounds are drawn on multiples of it. */
export const GRID = 2e-3;

export function valuesArb(n: number, domain: Domain = 'any'): fc.Arbitrary<number[]> {
  const len = { minLength: n, maxLength: n };
  switch (domain) {
    case 'any':
      return fc.array(fc.double({ min: -2, max: 2, noNaN: true, noDefaultInfinity: true }), len);
    case 'wide':
      return fc.array(fc.double({ min: -4, max: 4, noNaN: true, noDefaultInfinity: true }), len);
    case 'positive':
      return fc.array(fc.double({ min: 0.2, max: 3, noNaN: true }), len);
    case 'nonzero':
      return fc.array(
        fc.tuple(fc.double({ min: 0.2, max: 3, noNaN: true }), fc.boolean()).map(([v, s]) => (s ? -v : v)),
        len,
      );
    case 'distinct':
      return fc.uniqueArray(fc.integer({ min: -1000, max: 999 }), len).map((ks) => ks.map((k) => (k + 0.5) * GRID));
    case 'mask':
      return fc.array(fc.constantFrom(0, 1), len);
  }
}

/** A tensor's description (shape + flat values); helpers turn it into f64 or f32 tensors. */
export interface TensorSpec {
  shape: Shape;
  values: number[];
  /** Whether the tensor takes part in differentiation (default true). */
  grad?: boolean;
}

export function specArb(shape: readonly number[], domain: Domain = 'any', grad = true): fc.Arbitrary<TensorSpec> {
  return valuesArb(numel(shape), domain).map((values) => ({ shape: shape.slice(), values, grad }));
}

/** A tensor of random shape with values from `domain`. */
export function tensorSpecArb(domain: Domain = 'any', opts: ShapeOptions = {}): fc.Arbitrary<TensorSpec> {
  return shapeArb(opts).chain((s) => specArb(s, domain));
}

// ---- axes and indices ------------------------------------------------------------------------------

/** An axis of a tensor of rank r ≥ 1, written either way: 0..r-1 or its negative twin -r..-1. */
export function axisArb(rank: number): fc.Arbitrary<number> {
  return fc.tuple(fc.integer({ min: 0, max: rank - 1 }), fc.boolean()).map(([a, neg]) => (neg ? a - rank : a));
}

/**
 * The axes argument of a reduction over a tensor of rank r: undefined (all axes), one axis, or a list of
 * distinct axes in any order (possibly empty), each possibly negative.
 */
export function reduceAxesArb(rank: number): fc.Arbitrary<number | number[] | undefined> {
  if (rank === 0) return fc.constantFrom<(number | number[] | undefined)[]>(undefined, []);
  const list = fc
    .tuple(
      fc.shuffledSubarray(
        Array.from({ length: rank }, (_, i) => i),
        { minLength: 0, maxLength: rank },
      ),
      fc.array(fc.boolean(), { minLength: rank, maxLength: rank }),
    )
    .map(([axes, negs]) => axes.map((a, i) => (negs[i] ? a - rank : a)));
  return fc.oneof(fc.constant(undefined), axisArb(rank), list);
}

/** A permutation of 0..n-1, each entry possibly written as its negative twin. */
export function permutationArb(n: number): fc.Arbitrary<number[]> {
  const ids = Array.from({ length: n }, (_, i) => i);
  return fc
    .tuple(fc.shuffledSubarray(ids, { minLength: n, maxLength: n }), fc.array(fc.boolean(), { minLength: n, maxLength: n }))
    .map(([p, negs]) => p.map((a, i) => (negs[i] ? a - n : a)));
}

/**
 * Indices into an axis of length `bound`: `count` of them, with at least one repeat whenever count ≥ 2
 * (a repeated index must receive the sum of its gradients).
 */
export function indicesArb(bound: number, minCount = 1, maxCount = 6): fc.Arbitrary<number[]> {
  return fc
    .array(fc.integer({ min: 0, max: bound - 1 }), { minLength: minCount, maxLength: maxCount })
    .chain((ix) =>
      ix.length < 2
        ? fc.constant(ix)
        : fc.integer({ min: 0, max: ix.length - 1 }).map((j) => {
            const out = ix.slice();
            out[(j + 1) % out.length] = out[j]!;
            return out;
          }),
    );
}

/** A seed for gradCheck's random directions and output weights. */
export const seedArb = fc.nat({ max: 2 ** 31 - 1 });
