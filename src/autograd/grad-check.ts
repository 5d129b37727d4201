// gradCheck: compares reverse-mode gradients with central finite differences, for users' own models
// and for our property tests. Works in f64 (f32 differences are too coarse to prove anything).
import { ValueError } from '../errors.js';
import { Rng } from '../random.js';
import { Tensor, allocStorage } from '../tensor/tensor.js';
import { noGrad } from './engine.js';

export interface GradCheckOptions {
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Allowed relative error (default 1e-6). */
  rtol?: number;
  /** Allowed absolute error, for derivatives near zero (default 1e-8). */
  atol?: number;
  /** Seed of the random directions (default 0). */
  seed?: number;
  /** Random directions to try (default 3). */
  directions?: number;
}

export interface GradCheckResult {
  ok: boolean;
  /** Largest |analytic − numeric| / max(|analytic|, |numeric|, atol/rtol) seen. */
  maxRelError: number;
  /** One entry per direction: the two directional derivatives. */
  checks: { analytic: number; numeric: number }[];
}

/**
 * Checks d/dε L(x + ε·v) at ε = 0 both ways, where L = Σ w ⊙ f(inputs) for a random output weighting
 * w and a random direction v over all inputs (a single scalar comparison per direction catches any
 * wrong Jacobian entry with probability 1). Inputs must be f64 tensors; those with requiresGrad are
 * perturbed and their `.grad` is overwritten.
 */
export function gradCheck(f: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradCheckOptions = {}): GradCheckResult {
  const eps = opts.eps ?? 1e-6;
  const rtol = opts.rtol ?? 1e-6;
  const atol = opts.atol ?? 1e-8;
  const rng = new Rng(opts.seed ?? 0, 7);
  const vars = inputs.filter((t) => t.requiresGrad);
  if (vars.length === 0) throw new ValueError('gradCheck: no input has requiresGrad, nothing to check');
  for (const t of inputs) {
    if (t.dtype !== 'f64') throw new ValueError(`gradCheck: inputs must be f64 (got ${t.dtype}); finite differences in f32 cannot reach a useful tolerance`);
  }
  const checks: { analytic: number; numeric: number }[] = [];
  let worst = 0;
  for (let d = 0; d < (opts.directions ?? 3); d++) {
    const v = vars.map((t) => {
      const s = allocStorage('f64', t.size, false, true);
      rng.fillUniform(s, -1, 1);
      return s;
    });
    const y0 = f(...inputs);
    const w = allocStorage('f64', y0.size, false, true);
    rng.fillUniform(w, -1, 1);
    for (const t of vars) t.grad = null;
    if (!y0.requiresGrad) throw new ValueError('gradCheck: the function output does not depend on any input with requiresGrad');
    y0.backward(new Tensor(w as Float64Array, y0.shape));
    let analytic = 0;
    vars.forEach((t, i) => {
      const g = t.grad?.data;
      if (g === undefined) return;
      for (let k = 0; k < t.size; k++) analytic += g[k]! * v[i]![k]!;
    });
    const at = (sign: number): number =>
      noGrad(() => {
        // Perturb from a saved copy and restore it: (x + h) − h is not always x in floating point.
        const saved = vars.map((t) => Float64Array.from(t.data));
        vars.forEach((t, i) => {
          for (let k = 0; k < t.size; k++) t.data[k] = saved[i]![k]! + sign * eps * v[i]![k]!;
        });
        const y = f(...inputs);
        let s = 0;
        for (let k = 0; k < y.size; k++) s += w[k]! * y.data[k]!;
        vars.forEach((t, i) => t.data.set(saved[i]!));
        return s;
      });
    const numeric = (at(1) - at(-1)) / (2 * eps);
    checks.push({ analytic, numeric });
    const err = Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), Math.abs(numeric), atol / rtol);
    worst = Math.max(worst, Number.isNaN(err) ? Infinity : err);
  }
  return { ok: worst <= rtol, maxRelError: worst, checks };
}
