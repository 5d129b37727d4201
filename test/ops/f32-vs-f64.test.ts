// f32 against f64, for every op of OP_TABLE: the same inputs (values rounded to f32 first, so both dtypes
// see identical numbers) give forward values and input gradients that agree within the stated tolerance.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { backward } from '../../src/autograd/engine.js';
import { OP_TABLE } from '../../src/ops/index.js';
import { type DType, Tensor, tensor } from '../../src/tensor/tensor.js';
import type { TensorSpec } from '../helpers/arbitraries.js';
import { expectClose } from '../helpers/grad.js';
import { OP_CASES, type OpCase } from '../helpers/op-cases.js';

/**
 * The stated tolerance, per element: |f32 − f64| ≤ ATOL + RTOL·|f64| + ULP·max|input|.
 * - RTOL 1e-5: one f32 rounding is a relative 6e-8; the ops chain a few (softmax: max, sub, exp, sum,
 *   log, sub, exp; backward as many again) and sums of up to a few hundred terms accumulate.
 * - ATOL 1e-6: results that cancel to near 0 (gradients summing terms of both signs).
 * - ULP·max|input| with ULP = 2⁻²³ (one f32 ulp relative): a result that cancels against its inputs
 *   cannot be more accurate than their rounding; x − logSumExp(x) at logits near 34 has an ulp of 3.8e-6.
 *   For the O(1) inputs of most cases this term is below ATOL.
 */
const RTOL = 1e-5;
const ATOL = 1e-6;
const ULP = 2 ** -23;

function run(c: OpCase, dtype: DType, seed: number[]): { y: Tensor; grads: (Tensor | null)[] } {
  const xs = c.inputs.map((s) => tensor(s.values, { shape: s.shape, dtype, requiresGrad: s.grad ?? true }));
  const y = c.f(...xs);
  backward(y, tensor(seed, { shape: y.shape, dtype }));
  return { y, grads: xs.map((x, i) => ((c.inputs[i]!.grad ?? true) ? x.grad : null)) };
}

const rounded = (s: TensorSpec): TensorSpec => ({ ...s, values: s.values.map(Math.fround) });

describe(`f32 agrees with f64 within ${RTOL} relative + ${ATOL} absolute + one f32 ulp of the largest input`, () => {
  for (const name of Object.keys(OP_TABLE)) {
    test(`${name}: f32 forward and backward`, () => {
      fc.assert(
        fc.property(OP_CASES[name]!, fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 8 }), (c0, ws) => {
          const c: OpCase = { ...c0, inputs: c0.inputs.map(rounded) };
          // The output seed: drawn weights repeated over the output, rounded to f32 too.
          const size = c.f(...c.inputs.map((s) => tensor(s.values, { shape: s.shape, dtype: 'f64' }))).size;
          const seed = Array.from({ length: size }, (_, i) => Math.fround(ws[i % ws.length]!));
          const inputMax = Math.max(0, ...c.inputs.flatMap((s) => s.values.map(Math.abs)));
          const atol = ATOL + ULP * inputMax;
          const a = run(c, 'f64', seed);
          const b = run(c, 'f32', seed);
          expect(b.y.dtype).toBe('f32');
          expect(b.y.shape).toEqual(a.y.shape);
          expectClose(`${c.label} forward`, b.y.data, a.y.data, RTOL, atol);
          a.grads.forEach((g, i) => {
            const h = b.grads[i];
            if (g === null || g === undefined) return;
            expect(h?.dtype, `${c.label} gradient ${i} dtype`).toBe('f32');
            expectClose(`${c.label} gradient of input ${i}`, h!.data, g.data, RTOL, atol);
          });
        }),
        { numRuns: 25 },
      );
    });
  }
});
