import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Linear, ReLU, Sequential, loadModule, loadStateDictFile, manualSeed, saveStateDict, tensor, noGrad } from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-sd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function mlp(dtype: 'f32' | 'f64') {
  return new Sequential(new Linear(3, 4, { dtype }), new ReLU(), new Linear(4, 2, { dtype }));
}

describe('state dict ↔ safetensors', () => {
  for (const dtype of ['f32', 'f64'] as const) {
    it(`round-trips a ${dtype} model: same names, shapes, values, outputs`, () => {
      manualSeed(3);
      const a = mlp(dtype);
      const path = join(dir, `m-${dtype}.safetensors`);
      saveStateDict(path, a);
      const sd = loadStateDictFile(path);
      expect(Object.keys(sd)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
      expect(sd['0.weight']!.shape).toEqual([4, 3]);
      expect(sd['0.weight']!.dtype).toBe(dtype);
      manualSeed(99);
      const b = mlp(dtype);
      loadModule(b, path);
      const x = tensor([[0.1, -0.2, 0.3], [1, 2, 3]], { dtype });
      const ya = noGrad(() => a.forward(x)).data;
      const yb = noGrad(() => b.forward(x)).data;
      expect(Array.from(yb)).toEqual(Array.from(ya));
    });
  }

  it('names the file and the key when a tensor is missing, and changes nothing', () => {
    manualSeed(3);
    const small = new Sequential(new Linear(3, 4));
    const path = join(dir, 'small.safetensors');
    saveStateDict(path, small);
    const target = mlp('f32');
    const before = Array.from(target.stateDict()['0.weight']!.data);
    expect(() => loadModule(target, path)).toThrow(new RegExp(`small\\.safetensors: loadStateDict\\(Sequential\\): missing keys '2\\.weight', '2\\.bias'`));
    expect(Array.from(target.stateDict()['0.weight']!.data)).toEqual(before);
  });

  it('refuses a truncated file with the format rule', () => {
    const path = join(dir, 'trunc.safetensors');
    saveStateDict(path, mlp('f32'));
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 4));
    expect(() => loadStateDictFile(path)).toThrow(/trunc\.safetensors.*tensor '2\.bias'/);
  });
});
