// The main side of the thread boundary: starts N train workers over shared regions, posts jobs to the
// control SAB, waits for them with Atomics.waitAsync, and replaces a worker that throws, exits or hangs.
import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink/dist/esm/comlink.mjs';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { ValueError, WorkerError } from '../src/errors.js';
import type { Storage } from '../src/tensor/tensor.js';
import { shardCount, shardRange } from '../src/train/shard.js';
import type { OptimizerCall } from '../src/kernels/wasm/runtime.js';
import {
  CTL, F64, type FaultPlan, JOB, JobState, PLAN_KERNELS, PLAN_WIDTH, type SharedRegions, UPDATE_JOB, type WorkerApi, type WorkerInit, ctlWords, f64Layout, releaseReady, waitingState,
} from './protocol.js';
import { gradSlots } from './shared.js';
import { helpBytes, helpedBlocks } from './gemm-help.js';

/**
 * Least work of a block a worker offers to its peers (WorkerInit.helpMinFlops). In-run A/B, 2 workers:
 * the LSTM +4–12% samples/s at 1 Mflop against +2% at 0.5; the CNN's per-sample convolutions are
 * smaller (none cut at 1 Mflop; at 0.1, −2 to −4%).
 */
export const HELP_MIN_FLOPS = 1e6;

/** Most workers a pool starts: far past any core count here, low enough to catch a typo like 1000. */
export const MAX_WORKERS = 256;

export interface PoolOptions extends Omit<WorkerInit, 'index' | 'jobs' | 'fault' | 'regions'> {
  /** grads may be given (a range of the run's heap); the pool makes a buffer of its own otherwise. */
  regions: Omit<SharedRegions, 'ctl' | 'f64' | 'grads' | 'gradsByteOffset' | 'update' | 'help'> & Partial<Pick<SharedRegions, 'grads' | 'gradsByteOffset' | 'update'>>;
  /** Parameters per gradient slot (the ParamLayout size). */
  paramSize: number;
  /** A job claimed for longer than this is a hung worker (default 30 s). */
  watchdogMs?: number;
  /** Times one job may fail (its worker thrown, exited, hung) before the run ends (default 3). */
  maxRetries?: number;
  /** Test hook: faults staged by worker index. */
  faults?: Record<number, FaultPlan>;
}

export interface JobResult {
  lossSum: number;
  correct: number;
  /** Jobs the batch was cut into. */
  jobs: number;
}

interface Handle {
  index: number;
  worker: Worker;
  api: Comlink.Remote<WorkerApi>;
  /** Rejects when the thread exits: every control call races it, since comlink's would never settle. */
  dead: Promise<never>;
  cause: string | null;
  exited: boolean;
}

/** Where the worker entry lives: the compiled .js in production, the .ts through a tsx bootstrap otherwise. */
function workerEntry(): { url: URL; workerData?: { entry: string } } {
  const here = import.meta.url;
  if (here.endsWith('.js')) return { url: new URL('./train-worker.js', here) };
  return { url: new URL('./bootstrap.mjs', here), workerData: { entry: new URL('./train-worker.ts', here).href } };
}

export function checkWorkers(where: string, workers: unknown): number {
  if (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
    throw new ValueError(`${where}.workers must be an integer in [1, ${MAX_WORKERS}] (got ${String(workers)})`);
  }
  return workers;
}

export class WorkerPool {
  readonly size: number;
  /** Per-shard gradient slots, filled by workers and summed by the reducer in shard order. */
  readonly gradSlots: Storage[];
  /** Sync mode with the update on the workers: the update plan and the chunks' Σ g² (see UpdateRegions). */
  private readonly planView: Float64Array | null;
  private readonly chunks: number[];
  private readonly ctl: Int32Array;
  private readonly f64: Float64Array;
  private readonly lay: ReturnType<typeof f64Layout>;
  private readonly regions: SharedRegions;
  private readonly jobs: number;
  private readonly freeJobs: number[];
  private readonly retries: Int32Array;
  /** Failures per worker index over the run. */
  private readonly failures: Int32Array;
  private readonly handles: (Handle | null)[];
  private readonly watchdog: NodeJS.Timeout;
  private fatal: Error | null = null;
  private closing = false;
  /** Hogwild batches posted: their group numbers. */
  private batches = 0;
  /** Jobs posted waiting: each gets a state of its own (waitingState). */
  private waitingPosts = 0;

