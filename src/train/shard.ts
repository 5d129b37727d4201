// Micro-shards: a batch cut into a fixed number of pieces, each with its own gradient slot, summed in
// shard order. The one definition of a data-parallel step, used alike by the single-thread loop (fit
// with `shards`), by each worker and by the reducer, so any number of workers gives the same bits.
import { type WasmHeap, wasmHeap } from '../kernels/wasm/runtime.js';
import { ValueError } from '../errors.js';
import { overwriteNextGradient, takeOverwriteMark } from '../autograd/engine.js';
import { binaryCrossEntropyWithLogits, crossEntropy, mseLoss, nllLoss } from '../loss/index.js';
import type { Module } from '../nn/module.js';
import { Dropout } from '../nn/dropout.js';
import { GRU, LSTM, RNN } from '../nn/recurrent.js';
import { mul } from '../ops/elementwise.js';
import { argmax } from '../ops/reduce.js';
import { type Storage, Tensor, allocStorage } from '../tensor/tensor.js';

/** Losses a training job can name; the first two take class indices, the others dense targets. */
export type LossName = 'crossEntropy' | 'nllLoss' | 'mseLoss' | 'binaryCrossEntropyWithLogits';
export const LOSS_NAMES: readonly LossName[] = ['crossEntropy', 'nllLoss', 'mseLoss', 'binaryCrossEntropyWithLogits'];

export function takesClassIndices(loss: LossName): boolean {
  return loss === 'crossEntropy' || loss === 'nllLoss';
}

/** Targets of a batch: class indices, or a dense tensor shaped like the model's output. */
export type Targets = Int32Array | Tensor;

/** The summed (not averaged) loss of a shard: shards are averaged over the whole batch by the caller. */
export function summedLoss(loss: LossName, out: Tensor, y: Targets): Tensor {
  const sum = { reduction: 'sum' } as const;
  if (takesClassIndices(loss)) {
    if (!(y instanceof Int32Array)) throw new ValueError(`${loss}: targets must be class indices (Int32Array)`);
    return loss === 'crossEntropy' ? crossEntropy(out, y, sum) : nllLoss(out, y, sum);
  }
  if (!(y instanceof Tensor)) throw new ValueError(`${loss}: targets must be a tensor shaped like the output`);
  return loss === 'mseLoss' ? mseLoss(out, y, sum) : binaryCrossEntropyWithLogits(out, y, sum);
}

/** Samples [from, to) of shard s when a batch of n samples is cut into k = shardCount(n, shards) shards. */
export function shardRange(n: number, k: number, s: number): [number, number] {
  return [Math.floor((s * n) / k), Math.floor(((s + 1) * n) / k)];
}

/** Shards of a batch of n samples: the configured count, or n when the batch is smaller (an epoch's tail). */
export function shardCount(n: number, shards: number): number {
  return Math.min(n, shards);
}

export interface ShardResult {
  /** Sum of the per-sample losses of the shard. */
  lossSum: number;
  /** Correct argmax predictions (class targets only, else 0). */
  correct: number;
}

/** Every Dropout of `model` draws mask number `counter` next: shard s of step t uses t·shards + s. */
export function positionDropout(model: Module, counter: number): void {
  if (model instanceof Dropout) model.setRngState({ ...model.rngState(), counter });
  for (const [, c] of model.namedChildren()) positionDropout(c, counter);
}

/**
 * Forward, loss and backward of one shard, with the loss scaled by 1/n (n = whole batch) so that the
 * shard gradients sum to the gradient of the batch's mean loss. Gradients accumulate into the params'
 * current `.grad` (see ShardedGradients.select). Run it inside an arena step.
 */
export function shardStep(model: Module, loss: LossName, x: Tensor, y: Targets, n: number): ShardResult {
  const out = model.forward(x);
  const total = summedLoss(loss, out, y);
  mul(total, 1 / n).backward();
  let correct = 0;
  if (y instanceof Int32Array) {
    const pred = argmax(out, -1);
    for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) correct++;
  }
  return { lossSum: total.item(), correct };
}

type Recurrent = RNN | LSTM | GRU;

/** The stateful recurrent layers of a model, in module order. */
export function statefulLayers(model: Module): Recurrent[] {
  const out: Recurrent[] = [];
  const walk = (m: Module): void => {
    if ((m instanceof RNN || m instanceof LSTM || m instanceof GRU) && m.stateful) out.push(m);
    for (const [, c] of m.namedChildren()) walk(c);
  };
  walk(model);
  return out;
}

