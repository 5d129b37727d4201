// Shape arithmetic: sizes, contiguous strides, broadcasting rules. Pure functions on number arrays.
import { ShapeError, ValueError, fmtShape } from '../errors.js';

export type Shape = readonly number[];

/** Number of elements of `shape`, or of its axes from..to-1 (the product of sizes, no slice made). */
export function numel(shape: Shape, from = 0, to = shape.length): number {
  let n = 1;
  for (let i = from; i < to; i++) n *= shape[i]!;
  return n;
}

/** Row-major strides in elements: the last axis moves fastest. */
export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function checkShape(where: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ValueError(`${where}: shape must be an array of non-negative integers (got ${JSON.stringify(shape)})`);
  }
  return shape.slice();
}

/**
 * NumPy/PyTorch broadcasting: align on the right; sizes must match or be 1. The usual cases (equal shapes,
 * a scalar, a bias) broadcast to one of the operands, which is returned itself: no array is made.
 */
export function broadcastShapes(op: string, a: Shape, b: Shape): Shape {
  if (broadcastsTo(b, a)) return a;
  if (broadcastsTo(a, b)) return b;
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)]!;
    const db = i < n - b.length ? 1 : b[i - (n - b.length)]!;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be broadcast (axis ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** True when `from` broadcasts to exactly `to` (so a gradient of shape `to` can be summed back to `from`). */
export function broadcastsTo(from: Shape, to: Shape): boolean {
  if (from.length > to.length) return false;
  const off = to.length - from.length;
  for (let i = 0; i < from.length; i++) {
    if (from[i] !== 1 && from[i] !== to[i + off]) return false;
  }
  return true;
}

/**
 * Strides for reading a tensor of shape `from` as if it had the broadcast shape `to`:
 * broadcast axes get stride 0, so one index walk serves every operand.
 */
export function broadcastStrides(from: Shape, to: Shape): number[] {
  return broadcastStridesInto(from, to, new Array<number>(to.length));
}

/** broadcastStrides written into `out[0..to.length)`, a reusable scratch array (kernels keep one each). */
export function broadcastStridesInto(from: Shape, to: Shape, out: number[]): number[] {
  zeroed(out, to.length);
  const off = to.length - from.length;
  let acc = 1;
  for (let i = from.length - 1; i >= 0; i--) {
    out[i + off] = from[i] === 1 ? 0 : acc;
    acc *= from[i]!;
  }
  return out;
}

/**
 * `buf` with its first n entries set to 0: a reusable odometer or stride array. Scratch arrays only grow
 * (never `length = 0`, which drops V8's backing store), so reusing one allocates nothing.
 */
export function zeroed(buf: number[], n: number): number[] {
  for (let i = 0; i < n; i++) buf[i] = 0;
  return buf;
}

/** Resolves a possibly negative axis against a rank, with a message naming the op. */
export function normAxis(op: string, axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= Math.max(rank, 1)) {
    throw new ShapeError(`${op}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Resolves a list of axes (undefined = all), sorted, without duplicates. */
export function normAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = list.map((a) => normAxis(op, a, rank));
  const sorted = [...new Set(out)].sort((x, y) => x - y);
  if (sorted.length !== out.length) throw new ShapeError(`${op}: axes ${fmtShape(list)} repeat an axis`);
  return sorted;
}
