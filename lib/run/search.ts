// The DNA policy search (SPEC 1.5): a policy network and a classifier trained together, end to
// end through the fused sub-policy op, on a stratified subset, by one of the objectives of
// dna/objectives.ts (the paper's `joint` by default), over the shared epoch loop. The result is
// a policy file (dna/policy-file.ts) that `loadPolicy` turns into a frozen policy.
import path from 'node:path';

import { requireCustomOps } from '../augment/custom-ops.js';
import {
  preprocess as preprocessImages,
  preprocessConfig,
  PREPROCESS_PRESETS,
  type PreprocessConfig,
} from '../augment/preprocess.js';
import { validateSearchSpace, type SearchSpace } from '../augment/search-space.js';
import { batchCount, batchesAsync, type Batch } from '../data/batches.js';
import { checkDataset, type ImageDataset } from '../data/dataset.js';
import { splitStratified, stratifiedSubset } from '../data/subset.js';
import { searchStep, type Regularisers, type SearchObjective, type StepNetworks } from '../dna/objectives.js';
import { savePolicy } from '../dna/policy-file.js';
import { MAGNITUDE_FORMS, PolicyNetwork, type MagnitudeForm, type PolicyNetworkConfig } from '../dna/policy-network.js';
import { adaptWidthWeight } from '../dna/ranges.js';
import { watch, type SearchMonitor } from '../dna/monitor.js';
import { checkObjective, checkRegularisers, widthBounds } from '../dna/search-options.js';
import { PolicyStatistics } from '../dna/report.js';
import { settlePolicy, type SettleCheck } from '../dna/settle.js';
import { backend } from '../engine/backend.js';
import { checkpointPaths } from '../engine/checkpoint.js';
import { executionOptions, wideResNet, type Module, type WideResNetConfig } from '../engine/models.js';
import { adam, sgd } from '../engine/optim.js';
import { full, zeros } from '../engine/creation.js';
import { dispose, tidy, type Device } from '../engine/tensor.js';
import { checkSeed, integerInRange, positiveInteger } from '../util/checks.js';
import { describe, requiredOptions } from '../util/describe.js';
import { exists } from '../util/files.js';
import { openRun, recordRun } from './run-files.js';
import type { ProcessGroup } from '../distributed/group.js';
import { shardIndices, shardLength } from '../distributed/sampler.js';
import { EpochLoop, defaultSyncEvery, type LoopPosition, type LoopProgress, type RunOptions } from './epoch-loop.js';
import { rankGenerator, runGroup, shareWeights } from './ranks.js';
import { datasetPreset, type PresetName } from './presets.js';

export type { SearchMonitor } from '../dna/monitor.js';
import { saveRunState, type RunParts } from './run-state.js';

export const SEARCH_CHECKPOINT_KIND = 'dna-augment/search';
const SEARCH_CHECKPOINT_VERSION = 1;

type Backbone = PolicyNetworkConfig['backbone'];

/**
 * What `search` takes. With outDir it writes policy.dna at the end, search.last.ckpt after every
 * epoch (and when aborted), search.jsonl and search.run.json; `resume` continues from
 * search.last.ckpt (with the same settings; the device and the execution settings may change).
 */
