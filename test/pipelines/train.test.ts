import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type Dataset, loadMnistDigits, subset } from '../../src/data/dataset.js';
import { shareParameters } from '../../src/nn/param-layout.js';
import { type ModelSpec, buildModel } from '../../src/nn/spec.js';
import { type OptimizerSpec, buildOptimizer } from '../../src/optim/spec.js';
import { fit } from '../../src/train/fit.js';
import { CosineAnnealingLR } from '../../src/optim/index.js';
import { datasetSource } from '../../pipelines/sources/dataset.js';
import { type ParallelTrainOptions, trainParallel } from '../../pipelines/train.js';
import type { BatchSource, SlotWriter } from '../../pipelines/source.js';
import type { StepTelemetry } from '../../pipelines/types.js';

const mnist = loadMnistDigits();
const first = (d: Dataset, n: number): Dataset => subset(d, Array.from({ length: n }, (_, i) => i));

const MLP: ModelSpec = {
  layers: [{ type: 'Linear', inFeatures: 784, outFeatures: 64 }, { type: 'ReLU' }, { type: 'Linear', inFeatures: 64, outFeatures: 10 }],
};
// The benchmark's CNN (conv 16 → pool → conv 32 → pool → dense 10).
const CNN: ModelSpec = {
  layers: [
    { type: 'Conv2d', inChannels: 1, outChannels: 16, kernelSize: 3 },
    { type: 'ReLU' },
    { type: 'MaxPool2d', kernelSize: 2 },
    { type: 'Conv2d', inChannels: 16, outChannels: 32, kernelSize: 3 },
    { type: 'ReLU' },
    { type: 'MaxPool2d', kernelSize: 2 },
    { type: 'Flatten' },
    { type: 'Linear', inFeatures: 800, outFeatures: 10 },
  ],
};
const SGD_M: OptimizerSpec = { type: 'SGD', lr: 0.05, momentum: 0.9 };

function sha256(a: Float32Array | Float64Array): string {
  return createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
}

/** SHA-256 of the parameters after the single-thread core loop with the same shards. */
function fitHash(spec: ModelSpec, data: Dataset, batchSize: number, inputShape: number[], shards: number, opt: OptimizerSpec): string {
  const model = buildModel(spec, 1);
  const { params } = shareParameters(model);
  fit(model, data, { optimizer: buildOptimizer(opt, model.parameters()), epochs: 1, batchSize, seed: 3, shards, inputShape });
  return sha256(params);
}

async function parallelHash(o: Partial<ParallelTrainOptions> & { data: Dataset; spec: ModelSpec; inputShape: number[] }): Promise<string> {
  return (await parallelRun(o)).hash;
}

/** The parameters' hash after a run, and how many product blocks a worker computed for another. */
async function parallelRun(o: Partial<ParallelTrainOptions> & { data: Dataset; spec: ModelSpec; inputShape: number[] }): Promise<{ hash: string; helped: number }> {
  const { data, spec, ...rest } = o;
  const run = trainParallel({ model: spec, seed: 1, optimizer: SGD_M, source: datasetSource(data, { seed: 3 }), batchSize: 64, shards: 4, ...rest });
  let helped = 0;
  run.telemetry$.subscribe((t) => (helped = t.helpedBlocks));
  const r = await run.done;
  return { hash: sha256(r.params as Float32Array), helped };
}

