// Tests of src/nn/conv.ts: Conv2d's state dict (names, shapes, order as PyTorch), default init bounds,
// forward equal to the conv2d op, layer-named error messages; the pooling and Flatten layers; gradCheck of
// a small CNN (Conv2d → ReLU → MaxPool2d → Flatten → Linear) through every parameter and the input.
import { describe, expect, test } from 'vitest';
import { ShapeError, ValueError } from '../../src/errors.js';
import { AdaptiveAvgPool2d, AvgPool2d, Conv2d, Flatten, MaxPool2d } from '../../src/nn/conv.js';
import { Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import * as ops from '../../src/ops/index.js';
import { Rng } from '../../src/random.js';
import { type Tensor, tensor } from '../../src/tensor/tensor.js';
import { expectGrad, expectThrows, vals } from '../helpers/grad.js';

const shapes = (sd: Record<string, Tensor>): Record<string, readonly number[]> => Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, t.shape]));

describe('Conv2d', () => {
  test("state dict names, shapes and order equal PyTorch's (weight [out, in/groups, kh, kw], bias [out])", () => {
    // torch.nn.Sequential(Conv2d(1, 16, 3), ReLU(), MaxPool2d(2), Conv2d(16, 32, (3, 5), groups=4, bias=False), Flatten())
    const net = new Sequential(new Conv2d(1, 16, 3), new ReLU(), new MaxPool2d(2), new Conv2d(16, 32, [3, 5], { groups: 4, bias: false }), new Flatten());
    expect(Object.keys(net.stateDict())).toEqual(['0.weight', '0.bias', '3.weight']);
    expect(shapes(net.stateDict())).toEqual({ '0.weight': [16, 1, 3, 3], '0.bias': [16], '3.weight': [32, 4, 3, 5] });
    expect(net.numParameters()).toBe(16 * 9 + 16 + 32 * 4 * 15);
  });

  test('default init: weight and bias in ±1/√fan_in with fan_in = in/groups·kh·kw, spread over the range; dtype', () => {
    const c = new Conv2d(8, 6, [3, 2], { groups: 2, dtype: 'f64', rng: new Rng(3) });
    const bound = 1 / Math.sqrt((8 / 2) * 3 * 2);
    for (const t of [c.weight, c.bias!]) {
      expect(t.dtype).toBe('f64');
      const v = vals(t);
      expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(bound);
    }
    // 72 uniform draws: the extremes come near the bound (a bound of 1/√fan_in with a wrong fan_in would not).
    const w = vals(c.weight);
    expect(Math.max(...w)).toBeGreaterThan(0.8 * bound);
    expect(Math.min(...w)).toBeLessThan(-0.8 * bound);
    // Seeded: the same rng gives the same parameters.
    expect(vals(new Conv2d(8, 6, [3, 2], { groups: 2, dtype: 'f64', rng: new Rng(3) }).weight)).toEqual(w);
  });

  test('forward is conv2d with the layer\'s options; toString as PyTorch\'s repr', () => {
    const c = new Conv2d(2, 4, 3, { stride: 2, padding: [1, 0], dilation: 1, groups: 2, dtype: 'f64', rng: new Rng(1) });
    const x = tensor(Array.from({ length: 2 * 2 * 7 * 6 }, (_, i) => Math.sin(i)), { shape: [2, 2, 7, 6], dtype: 'f64' });
    const y = c.forward(x);
    expect(y.shape).toEqual([2, 4, 4, 2]);
    expect(vals(y)).toEqual(vals(ops.conv2d(x, c.weight, c.bias, { stride: 2, padding: [1, 0], groups: 2 })));
    expect(c.toString()).toBe('Conv2d(2, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 0), groups=2)');
    expect(new Conv2d(1, 1, 1, { bias: false }).toString()).toBe('Conv2d(1, 1, kernel_size=(1, 1), stride=(1, 1), bias=False)');
  });

  test('bad input or options: the message names the layer and both shapes', () => {
    const c = new Conv2d(3, 8, 3);
    const x = (s: number[]): Tensor => tensor(new Array(s.reduce((a, b) => a * b, 1)).fill(0), { shape: s });
    expectThrows(() => c.forward(x([2, 1, 8, 8])), ShapeError, 'Conv2d(3, 8, kernel_size=(3, 3)): input has shape [2,1,8,8], expected [N,3,H,W] (weight [8,3,3,3])');
    expectThrows(() => c.forward(x([3, 8, 8])), ShapeError, 'Conv2d(3, 8, kernel_size=(3, 3)): input has shape [3,8,8], expected [N,3,H,W] (weight [8,3,3,3])');
    expectThrows(() => c.forward(x([1, 3, 2, 9])), ShapeError,
      'Conv2d(3, 8, kernel_size=(3, 3)): kernel 3×3 (dilation 1) does not fit the padded input 2×9 (input [1,3,2,9], padding 0)');
    expectThrows(() => new Conv2d(3, 8, 3, { groups: 2 }), ShapeError, 'Conv2d: inChannels 3 do not divide by groups 2');
    expectThrows(() => new Conv2d(4, 6, 3, { groups: 4 }), ShapeError, 'Conv2d: outChannels 6 do not divide by groups 4');
    expectThrows(() => new Conv2d(3, 8, 0), ValueError, 'Conv2d: kernelSize must be a positive integer or a pair [h, w] of them (got 0)');
    expectThrows(() => new Conv2d(3, 8, 3, { padding: -1 }), ValueError, 'Conv2d: padding must be a non-negative integer or a pair [h, w] of them (got -1)');
  });
});

