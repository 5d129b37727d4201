// Streaming measurements against the local NATS JetStream: backpressure (a producer far faster than
// training, memory and read-ahead watched) and throughput (records/s into training against the raw
// consume rate of the same reader). Used by `npm run bench` and, shortened, by the tests.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { ModelSpec } from '../src/nn/spec.js';
import { MemoryDeadLetterSink } from '../pipelines/dead-letter.js';
import type { RecordMapping } from '../pipelines/mapping.js';
import { RecordBatchSource } from '../pipelines/record-source.js';
import { openNatsReader } from '../pipelines/sources/nats.js';
import { trainParallel } from '../pipelines/train.js';

export const NATS = '127.0.0.1:4222';

interface Stream {
  name: string;
  publish(data: string): Promise<void>;
  /** Waits for every publish in flight to be stored. */
  flush(): Promise<void>;
  published(): number;
  info(consumer: string): Promise<{ ackPending: number; pending: number }>;
  close(): Promise<void>;
}

/** A fresh stream, deleted on close; publishes keep at most `inFlight` unacknowledged (by the server) at a time. */
async function openStream(prefix: string, inFlight = 256): Promise<Stream> {
  const name = `${prefix}-${process.pid}-${Date.now().toString(36)}`;
  const nc = await connect({ servers: NATS });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [`${name}.>`] });
  const js = jsm.jetstream();
  const pending = new Set<Promise<unknown>>();
  let count = 0;
  return {
    name,
    async publish(data) {
      while (pending.size >= inFlight) await Promise.race(pending);
      const p = js.publish(`${name}.data`, data).then(() => {
        pending.delete(p);
      });
      pending.add(p);
      count++;
    },
    async flush() {
      await Promise.all(pending);
    },
    published: () => count,
    async info(consumer) {
      const i = await jsm.consumers.info(name, consumer);
      return { ackPending: i.num_ack_pending, pending: i.num_pending };
    },
    async close() {
      await jsm.streams.delete(name).catch(() => {});
      await nc.close();
    },
  };
}

const mib = (b: number): number => b / (1 << 20);

export interface BackpressureResult {
  seconds: number;
  published: number;
  publishPerSecond: number;
  trainPerSecond: number;
  /** How many times faster the producer ran than training. */
  speedRatio: number;
  applied: number;
  drained: number;
  /** Published records neither applied nor still waiting in the stream (must be 0). */
  lost: number;
  duplicates: number;
  /** Highest count of messages delivered to the trainer and not yet acked, sampled. */
  maxAckPending: number;
  /** The bound: messages in batch slots plus the reader's credit window. */
  readAheadBound: number;
  rssGrowthMiB: number;
  heapGrowthMiB: number;
}

/**
 * A producer publishing as fast as JetStream takes it for `seconds`, while a trainer in its own process
 * (one worker, batch 16, two batch slots) consumes the same stream; then the trainer stops and what it
 * did not take is drained. The trainer reports its memory after a full GC once a second.
 */
