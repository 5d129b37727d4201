// Max pooling over NCHW planes, the port of maxPoolKernel in src/ops/pool.ts (its oracle): the same
// windows, the same tie rule (the first of equal maxima, NaN wins), forward and backward in one scan.

/**
 * Each window's maximum of x. Forward (backward = 0) writes it to out[o]; backward adds gy[o] (passed as
 * `out`) into dx at the window's argmax.
 */
export function maxPoolF32(x: usize, out: usize, dx: usize, backward: i32, planes: i32, H: i32, W: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, ph: i32, pw: i32, oh: i32, ow: i32): void {
  if (kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0) {
    maxPool2x2(x, out, dx, backward, planes, H, W, oh, ow);
    return;
  }
  let o: usize = 0;
  for (let p = 0; p < planes; p++) {
    const base = <usize>p * H * W;
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * sh - ph;
      const ys = max(y0, 0);
      const ye = min(y0 + kh, H);
      for (let ox = 0; ox < ow; ox++, o++) {
        const x0 = ox * sw - pw;
        const xs = max(x0, 0);
        const xe = min(x0 + kw, W);
        let best = -Infinity as f32;
        let at = base + <usize>(ys * W + xs);
        for (let y = ys; y < ye; y++) {
          const row = base + <usize>(y * W);
          for (let i = row + <usize>xs, e = row + <usize>xe; i < e; i++) {
            const v = load<f32>(x + i * 4);
            if (v > best || v != v) {
              best = v;
              at = i;
            }
          }
        }
        if (backward) store<f32>(dx + at * 4, load<f32>(dx + at * 4) + load<f32>(out + o * 4));
        else store<f32>(out + o * 4, best);
      }
    }
  }
}

/** The common 2×2, stride 2, unpadded case: the same comparisons in the same order, without the window bounds. */
function maxPool2x2(x: usize, out: usize, dx: usize, backward: i32, planes: i32, H: i32, W: i32, oh: i32, ow: i32): void {
  const w = <usize>W;
  let o: usize = 0;
  for (let p = 0; p < planes; p++) {
    const base = <usize>p * H * W;
    for (let oy = 0; oy < oh; oy++) {
      let i = base + <usize>(2 * oy) * w;
      for (let ox = 0; ox < ow; ox++, o++, i += 2) {
        // The first element always replaces −∞ (or equals it): start from it.
        let best = load<f32>(x + i * 4);
        let at = i;
        let v = load<f32>(x + (i + 1) * 4);
        if (v > best || v != v) { best = v; at = i + 1; }
        v = load<f32>(x + (i + w) * 4);
        if (v > best || v != v) { best = v; at = i + w; }
        v = load<f32>(x + (i + w + 1) * 4);
        if (v > best || v != v) { best = v; at = i + w + 1; }
        if (backward) store<f32>(dx + at * 4, load<f32>(dx + at * 4) + load<f32>(out + o * 4));
        else store<f32>(out + o * 4, best);
      }
    }
  }
}
