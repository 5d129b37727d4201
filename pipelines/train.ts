// trainParallel: the whole flow in one pipe(): credits → batch → dispatch → reduceGradients →
// applyUpdate → report, over a pool of workers sharing the parameters in one SharedArrayBuffer.
import { availableParallelism } from 'node:os';
import { type Observable, Subject, lastValueFrom, tap } from 'rxjs';
import { ValueError, checkInt, fmtValue } from '../src/errors.js';
import { noGrad } from '../src/autograd/engine.js';
import type { Module } from '../src/nn/module.js';
import { shareParameters } from '../src/nn/param-layout.js';
import { type OptimizerCall, createHeap, kernelsInUse, swapHeap } from '../src/kernels/wasm/runtime.js';
import { type ModelSpec, buildModel } from '../src/nn/spec.js';
import type { Optimizer } from '../src/optim/optimizer.js';
import { type OptimizerSpec, buildOptimizer } from '../src/optim/spec.js';
import { numel } from '../src/tensor/shape.js';
import { type DType, type Storage, Tensor, allocStorage, storageDType } from '../src/tensor/tensor.js';
import { type LossName, LOSS_NAMES, ShardCarry, ShardedGradients, statefulLayers, summedLoss, takesClassIndices } from '../src/train/shard.js';
import { BACKUP_PLANES, type FaultPlan, PLAN_WIDTH, type UpdateRegions, updateChunks } from '../workers/protocol.js';
import { WorkerPool, checkWorkers } from '../workers/pool.js';
import { copyBuffers } from '../workers/shared.js';
import { type Checkpoint, type CheckpointData, checkpointDirName, saveCheckpoint } from '../src/io/checkpoint.js';
import type { StateDict } from '../src/nn/module.js';
import { type CheckpointPolicy, writeCheckpoints } from './checkpoint.js';
import { join } from 'node:path';
import { BYTES, BatchSlots, floatBuffer, floatView } from '../workers/slots.js';
import { applyUpdate } from './apply-update.js';
import { batch } from './batch.js';
import { dispatch } from './dispatch.js';
import { reduceGradients } from './reduce-gradients.js';
import { report } from './report.js';
import type { BatchSource } from './source.js';
import { StepGate } from './step-gate.js';
import type { ComputedBatch, StepTelemetry } from './types.js';

export interface ParallelTrainOptions {
  model: ModelSpec;
  /** Seed of the initial weights (default 0). */
  seed?: number;
  optimizer: OptimizerSpec;
  loss?: LossName;
  /** Shape of one sample, e.g. [1, 28, 28]. */
  inputShape: number[];
  /** Shape of one target for dense losses (mseLoss, binaryCrossEntropyWithLogits); omit for class indices. */
  targetShape?: number[];
  source: BatchSource;
  batchSize: number;
  /** Worker threads (default: the machine's cores). */
  workers?: number;
  mode?: 'sync' | 'hogwild';
  /**
   * Micro-shards per batch in sync mode (default max(4, workers)). The result depends on this and not on
   * the worker count, so keep it fixed to compare runs with different worker counts.
   */
  shards?: number;
  /**
   * Sync mode: who sums the shard gradients and applies the optimizer step. 'workers' (the default with
   * the WebAssembly kernels on f32) cuts them into chunks the workers run in parallel, right after the
   * step's shards, on their own cores' cached copies; 'main' is the main thread, between steps (the only
   * choice with the TypeScript kernels or f64). Both give the same bits.
   */
  update?: 'workers' | 'main';
  /** Batches packed ahead of the workers (default: 2 in sync mode, workers + 1 in Hogwild). */
  batchSlots?: number;
  /** Weights to start from (a state dict by parameter name), instead of the seed's. */
  init?: Module;
  /** A printer for each step's telemetry (the report stage). */
  print?: (t: StepTelemetry) => void;
  watchdogMs?: number;
  maxRetries?: number;
  /**
   * Least work (flops) of a block of a matrix product that a worker offers to an idle worker (one
   * waiting for it at a sync step's barrier); 0 offers none. The bits are the same either way.
   */
  helpMinFlops?: number;
  /** Test hook: faults staged by worker index. */
  faults?: Record<number, FaultPlan>;
  /** Stops the run cleanly: no new batch is read, the batches in flight are applied, `done` resolves. */
  signal?: AbortSignal;
  /** Most steps this run applies (then it stops as if the source ended). */
  maxSteps?: number;
  /** Write checkpoints (parameters, buffers, optimizer state, step, the source's position) as the run goes. */
  checkpoint?: CheckpointPolicy;
  /**
   * Continue from a checkpoint (loadLatestCheckpoint(dir).checkpoint): its weights and optimizer state
   * replace the seed's, and step numbering continues. Give the source the position it recorded
   * (`checkpoint.meta.source.position`), e.g. `datasetSource(d, { from: position })`.
   */
  resume?: Checkpoint;
  /**
   * Called after each update with the main thread's model (parameters current, running statistics
   * synced), while no worker runs in sync mode: evaluate at an epoch's end, say. A returned record rides
   * on that step's telemetry as `evaluation`.
   */
  afterStep?: (step: { step: number; epoch: number | undefined; epochEnd: boolean }, model: Module) => Record<string, number> | undefined;
  /**
   * A learning-rate schedule over the run's optimizer, stepped once per applied step (a resumed run
   * fast-forwards it to its step). In Hogwild mode it drives a shadow optimizer whose lr the workers read.
   */
  schedule?: (optimizer: Optimizer) => { step(): void };
}

