import { describe, expect, it } from 'vitest';
import { featureStats, loadIris, loadMnistDigits, normalize, split, standardize, subset } from '../../src/data/dataset.js';

describe('bundled datasets', () => {
  it('MNIST digits: 10,000 images of 784 pixels in [0,1], all ten classes', () => {
    const d = loadMnistDigits();
    expect(d.n).toBe(10000);
    expect(d.features).toBe(784);
    expect(d.x.length).toBe(10000 * 784);
    expect(new Set(d.y).size).toBe(10);
    expect(Math.min(...d.x.subarray(0, 5000))).toBeGreaterThanOrEqual(0);
    expect(Math.max(...d.x.subarray(0, 5000))).toBeLessThanOrEqual(1);
  });

  it('Iris: 150 rows, 4 features, 3 named classes of 50', () => {
    const d = loadIris('f64');
    expect([d.n, d.features, d.classes]).toEqual([150, 4, 3]);
    expect(d.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
    expect([0, 1, 2].map((c) => d.y.filter((y) => y === c).length)).toEqual([50, 50, 50]);
    expect(d.x instanceof Float64Array).toBe(true);
  });
});

describe('splits and scaling', () => {
  it('a seeded split is a reproducible partition', () => {
    const d = loadIris();
    const a = split(d, 120, 7);
    const b = split(d, 120, 7);
    const c = split(d, 120, 8);
    expect(Array.from(a.train.y)).toEqual(Array.from(b.train.y));
    expect(Array.from(a.train.x)).toEqual(Array.from(b.train.x));
    expect(Array.from(a.train.x)).not.toEqual(Array.from(c.train.x));
    expect(a.train.n + a.test.n).toBe(150);
    // Every row lands in exactly one side: the multiset of rows is preserved.
    const key = (x: Float32Array | Float64Array, y: Int32Array, i: number) => `${Array.from(x.subarray(i * 4, i * 4 + 4))}|${y[i]}`;
    const rows = (s: ReturnType<typeof subset>) => Array.from({ length: s.n }, (_, i) => key(s.x, s.y, i));
    expect([...rows(a.train), ...rows(a.test)].sort()).toEqual(rows(d).sort());
  });

  it('bad split sizes and rows name the dataset', () => {
    const d = loadIris();
    expect(() => split(d, 150, 1)).toThrow('split(iris): trainSize must be an integer in [1, 149] (got 150)');
    expect(() => subset(d, [0, 150])).toThrow('subset(iris): row 150 is out of range [0, 150)');
    expect(() => normalize(d, 0, 0)).toThrow('normalize(iris): mean must be finite and std a finite number > 0 (got 0, 0)');
  });

  it('standardize gives zero mean and unit variance per feature on the data it was fitted to', () => {
    const d = loadIris('f64');
    const s = featureStats(standardize(d, featureStats(d)));
    for (let j = 0; j < 4; j++) {
      expect(s.mean[j]).toBeCloseTo(0, 12);
      expect(s.std[j]).toBeCloseTo(1, 12);
    }
  });
});

describe('dataset storage', () => {
  it('keeps rows in a SharedArrayBuffer through loading, subsets, splits and scaling, so a run shares them with its workers', () => {
    const iris = loadIris();
    const mnist = loadMnistDigits('f64');
    const derived = [iris, mnist, subset(iris, [3, 1]), split(iris, 100, 1).test, standardize(iris, featureStats(iris)), normalize(mnist, 0.1, 0.3)];
    for (const d of derived) expect(d.x.buffer, d.name).toBeInstanceOf(SharedArrayBuffer);
    expect(mnist.x).toBeInstanceOf(Float64Array);
    expect(Array.from(subset(iris, [3, 1]).x)).toEqual([...iris.x.subarray(12, 16), ...iris.x.subarray(4, 8)]);
  });
});
