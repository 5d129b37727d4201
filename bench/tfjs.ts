// The tfjs peers: selecting the 'cpu' or the single-threaded 'wasm' (XNNPACK) backend in this process.
import path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

export type TfBackend = 'tfjs-cpu' | 'tfjs-wasm';

let wasmReady: Promise<void> | undefined;

/** The wasm binaries load from the package's dist/ folder: on Node a plain path prefix works. */
function initWasm(): Promise<void> {
  wasmReady ??= (async () => {
    const pkg = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json');
    setWasmPaths(path.join(path.dirname(pkg), 'dist') + path.sep);
    setThreadsCount(1); // one thread, like the streamgrad figures it is compared with
    if (!(await tf.setBackend('wasm'))) throw new Error('bench: tfjs wasm backend failed to initialise');
  })();
  return wasmReady;
}

export async function useBackend(b: TfBackend): Promise<void> {
  if (b === 'tfjs-wasm') await initWasm();
  if (!(await tf.setBackend(b === 'tfjs-cpu' ? 'cpu' : 'wasm'))) throw new Error(`bench: cannot select ${b}`);
}

export { tf };
