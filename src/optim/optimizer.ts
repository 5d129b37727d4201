// Optimizers: the Optimizer base (param groups, per-parameter state, stateDict) and SGD, Adam, AdamW.
import { wasmHeap } from '../kernels/wasm/runtime.js';
import { ShapeError, StateDictError, ValueError, checkFinite, checkNonNegative, checkPositive, fmtShape, fmtValue } from '../errors.js';
import { Tensor, allocStorage, storageDType } from '../tensor/tensor.js';

/** A per-parameter state buffer: same length and dtype as its parameter. */
export type StateBuffer = Float32Array | Float64Array;

/** What every param group holds: its tensors and its learning rate (schedules read and write `lr`). */
export interface GroupBase {
  params: Tensor[];
  lr: number;
  /** The lr a schedule counts from; set by the first scheduler attached (torch's `initial_lr`). */
  initialLr?: number;
}

/** A param group as passed in: tensors plus any options that override the optimizer's defaults. */
export type ParamGroupInput<O> = { params: readonly Tensor[]; initialLr?: number } & Partial<O>;

/**
 * The optimizer's state as plain data, ready to save as safetensors (`tensors`) + JSON (`meta`).
 *
 * - `tensors['state.<i>.<buffer>']`: parameter i's state buffer (a copy), e.g. `state.0.momentumBuffer`,
 *   `state.3.expAvgSq`. `i` counts parameters across groups in order, as torch's state_dict does; each
 *   buffer is flat with the parameter's dtype (write it with shape `[length]` or the parameter's shape).
 * - `meta.optimizer`: 'SGD' | 'Adam' | 'AdamW'; a state dict loads only into the same kind.
 * - `meta.paramGroups[g]`: the group's hyperparameters (option names as in the constructor; betas as
 *   a 2-element array), its parameter indices `params`, and `initialLr` when a scheduler set one.
 * - `meta.state['<i>']`: parameter i's scalar state, e.g. `{ step: 3 }` for Adam.
 * A parameter that has never been stepped has no entries. Everything in `meta` is JSON-safe.
 */
export interface OptimizerStateDict {
  tensors: Record<string, StateBuffer>;
  meta: OptimizerStateMeta;
}
export interface OptimizerStateMeta {
  optimizer: string;
  paramGroups: GroupMeta[];
  state: Record<string, Record<string, number>>;
}
export type GroupMeta = { params: number[]; [option: string]: number | boolean | number[] };

type Check<T> = (where: string, name: string, v: unknown) => T;
/** Each hyperparameter's default (absent = required) and validator: one table per optimizer. */
type OptionTable<H> = { readonly [K in keyof H]-?: { readonly default?: H[K]; readonly check: Check<H[K]> } };

function checkBool(where: string, name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new ValueError(`${where}: ${name} must be a boolean (got ${fmtValue(v)})`);
  return v;
}

/** A value as it reads in messages, without dumping whole objects or tensors. */
function describe(v: unknown): string {
  if (v instanceof Tensor) return `${v}`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object' && v !== null) return 'an object';
  return fmtValue(v);
}

