// streamgrad's public API: tensors, autograd, ops, layers, losses, optimizers, safetensors I/O.
export * from './errors.js';
export { Tensor, tensor, zeros, ones, full, empty, scalar, type DType, type Storage, type NestedArray, type TensorOptions } from './tensor/tensor.js';
export { Arena, withArena } from './tensor/arena.js';
export { numel, broadcastShapes, type Shape } from './tensor/shape.js';
export { backward, noGrad, isGradEnabled, defineOp, record, type OpSpec, type OpContext, type BackwardOptions } from './autograd/engine.js';
export { gradCheck, type GradCheckOptions, type GradCheckResult } from './autograd/grad-check.js';
export * from './ops/index.js';
export { Module, type StateDict } from './nn/module.js';
export { Linear, Sequential, ReLU, Sigmoid, Tanh, Softmax, LogSoftmax, type LayerOptions } from './nn/layers.js';
export { ParamLayout, shareParameters, type ParamEntry, type SharedParameters } from './nn/param-layout.js';
export * as init from './nn/init.js';
export * from './loss/index.js';
export { Rng, manualSeed, philox4x32, type RngState } from './random.js';
export * from './optim/index.js';
export * from './data/dataset.js';
export { fit, evaluate, makeBatch, type FitOptions, type EpochReport, type Evaluation, type Stepper } from './train/fit.js';
export * from './io/safetensors.js';
export * from './io/state-dict.js';
