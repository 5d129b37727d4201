// report: turns applied steps into telemetry and hands each record to a printer (or nothing); the
// telemetry Observable itself is what the CLI and a dashboard subscribe to.
import { type OperatorFunction, map, tap } from 'rxjs';
import type { ReducedBatch, StepTelemetry } from './types.js';

export interface ReportContext {
  lr(): number;
  queueDepth(): number;
  workerBusyMs(): number[];
  helpedBlocks(): number;
  /** Targets are class indices, so accuracy means something. */
  classTargets: boolean;
}

export function report(ctx: ReportContext, print?: (t: StepTelemetry) => void): OperatorFunction<ReducedBatch, StepTelemetry> {
  return (src) => {
    const t0 = performance.now();
    let samples = 0;
    return src.pipe(
      map((b): StepTelemetry => {
        samples += b.n;
        const seconds = (performance.now() - t0) / 1000;
        return {
          step: b.step,
          epoch: b.epoch,
          epochEnd: b.epochEnd,
          samples,
          loss: b.lossSum / b.n,
          accuracy: ctx.classTargets ? b.correct / b.n : Number.NaN,
          gradNorm: b.gradNorm,
          lr: ctx.lr(),
          samplesPerSecond: samples / Math.max(seconds, 1e-9),
          queueDepth: ctx.queueDepth(),
          workerBusyMs: ctx.workerBusyMs(),
          helpedBlocks: ctx.helpedBlocks(),
          seconds,
          ...(b.evaluation === undefined ? {} : { evaluation: b.evaluation }),
        };
      }),
      tap((t) => print?.(t)),
    );
  };
}

/** A plain report line for logs: step, epoch, loss, accuracy, throughput. */
export function formatTelemetry(t: StepTelemetry): string {
  const acc = Number.isNaN(t.accuracy) ? '' : ` acc ${(100 * t.accuracy).toFixed(1)}%`;
  const ep = t.epoch === undefined ? '' : ` epoch ${t.epoch}`;
  return `step ${t.step + 1}${ep} loss ${t.loss.toFixed(4)}${acc} ${Math.round(t.samplesPerSecond)} samples/s queue ${t.queueDepth}`;
}
