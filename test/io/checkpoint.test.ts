// Tests of src/io/checkpoint.ts: exact resume from real model and optimizer state, the files on disk, keep-K pruning, replacing a step, and every corruption falling back to the previous checkpoint with its reason.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointError, SafetensorsError, ValueError } from '../../src/errors.js';
import {
  type CheckpointData,
  type CheckpointManifest,
  checkpointDirName,
  listCheckpoints,
  loadCheckpoint,
  loadLatestCheckpoint,
  saveCheckpoint,
} from '../../src/io/checkpoint.js';
import { loadSafetensors } from '../../src/io/safetensors.js';
import { mseLoss } from '../../src/loss/index.js';
import type { Sequential } from '../../src/nn/layers.js';
import { type ModelSpec, buildModel } from '../../src/nn/spec.js';
import { Adam, type Optimizer, SGD } from '../../src/optim/index.js';
import { Rng } from '../../src/random.js';
import { type DType, Tensor, tensor } from '../../src/tensor/tensor.js';

// ---------------------------------------------------------------------------------------------
// Helpers

let base = '';
/** The checkpoints folder of the current test; not created until the first save. */
let root = '';
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'streamgrad-checkpoint-'));
  root = join(base, 'checkpoints');
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

/** Linear → BatchNorm1d → ReLU → Linear: parameters plus BatchNorm's three buffers. */
const spec = (dtype: DType): ModelSpec => ({
  dtype,
  layers: [
    { type: 'Linear', inFeatures: 3, outFeatures: 4 },
    { type: 'BatchNorm1d', numFeatures: 4 },
    { type: 'ReLU' },
    { type: 'Linear', inFeatures: 4, outFeatures: 2 },
  ],
});

type Kind = 'SGD' | 'Adam';
interface Run {
  model: Sequential;
  opt: Optimizer<any, any>;
}

function makeRun(dtype: DType, kind: Kind, seed: number): Run {
  const model = buildModel(spec(dtype), seed);
  const opt = kind === 'SGD' ? new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }) : new Adam(model.parameters(), { lr: 0.01 });
  return { model, opt };
}

/** One training step on batch `t` (a fixed function of t, so two runs can replay the same data). */
function trainStep({ model, opt }: Run, t: number, dtype: DType): void {
  const x = tensor(Array.from({ length: 5 }, (_, i) => [Math.sin(t + i), Math.cos(2 * t - i), 0.1 * (i - t)]), { dtype });
  const y = tensor(Array.from({ length: 5 }, (_, i) => [Math.tanh(i - t), 0.5 * i]), { dtype });
  opt.zeroGrad();
  mseLoss(model.forward(x), y).backward();
  opt.step();
}

const bytesOf = (a: Float32Array | Float64Array): number[] => Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A small valid checkpoint: an f32 Linear plus an SGD-with-momentum state after one step. */
function small(step: number, meta: CheckpointData['meta'] = { step }): CheckpointData {
  const run = makeRun('f32', 'SGD', 1);
  trainStep(run, 0, 'f32');
  return { step, stateDict: run.model.stateDict(), optimizer: run.opt.stateDict(), meta };
}

function readManifest(dir: string): CheckpointManifest {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as CheckpointManifest;
}

function writeManifest(dir: string, m: unknown): void {
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
}

/** The error `fn` throws, checked to be an instance of `cls` with exactly `message`. */
function expectThrows(fn: () => unknown, cls: new (...args: any[]) => Error, message: string): void {
  let thrown: unknown = null;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(cls);
  expect((thrown as Error).message).toBe(message);
}

// ---------------------------------------------------------------------------------------------
// Round trips

