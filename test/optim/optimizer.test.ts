// Tests of src/optim/optimizer.ts: hand-computed golden steps of SGD/Adam/AdamW, convergence with real
// autograd, stateDict round trips, allocation-free steps and every constructor / loadStateDict error.

import { describe, it, expect } from 'vitest';
import { StateDictError, ValueError } from '../../src/errors.js';
import { Tensor, tensor } from '../../src/tensor/tensor.js';
import { mul } from '../../src/ops/elementwise.js';
import { mseLoss } from '../../src/loss/index.js';
import { Linear } from '../../src/nn/layers.js';
import { Adam, AdamW, type Optimizer, type OptimizerStateDict, SGD } from '../../src/optim/index.js';

const f64 = { dtype: 'f64' as const, requiresGrad: true };

/** A 2-element f64 parameter [1, -2] (the start of every golden test). */
function param(values: number[] = [1, -2]): Tensor {
  return tensor(values, f64);
}

/** Sets a fixed gradient (what backward would have accumulated). */
function setGrad(p: Tensor, g: number[]): void {
  p.grad = tensor(g, { dtype: p.dtype });
}

/** Runs one step per gradient list and returns the parameter after each step. */
function run(opt: Optimizer<any, any>, p: Tensor, grads: number[][]): number[][] {
  return grads.map((g) => {
    setGrad(p, g);
    opt.step();
    return Array.from(p.data);
  });
}

function expectClose(actual: number[][], expected: number[][], tol = 1e-12): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, i) =>
    row.forEach((v, j) => {
      if (Math.abs(v - expected[i]![j]!) > tol) {
        throw new Error(`step ${i + 1}, element ${j}: got ${v}, expected ${expected[i]![j]} (|diff| ${Math.abs(v - expected[i]![j]!)})`);
      }
    }),
  );
}

// Fixed gradients for the SGD goldens: g1, g2, g3. lr 0.1 everywhere.
const G = [
  [0.5, 1],
  [-1, 2],
  [2, 0],
];

describe('SGD golden steps (p0 = [1, -2], lr 0.1, g = [0.5, 1], [-1, 2], [2, 0])', () => {
  it('plain: p -= lr·g', () => {
    const p = param();
    // p1 = [1 − 0.05, −2 − 0.1] = [0.95, −2.1]
    // p2 = [0.95 + 0.1, −2.1 − 0.2] = [1.05, −2.3]
    // p3 = [1.05 − 0.2, −2.3 − 0] = [0.85, −2.3]
    expectClose(run(new SGD([p], { lr: 0.1 }), p, G), [
      [0.95, -2.1],
      [1.05, -2.3],
      [0.85, -2.3],
    ]);
  });

  it('weight decay 0.1: g += 0.1·p', () => {
    const p = param();
    // step 1: g = [0.5 + 0.1, 1 − 0.2] = [0.6, 0.8];          p1 = [1 − 0.06, −2 − 0.08] = [0.94, −2.08]
    // step 2: g = [−1 + 0.094, 2 − 0.208] = [−0.906, 1.792];   p2 = [0.94 + 0.0906, −2.08 − 0.1792] = [1.0306, −2.2592]
    expectClose(run(new SGD([p], { lr: 0.1, weightDecay: 0.1 }), p, G.slice(0, 2)), [
      [0.94, -2.08],
      [1.0306, -2.2592],
    ]);
  });

  it('momentum 0.9: buf = g first, then 0.9·buf + g', () => {
    const p = param();
    // step 1: buf = [0.5, 1];                                   p1 = [0.95, −2.1]
    // step 2: buf = [0.45 − 1, 0.9 + 2] = [−0.55, 2.9];         p2 = [0.95 + 0.055, −2.1 − 0.29] = [1.005, −2.39]
    // step 3: buf = [−0.495 + 2, 2.61 + 0] = [1.505, 2.61];     p3 = [1.005 − 0.1505, −2.39 − 0.261] = [0.8545, −2.651]
    expectClose(run(new SGD([p], { lr: 0.1, momentum: 0.9 }), p, G), [
      [0.95, -2.1],
      [1.005, -2.39],
      [0.8545, -2.651],
    ]);
  });

  it('momentum 0.9, dampening 0.5: buf = 0.9·buf + 0.5·g (not on the first step)', () => {
    const p = param();
    // step 1: buf = g1 = [0.5, 1] (torch clones g, no dampening); p1 = [0.95, −2.1]
    // step 2: buf = [0.45 − 0.5, 0.9 + 1] = [−0.05, 1.9];       p2 = [0.95 + 0.005, −2.1 − 0.19] = [0.955, −2.29]
    // step 3: buf = [−0.045 + 1, 1.71 + 0] = [0.955, 1.71];      p3 = [0.955 − 0.0955, −2.29 − 0.171] = [0.8595, −2.461]
    expectClose(run(new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.5 }), p, G), [
      [0.95, -2.1],
      [0.955, -2.29],
      [0.8595, -2.461],
    ]);
  });

  it('nesterov: g + 0.9·buf', () => {
    const p = param();
    // step 1: buf = [0.5, 1];     g = [0.5 + 0.45, 1 + 0.9] = [0.95, 1.9];           p1 = [0.905, −2.19]
    // step 2: buf = [−0.55, 2.9]; g = [−1 − 0.495, 2 + 2.61] = [−1.495, 4.61];        p2 = [0.905 + 0.1495, −2.19 − 0.461] = [1.0545, −2.651]
    expectClose(run(new SGD([p], { lr: 0.1, momentum: 0.9, nesterov: true }), p, G.slice(0, 2)), [
      [0.905, -2.19],
      [1.0545, -2.651],
    ]);
  });

  it('momentum 0.9 with weight decay 0.1', () => {
    const p = param();
    // step 1: g = [0.6, 0.8] = buf;                                         p1 = [0.94, −2.08]
    // step 2: g = [−0.906, 1.792]; buf = [0.54 − 0.906, 0.72 + 1.792] = [−0.366, 2.512]
    //         p2 = [0.94 + 0.0366, −2.08 − 0.2512] = [0.9766, −2.3312]
    expectClose(run(new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.1 }), p, G.slice(0, 2)), [
      [0.94, -2.08],
      [0.9766, -2.3312],
    ]);
  });

  it('maximize: p += lr·g', () => {
    const p = param();
    // p1 = [1 + 0.05, −2 + 0.1] = [1.05, −1.9]
    expectClose(run(new SGD([p], { lr: 0.1, maximize: true }), p, G.slice(0, 1)), [[1.05, -1.9]]);
  });
});

