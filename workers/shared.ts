// Views both sides of the boundary build the same way over the shared regions.
import type { Module } from '../src/nn/module.js';
import type { DType, Storage } from '../src/tensor/tensor.js';
import { floatView } from './slots.js';

/** The `shards` flat gradient slots of `size` elements each, back to back in one buffer from `byteOffset`. */
export function gradSlots(buffer: SharedArrayBuffer, dtype: DType, size: number, shards: number, byteOffset = 0): Storage[] {
  const first = byteOffset / (dtype === 'f32' ? 4 : 8);
  return Array.from({ length: shards }, (_, s) => floatView(dtype, buffer, first + s * size, size));
}

/** Copies a module's non-learned buffers (namedBuffers order) into ('out') or from ('in') one flat array. */
export function copyBuffers(model: Module, flat: Storage, dir: 'in' | 'out'): void {
  let off = 0;
  for (const [, b] of model.namedBuffers()) {
    const view = flat.subarray(off, off + b.size);
    if (dir === 'in') b.data.set(view);
    else view.set(b.data);
    off += b.size;
  }
}
