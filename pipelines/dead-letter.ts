// Dead-letter sinks: where rejected records go, with why and where they were read, so none is lost
// silently. A JSON Lines file (append, one entry a line) and an in-memory sink for tests.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { SourceError } from '../src/errors.js';
import type { ReaderPosition } from './records.js';

export interface DeadLetterEntry {
  /** The reader's name: "jsonl file 'data/train.jsonl'". */
  source: string;
  /** The record's 1-based index in its reader. */
  index: number;
  /** The reader's position after the record. */
  position: ReaderPosition;
  /** Why it was rejected, the text after "record N: ": "feature 'age' must be a finite number (got \"abc\")". */
  reason: string;
  /** The raw value as read, or its JSON cut to DEAD_LETTER_RECORD_CHARS characters followed by '…'. */
  record: unknown;
}

export interface DeadLetterSink {
  write(entry: DeadLetterEntry): Promise<void>;
  /** Resolves once every entry written is flushed. */
  close(): Promise<void>;
}

/** A few KB of a rejected record are enough to see what went wrong; a 50 MB line would bloat the file. */
export const DEAD_LETTER_RECORD_CHARS = 4096;

/** The record as a dead-letter entry holds it: unchanged when its JSON is short, else that JSON cut short. */
export function truncateRecord(value: unknown): unknown {
  if (typeof value === 'string') return value.length > DEAD_LETTER_RECORD_CHARS ? `${value.slice(0, DEAD_LETTER_RECORD_CHARS)}…` : value;
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    json = String(value);
  }
  if (json === undefined) return null;
  return json.length > DEAD_LETTER_RECORD_CHARS ? `${json.slice(0, DEAD_LETTER_RECORD_CHARS)}…` : value;
}

/** Keeps the entries in memory, for tests and small runs. */
export class MemoryDeadLetterSink implements DeadLetterSink {
  readonly entries: DeadLetterEntry[] = [];
  closed = false;

  async write(entry: DeadLetterEntry): Promise<void> {
    if (this.closed) throw new SourceError(`dead-letter sink (memory): write after close (record ${entry.index} of ${entry.source})`);
    this.entries.push(entry);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/**
 * Appends one JSON line per entry to `path`. The file is opened on the first entry, so a run without
 * bad records leaves none behind; each write is awaited, so an entry is in the file once write resolves.
 */
export class JsonlDeadLetterSink implements DeadLetterSink {
  readonly name: string;
  private handle: Promise<FileHandle> | null = null;
  // Writes are chained so lines never interleave even if a caller does not await each write.
  private last: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(readonly path: string) {
    this.name = `dead-letter file '${path}'`;
  }

  write(entry: DeadLetterEntry): Promise<void> {
    if (this.closed) return Promise.reject(new SourceError(`${this.name}: write after close (record ${entry.index} of ${entry.source})`));
    const line = `${JSON.stringify(entry)}\n`;
    const next = this.last.then(async () => {
      this.handle ??= open(this.path, 'a').catch((e: NodeJS.ErrnoException) => {
        throw new SourceError(`${this.name}: cannot open for appending (${e.code ?? e.message})`);
      });
      const h = await this.handle;
      await h.appendFile(line, 'utf8');
    });
    // A failed write rejects its own caller; the chain goes on for the next one.
    this.last = next.catch(() => {});
    return next;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.last;
    if (this.handle === null) return;
    const h = await this.handle.catch(() => null);
    if (h === null) return;
    try {
      await h.datasync();
    } finally {
      await h.close();
    }
  }
}

/**
 * Entries of a JSON Lines dead-letter file (0 when there is none). With `keep`, cuts the file back to
 * its first `keep` entries and drops a last line a crash cut short: a run resumed from a checkpoint
 * keeps the entries the checkpoint counted, for it reads the records after them again and rejects the
 * bad ones anew. Returns the entries left.
 */
export function keepDeadLetters(path: string, keep?: number): number {
  if (!existsSync(path)) return 0;
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const torn = lines.pop() !== ''; // what follows the last newline: '' or a line cut short
  if (keep === undefined) return lines.length;
  const left = Math.min(keep, lines.length);
  if (torn || left < lines.length) writeFileSync(path, lines.slice(0, left).map((l) => `${l}\n`).join(''));
  return left;
}
