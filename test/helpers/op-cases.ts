// One random-case generator per op of OP_TABLE: inputs (shapes, values in the op's safe domain) plus how
// to call the op. The family gradient tests and the f32-vs-f64 test both draw from these.
import fc from 'fast-check';
import * as ops from '../../src/ops/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import {
  type Domain,
  GRID,
  type Shape,
  type TensorSpec,
  axisArb,
  broadcastPairArb,
  broadcastShapesArb,
  deriveBroadcastable,
  dimArb,
  indicesArb,
  numel,
  permutationArb,
  reduceAxesArb,
  seedArb,
  shapeArb,
  specArb,
} from './arbitraries.js';
import { expectGrad, fromSpec } from './grad.js';

export interface OpCase {
  /** What was drawn, for failure messages: the call with its non-tensor arguments. */
  label: string;
  inputs: TensorSpec[];
  /** Calls the op on tensors built from `inputs` (in order, in either dtype). */
  f: (...xs: Tensor[]) => Tensor;
  /** gradCheck tolerances where a case needs looser ones than eps 1e-6 / rtol 1e-6 (with the reason there). */
  tol?: { atol?: number; rtol?: number };
}

/** Op-table keys by the src/ops file they live in (composites included where their code is). */
export const FAMILIES = {
  elementwise: ['add', 'sub', 'mul', 'div', 'pow', 'neg', 'exp', 'log', 'sqrt', 'abs', 'relu', 'sigmoid', 'tanh', 'clamp', 'where'],
  reduce: ['sum', 'max', 'mean'],
  shape: ['reshape', 'broadcastTo', 'permute', 'transpose', 'slice', 'concat', 'gather', 'indexSelect'],
  matmul: ['matmul'],
  composite: ['logSumExp', 'logSoftmax', 'softmax'],
  conv: ['conv2d'],
  pool: ['maxPool2d', 'avgPool2d', 'adaptiveAvgPool2d', 'flatten'],
  cells: ['lstmCellState', 'lstmCellOutput', 'gruCell'],
} as const;

export type Family = keyof typeof FAMILIES;

const fmt = (s: readonly number[]): string => `[${s.join(',')}]`;

// ---- elementwise -----------------------------------------------------------------------------------

type BinaryFn = (a: Tensor | number, b: Tensor | number) => Tensor;

/**
 * A binary op on two broadcast-compatible tensors, or on a tensor and a plain number on either side.
 * `bDomain` keeps denominators away from 0.
 */
function binaryCase(name: string, fn: BinaryFn, aDomain: Domain, bDomain: Domain): fc.Arbitrary<OpCase> {
  const tensors = broadcastPairArb().chain(([sa, sb]) =>
    fc.tuple(specArb(sa, aDomain), specArb(sb, bDomain)).map(
      ([a, b]): OpCase => ({ label: `${name}(${fmt(sa)}, ${fmt(sb)})`, inputs: [a, b], f: (x, y) => fn(x!, y!) }),
    ),
  );
  const numberRight = fc.tuple(shapeArb().chain((s) => specArb(s, aDomain)), numberIn(bDomain)).map(
    ([a, c]): OpCase => ({ label: `${name}(${fmt(a.shape)}, ${c})`, inputs: [a], f: (x) => fn(x!, c) }),
  );
  const numberLeft = fc.tuple(numberIn(aDomain), shapeArb().chain((s) => specArb(s, bDomain))).map(
    ([c, b]): OpCase => ({ label: `${name}(${c}, ${fmt(b.shape)})`, inputs: [b], f: (y) => fn(c, y!) }),
  );
  return fc.oneof({ arbitrary: tensors, weight: 4 }, { arbitrary: numberRight, weight: 1 }, { arbitrary: numberLeft, weight: 1 });
}

function numberIn(domain: Domain): fc.Arbitrary<number> {
  return domain === 'nonzero'
    ? fc.tuple(fc.double({ min: 0.25, max: 3, noNaN: true }), fc.boolean()).map(([v, s]) => (s ? -v : v))
    : fc.double({ min: -2, max: 2, noNaN: true });
}