  private constructor(private readonly opts: PoolOptions) {
    this.size = checkWorkers('pool', opts.workers);
    const update = opts.regions.update ?? null;
    this.chunks = update?.chunks ?? [0];
    this.planView = update === null ? null : new Float64Array(update.plan);
    // Sync mode: every batch slot's step may be posted at once, each with its shard and update jobs.
    this.jobs = opts.mode === 'sync' ? opts.batchSlots * (opts.shards + this.chunks.length - 1) : opts.batchSlots;
    this.lay = f64Layout(this.jobs, this.size);
    const bytes = opts.dtype === 'f32' ? 4 : 8;
    this.regions = {
      ...opts.regions,
      ctl: new SharedArrayBuffer(ctlWords(this.jobs) * 4),
      f64: new SharedArrayBuffer(this.lay.size * 8),
      grads: opts.regions.grads ?? new SharedArrayBuffer(Math.max(1, opts.mode === 'sync' ? opts.shards * opts.paramSize * bytes : bytes)),
      gradsByteOffset: opts.regions.gradsByteOffset ?? 0,
      update,
      help: new SharedArrayBuffer(helpBytes(this.size)),
    };
    this.ctl = new Int32Array(this.regions.ctl);
    this.f64 = new Float64Array(this.regions.f64);
    this.gradSlots = opts.mode === 'sync' ? gradSlots(this.regions.grads, opts.dtype, opts.paramSize, opts.shards, this.regions.gradsByteOffset) : [];
    this.freeJobs = Array.from({ length: this.jobs }, (_, j) => this.jobs - 1 - j);
    this.retries = new Int32Array(this.jobs);
    this.failures = new Int32Array(this.size);
    this.handles = new Array<Handle | null>(this.size).fill(null);
    if (opts.optimizer !== null) this.f64[F64.LR] = opts.optimizer.lr ?? 0.001;
    const every = Math.max(10, Math.min(1000, (opts.watchdogMs ?? 30_000) / 4));
    this.watchdog = setInterval(() => this.checkHung(), every).unref();
  }

