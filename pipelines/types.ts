// What flows between the pipeline's stages, one interface per hop.

/** A batch packed into a slot by the batch stage. */
export interface PackedBatch {
  slot: number;
  /** Samples in the batch. */
  n: number;
  /** Step number, in source order (a resumed run continues its checkpoint's count). */
  step: number;
  /** 0-based fill number of this run: what the source counts batches by. */
  fill: number;
  epoch: number | undefined;
  /** This batch holds the last samples of its epoch. */
  epochEnd: boolean;
}

/** A batch whose jobs the workers have finished. */
export interface ComputedBatch extends PackedBatch {
  lossSum: number;
  correct: number;
  /** Jobs (micro-shards in sync mode) the batch was cut into. */
  jobs: number;
}

/** A batch whose gradient is summed (sync mode; Hogwild has none on the main thread). */
export interface ReducedBatch extends ComputedBatch {
  /** L2 norm of the summed gradient, NaN in Hogwild mode. */
  gradNorm: number;
  /** What the run's afterStep hook measured after this update (e.g. test loss and accuracy). */
  evaluation?: Record<string, number>;
}

/** One line of telemetry per applied step: what the report stage prints and later stages subscribe to. */
export interface StepTelemetry {
  step: number;
  epoch: number | undefined;
  /** This step's batch ended its epoch. */
  epochEnd: boolean;
  /** Samples applied so far. */
  samples: number;
  /** Mean loss of this step's batch (measured before its update). */
  loss: number;
  /** Fraction of this batch predicted right (class targets), else NaN. */
  accuracy: number;
  gradNorm: number;
  lr: number;
  /** Samples per second over the run so far. */
  samplesPerSecond: number;
  /** Packed batches no worker had begun when this step was applied (not yet posted, or posted ahead and waiting in the job table). */
  queueDepth: number;
  /** Milliseconds each worker has computed since the run started. */
  workerBusyMs: number[];
  /** Blocks of a worker's large products that an idle worker computed for it, since the run started (workers/gemm-help.ts). */
  helpedBlocks: number;
  seconds: number;
  /** What the run's afterStep hook measured after this update, when it returned something. */
  evaluation?: Record<string, number>;
}
