// `npm run bench [-- --quick] [-- --only=section]`: runs every benchmark section (or one), prints each table, writes BENCHMARKS.md.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { benchMatmul } from './matmul.js';
import { benchMlp } from './mlp.js';
import { benchModels } from './models.js';
import { benchParallel } from './parallel.js';
import { benchSeed } from './seed.js';
import { benchStream } from './stream.js';
import { renderMarkdown, renderSection, type BenchSection } from './report.js';
import { setKernels } from '../src/kernels/wasm/runtime.js';

const quick = process.argv.includes('--quick');
const command = quick ? 'npm run bench -- --quick' : 'npm run bench';
const machine = [
  new Date().toISOString().slice(0, 10),
  `Node ${process.version}`,
  `${os.cpus()[0]?.model ?? 'unknown CPU'} ×${os.cpus().length}`,
  `${os.platform()} ${os.arch()}`,
].join(' · ');

// One entry per section; each runs when reached, so a long run shows results as it goes.
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const sections: Record<string, () => Promise<BenchSection>> = {
  matmul: () => benchMatmul({ sizes: quick ? [256, 512] : [256, 512, 1024], quick }),
  mlp: () => benchMlp({ quick }),
  models: () => benchModels({ quick }),
  seed: () => benchSeed({ quick }),
  parallel: () => benchParallel({ quick }),
  stream: () => benchStream({ quick }),
};
if (only !== undefined && !(only in sections)) {
  console.error(`bench: --only must name one of ${Object.keys(sections).join(', ')} (got '${only}')`);
  process.exit(2);
}

const done: BenchSection[] = [];
for (const [name, run] of Object.entries(sections)) {
  if (only !== undefined && name !== only) continue;
  setKernels('auto'); // a section that switched kernels for a contender leaves no trace on the next
  const section = await run();
  done.push(section);
  console.log('\n' + renderSection(section));
}
// A partial run (--only) prints its section but leaves BENCHMARKS.md whole.
if (only === undefined) {
  writeFileSync(new URL('../BENCHMARKS.md', import.meta.url), renderMarkdown(done, command, machine));
  console.log('wrote BENCHMARKS.md');
}