  /** Starts the workers and resolves once every one has built its model over the shared memory. */
  static async start(opts: PoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(opts);
    try {
      await Promise.all(Array.from({ length: pool.size }, (_, i) => pool.spawn(i, opts.faults?.[i] ?? null)));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  private async spawn(index: number, fault: FaultPlan | null): Promise<void> {
    const { url, workerData } = workerEntry();
    const worker = new Worker(url, { workerData });
    let kill!: (e: Error) => void;
    const dead = new Promise<never>((_, reject) => (kill = reject));
    dead.catch(() => {}); // observed through races; an exit with nothing in flight is not an error by itself
    const api = Comlink.wrap<WorkerApi>(nodeEndpoint(worker));
    const h: Handle = { index, worker, api, dead, cause: null, exited: false };
    this.handles[index] = h;
    worker.on('error', (e: Error) => {
      h.cause ??= `worker ${index} threw ${e.name}: ${e.message}`;
    });
    worker.on('exit', (code) => {
      h.exited = true;
      h.cause ??= `worker ${index} exited with code ${code}`;
      kill(new WorkerError(h.cause));
      if (this.closing) return;
      // It may have died between storing a group's last DONE and waking this thread: look again.
      this.bump(CTL.DONE);
      void this.replace(h);
    });
    const init: WorkerInit = { ...this.opts, helpMinFlops: this.opts.helpMinFlops ?? HELP_MIN_FLOPS, index, jobs: this.jobs, fault, regions: this.regions };
    delete (init as Partial<PoolOptions>).faults;
    await Promise.race([api.init(init), dead]);
  }

  /** A worker died: its claimed jobs go back to pending (or end the run past the retry budget), and a new worker takes its place. */
  private async replace(h: Handle): Promise<void> {
    if (this.fatal !== null) return;
    const cause = h.cause!;
    const budget = this.opts.maxRetries ?? 3;
    if (++this.failures[h.index]! > budget) {
      this.fail(new WorkerError(`worker ${h.index} failed ${this.failures[h.index]} times; last cause: ${cause}`));
      return;
    }
    let reposted = false;
    for (let j = 0; j < this.jobs; j++) {
      const at = CTL.HEADER + j * JOB.FIELDS + JOB.STATE;
      if (Atomics.load(this.ctl, at) !== JobState.CLAIMED + h.index) continue;
      if (++this.retries[j]! > budget) {
        this.fail(new WorkerError(`a job failed ${this.retries[j]} times; last cause: ${cause}`));
        return;
      }
      // The thread is gone (exit fired), so nothing can still write the slot the redo will overwrite.
      Atomics.store(this.ctl, at, JobState.PENDING);
      reposted = true;
    }
    // It may have died between a job's DONE and releasing the jobs that waited for it.
    if (releaseReady(this.ctl, this.jobs)) reposted = true;
    if (reposted) this.bump(CTL.GEN);
    try {
      const fault = this.opts.faults?.[h.index];
      await this.spawn(h.index, fault?.persistent === true ? fault : null);
    } catch (e) {
      const next = this.handles[h.index]!;
      // A replacement that died during init counts as one more failure of this index: its own exit handler runs replace again.
      if (next !== h && next.exited) return;
      this.fail(new WorkerError(`replacing worker ${h.index} after "${cause}" failed: ${next.cause ?? (e as Error).message}`));
    }
  }

  private checkHung(): void {
    const limit = this.opts.watchdogMs ?? 30_000;
    const now = Date.now();
    for (let j = 0; j < this.jobs; j++) {
      const s = Atomics.load(this.ctl, CTL.HEADER + j * JOB.FIELDS + JOB.STATE);
      if (s < JobState.CLAIMED) continue;
      const h = this.handles[s - JobState.CLAIMED];
      if (h === null || h === undefined || h.exited || h.cause !== null) continue;
      if (now - this.f64[this.lay.claimedAt + h.index]! > limit) {
        h.cause = `worker ${h.index} hung: a job ran past the ${limit} ms watchdog`;
        void h.worker.terminate();
      }
    }
  }

  private bump(field: number): void {
    Atomics.add(this.ctl, field, 1);
    Atomics.notify(this.ctl, field);
  }

  private fail(e: Error): void {
    this.fatal ??= e;
    this.bump(CTL.DONE); // wake every waiter so it sees the error: no step promise is left pending
  }

  /** Posts a job of group `group`: claimable once the caller bumps GEN, or (`waiting`) once released. */
  private post(slot: number, from: number, to: number, n: number, shard: number, draw: number, group: number, waiting: boolean): number {
    if (this.fatal !== null) throw this.fatal;
    if (this.closing) throw new WorkerError('pool: used after close()');
    const j = this.freeJobs.pop();
    if (j === undefined) throw new ValueError(`pool: more than ${this.jobs} jobs in flight`);
    const b = CTL.HEADER + j * JOB.FIELDS;
    const c = this.ctl;
    c[b + JOB.SLOT] = slot;
    c[b + JOB.FROM] = from;
    c[b + JOB.TO] = to;
    c[b + JOB.N] = n;
    c[b + JOB.SHARD] = shard;
    c[b + JOB.DRAW] = draw;
    c[b + JOB.GROUP] = group;
    this.retries[j] = 0;
    // The state store publishes the fields above to the worker that claims the job.
    Atomics.store(c, b + JOB.STATE, waiting ? waitingState(this.waitingPosts++) : JobState.PENDING);
    return j;
  }

  /** Jobs js[from..] carry a loss and a count of correct predictions (the ones before are update jobs). */
  private async collect(js: number[], from = 0): Promise<JobResult> {
    const c = this.ctl;
    try {
      for (;;) {
        if (this.fatal !== null) throw this.fatal;
        const seen = Atomics.load(c, CTL.DONE);
        if (allDone(c, js)) break;
        const w = Atomics.waitAsync(c, CTL.DONE, seen);
        if (w.async) await w.value;
      }
      let lossSum = 0;
      let correct = 0;
      for (let i = from; i < js.length; i++) {
        lossSum += this.f64[this.lay.loss + js[i]!]!;
        correct += c[CTL.HEADER + js[i]! * JOB.FIELDS + JOB.CORRECT]!;
      }
      return { lossSum, correct, jobs: js.length - from };
    } finally {
      for (const j of js) {
        Atomics.store(c, CTL.HEADER + j * JOB.FIELDS + JOB.STATE, JobState.IDLE);
        this.freeJobs.push(j);
      }
    }
  }

  /**
   * Synchronous mode: posts step `step`, the n samples of batch `slot` as micro-shards (shard s into
   * gradient slot s, Dropout draw `step·shards + s`), and with the update on the workers its update jobs.
   * Resolves when every job is done. The shards wait for the previous step's jobs, and unless `early` for
   * `release(step, …)`; the update jobs wait for the shards and `release(step, calls)`. So a step can be
   * posted while the one before it runs, and the workers go on to it without waiting for this thread.
   */
  runShards(slot: number, n: number, step: number, early = false): Promise<JobResult> {
    const k = shardCount(n, this.opts.shards);
    const u = this.chunks.length - 1;
    if (early) this.raise(CTL.OPENED, step + 1);
    return this.runGroup(step, u + k, (i) => {
      if (i < u) return this.post(i, this.chunks[i]!, this.chunks[i + 1]!, k, UPDATE_JOB, step, step, true);
      const [a, b] = shardRange(n, k, i - u);
      return this.post(slot, a, b, n, i - u, step * this.opts.shards + i - u, step, true);
    }, u);
  }

  /**
   * Releases step `step` (posted with runShards) once the step before it is applied here: its shard jobs
   * may run once that step's jobs are done, and with the update on the workers, `calls` (the step's
   * optimizer calls) are written for its update jobs, which run once its shards are done. Not earlier:
   * the update jobs of the step before read the plan region (and write the chunks' Σ g²).
   */
  release(step: number, calls: readonly OptimizerCall[] | null): void {
    if (calls !== null) {
      const plan = this.planView!;
      const head = this.chunks.length;
      if (head + calls.length * PLAN_WIDTH > plan.length) throw new ValueError(`pool: an update plan of ${calls.length} calls does not fit its region`);
      plan[0] = calls.length;
      calls.forEach((c, i) => {
        const at = head + i * PLAN_WIDTH;
        plan[at] = PLAN_KERNELS.indexOf(c.kernel);
        plan.set(c.args, at + 1);
      });
      // The store publishes the plan to the update jobs it releases.
      this.raise(CTL.PLANNED, step + 1);
    }
    this.raise(CTL.OPENED, step + 1);
    if (releaseReady(this.ctl, this.jobs)) this.bump(CTL.GEN);
  }

  /** Only this thread writes OPENED and PLANNED, so they never go back. */
  private raise(field: number, value: number): void {
    if (Atomics.load(this.ctl, field) < value) Atomics.store(this.ctl, field, value);
  }

  /** Σ g² of the last step's reduced gradient (update jobs), its chunks added in order. */
  updatedNormSq(): number {
    let sq = 0;
    for (let u = 1; u < this.chunks.length; u++) sq += this.planView![u]!;
    return sq;
  }

  /** Hogwild mode: one worker trains on the whole batch and updates the shared parameters itself. */
  runWhole(slot: number, n: number, draw: number): Promise<JobResult> {
    const group = this.batches++;
    return this.runGroup(group, 1, () => this.post(slot, 0, n, n, -1, draw, group, false));
  }

  /** Posts k jobs as group `group` and resolves when all are done (the worker that finishes its last job wakes this thread). */
  private runGroup(group: number, k: number, postJob: (i: number) => number, resultsFrom = 0): Promise<JobResult> {
    if (this.freeJobs.length < k) throw new ValueError(`pool: more than ${this.jobs} jobs in flight`);
    const js: number[] = [];
    for (let i = 0; i < k; i++) js.push(postJob(i));
    releaseReady(this.ctl, this.jobs);
    this.bump(CTL.GEN);
    return this.collect(js, resultsFrom);
  }

  /** Posted groups (steps, Hogwild batches) that no worker has started: waiting in the job table. */
  queuedGroups(): number {
    const posted = new Set<number>();
    const started = new Set<number>();
    for (let j = 0; j < this.jobs; j++) {
      const b = CTL.HEADER + j * JOB.FIELDS;
      const s = Atomics.load(this.ctl, b + JOB.STATE);
      if (s === JobState.IDLE) continue;
      posted.add(this.ctl[b + JOB.GROUP]!);
      if (s === JobState.DONE || s >= JobState.CLAIMED) started.add(this.ctl[b + JOB.GROUP]!);
    }
    return posted.size - started.size;
  }

  /** The learning rate workers use in Hogwild mode (a schedule on the main thread sets it). */
  setLr(lr: number): void {
    this.f64[F64.LR] = lr;
  }

  /** Workers that failed (threw, exited, hung) and were replaced or ended the run. */
  get failureCount(): number {
    return this.failures.reduce((a, b) => a + b, 0);
  }

  /** Times the main thread was signalled: once per finished group of jobs (a step; twice when its last two jobs end together), plus once per fault. */
  get signals(): number {
    return Atomics.load(this.ctl, CTL.DONE);
  }

  /** Blocks of the workers' products that an idle peer computed (gemm-help.ts), since start. */
  get helpedBlocks(): number {
    return helpedBlocks(this.regions.help);
  }

  /** Milliseconds each worker index has spent computing jobs, since start. */
  busyMs(): number[] {
    const ms = new Array<number>(this.size);
    for (let w = 0; w < this.size; w++) ms[w] = this.f64[this.lay.busy + w]!;
    return ms;
  }

  /** Tells workers to copy the shared non-learned buffers into their models (after loading weights). */
  async loadWeights(): Promise<void> {
    await Promise.all(this.live().map((h) => Promise.race([h.api.loadWeights(), h.dead])));
  }

  private live(): Handle[] {
    return this.handles.filter((h): h is Handle => h !== null && !h.exited);
  }

  /** Stops every worker and waits for the threads to end; pending steps reject. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.watchdog);
    this.fatal ??= new WorkerError('pool: closed while a step was running');
    Atomics.store(this.ctl, CTL.STOP, 1);
    this.bump(CTL.GEN);
    this.bump(CTL.DONE);
    await Promise.all(
      this.live().map(async (h) => {
        const ended = new Promise<void>((resolve) => (h.exited ? resolve() : h.worker.once('exit', () => resolve())));
        // A graceful shutdown first; a busy or hung worker is terminated after a short grace.
        const grace = setTimeout(() => void h.worker.terminate(), 2000);
        await Promise.race([h.api.shutdown(), h.dead]).catch(() => {});
        h.api[Comlink.releaseProxy]();
        await h.worker.terminate();
        await ended;
        clearTimeout(grace);
      }),
    );
  }

  /** The first fatal error, if the pool has failed. */
  get error(): Error | null {
    return this.closing ? null : this.fatal;
  }
}

/** Whether every job in `js` is DONE (a loop, not `every` with a closure: it runs at each wake-up of every step). */
function allDone(ctl: Int32Array, js: readonly number[]): boolean {
  for (const j of js) if (Atomics.load(ctl, CTL.HEADER + j * JOB.FIELDS + JOB.STATE) !== JobState.DONE) return false;
  return true;
}
