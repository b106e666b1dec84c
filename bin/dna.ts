#!/usr/bin/env node
// The `dna` command line.
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import {
  BASELINES,
  PREPROCESS_PRESETS,
  PAPER_PRESETS,
  PRECISIONS,
  WRN_10_1,
  WRN_16_1,
  WRN_28_10,
  WRN_28_2,
  WRN_40_2,
  backend,
  datasets,
  evaluate,
  loadTrainedModel,
  setThreads,
  stratifiedSubset,
  train,
  search,
  type Augmentation,
  type Execution,
  type ImageDataset,
  type TrainProgress,
  type PresetName,
  type PolicyReport,
  type Regularisers,
  type SearchObjective,
  SEARCH_OBJECTIVES,
  defaultSearchSpace,
  loadOpLibrary,
  registerOp,
  subPolicies,
  type OpSpec,
  type SearchSpace,
  type BaselineName,
  demo,
  loadPolicy,
  policyReport,
  writePolicyReport,
} from '../lib/index.js';
import { describe } from '../lib/util/describe.js';

const usage = `Usage: dna <command> [options]

Commands:
  info                     the native backend: LibTorch version, CUDA, threads
  demo                     the whole pipeline on Fashion-MNIST in about 2 minutes: search, train
                           with the found policy, evaluate, report (--out, default runs/demo)
  search --data DIR        search a DNA policy (default objective joint); writes policy.dna
  train --data DIR         train a WideResNet with a searched policy (--policy FILE) or a baseline
  eval --checkpoint FILE   test accuracy of a trained model
  report --policy FILE     per-class report of a policy on a dataset (Markdown, JSON, SVG plots)

Data (train, eval):
  --data DIR               the dataset's folder ('fashion-mnist': Debian's dataset-fashion-mnist)
  --format NAME            cifar10 | cifar100 | svhn | idx | fashion-mnist | folder (default: from --data)
  --subset N               a stratified subset of N training images

Training:
  --model NAME             wrn-40-2 | wrn-28-10 | wrn-28-2 | wrn-16-1 | wrn-10-1 (default wrn-40-2)
  --epochs N               (default 200)     --batch-size N (default 128)
  --lr X                   (default 0.1)     --weight-decay X (default 2e-4)
  --policy FILE            augment with a searched policy (policy.dna from dna search)
  --augmentation NAME      ${Object.keys(BASELINES).join(' | ')} (default none)
  --preset NAME            the paper's settings for ${Object.keys(PAPER_PRESETS).join(' | ')} (search and train;
                           explicit options override them)
  --preprocess NAME        ${Object.keys(PREPROCESS_PRESETS).join(' | ')} (default cifar for 3 channels, none otherwise)
  --out DIR                checkpoints and metrics.jsonl (default runs/train)
  --resume                 continue from DIR/train.last.ckpt (search: DIR/search.last.ckpt)
  --seed N                 (default 0)

Search (also --model for the classifier, --epochs, --batch-size, --lr, --preprocess, --out, --seed):
  --policy-model NAME      the policy network's backbone (default: as --model)
  --policy-lr X            Adam lr of the policy (default 0.005)
  --objective NAME         ${SEARCH_OBJECTIVES.join(' | ')} (default joint; see the README)
  --entropy-floor X        keep the entropy of pi(x) above X nats   --entropy-weight X (default 1)
  --strength X             target mean pixel change of the sampled sub-policies  --strength-weight X (default 10)
  --change-reward X        reward per unit of mean pixel change (change as much as the classifier tolerates)
  --exact-magnitudes       analytic magnitude gradients where the ops have them (default straight-through)
  --op-library FILE        load custom ops from a shared library (TORCH_LIBRARY; also for train and report)
  --custom-op NS::NAME     add a loaded op to the 15 built-in ones (magnitude range [0, 1]; repeatable)

Report:
  --policy FILE --data DIR the policy and the images to run it on (default: the test split)
  --split train|test       --out DIR (default: report/ beside the policy file)

Demo:
  --data DIR               Fashion-MNIST IDX files (default: Debian's dataset-fashion-mnist)
  --search-images N (2000) --search-epochs N (8) --train-images N (6000) --train-epochs N (6)
  --test-images N (all)    --model NAME (wrn-16-1) --policy-model NAME (wrn-10-1)
  --compare NAMES          also train baselines with the same budget, e.g. none,trivialaugment
  --objective, --entropy-floor, --strength, --change-reward and the weights as for search
                           (default: invariance, change reward 1, entropy floor 2: measured best, see README)

Common:
  --device cpu|cuda        (default cuda when available)
  --threads N              LibTorch threads (default: the available cores)
  --channels-last          NHWC activations and weights (train, eval, search, demo)
  --precision float32|bfloat16
                           bfloat16: autocast the forward passes (train, eval, search, demo)
  --json                   machine-readable output
  -h, --help               this help`;

