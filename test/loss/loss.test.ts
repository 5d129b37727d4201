// Tests of src/loss/index.ts: golden values (hand-computed), stability at extreme logits (exact 3999, no
// NaN anywhere at ±1e4), label smoothing, gradient properties for every loss, and error messages.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { ShapeError, ValueError } from '../../src/errors.js';
import { binaryCrossEntropyWithLogits, crossEntropy, mseLoss, nllLoss, softplus, type Reduction } from '../../src/loss/index.js';
import { type DType, Tensor, tensor } from '../../src/tensor/tensor.js';
import { indicesArb, seedArb, specArb } from '../helpers/arbitraries.js';
import { expectGrad, expectThrows, fromSpec, vals } from '../helpers/grad.js';

const f64 = (v: Parameters<typeof tensor>[0], requiresGrad = false): Tensor => tensor(v, { dtype: 'f64', requiresGrad });

/** log Σ exp, directly (fine for the small logits of golden values). */
const lse = (xs: number[]): number => Math.log(xs.reduce((s, v) => s + Math.exp(v), 0));

describe('crossEntropy', () => {
  test('logits [[1,1,1,4000]], target [0]: exactly 3999 in f64, no overflow; gradient softmax − onehot', () => {
    const x = f64([[1, 1, 1, 4000]], true);
    const l = crossEntropy(x, [0]);
    expect(l.item()).toBe(3999);
    l.backward();
    expect(vals(x.grad)).toEqual([-1, 0, 0, 1]);
  });

  test('the same in f32 is within 1e-6 relative of 3999', () => {
    const l = crossEntropy(tensor([[1, 1, 1, 4000]], { dtype: 'f32' }), [0]);
    expect(Math.abs(l.item() - 3999)).toBeLessThanOrEqual(3999 * 1e-6);
  });

  test('golden values for each reduction', () => {
    const logits = [[1, 2, 3], [0.5, -1, 0]];
    const targets = [2, 0];
    const each = logits.map((row, i) => lse(row) - row[targets[i]!]!);
    const none = vals(crossEntropy(f64(logits), targets, { reduction: 'none' }));
    each.forEach((v, i) => expect(none[i]).toBeCloseTo(v, 14));
    expect(crossEntropy(f64(logits), Int32Array.from(targets), { reduction: 'sum' }).item()).toBeCloseTo(each[0]! + each[1]!, 14);
    expect(crossEntropy(f64(logits), targets).item()).toBeCloseTo((each[0]! + each[1]!) / 2, 14);
  });

  test('label smoothing ε: (1−ε)·nll + ε·mean over classes of −log p (torch.nn.functional.cross_entropy)', () => {
    // logits [1,2,3], target 2, ε = 0.1: log p_c = x_c − lse; loss = 0.9·(lse − 3) + 0.1·(lse − (1+2+3)/3).
    const L = lse([1, 2, 3]);
    const want = 0.9 * (L - 3) + 0.1 * (L - 2);
    expect(crossEntropy(f64([[1, 2, 3]]), [2], { labelSmoothing: 0.1 }).item()).toBeCloseTo(want, 14);
    // ε = 1: the target is uniform, the loss is the mean of −log p.
    expect(crossEntropy(f64([[1, 2, 3]]), [2], { labelSmoothing: 1 }).item()).toBeCloseTo(L - 2, 14);
  });
});

describe('nllLoss, mseLoss, binaryCrossEntropyWithLogits: golden values', () => {
  test('nllLoss picks −input at the target', () => {
    const lp = f64([[-1, -2], [-3, -0.5]]);
    expect(nllLoss(lp, [1, 0]).item()).toBe(2.5);
    expect(nllLoss(lp, [1, 0], { reduction: 'sum' }).item()).toBe(5);
    expect(vals(nllLoss(lp, [1, 0], { reduction: 'none' }))).toEqual([2, 3]);
  });

  test('mseLoss', () => {
    expect(mseLoss(f64([1, 2, 3]), f64([1, 1, 1])).item()).toBe(5 / 3);
    expect(mseLoss(f64([[1, 2], [3, 4]]), f64([[0, 0], [0, 0]]), { reduction: 'sum' }).item()).toBe(30);
    expect(mseLoss(f64([1, -2]), f64([0, 0]), { reduction: 'none' }).toArray()).toEqual([1, 4]);
  });

  test('binaryCrossEntropyWithLogits = log(1+eˣ) − x·t', () => {
    const x = [0, 2, -3];
    const t = [1, 0, 0.25];
    const want = x.map((v, i) => Math.log1p(Math.exp(v)) - v * t[i]!);
    const got = vals(binaryCrossEntropyWithLogits(f64(x), f64(t), { reduction: 'none' }));
    want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 15));
    expect(binaryCrossEntropyWithLogits(f64([0]), f64([1])).item()).toBe(Math.LN2);
  });

  test('softplus is stable and its gradient is sigmoid', () => {
    expect(vals(softplus(f64([0, 1e4, -1e4, 30])))).toEqual([Math.LN2, 1e4, 0, 30 + Math.log1p(Math.exp(-30))]);
    const x = f64([0, 2], true);
    softplus(x).backward(f64([1, 1]));
    const g = vals(x.grad);
    expect(g[0]).toBe(0.5);
    expect(g[1]).toBeCloseTo(1 / (1 + Math.exp(-2)), 15);
  });
});

