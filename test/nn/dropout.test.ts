// Tests of src/nn/dropout.ts: masks as a pure function of (seed, stream, counter), the documented recipe a
// worker follows to reproduce one, keep fraction and 1/(1−p) scaling, eval identity, p = 0 and p = 1 as
// torch, gradCheck with a fixed mask, state kept out of the state dict, and messages.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { ValueError } from '../../src/errors.js';
import { DROPOUT_MAX_COUNTER, Dropout, dropoutMask } from '../../src/nn/dropout.js';
import { Linear, Sequential } from '../../src/nn/layers.js';
import { sum } from '../../src/ops/reduce.js';
import { Rng, manualSeed } from '../../src/random.js';
import { ones, tensor } from '../../src/tensor/tensor.js';
import { seedArb, specArb } from '../helpers/arbitraries.js';
import { expectGrad, expectThrows, fromSpec, vals } from '../helpers/grad.js';

const x64 = (n: number): ReturnType<typeof ones> => ones([n], { dtype: 'f64' });

describe('masks are a pure function of (seed, stream, counter)', () => {
  test('same key → identical mask, across modules and from dropoutMask', () => {
    const a = new Dropout(0.5, { seed: 11, stream: 3 });
    const b = new Dropout(0.5, { seed: 11, stream: 3 });
    const ya = vals(a.forward(x64(64)));
    expect(vals(b.forward(x64(64)))).toEqual(ya);
    expect(vals(dropoutMask([64], 0.5, { seed: 11, stream: 3, counter: 0 }, 'f64'))).toEqual(ya);
  });

  test('each training call advances the counter and draws a new mask; another counter, stream or seed differs', () => {
    const d = new Dropout(0.5, { seed: 5 });
    expect(d.rngState()).toEqual({ seed: 5, stream: 0, counter: 0 });
    const m0 = vals(d.forward(x64(64)));
    expect(d.rngState().counter).toBe(1);
    const m1 = vals(d.forward(x64(64)));
    expect(d.rngState().counter).toBe(2);
    expect(m1).not.toEqual(m0);
    expect(vals(dropoutMask([64], 0.5, { seed: 5, stream: 1, counter: 0 }, 'f64'))).not.toEqual(m0);
    expect(vals(dropoutMask([64], 0.5, { seed: 6, stream: 0, counter: 0 }, 'f64'))).not.toEqual(m0);
  });

  test('a worker reproduces call k by setting the counter on its own copy (checkpoint resume likewise)', () => {
    const main = new Dropout(0.3, { seed: 42, stream: 7 });
    const x = tensor(Array.from({ length: 40 }, (_, i) => i - 20), { dtype: 'f64' });
    const outs = [0, 1, 2, 3].map(() => vals(main.forward(x)));
    const worker = new Dropout(0.3, { seed: 42, stream: 7 });
    worker.setRngState({ seed: 42, stream: 7, counter: 2 });
    expect(vals(worker.forward(x))).toEqual(outs[2]);
    expect(vals(worker.forward(x))).toEqual(outs[3]);
    // A checkpoint saves rngState() next to the weights; a fresh module resumes the sequence exactly.
    const saved = main.rngState();
    const next = vals(main.forward(x));
    const resumed = new Dropout(0.3);
    resumed.setRngState(saved);
    expect(vals(resumed.forward(x))).toEqual(next);
  });

  test('the documented recipe: element i kept iff u32 draw i of Philox stream 2^52 + stream·2^32 + counter is ≥ p·2^32', () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 40 }), fc.nat({ max: 2 ** 20 - 1 }), fc.nat({ max: 2 ** 32 - 1 }), fc.double({ min: 0.05, max: 0.95, noNaN: true }), (seed, stream, counter, p) => {
        const mask = vals(dropoutMask([17], p, { seed, stream, counter }, 'f64'));
        const rng = new Rng(seed, 2 ** 52 + stream * 2 ** 32 + counter);
        const want = mask.map(() => (rng.nextUint32() >= p * 2 ** 32 ? 1 / (1 - p) : 0));
        expect(mask).toEqual(want);
      }),
      { numRuns: 25 },
    );
  });

  test('dropout streams never coincide with the ordinary Rng streams initialisers use under the same seed', () => {
    const rng = new Rng(3, 0);
    const draws = Array.from({ length: 64 }, () => rng.nextUint32() >= 2 ** 31);
    const mask = vals(dropoutMask([64], 0.5, { seed: 3, stream: 0, counter: 0 })).map((v) => v !== 0);
    expect(mask).not.toEqual(draws);
  });

  test('default seeds come from the generator seeded by manualSeed: two layers differ, a re-seed repeats them', () => {
    manualSeed(123);
    const a = new Dropout();
    const b = new Dropout();
    manualSeed(123);
    const a2 = new Dropout();
    expect(a.rngState().seed).not.toBe(b.rngState().seed);
    expect(a2.rngState()).toEqual(a.rngState());
    expect(Number.isSafeInteger(a.rngState().seed)).toBe(true);
  });
});

