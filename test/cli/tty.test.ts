import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const bin = new URL('../../bin/streamgrad.mjs', import.meta.url).pathname;
// util-linux `script` runs a command on a pseudo-terminal, so the CLI sees a TTY as a person's shell would.
const hasScript = existsSync('/usr/bin/script');

describe('progress on a terminal', () => {
  it.skipIf(!hasScript)('draws a progress bar with samples/s, loss, test accuracy and ETA, then the summary', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-tty-'));
    try {
      const r = spawnSync('/usr/bin/script', ['-qc', `${process.execPath} ${bin} train --example iris --epochs 30 --output ${join(dir, 'run')}`, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      const screen = r.stdout.replace(/\x1b\[[0-9;?]*[a-zA-Z]|\x1b[78]/g, '');
      expect(screen).toMatch(/[█░]{10,} \d+% \| \d+\/3600 samples \| epoch \d+ \| loss \d\.\d{4} \| test acc \d+\.\d\d% \| \d+ samples\/s \| ETA /);
      expect(screen).toContain('done: 240 steps, 3600 samples');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
