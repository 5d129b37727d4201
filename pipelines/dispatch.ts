// dispatch: hands packed batches to the worker pool. Sync mode posts each batch as soon as it is packed,
// cut into micro-shards over all workers, and emits the steps in order; the pool runs step k + 1 only
// after update k (the gate and the pool's job order see to it). Hogwild runs one batch per worker
// concurrently. Both queues are bounded by the batch slots upstream.
import { type OperatorFunction, concatMap, map, mergeMap, pipe } from 'rxjs';
import type { WorkerPool } from '../workers/pool.js';
import type { StepGate } from './step-gate.js';
import type { ComputedBatch, PackedBatch } from './types.js';

/**
 * `gate` (sync mode) releases each step once the previous one is applied. `early`: a step's shards may
 * start as soon as the previous step's jobs are done, before this thread has seen that step applied
 * (nothing the main thread does between steps then touches what shards write).
 */
export function dispatch(pool: WorkerPool, mode: 'sync' | 'hogwild', gate: StepGate, onStart?: (b: PackedBatch) => void, early = false): OperatorFunction<PackedBatch, ComputedBatch> {
  if (mode === 'sync') {
    return pipe(
      map((b) => {
        onStart?.(b);
        const done = pool.runShards(b.slot, b.n, b.step, early).then((r) => ({ ...b, ...r }));
        done.catch(() => {}); // a failure reaches the stream when its step's turn comes
        gate.post(b.step);
        return done;
      }),
      concatMap((done) => done),
    );
  }
  return mergeMap(async (b) => {
    onStart?.(b);
    return { ...b, ...(await pool.runWhole(b.slot, b.n, b.step)) };
  }, pool.size);
}
