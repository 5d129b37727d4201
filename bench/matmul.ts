// SGEMM section: streamgrad's gemm against tfjs on its 'cpu' and 'wasm' backends, one thread, f32.
import { getThreadsCount, version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { gemm } from '../src/kernels/matmul.js';
import { setKernels } from '../src/kernels/wasm/runtime.js';
import { wasmSimdPeak } from './peak.js';
import { median, timeRuns, type BenchSection } from './report.js';
import { tf, useBackend } from './tfjs.js';

type Impl = 'streamgrad' | 'streamgrad-ts' | 'tfjs-cpu' | 'tfjs-wasm';
const IMPLS: Impl[] = ['streamgrad', 'streamgrad-ts', 'tfjs-cpu', 'tfjs-wasm'];
const ORIENTATIONS = [
  { label: 'A·B', transA: false, transB: false },
  { label: 'Aᵀ·B', transA: true, transB: false },
  { label: 'A·Bᵀ', transA: false, transB: true },
];

function randomF32(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function maxRelDiff(x: Float32Array, y: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i])));
  return worst;
}

/**
 * One timed block of one implementation. tfjs tensors are created once per block, outside the timed
 * region, on the backend being measured; each timed run is matMul + dataSync (the result brought back
 * to JS, as streamgrad's gemm leaves it in a Float32Array) + dispose.
 */
async function timeBlock(impl: Impl, n: number, transA: boolean, transB: boolean, A: Float32Array, B: Float32Array,
  C: Float32Array, opts: { minRuns: number; minMs: number }, first: boolean): Promise<number[]> {
  // Only each implementation's first block per row is warmed up (for tfjs the correctness check is
  // that run): later blocks run already-compiled code, and a 1024³ tfjs-cpu call takes ~10 s.
  if (impl === 'streamgrad' || impl === 'streamgrad-ts') {
    setKernels(impl === 'streamgrad' ? 'wasm' : 'ts');
    try {
      return await timeRuns(() => gemm(transA, transB, n, n, n, A, 0, B, 0, C, 0, false), { ...opts, warmup: first ? 1 : 0 });
    } finally {
      setKernels('auto');
    }
  }
  await useBackend(impl);
  const a = tf.tensor2d(A, [n, n]);
  const b = tf.tensor2d(B, [n, n]);
  try {
    if (first) {
      const out = tf.matMul(a, b, transA, transB);
      const got = out.dataSync() as Float32Array;
      out.dispose();
      const diff = maxRelDiff(got, C);
      if (diff > 1e-3) throw new Error(`benchMatmul: ${impl} and streamgrad disagree at ${n}, transA=${transA}, transB=${transB} (max rel diff ${diff})`);
    }
    return await timeRuns(() => {
      const out = tf.matMul(a, b, transA, transB);
      out.dataSync();
      out.dispose();
    }, { ...opts, warmup: 0 });
  } finally {
    a.dispose();
    b.dispose();
  }
}

