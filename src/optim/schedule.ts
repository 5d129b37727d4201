// Learning-rate schedules on an optimizer's param groups: StepLR, CosineAnnealingLR, LinearWarmup, SequentialLR.
import { StateDictError, ValueError, checkInt, checkNonNegative, checkPositive, fmtValue } from '../errors.js';
import { Optimizer } from './optimizer.js';

/** A scheduler's state as plain JSON-safe data. */
export interface SchedulerStateDict {
  scheduler: string;
  lastEpoch: number;
  baseLrs: number[];
  options: Record<string, number | number[]>;
  /** SequentialLR only: the children's state dicts, in order. */
  schedulers?: SchedulerStateDict[];
}

type Parse<O> = (where: string, opts: Record<string, unknown>) => O;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads an options object: rejects unknown keys, then validates each option. */
function readOptions(where: string, opts: unknown, known: readonly string[]): Record<string, unknown> {
  if (!isRecord(opts)) throw new ValueError(`${where}: options must be an object (got ${fmtValue(opts)})`);
  for (const k of Object.keys(opts)) {
    if (!known.includes(k)) throw new ValueError(`${where}: unknown option '${k}' (options: ${known.join(', ')})`);
  }
  return opts;
}

/**
 * The base of every schedule, as torch's LRScheduler: the first scheduler on an optimizer records each
 * group's lr as `initialLr`, the schedule's base; construction sets lr for step 0, and every `step()`
 * advances `lastEpoch` by one and sets each group's lr to `lrAt(lastEpoch, base)`. Call `step()` once per
 * optimizer step (or per epoch), after `optimizer.step()`.
 *
 * The lr is the closed form of the step count (torch's `_get_closed_form_lr`), so a schedule restored
 * from its stateDict continues exactly; it equals torch's chainable form up to rounding. Schedules do
 * not multiply with one another on the same optimizer (the last to step sets lr); chain them with
 * SequentialLR.
 */
export abstract class LRScheduler<O extends object = object> {
  /** Steps taken since construction (torch's `last_epoch`). */
  lastEpoch = 0;
  /** Each group's base lr (its `initialLr`). */
  baseLrs: number[];
  options: O;

  protected constructor(
    readonly name: string,
    readonly optimizer: Optimizer<any, any>,
    opts: unknown,
    private readonly known: readonly string[],
    private readonly parse: Parse<O>,
  ) {
    if (!(optimizer instanceof Optimizer)) throw new ValueError(`${name}: optimizer must be an Optimizer (got ${typeof optimizer})`);
    this.options = parse(name, readOptions(name, opts, known));
    for (const g of optimizer.paramGroups) if (g.initialLr === undefined) g.initialLr = g.lr;
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr!);
  }

  /** The lr after `t` steps for a group whose base lr is `base`. */
  abstract lrAt(t: number, base: number): number;

  /** Advances one step and sets every group's lr. */
  step(): void {
    this.lastEpoch++;
    this.apply();
  }

  /** The lr this schedule set last, per group. */
  getLastLr(): number[] {
    return this.baseLrs.map((b) => this.lrAt(this.lastEpoch, b));
  }

  /** Writes the lr of `lastEpoch` into the param groups (steady state: no allocation). */
  protected apply(): void {
    const groups = this.optimizer.paramGroups;
    const n = Math.min(groups.length, this.baseLrs.length);
    for (let i = 0; i < n; i++) groups[i]!.lr = this.lrAt(this.lastEpoch, this.baseLrs[i]!);
  }

  stateDict(): SchedulerStateDict {
    return { scheduler: this.name, lastEpoch: this.lastEpoch, baseLrs: this.baseLrs.slice(), options: this.optionsData() };
  }

  /** The options as JSON-safe data. */
  protected optionsData(): Record<string, number | number[]> {
    return { ...(this.options as Record<string, number>) };
  }

  /** Throws a StateDictError unless `sd` is a valid state dict for this scheduler; returns its options. */
  checkStateDict(sd: SchedulerStateDict): O {
    const where = `loadStateDict(${this.name})`;
    if (!isRecord(sd)) throw new StateDictError(`${where}: expected a scheduler state dict (got ${fmtValue(sd)})`);
    if (sd.scheduler !== this.name) throw new StateDictError(`${where}: the state dict is for ${fmtValue(sd.scheduler)}, not ${this.name}`);
    if (typeof sd.lastEpoch !== 'number' || !Number.isInteger(sd.lastEpoch) || sd.lastEpoch < 0) {
      throw new StateDictError(`${where}: lastEpoch must be an integer >= 0 (got ${fmtValue(sd.lastEpoch)})`);
    }
    const groups = this.optimizer.paramGroups.length;
    if (!Array.isArray(sd.baseLrs) || sd.baseLrs.length !== groups) {
      throw new StateDictError(`${where}: baseLrs must hold ${groups} learning rates, one per param group (got ${fmtValue(sd.baseLrs)})`);
    }
    sd.baseLrs.forEach((b: unknown, i) => {
      if (typeof b !== 'number' || !Number.isFinite(b) || b <= 0) throw new StateDictError(`${where}: baseLrs[${i}] must be > 0 (got ${fmtValue(b)})`);
    });
    try {
      return this.parse(where, readOptions(where, sd.options, this.known));
    } catch (e) {
      if (e instanceof ValueError) throw new StateDictError(e.message);
      throw e;
    }
  }

  /**
   * Restores a stateDict() (validated first, nothing half-applied) and sets the param groups' lr for the
   * restored step. (torch leaves lr to the optimizer's own state dict; the closed form gives the same.)
   */
  loadStateDict(sd: SchedulerStateDict): void {
    this.options = this.checkStateDict(sd);
    this.lastEpoch = sd.lastEpoch;
    this.baseLrs = sd.baseLrs.slice();
    this.apply();
  }
}

