// Tests of src/nn/param-layout.ts: ParamLayout offsets in state-dict order, and shareParameters moving a
// model's parameters (and gradients) into one flat SharedArrayBuffer each, values kept.
import { describe, expect, test } from 'vitest';
import { DTypeError, StateDictError } from '../../src/errors.js';
import { mseLoss } from '../../src/loss/index.js';
import { Linear, ReLU, Sequential, Tanh } from '../../src/nn/layers.js';
import { ParamLayout, shareParameters } from '../../src/nn/param-layout.js';
import { Rng } from '../../src/random.js';
import { tensor } from '../../src/tensor/tensor.js';
import { expectThrows, vals } from '../helpers/grad.js';

const model = (seed = 1): Sequential =>
  new Sequential(new Linear(3, 4, { dtype: 'f64', rng: new Rng(seed) }), new Tanh(), new Linear(4, 2, { dtype: 'f64', rng: new Rng(seed + 1) }));

describe('ParamLayout', () => {
  test('entries follow the state dict: names, shapes, offsets one after another', () => {
    const m = model();
    const layout = ParamLayout.of(m);
    expect(layout.entries.map((e) => e.name)).toEqual(Object.keys(m.stateDict()));
    expect(layout.entries.map((e) => [e.offset, e.size, e.shape])).toEqual([
      [0, 12, [4, 3]],
      [12, 4, [4]],
      [16, 8, [2, 4]],
      [24, 2, [2]],
    ]);
    expect(layout.size).toBe(26);
    expect(layout.dtype).toBe('f64');
    expect(layout.byteLength).toBe(208);
  });

  test('a buffer too small is refused; mixed dtypes are refused', () => {
    const layout = ParamLayout.of(model());
    expectThrows(() => layout.view(new SharedArrayBuffer(8)), StateDictError, 'ParamLayout: buffer has 8 bytes, the layout needs 208');
    const mixed = new Sequential(new Linear(2, 2), new ReLU(), new Linear(2, 1, { dtype: 'f64' }));
    expectThrows(() => ParamLayout.of(mixed), DTypeError, "ParamLayout: parameter '2.weight' is f64, the others are f32");
  });
});

describe('shareParameters', () => {
  test('moves every parameter into one flat buffer at its layout offset, values kept', () => {
    const m = model();
    const before = Object.fromEntries(m.namedParameters().map(([n, p]) => [n, vals(p)]));
    const { layout, params, grads } = shareParameters(m);
    expect(params.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(grads.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(params.buffer).not.toBe(grads.buffer);
    const named = new Map(m.namedParameters());
    for (const e of layout.entries) {
      const p = named.get(e.name)!;
      expect(p.data.buffer).toBe(params.buffer);
      expect(p.data.byteOffset).toBe(e.offset * 8);
      expect(p.shape).toEqual(e.shape);
      expect(vals(p)).toEqual(before[e.name]);
      expect(Array.from(params.subarray(e.offset, e.offset + e.size))).toEqual(before[e.name]);
      expect(p.requiresGrad).toBe(true);
      expect(p.grad!.data.buffer).toBe(grads.buffer);
      expect(p.grad!.data.byteOffset).toBe(e.offset * 8);
    }
    // The state dict now shows the shared tensors.
    expect(Object.values(m.stateDict()).every((t) => t.data.buffer === params.buffer)).toBe(true);
  });

  test('backward accumulates into the flat gradient buffer; writes to the flat parameters are seen by forward', () => {
    const m = model();
    const { params, grads, layout } = shareParameters(m);
    const x = tensor([[0.5, -1, 2]], { dtype: 'f64' });
    mseLoss(m.forward(x), tensor([[0, 1]], { dtype: 'f64' })).backward();
    const named = new Map(m.namedParameters());
    for (const e of layout.entries) expect(Array.from(grads.subarray(e.offset, e.offset + e.size))).toEqual(vals(named.get(e.name)!.grad));
    expect(Array.from(grads).some((v) => v !== 0)).toBe(true);
    params.fill(0);
    expect(vals(m.forward(x))).toEqual([0, 0]);
  });

  test('given a parameter buffer, the model takes the values already in it', () => {
    const src = model(1);
    const dst = model(5);
    const { params } = shareParameters(src);
    const buf = params.buffer as SharedArrayBuffer;
    shareParameters(dst, { params: buf });
    expect(Object.fromEntries(dst.namedParameters().map(([n, p]) => [n, vals(p)]))).toEqual(Object.fromEntries(src.namedParameters().map(([n, p]) => [n, vals(p)])));
    expect(dst.parameters().every((p) => p.data.buffer === buf)).toBe(true);
  });
});
