// Tests of src/ops/elementwise.ts: gradient properties for every op (broadcasting included), forward
// golden values, subgradient choices at kinks, and error messages.
import { describe, expect, test } from 'vitest';
import { DTypeError, ShapeError, ValueError } from '../../src/errors.js';
import * as ops from '../../src/ops/index.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { expectThrows, vals } from '../helpers/grad.js';
import { FAMILIES, assertOpGrad } from '../helpers/op-cases.js';

const f64 = (v: Parameters<typeof tensor>[0], requiresGrad = false): Tensor => tensor(v, { dtype: 'f64', requiresGrad });

describe('gradient properties (f64, eps 1e-6, rtol 1e-6)', () => {
  // Binary ops draw broadcast-compatible pairs ([3,1] with [1,4], [4] with [2,3,4], ...) and number
  // operands on either side; abs, relu and clamp draw distinct values ≥ 1e-3 from their kinks.
  for (const name of FAMILIES.elementwise) {
    test(`${name}: gradCheck`, () => assertOpGrad(name, 50));
  }
});

describe('forward golden values', () => {
  test('add broadcasts a row over a matrix', () => {
    const y = ops.add(f64([[1, 2], [3, 4]]), f64([10, 20]));
    expect(y.shape).toEqual([2, 2]);
    expect(y.toArray()).toEqual([[11, 22], [13, 24]]);
  });

  test('add of [3,1] and [1,4] is [3,4]', () => {
    const y = ops.add(f64([[1], [2], [3]]), f64([[10, 20, 30, 40]]));
    expect(y.toArray()).toEqual([[11, 21, 31, 41], [12, 22, 32, 42], [13, 23, 33, 43]]);
  });

  test('sub with a number on either side', () => {
    expect(vals(ops.sub(5, f64([1, 2])))).toEqual([4, 3]);
    expect(vals(ops.sub(f64([1, 2]), 5))).toEqual([-4, -3]);
  });

  test('mul of a row and a column is an outer product', () => {
    expect(ops.mul(f64([1, 2, 3]), f64([[2], [3]])).toArray()).toEqual([[2, 4, 6], [3, 6, 9]]);
  });

  test('div', () => {
    expect(vals(ops.div(f64([1, 2, -3]), f64([4, 8, 2])))).toEqual([0.25, 0.25, -1.5]);
    expect(vals(ops.div(1, f64([4, -0.5])))).toEqual([0.25, -2]);
  });

  test('pow with a number and with a tensor exponent', () => {
    expect(vals(ops.pow(f64([2, 3, 0.5]), 2))).toEqual([4, 9, 0.25]);
    expect(vals(ops.pow(f64([4, 9]), 0.5))).toEqual([2, 3]);
    expect(vals(ops.pow(f64([2, 2]), f64([3, -1])))).toEqual([8, 0.5]);
  });

  test('unary ops', () => {
    expect(vals(ops.neg(f64([1, -2, 0])))).toEqual([-1, 2, -0]);
    expect(vals(ops.exp(f64([0, 1])))).toEqual([1, Math.E]);
    expect(vals(ops.log(f64([1, Math.E])))).toEqual([0, 1]);
    expect(vals(ops.sqrt(f64([16, 2.25])))).toEqual([4, 1.5]);
    expect(vals(ops.abs(f64([-1.5, 0, 2])))).toEqual([1.5, 0, 2]);
    expect(vals(ops.relu(f64([-1, 0, 2])))).toEqual([0, 0, 2]);
    expect(vals(ops.tanh(f64([0, 1])))).toEqual([0, Math.tanh(1)]);
  });

  test('sigmoid is exact at 0 and saturates without NaN', () => {
    expect(vals(ops.sigmoid(f64([0, 1, -1000, 1000])))).toEqual([0.5, 1 / (1 + Math.exp(-1)), 0, 1]);
    expect(vals(ops.sigmoid(tensor([-1000, 1000], { dtype: 'f32' })))).toEqual([0, 1]);
  });

  test('clamp with both, one or no bounds', () => {
    const x = f64([-2, -0.5, 0.5, 3]);
    expect(vals(ops.clamp(x, -1, 1))).toEqual([-1, -0.5, 0.5, 1]);
    expect(vals(ops.clamp(x, 0))).toEqual([0, 0, 0.5, 3]);
    expect(vals(ops.clamp(x, undefined, 0))).toEqual([-2, -0.5, 0, 0]);
    expect(vals(ops.clamp(x))).toEqual([-2, -0.5, 0.5, 3]);
  });

  test('where picks a where the condition is non-zero, b elsewhere, broadcasting all three', () => {
    expect(vals(ops.where(f64([1, 0, 1]), f64([1, 2, 3]), f64([10, 20, 30])))).toEqual([1, 20, 3]);
    expect(ops.where(f64([[1], [0]]), f64([1, 2]), -1).toArray()).toEqual([[1, 2], [-1, -1]]);
  });

  test('comparisons give 0/1 masks that record nothing', () => {
    const a = f64([1, 2, 3], true);
    const m = ops.gt(a, 2);
    expect(vals(m)).toEqual([0, 0, 1]);
    expect(m.requiresGrad).toBe(false);
    expect(vals(ops.ge(a, 2))).toEqual([0, 1, 1]);
    expect(vals(ops.lt(a, 2))).toEqual([1, 0, 0]);
    expect(vals(ops.le(a, 2))).toEqual([1, 1, 0]);
    expect(vals(ops.eq(a, 2))).toEqual([0, 1, 0]);
  });
});

