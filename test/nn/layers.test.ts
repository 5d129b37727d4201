// Tests of src/nn/layers.ts with src/nn/module.ts: the 2-2-1 seed network against a hand derivation,
// state-dict names and shapes equal to PyTorch's, loadStateDict refusals that leave values untouched,
// gradCheck of a small MLP, and layer details (golden forward, init bounds, messages).
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { ShapeError, StateDictError, ValueError } from '../../src/errors.js';
import { crossEntropy, mseLoss } from '../../src/loss/index.js';
import { LogSoftmax, Linear, ReLU, Sequential, Sigmoid, Softmax, Tanh } from '../../src/nn/layers.js';
import type { Module } from '../../src/nn/module.js';
import { Rng } from '../../src/random.js';
import { type DType, tensor } from '../../src/tensor/tensor.js';
import { indicesArb, seedArb, specArb } from '../helpers/arbitraries.js';
import { expectGrad, expectThrows, fromSpec, vals } from '../helpers/grad.js';

/** Every parameter's values, by name (copies). */
function snapshot(m: Module): Record<string, number[]> {
  return Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, Array.from(t.data)]));
}

describe('the 2-2-1 seed network (sigmoid after each Linear, f64)', () => {
  const W1 = [[0.1, 0.2], [0.3, 0.4]];
  const b1 = [0.5, 0.6];
  const W2 = [[0.7, 0.8]];
  const b2 = [0.9];
  const x = [0.5, 0.3];

  function seedNet(): Sequential {
    const net = new Sequential(new Linear(2, 2, { dtype: 'f64' }), new Sigmoid(), new Linear(2, 1, { dtype: 'f64' }), new Sigmoid());
    net.loadStateDict({
      '0.weight': { shape: [2, 2], data: W1.flat() },
      '0.bias': { shape: [2], data: b1 },
      '2.weight': { shape: [1, 2], data: W2.flat() },
      '2.bias': { shape: [1], data: b2 },
    });
    return net;
  }

  test('outputs exactly 0.871843204787514', () => {
    const y = seedNet().forward(tensor([x], { dtype: 'f64' }));
    expect(y.shape).toEqual([1, 1]);
    expect(y.item()).toBe(0.871843204787514);
  });

  test('MSE against target 1: gradients equal the chain rule worked by hand', () => {
    // Forward, in plain JS (no library code):
    //   z1 = W1·x + b1,  h = σ(z1),  z2 = W2·h + b2,  y = σ(z2),  L = (y − 1)²  (mean over one element)
    // Backward, with σ'(z) = σ(z)(1 − σ(z)):
    //   dL/dy   = 2(y − 1)
    //   δ2      = dL/dz2 = dL/dy · y(1 − y)
    //   dL/dW2j = δ2 · hj,           dL/db2 = δ2
    //   δ1j     = dL/dz1j = δ2 · W2j · hj(1 − hj)
    //   dL/dW1jk = δ1j · xk,         dL/db1j = δ1j
    const sig = (z: number): number => 1 / (1 + Math.exp(-z));
    const z1 = [W1[0]![0]! * x[0]! + W1[0]![1]! * x[1]! + b1[0]!, W1[1]![0]! * x[0]! + W1[1]![1]! * x[1]! + b1[1]!];
    const h = z1.map(sig);
    const z2 = W2[0]![0]! * h[0]! + W2[0]![1]! * h[1]! + b2[0]!;
    const y = sig(z2);
    const dy = 2 * (y - 1);
    const d2 = dy * y * (1 - y);
    const gW2 = [d2 * h[0]!, d2 * h[1]!];
    const gb2 = [d2];
    const d1 = [d2 * W2[0]![0]! * h[0]! * (1 - h[0]!), d2 * W2[0]![1]! * h[1]! * (1 - h[1]!)];
    const gW1 = [d1[0]! * x[0]!, d1[0]! * x[1]!, d1[1]! * x[0]!, d1[1]! * x[1]!];
    const gb1 = d1;
    expect(y).toBe(0.871843204787514); // the hand forward agrees with the published value

    const net = seedNet();
    const out = net.forward(tensor([x], { dtype: 'f64' }));
    const loss = mseLoss(out, tensor([[1]], { dtype: 'f64' }));
    expect(loss.item()).toBe((y - 1) ** 2);
    loss.backward();
    const g = Object.fromEntries(net.namedParameters().map(([n, p]) => [n, vals(p.grad)]));
    // The library multiplies in another order (e.g. (g·y)·(1 − y) vs d2·W2j·hj·(1 − hj)): allow 4 ulps.
    const close = (got: number[], want: number[]): void => want.forEach((w, i) => expect(Math.abs(got[i]! - w)).toBeLessThanOrEqual(4 * Number.EPSILON * Math.abs(w)));
    close(g['0.weight']!, gW1);
    close(g['0.bias']!, gb1);
    close(g['2.weight']!, gW2);
    close(g['2.bias']!, gb2);
  });
});

