// The elementwise steps of the LSTM and GRU cells, fused: one pass over the gates instead of a dozen ops.
// Plain TypeScript for f64 and as the oracle; f32 runs the WebAssembly SIMD versions (wasm/assembly/cells.ts)
// when they are in use. Gates are [N, 4H] (LSTM: i, f, g, o) or [N, 3H] (GRU: r, z, n), states [N, H];
// null stands for an absent operand (a zero state) or an unneeded gradient.
import type { Storage } from '../tensor/tensor.js';
import { type WasmHeap, wasmHeap } from './wasm/runtime.js';

// Two branches so exp never overflows, as the sigmoid op.
const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

function f32Heap(x: Storage): WasmHeap | null {
  return x instanceof Float32Array ? wasmHeap() : null;
}

type LstmForwardKernel = (z: number, c: number, out: number, act: number, N: number, H: number) => void;
type LstmBackwardKernel = (act: number, c: number, gy: number, dz: number, dc: number, N: number, H: number) => void;

/** Runs one of the two LSTM forward kernels (same operands; c and act may be absent) on the heap's copies or views of the arrays. */
function lstmForwardWasm(heap: WasmHeap, k: LstmForwardKernel, z: Storage, c: Storage | null, out: Storage, act: Storage | null, N: number, H: number): void {
  const a = heap.input(0, z as Float32Array), b = heap.input(1, c as Float32Array | null), o = heap.output(2, out as Float32Array);
  const s = heap.output(3, act as Float32Array | null);
  k(a, b, o, s, N, H);
  heap.flush(2, out as Float32Array);
  heap.flush(3, act as Float32Array | null);
}

/** Runs one of the two LSTM backward kernels (same operands; c, dz and dc may be absent). */
function lstmBackwardWasm(heap: WasmHeap, k: LstmBackwardKernel, act: Storage, c: Storage | null, gy: Storage, dz: Storage | null, dc: Storage | null, N: number, H: number): void {
  const a = heap.input(0, act as Float32Array), b = heap.input(1, c as Float32Array | null), g = heap.input(2, gy as Float32Array);
  const d = heap.output(3, dz as Float32Array | null), e = heap.output(4, dc as Float32Array | null);
  k(a, b, g, d, e, N, H);
  heap.flush(3, dz as Float32Array | null);
  heap.flush(4, dc as Float32Array | null);
}

/*
 * The forward kernels keep the activations their backward needs in `act` (null: inference, nothing kept),
 * so a backward through time computes no exponential: the state step keeps [σ(z_i) | σ(z_f) | tanh(z_g)]
 * [N, 3H], the output step [σ(z_o) | tanh(c')] [N, 2H].
 */

/** c' = σ(z_f)·c + σ(z_i)·tanh(z_g), or σ(z_i)·tanh(z_g) when c is null. */
export function lstmStateForward(z: Storage, c: Storage | null, out: Storage, act: Storage | null, N: number, H: number): void {
  const heap = f32Heap(z);
  if (heap !== null) return lstmForwardWasm(heap, heap.kernels.lstmStateForward, z, c, out, act, N, H);
  for (let n = 0; n < N; n++) {
    const zr = n * 4 * H;
    const ar = n * 3 * H;
    for (let j = 0, s = n * H; j < H; j++, s++) {
      const i = sigmoid(z[zr + j]!);
      const t = Math.tanh(z[zr + 2 * H + j]!);
      const f = sigmoid(z[zr + H + j]!);
      out[s] = c === null ? i * t : f * c[s]! + i * t;
      if (act !== null) {
        act[ar + j] = i;
        act[ar + H + j] = f;
        act[ar + 2 * H + j] = t;
      }
    }
  }
}

/** From gy = ∂L/∂c' and the forward's act: dz (every column; the o block 0) and dc = gy·σ(z_f) (only with c); either may be null. */
export function lstmStateBackward(act: Storage, c: Storage | null, gy: Storage, dz: Storage | null, dc: Storage | null, N: number, H: number): void {
  const heap = f32Heap(act);
  if (heap !== null) return lstmBackwardWasm(heap, heap.kernels.lstmStateBackward, act, c, gy, dz, dc, N, H);
  for (let n = 0; n < N; n++) {
    const zr = n * 4 * H;
    const ar = n * 3 * H;
    for (let j = 0, s = n * H; j < H; j++, s++) {
      const g = gy[s]!;
      const f = act[ar + H + j]!;
      if (dz !== null) {
        const i = act[ar + j]!;
        const t = act[ar + 2 * H + j]!;
        dz[zr + j] = g * t * (i * (1 - i));
        dz[zr + H + j] = c === null ? 0 : g * c[s]! * (f * (1 - f));
        dz[zr + 2 * H + j] = g * i * (1 - t * t);
        dz[zr + 3 * H + j] = 0;
      }
      if (dc !== null) dc[s] = g * f;
    }
  }
}

/** h' = σ(z_o)·tanh(c'). */
export function lstmOutputForward(z: Storage, c2: Storage, out: Storage, act: Storage | null, N: number, H: number): void {
  const heap = f32Heap(z);
  if (heap !== null) return lstmForwardWasm(heap, heap.kernels.lstmOutputForward, z, c2, out, act, N, H);
  for (let n = 0; n < N; n++) {
    const zo = n * 4 * H + 3 * H;
    const ar = n * 2 * H;
    for (let j = 0, s = n * H; j < H; j++, s++) {
      const o = sigmoid(z[zo + j]!);
      const t = Math.tanh(c2[s]!);
      out[s] = o * t;
      if (act !== null) {
        act[ar + j] = o;
        act[ar + H + j] = t;
      }
    }
  }
}