function unaryCase(name: string, fn: (x: Tensor) => Tensor, domain: Domain): fc.Arbitrary<OpCase> {
  return shapeArb()
    .chain((s) => specArb(s, domain))
    .map((x): OpCase => ({ label: `${name}(${fmt(x.shape)})`, inputs: [x], f: (t) => fn(t!) }));
}

/** pow with a positive base and an exponent that is a number (the usual case) or a broadcast tensor. */
const powCase: fc.Arbitrary<OpCase> = fc.oneof(
  fc.tuple(shapeArb().chain((s) => specArb(s, 'positive')), fc.double({ min: -2.5, max: 2.5, noNaN: true })).map(
    ([a, e]): OpCase => ({ label: `pow(${fmt(a.shape)}, ${e})`, inputs: [a], f: (x) => ops.pow(x!, e) }),
  ),
  // Integer exponents hit Math.pow's exact paths.
  fc.tuple(shapeArb().chain((s) => specArb(s, 'positive')), fc.integer({ min: -3, max: 3 })).map(
    ([a, e]): OpCase => ({ label: `pow(${fmt(a.shape)}, ${e})`, inputs: [a], f: (x) => ops.pow(x!, e) }),
  ),
  broadcastPairArb().chain(([sa, sb]) =>
    fc.tuple(specArb(sa, 'positive'), specArb(sb, 'any'), fc.boolean()).map(
      ([a, b, bGrad]): OpCase => ({
        label: `pow(${fmt(sa)}, tensor ${fmt(sb)}${bGrad ? '' : ', exponent without grad'})`,
        inputs: [a, { ...b, grad: bGrad }],
        f: (x, y) => ops.pow(x!, y!),
      }),
    ),
  ),
);

/** clamp bounds on multiples of GRID, so 'distinct' values are ≥ GRID/2 from either bound. */
const clampCase: fc.Arbitrary<OpCase> = fc
  .tuple(
    shapeArb().chain((s) => specArb(s, 'distinct')),
    fc.option(fc.integer({ min: -800, max: 800 })),
    fc.option(fc.integer({ min: 0, max: 800 })),
  )
  .map(([x, lo, width]): OpCase => {
    const min = lo === null ? undefined : lo * GRID;
    const max = width === null ? undefined : (lo ?? 0) * GRID + width * GRID;
    return { label: `clamp(${fmt(x.shape)}, ${min}, ${max})`, inputs: [x], f: (t) => ops.clamp(t!, min, max) };
  });

/** where with condition, a and b all broadcasting to one shape; the condition takes no gradient. */
const whereCase: fc.Arbitrary<OpCase> = fc.oneof(
  broadcastShapesArb(3).chain(({ shapes: [sc, sa, sb] }) =>
    fc.tuple(specArb(sc!, 'mask', false), specArb(sa!, 'any'), specArb(sb!, 'any')).map(
      ([c, a, b]): OpCase => ({ label: `where(${fmt(sc!)}, ${fmt(sa!)}, ${fmt(sb!)})`, inputs: [c, a, b], f: (m, x, y) => ops.where(m!, x!, y!) }),
    ),
  ),
  fc.tuple(shapeArb().chain((s) => fc.tuple(specArb(s, 'mask', false), specArb(s, 'any'))), fc.double({ min: -2, max: 2, noNaN: true })).map(
    ([[c, a], v]): OpCase => ({ label: `where(${fmt(c.shape)}, ${fmt(a.shape)}, ${v})`, inputs: [c, a], f: (m, x) => ops.where(m!, x!, v) }),
  ),
);

// ---- reductions ------------------------------------------------------------------------------------

function reduceCase(name: 'sum' | 'mean' | 'max', domain: Domain): fc.Arbitrary<OpCase> {
  return shapeArb().chain((s) =>
    fc.tuple(specArb(s, domain), reduceAxesArb(s.length), fc.boolean()).map(
      ([x, axes, keepdim]): OpCase => ({
        label: `${name}(${fmt(s)}, axes=${JSON.stringify(axes)}, keepdim=${keepdim})`,
        inputs: [x],
        f: (t) => ops[name](t!, axes, keepdim),
      }),
    ),
  );
}

