import { describe, expect, it } from 'vitest';
import { Linear, ReLU, SGD, Sequential, evaluate, fit, loadIris, manualSeed, split, standardize, featureStats } from '../../src/index.js';

function run(seed: number) {
  manualSeed(seed);
  const { train, test } = split(loadIris('f64'), 120, seed);
  const stats = featureStats(train);
  const model = new Sequential(new Linear(4, 8, { dtype: 'f64' }), new ReLU(), new Linear(8, 3, { dtype: 'f64' }));
  const reports = fit(model, standardize(train, stats), {
    optimizer: new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }),
    epochs: 5,
    batchSize: 16,
    seed,
    test: standardize(test, stats),
  });
  return { model, reports, test: standardize(test, stats) };
}

describe('fit', () => {
  it('is reproducible: the same seed gives bit-identical parameters', () => {
    const a = run(3).model.parameters().map((p) => Array.from(p.data));
    const b = run(3).model.parameters().map((p) => Array.from(p.data));
    const c = run(4).model.parameters().map((p) => Array.from(p.data));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('reports per epoch and learns', () => {
    const { reports } = run(1);
    expect(reports.map((r) => r.epoch)).toEqual([1, 2, 3, 4, 5]);
    expect(reports[4]!.trainLoss).toBeLessThan(reports[0]!.trainLoss);
    for (const r of reports) expect(r.testAccuracy).toBeGreaterThan(0);
  });

  it('evaluate: the confusion matrix counts every sample and agrees with accuracy', () => {
    const { model, test } = run(1);
    const e = evaluate(model, test, { batchSize: 7 });
    const total = e.confusion.flat().reduce((a, b) => a + b, 0);
    const diag = e.confusion.reduce((a, row, i) => a + row[i]!, 0);
    expect(total).toBe(test.n);
    expect(diag / total).toBe(e.accuracy);
    expect(model.training).toBe(true);
  });

  it('refuses a bad configuration before training', () => {
    const { train } = split(loadIris('f64'), 120, 1);
    const model = new Sequential(new Linear(4, 3, { dtype: 'f64' }));
    const optimizer = new SGD(model.parameters(), { lr: 0.1 });
    expect(() => fit(model, train, { optimizer, epochs: 0, batchSize: 8 })).toThrow('fit: epochs must be an integer >= 1 (got 0)');
    expect(() => fit(model, train, { optimizer, epochs: 1, batchSize: 8, inputShape: [5] })).toThrow(
      "fit: inputShape [5] does not hold the 4 features of dataset 'iris-train'",
    );
    const m32 = new Sequential(new Linear(4, 3));
    expect(() => fit(m32, train, { optimizer, epochs: 1, batchSize: 8 })).toThrow("fit: model parameters and dataset 'iris-train' have different dtypes");
  });
});
