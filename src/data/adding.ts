// The adding problem (Hochreiter & Schmidhuber 1997): a sequence of (value, marker) pairs with exactly
// two markers set; the target is the sum of the two marked values. Predicting the mean (1) scores an
// MSE of about 1/6, so a recurrent net must carry information across the whole sequence to do better.
import { checkInt } from '../errors.js';
import { Rng } from '../random.js';
import type { DType, Storage } from '../tensor/tensor.js';

export interface SequenceBatch {
  /** [n, steps, 2] (batch-first): value in [0, 1), marker 0 or 1. */
  x: Storage;
  /** [n, 1]: the sum of the two marked values. */
  y: Storage;
  n: number;
  steps: number;
}

/** `n` adding-problem sequences of length `steps`, reproducible from (seed, stream). */
export function addingProblem(n: number, steps: number, seed: number, opts: { stream?: number; dtype?: DType } = {}): SequenceBatch {
  checkInt('addingProblem', 'n', n, 1);
  checkInt('addingProblem', 'steps', steps, 2);
  const rng = new Rng(seed, opts.stream ?? 0);
  const f32 = (opts.dtype ?? 'f32') === 'f32';
  const x = f32 ? new Float32Array(n * steps * 2) : new Float64Array(n * steps * 2);
  const y = f32 ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * steps * 2;
    for (let t = 0; t < steps; t++) x[base + 2 * t] = rng.uniform();
    // One marker in each half, as in the original formulation, so the two never coincide.
    const a = rng.int(Math.floor(steps / 2));
    const b = Math.floor(steps / 2) + rng.int(steps - Math.floor(steps / 2));
    x[base + 2 * a + 1] = 1;
    x[base + 2 * b + 1] = 1;
    y[i] = x[base + 2 * a]! + x[base + 2 * b]!;
  }
  return { x, y, n, steps };
}
