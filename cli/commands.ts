// The run-folder commands besides train: eval, predict, inspect, gradcheck, report, bench. Each reads
// what it needs, checks it with a message that says how to fix it, and prints text or JSON Lines.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ValueError } from '../src/errors.js';
import { noGrad } from '../src/autograd/engine.js';
import { gradCheck } from '../src/autograd/grad-check.js';
import { loadSafetensors } from '../src/io/safetensors.js';
import { type ModelSpec, buildModel } from '../src/nn/spec.js';
import { softmax } from '../src/ops/composite.js';
import { Rng } from '../src/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { type LossName, summedLoss, takesClassIndices } from '../src/train/shard.js';
import { parseConfig } from './config.js';
import { evalSetSize, evaluateSet, loadSplit, preprocessing } from './data.js';
import { loadRunModel } from './train.js';

type Write = (s: string) => void;

/** `eval <run> [--data test|train]`: loss, accuracy and the confusion matrix of the run's model (loss only for dense targets). */
export async function evalCommand(dir: string, o: { data: string; json: boolean }, write: Write): Promise<void> {
  const { config, model } = loadRunModel(dir);
  if (o.data !== 'test' && o.data !== 'train') throw new ValueError(`--data must be 'test' or 'train' (the run's own split; got '${o.data}')`);
  const d = await loadSplit(config, o.data);
  if (d === null) throw new ValueError(`run '${dir}' has no test split`);
  const n = evalSetSize(d);
  const r = evaluateSet(model, d, config);
  if (o.json) {
    write(`${JSON.stringify(r.confusion === null ? { data: o.data, samples: n, loss: r.loss } : { data: o.data, samples: n, loss: r.loss, accuracy: r.accuracy, confusion: r.confusion })}\n`);
    return;
  }
  write(`${o.data} split: ${n} samples, loss ${r.loss.toFixed(4)}${r.accuracy === null ? '' : `, accuracy ${(100 * r.accuracy).toFixed(2)}%`}\n`);
  if (r.confusion === null) return;
  write('confusion matrix (rows: target, columns: predicted)\n');
  const w = Math.max(3, ...r.confusion.flat().map((v) => String(v).length));
  write(`${' '.repeat(4)}${r.confusion.map((_, j) => String(j).padStart(w + 1)).join('')}\n`);
  r.confusion.forEach((row, i) => write(`${String(i).padStart(3)} ${row.map((v) => String(v).padStart(w + 1)).join('')}\n`));
}

/**
 * `predict <run> --input file|-`: one JSON line in per sample, one JSON line out: the class (and its name
 * when the data names classes) with the probabilities, or the output. A line is the model's input as numbers
 * (an array, nested or flat, or {"input": [...]}), raw as the data source gives them: the run's scaling
 * applies. For a run trained on a record source it may also be a record, a JSON object with the mapping's
 * fields (no target needed), mapped as training mapped it.
 */
export async function predictCommand(dir: string, input: string, write: Write): Promise<number> {
  const { config, model } = loadRunModel(dir);
  model.eval();
  const size = config.inputShape.reduce((a, b) => a * b, 1);
  const classes = takesClassIndices(config.loss as LossName);
  const { transform, fromRecord, classNames } = preprocessing(config);
  if (input !== '-' && !existsSync(input)) throw new ValueError(`--input '${input}' does not exist (give a JSON Lines file, or - for stdin)`);
  const stream = input === '-' ? process.stdin : (await import('node:fs')).createReadStream(input);
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let n = 0;
  let bad = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    let v64: Float64Array;
    try {
      const v = JSON.parse(line) as unknown;
      const arr = Array.isArray(v) ? v : (v as { input?: unknown })?.input;
      if (!Array.isArray(arr) && fromRecord !== null && typeof v === 'object' && v !== null) {
        v64 = fromRecord(v); // a record: the mapping scales it
      } else {
        if (!Array.isArray(arr)) throw new Error(fromRecord === null ? 'expected an array of numbers or {"input": [...]}' : 'expected a record (a JSON object with the mapping\'s fields), an array of numbers or {"input": [...]}');
        const values = (arr as unknown[]).flat(Infinity) as number[];
        if (values.length !== size) throw new Error(`expected ${size} numbers for input shape [${config.inputShape.join(',')}], got ${values.length}`);
        if (!values.every((x) => typeof x === 'number' && Number.isFinite(x))) throw new Error('every value must be a finite number');
        v64 = Float64Array.from(values);
        transform(v64);
      }
    } catch (e) {
      bad++;
      write(`${JSON.stringify({ line: n, error: (e as Error).message })}\n`);
      continue;
    }
    const dtype = config.model.dtype ?? 'f32';
    const x = new Tensor(dtype === 'f32' ? Float32Array.from(v64) : v64, [1, ...config.inputShape]);
    const out = noGrad(() => model.forward(x));
    if (classes) {
      const p = Array.from(noGrad(() => softmax(out, -1)).data);
      const k = p.indexOf(Math.max(...p));
      const name = classNames?.[k];
      write(`${JSON.stringify({ line: n, prediction: k, ...(name === undefined ? {} : { class: name }), probabilities: p.map((v) => Number(v.toFixed(6))) })}\n`);
    } else {
      write(`${JSON.stringify({ line: n, output: Array.from(out.data) })}\n`);
    }
  }
  return bad;
}