// ---- shape ops -------------------------------------------------------------------------------------

/** A new shape for the same elements: x's axes shuffled, some neighbours merged, 1s inserted, maybe one -1. */
const reshapeCase: fc.Arbitrary<OpCase> = shapeArb().chain((s) =>
  fc
    .tuple(
      specArb(s, 'any'),
      fc.shuffledSubarray(s, { minLength: s.length, maxLength: s.length }),
      fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
      fc.integer({ min: 0, max: 2 }),
      fc.option(fc.nat()),
    )
    .map(([x, perm, merge, ones, inferAt]): OpCase => {
      const target: number[] = [];
      perm.forEach((d, i) => {
        if (i > 0 && merge[i - 1] === true) target[target.length - 1]! *= d;
        else target.push(d);
      });
      for (let k = 0; k < ones; k++) target.splice(k % (target.length + 1), 0, 1);
      if (inferAt !== null && target.length > 0) target[inferAt % target.length] = -1;
      return { label: `reshape(${fmt(s)}, ${fmt(target)})`, inputs: [x], f: (t) => ops.reshape(t!, target) };
    }),
);

/** broadcastTo from a shape derived from the target (leading axes dropped, axes set to 1). */
const broadcastToCase: fc.Arbitrary<OpCase> = fc
  .tuple(shapeArb(), fc.integer({ min: 0, max: 4 }), fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }))
  .chain(([out, drop, ones]) => {
    const from = deriveBroadcastable(out, drop, ones);
    return specArb(from, 'any').map((x): OpCase => ({ label: `broadcastTo(${fmt(from)}, ${fmt(out)})`, inputs: [x], f: (t) => ops.broadcastTo(t!, out) }));
  });

const permuteCase: fc.Arbitrary<OpCase> = shapeArb().chain((s) =>
  fc.tuple(specArb(s, 'any'), permutationArb(s.length)).map(
    ([x, p]): OpCase => ({ label: `permute(${fmt(s)}, ${fmt(p)})`, inputs: [x], f: (t) => ops.permute(t!, p) }),
  ),
);

const transposeCase: fc.Arbitrary<OpCase> = fc.oneof(
  shapeArb({ minRank: 1 }).chain((s) =>
    fc.tuple(specArb(s, 'any'), axisArb(s.length), axisArb(s.length)).map(
      ([x, d0, d1]): OpCase => ({ label: `transpose(${fmt(s)}, ${d0}, ${d1})`, inputs: [x], f: (t) => ops.transpose(t!, d0, d1) }),
    ),
  ),
  // The default swaps the last two axes, and leaves a vector or a scalar as it is.
  shapeArb().chain((s) => specArb(s, 'any').map((x): OpCase => ({ label: `transpose(${fmt(s)})`, inputs: [x], f: (t) => ops.transpose(t!) }))),
);

/** Random ranges, Python-style negative and out-of-range bounds included (they clamp), end omitted sometimes. */
const sliceCase: fc.Arbitrary<OpCase> = shapeArb({ minRank: 1 }).chain((s) =>
  axisArb(s.length).chain((axis) => {
    const len = s[axis < 0 ? axis + s.length : axis]!;
    return fc
      .tuple(specArb(s, 'any'), fc.integer({ min: -len - 1, max: len }), fc.option(fc.integer({ min: -len - 1, max: len + 1 })))
      .map(([x, start, end]): OpCase => ({
        label: `slice(${fmt(s)}, ${axis}, ${start}, ${end ?? 'undefined'})`,
        inputs: [x],
        f: (t) => ops.slice(t!, axis, start, end ?? undefined),
      }));
  }),
);

