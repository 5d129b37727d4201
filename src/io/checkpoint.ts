// Checkpoints: one directory per step holding the model state dict, the optimizer state and JSON metadata, written crash-safe, verified by SHA-256 on load.
//
// Layout of a checkpoints folder `root`:
//   ckpt-<step, 10 digits>/model.safetensors      the state dict (parameters and buffers), loadable by safetensors.torch
//   ckpt-<step, 10 digits>/optimizer.safetensors  the optimizer's buffers, named as in OptimizerStateDict (absent without an optimizer)
//   ckpt-<step, 10 digits>/manifest.json          format, version, step, createdAt, each file's sha256 and size,
//                                                 the optimizer's meta and the caller's JSON (step counter, RNG states, source positions)
//   .tmp-<step>-<pid>-<random>/                   a write in progress, or debris of one that crashed; never a checkpoint
//
// Why a directory is atomic here: everything is written (and fsynced) inside a temp directory, the
// manifest last, and only then is the directory renamed to its final name and the folder fsynced. A
// crash at any point leaves either no `ckpt-<step>` or a complete one. Deleting is the same in
// reverse: a checkpoint is first renamed to a temp name, then removed, so a crash mid-delete cannot
// leave a half-deleted directory under a final name.

import { createHash, randomBytes } from 'node:crypto';
import { type Stats, closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CheckpointError, SafetensorsError, ValueError, fmtValue } from '../errors.js';
import type { StateDict } from '../nn/module.js';
import type { OptimizerStateDict, OptimizerStateMeta, StateBuffer } from '../optim/optimizer.js';
import { Tensor } from '../tensor/tensor.js';
import { type SafetensorsContents, type TensorMap, decodeSafetensors, encodeSafetensors, fsyncDir } from './safetensors.js';
import { stateDictToTensorMap } from './state-dict.js';

export const CHECKPOINT_FORMAT = 'streamgrad-checkpoint';
export const CHECKPOINT_VERSION = 1;
/** The largest step a 10-digit directory name holds; fixed width keeps name order = step order. */
export const MAX_CHECKPOINT_STEP = 9_999_999_999;

const MODEL_FILE = 'model.safetensors';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const MANIFEST_FILE = 'manifest.json';
const DATA_FILES = [MODEL_FILE, OPTIMIZER_FILE];
const MANIFEST_KEYS = ['format', 'version', 'step', 'createdAt', 'files', 'optimizer', 'meta'];
const CKPT_RE = /^ckpt-(\d{10})$/;
const TMP_RE = /^\.tmp-(\d{10})-(\d+)-[0-9a-f]{12}$/;

/** Any value JSON.stringify writes and JSON.parse gives back unchanged. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What saveCheckpoint writes. */
export interface CheckpointData {
  /** A non-negative integer up to MAX_CHECKPOINT_STEP; names the directory. */
  step: number;
  /** Parameters and buffers, e.g. `model.stateDict()`; each tensor is written with its dtype (F32/F64). */
  stateDict: StateDict;
  /** `optimizer.stateDict()`; omitted or null writes no optimizer.safetensors and loads back as null. */
  optimizer?: OptimizerStateDict | null;
  /**
   * The caller's JSON (step counters, RNG states, source positions); omitted = null. Typed `unknown`
   * so interfaces such as RngState fit (an interface has no index signature, so it is not assignable
   * to JsonValue); checked at run time instead, naming the path of the first value JSON would change.
   */
  meta?: unknown;
}

export interface SaveCheckpointOptions {
  /** How many checkpoints to keep, the new one included (default 3); Infinity keeps all. */
  keep?: number;
}

export interface CheckpointFileEntry {
  /** SHA-256 of the file, 64 lowercase hex digits. */
  sha256: string;
  /** The file's size in bytes. */
  bytes: number;
}

/** manifest.json, version 1. */
export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  version: typeof CHECKPOINT_VERSION;
  step: number;
  /** ISO 8601, when the write began. */
  createdAt: string;
  /** Every data file of the checkpoint: model.safetensors always, optimizer.safetensors iff `optimizer` is not null. */
  files: Record<string, CheckpointFileEntry>;
  optimizer: OptimizerStateMeta | null;
  meta: JsonValue;
}

