import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { Conv2d, Linear, ReLU, Sequential, Sigmoid, Tanh, crossEntropy, mseLoss, tensor } from '../../src/index.js';
import { Rng } from '../../src/random.js';
import { FusedDense, fusedUnsupported } from '../../src/train/fused.js';

const ACT = [() => new ReLU(), () => new Sigmoid(), () => new Tanh(), null] as const;

function net(sizes: number[], acts: number[], seed: number): Sequential {
  const rng = new Rng(seed, 3);
  const layers = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    layers.push(new Linear(sizes[l]!, sizes[l + 1]!, { dtype: 'f64', rng, bias: l % 2 === 0 }));
    const a = ACT[acts[l]! % ACT.length];
    if (a !== null && a !== undefined) layers.push(a());
  }
  return new Sequential(...layers);
}

describe('FusedDense', () => {
  test.prop(
    [fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 2, maxLength: 4 }), fc.array(fc.nat(3), { minLength: 3, maxLength: 3 }), fc.integer({ min: 1, max: 5 }), fc.boolean(), fc.nat(1000)],
    { numRuns: 60 },
  )('gives the loss and gradients autograd gives (f64), accumulating into .grad', (sizes, acts, n, ce, seed) => {
    const model = net(sizes, acts, seed);
    const rng = new Rng(seed, 4);
    const inF = sizes[0]!;
    const outF = sizes.at(-1)!;
    const x = Float64Array.from({ length: n * inF }, () => rng.uniform() * 4 - 2);
    const target = ce ? Float64Array.from({ length: n }, () => Math.floor(rng.uniform() * outF)) : Float64Array.from({ length: n * outF }, () => rng.uniform());
    // Autograd reference: mean loss, then keep the gradients.
    const out = model.forward(tensor(x, { dtype: 'f64', shape: [n, inF] }));
    const ref = ce ? crossEntropy(out, Int32Array.from(target)) : mseLoss(out, tensor(target, { dtype: 'f64', shape: [n, outF] }));
    ref.backward();
    const want = model.parameters().map((p) => Array.from(p.grad!.data));
    // Fused: from the same gradients, so the step must add exactly one more copy.
    const fused = new FusedDense(model);
    // torch's mean MSE averages over every element, so its scale is 1/(n·outF); cross-entropy's is 1/n.
    const total = fused.step(x, target, n, ce ? 'crossEntropy' : 'mseLoss', ce ? 1 / n : 1 / (n * outF));
    expect(total / (ce ? n : n * outF)).toBeCloseTo(ref.item(), 12);
    model.parameters().forEach((p, i) => p.grad!.data.forEach((g, j) => expect(g).toBeCloseTo(2 * want[i]![j]!, 11)));
    expect(Array.from(fused.output)).toEqual(Array.from(fused.forward(x, n)));
  });

  it('trains the seed 2-2-1 network on XOR one sample at a time', () => {
    const model = net([2, 4, 1], [1, 1], 1);
    const fused = new FusedDense(model);
    const xs = [0, 0, 0, 1, 1, 0, 1, 1];
    const ts = [0, 1, 1, 0];
    for (let i = 0; i < 20000; i++) {
      const k = i & 3;
      for (const p of model.parameters()) p.grad?.data.fill(0);
      fused.step(xs.slice(2 * k, 2 * k + 2), [ts[k]!], 1, 'mseLoss');
      for (const p of model.parameters()) for (let j = 0; j < p.size; j++) p.data[j] = p.data[j]! - 0.5 * p.grad!.data[j]!;
    }
    const out = fused.forward(xs, 4);
    expect(Array.from(out).map((v) => Math.round(v))).toEqual(ts);
  });

  it('refuses what it cannot fuse and wrong sizes, naming them', () => {
    expect(fusedUnsupported(new Sequential(new Linear(2, 2), new ReLU(), new Linear(2, 1)))).toBeNull();
    expect(() => new FusedDense(new Sequential(new Conv2d(1, 1, 1)))).toThrow('FusedDense: cannot fuse this model: the first layer must be Linear');
    expect(() => new FusedDense(new Sequential(new Linear(2, 2), new ReLU(), new ReLU()))).toThrow('layer 2 (ReLU) must follow a Linear layer');
    expect(() => new FusedDense(new Sequential(new Linear(2, 3), new Linear(2, 1)))).toThrow('FusedDense: layer 1 takes 2 features but the previous one gives 3');
    const f = new FusedDense(new Sequential(new Linear(2, 3, { dtype: 'f64' })));
    expect(() => f.step([1, 2, 3], [0, 0], 2, 'crossEntropy')).toThrow('FusedDense: input holds 3 values, 2 samples need [2,2]');
    expect(() => f.step([1, 2], [3], 1, 'crossEntropy')).toThrow('FusedDense: class index 3 of sample 0 is outside [0, 3)');
    expect(() => f.step([1, 2], [3], 1, 'mseLoss')).toThrow('FusedDense: mseLoss target holds 1 values, 1 samples need 3');
  });
});