function isStateBuffer(v: unknown): v is StateBuffer {
  return v instanceof Float32Array || v instanceof Float64Array;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The base of every optimizer: validated param groups, per-parameter state allocated on a parameter's
 * first step, and the step loop. Subclasses supply an option table and the per-parameter `update`,
 * a plain loop over `p.data` and `p.grad.data` (no tensor ops, no allocation after the first step).
 *
 * Build the optimizer after the parameters reach their final storage (e.g. after `shareParameters`):
 * it holds the Tensor objects, not names.
 */
export abstract class Optimizer<H extends { lr: number } = { lr: number }, S extends object = object> {
  readonly paramGroups: (H & GroupBase)[] = [];
  readonly defaults: Readonly<H>;
  /** Per-parameter state, created on the parameter's first step with a gradient. */
  protected readonly state = new Map<Tensor, S>();
  /** Where each parameter was given, for duplicate messages. */
  private readonly seen = new Map<Tensor, string>();

  protected constructor(
    readonly name: string,
    private readonly table: OptionTable<H>,
    params: readonly Tensor[] | readonly ParamGroupInput<H>[],
    opts: Partial<H>,
  ) {
    if (!isRecord(opts)) throw new ValueError(`${name}: options must be an object (got ${describe(opts)})`);
    for (const k of Object.keys(opts)) {
      if (!Object.hasOwn(table, k)) throw new ValueError(`${name}: unknown option '${k}' (options: ${Object.keys(table).join(', ')})`);
    }
    const defaults = {} as H;
    for (const k of Object.keys(table) as (keyof H & string)[]) {
      const spec = table[k];
      const v = opts[k];
      defaults[k] = v === undefined && 'default' in spec ? spec.default! : spec.check(name, k, v);
    }
    this.checkHyper(name, defaults);
    this.defaults = defaults;

    if (!Array.isArray(params)) {
      throw new ValueError(`${name}: params must be an array of Tensors or of parameter groups (got ${describe(params)})`);
    }
    if (params.length === 0) throw new ValueError(`${name}: params must not be empty`);
    // An array of groups starts with a plain object holding `params`; anything else is a list of tensors.
    const groupMode = isRecord(params[0]) && !(params[0] instanceof Tensor) && 'params' in params[0];
    if (groupMode) for (const g of params as readonly ParamGroupInput<H>[]) this.addParamGroup(g);
    else this.addGroup({ params } as unknown as ParamGroupInput<H>, null);
    if (this.seen.size === 0) throw new ValueError(`${name}: params must not be empty`);
  }

  /** Adds a group (torch's add_param_group); validated completely before anything changes. */
  addParamGroup(group: ParamGroupInput<H>): void {
    this.addGroup(group, `paramGroups[${this.paramGroups.length}]`);
  }

  /** `at` names the group in messages; null for the constructor's plain list of tensors. */
  private addGroup(group: ParamGroupInput<H>, at: string | null): void {
    const where = this.name;
    if (!isRecord(group) || group instanceof Tensor) {
      throw new ValueError(`${where}: ${at} must be a parameter group { params, ...options } (got ${describe(group)})`);
    }
    const list = group.params;
    const listName = at === null ? 'params' : `${at}.params`;
    if (!Array.isArray(list)) throw new ValueError(`${where}: ${listName} must be an array of Tensors (got ${describe(list)})`);
    const resolved = { ...this.defaults } as H & GroupBase;
    // Arrays (betas) are copied, so changing one group's never changes another's.
    for (const [k, v] of Object.entries(resolved)) if (Array.isArray(v)) (resolved as unknown as Record<string, unknown>)[k] = v.slice();
    for (const k of Object.keys(group)) {
      if (k === 'params') continue;
      const v = (group as Record<string, unknown>)[k];
      if (k === 'initialLr') {
        if (v !== undefined) resolved.initialLr = checkPositive(where, `${at}.initialLr`, v);
        continue;
      }
      if (!Object.hasOwn(this.table, k)) {
        throw new ValueError(`${where}: ${at} has an unknown option '${k}' (options: ${Object.keys(this.table).join(', ')})`);
      }
      const key = k as keyof H & string;
      if (v !== undefined) resolved[key] = this.table[key].check(where, `${at}.${k}`, v) as (H & GroupBase)[typeof key];
    }
    if (at !== null) this.checkHyper(`${where}: ${at}`, resolved);
    const mine = new Map<Tensor, string>();
    list.forEach((p: unknown, i: number) => {
      const pn = `${listName}[${i}]`;
      if (!(p instanceof Tensor)) throw new ValueError(`${where}: ${pn} must be a Tensor (got ${describe(p)})`);
      if (!p.requiresGrad) throw new ValueError(`${where}: ${pn} must require grad (${p} has requiresGrad false)`);
      if (!p.isLeaf) throw new ValueError(`${where}: ${pn} must be a leaf tensor (it is the output of '${p.node!.op.name}')`);
      const before = this.seen.get(p) ?? mine.get(p);
      if (before !== undefined) throw new ValueError(`${where}: ${pn} is the same tensor as ${before}`);
      mine.set(p, pn);
    });
    for (const [p, pn] of mine) this.seen.set(p, pn);
    resolved.params = [...list];
    this.paramGroups.push(resolved);
  }

  /**
   * Makes the zero-filled state buffers (default: plain arrays outside any arena). A training run whose
   * workers apply the update puts them in its WebAssembly heap, where every thread reads them in place.
   */
  stateAllocator: ((dtype: 'f32' | 'f64', n: number) => StateBuffer) | null = null;

  /** A fresh zero-filled state buffer with the length and dtype of `like` (state outlives a step). */
  protected zerosLike(like: Tensor | StateBuffer): StateBuffer {
    const dtype = like instanceof Tensor ? like.dtype : storageDType(like);
    const n = like instanceof Tensor ? like.size : like.length;
    return this.stateAllocator?.(dtype, n) ?? allocStorage(dtype, n, true, true);
  }

  /** A loaded buffer copied into `p`'s dtype. */
  protected copyLike(p: Tensor, src: StateBuffer): StateBuffer {
    const out = this.zerosLike(p);
    out.set(src);
    return out;
  }

  /** Cross-option rules (torch's nesterov check); `where` is the message prefix. */
  protected checkHyper(_where: string, _h: H): void {}

  /** A parameter's fresh state, made on its first step with a gradient. */
  protected abstract initState(p: Tensor, group: H): S;

  /** One parameter's update, in place: a plain loop over `param` and `grad`. */
  protected abstract update(group: H, param: Float32Array | Float64Array, grad: Float32Array | Float64Array, state: S): void;

  /** Builds a parameter's state from loaded entries, throwing a StateDictError when they do not fit `group`. */
  protected abstract importState(where: string, p: Tensor, group: H, buffers: Map<string, StateBuffer>, scalars: Map<string, number>): S;

  /**
   * One optimization step over every parameter that has a gradient (a null grad is skipped, as in
   * torch). With `closure`, calls it first (it should recompute the loss) and returns its result.
   */
  step<L = undefined>(closure?: () => L): L | undefined {
    const loss = closure === undefined ? undefined : closure();
    const groups = this.paramGroups;
    for (let gi = 0; gi < groups.length; gi++) {
      const group = groups[gi]!;
      const ps = group.params;
      for (let i = 0; i < ps.length; i++) {
        const p = ps[i]!;
        const g = p.grad;
        if (g === null) continue;
        if (g.size !== p.size) {
          throw new ShapeError(`${this.name}: gradient of shape ${fmtShape(g.shape)} for a parameter of shape ${fmtShape(p.shape)}`);
        }
        let s = this.state.get(p);
        if (s === undefined) {
          s = this.initState(p, group);
          this.state.set(p, s);
        }
        this.update(group, p.data, g.data, s);
      }
    }
    return loss;
  }

  /** Zeros every existing gradient in place (keeps the storage); `setToNone` drops them instead. */
  zeroGrad(setToNone = false): void {
    // Indexed loops: a for-of in code called once per step stays unoptimised and allocates its iterators.
    for (let g = 0; g < this.paramGroups.length; g++) {
      const ps = this.paramGroups[g]!.params;
      for (let i = 0; i < ps.length; i++) {
        if (setToNone) ps[i]!.grad = null;
        else ps[i]!.grad?.data.fill(0);
      }
    }
  }

  /** The state as plain data (buffers copied): see OptimizerStateDict for the layout. */
  stateDict(): OptimizerStateDict {
    const tensors: Record<string, StateBuffer> = {};
    const state: Record<string, Record<string, number>> = {};
    const paramGroups: GroupMeta[] = [];
    let index = 0;
    for (const group of this.paramGroups) {
      const meta: GroupMeta = { params: [] };
      for (const k of Object.keys(this.table)) {
        const v = (group as unknown as Record<string, unknown>)[k] as number | boolean | readonly number[];
        meta[k] = Array.isArray(v) ? [...(v as number[])] : (v as number | boolean);
      }
      if (group.initialLr !== undefined) meta.initialLr = group.initialLr;
      for (const p of group.params) {
        meta.params.push(index);
        const s = this.state.get(p);
        if (s !== undefined) {
          const scalars: Record<string, number> = {};
          let any = false;
          for (const [k, v] of Object.entries(s)) {
            if (isStateBuffer(v)) tensors[`state.${index}.${k}`] = v.slice();
            else if (typeof v === 'number') {
              scalars[k] = v;
              any = true;
            }
          }
          if (any) state[String(index)] = scalars;
        }
        index++;
      }
      paramGroups.push(meta);
    }
    return { tensors, meta: { optimizer: this.name, paramGroups, state } };
  }

  /**
   * Restores a stateDict(): hyperparameters (as torch does, the saved ones replace the current ones) and
   * per-parameter state. Everything is checked before anything changes; buffers are copied and
   * converted to each parameter's dtype.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const where = `loadStateDict(${this.name})`;
    const fail = (msg: string): never => {
      throw new StateDictError(`${where}: ${msg}`);
    };
    if (!isRecord(sd) || !isRecord(sd.tensors) || !isRecord(sd.meta)) fail('expected { tensors, meta }');
    const { tensors, meta } = sd;
    if (meta.optimizer !== this.name) fail(`the state dict is for ${fmtValue(meta.optimizer)}, not ${this.name}`);
    if (!Array.isArray(meta.paramGroups) || meta.paramGroups.length !== this.paramGroups.length) {
      fail(`expected ${this.paramGroups.length} param groups (got ${describe(meta.paramGroups)})`);
    }
    if (!isRecord(meta.state)) fail(`meta.state must be an object (got ${describe(meta.state)})`);

    // Hyperparameters and parameter indices of each group.
    const params: Tensor[] = [];
    const groups: (H & GroupBase)[] = [];
    this.paramGroups.forEach((group, gi) => {
      const saved: unknown = meta.paramGroups[gi];
      const at = `paramGroups[${gi}]`;
      if (!isRecord(saved)) fail(`${at} must be an object (got ${describe(saved)})`);
      const g = saved as Record<string, unknown>;
      const ids = g.params;
      const want = group.params.map((_, i) => params.length + i);
      if (!Array.isArray(ids) || ids.length !== want.length || ids.some((id, i) => id !== want[i])) {
        fail(`${at}.params must be ${fmtValue(want)} (got ${fmtValue(ids)})`);
      }
      const next = { params: group.params } as H & GroupBase;
      for (const k of Object.keys(g)) {
        if (k !== 'params' && k !== 'initialLr' && !Object.hasOwn(this.table, k)) fail(`${at} has an unknown option '${k}'`);
      }
      try {
        for (const k of Object.keys(this.table) as (keyof H & string)[]) next[k] = this.table[k].check(where, `${at}.${k}`, g[k]) as (H & GroupBase)[typeof k];
        if (g.initialLr !== undefined) next.initialLr = checkPositive(where, `${at}.initialLr`, g.initialLr);
        this.checkHyper(`${where}: ${at}`, next);
      } catch (e) {
        if (e instanceof ValueError) throw new StateDictError(e.message);
        throw e;
      }
      groups.push(next);
      params.push(...group.params);
    });

    // Entries per parameter index: buffers from `tensors`, scalars from `meta.state`.
    const buffers = new Map<number, Map<string, StateBuffer>>();
    const scalars = new Map<number, Map<string, number>>();
    const indexOf = (key: string, i: string): number => {
      const n = /^(0|[1-9][0-9]*)$/.test(i) ? Number(i) : -1;
      if (n < 0 || n >= params.length) fail(`${key}: no parameter ${i} (there are ${params.length})`);
      return n;
    };
    for (const [key, buf] of Object.entries(tensors)) {
      const m = /^state\.([^.]+)\.([^.]+)$/.exec(key);
      if (m === null) fail(`unexpected tensor '${key}' (expected state.<index>.<buffer>)`);
      const i = indexOf(`tensor '${key}'`, m![1]!);
      if (!isStateBuffer(buf)) fail(`tensor '${key}' must be a Float32Array or Float64Array (got ${describe(buf)})`);
      if (buf.length !== params[i]!.size) fail(`tensor '${key}' holds ${buf.length} values, expected ${params[i]!.size}`);
      if (!buffers.has(i)) buffers.set(i, new Map());
      buffers.get(i)!.set(m![2]!, buf);
    }
    for (const [i, entry] of Object.entries(meta.state as Record<string, unknown>)) {
      const n = indexOf(`meta.state['${i}']`, i);
      if (!isRecord(entry)) fail(`meta.state['${i}'] must be an object (got ${describe(entry)})`);
      const map = new Map<string, number>();
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'number' || !Number.isFinite(v)) fail(`meta.state['${i}'].${k} must be a finite number (got ${fmtValue(v)})`);
        map.set(k, v as number);
      }
      scalars.set(n, map);
    }
    const newState = new Map<Tensor, S>();
    let index = 0;
    for (const group of groups) {
      for (const p of group.params) {
        const b = buffers.get(index);
        const s = scalars.get(index);
        if (b !== undefined || s !== undefined) {
          newState.set(p, this.importState(`${where}: parameter ${index}`, p, group, b ?? new Map(), s ?? new Map()));
        }
        index++;
      }
    }

    // Everything checked: apply.
    groups.forEach((g, gi) => {
      const group = this.paramGroups[gi]!;
      Object.assign(group, g);
      if (g.initialLr === undefined) delete group.initialLr;
    });
    this.state.clear();
    for (const [p, s] of newState) this.state.set(p, s);
  }
}

/** Rejects entries other than the named ones. */
function onlyKnown(where: string, kind: string, keys: Iterable<string>, known: readonly string[]): void {
  for (const k of keys) {
    if (!known.includes(k)) throw new StateDictError(`${where}: unexpected ${kind} '${k}' (expected ${known.join(', ') || 'none'})`);
  }
}

// ---------------------------------------------------------------------------------------------
// SGD

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  maximize?: boolean;
}
export type SGDHyper = Required<SGDOptions>;
export type SGDParamGroup = SGDHyper & GroupBase;
export interface SGDState {
  /** Null until the first step with momentum ≠ 0. */
  momentumBuffer: StateBuffer | null;
}

const SGD_OPTIONS: OptionTable<SGDHyper> = {
  lr: { check: checkPositive },
  momentum: { default: 0, check: checkNonNegative },
  dampening: { default: 0, check: checkFinite },
  nesterov: { default: false, check: checkBool },
  weightDecay: { default: 0, check: checkNonNegative },
  maximize: { default: false, check: checkBool },
};

/**
 * torch.optim.SGD: g = ±grad (+ weightDecay·p); with momentum, buf = g on the first step and
 * momentum·buf + (1 − dampening)·g after; g = nesterov ? g + momentum·buf : buf; p −= lr·g.
 */
export class SGD extends Optimizer<SGDHyper, SGDState> {
  constructor(params: readonly Tensor[] | readonly ParamGroupInput<SGDHyper>[], opts: SGDOptions) {
    super('SGD', SGD_OPTIONS, params, opts);
  }

  protected override checkHyper(where: string, h: SGDHyper): void {
    if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) {
      throw new ValueError(`${where}: nesterov requires momentum > 0 and dampening = 0 (got momentum ${h.momentum}, dampening ${h.dampening})`);
    }
  }

  protected initState(): SGDState {
    return { momentumBuffer: null };
  }

  protected update(h: SGDHyper, p: StateBuffer, grad: StateBuffer, s: SGDState): void {
    const { lr, momentum, dampening, nesterov, weightDecay } = h;
    const sign = h.maximize ? -1 : 1;
    const n = p.length;
    const heap = p instanceof Float32Array ? wasmHeap() : null;
    if (heap !== null) {
      // The same arithmetic in WebAssembly (f64 lanes, one f32 rounding per stored value): the same bits.
      const first = momentum !== 0 && s.momentumBuffer === null;
      if (first) s.momentumBuffer = this.zerosLike(p);
      const buf = s.momentumBuffer as Float32Array | null;
      const pa = heap.input(0, p as Float32Array), ga = heap.input(1, grad as Float32Array), ba = heap.input(2, buf);
      const nest = nesterov ? 1 : 0, once = first ? 1 : 0;
      if (heap.deferOptimizer === null) heap.kernels.sgdF32(pa, ga, ba, n, lr, momentum, dampening, nest, weightDecay, sign, once);
      else heap.defer({ kernel: 'sgdF32', args: [pa, ga, ba, n, lr, momentum, dampening, nest, weightDecay, sign, once] });
      heap.flush(0, p as Float32Array);
      heap.flush(2, buf);
      return;
    }
    if (momentum === 0) {
      for (let i = 0; i < n; i++) {
        let g = sign * grad[i]!;
        if (weightDecay !== 0) g += weightDecay * p[i]!;
        p[i] = p[i]! - lr * g;
      }
      return;
    }
    let buf = s.momentumBuffer;
    const first = buf === null;
    if (buf === null) buf = s.momentumBuffer = this.zerosLike(p);
    const keep = 1 - dampening;
    for (let i = 0; i < n; i++) {
      let g = sign * grad[i]!;
      if (weightDecay !== 0) g += weightDecay * p[i]!;
      // torch clones g into the buffer on the first step (no dampening), then keeps a running sum.
      buf[i] = first ? g : momentum * buf[i]! + keep * g;
      const b = buf[i]!; // the stored (dtype-rounded) value, as torch's update reads it
      p[i] = p[i]! - lr * (nesterov ? g + momentum * b : b);
    }
  }

  protected importState(where: string, p: Tensor, _h: SGDHyper, buffers: Map<string, StateBuffer>, scalars: Map<string, number>): SGDState {
    onlyKnown(where, 'buffer', buffers.keys(), ['momentumBuffer']);
    onlyKnown(where, 'scalar', scalars.keys(), []);
    const b = buffers.get('momentumBuffer');
    return { momentumBuffer: b === undefined ? null : this.copyLike(p, b) };
  }
}

