// Broadcasting loops: combine operands of different shapes by walking the output once with zero strides
// for the broadcast axes. Fast paths for equal shapes and scalars, which are most calls.
import type { Storage } from '../tensor/tensor.js';
import { type Shape, broadcastStridesInto, numel, sameShape, zeroed } from '../tensor/shape.js';

/**
 * out = f(a, b) elementwise over the broadcast shape `outShape`, with two optional scalars p, q
 * (clamp's bounds). Arguments: a, aShape, b, bShape, out, outShape, p, q.
 */
export type ZipKernel = (a: Storage, aShape: Shape, b: Storage, bShape: Shape, out: Storage, outShape: Shape, p: number, q: number) => void;

/** dst = f(src) elementwise, with optional scalars p, q. */
export type MapKernel = (src: Storage, dst: Storage, p: number, q: number) => void;

/*
 * Elementwise kernels are generated from one expression each (in x, y, p, q) instead of taking a
 * callback: a callback shared by every op is a megamorphic call V8 cannot inline, and each double it
 * returns is boxed on the heap — megabytes of garbage per training step. Generated once at load time,
 * each kernel is a monomorphic loop with the arithmetic inlined.
 */
const ZIP_TEMPLATE = `
  const n = out.length;
  if (a.length === n && b.length === n && sameShape(aShape, bShape)) {
    for (let i = 0; i < n; i++) { const x = a[i], y = b[i]; out[i] = EXPR; }
    return;
  }
  if (b.length === 1 && a.length === n) {
    const y = b[0];
    for (let i = 0; i < n; i++) { const x = a[i]; out[i] = EXPR; }
    return;
  }
  if (a.length === 1 && b.length === n) {
    const x = a[0];
    for (let i = 0; i < n; i++) { const y = b[i]; out[i] = EXPR; }
    return;
  }
  if (n === 0) return;
  const rank = outShape.length;
  const as = broadcastStridesInto(aShape, outShape, AS);
  const bs = broadcastStridesInto(bShape, outShape, BS);
  const inner = outShape[rank - 1];
  const ai = as[rank - 1];
  const bi = bs[rank - 1];
  const idx = zeroed(IDX, rank);
  let ao = 0;
  let bo = 0;
  for (let o = 0; o < n; o += inner) {
    for (let i = 0; i < inner; i++) { const x = a[ao + i * ai], y = b[bo + i * bi]; out[o + i] = EXPR; }
    for (let ax = rank - 2; ax >= 0; ax--) {
      idx[ax]++;
      ao += as[ax];
      bo += bs[ax];
      if (idx[ax] < outShape[ax]) break;
      ao -= as[ax] * outShape[ax];
      bo -= bs[ax] * outShape[ax];
      idx[ax] = 0;
    }
  }`;

const MAP_TEMPLATE = `
  const n = src.length;
  for (let i = 0; i < n; i++) { const x = src[i]; dst[i] = EXPR; }`;

function checkExpr(expr: string): string {
  // The expressions are literals in this repository; the check keeps it that way.
  if (!/^[\sxypq0-9.+\-*/()<>=!?:&|]*(Math\.\w+[\sxypq0-9.+\-*/()<>=!?:&|,]*)*$/.test(expr)) {
    throw new Error(`kernel expression has unexpected characters: ${expr}`);
  }
  return expr;
}

// Scratch strides and odometer shared by every zip kernel (kernels never nest), so a broadcast allocates nothing.
const AS: number[] = [];
const BS: number[] = [];
const IDX: number[] = [];

export function zipKernel(expr: string): ZipKernel {
  const body = ZIP_TEMPLATE.replaceAll('EXPR', `(${checkExpr(expr)})`);
  const make = new Function('broadcastStridesInto', 'sameShape', 'zeroed', 'AS', 'BS', 'IDX', `return function zip(a, aShape, b, bShape, out, outShape, p, q) {${body}\n};`);
  return make(broadcastStridesInto, sameShape, zeroed, AS, BS, IDX) as ZipKernel;
}

export function mapKernel(expr: string): MapKernel {
  const body = MAP_TEMPLATE.replaceAll('EXPR', `(${checkExpr(expr)})`);
  return new Function(`return function map(src, dst, p, q) {${body}\n};`)() as MapKernel;
}

const EXPAND_STRIDES: number[] = [];
const EXPAND_IDX: number[] = [];

/** dst (shape `to`) = src (shape `from`) repeated along broadcast axes. */
export function expandInto(src: Storage, from: Shape, dst: Storage, to: Shape): void {
  if (src.length === dst.length) {
    dst.set(src);
    return;
  }
  if (src.length === 1) {
    const v = src[0]!;
    for (let i = 0; i < dst.length; i++) dst[i] = v; // not fill(v): a builtin call boxes a non-integer v
    return;
  }
  const n = numel(to);
  if (n === 0) return;
  const rank = to.length;
  const ss = broadcastStridesInto(from, to, EXPAND_STRIDES);
  const inner = to[rank - 1]!;
  const si = ss[rank - 1]!;
  const idx = zeroed(EXPAND_IDX, rank);
  let so = 0;
  for (let o = 0; o < n; o += inner) {
    // Plain loops: subarray() would make a view per row, and fill(v) boxes a non-integer v.
    if (si === 1) for (let i = 0; i < inner; i++) dst[o + i] = src[so + i]!;
    else {
      const v = src[so]!;
      for (let i = 0; i < inner; i++) dst[o + i] = v;
    }
    for (let ax = rank - 2; ax >= 0; ax--) {
      idx[ax]!++;
      so += ss[ax]!;
      if (idx[ax]! < to[ax]!) break;
      so -= ss[ax]! * to[ax]!;
      idx[ax] = 0;
    }
  }
}
