// ParamLayout: where each parameter of a model lives in one flat buffer (offset, shape), in state_dict
// order, so all parameters (and, mirrored, all gradients) are one SharedArrayBuffer each.
import { DTypeError, StateDictError, fmtShape } from '../errors.js';
import { type DType, type Storage, Tensor } from '../tensor/tensor.js';
import { numel } from '../tensor/shape.js';
import type { Module } from './module.js';

export interface ParamEntry {
  readonly name: string;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly size: number;
}

export class ParamLayout {
  readonly entries: readonly ParamEntry[];
  /** Total number of elements. */
  readonly size: number;

  constructor(
    entries: readonly { name: string; shape: readonly number[] }[],
    readonly dtype: DType,
  ) {
    let offset = 0;
    this.entries = entries.map(({ name, shape }) => {
      const size = numel(shape);
      const e = { name, offset, shape: shape.slice(), size };
      offset += size;
      return e;
    });
    this.size = offset;
  }

  static of(module: Module): ParamLayout {
    const named = module.namedParameters();
    const dtype = named[0]?.[1].dtype ?? 'f32';
    for (const [n, p] of named) {
      if (p.dtype !== dtype) throw new DTypeError(`ParamLayout: parameter '${n}' is ${p.dtype}, the others are ${dtype}`);
    }
    return new ParamLayout(
      named.map(([name, p]) => ({ name, shape: p.shape })),
      dtype,
    );
  }

  get byteLength(): number {
    return this.size * (this.dtype === 'f32' ? 4 : 8);
  }

  /** A flat typed array over `buffer` (a fresh SharedArrayBuffer when omitted). */
  view(buffer: SharedArrayBuffer = new SharedArrayBuffer(this.byteLength)): Storage {
    if (buffer.byteLength < this.byteLength) {
      throw new StateDictError(`ParamLayout: buffer has ${buffer.byteLength} bytes, the layout needs ${this.byteLength}`);
    }
    return this.dtype === 'f32' ? new Float32Array(buffer, 0, this.size) : new Float64Array(buffer, 0, this.size);
  }

  /** The tensor for one entry, over the flat storage. */
  tensorAt(flat: Storage, e: ParamEntry): Tensor {
    return new Tensor(flat.subarray(e.offset, e.offset + e.size), e.shape);
  }
}

/** The flat storage for a layout: a fresh buffer, a view over the given one, or the given storage itself. */
function flatStorage(layout: ParamLayout, name: string, given: SharedArrayBuffer | Storage | undefined): Storage {
  if (given === undefined || given instanceof SharedArrayBuffer) return layout.view(given);
  if (given.length !== layout.size || (given instanceof Float32Array) !== (layout.dtype === 'f32')) {
    throw new StateDictError(`shareParameters: the given ${name} storage holds ${given.length} ${given instanceof Float32Array ? 'f32' : 'f64'} values, the layout needs ${layout.size} ${layout.dtype}`);
  }
  return given;
}

export interface SharedParameters {
  layout: ParamLayout;
  params: Storage;
  grads: Storage;
}

/**
 * Moves every parameter of `module` into one flat parameter buffer and every gradient into one flat
 * gradient buffer (fresh SharedArrayBuffers unless given), keeping current values, or adopting the given
 * buffer's values when `params` is given. `params` may also be the flat storage itself (a view into a
 * larger shared memory). Create the optimizer after this call: it must hold the new tensors.
 */
export function shareParameters(module: Module, buffers: { params?: SharedArrayBuffer | Storage; grads?: SharedArrayBuffer | Storage } = {}): SharedParameters {
  const layout = ParamLayout.of(module);
  const params = flatStorage(layout, 'params', buffers.params);
  const grads = flatStorage(layout, 'grads', buffers.grads);
  const named = new Map(module.namedParameters());
  for (const e of layout.entries) {
    const old = named.get(e.name)!;
    if (numel(old.shape) !== e.size) throw new StateDictError(`shareParameters: '${e.name}' changed shape to ${fmtShape(old.shape)}`);
    const t = layout.tensorAt(params, e);
    if (buffers.params === undefined) t.data.set(old.data);
    t.grad = layout.tensorAt(grads, e);
    module.replaceParameter(e.name, t);
  }
  return { layout, params, grads };
}
