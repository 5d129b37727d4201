// Property tests: both fast gemms (WebAssembly SIMD and the packed TypeScript one) agree with the
// triple-loop gemmReference and never write outside C.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gemm, gemmReference, type FloatArray } from '../../src/kernels/matmul.js';
import { type KernelKind, kernelsInUse, setKernels, wasmHeap } from '../../src/kernels/wasm/runtime.js';

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;

interface Case {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  f64: boolean;
  aOff: number;
  bOff: number;
  cOff: number;
  accumulate: boolean;
  seed: number;
  /** Put A, B and C in the WebAssembly heap, so the wasm kernel reads and writes them in place. */
  inHeap?: boolean;
}

function makeArray(Arr: Ctor, n: number, inHeap: boolean): FloatArray {
  const heap = wasmHeap();
  if (!inHeap || heap === null) return new Arr(n);
  const bytes = n * Arr.BYTES_PER_ELEMENT;
  return heap.view(Arr === Float32Array ? 'f32' : 'f64', heap.alloc(bytes), n);
}

/** Deterministic values in [-1, 1) so a failing case replays from its seed. */
function fill(arr: FloatArray, seed: number): void {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < arr.length; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    arr[i] = s / 2 ** 31 - 1;
  }
}

/**
 * Runs both kernels on identical inputs and checks each C entry against the reference with a tolerance
 * scaled by Σ|a||b| (plus |C| when accumulating), the natural bound for summation-order differences.
 */
function check(c: Case): void {
  const { transA, transB, M, N, K, aOff, bOff, cOff, accumulate } = c;
  const Arr: Ctor = c.f64 ? Float64Array : Float32Array;
  const inHeap = c.inHeap ?? false;
  const A = makeArray(Arr, aOff + M * K + 3, inHeap);
  const B = makeArray(Arr, bOff + K * N + 3, inHeap);
  fill(A, c.seed);
  fill(B, c.seed * 7 + 1);
  const C0 = new Arr(cOff + M * N + 3);
  fill(C0, c.seed * 13 + 5);
  const fast = makeArray(Arr, C0.length, inHeap);
  fast.set(C0);
  const ref = C0.slice();
  gemm(transA, transB, M, N, K, A, aOff, B, bOff, fast, cOff, accumulate);
  gemmReference(transA, transB, M, N, K, A, aOff, B, bOff, ref, cOff, accumulate);

  // Σ|a||b| per entry, computed by the reference kernel on |A| and |B| in f64.
  const scale = new Float64Array(M * N);
  gemmReference(transA, transB, M, N, K, Float64Array.from(A, Math.abs), aOff,
    Float64Array.from(B, Math.abs), bOff, scale, 0, false);
  const rel = c.f64 ? 1e-12 : 1e-5;
  for (let i = 0; i < M * N; i++) {
    const k = cOff + i;
    const bound = rel * (scale[i] + (accumulate ? Math.abs(C0[k]) : 0));
    const err = Math.abs(fast[k] - ref[k]);
    if (!(err <= bound)) {
      throw new Error(`C[${Math.floor(i / N)},${i % N}] = ${fast[k]}, reference ${ref[k]} (|err| ${err} > ${bound})`);
    }
  }
  // Entries outside [cOff, cOff + M·N) are untouched.
  for (let k = 0; k < cOff; k++) expect(fast[k]).toBe(C0[k]);
  for (let k = cOff + M * N; k < fast.length; k++) expect(fast[k]).toBe(C0[k]);
}

// Zero and one, the thin-shape cut-overs (M ≤ 3, N ≤ 4 go direct), the 12³ small-problem cut-over,
// and sizes on either side of multiples of the tiles (6×8 in TypeScript, 4×8 in WebAssembly).
const dim = fc.oneof(
  fc.integer({ min: 0, max: 70 }),
  fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 17, 23, 24, 25, 47, 48, 49),
);
const caseArb: fc.Arbitrary<Case> = fc.record({
  transA: fc.boolean(),
  transB: fc.boolean(),
  M: dim,
  N: dim,
  K: dim,
  f64: fc.boolean(),
  aOff: fc.integer({ min: 0, max: 9 }),
  bOff: fc.integer({ min: 0, max: 9 }),
  cOff: fc.integer({ min: 0, max: 9 }),
  accumulate: fc.boolean(),
  seed: fc.integer({ min: 1, max: 2 ** 30 }),
  inHeap: fc.boolean(),
});

