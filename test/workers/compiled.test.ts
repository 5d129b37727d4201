import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
const out = `${root}.test-dist`;

describe('the compiled package', () => {
  it('trains with workers started from the compiled .js entry, with no TypeScript loader', () => {
    rmSync(out, { recursive: true, force: true });
    execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.build.json`, '--outDir', out, '--declaration', 'false', '--sourceMap', 'false'], { stdio: 'pipe' });
    // The package build's second half: the WebAssembly kernels next to their compiled runtime.
    execFileSync(process.execPath, [`${root}scripts/build-wasm.mjs`, '--copy-to', out], { stdio: 'pipe' });
    const script = `
      import { trainParallel, datasetSource } from '${out}/pipelines/index.js';
      import { loadIris, featureStats, standardize } from '${out}/src/index.js';
      const iris = loadIris();
      const r = await trainParallel({
        model: { layers: [{ type: 'Linear', inFeatures: 4, outFeatures: 8 }, { type: 'ReLU' }, { type: 'Linear', inFeatures: 8, outFeatures: 3 }] },
        optimizer: { type: 'Adam', lr: 0.05 }, inputShape: [4], source: datasetSource(standardize(iris, featureStats(iris)), { epochs: 20 }),
        batchSize: 16, workers: 2,
      }).done;
      const { kernelsInUse } = await import('${out}/src/kernels/wasm/runtime.js');
      console.log(JSON.stringify({ steps: r.steps, accuracy: r.last.accuracy, kernels: kernelsInUse() }));
    `;
    // A plain node process: no tsx, no vitest transform, so a .ts worker entry could not load at all.
    writeFileSync(`${out}/smoke.mjs`, script);
    const res = JSON.parse(execFileSync(process.execPath, [`${out}/smoke.mjs`], { cwd: root, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } }));
    expect(res.steps).toBe(200);
    expect(res.kernels).toBe('wasm');
    expect(res.accuracy).toBeGreaterThan(0.8);
    rmSync(out, { recursive: true, force: true });
  }, 120_000);
});
