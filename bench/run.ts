// `npm run bench [-- --quick]`: runs every benchmark section, prints each table, writes BENCHMARKS.md.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { benchMatmul } from './matmul.js';
import { benchMlp } from './mlp.js';
import { benchModels } from './models.js';
import { renderMarkdown, renderSection, type BenchSection } from './report.js';

const quick = process.argv.includes('--quick');
const command = quick ? 'npm run bench -- --quick' : 'npm run bench';
const machine = [
  new Date().toISOString().slice(0, 10),
  `Node ${process.version}`,
  `${os.cpus()[0]?.model ?? 'unknown CPU'} ×${os.cpus().length}`,
  `${os.platform()} ${os.arch()}`,
].join(' · ');

// One entry per section; each runs when reached, so a long run shows results as it goes.
const sections: (() => Promise<BenchSection>)[] = [
  () => benchMatmul({ sizes: quick ? [256, 512] : [256, 512, 1024], quick }),
  () => benchMlp({ quick }),
  () => benchModels({ quick }),
];

const done: BenchSection[] = [];
for (const run of sections) {
  const section = await run();
  done.push(section);
  console.log('\n' + renderSection(section));
}
writeFileSync(new URL('../BENCHMARKS.md', import.meta.url), renderMarkdown(done, command, machine));
console.log('wrote BENCHMARKS.md');
