// The WebAssembly SIMD kernels at run time: which kernels this thread uses, the shared WebAssembly.Memory
// they run on (the "heap", with a small allocator), and the calls that hand them typed arrays.
import { readFileSync } from 'node:fs';
import { ValueError, fmtValue } from '../../errors.js';

export type KernelKind = 'wasm' | 'ts';

/** The functions the compiled module exports (see assembly/index.ts); addresses are byte offsets. */
export interface KernelExports {
  sgemm(transA: number, transB: number, M: number, N: number, K: number, a: number, b: number, c: number, accumulate: number, scratch: number): void;
  sgemmPart(transA: number, transB: number, M: number, N: number, K: number, a: number, b: number, c: number, accumulate: number, scratch: number,
    m0: number, m1: number, n0: number, n1: number, packedA: number): void;
  sgemmPackA(transA: number, M: number, K: number, a: number, dst: number): void;
  sgemmPackedABytes(M: number, K: number): number;
  sgemmScratchBytes(): number;
  lstmStateForward(z: number, c: number, out: number, act: number, N: number, H: number): void;
  lstmStateBackward(act: number, c: number, gy: number, dz: number, dc: number, N: number, H: number): void;
  lstmOutputForward(z: number, c2: number, out: number, act: number, N: number, H: number): void;
  /** The second operand is unused: the signature matches lstmStateBackward's. */
  lstmOutputBackward(act: number, unused: number, gy: number, dz: number, dc2: number, N: number, H: number): void;
  gruForward(gi: number, gh: number, ghRow: number, h: number, out: number, act: number, N: number, H: number): void;
  gruBackward(act: number, gh: number, ghRow: number, h: number, gy: number, dgi: number, dgh: number, dh: number, N: number, H: number): void;
  addF32(out: number, a: number, b: number, n: number): void;
  copyF32(out: number, a: number, n: number): void;
  ownLines(p: number, bytes: number): void;
  sumSlotsF32(out: number, first: number, stride: number, k: number, n: number): number;
  addRowsF32(out: number, a: number, row: number, rows: number, cols: number): void;
  sumRowsF32(out: number, a: number, rows: number, cols: number): void;
  reluF32(out: number, x: number, n: number): void;
  reluBackwardF32(dx: number, gy: number, y: number, n: number): void;
  maxPoolF32(x: number, out: number, dx: number, backward: number, planes: number, H: number, W: number, kh: number, kw: number,
    sh: number, sw: number, ph: number, pw: number, oh: number, ow: number): void;
  sgdF32(p: number, grad: number, buf: number, n: number, lr: number, momentum: number, dampening: number, nesterov: number, wd: number, sign: number, first: number): void;
  adamF32(p: number, grad: number, m: number, v: number, vMax: number, n: number, stepSize: number, bc2Sqrt: number, eps: number, beta1: number, beta2: number,
    wd: number, decoupled: number, decay: number, sign: number): void;
  im2col(src: number, dst: number, C: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number, ph: number, pw: number, dh: number, dw: number, oh: number, ow: number): void;
  col2im(src: number, dst: number, C: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number, ph: number, pw: number, dh: number, dw: number, oh: number, ow: number): void;
}

/** The optimizers' elementwise kernels and how many byte addresses lead their arguments (n follows them). */
export const OPTIMIZER_KERNELS = { sgdF32: 3, adamF32: 5 } as const;
export type OptimizerKernel = keyof typeof OPTIMIZER_KERNELS;

/** One optimizer kernel call on one parameter: its addresses, then n, then its scalars, as the kernel takes them. */
export interface OptimizerCall {
  kernel: OptimizerKernel;
  args: number[];
}

/**
 * Runs an optimizer call on elements [from, to) of its parameter only. The kernels are elementwise (each
 * element's arithmetic reads only that element of each operand), so the pieces of a call give the bits
 * of the whole call. A null operand (address 0) stays null.
 */
