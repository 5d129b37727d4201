// Normalisation layers: BatchNorm1d/2d (running statistics as buffers, as in PyTorch) and LayerNorm, composed
// from primitives so gradients flow through the batch statistics; no backward code here.
import { ShapeError, ValueError, checkInt, checkPositive, fmtShape, fmtValue } from '../errors.js';
import { add, div, mul, sqrt, sub } from '../ops/elementwise.js';
import { mean, sum } from '../ops/reduce.js';
import { reshape } from '../ops/shape.js';
import { numel, sameShape } from '../tensor/shape.js';
import { type DType, Tensor, allocStorage, checkDType } from '../tensor/tensor.js';
import { Module } from './module.js';

/** A tensor filled with `value` in persistent storage (never in a step's arena): parameters and buffers. */
function persistentFull(shape: readonly number[], value: number, dtype: DType): Tensor {
  const data = allocStorage(dtype, numel(shape), value === 0, true);
  if (value !== 0) data.fill(value);
  return new Tensor(data, shape.slice());
}

export interface BatchNormOptions {
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /**
   * Weight of the new batch in the running averages (default 0.1): running = (1 − m)·running + m·batch.
   * null gives the cumulative average over all batches seen (factor 1/num_batches_tracked), as torch.
   */
  momentum?: number | null;
  /** Learnable per-channel `weight` (init 1) and `bias` (init 0) (default true). */
  affine?: boolean;
  /** Keep running_mean / running_var / num_batches_tracked and use them in eval mode (default true). */
  trackRunningStats?: boolean;
  dtype?: DType;
}

/**
 * The shared body of BatchNorm1d/2d: normalise each channel (axis 1) over every other axis. Training
 * mode (or no running stats) uses the batch's mean and biased variance and updates the running stats
 * with the unbiased variance; eval mode uses the running stats.
 */