describe('values', () => {
  test('the kept fraction is ≈ 1 − p and kept values are scaled by exactly 1/(1 − p)', () => {
    for (const p of [0.1, 0.5, 0.8]) {
      const n = 50_000;
      const y = vals(new Dropout(p, { seed: 9 }).forward(x64(n)));
      const kept = y.filter((v) => v !== 0);
      // Binomial: σ of the fraction is √(p(1 − p)/n) ≤ 0.0023; allow 5σ.
      expect(Math.abs(kept.length / n - (1 - p))).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
      expect(new Set(kept)).toEqual(new Set([1 / (1 - p)]));
    }
    // f32: x·(1/(1−p)) rounded once, as torch's x * mask * scale.
    const y32 = vals(new Dropout(0.5, { seed: 1 }).forward(tensor([3, 3, 3, 3, 3, 3, 3, 3])));
    expect(new Set(y32)).toEqual(new Set([0, 6]));
  });

  test('eval mode is the identity and does not advance the counter', () => {
    const d = new Dropout(0.5, { seed: 1 }).eval();
    const x = tensor([1, 2, 3], { dtype: 'f64' });
    expect(d.forward(x)).toBe(x);
    expect(d.rngState().counter).toBe(0);
    d.train();
    expect(vals(d.forward(x))).not.toEqual([1, 2, 3]);
  });

  test('p = 0 keeps everything; p = 1 zeros everything and its gradient (torch allows p = 1)', () => {
    const x = tensor([1, -2, 3], { dtype: 'f64', requiresGrad: true });
    expect(vals(new Dropout(0).forward(x))).toEqual([1, -2, 3]);
    const y = new Dropout(1).forward(x);
    // −2·0 is −0, as torch's input * zeros.
    expect(vals(y)).toEqual([0, -0, 0]);
    sum(y).backward();
    expect(vals(x.grad)).toEqual([0, 0, 0]);
  });

  test('gradient: mask/(1 − p) where kept, 0 where dropped', () => {
    const x = tensor(Array.from({ length: 32 }, (_, i) => i / 7), { dtype: 'f64', requiresGrad: true });
    const d = new Dropout(0.25, { seed: 2 });
    sum(d.forward(x)).backward();
    expect(vals(x.grad)).toEqual(vals(dropoutMask([32], 0.25, { seed: 2, stream: 0, counter: 0 }, 'f64')));
  });

  test('gradCheck with a fixed mask (f64, eps 1e-6, rtol 1e-6), through a Linear', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }).chain((n) => specArb([n, 3])), fc.nat({ max: 1000 }), seedArb, (xs, counter, seed) => {
        const d = new Dropout(0.4, { seed: 17 });
        const lin = new Linear(3, 2, { dtype: 'f64', rng: new Rng(seed) });
        // gradCheck calls f several times: pin the counter so every call sees the same mask.
        const f = (x: ReturnType<typeof fromSpec>): ReturnType<typeof fromSpec> => {
          d.setRngState({ seed: 17, stream: 0, counter });
          return lin.forward(d.forward(x));
        };
        expectGrad('Dropout', (x) => f(x!), [fromSpec(xs), ...lin.parameters()], { seed });
      }),
      { numRuns: 20 },
    );
  });

  test('holds nothing in the state dict (as torch.nn.Dropout); toString', () => {
    const m = new Sequential(new Linear(2, 2), new Dropout(0.2));
    expect(Object.keys(m.stateDict())).toEqual(['0.weight', '0.bias']);
    expect(new Dropout(0.2).toString()).toBe('Dropout(p=0.2)');
  });
});

describe('messages', () => {
  test('bad p, seed, stream or counter', () => {
    expectThrows(() => new Dropout(1.5), ValueError, 'Dropout: p must be a number in [0, 1] (got 1.5)');
    expectThrows(() => new Dropout(-0.1), ValueError, 'Dropout: p must be a number in [0, 1] (got -0.1)');
    expectThrows(() => new Dropout(NaN), ValueError, 'Dropout: p must be a number in [0, 1] (got NaN)');
    expectThrows(() => new Dropout('0.5' as never), ValueError, 'Dropout: p must be a number in [0, 1] (got "0.5")');
    expectThrows(() => new Dropout(0.5, { seed: -1 }), ValueError, 'Dropout: seed must be a non-negative safe integer (got -1)');
    expectThrows(() => new Dropout(0.5, { stream: 2 ** 20 }), ValueError, 'Dropout: stream must be an integer in [0, 1048576) (got 1048576)');
    expectThrows(() => new Dropout().setRngState({ seed: 1, stream: 0, counter: 1.5 }), ValueError, 'Dropout: counter must be an integer in [0, 4294967296) (got 1.5)');
  });

  test('a counter at its end refuses to draw rather than repeat masks, and stays put', () => {
    const d = new Dropout(0.5, { seed: 1 });
    d.setRngState({ seed: 1, stream: 0, counter: DROPOUT_MAX_COUNTER - 1 });
    d.forward(x64(4));
    expect(d.rngState().counter).toBe(DROPOUT_MAX_COUNTER);
    expectThrows(() => d.forward(x64(4)), ValueError, 'Dropout: counter must be an integer in [0, 4294967296) (got 4294967296)');
    expect(d.rngState().counter).toBe(DROPOUT_MAX_COUNTER);
  });
});