// ---------------------------------------------------------------------------------------------

export interface StepLROptions {
  stepSize: number;
  gamma?: number;
}

/** torch StepLR: lr = base · gamma^⌊t / stepSize⌋. */
export class StepLR extends LRScheduler<Required<StepLROptions>> {
  constructor(optimizer: Optimizer<any, any>, opts: StepLROptions) {
    super('StepLR', optimizer, opts, ['stepSize', 'gamma'], (where, o) => ({
      stepSize: checkInt(where, 'stepSize', o.stepSize, 1),
      gamma: checkPositive(where, 'gamma', o.gamma ?? 0.1),
    }));
    this.apply();
  }

  lrAt(t: number, base: number): number {
    return base * this.options.gamma ** Math.floor(t / this.options.stepSize);
  }
}

export interface CosineAnnealingLROptions {
  tMax: number;
  etaMin?: number;
}

/** torch CosineAnnealingLR: lr = etaMin + (base − etaMin)·(1 + cos(π t / tMax)) / 2 (periodic past tMax, as torch). */
export class CosineAnnealingLR extends LRScheduler<Required<CosineAnnealingLROptions>> {
  constructor(optimizer: Optimizer<any, any>, opts: CosineAnnealingLROptions) {
    super('CosineAnnealingLR', optimizer, opts, ['tMax', 'etaMin'], (where, o) => ({
      tMax: checkInt(where, 'tMax', o.tMax, 1),
      etaMin: checkNonNegative(where, 'etaMin', o.etaMin ?? 0),
    }));
    this.apply();
  }

  lrAt(t: number, base: number): number {
    const { tMax, etaMin } = this.options;
    return etaMin + ((base - etaMin) * (1 + Math.cos((Math.PI * t) / tMax))) / 2;
  }
}

export interface LinearWarmupOptions {
  warmupSteps: number;
  /** Fraction of the base lr at step 0, in (0, 1] (torch LinearLR's start_factor, default 1/3). */
  startFactor?: number;
}

/** torch LinearLR with end_factor 1: lr = base · (startFactor + (1 − startFactor) · min(t, warmupSteps) / warmupSteps). */
export class LinearWarmup extends LRScheduler<Required<LinearWarmupOptions>> {
  constructor(optimizer: Optimizer<any, any>, opts: LinearWarmupOptions) {
    super('LinearWarmup', optimizer, opts, ['warmupSteps', 'startFactor'], (where, o) => {
      const warmupSteps = checkInt(where, 'warmupSteps', o.warmupSteps, 1);
      const startFactor = checkPositive(where, 'startFactor', o.startFactor ?? 1 / 3);
      if (startFactor > 1) throw new ValueError(`${where}: startFactor must be in (0, 1] (got ${startFactor})`);
      return { warmupSteps, startFactor };
    });
    this.apply();
  }

