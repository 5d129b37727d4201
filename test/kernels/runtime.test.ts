// The WebAssembly kernels' run time: choosing the kernels, falling back with one notice where WebAssembly
// (SIMD) or the compiled module is missing, the heap shared between threads, and operands read in place.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ValueError } from '../../src/errors.js';
import { WASM_FILE, WasmHeap, createHeap, kernelsInUse, setKernels, wasmHeap } from '../../src/kernels/wasm/runtime.js';
import { Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { shareParameters } from '../../src/nn/param-layout.js';
import { crossEntropy } from '../../src/loss/index.js';
import { Arena } from '../../src/tensor/arena.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { expectThrows } from '../helpers/grad.js';

const root = new URL('../..', import.meta.url).pathname;
afterAll(() => setKernels('auto'));

/** Runs a TypeScript snippet in a fresh Node process (with `nodeFlags`), returning its exit status and output. */
function runSnippet(code: string, env: Record<string, string> = {}, nodeFlags: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'streamgrad-kernels-'));
  try {
    const file = join(dir, 'snippet.mts');
    writeFileSync(file, code);
    const r = spawnSync(process.execPath, [...nodeFlags, '--import', 'tsx', file], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env, NODE_OPTIONS: '' } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const GEMM_SNIPPET = (runtime: string, matmul: string): string => `
  import { kernelsInUse } from '${runtime}';
  import { gemm } from '${matmul}';
  const C = new Float32Array(64 * 64);
  for (let i = 0; i < 3; i++) gemm(false, false, 64, 64, 64, new Float32Array(64 * 64).fill(1), 0, new Float32Array(64 * 64).fill(2), 0, C, 0, false);
  console.log(JSON.stringify({ kernels: kernelsInUse(), c: C[100] }));
`;
const RUNTIME = `${root}src/kernels/wasm/runtime.ts`;
const MATMUL = `${root}src/kernels/matmul.ts`;

describe('choosing the kernels', () => {
  test('setKernels takes wasm, ts or auto and refuses anything else', () => {
    setKernels('ts');
    expect(kernelsInUse()).toBe('ts');
    expect(wasmHeap()).toBeNull();
    setKernels('auto');
    expect(kernelsInUse()).toBe('wasm');
    expectThrows(() => setKernels('simd' as never), ValueError, "setKernels: kind must be 'wasm', 'ts' or 'auto' (got \"simd\")");
  });

  test('STREAMGRAD_KERNELS=ts selects the TypeScript kernels; a bad value is a clear error at the first product', () => {
    const ts = runSnippet(GEMM_SNIPPET(RUNTIME, MATMUL), { STREAMGRAD_KERNELS: 'ts' });
    expect(JSON.parse(ts.stdout)).toEqual({ kernels: 'ts', c: 128 });
    const bad = runSnippet(GEMM_SNIPPET(RUNTIME, MATMUL), { STREAMGRAD_KERNELS: 'gpu' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain("STREAMGRAD_KERNELS must be 'wasm', 'ts' or 'auto' (got \"gpu\")");
  });
});

describe('fallback', () => {
  test('without WebAssembly (node --jitless) the TypeScript kernels run, after exactly one notice', () => {
    const r = runSnippet(GEMM_SNIPPET(RUNTIME, MATMUL), {}, ['--jitless']);
    expect(JSON.parse(r.stdout)).toEqual({ kernels: 'ts', c: 128 });
    const notices = r.stderr.split('\n').filter((l) => l.includes('streamgrad: using the TypeScript kernels'));
    expect(notices).toHaveLength(1);
    expect(notices[0]).toContain('because this runtime has no WebAssembly');
  });

  test('asking for the WebAssembly kernels where there are none is an error, not a silent fallback', () => {
    const r = runSnippet(GEMM_SNIPPET(RUNTIME, MATMUL), { STREAMGRAD_KERNELS: 'wasm' }, ['--jitless']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('WebAssembly SIMD kernels were requested, but this runtime has no WebAssembly');
  });

  test('a missing kernels.wasm falls back with a notice that says how to build it', () => {
    // The runtime and the gemm, copied to a tree without the compiled module.
    const dir = mkdtempSync(join(tmpdir(), 'streamgrad-nowasm-'));
    try {
      mkdirSync(join(dir, 'src/kernels/wasm'), { recursive: true });
      copyFileSync(`${root}src/errors.ts`, join(dir, 'src/errors.ts'));
      copyFileSync(RUNTIME, join(dir, 'src/kernels/wasm/runtime.ts'));
      copyFileSync(MATMUL, join(dir, 'src/kernels/matmul.ts'));
      const r = runSnippet(GEMM_SNIPPET(join(dir, 'src/kernels/wasm/runtime.ts'), join(dir, 'src/kernels/matmul.ts')));
      expect(JSON.parse(r.stdout)).toEqual({ kernels: 'ts', c: 128 });
      expect(r.stderr).toContain(`streamgrad: using the TypeScript kernels, because of the WebAssembly SIMD kernels: ${join(dir, 'src/kernels/wasm/kernels.wasm')} is missing (run \`npm run build:wasm\`)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the compiled module', () => {
  test('imports only a shared memory and has no data segments, so another thread instantiating it on the same memory overwrites nothing', () => {
    const bytes = readFileSync(WASM_FILE);
    const mod = new WebAssembly.Module(bytes);
    expect(WebAssembly.Module.imports(mod)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    // Walk the sections: id 11 is Data, id 12 DataCount.
    const ids: number[] = [];
    for (let p = 8; p < bytes.length;) {
      const id = bytes[p++]!;
      let size = 0;
      for (let shift = 0; ; shift += 7) {
        const b = bytes[p++]!;
        size |= (b & 0x7f) << shift;
        if ((b & 0x80) === 0) break;
      }
      ids.push(id);
      p += size;
    }
    expect(ids).toContain(10); // code
    expect(ids).not.toContain(11);
    expect(ids).not.toContain(12);
  });

  test('builds from source with the project script', () => {
    const out = execFileSync(process.execPath, [`${root}scripts/build-wasm.mjs`], { cwd: root, encoding: 'utf8' });
    expect(out).toBe('');
    expect(readFileSync(WASM_FILE).length).toBeGreaterThan(1000);
  });
});

describe('the heap', () => {
  test('two heaps on one memory (as two threads) hand out disjoint chunks, and a released chunk is reused', () => {
    setKernels('wasm');
    const a = createHeap()!;
    const b = new WasmHeap(a.memory, new WebAssembly.Module(readFileSync(WASM_FILE)));
    const chunks: [number, number][] = [];
    for (let i = 0; i < 50; i++) {
      const bytes = 1 + ((i * 7919) % 300_000);
      chunks.push([(i % 2 === 0 ? a : b).alloc(bytes), bytes]);
    }
    chunks.sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < chunks.length; i++) expect(chunks[i]![0]).toBeGreaterThanOrEqual(chunks[i - 1]![0] + chunks[i - 1]![1]);
    expect(chunks[0]![0] % 64).toBe(0);
    expect(a.memory.buffer.byteLength).toBeGreaterThanOrEqual(chunks.at(-1)![0] + chunks.at(-1)![1]);
    const [addr, bytes] = chunks[10]!;
    a.release(addr, bytes);
    expect(a.alloc(bytes)).toBe(addr);
  });

  test('a training step whose parameters and arena live in the heap copies nothing; parameters outside are copied in', () => {
    setKernels('wasm');
    const heap = wasmHeap()!;
    const model = new Sequential(new Linear(40, 32), new ReLU(), new Linear(32, 10));
    const { params } = shareParameters(model);
    const x = heap.view('f32', heap.alloc(16 * 40 * 4), 16 * 40).fill(0.5) as Float32Array;
    const y = Int32Array.from({ length: 16 }, (_, i) => i % 10);
    const arena = new Arena(1 << 16);
    const step = (): number => {
      const before = heap.stagedBytes;
      arena.step(() => crossEntropy(model.forward(new Tensor(x, [16, 40])), y).backward());
      return heap.stagedBytes - before;
    };
    step();
    expect(step()).toBeGreaterThan(0); // the weights are plain SharedArrayBuffers: copied in
    const inHeap = heap.view('f32', heap.alloc(params.byteLength), params.length);
    inHeap.set(params);
    shareParameters(model, { params: inHeap });
    step(); // the arena grows to fit once
    expect(step()).toBe(0);
  });
});
