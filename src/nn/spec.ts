// ModelSpec: a model as plain JSON data (a layers list that maps 1:1 onto torch.nn.Sequential), so a
// worker thread, a config file or a checkpoint can rebuild the same network; buildModel makes it.
import { StreamgradError, ValueError, fmtValue } from '../errors.js';
import { Rng } from '../random.js';
import { type DType, checkDType } from '../tensor/tensor.js';
import { AdaptiveAvgPool2d, AvgPool2d, Conv2d, Flatten, MaxPool2d } from './conv.js';
import { Dropout } from './dropout.js';
import { Embedding } from './embedding.js';
import { LSTM, GRU, RNN } from './recurrent.js';
import { Linear, LogSoftmax, ReLU, Sequential, Sigmoid, Softmax, Tanh } from './layers.js';
import type { Module } from './module.js';
import { BatchNorm1d, BatchNorm2d, LayerNorm } from './norm.js';

type Pair = number | [number, number];

/** One layer, with torch's constructor arguments in camelCase. */
export type LayerSpec =
  | { type: 'Linear'; inFeatures: number; outFeatures: number; bias?: boolean }
  | { type: 'Conv2d'; inChannels: number; outChannels: number; kernelSize: Pair; stride?: Pair; padding?: Pair; dilation?: Pair; groups?: number; bias?: boolean }
  | { type: 'MaxPool2d'; kernelSize: Pair; stride?: Pair; padding?: Pair }
  | { type: 'AvgPool2d'; kernelSize: Pair; stride?: Pair; padding?: Pair }
  | { type: 'AdaptiveAvgPool2d'; outputSize?: 1 }
  | { type: 'Flatten'; startDim?: number; endDim?: number }
  | { type: 'ReLU' }
  | { type: 'Sigmoid' }
  | { type: 'Tanh' }
  | { type: 'Softmax'; dim?: number }
  | { type: 'LogSoftmax'; dim?: number }
  | { type: 'Dropout'; p?: number }
  | { type: 'BatchNorm1d' | 'BatchNorm2d'; numFeatures: number; eps?: number; momentum?: number | null; affine?: boolean }
  | { type: 'LayerNorm'; normalizedShape: number | number[]; eps?: number; elementwiseAffine?: boolean }
  | { type: 'Embedding'; numEmbeddings: number; embeddingDim: number; paddingIdx?: number }
  | { type: 'RNN' | 'LSTM' | 'GRU'; inputSize: number; hiddenSize: number; numLayers?: number; bias?: boolean; batchFirst?: boolean; returnLast?: boolean; stateful?: boolean };

export type LayerType = LayerSpec['type'];

export interface ModelSpec {
  layers: LayerSpec[];
  /** Element type of every parameter (default f32). */
  dtype?: DType;
}

/** The keys each layer type accepts besides `type`; the first `required` of them must be present. */
const KEYS: Record<LayerType, { required: string[]; optional: string[] }> = {
  Linear: { required: ['inFeatures', 'outFeatures'], optional: ['bias'] },
  Conv2d: { required: ['inChannels', 'outChannels', 'kernelSize'], optional: ['stride', 'padding', 'dilation', 'groups', 'bias'] },
  MaxPool2d: { required: ['kernelSize'], optional: ['stride', 'padding'] },
  AvgPool2d: { required: ['kernelSize'], optional: ['stride', 'padding'] },
  AdaptiveAvgPool2d: { required: [], optional: ['outputSize'] },
  Flatten: { required: [], optional: ['startDim', 'endDim'] },
  ReLU: { required: [], optional: [] },
  Sigmoid: { required: [], optional: [] },
  Tanh: { required: [], optional: [] },
  Softmax: { required: [], optional: ['dim'] },
  LogSoftmax: { required: [], optional: ['dim'] },
  Dropout: { required: [], optional: ['p'] },
  BatchNorm1d: { required: ['numFeatures'], optional: ['eps', 'momentum', 'affine'] },
  BatchNorm2d: { required: ['numFeatures'], optional: ['eps', 'momentum', 'affine'] },
  LayerNorm: { required: ['normalizedShape'], optional: ['eps', 'elementwiseAffine'] },
  Embedding: { required: ['numEmbeddings', 'embeddingDim'], optional: ['paddingIdx'] },
  RNN: { required: ['inputSize', 'hiddenSize'], optional: ['numLayers', 'bias', 'batchFirst', 'returnLast', 'stateful'] },
  LSTM: { required: ['inputSize', 'hiddenSize'], optional: ['numLayers', 'bias', 'batchFirst', 'returnLast', 'stateful'] },
  GRU: { required: ['inputSize', 'hiddenSize'], optional: ['numLayers', 'bias', 'batchFirst', 'returnLast', 'stateful'] },
};

