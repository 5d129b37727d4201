// IDX reader: the MNIST / Fashion-MNIST binary format, an idx3-ubyte images file and an idx1-ubyte
// labels file (each plain or gzipped), read in lockstep into records { image: pixels/255, label }.
import { createGunzip } from 'node:zlib';
import { type Readable, pipeline } from 'node:stream';
import { SourceError, ValueError, fmtValue } from '../../src/errors.js';
import type { ReaderPosition, RecordReader, SourceRecord } from '../records.js';
import { ChunkPuller, fileStream, openFile } from './jsonl.js';

export interface IdxReaderOptions {
  /** Continue after this position (a checkpoint's): { record: n } resumes with record n + 1. */
  from?: ReaderPosition;
  /** The name in messages (default "idx files 'images' + 'labels'"). */
  name?: string;
}

const IMAGES_MAGIC = 0x00000803; // unsigned bytes, 3 dimensions
const LABELS_MAGIC = 0x00000801; // unsigned bytes, 1 dimension

/** Exact-size reads over a chunk stream (a header, one image), with the bytes of a chunk not yet used kept. */
class ByteReader {
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;

  constructor(readonly puller: ChunkPuller) {}

  /** `n` bytes, or fewer only at the end of the input. */
  async read(n: number): Promise<Buffer> {
    if (this.chunk.length - this.pos >= n) {
      this.pos += n;
      return this.chunk.subarray(this.pos - n, this.pos);
    }
    const parts: Buffer[] = [this.chunk.subarray(this.pos)];
    let have = parts[0]!.length;
    while (have < n) {
      const c = await this.puller.next();
      if (c === null) {
        this.chunk = Buffer.alloc(0);
        this.pos = 0;
        return Buffer.concat(parts);
      }
      const take = Math.min(n - have, c.length);
      parts.push(c.subarray(0, take));
      have += take;
      this.chunk = c;
      this.pos = take;
    }
    return Buffer.concat(parts);
  }
}

/** Opens an IDX file as a ByteReader; gzip is recognised by its magic bytes, not the file name. */
async function openIdx(path: string, name: string): Promise<ByteReader> {
  const { handle } = await openFile(path, `${name}: '${path}'`);
  const head = Buffer.alloc(2);
  await handle.read(head, 0, 2, 0);
  let stream: Readable = fileStream(handle, 0);
  if (head[0] === 0x1f && head[1] === 0x8b) {
    // pipeline forwards a read error of the file into the gunzip stream, which the puller then reports.
    stream = pipeline(stream, createGunzip(), () => {});
  }
  return new ByteReader(new ChunkPuller(stream, `${name}: '${path}'`));
}

/** Reads images and labels in lockstep, after checking both headers (magic numbers, dimensions, counts). */
export class IdxReader implements RecordReader {
  readonly name: string;
  readonly replays = true;
  private opened: Promise<{ images: ByteReader; labels: ByteReader; count: number; size: number }> | null = null;
  private readonly start: number;
  private record: number;
  private closed = false;

  constructor(
    readonly images: string,
    readonly labels: string,
    opts: IdxReaderOptions = {},
  ) {
    this.name = opts.name ?? `idx files '${images}' + '${labels}'`;
    const from = opts.from as { record?: unknown } | undefined;
    if (from !== undefined && (typeof from !== 'object' || from === null || typeof from.record !== 'number' || !Number.isInteger(from.record) || from.record < 0)) {
      throw new ValueError(`${this.name}: cannot resume from ${fmtValue(from)}: expected { record: integer >= 0 }`);
    }
    this.start = (from?.record as number | undefined) ?? 0;
    this.record = this.start;
  }

  private open(): Promise<{ images: ByteReader; labels: ByteReader; count: number; size: number }> {
    this.opened ??= this.openBoth();
    return this.opened;
  }

  private async openBoth(): Promise<{ images: ByteReader; labels: ByteReader; count: number; size: number }> {
    const images = await openIdx(this.images, this.name);
    let labels: ByteReader;
    try {
      labels = await openIdx(this.labels, this.name);
    } catch (e) {
      await images.puller.close();
      throw e;
    }
    try {
      const ih = await this.readHeader(images, this.images, 16, IMAGES_MAGIC, 'idx3-ubyte images');
      const lh = await this.readHeader(labels, this.labels, 8, LABELS_MAGIC, 'idx1-ubyte labels');
      const count = ih.readUInt32BE(4);
      const rows = ih.readUInt32BE(8);
      const cols = ih.readUInt32BE(12);
      const labelCount = lh.readUInt32BE(4);
      if (rows === 0 || cols === 0) throw new SourceError(`${this.name}: '${this.images}' has empty images (${rows}×${cols})`);
      if (count !== labelCount) throw new SourceError(`${this.name}: '${this.images}' holds ${count} images but '${this.labels}' holds ${labelCount} labels`);
      if (this.start > count) throw new SourceError(`${this.name}: cannot resume from record ${this.start}: the files hold ${count}`);
      const size = rows * cols;
      // Resuming skips the records before `from` by reading them: a gzipped file cannot seek.
      for (let i = 0; i < this.start; i++) await this.read(images, size, i, count, this.images, 'images');
      await this.read(labels, this.start, 0, count, this.labels, 'labels', this.start);
      return { images, labels, count, size };
    } catch (e) {
      await images.puller.close();
      await labels.puller.close();
      throw e;
    }
  }

  private async readHeader(r: ByteReader, path: string, n: number, magic: number, what: string): Promise<Buffer> {
    const h = await r.read(n);
    const hex = (m: number): string => `0x${m.toString(16).padStart(8, '0')}`;
    // The magic number says more than the length when there is one: labels given for images, say.
    if (h.length >= 4 && h.readUInt32BE(0) !== magic) {
      throw new SourceError(`${this.name}: '${path}' is not an ${what} file (magic number ${hex(h.readUInt32BE(0))}, expected ${hex(magic)})`);
    }
    if (h.length < n) throw new SourceError(`${this.name}: '${path}' is not an ${what} file (${h.length} bytes, a header needs ${n})`);
    return h;
  }

  /** Reads n bytes (`items` items); input that ends early is a truncated file, named with how far it got. */
  private async read(r: ByteReader, n: number, done: number, count: number, path: string, what: 'images' | 'labels', items = 1): Promise<Buffer> {
    const b = await r.read(n);
    if (b.length < n) throw new SourceError(`${this.name}: '${path}' ends after ${done + Math.floor((b.length * items) / n)} of ${count} ${what}`);
    return b;
  }

  async next(): Promise<SourceRecord | null> {
    if (this.closed) return null;
    const { images, labels, count, size } = await this.open();
    if (this.record === count) return null;
    const px = await this.read(images, size, this.record, count, this.images, 'images');
    const lb = await this.read(labels, 1, this.record, count, this.labels, 'labels');
    const image = new Array<number>(size);
    for (let i = 0; i < size; i++) image[i] = px[i]! / 255;
    const index = ++this.record;
    return { value: { image, label: lb[0]! }, index, bytes: size + 1, position: { record: index } };
  }

  async ack(): Promise<void> {}

  position(): ReaderPosition {
    return { record: this.record };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.opened !== null) {
      const o = await this.opened.catch(() => null);
      await o?.images.puller.close();
      await o?.labels.puller.close();
    }
  }
}
