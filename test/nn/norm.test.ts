// Tests of src/nn/norm.ts: BatchNorm1d/2d and LayerNorm against arithmetic written out by hand, running
// statistics after two batches (momentum, unbiased variance), eval mode, PyTorch's state-dict names and
// order, gradCheck through the batch statistics (f64), and messages.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { DTypeError, ShapeError, ValueError } from '../../src/errors.js';
import { Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { BatchNorm1d, BatchNorm2d, LayerNorm } from '../../src/nn/norm.js';
import { sum } from '../../src/ops/reduce.js';
import { permute, reshape } from '../../src/ops/shape.js';
import { mul } from '../../src/ops/elementwise.js';
import { type Tensor, tensor } from '../../src/tensor/tensor.js';
import { seedArb, specArb } from '../helpers/arbitraries.js';
import { expectClose, expectGrad, expectThrows, fromSpec, vals } from '../helpers/grad.js';

const EPS = 1e-5;
const f64 = (v: Parameters<typeof tensor>[0]): Tensor => tensor(v, { dtype: 'f64' });
/** A few ulps: the library and the hand formula may round the same arithmetic in another order. */
const ULPS = 8 * Number.EPSILON;

describe('BatchNorm1d: a 2-feature batch of 3, by hand', () => {
  // Feature 0 holds 1, 2, 3:  mean 2, deviations −1, 0, 1, Σd² = 2  → biased var 2/3, unbiased 2/2 = 1.
  // Feature 1 holds 2, 4, 9:  mean 5, deviations −3, −1, 4, Σd² = 26 → biased var 26/3, unbiased 26/2 = 13.
  const batch1 = [[1, 2], [2, 4], [3, 9]];
  const dev = [[-1, -3], [0, -1], [1, 4]];
  const biased = [2 / 3, 26 / 3];
  const unbiased1 = [1, 13];
  // Second batch. Feature 0: 0, 4, 2 → mean 2, Σd² = 4 + 4 + 0 = 8, unbiased 4.
  //               Feature 1: 1, 1, 4 → mean 2, Σd² = 1 + 1 + 4 = 6, unbiased 3.
  const batch2 = [[0, 1], [4, 1], [2, 4]];
  const mean1 = [2, 5];
  const mean2 = [2, 2];
  const unbiased2 = [4, 3];
  const w = [2, 0.5];
  const b = [1, -1];

  function layer(opts: ConstructorParameters<typeof BatchNorm1d>[1] = {}): BatchNorm1d {
    const bn = new BatchNorm1d(2, { dtype: 'f64', ...opts });
    if (bn.affine) bn.weight!.data.set(w);
    if (bn.affine) bn.bias!.data.set(b);
    return bn;
  }

  test('training output: (x − mean)/√(biased var + eps)·weight + bias', () => {
    const y = layer().forward(f64(batch1));
    expect(y.shape).toEqual([3, 2]);
    const want = dev.flatMap((row) => row.map((d, c) => (d / Math.sqrt(biased[c]! + EPS)) * w[c]! + b[c]!));
    expectClose('BatchNorm1d', vals(y), want, ULPS, 0);
  });

  test('running stats after two batches: m·batch + (1 − m)·running with the unbiased variance, m = 0.1', () => {
    const bn = layer();
    bn.forward(f64(batch1));
    // After batch 1, from running_mean = 0 and running_var = 1:
    const rm1 = mean1.map((m) => 0.1 * m + 0.9 * 0);
    const rv1 = unbiased1.map((v) => 0.1 * v + 0.9 * 1);
    expectClose('running_mean after 1', vals(bn.runningMean!), rm1, ULPS, 0);
    expectClose('running_var after 1', vals(bn.runningVar!), rv1, ULPS, 0);
    expect(vals(bn.numBatchesTracked!)).toEqual([1]);
    bn.forward(f64(batch2));
    const rm2 = mean2.map((m, c) => 0.1 * m + 0.9 * rm1[c]!);
    const rv2 = unbiased2.map((v, c) => 0.1 * v + 0.9 * rv1[c]!);
    expectClose('running_mean after 2', vals(bn.runningMean!), rm2, ULPS, 0);
    expectClose('running_var after 2', vals(bn.runningVar!), rv2, ULPS, 0);
    expectClose('running_mean numbers', vals(bn.runningMean!), [0.38, 0.65], 1e-15, 0);
    expectClose('running_var numbers', vals(bn.runningVar!), [1.3, 2.28], 1e-15, 0);
    expect(bn.numBatchesTracked!.shape).toEqual([]);
    expect(vals(bn.numBatchesTracked!)).toEqual([2]);
  });

  test('momentum null: the cumulative average over the batches seen', () => {
    const bn = layer({ momentum: null });
    bn.forward(f64(batch1));
    bn.forward(f64(batch2));
    expectClose('running_mean', vals(bn.runningMean!), [(2 + 2) / 2, (5 + 2) / 2], ULPS, 0);
    expectClose('running_var', vals(bn.runningVar!), [(1 + 4) / 2, (13 + 3) / 2], ULPS, 0);
  });

  test('eval mode uses the running stats, leaves them alone, and still passes gradients to x and the affine params', () => {
    const bn = layer();
    bn.forward(f64(batch1));
    bn.forward(f64(batch2));
    const rm = vals(bn.runningMean!);
    const rv = vals(bn.runningVar!);
    bn.eval();
    const x = tensor([[1, -1], [0.5, 3]], { dtype: 'f64', requiresGrad: true });
    const y = bn.forward(x);
    const want = [[1, -1], [0.5, 3]].flatMap((row) => row.map((v, c) => ((v - rm[c]!) / Math.sqrt(rv[c]! + EPS)) * w[c]! + b[c]!));
    expectClose('eval', vals(y), want, ULPS, 0);
    expect(vals(bn.runningMean!)).toEqual(rm);
    expect(vals(bn.numBatchesTracked!)).toEqual([2]);
    sum(y).backward();
    expectClose('dy/dx', vals(x.grad), [0, 1].flatMap(() => w.map((wc, c) => wc / Math.sqrt(rv[c]! + EPS))), ULPS, 0);
    expect(vals(bn.bias!.grad)).toEqual([2, 2]);
    // eval with a single sample is fine (no batch statistics needed)
    expect(bn.forward(f64([[1, 2]])).shape).toEqual([1, 2]);
  });

  test('without running stats, eval mode normalises with the batch statistics too (as torch)', () => {
    const bn = layer({ trackRunningStats: false });
    bn.eval();
    const want = dev.flatMap((row) => row.map((d, c) => (d / Math.sqrt(biased[c]! + EPS)) * w[c]! + b[c]!));
    expectClose('no stats', vals(bn.forward(f64(batch1))), want, ULPS, 0);
  });

  test('gradients flow through the batch statistics: Σ y per channel is constant, so d(Σy)/dx = 0', () => {
    const x = tensor(batch1, { dtype: 'f64', requiresGrad: true });
    sum(layer().forward(x)).backward();
    for (const g of vals(x.grad)) expect(Math.abs(g)).toBeLessThan(1e-15);
  });
});

describe('BatchNorm over [N, C, L] and [N, C, H, W] equals BatchNorm1d over the channels-last rows', () => {
  test('same outputs and running stats (statistics per channel over every other axis)', () => {
    fc.assert(
      fc.property(
        fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })).filter(([n, , h, ww]) => n * h * ww > 1),
        fc.boolean(),
        ([n, c, h, ww], twoD) => {
          const shape = twoD ? [n, c, h, ww] : [n, c, h * ww];
          const xs = Array.from({ length: n * c * h * ww }, (_, i) => Math.sin(i * 1.7) * 2);
          const x = tensor(xs, { shape, dtype: 'f64' });
          const bn = twoD ? new BatchNorm2d(c, { dtype: 'f64' }) : new BatchNorm1d(c, { dtype: 'f64' });
          const ref = new BatchNorm1d(c, { dtype: 'f64' });
          for (const m of [bn, ref]) {
            m.weight!.data.set(Array.from({ length: c }, (_, i) => 1 + i));
            m.bias!.data.set(Array.from({ length: c }, (_, i) => -i));
          }
          const perm = twoD ? [0, 2, 3, 1] : [0, 2, 1];
          const rows = reshape(permute(x, perm), [-1, c]);
          const want = ref.forward(rows);
          const got = reshape(permute(bn.forward(x), perm), [-1, c]);
          expectClose('y', vals(got), vals(want), 1e-14, 1e-14);
          expectClose('running_mean', vals(bn.runningMean!), vals(ref.runningMean!), 1e-14, 1e-15);
          expectClose('running_var', vals(bn.runningVar!), vals(ref.runningVar!), 1e-14, 1e-15);
        },
      ),
      { numRuns: 30 },
    );
  });
});

