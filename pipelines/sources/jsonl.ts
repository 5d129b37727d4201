// JSON Lines reader (one JSON object per line), and the byte-level pieces the file and stream readers
// share: opening a file with clear errors, pulling chunks only on demand, cutting records by bytes.
import { type FileHandle, open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { SourceError, ValueError, fmtOversized, fmtValue } from '../../src/errors.js';
import type { ReaderPosition, RecordFault, RecordReader, SourceRecord } from '../records.js';

/** The default size cap of one record (a line, a CSV row): larger ones are skipped unbuffered and dead-lettered. */
export const DEFAULT_MAX_RECORD_BYTES = 1 << 20;
/** Bytes of a bad record kept to show in its dead-letter entry. */
export const PREVIEW_BYTES = 4096;
/** Chunk size of file streams: the most a reader holds beyond the record it is returning. */
const CHUNK_BYTES = 64 * 1024;

/** A filesystem error as a SourceError naming the source: `csv file 'a.csv': no such file`. */
export function fsError(name: string, e: unknown): SourceError {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ENOENT':
      return new SourceError(`${name}: no such file`);
    case 'EACCES':
    case 'EPERM':
      return new SourceError(`${name}: permission denied`);
    case 'EISDIR':
      return new SourceError(`${name}: is a directory, expected a file`);
    default:
      // zlib's codes: a gzipped input that is corrupt or cut short.
      if (err.code?.startsWith('Z_') === true) return new SourceError(`${name}: not valid gzip data (${err.message})`);
      return new SourceError(`${name}: cannot read (${err.code ?? err.message})`);
  }
}

/** Opens a file for reading, with a clear error for a missing file, a directory or no permission. */
export async function openFile(path: string, name: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw fsError(name, e);
  }
  const st = await handle.stat();
  // Linux opens a directory for reading without complaint and fails only on the first read.
  if (st.isDirectory()) {
    await handle.close();
    throw new SourceError(`${name}: is a directory, expected a file`);
  }
  return { handle, size: st.size };
}

/** A stream of the file's bytes from `start`; it closes the handle when it ends or is destroyed. */
export function fileStream(handle: FileHandle, start: number): Readable {
  return handle.createReadStream({ start, highWaterMark: CHUNK_BYTES });
}

/**
 * Pulls chunks from a Readable one at a time, only when asked: the stream itself reads ahead at most its
 * highWaterMark (one chunk), never the whole input. Read errors become SourceErrors naming the source.
 */
export class ChunkPuller {
  private readonly it: AsyncIterator<unknown>;

  /** `destroyOnClose` false leaves the stream open on close (process.stdin belongs to the process). */
  constructor(
    stream: Readable,
    private readonly name: string,
    destroyOnClose = true,
  ) {
    this.it = stream.iterator({ destroyOnReturn: destroyOnClose })[Symbol.asyncIterator]();
  }

