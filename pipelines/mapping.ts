// Records to tensors: a declared mapping from record fields to a sample's features and its target,
// checked once (compileMapping) and then applied to every record, which it validates as it writes.
import { RecordError, type RecordReason, ValueError, fmtValue } from '../src/errors.js';
import type { Storage } from '../src/tensor/tensor.js';

/**
 * One input feature. `field` is a key of the record, or a dotted path into nested JSON (`user.age`); a key
 * that contains dots itself (a CSV column 'sepal.length') is found first.
 */
export type FeatureSpec =
  /** One value. */
  | { field: string; type: 'number'; scale?: number }
  /** k values: 1 at the category's place, 0 elsewhere. An unknown category is a bad record. */
  | { field: string; type: 'onehot'; categories: readonly string[] }
  /** An array of exactly `length` numbers (784 pixels), each multiplied by `scale` (default 1). */
  | { field: string; type: 'vector'; length: number; scale?: number }
  /**
   * A sequence for recurrent models, written row-major [length, size]: an array of `length` steps, each an
   * array of `size` numbers, or the same numbers flat (length·size of them).
   */
  | { field: string; type: 'sequence'; length: number; size: number; scale?: number };

export type TargetSpec =
  /** A class index written to the Int32Array of targets: an integer in [0, classes), or one of the names. */
  | { field: string; type: 'class'; classes: number | readonly string[] }
  /** One dense target value (regression). */
  | { field: string; type: 'number' }
  /** `length` dense target values. */
  | { field: string; type: 'vector'; length: number };

export interface RecordMapping {
  features: readonly FeatureSpec[];
  target: TargetSpec;
}

export interface CompiledMapping {
  /** Values per sample: the sum of the features' widths. */
  readonly sampleSize: number;
  /** Values per target: 0 for a class index. */
  readonly targetSize: number;
  /** Every field the mapping reads, as written in it (a CSV header must have these columns). */
  readonly fields: readonly string[];
  /**
   * Writes the record's sample at x[xOffset, xOffset + sampleSize) and its target at y[yIndex] (class) or
   * y[yIndex·targetSize, …) (dense). Throws a RecordError naming the field and what was expected for any
   * bad value; `index` numbers the record in that message. A record that fails may have written part of its
   * row: callers reuse the row for the next record, so the partial values are never used.
   */
  write(record: unknown, x: Storage, xOffset: number, y: Int32Array | Storage, yIndex: number, index?: number): void;
}

// Strict decimal numbers as CSV writes them: "12", "-0.5", "1e-3", " 7 " (spaces around are tolerated),
// but not "12abc", "", "0x1F" or "1,5", all of which Number() or parseFloat() would quietly accept or cut.
const NUMBER = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;
const NON_FINITE = /^\s*[+-]?(?:nan|inf|infinity)\s*$/i;

/** Where a number came from, for its message: "feature 'age'", "target 'y'[2]". */
type Fail = (reason: RecordReason, detail: string) => never;

/** The number in `v` (a number, or a string as CSV gives them), or a RecordError through `fail`. */
function toNumber(v: unknown, what: string, fail: Fail): number {
  if (typeof v === 'number') {
    if (Number.isFinite(v)) return v;
    return fail('non-finite number', `${what} must be a finite number (got ${fmtValue(v)})`);
  }
  if (typeof v === 'string') {
    if (NUMBER.test(v)) {
      const n = Number(v);
      if (Number.isFinite(n)) return n;
      return fail('non-finite number', `${what} must be a finite number (got ${fmtValue(v)})`);
    }
    if (NON_FINITE.test(v)) return fail('non-finite number', `${what} must be a finite number (got ${fmtValue(v)})`);
  }
  return fail('wrong type', `${what} must be a finite number (got ${fmtValue(v)})`);
}

/** A value cut short for a message: long arrays and strings would drown the reason. */
function shortValue(v: unknown): string {
  const s = fmtValue(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, 8).map((n) => JSON.stringify(n)).join(', ');
  return names.length > 8 ? `${shown}, … (${names.length} in all)` : shown;
}

/** The field's value, or undefined when the record lacks it. Own properties only: "constructor" is not a field. */
function compileGetter(field: string): (record: unknown) => unknown {
  const path = field.split('.');
  return (record) => {
    if (typeof record !== 'object' || record === null) return undefined;
    if (Object.hasOwn(record, field)) return (record as Record<string, unknown>)[field];
    let v: unknown = record;
    for (const key of path) {
      if (typeof v !== 'object' || v === null || !Object.hasOwn(v, key)) return undefined;
      v = (v as Record<string, unknown>)[key];
    }
    return v;
  };
}

