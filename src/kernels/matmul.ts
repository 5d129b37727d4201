// Dense row-major GEMM kernels: the packed, register-tiled fast path and the triple-loop oracle it is tested against.
import { wasmHeap } from './wasm/runtime.js';

export type FloatArray = Float32Array | Float64Array;

/*
 * f32 products of any size past the thin cut-over below run in the WebAssembly SIMD kernel
 * (wasm/assembly/gemm.ts) unless the TypeScript kernels are selected; f64 always runs here.
 *
 * Why the TypeScript fast path looks like this (Goto/BLIS structure, scalar because plain JS has no SIMD):
 * - op(A) and op(B) are copied ("packed") into contiguous panels in exactly the order the micro-kernel
 *   reads them, so A·B, Aᵀ·B and A·Bᵀ differ only in the O(n²) packing loops and run the O(n³) part
 *   identically.
 * - The micro-kernel keeps a 6×8 tile of C in 48 locals. V8 has ~15 usable XMM registers, so most of
 *   them spill, but spills hit L1 and each loaded a or b value feeds 8 or 6 multiply-adds; measured on
 *   this machine 6×8 ran 5-10% faster than 4×8 and 15-25% faster than 4×4, 3×4 or 2×6 (the tiles
 *   that fit the register file); unrolling k, pairwise or not, did not help.
 * - Panels are packed into Float64Array scratch for BOTH dtypes. Widening f32→f64 is exact, and JS
 *   multiplies and adds in f64 anyway, so products are bit-identical to reading a Float32Array; but
 *   plain f64 loads skip a convert per load (~20% faster measured), and the hot loop only ever sees
 *   Float64Array. f32 results are accumulated in f64 and rounded once per K block.
 * - Blocking: a KC×8 B micro-panel (16 KiB) stays in L1 while it is swept over the MC/6 A micro-panels
 *   of an MC×KC A block (384 KiB), which stays in L2.
 */
const MR = 6;
const NR = 8;
const KC = 256;
const MC = 192;
const NC = 2048;
/** Below this many multiply-adds packing costs more than it saves (measured crossover ~12³-16³). */
const SMALL_WORK = 12 * 12 * 12;

// Module-level scratch, grown on demand and never shrunk, so steady-state calls allocate nothing.
let packA = new Float64Array(0);
let packB = new Float64Array(0);
const tile = new Float64Array(MR * NR);

/**
 * Row-major GEMM: C[M×N] (+)= op(A)·op(B), op(A) is M×K, op(B) is K×N.
 * A is stored [M,K] (or [K,M] when transA), B is [K,N] (or [N,K] when transB), C is [M,N]; all contiguous
 * starting at the given offsets. accumulate=false overwrites C, true adds into C.
 */
export function gemm(transA: boolean, transB: boolean, M: number, N: number, K: number,
  A: FloatArray, aOff: number, B: FloatArray, bOff: number, C: FloatArray, cOff: number, accumulate: boolean): void {
  if (M === 0 || N === 0) return;
  if (K === 0) {
    if (!accumulate) C.fill(0, cOff, cOff + M * N);
    return;
  }
  // Thin shapes (matrix·vector, a batch of 1-3 rows, 1-4 outputs) would leave most of a 6×8 tile
  // idle; measured, the packed path wins from M = 4 and N = 5 on, and for any K.
  if (M * N * K <= SMALL_WORK || M <= 3 || N <= 4) {
    gemmDirect(transA, transB, M, N, K, A, aOff, B, bOff, C, cOff, accumulate);
    return;
  }
  const heap = A instanceof Float32Array ? wasmHeap() : null;
  if (heap !== null) heap.sgemm(transA, transB, M, N, K, A as Float32Array, aOff, B as Float32Array, bOff, C as Float32Array, cOff, accumulate);
  else gemmPacked(transA, transB, M, N, K, A, aOff, B, bOff, C, cOff, accumulate);
}

