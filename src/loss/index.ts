// Losses, composed from primitives and stable at extreme logits (no exp of a large positive number).
import { ShapeError, ValueError, fmtShape } from '../errors.js';
import { noGrad } from '../autograd/engine.js';
import { add, exp, log, mul, neg, relu, sub } from '../ops/elementwise.js';
import { logSoftmax } from '../ops/composite.js';
import { mean, sum } from '../ops/reduce.js';
import { flatten } from '../ops/pool.js';
import { type Indices, gather } from '../ops/shape.js';
import { checkTensor, sameDType } from '../ops/util.js';
import { sameShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

export type Reduction = 'mean' | 'sum' | 'none';

function reduce(where: string, x: Tensor, reduction: Reduction | undefined): Tensor {
  switch (reduction ?? 'mean') {
    case 'mean':
      return mean(x);
    case 'sum':
      return sum(x);
    case 'none':
      return x;
    default:
      throw new ValueError(`${where}: reduction must be 'mean', 'sum' or 'none' (got ${JSON.stringify(reduction)})`);
  }
}

function sameShapes(where: string, input: Tensor, target: Tensor): void {
  checkTensor(where, 'input', input);
  checkTensor(where, 'target', target);
  sameDType(where, input, target);
  if (!sameShape(input.shape, target.shape)) {
    throw new ShapeError(`${where}: input has shape ${fmtShape(input.shape)} but target has ${fmtShape(target.shape)}`);
  }
}

/** Mean squared error, torch.nn.functional.mse_loss. */
export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  sameShapes('mseLoss', input, target);
  const d = sub(input, target);
  return reduce('mseLoss', mul(d, d), opts.reduction);
}

/**
 * log(1 + eˣ), computed as m + log(e^(−m) + e^(x−m)) with m = max(x, 0) detached: both exponents are ≤ 0,
 * and the gradient is exactly sigmoid(x), including at x = 0.
 */
export function softplus(x: Tensor): Tensor {
  checkTensor('softplus', 'x', x);
  const m = noGrad(() => relu(x));
  return add(m, log(add(exp(neg(m)), exp(sub(x, m)))));
}

/** Binary cross-entropy on logits: softplus(x) − x·t, stable for any logit. */
export function binaryCrossEntropyWithLogits(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  sameShapes('binaryCrossEntropyWithLogits', input, target);
  return reduce('binaryCrossEntropyWithLogits', sub(softplus(input), mul(input, target)), opts.reduction);
}

function checkTargets(where: string, input: Tensor, target: Indices): number {
  checkTensor(where, 'input', input);
  if (input.ndim !== 2) throw new ShapeError(`${where}: input must have shape [batch, classes] (got ${fmtShape(input.shape)})`);
  const n = input.shape[0]!;
  const c = input.shape[1]!;
  if (!(target instanceof Int32Array) && !Array.isArray(target)) {
    throw new ValueError(`${where}: target must be class indices (an Int32Array or an array of integers)`);
  }
  if (target.length !== n) throw new ShapeError(`${where}: ${target.length} targets for a batch of ${n}`);
  for (let i = 0; i < n; i++) {
    const t = target[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= c) throw new ValueError(`${where}: target[${i}] = ${t} is not a class index in [0, ${c})`);
  }
  return c;
}

/** Negative log-likelihood of log-probabilities [N, C] at class indices, torch.nn.functional.nll_loss. */
export function nllLoss(input: Tensor, target: Indices, opts?: { reduction?: Reduction }): Tensor {
  checkTargets('nllLoss', input, target);
  return reduce('nllLoss', neg(flatten(gather(input, 1, target), 0)), opts?.reduction);
}

/**
 * Cross-entropy of logits [N, C] against class indices, torch.nn.functional.cross_entropy. With label
 * smoothing ε the target is (1−ε) on the class plus ε/C everywhere: loss = (1−ε)·nll + ε·mean_c(−log p).
 */
export function crossEntropy(input: Tensor, target: Indices, opts?: { reduction?: Reduction; labelSmoothing?: number }): Tensor {
  const c = checkTargets('crossEntropy', input, target);
  const eps = opts?.labelSmoothing ?? 0;
  if (typeof eps !== 'number' || !(eps >= 0 && eps <= 1)) throw new ValueError(`crossEntropy: labelSmoothing must be in [0, 1] (got ${eps})`);
  const logp = logSoftmax(input, 1);
  const nll = neg(flatten(gather(logp, 1, target), 0)); // the picked log-probabilities, [N, 1] → [N]
  if (eps === 0) return reduce('crossEntropy', nll, opts?.reduction);
  const smooth = mul(sum(logp, 1), -1 / c);
  return reduce('crossEntropy', add(mul(nll, 1 - eps), mul(smooth, eps)), opts?.reduction);
}
