// The `train` config: a zod schema whose errors name the key, what was expected and what was given;
// command-line flags of the same names (`--batchSize 64`, `--optimizer.lr 0.01`); the bundled examples.
import { z } from 'zod';
import { ValueError, fmtValue } from '../src/errors.js';
import { checkModelSpec } from '../src/nn/spec.js';
import { LOSS_NAMES, type LossName, takesClassIndices } from '../src/train/shard.js';
import { type CompiledMapping, type RecordMapping, compileMapping } from '../pipelines/mapping.js';

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
/** Debian's dataset-fashion-mnist, loaded into memory (so it shuffles); the test split is t10k. */
const fashionMnistData = z.strictObject({
  source: z.literal('fashion-mnist'),
  /** Where the IDX files are (default /usr/share/datasets/fashion-mnist). */
  dir: z.string().min(1).optional(),
  /** The first n images of each split, in file order (default: all 60,000 and 10,000). */
  trainSize: posInt.optional(),
  testSize: posInt.optional(),
  /** Evaluate on t10k at every epoch's end (default true). */
  test: z.boolean().default(true),
});

/** A secret as written, or { env: NAME }: read from the environment when the source opens, never stored in the run folder. */
const secret = z.union([z.string().min(1), z.strictObject({ env: z.string().min(1) })]);
const name = z.string().min(1);

/** Checked in depth by compileMapping (parseConfig), whose messages name the key under config.data.mapping. */
const mapping = z.strictObject({ features: z.array(z.unknown()), target: z.unknown() });

/** What every record source (files, stdin, brokers) takes besides where to read. */
const recordKeys = {
  mapping,
  /** JSON Lines file of rejected records (default <run>/dead-letter.jsonl). */
  deadLetter: name.optional(),
  /** The run stops once more than this fraction of the records read were rejected (default 0.1). */
  maxBadRatio: z.number().min(0).max(1).optional(),
  /** Records above this many bytes are rejected as oversized (default 1 MiB). */
  maxRecordBytes: posInt.optional(),
};
const testPath = z.strictObject({ path: name });
const idxFiles = { images: name, labels: name };

const csvData = z.strictObject({ source: z.literal('csv'), path: name, delimiter: z.string().length(1).optional(), test: testPath.optional(), ...recordKeys });
const jsonlData = z.strictObject({ source: z.literal('jsonl'), path: name, test: testPath.optional(), ...recordKeys });
/** A directory, or a glob in its last segment, of .csv/.tsv/.jsonl/.ndjson files read in name order. */
const filesData = z.strictObject({ source: z.literal('files'), path: name, test: testPath.optional(), ...recordKeys });
/** IDX images + labels; the mapping defaults to the image as a vector of inputShape's size and a label of 10 classes. */
const idxData = z.strictObject({ source: z.literal('idx'), ...idxFiles, test: z.strictObject(idxFiles).optional(), ...recordKeys, mapping: mapping.optional() });
const stdinData = z.strictObject({ source: z.literal('stdin'), format: z.enum(['jsonl', 'csv']), delimiter: z.string().length(1).optional(), ...recordKeys });
/** The NatsSourceConfig of pipelines/sources/nats.ts. */
const natsData = z.strictObject({
  source: z.literal('nats'),
  servers: z.union([name, z.array(name).min(1)]),
  stream: name,
  consumer: name,
  subject: name.optional(),
  user: name.optional(),
  pass: secret.optional(),
  token: secret.optional(),
  window: posInt.optional(),
  create: z.boolean().optional(),
  ackWaitMs: posInt.optional(),
  connectTimeoutMs: posInt.optional(),
  idleTimeoutMs: z.int().min(0).optional(),
  ...recordKeys,
});
/** The MqttSourceConfig of pipelines/sources/mqtt.ts. */
const mqttData = z.strictObject({
  source: z.literal('mqtt'),
  url: secret,
  topic: name,
  clientId: name,
  username: name.optional(),
  password: secret.optional(),
  window: posInt.max(65535).optional(),
  sessionExpirySec: posInt.optional(),
  seqField: name.optional(),
  idleTimeoutMs: z.int().min(0).optional(),
  connectTimeoutMs: posInt.optional(),
  keepaliveSec: z.int().min(0).optional(),
  ...recordKeys,
});
/** The RedisSourceConfig of pipelines/sources/redis.ts. */
const redisData = z.strictObject({
  source: z.literal('redis'),
  url: secret,
  username: name.optional(),
  password: secret.optional(),
  stream: name,
  group: name,
  consumer: name,
  field: name.optional(),
  create: z.boolean().optional(),
  window: posInt.optional(),
  blockMs: posInt.optional(),
  idleTimeoutMs: z.int().min(0).optional(),
  claimIdleMs: z.int().min(0).optional(),
  connectTimeoutMs: posInt.optional(),
  ...recordKeys,
});

