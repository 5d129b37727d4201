// A fused forward/backward for small dense networks (Linear with ReLU/Sigmoid/Tanh between): the same
// arithmetic as the autograd walk, written as plain loops over preallocated buffers, with no graph,
// no tensors and no allocation per step. For networks so small (the 2-2-1 seed network) that recording
// a graph would cost more than the math; anything else goes through the generic engine.
import { takeOverwriteMark } from '../autograd/engine.js';
import { ShapeError, ValueError, fmtShape } from '../errors.js';
import { Linear, ReLU, Sequential, Sigmoid, Tanh } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { type DType, type Storage, Tensor, allocStorage } from '../tensor/tensor.js';

type Act = 0 | 1 | 2 | 3; // none, relu, sigmoid, tanh
/** The activation a layer applies, by its class (not its name, which a subclass or a bundler changes). */
function actOf(m: Module): Act | undefined {
  return m instanceof ReLU ? 1 : m instanceof Sigmoid ? 2 : m instanceof Tanh ? 3 : undefined;
}

interface Dense {
  w: Tensor;
  b: Tensor | undefined;
  inF: number;
  outF: number;
  act: Act;
}

/** Losses the fused path computes: mean squared error on dense targets, cross-entropy on class indices. */
export type FusedLoss = 'mseLoss' | 'crossEntropy';

/** Why `model` cannot be fused, or null when it can (a Sequential of Linear layers, each optionally followed by one activation). */
export function fusedUnsupported(model: Module): string | null {
  if (!(model instanceof Sequential)) return `expected a Sequential, got ${model.constructor.name}`;
  if (!(model.layers[0] instanceof Linear)) return 'the first layer must be Linear';
  for (const [i, m] of model.layers.entries()) {
    if (m instanceof Linear) continue;
    if (actOf(m) === undefined) return `layer ${i} (${m.constructor.name}) is not Linear, ReLU, Sigmoid or Tanh`;
    if (!(model.layers[i - 1] instanceof Linear)) return `layer ${i} (${m.constructor.name}) must follow a Linear layer`;
  }
  return null;
}

/**
 * Compiles a small dense Sequential for fused training steps. The layers keep their own parameter
 * tensors: `step` reads the current weights and accumulates into `.grad`, so any optimizer applies.
 */
export class FusedDense {
  readonly dtype: DType;
  readonly inFeatures: number;
  readonly outFeatures: number;
  private readonly layers: Dense[];
  /** acts[0] is the input; acts[l+1] the output of layer l (after its activation). */
  private acts: Storage[] = [];
  private grads: Storage[] = [];
  private capacity = 0;

  constructor(model: Module) {
    const why = fusedUnsupported(model);
    if (why !== null) throw new ValueError(`FusedDense: cannot fuse this model: ${why}`);
    const seq = model as Sequential;
    this.layers = [];
    for (let i = 0; i < seq.layers.length; i++) {
      const m = seq.layers[i]!;
      if (m instanceof Linear) this.layers.push({ w: m.weight, b: m.bias, inF: m.inFeatures, outF: m.outFeatures, act: 0 });
      else this.layers[this.layers.length - 1]!.act = actOf(m)!;
    }
    for (let l = 1; l < this.layers.length; l++) {
      if (this.layers[l]!.inF !== this.layers[l - 1]!.outF) {
        throw new ShapeError(`FusedDense: layer ${l} takes ${this.layers[l]!.inF} features but the previous one gives ${this.layers[l - 1]!.outF}`);
      }
    }
    this.dtype = this.layers[0]!.w.dtype;
    this.inFeatures = this.layers[0]!.inF;
    this.outFeatures = this.layers[this.layers.length - 1]!.outF;
    this.reserve(1);
  }

  private reserve(n: number): void {
    if (n <= this.capacity) return;
    const sizes = [this.inFeatures, ...this.layers.map((d) => d.outF)];
    this.acts = sizes.map((f) => allocStorage(this.dtype, n * f, true, true));
    this.grads = sizes.map((f) => allocStorage(this.dtype, n * f, true, true));
    this.capacity = n;
  }

  /** The output of the last forward/step, [n, outFeatures] row-major (valid until the next call). */
  get output(): Storage {
    return this.acts[this.layers.length]!;
  }

  /** Forward only: returns the output buffer (see `output`). */
  forward(x: ArrayLike<number>, n: number): Storage {
    if (x.length < n * this.inFeatures) throw new ShapeError(`FusedDense: input holds ${x.length} values, ${n} samples need ${fmtShape([n, this.inFeatures])}`);
    this.reserve(n);
    const a0 = this.acts[0]!;
    for (let i = 0; i < n * this.inFeatures; i++) a0[i] = x[i]!;
    for (let l = 0; l < this.layers.length; l++) this.layerForward(l, n);
    return this.output;
  }

