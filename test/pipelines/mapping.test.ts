import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { RecordError, ValueError } from '../../src/errors.js';
import { type FeatureSpec, type RecordMapping, type TargetSpec, compileMapping } from '../../pipelines/mapping.js';

/** Writes `record` into row `row` of fresh arrays and returns them. */
function apply(m: RecordMapping, record: unknown, row = 0, index?: number): { x: number[]; y: number[] } {
  const c = compileMapping(m);
  const x = new Float64Array((row + 1) * c.sampleSize).fill(-7);
  const y = c.targetSize === 0 ? new Int32Array(row + 1).fill(-7) : new Float64Array((row + 1) * c.targetSize).fill(-7);
  c.write(record, x, row * c.sampleSize, y, row, index);
  return { x: Array.from(x.subarray(row * c.sampleSize)), y: Array.from(c.targetSize === 0 ? y.subarray(row) : y.subarray(row * c.targetSize)) };
}

function failure(m: RecordMapping, record: unknown, index?: number): { reason: string; message: string } {
  try {
    apply(m, record, 0, index);
  } catch (e) {
    expect(e).toBeInstanceOf(RecordError);
    return { reason: (e as RecordError).reason, message: (e as RecordError).message };
  }
  throw new Error('expected a RecordError');
}

const AGE: RecordMapping = { features: [{ field: 'age', type: 'number' }], target: { field: 'label', type: 'class', classes: 3 } };

describe('compileMapping: the mapping itself', () => {
  it('sizes the sample and target and lists the fields read', () => {
    const c = compileMapping({
      features: [
        { field: 'a', type: 'number' },
        { field: 'color', type: 'onehot', categories: ['red', 'green', 'blue'] },
        { field: 'px', type: 'vector', length: 5 },
        { field: 'seq', type: 'sequence', length: 4, size: 3 },
      ],
      target: { field: 'y', type: 'vector', length: 2 },
    });
    expect([c.sampleSize, c.targetSize]).toEqual([1 + 3 + 5 + 12, 2]);
    expect(c.fields).toEqual(['a', 'color', 'px', 'seq', 'y']);
    expect(compileMapping(AGE).targetSize).toBe(0);
  });

  it.each([
    [null, 'mapping must be an object with features and target (got null)'],
    [{ features: [], target: { field: 'y', type: 'number' } }, 'mapping.features must be a non-empty array (got [])'],
    [{ features: [3], target: { field: 'y', type: 'number' } }, 'mapping.features[0] must be an object with field and type (got 3)'],
    [{ features: [{ field: '', type: 'number' }], target: { field: 'y', type: 'number' } }, 'mapping.features[0].field must be a non-empty string (got "")'],
    [{ features: [{ field: 'a', type: 'num' }], target: { field: 'y', type: 'number' } }, 'mapping.features[0].type must be one of number, onehot, vector, sequence (got "num")'],
    [{ features: [{ field: 'a', type: 'number' }, { field: 'v', type: 'vector', length: 0 }], target: { field: 'y', type: 'number' } }, 'mapping.features[1].length must be an integer >= 1 (got 0)'],
    [{ features: [{ field: 's', type: 'sequence', length: 3, size: 1.5 }], target: { field: 'y', type: 'number' } }, 'mapping.features[0].size must be an integer >= 1 (got 1.5)'],
    [{ features: [{ field: 'v', type: 'vector', length: 3, scale: Number.NaN }], target: { field: 'y', type: 'number' } }, 'mapping.features[0].scale must be a finite number (got NaN)'],
    [{ features: [{ field: 'c', type: 'onehot', categories: [] }], target: { field: 'y', type: 'number' } }, 'mapping.features[0].categories must be an array of at least 1 strings (got [])'],
    [{ features: [{ field: 'c', type: 'onehot', categories: ['a', 'b', 'a'] }], target: { field: 'y', type: 'number' } }, 'mapping.features[0].categories has "a" twice'],
    [{ features: [{ field: 'a', type: 'number' }] }, 'mapping.target must be an object with field and type (got undefined)'],
    [{ features: [{ field: 'a', type: 'number' }], target: { field: 'y', type: 'onehot' } }, 'mapping.target.type must be one of class, number, vector (got "onehot")'],
    [{ features: [{ field: 'a', type: 'number' }], target: { field: 'y', type: 'class', classes: 1 } }, 'mapping.target.classes must be an integer >= 2 or an array of at least 2 names (got 1)'],
    [{ features: [{ field: 'a', type: 'number' }], target: { field: 'y', type: 'class', classes: ['only'] } }, 'mapping.target.classes must be an array of at least 2 strings (got ["only"])'],
    [{ features: [{ field: 'a', type: 'number' }], target: { field: 'y', type: 'vector', length: -1 } }, 'mapping.target.length must be an integer >= 1 (got -1)'],
  ])('%j → %s', (m, message) => {
    expect(() => compileMapping(m as unknown as RecordMapping)).toThrow(new ValueError(message));
  });
});

