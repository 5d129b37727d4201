import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../cli/config.js';
import { openData, preprocessing, redactSecrets } from '../../cli/data.js';
import type { ReaderPosition } from '../../pipelines/records.js';
import type { BatchSource } from '../../pipelines/source.js';
import { loadIris, split } from '../../src/data/dataset.js';
import { Rng } from '../../src/random.js';
import { writeIdx } from '../pipelines/sources/helpers.js';

const bin = new URL('../../bin/streamgrad.mjs', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'sg-data-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const run = (args: string[], input?: string) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000, cwd: root, input });
const jsonLines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const trainSteps = (dir: string) => jsonLines(join(dir, 'metrics.jsonl')).filter((x) => x.kind === 'train').map((x) => x.step as number);

// Iris as a CSV in a seeded order (the package's is sorted by species, which read in order would not train).
const HEADER = 'sepal_length,sepal_width,petal_length,petal_width,species';
const { train, test } = split(loadIris('f64'), 120, 3);
const row = (d: typeof train, i: number): string => `${[0, 1, 2, 3].map((j) => d.x[i * 4 + j]).join(',')},${d.classNames![d.y[i]!]}`;
const trainRows = Array.from({ length: train.n }, (_, i) => row(train, i));
// Three malformed rows, one of each kind: too few fields, a word for a number, a species nobody named.
const BAD = ['5.1,3.5,1.4', '5.1,abc,1.4,0.2,setosa', '5.1,3.5,1.4,0.2,rose'];
trainRows.splice(10, 0, BAD[0]!);
trainRows.splice(40, 0, BAD[1]!);
trainRows.splice(70, 0, BAD[2]!);
const csv = (rows: string[]): string => `${[HEADER, ...rows].join('\n')}\n`;
writeFileSync(join(root, 'train.csv'), csv(trainRows));
writeFileSync(join(root, 'test.csv'), csv(Array.from({ length: test.n }, (_, i) => row(test, i))));
// 12 copies: 1,440 good rows, 180 batches of 8 an epoch, long enough to stop in the middle.
writeFileSync(join(root, 'big.csv'), csv(Array.from({ length: 12 }, () => trainRows).flat()));
// The same without the malformed rows.
writeFileSync(join(root, 'clean.csv'), csv(Array.from({ length: 12 }, () => trainRows.filter((r) => !BAD.includes(r))).flat()));

const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];
const SPECIES = ['setosa', 'versicolor', 'virginica'];
const irisMapping = { features: FEATURES.map((field) => ({ field, type: 'number' })), target: { field: 'species', type: 'class', classes: SPECIES } };
const mlp = (hidden: number, outputs = 3) => ({ layers: [{ type: 'Linear', inFeatures: 4, outFeatures: hidden }, { type: 'ReLU' }, { type: 'Linear', inFeatures: hidden, outFeatures: outputs }] });
const irisCsv = (path: string) => ({
  model: mlp(16),
  inputShape: [4],
  optimizer: { type: 'Adam', lr: 0.02 },
  batchSize: 8,
  epochs: 3,
  workers: 2,
  data: { source: 'csv', path, test: { path: 'test.csv' }, mapping: irisMapping },
});
const writeConfig = (name: string, c: unknown): string => {
  writeFileSync(join(root, name), JSON.stringify(c));
  return name;
};

