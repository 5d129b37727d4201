// Dropout with counter-based masks: the mask of call k is a pure function of (seed, stream, k, shape, p),
// so a worker, a replay or a resumed checkpoint draws exactly the same mask without shared RNG state.
import { ValueError, fmtValue } from '../errors.js';
import { mul } from '../ops/elementwise.js';
import { Rng, defaultRng } from '../random.js';
import { type DType, Tensor, checkDType, empty } from '../tensor/tensor.js';
import { Module } from './module.js';

/** Dropout streams take 20 bits: the Philox stream word holds (tag, stream, counter) in 53 bits. */
export const DROPOUT_MAX_STREAM = 2 ** 20;
/** A module's call counter takes 32 bits (4·10⁹ training calls before it must wrap). */
export const DROPOUT_MAX_COUNTER = 2 ** 32;
// Bit 52 of the Philox stream marks dropout draws, so they never coincide with an ordinary
// `new Rng(seed, stream)` (initialisers, shuffles) keyed by the same seed: those use streams < 2^52.
const DROPOUT_TAG = 2 ** 52;

/** Everything a mask depends on besides shape and p. */
export interface DropoutRngState {
  seed: number;
  stream: number;
  /** The call counter: the mask of the next training-mode forward is drawn under this value. */
  counter: number;
}

function checkP(p: unknown): number {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new ValueError(`Dropout: p must be a number in [0, 1] (got ${fmtValue(p)})`);
  return p;
}

function checkRange(name: string, v: unknown, bound: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= bound) {
    throw new ValueError(`Dropout: ${name} must be an integer in [0, ${bound}) (got ${fmtValue(v)})`);
  }
  return v;
}

function checkState(s: DropoutRngState): DropoutRngState {
  if (typeof s.seed !== 'number' || !Number.isSafeInteger(s.seed) || s.seed < 0) {
    throw new ValueError(`Dropout: seed must be a non-negative safe integer (got ${fmtValue(s.seed)})`);
  }
  checkRange('stream', s.stream, DROPOUT_MAX_STREAM);
  checkRange('counter', s.counter, DROPOUT_MAX_COUNTER);
  return { seed: s.seed, stream: s.stream, counter: s.counter };
}

/**
 * The dropout mask for one call: a tensor of `shape` holding 0 (dropped, probability p) or 1/(1−p)
 * (kept), drawn from the Philox stream 2^52 + stream·2^32 + counter under `seed`. Element i keeps
 * iff its u32 draw i is ≥ p·2^32. p = 1 gives all zeros (as torch: no division by 0).
 *
 * How a worker reproduces the mask of any call: read the module's `rngState()` on the main thread (or
 * from a checkpoint) and call `dropoutMask(shape, p, state, dtype)`; or set the counter on its own copy
 * with `setRngState(state)` before forward. In synchronous data parallelism, set the counter from
 * (step, shard), e.g. `step·shards + shard`, so each shard's mask depends on the shard and never on
 * which worker ran it.
 */
export function dropoutMask(shape: readonly number[], p: number, state: DropoutRngState, dtype: DType = 'f32'): Tensor {
  checkP(p);
  const { seed, stream, counter } = checkState(state);
  checkDType('dropoutMask', dtype);
  const mask = empty(shape.slice(), dtype);
  const m = mask.data;
  if (p === 1) {
    m.fill(0);
    return mask;
  }
  if (p === 0) {
    m.fill(1);
    return mask;
  }
  const scale = 1 / (1 - p);
  const rng = new Rng(seed, DROPOUT_TAG + stream * DROPOUT_MAX_COUNTER + counter, 0);
  const threshold = p * 4294967296;
  for (let i = 0; i < m.length; i++) m[i] = rng.nextUint32() >= threshold ? scale : 0;
  return mask;
}

export interface DropoutOptions {
  /** Key of the masks (default: drawn from the generator seeded by manualSeed, so two layers differ). */
  seed?: number;
  /** Separates layers sharing a seed, 0 ≤ stream < 2^20 (default 0). */
  stream?: number;
}

/**
 * torch.nn.Dropout: in training mode y = x ⊙ mask/(1−p) with a fresh mask per call; in eval mode y = x.
 * The call counter is not in the state dict (torch's Dropout has none, and state-dict names must match
 * torch's): checkpoints save `rngState()` with the other RNG counters.
 */
export class Dropout extends Module {
  readonly p: number;
  private state: DropoutRngState;

  constructor(p = 0.5, opts: DropoutOptions = {}) {
    super();
    this.p = checkP(p);
    const seed = opts.seed ?? Math.floor(defaultRng().uniform() * 2 ** 53);
    this.state = checkState({ seed, stream: opts.stream ?? 0, counter: 0 });
  }

  /** (seed, stream, counter) of the next training-mode call: enough to reproduce its mask anywhere. */
  rngState(): DropoutRngState {
    return { ...this.state };
  }

  /** Restores a saved state, or positions the counter (a worker reproducing call k sets counter = k). */
  setRngState(s: DropoutRngState): void {
    this.state = checkState(s);
  }

  forward(x: Tensor): Tensor {
    if (!this.training) return x;
    const mask = dropoutMask(x.shape, this.p, this.state, x.dtype);
    // Advance after drawing, so a failure above leaves the counter where it was. Past 2^32 − 1 calls the
    // next draw refuses (checkState) rather than silently repeat masks.
    this.state.counter++;
    return mul(x, mask);
  }

  protected override extraRepr(): string {
    return `p=${this.p}`;
  }
}