describe('compileMapping: writing records', () => {
  it('writes every kind at its offset, in the given row, from JSON values or CSV strings', () => {
    const m: RecordMapping = {
      features: [
        { field: 'user.age', type: 'number', scale: 0.5 },
        { field: 'color', type: 'onehot', categories: ['red', 'green', 'blue'] },
        { field: 'px', type: 'vector', length: 3, scale: 1 / 255 },
        { field: 'seq', type: 'sequence', length: 2, size: 2 },
      ],
      target: { field: 'label', type: 'class', classes: ['cat', 'dog'] },
    };
    const r = apply(m, { user: { age: '12' }, color: 'green', px: [0, 255, '51'], seq: [[1, 2], [3, '4']], label: 'dog' }, 2);
    expect(r.x).toEqual([6, 0, 1, 0, 0, 1, 0.2, 1, 2, 3, 4]);
    expect(r.y).toEqual([1]);
    // The same sequence given flat, row-major [length, size].
    expect(apply(m, { user: { age: 1 }, color: 'red', px: [0, 0, 0], seq: [1, 2, 3, 4], label: 'cat' }).x.slice(7)).toEqual([1, 2, 3, 4]);
  });

  it('finds a key that contains dots before it walks the path, and reads own fields only', () => {
    const m: RecordMapping = { features: [{ field: 'sepal.length', type: 'number' }], target: { field: 'y', type: 'number' } };
    expect(apply(m, { 'sepal.length': '5.1', sepal: { length: 9 }, y: ' -2.5e1 ' })).toEqual({ x: [5.1], y: [-25] });
    expect(apply(m, { sepal: { length: 9 }, y: 1 }).x).toEqual([9]);
    const proto: RecordMapping = { features: [{ field: 'constructor', type: 'number' }], target: { field: 'y', type: 'number' } };
    expect(failure(proto, { y: 1 }).message).toBe("feature 'constructor' is missing");
  });

  it('writes class indices given as integers or numeric strings, and dense targets', () => {
    expect(apply(AGE, { age: 1, label: 2 }).y).toEqual([2]);
    expect(apply(AGE, { age: 1, label: '0' }).y).toEqual([0]);
    const dense: RecordMapping = { features: [{ field: 'a', type: 'number' }], target: { field: 't', type: 'vector', length: 2 } };
    expect(apply(dense, { a: 0, t: [0.5, '-1'] }, 1).y).toEqual([0.5, -1]);
  });

  const seq: RecordMapping = { features: [{ field: 's', type: 'sequence', length: 2, size: 3 }], target: { field: 'y', type: 'number' } };
  const onehot: RecordMapping = { features: [{ field: 'c', type: 'onehot', categories: ['a', 'b'] }], target: { field: 'y', type: 'class', classes: ['no', 'yes'] } };
  const vec: RecordMapping = { features: [{ field: 'v', type: 'vector', length: 3 }], target: { field: 'y', type: 'number' } };
  it.each([
    [AGE, { label: 1 }, 'missing field', "record 1042: feature 'age' is missing"],
    [AGE, { age: 3 }, 'missing field', "record 1042: target 'label' is missing"],
    [AGE, { age: 'abc', label: 1 }, 'wrong type', 'record 1042: feature \'age\' must be a finite number (got "abc")'],
    [AGE, { age: '12abc', label: 1 }, 'wrong type', 'record 1042: feature \'age\' must be a finite number (got "12abc")'],
    [AGE, { age: '', label: 1 }, 'wrong type', 'record 1042: feature \'age\' must be a finite number (got "")'],
    [AGE, { age: '0x1F', label: 1 }, 'wrong type', 'record 1042: feature \'age\' must be a finite number (got "0x1F")'],
    [AGE, { age: null, label: 1 }, 'wrong type', "record 1042: feature 'age' must be a finite number (got null)"],
    [AGE, { age: true, label: 1 }, 'wrong type', "record 1042: feature 'age' must be a finite number (got true)"],
    [AGE, { age: 'NaN', label: 1 }, 'non-finite number', 'record 1042: feature \'age\' must be a finite number (got "NaN")'],
    [AGE, { age: '1e999', label: 1 }, 'non-finite number', 'record 1042: feature \'age\' must be a finite number (got "1e999")'],
    [AGE, { age: Number.POSITIVE_INFINITY, label: 1 }, 'non-finite number', "record 1042: feature 'age' must be a finite number (got Infinity)"],
    [AGE, { age: 1, label: 3 }, 'class out of range', "record 1042: target 'label' must be an integer class in [0, 3) (got 3)"],
    [AGE, { age: 1, label: -1 }, 'class out of range', "record 1042: target 'label' must be an integer class in [0, 3) (got -1)"],
    [AGE, { age: 1, label: 1.5 }, 'class out of range', "record 1042: target 'label' must be an integer class in [0, 3) (got 1.5)"],
    [AGE, { age: 1, label: 'one' }, 'wrong type', 'record 1042: target \'label\' must be an integer class in [0, 3) (got "one")'],
    [onehot, { c: 'z', y: 'yes' }, 'unknown category', 'record 1042: feature \'c\' must be one of "a", "b" (got "z")'],
    [onehot, { c: ['a'], y: 'yes' }, 'wrong type', 'record 1042: feature \'c\' must be one of "a", "b" (got ["a"])'],
    [onehot, { c: 'a', y: 'maybe' }, 'unknown category', 'record 1042: target \'y\' must be one of "no", "yes" (got "maybe")'],
    [onehot, { c: 'a', y: null }, 'wrong type', 'record 1042: target \'y\' must be one of "no", "yes" (got null)'],
    [vec, { v: [1, 2], y: 0 }, 'wrong length', "record 1042: feature 'v' must have 3 values (got 2)"],
    [vec, { v: '1,2,3', y: 0 }, 'wrong type', 'record 1042: feature \'v\' must be an array of 3 numbers (got "1,2,3")'],
    [vec, { v: [1, 'x', 3], y: 0 }, 'wrong type', 'record 1042: feature \'v\'[1] must be a finite number (got "x")'],
    [vec, { v: [1, 2, null], y: 0 }, 'wrong type', "record 1042: feature 'v'[2] must be a finite number (got null)"],
    [seq, { s: [1, 2, 3, 4, 5], y: 0 }, 'wrong length', "record 1042: feature 's' must be 2 steps of 3 numbers, or 6 numbers flat (got 5 values)"],
    [seq, { s: [[1, 2, 3], [4, 5]], y: 0 }, 'wrong length', "record 1042: feature 's'[1] must have 3 values (got 2)"],
    [seq, { s: [[1, 2, 3], 4], y: 0 }, 'wrong type', "record 1042: feature 's'[1] must be an array of 3 numbers (got 4)"],
    [seq, { s: [[1, 2, 3], [4, 5, 'NaN']], y: 0 }, 'non-finite number', 'record 1042: feature \'s\'[1][2] must be a finite number (got "NaN")'],
    [seq, { s: 7, y: 0 }, 'wrong type', "record 1042: feature 's' must be 2 steps of 3 numbers, or 6 numbers flat (got 7)"],
  ] as [RecordMapping, unknown, string, string][])('%j: %j → %s', (m, record, reason, message) => {
    expect(failure(m, record, 1042)).toEqual({ reason, message });
  });

  it('names the record only when given its index, and treats a non-object as missing every field', () => {
    expect(failure(AGE, { age: 'x', label: 0 }).message).toBe('feature \'age\' must be a finite number (got "x")');
    expect(failure(AGE, [1, 2], 3)).toEqual({ reason: 'missing field', message: "record 3: feature 'age' is missing" });
  });
});