/** 2–3 tensors equal outside `axis`, each with its own length along it. */
const concatCase: fc.Arbitrary<OpCase> = shapeArb({ minRank: 1, maxDim: 4 }).chain((s) =>
  fc.tuple(axisArb(s.length), fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 3 })).chain(([axis, lens]) => {
    const ax = axis < 0 ? axis + s.length : axis;
    const shapes = lens.map((l) => s.map((d, i) => (i === ax ? l : d)));
    return fc.tuple(...shapes.map((sh) => specArb(sh, 'any'))).map(
      (xs): OpCase => ({
        label: `concat([${shapes.map(fmt).join(', ')}], ${axis})`,
        inputs: xs,
        f: (...ts) => ops.concat(ts, axis),
      }),
    );
  }),
);

/**
 * gather along the last non-trivial axis: x is [outer..., L, 1...]; k indices per outer position, with
 * repeats (k may exceed L).
 */
const gatherCase: fc.Arbitrary<OpCase> = fc
  .tuple(shapeArb({ minRank: 0, maxRank: 2 }), dimArb(5), fc.integer({ min: 0, max: 1 }), fc.integer({ min: 1, max: 4 }), fc.boolean())
  .chain(([outerShape, len, trailing, k, negAxis]) => {
    const s = [...outerShape, len, ...new Array<number>(trailing).fill(1)];
    const axis = negAxis ? outerShape.length - s.length : outerShape.length;
    const count = numel(outerShape) * k;
    return fc.tuple(specArb(s, 'any'), indicesArb(len, count, count)).map(
      ([x, index]): OpCase => ({ label: `gather(${fmt(s)}, ${axis}, ${fmt(index)})`, inputs: [x], f: (t) => ops.gather(t!, axis, index) }),
    );
  });

const indexSelectCase: fc.Arbitrary<OpCase> = shapeArb({ minRank: 1 }).chain((s) =>
  axisArb(s.length).chain((axis) => {
    const len = s[axis < 0 ? axis + s.length : axis]!;
    return fc.tuple(specArb(s, 'any'), indicesArb(len, 1, 6), fc.boolean()).map(
      ([x, index, typed]): OpCase => ({
        label: `indexSelect(${fmt(s)}, ${axis}, ${fmt(index)}${typed ? ' as Int32Array' : ''})`,
        inputs: [x],
        f: (t) => ops.indexSelect(t!, axis, typed ? Int32Array.from(index) : index),
      }),
    );
  }),
);

// ---- matmul ----------------------------------------------------------------------------------------

/**
 * Batched matmul with broadcast batch axes, in all four transpose combinations (a transposed operand is
 * stored with its last two axes swapped), sometimes with only one operand requiring grad.
 */
const matmulBatchedCase: fc.Arbitrary<OpCase> = fc
  .tuple(
    broadcastPairArb({ maxRank: 2, maxDim: 3 }),
    fc.integer({ min: 1, max: 4 }),
    fc.integer({ min: 1, max: 4 }),
    fc.integer({ min: 1, max: 4 }),
    fc.boolean(),
    fc.boolean(),
    fc.constantFrom<[boolean, boolean]>([true, true], [true, true], [true, false], [false, true]),
  )
  .chain(([[ba, bb], M, K, N, ta, tb, [ga, gb]]) => {
    const sa = [...ba, ...(ta ? [K, M] : [M, K])];
    const sb = [...bb, ...(tb ? [N, K] : [K, N])];
    return fc.tuple(specArb(sa, 'any', ga), specArb(sb, 'any', gb)).map(
      ([a, b]): OpCase => ({
        label: `matmul(${fmt(sa)}, ${fmt(sb)}, { transposeA: ${ta}, transposeB: ${tb} })`,
        inputs: [a, b],
        f: (x, y) => ops.matmul(x!, y!, { transposeA: ta, transposeB: tb }),
      }),
    );
  });

