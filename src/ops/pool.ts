// Spatial pooling over NCHW maps: maxPool2d and avgPool2d are primitives (forward and backward side by side);
// adaptiveAvgPool2d to 1×1 and flatten are composites (a mean and a reshape), the usual head of a CNN.
import { ShapeError, ValueError, fmtShape, fmtValue } from '../errors.js';
import { defineOp, grads, recordOp } from '../autograd/engine.js';
import { normAxis, numel } from '../tensor/shape.js';
import { type Storage, Tensor, empty, stableShape, zeros } from '../tensor/tensor.js';
import { type IntPair, fmtPair, intPair } from './conv.js';
import { mean } from './reduce.js';
import { reshape } from './shape.js';
import { checkTensor } from './util.js';
import { heapOf } from '../kernels/elementwise.js';

interface PoolAttrs {
  /** N·C planes of H×W. */
  planes: number;
  H: number;
  W: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  oh: number;
  ow: number;
  countIncludePad: boolean;
}

/*
 * Window (oy, ox) covers rows oy·sh − ph + [0, kh) and columns ox·sw − pw + [0, kw); positions in the
 * padding are skipped (they are −∞ for max and 0 for avg). PyTorch requires padding ≤ kernel/2, which
 * keeps at least one real element in every window.
 */

// ---- max -------------------------------------------------------------------------------------------

const MAX_POOL2D = defineOp<PoolAttrs>({
  name: 'maxPool2d',
  inputs: ['x'],
  // The gradient of each window goes to its argmax. The argmax is found again from x rather than saved
  // from the forward: the scan costs what the forward did and the step keeps no index tensor.
  backward: (gy, { inputs, attrs: a }) => {
    const x = inputs[0]!;
    const dx = zeros(x.shape, { dtype: x.dtype });
    maxPoolKernel(x.data, a, gy.data, dx.data, true);
    return grads(dx);
  },
});

/**
 * torch.nn.functional.max_pool2d (ceil_mode false, dilation 1): the largest value of each kh×kw window;
 * ties go to the first position in row-major order and NaN wins, as in PyTorch.
 */
export function maxPool2d(x: Tensor, kernelSize: IntPair, stride?: IntPair | null, padding: IntPair = 0): Tensor {
  return maxPool2dAs('maxPool2d', x, kernelSize, stride, padding);
}

/** maxPool2d with its errors reported under `where` (the MaxPool2d layer names itself). */
export function maxPool2dAs(where: string, x: Tensor, kernelSize: IntPair, stride: IntPair | null | undefined, padding: IntPair): Tensor {
  const a = poolAttrs(where, x, kernelSize, stride, padding, true);
  const out = empty([x.shape[0]!, x.shape[1]!, a.oh, a.ow], x.dtype);
  maxPoolKernel(x.data, a, out.data, out.data, false);
  return recordOp(MAX_POOL2D, out, a, x);
}

/**
 * Finds each window's maximum in x. Forward (backward = false) writes it to out[o]; backward adds
 * gy[o] (passed as `out`) into dx at the argmax. One loop for both keeps them on the same tie rule.
 */
function maxPoolKernel(x: Storage, a: PoolAttrs, out: Storage, dx: Storage, backward: boolean): void {
  const { planes, H, W, kh, kw, sh, sw, ph, pw, oh, ow } = a;
  const heap = heapOf(x, out, dx);
  if (heap !== null) {
    heap.kernels.maxPoolF32(heap.addressOf(x), heap.addressOf(out), heap.addressOf(dx), backward ? 1 : 0, planes, H, W, kh, kw, sh, sw, ph, pw, oh, ow);
    return;
  }
  let o = 0;
  for (let p = 0; p < planes; p++) {
    const base = p * H * W;
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * sh - ph;
      const ys = Math.max(y0, 0);
      const ye = Math.min(y0 + kh, H);
      for (let ox = 0; ox < ow; ox++, o++) {
        const x0 = ox * sw - pw;
        const xs = Math.max(x0, 0);
        const xe = Math.min(x0 + kw, W);
        let best = -Infinity;
        let at = base + ys * W + xs;
        for (let y = ys; y < ye; y++) {
          for (let i = base + y * W + xs, e = base + y * W + xe; i < e; i++) {
            const v = x[i]!;
            // Strictly greater keeps the first of equal maxima; NaN replaces anything (PyTorch's rule).
            if (v > best || v !== v) {
              best = v;
              at = i;
            }
          }
        }
        if (backward) dx[at]! += out[o]!;
        else out[o] = best;
      }
    }
  }
}

// ---- average ---------------------------------------------------------------------------------------

const AVG_POOL2D = defineOp<PoolAttrs>({
  name: 'avgPool2d',
  inputs: ['x'],
  // Each window spreads gy/divisor evenly over its real (non-padding) positions.
  backward: (gy, { inputs, attrs: a }) => {
    const dx = zeros(inputs[0]!.shape, { dtype: gy.dtype });
    avgPoolKernel(dx.data, a, gy.data, true);
    return grads(dx);
  },
});

/**
 * torch.nn.functional.avg_pool2d (ceil_mode false): the mean of each kh×kw window. With countIncludePad
 * (the default) padding zeros count in the divisor; without, only real positions do.
 */
export function avgPool2d(x: Tensor, kernelSize: IntPair, stride?: IntPair | null, padding: IntPair = 0, countIncludePad = true): Tensor {
  return avgPool2dAs('avgPool2d', x, kernelSize, stride, padding, countIncludePad);
}

