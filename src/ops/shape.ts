// Shape primitives: reshape, broadcastTo, permute, slice, concat, gather, indexSelect. Forward moves
// data; backward moves the gradient back to where each value came from.
import { ShapeError, ValueError, fmtShape } from '../errors.js';
import { defineOp, grads, record, recordOp } from '../autograd/engine.js';
import { expandInto } from '../kernels/broadcast.js';
import { broadcastsTo, contiguousStrides, normAxis, numel, sameShape } from '../tensor/shape.js';
import { type Storage, Tensor, empty, makeTensor, stableShape } from '../tensor/tensor.js';
import { checkTensor, dtypesDiffer } from './util.js';

const RESHAPE = defineOp({ name: 'reshape', inputs: ['x'], backward: (gy, { inputs }) => grads(reshape(gy, inputs[0]!.shape)) });
const target: number[] = []; // reshape's scratch
/** Same values, new shape (one axis may be -1 and is inferred). Shares storage: no copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('reshape', 'x', x);
  let infer = -1;
  let known = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (d === -1 && infer < 0) infer = i;
    else if (Number.isInteger(d) && d >= 0) known *= d;
    else throw new ShapeError(`reshape: shape ${fmtShape(shape)} must hold non-negative integers and at most one -1`);
    target[i] = d;
  }
  if (infer >= 0) {
    if (known === 0 || x.size % known !== 0) throw new ShapeError(`reshape: cannot infer the -1 in ${fmtShape(shape)} for ${x.size} elements of ${fmtShape(x.shape)}`);
    target[infer] = x.size / known;
  } else if (known !== x.size) {
    throw new ShapeError(`reshape: shape ${fmtShape(shape)} holds ${known} elements, input ${fmtShape(x.shape)} has ${x.size}`);
  }
  return recordOp(RESHAPE, makeTensor(x.data, stableShape(target, shape.length)), undefined, x);
}

/** Backward is gy itself: the engine sums the broadcast gradient back to x's shape. */
const BROADCAST_TO = defineOp({ name: 'broadcastTo', inputs: ['x'], backward: (gy) => grads(gy) });
/** x repeated along size-1 (or missing leading) axes to `shape`, materialised. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('broadcastTo', 'x', x);
  if (!broadcastsTo(x.shape, shape)) throw new ShapeError(`broadcastTo: shape ${fmtShape(x.shape)} cannot be broadcast to ${fmtShape(shape)}`);
  if (sameShape(x.shape, shape)) return x;
  const out = empty(stableShape(shape), x.dtype);
  expandInto(x.data, x.shape, out.data, out.shape);
  return recordOp(BROADCAST_TO, out, undefined, x);
}

const PERMUTE = defineOp<number[]>({
  name: 'permute',
  inputs: ['x'],
  backward: (gy, { attrs: dims }) => {
    const inv = new Array<number>(dims.length);
    dims.forEach((d, i) => (inv[d] = i));
    return grads(permute(gy, inv));
  },
});
/** Axes reordered: output axis i is input axis dims[i]. Copies into contiguous storage. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  checkTensor('permute', 'x', x);
  const rank = x.ndim;
  const d = dims.map((a) => normAxis('permute', a, rank));
  if (d.length !== rank || new Set(d).size !== rank) {
    throw new ShapeError(`permute: dims ${fmtShape(dims)} must be a permutation of the ${rank} axes of ${fmtShape(x.shape)}`);
  }
  const shape = d.map((a) => x.shape[a]!);
  const out = empty(shape, x.dtype);
  const inStrides = contiguousStrides(x.shape);
  const st = d.map((a) => inStrides[a]!);
  const n = x.size;
  if (n > 0 && rank > 0) {
    const src = x.data;
    const dst = out.data;
    const idx = new Array<number>(rank).fill(0);
    const inner = shape[rank - 1]!;
    const si = st[rank - 1]!;
    let off = 0;
    for (let o = 0; o < n; o += inner) {
      for (let i = 0; i < inner; i++) dst[o + i] = src[off + i * si]!;
      for (let ax = rank - 2; ax >= 0; ax--) {
        idx[ax]!++;
        off += st[ax]!;
        if (idx[ax]! < shape[ax]!) break;
        off -= st[ax]! * shape[ax]!;
        idx[ax] = 0;
      }
    }
  } else if (n > 0) out.data[0] = x.data[0]!;
  return recordOp(PERMUTE, out, d, x);
}

/** Swaps two axes (default: the last two, a matrix transpose). */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  checkTensor('transpose', 'x', x);
  if (x.ndim < 2 && dim0 === -2 && dim1 === -1) return x;
  const a = normAxis('transpose', dim0, x.ndim);
  const b = normAxis('transpose', dim1, x.ndim);
  const dims = Array.from({ length: x.ndim }, (_, i) => (i === a ? b : i === b ? a : i));
  return permute(x, dims);
}