// ---------------------------------------------------------------------------------------------
// Adam and AdamW: one implementation, `decoupledWeightDecay` tells them apart.

export interface AdamOptions {
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
  maximize?: boolean;
  /** AdamW's decay: p *= 1 − lr·weightDecay before the update, instead of adding weightDecay·p to g. */
  decoupledWeightDecay?: boolean;
}
export type AdamWOptions = Omit<AdamOptions, 'decoupledWeightDecay'>;
export type AdamHyper = Required<AdamOptions>;
export type AdamParamGroup = AdamHyper & GroupBase;
export interface AdamState {
  /** Steps taken by this parameter (drives the bias corrections). */
  step: number;
  expAvg: StateBuffer;
  expAvgSq: StateBuffer;
  /** Running max of expAvgSq, with amsgrad only. */
  maxExpAvgSq: StateBuffer | null;
}

function checkBetas(where: string, name: string, v: unknown): readonly [number, number] {
  if (!Array.isArray(v) || v.length !== 2) throw new ValueError(`${where}: ${name} must be a pair of numbers (got ${fmtValue(v)})`);
  v.forEach((b: unknown, i: number) => {
    if (typeof b !== 'number' || !(b >= 0 && b < 1)) throw new ValueError(`${where}: ${name}[${i}] must be in [0, 1) (got ${fmtValue(b)})`);
  });
  return [v[0], v[1]];
}

