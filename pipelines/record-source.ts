// RecordBatchSource: a RecordReader + mapping as a BatchSource. Records are validated as they are
// written into the batch slot; bad ones go to a dead-letter sink with their reason, and a source with
// too many of them stops the run. Records are acknowledged after the update that used them.
import { RecordError, SourceError, ValueError, fmtOversized, fmtValue } from '../src/errors.js';
import { type DeadLetterSink, truncateRecord } from './dead-letter.js';
import { type CompiledMapping, type RecordMapping, compileMapping } from './mapping.js';
import type { ReaderPosition, RecordFault, RecordReader, SourceRecord } from './records.js';
import type { BatchSource, SlotWriter } from './source.js';

export interface RecordSourceOptions {
  /** Records larger than this (as the reader measured them) are rejected as oversized (default 1 MiB). */
  maxRecordBytes?: number;
  /** The run stops once more than this fraction of the records read were rejected (default 0.1)… */
  maxBadRatio?: number;
  /** …counted from this many records on, so a few early bad ones do not stop it (default 100). */
  minRecordsForRatio?: number;
  /**
   * Entries the dead-letter sink holds before this source's first (what a resumed run kept, a test
   * split's rejects): `deadLettered()` counts from the sink's start (default 0).
   */
  deadLettered?: number;
}

/** Records read so far: read = accepted + rejected at every moment; byReason sums to rejected. */
export interface RecordCounters {
  read: number;
  accepted: number;
  rejected: number;
  byReason: Record<string, number>;
}

interface FilledBatch {
  records: SourceRecord[];
  /** Reader position after the last record this batch consumed (rejected ones included). */
  end: ReaderPosition | null;
  /** Records rejected up to `end`, this source's first included. */
  rejected: number;
  applied: boolean;
}

export class RecordBatchSource implements BatchSource {
  readonly name: string;
  readonly mapping: CompiledMapping;
  private readonly maxRecordBytes: number;
  private readonly maxBadRatio: number;
  private readonly minRecordsForRatio: number;
  private readonly deadBefore: number;
  private readonly c: RecordCounters = { read: 0, accepted: 0, rejected: 0, byReason: {} };
  /**
   * Accepted records read by a fill that then failed: they go first into the next fill, uncounted again,
   * each with the count of records rejected before it was read (where a batch ending on it ends).
   */
  private readonly carry: { record: SourceRecord; rejected: number }[] = [];
  private readonly batches = new Map<number, FilledBatch>();
  private fills = 0;
  /** First batch not yet applied: the applied prefix is [0, prefix). */
  private prefix = 0;
  private appliedAt: ReaderPosition | null;
  /** Records rejected up to `appliedAt` (and `tailRejected` up to `tail`). */
  private appliedRejected = 0;
  private tailRejected = 0;
  private lastRead: ReaderPosition | null = null;
  private readSinceBatch = false;
  /** Position after the rejected records that a final, empty fill consumed. */
  private tail: ReaderPosition | null = null;
  private exhausted = false;
  private checked = false;
  private halted: SourceError | null = null;
  private lastBad = '';

