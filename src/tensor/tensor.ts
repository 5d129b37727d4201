// The Tensor: shape, dtype and contiguous row-major storage (a view over a SharedArrayBuffer or an arena
// slice), plus the autograd links. It holds no math: operations live in src/ops.
import { DTypeError, ValueError, fmtShape, fmtValue } from '../errors.js';
import type { Node } from '../autograd/engine.js';
import { activeArena } from './arena.js';
import { type WasmHeap, wasmHeap } from '../kernels/wasm/runtime.js';
import { type Shape, checkShape, contiguousStrides, numel } from './shape.js';

export type DType = 'f32' | 'f64';
export type Storage = Float32Array | Float64Array;
export type NestedArray = number | readonly NestedArray[];

export const DTYPES: readonly DType[] = ['f32', 'f64'];

export function checkDType(where: string, dtype: unknown): DType {
  if (dtype !== 'f32' && dtype !== 'f64') throw new DTypeError(`${where}: dtype must be 'f32' or 'f64' (got ${fmtValue(dtype)})`);
  return dtype;
}

/**
 * Storage for a new tensor: from the active arena when a step is running, otherwise a fresh
 * SharedArrayBuffer (zero-filled by the platform). `persistent` bypasses the arena (parameters, .grad,
 * optimizer state); persistent f32 storage of HEAP_MIN elements or more lives in the WebAssembly heap
 * when those kernels run, so they read and write it in place instead of copying it in and out per call.
 * Its chunk goes back to the heap when the array is garbage: a `subarray` of it is valid only while the
 * array itself is reachable (as with an arena's tensors).
 */
export function allocStorage(dtype: DType, n: number, zero: boolean, persistent = false): Storage {
  const arena = persistent ? null : activeArena();
  if (arena !== null) return arena.alloc(dtype, n, zero);
  const heap = persistent && dtype === 'f32' && n >= HEAP_MIN ? wasmHeap() : null;
  if (heap !== null) return heapStorage(heap, n, zero);
  return sharedStorage(dtype, n);
}

/**
 * `n` zeros in a SharedArrayBuffer of their own, never in an arena or the heap: what a dataset's rows
 * live in, so a training run's workers read them in place (see BatchSource.table).
 */
export function sharedStorage(dtype: DType, n: number): Storage {
  return dtype === 'f32' ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float64Array(new SharedArrayBuffer(n * 8));
}

/** The element type of a storage array. */
export function storageDType(s: Storage): DType {
  return s instanceof Float32Array ? 'f32' : 'f64';
}

/** Below this, a persistent array stays in a buffer of its own: kernels take small operands by copy cheaply. */
const HEAP_MIN = 1024;

/** Gives a persistent array's heap chunk back once the array is garbage. */
const heapChunks = new FinalizationRegistry<{ heap: WasmHeap; addr: number; bytes: number }>((c) => c.heap.release(c.addr, c.bytes));

function heapStorage(heap: WasmHeap, n: number, zero: boolean): Float32Array {
  const addr = heap.alloc(n * 4);
  const v = heap.view('f32', addr, n) as Float32Array;
  if (zero) v.fill(0); // a chunk given back earlier holds old values
  heapChunks.register(v, { heap, addr, bytes: n * 4 });
  return v;
}

/**
 * The Tensor for an op's result over `data`, with `shape` kept by reference (pass an array nobody will
 * mutate: another tensor's shape or a `stableShape`). Inside an arena step the Tensor object itself is
 * recycled: the k-th tensor made in step n+1 is the k-th Tensor object of step n, re-initialised, so a
 * tensor made inside `arena.step` is valid until the next reset, like its storage.
 */
export function makeTensor(data: Storage, shape: Shape, requiresGrad = false): Tensor {
  const arena = activeArena();
  if (arena === null) return new Tensor(data, shape, requiresGrad);
  const t = arena.tensors.next() as Writable<Tensor> | undefined;
  if (t === undefined) {
    const made = new Tensor(data, shape, requiresGrad);
    made.owner = arena;
    return arena.tensors.keep(made);
  }
  t.data = data;
  t.shape = shape;
  t.size = data.length;
  t.requiresGrad = requiresGrad;
  t.node = null;
  t.grad = null;
  return t;
}

/**
 * An immutable copy of `scratch[0..n)`, for shapes ops compute in a reusable scratch array. Inside an arena
 * step it is the array handed out at this position in the previous step when equal, so steady-state steps
 * copy nothing; otherwise a fresh copy.
 */
export function stableShape(scratch: readonly number[], n = scratch.length): readonly number[] {
  const arena = activeArena();
  const prev = arena?.shapes.next();
  if (prev !== undefined && prev.length === n) {
    let same = true;
    for (let i = 0; i < n && same; i++) same = prev[i] === scratch[i];
    if (same) return prev;
  }
  const copy = scratch.slice(0, n);
  return arena === null ? copy : arena.shapes.keep(copy);
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };

let backwardHook: ((t: Tensor, seed?: Tensor) => void) | null = null;
/** The engine registers its reverse walk here, so Tensor needs no runtime import of it. */
export function registerBackward(fn: (t: Tensor, seed?: Tensor) => void): void {
  backwardHook = fn;
}

/**
 * Fields are read-only to users. A tensor made inside `arena.step` (an op's result, `tensor`, `zeros`...)
 * is valid until the arena's next reset: its storage and then the object itself are reused by the next
 * step (see `makeTensor`). `new Tensor`, `detach()` and `clone()` make objects that are never reused.
 */
