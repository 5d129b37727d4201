// CSV reader: a header row names the fields, each later row is one record of strings. Rows are cut by
// a quote-aware byte scanner (exact offsets, a size cap without buffering) and parsed by csv-parse.
import { type Parser, parse } from 'csv-parse';
import { SourceError, ValueError, fmtOversized, fmtValue } from '../../src/errors.js';
import type { ReaderPosition, RecordReader, SourceRecord } from '../records.js';
import { type Boundary, type ByteInput, type ChunkPuller, type RecordFramer, checkMaxRecordBytes, checkOffsetFrom, openInput } from './jsonl.js';

export interface CsvReaderOptions {
  /** Continue after this position (a checkpoint's): files only. The header is read again from the file's start. */
  from?: ReaderPosition;
  /** Rows longer than this are skipped (read through, not kept) and reported oversized (default 1 MiB). */
  maxRecordBytes?: number;
  /** One character (default ','). */
  delimiter?: string;
  /** The name in messages for a stream input (default 'csv stream'). */
  name?: string;
  /** Destroy a stream input on close (default true; stdin passes false). */
  destroyOnClose?: boolean;
}

const QUOTE = 0x22;
const NL = 0x0a;
/** A row's terminator and the padding behind it (see RowParser.parse). */
const PAD = Buffer.from('\n'.repeat(9));

/**
 * Where a CSV row ends: a '\n' outside quotes. A quote opens a quoted field only at the field's start and
 * `""` inside one is an escaped quote, as csv-parse reads them, so both agree on where rows end.
 */
class CsvBoundary implements Boundary {
  private inQuotes = false;
  private quoteSeen = false;
  private fieldStart = true;

  constructor(private readonly delimiter: number) {}

  reset(): void {
    this.inQuotes = false;
    this.quoteSeen = false;
    this.fieldStart = true;
  }

  find(chunk: Buffer, from: number): number {
    for (let i = from; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.quoteSeen) {
        // A quote inside a quoted field: doubled, it stands for one quote; otherwise it closed the field.
        // The byte after it may come in the next chunk, hence the flag.
        this.quoteSeen = false;
        if (b === QUOTE) continue;
        this.inQuotes = false;
      }
      if (this.inQuotes) {
        if (b === QUOTE) this.quoteSeen = true;
        continue;
      }
      if (b === NL) return i;
      if (b === this.delimiter) this.fieldStart = true;
      else {
        if (b === QUOTE && this.fieldStart) this.inQuotes = true;
        this.fieldStart = false;
      }
    }
    return -1;
  }
}

/**
 * csv-parse's streaming parser, written one whole row at a time; a row's fields come back synchronously
 * through on_record. After a rejected row csv-parse's state is unreliable (measured: an invalid closing
 * quote swallows the rest of the input, a max-size error repeats forever), so a fresh parser takes over.
 */
class RowParser {
  private parser: Parser;
  private fields: string[] | null = null;
  private error: string | null = null;

  constructor(private readonly delimiter: string) {
    this.parser = this.make();
  }

  private make(): Parser {
    const p = parse({
      delimiter: this.delimiter,
      bom: true,
      // Rows arrive with their terminator normalised to '\n' (see `fields`), so '\r' is never a delimiter.
      record_delimiter: '\n',
      skip_empty_lines: true,
      relax_column_count: true, // the reader checks the count against the header, with its own message
      skip_records_with_error: true,
      on_record: (r: string[]) => {
        this.fields = r;
        return null; // nothing is pushed: the row is taken here, synchronously
      },
      on_skip: (e) => {
        this.error = e?.message ?? 'unreadable row';
        return undefined;
      },
    });
    p.on('error', (e: Error) => {
      this.error ??= e.message;
    });
    return p;
  }

  /** The fields of one row (content without its terminator), or why csv-parse rejected it. */
  parse(content: Buffer): { fields: string[] } | { error: string } {
    this.fields = null;
    this.error = null;
    // csv-parse holds back the last bytes of each write to look ahead (3 here: the longest multi-byte trim
    // character), so padding newlines let it end the row now; they open the next write as empty lines,
    // which it skips.
    this.parser.write(Buffer.concat([content, PAD]));
    // Read back through a cast: TypeScript cannot see that the write above ran the callbacks that set them.
    const fields = this.fields as string[] | null;
    const err = this.error as string | null;
    if (fields !== null && err === null) return { fields };
    // Neither a row nor an error: the row ends inside a quoted field that never closes.
    // csv-parse counts lines over all the rows written to it, which says nothing here: the index does.
    const error = err?.replace(/ at line \d+/, '') ?? 'Quote Not Closed: the last quoted field is never closed';
    this.parser.destroy();
    this.parser = this.make();
    return { error };
  }

  close(): void {
    this.parser.destroy();
  }
}

/** Reads a CSV file or stream with a header row; each record is an object of strings keyed by the header. */
export class CsvReader implements RecordReader {
  readonly name: string;
  /** A file is read again from a position; a stream (stdin) is not. */
  readonly replays: boolean;
  private readonly maxBytes: number;
  private readonly startAt: { offset: number; record: number };
  private readonly rows: RowParser;
  private readonly boundary: CsvBoundary;
  private started: Promise<{ framer: RecordFramer; puller: ChunkPuller; header: string[] }> | null = null;
  private offset: number;
  private record: number;
  private closed = false;

