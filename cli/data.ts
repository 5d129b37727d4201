// Where a run's samples come from: the config's `data` opened as a batch source (an in-memory dataset, or
// records through a mapping, epoch after epoch), its test split read into memory, and the preprocessing
// that eval and predict apply as training did.
import { createReadStream, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { RecordError, SourceError, ValueError } from '../src/errors.js';
import { noGrad } from '../src/autograd/engine.js';
import { type Dataset, MNIST_MEAN, MNIST_STD, featureStats, loadIris, loadMnistDigits, normalize, split, standardize, subset } from '../src/data/dataset.js';
import type { Module } from '../src/nn/module.js';
import { type DType, type Storage, Tensor, sharedStorage } from '../src/tensor/tensor.js';
import { evaluate } from '../src/train/fit.js';
import { type LossName, summedLoss } from '../src/train/shard.js';
import { type DeadLetterSink, JsonlDeadLetterSink, MemoryDeadLetterSink, keepDeadLetters } from '../pipelines/dead-letter.js';
import { type CompiledMapping, type FeatureSpec, type RecordMapping, type TargetSpec, compileMapping } from '../pipelines/mapping.js';
import { RecordBatchSource, type RecordCounters, type RecordSourceOptions } from '../pipelines/record-source.js';
import type { ReaderPosition, RecordReader, SourceRecord } from '../pipelines/records.js';
import type { BatchSource, SlotWriter } from '../pipelines/source.js';
import { CsvReader } from '../pipelines/sources/csv.js';
import { type DatasetPosition, datasetSource } from '../pipelines/sources/dataset.js';
import { FASHION_MNIST_CLASSES, fashionMnistMapping, fashionMnistReader } from '../pipelines/sources/fashion-mnist.js';
import { FilesReader } from '../pipelines/sources/files.js';
import { IdxReader } from '../pipelines/sources/idx.js';
import { JsonlReader } from '../pipelines/sources/jsonl.js';
import { type MqttSourceConfig, openMqttReader } from '../pipelines/sources/mqtt.js';
import { type NatsSourceConfig, openNatsReader } from '../pipelines/sources/nats.js';
import { type RedisSourceConfig, openRedisReader } from '../pipelines/sources/redis.js';
import { RepeatReader } from '../pipelines/sources/repeat.js';
import { stdinReader } from '../pipelines/sources/stdin.js';
import { type DataConfig, type RecordDataConfig, type Secret, type StreamDataConfig, type TrainConfig, isRecordSource, isStreamSource } from './config.js';

type FileDataConfig = Exclude<RecordDataConfig, StreamDataConfig>;

/** A split held in memory for evaluation: class targets as a Dataset, dense targets as tensors' storage. */
export type EvalSet =
  | { kind: 'classes'; data: Dataset }
  | { kind: 'dense'; name: string; n: number; x: Storage; y: Storage; targetShape: number[] };

export function evalSetSize(s: EvalSet): number {
  return s.kind === 'classes' ? s.data.n : s.n;
}

export interface OpenedData {
  source: BatchSource;
  /** Samples of one epoch, when known (in memory) or estimated from the files (progress, a schedule's length). */
  epochSamples: number | null;
  /** The split evaluated at every epoch's end, or null. */
  test: EvalSet | null;
  /** Shape of one target for dense losses; undefined for class indices. */
  targetShape: number[] | undefined;
  /** Records read, accepted and rejected so far (record sources). */
  counters: (() => RecordCounters) | null;
  /** Where rejected records go (record sources). */
  deadLetter: string | null;
  /** Closes what opening took before training starts (the pipeline closes the source itself). */
  abandon(): Promise<void>;
}

export interface OpenOptions {
  runDir: string;
  /** A checkpoint's source position: the reader continues after it. */
  from?: ReaderPosition;
  /** Stops a stream's pending read: a fill waiting on it returns 0, so the run ends cleanly. */
  signal: AbortSignal;
  /** A resumed run: the test split's rejected records were dead-lettered by the first run. */
  resuming: boolean;
  /** A resumed run's checkpoint: the dead-letter entries up to its position, which the file keeps. */
  deadLettered?: number;
}

/** The mapping of a record source (parseConfig checked it and filled in idx's default). */
function mappingOf(d: RecordDataConfig): RecordMapping {
  return d.mapping as unknown as RecordMapping;
}

/** Shape of one target for dense losses, from the mapping's target; undefined for class indices. */
export function targetShapeOf(c: TrainConfig): number[] | undefined {
  if (!isRecordSource(c.data)) return undefined;
  const t = mappingOf(c.data).target;
  return t.type === 'class' ? undefined : t.type === 'number' ? [1] : [t.length];
}

function sourceOptions(d: RecordDataConfig): RecordSourceOptions {
  return { maxBadRatio: d.maxBadRatio, maxRecordBytes: d.maxRecordBytes };
}

/** A secret's value: as written, or from the environment variable it names. */
function secretValue(v: Secret | undefined, key: string): string | undefined {
  if (v === undefined || typeof v === 'string') return v;
  const s = process.env[v.env];
  if (s === undefined || s === '') throw new ValueError(`config.data.${key}: environment variable ${v.env} is not set`);
  return s;
}

type Broker<S extends string> = Extract<DataConfig, { source: S }>;

/** The reader config of a broker source: the data keys without the pipeline's own, secrets read from the environment. */
function natsConfig(d: Broker<'nats'>): NatsSourceConfig {
  const { source: _s, mapping: _m, deadLetter: _d, maxBadRatio: _r, maxRecordBytes: _b, pass, token, ...rest } = d;
  return { ...rest, pass: secretValue(pass, 'pass'), token: secretValue(token, 'token') };
}

function mqttConfig(d: Broker<'mqtt'>): MqttSourceConfig {
  const { source: _s, mapping: _m, deadLetter: _d, maxBadRatio: _r, maxRecordBytes: _b, url, password, ...rest } = d;
  return { ...rest, url: secretValue(url, 'url')!, password: secretValue(password, 'password') };
}

function redisConfig(d: Broker<'redis'>): RedisSourceConfig {
  const { source: _s, mapping: _m, deadLetter: _d, maxBadRatio: _r, maxRecordBytes: _b, url, password, ...rest } = d;
  return { ...rest, url: secretValue(url, 'url')!, password: secretValue(password, 'password') };
}

/** A file source's reader over one pass, continuing after `from` (a position of the same reader). */
function fileReader(d: FileDataConfig, from: ReaderPosition | undefined): RecordReader {
  switch (d.source) {
    case 'csv':
      return new CsvReader(d.path, { from, maxRecordBytes: d.maxRecordBytes, delimiter: d.delimiter });
    case 'jsonl':
      return new JsonlReader(d.path, { from, maxRecordBytes: d.maxRecordBytes });
    case 'files':
      return new FilesReader(d.path, { from, maxRecordBytes: d.maxRecordBytes });
    case 'idx':
      return new IdxReader(d.images, d.labels, { from });
  }
}

/** The test split's reader: the same kind of source as training's. */
function testReader(d: FileDataConfig): RecordReader | null {
  if (d.test === undefined) return null;
  if (d.source === 'idx') return new IdxReader(d.test.images, d.test.labels);
  return fileReader({ ...d, path: d.test.path } as FileDataConfig, undefined);
}

/** Whether a record will be accepted: parsed, within the size cap, and fitting the mapping. */
function acceptor(m: CompiledMapping, maxRecordBytes: number | undefined, dtype: DType): (r: SourceRecord) => boolean {
  const x = dtype === 'f32' ? new Float32Array(m.sampleSize) : new Float64Array(m.sampleSize);
  const y = m.targetSize === 0 ? new Int32Array(1) : new Float64Array(m.targetSize);
  const max = maxRecordBytes ?? 1 << 20;
  return (r) => {
    if (r.fault !== undefined || r.bytes > max) return false;
    try {
      m.write(r.value, x, 0, y, 0, r.index);
      return true;
    } catch (e) {
      if (e instanceof RecordError) return false;
      throw e;
    }
  };
}

interface Part {
  src: RecordBatchSource;
  filled: number;
  applied: number;
  /** Whether its rejects go to the dead-letter sink (the first epoch's only). */
  writes: boolean;
}

/**
 * Records of a file source, epoch after epoch, cut into batches as an in-memory dataset is: a batch never
 * spans two epochs, the last of each may be short, and the batch that ends an epoch says so (evaluation).
 * One RecordBatchSource per epoch over a RepeatReader that pauses at each epoch's end; the position is the
 * applied prefix's, a RepeatPosition { epoch, inner, record }.
 */
export class EpochRecordSource implements BatchSource {
  readonly name: string;
  epochEnded = false;
  /** Epochs with batches not yet applied, and the current one last. */
  private readonly parts: Part[] = [];
  private readonly byFill = new Map<number, { part: Part; local: number }>();
  private fills = 0;
  /** Counters of the epochs dropped from `parts`. */
  private readonly past: RecordCounters = { read: 0, accepted: 0, rejected: 0, byReason: {} };
  /** Dead-letter entries before the parts' own: the sink's earlier ones, then a dropped first epoch's. */
  private deadBefore: number;

  constructor(
    private readonly repeat: RepeatReader,
    private readonly mapping: CompiledMapping,
    private readonly sink: DeadLetterSink,
    private readonly opts: RecordSourceOptions,
    private readonly accept: (r: SourceRecord) => boolean,
  ) {
    this.name = repeat.name;
    this.deadBefore = opts.deadLettered ?? 0;
    this.parts.push(this.part());
  }

  get epoch(): number {
    return this.repeat.epoch;
  }

  private part(): Part {
    const r = this.repeat;
    const view: RecordReader = {
      name: r.name,
      next: () => r.next(),
      ack: (records) => r.ack(records),
      checkColumns: (fields) => r.checkColumns(fields),
      position: () => r.position(),
      replays: r.replays,
      close: async () => {}, // the RepeatReader outlives each epoch's source
    };
    // Every epoch reads the same rows: their dead-letter entries are written once, in the first epoch.
    const writes = r.epoch === 1;
    const sink: DeadLetterSink = writes ? { write: (e) => this.sink.write(e), close: async () => {} } : { write: async () => {}, close: async () => {} };
    return { src: new RecordBatchSource(view, this.mapping, sink, { ...this.opts, deadLettered: 0 }), filled: 0, applied: 0, writes };
  }

  async fill(into: SlotWriter, max: number): Promise<number> {
    for (;;) {
      const part = this.parts.at(-1)!;
      const n = await part.src.fill(into, max);
      if (n > 0) {
        this.byFill.set(this.fills++, { part, local: part.filled++ });
        // A short batch ends its epoch (the reader paused); a full one may too, which only a look past it tells.
        this.epochEnded = n < max || (await this.repeat.atEpochEnd(this.accept));
        return n;
      }
      if (!(await this.repeat.nextEpoch())) return 0;
      this.parts.push(this.part());
      this.retire();
    }
  }

  async applied(step: number): Promise<void> {
    const f = this.byFill.get(step);
    if (f === undefined) throw new ValueError(`${this.name}: applied(${step}) for a batch that was never filled or already applied`);
    this.byFill.delete(step);
    f.part.applied++;
    // The part moves its position before its first await, as the BatchSource contract asks of this one.
    const acked = f.part.src.applied(f.local);
    this.retire();
    await acked;
  }

  /** Drops the leading epochs whose batches are all applied (never the current one). */
  private retire(): void {
    while (this.parts.length > 1 && this.parts[0]!.applied === this.parts[0]!.filled) {
      const p = this.parts.shift()!;
      const c = p.src.counters;
      addCounters(this.past, c);
      if (p.writes) this.deadBefore += c.rejected; // the position is past all of them now
    }
  }

  /** The first epoch with unapplied batches holds the applied prefix's end; with none, the current epoch does. */
  position(): ReaderPosition | null {
    return this.parts[0]!.src.position();
  }

  deadLettered(): number | null {
    const first = this.parts[0]!;
    if (!first.writes) return this.repeat.replays ? this.deadBefore : null;
    const own = first.src.deadLettered();
    return own === null ? null : this.deadBefore + own;
  }

  get counters(): RecordCounters {
    const c: RecordCounters = { ...this.past, byReason: { ...this.past.byReason } };
    for (const p of this.parts) addCounters(c, p.src.counters);
    return c;
  }

  async close(): Promise<void> {
    try {
      await this.repeat.close();
    } finally {
      await this.sink.close();
    }
  }
}

function addCounters(into: RecordCounters, c: RecordCounters): void {
  into.read += c.read;
  into.accepted += c.accepted;
  into.rejected += c.rejected;
  for (const [k, v] of Object.entries(c.byReason)) into.byReason[k] = (into.byReason[k] ?? 0) + v;
}

/**
 * A stream's source whose pending fill gives way to the abort signal: a read waiting on stdin or a quiet
 * broker returns 0 at once, so Ctrl-C or `duration` ends the run cleanly. The abandoned read's records are
 * never applied, so the position (the applied prefix) does not count them: a broker redelivers them.
 */
function stoppable(src: RecordBatchSource, signal: AbortSignal, closeStream: () => void): BatchSource & { counters: RecordCounters } {
  const stopped = new Promise<number>((done) => {
    if (signal.aborted) done(0);
    else signal.addEventListener('abort', () => done(0), { once: true });
  });
  return {
    name: src.name,
    get counters() {
      return src.counters;
    },
    fill(into, max) {
      if (signal.aborted) return 0;
      const p = src.fill(into, max);
      p.catch(() => {}); // once abandoned, its failure (the reader closed under it) is nobody's
      return Promise.race([p, stopped]);
    },
    applied: (step) => src.applied(step),
    position: () => src.position(),
    deadLettered: () => src.deadLettered(),
    async close() {
      try {
        // A read still pending on the stream may keep close waiting: the stream goes first.
        if (signal.aborted) closeStream();
        await src.close();
      } finally {
        closeStream();
      }
    },
  };
}

/** Counts the records of a file source cheaply (non-blank lines; the IDX header), for progress and schedules. */
async function estimateRecords(d: FileDataConfig): Promise<number | null> {
  try {
    if (d.source === 'csv') return Math.max(0, (await countLines(d.path)) - 1);
    if (d.source === 'jsonl') return await countLines(d.path);
    if (d.source === 'idx') return idxCount(d.labels);
    let n = 0;
    for (const f of await new FilesReader(d.path).files()) n += (await countLines(f)) - (/\.(csv|tsv)$/.test(f) ? 1 : 0);
    return n;
  } catch {
    return null; // an estimate only: the reader reports what is wrong with the file
  }
}

async function countLines(path: string): Promise<number> {
  let n = 0;
  let content = false;
  for await (const chunk of createReadStream(path)) {
    const b = chunk as Buffer;
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      if (c === 10) {
        if (content) n++;
        content = false;
      } else if (c !== 32 && c !== 9 && c !== 13) content = true;
    }
  }
  return content ? n + 1 : n;
}