export async function backpressure(seconds: number): Promise<BackpressureResult> {
  const s = await openStream('sg-bp');
  const batchSize = 16;
  const batchSlots = 2;
  try {
    const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(new URL('./backpressure-trainer.mjs', import.meta.url)), s.name, String(batchSize), String(batchSlots)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines: Record<string, unknown>[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const memory = () => lines.filter((l) => l.kind === 'memory') as { rss: number; heap: number; applied: number }[];
    // The producer starts once the trainer runs (its first memory line), so start-up is not counted.
    while (memory().length === 0) {
      if (child.exitCode !== null) throw new Error(`backpressure trainer exited with ${child.exitCode}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    let stop = false;
    const t0 = performance.now();
    const producer = (async () => {
      for (let seq = 1; !stop; seq++) await s.publish(wideRecord(seq));
      await s.flush();
    })();
    let maxAckPending = 0;
    while (performance.now() - t0 < seconds * 1000) {
      await new Promise((r) => setTimeout(r, 200));
      maxAckPending = Math.max(maxAckPending, (await s.info('trainer')).ackPending);
    }
    stop = true;
    await producer;
    const elapsed = (performance.now() - t0) / 1000;
    const during = memory();
    child.stdin!.end(); // the trainer stops: batches in flight are applied, the rest stays in the stream
    const code = await exited;
    if (code !== 0) throw new Error(`backpressure trainer exited with ${code}`);
    const done = lines.find((l) => l.kind === 'done') as { applied: number[]; window: number };
    // Memory from the trainer's first report after its first two steps to its largest: the first steps
    // touch the parameters', gradients' and arena's pages for the first time (shared memory is committed
    // on first touch), which is start-up, not growth.
    const warm = during.find((m) => m.applied >= 2 * batchSize) ?? during[0]!;
    const rssGrowth = Math.max(...during.map((m) => m.rss)) - warm.rss;
    const heapGrowth = Math.max(...during.map((m) => m.heap)) - warm.heap;
    const trainedDuring = during.at(-1)!.applied - during[0]!.applied;
    const rest = await openNatsReader({ servers: NATS, stream: s.name, consumer: 'trainer', idleTimeoutMs: 1000, window: 512 }, { batchSize: 512 });
    const drained: number[] = [];
    for (let r = await rest.next(); r !== null; r = await rest.next()) {
      drained.push((r.value as { seq: number }).seq);
      await rest.ack([r]);
    }
    await rest.close();
    const seen = new Set<number>();
    let duplicates = 0;
    for (const q of [...done.applied, ...drained]) {
      if (seen.has(q)) duplicates++;
      seen.add(q);
    }
    let lost = 0;
    for (let q = 1; q <= s.published(); q++) if (!seen.has(q)) lost++;
    return {
      seconds: elapsed,
      published: s.published(),
      publishPerSecond: s.published() / elapsed,
      trainPerSecond: trainedDuring / elapsed,
      speedRatio: s.published() / Math.max(1, trainedDuring),
      applied: done.applied.length,
      drained: drained.length,
      lost,
      duplicates,
      maxAckPending,
      readAheadBound: batchSlots * batchSize + done.window,
      rssGrowthMiB: mib(rssGrowth),
      heapGrowthMiB: mib(heapGrowth),
    };
  } finally {
    await s.close();
  }
}

const wideRecord = (seq: number): string => JSON.stringify({ seq, x: Array.from({ length: 64 }, (_, i) => ((seq * 31 + i * 7) % 97) / 97 - 0.5), y: seq % 10 });

export interface ThroughputResult {
  name: string;
  records: number;
  /** The reader alone: next() and ack per batch, no training. */
  rawPerSecond: number;
  trainPerSecond: number;
}

/** Records/s from JetStream into training, against the raw consume rate of the same reader. */
export async function throughput(name: string, spec: ModelSpec, mapping: RecordMapping, make: (seq: number) => string, records: number, batchSize: number, workers: number): Promise<ThroughputResult> {
  const s = await openStream('sg-tp', 1024);
  try {
    for (let seq = 1; seq <= records; seq++) await s.publish(make(seq));
    await s.flush();
    // Raw: the same reader, batch by batch, acked, no mapping and no training.
    const raw = await openNatsReader({ servers: NATS, stream: s.name, consumer: 'raw', idleTimeoutMs: 1000 }, { batchSize });
    let t0 = performance.now();
    let n = 0;
    let lastAt = t0;
    let batch = [];
    for (let r = await raw.next(); r !== null; r = await raw.next()) {
      batch.push(r);
      n++;
      lastAt = performance.now();
      if (batch.length === batchSize) {
        await raw.ack(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await raw.ack(batch);
    await raw.close();
    const rawPerSecond = n / ((lastAt - t0) / 1000);
    // Training: the same stream through RecordBatchSource and the worker pipeline, timed by its telemetry.
    const reader = await openNatsReader({ servers: NATS, stream: s.name, consumer: 'train', idleTimeoutMs: 1000, window: batchSize * 2 }, { batchSize });
    t0 = performance.now();
    const run = trainParallel({
      model: spec, optimizer: { type: 'SGD', lr: 0.01 }, inputShape: [mapping.features.reduce((a, f) => a + ('length' in f ? f.length : 1), 0)],
      batchSize, workers, source: new RecordBatchSource(reader, mapping, new MemoryDeadLetterSink()),
    });
    const seen: { samples: number; seconds: number }[] = [];
    run.telemetry$.subscribe((t) => seen.push({ samples: t.samples, seconds: t.seconds }));
    await run.done;
    // Up to the last full batch: the final, partial one waits out the reader's idle timeout (the stream's end).
    const last = seen.at(-2) ?? seen.at(-1)!;
    return { name, records: n, rawPerSecond, trainPerSecond: last.samples / last.seconds };
  } finally {
    await s.close();
  }
}

const SEED_SPEC: ModelSpec = { layers: [{ type: 'Linear', inFeatures: 2, outFeatures: 2 }, { type: 'Sigmoid' }, { type: 'Linear', inFeatures: 2, outFeatures: 2 }] };
const SEED_MAPPING: RecordMapping = { features: [{ field: 'x', type: 'vector', length: 2 }], target: { field: 'y', type: 'class', classes: 2 } };
const seedRecord = (seq: number): string => JSON.stringify({ seq, x: [seq % 2, (seq >> 1) % 2], y: (seq % 2) ^ ((seq >> 1) % 2) });
const MLP_SPEC: ModelSpec = {
  layers: [
    { type: 'Linear', inFeatures: 784, outFeatures: 256 }, { type: 'ReLU' },
    { type: 'Linear', inFeatures: 256, outFeatures: 128 }, { type: 'ReLU' },
    { type: 'Linear', inFeatures: 128, outFeatures: 10 },
  ],
};
const MLP_MAPPING: RecordMapping = { features: [{ field: 'x', type: 'vector', length: 784 }], target: { field: 'y', type: 'class', classes: 10 } };

/** The `stream` section of npm run bench: backpressure and JetStream-to-training throughput. */
export async function benchStream(opts: { quick: boolean }): Promise<import('./report.js').BenchSection> {
  const { loadMnistDigits } = await import('../src/data/dataset.js');
  const digits = loadMnistDigits();
  const mnistRecord = (seq: number): string => {
    const r = seq % digits.n;
    return JSON.stringify({ seq, x: Array.from(digits.x.subarray(r * 784, r * 784 + 784), (v) => Math.round(v * 1000) / 1000), y: digits.y[r] });
  };
  const bp = await backpressure(opts.quick ? 10 : 60);
  const tp = [
    await throughput('2-2-1 seed network, batch 32', SEED_SPEC, SEED_MAPPING, seedRecord, opts.quick ? 5_000 : 40_000, 32, 1),
    await throughput('MNIST MLP 784-256-128-10, batch 128, 2 workers', MLP_SPEC, MLP_MAPPING, mnistRecord, opts.quick ? 2_000 : 12_800, 128, 2),
  ];
  return {
    title: 'Streaming from NATS JetStream: backpressure and throughput',
    columns: ['measurement', 'value'],
    rows: [
      [`backpressure: producer vs training, ${Math.round(bp.seconds)} s`, `${Math.round(bp.publishPerSecond)} vs ${Math.round(bp.trainPerSecond)} records/s (${bp.speedRatio.toFixed(1)}× faster)`],
      ['backpressure: trainer memory growth (after full GCs)', `RSS +${bp.rssGrowthMiB.toFixed(1)} MiB, JS heap +${bp.heapGrowthMiB.toFixed(1)} MiB (limit 64 MiB)`],
      ['backpressure: most messages delivered and not yet acked', `${bp.maxAckPending} (bound: 2 batch slots × 16 + window 16 = ${bp.readAheadBound})`],
      ['backpressure: records lost / applied twice', `${bp.lost} / ${bp.duplicates} of ${bp.published} (${bp.applied} trained, ${bp.drained} still in the stream)`],
      ...tp.map((t): (string | number)[] => [
        `throughput: ${t.name}`,
        `${Math.round(t.trainPerSecond)} records/s training vs ${Math.round(t.rawPerSecond)} raw consume = ${(t.trainPerSecond / t.rawPerSecond).toFixed(2)}×`,
      ]),
    ],
    notes: [
      'Backpressure: one process publishes JSON records (64 features) to a JetStream stream as fast as the server acknowledges them, while a trainer in another process (MLP 64-2048-2048-2048-2048-10 on the TypeScript kernels, deliberately slow; one worker, batch 16, 2 batch slots, the reader\'s credit window = batch size) consumes the same durable consumer; the trainer samples its own memory after a full GC once a second. Then it stops and a plain reader drains the rest: every published sequence is either trained once or still in the stream.',
      'Throughput: records pre-published to a stream; "raw" is the same NatsReader with next() and one ack per batch and nothing else (no JSON mapping, no training); "training" is RecordBatchSource (JSON → validated mapping → batch slot) into trainParallel, records/s from its telemetry.',
      'Command: `npm run bench -- --only=stream` (60 s of backpressure); the tests run a 10 s form (test/pipelines/backpressure.test.ts).',
    ],
  };
}
