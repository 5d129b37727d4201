import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { loadIris } from '../../src/data/dataset.js';
import { SourceError, ValueError } from '../../src/errors.js';
import { noGrad } from '../../src/autograd/engine.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { DEAD_LETTER_RECORD_CHARS, JsonlDeadLetterSink, MemoryDeadLetterSink, keepDeadLetters } from '../../pipelines/dead-letter.js';
import type { RecordMapping } from '../../pipelines/mapping.js';
import { RecordBatchSource } from '../../pipelines/record-source.js';
import type { RecordReader, SourceRecord } from '../../pipelines/records.js';
import type { SlotWriter } from '../../pipelines/source.js';
import { irisMapping, irisReader } from '../../pipelines/sources/bundled.js';
import { CsvReader } from '../../pipelines/sources/csv.js';
import { JsonlReader } from '../../pipelines/sources/jsonl.js';
import { trainParallel } from '../../pipelines/train.js';
import { drain, rejection, tempDir } from './sources/helpers.js';

const dir = tempDir('streamgrad-records-');

/** A reader over values given in memory; positions are { offset: index }; it logs acks and closing. */
class ListReader implements RecordReader {
  readonly name = 'list';
  readonly replays = true;
  readonly acked: number[][] = [];
  closed = false;
  private i = 0;
  failAt: number | null = null;

  constructor(
    private readonly values: unknown[],
    private readonly sizes: number[] = [],
  ) {}

  async next(): Promise<SourceRecord | null> {
    if (this.failAt === this.i) {
      this.failAt = null;
      throw new SourceError('list: connection lost');
    }
    if (this.i === this.values.length) return null;
    const index = ++this.i;
    return { value: this.values[index - 1], index, bytes: this.sizes[index - 1] ?? 10, position: { offset: index } };
  }

  async ack(records: readonly SourceRecord[]): Promise<void> {
    this.acked.push(records.map((r) => r.index));
  }

