// Recurrent layers RNN, LSTM and GRU, composed from primitives (no backward code): backprop through time
// is the engine's ordinary reverse walk over the unrolled steps. Parameters follow torch.nn.RNN/LSTM/GRU.
//
// Truncated BPTT over a stream: carry the state from one batch to the next through detachState, which
// cuts it from the graph (so backward stops at the batch boundary) and copies it out of the step arena
// (which the next step reuses):
//
//   let state: LSTMState | undefined;
//   for (const batch of stream) {
//     const { output, hidden } = lstm.run(batch.x, state);
//     lossOf(output, batch.y).backward();
//     state = detachState(hidden);
//   }
import { DTypeError, ShapeError, ValueError, checkInt, fmtShape, fmtValue } from '../errors.js';
import { gruCell, lstmCellOutput, lstmCellState } from '../ops/cells.js';
import { add, relu, tanh } from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';
import { concat, reshape, slice } from '../ops/shape.js';
import { checkTensor } from '../ops/util.js';
import { sameShape } from '../tensor/shape.js';
import { type DType, Tensor, checkDType } from '../tensor/tensor.js';
import { uniform } from './init.js';
import type { LayerOptions } from './layers.js';
import { Module } from './module.js';

export interface RecurrentOptions extends LayerOptions {
  /** Stacked layers; layer k > 0 reads layer k−1's outputs (default 1). */
  numLayers?: number;
  /** Learn bias_ih_l{k} and bias_hh_l{k} (default true). */
  bias?: boolean;
  /** Input [N, T, F] and output [N, T, H] instead of [T, N, F] and [T, N, H] (default false, as PyTorch). */
  batchFirst?: boolean;
  /** forward() returns only the top layer's last step [N, H] instead of all steps (default false). */
  returnLast?: boolean;
  /**
   * forward() starts from the final state of the previous forward (detached: truncated BPTT over a
   * stream whose row i continues row i of the previous batch), or from zeros when the batch size changed
   * or after resetState() (default false, as PyTorch, whose modules keep no state).
   */
  stateful?: boolean;
}

export interface RNNOptions extends RecurrentOptions {
  nonlinearity?: 'tanh' | 'relu';
}

/** An LSTM's state: hidden and cell, each [numLayers, N, H] (PyTorch's (h_n, c_n)). */
export interface LSTMState {
  h: Tensor;
  c: Tensor;
}

export interface RecurrentResult<S> {
  /** The top layer's hidden state at every step: [T, N, H], or [N, T, H] with batchFirst. */
  output: Tensor;
  /** The final state of every layer, [numLayers, N, H] (for an LSTM, h and c). */
  hidden: S;
}

/**
 * The state cut from the graph and copied to persistent storage, to start the next batch of a stream
 * with (truncated BPTT): gradients of the next batch stop here, and the values survive an arena reset.
 */
export function detachState<S extends Tensor | LSTMState>(state: S): S {
  if (state instanceof Tensor) return state.clone() as S;
  return { h: state.h.clone(), c: state.c.clone() } as S;
}

/** One layer's state during the unrolled loop; null stands for PyTorch's default zero state. */
interface CellState {
  h: Tensor | null;
  c: Tensor | null;
}

/** One layer's parameters for a run, with what can be combined once per run combined. */
interface LayerWeights {
  wih: Tensor;
  whh: Tensor;
  bih: Tensor | null;
  bhh: Tensor | null;
  /** bih + bhh, added once per step where the cell allows (RNN, LSTM). */
  b: Tensor | null;
}

/** x·Wᵀ, W stored [out, in] as in Linear. */
const lin = (x: Tensor, w: Tensor): Tensor => matmul(x, w, { transposeB: true });
const addMaybe = (a: Tensor, b: Tensor | null): Tensor => (b === null ? a : add(a, b));

/** What RNN, LSTM and GRU share: parameters, checks, the time and layer loops. Subclasses give the cell. */
abstract class RecurrentBase<S extends Tensor | LSTMState> extends Module {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly bias: boolean;
  readonly batchFirst: boolean;
  readonly returnLast: boolean;
  readonly stateful: boolean;
  /** The detached final state of the last forward, when stateful. */
  private carried: S | null = null;
  /** Whether the cell adds b_ih + b_hh as one bias (not GRU: its b_hn sits inside r ⊙ (…)). */
  protected readonly foldsBias: boolean = true;

