// The elementwise steps of the LSTM and GRU cells in WebAssembly SIMD (AssemblyScript), forward and
// backward, on f32 rows in linear memory. The contracts (layouts, which outputs are optional) are those
// of the TypeScript kernels in ../../cells.ts, the oracle these are tested against. An address of 0
// means "absent" (a zero state, or a gradient nobody needs): the heap never hands out address 0.
//
// Each kernel walks a row 4 columns at a time and finishes the row's last H mod 4 columns one at a time
// through the same vector code (a splat in, lane 0 out), so every element gets the same arithmetic
// wherever it sits.

// ---- exp, sigmoid, tanh on four lanes ----------------------------------------------------------------

// Cephes' expf: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two so n·ln2 is exact), eʳ by a degree-7
// polynomial (relative error ~1e-7), 2ⁿ built in the exponent bits. Past [-87, 88], where 2ⁿ would leave
// the normal floats, the result is 0 or +∞, so σ(±∞) and tanh(±∞) come out exact. The clamp uses
// pmin/pmax (one vminps/vmaxps each; min/max cost V8 seven instructions apiece to order ±0 and NaN) with
// x as the first operand, which returns x when it is NaN, so NaN in gives NaN out.
// @ts-ignore: decorator
@inline
function expv(x0: v128): v128 {
  const x = f32x4.pmax(f32x4.pmin(x0, f32x4.splat(88.0)), f32x4.splat(-87.0));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1.0));
  // n is a whole number in [-126, 127]: adding 1.5·2²³ puts it in the low mantissa bits exactly, and one
  // integer add turns those bits into n + 127 (a float-to-int conversion is five instructions in V8).
  const two = i32x4.shl(i32x4.add(f32x4.add(n, f32x4.splat(12582912.0)), i32x4.splat(127 - 0x4b400000)), 23);
  const e = v128.bitselect(f32x4.splat(Infinity), f32x4.mul(p, two), f32x4.gt(x0, f32x4.splat(88.0)));
  return v128.andnot(e, f32x4.lt(x0, f32x4.splat(-87.0)));
}

// @ts-ignore: decorator
@inline
function sigmoidv(x: v128): v128 {
  const one = f32x4.splat(1.0);
  return f32x4.div(one, f32x4.add(one, expv(f32x4.neg(x))));
}

// tanh x = 1 − 2/(e²ˣ + 1): exact at the saturated ends; near 0 the absolute error is ~1e-7.
// @ts-ignore: decorator
@inline
function tanhv(x: v128): v128 {
  const one = f32x4.splat(1.0);
  return f32x4.sub(one, f32x4.div(f32x4.splat(2.0), f32x4.add(expv(f32x4.add(x, x)), one)));
}

// ---- loads and stores of 4 lanes, or of one lane for a row's tail ------------------------------------

// @ts-ignore: decorator
@inline
function ld(p: usize, full: bool): v128 {
  return full ? v128.load(p) : f32x4.splat(load<f32>(p));
}

// @ts-ignore: decorator
@inline
function st(p: usize, v: v128, full: bool): void {
  if (full) v128.store(p, v);
  else store<f32>(p, f32x4.extract_lane(v, 0));
}

const ZERO: v128 = f32x4.splat(0);

// ---- LSTM ---------------------------------------------------------------------------------------------
// Gates z [N, 4H] in PyTorch's order i, f, g, o; states [N, H]. The forward kernels keep, in act (0: not
// kept), the activations their backward needs, so a backward through time computes no exponential:
// the state step [σ(z_i) | σ(z_f) | tanh(z_g)] [N, 3H], the output step [σ(z_o) | tanh(c')] [N, 2H].

