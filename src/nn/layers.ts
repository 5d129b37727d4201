// Dense layers and activations as Modules composed from ops (no backward code here).
import { ShapeError, fmtShape } from '../errors.js';
import { type Rng } from '../random.js';
import { add, relu, sigmoid, tanh } from '../ops/elementwise.js';
import { logSoftmax, softmax } from '../ops/composite.js';
import { matmul } from '../ops/matmul.js';
import { checkInt } from '../errors.js';
import { type DType, Tensor, checkDType } from '../tensor/tensor.js';
import { defaultBias, defaultWeight } from './init.js';
import { Module } from './module.js';

export interface LayerOptions {
  dtype?: DType;
  /** Where initial values come from (default: the generator seeded by manualSeed). */
  rng?: Rng;
}

const TRANSPOSE_B = { transposeB: true } as const; // one options object, not one per forward

/** y = x·Wᵀ + b with W of shape [out, in], as torch.nn.Linear. */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(inFeatures: number, outFeatures: number, opts: LayerOptions & { bias?: boolean } = {}) {
    super();
    this.inFeatures = checkInt('Linear', 'inFeatures', inFeatures, 1);
    this.outFeatures = checkInt('Linear', 'outFeatures', outFeatures, 1);
    const dtype = checkDType('Linear', opts.dtype ?? 'f32');
    this.registerParameter('weight', defaultWeight([outFeatures, inFeatures], dtype, opts.rng));
    if (opts.bias ?? true) this.registerParameter('bias', defaultBias(outFeatures, inFeatures, dtype, opts.rng));
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  get bias(): Tensor | undefined {
    return this.param('bias');
  }

  forward(x: Tensor): Tensor {
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== this.inFeatures) {
      throw new ShapeError(`Linear(${this.inFeatures}, ${this.outFeatures}): input has shape ${fmtShape(x.shape)}, expected [..., ${this.inFeatures}]`);
    }
    const y = matmul(x, this.weight, TRANSPOSE_B);
    const b = this.bias;
    return b === undefined ? y : add(y, b);
  }

  protected override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias !== undefined}`;
  }
}

/** Modules applied in order; children are named '0', '1', ... as in torch.nn.Sequential. */
export class Sequential extends Module {
  readonly layers: readonly Module[];

  constructor(...layers: Module[]) {
    super();
    layers.forEach((m, i) => this.registerModule(String(i), m));
    this.layers = layers;
  }

  forward(x: Tensor): Tensor {
    let h = x;
    for (let i = 0; i < this.layers.length; i++) h = this.layers[i]!.forward(h); // for-of allocates until optimised
    return h;
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

export class Softmax extends Module {
  constructor(readonly dim = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return softmax(x, this.dim);
  }
  protected override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}

export class LogSoftmax extends Module {
  constructor(readonly dim = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return logSoftmax(x, this.dim);
  }
  protected override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}
