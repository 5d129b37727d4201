// The data-parallel API (`streamgrad/parallel`): the training pipeline, its stages and the sources.
export { trainParallel, type ParallelTrainOptions, type ParallelTrainResult, type ParallelTrainRun } from './train.js';
export { batch } from './batch.js';
export { dispatch } from './dispatch.js';
export { reduceGradients } from './reduce-gradients.js';
export { applyUpdate } from './apply-update.js';
export { StepGate } from './step-gate.js';
export { report, formatTelemetry, type ReportContext } from './report.js';
export type { BatchSource, SlotWriter } from './source.js';
export type { PackedBatch, ComputedBatch, ReducedBatch, StepTelemetry } from './types.js';
export { DatasetSource, datasetSource, type DatasetSourceOptions } from './sources/dataset.js';
export { WorkerPool, MAX_WORKERS, type PoolOptions } from '../workers/pool.js';
