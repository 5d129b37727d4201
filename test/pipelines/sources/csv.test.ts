import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { SourceError, ValueError } from '../../../src/errors.js';
import { CsvReader } from '../../../pipelines/sources/csv.js';
import { chunked, drain, rejection, tempDir } from './helpers.js';

const dir = tempDir('streamgrad-csv-');
let n = 0;
function file(text: string): string {
  const p = join(dir, `f${n++}.csv`);
  writeFileSync(p, text);
  return p;
}

/** A CSV field as a writer quotes it: when it holds a delimiter, quote, line break, or starts with a space. */
function field(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

describe('CsvReader', () => {
  it('reads rows as objects keyed by the header, with quoted commas, quotes and line breaks, and byte offsets', async () => {
    const text = 'name,note\r\nann,"a, b"\r\n"bo""b","two\nlines"\r\n\r\nçé,x';
    const recs = await drain(new CsvReader(file(text)));
    expect(recs.map((r) => [r.value, r.index, r.bytes, r.position, r.fault])).toEqual([
      [{ name: 'ann', note: 'a, b' }, 1, 10, { offset: 23, record: 1 }, undefined],
      [{ name: 'bo"b', note: 'two\nlines' }, 2, 19, { offset: 44, record: 2 }, undefined],
      [{ name: 'çé', note: 'x' }, 3, 6, { offset: 52, record: 3 }, undefined],
    ]);
    expect(Buffer.byteLength(text)).toBe(52);
  });

  it('turns a row with the wrong field count or broken quoting into a bad record, and reads on', async () => {
    const text = 'a,b\n1,2\n3,4,5\n6\n7,"x"y\n8,9\n10,11\n"12,13\n';
    const recs = await drain(new CsvReader(file(text)));
    expect(recs.map((r) => [r.index, r.value, r.fault])).toEqual([
      [1, { a: '1', b: '2' }, undefined],
      [2, '3,4,5', { reason: 'invalid CSV', message: 'invalid CSV: 3 fields, expected 2 as in the header' }],
      [3, '6', { reason: 'invalid CSV', message: 'invalid CSV: 1 fields, expected 2 as in the header' }],
      [4, '7,"x"y', { reason: 'invalid CSV', message: 'invalid CSV: Invalid Closing Quote: got "y" instead of delimiter, record delimiter, trimable character (if activated) or comment' }],
      [5, { a: '8', b: '9' }, undefined],
      [6, { a: '10', b: '11' }, undefined],
      [7, '"12,13', { reason: 'invalid CSV', message: 'invalid CSV: Quote Not Closed: the last quoted field is never closed' }],
    ]);
  });

  it('skips a row above the cap without buffering it (a quoted field may span lines), reporting its size', async () => {
    const big = `1,"${'x\n'.repeat(5000)}"`;
    const recs = await drain(new CsvReader(file(`a,b\n${big}\n2,3\n`), { maxRecordBytes: 500 }));
    expect(recs.map((r) => [r.index, r.bytes, r.fault?.message, r.value])).toEqual([
      [1, big.length, `${big.length} bytes, above the limit of 500 bytes`, big.slice(0, 4096)],
      [2, 3, undefined, { a: '2', b: '3' }],
    ]);
  });

  it('checks the header against the fields a mapping reads, naming the source and the missing columns', async () => {
    const p = file('id,name,score\n1,a,2\n');
    const check = async (fields: string[]): Promise<unknown> => {
      const r = new CsvReader(p);
      try {
        await r.checkColumns(fields);
        // The header read for the check is not read again as a record.
        return (await r.next())?.value;
      } catch (e) {
        return e;
      } finally {
        await r.close();
      }
    };
    expect(await check(['id', 'score'])).toEqual({ id: '1', name: 'a', score: '2' });
    expect(await check(['id', 'age', 'income'])).toEqual(new SourceError(`csv file '${p}': the header lacks columns 'age', 'income' that the mapping reads (header: id, name, score)`));
    expect(await check(['age'])).toEqual(new SourceError(`csv file '${p}': the header lacks column 'age' that the mapping reads (header: id, name, score)`));
  });

  it('fails clearly on an empty file, a repeated column, a missing file, a bad delimiter', async () => {
    const empty = file('\n\n');
    expect(await rejection(new CsvReader(empty).next())).toEqual(new SourceError(`csv file '${empty}': no header row (the file is empty)`));
    const dup = file('a,b,a\n1,2,3\n');
    expect(await rejection(new CsvReader(dup).next())).toEqual(new SourceError(`csv file '${dup}': the header names column "a" twice`));
    const missing = join(dir, 'nope.csv');
    expect(await rejection(new CsvReader(missing).checkColumns(['a']))).toEqual(new SourceError(`csv file '${missing}': no such file`));
    expect(() => new CsvReader(missing, { delimiter: ';;' })).toThrow(new ValueError(`csv file '${missing}': delimiter must be one single-byte character other than a quote or line break (got ";;")`));
    expect(() => new CsvReader(Readable.from([]), { from: { offset: 3 } })).toThrow(new ValueError('csv stream: cannot resume from {"offset":3}: a stream cannot seek, only files can'));
  });

  it('reads other delimiters (tabs)', async () => {
    const recs = await drain(new CsvReader(file('a\tb\n1\t"x\ty"\n'), { delimiter: '\t' }));
    expect(recs.map((r) => r.value)).toEqual([{ a: '1', b: 'x\ty' }]);
  });

  const text = fc.string({ unit: fc.constantFrom('a', 'b', ',', '"', '\n', '\r\n', ' ', 'é', '𝄞'), maxLength: 8 });
  const rows = fc.integer({ min: 1, max: 4 }).chain((cols) =>
    fc.tuple(fc.constant(cols), fc.array(fc.tuple(fc.array(text, { minLength: cols, maxLength: cols }), fc.constantFrom('\n', '\r\n', '\n\n')), { minLength: 1, maxLength: 25 })),
  );
  test.prop([rows, fc.nat(), fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 })], { numRuns: 60 })(
    'reads back random quoted rows; from any record position it reads what a straight read gives after it; chunking changes nothing',
    async ([cols, data], k0, sizes) => {
      const header = Array.from({ length: cols }, (_, i) => `c${i}`);
      // A row of one empty field is a blank line, which CSV cannot tell from one: quote it.
      const line = (fs: string[]): string => (fs.length === 1 && fs[0] === '' ? '""' : fs.map(field).join(','));
      const csv = `${header.join(',')}\n${data.map(([fs, nl]) => line(fs) + nl).join('')}`;
      const p = file(csv);
      const straight = await drain(new CsvReader(p));
      expect(straight.map((r) => r.value)).toEqual(data.map(([fs]) => Object.fromEntries(fs.map((f, i) => [`c${i}`, f]))));
      const k = k0 % (straight.length + 1);
      const resumed = await drain(new CsvReader(p, { from: k === 0 ? undefined : straight[k - 1]!.position }));
      expect(resumed).toEqual(straight.slice(k));
      const streamed = await drain(new CsvReader(chunked(Buffer.from(csv), sizes)));
      expect(streamed).toEqual(straight);
    },
  );
});
