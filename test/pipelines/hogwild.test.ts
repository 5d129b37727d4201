import { describe, expect, it } from 'vitest';
import { MNIST_MEAN, MNIST_STD, loadMnistDigits, normalize, split } from '../../src/data/dataset.js';
import type { ModelSpec } from '../../src/nn/spec.js';
import { evaluate } from '../../src/train/fit.js';
import { datasetSource } from '../../pipelines/sources/dataset.js';
import { trainParallel } from '../../pipelines/train.js';

const EPOCHS = 4;
const { train, test } = split(normalize(loadMnistDigits(), MNIST_MEAN, MNIST_STD), 8000, 0);
const MLP: ModelSpec = {
  layers: [{ type: 'Linear', inFeatures: 784, outFeatures: 64 }, { type: 'ReLU' }, { type: 'Linear', inFeatures: 64, outFeatures: 10 }],
};

async function accuracy(mode: 'sync' | 'hogwild'): Promise<{ acc: number; steps: number }> {
  const r = await trainParallel({
    model: MLP, seed: 1, mode, workers: 2, shards: 2, batchSize: 32, inputShape: [784],
    // Plain SGD, Hogwild's own setting: with momentum, each worker's private buffer would push the shared weights again.
    optimizer: { type: 'SGD', lr: 0.05 },
    source: datasetSource(train, { epochs: EPOCHS, seed: 1 }),
  }).done;
  return { acc: evaluate(r.model, test, { inputShape: [784] }).accuracy, steps: r.steps };
}

describe('Hogwild mode', () => {
  it('reaches the test accuracy of sync mode within 1 point on the MNIST MLP, in the same epochs', async () => {
    const sync = await accuracy('sync');
    const hog = await accuracy('hogwild');
    expect(hog.steps).toBe(sync.steps);
    expect(sync.acc).toBeGreaterThan(0.9);
    expect(Math.abs(hog.acc - sync.acc)).toBeLessThanOrEqual(0.01);
    console.log(`test accuracy after ${EPOCHS} epochs: sync ${(100 * sync.acc).toFixed(2)}%, hogwild ${(100 * hog.acc).toFixed(2)}%`);
  }, 120_000);
});
