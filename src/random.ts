// Counter-based random numbers (Philox4x32-10, as in Random123, PyTorch CUDA and JAX): draw k of stream s
// under seed z is a pure function of (z, s, k), so any worker reproduces any draw without shared state.
import { ValueError, fmtValue } from './errors.js';
import type { Storage } from './tensor/tensor.js';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two u32, from 16-bit halves (exact in doubles). */
function mulhi(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const lh = al * bh;
  const hl = ah * bl;
  const cross = ((al * bl) >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (ah * bh + (lh >>> 16) + (hl >>> 16) + (cross >>> 16)) >>> 0;
}

/** One Philox4x32-10 block: 4 random u32 from a 128-bit counter and a 64-bit key, into `out`. */
export function philox4x32(c: ArrayLike<number>, k: ArrayLike<number>, out: Uint32Array): void {
  let c0 = c[0]! >>> 0;
  let c1 = c[1]! >>> 0;
  let c2 = c[2]! >>> 0;
  let c3 = c[3]! >>> 0;
  let k0 = k[0]! >>> 0;
  let k1 = k[1]! >>> 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

export interface RngState {
  seed: number;
  stream: number;
  /** Number of u32 draws taken so far. */
  position: number;
}

function checkSeed(where: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new ValueError(`${where}: ${name} must be a non-negative safe integer (got ${fmtValue(v)})`);
  }
  return v;
}

/** A reproducible stream of random numbers; its whole state is (seed, stream, position). */
export class Rng {
  readonly seed: number;
  readonly stream: number;
  private pos: number;
  private readonly block = new Uint32Array(4);
  private readonly ctr = new Uint32Array(4);
  private readonly key = new Uint32Array(2);
  private blockIndex = -1;
  private spare: number | null = null;

  constructor(seed: number, stream = 0, position = 0) {
    this.seed = checkSeed('Rng', 'seed', seed);
    this.stream = checkSeed('Rng', 'stream', stream);
    this.pos = checkSeed('Rng', 'position', position);
    this.key[0] = seed >>> 0;
    this.key[1] = Math.floor(seed / 0x100000000) >>> 0;
  }

  get position(): number {
    return this.pos;
  }

  state(): RngState {
    return { seed: this.seed, stream: this.stream, position: this.pos };
  }

  static fromState(s: RngState): Rng {
    return new Rng(s.seed, s.stream, s.position);
  }

  /** The next uniformly distributed 32-bit unsigned integer. */
  nextUint32(): number {
    const b = Math.floor(this.pos / 4);
    if (b !== this.blockIndex) {
      this.ctr[0] = b >>> 0;
      this.ctr[1] = Math.floor(b / 0x100000000) >>> 0;
      this.ctr[2] = this.stream >>> 0;
      this.ctr[3] = Math.floor(this.stream / 0x100000000) >>> 0;
      philox4x32(this.ctr, this.key, this.block);
      this.blockIndex = b;
    }
    return this.block[this.pos++ % 4]!;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Standard normal (Box–Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const u = 1 - this.uniform(); // (0, 1]: log stays finite
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  fillUniform(dst: Storage, lo: number, hi: number): void {
    for (let i = 0; i < dst.length; i++) dst[i] = lo + (hi - lo) * this.uniform();
  }

  fillNormal(dst: Storage, mean = 0, std = 1): void {
    for (let i = 0; i < dst.length; i++) dst[i] = mean + std * this.normal();
  }

  /** Fisher–Yates shuffle of `xs` in place. */
  shuffle<T>(xs: T[] | Int32Array): void {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = xs[i]!;
      xs[i] = xs[j]!;
      xs[j] = t as never;
    }
  }

  /** A permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    this.shuffle(p);
    return p;
  }
}

let globalRng = new Rng(0);

/** Seeds the default generator used by initialisers when no Rng is passed (torch.manual_seed). */
export function manualSeed(seed: number): void {
  globalRng = new Rng(seed);
}

export function defaultRng(): Rng {
  return globalRng;
}
