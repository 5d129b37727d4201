// applyUpdate: the optimizer step on the shared parameters (sync mode; only this stage writes them),
// then the batch's slot goes back as a credit and its samples are acknowledged to the source.
import { type OperatorFunction, concatMap } from 'rxjs';
import type { Stepper } from '../src/train/fit.js';
import type { BatchSource } from './source.js';
import type { StepGate } from './step-gate.js';
import type { ReducedBatch } from './types.js';

/** `optimizer` null: Hogwild, whose workers updated the parameters themselves. */
export function applyUpdate(optimizer: Stepper | null, source: BatchSource, gate: StepGate, release: (slot: number) => void): OperatorFunction<ReducedBatch, ReducedBatch> {
  return concatMap(async (b) => {
    optimizer?.step();
    gate.advance();
    // Workers read parameters only inside a step, and the gate holds the next sync step until here: no race.
    release(b.slot);
    await source.applied?.(b.step);
    return b;
  });
}