describe.each<KernelKind>(['wasm', 'ts'])('gemm with the %s kernels', (kind) => {
  beforeAll(() => {
    setKernels(kind);
    expect(kernelsInUse()).toBe(kind);
  });
  afterAll(() => setKernels('auto'));

  it('matches gemmReference for random shapes, orientations, dtypes, offsets and accumulate', () => {
    fc.assert(fc.property(caseArb, (c) => check(c)), { numRuns: 400 });
  });

  it('matches gemmReference in every orientation and dtype on shapes that span several cache blocks', () => {
    // K = 300 and 520 span 2 and 3 K blocks, M = 201 two M blocks, N = 2057 two N blocks.
    for (const [M, N, K] of [[130, 67, 300], [201, 9, 520], [7, 2057, 5], [8, 130, 7]]) {
      for (const f64 of [false, true]) {
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            for (const accumulate of [false, true]) {
              check({ transA, transB, M, N, K, f64, aOff: 3, bOff: 5, cOff: 7, accumulate, seed: M * 31 + K });
            }
          }
        }
      }
    }
  });

  it('does not write outside C, even when C is a window inside a larger array', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const Arr: Ctor = c.f64 ? Float64Array : Float32Array;
        const A = new Arr(c.aOff + c.M * c.K);
        const B = new Arr(c.bOff + c.K * c.N);
        fill(A, c.seed);
        fill(B, c.seed + 1);
        const guard = 16;
        const C = new Arr(c.cOff + c.M * c.N + guard).fill(-12345);
        gemm(c.transA, c.transB, c.M, c.N, c.K, A, c.aOff, B, c.bOff, C, c.cOff, c.accumulate);
        for (let k = 0; k < c.cOff; k++) expect(C[k]).toBe(-12345);
        for (let k = c.cOff + c.M * c.N; k < C.length; k++) expect(C[k]).toBe(-12345);
      }),
      { numRuns: 200 },
    );
  });

  it('overwrites C when K is 0 and accumulate is false, and leaves it when accumulate is true', () => {
    const C = new Float64Array([9, 9, 9, 9, 9, 9]);
    gemm(false, false, 2, 2, 0, new Float64Array(0), 0, new Float64Array(0), 0, C, 1, false);
    expect(Array.from(C)).toEqual([9, 0, 0, 0, 0, 9]);
    C.fill(9);
    gemm(true, true, 2, 2, 0, new Float64Array(0), 0, new Float64Array(0), 0, C, 1, true);
    expect(Array.from(C)).toEqual([9, 9, 9, 9, 9, 9]);
  });

  it('computes a 2×2 product exactly', () => {
    const C = new Float64Array(4);
    gemm(false, false, 2, 2, 2, new Float64Array([1, 2, 3, 4]), 0, new Float64Array([5, 6, 7, 8]), 0, C, 0, false);
    expect(Array.from(C)).toEqual([19, 22, 43, 50]);
  });

  it.each([Float32Array, Float64Array])('propagates NaN and Infinity like the reference (no skipped zeros), %o', (Arr: Ctor) => {
    const n = 40; // large enough for the packed path
    const A = new Arr(n * n);
    const B = new Arr(n * n).fill(1);
    A[5] = NaN; // row 0
    B[3 * n + 7] = Infinity; // column 7, A[·,3] = 0 → 0·∞ = NaN down column 7
    const C = new Arr(n * n);
    gemm(false, false, n, n, n, A, 0, B, 0, C, 0, false);
    expect(Number.isNaN(C[0])).toBe(true);
    expect(Number.isNaN(C[n + 7])).toBe(true);
    expect(C[n + 6]).toBe(0);
  });
});