/** c' = σ(z_f)·c + σ(z_i)·tanh(z_g); c = 0 (absent) gives σ(z_i)·tanh(z_g). */
export function lstmStateForward(z: usize, c: usize, out: usize, act: usize, N: i32, H: i32): void {
  for (let n = 0; n < N; n++) {
    const zr = z + <usize>(n * 4 * H) * 4;
    const ar: usize = act == 0 ? 0 : act + <usize>(n * 3 * H) * 4;
    const sr = <usize>(n * H) * 4;
    let j = 0;
    for (; j + 4 <= H; j += 4) lstmStateForwardAt(zr, c, out, ar, sr, H, j, true);
    for (; j < H; j++) lstmStateForwardAt(zr, c, out, ar, sr, H, j, false);
  }
}

// @ts-ignore: decorator
@inline
function lstmStateForwardAt(zr: usize, c: usize, out: usize, ar: usize, sr: usize, H: i32, j: i32, full: bool): void {
  const q = <usize>j * 4;
  const h4 = <usize>H * 4;
  const i = sigmoidv(ld(zr + q, full));
  const t = tanhv(ld(zr + 2 * h4 + q, full));
  const ig = f32x4.mul(i, t);
  if (c == 0 && ar == 0) {
    st(out + sr + q, ig, full);
    return;
  }
  const f = sigmoidv(ld(zr + h4 + q, full));
  st(out + sr + q, c == 0 ? ig : f32x4.add(f32x4.mul(f, ld(c + sr + q, full)), ig), full);
  if (ar != 0) {
    st(ar + q, i, full);
    st(ar + h4 + q, f, full);
    st(ar + 2 * h4 + q, t, full);
  }
}

/**
 * From gy = ∂L/∂c' and the forward's act: dz (all 4H columns; the o block is 0) and, when dc ≠ 0,
 * dc = gy·σ(z_f). dz = 0 skips the gates' gradient.
 */
export function lstmStateBackward(act: usize, c: usize, gy: usize, dz: usize, dc: usize, N: i32, H: i32): void {
  for (let n = 0; n < N; n++) {
    const ar = act + <usize>(n * 3 * H) * 4;
    const dr: usize = dz == 0 ? 0 : dz + <usize>(n * 4 * H) * 4;
    const sr = <usize>(n * H) * 4;
    let j = 0;
    for (; j + 4 <= H; j += 4) lstmStateBackwardAt(ar, c, gy, dr, dc, sr, H, j, true);
    for (; j < H; j++) lstmStateBackwardAt(ar, c, gy, dr, dc, sr, H, j, false);
  }
}

// @ts-ignore: decorator
@inline
function lstmStateBackwardAt(ar: usize, c: usize, gy: usize, dr: usize, dc: usize, sr: usize, H: i32, j: i32, full: bool): void {
  const q = <usize>j * 4;
  const h4 = <usize>H * 4;
  const one = f32x4.splat(1.0);
  const g = ld(gy + sr + q, full);
  const f = ld(ar + h4 + q, full);
  if (dr != 0) {
    const i = ld(ar + q, full);
    const t = ld(ar + 2 * h4 + q, full);
    st(dr + q, f32x4.mul(f32x4.mul(g, t), f32x4.mul(i, f32x4.sub(one, i))), full);
    st(dr + h4 + q, c == 0 ? ZERO : f32x4.mul(f32x4.mul(g, ld(c + sr + q, full)), f32x4.mul(f, f32x4.sub(one, f))), full);
    st(dr + 2 * h4 + q, f32x4.mul(f32x4.mul(g, i), f32x4.sub(one, f32x4.mul(t, t))), full);
    st(dr + 3 * h4 + q, ZERO, full);
  }
  if (dc != 0) st(dc + sr + q, f32x4.mul(g, f), full);
}

/** h' = σ(z_o)·tanh(c'). */
export function lstmOutputForward(z: usize, c2: usize, out: usize, act: usize, N: i32, H: i32): void {
  for (let n = 0; n < N; n++) {
    const zo = z + <usize>(n * 4 * H + 3 * H) * 4;
    const ar: usize = act == 0 ? 0 : act + <usize>(n * 2 * H) * 4;
    const sr = <usize>(n * H) * 4;
    let j = 0;
    for (; j + 4 <= H; j += 4) lstmOutputForwardAt(zo, c2, out, ar, sr, H, j, true);
    for (; j < H; j++) lstmOutputForwardAt(zo, c2, out, ar, sr, H, j, false);
  }
}

