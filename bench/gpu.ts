// The GPU figures, measured in one run (scripts/gpu-check.sh runs this on the GPU machine):
//
//   npx tsc -p . && node dist/bench/gpu.js [--out DIR] [--write] [--device cuda|cpu] [--quick]
//
// 1. Fused augmentation throughput: batch 512 at 32x32 and 224x224, every image its own
//    sub-policy (c one-hot at a random sub-policy, b random bits, m uniform), as the frozen
//    policy runs it in training (forward, no gradients) and as the search runs it (forward and
//    backward into c, b and m).
// 2. A WRN-40-2 training step (batch 128, 3x32x32, 10 classes; zeroGrad, forward, cross-entropy,
//    backward, SGD with Nesterov momentum, loss.item()) driven from TypeScript, against the same
//    step in the machine's PyTorch (bench/gpu_baseline.py, eager), in each execution setting:
//    NCHW or channels-last, float32 or bfloat16 autocast. The sides take turns (PyTorch, ours,
//    ours, PyTorch) and each keeps its faster block. Both use the libraries' defaults otherwise
//    (cuDNN may use TF32 for float32 convolutions in both).
// 3. The augmentation's share of that step: preprocess('cifar') and the fused sub-policies,
//    forward and backward, on the step's batch, against the step in float32 and in the fastest
//    setting.
// 4. A search of CIFAR-10 size: 4,000 synthetic images of 3x32x32 in 10 classes, 20 epochs,
//    batch 128, WRN-40-2 for both networks, preprocess 'cifar', in the fastest setting of (2);
//    its wall time and GPU-hours against the paper's 0.4 V100-hours.
//
// --quick shrinks everything (a small model, small batches, one epoch) to check the script
// itself on a CPU: its figures mean nothing. --out DIR writes gpu-bench.json and gpu-bench.md
// there; --write puts the section in bench/RESULTS.md. --render FILE measures nothing: it makes
// the section from a gpu-bench.json measured elsewhere (the GPU machine's, which does not send
// bench/RESULTS.md back), e.g. `node dist/bench/gpu.js --render gpu-bench.json --write`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { applySubPolicies } from '../lib/augment/fused.js';
import { preprocess } from '../lib/augment/preprocess.js';
import { backend, setThreads, synchronize } from '../lib/engine/backend.js';
import {
  WRN_10_1,
  WRN_40_2,
  crossEntropy,
  wideResNet,
  type Execution,
  type WideResNetPreset,
} from '../lib/engine/models.js';
import { sgd } from '../lib/engine/optim.js';
import { search } from '../lib/run/search.js';
import { defaultSearchSpace, type SearchSpace } from '../lib/augment/search-space.js';
import { Generator, rand, randint } from '../lib/engine/random.js';
import { dispose, noGrad, tidy, type Device, type Tensor } from '../lib/engine/tensor.js';
import {
  ROOT,
  fmtMs,
  fmtRate,
  fmtRatio,
  measuredOn,
  median,
  subPolicyWorkload,
  syntheticDataset,
  writeSection,
  type SubPolicyWorkload,
} from './common.js';

const SECTION = '## GPU';
const PAPER_V100_HOURS = 0.4;

interface Options {
  out?: string;
  render?: string;
  write: boolean;
  device: Device;
  quick: boolean;
}

function parseOptions(argv: string[]): Options {
  const options: Options = { write: false, device: 'cuda', quick: false };
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k];
    if (arg === '--out') options.out = argv[++k];
    else if (arg === '--render') options.render = argv[++k];
    else if (arg === '--write') options.write = true;
    else if (arg === '--device') options.device = argv[++k] as Device;
    else if (arg === '--quick') options.quick = true;
    else if (arg === '--help' || arg === '-h') {
      console.log(
        'usage: node dist/bench/gpu.js [--out DIR] [--write] [--device cuda|cpu] [--quick] | --render FILE [--write]',
      );
      process.exit(0);
    } else throw new Error(`unknown argument '${arg}' (try --help)`);
  }
  if (options.out === '' || (options.out === undefined && argv.includes('--out')))
    throw new Error('--out takes a directory');
  if (options.render === '' || (options.render === undefined && argv.includes('--render')))
    throw new Error('--render takes a gpu-bench.json file');
  return options;
}

const options = parseOptions(process.argv.slice(2));
const { device, quick } = options;
if (options.render === undefined && device.startsWith('cuda') && !backend().cuda) {
  console.error(
    `no CUDA device here (backend: ${JSON.stringify(backend())}); use --device cpu --quick to check the script`,
  );
  process.exit(2);
}
if (device === 'cpu') setThreads(backend().threads);

