// Tests of src/nn/recurrent.ts: state-dict names, shapes and order equal PyTorch's; a 2-step LSTM against a
// hand derivation (values and gradients); gradCheck properties for RNN, LSTM and GRU over random sizes;
// agreement with a plain-JS reference forward; truncated BPTT with detachState; error messages.
import { describe, expect, it, test } from 'vitest';
import fc from 'fast-check';
import { DTypeError, ShapeError, ValueError } from '../../src/errors.js';
import { crossEntropy } from '../../src/loss/index.js';
import { concat, reshape, slice, sum } from '../../src/ops/index.js';
import { Linear, Sequential } from '../../src/nn/layers.js';
import { GRU, LSTM, RNN, type RecurrentOptions, detachState } from '../../src/nn/recurrent.js';
import { Rng } from '../../src/random.js';
import { Arena } from '../../src/tensor/arena.js';
import { Tensor, tensor, zeros } from '../../src/tensor/tensor.js';
import { seedArb } from '../helpers/arbitraries.js';
import { expectClose, expectGrad, expectThrows, vals } from '../helpers/grad.js';
import { type RefKind, refForward } from '../helpers/recurrent-ref.js';

type AnyRnn = RNN | LSTM | GRU;

function make(kind: RefKind, F: number, H: number, opts: RecurrentOptions): AnyRnn {
  if (kind === 'LSTM') return new LSTM(F, H, opts);
  if (kind === 'GRU') return new GRU(F, H, opts);
  return new RNN(F, H, { ...opts, nonlinearity: kind === 'RNN_RELU' ? 'relu' : 'tanh' });
}

/** run() with an optional initial state, whatever the kind: [output, h, c?]. */
function runAll(m: AnyRnn, x: Tensor, h0?: Tensor, c0?: Tensor): Tensor[] {
  if (m instanceof LSTM) {
    const { output, hidden } = m.run(x, h0 === undefined ? undefined : { h: h0, c: c0! });
    return [output, hidden.h, hidden.c];
  }
  const { output, hidden } = m.run(x, h0);
  return [output, hidden];
}

const randomTensor = (shape: number[], rng: Rng, requiresGrad = false): Tensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Array.from({ length: n }, () => 2 * rng.uniform() - 1), { shape, dtype: 'f64', requiresGrad });
};

describe('parameters: PyTorch names, shapes, order and init', () => {
  // The expected lists are PyTorch's state_dict() of nn.LSTM/GRU/RNN(3, 5, num_layers=2).
  const pytorch = (G: number, layers: number, bias = true): [string, number[]][] => {
    const out: [string, number[]][] = [];
    for (let k = 0; k < layers; k++) {
      out.push([`weight_ih_l${k}`, [G * 5, k === 0 ? 3 : 5]], [`weight_hh_l${k}`, [G * 5, 5]]);
      if (bias) out.push([`bias_ih_l${k}`, [G * 5]], [`bias_hh_l${k}`, [G * 5]]);
    }
    return out;
  };
  const shapes = (m: AnyRnn): [string, number[]][] => Object.entries(m.stateDict()).map(([k, t]) => [k, t.shape.slice()]);

  test.each([
    ['LSTM', 4],
    ['GRU', 3],
    ['RNN_TANH', 1],
  ] as const)('%s with 1 and 2 layers, with and without bias', (kind, G) => {
    for (const layers of [1, 2]) {
      expect(shapes(make(kind, 3, 5, { numLayers: layers }))).toEqual(pytorch(G, layers));
      expect(shapes(make(kind, 3, 5, { numLayers: layers, bias: false }))).toEqual(pytorch(G, layers, false));
    }
  });

  test('inside Sequential the names are prefixed as in torch.nn.Sequential', () => {
    const m = new Sequential(new LSTM(3, 5, { returnLast: true }), new Linear(5, 2));
    expect(Object.keys(m.stateDict())).toEqual(['0.weight_ih_l0', '0.weight_hh_l0', '0.bias_ih_l0', '0.bias_hh_l0', '1.weight', '1.bias']);
  });

  test('init is U(−1/√H, 1/√H) for every parameter, reproducible from an Rng', () => {
    const m = new GRU(7, 16, { numLayers: 2, rng: new Rng(4) });
    const bound = 1 / Math.sqrt(16);
    for (const [, p] of m.namedParameters()) {
      expect(vals(p).every((v) => Math.abs(v) <= bound)).toBe(true);
      expect(vals(p).some((v) => Math.abs(v) > bound / 2)).toBe(true);
    }
    const whh = (): number[] => vals(new LSTM(2, 3, { rng: new Rng(9) }).stateDict()['weight_hh_l0']!);
    expect(whh()).toEqual(whh());
  });

  test('repr follows PyTorch', () => {
    expect(new LSTM(3, 5).toString()).toBe('LSTM(3, 5)');
    expect(new GRU(3, 5, { numLayers: 2, bias: false, batchFirst: true }).toString()).toBe('GRU(3, 5, num_layers=2, bias=False, batch_first=True)');
    expect(new RNN(3, 5, { nonlinearity: 'relu' }).toString()).toBe('RNN(3, 5, nonlinearity=relu)');
  });
});

