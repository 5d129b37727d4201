// im2col and col2im of one image and one group of channels in WebAssembly (AssemblyScript), on f32 data
// in linear memory: the contract, layout and ConvGeometry fields are those of ../../im2col.ts, the
// TypeScript oracle. Rows with stride 1 are bulk copies (memory.copy) and SIMD adds.

// [C·kh·kw, oh·ow] columns of the C×H×W image at src to dst.
export function im2col(src: usize, dst: usize, C: i32, H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32, oh: i32, ow: i32): void {
  let d = dst;
  const rowBytes = <usize>ow * 4;
  for (let c = 0; c < C; c++) {
    const plane = src + <usize>(c * H * W) * 4;
    for (let i = 0; i < kh; i++) {
      const yOff = i * dh - ph;
      for (let j = 0; j < kw; j++) {
        const xOff = j * dw - pw;
        const lo = firstValid(xOff, sw, ow);
        const hi = endValid(xOff, sw, ow, W, lo);
        for (let oy = 0; oy < oh; oy++, d += rowBytes) {
          const iy = oy * sh + yOff;
          if (iy < 0 || iy >= H) {
            memory.fill(d, 0, rowBytes);
            continue;
          }
          const s = plane + <usize>(iy * W + xOff) * 4;
          if (lo > 0) memory.fill(d, 0, <usize>lo * 4);
          if (sw == 1) memory.copy(d + <usize>lo * 4, s + <usize>lo * 4, <usize>(hi - lo) * 4);
          else for (let ox = lo; ox < hi; ox++) store<f32>(d + <usize>ox * 4, load<f32>(s + <usize>(ox * sw) * 4));
          if (hi < ow) memory.fill(d + <usize>hi * 4, 0, <usize>(ow - hi) * 4);
        }
      }
    }
  }
}

// The adjoint: adds each column entry into the image position it was read from (padding dropped).
export function col2im(src: usize, dst: usize, C: i32, H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32, oh: i32, ow: i32): void {
  let s = src;
  const rowBytes = <usize>ow * 4;
  for (let c = 0; c < C; c++) {
    const plane = dst + <usize>(c * H * W) * 4;
    for (let i = 0; i < kh; i++) {
      const yOff = i * dh - ph;
      for (let j = 0; j < kw; j++) {
        const xOff = j * dw - pw;
        const lo = firstValid(xOff, sw, ow);
        const hi = endValid(xOff, sw, ow, W, lo);
        for (let oy = 0; oy < oh; oy++, s += rowBytes) {
          const iy = oy * sh + yOff;
          if (iy < 0 || iy >= H) continue;
          const d = plane + <usize>(iy * W + xOff) * 4;
          let ox = lo;
          if (sw == 1) {
            for (; ox + 4 <= hi; ox += 4) {
              const q = <usize>ox * 4;
              v128.store(d + q, f32x4.add(v128.load(d + q), v128.load(s + q)));
            }
            for (; ox < hi; ox++) store<f32>(d + <usize>ox * 4, load<f32>(d + <usize>ox * 4) + load<f32>(s + <usize>ox * 4));
          } else {
            for (; ox < hi; ox++) {
              const p = d + <usize>(ox * sw) * 4;
              store<f32>(p, load<f32>(p) + load<f32>(s + <usize>ox * 4));
            }
          }
        }
      }
    }
  }
}

// First ox whose input column ox·sw + off is ≥ 0, clamped to [0, ow].
function firstValid(off: i32, sw: i32, ow: i32): i32 {
  return off >= 0 ? 0 : min(ow, (-off + sw - 1) / sw);
}

// One past the last ox whose input column ox·sw + off is < W, at least lo.
function endValid(off: i32, sw: i32, ow: i32, W: i32, lo: i32): i32 {
  const last = W - 1 - off;
  return last < 0 ? lo : max(lo, min(ow, last / sw + 1));
}
