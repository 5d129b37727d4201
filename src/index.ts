// streamgrad's public API: tensors, autograd, ops, layers, losses, optimizers, safetensors I/O.
export * from './errors.js';
export { Tensor, tensor, zeros, ones, full, empty, scalar, type DType, type Storage, type NestedArray, type TensorOptions } from './tensor/tensor.js';
export { Arena, withArena } from './tensor/arena.js';
export { setKernels, kernelsInUse, type KernelKind } from './kernels/wasm/runtime.js';
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
export { Dropout, dropoutMask, DROPOUT_MAX_STREAM, DROPOUT_MAX_COUNTER, type DropoutOptions, type DropoutRngState } from './nn/dropout.js';
export { BatchNorm, BatchNorm1d, BatchNorm2d, LayerNorm, type BatchNormOptions, type LayerNormOptions } from './nn/norm.js';
export { Embedding, type EmbeddingOptions } from './nn/embedding.js';
export { addingProblem, type SequenceBatch } from './data/adding.js';
export { RNN, LSTM, GRU, detachState, type RecurrentOptions, type RNNOptions, type LSTMState, type RecurrentResult } from './nn/recurrent.js';
export { Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, type Conv2dLayerOptions } from './nn/conv.js';
export { buildModel, checkModelSpec, type ModelSpec, type LayerSpec, type LayerType } from './nn/spec.js';
export { buildOptimizer, type OptimizerSpec } from './optim/spec.js';
export {
  ShardedGradients, ShardZeroBuffers, shardStep, shardRange, shardCount, summedLoss, positionDropout, LOSS_NAMES,
  type LossName, type Targets, type ShardResult,
} from './train/shard.js';
export { FusedDense, fusedUnsupported, type FusedLoss } from './train/fused.js';
export * from './io/checkpoint.js';