/** The variance of each group of `values` taken as [outer, group] (for preconditions). */
function minGroupVariance(values: number[], groups: number[][]): number {
  return Math.min(
    ...groups.map((g) => {
      const m = g.reduce((a, i) => a + values[i]!, 0) / g.length;
      return g.reduce((a, i) => a + (values[i]! - m) ** 2, 0) / g.length;
    }),
  );
}

describe('gradCheck (f64, eps 1e-6, rtol 1e-6) through batch statistics and layer norm', () => {
  // A channel (or row) whose values nearly coincide makes 1/√(var + eps) steep enough for central
  // differences to lose their accuracy; such draws are skipped (var ≥ 0.05), not hidden behind a loose tolerance.
  test('BatchNorm1d / BatchNorm2d in training mode: x, weight, bias', () => {
    fc.assert(
      fc.property(
        fc
          .tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.constantFrom(2, 3, 4), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 }))
          .filter(([n, , r, h, w]) => n * (r >= 3 ? h : 1) * (r === 4 ? w : 1) > 1)
          .chain(([n, c, r, h, w]) => {
            const shape = r === 2 ? [n, c] : r === 3 ? [n, c, h] : [n, c, h, w];
            return fc.tuple(specArb(shape), specArb([c]), specArb([c]));
          }),
        seedArb,
        ([xs, ws, bs], seed) => {
          const [n, c] = xs.shape as [number, number];
          const inner = xs.shape.slice(2).reduce((a, d) => a * d, 1);
          const groups = Array.from({ length: c }, (_, ch) => Array.from({ length: n * inner }, (_, k) => Math.floor(k / inner) * c * inner + ch * inner + (k % inner)));
          fc.pre(minGroupVariance(xs.values, groups) >= 0.05);
          const bn = xs.shape.length === 4 ? new BatchNorm2d(c, { dtype: 'f64' }) : new BatchNorm1d(c, { dtype: 'f64' });
          bn.weight!.data.set(ws.values);
          bn.bias!.data.set(bs.values);
          expectGrad(`${bn.constructor.name} ${JSON.stringify(xs.shape)}`, (x) => bn.forward(x!), [fromSpec(xs), bn.weight!, bn.bias!], { seed });
        },
      ),
      { numRuns: 40 },
    );
  });

  test('BatchNorm1d in eval mode (running stats are constants)', () => {
    fc.assert(
      fc.property(specArb([3, 2]), seedArb, (xs, seed) => {
        const bn = new BatchNorm1d(2, { dtype: 'f64' });
        bn.runningMean!.data.set([0.5, -1]);
        bn.runningVar!.data.set([2, 0.3]);
        bn.eval();
        expectGrad('BatchNorm1d eval', (x) => bn.forward(x!), [fromSpec(xs), bn.weight!, bn.bias!], { seed });
      }),
      { numRuns: 10 },
    );
  });

  test('LayerNorm over the last one or two axes: x, weight, bias', () => {
    fc.assert(
      fc.property(
        fc
          .tuple(fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 2 }), fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 2 }))
          .filter(([, norm]) => norm.reduce((a, d) => a * d, 1) >= 2)
          .chain(([lead, norm]) => fc.tuple(fc.constant(norm), specArb([...lead, ...norm]), specArb(norm), specArb(norm))),
        seedArb,
        ([norm, xs, ws, bs], seed) => {
          const k = norm.reduce((a, d) => a * d, 1);
          const rows = xs.values.length / k;
          fc.pre(minGroupVariance(xs.values, Array.from({ length: rows }, (_, r) => Array.from({ length: k }, (_, i) => r * k + i))) >= 0.05);
          const ln = new LayerNorm(norm, { dtype: 'f64' });
          ln.weight!.data.set(ws.values);
          ln.bias!.data.set(bs.values);
          expectGrad(`LayerNorm ${JSON.stringify(norm)} on ${JSON.stringify(xs.shape)}`, (x) => ln.forward(x!), [fromSpec(xs), ln.weight!, ln.bias!], { seed });
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('LayerNorm by hand', () => {
  test('rows [1, 2, 3] and [2, 4, 9]: (x − mean)/√(biased var + eps)·weight + bias', () => {
    // Row 0: mean 2, deviations −1, 0, 1, var (1 + 0 + 1)/3 = 2/3.  Row 1: mean 5, deviations −3, −1, 4, var 26/3.
    const ln = new LayerNorm(3, { dtype: 'f64' });
    const w = [1, 2, -1];
    const b = [0, 0.5, 1];
    ln.weight!.data.set(w);
    ln.bias!.data.set(b);
    const y = ln.forward(f64([[1, 2, 3], [2, 4, 9]]));
    const want = [
      [[-1, 0, 1], 2 / 3],
      [[-3, -1, 4], 26 / 3],
    ].flatMap(([d, v]) => (d as number[]).map((di, i) => (di / Math.sqrt((v as number) + EPS)) * w[i]! + b[i]!));
    expectClose('LayerNorm', vals(y), want, ULPS, 0);
  });

  test('normalizedShape [2, 2] normalises each sample over its last two axes; default weight 1, bias 0', () => {
    // Sample 0: 1, 2, 3, 4 → mean 2.5, deviations −1.5, −0.5, 0.5, 1.5, var (2.25·2 + 0.25·2)/4 = 1.25.
    // Sample 1: 0, 0, 0, 8 → mean 2, deviations −2, −2, −2, 6, var (4·3 + 36)/4 = 12.
    const y = new LayerNorm([2, 2], { dtype: 'f64' }).forward(f64([[[1, 2], [3, 4]], [[0, 0], [0, 8]]]));
    expect(y.shape).toEqual([2, 2, 2]);
    const want = [...[-1.5, -0.5, 0.5, 1.5].map((d) => d / Math.sqrt(1.25 + EPS)), ...[-2, -2, -2, 6].map((d) => d / Math.sqrt(12 + EPS))];
    expectClose('LayerNorm [2,2]', vals(y), want, ULPS, 0);
  });

  test('same in training and eval (no running state), and f32 works', () => {
    const ln = new LayerNorm(4);
    const x = tensor([[1, 2, 3, 5]]);
    const a = vals(ln.forward(x));
    ln.eval();
    expect(vals(ln.forward(x))).toEqual(a);
    expect(ln.forward(x).dtype).toBe('f32');
  });
});

describe('state dict: names, shapes and order as PyTorch', () => {
  test('BatchNorm1d: weight, bias, running_mean, running_var, num_batches_tracked (0-d)', () => {
    // torch: nn.Sequential(nn.Linear(4,3), nn.BatchNorm1d(3), nn.ReLU()).state_dict()
    const m = new Sequential(new Linear(4, 3), new BatchNorm1d(3), new ReLU());
    const sd = m.stateDict();
    expect(Object.keys(sd)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked']);
    expect(Object.values(sd).map((t) => t.shape)).toEqual([[3, 4], [3], [3], [3], [3], [3], []]);
    expect(m.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias']);
    expect(m.namedBuffers().every(([, t]) => !t.requiresGrad)).toBe(true);
    const bn = m.layers[1] as BatchNorm1d;
    expect([vals(bn.weight!), vals(bn.bias!), vals(bn.runningMean!), vals(bn.runningVar!), vals(bn.numBatchesTracked!)]).toEqual([[1, 1, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1], [0]]);
  });

  test('BatchNorm2d options: no affine → buffers only; no running stats → params only', () => {
    expect(Object.keys(new BatchNorm2d(2, { affine: false }).stateDict())).toEqual(['running_mean', 'running_var', 'num_batches_tracked']);
    expect(Object.keys(new BatchNorm2d(2, { trackRunningStats: false }).stateDict())).toEqual(['weight', 'bias']);
    expect(Object.keys(new LayerNorm([2, 3]).stateDict())).toEqual(['weight', 'bias']);
    expect(new LayerNorm([2, 3]).weight!.shape).toEqual([2, 3]);
    expect(Object.keys(new LayerNorm(3, { elementwiseAffine: false }).stateDict())).toEqual([]);
    expect(Object.keys(new LayerNorm(3, { bias: false }).stateDict())).toEqual(['weight']);
  });

  test('loadStateDict restores the running stats with the parameters', () => {
    const a = new BatchNorm1d(2, { dtype: 'f64' });
    a.forward(f64([[1, 2], [3, 5]]));
    const b = new BatchNorm1d(2, { dtype: 'f64' });
    b.loadStateDict(a.stateDict());
    expect(vals(b.runningMean!)).toEqual(vals(a.runningMean!));
    expect(vals(b.runningVar!)).toEqual(vals(a.runningVar!));
    expect(vals(b.numBatchesTracked!)).toEqual([1]);
    a.eval();
    b.eval();
    expect(vals(b.forward(f64([[0, 1]])))).toEqual(vals(a.forward(f64([[0, 1]]))));
  });

  test('train() and eval() switch the statistics; the model trains end to end', () => {
    const m = new Sequential(new Linear(2, 3, { dtype: 'f64' }), new BatchNorm1d(3, { dtype: 'f64' }), new ReLU());
    const x = f64([[1, 2], [3, 4], [0, 1]]);
    const before = vals((m.layers[1] as BatchNorm1d).runningMean!);
    sum(mul(m.forward(x), 1)).backward();
    expect(m.parameters().every((p) => p.grad !== null)).toBe(true);
    expect(vals((m.layers[1] as BatchNorm1d).runningMean!)).not.toEqual(before);
    m.eval();
    const after = vals((m.layers[1] as BatchNorm1d).runningMean!);
    m.forward(x);
    expect(vals((m.layers[1] as BatchNorm1d).runningMean!)).toEqual(after);
  });

  test('toString reads like torch', () => {
    expect(new BatchNorm1d(3).toString()).toBe('BatchNorm1d(3, eps=0.00001, momentum=0.1, affine=true, track_running_stats=true)');
    expect(new LayerNorm([2, 3]).toString()).toBe('LayerNorm([2,3], eps=0.00001, elementwise_affine=true)');
  });
});

describe('messages', () => {
  test('wrong rank or channel count names the layer and both shapes', () => {
    expectThrows(() => new BatchNorm1d(3).forward(tensor([[1, 2, 3, 4]])), ShapeError, 'BatchNorm1d(3): input has shape [1,4], expected [N, 3] or [N, 3, L]');
    expectThrows(() => new BatchNorm1d(3).forward(tensor([1, 2, 3])), ShapeError, 'BatchNorm1d(3): input has shape [3], expected [N, 3] or [N, 3, L]');
    expectThrows(() => new BatchNorm1d(2).forward(tensor([[[[1, 2]], [[3, 4]]]])), ShapeError, 'BatchNorm1d(2): input has shape [1,2,1,2], expected [N, 2] or [N, 2, L]');
    expectThrows(() => new BatchNorm2d(3).forward(tensor([[1, 2, 3]])), ShapeError, 'BatchNorm2d(3): input has shape [1,3], expected [N, 3, H, W]');
    expectThrows(() => new BatchNorm2d(3).forward(tensor([[[[1]], [[2]]]])), ShapeError, 'BatchNorm2d(3): input has shape [1,2,1,1], expected [N, 3, H, W]');
    expectThrows(() => new LayerNorm(4).forward(tensor([[1, 2, 3]])), ShapeError, 'LayerNorm([4]): input has shape [1,3], expected [..., 4]');
    expectThrows(() => new LayerNorm([2, 3]).forward(tensor([1, 2, 3])), ShapeError, 'LayerNorm([2,3]): input has shape [3], expected [..., 2, 3]');
  });

  test('one value per channel in training is refused, as torch', () => {
    expectThrows(() => new BatchNorm1d(2).forward(tensor([[1, 2]])), ValueError, 'BatchNorm1d(2): expected more than 1 value per channel when training (input shape [1,2])');
    expectThrows(() => new BatchNorm2d(1).forward(tensor([[[[1]]]])), ValueError, 'BatchNorm2d(1): expected more than 1 value per channel when training (input shape [1,1,1,1])');
  });

  test('bad options', () => {
    expectThrows(() => new BatchNorm1d(0), ValueError, 'BatchNorm1d: numFeatures must be an integer >= 1 (got 0)');
    expectThrows(() => new BatchNorm2d(2, { eps: 0 }), ValueError, 'BatchNorm2d: eps must be > 0 (got 0)');
    expectThrows(() => new BatchNorm1d(2, { momentum: 1.5 }), ValueError, 'BatchNorm1d: momentum must be a number in [0, 1] or null (got 1.5)');
    expectThrows(() => new BatchNorm1d(2, { dtype: 'f16' as never }), DTypeError, "BatchNorm1d: dtype must be 'f32' or 'f64' (got \"f16\")");
    expectThrows(() => new LayerNorm([]), ValueError, 'LayerNorm: normalizedShape must be a positive integer or a non-empty array of them (got [])');
    expectThrows(() => new LayerNorm(0), ValueError, 'LayerNorm: normalizedShape must be a positive integer or a non-empty array of them (got 0)');
  });
});