// Random mappings and records that fit them: what is written must equal what a plain reading of the
// record gives, whether values arrive as JSON numbers or as the strings a CSV holds.
const finite = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }).map((v) => v + 0); // no -0: String(-0) is "0"
const feature: fc.Arbitrary<FeatureSpec> = fc.oneof(
  fc.constant<FeatureSpec>({ field: '', type: 'number' }),
  fc.integer({ min: 1, max: 4 }).map((k): FeatureSpec => ({ field: '', type: 'onehot', categories: Array.from({ length: k }, (_, i) => `c${i}`) })),
  fc.integer({ min: 1, max: 6 }).map((n): FeatureSpec => ({ field: '', type: 'vector', length: n, scale: 2 })),
  fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 })).map(([l, s]): FeatureSpec => ({ field: '', type: 'sequence', length: l, size: s })),
);
const target: fc.Arbitrary<TargetSpec> = fc.oneof(
  fc.integer({ min: 2, max: 9 }).map((k): TargetSpec => ({ field: 'y', type: 'class', classes: k })),
  fc.constant<TargetSpec>({ field: 'y', type: 'class', classes: ['a', 'b', 'c'] }),
  fc.constant<TargetSpec>({ field: 'y', type: 'number' }),
  fc.integer({ min: 1, max: 4 }).map((n): TargetSpec => ({ field: 'y', type: 'vector', length: n })),
);