describe('a 2-step LSTM (input 1, hidden 1) against a hand derivation, f64', () => {
  // Gate order i, f, g, o; distinct weights per gate so a wrong order changes every number.
  const Wih = [0.5, -0.3, 0.8, 0.1];
  const Whh = [0.2, 0.4, -0.6, 0.7];
  const bih = [0.1, 0.2, -0.1, 0.05];
  const bhh = [0, 0.1, 0.2, -0.05];
  const xs = [1.0, -0.5];

  test('h1, h2, c2 and dh2/dW_hh, dh2/dx by the chain rule in plain JS', () => {
    const sig = (z: number): number => 1 / (1 + Math.exp(-z));
    // Forward. Step 1 starts from h0 = c0 = 0, so W_hh plays no part in it.
    //   z1k = Wih_k·x1 + bih_k + bhh_k;  i1, f1, g1, o1 = σ, σ, tanh, σ of z1;  c1 = i1·g1;  h1 = o1·tanh(c1)
    //   z2k = Wih_k·x2 + Whh_k·h1 + bih_k + bhh_k;  c2 = f2·c1 + i2·g2;  h2 = o2·tanh(c2)
    const z1 = [0, 1, 2, 3].map((k) => Wih[k]! * xs[0]! + bih[k]! + bhh[k]!);
    const [i1, f1, g1, o1] = [sig(z1[0]!), sig(z1[1]!), Math.tanh(z1[2]!), sig(z1[3]!)];
    const c1 = f1 * 0 + i1 * g1;
    const h1 = o1 * Math.tanh(c1);
    const z2 = [0, 1, 2, 3].map((k) => Wih[k]! * xs[1]! + Whh[k]! * h1 + bih[k]! + bhh[k]!);
    const [i2, f2, g2, o2] = [sig(z2[0]!), sig(z2[1]!), Math.tanh(z2[2]!), sig(z2[3]!)];
    const c2 = f2 * c1 + i2 * g2;
    const h2 = o2 * Math.tanh(c2);
    // Backward of L = h2, with σ' = σ(1 − σ), tanh' = 1 − tanh²:
    //   dc2 = o2·(1 − tanh²c2)
    //   δ2 = (dc2·g2·i2(1−i2), dc2·c1·f2(1−f2), dc2·i2·(1−g2²), tanh(c2)·o2(1−o2))   (dL/dz2 per gate)
    //   dL/dWhh_k = δ2_k·h1 (step 1 saw h0 = 0);   dL/dx2 = Σ δ2_k·Wih_k
    //   dh1 = Σ δ2_k·Whh_k;   dc1 = dc2·f2 + dh1·o1·(1 − tanh²c1)
    //   δ1 = (dc1·g1·i1(1−i1), 0 (c0 = 0), dc1·i1·(1−g1²), dh1·tanh(c1)·o1(1−o1));   dL/dx1 = Σ δ1_k·Wih_k
    const dc2 = o2 * (1 - Math.tanh(c2) ** 2);
    const d2 = [dc2 * g2 * i2 * (1 - i2), dc2 * c1 * f2 * (1 - f2), dc2 * i2 * (1 - g2 * g2), Math.tanh(c2) * o2 * (1 - o2)];
    const gWhh = d2.map((d) => d * h1);
    const dh1 = d2.reduce((s, d, k) => s + d * Whh[k]!, 0);
    const dc1 = dc2 * f2 + dh1 * o1 * (1 - Math.tanh(c1) ** 2);
    const d1 = [dc1 * g1 * i1 * (1 - i1), 0, dc1 * i1 * (1 - g1 * g1), dh1 * Math.tanh(c1) * o1 * (1 - o1)];
    const gx = [d1.reduce((s, d, k) => s + d * Wih[k]!, 0), d2.reduce((s, d, k) => s + d * Wih[k]!, 0)];

    const m = new LSTM(1, 1, { dtype: 'f64' });
    m.loadStateDict({
      weight_ih_l0: { shape: [4, 1], data: Wih },
      weight_hh_l0: { shape: [4, 1], data: Whh },
      bias_ih_l0: { shape: [4], data: bih },
      bias_hh_l0: { shape: [4], data: bhh },
    });
    const x = tensor([[[xs[0]!]], [[xs[1]!]]], { dtype: 'f64', requiresGrad: true }); // [T=2, N=1, F=1]
    const { output, hidden } = m.run(x);
    // The library sums x·W + h·W + (b_ih + b_hh) in another order than the hand formula: a few ulps.
    const close = (got: number[], want: number[]): void => expectClose('LSTM', got, want, 1e-14, 1e-16);
    close(vals(output), [h1, h2]);
    close(vals(hidden.h), [h2]);
    close(vals(hidden.c), [c2]);
    sum(slice(output, 0, 1, 2)).backward(); // L = h2
    close(vals(m.stateDict()['weight_hh_l0']!.grad), gWhh);
    close(vals(x.grad), gx);
    // Pins the hand computation itself (the same recurrence evaluated separately in Python's math module).
    expect([h1, h2, c2]).toEqual([0.22684620602857572, 0.051393942368172234, 0.09780065653409503]);
  });
});