/** The record count in an IDX labels file's header (gzipped or plain). */
function idxCount(path: string): number {
  let b = readFileSync(path);
  if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b);
  return b.readUInt32BE(4);
}

/** Reads a reader to its end through the mapping into memory (at most `limit` samples); rejected records go to `sink`. */
async function readSplit(
  reader: RecordReader,
  mapping: RecordMapping,
  c: TrainConfig,
  sink: DeadLetterSink,
  opts: RecordSourceOptions,
  limit = Infinity,
  classNames?: readonly string[],
): Promise<EvalSet> {
  const m = compileMapping(mapping);
  const dtype = c.model.dtype ?? 'f32';
  const alloc = (n: number): Storage => (dtype === 'f32' ? new Float32Array(n) : new Float64Array(n));
  // The split's own source: closing it closes the reader, never the run's sink.
  const src = new RecordBatchSource(reader, m, { write: (e) => sink.write(e), close: async () => {} }, opts);
  const chunk = 512;
  const into: SlotWriter = { x: alloc(chunk * m.sampleSize), y: m.targetSize === 0 ? new Int32Array(chunk) : alloc(chunk * m.targetSize), sampleSize: m.sampleSize, targetSize: m.targetSize };
  const xs: Storage[] = [];
  const ys: (Storage | Int32Array)[] = [];
  let n = 0;
  try {
    for (let k = 0; n < limit; k++) {
      const got = await src.fill(into, Math.min(chunk, limit - n));
      if (got === 0) break;
      xs.push(into.x.slice(0, got * m.sampleSize));
      ys.push(into.y.slice(0, got * Math.max(1, m.targetSize)));
      n += got;
      await src.applied(k);
    }
  } finally {
    await src.close();
  }
  if (n === 0) {
    const r = src.counters;
    throw new SourceError(`${reader.name}: no records to ${limit === Infinity ? 'evaluate on' : 'load'}${r.rejected > 0 ? ` (all ${r.rejected} rejected)` : ' (it is empty)'}`);
  }
  const concat = <T extends Storage | Int32Array>(parts: T[], make: (n: number) => T): T => {
    const out = make(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p as never, at);
      at += p.length;
    }
    return out;
  };
  const x = concat(xs, (n) => sharedStorage(dtype, n));
  const t = mapping.target;
  if (t.type === 'class') {
    const names = classNames ?? (typeof t.classes === 'number' ? undefined : t.classes);
    const data: Dataset = {
      name: reader.name,
      x,
      y: concat(ys as Int32Array[], (k) => new Int32Array(k)),
      n,
      features: m.sampleSize,
      classes: typeof t.classes === 'number' ? t.classes : t.classes.length,
      sampleShape: c.inputShape,
      ...(names === undefined ? {} : { classNames: names }),
    };
    return { kind: 'classes', data };
  }
  return { kind: 'dense', name: reader.name, n, x, y: concat(ys as Storage[], alloc), targetShape: t.type === 'number' ? [1] : [t.length] };
}

