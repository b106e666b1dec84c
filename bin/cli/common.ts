// Options that several commands share, and what they become: the device and threads, how the
// networks run, the models and presets, the search objective, custom ops.
import {
  BASELINES,
  MAGNITUDE_FORMS,
  PAPER_PRESETS,
  PRECISIONS,
  PREPROCESS_PRESETS,
  MissingOpError,
  RunExistsError,
  RunSettingsError,
  SEARCH_OBJECTIVES,
  WRN_10_1,
  WRN_16_1,
  WRN_28_10,
  WRN_28_2,
  WRN_40_2,
  backend,
  defaultSearchSpace,
  loadOpLibrary,
  registerOp,
  setThreads,
  subPolicies,
  type Execution,
  type ImageDataset,
  type MagnitudeForm,
  type OpSpec,
  type PresetName,
  type Regularisers,
  type SearchObjective,
  type SearchSpace,
} from '../../lib/index.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { lookupOp } from '../../lib/augment/custom-ops.js';
import { show } from '../../lib/run/run-files.js';
import { describe } from '../../lib/util/describe.js';
import { stopOnInterrupt } from './interrupt.js';
import { UsageError, type OptionGroup, type OptionSpec, type OptionValues } from './options.js';
import { isMainRank, progressPrinter } from './progress.js';

export const MODELS = {
  'wrn-40-2': WRN_40_2,
  'wrn-28-10': WRN_28_10,
  'wrn-28-2': WRN_28_2,
  'wrn-16-1': WRN_16_1,
  'wrn-10-1': WRN_10_1,
} as const;
export type ModelName = keyof typeof MODELS;
export const MODEL_NAMES = Object.keys(MODELS) as ModelName[];

export const option = {
  model: (help: string): OptionSpec => ({ name: 'model', kind: 'choice', value: 'NAME', choices: MODEL_NAMES, help }),
  policyModel: (help: string): OptionSpec => ({
    name: 'policy-model',
    kind: 'choice',
    value: 'NAME',
    choices: MODEL_NAMES,
    help,
  }),
  epochs: (help: string): OptionSpec => ({ name: 'epochs', kind: 'integer', min: 1, value: 'N', help }),
  batchSize: (help: string): OptionSpec => ({ name: 'batch-size', kind: 'integer', min: 1, value: 'N', help }),
  lr: (help: string): OptionSpec => ({ name: 'lr', kind: 'number', value: 'X', help }),
  preset: (): OptionSpec => ({
    name: 'preset',
    kind: 'choice',
    value: 'NAME',
    choices: Object.keys(PAPER_PRESETS),
    help: `the paper's settings for ${Object.keys(PAPER_PRESETS).join(', ')} (explicit options override them)`,
  }),
  preprocess: (): OptionSpec => ({
    name: 'preprocess',
    kind: 'choice',
    value: 'NAME',
    choices: Object.keys(PREPROCESS_PRESETS),
    help:
      `baseline flip/crop/Cutout: ${Object.keys(PREPROCESS_PRESETS).join(', ')} (default cifar for 3 channels, ` +
      `none otherwise)`,
  }),
  out: (help: string): OptionSpec => ({ name: 'out', kind: 'string', value: 'DIR', help }),
  resume: (help: string): OptionSpec => ({ name: 'resume', kind: 'flag', help }),
  force: (what: string): OptionSpec => ({
    name: 'force',
    kind: 'flag',
    help: `start over in a --out that holds a ${what} run, deleting its files`,
  }),
  logEvery: (): OptionSpec => ({
    name: 'log-every',
    kind: 'integer',
    min: 1,
    value: 'N',
    help: 'also log the step figures every N steps (a JSON line each, beside the per-epoch ones)',
  }),
  seed: (): OptionSpec => ({
    name: 'seed',
    kind: 'integer',
    min: 0,
    value: 'N',
    help: 'seeds weights, batch order and every draw (default 0)',
  }),
  opLibrary: (): OptionSpec => ({
    name: 'op-library',
    kind: 'list',
    value: 'FILE',
    help: 'load custom ops from a shared library (TORCH_LIBRARY); repeatable',
  }),
  importModule: (): OptionSpec => ({
    name: 'import',
    kind: 'list',
    value: 'FILE',
    help: 'import a JavaScript module that registers transforms (registerOp); repeatable',
  }),
  augmentation: (): OptionSpec => ({
    name: 'augmentation',
    kind: 'choice',
    value: 'NAME',
    choices: Object.keys(BASELINES),
    help: `a baseline: ${Object.keys(BASELINES).join(', ')} (default none)`,
  }),
};