// ---- properties --------------------------------------------------------------------------------

const kinds: RefKind[] = ['LSTM', 'GRU', 'RNN_TANH', 'RNN_RELU'];
/** `npm run test:slow` (SLOW=1) runs every property ten times as often. */
const RUNS = process.env['SLOW'] ? 10 : 1;

const caseArb = fc.record({
  T: fc.integer({ min: 1, max: 4 }),
  N: fc.integer({ min: 1, max: 3 }),
  F: fc.integer({ min: 1, max: 3 }),
  H: fc.integer({ min: 1, max: 3 }),
  layers: fc.integer({ min: 1, max: 2 }),
  batchFirst: fc.boolean(),
  bias: fc.boolean(),
  withState: fc.boolean(),
  seed: seedArb,
});
type Case = typeof caseArb extends fc.Arbitrary<infer C> ? C : never;

/** A module, input and optional initial state for one case; values from U(−1, 1) of Rng(seed). */
function setup(kind: RefKind, c: Case, requiresGrad: boolean): { m: AnyRnn; x: Tensor; h0?: Tensor; c0?: Tensor } {
  const rng = new Rng(c.seed, 3);
  // ReLU's kink at 0: keep the bias so no pre-activation is exactly 0 (a zero input with no bias would be).
  const m = make(kind, c.F, c.H, { dtype: 'f64', rng, numLayers: c.layers, batchFirst: c.batchFirst, bias: c.bias || kind === 'RNN_RELU' });
  const x = randomTensor(c.batchFirst ? [c.N, c.T, c.F] : [c.T, c.N, c.F], rng, requiresGrad);
  if (!c.withState) return { m, x };
  return { m, x, h0: randomTensor([c.layers, c.N, c.H], rng, requiresGrad), ...(kind === 'LSTM' ? { c0: randomTensor([c.layers, c.N, c.H], rng, requiresGrad) } : {}) };
}