/** From gy = ∂L/∂h' and the forward's act: dz (the i, f, g blocks 0) and dc' = gy·σ(z_o)·(1 − tanh²c'); either may be null. */
export function lstmOutputBackward(act: Storage, gy: Storage, dz: Storage | null, dc2: Storage | null, N: number, H: number): void {
  const heap = f32Heap(act);
  if (heap !== null) return lstmBackwardWasm(heap, heap.kernels.lstmOutputBackward, act, null, gy, dz, dc2, N, H);
  for (let n = 0; n < N; n++) {
    const zr = n * 4 * H;
    const ar = n * 2 * H;
    for (let j = 0, s = n * H; j < H; j++, s++) {
      const g = gy[s]!;
      const o = act[ar + j]!;
      const t = act[ar + H + j]!;
      if (dz !== null) {
        dz[zr + j] = 0;
        dz[zr + H + j] = 0;
        dz[zr + 2 * H + j] = 0;
        dz[zr + 3 * H + j] = g * t * (o * (1 - o));
      }
      if (dc2 !== null) dc2[s] = g * o * (1 - t * t);
    }
  }
}

/**
 * GRU: r = σ(gi_r + gh_r), u = σ(gi_z + gh_z), m = tanh(gi_n + r·gh_n), h' = m + u·(h − m). gh is [N, 3H],
 * or one row [3H] for every sample (ghRow), or null (zeros); h null is the zero state. `act` (null: not
 * kept) receives [r | u | m] [N, 3H] for the backward.
 */
export function gruForward(gi: Storage, gh: Storage | null, ghRow: boolean, h: Storage | null, out: Storage, act: Storage | null, N: number, H: number): void {
  const heap = f32Heap(gi);
  if (heap !== null) {
    const a = heap.input(0, gi as Float32Array), b = heap.input(1, gh as Float32Array | null), c = heap.input(2, h as Float32Array | null);
    const o = heap.output(3, out as Float32Array), k = heap.output(4, act as Float32Array | null);
    heap.kernels.gruForward(a, b, ghRow ? 1 : 0, c, o, k, N, H);
    heap.flush(3, out as Float32Array);
    heap.flush(4, act as Float32Array | null);
    return;
  }
  for (let n = 0; n < N; n++) {
    const ir = n * 3 * H;
    const hr = ghRow ? 0 : ir;
    for (let j = 0, s = n * H; j < H; j++, s++) {
      let ar = gi[ir + j]!, az = gi[ir + H + j]!, an = gi[ir + 2 * H + j]!;
      if (gh !== null) {
        ar += gh[hr + j]!;
        az += gh[hr + H + j]!;
      }
      const r = sigmoid(ar);
      const u = sigmoid(az);
      if (gh !== null) an += r * gh[hr + 2 * H + j]!;
      const m = Math.tanh(an);
      out[s] = m + u * ((h === null ? 0 : h[s]!) - m);
      if (act !== null) {
        act[ir + j] = r;
        act[ir + H + j] = u;
        act[ir + 2 * H + j] = m;
      }
    }
  }
}

/**
 * From gy = ∂L/∂h' and the forward's act [r | u | m]: dgi and dgh [N, 3H] (per sample even for a shared
 * gh row) and dh [N, H]; each may be null.
 */
export function gruBackward(act: Storage, gh: Storage | null, ghRow: boolean, h: Storage | null, gy: Storage,
  dgi: Storage | null, dgh: Storage | null, dh: Storage | null, N: number, H: number): void {
  const heap = f32Heap(act);
  if (heap !== null) {
    const a = heap.input(0, act as Float32Array), b = heap.input(1, gh as Float32Array | null), c = heap.input(2, h as Float32Array | null);
    const g = heap.input(3, gy as Float32Array);
    const d = heap.output(4, dgi as Float32Array | null), e = heap.output(5, dgh as Float32Array | null), f = heap.output(6, dh as Float32Array | null);
    heap.kernels.gruBackward(a, b, ghRow ? 1 : 0, c, g, d, e, f, N, H);
    heap.flush(4, dgi as Float32Array | null);
    heap.flush(5, dgh as Float32Array | null);
    heap.flush(6, dh as Float32Array | null);
    return;
  }
  for (let n = 0; n < N; n++) {
    const ir = n * 3 * H;
    const hr = ghRow ? 0 : ir;
    for (let j = 0, s = n * H; j < H; j++, s++) {
      const hn = gh === null ? 0 : gh[hr + 2 * H + j]!;
      const r = act[ir + j]!;
      const u = act[ir + H + j]!;
      const m = act[ir + 2 * H + j]!;
      const g = gy[s]!;
      // h' = m + u·(h − m): ∂/∂m = 1 − u, ∂/∂u = h − m, ∂/∂h = u
      const dn = g * (1 - u) * (1 - m * m);
      const dzp = g * ((h === null ? 0 : h[s]!) - m) * (u * (1 - u));
      const drp = dn * hn * (r * (1 - r));
      if (dgi !== null) {
        dgi[ir + j] = drp;
        dgi[ir + H + j] = dzp;
        dgi[ir + 2 * H + j] = dn;
      }
      if (dgh !== null) {
        dgh[ir + j] = drp;
        dgh[ir + H + j] = dzp;
        dgh[ir + 2 * H + j] = dn * r;
      }
      if (dh !== null) dh[s] = g * u;
    }
  }
}
