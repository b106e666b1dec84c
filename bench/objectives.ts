// Search objectives on data whose nuisance depends on the class: does the searched policy
// become input-conditional, and does training with it beat the baselines at the same budget?
//
//   npx tsc -p . && node dist/bench/objectives.js [--write] [--seed N] [--only a,b] [--fresh] [--smoke]
//
// Data: Fashion-MNIST (Debian's dataset-fashion-mnist), train and test alike changed per image
// with a fixed seed, by the library's own ops (`applyOp` on [0, 1] floats, stored back as uint8):
// the rotated classes get Rotate at a magnitude drawn uniformly in [0, 1] (-30..30 degrees,
// corners filled gray as the op does), the inverted classes get Invert with probability 0.5,
// the other classes stay as they are. The matching op of a rotated class is Rotate, of an
// inverted class Invert.
//
// Each search configuration (objective, regularisers, magnitude gradient) searches a policy on
// a stratified subset and trains a classifier with it (augmentation 'dna'); the baselines none,
// cutout and trivialaugment train at the same budget. All runs: the same classifier, seed,
// baseline preprocessing and test set (all 10,000 changed test images). Conditionality comes
// from `policyReport` on the test set: per class, the expected number of applications of an op
// per image (applyMass = sum over its slots of pi_s(x) * p_s,l(x)); the ratio is the mean over
// the affected classes over the mean over the unaffected ones.
//
// Completed runs are kept in /tmp/dna-bench-objectives/<settings hash>/results.json (search and
// training checkpoint there too), so that a rerun skips them and a killed run resumes;
// --only runs just the named ones, --fresh runs them again from scratch, --smoke is a tiny
// budget to try the code (never written). --write rewrites the '## Search objectives (CPU)'
// section of bench/RESULTS.md (once every run is there), leaving other sections alone.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { type PreprocessConfig } from '../lib/augment/preprocess.js';
import { setThreads } from '../lib/engine/backend.js';
import { datasets, stratifiedSubset, type ImageDataset } from '../lib/data/index.js';
import { WRN_10_1, WRN_16_1 } from '../lib/engine/models.js';
import type { Regularisers, SearchObjective } from '../lib/dna/objectives.js';
import type { BaselineName } from '../lib/baselines/index.js';
import { PolicyNetwork } from '../lib/dna/policy-network.js';
import { loadPolicy } from '../lib/dna/policy-file.js';
import { policyReport, type PolicyReport } from '../lib/dna/report.js';
import { search, type SearchMonitor } from '../lib/run/search.js';
import { log, measuredOn, sourceState, trainAndTest, writeSection } from './common.js';
import {
  FASHION_NAMES,
  GOAL_RATIO,
  INVERTED,
  INVERT_PROBABILITY,
  NEGLIGIBLE,
  NUISANCE_SEED,
  ROTATED,
  conditionality,
  f3,
  f4,
  fmtRatio,
  opChanges,
  pct,
  points,
  ratioCell,
  rotateCell,
  withNuisance,
  type Conditionality,
} from './nuisance.js';

const SECTION = '## Search objectives (CPU)';
const SCRIPT = 'objectives';
const THREADS = 2;

// ---- Budget ----

interface Budget {
  searchImages: number;
  searchEpochs: number;
  trainImages: number;
  trainEpochs: number;
  /** Test images (a stratified subset when fewer than the test set). */
  testImages: number;
  batchSize: number;
}

const BUDGET: Budget = {
  searchImages: 3000,
  searchEpochs: 8,
  trainImages: 6000,
  trainEpochs: 6,
  testImages: 10_000,
  batchSize: 128,
};
const SMOKE: Budget = {
  searchImages: 300,
  searchEpochs: 1,
  trainImages: 300,
  trainEpochs: 1,
  testImages: 500,
  batchSize: 100,
};