describe('gradCheck (f64 finite differences) through time and layers', () => {
  test.each(kinds)('%s: output and final state', (kind) => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const { m, x, h0, c0 } = setup(kind, c, true);
        const states = [h0, c0].filter((t): t is Tensor => t !== undefined);
        const label = `${kind} T=${c.T} N=${c.N} F=${c.F} H=${c.H} layers=${c.layers} batchFirst=${c.batchFirst} bias=${c.bias}`;
        // Every result flattened into one vector, so one check covers output, h and c.
        const f = (xi: Tensor, ...rest: Tensor[]): Tensor => {
          const [h, cc] = rest.slice(0, states.length);
          return concat(runAll(m, xi, h, cc).map((t) => reshape(t, [-1])), 0);
        };
        expectGrad(label, f, [x, ...states, ...m.parameters()], { seed: c.seed });
      }),
      { numRuns: 20 * RUNS },
    );
  });
});

describe('agreement with the plain-JS reference forward (random weights, f64)', () => {
  test.each(kinds)('%s', (kind) => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const { m, x, h0, c0 } = setup(kind, c, false);
        const cfg = { kind, inputSize: c.F, hiddenSize: c.H, numLayers: c.layers, bias: c.bias || kind === 'RNN_RELU', batchFirst: c.batchFirst };
        const params = Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, t.data]));
        const ref = refForward(cfg, params, x.data, c.T, c.N, h0?.data, c0?.data);
        const [output, h, cc] = runAll(m, x, h0, c0);
        expect(output!.shape).toEqual(c.batchFirst ? [c.N, c.T, c.H] : [c.T, c.N, c.H]);
        expect(h!.shape).toEqual([c.layers, c.N, c.H]);
        expectClose(`${kind} output`, output!.data, ref.output, 1e-12, 1e-14);
        expectClose(`${kind} h`, h!.data, ref.h, 1e-12, 1e-14);
        if (kind === 'LSTM') expectClose('LSTM c', cc!.data, ref.c, 1e-12, 1e-14);
      }),
      { numRuns: 30 * RUNS },
    );
  });

  test('f32 agrees with the f64 reference to f32 precision, on a larger case', () => {
    const rng = new Rng(11);
    const m = new LSTM(6, 8, { numLayers: 2, rng });
    const xs = Array.from({ length: 5 * 4 * 6 }, () => 2 * rng.uniform() - 1);
    const x = tensor(xs, { shape: [5, 4, 6] });
    const params = Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, t.data]));
    const ref = refForward({ kind: 'LSTM', inputSize: 6, hiddenSize: 8, numLayers: 2, bias: true, batchFirst: false }, params, x.data, 5, 4);
    expectClose('LSTM f32', m.forward(x).data, ref.output, 1e-5, 1e-6);
  });
});