/**
 * Truncated-BPTT state per micro-shard: shard s of step t+1 continues the rows of shard s of step t,
 * whichever thread ran it. Each shard has a region holding every stateful layer's [numLayers, rows, H]
 * state (h, and c for an LSTM) and the row count it was saved at; a shard of another size starts from
 * zeros. The regions can live in shared memory (workers) or in the caller's (fit).
 */
export class ShardCarry {
  readonly layers: Recurrent[];
  /** Elements of one shard's region. */
  readonly perShard: number;
  private readonly offsets: number[];
  private readonly data: Storage;
  private readonly rows: Int32Array;

  constructor(
    model: Module,
    readonly shards: number,
    readonly maxRows: number,
    buffers?: { data: Storage; rows: Int32Array },
  ) {
    this.layers = statefulLayers(model);
    this.offsets = [];
    let off = 0;
    for (const l of this.layers) {
      this.offsets.push(off);
      off += parts(l) * l.numLayers * maxRows * l.hiddenSize;
    }
    this.perShard = off;
    const dtype = model.parameters()[0]?.dtype ?? 'f32';
    this.data = buffers?.data ?? allocStorage(dtype, Math.max(1, shards * off), true, true);
    this.rows = buffers?.rows ?? new Int32Array(Math.max(1, shards * this.layers.length));
  }

  /** Elements and row counters a shared region needs for this model. */
  static sizes(model: Module, shards: number, maxRows: number): { elements: number; counters: number } {
    const c = new ShardCarry(model, 0, maxRows);
    return { elements: Math.max(1, shards * c.perShard), counters: Math.max(1, shards * c.layers.length) };
  }

  /** Before shard s (of `rows` rows) runs: each layer starts from the state its last run of shard s left. */
  enter(s: number, rows: number): void {
    this.layers.forEach((l, i) => {
      if (this.rows[s * this.layers.length + i] !== rows) {
        l.resetState();
        return;
      }
      const shape = [l.numLayers, rows, l.hiddenSize];
      const len = l.numLayers * rows * l.hiddenSize;
      const base = s * this.perShard + this.offsets[i]!;
      const stride = l.numLayers * this.maxRows * l.hiddenSize;
      // Views, not copies: forward only reads the initial state, and replaces carriedState with a fresh one.
      const at = (p: number): Tensor => new Tensor(this.data.subarray(base + p * stride, base + p * stride + len), shape);
      l.carriedState = l instanceof LSTM ? { h: at(0), c: at(1) } : at(0);
    });
  }

  /** After shard s ran: its layers' final states go to shard s's region. */
  leave(s: number, rows: number): void {
    this.layers.forEach((l, i) => {
      const st = l.carriedState;
      if (st === null) return;
      const len = l.numLayers * rows * l.hiddenSize;
      const base = s * this.perShard + this.offsets[i]!;
      const stride = l.numLayers * this.maxRows * l.hiddenSize;
      const ts = st instanceof Tensor ? [st] : [st.h, st.c];
      ts.forEach((t, p) => this.data.set(t.data.subarray(0, len), base + p * stride));
      this.rows[s * this.layers.length + i] = rows;
    });
  }
}

const parts = (l: Recurrent): number => (l instanceof LSTM ? 2 : 1);

/**
 * Non-learned state (BatchNorm running statistics) follows shard 0 alone, as PyTorch's DDP broadcasts
 * rank 0's buffers: `keep()` after shard 0 records it, `restore()` after every other shard puts it back.
 */
export class ShardZeroBuffers {
  private readonly bufs: Tensor[];
  private readonly saved: Storage[];

  constructor(model: Module) {
    this.bufs = model.namedBuffers().map(([, b]) => b);
    this.saved = this.bufs.map((b) => b.data.slice());
  }

  keep(): void {
    for (let i = 0; i < this.bufs.length; i++) this.saved[i]!.set(this.bufs[i]!.data);
  }

  restore(): void {
    for (let i = 0; i < this.bufs.length; i++) this.bufs[i]!.data.set(this.saved[i]!);
  }
}

/**
 * Per-shard gradient slots for a list of parameters, each slot one flat buffer in parameter order (the
 * ParamLayout order when the list is a module's parameters). `select(s)` points every `.grad` at slot s,
 * the shard's backward writes it, `settle()` zeroes what the backward did not reach; `reduce(k)` restores
 * the parameters' own gradients and sets them to slot 0 + slot 1 + … + slot k−1, summed in that order
 * whatever thread filled each slot.
 */
