// Initialisers with PyTorch's defaults, drawing from a seeded counter-based Rng.
import { type Rng, defaultRng } from '../random.js';
import { type DType, Tensor, allocStorage } from '../tensor/tensor.js';
import { numel } from '../tensor/shape.js';

/** fan_in of a weight: its second axis times the receptive field (torch.nn.init._calculate_fan_in_and_fan_out). */
export function fanIn(shape: readonly number[]): number {
  return shape.length < 2 ? shape[0] ?? 1 : shape[1]! * numel(shape.slice(2));
}

/** A persistent tensor of U(−bound, bound) values. */
export function uniform(shape: readonly number[], bound: number, dtype: DType, rng: Rng = defaultRng()): Tensor {
  const data = allocStorage(dtype, numel(shape), false, true);
  rng.fillUniform(data, -bound, bound);
  return new Tensor(data, shape.slice());
}

/**
 * kaiming_uniform_(a=√5), PyTorch's default for Linear and Conv weights: gain √(2/(1+5)) gives
 * bound = gain·√3/√fan_in = 1/√fan_in.
 */
export function defaultWeight(shape: readonly number[], dtype: DType, rng?: Rng): Tensor {
  const f = fanIn(shape);
  return uniform(shape, f > 0 ? 1 / Math.sqrt(f) : 0, dtype, rng);
}

/** PyTorch's default bias: U(−1/√fan_in, 1/√fan_in) with the weight's fan_in. */
export function defaultBias(size: number, weightFanIn: number, dtype: DType, rng?: Rng): Tensor {
  return uniform([size], weightFanIn > 0 ? 1 / Math.sqrt(weightFanIn) : 0, dtype, rng);
}
