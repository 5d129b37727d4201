// Elementwise kernels the engine and the ops share: in-place accumulation, ReLU, adds (equal shapes or a
// bias row) and summing a broadcast gradient back to an operand's shape. No graph, no allocation. f32
// arrays in the WebAssembly heap take its kernels (same bits); everything else runs the loops here.
import type { Storage } from '../tensor/tensor.js';
import { type Shape, broadcastStridesInto, numel, sameShape, zeroed } from '../tensor/shape.js';
import { type WasmHeap, wasmHeap } from './wasm/runtime.js';

/** Below this many elements a loop in TypeScript beats the call into WebAssembly. */
const WASM_MIN = 1024;

/**
 * The heap that every array lives in, when the WebAssembly kernels run, the arrays are f32 and the first
 * is long enough to be worth the call; else null (run the TypeScript loop). Arrays outside the heap are
 * not copied in: for one pass over memory the copy would cost what the loop does.
 */
export function heapOf(first: Storage, second?: Storage, third?: Storage): WasmHeap | null {
  if (!(first instanceof Float32Array) || first.length < WASM_MIN) return null;
  const heap = wasmHeap();
  if (heap === null || heap.addressOf(first) < 0) return null;
  // Fixed arguments, not a rest array: this runs for every op of a step, which allocates nothing.
  return inHeap(heap, second) && inHeap(heap, third) ? heap : null;
}

function inHeap(heap: WasmHeap, a: Storage | undefined): boolean {
  return a === undefined || (a instanceof Float32Array && heap.addressOf(a) >= 0);
}

/** dst += src, element by element (same length). */
export function addInto(dst: Storage, src: Storage): void {
  const n = dst.length;
  const heap = heapOf(dst, src);
  if (heap !== null) {
    const d = heap.addressOf(dst);
    heap.kernels.addF32(d, d, heap.addressOf(src), n);
    return;
  }
  for (let i = 0; i < n; i++) dst[i]! += src[i]!;
}

/** dst = max(src, 0) elementwise, with NaN and −0 giving +0. */
export function reluInto(dst: Storage, src: Storage): void {
  const heap = heapOf(dst, src);
  if (heap !== null) {
    heap.kernels.reluF32(heap.addressOf(dst), heap.addressOf(src), dst.length);
    return;
  }
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    dst[i] = v > 0 ? v : 0;
  }
}

/** ReLU's backward from its output y: dx = y > 0 ? gy : 0 (all the same length). */
export function reluBackwardInto(dx: Storage, gy: Storage, y: Storage): void {
  const heap = heapOf(dx, gy, y);
  if (heap !== null) {
    heap.kernels.reluBackwardF32(heap.addressOf(dx), heap.addressOf(gy), heap.addressOf(y), dx.length);
    return;
  }
  for (let i = 0; i < dx.length; i++) dx[i] = y[i]! > 0 ? gy[i]! : 0;
}

/**
 * When `row` (leading 1s aside) is the trailing shape of `full`, i.e. `full` is rows × cols with `row` one
 * of its rows, returns cols; else 0. A bias broadcast over a batch, and its gradient, have this shape.
 */
export function trailingRow(full: Shape, row: Shape): number {
  let lead = 0;
  while (lead < row.length && row[lead] === 1) lead++;
  const k = row.length - lead;
  if (k === 0 || k > full.length) return 0;
  for (let i = 1; i <= k; i++) if (row[row.length - i] !== full[full.length - i]) return 0;
  return numel(row);
}

/**
 * out = a + b on the WebAssembly kernels, where the shapes allow it (equal, or b one row of a) and every
 * array is in the heap; false when the caller should run its general loop instead.
 */
export function addFast(a: Storage, aShape: Shape, b: Storage, bShape: Shape, out: Storage): boolean {
  const same = sameShape(aShape, bShape);
  // b's rank at most a's, so the result has a's shape.
  const cols = same || bShape.length > aShape.length ? 0 : trailingRow(aShape, bShape);
  if (!same && cols === 0) return false;
  const heap = heapOf(out, a, b);
  if (heap === null) return false;
  if (same) heap.kernels.addF32(heap.addressOf(out), heap.addressOf(a), heap.addressOf(b), out.length);
  else heap.kernels.addRowsF32(heap.addressOf(out), heap.addressOf(a), heap.addressOf(b), a.length / cols, cols);
  return true;
}

/** dst = src (same length). */
export function copyInto(dst: Storage, src: Storage): void {
  const heap = heapOf(dst, src);
  if (heap !== null) heap.kernels.copyF32(heap.addressOf(dst), heap.addressOf(src), dst.length);
  else dst.set(src);
}

const SUM_STRIDES: number[] = [];
const SUM_IDX: number[] = [];

/**
 * dst[shape `to`] = sum of src[shape `from`] over the axes that `to` broadcasts along.
 * `to` must broadcast to `from`. Walks src in order and maps each index to dst through
 * zero strides, so any mix of reduced and kept axes costs one pass.
 */
export function sumToShape(src: Storage, from: Shape, dst: Storage, to: Shape): void {
  const cols = trailingRow(from, to);
  const heap = cols > 0 ? heapOf(src, dst) : null;
  if (heap !== null) {
    heap.kernels.sumRowsF32(heap.addressOf(dst), heap.addressOf(src), src.length / cols, cols);
    return;
  }
  dst.fill(0);
  const rank = from.length;
  const n = numel(from);
  if (n === 0) return;
  const ds = broadcastStridesInto(to, from, SUM_STRIDES);
  // Collapse the innermost axis into a tight loop: it is either kept (stride 1) or reduced (stride 0).
  const inner = rank === 0 ? 1 : from[rank - 1]!;
  const innerStride = rank === 0 ? 0 : ds[rank - 1]!;
  const outer = inner === 0 ? 0 : n / inner;
  const idx = zeroed(SUM_IDX, rank - 1);
  let dOff = 0;
  let s = 0;
  for (let o = 0; o < outer; o++) {
    if (innerStride === 0) {
      let acc = 0;
      for (let i = 0; i < inner; i++) acc += src[s + i]!;
      dst[dOff]! += acc;
    } else {
      for (let i = 0; i < inner; i++) dst[dOff + i]! += src[s + i]!;
    }
    s += inner;
    // Odometer increment over the outer axes, keeping dOff in step.
    for (let ax = rank - 2; ax >= 0; ax--) {
      idx[ax]!++;
      dOff += ds[ax]!;
      if (idx[ax]! < from[ax]!) break;
      dOff -= ds[ax]! * from[ax]!;
      idx[ax] = 0;
    }
  }
}