describe('forward, returnLast, Sequential', () => {
  test('forward is run().output; returnLast gives the top layer last step [N, H] = hidden[numLayers − 1]', () => {
    const x = randomTensor([2, 4, 3], new Rng(1)); // batchFirst: N=2, T=4
    const all = new GRU(3, 5, { dtype: 'f64', numLayers: 2, batchFirst: true, rng: new Rng(2) });
    const last = new GRU(3, 5, { dtype: 'f64', numLayers: 2, batchFirst: true, returnLast: true, rng: new Rng(2) });
    const { output, hidden } = all.run(x);
    expect(vals(all.forward(x))).toEqual(vals(output));
    const y = last.forward(x);
    expect(y.shape).toEqual([2, 5]);
    expect(vals(y)).toEqual(vals(slice(hidden, 0, 1, 2)));
    expect(vals(y)).toEqual(vals(slice(output, 1, 3, 4)));
  });

  test('LSTM → Linear → crossEntropy trains through Sequential (loss falls)', () => {
    const rng = new Rng(5);
    const net = new Sequential(new LSTM(2, 8, { returnLast: true, dtype: 'f64', rng }), new Linear(8, 2, { dtype: 'f64', rng }));
    // Class = sign of the sum of the first feature over the 5 steps.
    const x = randomTensor([5, 16, 2], rng);
    const y = Array.from({ length: 16 }, (_, n) => ([0, 1, 2, 3, 4].reduce((a, t) => a + x.data[(t * 16 + n) * 2]!, 0) > 0 ? 1 : 0));
    const loss0 = crossEntropy(net.forward(x), y).item();
    for (let i = 0; i < 60; i++) {
      net.zeroGrad();
      crossEntropy(net.forward(x), y).backward();
      for (const p of net.parameters()) for (let k = 0; k < p.size; k++) p.data[k]! -= 0.5 * p.grad!.data[k]!;
    }
    expect(crossEntropy(net.forward(x), y).item()).toBeLessThan(loss0 / 2);
  });
});

describe('truncated BPTT with detachState', () => {
  test.each(['LSTM', 'GRU', 'RNN_TANH'] as const)('%s: chunks carrying detached state give the long sequence values; gradients stop at the boundary', (kind) => {
    const rng = new Rng(8);
    const m = make(kind, 2, 3, { dtype: 'f64', numLayers: 2, rng });
    const x1 = randomTensor([3, 2, 2], rng, true);
    const x2 = randomTensor([4, 2, 2], rng, true);
    const long = runAll(m, concat([x1, x2], 0));

    const [out1, ...state1] = runAll(m, x1);
    const [h, c] = state1.map((t) => detachState(t));
    expect(h!.requiresGrad).toBe(false);
    const second = runAll(m, x2, h, c);
    // Same arithmetic in the same order: bit-identical.
    expect([...vals(out1!), ...vals(second[0]!)]).toEqual(vals(long[0]!));
    second.slice(1).forEach((t, i) => expect(vals(t)).toEqual(vals(long[i + 1]!)));

    // The loss of the second chunk reaches x2 but not x1 ...
    sum(second[0]!).backward();
    expect(x2.grad).not.toBeNull();
    expect(x1.grad).toBeNull();
    // ... whereas without detaching it flows back into the first chunk.
    const [hk, ck] = runAll(m, x1).slice(1);
    sum(runAll(m, x2, hk, ck)[0]!).backward();
    expect(vals(x1.grad).some((v) => v !== 0)).toBe(true);
  });

  test('the detached state is persistent: it survives the reset of the arena it was computed in', () => {
    const m = new LSTM(2, 3, { dtype: 'f64', rng: new Rng(1) });
    const arena = new Arena(1 << 16);
    const x = randomTensor([3, 2, 2], new Rng(2));
    const state = arena.step(() => detachState(m.run(x).hidden));
    const want = [vals(state.h), vals(state.c)];
    arena.step(() => m.run(randomTensor([3, 2, 2], new Rng(3)))); // reuses the first step's memory
    expect([vals(state.h), vals(state.c)]).toEqual(want);
  });
});