  constructor(
    private readonly input: ByteInput,
    private readonly opts: CsvReaderOptions = {},
  ) {
    this.name = typeof input === 'string' ? `csv file '${input}'` : (opts.name ?? 'csv stream');
    this.replays = typeof input === 'string';
    this.maxBytes = checkMaxRecordBytes(this.name, opts.maxRecordBytes);
    const delimiter = opts.delimiter ?? ',';
    if (typeof delimiter !== 'string' || Buffer.byteLength(delimiter) !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
      throw new ValueError(`${this.name}: delimiter must be one single-byte character other than a quote or line break (got ${fmtValue(delimiter)})`);
    }
    if (typeof input !== 'string' && opts.from !== undefined) {
      throw new ValueError(`${this.name}: cannot resume from ${fmtValue(opts.from)}: a stream cannot seek, only files can`);
    }
    this.startAt = checkOffsetFrom(this.name, opts.from);
    this.offset = this.startAt.offset;
    this.record = this.startAt.record;
    this.rows = new RowParser(delimiter);
    this.boundary = new CsvBoundary(delimiter.charCodeAt(0));
  }

  /** The header row's column names (reads it on the first call). */
  header(): Promise<readonly string[]> {
    return this.start().then((s) => s.header);
  }

  private start(): Promise<{ framer: RecordFramer; puller: ChunkPuller; header: string[] }> {
    this.started ??= this.open();
    return this.started;
  }

  private async open(): Promise<{ framer: RecordFramer; puller: ChunkPuller; header: string[] }> {
    const destroy = this.opts.destroyOnClose ?? true;
    // The header is always the file's first row, whatever offset a resumed reader continues from.
    let o = await openInput(this.input, this.name, 0, this.maxBytes, this.boundary, destroy);
    let frame = await o.framer.next();
    while (frame !== null && frame.bytes === 0) frame = await o.framer.next();
    if (frame === null) {
      await o.puller.close();
      throw new SourceError(`${this.name}: no header row (the ${typeof this.input === 'string' ? 'file' : 'stream'} is empty)`);
    }
    if (frame.raw === null) {
      await o.puller.close();
      throw new SourceError(`${this.name}: the header row is ${fmtOversized(frame.bytes, this.maxBytes)}`);
    }
    const parsed = this.rows.parse(frame.raw.subarray(0, frame.bytes));
    if ('error' in parsed) {
      await o.puller.close();
      throw new SourceError(`${this.name}: the header row is not valid CSV: ${parsed.error}`);
    }
    const header = parsed.fields;
    const seen = new Set<string>();
    for (const h of header) {
      if (seen.has(h)) {
        await o.puller.close();
        throw new SourceError(`${this.name}: the header names column ${JSON.stringify(h)} twice`);
      }
      seen.add(h);
    }
    if (this.startAt.offset > o.framer.offset) {
      await o.puller.close();
      o = await openInput(this.input, this.name, this.startAt.offset, this.maxBytes, this.boundary, destroy);
    }
    return { framer: o.framer, puller: o.puller, header };
  }

  /** Fails with a SourceError naming the columns that the header lacks. */
  async checkColumns(fields: readonly string[]): Promise<void> {
    const { header } = await this.start();
    const missing = fields.filter((f) => !header.includes(f));
    if (missing.length > 0) {
      throw new SourceError(`${this.name}: the header lacks ${missing.length === 1 ? 'column' : 'columns'} ${missing.map((m) => `'${m}'`).join(', ')} that the mapping reads (header: ${header.join(', ')})`);
    }
  }

  async next(): Promise<SourceRecord | null> {
    if (this.closed) return null;
    const { framer, header } = await this.start();
    for (;;) {
      const f = await framer.next();
      if (f === null) return null;
      if (f.bytes === 0) continue; // blank lines are not records
      const index = ++this.record;
      this.offset = f.end;
      const position = { offset: f.end, record: index };
      if (f.raw === null) {
        return { value: f.preview.toString('utf8'), index, bytes: f.bytes, position, fault: { reason: 'oversized', message: fmtOversized(f.bytes, this.maxBytes) } };
      }
      const content = f.raw.subarray(0, f.bytes);
      const parsed = this.rows.parse(content);
      if ('error' in parsed) {
        return { value: content.toString('utf8'), index, bytes: f.bytes, position, fault: { reason: 'invalid CSV', message: `invalid CSV: ${parsed.error}` } };
      }
      if (parsed.fields.length !== header.length) {
        return {
          value: content.toString('utf8'),
          index,
          bytes: f.bytes,
          position,
          fault: { reason: 'invalid CSV', message: `invalid CSV: ${parsed.fields.length} fields, expected ${header.length} as in the header` },
        };
      }
      // fromEntries defines own properties, so a column named "__proto__" is just a field.
      const value = Object.fromEntries(header.map((h, i) => [h, parsed.fields[i]!]));
      return { value, index, bytes: f.bytes, position };
    }
  }

  async ack(): Promise<void> {}

  position(): ReaderPosition {
    return { offset: this.offset, record: this.record };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rows.close();
    if (this.started !== null) {
      const s = await this.started.catch(() => null);
      await s?.puller.close();
    }
  }
}
