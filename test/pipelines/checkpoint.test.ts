import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMnistDigits, subset } from '../../src/data/dataset.js';
import { loadLatestCheckpoint } from '../../src/io/checkpoint.js';
import type { ModelSpec } from '../../src/nn/spec.js';
import type { OptimizerSpec } from '../../src/optim/spec.js';
import { type DatasetPosition, datasetSource } from '../../pipelines/sources/dataset.js';
import { type ParallelTrainOptions, trainParallel } from '../../pipelines/train.js';

const data = subset(loadMnistDigits(), Array.from({ length: 32 * 15 }, (_, i) => (i * 7919) % 10000));
const SPEC: ModelSpec = {
  layers: [
    { type: 'Linear', inFeatures: 784, outFeatures: 32 }, { type: 'BatchNorm1d', numFeatures: 32 }, { type: 'ReLU' },
    { type: 'Dropout', p: 0.2 }, { type: 'Linear', inFeatures: 32, outFeatures: 10 },
  ],
};
const OPT: OptimizerSpec = { type: 'Adam', lr: 0.005 };
const root = mkdtempSync(join(tmpdir(), 'sg-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const sha = (a: Float32Array | Float64Array): string => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

function run(o: Partial<ParallelTrainOptions> & { from?: DatasetPosition }) {
  const { from, ...rest } = o;
  return trainParallel({
    model: SPEC, seed: 3, optimizer: OPT, inputShape: [784], batchSize: 32, workers: 2, shards: 4,
    source: datasetSource(data, { epochs: 2, seed: 4, from }), ...rest,
  }).done;
}

describe('checkpoints and resume (sync mode, file-like source)', () => {
  it.each([1, 13, 22])('a run stopped after %i steps and resumed from its checkpoint ends bit-identical to the uninterrupted run', async (k) => {
    const whole = await run({});
    expect(whole.steps).toBe(30);
    const dir = join(root, `stop-${k}`);
    const first = await run({ maxSteps: k, checkpoint: { dir, everySteps: 5 } });
    expect(first.steps).toBe(k);
    const { checkpoint, skipped } = loadLatestCheckpoint(dir);
    expect(skipped).toEqual([]);
    expect(checkpoint!.step).toBe(k);
    const meta = checkpoint!.meta as unknown as { source: { position: DatasetPosition }; shards: number };
    expect(meta.shards).toBe(4);
    const rest = await run({ resume: checkpoint!, from: meta.source.position });
    expect(rest.steps).toBe(30 - k);
    expect(rest.nextStep).toBe(30);
    expect(sha(rest.params)).toBe(sha(whole.params));
    const bn = (r: typeof whole) => Array.from(r.model.stateDict()['1.running_mean']!.data);
    expect(bn(rest)).toEqual(bn(whole));
  }, 60_000);

  it('stops cleanly on an abort signal with a final checkpoint at the last applied step; periodic ones are pruned to keep', async () => {
    const dir = join(root, 'abort');
    const ac = new AbortController();
    const r = trainParallel({
      model: SPEC, seed: 3, optimizer: OPT, inputShape: [784], batchSize: 32, workers: 2, shards: 4,
      source: datasetSource(data, { epochs: 2, seed: 4 }), checkpoint: { dir, everySteps: 2, keep: 2 }, signal: ac.signal,
    });
    r.telemetry$.subscribe((t) => t.step === 8 && ac.abort());
    const res = await r.done;
    expect(res.steps).toBeGreaterThanOrEqual(9);
    expect(res.steps).toBeLessThan(30);
    const { checkpoint } = loadLatestCheckpoint(dir);
    expect(checkpoint!.step).toBe(res.nextStep);
    expect(res.checkpointDir).toBe(join(dir, `ckpt-${String(res.nextStep).padStart(10, '0')}`));
  }, 60_000);
});
