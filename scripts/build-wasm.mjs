// Compiles the AssemblyScript kernels (src/kernels/wasm/assembly) to src/kernels/wasm/kernels.wasm, and,
// with --copy-to DIR, copies the result next to the compiled runtime under DIR (dist/ for the package).
// Runs on `npm ci` and `npm install` (the prepare script).
import asc from 'assemblyscript/asc';
import { copyFileSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = 'src/kernels/wasm/kernels.wasm';
const { error, stderr } = await asc.main([
  'src/kernels/wasm/assembly/index.ts',
  '--outFile', out,
  // SIMD128 for the kernels; a shared, imported memory so every worker thread runs on the same bytes.
  '--enable', 'simd', '--enable', 'threads', '--importMemory', '--sharedMemory',
  '--initialMemory', '1', '--maximumMemory', '65536',
  // No managed heap, no garbage collector, no abort import: the kernels only read and write addresses.
  '--runtime', 'stub', '--use', 'abort=', '--noAssert',
  '-O3', '--converge',
], { stdout: process.stdout, stderr: process.stderr, baseDir: root });
if (error) {
  console.error(`build-wasm: ${error.message}\n${stderr.toString()}`);
  process.exit(1);
}
const copyTo = process.argv.indexOf('--copy-to');
if (copyTo > 0) {
  const dir = resolve(root, process.argv[copyTo + 1] ?? 'dist', 'src/kernels/wasm');
  mkdirSync(dir, { recursive: true });
  copyFileSync(`${root}/${out}`, `${dir}/kernels.wasm`);
}