interface SliceAttrs {
  axis: number;
  start: number;
}
const SLICE = defineOp<SliceAttrs>({
  name: 'slice',
  inputs: ['x'],
  backward: (gy, { inputs, attrs }) => {
    const g = empty(inputs[0]!.shape, gy.dtype);
    g.data.fill(0);
    copyBlock(gy, g, attrs.axis, attrs.start);
    return grads(g);
  },
});
/** Elements start..end-1 along `axis` (negative indices count from the end, like Python). */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  checkTensor('slice', 'x', x);
  const ax = axisOf('slice', axis, x.ndim);
  const len = x.shape[ax]!;
  const e0 = end ?? len;
  if (!Number.isInteger(start) || !Number.isInteger(e0)) throw new ValueError(`slice: start and end must be integers (got ${start}, ${end})`);
  const s = Math.min(Math.max(start < 0 ? start + len : start, 0), len);
  const e = Math.min(Math.max(e0 < 0 ? e0 + len : e0, s), len);
  const shape = x.shape.slice();
  shape[ax] = e - s;
  const out = empty(shape, x.dtype);
  // Copy rows of the block: outer × (e-s)·inner contiguous runs.
  const inner = numel(x.shape, ax + 1);
  const outer = numel(x.shape, 0, ax);
  const run = (e - s) * inner;
  for (let o = 0; o < outer; o++) out.data.set(x.data.subarray(o * len * inner + s * inner, o * len * inner + s * inner + run), o * run);
  return recordOp(SLICE, out, { axis: ax, start: s }, x);
}

/**
 * normAxis for ops that index along an axis: unlike a reduction (where a 0-d tensor accepts axis 0, as in
 * PyTorch), a 0-d tensor has no axis to slice, join or index, and would otherwise yield a NaN shape.
 */
function axisOf(op: string, axis: number, rank: number): number {
  if (rank === 0) throw new ShapeError(`${op}: axis ${axis} is out of range for a tensor of rank 0`);
  return normAxis(op, axis, rank);
}

/** Writes `src` into `dst` at offset `start` along `axis` (all other axes equal). */
function copyBlock(src: Tensor, dst: Tensor, axis: number, start: number): void {
  const inner = numel(dst.shape, axis + 1);
  const outer = numel(dst.shape, 0, axis);
  const run = src.shape[axis]! * inner;
  const dlen = dst.shape[axis]! * inner;
  for (let o = 0; o < outer; o++) dst.data.set(src.data.subarray(o * run, o * run + run), o * dlen + start * inner);
}

const CONCAT = defineOp<number>({
  name: 'concat',
  inputs: ['tensors'],
  variadic: true,
  backward: (gy, { inputs, attrs: axis }) => {
    let at = 0;
    return inputs.map((t) => {
      const g = slice(gy, axis, at, at + t.shape[axis]!);
      at += t.shape[axis]!;
      return g;
    });
  },
});
/** Tensors joined along `axis`; all other axes must agree. */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(tensors as unknown) || tensors.length === 0) throw new ValueError('concat: needs a non-empty array of tensors');
  tensors.forEach((t, i) => checkTensor('concat', `tensors[${i}]`, t));
  const first = tensors[0]!;
  if (tensors.some((t) => t.dtype !== first.dtype)) throw dtypesDiffer('concat', tensors);
  const ax = axisOf('concat', axis, first.ndim);
  tensors.forEach((t, i) => {
    if (t.ndim !== first.ndim || t.shape.some((d, k) => k !== ax && d !== first.shape[k])) {
      throw new ShapeError(`concat: tensors[${i}] has shape ${fmtShape(t.shape)}, which does not match ${fmtShape(first.shape)} outside axis ${ax}`);
    }
  });
  const shape = first.shape.slice();
  shape[ax] = tensors.reduce((acc, t) => acc + t.shape[ax]!, 0);
  const out = empty(shape, first.dtype);
  let at = 0;
  for (const t of tensors) {
    copyBlock(t, out, ax, at);
    at += t.shape[ax]!;
  }
  return record(CONCAT, out, tensors, ax);
}

