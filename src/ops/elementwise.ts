// Elementwise primitives, forward and backward side by side. Binary ops broadcast; their backward returns
// gradients in the output's shape and the engine sums them back to each input's shape.
import { ValueError } from '../errors.js';
import { defineOp, record } from '../autograd/engine.js';
import { Tensor, empty } from '../tensor/tensor.js';
import { type TensorLike, checkTensor, map, operands, zip } from './util.js';
import { broadcastShapes } from '../tensor/shape.js';
import { expandInto } from '../kernels/broadcast.js';
import type { Storage } from '../tensor/tensor.js';

// ---- binary ------------------------------------------------------------------------------------

const ADD = defineOp({ name: 'add', inputs: ['a', 'b'], backward: (gy) => [gy, gy] });
export function add(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands('add', a, b);
  return record(ADD, zip('add', x, y, (u, v) => u + v), [x, y], undefined);
}

const SUB = defineOp({ name: 'sub', inputs: ['a', 'b'], backward: (gy, { inputs: [, b] }) => [gy, b!.requiresGrad ? neg(gy) : null] });
export function sub(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands('sub', a, b);
  return record(SUB, zip('sub', x, y, (u, v) => u - v), [x, y], undefined);
}

const MUL = defineOp({
  name: 'mul',
  inputs: ['a', 'b'],
  // An input that needs no gradient (a constant, a mask, a scale) costs nothing in backward.
  backward: (gy, { inputs: [a, b] }) => [a!.requiresGrad ? mul(gy, b!) : null, b!.requiresGrad ? mul(gy, a!) : null],
});
export function mul(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands('mul', a, b);
  return record(MUL, zip('mul', x, y, (u, v) => u * v), [x, y], undefined);
}

const DIV = defineOp({
  name: 'div',
  inputs: ['a', 'b'],
  // d(a/b)/db = -a/b² = -out/b
  backward: (gy, { inputs: [a, b], out }) => [a!.requiresGrad ? div(gy, b!) : null, b!.requiresGrad ? neg(mul(gy, div(out, b!))) : null],
});
export function div(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands('div', a, b);
  return record(DIV, zip('div', x, y, (u, v) => u / v), [x, y], undefined);
}

const POW = defineOp({
  name: 'pow',
  inputs: ['a', 'b'],
  // d(a^b)/da = b·a^(b-1); d(a^b)/db = out·ln a (NaN for a < 0, as in PyTorch)
  backward: (gy, { inputs: [a, b], out }) => [
    a!.requiresGrad ? mul(gy, mul(b!, pow(a!, sub(b!, 1)))) : null,
    b!.requiresGrad ? mul(gy, mul(out, log(a!))) : null,
  ],
});
/** a raised to b, elementwise; b may be a number (the usual case) or a tensor. */
export function pow(a: Tensor, b: TensorLike): Tensor {
  const [x, y] = operands('pow', a, b);
  return record(POW, zip('pow', x, y, Math.pow), [x, y], undefined);
}

// ---- unary -------------------------------------------------------------------------------------

const NEG = defineOp({ name: 'neg', inputs: ['x'], backward: (gy) => [neg(gy)] });
export function neg(x: Tensor): Tensor {
  checkTensor('neg', 'x', x);
  return record(NEG, map(x, (v) => -v), [x], undefined);
}

const EXP = defineOp({ name: 'exp', inputs: ['x'], backward: (gy, { out }) => [mul(gy, out)] });
export function exp(x: Tensor): Tensor {
  checkTensor('exp', 'x', x);
  return record(EXP, map(x, Math.exp), [x], undefined);
}

const LOG = defineOp({ name: 'log', inputs: ['x'], backward: (gy, { inputs: [x] }) => [div(gy, x!)] });
export function log(x: Tensor): Tensor {
  checkTensor('log', 'x', x);
  return record(LOG, map(x, Math.log), [x], undefined);
}

const SQRT = defineOp({
  name: 'sqrt',
  inputs: ['x'],
  backward: (gy, { out }) => [zip('sqrt', gy, out, (g, y) => g / (2 * y))],
});
export function sqrt(x: Tensor): Tensor {
  checkTensor('sqrt', 'x', x);
  return record(SQRT, map(x, Math.sqrt), [x], undefined);
}

const ABS = defineOp({
  name: 'abs',
  inputs: ['x'],
  // sign(x)·g, with 0 at 0 (PyTorch's subgradient choice)
  backward: (gy, { inputs: [x] }) => [zip('abs', gy, x!, (g, v) => (v > 0 ? g : v < 0 ? -g : 0))],
});
export function abs(x: Tensor): Tensor {
  checkTensor('abs', 'x', x);
  return record(ABS, map(x, Math.abs), [x], undefined);
}