/** The plain triple loop, the oracle the fast path is tested against. Same contract. */
export function gemmReference(transA: boolean, transB: boolean, M: number, N: number, K: number,
  A: FloatArray, aOff: number, B: FloatArray, bOff: number, C: FloatArray, cOff: number, accumulate: boolean): void {
  // op(A)[i,p] = A[aOff + i*aI + p*aP], op(B)[p,j] = B[bOff + p*bP + j*bJ]
  const aI = transA ? 1 : K, aP = transA ? M : 1;
  const bP = transB ? 1 : N, bJ = transB ? K : 1;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let p = 0; p < K; p++) s += A[aOff + i * aI + p * aP] * B[bOff + p * bP + j * bJ];
      const c = cOff + i * N + j;
      C[c] = accumulate ? C[c] + s : s;
    }
  }
}

/**
 * Unpacked loops for small or thin problems: each row of C is built 4 columns at a time from strided
 * reads of A and B, summed in f64 locals, and C is touched once per element.
 */
function gemmDirect(transA: boolean, transB: boolean, M: number, N: number, K: number,
  A: FloatArray, aOff: number, B: FloatArray, bOff: number, C: FloatArray, cOff: number, accumulate: boolean): void {
  // op(A)[i,p] = A[aOff + i*aI + p*aP], op(B)[p,j] = B[bOff + p*bP + j*bJ]
  const aI = transA ? 1 : K, aP = transA ? M : 1;
  const bP = transB ? 1 : N, bJ = transB ? K : 1;
  const bJ2 = 2 * bJ, bJ3 = 3 * bJ;
  for (let i = 0; i < M; i++) {
    const a0 = aOff + i * aI;
    let c = cOff + i * N;
    let j = 0;
    for (; j + 4 <= N; j += 4, c += 4) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let p = 0, a = a0, b = bOff + j * bJ; p < K; p++) {
        const av = A[a];
        s0 += av * B[b]; s1 += av * B[b + bJ]; s2 += av * B[b + bJ2]; s3 += av * B[b + bJ3];
        a += aP;
        b += bP;
      }
      if (accumulate) {
        C[c] += s0; C[c + 1] += s1; C[c + 2] += s2; C[c + 3] += s3;
      } else {
        C[c] = s0; C[c + 1] = s1; C[c + 2] = s2; C[c + 3] = s3;
      }
    }
    for (; j < N; j++, c++) {
      let s = 0;
      for (let p = 0, a = a0, b = bOff + j * bJ; p < K; p++) {
        s += A[a] * B[b];
        a += aP;
        b += bP;
      }
      C[c] = accumulate ? C[c] + s : s;
    }
  }
}

function gemmPacked(transA: boolean, transB: boolean, M: number, N: number, K: number,
  A: FloatArray, aOff: number, B: FloatArray, bOff: number, C: FloatArray, cOff: number, accumulate: boolean): void {
  // Equal-sized K and M blocks, so K = 300 runs as 2×150 rather than 256 + a thin 44.
  const kcStep = Math.ceil(K / Math.ceil(K / KC));
  const mcStep = roundUp(Math.ceil(M / Math.ceil(M / MC)), MR);
  const ncStep = Math.min(NC, roundUp(N, NR));
  if (packA.length < mcStep * kcStep) packA = new Float64Array(mcStep * kcStep);
  if (packB.length < kcStep * ncStep) packB = new Float64Array(kcStep * ncStep);
  const pa = packA, pb = packB;
  for (let jc = 0; jc < N; jc += ncStep) {
    const nc = Math.min(ncStep, N - jc);
    for (let pc = 0; pc < K; pc += kcStep) {
      const kc = Math.min(kcStep, K - pc);
      // Later K blocks add onto what the first one wrote.
      const add = accumulate || pc > 0;
      packPanelsB(transB, B, bOff, N, K, pc, kc, jc, nc, pb);
      for (let ic = 0; ic < M; ic += mcStep) {
        const mc = Math.min(mcStep, M - ic);
        packPanelsA(transA, A, aOff, M, K, ic, mc, pc, kc, pa);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = Math.min(NR, nc - jr);
          const ib = jr * kc;
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = Math.min(MR, mc - ir);
            const ci = cOff + (ic + ir) * N + jc + jr;
            if (mr === MR && nr === NR) {
              microKernel(kc, pa, ir * kc, pb, ib, C, ci, N, add);
            } else {
              // Edge tile: the zero-padded panels make the whole tile valid; store only its live part.
              microKernel(kc, pa, ir * kc, pb, ib, tile, 0, NR, false);
              storeTile(C, ci, N, mr, nr, add);
            }
          }
        }
      }
    }
  }
}