describe('trainParallel, sync mode', () => {
  it('gives bit-identical MLP parameters after 50 steps for 1, 2 and 4 workers, equal to the core loop', async () => {
    const data = first(mnist, 64 * 50);
    const want = fitHash(MLP, data, 64, [784], 4, SGD_M);
    for (const workers of [1, 2, 4]) {
      expect(await parallelHash({ data, spec: MLP, inputShape: [784], workers }), `${workers} workers`).toBe(want);
    }
    // The reduce and the optimizer step on the main thread instead of in the workers' update jobs.
    expect(await parallelHash({ data, spec: MLP, inputShape: [784], workers: 2, update: 'main' }), 'update on the main thread').toBe(want);
  }, 60_000);

  it('gathers batches in the workers from a shared dataset, and copies them on the main thread from any other: same bits', async () => {
    const data = first(mnist, 64 * 20);
    const want = fitHash(MLP, data, 64, [784], 4, SGD_M);
    // The loaders keep rows in a SharedArrayBuffer: its fills name rows, which the workers copy.
    const inner = datasetSource(data, { seed: 3 });
    let byRow = 0;
    const watched: BatchSource = {
      name: 'watched',
      table: inner.table,
      fill(into: SlotWriter, max: number) {
        const n = inner.fill(into, max);
        if (into.rows !== undefined && n > 0) byRow++;
        return n;
      },
    };
    const r = await trainParallel({ model: MLP, seed: 1, optimizer: SGD_M, source: watched, batchSize: 64, shards: 4, workers: 2, inputShape: [784] }).done;
    expect(byRow).toBe(20);
    expect(sha256(r.params as Float32Array)).toBe(want);
    // Rows in a plain ArrayBuffer cannot be shared: the main thread copies them into the batch slots.
    const plain: Dataset = { ...data, x: Float32Array.from(data.x) };
    expect(await parallelHash({ data: plain, spec: MLP, inputShape: [784], workers: 2 }), 'copied on the main thread').toBe(want);
    expect(await parallelHash({ data, spec: MLP, inputShape: [784], workers: 2, mode: 'hogwild' })).toMatch(/^[0-9a-f]{64}$/);
  }, 60_000);

  it('fails with the source named when a fill names a row outside its table, before any worker reads it', async () => {
    const data = first(mnist, 64 * 3);
    const inner = datasetSource(data, { seed: 3 });
    const source: BatchSource = {
      name: 'off by one',
      table: inner.table,
      fill(into: SlotWriter, max: number) {
        const n = inner.fill(into, max);
        if (into.rows !== undefined && n > 0) into.rows[n - 1] = data.n;
        return n;
      },
    };
    await expect(trainParallel({ model: MLP, optimizer: SGD_M, source, batchSize: 64, workers: 2, inputShape: [784] }).done).rejects.toThrow(
      'off by one: batch 0 names row 192 of its table for sample 63; the table has rows 0 to 191',
    );
  }, 60_000);

  it('fails with the source named when a fill reports a count it cannot have written', async () => {
    const data = first(mnist, 64 * 3);
    for (const [bad, shown] of [[65, '65'], [Number.NaN, 'NaN'], [2.5, '2.5']] as const) {
      const inner = datasetSource(data, { seed: 3 });
      const source: BatchSource = {
        name: 'miscounting',
        table: inner.table,
        fill(into: SlotWriter, max: number) {
          inner.fill(into, max);
          return bad === 65 ? bad : Promise.resolve(bad); // answered synchronously and later
        },
      };
      await expect(trainParallel({ model: MLP, optimizer: SGD_M, source, batchSize: 64, workers: 1, inputShape: [784] }).done).rejects.toThrow(
        `miscounting: fill 0 returned ${shown}; expected the number of samples it wrote, an integer from 0 to 64`,
      );
    }
  }, 60_000);

  it('gives bit-identical CNN parameters after 50 steps for 1, 2 and 4 workers, equal to the core loop', async () => {
    const data = first(mnist, 32 * 50);
    const img = [1, 28, 28];
    const want = fitHash(CNN, data, 32, img, 4, SGD_M);
    for (const workers of [1, 2, 4]) {
      expect(await parallelHash({ data, spec: CNN, inputShape: img, workers, batchSize: 32 }), `${workers} workers`).toBe(want);
    }
  }, 120_000);

  it('gives the same bits when workers share their products block by block with the one waiting at the barrier', async () => {
    const cases: [ModelSpec, Dataset, number[], number][] = [[MLP, first(mnist, 64 * 30), [784], 64], [CNN, first(mnist, 32 * 30), [1, 28, 28], 32]];
    for (const [spec, data, inputShape, batchSize] of cases) {
      const base = { data, spec, inputShape, batchSize };
      const want = await parallelHash({ ...base, workers: 1 });
      // Blocks of 20 kflop: nearly every product of these small models is offered.
      const shared = await parallelRun({ ...base, workers: 2, helpMinFlops: 2e4 });
      expect(shared.hash).toBe(want);
      expect(shared.helped, 'blocks computed by the idle worker').toBeGreaterThan(0);
      const alone = await parallelRun({ ...base, workers: 2, helpMinFlops: 0 });
      expect(alone).toEqual({ hash: want, helped: 0 });
    }
  }, 120_000);

  // More workers than cores: a worker descheduled mid-release is where an ordering bug shows (one posted
  // a later step's shards early about one run in ten, before the fix). test:slow repeats it 30 times.
  it('stays bit-identical over repeated 4-worker CNN runs (more threads than cores)', async () => {
    const data = first(mnist, 32 * 30);
    const img = [1, 28, 28];
    const want = fitHash(CNN, data, 32, img, 4, SGD_M);
    for (let r = 0; r < (process.env.SLOW ? 30 : 4); r++) {
      expect(await parallelHash({ data, spec: CNN, inputShape: img, workers: 4, batchSize: 32 }), `run ${r}`).toBe(want);
    }
  }, 300_000);

  it('keeps BatchNorm running statistics from shard 0 and Dropout masks per shard: 1 and 2 workers equal the core loop', async () => {
    const spec: ModelSpec = {
      layers: [
        { type: 'Linear', inFeatures: 784, outFeatures: 32 },
        { type: 'BatchNorm1d', numFeatures: 32 },
        { type: 'ReLU' },
        { type: 'Dropout', p: 0.3 },
        { type: 'Linear', inFeatures: 32, outFeatures: 10 },
      ],
    };
    const data = first(mnist, 64 * 10);
    const model = buildModel(spec, 1);
    const { params } = shareParameters(model);
    fit(model, data, { optimizer: buildOptimizer(SGD_M, model.parameters()), epochs: 1, batchSize: 64, seed: 3, shards: 4 });
    const stats = (m: { stateDict(): Record<string, { data: Float32Array | Float64Array }> }) => Array.from(m.stateDict()['1.running_var']!.data);
    for (const workers of [1, 2]) {
      const r = await trainParallel({ model: spec, seed: 1, optimizer: SGD_M, inputShape: [784], source: datasetSource(data, { seed: 3 }), batchSize: 64, shards: 4, workers }).done;
      expect(sha256(r.params as Float32Array), `${workers} workers`).toBe(sha256(params));
      expect(stats(r.model)).toEqual(stats(model));
    }
    expect(stats(model)).not.toEqual(new Array(32).fill(1));
  }, 60_000);

  it('carries stateful LSTM state per micro-shard across steps: 1 and 2 workers equal the core loop', async () => {
    const spec: ModelSpec = {
      layers: [{ type: 'LSTM', inputSize: 3, hiddenSize: 8, batchFirst: true, returnLast: true, stateful: true }, { type: 'Linear', inFeatures: 8, outFeatures: 3 }],
    };
    const n = 16 * 12;
    let k = 7;
    const rand = (): number => ((k = (Math.imul(k, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
    const x = Float32Array.from({ length: n * 18 }, rand);
    const y = Int32Array.from({ length: n }, (_, i) => (x[i * 18]! > 0 ? 1 : 0) + (x[i * 18 + 17]! > 0 ? 1 : 0));
    const stream: Dataset = { name: 'stream', x, y, n, features: 18, classes: 3, sampleShape: [6, 3] };
    const opt: OptimizerSpec = { type: 'Adam', lr: 0.01 };
    const model = buildModel(spec, 2);
    const { params } = shareParameters(model);
    fit(model, stream, { optimizer: buildOptimizer(opt, model.parameters()), epochs: 1, batchSize: 16, shuffle: false, shards: 2, inputShape: [6, 3] });
    for (const workers of [1, 2]) {
      const r = await trainParallel({ model: spec, seed: 2, optimizer: opt, inputShape: [6, 3], source: datasetSource(stream, { shuffle: false }), batchSize: 16, shards: 2, workers }).done;
      expect(sha256(r.params as Float32Array), `${workers} workers`).toBe(sha256(params));
    }
    // The carry matters: the same run without it differs.
    const plain = buildModel({ layers: [{ ...spec.layers[0]!, stateful: false } as never, spec.layers[1]!] }, 2);
    const p2 = shareParameters(plain).params;
    fit(plain, stream, { optimizer: buildOptimizer(opt, plain.parameters()), epochs: 1, batchSize: 16, shuffle: false, shards: 2, inputShape: [6, 3] });
    expect(sha256(p2)).not.toBe(sha256(params));
    expect(() => trainParallel({ model: spec, optimizer: opt, inputShape: [6, 3], source: datasetSource(stream), batchSize: 16, mode: 'hogwild' })).toThrow(
      "train.mode: stateful recurrent layers carry each micro-shard's state from one step to the next, which needs sync mode (got 'hogwild')",
    );
  }, 60_000);

  it('steps a learning-rate schedule per update and runs afterStep with the current model, at epoch ends here', async () => {
    const data = first(mnist, 64 * 3);
    const seen: StepTelemetry[] = [];
    const run = trainParallel({
      model: MLP, optimizer: SGD_M, inputShape: [784], source: datasetSource(data, { epochs: 2 }), batchSize: 64, workers: 2, shards: 2,
      schedule: (o) => new CosineAnnealingLR(o, { tMax: 6 }),
      afterStep: (s, model) => (s.epochEnd ? { epoch: s.epoch!, params: model.parameters().length } : undefined),
    });
    run.telemetry$.subscribe((t) => seen.push(t));
    await run.done;
    const lrs = seen.map((t) => t.lr);
    expect(lrs[0]).toBeLessThan(0.05);
    for (let i = 1; i < lrs.length; i++) expect(lrs[i]).toBeLessThan(lrs[i - 1]!);
    expect(lrs.at(-1)).toBeCloseTo(0, 12);
    expect(seen.map((t) => t.evaluation)).toEqual([undefined, undefined, { epoch: 1, params: 4 }, undefined, undefined, { epoch: 2, params: 4 }]);
    expect(seen.map((t) => t.epochEnd)).toEqual([false, false, true, false, false, true]);
  }, 60_000);

  it('emits telemetry per step and reads the source only when a batch slot is free', async () => {
    const data = first(mnist, 64 * 12);
    const inner = datasetSource(data, { seed: 3 });
    let filled = 0;
    let applied = 0;
    let maxAhead = 0;
    const source: BatchSource = {
      name: 'counting',
      fill(into: SlotWriter, max: number) {
        const n = inner.fill(into, max);
        if (n > 0) filled++;
        maxAhead = Math.max(maxAhead, filled - applied);
        return n;
      },
      applied() {
        applied++;
      },
    };
    const run = trainParallel({ model: MLP, optimizer: SGD_M, inputShape: [784], source, batchSize: 64, workers: 2, shards: 4, batchSlots: 2 });
    const seen: StepTelemetry[] = [];
    run.telemetry$.subscribe((t) => seen.push(t));
    const r = await run.done;
    expect(r.steps).toBe(12);
    expect(applied).toBe(12);
    expect(maxAhead).toBeLessThanOrEqual(2);
    expect(seen.map((t) => t.step)).toEqual([...Array(12).keys()]);
    for (const t of seen) {
      expect(Number.isFinite(t.loss) && t.gradNorm > 0 && t.samplesPerSecond > 0).toBe(true);
      expect(t.workerBusyMs).toHaveLength(2);
      expect(t.queueDepth).toBeGreaterThanOrEqual(0);
      expect(t.queueDepth).toBeLessThanOrEqual(1); // with 2 slots, the batch after the one being applied at most
    }
    expect(seen.at(-1)!.samples).toBe(64 * 12);
    expect(seen.at(-1)!.loss).toBeLessThan(seen[0]!.loss);
  }, 60_000);
});

describe('trainParallel, bad input fails on the main thread before any worker starts', () => {
  const base = (): ParallelTrainOptions => ({ model: MLP, optimizer: SGD_M, inputShape: [784], source: datasetSource(first(mnist, 64)), batchSize: 64 });
  it.each([
    [{ workers: 0 }, 'train.workers must be an integer in [1, 256] (got 0)'],
    [{ workers: 1000 }, 'train.workers must be an integer in [1, 256] (got 1000)'],
    [{ batchSize: 3, shards: 4 }, 'train.batchSize 3 is smaller than the 4 micro-shards each batch is cut into'],
    [{ model: { layers: [{ type: 'Linear', inFeatures: 784, outFeatures: 0 }] } }, 'model.layers[0] (Linear): Linear: outFeatures'],
    [{ model: { layers: [{ type: 'Dense', units: 3 }] } }, "model.layers[0].type must be one of Linear"],
    [{ inputShape: [1, 28, 27] }, 'Linear(784, 64): input has shape [1,1,28,27], expected [..., 784]'],
    [{ loss: 'mseLoss' }, "loss 'mseLoss' takes dense targets"],
    [{ optimizer: { type: 'SGD', lr: -1 } }, 'lr'],
    [{ helpMinFlops: -1 }, 'train.helpMinFlops must be a finite number ≥ 0'],
    [{ update: 'gpu' }, 'train.update must be \'workers\' or \'main\' (got "gpu")'],
    [{ update: 'workers', model: { ...MLP, dtype: 'f64' } }, "train.update 'workers' needs the WebAssembly kernels on f32 parameters (kernels here: wasm, dtype: f64)"],
  ] as [Partial<ParallelTrainOptions>, string][])('%j', (patch, message) => {
    expect(() => trainParallel({ ...base(), ...patch } as ParallelTrainOptions)).toThrow(message);
  });
});
