import { describe, expect, it } from 'vitest';
import { RecordBatchSource } from '../../../pipelines/record-source.js';
import { NatsDeadLetterSink } from '../../../pipelines/sources/nats-dead-letter.js';
import { openNatsReader } from '../../../pipelines/sources/nats.js';
import { NATS_SERVER, natsStream } from '../../helpers/services.js';

describe('NatsDeadLetterSink', () => {
  it('publishes each rejected record, with its reason, to a subject stored by a stream', async () => {
    const dead = await natsStream();
    const sink = new NatsDeadLetterSink({ servers: NATS_SERVER, subject: `${dead.name}.dead` });
    const src = await natsStream();
    await src.publish(JSON.stringify({ x: [1, 2], y: 0 }));
    await src.publish('not json');
    await src.publish(JSON.stringify({ x: [1], y: 1 }));
    await src.publish(JSON.stringify({ x: [3, 4], y: 1 }));
    const reader = await openNatsReader({ servers: NATS_SERVER, stream: src.name, consumer: 'c', idleTimeoutMs: 1000 }, { batchSize: 8 });
    const rs = new RecordBatchSource(reader, { features: [{ field: 'x', type: 'vector', length: 2 }], target: { field: 'y', type: 'class', classes: 2 } }, sink, { maxBadRatio: 1 });
    const x = new Float32Array(16);
    const y = new Int32Array(8);
    expect(await rs.fill({ x, y, sampleSize: 2, targetSize: 0 }, 8)).toBe(2);
    await rs.close();
    expect(rs.counters).toEqual({ read: 4, accepted: 2, rejected: 2, byReason: { 'invalid JSON': 1, 'wrong length': 1 } });
    const got = await openNatsReader({ servers: NATS_SERVER, stream: dead.name, consumer: 'check', idleTimeoutMs: 1000 }, { batchSize: 8 });
    const entries = [];
    for (let r = await got.next(); r !== null; r = await got.next()) entries.push(r.value);
    await got.close();
    expect(entries).toMatchObject([
      { source: `NATS stream '${src.name}' consumer 'c'`, index: 2, position: 2, record: 'not json' },
      { index: 3, position: 3, reason: "feature 'x' must have 2 values (got 1)", record: { x: [1], y: 1 } },
    ]);
  }, 30_000);

  it('names the subject when the server cannot be reached', async () => {
    const sink = new NatsDeadLetterSink({ servers: '127.0.0.1:1', subject: 'dead' });
    await expect(sink.write({ source: 's', index: 1, position: 1, reason: 'r', record: {} })).rejects.toThrow(/^dead-letter subject 'dead': cannot connect to 127\.0\.0\.1:1 \(/);
    await sink.close();
  });
});
