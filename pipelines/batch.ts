// batch: each free slot (a credit) pulls one batch of samples from the source into that slot. The only
// stage that reads the source, and it reads only when a credit arrives, so memory is bounded by slots.
import { type Observable, type ObservableInput, type OperatorFunction, concatMap, defer, takeWhile } from 'rxjs';
import { ValueError, fmtValue } from '../src/errors.js';
import type { BatchSlots } from '../workers/slots.js';
import { type BatchSource, isThenable } from './source.js';
import type { PackedBatch } from './types.js';

export interface BatchOptions {
  /** Number of the first batch's step (a resumed run continues the count). */
  firstStep?: number;
  /** Asked before each fill with its number: true ends the stream as if the source were exhausted (stop, step limit). */
  stop?: (fill: number) => boolean;
}

export function batch(source: BatchSource, slots: BatchSlots, batchSize: number, opts: BatchOptions = {}): OperatorFunction<number, PackedBatch> {
  return (credits$: Observable<number>) =>
    defer(() => {
      let fill = 0;
      let ended = false;
      return credits$.pipe(
        // concatMap: one fill at a time, in credit order. Its queue holds credits only, at most one per slot.
        // A source that fills synchronously (an in-memory table) is answered synchronously: no promise a step.
        concatMap((slot): ObservableInput<PackedBatch | null> => {
          if (ended || opts.stop?.(fill) === true) return [null];
          const rows = slots.rows(slot);
          const into = { x: slots.x(slot), y: slots.y(slot), sampleSize: slots.sampleSize, targetSize: slots.targetSize, ...(rows === undefined ? {} : { rows }) };
          const packed = (n: number): PackedBatch | null => {
            if (!(Number.isInteger(n) && n >= 0 && n <= batchSize)) {
              throw new ValueError(`${source.name}: fill ${fill} returned ${fmtValue(n)}; expected the number of samples it wrote, an integer from 0 to ${batchSize}`);
            }
            if (n === 0) {
              ended = true;
              return null;
            }
            if (rows !== undefined) checkRows(source, rows, n, fill, slots.sampleSize);
            // A fill that crosses an epoch's end starts the new epoch, so the epoch is read after it.
            return { slot, n, fill, step: (opts.firstStep ?? 0) + fill++, epoch: source.epoch, epochEnd: source.epochEnded === true };
          };
          const n = source.fill(into, batchSize);
          return isThenable(n) ? n.then(packed) : [packed(n)];
        }),
        takeWhile((b): b is PackedBatch => b !== null),
      );
    });
}

/** A worker copies the rows a fill names straight from the table: each must be one of its rows. */
function checkRows(source: BatchSource, rows: Int32Array, n: number, fill: number, sampleSize: number): void {
  const count = source.table!.length / sampleSize;
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    if (!(r >= 0 && r < count)) throw new ValueError(`${source.name}: batch ${fill} names row ${r} of its table for sample ${i}; the table has rows 0 to ${count - 1}`);
  }
}