  constructor(
    protected readonly kind: string,
    gates: number,
    inputSize: number,
    hiddenSize: number,
    opts: RecurrentOptions,
  ) {
    super();
    this.inputSize = checkInt(kind, 'inputSize', inputSize, 1);
    this.hiddenSize = checkInt(kind, 'hiddenSize', hiddenSize, 1);
    this.numLayers = checkInt(kind, 'numLayers', opts.numLayers ?? 1, 1);
    this.bias = flag(kind, 'bias', opts.bias, true);
    this.batchFirst = flag(kind, 'batchFirst', opts.batchFirst, false);
    this.returnLast = flag(kind, 'returnLast', opts.returnLast, false);
    this.stateful = flag(kind, 'stateful', opts.stateful, false);
    const dtype = checkDType(kind, opts.dtype ?? 'f32');
    // PyTorch draws every parameter from U(−1/√H, 1/√H), in this (state_dict) order.
    const bound = 1 / Math.sqrt(hiddenSize);
    const GH = gates * hiddenSize;
    for (let k = 0; k < this.numLayers; k++) {
      const inK = k === 0 ? inputSize : hiddenSize;
      this.registerParameter(`weight_ih_l${k}`, uniform([GH, inK], bound, dtype, opts.rng));
      this.registerParameter(`weight_hh_l${k}`, uniform([GH, hiddenSize], bound, dtype, opts.rng));
      if (this.bias) {
        this.registerParameter(`bias_ih_l${k}`, uniform([GH], bound, dtype, opts.rng));
        this.registerParameter(`bias_hh_l${k}`, uniform([GH], bound, dtype, opts.rng));
      }
    }
  }

  /** One step of one layer: the new state from the input x_t [N, in] and the previous state. */
  protected abstract cell(x: Tensor, s: CellState, w: LayerWeights): CellState;

  /** The caller's initial state as per-layer [N, H] tensors (after checking its shape). */
  protected abstract initialState(h0: S, N: number, dtype: DType): CellState[];

  /** The final per-layer states as the public state type. */
  protected abstract finalState(states: CellState[], N: number): S;

  /** All steps, or the last step with returnLast: fits Sequential. */
  forward(x: Tensor): Tensor {
    if (!this.stateful) {
      const { output, last } = this.unroll(x, undefined, !this.returnLast);
      return this.returnLast ? last : output!;
    }
    const N = x.shape[this.batchFirst ? 0 : 1]!;
    const c = this.carried;
    const h0 = c !== null && (c instanceof Tensor ? c : c.h).shape[1] === N ? c : undefined;
    const { output, last, states } = this.unroll(x, h0, !this.returnLast);
    this.carried = detachState(this.finalState(states, N));
    return this.returnLast ? last : output!;
  }

  /** The state the next forward starts from (stateful layers), or null for zeros. */
  get carriedState(): S | null {
    return this.carried;
  }

  /** Sets the state the next forward starts from (null: zeros); a worker restores a stream's state this way. */
  set carriedState(s: S | null) {
    this.carried = s;
  }

  /** The next forward starts from zeros (a new stream). */
  resetState(): void {
    this.carried = null;
  }

  /**
   * The output at every step and the final state of every layer. `h0` (default zeros) is the state to
   * start from, e.g. the detachState of the previous batch's `hidden`.
   */
  run(x: Tensor, h0?: S): RecurrentResult<S> {
    const { output, states } = this.unroll(x, h0, true);
    return { output: output!, hidden: this.finalState(states, x.shape[this.batchFirst ? 0 : 1]!) };
  }