// @ts-ignore: decorator
@inline
function lstmOutputForwardAt(zo: usize, c2: usize, out: usize, ar: usize, sr: usize, H: i32, j: i32, full: bool): void {
  const q = <usize>j * 4;
  const o = sigmoidv(ld(zo + q, full));
  const t = tanhv(ld(c2 + sr + q, full));
  st(out + sr + q, f32x4.mul(o, t), full);
  if (ar != 0) {
    st(ar + q, o, full);
    st(ar + <usize>H * 4 + q, t, full);
  }
}

/** From gy = ∂L/∂h' and the forward's act: dz (the i, f, g blocks 0) and dc' = gy·σ(z_o)·(1 − tanh²c'); either may be 0. */
export function lstmOutputBackward(act: usize, _unused: usize, gy: usize, dz: usize, dc2: usize, N: i32, H: i32): void {
  for (let n = 0; n < N; n++) {
    const ar = act + <usize>(n * 2 * H) * 4;
    const dr: usize = dz == 0 ? 0 : dz + <usize>(n * 4 * H) * 4;
    const sr = <usize>(n * H) * 4;
    let j = 0;
    for (; j + 4 <= H; j += 4) lstmOutputBackwardAt(ar, gy, dr, dc2, sr, H, j, true);
    for (; j < H; j++) lstmOutputBackwardAt(ar, gy, dr, dc2, sr, H, j, false);
  }
}

// @ts-ignore: decorator
@inline
function lstmOutputBackwardAt(ar: usize, gy: usize, dr: usize, dc2: usize, sr: usize, H: i32, j: i32, full: bool): void {
  const q = <usize>j * 4;
  const h4 = <usize>H * 4;
  const one = f32x4.splat(1.0);
  const g = ld(gy + sr + q, full);
  const o = ld(ar + q, full);
  const t = ld(ar + h4 + q, full);
  if (dr != 0) {
    st(dr + q, ZERO, full);
    st(dr + h4 + q, ZERO, full);
    st(dr + 2 * h4 + q, ZERO, full);
    st(dr + 3 * h4 + q, f32x4.mul(f32x4.mul(g, t), f32x4.mul(o, f32x4.sub(one, o))), full);
  }
  if (dc2 != 0) st(dc2 + sr + q, f32x4.mul(f32x4.mul(g, o), f32x4.sub(one, f32x4.mul(t, t))), full);
}

// ---- GRU ----------------------------------------------------------------------------------------------
// gi = x·W_ihᵀ + b_ih and gh = h·W_hhᵀ + b_hh, [N, 3H] in PyTorch's order r, z, n (gh may be one row
// [3H] shared by every sample, ghRow = 1, or absent); h [N, H] or absent (zero state).
//   r = σ(gi_r + gh_r), u = σ(gi_z + gh_z), m = tanh(gi_n + r·gh_n), h' = m + u·(h − m)
// The forward keeps [r | u | m] [N, 3H] in act (0: not kept) for the backward.

export function gruForward(gi: usize, gh: usize, ghRow: i32, h: usize, out: usize, act: usize, N: i32, H: i32): void {
  for (let n = 0; n < N; n++) {
    const row3 = <usize>(n * 3 * H) * 4;
    const hr: usize = gh == 0 ? 0 : gh + (ghRow ? 0 : row3);
    const ar: usize = act == 0 ? 0 : act + row3;
    const sr = <usize>(n * H) * 4;
    let j = 0;
    for (; j + 4 <= H; j += 4) gruForwardAt(gi + row3, hr, h, out, ar, sr, H, j, true);
    for (; j < H; j++) gruForwardAt(gi + row3, hr, h, out, ar, sr, H, j, false);
  }
}