export interface SearchOptions extends RunOptions<SearchProgress> {
  /** The data to search on; `subset` takes a stratified part of it. */
  train: ImageDataset;
  /** The paper's settings for a dataset (SPEC 1.5); every option below overrides it. */
  preset?: PresetName;
  /** Images of the stratified search subset (default: the preset's, else all of `train`). */
  subset?: number;
  /** Backbones of the classifier and the policy network (required without a preset). */
  classifier?: Backbone;
  policy?: Backbone;
  epochs?: number;
  /** Default 128; classifier SGD lr (default 0.1), momentum 0.9, weight decay 2e-4, cosine. */
  batchSize?: number;
  classifierLr?: number;
  weightDecay?: number;
  /** Policy Adam (SPEC 1.5): lr 0.005, betas (0.5, 0.999), no weight decay. */
  policyLr?: number;
  /** Sampling temperatures (SPEC 1.3), default 0.5. */
  tau?: number;
  lambda?: number;
  searchSpace?: SearchSpace;
  /**
   * What the policy optimises (lib/objectives.ts): 'joint' (the paper: the classifier's training
   * loss), 'bilevel' (DADA: clean held-out loss after an unrolled step; the search subset is split
   * in halves, stratified), 'teacher' (TeachAugment: adversarial, constrained by an EMA teacher)
   * or 'invariance' (the true loss rise per image, by the score function; use with a strength
   * target). Default 'joint'.
   */
  objective?: SearchObjective;
  /** Entropy floor and strength target (lib/objectives.ts), off by default. */
  regularisers?: Regularisers;
  /**
   * Objective 'invariance': sub-policies each image draws per step (default 1). With K >= 2 each
   * draw is scored against the image's other K - 1 draws instead of the other images of its class:
   * less noise per step for K classifier passes over the augmented batch instead of one.
   */
  draws?: number;
  /**
   * Gradient of the magnitudes through the ops: 'straight-through' (SPEC 1.4; the default for
   * point magnitudes) or 'exact' (the default for ranges, whose widths learn nothing without it).
   */
  magnitudeGradient?: 'straight-through' | 'exact';
  /**
   * 'point' (default, the paper: one magnitude per slot) or 'range' (SPEC 8: a centre and a width
   * per slot, each draw uniform in the range; the widths' entropy is kept within bounds, see
   * `regularisers.widthFloor`).
   */
  magnitudes?: MagnitudeForm;
  /**
   * 'network' (default, the paper: a policy network of its own, `policy`) or 'features': a small
   * MLP on the classifier's detached penultimate features of the un-augmented image. The policy
   * file then holds the search's classifier as the policy's backbone.
   */
  policyHead?: 'network' | 'features';
  /**
   * Recompute the policy network's batch-norm statistics over the search images at the end and
   * check it against the search (dna/settle.ts; recorded in the policy file). Default true.
   */
  settle?: boolean;
  /** EMA decay of the teacher of objective 'teacher' (default 0.99). */
  teacherDecay?: number;
  /** Baseline preprocessing: flip and crop before the sub-policy, Cutout after. Default: the preset's, else 'none'. */
  preprocess?: keyof typeof PREPROCESS_PRESETS | PreprocessConfig;
}

interface SearchEpochProgress {
  /** At the end of an epoch: the collapse monitor's view of the epoch. */
  monitor?: SearchMonitor;
}

/**
 * Progress of `search`, after every step and at the end of every epoch: the classifier's loss
 * and accuracy on the augmented batches, and per epoch the collapse monitor.
 */
export type SearchProgress = LoopProgress & SearchEpochProgress;

/** Where a search stands; with magnitude ranges also the adaptive weight of the width entropy. */
interface SearchPosition extends LoopPosition {
  widthWeight?: number;
}

export interface SearchResult {
  policy: PolicyNetwork;
  /** The settle check (when the search settled the policy). */
  settled?: SettleCheck;
  /** The monitor of the last epoch, and every collapse warning of the run. */
  monitor?: SearchMonitor;
  warnings: string[];
  steps: number;
  /** Where a resumed search continued from (absent for a fresh one). */
  resumedFrom?: { epoch: number; step: number };
  aborted: boolean;
  /** Seconds of the whole search, over every process that ran it (search.run.json carries them across). */
  seconds: number;
  /** GPU-hours when the search ran on a GPU. */
  gpuHours?: number;
  policyFile?: string;
  checkpoint?: string;
  metrics?: string;
  stepLog?: string;
}

