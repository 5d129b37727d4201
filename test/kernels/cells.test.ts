// The WebAssembly SIMD cell kernels against the TypeScript ones (the oracle) on f32 rows: random sizes
// with 4-column groups and tails, saturating inputs, NaN, absent operands, and operands inside and outside
// the WebAssembly heap.
import { afterAll, describe, expect, test } from 'vitest';
import fc from 'fast-check';
import * as K from '../../src/kernels/cells.js';
import { setKernels, wasmHeap } from '../../src/kernels/wasm/runtime.js';

afterAll(() => setKernels('auto'));

/** Runs `fn` once with each kernel kind on copies of `inputs`, returning what each wrote into `outputs`. */
function both(inputs: Float32Array[], outputs: number[], fn: (arrs: (Float32Array | null)[]) => void, inHeap: boolean): Float32Array[][] {
  return (['ts', 'wasm'] as const).map((kind) => {
    setKernels(kind);
    const heap = wasmHeap();
    const place = (src: Float32Array): Float32Array => {
      if (!inHeap || heap === null) return src.slice();
      const v = heap.view('f32', heap.alloc(src.byteLength), src.length) as Float32Array;
      v.set(src);
      return v;
    };
    const ins = inputs.map(place);
    const outs = outputs.map((n) => place(new Float32Array(n).fill(-7)));
    fn([...ins, ...outs]);
    return outs.map((o) => Float32Array.from(o));
  });
}

/**
 * ts and wasm agree within 1e-5 relative + 2e-6·scale absolute, and on which results are finite. The SIMD
 * exp is a polynomial good to ~1e-7, and f32 rounds σ and tanh near saturation to ~6e-8 of 1, which the
 * derivatives σ(1 − σ) and 1 − tanh² turn into large relative errors of small values; a backward's terms
 * are those times gy and a state: scale is max|gy|·max|state| for a backward (1 for a forward).
 */
function agree(label: string, [ts, wasm]: Float32Array[][], scale = 1): void {
  ts!.forEach((t, k) => {
    const w = wasm![k]!;
    for (let i = 0; i < t.length; i++) {
      const a = t[i]!, b = w[i]!;
      // NaN flows through both alike; a product that overflows f32 may be ∞ in one and NaN in the other.
      if (!Number.isFinite(a) || !Number.isFinite(b)) {
        expect(Number.isFinite(b), `${label}: output ${k}[${i}] ts ${a} wasm ${b}`).toBe(Number.isFinite(a));
      } else if (a !== b && !(Math.abs(a - b) <= 2e-6 * scale + 1e-5 * Math.abs(a))) {
        throw new Error(`${label}: output ${k}[${i}] ts ${a} wasm ${b}`);
      }
    }
  });
}

const value = fc.oneof(
  { arbitrary: fc.float({ min: -4, max: 4, noNaN: true }), weight: 8 },
  { arbitrary: fc.float({ min: -120, max: 120, noNaN: true }), weight: 2 },
  // Saturating and overflowing pre-activations, denormals, NaN. Not ±∞: an infinite gate meets its
  // product partner (0·∞) in f32 on one side and as a denormal in f64 on the other, so the two
  // legitimately disagree on whether the result is NaN.
  { arbitrary: fc.constantFrom(0, -0, 1e-30, -1e-30, 1e-40, 88.5, -88.5, NaN), weight: 1 },
);
const rows = (n: number): fc.Arbitrary<Float32Array> => fc.array(value, { minLength: n, maxLength: n }).map((v) => Float32Array.from(v));
// Gradients arriving from above are finite: ∞·0 vs ∞·(a denormal f64 keeps and f32 flushes) would differ.
const finiteRows = (n: number): fc.Arbitrary<Float32Array> =>
  fc.array(fc.float({ min: -120, max: 120, noNaN: true }), { minLength: n, maxLength: n }).map((v) => Float32Array.from(v));
const maxAbs = (a: Float32Array): number => a.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 1);
const sizes = fc.record({ N: fc.integer({ min: 1, max: 3 }), H: fc.integer({ min: 1, max: 13 }), inHeap: fc.boolean(), mask: fc.nat({ max: 7 }) });

