// Tests of src/autograd/engine.ts: accumulation (node reuse, repeated backward), noGrad, retainGraph and
// freed graphs, seeds, the per-input gradient checks with their messages, broadcasting undone once, and the
// chain rule: the Jacobian of g∘f equals J_g·J_f built from each op's own backward.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { test as propTest } from '@fast-check/vitest';
import { AutogradError, DTypeError, ShapeError } from '../../src/errors.js';
import { backward, defineOp, isGradEnabled, noGrad, overwriteNextGradient, record, takeOverwriteMark } from '../../src/autograd/engine.js';
import * as ops from '../../src/ops/index.js';
import { Tensor, tensor, zeros } from '../../src/tensor/tensor.js';
import { shapeArb, specArb } from '../helpers/arbitraries.js';
import { expectThrows, fromSpec, jacobian, matMul, vals } from '../helpers/grad.js';

const f64 = (v: Parameters<typeof tensor>[0], requiresGrad = false): Tensor => tensor(v, { dtype: 'f64', requiresGrad });

describe('accumulation', () => {
  test('node reuse: d(x·x)/dx = 2x', () => {
    const x = f64([1.5, -2, 3], true);
    ops.sum(ops.mul(x, x)).backward();
    expect(vals(x.grad)).toEqual([3, -4, 6]);
  });

  test('a value used three times: d/dx [x·y + x + eˣ] = y + 1 + eˣ, d/dy = x', () => {
    const xs = [0.5, -1, 2];
    const ys = [3, 0.25, -2];
    const x = f64(xs, true);
    const y = f64(ys, true);
    ops.sum(ops.add(ops.add(ops.mul(x, y), x), ops.exp(x))).backward();
    expect(vals(x.grad)).toEqual(xs.map((v, i) => ys[i]! + 1 + Math.exp(v)));
    expect(vals(y.grad)).toEqual(xs);
  });

  test('an intermediate used twice receives the sum of both gradients (and add shares gy safely)', () => {
    const x = f64([2], true);
    const h = ops.mul(x, 3); // used by both operands of add, whose backward hands out one tensor twice
    const z = ops.mul(ops.add(h, h), h); // z = 2h² = 18x²
    z.backward();
    expect(vals(x.grad)).toEqual([72]);
  });

  test('gradients accumulate into .grad across two backward calls (zero them between steps)', () => {
    const x = f64([1, 2], true);
    ops.sum(ops.mul(x, x)).backward();
    ops.sum(ops.mul(x, x)).backward();
    expect(vals(x.grad)).toEqual([4, 8]);
    x.grad!.data.fill(0);
    ops.sum(ops.mul(x, 5)).backward();
    expect(vals(x.grad)).toEqual([5, 5]);
  });

  test('backward of a leaf adds the seed to its own .grad', () => {
    const x = f64([1, 2], true);
    x.backward(f64([3, 4]));
    expect(vals(x.grad)).toEqual([3, 4]);
  });

  test('a .grad marked overwriteNextGradient is replaced by its first gradient (stale contents ignored), later ones add', () => {
    const x = f64([1, -2, 3], true);
    x.grad = f64([Number.NaN, 7, -1e30]);
    overwriteNextGradient(x.grad);
    ops.sum(ops.add(ops.mul(x, x), ops.mul(x, 5))).backward(); // two consumers: two accumulations into x.grad
    expect(vals(x.grad)).toEqual([7, 1, 11]);
    expect(takeOverwriteMark(x.grad!)).toBe(false);
    const unreached = f64([4, 4]);
    overwriteNextGradient(unreached);
    expect(takeOverwriteMark(unreached)).toBe(true);
    expect(takeOverwriteMark(unreached)).toBe(false);
  });

  propTest.prop([fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.boolean()], { numRuns: 30 })(
    "a matmul writes a marked leaf's gradient into its .grad in place: the same values as adding to zeros, whoever else adds to it",
    (m, k, n, shareOperands) => {
      const rnd = (len: number, seed: number): number[] => Array.from({ length: len }, (_, i) => Math.sin(seed * 7.3 + i * 1.7));
      const run = (marked: boolean): { w: Tensor; x: Tensor; buffers: [Tensor, Tensor] } => {
        const x = new Tensor(Float64Array.from(rnd(m * k, 1)), [m, k], true);
        const w = shareOperands ? x : new Tensor(Float64Array.from(rnd(n * k, 2)), [n, k], true);
        const buffers: [Tensor, Tensor] = [new Tensor(new Float64Array(m * k).fill(marked ? Number.NaN : 0), [m, k]), new Tensor(new Float64Array(w.size).fill(marked ? Number.NaN : 0), w.shape)];
        x.grad = buffers[0];
        if (!shareOperands) w.grad = buffers[1];
        if (marked) for (const b of buffers) overwriteNextGradient(b);
        // x·wᵀ (a Linear), then w used again: its second gradient adds to the one written in place.
        const y = ops.matmul(x, w, { transposeB: true });
        ops.sum(ops.add(ops.mul(y, y), ops.sum(ops.mul(w, 3)))).backward();
        return { w, x, buffers };
      };
      const plain = run(false);
      const inPlace = run(true);
      expect(inPlace.x.grad).toBe(inPlace.buffers[0]);
      expect(vals(inPlace.x.grad)).toEqual(vals(plain.x.grad));
      expect(vals(inPlace.w.grad)).toEqual(vals(plain.w.grad));
      for (const b of inPlace.buffers) takeOverwriteMark(b);
    },
  );

  test('inputs without requiresGrad get no gradient', () => {
    const x = f64([1, 2], true);
    const c = f64([3, 4]);
    ops.sum(ops.mul(x, c)).backward();
    expect(vals(x.grad)).toEqual([3, 4]);
    expect(c.grad).toBe(null);
  });
});