const CLASSIFIER = WRN_16_1;
const POLICY = WRN_10_1;
/** The demo's baseline preprocessing: flip, pad 2 + crop, then (after the augmentation) Cutout 8. */
const PREPROCESS: PreprocessConfig = { flip: 0.5, pad: 2, cutout: 8 };
const NO_CUTOUT: PreprocessConfig = { ...PREPROCESS, cutout: 0 };

// ---- Runs ----

interface SearchRun {
  kind: 'search';
  name: string;
  objective: SearchObjective;
  regularisers?: Regularisers;
  magnitudeGradient?: 'straight-through' | 'exact';
}

interface BaselineRun {
  kind: 'baseline';
  name: string;
  augmentation: BaselineName;
  preprocess: PreprocessConfig;
  what: string;
}

type Run = SearchRun | BaselineRun;

const STRENGTH: Regularisers = { strength: 0.12, strengthWeight: 30 };
const ENTROPY: Regularisers = { entropyFloor: 3, entropyWeight: 1 };
/** A linear reward per unit of pixel change (no target), with an entropy floor against collapse. */
const REWARD: Regularisers = { changeReward: 0.5, entropyFloor: 2, entropyWeight: 1 };

const RUNS: Run[] = [
  { kind: 'baseline', name: 'none', augmentation: 'none', preprocess: NO_CUTOUT, what: 'flip + crop' },
  { kind: 'baseline', name: 'cutout', augmentation: 'none', preprocess: PREPROCESS, what: 'flip + crop + Cutout 8' },
  {
    kind: 'baseline',
    name: 'trivialaugment',
    augmentation: 'trivialaugment',
    preprocess: PREPROCESS,
    what: 'flip + crop + TrivialAugmentWide + Cutout 8',
  },
  { kind: 'search', name: 'joint', objective: 'joint' },
  { kind: 'search', name: 'joint+strength', objective: 'joint', regularisers: STRENGTH },
  {
    kind: 'search',
    name: 'joint+strength+exact',
    objective: 'joint',
    regularisers: STRENGTH,
    magnitudeGradient: 'exact',
  },
  { kind: 'search', name: 'joint+entropy', objective: 'joint', regularisers: ENTROPY },
  { kind: 'search', name: 'bilevel', objective: 'bilevel' },
  { kind: 'search', name: 'teacher', objective: 'teacher' },
  { kind: 'search', name: 'teacher+strength', objective: 'teacher', regularisers: STRENGTH },
  { kind: 'search', name: 'invariance+strength', objective: 'invariance', regularisers: STRENGTH },
  { kind: 'search', name: 'bilevel+strength+entropy', objective: 'bilevel', regularisers: { ...STRENGTH, ...ENTROPY } },
  { kind: 'search', name: 'invariance+reward', objective: 'invariance', regularisers: REWARD },
  { kind: 'search', name: 'joint+strength+entropy', objective: 'joint', regularisers: { ...STRENGTH, ...ENTROPY } },
  { kind: 'search', name: 'invariance+reward1', objective: 'invariance', regularisers: { ...REWARD, changeReward: 1 } },
  {
    kind: 'search',
    name: 'invariance+reward1.5',
    objective: 'invariance',
    regularisers: { ...REWARD, changeReward: 1.5 },
  },
];

// ---- What a run leaves ----

interface RunResult {
  name: string;
  /** The run's definition when it ran: a changed definition runs again. */
  definition: string;
  /** The commit (and whether native/ or lib/ differed from it) when the run started: runs are kept across invocations. */
  source?: string;
  testAccuracy: number;
  trainSeconds: number;
  search?: {
    seconds: number;
    steps: number;
    monitor: SearchMonitor | null;
    warnings: string[];
    conditionality: Conditionality;
  };
}

interface Stored {
  settings: unknown;
  runs: Record<string, RunResult>;
  /** The untrained policy network's conditionality (the reference of a uniform policy). */
  init?: Conditionality;
  /** Mean absolute pixel change of single ops on the changed test set. */
  opChanges?: Record<string, number>;
}

// ---- Arguments ----