/** A checkpoint as loaded and verified. Tensors are views into one buffer per file (no copies). */
export interface Checkpoint {
  step: number;
  dir: string;
  createdAt: string;
  stateDict: StateDict;
  /** Ready for `optimizer.loadStateDict`; null when the checkpoint was saved without an optimizer. */
  optimizer: OptimizerStateDict | null;
  meta: JsonValue;
}

/** A directory loadLatestCheckpoint passed over; `reason` names the file and the rule it broke. */
export interface SkippedCheckpoint {
  dir: string;
  reason: string;
}

/**
 * What loadLatestCheckpoint found: the newest checkpoint that verifies (null when none does) and every
 * directory newer than it that did not, newest first, so a caller can log why it resumed where it did.
 */
export interface LatestCheckpoint {
  checkpoint: Checkpoint | null;
  skipped: SkippedCheckpoint[];
}

export interface CheckpointListing {
  step: number;
  dir: string;
}

/** `ckpt-0000000042` for step 42. */
export function checkpointDirName(step: number): string {
  return `ckpt-${padStep(checkStep('checkpointDirName', step))}`;
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Writes checkpoint `c` to `<root>/ckpt-<step>` and returns that path. Synchronous on purpose: when it
 * returns, the checkpoint is durable (files and directories fsynced), so records it covers can be acked.
 *
 * - Input is checked before anything touches the disk; a failed write removes its temp directory.
 * - Saving a step that already exists replaces it: the new directory is complete before the old one is
 *   renamed away. A crash between those two renames loses that step (both copies are left as temp
 *   directories) and loading falls back to the previous checkpoint; it never sees a partial one.
 * - Afterwards, of the checkpoints with a step up to `c.step`, the newest `keep` stay and older ones
 *   are deleted. Checkpoints with a higher step (left by a run that got further before it was resumed
 *   from an earlier point) are not this run's to judge and are left alone.
 * - Temp directories of writers that are gone (a crashed process, or this one) are removed; one whose
 *   writer process is still alive is left alone, as it may be a write in progress.
 */
export function saveCheckpoint(root: string, c: CheckpointData, opts: SaveCheckpointOptions = {}): string {
  const where = 'saveCheckpoint';
  if (!isRecord(c)) throw new ValueError(`${where}: checkpoint must be an object { step, stateDict, optimizer?, meta? } (got ${describe(c)})`);
  if (typeof opts !== 'object' || opts === null) throw new ValueError(`${where}: options must be an object (got ${describe(opts)})`);
  const step = checkStep(where, c.step);
  const keep = opts.keep ?? 3;
  if (keep !== Infinity && !(Number.isInteger(keep) && keep >= 1)) {
    throw new ValueError(`${where}: keep must be an integer >= 1 or Infinity (got ${fmtValue(keep)})`);
  }
  checkStateDict(where, c.stateDict);
  const optimizer = c.optimizer ?? null;
  if (optimizer !== null) checkOptimizer(where, optimizer);
  const meta = (c.meta === undefined ? null : c.meta) as JsonValue;
  checkJson(where, 'meta', meta, []);

  makeRoot(root);
  const final = join(root, `ckpt-${padStep(step)}`);
  const tmp = join(root, tempName(step));
  mkdirSync(tmp);
  let displaced: string | null = null;
  try {
    const createdAt = new Date().toISOString();
    // One file encoded at a time, so the peak extra memory is the largest file, not their sum.
    const files: Record<string, CheckpointFileEntry> = {};
    files[MODEL_FILE] = writeDurable(join(tmp, MODEL_FILE), encodeSafetensors(stateDictToTensorMap(c.stateDict), { format: 'pt' }));
    if (optimizer !== null) files[OPTIMIZER_FILE] = writeDurable(join(tmp, OPTIMIZER_FILE), encodeSafetensors(optimizerTensorMap(optimizer.tensors)));
    const manifest: CheckpointManifest = {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      step,
      createdAt,
      files,
      optimizer: optimizer === null ? null : optimizer.meta,
      meta,
    };
    // Last: a temp directory with a manifest is complete, though only the rename makes it a checkpoint.
    writeDurable(join(tmp, MANIFEST_FILE), new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));
    fsyncDir(tmp);
    // rename() cannot replace a non-empty directory, so an existing one is moved aside first.
    if (statSync(final, { throwIfNoEntry: false }) !== undefined) {
      displaced = join(root, tempName(step));
      renameSync(final, displaced);
    }
    renameSync(tmp, final);
  } catch (e) {
    if (displaced !== null && statSync(final, { throwIfNoEntry: false }) === undefined) {
      // The old checkpoint was moved aside but the new one never landed: put the old one back.
      try {
        renameSync(displaced, final);
      } catch {
        // left as a temp directory; the next save removes it
      }
    }
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fsyncDir(root);
  if (displaced !== null) rmSync(displaced, { recursive: true, force: true });
  prune(root, step, keep);
  removeStaleTemps(root);
  return final;
}

/** Creates `root` if needed, fsyncing the parents of what was created so the new entries survive a crash. */
function makeRoot(root: string): void {
  const created = mkdirSync(root, { recursive: true });
  if (created === undefined) return;
  for (let d = root; ; d = dirname(d)) {
    fsyncDir(dirname(d));
    if (d === created || dirname(d) === d) break;
  }
}

/** `.tmp-<step>-<pid>-<random>`: the pid tells a crashed writer's debris from a live writer's work. */
function tempName(step: number): string {
  return `.tmp-${padStep(step)}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Writes a new file (refusing to overwrite), fsyncs it, and returns its manifest entry. */
function writeDurable(path: string, bytes: Uint8Array): CheckpointFileEntry {
  const fd = openSync(path, 'wx');
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, Math.min(bytes.length - off, 1 << 30));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { sha256: sha256(bytes), bytes: bytes.length };
}

function optimizerTensorMap(tensors: Record<string, StateBuffer>): TensorMap {
  const out: TensorMap = {};
  for (const [name, data] of Object.entries(tensors)) {
    out[name] = { dtype: data instanceof Float32Array ? 'F32' : 'F64', shape: [data.length], data };
  }
  return out;
}

/** Deletes the checkpoints with step <= `step` beyond the newest `keep`: renamed away first, then removed. */
function prune(root: string, step: number, keep: number): void {
  const doomed = listCheckpoints(root)
    .filter((c) => c.step <= step)
    .slice(keep);
  if (doomed.length === 0) return;
  const moved = doomed.map((c) => {
    const to = join(root, tempName(c.step));
    renameSync(c.dir, to);
    return to;
  });
  fsyncDir(root);
  for (const m of moved) rmSync(m, { recursive: true, force: true });
}

function removeStaleTemps(root: string): void {
  for (const t of listTemps(root)) {
    if (t.pid !== process.pid && isAlive(t.pid)) continue;
    rmSync(t.dir, { recursive: true, force: true });
  }
}

/** Whether a process with this pid exists. EPERM means it exists but belongs to someone else. */
function isAlive(pid: number): boolean {
  if (pid < 1) return false; // kill(0) would signal our own process group
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---------------------------------------------------------------------------------------------
// Listing and loading

/**
 * The `ckpt-<step>` entries of `root`, newest (highest step) first, without verifying them; [] when
 * `root` does not exist.
 */
export function listCheckpoints(root: string): CheckpointListing[] {
  const out: CheckpointListing[] = [];
  for (const name of readRoot(root)) {
    const m = CKPT_RE.exec(name);
    if (m !== null) out.push({ step: Number(m[1]), dir: join(root, name) });
  }
  return out.sort((a, b) => b.step - a.step);
}

function listTemps(root: string): (CheckpointListing & { pid: number })[] {
  const out: (CheckpointListing & { pid: number })[] = [];
  for (const name of readRoot(root)) {
    const m = TMP_RE.exec(name);
    if (m !== null) out.push({ step: Number(m[1]), pid: Number(m[2]), dir: join(root, name) });
  }
  return out;
}

function readRoot(root: string): string[] {
  try {
    return readdirSync(root);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    if (code === 'ENOTDIR') throw new CheckpointError(root, null, 'the checkpoints folder is not a directory');
    throw e;
  }
}

/**
 * The newest checkpoint under `root` that verifies (see loadCheckpoint), trying `ckpt-*` directories
 * newest first. Each one that fails is recorded in `skipped` with its reason and the next is tried; so
 * is each temp directory newer than the one returned, as a write that never finished. Never throws for
 * a bad checkpoint; `{ checkpoint: null, skipped: [] }` when `root` is missing or empty.
 */
export function loadLatestCheckpoint(root: string): LatestCheckpoint {
  // At equal steps the checkpoint sorts before a temp directory: a valid ckpt-N makes a leftover temp of N moot.
  const candidates = [
    ...listCheckpoints(root).map((c) => ({ ...c, temp: false })),
    ...listTemps(root).map((t) => ({ step: t.step, dir: t.dir, temp: true })),
  ].sort((a, b) => b.step - a.step || Number(a.temp) - Number(b.temp));
  const skipped: SkippedCheckpoint[] = [];
  for (const c of candidates) {
    if (c.temp) {
      skipped.push({ dir: c.dir, reason: `unfinished write: a temp directory is not a checkpoint until it is renamed to ckpt-${padStep(c.step)}` });
      continue;
    }
    try {
      return { checkpoint: loadCheckpoint(c.dir), skipped };
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      skipped.push({ dir: c.dir, reason: e.file === null ? e.rule : `${e.file}: ${e.rule}` });
    }
  }
  return { checkpoint: null, skipped };
}

/**
 * Loads and verifies the checkpoint in `dir`: the manifest parses and follows version 1 (its step
 * matching the directory name when that is `ckpt-<step>`), every file it lists exists with the listed
 * size and SHA-256, and both safetensors files decode. Throws a CheckpointError naming `dir`, the file
 * and the rule broken. Sizes are checked before anything is read, and each file is read into one buffer
 * of its size on disk: nothing is allocated from a size the manifest claims.
 */
export function loadCheckpoint(dir: string): Checkpoint {
  // Typed as a declared never-returning function so TypeScript narrows after each check.
  const fail: Fail = (file, rule) => {
    throw new CheckpointError(dir, file, rule);
  };
  const st = statSync(dir, { throwIfNoEntry: false });
  if (st === undefined) fail(null, 'the checkpoint directory does not exist');
  if (!st.isDirectory()) fail(null, 'is not a directory');

  const manifest = readManifest(dir, fail);
  const named = CKPT_RE.exec(basename(dir));
  if (named !== null && Number(named[1]) !== manifest.step) {
    fail(MANIFEST_FILE, `step ${manifest.step} does not match the directory name ${basename(dir)}`);
  }

  // Every size first (a stat each), so a truncated optimizer file is found before the model is read.
  const listed = Object.entries(manifest.files);
  for (const [file, entry] of listed) {
    let s: Stats | undefined;
    try {
      s = statSync(join(dir, file), { throwIfNoEntry: false });
    } catch (e) {
      fail(file, `cannot be read (${(e as Error).message})`);
    }
    if (s === undefined) fail(file, 'file is missing (the manifest lists it)');
    checkFileStats(file, s, entry.bytes, fail);
  }

  const decoded: Record<string, SafetensorsContents> = {};
  for (const [file, entry] of listed) {
    const bytes = readFileBytes(dir, file, entry.bytes, fail);
    const actual = sha256(bytes);
    if (actual !== entry.sha256) fail(file, `SHA-256 mismatch: the file hashes to ${actual}, the manifest says ${entry.sha256}`);
    try {
      decoded[file] = decodeSafetensors(bytes, file);
    } catch (e) {
      if (!(e instanceof SafetensorsError)) throw e;
      fail(file, `not a valid safetensors file: ${e.tensor === null ? '' : `tensor '${e.tensor}': `}${e.rule}`);
    }
  }

  const stateDict: StateDict = {};
  for (const [name, t] of Object.entries(decoded[MODEL_FILE]!.tensors)) setOwn(stateDict, name, new Tensor(t.data, t.shape));
  let optimizer: OptimizerStateDict | null = null;
  if (manifest.optimizer !== null) {
    const tensors: Record<string, StateBuffer> = {};
    for (const [name, t] of Object.entries(decoded[OPTIMIZER_FILE]!.tensors)) setOwn(tensors, name, t.data);
    optimizer = { tensors, meta: manifest.optimizer };
  }
  return { step: manifest.step, dir, createdAt: manifest.createdAt, stateDict, optimizer, meta: manifest.meta };
}

type Fail = (file: string | null, rule: string) => never;

/** Parses manifest.json and checks every rule of version 1; the data files are checked by the caller. */
function readManifest(dir: string, fail: Fail): CheckpointManifest {
  const bad: (rule: string) => never = (rule) => fail(MANIFEST_FILE, rule);
  const bytes = readFileBytes(dir, MANIFEST_FILE, null, fail);
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    bad('not valid UTF-8');
  }
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    bad(`not valid JSON (${(e as Error).message})`);
  }
  if (!isRecord(m)) bad(`must be a JSON object (got ${jsonKind(m)})`);
  const o = m as Record<string, unknown>;
  // Format and version first, so a foreign JSON file is named as such rather than as a broken manifest.
  if (o.format !== CHECKPOINT_FORMAT) bad(`format must be ${JSON.stringify(CHECKPOINT_FORMAT)} (got ${fmtValue(o.format)})`);
  if (o.version !== CHECKPOINT_VERSION) bad(`version must be ${CHECKPOINT_VERSION} (got ${fmtValue(o.version)})`);
  for (const k of MANIFEST_KEYS) if (!Object.hasOwn(o, k)) bad(`missing key '${k}' (a manifest has ${MANIFEST_KEYS.join(', ')})`);
  const { step, createdAt, files, optimizer } = o;
  if (!isStep(step)) bad(`step must be an integer from 0 to ${MAX_CHECKPOINT_STEP} (got ${fmtValue(step)})`);
  if (typeof createdAt !== 'string') bad(`createdAt must be a string (got ${jsonKind(createdAt)})`);
  if (!isRecord(files)) bad(`files must be an object mapping file names to { sha256, bytes } (got ${jsonKind(files)})`);
  for (const [name, entry] of Object.entries(files as Record<string, unknown>)) {
    const at = `files[${JSON.stringify(name)}]`;
    if (!DATA_FILES.includes(name)) bad(`${at}: not a checkpoint file (expected ${DATA_FILES.join(', ')})`);
    if (!isRecord(entry)) bad(`${at} must be an object { sha256, bytes } (got ${jsonKind(entry)})`);
    const e = entry as Record<string, unknown>;
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) bad(`${at}.sha256 must be 64 lowercase hex digits (got ${fmtValue(e.sha256)})`);
    if (typeof e.bytes !== 'number' || !Number.isSafeInteger(e.bytes) || e.bytes < 0) bad(`${at}.bytes must be a non-negative integer (got ${fmtValue(e.bytes)})`);
  }
  const listed = files as Record<string, CheckpointFileEntry>;
  if (!Object.hasOwn(listed, MODEL_FILE)) bad(`files must list ${MODEL_FILE}`);
  if (optimizer !== null) {
    const problem = optimizerMetaProblem(optimizer);
    if (problem !== null) bad(`optimizer must be null or an optimizer's meta { optimizer, paramGroups, state } (${problem})`);
    if (!Object.hasOwn(listed, OPTIMIZER_FILE)) bad(`optimizer is set but files does not list ${OPTIMIZER_FILE}`);
  } else if (Object.hasOwn(listed, OPTIMIZER_FILE)) {
    bad(`files lists ${OPTIMIZER_FILE} but optimizer is null`);
  }
  return o as unknown as CheckpointManifest;
}