/** 1-D operands: vector·matrix (batched), matrix·vector (batched), vector·vector. */
const matmulVectorCase: fc.Arbitrary<OpCase> = fc
  .tuple(
    fc.constantFrom('vec-mat', 'mat-vec', 'vec-vec'),
    shapeArb({ maxRank: 2, maxDim: 3 }),
    fc.integer({ min: 1, max: 4 }),
    fc.integer({ min: 1, max: 4 }),
    fc.boolean(),
  )
  .chain(([kind, batch, K, MN, t]) => {
    let sa: Shape;
    let sb: Shape;
    let opts: { transposeA?: boolean; transposeB?: boolean } = {};
    if (kind === 'vec-mat') {
      sa = [K];
      sb = [...batch, ...(t ? [MN, K] : [K, MN])];
      opts = { transposeB: t };
    } else if (kind === 'mat-vec') {
      sa = [...batch, ...(t ? [K, MN] : [MN, K])];
      sb = [K];
      opts = { transposeA: t };
    } else {
      sa = [K];
      sb = [K];
    }
    return fc.tuple(specArb(sa, 'any'), specArb(sb, 'any')).map(
      ([a, b]): OpCase => ({ label: `matmul(${fmt(sa)}, ${fmt(sb)}, ${JSON.stringify(opts)})`, inputs: [a, b], f: (x, y) => ops.matmul(x!, y!, opts) }),
    );
  });

/** Large enough for the packed, register-tiled GEMM path (M, N ≥ 4/8 and M·N·K > 24³). */
const matmulPackedCase: fc.Arbitrary<OpCase> = fc
  .tuple(fc.integer({ min: 25, max: 33 }), fc.integer({ min: 24, max: 30 }), fc.integer({ min: 25, max: 31 }), fc.boolean(), fc.boolean())
  .chain(([M, K, N, ta, tb]) => {
    const sa = ta ? [K, M] : [M, K];
    const sb = tb ? [N, K] : [K, N];
    return fc.tuple(specArb(sa, 'any'), specArb(sb, 'any')).map(
      ([a, b]): OpCase => ({
        label: `matmul(${fmt(sa)}, ${fmt(sb)}, { transposeA: ${ta}, transposeB: ${tb} }) (packed kernel)`,
        inputs: [a, b],
        f: (x, y) => ops.matmul(x!, y!, { transposeA: ta, transposeB: tb }),
      }),
    );
  });

// ---- composites ------------------------------------------------------------------------------------

/**
 * `outputCarriesShift`: the output keeps the logits' offset (logSumExp ≈ 30 + O(1)). The numeric side of
 * gradCheck differentiates Σ w·y, whose rounding (~1e-16·Σ|y|, with Σ|y| up to ~4000 here) divided by
 * 2·eps is up to ~1e-7 in absolute terms, above the default atol 1e-8: such cases use atol 1e-6, i.e. the
 * directional derivative (O(1) softmax weights) must agree to 1e-6 absolute where it is below 1.
 */
function axisOpCase(
  name: string,
  fn: (x: Tensor, axis: number, keepdim: boolean) => Tensor,
  withKeepdim: boolean,
  outputCarriesShift: boolean,
): fc.Arbitrary<OpCase> {
  return shapeArb({ minRank: 1 }).chain((s) =>
    fc.tuple(specArb(s, 'wide'), axisArb(s.length), fc.boolean(), fc.constantFrom(0, 0, 30, -30)).map(
      ([x, axis, keepdim, shift]): OpCase => ({
        // A shift of ±30 moves the logits far from 0: the max-subtraction must keep exp in range.
        label: `${name}(${fmt(s)}${shift === 0 ? '' : ` shifted by ${shift}`}, ${axis}${withKeepdim ? `, keepdim=${keepdim}` : ''})`,
        inputs: [{ ...x, values: x.values.map((v) => v + shift) }],
        f: (t) => fn(t!, axis, withKeepdim && keepdim),
        ...(outputCarriesShift && shift !== 0 ? { tol: { atol: 1e-6 } } : {}),
      }),
    ),
  );
}

// ---- convolution and pooling -----------------------------------------------------------------------

/** A spatial argument as one number (when both axes agree and `single`) or as [h, w]. */
function pairArg(h: number, w: number, single: boolean): number | [number, number] {
  return h === w && single ? h : [h, w];
}