describe('saveCheckpoint + loadLatestCheckpoint', () => {
  for (const dtype of ['f32', 'f64'] as const) {
    for (const kind of ['SGD', 'Adam'] as const) {
      it(`${dtype} model + ${kind}: bit-identical state, and a resumed run matches the uninterrupted one exactly`, () => {
        const a = makeRun(dtype, kind, 1);
        for (let t = 0; t < 3; t++) trainStep(a, t, dtype);
        const meta = { step: 3, epoch: 0, rng: new Rng(7, 2, 41).state(), sources: [{ name: 'train.csv', offset: 1042 }], note: null };
        const dir = saveCheckpoint(root, { step: 3, stateDict: a.model.stateDict(), optimizer: a.opt.stateDict(), meta });
        expect(dir).toBe(join(root, 'ckpt-0000000003'));

        const { checkpoint: ck, skipped } = loadLatestCheckpoint(root);
        expect(skipped).toEqual([]);
        expect(ck).not.toBeNull();
        expect(ck!.step).toBe(3);
        expect(ck!.dir).toBe(dir);
        expect(ck!.meta).toEqual(meta);
        expect(Number.isNaN(Date.parse(ck!.createdAt))).toBe(false);

        // Model: same names in the same order (buffers included), shapes, dtypes and bytes.
        const sd = a.model.stateDict();
        expect(Object.keys(ck!.stateDict)).toEqual(Object.keys(sd));
        expect(Object.keys(sd)).toContain('1.running_var');
        expect(Object.keys(sd)).toContain('1.num_batches_tracked');
        for (const [name, t] of Object.entries(sd)) {
          const got = ck!.stateDict[name]!;
          expect(got.shape).toEqual(t.shape);
          expect(got.dtype).toBe(dtype);
          expect(bytesOf(got.data)).toEqual(bytesOf(t.data));
        }
        expect(ck!.stateDict['1.num_batches_tracked']!.item()).toBe(3);

        // Optimizer: same buffers, bytes and meta.
        const osd = a.opt.stateDict();
        expect(Object.keys(ck!.optimizer!.tensors)).toEqual(Object.keys(osd.tensors));
        expect(Object.keys(osd.tensors).length).toBeGreaterThan(0);
        for (const [name, buf] of Object.entries(osd.tensors)) {
          expect(ck!.optimizer!.tensors[name]!.constructor).toBe(buf.constructor);
          expect(bytesOf(ck!.optimizer!.tensors[name]!)).toEqual(bytesOf(buf));
        }
        expect(ck!.optimizer!.meta).toEqual(osd.meta);

        // Resume into a differently initialised run, then both take the same two steps.
        const b = makeRun(dtype, kind, 99);
        b.model.loadStateDict(ck!.stateDict);
        b.opt.loadStateDict(ck!.optimizer!);
        for (let t = 3; t < 5; t++) {
          trainStep(a, t, dtype);
          trainStep(b, t, dtype);
        }
        const sa = a.model.stateDict();
        const sb = b.model.stateDict();
        for (const name of Object.keys(sa)) expect(bytesOf(sb[name]!.data)).toEqual(bytesOf(sa[name]!.data));
        expect(b.opt.stateDict()).toEqual(a.opt.stateDict());
      });
    }
  }

  it('keeps every bit: -0, NaN payloads, infinities, subnormals; 0-d and empty tensors', () => {
    const nan = new Float64Array(1);
    new DataView(nan.buffer).setBigUint64(0, 0x7ff8_dead_beef_0001n, true); // a NaN with a payload
    const values = Float64Array.of(-0, nan[0]!, Infinity, -Infinity, 5e-324, Number.MAX_VALUE);
    const stateDict = {
      w: new Tensor(values, [2, 3]),
      s: new Tensor(Float32Array.of(-0), []),
      e: new Tensor(new Float32Array(0), [0, 4]),
    };
    const opt = { tensors: { 'state.0.x': Float32Array.of(1e-45, -0) }, meta: { optimizer: 'SGD', paramGroups: [], state: {} } };
    saveCheckpoint(root, { step: 0, stateDict, optimizer: opt });
    const ck = loadLatestCheckpoint(root).checkpoint!;
    expect(ck.step).toBe(0);
    expect(ck.meta).toBeNull();
    for (const [name, t] of Object.entries(stateDict)) {
      expect(ck.stateDict[name]!.shape).toEqual(t.shape);
      expect(bytesOf(ck.stateDict[name]!.data)).toEqual(bytesOf(t.data));
    }
    expect(bytesOf(ck.optimizer!.tensors['state.0.x']!)).toEqual(bytesOf(opt.tensors['state.0.x']));
  });

  it('writes the documented layout: model.safetensors loads as a plain state dict; the manifest holds sizes and SHA-256 sums', () => {
    const c = small(42, { epoch: 2 });
    const dir = saveCheckpoint(root, c);
    expect(dir).toBe(join(root, 'ckpt-0000000042'));
    expect(readdirSync(root)).toEqual(['ckpt-0000000042']);
    expect(readdirSync(dir).sort()).toEqual(['manifest.json', 'model.safetensors', 'optimizer.safetensors']);
    const m = readManifest(dir);
    expect(Object.keys(m)).toEqual(['format', 'version', 'step', 'createdAt', 'files', 'optimizer', 'meta']);
    expect(m.format).toBe('streamgrad-checkpoint');
    expect(m.version).toBe(1);
    expect(m.step).toBe(42);
    expect(m.meta).toEqual({ epoch: 2 });
    expect(m.optimizer).toEqual(c.optimizer!.meta);
    for (const file of ['model.safetensors', 'optimizer.safetensors']) {
      const bytes = readFileSync(join(dir, file));
      expect(m.files[file]).toEqual({ sha256: sha256(bytes), bytes: bytes.length });
    }
    const model = loadSafetensors(join(dir, 'model.safetensors'));
    expect(model.metadata).toEqual({ format: 'pt' });
    expect(Object.keys(model.tensors)).toEqual(Object.keys(c.stateDict));
    const opt = loadSafetensors(join(dir, 'optimizer.safetensors'));
    expect(Object.keys(opt.tensors)).toEqual(Object.keys(c.optimizer!.tensors));
    expect(opt.tensors['state.0.momentumBuffer']!.shape).toEqual([c.optimizer!.tensors['state.0.momentumBuffer']!.length]);
  });

  it('saves without an optimizer: no optimizer.safetensors, and it loads back as null', () => {
    const run = makeRun('f64', 'SGD', 1);
    const dir = saveCheckpoint(root, { step: 1, stateDict: run.model.stateDict() });
    expect(existsSync(join(dir, 'optimizer.safetensors'))).toBe(false);
    const m = readManifest(dir);
    expect(Object.keys(m.files)).toEqual(['model.safetensors']);
    expect(m.optimizer).toBeNull();
    expect(m.meta).toBeNull();
    const ck = loadCheckpoint(dir);
    expect(ck.optimizer).toBeNull();
    expect(ck.meta).toBeNull();
  });

  it('replaces a step saved twice, atomically, leaving no temp directory', () => {
    saveCheckpoint(root, small(1));
    saveCheckpoint(root, small(2, { version: 'first' }));
    saveCheckpoint(root, small(2, { version: 'second' }));
    expect(readdirSync(root).sort()).toEqual(['ckpt-0000000001', 'ckpt-0000000002']);
    expect(loadLatestCheckpoint(root).checkpoint!.meta).toEqual({ version: 'second' });
  });
});