/** Why `v` is not an OptimizerStateMeta, or null when it has the expected shape. */
function optimizerMetaProblem(v: unknown): string | null {
  if (!isRecord(v)) return `got ${jsonKind(v)}`;
  if (typeof v.optimizer !== 'string') return `its optimizer must be a string, got ${jsonKind(v.optimizer)}`;
  if (!Array.isArray(v.paramGroups)) return `its paramGroups must be an array, got ${jsonKind(v.paramGroups)}`;
  if (!isRecord(v.state)) return `its state must be an object, got ${jsonKind(v.state)}`;
  return null;
}

function checkFileStats(file: string, s: Stats, expected: number | null, fail: Fail): void {
  if (!s.isFile()) fail(file, 'is not a regular file');
  if (expected !== null && s.size !== expected) fail(file, `size mismatch: the file is ${s.size} bytes, the manifest says ${expected}`);
}

/**
 * Reads `dir/file` into one buffer of exactly its size on disk (fstat), after checking that size
 * against `expected` when the manifest gives one.
 */
function readFileBytes(dir: string, file: string, expected: number | null, fail: Fail): Uint8Array {
  let fd: number;
  try {
    fd = openSync(join(dir, file), 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') fail(file, expected === null ? 'file is missing' : 'file is missing (the manifest lists it)');
    return fail(file, `cannot be read (${(e as Error).message})`);
  }
  try {
    const s = fstatSync(fd);
    checkFileStats(file, s, expected, fail);
    // Never Buffer.allocUnsafe: its pool would share and misalign the memory the tensors view.
    const buf = new Uint8Array(s.size);
    let off = 0;
    while (off < s.size) {
      // readSync takes at most ~2 GiB per call: read in 1 GiB chunks.
      const got = readSync(fd, buf, off, Math.min(s.size - off, 1 << 30), off);
      if (got === 0) fail(file, `file shrank while being read (fstat said ${s.size} bytes, read ${off})`);
      off += got;
    }
    return buf;
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    return fail(file, `cannot be read (${(e as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// Checks and helpers

function isStep(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_CHECKPOINT_STEP;
}

function checkStep(where: string, v: unknown): number {
  if (!isStep(v)) throw new ValueError(`${where}: step must be an integer from 0 to ${MAX_CHECKPOINT_STEP} (got ${fmtValue(v)})`);
  return v;
}

function padStep(step: number): string {
  return String(step).padStart(10, '0');
}

function checkStateDict(where: string, sd: unknown): void {
  if (!isRecord(sd)) throw new ValueError(`${where}: stateDict must be an object mapping names to Tensors (got ${describe(sd)})`);
  for (const [name, t] of Object.entries(sd)) {
    if (!(t instanceof Tensor)) throw new ValueError(`${where}: stateDict['${name}'] must be a Tensor (got ${describe(t)})`);
  }
}

function checkOptimizer(where: string, o: unknown): void {
  if (!isRecord(o) || !isRecord(o.tensors) || !isRecord(o.meta)) {
    throw new ValueError(`${where}: optimizer must be { tensors, meta } as Optimizer.stateDict() returns it (got ${describe(o)})`);
  }
  for (const [name, t] of Object.entries(o.tensors)) {
    if (!(t instanceof Float32Array || t instanceof Float64Array)) {
      throw new ValueError(`${where}: optimizer.tensors['${name}'] must be a Float32Array or Float64Array (got ${describe(t)})`);
    }
  }
  // The loader's rule, checked here too, so every checkpoint written can be read back.
  const problem = optimizerMetaProblem(o.meta);
  if (problem !== null) throw new ValueError(`${where}: optimizer.meta must be { optimizer, paramGroups, state } (${problem})`);
  checkJson(where, 'optimizer.meta', o.meta, []);
}

/**
 * Throws a ValueError unless `v` survives JSON.stringify + JSON.parse unchanged, naming the path of the
 * first value that would not (NaN would silently become null, a Map {}, a Date a string). An undefined
 * object property is allowed and dropped, as JSON.stringify drops it.
 */
function checkJson(where: string, path: string, v: unknown, enclosing: object[]): void {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ValueError(`${where}: ${path} must be a finite number to be stored as JSON (got ${v})`);
    return;
  }
  if (typeof v !== 'object') throw new ValueError(`${where}: ${path} cannot be stored as JSON (got ${describe(v)})`);
  if (enclosing.includes(v)) throw new ValueError(`${where}: ${path} refers back to an enclosing value (a cycle cannot be stored as JSON)`);
  enclosing.push(v);
  if (Array.isArray(v)) {
    // Indexed, not forEach: a hole would be written as null.
    for (let i = 0; i < v.length; i++) checkJson(where, `${path}[${i}]`, v[i], enclosing);
  } else {
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      throw new ValueError(`${where}: ${path} must be a plain object, array, string, finite number, boolean or null (got ${describe(v)})`);
    }
    for (const [k, x] of Object.entries(v)) {
      if (x !== undefined) checkJson(where, /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`, x, enclosing);
    }
  }
  enclosing.pop();
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What a JSON value is, for messages: "an array", "a string", "null". */
function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

/** A value as it reads in messages, without dumping whole objects: `a Map`, `an array of 3`, `1.5`. */
function describe(v: unknown): string {
  if (v === null || v === undefined || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return fmtValue(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') {
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto === Object.prototype || proto === null) return 'an object';
    return `a ${(v as object).constructor?.name ?? 'object'}`;
  }
  return `a ${typeof v}`;
}

/** Defines an own enumerable property, so a tensor named "__proto__" is data, not a prototype. */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

