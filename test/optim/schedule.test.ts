// Tests of src/optim/schedule.ts: lr sequences of StepLR, CosineAnnealingLR, LinearWarmup and SequentialLR
// against their closed forms (values written out), param groups, state dict round trips, error texts.

import { describe, it, expect } from 'vitest';
import { StateDictError, ValueError } from '../../src/errors.js';
import { tensor } from '../../src/tensor/tensor.js';
import {
  Adam,
  CosineAnnealingLR,
  LinearWarmup,
  type LRScheduler,
  SGD,
  SequentialLR,
  StepLR,
  type SchedulerStateDict,
  type SequentialLROptions,
} from '../../src/optim/index.js';

function sgd(lr = 0.1): SGD {
  return new SGD([tensor([1, 2], { dtype: 'f64', requiresGrad: true })], { lr });
}

/** The lr of group 0 after construction and after each of `n` steps. */
function lrs(opt: SGD, sched: LRScheduler<any>, n: number): number[] {
  const out = [opt.paramGroups[0]!.lr];
  for (let i = 0; i < n; i++) {
    sched.step();
    out.push(opt.paramGroups[0]!.lr);
    expect(sched.getLastLr()[0]).toBe(opt.paramGroups[0]!.lr);
  }
  return out;
}

function expectSeq(actual: number[], expected: number[]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((v, i) => expect(v, `t = ${i}`).toBeCloseTo(expected[i]!, 14));
}

describe('schedules', () => {
  it('StepLR: base · gamma^⌊t / stepSize⌋', () => {
    const opt = sgd(0.1);
    // stepSize 3, gamma 0.5: 0.1 for t = 0..2, 0.05 for 3..5, 0.025 for 6..7
    expectSeq(lrs(opt, new StepLR(opt, { stepSize: 3, gamma: 0.5 }), 7), [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]);
  });

  it('StepLR default gamma 0.1', () => {
    const opt = sgd(1);
    expectSeq(lrs(opt, new StepLR(opt, { stepSize: 1 }), 2), [1, 0.1, 0.01]);
  });

  it('CosineAnnealingLR: etaMin + (base − etaMin)(1 + cos(π t / tMax)) / 2, periodic past tMax', () => {
    const opt = sgd(0.1);
    const h = 0.09 * (Math.SQRT1_2 / 2); // (base − etaMin) · cos(π/4) / 2 with base 0.1, etaMin 0.01
    // t = 0: 0.1;  1: 0.01 + 0.045 + h;  2: 0.01 + 0.045 (cos π/2 = 0);  3: 0.01 + 0.045 − h;  4: 0.01;  5: as t = 3;  6: as t = 2
    expectSeq(lrs(opt, new CosineAnnealingLR(opt, { tMax: 4, etaMin: 0.01 }), 6), [
      0.1,
      0.055 + h,
      0.055,
      0.055 - h,
      0.01,
      0.055 - h,
      0.055,
    ]);
  });

  it('CosineAnnealingLR default etaMin 0', () => {
    const opt = sgd(0.2);
    expectSeq(lrs(opt, new CosineAnnealingLR(opt, { tMax: 2 }), 2), [0.2, 0.1, 0]);
  });

  it('LinearWarmup: base · (startFactor + (1 − startFactor) · min(t, W) / W), then flat', () => {
    const opt = sgd(0.1);
    // startFactor 0.2, W = 4: 0.02, 0.04, 0.06, 0.08, 0.1, 0.1
    expectSeq(lrs(opt, new LinearWarmup(opt, { warmupSteps: 4, startFactor: 0.2 }), 5), [0.02, 0.04, 0.06, 0.08, 0.1, 0.1]);
  });

  it('LinearWarmup default startFactor 1/3 (torch LinearLR)', () => {
    const opt = sgd(0.3);
    expectSeq(lrs(opt, new LinearWarmup(opt, { warmupSteps: 2 }), 2), [0.1, 0.2, 0.3]);
  });

  it('SequentialLR: warmup then cosine, the cosine counting from 0 at the milestone', () => {
    const opt = sgd(0.1);
    const warm = new LinearWarmup(opt, { warmupSteps: 2, startFactor: 0.5 });
    const cos = new CosineAnnealingLR(opt, { tMax: 2 });
    const seq = new SequentialLR(opt, { schedulers: [warm, cos], milestones: [2] });
    // t = 0: warmup 0 → 0.05;  1: warmup 1 → 0.075;  2: cosine 0 → 0.1;  3: cosine 1 → 0.05;  4: cosine 2 → 0
    expectSeq(lrs(opt, seq, 4), [0.05, 0.075, 0.1, 0.05, 0]);
    expect(cos.lastEpoch).toBe(2);
    expect(seq.lastEpoch).toBe(4);
  });

  it('SequentialLR with three schedulers', () => {
    const opt = sgd(1);
    const a = new LinearWarmup(opt, { warmupSteps: 1, startFactor: 0.5 });
    const b = new StepLR(opt, { stepSize: 1, gamma: 0.5 });
    const c = new CosineAnnealingLR(opt, { tMax: 1, etaMin: 0.25 });
    const seq = new SequentialLR(opt, { schedulers: [a, b, c], milestones: [1, 3] });
    // t = 0: a(0) = 0.5;  1: b(0) = 1;  2: b(1) = 0.5;  3: c(0) = 1;  4: c(1) = 0.25
    expectSeq(lrs(opt, seq, 4), [0.5, 1, 0.5, 1, 0.25]);
  });

  it('each param group follows the schedule from its own base lr; the optimizer uses the new lr', () => {
    const a = tensor([0], { dtype: 'f64', requiresGrad: true });
    const b = tensor([0], { dtype: 'f64', requiresGrad: true });
    const opt = new SGD([{ params: [a] }, { params: [b], lr: 1 }], { lr: 0.1 });
    const sched = new StepLR(opt, { stepSize: 1, gamma: 0.5 });
    expect(opt.paramGroups.map((g) => g.initialLr)).toEqual([0.1, 1]);
    sched.step();
    expect(sched.getLastLr()).toEqual([0.05, 0.5]);
    a.grad = tensor([1], { dtype: 'f64' });
    b.grad = tensor([1], { dtype: 'f64' });
    opt.step();
    expect([a.data[0], b.data[0]]).toEqual([-0.05, -0.5]);
  });

  it('a second scheduler counts from initialLr, not from the lr the first one set', () => {
    const opt = sgd(0.1);
    new LinearWarmup(opt, { warmupSteps: 4, startFactor: 0.5 });
    expect(opt.paramGroups[0]!.lr).toBe(0.05);
    const s = new StepLR(opt, { stepSize: 10 });
    expect(s.baseLrs).toEqual([0.1]);
    expect(opt.paramGroups[0]!.lr).toBe(0.1);
  });
});