  position(): { offset: number } {
    return { offset: this.i };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

const M: RecordMapping = { features: [{ field: 'a', type: 'number' }, { field: 'b', type: 'number' }], target: { field: 'y', type: 'class', classes: 2 } };
const good = (k: number): unknown => ({ a: k, b: -k, y: k % 2 });

function slot(rows: number, sampleSize = 2, targetSize = 0): SlotWriter & { x: Float32Array } {
  return { x: new Float32Array(rows * sampleSize), y: targetSize === 0 ? new Int32Array(rows) : new Float32Array(rows * targetSize), sampleSize, targetSize };
}

/** Fills until the source ends; returns the `a` feature of every sample, batch by batch. */
async function fillAll(src: RecordBatchSource, max: number): Promise<number[][]> {
  const out: number[][] = [];
  const s = slot(max);
  for (;;) {
    const n = await src.fill(s, max);
    if (n === 0) return out;
    out.push(Array.from({ length: n }, (_, i) => s.x[i * 2]!));
  }
}

describe('RecordBatchSource', () => {
  it('writes valid records into rows 0..n-1 and sends each bad one to the dead-letter sink with its reason', async () => {
    const reader = new ListReader([good(1), { a: 'x', b: 0, y: 0 }, good(2), { a: 1, b: 2, y: 5 }, { b: 1, y: 0 }, good(3), good(4)], [10, 10, 10, 10, 10, 10, 3000]);
    const sink = new MemoryDeadLetterSink();
    const src = new RecordBatchSource(reader, M, sink, { maxRecordBytes: 2000 });
    const s = slot(4);
    expect(await src.fill(s, 4)).toBe(3);
    expect(Array.from(s.x.subarray(0, 6))).toEqual([1, -1, 2, -2, 3, -3]);
    expect(Array.from((s.y as Int32Array).subarray(0, 3))).toEqual([1, 0, 1]);
    expect(sink.entries).toEqual([
      { source: 'list', index: 2, position: { offset: 2 }, reason: 'feature \'a\' must be a finite number (got "x")', record: { a: 'x', b: 0, y: 0 } },
      { source: 'list', index: 4, position: { offset: 4 }, reason: "target 'y' must be an integer class in [0, 2) (got 5)", record: { a: 1, b: 2, y: 5 } },
      { source: 'list', index: 5, position: { offset: 5 }, reason: "feature 'a' is missing", record: { b: 1, y: 0 } },
      { source: 'list', index: 7, position: { offset: 7 }, reason: '3000 bytes, above the limit of 2000 bytes', record: { a: 4, b: -4, y: 0 } },
    ]);
    expect(src.counters).toEqual({ read: 7, accepted: 3, rejected: 4, byReason: { 'wrong type': 1, 'class out of range': 1, 'missing field': 1, oversized: 1 } });
  });

  it('cuts a dead-letter record to a few KB', async () => {
    const sink = new MemoryDeadLetterSink();
    const big = { a: 'x'.repeat(10_000), b: 1, y: 0 };
    const src = new RecordBatchSource(new ListReader([big]), M, sink);
    await fillAll(src, 2);
    expect(sink.entries[0]!.record).toBe(`${JSON.stringify(big).slice(0, DEAD_LETTER_RECORD_CHARS)}…`);
  });

  test.prop([fc.array(fc.boolean(), { maxLength: 60 }), fc.integer({ min: 1, max: 7 })], { numRuns: 100 })(
    'loses nothing: every valid record lands in exactly one batch, in order, and the counters add up at every fill',
    async (valid, max) => {
      const values = valid.map((ok, i) => (ok ? good(i) : { a: i }));
      const sink = new MemoryDeadLetterSink();
      const src = new RecordBatchSource(new ListReader(values), M, sink, { maxBadRatio: 1 });
      const s = slot(max);
      const seen: number[] = [];
      for (;;) {
        const n = await src.fill(s, max);
        const c = src.counters;
        expect(c.read).toBe(c.accepted + c.rejected);
        expect(Object.values(c.byReason).reduce((a, b) => a + b, 0)).toBe(c.rejected);
        if (n === 0) break;
        // Every batch is full but the last.
        if (c.read < values.length) expect(n).toBe(max);
        for (let i = 0; i < n; i++) seen.push(s.x[i * 2]!);
      }
      expect(seen).toEqual(valid.flatMap((ok, i) => (ok ? [i] : [])));
      expect(sink.entries.map((e) => e.index)).toEqual(valid.flatMap((ok, i) => (ok ? [] : [i + 1])));
      expect(src.counters).toEqual({ read: valid.length, accepted: seen.length, rejected: valid.length - seen.length, byReason: seen.length === valid.length ? {} : { 'missing field': valid.length - seen.length } });
    },
  );

  it('stops once the rejected share passes the limit, after the minimum count, naming the last bad record; and stays stopped', async () => {
    // 31 of the first 200 are bad, record 200 the 31st; the share is judged from record 200 on.
    const values = Array.from({ length: 300 }, (_, i) => (i >= 170 && i < 200 ? { a: 'abc', b: 0, y: 0 } : i === 10 ? { a: 1, b: 1, y: 9 } : good(i)));
    const sink = new MemoryDeadLetterSink();
    const src = new RecordBatchSource(Object.assign(new ListReader(values), { name: "csv file 'x.csv'" }), M, sink, { minRecordsForRatio: 200 });
    const s = slot(64);
    expect(await src.fill(s, 64)).toBe(64);
    expect(await src.fill(s, 64)).toBe(64);
    const message = `csv file 'x.csv': 31 of 200 records rejected (15.5%), above the limit of 10% — last: record 200: feature 'a' must be a finite number (got "abc")`;
    expect(await rejection(src.fill(s, 64))).toEqual(new SourceError(message));
    expect(src.counters).toEqual({ read: 200, accepted: 169, rejected: 31, byReason: { 'class out of range': 1, 'wrong type': 30 } });
    expect(sink.entries).toHaveLength(31);
    expect(await rejection(src.fill(s, 64))).toEqual(new SourceError(message));
    expect(src.counters.read).toBe(200);
  });

  it('does not judge the share before minRecordsForRatio records', async () => {
    const values = [{ a: 'x' }, { a: 'x' }, ...Array.from({ length: 20 }, (_, i) => good(i))];
    const src = new RecordBatchSource(new ListReader(values), M, new MemoryDeadLetterSink(), { minRecordsForRatio: 20, maxBadRatio: 0.1 });
    expect((await fillAll(src, 8)).flat()).toHaveLength(20);
    const early = new RecordBatchSource(new ListReader(values), M, new MemoryDeadLetterSink(), { minRecordsForRatio: 10, maxBadRatio: 0.1 });
    expect((await rejection(early.fill(slot(8), 8))).message).toBe("list: 2 of 10 records rejected (20%), above the limit of 10% — last: record 2: feature 'a' must be a finite number (got \"x\")");
  });

  it('keeps the records of a fill that failed midway for the next fill', async () => {
    const reader = new ListReader(Array.from({ length: 10 }, (_, i) => good(i)));
    reader.failAt = 5;
    const src = new RecordBatchSource(reader, M, new MemoryDeadLetterSink());
    const s = slot(4);
    expect(await src.fill(s, 4)).toBe(4);
    expect(await rejection(src.fill(s, 4))).toEqual(new SourceError('list: connection lost'));
    expect(await fillAll(src, 4)).toEqual([[4, 5, 6, 7], [8, 9]]);
    expect(src.counters).toEqual({ read: 10, accepted: 10, rejected: 0, byReason: {} });
  });

  it('acks each batch\'s records when it is applied, in any order, rejects once dead-lettered, and moves the position over the applied prefix only', async () => {
    // Batches of 2: [1,2] [4,5] (3 rejected between them) [6,7] [8]; 9 is rejected after the last batch.
    const values = [good(1), good(2), { a: 'bad' }, good(4), good(5), good(6), good(7), good(8), { a: 'bad' }];
    const reader = new ListReader(values);
    const src = new RecordBatchSource(reader, M, new MemoryDeadLetterSink(), { maxBadRatio: 1 });
    expect(src.appliedPosition()).toEqual({ offset: 0 });
    expect(await fillAll(src, 2)).toEqual([[1, 2], [4, 5], [6, 7], [8]]);
    expect(src.deadLettered()).toBe(0); // both rejects are past the position
    // Rejects are acked as soon as they are dead-lettered: no update will use them, and held they would block a broker.
    expect(reader.acked).toEqual([[3], [9]]);
    await src.applied(1);
    expect(reader.acked).toEqual([[3], [9], [4, 5]]);
    expect(src.appliedPosition()).toEqual({ offset: 0 });
    expect(src.deadLettered()).toBe(0);
    await src.applied(0);
    expect(src.appliedPosition()).toEqual({ offset: 5 });
    expect(src.deadLettered()).toBe(1);
    await src.applied(3);
    expect(src.position()).toEqual({ offset: 5 });
    await src.applied(2);
    // Every batch applied, and the source ended: the rejected record after the last batch is consumed too.
    expect(src.appliedPosition()).toEqual({ offset: 9 });
    expect(src.deadLettered()).toBe(2);
    expect(reader.acked).toEqual([[3], [9], [4, 5], [1, 2], [8], [6, 7]]);
    expect(await rejection(src.applied(2))).toEqual(new ValueError('list: applied(2) for a batch that was already applied'));
    expect(await rejection(src.applied(4))).toEqual(new ValueError('list: applied(4) for a batch that was never filled'));
  });

  it('counts the dead letters up to its position when a batch ends short of the last record read (a failed fill\'s records carried over)', async () => {
    const bad = { a: 'bad' };
    const reader = new ListReader([good(1), bad, good(3), bad, good(5), good(6)]);
    reader.failAt = 5;
    const src = new RecordBatchSource(reader, M, new MemoryDeadLetterSink(), { maxBadRatio: 1, deadLettered: 7 });
    const s = slot(6);
    expect(await rejection(src.fill(s, 6))).toEqual(new SourceError('list: connection lost'));
    expect(await src.fill(s, 2)).toBe(2); // records 1 and 3, carried; 5 stays carried
    await src.applied(0);
    expect([src.position(), src.deadLettered()]).toEqual([{ offset: 3 }, 7 + 1]);
    expect(await src.fill(s, 2)).toBe(2); // 5, then 6
    await src.applied(1);
    expect([src.position(), src.deadLettered()]).toEqual([{ offset: 6 }, 7 + 2]);
    expect(() => new RecordBatchSource(reader, M, new MemoryDeadLetterSink(), { deadLettered: -1 })).toThrow(new ValueError('recordSource(list): deadLettered must be an integer >= 0 (got -1)'));
  });

  it('counts no dead letters to cut when its reader never reads a record twice (a stream)', async () => {
    const src = new RecordBatchSource(new JsonlReader(Readable.from([`${JSON.stringify(good(1))}\n{"a":\n`])), M, new MemoryDeadLetterSink(), { maxBadRatio: 1 });
    expect(await fillAll(src, 2)).toEqual([[1]]);
    await src.applied(0);
    expect(src.deadLettered()).toBeNull();
  });

  it('moves the position before its first await, as a checkpoint reads it', async () => {
    const src = new RecordBatchSource(new ListReader([good(1), good(2)]), M, new MemoryDeadLetterSink());
    await src.fill(slot(1), 1);
    const p = src.applied(0);
    expect(src.position()).toEqual({ offset: 1 });
    await p;
  });

  test.prop([fc.array(fc.boolean(), { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 5 }), fc.array(fc.boolean(), { maxLength: 12 }), fc.boolean()], { numRuns: 80 })(
    'a JSONL reader resumed from appliedPosition() reads the records of the batches after the applied prefix, and its dead letters after the ones counted',
    async (valid, max, applied, reverse) => {
      const p = join(dir, `resume-${Math.random().toString(36).slice(2)}.jsonl`);
      writeFileSync(p, valid.map((ok, i) => (ok ? JSON.stringify(good(i)) : `{"a": ${i}`)).join('\n'));
      const wholeDead = new MemoryDeadLetterSink();
      const whole = await fillAll(new RecordBatchSource(new JsonlReader(p), M, wholeDead, { maxBadRatio: 1 }), max);
      const firstDead = new MemoryDeadLetterSink();
      const first = new RecordBatchSource(new JsonlReader(p), M, firstDead, { maxBadRatio: 1 });
      const s = slot(max);
      const filled = Math.min(applied.length, whole.length);
      for (let b = 0; b < filled; b++) await first.fill(s, max);
      // Some batches applied, in fill order or reversed (Hogwild): the position follows the applied prefix.
      const steps = [...Array(filled).keys()].filter((b) => applied[b]);
      for (const b of reverse ? steps.reverse() : steps) await first.applied(b);
      let prefix = 0;
      while (prefix < filled && applied[prefix]) prefix++;
      // A resumed run keeps the entries counted up to the position: with the resumed reader's, each reject once.
      const kept = first.deadLettered()!;
      const resumedDead = new MemoryDeadLetterSink();
      const resumed = new RecordBatchSource(new JsonlReader(p, { from: first.appliedPosition() ?? undefined }), M, resumedDead, { maxBadRatio: 1, deadLettered: kept });
      expect(await fillAll(resumed, max)).toEqual(whole.slice(prefix));
      const where = (entries: { position: unknown }[]) => entries.map((e) => JSON.stringify(e.position));
      expect([...where(firstDead.entries.slice(0, kept)), ...where(resumedDead.entries)]).toEqual(where(wholeDead.entries));
      await first.close();
    },
  );

  it('checks the CSV header against the mapping before the first record, naming the source and the missing columns', async () => {
    const p = join(dir, 'people.csv');
    writeFileSync(p, 'a,name\n1,x\n');
    const src = new RecordBatchSource(new CsvReader(p), M, new MemoryDeadLetterSink());
    expect(await rejection(src.fill(slot(2), 2))).toEqual(new SourceError(`csv file '${p}': the header lacks columns 'b', 'y' that the mapping reads (header: a, name)`));
    await src.close();
  });

  it('checks the batch slot against the mapping', async () => {
    const src = new RecordBatchSource(new ListReader([]), M, new MemoryDeadLetterSink());
    expect(await rejection(src.fill(slot(2, 3), 2))).toEqual(new ValueError('list: the mapping writes 2 values per sample, the batch slot expects 3'));
    expect(await rejection(src.fill(slot(2, 2, 1), 2))).toEqual(new ValueError("list: the mapping's target is a class index, the loss expects 1 values per sample"));
    const dense = new RecordBatchSource(new ListReader([]), { ...M, target: { field: 'y', type: 'vector', length: 3 } }, new MemoryDeadLetterSink());
    expect(await rejection(dense.fill(slot(2), 2))).toEqual(new ValueError("list: the mapping's target has 3 values, the loss expects class indices"));
    expect(() => new RecordBatchSource(new ListReader([]), M, new MemoryDeadLetterSink(), { maxBadRatio: 2 })).toThrow(new ValueError('recordSource(list): maxBadRatio must be a number in [0, 1] (got 2)'));
  });

  it('closes the reader and the sink', async () => {
    const reader = new ListReader([]);
    const sink = new MemoryDeadLetterSink();
    await new RecordBatchSource(reader, M, sink).close();
    expect([reader.closed, sink.closed]).toEqual([true, true]);
  });
});

describe('keepDeadLetters', () => {
  it('counts the entries of a file, and with keep cuts it back to them and drops a line cut short', () => {
    const p = join(dir, 'keep.jsonl');
    expect(keepDeadLetters(p)).toBe(0); // no file
    writeFileSync(p, '{"i":1}\n{"i":2}\n{"i":3}\n{"i":');
    expect(keepDeadLetters(p)).toBe(3);
    expect(readFileSync(p, 'utf8')).toBe('{"i":1}\n{"i":2}\n{"i":3}\n{"i":'); // counting changes nothing
    expect(keepDeadLetters(p, 5)).toBe(3);
    expect(readFileSync(p, 'utf8')).toBe('{"i":1}\n{"i":2}\n{"i":3}\n');
    expect(keepDeadLetters(p, 1)).toBe(1);
    expect(readFileSync(p, 'utf8')).toBe('{"i":1}\n');
    expect(keepDeadLetters(p, 0)).toBe(0);
    expect(readFileSync(p, 'utf8')).toBe('');
  });
});

describe('JsonlDeadLetterSink', () => {
  it('appends one JSON line per entry, flushed when close resolves, and creates no file without entries', async () => {
    const p = join(dir, 'dead.jsonl');
    writeFileSync(p, '{"earlier":true}\n');
    const sink = new JsonlDeadLetterSink(p);
    const e1 = { source: 's', index: 3, position: { offset: 40 }, reason: 'invalid JSON: x', record: '{"a":' };
    const e2 = { source: 's', index: 9, position: { offset: 90 }, reason: "feature 'a' is missing", record: { b: 'ü\n' } };
    await Promise.all([sink.write(e1), sink.write(e2)]);
    await sink.close();
    expect(readFileSync(p, 'utf8')).toBe(`{"earlier":true}\n${JSON.stringify(e1)}\n${JSON.stringify(e2)}\n`);
    expect(await rejection(sink.write(e1))).toEqual(new SourceError(`dead-letter file '${p}': write after close (record 3 of s)`));
    const none = join(dir, 'none.jsonl');
    await new JsonlDeadLetterSink(none).close();
    expect(() => readFileSync(none)).toThrow(/ENOENT/);
  });
});

describe('trainParallel over a RecordBatchSource', () => {
  it('trains an Iris MLP from a JSONL file with 2 workers to > 80% accuracy; malformed lines go to the dead-letter file', async () => {
    // 20 shuffled passes over Iris as JSON lines, with 5 malformed or invalid lines among them.
    const lines: string[] = [];
    for (let epoch = 0; epoch < 20; epoch++) for (const r of await drain(irisReader({ seed: epoch }))) lines.push(JSON.stringify(r.value));
    const bad = ['{"sepalLength": 5.1,', '{"sepalLength":"wide","sepalWidth":1,"petalLength":1,"petalWidth":1,"species":"setosa"}', '[1,2,3,4]', '{"sepalLength":1,"sepalWidth":1,"petalLength":1,"petalWidth":1,"species":"rose"}', 'not json'];
    bad.forEach((b, i) => lines.splice(400 * (i + 1), 0, b));
    const data = join(dir, 'iris.jsonl');
    const dead = join(dir, 'iris-dead.jsonl');
    writeFileSync(data, `${lines.join('\n')}\n`);
    const source = new RecordBatchSource(new JsonlReader(data), irisMapping, new JsonlDeadLetterSink(dead));
    const r = await trainParallel({
      model: { layers: [{ type: 'Linear', inFeatures: 4, outFeatures: 16 }, { type: 'ReLU' }, { type: 'Linear', inFeatures: 16, outFeatures: 3 }] },
      optimizer: { type: 'Adam', lr: 0.01 },
      inputShape: [4],
      source,
      batchSize: 32,
      workers: 2,
      shards: 2,
    }).done;
    expect(r.samples).toBe(3000);
    expect(source.counters).toEqual({ read: 3005, accepted: 3000, rejected: 5, byReason: { 'invalid JSON': 3, 'wrong type': 1, 'unknown category': 1 } });
    expect(source.appliedPosition()).toEqual({ offset: readFileSync(data).length, record: 3005 });
    const entries = readFileSync(dead, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { index: number; reason: string; record: unknown });
    expect(entries.map((e) => e.index)).toEqual([401, 801, 1201, 1601, 2001]);
    expect(entries.map((e) => e.record)).toEqual(['{"sepalLength": 5.1,', JSON.parse(bad[1]!), '[1,2,3,4]', JSON.parse(bad[3]!), 'not json']);
    expect(entries[3]!.reason).toBe('target \'species\' must be one of "setosa", "versicolor", "virginica" (got "rose")');
    // Train accuracy of the trained parameters over the 150 flowers.
    const iris = loadIris();
    const logits = noGrad(() => r.model.forward(new Tensor(iris.x, [150, 4])));
    let correct = 0;
    for (let i = 0; i < 150; i++) {
      const row = Array.from(logits.data.subarray(i * 3, i * 3 + 3));
      if (row.indexOf(Math.max(...row)) === iris.y[i]) correct++;
    }
    expect(correct / 150).toBeGreaterThan(0.8);
  }, 30_000);
});