describe('WebAssembly SIMD cell kernels agree with the TypeScript kernels', () => {
  test('LSTM state and output steps, forward and backward', () => {
    fc.assert(
      fc.property(sizes.chain((s) => fc.tuple(fc.constant(s), rows(s.N * 4 * s.H), rows(s.N * s.H), finiteRows(s.N * s.H))), ([{ N, H, inHeap, mask }, z, c, gy]) => {
        const withC = (mask & 1) !== 0;
        const label = `N ${N} H ${H} c ${withC} heap ${inHeap}`;
        const withAct = (mask & 2) === 0; // also inference, which keeps no activations
        agree(`lstmStateForward ${label}`, both([z, c], [N * H, N * 3 * H], ([a, b, o, s]) => K.lstmStateForward(a!, withC ? b! : null, o!, withAct ? s! : null, N, H), inHeap));
        agree(`lstmOutputForward ${label}`, both([z, c], [N * H, N * 2 * H], ([a, b, o, s]) => K.lstmOutputForward(a!, b!, o!, withAct ? s! : null, N, H), inHeap));
        // The backwards read the activations their forward kept: both kinds get the oracle's.
        const kept = (k: number, fwd: (act: Float32Array) => void): Float32Array => {
          setKernels('ts');
          const act = new Float32Array(N * k * H);
          fwd(act);
          return act;
        };
        const stateAct = kept(3, (act) => K.lstmStateForward(z, withC ? c : null, new Float32Array(N * H), act, N, H));
        const outputAct = kept(2, (act) => K.lstmOutputForward(z, c, new Float32Array(N * H), act, N, H));
        agree(`lstmStateBackward ${label}`, both([stateAct, c, gy], [N * 4 * H, N * H], ([a, b, g, d, e]) =>
          K.lstmStateBackward(a!, withC ? b! : null, g!, (mask & 2) === 0 ? d! : null, (mask & 4) === 0 && withC ? e! : null, N, H), inHeap), maxAbs(gy) * maxAbs(c));
        agree(`lstmOutputBackward ${label}`, both([outputAct, gy], [N * 4 * H, N * H], ([a, g, d, e]) =>
          K.lstmOutputBackward(a!, g!, (mask & 2) === 0 ? d! : null, (mask & 4) === 0 ? e! : null, N, H), inHeap), maxAbs(gy));
      }),
      { numRuns: 150 },
    );
  });

  test('GRU step, forward and backward, with per-sample, shared or absent hidden gates', () => {
    fc.assert(
      fc.property(
        sizes.chain((s) => fc.tuple(fc.constant(s), fc.constantFrom('rows', 'row', 'none'), rows(s.N * 3 * s.H), rows(s.N * 3 * s.H), rows(s.N * s.H), finiteRows(s.N * s.H))),
        ([{ N, H, inHeap, mask }, kind, gi, gh, h, gy]) => {
          const ghRow = kind === 'row';
          const ghIn = ghRow ? gh.slice(0, 3 * H) : gh;
          const withH = (mask & 1) !== 0;
          const label = `N ${N} H ${H} gh ${kind} h ${withH} heap ${inHeap}`;
          const ghOf = (b: Float32Array | null): Float32Array | null => (kind === 'none' ? null : b);
          const withAct = (mask & 2) === 0;
          agree(`gruForward ${label}`, both([gi, ghIn, h], [N * H, N * 3 * H], ([a, b, c, o, k]) => K.gruForward(a!, ghOf(b), ghRow, withH ? c! : null, o!, withAct ? k! : null, N, H), inHeap));
          // The backward reads the activations its forward kept: both kinds get the oracle's.
          setKernels('ts');
          const act = new Float32Array(N * 3 * H);
          K.gruForward(gi, ghOf(ghIn), ghRow, withH ? h : null, new Float32Array(N * H), act, N, H);
          agree(`gruBackward ${label}`, both([act, ghIn, h, gy], [N * 3 * H, N * 3 * H, N * H], ([a, b, c, g, d, e, f]) =>
            K.gruBackward(a!, ghOf(b), ghRow, withH ? c! : null, g!, (mask & 2) === 0 ? d! : null, kind !== 'none' ? e! : null, (mask & 4) === 0 ? f! : null, N, H), inHeap), maxAbs(gy) * maxAbs(h) * maxAbs(gh));
        },
      ),
      { numRuns: 150 },
    );
  });
});