const SIZES = quick
  ? { augmentBatch: 16, sizes: [32, 64], batch: 16, model: WRN_10_1 }
  : { augmentBatch: 512, sizes: [32, 224], batch: 128, model: WRN_40_2 };
const STEPS = quick ? { warmup: 2, timed: 3 } : { warmup: 15, timed: 40 };
const SEARCH = quick ? { images: 64, epochs: 1 } : { images: 4000, epochs: 20 };
const SETTINGS: Execution[] = [
  { memoryFormat: 'contiguous', precision: 'float32' },
  { memoryFormat: 'channelsLast', precision: 'float32' },
  { memoryFormat: 'contiguous', precision: 'bfloat16' },
  { memoryFormat: 'channelsLast', precision: 'bfloat16' },
];
const settingName = (e: Execution) => `${e.memoryFormat === 'channelsLast' ? 'channels-last' : 'NCHW'} ${e.precision}`;
const modelName = (preset: WideResNetPreset) => `WRN-${preset.depth}-${preset.widen}`;
const CLASSES = 10;

/** Seconds per call of `run`, timed over `timed` calls after `warmup`, the device synchronised around each. */
function timeCalls(run: () => void, warmup: number, timed: number): number[] {
  for (let k = 0; k < warmup; k++) run();
  synchronize(device);
  const seconds: number[] = [];
  for (let k = 0; k < timed; k++) {
    const start = performance.now();
    run();
    synchronize(device);
    seconds.push((performance.now() - start) / 1000);
  }
  return seconds;
}

// ---- 1. Fused augmentation ----

interface AugmentFigure {
  size: number;
  batch: number;
  forwardSeconds: number;
  forwardBackwardSeconds: number;
}

function augmentation(size: number, batch: number): AugmentFigure {
  const space = defaultSearchSpace();
  const g = new Generator(size, device);
  const w = subPolicyWorkload(batch, size, space.subPolicies.length, g, device);
  const iterations = quick ? 3 : 20;
  const forward = timeCalls(
    () =>
      tidy(() => void noGrad(() => applySubPolicies(w.images, w.c, w.b, w.m, { searchSpace: space, generator: g }))),
    3,
    iterations,
  );
  for (const t of [w.c, w.b, w.m]) t.requireGrad();
  const backward = timeCalls(() => subPolicyBackward(w, space, g), 3, iterations);
  dispose(Object.values(w));
  return { size, batch, forwardSeconds: median(forward), forwardBackwardSeconds: median(backward) };
}

/** The fused op forward and backward into c, b and m (which require gradients), after `before` (the preprocessing). */
function subPolicyBackward(
  w: SubPolicyWorkload,
  space: SearchSpace,
  g: Generator,
  before: (x: Tensor) => Tensor = (x) => x,
): void {
  tidy(() => {
    applySubPolicies(before(w.images), w.c, w.b, w.m, { searchSpace: space, generator: g }).backward(w.g);
    for (const t of [w.c, w.b, w.m]) t.zeroGrad();
  });
}

/** The augmentation of a search step on a training batch: preprocess and the fused op, forward and backward. */
function stepAugmentation(batch: number): number {
  const space = defaultSearchSpace();
  const g = new Generator(7, device);
  const w = subPolicyWorkload(batch, 32, space.subPolicies.length, g, device);
  for (const t of [w.c, w.b, w.m]) t.requireGrad();
  const seconds = timeCalls(
    () => subPolicyBackward(w, space, g, (x) => preprocess(x, 'cifar', { generator: g })),
    STEPS.warmup,
    STEPS.timed,
  );
  dispose(Object.values(w));
  return median(seconds);
}

// ---- 2. Training step, ours and PyTorch's ----

function oursStep(preset: WideResNetPreset, batch: number, execution: Execution): number[] {
  const model = wideResNet({ ...preset, classes: CLASSES, inChannels: 3, seed: 0 })
    .to(device)
    .setExecution(execution);
  const optimizer = sgd(model, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 2e-4 });
  const g = new Generator(1, device);
  const [images, labels] = tidy(() => [
    rand([batch, 3, 32, 32], { generator: g, device }),
    randint(0, CLASSES, [batch], { generator: g, device }),
  ]);
  try {
    return timeCalls(
      () =>
        tidy(() => {
          optimizer.zeroGrad();
          const loss = crossEntropy(model.forward(images), labels);
          loss.backward();
          optimizer.step();
          loss.item();
        }),
      STEPS.warmup,
      STEPS.timed,
    );
  } finally {
    dispose([images, labels, optimizer, model]);
  }
}

