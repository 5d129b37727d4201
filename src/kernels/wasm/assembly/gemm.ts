// SGEMM in WebAssembly SIMD128 (AssemblyScript): C[M×N] (+)= op(A)·op(B) on f32 matrices in linear memory.
// Same Goto/BLIS structure as the TypeScript kernel in ../../matmul.ts: op(A) and op(B) are packed into
// contiguous panels in the order the micro-kernel reads them, so the three orientations differ only in
// the O(n²) packing and share the O(n³) loop.

// A 4×8 tile of C: 8 f32x4 accumulators. V8's scheduler issues all of an iteration's loads before its
// arithmetic, so the two B vectors and all MR broadcast A values are live at once beside the
// accumulators; 4×8 needs 8 + 2 + 4 + one product = 15 XMM registers, all V8 has to allocate on x86-64.
// A 6×8 tile needs 21 and spills its accumulators to the stack every k: 28 against 47 GFLOP/s at 512³.
const MR = 4;
const NR = 8;
// A KC×NR panel of B (8 KiB) stays in L1 while the MC×KC block of A (96 KiB) sweeps it from L2.
const KC: i32 = 256;
const MC: i32 = 96;
const NC: i32 = 2048;

/** Bytes of scratch `sgemm` needs at `scratch`: the packed A block, the packed B block and one edge tile. */
export function sgemmScratchBytes(): i32 {
  return (MC * KC + KC * NC + MR * NR) * 4;
}

/**
 * Row-major: A is [M,K] (or [K,M] when transA), B is [K,N] (or [N,K] when transB), C is [M,N], all
 * contiguous at byte addresses a, b, c. accumulate = 0 overwrites C. The sum over K runs in f32 in
 * KC-sized blocks, in a fixed order that depends only on the shapes, so results are reproducible.
 */
export function sgemm(transA: i32, transB: i32, M: i32, N: i32, K: i32, a: usize, b: usize, c: usize, accumulate: i32, scratch: usize): void {
  sgemmPart(transA, transB, M, N, K, a, b, c, accumulate, scratch, 0, M, 0, N, 0);
}

// K blocks of equal size, so K = 300 runs as 2×150 rather than 256 + a thin 44.
// @ts-ignore: decorator
@inline
function kBlock(K: i32): i32 {
  return (K + (K + KC - 1) / KC - 1) / ((K + KC - 1) / KC);
}

/** Bytes of op(A) packed whole by sgemmPackA. */
export function sgemmPackedABytes(M: i32, K: i32): i32 {
  return ((M + MR - 1) / MR) * MR * K * 4;
}

/**
 * Packs all of op(A) at `dst`, block (ic, pc) at (pc·Mpad + ic·kc) floats: what sgemmPart would pack
 * for each block, done once for threads that share the columns of one product.
 */
export function sgemmPackA(transA: i32, M: i32, K: i32, a: usize, dst: usize): void {
  if (M <= 0 || K <= 0) return;
  const mPad = ((M + MR - 1) / MR) * MR;
  const kcStep = kBlock(K);
  for (let pc = 0; pc < K; pc += kcStep) {
    const kc = min(kcStep, K - pc);
    for (let ic = 0; ic < M; ic += MC) {
      const at = dst + (<usize>pc * mPad + <usize>ic * kc) * 4;
      if (transA) packAT(a, M, ic, pc, min(MC, M - ic), kc, at);
      else packA(a, K, ic, pc, min(MC, M - ic), kc, at);
    }
  }
}

/**
 * The block C[m0:m1, n0:n1] of `sgemm`'s product, alone. Each element of C is summed over K in the same
 * order whatever block it is computed in (an edge tile adds the same values in the same order, through
 * the scratch tile), so blocks that tile C give the bits of the whole call: threads may share one product.
 * packedA ≠ 0: op(A) as sgemmPackA left it there, read instead of packed (then m0 = 0, m1 = M).
 */
export function sgemmPart(transA: i32, transB: i32, M: i32, N: i32, K: i32, a: usize, b: usize, c: usize, accumulate: i32, scratch: usize,
  m0: i32, m1: i32, n0: i32, n1: i32, packedA: usize): void {
  if (m1 <= m0 || n1 <= n0) return;
  if (K <= 0) {
    if (!accumulate) for (let i = m0; i < m1; i++) memory.fill(c + (<usize>i * N + n0) * 4, 0, <usize>(n1 - n0) * 4);
    return;
  }
  let pa = scratch;
  const pb = scratch + <usize>(MC * KC) * 4;
  const tile = pb + <usize>(KC * NC) * 4;
  const kcStep = kBlock(K);
  const mPad = ((M + MR - 1) / MR) * MR;
  for (let jc = n0; jc < n1; jc += NC) {
    const nc = min(NC, n1 - jc);
    for (let pc = 0; pc < K; pc += kcStep) {
      const kc = min(kcStep, K - pc);
      const add = accumulate != 0 || pc > 0;
      if (transB) packBT(b, K, pc, jc, kc, nc, pb);
      else packB(b, N, pc, jc, kc, nc, pb);
      for (let ic = m0; ic < m1; ic += MC) {
        const mc = min(MC, m1 - ic);
        if (packedA != 0) pa = packedA + (<usize>pc * mPad + <usize>ic * kc) * 4;
        else if (transA) packAT(a, M, ic, pc, mc, kc, pa);
        else packA(a, K, ic, pc, mc, kc, pa);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const bp = pb + <usize>(jr * kc) * 4;
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min(MR, mc - ir);
            const ap = pa + <usize>(ir * kc) * 4;
            const cp = c + (<usize>(ic + ir) * N + jc + jr) * 4;
            if (mr == MR && nr == NR) kernel(kc, ap, bp, cp, <usize>N * 4, add);
            else {
              kernel(kc, ap, bp, tile, NR * 4, false);
              for (let i = 0; i < mr; i++) {
                for (let j = 0; j < nr; j++) {
                  const t = load<f32>(tile + <usize>(i * NR + j) * 4);
                  const q = cp + (<usize>i * N + j) * 4;
                  store<f32>(q, add ? load<f32>(q) + t : t);
                }
              }
            }
          }
        }
      }
    }
  }
}

