import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const bin = new URL('../../bin/streamgrad.mjs', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('streamgrad CLI', () => {
  it('example seed prints the textbook forward value and the gradients', () => {
    const r = run('example', 'seed');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('forward: 0.871843204787514');
    expect(r.stdout).toContain('2.bias');
  });

  it('an unknown example is one line on stderr and exit code 2', () => {
    const r = run('example', 'nope');
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('unknown example "nope" (choose seed, iris, mnist, cnn, adding)');
  });

  it('example mnist --workers 2 trains through the worker pipeline, one line per epoch', () => {
    const r = run('example', 'mnist', '--workers', '2', '--epochs', '2');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('2 worker threads, sync mode');
    expect(r.stdout).toMatch(/epoch {2}2 {2}loss 0\.\d+ {2}train acc 9\d\.\d\d%/);
    expect(Number(/test accuracy ([\d.]+)%/.exec(r.stdout)![1])).toBeGreaterThan(90);
  });

  it.each([
    [['example', 'iris', '--workers', '2'], 'streamgrad: --workers applies to the mnist example only (got "iris")'],
    [['example', 'mnist', '--workers', '0'], '--workers must be a positive integer (got "0")'],
    [['example', 'mnist', '--workers', '2', '--mode', 'async'], '--mode must be sync or hogwild (got "async")'],
  ])('%j is refused with exit code 2', (args, message) => {
    const r = run(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it('an unknown command exits with 2', () => {
    const r = run('frobnicate');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'frobnicate'/);
  });
});
