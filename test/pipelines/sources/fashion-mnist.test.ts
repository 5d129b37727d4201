import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SourceError } from '../../../src/errors.js';
import { compileMapping } from '../../../pipelines/mapping.js';
import { FASHION_MNIST_DIR, fashionMnistMapping, fashionMnistReader } from '../../../pipelines/sources/fashion-mnist.js';
import { drain, tempDir, writeIdx } from './helpers.js';

const root = tempDir('streamgrad-fashion-');

describe('fashionMnistReader', () => {
  it.skipIf(existsSync(join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')))('says where it looked and how to install the files when they are absent', () => {
    expect(() => fashionMnistReader()).toThrow(
      new SourceError(`fashion-mnist train: no train-images-idx3-ubyte.gz or train-images-idx3-ubyte in ${FASHION_MNIST_DIR}: install Debian's package (apt-get install dataset-fashion-mnist)`),
    );
  });

  it('names a given directory that lacks a file, and the file it lacks', () => {
    const dir = join(root, 'only-images');
    mkdirSync(dir);
    writeIdx(dir, 't10k', new Uint8Array(784), [3], 28, 28, true);
    expect(() => fashionMnistReader({ dir: root, split: 'test' })).toThrow(
      new SourceError(`fashion-mnist test: no t10k-images-idx3-ubyte.gz or t10k-images-idx3-ubyte in ${root}: install Debian's package (apt-get install dataset-fashion-mnist) or pass the dir that holds the IDX files`),
    );
  });

  it.each([true, false])('reads the split from IDX files laid out as the package lays them out (gzipped: %s), through its mapping', async (gz) => {
    const dir = join(root, `present-${gz}`);
    mkdirSync(dir);
    const pixels = new Uint8Array(3 * 784).map((_, i) => (i * 31) % 256);
    writeIdx(dir, 'train', pixels, [9, 0, 4], 28, 28, gz);
    writeIdx(dir, 't10k', pixels.subarray(0, 784), [7], 28, 28, gz);
    const train = await drain(fashionMnistReader({ dir }));
    expect(train.map((r) => (r.value as { label: number }).label)).toEqual([9, 0, 4]);
    const m = compileMapping(fashionMnistMapping);
    const x = new Float32Array(784);
    const y = new Int32Array(1);
    m.write(train[1]!.value, x, 0, y, 0, 2);
    expect(Array.from(x)).toEqual(Array.from(pixels.subarray(784, 1568), (p) => Math.fround(p / 255)));
    expect(y[0]).toBe(0);
    const test = await drain(fashionMnistReader({ dir, split: 'test', from: { record: 0 } }));
    expect(test.map((r) => [r.index, (r.value as { label: number }).label])).toEqual([[1, 7]]);
    expect(fashionMnistReader({ dir }).name).toBe('fashion-mnist train');
  });
});