// @ts-ignore: decorator
@inline
function kernel(kc: i32, ap: usize, bp: usize, cp: usize, ldc: usize, add: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  // Not unrolled by hand: V8 unrolls this loop itself, and a hand-unrolled body puts all its loads first.
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(bp, 0), b1 = v128.load(bp, 16);
    let av = v128.load32_splat(ap, 0);
    c00 = f32x4.add(c00, f32x4.mul(av, b0)); c01 = f32x4.add(c01, f32x4.mul(av, b1));
    av = v128.load32_splat(ap, 4);
    c10 = f32x4.add(c10, f32x4.mul(av, b0)); c11 = f32x4.add(c11, f32x4.mul(av, b1));
    av = v128.load32_splat(ap, 8);
    c20 = f32x4.add(c20, f32x4.mul(av, b0)); c21 = f32x4.add(c21, f32x4.mul(av, b1));
    av = v128.load32_splat(ap, 12);
    c30 = f32x4.add(c30, f32x4.mul(av, b0)); c31 = f32x4.add(c31, f32x4.mul(av, b1));
    ap += MR * 4;
    bp += NR * 4;
  }
  if (add) {
    c00 = f32x4.add(c00, v128.load(cp)); c01 = f32x4.add(c01, v128.load(cp, 16)); cp += ldc;
    c10 = f32x4.add(c10, v128.load(cp)); c11 = f32x4.add(c11, v128.load(cp, 16)); cp += ldc;
    c20 = f32x4.add(c20, v128.load(cp)); c21 = f32x4.add(c21, v128.load(cp, 16)); cp += ldc;
    c30 = f32x4.add(c30, v128.load(cp)); c31 = f32x4.add(c31, v128.load(cp, 16));
    cp -= 3 * ldc;
  }
  v128.store(cp, c00); v128.store(cp, c01, 16); cp += ldc;
  v128.store(cp, c10); v128.store(cp, c11, 16); cp += ldc;
  v128.store(cp, c20); v128.store(cp, c21, 16); cp += ldc;
  v128.store(cp, c30); v128.store(cp, c31, 16);
}

// Packed A: MR-row micro-panels, each stored k-major (MR values per k), rows past mc zero.
function packA(a: usize, lda: i32, ic: i32, pc: i32, mc: i32, kc: i32, dst: usize): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = min(MR, mc - ir);
    for (let r = 0; r < MR; r++) {
      let d = dst + <usize>r * 4;
      if (r < mr) {
        let s = a + (<usize>(ic + ir + r) * lda + pc) * 4;
        for (let p = 0; p < kc; p++, s += 4, d += MR * 4) store<f32>(d, load<f32>(s));
      } else {
        for (let p = 0; p < kc; p++, d += MR * 4) store<f32>(d, 0);
      }
    }
    dst += <usize>(MR * kc) * 4;
  }
}

// op(A) = Aᵀ with A stored [K, M] (ld = M): the MR values of one k are contiguous in memory.
function packAT(a: usize, ldm: i32, ic: i32, pc: i32, mc: i32, kc: i32, dst: usize): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = min(MR, mc - ir);
    let s = a + (<usize>pc * ldm + ic + ir) * 4;
    let d = dst;
    for (let p = 0; p < kc; p++, s += <usize>ldm * 4, d += MR * 4) {
      for (let r = 0; r < MR; r++) store<f32>(d + <usize>r * 4, r < mr ? load<f32>(s + <usize>r * 4) : 0);
    }
    dst += <usize>(MR * kc) * 4;
  }
}

// Packed B: NR-column micro-panels, each stored k-major (NR values per k), columns past nc zero.
function packB(b: usize, ldb: i32, pc: i32, jc: i32, kc: i32, nc: i32, dst: usize): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    let s = b + (<usize>pc * ldb + jc + jr) * 4;
    let d = dst;
    if (nr == NR) {
      for (let p = 0; p < kc; p++, s += <usize>ldb * 4, d += NR * 4) {
        v128.store(d, v128.load(s));
        v128.store(d, v128.load(s, 16), 16);
      }
    } else {
      for (let p = 0; p < kc; p++, s += <usize>ldb * 4, d += NR * 4) {
        for (let j = 0; j < NR; j++) store<f32>(d + <usize>j * 4, j < nr ? load<f32>(s + <usize>j * 4) : 0);
      }
    }
    dst += <usize>(NR * kc) * 4;
  }
}

// op(B) = Bᵀ with B stored [N, K] (ld = K): column j of op(B) is row j of B, contiguous in k.
function packBT(b: usize, ldk: i32, pc: i32, jc: i32, kc: i32, nc: i32, dst: usize): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    for (let j = 0; j < NR; j++) {
      let d = dst + <usize>j * 4;
      if (j < nr) {
        let s = b + (<usize>(jc + jr + j) * ldk + pc) * 4;
        for (let p = 0; p < kc; p++, s += 4, d += NR * 4) store<f32>(d, load<f32>(s));
      } else {
        for (let p = 0; p < kc; p++, d += NR * 4) store<f32>(d, 0);
      }
    }
    dst += <usize>(NR * kc) * 4;
  }
}