describe('messages', () => {
  test('input shape, dtype and initial state are checked before any compute', () => {
    const lstm = new LSTM(3, 5);
    expectThrows(() => lstm.forward(zeros([7, 2, 4])), ShapeError, 'LSTM(input_size=3, hidden_size=5): input has shape [7,2,4], expected [T, N, 3]');
    expectThrows(() => lstm.forward(zeros([7, 3])), ShapeError, 'LSTM(input_size=3, hidden_size=5): input has shape [7,3], expected [T, N, 3]');
    expectThrows(() => new GRU(3, 5, { batchFirst: true }).forward(zeros([2, 7, 4])), ShapeError, 'GRU(input_size=3, hidden_size=5): input has shape [2,7,4], expected [N, T, 3]');
    expectThrows(() => new RNN(3, 5).forward(zeros([0, 2, 3])), ShapeError, 'RNN(input_size=3, hidden_size=5): input has shape [0,2,3], a sequence needs at least one step and one sample');
    expectThrows(() => lstm.forward(zeros([7, 2, 3], { dtype: 'f64' })), DTypeError, 'LSTM(input_size=3, hidden_size=5): input is f64 but the parameters are f32');
    expectThrows(
      () => new GRU(3, 5, { numLayers: 2 }).run(zeros([7, 2, 3]), zeros([1, 2, 5])),
      ShapeError,
      'GRU(input_size=3, hidden_size=5): initial h has shape [1,2,5], expected [2,2,5] (numLayers, N, hidden_size)',
    );
    expectThrows(
      () => lstm.run(zeros([7, 2, 3]), { h: zeros([1, 2, 5]), c: zeros([1, 3, 5]) }),
      ShapeError,
      'LSTM(input_size=3, hidden_size=5): initial c has shape [1,3,5], expected [1,2,5] (numLayers, N, hidden_size)',
    );
    expectThrows(() => lstm.run(zeros([7, 2, 3]), zeros([1, 2, 5]) as never), ValueError, 'LSTM(input_size=3, hidden_size=5): initial state must be { h, c } (got Tensor([1,2,5], f32))');
    expectThrows(() => new RNN(3, 5).forward('x' as never), ValueError, "RNN: input 'x' must be a Tensor (got string)");
  });

  test('options', () => {
    expectThrows(() => new LSTM(0, 5), ValueError, 'LSTM: inputSize must be an integer >= 1 (got 0)');
    expectThrows(() => new GRU(3, 2.5), ValueError, 'GRU: hiddenSize must be an integer >= 1 (got 2.5)');
    expectThrows(() => new RNN(3, 5, { numLayers: 0 }), ValueError, 'RNN: numLayers must be an integer >= 1 (got 0)');
    expectThrows(() => new RNN(3, 5, { nonlinearity: 'sigmoid' as never }), ValueError, `RNN: nonlinearity must be 'tanh' or 'relu' (got "sigmoid")`);
    expectThrows(() => new LSTM(3, 5, { batchFirst: 1 as never }), ValueError, 'LSTM: batchFirst must be a boolean (got 1)');
  });
});

describe('stateful recurrent layers (truncated BPTT over a stream)', () => {
  it.each(['RNN', 'LSTM', 'GRU'] as const)('%s: each forward starts from the previous final state, detached; a new batch size or resetState starts from zeros', (kind) => {
    const Ctor = { RNN, LSTM, GRU }[kind];
    const opts = { dtype: 'f64' as const, numLayers: 2, batchFirst: true, rng: new Rng(3, 1) };
    const stateful = new Ctor(3, 4, { ...opts, stateful: true });
    const plain = new Ctor(3, 4, { ...opts, rng: new Rng(3, 1) });
    const rng = new Rng(9, 2);
    const x = (n: number) => tensor(Float64Array.from({ length: n * 5 * 3 }, () => rng.uniform() - 0.5), { dtype: 'f64', shape: [n, 5, 3] });
    const x1 = x(2);
    const x2 = x(2);
    const first = plain.run(x1);
    const want = plain.run(x2, detachState(first.hidden as never) as never).output;
    stateful.forward(x1);
    const got = stateful.forward(x2);
    expect(Array.from(got.data)).toEqual(Array.from(want.data));
    // The carried state is cut from the graph: backward through the second batch stops at its start.
    expect((stateful.carriedState instanceof Tensor ? stateful.carriedState : (stateful.carriedState as { h: Tensor }).h).requiresGrad).toBe(false);
    stateful.resetState();
    expect(Array.from(stateful.forward(x2).data)).toEqual(Array.from(plain.run(x2).output.data));
    stateful.forward(x(3)); // another batch size: zeros, not an error
    expect(Array.from(stateful.forward(x2).data)).toEqual(Array.from(plain.run(x2).output.data));
  });
});
