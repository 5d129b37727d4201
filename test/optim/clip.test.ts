// Tests of src/optim/clip.ts: clipGradNorm for 2-, 1-, 3- and inf-norms (pre-clip norm returned),
// non-finite norms, clipGradValue, and the error texts.

import { describe, it, expect } from 'vitest';
import { ValueError } from '../../src/errors.js';
import { Tensor, tensor } from '../../src/tensor/tensor.js';
import { clipGradNorm, clipGradValue } from '../../src/optim/index.js';

function withGrad(g: number[]): Tensor {
  const p = tensor(g.map(() => 0), { dtype: 'f64', requiresGrad: true });
  p.grad = tensor(g, { dtype: 'f64' });
  return p;
}

const grads = (ps: Tensor[]): number[][] => ps.map((p) => Array.from(p.grad!.data));

describe('clipGradNorm', () => {
  it('2-norm over all grads: returns the pre-clip norm and scales by maxNorm / (norm + 1e-6)', () => {
    // ‖[3, 4, 12]‖₂ = √(9 + 16 + 144) = 13
    const ps = [withGrad([3, 4]), withGrad([12])];
    expect(clipGradNorm(ps, 6.5)).toBe(13);
    const coef = 6.5 / (13 + 1e-6);
    expect(grads(ps)).toEqual([[3 * coef, 4 * coef], [12 * coef]]);
  });

  it('leaves grads alone when the norm is within maxNorm (coefficient clamped to 1)', () => {
    const ps = [withGrad([3, 4]), withGrad([12])];
    expect(clipGradNorm(ps, 13)).toBe(13); // 13 / (13 + 1e-6) < 1: clipped, barely
    const qs = [withGrad([3, 4]), withGrad([12])];
    expect(clipGradNorm(qs, 100)).toBe(13);
    expect(grads(qs)).toEqual([[3, 4], [12]]);
  });

  it('inf-norm: the largest |g|', () => {
    const ps = [withGrad([3, -7]), withGrad([5])];
    expect(clipGradNorm(ps, 3.5, Infinity)).toBe(7);
    const coef = 3.5 / (7 + 1e-6);
    expect(grads(ps)).toEqual([[3 * coef, -7 * coef], [5 * coef]]);
  });

  it('1-norm and 3-norm', () => {
    // |3| + |−4| + |5| = 12;  (27 + 64 + 125)^(1/3) = 216^(1/3) = 6
    expect(clipGradNorm([withGrad([3, -4]), withGrad([5])], 100, 1)).toBe(12);
    expect(clipGradNorm([withGrad([3, -4]), withGrad([5])], 100, 3)).toBeCloseTo(6, 12);
  });

  it('skips parameters without a grad; no grads at all gives 0; a single tensor works', () => {
    const none = tensor([1, 2], { requiresGrad: true });
    const p = withGrad([3, 4]);
    expect(clipGradNorm([none, p], 1)).toBe(5);
    expect(none.grad).toBeNull();
    expect(clipGradNorm([none], 1)).toBe(0);
    expect(clipGradNorm(withGrad([6, 8]), 100)).toBe(10);
  });

  it('a non-finite norm is returned and the grads are left as they are', () => {
    const nan = [withGrad([1, NaN]), withGrad([3])];
    expect(clipGradNorm(nan, 1)).toBeNaN();
    expect(grads(nan)).toEqual([[1, NaN], [3]]);
    const inf = [withGrad([1, -Infinity])];
    expect(clipGradNorm(inf, 1)).toBe(Infinity);
    expect(clipGradNorm(inf, 1, Infinity)).toBe(Infinity);
    expect(grads(inf)).toEqual([[1, -Infinity]]);
  });

  it('works on f32 grads in place', () => {
    const p = tensor([0, 0], { requiresGrad: true });
    p.grad = tensor([3, 4]);
    const g = p.grad.data;
    expect(clipGradNorm([p], 1)).toBe(5);
    expect(p.grad.data).toBe(g);
    expect(g[0]).toBeCloseTo(0.6, 6);
    expect(g[1]).toBeCloseTo(0.8, 6);
  });

  it.each<[string, () => unknown, string]>([
    ['maxNorm < 0', () => clipGradNorm([withGrad([1])], -1), 'clipGradNorm: maxNorm must be >= 0 (got -1)'],
    ['maxNorm NaN', () => clipGradNorm([withGrad([1])], NaN), 'clipGradNorm: maxNorm must be a finite number (got NaN)'],
    ['normType 0', () => clipGradNorm([withGrad([1])], 1, 0), 'clipGradNorm: normType must be a number > 0 or Infinity (got 0)'],
    ['normType NaN', () => clipGradNorm([withGrad([1])], 1, NaN), 'clipGradNorm: normType must be a number > 0 or Infinity (got NaN)'],
    ['a non-tensor', () => clipGradNorm([withGrad([1]), 3 as unknown as Tensor], 1), 'clipGradNorm: params[1] must be a Tensor (got number)'],
    ['not an array', () => clipGradNorm('p' as unknown as Tensor[], 1), 'clipGradNorm: params must be a Tensor or an array of Tensors (got string)'],
  ])('refuses %s', (_what, call, message) => {
    expect(call).toThrow(ValueError);
    expect(call).toThrow(message);
  });
});

describe('clipGradValue', () => {
  it('clamps each element to [−clipValue, clipValue], NaN stays NaN', () => {
    const ps = [withGrad([3, -7, 0.5]), withGrad([NaN, -0.1])];
    clipGradValue(ps, 1);
    expect(grads(ps)).toEqual([
      [1, -1, 0.5],
      [NaN, -0.1],
    ]);
  });

  it('refuses a negative clipValue', () => {
    expect(() => clipGradValue([withGrad([1])], -1)).toThrow('clipGradValue: clipValue must be >= 0 (got -1)');
  });
});