export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  /** Set when this tensor is the output of a recorded operation; cleared when the graph is freed. */
  node: Node | null = null;
  /** Accumulated gradient of a leaf that requires grad (persistent storage, same shape). */
  grad: Tensor | null = null;
  /**
   * The arena this tensor was made in (its storage is a slice of the arena's): holding the tensor holds
   * the arena, whose heap chunk is released when the arena is garbage-collected.
   */
  owner: object | null = null;

  constructor(
    readonly data: Storage,
    shape: Shape,
    public requiresGrad = false,
  ) {
    this.shape = shape;
    this.size = numel(shape);
    if (data.length !== this.size) {
      throw new ValueError(`Tensor: storage holds ${data.length} elements but shape ${fmtShape(shape)} needs ${this.size}`);
    }
  }

  get dtype(): DType {
    return storageDType(this.data);
  }

  get ndim(): number {
    return this.shape.length;
  }

  get strides(): number[] {
    return contiguousStrides(this.shape);
  }

  /** True for a tensor made by the user (not by an op), i.e. one whose gradient lands in `.grad`. */
  get isLeaf(): boolean {
    return this.node === null;
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new ValueError(`item: tensor of shape ${fmtShape(this.shape)} has ${this.size} elements, expected 1`);
    return this.data[0]!;
  }

  /** The values as nested arrays (a number for a 0-d tensor). */
  toArray(): NestedArray {
    const build = (axis: number, offset: number): NestedArray => {
      if (axis === this.shape.length) return this.data[offset]!;
      const stride = numel(this.shape.slice(axis + 1));
      const out: NestedArray[] = [];
      for (let i = 0; i < this.shape[axis]!; i++) out.push(build(axis + 1, offset + i * stride));
      return out;
    };
    return build(0, 0);
  }

  /** Same storage, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, false);
  }

  /** A copy in persistent storage (outside any arena), optionally in another dtype. */
  clone(dtype: DType = this.dtype): Tensor {
    const data = allocStorage(dtype, this.size, false, true);
    data.set(this.data);
    return new Tensor(data, this.shape.slice(), false);
  }

  /** Reverse-mode differentiation from this tensor; see autograd/engine.ts. */
  backward(seed?: Tensor): void {
    if (backwardHook === null) throw new Error('autograd engine not loaded');
    backwardHook(this, seed);
  }

  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

export interface TensorOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

/** A tensor from a number, nested arrays or a flat array-like (then `shape` says how to read it). */
export function tensor(values: NestedArray | ArrayLike<number>, opts: TensorOptions & { shape?: Shape } = {}): Tensor {
  const dtype = checkDType('tensor', opts.dtype ?? 'f32');
  let shape: number[];
  let flat: ArrayLike<number>;
  if (typeof values === 'number') {
    shape = [];
    flat = [values];
  } else if (Array.isArray(values)) {
    shape = [];
    for (let v: unknown = values; Array.isArray(v); v = v[0]) shape.push(v.length);
    const out: number[] = [];
    const walk = (v: unknown, axis: number, path: string): void => {
      if (axis === shape.length) {
        if (typeof v !== 'number') throw new ValueError(`tensor: element ${path} must be a number (got ${fmtValue(v)})`);
        out.push(v);
        return;
      }
      if (!Array.isArray(v) || v.length !== shape[axis]) {
        throw new ValueError(`tensor: nested arrays are ragged at ${path || 'the top'} (expected ${shape[axis]} elements)`);
      }
      v.forEach((x, i) => walk(x, axis + 1, `${path}[${i}]`));
    };
    walk(values, 0, '');
    flat = out;
  } else {
    flat = values as ArrayLike<number>;
    shape = [flat.length];
  }
  if (opts.shape !== undefined) {
    const want = checkShape('tensor', opts.shape);
    if (numel(want) !== flat.length) {
      throw new ValueError(`tensor: ${flat.length} values do not fill shape ${fmtShape(want)} (${numel(want)} elements)`);
    }
    shape = want;
  }
  const data = allocStorage(dtype, flat.length, false);
  data.set(flat);
  return makeTensor(data, shape, opts.requiresGrad ?? false);
}

export function full(shape: Shape, value: number, opts: TensorOptions = {}): Tensor {
  const s = checkShape('full', shape);
  const dtype = checkDType('full', opts.dtype ?? 'f32');
  const data = allocStorage(dtype, numel(s), value === 0);
  if (value !== 0) data.fill(value);
  return makeTensor(data, s, opts.requiresGrad ?? false);
}

export function zeros(shape: Shape, opts: TensorOptions = {}): Tensor {
  return full(shape, 0, opts);
}

export function ones(shape: Shape, opts: TensorOptions = {}): Tensor {
  return full(shape, 1, opts);
}

/** Uninitialised storage for an op's output (arena memory is not cleared); `shape` is kept by reference. */
export function empty(shape: Shape, dtype: DType): Tensor {
  return makeTensor(allocStorage(dtype, numel(shape), false), shape);
}

const SCALAR_SHAPE: Shape = Object.freeze([]);

/** A scalar (0-d) tensor. */
export function scalar(value: number, dtype: DType = 'f32'): Tensor {
  const data = allocStorage(dtype, 1, false);
  data[0] = value;
  return makeTensor(data, SCALAR_SHAPE);
}
