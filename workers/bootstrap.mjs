// Starts a TypeScript worker entry through tsx (development and tests): a .ts entry cannot be given to
// `new Worker` directly under tsx on Node 20. Production starts the compiled .js entry instead.
import { workerData } from 'node:worker_threads';

const { tsImport } = await import('tsx/esm/api');
await tsImport(workerData.entry, import.meta.url);
