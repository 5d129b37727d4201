// `streamgrad train` and `resume`: a validated config becomes a run folder (config.json, metrics.jsonl,
// checkpoints/, model.safetensors, the report), trained by the data-parallel pipeline with progress.
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ValueError } from '../src/errors.js';
import { loadLatestCheckpoint } from '../src/io/checkpoint.js';
import { loadModule, saveStateDict } from '../src/io/state-dict.js';
import type { Module } from '../src/nn/module.js';
import { buildModel, type ModelSpec } from '../src/nn/spec.js';
import { CosineAnnealingLR, LinearWarmup, SequentialLR, StepLR } from '../src/optim/index.js';
import type { Optimizer } from '../src/optim/optimizer.js';
import type { OptimizerSpec } from '../src/optim/spec.js';
import type { LossName } from '../src/train/shard.js';
import type { RecordCounters } from '../pipelines/record-source.js';
import type { ReaderPosition } from '../pipelines/records.js';
import { type ParallelTrainResult, trainParallel } from '../pipelines/train.js';
import type { StepTelemetry } from '../pipelines/types.js';
import { type TrainConfig, parseConfig } from './config.js';
import { type OpenedData, evaluateSet, openData, redactSecrets, resolvePaths } from './data.js';
import { type Progress, makeProgress } from './progress.js';

export interface RunOptions {
  /** 'bar' on a TTY, 'lines' otherwise, 'json' for --json, 'quiet' for --quiet. */
  progress: 'bar' | 'lines' | 'json' | 'quiet';
  /** Where progress and the summary go (stdout). */
  write: (s: string) => void;
  signal?: AbortSignal;
}

export interface RunSummary {
  dir: string;
  steps: number;
  samples: number;
  seconds: number;
  stopped: boolean;
  trainLoss: number | null;
  testLoss: number | null;
  testAccuracy: number | null;
  /** Records read, accepted and rejected (record sources), and where the rejected ones went. */
  records: (RecordCounters & { deadLetter: string }) | null;
}

/** The config's schedule over a run of `totalSteps` steps, as the pipeline wants it. */
function scheduleOf(c: TrainConfig, totalSteps: number): ((o: Optimizer) => { step(): void }) | undefined {
  const s = c.schedule;
  if (s === undefined) return undefined;
  if (s.type === 'step') return (o) => new StepLR(o, { stepSize: s.stepSize, gamma: s.gamma });
  const tMax = s.tMax ?? Math.max(1, totalSteps - s.warmupSteps);
  if (s.warmupSteps === 0) return (o) => new CosineAnnealingLR(o, { tMax, etaMin: s.etaMin });
  return (o) =>
    new SequentialLR(o, {
      schedulers: [new LinearWarmup(o, { warmupSteps: s.warmupSteps }), new CosineAnnealingLR(o, { tMax, etaMin: s.etaMin })],
      milestones: [s.warmupSteps],
    });
}

function defaultRunDir(c: TrainConfig): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return join('runs', `${c.name ?? c.data.source}-${stamp}`);
}

/** Whether `dir` is a run folder this command made. */
export function isRunFolder(dir: string): boolean {
  return existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'metrics.jsonl'));
}

export function checkRunFolder(dir: string): void {
  if (!existsSync(dir)) throw new ValueError(`run folder '${dir}' does not exist`);
  if (!isRunFolder(dir)) {
    throw new ValueError(`'${dir}' is not a run folder: it has no config.json and metrics.jsonl (expected a folder made by streamgrad train)`);
  }
}

/** Reads and validates a run folder's config.json. */
export function readRunConfig(dir: string): TrainConfig {
  checkRunFolder(dir);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  } catch (e) {
    throw new ValueError(`${join(dir, 'config.json')}: not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(raw, `${join(dir, 'config.json')}`);
}

/** The run folder's trained model: its config's architecture with model.safetensors (or the latest checkpoint's) weights. */
export function loadRunModel(dir: string): { config: TrainConfig; model: Module } {
  const config = readRunConfig(dir);
  const model = buildModel(config.model as ModelSpec, config.seed);
  const file = join(dir, 'model.safetensors');
  if (existsSync(file)) loadModule(model, file);
  else {
    const { checkpoint } = loadLatestCheckpoint(join(dir, 'checkpoints'));
    if (checkpoint === null) throw new ValueError(`run folder '${dir}' has no model.safetensors and no valid checkpoint yet`);
    model.loadStateDict(checkpoint.stateDict);
  }
  return { config, model };
}

/** Trains a new run from a validated config. */
export async function runTrain(config: TrainConfig, o: RunOptions): Promise<RunSummary> {
  const dir = resolve(config.output ?? defaultRunDir(config));
  const existed = existsSync(dir);
  if (existed && readdirSync(dir).length > 0) {
    throw new ValueError(`run folder '${dir}' already exists and is not empty: choose another --output, or continue it with streamgrad resume ${dir}`);
  }
  const stored = resolvePaths(config);
  const stop = stopper(o);
  mkdirSync(dir, { recursive: true });
  let data: OpenedData;
  try {
    data = await openData(stored, { runDir: dir, signal: stop.signal, resuming: false });
  } catch (e) {
    // Nothing was trained: a missing file or a bad header leaves no half-made run folder behind.
    if (!existed) rmSync(dir, { recursive: true, force: true });
    stop.dispose();
    throw e;
  }
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(stored, null, 2)}\n`);
  writeFileSync(join(dir, 'metrics.jsonl'), '');
  return execute(stored, dir, o, null, data, stop);
}