  async next(): Promise<Buffer | null> {
    for (;;) {
      let r: IteratorResult<unknown>;
      try {
        r = await this.it.next();
      } catch (e) {
        throw e instanceof SourceError ? e : fsError(this.name, e);
      }
      if (r.done === true) return null;
      const chunk = typeof r.value === 'string' ? Buffer.from(r.value, 'utf8') : (r.value as Buffer);
      if (chunk.length > 0) return chunk;
    }
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

/** Finds where a record ends: the index of its terminating '\n' in `chunk` at or after `from`, or -1. */
export interface Boundary {
  /** Called at the start of each record (a CSV quote state starts over). */
  reset(): void;
  find(chunk: Buffer, from: number): number;
}

/** JSON Lines: every '\n' ends a record (JSON strings cannot hold a raw newline). */
export const lineBoundary: Boundary = { reset() {}, find: (chunk, from) => chunk.indexOf(10, from) };

/** One record's bytes as cut by a RecordFramer. */
export interface Frame {
  /** The record's bytes, its terminator included; null when it is above the cap (then only `preview` is kept). */
  raw: Buffer | null;
  /** The first PREVIEW_BYTES of the record, for a dead-letter entry. */
  preview: Buffer;
  /** Size without the terminator ('\n' or '\r\n'): what the cap applies to. */
  bytes: number;
  /** Offset just after the record (and its terminator) in the whole input. */
  end: number;
}

/**
 * Cuts a byte stream into records at the boundaries `boundary` finds, keeping exact offsets. A record above
 * `maxBytes` is read through to its end without being kept (only its preview is), so one huge line costs
 * no more memory than the cap.
 */
export class RecordFramer {
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  private eof = false;

  constructor(
    private readonly puller: ChunkPuller,
    /** Offset of the next unread byte in the whole input. */
    public offset: number,
    private readonly maxBytes: number,
    private readonly boundary: Boundary,
  ) {}

  async next(): Promise<Frame | null> {
    const parts: Buffer[] = [];
    let total = 0;
    let preview: Buffer | null = null;
    let last = -1;
    let beforeLast = -1;
    this.boundary.reset();
    for (;;) {
      if (this.pos >= this.chunk.length) {
        if (this.eof) break;
        const c = await this.puller.next();
        if (c === null) {
          this.eof = true;
          break;
        }
        this.chunk = c;
        this.pos = 0;
      }
      const nl = this.boundary.find(this.chunk, this.pos);
      const stop = nl < 0 ? this.chunk.length : nl + 1;
      const piece = this.chunk.subarray(this.pos, stop);
      total += piece.length;
      this.offset += piece.length;
      this.pos = stop;
      beforeLast = piece.length >= 2 ? piece[piece.length - 2]! : last;
      last = piece[piece.length - 1]!;
      if (preview === null) {
        parts.push(piece);
        // +2: the terminator ('\r\n' at most) does not count against the cap.
        if (total > this.maxBytes + 2) {
          preview = Buffer.from(Buffer.concat(parts).subarray(0, PREVIEW_BYTES)); // a copy: the chunks can go
          parts.length = 0;
        }
      }
      if (nl >= 0) break;
    }
    if (total === 0) return null;
    const term = last === 10 ? (beforeLast === 13 ? 2 : 1) : 0;
    const bytes = total - term;
    if (preview === null && bytes <= this.maxBytes) {
      const raw = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      return { raw, preview: raw.subarray(0, PREVIEW_BYTES), bytes, end: this.offset };
    }
    return { raw: null, preview: preview ?? Buffer.from(Buffer.concat(parts).subarray(0, PREVIEW_BYTES)), bytes, end: this.offset };
  }
}

/** Where a file reader resumes: the byte offset after the last record read, and how many records that was. */
export interface OffsetPosition {
  offset: number;
  /** Records read before `offset`, so a resumed reader goes on numbering them (default 0). */
  record?: number;
}

/** Checks a `from` option of a byte-offset reader: { offset: integer >= 0, record?: integer >= 0 }. */
export function checkOffsetFrom(name: string, from: ReaderPosition | undefined): { offset: number; record: number } {
  if (from === undefined) return { offset: 0, record: 0 };
  const f = from as Partial<Record<string, unknown>>;
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (typeof from !== 'object' || from === null || !ok(f.offset) || (f.record !== undefined && !ok(f.record))) {
    throw new ValueError(`${name}: cannot resume from ${fmtValue(from)}: expected { offset: integer >= 0, record?: integer >= 0 }`);
  }
  return { offset: f.offset, record: (f.record as number | undefined) ?? 0 };
}

/** The checked cap of a reader's options. */
export function checkMaxRecordBytes(name: string, v: unknown): number {
  if (v === undefined) return DEFAULT_MAX_RECORD_BYTES;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ValueError(`${name}: maxRecordBytes must be an integer >= 1 (got ${fmtValue(v)})`);
  return v;
}

/** A file (seekable, resumable) or a stream (stdin) to read records from. */
export type ByteInput = string | Readable;

/** Opens the framer of a byte input at `offset`; a stream cannot start anywhere but where it is. */
export async function openInput(input: ByteInput, name: string, offset: number, maxBytes: number, boundary: Boundary, destroyOnClose: boolean): Promise<{ framer: RecordFramer; puller: ChunkPuller; size: number | null }> {
  if (typeof input !== 'string') {
    const puller = new ChunkPuller(input, name, destroyOnClose);
    return { framer: new RecordFramer(puller, 0, maxBytes, boundary), puller, size: null };
  }
  const { handle, size } = await openFile(input, name);
  if (offset > size) {
    await handle.close();
    throw new SourceError(`${name}: cannot resume from offset ${offset}: the file has ${size} bytes`);
  }
  const puller = new ChunkPuller(fileStream(handle, offset), name);
  return { framer: new RecordFramer(puller, offset, maxBytes, boundary), puller, size };
}

/** A JSON object as a record's value; anything else (bad JSON, an array, a number) a record with a fault. */
export function parseJsonObject(text: string): { value: unknown; fault?: RecordFault } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { value: text.slice(0, PREVIEW_BYTES), fault: { reason: 'invalid JSON', message: `invalid JSON: ${(e as Error).message}` } };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    return { value: text.slice(0, PREVIEW_BYTES), fault: { reason: 'invalid JSON', message: `invalid JSON: expected an object, got ${kind}` } };
  }
  return { value };
}