// Adam goldens use betas (0.5, 0.75) and eps 0, so the bias corrections are short fractions:
// step 1: bc1 = 0.5, bc2 = 0.25;  step 2: bc1 = 0.75, bc2 = 1 − 0.5625 = 0.4375 = 7/16.
const ADAM = { lr: 0.1, betas: [0.5, 0.75] as const, eps: 0 };

describe('Adam / AdamW golden steps (p0 = [1, -2], lr 0.1, betas (0.5, 0.75))', () => {
  it('Adam, eps 0', () => {
    const p = param();
    // step 1, g = [2, −4]: m = 0.5·g = [1, −2]; v = 0.25·g² = [1, 4]
    //   stepSize = 0.1 / 0.5 = 0.2; denom = √v / √0.25 = [2, 4]
    //   p1 = [1 − 0.2·1/2, −2 + 0.2·2/4] = [0.9, −1.9]
    // step 2, g = [2, 4]: m = [0.5 + 1, −1 + 2] = [1.5, 1]; v = [0.75 + 1, 3 + 4] = [1.75, 7]
    //   stepSize = 0.1 / 0.75 = 2/15; denom = √(v / (7/16)) = [√4, √16] = [2, 4]
    //   p2 = [0.9 − (2/15)·1.5/2, −1.9 − (2/15)·1/4] = [0.8, −1.9 − 1/30]
    expectClose(
      run(new Adam([p], ADAM), p, [
        [2, -4],
        [2, 4],
      ]),
      [
        [0.9, -1.9],
        [0.8, -1.9 - 1 / 30],
      ],
    );
  });

  it('Adam, eps 1 (added after the bias-corrected square root)', () => {
    const p = param();
    // step 1: denom = [2 + 1, 4 + 1] = [3, 5];  p1 = [1 − 0.2/3, −2 + 0.4/5] = [1 − 0.2/3, −1.92]
    // step 2: denom = [3, 5]; p2 = [p1₀ − (0.2)/3, −1.92 − (2/15)/5] = [1 − 0.4/3, −1.92 − 2/75]
    expectClose(
      run(new Adam([p], { ...ADAM, eps: 1 }), p, [
        [2, -4],
        [2, 4],
      ]),
      [
        [1 - 0.2 / 3, -1.92],
        [1 - 0.4 / 3, -1.92 - 2 / 75],
      ],
    );
  });

  it('Adam, weight decay 0.5 (L2: g += 0.5·p)', () => {
    const p = param();
    // step 1: g = [2 + 0.5, −4 − 1] = [2.5, −5]; m = [1.25, −2.5]; v = 0.25·[6.25, 25] = [1.5625, 6.25]
    //   the first Adam step moves each element by lr·sign(g): p1 = [0.9, −1.9]
    // step 2: g = [2 + 0.45, 4 − 0.95] = [2.45, 3.05]
    //   m = [0.625 + 1.225, −1.25 + 1.525] = [1.85, 0.275]
    //   v = [0.75·1.5625 + 0.25·6.0025, 0.75·6.25 + 0.25·9.3025] = [2.6725, 7.013125]
    //   p2 = p1 − (0.1/0.75)·m / √(v / 0.4375)
    expectClose(
      run(new Adam([p], { ...ADAM, weightDecay: 0.5 }), p, [
        [2, -4],
        [2, 4],
      ]),
      [
        [0.9, -1.9],
        [0.9 - ((0.1 / 0.75) * 1.85) / Math.sqrt(2.6725 / 0.4375), -1.9 - ((0.1 / 0.75) * 0.275) / Math.sqrt(7.013125 / 0.4375)],
      ],
    );
  });

  it('AdamW, weight decay 0.5 (decoupled: p *= 1 − 0.1·0.5 first)', () => {
    const p = param();
    // step 1: p *= 0.95 → [0.95, −1.9]; then the plain Adam step (g unchanged) moves by lr·sign(g): p1 = [0.85, −1.8]
    // step 2: p *= 0.95 → [0.8075, −1.71]; Adam's step 2 as above moves by [0.1, 1/30]: p2 = [0.7075, −1.71 − 1/30]
    expectClose(
      run(new AdamW([p], { ...ADAM, weightDecay: 0.5 }), p, [
        [2, -4],
        [2, 4],
      ]),
      [
        [0.85, -1.8],
        [0.7075, -1.71 - 1 / 30],
      ],
    );
  });

  it('amsgrad: the denominator uses the running max of v', () => {
    const p = param();
    // step 1 as plain Adam: v = [1, 4], vMax = [1, 4], p1 = [0.9, −1.9]
    // step 2, g = [0.5, 4]: m = [0.5 + 0.25, −1 + 2] = [0.75, 1]
    //   v = [0.75 + 0.0625, 3 + 4] = [0.8125, 7]; vMax = [max(1, 0.8125), max(4, 7)] = [1, 7]
    //   denom = √vMax / √0.4375 = [1/√0.4375, √7/√(7/16)] = [1/√0.4375, 4]
    //   p2 = [0.9 − (2/15)·0.75·√0.4375, −1.9 − (2/15)·1/4] = [0.9 − 0.1·√0.4375, −1.9 − 1/30]
    const grads = [
      [2, -4],
      [0.5, 4],
    ];
    expectClose(run(new Adam([p], { ...ADAM, amsgrad: true }), p, grads), [
      [0.9, -1.9],
      [0.9 - 0.1 * Math.sqrt(0.4375), -1.9 - 1 / 30],
    ]);
    // Without amsgrad element 0 divides by √(0.8125 / 0.4375) instead: a different p2.
    const q = param();
    const plain = run(new Adam([q], ADAM), q, grads);
    expect(plain[1]![0]).toBeCloseTo(0.9 - (0.1 / 0.75) * 0.75 / Math.sqrt(0.8125 / 0.4375), 12);
  });

  it('constant gradients: every Adam step moves by lr·g/(|g| + eps) (the bias corrections cancel)', () => {
    const p = param([0, 0]);
    const opt = new Adam([p], { lr: 0.01 }); // torch defaults: betas (0.9, 0.999), eps 1e-8
    for (let t = 1; t <= 50; t++) {
      setGrad(p, [3, -0.5]);
      opt.step();
    }
    expect(p.data[0]).toBeCloseTo(-50 * 0.01 * (3 / (3 + 1e-8)), 10);
    expect(p.data[1]).toBeCloseTo(50 * 0.01 * (0.5 / (0.5 + 1e-8)), 10);
  });

  it('defaults match torch: Adam wd 0, AdamW wd 1e-2, lr 1e-3, betas (0.9, 0.999), eps 1e-8', () => {
    const adam = new Adam([param()]);
    const adamw = new AdamW([param()]);
    const common = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, amsgrad: false, maximize: false };
    expect(adam.defaults).toEqual({ ...common, weightDecay: 0, decoupledWeightDecay: false });
    expect(adamw.defaults).toEqual({ ...common, weightDecay: 1e-2, decoupledWeightDecay: true });
    expect(adamw.name).toBe('AdamW');
    expect(adamw).toBeInstanceOf(Adam);
  });

  it('maximize negates the gradient', () => {
    const p = param();
    expectClose(run(new Adam([p], { ...ADAM, maximize: true }), p, [[2, -4]]), [[1.1, -2.1]]);
  });
});