interface Args {
  write: boolean;
  seed: number;
  only?: string[];
  fresh: boolean;
  smoke: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { write: false, seed: 0, fresh: false, smoke: false };
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k];
    if (arg === '--write') args.write = true;
    else if (arg === '--seed') args.seed = Number(argv[++k]);
    else if (arg === '--only') args.only = (argv[++k] ?? '').split(',').filter(Boolean);
    else if (arg === '--fresh') args.fresh = true;
    else if (arg === '--smoke') args.smoke = true;
    else if (arg === '--help' || arg === '-h') {
      console.log(
        `usage: node dist/bench/${SCRIPT}.js [--write] [--seed N] [--only a,b] [--fresh] [--smoke]\nruns: ` +
          `${RUNS.map((r) => r.name).join(', ')}`,
      );
      process.exit(0);
    } else throw new Error(`unknown argument '${arg}' (try --help)`);
  }
  if (!Number.isInteger(args.seed) || args.seed < 0) throw new Error('--seed takes a non-negative integer');
  const unknown = args.only?.filter((name) => !RUNS.some((r) => r.name === name)) ?? [];
  if (unknown.length > 0)
    throw new Error(`--only: unknown run(s) ${unknown.join(', ')} (one of ${RUNS.map((r) => r.name).join(', ')})`);
  return args;
}

// ---- The data ----

// ---- Measuring ----

interface Context {
  trainData: ImageDataset;
  searchPool: ImageDataset;
  test: ImageDataset;
  budget: Budget;
  seed: number;
  dir: string;
}

/** Trains and tests a fresh classifier on the run's training images (`train` in `dir`). */
function trainRun(
  context: Context,
  name: string,
  dir: string,
  augmentation: BaselineName | 'dna',
  preprocess: PreprocessConfig,
  policyFile?: string,
): Promise<{ testAccuracy: number; trainSeconds: number }> {
  const { budget, seed } = context;
  return trainAndTest(
    {
      train: context.trainData,
      model: CLASSIFIER,
      epochs: budget.trainEpochs,
      batchSize: budget.batchSize,
      preprocess,
      augmentation,
      policyFile,
      seed,
      outDir: path.join(dir, 'train'),
      resume: true,
    },
    context.test,
    name,
  );
}

/** The run's folder under the results: its name and a hash of its definition. */
function runDir(context: Context, run: Run): string {
  return path.join(
    context.dir,
    `${run.name}-${createHash('sha256').update(JSON.stringify(run)).digest('hex').slice(0, 8)}`,
  );
}

async function runOne(context: Context, run: Run): Promise<RunResult> {
  const definition = JSON.stringify(run);
  const dir = runDir(context, run);
  if (run.kind === 'baseline')
    return {
      name: run.name,
      definition,
      ...(await trainRun(context, run.name, dir, run.augmentation, run.preprocess)),
    };
  const { budget, seed } = context;
  const searched = await search({
    train: context.searchPool,
    subset: budget.searchImages,
    classifier: CLASSIFIER,
    policy: POLICY,
    epochs: budget.searchEpochs,
    batchSize: budget.batchSize,
    preprocess: PREPROCESS,
    objective: run.objective,
    regularisers: run.regularisers,
    magnitudeGradient: run.magnitudeGradient,
    seed,
    outDir: path.join(dir, 'search'),
    resume: true,
    onProgress: (p) => {
      if (p.phase !== 'epoch') return;
      const m = p.monitor;
      const watch =
        m === undefined
          ? ''
          : `; entropy ${m.entropy.toFixed(2)}/${m.maxEntropy.toFixed(2)}, apply mass ` +
            `${m.totalApplyMass.toFixed(3)}, strength ${m.strength.toFixed(3)}, Rotate ` +
            `${m.applyMass.Rotate.toFixed(3)}, Invert ${m.applyMass.Invert.toFixed(3)}`;
      log(
        `${run.name} search epoch ${p.epoch}/${p.epochs}: loss ${p.loss.toFixed(3)}, accuracy ` +
          `${p.accuracy.toFixed(3)}${watch}${m?.warning ? ` (${m.warning})` : ''}`,
      );
    },
  });
  searched.policy.dispose();
  if (searched.policyFile === undefined) throw new Error(`${run.name}: the search wrote no policy file`);
  const policy = await loadPolicy(searched.policyFile);
  let report: PolicyReport;
  try {
    report = await policyReport({ policy, data: context.test });
  } finally {
    policy.dispose();
  }
  const found = conditionality(report);
  log(
    `${run.name}: Rotate ${fmtRatio(found.rotate.rotated, found.rotate.unaffected)}, Invert ` +
      `${fmtRatio(found.invert.inverted, found.invert.unaffected)}, apply mass ${found.totalApplyMass.toFixed(3)}`,
  );
  const trained = await trainRun(context, run.name, dir, 'dna', PREPROCESS, searched.policyFile);
  return {
    name: run.name,
    definition,
    ...trained,
    search: {
      seconds: searched.seconds,
      steps: searched.steps,
      monitor: searched.monitor ?? null,
      warnings: searched.warnings,
      conditionality: found,
    },
  };
}