interface InMemory {
  train: Dataset;
  test: Dataset | null;
  /** The preprocessing the splits got, for one raw sample (predict applies it to its inputs). */
  transform: (x: Float64Array) => void;
}

/** The train and test sets of a bundled dataset (mnist, iris), split and scaled as the config says (seeded). */
function loadBundled(c: TrainConfig): InMemory {
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
  if (d.source !== 'iris') throw new ValueError(`config.data.source: '${d.source}' is not a bundled dataset`);
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

/** The train and test sets of an in-memory source (mnist, iris, fashion-mnist); `which` skips reading the other split of fashion-mnist. */
async function loadInMemory(c: TrainConfig, which: 'train' | 'test' | 'both' = 'both'): Promise<InMemory> {
  const d = c.data;
  if (d.source === 'mnist' || d.source === 'iris') return loadBundled(c);
  if (d.source !== 'fashion-mnist') throw new ValueError(`config.data.source: '${d.source}' is not an in-memory dataset`);
  // Pixels come in [0, 1] from the IDX reader, as predict's inputs are expected.
  const load = async (split: 'train' | 'test', limit: number | undefined): Promise<Dataset> => {
    const s = await readSplit(fashionMnistReader({ split, dir: d.dir }), fashionMnistMapping, c, new MemoryDeadLetterSink(), {}, limit, FASHION_MNIST_CLASSES);
    return (s as { kind: 'classes'; data: Dataset }).data;
  };
  const empty: Dataset = { name: 'fashion-mnist', x: new Float32Array(0), y: new Int32Array(0), n: 0, features: 784, classes: 10, sampleShape: c.inputShape };
  const train = which === 'test' ? empty : await load('train', d.trainSize);
  const test = which === 'train' || !d.test ? null : await load('test', d.testSize);
  return { train, test, transform: () => {} };
}

/**
 * Opens the training data: the source to train from (after `from` when resuming), the test split in memory.
 * Everything a bad config or a missing file would fail on is read here, before the first step: file
 * headers against the mapping, the test split, the broker connection.
 */
export async function openData(c: TrainConfig, o: OpenOptions): Promise<OpenedData> {
  const d = c.data;
  const targetShape = targetShapeOf(c);
  if (!isRecordSource(d)) {
    const { train, test } = await loadInMemory(c);
    const source = datasetSource(train, { epochs: c.epochs, shuffle: c.shuffle, seed: c.seed, from: o.from as DatasetPosition | undefined });
    return { source, epochSamples: train.n, test: test === null ? null : { kind: 'classes', data: test }, targetShape, counters: null, deadLetter: null, abandon: async () => {} };
  }
  const mapping = compileMapping(mappingOf(d));
  const deadLetter = d.deadLetter ?? resolve(o.runDir, 'dead-letter.jsonl');
  // Entries past the checkpoint's count are of records the resumed run reads (and rejects) again.
  const kept = keepDeadLetters(deadLetter, o.resuming ? o.deadLettered : undefined);
  const sink = new JsonlDeadLetterSink(deadLetter);
  const opts = sourceOptions(d);
  if (isStreamSource(d)) {
    const reader = await openStream(d, c, o.from);
    const src = new RecordBatchSource(reader, mapping, sink, { ...opts, deadLettered: kept });
    const source = stoppable(src, o.signal, () => {
      if (d.source === 'stdin') process.stdin.destroy(); // the run is over with it; a pending read would hold the process
    });
    return { source, epochSamples: null, test: null, targetShape, counters: () => source.counters, deadLetter, abandon: () => source.close?.() ?? Promise.resolve() };
  }
  const repeat = new RepeatReader((from) => fileReader(d, from), { epochs: c.epochs, from: o.from, pauseAtEpochEnd: true });
  let test: EvalSet | null = null;
  try {
    // Opens the files and checks CSV headers now, so a missing file or column fails before any step.
    await repeat.checkColumns(mapping.fields);
    await repeat.atEpochEnd();
    const t = testReader(d);
    if (t !== null) {
      await t.checkColumns?.(mapping.fields).catch(async (e: unknown) => {
        await t.close();
        throw e;
      });
      test = await readSplit(t, mappingOf(d), c, o.resuming ? new MemoryDeadLetterSink() : sink, opts);
    }
    // The test split's rejects come first in the file (resumed: they are among the kept).
    opts.deadLettered = o.resuming ? kept : keepDeadLetters(deadLetter);
  } catch (e) {
    await repeat.close();
    await sink.close();
    throw e;
  }
  const dtype = c.model.dtype ?? 'f32';
  const source = new EpochRecordSource(repeat, mapping, sink, opts, acceptor(mapping, d.maxRecordBytes, dtype));
  return { source, epochSamples: await estimateRecords(d), test, targetShape, counters: () => source.counters, deadLetter, abandon: () => source.close() };
}

/** A stream source's reader; stdin cannot seek, so a resumed run reads the new stdin from its start. */
async function openStream(d: StreamDataConfig, c: TrainConfig, from: ReaderPosition | undefined): Promise<RecordReader> {
  const open = { batchSize: c.batchSize, from };
  switch (d.source) {
    case 'stdin':
      return stdinReader({ format: d.format, delimiter: d.delimiter, maxRecordBytes: d.maxRecordBytes });
    case 'nats':
      return openNatsReader(natsConfig(d), open);
    case 'mqtt':
      return openMqttReader(mqttConfig(d), open);
    case 'redis':
      return openRedisReader(redisConfig(d), open);
  }
}

/**
 * A split of the run's data in memory, for `eval`: the test split, or the training data (in-memory
 * datasets, or one pass over a file source); null when the run has no test split. Rejected records are
 * skipped and counted, not dead-lettered again.
 */
export async function loadSplit(c: TrainConfig, which: 'train' | 'test'): Promise<EvalSet | null> {
  const d = c.data;
  if (!isRecordSource(d)) {
    const m = await loadInMemory(c, which);
    const s = which === 'train' ? m.train : m.test;
    return s === null ? null : { kind: 'classes', data: s };
  }
  if (isStreamSource(d)) {
    if (which === 'test') return null;
    throw new ValueError(`--data train: source '${d.source}' is a stream, read once, and cannot be read again for evaluation`);
  }
  const reader = which === 'train' ? fileReader(d, undefined) : testReader(d);
  return reader === null ? null : readSplit(reader, mappingOf(d), c, new MemoryDeadLetterSink(), sourceOptions(d));
}

/** The loss (and for class targets accuracy and the confusion matrix) of `model` on a split. */
export function evaluateSet(model: Module, s: EvalSet, c: TrainConfig): { loss: number; accuracy: number | null; confusion: number[][] | null } {
  const loss = c.loss as LossName;
  if (s.kind === 'classes') {
    const r = evaluate(model, s.data, { inputShape: c.inputShape, loss });
    return { loss: r.loss, accuracy: r.accuracy, confusion: r.confusion };
  }
  // Dense targets: the mean of the summed loss over batches, as training reports it (no accuracy).
  const size = c.inputShape.reduce((a, b) => a * b, 1);
  const tsize = s.targetShape.reduce((a, b) => a * b, 1);
  const batch = 256;
  let sum = 0;
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() => {
      for (let from = 0; from < s.n; from += batch) {
        const b = Math.min(batch, s.n - from);
        const x = new Tensor(s.x.slice(from * size, (from + b) * size), [b, ...c.inputShape]);
        const y = new Tensor(s.y.slice(from * tsize, (from + b) * tsize), [b, ...s.targetShape]);
        sum += summedLoss(loss, model.forward(x), y).item();
      }
    });
  } finally {
    model.train(wasTraining);
  }
  return { loss: sum / s.n, accuracy: null, confusion: null };
}

