// The worker entry: rebuilds the model over the shared parameters, then claims jobs from the control
// SAB and runs forward · loss · backward on batches in place: a short claim-compute-signal loop.
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink/dist/esm/comlink.mjs';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { buildModel } from '../src/nn/spec.js';
import type { Module } from '../src/nn/module.js';
import { ParamLayout, shareParameters } from '../src/nn/param-layout.js';
import { adoptHeap, setKernels } from '../src/kernels/wasm/runtime.js';
import { buildOptimizer } from '../src/optim/spec.js';
import type { Optimizer } from '../src/optim/optimizer.js';
import { Arena } from '../src/tensor/arena.js';
import { type Storage, Tensor } from '../src/tensor/tensor.js';
import { ShardCarry, ShardedGradients, positionDropout, shardStep, statefulLayers } from '../src/train/shard.js';
import { CTL, F64, JOB, JobState, type WorkerApi, type WorkerInit, f64Layout } from './protocol.js';
import { BYTES, BatchSlots, floatView } from './slots.js';
import { copyBuffers, gradSlots } from './shared.js';

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
  /** Made in init, after the thread adopts the run's heap, so a step's tensors sit beside the parameters. */
  private arena!: Arena;
  private jobsRun = 0;
  private loopDone: Promise<void> = Promise.resolve();

  async init(cfg: WorkerInit): Promise<void> {
    this.cfg = cfg;
    const r = { ...cfg.regions };
    // This thread's kernels run on the main thread's heap; the regions in it are read through this
    // thread's own view of the memory, which the kernels recognise as theirs (a posted buffer would not be).
    setKernels(cfg.kernels);
    const heap = r.memory === null ? null : adoptHeap(r.memory);
    if (heap !== null) r.params = r.batchX = r.grads = heap.bufferCovering(r.memory!.buffer.byteLength);
    this.arena = new Arena(1 << 22);
    this.model = buildModel(cfg.model, cfg.seed);
    const paramCount = ParamLayout.of(this.model).size;
    const { layout } = shareParameters(this.model, { params: floatView(cfg.dtype, r.params, r.paramsByteOffset / BYTES[cfg.dtype], paramCount) });
    this.ctl = new Int32Array(r.ctl);
    this.f64 = new Float64Array(r.f64);
    this.lay = f64Layout(cfg.jobs, cfg.workers);
    const sampleSize = cfg.inputShape.reduce((a, b) => a * b, 1);
    const targetSize = cfg.targetShape === null ? 0 : cfg.targetShape.reduce((a, b) => a * b, 1);
    this.slots = new BatchSlots(cfg.batchSlots, cfg.batchSize, sampleSize, targetSize, cfg.dtype, { x: r.batchX, xByteOffset: r.batchXByteOffset, y: r.batchY });
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
      // waitAsync, not wait: the event loop stays free for the comlink control plane while idle.
      const w = Atomics.waitAsync(ctl, CTL.GEN, gen);
      if (w.async) await w.value;
    }
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
    const { ctl, cfg, model } = this;
    const t0 = performance.now();
    const base = CTL.HEADER + j * JOB.FIELDS;
    const slot = ctl[base + JOB.SLOT]!;
    const from = ctl[base + JOB.FROM]!;
    const to = ctl[base + JOB.TO]!;
    const n = ctl[base + JOB.N]!;
    const shard = ctl[base + JOB.SHARD]!;
    // Non-learned state (running statistics) follows shard 0 alone, as DDP follows rank 0; Hogwild lets every job write it.
    const ownsBuffers = shard <= 0;
    if (ownsBuffers) copyBuffers(model, this.sharedBuffers, 'in');
    if (this.sharded !== null) this.sharded.select(shard);
    else this.optimizer!.zeroGrad();
    positionDropout(model, ctl[base + JOB.DRAW]!);
    const { slots } = this;
    const m = to - from;
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
    this.stageFault(shard);
    this.f64[this.lay.busy + cfg.index] = this.f64[this.lay.busy + cfg.index]! + (performance.now() - t0);
    // Results are written before the state flips to DONE: the store is the release the main thread reads after.
    const group = ctl[base + JOB.GROUP]!;
    Atomics.store(ctl, base + JOB.STATE, JobState.DONE);
    if (this.groupBusy(group)) return;
    Atomics.add(ctl, CTL.DONE, 1);
    Atomics.notify(ctl, CTL.DONE);
  }

  /**
   * Whether a job of `group` is still pending or claimed. Read after this worker's DONE store: of two
   * workers finishing the group's last jobs together, at least one sees both DONE (the accesses are
   * sequentially consistent), so the main thread is always woken; both may wake it, which it tolerates.
   * Only reads: once the main thread has moved on, a late look at a re-posted table costs a spurious
   * wake-up at most (a shared countdown decremented that late would corrupt the next group's count).
   */
  private groupBusy(group: number): boolean {
    const { ctl, cfg } = this;
    for (let j = 0; j < cfg.jobs; j++) {
      const b = CTL.HEADER + j * JOB.FIELDS;
      if (ctl[b + JOB.GROUP] !== group) continue;
      const s = Atomics.load(ctl, b + JOB.STATE);
      if (s === JobState.PENDING || s >= JobState.CLAIMED) return true;
    }
    return false;
  }

  /** Test hook: fails the job the plan names, after spoiling its gradient slot (a redo must overwrite it). */
  private stageFault(shard: number): void {
    const f = this.cfg.fault;
    if (f === null || ++this.jobsRun !== f.atJob) return;
    if (shard >= 0) for (const p of this.model.parameters()) p.grad!.data.fill(Number.NaN);
    if (f.kind === 'throw') throw new Error(`injected fault at job ${f.atJob}`);
    if (f.kind === 'exit') process.exit(3);
    for (;;); // hang: only the watchdog's terminate ends this
  }
}

Comlink.expose(new TrainWorker(), nodeEndpoint(parentPort!));
