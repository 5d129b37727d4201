// Tests of src/io/safetensors.ts: golden bytes, round trips, one test per refusal rule, files on disk.

import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsError } from '../../src/errors.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  saveSafetensors,
  type TensorEntry,
  type TensorMap,
} from '../../src/io/safetensors.js';

// ---------------------------------------------------------------------------------------------
// Helpers

const enc = new TextEncoder();

/** A file from raw parts: u64 LE `headerLength` (default: the header's byte length), header, data. */
function rawFile(header: string | Uint8Array, data: Uint8Array | number = 0, headerLength?: bigint): Uint8Array {
  const h = typeof header === 'string' ? enc.encode(header) : header;
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

/** A file whose header is `header` as JSON (no padding) followed by `dataBytes` bytes. */
function fileWith(header: unknown, dataBytes = 0): Uint8Array {
  return rawFile(JSON.stringify(header), dataBytes);
}

const f32 = (shape: number[], values: number[]): TensorEntry => ({ dtype: 'F32', shape, data: Float32Array.from(values) });
const f64 = (shape: number[], values: number[]): TensorEntry => ({ dtype: 'F64', shape, data: Float64Array.from(values) });

const bytesOf = (a: Float32Array | Float64Array): number[] => Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

function refusal(fn: () => unknown): SafetensorsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    return e as SafetensorsError;
  }
  throw new Error('expected a SafetensorsError, nothing was thrown');
}

function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'streamgrad-safetensors-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

describe('encodeSafetensors: exact bytes', () => {
  it('writes {"a": F32 [2] = [1,2]} byte for byte', () => {
    const bytes = encodeSafetensors({ a: f32([2], [1, 2]) });
    const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    expect(json.length).toBe(54); // padded with 2 spaces to 56 so the data starts at byte 64
    const expected = [
      ...[56, 0, 0, 0, 0, 0, 0, 0], // u64 LE header length
      ...enc.encode(json),
      0x20, 0x20, // trailing spaces: data 8-byte aligned
      ...[0x00, 0x00, 0x80, 0x3f], // 1.0f LE
      ...[0x00, 0x00, 0x00, 0x40], // 2.0f LE
    ];
    expect(Array.from(bytes)).toEqual(expected);
    expect(bytes.length).toBe(72);
  });

  it('writes an empty map as "{}" padded to 8 bytes', () => {
    expect(Array.from(encodeSafetensors({}))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, ...enc.encode('{}      ')]);
  });

  it('writes __metadata__ first and leaves an empty metadata map out', () => {
    const json = '{"__metadata__":{"framework":"pt"}}'; // 35 bytes -> 5 spaces -> 40
    expect(Array.from(encodeSafetensors({}, { framework: 'pt' }))).toEqual([40, 0, 0, 0, 0, 0, 0, 0, ...enc.encode(`${json}     `)]);
    expect(encodeSafetensors({}, {})).toEqual(encodeSafetensors({}));
  });

  it('writes F64 little-endian, tensors in the given order, contiguous', () => {
    const bytes = encodeSafetensors({ z: f64([], [1]), a: f32([1, 1], [-2]) });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(Object.keys(header)).toEqual(['z', 'a']);
    expect(header.z).toEqual({ dtype: 'F64', shape: [], data_offsets: [0, 8] });
    expect(header.a).toEqual({ dtype: 'F32', shape: [1, 1], data_offsets: [8, 12] });
    expect(Array.from(bytes.subarray(8 + n))).toEqual([0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0xc0]);
  });

  it('writes only the bytes of a typed-array view, not its whole buffer', () => {
    const big = Float32Array.from([9, 9, 1, 2, 9]);
    const view = big.subarray(2, 4);
    expect(encodeSafetensors({ a: { dtype: 'F32', shape: [2], data: view } })).toEqual(encodeSafetensors({ a: f32([2], [1, 2]) }));
  });
});

