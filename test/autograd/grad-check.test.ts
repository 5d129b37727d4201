// Tests of src/autograd/grad-check.ts, the public gradCheck helper: it passes correct gradients, catches a
// wrong backward, leaves inputs as they were, is reproducible by seed, and refuses what it cannot check.
import { describe, expect, test } from 'vitest';
// Imported from the package entry point: gradCheck is part of the public API.
import { Tensor, ValueError, defineOp, gradCheck, mul, record, sum, tanh, tensor } from '../../src/index.js';
import { expectThrows } from '../helpers/grad.js';

const f64 = (v: Parameters<typeof tensor>[0], requiresGrad = true): Tensor => tensor(v, { dtype: 'f64', requiresGrad });

/** x³ with a backward that claims 3x² · (1 + err): err = 0 is correct. */
function cube(err: number) {
  const CUBE = defineOp({
    name: 'cube',
    inputs: ['x'],
    backward: (gy, { inputs: [x] }) => [mul(gy, mul(mul(x!, x!), 3 * (1 + err)))],
  });
  return (x: Tensor): Tensor => {
    const out = tensor(Array.from(x.data, (v) => v ** 3), { shape: x.shape, dtype: x.dtype });
    return record(CUBE, out, [x], undefined);
  };
}

describe('gradCheck', () => {
  test('passes a correct backward with a tiny error', () => {
    const res = gradCheck(cube(0), [f64([0.5, -1.2, 2])]);
    expect(res.ok).toBe(true);
    expect(res.maxRelError).toBeLessThan(1e-8);
    expect(res.checks).toHaveLength(3);
  });

  test('catches a backward that is wrong by 0.01%', () => {
    const res = gradCheck(cube(1e-4), [f64([0.5, -1.2, 2])]);
    expect(res.ok).toBe(false);
    expect(res.maxRelError).toBeGreaterThan(5e-5);
  });

  test('catches a wrong entry among many, and a gradient sent to the wrong input', () => {
    const a = f64([1, 2, 3]);
    const b = f64([4, 5, 6]);
    const SWAP = defineOp({ name: 'swapped', inputs: ['a', 'b'], backward: (gy, { inputs: [x, y] }) => [mul(gy, x!), mul(gy, y!)] });
    const f = (x: Tensor, y: Tensor): Tensor => record(SWAP, tensor(Array.from(x.data, (v, i) => v * y.data[i]!), { shape: x.shape, dtype: 'f64' }), [x, y], undefined);
    expect(gradCheck(f, [a, b]).ok).toBe(false);
  });

  test('checks several inputs, some without requiresGrad', () => {
    const w = f64([[0.1, -0.3], [0.7, 0.2]]);
    const x = f64([[1, 2]], false);
    const res = gradCheck((p, q) => sum(tanh(mul(p, q))), [w, x], { directions: 5, seed: 42 });
    expect(res.ok).toBe(true);
    expect(res.checks).toHaveLength(5);
  });

  test('restores every input bit for bit and is reproducible for a seed', () => {
    const values = [0.1, 1 / 3, -2.7];
    const x = f64(values);
    const r1 = gradCheck((t) => mul(t, t), [x], { seed: 7 });
    expect(Array.from(x.data)).toEqual(values);
    const r2 = gradCheck((t) => mul(t, t), [x], { seed: 7 });
    expect(r2.checks).toEqual(r1.checks);
    const r3 = gradCheck((t) => mul(t, t), [x], { seed: 8 });
    expect(r3.checks).not.toEqual(r1.checks);
  });

  test('refuses f32 inputs, inputs without requiresGrad, and an output that ignores them', () => {
    expectThrows(
      () => gradCheck((t) => mul(t, 2), [tensor([1], { requiresGrad: true })]),
      ValueError,
      'gradCheck: inputs must be f64 (got f32); finite differences in f32 cannot reach a useful tolerance',
    );
    expectThrows(() => gradCheck((t) => mul(t, 2), [f64([1], false)]), ValueError, 'gradCheck: no input has requiresGrad, nothing to check');
    expectThrows(
      () => gradCheck(() => f64([1], false), [f64([1])]),
      ValueError,
      'gradCheck: the function output does not depend on any input with requiresGrad',
    );
  });
});
