// Broadcasting loops: combine operands of different shapes by walking the output once with zero strides
// for the broadcast axes. Fast paths for equal shapes and scalars, which are most calls.
import type { Storage } from '../tensor/tensor.js';
import { type Shape, broadcastStrides, numel, sameShape } from '../tensor/shape.js';

export type Binary = (x: number, y: number) => number;

/** out[i] = f(a[i'], b[i'']) over the broadcast shape `outShape`. */
export function zipInto(a: Storage, aShape: Shape, b: Storage, bShape: Shape, out: Storage, outShape: Shape, f: Binary): void {
  const n = out.length;
  if (a.length === n && b.length === n && sameShape(aShape, bShape)) {
    for (let i = 0; i < n; i++) out[i] = f(a[i]!, b[i]!);
    return;
  }
  if (b.length === 1 && a.length === n) {
    const y = b[0]!;
    for (let i = 0; i < n; i++) out[i] = f(a[i]!, y);
    return;
  }
  if (a.length === 1 && b.length === n) {
    const x = a[0]!;
    for (let i = 0; i < n; i++) out[i] = f(x, b[i]!);
    return;
  }
  if (n === 0) return;
  const rank = outShape.length;
  const as = broadcastStrides(aShape, outShape);
  const bs = broadcastStrides(bShape, outShape);
  const inner = outShape[rank - 1]!;
  const ai = as[rank - 1]!;
  const bi = bs[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  let ao = 0;
  let bo = 0;
  for (let o = 0; o < n; o += inner) {
    for (let i = 0; i < inner; i++) out[o + i] = f(a[ao + i * ai]!, b[bo + i * bi]!);
    for (let ax = rank - 2; ax >= 0; ax--) {
      idx[ax]!++;
      ao += as[ax]!;
      bo += bs[ax]!;
      if (idx[ax]! < outShape[ax]!) break;
      ao -= as[ax]! * outShape[ax]!;
      bo -= bs[ax]! * outShape[ax]!;
      idx[ax] = 0;
    }
  }
}

/** dst (shape `to`) = src (shape `from`) repeated along broadcast axes. */
export function expandInto(src: Storage, from: Shape, dst: Storage, to: Shape): void {
  if (src.length === dst.length) {
    dst.set(src);
    return;
  }
  if (src.length === 1) {
    dst.fill(src[0]!);
    return;
  }
  const n = numel(to);
  if (n === 0) return;
  const rank = to.length;
  const ss = broadcastStrides(from, to);
  const inner = to[rank - 1]!;
  const si = ss[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  let so = 0;
  for (let o = 0; o < n; o += inner) {
    if (si === 1) dst.set(src.subarray(so, so + inner), o);
    else dst.fill(src[so]!, o, o + inner);
    for (let ax = rank - 2; ax >= 0; ax--) {
      idx[ax]!++;
      so += ss[ax]!;
      if (idx[ax]! < to[ax]!) break;
      so -= ss[ax]! * to[ax]!;
      idx[ax] = 0;
    }
  }
}
