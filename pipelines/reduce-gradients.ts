// reduceGradients: the step's reduced gradient and its norm. Sync mode sums the micro-shards' gradient
// slots into the parameters' gradients in shard order, whatever worker filled each slot: the step that
// makes it bit-identical for any worker count. The main thread sums them here, or the workers' update
// jobs did (their chunks' Σ g² are added here, in chunk order).
import { type OperatorFunction, map } from 'rxjs';
import type { ComputedBatch, ReducedBatch } from './types.js';

/** `normSq` reduces the batch's gradients if they are not yet and returns their Σ g²; null: Hogwild, whose workers applied their own. */
export function reduceGradients(normSq: ((b: ComputedBatch) => number) | null): OperatorFunction<ComputedBatch, ReducedBatch> {
  return map((b) => ({ ...b, gradNorm: normSq === null ? Number.NaN : Math.sqrt(normSq(b)) }));
}
