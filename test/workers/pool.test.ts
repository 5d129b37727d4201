import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadMnistDigits, subset } from '../../src/data/dataset.js';
import { shareParameters } from '../../src/nn/param-layout.js';
import { type ModelSpec, buildModel } from '../../src/nn/spec.js';
import { type OptimizerSpec, buildOptimizer } from '../../src/optim/spec.js';
import { fit } from '../../src/train/fit.js';
import { datasetSource } from '../../pipelines/sources/dataset.js';
import { trainParallel } from '../../pipelines/train.js';
import type { FaultPlan } from '../../workers/protocol.js';
import { WorkerPool } from '../../workers/pool.js';
import { BatchSlots } from '../../workers/slots.js';
import { kernelsInUse } from '../../src/kernels/wasm/runtime.js';

const data = subset(loadMnistDigits(), Array.from({ length: 32 * 12 }, (_, i) => i));
const MLP: ModelSpec = {
  layers: [{ type: 'Linear', inFeatures: 784, outFeatures: 32 }, { type: 'ReLU' }, { type: 'Linear', inFeatures: 32, outFeatures: 10 }],
};
const OPT: OptimizerSpec = { type: 'Adam', lr: 0.01 };
const sha256 = (a: Float32Array | Float64Array): string => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

function faultFree(): string {
  const model = buildModel(MLP, 5);
  const { params } = shareParameters(model);
  fit(model, data, { optimizer: buildOptimizer(OPT, model.parameters()), epochs: 1, batchSize: 32, seed: 2, shards: 4 });
  return sha256(params);
}

function run(faults: Record<number, FaultPlan>, watchdogMs = 30_000, epochs = 1) {
  return trainParallel({
    model: MLP, seed: 5, optimizer: OPT, inputShape: [784], source: datasetSource(data, { seed: 2, epochs }),
    // Small products shared too: a worker may fail while its peer computes blocks of its products.
    batchSize: 32, workers: 2, shards: 4, faults, watchdogMs, helpMinFlops: 2e4,
  });
}

describe('WorkerPool faults (2 workers, sync mode)', () => {
  const want = faultFree();

  it.each(['throw', 'exit', 'hang'] as const)('a worker that %ss mid-step is replaced, its shard redone, the result bit-identical', async (kind) => {
    const r = await run({ 1: { kind, atJob: 3 } }, kind === 'hang' ? 400 : 30_000).done;
    expect(r.steps).toBe(12);
    expect(r.workerFailures).toBe(1);
    expect(sha256(r.params)).toBe(want);
  }, 60_000);

  it.each(['throw', 'exit', 'hang'] as const)('a worker that %ss in an update job (after spoiling its chunk of the parameters) is replaced, the chunk restored and redone, the result bit-identical', async (kind) => {
    const r = await run({ 1: { kind, atJob: 2, on: 'update' } }, kind === 'hang' ? 400 : 30_000).done;
    expect(r.steps).toBe(12);
    expect(r.workerFailures).toBe(1);
    expect(sha256(r.params)).toBe(want);
  }, 60_000);

  it.each([
    ['throw', /worker 1 failed 4 times; last cause: worker 1 threw Error: injected fault at job 1/],
    ['exit', /worker 1 failed 4 times; last cause: worker 1 exited with code 3/],
  ] as const)('a worker that keeps %sing ends the run within seconds, naming the cause', async (kind, message) => {
    const t0 = Date.now();
    const r = run({ 1: { kind, atJob: 1, persistent: true } }, 30_000, 1000);
    let telemetryError: unknown;
    r.telemetry$.subscribe({ error: (e) => (telemetryError = e) });
    await expect(r.done).rejects.toThrow(message);
    expect(String(telemetryError)).toMatch(message);
    expect(Date.now() - t0).toBeLessThan(20_000);
  }, 60_000);

  it('a job that fails on every worker ends the run, naming the cause', async () => {
    const r = run({ 0: { kind: 'throw', atJob: 1, persistent: true }, 1: { kind: 'throw', atJob: 1, persistent: true } });
    await expect(r.done).rejects.toThrow(/failed 4 times; last cause: worker [01] threw Error: injected fault at job 1/);
  }, 60_000);
});

describe('WorkerPool signalling', () => {
  /** A 2-worker sync pool over one batch slot of the first 32 digits. */
  async function startPool(): Promise<WorkerPool> {
    const model = buildModel(MLP, 5);
    const { layout, params } = shareParameters(model);
    const slots = new BatchSlots(1, 32, 784, 0, 'f32');
    slots.x(0).set(data.x.subarray(0, 32 * 784));
    (slots.y(0) as Int32Array).set(data.y.subarray(0, 32));
    return WorkerPool.start({
      workers: 2, model: MLP, seed: 5, loss: 'crossEntropy', inputShape: [784], targetShape: null, dtype: 'f32', kernels: kernelsInUse(),
      mode: 'sync', optimizer: null, batchSize: 32, batchSlots: 1, shards: 4, paramSize: layout.size,
      regions: {
        memory: null, params: params.buffer as SharedArrayBuffer, paramsByteOffset: params.byteOffset, buffers: new SharedArrayBuffer(4),
        batchX: slots.xBuffer, batchXByteOffset: 0, batchY: slots.yBuffer, carry: new SharedArrayBuffer(4), carryRows: new SharedArrayBuffer(4), table: null, batchRows: null,
      },
    });
  }

  it('wakes the main thread once per step (twice when the last two jobs end together), not once per job (4 shards on 2 workers)', async () => {
    const pool = await startPool();
    try {
      for (let step = 0; step < 3; step++) expect((await pool.runShards(0, 32, step, true)).jobs).toBe(4);
      expect(pool.signals).toBeGreaterThanOrEqual(3);
      expect(pool.signals).toBeLessThanOrEqual(6);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('workers with no job due sleep: an idle pool between steps takes almost no CPU (they wait awake only briefly, for a job that is due)', async () => {
    const pool = await startPool();
    try {
      for (let step = 0; step < 3; step++) await pool.runShards(0, 32, step, true);
      const before = process.cpuUsage();
      await new Promise((resolve) => setTimeout(resolve, 400));
      const { user, system } = process.cpuUsage(before);
      // Two workers spinning through the pause would take ~800 ms of CPU.
      expect((user + system) / 1000).toBeLessThan(100);
    } finally {
      await pool.close();
    }
  }, 60_000);
});