function adamOptions(weightDecay: number, decoupled: boolean): OptionTable<AdamHyper> {
  return {
    lr: { default: 1e-3, check: checkPositive },
    betas: { default: [0.9, 0.999], check: checkBetas },
    eps: { default: 1e-8, check: checkNonNegative },
    weightDecay: { default: weightDecay, check: checkNonNegative },
    amsgrad: { default: false, check: checkBool },
    maximize: { default: false, check: checkBool },
    decoupledWeightDecay: { default: decoupled, check: checkBool },
  };
}

/**
 * torch.optim.Adam: m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g², p −= lr/(1−β1ᵗ) · m / (√v̂/√(1−β2ᵗ) + eps)
 * with v̂ = v, or the running max of v with amsgrad. Weight decay adds weightDecay·p to g, or with
 * `decoupledWeightDecay` (AdamW) scales p by 1 − lr·weightDecay first.
 */
export class Adam extends Optimizer<AdamHyper, AdamState> {
  /** The name in messages and state dicts, and the defaults that tell AdamW apart. */
  static readonly kind: string = 'Adam';
  protected static readonly options = adamOptions(0, false);

  constructor(params: readonly Tensor[] | readonly ParamGroupInput<AdamHyper>[], opts: AdamOptions = {}) {
    const cls = new.target as typeof Adam;
    super(cls.kind, cls.options, params, opts);
  }