export interface JsonlReaderOptions {
  /** Continue after this position (a checkpoint's): files only. */
  from?: ReaderPosition;
  /** Lines longer than this are skipped (read through, not kept) and reported oversized (default 1 MiB). */
  maxRecordBytes?: number;
  /** The name in messages for a stream input (default 'jsonl stream'). */
  name?: string;
  /** Destroy a stream input on close (default true; stdin passes false). */
  destroyOnClose?: boolean;
}

function isBlank(b: Buffer, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10) return false;
  }
  return true;
}

/** Reads one JSON object per line; blank lines are skipped, a malformed or oversized line is a bad record. */
export class JsonlReader implements RecordReader {
  readonly name: string;
  /** A file is read again from a position; a stream (stdin) is not. */
  readonly replays: boolean;
  private readonly maxBytes: number;
  private readonly start: { offset: number; record: number };
  private opened: Promise<{ framer: RecordFramer; puller: ChunkPuller }> | null = null;
  private offset: number;
  private record: number;
  private closed = false;

  constructor(
    private readonly input: ByteInput,
    private readonly opts: JsonlReaderOptions = {},
  ) {
    this.name = typeof input === 'string' ? `jsonl file '${input}'` : (opts.name ?? 'jsonl stream');
    this.replays = typeof input === 'string';
    this.maxBytes = checkMaxRecordBytes(this.name, opts.maxRecordBytes);
    if (typeof input !== 'string' && opts.from !== undefined) {
      throw new ValueError(`${this.name}: cannot resume from ${fmtValue(opts.from)}: a stream cannot seek, only files can`);
    }
    this.start = checkOffsetFrom(this.name, opts.from);
    this.offset = this.start.offset;
    this.record = this.start.record;
  }

  private open(): Promise<{ framer: RecordFramer; puller: ChunkPuller }> {
    this.opened ??= openInput(this.input, this.name, this.start.offset, this.maxBytes, lineBoundary, this.opts.destroyOnClose ?? true);
    return this.opened;
  }

  async next(): Promise<SourceRecord | null> {
    if (this.closed) return null;
    const { framer } = await this.open();
    for (;;) {
      const f = await framer.next();
      if (f === null) return null;
      if (f.raw !== null && isBlank(f.raw, f.bytes)) continue; // blank lines (a trailing one, spacing) are not records
      const index = ++this.record;
      this.offset = f.end;
      const position = { offset: f.end, record: index };
      if (f.raw === null) {
        return { value: f.preview.toString('utf8'), index, bytes: f.bytes, position, fault: { reason: 'oversized', message: fmtOversized(f.bytes, this.maxBytes) } };
      }
      // A UTF-8 byte order mark may open a file written on Windows; JSON.parse would choke on it.
      const from = f.end - f.raw.length === 0 && f.raw[0] === 0xef && f.raw[1] === 0xbb && f.raw[2] === 0xbf ? 3 : 0;
      const text = f.raw.toString('utf8', from, f.bytes);
      return { ...parseJsonObject(text), index, bytes: f.bytes, position };
    }
  }

  async ack(): Promise<void> {}

  position(): ReaderPosition {
    return { offset: this.offset, record: this.record };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.opened !== null) {
      const o = await this.opened.catch(() => null);
      await o?.puller.close();
    }
  }
}
