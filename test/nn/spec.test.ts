import { describe, expect, it } from 'vitest';
import { Conv2d, Dropout, Flatten, LSTM, Linear, MaxPool2d, ReLU, Sequential } from '../../src/index.js';
import { type ModelSpec, buildModel, checkModelSpec } from '../../src/nn/spec.js';
import { buildOptimizer } from '../../src/optim/spec.js';

const names = (m: Sequential): [string, number[]][] => m.namedParameters().map(([n, p]) => [n, [...p.shape]]);

describe('buildModel', () => {
  it('maps a layers list 1:1 onto a Sequential with PyTorch state_dict names and shapes', () => {
    const spec: ModelSpec = {
      layers: [
        { type: 'Conv2d', inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1 },
        { type: 'ReLU' },
        { type: 'MaxPool2d', kernelSize: 2 },
        { type: 'Flatten' },
        { type: 'Linear', inFeatures: 4 * 14 * 14, outFeatures: 10 },
      ],
    };
    const byHand = new Sequential(new Conv2d(1, 4, 3, { padding: 1 }), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(784, 10));
    expect(names(buildModel(spec))).toEqual(names(byHand));
    expect(Object.keys(buildModel({ layers: [{ type: 'LSTM', inputSize: 3, hiddenSize: 5, numLayers: 2, returnLast: true }] }).stateDict())).toEqual(
      Object.keys(new Sequential(new LSTM(3, 5, { numLayers: 2 })).stateDict()),
    );
  });

  it('gives equal weights for equal seeds, on any thread, and different ones for other seeds', () => {
    const spec: ModelSpec = { layers: [{ type: 'Linear', inFeatures: 3, outFeatures: 2 }, { type: 'Dropout', p: 0.5 }], dtype: 'f64' };
    const a = buildModel(spec, 4);
    const b = buildModel(spec, 4);
    const c = buildModel(spec, 5);
    expect(Array.from(a.parameters()[0]!.data)).toEqual(Array.from(b.parameters()[0]!.data));
    expect(Array.from(a.parameters()[0]!.data)).not.toEqual(Array.from(c.parameters()[0]!.data));
    expect(a.parameters()[0]!.dtype).toBe('f64');
    expect((a.layers[1] as Dropout).rngState()).toEqual((b.layers[1] as Dropout).rngState());
  });

  it.each([
    [null, 'model must be an object with'],
    [{ layers: [] }, 'model.layers must be a non-empty array'],
    [{ layers: [{ type: 'Linear', inFeatures: 2 }] }, "model.layers[0] (Linear) is missing 'outFeatures'"],
    [{ layers: [{ type: 'Linear', inFeatures: 2, outFeatures: 3, units: 4 }] }, "model.layers[0] (Linear) has unknown key 'units' (expected inFeatures, outFeatures, bias)"],
    [{ layers: [{ type: 'ReLU' }, { type: 'Dense' }] }, 'model.layers[1].type must be one of Linear, Conv2d'],
    [{ layers: [{ type: 'Conv2d', inChannels: 3, outChannels: 4, kernelSize: 3, groups: 2 }] }, 'model.layers[0] (Conv2d): Conv2d: inChannels 3 do not divide by groups 2'],
    [{ layers: [{ type: 'ReLU' }], dtype: 'f16' }, 'model.dtype'],
    [{ layers: [{ type: 'ReLU' }], optimizer: {} }, "model has unknown key 'optimizer'"],
  ])('refuses %j', (spec, message) => {
    expect(() => buildModel(spec as ModelSpec)).toThrow(message);
    if (!message.includes('(Conv2d): Conv2d')) expect(() => checkModelSpec(spec)).toThrow(message);
  });
});

describe('buildOptimizer', () => {
  it('builds the optimizer a spec names and refuses an unknown type', () => {
    const p = buildModel({ layers: [{ type: 'Linear', inFeatures: 2, outFeatures: 2 }] }).parameters();
    expect(buildOptimizer({ type: 'SGD', lr: 0.1, momentum: 0.9 }, p).constructor.name).toBe('SGD');
    expect(buildOptimizer({ type: 'AdamW', lr: 0.1 }, p).constructor.name).toBe('AdamW');
    expect(() => buildOptimizer({ type: 'RMSprop' } as never, p)).toThrow('optimizer.type must be one of SGD, Adam, AdamW (got "RMSprop")');
  });
});
