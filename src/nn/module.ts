// Module: the base of every layer. Holds parameters, buffers and child modules in registration order,
// which is exactly PyTorch's state_dict order, so names and order match torch.nn.Sequential.
import { StateDictError, ValueError, fmtShape } from '../errors.js';
import { noGrad } from '../autograd/engine.js';
import { sameShape } from '../tensor/shape.js';
import { type DType, Tensor } from '../tensor/tensor.js';

export type StateDict = Record<string, Tensor>;

export abstract class Module {
  training = true;
  private readonly ownParams = new Map<string, Tensor>();
  private readonly ownBuffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  /** Runs forward (the counterpart of calling a torch module). */
  call(x: Tensor): Tensor {
    return this.forward(x);
  }

  protected registerParameter(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this.ownParams.set(name, t);
    return t;
  }

  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.ownBuffers.set(name, t);
    return t;
  }

  protected registerModule(name: string, m: Module): Module {
    if (!(m instanceof Module)) throw new ValueError(`${this.constructor.name}: child '${name}' must be a Module (got ${typeof m})`);
    this.children.set(name, m);
    return m;
  }

  /** A parameter of this module by its local name (layers read their weights through this). */
  protected param(name: string): Tensor {
    return this.ownParams.get(name)!;
  }

  protected buffer(name: string): Tensor {
    return this.ownBuffers.get(name)!;
  }

  /** Replaces the tensor behind a parameter (used to move parameters into one shared buffer). */
  replaceParameter(name: string, t: Tensor): void {
    const dot = name.indexOf('.');
    if (dot >= 0) {
      const child = this.children.get(name.slice(0, dot));
      if (child === undefined) throw new StateDictError(`${this.constructor.name}: no child module '${name.slice(0, dot)}'`);
      child.replaceParameter(name.slice(dot + 1), t);
      return;
    }
    if (!this.ownParams.has(name)) throw new StateDictError(`${this.constructor.name}: no parameter '${name}'`);
    t.requiresGrad = true;
    this.ownParams.set(name, t);
  }

  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /** Parameters with their dotted names, own first, then each child's, recursively. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this.ownParams) out.push([prefix + n, p]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, b] of this.ownBuffers) out.push([prefix + n, b]);
    for (const [n, c] of this.children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** Parameters and buffers by name, in PyTorch's order (a module's params, its buffers, then children). */
  stateDict(prefix = ''): StateDict {
    const sd: StateDict = {};
    for (const [n, p] of this.ownParams) sd[prefix + n] = p;
    for (const [n, b] of this.ownBuffers) sd[prefix + n] = b;
    for (const [n, c] of this.children) Object.assign(sd, c.stateDict(`${prefix}${n}.`));
    return sd;
  }

  /**
   * Copies values in from `sd`. Every key and shape is checked before any value is copied, so a
   * mismatch leaves the module untouched. Values convert to each parameter's dtype.
   */
  loadStateDict(sd: Record<string, { shape: readonly number[]; data: ArrayLike<number> }>): void {
    const mine = this.stateDict();
    const where = `loadStateDict(${this.constructor.name})`;
    const missing = Object.keys(mine).filter((k) => !(k in sd));
    const extra = Object.keys(sd).filter((k) => !(k in mine));
    if (missing.length > 0 || extra.length > 0) {
      const parts = [];
      if (missing.length > 0) parts.push(`missing keys ${missing.map((k) => `'${k}'`).join(', ')}`);
      if (extra.length > 0) parts.push(`unexpected keys ${extra.map((k) => `'${k}'`).join(', ')}`);
      throw new StateDictError(`${where}: ${parts.join('; ')}`);
    }
    for (const [k, t] of Object.entries(mine)) {
      const src = sd[k]!;
      if (!sameShape(src.shape, t.shape)) {
        throw new StateDictError(`${where}: '${k}' has shape ${fmtShape(src.shape)} in the state dict, expected ${fmtShape(t.shape)}`);
      }
      if (src.data.length !== t.size) throw new StateDictError(`${where}: '${k}' holds ${src.data.length} values, expected ${t.size}`);
    }
    noGrad(() => {
      for (const [k, t] of Object.entries(mine)) t.data.set(sd[k]!.data);
    });
  }

  train(mode = true): this {
    this.training = mode;
    for (const c of this.children.values()) c.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Clears every parameter's gradient (zeros in place, keeping the storage). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad?.data.fill(0);
  }

  /** Number of scalar parameters. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  get dtype(): DType {
    return this.parameters()[0]?.dtype ?? 'f32';
  }

  /** One line per module, PyTorch's repr style. */
  toString(indent = ''): string {
    const kids = [...this.children];
    if (kids.length === 0) return `${this.constructor.name}(${this.extraRepr()})`;
    const inner = kids.map(([n, c]) => `${indent}  (${n}): ${c.toString(indent + '  ')}`).join('\n');
    return `${this.constructor.name}(\n${inner}\n${indent})`;
  }

  protected extraRepr(): string {
    return '';
  }
}