  lrAt(t: number, base: number): number {
    const { warmupSteps, startFactor } = this.options;
    return base * (startFactor + ((1 - startFactor) * Math.min(t, warmupSteps)) / warmupSteps);
  }
}

export interface SequentialLROptions {
  schedulers: LRScheduler<any>[];
  /** Step counts where the next scheduler takes over: one fewer than schedulers, increasing. */
  milestones: number[];
}

/**
 * torch SequentialLR: schedulers[k] runs from milestones[k−1] on, counting its own steps from 0 there, e.g.
 * `new SequentialLR(opt, { schedulers: [new LinearWarmup(opt, …), new CosineAnnealingLR(opt, …)], milestones: [warmup] })`.
 * The children must act on the same optimizer; step only the SequentialLR.
 */
export class SequentialLR extends LRScheduler<{ milestones: number[] }> {
  readonly schedulers: readonly LRScheduler<any>[];

  constructor(optimizer: Optimizer<any, any>, opts: SequentialLROptions) {
    const where = 'SequentialLR';
    const schedulers = readOptions(where, opts, ['schedulers', 'milestones']).schedulers;
    if (!Array.isArray(schedulers) || schedulers.length === 0) {
      throw new ValueError(`${where}: schedulers must be a non-empty array of schedulers (got ${fmtValue(schedulers)})`);
    }
    schedulers.forEach((s: unknown, i) => {
      if (!(s instanceof LRScheduler)) throw new ValueError(`${where}: schedulers[${i}] must be an LRScheduler (got ${typeof s})`);
      if (s.optimizer !== optimizer) throw new ValueError(`${where}: schedulers[${i}] acts on a different optimizer`);
    });
    const count = schedulers.length;
    super(where, optimizer, { milestones: opts.milestones }, ['milestones'], (w, o) => {
      const ms = o.milestones;
      if (!Array.isArray(ms) || ms.length !== count - 1) {
        throw new ValueError(`${w}: milestones must hold ${count - 1} step counts, one fewer than schedulers (got ${fmtValue(ms)})`);
      }
      ms.forEach((m: unknown, i) => {
        checkInt(w, `milestones[${i}]`, m, 1);
        if (i > 0 && (m as number) <= ms[i - 1]) throw new ValueError(`${w}: milestones must increase (got ${fmtValue(ms)})`);
      });
      return { milestones: ms.slice() as number[] };
    });
    this.schedulers = schedulers.slice();
    this.apply();
  }

  /** The child that owns step `t`, and `t` on its own clock. */
  private at(t: number): [LRScheduler<any>, number] {
    const ms = this.options.milestones;
    let k = 0;
    while (k < ms.length && t >= ms[k]!) k++;
    return [this.schedulers[k]!, k === 0 ? t : t - ms[k - 1]!];
  }

  lrAt(t: number, base: number): number {
    const [s, local] = this.at(t);
    return s.lrAt(local, base);
  }

  /** Sets lr and keeps the active child's step count on its own clock (its getLastLr stays right). */
  protected override apply(): void {
    super.apply();
    const [s, local] = this.at(this.lastEpoch);
    s.lastEpoch = local;
  }

  override stateDict(): SchedulerStateDict {
    return { ...super.stateDict(), schedulers: this.schedulers.map((s) => s.stateDict()) };
  }

  protected override optionsData(): Record<string, number | number[]> {
    return { milestones: this.options.milestones.slice() };
  }

  override checkStateDict(sd: SchedulerStateDict): { milestones: number[] } {
    const opts = super.checkStateDict(sd);
    const kids = sd.schedulers;
    if (!Array.isArray(kids) || kids.length !== this.schedulers.length) {
      throw new StateDictError(`loadStateDict(SequentialLR): schedulers must hold ${this.schedulers.length} state dicts (got ${fmtValue(kids)})`);
    }
    this.schedulers.forEach((s, i) => s.checkStateDict(kids[i]!));
    return opts;
  }

  override loadStateDict(sd: SchedulerStateDict): void {
    this.checkStateDict(sd);
    this.schedulers.forEach((s, i) => s.loadStateDict(sd.schedulers![i]!));
    super.loadStateDict(sd);
  }
}
