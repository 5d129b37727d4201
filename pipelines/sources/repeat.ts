// RepeatReader: epochs over a re-readable source (files), re-opening a reader factory for each epoch; its
// positions { epoch, inner, record } resume in the right epoch at the right record.
import { ValueError, fmtValue } from '../../src/errors.js';
import type { ReaderPosition, RecordReader, SourceRecord } from '../records.js';

/**
 * Where a RepeatReader stands: the epoch (1-based), the inner reader's position in it (null: the epoch's
 * start) and how many records were returned before, so a resumed reader goes on numbering them.
 */
export interface RepeatPosition {
  epoch: number;
  inner: ReaderPosition | null;
  record: number;
}

/** Opens the source once per epoch: from the start (`from` undefined) or, resuming, after `from`. */
export type ReaderFactory = (from: ReaderPosition | undefined, epoch: number) => RecordReader;

export interface RepeatReaderOptions {
  /** Passes over the source (at least 1). */
  epochs: number;
  /** Continue after this position (a checkpoint's): a RepeatPosition, as plain JSON. */
  from?: ReaderPosition;
  /**
   * next() returns null at the end of every epoch, not only the last; nextEpoch() then goes on. A batch
   * source uses this to end a batch at an epoch's end, as an in-memory dataset does (default false).
   */
  pauseAtEpochEnd?: boolean;
}

/** Records looked ahead at most by atEpochEnd: past that many bad ones in a row, it answers "not yet". */
const LOOKAHEAD = 16;

/**
 * Reads the source `epochs` times. Records keep their value, bytes, fault and ack handle; `index` keeps
 * increasing across epochs (record 151 is the first of epoch 2 over 150 rows), and `position` is a
 * RepeatPosition. The factory is called again for every epoch, so it must give the same records each time.
 *
 * Acks go to the reader of the epoch a record was read in while it is open; a closed epoch's records are not
 * passed on. That suits files, whose ack is a no-op; a broker stream is read once, without this reader.
 */
export class RepeatReader implements RecordReader {
  readonly name: string;
  get replays(): boolean {
    return this.current.replays === true;
  }
  readonly epochs: number;
  private current: RecordReader;
  private epochNow: number;
  private count: number;
  /** The inner position after the last record returned in this epoch (or the resume point), null at its start. */
  private lastInner: ReaderPosition | null;
  /** Records read from the current inner reader by atEpochEnd and not yet returned. */
  private readonly held: SourceRecord[] = [];
  /** The current inner reader returned null: the epoch has nothing left but `held`. */
  private innerDone = false;
  /** Pause mode: the epoch's end was returned as null; nextEpoch() goes on. */
  private paused = false;
  private done = false;
  private closed = false;
  /** The reader each returned record came from, and the record as it gave it (its own index, for its ack). */
  private readonly origin = new WeakMap<SourceRecord, { reader: RecordReader; record: SourceRecord }>();

  constructor(
    private readonly open: ReaderFactory,
    private readonly opts: RepeatReaderOptions,
  ) {
    const epochs = opts.epochs;
    if (typeof epochs !== 'number' || !Number.isInteger(epochs) || epochs < 1) throw new ValueError(`RepeatReader: epochs must be an integer >= 1 (got ${fmtValue(epochs)})`);
    this.epochs = epochs;
    const from = opts.from === undefined ? undefined : checkFrom(epochs, opts.from);
    this.epochNow = from?.epoch ?? 1;
    this.count = from?.record ?? 0;
    this.lastInner = from?.inner ?? null;
    this.current = open(from?.inner ?? undefined, this.epochNow);
    // The inner reader names the source in every message; the epochs are the pipeline's business.
    this.name = this.current.name;
  }

  /** The epoch of the records next() returns now (1-based). */
  get epoch(): number {
    return this.epochNow;
  }

  async next(): Promise<SourceRecord | null> {
    for (;;) {
      if (this.closed || this.done || this.paused) return null;
      const reader = this.current;
      const rec = this.held.shift() ?? (this.innerDone ? null : await reader.next());
      if (rec !== null) {
        this.lastInner = rec.position;
        const index = ++this.count;
        const out: SourceRecord = { ...rec, index, position: this.positionAt(rec.position) };
        this.origin.set(out, { reader, record: rec });
        return out;
      }
      this.innerDone = true;
      if (this.opts.pauseAtEpochEnd === true) {
        this.paused = true;
        return null;
      }
      if (!(await this.nextEpoch())) return null;
    }
  }

  /**
   * Moves on to the next epoch once this one is read (pause mode; next() does it by itself otherwise).
   * False when it was the last: the reader is then exhausted.
   */
  async nextEpoch(): Promise<boolean> {
    if (this.closed || this.done) return false;
    if (!this.innerDone || this.held.length > 0) throw new ValueError(`${this.name}: nextEpoch() before epoch ${this.epochNow} was read to its end`);
    await this.current.close();
    if (this.epochNow === this.epochs) {
      this.done = true;
      return false;
    }
    this.epochNow++;
    this.current = this.open(undefined, this.epochNow);
    this.lastInner = null;
    this.innerDone = false;
    this.paused = false;
    return true;
  }

  /**
   * Whether the current epoch has no record left that `accept` takes. Reads ahead (what it reads is what
   * next() returns next), past records `accept` refuses, at most LOOKAHEAD of them: a source uses it to
   * mark the batch that ends an epoch when that batch came out exactly full. Past the limit it says false.
   */
  async atEpochEnd(accept: (r: SourceRecord) => boolean = () => true): Promise<boolean> {
    if (this.closed || this.done || this.paused) return true;
    if (this.held.some(accept)) return false;
    while (this.held.length < LOOKAHEAD) {
      if (this.innerDone) return true;
      const r = await this.current.next();
      if (r === null) {
        this.innerDone = true;
        return true;
      }
      this.held.push(r);
      if (accept(r)) return false;
    }
    return this.innerDone && this.held.length === 0;
  }

  async ack(records: readonly SourceRecord[]): Promise<void> {
    const mine: SourceRecord[] = [];
    for (const r of records) {
      const o = this.origin.get(r);
      if (o !== undefined && o.reader === this.current) mine.push(o.record);
    }
    if (mine.length > 0) await this.current.ack(mine);
  }

  async checkColumns(fields: readonly string[]): Promise<void> {
    await this.current.checkColumns?.(fields);
  }

  /** After the last record returned (held look-ahead records are not counted): a RepeatPosition. */
  position(): ReaderPosition {
    return this.positionAt(this.lastInner);
  }

  private positionAt(inner: ReaderPosition | null): ReaderPosition {
    // ReaderPosition allows one level of JSON; a checkpoint stores any JSON, and `inner` is one level more.
    return { epoch: this.epochNow, inner, record: this.count } as unknown as ReaderPosition;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.held.length = 0;
    await this.current.close();
  }
}

function checkFrom(epochs: number, from: ReaderPosition): RepeatPosition {
  const f = from as unknown as Partial<Record<string, unknown>>;
  const int = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;
  if (typeof from !== 'object' || from === null || !int(f.epoch, 1) || f.epoch > epochs || f.inner === undefined || !(f.record === undefined || int(f.record, 0))) {
    throw new ValueError(`RepeatReader: cannot resume from ${fmtValue(from)}: expected { epoch: integer in [1, ${epochs}], inner: a position or null, record?: integer >= 0 }`);
  }
  return { epoch: f.epoch, inner: f.inner as ReaderPosition | null, record: (f.record as number | undefined) ?? 0 };
}