/** Continues a run folder from its latest valid checkpoint, appending to its metrics. */
export async function runResume(dir: string, o: RunOptions): Promise<RunSummary> {
  const config = readRunConfig(dir);
  const { checkpoint, skipped } = loadLatestCheckpoint(join(dir, 'checkpoints'));
  for (const s of skipped) o.write(`skipping checkpoint ${s.dir}: ${s.reason}\n`);
  if (checkpoint === null) throw new ValueError(`run folder '${dir}' has no valid checkpoint to resume from (start it again with streamgrad train)`);
  forgetMetricsAfter(join(dir, 'metrics.jsonl'), checkpoint.step);
  // The source continues after the position the checkpoint recorded with the parameters.
  const source = (checkpoint.meta as { source?: { position?: ReaderPosition | null; deadLettered?: number } } | null)?.source;
  const from = source?.position ?? undefined;
  const stop = stopper(o);
  let data: OpenedData;
  try {
    data = await openData(config, { runDir: resolve(dir), from, signal: stop.signal, resuming: true, deadLettered: source?.deadLettered });
  } catch (e) {
    stop.dispose();
    throw e;
  }
  return execute(config, resolve(dir), o, checkpoint, data, stop);
}

/**
 * Drops the metrics of steps at or after `step`: a run that died after its last checkpoint logged steps
 * that the resumed run applies again. A line cut short by the death (the file's last) goes too.
 */
export function forgetMetricsAfter(file: string, step: number): void {
  if (!existsSync(file)) return;
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
  const kept: string[] = [];
  for (const [i, line] of lines.entries()) {
    let at: unknown;
    try {
      at = (JSON.parse(line) as { step?: unknown }).step;
    } catch (e) {
      if (i === lines.length - 1) continue;
      throw new ValueError(`${file}: line ${i + 1} is not JSON (${(e as Error).message}): the run folder's metrics are damaged`);
    }
    if (typeof at !== 'number' || at < step) kept.push(line);
  }
  if (kept.length === lines.length) return;
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, kept.map((l) => `${l}\n`).join(''));
  renameSync(tmp, file);
}

/** The run's stop signal: the caller's (Ctrl-C), the duration's end, or a step limit already reached. */
interface Stopper {
  signal: AbortSignal;
  /** The caller asked to stop (the run is then "stopped": no model.safetensors, exit code 130). */
  readonly byUser: boolean;
  abort(): void;
  dispose(): void;
}

function stopper(o: RunOptions): Stopper {
  const ac = new AbortController();
  let byUser = false;
  const onAbort = (): void => {
    byUser = true;
    ac.abort();
  };
  if (o.signal?.aborted === true) onAbort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ac.signal,
    get byUser() {
      return byUser;
    },
    abort: () => ac.abort(),
    dispose: () => o.signal?.removeEventListener('abort', onAbort),
  };
}

