// The thread boundary's contract: the control SAB's field indices as named constants, the job table's
// layout and states, and the messages of the comlink control plane as plain data.
import type { KernelKind } from '../src/kernels/wasm/runtime.js';
import type { ModelSpec } from '../src/nn/spec.js';
import type { OptimizerSpec } from '../src/optim/spec.js';
import type { DType } from '../src/tensor/tensor.js';
import type { LossName } from '../src/train/shard.js';

/** Int32 fields at the head of the control SAB. */
export const CTL = {
  /** Bumped by the main thread after it posts or re-posts jobs, and by a worker that releases jobs; idle workers wait on it. */
  GEN: 0,
  /**
   * Bumped by the worker that finds its group (a step's jobs) finished after its job, and by the main
   * thread on a fault; the main thread waits on it. About once per group, not per job: every wake-up of
   * the main thread while workers compute takes a core from one of them.
   */
  DONE: 1,
  /** 1 tells workers to leave their loop. */
  STOP: 2,
  /**
   * Sync mode: 1 + the last step whose update plan the main thread has written (see releaseReady), so
   * that step's update jobs may run once its shards are done.
   */
  PLANNED: 3,
  /** Sync mode: 1 + the last step whose shard jobs may run once the step before it is done. */
  OPENED: 4,
  HEADER: 5,
} as const;

/**
 * Int32 fields of one job record, after the header. An update job (SHARD = UPDATE_JOB) reuses them:
 * SLOT is its chunk, [FROM, TO) the chunk's range of the flat parameters, N the gradient slots to sum,
 * DRAW the step.
 */
export const JOB = {
  STATE: 0,
  /** Batch slot holding the samples. */
  SLOT: 1,
  /** Samples [FROM, TO) of the slot. */
  FROM: 2,
  TO: 3,
  /** Samples in the whole batch: the loss is scaled by 1/N. */
  N: 4,
  /** Gradient slot (sync), −1: the worker applies its own update to the shared parameters (Hogwild), or UPDATE_JOB. */
  SHARD: 5,
  /** Dropout counter of this job: step·shards + shard. */
  DRAW: 6,
  /** Result: correct argmax predictions. */
  CORRECT: 7,
  /**
   * The job's group: its step in sync mode (the step's shard and update jobs), a sequence number for a
   * Hogwild batch. The worker that finds no job of its group left pending, waiting or claimed after its
   * own wakes the main thread.
   */
  GROUP: 8,
  FIELDS: 9,
} as const;

/** Int32 words of the control SAB for `jobs` jobs: the header and the job table. */
export function ctlWords(jobs: number): number {
  return CTL.HEADER + jobs * JOB.FIELDS;
}

/**
 * A claimed job's state is CLAIMED + the claimer's index: claim and owner change in one atomic word.
 * A waiting job's state is negative (waitingState): posted, claimable once releaseReady finds what it
 * waits for done.
 */
export const JobState = { IDLE: 0, PENDING: 1, DONE: 2, CLAIMED: 16 } as const;

/**
 * The state of the `seq`-th job posted WAITING: a value of its own, so that a release decided on one
 * posting cannot flip a later posting of the same job record (an A-B-A: a worker descheduled between
 * reading a waiting job and its compare-and-swap, while the job ran, was collected and was posted again).
 */
export function waitingState(seq: number): number {
  return -1 - (seq & 0x3fffffff);
}

/** JOB.SHARD of a sync step's update job: one chunk of the reduce and the optimizer step, on a worker. */
export const UPDATE_JOB = -2;

/**
 * Whether a job of `group` (only its shard jobs, with `shardsOnly`) is still pending, waiting or
 * claimed. The state is read first: a job posted with that state had its fields written before.
 */
export function groupBusy(ctl: Int32Array, jobs: number, group: number, shardsOnly = false): boolean {
  for (let j = 0; j < jobs; j++) {
    const b = CTL.HEADER + j * JOB.FIELDS;
    const s = Atomics.load(ctl, b + JOB.STATE);
    if (s !== JobState.PENDING && s >= 0 && s < JobState.CLAIMED) continue;
    if (ctl[b + JOB.GROUP] === group && (!shardsOnly || ctl[b + JOB.SHARD]! >= 0)) return true;
  }
  return false;
}

