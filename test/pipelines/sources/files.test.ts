import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { SourceError, ValueError } from '../../../src/errors.js';
import { FilesReader } from '../../../pipelines/sources/files.js';
import { drain, rejection, tempDir } from './helpers.js';

const root = tempDir('streamgrad-files-');
let n = 0;
/** A fresh directory holding the given files. */
function folder(files: Record<string, string>): string {
  const dir = join(root, `d${n++}`);
  mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('FilesReader', () => {
  const files = {
    'part-2.csv': 'v\n3\n4\n',
    'part-1.jsonl': '{"v":"1"}\n{"v":"2"}\n',
    'part-3.ndjson': '{"v":"5"}\n',
    'notes.txt': 'not data',
    '.hidden.csv': 'v\n99\n',
    'other.tsv': 'v\tw\n6\t7\n',
  };

  it('reads the files of a directory in name order, each by its extension, numbering records across them', async () => {
    const dir = folder(files);
    const recs = await drain(new FilesReader(dir));
    expect(recs.map((r) => [r.index, r.value, r.position])).toEqual([
      [1, { v: '6', w: '7' }, { file: 'other.tsv', offset: 8, record: 1 }],
      [2, { v: '1' }, { file: 'part-1.jsonl', offset: 10, record: 2 }],
      [3, { v: '2' }, { file: 'part-1.jsonl', offset: 20, record: 3 }],
      [4, { v: '3' }, { file: 'part-2.csv', offset: 4, record: 4 }],
      [5, { v: '4' }, { file: 'part-2.csv', offset: 6, record: 5 }],
      [6, { v: '5' }, { file: 'part-3.ndjson', offset: 10, record: 6 }],
    ]);
  });

  it('reads the files a glob matches (* and ? within one directory), in sorted order', async () => {
    const dir = folder(files);
    expect((await drain(new FilesReader(join(dir, 'part-*')))).map((r) => (r.value as { v: string }).v)).toEqual(['1', '2', '3', '4', '5']);
    expect((await drain(new FilesReader(join(dir, 'part-?.csv')))).map((r) => (r.value as { v: string }).v)).toEqual(['3', '4']);
    expect((await drain(new FilesReader(join(dir, '.h*')))).map((r) => (r.value as { v: string }).v)).toEqual(['99']);
    expect((await drain(new FilesReader(join(dir, 'part-2.csv')))).map((r) => r.position)).toEqual([
      { file: 'part-2.csv', offset: 4, record: 1 },
      { file: 'part-2.csv', offset: 6, record: 2 },
    ]);
  });

  it('checks the header of every CSV file at the start, naming the file that lacks a column', async () => {
    const dir = folder({ 'a.csv': 'x,y\n1,2\n', 'b.csv': 'x\n3\n', 'c.jsonl': '{"x":1}\n' });
    const r = new FilesReader(dir);
    expect(await rejection(r.checkColumns(['x', 'y']))).toEqual(new SourceError(`csv file '${join(dir, 'b.csv')}': the header lacks column 'y' that the mapping reads (header: x)`));
    await r.checkColumns(['x']);
    await r.close();
  });

  it('fails clearly on an empty glob, a missing directory, wildcards above the last segment, and unknown extensions', async () => {
    const dir = folder(files);
    const err = async (pattern: string): Promise<Error> => rejection(new FilesReader(pattern).next());
    expect(await err(join(dir, '*.parquet'))).toEqual(new SourceError(`files '${join(dir, '*.parquet')}': no files match`));
    expect(await err(join(root, 'nope', '*.csv'))).toEqual(new SourceError(`files '${join(root, 'nope', '*.csv')}': no such directory '${join(root, 'nope')}'`));
    expect(await err(join(root, 'nope.csv'))).toEqual(new SourceError(`files '${join(root, 'nope.csv')}': no such file or directory '${join(root, 'nope.csv')}'`));
    expect(await err(join(root, 'd*', '*.csv'))).toEqual(new SourceError(`files '${join(root, 'd*', '*.csv')}': wildcards are supported in the last path segment only`));
    expect(await err(join(dir, '*'))).toEqual(new SourceError(`files '${join(dir, '*')}': cannot read 'notes.txt': the extension must be one of .csv, .tsv, .jsonl, .ndjson`));
    const empty = folder({ 'readme.md': '#' });
    expect(await err(empty)).toEqual(new SourceError(`files '${empty}': no .csv, .tsv, .jsonl, .ndjson files in the directory`));
    expect(await rejection(new FilesReader(dir, { from: { file: 'gone.csv', offset: 0 } }).next())).toEqual(
      new SourceError(`files '${dir}': cannot resume in 'gone.csv': it is not among the matching files`),
    );
    expect(() => new FilesReader(dir, { from: { offset: 3 } })).toThrow(
      new ValueError(`files '${dir}': cannot resume from {"offset":3}: expected { file: string | null, offset: integer >= 0, record?: integer >= 0 }`),
    );
  });

  const fileSet = fc.array(
    fc.tuple(fc.constantFrom('.csv', '.jsonl'), fc.array(fc.string({ unit: fc.constantFrom('a', ',', '"', '\n', 'é'), maxLength: 6 }), { maxLength: 6 })),
    { minLength: 1, maxLength: 4 },
  );
  test.prop([fileSet, fc.nat()], { numRuns: 30 })('opened from the position of any record, it reads what a straight read gives after it', async (set, k0) => {
    const dir = folder(
      Object.fromEntries(
        set.map(([ext, values], i) => [
          `f${i}${ext}`,
          ext === '.csv' ? `v\n${values.map((v) => `"${v.replace(/"/g, '""')}"\n`).join('')}` : values.map((v) => `${JSON.stringify({ v })}\n`).join(''),
        ]),
      ),
    );
    const straight = await drain(new FilesReader(dir));
    expect(straight.map((r) => (r.value as { v: string }).v)).toEqual(set.flatMap(([, values]) => values));
    const k = k0 % (straight.length + 1);
    const resumed = await drain(new FilesReader(dir, { from: k === 0 ? undefined : straight[k - 1]!.position }));
    expect(resumed).toEqual(straight.slice(k));
  });
});
