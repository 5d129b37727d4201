// reduceGradients: sums the micro-shards' gradient slots into the parameters' gradients, in shard order,
// whatever worker filled each slot: the step that makes sync mode bit-identical for any worker count.
import { type OperatorFunction, map } from 'rxjs';
import type { Tensor } from '../src/tensor/tensor.js';
import type { ShardedGradients } from '../src/train/shard.js';
import type { ComputedBatch, ReducedBatch } from './types.js';

function gradNorm(params: readonly Tensor[]): number {
  let s = 0;
  for (const p of params) {
    const g = p.grad!.data;
    for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
  }
  return Math.sqrt(s);
}

/** `sharded` null: Hogwild, whose workers applied their own gradients. */
export function reduceGradients(sharded: ShardedGradients | null, params: readonly Tensor[]): OperatorFunction<ComputedBatch, ReducedBatch> {
  return map((b) => {
    if (sharded === null) return { ...b, gradNorm: Number.NaN };
    sharded.reduce(b.jobs);
    return { ...b, gradNorm: gradNorm(params) };
  });
}
