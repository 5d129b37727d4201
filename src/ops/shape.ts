// Shape primitives: reshape, broadcastTo, permute, slice, concat, gather, indexSelect. Forward moves
// data; backward moves the gradient back to where each value came from.
import { ShapeError, ValueError, fmtShape } from '../errors.js';
import { defineOp, record } from '../autograd/engine.js';
import { expandInto } from '../kernels/broadcast.js';
import { broadcastsTo, contiguousStrides, normAxis, numel, sameShape } from '../tensor/shape.js';
import { Tensor, empty, zeros } from '../tensor/tensor.js';
import { checkTensor, sameDType } from './util.js';

const RESHAPE = defineOp({ name: 'reshape', inputs: ['x'], backward: (gy, { inputs: [x] }) => [reshape(gy, x!.shape)] });
/** Same values, new shape (one axis may be -1 and is inferred). Shares storage: no copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('reshape', 'x', x);
  const s = shape.slice();
  const infer = s.indexOf(-1);
  if (s.some((d, i) => !(Number.isInteger(d) && (d >= 0 || (d === -1 && i === infer)))) || s.lastIndexOf(-1) !== infer) {
    throw new ShapeError(`reshape: shape ${fmtShape(shape)} must hold non-negative integers and at most one -1`);
  }
  if (infer >= 0) {
    const known = numel(s.filter((_, i) => i !== infer));
    if (known === 0 || x.size % known !== 0) throw new ShapeError(`reshape: cannot infer the -1 in ${fmtShape(shape)} for ${x.size} elements of ${fmtShape(x.shape)}`);
    s[infer] = x.size / known;
  }
  if (numel(s) !== x.size) throw new ShapeError(`reshape: shape ${fmtShape(shape)} holds ${numel(s)} elements, input ${fmtShape(x.shape)} has ${x.size}`);
  return record(RESHAPE, new Tensor(x.data, s), [x], undefined);
}

/** Backward is [gy]: the engine sums the broadcast gradient back to x's shape. */
const BROADCAST_TO = defineOp({ name: 'broadcastTo', inputs: ['x'], backward: (gy) => [gy] });
/** x repeated along size-1 (or missing leading) axes to `shape`, materialised. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('broadcastTo', 'x', x);
  if (!broadcastsTo(x.shape, shape)) throw new ShapeError(`broadcastTo: shape ${fmtShape(x.shape)} cannot be broadcast to ${fmtShape(shape)}`);
  if (sameShape(x.shape, shape)) return x;
  const out = empty(shape.slice(), x.dtype);
  expandInto(x.data, x.shape, out.data, shape);
  return record(BROADCAST_TO, out, [x], undefined);
}

const PERMUTE = defineOp<number[]>({
  name: 'permute',
  inputs: ['x'],
  backward: (gy, { attrs: dims }) => {
    const inv = new Array<number>(dims.length);
    dims.forEach((d, i) => (inv[d] = i));
    return [permute(gy, inv)];
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
  return record(PERMUTE, out, [x], d);
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
  backward: (gy, { inputs: [x], attrs: { axis, start } }) => {
    const g = zeros(x!.shape, { dtype: x!.dtype });
    copyBlock(gy, g, axis, start);
    return [g];
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
  const inner = numel(x.shape.slice(ax + 1));
  const outer = numel(x.shape.slice(0, ax));
  const run = (e - s) * inner;
  for (let o = 0; o < outer; o++) out.data.set(x.data.subarray(o * len * inner + s * inner, o * len * inner + s * inner + run), o * run);
  return record(SLICE, out, [x], { axis: ax, start: s });
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
  const inner = numel(dst.shape.slice(axis + 1));
  const outer = numel(dst.shape.slice(0, axis));
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
  sameDType('concat', ...tensors);
  const first = tensors[0]!;
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

/** Walks (outer, position along axis, inner) and hands each pair of flat offsets to `f`. */
function forGathered(xShape: readonly number[], axis: number, index: Indices, k: number, perOuter: boolean, f: (outOff: number, xOff: number, inner: number) => void): void {
  const inner = numel(xShape.slice(axis + 1));
  const outer = numel(xShape.slice(0, axis));
  const len = xShape[axis]!;
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < k; j++) {
      const src = index[perOuter ? o * k + j : j]!;
      f((o * k + j) * inner, (o * len + src) * inner, inner);
    }
  }
}

const GATHER = defineOp<GatherAttrs & { perOuter: boolean }>({
  name: 'gather',
  inputs: ['x'],
  // Scatter-add: an index that repeats receives the sum of its gradients.
  backward: (gy, { inputs: [x], attrs: { axis, index, perOuter } }) => {
    const g = zeros(x!.shape, { dtype: x!.dtype });
    const k = gy.shape[axis]!;
    forGathered(x!.shape, axis, index, k, perOuter, (oo, xo, inner) => {
      for (let i = 0; i < inner; i++) g.data[xo + i]! += gy.data[oo + i]!;
    });
    return [g];
  },
});
// Same backward under its own name, so the engine's messages say 'indexSelect' (one name everywhere).
const INDEX_SELECT = defineOp<GatherAttrs & { perOuter: boolean }>({ ...GATHER, name: 'indexSelect' });

function gatherImpl(op: 'gather' | 'indexSelect', x: Tensor, axis: number, index: Indices, perOuter: boolean): Tensor {
  checkTensor(op, 'x', x);
  const ax = axisOf(op, axis, x.ndim);
  const outer = numel(x.shape.slice(0, ax));
  if (!(index instanceof Int32Array) && !Array.isArray(index)) throw new ValueError(`${op}: index must be an Int32Array or an array of integers`);
  checkIndices(op, index, x.shape[ax]!);
  let k = index.length;
  if (perOuter) {
    if (outer === 0 ? index.length !== 0 : index.length % outer !== 0) {
      throw new ShapeError(`gather: ${index.length} indices do not divide among the ${outer} positions before axis ${ax} of ${fmtShape(x.shape)}`);
    }
    // torch.gather with an index whose other axes equal x's: this layout has the inner axes of size 1.
    if (numel(x.shape.slice(ax + 1)) !== 1) throw new ShapeError(`gather: axis ${ax} must be the last non-trivial axis of ${fmtShape(x.shape)}`);
    k = outer === 0 ? 0 : index.length / outer;
  }
  const shape = x.shape.slice();
  shape[ax] = k;
  const out = empty(shape, x.dtype);
  forGathered(x.shape, ax, index, k, perOuter, (oo, xo, inner) => {
    for (let i = 0; i < inner; i++) out.data[oo + i] = x.data[xo + i]!;
  });
  return record(op === 'gather' ? GATHER : INDEX_SELECT, out, [x], { axis: ax, index, perOuter });
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