/**
 * Sync mode's order, kept by whoever finishes a job: makes each WAITING job claimable once what it
 * waits for is done. A shard job of step s waits for every job of step s − 1 (its update writes the
 * parameters the shard reads) and for OPENED > s; an update job of step s waits for the step's shard
 * jobs and for PLANNED > s (its plan written). True when it released any (the caller then bumps GEN).
 * Called by a worker after each job's DONE, and by the main thread after it posts, opens or plans a
 * step and after a worker dies: of a worker's DONE store and the main thread's WAITING or OPENED store,
 * each looks after its own store, so one of them sees both; two may release at once, and the
 * compare-and-swap lets one of them flip each job.
 */
export function releaseReady(ctl: Int32Array, jobs: number): boolean {
  let released = false;
  // A step's waiting jobs all ask the same question (about one step): each answer is scanned for once
  // per call, not once per job, which made a call O(jobs²).
  let shardsOf = NaN;
  let shardsBusy = false;
  let jobsOf = NaN;
  let jobsBusy = false;
  for (let j = 0; j < jobs; j++) {
    const b = CTL.HEADER + j * JOB.FIELDS;
    const waiting = Atomics.load(ctl, b + JOB.STATE);
    if (waiting >= 0) continue;
    const step = ctl[b + JOB.GROUP]!;
    let ready: boolean;
    if (ctl[b + JOB.SHARD] === UPDATE_JOB) {
      if (Atomics.load(ctl, CTL.PLANNED) <= step) continue;
      if (shardsOf !== step) {
        shardsOf = step;
        shardsBusy = groupBusy(ctl, jobs, step, true);
      }
      ready = !shardsBusy;
    } else {
      if (Atomics.load(ctl, CTL.OPENED) <= step) continue;
      if (jobsOf !== step - 1) {
        jobsOf = step - 1;
        jobsBusy = groupBusy(ctl, jobs, step - 1);
      }
      ready = !jobsBusy;
    }
    if (ready && Atomics.compareExchange(ctl, b + JOB.STATE, waiting, JobState.PENDING) === waiting) released = true;
  }
  return released;
}

/**
 * Elements [chunks[u], chunks[u + 1]) of the flat parameters form update chunk u: a fixed number of
 * chunks, cut at multiples of 16 elements (64 bytes: two workers never write one cache line), from the
 * parameter count alone, so the gradient norm's partial sums add up alike for any worker count.
 * Empty chunks are dropped.
 */
export function updateChunks(size: number, count = 8): number[] {
  const cuts = [0];
  for (let u = 1; u <= count; u++) {
    const at = u === count ? size : Math.min(size, Math.ceil((size * u) / count / 16) * 16);
    if (at > cuts.at(-1)!) cuts.push(at);
  }
  return cuts;
}

/** f64 words per call in the update plan: the kernel's id, then its arguments (adamF32 has 15). */
export const PLAN_WIDTH = 16;
/** Kernel ids in the update plan. */
export const PLAN_KERNELS = ['sgdF32', 'adamF32'] as const;
/** Backup planes of an update chunk: the parameters, then up to three optimizer state operands. */
export const BACKUP_PLANES = 4;

/**
 * Sync mode with the update on the workers: where the update jobs find their operands. All in the run's
 * WebAssembly heap but `plan` and `stamps`.
 */
export interface UpdateRegions {
  /** Byte offset of the parameters' own gradients, which the update jobs fill with the slots' in-order sum. */
  gradByteOffset: number;
  /** Byte offset of the BACKUP_PLANES × paramSize f32 values that make a redone update job start over. */
  backupByteOffset: number;
  /** Chunk boundaries (updateChunks). */
  chunks: number[];
  /** f64: [calls, one partial Σ g² per chunk, then PLAN_WIDTH words per optimizer call]. */
  plan: SharedArrayBuffer;
  /** Int32 per chunk: step + 1 once its backup of that step is complete. */
  stamps: SharedArrayBuffer;
}

/** Float64 fields: one run-wide value, then one per job, then two per worker. */
export const F64 = {
  /** Learning rate of the workers' own optimizers (Hogwild), set by the main thread's schedule. */
  LR: 0,
  HEADER: 1,
} as const;

