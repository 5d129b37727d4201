// safetensors read/write: encode/decode on bytes (checking every rule of the format) and atomic save/load on files.
//
// Layout (Hugging Face spec): [u64 LE header length N][N bytes UTF-8 JSON header][data buffer].
// The header maps tensor name -> {"dtype","shape","data_offsets":[begin,end]} (offsets relative to
// the data buffer) plus an optional "__metadata__": {string: string}. Tensors are little-endian,
// row-major, and tile the data buffer exactly.
//
// Endianness: tensor bytes are copied to/from typed arrays as-is, i.e. in host byte order. Every
// host Node runs on here is little-endian, which is what the format requires; a big-endian host
// would need a byte swap on both paths (not supported).

import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { SafetensorsError, fmtShape, fmtValue } from '../errors.js';

export type SafetensorsDType = 'F32' | 'F64';
export interface TensorEntry {
  dtype: SafetensorsDType;
  shape: number[];
  data: Float32Array | Float64Array;
}
/** Tensor name -> entry; insertion order = order written (JS puts integer-like keys first). */
export type TensorMap = Record<string, TensorEntry>;
export interface SafetensorsContents {
  tensors: TensorMap;
  metadata: Record<string, string>;
}

/** The reference implementation refuses headers above 100 MB; so do we, before decoding them. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
const ENTRY_KEYS = ['dtype', 'shape', 'data_offsets'] as const;

/**
 * Every dtype name of the safetensors spec, with its size in bits (F4 and F6 are sub-byte).
 * We recognise all of them so an F16 file gets "not supported" rather than "unknown".
 */
const DTYPE_BITS: Readonly<Record<string, number>> = {
  BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8,
  I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, C64: 64, F64: 64, I64: 64, U64: 64,
};
const KNOWN_DTYPES = Object.keys(DTYPE_BITS).join(' ');
const ITEM_SIZE: Record<SafetensorsDType, number> = { F32: 4, F64: 8 };

// ---------------------------------------------------------------------------------------------
// Writing

interface Prepared {
  /** 8-byte length prefix + JSON header padded with spaces so the data starts 8-byte aligned. */
  head: Uint8Array;
  /** Each tensor's bytes (views, no copy), in the order written. */
  parts: Uint8Array[];
  dataBytes: number;
}

/** Checks the tensors and builds the header; tensor bytes stay views so save can stream them. */
function prepare(target: string, tensors: TensorMap, metadata: Record<string, string> | undefined): Prepared {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    const meta: Record<string, string> = {};
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new SafetensorsError(target, null, `${METADATA_KEY} values must be strings (key ${fmtValue(k)} has ${fmtValue(v)})`);
      }
      setOwn(meta, k, v);
    }
    // An empty map is left out, so encode(t) and encode(t, {}) give the same bytes.
    if (Object.keys(meta).length > 0) setOwn(header, METADATA_KEY, meta);
  }
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (name === METADATA_KEY) throw new SafetensorsError(target, name, `'${METADATA_KEY}' is reserved for metadata and cannot name a tensor`);
    const { dtype, shape, data } = t;
    if (dtype !== 'F32' && dtype !== 'F64') {
      throw new SafetensorsError(target, name, `dtype ${fmtValue(dtype)} cannot be written (streamgrad writes F32 and F64)`);
    }
    const want = dtype === 'F32' ? Float32Array : Float64Array;
    if (!(data instanceof want)) {
      throw new SafetensorsError(target, name, `dtype ${dtype} needs a ${want.name} (got ${describeData(data)})`);
    }
    if (!isShape(shape)) {
      throw new SafetensorsError(target, name, `shape must be an array of non-negative integers (got ${fmtValue(shape)})`);
    }
    const numel = shapeNumel(shape);
    if (numel !== BigInt(data.length)) {
      throw new SafetensorsError(target, name, `shape ${fmtShape(shape)} holds ${numel} elements but data has ${data.length}`);
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    setOwn(header, name, { dtype, shape: [...shape], data_offsets: [offset, offset + bytes.length] });
    parts.push(bytes);
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const n = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + n).fill(0x20, 8 + json.length); // trailing spaces pad the JSON
  new DataView(head.buffer).setBigUint64(0, BigInt(n), true);
  head.set(json, 8);
  return { head, parts, dataBytes: offset };
}

/** The bytes of a safetensors file holding `tensors` (in their order) and `metadata`. */
export function encodeSafetensors(tensors: TensorMap, metadata?: Record<string, string>): Uint8Array {
  const { head, parts, dataBytes } = prepare('<buffer>', tensors, metadata);
  const out = new Uint8Array(head.length + dataBytes);
  out.set(head, 0);
  let at = head.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Writes a safetensors file atomically: to `${path}.tmp-<pid>`, fsync, rename over `path`, fsync
 * the directory so the rename itself survives a crash. Readers see the old file or the new one.
 * Tensor bytes are streamed from the arrays, so the whole file is never held in memory twice.
 */
export function saveSafetensors(path: string, tensors: TensorMap, metadata?: Record<string, string>): void {
  const { head, parts } = prepare(path, tensors, metadata);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, head);
    for (const p of parts) writeAll(fd, p);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    tryUnlink(tmp);
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    tryUnlink(tmp);
    throw e;
  }
  fsyncDir(dirname(path));
}

