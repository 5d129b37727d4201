// Tests of src/nn/embedding.ts: lookups of any index shape, N(0, 1) init with a zeroed padding row, gradients
// that accumulate over repeated indices and never reach the padding row, gradCheck (f64), state dict, messages.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { ShapeError, ValueError } from '../../src/errors.js';
import { Embedding } from '../../src/nn/embedding.js';
import { Linear, Sequential } from '../../src/nn/layers.js';
import { tanh } from '../../src/ops/elementwise.js';
import { sum } from '../../src/ops/reduce.js';
import { Rng } from '../../src/random.js';
import { type Tensor, tensor } from '../../src/tensor/tensor.js';
import { indicesArb, seedArb } from '../helpers/arbitraries.js';
import { expectGrad, expectThrows, vals } from '../helpers/grad.js';

function table(): Embedding {
  // Rows r hold [10r, 10r + 1] so lookups read as numbers.
  const e = new Embedding(4, 2, { dtype: 'f64' });
  e.weight.data.set([0, 1, 10, 11, 20, 21, 30, 31]);
  return e;
}

describe('lookup', () => {
  test('forward takes a tensor of integer values of any shape and returns [...shape, dim]', () => {
    const e = table();
    const y = e.forward(tensor([[3, 0, 1], [1, 1, 2]]));
    expect(y.shape).toEqual([2, 3, 2]);
    expect(y.toArray()).toEqual([[[30, 31], [0, 1], [10, 11]], [[10, 11], [10, 11], [20, 21]]]);
    expect(e.forward(tensor(2)).toArray()).toEqual([20, 21]);
    expect(e.forward(tensor([2], { dtype: 'f64' })).shape).toEqual([1, 2]);
  });

  test('lookup takes an Int32Array or number[] with an optional shape, and agrees with forward', () => {
    const e = table();
    expect(e.lookup(new Int32Array([3, 0, 1, 1]), [2, 2]).toArray()).toEqual([[[30, 31], [0, 1]], [[10, 11], [10, 11]]]);
    expect(vals(e.lookup([2, 1]))).toEqual(vals(e.forward(tensor([2, 1]))));
    expect(e.lookup([2, 1]).shape).toEqual([2, 2]);
  });

  test('repeated indices accumulate their gradients in the weight', () => {
    const e = table();
    sum(e.lookup([1, 3, 1, 1])).backward();
    expect(vals(e.weight.grad)).toEqual([0, 0, 3, 3, 0, 0, 1, 1]);
  });

  test('works inside a Sequential (indices as a float tensor), and the index tensor needs no gradient', () => {
    const m = new Sequential(new Embedding(5, 3, { dtype: 'f64', rng: new Rng(1) }), new Linear(3, 2, { dtype: 'f64', rng: new Rng(2) }));
    const y = m.forward(tensor([[0, 4], [2, 2]], { dtype: 'f64' }));
    expect(y.shape).toEqual([2, 2, 2]);
    sum(y).backward();
    expect(m.parameters().every((p) => p.grad !== null)).toBe(true);
  });
});

describe('init and padding', () => {
  test('weight [num, dim] from N(0, 1), reproducible from an Rng', () => {
    const e = new Embedding(200, 50, { dtype: 'f64', rng: new Rng(4) });
    expect(e.weight.shape).toEqual([200, 50]);
    const w = vals(e.weight);
    const m = w.reduce((a, v) => a + v, 0) / w.length;
    const sd = Math.sqrt(w.reduce((a, v) => a + (v - m) ** 2, 0) / w.length);
    // 10,000 draws: the mean's σ is 0.01 and the std's about 0.007; allow 5σ.
    expect(Math.abs(m)).toBeLessThan(0.05);
    expect(Math.abs(sd - 1)).toBeLessThan(0.035);
    expect(vals(new Embedding(3, 2, { rng: new Rng(4) }).weight)).toEqual(vals(new Embedding(3, 2, { rng: new Rng(4) }).weight));
    expect(new Embedding(3, 2).weight.dtype).toBe('f32');
  });

  test('the padding row starts at zero; a negative paddingIdx counts from the end', () => {
    const e = new Embedding(4, 3, { paddingIdx: 1, rng: new Rng(0) });
    expect(vals(e.weight).slice(3, 6)).toEqual([0, 0, 0]);
    expect(vals(e.weight).slice(0, 3).some((v) => v !== 0)).toBe(true);
    const neg = new Embedding(4, 3, { paddingIdx: -1 });
    expect(neg.paddingIdx).toBe(3);
    expect(vals(neg.weight).slice(9)).toEqual([0, 0, 0]);
    expect(neg.toString()).toBe('Embedding(4, 3, padding_idx=3)');
    expect(new Embedding(4, 3).toString()).toBe('Embedding(4, 3)');
  });

  test('the padding row never receives a gradient, yet reads what it holds (as torch)', () => {
    const e = table();
    const padded = new Embedding(4, 2, { dtype: 'f64', paddingIdx: 2 });
    padded.weight.data.set(e.weight.data);
    const y = padded.lookup([2, 0, 2, 3], [2, 2]);
    expect(y.toArray()).toEqual([[[20, 21], [0, 1]], [[20, 21], [30, 31]]]);
    sum(y).backward();
    // Rows 0 and 3 are read once each; row 2, read twice, is the padding row.
    expect(vals(padded.weight.grad)).toEqual([1, 1, 0, 0, 0, 0, 1, 1]);
    // A batch without the padding index takes the plain path.
    padded.zeroGrad();
    sum(padded.lookup([0, 1])).backward();
    expect(vals(padded.weight.grad)).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
  });
});