interface PyTorchRun {
  torch: string;
  cuda: string | null;
  device: string;
  cudnn_tf32: boolean;
  matmul_tf32: boolean;
  results: Array<{ setting: Execution; step_seconds: number[]; loss: number }>;
}

const PYTHON = process.env.DNA_BENCH_PYTHON ?? (device === 'cpu' ? '/usr/bin/python3' : 'python3');

function pytorchSteps(preset: WideResNetPreset, batch: number): PyTorchRun {
  const args = [
    path.join(ROOT, 'bench', 'gpu_baseline.py'),
    ...['--depth', String(preset.depth), '--widen', String(preset.widen), '--batch', String(batch)],
    ...['--device', device, '--settings', JSON.stringify(SETTINGS)],
    ...['--warmup', String(STEPS.warmup), '--steps', String(STEPS.timed)],
    ...(device === 'cpu' ? ['--threads', String(backend().threads)] : []),
  ];
  const run = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`${PYTHON} ${args.join(' ')} failed (${run.status}):\n${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as PyTorchRun;
}

// ---- 4. Search ----

// ---- The run ----

async function main(): Promise<void> {
  const started = performance.now();
  const log = (line: string) => console.error(`[${((performance.now() - started) / 1000).toFixed(0)} s] ${line}`);

  const augment = SIZES.sizes.map((size) => {
    const figure = augmentation(size, SIZES.augmentBatch);
    log(
      `augmentation ${size}x${size}: ${fmtRate(SIZES.augmentBatch / figure.forwardSeconds)} img/s forward, ` +
        `${fmtRate(SIZES.augmentBatch / figure.forwardBackwardSeconds)} img/s forward+backward`,
    );
    return figure;
  });

  const { model, batch } = SIZES;
  const first = pytorchSteps(model, batch);
  log(`PyTorch ${first.torch} on ${first.device}: first block done`);
  const oursBlocks = SETTINGS.map((setting) => [oursStep(model, batch, setting)]);
  SETTINGS.forEach((setting, k) => oursBlocks[k].push(oursStep(model, batch, setting)));
  log('ours: both blocks done');
  const second = pytorchSteps(model, batch);
  const steps = SETTINGS.map((setting, k) => {
    const ours = Math.min(...oursBlocks[k].map(median));
    const theirs = Math.min(median(first.results[k].step_seconds), median(second.results[k].step_seconds));
    return { setting, ours, pytorch: theirs };
  });
  for (const s of steps)
    log(`${settingName(s.setting)}: ours ${fmtMs(1000 * s.ours)} ms, PyTorch ${fmtMs(1000 * s.pytorch)} ms`);
  const fastest = steps.reduce((best, s) => (s.ours < best.ours ? s : best));

  const augmentSeconds = stepAugmentation(batch);
  log(`augmentation of a batch of ${batch}: ${fmtMs(1000 * augmentSeconds)} ms`);

  const data = syntheticDataset(SEARCH.images, 3);
  const searchStarted = performance.now();
  const searched = await search({
    train: data,
    classifier: model,
    policy: model,
    epochs: SEARCH.epochs,
    batchSize: batch,
    preprocess: 'cifar',
    seed: 0,
    device,
    execution: fastest.setting,
  });
  const searchSeconds = (performance.now() - searchStarted) / 1000;
  searched.policy.dispose();
  log(`search: ${searched.steps} steps in ${searchSeconds.toFixed(1)} s`);

  const figures: Figures = {
    measured: measuredOn(),
    command: `npx tsc -p . && node dist/bench/gpu.js ${process.argv.slice(2).join(' ')}`.trim(),
    backend: backend(),
    pytorch: {
      torch: first.torch,
      cuda: first.cuda,
      device: first.device,
      cudnnTf32: first.cudnn_tf32,
      matmulTf32: first.matmul_tf32,
    },
    quick,
    augmentation: augment.map((a) => ({
      ...a,
      forwardImagesPerSecond: a.batch / a.forwardSeconds,
      forwardBackwardImagesPerSecond: a.batch / a.forwardBackwardSeconds,
    })),
    trainingStep: {
      model: modelName(model),
      batch,
      steps: steps.map((s) => ({
        ...s,
        oursImagesPerSecond: batch / s.ours,
        pytorchImagesPerSecond: batch / s.pytorch,
        ratio: s.ours / s.pytorch,
      })),
    },
    augmentationShare: {
      seconds: augmentSeconds,
      ofFloat32Step: augmentSeconds / steps[0].ours,
      ofFastestStep: augmentSeconds / fastest.ours,
      fastest: fastest.setting,
    },
    search: {
      images: SEARCH.images,
      epochs: SEARCH.epochs,
      batch,
      model: modelName(model),
      execution: fastest.setting,
      steps: searched.steps,
      seconds: searchSeconds,
      gpuHours: searchSeconds / 3600,
    },
  };

  const text = section(figures);
  console.log(`\n${text}`);
  if (options.out !== undefined) {
    mkdirSync(options.out, { recursive: true });
    writeFileSync(path.join(options.out, 'gpu-bench.json'), `${JSON.stringify(figures, null, 2)}\n`);
    writeFileSync(path.join(options.out, 'gpu-bench.md'), text);
  }
  if (options.write) writeSection(SECTION, text);
  log('done');
}

interface Figures {
  measured: string;
  command: string;
  backend: unknown;
  pytorch: { torch: string; cuda: string | null; device: string; cudnnTf32: boolean; matmulTf32: boolean };
  quick: boolean;
  augmentation: Array<AugmentFigure & { forwardImagesPerSecond: number; forwardBackwardImagesPerSecond: number }>;
  trainingStep: {
    model: string;
    batch: number;
    steps: Array<{
      setting: Execution;
      ours: number;
      pytorch: number;
      oursImagesPerSecond: number;
      pytorchImagesPerSecond: number;
      ratio: number;
    }>;
  };
  augmentationShare: { seconds: number; ofFloat32Step: number; ofFastestStep: number; fastest: Execution };
  search: {
    images: number;
    epochs: number;
    batch: number;
    model: string;
    execution: Execution;
    steps: number;
    seconds: number;
    gpuHours: number;
  };
}

function section(f: Figures): string {
  const lines = [
    SECTION,
    '',
    `${f.measured}; ${f.pytorch.device}, PyTorch ${f.pytorch.torch} (CUDA ${f.pytorch.cuda ?? 'none'}, cuDNN TF32 ` +
      `${f.pytorch.cudnnTf32 ? 'allowed' : 'off'}, matmul TF32 ${f.pytorch.matmulTf32 ? 'allowed' : 'off'}).`,
    `Command: \`${f.command}\` (run by scripts/gpu-check.sh).`,
    ...(f.quick ? ['', '**--quick: a check of the script on small sizes; these figures mean nothing.**'] : []),
    '',
    `Fused augmentation, batch ${f.augmentation[0]?.batch}, every image its own sub-policy:`,
    '',
    '| image size | forward (img/s) | forward + backward into c, b, m (img/s) |',
    '|---|---|---|',
    ...f.augmentation.map(
      (a) =>
        `| ${a.size}x${a.size} | ${fmtRate(a.forwardImagesPerSecond)} | ${fmtRate(a.forwardBackwardImagesPerSecond)} |`,
    ),
    '',
    `${f.trainingStep.model} training step, batch ${f.trainingStep.batch}, 3x32x32, ours from TypeScript against ` +
      `the same step in PyTorch (eager):`,
    '',
    '| setting | ours (img/s) | PyTorch (img/s) | ours / PyTorch time |',
    '|---|---|---|---|',
    ...f.trainingStep.steps.map(
      (s) =>
        `| ${settingName(s.setting)} | ${fmtRate(s.oursImagesPerSecond)} | ${fmtRate(s.pytorchImagesPerSecond)} | ` +
        `${fmtRatio(s.ratio)} |`,
    ),
    '',
    `Augmentation of a search step's batch (preprocess 'cifar' and the fused sub-policies, forward and backward): ` +
      `${fmtMs(1000 * f.augmentationShare.seconds)} ms, ` +
      `${(100 * f.augmentationShare.ofFloat32Step).toFixed(2)}% of the NCHW float32 step and ` +
      `${(100 * f.augmentationShare.ofFastestStep).toFixed(2)}% of the fastest ` +
      `(${settingName(f.augmentationShare.fastest)}); target under 2%.`,
    '',
    `Search of CIFAR-10 size (${f.search.images} synthetic images, ${f.search.epochs} epochs, batch ` +
      `${f.search.batch}, ${f.search.model} for both networks, ${settingName(f.search.execution)}): ` +
      `${f.search.steps} steps in ${f.search.seconds.toFixed(1)} s = ${f.search.gpuHours.toFixed(4)} GPU-hours, ` +
      `against the paper's ${PAPER_V100_HOURS} V100-hours.`,
    '',
  ];
  return lines.join('\n');
}

/** --render: the section from figures measured elsewhere. */
function render(file: string): void {
  const text = section(JSON.parse(readFileSync(file, 'utf8')) as Figures);
  console.log(text);
  if (options.write) writeSection(SECTION, text);
}

if (options.render !== undefined) render(options.render);
else await main();
