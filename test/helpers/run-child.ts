// A training run or a policy search on a tiny dataset, for the tests that kill processes, fill
// disks and take permissions away: `node run-child.js '<json>'` with
//   { kind: 'train' | 'search', outDir, epochs, count?, batchSize?, seed?, lr? }.
// It resumes from outDir, prints `step N` after every step, then `done <result JSON>`; on an
// error it prints `error <name>: <message>` and exits with status 1. With `holdAfter: N` it stops
// dead after step N (for a minute), so that a test that kills it upon `step N-1` never misses.
import * as dna from '../../lib/index.js';
import { tinyDataset } from './tiny-data.js';

export interface RunChildOptions {
  kind: 'train' | 'search';
  outDir: string;
  epochs: number;
  count?: number;
  batchSize?: number;
  seed?: number;
  lr?: number;
  holdAfter?: number;
}

/** The run the child makes, also for the tests' uninterrupted reference runs (in process, without outDir). */
export function runOptions(options: Omit<RunChildOptions, 'outDir'> & { outDir?: string }) {
  const data = tinyDataset(options.count ?? 64);
  const common = {
    epochs: options.epochs,
    batchSize: options.batchSize ?? 8,
    seed: options.seed ?? 3,
    outDir: options.outDir,
    resume: options.outDir !== undefined,
  };
  const train: dna.TrainOptions = {
    ...common,
    train: data,
    model: dna.WRN_10_1,
    lr: options.lr ?? 0.05,
    preprocess: { flip: 0.5, pad: 1, cutout: 2 },
    augmentation: 'trivialaugment',
  };
  const search: dna.SearchOptions = {
    ...common,
    train: data,
    classifier: dna.WRN_10_1,
    policy: dna.WRN_10_1,
    classifierLr: options.lr ?? 0.05,
    preprocess: { flip: 0.5, pad: 1, cutout: 2 },
  };
  return { train, search };
}

if (process.argv[1]?.endsWith('run-child.js')) {
  const options = JSON.parse(process.argv[2]) as RunChildOptions;
  const { train, search } = runOptions(options);
  const onProgress = (p: { phase: string; step: number }) => {
    if (p.phase !== 'step') return;
    process.stdout.write(`step ${p.step}\n`);
    if (p.step === options.holdAfter) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
  };
  try {
    if (options.kind === 'train') {
      const result = await dna.train({ ...train, onProgress });
      process.stdout.write(`done ${JSON.stringify({ steps: result.steps, checkpoint: result.checkpoints?.last })}\n`);
    } else {
      const result = await dna.search({ ...search, onProgress });
      process.stdout.write(
        `done ${JSON.stringify({ steps: result.steps, policyFile: result.policyFile, checkpoint: result.checkpoint })}\n`,
      );
    }
  } catch (error) {
    process.stdout.write(`error ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}\n`);
    process.exitCode = 1;
  }
}
