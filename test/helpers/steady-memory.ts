// Live tensors and resident memory, step by step, over a long `train` or `search` on a small
// dataset: the measurement behind test/steady-memory.test.ts (bounded) and bench/memory.ts (long).
import * as dna from '../../lib/index.js';
import { tinyDataset } from './tiny-data.js';

export interface MemoryTrace {
  kind: 'train' | 'search';
  steps: number;
  seconds: number;
  /** liveTensors() and the resident set size (MiB) after each step. */
  live: number[];
  rss: number[];
  /** liveTensors() before the run and after its result is disposed. */
  liveBefore: number;
  liveAfter: number;
}

/**
 * Runs `steps` steps (rounded up to whole epochs) of `kind` on 256 RGB 16x16 images in batches
 * of 16, with flip/crop/Cutout, TrivialAugment (train; or `augmentation`) or the policy (search), and a checkpoint
 * every epoch into `outDir`. No batch is made ahead (prefetch 0), so that the same tensors are
 * alive after every step, the last of an epoch included.
 */
export async function traceRun(
  kind: 'train' | 'search',
  steps: number,
  outDir: string,
  augmentation: dna.Augmentation = 'trivialaugment',
): Promise<MemoryTrace> {
  const data = tinyDataset(256, 3, 16);
  const batchSize = 16;
  const epochs = Math.ceil(steps / (data.count / batchSize));
  const live: number[] = [];
  const rss: number[] = [];
  const onProgress = (p: { phase: string }) => {
    if (p.phase !== 'step') return;
    live.push(dna.liveTensors());
    rss.push(process.memoryUsage.rss() / 2 ** 20);
  };
  const liveBefore = dna.liveTensors();
  const started = performance.now();
  if (kind === 'train') {
    const result = await dna.train({
      train: data,
      model: dna.WRN_10_1,
      epochs,
      batchSize,
      preprocess: 'cifar',
      augmentation,
      seed: 1,
      outDir,
      onProgress,
      prefetch: 0,
    });
    result.model.dispose();
  } else {
    const result = await dna.search({
      train: data,
      classifier: dna.WRN_10_1,
      policy: dna.WRN_10_1,
      epochs,
      batchSize,
      preprocess: 'cifar',
      seed: 1,
      outDir,
      onProgress,
      prefetch: 0,
    });
    result.policy.dispose();
  }
  return {
    kind,
    steps: live.length,
    seconds: (performance.now() - started) / 1000,
    live,
    rss,
    liveBefore,
    liveAfter: dna.liveTensors(),
  };
}

/** The median of values[from, to). */
export function median(values: number[], from = 0, to = values.length): number {
  const part = values.slice(from, to).sort((a, b) => a - b);
  return part[part.length >> 1];
}
