// Matrix product, batched and broadcast over leading axes, with optional transposed operands so the
// backward pass uses the same kernel in its other orientations instead of copying transposes.
import { ShapeError, fmtShape } from '../errors.js';
import { claimLeafGradient, defineOp, grads, recordOp } from '../autograd/engine.js';
import { gemm } from '../kernels/matmul.js';
import { broadcastShapes, broadcastStrides, numel } from '../tensor/shape.js';
import { Tensor, empty, stableShape } from '../tensor/tensor.js';
import { reshape } from './shape.js';
import { checkTensor, sameDType } from './util.js';

export interface MatmulOptions {
  /** Use aᵀ: a is stored [..., K, M]. */
  transposeA?: boolean;
  /** Use bᵀ: b is stored [..., N, K] (a Linear weight [out, in] is used this way). */
  transposeB?: boolean;
}

interface Attrs {
  ta: boolean;
  tb: boolean;
}

const MATMUL = defineOp<Attrs>({
  name: 'matmul',
  inputs: ['a', 'b'],
  // C = op(A)·op(B)  ⇒  dA = dC·op(B)ᵀ (or its transpose when A is stored transposed), likewise dB.
  backward: (gy, { inputs, attrs: { ta, tb } }) => {
    const a = inputs[0]!;
    const b = inputs[1]!;
    return grads(
      a.requiresGrad ? (ta ? bmm(b, gy, tb, true, a) : bmm(gy, b, false, !tb, a)) : null,
      b.requiresGrad ? (tb ? bmm(gy, a, true, ta, b) : bmm(a, gy, !ta, false, b)) : null,
    );
  },
});
// The four orientations as constants, so recording a matmul makes no attrs object.
const ATTRS: readonly (readonly Attrs[])[] = [
  [{ ta: false, tb: false }, { ta: false, tb: true }],
  [{ ta: true, tb: false }, { ta: true, tb: true }],
];

/**
 * torch.matmul: 1-D operands are promoted to a row (a) or a column (b) and the added axis removed;
 * axes before the last two broadcast.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  checkTensor('matmul', 'a', a);
  checkTensor('matmul', 'b', b);
  const ta = opts.transposeA ?? false;
  const tb = opts.transposeB ?? false;
  if (a.ndim === 0 || b.ndim === 0) throw new ShapeError(`matmul: operands must have at least one axis (got ${fmtShape(a.shape)} and ${fmtShape(b.shape)})`);
  if ((a.ndim === 1 && ta) || (b.ndim === 1 && tb)) throw new ShapeError('matmul: a 1-D operand cannot be transposed');
  if (a.ndim === 1 || b.ndim === 1) {
    const a2 = a.ndim === 1 ? reshape(a, [1, a.size]) : a;
    const b2 = b.ndim === 1 ? reshape(b, [b.size, 1]) : b;
    const out = bmm(a2, b2, ta, tb);
    const s = out.shape.slice();
    if (b.ndim === 1) s.splice(s.length - 1, 1);
    if (a.ndim === 1) s.splice(s.length - (b.ndim === 1 ? 1 : 2), 1);
    return reshape(out, s);
  }
  return bmm(a, b, ta, tb);
}

const outShape: number[] = []; // bmm's scratch

/** `gradOf`: in a backward, the input whose gradient this product is; a leaf's buffer may take it in place. */
function bmm(a: Tensor, b: Tensor, ta: boolean, tb: boolean, gradOf?: Tensor): Tensor {
  sameDType('matmul', a, b);
  const ar = a.ndim;
  const br = b.ndim;
  const M = a.shape[ar - (ta ? 1 : 2)]!;
  const Ka = a.shape[ar - (ta ? 2 : 1)]!;
  const Kb = b.shape[br - (tb ? 1 : 2)]!;
  const N = b.shape[br - (tb ? 2 : 1)]!;
  if (Ka !== Kb) {
    throw new ShapeError(
      `matmul: inner sizes differ: a${ta ? 'ᵀ' : ''} ${fmtShape(a.shape)} has ${Ka} columns, b${tb ? 'ᵀ' : ''} ${fmtShape(b.shape)} has ${Kb} rows`,
    );
  }
  if (ar === 2 && br === 2) {
    // The common case (Linear, and every backward of it): no batch axes to broadcast.
    // A Linear weight's gradient goes straight into its (micro-shard's) gradient buffer. Both operands
    // 2-D means the forward's were too, so this product has gradOf's shape (claimLeafGradient checks it).
    const into = gradOf === undefined ? null : claimLeafGradient(gradOf);
    if (into !== null) {
      gemm(ta, tb, M, N, Ka, a.data, 0, b.data, 0, into.data, 0, false);
      return into;
    }
    outShape[0] = M;
    outShape[1] = N;
    const out = empty(stableShape(outShape, 2), a.dtype);
    gemm(ta, tb, M, N, Ka, a.data, 0, b.data, 0, out.data, 0, false);
    return recordOp(MATMUL, out, ATTRS[+ta]![+tb]!, a, b);
  }
  const aBatch = a.shape.slice(0, ar - 2);
  const bBatch = b.shape.slice(0, br - 2);
  const batch = broadcastShapes('matmul', aBatch, bBatch);
  const out = empty([...batch, M, N], a.dtype);
  const count = numel(batch);
  if (count === 1) {
    gemm(ta, tb, M, N, Ka, a.data, 0, b.data, 0, out.data, 0, false);
  } else if (count > 0) {
    const as = broadcastStrides(aBatch, batch);
    const bs = broadcastStrides(bBatch, batch);
    const idx = new Array<number>(batch.length).fill(0);
    let ao = 0;
    let bo = 0;
    for (let i = 0; i < count; i++) {
      gemm(ta, tb, M, N, Ka, a.data, ao * M * Ka, b.data, bo * Ka * N, out.data, i * M * N, false);
      for (let ax = batch.length - 1; ax >= 0; ax--) {
        idx[ax]!++;
        ao += as[ax]!;
        bo += bs[ax]!;
        if (idx[ax]! < batch[ax]!) break;
        ao -= as[ax]! * batch[ax]!;
        bo -= bs[ax]! * batch[ax]!;
        idx[ax] = 0;
      }
    }
  }
  return recordOp(MATMUL, out, ATTRS[+ta]![+tb]!, a, b);
}