describe('recording', () => {
  test('noGrad records nothing and restores the previous mode, even on a throw', () => {
    const x = f64([1, 2], true);
    const y = noGrad(() => {
      expect(isGradEnabled()).toBe(false);
      return ops.mul(x, x);
    });
    expect(isGradEnabled()).toBe(true);
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBe(null);
    expect(() => noGrad(() => ops.add(x, f64([1, 2, 3])))).toThrow(ShapeError);
    expect(isGradEnabled()).toBe(true);
    expect(ops.mul(x, x).requiresGrad).toBe(true);
  });

  test('an op on inputs that need no grad records nothing', () => {
    const y = ops.mul(f64([1]), f64([2]));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBe(null);
  });
});

describe('retainGraph and freed graphs', () => {
  test('retainGraph keeps the graph for a second walk', () => {
    const x = f64([3], true);
    const y = ops.mul(x, x);
    backward(y, undefined, { retainGraph: true });
    backward(y);
    expect(vals(x.grad)).toEqual([12]);
  });

  test('a second walk through a freed graph throws, naming the op', () => {
    const x = f64([3], true);
    const y = ops.exp(ops.mul(x, x));
    y.backward();
    expectThrows(
      () => y.backward(),
      AutogradError,
      "backward: the graph through 'exp' was already freed by an earlier backward (pass { retainGraph: true } to the first call to walk it twice)",
    );
  });

  test('a new output over a freed part of the graph throws when the walk reaches it', () => {
    const x = f64([3], true);
    const h = ops.mul(x, x);
    ops.exp(h).backward();
    expectThrows(
      () => ops.add(h, 1).backward(),
      AutogradError,
      "backward: the graph through 'mul' was already freed by an earlier backward (pass { retainGraph: true } to the first call to walk it twice)",
    );
  });
});

