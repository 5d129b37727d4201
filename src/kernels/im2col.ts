// im2col and col2im for one image and one group of channels: the copies that turn a 2-D convolution into a GEMM.
// f32 runs the WebAssembly versions (wasm/assembly/im2col.ts) when those kernels are in use; these loops are
// the f64 path, the fallback and the oracle.
import type { FloatArray } from './matmul.js';
import { wasmHeap } from './wasm/runtime.js';

/**
 * The geometry of one convolution, for one group: C input channels of H×W, a kh×kw kernel, stride
 * (sh, sw), zero padding (ph, pw), dilation (dh, dw), giving an oh×ow output.
 */
export interface ConvGeometry {
  readonly C: number;
  readonly H: number;
  readonly W: number;
  readonly kh: number;
  readonly kw: number;
  readonly sh: number;
  readonly sw: number;
  readonly ph: number;
  readonly pw: number;
  readonly dh: number;
  readonly dw: number;
  readonly oh: number;
  readonly ow: number;
}

/*
 * Layout of the column matrix: [C·kh·kw, oh·ow], row r = (c·kh + i)·kw + j (the order of a weight
 * [outC, C, kh, kw] read as [outC, C·kh·kw]), column l = oy·ow + ox, value x[c, oy·sh − ph + i·dh,
 * ox·sw − pw + j·dw] or 0 in the padding.
 *
 * For one row the valid ox form one range [lo, hi) (the same for every oy), so each output row is
 * zeros · a strided copy · zeros, with no bounds test per element.
 */

/** First ox whose input column ox·sw + off is ≥ 0, clamped to [0, ow]. */
function firstValid(off: number, sw: number, ow: number): number {
  return off >= 0 ? 0 : Math.min(ow, Math.ceil(-off / sw));
}

/** One past the last ox whose input column ox·sw + off is < W, at least `lo`. */
function endValid(off: number, sw: number, ow: number, W: number, lo: number): number {
  const last = W - 1 - off;
  return last < 0 ? lo : Math.max(lo, Math.min(ow, Math.floor(last / sw) + 1));
}

/** Writes the [C·kh·kw, oh·ow] columns of the C×H×W image at src[srcOff] to dst[dstOff]. */
export function im2col(src: FloatArray, srcOff: number, g: ConvGeometry, dst: FloatArray, dstOff: number): void {
  const { C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow } = g;
  const heap = src instanceof Float32Array ? wasmHeap() : null;
  if (heap !== null) {
    const n = C * kh * kw * oh * ow;
    const s = heap.input(0, src as Float32Array, srcOff, C * H * W), d = heap.output(1, dst as Float32Array, dstOff, n);
    heap.kernels.im2col(s, d, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow);
    heap.flush(1, dst as Float32Array, dstOff, n);
    return;
  }
  let d = dstOff;
  for (let c = 0; c < C; c++) {
    const plane = srcOff + c * H * W;
    for (let i = 0; i < kh; i++) {
      const yOff = i * dh - ph;
      for (let j = 0; j < kw; j++) {
        const xOff = j * dw - pw;
        const lo = firstValid(xOff, sw, ow);
        const hi = endValid(xOff, sw, ow, W, lo);
        for (let oy = 0; oy < oh; oy++, d += ow) {
          const iy = oy * sh + yOff;
          if (iy < 0 || iy >= H) {
            for (let ox = 0; ox < ow; ox++) dst[d + ox] = 0;
            continue;
          }
          const s = plane + iy * W + xOff;
          let ox = 0;
          for (; ox < lo; ox++) dst[d + ox] = 0;
          if (sw === 1) for (; ox < hi; ox++) dst[d + ox] = src[s + ox];
          else for (; ox < hi; ox++) dst[d + ox] = src[s + ox * sw];
          for (; ox < ow; ox++) dst[d + ox] = 0;
        }
      }
    }
  }
}

/**
 * The adjoint of im2col: adds each entry of the [C·kh·kw, oh·ow] columns at src[srcOff] into the input
 * position it was read from in the C×H×W image at dst[dstOff] (overlapping windows accumulate, padding
 * entries are dropped). dst must hold what it should be added to (zeros for a fresh gradient).
 */
export function col2im(src: FloatArray, srcOff: number, g: ConvGeometry, dst: FloatArray, dstOff: number): void {
  const { C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow } = g;
  const heap = src instanceof Float32Array ? wasmHeap() : null;
  if (heap !== null) {
    const n = C * H * W;
    const a = heap.input(0, src as Float32Array, srcOff, C * kh * kw * oh * ow), b = heap.input(1, dst as Float32Array, dstOff, n);
    heap.kernels.col2im(a, b, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow);
    heap.flush(1, dst as Float32Array, dstOff, n);
    return;
  }
  let s = srcOff;
  for (let c = 0; c < C; c++) {
    const plane = dstOff + c * H * W;
    for (let i = 0; i < kh; i++) {
      const yOff = i * dh - ph;
      for (let j = 0; j < kw; j++) {
        const xOff = j * dw - pw;
        const lo = firstValid(xOff, sw, ow);
        const hi = endValid(xOff, sw, ow, W, lo);
        for (let oy = 0; oy < oh; oy++, s += ow) {
          const iy = oy * sh + yOff;
          if (iy < 0 || iy >= H) continue;
          const d = plane + iy * W + xOff;
          if (sw === 1) for (let ox = lo; ox < hi; ox++) dst[d + ox] += src[s + ox];
          else for (let ox = lo; ox < hi; ox++) dst[d + ox * sw] += src[s + ox];
        }
      }
    }
  }
}