describe('scheduler stateDict / loadStateDict', () => {
  function warmCosine(opt: SGD): SequentialLR {
    const warm = new LinearWarmup(opt, { warmupSteps: 3, startFactor: 0.1 });
    const cos = new CosineAnnealingLR(opt, { tMax: 10, etaMin: 0.001 });
    return new SequentialLR(opt, { schedulers: [warm, cos], milestones: [3] });
  }

  it.each([
    ['StepLR', (o: SGD) => new StepLR(o, { stepSize: 2, gamma: 0.7 })],
    ['CosineAnnealingLR', (o: SGD) => new CosineAnnealingLR(o, { tMax: 7, etaMin: 0.01 })],
    ['LinearWarmup', (o: SGD) => new LinearWarmup(o, { warmupSteps: 6 })],
    ['SequentialLR', warmCosine],
  ] as const)('%s: restored through JSON, it continues identically', (_name, make) => {
    const opt = sgd(0.1);
    const sched = make(opt);
    for (let i = 0; i < 5; i++) sched.step();
    const saved: SchedulerStateDict = JSON.parse(JSON.stringify(sched.stateDict()));
    const rest = lrs(opt, sched, 8);

    const opt2 = sgd(0.1);
    const sched2 = make(opt2);
    sched2.loadStateDict(saved);
    expect(opt2.paramGroups[0]!.lr).toBe(rest[0]);
    expect(lrs(opt2, sched2, 8)).toEqual(rest);
  });

  it('layout', () => {
    const opt = sgd(0.1);
    const seq = warmCosine(opt);
    seq.step();
    expect(seq.stateDict()).toEqual({
      scheduler: 'SequentialLR',
      lastEpoch: 1,
      baseLrs: [0.1],
      options: { milestones: [3] },
      schedulers: [
        { scheduler: 'LinearWarmup', lastEpoch: 1, baseLrs: [0.1], options: { warmupSteps: 3, startFactor: 0.1 } },
        { scheduler: 'CosineAnnealingLR', lastEpoch: 0, baseLrs: [0.1], options: { tMax: 10, etaMin: 0.001 } },
      ],
    });
    // The optimizer's state dict carries initialLr, so a restored optimizer keeps the schedule's base.
    expect(opt.stateDict().meta.paramGroups[0]!.initialLr).toBe(0.1);
  });

  it('the optimizer restores initialLr', () => {
    const opt = sgd(0.1);
    new StepLR(opt, { stepSize: 1 }).step();
    const opt2 = sgd(0.5);
    opt2.loadStateDict(opt.stateDict());
    expect(opt2.paramGroups[0]!.initialLr).toBe(0.1);
    expect(opt2.paramGroups[0]!.lr).toBeCloseTo(0.01, 15);
    expect(new StepLR(opt2, { stepSize: 1 }).baseLrs).toEqual([0.1]);
  });

  it.each<[string, (sd: SchedulerStateDict) => unknown, string]>([
    ['not an object', () => 7, 'loadStateDict(StepLR): expected a scheduler state dict (got 7)'],
    ['another scheduler', (sd) => ({ ...sd, scheduler: 'CosineAnnealingLR' }), 'loadStateDict(StepLR): the state dict is for "CosineAnnealingLR", not StepLR'],
    ['a bad lastEpoch', (sd) => ({ ...sd, lastEpoch: -1 }), 'loadStateDict(StepLR): lastEpoch must be an integer >= 0 (got -1)'],
    ['baseLrs of another length', (sd) => ({ ...sd, baseLrs: [0.1, 0.2] }), 'loadStateDict(StepLR): baseLrs must hold 1 learning rates, one per param group (got [0.1,0.2])'],
    ['a bad base lr', (sd) => ({ ...sd, baseLrs: [0] }), 'loadStateDict(StepLR): baseLrs[0] must be > 0 (got 0)'],
    ['a bad option', (sd) => ({ ...sd, options: { stepSize: 0, gamma: 0.5 } }), 'loadStateDict(StepLR): stepSize must be an integer >= 1 (got 0)'],
    ['an unknown option', (sd) => ({ ...sd, options: { ...sd.options, foo: 1 } }), "loadStateDict(StepLR): unknown option 'foo' (options: stepSize, gamma)"],
  ])('refuses %s, changing nothing', (_what, corrupt, message) => {
    const opt = sgd(0.1);
    const s = new StepLR(opt, { stepSize: 2, gamma: 0.5 });
    s.step();
    s.step();
    const sd = s.stateDict();
    const fresh = new StepLR(opt, { stepSize: 3, gamma: 0.5 });
    const before = fresh.stateDict();
    const lr = opt.paramGroups[0]!.lr;
    expect(() => fresh.loadStateDict(corrupt(sd) as SchedulerStateDict)).toThrow(StateDictError);
    expect(() => fresh.loadStateDict(corrupt(sd) as SchedulerStateDict)).toThrow(message);
    expect(fresh.stateDict()).toEqual(before);
    expect(opt.paramGroups[0]!.lr).toBe(lr);
  });

  it('SequentialLR refuses a bad child without changing any scheduler', () => {
    const opt = sgd(0.1);
    const seq = warmCosine(opt);
    for (let i = 0; i < 4; i++) seq.step();
    const sd = seq.stateDict();
    const other = warmCosine(sgd(0.1));
    const before = other.stateDict();
    const bad = { ...sd, schedulers: [sd.schedulers![0]!, { ...sd.schedulers![1]!, options: { tMax: 0, etaMin: 0 } }] };
    expect(() => other.loadStateDict(bad)).toThrow('loadStateDict(CosineAnnealingLR): tMax must be an integer >= 1 (got 0)');
    expect(() => other.loadStateDict({ ...sd, schedulers: [] })).toThrow('loadStateDict(SequentialLR): schedulers must hold 2 state dicts (got [])');
    expect(other.stateDict()).toEqual(before);
  });
});