async function initReference(context: Context): Promise<Conditionality> {
  const policy = new PolicyNetwork({ backbone: POLICY, inChannels: context.test.shape[0], seed: context.seed + 1 });
  try {
    return conditionality(await policyReport({ policy, data: context.test }));
  } finally {
    policy.dispose();
  }
}

// ---- Report ----

/** Accuracy differences under this many points are read as noise (one seed each). */
const NOISE_POINTS = 1;

interface Scored {
  run: SearchRun;
  result: RunResult;
  c: Conditionality;
  rotate: number;
  invert: number;
  /** Both matching ops at GOAL_RATIO x or more, with non-negligible mass on the affected classes. */
  conditional: boolean;
  accurate: boolean;
}

function scoreRuns(stored: Stored): Scored[] {
  const ta = stored.runs.trivialaugment.testAccuracy;
  return RUNS.filter((r): r is SearchRun => r.kind === 'search').map((run) => {
    const result = stored.runs[run.name];
    const c = result.search!.conditionality;
    const rotate = c.rotate.rotated / c.rotate.unaffected;
    const invert = c.invert.inverted / c.invert.unaffected;
    const conditional =
      rotate >= GOAL_RATIO && invert >= GOAL_RATIO && c.rotate.rotated >= NEGLIGIBLE && c.invert.inverted >= NEGLIGIBLE;
    return { run, result, c, rotate, invert, conditional, accurate: result.testAccuracy >= ta };
  });
}

function describeRun(run: SearchRun): string {
  const parts: string[] = [`objective '${run.objective}'`];
  const r = run.regularisers;
  if (r?.strength !== undefined) parts.push(`strength target ${r.strength} (weight ${r.strengthWeight ?? 10})`);
  if (r?.entropyFloor !== undefined)
    parts.push(`entropy floor ${r.entropyFloor} nats (weight ${r.entropyWeight ?? 1})`);
  parts.push(`magnitude gradient ${run.magnitudeGradient ?? 'straight-through'}`);
  return parts.join(', ');
}

