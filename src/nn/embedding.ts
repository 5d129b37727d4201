// Embedding: a lookup table of rows, as torch.nn.Embedding, composed from indexSelect (no backward code here).
import { ShapeError, ValueError, checkInt, fmtShape, fmtValue } from '../errors.js';
import { where } from '../ops/elementwise.js';
import { type Indices, indexSelect, reshape } from '../ops/shape.js';
import { type Rng, defaultRng } from '../random.js';
import { numel } from '../tensor/shape.js';
import { type DType, Tensor, allocStorage, checkDType, empty } from '../tensor/tensor.js';
import { Module } from './module.js';

export interface EmbeddingOptions {
  /**
   * A row that reads as given but never learns: its gradient is always zero, and it starts at zeros
   * (a negative value counts from the end, as torch's padding_idx).
   */
  paddingIdx?: number;
  dtype?: DType;
  /** Where initial values come from (default: the generator seeded by manualSeed). */
  rng?: Rng;
}

/**
 * torch.nn.Embedding: `weight` [numEmbeddings, embeddingDim], init N(0, 1). `forward(x)` takes a Tensor of
 * integer values of any shape S (so the layer fits in a Sequential) and returns [...S, embeddingDim];
 * `lookup(indices, shape)` does the same from an Int32Array or number[] without a float tensor.
 */
export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  /** The padding row, resolved to [0, numEmbeddings), or undefined. */
  readonly paddingIdx: number | undefined;

  constructor(numEmbeddings: number, embeddingDim: number, opts: EmbeddingOptions = {}) {
    super();
    this.numEmbeddings = checkInt('Embedding', 'numEmbeddings', numEmbeddings, 1);
    this.embeddingDim = checkInt('Embedding', 'embeddingDim', embeddingDim, 1);
    const p = opts.paddingIdx;
    if (p !== undefined && (!Number.isInteger(p) || p < -numEmbeddings || p >= numEmbeddings)) {
      throw new ValueError(`Embedding: paddingIdx must be an integer in [${-numEmbeddings}, ${numEmbeddings}) (got ${fmtValue(p)})`);
    }
    this.paddingIdx = p === undefined ? undefined : p < 0 ? p + numEmbeddings : p;
    const dtype = checkDType('Embedding', opts.dtype ?? 'f32');
    const data = allocStorage(dtype, numEmbeddings * embeddingDim, false, true);
    (opts.rng ?? defaultRng()).fillNormal(data, 0, 1);
    if (this.paddingIdx !== undefined) data.fill(0, this.paddingIdx * embeddingDim, (this.paddingIdx + 1) * embeddingDim);
    this.registerParameter('weight', new Tensor(data, [numEmbeddings, embeddingDim]));
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  private get where(): string {
    return `Embedding(${this.numEmbeddings}, ${this.embeddingDim})`;
  }

  /** The rows at the integer values of x: shape [...x.shape, embeddingDim]. x needs no gradient. */
  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) throw new ValueError(`${this.where}: input must be a Tensor of indices (got ${typeof x})`);
    const idx = new Int32Array(x.size);
    for (let i = 0; i < x.size; i++) idx[i] = this.checkIndex(x.data[i]!, i);
    return this.gather(idx, x.shape);
  }

  /** The rows at `indices`, read as a tensor of `shape` (default [indices.length]): [...shape, embeddingDim]. */
  lookup(indices: Indices, shape: readonly number[] = [indices.length]): Tensor {
    if (!(indices instanceof Int32Array) && !Array.isArray(indices)) {
      throw new ValueError(`${this.where}: indices must be an Int32Array or an array of integers`);
    }
    if (numel(shape) !== indices.length) {
      throw new ShapeError(`${this.where}: ${indices.length} indices do not fill shape ${fmtShape(shape)}`);
    }
    for (let i = 0; i < indices.length; i++) this.checkIndex(indices[i]!, i);
    return this.gather(indices, shape);
  }

  private checkIndex(v: number, i: number): number {
    if (!Number.isInteger(v)) throw new ValueError(`${this.where}: index ${v} at position ${i} is not an integer`);
    if (v < 0 || v >= this.numEmbeddings) {
      throw new ValueError(`${this.where}: index ${v} at position ${i} is out of range [0, ${this.numEmbeddings})`);
    }
    return v;
  }

  private gather(idx: Indices, shape: readonly number[]): Tensor {
    let rows = indexSelect(this.weight, 0, idx);
    const pad = this.paddingIdx;
    if (pad !== undefined && rows.requiresGrad && idx.indexOf(pad) >= 0) {
      // The padding row's gradient is masked: where() passes the gradient only where the condition holds, and
      // the detached copy supplies the same values elsewhere, so the forward is unchanged (as torch, the row
      // reads whatever it holds) while indexSelect scatters zeros into the padding row.
      const keep = empty([idx.length, 1], rows.dtype);
      for (let i = 0; i < idx.length; i++) keep.data[i] = idx[i] === pad ? 0 : 1;
      rows = where(keep, rows, rows.detach());
    }
    return reshape(rows, [...shape, this.embeddingDim]);
  }

  protected override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}${this.paddingIdx === undefined ? '' : `, padding_idx=${this.paddingIdx}`}`;
  }
}
