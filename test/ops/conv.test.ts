// Tests of src/ops/conv.ts with src/kernels/im2col.ts: gradient properties over random shapes, strides,
// paddings, dilations and groups; forward against a naive direct convolution; a hand-computed 1-channel 3×3
// convolution (values and gradients); the 1×1 and packed-GEMM paths; arena use; error messages.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { backward, overwriteNextGradient } from '../../src/autograd/engine.js';
import { DTypeError, ShapeError, ValueError } from '../../src/errors.js';
import * as ops from '../../src/ops/index.js';
import { Arena } from '../../src/tensor/arena.js';
import { type DType, type Tensor, tensor } from '../../src/tensor/tensor.js';
import { numel, specArb, valuesArb } from '../helpers/arbitraries.js';
import { expectClose, expectGrad, expectThrows, fromSpec, vals } from '../helpers/grad.js';
import { FAMILIES, assertOpGrad } from '../helpers/op-cases.js';

const f64 = (v: Parameters<typeof tensor>[0], requiresGrad = false): Tensor => tensor(v, { dtype: 'f64', requiresGrad });

describe('gradient properties (f64, eps 1e-6, rtol 1e-6)', () => {
  // Cases: N, groups, channels per group ∈ 1..2, kernel 1..3 per axis, stride 1..2, padding 0..2,
  // dilation 1..2 (each as a number or [h, w]), with/without bias, sometimes only x or only weight.
  for (const name of FAMILIES.conv) {
    test(`${name}: gradCheck`, () => assertOpGrad(name, 30));
  }

  test('the 1×1 path (the input is its own column matrix) and a size that takes the packed GEMM', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(
          { xs: [2, 4, 3, 5], ws: [6, 2, 1, 1], groups: 2, stride: 1, padding: 0 },
          { xs: [2, 6, 7, 7], ws: [8, 6, 3, 3], groups: 1, stride: 1, padding: 1 },
          { xs: [1, 4, 9, 8], ws: [12, 2, 3, 2], groups: 2, stride: [2, 1] as [number, number], padding: [1, 0] as [number, number] },
        ),
        fc.nat(),
        (c, seed) => {
          const inputs = fc.sample(fc.tuple(specArb(c.xs), specArb(c.ws), specArb([c.ws[0]!])), { numRuns: 1, seed })[0]!;
          const opts = { groups: c.groups, stride: c.stride, padding: c.padding };
          expectGrad(`conv2d(${c.xs}, ${c.ws}, ${JSON.stringify(opts)})`, (x, w, b) => ops.conv2d(x!, w!, b, opts), inputs.map((s) => fromSpec(s)), { seed });
        },
      ),
      { numRuns: 6 },
    );
  });
});

/** Direct convolution from the definition, one output at a time (PyTorch's cross-correlation). */
function naiveConv(
  x: number[], xs: number[], w: number[], ws: number[], b: number[] | null,
  [sh, sw]: number[], [ph, pw]: number[], [dh, dw]: number[], groups: number,
): { values: number[]; shape: number[] } {
  const [N, C, H, W] = xs as [number, number, number, number];
  const [O, Cg, kh, kw] = ws as [number, number, number, number];
  const oh = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  const Og = O / groups;
  const out: number[] = [];
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          let s = b === null ? 0 : b[o]!;
          const g = Math.floor(o / Og);
          for (let c = 0; c < Cg; c++)
            for (let i = 0; i < kh; i++)
              for (let j = 0; j < kw; j++) {
                const iy = oy * sh - ph + i * dh;
                const ix = ox * sw - pw + j * dw;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                s += x[((n * C + g * Cg + c) * H + iy) * W + ix]! * w[((o * Cg + c) * kh + i) * kw + j]!;
              }
          out.push(s);
        }
  return { values: out, shape: [N, O, oh, ow] };
}