  private unroll(x: Tensor, h0: S | undefined, wantOutput: boolean): { output: Tensor | null; last: Tensor; states: CellState[] } {
    checkTensor(this.kind, 'x', x);
    const F = this.inputSize;
    const H = this.hiddenSize;
    const order = this.batchFirst ? '[N, T' : '[T, N';
    if (x.ndim !== 3 || x.shape[2] !== F) {
      throw new ShapeError(`${this.describe()}: input has shape ${fmtShape(x.shape)}, expected ${order}, ${F}]`);
    }
    const dtype = this.dtype;
    if (x.dtype !== dtype) throw new DTypeError(`${this.describe()}: input is ${x.dtype} but the parameters are ${dtype}`);
    const tAxis = this.batchFirst ? 1 : 0;
    const T = x.shape[tAxis]!;
    const N = x.shape[1 - tAxis]!;
    if (T === 0 || N === 0) throw new ShapeError(`${this.describe()}: input has shape ${fmtShape(x.shape)}, a sequence needs at least one step and one sample`);
    const states = h0 === undefined ? Array.from({ length: this.numLayers }, () => ({ h: null, c: null })) : this.initialState(h0, N, dtype);

    // Why per-step input products instead of one [T·N, F]·W_ihᵀ for all steps: slicing step t out of
    // that product records a slice whose backward materialises a zero gradient of the whole [T, N, 4H]
    // product, and the engine sums T of them — O(T²·N·H) time and arena memory. Here layer 0 slices
    // the input (no backward at all when the input is data) and upper layers read the per-step outputs
    // of the layer below directly, so nothing is ever sliced out of a graph-carrying sequence tensor.
    // Measured (LSTM 32→128, T 32, N 64, f32, training step): ~345 ms this way, ~470 ms precomputed.
    // An input that requires grad (an Embedding's output) still pays O(T²·N·F) for its T slices.
    let seq: Tensor[] = [];
    for (let t = 0; t < T; t++) seq.push(reshape(slice(x, tAxis, t, t + 1), [N, F]));
    for (let k = 0; k < this.numLayers; k++) {
      const w = this.weights(k);
      let s = states[k]!;
      const next: Tensor[] = [];
      for (const xt of seq) {
        s = this.cell(xt, s, w);
        next.push(s.h!);
      }
      states[k] = s;
      seq = next;
    }
    const last = seq[T - 1]!;
    if (!wantOutput) return { output: null, last, states };
    const stepShape = this.batchFirst ? [N, 1, H] : [1, N, H];
    const output = T === 1 ? reshape(last, stepShape) : concat(seq.map((h) => reshape(h, stepShape)), tAxis);
    return { output, last, states };
  }

  private weights(k: number): LayerWeights {
    const bih = this.bias ? this.param(`bias_ih_l${k}`) : null;
    const bhh = this.bias ? this.param(`bias_hh_l${k}`) : null;
    return {
      wih: this.param(`weight_ih_l${k}`),
      whh: this.param(`weight_hh_l${k}`),
      bih,
      bhh,
      b: bih === null || bhh === null || !this.foldsBias ? null : add(bih, bhh),
    };
  }

  /** Per-layer [N, H] views of a [numLayers, N, H] state tensor, after checking it. */
  protected splitState(name: string, s: unknown, N: number, dtype: DType): Tensor[] {
    if (!(s instanceof Tensor)) throw new ValueError(`${this.describe()}: initial ${name} must be a Tensor (got ${fmtValue(s)})`);
    const want = [this.numLayers, N, this.hiddenSize];
    if (!sameShape(s.shape, want)) {
      throw new ShapeError(`${this.describe()}: initial ${name} has shape ${fmtShape(s.shape)}, expected ${fmtShape(want)} (numLayers, N, hidden_size)`);
    }
    if (s.dtype !== dtype) throw new DTypeError(`${this.describe()}: initial ${name} is ${s.dtype} but the parameters are ${dtype}`);
    if (this.numLayers === 1) return [reshape(s, [N, this.hiddenSize])];
    return Array.from({ length: this.numLayers }, (_, k) => reshape(slice(s, 0, k, k + 1), [N, this.hiddenSize]));
  }

  /** Per-layer [N, H] tensors stacked into [numLayers, N, H]. */
  protected stack(hs: Tensor[], N: number): Tensor {
    const parts = hs.map((h) => reshape(h, [1, N, this.hiddenSize]));
    return parts.length === 1 ? parts[0]! : concat(parts, 0);
  }

  /** The layer as it reads in error messages. */
  protected describe(): string {
    return `${this.kind}(input_size=${this.inputSize}, hidden_size=${this.hiddenSize})`;
  }

  protected override extraRepr(): string {
    let s = `${this.inputSize}, ${this.hiddenSize}`;
    if (this.numLayers !== 1) s += `, num_layers=${this.numLayers}`;
    if (!this.bias) s += ', bias=False';
    if (this.batchFirst) s += ', batch_first=True';
    return s;
  }
}

function flag(where: string, name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new ValueError(`${where}: ${name} must be a boolean (got ${fmtValue(v)})`);
  return v;
}

/** Elman RNN, torch.nn.RNN: h' = act(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh), act = tanh or relu. */
export class RNN extends RecurrentBase<Tensor> {
  readonly nonlinearity: 'tanh' | 'relu';

