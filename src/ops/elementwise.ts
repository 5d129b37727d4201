// Elementwise primitives, forward and backward side by side. Binary ops broadcast; their backward returns
// gradients in the output's shape and the engine sums them back to each input's shape.
import { ValueError } from '../errors.js';
import { type OpSpec, defineOp, grads, recordOp } from '../autograd/engine.js';
import { Tensor, empty } from '../tensor/tensor.js';
import { type TensorLike, checkTensor, map, operand, sameDType, zip } from './util.js';
import { broadcastShapes, sameShape } from '../tensor/shape.js';
import { type ZipKernel, expandInto, mapKernel, zipKernel } from '../kernels/broadcast.js';
import { addFast, reluBackwardInto, reluInto } from '../kernels/elementwise.js';
import type { Storage } from '../tensor/tensor.js';

// The arithmetic of each op, as generated kernels (see kernels/broadcast.ts for why not callbacks).
const ADD_K = zipKernel('x + y');
const SUB_K = zipKernel('x - y');
const MUL_K = zipKernel('x * y');
const DIV_K = zipKernel('x / y');
const POW_K = zipKernel('Math.pow(x, y)');
const NEG_K = mapKernel('-x');
const EXP_K = mapKernel('Math.exp(x)');
const LOG_K = mapKernel('Math.log(x)');
const SQRT_K = mapKernel('Math.sqrt(x)');
const SQRT_BACK = zipKernel('x / (2 * y)');
const ABS_K = mapKernel('Math.abs(x)');
const ABS_BACK = zipKernel('y > 0 ? x : y < 0 ? -x : 0'); // sign(x)·g, 0 at 0 as in PyTorch
// Two branches so exp never overflows: for x < 0, eˣ/(1+eˣ).
const SIGMOID_K = mapKernel('x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))');
const SIGMOID_BACK = zipKernel('x * y * (1 - y)');
const TANH_K = mapKernel('Math.tanh(x)');
const TANH_BACK = zipKernel('x * (1 - y * y)');
const CLAMP_K = mapKernel('x < p ? p : x > q ? q : x');
const CLAMP_BACK = zipKernel('y >= p && y <= q ? x : 0');
const MASKED = zipKernel('y !== 0 ? x : 0');
const UNMASKED = zipKernel('y !== 0 ? 0 : x');

// ---- binary ------------------------------------------------------------------------------------

/** Every binary op: numbers become scalars, dtypes must agree, the kernel broadcasts, the result is recorded. */
function binary(op: OpSpec, k: ZipKernel, a: TensorLike, b: TensorLike): Tensor {
  const x = operand(op.name, 'a', a, b);
  const y = operand(op.name, 'b', b, a);
  sameDType(op.name, x, y);
  if (op === ADD && sameShape(broadcastShapes(op.name, x.shape, y.shape), x.shape)) {
    // Same shapes, or a bias row added to every row: one WebAssembly pass when all is in the heap.
    const out = empty(x.shape, x.dtype);
    if (!addFast(x.data, x.shape, y.data, y.shape, out.data)) k(x.data, x.shape, y.data, y.shape, out.data, x.shape, 0, 0);
    return recordOp(op, out, undefined, x, y);
  }
  return recordOp(op, zip(op.name, x, y, k), undefined, x, y);
}

// Backwards read inputs by index: destructuring an array (`inputs: [a, b]`) runs the iterator protocol,
// which allocates on every call.
const ADD = defineOp({ name: 'add', inputs: ['a', 'b'], backward: (gy) => grads(gy, gy) });
export function add(a: TensorLike, b: TensorLike): Tensor {
  return binary(ADD, ADD_K, a, b);
}

const SUB = defineOp({ name: 'sub', inputs: ['a', 'b'], backward: (gy, { inputs }) => grads(gy, inputs[1]!.requiresGrad ? neg(gy) : null) });
export function sub(a: TensorLike, b: TensorLike): Tensor {
  return binary(SUB, SUB_K, a, b);
}

