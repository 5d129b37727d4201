// The optimizers' per-element updates (src/optim/optimizer.ts) on f32 parameters and state in linear
// memory. The arithmetic is the TypeScript loop's, in f64 lanes, each stored value rounded to f32 once,
// so the results are bit for bit those of the TypeScript optimizers: a run does not depend on which
// kernels its optimizer ran on. Two elements per step (two f64 lanes); an odd last element goes through
// the same code with one lane.

// @ts-ignore: decorator
@inline
function ld(p: usize, two: bool): v128 {
  return f64x2.promote_low_f32x4(two ? v128.load64_zero(p) : v128.load32_zero(p));
}

// @ts-ignore: decorator
@inline
function st(p: usize, x: v128, two: bool): void {
  if (two) v128.store64_lane(p, f32x4.demote_f64x2_zero(x), 0);
  else v128.store32_lane(p, f32x4.demote_f64x2_zero(x), 0);
}

/** f64 → f32 → f64: the value a later read of a stored element gives. */
// @ts-ignore: decorator
@inline
function stored(x: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(x));
}

/**
 * torch.optim.SGD on n elements: g = sign·grad (+ wd·p); without momentum (buf = 0) p −= lr·g; with it
 * buf = first ? g : momentum·buf + (1 − dampening)·g, and p −= lr·(nesterov ? g + momentum·buf : buf).
 */
export function sgdF32(p: usize, grad: usize, buf: usize, n: i32, lr: f64, momentum: f64, dampening: f64, nesterov: i32, wd: f64, sign: f64, first: i32): void {
  let j = 0;
  for (; j + 2 <= n; j += 2) sgdAt(p, grad, buf, <usize>j * 4, lr, momentum, dampening, nesterov, wd, sign, first, true);
  if (j < n) sgdAt(p, grad, buf, <usize>j * 4, lr, momentum, dampening, nesterov, wd, sign, first, false);
}

// @ts-ignore: decorator
@inline
function sgdAt(p: usize, grad: usize, buf: usize, q: usize, lr: f64, momentum: f64, dampening: f64, nesterov: i32, wd: f64, sign: f64, first: i32, two: bool): void {
  const w = ld(p + q, two);
  let g = f64x2.mul(f64x2.splat(sign), ld(grad + q, two));
  if (wd != 0) g = f64x2.add(g, f64x2.mul(f64x2.splat(wd), w));
  if (buf == 0) {
    st(p + q, f64x2.sub(w, f64x2.mul(f64x2.splat(lr), g)), two);
    return;
  }
  const b = first ? g : f64x2.add(f64x2.mul(f64x2.splat(momentum), ld(buf + q, two)), f64x2.mul(f64x2.splat(1 - dampening), g));
  st(buf + q, b, two);
  const sb = stored(b); // the stored buffer value, as the update reads it
  st(p + q, f64x2.sub(w, f64x2.mul(f64x2.splat(lr), nesterov ? f64x2.add(g, f64x2.mul(f64x2.splat(momentum), sb)) : sb)), two);
}

/**
 * torch.optim.Adam / AdamW on n elements, one step (stepSize = lr/(1 − β1ᵗ), bc2Sqrt = √(1 − β2ᵗ) and
 * decay = 1 − lr·wd for AdamW, computed by the caller): m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g·g,
 * v̂ = max(vMax, v) with amsgrad (vMax ≠ 0), p = w − stepSize·m / (√v̂/bc2Sqrt + eps).
 */
export function adamF32(p: usize, grad: usize, m: usize, v: usize, vMax: usize, n: i32, stepSize: f64, bc2Sqrt: f64, eps: f64, beta1: f64, beta2: f64,
  wd: f64, decoupled: i32, decay: f64, sign: f64): void {
  let j = 0;
  for (; j + 2 <= n; j += 2) adamAt(p, grad, m, v, vMax, <usize>j * 4, stepSize, bc2Sqrt, eps, beta1, beta2, wd, decoupled, decay, sign, true);
  if (j < n) adamAt(p, grad, m, v, vMax, <usize>j * 4, stepSize, bc2Sqrt, eps, beta1, beta2, wd, decoupled, decay, sign, false);
}

// @ts-ignore: decorator
@inline
function adamAt(p: usize, grad: usize, m: usize, v: usize, vMax: usize, q: usize, stepSize: f64, bc2Sqrt: f64, eps: f64, beta1: f64, beta2: f64,
  wd: f64, decoupled: i32, decay: f64, sign: f64, two: bool): void {
  let g = f64x2.mul(f64x2.splat(sign), ld(grad + q, two));
  let w = ld(p + q, two);
  if (wd != 0) {
    if (decoupled) w = f64x2.mul(w, f64x2.splat(decay));
    else g = f64x2.add(g, f64x2.mul(f64x2.splat(wd), w));
  }
  const mi = stored(f64x2.add(f64x2.mul(f64x2.splat(beta1), ld(m + q, two)), f64x2.mul(f64x2.splat(1 - beta1), g)));
  st(m + q, mi, two);
  let vi = stored(f64x2.add(f64x2.mul(f64x2.splat(beta2), ld(v + q, two)), f64x2.mul(f64x2.mul(f64x2.splat(1 - beta2), g), g)));
  st(v + q, vi, two);
  if (vMax != 0) {
    vi = f64x2.max(ld(vMax + q, two), vi);
    st(vMax + q, vi, two);
  }
  const denom = f64x2.add(f64x2.div(f64x2.sqrt(vi), f64x2.splat(bc2Sqrt)), f64x2.splat(eps));
  st(p + q, f64x2.sub(w, f64x2.div(f64x2.mul(f64x2.splat(stepSize), mi), denom)), two);
}
