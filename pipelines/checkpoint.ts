// checkpoint: writes the snapshots applyUpdate took (state copied while nothing else could write it)
// to durable checkpoints, in step order, before the step's telemetry goes out.
import { type OperatorFunction, map } from 'rxjs';
import { type CheckpointData, saveCheckpoint } from '../src/io/checkpoint.js';
import type { ReducedBatch } from './types.js';

export interface CheckpointPolicy {
  /** Folder of the run's checkpoints (created if missing). */
  dir: string;
  /** A checkpoint after every this many applied steps (default 100), and one at the end of the run. */
  everySteps?: number;
  /** Checkpoints kept (default 3). */
  keep?: number;
  /**
   * Also one of the starting state before the first step of a run that does not resume, recording where
   * the source starts: a run killed before its first periodic checkpoint can then be resumed from its
   * beginning (a broker's records acked before the kill are read again, not lost).
   */
  atStart?: boolean;
}

export function writeCheckpoints(policy: CheckpointPolicy | undefined): OperatorFunction<ReducedBatch & { snapshot: CheckpointData | null }, ReducedBatch> {
  return map(({ snapshot, ...b }) => {
    if (snapshot !== null && policy !== undefined) saveCheckpoint(policy.dir, snapshot, { keep: policy.keep });
    return b;
  });
}
