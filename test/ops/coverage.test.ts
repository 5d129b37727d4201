// The op table is fully covered: every key of OP_TABLE has a case generator, belongs to the family file
// that exports it, and is gradient-checked by that family's test file; primitives record themselves by name.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as cells from '../../src/ops/cells.js';
import * as composite from '../../src/ops/composite.js';
import * as conv from '../../src/ops/conv.js';
import * as elementwise from '../../src/ops/elementwise.js';
import { OP_TABLE } from '../../src/ops/index.js';
import * as matmul from '../../src/ops/matmul.js';
import * as pool from '../../src/ops/pool.js';
import * as reduce from '../../src/ops/reduce.js';
import * as shape from '../../src/ops/shape.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { fromSpec } from '../helpers/grad.js';
import { FAMILIES, type Family, OP_CASES } from '../helpers/op-cases.js';

/** Names of every op recorded in the graph behind `y`. */
function recordedOps(y: Tensor): Set<string> {
  const names = new Set<string>();
  const seen = new Set<Tensor>();
  const visit = (t: Tensor): void => {
    if (seen.has(t) || t.node === null) return;
    seen.add(t);
    names.add(t.node.op.name);
    t.node.inputs.forEach(visit);
  };
  visit(y);
  return names;
}

const MODULES: Record<Family, Record<string, unknown>> = { elementwise, reduce, shape, matmul, composite, conv, pool, cells };

/** The names the family files gradient-check (each family file loops over its list). */
const TESTED: string[] = Object.values(FAMILIES).flat();

describe('OP_TABLE coverage', () => {
  test('every op in OP_TABLE has a gradient property test, and every tested name is in OP_TABLE', () => {
    const untested = Object.keys(OP_TABLE).filter((k) => !TESTED.includes(k));
    expect(untested, 'ops in OP_TABLE without a gradient property test').toEqual([]);
    expect(TESTED.filter((k) => !(k in OP_TABLE)), 'tested names missing from OP_TABLE').toEqual([]);
    expect(new Set(TESTED).size, 'an op listed in two families').toBe(TESTED.length);
  });

  test('every op has a case generator', () => {
    expect(Object.keys(OP_TABLE).filter((k) => OP_CASES[k] === undefined)).toEqual([]);
    expect(Object.keys(OP_CASES).filter((k) => !(k in OP_TABLE))).toEqual([]);
  });

  test('each family lists exactly the op-table functions its src/ops file exports', () => {
    for (const [family, names] of Object.entries(FAMILIES) as [Family, readonly string[]][]) {
      const exported = Object.keys(MODULES[family]).filter((k) => k in OP_TABLE);
      expect([...names].sort(), `src/ops/${family}.ts`).toEqual(exported.sort());
      for (const n of names) expect(typeof MODULES[family][n], `${family}.${n}`).toBe('function');
    }
  });

  test('each family test file runs the gradient property over its whole list', () => {
    for (const family of Object.keys(FAMILIES)) {
      const file = fileURLToPath(new URL(`./${family}.test.ts`, import.meta.url));
      expect(existsSync(file), file).toBe(true);
      const text = readFileSync(file, 'utf8');
      expect(text, file).toContain(`for (const name of FAMILIES.${family}) {`);
      expect(text, file).toContain('test(`${name}: gradCheck`, () => assertOpGrad(name,');
    }
  });

  test('a primitive records a node named by its op-table key; a composite records only other primitives', () => {
    for (const [name, [kind]] of Object.entries(OP_TABLE)) {
      fc.assert(
        fc.property(OP_CASES[name]!, (c) => {
          const xs = c.inputs.map((s) => fromSpec(s));
          const y = c.f(...xs);
          // broadcastTo to the same shape and transpose of a vector return their input unchanged.
          if (xs.includes(y)) return;
          const recorded = recordedOps(y);
          expect(recorded.size, c.label).toBeGreaterThan(0);
          for (const r of recorded) expect(OP_TABLE[r]?.[0], `${c.label} records '${r}'`).toBe('primitive');
          // A primitive may sit behind reshapes (matmul with a 1-D operand); a composite never records itself.
          if (kind === 'primitive') expect([...recorded], c.label).toContain(name);
          else expect([...recorded], c.label).not.toContain(name);
        }),
        { numRuns: 10 },
      );
    }
  });
});