/** Reads `n` numbers of an array into out[at, at+n), times `scale`. */
function writeNumbers(arr: readonly unknown[], out: Storage, at: number, scale: number, what: string, fail: Fail): void {
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    // Fast path for the common case (JSON numbers); strings and bad values go through the full check.
    out[at + i] = (typeof v === 'number' && Number.isFinite(v) ? v : toNumber(v, `${what}[${i}]`, fail)) * scale;
  }
}

type Writer = (value: unknown, out: Storage, at: number, fail: Fail) => void;

interface Compiled {
  width: number;
  write: Writer;
}

function checkField(where: string, spec: Record<string, unknown>): string {
  const f = spec.field;
  if (typeof f !== 'string' || f === '') throw new ValueError(`${where}.field must be a non-empty string (got ${fmtValue(f)})`);
  return f;
}

function checkLength(where: string, key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ValueError(`${where}.${key} must be an integer >= 1 (got ${fmtValue(v)})`);
  return v;
}

function checkScale(where: string, v: unknown): number {
  if (v === undefined) return 1;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ValueError(`${where}.scale must be a finite number (got ${fmtValue(v)})`);
  return v;
}

function checkNames(where: string, key: string, v: unknown, min: number): string[] {
  if (!Array.isArray(v) || v.length < min || !v.every((c) => typeof c === 'string')) {
    throw new ValueError(`${where}.${key} must be an array of at least ${min} strings (got ${shortValue(v)})`);
  }
  const seen = new Set<string>();
  for (const c of v as string[]) {
    if (seen.has(c)) throw new ValueError(`${where}.${key} has ${JSON.stringify(c)} twice`);
    seen.add(c);
  }
  return v as string[];
}

function vectorWriter(what: string, length: number, scale: number): Writer {
  return (v, out, at, fail) => {
    if (!Array.isArray(v)) return fail('wrong type', `${what} must be an array of ${length} numbers (got ${shortValue(v)})`);
    if (v.length !== length) return fail('wrong length', `${what} must have ${length} values (got ${v.length})`);
    writeNumbers(v, out, at, scale, what, fail);
  };
}

function compileFeature(spec: unknown, i: number): Compiled & { field: string } {
  const where = `mapping.features[${i}]`;
  if (typeof spec !== 'object' || spec === null) throw new ValueError(`${where} must be an object with field and type (got ${shortValue(spec)})`);
  const s = spec as Record<string, unknown>;
  const field = checkField(where, s);
  const what = `feature '${field}'`;
  switch (s.type) {
    case 'number': {
      const scale = checkScale(where, s.scale);
      return { field, width: 1, write: (v, out, at, fail) => void (out[at] = toNumber(v, what, fail) * scale) };
    }
    case 'onehot': {
      const categories = checkNames(where, 'categories', s.categories, 1);
      const place = new Map(categories.map((c, k) => [c, k]));
      return {
        field,
        width: categories.length,
        write: (v, out, at, fail) => {
          if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
            return fail('wrong type', `${what} must be one of ${listNames(categories)} (got ${shortValue(v)})`);
          }
          const k = place.get(String(v));
          if (k === undefined) return fail('unknown category', `${what} must be one of ${listNames(categories)} (got ${shortValue(v)})`);
          out.fill(0, at, at + categories.length);
          out[at + k] = 1;
        },
      };
    }
    case 'vector': {
      const length = checkLength(where, 'length', s.length);
      return { field, width: length, write: vectorWriter(what, length, checkScale(where, s.scale)) };
    }
    case 'sequence': {
      const length = checkLength(where, 'length', s.length);
      const size = checkLength(where, 'size', s.size);
      const scale = checkScale(where, s.scale);
      const expected = `${length} steps of ${size} numbers, or ${length * size} numbers flat`;
      return {
        field,
        width: length * size,
        write: (v, out, at, fail) => {
          if (!Array.isArray(v)) return fail('wrong type', `${what} must be ${expected} (got ${shortValue(v)})`);
          // Nested when the first step is an array; with size 1 both forms have `length` entries.
          if (v.length === length && Array.isArray(v[0])) {
            for (let t = 0; t < length; t++) {
              const step: unknown = v[t];
              if (!Array.isArray(step)) return fail('wrong type', `${what}[${t}] must be an array of ${size} numbers (got ${shortValue(step)})`);
              if (step.length !== size) return fail('wrong length', `${what}[${t}] must have ${size} values (got ${step.length})`);
              writeNumbers(step, out, at + t * size, scale, `${what}[${t}]`, fail);
            }
          } else if (v.length === length * size) {
            writeNumbers(v, out, at, scale, what, fail);
          } else {
            return fail('wrong length', `${what} must be ${expected} (got ${v.length} values)`);
          }
        },
      };
    }
    default:
      throw new ValueError(`${where}.type must be one of number, onehot, vector, sequence (got ${fmtValue(s.type)})`);
  }
}