function section(stored: Stored, budget: Budget, seed: number, command: string, totalSeconds: number): string {
  const runs = stored.runs;
  const scored = scoreRuns(stored);
  const baselineRuns = RUNS.filter((r): r is BaselineRun => r.kind === 'baseline');
  const classes = (labels: number[]) => labels.map((k) => `${k} ${FASHION_NAMES[k]}`).join(', ');
  const unaffected = FASHION_NAMES.map((_, k) => k).filter((k) => !ROTATED.includes(k) && !INVERTED.includes(k));
  const init = stored.init!;
  const main: string[] = [];
  const behaviour: string[] = [];
  for (const { run, result, c, conditional, accurate } of scored) {
    const { monitor, warnings, seconds } = result.search!;
    main.push(
      `| ${run.name} | ${f4(c.rotate.rotated)} / ${f4(c.rotate.unaffected)} | ` +
        `${ratioCell(c.rotate.rotated, c.rotate.unaffected)} | ` +
        `${f4(c.invert.inverted)} / ${f4(c.invert.unaffected)} | ` +
        `${ratioCell(c.invert.inverted, c.invert.unaffected)} | ` +
        `${monitor === null ? '—' : `${monitor.entropy.toFixed(2)} / ${f3(monitor.totalApplyMass)} / ${f3(monitor.strength)}`} | ${pct(result.testAccuracy)} | ` +
        `${conditional ? 'conditional' : 'not conditional'}, ${accurate ? 'accuracy met' : 'accuracy missed'} |`,
    );
    behaviour.push(
      `| ${run.name} | ${rotateCell(c.rotateM.rotated)} / ${rotateCell(c.rotateM.unaffected)} | ${c.topOp.rotated} ` +
        `/ ${c.topOp.inverted} / ${c.topOp.unaffected} | ${c.top} | ${f4(c.invert.rotated)} | ` +
        `${seconds.toFixed(0)} | ${result.trainSeconds.toFixed(0)} | ` +
        `${warnings.length === 0 ? 'none' : `${warnings.length} of ${budget.searchEpochs}, the last: ${warnings[warnings.length - 1].replace(/\|/g, '/')}`} |`,
    );
  }
  return [
    SECTION,
    '',
    `${measuredOn()}; ${THREADS} LibTorch threads (\`setThreads\`), on a machine shared with other work (times are ` +
      `indicative only).`,
    '',
    `Command: \`${command}\``,
    '',
    `Completed runs are kept across invocations (a rerun skips them); they were made from ${sources(stored)}.`,
    '',
    `Data: Fashion-MNIST (Debian's dataset-fashion-mnist), train and test sets alike changed per image with a ` +
      `fixed seed (${NUISANCE_SEED}, its own stream for each split) by the library's ops (\`applyOp\` on [0, 1] ` +
      `floats, stored back as uint8). ` +
      `Rotated classes (${classes(ROTATED)}): Rotate at a magnitude drawn uniformly in [0, 1], i.e. -30..30 ` +
      `degrees, corners filled gray 0.5 as the op does. ` +
      `Inverted classes (${classes(INVERTED)}): Invert with probability ${INVERT_PROBABILITY}. Unaffected: ` +
      `${classes(unaffected)}. ` +
      `The matching op of a rotated class is Rotate, of an inverted class Invert.`,
    '',
    `Budget (seed ${seed} for every run): search on a stratified ` +
      `${budget.searchImages.toLocaleString('en-US')}-image subset of the changed training set for ` +
      `${plural(budget.searchEpochs, 'epoch')} ` +
      `('bilevel' holds out half of it for its validation loss), batch ${budget.batchSize}, classifier SGD lr 0.1 ` +
      `cosine, policy Adam lr 0.005; ` +
      `then train a fresh classifier on a stratified ${budget.trainImages.toLocaleString('en-US')}-image subset ` +
      `for ${plural(budget.trainEpochs, 'epoch')} (batch ${budget.batchSize}, SGD lr 0.1, Nesterov, cosine) ` +
      `and test on ${budget.testImages >= 10_000 ? 'all 10,000' : budget.testImages.toLocaleString('en-US')} ` +
      `changed test images. Classifier WRN-16-1 (search and training), policy network WRN-10-1. ` +
      `Baseline preprocessing as \`dna demo\`: flip 0.5, pad 2 + crop, the augmentation, then Cutout 8 (also ` +
      `during the search); 'none' leaves out the Cutout. ` +
      `Search and training took ${(totalSeconds / 60).toFixed(0)} minutes in all.`,
    '',
    'Conditionality: `policyReport` of the searched policy on the changed test set; applyMass is the expected ' +
      'number of applications of an op per image ' +
      '(sum over its slots of pi_s(x) * p_s,l(x)), averaged over the classes of a group. Ratio = mean over the ' +
      'affected classes / mean over the unaffected classes; ' +
      `"negligible" marks a ratio whose affected classes get under ${NEGLIGIBLE} applications per image (a ratio ` +
      `of nothing to nothing). ` +
      `An untrained policy network (uniform pi, p = 0.5) gives ${f4(init.rotate.unaffected)} per op (2/15 * 0.5 = ` +
      `0.067) and ratios ` +
      `${fmtRatio(init.rotate.rotated, init.rotate.unaffected)} / ` +
      `${fmtRatio(init.invert.inverted, init.invert.unaffected)}. ` +
      "The monitor columns are the search's collapse monitor over its last epoch (search images, with the " +
      'sampling): mean entropy of pi(x) in nats (of log 105 = 4.65), ops applied per image, mean absolute ' +
      'pixel change. ' +
      `Goal: "conditional" = both ratios >= ${GOAL_RATIO}x and not negligible; "accuracy met" = test accuracy >= ` +
      `trivialaugment's. ` +
      `For scale, single ops change the changed test images by a mean of ${Object.entries(stored.opChanges!)
        .map(([op, change]) => `${f3(change)} (${op})`)
        .join(', ')}.`,
    '',
    '| config | Rotate: rotated / unaffected | ratio | Invert: inverted / unaffected | ratio | monitor: entropy / ' +
      'apply mass / strength | test accuracy | goal |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
    ...main,
    ...baselineRuns.map(
      (run) => `| baseline ${run.name} (${run.what}) | | | | | | ${pct(runs[run.name].testAccuracy)} | |`,
    ),
    '',
    'The configurations (regularisers and magnitude gradient as `search` takes them):',
    '',
    ...scored.map(({ run }) => `- ${run.name}: ${describeRun(run)}.`),
    '',
    '**What the policies do** (on the changed test set: mean Rotate magnitude m over its slots and the mean angle ' +
      'it stands for, 0.5 = no rotation, on rotated / unaffected classes; the op of most applyMass on rotated / ' +
      "inverted / unaffected classes; the top sub-policy overall; Invert's mass on the rotated classes, for " +
      "which it is no match; seconds; the collapse monitor's warnings)",
    '',
    '| config | Rotate m: rotated / unaffected | top op | top sub-policy (mean pi) | Invert on rotated | search s ' +
      '| train s | warnings |',
    '|---|---:|---|---|---:|---:|---:|---|',
    ...behaviour,
    '',
    ...findings(stored, scored, budget.testImages),
    '',
  ].join('\n');
}