describe('step mechanics', () => {
  it('parameters without a grad are skipped and get no state; step counts are per parameter', () => {
    const a = param();
    const b = param([5, 6]);
    const opt = new Adam([a, b], ADAM);
    setGrad(a, [1, 1]);
    opt.step();
    expect(Array.from(b.data)).toEqual([5, 6]);
    setGrad(b, [1, 1]);
    opt.step();
    const sd = opt.stateDict();
    expect(sd.meta.state).toEqual({ '0': { step: 2 }, '1': { step: 1 } });
  });

  it('state buffers are allocated once and reused (same objects) across steps', () => {
    const p = param();
    const q = param();
    const adam = new Adam([p], { amsgrad: true });
    const sgd = new SGD([q], { lr: 0.1, momentum: 0.9 });
    setGrad(p, [1, 2]);
    setGrad(q, [1, 2]);
    adam.step();
    sgd.step();
    const state = (o: Optimizer<any, any>, t: Tensor) => (o as unknown as { state: Map<Tensor, Record<string, unknown>> }).state.get(t)!;
    const before = { ...state(adam, p) };
    const buf = state(sgd, q).momentumBuffer;
    for (let i = 0; i < 1000; i++) {
      adam.step();
      sgd.step();
    }
    const after = state(adam, p);
    expect(after.expAvg).toBe(before.expAvg);
    expect(after.expAvgSq).toBe(before.expAvgSq);
    expect(after.maxExpAvgSq).toBe(before.maxExpAvgSq);
    expect(after.step).toBe(1001);
    expect(state(sgd, q).momentumBuffer).toBe(buf);
  });

  it('f32 parameters get f32 state and track the f64 result closely', () => {
    const p32 = tensor([1, -2], { requiresGrad: true });
    const p64 = param();
    const o32 = new Adam([p32], { lr: 0.05, amsgrad: true });
    const o64 = new Adam([p64], { lr: 0.05, amsgrad: true });
    for (let t = 0; t < 20; t++) {
      const g = [Math.sin(t), Math.cos(3 * t)];
      setGrad(p32, g);
      setGrad(p64, g);
      o32.step();
      o64.step();
    }
    expect(p32.data).toBeInstanceOf(Float32Array);
    for (const buf of Object.values(o32.stateDict().tensors)) expect(buf).toBeInstanceOf(Float32Array);
    expect(p32.data[0]).toBeCloseTo(p64.data[0]!, 5);
    expect(p32.data[1]).toBeCloseTo(p64.data[1]!, 5);
  });

  it('zeroGrad fills existing grads with 0 in place; zeroGrad(true) drops them', () => {
    const p = param();
    const q = param();
    const opt = new SGD([p, q], { lr: 0.1 });
    setGrad(p, [1, 2]);
    const g = p.grad!;
    opt.zeroGrad();
    expect(p.grad).toBe(g);
    expect(Array.from(g.data)).toEqual([0, 0]);
    expect(q.grad).toBeNull();
    opt.zeroGrad(true);
    expect(p.grad).toBeNull();
  });

  it('step(closure) calls the closure first and returns its result', () => {
    const p = param();
    const opt = new SGD([p], { lr: 0.1 });
    const loss = opt.step(() => {
      setGrad(p, [1, 1]);
      return 42;
    });
    expect(loss).toBe(42);
    expect(Array.from(p.data)).toEqual([0.9, -2.1]);
  });

  it('param groups each use their own options; lr changes between steps take effect', () => {
    const a = param();
    const b = param();
    const opt = new SGD([{ params: [a] }, { params: [b], lr: 0.01, momentum: 0.9 }], { lr: 0.1 });
    expect(opt.paramGroups.map((g) => [g.lr, g.momentum])).toEqual([
      [0.1, 0],
      [0.01, 0.9],
    ]);
    setGrad(a, [1, 1]);
    setGrad(b, [1, 1]);
    opt.step();
    expect(Array.from(a.data)).toEqual([0.9, -2.1]);
    expect(Array.from(b.data)).toEqual([0.99, -2.01]);
    opt.paramGroups[0]!.lr = 1;
    opt.step();
    expect(Array.from(a.data)).toEqual([1 - 0.1 - 1, -2.1 - 1]);
  });

  it('addParamGroup validates like the constructor', () => {
    const a = param();
    const b = param();
    const opt = new SGD([a], { lr: 0.1 });
    expect(() => opt.addParamGroup({ params: [a] })).toThrow('SGD: paramGroups[1].params[0] is the same tensor as params[0]');
    expect(() => opt.addParamGroup({ params: [b], lr: 0 })).toThrow('SGD: paramGroups[1].lr must be > 0 (got 0)');
    opt.addParamGroup({ params: [b], momentum: 0.5 });
    expect(opt.paramGroups[1]!.momentum).toBe(0.5);
    expect(opt.paramGroups[1]!.lr).toBe(0.1);
  });
});