/** A record for the mapping and the values it must produce (reference written without the compiler). */
function caseFor(features: FeatureSpec[], t: TargetSpec): fc.Arbitrary<{ m: RecordMapping; record: Record<string, unknown>; x: number[]; y: number[] }> {
  const m: RecordMapping = { features: features.map((f, i) => ({ ...f, field: i % 2 === 0 ? `f${i}` : `nested.f${i}` })), target: t };
  const asText = fc.boolean();
  const num = fc.tuple(finite, asText).map(([v, s]) => ({ v, raw: s ? String(v) : v }));
  const feats = features.map((f) => {
    switch (f.type) {
      case 'number':
        return num.map(({ v, raw }) => ({ raw: raw as unknown, x: [v] }));
      case 'onehot':
        return fc.integer({ min: 0, max: f.categories.length - 1 }).map((k) => ({ raw: f.categories[k] as unknown, x: f.categories.map((_, j) => (j === k ? 1 : 0)) }));
      case 'vector':
        return fc.array(num, { minLength: f.length, maxLength: f.length }).map((vs) => ({ raw: vs.map((e) => e.raw) as unknown, x: vs.map((e) => e.v * 2) }));
      case 'sequence':
        return fc.tuple(fc.array(fc.array(num, { minLength: f.size, maxLength: f.size }), { minLength: f.length, maxLength: f.length }), fc.boolean()).map(([steps, flat]) => ({
          raw: (flat ? steps.flat().map((e) => e.raw) : steps.map((s) => s.map((e) => e.raw))) as unknown,
          x: steps.flat().map((e) => e.v),
        }));
    }
  });
  let y: fc.Arbitrary<{ raw: unknown; y: number[] }>;
  if (t.type === 'class') {
    const names = typeof t.classes === 'number' ? null : t.classes;
    const k = names === null ? (t.classes as number) : names.length;
    y = fc.tuple(fc.integer({ min: 0, max: k - 1 }), asText).map(([c, s]) => ({ raw: names !== null ? names[c] : s ? String(c) : c, y: [c] }));
  } else if (t.type === 'number') y = num.map(({ v, raw }) => ({ raw, y: [v] }));
  else y = fc.array(num, { minLength: t.length, maxLength: t.length }).map((vs) => ({ raw: vs.map((e) => e.raw), y: vs.map((e) => e.v) }));
  return fc.tuple(fc.tuple(...feats), y).map(([fs, yy]) => {
    const record: Record<string, unknown> = { y: yy.raw, nested: {} };
    fs.forEach((f, i) => {
      if (i % 2 === 0) record[`f${i}`] = f.raw;
      else (record.nested as Record<string, unknown>)[`f${i}`] = f.raw;
    });
    return { m, record, x: fs.flatMap((f) => f.x), y: yy.y };
  });
}

describe('compileMapping: round trip', () => {
  test.prop([fc.tuple(fc.array(feature, { minLength: 1, maxLength: 5 }), target).chain(([fs, t]) => caseFor(fs, t)), fc.integer({ min: 0, max: 3 })], { numRuns: 300 })(
    'a random valid record is written exactly as a plain reading of it gives, in any row',
    ({ m, record, x, y }, row) => {
      const got = apply(m, JSON.parse(JSON.stringify(record)), row);
      expect(got.x).toEqual(x);
      expect(got.y).toEqual(y);
    },
  );
});