// @ts-ignore: decorator
@inline
function gruForwardAt(ir: usize, hr: usize, h: usize, out: usize, ar: usize, sr: usize, H: i32, j: i32, full: bool): void {
  const q = <usize>j * 4;
  const h4 = <usize>H * 4;
  let pr = ld(ir + q, full);
  let pz = ld(ir + h4 + q, full);
  let pn = ld(ir + 2 * h4 + q, full);
  if (hr != 0) {
    pr = f32x4.add(pr, ld(hr + q, full));
    pz = f32x4.add(pz, ld(hr + h4 + q, full));
  }
  const r = sigmoidv(pr);
  const u = sigmoidv(pz);
  if (hr != 0) pn = f32x4.add(pn, f32x4.mul(r, ld(hr + 2 * h4 + q, full)));
  const m = tanhv(pn);
  const prev = h == 0 ? ZERO : ld(h + sr + q, full);
  st(out + sr + q, f32x4.add(m, f32x4.mul(u, f32x4.sub(prev, m))), full);
  if (ar != 0) {
    st(ar + q, r, full);
    st(ar + h4 + q, u, full);
    st(ar + 2 * h4 + q, m, full);
  }
}

/**
 * From gy = ∂L/∂h' and the forward's act: dgi [N, 3H], dgh [N, 3H] (per sample even when gh is one
 * shared row: the caller sums it) and dh [N, H]; any of the three may be 0.
 */
export function gruBackward(act: usize, gh: usize, ghRow: i32, h: usize, gy: usize, dgi: usize, dgh: usize, dh: usize, N: i32, H: i32): void {
  for (let n = 0; n < N; n++) {
    const row3 = <usize>(n * 3 * H) * 4;
    const hr: usize = gh == 0 ? 0 : gh + (ghRow ? 0 : row3);
    const sr = <usize>(n * H) * 4;
    let j = 0;
    for (; j + 4 <= H; j += 4) gruBackwardAt(act + row3, hr, h, gy, dgi == 0 ? 0 : dgi + row3, dgh == 0 ? 0 : dgh + row3, dh, sr, H, j, true);
    for (; j < H; j++) gruBackwardAt(act + row3, hr, h, gy, dgi == 0 ? 0 : dgi + row3, dgh == 0 ? 0 : dgh + row3, dh, sr, H, j, false);
  }
}

// @ts-ignore: decorator
@inline
function gruBackwardAt(ar: usize, hr: usize, h: usize, gy: usize, di: usize, dg: usize, dh: usize, sr: usize, H: i32, j: i32, full: bool): void {
  const q = <usize>j * 4;
  const h4 = <usize>H * 4;
  const one = f32x4.splat(1.0);
  const hn = hr == 0 ? ZERO : ld(hr + 2 * h4 + q, full);
  const r = ld(ar + q, full);
  const u = ld(ar + h4 + q, full);
  const m = ld(ar + 2 * h4 + q, full);
  const prev = h == 0 ? ZERO : ld(h + sr + q, full);
  const g = ld(gy + sr + q, full);
  // h' = m + u·(h − m): ∂/∂m = 1 − u, ∂/∂u = h − m, ∂/∂h = u
  const dn = f32x4.mul(f32x4.mul(g, f32x4.sub(one, u)), f32x4.sub(one, f32x4.mul(m, m)));
  const dzp = f32x4.mul(f32x4.mul(g, f32x4.sub(prev, m)), f32x4.mul(u, f32x4.sub(one, u)));
  const drp = f32x4.mul(f32x4.mul(dn, hn), f32x4.mul(r, f32x4.sub(one, r)));
  if (di != 0) {
    st(di + q, drp, full);
    st(di + h4 + q, dzp, full);
    st(di + 2 * h4 + q, dn, full);
  }
  if (dg != 0) {
    st(dg + q, drp, full);
    st(dg + h4 + q, dzp, full);
    st(dg + 2 * h4 + q, f32x4.mul(dn, r), full);
  }
  if (dh != 0) st(dh + sr + q, f32x4.mul(g, u), full);
}
