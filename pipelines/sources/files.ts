// files reader: a directory, or a glob pattern on one directory level (`data/part-*.csv`), read file
// after file in sorted name order, each by the CSV or JSON Lines reader its extension names.
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { SourceError, ValueError, fmtValue } from '../../src/errors.js';
import type { ReaderPosition, RecordReader, SourceRecord } from '../records.js';
import { CsvReader } from './csv.js';
import { JsonlReader } from './jsonl.js';

export interface FilesReaderOptions {
  /** Continue after this position (a checkpoint's): { file, offset, record }. */
  from?: ReaderPosition;
  /** Records longer than this are skipped unbuffered and reported oversized (default 1 MiB). */
  maxRecordBytes?: number;
}

/** The readers by extension: .tsv is CSV with tabs. */
const FORMATS: Record<string, (path: string, from: { offset: number }, max: number | undefined) => RecordReader> = {
  '.csv': (p, from, max) => new CsvReader(p, { from, maxRecordBytes: max }),
  '.tsv': (p, from, max) => new CsvReader(p, { from, maxRecordBytes: max, delimiter: '\t' }),
  '.jsonl': (p, from, max) => new JsonlReader(p, { from, maxRecordBytes: max }),
  '.ndjson': (p, from, max) => new JsonlReader(p, { from, maxRecordBytes: max }),
};
const KNOWN = Object.keys(FORMATS);

/** `*` is any run of characters and `?` one character, both within a name; everything else is literal. */
function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

function hasWildcard(s: string): boolean {
  return /[*?]/.test(s);
}

interface Current {
  file: string;
  reader: RecordReader;
}

export class FilesReader implements RecordReader {
  readonly name: string;
  readonly replays = true;
  private listed: Promise<string[]> | null = null;
  private readonly from: { file: string | null; offset: number; record: number };
  private fileIndex = -1;
  private current: Current | null = null;
  private record: number;
  private at: { file: string | null; offset: number };
  private closed = false;

  constructor(
    readonly pattern: string,
    private readonly opts: FilesReaderOptions = {},
  ) {
    this.name = `files '${pattern}'`;
    this.from = this.checkFrom(opts.from);
    this.record = this.from.record;
    this.at = { file: this.from.file, offset: this.from.offset };
  }

  private checkFrom(from: ReaderPosition | undefined): { file: string | null; offset: number; record: number } {
    if (from === undefined) return { file: null, offset: 0, record: 0 };
    const f = from as Partial<Record<string, unknown>>;
    const int = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
    if (typeof from !== 'object' || from === null || !(f.file === null || typeof f.file === 'string') || !int(f.offset) || !(f.record === undefined || int(f.record))) {
      throw new ValueError(`${this.name}: cannot resume from ${fmtValue(from)}: expected { file: string | null, offset: integer >= 0, record?: integer >= 0 }`);
    }
    return { file: f.file as string | null, offset: f.offset, record: (f.record as number | undefined) ?? 0 };
  }

  /** The matching files, full paths in sorted order. Listed once: files added later are not read. */
  files(): Promise<string[]> {
    this.listed ??= this.list();
    return this.listed;
  }

  private async list(): Promise<string[]> {
    const p = this.pattern;
    const glob = hasWildcard(basename(p));
    const dir = glob ? dirname(p) : p;
    if (hasWildcard(dir)) throw new SourceError(`${this.name}: wildcards are supported in the last path segment only`);
    let isDir: boolean;
    try {
      isDir = (await stat(dir)).isDirectory();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SourceError(`${this.name}: ${code === 'ENOENT' ? `no such ${glob ? 'directory' : 'file or directory'} '${dir}'` : `cannot read '${dir}' (${code})`}`);
    }
    if (!glob && !isDir) {
      if (!KNOWN.includes(extname(p))) throw new SourceError(`${this.name}: cannot read '${basename(p)}': the extension must be one of ${KNOWN.join(', ')}`);
      this.checkResumeFile([basename(p)]);
      return [p];
    }
    if (!isDir) throw new SourceError(`${this.name}: '${dir}' is not a directory`);
    const entries = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
      throw new SourceError(`${this.name}: cannot list '${dir}' (${e.code})`);
    });
    const match = glob ? globToRegExp(basename(p)) : null;
    // Hidden files only when the pattern asks for them, as shells do.
    const hidden = glob && basename(p).startsWith('.');
    const names = entries
      .filter((e) => e.isFile() && (hidden || !e.name.startsWith('.')) && (match === null ? KNOWN.includes(extname(e.name)) : match.test(e.name)))
      .map((e) => e.name)
      .sort(); // code-unit order: 'part-10' sorts before 'part-2', so zero-pad numbered parts
    if (names.length === 0) {
      throw new SourceError(`${this.name}: ${glob ? 'no files match' : `no ${KNOWN.join(', ')} files in the directory`}`);
    }
    const bad = names.find((n) => !KNOWN.includes(extname(n)));
    if (bad !== undefined) throw new SourceError(`${this.name}: cannot read '${bad}': the extension must be one of ${KNOWN.join(', ')}`);
    this.checkResumeFile(names);
    return names.map((n) => join(dir, n));
  }

  private checkResumeFile(names: string[]): void {
    if (this.from.file !== null && !names.includes(this.from.file)) {
      throw new SourceError(`${this.name}: cannot resume in '${this.from.file}': it is not among the matching files`);
    }
  }

  private open(path: string, offset: number): RecordReader {
    return FORMATS[extname(path)]!(path, { offset }, this.opts.maxRecordBytes);
  }

  /** Checks the header of every CSV file before any record is read, so a bad file fails the run at its start. */
  async checkColumns(fields: readonly string[]): Promise<void> {
    for (const path of await this.files()) {
      const r = this.open(path, 0);
      try {
        await r.checkColumns?.(fields);
      } finally {
        await r.close();
      }
    }
  }

  async next(): Promise<SourceRecord | null> {
    if (this.closed) return null;
    const files = await this.files();
    for (;;) {
      if (this.current === null) {
        if (this.fileIndex === -1 && this.from.file !== null) {
          this.fileIndex = files.findIndex((f) => basename(f) === this.from.file);
          this.current = { file: this.from.file, reader: this.open(files[this.fileIndex]!, this.from.offset) };
        } else {
          if (++this.fileIndex >= files.length) return null;
          const path = files[this.fileIndex]!;
          this.current = { file: basename(path), reader: this.open(path, 0) };
        }
      }
      const rec = await this.current.reader.next();
      if (rec === null) {
        await this.current.reader.close();
        this.current = null;
        continue;
      }
      const index = ++this.record;
      const offset = (rec.position as { offset: number }).offset;
      this.at = { file: this.current.file, offset };
      return { ...rec, index, position: { file: this.current.file, offset, record: index } };
    }
  }

  async ack(): Promise<void> {}

  position(): ReaderPosition {
    return { file: this.at.file, offset: this.at.offset, record: this.record };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.current?.reader.close();
    this.current = null;
  }
}