export interface Preprocess {
  /** Scales one raw input (the model's input values, flat) in place, as training scaled its samples. */
  transform(x: Float64Array): void;
  /** One record (a JSON object with the mapping's fields, no target needed) as a sample; null for the bundled datasets. */
  fromRecord: ((value: unknown) => Float64Array) | null;
  /** The class names, when the data names them. */
  classNames: readonly string[] | null;
}

/** Each input value's factor: a feature's `scale` over its width (onehot values are not scaled). */
function scales(features: readonly FeatureSpec[]): Float64Array {
  const out: number[] = [];
  for (const f of features) {
    const width = f.type === 'number' ? 1 : f.type === 'onehot' ? f.categories.length : f.type === 'vector' ? f.length : f.length * f.size;
    const s = f.type === 'onehot' ? 1 : (f.scale ?? 1);
    for (let i = 0; i < width; i++) out.push(s);
  }
  return Float64Array.from(out);
}

/** Writes a record's features only: predict's records carry no target, which the mapping's writer requires. */
function featureWriter(m: RecordMapping): (value: unknown) => Float64Array {
  // A target under a field no record has, filled in on a shallow copy (own keys are found first, dotted or not).
  const field = '\u0000target';
  const compiled = compileMapping({ features: m.features, target: { field, type: 'number' } });
  const y = new Float64Array(1);
  return (value) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RecordError(undefined, 'wrong type', 'expected a JSON object with the mapping\'s fields');
    const x = new Float64Array(compiled.sampleSize);
    compiled.write({ ...(value as Record<string, unknown>), [field]: 0 }, x, 0, y, 0);
    return x;
  };
}

