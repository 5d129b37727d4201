// OptimizerSpec: an optimizer as plain JSON data, so a worker (Hogwild) or a config file can build it.
import { ValueError, fmtValue } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Adam, AdamW, type AdamOptions, type AdamWOptions, type Optimizer, SGD, type SGDOptions } from './optimizer.js';

export type OptimizerSpec = ({ type: 'SGD' } & SGDOptions) | ({ type: 'Adam' } & AdamOptions) | ({ type: 'AdamW' } & AdamWOptions);

/** The optimizer `spec` names over `params`; its constructor checks the values. */
export function buildOptimizer(spec: OptimizerSpec, params: readonly Tensor[], where = 'optimizer'): Optimizer {
  if (typeof spec !== 'object' || spec === null) throw new ValueError(`${where} must be an object with a 'type' (got ${fmtValue(spec)})`);
  const { type, ...opts } = spec;
  switch (type) {
    case 'SGD':
      return new SGD(params, opts as SGDOptions);
    case 'Adam':
      return new Adam(params, opts as AdamOptions);
    case 'AdamW':
      return new AdamW(params, opts as AdamWOptions);
    default:
      throw new ValueError(`${where}.type must be one of SGD, Adam, AdamW (got ${fmtValue(type)})`);
  }
}
