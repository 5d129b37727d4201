import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ValueError } from '../../../src/errors.js';
import { JsonlReader } from '../../../pipelines/sources/jsonl.js';
import { stdinReader } from '../../../pipelines/sources/stdin.js';
import { chunked, drain } from './helpers.js';

describe('stdinReader', () => {
  it('reads JSON Lines from a stream in any chunking, with byte offsets from the stream start', async () => {
    const text = '{"a":1}\n{"a":\n{"a":3}\n';
    const r = stdinReader({ format: 'jsonl', input: chunked(Buffer.from(text), [3]) });
    expect(r.name).toBe('stdin (jsonl)');
    const recs = await drain(r);
    expect(recs.map((x) => [x.index, x.value, x.position, x.fault?.reason])).toEqual([
      [1, { a: 1 }, { offset: 8, record: 1 }, undefined],
      [2, '{"a":', { offset: 14, record: 2 }, 'invalid JSON'],
      [3, { a: 3 }, { offset: 22, record: 3 }, undefined],
    ]);
  });

  it('reads CSV with a header from a stream, other delimiters too', async () => {
    const r = stdinReader({ format: 'csv', input: chunked(Buffer.from('x;y\n1;"a;b"\n2;c\n'), [2, 5]), delimiter: ';', name: 'pipe' });
    await r.checkColumns!(['x', 'y']);
    expect((await drain(r)).map((x) => x.value)).toEqual([
      { x: '1', y: 'a;b' },
      { x: '2', y: 'c' },
    ]);
  });

  it('destroys a stream it was given on close, but never process.stdin', async () => {
    const s = Readable.from(['{"a":1}\n{"a":2}\n']);
    const r = stdinReader({ format: 'jsonl', input: s });
    await r.next();
    await r.close();
    expect(s.destroyed).toBe(true);
    // process.stdin is read with destroyOnClose false: the same path, shown on a stream of our own.
    const kept = Readable.from(['{"a":1}\n{"a":2}\n']);
    const k = new JsonlReader(kept, { destroyOnClose: false });
    expect((await k.next())?.value).toEqual({ a: 1 });
    await k.close();
    expect(kept.destroyed).toBe(false);
    expect(stdinReader({ format: 'jsonl' }).name).toBe('stdin (jsonl)');
  });

  it('names a bad format', () => {
    expect(() => stdinReader({ format: 'xml' as 'csv' })).toThrow(new ValueError(`stdinReader: format must be 'jsonl' or 'csv' (got "xml")`));
  });
});
