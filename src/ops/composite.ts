// Composites: built from primitives, so they have no backward code of their own.
import { Tensor } from '../tensor/tensor.js';
import { normAxis } from '../tensor/shape.js';
import { add, exp, log, sub } from './elementwise.js';
import { max, sum } from './reduce.js';
import { reshape } from './shape.js';
import { checkTensor, detached } from './util.js';

/**
 * log Σ exp(x) along `axis`, computed as m + log Σ exp(x − m) with m the (detached) maximum, so no
 * exponent overflows. The gradient is softmax(x) either way: m's contribution cancels exactly.
 */
export function logSumExp(x: Tensor, axis = -1, keepdim = false): Tensor {
  checkTensor('logSumExp', 'x', x);
  const ax = normAxis('logSumExp', axis, x.ndim);
  const m = max(detached(x), ax, true); // a constant: no gradient flows through m
  // An all −∞ row (or +∞ entries) makes x − m NaN; shift by 0 there instead, as torch does.
  const md = m.data;
  for (let i = 0; i < md.length; i++) if (!Number.isFinite(md[i]!)) md[i] = 0;
  const s = log(sum(exp(sub(x, m)), ax, true));
  const out = add(s, m);
  if (keepdim) return out;
  return reshape(out, out.shape.filter((_, i) => i !== ax));
}

/** log softmax along `axis`: x − logSumExp(x). Stable for logits of any size. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  checkTensor('logSoftmax', 'x', x);
  normAxis('logSoftmax', axis, x.ndim); // so a bad axis is reported under the name the caller used
  return sub(x, logSumExp(x, axis, true));
}

/** softmax along `axis`: exp(logSoftmax(x)), never overflows. */
export function softmax(x: Tensor, axis = -1): Tensor {
  checkTensor('softmax', 'x', x);
  normAxis('softmax', axis, x.ndim);
  return exp(logSoftmax(x, axis));
}
