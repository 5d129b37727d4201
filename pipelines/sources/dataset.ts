// An in-memory dataset as a source: epochs of (optionally shuffled) rows, cut into batches exactly as
// the core's single-thread loop cuts them, so a pipeline run and `fit` see the same batches; it can
// resume from a checkpointed position with the same order it would have had.
import { ValueError, checkInt, fmtValue } from '../../src/errors.js';
import type { Dataset } from '../../src/data/dataset.js';
import type { Storage } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/random.js';
import type { ReaderPosition } from '../records.js';
import type { BatchSource, SlotWriter } from '../source.js';

export interface DatasetPosition {
  /** 1-based epoch of the next sample. */
  epoch: number;
  /** Samples of that epoch already consumed. */
  offset: number;
}

export interface DatasetSourceOptions {
  epochs?: number;
  /** false keeps the dataset's order (default true). */
  shuffle?: boolean;
  /** Seed of the shuffling order: the same stream fit uses (default 0). */
  seed?: number;
  /** Continue after this position (from a checkpoint): the order is replayed from the seed. */
  from?: DatasetPosition;
}

export class DatasetSource implements BatchSource {
  readonly name: string;
  epoch = 1;
  /** Whether the last fill took the last samples of its epoch. */
  epochEnded = false;
  /** The dataset's inputs: a run shares them with its workers when they are in a SharedArrayBuffer (as the loaders make them). */
  get table(): Storage {
    return this.data.x;
  }
  /** Samples per epoch, for progress and ETA. */
  get epochSize(): number {
    return this.data.n;
  }
  private readonly order: Int32Array;
  private readonly rng: Rng;
  private readonly epochs: number;
  private readonly shuffle: boolean;
  private pos = 0;
  /** Position after each filled batch, by fill number, until that batch is applied. */
  private readonly after = new Map<number, DatasetPosition>();
  private fills = 0;
  private appliedThrough = -1;
  private readonly appliedOutOfOrder = new Set<number>();
  private appliedAt: DatasetPosition;

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
    const from = opts.from;
    if (from !== undefined) {
      if (!Number.isInteger(from.epoch) || from.epoch < 1 || from.epoch > this.epochs || !Number.isInteger(from.offset) || from.offset < 0 || from.offset > data.n) {
        throw new ValueError(`${this.name}: cannot resume from ${fmtValue(from)}: expected epoch in [1, ${this.epochs}] and offset in [0, ${data.n}]`);
      }
      // Replaying the shuffles of the earlier epochs puts the order and the generator where they were.
      for (let e = 1; e < from.epoch; e++) if (this.shuffle) this.rng.shuffle(this.order);
      this.epoch = from.epoch;
      this.pos = from.offset;
    }
    this.appliedAt = { epoch: this.epoch, offset: this.pos };
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
    const rows = into.rows;
    for (let i = 0; i < m; i++) {
      const r = this.order[this.pos + i]!;
      if (rows === undefined) into.x.set(d.x.subarray(r * f, r * f + f), i * f);
      else rows[i] = r;
      into.y[i] = d.y[r]!;
    }
    this.pos += m;
    this.epochEnded = this.pos === d.n;
    this.after.set(this.fills++, { epoch: this.epoch, offset: this.pos });
    return m;
  }

  /** Batches are numbered by fill; Hogwild may apply them out of order, so the position follows the applied prefix. */
  applied(step: number): void {
    this.appliedOutOfOrder.add(step);
    while (this.appliedOutOfOrder.has(this.appliedThrough + 1)) {
      this.appliedThrough++;
      this.appliedOutOfOrder.delete(this.appliedThrough);
      this.appliedAt = this.after.get(this.appliedThrough)!;
      this.after.delete(this.appliedThrough);
    }
  }

  position(): ReaderPosition {
    return { ...this.appliedAt };
  }
}

export function datasetSource(data: Dataset, opts?: DatasetSourceOptions): DatasetSource {
  return new DatasetSource(data, opts);
}
