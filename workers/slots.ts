// Batch slots: a ring of fixed-size batches in SharedArrayBuffers, written by the main thread and read
// in place by workers; which slot is free is the pipeline's business (credits), not this file's.
import { type DType, type Storage } from '../src/tensor/tensor.js';

export const BYTES: Record<DType, number> = { f32: 4, f64: 8 };

export function floatView(dtype: DType, buffer: SharedArrayBuffer, offset: number, length: number): Storage {
  const b = BYTES[dtype];
  return dtype === 'f32' ? new Float32Array(buffer, offset * b, length) : new Float64Array(buffer, offset * b, length);
}

export function floatBuffer(dtype: DType, length: number): SharedArrayBuffer {
  return new SharedArrayBuffer(Math.max(1, length) * BYTES[dtype]);
}

/** `count` slots of `batchSize` samples: inputs of `sampleSize` values, targets as class indices or `targetSize` values. */
export class BatchSlots {
  /** Where the inputs live: their own buffer, or a range of a larger one (a run's WebAssembly heap). */
  readonly xBuffer: SharedArrayBuffer;
  readonly xByteOffset: number;
  readonly yBuffer: SharedArrayBuffer;
  /** Row numbers in the run's shared table, per sample (runs whose source fills by row), else null. */
  readonly rowsBuffer: SharedArrayBuffer | null;
  private readonly xs: Storage[];
  private readonly ys: (Int32Array | Storage)[];
  private readonly rowViews: Int32Array[];

  constructor(
    readonly count: number,
    readonly batchSize: number,
    readonly sampleSize: number,
    /** Values per target, or 0 for one class index per sample. */
    readonly targetSize: number,
    readonly dtype: DType,
    buffers: { x?: SharedArrayBuffer; xByteOffset?: number; y?: SharedArrayBuffer; rows?: SharedArrayBuffer | null } = {},
  ) {
    const xLen = batchSize * sampleSize;
    const yLen = batchSize * Math.max(1, targetSize);
    this.xBuffer = buffers.x ?? floatBuffer(dtype, count * xLen);
    this.xByteOffset = buffers.xByteOffset ?? 0;
    this.yBuffer = buffers.y ?? (targetSize === 0 ? new SharedArrayBuffer(count * yLen * 4) : floatBuffer(dtype, count * yLen));
    const x0 = this.xByteOffset / BYTES[dtype];
    this.xs = Array.from({ length: count }, (_, s) => floatView(dtype, this.xBuffer, x0 + s * xLen, xLen));
    this.ys = Array.from({ length: count }, (_, s) =>
      targetSize === 0 ? new Int32Array(this.yBuffer, s * yLen * 4, yLen) : floatView(dtype, this.yBuffer, s * yLen, yLen),
    );
    this.rowsBuffer = buffers.rows ?? null;
    const rows = this.rowsBuffer;
    this.rowViews = rows === null ? [] : Array.from({ length: count }, (_, s) => new Int32Array(rows, s * batchSize * 4, batchSize));
  }

  /** Bytes of all slots' row numbers (runs that fill by row). */
  static rowsBytes(count: number, batchSize: number): number {
    return count * batchSize * 4;
  }

  /** Row numbers of slot s's samples in the run's shared table, when the run fills by row. */
  rows(s: number): Int32Array | undefined {
    return this.rowViews[s];
  }

  /** Bytes of all slots' inputs. */
  static xBytes(count: number, batchSize: number, sampleSize: number, dtype: DType): number {
    return count * batchSize * sampleSize * BYTES[dtype];
  }

  /** Inputs of slot s, sample i at [i·sampleSize, (i+1)·sampleSize). */
  x(s: number): Storage {
    return this.xs[s]!;
  }

  /** Targets of slot s: Int32Array of class indices, or values with sample i at [i·targetSize, …). */
  y(s: number): Int32Array | Storage {
    return this.ys[s]!;
  }
}