// ---------------------------------------------------------------------------------------------
// Reading

interface Checked {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses and validates a safetensors file held in `bytes`. Every rule of the format is checked
 * before any tensor is created; a bad file throws SafetensorsError(source, tensor|null, rule).
 * Tensors are views into `bytes` (mutating them mutates `bytes`) when their offset is aligned to
 * the item size; an unaligned tensor alone is copied into a fresh array.
 */
export function decodeSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsContents {
  // Typed as a declared never-returning function so TypeScript narrows after each check.
  const fail: (rule: string, tensor?: string | null) => never = (rule, tensor = null) => {
    throw new SafetensorsError(source, tensor, rule);
  };
  const len = bytes.length;
  if (len < 8) fail(`file is ${len} bytes, shorter than the 8-byte header length that starts every safetensors file`);

  // The length is a u64: read it as a BigInt so a garbage value cannot round or overflow.
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${n64} is absurd: the format allows at most ${MAX_HEADER_BYTES} bytes (100 MB)`);
  }
  const n = Number(n64);
  if (8 + n > len) fail(`header length ${n} runs past the end of the file (file is ${len} bytes)`);
  const dataStart = 8 + n;
  const bufferLength = len - dataStart;

  let text = '';
  try {
    // fatal: refuse bad UTF-8 instead of inserting U+FFFD; ignoreBOM: keep a BOM so it is refused.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    fail(`header (bytes 8 to ${dataStart}) is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) {
    fail(`header must be a JSON object mapping tensor names to entries (got ${jsonKind(header)})`);
  }
  // Checked after parsing so " {}" (valid JSON, but not how any writer starts) gets its own message.
  if (text[0] !== '{') fail(`header must start with '{' (got ${JSON.stringify(text.slice(0, 1))})`);
  const obj = header;

  const metadata: Record<string, string> = {};
  if (Object.hasOwn(obj, METADATA_KEY)) {
    const meta = obj[METADATA_KEY];
    if (!isPlainObject(meta)) fail(`${METADATA_KEY} must be an object mapping strings to strings (got ${jsonKind(meta)})`);
    for (const [k, v] of Object.entries(meta)) {
      if (typeof v !== 'string') {
        fail(`${METADATA_KEY} must map strings to strings (key ${JSON.stringify(k)} has ${jsonKind(v)} ${fmtValue(v)})`);
      }
      setOwn(metadata, k, v);
    }
  }

  // 1. Each entry on its own: keys, dtype, shape, offsets, and that the offsets span exactly the
  //    bytes the shape needs. The product is a BigInt, so [1e12,1e12] is refused here, exactly,
  //    without allocating anything.
  const entries: Checked[] = [];
  for (const [name, value] of Object.entries(obj)) {
    if (name === METADATA_KEY) continue;
    const bad: (rule: string) => never = (rule) => fail(rule, name);
    if (!isPlainObject(value)) bad(`entry must be an object with keys dtype, shape, data_offsets (got ${jsonKind(value)})`);
    const e = value;
    for (const k of ENTRY_KEYS) if (!Object.hasOwn(e, k)) bad(`entry is missing key '${k}' (an entry has keys dtype, shape, data_offsets)`);
    for (const k of Object.keys(e)) {
      if (!(ENTRY_KEYS as readonly string[]).includes(k)) bad(`entry has unexpected key ${JSON.stringify(k)} (an entry has keys dtype, shape, data_offsets)`);
    }
    const { dtype, shape, data_offsets: offsets } = e;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BITS, dtype)) {
      bad(`dtype ${fmtValue(dtype)} is unknown (known safetensors dtypes: ${KNOWN_DTYPES})`);
    }
    if (!isShape(shape)) bad(`shape must be an array of non-negative integers (got ${fmtValue(shape)}${tooBigNote(shape)})`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
      bad(`data_offsets must be two non-negative integers [begin, end] (got ${fmtValue(offsets)}${tooBigNote(offsets)})`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) bad(`data_offsets [${begin},${end}] must have begin <= end`);
    const bits = shapeNumel(shape) * BigInt(DTYPE_BITS[dtype]!);
    if (bits % 8n !== 0n) bad(`dtype ${dtype} with shape ${fmtShape(shape)} is ${bits} bits, not a whole number of bytes`);
    if (bits / 8n !== BigInt(end - begin)) {
      bad(`dtype ${dtype} with shape ${fmtShape(shape)} needs ${bits / 8n} bytes but data_offsets [${begin},${end}] span ${end - begin} bytes`);
    }
    entries.push({ name, dtype, shape, begin, end });
  }

  // 2. Together: sorted by offset, the tensors must tile [0, bufferLength) with no gap, no overlap,
  //    nothing past the end and nothing after the last tensor (the reference implementation's check).
  //    A stable sort keeps header order among zero-size tensors sharing an offset.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: Checked | null = null;
  for (const t of byOffset) {
    const span = `data_offsets [${t.begin},${t.end}]`;
    if (t.begin < at) fail(`${span} overlap tensor '${prev!.name}' (data_offsets [${prev!.begin},${prev!.end}]); tensors must not share bytes`, t.name);
    if (t.begin > at) fail(`${span} leave a gap: bytes [${at},${t.begin}) of the data buffer belong to no tensor`, t.name);
    if (t.end > bufferLength) fail(`${span} run past the end of the data buffer (the buffer after the header is ${bufferLength} bytes)`, t.name);
    at = t.end;
    prev = t;
  }
  if (at !== bufferLength) {
    fail(`data buffer has ${bufferLength - at} trailing bytes after the last tensor (tensors end at byte ${at}, the buffer after the header is ${bufferLength} bytes)`);
  }

  // 3. A valid file may still hold dtypes we cannot compute with: say so by name. I64 is read as F64
  // (a copy of that tensor), because PyTorch stores BatchNorm's num_batches_tracked as int64.
  for (const t of entries) {
    if (t.dtype !== 'F32' && t.dtype !== 'F64' && t.dtype !== 'I64') fail(`dtype ${t.dtype} is not supported (streamgrad loads F32, F64, and I64 as F64)`, t.name);
  }

  // 4. Only now create tensors, in file (offset) order = the order they were written.
  const tensors: TensorMap = {};
  for (const t of byOffset) {
    if (t.dtype === 'I64') {
      setOwn<TensorEntry>(tensors, t.name, { dtype: 'F64', shape: t.shape, data: int64AsFloat64(bytes, dataStart + t.begin, (t.end - t.begin) / 8, (i) => fail(`I64 value at index ${i} does not fit a float64 exactly (|v| > 2^53)`, t.name)) });
      continue;
    }
    const dtype = t.dtype as SafetensorsDType;
    const size = ITEM_SIZE[dtype];
    const abs = bytes.byteOffset + dataStart + t.begin;
    const count = (t.end - t.begin) / size;
    let data: Float32Array | Float64Array;
    if (abs % size === 0) {
      data = dtype === 'F32' ? new Float32Array(bytes.buffer, abs, count) : new Float64Array(bytes.buffer, abs, count);
    } else {
      // Typed arrays must be aligned to their item size: copy this tensor alone.
      data = dtype === 'F32' ? new Float32Array(count) : new Float64Array(count);
      new Uint8Array(data.buffer).set(bytes.subarray(dataStart + t.begin, dataStart + t.end));
    }
    setOwn(tensors, t.name, { dtype, shape: t.shape, data });
  }
  return { tensors, metadata };
}