/** Where each Float64 field lives for a table of `jobs` jobs and `workers` workers. */
export function f64Layout(jobs: number, workers: number): { loss: number; busy: number; claimedAt: number; size: number } {
  const loss = F64.HEADER;
  const busy = loss + jobs;
  const claimedAt = busy + workers;
  return { loss, busy, claimedAt, size: claimedAt + workers };
}

/** A fault a test asks a worker to stage at its `atJob`-th job (1-based), after scribbling on its slot. */
export interface FaultPlan {
  kind: 'throw' | 'exit' | 'hang';
  atJob: number;
  /** Also give the fault to the worker's replacements (a worker that keeps failing). */
  persistent?: boolean;
  /** Count only jobs of this kind (default: every job). */
  on?: 'shard' | 'update';
}

/**
 * The shared memory of a run: every region is a SharedArrayBuffer, shared, never copied. With the
 * WebAssembly kernels, the parameters, the batch inputs and the gradient slots (what the kernels read
 * and write on every step) are ranges of the run's heap `memory` instead, at byte offsets
 * `paramsByteOffset`, `batchXByteOffset` and `gradsByteOffset`: each worker adopts the memory and works
 * on them in place.
 */
export interface SharedRegions {
  ctl: SharedArrayBuffer;
  f64: SharedArrayBuffer;
  memory: WebAssembly.Memory | null;
  params: SharedArrayBuffer;
  paramsByteOffset: number;
  batchXByteOffset: number;
  /** One flat gradient buffer per micro-shard, back to back. */
  grads: SharedArrayBuffer;
  gradsByteOffset: number;
  /** Non-learned state (BatchNorm running statistics), in namedBuffers order. */
  buffers: SharedArrayBuffer;
  batchX: SharedArrayBuffer;
  batchY: SharedArrayBuffer;
  /**
   * With a source that fills by row (BatchSource.table): its table, read in place (`length` values from
   * `byteOffset`), and each slot's row numbers (Int32, batchSize per slot); a job copies its samples'
   * rows into the batch inputs before its forward. Both null otherwise.
   */
  table: { buffer: SharedArrayBuffer; byteOffset: number; length: number } | null;
  batchRows: SharedArrayBuffer | null;
  /** Truncated-BPTT state of stateful recurrent layers, one region per micro-shard (ShardCarry), and its row counters (Int32). */
  carry: SharedArrayBuffer;
  carryRows: SharedArrayBuffer;
  /** Sync mode with the reduce and the optimizer step on the workers; null when the main thread does them. */
  update: UpdateRegions | null;
  /** The boards on which workers offer blocks of their large products to idle peers (gemm-help.ts). */
  help: SharedArrayBuffer;
}

/** What `init` gives a worker: everything it needs to rebuild the model over the shared memory. */
export interface WorkerInit {
  index: number;
  model: ModelSpec;
  seed: number;
  loss: LossName;
  /** Shape of one sample, e.g. [1, 28, 28]. */
  inputShape: number[];
  /** Shape of one sample's target, or null for class indices. */
  targetShape: number[] | null;
  dtype: DType;
  /** The main thread's kernels: every thread of a run computes alike, or sync mode would not be deterministic. */
  kernels: KernelKind;
  mode: 'sync' | 'hogwild';
  /** The workers' own optimizer in Hogwild mode. */
  optimizer: OptimizerSpec | null;
  batchSize: number;
  batchSlots: number;
  shards: number;
  jobs: number;
  workers: number;
  regions: SharedRegions;
  fault: FaultPlan | null;
  /**
   * Least work (flops) of a block of a product a worker offers to idle peers; 0 offers none. Only with
   * the WebAssembly kernels, and only while every worker has a core of its own (idle workers then wait awake).
   */
  helpMinFlops?: number;
}

/** The control plane a worker exposes over comlink. */
export interface WorkerApi {
  /** Builds the model over the shared regions and starts the job loop. */
  init(init: WorkerInit): Promise<void>;
  /** Copies the shared non-learned buffers into the worker's model (after the main thread loads weights). */
  loadWeights(): void;
  /** Leaves the job loop; resolves when the worker is idle. */
  shutdown(): Promise<void>;
}