export abstract class BatchNorm extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;

  constructor(numFeatures: number, opts: BatchNormOptions = {}) {
    super();
    const where = this.constructor.name;
    this.numFeatures = checkInt(where, 'numFeatures', numFeatures, 1);
    this.eps = checkPositive(where, 'eps', opts.eps ?? 1e-5);
    const m = opts.momentum === undefined ? 0.1 : opts.momentum;
    if (m !== null && (typeof m !== 'number' || !(m >= 0 && m <= 1))) {
      throw new ValueError(`${where}: momentum must be a number in [0, 1] or null (got ${fmtValue(m)})`);
    }
    this.momentum = m;
    this.affine = opts.affine ?? true;
    this.trackRunningStats = opts.trackRunningStats ?? true;
    const dtype = checkDType(where, opts.dtype ?? 'f32');
    const c = [this.numFeatures];
    // Registration order is torch's state_dict order: weight, bias, running_mean, running_var, num_batches_tracked.
    if (this.affine) {
      this.registerParameter('weight', persistentFull(c, 1, dtype));
      this.registerParameter('bias', persistentFull(c, 0, dtype));
    }
    if (this.trackRunningStats) {
      this.registerBuffer('running_mean', persistentFull(c, 0, dtype));
      this.registerBuffer('running_var', persistentFull(c, 1, dtype));
      // A 0-d counter. torch stores it as int64; we keep it in the module's dtype so every state-dict
      // entry is one float type (safetensors writes it as F32/F64). f32 counts exactly up to 2^24 batches,
      // and the count only matters with momentum null.
      this.registerBuffer('num_batches_tracked', persistentFull([], 0, dtype));
    }
  }

  get weight(): Tensor | undefined {
    return this.affine ? this.param('weight') : undefined;
  }
  get bias(): Tensor | undefined {
    return this.affine ? this.param('bias') : undefined;
  }
  get runningMean(): Tensor | undefined {
    return this.trackRunningStats ? this.buffer('running_mean') : undefined;
  }
  get runningVar(): Tensor | undefined {
    return this.trackRunningStats ? this.buffer('running_var') : undefined;
  }
  get numBatchesTracked(): Tensor | undefined {
    return this.trackRunningStats ? this.buffer('num_batches_tracked') : undefined;
  }

  /** The input layout this layer accepts, for messages: `[N, 3, H, W]`. */
  protected abstract layouts(): string[];
  protected abstract rankOk(rank: number): boolean;

  forward(x: Tensor): Tensor {
    const where = `${this.constructor.name}(${this.numFeatures})`;
    if (!this.rankOk(x.ndim) || x.shape[1] !== this.numFeatures) {
      throw new ShapeError(`${where}: input has shape ${fmtShape(x.shape)}, expected ${this.layouts().join(' or ')}`);
    }
    const axes = [0, ...Array.from({ length: x.ndim - 2 }, (_, i) => i + 2)];
    // Per-channel tensors reshaped to [C, 1, ...] so they broadcast along axis 1 (a bare [C] would align with the last axis).
    const chan = [this.numFeatures, ...new Array<number>(x.ndim - 2).fill(1)];
    let y: Tensor;
    if (this.training || !this.trackRunningStats) {
      const n = numel(axes.map((a) => x.shape[a]!));
      if (this.training && n <= 1) {
        throw new ValueError(`${where}: expected more than 1 value per channel when training (input shape ${fmtShape(x.shape)})`);
      }
      const mu = mean(x, axes, true);
      const xc = sub(x, mu);
      const sumSq = sum(mul(xc, xc), axes, true);
      const variance = div(sumSq, n); // biased: what the batch is normalised with
      y = div(xc, sqrt(add(variance, this.eps)));
      if (this.training && this.trackRunningStats) this.updateRunningStats(mu.data, sumSq.data, n);
    } else {
      const rm = reshape(this.runningMean!, chan);
      const rv = reshape(this.runningVar!, chan);
      y = div(sub(x, rm), sqrt(add(rv, this.eps)));
    }
    if (this.affine) y = add(mul(y, reshape(this.weight!, chan)), reshape(this.bias!, chan));
    return y;
  }

  /**
   * running ← m·batch + (1 − m)·running, in torch's operand order, with the unbiased variance Σ(x − μ)²/(n − 1).
   * Plain loops over C values on the buffers' own storage: in place, nothing recorded, nothing allocated.
   */
  private updateRunningStats(mu: ArrayLike<number>, sumSq: ArrayLike<number>, n: number): void {
    const count = this.numBatchesTracked!.data;
    count[0] = count[0]! + 1;
    const m = this.momentum ?? 1 / count[0]!;
    const rm = this.runningMean!.data;
    const rv = this.runningVar!.data;
    for (let c = 0; c < this.numFeatures; c++) {
      rm[c] = m * mu[c]! + (1 - m) * rm[c]!;
      rv[c] = m * (sumSq[c]! / (n - 1)) + (1 - m) * rv[c]!;
    }
  }

  protected override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.affine}, track_running_stats=${this.trackRunningStats}`;
  }
}

/** torch.nn.BatchNorm1d over [N, C] or [N, C, L]: statistics per channel over N (and L). */
export class BatchNorm1d extends BatchNorm {
  protected layouts(): string[] {
    return [`[N, ${this.numFeatures}]`, `[N, ${this.numFeatures}, L]`];
  }
  protected rankOk(rank: number): boolean {
    return rank === 2 || rank === 3;
  }
}

/** torch.nn.BatchNorm2d over NCHW [N, C, H, W]: statistics per channel over N, H and W. */
export class BatchNorm2d extends BatchNorm {
  protected layouts(): string[] {
    return [`[N, ${this.numFeatures}, H, W]`];
  }
  protected rankOk(rank: number): boolean {
    return rank === 4;
  }
}

export interface LayerNormOptions {
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /** Learnable `weight` (init 1) and `bias` (init 0) of the normalized shape (default true). */
  elementwiseAffine?: boolean;
  /** With elementwiseAffine, whether to learn `bias` too (default true, torch ≥ 2.1). */
  bias?: boolean;
  dtype?: DType;
}

/** torch.nn.LayerNorm: each sample normalised over its last dims (= normalizedShape), biased variance. */
export class LayerNorm extends Module {
  readonly normalizedShape: readonly number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;

  constructor(normalizedShape: number | readonly number[], opts: LayerNormOptions = {}) {
    super();
    const shape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
      throw new ValueError(`LayerNorm: normalizedShape must be a positive integer or a non-empty array of them (got ${fmtValue(normalizedShape)})`);
    }
    this.normalizedShape = shape.slice();
    this.eps = checkPositive('LayerNorm', 'eps', opts.eps ?? 1e-5);
    this.elementwiseAffine = opts.elementwiseAffine ?? true;
    const dtype = checkDType('LayerNorm', opts.dtype ?? 'f32');
    if (this.elementwiseAffine) {
      this.registerParameter('weight', persistentFull(this.normalizedShape, 1, dtype));
      if (opts.bias ?? true) this.registerParameter('bias', persistentFull(this.normalizedShape, 0, dtype));
    }
  }

  get weight(): Tensor | undefined {
    return this.elementwiseAffine ? this.param('weight') : undefined;
  }
  get bias(): Tensor | undefined {
    return this.param('bias');
  }

  forward(x: Tensor): Tensor {
    const k = this.normalizedShape.length;
    if (x.ndim < k || !sameShape(x.shape.slice(x.ndim - k), this.normalizedShape)) {
      throw new ShapeError(
        `LayerNorm(${fmtShape(this.normalizedShape)}): input has shape ${fmtShape(x.shape)}, expected [..., ${this.normalizedShape.join(', ')}]`,
      );
    }
    const axes = Array.from({ length: k }, (_, i) => x.ndim - k + i);
    const xc = sub(x, mean(x, axes, true));
    const variance = mean(mul(xc, xc), axes, true);
    let y = div(xc, sqrt(add(variance, this.eps)));
    // weight and bias have the normalized shape: they broadcast over the leading axes as they are.
    const w = this.weight;
    const b = this.bias;
    if (w !== undefined) y = mul(y, w);
    if (b !== undefined) y = add(y, b);
    return y;
  }

  protected override extraRepr(): string {
    return `${fmtShape(this.normalizedShape)}, eps=${this.eps}, elementwise_affine=${this.elementwiseAffine}`;
  }
}
