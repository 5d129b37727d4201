// The `train` config: a zod schema whose errors name the key, what was expected and what was given;
// command-line flags of the same names (`--batchSize 64`, `--optimizer.lr 0.01`); the bundled examples.
import { z } from 'zod';
import { ValueError, fmtValue } from '../src/errors.js';
import { checkModelSpec } from '../src/nn/spec.js';
import { LOSS_NAMES } from '../src/train/shard.js';

const posInt = z.int().positive();
const shape = z.array(posInt).min(1);

const layer = z.looseObject({ type: z.string() });

const mnistData = z.strictObject({
  source: z.literal('mnist'),
  /** Digits for training and for testing, from a seeded split of the 10,000 (default 8,000 / 2,000). */
  trainSize: posInt.default(8000),
  testSize: posInt.default(2000),
  /** Scale pixels to mean 0, std 1 with MNIST's statistics (default true). */
  normalize: z.boolean().default(true),
});
const irisData = z.strictObject({
  source: z.literal('iris'),
  trainSize: posInt.default(120),
  /** Standardise features with the training split's mean and std (default true). */
  standardize: z.boolean().default(true),
});

export const dataSchema = z.discriminatedUnion('source', [mnistData, irisData]);

const sgd = z.strictObject({
  type: z.literal('SGD'), lr: z.number().positive(), momentum: z.number().min(0).optional(), dampening: z.number().optional(),
  nesterov: z.boolean().optional(), weightDecay: z.number().min(0).optional(),
});
const adam = z.strictObject({
  type: z.enum(['Adam', 'AdamW']), lr: z.number().positive().optional(), betas: z.tuple([z.number(), z.number()]).optional(),
  eps: z.number().positive().optional(), weightDecay: z.number().min(0).optional(), amsgrad: z.boolean().optional(),
});

const schedule = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('step'), stepSize: posInt, gamma: z.number().positive().default(0.1) }),
  /** Cosine decay to etaMin over the run's steps (or tMax), after an optional linear warm-up. */
  z.strictObject({ type: z.literal('cosine'), tMax: posInt.optional(), etaMin: z.number().min(0).default(0), warmupSteps: z.int().min(0).default(0) }),
]);

export const configSchema = z.strictObject({
  /** Names the run folder (default: the data source). */
  name: z.string().min(1).optional(),
  model: z.strictObject({ layers: z.array(layer).min(1), dtype: z.enum(['f32', 'f64']).optional() }),
  /** Shape of one sample as the model reads it, e.g. [1, 28, 28]. */
  inputShape: shape,
  loss: z.enum(LOSS_NAMES as [string, ...string[]]).default('crossEntropy'),
  data: dataSchema,
  optimizer: z.discriminatedUnion('type', [sgd, adam]),
  schedule: schedule.optional(),
  batchSize: posInt,
  epochs: posInt.default(1),
  /** Seeded shuffling each epoch; false keeps the source's order. */
  shuffle: z.boolean().default(true),
  /** Worker threads (default: every core). */
  workers: z.int().min(1).max(256).optional(),
  mode: z.enum(['sync', 'hogwild']).default('sync'),
  /** Micro-shards per batch in sync mode (default max(4, workers)). */
  shards: posInt.optional(),
  seed: z.int().min(0).default(1),
  /** A safetensors file of weights to start from (e.g. exported from PyTorch). */
  init: z.string().min(1).optional(),
  checkpoint: z.strictObject({ everySteps: posInt.default(100), keep: posInt.default(3) }).default({ everySteps: 100, keep: 3 }),
  /** The run folder (default runs/<name>-<date>). */
  output: z.string().min(1).optional(),
});

export type TrainConfig = z.infer<typeof configSchema>;
export type DataConfig = z.infer<typeof dataSchema>;

/** One issue as a line: where, what was expected, what was given. */
function describeIssue(where: string, iss: z.core.$ZodIssue & { input?: unknown }): string {
  const path = [where, ...iss.path.map(String)].join('.');
  const got = 'input' in iss ? `, got ${fmtValue(iss.input)}` : '';
  switch (iss.code) {
    case 'invalid_type':
      return iss.input === undefined ? `${path} is missing (expected ${iss.expected})` : `${path}: expected ${iss.expected}${got}`;
    case 'invalid_value':
      return `${path}: expected ${iss.values.map((v) => JSON.stringify(v)).join(' or ')}${got}`;
    case 'unrecognized_keys':
      return `${path}: unknown key${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `'${k}'`).join(', ')}`;
    case 'too_small':
      return iss.origin === 'array'
        ? `${path}: expected at least ${iss.minimum} item${iss.minimum === 1 ? '' : 's'}${got}`
        : `${path}: expected ${iss.inclusive ? '≥' : '>'} ${iss.minimum}${got}`;
    case 'too_big':
      return `${path}: expected ${iss.inclusive ? '≤' : '<'} ${iss.maximum}${got}`;
    case 'invalid_union': {
      // A discriminated union names the discriminator in the path and gets the whole object as input.
      const m = /Expected (.*)$/.exec(iss.message);
      const key = iss.path.at(-1);
      const input = iss.input as Record<string, unknown> | undefined;
      if (m !== null && typeof key === 'string' && typeof input === 'object' && input !== null) {
        return `${path}: expected ${m[1]!.replaceAll(' | ', ' or ')}, got ${fmtValue(input[key])}`;
      }
      return `${path}: ${iss.message}${got}`;
    }
    default:
      return `${path}: ${iss.message}${got}`;
  }
}