/** The search's settings: the preset's, overridden by the explicit options. */
function resolveSearch(options: SearchOptions) {
  const preset = datasetPreset(options.preset, 'search')?.search;
  const classifier = options.classifier ?? preset?.classifier;
  const policy = options.policy ?? preset?.policy;
  const featureHead = options.policyHead === 'features';
  if (classifier === undefined || (policy === undefined && !featureHead))
    throw new TypeError('search: give the classifier and policy backbones (e.g. WRN_40_2), or a preset');
  const epochs = positiveInteger(options.epochs ?? preset?.epochs, 'epochs', 'search');
  const batchSize = positiveInteger(options.batchSize ?? preset?.batchSize ?? 128, 'batchSize', 'search');
  const subset = options.subset ?? preset?.subset;
  if (subset !== undefined) positiveInteger(subset, 'subset', 'search');
  const seed = checkSeed(options.seed ?? 0, 'search', true);
  const magnitudes = options.magnitudes ?? 'point';
  if (!MAGNITUDE_FORMS.includes(magnitudes))
    throw new RangeError(`search: magnitudes must be 'point' or 'range', got ${describe(magnitudes)}`);
  const policyHead = options.policyHead ?? 'network';
  if (policyHead !== 'network' && policyHead !== 'features')
    throw new RangeError(`search: policyHead must be 'network' or 'features', got ${describe(policyHead)}`);
  const regularisers = checkRegularisers(options.regularisers ?? {});
  const widthSet = Object.keys(regularisers).find((name) => name.startsWith('width'));
  if (widthSet !== undefined && magnitudes !== 'range')
    throw new RangeError(`search: regularisers.${widthSet} applies to magnitudes: 'range' only`);
  const objective = checkObjective(options.objective ?? 'joint');
  for (const name of ['tolerance', 'riseTarget', 'shortfallWeight'] as const)
    if (regularisers[name] !== undefined && objective !== 'invariance')
      throw new RangeError(`search: regularisers.${name} applies to objective: 'invariance' only`);
  if (regularisers.tolerance !== undefined && regularisers.riseTarget !== undefined)
    throw new RangeError('search: regularisers.tolerance and riseTarget are two costs of one rise: give one');
  if (regularisers.shortfallWeight !== undefined && regularisers.riseTarget === undefined)
    throw new RangeError('search: regularisers.shortfallWeight weighs a rise short of riseTarget: give riseTarget too');
  const draws = integerInRange(options.draws ?? 1, 'draws', 'search', 1, 64);
  if (draws > 1 && objective !== 'invariance')
    throw new RangeError("search: draws (several sub-policies per image) applies to objective: 'invariance' only");
  return {
    classifier,
    policy: policy ?? classifier,
    epochs,
    batchSize,
    subset,
    seed,
    classifierLr: options.classifierLr ?? preset?.classifierLr ?? 0.1,
    weightDecay: options.weightDecay ?? 2e-4,
    policyLr: options.policyLr ?? 0.005,
    tau: options.tau ?? 0.5,
    lambda: options.lambda ?? 0.5,
    objective,
    regularisers,
    draws,
    magnitudeGradient: options.magnitudeGradient ?? (magnitudes === 'range' ? 'exact' : 'straight-through'),
    magnitudes,
    policyHead,
    widthEntropy: magnitudes === 'range' ? widthBounds(regularisers) : undefined,
    settle: options.settle ?? true,
    teacherDecay: options.teacherDecay ?? 0.99,
    preprocess: preprocessConfig(options.preprocess ?? preset?.preprocess, 'search: unknown preprocess preset'),
  };
}

/**
 * Searches a policy: the policy network samples a sub-policy per image, the fused op applies
 * it, and each step updates the classifier (SGD + cosine) and the policy (Adam) by the chosen
 * objective (default `joint`, the paper's: both minimise the classifier's loss on the augmented
 * batch). With `outDir` it checkpoints every epoch and `resume` continues with the same result
 * as an uninterrupted search.
 */