describe('seeds', () => {
  test('a non-scalar output needs a seed', () => {
    const y = ops.mul(f64([[1, 2, 3], [4, 5, 6]], true), 2);
    expectThrows(() => y.backward(), AutogradError, 'backward: a seed gradient is needed for a non-scalar output of shape [2,3]');
  });

  test('the seed must match the output in shape and dtype', () => {
    const y = ops.mul(f64([1, 2], true), 2);
    expectThrows(() => y.backward(f64([1, 2, 3])), ShapeError, 'backward: seed has shape [3], expected [2]');
    expectThrows(() => y.backward(tensor([1, 2], { dtype: 'f32' })), DTypeError, 'backward: seed dtype f32 differs from the output\'s f64');
  });

  test('an output that does not require grad cannot be differentiated', () => {
    expectThrows(
      () => ops.mul(f64([1, 2]), 2).backward(f64([1, 1])),
      AutogradError,
      'backward: the tensor [2] does not require grad (no input of the computation had requiresGrad)',
    );
  });

  test('a seed scales the gradient: vector-Jacobian product', () => {
    const x = f64([1, 2], true);
    ops.mul(x, x).backward(f64([10, 100]));
    expect(vals(x.grad)).toEqual([20, 400]);
  });
});

describe('the engine checks every gradient', () => {
  /** A deliberately wrong op: its backward returns `gb` (whatever shape it has) for input 'b'. */
  function badOp(gb: Tensor) {
    const BAD = defineOp({ name: 'badOp', inputs: ['a', 'b'], backward: (gy) => [gy, gb] });
    return (a: Tensor, b: Tensor) => record(BAD, zeros(a.shape, { dtype: a.dtype }), [a, b], undefined);
  }

  test('a gradient of the wrong shape is refused with the op and input named', () => {
    const a = f64([[1, 2], [3, 4], [5, 6]], true);
    const b = f64([[1, 2], [3, 4], [5, 6]], true);
    const y = badOp(zeros([4, 2], { dtype: 'f64' }))(a, b);
    expectThrows(() => y.backward(zeros([3, 2], { dtype: 'f64' })), ShapeError, "badOp: gradient for input 'b' has shape [4,2], expected [3,2]");
  });

  test('a gradient of the right size but the wrong shape is refused too', () => {
    const a = f64([[1, 2], [3, 4], [5, 6]], true);
    const y = badOp(zeros([2, 3], { dtype: 'f64' }))(a, f64([[1, 2], [3, 4], [5, 6]], true));
    expectThrows(() => y.backward(zeros([3, 2], { dtype: 'f64' })), ShapeError, "badOp: gradient for input 'b' has shape [2,3], expected [3,2]");
  });

  test('a gradient of the wrong dtype is refused', () => {
    const a = f64([1, 2], true);
    const y = badOp(zeros([2], { dtype: 'f32' }))(a, f64([1, 2], true));
    expectThrows(() => y.backward(f64([1, 1])), DTypeError, "badOp: gradient for input 'b' has dtype f32, expected f64");
  });

  test('a variadic op names the list element', () => {
    const BAD = defineOp({ name: 'badCat', inputs: ['tensors'], variadic: true, backward: (gy) => [gy, zeros([5], { dtype: 'f64' })] });
    const a = f64([1, 2], true);
    const y = record(BAD, zeros([2], { dtype: 'f64' }), [a, f64([1, 2], true)], undefined);
    expectThrows(() => y.backward(f64([1, 1])), ShapeError, "badCat: gradient for input 'tensors[1]' has shape [5], expected [2]");
  });

  test('a broadcast-shaped gradient is summed back to the input once, by the engine', () => {
    // add's backward returns gy ([3,4]) for both inputs; only the engine reduces it.
    const a = f64([[1], [2], [3]], true);
    const b = f64([[10, 20, 30, 40]], true);
    ops.sum(ops.add(a, b)).backward();
    expect(a.grad!.toArray()).toEqual([[4], [4], [4]]);
    expect(b.grad!.toArray()).toEqual([[3, 3, 3, 3]]);
    // Weighted, with a leading axis dropped: [4] + [2,3,4].
    const v = f64([1, 2, 3, 4], true);
    const m = f64(new Array(2).fill(0).map(() => new Array(3).fill(0).map(() => [0, 0, 0, 0])), true);
    ops.add(v, m).backward(tensor(Array.from({ length: 24 }, (_, i) => i), { shape: [2, 3, 4], dtype: 'f64' }));
    // v.grad[k] = Σ over the 6 rows of (row·4 + k)
    expect(vals(v.grad)).toEqual([0, 1, 2, 3].map((k) => [0, 1, 2, 3, 4, 5].reduce((s, r) => s + r * 4 + k, 0)));
  });

  test('a backward that returns a broadcast shape for one input and the exact shape for another', () => {
    let calls = 0;
    const OP = defineOp({
      name: 'spread',
      inputs: ['x'],
      backward: (gy) => {
        calls++;
        return [gy];
      },
    });
    const x = f64([[1], [2]], true);
    const y = record(OP, zeros([2, 3], { dtype: 'f64' }), [x], undefined);
    y.backward(f64([[1, 2, 3], [4, 5, 6]]));
    expect(calls).toBe(1);
    expect(x.grad!.toArray()).toEqual([[6], [15]]);
  });
});

