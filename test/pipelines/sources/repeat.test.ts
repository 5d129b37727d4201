import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import type { ReaderPosition, RecordReader, SourceRecord } from '../../../pipelines/records.js';
import { CsvReader } from '../../../pipelines/sources/csv.js';
import { RepeatReader } from '../../../pipelines/sources/repeat.js';
import { tempDir } from './helpers.js';

const dir = tempDir('streamgrad-repeat-');

/** Values in memory; positions { offset: records read }; it logs opens, acks and closes. */
class ListReader implements RecordReader {
  readonly name = 'list';
  private i: number;
  closed = false;
  readonly acked: number[] = [];

  constructor(
    private readonly values: readonly unknown[],
    from: ReaderPosition | undefined,
  ) {
    this.i = (from as { offset?: number } | undefined)?.offset ?? 0;
  }

  async next(): Promise<SourceRecord | null> {
    if (this.i === this.values.length) return null;
    const index = ++this.i;
    return { value: this.values[index - 1], index, bytes: 1, position: { offset: index }, ackHandle: index };
  }

  async ack(records: readonly SourceRecord[]): Promise<void> {
    this.acked.push(...records.map((r) => r.ackHandle as number));
  }

  position(): ReaderPosition {
    return { offset: this.i };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

const view = (r: SourceRecord) => ({ value: r.value, index: r.index, position: r.position });

async function readAll(r: RecordReader, limit = Infinity): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  while (out.length < limit) {
    const rec = await r.next();
    if (rec === null) break;
    out.push(rec);
  }
  return out;
}

describe('RepeatReader', () => {
  test.prop([fc.array(fc.integer(), { maxLength: 12 }), fc.integer({ min: 1, max: 4 }), fc.nat(), fc.boolean()], { numRuns: 80 })(
    'reading E epochs straight equals reading k records, checkpointing the position as JSON and resuming there',
    async (values, epochs, k0, pause) => {
      const open = (from: ReaderPosition | undefined) => new ListReader(values, from);
      const read = async (r: RepeatReader, limit = Infinity): Promise<SourceRecord[]> => {
        const out: SourceRecord[] = [];
        for (;;) {
          out.push(...(await readAll(r, limit - out.length)));
          if (out.length >= limit || !pause || !(await r.nextEpoch())) return out;
        }
      };
      const straight = await read(new RepeatReader(open, { epochs, pauseAtEpochEnd: pause }));
      expect(straight.map((r) => r.value)).toEqual(Array.from({ length: epochs }, () => values).flat());
      expect(straight.map((r) => r.index)).toEqual(straight.map((_, i) => i + 1));
      const k = k0 % (straight.length + 1);
      const first = new RepeatReader(open, { epochs, pauseAtEpochEnd: pause });
      const head = await read(first, k);
      const at = JSON.parse(JSON.stringify(first.position())) as ReaderPosition;
      if (k > 0) expect(at).toEqual(head.at(-1)!.position);
      await first.close();
      const rest = await read(new RepeatReader(open, { epochs, from: at, pauseAtEpochEnd: pause }));
      expect([...head, ...rest].map(view)).toEqual(straight.map(view));
    },
  );

  it('goes over a CSV file epoch after epoch, the header read each time, and resumes after any record', async () => {
    const file = join(dir, 'rows.csv');
    writeFileSync(file, 'a,b\n1,x\n2,y\n3,z\n');
    const open = (from: ReaderPosition | undefined) => new CsvReader(file, { from });
    const straight = await readAll(new RepeatReader(open, { epochs: 2 }));
    expect(straight.map((r) => [r.index, (r.value as { a: string }).a, r.position])).toEqual([
      [1, '1', { epoch: 1, inner: { offset: 8, record: 1 }, record: 1 }],
      [2, '2', { epoch: 1, inner: { offset: 12, record: 2 }, record: 2 }],
      [3, '3', { epoch: 1, inner: { offset: 16, record: 3 }, record: 3 }],
      [4, '1', { epoch: 2, inner: { offset: 8, record: 1 }, record: 4 }],
      [5, '2', { epoch: 2, inner: { offset: 12, record: 2 }, record: 5 }],
      [6, '3', { epoch: 2, inner: { offset: 16, record: 3 }, record: 6 }],
    ]);
    for (let k = 0; k <= straight.length; k++) {
      const from = k === 0 ? undefined : straight[k - 1]!.position;
      const rest = await readAll(new RepeatReader(open, { epochs: 2, from }));
      expect(rest.map(view), `resumed after ${k}`).toEqual(straight.slice(k).map(view));
    }
  });

  it('pauses at each epoch end, looks ahead past refused records without moving its position', async () => {
    const opened: ListReader[] = [];
    const r = new RepeatReader(
      (from) => {
        const l = new ListReader(['a', 'bad', 'bad', 'b', 'bad'], from);
        opened.push(l);
        return l;
      },
      { epochs: 2, pauseAtEpochEnd: true },
    );
    const ok = (rec: SourceRecord): boolean => rec.value !== 'bad';
    expect(r.epoch).toBe(1);
    expect((await r.next())?.value).toBe('a');
    expect(await r.atEpochEnd(ok)).toBe(false); // held: bad, bad, b
    expect(r.position()).toEqual({ epoch: 1, inner: { offset: 1 }, record: 1 });
    expect((await readAll(r, 3)).map((x) => [x.value, x.index])).toEqual([['bad', 2], ['bad', 3], ['b', 4]]);
    expect(await r.atEpochEnd(ok)).toBe(true); // only a refused record was left
    expect((await r.next())?.value).toBe('bad');
    expect(await r.next()).toBeNull();
    expect(await r.next()).toBeNull(); // paused until nextEpoch()
    expect(r.position()).toEqual({ epoch: 1, inner: { offset: 5 }, record: 5 });
    expect(await r.nextEpoch()).toBe(true);
    expect(opened[0]!.closed).toBe(true);
    expect(r.position()).toEqual({ epoch: 2, inner: null, record: 5 });
    const second = await readAll(r);
    expect(second.map((x) => x.index)).toEqual([6, 7, 8, 9, 10]);
    await r.ack(second.slice(0, 2));
    expect(opened[1]!.acked).toEqual([1, 2]); // the inner reader's own records
    expect(await r.nextEpoch()).toBe(false);
    expect(await r.next()).toBeNull();
  });

  it('refuses bad options and positions with messages naming them', () => {
    const open = (from: ReaderPosition | undefined) => new ListReader([1], from);
    expect(() => new RepeatReader(open, { epochs: 0 })).toThrow('RepeatReader: epochs must be an integer >= 1 (got 0)');
    expect(() => new RepeatReader(open, { epochs: 2, from: { epoch: 3, inner: null } as never })).toThrow(
      'RepeatReader: cannot resume from {"epoch":3,"inner":null}: expected { epoch: integer in [1, 2], inner: a position or null, record?: integer >= 0 }',
    );
    expect(() => new RepeatReader(open, { epochs: 2, from: { offset: 3 } })).toThrow('RepeatReader: cannot resume from {"offset":3}');
  });
});