export function runOptimizerRange(k: KernelExports, call: OptimizerCall, from: number, to: number): void {
  const a = call.args;
  const d = from * 4;
  const at = (i: number): number => (a[i] === 0 ? 0 : a[i]! + d);
  // Spelled out, not spread: a worker runs this for every chunk of every step and allocates nothing.
  if (call.kernel === 'sgdF32') k.sgdF32(at(0), at(1), at(2), to - from, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!);
  else k.adamF32(at(0), at(1), at(2), at(3), at(4), to - from, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, a[12]!, a[13]!, a[14]!);
}

const PAGE = 65536;
const ALIGN = 64;
/** 4 GiB, the wasm32 limit; a shared memory must declare its maximum, and V8 only reserves address space. */
const MAX_PAGES = 65536;
/** Byte address of the allocator's top-of-heap word, shared by every thread on this memory. */
const TOP_ADDR = 1024;
/** Operand positions of one kernel call (gruBackward has 8 arrays). */
const STAGING_SLOTS = 8;
/** The first page holds the allocator's word (the module has no static data or stack of its own). */
const HEAP_START = PAGE;

/** The compiled module's location, next to this file both in src/ (tsx, tests) and in dist/ (the package). */
export const WASM_FILE = new URL('./kernels.wasm', import.meta.url);

// A tiny module using one SIMD instruction: WebAssembly.validate accepts it only where SIMD128 exists.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

/**
 * A shared WebAssembly.Memory with the kernels instantiated on it. Every thread of a process may adopt
 * the same memory (`adoptHeap`): the top-of-heap word lives in the memory and is bumped atomically, so
 * chunks never overlap; a chunk released goes to this thread's free list, not back to the others.
 */
/**
 * Takes a product that other threads may share (workers/gemm-help.ts): false when it declines (too
 * small, or no thread free to help), and the caller computes it alone. Operands are byte addresses in
 * the heap, which every thread of a run maps.
 */
export interface GemmSplitter {
  sgemm(transA: number, transB: number, M: number, N: number, K: number, a: number, b: number, c: number, accumulate: number): boolean;
}

export class WasmHeap {
  readonly kernels: KernelExports;
  /**
   * The SharedArrayBuffer objects this thread has seen for the memory: after `grow`, `memory.buffer`
   * is a new object over the same bytes, and views made before stay valid, so all of them count as
   * "in the heap".
   */
  private readonly buffers = new Set<ArrayBufferLike>();
  private buffer: SharedArrayBuffer;
  /** All of `buffer` as f32, for copies in and out of staging. */
  private f32: Float32Array;
  /** Unsigned: addresses run to 4 GiB. */
  private readonly top: Uint32Array;
  private readonly free: { addr: number; bytes: number }[] = [];
  private scratch = 0;
  /** Per operand position of a kernel call: a heap chunk for operands that live elsewhere. */
  private readonly staging = new Array<number>(STAGING_SLOTS).fill(0);
  private readonly stagingBytes = new Array<number>(STAGING_SLOTS).fill(0);
  private readonly stagingViews = Array.from({ length: STAGING_SLOTS }, () => new Map<number, Float32Array>());
  /** Whether the current call's operand at each position went through staging. */
  private readonly staged = new Uint8Array(STAGING_SLOTS);
  /** Bytes copied into and out of staging so far: 0 when every operand was read in place. */
  stagedBytes = 0;
  /**
   * While set, optimizers hand their kernel calls here (through `defer`) instead of running them: a training run's plan of the
   * update, which its workers carry out by ranges of the parameters (see runOptimizerRange).
   */
  deferOptimizer: ((call: OptimizerCall) => void) | null = null;
  /** While set, large products are offered to it first (a worker whose peers may be idle). */
  splitter: GemmSplitter | null = null;

