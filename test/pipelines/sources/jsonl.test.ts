import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { SourceError, ValueError } from '../../../src/errors.js';
import { JsonlReader, PREVIEW_BYTES } from '../../../pipelines/sources/jsonl.js';
import { chunked, drain, rejection, tempDir } from './helpers.js';

const dir = tempDir('streamgrad-jsonl-');
let n = 0;
function file(text: string | Buffer): string {
  const p = join(dir, `f${n++}.jsonl`);
  writeFileSync(p, text);
  return p;
}
function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('valid JSON');
}

describe('JsonlReader', () => {
  it('reads one object per line with its index, size and the byte offset after it; blank lines are not records', async () => {
    const lines = ['{"a":1}', '', '{"b":"é"}  ', '   ', '{"c":[1,2]}'];
    const p = file(`${lines.join('\n')}\n\n`);
    const recs = await drain(new JsonlReader(p));
    expect(recs.map((r) => [r.value, r.index, r.bytes, r.position])).toEqual([
      [{ a: 1 }, 1, 7, { offset: 8, record: 1 }],
      [{ b: 'é' }, 2, 12, { offset: 22, record: 2 }],
      [{ c: [1, 2] }, 3, 11, { offset: 38, record: 3 }],
    ]);
    expect(recs.every((r) => r.fault === undefined)).toBe(true);
  });

  it('reads CRLF lines, a last line without a newline, and skips a byte order mark', async () => {
    const p = file(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}\r\n{"a":2}')]));
    const recs = await drain(new JsonlReader(p));
    expect(recs.map((r) => [r.value, r.bytes, r.position])).toEqual([
      [{ a: 1 }, 10, { offset: 12, record: 1 }],
      [{ a: 2 }, 7, { offset: 19, record: 2 }],
    ]);
  });

  it('turns a malformed line or a non-object into a bad record with its reason, and reads on', async () => {
    const p = file('{"a":1}\n{"a":}\n[1,2]\n42\nnull\n{"a":3}\n');
    const recs = await drain(new JsonlReader(p));
    expect(recs.map((r) => [r.index, r.value, r.fault])).toEqual([
      [1, { a: 1 }, undefined],
      [2, '{"a":}', { reason: 'invalid JSON', message: `invalid JSON: ${jsonError('{"a":}')}` }],
      [3, '[1,2]', { reason: 'invalid JSON', message: 'invalid JSON: expected an object, got an array' }],
      [4, '42', { reason: 'invalid JSON', message: 'invalid JSON: expected an object, got a number' }],
      [5, 'null', { reason: 'invalid JSON', message: 'invalid JSON: expected an object, got null' }],
      [6, { a: 3 }, undefined],
    ]);
  });

  it('skips a line above the cap to the next newline, reporting its full size and keeping a preview only', async () => {
    const long = `{"pixels":[${'1,'.repeat(100_000)}1]}`;
    const p = file(`{"a":1}\n${long}\n{"a":2}\n`);
    const recs = await drain(new JsonlReader(p, { maxRecordBytes: 1000 }));
    expect(recs.map((r) => [r.index, r.bytes, r.fault?.reason])).toEqual([
      [1, 7, undefined],
      [2, long.length, 'oversized'],
      [3, 7, undefined],
    ]);
    expect(recs[1]!.fault!.message).toBe(`${long.length} bytes, above the limit of 1000 bytes`);
    expect(recs[1]!.value).toBe(long.slice(0, PREVIEW_BYTES));
    expect(recs[2]!.value).toEqual({ a: 2 });
    // Exactly at the cap is fine; the terminator does not count.
    const atCap = `{"s":"${'x'.repeat(992)}"}`;
    expect(atCap.length).toBe(1000);
    expect((await drain(new JsonlReader(file(`${atCap}\r\n`), { maxRecordBytes: 1000 })))[0]!.fault).toBeUndefined();
  });

  it('pulls the stream only as records are asked for: one chunk ahead at most', async () => {
    let reads = 0;
    const line = `${JSON.stringify({ v: 'x'.repeat(90) })}\n`; // 101 bytes
    const stream = new Readable({
      highWaterMark: 16,
      read() {
        reads++;
        this.push(reads > 1000 ? null : line.repeat(10)); // 10 records a chunk
      },
    });
    const r = new JsonlReader(stream, { name: 'test stream' });
    expect(reads).toBe(0);
    for (let i = 0; i < 25; i++) await r.next();
    expect(reads).toBeGreaterThanOrEqual(3);
    expect(reads).toBeLessThanOrEqual(4);
    await r.close();
    expect(stream.destroyed).toBe(true);
  });

  it('reads the same records from a stream cut in any chunk sizes, a multi-byte character split included', async () => {
    const text = '{"a":"ü€𝄞"}\n{"b":2}\r\n\n{"c":"\\n"}';
    const want = (await drain(new JsonlReader(file(text)))).map((r) => [r.value, r.position]);
    for (const sizes of [[1], [2, 3], [5, 1, 7]]) {
      expect((await drain(new JsonlReader(chunked(Buffer.from(text), sizes)))).map((r) => [r.value, r.position])).toEqual(want);
    }
  });

  it('fails clearly on a missing file, a directory, a bad position, and resuming a stream', async () => {
    const missing = join(dir, 'nope.jsonl');
    expect(await rejection(new JsonlReader(missing).next())).toEqual(new SourceError(`jsonl file '${missing}': no such file`));
    const sub = join(dir, 'sub.jsonl');
    mkdirSync(sub);
    expect(await rejection(new JsonlReader(sub).next())).toEqual(new SourceError(`jsonl file '${sub}': is a directory, expected a file`));
    const p = file('{"a":1}\n');
    expect(await rejection(new JsonlReader(p, { from: { offset: 9 } }).next())).toEqual(new SourceError(`jsonl file '${p}': cannot resume from offset 9: the file has 8 bytes`));
    expect(() => new JsonlReader(p, { from: { offset: -1 } })).toThrow(new ValueError(`jsonl file '${p}': cannot resume from {"offset":-1}: expected { offset: integer >= 0, record?: integer >= 0 }`));
    expect(() => new JsonlReader(Readable.from([]), { from: { offset: 0 } })).toThrow(new ValueError('jsonl stream: cannot resume from {"offset":0}: a stream cannot seek, only files can'));
    expect(() => new JsonlReader(p, { maxRecordBytes: 0 })).toThrow(new ValueError(`jsonl file '${p}': maxRecordBytes must be an integer >= 1 (got 0)`));
  });

  const record = fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean()), { maxKeys: 4 });
  test.prop([fc.array(fc.tuple(record, fc.constantFrom('\n', '\r\n', '\n\n', '\n  \n')), { minLength: 1, maxLength: 30 }), fc.nat(), fc.constantFrom(7, 64, 1000)], { numRuns: 40 })(
    'opened from the position of any record, it reads exactly what a straight read gives after it',
    async (rows, k0, cap) => {
      const p = file(rows.map(([r, nl]) => JSON.stringify(r) + nl).join(''));
      const straight = await drain(new JsonlReader(p, { maxRecordBytes: cap }));
      expect(straight).toHaveLength(rows.length);
      const k = k0 % (straight.length + 1);
      const from = k === 0 ? undefined : straight[k - 1]!.position;
      const resumed = await drain(new JsonlReader(p, { from, maxRecordBytes: cap }));
      expect(resumed).toEqual(straight.slice(k));
    },
  );
});