/** How and where the networks run: every command that trains or evaluates takes these. */
export const RUN_GROUP: OptionGroup = {
  title: 'Running',
  options: [
    {
      name: 'device',
      kind: 'string',
      value: 'cpu|cuda',
      help: 'where the networks run (default cuda when a GPU is visible)',
    },
    { name: 'threads', kind: 'integer', min: 1, value: 'N', help: 'LibTorch threads (default: the available cores)' },
    { name: 'channels-last', kind: 'flag', help: 'NHWC activations and weights' },
    {
      name: 'precision',
      kind: 'choice',
      value: 'NAME',
      choices: PRECISIONS,
      help: 'float32 (default) or bfloat16 (autocast forward passes)',
    },
    { name: 'json', kind: 'flag', help: 'machine-readable output, one JSON object per line' },
  ],
};

/** The options that choose a search's objective and regularisers (search, demo). */
export const OBJECTIVE_OPTIONS: OptionSpec[] = [
  {
    name: 'objective',
    kind: 'choice',
    value: 'NAME',
    choices: SEARCH_OBJECTIVES,
    help: `what the policy optimises: ${SEARCH_OBJECTIVES.join(', ')}`,
  },
  { name: 'entropy-floor', kind: 'number', value: 'X', help: 'keep the entropy of pi(x) above X nats' },
  { name: 'entropy-weight', kind: 'number', value: 'X', help: 'weight of the entropy floor (default 1)' },
  { name: 'strength', kind: 'number', value: 'X', help: 'target mean pixel change of the sampled sub-policies' },
  { name: 'strength-weight', kind: 'number', value: 'X', help: 'weight of the strength target (default 10)' },
  {
    name: 'change-reward',
    kind: 'number',
    value: 'X',
    help: 'reward per unit of mean pixel change (change as much as the classifier tolerates)',
  },
  {
    name: 'prior',
    kind: 'number',
    value: 'X',
    help: 'hold the policy to a TrivialAugment-like prior with weight X (it stays broad where the objective is silent)',
  },
  {
    name: 'tolerance',
    kind: 'number',
    value: 'X',
    help: 'invariance: a loss rise under X nats costs nothing',
  },
  {
    name: 'rise-target',
    kind: 'number',
    value: 'X',
    help: 'invariance: change each image until its loss rises by about X nats',
  },
  {
    name: 'shortfall-weight',
    kind: 'number',
    value: 'W',
    help: 'with --rise-target: weight of a rise short of the target (default 1; 0 is a tolerance)',
  },
  {
    name: 'draws',
    kind: 'integer',
    min: 1,
    value: 'K',
    help: 'invariance: K sub-policies per image and step, each scored against the other K - 1 (default 1)',
  },
  {
    name: 'magnitudes',
    kind: 'choice',
    value: 'FORM',
    choices: MAGNITUDE_FORMS,
    help: 'point: one magnitude per op (the paper); range: a centre and a width, a new draw each time',
  },
  {
    name: 'width-floor',
    kind: 'number',
    value: 'X',
    help: 'ranges: keep the mean width above X of the whole magnitude range (default 0.3)',
  },
  {
    name: 'width-ceiling',
    kind: 'number',
    value: 'X',
    help: 'ranges: let the mean width fall back above X (default 0.9)',
  },
  {
    name: 'policy-head',
    kind: 'choice',
    value: 'KIND',
    choices: ['network', 'features'],
    help: "network: a policy network of its own (the paper); features: a small head on the classifier's features",
  },
];

/** --threads, when given, sets LibTorch's threads. */
export function applyThreads(values: OptionValues): void {
  if (values.threads !== undefined) setThreads(values.threads as number);
}

/** --channels-last and --precision as a model's execution settings. */
export function executionOption(values: OptionValues): Execution {
  return {
    memoryFormat: values['channels-last'] ? 'channelsLast' : 'contiguous',
    precision: (values.precision as Execution['precision']) ?? 'float32',
  };
}