// ---------------------------------------------------------------------------------------------
// Pruning and temp directories

describe('keep and cleanup', () => {
  const steps = (): number[] => listCheckpoints(root).map((c) => c.step);

  it('keeps the newest 3 by default', () => {
    for (const s of [1, 2, 3, 4, 5]) saveCheckpoint(root, small(s));
    expect(steps()).toEqual([5, 4, 3]);
    expect(readdirSync(root).filter((n) => !n.startsWith('ckpt-'))).toEqual([]);
  });

  it('keeps the newest K with keep: K, and all with keep: Infinity', () => {
    for (const s of [10, 20, 30]) saveCheckpoint(root, small(s), { keep: 1 });
    expect(steps()).toEqual([30]);
    for (const s of [40, 50]) saveCheckpoint(root, small(s), { keep: 2 });
    expect(steps()).toEqual([50, 40]);
    for (const s of [60, 70, 80]) saveCheckpoint(root, small(s), { keep: Infinity });
    expect(steps()).toEqual([80, 70, 60, 50, 40]);
  });

  it('never deletes checkpoints with a higher step than the one saved (a run resumed from an earlier point)', () => {
    for (const s of [1, 2, 9]) saveCheckpoint(root, small(s), { keep: Infinity });
    saveCheckpoint(root, small(3), { keep: 1 });
    expect(steps()).toEqual([9, 3]);
  });

  it("removes a crashed writer's temp directory after the next save, and leaves a live writer's alone", () => {
    saveCheckpoint(root, small(1));
    const dead = join(root, '.tmp-0000000002-99999999-0123456789ab'); // above any pid_max: no such process
    const live = join(root, `.tmp-0000000002-${process.ppid}-0123456789ab`); // our parent: alive, another writer
    for (const d of [dead, live]) {
      mkdirSync(d);
      writeFileSync(join(d, 'model.safetensors'), new Uint8Array(10));
    }
    saveCheckpoint(root, small(3));
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(steps()).toEqual([3, 1]);
  });

  it('refuses bad input before touching the disk', () => {
    const c = small(1);
    const cases: [CheckpointData, object | undefined, string][] = [
      [{ ...c, step: -1 }, undefined, 'saveCheckpoint: step must be an integer from 0 to 9999999999 (got -1)'],
      [{ ...c, step: 1.5 }, undefined, 'saveCheckpoint: step must be an integer from 0 to 9999999999 (got 1.5)'],
      [{ ...c, step: 1e10 }, undefined, 'saveCheckpoint: step must be an integer from 0 to 9999999999 (got 10000000000)'],
      [c, { keep: 0 }, 'saveCheckpoint: keep must be an integer >= 1 or Infinity (got 0)'],
      [c, { keep: 2.5 }, 'saveCheckpoint: keep must be an integer >= 1 or Infinity (got 2.5)'],
      [{ ...c, stateDict: { w: [1, 2] as unknown as Tensor } }, undefined, "saveCheckpoint: stateDict['w'] must be a Tensor (got an array of 2)"],
      [{ ...c, meta: { a: [1, NaN] } }, undefined, 'saveCheckpoint: meta.a[1] must be a finite number to be stored as JSON (got NaN)'],
      [{ ...c, meta: { 'source-0': { at: Infinity } } }, undefined, 'saveCheckpoint: meta["source-0"].at must be a finite number to be stored as JSON (got Infinity)'],
      [{ ...c, meta: { m: new Map() } }, undefined, 'saveCheckpoint: meta.m must be a plain object, array, string, finite number, boolean or null (got a Map)'],
      [{ ...c, meta: { n: 1n } }, undefined, 'saveCheckpoint: meta.n cannot be stored as JSON (got a bigint)'],
      [{ ...c, meta: [undefined] }, undefined, 'saveCheckpoint: meta[0] cannot be stored as JSON (got undefined)'],
      [{ ...c, optimizer: { tensors: { 'state.0.x': [0] }, meta: c.optimizer!.meta } as never }, undefined, "saveCheckpoint: optimizer.tensors['state.0.x'] must be a Float32Array or Float64Array (got an array of 1)"],
      [{ ...c, optimizer: { tensors: {}, meta: { optimizer: 'SGD' } } as never }, undefined, 'saveCheckpoint: optimizer.meta must be { optimizer, paramGroups, state } (its paramGroups must be an array, got nothing)'],
      [{ ...c, optimizer: c.optimizer!.tensors as never }, undefined, 'saveCheckpoint: optimizer must be { tensors, meta } as Optimizer.stateDict() returns it (got an object)'],
    ];
    for (const [data, opts, message] of cases) expectThrows(() => saveCheckpoint(root, data, opts), ValueError, message);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = { back: cyclic };
    expectThrows(() => saveCheckpoint(root, { ...c, meta: cyclic }), ValueError, 'saveCheckpoint: meta.self.back refers back to an enclosing value (a cycle cannot be stored as JSON)');
    expect(existsSync(root)).toBe(false);
  });

  it('a write that fails midway leaves no directory behind, and an existing checkpoint of that step intact', () => {
    saveCheckpoint(root, small(5, { v: 'old' }));
    const c = small(5, { v: 'new' });
    // '__metadata__' passes the checkpoint's checks but the safetensors encoder refuses it, after the
    // temp directory and (for the optimizer) model.safetensors were written.
    const badModel = { ...c, stateDict: { ...c.stateDict, __metadata__: c.stateDict['0.bias']! } };
    expectThrows(() => saveCheckpoint(root, badModel), SafetensorsError, "<buffer>: tensor '__metadata__': '__metadata__' is reserved for metadata and cannot name a tensor");
    const badOpt = { ...c, optimizer: { ...c.optimizer!, tensors: { __metadata__: new Float32Array(1) } } };
    expectThrows(() => saveCheckpoint(root, badOpt), SafetensorsError, "<buffer>: tensor '__metadata__': '__metadata__' is reserved for metadata and cannot name a tensor");
    expect(readdirSync(root)).toEqual(['ckpt-0000000005']);
    expect(loadCheckpoint(join(root, 'ckpt-0000000005')).meta).toEqual({ v: 'old' });
  });
});

