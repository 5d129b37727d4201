// reduceGradients: sums the micro-shards' gradient slots into the parameters' gradients, in shard order,
// whatever worker filled each slot: the step that makes sync mode bit-identical for any worker count.
import { type OperatorFunction, map } from 'rxjs';
import type { ShardedGradients } from '../src/train/shard.js';
import type { ComputedBatch, ReducedBatch } from './types.js';

/** `sharded` null: Hogwild, whose workers applied their own gradients. */
export function reduceGradients(sharded: ShardedGradients | null): OperatorFunction<ComputedBatch, ReducedBatch> {
  return map((b) => {
    if (sharded === null) return { ...b, gradNorm: Number.NaN };
    return { ...b, gradNorm: Math.sqrt(sharded.reduce(b.jobs)) };
  });
}
