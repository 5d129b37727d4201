// Reductions over axes: sum and max are primitives; mean is sum scaled. keepdim as in PyTorch.
import { defineOp, record } from '../autograd/engine.js';
import { sumToShape } from '../kernels/elementwise.js';
import { normAxes, normAxis, numel } from '../tensor/shape.js';
import { Tensor, empty } from '../tensor/tensor.js';
import { mul, div } from './elementwise.js';
import { broadcastTo, reshape } from './shape.js';
import { checkTensor, zip } from './util.js';
import { zipKernel } from '../kernels/broadcast.js';

const EQ_K = zipKernel('x === y ? 1 : 0');

export type Axes = number | readonly number[];

interface ReduceAttrs {
  /** The output's shape with reduced axes kept as size 1: the shape gradients are broadcast from. */
  kept: number[];
}

function keptShape(shape: readonly number[], axes: number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function finalShape(shape: readonly number[], axes: number[], keepdim: boolean): number[] {
  return keepdim ? keptShape(shape, axes) : shape.filter((_, i) => !axes.includes(i));
}

const SUM = defineOp<ReduceAttrs>({
  name: 'sum',
  inputs: ['x'],
  backward: (gy, { inputs: [x], attrs: { kept } }) => [broadcastTo(reshape(gy, kept), x!.shape)],
});
/** Sum over `axes` (all when omitted). */
export function sum(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  checkTensor('sum', 'x', x);
  const ax = normAxes('sum', axes, x.ndim);
  const kept = keptShape(x.shape, ax);
  const out = empty(finalShape(x.shape, ax, keepdim), x.dtype);
  sumToShape(x.data, x.shape, out.data, kept);
  return record(SUM, out, [x], { kept });
}

/** Mean over `axes` (all when omitted). */
export function mean(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  checkTensor('mean', 'x', x);
  const ax = normAxes('mean', axes, x.ndim);
  const n = numel(ax.map((a) => x.shape[a]!));
  // Divide, as PyTorch does: multiplying by the rounded 1/n can be an ulp off (mean of [0,1,4]: 5·(1/3) ≠ 5/3).
  return div(sum(x, ax, keepdim), n);
}

const MAX = defineOp<ReduceAttrs>({
  name: 'max',
  inputs: ['x'],
  // Ties share the gradient equally (torch.amax): mask of the maxima divided by their count.
  backward: (gy, { inputs: [x], out, attrs: { kept } }) => {
    const mask = zip('max', x!, reshape(out, kept), EQ_K);
    return [mul(mask, div(reshape(gy, kept), sum(mask, keptAxes(kept, x!.shape), true)))];
  },
});
function keptAxes(kept: number[], shape: readonly number[]): number[] {
  return kept.flatMap((d, i) => (d === 1 && shape[i] !== 1 ? [i] : []));
}
/** Largest value over `axes` (all when omitted); NaN wins, as in PyTorch. */
export function max(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  checkTensor('max', 'x', x);
  const ax = normAxes('max', axes, x.ndim);
  const kept = keptShape(x.shape, ax);
  const out = empty(finalShape(x.shape, ax, keepdim), x.dtype);
  maxInto(x, kept, out.data);
  return record(MAX, out, [x], { kept });
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

/** The maxima of x into `dst` (laid out as `kept`, x's shape with reduced axes at size 1). */
function maxInto(x: Tensor, kept: number[], dst: Float32Array | Float64Array): void {
  dst.fill(-Infinity);
  const rank = x.ndim;
  if (x.size === 0) return;
  const ds = new Array<number>(rank);
  let acc = 1;
  for (let i = rank - 1; i >= 0; i--) {
    ds[i] = kept[i] === 1 ? 0 : acc;
    acc *= kept[i]!;
  }
  const idx = new Array<number>(rank).fill(0);
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
