// The single-thread training loop of the core: shuffled minibatches, forward, loss, backward, optimizer
// step, each step's temporaries in one arena. The multicore pipeline must reproduce it bit for bit.
import { ValueError, checkInt } from '../errors.js';
import { noGrad } from '../autograd/engine.js';
import type { Dataset } from '../data/dataset.js';
import { crossEntropy, nllLoss } from '../loss/index.js';
import { type LossName, ShardCarry, ShardZeroBuffers, ShardedGradients, statefulLayers, positionDropout, shardCount, shardRange, shardStep, takesClassIndices } from './shard.js';
import type { Module } from '../nn/module.js';
import { argmax } from '../ops/reduce.js';
import { Rng } from '../random.js';
import { Arena } from '../tensor/arena.js';
import { Tensor, allocStorage, storageDType } from '../tensor/tensor.js';

/** What fit needs of an optimizer (SGD, Adam and AdamW have it). */
export interface Stepper {
  step(): void;
  zeroGrad(): void;
}

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss?: number;
  testAccuracy?: number;
  seconds: number;
  samplesPerSecond: number;
}

export interface FitOptions {
  optimizer: Stepper;
  epochs: number;
  batchSize: number;
  /** Seed of the shuffling order (default 0). */
  seed?: number;
  /** false keeps the dataset's order. */
  shuffle?: boolean;
  /** Shape of one sample as the model reads it (default [features]). */
  inputShape?: readonly number[];
  /** Loss of logits against class indices: a named loss or a function (default 'crossEntropy'). */
  loss?: LossName | ((logits: Tensor, target: Int32Array) => Tensor);
  /** Evaluated after each epoch. */
  test?: Dataset;
  /** Called per epoch (progress output). */
  onEpoch?: (r: EpochReport) => void;
  /** Called once per epoch, after its last step (learning-rate schedules). */
  schedule?: { step(): void };
  arena?: Arena;
  /**
   * Cut every batch into this many micro-shards, each backpropagated on its own and summed in shard
   * order: the arithmetic of synchronous data-parallel training, so this loop reproduces a worker pool
   * bit for bit. Unset: one backward per batch.
   */
  shards?: number;
}

/** Copies rows `order[from..to)` of `d` into a batch tensor [to−from, ...inputShape] and their labels. */
export function makeBatch(d: Dataset, order: ArrayLike<number>, from: number, to: number, inputShape: readonly number[]): { x: Tensor; y: Int32Array } {
  const f = d.features;
  const b = to - from;
  const dtype = storageDType(d.x);
  const x = allocStorage(dtype, b * f, false);
  const y = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    const r = order[from + i]!;
    x.set(d.x.subarray(r * f, r * f + f), i * f);
    y[i] = d.y[r]!;
  }
  return { x: new Tensor(x, [b, ...inputShape]), y };
}

function lossFunction(loss: FitOptions['loss']): (logits: Tensor, target: Int32Array) => Tensor {
  if (typeof loss === 'function') return loss;
  const name = loss ?? 'crossEntropy';
  if (!takesClassIndices(name)) throw new ValueError(`fit: loss '${name}' needs dense targets; fit trains on class labels (crossEntropy or nllLoss)`);
  return (z, t) => meanLoss(name, z, t);
}

function meanLoss(name: LossName, z: Tensor, t: Int32Array): Tensor {
  return name === 'crossEntropy' ? crossEntropy(z, t) : nllLoss(z, t);
}

function identity(n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return p;
}

function checkFit(model: Module, d: Dataset, opts: FitOptions): readonly number[] {
  checkInt('fit', 'epochs', opts.epochs, 1);
  checkInt('fit', 'batchSize', opts.batchSize, 1);
  const inputShape = opts.inputShape ?? [d.features];
  if (inputShape.reduce((a, b) => a * b, 1) !== d.features) {
    throw new ValueError(`fit: inputShape [${inputShape.join(',')}] does not hold the ${d.features} features of dataset '${d.name}'`);
  }
  if (model.parameters().some((p) => p.dtype !== storageDType(d.x))) {
    throw new ValueError(`fit: model parameters and dataset '${d.name}' have different dtypes`);
  }
  return inputShape;
}

