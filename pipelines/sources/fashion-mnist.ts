// Fashion-MNIST from Debian's dataset-fashion-mnist package (IDX files under /usr/share/datasets), read
// by the IDX reader; when the files are absent, an error says where it looked and how to install them.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SourceError, ValueError, fmtValue } from '../../src/errors.js';
import type { RecordMapping } from '../mapping.js';
import type { ReaderPosition } from '../records.js';
import { IdxReader } from './idx.js';

/** Where `apt-get install dataset-fashion-mnist` puts the files (read from the package's file list). */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Label k's name. */
export const FASHION_MNIST_CLASSES: readonly string[] = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** 784 pixels in [0, 1] → a class index in [0, 10). */
export const fashionMnistMapping: RecordMapping = {
  features: [{ field: 'image', type: 'vector', length: 784 }],
  target: { field: 'label', type: 'class', classes: 10 },
};

export interface FashionMnistOptions {
  /** 'train' (60,000 images) or 'test' (10,000); default 'train'. */
  split?: 'train' | 'test';
  /** Directory of the IDX files (default FASHION_MNIST_DIR); each may be gzipped (.gz) or plain. */
  dir?: string;
  /** Continue after this position (a checkpoint's): { record: n }. */
  from?: ReaderPosition;
}

/** An IdxReader over the split's images and labels. Throws a SourceError at once when a file is missing. */
export function fashionMnistReader(opts: FashionMnistOptions = {}): IdxReader {
  const split = opts.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new ValueError(`fashionMnistReader: split must be 'train' or 'test' (got ${fmtValue(split)})`);
  const dir = opts.dir ?? FASHION_MNIST_DIR;
  const prefix = split === 'train' ? 'train' : 't10k';
  const find = (base: string): string => {
    for (const name of [`${base}.gz`, base]) if (existsSync(join(dir, name))) return join(dir, name);
    throw new SourceError(
      `fashion-mnist ${split}: no ${base}.gz or ${base} in ${dir}: install Debian's package (apt-get install dataset-fashion-mnist)${opts.dir === undefined ? '' : ' or pass the dir that holds the IDX files'}`,
    );
  };
  const images = find(`${prefix}-images-idx3-ubyte`);
  const labels = find(`${prefix}-labels-idx1-ubyte`);
  return new IdxReader(images, labels, { from: opts.from, name: `fashion-mnist ${split}` });
}
