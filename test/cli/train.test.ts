import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXAMPLE_CONFIGS } from '../../cli/config.js';
import { forgetMetricsAfter } from '../../cli/train.js';

const bin = new URL('../../bin/streamgrad.mjs', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'sg-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000, cwd: root });
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('streamgrad train and the run folder', () => {
  const dir = join(root, 'iris');

  it('train --example iris with flags writes a complete run folder and plain progress lines when not a TTY', () => {
    const r = run('train', '--example', 'iris', '--epochs', '8', '--workers', '2', '--checkpoint.everySteps', '16', '--output', dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^epoch 8 step 64 {2}loss \d\.\d{4} acc [\d.]+% {2}test loss \d\.\d{4} acc [\d.]+%/m);
    expect(r.stdout).toContain(`run folder: ${dir}`);
    for (const f of ['config.json', 'metrics.jsonl', 'model.safetensors', 'report.html', 'loss.svg', 'accuracy.svg', 'loss.png', 'accuracy.png']) expect(existsSync(join(dir, f)), f).toBe(true);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ epochs: 8, workers: 2, batchSize: 16, mode: 'sync', checkpoint: { everySteps: 16, keep: 3 } });
    const m = lines(join(dir, 'metrics.jsonl'));
    expect(m.filter((x) => x.kind === 'train')).toHaveLength(64);
    expect(m.filter((x) => x.kind === 'test').map((x) => x.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(readdirSync(join(dir, 'checkpoints'))).toEqual(['ckpt-0000000032', 'ckpt-0000000048', 'ckpt-0000000064']);
  }, 120_000);

  it('eval, predict, inspect and report read the run folder', () => {
    const e = run('eval', dir, '--json');
    expect(e.status, e.stderr).toBe(0);
    const ev = JSON.parse(e.stdout);
    expect(ev.samples).toBe(30);
    expect(ev.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(30);
    const input = join(root, 'flowers.jsonl');
    writeFileSync(input, '[5.1,3.5,1.4,0.2]\n{"input":[6.7,3.0,5.2,2.3]}\n[1,2]\n');
    const p = run('predict', dir, '--input', input);
    expect(p.status).toBe(1); // one bad line
    const out = p.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(out[0].prediction).toBe(0);
    expect(out[1].prediction).toBe(2);
    expect(out[2]).toEqual({ line: 3, error: 'expected 4 numbers for input shape [4], got 2' });
    const i = run('inspect', dir);
    expect(i.stdout).toContain('(0) Linear(in_features=4, out_features=16, bias=true)  — 80 parameters');
    expect(i.stdout).toMatch(/0\.weight\s+F32\s+\[16, 4\]\s+64/);
    expect(i.stdout).toContain('total: 131 values');
    expect(run('report', dir).stdout).toContain('report.html');
  }, 120_000);

  it('--json prints one JSON object per report and a summary; --quiet prints nothing', () => {
    const j = run('train', '--example', 'iris', '--epochs', '2', '--workers', '1', '--json', '--output', join(root, 'json'));
    expect(j.status, j.stderr).toBe(0);
    const objs = j.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(objs.at(-1)).toMatchObject({ kind: 'summary', steps: 16, stopped: false });
    expect(objs.slice(0, -1).every((o) => o.kind === 'progress')).toBe(true);
    const q = run('train', '--example', 'iris', '--epochs', '1', '--workers', '1', '--quiet', '--output', join(root, 'quiet'));
    expect(q.status, q.stderr).toBe(0);
    expect(q.stdout).toBe('');
  }, 120_000);

  it('Ctrl-C stops cleanly with a checkpoint, and resume finishes the run', async () => {
    const d = join(root, 'stopped');
    const child = spawn(process.execPath, [bin, 'train', '--example', 'mnist-mlp', '--epochs', '3', '--workers', '2', '--data.trainSize', '2000', '--data.testSize', '200', '--output', d], { cwd: root });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('test loss') && !child.killed) child.kill('SIGINT'); // after the first epoch's evaluation
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(130);
    expect(out).toContain(`continue with: streamgrad resume ${d}`);
    expect(existsSync(join(d, 'model.safetensors'))).toBe(false);
    const stoppedAt = readdirSync(join(d, 'checkpoints')).at(-1)!;
    expect(Number(stoppedAt.slice(5))).toBeLessThan(189);
    const r = run('resume', d);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('done:');
    expect(readdirSync(join(d, 'checkpoints')).at(-1)).toBe('ckpt-0000000189'); // 3 epochs of 63 steps
    expect(existsSync(join(d, 'model.safetensors'))).toBe(true);
    const m = lines(join(d, 'metrics.jsonl')).filter((x) => x.kind === 'test');
    expect(m.map((x) => x.epoch)).toEqual([1, 2, 3]);
  }, 180_000);

  it("gradcheck proves a config model's gradients", () => {
    const cfg = join(root, 'cnn.json');
    writeFileSync(cfg, JSON.stringify({ ...EXAMPLE_CONFIGS.iris, model: { layers: [{ type: 'Linear', inFeatures: 4, outFeatures: 5 }, { type: 'Tanh' }, { type: 'Linear', inFeatures: 5, outFeatures: 3 }] } }));
    const r = run('gradcheck', cfg);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ok: largest relative error \d\.\d\de-\d+$/m);
  }, 60_000);

  it.each([
    [['train'], 'streamgrad: train needs a config file or --example <name> (try: streamgrad train --example mnist)'],
    [['train', '--example', 'cifar'], "streamgrad: unknown example 'cifar' (choose mnist, mnist-mlp, iris)"],
    [['train', '--example', 'iris', '--batchsize', '3'], "streamgrad: unknown option '--batchsize' (did you mean --batchSize?)"],
    [['train', '--example', 'iris', '--batchSize', 'big'], 'streamgrad: config.batchSize: expected number, got "big"'],
    [['train', '--example', 'iris', '--mode', 'fast'], 'streamgrad: config.mode: expected "sync" or "hogwild", got "fast"'],
    [['train', 'nope.json'], "streamgrad: config file 'nope.json' does not exist"],
    [['resume', 'nowhere'], "streamgrad: run folder 'nowhere' does not exist"],
    [['eval', '.'], "streamgrad: '.' is not a run folder: it has no config.json and metrics.jsonl (expected a folder made by streamgrad train)"],
    [['inspect', 'missing.safetensors'], "streamgrad: 'missing.safetensors' does not exist (give a .safetensors file or a run folder)"],
  ])('%j fails with one line and exit code 2', (args, message) => {
    const r = run(...args);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(message);
  }, 60_000);
});

describe('resuming a run folder', () => {
  it('forgets the metrics of the steps the checkpoint does not cover, and a last line cut short by the death', () => {
    const file = join(root, 'metrics-cut.jsonl');
    const line = (kind: string, step: number) => JSON.stringify({ kind, step, loss: 1 });
    writeFileSync(file, [line('train', 0), line('train', 1), line('test', 1), line('train', 2), line('train', 3), '{"kind":"train","st'].join('\n'));
    forgetMetricsAfter(file, 2);
    expect(readFileSync(file, 'utf8')).toBe(`${[line('train', 0), line('train', 1), line('test', 1)].join('\n')}\n`);
  });

  it('refuses metrics damaged before their last line, naming the file and the line', () => {
    const file = join(root, 'metrics-bad.jsonl');
    writeFileSync(file, '{"kind":"train","step":0}\nnot json\n{"kind":"train","step":1}\n');
    expect(() => forgetMetricsAfter(file, 1)).toThrow(`${file}: line 2 is not JSON`);
  });
});
