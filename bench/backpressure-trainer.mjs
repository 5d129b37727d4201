// The trainer of the backpressure measurement, in its own process so its memory is its own: trains a
// slow model from a NATS stream until stdin closes, printing one JSON line of memory (after a full GC)
// per second, then a last line with the sequences it applied. Started by bench/stream.ts with --expose-gc.
// argv: <stream> <batch size> <batch slots>
const { tsImport } = await import('tsx/esm/api');
const here = import.meta.url;
const { openNatsReader } = await tsImport('../pipelines/sources/nats.ts', here);
const { RecordBatchSource } = await tsImport('../pipelines/record-source.ts', here);
const { MemoryDeadLetterSink } = await tsImport('../pipelines/dead-letter.ts', here);
const { trainParallel } = await tsImport('../pipelines/train.ts', here);
const { setKernels } = await tsImport('../src/kernels/wasm/runtime.ts', here);

// Deliberately slow, so the producer stays more than 10× faster than training at any host speed seen
// here (the point of the measurement): three 2048×2048 layers on the plain TypeScript kernels (4-5×
// slower than the WebAssembly ones), so each step is compute-bound rather than bound by the acks' round trips.
// (With 1024-wide layers the ratio was ~31× on one host and 8.5× on another, whose producer was slower.)
setKernels('ts');

const [stream, batchArg, slotsArg] = process.argv.slice(2);
const batchSize = Number(batchArg);
const applied = [];
const reader = await openNatsReader({ servers: '127.0.0.1:4222', stream, consumer: 'trainer' }, { batchSize });
const ack = reader.ack.bind(reader);
reader.ack = (records) => {
  for (const r of records) applied.push(r.value.seq);
  return ack(records);
};
const ac = new AbortController();
process.stdin.on('end', () => ac.abort());
process.stdin.resume();
const run = trainParallel({
  model: {
    layers: [
      { type: 'Linear', inFeatures: 64, outFeatures: 2048 }, { type: 'ReLU' },
      { type: 'Linear', inFeatures: 2048, outFeatures: 2048 }, { type: 'ReLU' },
      { type: 'Linear', inFeatures: 2048, outFeatures: 2048 }, { type: 'ReLU' },
      { type: 'Linear', inFeatures: 2048, outFeatures: 2048 }, { type: 'ReLU' },
      { type: 'Linear', inFeatures: 2048, outFeatures: 10 },
    ],
  },
  optimizer: { type: 'SGD', lr: 0.01 }, inputShape: [64], batchSize, batchSlots: Number(slotsArg), workers: 1, shards: 1,
  source: new RecordBatchSource(reader, { features: [{ field: 'x', type: 'vector', length: 64 }], target: { field: 'y', type: 'class', classes: 10 } }, new MemoryDeadLetterSink()),
  signal: ac.signal,
});
const timer = setInterval(() => {
  global.gc();
  const m = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ kind: 'memory', rss: m.rss, heap: m.heapUsed, external: m.external, applied: applied.length })}\n`);
}, 1000);
await run.done;
clearInterval(timer);
process.stdout.write(`${JSON.stringify({ kind: 'done', applied, window: reader.window })}\n`);
