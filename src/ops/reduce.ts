// Reductions over axes: sum and max are primitives; mean is sum scaled. keepdim as in PyTorch.
import { ShapeError, fmtShape } from '../errors.js';
import { defineOp, grads, recordOp } from '../autograd/engine.js';
import { sumToShape } from '../kernels/elementwise.js';
import { normAxis, numel, zeroed } from '../tensor/shape.js';
import { Tensor, empty, stableShape } from '../tensor/tensor.js';
import { mul, div } from './elementwise.js';
import { broadcastTo, reshape } from './shape.js';
import { checkTensor, zip } from './util.js';
import { zipKernel } from '../kernels/broadcast.js';

const EQ_K = zipKernel('x === y ? 1 : 0');

export type Axes = number | readonly number[];

// Scratch for one reduction call (reductions never nest while these are in use): which axes it reduces,
// and the shapes built from that before `stableShape` copies them.
const reduced: boolean[] = [];
const scratch: number[] = [];

/** Marks the axes a reduction over `axes` (undefined = all) removes from a rank-`rank` tensor, in `reduced`. */
function markAxes(op: string, axes: Axes | undefined, rank: number): void {
  for (let i = 0; i < Math.max(rank, 1); i++) reduced[i] = axes === undefined; // a 0-d tensor accepts axis 0
  if (axes === undefined) return;
  if (typeof axes === 'number') {
    reduced[normAxis(op, axes, rank)] = true;
    return;
  }
  for (let i = 0; i < axes.length; i++) {
    const a = normAxis(op, axes[i]!, rank);
    if (reduced[a]) throw new ShapeError(`${op}: axes ${fmtShape(axes)} repeat an axis`);
    reduced[a] = true;
  }
}

/** The input's shape with the marked axes at size 1: the shape gradients are broadcast from. */
function keptShape(shape: readonly number[]): readonly number[] {
  for (let i = 0; i < shape.length; i++) scratch[i] = reduced[i] ? 1 : shape[i]!;
  return stableShape(scratch, shape.length);
}

/** The result's shape: kept, or the input's shape without the marked axes. */
function finalShape(shape: readonly number[], kept: readonly number[], keepdim: boolean): readonly number[] {
  if (keepdim) return kept;
  let n = 0;
  for (let i = 0; i < shape.length; i++) if (!reduced[i]) scratch[n++] = shape[i]!;
  return stableShape(scratch, n);
}

/** attrs of sum and max: the kept shape (see keptShape). */
const SUM = defineOp<readonly number[]>({
  name: 'sum',
  inputs: ['x'],
  backward: (gy, { inputs, attrs: kept }) => grads(broadcastTo(reshape(gy, kept), inputs[0]!.shape)),
});
/** Sum over `axes` (all when omitted). */
export function sum(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  checkTensor('sum', 'x', x);
  markAxes('sum', axes, x.ndim);
  const kept = keptShape(x.shape);
  const out = empty(finalShape(x.shape, kept, keepdim), x.dtype);
  sumToShape(x.data, x.shape, out.data, kept);
  return recordOp(SUM, out, kept, x);
}

/** Mean over `axes` (all when omitted). */
export function mean(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  checkTensor('mean', 'x', x);
  markAxes('mean', axes, x.ndim);
  let n = 1;
  for (let i = 0; i < x.ndim; i++) if (reduced[i]) n *= x.shape[i]!;
  // Divide, as PyTorch does: multiplying by the rounded 1/n can be an ulp off (mean of [0,1,4]: 5·(1/3) ≠ 5/3).
  return div(sum(x, axes, keepdim), n);
}

const MAX = defineOp<readonly number[]>({
  name: 'max',
  inputs: ['x'],
  // Ties share the gradient equally (torch.amax): mask of the maxima divided by their count.
  backward: (gy, { inputs, out, attrs: kept }) => {
    const mask = zip('max', inputs[0]!, reshape(out, kept), EQ_K);
    const count = empty(kept, mask.dtype);
    sumToShape(mask.data, mask.shape, count.data, kept);
    return grads(mul(mask, div(reshape(gy, kept), count)));
  },
});
/** Largest value over `axes` (all when omitted); NaN wins, as in PyTorch. */
export function max(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  checkTensor('max', 'x', x);
  markAxes('max', axes, x.ndim);
  const kept = keptShape(x.shape);
  const out = empty(finalShape(x.shape, kept, keepdim), x.dtype);
  maxInto(x, kept, out.data);
  return recordOp(MAX, out, kept, x);
}

/** Index of the largest value along `axis` for each position of the other axes (first index on ties). */
export function argmax(x: Tensor, axis = -1): Int32Array {
  checkTensor('argmax', 'x', x);
  const ax = normAxis('argmax', axis, x.ndim);
  const inner = numel(x.shape.slice(ax + 1));
  const outer = numel(x.shape.slice(0, ax));
  const len = x.shape[ax]!;
  const res = new Int32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let best = 0;
      let bv = x.data[o * len * inner + i]!;
      for (let j = 1; j < len; j++) {
        const v = x.data[(o * len + j) * inner + i]!;
        if (v > bv) {
          bv = v;
          best = j;
        }
      }
      res[o * inner + i] = best;
    }
  }
  return res;
}

const MAX_STRIDES: number[] = [];
const MAX_IDX: number[] = [];

/** The maxima of x into `dst` (laid out as `kept`, x's shape with reduced axes at size 1). */
function maxInto(x: Tensor, kept: readonly number[], dst: Float32Array | Float64Array): void {
  dst.fill(-Infinity);
  const rank = x.ndim;
  if (x.size === 0) return;
  const ds = zeroed(MAX_STRIDES, rank);
  let acc = 1;
  for (let i = rank - 1; i >= 0; i--) {
    ds[i] = kept[i] === 1 ? 0 : acc;
    acc *= kept[i]!;
  }
  const idx = zeroed(MAX_IDX, rank);
  let d = 0;
  const src = x.data;
  for (let s = 0; s < src.length; s++) {
    const v = src[s]!;
    if (v > dst[d]! || Number.isNaN(v)) dst[d] = v;
    for (let a = rank - 1; a >= 0; a--) {
      idx[a]!++;
      d += ds[a]!;
      if (idx[a]! < x.shape[a]!) break;
      d -= ds[a]! * x.shape[a]!;
      idx[a] = 0;
    }
  }
}