export const dataSchema = z.discriminatedUnion('source', [mnistData, irisData, fashionMnistData, csvData, jsonlData, filesData, idxData, stdinData, natsData, mqttData, redisData]);

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
  /** Most steps of the whole run (a resumed run counts the steps before it); a stream's usual bound. */
  maxSteps: posInt.optional(),
  /** Seconds each train or resume invocation trains at most; it then stops cleanly, as at the source's end. */
  duration: z.number().positive().optional(),
  /**
   * Seeded shuffling each epoch; false keeps the source's order. Default: true for the in-memory datasets
   * (mnist, iris, fashion-mnist), false for record sources, which are read in order (true is an error).
   */
  shuffle: z.boolean().optional(),
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

type ParsedConfig = z.infer<typeof configSchema>;
/** A validated config: shuffle resolved for its source, an idx mapping filled in. */
export type TrainConfig = Omit<ParsedConfig, 'shuffle'> & { shuffle: boolean };
export type DataConfig = z.infer<typeof dataSchema>;
/** The sources read record by record through a mapping (and so in order). */
export type RecordDataConfig = Exclude<DataConfig, { source: 'mnist' | 'iris' | 'fashion-mnist' }>;
/** Record sources that are streams: read once, never again from the start. */
export type StreamDataConfig = Extract<DataConfig, { source: 'stdin' | 'nats' | 'mqtt' | 'redis' }>;
export type Secret = z.infer<typeof secret>;

/** The sources read record by record, and how the shuffle message names what they give. */
const IN_ORDER: Record<RecordDataConfig['source'], string> = {
  csv: 'csv files are',
  jsonl: 'jsonl files are',
  files: 'files are',
  idx: 'idx files are',
  stdin: 'stdin records are',
  nats: 'NATS messages are',
  mqtt: 'MQTT messages are',
  redis: 'Redis stream entries are',
};
const STREAMS: readonly string[] = ['stdin', 'nats', 'mqtt', 'redis'];

export function isRecordSource(d: DataConfig): d is RecordDataConfig {
  return Object.hasOwn(IN_ORDER, d.source);
}

export function isStreamSource(d: DataConfig): d is StreamDataConfig {
  return STREAMS.includes(d.source);
}

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
  return checkData(r.data, where);
}

/** The checks that span keys: the mapping against inputShape and loss, shuffle and epochs against the source. */
function checkData(c: ParsedConfig, where: string): TrainConfig {
  const d = c.data;
  const size = c.inputShape.reduce((a, b) => a * b, 1);
  const shape = `[${c.inputShape.join(', ')}]`;
  if (d.source === 'fashion-mnist' && size !== 784) throw new ValueError(`${where}.inputShape: fashion-mnist images have 784 pixels, inputShape ${shape} holds ${size}`);
  if (!isRecordSource(d)) return { ...c, shuffle: c.shuffle ?? true };
  if (c.shuffle === true) throw new ValueError(`${where}.shuffle: ${IN_ORDER[d.source]} read in order (a stream cannot be shuffled whole); set shuffle to false`);
  if (isStreamSource(d) && c.epochs > 1) {
    throw new ValueError(`${where}.epochs: source '${d.source}' is a stream, read once (got epochs ${c.epochs}); set epochs to 1 and bound the run with maxSteps or duration`);
  }
  if (isStreamSource(d) && c.schedule?.type === 'cosine' && c.schedule.tMax === undefined && c.maxSteps === undefined) {
    throw new ValueError(`${where}.schedule.tMax: a cosine schedule needs the run's length, unknown for source '${d.source}' (a stream): set schedule.tMax or maxSteps`);
  }
  const m = d.mapping ?? { features: [{ field: 'image', type: 'vector', length: size }], target: { field: 'label', type: 'class', classes: 10 } };
  let compiled: CompiledMapping;
  try {
    compiled = compileMapping(m as RecordMapping);
  } catch (e) {
    // compileMapping names keys from 'mapping'; here they live under the config's data.
    if (e instanceof ValueError && e.message.startsWith('mapping')) throw new ValueError(`${where}.data.${e.message}`);
    throw e;
  }
  if (compiled.sampleSize !== size) {
    throw new ValueError(`${where}.data.mapping: the features make ${compiled.sampleSize} values per sample, inputShape ${shape} holds ${size}`);
  }
  const target = (m.target as { type: string }).type;
  if (takesClassIndices(c.loss as LossName) !== (target === 'class')) {
    throw new ValueError(
      takesClassIndices(c.loss as LossName)
        ? `${where}.data.mapping.target.type: loss '${c.loss}' takes class indices, so the target must be 'class' (got '${target}')`
        : `${where}.data.mapping.target.type: loss '${c.loss}' takes dense targets, so the target must be 'number' or 'vector' (got 'class')`,
    );
  }
  return { ...c, data: { ...d, mapping: m } as RecordDataConfig, shuffle: false };
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