function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

function storeTile(C: FloatArray, ci: number, ldc: number, mr: number, nr: number, add: boolean): void {
  const t = tile;
  for (let r = 0; r < mr; r++, ci += ldc) {
    const tr = r * NR;
    if (add) for (let c = 0; c < nr; c++) C[ci + c] += t[tr + c];
    else for (let c = 0; c < nr; c++) C[ci + c] = t[tr + c];
  }
}

/**
 * Packs op(A)[i0:i0+mc, p0:p0+kc] as ⌈mc/MR⌉ panels, each kc steps of MR consecutive rows
 * (dst[panel·MR·kc + p·MR + r]); rows past mc are zeros.
 */
function packPanelsA(transA: boolean, A: FloatArray, aOff: number, M: number, K: number,
  i0: number, mc: number, p0: number, kc: number, dst: Float64Array): void {
  let d = 0;
  for (let ir = 0; ir < mc; ir += MR, d += MR * kc) {
    const mr = Math.min(MR, mc - ir);
    const i = i0 + ir;
    if (transA) {
      // Stored [K,M]: the MR values of one step are adjacent in memory.
      for (let p = 0, s = aOff + p0 * M + i, o = d; p < kc; p++, s += M, o += MR) {
        if (mr === MR) {
          dst[o] = A[s]; dst[o + 1] = A[s + 1]; dst[o + 2] = A[s + 2];
          dst[o + 3] = A[s + 3]; dst[o + 4] = A[s + 4]; dst[o + 5] = A[s + 5];
        } else {
          for (let r = 0; r < MR; r++) dst[o + r] = r < mr ? A[s + r] : 0;
        }
      }
    } else if (mr === MR) {
      // Stored [M,K]: read MR rows side by side so the writes stay sequential.
      const s0 = aOff + i * K + p0, s1 = s0 + K, s2 = s1 + K, s3 = s2 + K, s4 = s3 + K, s5 = s4 + K;
      for (let p = 0, o = d; p < kc; p++, o += MR) {
        dst[o] = A[s0 + p]; dst[o + 1] = A[s1 + p]; dst[o + 2] = A[s2 + p];
        dst[o + 3] = A[s3 + p]; dst[o + 4] = A[s4 + p]; dst[o + 5] = A[s5 + p];
      }
    } else {
      for (let r = 0; r < MR; r++) {
        const s = aOff + (i + r) * K + p0;
        for (let p = 0, o = d + r; p < kc; p++, o += MR) dst[o] = r < mr ? A[s + p] : 0;
      }
    }
  }
}

/**
 * Packs op(B)[p0:p0+kc, j0:j0+nc] as ⌈nc/NR⌉ panels, each kc steps of NR consecutive columns
 * (dst[panel·NR·kc + p·NR + c]); columns past nc are zeros.
 */