/** Trains `model` on `train` for the given epochs; returns one report per epoch. */
export function fit(model: Module, train: Dataset, opts: FitOptions): EpochReport[] {
  const inputShape = checkFit(model, train, opts);
  const lossFn = lossFunction(opts.loss);
  const arena = opts.arena ?? new Arena(1 << 22);
  const rng = new Rng(opts.seed ?? 0, 1);
  const order = identity(train.n);
  const reports: EpochReport[] = [];
  const S = opts.shards;
  const dtype = storageDType(train.x);
  const params = model.parameters();
  const size = params.reduce((a, p) => a + p.size, 0);
  const sharded = S === undefined ? null : new ShardedGradients(params, Array.from({ length: S }, () => allocStorage(dtype, size, true, true)));
  const buffers = sharded === null ? null : new ShardZeroBuffers(model);
  const carry = sharded === null || statefulLayers(model).length === 0 ? null : new ShardCarry(model, S!, Math.ceil(opts.batchSize / S!));
  let step = 0;
  const lossName = opts.loss ?? 'crossEntropy';
  if (S !== undefined) {
    checkInt('fit', 'shards', S, 1);
    if (typeof lossName !== 'string') throw new ValueError('fit: shards needs a named loss (a LossName), not a function');
  }
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    if (opts.shuffle ?? true) rng.shuffle(order);
    model.train();
    const t0 = performance.now();
    let lossSum = 0;
    let correct = 0;
    for (let from = 0; from < train.n; from += opts.batchSize) {
      const to = Math.min(from + opts.batchSize, train.n);
      if (sharded !== null) {
        const k = shardCount(to - from, S!);
        for (let s = 0; s < k; s++) {
          const [a, b] = shardRange(to - from, k, s);
          sharded.select(s);
          positionDropout(model, step * S! + s);
          carry?.enter(s, b - a);
          arena.step(() => {
            const { x, y } = makeBatch(train, order, from + a, from + b, inputShape);
            const r = shardStep(model, lossName as LossName, x, y, to - from);
            lossSum += r.lossSum;
            correct += r.correct;
          });
          sharded.settle();
          carry?.leave(s, b - a);
          if (s === 0) buffers!.keep();
          else buffers!.restore();
        }
        sharded.reduce(k);
        opts.optimizer.step();
        step++;
        continue;
      }
      opts.optimizer.zeroGrad();
      arena.step(() => {
        const { x, y } = makeBatch(train, order, from, to, inputShape);
        const logits = model.forward(x);
        const loss = lossFn(logits, y);
        loss.backward();
        lossSum += loss.item() * (to - from);
        const pred = argmax(logits, -1);
        for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) correct++;
      });
      opts.optimizer.step();
    }
    opts.schedule?.step();
    const seconds = (performance.now() - t0) / 1000;
    const r: EpochReport = { epoch, trainLoss: lossSum / train.n, trainAccuracy: correct / train.n, seconds, samplesPerSecond: train.n / seconds };
    if (opts.test !== undefined) {
      const ev = evaluate(model, opts.test, { batchSize: Math.max(opts.batchSize, 256), inputShape, arena, loss: lossFn });
      r.testLoss = ev.loss;
      r.testAccuracy = ev.accuracy;
    }
    opts.onEpoch?.(r);
    reports.push(r);
  }
  return reports;
}

export interface Evaluation {
  loss: number;
  accuracy: number;
  /** confusion[target][predicted] counts. */
  confusion: number[][];
}

/** Mean loss, accuracy and confusion matrix of `model` on `d`, in eval mode and without recording. */
export function evaluate(
  model: Module,
  d: Dataset,
  opts: { batchSize?: number; inputShape?: readonly number[]; arena?: Arena; loss?: FitOptions['loss'] } = {},
): Evaluation {
  const inputShape = opts.inputShape ?? [d.features];
  const lossFn = lossFunction(opts.loss);
  const arena = opts.arena ?? new Arena(1 << 22);
  const batch = opts.batchSize ?? 256;
  const order = identity(d.n);
  const confusion = Array.from({ length: d.classes }, () => new Array<number>(d.classes).fill(0));
  let lossSum = 0;
  let correct = 0;
  const wasTraining = model.training;
  model.eval();
  noGrad(() => {
    for (let from = 0; from < d.n; from += batch) {
      const to = Math.min(from + batch, d.n);
      arena.step(() => {
        const { x, y } = makeBatch(d, order, from, to, inputShape);
        const logits = model.forward(x);
        lossSum += lossFn(logits, y).item() * (to - from);
        const pred = argmax(logits, -1);
        for (let i = 0; i < y.length; i++) {
          confusion[y[i]!]![pred[i]!]!++;
          if (pred[i] === y[i]) correct++;
        }
      });
    }
  });
  model.train(wasTraining);
  return { loss: lossSum / d.n, accuracy: correct / d.n, confusion };
}
