// The contract of record sources (files, stdin, brokers): a reader yields raw records one at a time,
// only when asked, each with the position it was read at; the pipeline acknowledges records after the
// update that used them is applied, and checkpoints the reader's position to resume from.
import type { RecordReason } from '../src/errors.js';

/** One record as read, before mapping: a parsed value (JSON object, CSV row, IDX sample) and where it came from. */
export interface SourceRecord {
  /** The parsed record: a plain object of fields (JSON Lines, CSV with header, broker JSON payload, IDX sample). */
  value: unknown;
  /** 1-based ordinal of the record in this reader (and so in messages: "record 1042: ..."). */
  index: number;
  /** Size as read, in bytes (the oversized-record cap applies to it). */
  bytes: number;
  /**
   * Where the source stands after this record: a JSON-serialisable value that the reader's `from` option
   * accepts to continue with the next record (a file offset, a stream sequence, a Redis id).
   */
  position: ReaderPosition;
  /** Reader-specific handle needed to acknowledge this record (a JetStream message, a Redis id, an MQTT packet). */
  ackHandle?: unknown;
  /**
   * Set when the reader could not parse this record (a malformed JSON line, a CSV row with the wrong field
   * count, a line above the size cap): `value` then holds its raw text, cut to a few KB. The record still
   * takes its index and position, so it is counted, dead-lettered and skipped like any other bad record.
   */
  fault?: RecordFault;
}

/** Why a reader could not parse a record: the reason key and the text after "record N: ". */
export interface RecordFault {
  reason: RecordReason;
  message: string;
}

/** A reader's position: plain JSON, stored in checkpoint manifests. */
export type ReaderPosition = string | number | { [key: string]: string | number | null };

export interface RecordReader {
  /** Named in every message: "csv file 'data/train.csv'", "NATS stream 'events' consumer 'trainer'". */
  readonly name: string;
  /**
   * The next record, or null when a finite source is exhausted. Reads nothing until called: the
   * pipeline calls it only when a batch slot is free, which is how backpressure reaches the source.
   */
  next(): Promise<SourceRecord | null>;
  /** Acknowledges records whose update has been applied (a no-op for files). */
  ack(records: readonly SourceRecord[]): Promise<void>;
  close(): Promise<void>;
  /**
   * Optional: fails with a SourceError naming the source and the missing columns when the records cannot
   * have these fields (a CSV header without them). Called once before the first record is read.
   */
  checkColumns?(fields: readonly string[]): Promise<void>;
  /**
   * Optional: where the reader stands now, after the last record returned (before the first: where it was
   * opened `from`). A checkpoint taken before any batch is applied stores this.
   */
  position?(): ReaderPosition;
  /**
   * True when a reader opened `from` a position reads every record after it again, rejected ones
   * included (files, NATS, Redis): a run resumed from a checkpoint rejects those again, so their
   * dead-letter entries past the checkpoint go. Absent or false (MQTT, stdin): a record read is never
   * read again, and every entry written stays.
   */
  readonly replays?: boolean;
}
