// The ceiling the kernels are measured against: this CPU's WebAssembly SIMD peak in V8, from a loop of
// twelve independent f32x4 multiply-add chains (the shape of the gemm micro-kernel's inner loop, with no
// loads), compiled here from AssemblyScript source. WebAssembly SIMD128 in Node 20 has no fused
// multiply-add, so each lane's multiply and add are two instructions.
import asc from 'assemblyscript/asc';
import { median, timeRuns } from './report.js';

const SOURCE = `
export function peak(iters: i32, seed: f32): f32 {
  const m = f32x4.splat(seed);
  let a0 = f32x4.splat(1), a1 = f32x4.splat(2), a2 = f32x4.splat(3), a3 = f32x4.splat(4);
  let a4 = f32x4.splat(5), a5 = f32x4.splat(6), a6 = f32x4.splat(7), a7 = f32x4.splat(8);
  let a8 = f32x4.splat(9), a9 = f32x4.splat(10), a10 = f32x4.splat(11), a11 = f32x4.splat(12);
  for (let i = 0; i < iters; i++) {
    a0 = f32x4.add(f32x4.mul(a0, m), m); a1 = f32x4.add(f32x4.mul(a1, m), m);
    a2 = f32x4.add(f32x4.mul(a2, m), m); a3 = f32x4.add(f32x4.mul(a3, m), m);
    a4 = f32x4.add(f32x4.mul(a4, m), m); a5 = f32x4.add(f32x4.mul(a5, m), m);
    a6 = f32x4.add(f32x4.mul(a6, m), m); a7 = f32x4.add(f32x4.mul(a7, m), m);
    a8 = f32x4.add(f32x4.mul(a8, m), m); a9 = f32x4.add(f32x4.mul(a9, m), m);
    a10 = f32x4.add(f32x4.mul(a10, m), m); a11 = f32x4.add(f32x4.mul(a11, m), m);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  return f32x4.extract_lane(f32x4.add(s, f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11))), 0);
}
`;

/**
 * A probe of the loop above: each call returns its GFLOP/s on one thread right now (the median of three
 * ~50 ms runs), counting a multiply and an add per lane. The host's speed drifts, so a kernel is compared
 * with the probe taken beside it in time, not with one figure for the whole run.
 */
export async function wasmSimdPeak(): Promise<() => Promise<number>> {
  const { binary, error, stderr } = await asc.compileString(SOURCE, { optimizeLevel: 3, runtime: 'stub', noAssert: true, use: ['abort='], enable: ['simd'] } as never);
  if (error !== null || binary === null) throw new Error(`bench: the peak loop did not compile: ${error?.message ?? ''} ${stderr.toString()}`);
  const { peak } = new WebAssembly.Instance(new WebAssembly.Module(binary)).exports as { peak(iters: number, seed: number): number };
  const iters = 5_000_000;
  // V8 first runs the loop in its baseline tier (~6× slower here) and swaps in the optimised code for a
  // later call, some hundreds of milliseconds on: a second of short calls gets there.
  await timeRuns(() => void peak(iters / 50, 0.999), { minRuns: 0, minMs: 1000, warmup: 0 });
  await timeRuns(() => void peak(iters, 0.999), { minRuns: 3, minMs: 0, warmup: 1 });
  return async () => (iters * 12 * 4 * 2) / median(await timeRuns(() => void peak(iters, 0.999), { minRuns: 3, minMs: 0, warmup: 0 })) / 1e6;
}