interface CompiledTarget {
  field: string;
  /** 0 for a class index. */
  size: number;
  write: (v: unknown, y: Int32Array | Storage, yIndex: number, fail: Fail) => void;
}

function compileTarget(spec: unknown): CompiledTarget {
  const where = 'mapping.target';
  if (typeof spec !== 'object' || spec === null) throw new ValueError(`${where} must be an object with field and type (got ${shortValue(spec)})`);
  const s = spec as Record<string, unknown>;
  const field = checkField(where, s);
  const what = `target '${field}'`;
  switch (s.type) {
    case 'class': {
      const c = s.classes;
      if (typeof c === 'number') {
        if (!Number.isInteger(c) || c < 2) throw new ValueError(`${where}.classes must be an integer >= 2 or an array of at least 2 names (got ${fmtValue(c)})`);
        const expected = `${what} must be an integer class in [0, ${c})`;
        return {
          field,
          size: 0,
          write: (v, y, i, fail) => {
            const n = toNumber(v, what, (reason) => fail(reason, `${expected} (got ${shortValue(v)})`));
            if (!Number.isInteger(n) || n < 0 || n >= c) return fail('class out of range', `${expected} (got ${shortValue(v)})`);
            y[i] = n;
          },
        };
      }
      if (!Array.isArray(c)) throw new ValueError(`${where}.classes must be an integer >= 2 or an array of at least 2 names (got ${shortValue(c)})`);
      const names = checkNames(where, 'classes', c, 2);
      const index = new Map(names.map((n, k) => [n, k]));
      return {
        field,
        size: 0,
        write: (v, y, i, fail) => {
          const k = typeof v === 'string' || typeof v === 'number' ? index.get(String(v)) : undefined;
          if (k === undefined) {
            return fail(typeof v === 'string' || typeof v === 'number' ? 'unknown category' : 'wrong type', `${what} must be one of ${listNames(names)} (got ${shortValue(v)})`);
          }
          y[i] = k;
        },
      };
    }
    case 'number':
      return { field, size: 1, write: (v, y, i, fail) => void (y[i] = toNumber(v, what, fail)) };
    case 'vector': {
      const length = checkLength(where, 'length', s.length);
      const w = vectorWriter(what, length, 1);
      return { field, size: length, write: (v, y, i, fail) => w(v, y as Storage, i * length, fail) };
    }
    default:
      throw new ValueError(`${where}.type must be one of class, number, vector (got ${fmtValue(s.type)})`);
  }
}

/** Checks the mapping itself (a ValueError naming the bad key) and returns the per-record writer. */
export function compileMapping(m: RecordMapping): CompiledMapping {
  if (typeof m !== 'object' || m === null) throw new ValueError(`mapping must be an object with features and target (got ${shortValue(m)})`);
  if (!Array.isArray(m.features) || m.features.length === 0) {
    throw new ValueError(`mapping.features must be a non-empty array (got ${shortValue(m.features)})`);
  }
  const features = m.features.map((f, i) => ({ ...compileFeature(f, i), get: compileGetter((f as { field: string }).field) }));
  const target = compileTarget(m.target);
  const getTarget = compileGetter(target.field);
  const offsets: number[] = [];
  let sampleSize = 0;
  for (const f of features) {
    offsets.push(sampleSize);
    sampleSize += f.width;
  }
  const fields = [...new Set([...features.map((f) => f.field), target.field])];
  return {
    sampleSize,
    targetSize: target.size,
    fields,
    write(record, x, xOffset, y, yIndex, index) {
      const fail: Fail = (reason, detail) => {
        throw new RecordError(index, reason, detail);
      };
      for (let k = 0; k < features.length; k++) {
        const f = features[k]!;
        const v = f.get(record);
        if (v === undefined) return fail('missing field', `feature '${f.field}' is missing`);
        f.write(v, x, xOffset + offsets[k]!, fail);
      }
      const v = getTarget(record);
      if (v === undefined) return fail('missing field', `target '${target.field}' is missing`);
      target.write(v, y, yIndex, fail);
    },
  };
}