/** --device, checked against what this build and machine can do; default cuda when a GPU is visible. */
export function deviceOption(values: OptionValues): string {
  const requested = values.device as string | undefined;
  const b = backend();
  if (requested === undefined) return b.cuda ? 'cuda' : 'cpu';
  if (!/^(cpu|cuda(:\d+)?)$/.test(requested))
    throw new UsageError(`--device must be cpu, cuda or cuda:N, got ${describe(requested)}`);
  if (requested.startsWith('cuda') && !b.cuda) {
    throw new UsageError(
      b.cudaBuilt
        ? '--device cuda: no CUDA device is visible (see dna info)'
        : '--device cuda: this build of dna-augment has no CUDA (LibTorch without CUDA; see dna info)',
    );
  }
  return requested;
}

export function modelOf(name: unknown) {
  return name === undefined ? undefined : MODELS[name as ModelName];
}

/**
 * Loads every --op-library (C++ operators) and imports every --import module (JavaScript that
 * registers transforms with registerOp, e.g. a TypeScript transform compiled by tsc).
 */
export async function loadCustomOps(values: OptionValues): Promise<void> {
  for (const file of (values['op-library'] as string[] | undefined) ?? []) loadOpLibrary(file);
  for (const file of (values.import as string[] | undefined) ?? []) {
    if (/\.[cm]?ts$/.test(file))
      throw new UsageError(`--import ${file}: Node.js imports JavaScript; compile it first (tsc) and give the .js`);
    const resolved = path.resolve(file);
    if (!existsSync(resolved)) throw new Error(`--import ${file}: no such file`);
    try {
      await import(pathToFileURL(resolved).href);
    } catch (error) {
      throw new Error(`--import ${file}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    }
  }
}

/**
 * The built-in ops plus the named custom ops, or undefined for the default space: an op registered
 * by an --import module by its name, or a dispatcher operator ('ns::name', magnitude range [0, 1]).
 */
export function customSearchSpace(operators: string[]): SearchSpace | undefined {
  if (operators.length === 0) return undefined;
  const ops: OpSpec[] = [...defaultSearchSpace().ops];
  for (const op of operators) {
    if (/^\w+::\w+$/.test(op)) ops.push(registerOp({ name: op.split('::')[1], op }));
    else {
      try {
        ops.push(lookupOp(op, '--custom-op'));
      } catch {
        throw new UsageError(
          `--custom-op ${describe(op)}: neither a dispatcher operator like my_ops::blur (--op-library) nor an op ` +
            `registered by an --import module`,
        );
      }
    }
  }
  return { ops, subPolicies: subPolicies(ops) };
}

/**
 * --policy-model names the policy network of --policy-head network; refused (rather than ignored)
 * where the head sits on the classifier's features, which has no network of its own.
 */
export function checkPolicyModel(values: OptionValues, head: 'network' | 'features'): void {
  if (values['policy-model'] !== undefined && head === 'features')
    throw new UsageError(
      "--policy-model picks the policy network of --policy-head network; the head on the classifier's features " +
        'has none (give --policy-head network to search with a policy network)',
    );
}

/** --objective and the regularisers; undefined where not given (the caller's defaults then hold). */
export function objectiveOptions(values: OptionValues): {
  objective?: SearchObjective;
  regularisers?: Regularisers;
  magnitudes?: MagnitudeForm;
  policyHead?: 'network' | 'features';
  draws?: number;
} {
  const regularisers = {
    entropyFloor: values['entropy-floor'] as number | undefined,
    entropyWeight: values['entropy-weight'] as number | undefined,
    strength: values.strength as number | undefined,
    strengthWeight: values['strength-weight'] as number | undefined,
    changeReward: values['change-reward'] as number | undefined,
    widthFloor: values['width-floor'] as number | undefined,
    widthCeiling: values['width-ceiling'] as number | undefined,
    prior: values.prior as number | undefined,
    tolerance: values.tolerance as number | undefined,
    riseTarget: values['rise-target'] as number | undefined,
    shortfallWeight: values['shortfall-weight'] as number | undefined,
  };
  return {
    objective: values.objective as SearchObjective | undefined,
    regularisers: Object.values(regularisers).every((x) => x === undefined) ? undefined : regularisers,
    magnitudes: values.magnitudes as MagnitudeForm | undefined,
    policyHead: values['policy-head'] as 'network' | 'features' | undefined,
    draws: values.draws as number | undefined,
  };
}

/** --preprocess by name; without it the preset's, else cifar for RGB images and none for gray ones. */
export function preprocessOption(
  values: OptionValues,
  data: ImageDataset,
  preset: PresetName | undefined,
): keyof typeof PREPROCESS_PRESETS | undefined {
  const value = values.preprocess as keyof typeof PREPROCESS_PRESETS | undefined;
  if (value !== undefined || preset !== undefined) return value;
  return data.shape[0] === 3 ? 'cifar' : 'none';
}

/** The flags behind the settings a run records, for messages about them. */
const SETTING_FLAGS: Record<string, string> = {
  dataset: '--data/--subset/--val-split',
  images: '--subset',
  classes: '--data',
  seed: '--seed',
  epochs: '--epochs',
  batchSize: '--batch-size',
  lr: '--lr',
  classifierLr: '--lr',
  policyLr: '--policy-lr',
  weightDecay: '--weight-decay',
  augmentation: '--augmentation/--policy',
  preprocess: '--preprocess',
  objective: '--objective',
  regularisers: '--entropy-floor/--strength/--change-reward/--prior/--tolerance/--rise-target/--shortfall-weight',
  searchSpace: '--custom-op',
  draws: '--draws',
  magnitudeGradient: '--exact-magnitudes',
};

/** A library error about a run's folder or settings, said in the command's flags; other errors as they are. */
export function inFlags(error: unknown): unknown {
  if (error instanceof RunExistsError) {
    return new UsageError(
      `--out ${error.dir} already holds a ${error.kind} run (${error.files.join(', ')}); --resume continues it, ` +
        `--force starts over (deleting those files)`,
    );
  }
  if (error instanceof RunSettingsError) {
    const changes = error.differences.map(
      (d) => `${SETTING_FLAGS[d.name] ?? d.name} ${show(d.saved)} (now ${show(d.now)})`,
    );
    return new UsageError(
      `${error.file} was written by a run with other settings: ${changes.join(', ')}; resume with the same ` +
        `settings, or start over with --force`,
    );
  }
  if (error instanceof MissingOpError) {
    const how =
      error.kind === 'operator'
        ? `load the shared library that defines ${error.custom} with --op-library FILE`
        : `load the module that registers it with --import FILE`;
    return new Error(`${error.where} uses the custom op '${error.op}', which is not loaded: ${how}`);
  }
  return error;
}

/** The command line that continues a stopped run: this one with --resume (and without --force). */
export function resumeCommand(argv: string[] = process.argv.slice(2)): string {
  const words = argv.filter((word) => word !== '--force');
  if (!words.includes('--resume')) words.push('--resume');
  return shellCommand(['dna', ...words]);
}

/** Words as a shell command line, each quoted where the shell would split or expand it. */
export function shellCommand(words: string[]): string {
  const quote = (word: string) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);
  return words.map(quote).join(' ');
}

/**
 * The dna eval command for `checkpoint` on the test images a run was evaluated on: the same --data
 * with the options that chose its test images (--format, --test-dir, --val-split with its --seed,
 * --size, --channels).
 */
export function evalCommand(checkpoint: string, values: OptionValues): string {
  const words = ['dna', 'eval', '--checkpoint', checkpoint, '--data', values.data as string];
  for (const name of ['format', 'test-dir', 'val-split', 'size', 'channels'])
    if (values[name] !== undefined) words.push(`--${name}`, String(values[name]));
  if (values['val-split'] !== undefined && values.seed !== undefined) words.push('--seed', String(values.seed));
  return shellCommand(words);
}

/** A line for the user beside the results: on stderr, so that stdout keeps the results. */
export function note(line: string): void {
  if (isMainRank()) process.stderr.write(`${line}\n`);
}

/**
 * What `train` and `search` share from the command line: the output folder, resume, force, the
 * step log, Ctrl-C and the progress printer. `finish()` releases Ctrl-C and ends the progress line.
 */
export function runSession(
  values: OptionValues,
  settings: { label: string; device: string; defaultOut: string; advice: string },
) {
  const outDir = path.resolve((values.out as string | undefined) ?? settings.defaultOut);
  const onProgress = progressPrinter(settings.label, {
    json: values.json === true,
    outDir,
    resume: values.resume === true,
    device: settings.device,
    advice: settings.advice,
  });
  const interrupt = stopOnInterrupt();
  return {
    options: {
      outDir,
      resume: values.resume === true,
      force: values.force === true,
      logEvery: values['log-every'] as number | undefined,
      signal: interrupt.signal,
      onProgress,
    },
    finish() {
      interrupt.release();
      onProgress.finish();
    },
  };
}
