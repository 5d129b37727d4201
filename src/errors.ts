// Every error class of streamgrad, and the helpers that format values inside messages.

/** Base class: catch this to catch anything streamgrad throws on purpose. */
export class StreamgradError extends Error {
  override name = 'StreamgradError';
}

/** A tensor shape that does not fit the operation (message names the op and both shapes). */
export class ShapeError extends StreamgradError {
  override name = 'ShapeError';
}

/** Tensors of different dtypes mixed in one operation, or an unsupported dtype. */
export class DTypeError extends StreamgradError {
  override name = 'DTypeError';
}

/** A bad argument or option value: non-finite, out of range, wrong type. */
export class ValueError extends StreamgradError {
  override name = 'ValueError';
}

/** A state dict that does not match a module: missing or extra keys, wrong shapes. */
export class StateDictError extends StreamgradError {
  override name = 'StateDictError';
}

/** A safetensors file (or buffer) that breaks a rule of the format. */
export class SafetensorsError extends StreamgradError {
  override name = 'SafetensorsError';
  constructor(
    readonly file: string,
    readonly tensor: string | null,
    readonly rule: string,
  ) {
    super(`${file}: ${tensor === null ? '' : `tensor '${tensor}': `}${rule}`);
  }
}

/**
 * A checkpoint directory (or its checkpoints folder) that breaks a rule: a missing or corrupt file, a
 * bad manifest. `file` is the file inside `dir` at fault (null when the directory itself is).
 */
export class CheckpointError extends StreamgradError {
  override name = 'CheckpointError';
  constructor(
    readonly dir: string,
    readonly file: string | null,
    readonly rule: string,
  ) {
    super(`${dir}: ${file === null ? '' : `${file}: `}${rule}`);
  }
}

/** Autograd misuse: backward on a non-scalar without a seed, backward twice through a freed graph. */
export class AutogradError extends StreamgradError {
  override name = 'AutogradError';
}

/** A worker thread that failed (threw, exited, hung) past the retry budget, or the pool used after closing. */
export class WorkerError extends StreamgradError {
  override name = 'WorkerError';
}

/** A shape as it reads in messages: [4,2]. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** A value as it reads in messages: strings quoted, numbers as JS prints them. */
export function fmtValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return `[${v.map(fmtValue).join(',')}]`;
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** Throws a ValueError unless `v` is a finite number: `SGD: lr must be a finite number (got NaN)`. */
export function checkFinite(where: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new ValueError(`${where}: ${name} must be a finite number (got ${fmtValue(v)})`);
  }
  return v;
}

/** Throws a ValueError unless `v` is a finite number > 0. */
export function checkPositive(where: string, name: string, v: unknown): number {
  checkFinite(where, name, v);
  if ((v as number) <= 0) throw new ValueError(`${where}: ${name} must be > 0 (got ${fmtValue(v)})`);
  return v as number;
}

/** Throws a ValueError unless `v` is a finite number >= 0. */
export function checkNonNegative(where: string, name: string, v: unknown): number {
  checkFinite(where, name, v);
  if ((v as number) < 0) throw new ValueError(`${where}: ${name} must be >= 0 (got ${fmtValue(v)})`);
  return v as number;
}

/** Throws a ValueError unless `v` is an integer >= min. */
export function checkInt(where: string, name: string, v: unknown, min = 0): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new ValueError(`${where}: ${name} must be an integer >= ${min} (got ${fmtValue(v)})`);
  }
  return v;
}

/**
 * A record source (broker, file) that cannot be opened or read: unreachable server, refused credentials,
 * a stream, consumer or group that does not exist, a connection lost mid-run. The message starts with
 * the reader's name (`NATS stream 'events' consumer 'trainer': ...`).
 */
export class SourceError extends StreamgradError {
  override name = 'SourceError';
}

/** Why a record was rejected: the key its count is kept under, and the kind a dead-letter entry names. */
export type RecordReason =
  | 'missing field'
  | 'wrong type'
  | 'non-finite number'
  | 'wrong length'
  | 'unknown category'
  | 'class out of range'
  | 'invalid JSON'
  | 'invalid CSV'
  | 'oversized';

/**
 * One record that does not fit its mapping or could not be parsed: `record 1042: feature 'age' must be a
 * finite number (got "abc")`. `detail` is the text after the record number (the index may be unknown
 * where the mapping is applied outside a reader).
 */
export class RecordError extends StreamgradError {
  override name = 'RecordError';
  constructor(
    readonly index: number | undefined,
    readonly reason: RecordReason,
    readonly detail: string,
  ) {
    super(index === undefined ? detail : `record ${index}: ${detail}`);
  }
}

/** The reason text of a record above the size cap, the same whichever stage measured it. */
export function fmtOversized(bytes: number, limit: number): string {
  return `${bytes} bytes, above the limit of ${limit} bytes`;
}