export type Indices = Int32Array | readonly number[];

interface GatherAttrs {
  axis: number;
  index: Indices;
}
function checkIndices(op: string, index: Indices, bound: number): void {
  for (let i = 0; i < index.length; i++) {
    const v = index[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= bound) throw new ValueError(`${op}: index[${i}] = ${v} is out of range [0, ${bound})`);
  }
}

/**
 * Copies the gathered rows between x (shape `xShape`) and out ([outer, k, inner] with `axis` cut to k):
 * out ← x forward; x += out when `scatter` (backward: a repeated index receives the sum of its gradients).
 */
function gatherRows(x: Storage, xShape: readonly number[], out: Storage, axis: number, index: Indices, k: number, perOuter: boolean, scatter: boolean): void {
  const inner = numel(xShape, axis + 1);
  const outer = numel(xShape, 0, axis);
  const len = xShape[axis]!;
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < k; j++) {
      const oo = (o * k + j) * inner;
      const xo = (o * len + index[perOuter ? o * k + j : j]!) * inner;
      if (scatter) for (let i = 0; i < inner; i++) x[xo + i]! += out[oo + i]!;
      else for (let i = 0; i < inner; i++) out[oo + i] = x[xo + i]!;
    }
  }
}

const GATHER = defineOp<GatherAttrs & { perOuter: boolean }>({
  name: 'gather',
  inputs: ['x'],
  backward: (gy, { inputs, attrs: { axis, index, perOuter } }) => {
    const x = inputs[0]!;
    const g = empty(x.shape, x.dtype);
    g.data.fill(0);
    gatherRows(g.data, x.shape, gy.data, axis, index, gy.shape[axis]!, perOuter, true);
    return grads(g);
  },
});
// Same backward under its own name, so the engine's messages say 'indexSelect' (one name everywhere).
const INDEX_SELECT = defineOp<GatherAttrs & { perOuter: boolean }>({ ...GATHER, name: 'indexSelect' });

const gathered: number[] = []; // gatherImpl's scratch
function gatherImpl(op: 'gather' | 'indexSelect', x: Tensor, axis: number, index: Indices, perOuter: boolean): Tensor {
  checkTensor(op, 'x', x);
  const ax = axisOf(op, axis, x.ndim);
  const outer = numel(x.shape, 0, ax);
  if (!(index instanceof Int32Array) && !Array.isArray(index)) throw new ValueError(`${op}: index must be an Int32Array or an array of integers`);
  checkIndices(op, index, x.shape[ax]!);
  let k = index.length;
  if (perOuter) {
    if (outer === 0 ? index.length !== 0 : index.length % outer !== 0) {
      throw new ShapeError(`gather: ${index.length} indices do not divide among the ${outer} positions before axis ${ax} of ${fmtShape(x.shape)}`);
    }
    // torch.gather with an index whose other axes equal x's: this layout has the inner axes of size 1.
    if (numel(x.shape, ax + 1) !== 1) throw new ShapeError(`gather: axis ${ax} must be the last non-trivial axis of ${fmtShape(x.shape)}`);
    k = outer === 0 ? 0 : index.length / outer;
  }
  for (let i = 0; i < x.ndim; i++) gathered[i] = i === ax ? k : x.shape[i]!;
  const out = empty(stableShape(gathered, x.ndim), x.dtype);
  gatherRows(x.data, x.shape, out.data, ax, index, k, perOuter, false);
  return recordOp(op === 'gather' ? GATHER : INDEX_SELECT, out, { axis: ax, index, perOuter }, x);
}

/**
 * torch.gather along the last axis of interest: out[i, j] = x[i, index[i·k + j]], k = index.length / rows.
 * With x of shape [N, C] and one class index per row this picks each row's target (cross-entropy).
 */
export function gather(x: Tensor, axis: number, index: Indices): Tensor {
  return gatherImpl('gather', x, axis, index, true);
}

/** torch.index_select: the slices of x at the given positions along `axis`, the same for every row. */
export function indexSelect(x: Tensor, axis: number, index: Indices): Tensor {
  return gatherImpl('indexSelect', x, axis, index, false);
}
