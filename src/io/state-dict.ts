// A module's state dict to and from a safetensors file: the names, shapes and layout PyTorch's
// load_state_dict expects, F32 or F64 as the tensors are.
import { StateDictError } from '../errors.js';
import type { Module, StateDict } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { type TensorMap, loadSafetensors, saveSafetensors } from './safetensors.js';

/** The state dict as safetensors entries (views, no copies). */
export function stateDictToTensorMap(sd: StateDict): TensorMap {
  const out: TensorMap = {};
  for (const [name, t] of Object.entries(sd)) {
    out[name] = { dtype: t.dtype === 'f32' ? 'F32' : 'F64', shape: t.shape.slice(), data: t.data };
  }
  return out;
}

/** Writes `module`'s state dict (or a state dict) to `path` atomically (temp file, fsync, rename). */
export function saveStateDict(path: string, source: Module | StateDict, metadata: Record<string, string> = {}): void {
  const sd = typeof (source as Module).stateDict === 'function' ? (source as Module).stateDict() : (source as StateDict);
  saveSafetensors(path, stateDictToTensorMap(sd), { format: 'pt', ...metadata });
}

/** Reads a safetensors file as a state dict of tensors (checked against every rule of the format). */
export function loadStateDictFile(path: string): StateDict {
  const { tensors } = loadSafetensors(path);
  const sd: StateDict = {};
  for (const [name, e] of Object.entries(tensors)) sd[name] = new Tensor(e.data, e.shape);
  return sd;
}

/**
 * Loads `path` into `module`: every key and shape is checked before any value changes, and an error
 * names the file as well as the tensor.
 */
export function loadModule(module: Module, path: string): void {
  const sd = loadStateDictFile(path);
  try {
    module.loadStateDict(sd);
  } catch (err) {
    throw err instanceof StateDictError ? new StateDictError(`${path}: ${err.message}`) : err;
  }
}
