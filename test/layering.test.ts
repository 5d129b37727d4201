import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : /\.(ts|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  );
}

function imports(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'";]*?from\s*'([^']+)'|(?:^|\n)\s*import\s*'([^']+)'|import\('([^']+)'\)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

/** The top-level folder an import lands in, for relative imports. */
function layer(file: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  return relative(root, join(root, file, '..', spec)).split('/')[0]!;
}

// DESIGN.md §1: imports go one way, cli → pipelines → workers → src; the core stays pure.
const RULES: Record<string, { layers: string[]; packages: RegExp | null; what: string }> = {
  src: { layers: ['src'], packages: /^(rxjs|comlink|node:worker_threads|worker_threads|mqtt|redis|@nats-io\/)/, what: 'no rxjs, threads or network clients' },
  workers: { layers: ['src', 'workers'], packages: /^rxjs/, what: 'no rxjs' },
  pipelines: { layers: ['src', 'workers', 'pipelines'], packages: null, what: 'any package' },
};

describe('layering', () => {
  for (const [dir, rule] of Object.entries(RULES)) {
    it(`${dir}/ imports from ${rule.layers.join(', ')} only, and ${rule.what}`, () => {
      const bad: string[] = [];
      for (const f of files(dir)) {
        for (const spec of imports(f)) {
          const l = layer(f, spec);
          if (l !== null && !rule.layers.includes(l)) bad.push(`${f} imports ${spec}`);
          if (l === null && rule.packages?.test(spec)) bad.push(`${f} imports ${spec}`);
        }
      }
      expect(bad).toEqual([]);
      expect(files(dir).length).toBeGreaterThan(2);
    });
  }
});