describe('weight gradient in place', () => {
  test('a weight whose .grad is marked to be overwritten gets the same gradient written into it, in both GEMM orientations', () => {
    for (const ws of [[16, 1, 3, 3], [3, 4, 3, 3]]) {
      // K < Og (9 taps, 16 filters) sums dWᵀ in scratch and transposes; K ≥ Og writes dW directly.
      const wave = (n: number, seed: number): number[] => Array.from({ length: n }, (_, i) => Math.sin(seed * 1.3 + i * 0.7));
      const xs = [2, ws[1]!, 6, 5];
      const x = tensor(wave(numel(xs), 3), { shape: xs, dtype: 'f64' });
      const grads = [false, true].map((marked) => {
        const w = tensor(wave(numel(ws), 4), { shape: ws, dtype: 'f64', requiresGrad: true });
        w.grad = tensor(new Array<number>(numel(ws)).fill(marked ? Number.NaN : 0), { shape: ws, dtype: 'f64' });
        if (marked) overwriteNextGradient(w.grad);
        const buffer = w.grad;
        ops.sum(ops.mul(ops.conv2d(x, w, null, { padding: 1 }), 2)).backward();
        expect(w.grad).toBe(buffer);
        return vals(w.grad);
      });
      expect(grads[1]).toEqual(grads[0]);
    }
  });
});

