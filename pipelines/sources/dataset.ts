// An in-memory dataset as a source: epochs of (optionally shuffled) rows, cut into batches exactly as
// the core's single-thread loop cuts them, so a pipeline run and `fit` see the same batches.
import { ValueError, checkInt } from '../../src/errors.js';
import type { Dataset } from '../../src/data/dataset.js';
import { Rng } from '../../src/random.js';
import type { BatchSource, SlotWriter } from '../source.js';

export interface DatasetSourceOptions {
  epochs?: number;
  /** false keeps the dataset's order (default true). */
  shuffle?: boolean;
  /** Seed of the shuffling order: the same stream fit uses (default 0). */
  seed?: number;
}

export class DatasetSource implements BatchSource {
  readonly name: string;
  epoch = 1;
  private readonly order: Int32Array;
  private readonly rng: Rng;
  private readonly epochs: number;
  private readonly shuffle: boolean;
  private pos = 0;

  constructor(
    private readonly data: Dataset,
    opts: DatasetSourceOptions = {},
  ) {
    this.name = `dataset '${data.name}'`;
    this.epochs = checkInt('datasetSource', 'epochs', opts.epochs ?? 1, 1);
    this.shuffle = opts.shuffle ?? true;
    this.rng = new Rng(opts.seed ?? 0, 1);
    this.order = new Int32Array(data.n);
    for (let i = 0; i < data.n; i++) this.order[i] = i;
    if (this.shuffle) this.rng.shuffle(this.order);
  }

  fill(into: SlotWriter, max: number): number {
    const d = this.data;
    if (into.sampleSize !== d.features) {
      throw new ValueError(`${this.name}: samples have ${d.features} features, the batch slot expects ${into.sampleSize}`);
    }
    if (into.targetSize !== 0 || !(into.y instanceof Int32Array)) {
      throw new ValueError(`${this.name}: targets are class indices, the loss expects ${into.targetSize} values per sample`);
    }
    if (this.pos === d.n) {
      if (this.epoch === this.epochs) return 0;
      this.epoch++;
      this.pos = 0;
      if (this.shuffle) this.rng.shuffle(this.order);
    }
    const m = Math.min(max, d.n - this.pos);
    const f = d.features;
    for (let i = 0; i < m; i++) {
      const r = this.order[this.pos + i]!;
      into.x.set(d.x.subarray(r * f, r * f + f), i * f);
      into.y[i] = d.y[r]!;
    }
    this.pos += m;
    return m;
  }
}

export function datasetSource(data: Dataset, opts?: DatasetSourceOptions): DatasetSource {
  return new DatasetSource(data, opts);
}