describe('train configs that point at real data', () => {
  const dir = join(root, 'iris-csv');

  it('trains 3 epochs on a CSV through a mapping, evaluates on a CSV test split, and dead-letters malformed rows once', () => {
    const r = run(['train', writeConfig('iris-csv.json', irisCsv('train.csv')), '--output', dir]);
    expect(r.status, r.stderr).toBe(0);
    // 120 good rows in batches of 8: 15 steps an epoch, a batch never spanning two epochs.
    expect(trainSteps(dir)).toEqual(Array.from({ length: 45 }, (_, i) => i));
    const tests = jsonLines(join(dir, 'metrics.jsonl')).filter((x) => x.kind === 'test');
    expect(tests.map((x) => [x.step, x.epoch])).toEqual([[14, 1], [29, 2], [44, 3]]);
    expect(tests.at(-1)!.accuracy as number).toBeGreaterThan(0.8);
    // Each bad row is rejected in every epoch, and written to the dead-letter file in the first only.
    expect(r.stdout).toContain(`records: 369 read, 360 accepted, 9 rejected (invalid CSV 3, wrong type 3, unknown category 3); dead letters in ${join(dir, 'dead-letter.jsonl')}\n`);
    const dead = jsonLines(join(dir, 'dead-letter.jsonl'));
    expect(dead.map((e) => [e.source, e.index, e.reason])).toEqual([
      [`csv file '${join(root, 'train.csv')}'`, 11, 'invalid CSV: 3 fields, expected 5 as in the header'],
      [`csv file '${join(root, 'train.csv')}'`, 41, 'feature \'sepal_width\' must be a finite number (got "abc")'],
      [`csv file '${join(root, 'train.csv')}'`, 71, 'target \'species\' must be one of "setosa", "versicolor", "virginica" (got "rose")'],
    ]);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(config.shuffle).toBe(false); // the default for a record source
    expect(config.data.path).toBe(join(root, 'train.csv')); // absolute: resume works from anywhere
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(true);
  }, 60_000);

  it('eval reads the CSV test split; predict takes records and arrays, scaled as in training', () => {
    const e = run(['eval', dir, '--json']);
    expect(e.status, e.stderr).toBe(0);
    const ev = JSON.parse(e.stdout);
    expect(ev).toMatchObject({ data: 'test', samples: 30 });
    expect(ev.accuracy).toBeGreaterThan(0.8);
    const input = join(root, 'flowers.jsonl');
    writeFileSync(input, '{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}\n[6.7,3.0,5.2,2.3]\n{"sepal_length":"5.1","sepal_width":3.5,"petal_length":1.4}\n"setosa"\n');
    const p = run(['predict', dir, '--input', input]);
    expect(p.status).toBe(1); // two bad lines
    const out = p.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(out[0]).toMatchObject({ line: 1, prediction: 0, class: 'setosa' });
    expect(out[1]).toMatchObject({ line: 2, prediction: 2, class: 'virginica' });
    expect(out[2]).toEqual({ line: 3, error: "feature 'petal_width' is missing" });
    expect(out[3]).toEqual({ line: 4, error: 'expected a record (a JSON object with the mapping\'s fields), an array of numbers or {"input": [...]}' });
  }, 60_000);

  it('--shuffle true on a CSV config fails with the reason', () => {
    const r = run(['train', 'iris-csv.json', '--shuffle', 'true', '--output', join(root, 'never')]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('streamgrad: iris-csv.json.shuffle: csv files are read in order (a stream cannot be shuffled whole); set shuffle to false');
    expect(existsSync(join(root, 'never'))).toBe(false);
  }, 60_000);

  it('a CSV run stopped by Ctrl-C mid-epoch resumes in that epoch at that record and applies every step exactly once', async () => {
    const d = join(root, 'stopped');
    const cfg = writeConfig('big.json', { ...irisCsv('big.csv'), checkpoint: { everySteps: 50 } });
    // A run that does not end gets a diagnostic report (its JS stack, its open handles) into the failure.
    const reports = join(root, 'reports');
    mkdirSync(reports);
    const child = spawn(process.execPath, ['--report-on-signal', '--report-signal=SIGUSR2', `--report-directory=${reports}`, bin, 'train', cfg, '--output', d], { cwd: root });
    let out = '';
    let err = '';
    let interrupted = false;
    child.stderr.on('data', (b: Buffer) => void (err += b.toString()));
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('test loss') && !interrupted) interrupted = child.kill('SIGINT'); // after the first epoch's evaluation
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      const deadline = setTimeout(() => {
        child.kill('SIGUSR2');
        setTimeout(() => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGKILL');
          const report = readdirSync(reports).map((f) => readFileSync(join(reports, f), 'utf8')).join('\n') || 'none written';
          reject(new Error(`train did not exit within 40 s (${interrupted ? 'SIGINT sent' : "no 'test loss' yet"}); stdout: ${out.slice(-1500)}\nstderr: ${err.slice(-1500)}\nreport: ${report.slice(0, 20_000)}`));
        }, 3000);
      }, 40_000);
      child.on('exit', (c) => {
        clearTimeout(deadline);
        resolve(c);
      });
    });
    expect(code, `${out}\n${err}`).toBe(130);
    const stoppedAt = Number(readdirSync(join(d, 'checkpoints')).at(-1)!.slice(5));
    expect(stoppedAt).toBeGreaterThan(180);
    expect(stoppedAt % 180).not.toBe(0); // inside an epoch
    const manifest = JSON.parse(readFileSync(join(d, 'checkpoints', readdirSync(join(d, 'checkpoints')).at(-1)!, 'manifest.json'), 'utf8'));
    const position = manifest.meta.source.position;
    expect(position.epoch).toBe(Math.floor(stoppedAt / 180) + 1);
    expect(trainSteps(d)).toEqual(Array.from({ length: stoppedAt }, (_, i) => i));

    const r = run(['resume', d]);
    expect(r.status, r.stderr).toBe(0);
    // 3 epochs of 180 batches: steps 0..539, none missing, none twice.
    expect(trainSteps(d)).toEqual(Array.from({ length: 540 }, (_, i) => i));
    expect(readdirSync(join(d, 'checkpoints')).at(-1)).toBe('ckpt-0000000540');
    expect(jsonLines(join(d, 'metrics.jsonl')).filter((x) => x.kind === 'test').map((x) => [x.step, x.epoch])).toEqual([[179, 1], [359, 2], [539, 3]]);
    expect(jsonLines(join(d, 'dead-letter.jsonl'))).toHaveLength(36); // the first epoch's 12 × 3, once
  }, 90_000);

  it('a run killed before its first periodic checkpoint resumes from its start checkpoint: every step once, every dead letter once, the bits of a run never killed', async () => {
    const cfg = writeConfig('killed.json', { ...irisCsv('big.csv'), checkpoint: { everySteps: 1000 } });
    const d = join(root, 'killed');
    const child = spawn(process.execPath, [bin, 'train', cfg, '--output', d], { cwd: root });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('test loss')) child.kill('SIGKILL'); // after the first epoch's 180 steps, long before step 1000
    });
    const deadline = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_, s) => resolve(s)));
    clearTimeout(deadline);
    expect(signal).toBe('SIGKILL');
    expect(out).toContain('test loss');
    expect(readdirSync(join(d, 'checkpoints'))).toEqual(['ckpt-0000000000']);
    expect(trainSteps(d).length).toBeGreaterThanOrEqual(180);
    // The first epoch's rejects, written before the kill and past the start checkpoint's position.
    expect(jsonLines(join(d, 'dead-letter.jsonl'))).toHaveLength(36);

    const r = run(['resume', d]);
    expect(r.status, r.stderr).toBe(0);
    expect(trainSteps(d)).toEqual(Array.from({ length: 540 }, (_, i) => i));
    expect(jsonLines(join(d, 'metrics.jsonl')).filter((x) => x.kind === 'test').map((x) => [x.step, x.epoch])).toEqual([[179, 1], [359, 2], [539, 3]]);
    // The resumed run read them again: the file kept what the checkpoint counted (none), so each is there once.
    expect(jsonLines(join(d, 'dead-letter.jsonl')).map((e) => e.index)).toEqual(Array.from({ length: 12 }, (_, k) => [11, 41, 71].map((i) => i + 123 * k)).flat());
    const whole = join(root, 'never-killed');
    expect(run(['train', cfg, '--output', whole]).status).toBe(0);
    expect(readFileSync(join(d, 'model.safetensors')).equals(readFileSync(join(whole, 'model.safetensors')))).toBe(true);
  }, 120_000);

  it('trains from JSON Lines piped to stdin until maxSteps', () => {
    const rng = new Rng(4);
    const records = Array.from({ length: 400 }, () => {
      const i = Math.floor(rng.uniform() * train.n);
      return JSON.stringify({ ...Object.fromEntries(FEATURES.map((f, j) => [f, train.x[i * 4 + j]])), species: SPECIES[train.y[i]!] });
    });
    const cfg = writeConfig('stdin.json', { ...irisCsv('-'), epochs: 1, workers: 1, maxSteps: 12, data: { source: 'stdin', format: 'jsonl', mapping: irisMapping } });
    const d = join(root, 'stdin');
    const r = run(['train', cfg, '--output', d, '--json'], `${records.join('\n')}\n`);
    expect(r.status, r.stderr).toBe(0);
    expect(trainSteps(d)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(summary).toMatchObject({ kind: 'summary', steps: 12, samples: 96, stopped: false, records: { accepted: 96, rejected: 0 } });
    expect(readdirSync(join(d, 'checkpoints'))).toEqual(['ckpt-0000000000', 'ckpt-0000000012']); // the start, the end
  }, 60_000);

  it('trains a regression from a directory of JSON Lines parts (dense targets: test loss, no accuracy)', () => {
    const parts = join(root, 'parts');
    mkdirSync(parts);
    const rng = new Rng(9);
    const rec = (): string => {
      const a = rng.uniform() * 2 - 1;
      const b = rng.uniform() * 2 - 1;
      return JSON.stringify({ a, b, y: a + 2 * b });
    };
    writeFileSync(join(parts, 'part-1.jsonl'), `${Array.from({ length: 100 }, rec).join('\n')}\n`);
    writeFileSync(join(parts, 'part-2.jsonl'), `${Array.from({ length: 60 }, rec).join('\n')}\n`);
    writeFileSync(join(root, 'reg-test.jsonl'), `${Array.from({ length: 40 }, rec).join('\n')}\n`);
    const cfg = writeConfig('reg.json', {
      model: { layers: [{ type: 'Linear', inFeatures: 2, outFeatures: 1 }] },
      inputShape: [2],
      loss: 'mseLoss',
      optimizer: { type: 'SGD', lr: 0.1 },
      batchSize: 16,
      epochs: 4,
      workers: 1,
      data: { source: 'files', path: 'parts', test: { path: 'reg-test.jsonl' }, mapping: { features: [{ field: 'a', type: 'number' }, { field: 'b', type: 'number' }], target: { field: 'y', type: 'number' } } },
    });
    const d = join(root, 'reg');
    const r = run(['train', cfg, '--output', d]);
    expect(r.status, r.stderr).toBe(0);
    expect(trainSteps(d)).toHaveLength(40); // 160 records, 10 batches an epoch
    const tests = jsonLines(join(d, 'metrics.jsonl')).filter((x) => x.kind === 'test');
    expect(tests.map((x) => [x.epoch, x.accuracy])).toEqual([[1, null], [2, null], [3, null], [4, null]]);
    expect(tests.at(-1)!.loss as number).toBeLessThan(tests[0]!.loss as number);
    const e = run(['eval', d, '--json']);
    expect(e.status, e.stderr).toBe(0);
    expect(Object.keys(JSON.parse(e.stdout))).toEqual(['data', 'samples', 'loss']);
    writeFileSync(join(root, 'points.jsonl'), '{"a":0.5,"b":0.25}\n');
    const p = run(['predict', d, '--input', 'points.jsonl']);
    expect(p.status, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout).output).toHaveLength(1);
  }, 60_000);

  it('reads IDX files (default mapping) and Fashion-MNIST (in memory, so shuffled) with their test splits', () => {
    const rng = new Rng(2);
    const images = (n: number) => Uint8Array.from({ length: n * 784 }, () => Math.floor(rng.uniform() * 256));
    const labels = (n: number) => Array.from({ length: n }, () => Math.floor(rng.uniform() * 10));
    const fm = join(root, 'fashion');
    mkdirSync(fm);
    writeIdx(fm, 'train', images(48), labels(48), 28, 28, true);
    const t10k = writeIdx(fm, 't10k', images(16), labels(16), 28, 28, false);
    const model = { layers: [{ type: 'Linear', inFeatures: 784, outFeatures: 10 }] };
    const base = { model, inputShape: [784], optimizer: { type: 'SGD', lr: 0.01 }, batchSize: 16, epochs: 2, workers: 1 };
    const f = run(['train', writeConfig('fashion.json', { ...base, data: { source: 'fashion-mnist', dir: 'fashion' } }), '--output', join(root, 'fm')]);
    expect(f.status, f.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(root, 'fm', 'config.json'), 'utf8')).shuffle).toBe(true);
    expect(jsonLines(join(root, 'fm', 'metrics.jsonl')).filter((x) => x.kind === 'test').map((x) => [x.step, x.epoch])).toEqual([[2, 1], [5, 2]]);
    const idx = { source: 'idx', images: join(fm, 'train-images-idx3-ubyte.gz'), labels: join(fm, 'train-labels-idx1-ubyte.gz'), test: t10k };
    const i = run(['train', writeConfig('idx.json', { ...base, data: idx }), '--output', join(root, 'idx')]);
    expect(i.status, i.stderr).toBe(0);
    const config = JSON.parse(readFileSync(join(root, 'idx', 'config.json'), 'utf8'));
    expect(config.data.mapping).toEqual({ features: [{ field: 'image', type: 'vector', length: 784 }], target: { field: 'label', type: 'class', classes: 10 } });
    expect(jsonLines(join(root, 'idx', 'metrics.jsonl')).filter((x) => x.kind === 'test').map((x) => [x.step, x.epoch])).toEqual([[2, 1], [5, 2]]);
  }, 60_000);

  it.each([
    ['a missing file', { data: { source: 'csv', path: 'missing.csv', mapping: irisMapping } }, `csv file '${join(root, 'missing.csv')}': no such file`],
    [
      'a mapping with an unknown feature type',
      { data: { source: 'csv', path: 'train.csv', mapping: { ...irisMapping, features: [{ field: 'sepal_length', type: 'text' }] } } },
      'bad.json.data.mapping.features[0].type must be one of number, onehot, vector, sequence (got "text")',
    ],
    [
      'a CSV header without the mapped columns',
      { data: { source: 'csv', path: 'train.csv', mapping: { ...irisMapping, features: ['sepal_length', 'sepal width', 'petal_length', 'petalWidth'].map((field) => ({ field, type: 'number' })) } } },
      `csv file '${join(root, 'train.csv')}': the header lacks columns 'sepal width', 'petalWidth' that the mapping reads (header: ${HEADER.split(',').join(', ')})`,
    ],
    [
      'epochs > 1 on stdin',
      { data: { source: 'stdin', format: 'jsonl', mapping: irisMapping } },
      "bad.json.epochs: source 'stdin' is a stream, read once (got epochs 3); set epochs to 1 and bound the run with maxSteps or duration",
    ],
  ])('%s fails at the start with one line, leaving no run folder', (_what, patch, message) => {
    const out = join(root, 'failed');
    const r = run(['train', writeConfig('bad.json', { ...irisCsv('train.csv'), ...patch }), '--output', out]);
    expect(r.status, r.stdout).toBe(2);
    expect(r.stderr.trim()).toBe(`streamgrad: ${message}`);
    expect(existsSync(out)).toBe(false);
  }, 60_000);
});

