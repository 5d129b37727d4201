import { Linear, Sequential, Sigmoid, SGD } from '../src/index.js';
import { FusedDense } from '../src/train/fused.js';
const net = new Sequential(new Linear(2, 2, { dtype: 'f64' }), new Sigmoid(), new Linear(2, 1, { dtype: 'f64' }), new Sigmoid());
const opt = new SGD(net.parameters(), { lr: 0.5 });
const f = new FusedDense(net);
const xs = new Float64Array([0, 0, 0, 1, 1, 0, 1, 1]);
const ts = new Float64Array([0, 1, 1, 0]);
const N = 2000000;
for (let rep = 0; rep < 3; rep++) {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const k = i & 3;
    opt.zeroGrad();
    f.step(xs.subarray(2 * k, 2 * k + 2), ts.subarray(k, k + 1), 1, 'mseLoss');
    opt.step();
  }
  console.log(((N / (performance.now() - t0)) * 1000).toFixed(0), 'samples/s');
}