/** The plain-words reading of the numbers, computed from them (no claims beyond what was measured). */
function findings(stored: Stored, scored: Scored[], testCount: number): string[] {
  const runs = stored.runs;
  const ta = runs.trivialaugment.testAccuracy;
  const names = (list: Scored[]) =>
    list.length === 0
      ? 'no configuration'
      : list.map((s) => `${s.run.name} (${pct(s.result.testAccuracy)})`).join(', ');
  const met = scored.filter((s) => s.conditional && s.accurate);
  const text: string[] = [
    `**Reading.** Goal (both matching-op ratios >= ${GOAL_RATIO}x, not negligible, and test accuracy >= ` +
      `trivialaugment's ${pct(ta)}): ` +
      `${met.length > 0 ? `met by ${met.map((s) => s.run.name).join(', ')}` : 'met by no configuration'}. ` +
      `Conditional policies: ${names(scored.filter((s) => s.conditional))}. Accuracy at or above trivialaugment: ` +
      `${names(scored.filter((s) => s.accurate))}.`,
  ];
  const baselines = RUNS.filter((r): r is BaselineRun => r.kind === 'baseline').map((r) => ({
    name: r.name,
    accuracy: runs[r.name].testAccuracy,
  }));
  const bestBaseline = baselines.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
  const bestSearched = scored.reduce((a, b) => (b.result.testAccuracy > a.result.testAccuracy ? b : a));
  const cutout = runs.cutout.testAccuracy;
  text.push(
    `Best baseline: ${bestBaseline.name} (${pct(bestBaseline.accuracy)}); best searched policy: ` +
      `${bestSearched.run.name} (${pct(bestSearched.result.testAccuracy)}: ` +
      `${signedPoints(bestSearched.result.testAccuracy - ta)} against trivialaugment, ` +
      `${signedPoints(bestSearched.result.testAccuracy - cutout)} against cutout, the same pipeline ` +
      `without a policy` +
      `${bestBaseline.name === 'cutout' ? '' : `, ${signedPoints(bestSearched.result.testAccuracy - bestBaseline.accuracy)} against ${bestBaseline.name}`}).`,
  );
  if (bestBaseline.name === 'none' && bestSearched.result.testAccuracy < bestBaseline.accuracy) {
    text.push('At this budget every augmentation, learned or not, lowered test accuracy against flip + crop alone.');
  }
  const byStrength = scored
    .filter((s) => s.result.search!.monitor !== null)
    .sort((a, b) => a.result.search!.monitor!.strength - b.result.search!.monitor!.strength);
  text.push(
    `Mean pixel change of the last search epoch against test accuracy, by change: ` +
      `${byStrength.map((s) => `${f3(s.result.search!.monitor!.strength)}: ${pct(s.result.testAccuracy)} (${s.run.name})`).join(', ')}.`,
  );
  const targeted = scored.filter((s) => s.run.regularisers?.strength !== undefined);
  if (targeted.length > 0 && stored.opChanges !== undefined) {
    const quiet = targeted.filter((s) => s.c.invert.inverted < NEGLIGIBLE);
    text.push(
      `With a strength target (${[...new Set(targeted.map((s) => s.run.regularisers!.strength))].join(', ')}, a ` +
        `squared penalty per image), Invert, which changes an image by ${f3(stored.opChanges.Invert)}, ` +
        `${quiet.length === targeted.length ? 'fell below' : `fell below in ${quiet.length} of ${targeted.length} runs`} ${NEGLIGIBLE} applications per image on the inverted classes.`,
    );
  }
  const collapsed = scored.filter((s) => s.result.search!.monitor?.warning !== undefined);
  if (collapsed.length > 0)
    text.push(`Collapsed in the last search epoch (monitor warning): ${collapsed.map((s) => s.run.name).join(', ')}.`);
  const exact = scored.find((s) => s.run.magnitudeGradient === 'exact');
  const straight =
    exact &&
    scored.find(
      (s) =>
        s !== exact &&
        s.run.objective === exact.run.objective &&
        JSON.stringify(s.run.regularisers) === JSON.stringify(exact.run.regularisers),
    );
  if (exact && straight) {
    text.push(
      `Magnitude gradient, ${straight.run.name} (straight-through) against ${exact.run.name}: Rotate ` +
        `${ratioCell(straight.c.rotate.rotated, straight.c.rotate.unaffected)} / ` +
        `${ratioCell(exact.c.rotate.rotated, exact.c.rotate.unaffected)}, ` +
        `Invert ${ratioCell(straight.c.invert.inverted, straight.c.invert.unaffected)} / ` +
        `${ratioCell(exact.c.invert.inverted, exact.c.invert.unaffected)}, ` +
        `mean Rotate m on rotated classes ${rotateCell(straight.c.rotateM.rotated)} / ` +
        `${rotateCell(exact.c.rotateM.rotated)}, test accuracy ${pct(straight.result.testAccuracy)} / ` +
        `${pct(exact.result.testAccuracy)}.`,
    );
  }
  text.push(
    `One seed each: a test set of ${testCount.toLocaleString('en-US')} images alone gives a standard error of ` +
      `about ${(100 * Math.sqrt((ta * (1 - ta)) / testCount)).toFixed(2)} points on an accuracy near ${pct(ta)}, ` +
      `and the seed-to-seed spread of training is larger; read accuracy differences under about ${NOISE_POINTS} ` +
      `point as noise.`,
  );
  return [text.join(' ')];
}