export async function benchMatmul(opts: { sizes: number[]; quick: boolean }): Promise<BenchSection> {
  // Host speed drifts over tens of seconds, so each implementation is timed in several short blocks
  // taken in rotating order, and the median is over all runs of all its blocks.
  const rounds = opts.quick ? 1 : 3;
  // One run can satisfy a block: a 1024³ tfjs-cpu call alone takes several seconds.
  const block = opts.quick ? { minRuns: 1, minMs: 100 } : { minRuns: 1, minMs: 1500 };
  const rows: (string | number)[][] = [];
  const runsSeen = new Map<Impl, number>();
  const probePeak = await wasmSimdPeak();
  const peaks: number[] = [];
  for (const n of opts.sizes) {
    const A = randomF32(n * n, 1);
    const B = randomF32(n * n, 2);
    const C = new Float32Array(n * n);
    for (const { label, transA, transB } of ORIENTATIONS) {
      const times = new Map<Impl, number[]>(IMPLS.map((i) => [i, []]));
      const rowPeak: number[] = [];
      for (let r = 0; r < rounds; r++) {
        rowPeak.push(await probePeak());
        for (let k = 0; k < IMPLS.length; k++) {
          const impl = IMPLS[(k + r) % IMPLS.length];
          // streamgrad runs first in round 0, so C holds its result when the others are checked.
          const ts = await timeBlock(impl, n, transA, transB, A, B, C, block, r === 0);
          times.get(impl)!.push(...ts);
        }
      }
      const gflops = (impl: Impl): number => (2 * n ** 3) / median(times.get(impl)!) / 1e6;
      const [ours, ts, cpu, wasm] = IMPLS.map(gflops) as [number, number, number, number];
      for (const i of IMPLS) runsSeen.set(i, Math.min(runsSeen.get(i) ?? Infinity, times.get(i)!.length));
      const peak = median(rowPeak);
      peaks.push(peak);
      rows.push([`${n}×${n}×${n}`, label, ours, `${Math.round((100 * ours) / peak)}% of ${peak.toFixed(1)}`, ts, cpu, wasm, `${(ours / cpu).toFixed(2)}×`, `${(ours / wasm).toFixed(2)}×`]);
    }
  }
  await useBackend('tfjs-wasm');
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  return {
    title: 'SGEMM (f32 matrix multiply), one thread',
    columns: ['size M×N×K', 'orientation', 'streamgrad GFLOP/s', 'of SIMD peak', 'streamgrad TS kernels', 'tfjs-cpu GFLOP/s', 'tfjs-wasm GFLOP/s',
      'streamgrad/tfjs-cpu', 'streamgrad/tfjs-wasm'],
    rows,
    notes: [
      'GFLOP/s = 2·M·N·K / median time per call. Aᵀ·B and A·Bᵀ read the same stored arrays as transposes, ' +
      'as the backward pass of a linear layer does.',
      `Each implementation is timed in ${plural(rounds, 'block')} per row, taken in rotating order so drifts in ` +
      `machine speed hit all three alike; at least ${plural(Math.min(...runsSeen.values()), 'timed run')} per cell, ` +
      'after one warm-up run.',
      'streamgrad: `gemm` from src/kernels/matmul.ts writing into a preallocated Float32Array, on its default kernels: ' +
      'WebAssembly SIMD (src/kernels/wasm/assembly/gemm.ts: packed panels, 4×8 tiles of f32x4 accumulators, f32 sums; ' +
      'the operands here are plain arrays, so each call also copies them into the kernel heap). ' +
      '"streamgrad TS kernels" is the plain-TypeScript fallback (packed 6×8 register tiles, f64 accumulation).',
      `The ceiling: this CPU's WebAssembly SIMD multiply-add rate on one thread in V8, the faster of two loops that do ` +
      'nothing else: 12 independent f32x4 multiply-add chains in registers, and 8 accumulators fed from broadcast and vector ' +
      'loads of a 12 KiB block that stays in L1 (bench/peak.ts; SIMD128 has no fused multiply-add in Node 20, so the multiply and ' +
      `the add of a lane are two instructions). It is probed in every round of every row because the host\'s speed drifts (${Math.min(...peaks).toFixed(1)}–` +
      `${Math.max(...peaks).toFixed(1)} GFLOP/s over this run). "of SIMD peak" is the gemm\'s median over the peak\'s median in the same row.`,
      'tfjs: input tensors are created once per block outside the timed loop; each timed call is ' +
      '`tf.matMul(a, b, transposeA, transposeB)` + `dataSync()` + `dispose()`, so it includes allocating the ' +
      'output and (wasm) copying it out of the wasm heap.',
      `tfjs ${tf.version.tfjs}; tfjs-wasm: @tensorflow/tfjs-backend-wasm ${version_wasm}, SIMD ${simd ? 'on' : 'off'}, ` +
      `threads ${getThreadsCount()}. Its A·B goes to XNNPACK, which caches its packed copy of B per B tensor, so ` +
      'repeated calls on the same B (as here) skip packing B; streamgrad packs both operands on every call. ' +
      'Its Aᵀ·B and A·Bᵀ run a scalar blocked C++ loop instead (tfjs-backend-wasm batch_mat_mul_impl.cc).',
    ],
  };
}
