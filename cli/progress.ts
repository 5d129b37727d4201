// Progress of a training run as people expect it: a bar with samples/s, loss and ETA on a TTY, plain
// periodic lines in logs, one JSON object per report for scripts, or nothing.
import cliProgress from 'cli-progress';
import type { StepTelemetry } from '../pipelines/types.js';
import type { RunSummary } from './train.js';

export interface Progress {
  update(t: StepTelemetry): void;
  stop(): void;
  summary(s: RunSummary): void;
}

/** Seconds between plain or JSON reports (epoch ends always report). */
const EVERY_S = 5;

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

const pct = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '' : ` acc ${(100 * x).toFixed(2)}%`);

export function makeProgress(kind: 'bar' | 'lines' | 'json' | 'quiet', write: (s: string) => void, total: { totalSamples: number; doneSamples: number }): Progress {
  const eta = (t: StepTelemetry): number => (total.totalSamples - total.doneSamples - t.samples) / t.samplesPerSecond;
  let lastReport = -Infinity;
  const due = (t: StepTelemetry): boolean => {
    if (t.evaluation === undefined && t.seconds - lastReport < EVERY_S) return false;
    lastReport = t.seconds;
    return true;
  };
  const summaryLine = (s: RunSummary): string =>
    `${s.stopped ? 'stopped' : 'done'}: ${s.steps} steps, ${s.samples} samples in ${duration(s.seconds)}` +
    (s.testAccuracy === null ? '' : `, test accuracy ${(100 * s.testAccuracy).toFixed(2)}%`) +
    (s.testLoss === null ? '' : `, test loss ${s.testLoss.toFixed(4)}`) +
    `\nrun folder: ${s.dir}${s.stopped ? ` (continue with: streamgrad resume ${s.dir})` : ''}\n`;

  if (kind === 'quiet') return { update() {}, stop() {}, summary() {} };
  if (kind === 'json') {
    return {
      update(t) {
        if (!due(t)) return;
        write(`${JSON.stringify({ kind: 'progress', step: t.step, epoch: t.epoch ?? null, samples: t.samples, loss: t.loss, accuracy: Number.isNaN(t.accuracy) ? null : t.accuracy, samplesPerSecond: Math.round(t.samplesPerSecond), etaSeconds: Math.round(eta(t)), ...t.evaluation })}\n`);
      },
      stop() {},
      summary(s) {
        write(`${JSON.stringify({ kind: 'summary', ...s })}\n`);
      },
    };
  }
  if (kind === 'lines') {
    return {
      update(t) {
        if (!due(t)) return;
        const ev = t.evaluation === undefined ? '' : `  test loss ${t.evaluation.testLoss?.toFixed(4)}${pct(t.evaluation.testAccuracy)}`;
        write(`epoch ${t.epoch ?? '-'} step ${t.step + 1}  loss ${t.loss.toFixed(4)}${pct(t.accuracy)}${ev}  ${Math.round(t.samplesPerSecond)} samples/s  ETA ${duration(eta(t))}\n`);
      },
      stop() {},
      summary(s) {
        write(summaryLine(s));
      },
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: '{bar} {percentage}% | {value}/{total} samples | epoch {epoch} | loss {loss}{test} | {speed} samples/s | ETA {eta_formatted}',
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total.totalSamples, total.doneSamples, { epoch: '-', loss: '-', test: '', speed: 0 });
  let test = '';
  return {
    update(t) {
      if (t.evaluation !== undefined) test = ` | test acc ${(100 * (t.evaluation.testAccuracy ?? Number.NaN)).toFixed(2)}%`;
      bar.update(total.doneSamples + t.samples, { epoch: t.epoch ?? '-', loss: t.loss.toFixed(4), test, speed: Math.round(t.samplesPerSecond) });
    },
    stop() {
      bar.stop();
    },
    summary(s) {
      write(summaryLine(s));
    },
  };
}