function checkLayerShape(where: string, l: unknown): LayerSpec {
  if (typeof l !== 'object' || l === null || Array.isArray(l)) throw new ValueError(`${where} must be an object with a 'type' (got ${fmtValue(l)})`);
  const type = (l as { type?: unknown }).type;
  if (typeof type !== 'string' || !Object.hasOwn(KEYS, type)) {
    throw new ValueError(`${where}.type must be one of ${Object.keys(KEYS).join(', ')} (got ${fmtValue(type)})`);
  }
  const { required, optional } = KEYS[type as LayerType];
  for (const k of required) if (!Object.hasOwn(l, k)) throw new ValueError(`${where} (${type}) is missing '${k}'`);
  for (const k of Object.keys(l)) {
    if (k !== 'type' && !required.includes(k) && !optional.includes(k)) {
      throw new ValueError(`${where} (${type}) has unknown key '${k}' (expected ${[...required, ...optional].join(', ') || 'no other keys'})`);
    }
  }
  return l as LayerSpec;
}

function makeLayer(l: LayerSpec, dtype: DType, rng: Rng, index: number): Module {
  const o = { dtype, rng };
  switch (l.type) {
    case 'Linear':
      return new Linear(l.inFeatures, l.outFeatures, { ...o, bias: l.bias });
    case 'Conv2d':
      return new Conv2d(l.inChannels, l.outChannels, l.kernelSize, { ...o, stride: l.stride, padding: l.padding, dilation: l.dilation, groups: l.groups, bias: l.bias });
    case 'MaxPool2d':
      return new MaxPool2d(l.kernelSize, l.stride, l.padding);
    case 'AvgPool2d':
      return new AvgPool2d(l.kernelSize, l.stride, l.padding);
    case 'AdaptiveAvgPool2d':
      return new AdaptiveAvgPool2d(l.outputSize ?? 1);
    case 'Flatten':
      return new Flatten(l.startDim, l.endDim);
    case 'ReLU':
      return new ReLU();
    case 'Sigmoid':
      return new Sigmoid();
    case 'Tanh':
      return new Tanh();
    case 'Softmax':
      return new Softmax(l.dim);
    case 'LogSoftmax':
      return new LogSoftmax(l.dim);
    case 'Dropout':
      // Masks keyed by the model's generator and the layer's index, so every copy of the model draws alike.
      return new Dropout(l.p, { seed: Math.floor(rng.uniform() * 2 ** 53), stream: index });
    case 'BatchNorm1d':
      return new BatchNorm1d(l.numFeatures, { dtype, eps: l.eps, momentum: l.momentum, affine: l.affine });
    case 'BatchNorm2d':
      return new BatchNorm2d(l.numFeatures, { dtype, eps: l.eps, momentum: l.momentum, affine: l.affine });
    case 'LayerNorm':
      return new LayerNorm(l.normalizedShape, { dtype, eps: l.eps, elementwiseAffine: l.elementwiseAffine });
    case 'Embedding':
      return new Embedding(l.numEmbeddings, l.embeddingDim, { ...o, paddingIdx: l.paddingIdx });
    case 'RNN':
      return new RNN(l.inputSize, l.hiddenSize, { ...o, numLayers: l.numLayers, bias: l.bias, batchFirst: l.batchFirst, returnLast: l.returnLast, stateful: l.stateful });
    case 'LSTM':
      return new LSTM(l.inputSize, l.hiddenSize, { ...o, numLayers: l.numLayers, bias: l.bias, batchFirst: l.batchFirst, returnLast: l.returnLast, stateful: l.stateful });
    case 'GRU':
      return new GRU(l.inputSize, l.hiddenSize, { ...o, numLayers: l.numLayers, bias: l.bias, batchFirst: l.batchFirst, returnLast: l.returnLast, stateful: l.stateful });
  }
}

/** Checks a spec's structure (types, known keys) and returns it typed; values are checked by buildModel. */
export function checkModelSpec(spec: unknown, where = 'model'): ModelSpec {
  if (typeof spec !== 'object' || spec === null) throw new ValueError(`${where} must be an object with 'layers' (got ${fmtValue(spec)})`);
  const { layers, dtype } = spec as { layers?: unknown; dtype?: unknown };
  if (!Array.isArray(layers) || layers.length === 0) throw new ValueError(`${where}.layers must be a non-empty array (got ${fmtValue(layers)})`);
  for (const k of Object.keys(spec)) if (k !== 'layers' && k !== 'dtype') throw new ValueError(`${where} has unknown key '${k}' (expected layers, dtype)`);
  if (dtype !== undefined) checkDType(`${where}.dtype`, dtype);
  layers.forEach((l, i) => checkLayerShape(`${where}.layers[${i}]`, l));
  return spec as ModelSpec;
}

/**
 * The torch.nn.Sequential of `spec`, children named '0', '1', ..., initialised from `seed` as PyTorch
 * would (same distributions; not the same draws). Equal seeds give equal models on any thread.
 */
export function buildModel(spec: ModelSpec, seed = 0, where = 'model'): Sequential {
  checkModelSpec(spec, where);
  const dtype = spec.dtype ?? 'f32';
  const rng = new Rng(seed, 7);
  const layers = spec.layers.map((l, i) => {
    try {
      return makeLayer(l, dtype, rng, i);
    } catch (e) {
      if (e instanceof StreamgradError) {
        e.message = `${where}.layers[${i}] (${l.type}): ${e.message}`;
      }
      throw e;
    }
  });
  return new Sequential(...layers);
}
