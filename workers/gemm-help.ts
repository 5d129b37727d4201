// Intra-op help: a worker cuts each large product into column blocks of C that any worker may claim, so
// a peer that waits for it (at a sync step's barrier, nothing is left to do until this worker's shard
// ends) computes part of it instead. Every element of C is still computed by one thread, summed over K
// in the kernel's fixed order (sgemmPart), so the bits do not depend on who computed which block, nor on
// whether anyone helped: sync mode stays deterministic for any worker count.
import type { GemmSplitter, WasmHeap } from '../src/kernels/wasm/runtime.js';

/** Int32 words of the help SAB: a header, then one board per worker. */
const HELP = {
  /** Blocks computed by a thread other than the product's owner, since the run started (telemetry, tests). */
  HELPED: 0,
  HEADER: 16,
  /** Words per board: two 64-byte lines, the claim word and the product on one, the done flags on the other. */
  BOARD: 32,
} as const;

/** Fields of a board. */
const B = {
  /** (blocks << 16) | next unclaimed block: claimed by compare-and-swap, by the owner and helpers alike. */
  CLAIM: 0,
  /** The owner's product number, written into a block's done flag by the helper that computed it. */
  SEQ: 1,
  /** transA | transB << 1 | accumulate << 2 */
  FLAGS: 2,
  M: 3,
  N: 4,
  K: 5,
  A: 6,
  B: 7,
  C: 8,
  /** Columns of C per block. */
  UNIT: 9,
  /** op(A), packed whole by the owner (sgemmPackA). */
  PACKED: 10,
  /** Done flags, one per block: SEQ of the product the block was computed for. */
  DONE: 16,
} as const;

const MAX_BLOCKS = Number(process.env.SG_HELP_BLOCKS ?? 8);
/** The kernel's tile width: blocks start at multiples of it. */
const NR = 8;
/** Larger operands are not shared: their packing alone would be an L2's worth of traffic. */
const MAX_PACKED_BYTES = 4 << 20;
const AB = Number(process.env.SG_HELP_AB ?? 0);
const ALWAYS = process.env.SG_HELP_ALWAYS === "1";

/** Bytes of the help SAB for `workers` workers. */
export function helpBytes(workers: number): number {
  return (HELP.HEADER + workers * HELP.BOARD) * 4;
}

/** Blocks computed by helpers so far in a run (its help SAB). */
export function helpedBlocks(help: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(help), HELP.HELPED);
}

/**
 * One worker's side of the help boards: it offers its own products on its board, cut into at most
 * MAX_BLOCKS column blocks of at least `minFlops` each (smaller products run whole), and takes blocks
 * from the others' boards while it waits awake for a job. Offered whether or not a peer is idle: a
 * peer that becomes idle halfway through a product still finds blocks to take, and the cut costs
 * little since op(A) is packed once for all blocks.
 */
export class GemmHelp implements GemmSplitter {
  private readonly h: Int32Array;
  private readonly own: number;
  private seq: number;
  /** This thread's buffer for op(A) packed whole, in the heap. */
  private packed = 0;
  private packedBytes = 0;

  constructor(
    help: SharedArrayBuffer,
    private readonly index: number,
    private readonly workers: number,
    private readonly heap: WasmHeap,
    private readonly minFlops: number,
  ) {
    this.h = new Int32Array(help);
    this.own = HELP.HEADER + index * HELP.BOARD;
    // A replacement takes over its predecessor's board: numbers continue past its last product, so a
    // helper still finishing a block of that product cannot mark one of ours done; nothing it left open is offered.
    this.seq = this.h[this.own + B.SEQ]!;
    Atomics.store(this.h, this.own + B.CLAIM, 0);
  }

  sgemm(transA: number, transB: number, M: number, N: number, K: number, a: number, b: number, c: number, accumulate: number): boolean {
    const { h, own, heap } = this;
    let blocks = Math.min(MAX_BLOCKS, Math.floor((2 * M * N * K) / this.minFlops), Math.floor(N / NR));
    if (blocks < 2) return false;
    const packedBytes = heap.kernels.sgemmPackedABytes(M, K);
    if (packedBytes > MAX_PACKED_BYTES) return false;
    const unit = Math.ceil(N / blocks / NR) * NR;
    blocks = Math.ceil(N / unit);
    // op(A) is read by every block: packed once here, as each block would have packed it.
    if (packedBytes > this.packedBytes) {
      if (this.packedBytes > 0) heap.release(this.packed, this.packedBytes);
      this.packed = heap.alloc(packedBytes);
      this.packedBytes = packedBytes;
    }
    heap.kernels.sgemmPackA(transA, M, K, a, this.packed);
    const seq = (this.seq = (this.seq + 1) | 0);
    h[own + B.SEQ] = seq;
    h[own + B.FLAGS] = transA | (transB << 1) | (accumulate << 2);
    h[own + B.M] = M;
    h[own + B.N] = N;
    h[own + B.K] = K;
    h[own + B.A] = a;
    h[own + B.B] = b;
    h[own + B.C] = c;
    h[own + B.UNIT] = unit;
    h[own + B.PACKED] = this.packed;
    // The release: a helper reads the fields only after its claim, which reads this store.
    Atomics.store(h, own + B.CLAIM, blocks << 16);
    let mine = 0;
    for (let n = this.claim(own); n >= 0; n = this.claim(own)) {
      mine |= 1 << n;
      this.block(own, n);
    }
    for (let n = 0; n < blocks; n++) {
      if ((mine & (1 << n)) !== 0) continue;
      // A helper computes one block and stops; waiting here is shorter than a block.
      while (Atomics.load(h, own + B.DONE + n) !== seq);
    }
    return true;
  }

  /**
   * Computes one block of a peer's product, if one is on offer; false when none was. Called by an idle
   * worker between its checks for a job.
   */
  helpOnce(): boolean {
    const { h } = this;
    for (let w = 0; w < this.workers; w++) {
      if (w === this.index) continue;
      const board = HELP.HEADER + w * HELP.BOARD;
      const n = this.claim(board);
      if (n < 0) continue;
      // Read after the claim: the owner rewrites its board only once every block is done, this one included.
      const seq = h[board + B.SEQ]!;
      this.block(board, n);
      Atomics.add(h, HELP.HELPED, 1);
      Atomics.store(h, board + B.DONE + n, seq);
      return true;
    }
    return false;
  }

  /** The next unclaimed block of a board's product, claimed, or −1. */
  private claim(board: number): number {
    const h = this.h;
    for (;;) {
      const w = Atomics.load(h, board + B.CLAIM);
      const next = w & 0xffff;
      if (next >= w >>> 16) return -1;
      if (Atomics.compareExchange(h, board + B.CLAIM, w, w + 1) === w) return next;
    }
  }

  /** Columns [n·unit, (n+1)·unit) of a board's product. */
  private block(board: number, n: number): void {
    const h = this.h;
    const flags = h[board + B.FLAGS]!;
    const M = h[board + B.M]!;
    const N = h[board + B.N]!;
    const unit = h[board + B.UNIT]!;
    // Addresses are unsigned: the heap may pass 2 GiB.
    this.heap.sgemmPart(flags & 1, (flags >> 1) & 1, M, N, h[board + B.K]!, h[board + B.A]! >>> 0, h[board + B.B]! >>> 0, h[board + B.C]! >>> 0,
      (flags >> 2) & 1, 0, M, n * unit, Math.min(N, (n + 1) * unit), h[board + B.PACKED]! >>> 0);
  }
}