describe('convergence with real autograd', () => {
  const c = [1, -2, 3];

  function minimise(make: (p: Tensor) => Optimizer<any, any>, steps: number): number[] {
    const p = tensor([0, 0, 0], f64);
    const target = tensor(c, { dtype: 'f64' });
    const opt = make(p);
    for (let i = 0; i < steps; i++) {
      opt.zeroGrad();
      // Σ (p − c)² = 3 · mse(p, c)
      mul(mseLoss(p, target), 3).backward();
      opt.step();
    }
    return Array.from(p.data);
  }

  it.each([
    ['SGD', (p: Tensor) => new SGD([p], { lr: 0.1 }), 100],
    ['SGD momentum', (p: Tensor) => new SGD([p], { lr: 0.05, momentum: 0.9 }), 300],
    ['SGD nesterov', (p: Tensor) => new SGD([p], { lr: 0.05, momentum: 0.9, nesterov: true }), 300],
    ['Adam', (p: Tensor) => new Adam([p], { lr: 0.1 }), 500],
    ['Adam amsgrad', (p: Tensor) => new Adam([p], { lr: 0.1, amsgrad: true }), 500],
    ['AdamW wd 0', (p: Tensor) => new AdamW([p], { lr: 0.1, weightDecay: 0 }), 500],
  ] as const)('%s minimises Σ (p − c)²', (_name, make, steps) => {
    const p = minimise(make, steps);
    p.forEach((v, i) => expect(Math.abs(v - c[i]!)).toBeLessThan(1e-3));
  });

  it('SGD with weight decay λ converges to c / (1 + λ/2) (the minimum of Σ (p − c)² + λ/2·Σ p²)', () => {
    const p = minimise((q) => new SGD([q], { lr: 0.1, weightDecay: 0.5 }), 200);
    p.forEach((v, i) => expect(v).toBeCloseTo(c[i]! / 1.25, 8));
  });

  it('fits a Linear layer y = 2x + 1 through module.parameters()', () => {
    const layer = new Linear(1, 1, { dtype: 'f64' });
    const opt = new SGD(layer.parameters(), { lr: 0.1, momentum: 0.5 });
    const x = tensor([[-1], [0], [1], [2]], { dtype: 'f64' });
    const y = tensor([[-1], [1], [3], [5]], { dtype: 'f64' });
    for (let i = 0; i < 300; i++) {
      opt.zeroGrad();
      mseLoss(layer.forward(x), y).backward();
      opt.step();
    }
    const [w, b] = layer.parameters();
    expect(w!.data[0]).toBeCloseTo(2, 6);
    expect(b!.data[0]).toBeCloseTo(1, 6);
  });
});

