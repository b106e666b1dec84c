// The whole training loop against PyTorch's, side by side in one run: an epoch of WRN-16-1 with
// TrivialAugment, from uint8 images in memory to the optimiser's update, on a CIFAR-shaped dataset
// (3x32x32, 10 classes, 10,000 synthetic images) and on Fashion-MNIST (Debian's, 60,000 images).
//
//   npx tsc -p . && node dist/bench/pipeline.js [--write] [--seed N] [--quick] [--images N]
//
// Ours: `train({ augmentation: 'trivialaugment' })` with 2 LibTorch threads (the step thread's),
// batches assembled and augmented on Node's main thread while the step runs. PyTorch:
// bench/pipeline_baseline.py, a Dataset of uint8 tensors with torchvision's TrivialAugmentWide per
// image and a DataLoader with 0, 1 and 2 workers (the training process gets the rest of the 2
// cores: 2, 1 and 1 threads); its best is the baseline. Same network, batch 128, SGD (lr 0.1,
// momentum 0.9, Nesterov, weight decay 2e-4), no evaluation. Also: the longest time Node's event
// loop waited during our epoch (perf_hooks.monitorEventLoopDelay), which is how long the main
// thread was blocked at a stretch. --quick: 2,000 images of each, for checking the script; --images N:
// N of each (a stratified subset of Fashion-MNIST).
import { spawnSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { setThreads } from '../lib/engine/backend.js';
import { WRN_16_1 } from '../lib/engine/models.js';
import { datasets, stratifiedSubset, type ImageDataset } from '../lib/data/index.js';
import { train } from '../lib/run/train.js';
import {
  PYTHON,
  ROOT,
  backgroundCores,
  backgroundNote,
  cpuSnapshot,
  fmtRatio,
  measuredOn,
  rateCell,
  runBench,
} from './common.js';

const WORKERS = [0, 1, 2];

/** The CIFAR-shaped dataset bench/pipeline_baseline.py makes: pixel k = ((k * 2654435761 mod 2^32) >> 11) & 255. */
function cifarShaped(count: number): ImageDataset {
  const images = new Uint8Array(count * 3 * 32 * 32);
  for (let k = 0; k < images.length; k++) images[k] = (Math.imul(k, 2654435761) >>> 11) & 255;
  const labels = Int32Array.from({ length: count }, (_, i) => i % 10);
  const classes = Array.from({ length: 10 }, (_, k) => `class ${k}`);
  return { name: 'cifar-shaped', images, labels, count, shape: [3, 32, 32], classes };
}

interface Side {
  imagesPerSecond: number;
  seconds: number;
  background: number;
}

async function ours(data: ImageDataset, seed: number): Promise<Side & { longestBlockMs: number }> {
  setThreads(2);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const before = cpuSnapshot();
  let seconds = Number.NaN;
  delay.enable();
  const result = await train({
    train: data,
    model: WRN_16_1,
    epochs: 1,
    batchSize: 128,
    augmentation: 'trivialaugment',
    seed,
    onProgress: (p) => {
      if (p.phase === 'epoch') seconds = p.imagesPerSecond > 0 ? data.count / p.imagesPerSecond : Number.NaN;
    },
  });
  delay.disable();
  result.model.dispose();
  return {
    imagesPerSecond: data.count / seconds,
    seconds,
    background: backgroundCores(before),
    longestBlockMs: delay.max / 1e6,
  };
}

function pytorch(dataset: 'cifar' | 'fmnist', images: number, workers: number, seed: number): Side {
  const before = cpuSnapshot();
  const run = spawnSync(
    PYTHON,
    [
      'bench/pipeline_baseline.py',
      '--dataset',
      dataset,
      '--images',
      String(images),
      '--workers',
      String(workers),
      '--seed',
      String(seed),
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  if (run.status !== 0) throw new Error(`pipeline_baseline.py failed:\n${run.stderr}`);
  const reply = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
    imagesPerSecond: number;
    seconds: number;
    cpuSeconds: number;
  };
  // The child's CPU time (its workers' with it) counts as other processes' here: take it out.
  const after = cpuSnapshot();
  return {
    imagesPerSecond: reply.imagesPerSecond,
    seconds: reply.seconds,
    background: Math.max(
      0,
      backgroundCores(before, after) - (reply.cpuSeconds * 1000) / (after.wallMs - before.wallMs),
    ),
  };
}

const own = [
  { name: 'images', what: 'images of each dataset (default: 10,000 CIFAR-shaped, all 60,000 of Fashion-MNIST)' },
];

await runBench(
  'pipeline',
  '## Training loop against PyTorch (CPU)',
  async (seed, command, quick, options) => {
    const fashion = await datasets.fashionMnist();
    const count = options.images ?? (quick ? 2000 : undefined);
    const sets: { name: string; key: 'cifar' | 'fmnist'; data: ImageDataset }[] = [
      { name: 'CIFAR-shaped (3x32x32)', key: 'cifar', data: cifarShaped(count ?? 10000) },
      {
        name: 'Fashion-MNIST (1x28x28)',
        key: 'fmnist',
        data: count === undefined || count >= fashion.count ? fashion : stratifiedSubset(fashion, count, 0),
      },
    ];
    const rows: string[] = [];
    const loads: number[] = [];
    for (const set of sets) {
      const images = set.data.count;
      // PyTorch's side reads the first N training images; ours a stratified subset of the same size
      // when N is less than all 60,000 (the content does not change the speed).
      const baselines = WORKERS.map((workers) => ({ workers, ...pytorch(set.key, images, workers, seed) }));
      const mine = await ours(set.data, seed);
      const best = baselines.reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a));
      const cells = baselines.map((b) => rateCell(b.imagesPerSecond, b.background)).join(' / ');
      loads.push(mine.background, ...baselines.map((b) => b.background));
      rows.push(
        `| ${set.name}, ${images} images | ${rateCell(mine.imagesPerSecond, mine.background)} | ${cells} | ${fmtRatio(mine.imagesPerSecond / best.imagesPerSecond)} (best: ${best.workers} workers) | ${mine.longestBlockMs.toFixed(1)} ms |`,
      );
    }
    return [
      '## Training loop against PyTorch (CPU)',
      '',
      `${measuredOn()}. Threads: ours 2 LibTorch threads on the step thread, Node's main thread assembling and augmenting batches; PyTorch 2 threads with 0 workers, 1 thread and 1 or 2 single-threaded workers.`,
      '',
      `Command: \`${command}\``,
      '',
      'An epoch of WRN-16-1, batch 128, TrivialAugment(Wide), SGD (lr 0.1, momentum 0.9, Nesterov, weight decay 2e-4), no evaluation; images per second over the epoch. PyTorch: torchvision 0.14 `TrivialAugmentWide` on uint8 tensors in a `Dataset`, `DataLoader` with 0 / 1 / 2 workers. Longest block: the longest the event loop waited during our epoch (`monitorEventLoopDelay`).',
      '',
      "| dataset | ours (img/s) | PyTorch, 0 / 1 / 2 workers (img/s) | ours / PyTorch's best | longest block of Node's main thread |",
      '|---|---:|---:|---:|---:|',
      ...rows,
      '',
      backgroundNote(loads, 'epoch', 'rates'),
      '',
    ].join('\n');
  },
  own,
);
