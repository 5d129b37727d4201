// Helpers every op family shares: turning numbers into tensors, dtype checks, raw (unrecorded) maps.
import { DTypeError, ValueError } from '../errors.js';
import type { MapKernel, ZipKernel } from '../kernels/broadcast.js';
import { broadcastShapes } from '../tensor/shape.js';
import { type DType, Tensor, empty, scalar } from '../tensor/tensor.js';

export type TensorLike = Tensor | number;

export function checkTensor(op: string, name: string, x: unknown): Tensor {
  if (!(x instanceof Tensor)) throw new ValueError(`${op}: input '${name}' must be a Tensor (got ${typeof x})`);
  return x;
}

/** Two operands as tensors of one dtype; a plain number takes the other operand's dtype. */
export function operands(op: string, a: TensorLike, b: TensorLike): [Tensor, Tensor] {
  if (typeof a === 'number' && typeof b === 'number') {
    throw new ValueError(`${op}: at least one operand must be a Tensor (got two numbers)`);
  }
  const dtype: DType = typeof a === 'number' ? (b as Tensor).dtype : a.dtype;
  const ta = typeof a === 'number' ? scalarOperand(op, 'a', a, dtype) : checkTensor(op, 'a', a);
  const tb = typeof b === 'number' ? scalarOperand(op, 'b', b, dtype) : checkTensor(op, 'b', b);
  sameDType(op, ta, tb);
  return [ta, tb];
}

function scalarOperand(op: string, name: string, v: number, dtype: DType): Tensor {
  if (typeof v !== 'number') throw new ValueError(`${op}: input '${name}' must be a Tensor or a number (got ${typeof v})`);
  return scalar(v, dtype);
}

export function sameDType(op: string, ...xs: Tensor[]): DType {
  const d = xs[0]!.dtype;
  for (const x of xs) {
    if (x.dtype !== d) throw new DTypeError(`${op}: dtypes differ (${xs.map((t) => t.dtype).join(' and ')}); convert with .clone('${d}')`);
  }
  return d;
}

/** A generated kernel applied pairwise with broadcasting, unrecorded: the building block of forwards and backwards. */
export function zip(op: string, a: Tensor, b: Tensor, k: ZipKernel, p = 0, q = 0): Tensor {
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = empty(shape, a.dtype);
  k(a.data, a.shape, b.data, b.shape, out.data, shape, p, q);
  return out;
}

/** A generated kernel applied to each element, unrecorded. */
export function map(x: Tensor, k: MapKernel, p = 0, q = 0): Tensor {
  const out = empty(x.shape, x.dtype);
  k(x.data, out.data, p, q);
  return out;
}