export interface ParallelTrainResult {
  /** The main thread's model: its parameters are the trained, shared ones. */
  model: Module;
  /** The flat parameter array, in ParamLayout (state_dict) order. */
  params: Storage;
  steps: number;
  samples: number;
  seconds: number;
  last: StepTelemetry | undefined;
  /** The step the next run would start at (a checkpoint's `step`). */
  nextStep: number;
  /** Where the last checkpoint of this run was written, if any. */
  checkpointDir: string | null;
  /** Worker failures survived (each one's jobs redone on a replacement). */
  workerFailures: number;
}

export interface ParallelTrainRun {
  /** One record per applied step; completes when training ends, errors when it fails. */
  readonly telemetry$: Observable<StepTelemetry>;
  readonly done: Promise<ParallelTrainResult>;
}

interface Checked {
  workers: number;
  mode: 'sync' | 'hogwild';
  shards: number;
  batchSlots: number;
  loss: LossName;
}

function check(o: ParallelTrainOptions): Checked {
  const workers = checkWorkers('train', o.workers ?? availableParallelism());
  const mode = o.mode ?? 'sync';
  if (mode !== 'sync' && mode !== 'hogwild') throw new ValueError(`train.mode must be 'sync' or 'hogwild' (got ${fmtValue(mode)})`);
  if (o.update !== undefined && o.update !== 'workers' && o.update !== 'main') throw new ValueError(`train.update must be 'workers' or 'main' (got ${fmtValue(o.update)})`);
  checkInt('train', 'batchSize', o.batchSize, 1);
  const shards = mode === 'sync' ? checkInt('train', 'shards', o.shards ?? Math.max(4, workers), 1) : 1;
  if (o.batchSize < shards) {
    throw new ValueError(`train.batchSize ${o.batchSize} is smaller than the ${shards} micro-shards each batch is cut into: raise batchSize or lower shards`);
  }
  const batchSlots = checkInt('train', 'batchSlots', o.batchSlots ?? (mode === 'sync' ? 2 : workers + 1), 1);
  const help = o.helpMinFlops;
  if (help !== undefined && !(typeof help === 'number' && Number.isFinite(help) && help >= 0)) {
    throw new ValueError(`train.helpMinFlops must be a finite number ≥ 0: the least flops of a block offered to an idle worker, 0 for none (got ${fmtValue(help)})`);
  }
  const loss = o.loss ?? 'crossEntropy';
  if (!LOSS_NAMES.includes(loss)) throw new ValueError(`train.loss must be one of ${LOSS_NAMES.join(', ')} (got ${fmtValue(loss)})`);
  if (takesClassIndices(loss) === (o.targetShape !== undefined)) {
    throw new ValueError(`train.targetShape: loss '${loss}' ${takesClassIndices(loss) ? 'takes class indices, so give no targetShape' : 'takes dense targets: give their targetShape'}`);
  }
  return { workers, mode, shards, batchSlots, loss };
}

/**
 * Runs a forward and the loss of one zero sample on the main thread, so a wrong input shape, target shape
 * or layer mismatch fails here with the layer's own message, before any worker starts.
 */
function dryRun(model: Module, loss: LossName, inputShape: number[], targetShape: number[] | undefined): void {
  const dtype = model.parameters()[0]?.dtype ?? 'f32';
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() => {
      const out = model.forward(new Tensor(allocStorage(dtype, numel(inputShape), true), [1, ...inputShape]));
      const y = targetShape === undefined ? new Int32Array(1) : new Tensor(allocStorage(dtype, numel(targetShape), true), [1, ...targetShape]);
      summedLoss(loss, out, y);
    });
  } finally {
    model.train(wasTraining);
  }
}

