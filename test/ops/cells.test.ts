// Tests of src/ops/cells.ts: gradient properties of the fused LSTM and GRU cell steps; their forward
// against the same cells composed from primitive ops; error messages.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { DTypeError, ShapeError } from '../../src/errors.js';
import * as ops from '../../src/ops/index.js';
import { type Tensor, tensor } from '../../src/tensor/tensor.js';
import { valuesArb } from '../helpers/arbitraries.js';
import { expectClose, expectThrows } from '../helpers/grad.js';
import { FAMILIES, assertOpGrad } from '../helpers/op-cases.js';

describe('gradient properties (f64, eps 1e-6, rtol 1e-6)', () => {
  // Cases: N 1..3, hidden 1..9, zero states, a shared hidden-gate row, random inputs without grad.
  for (const name of FAMILIES.cells) {
    test(`${name}: gradCheck`, () => assertOpGrad(name, 40));
  }
});

const f64 = (values: number[], shape: number[]): Tensor => tensor(values, { shape, dtype: 'f64' });
const chunk = (g: Tensor, k: number, H: number): Tensor => ops.slice(g, 1, k * H, (k + 1) * H);

/** The definitions, composed from primitive ops: what the fused steps must equal. */
function lstmComposed(z: Tensor, c: Tensor | null, H: number): { c2: Tensor; h2: Tensor } {
  const i = ops.sigmoid(chunk(z, 0, H));
  const f = ops.sigmoid(chunk(z, 1, H));
  const g = ops.tanh(chunk(z, 2, H));
  const o = ops.sigmoid(chunk(z, 3, H));
  const c2 = c === null ? ops.mul(i, g) : ops.add(ops.mul(f, c), ops.mul(i, g));
  return { c2, h2: ops.mul(o, ops.tanh(c2)) };
}

function gruComposed(gi: Tensor, gh: Tensor | null, h: Tensor | null, H: number): Tensor {
  const part = (t: Tensor, k: number): Tensor => (t.ndim === 1 ? ops.slice(t, 0, k * H, (k + 1) * H) : chunk(t, k, H));
  const r = ops.sigmoid(gh === null ? part(gi, 0) : ops.add(part(gi, 0), part(gh, 0)));
  const z = ops.sigmoid(gh === null ? part(gi, 1) : ops.add(part(gi, 1), part(gh, 1)));
  const n = ops.tanh(gh === null ? part(gi, 2) : ops.add(part(gi, 2), ops.mul(r, part(gh, 2))));
  return ops.add(ops.mul(ops.sub(1, z), n), h === null ? 0 : ops.mul(z, h));
}

const sizes = fc.record({ N: fc.integer({ min: 1, max: 4 }), H: fc.integer({ min: 1, max: 11 }) });

describe('forward equals the cell composed from primitives (f64)', () => {
  test('lstmCellState and lstmCellOutput', () => {
    fc.assert(
      fc.property(sizes.chain(({ N, H }) => fc.tuple(fc.constant([N, H]), valuesArb(N * 4 * H, 'wide'), fc.option(valuesArb(N * H, 'wide')))), ([[N, H], zv, cv]) => {
        const z = f64(zv, [N!, 4 * H!]);
        const c = cv === null ? null : f64(cv, [N!, H!]);
        const want = lstmComposed(z, c, H!);
        const c2 = ops.lstmCellState(z, c);
        expectClose('c\'', c2.data, want.c2.data, 1e-15, 1e-15);
        expectClose('h\'', ops.lstmCellOutput(z, c2).data, want.h2.data, 1e-15, 1e-15);
      }),
      { numRuns: 100 },
    );
  });

  test('gruCell with per-sample hidden gates, one shared row, or none, and with or without h', () => {
    fc.assert(
      fc.property(
        sizes.chain(({ N, H }) =>
          fc.tuple(fc.constant([N, H]), valuesArb(N * 3 * H, 'wide'), fc.constantFrom('rows', 'row', 'none'), valuesArb(N * 3 * H, 'wide'), fc.option(valuesArb(N * H, 'wide'))),
        ),
        ([[N, H], giv, kind, ghv, hv]) => {
          const gi = f64(giv, [N!, 3 * H!]);
          const gh = kind === 'none' ? null : kind === 'row' ? f64(ghv.slice(0, 3 * H!), [3 * H!]) : f64(ghv, [N!, 3 * H!]);
          const h = hv === null ? null : f64(hv, [N!, H!]);
          expectClose('h\'', ops.gruCell(gi, gh, h).data, gruComposed(gi, gh, h, H!).data, 1e-15, 1e-15);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('bad input', () => {
  test('names the op, the tensor and both shapes', () => {
    const z = tensor(new Array(2 * 8).fill(0), { shape: [2, 8] });
    expectThrows(() => ops.lstmCellState(tensor(new Array(10).fill(0), { shape: [2, 5] }), null), ShapeError, 'lstmCellState: gates has shape [2,5], expected [N, 4·hidden_size]');
    expectThrows(() => ops.lstmCellState(z, tensor([1, 2, 3], { shape: [1, 3] })), ShapeError, 'lstmCellState: c has shape [1,3], expected [2, 2] to match gates [2,8]');
    expectThrows(() => ops.lstmCellOutput(z, tensor(new Array(6).fill(0), { shape: [2, 3] })), ShapeError, 'lstmCellOutput: c has shape [2,3], expected [2, 2] to match gates [2,8]');
    const gi = tensor(new Array(12).fill(0), { shape: [2, 6] });
    expectThrows(() => ops.gruCell(gi, tensor(new Array(6).fill(0), { shape: [1, 6] }), null), ShapeError, 'gruCell: hiddenGates has shape [1,6], expected [2, 6] or [6] to match inputGates [2,6]');
    expectThrows(() => ops.gruCell(gi, null, tensor([1, 2], { shape: [2, 1] })), ShapeError, 'gruCell: h has shape [2,1], expected [2, 2] to match inputGates [2,6]');
    expectThrows(() => ops.gruCell(gi, null, tensor([1, 2, 3, 4], { shape: [2, 2], dtype: 'f64' })), DTypeError, "gruCell: dtypes differ (f32 and f64); convert with .clone('f32')");
  });

  test('a zero-width gate block is refused', () => {
    expect(() => ops.lstmCellState(tensor([], { shape: [2, 0] }), null)).toThrow('lstmCellState: gates has shape [2,0], expected [N, 4·hidden_size]');
  });
});
