// Gradient clipping in place: clipGradNorm (torch.nn.utils.clip_grad_norm_) and clipGradValue.
import { ValueError, checkNonNegative, fmtValue } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';

function checkParams(where: string, params: unknown): readonly Tensor[] {
  if (params instanceof Tensor) return [params];
  if (!Array.isArray(params)) throw new ValueError(`${where}: params must be a Tensor or an array of Tensors (got ${typeof params})`);
  params.forEach((p: unknown, i: number) => {
    if (!(p instanceof Tensor)) throw new ValueError(`${where}: params[${i}] must be a Tensor (got ${typeof p})`);
  });
  return params;
}

/**
 * Scales the gradients of `params` so that their joint `normType`-norm is at most `maxNorm`, and
 * returns the norm before clipping. As torch: the norm of all grad elements together (equal to torch's
 * norm of the per-tensor norms), the scale is
 * min(1, maxNorm / (total + 1e-6)), and parameters without a grad are ignored (no grads: returns 0).
 * normType may be any p > 0 or Infinity (the largest |g|).
 *
 * A non-finite total (a NaN or ±Inf in some grad) is returned and the grads are left as they are, so
 * the caller can skip the step. (torch with error_if_nonfinite=False would multiply them by NaN or 0.)
 */
export function clipGradNorm(params: Tensor | readonly Tensor[], maxNorm: number, normType = 2): number {
  const where = 'clipGradNorm';
  const ps = checkParams(where, params);
  checkNonNegative(where, 'maxNorm', maxNorm);
  if (typeof normType !== 'number' || !(normType > 0)) {
    throw new ValueError(`${where}: normType must be a number > 0 or Infinity (got ${fmtValue(normType)})`);
  }
  let total = 0;
  for (const p of ps) {
    const g = p.grad?.data;
    if (g === undefined) continue;
    if (normType === Infinity) {
      // Math.max propagates NaN, as torch's max-norm does.
      for (let i = 0; i < g.length; i++) total = Math.max(total, Math.abs(g[i]!));
    } else if (normType === 2) {
      let s = 0;
      for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
      total += s; // Σ over tensors of ‖g‖², i.e. the 2-norm of the per-tensor norms, squared
    } else {
      let s = 0;
      for (let i = 0; i < g.length; i++) s += Math.abs(g[i]!) ** normType;
      total += s;
    }
  }
  if (normType === 2) total = Math.sqrt(total);
  else if (normType !== Infinity) total = total ** (1 / normType);
  if (!Number.isFinite(total)) return total;
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) {
    for (const p of ps) {
      const g = p.grad?.data;
      if (g === undefined) continue;
      for (let i = 0; i < g.length; i++) g[i] = g[i]! * coef;
    }
  }
  return total;
}

/** Clamps every gradient element of `params` to [−clipValue, clipValue] in place (NaN stays NaN). */
export function clipGradValue(params: Tensor | readonly Tensor[], clipValue: number): void {
  const where = 'clipGradValue';
  const ps = checkParams(where, params);
  checkNonNegative(where, 'clipValue', clipValue);
  for (const p of ps) {
    const g = p.grad?.data;
    if (g === undefined) continue;
    for (let i = 0; i < g.length; i++) {
      const x = g[i]!;
      if (x > clipValue) g[i] = clipValue;
      else if (x < -clipValue) g[i] = -clipValue;
    }
  }
}