  constructor(readonly memory: WebAssembly.Memory, module: WebAssembly.Module) {
    this.buffer = memory.buffer as SharedArrayBuffer;
    this.f32 = new Float32Array(this.buffer);
    this.buffers.add(this.buffer);
    this.top = new Uint32Array(this.buffer, TOP_ADDR, 1);
    // Only the first thread on a fresh memory finds the word at zero.
    Atomics.compareExchange(this.top, 0, 0, HEAP_START);
    this.kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
    this.scratch = this.alloc(this.kernels.sgemmScratchBytes());
  }

  /** A 64-byte-aligned chunk of `bytes`, as a byte address into the memory. */
  alloc(bytes: number): number {
    const size = roundUp(Math.max(bytes, 1));
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i]!;
      if (f.bytes >= size) {
        this.free.splice(i, 1);
        return f.addr;
      }
    }
    // Atomics: other threads allocate from the same memory; the add reserves [addr, addr + size) for us alone.
    const addr = Atomics.add(this.top, 0, size);
    const end = addr + size;
    if (end > MAX_PAGES * PAGE) throw new ValueError(`WebAssembly heap: cannot allocate ${bytes} bytes past the 4 GiB limit of wasm32 memory`);
    const have = this.memory.buffer.byteLength;
    // Two threads may both grow for overlapping needs; the second grow is merely early, never wrong.
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.refresh();
    return addr;
  }

  /** Gives a chunk from `alloc` back, for this thread's later allocations. */
  release(addr: number, bytes: number): void {
    this.free.push({ addr, bytes: roundUp(Math.max(bytes, 1)) });
  }

  /** An f32 or f64 view of `n` elements at byte address `addr`. */
  view(dtype: 'f32' | 'f64', addr: number, n: number): Float32Array | Float64Array {
    const buffer = this.bufferCovering(addr + n * (dtype === 'f32' ? 4 : 8));
    return dtype === 'f32' ? new Float32Array(buffer, addr, n) : new Float64Array(buffer, addr, n);
  }

  /** The memory's SharedArrayBuffer, current enough to reach byte `end`. */
  bufferCovering(end: number): SharedArrayBuffer {
    if (end > this.buffer.byteLength) this.refresh();
    return this.buffer;
  }

  /** The byte address of `a[0]` when `a` is a view of this memory, else -1. */
  addressOf(a: Float32Array | Float64Array): number {
    if (this.buffers.has(a.buffer)) return a.byteOffset;
    if (a.buffer instanceof SharedArrayBuffer && a.buffer !== this.buffer) {
      // Another thread may have grown the memory since this thread last looked.
      this.refresh();
      if (this.buffers.has(a.buffer)) return a.byteOffset;
    }
    return -1;
  }

  /**
   * Hands an optimizer's kernel call (operands already passed through `input`, addresses first) to
   * `deferOptimizer`. Every operand must live in this memory: another thread runs the call later, where
   * this thread's staging (and its copy back) cannot follow. Optimizers call their kernel directly
   * when nothing defers, so a plain step allocates nothing.
   */
  defer(call: OptimizerCall): void {
    for (let i = 0; i < OPTIMIZER_KERNELS[call.kernel]; i++) {
      if (this.staged[i] === 1) throw new ValueError(`${call.kernel}: operand ${i} of a deferred optimizer step is not in the run's WebAssembly heap`);
    }
    this.deferOptimizer!(call);
  }

  /**
   * C[M×N] (+)= op(A)·op(B) on f32 arrays, same contract as `gemm` in ../matmul.ts. Operands in this
   * memory are read in place; others are copied in (and C copied out), which costs O(n²) against the
   * O(n³) product.
   */
  sgemm(transA: boolean, transB: boolean, M: number, N: number, K: number,
    A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number, accumulate: boolean): void {
    const a = this.input(0, A, aOff, M * K);
    const b = this.input(1, B, bOff, K * N);
    const c = accumulate ? this.input(2, C, cOff, M * N) : this.output(2, C, cOff, M * N);
    const tA = transA ? 1 : 0;
    const tB = transB ? 1 : 0;
    const acc = accumulate ? 1 : 0;
    if (this.splitter === null || !this.splitter.sgemm(tA, tB, M, N, K, a, b, c, acc)) this.kernels.sgemm(tA, tB, M, N, K, a, b, c, acc, this.scratch);
    this.flush(2, C, cOff, M * N);
  }

  /** The block C[m0:m1, n0:n1] of a product on addresses (see sgemmPart), with this thread's scratch. */
  sgemmPart(transA: number, transB: number, M: number, N: number, K: number, a: number, b: number, c: number, accumulate: number,
    m0: number, m1: number, n0: number, n1: number, packedA = 0): void {
    this.kernels.sgemmPart(transA, transB, M, N, K, a, b, c, accumulate, this.scratch, m0, m1, n0, n1, packedA);
  }

  /**
   * The byte address at which a kernel reads x[off..off+n): x's own when x is a view of this memory,
   * else staging area `slot` with the values copied in. null (an absent operand) is address 0.
   */
  input(slot: number, x: Float32Array | null, off = 0, n = x?.length ?? 0): number {
    const at = this.output(slot, x, off, n);
    // A whole tensor (the usual case) is copied without making a subarray object.
    if (this.staged[slot] === 1) {
      this.f32.set(off === 0 && n === x!.length ? x! : x!.subarray(off, off + n), at >> 2);
      this.stagedBytes += n * 4;
    }
    return at;
  }

  /** The byte address at which a kernel writes x[off..off+n); call `flush` after the kernel ran. */
  output(slot: number, x: Float32Array | null, off = 0, n = x?.length ?? 0): number {
    this.staged[slot] = 0;
    if (x === null) return 0;
    const at = this.addressOf(x);
    if (at >= 0) return at + off * 4;
    if (this.stagingBytes[slot]! < n * 4) {
      if (this.stagingBytes[slot]! > 0) this.release(this.staging[slot]!, this.stagingBytes[slot]!);
      this.stagingBytes[slot] = roundUp(n * 4 * 1.25);
      this.staging[slot] = this.alloc(this.stagingBytes[slot]!);
      this.stagingViews[slot]!.clear();
    }
    this.staged[slot] = 1;
    return this.staging[slot]!;
  }

  /** Copies what a kernel wrote to staging area `slot` back into x (nothing when x is in this memory). */
  flush(slot: number, x: Float32Array | null, off = 0, n = x?.length ?? 0): void {
    if (this.staged[slot] === 1) {
      x!.set(this.stagingView(slot, n), off);
      this.stagedBytes += n * 4;
    }
  }

  /**
   * The first n values of staging area `slot` as a view, made once per (area, length): a step copies the
   * same tensors out every time, so steady state makes no views.
   */
  private stagingView(slot: number, n: number): Float32Array {
    const views = this.stagingViews[slot]!;
    let v = views.get(n);
    if (v === undefined) {
      v = new Float32Array(this.bufferCovering(this.staging[slot]! + n * 4), this.staging[slot]!, n);
      views.set(n, v);
    }
    return v;
  }

  private refresh(): void {
    const b = this.memory.buffer as SharedArrayBuffer;
    if (b !== this.buffer) {
      this.buffer = b;
      this.f32 = new Float32Array(b);
      this.buffers.add(b);
    }
  }
}