describe('state dict: names, shapes and order as torch.nn.Sequential', () => {
  test('Linear weight [out, in] then bias [out]; activations take indices but hold nothing', () => {
    // torch: nn.Sequential(nn.Linear(4,3), nn.ReLU(), nn.Linear(3,2), nn.Sigmoid()).state_dict()
    const m = new Sequential(new Linear(4, 3), new ReLU(), new Linear(3, 2), new Sigmoid());
    const sd = m.stateDict();
    expect(Object.keys(sd)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    expect(Object.values(sd).map((t) => t.shape)).toEqual([[3, 4], [3], [2, 3], [2]]);
    expect(m.namedParameters().map(([n]) => n)).toEqual(Object.keys(sd));
    expect(m.numParameters()).toBe(12 + 3 + 6 + 2);
  });

  test('nested Sequential and a Linear without bias', () => {
    // torch: nn.Sequential(nn.Sequential(nn.Linear(2,5), nn.Tanh()), nn.Linear(5,1,bias=False))
    const m = new Sequential(new Sequential(new Linear(2, 5), new Tanh()), new Linear(5, 1, { bias: false }));
    const sd = m.stateDict();
    expect(Object.keys(sd)).toEqual(['0.0.weight', '0.0.bias', '1.weight']);
    expect(Object.values(sd).map((t) => t.shape)).toEqual([[5, 2], [5], [1, 5]]);
  });

  test('every parameter requires grad, and has the layer\'s dtype', () => {
    const m = new Sequential(new Linear(2, 3, { dtype: 'f64' }), new Linear(3, 1, { dtype: 'f64' }));
    for (const p of m.parameters()) {
      expect(p.requiresGrad).toBe(true);
      expect(p.dtype).toBe('f64');
    }
    expect(m.dtype).toBe('f64');
  });
});

describe('loadStateDict', () => {
  const make = (): Sequential => new Sequential(new Linear(2, 3, { dtype: 'f64' }), new ReLU(), new Linear(3, 2, { dtype: 'f64' }));
  /** A complete, valid state dict whose values all differ from the model's. */
  const fullSd = (): Record<string, { shape: number[]; data: number[] }> => ({
    '0.weight': { shape: [3, 2], data: [1, 2, 3, 4, 5, 6] },
    '0.bias': { shape: [3], data: [7, 8, 9] },
    '2.weight': { shape: [2, 3], data: [10, 11, 12, 13, 14, 15] },
    '2.bias': { shape: [2], data: [16, 17] },
  });

  test('copies every value in, converting from another dtype', () => {
    const m = make();
    m.loadStateDict(fullSd());
    expect(snapshot(m)).toEqual(Object.fromEntries(Object.entries(fullSd()).map(([k, v]) => [k, v.data])));
    const f32 = new Sequential(new Linear(2, 3), new ReLU(), new Linear(3, 2));
    f32.loadStateDict(m.stateDict());
    expect(snapshot(f32)).toEqual(snapshot(m));
  });

  test('a missing key throws naming it, and nothing changes', () => {
    const m = make();
    const before = snapshot(m);
    const sd = fullSd();
    delete (sd as Record<string, unknown>)['2.bias'];
    expectThrows(() => m.loadStateDict(sd), StateDictError, "loadStateDict(Sequential): missing keys '2.bias'");
    expect(snapshot(m)).toEqual(before);
  });

  test('an extra key throws naming it, and nothing changes', () => {
    const m = make();
    const before = snapshot(m);
    expectThrows(
      () => m.loadStateDict({ ...fullSd(), '1.weight': { shape: [1], data: [0] } }),
      StateDictError,
      "loadStateDict(Sequential): unexpected keys '1.weight'",
    );
    expect(snapshot(m)).toEqual(before);
  });

  test('missing and extra together are both named', () => {
    const m = make();
    const sd: Record<string, { shape: number[]; data: number[] }> = { ...fullSd(), extra: { shape: [1], data: [0] } };
    delete sd['0.bias'];
    expectThrows(() => m.loadStateDict(sd), StateDictError, "loadStateDict(Sequential): missing keys '0.bias'; unexpected keys 'extra'");
  });

  test('a wrong shape (on the last key) throws naming key and shapes, and no earlier key was copied', () => {
    const m = make();
    const before = snapshot(m);
    const sd = fullSd();
    sd['2.weight'] = { shape: [3, 2], data: [10, 11, 12, 13, 14, 15] };
    expectThrows(() => m.loadStateDict(sd), StateDictError, "loadStateDict(Sequential): '2.weight' has shape [3,2] in the state dict, expected [2,3]");
    expect(snapshot(m)).toEqual(before);
  });

  test('a value count that does not match the shape is refused too', () => {
    const m = make();
    const before = snapshot(m);
    const sd = fullSd();
    sd['2.bias'] = { shape: [2], data: [1, 2, 3] };
    expectThrows(() => m.loadStateDict(sd), StateDictError, "loadStateDict(Sequential): '2.bias' holds 3 values, expected 2");
    expect(snapshot(m)).toEqual(before);
  });
});

describe('gradCheck of a small MLP (all parameters and the input, f64, eps 1e-6, rtol 1e-6)', () => {
  test('Linear → Tanh → Linear → Sigmoid → Linear, through crossEntropy', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(specArb([n, 3], 'any'), indicesArb(3, n, n))),
        fc.nat({ max: 1000 }),
        seedArb,
        ([xs, targets], initSeed, seed) => {
          const rng = new Rng(initSeed);
          const m = new Sequential(
            new Linear(3, 5, { dtype: 'f64', rng }),
            new Tanh(),
            new Linear(5, 4, { dtype: 'f64', rng }),
            new Sigmoid(),
            new Linear(4, 3, { dtype: 'f64', rng }),
          );
          const x = fromSpec(xs);
          expectGrad('MLP', (input) => crossEntropy(m.forward(input!), targets), [x, ...m.parameters()], { seed });
        },
      ),
      { numRuns: 15 },
    );
  });
});