  constructor(inputSize: number, hiddenSize: number, opts: RNNOptions = {}) {
    super('RNN', 1, inputSize, hiddenSize, opts);
    const nl = opts.nonlinearity ?? 'tanh';
    if (nl !== 'tanh' && nl !== 'relu') throw new ValueError(`RNN: nonlinearity must be 'tanh' or 'relu' (got ${fmtValue(nl)})`);
    this.nonlinearity = nl;
  }

  protected cell(x: Tensor, { h }: CellState, w: LayerWeights): CellState {
    let z = lin(x, w.wih);
    if (h !== null) z = add(z, lin(h, w.whh));
    z = addMaybe(z, w.b);
    return { h: this.nonlinearity === 'tanh' ? tanh(z) : relu(z), c: null };
  }

  protected initialState(h0: Tensor, N: number, dtype: DType): CellState[] {
    return this.splitState('h', h0, N, dtype).map((h) => ({ h, c: null }));
  }

  protected finalState(states: CellState[], N: number): Tensor {
    return this.stack(states.map((s) => s.h!), N);
  }

  protected override extraRepr(): string {
    return super.extraRepr() + (this.nonlinearity === 'relu' ? ', nonlinearity=relu' : '');
  }
}

/**
 * torch.nn.LSTM, gates in PyTorch's order i, f, g, o along the rows of W_ih [4H, in] and W_hh [4H, H]:
 *   i, f, g, o = σ, σ, tanh, σ of (x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh)
 *   c' = f ⊙ c + i ⊙ g,   h' = o ⊙ tanh(c')
 */
export class LSTM extends RecurrentBase<LSTMState> {
  constructor(inputSize: number, hiddenSize: number, opts: RecurrentOptions = {}) {
    super('LSTM', 4, inputSize, hiddenSize, opts);
  }

  protected cell(x: Tensor, { h, c }: CellState, w: LayerWeights): CellState {
    let z = lin(x, w.wih);
    if (h !== null) z = add(z, lin(h, w.whh)); // a zero initial state contributes exactly nothing
    z = addMaybe(z, w.b);
    const c2 = lstmCellState(z, c);
    return { h: lstmCellOutput(z, c2), c: c2 };
  }

  protected initialState(h0: LSTMState, N: number, dtype: DType): CellState[] {
    if (h0 === null || typeof h0 !== 'object' || h0 instanceof Tensor) {
      throw new ValueError(`${this.describe()}: initial state must be { h, c } (got ${h0 instanceof Tensor ? h0.toString() : fmtValue(h0)})`);
    }
    const hs = this.splitState('h', h0.h, N, dtype);
    const cs = this.splitState('c', h0.c, N, dtype);
    return hs.map((h, k) => ({ h, c: cs[k]! }));
  }

  protected finalState(states: CellState[], N: number): LSTMState {
    return { h: this.stack(states.map((s) => s.h!), N), c: this.stack(states.map((s) => s.c!), N) };
  }
}

/**
 * torch.nn.GRU, gates in PyTorch's order r, z, n along the rows of W_ih [3H, in] and W_hh [3H, H]:
 *   r = σ(x·W_irᵀ + b_ir + h·W_hrᵀ + b_hr),  z = σ(x·W_izᵀ + b_iz + h·W_hzᵀ + b_hz)
 *   n = tanh(x·W_inᵀ + b_in + r ⊙ (h·W_hnᵀ + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h  (computed as n + z ⊙ (h − n))
 */
export class GRU extends RecurrentBase<Tensor> {
  protected override readonly foldsBias = false;

  constructor(inputSize: number, hiddenSize: number, opts: RecurrentOptions = {}) {
    super('GRU', 3, inputSize, hiddenSize, opts);
  }

  protected cell(x: Tensor, { h }: CellState, w: LayerWeights): CellState {
    // b_hh cannot be folded into b_ih here: its n part sits inside r ⊙ (…).
    const xg = addMaybe(lin(x, w.wih), w.bih);
    // h·W_hhᵀ + b_hh; with the zero initial state only b_hh is left (one row for all samples, or nothing).
    const hg = h === null ? w.bhh : addMaybe(lin(h, w.whh), w.bhh);
    return { h: gruCell(xg, hg, h), c: null };
  }

  protected initialState(h0: Tensor, N: number, dtype: DType): CellState[] {
    return this.splitState('h', h0, N, dtype).map((h) => ({ h, c: null }));
  }

  protected finalState(states: CellState[], N: number): Tensor {
    return this.stack(states.map((s) => s.h!), N);
  }
}