  protected initState(p: Tensor, h: AdamHyper): AdamState {
    return { step: 0, expAvg: this.zerosLike(p), expAvgSq: this.zerosLike(p), maxExpAvgSq: h.amsgrad ? this.zerosLike(p) : null };
  }

  protected update(h: AdamHyper, p: StateBuffer, grad: StateBuffer, s: AdamState): void {
    const { lr, eps, weightDecay, amsgrad, decoupledWeightDecay } = h;
    const beta1 = h.betas[0];
    const beta2 = h.betas[1];
    const sign = h.maximize ? -1 : 1;
    const t = ++s.step;
    const stepSize = lr / (1 - beta1 ** t);
    const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
    const decay = decoupledWeightDecay ? 1 - lr * weightDecay : 1;
    const l2 = decoupledWeightDecay ? 0 : weightDecay;
    const m = s.expAvg;
    const v = s.expAvgSq;
    // amsgrad switched on after the first step: torch would fail; start the max from zero instead.
    const vMax = amsgrad ? (s.maxExpAvgSq ??= this.zerosLike(p)) : null;
    const n = p.length;
    const heap = p instanceof Float32Array ? wasmHeap() : null;
    if (heap !== null) {
      // The same arithmetic in WebAssembly (f64 lanes, one f32 rounding per stored value): the same bits.
      const pf = p as Float32Array, mf = m as Float32Array, vf = v as Float32Array, xf = vMax as Float32Array | null;
      const pa = heap.input(0, pf), ga = heap.input(1, grad as Float32Array), ma = heap.input(2, mf), va = heap.input(3, vf), xa = heap.input(4, xf);
      const dec = decoupledWeightDecay ? 1 : 0;
      if (heap.deferOptimizer === null) heap.kernels.adamF32(pa, ga, ma, va, xa, n, stepSize, bc2Sqrt, eps, beta1, beta2, weightDecay, dec, decay, sign);
      else heap.defer({ kernel: 'adamF32', args: [pa, ga, ma, va, xa, n, stepSize, bc2Sqrt, eps, beta1, beta2, weightDecay, dec, decay, sign] });
      heap.flush(0, pf);
      heap.flush(2, mf);
      heap.flush(3, vf);
      heap.flush(4, xf);
      return;
    }
    for (let i = 0; i < n; i++) {
      let g = sign * grad[i]!;
      let w = p[i]!;
      if (weightDecay !== 0) {
        if (decoupledWeightDecay) w *= decay;
        else g += l2 * w;
      }
      m[i] = beta1 * m[i]! + (1 - beta1) * g;
      v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
      let vi = v[i]!;
      if (vMax !== null) {
        vMax[i] = Math.max(vMax[i]!, vi);
        vi = vMax[i]!;
      }
      p[i] = w - (stepSize * m[i]!) / (Math.sqrt(vi) / bc2Sqrt + eps);
    }
  }