describe('gradCheck (f64, eps 1e-6, rtol 1e-6)', () => {
  test('tanh of looked-up rows, with and without a padding row', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }).chain((num) => fc.tuple(fc.constant(num), indicesArb(num, 1, 6), fc.option(fc.integer({ min: 0, max: num - 1 })))),
        fc.integer({ min: 1, max: 3 }),
        fc.nat({ max: 1000 }),
        seedArb,
        ([num, idx, pad], dim, initSeed, seed) => {
          const e = new Embedding(num, dim, { dtype: 'f64', rng: new Rng(initSeed), ...(pad === null ? {} : { paddingIdx: pad }) });
          // The padding row is a constant of the layer by design (its gradient is 0, not its derivative): the
          // function checked pins it, so finite differences see the same function the gradient describes.
          const f = (): Tensor => {
            if (pad !== null) e.weight.data.fill(0, pad * dim, (pad + 1) * dim);
            return tanh(e.lookup(idx));
          };
          expectGrad(`Embedding(${num}, ${dim}) at ${JSON.stringify(idx)} pad ${pad}`, f, [e.weight], { seed });
          if (pad !== null && idx.includes(pad)) expect(vals(e.weight.grad).slice(pad * dim, (pad + 1) * dim)).toEqual(new Array<number>(dim).fill(0));
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe('state dict and messages', () => {
  test('one parameter named weight, [num, dim]', () => {
    const sd = new Sequential(new Embedding(10, 4)).stateDict();
    expect(Object.keys(sd)).toEqual(['0.weight']);
    expect(sd['0.weight']!.shape).toEqual([10, 4]);
  });

  test('bad indices name the layer, the value and its position', () => {
    const e = table();
    expectThrows(() => e.forward(tensor([[0, 1], [4, 2]])), ValueError, 'Embedding(4, 2): index 4 at position 2 is out of range [0, 4)');
    expectThrows(() => e.forward(tensor([-1])), ValueError, 'Embedding(4, 2): index -1 at position 0 is out of range [0, 4)');
    expectThrows(() => e.forward(tensor([0, 1.5])), ValueError, 'Embedding(4, 2): index 1.5 at position 1 is not an integer');
    expectThrows(() => e.lookup([0, 9]), ValueError, 'Embedding(4, 2): index 9 at position 1 is out of range [0, 4)');
    expectThrows(() => e.lookup([0, 1, 2], [2, 2]), ShapeError, 'Embedding(4, 2): 3 indices do not fill shape [2,2]');
    expectThrows(() => e.lookup('01' as never), ValueError, 'Embedding(4, 2): indices must be an Int32Array or an array of integers');
  });

  test('bad construction', () => {
    expectThrows(() => new Embedding(0, 2), ValueError, 'Embedding: numEmbeddings must be an integer >= 1 (got 0)');
    expectThrows(() => new Embedding(3, 2.5), ValueError, 'Embedding: embeddingDim must be an integer >= 1 (got 2.5)');
    expectThrows(() => new Embedding(3, 2, { paddingIdx: 3 }), ValueError, 'Embedding: paddingIdx must be an integer in [-3, 3) (got 3)');
    expectThrows(() => new Embedding(3, 2, { paddingIdx: -4 }), ValueError, 'Embedding: paddingIdx must be an integer in [-3, 3) (got -4)');
  });
});