/** The preprocessing training applied, for predict's raw inputs (and its records, for record sources). */
export function preprocessing(c: TrainConfig): Preprocess {
  const d = c.data;
  if (d.source === 'mnist' || d.source === 'iris') {
    const { transform, train } = loadBundled(c);
    return { transform, fromRecord: null, classNames: train.classNames ?? null };
  }
  const m: RecordMapping = d.source === 'fashion-mnist' ? fashionMnistMapping : mappingOf(d);
  const factor = scales(m.features);
  const t: TargetSpec = m.target;
  const classNames = d.source === 'fashion-mnist' ? FASHION_MNIST_CLASSES : t.type === 'class' && typeof t.classes !== 'number' ? t.classes : null;
  return {
    transform: (x) => {
      for (let i = 0; i < x.length; i++) x[i]! *= factor[i] ?? 1;
    },
    fromRecord: featureWriter(m),
    classNames,
  };
}

/** The config as stored in the run folder: data paths made absolute, so `resume` works from any directory. */
export function resolvePaths(c: TrainConfig, cwd = process.cwd()): TrainConfig {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(cwd, p));
  const d = c.data as Record<string, unknown>;
  const out: Record<string, unknown> = { ...d };
  for (const k of ['path', 'images', 'labels', 'deadLetter', 'dir']) if (typeof d[k] === 'string') out[k] = abs(d[k]);
  const t = d.test;
  if (typeof t === 'object' && t !== null) out.test = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, typeof v === 'string' ? abs(v) : v]));
  return { ...c, data: out as DataConfig };
}

/** The config without its secrets, for the report (a run folder's config.json keeps them: resume needs them). */
export function redactSecrets(c: TrainConfig): TrainConfig {
  const d = { ...(c.data as Record<string, unknown>) };
  for (const k of ['pass', 'token', 'password']) if (typeof d[k] === 'string') d[k] = '***';
  if (typeof d.url === 'string') d.url = d.url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  return { ...c, data: d as DataConfig };
}