describe('scheduler errors', () => {
  const opt = sgd();
  it.each<[string, () => unknown, string]>([
    ['stepSize 0', () => new StepLR(opt, { stepSize: 0 }), 'StepLR: stepSize must be an integer >= 1 (got 0)'],
    ['stepSize missing', () => new StepLR(opt, {} as { stepSize: number }), 'StepLR: stepSize must be an integer >= 1 (got undefined)'],
    ['gamma 0', () => new StepLR(opt, { stepSize: 1, gamma: 0 }), 'StepLR: gamma must be > 0 (got 0)'],
    ['an unknown option', () => new StepLR(opt, { step_size: 2 } as unknown as { stepSize: number }), "StepLR: unknown option 'step_size' (options: stepSize, gamma)"],
    ['not an optimizer', () => new StepLR({} as SGD, { stepSize: 1 }), 'StepLR: optimizer must be an Optimizer (got object)'],
    ['tMax 1.5', () => new CosineAnnealingLR(opt, { tMax: 1.5 }), 'CosineAnnealingLR: tMax must be an integer >= 1 (got 1.5)'],
    ['etaMin < 0', () => new CosineAnnealingLR(opt, { tMax: 3, etaMin: -1 }), 'CosineAnnealingLR: etaMin must be >= 0 (got -1)'],
    ['warmupSteps 0', () => new LinearWarmup(opt, { warmupSteps: 0 }), 'LinearWarmup: warmupSteps must be an integer >= 1 (got 0)'],
    ['startFactor 0', () => new LinearWarmup(opt, { warmupSteps: 2, startFactor: 0 }), 'LinearWarmup: startFactor must be > 0 (got 0)'],
    ['startFactor > 1', () => new LinearWarmup(opt, { warmupSteps: 2, startFactor: 1.5 }), 'LinearWarmup: startFactor must be in (0, 1] (got 1.5)'],
    [
      'an unknown SequentialLR option',
      () => new SequentialLR(opt, { schedulers: [new StepLR(opt, { stepSize: 1 })], milestones: [], warmup: 3 } as unknown as SequentialLROptions),
      "SequentialLR: unknown option 'warmup' (options: schedulers, milestones)",
    ],
    ['no schedulers', () => new SequentialLR(opt, { schedulers: [], milestones: [] }), 'SequentialLR: schedulers must be a non-empty array of schedulers (got [])'],
    [
      'a non-scheduler',
      () => new SequentialLR(opt, { schedulers: [new StepLR(opt, { stepSize: 1 }), 3 as unknown as StepLR], milestones: [1] }),
      'SequentialLR: schedulers[1] must be an LRScheduler (got number)',
    ],
    [
      'another optimizer',
      () => new SequentialLR(opt, { schedulers: [new StepLR(sgd(), { stepSize: 1 })], milestones: [] }),
      'SequentialLR: schedulers[0] acts on a different optimizer',
    ],
    [
      'milestones of the wrong length',
      () => new SequentialLR(opt, { schedulers: [new StepLR(opt, { stepSize: 1 }), new StepLR(opt, { stepSize: 1 })], milestones: [] }),
      'SequentialLR: milestones must hold 1 step counts, one fewer than schedulers (got [])',
    ],
    [
      'a milestone 0',
      () => new SequentialLR(opt, { schedulers: [new StepLR(opt, { stepSize: 1 }), new StepLR(opt, { stepSize: 1 })], milestones: [0] }),
      'SequentialLR: milestones[0] must be an integer >= 1 (got 0)',
    ],
    [
      'milestones not increasing',
      () =>
        new SequentialLR(opt, {
          schedulers: [new StepLR(opt, { stepSize: 1 }), new StepLR(opt, { stepSize: 1 }), new StepLR(opt, { stepSize: 1 })],
          milestones: [3, 3],
        }),
      'SequentialLR: milestones must increase (got [3,3])',
    ],
  ])('%s', (_what, make, message) => {
    expect(make).toThrow(ValueError);
    expect(make).toThrow(message);
  });

  it('works with any optimizer (Adam)', () => {
    const adam = new Adam([tensor([1], { requiresGrad: true })], { lr: 0.01 });
    const s = new CosineAnnealingLR(adam, { tMax: 2 });
    s.step();
    expect(adam.paramGroups[0]!.lr).toBeCloseTo(0.005, 15);
  });
});
