import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { SourceError, ValueError } from '../../../src/errors.js';
import { IdxReader } from '../../../pipelines/sources/idx.js';
import { drain, idxImages, idxLabels, rejection, tempDir, writeIdx } from './helpers.js';

const dir = tempDir('streamgrad-idx-');
let n = 0;

/** n images of rows×cols with pixel (i, p) = (7i + p) mod 256, and labels i mod 10. */
function sample(count: number, rows: number, cols: number): { pixels: Uint8Array; labels: number[] } {
  const pixels = new Uint8Array(count * rows * cols);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (7 * Math.floor(i / (rows * cols)) + (i % (rows * cols))) % 256;
  return { pixels, labels: Array.from({ length: count }, (_, i) => i % 10) };
}

function expected(s: { pixels: Uint8Array; labels: number[] }, size: number): { image: number[]; label: number }[] {
  return s.labels.map((label, i) => ({ image: Array.from(s.pixels.subarray(i * size, (i + 1) * size), (p) => p / 255), label }));
}

describe('IdxReader', () => {
  it.each([false, true])('reads images as pixels/255 with their labels, gzipped: %s', async (gz) => {
    const s = sample(5, 3, 4);
    const f = writeIdx(dir, `plain${n++}`, s.pixels, s.labels, 3, 4, gz);
    const recs = await drain(new IdxReader(f.images, f.labels));
    expect(recs.map((r) => r.value)).toEqual(expected(s, 12));
    expect(recs.map((r) => [r.index, r.bytes, r.position])).toEqual([1, 2, 3, 4, 5].map((i) => [i, 13, { record: i }]));
  });

  test.prop([fc.integer({ min: 0, max: 20 }), fc.nat(), fc.boolean()], { numRuns: 15 })('opened from the position of any record, it reads what a straight read gives after it', async (count, k0, gz) => {
    const s = sample(count, 2, 3);
    const f = writeIdx(dir, `resume${n++}`, s.pixels, s.labels, 2, 3, gz);
    const straight = await drain(new IdxReader(f.images, f.labels));
    expect(straight).toHaveLength(count);
    const k = k0 % (count + 1);
    expect(await drain(new IdxReader(f.images, f.labels, { from: { record: k } }))).toEqual(straight.slice(k));
  });

  it('checks magic numbers, counts and lengths, naming the file', async () => {
    const s = sample(4, 2, 2);
    const ok = writeIdx(dir, `ok${n++}`, s.pixels, s.labels, 2, 2, false);
    const name = (images: string, labels: string): string => `idx files '${images}' + '${labels}'`;
    const put = (bytes: Buffer): string => {
      const p = join(dir, `bad${n++}`);
      writeFileSync(p, bytes);
      return p;
    };
    // Labels given as images and the other way round.
    expect(await rejection(new IdxReader(ok.labels, ok.images).next())).toEqual(
      new SourceError(`${name(ok.labels, ok.images)}: '${ok.labels}' is not an idx3-ubyte images file (magic number 0x00000801, expected 0x00000803)`),
    );
    const fewer = put(idxLabels([1, 2, 3]));
    expect(await rejection(new IdxReader(ok.images, fewer).next())).toEqual(new SourceError(`${name(ok.images, fewer)}: '${ok.images}' holds 4 images but '${fewer}' holds 3 labels`));
    const cut = put(idxImages(s.pixels.subarray(0, 10), 4, 2, 2));
    const r = new IdxReader(cut, ok.labels);
    await r.next();
    await r.next();
    expect(await rejection(r.next())).toEqual(new SourceError(`${name(cut, ok.labels)}: '${cut}' ends after 2 of 4 images`));
    await r.close();
    const short = put(Buffer.from([0, 0, 8]));
    expect(await rejection(new IdxReader(short, ok.labels).next())).toEqual(new SourceError(`${name(short, ok.labels)}: '${short}' is not an idx3-ubyte images file (3 bytes, a header needs 16)`));
    const corrupt = put(Buffer.concat([gzipSync(idxImages(s.pixels, 4, 2, 2)).subarray(0, 30)]));
    const e = await rejection(drain(new IdxReader(corrupt, ok.labels)));
    expect(e).toEqual(new SourceError(`${name(corrupt, ok.labels)}: '${corrupt}': not valid gzip data (unexpected end of file)`));
    const missing = join(dir, 'nope-idx3-ubyte');
    expect(await rejection(new IdxReader(missing, ok.labels).next())).toEqual(new SourceError(`${name(missing, ok.labels)}: '${missing}': no such file`));
    expect(await rejection(new IdxReader(ok.images, ok.labels, { from: { record: 5 } }).next())).toEqual(new SourceError(`${name(ok.images, ok.labels)}: cannot resume from record 5: the files hold 4`));
    expect(() => new IdxReader(ok.images, ok.labels, { from: { offset: 3 } })).toThrow(new ValueError(`${name(ok.images, ok.labels)}: cannot resume from {"offset":3}: expected { record: integer >= 0 }`));
  });
});