function packPanelsB(transB: boolean, B: FloatArray, bOff: number, N: number, K: number,
  p0: number, kc: number, j0: number, nc: number, dst: Float64Array): void {
  let d = 0;
  for (let jr = 0; jr < nc; jr += NR, d += NR * kc) {
    const nr = Math.min(NR, nc - jr);
    const j = j0 + jr;
    if (!transB) {
      // Stored [K,N]: the NR values of one step are adjacent in memory.
      for (let p = 0, s = bOff + p0 * N + j, o = d; p < kc; p++, s += N, o += NR) {
        if (nr === NR) {
          dst[o] = B[s]; dst[o + 1] = B[s + 1]; dst[o + 2] = B[s + 2]; dst[o + 3] = B[s + 3];
          dst[o + 4] = B[s + 4]; dst[o + 5] = B[s + 5]; dst[o + 6] = B[s + 6]; dst[o + 7] = B[s + 7];
        } else {
          for (let c = 0; c < NR; c++) dst[o + c] = c < nr ? B[s + c] : 0;
        }
      }
    } else if (nr === NR) {
      // Stored [N,K]: read NR rows side by side so the writes stay sequential.
      const s0 = bOff + j * K + p0, s1 = s0 + K, s2 = s1 + K, s3 = s2 + K;
      const s4 = s3 + K, s5 = s4 + K, s6 = s5 + K, s7 = s6 + K;
      for (let p = 0, o = d; p < kc; p++, o += NR) {
        dst[o] = B[s0 + p]; dst[o + 1] = B[s1 + p]; dst[o + 2] = B[s2 + p]; dst[o + 3] = B[s3 + p];
        dst[o + 4] = B[s4 + p]; dst[o + 5] = B[s5 + p]; dst[o + 6] = B[s6 + p]; dst[o + 7] = B[s7 + p];
      }
    } else {
      for (let c = 0; c < NR; c++) {
        const s = bOff + (j + c) * K + p0;
        for (let p = 0, o = d + c; p < kc; p++, o += NR) dst[o] = c < nr ? B[s + p] : 0;
      }
    }
  }
}

/**
 * C[ci + r·ldc + c] (+)= Σ_p pa[ia + 6p + r] · pb[ib + 8p + c] for the 6×8 tile, r < 6, c < 8.
 * Hand-unrolled: as named locals the 48 partial sums live in registers or unchecked stack slots; an
 * accumulator array would cost a bounds-checked load and store per multiply-add. Trap, measured on
 * Node 20: advancing ia/ib in the for header instead of the body makes the whole gemm ~15% slower.
 * Full tiles are stored straight into C, which saves copying them out of a scratch tile.
 */
