// `streamgrad train` and `resume`: a validated config becomes a run folder (config.json, metrics.jsonl,
// checkpoints/, model.safetensors, the report), trained by the data-parallel pipeline with progress.
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ValueError } from '../src/errors.js';
import { type Dataset, featureStats, loadIris, loadMnistDigits, normalize, split, standardize, subset } from '../src/data/dataset.js';
import { loadLatestCheckpoint } from '../src/io/checkpoint.js';
import { loadModule, saveStateDict } from '../src/io/state-dict.js';
import type { Module } from '../src/nn/module.js';
import { buildModel, type ModelSpec } from '../src/nn/spec.js';
import { CosineAnnealingLR, LinearWarmup, SequentialLR, StepLR } from '../src/optim/index.js';
import type { Optimizer } from '../src/optim/optimizer.js';
import type { OptimizerSpec } from '../src/optim/spec.js';
import { evaluate } from '../src/train/fit.js';
import type { LossName } from '../src/train/shard.js';
import { type DatasetPosition, datasetSource } from '../pipelines/sources/dataset.js';
import { type ParallelTrainResult, trainParallel } from '../pipelines/train.js';
import type { StepTelemetry } from '../pipelines/types.js';
import { type TrainConfig, parseConfig } from './config.js';
import { type Progress, makeProgress } from './progress.js';

/** MNIST's pixel mean and standard deviation (torchvision's Normalize((0.1307,), (0.3081,))). */
const MNIST_MEAN = 0.1307;
const MNIST_STD = 0.3081;

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
}

interface Data {
  train: Dataset;
  test: Dataset | null;
  /** The preprocessing the splits got, for one raw sample (predict applies it to its inputs). */
  transform: (x: Float64Array) => void;
}

/** The train and test sets a config's `data` names, split and scaled as it says (seeded). */
export function loadData(c: TrainConfig): Data {
  const d = c.data;
  if (d.source === 'mnist') {
    const all = loadMnistDigits(c.model.dtype ?? 'f32');
    if (d.trainSize + d.testSize > all.n) throw new ValueError(`config.data: trainSize ${d.trainSize} + testSize ${d.testSize} is more than the ${all.n} bundled digits`);
    const { train, test } = split(d.normalize ? normalize(all, MNIST_MEAN, MNIST_STD) : all, d.trainSize, c.seed);
    const transform = (x: Float64Array): void => {
      if (d.normalize) for (let i = 0; i < x.length; i++) x[i] = (x[i]! - MNIST_MEAN) / MNIST_STD;
    };
    return { train, test: subset(test, Array.from({ length: d.testSize }, (_, i) => i)), transform };
  }
  const all = loadIris(c.model.dtype ?? 'f32');
  if (d.trainSize >= all.n) throw new ValueError(`config.data.trainSize: expected < ${all.n} (the Iris flowers), got ${d.trainSize}`);
  const { train, test } = split(all, d.trainSize, c.seed);
  if (!d.standardize) return { train, test, transform: () => {} };
  const stats = featureStats(train);
  const transform = (x: Float64Array): void => {
    for (let j = 0; j < x.length; j++) x[j] = (x[j]! - stats.mean[j]!) / stats.std[j]!;
  };
  return { train: standardize(train, stats), test: standardize(test, stats), transform };
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
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new ValueError(`run folder '${dir}' already exists and is not empty: choose another --output, or continue it with streamgrad resume ${dir}`);
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  writeFileSync(join(dir, 'metrics.jsonl'), '');
  return execute(config, dir, o, null);
}

/** Continues a run folder from its latest valid checkpoint, appending to its metrics. */
export async function runResume(dir: string, o: RunOptions): Promise<RunSummary> {
  const config = readRunConfig(dir);
  const { checkpoint, skipped } = loadLatestCheckpoint(join(dir, 'checkpoints'));
  for (const s of skipped) o.write(`skipping checkpoint ${s.dir}: ${s.reason}\n`);
  if (checkpoint === null) throw new ValueError(`run folder '${dir}' has no valid checkpoint to resume from (start it again with streamgrad train)`);
  return execute(config, resolve(dir), o, checkpoint);
}

async function execute(config: TrainConfig, dir: string, o: RunOptions, resume: ReturnType<typeof loadLatestCheckpoint>['checkpoint']): Promise<RunSummary> {
  const { train, test } = loadData(config);
  const stepsPerEpoch = Math.ceil(train.n / config.batchSize);
  const totalSteps = stepsPerEpoch * config.epochs;
  const from = (resume?.meta as { source?: { position?: DatasetPosition } } | undefined)?.source?.position ?? undefined;
  let init: Module | undefined;
  if (config.init !== undefined && resume === null) {
    init = buildModel(config.model as ModelSpec, config.seed);
    loadModule(init, config.init);
  }
  const metrics = join(dir, 'metrics.jsonl');
  const ac = new AbortController();
  o.signal?.addEventListener('abort', () => ac.abort(), { once: true });
  const progress: Progress = makeProgress(o.progress, o.write, { totalSamples: train.n * config.epochs, doneSamples: (resume?.step ?? 0) >= totalSteps ? train.n * config.epochs : Math.min(resume?.step ?? 0, totalSteps) * config.batchSize });
  const testEval = (model: Module): Record<string, number> | undefined => {
    if (test === null) return undefined;
    const r = evaluate(model, test, { inputShape: config.inputShape, loss: config.loss as LossName });
    return { testLoss: r.loss, testAccuracy: r.accuracy };
  };
  let lastTest: Record<string, number> | undefined;
  const run = trainParallel({
    model: config.model as ModelSpec,
    seed: config.seed,
    optimizer: config.optimizer as OptimizerSpec,
    loss: config.loss as LossName,
    inputShape: config.inputShape,
    source: datasetSource(train, { epochs: config.epochs, shuffle: config.shuffle, seed: config.seed, from }),
    batchSize: config.batchSize,
    workers: config.workers,
    mode: config.mode,
    shards: config.shards,
    init,
    resume: resume ?? undefined,
    checkpoint: { dir: join(dir, 'checkpoints'), everySteps: config.checkpoint.everySteps, keep: config.checkpoint.keep },
    schedule: scheduleOf(config, totalSteps),
    signal: ac.signal,
    afterStep: (s, model) => (s.epochEnd ? testEval(model) : undefined),
  });
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
    flush();
    progress.stop();
  }
  const stopped = ac.signal.aborted;
  if (!stopped) saveStateDict(join(dir, 'model.safetensors'), result.model);
  await writeReport(dir, config);
  const summary: RunSummary = {
    dir,
    steps: result.steps,
    samples: result.samples,
    seconds: result.seconds,
    stopped,
    trainLoss: lastTrain?.loss ?? null,
    testLoss: lastTest?.testLoss ?? null,
    testAccuracy: lastTest?.testAccuracy ?? null,
  };
  progress.summary(summary);
  return summary;
}

/** The run report (charts and report.html), when the report module is present. */
async function writeReport(dir: string, config: TrainConfig): Promise<void> {
  const { writeRunReport } = await import('./report.js');
  await writeRunReport(dir, { title: `streamgrad run ${config.name ?? config.data.source}`, config });
}
