// Tests of src/ops/composite.ts: gradient properties of logSumExp, logSoftmax and softmax along every axis
// (logits shifted far from 0 included), stability golden values, and the softmax Jacobian by hand.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { ShapeError } from '../../src/errors.js';
import * as ops from '../../src/ops/index.js';
import { Tensor, tensor } from '../../src/tensor/tensor.js';
import { axisArb, shapeArb, specArb } from '../helpers/arbitraries.js';
import { expectThrows, fromSpec, jacobian, vals } from '../helpers/grad.js';
import { FAMILIES, assertOpGrad } from '../helpers/op-cases.js';

const f64 = (v: Parameters<typeof tensor>[0], requiresGrad = false): Tensor => tensor(v, { dtype: 'f64', requiresGrad });

describe('gradient properties (f64, eps 1e-6, rtol 1e-6)', () => {
  for (const name of FAMILIES.composite) {
    test(`${name}: gradCheck`, () => assertOpGrad(name, 50));
  }
});

describe('forward', () => {
  test('golden values', () => {
    expect(ops.logSumExp(f64([0, 0])).item()).toBe(Math.LN2);
    const lse = Math.log(Math.E + Math.exp(2) + Math.exp(3));
    const l = ops.logSumExp(f64([[1, 2, 3]]), 1);
    expect(l.shape).toEqual([1]);
    expect(l.item()).toBeCloseTo(lse, 15);
    expect(ops.logSumExp(f64([[1, 2, 3]]), -1, true).shape).toEqual([1, 1]);
    expect(ops.logSumExp(f64([[1, 2, 3]]), 0).toArray()).toEqual([1, 2, 3]);
    const ls = vals(ops.logSoftmax(f64([1, 2, 3])));
    [1, 2, 3].forEach((v, i) => expect(ls[i]).toBeCloseTo(v - lse, 15));
    expect(vals(ops.softmax(f64([0, Math.log(3)])))).toEqual([0.25, 0.75]);
  });

  test('stable at extreme logits: no overflow, no NaN; all −∞ gives −∞ (as torch)', () => {
    expect(ops.logSumExp(f64([1000, 1000])).item()).toBe(1000 + Math.LN2);
    expect(ops.logSumExp(f64([-1000, -1000])).item()).toBe(-1000 + Math.LN2);
    expect(vals(ops.softmax(f64([1e4, 0, -1e4])))).toEqual([1, 0, 0]);
    expect(vals(ops.logSoftmax(f64([1e4, 0])))).toEqual([0, -1e4]);
    expect(ops.logSumExp(f64([-Infinity, -Infinity])).item()).toBe(-Infinity);
    expect(vals(ops.softmax(tensor([88, 89, 90], { dtype: 'f32' }))).every(Number.isFinite)).toBe(true);
  });

  test('softmax sums to 1 along its axis and logSoftmax = log(softmax)', () => {
    fc.assert(
      fc.property(shapeArb({ minRank: 1 }).chain((s) => fc.tuple(specArb(s, 'wide', false), axisArb(s.length))), ([x, axis]) => {
        const t = fromSpec(x);
        const p = ops.softmax(t, axis);
        vals(ops.sum(p, axis)).forEach((v) => expect(Math.abs(v - 1)).toBeLessThan(1e-14));
        const lp = vals(ops.logSoftmax(t, axis));
        vals(p).forEach((v, i) => expect(Math.abs(Math.log(v) - lp[i]!)).toBeLessThan(1e-13));
      }),
      { numRuns: 40 },
    );
  });
});

describe('gradient golden values', () => {
  test('d logSumExp / dx = softmax(x)', () => {
    const x = f64([1, 2, 3], true);
    ops.logSumExp(x).backward();
    const p = vals(ops.softmax(f64([1, 2, 3])));
    vals(x.grad).forEach((g, i) => expect(g).toBeCloseTo(p[i]!, 15));
  });

  test('the softmax Jacobian is diag(p) − p·pᵀ', () => {
    const x = f64([0.5, -1, 2], true);
    const p = vals(ops.softmax(f64([0.5, -1, 2])));
    const J = jacobian((t) => ops.softmax(t), x);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expect(J[i]![j]).toBeCloseTo((i === j ? p[i]! : 0) - p[i]! * p[j]!, 15);
  });
});

describe('error messages', () => {
  test('axes out of range', () => {
    const x = f64([[1, 2]]);
    expectThrows(() => ops.logSumExp(x, 2), ShapeError, 'logSumExp: axis 2 is out of range for a tensor of rank 2');
    expectThrows(() => ops.softmax(x, -3), ShapeError, 'softmax: axis -3 is out of range for a tensor of rank 2');
    expectThrows(() => ops.logSoftmax(x, 2), ShapeError, 'logSoftmax: axis 2 is out of range for a tensor of rank 2');
  });
});
