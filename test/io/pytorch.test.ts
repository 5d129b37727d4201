// Interop with PyTorch through python/streamgrad_torch.py: the format checks and writer with python3 alone
// (any machine), model round trips both ways where python3 can import torch, and the `safetensors`
// package's reader and writer where it is installed. python/README.md shows the same snippets.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Module,
  type ModelSpec,
  type TensorEntry,
  Rng,
  Tensor,
  buildModel,
  decodeSafetensors,
  loadModule,
  loadSafetensors,
  noGrad,
  saveSafetensors,
  saveStateDict,
} from '../../src/index.js';

const PYDIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../python');
const MODULE = join(PYDIR, 'streamgrad_torch.py');
// No __pycache__ in the repo's python/ folder; one torch thread, so timings do not fight vitest's forks.
const ENV = { ...process.env, PYTHONDONTWRITEBYTECODE: '1', OMP_NUM_THREADS: '1' };

/** Runs `python` with `args`; null when it cannot start at all. */
function py(python: string, args: string[], timeout = 120_000) {
  const r = spawnSync(python, args, { encoding: 'utf8', env: ENV, timeout, maxBuffer: 64 << 20 });
  return r.error ? null : r;
}
const PYTHONS = ['/usr/bin/python3', 'python3']; // Debian's (where python3-torch installs), then the one on PATH
// One quick look per interpreter at what it could import (find_spec imports nothing), then a real import
// only where a module was found: importing torch takes seconds.
const found = PYTHONS.map((p) => {
  const r = py(p, ['-c', 'import json, sys, importlib.util as u; print(json.dumps([sys.version_info >= (3, 9)] + [u.find_spec(m) is not None for m in ("torch", "safetensors", "numpy")]))'], 60_000);
  const [ok, torch, st, np] = r?.status === 0 ? (JSON.parse(r.stdout) as boolean[]) : [false, false, false, false];
  return { p, ok, torch, st, np };
});
const imports = (p: string, code: string) => py(p, ['-c', code], 60_000)?.status === 0;
const anyPy = found.find((f) => f.ok)?.p ?? null;
const torchPy = found.find((f) => f.ok && f.torch && imports(f.p, 'import torch'))?.p ?? null;
const stPy =
  found.find((f) => f.ok && f.st && ((f.torch && imports(f.p, 'import torch, safetensors.torch')) || (f.np && imports(f.p, 'import numpy, safetensors.numpy'))))?.p ?? null;

