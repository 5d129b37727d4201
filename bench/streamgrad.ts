// The streamgrad contender of the training benchmarks: SGD steps of a model on fixed batches, cycled.
import { Arena, SGD, Tensor, crossEntropy, setKernels, type KernelKind, type Module } from '../src/index.js';
import type { Contender } from './report.js';

/** The contender's name for a kernel kind: the default (WebAssembly SIMD) is plain 'streamgrad'. */
export const streamgradName = (kernels: KernelKind): string => (kernels === 'wasm' ? 'streamgrad' : 'streamgrad, TS kernels');

/**
 * One step = zeroGrad, forward, cross-entropy, backward, update, and the loss read back to JS, on the
 * given kernels (selected before each of its timing blocks, so it interleaves with the other kind).
 */
export function streamgradContender(model: Module, data: readonly { x: Float32Array; y: Int32Array }[], inputShape: readonly number[], lr: number,
  kernels: KernelKind = 'wasm'): Contender {
  const opt = new SGD(model.parameters(), { lr });
  const arena = new Arena(1 << 22);
  let k = 0;
  return {
    name: streamgradName(kernels),
    enter: async () => setKernels(kernels),
    step: () => {
      const { x, y } = data[k++ % data.length]!;
      opt.zeroGrad();
      arena.step(() => {
        const loss = crossEntropy(model.forward(new Tensor(x, inputShape)), y);
        loss.backward();
        loss.item();
      });
      opt.step();
    },
  };
}