describe('gemm with the wasm kernels, in place and copied', () => {
  afterAll(() => setKernels('auto'));

  it('gives bit-identical results whether the operands are in the heap or copied in', () => {
    setKernels('wasm');
    const heap = wasmHeap()!;
    fc.assert(
      fc.property(caseArb, (c) => {
        const { transA, transB, M, N, K, aOff, bOff, cOff, accumulate } = c;
        const out: Float32Array[] = [];
        for (const inHeap of [false, true]) {
          const A = makeArray(Float32Array, aOff + M * K, inHeap);
          const B = makeArray(Float32Array, bOff + K * N, inHeap);
          const C = makeArray(Float32Array, cOff + M * N, inHeap) as Float32Array;
          fill(A, c.seed);
          fill(B, c.seed + 1);
          fill(C, c.seed + 2);
          gemm(transA, transB, M, N, K, A, aOff, B, bOff, C, cOff, accumulate);
          out.push(Float32Array.from(C));
          if (inHeap) for (const x of [A, B, C]) heap.release(x.byteOffset, x.byteLength);
        }
        expect(out[1]).toEqual(out[0]);
      }),
      { numRuns: 150 },
    );
  });
});

describe('sgemmPart (a block of C alone)', () => {
  afterAll(() => setKernels('auto'));

  /** Cut points of [0, n]: 0, then sorted distinct interior points, then n. */
  const cuts = (n: number, picks: number[]): number[] => [...new Set([0, ...picks.map((p) => p % (n + 1)), n])].sort((a, b) => a - b);

  it('gives, block by block, the bits of the whole product (also over op(A) packed once): threads may share one product', () => {
    setKernels('wasm');
    const heap = wasmHeap()!;
    const picks = fc.array(fc.nat(), { maxLength: 3 });
    const scratch = heap.alloc(heap.kernels.sgemmScratchBytes());
    fc.assert(
      fc.property(caseArb, picks, picks, (c, rowPicks, colPicks) => {
        const { transA, transB, M, N, K, accumulate } = c;
        const a = makeArray(Float32Array, M * K, true) as Float32Array;
        const b = makeArray(Float32Array, K * N, true) as Float32Array;
        const whole = makeArray(Float32Array, M * N, true) as Float32Array;
        const parts = makeArray(Float32Array, M * N, true) as Float32Array;
        fill(a, c.seed);
        fill(b, c.seed + 1);
        fill(whole, c.seed + 2);
        parts.set(whole);
        const args = [transA ? 1 : 0, transB ? 1 : 0, M, N, K, a.byteOffset, b.byteOffset] as const;
        heap.kernels.sgemm(...args, whole.byteOffset, accumulate ? 1 : 0, scratch);
        const rows = cuts(M, rowPicks);
        const cols = cuts(N, colPicks);
        // Blocks in a shuffled order: no block may depend on another having run first.
        const blocks: [number, number][] = [];
        for (let i = 0; i + 1 < rows.length; i++) for (let j = 0; j + 1 < cols.length; j++) blocks.push([i, j]);
        blocks.sort((p, q) => ((p[0] * 7 + p[1] * 13 + c.seed) % 5) - ((q[0] * 7 + q[1] * 13 + c.seed) % 5));
        for (const [i, j] of blocks) heap.sgemmPart(...args, parts.byteOffset, accumulate ? 1 : 0, rows[i]!, rows[i + 1]!, cols[j]!, cols[j + 1]!);
        const bits = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer, x.byteOffset, M * N);
        expect(bits(parts)).toEqual(bits(whole));
        // Column blocks over op(A) packed once (sgemmPackA), as workers that share a product read it.
        const packedBytes = heap.kernels.sgemmPackedABytes(M, K);
        const packed = heap.alloc(packedBytes);
        heap.kernels.sgemmPackA(transA ? 1 : 0, M, K, a.byteOffset, packed);
        fill(parts, c.seed + 2);
        for (let j = cols.length - 2; j >= 0; j--) heap.sgemmPart(...args, parts.byteOffset, accumulate ? 1 : 0, 0, M, cols[j]!, cols[j + 1]!, packed);
        expect(bits(parts)).toEqual(bits(whole));
        heap.release(packed, packedBytes);
        for (const x of [a, b, whole, parts]) heap.release(x.byteOffset, x.byteLength);
      }),
      { numRuns: 300 },
    );
  });
});