describe('encodeSafetensors: refuses what it cannot write', () => {
  it('data length must equal the product of the shape', () => {
    expect(() => encodeSafetensors({ w: f32([2, 3], [1, 2, 3]) })).toThrow(/^<buffer>: tensor 'w': shape \[2,3\] holds 6 elements but data has 3$/);
  });
  it('dtype must match the typed array', () => {
    expect(() => encodeSafetensors({ w: { dtype: 'F32', shape: [1], data: new Float64Array(1) } })).toThrow(
      /tensor 'w': dtype F32 needs a Float32Array \(got Float64Array\)/,
    );
    expect(() => encodeSafetensors({ w: { dtype: 'F16' as 'F32', shape: [1], data: new Float32Array(1) } })).toThrow(
      /tensor 'w': dtype "F16" cannot be written \(streamgrad writes F32 and F64\)/,
    );
  });
  it('shape must be non-negative integers', () => {
    expect(() => encodeSafetensors({ w: f32([-1], []) })).toThrow(/tensor 'w': shape must be an array of non-negative integers \(got \[-1\]\)/);
  });
  it('__metadata__ cannot name a tensor, metadata values must be strings', () => {
    expect(() => encodeSafetensors({ __metadata__: f32([], [1]) })).toThrow(/'__metadata__' is reserved/);
    expect(() => encodeSafetensors({}, { epoch: 3 as unknown as string })).toThrow(/__metadata__ values must be strings \(key "epoch" has 3\)/);
  });
});

describe('round trip', () => {
  const nameArb = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.string({ unit: 'binary', maxLength: 6 }),
    fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => `lone${String.fromCharCode(c)}`),
    fc.constantFrom('0', '10', '__proto__', 'constructor', 'layer.0.weight', ''),
  ).filter((s) => s !== '__metadata__');
  const entryArb = fc
    .record({ dtype: fc.constantFrom('F32' as const, 'F64' as const), shape: fc.array(fc.nat(4), { maxLength: 4 }) })
    .chain(({ dtype, shape }) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const size = dtype === 'F32' ? 4 : 8;
      // Random bytes cover every bit pattern: NaN payloads, -0, infinities, subnormals.
      return fc.uint8Array({ minLength: n * size, maxLength: n * size }).map((raw): TensorEntry => ({
        dtype,
        shape,
        data: dtype === 'F32' ? new Float32Array(raw.buffer) : new Float64Array(raw.buffer),
      }));
    });
  const mapArb = fc.uniqueArray(fc.tuple(nameArb, entryArb), { selector: ([name]) => name, maxLength: 6 }).map((pairs) => {
    const m: TensorMap = {};
    for (const [name, e] of pairs) Object.defineProperty(m, name, { value: e, enumerable: true, writable: true, configurable: true });
    return m;
  });
  const metaArb = fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }), { nil: undefined });

  it('decode(encode(x)) = x for random F32/F64 maps, shapes (incl. [] and zero-size) and metadata', () => {
    fc.assert(
      fc.property(mapArb, metaArb, (tensors, metadata) => {
        const bytes = encodeSafetensors(tensors, metadata);
        const back = decodeSafetensors(bytes);
        expect(Object.keys(back.tensors)).toEqual(Object.keys(tensors));
        for (const name of Object.keys(tensors)) {
          const a = tensors[name]!;
          const b = back.tensors[name]!;
          expect(Object.hasOwn(back.tensors, name)).toBe(true);
          expect(b.dtype).toBe(a.dtype);
          expect(b.shape).toEqual(a.shape);
          expect(b.data).toBeInstanceOf(a.dtype === 'F32' ? Float32Array : Float64Array);
          expect(bytesOf(b.data)).toEqual(bytesOf(a.data));
        }
        expect(back.metadata).toEqual(metadata ?? {});
        // Canonical: re-encoding what was decoded gives the same bytes.
        expect(encodeSafetensors(back.tensors, back.metadata)).toEqual(bytes);
      }),
      { numRuns: 200 },
    );
  });

  it('decodes a reference-style file (metadata first, F64 before F32, padded header)', () => {
    const header =
      '{"__metadata__":{"format":"pt"},"b":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[1,2],"data_offsets":[16,24]}}';
    const padded = header + ' '.repeat((8 - (header.length % 8)) % 8);
    const data = new Uint8Array(24);
    new Float64Array(data.buffer, 0, 2).set([0.5, -3]);
    new Float32Array(data.buffer, 16, 2).set([7, 8]);
    const { tensors, metadata } = decodeSafetensors(rawFile(padded, data));
    expect(metadata).toEqual({ format: 'pt' });
    expect(Object.keys(tensors)).toEqual(['b', 'a']);
    expect(Array.from(tensors.b!.data)).toEqual([0.5, -3]);
    expect(tensors.a).toEqual({ dtype: 'F32', shape: [1, 2], data: Float32Array.from([7, 8]) });
  });

  it('returns tensors in data order, whatever the header order', () => {
    const h = { y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] }, x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } };
    expect(Object.keys(decodeSafetensors(fileWith(h, 8)).tensors)).toEqual(['x', 'y']);
  });

  it('aligned tensors are views into the input; unaligned ones are copies with the right values', () => {
    const aligned = encodeSafetensors({ a: f32([2], [1, 2]), b: f64([1], [3]) });
    const got = decodeSafetensors(aligned).tensors;
    expect(got.a!.data.buffer).toBe(aligned.buffer);
    expect(got.b!.data.buffer).toBe(aligned.buffer);

    // A 58-byte header puts the data at byte 66: not a multiple of 4.
    const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const data = new Uint8Array(new Float32Array([1.5, -2.5]).buffer);
    const unaligned = rawFile(json + ' '.repeat(58 - json.length), data);
    const t = decodeSafetensors(unaligned).tensors.a!;
    expect(t.data.buffer).not.toBe(unaligned.buffer);
    expect(Array.from(t.data)).toEqual([1.5, -2.5]);

    // The input itself at an odd byteOffset: the same rule applies to the absolute address.
    const shifted = new Uint8Array(aligned.length + 1);
    shifted.set(aligned, 1);
    const view = shifted.subarray(1);
    const s = decodeSafetensors(view).tensors;
    expect(Array.from(s.a!.data)).toEqual([1, 2]);
    expect(Array.from(s.b!.data)).toEqual([3]);
    expect(s.a!.data.buffer).not.toBe(shifted.buffer);
  });

  it('accepts zero-size tensors sharing an offset and an empty file of tensors', () => {
    const h = {
      e: { dtype: 'F32', shape: [0, 3], data_offsets: [4, 4] },
      s: { dtype: 'F32', shape: [], data_offsets: [0, 4] },
      z: { dtype: 'F64', shape: [2, 0], data_offsets: [4, 4] },
    };
    const t = decodeSafetensors(fileWith(h, 4)).tensors;
    expect(Object.keys(t)).toEqual(['s', 'e', 'z']);
    expect(t.e!.data.length).toBe(0);
    expect(t.z!.shape).toEqual([2, 0]);
    expect(decodeSafetensors(fileWith({}))).toEqual({ tensors: {}, metadata: {} });
  });
});