  constructor(
    readonly reader: RecordReader,
    mapping: RecordMapping | CompiledMapping,
    readonly deadLetter: DeadLetterSink,
    opts: RecordSourceOptions = {},
  ) {
    this.name = reader.name;
    this.mapping = 'write' in mapping ? mapping : compileMapping(mapping);
    const where = `recordSource(${reader.name})`;
    const max = opts.maxRecordBytes ?? 1 << 20;
    if (!Number.isInteger(max) || max < 1) throw new ValueError(`${where}: maxRecordBytes must be an integer >= 1 (got ${fmtValue(max)})`);
    const ratio = opts.maxBadRatio ?? 0.1;
    if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) throw new ValueError(`${where}: maxBadRatio must be a number in [0, 1] (got ${fmtValue(ratio)})`);
    const min = opts.minRecordsForRatio ?? 100;
    if (!Number.isInteger(min) || min < 1) throw new ValueError(`${where}: minRecordsForRatio must be an integer >= 1 (got ${fmtValue(min)})`);
    const dead = opts.deadLettered ?? 0;
    if (!Number.isInteger(dead) || dead < 0) throw new ValueError(`${where}: deadLettered must be an integer >= 0 (got ${fmtValue(dead)})`);
    this.maxRecordBytes = max;
    this.maxBadRatio = ratio;
    this.minRecordsForRatio = min;
    this.deadBefore = dead;
    this.appliedAt = reader.position?.() ?? null;
  }

  /** A snapshot of the counters, readable at any time. */
  get counters(): RecordCounters {
    return { ...this.c, byReason: { ...this.c.byReason } };
  }

  async fill(into: SlotWriter, max: number): Promise<number> {
    if (this.halted !== null) throw this.halted;
    this.checkSlot(into);
    if (!this.checked) {
      await this.reader.checkColumns?.(this.mapping.fields);
      this.checked = true;
    }
    const { x, y } = into;
    const size = this.mapping.sampleSize;
    const taken: SourceRecord[] = [];
    /** Records rejected before each of `taken` was read. */
    const rejectedBefore: number[] = [];
    try {
      while (taken.length < max) {
        const n = taken.length;
        const carried = this.carry.shift();
        if (carried !== undefined) {
          // Valid when it was read, and the mapping is deterministic: valid again.
          this.mapping.write(carried.record.value, x, n * size, y, n, carried.record.index);
          taken.push(carried.record);
          rejectedBefore.push(carried.rejected);
          continue;
        }
        if (this.exhausted) break;
        const rec = await this.reader.next();
        if (rec === null) {
          this.exhausted = true;
          break;
        }
        this.c.read++;
        this.lastRead = rec.position;
        this.readSinceBatch = true;
        const fault = rec.fault ?? (rec.bytes > this.maxRecordBytes ? { reason: 'oversized' as const, message: fmtOversized(rec.bytes, this.maxRecordBytes) } : this.tryWrite(rec, into, n));
        if (fault === null) {
          this.c.accepted++;
          taken.push(rec);
          rejectedBefore.push(this.c.rejected);
        } else {
          await this.reject(rec, fault);
        }
        this.checkRatio();
      }
    } catch (e) {
      // Nothing read is lost: the accepted records of this failed fill are the next fill's first.
      this.carry.unshift(...taken.map((record, i) => ({ record, rejected: rejectedBefore[i]! })));
      throw e;
    }
    if (taken.length === 0) {
      // The end: rejected records read since the last batch are consumed once every batch is applied.
      if (this.readSinceBatch) {
        this.tail = this.lastRead;
        this.tailRejected = this.c.rejected;
      }
      return 0;
    }
    // With carried records left over (a smaller max than the failed fill's), only what was taken is consumed.
    const [end, rejected] = this.carry.length > 0 ? [taken[taken.length - 1]!.position, rejectedBefore[taken.length - 1]!] : [this.lastRead, this.c.rejected];
    this.batches.set(this.fills++, { records: taken, end, rejected, applied: false });
    this.readSinceBatch = false;
    return taken.length;
  }

  private checkSlot(into: SlotWriter): void {
    const m = this.mapping;
    if (into.sampleSize !== m.sampleSize) {
      throw new ValueError(`${this.name}: the mapping writes ${m.sampleSize} values per sample, the batch slot expects ${into.sampleSize}`);
    }
    if (m.targetSize === 0 && (into.targetSize !== 0 || !(into.y instanceof Int32Array))) {
      throw new ValueError(`${this.name}: the mapping's target is a class index, the loss expects ${into.targetSize} values per sample`);
    }
    if (m.targetSize !== 0 && into.targetSize !== m.targetSize) {
      throw new ValueError(`${this.name}: the mapping's target has ${m.targetSize} values, the loss expects ${into.targetSize === 0 ? 'class indices' : `${into.targetSize} values per sample`}`);
    }
  }

  /** Writes the record into row n; its fault when the mapping rejects it. */
  private tryWrite(rec: SourceRecord, into: SlotWriter, n: number): RecordFault | null {
    try {
      this.mapping.write(rec.value, into.x, n * this.mapping.sampleSize, into.y, n, rec.index);
      return null;
    } catch (e) {
      if (e instanceof RecordError) return { reason: e.reason, message: e.detail };
      throw e;
    }
  }

  private async reject(rec: SourceRecord, fault: RecordFault): Promise<void> {
    this.c.rejected++;
    this.c.byReason[fault.reason] = (this.c.byReason[fault.reason] ?? 0) + 1;
    this.lastBad = `record ${rec.index}: ${fault.message}`;
    await this.deadLetter.write({ source: this.name, index: rec.index, position: rec.position, reason: fault.message, record: truncateRecord(rec.value) });
    // Its fate is settled once dead-lettered: an unacked reject would hold a broker's credit window (MQTT)
    // or come back after every ack wait (NATS) or restart (Redis). No update will ever use it.
    await this.reader.ack([rec]);
  }

  private checkRatio(): void {
    const { read, rejected } = this.c;
    if (read < this.minRecordsForRatio || rejected / read <= this.maxBadRatio) return;
    const pct = (r: number): string => `${+(100 * r).toFixed(1)}%`;
    this.halted = new SourceError(`${this.name}: ${rejected} of ${read} records rejected (${pct(rejected / read)}), above the limit of ${pct(this.maxBadRatio)} — last: ${this.lastBad}`);
    throw this.halted;
  }

  /**
   * The update that used batch `step` (numbered by non-empty fills) is applied. Its records are acked at
   * once, in whatever order steps come (Hogwild); the position moves over the prefix of applied batches,
   * synchronously, before the ack's first await, as the BatchSource contract asks.
   */
  async applied(step: number): Promise<void> {
    const b = this.batches.get(step);
    if (b === undefined || b.applied) {
      throw new ValueError(`${this.name}: applied(${step}) for a batch that was ${step >= 0 && step < this.fills ? 'already applied' : 'never filled'}`);
    }
    b.applied = true;
    for (let p = this.batches.get(this.prefix); p?.applied === true; p = this.batches.get(this.prefix)) {
      this.appliedAt = p.end;
      this.appliedRejected = p.rejected;
      this.batches.delete(this.prefix++);
    }
    await this.reader.ack(b.records);
  }

  /** Where a resumed reader should start: after the last record of the longest prefix of applied batches. */
  appliedPosition(): ReaderPosition | null {
    return this.prefix === this.fills && this.tail !== null ? this.tail : this.appliedAt;
  }

  position(): ReaderPosition | null {
    return this.appliedPosition();
  }

  /**
   * Dead-letter entries up to `position()`: one per record rejected before it, after the sink's earlier
   * ones; null when the reader does not replay (no entry is ever written twice, none is to be cut).
   */
  deadLettered(): number | null {
    if (this.reader.replays !== true) return null;
    return this.deadBefore + (this.prefix === this.fills && this.tail !== null ? this.tailRejected : this.appliedRejected);
  }

  async close(): Promise<void> {
    try {
      await this.reader.close();
    } finally {
      await this.deadLetter.close();
    }
  }
}

export function recordSource(reader: RecordReader, mapping: RecordMapping | CompiledMapping, deadLetter: DeadLetterSink, opts?: RecordSourceOptions): RecordBatchSource {
  return new RecordBatchSource(reader, mapping, deadLetter, opts);
}