/** Validates a config; throws one ValueError whose first line is the first problem (and counts the rest). */
export function parseConfig(raw: unknown, where = 'config'): TrainConfig {
  const r = configSchema.safeParse(raw, { reportInput: true });
  if (!r.success) {
    const lines = r.error.issues.map((iss) => describeIssue(where, iss as never));
    throw new ValueError(lines.length === 1 ? lines[0]! : `${lines[0]} (and ${lines.length - 1} more: ${lines.slice(1).join('; ')})`);
  }
  checkModelSpec(r.data.model, `${where}.model`);
  if (r.data.mode === 'hogwild' && r.data.shards !== undefined) throw new ValueError(`${where}.shards: micro-shards are a sync-mode setting (mode is 'hogwild')`);
  return r.data;
}

/** Every key a flag may set: the schema's object keys at any depth, dotted. */
function flagKeys(schema: z.ZodType, prefix: string, out: Set<string>): void {
  const def = (schema as { def?: { type?: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType>; options?: z.ZodType[] } }).def;
  if (def === undefined) return;
  if (def.type === 'optional' || def.type === 'default') return flagKeys(def.innerType!, prefix, out);
  if (def.type === 'object') {
    for (const [k, v] of Object.entries(def.shape!)) {
      const key = prefix === '' ? k : `${prefix}.${k}`;
      out.add(key);
      flagKeys(v, key, out);
    }
  }
  if (def.type === 'union') for (const o of def.options!) flagKeys(o, prefix, out);
}

export const FLAG_KEYS: ReadonlySet<string> = (() => {
  const s = new Set<string>();
  flagKeys(configSchema, '', s);
  return s;
})();

/** A flag's value: JSON when it parses as JSON (numbers, booleans, arrays, objects), else the string itself. */
function flagValue(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

/**
 * Applies `--key value` / `--key=value` flags onto a raw config (before validation). Keys are the config's
 * own, dotted for nested ones. Returns the remaining positional arguments.
 */
export function applyFlags(raw: Record<string, unknown>, args: readonly string[]): string[] {
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) {
      rest.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const key = a.slice(2, eq < 0 ? undefined : eq);
    if (!FLAG_KEYS.has(key)) {
      const near = [...FLAG_KEYS].find((k) => k.toLowerCase() === key.toLowerCase());
      throw new ValueError(`unknown option '--${key}'${near === undefined ? ' (config keys are flags: --batchSize 64, --optimizer.lr 0.01)' : ` (did you mean --${near}?)`}`);
    }
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else if (i + 1 < args.length) value = args[++i]!;
    else throw new ValueError(`option '--${key}' needs a value`);
    let target = raw;
    const parts = key.split('.');
    for (const p of parts.slice(0, -1)) {
      const next = target[p];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) target[p] = {};
      target = target[p] as Record<string, unknown>;
    }
    target[parts.at(-1)!] = flagValue(value);
  }
  return rest;
}

/** The bundled examples `train --example <name>` runs, as configs. */
export const EXAMPLE_CONFIGS: Record<string, Record<string, unknown>> = {
  mnist: {
    name: 'mnist-cnn',
    model: {
      layers: [
        { type: 'Conv2d', inChannels: 1, outChannels: 16, kernelSize: 3 }, { type: 'ReLU' }, { type: 'MaxPool2d', kernelSize: 2 },
        { type: 'Conv2d', inChannels: 16, outChannels: 32, kernelSize: 3 }, { type: 'ReLU' }, { type: 'MaxPool2d', kernelSize: 2 },
        { type: 'Flatten' }, { type: 'Linear', inFeatures: 800, outFeatures: 128 }, { type: 'ReLU' }, { type: 'Linear', inFeatures: 128, outFeatures: 10 },
      ],
    },
    inputShape: [1, 28, 28],
    data: { source: 'mnist' },
    optimizer: { type: 'Adam', lr: 0.002 },
    schedule: { type: 'cosine' },
    batchSize: 32,
    epochs: 10,
  },
  'mnist-mlp': {
    name: 'mnist-mlp',
    model: { layers: [{ type: 'Linear', inFeatures: 784, outFeatures: 128 }, { type: 'ReLU' }, { type: 'Linear', inFeatures: 128, outFeatures: 10 }] },
    inputShape: [784],
    data: { source: 'mnist' },
    optimizer: { type: 'SGD', lr: 0.02, momentum: 0.9, weightDecay: 5e-4 },
    batchSize: 32,
    epochs: 10,
  },
  iris: {
    name: 'iris',
    model: { layers: [{ type: 'Linear', inFeatures: 4, outFeatures: 16 }, { type: 'ReLU' }, { type: 'Linear', inFeatures: 16, outFeatures: 3 }] },
    inputShape: [4],
    data: { source: 'iris' },
    optimizer: { type: 'Adam', lr: 0.01 },
    batchSize: 16,
    epochs: 60,
  },
};

export function exampleConfig(name: string): Record<string, unknown> {
  const c = EXAMPLE_CONFIGS[name];
  if (c === undefined) throw new ValueError(`unknown example '${name}' (choose ${Object.keys(EXAMPLE_CONFIGS).join(', ')})`);
  return structuredClone(c);
}
