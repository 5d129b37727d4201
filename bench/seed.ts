// Small-model section: the README's 2-2-1 sigmoid network trained one sample at a time on XOR, so the
// per-step overhead is all there is: the fused dense path, the generic autograd path, and tfjs.
import { Arena, Linear, SGD, Sequential, Sigmoid, Tensor, mseLoss } from '../src/index.js';
import { FusedDense } from '../src/train/fused.js';
import { type BenchSection, type Contender, median, timeInterleaved } from './report.js';
import { tf, useBackend } from './tfjs.js';

const XS = new Float64Array([0, 0, 0, 1, 1, 0, 1, 1]);
const TS = new Float64Array([0, 1, 1, 0]);
/** Samples per timed step: the per-sample work is tiny, so time it in runs of this many. */
const RUN = 10_000;

function seedNet(): Sequential {
  return new Sequential(new Linear(2, 2, { dtype: 'f64' }), new Sigmoid(), new Linear(2, 1, { dtype: 'f64' }), new Sigmoid());
}

function fused(): Contender {
  const net = seedNet();
  const opt = new SGD(net.parameters(), { lr: 0.5 });
  const f = new FusedDense(net);
  const x = new Float64Array(2);
  const t = new Float64Array(1);
  let k = 0;
  return {
    name: 'streamgrad FusedDense',
    step: () => {
      for (let i = 0; i < RUN; i++, k++) {
        const s = k & 3;
        x[0] = XS[2 * s]!;
        x[1] = XS[2 * s + 1]!;
        t[0] = TS[s]!;
        opt.zeroGrad();
        f.step(x, t, 1, 'mseLoss');
        opt.step();
      }
    },
  };
}

function autograd(): Contender {
  const net = seedNet();
  const opt = new SGD(net.parameters(), { lr: 0.5 });
  const arena = new Arena(1 << 16);
  const x = new Tensor(new Float64Array(2), [1, 2]);
  const t = new Tensor(new Float64Array(1), [1, 1]);
  let k = 0;
  return {
    name: 'streamgrad autograd',
    step: () => {
      for (let i = 0; i < RUN; i++, k++) {
        const s = k & 3;
        x.data[0] = XS[2 * s]!;
        x.data[1] = XS[2 * s + 1]!;
        t.data[0] = TS[s]!;
        opt.zeroGrad();
        arena.step(() => mseLoss(net.forward(x), t).backward());
        opt.step();
      }
    },
  };
}

async function tfjsCpu(): Promise<Contender & { dispose(): void }> {
  await useBackend('tfjs-cpu');
  const w1 = tf.variable(tf.randomUniform([2, 2], -0.7, 0.7, 'float32', 1));
  const b1 = tf.variable(tf.zeros([2]));
  const w2 = tf.variable(tf.randomUniform([2, 1], -0.7, 0.7, 'float32', 2));
  const b2 = tf.variable(tf.zeros([1]));
  const xs = [0, 1, 2, 3].map((s) => tf.tensor2d([XS[2 * s]!, XS[2 * s + 1]!], [1, 2]));
  const ts = [0, 1, 2, 3].map((s) => tf.tensor2d([TS[s]!], [1, 1]));
  const opt = tf.train.sgd(0.5);
  let k = 0;
  return {
    name: 'tfjs-cpu',
    enter: () => useBackend('tfjs-cpu'),
    step: () => {
      // tfjs is ~4 orders of magnitude slower per sample here: time it on RUN/100 samples and scale.
      for (let i = 0; i < RUN / 100; i++, k++) {
        const s = k & 3;
        opt.minimize(() => tf.losses.meanSquaredError(ts[s]!, tf.sigmoid(tf.add(tf.matMul(tf.sigmoid(tf.add(tf.matMul(xs[s]!, w1), b1)), w2), b2))) as tf.Scalar);
      }
    },
    dispose: () => {
      tf.dispose([w1, b1, w2, b2, ...xs, ...ts]);
      opt.dispose();
    },
  };
}

export async function benchSeed(opts: { quick: boolean }): Promise<BenchSection> {
  const tfc = await tfjsCpu();
  const contenders = [fused(), autograd(), tfc];
  const times = await timeInterleaved(contenders, opts.quick ? 1 : 5, () => (opts.quick ? { minRuns: 3, minMs: 200 } : { minRuns: 5, minMs: 1000 }));
  tfc.dispose();
  const rate = (name: string): number => ((name === 'tfjs-cpu' ? RUN / 100 : RUN) * 1000) / median(times.get(name) as number[]);
  const ours = rate('streamgrad FusedDense');
  return {
    title: 'The seed 2-2-1 network, one sample per step (samples/s)',
    columns: ['implementation', 'samples/s (median)', 'FusedDense speed-up'],
    rows: contenders.map((c) => [c.name, Math.round(rate(c.name)), `${(ours / rate(c.name)).toFixed(1)}×`]),
    notes: [
      'Linear(2,2) → Sigmoid → Linear(2,1) → Sigmoid, MSE, SGD lr 0.5, on the four XOR samples cycled; one sample per step = forward, loss, backward, update.',
      'FusedDense runs the same arithmetic as the autograd walk as plain loops over preallocated buffers (no graph, no allocation); f64. The autograd row is the generic engine with a per-step arena; f64. tfjs-cpu computes in f32 and is timed on 1/100 of the samples.',
      `Timed in ${opts.quick ? 1 : 5} rounds of blocks in rotating order; medians.`,
    ],
  };
}