describe('decodeSafetensors: refuses a bad file, naming file, tensor and rule', () => {
  const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };

  it('names the source given, and exposes file/tensor/rule on the error', () => {
    const e = refusal(() => decodeSafetensors(fileWith({ w: { ...ok, dtype: 'X' } }, 8), 'model.safetensors'));
    expect(e.file).toBe('model.safetensors');
    expect(e.tensor).toBe('w');
    expect(e.rule).toMatch(/^dtype "X" is unknown/);
    expect(e.message).toMatch(/^model\.safetensors: tensor 'w': dtype "X" is unknown/);
  });

  it('file shorter than 8 bytes', () => {
    expect(() => decodeSafetensors(new Uint8Array(5))).toThrow(/^<buffer>: file is 5 bytes, shorter than the 8-byte header length/);
    expect(() => decodeSafetensors(new Uint8Array(0), 'empty.st')).toThrow(/^empty\.st: file is 0 bytes/);
  });

  it('header length absurd (> 100 MB, the reference limit)', () => {
    expect(() => decodeSafetensors(rawFile('{}', 0, 100_000_001n))).toThrow(/header length 100000001 is absurd: the format allows at most 100000000 bytes \(100 MB\)/);
    expect(() => decodeSafetensors(rawFile('{}', 0, 2n ** 64n - 1n))).toThrow(/header length 18446744073709551615 is absurd/);
  });

  it('header length past the end of the file', () => {
    const bytes = rawFile('x'.repeat(112), 0, 1_000_000n);
    expect(bytes.length).toBe(120);
    expect(() => decodeSafetensors(bytes)).toThrow(/^<buffer>: header length 1000000 runs past the end of the file \(file is 120 bytes\)$/);
    expect(() => decodeSafetensors(rawFile('{}', 0, 3n))).toThrow(/header length 3 runs past the end of the file \(file is 10 bytes\)/);
  });

  it('header not valid UTF-8', () => {
    expect(() => decodeSafetensors(rawFile(new Uint8Array([0x7b, 0xff, 0x7d])))).toThrow(/header \(bytes 8 to 11\) is not valid UTF-8/);
  });

  it('header not valid JSON (including an empty header)', () => {
    expect(() => decodeSafetensors(rawFile('{"a":'))).toThrow(/^<buffer>: header is not valid JSON \(/);
    expect(() => decodeSafetensors(rawFile(''))).toThrow(/header is not valid JSON/);
    expect(() => decodeSafetensors(rawFile('{}\u0000\u0000'))).toThrow(/header is not valid JSON/);
  });

  it('header not a JSON object', () => {
    expect(() => decodeSafetensors(rawFile('[1,2]'))).toThrow(/header must be a JSON object mapping tensor names to entries \(got an array\)/);
    expect(() => decodeSafetensors(rawFile('"hi"'))).toThrow(/header must be a JSON object .*\(got a string\)/);
    expect(() => decodeSafetensors(rawFile('null'))).toThrow(/\(got null\)/);
  });

  it("header must start with '{'", () => {
    expect(() => decodeSafetensors(rawFile(' {}     '))).toThrow(/header must start with '\{' \(got " "\)/);
    expect(() => decodeSafetensors(rawFile('\n{}'))).toThrow(/header must start with '\{' \(got "\\n"\)/);
  });

  it('entry not an object', () => {
    expect(() => decodeSafetensors(fileWith({ a: 3 }))).toThrow(/tensor 'a': entry must be an object with keys dtype, shape, data_offsets \(got a number\)/);
    expect(() => decodeSafetensors(fileWith({ a: [1] }))).toThrow(/tensor 'a': entry must be an object .*\(got an array\)/);
  });

  it('entry with a missing key', () => {
    expect(() => decodeSafetensors(fileWith({ a: { dtype: 'F32', shape: [0] } }))).toThrow(/tensor 'a': entry is missing key 'data_offsets'/);
  });

  it('entry with an extra key', () => {
    expect(() => decodeSafetensors(fileWith({ a: { ...ok, strides: [1] } }, 8))).toThrow(/tensor 'a': entry has unexpected key "strides"/);
  });

  it('dtype unknown, listing the known ones', () => {
    expect(() => decodeSafetensors(fileWith({ a: { ...ok, dtype: 'F128' } }, 8))).toThrow(
      /tensor 'a': dtype "F128" is unknown \(known safetensors dtypes: BOOL .*F16 BF16 .*F32 .*F64 I64 U64\)/,
    );
    expect(() => decodeSafetensors(fileWith({ a: { ...ok, dtype: 32 } }, 8))).toThrow(/tensor 'a': dtype 32 is unknown/);
    expect(() => decodeSafetensors(fileWith({ a: { ...ok, dtype: 'f32' } }, 8))).toThrow(/dtype "f32" is unknown/);
  });

  it('dtype known but not loadable: F16, BF16, I32, BOOL, F4 (after the file itself checks out)', () => {
    const cases: [string, number[], number][] = [['F16', [2], 4], ['BF16', [3], 6], ['I32', [1], 4], ['BOOL', [5], 5], ['F4', [2], 1], ['F8_E4M3', [1], 1]];
    for (const [dtype, shape, nbytes] of cases) {
      const bytes = fileWith({ h: { dtype, shape, data_offsets: [0, nbytes] } }, nbytes);
      expect(() => decodeSafetensors(bytes, 'llm.safetensors')).toThrow(
        new RegExp(`^llm\\.safetensors: tensor 'h': dtype ${dtype} is not supported \\(streamgrad loads F32, F64, and I64 as F64\\)$`),
      );
    }
  });

  it('I64 (PyTorch\'s num_batches_tracked) loads as F64, aligned or not, and a value past 2^53 is refused', () => {
    for (const pad of [0, 4]) {
      const bytes = fileWith({ ...(pad === 0 ? {} : { p: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }), n: { dtype: 'I64', shape: [2], data_offsets: [pad, pad + 16] } }, pad + 16);
      const view = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 16, 16);
      view.setBigInt64(0, 42n, true);
      view.setBigInt64(8, -(2n ** 53n), true);
      const n = decodeSafetensors(bytes).tensors.n!;
      expect(n.dtype).toBe('F64');
      expect(Array.from(n.data)).toEqual([42, -(2 ** 53)]);
      view.setBigInt64(8, 2n ** 53n + 1n, true);
      expect(() => decodeSafetensors(bytes, 'bn.safetensors')).toThrow("bn.safetensors: tensor 'n': I64 value at index 1 does not fit a float64 exactly (|v| > 2^53)");
    }
  });

  it('shape not an array of non-negative integers', () => {
    for (const shape of [[-1], [1.5], '2', [null], [1e20], 4]) {
      expect(() => decodeSafetensors(fileWith({ a: { ...ok, shape } }, 8))).toThrow(/tensor 'a': shape must be an array of non-negative integers \(got /);
    }
  });

  it('data_offsets not two integers with begin <= end', () => {
    for (const data_offsets of [[0], [0, 8, 8], [0, '8'], [-1, 7], [0.5, 8], 'x', null]) {
      expect(() => decodeSafetensors(fileWith({ a: { ...ok, data_offsets } }, 8))).toThrow(
        /tensor 'a': data_offsets must be two non-negative integers \[begin, end\] \(got /,
      );
    }
    expect(() => decodeSafetensors(fileWith({ a: { ...ok, data_offsets: [8, 0] } }, 8))).toThrow(/tensor 'a': data_offsets \[8,0\] must have begin <= end/);
  });

  it('byte length (end - begin) differs from product(shape) * itemsize', () => {
    expect(() => decodeSafetensors(fileWith({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, 20))).toThrow(
      /tensor 'w': dtype F32 with shape \[2,3\] needs 24 bytes but data_offsets \[0,20\] span 20 bytes/,
    );
    expect(() => decodeSafetensors(fileWith({ w: { dtype: 'F64', shape: [], data_offsets: [0, 4] } }, 4))).toThrow(/dtype F64 with shape \[\] needs 8 bytes but data_offsets \[0,4\] span 4/);
  });

  it('sub-byte dtype with an odd number of bits', () => {
    expect(() => decodeSafetensors(fileWith({ q: { dtype: 'F4', shape: [3], data_offsets: [0, 2] } }, 2))).toThrow(
      /tensor 'q': dtype F4 with shape \[3\] is 12 bits, not a whole number of bytes/,
    );
  });

  it('offsets that overlap', () => {
    const h = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } };
    expect(() => decodeSafetensors(fileWith(h, 12))).toThrow(/tensor 'b': data_offsets \[4,12\] overlap tensor 'a' \(data_offsets \[0,8\]\)/);
    const same = { a: ok, b: ok };
    expect(() => decodeSafetensors(fileWith(same, 8))).toThrow(/tensor 'b': data_offsets \[0,8\] overlap tensor 'a'/);
  });

  it('offsets that leave a gap (between tensors, or before the first)', () => {
    const h = { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };
    expect(() => decodeSafetensors(fileWith(h, 12))).toThrow(/tensor 'b': data_offsets \[8,12\] leave a gap: bytes \[4,8\) of the data buffer belong to no tensor/);
    expect(() => decodeSafetensors(fileWith({ a: { ...ok, data_offsets: [4, 12] } }, 12))).toThrow(/tensor 'a': .*leave a gap: bytes \[0,4\)/);
  });

  it('buffer ends before the last tensor', () => {
    expect(() => decodeSafetensors(fileWith({ a: ok }, 6), 'cut.safetensors')).toThrow(
      /^cut\.safetensors: tensor 'a': data_offsets \[0,8\] run past the end of the data buffer \(the buffer after the header is 6 bytes\)$/,
    );
  });

  it('trailing bytes beyond the last tensor', () => {
    expect(() => decodeSafetensors(fileWith({ a: ok }, 11))).toThrow(
      /^<buffer>: data buffer has 3 trailing bytes after the last tensor \(tensors end at byte 8, the buffer after the header is 11 bytes\)$/,
    );
    expect(() => decodeSafetensors(fileWith({}, 1))).toThrow(/data buffer has 1 trailing bytes/);
  });

  it('__metadata__ not a string -> string map', () => {
    expect(() => decodeSafetensors(fileWith({ __metadata__: ['a'] }))).toThrow(/^<buffer>: __metadata__ must be an object mapping strings to strings \(got an array\)/);
    expect(() => decodeSafetensors(fileWith({ __metadata__: null }))).toThrow(/__metadata__ must be an object .*\(got null\)/);
    expect(() => decodeSafetensors(fileWith({ __metadata__: { epoch: 3 } }))).toThrow(/__metadata__ must map strings to strings \(key "epoch" has a number 3\)/);
  });

  it('refuses a header claiming a huge shape quickly, without allocating it', () => {
    const h = { big: { dtype: 'F32', shape: [1e12, 1e12], data_offsets: [0, 8] } };
    const t0 = performance.now();
    expect(() => decodeSafetensors(fileWith(h, 8))).toThrow(
      /tensor 'big': dtype F32 with shape \[1000000000000,1000000000000\] needs 4000000000000000000000000 bytes but data_offsets \[0,8\] span 8 bytes/,
    );
    // Offsets that claim the huge size are refused too, before anything is read at them.
    const h2 = { big: { dtype: 'F64', shape: [2 ** 40, 2 ** 10], data_offsets: [0, 2 ** 53] } };
    expect(() => decodeSafetensors(fileWith(h2, 8))).toThrow(/tensor 'big': data_offsets must be two non-negative integers \[begin, end\] \(got \[0,9007199254740992\]; integers above 2\^53-1 cannot be represented exactly\)/);
    const h3 = { big: { dtype: 'F64', shape: [2 ** 40, 2 ** 9], data_offsets: [0, 2 ** 52] } };
    expect(() => decodeSafetensors(fileWith(h3, 8))).toThrow(/tensor 'big': data_offsets \[0,4503599627370496\] run past the end of the data buffer/);
    expect(performance.now() - t0).toBeLessThan(200);
  });
});