/** Which source states the stored runs were made from, and which runs each. */
function sources(stored: Stored): string {
  const by = new Map<string, string[]>();
  for (const run of RUNS) {
    const source = stored.runs[run.name].source ?? 'an unrecorded source state';
    by.set(source, [...(by.get(source) ?? []), run.name]);
  }
  return [...by]
    .map(([source, names]) => `${source} (${names.length === RUNS.length ? 'all runs' : names.join(', ')})`)
    .join('; ');
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function signedPoints(delta: number): string {
  return `${points(delta)} points`;
}

// ---- Main ----

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const budget = args.smoke ? SMOKE : BUDGET;
  setThreads(THREADS);
  const settings = {
    budget,
    seed: args.seed,
    ROTATED,
    INVERTED,
    INVERT_PROBABILITY,
    NUISANCE_SEED,
    CLASSIFIER,
    POLICY,
    PREPROCESS,
    smoke: args.smoke,
  };
  const hash = createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, 12);
  const dir = path.join(os.tmpdir(), 'dna-bench-objectives', hash);
  const file = path.join(dir, 'results.json');
  mkdirSync(dir, { recursive: true });
  const stored: Stored = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Stored) : { settings, runs: {} };
  const save = () => writeFileSync(file, JSON.stringify(stored, null, 2) + '\n');
  const selected = RUNS.filter((r) => args.only === undefined || args.only.includes(r.name));
  log(`results in ${file}; runs: ${selected.map((r) => r.name).join(', ')}`);

  const [trainSet, testSet] = await Promise.all([
    datasets.fashionMnist({ split: 'train' }),
    datasets.fashionMnist({ split: 'test' }),
  ]);
  const changedTrain = withNuisance(trainSet, 'train');
  const changedTest = withNuisance(testSet, 'test');
  const test =
    budget.testImages >= changedTest.count ? changedTest : stratifiedSubset(changedTest, budget.testImages, args.seed);
  const context: Context = {
    trainData: stratifiedSubset(changedTrain, budget.trainImages, args.seed + 1),
    searchPool: changedTrain,
    test,
    budget,
    seed: args.seed,
    dir,
  };
  log('nuisance applied');

  if (stored.init === undefined) {
    stored.init = await initReference(context);
    save();
  }
  if (stored.opChanges === undefined) {
    stored.opChanges = opChanges(context.test);
    save();
  }
  for (const run of selected) {
    if (
      args.fresh ||
      (stored.runs[run.name] !== undefined && stored.runs[run.name].definition !== JSON.stringify(run))
    ) {
      delete stored.runs[run.name];
      rmSync(runDir(context, run), { recursive: true, force: true });
    }
    if (stored.runs[run.name] !== undefined) {
      log(`${run.name}: done before (test accuracy ${stored.runs[run.name].testAccuracy.toFixed(4)})`);
      continue;
    }
    log(`${run.name}: starting`);
    const source = sourceState();
    stored.runs[run.name] = { ...(await runOne(context, run)), source };
    save();
  }

  const missing = RUNS.filter((r) => stored.runs[r.name]?.definition !== JSON.stringify(r)).map((r) => r.name);
  if (missing.length > 0) {
    log(`not yet run: ${missing.join(', ')} (no section)`);
    return;
  }
  const totalSeconds = Object.values(stored.runs).reduce(
    (sum, r) => sum + r.trainSeconds + (r.search?.seconds ?? 0),
    0,
  );
  const command = `npx tsc -p . && node dist/bench/${SCRIPT}.js ${process.argv.slice(2).join(' ')}`.trim();
  const text = section(stored, budget, args.seed, command, totalSeconds);
  console.log(`\n${text}`);
  if (args.write && !args.smoke) writeSection(SECTION, text);
  else if (args.write) log('--smoke: the section is not written');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