const MUL = defineOp({
  name: 'mul',
  inputs: ['a', 'b'],
  // An input that needs no gradient (a constant, a mask, a scale) costs nothing in backward.
  backward: (gy, { inputs }) => {
    const a = inputs[0]!;
    const b = inputs[1]!;
    return grads(a.requiresGrad ? mul(gy, b) : null, b.requiresGrad ? mul(gy, a) : null);
  },
});
export function mul(a: TensorLike, b: TensorLike): Tensor {
  return binary(MUL, MUL_K, a, b);
}

const DIV = defineOp({
  name: 'div',
  inputs: ['a', 'b'],
  // d(a/b)/db = -a/b² = -out/b
  backward: (gy, { inputs, out }) => {
    const a = inputs[0]!;
    const b = inputs[1]!;
    return grads(a.requiresGrad ? div(gy, b) : null, b.requiresGrad ? neg(mul(gy, div(out, b))) : null);
  },
});
export function div(a: TensorLike, b: TensorLike): Tensor {
  return binary(DIV, DIV_K, a, b);
}

const POW = defineOp({
  name: 'pow',
  inputs: ['a', 'b'],
  // d(a^b)/da = b·a^(b-1); d(a^b)/db = out·ln a (NaN for a < 0, as in PyTorch)
  backward: (gy, { inputs, out }) => {
    const a = inputs[0]!;
    const b = inputs[1]!;
    return grads(a.requiresGrad ? mul(gy, mul(b, pow(a, sub(b, 1)))) : null, b.requiresGrad ? mul(gy, mul(out, log(a))) : null);
  },
});
/** a raised to b, elementwise; b may be a number (the usual case) or a tensor. */
export function pow(a: Tensor, b: TensorLike): Tensor {
  return binary(POW, POW_K, a, b);
}

// ---- unary -------------------------------------------------------------------------------------

const NEG = defineOp({ name: 'neg', inputs: ['x'], backward: (gy) => grads(neg(gy)) });
export function neg(x: Tensor): Tensor {
  checkTensor('neg', 'x', x);
  return recordOp(NEG, map(x, NEG_K), undefined, x);
}

const EXP = defineOp({ name: 'exp', inputs: ['x'], backward: (gy, { out }) => grads(mul(gy, out)) });
export function exp(x: Tensor): Tensor {
  checkTensor('exp', 'x', x);
  return recordOp(EXP, map(x, EXP_K), undefined, x);
}

const LOG = defineOp({ name: 'log', inputs: ['x'], backward: (gy, { inputs }) => grads(div(gy, inputs[0]!)) });
export function log(x: Tensor): Tensor {
  checkTensor('log', 'x', x);
  return recordOp(LOG, map(x, LOG_K), undefined, x);
}

const SQRT = defineOp({
  name: 'sqrt',
  inputs: ['x'],
  backward: (gy, { out }) => grads(zip('sqrt', gy, out, SQRT_BACK)),
});
export function sqrt(x: Tensor): Tensor {
  checkTensor('sqrt', 'x', x);
  return recordOp(SQRT, map(x, SQRT_K), undefined, x);
}

const ABS = defineOp({
  name: 'abs',
  inputs: ['x'],
  // sign(x)·g, with 0 at 0 (PyTorch's subgradient choice)
  backward: (gy, { inputs }) => grads(zip('abs', gy, inputs[0]!, ABS_BACK)),
});
export function abs(x: Tensor): Tensor {
  checkTensor('abs', 'x', x);
  return recordOp(ABS, map(x, ABS_K), undefined, x);
}

const RELU = defineOp({
  name: 'relu',
  inputs: ['x'],
  backward: (gy, { out }) => {
    const dx = empty(out.shape, out.dtype);
    reluBackwardInto(dx.data, gy.data, out.data);
    return grads(dx);
  },
});
export function relu(x: Tensor): Tensor {
  checkTensor('relu', 'x', x);
  const out = empty(x.shape, x.dtype);
  reluInto(out.data, x.data);
  return recordOp(RELU, out, undefined, x);
}

const SIGMOID = defineOp({
  name: 'sigmoid',
  inputs: ['x'],
  backward: (gy, { out }) => grads(zip('sigmoid', gy, out, SIGMOID_BACK)),
});
export function sigmoid(x: Tensor): Tensor {
  checkTensor('sigmoid', 'x', x);
  return recordOp(SIGMOID, map(x, SIGMOID_K), undefined, x);
}