describe('saveSafetensors / loadSafetensors', () => {
  const tensors: TensorMap = {
    '0.weight': f32([2, 3], [1, 2, 3, 4, 5, 6]),
    '0.bias': f32([2], [0.5, -0.5]),
    scale: f64([], [Math.PI]),
    empty: f32([0, 3], []),
  };

  it('round-trips through a file, leaves no .tmp- file, and loads into one buffer of the file size', () => {
    withTempDir((dir) => {
      const path = join(dir, 'model.safetensors');
      saveSafetensors(path, tensors, { epoch: '3' });
      expect(readdirSync(dir)).toEqual(['model.safetensors']);
      expect(new Uint8Array(readFileSync(path))).toEqual(encodeSafetensors(tensors, { epoch: '3' }));

      const { tensors: back, metadata } = loadSafetensors(path);
      expect(metadata).toEqual({ epoch: '3' });
      expect(Object.keys(back)).toEqual(Object.keys(tensors));
      for (const [name, t] of Object.entries(tensors)) expect(back[name]).toEqual(t);
      const size = statSync(path).size;
      for (const t of Object.values(back)) expect(t.data.buffer.byteLength).toBe(size);
      expect(new Set(Object.values(back).map((t) => t.data.buffer)).size).toBe(1);
    });
  });

  it('replaces an existing file atomically, and a refused save leaves the old file and no temp file', () => {
    withTempDir((dir) => {
      const path = join(dir, 'w.safetensors');
      saveSafetensors(path, { a: f32([1], [1]) });
      saveSafetensors(path, { a: f32([1], [2]) });
      expect(Array.from(loadSafetensors(path).tensors.a!.data)).toEqual([2]);
      expect(() => saveSafetensors(path, { a: f32([3], [1]) })).toThrow(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: tensor 'a': shape \\[3\\] holds 3 elements but data has 1$`));
      expect(readdirSync(dir)).toEqual(['w.safetensors']);
      expect(Array.from(loadSafetensors(path).tensors.a!.data)).toEqual([2]);
    });
  });

  it('refuses a bad file naming its path; a huge claimed shape is refused before any tensor exists', () => {
    withTempDir((dir) => {
      const path = join(dir, 'bad.safetensors');
      writeFileSync(path, fileWith({ big: { dtype: 'F32', shape: [1e12, 1e12], data_offsets: [0, 8] } }, 8));
      const t0 = performance.now();
      const e = refusal(() => loadSafetensors(path));
      expect(performance.now() - t0).toBeLessThan(200);
      expect(e.file).toBe(path);
      expect(e.tensor).toBe('big');
      expect(e.message).toContain(`${path}: tensor 'big': dtype F32 with shape [1000000000000,1000000000000] needs`);

      writeFileSync(path, new Uint8Array(3));
      expect(() => loadSafetensors(path)).toThrow(/bad\.safetensors: file is 3 bytes, shorter than the 8-byte header length/);
    });
  });

  it('a missing file is a plain ENOENT from node:fs', () => {
    expect(() => loadSafetensors(join(tmpdir(), 'streamgrad-no-such-file.safetensors'))).toThrow(/ENOENT/);
  });
});

// The cross-check with Python (the safetensors package, PyTorch) lives in test/io/pytorch.test.ts.
