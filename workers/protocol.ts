// The thread boundary's contract: the control SAB's field indices as named constants, the job table's
// layout and states, and the messages of the comlink control plane as plain data.
import type { KernelKind } from '../src/kernels/wasm/runtime.js';
import type { ModelSpec } from '../src/nn/spec.js';
import type { OptimizerSpec } from '../src/optim/spec.js';
import type { DType } from '../src/tensor/tensor.js';
import type { LossName } from '../src/train/shard.js';

/** Int32 fields at the head of the control SAB. */
export const CTL = {
  /** Bumped by the main thread after it posts or re-posts jobs; idle workers wait on it. */
  GEN: 0,
  /**
   * Bumped by the worker that finds its group (a step's shards) finished after its job, and by the main
   * thread on a fault; the main thread waits on it. About once per group, not per job: every wake-up of
   * the main thread while workers compute takes a core from one of them.
   */
  DONE: 1,
  /** 1 tells workers to leave their loop. */
  STOP: 2,
  HEADER: 4,
} as const;

/** Int32 fields of one job record, after the header. */
export const JOB = {
  STATE: 0,
  /** Batch slot holding the samples. */
  SLOT: 1,
  /** Samples [FROM, TO) of the slot. */
  FROM: 2,
  TO: 3,
  /** Samples in the whole batch: the loss is scaled by 1/N. */
  N: 4,
  /** Gradient slot (sync), or −1: the worker applies its own update to the shared parameters (Hogwild). */
  SHARD: 5,
  /** Dropout counter of this job: step·shards + shard. */
  DRAW: 6,
  /** Result: correct argmax predictions. */
  CORRECT: 7,
  /**
   * The job's group (a step's shards; one Hogwild batch): the index of its first job. The worker that
   * finds no job of its group left pending or claimed after its own wakes the main thread.
   */
  GROUP: 8,
  FIELDS: 9,
} as const;

/** Int32 words of the control SAB for `jobs` jobs: the header and the job table. */
export function ctlWords(jobs: number): number {
  return CTL.HEADER + jobs * JOB.FIELDS;
}

/** A claimed job's state is CLAIMED + the claimer's index: claim and owner change in one atomic word. */
export const JobState = { IDLE: 0, PENDING: 1, DONE: 2, CLAIMED: 16 } as const;

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
  /** Truncated-BPTT state of stateful recurrent layers, one region per micro-shard (ShardCarry), and its row counters (Int32). */
  carry: SharedArrayBuffer;
  carryRows: SharedArrayBuffer;
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