export class ShardedGradients {
  private readonly own: Tensor[];
  private readonly views: Tensor[][];
  private current: Tensor[] = [];

  constructor(
    private readonly params: readonly Tensor[],
    readonly slots: readonly Storage[],
  ) {
    this.own = params.map((p) => p.grad ?? new Tensor(allocStorage(p.dtype, p.size, true, true), p.shape));
    this.views = slots.map((flat) => {
      let off = 0;
      return params.map((p) => {
        const t = new Tensor(flat.subarray(off, off + p.size), p.shape);
        off += p.size;
        return t;
      });
    });
  }

  /**
   * Points gradients at slot s: the next backward writes shard s's gradient there, over what the slot
   * held (not added to it, so the slot is not zeroed first: that pass cost as much as the adds).
   */
  select(s: number): void {
    this.current = this.views[s]!;
    for (let i = 0; i < this.params.length; i++) {
      const v = this.current[i]!;
      overwriteNextGradient(v);
      this.params[i]!.grad = v;
    }
  }

  /** After the shard's backward: zeroes the gradients of the selected slot that it did not write. */
  settle(): void {
    for (const v of this.current) if (takeOverwriteMark(v)) v.data.fill(0);
  }

  /**
   * Gives the parameters their own gradients back, holding the in-order sum of slots [0, k), and returns
   * the sum's squared L2 norm (one pass over memory: this runs on the critical path of every step).
   */
  reduce(k: number): number {
    let sq = 0;
    for (let i = 0; i < this.params.length; i++) {
      sq += sumSlots(this.own[i]!.data, this.views, i, k);
      this.params[i]!.grad = this.own[i]!;
    }
    return sq;
  }
}

/** Elements per block of the slot sum: the partial sums of a block stay in L1 between slot passes. */
const BLOCK = 2048;

/**
 * out = views[0][i] + views[1][i] + … + views[k−1][i], added left to right with each partial sum stored
 * (so rounded to the dtype) as a plain loop per slot would; returns Σ out². f32 runs on the WebAssembly
 * kernels when they are in use (same sums; the squares summed in another fixed order).
 */
function sumSlots(out: Storage, views: Tensor[][], i: number, k: number): number {
  const heap = out instanceof Float32Array ? wasmHeap() : null;
  if (heap !== null) return sumSlotsWasm(heap, out as Float32Array, views, i, k);
  let sq = 0;
  for (let j0 = 0; j0 < out.length; j0 += BLOCK) {
    const j1 = Math.min(out.length, j0 + BLOCK);
    const first = views[0]![i]!.data;
    if (k === 1) for (let j = j0; j < j1; j++) out[j] = first[j]!;
    else {
      const second = views[1]![i]!.data;
      for (let j = j0; j < j1; j++) out[j] = first[j]! + second[j]!;
      for (let s = 2; s < k; s++) {
        const g = views[s]![i]!.data;
        for (let j = j0; j < j1; j++) out[j] = out[j]! + g[j]!;
      }
    }
    for (let j = j0; j < j1; j++) sq += out[j]! * out[j]!;
  }
  return sq;
}

function sumSlotsWasm(heap: WasmHeap, out: Float32Array, views: Tensor[][], i: number, k: number): number {
  const K = heap.kernels;
  const n = out.length;
  const o = heap.output(0, out);
  // The run's slots lie back to back in the heap: one pass over all of them.
  const first = heap.addressOf(views[0]![i]!.data as Float32Array);
  const stride = k === 1 ? 0 : heap.addressOf(views[1]![i]!.data as Float32Array) - first;
  let even = first >= 0 && (k === 1 || stride > 0);
  for (let s = 2; even && s < k; s++) even = heap.addressOf(views[s]![i]!.data as Float32Array) === first + s * stride;
  let sq: number;
  if (even) sq = K.sumSlotsF32(o, first, stride, k, n);
  else {
    // Slots elsewhere go through staging one at a time: the same sums, in the same order.
    K.copyF32(o, heap.input(1, views[0]![i]!.data as Float32Array), n);
    for (let s = 1; s < k; s++) K.addF32(o, o, heap.input(1, views[s]![i]!.data as Float32Array), n);
    sq = K.sumSlotsF32(o, o, 0, 1, n);
  }
  heap.flush(0, out);
  return sq;
}
