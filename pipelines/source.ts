// The contract every source meets: it is pulled, never pushed. The batch stage asks for at most one
// batch of samples when a slot is free (a credit), so nothing is read ahead of free memory.
import type { Storage } from '../src/tensor/tensor.js';
import type { ReaderPosition } from './records.js';

/** Rows of one batch slot that a source writes samples into. */
export interface SlotWriter {
  /** Inputs, sample i at [i·sampleSize, (i+1)·sampleSize). */
  readonly x: Storage;
  /** Targets: class indices, or sample i's values at [i·targetSize, …). */
  readonly y: Int32Array | Storage;
  readonly sampleSize: number;
  readonly targetSize: number;
  /**
   * Present when the run shares the source's `table` with its workers: sample i is then given as its
   * row number in the table, rows[i], and not copied into `x` (the worker that trains on it copies it).
   */
  readonly rows?: Int32Array;
}

export interface BatchSource {
  /** Named in messages and telemetry. */
  readonly name: string;
  /** The epoch the last filled samples belong to (1-based), for sources that repeat; undefined for streams. */
  readonly epoch?: number;
  /** Whether the last fill ended its epoch (an evaluation point). */
  readonly epochEnded?: boolean;
  /**
   * Writes up to `max` samples into rows [0, max) of `into` and returns how many it wrote. Fewer than
   * `max` ends a batch early (an epoch's tail); 0 means the source is exhausted.
   */
  fill(into: SlotWriter, max: number): number | Promise<number>;
  /**
   * All samples as rows of one in-memory table, `sampleSize` values each. When it lives in a
   * SharedArrayBuffer and holds the run's float type, a run shares it with its workers, which copy each
   * batch's rows from it: fills then name rows (`SlotWriter.rows`) instead of copying samples on the
   * thread that runs the pipeline.
   */
  readonly table?: Storage;
  /**
   * The update that used the samples of batch `step` (0-based, in fill order, counted by this source's
   * fills) has been applied: acknowledge them upstream. `position()` must reflect it as soon as this
   * returns or reaches its first await (a checkpoint reads it right after the call starts).
   */
  applied?(step: number): void | Promise<void>;
  /** Where to resume after every applied batch (what a checkpoint stores), as plain JSON. */
  position?(): ReaderPosition | null;
  /**
   * Entries in its dead-letter sink for the records up to `position()`, counted from the sink's start
   * (a checkpoint stores it): a run resumed from that position keeps that many entries and drops the
   * rest, the rejects it reads again. null: its reader never reads a record twice (RecordReader.replays).
   */
  deadLettered?(): number | null;
  close?(): void | Promise<void>;
}

/** Whether a source's answer (`fill`, `applied`) is still to come: the stages answer at once when it is not. */
export function isThenable<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return typeof (v as { then?: unknown } | null | undefined)?.then === 'function';
}