  private layerForward(l: number, n: number): void {
    const { w, b, inF, outF, act } = this.layers[l]!;
    const W = w.data;
    const B = b?.data;
    const a = this.acts[l]!;
    const z = this.acts[l + 1]!;
    for (let r = 0; r < n; r++) {
      for (let o = 0; o < outF; o++) {
        let s = 0;
        for (let k = 0; k < inF; k++) s += a[r * inF + k]! * W[o * inF + k]!;
        // Stored between steps so each rounds to the dtype as matmul, add and the activation would.
        const i = r * outF + o;
        z[i] = s;
        if (B !== undefined) z[i] = z[i]! + B[o]!;
        if (act === 1) z[i] = z[i]! > 0 ? z[i]! : 0;
        else if (act === 2) z[i] = 1 / (1 + Math.exp(-z[i]!));
        else if (act === 3) z[i] = Math.tanh(z[i]!);
      }
    }
  }

  /**
   * Forward, loss and backward of n samples; the loss is summed over samples (and output elements for
   * MSE) and scaled by `scale` (1/n gives the mean, as loss.backward() on a mean loss would). Gradients
   * are added to each parameter's `.grad` (created on first use). Returns the unscaled summed loss.
   */
  step(x: ArrayLike<number>, target: ArrayLike<number>, n: number, loss: FusedLoss, scale = 1 / n): number {
    const out = this.forward(x, n);
    const O = this.outFeatures;
    const want = loss === 'mseLoss' ? n * O : n;
    if (target.length < want) throw new ShapeError(`FusedDense: ${loss} target holds ${target.length} values, ${n} samples need ${want}`);
    const g = this.grads[this.layers.length]!;
    let total = 0;
    if (loss === 'mseLoss') {
      for (let i = 0; i < n * O; i++) {
        const d = out[i]! - target[i]!;
        total += d * d;
        g[i] = 2 * d * scale;
      }
    } else {
      for (let r = 0; r < n; r++) {
        const t = target[r]!;
        if (!Number.isInteger(t) || t < 0 || t >= O) throw new ValueError(`FusedDense: class index ${t} of sample ${r} is outside [0, ${O})`);
        let m = -Infinity;
        for (let o = 0; o < O; o++) m = Math.max(m, out[r * O + o]!);
        let se = 0;
        for (let o = 0; o < O; o++) se += Math.exp(out[r * O + o]! - m);
        const lse = m + Math.log(se);
        total += lse - out[r * O + t]!;
        for (let o = 0; o < O; o++) g[r * O + o] = (Math.exp(out[r * O + o]! - lse) - (o === t ? 1 : 0)) * scale;
      }
    }
    for (let l = this.layers.length - 1; l >= 0; l--) this.layerBackward(l, n);
    return total;
  }

  /** p's gradient buffer to accumulate into (made on first use; zeroed when marked stale, see overwriteNextGradient). */
  private gradOf(p: Tensor): Storage {
    const g = (p.grad ??= new Tensor(allocStorage(this.dtype, p.size, true, true), p.shape));
    if (takeOverwriteMark(g)) g.data.fill(0);
    return g.data;
  }

  private layerBackward(l: number, n: number): void {
    const { w, b, inF, outF, act } = this.layers[l]!;
    const y = this.acts[l + 1]!;
    const g = this.grads[l + 1]!;
    // Through the activation, from its saved output: relu' = y > 0, σ' = y(1 − y), tanh' = 1 − y².
    if (act !== 0) {
      for (let i = 0; i < n * outF; i++) {
        const v = y[i]!;
        g[i] = act === 1 ? (v > 0 ? g[i]! : 0) : act === 2 ? g[i]! * v * (1 - v) : g[i]! * (1 - v * v);
      }
    }
    const a = this.acts[l]!;
    const W = w.data;
    const dW = this.gradOf(w);
    for (let o = 0; o < outF; o++) {
      for (let k = 0; k < inF; k++) {
        let s = 0;
        for (let r = 0; r < n; r++) s += g[r * outF + o]! * a[r * inF + k]!;
        dW[o * inF + k] = dW[o * inF + k]! + s;
      }
    }
    if (b !== undefined) {
      const dB = this.gradOf(b);
      for (let o = 0; o < outF; o++) {
        let s = 0;
        for (let r = 0; r < n; r++) s += g[r * outF + o]!;
        dB[o] = dB[o]! + s;
      }
    }
    if (l === 0) return;
    const gp = this.grads[l]!;
    for (let r = 0; r < n; r++) {
      for (let k = 0; k < inF; k++) {
        let s = 0;
        for (let o = 0; o < outF; o++) s += g[r * outF + o]! * W[o * inF + k]!;
        gp[r * inF + k] = s;
      }
    }
  }
}