describe('layers', () => {
  test('Linear computes x·Wᵀ + b over any leading axes', () => {
    const l = new Linear(2, 3, { dtype: 'f64' });
    l.loadStateDict({ weight: { shape: [3, 2], data: [1, 0, 0, 1, 1, 1] }, bias: { shape: [3], data: [0.5, 0, -1] } });
    expect(l.forward(tensor([[1, 2]], { dtype: 'f64' })).toArray()).toEqual([[1.5, 2, 2]]);
    expect(l.forward(tensor([1, 2], { dtype: 'f64' })).toArray()).toEqual([1.5, 2, 2]);
    expect(l.forward(tensor([[[1, 2]], [[3, 4]]], { dtype: 'f64' })).toArray()).toEqual([[[1.5, 2, 2]], [[3.5, 4, 6]]]);
  });

  test('default init is U(−1/√in, 1/√in) for weight and bias (PyTorch), reproducible from an Rng', () => {
    for (const dtype of ['f32', 'f64'] as DType[]) {
      const l = new Linear(16, 8, { dtype, rng: new Rng(3) });
      const bound = 1 / Math.sqrt(16);
      for (const p of l.parameters()) expect(vals(p).every((v) => Math.abs(v) <= bound)).toBe(true);
      expect(vals(l.weight).some((v) => Math.abs(v) > bound / 2)).toBe(true);
    }
    expect(vals(new Linear(4, 4, { rng: new Rng(9) }).weight)).toEqual(vals(new Linear(4, 4, { rng: new Rng(9) }).weight));
  });

  test('activations and softmax layers', () => {
    const x = tensor([[-1, 0, 2]], { dtype: 'f64' });
    expect(vals(new ReLU().forward(x))).toEqual([0, 0, 2]);
    expect(vals(new Sigmoid().forward(x))[1]).toBe(0.5);
    expect(vals(new Tanh().forward(x))[1]).toBe(0);
    const p = vals(new Softmax().forward(x));
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 15);
    const lp = vals(new LogSoftmax(1).forward(x));
    lp.forEach((v, i) => expect(v).toBeCloseTo(Math.log(p[i]!), 14));
  });

  test('zeroGrad, train/eval, toString', () => {
    const m = new Sequential(new Linear(2, 2, { dtype: 'f64' }), new Tanh());
    mseLoss(m.forward(tensor([[1, 2]], { dtype: 'f64' })), tensor([[0, 0]], { dtype: 'f64' })).backward();
    expect(m.parameters().every((p) => p.grad !== null)).toBe(true);
    m.zeroGrad();
    expect(m.parameters().every((p) => vals(p.grad).every((v) => v === 0))).toBe(true);
    m.eval();
    expect(m.training).toBe(false);
    expect(m.layers[0]!.training).toBe(false);
    m.train();
    expect(m.layers[1]!.training).toBe(true);
    expect(m.toString()).toBe('Sequential(\n  (0): Linear(in_features=2, out_features=2, bias=true)\n  (1): Tanh()\n)');
  });

  test('messages', () => {
    expectThrows(() => new Linear(0, 2), ValueError, 'Linear: inFeatures must be an integer >= 1 (got 0)');
    expectThrows(() => new Linear(2, 1.5), ValueError, 'Linear: outFeatures must be an integer >= 1 (got 1.5)');
    expectThrows(() => new Linear(2, 3).forward(tensor([[1, 2, 3, 4]])), ShapeError, 'Linear(2, 3): input has shape [1,4], expected [..., 2]');
    expectThrows(() => new Sequential({} as never), ValueError, "Sequential: child '0' must be a Module (got object)");
  });
});