export async function search(options: SearchOptions): Promise<SearchResult> {
  const started = performance.now();
  const { signal, onProgress } = requiredOptions(options, 'search', '{ train, classifier, policy, epochs, ... }');
  checkDataset(options.train, 'search');
  const settings = resolveSearch(options);
  const { epochs, batchSize, seed } = settings;
  const device = options.device ?? 'cpu';
  const baseline = settings.preprocess;
  const beforePolicy: PreprocessConfig = { ...baseline, cutout: 0 };
  const subset =
    settings.subset === undefined || settings.subset >= options.train.count
      ? options.train
      : stratifiedSubset(options.train, settings.subset, seed);
  // 'bilevel' holds out half of the subset (stratified) for the clean validation loss.
  const [data, validation] =
    settings.objective === 'bilevel' ? splitStratified(subset, 0.5, seed) : [subset, undefined];
  const [channels] = data.shape;
  const classes = data.classes.length;

  const outDir = options.outDir === undefined ? undefined : path.resolve(options.outDir);
  const checkpoint = outDir === undefined ? undefined : checkpointPaths(outDir, 'search').last;
  const metrics = outDir === undefined ? undefined : path.join(outDir, 'search.jsonl');
  const logEvery = options.logEvery === undefined ? undefined : positiveInteger(options.logEvery, 'logEvery', 'search');
  const stepLog =
    outDir === undefined || logEvery === undefined
      ? undefined
      : { file: path.join(outDir, 'search.steps.jsonl'), every: logEvery };
  let previousSeconds = 0;
  let resumedFrom: { epoch: number; step: number } | undefined;
  if (options.searchSpace !== undefined) {
    validateSearchSpace(options.searchSpace);
    requireCustomOps(options.searchSpace, 'search');
  }
  const execution = executionOptions(options.execution, 'search');
  const classifierConfig = { ...settings.classifier, classes, inChannels: channels, seed } as WideResNetConfig;
  const classifier = wideResNet(classifierConfig).to(device).setExecution(execution);
  const features = settings.policyHead === 'features';
  const policy = new PolicyNetwork({
    backbone: settings.policy,
    inChannels: channels,
    searchSpace: options.searchSpace,
    seed: seed + 1,
    magnitudes: settings.magnitudes,
    features: features ? { network: classifier } : undefined,
  }).to(device);
  if (!features) policy.network.setExecution(execution);
  const classifierOptimizer = sgd(classifier, {
    lr: settings.classifierLr,
    momentum: 0.9,
    nesterov: true,
    weightDecay: settings.weightDecay,
  });
  const policyOptimizer = adam(policy, { lr: settings.policyLr, betas: [0.5, 0.999], weightDecay: 0 });
  // The ranks of a distributed search (a world of one otherwise); each draws with a seed of its own.
  const { group, owned } = await runGroup(options.distributed);
  let generator = rankGenerator(seed, group, device);
  // TeachAugment's teacher starts as the classifier (same seed, same weights).
  const teacher =
    settings.objective === 'teacher'
      ? wideResNet(classifierConfig).to(device).setExecution(execution).eval()
      : undefined;
  const modules: Record<string, Module> = {
    classifier,
    ...(policy.head === undefined ? { policy: policy.network } : { policyHead: policy.head }),
    ...(teacher === undefined ? {} : { teacher }),
  };
  const parts: RunParts = { modules, optimizers: { classifierOptimizer, policyOptimizer }, generator };
  const networks: StepNetworks = { policy, classifier, classifierOptimizer, policyOptimizer, teacher, group };
  const statistics = new PolicyStatistics(policy.searchSpace, data.classes);
  const warnings: string[] = [];
  let monitor: SearchMonitor | undefined;
  const run = {
    dataset: data.name,
    images: data.count,
    seed,
    epochs,
    batchSize,
    classifierLr: settings.classifierLr,
    weightDecay: settings.weightDecay,
    policyLr: settings.policyLr,
    tau: settings.tau,
    lambda: settings.lambda,
    preprocess: baseline,
    searchSpace: policy.searchSpace,
    objective: settings.objective,
    regularisers: settings.regularisers,
    magnitudeGradient: settings.magnitudeGradient,
    teacherDecay: settings.objective === 'teacher' ? settings.teacherDecay : null,
    // Always recorded: a search resumed with another count of draws is refused (older checkpoints lack it).
    draws: settings.draws,
    // Recorded only when not the paper's, so that searches from before these options still resume.
    ...(settings.magnitudes === 'range' ? { magnitudes: settings.magnitudes } : {}),
    ...(features ? { policyHead: settings.policyHead } : {}),
    ...(group.isDistributed ? { worldSize: group.worldSize } : {}),
  } as const;

  // The sampled sub-policies' pixel change over the epoch, on the device until the epoch ends.
  let strengthSum = zeros([], { dtype: 'float64', device });
  // Magnitude ranges: the adaptive weight of the width entropy and the epoch's sum of that entropy,
  // on the device too (read when the epoch ends and when the position is saved).
  const widthBoundsOf = settings.widthEntropy;
  let widthWeight =
    widthBoundsOf === undefined ? undefined : full([], widthBoundsOf.weight, { dtype: 'float64', device });
  let widthEntropySum = zeros([], { dtype: 'float64', device });
  const positionWithWeight = () =>
    widthWeight === undefined ? loop.position : { ...loop.position, widthWeight: widthWeight.item() as number };
  const loop: EpochLoop<SearchPosition, SearchEpochProgress> = new EpochLoop(
    {
      where: 'search',
      data,
      batchSize,
      seed,
      device,
      epochs,
      lr: settings.classifierLr,
      optimizers: [classifierOptimizer],
      signal,
      metricsFile: metrics,
      stepLog,
      checkpoint,
      // Rank 0 alone writes.
      save: async () => {
        if (checkpoint === undefined || !group.isMain) return;
        await saveRunState(
          checkpoint,
          SEARCH_CHECKPOINT_KIND,
          SEARCH_CHECKPOINT_VERSION,
          parts,
          positionWithWeight(),
          run,
        );
        await recordRun(outDir!, 'search', loop.position, {
          epochs,
          steps: loop.steps,
          aborted: signal?.aborted === true,
          seconds: previousSeconds + (performance.now() - started) / 1000,
        });
      },
      group,
      syncEvery: options.syncEvery ?? defaultSyncEvery(device),
      prefetch: options.prefetch ?? 1,
      step: async (batch, lr) => {
        const held =
          validation === undefined
            ? undefined
            : await validationBatch(validation, batchSize, seed, loop.position, device, group);
        const images = preprocessImages(batch.images, beforePolicy, { generator });
        try {
          const widthEntropy =
            widthBoundsOf === undefined || widthWeight === undefined
              ? undefined
              : { bounds: widthBoundsOf, weight: widthWeight };
          const result = await searchStep(
            networks,
            { ...settings, cutout: baseline.cutout, lr, widthEntropy },
            { images, labels: batch.labels, validation: held },
            generator,
          );
          if (widthBoundsOf !== undefined && widthWeight !== undefined && result.widthEntropy !== undefined) {
            const entropy = result.widthEntropy;
            const [weight, sum] = tidy(() => [
              adaptWidthWeight(widthWeight!, entropy, widthBoundsOf),
              widthEntropySum.add(entropy.toDtype('float64').mul(batch.indices.length)),
            ]);
            dispose([widthWeight, widthEntropySum, entropy]);
            [widthWeight, widthEntropySum] = [weight, sum];
          }
          try {
            statistics.add(result.outputs, batch.labels);
            const added = tidy(() => strengthSum.add(result.strength.toDtype('float64').mul(batch.indices.length)));
            strengthSum.dispose();
            strengthSum = added;
          } finally {
            dispose([result.outputs, result.strength]);
          }
          return { loss: result.loss, correct: result.correct };
        } finally {
          dispose([images, held]);
        }
      },
      endEpoch: async (summary) => {
        // The statistics cover the steps this process ran (all of them, but in a resumed epoch).
        const strength = (strengthSum.item() as number) / summary.imagesThisRun;
        monitor = summary.imagesThisRun === 0 ? monitor : watch(statistics, strength);
        if (monitor !== undefined && widthWeight !== undefined && summary.imagesThisRun > 0) {
          monitor.widthEntropy = (widthEntropySum.item() as number) / summary.imagesThisRun;
          monitor.widthWeight = widthWeight.item() as number;
        }
        statistics.reset();
        strengthSum.dispose();
        strengthSum = zeros([], { dtype: 'float64', device });
        widthEntropySum.dispose();
        widthEntropySum = zeros([], { dtype: 'float64', device });
        if (monitor?.warning !== undefined) warnings.push(`epoch ${loop.position.epoch}: ${monitor.warning}`);
        return {
          record: { loss: summary.loss, accuracy: summary.accuracy, monitor: monitor ?? null },
          progress: { monitor },
        };
      },
      onProgress,
    },
    { epoch: 0, batch: 0, step: 0 },
  );
  try {
    if (outDir !== undefined && checkpoint !== undefined) {
      const opened = await openRun<SearchPosition>({
        kind: 'search',
        dir: outDir,
        resume: options.resume,
        force: options.force,
        group,
        checkpoint,
        state: { kind: SEARCH_CHECKPOINT_KIND, version: SEARCH_CHECKPOINT_VERSION, parts },
        run,
        logs: { metrics: metrics!, steps: stepLog?.file },
      });
      previousSeconds = opened.previousSeconds;
      if (opened.position !== undefined) {
        loop.position = opened.position;
        resumedFrom = { epoch: opened.position.epoch, step: opened.position.step };
        if (group.rank !== 0) generator = rankGenerator(seed, group, device, loop.position.step);
        const saved = opened.position.widthWeight;
        if (widthWeight !== undefined && saved !== undefined) {
          widthWeight.dispose();
          widthWeight = full([], saved, { dtype: 'float64', device });
        }
      }
    }
    // A feature head's backbone is the classifier: the head is what the policy adds.
    await shareWeights(group, classifier, policy.head ?? policy.network, ...(teacher === undefined ? [] : [teacher]));
    policy.train();
    classifier.train();
    const { aborted } = await loop.run(resumedFrom !== undefined);
    // Ranks kept batch statistics of their own shards: the policy network's running ones are averaged
    // (a feature head has none; its backbone is the classifier). Settling recomputes them over every
    // search image, the same on every rank.
    await group.syncBatchNormStatistics(policy.network);
    const settled =
      aborted || !settings.settle
        ? undefined
        : await settlePolicy(policy, data, {
            batchSize,
            preprocess: beforePolicy,
            seed: seed + 2,
            device,
            lastEpoch: monitor && { entropy: monitor.entropy, applyMass: monitor.applyMass },
          });
    const seconds = previousSeconds + (performance.now() - started) / 1000;
    let policyFile: string | undefined;
    if (outDir !== undefined && !aborted) {
      policyFile = path.join(outDir, 'policy.dna');
      if (group.isMain)
        await savePolicy(
          policyFile,
          policy,
          {
            dataset: data.name,
            classes: data.classes,
            seed,
            steps: loop.position.step,
            seconds: Math.round(seconds * 100) / 100,
          },
          settled,
        );
      // The other ranks may read the file next (a training with the policy): it is complete now.
      await group.barrier();
    }
    return {
      policy,
      settled,
      monitor,
      warnings,
      steps: loop.position.step,
      resumedFrom,
      aborted,
      seconds,
      gpuHours: device.startsWith('cuda') && backend().cuda ? seconds / 3600 : undefined,
      policyFile,
      checkpoint,
      metrics,
      stepLog: stepLog !== undefined && (await exists(stepLog.file)) ? stepLog.file : undefined,
    };
  } catch (error) {
    policy.dispose();
    throw error;
  } finally {
    strengthSum.dispose();
    widthEntropySum.dispose();
    widthWeight?.dispose();
    statistics.dispose();
    // A feature head's policy owns the classifier: its backbone.
    if (!features) classifier.dispose();
    teacher?.dispose();
    classifierOptimizer.dispose();
    policyOptimizer.dispose();
    if (owned) await group.destroy();
  }
}

/** The held-out batch paired with the step at `position`: the validation set cycles in its own seeded order. */
async function validationBatch(
  validation: ImageDataset,
  batchSize: number,
  seed: number,
  position: LoopPosition,
  device: Device,
  group: ProcessGroup,
) {
  const { rank, worldSize } = group;
  const perEpoch = batchCount(shardLength(validation.count, worldSize), batchSize);
  const round = Math.floor(position.step / perEpoch);
  // This rank's shard of the validation set's seeded order of the round.
  const upcoming = batchesAsync(validation, {
    batchSize,
    order: shardIndices(validation.count, { rank, worldSize, seed: seed + 1, epoch: round }),
    startBatch: position.step % perEpoch,
    device,
  });
  const first = await upcoming.next();
  await upcoming.return();
  const batch = first.value as Batch;
  return { images: batch.images, labels: batch.labels };
}