/** Starts a data-parallel training run; subscribe to `telemetry$` or await `done`. */
export function trainParallel(opts: ParallelTrainOptions): ParallelTrainRun {
  const c = check(opts);
  const firstStep = opts.resume?.step ?? 0;
  const maxSteps = opts.maxSteps === undefined ? Infinity : checkInt('train', 'maxSteps', opts.maxSteps, 1);
  const model = buildModel(opts.model, opts.seed ?? 0);
  if (opts.init !== undefined) model.loadStateDict(opts.init.stateDict());
  if (opts.resume !== undefined) model.loadStateDict(opts.resume.stateDict);
  dryRun(model, c.loss, opts.inputShape, opts.targetShape);
  const dtype = opts.model.dtype ?? 'f32';
  // The run's WebAssembly heap (when those kernels are in use): parameters, gradients, gradient slots and
  // batch inputs go there, and every worker adopts it, so the kernels work on them in place. Garbage once
  // the run ends (see `done`).
  const heap = createHeap();
  let { layout, params } = shareParameters(model);
  const heapRange = (bytes: number): number => heap?.alloc(bytes) ?? 0;
  let gradAt = -1;
  if (heap !== null) {
    const inHeap = heap.view(dtype, heapRange(params.byteLength), params.length);
    inHeap.set(params);
    gradAt = heapRange(params.byteLength);
    ({ layout, params } = shareParameters(model, { params: inHeap, grads: heap.view(dtype, gradAt, params.length) }));
  }
  const mainParams = model.parameters();
  const optimizer: Optimizer | null = c.mode === 'sync' ? buildOptimizer(opts.optimizer, mainParams) : null;
  const canUpdateOnWorkers = heap !== null && dtype === 'f32';
  if (opts.update === 'workers' && c.mode === 'sync' && !canUpdateOnWorkers) {
    throw new ValueError(`train.update 'workers' needs the WebAssembly kernels on f32 parameters (kernels here: ${kernelsInUse()}, dtype: ${dtype}): leave it out or give 'main'`);
  }
  const workerUpdate = optimizer !== null && canUpdateOnWorkers && (opts.update ?? 'workers') === 'workers';
  let update: UpdateRegions | null = null;
  if (workerUpdate) {
    // Optimizer state in the heap, where the update jobs read and write it in place.
    optimizer.stateAllocator = (dt, n) => heap.view(dt, heapRange(n * BYTES[dt]), n).fill(0);
    const chunks = updateChunks(layout.size);
    update = {
      gradByteOffset: gradAt,
      backupByteOffset: heapRange(BACKUP_PLANES * params.byteLength),
      chunks,
      plan: new SharedArrayBuffer((chunks.length + mainParams.length * PLAN_WIDTH) * 8),
      stamps: new SharedArrayBuffer((chunks.length - 1) * 4),
    };
  }
  if (c.mode === 'hogwild') buildOptimizer(opts.optimizer, mainParams); // checks the spec here, not in every worker
  if (opts.resume?.optimizer != null && optimizer !== null) optimizer.loadStateDict(opts.resume.optimizer);
  // Hogwild's workers own their optimizers: a never-stepped shadow on this thread carries the schedule's lr.
  const scheduled = optimizer ?? (opts.schedule === undefined ? null : buildOptimizer(opts.optimizer, mainParams));
  const schedule = opts.schedule === undefined ? null : opts.schedule(scheduled!);
  for (let k = 0; k < firstStep && schedule !== null; k++) schedule.step();
  const every = opts.checkpoint === undefined ? 0 : checkInt('train.checkpoint', 'everySteps', opts.checkpoint.everySteps ?? 100, 1);

  const bufSize = model.namedBuffers().reduce((a, [, b]) => a + b.size, 0);
  const buffers = floatBuffer(dtype, bufSize);
  const sharedBuffers = floatView(dtype, buffers, 0, bufSize);
  copyBuffers(model, sharedBuffers, 'out');
  if (c.mode === 'hogwild' && statefulLayers(model).length > 0) {
    throw new ValueError("train.mode: stateful recurrent layers carry each micro-shard's state from one step to the next, which needs sync mode (got 'hogwild')");
  }
  const carrySizes = ShardCarry.sizes(model, c.shards, Math.ceil(opts.batchSize / c.shards));
  const carry = floatBuffer(dtype, carrySizes.elements);
  const carryRows = new SharedArrayBuffer(carrySizes.counters * 4);
  const targetSize = opts.targetShape === undefined ? 0 : numel(opts.targetShape);
  const xBytes = BatchSlots.xBytes(c.batchSlots, opts.batchSize, numel(opts.inputShape), dtype);
  const xAt = heapRange(xBytes);
  // Sync mode's gradient slots: written by the workers' kernels, summed by this thread's.
  const gradBytes = c.mode === 'sync' ? c.shards * params.byteLength : 0;
  const gradsAt = heap === null || gradBytes === 0 ? -1 : heapRange(gradBytes);
  const table = sharedTable(opts.source, dtype);
  const slots = new BatchSlots(c.batchSlots, opts.batchSize, numel(opts.inputShape), targetSize, dtype, {
    ...(heap === null ? {} : { x: heap.bufferCovering(xAt + xBytes), xByteOffset: xAt }),
    rows: table === null ? null : new SharedArrayBuffer(BatchSlots.rowsBytes(c.batchSlots, opts.batchSize)),
  });

  const telemetry$ = new Subject<StepTelemetry>();
  // This thread's kernels work on the run's heap while it runs (see swapHeap); the previous heap is back
  // once the run has ended.
  const outerHeap = heap === null ? null : swapHeap(heap);
  const done = (async (): Promise<ParallelTrainResult> => {
    const pool = await WorkerPool.start({
      workers: c.workers,
      model: opts.model,
      seed: opts.seed ?? 0,
      loss: c.loss,
      inputShape: opts.inputShape,
      targetShape: opts.targetShape ?? null,
      dtype,
      mode: c.mode,
      optimizer: c.mode === 'hogwild' ? opts.optimizer : null,
      batchSize: opts.batchSize,
      batchSlots: c.batchSlots,
      shards: c.shards,
      paramSize: layout.size,
      kernels: kernelsInUse(),
      regions: {
        memory: heap?.memory ?? null, params: params.buffer as SharedArrayBuffer, paramsByteOffset: params.byteOffset,
        buffers, batchX: slots.xBuffer, batchXByteOffset: slots.xByteOffset, batchY: slots.yBuffer, carry, carryRows,
        table: table === null ? null : { buffer: table.buffer as SharedArrayBuffer, byteOffset: table.byteOffset, length: table.length }, batchRows: slots.rowsBuffer,
        ...(gradsAt < 0 ? {} : { grads: heap!.bufferCovering(gradsAt + gradBytes), gradsByteOffset: gradsAt }),
        update,
      },
      watchdogMs: opts.watchdogMs,
      maxRetries: opts.maxRetries,
      helpMinFlops: opts.helpMinFlops,
      faults: opts.faults,
    });
    const sharded = c.mode === 'sync' && !workerUpdate ? new ShardedGradients(mainParams, pool.gradSlots) : null;
    const normSq = workerUpdate ? () => pool.updatedNormSq() : sharded === null ? null : (b: ComputedBatch) => sharded.reduce(b.jobs);
    /** Releases a step posted to the pool: with the update on the workers, its optimizer calls are written down for the update jobs instead of run. */
    const release = (step: number): void => {
      if (!workerUpdate) return pool.release(step, null);
      const calls: OptimizerCall[] = [];
      heap!.deferOptimizer = (call) => void calls.push(call);
      try {
        optimizer.step();
      } finally {
        heap!.deferOptimizer = null;
      }
      pool.release(step, calls);
    };
    if (optimizer === null && scheduled !== null) pool.setLr(scheduled.paramGroups[0]!.lr);
    // Credits: one per free slot. applyUpdate's release hands a slot back on a later turn of the event
    // loop (setImmediate below), so a slot is refilled on a fresh stack, not re-entrantly inside the stage
    // that released it.
    const credits$ = new Subject<number>();
    const gate = new StepGate(firstStep, release);
    let packed = 0;
    let started = 0;
    const t0 = performance.now();
    let last: StepTelemetry | undefined;
    let applied = 0;
    let lastSaved = firstStep;
    /** A copy of everything a resumed run needs, taken while no thread can write it (see applyUpdate). */
    const snapshot = (step: number): CheckpointData => {
      copyBuffers(model, sharedBuffers, 'in');
      const stateDict: StateDict = {};
      for (const [name, t] of Object.entries(model.stateDict())) stateDict[name] = new Tensor(t.data.slice(), t.shape);
      lastSaved = step;
      return {
        step,
        stateDict,
        optimizer: optimizer?.stateDict() ?? null,
        meta: { mode: c.mode, shards: c.shards, seed: opts.seed ?? 0, source: { name: opts.source.name, position: opts.source.position?.() ?? null, ...deadLettered(opts.source) } },
      };
    };
    const steps$ = credits$.pipe(
      batch(opts.source, slots, opts.batchSize, { firstStep, stop: (fill) => opts.signal?.aborted === true || fill >= maxSteps }),
      tap(() => packed++),
      // With the update on the workers and no non-learned buffers (which shard 0 writes and a checkpoint or
      // afterStep reads), a step's shards start right after the previous step's update, while this thread
      // still reports on it.
      dispatch(pool, c.mode, gate, () => started++, workerUpdate && bufSize === 0),
      reduceGradients(normSq),
      applyUpdate({
        optimizer: workerUpdate ? null : optimizer, source: opts.source, gate,
        // Refilled on the next turn of the event loop, after the next step is posted: the fill then overlaps
        // the workers' compute instead of delaying it (~0.25 ms a step for a 128×784 batch).
        release: (slot) => setImmediate(() => credits$.next(slot)),
        afterUpdate: (b) => {
          if (schedule !== null) {
            schedule.step();
            if (optimizer === null) pool.setLr(scheduled!.paramGroups[0]!.lr);
          }
          if (opts.afterStep === undefined) return undefined;
          copyBuffers(model, sharedBuffers, 'in');
          return opts.afterStep({ step: b.step, epoch: b.epoch, epochEnd: b.epochEnd }, model);
        },
        snapshot: (b) => (every > 0 && (b.step + 1) % every === 0 ? snapshot(b.step + 1) : null),
      }),
      writeCheckpoints(opts.checkpoint),
      report(
        {
          lr: () => scheduled?.paramGroups[0]?.lr ?? opts.optimizer.lr ?? Number.NaN,
          // Packed and not yet posted, and posted but not yet begun by any worker (a sync step posted ahead).
          queueDepth: () => packed - started + pool.queuedGroups(),
          workerBusyMs: () => pool.busyMs(),
          helpedBlocks: () => pool.helpedBlocks,
          classTargets: targetSize === 0,
        },
        opts.print,
      ),
    );
    try {
      const finished = lastValueFrom(
        steps$.pipe(
          tap((t) => {
            applied++;
            last = t;
            telemetry$.next(t);
          }),
        ),
        { defaultValue: undefined },
      );
      if (opts.checkpoint?.atStart === true && opts.resume === undefined) saveCheckpoint(opts.checkpoint.dir, snapshot(firstStep), { keep: opts.checkpoint.keep });
      for (let s = 0; s < c.batchSlots; s++) credits$.next(s);
      await finished;
      copyBuffers(model, sharedBuffers, 'in'); // running statistics, as shard 0 left them
      const nextStep = firstStep + applied;
      let checkpointDir: string | null = null;
      if (opts.checkpoint !== undefined && (nextStep !== lastSaved || applied === 0)) checkpointDir = saveCheckpoint(opts.checkpoint.dir, snapshot(nextStep), { keep: opts.checkpoint.keep });
      else if (opts.checkpoint !== undefined) checkpointDir = join(opts.checkpoint.dir, checkpointDirName(nextStep));
      telemetry$.complete();
      // Out of the run's heap into a buffer of their own, so the heap (workers' arenas and all) can go.
      const moved = heap === null ? params : shareParameters(model).params;
      return {
        model, params: moved, steps: applied, samples: last?.samples ?? 0, seconds: (performance.now() - t0) / 1000, last, nextStep, checkpointDir, workerFailures: pool.failureCount,
      };
    } catch (e) {
      telemetry$.error(e);
      throw e;
    } finally {
      credits$.complete();
      if (heap !== null) swapHeap(outerHeap);
      await pool.close();
      await opts.source.close?.();
    }
  })();
  done.catch(() => {}); // the caller sees the error through `done` or `telemetry$`; neither is required
  return { telemetry$: telemetry$.asObservable(), done };
}

/** The source's table, when its workers can read it in place: the run's float type, in a SharedArrayBuffer. */
function sharedTable(source: BatchSource, dtype: DType): Storage | null {
  const t = source.table;
  if (t === undefined || !(t.buffer instanceof SharedArrayBuffer)) return null;
  return storageDType(t) === dtype ? t : null;
}

/** A checkpoint's dead-letter count, for sources that keep one. */
function deadLettered(source: BatchSource): { deadLettered?: number } {
  const n = source.deadLettered?.() ?? null;
  return n === null ? {} : { deadLettered: n };
}