describe('forward equals a direct convolution', () => {
  // Up to 8 channels per group and 12×12 inputs, so both GEMM paths (direct loops and packed panels) run.
  const geometry = fc
    .record({
      N: fc.integer({ min: 1, max: 3 }),
      groups: fc.integer({ min: 1, max: 3 }),
      cg: fc.integer({ min: 1, max: 8 }),
      og: fc.integer({ min: 1, max: 8 }),
      k: fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })),
      stride: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
      padding: fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })),
      dilation: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
      size: fc.tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 })),
      bias: fc.boolean(),
      dtype: fc.constantFrom<DType>('f64', 'f32'),
    })
    .filter((p) => p.dilation[0] * (p.k[0] - 1) + 1 <= p.size[0] + 2 * p.padding[0] && p.dilation[1] * (p.k[1] - 1) + 1 <= p.size[1] + 2 * p.padding[1]);

  test('random N, channels, groups, kernel, stride, padding, dilation; f64 to 1e-12, f32 to 1e-5', () => {
    fc.assert(
      fc.property(
        geometry.chain((p) => {
          const xs = [p.N, p.groups * p.cg, ...p.size];
          const ws = [p.groups * p.og, p.cg, ...p.k];
          return fc.tuple(fc.constant(p), valuesArb(numel(xs)), valuesArb(numel(ws)), valuesArb(ws[0]!)).map(([q, x, w, b]) => ({ q, xs, ws, x, w, b }));
        }),
        ({ q, xs, ws, x, w, b }) => {
          const round = q.dtype === 'f32' ? Math.fround : (v: number): number => v;
          const [xr, wr, br] = [x.map(round), w.map(round), b.map(round)];
          const want = naiveConv(xr, xs, wr, ws, q.bias ? br : null, q.stride, q.padding, q.dilation, q.groups);
          const y = ops.conv2d(
            tensor(xr, { shape: xs, dtype: q.dtype }),
            tensor(wr, { shape: ws, dtype: q.dtype }),
            q.bias ? tensor(br, { shape: [ws[0]!], dtype: q.dtype }) : undefined,
            { stride: q.stride, padding: q.padding, dilation: q.dilation, groups: q.groups },
          );
          expect(y.shape).toEqual(want.shape);
          expect(y.dtype).toBe(q.dtype);
          // f32: one rounding of a dot product of up to 8·16 terms of size ≤ 4 (the GEMM sums in f64).
          const [rtol, atol] = q.dtype === 'f64' ? [1e-12, 1e-12] : [1e-5, 1e-5];
          expectClose(`conv2d(${xs}, ${ws}, ${JSON.stringify(q)})`, y.data, want.values, rtol, atol);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('golden: a 1-channel 3×3 convolution worked by hand', () => {
  // x[i][j] = 4i + j + 1 (1..16), kernel k below. Without padding, output (oy, ox) is
  //   Σ k[i][j]·(4(oy+i) + (ox+j) + 1) = 42 + (4·oy + ox)·Σk with Σk = 7 and
  //   42 = 1·1 + 2·2 + 0·3 + 0·5 + 1·6 − 1·7 + 3·9 + 0·10 + 1·11.
  const X = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]];
  const K = [[1, 2, 0], [0, 1, -1], [3, 0, 1]];
  const input = (): Tensor => f64([[X]], true);
  const kernel = (): Tensor => f64([[K]], true);

  test('no padding, stride 1: [[42, 49], [70, 77]]', () => {
    const y = ops.conv2d(input(), kernel());
    expect(y.shape).toEqual([1, 1, 2, 2]);
    expect(vals(y)).toEqual([42, 49, 70, 77]);
  });

  test('gradients with a seed of ones: dW is the sum of each kernel tap\'s four inputs, dx counts the taps over each pixel', () => {
    const x = input();
    const w = kernel();
    const b = f64([0.5], true);
    const y = ops.conv2d(x, w, b);
    expect(vals(y)).toEqual([42.5, 49.5, 70.5, 77.5]);
    backward(y, f64([[[[1, 1], [1, 1]]]]));
    // dW[i][j] = x[i][j] + x[i][j+1] + x[i+1][j] + x[i+1][j+1] = 4·x[i][j] + 10
    expect(vals(w.grad)).toEqual([14, 18, 22, 30, 34, 38, 46, 50, 54]);
    // dx[r][c] = Σ k[r − oy][c − ox] over the windows (oy, ox) covering (r, c); the entries sum to 4·Σk = 28.
    expect(vals(x.grad)).toEqual([1, 3, 2, 0, 1, 4, 2, -1, 3, 4, 1, 0, 3, 3, 1, 1]);
    expect(vals(b.grad)).toEqual([4]);
  });

  test('padding 1, stride 2: windows start at (−1, −1); out-of-range taps read 0', () => {
    // (0,0): k11·1 + k12·2 + k21·5 + k22·6 = 1 − 2 + 0 + 6 = 5
    // (0,1): k10·2 + k11·3 + k12·4 + k20·6 + k21·7 + k22·8 = 0 + 3 − 4 + 18 + 0 + 8 = 25
    // (1,0): k01·5 + k02·6 + k11·9 + k12·10 + k21·13 + k22·14 = 10 + 0 + 9 − 10 + 0 + 14 = 23
    // (1,1): the full window at (1,1) = 42 + 5·7 = 77
    const y = ops.conv2d(input(), kernel(), null, { stride: 2, padding: 1 });
    expect(vals(y)).toEqual([5, 25, 23, 77]);
  });

  test('dilation 2 on a 5×5 input reads the corners and edge midpoints: one output', () => {
    const x5 = Array.from({ length: 5 }, (_, i) => Array.from({ length: 5 }, (_, j) => 5 * i + j + 1));
    // taps at rows/cols 0, 2, 4: Σ k[i][j]·x5[2i][2j] = 1·1 + 2·3 + 0·5 + 0·11 + 1·13 − 1·15 + 3·21 + 0·23 + 1·25 = 93
    expect(vals(ops.conv2d(f64([[x5]]), kernel(), null, { dilation: 2 }))).toEqual([93]);
  });
});

describe('memory', () => {
  test('forward and backward take their temporaries from the active arena: a second step grows nothing', () => {
    const arena = new Arena(1 << 16);
    const w = tensor(Array.from({ length: 8 * 4 * 9 }, (_, i) => Math.sin(i)), { shape: [8, 4, 3, 3], requiresGrad: true });
    const b = tensor(new Array(8).fill(0.1), { requiresGrad: true });
    const step = (): void =>
      arena.step(() => {
        const x = tensor(Array.from({ length: 2 * 4 * 10 * 10 }, (_, i) => Math.cos(i)), { shape: [2, 4, 10, 10], requiresGrad: true });
        ops.sum(ops.conv2d(x, w, b, { padding: 1 })).backward();
      });
    step();
    step(); // the first reset grew the buffer to what step 1 needed
    const before = arena.stats();
    step();
    const after = arena.stats();
    expect(after.grows).toBe(before.grows);
    expect(after.capacityBytes).toBe(before.capacityBytes);
    expect(after.usedBytes).toBe(before.usedBytes);
    // The scratch columns ([36, 100] per call) are among what the step took from the arena.
    expect(after.usedBytes).toBeGreaterThan(36 * 100 * 4);
  });
});

describe('bad input fails before any compute, naming the op and both shapes', () => {
  const x = (s: number[]): Tensor => tensor(new Array(numel(s)).fill(0), { shape: s });
  test('kernel larger than the padded input', () => {
    expectThrows(() => ops.conv2d(x([1, 1, 4, 4]), x([1, 1, 5, 5])), ShapeError,
      'conv2d: kernel 5×5 (dilation 1) does not fit the padded input 4×4 (input [1,1,4,4], padding 0)');
    expectThrows(() => ops.conv2d(x([1, 1, 4, 6]), x([1, 1, 3, 3]), null, { dilation: [2, 1], padding: [0, 1] }), ShapeError,
      'conv2d: kernel 3×3 (dilation [2,1]) does not fit the padded input 4×8 (input [1,1,4,6], padding [0,1])');
  });
  test('channels that do not divide by groups', () => {
    expectThrows(() => ops.conv2d(x([1, 3, 5, 5]), x([4, 1, 3, 3]), null, { groups: 2 }), ShapeError,
      'conv2d: input channels 3 do not divide by groups 2 (input [1,3,5,5], weight [4,1,3,3])');
    expectThrows(() => ops.conv2d(x([1, 4, 5, 5]), x([3, 2, 3, 3]), null, { groups: 2 }), ShapeError,
      'conv2d: output channels 3 do not divide by groups 2 (input [1,4,5,5], weight [3,2,3,3])');
  });
  test("input channels differ from the weight's inC·groups", () => {
    expectThrows(() => ops.conv2d(x([2, 3, 8, 8]), x([16, 1, 3, 3])), ShapeError,
      'conv2d: input [2,3,8,8] has 3 channels, weight [16,1,3,3] expects 1 (weight.shape[1] 1 × groups 1)');
    expectThrows(() => ops.conv2d(x([2, 4, 8, 8]), x([4, 1, 3, 3]), null, { groups: 2 }), ShapeError,
      'conv2d: input [2,4,8,8] has 4 channels, weight [4,1,3,3] expects 2 (weight.shape[1] 1 × groups 2)');
  });
  test('non-4-D input or weight, a bias of the wrong size, mixed dtypes', () => {
    expectThrows(() => ops.conv2d(x([3, 8, 8]), x([4, 3, 3, 3])), ShapeError, 'conv2d: input must be 4-D [N,C,H,W] (got [3,8,8])');
    expectThrows(() => ops.conv2d(x([1, 3, 8, 8]), x([4, 3, 3])), ShapeError, 'conv2d: weight must be 4-D [outC,inC/groups,kh,kw] (got [4,3,3])');
    expectThrows(() => ops.conv2d(x([1, 3, 8, 8]), x([4, 3, 3, 3]), x([3])), ShapeError, 'conv2d: bias has shape [3], expected [4] for weight [4,3,3,3]');
    expectThrows(() => ops.conv2d(x([1, 3, 8, 8]), f64(new Array(4 * 27).fill(0))), DTypeError, "conv2d: dtypes differ (f32 and f64); convert with .clone('f32')");
  });
  test('bad stride, padding, dilation or groups', () => {
    const a = x([1, 1, 4, 4]);
    const k = x([1, 1, 3, 3]);
    expectThrows(() => ops.conv2d(a, k, null, { stride: 0 }), ValueError, 'conv2d: stride must be a positive integer or a pair [h, w] of them (got 0)');
    expectThrows(() => ops.conv2d(a, k, null, { stride: [1, 1.5] }), ValueError, 'conv2d: stride must be a positive integer or a pair [h, w] of them (got [1,1.5])');
    expectThrows(() => ops.conv2d(a, k, null, { padding: -1 }), ValueError, 'conv2d: padding must be a non-negative integer or a pair [h, w] of them (got -1)');
    expectThrows(() => ops.conv2d(a, k, null, { dilation: [0, 1] }), ValueError, 'conv2d: dilation must be a positive integer or a pair [h, w] of them (got [0,1])');
    expectThrows(() => ops.conv2d(a, k, null, { groups: 0 }), ValueError, 'conv2d: groups must be a positive integer (got 0)');
  });
});