let requested: KernelKind | 'auto' | undefined;
let heap: WasmHeap | null | undefined; // undefined: not tried yet; null: unavailable here
let compiled: WebAssembly.Module | undefined;

/**
 * Chooses this thread's kernels: 'wasm' (WebAssembly SIMD, the default where available) or 'ts' (the
 * plain TypeScript kernels, the fallback and the oracle). Results differ in the last bits between the
 * two (f32 sums in a different order), so every thread of one training run must use the same kind; the
 * worker pool passes the main thread's choice to its workers. Also set by STREAMGRAD_KERNELS=ts|wasm.
 */
export function setKernels(kind: KernelKind | 'auto'): void {
  if (kind !== 'wasm' && kind !== 'ts' && kind !== 'auto') throw new ValueError(`setKernels: kind must be 'wasm', 'ts' or 'auto' (got ${fmtValue(kind)})`);
  requested = kind;
}

/** The kernels this thread runs: 'wasm' when requested (or auto) and available, else 'ts'. */
export function kernelsInUse(): KernelKind {
  return wasmHeap() === null ? 'ts' : 'wasm';
}

/** This thread's heap with the kernels, or null when the TypeScript kernels are in use. */
export function wasmHeap(): WasmHeap | null {
  const kind = requestedKind();
  if (kind === 'ts') return null;
  if (heap === undefined) heap = open(null);
  return heap;
}

