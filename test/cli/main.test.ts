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

  it('an unknown command exits with 2', () => {
    const r = run('frobnicate');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'frobnicate'/);
  });
});