async function execute(config: TrainConfig, dir: string, o: RunOptions, resume: ReturnType<typeof loadLatestCheckpoint>['checkpoint'], data: OpenedData, stop: Stopper): Promise<RunSummary> {
  const { test } = data;
  const firstStep = resume?.step ?? 0;
  const perEpoch = data.epochSamples === null ? null : Math.ceil(data.epochSamples / config.batchSize);
  const limit = config.maxSteps ?? Infinity;
  // Steps of the whole run: known for in-memory data, estimated for files, maxSteps for a stream.
  const totalSteps = Math.min(perEpoch === null ? Infinity : perEpoch * config.epochs, limit);
  // maxSteps counts the whole run: a resumed one applies what is left (nothing, once reached).
  const remaining = limit - firstStep;
  const totalSamples = Number.isFinite(totalSteps) ? (data.epochSamples === null ? totalSteps * config.batchSize : Math.min(data.epochSamples * config.epochs, totalSteps * config.batchSize)) : Number.NaN;
  const doneSamples = Math.min(firstStep * config.batchSize, Number.isNaN(totalSamples) ? Infinity : totalSamples);
  // A bar needs its end; a stream without maxSteps has none, so it reports in lines.
  const kind = o.progress === 'bar' && Number.isNaN(totalSamples) ? 'lines' : o.progress;
  const testEval = (model: Module): Record<string, number> | undefined => {
    if (test === null) return undefined;
    const r = evaluateSet(model, test, config);
    return r.accuracy === null ? { testLoss: r.loss } : { testLoss: r.loss, testAccuracy: r.accuracy };
  };
  let lastTest: Record<string, number> | undefined;
  let timer: NodeJS.Timeout | null = null;
  let progress: Progress | undefined;
  let run: ReturnType<typeof trainParallel>;
  try {
    if (!Number.isFinite(totalSteps) && config.schedule?.type === 'cosine' && config.schedule.tMax === undefined) {
      throw new ValueError(`config.schedule.tMax: a cosine schedule needs the run's length, which ${data.source.name} does not tell: set schedule.tMax or maxSteps`);
    }
    let init: Module | undefined;
    if (config.init !== undefined && resume === null) {
      init = buildModel(config.model as ModelSpec, config.seed);
      loadModule(init, config.init);
    }
    if (remaining <= 0) stop.abort();
    if (config.duration !== undefined) timer = setTimeout(() => stop.abort(), config.duration * 1000);
    progress = makeProgress(kind, o.write, { totalSamples, doneSamples });
    run = trainParallel({
      model: config.model as ModelSpec,
      seed: config.seed,
      optimizer: config.optimizer as OptimizerSpec,
      loss: config.loss as LossName,
      inputShape: config.inputShape,
      targetShape: data.targetShape,
      source: data.source,
      batchSize: config.batchSize,
      workers: config.workers,
      mode: config.mode,
      shards: config.shards,
      init,
      resume: resume ?? undefined,
      checkpoint: { dir: join(dir, 'checkpoints'), everySteps: config.checkpoint.everySteps, keep: config.checkpoint.keep, atStart: true },
      schedule: scheduleOf(config, totalSteps),
      signal: stop.signal,
      maxSteps: Number.isFinite(remaining) && remaining > 0 ? remaining : undefined,
      afterStep: (s, model) => (s.epochEnd ? testEval(model) : undefined),
    });
  } catch (e) {
    // Until the pipeline runs, the source is ours to close (a model that does not fit its inputs fails here).
    if (timer !== null) clearTimeout(timer);
    stop.dispose();
    progress?.stop();
    await data.abandon();
    throw e;
  }
  const metrics = join(dir, 'metrics.jsonl');
  const lines: string[] = [];
  const flush = (): void => {
    if (lines.length > 0) appendFileSync(metrics, lines.join(''));
    lines.length = 0;
  };
  let lastTrain: StepTelemetry | undefined;
  run.telemetry$.subscribe((t) => {
    lastTrain = t;
    lines.push(`${JSON.stringify({ kind: 'train', step: t.step, epoch: t.epoch ?? null, samples: t.samples, loss: t.loss, accuracy: Number.isNaN(t.accuracy) ? null : t.accuracy, seconds: t.seconds, samplesPerSecond: t.samplesPerSecond, lr: t.lr })}\n`);
    if (t.evaluation !== undefined) {
      lastTest = t.evaluation;
      lines.push(`${JSON.stringify({ kind: 'test', step: t.step, epoch: t.epoch ?? null, samples: t.samples, loss: t.evaluation.testLoss, accuracy: t.evaluation.testAccuracy ?? null })}\n`);
    }
    if (lines.length >= 64 || t.evaluation !== undefined) flush();
    progress.update(t);
  });
  let result: ParallelTrainResult;
  try {
    result = await run.done;
  } finally {
    if (timer !== null) clearTimeout(timer);
    stop.dispose();
    flush();
    progress.stop();
  }
  const stopped = stop.byUser;
  if (!stopped) saveStateDict(join(dir, 'model.safetensors'), result.model);
  await writeReport(dir, config);
  const counters = data.counters?.() ?? null;
  const summary: RunSummary = {
    dir,
    steps: result.steps,
    samples: result.samples,
    seconds: result.seconds,
    stopped,
    trainLoss: lastTrain?.loss ?? null,
    testLoss: lastTest?.testLoss ?? null,
    testAccuracy: lastTest?.testAccuracy ?? null,
    records: counters === null ? null : { ...counters, deadLetter: data.deadLetter! },
  };
  if (summary.records !== null && kind !== 'json' && kind !== 'quiet') o.write(recordsLine(summary.records));
  progress.summary(summary);
  return summary;
}

/** `records: 450 read, 447 accepted, 3 rejected (invalid CSV 2, wrong type 1); dead letters in <file>`. */
function recordsLine(r: RecordCounters & { deadLetter: string }): string {
  const why = Object.entries(r.byReason).map(([k, v]) => `${k} ${v}`).join(', ');
  return `records: ${r.read} read, ${r.accepted} accepted, ${r.rejected} rejected${r.rejected > 0 ? ` (${why}); dead letters in ${r.deadLetter}` : ''}\n`;
}

/** The run report (charts and report.html), when the report module is present. */
async function writeReport(dir: string, config: TrainConfig): Promise<void> {
  const { writeRunReport } = await import('./report.js');
  await writeRunReport(dir, { title: `streamgrad run ${config.name ?? config.data.source}`, config: redactSecrets(config) });
}
