// Child process of the NATS SIGKILL test: a stand-in trainer. It reads batches from a NATS reader,
// "applies" each (its state is the list of applied sequences), acks it, and every few batches writes a
// checkpoint {position, applied} atomically, as a real run writes weights + source positions. The test
// kills it with SIGKILL mid-stream; everything after the last checkpoint is lost, as in a real crash.
// Plain .mjs started with `node`, so the pid the test kills is the consumer itself (no npx/tsx wrapper).
// argv: <config JSON> <folder> <batch size> <checkpoint every N batches>
import { appendFileSync, closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const { tsImport } = await import('tsx/esm/api');
const { openNatsReader } = await tsImport('../../pipelines/sources/nats.ts', import.meta.url);

const [configJson, dir, batchArg, everyArg] = process.argv.slice(2);
const batchSize = Number(batchArg);
const every = Number(everyArg);
const reader = await openNatsReader(JSON.parse(configJson), { batchSize });
const applied = [];
let position = 0;
let batches = 0;

function checkpoint() {
  const tmp = join(dir, 'checkpoint.json.tmp');
  const fd = openSync(tmp, 'w');
  writeSync(fd, JSON.stringify({ position, applied }));
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, join(dir, 'checkpoint.json'));
}

for (;;) {
  const batch = [];
  while (batch.length < batchSize) {
    const r = await reader.next();
    if (r === null) break;
    batch.push(r);
  }
  if (batch.length === 0) break;
  for (const r of batch) applied.push(r.value.seq); // the update
  position = batch[batch.length - 1].position;
  await reader.ack(batch); // acked once applied, before the checkpoint: acks run ahead of checkpoints
  appendFileSync(join(dir, 'acked.log'), batch.map((r) => r.value.seq).join('\n') + '\n');
  if (++batches % every === 0) checkpoint();
  await new Promise((resolve) => setTimeout(resolve, 15)); // a training step's time, so the kill lands mid-stream
}
checkpoint();
await reader.close();