describe('stateDict / loadStateDict', () => {
  const grads = (t: number): number[] => [Math.sin(t + 1), Math.cos(2 * t) - 0.3, 0.1 * t];

  /** Steps `opt` over grads t0..t1-1 and returns the parameter. */
  function steps(opt: Optimizer<any, any>, p: Tensor, t0: number, t1: number): number[] {
    for (let t = t0; t < t1; t++) {
      setGrad(p, grads(t));
      opt.step();
    }
    return Array.from(p.data);
  }

  /** What a checkpoint does to it: tensors copied, meta through JSON. */
  function throughCheckpoint(sd: OptimizerStateDict): OptimizerStateDict {
    const tensors = Object.fromEntries(Object.entries(sd.tensors).map(([k, v]) => [k, v.slice()]));
    return { tensors, meta: JSON.parse(JSON.stringify(sd.meta)) };
  }

  it.each([
    ['SGD', (ps: Tensor[]) => new SGD(ps, { lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 })],
    ['SGD nesterov', (ps: Tensor[]) => new SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true })],
    ['Adam', (ps: Tensor[]) => new Adam(ps, { lr: 0.05, weightDecay: 0.1 })],
    ['Adam amsgrad', (ps: Tensor[]) => new Adam(ps, { lr: 0.05, amsgrad: true })],
    ['AdamW', (ps: Tensor[]) => new AdamW(ps, { lr: 0.05 })],
  ] as const)('%s: a restored optimizer continues bit for bit', (_name, make) => {
    const p = tensor([0.5, -1, 2], f64);
    const opt = make([p]);
    steps(opt, p, 0, 4);
    const saved = throughCheckpoint(opt.stateDict());
    const restartValues = Array.from(p.data);
    const expected = steps(opt, p, 4, 10);

    const q = tensor(restartValues, f64);
    const fresh = make([q]);
    fresh.loadStateDict(saved);
    expect(steps(fresh, q, 4, 10)).toEqual(expected);
  });

  it('layout: state.<index>.<buffer> tensors, hyperparameters and indices in meta', () => {
    const a = param();
    const b = tensor([1, 2, 3], f64);
    const c = param();
    const opt = new Adam([{ params: [a, b] }, { params: [c], lr: 0.5, amsgrad: true }], { betas: [0.8, 0.9] });
    setGrad(a, [1, 1]);
    setGrad(c, [1, 1]);
    opt.step();
    const sd = opt.stateDict();
    expect(Object.keys(sd.tensors).sort()).toEqual(['state.0.expAvg', 'state.0.expAvgSq', 'state.2.expAvg', 'state.2.expAvgSq', 'state.2.maxExpAvgSq']);
    expect(sd.tensors['state.0.expAvg']).toBeInstanceOf(Float64Array);
    expect(Array.from(sd.tensors['state.0.expAvg']!)).toEqual([1 - 0.8, 1 - 0.8]); // (1 − β1)·g, g = 1
    expect(sd.meta).toEqual({
      optimizer: 'Adam',
      paramGroups: [
        { params: [0, 1], lr: 1e-3, betas: [0.8, 0.9], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, decoupledWeightDecay: false },
        { params: [2], lr: 0.5, betas: [0.8, 0.9], eps: 1e-8, weightDecay: 0, amsgrad: true, maximize: false, decoupledWeightDecay: false },
      ],
      state: { '0': { step: 1 }, '2': { step: 1 } },
    });
    // Copies: later steps do not change a saved dict.
    opt.step();
    expect(sd.tensors['state.0.expAvg']![0]).toBe(1 - 0.8);
  });

  it('restores hyperparameters (as torch) and converts buffers to the parameter dtype', () => {
    const p = param();
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
    setGrad(p, [1, 2]);
    opt.step();
    const sd = opt.stateDict();
    sd.meta.paramGroups[0]!.lr = 0.25;
    const p32 = tensor([1, -2], { requiresGrad: true });
    const other = new SGD([p32], { lr: 0.1, momentum: 0.9 });
    other.loadStateDict(sd);
    expect(other.paramGroups[0]!.lr).toBe(0.25);
    expect(other.stateDict().tensors['state.0.momentumBuffer']).toBeInstanceOf(Float32Array);
  });

  /** A one-step SGD-with-momentum state dict and a fresh optimizer to load it into. */
  function sgdPair(): { sd: OptimizerStateDict; opt: SGD; p: Tensor } {
    const p0 = param();
    const src = new SGD([p0], { lr: 0.1, momentum: 0.9 });
    setGrad(p0, [1, 2]);
    src.step();
    const p = param();
    return { sd: src.stateDict(), opt: new SGD([p], { lr: 0.3, momentum: 0.9 }), p };
  }

  it.each<[string, (sd: OptimizerStateDict) => unknown, string]>([
    ['not a state dict', () => 42, 'loadStateDict(SGD): expected { tensors, meta }'],
    ['another optimizer', (sd) => ({ ...sd, meta: { ...sd.meta, optimizer: 'Adam' } }), 'loadStateDict(SGD): the state dict is for "Adam", not SGD'],
    [
      'group count',
      (sd) => ({ ...sd, meta: { ...sd.meta, paramGroups: [] } }),
      'loadStateDict(SGD): expected 1 param groups (got an array of 0)',
    ],
    [
      'parameter indices',
      (sd) => ({ ...sd, meta: { ...sd.meta, paramGroups: [{ ...sd.meta.paramGroups[0]!, params: [0, 1] }] } }),
      'loadStateDict(SGD): paramGroups[0].params must be [0] (got [0,1])',
    ],
    [
      'a bad hyperparameter',
      (sd) => ({ ...sd, meta: { ...sd.meta, paramGroups: [{ ...sd.meta.paramGroups[0]!, lr: 0 }] } }),
      'loadStateDict(SGD): paramGroups[0].lr must be > 0 (got 0)',
    ],
    [
      'a missing hyperparameter',
      (sd) => {
        const { momentum: _m, ...g } = sd.meta.paramGroups[0]!;
        return { ...sd, meta: { ...sd.meta, paramGroups: [g] } };
      },
      'loadStateDict(SGD): paramGroups[0].momentum must be a finite number (got undefined)',
    ],
    [
      'an unknown option',
      (sd) => ({ ...sd, meta: { ...sd.meta, paramGroups: [{ ...sd.meta.paramGroups[0]!, foo: 1 }] } }),
      "loadStateDict(SGD): paramGroups[0] has an unknown option 'foo'",
    ],
    [
      'nesterov without momentum',
      (sd) => ({ ...sd, meta: { ...sd.meta, paramGroups: [{ ...sd.meta.paramGroups[0]!, nesterov: true, momentum: 0 }] } }),
      'loadStateDict(SGD): paramGroups[0]: nesterov requires momentum > 0 and dampening = 0 (got momentum 0, dampening 0)',
    ],
    [
      'a malformed tensor key',
      (sd) => ({ ...sd, tensors: { momentum: new Float64Array(2) } }),
      "loadStateDict(SGD): unexpected tensor 'momentum' (expected state.<index>.<buffer>)",
    ],
    [
      'an index out of range',
      (sd) => ({ ...sd, tensors: { 'state.1.momentumBuffer': new Float64Array(2) } }),
      "loadStateDict(SGD): tensor 'state.1.momentumBuffer': no parameter 1 (there are 1)",
    ],
    [
      'a wrong length',
      (sd) => ({ ...sd, tensors: { 'state.0.momentumBuffer': new Float64Array(3) } }),
      "loadStateDict(SGD): tensor 'state.0.momentumBuffer' holds 3 values, expected 2",
    ],
    [
      'not a typed array',
      (sd) => ({ ...sd, tensors: { 'state.0.momentumBuffer': [1, 2] } }),
      "loadStateDict(SGD): tensor 'state.0.momentumBuffer' must be a Float32Array or Float64Array (got an array of 2)",
    ],
    [
      'an unknown buffer',
      (sd) => ({ ...sd, tensors: { 'state.0.expAvg': new Float64Array(2) } }),
      "loadStateDict(SGD): parameter 0: unexpected buffer 'expAvg' (expected momentumBuffer)",
    ],
    [
      'an unknown scalar',
      (sd) => ({ ...sd, meta: { ...sd.meta, state: { '0': { step: 1 } } } }),
      "loadStateDict(SGD): parameter 0: unexpected scalar 'step' (expected none)",
    ],
    [
      'a non-finite scalar',
      (sd) => ({ ...sd, meta: { ...sd.meta, state: { '0': { step: null } } } }),
      "loadStateDict(SGD): meta.state['0'].step must be a finite number (got null)",
    ],
  ])('refuses %s, changing nothing', (_what, corrupt, message) => {
    const { sd, opt, p } = sgdPair();
    const before = opt.stateDict();
    expect(() => opt.loadStateDict(corrupt(sd) as OptimizerStateDict)).toThrow(StateDictError);
    expect(() => opt.loadStateDict(corrupt(sd) as OptimizerStateDict)).toThrow(message);
    // The valid parts (lr 0.1, a momentum buffer) were not applied either.
    expect(opt.stateDict()).toEqual(before);
    expect(opt.paramGroups[0]!.lr).toBe(0.3);
    setGrad(p, [1, 1]);
    opt.step(); // still works with its own (empty) state: first momentum step
    expect(Array.from(p.data)).toEqual([1 - 0.3, -2 - 0.3]);
  });

  it('Adam refuses missing buffers and bad step counts', () => {
    const p = param();
    const opt = new Adam([p], { amsgrad: true });
    setGrad(p, [1, 1]);
    opt.step();
    const sd = opt.stateDict();
    const { 'state.0.maxExpAvgSq': _drop, ...rest } = sd.tensors;
    expect(() => opt.loadStateDict({ ...sd, tensors: rest })).toThrow("loadStateDict(Adam): parameter 0: missing buffer 'maxExpAvgSq'");
    expect(() => opt.loadStateDict({ ...sd, meta: { ...sd.meta, state: { '0': { step: 1.5 } } } })).toThrow(
      'loadStateDict(Adam): parameter 0: step must be an integer >= 1 (got 1.5)',
    );
    expect(() => opt.loadStateDict({ ...sd, meta: { ...sd.meta, state: {} } })).toThrow('loadStateDict(Adam): parameter 0: step must be an integer >= 1 (got undefined)');
    expect(() => opt.loadStateDict({ ...sd, meta: { ...sd.meta, optimizer: 'AdamW' } })).toThrow('loadStateDict(Adam): the state dict is for "AdamW", not Adam');
    expect(() => opt.loadStateDict(sd)).not.toThrow();
  });
});

