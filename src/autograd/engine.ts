// The autograd contract and the generic reverse walk: ops record a Node on their output; backward() visits
// nodes in reverse topological order, undoes broadcasting once, checks every gradient's shape and
// accumulates with +=.
import { AutogradError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { addInto, copyInto, sumToShape } from '../kernels/elementwise.js';
import { activeArena } from '../tensor/arena.js';
import { broadcastsTo, sameShape } from '../tensor/shape.js';
import { Tensor, allocStorage, makeTensor, registerBackward } from '../tensor/tensor.js';

/** How a primitive differentiates: gradients for each input given the output's gradient. */
export interface OpSpec<Attrs = unknown> {
  /** The op's name: the same word as its function, its op-table key and its error messages. */
  readonly name: string;
  /** Input names for messages; a variadic op (concat) names the list once: `tensors` → `tensors[2]`. */
  readonly inputs: readonly string[];
  readonly variadic?: boolean;
  /**
   * Gradients for each input (null where an input needs none). A gradient may have the output's
   * broadcast shape: the engine sums it back to the input's shape. Runs with grad recording off.
   * Return them with `grads(...)` (no array per call) or any array.
   */
  backward(gy: Tensor, ctx: OpContext<Attrs>): readonly (Tensor | null)[];
}

export interface OpContext<Attrs = unknown> {
  readonly inputs: readonly Tensor[];
  /** The op's result: ops whose derivative is a function of it (exp, sigmoid, tanh, relu) reuse it. */
  readonly out: Tensor;
  readonly attrs: Attrs;
}

export interface Node extends OpContext {
  readonly op: OpSpec<any>;
  /** Gradient arriving from consumers during a walk. */
  grad: Tensor | null;
  mark: number;
  freed: boolean;
}

export function defineOp<Attrs = undefined>(spec: OpSpec<Attrs>): OpSpec<Attrs> {
  return spec;
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording: outputs do not require grad (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Records `out` as the result of `op` on `inputs` when any input requires grad. Returns `out`. */
export function record<A>(op: OpSpec<A>, out: Tensor, inputs: readonly Tensor[], attrs: A): Tensor {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return out;
  const slots = newNode(op, out, attrs, inputs.length);
  for (let i = 0; i < inputs.length; i++) slots[i] = inputs[i]!;
  return out;
}

/**
 * `record` for the built-in ops, with up to three inputs passed as arguments, so recording allocates no
 * array. Inside an arena step the Node object is recycled, like tensors are.
 */
export function recordOp<A>(op: OpSpec<A>, out: Tensor, attrs: A, a: Tensor, b?: Tensor, c?: Tensor): Tensor {
  if (!gradEnabled || !(a.requiresGrad || b?.requiresGrad === true || c?.requiresGrad === true)) return out;
  const slots = newNode(op, out, attrs, b === undefined ? 1 : c === undefined ? 2 : 3);
  slots[0] = a;
  if (b !== undefined) slots[1] = b;
  if (c !== undefined) slots[2] = c;
  return out;
}

type NodeSlots = { -readonly [K in keyof Node]: Node[K] } & { inputs: Tensor[] };

/** Attaches a fresh (or recycled) node to `out`; returns its inputs array, of length `count`, to fill. */
function newNode(op: OpSpec<any>, out: Tensor, attrs: unknown, count: number): Tensor[] {
  out.requiresGrad = true;
  const arena = activeArena();
  let node = arena?.nodes.next() as NodeSlots | undefined;
  if (node === undefined) {
    node = { op, inputs: new Array<Tensor>(count), out, attrs, grad: null, mark: 0, freed: false };
    arena?.nodes.keep(node);
  } else {
    node.op = op;
    node.out = out;
    node.attrs = attrs;
    node.grad = null;
    node.freed = false;
    // Same op at this position as last step (the steady state): same length, nothing to resize.
    if (node.inputs.length !== count) node.inputs.length = count;
  }
  out.node = node;
  return node.inputs;
}

const gradList: (Tensor | null)[] = [];
/** A backward's result in one shared array: the engine reads it before the next backward runs. */
export function grads(a: Tensor | null, b: Tensor | null = null, c: Tensor | null = null): readonly (Tensor | null)[] {
  gradList[0] = a;
  gradList[1] = b;
  gradList[2] = c;
  return gradList;
}

function inputName(op: OpSpec<any>, i: number): string {
  return op.variadic ? `${op.inputs[0]}[${i}]` : (op.inputs[i] ?? `input ${i}`);
}

let epoch = 0;
// Scratch for the walk, reused by every backward; counted with `n`/`sp`, never emptied with `length = 0`
// (V8 would drop the backing store and the next walk would allocate it again).
const order: (Node | null)[] = [];
const stack: (Node | null)[] = [];
const cursor: number[] = [];

export interface BackwardOptions {
  /** Keep the graph so backward can run through it again (costs memory until the outputs are dropped). */
  retainGraph?: boolean;
}

/**
 * Reverse-mode differentiation of `root`. Leaves that require grad receive d(root)/d(leaf)·seed in
 * `.grad`, added to what is there (call zeroGrad between steps, as in PyTorch).
 */
export function backward(root: Tensor, seed?: Tensor, opts?: BackwardOptions): void {
  if (!root.requiresGrad) {
    throw new AutogradError(`backward: the tensor ${fmtShape(root.shape)} does not require grad (no input of the computation had requiresGrad)`);
  }
  if (seed === undefined && root.size !== 1) {
    throw new AutogradError(`backward: a seed gradient is needed for a non-scalar output of shape ${fmtShape(root.shape)}`);
  }
  if (seed !== undefined) {
    if (!sameShape(seed.shape, root.shape)) throw new ShapeError(`backward: seed has shape ${fmtShape(seed.shape)}, expected ${fmtShape(root.shape)}`);
    if (seed.dtype !== root.dtype) throw new DTypeError(`backward: seed dtype ${seed.dtype} differs from the output's ${root.dtype}`);
  }
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    walk(root, seed, opts?.retainGraph ?? false);
  } finally {
    gradEnabled = prev;
  }
}

function walk(root: Tensor, seed: Tensor | undefined, retainGraph: boolean): void {
  const g = seed ?? makeTensor(allocStorage(root.dtype, 1, false), root.shape);
  if (seed === undefined) g.data[0] = 1;
  if (root.node === null) {
    accumulateLeaf(root, g);
    return;
  }
  if (root.node.freed) throw freedError(root.node);

  // Phase 1: topological order of the nodes reachable from root (iterative post-order DFS).
  const mark = ++epoch;
  let n = 0;
  let sp = 0;
  stack[sp] = root.node;
  cursor[sp++] = 0;
  root.node.mark = mark;
  while (sp > 0) {
    const node = stack[sp - 1]!;
    const i = cursor[sp - 1]!;
    if (i < node.inputs.length) {
      cursor[sp - 1] = i + 1;
      const child = node.inputs[i]!.node;
      if (child !== null && node.inputs[i]!.requiresGrad && child.mark !== mark) {
        if (child.freed) throw freedError(child);
        child.mark = mark;
        stack[sp] = child;
        cursor[sp++] = 0;
      }
    } else {
      order[n++] = node;
      stack[--sp] = null;
    }
  }

  // Phase 2: walk from the root back to the leaves, handing each node's gradient to its inputs.
  root.node.grad = g;
  for (let k = n - 1; k >= 0; k--) {
    const node = order[k]!;
    const gy = node.grad;
    node.grad = null;
    if (gy === null) continue;
    const grads = node.op.backward(gy, node);
    for (let i = 0; i < node.inputs.length; i++) {
      const x = node.inputs[i]!;
      const gx = grads[i];
      if (!x.requiresGrad || gx === null || gx === undefined) continue;
      const fitted = fitGradient(node.op, i, x, gx);
      if (x.node === null) accumulateLeaf(x, fitted);
      else if (x.node.grad === null) x.node.grad = fitted;
      else {
        // A second consumer: never add in place into the first gradient, it may be shared (add hands
        // the same tensor to both inputs).
        const sum = makeTensor(allocStorage(x.dtype, x.size, false), x.shape);
        sum.data.set(x.node.grad.data);
        addInto(sum.data, fitted.data);
        x.node.grad = sum;
      }
    }
    if (!retainGraph) node.freed = true;
  }
  // Drop the references the scratch arrays hold, so nothing stays reachable through them.
  for (let k = 0; k < n; k++) order[k] = null;
  for (let k = 0; k < 3; k++) gradList[k] = null;
}

registerBackward((t, seed) => backward(t, seed));

/** Undoes broadcasting and checks the gradient against the input: the one place either happens. */
function fitGradient(op: OpSpec<any>, i: number, x: Tensor, gx: Tensor): Tensor {
  if (gx.dtype !== x.dtype) {
    throw new DTypeError(`${op.name}: gradient for input '${inputName(op, i)}' has dtype ${gx.dtype}, expected ${x.dtype}`);
  }
  if (sameShape(gx.shape, x.shape)) return gx;
  if (broadcastsTo(x.shape, gx.shape)) {
    const out = makeTensor(allocStorage(x.dtype, x.size, false), x.shape);
    sumToShape(gx.data, gx.shape, out.data, x.shape);
    return out;
  }
  throw new ShapeError(`${op.name}: gradient for input '${inputName(op, i)}' has shape ${fmtShape(gx.shape)}, expected ${fmtShape(x.shape)}`);
}

/** Gradient buffers whose contents are stale: the next gradient written to one replaces them. */
const overwriteNext = new WeakSet<Tensor>();

/**
 * The next gradient a backward accumulates into `grad` (a leaf's `.grad`) replaces its contents instead of
 * adding to them, so a reused buffer need not be zeroed first (and one pass over it is saved). Whoever
 * marks a buffer clears the marks left after the backward with `takeOverwriteMark` (a leaf no path reached).
 */
export function overwriteNextGradient(grad: Tensor): void {
  overwriteNext.add(grad);
}

/** Whether `grad` is still marked (nothing was written to it since); removes the mark. */
export function takeOverwriteMark(grad: Tensor): boolean {
  return overwriteNext.delete(grad);
}

/**
 * The leaf `x`'s gradient buffer when the next gradient would replace its contents (see
 * overwriteNextGradient), for an op's backward to write x's whole gradient into directly, saving a
 * gradient-sized copy; null when there is none. Takes the mark: the caller must write all of it.
 */
export function claimLeafGradient(x: Tensor): Tensor | null {
  const g = x.grad;
  if (x.node !== null || g === null || g.dtype !== x.dtype || !sameShape(g.shape, x.shape) || !overwriteNext.delete(g)) return null;
  return g;
}

function accumulateLeaf(x: Tensor, g: Tensor): void {
  if (g === x.grad) return; // the op's backward wrote it there (claimLeafGradient)
  if (x.grad === null) x.grad = new Tensor(allocStorage(x.dtype, x.size, true, true), x.shape);
  if (overwriteNext.delete(x.grad)) copyInto(x.grad.data, g.data);
  else addInto(x.grad.data, g.data);
}

function freedError(node: Node): AutogradError {
  return new AutogradError(
    `backward: the graph through '${node.op.name}' was already freed by an earlier backward (pass { retainGraph: true } to the first call to walk it twice)`,
  );
}