/**
 * A heap on a fresh shared memory, for a training run to put what its worker threads read in place
 * (parameters, batches) and hand to them with `adoptHeap`; garbage once the run drops it. null when the
 * TypeScript kernels are in use.
 */
export function createHeap(): WasmHeap | null {
  return wasmHeap() === null ? null : open(null);
}

/**
 * Makes `h` this thread's heap (what `wasmHeap()` returns) and returns the one it replaces: a training
 * run makes its own heap current while it runs, so the main thread's reducer and optimizer work on the
 * run's gradient slots and parameters in place, and puts the previous one back when it ends.
 */
export function swapHeap(h: WasmHeap | null): WasmHeap | null {
  const prev = wasmHeap();
  if (h !== null) heap = h;
  return prev;
}

/**
 * Makes this thread run its kernels on `memory` (another thread's `createHeap().memory`) from now on: its
 * arenas are allocated there, and views it makes from `heap.view` read the other thread's data in place.
 * Returns the heap, or null when this thread uses the TypeScript kernels.
 */
export function adoptHeap(memory: WebAssembly.Memory): WasmHeap | null {
  if (requestedKind() === 'ts') return null;
  heap = open(memory);
  return heap;
}

function requestedKind(): KernelKind | 'auto' {
  if (requested === undefined) {
    const env = process.env['STREAMGRAD_KERNELS'];
    if (env === undefined || env === '' || env === 'auto') requested = 'auto';
    else if (env === 'wasm' || env === 'ts') requested = env;
    else throw new ValueError(`STREAMGRAD_KERNELS must be 'wasm', 'ts' or 'auto' (got ${fmtValue(env)})`);
  }
  return requested;
}

function open(memory: WebAssembly.Memory | null): WasmHeap | null {
  let why: string;
  try {
    if (typeof WebAssembly === 'undefined') {
      why = 'this runtime has no WebAssembly';
    } else if (!WebAssembly.validate(SIMD_PROBE)) {
      why = 'this runtime has no WebAssembly SIMD';
    } else {
      compiled ??= new WebAssembly.Module(readFileSync(WASM_FILE));
      return new WasmHeap(memory ?? new WebAssembly.Memory({ initial: 2, maximum: MAX_PAGES, shared: true }), compiled);
    }
  } catch (e) {
    why = (e as NodeJS.ErrnoException).code === 'ENOENT'
      ? `${WASM_FILE.pathname} is missing (run \`npm run build:wasm\`)`
      : `they failed to load: ${(e as Error).message}`;
  }
  if (requestedKind() === 'wasm') throw new ValueError(`WebAssembly SIMD kernels were requested, but ${why}`);
  notice(`streamgrad: using the TypeScript kernels, because ${why.startsWith('this runtime') ? why : `of the WebAssembly SIMD kernels: ${why}`}`);
  return null;
}

let noticed = false;
function notice(message: string): void {
  if (noticed) return;
  noticed = true;
  process.emitWarning(message, { code: 'STREAMGRAD_KERNELS' });
}

function roundUp(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN;
}
