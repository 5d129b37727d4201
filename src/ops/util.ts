// Helpers every op family shares: turning numbers into tensors, dtype checks, raw (unrecorded) maps.
import { DTypeError, ValueError } from '../errors.js';
import type { MapKernel, ZipKernel } from '../kernels/broadcast.js';
import { broadcastShapes } from '../tensor/shape.js';
import { type DType, Tensor, empty, makeTensor, scalar } from '../tensor/tensor.js';

export type TensorLike = Tensor | number;

export function checkTensor(op: string, name: string, x: unknown): Tensor {
  if (!(x instanceof Tensor)) throw new ValueError(`${op}: input '${name}' must be a Tensor (got ${typeof x})`);
  return x;
}

/**
 * Operand `v` of a binary op as a tensor: a plain number becomes a scalar of the other operand's dtype.
 * Call it for each operand, then `sameDType` on the pair.
 */
export function operand(op: string, name: string, v: TensorLike, other: TensorLike): Tensor {
  if (typeof v !== 'number') return checkTensor(op, name, v);
  if (typeof other === 'number') throw new ValueError(`${op}: at least one operand must be a Tensor (got two numbers)`);
  return scalar(v, other.dtype);
}

/** The common dtype of two or three tensors (three for an optional bias). */
export function sameDType(op: string, a: Tensor, b: Tensor, c?: Tensor): DType {
  const d = a.dtype;
  if (b.dtype !== d || (c !== undefined && c.dtype !== d)) throw dtypesDiffer(op, c === undefined ? [a, b] : [a, b, c]);
  return d;
}

export function dtypesDiffer(op: string, xs: readonly Tensor[]): DTypeError {
  return new DTypeError(`${op}: dtypes differ (${xs.map((t) => t.dtype).join(' and ')}); convert with .clone('${xs[0]!.dtype}')`);
}

/**
 * x's values cut from the graph, like `x.detach()`, but made like an op's result (recycled inside an arena
 * step), for composites that treat part of their computation as a constant.
 */
export function detached(x: Tensor): Tensor {
  return makeTensor(x.data, x.shape);
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
