// The streamgrad contender of the training benchmarks: SGD steps of a model on fixed batches, cycled.
import { Arena, SGD, Tensor, crossEntropy, type Module } from '../src/index.js';
import type { Contender } from './report.js';

/** One step = zeroGrad, forward, cross-entropy, backward, update, and the loss read back to JS. */
export function streamgradContender(model: Module, data: readonly { x: Float32Array; y: Int32Array }[], inputShape: readonly number[], lr: number): Contender {
  const opt = new SGD(model.parameters(), { lr });
  const arena = new Arena(1 << 22);
  let k = 0;
  return {
    name: 'streamgrad',
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