/** `inspect <model.safetensors|run>`: tensors with dtypes, shapes and counts; a run's layers too. */
export function inspectCommand(path: string, write: Write): void {
  if (!existsSync(path)) throw new ValueError(`'${path}' does not exist (give a .safetensors file or a run folder)`);
  let file = path;
  if (statSync(path).isDirectory()) {
    file = join(path, 'model.safetensors');
    const cfg = join(path, 'config.json');
    if (!existsSync(cfg)) throw new ValueError(`'${path}' is not a run folder: it has no config.json (expected a folder made by streamgrad train)`);
    const config = parseConfig(JSON.parse(readFileSync(cfg, 'utf8')), cfg);
    const model = buildModel(config.model as ModelSpec, config.seed);
    write(`model (input [N, ${config.inputShape.join(', ')}], loss ${config.loss}):\n`);
    for (const [name, m] of model.namedChildren()) {
      const count = m.parameters().reduce((a, p) => a + p.size, 0);
      write(`  (${name}) ${m.toString().split('\n')[0]}${count > 0 ? `  — ${count.toLocaleString('en-US')} parameters` : ''}\n`);
    }
    if (!existsSync(file)) {
      write('no model.safetensors yet (the run has not finished)\n');
      return;
    }
  }
  const { tensors, metadata } = loadSafetensors(file);
  const entries = Object.entries(tensors);
  const width = Math.max(4, ...entries.map(([n]) => n.length));
  write(`${file}: ${entries.length} tensors\n`);
  let total = 0;
  for (const [name, t] of entries) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    total += count;
    write(`  ${name.padEnd(width)}  ${t.dtype}  [${t.shape.join(', ')}]  ${count.toLocaleString('en-US')}\n`);
  }
  write(`total: ${total.toLocaleString('en-US')} values\n`);
  if (metadata !== undefined && Object.keys(metadata).length > 0) write(`metadata: ${JSON.stringify(metadata)}\n`);
}

/** `gradcheck <config>`: the model's parameter gradients at random inputs, against finite differences (f64). */
export function gradcheckCommand(configPath: string, write: Write): boolean {
  if (!existsSync(configPath)) throw new ValueError(`config '${configPath}' does not exist`);
  const config = parseConfig(JSON.parse(readFileSync(configPath, 'utf8')), configPath);
  const model = buildModel({ ...(config.model as ModelSpec), dtype: 'f64' }, config.seed);
  model.eval(); // Dropout off and BatchNorm on running statistics: the function must be deterministic
  const rng = new Rng(config.seed, 11);
  const N = 2;
  const size = config.inputShape.reduce((a, b) => a * b, 1);
  const x = new Tensor(Float64Array.from({ length: N * size }, () => rng.uniform() * 2 - 1), [N, ...config.inputShape]);
  const out = noGrad(() => model.forward(x));
  const loss = config.loss as LossName;
  const y = takesClassIndices(loss)
    ? Int32Array.from({ length: N }, () => Math.floor(rng.uniform() * out.shape.at(-1)!))
    : new Tensor(Float64Array.from({ length: out.size }, () => rng.uniform()), out.shape);
  const params = model.parameters();
  const r = gradCheck(() => summedLoss(loss, model.forward(x), y), params, { rtol: 1e-5, atol: 1e-7, directions: 5 });
  write(`${params.length} parameter tensors (${params.reduce((a, p) => a + p.size, 0).toLocaleString('en-US')} values), ${r.checks.length} random directions\n`);
  for (const c of r.checks) write(`  autograd ${c.analytic.toExponential(9)}  finite differences ${c.numeric.toExponential(9)}\n`);
  write(`${r.ok ? 'ok' : 'MISMATCH'}: largest relative error ${r.maxRelError.toExponential(2)}\n`);
  return r.ok;
}

/** `bench`: the benchmark suite, from a source checkout (it compares against tfjs, a dev dependency). */
export function benchCommand(args: string[]): number {
  const runner = new URL('../bench/run.ts', import.meta.url);
  if (!existsSync(runner)) {
    throw new ValueError('the benchmark suite runs from a source checkout: git clone the streamgrad repository, npm ci, then npx streamgrad bench');
  }
  const tsx = new URL('../node_modules/tsx/dist/cli.mjs', import.meta.url);
  return spawnSync(process.execPath, [tsx.pathname, runner.pathname, ...args], { stdio: 'inherit' }).status ?? 1;
}
