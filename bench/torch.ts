// PyTorch as a peer: bench/torch_peer.py in a child process (Debian's python3-torch, one thread), sent one
// "step" line per training step and timed until its "ok", so it interleaves with the in-process peers.
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Contender } from './report.js';

/** Debian's interpreter: python3-torch installs for it, not for a pyenv or venv python3 earlier on PATH. */
const PYTHON = '/usr/bin/python3';
const SCRIPT = new URL('./torch_peer.py', import.meta.url).pathname;

/** One thread, and no spinning between steps (the peers run interleaved in one process tree). */
const TORCH_ENV = { OMP_WAIT_POLICY: 'PASSIVE', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };

/**
 * The peer's environment: ours with OPENBLAS_CORETYPE unset, as the kernels issue asks, so OpenBLAS picks
 * its kernel for this CPU itself (the machines set it to Haswell for everything else). Measured once on
 * an AMD EPYC host: auto-detection no slower than SkylakeX, and faster than Haswell (MLP step 0.98 ms
 * against 1.65 ms).
 */
function torchEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...TORCH_ENV };
  delete env.OPENBLAS_CORETYPE;
  return env;
}

/** Why PyTorch cannot run here, or null when it can. */
export function torchMissing(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (r.error !== undefined) return `${PYTHON} not found`;
  return r.status === 0 ? null : 'PyTorch is not installed (apt-get install python3-torch)';
}

export interface TorchPeer extends Contender {
  /** What ran, as the peer reported it: version, threads, SIMD level, BLAS core. */
  readonly info: string;
  close(): void;
}

/** Starts the peer on `model` with these batches (inputs flat per batch, class indices) and waits until it is ready. */
export async function startTorch(model: 'mlp' | 'cnn' | 'lstm', batches: readonly { x: Float32Array; y: Int32Array }[], batch: number, sampleShape: readonly number[]): Promise<TorchPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'streamgrad-torch-'));
  const xFile = join(dir, 'x.f32');
  const yFile = join(dir, 'y.i32');
  writeFileSync(xFile, Buffer.concat(batches.map((b) => Buffer.from(b.x.buffer, b.x.byteOffset, b.x.byteLength))));
  writeFileSync(yFile, Buffer.concat(batches.map((b) => Buffer.from(b.y.buffer, b.y.byteOffset, b.y.byteLength))));
  const child: ChildProcessWithoutNullStreams = spawn(PYTHON, [SCRIPT, model, String(batch), xFile, yFile, ...sampleShape.map(String)], {
    env: torchEnv(),
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done === true) throw new Error(`PyTorch peer exited: ${stderr.trim().split('\n').at(-1) ?? 'no output'}`);
    return r.value;
  };
  const ready = await next();
  if (!ready.startsWith('ready ')) throw new Error(`PyTorch peer: expected 'ready …', got '${ready}'`);
  return {
    name: 'PyTorch',
    info: ready.slice('ready '.length),
    step: async () => {
      child.stdin.write('step\n');
      const reply = await next();
      if (reply !== 'ok') throw new Error(`PyTorch peer: expected 'ok', got '${reply}'`);
    },
    close: () => {
      child.stdin.end();
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The peer on `model`, or null and why not (PyTorch is optional: the bench says where it did not run). */
export async function torchOrReason(model: 'mlp' | 'cnn' | 'lstm', batches: readonly { x: Float32Array; y: Int32Array }[], batch: number,
  sampleShape: readonly number[]): Promise<{ peer: TorchPeer | null; note: string }> {
  const missing = torchMissing();
  if (missing !== null) return { peer: null, note: `PyTorch: not run here (${missing}).` };
  const peer = await startTorch(model, batches, batch, sampleShape);
  return {
    peer,
    note: `PyTorch: ${peer.info}, as a child process (bench/torch_peer.py) sent one line per step; the same model, init bounds, batches and SGD, via torch.nn and loss.item().`,
  };
}
