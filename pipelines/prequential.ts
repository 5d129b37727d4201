// prequential: test-then-train metrics over a run's telemetry. Each step's loss and accuracy are
// measured on its batch before the update that trains on it, so every sample is predicted first,
// then learned from; this operator keeps the cumulative and rolling (last `window` samples) means.
import { type OperatorFunction, defer, map } from 'rxjs';
import { checkInt } from '../src/errors.js';
import type { StepTelemetry } from './types.js';

export interface PrequentialMetrics {
  step: number;
  samples: number;
  /** Mean loss over every sample so far, each measured before it trained the model. */
  cumulativeLoss: number;
  cumulativeAccuracy: number;
  /** The same over (about) the last `window` samples: whole steps, the oldest dropped once over the window. */
  rollingLoss: number;
  rollingAccuracy: number;
  rollingSamples: number;
}

export function prequential(window = 1000): OperatorFunction<StepTelemetry, PrequentialMetrics> {
  checkInt('prequential', 'window', window, 1);
  return (src) =>
    defer(() => {
      let samples = 0;
      let lossSum = 0;
      let correct = 0;
      // Per-step contributions in the rolling window, oldest first (bounded by window steps).
      const recent: { n: number; loss: number; correct: number }[] = [];
      let rn = 0;
      let rLoss = 0;
      let rCorrect = 0;
      let prev = 0;
      return src.pipe(
        map((t): PrequentialMetrics => {
          const n = t.samples - prev; // samples of this step (telemetry counts cumulatively)
          prev = t.samples;
          const loss = t.loss * n;
          const ok = t.accuracy * n;
          samples += n;
          lossSum += loss;
          correct += ok;
          recent.push({ n, loss, correct: ok });
          rn += n;
          rLoss += loss;
          rCorrect += ok;
          while (rn - recent[0]!.n >= window) {
            const old = recent.shift()!;
            rn -= old.n;
            rLoss -= old.loss;
            rCorrect -= old.correct;
          }
          return {
            step: t.step,
            samples,
            cumulativeLoss: lossSum / samples,
            cumulativeAccuracy: correct / samples,
            rollingLoss: rLoss / rn,
            rollingAccuracy: rCorrect / rn,
            rollingSamples: rn,
          };
        }),
      );
    });
}
