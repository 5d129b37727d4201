// Worker entry of the parallel section's ceiling rows: the one-thread training loop (own model, own
// batches, nothing shared) on a thread of its own, timed over the last share of a fixed duration.
import { parentPort, workerData } from 'node:worker_threads';
import { buildModel, type ModelSpec } from '../src/index.js';
import { mnistBatches, sequenceBatches } from './data.js';
import { streamgradContender } from './streamgrad.js';

export interface ThreadLoopJob {
  spec: ModelSpec;
  inputShape: number[];
  batch: number;
  lr: number;
  seconds: number;
  /** Share of `seconds` left out as warm-up. */
  warmup: number;
  /** MNIST digits ([784] or [1, 28, 28]), or random sequences of the input shape [steps, features]. */
  data: 'mnist' | 'sequences';
}

const job = (workerData as { job: ThreadLoopJob }).job;
const batches = job.data === 'mnist' ? mnistBatches(8, job.batch) : sequenceBatches(8, job.batch, job.inputShape[0]!, job.inputShape[1]!);
const c = streamgradContender(buildModel(job.spec, 1), batches, [job.batch, ...job.inputShape], job.lr);
await c.enter?.();
const t0 = performance.now();
const end = t0 + job.seconds * 1000;
const from = t0 + job.seconds * 1000 * job.warmup;
let steps = 0;
let fromAt = 0;
for (let now = t0; now < end; now = performance.now()) {
  if (fromAt === 0 && now >= from) {
    fromAt = now;
    steps = 0;
  }
  await c.step();
  steps++;
}
parentPort!.postMessage((steps * job.batch * 1000) / (performance.now() - fromAt));