const RELU = defineOp({
  name: 'relu',
  inputs: ['x'],
  backward: (gy, { out }) => [zip('relu', gy, out, (g, y) => (y > 0 ? g : 0))],
});
export function relu(x: Tensor): Tensor {
  checkTensor('relu', 'x', x);
  const out = empty(x.shape, x.dtype);
  const s = x.data;
  const d = out.data;
  for (let i = 0; i < s.length; i++) {
    const v = s[i]!;
    d[i] = v > 0 ? v : 0;
  }
  return record(RELU, out, [x], undefined);
}

const SIGMOID = defineOp({
  name: 'sigmoid',
  inputs: ['x'],
  backward: (gy, { out }) => [zip('sigmoid', gy, out, (g, y) => g * y * (1 - y))],
});
export function sigmoid(x: Tensor): Tensor {
  checkTensor('sigmoid', 'x', x);
  // Two branches so exp never overflows: for v < 0, e^v/(1+e^v).
  return record(
    SIGMOID,
    map(x, (v) => {
      if (v >= 0) return 1 / (1 + Math.exp(-v));
      const e = Math.exp(v);
      return e / (1 + e);
    }),
    [x],
    undefined,
  );
}

const TANH = defineOp({
  name: 'tanh',
  inputs: ['x'],
  backward: (gy, { out }) => [zip('tanh', gy, out, (g, y) => g * (1 - y * y))],
});
export function tanh(x: Tensor): Tensor {
  checkTensor('tanh', 'x', x);
  return record(TANH, map(x, Math.tanh), [x], undefined);
}

interface ClampAttrs {
  min: number;
  max: number;
}
const CLAMP = defineOp<ClampAttrs>({
  name: 'clamp',
  inputs: ['x'],
  // The gradient passes where min ≤ x ≤ max, as in PyTorch.
  backward: (gy, { inputs: [x], attrs: { min, max } }) => [zip('clamp', gy, x!, (g, v) => (v >= min && v <= max ? g : 0))],
});
/** x limited to [min, max]; either bound may be omitted (±Infinity). */
export function clamp(x: Tensor, min = -Infinity, max = Infinity): Tensor {
  checkTensor('clamp', 'x', x);
  if (typeof min !== 'number' || typeof max !== 'number' || Number.isNaN(min) || Number.isNaN(max) || min > max) {
    throw new ValueError(`clamp: bounds must be numbers with min <= max (got min=${min}, max=${max})`);
  }
  return record(CLAMP, map(x, (v) => (v < min ? min : v > max ? max : v)), [x], { min, max });
}

// ---- selection ---------------------------------------------------------------------------------

const WHERE = defineOp({
  name: 'where',
  inputs: ['condition', 'a', 'b'],
  backward: (gy, { inputs: [c] }) => [null, zip('where', gy, c!, (g, m) => (m !== 0 ? g : 0)), zip('where', gy, c!, (g, m) => (m !== 0 ? 0 : g))],
});
/**
 * a where condition is non-zero, else b; all three broadcast. The condition is a mask (from gt, lt, eq...)
 * and gets no gradient.
 */
export function where(condition: Tensor, a: TensorLike, b: TensorLike): Tensor {
  checkTensor('where', 'condition', condition);
  const [x, y] = operands('where', a, b);
  const shape = broadcastShapes('where', condition.shape, broadcastShapes('where', x.shape, y.shape));
  const m = expanded(condition, shape);
  const u = expanded(x, shape);
  const v = expanded(y, shape);
  const out = empty(shape, x.dtype);
  const o = out.data;
  for (let i = 0; i < o.length; i++) o[i] = m[i] !== 0 ? u[i]! : v[i]!;
  return record(WHERE, out, [condition, x, y], undefined);
}

// ---- comparisons: masks of 0 and 1, never differentiable ----------------------------------------

export const gt = (a: TensorLike, b: TensorLike): Tensor => compare('gt', a, b, (u, v) => (u > v ? 1 : 0));
export const ge = (a: TensorLike, b: TensorLike): Tensor => compare('ge', a, b, (u, v) => (u >= v ? 1 : 0));
export const lt = (a: TensorLike, b: TensorLike): Tensor => compare('lt', a, b, (u, v) => (u < v ? 1 : 0));
export const le = (a: TensorLike, b: TensorLike): Tensor => compare('le', a, b, (u, v) => (u <= v ? 1 : 0));
export const eq = (a: TensorLike, b: TensorLike): Tensor => compare('eq', a, b, (u, v) => (u === v ? 1 : 0));

function compare(op: string, a: TensorLike, b: TensorLike, f: (u: number, v: number) => number): Tensor {
  const [x, y] = operands(op, a, b);
  return zip(op, x, y, f);
}

/** t's values laid out in `shape` (t itself when it already has it). */
function expanded(t: Tensor, shape: readonly number[]): Storage {
  if (t.shape.length === shape.length && t.size === t.data.length && t.shape.every((d, i) => d === shape[i])) return t.data;
  const out = empty(shape, t.dtype);
  expandInto(t.data, t.shape, out.data, shape);
  return out.data;
}