/**
 * conv2d over random N, groups, channels per group, kernel, stride, padding and dilation; H and W leave
 * 0..3 positions beyond the smallest input the dilated kernel fits in once padded. Sometimes no bias, a
 * bias without grad, or only one of x and weight requiring grad.
 */
export const conv2dCase: fc.Arbitrary<OpCase> = fc
  .record({
    N: fc.integer({ min: 1, max: 2 }),
    groups: fc.integer({ min: 1, max: 2 }),
    cg: fc.integer({ min: 1, max: 2 }),
    og: fc.integer({ min: 1, max: 2 }),
    k: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
    stride: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
    padding: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
    dilation: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
    spare: fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })),
    bias: fc.constantFrom('grad', 'grad', 'none', 'constant'),
    grads: fc.constantFrom<[boolean, boolean]>([true, true], [true, true], [true, false], [false, true]),
    single: fc.boolean(),
  })
  .chain((p) => {
    const [kh, kw] = p.k;
    const fit = (k: number, d: number, pad: number, spare: number): number => Math.max(1, d * (k - 1) + 1 - 2 * pad) + spare;
    const H = fit(kh, p.dilation[0], p.padding[0], p.spare[0]);
    const W = fit(kw, p.dilation[1], p.padding[1], p.spare[1]);
    const xs = [p.N, p.groups * p.cg, H, W];
    const ws = [p.groups * p.og, p.cg, kh, kw];
    const opts = {
      stride: pairArg(p.stride[0], p.stride[1], p.single),
      padding: pairArg(p.padding[0], p.padding[1], p.single),
      dilation: pairArg(p.dilation[0], p.dilation[1], p.single),
      groups: p.groups,
    };
    const specs = [specArb(xs, 'any', p.grads[0]), specArb(ws, 'any', p.grads[1])];
    if (p.bias !== 'none') specs.push(specArb([p.groups * p.og], 'any', p.bias === 'grad'));
    return fc.tuple(...specs).map(
      (inputs): OpCase => ({
        label: `conv2d(${fmt(xs)}, ${fmt(ws)}, ${p.bias === 'none' ? 'no bias' : `bias ${p.bias}`}, ${JSON.stringify(opts)})`,
        inputs,
        f: (x, w, b) => ops.conv2d(x!, w!, b, opts),
      }),
    );
  });

/**
 * maxPool2d / avgPool2d over random kernels, strides (sometimes the default, = kernel), padding up to half
 * the kernel and inputs with 0..3 positions to spare. Max pooling gets distinct values: no ties to break.
 */
function poolCase(name: 'maxPool2d' | 'avgPool2d'): fc.Arbitrary<OpCase> {
  return fc
    .record({
      N: fc.integer({ min: 1, max: 2 }),
      C: fc.integer({ min: 1, max: 2 }),
      k: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
      stride: fc.option(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }))),
      padding: fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 1 })),
      spare: fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })),
      countIncludePad: fc.boolean(),
      single: fc.boolean(),
    })
    .chain((p) => {
      const [kh, kw] = p.k;
      const ph = Math.min(p.padding[0], Math.floor(kh / 2));
      const pw = Math.min(p.padding[1], Math.floor(kw / 2));
      const xs = [p.N, p.C, Math.max(1, kh - 2 * ph) + p.spare[0], Math.max(1, kw - 2 * pw) + p.spare[1]];
      const kernel = pairArg(kh, kw, p.single);
      const stride = p.stride === null ? undefined : pairArg(p.stride[0], p.stride[1], p.single);
      const padding = pairArg(ph, pw, p.single);
      const args = `${JSON.stringify(kernel)}, ${JSON.stringify(stride)}, ${JSON.stringify(padding)}`;
      return specArb(xs, name === 'maxPool2d' ? 'distinct' : 'any').map(
        (x): OpCase =>
          name === 'maxPool2d'
            ? { label: `maxPool2d(${fmt(xs)}, ${args})`, inputs: [x], f: (t) => ops.maxPool2d(t!, kernel, stride, padding) }
            : {
                label: `avgPool2d(${fmt(xs)}, ${args}, countIncludePad=${p.countIncludePad})`,
                inputs: [x],
                f: (t) => ops.avgPool2d(t!, kernel, stride, padding, p.countIncludePad),
              },
      );
    });
}