  protected importState(where: string, p: Tensor, h: AdamHyper, buffers: Map<string, StateBuffer>, scalars: Map<string, number>): AdamState {
    const names = h.amsgrad ? ['expAvg', 'expAvgSq', 'maxExpAvgSq'] : ['expAvg', 'expAvgSq'];
    onlyKnown(where, 'buffer', buffers.keys(), names);
    onlyKnown(where, 'scalar', scalars.keys(), ['step']);
    for (const k of names) if (!buffers.has(k)) throw new StateDictError(`${where}: missing buffer '${k}'`);
    const step = scalars.get('step');
    if (step === undefined || !Number.isInteger(step) || step < 1) {
      throw new StateDictError(`${where}: step must be an integer >= 1 (got ${fmtValue(step)})`);
    }
    const mx = buffers.get('maxExpAvgSq');
    return {
      step,
      expAvg: this.copyLike(p, buffers.get('expAvg')!),
      expAvgSq: this.copyLike(p, buffers.get('expAvgSq')!),
      maxExpAvgSq: mx === undefined ? null : this.copyLike(p, mx),
    };
  }
}

/** torch.optim.AdamW: Adam with decoupled weight decay, weightDecay 1e-2 by default. */
export class AdamW extends Adam {
  static override readonly kind: string = 'AdamW';
  protected static override readonly options = adamOptions(1e-2, true);

  constructor(params: readonly Tensor[] | readonly ParamGroupInput<AdamWOptions>[], opts: AdamWOptions = {}) {
    super(params, opts);
  }
}