// ---- the chain rule ---------------------------------------------------------------------------------

/** An upper-triangular ones matrix [n, n] (x·U is a cumulative sum along the last axis). */
function upper(n: number): Tensor {
  const v: number[] = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) v.push(j >= i ? 1 : 0);
  return tensor(v, { shape: [n, n], dtype: 'f64' });
}

/** Differentiable maps that accept any shape of rank ≥ 1 (some change it), safe on any finite input. */
const UNARY: Record<string, (x: Tensor) => Tensor> = {
  exp: (x) => ops.exp(ops.mul(x, 0.5)),
  tanh: ops.tanh,
  sigmoid: ops.sigmoid,
  neg: ops.neg,
  square: (x) => ops.mul(x, x),
  softmax: (x) => ops.softmax(x, -1),
  logSoftmax: (x) => ops.logSoftmax(x, 0),
  transpose: (x) => ops.transpose(x, 0, -1),
  sumKeep: (x) => ops.sum(x, -1, true),
  cumulative: (x) => ops.matmul(x, upper(x.shape[x.ndim - 1]!)),
  softplusLike: (x) => ops.log(ops.add(ops.exp(ops.tanh(x)), 1)),
};

describe('the chain rule', () => {
  test('J(g∘f)(x) = J_g(f(x)) · J_f(x), each Jacobian built from unit seeds through the ops\' own backward', () => {
    const names = Object.keys(UNARY);
    fc.assert(
      fc.property(
        fc.constantFrom(...names),
        fc.constantFrom(...names),
        shapeArb({ minRank: 1, maxRank: 3, maxDim: 3 }).chain((s) => specArb(s, 'any')),
        (fName, gName, spec) => {
          const f = UNARY[fName]!;
          const g = UNARY[gName]!;
          const x = fromSpec(spec);
          const Jf = jacobian(f, x);
          // J_g at the point f(x), from a fresh leaf holding f(x)'s values.
          const fx = noGrad(() => f(x));
          const y = tensor(fx.data, { shape: fx.shape, dtype: 'f64', requiresGrad: true });
          const Jg = jacobian(g, y);
          const Jgf = jacobian((t) => g(f(t)), x);
          const prod = matMul(Jg, Jf);
          expect(Jgf.length).toBe(prod.length);
          Jgf.forEach((row, i) =>
            row.forEach((v, j) => {
              const want = prod[i]![j]!;
              if (Math.abs(v - want) > 1e-12 * (1 + Math.abs(want))) {
                throw new Error(`${gName}∘${fName} at [${spec.shape}]: J[${i}][${j}] = ${v}, J_g·J_f = ${want}`);
              }
            }),
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});