/** Global average pooling of a 4-D [N,C,H,W] or 3-D [C,H,W] input, output size written as 1 or [1, 1]. */
const adaptiveAvgPool2dCase: fc.Arbitrary<OpCase> = fc
  .tuple(fc.array(dimArb(4), { minLength: 3, maxLength: 4 }), fc.constantFrom<(number | [number, number] | undefined)[]>(undefined, 1, [1, 1]))
  .chain(([s, size]) =>
    specArb(s, 'any').map((x): OpCase => ({ label: `adaptiveAvgPool2d(${fmt(s)}, ${JSON.stringify(size)})`, inputs: [x], f: (t) => ops.adaptiveAvgPool2d(t!, size) })),
  );

/** flatten with the defaults (startDim 1) or a random startDim ≤ endDim, either written negative. */
const flattenCase: fc.Arbitrary<OpCase> = fc.oneof(
  shapeArb({ minRank: 2 }).chain((s) =>
    specArb(s, 'any').map((x): OpCase => ({ label: `flatten(${fmt(s)})`, inputs: [x], f: (t) => ops.flatten(t!) })),
  ),
  shapeArb({ minRank: 1 }).chain((s) =>
    fc.tuple(specArb(s, 'any'), fc.integer({ min: 0, max: s.length - 1 }), fc.nat(), fc.boolean(), fc.boolean()).map(([x, a, span, negA, negB]): OpCase => {
      const b = a + (span % (s.length - a));
      const start = negA ? a - s.length : a;
      const end = negB ? b - s.length : b;
      return { label: `flatten(${fmt(s)}, ${start}, ${end})`, inputs: [x], f: (t) => ops.flatten(t!, start, end) };
    }),
  ),
);

// ---- the table -------------------------------------------------------------------------------------

// ---- recurrent cells -------------------------------------------------------------------------------

/**
 * The fused cell steps over N 1..3 and hidden sizes 1..9 (the SIMD kernels take 4 columns at a time:
 * this covers rows with no full group, full groups only, and tails), each optional input present or
 * absent (a zero state), and a random subset of the inputs (never none) requiring grad.
 */
const cellSizesArb = fc.record({ N: fc.integer({ min: 1, max: 3 }), H: fc.integer({ min: 1, max: 9 }) });

/** Specs for `shapes` with a random, non-empty subset requiring grad. */
function cellInputs(shapes: readonly (readonly number[])[]): fc.Arbitrary<TensorSpec[]> {
  return fc
    .tuple(fc.array(fc.constantFrom(true, true, false), { minLength: shapes.length, maxLength: shapes.length }), fc.nat({ max: shapes.length - 1 }))
    .chain(([flags, forced]) => fc.tuple(...shapes.map((s, i) => specArb(s, 'any', flags[i]! || i === forced))));
}

const lstmCellStateCase: fc.Arbitrary<OpCase> = fc.tuple(cellSizesArb, fc.boolean()).chain(([{ N, H }, withC]) =>
  cellInputs(withC ? [[N, 4 * H], [N, H]] : [[N, 4 * H]]).map(
    (inputs): OpCase => ({
      label: `lstmCellState([${N},${4 * H}], ${withC ? `[${N},${H}]` : 'null'})`,
      inputs,
      f: (z, c) => ops.lstmCellState(z!, withC ? c! : null),
    }),
  ),
);

const lstmCellOutputCase: fc.Arbitrary<OpCase> = cellSizesArb.chain(({ N, H }) =>
  cellInputs([[N, 4 * H], [N, H]]).map(
    (inputs): OpCase => ({ label: `lstmCellOutput([${N},${4 * H}], [${N},${H}])`, inputs, f: (z, c) => ops.lstmCellOutput(z!, c!) }),
  ),
);

