import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { loadIris } from '../../../src/data/dataset.js';
import { DatasetSource } from '../../../pipelines/sources/dataset.js';

const iris = loadIris();

function drain(src: DatasetSource, batch: number, limit = Infinity): { rows: number[][]; labels: number[] } {
  const x = new Float32Array(batch * 4);
  const y = new Int32Array(batch);
  const rows: number[][] = [];
  const labels: number[] = [];
  for (let k = 0; k < limit; k++) {
    const n = src.fill({ x, y, sampleSize: 4, targetSize: 0 }, batch);
    if (n === 0) break;
    for (let i = 0; i < n; i++) {
      rows.push(Array.from(x.subarray(i * 4, i * 4 + 4)));
      labels.push(y[i]!);
    }
    src.applied(k);
  }
  return { rows, labels };
}

describe('DatasetSource', () => {
  test.prop([fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 30 }), fc.boolean()], { numRuns: 40 })(
    'resumed from the position after k applied batches, it reads exactly what the uninterrupted source reads next',
    (batch, epochs, k, shuffle) => {
      const whole = drain(new DatasetSource(iris, { epochs, seed: 5, shuffle }), batch);
      const first = new DatasetSource(iris, { epochs, seed: 5, shuffle });
      const head = drain(first, batch, k);
      const rest = drain(new DatasetSource(iris, { epochs, seed: 5, shuffle, from: first.position() as never }), batch);
      expect([...head.labels, ...rest.labels]).toEqual(whole.labels);
      expect([...head.rows, ...rest.rows]).toEqual(whole.rows);
    },
  );

  it('positions follow the applied prefix when batches are applied out of order', () => {
    const src = new DatasetSource(iris, { epochs: 1, shuffle: false });
    const x = new Float32Array(40);
    const y = new Int32Array(10);
    for (let k = 0; k < 3; k++) src.fill({ x, y, sampleSize: 4, targetSize: 0 }, 10);
    src.applied(1);
    expect(src.position()).toEqual({ epoch: 1, offset: 0 });
    src.applied(0);
    expect(src.position()).toEqual({ epoch: 1, offset: 20 });
    src.applied(2);
    expect(src.position()).toEqual({ epoch: 1, offset: 30 });
  });

  it('names table rows instead of copying samples when the slot takes rows, in the same order', () => {
    const copied = drain(new DatasetSource(iris, { seed: 5 }), 16);
    const src = new DatasetSource(iris, { seed: 5 });
    expect(src.table).toBe(iris.x);
    const x = new Float32Array(16 * 4).fill(-1);
    const y = new Int32Array(16);
    const rows = new Int32Array(16);
    const got: number[][] = [];
    for (let n = src.fill({ x, y, rows, sampleSize: 4, targetSize: 0 }, 16); n > 0; n = src.fill({ x, y, rows, sampleSize: 4, targetSize: 0 }, 16)) {
      for (let i = 0; i < n; i++) got.push(Array.from(iris.x.subarray(rows[i]! * 4, rows[i]! * 4 + 4)));
    }
    expect(got).toEqual(copied.rows);
    expect(x.every((v) => v === -1)).toBe(true);
  });

  it('refuses a position outside the dataset', () => {
    expect(() => new DatasetSource(iris, { epochs: 2, from: { epoch: 3, offset: 0 } })).toThrow(
      'dataset \'iris\': cannot resume from {"epoch":3,"offset":0}: expected epoch in [1, 2] and offset in [0, 150]',
    );
  });
});
