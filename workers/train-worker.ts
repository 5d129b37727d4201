// The worker entry: rebuilds the model over the shared parameters, then claims jobs from the control
// SAB and runs forward · loss · backward on batches in place: a short claim-compute-signal loop.
import { availableParallelism } from 'node:os';
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink/dist/esm/comlink.mjs';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { buildModel } from '../src/nn/spec.js';
import type { Module } from '../src/nn/module.js';
import { ParamLayout, shareParameters } from '../src/nn/param-layout.js';
import { OPTIMIZER_KERNELS, type OptimizerCall, type WasmHeap, adoptHeap, runOptimizerRange, setKernels } from '../src/kernels/wasm/runtime.js';
import { buildOptimizer } from '../src/optim/spec.js';
import type { Optimizer } from '../src/optim/optimizer.js';
import { Arena } from '../src/tensor/arena.js';
import { type Storage, Tensor } from '../src/tensor/tensor.js';
import { ShardCarry, ShardedGradients, positionDropout, shardStep, statefulLayers } from '../src/train/shard.js';
import { CTL, F64, JOB, JobState, PLAN_KERNELS, PLAN_WIDTH, UPDATE_JOB, type UpdateRegions, type WorkerApi, type WorkerInit, f64Layout, groupBusy, releaseReady } from './protocol.js';
import { BYTES, BatchSlots, floatView } from './slots.js';
import { copyBuffers, gradSlots } from './shared.js';
import { GemmHelp } from './gemm-help.js';

/** An optimizer call of the step's plan and the flat range of the parameter it updates. */
interface PlannedCall {
  call: OptimizerCall;
  start: number;
  n: number;
}

/** The update jobs' operands as byte addresses in the heap, and the plan's shared views. */
class UpdateView {
  readonly plan: Float64Array;
  readonly stamps: Int32Array;
  readonly grad: number;
  readonly backup: number;

  constructor(
    r: UpdateRegions,
    /** Parameters per gradient slot. */
    readonly size: number,
    readonly params: number,
    readonly slots: number,
  ) {
    this.plan = new Float64Array(r.plan);
    this.stamps = new Int32Array(r.stamps);
    this.grad = r.gradByteOffset;
    this.backup = r.backupByteOffset;
  }

  /** Read into the same objects every time: update jobs run for every chunk of every step. */
  private readonly planned: PlannedCall[] = [];
  /** The step `planned` was read for: a step's other chunks (and redone ones) reuse it. */
  private plannedStep = -1;

  /** Step `step`'s optimizer calls, as the main thread wrote them when it released the step. */
  calls(step: number): readonly PlannedCall[] {
    const { plan, planned } = this;
    if (step === this.plannedStep) return planned;
    this.plannedStep = step;
    const head = 1 + this.stamps.length;
    planned.length = plan[0]!;
    for (let c = 0; c < planned.length; c++) {
      const at = head + c * PLAN_WIDTH;
      const kernel = PLAN_KERNELS[plan[at]!]!;
      const p = (planned[c] ??= { call: { kernel, args: new Array<number>(PLAN_WIDTH - 1).fill(0) }, start: 0, n: 0 });
      p.call.kernel = kernel;
      for (let i = 0; i < PLAN_WIDTH - 1; i++) p.call.args[i] = plan[at + 1 + i]!;
      p.start = (p.call.args[0]! - this.params) / 4;
      p.n = p.call.args[OPTIMIZER_KERNELS[kernel]]!;
    }
    return planned;
  }
}

/**
 * How long an idle worker waits awake for a job that is due (spinWhile). In-run A/B, 2 workers (windows
 * alternating spinning on and off): MLP 0.2 ms ±1%, 0.5–2 ms +1–4.5% samples/s; at 1 ms CNN +1–2%,
 * LSTM +1.6–4.6%.
 */
const SPIN_MS = 1;

