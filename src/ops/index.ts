// The op table: every differentiable operation, its family, and its derivative in one line — the
// analogue of PyTorch's derivatives.yaml. The code beside each forward (in the family file) is the
// authority; this table is what a reader scans, and what the gradient property tests iterate over.
export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './matmul.js';
export * from './composite.js';
export { conv2d, type Conv2dOptions, type IntPair } from './conv.js';
export { maxPool2d, avgPool2d, adaptiveAvgPool2d, flatten } from './pool.js';
export { lstmCellState, lstmCellOutput, gruCell } from './cells.js';
export type { TensorLike } from './util.js';

export type OpKind = 'primitive' | 'composite';

/** name → [kind, derivative] (gy: gradient of the output; out: the output). */
export const OP_TABLE: Readonly<Record<string, readonly [OpKind, string]>> = {
  add: ['primitive', 'a: gy · b: gy (broadcast undone by the engine)'],
  sub: ['primitive', 'a: gy · b: −gy'],
  mul: ['primitive', 'a: gy·b · b: gy·a'],
  div: ['primitive', 'a: gy/b · b: −gy·out/b'],
  pow: ['primitive', 'a: gy·b·a^(b−1) · b: gy·out·ln a'],
  neg: ['primitive', 'x: −gy'],
  exp: ['primitive', 'x: gy·out'],
  log: ['primitive', 'x: gy/x'],
  sqrt: ['primitive', 'x: gy/(2·out)'],
  abs: ['primitive', 'x: gy·sign(x)'],
  relu: ['primitive', 'x: gy·[out > 0]'],
  sigmoid: ['primitive', 'x: gy·out·(1 − out)'],
  tanh: ['primitive', 'x: gy·(1 − out²)'],
  clamp: ['primitive', 'x: gy·[min ≤ x ≤ max]'],
  where: ['primitive', 'a: gy·[c] · b: gy·[¬c]'],
  sum: ['primitive', 'x: broadcastTo(gy, x.shape)'],
  max: ['primitive', 'x: gy·[x = out]/count(x = out)'],
  reshape: ['primitive', 'x: reshape(gy, x.shape)'],
  broadcastTo: ['primitive', 'x: sumTo(gy, x.shape) (by the engine)'],
  permute: ['primitive', 'x: permute(gy, dims⁻¹)'],
  slice: ['primitive', 'x: zeros with gy placed at start'],
  concat: ['primitive', 'tensors[i]: slice(gy, axis, offset_i, offset_i + n_i)'],
  gather: ['primitive', 'x: scatter-add of gy at index'],
  indexSelect: ['primitive', 'x: scatter-add of gy at index'],
  matmul: ['primitive', 'a: gy·op(b)ᵀ · b: op(a)ᵀ·gy (transposed layouts read in place)'],
  mean: ['composite', 'sum(x)/n'],
  transpose: ['composite', 'permute with two axes swapped'],
  logSumExp: ['composite', 'log(sum(exp(x − m))) + m, m = max(x) detached'],
  logSoftmax: ['composite', 'x − logSumExp(x)'],
  softmax: ['composite', 'exp(logSoftmax(x))'],
  conv2d: ['primitive', 'x: col2im(Wᵀ·gy) · weight: Σₙ gy·im2col(x)ᵀ · bias: Σ gy over N, H, W'],
  maxPool2d: ['primitive', 'x: gy scattered to each window\'s argmax (first on ties)'],
  avgPool2d: ['primitive', 'x: gy/divisor spread over each window\'s real positions'],
  adaptiveAvgPool2d: ['composite', 'mean(x, [H, W], keepdim) (1×1 output)'],
  flatten: ['composite', 'reshape merging startDim..endDim'],
  lstmCellState: ['primitive', 'gates: gy·[tanh g·σ\'(i), c·σ\'(f), σ(i)·tanh\'(g), 0] · c: gy·σ(f)'],
  lstmCellOutput: ['primitive', 'gates: gy·[0, 0, 0, tanh c·σ\'(o)] · c: gy·σ(o)·tanh\'(c)'],
  gruCell: ['primitive', 'dn = gy·(1−z)·tanh\'; inputGates: [dn·h_n·σ\'(r), gy·(h−n)·σ\'(z), dn] · hiddenGates: same with dn·r for n · h: gy·z'],
};