function microKernel(kc: number, pa: Float64Array, ia: number, pb: Float64Array, ib: number,
  C: FloatArray, ci: number, ldc: number, add: boolean): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c04 = 0, c05 = 0, c06 = 0, c07 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0, c14 = 0, c15 = 0, c16 = 0, c17 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c24 = 0, c25 = 0, c26 = 0, c27 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0, c34 = 0, c35 = 0, c36 = 0, c37 = 0;
  let c40 = 0, c41 = 0, c42 = 0, c43 = 0, c44 = 0, c45 = 0, c46 = 0, c47 = 0;
  let c50 = 0, c51 = 0, c52 = 0, c53 = 0, c54 = 0, c55 = 0, c56 = 0, c57 = 0;
  for (let p = 0; p < kc; p++) {
    const b0 = pb[ib], b1 = pb[ib + 1], b2 = pb[ib + 2], b3 = pb[ib + 3], b4 = pb[ib + 4], b5 = pb[ib + 5], b6 = pb[ib + 6], b7 = pb[ib + 7];
    const a0 = pa[ia];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3; c04 += a0 * b4; c05 += a0 * b5; c06 += a0 * b6; c07 += a0 * b7;
    const a1 = pa[ia + 1];
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3; c14 += a1 * b4; c15 += a1 * b5; c16 += a1 * b6; c17 += a1 * b7;
    const a2 = pa[ia + 2];
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3; c24 += a2 * b4; c25 += a2 * b5; c26 += a2 * b6; c27 += a2 * b7;
    const a3 = pa[ia + 3];
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3; c34 += a3 * b4; c35 += a3 * b5; c36 += a3 * b6; c37 += a3 * b7;
    const a4 = pa[ia + 4];
    c40 += a4 * b0; c41 += a4 * b1; c42 += a4 * b2; c43 += a4 * b3; c44 += a4 * b4; c45 += a4 * b5; c46 += a4 * b6; c47 += a4 * b7;
    const a5 = pa[ia + 5];
    c50 += a5 * b0; c51 += a5 * b1; c52 += a5 * b2; c53 += a5 * b3; c54 += a5 * b4; c55 += a5 * b5; c56 += a5 * b6; c57 += a5 * b7;
    ia += 6;
    ib += 8;
  }
  if (add) {
    C[ci] += c00; C[ci + 1] += c01; C[ci + 2] += c02; C[ci + 3] += c03; C[ci + 4] += c04; C[ci + 5] += c05; C[ci + 6] += c06; C[ci + 7] += c07;
    ci += ldc; C[ci] += c10; C[ci + 1] += c11; C[ci + 2] += c12; C[ci + 3] += c13; C[ci + 4] += c14; C[ci + 5] += c15; C[ci + 6] += c16; C[ci + 7] += c17;
    ci += ldc; C[ci] += c20; C[ci + 1] += c21; C[ci + 2] += c22; C[ci + 3] += c23; C[ci + 4] += c24; C[ci + 5] += c25; C[ci + 6] += c26; C[ci + 7] += c27;
    ci += ldc; C[ci] += c30; C[ci + 1] += c31; C[ci + 2] += c32; C[ci + 3] += c33; C[ci + 4] += c34; C[ci + 5] += c35; C[ci + 6] += c36; C[ci + 7] += c37;
    ci += ldc; C[ci] += c40; C[ci + 1] += c41; C[ci + 2] += c42; C[ci + 3] += c43; C[ci + 4] += c44; C[ci + 5] += c45; C[ci + 6] += c46; C[ci + 7] += c47;
    ci += ldc; C[ci] += c50; C[ci + 1] += c51; C[ci + 2] += c52; C[ci + 3] += c53; C[ci + 4] += c54; C[ci + 5] += c55; C[ci + 6] += c56; C[ci + 7] += c57;
  } else {
    C[ci] = c00; C[ci + 1] = c01; C[ci + 2] = c02; C[ci + 3] = c03; C[ci + 4] = c04; C[ci + 5] = c05; C[ci + 6] = c06; C[ci + 7] = c07;
    ci += ldc; C[ci] = c10; C[ci + 1] = c11; C[ci + 2] = c12; C[ci + 3] = c13; C[ci + 4] = c14; C[ci + 5] = c15; C[ci + 6] = c16; C[ci + 7] = c17;
    ci += ldc; C[ci] = c20; C[ci + 1] = c21; C[ci + 2] = c22; C[ci + 3] = c23; C[ci + 4] = c24; C[ci + 5] = c25; C[ci + 6] = c26; C[ci + 7] = c27;
    ci += ldc; C[ci] = c30; C[ci + 1] = c31; C[ci + 2] = c32; C[ci + 3] = c33; C[ci + 4] = c34; C[ci + 5] = c35; C[ci + 6] = c36; C[ci + 7] = c37;
    ci += ldc; C[ci] = c40; C[ci + 1] = c41; C[ci + 2] = c42; C[ci + 3] = c43; C[ci + 4] = c44; C[ci + 5] = c45; C[ci + 6] = c46; C[ci + 7] = c47;
    ci += ldc; C[ci] = c50; C[ci + 1] = c51; C[ci + 2] = c52; C[ci + 3] = c53; C[ci + 4] = c54; C[ci + 5] = c55; C[ci + 6] = c56; C[ci + 7] = c57;
  }
}
