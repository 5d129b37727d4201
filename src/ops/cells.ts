// The LSTM and GRU cells' elementwise steps as fused primitives, forward and backward side by side. The
// layers (nn/recurrent.ts) do the matrix products; these replace the dozen slices, activations and
// products per step that would otherwise each make a tensor and a graph node, and whose slice backwards
// each materialise a zero gradient of the whole gate block. Kernels: kernels/cells.ts.
import { ShapeError, fmtShape } from '../errors.js';
import { defineOp, grads, isGradEnabled, recordOp } from '../autograd/engine.js';
import { gruBackward, gruForward, lstmOutputBackward, lstmOutputForward, lstmStateBackward, lstmStateForward } from '../kernels/cells.js';
import { type Tensor, empty, stableShape } from '../tensor/tensor.js';
import { checkTensor, sameDType } from './util.js';

const stateShape: number[] = [0, 0]; // scratch for [N, H]

/** N and H from gates [N, k·H], checking the state tensors against them. */
function cellSizes(op: string, gates: Tensor, k: number, gateName: string, states: readonly (readonly [string, Tensor | null])[]): [number, number] {
  const [N, G] = gates.shape;
  if (gates.ndim !== 2 || G! % k !== 0 || G === 0) {
    throw new ShapeError(`${op}: ${gateName} has shape ${fmtShape(gates.shape)}, expected [N, ${k}·hidden_size]`);
  }
  const H = G! / k;
  for (const [name, s] of states) {
    if (s === null) continue;
    if (s.ndim !== 2 || s.shape[0] !== N || s.shape[1] !== H) {
      throw new ShapeError(`${op}: ${name} has shape ${fmtShape(s.shape)}, expected [${N}, ${H}] to match ${gateName} ${fmtShape(gates.shape)}`);
    }
    sameDType(op, gates, s);
  }
  return [N!, H];
}

function stateOf(gates: Tensor, N: number, H: number): Tensor {
  stateShape[0] = N;
  stateShape[1] = H;
  return empty(stableShape(stateShape), gates.dtype);
}

/**
 * The activations a cell's forward keeps for its backward ([N, k·H]) when the op will be recorded (grad
 * enabled, some input requiring grad): its backward then reads them instead of recomputing an exponential
 * per gate (about a third of an LSTM training step's cell time).
 */
function keptActivations(like: Tensor, N: number, k: number, H: number, a: Tensor | null, b: Tensor | null, c: Tensor | null = null): Tensor | null {
  if (!isGradEnabled() || !(a?.requiresGrad === true || b?.requiresGrad === true || c?.requiresGrad === true)) return null;
  stateShape[0] = N;
  stateShape[1] = k * H;
  return empty(stableShape(stateShape), like.dtype);
}

const LSTM_CELL_STATE = defineOp<Tensor | null>({
  name: 'lstmCellState',
  inputs: ['gates', 'c'],
  backward: (gy, { inputs, attrs: act }) => {
    const z = inputs[0]!;
    const c = inputs[1] ?? null;
    const [N, G] = z.shape as [number, number];
    const dz = z.requiresGrad ? empty(z.shape, z.dtype) : null;
    const dc = c?.requiresGrad === true ? empty(c.shape, c.dtype) : null;
    lstmStateBackward(act!.data, c?.data ?? null, gy.data, dz?.data ?? null, dc?.data ?? null, N, G / 4);
    return grads(dz, dc);
  },
});

/**
 * An LSTM cell's new cell state c' = σ(f)·c + σ(i)·tanh(g) from its gates [N, 4H] (pre-activations in
 * PyTorch's order i, f, g, o) and cell state c [N, H]; c = null is the zero state.
 */
export function lstmCellState(gates: Tensor, c: Tensor | null): Tensor {
  checkTensor('lstmCellState', 'gates', gates);
  if (c !== null) checkTensor('lstmCellState', 'c', c);
  const [N, H] = cellSizes('lstmCellState', gates, 4, 'gates', [['c', c]]);
  const out = stateOf(gates, N, H);
  const act = keptActivations(gates, N, 3, H, gates, c);
  lstmStateForward(gates.data, c?.data ?? null, out.data, act?.data ?? null, N, H);
  return c === null ? recordOp(LSTM_CELL_STATE, out, act, gates) : recordOp(LSTM_CELL_STATE, out, act, gates, c);
}