class TrainWorker implements WorkerApi {
  private cfg!: WorkerInit;
  private model!: Module;
  private ctl!: Int32Array;
  private f64!: Float64Array;
  private lay!: ReturnType<typeof f64Layout>;
  private slots!: BatchSlots;
  private sharded: ShardedGradients | null = null;
  private carry: ShardCarry | null = null;
  private optimizer: Optimizer | null = null;
  private sharedBuffers!: Storage;
  /** The source's table, when batches come as row numbers (SharedRegions.table). */
  private table: Storage | null = null;
  /** Made in init, after the thread adopts the run's heap, so a step's tensors sit beside the parameters. */
  private arena!: Arena;
  private jobsRun = 0;
  private heap: WasmHeap | null = null;
  private upd: UpdateView | null = null;
  private loopDone: Promise<void> = Promise.resolve();
  /** Waiting awake pays only while every worker has a core of its own: past that it takes a core from one that has work. */
  private spins = false;
  /** Blocks of large products shared with the other workers while they wait awake (null: none offered or taken). */
  private help: GemmHelp | null = null;

  async init(cfg: WorkerInit): Promise<void> {
    this.cfg = cfg;
    this.spins = cfg.workers <= availableParallelism();
    const r = { ...cfg.regions };
    // This thread's kernels run on the main thread's heap; the regions in it are read through this
    // thread's own view of the memory, which the kernels recognise as theirs (a posted buffer would not be).
    setKernels(cfg.kernels);
    const heap = r.memory === null ? null : adoptHeap(r.memory);
    this.heap = heap;
    if (heap !== null) r.params = r.batchX = r.grads = heap.bufferCovering(r.memory!.buffer.byteLength);
    const helpMinFlops = cfg.helpMinFlops ?? 0;
    if (heap !== null && this.spins && helpMinFlops > 0 && cfg.workers > 1) {
      this.help = new GemmHelp(r.help, cfg.index, cfg.workers, heap, helpMinFlops);
      heap.splitter = this.help;
    }
    this.arena = new Arena(1 << 22);
    this.model = buildModel(cfg.model, cfg.seed);
    const paramCount = ParamLayout.of(this.model).size;
    const { layout } = shareParameters(this.model, { params: floatView(cfg.dtype, r.params, r.paramsByteOffset / BYTES[cfg.dtype], paramCount) });
    this.ctl = new Int32Array(r.ctl);
    this.f64 = new Float64Array(r.f64);
    this.lay = f64Layout(cfg.jobs, cfg.workers);
    const sampleSize = cfg.inputShape.reduce((a, b) => a * b, 1);
    const targetSize = cfg.targetShape === null ? 0 : cfg.targetShape.reduce((a, b) => a * b, 1);
    this.slots = new BatchSlots(cfg.batchSlots, cfg.batchSize, sampleSize, targetSize, cfg.dtype, { x: r.batchX, xByteOffset: r.batchXByteOffset, y: r.batchY, rows: r.batchRows });
    if (r.table !== null) this.table = floatView(cfg.dtype, r.table.buffer, r.table.byteOffset / BYTES[cfg.dtype], r.table.length);
    const bufSize = this.model.namedBuffers().reduce((a, [, b]) => a + b.size, 0);
    this.sharedBuffers = floatView(cfg.dtype, r.buffers, 0, bufSize);
    copyBuffers(this.model, this.sharedBuffers, 'in');
    if (statefulLayers(this.model).length > 0) {
      const maxRows = Math.ceil(cfg.batchSize / cfg.shards);
      const { elements } = ShardCarry.sizes(this.model, cfg.shards, maxRows);
      this.carry = new ShardCarry(this.model, cfg.shards, maxRows, { data: floatView(cfg.dtype, r.carry, 0, elements), rows: new Int32Array(r.carryRows) });
    }
    if (cfg.mode === 'sync') {
      this.sharded = new ShardedGradients(this.model.parameters(), gradSlots(r.grads, cfg.dtype, layout.size, cfg.shards, r.gradsByteOffset));
      if (r.update !== null) this.upd = new UpdateView(r.update, layout.size, r.paramsByteOffset, r.gradsByteOffset);
    } else {
      this.optimizer = buildOptimizer(cfg.optimizer!, this.model.parameters());
    }
    // Jobs start after init's reply is posted, so a job that kills this thread cannot pre-empt the reply.
    this.loopDone = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.loop()).catch((e: unknown) => {
      // A failed job ends this worker: thrown outside the promise chain, it reaches the pool as an 'error' event.
      setImmediate(() => {
        throw e;
      });
    });
  }

  loadWeights(): void {
    copyBuffers(this.model, this.sharedBuffers, 'in');
  }

  async shutdown(): Promise<void> {
    await this.loopDone;
  }

  private async loop(): Promise<void> {
    const ctl = this.ctl;
    while (Atomics.load(ctl, CTL.STOP) === 0) {
      // Read the generation before scanning: jobs posted after the scan bump it, so the wait below returns at once.
      const gen = Atomics.load(ctl, CTL.GEN);
      const j = this.claim();
      if (j >= 0) {
        this.run(j);
        continue;
      }
      if (this.spins && this.workDue() && this.spinWhile(gen)) continue;
      // waitAsync, not wait: the event loop stays free for the comlink control plane while idle.
      const w = Atomics.waitAsync(ctl, CTL.GEN, gen);
      if (w.async) await w.value;
    }
  }

  /**
   * Whether a job will soon be released to this thread: one waits for the jobs before it, or another
   * worker holds one (its end may release more). Idle between steps of a source that keeps up, not at
   * the end of the stream or while the source is slow.
   */
  private workDue(): boolean {
    const { ctl, cfg } = this;
    for (let j = 0; j < cfg.jobs; j++) {
      const s = Atomics.load(ctl, CTL.HEADER + j * JOB.FIELDS + JOB.STATE);
      if (s < 0 || (s >= JobState.CLAIMED && s !== JobState.CLAIMED + cfg.index)) return true;
    }
    return false;
  }

  /**
   * Waits awake, up to SPIN_MS, for the generation to move past `gen`; true when it did. A thread that
   * sleeps lets a virtual machine's host park its core, and a parked core runs again 0.05–1 ms after
   * the wake-up (probed on this project's 2-core VMs: p50 55 µs, p90 0.9 ms), where the job it waits for
   * is most often released within a fraction of a job (the other worker's last shard or update chunk).
   * OpenMP runtimes spin before they sleep for the same reason. Meanwhile it computes blocks of the
   * products other workers offer (GemmHelp): what it waits for ends sooner.
   */
  private spinWhile(gen: number): boolean {
    const { ctl, help } = this;
    let until = performance.now() + SPIN_MS;
    while (Atomics.load(ctl, CTL.GEN) === gen) {
      if (help !== null) {
        const t0 = performance.now();
        if (help.helpOnce()) {
          // Helping is work: it counts as busy, and the wait starts over after it.
          until = performance.now();
          this.f64[this.lay.busy + this.cfg.index] = this.f64[this.lay.busy + this.cfg.index]! + (until - t0);
          until += SPIN_MS;
          continue;
        }
      }
      if (Atomics.load(ctl, CTL.STOP) !== 0 || performance.now() > until) return false;
    }
    return true;
  }

  /** Claims a pending job by compare-and-swap on its state, which then names this worker. */
  private claim(): number {
    const { ctl, cfg } = this;
    // Stamp before claiming, so the watchdog never reads an older job's time for this claim.
    this.f64[this.lay.claimedAt + cfg.index] = Date.now();
    for (let j = 0; j < cfg.jobs; j++) {
      const at = CTL.HEADER + j * JOB.FIELDS + JOB.STATE;
      if (Atomics.load(ctl, at) !== JobState.PENDING) continue;
      if (Atomics.compareExchange(ctl, at, JobState.PENDING, JobState.CLAIMED + cfg.index) === JobState.PENDING) return j;
    }
    return -1;
  }

  private run(j: number): void {
    const { ctl, cfg } = this;
    const t0 = performance.now();
    const base = CTL.HEADER + j * JOB.FIELDS;
    const shard = ctl[base + JOB.SHARD]!;
    if (shard === UPDATE_JOB) this.update(ctl[base + JOB.SLOT]!, ctl[base + JOB.FROM]!, ctl[base + JOB.TO]!, ctl[base + JOB.N]!, ctl[base + JOB.DRAW]!);
    else this.compute(j, base, shard);
    this.stageFault(shard, base);
    this.f64[this.lay.busy + cfg.index] = this.f64[this.lay.busy + cfg.index]! + (performance.now() - t0);
    // Results are written before the state flips to DONE: the store is the release the main thread reads after.
    const group = ctl[base + JOB.GROUP]!;
    Atomics.store(ctl, base + JOB.STATE, JobState.DONE);
    // Looked at after this DONE store: of two workers ending a group's last jobs together, at least one
    // sees both DONE (the accesses are sequentially consistent), so no release or wake-up is missed; both
    // may act, which releasing (by compare-and-swap) and the main thread (which looks at the states) tolerate.
    if (releaseReady(ctl, cfg.jobs)) {
      Atomics.add(ctl, CTL.GEN, 1);
      Atomics.notify(ctl, CTL.GEN);
    }
    if (groupBusy(ctl, cfg.jobs, group)) return;
    Atomics.add(ctl, CTL.DONE, 1);
    Atomics.notify(ctl, CTL.DONE);
  }

  /** Forward · loss · backward of samples [FROM, TO) of a batch slot, into gradient slot `shard` (sync) or the own gradients. */
  private compute(j: number, base: number, shard: number): void {
    const { ctl, cfg, model } = this;
    const slot = ctl[base + JOB.SLOT]!;
    const from = ctl[base + JOB.FROM]!;
    const to = ctl[base + JOB.TO]!;
    const n = ctl[base + JOB.N]!;
    // Non-learned state (running statistics) follows shard 0 alone, as DDP follows rank 0; Hogwild lets every job write it.
    const ownsBuffers = shard <= 0;
    if (ownsBuffers) copyBuffers(model, this.sharedBuffers, 'in');
    if (this.sharded !== null) this.sharded.select(shard);
    else this.optimizer!.zeroGrad();
    positionDropout(model, ctl[base + JOB.DRAW]!);
    const { slots } = this;
    const m = to - from;
    if (this.table !== null) this.gather(slot, from, to);
    this.carry?.enter(shard, m);
    this.arena.step(() => {
      const x = new Tensor(slots.x(slot).subarray(from * slots.sampleSize, to * slots.sampleSize), [m, ...cfg.inputShape]);
      const yAll = slots.y(slot);
      const y = yAll instanceof Int32Array ? yAll.subarray(from, to) : new Tensor(yAll.subarray(from * slots.targetSize, to * slots.targetSize), [m, ...cfg.targetShape!]);
      const r = shardStep(model, cfg.loss, x, y, n);
      this.f64[this.lay.loss + j] = r.lossSum;
      ctl[base + JOB.CORRECT] = r.correct;
    });
    this.sharded?.settle();
    this.carry?.leave(shard, m);
    if (this.optimizer !== null) {
      const lr = this.f64[F64.LR]!;
      for (const g of this.optimizer.paramGroups) g.lr = lr;
      this.optimizer.step(); // Hogwild: written to the shared parameters without a lock, by design
    }
    if (ownsBuffers) copyBuffers(model, this.sharedBuffers, 'out');
  }

  /**
   * Copies the table rows that samples [from, to) of a slot name (checked by the batch stage) into the
   * slot's inputs: here, on the core that trains on them, not on the pipeline's thread, which competes
   * with the workers for the cores.
   */
  private gather(slot: number, from: number, to: number): void {
    const table = this.table!;
    const { slots } = this;
    const f = slots.sampleSize;
    const rows = slots.rows(slot)!;
    const x = slots.x(slot);
    for (let i = from; i < to; i++) {
      const at = rows[i]! * f;
      x.set(table.subarray(at, at + f), i * f);
    }
  }

  /**
   * Update job: chunk `chunk` = elements [a, b) of the flat parameters. Sums the k gradient slots into
   * the parameters' own gradients in slot order (as the main thread's reducer would), records the
   * chunk's Σ g², and runs the step's optimizer calls on the chunk's piece of each parameter. Parameters
   * and optimizer state are backed up first, and a redo (its worker died mid-update) restores them, so a
   * chunk is updated exactly once from the same values.
   */
  private update(chunk: number, a: number, b: number, k: number, step: number): void {
    const heap = this.heap!;
    const K = heap.kernels;
    const u = this.upd!;
    const calls = u.calls(step);
    const redo = Atomics.load(u.stamps, chunk) === step + 1;
    for (let ci = 0; ci < calls.length; ci++) {
      const c = calls[ci]!;
      const lo = Math.max(a, c.start);
      const hi = Math.min(b, c.start + c.n);
      if (lo >= hi) continue;
      // The other workers' shards read the parameters, so their lines sit in every core's cache: take
      // them over in one pass before the optimizer writes them (see ownLines; with two workers its
      // kernel ran ~4× slower without, waiting on each line in turn).
      K.ownLines(c.call.args[0]! + (lo - c.start) * 4, (hi - lo) * 4);
      const nAddr = OPTIMIZER_KERNELS[c.call.kernel];
      for (let q = 0; q < nAddr; q++) {
        if (q === 1 || c.call.args[q] === 0) continue; // the gradient is rebuilt below; absent state has nothing to keep
        const at = c.call.args[q]! + (lo - c.start) * 4;
        const saved = u.backup + ((q === 0 ? 0 : q - 1) * u.size + lo) * 4;
        if (redo) K.copyF32(at, saved, hi - lo);
        else K.copyF32(saved, at, hi - lo);
      }
    }
    if (!redo) Atomics.store(u.stamps, chunk, step + 1);
    u.plan[1 + chunk] = K.sumSlotsF32(u.grad + a * 4, u.slots + a * 4, u.size * 4, k, b - a);
    for (let ci = 0; ci < calls.length; ci++) {
      const c = calls[ci]!;
      const lo = Math.max(a, c.start);
      const hi = Math.min(b, c.start + c.n);
      if (lo < hi) runOptimizerRange(K, c.call, lo - c.start, hi - c.start);
    }
  }

  /**
   * Test hook: fails the job the plan names, after spoiling what a redo must redo: its gradient slot,
   * or (an update job) its chunk of the parameters.
   */
  private stageFault(shard: number, base: number): void {
    const f = this.cfg.fault;
    if (f === null || (f.on !== undefined && f.on !== (shard === UPDATE_JOB ? 'update' : 'shard'))) return;
    if (++this.jobsRun !== f.atJob) return;
    if (shard >= 0) for (const p of this.model.parameters()) p.grad!.data.fill(Number.NaN);
    if (shard === UPDATE_JOB) this.heap!.view('f32', this.upd!.params, this.upd!.size).fill(Number.NaN, this.ctl[base + JOB.FROM]!, this.ctl[base + JOB.TO]!);
    if (f.kind === 'throw') throw new Error(`injected fault at job ${f.atJob}`);
    if (f.kind === 'exit') process.exit(3);
    for (;;); // hang: only the watchdog's terminate ends this
  }
}

Comlink.expose(new TrainWorker(), nodeEndpoint(parentPort!));