const MODELS = {
  'wrn-40-2': WRN_40_2,
  'wrn-28-10': WRN_28_10,
  'wrn-28-2': WRN_28_2,
  'wrn-16-1': WRN_16_1,
  'wrn-10-1': WRN_10_1,
} as const;

type ModelName = keyof typeof MODELS;
const MODEL_NAMES = Object.keys(MODELS) as ModelName[];

const FORMATS = ['cifar10', 'cifar100', 'svhn', 'idx', 'fashion-mnist', 'folder'] as const;
type Format = (typeof FORMATS)[number];

class UsageError extends Error {}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

function number(value: string | undefined, name: string, fallback: number, integer?: boolean): number;
function number(value: string | undefined, name: string, fallback: number | undefined, integer?: boolean): number | undefined;
function number(value: string | undefined, name: string, fallback: number | undefined, integer = false): number | undefined {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || (integer && !Number.isInteger(parsed))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'}, got ${describe(value)}`);
  }
  return parsed;
}

function oneOf<T extends string>(value: string | undefined, name: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got ${describe(value)}`);
  return value as T;
}

/** Options every long-running command takes. */
const RUN_OPTIONS = {
  device: { type: 'string' },
  threads: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** How the networks run: commands that train or evaluate take these. */
const EXECUTION_OPTIONS = {
  'channels-last': { type: 'boolean' },
  precision: { type: 'string' },
} as const;

/** --channels-last and --precision as a model's execution settings. */
function executionOption(v: { 'channels-last'?: boolean; precision?: string }): Execution {
  return {
    memoryFormat: v['channels-last'] ? 'channelsLast' : 'contiguous',
    precision: oneOf(v.precision, 'precision', PRECISIONS, 'float32'),
  };
}

/** --threads, when given, sets LibTorch's threads. */
function applyThreads(value: string | undefined): void {
  if (value !== undefined) setThreads(number(value, 'threads', 1, true));
}

/** --preset by name, or undefined. */
function presetOption(value: string | undefined): PresetName | undefined {
  return value === undefined ? undefined : oneOf(value, 'preset', Object.keys(PAPER_PRESETS) as PresetName[], 'cifar10');
}

/** The name of a --model-like flag's network, `fallback` (which may be undefined) when not given. */
function modelName(value: string | undefined, flag: string, fallback: ModelName | undefined): ModelName | undefined {
  return value === undefined ? fallback : oneOf(value, flag, MODEL_NAMES, MODEL_NAMES[0]);
}

function modelOf(name: ModelName | undefined) {
  return name === undefined ? undefined : MODELS[name];
}

/** Loads every --op-library. */
function loadOpLibraries(files: string[] | undefined): void {
  for (const file of files ?? []) loadOpLibrary(file);
}

function guessFormat(dir: string): Format {
  if (dir === 'fashion-mnist') return 'fashion-mnist';
  if (/cifar-?100/i.test(dir)) return 'cifar100';
  if (/cifar/i.test(dir)) return 'cifar10';
  if (/svhn/i.test(dir)) return 'svhn';
  if (/mnist/i.test(dir)) return 'idx';
  return 'folder';
}

async function loadData(dir: string | undefined, format: string | undefined, split: 'train' | 'test'): Promise<ImageDataset> {
  if (dir === undefined) throw new UsageError('--data is required (a dataset folder, or fashion-mnist)');
  const kind = oneOf(format, 'format', FORMATS, guessFormat(dir));
  switch (kind) {
    case 'cifar10':
      return datasets.cifar10(dir, { split });
    case 'cifar100':
      return datasets.cifar100(dir, { split });
    case 'svhn':
      return datasets.svhn(dir, { split });
    case 'idx':
      return datasets.idx(dir, { split });
    case 'fashion-mnist':
      return dir === 'fashion-mnist' ? datasets.fashionMnist({ split }) : datasets.fashionMnist(dir, { split });
    case 'folder':
      return datasets.imageFolder(dir, { split });
  }
}

/** The built-in ops plus the named dispatcher ops (magnitude range [0, 1]), or undefined for the default space. */
function customSearchSpace(operators: string[]): SearchSpace | undefined {
  if (operators.length === 0) return undefined;
  const ops: OpSpec[] = [...defaultSearchSpace().ops];
  for (const op of operators) {
    if (!/^\w+::\w+$/.test(op)) throw new UsageError(`--custom-op takes a dispatcher name like my_ops::blur, got ${describe(op)}`);
    ops.push(registerOp({ name: op.split('::')[1], op }));
  }
  return { ops, subPolicies: subPolicies(ops) };
}

/** The options of search and demo that choose the objective and its regularisers. */
const OBJECTIVE_OPTIONS = {
  objective: { type: 'string' },
  'entropy-floor': { type: 'string' },
  'entropy-weight': { type: 'string' },
  strength: { type: 'string' },
  'strength-weight': { type: 'string' },
  'change-reward': { type: 'string' },
} as const;

function objectiveOptions(v: Partial<Record<keyof typeof OBJECTIVE_OPTIONS, string>>): { objective?: SearchObjective; regularisers?: Regularisers } {
  const regularisers = {
    entropyFloor: number(v['entropy-floor'], 'entropy-floor', undefined),
    entropyWeight: number(v['entropy-weight'], 'entropy-weight', undefined),
    strength: number(v.strength, 'strength', undefined),
    strengthWeight: number(v['strength-weight'], 'strength-weight', undefined),
    changeReward: number(v['change-reward'], 'change-reward', undefined),
  };
  return {
    objective: v.objective === undefined ? undefined : oneOf(v.objective, 'objective', SEARCH_OBJECTIVES, 'joint'),
    // None given: the caller's defaults (the demo has its own).
    regularisers: Object.values(regularisers).every((x) => x === undefined) ? undefined : regularisers,
  };
}

/** --preprocess by name; without it the preset's, else cifar for RGB images and none for gray ones. */
function preprocessOption(value: string | undefined, data: ImageDataset, preset: PresetName | undefined): keyof typeof PREPROCESS_PRESETS | undefined {
  const names = Object.keys(PREPROCESS_PRESETS) as (keyof typeof PREPROCESS_PRESETS)[];
  if (value === undefined && preset !== undefined) return undefined;
  return oneOf(value, 'preprocess', names, data.shape[0] === 3 ? 'cifar' : 'none');
}

function defaultDevice(requested: string | undefined): string {
  return requested ?? (backend().cuda ? 'cuda' : 'cpu');
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Progress on a terminal: one line redrawn in place; elsewhere: a plain line per epoch. */
function progressPrinter(json: boolean): (p: TrainProgress) => void {
  const tty = process.stderr.isTTY && !json;
  const started = performance.now();
  let lastDraw = 0;
  return (p) => {
    const elapsed = (performance.now() - started) / 1000;
    const eta = p.step > 0 ? (elapsed / p.step) * (p.steps - p.step) : Number.NaN;
    const test = p.testAccuracy === undefined ? '' : `  test ${(100 * p.testAccuracy).toFixed(2)}%`;
    const fields = `loss ${p.loss.toFixed(4)}  acc ${(100 * p.accuracy).toFixed(1)}%${test}  ${Math.round(p.imagesPerSecond)} img/s  lr ${p.lr.toPrecision(3)}  ETA ${formatDuration(eta)}`;
    if (json) {
      if (p.phase === 'epoch') console.log(JSON.stringify(p));
      return;
    }
    if (tty) {
      const now = performance.now();
      if (p.phase === 'step' && now - lastDraw < 100) return;
      lastDraw = now;
      const width = 20;
      const done = Math.round((width * p.stepInEpoch) / p.stepsPerEpoch);
      const bar = '#'.repeat(done) + '.'.repeat(width - done);
      const epoch = p.phase === 'epoch' ? p.epoch : p.epoch + 1;
      process.stderr.write(`\r\x1b[2Kepoch ${epoch}/${p.epochs} [${bar}] step ${p.stepInEpoch}/${p.stepsPerEpoch}  ${fields}`);
      if (p.phase === 'epoch') process.stderr.write('\n');
    } else if (p.phase === 'epoch') {
      console.log(`epoch ${p.epoch}/${p.epochs}  step ${p.step}/${p.steps}  ${fields}`);
    }
  };
}

/** Ctrl-C aborts the run after its current step (which then saves); a second one quits. */
/**
 * Ctrl-C stops a run after its current step; the run saves, and the command exits with 130
 * (interrupted, as shells report SIGINT) so that `dna train ... && next` does not go on.
 */
let interrupted = false;

function stopOnInterrupt(): { signal: AbortSignal; release: () => void } {
  const controller = new AbortController();
  const stop = () => {
    process.stderr.write('\ndna: stopping after the current step (Ctrl-C again to quit at once)\n');
    interrupted = true;
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  };
  process.once('SIGINT', stop);
  return { signal: controller.signal, release: () => process.removeListener('SIGINT', stop) };
}

function info(argv: string[]): void {
  const values = parse(argv, { json: { type: 'boolean' } });
  const b = backend();
  if (values.json) {
    console.log(JSON.stringify(b));
    return;
  }
  console.log(`LibTorch   ${b.torch}`);
  console.log(`CUDA       ${b.cuda ? `yes, ${b.cudaDevices} device(s)` : b.cudaBuilt ? 'built, no device visible' : 'no (CPU build)'}`);
  console.log(`threads    ${b.threads}`);
}

async function trainCommand(argv: string[]): Promise<void> {
  const v = parse(argv, {
    data: { type: 'string' },
    format: { type: 'string' },
    subset: { type: 'string' },
    model: { type: 'string' },
    epochs: { type: 'string' },
    'batch-size': { type: 'string' },
    lr: { type: 'string' },
    'weight-decay': { type: 'string' },
    augmentation: { type: 'string' },
    policy: { type: 'string' },
    'op-library': { type: 'string', multiple: true },
    preset: { type: 'string' },
    preprocess: { type: 'string' },
    out: { type: 'string' },
    resume: { type: 'boolean' },
    seed: { type: 'string' },
    ...RUN_OPTIONS,
    ...EXECUTION_OPTIONS,
  });
  applyThreads(v.threads);
  const execution = executionOption(v);
  const preset = presetOption(v.preset);
  const model = modelOf(modelName(v.model, 'model', preset === undefined ? 'wrn-40-2' : undefined));
  if (v.policy !== undefined && v.augmentation !== undefined) throw new UsageError('--policy and --augmentation exclude each other');
  loadOpLibraries(v['op-library']);
  const augmentation = v.policy !== undefined ? 'dna' : (oneOf(v.augmentation, 'augmentation', Object.keys(BASELINES), 'none') as Augmentation);
  const seed = number(v.seed, 'seed', 0, true);
  let trainData = await loadData(v.data, v.format, 'train');
  const testData = await loadData(v.data, v.format, 'test');
  if (v.subset !== undefined) trainData = stratifiedSubset(trainData, number(v.subset, 'subset', 0, true), seed);
  const preprocess = preprocessOption(v.preprocess, trainData, preset);
  const outDir = v.out ?? 'runs/train';
  const interrupt = stopOnInterrupt();
  const result = await train({
    train: trainData,
    test: testData,
    preset,
    model,
    epochs: number(v.epochs, 'epochs', preset === undefined ? 200 : undefined, true),
    batchSize: number(v['batch-size'], 'batch-size', preset === undefined ? 128 : undefined, true),
    lr: number(v.lr, 'lr', undefined),
    weightDecay: number(v['weight-decay'], 'weight-decay', undefined),
    augmentation,
    policyFile: v.policy,
    preprocess,
    seed,
    device: defaultDevice(v.device),
    execution,
    outDir,
    resume: v.resume ?? false,
    signal: interrupt.signal,
    onProgress: progressPrinter(v.json ?? false),
  });
  interrupt.release();
  const summary = {
    aborted: result.aborted,
    epochs: result.epochs,
    steps: result.steps,
    testAccuracy: result.testAccuracy,
    bestTestAccuracy: result.bestTestAccuracy,
    testError: result.testAccuracy === undefined ? undefined : 1 - result.testAccuracy,
    seconds: result.seconds,
    checkpoints: result.checkpoints,
    metrics: result.metrics,
  };
  result.model.dispose();
  if (v.json) {
    console.log(JSON.stringify(summary));
    return;
  }
  console.log(result.aborted ? `stopped after epoch ${result.epochs}, step ${result.steps}; resume with --resume` : `trained ${result.epochs} epochs in ${formatDuration(result.seconds)}`);
  if (summary.testError !== undefined) console.log(`test error ${(100 * summary.testError).toFixed(2)}% (best accuracy ${(100 * (result.bestTestAccuracy ?? 0)).toFixed(2)}%)`);
  console.log(`checkpoints ${result.checkpoints?.last}, ${result.checkpoints?.best}`);
  console.log(`metrics     ${result.metrics}`);
}

async function evalCommand(argv: string[]): Promise<void> {
  const v = parse(argv, {
    checkpoint: { type: 'string' },
    data: { type: 'string' },
    format: { type: 'string' },
    'batch-size': { type: 'string' },
    ...RUN_OPTIONS,
    ...EXECUTION_OPTIONS,
  });
  if (v.checkpoint === undefined) throw new UsageError('--checkpoint is required (a train.last.ckpt or train.best.ckpt)');
  applyThreads(v.threads);
  const execution = executionOption(v);
  const device = defaultDevice(v.device);
  const model = await loadTrainedModel(v.checkpoint, { device, execution });
  try {
    const data = await loadData(v.data, v.format, 'test');
    if (data.classes.length !== model.config.classes || data.shape[0] !== model.config.inChannels) {
      throw new Error(`${v.checkpoint} is a model of ${model.config.classes} classes and ${model.config.inChannels} channels; the data has ${data.classes.length} classes and ${data.shape[0]} channels`);
    }
    const result = await evaluate({ model, data, device, batchSize: number(v['batch-size'], 'batch-size', 256, true) });
    if (v.json) console.log(JSON.stringify({ ...result, testError: 1 - result.accuracy }));
    else console.log(`accuracy ${(100 * result.accuracy).toFixed(2)}%  error ${(100 * (1 - result.accuracy)).toFixed(2)}%  loss ${result.loss.toFixed(4)}  (${result.count} images)`);
  } finally {
    model.dispose();
  }
}

async function searchCommand(argv: string[]): Promise<void> {
  const v = parse(argv, {
    data: { type: 'string' },
    format: { type: 'string' },
    subset: { type: 'string' },
    model: { type: 'string' },
    'policy-model': { type: 'string' },
    epochs: { type: 'string' },
    'batch-size': { type: 'string' },
    lr: { type: 'string' },
    'policy-lr': { type: 'string' },
    ...OBJECTIVE_OPTIONS,
    'exact-magnitudes': { type: 'boolean' },
    'op-library': { type: 'string', multiple: true },
    'custom-op': { type: 'string', multiple: true },
    preset: { type: 'string' },
    preprocess: { type: 'string' },
    out: { type: 'string' },
    resume: { type: 'boolean' },
    seed: { type: 'string' },
    ...RUN_OPTIONS,
    ...EXECUTION_OPTIONS,
  });
  applyThreads(v.threads);
  const execution = executionOption(v);
  const preset = presetOption(v.preset);
  const classifierName = modelName(v.model, 'model', preset === undefined ? 'wrn-40-2' : undefined);
  const policyName = modelName(v['policy-model'], 'policy-model', classifierName);
  loadOpLibraries(v['op-library']);
  const searchSpace = customSearchSpace(v['custom-op'] ?? []);
  const data = await loadData(v.data, v.format, 'train');
  const interrupt = stopOnInterrupt();
  const tty = process.stderr.isTTY && !v.json;
  const result = await search({
    train: data,
    searchSpace,
    preset,
    subset: number(v.subset, 'subset', preset === undefined ? Math.min(4000, data.count) : undefined, true),
    classifier: modelOf(classifierName),
    policy: modelOf(policyName),
    epochs: number(v.epochs, 'epochs', preset === undefined ? 20 : undefined, true),
    batchSize: number(v['batch-size'], 'batch-size', undefined, true),
    classifierLr: number(v.lr, 'lr', undefined),
    policyLr: number(v['policy-lr'], 'policy-lr', undefined),
    preprocess: preprocessOption(v.preprocess, data, preset),
    ...objectiveOptions(v),
    magnitudeGradient: v['exact-magnitudes'] ? 'exact' : undefined,
    seed: number(v.seed, 'seed', 0, true),
    device: defaultDevice(v.device),
    execution,
    outDir: v.out ?? 'runs/search',
    resume: v.resume ?? false,
    signal: interrupt.signal,
    onProgress: (p) => {
      const line = `search epoch ${p.phase === 'epoch' ? p.epoch : p.epoch + 1}/${p.epochs}  step ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}  acc ${(100 * p.accuracy).toFixed(1)}%`;
      if (tty) process.stderr.write(`\r\x1b[2K${line}`);
      else if (!v.json && p.phase === 'epoch') console.log(line);
    },
  });
  interrupt.release();
  if (tty) process.stderr.write('\n');
  result.policy.dispose();
  const summary = {
    aborted: result.aborted,
    steps: result.steps,
    seconds: result.seconds,
    gpuHours: result.gpuHours,
    policyFile: result.policyFile,
    checkpoint: result.checkpoint,
    metrics: result.metrics,
    monitor: result.monitor,
    warnings: result.warnings,
  };
  if (!v.json) for (const warning of result.warnings) console.error(`dna: warning: ${warning}`);
  if (v.json) console.log(JSON.stringify(summary));
  else if (result.aborted) console.log(`stopped after step ${result.steps}; continue with --resume (checkpoint ${result.checkpoint})`);
  else console.log(`searched ${result.steps} steps in ${formatDuration(result.seconds)}; policy ${result.policyFile}`);
}

async function reportCommand(argv: string[]): Promise<void> {
  const v = parse(argv, {
    policy: { type: 'string' },
    'op-library': { type: 'string', multiple: true },
    data: { type: 'string' },
    format: { type: 'string' },
    split: { type: 'string' },
    subset: { type: 'string' },
    out: { type: 'string' },
    'batch-size': { type: 'string' },
    ...RUN_OPTIONS,
  });
  if (v.policy === undefined) throw new UsageError('--policy is required (a policy.dna written by dna search)');
  loadOpLibraries(v['op-library']);
  applyThreads(v.threads);
  const device = defaultDevice(v.device);
  let data = await loadData(v.data, v.format, oneOf(v.split, 'split', ['train', 'test'] as const, 'test'));
  if (v.subset !== undefined) data = stratifiedSubset(data, number(v.subset, 'subset', 0, true), 0);
  const policy = await loadPolicy(v.policy, { device });
  try {
    const report = await policyReport({ policy, data, device, batchSize: number(v['batch-size'], 'batch-size', undefined, true) });
    const files = await writePolicyReport(report, v.out ?? path.join(path.dirname(path.resolve(v.policy)), 'report'));
    if (v.json) {
      console.log(JSON.stringify(files));
      return;
    }
    console.log(`report of ${v.policy} on ${report.images} images of ${data.name}`);
    printTopSubPolicies(report);
    console.log(`markdown ${files.markdown}\njson     ${files.json}\nplots    ${files.plots.join(', ')}`);
  } finally {
    policy.dispose();
  }
}

/** The three most likely sub-policies per class, one line each (the report has five). */
function printTopSubPolicies(report: PolicyReport): void {
  const width = Math.max(...report.perClass.map((c) => c.name.length));
  for (const group of report.perClass) {
    const top = group.top.slice(0, 3).map((s) => `${s.name} ${(100 * s.probability).toFixed(1)}%`).join(', ');
    console.log(`  ${group.name.padEnd(width)}  ${top}`);
  }
}

async function demoCommand(argv: string[]): Promise<void> {
  const v = parse(argv, {
    data: { type: 'string' },
    out: { type: 'string' },
    'search-images': { type: 'string' },
    'search-epochs': { type: 'string' },
    'train-images': { type: 'string' },
    'train-epochs': { type: 'string' },
    'test-images': { type: 'string' },
    model: { type: 'string' },
    'policy-model': { type: 'string' },
    ...OBJECTIVE_OPTIONS,
    compare: { type: 'string' },
    seed: { type: 'string' },
    ...RUN_OPTIONS,
    ...EXECUTION_OPTIONS,
  });
  applyThreads(v.threads);
  const execution = executionOption(v);
  const compare = v.compare === undefined ? [] : v.compare.split(',').map((name) => oneOf(name.trim(), 'compare', Object.keys(BASELINES) as BaselineName[], 'none'));
  const data = v.data === undefined ? undefined : { train: await datasets.fashionMnist(v.data, { split: 'train' }), test: await datasets.fashionMnist(v.data, { split: 'test' }) };
  const outDir = path.resolve(v.out ?? 'runs/demo');
  const interrupt = stopOnInterrupt();
  const tty = process.stderr.isTTY && !v.json;
  const started = performance.now();
  const say = (line: string) => {
    if (v.json) return;
    if (tty) process.stderr.write(`\r\x1b[2K${line}`);
    else console.log(line);
  };
  const result = await demo({
    outDir,
    data,
    searchImages: number(v['search-images'], 'search-images', undefined, true),
    searchEpochs: number(v['search-epochs'], 'search-epochs', undefined, true),
    trainImages: number(v['train-images'], 'train-images', undefined, true),
    trainEpochs: number(v['train-epochs'], 'train-epochs', undefined, true),
    testImages: number(v['test-images'], 'test-images', undefined, true),
    classifier: modelOf(modelName(v.model, 'model', undefined)),
    policy: modelOf(modelName(v['policy-model'], 'policy-model', undefined)),
    compare,
    ...objectiveOptions(v),
    seed: number(v.seed, 'seed', 0, true),
    device: defaultDevice(v.device),
    execution,
    signal: interrupt.signal,
    onProgress: (event) => {
      const elapsed = formatDuration((performance.now() - started) / 1000);
      if (event.stage === 'search') {
        const p = event.progress;
        if (tty || p.phase === 'epoch') say(`[${elapsed}] search  epoch ${p.phase === 'epoch' ? p.epoch : p.epoch + 1}/${p.epochs}  step ${p.step}/${p.steps}  loss ${p.loss.toFixed(3)}`);
      } else if (event.stage === 'train') {
        const p = event.progress;
        if (tty || p.phase === 'epoch') say(`[${elapsed}] train (${event.augmentation})  epoch ${p.phase === 'epoch' ? p.epoch : p.epoch + 1}/${p.epochs}  step ${p.step}/${p.steps}  loss ${p.loss.toFixed(3)}  ${Math.round(p.imagesPerSecond)} img/s`);
      } else {
        say(`[${elapsed}] report`);
      }
    },
  });
  interrupt.release();
  if (tty) process.stderr.write('\n');
  if (v.json) {
    console.log(JSON.stringify(result));
    return;
  }
  if (result.aborted) {
    console.log(`stopped; what was done is in ${outDir}`);
    return;
  }
  console.log(`\nDNA on ${result.dataset}, done in ${formatDuration((performance.now() - started) / 1000)}`);
  console.log(`search   ${result.search!.images} images, ${result.search!.epochs} epochs (${formatDuration(result.search!.seconds)}): ${result.search!.policyFile}`);
  for (const run of result.runs) console.log(`train    ${run.augmentation.padEnd(14)} test error ${(100 * run.testError).toFixed(2)}%  (${formatDuration(run.seconds)}): ${run.checkpoint}`);
  for (const warning of result.search!.warnings) console.log(`warning  ${warning}`);
  console.log(`report   ${result.report!.markdown}`);
  console.log(`summary  ${result.summaryFile}`);
}

const commands: Record<string, (argv: string[]) => void | Promise<void>> = {
  info,
  demo: demoCommand,
  search: searchCommand,
  train: trainCommand,
  eval: evalCommand,
  report: reportCommand,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    console.log(usage);
    return command === undefined ? 1 : 0;
  }
  const run = Object.hasOwn(commands, command) ? commands[command] : undefined;
  if (run === undefined) {
    console.error(`dna: unknown command ${describe(command)}\n\n${usage}`);
    return 2;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    console.log(usage);
    return 0;
  }
  await run(rest);
  return interrupted ? 130 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`dna: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