describe('pooling and Flatten layers', () => {
  const x = tensor(Array.from({ length: 2 * 3 * 6 * 6 }, (_, i) => Math.cos(i * 0.7)), { shape: [2, 3, 6, 6], dtype: 'f64' });
  test('forward equals the ops; no parameters', () => {
    expect(vals(new MaxPool2d(2).forward(x))).toEqual(vals(ops.maxPool2d(x, 2)));
    expect(vals(new MaxPool2d(3, 2, 1).forward(x))).toEqual(vals(ops.maxPool2d(x, 3, 2, 1)));
    expect(vals(new AvgPool2d(3, 1, 1, false).forward(x))).toEqual(vals(ops.avgPool2d(x, 3, 1, 1, false)));
    expect(new AdaptiveAvgPool2d(1).forward(x).shape).toEqual([2, 3, 1, 1]);
    expect(new Flatten().forward(x).shape).toEqual([2, 108]);
    expect(new Sequential(new MaxPool2d(2), new AvgPool2d(2), new AdaptiveAvgPool2d(), new Flatten()).numParameters()).toBe(0);
    expect(new MaxPool2d(2).toString()).toBe('MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))');
  });
  test('bad options fail when the layer is built; a bad input names the layer', () => {
    expectThrows(() => new MaxPool2d(2, 2, 2), ValueError, 'MaxPool2d: padding (2, 2) must be at most half the kernel 2×2');
    expectThrows(() => new AdaptiveAvgPool2d(2), ValueError, 'AdaptiveAvgPool2d: only output size 1 (1×1) is supported (got (2, 2))');
    expectThrows(() => new MaxPool2d(8).forward(x), ShapeError, 'MaxPool2d(kernel_size=(8, 8)): kernel 8×8 does not fit the padded input 6×6 (input [2,3,6,6], padding 0)');
  });
});

describe('a small CNN, end to end', () => {
  test('Conv2d → ReLU → MaxPool2d → Conv2d(groups) → AvgPool2d → Flatten → Linear: gradCheck over every parameter and the input', () => {
    for (const seed of [1, 2, 3]) {
      const rng = new Rng(seed);
      const net = new Sequential(
        new Conv2d(2, 4, 3, { padding: 1, dtype: 'f64', rng }),
        new ReLU(),
        new MaxPool2d(2),
        new Conv2d(4, 4, 2, { groups: 2, stride: 1, padding: 1, dtype: 'f64', rng }),
        new AvgPool2d(2),
        new Flatten(),
        new Linear(4 * 2 * 2, 3, { dtype: 'f64', rng }),
      );
      const xs = new Float64Array(2 * 2 * 6 * 6);
      rng.fillUniform(xs, -1, 1);
      const x = tensor(xs, { shape: [2, 2, 6, 6], dtype: 'f64', requiresGrad: true });
      expect(net.forward(x).shape).toEqual([2, 3]);
      // ReLU kinks and max-pool ties lie on measure-zero sets: random weights keep them ≫ eps = 1e-6 away.
      expectGrad(`CNN seed ${seed}`, (input) => net.forward(input!), [x, ...net.parameters()], { seed });
    }
  });
});
