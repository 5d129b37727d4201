import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { prequential } from '../../pipelines/prequential.js';
import type { StepTelemetry } from '../../pipelines/types.js';

const tel = (step: number, samples: number, loss: number, accuracy: number): StepTelemetry => ({
  step, epoch: undefined, epochEnd: false, samples, loss, accuracy, gradNorm: 1, lr: 0.1, samplesPerSecond: 1, queueDepth: 0, workerBusyMs: [], helpedBlocks: 0, seconds: 1,
});

describe('prequential', () => {
  it('keeps sample-weighted cumulative and rolling means of the before-update metrics', async () => {
    // Steps of 10, 10 and 20 samples.
    const steps = [tel(0, 10, 1.0, 0.5), tel(1, 20, 0.5, 0.8), tel(2, 40, 0.25, 1.0)];
    const out = await lastValueFrom(from(steps).pipe(prequential(25), toArray()));
    expect(out.map((m) => m.samples)).toEqual([10, 20, 40]);
    expect(out[2]!.cumulativeLoss).toBeCloseTo((10 * 1 + 10 * 0.5 + 20 * 0.25) / 40, 12);
    expect(out[2]!.cumulativeAccuracy).toBeCloseTo((5 + 8 + 20) / 40, 12);
    // Window 25: after step 2 the oldest step (10 samples) drops, leaving 30 ≥ 25 samples.
    expect(out[2]!.rollingSamples).toBe(30);
    expect(out[2]!.rollingLoss).toBeCloseTo((10 * 0.5 + 20 * 0.25) / 30, 12);
    expect(out[1]!.rollingSamples).toBe(20);
  });

  it('refuses a window that is not a positive integer', () => {
    expect(() => prequential(0)).toThrow('prequential: window');
  });
});