const gruCellCase: fc.Arbitrary<OpCase> = fc
  .tuple(cellSizesArb, fc.constantFrom('rows', 'rows', 'row', 'none'), fc.boolean())
  .chain(([{ N, H }, gh, withH]) => {
    const shapes: number[][] = [[N, 3 * H]];
    if (gh !== 'none') shapes.push(gh === 'row' ? [3 * H] : [N, 3 * H]);
    if (withH) shapes.push([N, H]);
    const ghLabel = gh === 'none' ? 'null' : gh === 'row' ? `[${3 * H}]` : `[${N},${3 * H}]`;
    return cellInputs(shapes).map(
      (inputs): OpCase => ({
        label: `gruCell([${N},${3 * H}], ${ghLabel}, ${withH ? `[${N},${H}]` : 'null'})`,
        inputs,
        f: (...xs) => ops.gruCell(xs[0]!, gh === 'none' ? null : xs[1]!, withH ? xs[gh === 'none' ? 1 : 2]! : null),
      }),
    );
  });

export const OP_CASES: Record<string, fc.Arbitrary<OpCase>> = {
  add: binaryCase('add', ops.add, 'any', 'any'),
  sub: binaryCase('sub', ops.sub, 'any', 'any'),
  mul: binaryCase('mul', ops.mul, 'any', 'any'),
  div: binaryCase('div', ops.div, 'any', 'nonzero'),
  pow: powCase,
  neg: unaryCase('neg', ops.neg, 'any'),
  exp: unaryCase('exp', ops.exp, 'wide'),
  log: unaryCase('log', ops.log, 'positive'),
  sqrt: unaryCase('sqrt', ops.sqrt, 'positive'),
  abs: unaryCase('abs', ops.abs, 'distinct'),
  relu: unaryCase('relu', ops.relu, 'distinct'),
  sigmoid: unaryCase('sigmoid', ops.sigmoid, 'wide'),
  tanh: unaryCase('tanh', ops.tanh, 'wide'),
  clamp: clampCase,
  where: whereCase,
  sum: reduceCase('sum', 'any'),
  // Distinct values: no ties, so the maximum (and where its gradient goes) is stable under the FD step.
  max: reduceCase('max', 'distinct'),
  mean: reduceCase('mean', 'any'),
  reshape: reshapeCase,
  broadcastTo: broadcastToCase,
  permute: permuteCase,
  transpose: transposeCase,
  slice: sliceCase,
  concat: concatCase,
  gather: gatherCase,
  indexSelect: indexSelectCase,
  matmul: fc.oneof({ arbitrary: matmulBatchedCase, weight: 6 }, { arbitrary: matmulVectorCase, weight: 3 }, { arbitrary: matmulPackedCase, weight: 1 }),
  logSumExp: axisOpCase('logSumExp', (x, a, k) => ops.logSumExp(x, a, k), true, true),
  logSoftmax: axisOpCase('logSoftmax', (x, a) => ops.logSoftmax(x, a), false, false),
  softmax: axisOpCase('softmax', (x, a) => ops.softmax(x, a), false, false),
  conv2d: conv2dCase,
  maxPool2d: poolCase('maxPool2d'),
  avgPool2d: poolCase('avgPool2d'),
  adaptiveAvgPool2d: adaptiveAvgPool2dCase,
  flatten: flattenCase,
  lstmCellState: lstmCellStateCase,
  lstmCellOutput: lstmCellOutputCase,
  gruCell: gruCellCase,
};

// ---- running the cases -----------------------------------------------------------------------------

/**
 * The gradient property of one op: for random cases, reverse mode matches central differences in f64
 * (eps 1e-6, rtol 1e-6, gradCheck's default atol 1e-8 for derivatives near zero), along gradCheck's random
 * directions and output weights (seeded by fast-check so they vary per run).
 */
export function assertOpGrad(name: string, numRuns: number): void {
  const cases = OP_CASES[name];
  if (cases === undefined) throw new Error(`no case generator for op '${name}'`);
  fc.assert(
    fc.property(cases, seedArb, (c, seed) => {
      expectGrad(c.label, c.f, c.inputs.map((s) => fromSpec(s)), { seed, ...c.tol });
    }),
    { numRuns },
  );
}
