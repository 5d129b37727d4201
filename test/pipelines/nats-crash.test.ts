import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadLatestCheckpoint } from '../../src/io/checkpoint.js';
import { NATS_SERVER, natsStream, uniqueName } from '../helpers/services.js';

// CI kills a handful of runs; the slow suite (npm run test:slow) a few hundred.
const KILLS = process.env.SLOW === '1' ? 300 : 4;
const N = process.env.SLOW === '1' ? 20_000 : 2_000;
const child = fileURLToPath(new URL('../helpers/nats-train-child.mjs', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'sg-nats-crash-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Lines of the applied log: `start <position>`, then one sequence per applied record, maybe `done <step>`. */
function logLines(dir: string): string[] {
  const f = join(dir, 'applied.log');
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => l !== '') : [];
}

describe('a NATS-fed training run killed with SIGKILL and resumed', () => {
  it(`applies every message exactly once relative to the checkpoint it resumes from (${KILLS} kills)`, async () => {
    const s = await natsStream();
    for (let i = 1; i <= N; i++) await s.publish(JSON.stringify({ seq: i, x: [((i * 37) % 17) / 17 - 0.5, ((i * 11) % 13) / 13 - 0.5], y: i % 2 }));
    const dir = join(root, uniqueName('run'));
    const config = JSON.stringify({ servers: NATS_SERVER, stream: s.name, consumer: 'trainer', idleTimeoutMs: 1500 });
    // One segment per run: the checkpoint position it started from and the sequences it applied.
    const segments: { from: number; applied: number[] }[] = [];
    let finished = false;
    for (let k = 0; !finished && k < KILLS + 20; k++) {
      const before = logLines(dir).length;
      const proc: ChildProcess = spawn(process.execPath, [child, config, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      if (k < KILLS) {
        // Kill once this run has applied a random number of records: mid-stream, between checkpoints or not.
        const target = 20 + Math.floor(Math.random() * 120);
        while (logLines(dir).length - before < target && proc.exitCode === null) await new Promise((r) => setTimeout(r, 5));
        proc.kill('SIGKILL');
      }
      const code = await exited;
      if (code !== null && code !== 0) throw new Error(`child failed (${code}): ${stderr}`);
      const mine = logLines(dir).slice(before);
      expect(mine[0]).toMatch(/^start \d+$/);
      finished = mine.at(-1)?.startsWith('done') === true;
      segments.push({ from: Number(mine[0]!.slice(6)), applied: mine.slice(1).filter((l) => !l.startsWith('done')).map(Number) });
    }
    expect(finished).toBe(true);
    expect(segments.length).toBeGreaterThan(KILLS);
    // Each run applies, in order and without a gap, the messages right after its checkpoint; the next run
    // starts from a checkpoint this run wrote (no later than what it applied, no earlier than where it began).
    const kept: number[] = [];
    segments.forEach((seg, i) => {
      seg.applied.forEach((seq, j) => expect(seq).toBe(seg.from + 1 + j));
      const next = segments[i + 1]?.from ?? N;
      expect(next).toBeGreaterThanOrEqual(seg.from);
      expect(next).toBeLessThanOrEqual(seg.from + seg.applied.length);
      kept.push(...seg.applied.slice(0, next - seg.from)); // what survives relative to the next checkpoint
    });
    expect(kept).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    const { checkpoint } = loadLatestCheckpoint(join(dir, 'ckpt'));
    expect((checkpoint!.meta as { source: { position: unknown } }).source.position).toBe(N);
  }, 600_000);
});