/**
 * Little-endian int64 values as a new float64 array (the caller's bytes stay as they are); a value
 * beyond ±2^53 would change, so it is refused.
 */
function int64AsFloat64(bytes: Uint8Array, at: number, count: number, tooBig: (i: number) => never): Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, count * 8);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const v = view.getBigInt64(i * 8, true);
    if (v > 9007199254740992n || v < -9007199254740992n) tooBig(i);
    out[i] = Number(v);
  }
  return out;
}

/**
 * Reads a safetensors file into ONE buffer of exactly the file's size (fstat), then decodes it;
 * tensors are views into that buffer, so loading never allocates more than the file's size
 * (plus a copy of any tensor whose offset is not aligned to its item size).
 */
export function loadSafetensors(path: string): SafetensorsContents {
  const fd = openSync(path, 'r');
  let buf: Uint8Array;
  try {
    const size = fstatSync(fd).size;
    buf = new Uint8Array(size); // never Buffer.allocUnsafe: its pool would share and misalign the memory
    let off = 0;
    while (off < size) {
      // readSync takes at most ~2 GiB per call: read in 1 GiB chunks.
      const got = readSync(fd, buf, off, Math.min(size - off, 1 << 30), off);
      if (got === 0) throw new SafetensorsError(path, null, `file shrank while being read (fstat said ${size} bytes, read ${off})`);
      off += got;
    }
  } finally {
    closeSync(fd);
  }
  return decodeSafetensors(buf, path);
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** A non-negative integer that a JS number holds exactly (the format's usize, within 2^53). */
function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** For an integer a JS number cannot hold exactly, say why it was refused. */
function tooBigNote(v: unknown): string {
  const big = Array.isArray(v) && v.some((x) => Number.isInteger(x) && !Number.isSafeInteger(x));
  return big ? '; integers above 2^53-1 cannot be represented exactly' : '';
}

function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.every(isIndex);
}

/** Exact element count: a BigInt, so a shape's product can never overflow or round. */
function shapeNumel(shape: readonly number[]): bigint {
  let p = 1n;
  for (const d of shape) p *= BigInt(d);
  return p;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What a JSON value is, for messages: "an array", "a string", "null". */
function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

function describeData(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'an object';
  return `a ${typeof v}`;
}

/** Defines an own enumerable property, so a tensor named "__proto__" is data, not a prototype. */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, Math.min(bytes.length - off, 1 << 30));
}

function tryUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone: nothing to clean up
  }
}

/** fsync a directory so a rename or a new entry in it is durable; some platforms cannot, which is not an error. */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw e;
  } finally {
    closeSync(fd);
  }
}
