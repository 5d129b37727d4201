// Per-step arena: a bump allocator over one shared buffer that hands out tensor storage, plus pools of
// the small objects a step makes (Tensor, graph Node, shape arrays); all are reset at the start of the next
// step, so steady-state training allocates nothing on the JS heap.
import type { Node } from '../autograd/engine.js';
import { StreamgradError } from '../errors.js';
import { type WasmHeap, wasmHeap } from '../kernels/wasm/runtime.js';
import type { DType, Storage, Tensor } from './tensor.js';

const ALIGN = 64; // a cache line: kernels reading two neighbouring tensors never share a line

let active: Arena | null = null;

/** The arena that allocations currently go to, or null (persistent SharedArrayBuffer storage). */
export function activeArena(): Arena | null {
  return active;
}

/**
 * Runs `fn` with `arena` active, restoring the previous one afterwards (arenas nest, the innermost wins).
 * Storage allocated inside stays valid until `arena.reset()`.
 */
export function withArena<T>(arena: Arena | null, fn: () => T): T {
  const prev = active;
  active = arena;
  try {
    return fn();
  } finally {
    active = prev;
  }
}

/**
 * Objects by creation order. A training step creates the same objects in the same order every time, so
 * the k-th request of step n+1 gets back the k-th object of step n, for the caller to re-initialise.
 */
export class Recycler<T> {
  private items: T[] = [];
  private n = 0;

  /** Last step's object at this position, or undefined (then make one and `keep` it). */
  next(): T | undefined {
    return this.items[this.n++];
  }

  /** Records `item` as the object at the position `next` just handed out. */
  keep<U extends T>(item: U): U {
    this.items[this.n - 1] = item;
    return item;
  }

  rewind(): void {
    this.n = 0;
  }
}

/**
 * Gives an arena's heap chunk back when the arena itself is garbage-collected. Tensors made in the arena
 * hold it (Tensor.owner), so the chunk outlives every such tensor; a bare storage view taken out of one
 * (`t.data`) does not, and like every arena value is valid only until the arena's next reset.
 */
const chunks = new FinalizationRegistry<{ heap: WasmHeap; addr: number; bytes: number }>((c) => c.heap.release(c.addr, c.bytes));

export class Arena {
  /**
   * The storage: a chunk of the WebAssembly heap when the wasm kernels are in use, so they read and
   * write a step's tensors in place, else a SharedArrayBuffer of its own. Views start at `base`.
   */
  private buffer!: SharedArrayBuffer;
  private base = 0;
  private bytes = 0;
  private chunk: { heap: WasmHeap; addr: number; bytes: number } | null = null;
  private top = 0;
  /** Bytes the last step needed in total, including what spilled past the buffer. */
  private demand = 0;
  private spilled = false;
  /**
   * The typed-array views handed out, by allocation order. A training step makes the same allocations
   * in the same order every time, so the k-th allocation of step n+1 can reuse the k-th view object
   * of step n: no typed-array objects are created in steady state either.
   */
  private views: Storage[] = [];
  private seq = 0;
  /**
   * Tensor and Node objects made inside a step, recycled by the next one: a tensor made inside
   * `arena.step` is valid until the next reset, the same contract as its storage. Tensors made with
   * `new Tensor` (parameters, `.grad`, `detach()`, `clone()`) never enter these pools.
   */
  readonly tensors = new Recycler<Tensor>();
  readonly nodes = new Recycler<Node>();
  /** Shape arrays computed by ops (see `stableShape` in tensor.ts); never mutated once handed out. */
  readonly shapes = new Recycler<readonly number[]>();
  private resets = 0;
  private grows = 0;

  constructor(initialBytes = 1 << 20) {
    this.provision(roundUp(Math.max(initialBytes, ALIGN)));
  }

  private provision(bytes: number): void {
    if (this.chunk !== null) {
      chunks.unregister(this);
      this.chunk.heap.release(this.chunk.addr, this.chunk.bytes);
      this.chunk = null;
    }
    const heap = wasmHeap();
    if (heap === null) {
      this.buffer = new SharedArrayBuffer(bytes);
      this.base = 0;
    } else {
      const addr = heap.alloc(bytes);
      this.chunk = { heap, addr, bytes };
      chunks.register(this, this.chunk, this);
      this.buffer = heap.bufferCovering(addr + bytes);
      this.base = addr;
    }
    this.bytes = bytes;
  }

  /** Storage for `n` elements; zero-filled only when asked (most ops overwrite every element). */
  alloc(dtype: DType, n: number, zero: boolean): Storage {
    const bytesPer = dtype === 'f32' ? 4 : 8;
    const bytes = roundUp(n * bytesPer);
    this.demand += bytes;
    if (this.top + bytes > this.bytes) {
      // Spill: serve this step from a fresh buffer; the next reset grows the main one to fit.
      this.spilled = true;
      this.seq++;
      return dtype === 'f32' ? new Float32Array(new SharedArrayBuffer(bytes), 0, n) : new Float64Array(new SharedArrayBuffer(bytes), 0, n);
    }
    const offset = this.base + this.top;
    this.top += bytes;
    const k = this.seq++;
    let view = this.views[k];
    if (
      view === undefined ||
      view.byteOffset !== offset ||
      view.length !== n ||
      (dtype === 'f32') !== view instanceof Float32Array ||
      view.buffer !== this.buffer
    ) {
      view = dtype === 'f32' ? new Float32Array(this.buffer, offset, n) : new Float64Array(this.buffer, offset, n);
      this.views[k] = view;
    }
    if (zero) view.fill(0);
    return view;
  }

  /** Ends a step: all storage handed out since the last reset may be reused from now on. */
  reset(): void {
    if (active === this) throw new StreamgradError('Arena.reset: cannot reset an arena while it is active');
    if (this.spilled) {
      this.provision(roundUp(Math.ceil(this.demand * 1.25)));
      this.views = [];
      this.grows++;
    }
    this.top = 0;
    this.demand = 0;
    this.spilled = false;
    this.seq = 0;
    this.tensors.rewind();
    this.nodes.rewind();
    this.shapes.rewind();
    this.resets++;
  }

  /** Resets, then runs one step's worth of work with this arena active. */
  step<T>(fn: () => T): T {
    this.reset();
    return withArena(this, fn);
  }

  stats(): { capacityBytes: number; usedBytes: number; resets: number; grows: number } {
    return { capacityBytes: this.bytes, usedBytes: this.top, resets: this.resets, grows: this.grows };
  }
}

function roundUp(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN || ALIGN;
}