describe('the data a config opens, in process', () => {
  // 16 good rows and a bad last one: two exactly full batches of 8, then a row the look-ahead must skip.
  writeFileSync(join(root, 'ab.csv'), `a,b,y\n${Array.from({ length: 16 }, (_, i) => `${i},${-i},${i % 2}`).join('\n')}\nx,1,0\n`);
  const config = parseConfig({
    model: { layers: [{ type: 'Linear', inFeatures: 2, outFeatures: 2 }] },
    inputShape: [2],
    optimizer: { type: 'SGD', lr: 0.1 },
    batchSize: 8,
    epochs: 2,
    data: { source: 'csv', path: join(root, 'ab.csv'), mapping: { features: [{ field: 'a', type: 'number' }, { field: 'b', type: 'number', scale: 0.5 }], target: { field: 'y', type: 'class', classes: 2 } } },
  });

  /** Fills and applies up to `limit` batches: [samples' a values, epoch, epochEnded] per batch. */
  async function drain(src: BatchSource, limit = Infinity): Promise<[number[], number | undefined, boolean][]> {
    const x = new Float32Array(16);
    const y = new Int32Array(8);
    const out: [number[], number | undefined, boolean][] = [];
    for (let k = 0; k < limit; k++) {
      const n = await src.fill({ x, y, sampleSize: 2, targetSize: 0 }, 8);
      if (n === 0) break;
      out.push([Array.from({ length: n }, (_, i) => x[2 * i]!), src.epoch, src.epochEnded === true]);
      await src.applied?.(k);
    }
    return out;
  }

  it('file records come in batches that end at each epoch\'s end, and resume from any applied batch reads what follows', async () => {
    const open = (from?: ReaderPosition) => openData(config, { runDir: root, from, signal: new AbortController().signal, resuming: false });
    const whole = await open();
    const all = await drain(whole.source);
    await whole.source.close?.();
    const rows = Array.from({ length: 8 }, (_, i) => i);
    expect(all).toEqual([
      [rows, 1, false],
      [rows.map((i) => i + 8), 1, true], // full, and the last of its epoch: only the bad row is left
      [rows, 2, false],
      [rows.map((i) => i + 8), 2, true],
    ]);
    expect(whole.counters!()).toEqual({ read: 34, accepted: 32, rejected: 2, byReason: { 'wrong type': 2 } });
    for (let k = 0; k <= all.length; k++) {
      const first = await open();
      const head = await drain(first.source, k);
      const at = JSON.parse(JSON.stringify(first.source.position!())) as ReaderPosition;
      await first.source.close?.();
      const rest = await open(at);
      expect([...head, ...(await drain(rest.source))], `resumed after ${k} batches from ${JSON.stringify(at)}`).toEqual(all);
      await rest.source.close?.();
    }
  });

  it("predict's preprocessing maps a record, or scales a raw array, as the mapping scaled training's samples", () => {
    const p = preprocessing(config);
    expect(Array.from(p.fromRecord!({ a: '3', b: 4 }))).toEqual([3, 2]);
    const raw = Float64Array.from([3, 4]);
    p.transform(raw);
    expect(Array.from(raw)).toEqual([3, 2]);
    expect(p.classNames).toBeNull();
    expect(() => p.fromRecord!({ a: 1 })).toThrow("feature 'b' is missing");
  });

  it('shuffle defaults by source; broker secrets may come from the environment and never reach the report', () => {
    const base = { model: { layers: [{ type: 'Linear', inFeatures: 4, outFeatures: 3 }] }, inputShape: [4], optimizer: { type: 'SGD', lr: 0.1 }, batchSize: 8 };
    expect(parseConfig({ ...base, data: { source: 'iris' } }).shuffle).toBe(true);
    expect(parseConfig({ ...base, data: { source: 'iris' }, shuffle: false }).shuffle).toBe(false);
    const redis = parseConfig({
      ...base,
      maxSteps: 100,
      data: { source: 'redis', url: 'redis://trainer:hunter2@127.0.0.1:6379', password: { env: 'REDIS_PASSWORD' }, stream: 's', group: 'g', consumer: 'c', mapping: irisMapping },
    });
    expect(redis.shuffle).toBe(false);
    const nats = parseConfig({ ...base, duration: 60, data: { source: 'nats', servers: ['127.0.0.1:4222'], stream: 's', consumer: 'c', user: 'u', pass: 'secret', mapping: irisMapping } });
    expect(redactSecrets(redis).data).toMatchObject({ url: 'redis://trainer:***@127.0.0.1:6379', password: { env: 'REDIS_PASSWORD' } });
    expect(redactSecrets(nats).data).toMatchObject({ user: 'u', pass: '***' });
    expect(() => parseConfig({ ...base, data: { source: 'mqtt', url: 'mqtt://h', topic: 't', clientId: 'c', mapping: irisMapping }, schedule: { type: 'cosine' } })).toThrow(
      "config.schedule.tMax: a cosine schedule needs the run's length, unknown for source 'mqtt' (a stream): set schedule.tMax or maxSteps",
    );
    expect(() => parseConfig({ ...base, loss: 'mseLoss', data: { source: 'jsonl', path: 'x.jsonl', mapping: irisMapping } })).toThrow(
      "config.data.mapping.target.type: loss 'mseLoss' takes dense targets, so the target must be 'number' or 'vector' (got 'class')",
    );
    expect(() => parseConfig({ ...base, inputShape: [5], data: { source: 'jsonl', path: 'x.jsonl', mapping: irisMapping } })).toThrow(
      'config.data.mapping: the features make 4 values per sample, inputShape [5] holds 5',
    );
  });
});
