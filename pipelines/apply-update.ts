// applyUpdate: the optimizer step on the shared parameters (sync mode; only this stage writes them),
// then the source hears that the batch is applied (acks), a checkpoint snapshot is taken if one is
// due, and the batch's slot goes back as a credit.
import { type ObservableInput, type OperatorFunction, concatMap } from 'rxjs';
import type { Stepper } from '../src/train/fit.js';
import { type BatchSource, isThenable } from './source.js';
import type { StepGate } from './step-gate.js';
import type { ReducedBatch } from './types.js';

export interface ApplyUpdateOptions<S> {
  /** null in Hogwild mode, whose workers updated the parameters themselves. */
  optimizer: Stepper | null;
  source: BatchSource;
  gate: StepGate;
  release: (slot: number) => void;
  /** A checkpoint's copy of the state, when one is due after this batch. */
  snapshot?: (b: ReducedBatch) => S | null;
  /** Runs right after the update, while (sync mode) no worker runs: an evaluation, say. Its result rides along. */
  afterUpdate?: (b: ReducedBatch) => Record<string, number> | undefined;
}

export function applyUpdate<S>(o: ApplyUpdateOptions<S>): OperatorFunction<ReducedBatch, ReducedBatch & { snapshot: S | null }> {
  // Answered synchronously when the source acknowledges synchronously (or not at all): no promise a step.
  return concatMap((b): ObservableInput<ReducedBatch & { snapshot: S | null }> => {
    o.optimizer?.step();
    const evaluation = o.afterUpdate?.(b);
    // The source updates its position synchronously; the acknowledgement itself may take a round trip.
    const acked = o.source.applied?.(b.fill);
    // Taken before the gate opens: in sync mode nothing else writes parameters or buffers until then.
    const snapshot = o.snapshot?.(b) ?? null;
    o.gate.advance();
    o.release(b.slot);
    const out = { ...b, snapshot, ...(evaluation === undefined ? {} : { evaluation }) };
    return isThenable(acked) ? acked.then(() => out) : [out];
  });
}
