// Tests that a training step in an arena is garbage-free in steady state (DESIGN.md §2): the sampling heap
// profiler attributes (almost) no JS-heap allocation to src/ once warmed up, and the Tensor and Node objects
// a step makes are the previous step's objects, recycled. Parameters, their .grad and escaped tensors are not.
import { Session } from 'node:inspector/promises';
import { describe, expect, test } from 'vitest';
import { crossEntropy } from '../../src/loss/index.js';
import { Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { SGD } from '../../src/optim/optimizer.js';
import { Rng } from '../../src/random.js';
import { Arena } from '../../src/tensor/arena.js';
import { Tensor } from '../../src/tensor/tensor.js';

/**
 * Bytes per step that src/ may still allocate (measured: ~100-150). What is left is gather's attrs object
 * (one per crossEntropy) and code V8 has not optimised yet, which boxes the doubles it touches; before
 * the pools a step of this MLP made several KB of small objects. kernels/matmul.ts is not counted
 * (gemm's packing buffers have their own owner).
 */
const BOUND = 256;

interface ProfileNode {
  callFrame: { url: string; functionName: string };
  selfSize: number;
  children: ProfileNode[];
}

function setup() {
  const rng = new Rng(7, 0);
  const model = new Sequential(new Linear(64, 32, { rng }), new ReLU(), new Linear(32, 16, { rng }), new ReLU(), new Linear(16, 10, { rng }));
  const opt = new SGD(model.parameters(), { lr: 0.01 });
  const B = 16;
  const xs = new Float32Array(B * 64);
  rng.fillUniform(xs, -1, 1);
  const x = new Tensor(xs, [B, 64]);
  const y = Int32Array.from({ length: B }, (_, i) => i % 10);
  const arena = new Arena(1 << 16);
  // Linear's bias add broadcasts, crossEntropy runs logSoftmax (max, sub, exp, sum, log), gather and mean.
  const body = (): [Tensor, Tensor] => {
    const logits = model.forward(x);
    const loss = crossEntropy(logits, y);
    loss.backward();
    return [logits, loss];
  };
  const step = (): [Tensor, Tensor] => {
    opt.zeroGrad();
    const out = arena.step(body);
    opt.step();
    return out;
  };
  return { model, arena, step };
}

/** Heap bytes sampled per frame owner: builtins and generated kernels (no url) count for their caller. */
function bytesBySource(node: ProfileNode, owner: string, into: Map<string, number>): Map<string, number> {
  const url = node.callFrame.url || owner;
  if (node.selfSize > 0) into.set(url, (into.get(url) ?? 0) + node.selfSize);
  for (const c of node.children) bytesBySource(c, url, into);
  return into;
}

describe('a training step in an arena', () => {
  test(`allocates under ${BOUND} bytes per step in src/ once warmed up`, async () => {
    const { step } = setup();
    // Long enough for V8 to optimise the generated kernels: interpreted code boxes every double it touches.
    for (let i = 0; i < 2000; i++) step();
    const session = new Session();
    session.connect();
    const steps = 300;
    await session.post('HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
    for (let i = 0; i < steps; i++) step();
    const { profile } = await session.post('HeapProfiler.stopSampling');
    session.disconnect();
    const bySource = bytesBySource(profile.head as ProfileNode, '', new Map());
    const ours = [...bySource].filter(([url]) => url.includes('/src/') && !url.endsWith('kernels/matmul.ts'));
    const perStep = ours.reduce((acc, [, b]) => acc + b, 0) / steps;
    const detail = ours.map(([url, b]) => `${url.slice(url.indexOf('/src/'))}: ${Math.round(b / steps)}`).join(', ');
    expect(perStep, detail).toBeLessThan(BOUND);
  });

  test('step n+1 returns the Tensor and Node objects of step n, re-initialised', () => {
    const { model, step } = setup();
    const params = model.parameters();
    const first = step();
    const grads = params.map((p) => p.grad);
    const [logits, loss] = first;
    const logitsNode = logits.node;
    const lossValue = loss.item();
    const second = step();
    expect(second[0]).toBe(logits);
    expect(second[1]).toBe(loss);
    expect(logits.node).toBe(logitsNode);
    expect(logits.shape).toEqual([16, 10]);
    expect(loss.item()).not.toBe(lossValue); // a new step's value (SGD moved the weights)
    // Parameters and their gradients are never recycled.
    expect(model.parameters()).toEqual(params);
    params.forEach((p, i) => {
      expect(p.node).toBeNull();
      expect(p.grad).toBe(grads[i]);
      expect(p.grad!.shape).toEqual(p.shape);
    });
  });

  test('escaped tensors (detach, clone) and tensors made outside an arena are never recycled', () => {
    const { model, arena, step } = setup();
    step();
    const x = new Tensor(new Float32Array(64).fill(0.5), [1, 64]);
    const kept = arena.step(() => {
      const out = model.forward(x);
      return { out, detached: out.detach(), cloned: out.clone() };
    });
    const clonedValues = Array.from(kept.cloned.data);
    const [logits, loss] = step();
    for (const t of [kept.detached, kept.cloned, x]) {
      expect(t).not.toBe(logits);
      expect(t).not.toBe(loss);
    }
    expect(kept.detached.shape).toEqual([1, 10]);
    expect(Array.from(kept.cloned.data)).toEqual(clonedValues);
    expect(x.shape).toEqual([1, 64]);
    // Outside an arena every op result is a fresh object.
    const a = model.forward(x);
    const b = model.forward(x);
    expect(a).not.toBe(b);
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
  });
});