// ---------------------------------------------------------------------------------------------
// Corruption: loadLatestCheckpoint falls back, loadCheckpoint throws the same rule

describe('a corrupt checkpoint is skipped with its reason', () => {
  /** Saves steps 1 and 2 and returns ckpt-2's directory, to be damaged. */
  function twoCheckpoints(): string {
    saveCheckpoint(root, small(1));
    return saveCheckpoint(root, small(2));
  }

  /** Damages ckpt-2 and returns the reason the loaders must give (the rule, prefixed by the file). */
  const damage: [string, (dir: string) => string][] = [
    [
      'truncated model.safetensors',
      (dir) => {
        const p = join(dir, 'model.safetensors');
        const bytes = readFileSync(p);
        writeFileSync(p, bytes.subarray(0, bytes.length - 4));
        return `model.safetensors: size mismatch: the file is ${bytes.length - 4} bytes, the manifest says ${bytes.length}`;
      },
    ],
    [
      'a flipped byte in model.safetensors',
      (dir) => {
        const p = join(dir, 'model.safetensors');
        const bytes = readFileSync(p);
        bytes[bytes.length - 3]! ^= 0x10;
        writeFileSync(p, bytes);
        return `model.safetensors: SHA-256 mismatch: the file hashes to ${sha256(bytes)}, the manifest says ${readManifest(dir).files['model.safetensors']!.sha256}`;
      },
    ],
    [
      'a flipped byte in optimizer.safetensors',
      (dir) => {
        const p = join(dir, 'optimizer.safetensors');
        const bytes = readFileSync(p);
        bytes[20]! ^= 0x01;
        writeFileSync(p, bytes);
        return `optimizer.safetensors: SHA-256 mismatch: the file hashes to ${sha256(bytes)}, the manifest says ${readManifest(dir).files['optimizer.safetensors']!.sha256}`;
      },
    ],
    [
      'a deleted manifest',
      (dir) => {
        unlinkSync(join(dir, 'manifest.json'));
        return 'manifest.json: file is missing';
      },
    ],
    [
      'a deleted optimizer.safetensors',
      (dir) => {
        unlinkSync(join(dir, 'optimizer.safetensors'));
        return 'optimizer.safetensors: file is missing (the manifest lists it)';
      },
    ],
    [
      'a manifest with a wrong sha256',
      (dir) => {
        const m = readManifest(dir);
        m.files['model.safetensors']!.sha256 = 'ab'.repeat(32);
        writeManifest(dir, m);
        return `model.safetensors: SHA-256 mismatch: the file hashes to ${sha256(readFileSync(join(dir, 'model.safetensors')))}, the manifest says ${'ab'.repeat(32)}`;
      },
    ],
    [
      'a manifest claiming a huge size (refused from stat, nothing allocated)',
      (dir) => {
        const m = readManifest(dir);
        const real = m.files['model.safetensors']!.bytes;
        m.files['model.safetensors']!.bytes = 1e15;
        writeManifest(dir, m);
        return `model.safetensors: size mismatch: the file is ${real} bytes, the manifest says 1000000000000000`;
      },
    ],
    [
      'a truncated manifest (bad JSON)',
      (dir) => {
        const text = readFileSync(join(dir, 'manifest.json'), 'utf8').slice(0, 40);
        writeFileSync(join(dir, 'manifest.json'), text);
        let why = '';
        try {
          JSON.parse(text);
        } catch (e) {
          why = (e as Error).message;
        }
        return `manifest.json: not valid JSON (${why})`;
      },
    ],
    [
      'a manifest that is not UTF-8',
      (dir) => {
        writeFileSync(join(dir, 'manifest.json'), Uint8Array.of(0x7b, 0xff, 0x7d));
        return 'manifest.json: not valid UTF-8';
      },
    ],
    [
      'a manifest that is an array',
      (dir) => {
        writeManifest(dir, []);
        return 'manifest.json: must be a JSON object (got an array)';
      },
    ],
    [
      'a manifest of another format',
      (dir) => {
        writeManifest(dir, { format: 'something-else' });
        return 'manifest.json: format must be "streamgrad-checkpoint" (got "something-else")';
      },
    ],
    [
      'a manifest of a later version',
      (dir) => {
        writeManifest(dir, { ...readManifest(dir), version: 2 });
        return 'manifest.json: version must be 1 (got 2)';
      },
    ],
    [
      'a manifest without meta',
      (dir) => {
        const { meta: _meta, ...rest } = readManifest(dir);
        writeManifest(dir, rest);
        return "manifest.json: missing key 'meta' (a manifest has format, version, step, createdAt, files, optimizer, meta)";
      },
    ],
    [
      'a manifest whose step is not the directory name',
      (dir) => {
        writeManifest(dir, { ...readManifest(dir), step: 7 });
        return 'manifest.json: step 7 does not match the directory name ckpt-0000000002';
      },
    ],
    [
      'a manifest with a bad step',
      (dir) => {
        writeManifest(dir, { ...readManifest(dir), step: '2' });
        return 'manifest.json: step must be an integer from 0 to 9999999999 (got "2")';
      },
    ],
    [
      'a manifest listing an unknown file',
      (dir) => {
        const m = readManifest(dir);
        writeManifest(dir, { ...m, files: { ...m.files, 'extra.bin': { sha256: '00'.repeat(32), bytes: 0 } } });
        return 'manifest.json: files["extra.bin"]: not a checkpoint file (expected model.safetensors, optimizer.safetensors)';
      },
    ],
    [
      'a manifest entry with an uppercase sha256',
      (dir) => {
        const m = readManifest(dir);
        const sha = m.files['model.safetensors']!.sha256.toUpperCase();
        m.files['model.safetensors']!.sha256 = sha;
        writeManifest(dir, m);
        return `manifest.json: files["model.safetensors"].sha256 must be 64 lowercase hex digits (got "${sha}")`;
      },
    ],
    [
      'a manifest that does not list the model',
      (dir) => {
        const m = readManifest(dir);
        writeManifest(dir, { ...m, files: { 'optimizer.safetensors': m.files['optimizer.safetensors'] } });
        return 'manifest.json: files must list model.safetensors';
      },
    ],
    [
      'a manifest with optimizer meta but no optimizer file',
      (dir) => {
        const m = readManifest(dir);
        writeManifest(dir, { ...m, files: { 'model.safetensors': m.files['model.safetensors'] } });
        return 'manifest.json: optimizer is set but files does not list optimizer.safetensors';
      },
    ],
    [
      'a manifest with an optimizer file but null optimizer',
      (dir) => {
        writeManifest(dir, { ...readManifest(dir), optimizer: null });
        return 'manifest.json: files lists optimizer.safetensors but optimizer is null';
      },
    ],
    [
      'a manifest with a malformed optimizer meta',
      (dir) => {
        writeManifest(dir, { ...readManifest(dir), optimizer: { optimizer: 'SGD', paramGroups: {}, state: {} } });
        return 'manifest.json: optimizer must be null or an optimizer\'s meta { optimizer, paramGroups, state } (its paramGroups must be an array, got an object)';
      },
    ],
    [
      'a model.safetensors that matches its manifest but breaks the format',
      (dir) => {
        const bytes = new Uint8Array(16);
        new DataView(bytes.buffer).setBigUint64(0, 1n << 40n, true);
        writeFileSync(join(dir, 'model.safetensors'), bytes);
        const m = readManifest(dir);
        m.files['model.safetensors'] = { sha256: sha256(bytes), bytes: 16 };
        writeManifest(dir, m);
        return 'model.safetensors: not a valid safetensors file: header length 1099511627776 is absurd: the format allows at most 100000000 bytes (100 MB)';
      },
    ],
    [
      'model.safetensors replaced by a directory',
      (dir) => {
        unlinkSync(join(dir, 'model.safetensors'));
        mkdirSync(join(dir, 'model.safetensors'));
        return 'model.safetensors: is not a regular file';
      },
    ],
  ];

  it.each(damage)('%s', (_name, harm) => {
    const dir = twoCheckpoints();
    const reason = harm(dir);
    const { checkpoint, skipped } = loadLatestCheckpoint(root);
    expect(skipped).toEqual([{ dir, reason }]);
    expect(checkpoint!.step).toBe(1);
    expect(checkpoint!.meta).toEqual({ step: 1 });
    expectThrows(() => loadCheckpoint(dir), CheckpointError, `${dir}: ${reason}`);
  });

  it('a leftover temp directory (a write that never finished) is reported and the previous checkpoint used', () => {
    const dir = twoCheckpoints();
    const tmp = join(root, '.tmp-0000000003-99999999-0123456789ab');
    mkdirSync(tmp);
    writeFileSync(join(tmp, 'model.safetensors'), readFileSync(join(dir, 'model.safetensors')).subarray(0, 50));
    const { checkpoint, skipped } = loadLatestCheckpoint(root);
    expect(checkpoint!.step).toBe(2);
    expect(skipped).toEqual([{ dir: tmp, reason: 'unfinished write: a temp directory is not a checkpoint until it is renamed to ckpt-0000000003' }]);
    // Older temp directories do not matter once a newer checkpoint verifies.
    rmSync(tmp, { recursive: true });
    mkdirSync(join(root, '.tmp-0000000001-99999999-0123456789ab'));
    expect(loadLatestCheckpoint(root).skipped).toEqual([]);
  });

  it('falls back past several bad ones, newest first, and returns null when none verifies', () => {
    saveCheckpoint(root, small(1));
    const d2 = saveCheckpoint(root, small(2));
    const d3 = saveCheckpoint(root, small(3));
    unlinkSync(join(d3, 'manifest.json'));
    writeFileSync(join(d2, 'manifest.json'), '');
    let why = '';
    try {
      JSON.parse('');
    } catch (e) {
      why = (e as Error).message;
    }
    const latest = loadLatestCheckpoint(root);
    expect(latest.checkpoint!.step).toBe(1);
    expect(latest.skipped).toEqual([
      { dir: d3, reason: 'manifest.json: file is missing' },
      { dir: d2, reason: `manifest.json: not valid JSON (${why})` },
    ]);
    const d1 = join(root, 'ckpt-0000000001');
    rmSync(join(d1, 'model.safetensors'));
    writeFileSync(join(root, 'ckpt-0000000000'), 'a file, not a directory');
    expect(loadLatestCheckpoint(root)).toEqual({
      checkpoint: null,
      skipped: [
        { dir: d3, reason: 'manifest.json: file is missing' },
        { dir: d2, reason: `manifest.json: not valid JSON (${why})` },
        { dir: d1, reason: 'model.safetensors: file is missing (the manifest lists it)' },
        { dir: join(root, 'ckpt-0000000000'), reason: 'is not a directory' },
      ],
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Listing, empty folders, names

describe('listing and empty folders', () => {
  it('a missing or empty folder holds no checkpoint', () => {
    expect(listCheckpoints(root)).toEqual([]);
    expect(loadLatestCheckpoint(root)).toEqual({ checkpoint: null, skipped: [] });
    mkdirSync(root);
    expect(listCheckpoints(root)).toEqual([]);
    expect(loadLatestCheckpoint(root)).toEqual({ checkpoint: null, skipped: [] });
  });

  it('lists ckpt-<10 digits> entries by step, newest first, ignoring every other name', () => {
    mkdirSync(root);
    for (const n of ['ckpt-0000000009', 'ckpt-0000000100', 'ckpt-0000000010', 'ckpt-12', 'ckpt-abcdefghij', 'notes.txt', '.tmp-0000000200-1-0123456789ab']) {
      mkdirSync(join(root, n));
    }
    expect(listCheckpoints(root)).toEqual([
      { step: 100, dir: join(root, 'ckpt-0000000100') },
      { step: 10, dir: join(root, 'ckpt-0000000010') },
      { step: 9, dir: join(root, 'ckpt-0000000009') },
    ]);
  });

  it('refuses a checkpoints folder that is a file, and a checkpoint directory that does not exist', () => {
    writeFileSync(root, 'not a folder');
    expectThrows(() => listCheckpoints(root), CheckpointError, `${root}: the checkpoints folder is not a directory`);
    expectThrows(() => loadLatestCheckpoint(root), CheckpointError, `${root}: the checkpoints folder is not a directory`);
    const dir = join(base, 'ckpt-0000000001');
    expectThrows(() => loadCheckpoint(dir), CheckpointError, `${dir}: the checkpoint directory does not exist`);
  });

  it('loadCheckpoint accepts a directory under any name (e.g. copied elsewhere)', () => {
    const dir = saveCheckpoint(root, small(4));
    const copy = join(base, 'best');
    mkdirSync(copy);
    for (const f of readdirSync(dir)) writeFileSync(join(copy, f), readFileSync(join(dir, f)));
    expect(loadCheckpoint(copy).step).toBe(4);
  });

  it('checkpointDirName pads the step to 10 digits', () => {
    expect(checkpointDirName(0)).toBe('ckpt-0000000000');
    expect(checkpointDirName(9_999_999_999)).toBe('ckpt-9999999999');
    expectThrows(() => checkpointDirName(-3), ValueError, 'checkpointDirName: step must be an integer from 0 to 9999999999 (got -3)');
  });
});