/** avgPool2d with its errors reported under `where` (the AvgPool2d layer names itself). */
export function avgPool2dAs(
  where: string,
  x: Tensor,
  kernelSize: IntPair,
  stride: IntPair | null | undefined,
  padding: IntPair,
  countIncludePad: boolean,
): Tensor {
  if (typeof countIncludePad !== 'boolean') throw new ValueError(`${where}: countIncludePad must be a boolean (got ${fmtValue(countIncludePad)})`);
  const a = poolAttrs(where, x, kernelSize, stride, padding, countIncludePad);
  const out = empty([x.shape[0]!, x.shape[1]!, a.oh, a.ow], x.dtype);
  avgPoolKernel(x.data, a, out.data, false);
  return recordOp(AVG_POOL2D, out, a, x);
}

/**
 * Forward (backward = false): out[o] = Σ window of x / divisor. Backward: x is dx and out is gy; adds
 * gy[o] / divisor to each real position of window o. The divisor is PyTorch's: with countIncludePad the
 * window clipped to the padded input (always kh·kw without ceil_mode), else its real positions.
 */
function avgPoolKernel(x: Storage, a: PoolAttrs, out: Storage, backward: boolean): void {
  const { planes, H, W, kh, kw, sh, sw, ph, pw, oh, ow, countIncludePad } = a;
  let o = 0;
  for (let p = 0; p < planes; p++) {
    const base = p * H * W;
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * sh - ph;
      const ys = Math.max(y0, 0);
      const ye = Math.min(y0 + kh, H);
      const hp = Math.min(y0 + kh, H + ph) - y0;
      for (let ox = 0; ox < ow; ox++, o++) {
        const x0 = ox * sw - pw;
        const xs = Math.max(x0, 0);
        const xe = Math.min(x0 + kw, W);
        const div = countIncludePad ? hp * (Math.min(x0 + kw, W + pw) - x0) : (ye - ys) * (xe - xs);
        if (backward) {
          const g = out[o]! / div;
          for (let y = ys; y < ye; y++) for (let i = base + y * W + xs, e = base + y * W + xe; i < e; i++) x[i]! += g;
        } else {
          let acc = 0;
          for (let y = ys; y < ye; y++) for (let i = base + y * W + xs, e = base + y * W + xe; i < e; i++) acc += x[i]!;
          out[o] = acc / div;
        }
      }
    }
  }
}

// ---- checks ----------------------------------------------------------------------------------------

function poolAttrs(
  where: string,
  x: Tensor,
  kernelSize: IntPair,
  stride: IntPair | null | undefined,
  padding: IntPair,
  countIncludePad: boolean,
): PoolAttrs {
  checkTensor(where, 'x', x);
  if (x.ndim !== 4) throw new ShapeError(`${where}: input must be 4-D [N,C,H,W] (got ${fmtShape(x.shape)})`);
  const [kh, kw] = intPair(where, 'kernelSize', kernelSize, 1);
  const [sh, sw] = stride === undefined || stride === null ? [kh, kw] : intPair(where, 'stride', stride, 1);
  const [ph, pw] = intPair(where, 'padding', padding, 0);
  if (2 * ph > kh || 2 * pw > kw) {
    throw new ValueError(`${where}: padding ${fmtPair(ph, pw)} must be at most half the kernel ${kh}×${kw}`);
  }
  const [N, C, H, W] = x.shape as [number, number, number, number];
  if (kh > H + 2 * ph || kw > W + 2 * pw) {
    throw new ShapeError(
      `${where}: kernel ${kh}×${kw} does not fit the padded input ${H + 2 * ph}×${W + 2 * pw} (input ${fmtShape(x.shape)}, padding ${fmtPair(ph, pw)})`,
    );
  }
  const oh = Math.floor((H + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((W + 2 * pw - kw) / sw) + 1;
  return { planes: N * C, H, W, kh, kw, sh, sw, ph, pw, oh, ow, countIncludePad };
}

// ---- composites ------------------------------------------------------------------------------------

/**
 * torch.nn.functional.adaptive_avg_pool2d to 1×1 (global average pooling): the mean over H and W, kept as
 * [N, C, 1, 1]. Other output sizes are not supported.
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: IntPair = 1): Tensor {
  checkTensor('adaptiveAvgPool2d', 'x', x);
  const [oh, ow] = intPair('adaptiveAvgPool2d', 'outputSize', outputSize, 1);
  if (oh !== 1 || ow !== 1) throw new ValueError(`adaptiveAvgPool2d: only output size 1 (1×1) is supported (got ${fmtValue(outputSize)})`);
  if (x.ndim !== 4 && x.ndim !== 3) throw new ShapeError(`adaptiveAvgPool2d: input must be 4-D [N,C,H,W] or 3-D [C,H,W] (got ${fmtShape(x.shape)})`);
  if (x.shape[x.ndim - 1] === 0 || x.shape[x.ndim - 2] === 0) throw new ShapeError(`adaptiveAvgPool2d: input ${fmtShape(x.shape)} has an empty H or W`);
  return mean(x, [x.ndim - 2, x.ndim - 1], true);
}

const merged: number[] = []; // flatten's scratch
/** torch.flatten: axes startDim..endDim (inclusive, negative counts from the end) merged into one. */
export function flatten(x: Tensor, startDim = 1, endDim = -1): Tensor {
  checkTensor('flatten', 'x', x);
  // A 0-d tensor flattens to [1], as in PyTorch.
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normAxis('flatten', startDim, x.ndim);
  const e = normAxis('flatten', endDim, x.ndim);
  if (s > e) throw new ValueError(`flatten: startDim ${startDim} comes after endDim ${endDim} for input ${fmtShape(x.shape)}`);
  let n = 0;
  for (let i = 0; i < s; i++) merged[n++] = x.shape[i]!;
  merged[n++] = numel(x.shape, s, e + 1);
  for (let i = e + 1; i < x.ndim; i++) merged[n++] = x.shape[i]!;
  return reshape(x, stableShape(merged, n));
}
