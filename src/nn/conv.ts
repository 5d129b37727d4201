// Convolutional layers as Modules composed from ops (no backward code here): Conv2d, MaxPool2d, AvgPool2d,
// AdaptiveAvgPool2d(1) and Flatten, with PyTorch's parameter names, shapes and default init.
import { ShapeError, ValueError, checkInt, fmtShape } from '../errors.js';
import { type Conv2dOptions, type IntPair, conv2dAs, intPair } from '../ops/conv.js';
import { adaptiveAvgPool2d, avgPool2dAs, flatten, maxPool2dAs } from '../ops/pool.js';
import { type Tensor, checkDType } from '../tensor/tensor.js';
import { defaultBias, defaultWeight } from './init.js';
import type { LayerOptions } from './layers.js';
import { Module } from './module.js';

export interface Conv2dLayerOptions extends Conv2dOptions, LayerOptions {
  /** Learnable bias per output channel (default true). */
  bias?: boolean;
}

const tuple = ([h, w]: readonly [number, number]): string => `(${h}, ${w})`;

/**
 * torch.nn.Conv2d: weight [outC, inC/groups, kh, kw] and bias [outC], both U(−1/√fan_in, 1/√fan_in) with
 * fan_in = inC/groups·kh·kw (kaiming_uniform with a = √5, PyTorch's default). Input [N, inC, H, W].
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(inChannels: number, outChannels: number, kernelSize: IntPair, opts: Conv2dLayerOptions = {}) {
    super();
    this.inChannels = checkInt('Conv2d', 'inChannels', inChannels, 1);
    this.outChannels = checkInt('Conv2d', 'outChannels', outChannels, 1);
    this.kernelSize = intPair('Conv2d', 'kernelSize', kernelSize, 1);
    this.stride = intPair('Conv2d', 'stride', opts.stride ?? 1, 1);
    this.padding = intPair('Conv2d', 'padding', opts.padding ?? 0, 0);
    this.dilation = intPair('Conv2d', 'dilation', opts.dilation ?? 1, 1);
    this.groups = checkInt('Conv2d', 'groups', opts.groups ?? 1, 1);
    if (inChannels % this.groups !== 0) throw new ShapeError(`Conv2d: inChannels ${inChannels} do not divide by groups ${this.groups}`);
    if (outChannels % this.groups !== 0) throw new ShapeError(`Conv2d: outChannels ${outChannels} do not divide by groups ${this.groups}`);
    const dtype = checkDType('Conv2d', opts.dtype ?? 'f32');
    const shape = [outChannels, inChannels / this.groups, ...this.kernelSize];
    this.registerParameter('weight', defaultWeight(shape, dtype, opts.rng));
    const fanIn = (inChannels / this.groups) * this.kernelSize[0] * this.kernelSize[1];
    if (opts.bias ?? true) this.registerParameter('bias', defaultBias(outChannels, fanIn, dtype, opts.rng));
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  get bias(): Tensor | undefined {
    return this.param('bias');
  }

  /** How the layer names itself in messages: Conv2d(1, 16, kernel_size=(3, 3)). */
  private get label(): string {
    return `Conv2d(${this.inChannels}, ${this.outChannels}, kernel_size=${tuple(this.kernelSize)})`;
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.inChannels) {
      throw new ShapeError(
        `${this.label}: input has shape ${fmtShape(x.shape)}, expected [N,${this.inChannels},H,W] (weight ${fmtShape(this.weight.shape)})`,
      );
    }
    return conv2dAs(this.label, x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }

  protected override extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${tuple(this.kernelSize)}, stride=${tuple(this.stride)}`;
    if (this.padding[0] !== 0 || this.padding[1] !== 0) s += `, padding=${tuple(this.padding)}`;
    if (this.dilation[0] !== 1 || this.dilation[1] !== 1) s += `, dilation=${tuple(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (this.bias === undefined) s += ', bias=False';
    return s;
  }
}

/** torch.nn.MaxPool2d(kernelSize, stride = kernelSize, padding = 0). */
export class MaxPool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];

  constructor(kernelSize: IntPair, stride?: IntPair | null, padding: IntPair = 0) {
    super();
    this.kernelSize = intPair('MaxPool2d', 'kernelSize', kernelSize, 1);
    this.stride = stride === undefined || stride === null ? this.kernelSize : intPair('MaxPool2d', 'stride', stride, 1);
    this.padding = intPair('MaxPool2d', 'padding', padding, 0);
    // Checked here too so a bad layer fails when built, not at its first batch.
    poolPaddingCheck('MaxPool2d', this.kernelSize, this.padding);
  }

  forward(x: Tensor): Tensor {
    return maxPool2dAs(`MaxPool2d(kernel_size=${tuple(this.kernelSize)})`, x, this.kernelSize, this.stride, this.padding);
  }

  protected override extraRepr(): string {
    return `kernel_size=${tuple(this.kernelSize)}, stride=${tuple(this.stride)}, padding=${tuple(this.padding)}`;
  }
}

/** torch.nn.AvgPool2d(kernelSize, stride = kernelSize, padding = 0, countIncludePad = true). */
export class AvgPool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];

  constructor(kernelSize: IntPair, stride?: IntPair | null, padding: IntPair = 0, readonly countIncludePad = true) {
    super();
    this.kernelSize = intPair('AvgPool2d', 'kernelSize', kernelSize, 1);
    this.stride = stride === undefined || stride === null ? this.kernelSize : intPair('AvgPool2d', 'stride', stride, 1);
    this.padding = intPair('AvgPool2d', 'padding', padding, 0);
    poolPaddingCheck('AvgPool2d', this.kernelSize, this.padding);
  }

  forward(x: Tensor): Tensor {
    return avgPool2dAs(`AvgPool2d(kernel_size=${tuple(this.kernelSize)})`, x, this.kernelSize, this.stride, this.padding, this.countIncludePad);
  }

  protected override extraRepr(): string {
    return `kernel_size=${tuple(this.kernelSize)}, stride=${tuple(this.stride)}, padding=${tuple(this.padding)}`;
  }
}

function poolPaddingCheck(where: string, [kh, kw]: [number, number], [ph, pw]: [number, number]): void {
  if (2 * ph > kh || 2 * pw > kw) throw new ValueError(`${where}: padding ${tuple([ph, pw])} must be at most half the kernel ${kh}×${kw}`);
}

/** torch.nn.AdaptiveAvgPool2d(1): global average pooling to [N, C, 1, 1]. */
export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: [number, number];

  constructor(outputSize: IntPair = 1) {
    super();
    this.outputSize = intPair('AdaptiveAvgPool2d', 'outputSize', outputSize, 1);
    if (this.outputSize[0] !== 1 || this.outputSize[1] !== 1) {
      throw new ValueError(`AdaptiveAvgPool2d: only output size 1 (1×1) is supported (got ${tuple(this.outputSize)})`);
    }
  }

  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }

  protected override extraRepr(): string {
    return 'output_size=1';
  }
}

/** torch.nn.Flatten(startDim = 1, endDim = -1): [N, C, H, W] → [N, C·H·W] by default. */
export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }

  protected override extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}
