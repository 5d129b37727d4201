// The ceiling the kernels are measured against: this CPU's WebAssembly SIMD multiply-add rate in V8,
// compiled here from AssemblyScript source. WebAssembly SIMD128 in Node 20 has no fused multiply-add,
// so each lane's multiply and add are two instructions. Two loops that do nothing else are probed and
// the faster counts: twelve independent multiply-add chains in registers, and eight accumulators fed
// by products of broadcast and vector loads from a 1 KiB block that stays in L1 (the gemm's inner
// loop with no packing and no cache misses). Neither loop alone is the ceiling on every CPU: on Zen 5
// the chains are bound by the multiply-to-add latency and run ~10% below the load-fed loop.
import asc from 'assemblyscript/asc';
import { median, timeRuns } from './report.js';

const SOURCE = `
export function chains(iters: i32, seed: f32): f32 {
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

// A 256-step panel of A (4 KiB) and of B (8 KiB), as the gemm reads them, small enough to stay in L1.
const A = memory.data(4096, 16);
const B = memory.data(8192, 16);

// iters passes over 256 steps; each step is two vector loads, four broadcast loads, 8 multiplies, 8 adds.
export function loads(iters: i32, seed: f32): f32 {
  for (let i = 0; i < 1024; i++) store<f32>(A + <usize>i * 4, seed * <f32>(i & 7));
  for (let i = 0; i < 2048; i++) store<f32>(B + <usize>i * 4, seed * <f32>(i & 3));
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  let c4 = f32x4.splat(0), c5 = f32x4.splat(0), c6 = f32x4.splat(0), c7 = f32x4.splat(0);
  for (let i = 0; i < iters; i++) {
    let ap = A, bp = B;
    for (let k = 0; k < 256; k++) {
      const b0 = v128.load(bp), b1 = v128.load(bp, 16);
      let a = v128.load32_splat(ap, 0);
      c0 = f32x4.add(c0, f32x4.mul(a, b0)); c1 = f32x4.add(c1, f32x4.mul(a, b1));
      a = v128.load32_splat(ap, 4);
      c2 = f32x4.add(c2, f32x4.mul(a, b0)); c3 = f32x4.add(c3, f32x4.mul(a, b1));
      a = v128.load32_splat(ap, 8);
      c4 = f32x4.add(c4, f32x4.mul(a, b0)); c5 = f32x4.add(c5, f32x4.mul(a, b1));
      a = v128.load32_splat(ap, 12);
      c6 = f32x4.add(c6, f32x4.mul(a, b0)); c7 = f32x4.add(c7, f32x4.mul(a, b1));
      ap += 16;
      bp += 32;
    }
  }
  const s = f32x4.add(f32x4.add(f32x4.add(c0, c1), f32x4.add(c2, c3)), f32x4.add(f32x4.add(c4, c5), f32x4.add(c6, c7)));
  return f32x4.extract_lane(s, 0);
}
`;

type Loop = (iters: number, seed: number) => number;

/**
 * A probe of the loops above: each call returns the GFLOP/s of the faster loop on one thread right now
 * (each loop's median of three ~50 ms runs), counting a multiply and an add per lane. The host's speed
 * drifts, so a kernel is compared with the probe taken beside it in time, not with one figure for the
 * whole run.
 */
export async function wasmSimdPeak(): Promise<() => Promise<number>> {
  const { binary, error, stderr } = await asc.compileString(SOURCE, { optimizeLevel: 3, runtime: 'stub', noAssert: true, use: ['abort='], enable: ['simd'] } as never);
  if (error !== null || binary === null) throw new Error(`bench: the peak loops did not compile: ${error?.message ?? ''} ${stderr.toString()}`);
  const { chains, loads } = new WebAssembly.Instance(new WebAssembly.Module(binary)).exports as { chains: Loop; loads: Loop };
  // Iterations for ~50 ms each, and the flops they count.
  const probes: [Loop, number, number][] = [[chains, 5_000_000, 5_000_000 * 12 * 4 * 2], [loads, 20_000, 20_000 * 256 * 8 * 4 * 2]];
  const rate = async ([loop, iters, flops]: [Loop, number, number], warmup: number) =>
    flops / median(await timeRuns(() => void loop(iters, 0.999), { minRuns: 3, minMs: 0, warmup })) / 1e6;
  // V8 first runs a loop in its baseline tier (~6× slower here) and swaps in the optimised code for a
  // later call, some hundreds of milliseconds on: a second of short calls gets there.
  for (const [loop, iters] of probes) await timeRuns(() => void loop(iters / 50, 0.999), { minRuns: 0, minMs: 1000, warmup: 0 });
  for (const probe of probes) await rate(probe, 1);
  return async () => Math.max(await rate(probes[0], 0), await rate(probes[1], 0));
}