const dir = mkdtempSync(join(tmpdir(), 'sg-pytorch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const f32 = (shape: number[], values: number[]): TensorEntry => ({ dtype: 'F32', shape, data: Float32Array.from(values) });
const f64 = (shape: number[], values: number[]): TensorEntry => ({ dtype: 'F64', shape, data: Float64Array.from(values) });
const sumOf = (a: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!; // in order, in doubles: what Python's sum() does
  return s;
};

// ---------------------------------------------------------------------------------------------
// python3 alone: the reader's checks and the writer, no torch needed.

describe('streamgrad_torch.py format checks (python3 only, no torch)', () => {
  if (!anyPy) console.info('streamgrad_torch.py self-test skipped: no python3 (3.9 or later) on this machine');

  it.skipIf(!anyPy)('accepts what streamgrad writes: the same names, dtypes, shapes, offsets, metadata and values', () => {
    const model = buildModel({ layers: [{ type: 'LSTM', inputSize: 3, hiddenSize: 4, returnLast: true }, { type: 'BatchNorm1d', numFeatures: 4 }] }, 5);
    const a = join(dir, 'self-model.safetensors');
    const b = join(dir, 'self-mixed.safetensors');
    saveStateDict(a, model);
    saveSafetensors(b, { 'w.weight': f32([2, 2], [1, 2, 3, 4]), 'w.bias': f64([2], [0.25, -8]), empty: f32([0, 3], []) }, { note: 'hi' });
    const r = py(anyPy!, [MODULE, '--selftest', a, b])!;
    expect(r.status, r.stderr).toBe(0);
    const [sa, sb] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    for (const [path, seen] of [[a, sa], [b, sb]] as const) {
      const { tensors, metadata } = loadSafetensors(path);
      expect(seen.metadata).toEqual(metadata);
      let at = 0; // streamgrad writes the tensors in order, back to back
      const want: Record<string, unknown> = {};
      for (const [name, t] of Object.entries(tensors)) {
        want[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.data.byteLength], sum: sumOf(t.data) };
        at += t.data.byteLength;
      }
      expect(seen.tensors).toEqual(want);
      expect(seen.header_bytes % 8).toBe(0);
    }
    expect(Object.keys(sa.tensors)).toEqual(Object.keys(model.stateDict()));
  });

  it.skipIf(!anyPy)('writes what streamgrad reads (sorted keys, space-padded header, metadata)', () => {
    const out = join(dir, 'self-written.safetensors');
    const r = py(anyPy!, [MODULE, '--selftest-write', out])!;
    expect(r.status, r.stderr).toBe(0);
    const { tensors, metadata } = loadSafetensors(out);
    expect(metadata).toEqual({ format: 'pt', writer: 'streamgrad_torch' });
    expect(Object.keys(tensors)).toEqual(['a', 'b', 'c']);
    expect(tensors.a).toEqual(f32([2, 3], [0, 1, 2, 3, 4, 5]));
    expect(tensors.b).toEqual(f64([2], [0.25, -8]));
    expect(tensors.c).toEqual(f32([], [1.5]));
    expect(readFileSync(out).readBigUInt64LE(0) % 8n).toBe(0n); // the data starts 8-byte aligned
  });

  // Each file breaks one rule; streamgrad and the Python reader must both refuse it, and say why alike.
  const enc = new TextEncoder();
  const file = (header: unknown, dataBytes: number, lengthField?: number): Uint8Array => {
    const h = enc.encode(typeof header === 'string' ? header : JSON.stringify(header));
    const out = new Uint8Array(8 + h.length + dataBytes);
    new DataView(out.buffer).setBigUint64(0, BigInt(lengthField ?? h.length), true);
    out.set(h, 8);
    return out;
  };
  const e = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });
  const bad: [string, Uint8Array, RegExp][] = [
    ['shorter than 8 bytes', new Uint8Array(3), /file is 3 bytes, shorter than the 8-byte header length/],
    ['header length past the end', file({}, 0, 99), /header length 99 runs past the end of the file/],
    ['absurd header length', file({}, 0, 200_000_000), /header length 200000000 is absurd/],
    ['not JSON', file('{"a":', 0), /header is not valid JSON/],
    ['not an object', file('[1]', 0), /header must be a JSON object/],
    ['leading space', file(' {}', 0), /header must start with '\{'/],
    ['unknown dtype', file({ a: e('F33', [1], 0, 4) }, 4), /tensor 'a': dtype "F33" is unknown/],
    ['shape vs bytes', file({ a: e('F32', [2], 0, 4) }, 4), /tensor 'a': dtype F32 with shape \[2\] needs 8 bytes but data_offsets \[0,4\] span 4 bytes/],
    ['a gap', file({ a: e('F32', [1], 0, 4), b: e('F32', [1], 8, 12) }, 12), /tensor 'b': data_offsets \[8,12\] leave a gap: bytes \[4,8\)/],
    ['an overlap', file({ a: e('F32', [2], 0, 8), b: e('F32', [1], 4, 8) }, 8), /tensor 'b': data_offsets \[4,8\] overlap/],
    ['past the end', file({ a: e('F32', [2], 0, 8) }, 4), /tensor 'a': data_offsets \[0,8\] run past the end of the data buffer/],
    ['trailing bytes', file({ a: e('F32', [1], 0, 4) }, 6), /data buffer has 2 trailing bytes after the last tensor/],
    ['metadata not strings', file({ __metadata__: { a: 1 } }, 0), /__metadata__ must/],
  ];
  it.skipIf(!anyPy)(`refuses the ${bad.length} kinds of bad file streamgrad refuses, with the same rule`, () => {
    const paths = bad.map(([, bytes], i) => {
      const p = join(dir, `bad-${i}.safetensors`);
      writeFileSync(p, bytes);
      return p;
    });
    bad.forEach(([what, bytes, rule], i) => {
      expect(() => decodeSafetensors(bytes, paths[i]), `streamgrad: ${what}`).toThrow(rule);
      const r = py(anyPy!, [MODULE, '--selftest', paths[i]!])!;
      expect(r.status, `python: ${what} was accepted`).toBe(1);
      expect(r.stderr, `python: ${what}`).toMatch(rule);
      expect(r.stderr).toContain(paths[i]);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Models both ways, where python3 can import torch.

interface Case {
  name: string;
  spec: ModelSpec;
  /** One batch's input shape. */
  input: number[];
  /** Consecutive batches (a stateful layer carries its state from one to the next); outputs are stacked. */
  batches?: number;
  /** The input holds integer indices in [0, indices) (Embedding). */
  indices?: number;
  /** Three train-mode batches before eval, so BatchNorm's running statistics are not 0 and 1. */
  warmup?: boolean;
}

const CASES: Case[] = [
  {
    name: 'MLP',
    spec: { layers: [{ type: 'Linear', inFeatures: 6, outFeatures: 16 }, { type: 'ReLU' }, { type: 'Linear', inFeatures: 16, outFeatures: 8 }, { type: 'Sigmoid' }, { type: 'Linear', inFeatures: 8, outFeatures: 3, bias: false }] },
    input: [5, 6],
  },
  {
    name: 'CNN (Conv2d, MaxPool2d, Flatten, Linear)',
    spec: {
      layers: [
        { type: 'Conv2d', inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1 }, { type: 'ReLU' }, { type: 'MaxPool2d', kernelSize: 2 },
        { type: 'Conv2d', inChannels: 4, outChannels: 6, kernelSize: 3 }, { type: 'Tanh' }, { type: 'Flatten' }, { type: 'Linear', inFeatures: 24, outFeatures: 5 },
      ],
    },
    input: [2, 1, 8, 8],
  },
  {
    name: 'LSTM (batchFirst, returnLast) + Linear',
    spec: { layers: [{ type: 'LSTM', inputSize: 3, hiddenSize: 8, batchFirst: true, returnLast: true }, { type: 'Linear', inFeatures: 8, outFeatures: 2 }] },
    input: [4, 5, 3],
  },
  {
    name: 'BatchNorm1d MLP in eval mode',
    spec: { layers: [{ type: 'Linear', inFeatures: 6, outFeatures: 10 }, { type: 'BatchNorm1d', numFeatures: 10, eps: 1e-3, momentum: null }, { type: 'ReLU' }, { type: 'Linear', inFeatures: 10, outFeatures: 3 }] },
    input: [8, 6],
    warmup: true,
  },
  {
    name: 'CNN with strides, dilation, groups, BatchNorm2d, pools, Dropout, LogSoftmax',
    spec: {
      layers: [
        { type: 'Conv2d', inChannels: 2, outChannels: 4, kernelSize: [3, 2], stride: [2, 1], padding: 1, dilation: [1, 2] },
        { type: 'Conv2d', inChannels: 4, outChannels: 4, kernelSize: 1, groups: 2, bias: false },
        { type: 'BatchNorm2d', numFeatures: 4 }, { type: 'Sigmoid' },
        { type: 'MaxPool2d', kernelSize: 3, stride: 2, padding: 1 }, { type: 'AvgPool2d', kernelSize: 2, stride: 1, padding: 1 },
        { type: 'AdaptiveAvgPool2d' }, { type: 'Flatten' }, { type: 'Linear', inFeatures: 4, outFeatures: 3 }, { type: 'Dropout', p: 0.3 }, { type: 'LogSoftmax', dim: 1 },
      ],
    },
    input: [3, 2, 9, 7],
    warmup: true,
  },
  {
    name: 'Embedding, LayerNorm, 2-layer GRU (batchFirst, returnLast), Softmax',
    spec: {
      layers: [
        { type: 'Embedding', numEmbeddings: 10, embeddingDim: 6, paddingIdx: 0 }, { type: 'LayerNorm', normalizedShape: [6] },
        { type: 'GRU', inputSize: 6, hiddenSize: 5, numLayers: 2, batchFirst: true, returnLast: true }, { type: 'Tanh' },
        { type: 'Linear', inFeatures: 5, outFeatures: 4 }, { type: 'Softmax' },
      ],
    },
    input: [3, 7],
    indices: 10,
  },
  {
    name: '2-layer RNN without bias, every step',
    spec: { layers: [{ type: 'RNN', inputSize: 4, hiddenSize: 6, numLayers: 2, bias: false }] },
    input: [5, 3, 4],
  },
  {
    name: 'stateful LSTM over 3 consecutive batches',
    spec: { layers: [{ type: 'LSTM', inputSize: 3, hiddenSize: 5, returnLast: true, stateful: true }, { type: 'Linear', inFeatures: 5, outFeatures: 2 }] },
    input: [2, 4, 3],
    batches: 3,
  },
  {
    name: 'f64 MLP',
    spec: { dtype: 'f64', layers: [{ type: 'Linear', inFeatures: 4, outFeatures: 8 }, { type: 'Tanh' }, { type: 'Linear', inFeatures: 8, outFeatures: 2 }, { type: 'LogSoftmax', dim: 1 }] },
    input: [5, 4],
  },
];

/** Inputs for `c`: [batches, ...input], normal or integer indices, in the model's dtype. */
function inputsFor(c: Case, stream: number): TensorEntry {
  const shape = [c.batches ?? 1, ...c.input];
  const n = shape.reduce((a, b) => a * b, 1);
  const f64Model = c.spec.dtype === 'f64';
  const data = f64Model ? new Float64Array(n) : new Float32Array(n);
  const rng = new Rng(2024, stream);
  for (let i = 0; i < n; i++) data[i] = c.indices ? rng.int(c.indices) : rng.normal();
  return { dtype: f64Model ? 'F64' : 'F32', shape, data };
}

/** The model's outputs on the consecutive batches of `x`, stacked: [batches, ...output]. */
function outputs(model: Module, x: TensorEntry): TensorEntry {
  const [batches, ...shape] = x.shape;
  const per = x.data.length / batches!;
  const ys = noGrad(() => Array.from({ length: batches! }, (_, i) => model.forward(new Tensor(x.data.subarray(i * per, (i + 1) * per), shape))));
  const data = x.dtype === 'F64' ? new Float64Array(ys.length * ys[0]!.size) : new Float32Array(ys.length * ys[0]!.size);
  ys.forEach((y, i) => data.set(y.data, i * y.size));
  return { dtype: x.dtype, shape: [batches!, ...ys[0]!.shape], data };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const tol = (c: Case) => (c.spec.dtype === 'f64' ? 1e-12 : 1e-5);

// One python process for every case: (a) load streamgrad's files into build_sequential(spec) and compute
// its outputs; (b) build the torch model from a torch seed and save its weights and outputs for streamgrad.
// The load and save lines are python/README.md's.
const DRIVER = `
import json, sys, torch
sys.path.insert(0, sys.argv[1])  # the repo's python/ folder
from streamgrad_torch import build_sequential, load_safetensors, save_safetensors, streamgrad_state_dict
try:
    from safetensors.torch import load_file, save_file  # the safetensors package, where installed
except ImportError:
    load_file = save_file = None

def outputs(model, spec, x):  # x: [batches, ...]; stateful layers carry their state across batches
    if spec["layers"][0]["type"] == "Embedding":
        x = x.long()
    with torch.no_grad():
        return torch.stack([model(xb) for xb in x])

results = {}
for case in json.load(open(sys.argv[2])):
    d, spec = case["dir"], case["spec"]
    io = load_safetensors(f"{d}/sg-io.safetensors")

    # (a) streamgrad -> PyTorch
    model = build_sequential(spec)
    model.load_state_dict(load_safetensors(f"{d}/sg-model.safetensors"))  # strict: every key and shape
    model.eval()
    if load_file is not None:  # the package reads the same tensors
        ref = load_file(f"{d}/sg-model.safetensors")
        assert all(torch.equal(ref[k], v) for k, v in model.state_dict().items() if v.is_floating_point())
    y = outputs(model, spec, io["x"])
    results[case["name"]] = {"keys": list(model.state_dict()), "shape": list(y.shape), "max_abs_diff": (y - io["y"]).abs().max().item()}

    # (b) PyTorch -> streamgrad: torch's own initialisation; BatchNorm statistics from train-mode batches
    torch.manual_seed(case["seed"])
    model = build_sequential(spec)
    if "warmup" in io:
        with torch.no_grad():
            for xb in io["warmup"]:
                model(xb)
    model.eval()
    if save_file is not None:
        save_file(streamgrad_state_dict(model), f"{d}/torch-model.safetensors")
    else:
        save_safetensors(f"{d}/torch-model.safetensors", streamgrad_state_dict(model))
    save_safetensors(f"{d}/torch-io.safetensors", {"y": outputs(model, spec, io["x"])})
print(json.dumps(results))
`;

describe('round trips through PyTorch (build_sequential + streamgrad_torch.py)', () => {
  if (!torchPy) {
    console.info('PyTorch round trips skipped: neither /usr/bin/python3 nor python3 can import torch (Debian: apt-get install python3-torch)');
  }
  let results: Record<string, { keys: string[]; shape: number[]; max_abs_diff: number }> = {};
  const observed: Record<string, [number, number]> = {};

  beforeAll(() => {
    if (!torchPy) return;
    const cases = CASES.map((c, i) => {
      const d = join(dir, `case-${i}`);
      mkdirSync(d);
      const model = buildModel(c.spec, 11 + i);
      const x = inputsFor(c, i);
      const io: Record<string, TensorEntry> = { x };
      if (c.warmup) {
        const w = inputsFor({ ...c, batches: 3 }, 100 + i);
        io.warmup = w;
        outputs(model, w); // train mode: updates the running statistics
      }
      model.eval();
      io.y = outputs(model, x);
      saveStateDict(join(d, 'sg-model.safetensors'), model);
      saveSafetensors(join(d, 'sg-io.safetensors'), io);
      return { name: c.name, dir: d, spec: c.spec, seed: 7 + i };
    });
    writeFileSync(join(dir, 'cases.json'), JSON.stringify(cases));
    const r = py(torchPy, ['-c', DRIVER, PYDIR, join(dir, 'cases.json')], 300_000);
    if (r?.status !== 0) throw new Error(`${torchPy} failed (${r?.status}):\n${r?.stderr}`);
    results = JSON.parse(r.stdout);
  }, 300_000);

  afterAll(() => {
    if (torchPy && Object.keys(observed).length > 0) {
      const lines = Object.entries(observed).map(([n, [a, b]]) => `  ${n}: streamgrad→torch ${a.toExponential(2)}, torch→streamgrad ${b.toExponential(2)}`);
      console.info(`PyTorch round trips, max |Δ| of outputs (${torchPy}):\n${lines.join('\n')}`);
    }
  });

  CASES.forEach((c, i) => {
    it.skipIf(!torchPy)(`${c.name}: streamgrad → PyTorch, same keys and outputs within ${tol(c)}`, () => {
      const r = results[c.name]!;
      expect(r, 'python produced no result').toBeDefined();
      expect(r.keys).toEqual(Object.keys(buildModel(c.spec, 0).stateDict()));
      const ours = loadSafetensors(join(dir, `case-${i}`, 'sg-io.safetensors')).tensors.y!;
      expect(r.shape).toEqual(ours.shape);
      expect(r.max_abs_diff).toBeLessThanOrEqual(tol(c));
      (observed[c.name] ??= [NaN, NaN])[0] = r.max_abs_diff;
    });

    it.skipIf(!torchPy)(`${c.name}: PyTorch → streamgrad, loadModule and outputs within ${tol(c)}`, () => {
      const d = join(dir, `case-${i}`);
      const model = buildModel(c.spec, 999);
      loadModule(model, join(d, 'torch-model.safetensors'));
      model.eval();
      const want = loadSafetensors(join(d, 'torch-io.safetensors')).tensors.y!;
      const got = outputs(model, inputsFor(c, i));
      expect(got.shape).toEqual(want.shape);
      expect(got.dtype).toBe(want.dtype);
      const diff = maxAbsDiff(got.data, want.data);
      expect(diff).toBeLessThanOrEqual(tol(c));
      (observed[c.name] ??= [NaN, NaN])[1] = diff;
    });
  });
});

describe('streamgrad_torch.py with torch: other dtypes, and why streamgrad_state_dict exists', () => {
  it.skipIf(!torchPy)('writes and reads F16, BF16, I64, I32, I16, I8, U8, BOOL; streamgrad loads I64 (torch\'s state_dict as is) and names the dtypes it cannot load', () => {
    const other = join(dir, 'dtypes.safetensors');
    const raw = join(dir, 'raw-state-dict.safetensors');
    const fixed = join(dir, 'fixed-state-dict.safetensors');
    const spec: ModelSpec = { layers: [{ type: 'Linear', inFeatures: 2, outFeatures: 3 }, { type: 'BatchNorm1d', numFeatures: 3 }] };
    const script = `
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from streamgrad_torch import build_sequential, load_safetensors, save_safetensors, streamgrad_state_dict
x = torch.arange(-3, 3).reshape(2, 3)
ts = {"f16": x.half() / 4, "bf16": x.bfloat16() / 4, "i64": x, "i32": x.int(), "i16": x.short(), "i8": x.to(torch.int8), "u8": x.abs().to(torch.uint8), "bool": x > 0}
save_safetensors(sys.argv[2], ts, {"format": "pt"})
back = load_safetensors(sys.argv[2])
assert list(back) == sorted(ts) and all(back[k].dtype == v.dtype and torch.equal(back[k], v) for k, v in ts.items())
model = build_sequential(json.loads(sys.argv[5]))
save_safetensors(sys.argv[3], model.state_dict())              # num_batches_tracked stays int64
save_safetensors(sys.argv[4], streamgrad_state_dict(model))   # ... becomes float32
`;
    const r = py(torchPy!, ['-c', script, PYDIR, other, raw, fixed, JSON.stringify(spec)])!;
    expect(r.status, r.stderr).toBe(0);
    expect(() => loadSafetensors(other)).toThrow(/dtypes\.safetensors: tensor 'bf16': dtype BF16 is not supported \(streamgrad loads F32, F64, and I64 as F64\)/);
    const model = buildModel(spec);
    loadModule(model, raw); // torch's own state_dict: num_batches_tracked is int64, read as a float
    loadModule(model, fixed);
    expect(model.stateDict()['1.running_var']!.data).toEqual(Float32Array.from([1, 1, 1]));
  });
});

// ---------------------------------------------------------------------------------------------
// The safetensors package itself (moved here from safetensors.test.ts): runs where it is installed,
// with torch or numpy. Debian has no python3-safetensors, so on the build machines this is skipped.

describe('cross-check with the Python safetensors package', () => {
  const withTorch = stPy !== null && imports(stPy, 'import torch, safetensors.torch');
  if (!stPy) console.info('safetensors package cross-check skipped: no python3 can import safetensors (with torch or numpy)');

  it.skipIf(!stPy)(`Python loads what we save and we load what Python saves${stPy ? '' : ' (skipped: no python3 can import safetensors)'}`, () => {
    const ours = join(dir, 'ours.safetensors');
    const theirs = join(dir, 'theirs.safetensors');
    saveSafetensors(ours, { 'w.weight': f32([2, 2], [1, 2, 3, 4]), 'w.bias': f64([2], [0.25, -8]) }, { note: 'hi' });
    const script = withTorch
      ? `
import json, sys, torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open
t = load_file(sys.argv[1])
with safe_open(sys.argv[1], 'pt') as f: meta = f.metadata()
print(json.dumps({k: {'dtype': str(v.dtype), 'shape': list(v.shape), 'values': v.flatten().tolist()} for k, v in t.items()} | {'__meta__': meta}))
save_file({'x': torch.arange(6, dtype=torch.float32).reshape(2, 3), 'y': torch.tensor(1.5, dtype=torch.float64)}, sys.argv[2], metadata={'format': 'pt'})
`
      : `
import json, sys, numpy as np
from safetensors.numpy import load_file, save_file
from safetensors import safe_open
t = load_file(sys.argv[1])
with safe_open(sys.argv[1], 'np') as f: meta = f.metadata()
print(json.dumps({k: {'dtype': 'torch.' + {'float32': 'float32', 'float64': 'float64'}[str(v.dtype)], 'shape': list(v.shape), 'values': v.flatten().tolist()} for k, v in t.items()} | {'__meta__': meta}))
save_file({'x': np.arange(6, dtype=np.float32).reshape(2, 3), 'y': np.array(1.5, dtype=np.float64)}, sys.argv[2], metadata={'format': 'pt'})
`;
    const r = py(stPy!, ['-c', script, ours, theirs])!;
    // stderr may hold harmless warnings (torch without numpy): only the exit status decides.
    expect(r.status, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout);
    expect(seen['w.weight']).toEqual({ dtype: 'torch.float32', shape: [2, 2], values: [1, 2, 3, 4] });
    expect(seen['w.bias']).toEqual({ dtype: 'torch.float64', shape: [2], values: [0.25, -8] });
    expect(seen.__meta__).toEqual({ note: 'hi' });

    const { tensors, metadata } = loadSafetensors(theirs);
    expect(metadata).toEqual({ format: 'pt' });
    expect(tensors.x).toEqual(f32([2, 3], [0, 1, 2, 3, 4, 5]));
    expect(tensors.y).toEqual(f64([], [1.5]));
  });
});