describe('no NaN at logits ±1e4, in values or gradients, in every loss and dtype', () => {
  const logits = [[1e4, -1e4, 0], [-1e4, -1e4, 1e4], [1e4, 1e4, 1e4]];
  const cases: [string, (x: Tensor, dtype: DType) => Tensor][] = [
    ['crossEntropy', (x) => crossEntropy(x, [1, 0, 2])],
    ['crossEntropy with labelSmoothing', (x) => crossEntropy(x, [1, 0, 2], { labelSmoothing: 0.2 })],
    ['nllLoss', (x) => nllLoss(x, [1, 0, 2])],
    ['mseLoss', (x, dtype) => mseLoss(x, tensor([[1, 0, 1], [0, 0, 1], [1, 1, 0]], { dtype }))],
    ['binaryCrossEntropyWithLogits', (x, dtype) => binaryCrossEntropyWithLogits(x, tensor([[1, 0, 1], [0, 0, 1], [1, 1, 0]], { dtype }))],
  ];
  for (const [name, loss] of cases) {
    for (const dtype of ['f32', 'f64'] as const) {
      test(`${name} (${dtype})`, () => {
        const x = tensor(logits, { dtype, requiresGrad: true });
        const l = loss(x, dtype);
        expect(Number.isFinite(l.item()), `value ${l.item()}`).toBe(true);
        l.backward();
        expect(vals(x.grad).every(Number.isFinite), `gradient ${vals(x.grad)}`).toBe(true);
      });
    }
  }
});

describe('gradient properties (f64, eps 1e-6, rtol 1e-6)', () => {
  const reductionArb = fc.constantFrom<Reduction[]>('mean', 'sum', 'none');

  /** Logits [N, C] with a target per row. */
  const classArb = fc
    .tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }))
    .chain(([n, c]) => fc.tuple(specArb([n, c], 'wide'), indicesArb(c, n, n), reductionArb));

  test('crossEntropy (label smoothing 0 or random)', () => {
    fc.assert(
      fc.property(classArb, fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1, noNaN: true })), seedArb, ([x, t, reduction], eps, seed) => {
        expectGrad(`crossEntropy([${x.shape}], ε=${eps}, ${reduction})`, (a) => crossEntropy(a!, t, { reduction, labelSmoothing: eps }), [fromSpec(x)], { seed });
      }),
      { numRuns: 40 },
    );
  });

  test('nllLoss', () => {
    fc.assert(
      fc.property(classArb, seedArb, ([x, t, reduction], seed) => {
        expectGrad(`nllLoss([${x.shape}], ${reduction})`, (a) => nllLoss(a!, t, { reduction }), [fromSpec(x)], { seed });
      }),
      { numRuns: 30 },
    );
  });

  const pairArb = fc
    .array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 })
    .chain((s) => fc.tuple(specArb(s, 'wide'), specArb(s, 'any'), reductionArb));

  test('mseLoss, in input and target', () => {
    fc.assert(
      fc.property(pairArb, seedArb, ([x, y, reduction], seed) => {
        expectGrad(`mseLoss([${x.shape}], ${reduction})`, (a, b) => mseLoss(a!, b!, { reduction }), [fromSpec(x), fromSpec(y)], { seed });
      }),
      { numRuns: 30 },
    );
  });

  test('binaryCrossEntropyWithLogits, in logits and target', () => {
    fc.assert(
      fc.property(pairArb, seedArb, ([x, y, reduction], seed) => {
        const t = { ...y, values: y.values.map((v) => (v + 2) / 4) }; // targets in [0, 1]
        expectGrad(`binaryCrossEntropyWithLogits([${x.shape}], ${reduction})`, (a, b) => binaryCrossEntropyWithLogits(a!, b!, { reduction }), [fromSpec(x), fromSpec(t)], { seed });
      }),
      { numRuns: 30 },
    );
  });
});

describe('error messages', () => {
  const x = f64([[1, 2, 3], [4, 5, 6]]);

  test('targets out of range, not integers, or miscounted', () => {
    expectThrows(() => crossEntropy(x, [0, 3]), ValueError, 'crossEntropy: target[1] = 3 is not a class index in [0, 3)');
    expectThrows(() => crossEntropy(x, [-1, 0]), ValueError, 'crossEntropy: target[0] = -1 is not a class index in [0, 3)');
    expectThrows(() => nllLoss(x, [0, 1.5]), ValueError, 'nllLoss: target[1] = 1.5 is not a class index in [0, 3)');
    expectThrows(() => crossEntropy(x, [0, 1, 2]), ShapeError, 'crossEntropy: 3 targets for a batch of 2');
    expectThrows(() => nllLoss(x, f64([0, 1]) as never), ValueError, 'nllLoss: target must be class indices (an Int32Array or an array of integers)');
  });

  test('input shapes, label smoothing and reductions', () => {
    expectThrows(() => crossEntropy(f64([1, 2, 3]), [0]), ShapeError, 'crossEntropy: input must have shape [batch, classes] (got [3])');
    expectThrows(() => crossEntropy(x, [0, 1], { labelSmoothing: 1.5 }), ValueError, 'crossEntropy: labelSmoothing must be in [0, 1] (got 1.5)');
    expectThrows(() => mseLoss(f64([1, 2]), f64([1, 2, 3])), ShapeError, 'mseLoss: input has shape [2] but target has [3]');
    expectThrows(
      () => binaryCrossEntropyWithLogits(f64([1]), tensor([1], { dtype: 'f32' })),
      Error,
      "binaryCrossEntropyWithLogits: dtypes differ (f64 and f32); convert with .clone('f64')",
    );
    expectThrows(() => mseLoss(f64([1]), f64([1]), { reduction: 'avg' as never }), ValueError, 'mseLoss: reduction must be \'mean\', \'sum\' or \'none\' (got "avg")');
  });
});
