// stdin reader: JSON Lines or CSV records from any Readable (process.stdin by default), pulled a chunk
// at a time as the pipeline asks; a stream cannot seek, so it cannot resume from a position.
import type { Readable } from 'node:stream';
import { ValueError, fmtValue } from '../../src/errors.js';
import type { RecordReader } from '../records.js';
import { CsvReader } from './csv.js';
import { JsonlReader } from './jsonl.js';

export interface StdinReaderOptions {
  format: 'jsonl' | 'csv';
  /** Default process.stdin (left open on close: it belongs to the process). */
  input?: Readable;
  /** Default "stdin (jsonl)" / "stdin (csv)". */
  name?: string;
  /** Records longer than this are skipped unbuffered and reported oversized (default 1 MiB). */
  maxRecordBytes?: number;
  /** CSV only: one character (default ','). */
  delimiter?: string;
}

export function stdinReader(opts: StdinReaderOptions): RecordReader {
  const format = opts.format;
  if (format !== 'jsonl' && format !== 'csv') throw new ValueError(`stdinReader: format must be 'jsonl' or 'csv' (got ${fmtValue(format)})`);
  const input = opts.input ?? process.stdin;
  const common = { name: opts.name ?? `stdin (${format})`, maxRecordBytes: opts.maxRecordBytes, destroyOnClose: input !== process.stdin };
  return format === 'jsonl' ? new JsonlReader(input, common) : new CsvReader(input, { ...common, delimiter: opts.delimiter });
}
