// Options that several commands share, and what they become: the device and threads, how the
// networks run, the models and presets, the search objective, custom ops.
import {
  BASELINES,
  MAGNITUDE_FORMS,
  PAPER_PRESETS,
  PRECISIONS,
  PREPROCESS_PRESETS,
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
import { describe } from '../../lib/util/describe.js';
import { UsageError, type OptionGroup, type OptionSpec, type OptionValues } from './options.js';

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

/** Loads every --op-library. */
export function loadOpLibraries(values: OptionValues): void {
  for (const file of (values['op-library'] as string[] | undefined) ?? []) loadOpLibrary(file);
}

/** The built-in ops plus the named dispatcher ops (magnitude range [0, 1]), or undefined for the default space. */
export function customSearchSpace(operators: string[]): SearchSpace | undefined {
  if (operators.length === 0) return undefined;
  const ops: OpSpec[] = [...defaultSearchSpace().ops];
  for (const op of operators) {
    if (!/^\w+::\w+$/.test(op))
      throw new UsageError(`--custom-op takes a dispatcher name like my_ops::blur, got ${describe(op)}`);
    ops.push(registerOp({ name: op.split('::')[1], op }));
  }
  return { ops, subPolicies: subPolicies(ops) };
}

/** --objective and the regularisers; undefined where not given (the caller's defaults then hold). */
export function objectiveOptions(values: OptionValues): {
  objective?: SearchObjective;
  regularisers?: Regularisers;
  magnitudes?: MagnitudeForm;
  policyHead?: 'network' | 'features';
} {
  const regularisers = {
    entropyFloor: values['entropy-floor'] as number | undefined,
    entropyWeight: values['entropy-weight'] as number | undefined,
    strength: values.strength as number | undefined,
    strengthWeight: values['strength-weight'] as number | undefined,
    changeReward: values['change-reward'] as number | undefined,
    widthFloor: values['width-floor'] as number | undefined,
    widthCeiling: values['width-ceiling'] as number | undefined,
  };
  return {
    objective: values.objective as SearchObjective | undefined,
    regularisers: Object.values(regularisers).every((x) => x === undefined) ? undefined : regularisers,
    magnitudes: values.magnitudes as MagnitudeForm | undefined,
    policyHead: values['policy-head'] as 'network' | 'features' | undefined,
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
