// batch: each free slot (a credit) pulls one batch of samples from the source into that slot. The only
// stage that reads the source, and it reads only when a credit arrives, so memory is bounded by slots.
import { type Observable, type OperatorFunction, concatMap, defer, takeWhile } from 'rxjs';
import type { BatchSlots } from '../workers/slots.js';
import type { BatchSource } from './source.js';
import type { PackedBatch } from './types.js';

export function batch(source: BatchSource, slots: BatchSlots, batchSize: number): OperatorFunction<number, PackedBatch> {
  return (credits$: Observable<number>) =>
    defer(() => {
      let step = 0;
      let ended = false;
      return credits$.pipe(
        // concatMap: one fill at a time, in credit order. Its queue holds credits only, at most one per slot.
        concatMap(async (slot): Promise<PackedBatch | null> => {
          if (ended) return null;
          const epoch = source.epoch;
          const into = { x: slots.x(slot), y: slots.y(slot), sampleSize: slots.sampleSize, targetSize: slots.targetSize };
          const n = await source.fill(into, batchSize);
          if (n === 0) {
            ended = true;
            return null;
          }
          // An epoch's tail starts the next fill in the new epoch; this batch belongs to the one it was read in.
          return { slot, n, step: step++, epoch: source.epoch === epoch ? epoch : source.epoch };
        }),
        takeWhile((b): b is PackedBatch => b !== null),
      );
    });
}
