// The job table's release rules, driven by hand on one thread: what a step's jobs wait for, and that a
// release decided on one posting of a job record cannot flip a later posting of the same record.
import { describe, expect, it } from 'vitest';
import { CTL, JOB, JobState, UPDATE_JOB, ctlWords, groupBusy, releaseReady, waitingState } from '../../workers/protocol.js';

const JOBS = 6;

function table() {
  const ctl = new Int32Array(new SharedArrayBuffer(ctlWords(JOBS) * 4));
  let seq = 0;
  const at = (j: number, f: number) => CTL.HEADER + j * JOB.FIELDS + f;
  const post = (j: number, step: number, shard: number) => {
    ctl[at(j, JOB.GROUP)] = step;
    ctl[at(j, JOB.SHARD)] = shard;
    Atomics.store(ctl, at(j, JOB.STATE), waitingState(seq++));
  };
  const state = (j: number) => Atomics.load(ctl, at(j, JOB.STATE));
  const set = (j: number, s: number) => Atomics.store(ctl, at(j, JOB.STATE), s);
  return { ctl, post, state, set };
}

describe('releaseReady', () => {
  it('holds a step\'s shards until the step before is done and the step is opened, and its update jobs until its shards are done and it is planned', () => {
    const { ctl, post, state, set } = table();
    // Step 4: an update job (0) and two shards (1, 2); step 5: one shard (3), posted while step 4 runs.
    post(0, 4, UPDATE_JOB);
    post(1, 4, 0);
    post(2, 4, 1);
    post(3, 5, 0);
    expect(releaseReady(ctl, JOBS)).toBe(false); // nothing opened
    Atomics.store(ctl, CTL.OPENED, 6); // both steps opened (a step's shards may start early)
    expect(releaseReady(ctl, JOBS)).toBe(true);
    expect(state(1)).toBe(JobState.PENDING);
    expect(state(2)).toBe(JobState.PENDING);
    expect(state(0)).toBeLessThan(0); // the update waits for the shards and the plan
    expect(state(3)).toBeLessThan(0); // step 5 waits for every job of step 4
    set(1, JobState.DONE);
    set(2, JobState.CLAIMED + 1);
    Atomics.store(ctl, CTL.PLANNED, 5);
    expect(releaseReady(ctl, JOBS)).toBe(false); // shard 1 still runs
    set(2, JobState.DONE);
    expect(releaseReady(ctl, JOBS)).toBe(true);
    expect(state(0)).toBe(JobState.PENDING);
    expect(state(3)).toBeLessThan(0);
    expect(groupBusy(ctl, JOBS, 4)).toBe(true);
    expect(groupBusy(ctl, JOBS, 4, true)).toBe(false);
    set(0, JobState.DONE);
    expect(groupBusy(ctl, JOBS, 4)).toBe(false);
    expect(releaseReady(ctl, JOBS)).toBe(true);
    expect(state(3)).toBe(JobState.PENDING);
  });

  it('gives every waiting posting its own state, so a compare-and-swap decided on an earlier posting of a record fails', () => {
    const { ctl, post, state } = table();
    post(0, 7, 0);
    const seen = state(0); // what a releaser descheduled right after reading the record holds
    // The record runs, is collected and is posted again, for a step that must still wait.
    Atomics.store(ctl, CTL.HEADER + JOB.STATE, JobState.IDLE);
    post(0, 9, 0);
    expect(state(0)).not.toBe(seen);
    expect(Atomics.compareExchange(ctl, CTL.HEADER + JOB.STATE, seen, JobState.PENDING)).not.toBe(seen);
    expect(state(0)).toBeLessThan(0);
    expect(new Set(Array.from({ length: 1000 }, (_, i) => waitingState(i))).size).toBe(1000);
  });
});