const TANH = defineOp({
  name: 'tanh',
  inputs: ['x'],
  backward: (gy, { out }) => grads(zip('tanh', gy, out, TANH_BACK)),
});
export function tanh(x: Tensor): Tensor {
  checkTensor('tanh', 'x', x);
  return recordOp(TANH, map(x, TANH_K), undefined, x);
}

interface ClampAttrs {
  min: number;
  max: number;
}
const CLAMP = defineOp<ClampAttrs>({
  name: 'clamp',
  inputs: ['x'],
  // The gradient passes where min ≤ x ≤ max, as in PyTorch.
  backward: (gy, { inputs, attrs }) => grads(zip('clamp', gy, inputs[0]!, CLAMP_BACK, attrs.min, attrs.max)),
});
/** x limited to [min, max]; either bound may be omitted (±Infinity). */
export function clamp(x: Tensor, min = -Infinity, max = Infinity): Tensor {
  checkTensor('clamp', 'x', x);
  if (typeof min !== 'number' || typeof max !== 'number' || Number.isNaN(min) || Number.isNaN(max) || min > max) {
    throw new ValueError(`clamp: bounds must be numbers with min <= max (got min=${min}, max=${max})`);
  }
  return recordOp(CLAMP, map(x, CLAMP_K, min, max), { min, max }, x);
}

// ---- selection ---------------------------------------------------------------------------------

const WHERE = defineOp({
  name: 'where',
  inputs: ['condition', 'a', 'b'],
  backward: (gy, { inputs }) => grads(null, zip('where', gy, inputs[0]!, MASKED), zip('where', gy, inputs[0]!, UNMASKED)),
});
/**
 * a where condition is non-zero, else b; all three broadcast. The condition is a mask (from gt, lt, eq...)
 * and gets no gradient.
 */
export function where(condition: Tensor, a: TensorLike, b: TensorLike): Tensor {
  checkTensor('where', 'condition', condition);
  const x = operand('where', 'a', a, b);
  const y = operand('where', 'b', b, a);
  sameDType('where', x, y);
  const shape = broadcastShapes('where', condition.shape, broadcastShapes('where', x.shape, y.shape));
  const m = expanded(condition, shape);
  const u = expanded(x, shape);
  const v = expanded(y, shape);
  const out = empty(shape, x.dtype);
  const o = out.data;
  for (let i = 0; i < o.length; i++) o[i] = m[i] !== 0 ? u[i]! : v[i]!;
  return recordOp(WHERE, out, undefined, condition, x, y);
}

// ---- comparisons: masks of 0 and 1, never differentiable ----------------------------------------

const GT_K = zipKernel('x > y ? 1 : 0');
const GE_K = zipKernel('x >= y ? 1 : 0');
const LT_K = zipKernel('x < y ? 1 : 0');
const LE_K = zipKernel('x <= y ? 1 : 0');
const EQ_K = zipKernel('x === y ? 1 : 0');
export const gt = (a: TensorLike, b: TensorLike): Tensor => compare('gt', a, b, GT_K);
export const ge = (a: TensorLike, b: TensorLike): Tensor => compare('ge', a, b, GE_K);
export const lt = (a: TensorLike, b: TensorLike): Tensor => compare('lt', a, b, LT_K);
export const le = (a: TensorLike, b: TensorLike): Tensor => compare('le', a, b, LE_K);
export const eq = (a: TensorLike, b: TensorLike): Tensor => compare('eq', a, b, EQ_K);

function compare(op: string, a: TensorLike, b: TensorLike, k: ZipKernel): Tensor {
  const x = operand(op, 'a', a, b);
  const y = operand(op, 'b', b, a);
  sameDType(op, x, y);
  return zip(op, x, y, k);
}

/** t's values laid out in `shape` (t itself when it already has it). */
function expanded(t: Tensor, shape: readonly number[]): Storage {
  if (t.shape.length === shape.length && t.size === t.data.length && t.shape.every((d, i) => d === shape[i])) return t.data;
  const out = empty(shape, t.dtype);
  expandInto(t.data, t.shape, out.data, shape);
  return out.data;
}
