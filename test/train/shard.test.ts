import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { type Dataset, featureStats, loadIris, standardize, subset } from '../../src/data/dataset.js';
import { buildModel } from '../../src/nn/spec.js';
import { SGD } from '../../src/optim/index.js';
import { Arena } from '../../src/tensor/arena.js';
import { Tensor, allocStorage } from '../../src/tensor/tensor.js';
import { fit, makeBatch } from '../../src/train/fit.js';
import { ShardedGradients, shardCount, shardRange, shardStep } from '../../src/train/shard.js';

describe('shardRange', () => {
  test.prop([fc.integer({ min: 1, max: 500 }), fc.integer({ min: 1, max: 64 })])('cuts [0, n) into shardCount contiguous non-empty pieces', (n, shards) => {
    const k = shardCount(n, shards);
    let at = 0;
    for (let s = 0; s < k; s++) {
      const [a, b] = shardRange(n, k, s);
      expect(a).toBe(at);
      expect(b).toBeGreaterThan(a);
      at = b;
    }
    expect(at).toBe(n);
  });
});

const iris = loadIris('f64');
const spec = { layers: [{ type: 'Linear', inFeatures: 4, outFeatures: 6 }, { type: 'Tanh' }, { type: 'Linear', inFeatures: 6, outFeatures: 3 }], dtype: 'f64' } as const;

describe('ShardedGradients', () => {
  test.prop([fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 1000 })], { numRuns: 30 })(
    'the in-order sum of shard gradients is the gradient of the batch mean loss',
    (n, shards, seed) => {
      const model = buildModel(spec as never, seed);
      const params = model.parameters();
      const rows = Array.from({ length: n }, (_, i) => (i * 7 + seed) % iris.n);
      const { x, y } = makeBatch(iris, rows, 0, n, [4]);
      // Whole batch at once.
      shardStep(model, 'crossEntropy', x, y, n);
      const whole = params.map((p) => Array.from(p.grad!.data));
      const size = params.reduce((a, p) => a + p.size, 0);
      const k = shardCount(n, shards);
      // Slots hold garbage from an earlier step (they are overwritten, never zeroed first), and one
      // parameter is outside the graph: its slot must end at zero.
      const unused = new Tensor(allocStorage('f64', 3, true, true), [3], true);
      const slots = Array.from({ length: k }, () => allocStorage('f64', size + 3, true, true).fill(Number.NaN));
      const sg = new ShardedGradients([...params, unused], slots);
      const arena = new Arena();
      for (let s = 0; s < k; s++) {
        const [a, b] = shardRange(n, k, s);
        sg.select(s);
        arena.step(() => {
          const part = makeBatch(iris, rows, a, b, [4]);
          shardStep(model, 'crossEntropy', part.x, part.y, n);
        });
        sg.settle();
      }
      sg.reduce(k);
      params.forEach((p, i) => p.grad!.data.forEach((g, j) => expect(g).toBeCloseTo(whole[i]![j]!, 12)));
      expect(Array.from(unused.grad!.data)).toEqual([0, 0, 0]);
    },
  );
});

describe('fit with shards', () => {
  const run = (shards: number, d: Dataset = iris) => {
    const model = buildModel(spec as never, 2);
    fit(model, d, { optimizer: new SGD(model.parameters(), { lr: 0.1 }), epochs: 3, batchSize: 16, seed: 1, shards });
    return model.parameters().map((p) => Array.from(p.data));
  };

  it('is reproducible, learns like the unsharded loop, and depends on the shard count', () => {
    expect(run(4)).toEqual(run(4));
    expect(run(4)).not.toEqual(run(3));
    const model = buildModel(spec as never, 2);
    const reports = fit(model, standardize(iris, featureStats(iris)), { optimizer: new SGD(model.parameters(), { lr: 0.1 }), epochs: 30, batchSize: 16, seed: 1, shards: 4 });
    expect(reports.at(-1)!.trainAccuracy).toBeGreaterThan(0.9);
  });

  it('handles an epoch tail smaller than the shard count', () => {
    expect(run(8, subset(iris, Array.from({ length: 19 }, (_, i) => i))).flat().every(Number.isFinite)).toBe(true);
  });

  it('refuses a loss given as a function, and a bad shard count', () => {
    const model = buildModel(spec as never, 2);
    const optimizer = new SGD(model.parameters(), { lr: 0.1 });
    expect(() => fit(model, iris, { optimizer, epochs: 1, batchSize: 16, shards: 2, loss: (z: Tensor) => z })).toThrow('fit: shards needs a named loss');
    expect(() => fit(model, iris, { optimizer, epochs: 1, batchSize: 16, shards: 0 })).toThrow('fit: shards');
  });
});