const LSTM_CELL_OUTPUT = defineOp<Tensor | null>({
  name: 'lstmCellOutput',
  inputs: ['gates', 'c'],
  backward: (gy, { inputs, attrs: act }) => {
    const z = inputs[0]!;
    const c = inputs[1]!;
    const [N, G] = z.shape as [number, number];
    const dz = z.requiresGrad ? empty(z.shape, z.dtype) : null;
    const dc = c.requiresGrad ? empty(c.shape, c.dtype) : null;
    lstmOutputBackward(act!.data, gy.data, dz?.data ?? null, dc?.data ?? null, N, G / 4);
    return grads(dz, dc);
  },
});

/** An LSTM cell's new hidden state h' = σ(o)·tanh(c') from its gates [N, 4H] and new cell state c' [N, H]. */
export function lstmCellOutput(gates: Tensor, c: Tensor): Tensor {
  checkTensor('lstmCellOutput', 'gates', gates);
  checkTensor('lstmCellOutput', 'c', c);
  const [N, H] = cellSizes('lstmCellOutput', gates, 4, 'gates', [['c', c]]);
  const out = stateOf(gates, N, H);
  const act = keptActivations(gates, N, 2, H, gates, c);
  lstmOutputForward(gates.data, c.data, out.data, act?.data ?? null, N, H);
  return recordOp(LSTM_CELL_OUTPUT, out, act, gates, c);
}

const GRU_CELL = defineOp<Tensor | null>({
  name: 'gruCell',
  inputs: ['inputGates', 'hiddenGates', 'h'],
  backward: (gy, { inputs, attrs: act }) => {
    const gi = inputs[0]!;
    const [N, G] = gi.shape as [number, number];
    // Which optional inputs were given: with two, the second is hiddenGates ([N, 3H] or [3H]) or h ([N, H]).
    const second = inputs[1];
    const gh = second !== undefined && second.shape[second.ndim - 1] === G ? second : null;
    const h = inputs.length === 3 ? inputs[2]! : gh === null ? (second ?? null) : null;
    const dgi = gi.requiresGrad ? empty(gi.shape, gi.dtype) : null;
    // A shared [3H] row gets per-sample gradients [N, 3H]; the engine sums them back to the row.
    const dgh = gh?.requiresGrad === true ? empty(gi.shape, gi.dtype) : null;
    const dh = h?.requiresGrad === true ? empty(h.shape, h.dtype) : null;
    gruBackward(act!.data, gh?.data ?? null, gh?.ndim === 1, h?.data ?? null, gy.data, dgi?.data ?? null, dgh?.data ?? null, dh?.data ?? null, N, G / 3);
    return gh !== null ? grads(dgi, dgh, dh) : grads(dgi, dh);
  },
});

/**
 * A GRU cell's new hidden state from inputGates = x·W_ihᵀ + b_ih [N, 3H], hiddenGates = h·W_hhᵀ + b_hh
 * [N, 3H] (or one row [3H] shared by every sample, or null for zeros) and h [N, H] (null: the zero state),
 * gates in PyTorch's order r, z, n:
 *   r = σ(i_r + h_r), z = σ(i_z + h_z), n = tanh(i_n + r·h_n), h' = (1 − z)·n + z·h
 */
export function gruCell(inputGates: Tensor, hiddenGates: Tensor | null, h: Tensor | null): Tensor {
  checkTensor('gruCell', 'inputGates', inputGates);
  if (hiddenGates !== null) checkTensor('gruCell', 'hiddenGates', hiddenGates);
  if (h !== null) checkTensor('gruCell', 'h', h);
  const [N, H] = cellSizes('gruCell', inputGates, 3, 'inputGates', [['h', h]]);
  const gh = hiddenGates;
  if (gh !== null) {
    const row = gh.ndim === 1 && gh.shape[0] === 3 * H;
    if (!row && (gh.ndim !== 2 || gh.shape[0] !== N || gh.shape[1] !== 3 * H)) {
      throw new ShapeError(`gruCell: hiddenGates has shape ${fmtShape(gh.shape)}, expected [${N}, ${3 * H}] or [${3 * H}] to match inputGates ${fmtShape(inputGates.shape)}`);
    }
    sameDType('gruCell', inputGates, gh);
  }
  const out = stateOf(inputGates, N, H);
  const act = keptActivations(inputGates, N, 3, H, inputGates, gh, h);
  gruForward(inputGates.data, gh?.data ?? null, gh?.ndim === 1, h?.data ?? null, out.data, act?.data ?? null, N, H);
  if (gh === null) return h === null ? recordOp(GRU_CELL, out, act, inputGates) : recordOp(GRU_CELL, out, act, inputGates, h);
  return h === null ? recordOp(GRU_CELL, out, act, inputGates, gh) : recordOp(GRU_CELL, out, act, inputGates, gh, h);
}
