// Helpers of the record reader tests: temp dirs, IDX files written from pixels and labels, draining a reader.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll } from 'vitest';
import type { RecordReader, SourceRecord } from '../../../pipelines/records.js';

/** A fresh temp directory, removed after the file's tests. */
export function tempDir(prefix = 'streamgrad-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The IDX bytes of n images of rows×cols unsigned bytes (magic 0x00000803). */
export function idxImages(pixels: Uint8Array, n: number, rows: number, cols: number): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32BE(0x00000803, 0);
  h.writeUInt32BE(n, 4);
  h.writeUInt32BE(rows, 8);
  h.writeUInt32BE(cols, 12);
  return Buffer.concat([h, Buffer.from(pixels)]);
}

/** The IDX bytes of labels (magic 0x00000801). */
export function idxLabels(labels: ArrayLike<number>, n = labels.length): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(0x00000801, 0);
  h.writeUInt32BE(n, 4);
  return Buffer.concat([h, Buffer.from(Array.from(labels))]);
}

/** Writes `<dir>/<prefix>-images-idx3-ubyte[.gz]` and the labels beside it; returns both paths. */
export function writeIdx(dir: string, prefix: string, pixels: Uint8Array, labels: number[], rows: number, cols: number, gz: boolean): { images: string; labels: string } {
  const ext = gz ? '.gz' : '';
  const images = join(dir, `${prefix}-images-idx3-ubyte${ext}`);
  const lbl = join(dir, `${prefix}-labels-idx1-ubyte${ext}`);
  const img = idxImages(pixels, labels.length, rows, cols);
  const lab = idxLabels(labels);
  writeFileSync(images, gz ? gzipSync(img) : img);
  writeFileSync(lbl, gz ? gzipSync(lab) : lab);
  return { images, labels: lbl };
}

/** Every record the reader gives until it ends (or `limit` of them), then closes it. */
export async function drain(reader: RecordReader, limit = Infinity): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  try {
    while (out.length < limit) {
      const r = await reader.next();
      if (r === null) break;
      out.push(r);
    }
  } finally {
    await reader.close();
  }
  return out;
}

/** A stream of `bytes` in chunks of the given sizes (cycled), as a pipe or a socket would deliver them. */
export function chunked(bytes: Buffer, sizes: number[]): Readable {
  const parts: Buffer[] = [];
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const n = Math.max(1, sizes[k % sizes.length]!);
    parts.push(bytes.subarray(at, at + n));
    at += n;
  }
  return Readable.from(parts, { objectMode: false });
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}