describe('constructor errors', () => {
  const p = () => param();

  it.each<[string, () => unknown, string]>([
    ['lr 0', () => new SGD([p()], { lr: 0 }), 'SGD: lr must be > 0 (got 0)'],
    ['lr < 0', () => new AdamW([p()], { lr: -0.001 }), 'AdamW: lr must be > 0 (got -0.001)'],
    ['lr NaN', () => new SGD([p()], { lr: NaN }), 'SGD: lr must be a finite number (got NaN)'],
    ['lr Infinity', () => new Adam([p()], { lr: Infinity }), 'Adam: lr must be a finite number (got Infinity)'],
    ['lr missing', () => new SGD([p()], {} as { lr: number }), 'SGD: lr must be a finite number (got undefined)'],
    ['momentum < 0', () => new SGD([p()], { lr: 0.1, momentum: -0.1 }), 'SGD: momentum must be >= 0 (got -0.1)'],
    ['dampening NaN', () => new SGD([p()], { lr: 0.1, dampening: NaN }), 'SGD: dampening must be a finite number (got NaN)'],
    ['weightDecay < 0', () => new SGD([p()], { lr: 0.1, weightDecay: -1 }), 'SGD: weightDecay must be >= 0 (got -1)'],
    ['weightDecay Infinity', () => new AdamW([p()], { weightDecay: Infinity }), 'AdamW: weightDecay must be a finite number (got Infinity)'],
    [
      'nesterov without momentum',
      () => new SGD([p()], { lr: 0.1, nesterov: true }),
      'SGD: nesterov requires momentum > 0 and dampening = 0 (got momentum 0, dampening 0)',
    ],
    [
      'nesterov with dampening',
      () => new SGD([p()], { lr: 0.1, nesterov: true, momentum: 0.9, dampening: 0.1 }),
      'SGD: nesterov requires momentum > 0 and dampening = 0 (got momentum 0.9, dampening 0.1)',
    ],
    ['nesterov not boolean', () => new SGD([p()], { lr: 0.1, nesterov: 1 as unknown as boolean }), 'SGD: nesterov must be a boolean (got 1)'],
    ['betas[0] = 1', () => new Adam([p()], { betas: [1, 0.999] }), 'Adam: betas[0] must be in [0, 1) (got 1)'],
    ['betas[1] < 0', () => new Adam([p()], { betas: [0.9, -0.1] }), 'Adam: betas[1] must be in [0, 1) (got -0.1)'],
    ['betas NaN', () => new AdamW([p()], { betas: [NaN, 0.9] }), 'AdamW: betas[0] must be in [0, 1) (got NaN)'],
    ['betas not a pair', () => new Adam([p()], { betas: [0.9] as unknown as [number, number] }), 'Adam: betas must be a pair of numbers (got [0.9])'],
    ['eps < 0', () => new Adam([p()], { eps: -1e-8 }), 'Adam: eps must be >= 0 (got -1e-8)'],
    ['amsgrad not boolean', () => new Adam([p()], { amsgrad: 'yes' as unknown as boolean }), 'Adam: amsgrad must be a boolean (got "yes")'],
    [
      'an unknown option',
      () => new SGD([p()], { lr: 0.1, weight_decay: 0.1 } as unknown as { lr: number }),
      "SGD: unknown option 'weight_decay' (options: lr, momentum, dampening, nesterov, weightDecay, maximize)",
    ],
    ['options not an object', () => new Adam([p()], 0.1 as unknown as {}), 'Adam: options must be an object (got 0.1)'],
    ['empty params', () => new SGD([], { lr: 0.1 }), 'SGD: params must not be empty'],
    ['only empty groups', () => new SGD([{ params: [] }], { lr: 0.1 }), 'SGD: params must not be empty'],
    [
      'params not an array',
      () => new SGD(p() as unknown as Tensor[], { lr: 0.1 }),
      'SGD: params must be an array of Tensors or of parameter groups (got Tensor([2], f64, requiresGrad))',
    ],
    ['a non-tensor', () => new SGD([p(), 3 as unknown as Tensor], { lr: 0.1 }), 'SGD: params[1] must be a Tensor (got 3)'],
    [
      'a tensor without requiresGrad',
      () => new Adam([tensor([1, 2])]),
      'Adam: params[0] must require grad (Tensor([2], f32) has requiresGrad false)',
    ],
    [
      'a non-leaf tensor',
      () => new SGD([mul(p(), 2)], { lr: 0.1 }),
      "SGD: params[0] must be a leaf tensor (it is the output of 'mul')",
    ],
    [
      'the same parameter twice',
      () => {
        const a = p();
        return new SGD([p(), a, a], { lr: 0.1 });
      },
      'SGD: params[2] is the same tensor as params[1]',
    ],
    [
      'the same parameter in two groups',
      () => {
        const a = p();
        return new SGD([{ params: [a] }, { params: [p(), a] }], { lr: 0.1 });
      },
      'SGD: paramGroups[1].params[1] is the same tensor as paramGroups[0].params[0]',
    ],
    ['a bad group option', () => new SGD([{ params: [p()] }, { params: [p()], lr: -1 }], { lr: 0.1 }), 'SGD: paramGroups[1].lr must be > 0 (got -1)'],
    [
      'an unknown group option',
      () => new SGD([{ params: [p()], foo: 1 } as { params: Tensor[] }], { lr: 0.1 }),
      "SGD: paramGroups[0] has an unknown option 'foo' (options: lr, momentum, dampening, nesterov, weightDecay, maximize)",
    ],
    [
      'nesterov in a group',
      () => new SGD([{ params: [p()], nesterov: true }], { lr: 0.1, momentum: 0.9, dampening: 0.5 }),
      'SGD: paramGroups[0]: nesterov requires momentum > 0 and dampening = 0 (got momentum 0.9, dampening 0.5)',
    ],
    [
      'a group mixed with tensors',
      () => new SGD([{ params: [p()] }, p()] as unknown as Tensor[], { lr: 0.1 }),
      'SGD: paramGroups[1] must be a parameter group { params, ...options } (got Tensor([2], f64, requiresGrad))',
    ],
    [
      'a group without a params array',
      () => new SGD([{ params: p() }] as unknown as Tensor[], { lr: 0.1 }),
      'SGD: paramGroups[0].params must be an array of Tensors (got Tensor([2], f64, requiresGrad))',
    ],
  ])('%s', (_what, make, message) => {
    expect(make).toThrow(ValueError);
    expect(make).toThrow(message);
  });
});
