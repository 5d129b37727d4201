// Child process of the pipeline-level NATS crash test: a real training run (trainParallel, one worker,
// sync mode) reading a JetStream stream through RecordBatchSource, checkpointing every few steps and
// resuming from the latest checkpoint's source position. Every record whose update was applied is
// logged (the reader's ack is called exactly then) so the test can check exactly-once delivery.
// argv: <NATS source config JSON> <folder>
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const { tsImport } = await import('tsx/esm/api');
const here = import.meta.url;
const { openNatsReader } = await tsImport('../../pipelines/sources/nats.ts', here);
const { RecordBatchSource } = await tsImport('../../pipelines/record-source.ts', here);
const { MemoryDeadLetterSink } = await tsImport('../../pipelines/dead-letter.ts', here);
const { trainParallel } = await tsImport('../../pipelines/train.ts', here);
const { loadLatestCheckpoint } = await tsImport('../../src/io/checkpoint.ts', here);

const [configJson, dir] = process.argv.slice(2);
const batchSize = 8;
mkdirSync(dir, { recursive: true });
const ckdir = join(dir, 'ckpt');
const { checkpoint } = loadLatestCheckpoint(ckdir);
// The first run starts where the consumer stands; every run writes a checkpoint of its start, so a run
// killed before its first periodic checkpoint is resumed from that position, not from the consumer's
// acks (which its applied records moved past).
const from = checkpoint?.meta?.source?.position ?? undefined;
const reader = await openNatsReader(JSON.parse(configJson), { batchSize, from });
const log = join(dir, 'applied.log');
appendFileSync(log, `start ${reader.position()}\n`);
const ack = reader.ack.bind(reader);
reader.ack = (records) => {
  appendFileSync(log, records.map((r) => `${r.value.seq}\n`).join(''));
  return ack(records);
};
const source = new RecordBatchSource(
  reader,
  { features: [{ field: 'x', type: 'vector', length: 2 }], target: { field: 'y', type: 'class', classes: 2 } },
  new MemoryDeadLetterSink(),
);
const r = await trainParallel({
  model: { layers: [{ type: 'Linear', inFeatures: 2, outFeatures: 4 }, { type: 'Tanh' }, { type: 'Linear', inFeatures: 4, outFeatures: 2 }] },
  optimizer: { type: 'SGD', lr: 0.1 },
  inputShape: [2],
  source,
  batchSize,
  workers: 1,
  shards: 1,
  checkpoint: { dir: ckdir, everySteps: 3, keep: 2, atStart: true },
  resume: checkpoint ?? undefined,
}).done;
appendFileSync(log, `done ${r.nextStep}\n`);
