import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadIris } from '../../src/data/dataset.js';
import { loadLatestCheckpoint } from '../../src/io/checkpoint.js';
import type { ModelSpec } from '../../src/nn/spec.js';
import { MemoryDeadLetterSink } from '../../pipelines/dead-letter.js';
import type { RecordMapping } from '../../pipelines/mapping.js';
import type { ReaderPosition } from '../../pipelines/records.js';
import { RecordBatchSource } from '../../pipelines/record-source.js';
import { JsonlReader } from '../../pipelines/sources/jsonl.js';
import { type ParallelTrainOptions, trainParallel } from '../../pipelines/train.js';

const root = mkdtempSync(join(tmpdir(), 'sg-file-resume-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const iris = loadIris();
const file = join(root, 'iris.jsonl');
// Every flower three times, in a fixed scrambled order, plus two malformed lines to dead-letter on the way.
const lines: string[] = [];
for (let k = 0; k < 3 * iris.n; k++) {
  const r = (k * 61) % iris.n;
  lines.push(JSON.stringify({ f: Array.from(iris.x.subarray(r * 4, r * 4 + 4)), species: iris.y[r] }));
  if (k === 100 || k === 333) lines.push('{"f": [1, 2], "species": 0}');
}
writeFileSync(file, `${lines.join('\n')}\n`);
const mapping: RecordMapping = { features: [{ field: 'f', type: 'vector', length: 4 }], target: { field: 'species', type: 'class', classes: 3 } };
const spec: ModelSpec = { layers: [{ type: 'Linear', inFeatures: 4, outFeatures: 12 }, { type: 'Tanh' }, { type: 'Linear', inFeatures: 12, outFeatures: 3 }] };
const sha = (a: Float32Array | Float64Array): string => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

function run(from: ReaderPosition | undefined, o: Partial<ParallelTrainOptions>) {
  const source = new RecordBatchSource(new JsonlReader(file, { from }), mapping, new MemoryDeadLetterSink(), { maxBadRatio: 0.05 });
  return trainParallel({ model: spec, seed: 2, optimizer: { type: 'Adam', lr: 0.01 }, inputShape: [4], batchSize: 10, workers: 2, shards: 2, source, ...o }).done;
}

describe('a JSON Lines run stopped at a step and resumed from its checkpoint (sync mode)', () => {
  it.each([1, 17, 38])('ends bit-identical to the uninterrupted run when stopped after %i steps', async (k) => {
    const whole = await run(undefined, {});
    expect(whole.steps).toBe(45);
    const dir = join(root, `k${k}`);
    await run(undefined, { maxSteps: k, checkpoint: { dir, everySteps: 4 } });
    const { checkpoint } = loadLatestCheckpoint(dir);
    expect(checkpoint!.step).toBe(k);
    const position = (checkpoint!.meta as unknown as { source: { position: ReaderPosition } }).source.position;
    const rest = await run(position, { resume: checkpoint! });
    expect(rest.steps).toBe(45 - k);
    expect(sha(rest.params)).toBe(sha(whole.params));
  }, 60_000);
});
