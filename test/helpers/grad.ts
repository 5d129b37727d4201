// Test helpers around gradients: tensors from specs, a throwing gradCheck for properties, Jacobians from
// unit seeds, and closeness assertions with stated tolerances.
import { expect } from 'vitest';
import { backward } from '../../src/autograd/engine.js';
import { type GradCheckOptions, gradCheck } from '../../src/autograd/grad-check.js';
import { type DType, Tensor, tensor } from '../../src/tensor/tensor.js';
import type { TensorSpec } from './arbitraries.js';

/** Finite-difference step and tolerances used by every gradient property unless a test says why not. */
export const EPS = 1e-6;
export const RTOL = 1e-6;

/** A fresh tensor from a spec; requiresGrad follows spec.grad (default true). f32 rounds the values. */
export function fromSpec(s: TensorSpec, dtype: DType = 'f64'): Tensor {
  return tensor(s.values, { shape: s.shape, dtype, requiresGrad: s.grad ?? true });
}

/**
 * gradCheck that throws (so fast-check reports and shrinks the case) unless reverse mode agrees with
 * central differences. `label` says what was checked.
 */
export function expectGrad(label: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradCheckOptions = {}): void {
  const res = gradCheck(f, inputs, { eps: EPS, rtol: RTOL, ...opts });
  if (!res.ok) {
    const shapes = inputs.map((t) => `[${t.shape.join(',')}]`).join(' ');
    throw new Error(
      `${label}: gradCheck failed for inputs ${shapes}: maxRelError ${res.maxRelError.toExponential(3)} > rtol ${opts.rtol ?? RTOL}; ` +
        res.checks.map((c) => `analytic ${c.analytic} vs numeric ${c.numeric}`).join('; '),
    );
  }
}

/**
 * The full Jacobian d f(x) / d x as rows (one per output element), built from the op's own backward by
 * seeding each output element with 1 in turn. `make` must build a fresh graph each call.
 */
export function jacobian(make: (x: Tensor) => Tensor, x: Tensor): number[][] {
  const probe = make(x);
  const rows: number[][] = [];
  for (let i = 0; i < probe.size; i++) {
    x.grad = null;
    const y = make(x);
    const seed = new Float64Array(y.size);
    seed[i] = 1;
    backward(y, new Tensor(seed, y.shape));
    rows.push(x.grad === null ? new Array<number>(x.size).fill(0) : Array.from((x.grad as Tensor).data));
  }
  x.grad = null;
  return rows;
}

export function matMul(a: number[][], b: number[][]): number[][] {
  const n = b[0]?.length ?? 0;
  return a.map((row) => {
    const out = new Array<number>(n).fill(0);
    row.forEach((v, k) => {
      for (let j = 0; j < n; j++) out[j]! += v * b[k]![j]!;
    });
    return out;
  });
}

/**
 * Throws unless |actual − expected| ≤ atol + rtol·|expected| element by element (arrays of equal length).
 */
export function expectClose(label: string, actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number): void {
  if (actual.length !== expected.length) throw new Error(`${label}: ${actual.length} values, expected ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(a) !== Number.isNaN(e) || Math.abs(a - e) > atol + rtol * Math.abs(e)) {
      throw new Error(`${label}: element ${i} is ${a}, expected ${e} (|diff| ${Math.abs(a - e)} > ${atol} + ${rtol}·|expected|)`);
    }
  }
}

/** Flat values of a tensor as a plain array (for toEqual). */
export function vals(t: Tensor | null): number[] {
  if (t === null) throw new Error('expected a tensor, got null');
  return Array.from(t.data);
}

/** Runs `fn` and checks it throws an instance of `cls` whose message is exactly `message`. */
export function expectThrows(fn: () => unknown, cls: abstract new (...args: never[]) => Error, message: string): void {
  let thrown: unknown = undefined;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  if (thrown === undefined) throw new Error(`expected ${cls.name}: ${message}, but nothing was thrown`);
  expect(thrown).toBeInstanceOf(cls);
  expect((thrown as Error).message).toBe(message);
}
