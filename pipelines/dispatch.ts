// dispatch: hands packed batches to the worker pool. Sync mode runs one batch at a time (step k+1 needs
// the parameters after update k) cut into micro-shards over all workers; Hogwild runs one batch per
// worker concurrently. Both queues are bounded by the batch slots upstream.
import { type OperatorFunction, concatMap, mergeMap } from 'rxjs';
import type { WorkerPool } from '../workers/pool.js';
import type { StepGate } from './step-gate.js';
import type { ComputedBatch, PackedBatch } from './types.js';

/**
 * `gate` (sync mode): dispatch step k only after update k−1 is applied. `prepare` runs right before a
 * sync step is posted (the plan of an update the workers apply).
 */
export function dispatch(pool: WorkerPool, mode: 'sync' | 'hogwild', gate: StepGate, onStart?: (b: PackedBatch) => void, prepare?: () => void): OperatorFunction<PackedBatch, ComputedBatch> {
  if (mode === 'sync') {
    return concatMap(async (b) => {
      await gate.reached(b.step);
      onStart?.(b);
      prepare?.();
      return { ...b, ...(await pool.runShards(b.slot, b.n, b.step)) };
    });
  }
  return mergeMap(async (b) => {
    onStart?.(b);
    return { ...b, ...(await pool.runWhole(b.slot, b.n, b.step)) };
  }, pool.size);
}