describe('gradient golden values', () => {
  const gradOf = (f: (x: Tensor) => Tensor, values: number[]): number[] => {
    const x = f64(values, true);
    ops.sum(f(x)).backward();
    return vals(x.grad);
  };

  test('abs and relu take 0 as the subgradient at their kink (as PyTorch)', () => {
    expect(gradOf(ops.abs, [-2, 0, 3])).toEqual([-1, 0, 1]);
    expect(gradOf(ops.relu, [-2, 0, 3])).toEqual([0, 0, 1]);
  });

  test('clamp passes the gradient where min <= x <= max, bounds included (as PyTorch)', () => {
    expect(gradOf((x) => ops.clamp(x, -1, 1), [-2, -1, 0, 1, 2])).toEqual([0, 1, 1, 1, 0]);
  });

  test('where sends the gradient to the chosen side only; the condition gets none', () => {
    const c = f64([1, 0, 1], true);
    const a = f64([1, 2, 3], true);
    const b = f64([4, 5, 6], true);
    ops.sum(ops.where(c, a, b)).backward();
    expect(vals(a.grad)).toEqual([1, 0, 1]);
    expect(vals(b.grad)).toEqual([0, 1, 0]);
    expect(c.grad).toBe(null);
  });

  test('div: d(a/b)/da = 1/b, d(a/b)/db = -a/b²', () => {
    const a = f64([3], true);
    const b = f64([2], true);
    ops.div(a, b).backward();
    expect(vals(a.grad)).toEqual([0.5]);
    expect(vals(b.grad)).toEqual([-0.75]);
  });

  test('pow: d(a^b)/da = b·a^(b−1), d(a^b)/db = a^b·ln a', () => {
    const a = f64([2], true);
    const b = f64([3], true);
    ops.pow(a, b).backward();
    expect(vals(a.grad)).toEqual([12]);
    expect(vals(b.grad)).toEqual([8 * Math.log(2)]);
  });

  test('sigmoid and tanh reuse their output: σ(0)′ = 1/4, tanh′(0) = 1', () => {
    expect(gradOf(ops.sigmoid, [0])).toEqual([0.25]);
    expect(gradOf(ops.tanh, [0])).toEqual([1]);
  });
});

describe('error messages', () => {
  test('shapes that do not broadcast', () => {
    const a = f64([[1, 2, 3], [4, 5, 6]]);
    const b = f64([[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 1]]);
    expectThrows(() => ops.add(a, b), ShapeError, 'add: shapes [2,3] and [4,3] cannot be broadcast (axis 0: 2 vs 4)');
    expectThrows(() => ops.mul(f64([1, 2]), f64([1, 2, 3])), ShapeError, 'mul: shapes [2] and [3] cannot be broadcast (axis 0: 2 vs 3)');
    expectThrows(
      () => ops.where(f64([1, 0, 1]), f64([1, 2]), 0),
      ShapeError,
      'where: shapes [3] and [2] cannot be broadcast (axis 0: 3 vs 2)',
    );
  });

  test('f32 mixed with f64', () => {
    const a = tensor([1, 2], { dtype: 'f32' });
    const b = f64([1, 2]);
    expectThrows(() => ops.add(a, b), DTypeError, "add: dtypes differ (f32 and f64); convert with .clone('f32')");
    expectThrows(() => ops.pow(b, a), DTypeError, "pow: dtypes differ (f64 and f32); convert with .clone('f64')");
    expectThrows(() => ops.where(b, a, b), DTypeError, "where: dtypes differ (f32 and f64); convert with .clone('f32')");
  });

  test('where takes a mask of either dtype', () => {
    const mask = tensor([1, 0], { dtype: 'f32' });
    expect(Array.from(ops.where(mask, f64([1, 2]), f64([3, 4])).data)).toEqual([1, 4]);
  });

  test('two numbers, or a non-tensor input', () => {
    expectThrows(() => ops.add(1, 2), ValueError, 'add: at least one operand must be a Tensor (got two numbers)');
    expectThrows(() => ops.exp(3 as unknown as Tensor), ValueError, "exp: input 'x' must be a Tensor (got number)");
    expectThrows(() => ops.sub(f64([1]), 'a' as unknown as Tensor), ValueError, "sub: input 'b' must be a Tensor (got string)");
  });

  test('clamp bounds', () => {
    expectThrows(() => ops.clamp(f64([1]), 2, 1), ValueError, 'clamp: bounds must be numbers with min <= max (got min=2, max=1)');
    expectThrows(() => ops.clamp(f64([1]), NaN), ValueError, 'clamp: bounds must be numbers with min <= max (got min=NaN, max=Infinity)');
  });
});
