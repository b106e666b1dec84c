// Training a classifier: seeded, resumable from atomic checkpoints, stoppable by an AbortSignal
// after the current step, over the shared epoch loop.
import path from 'node:path';

import {
  applyCutout,
  preprocess as preprocessImages,
  preprocessConfig,
  PREPROCESS_PRESETS,
  type PreprocessConfig,
} from '../augment/preprocess.js';
import type { Augmenter, AugmenterOptions } from '../baselines/draws.js';
import { baselineAugmenter, type BaselineName } from '../baselines/index.js';
import { checkDataset, type ImageDataset } from '../data/dataset.js';
import type { LoadedPolicy } from '../dna/frozen-policy.js';
import { loadPolicy } from '../dna/policy-file.js';
import { checkpointPaths } from '../engine/checkpoint.js';
import { Module, executionOptions, wideResNet, type Execution, type WideResNetConfig } from '../engine/models.js';
import { sgd } from '../engine/optim.js';
import { classifierStep } from '../engine/steps.js';
import type { Device, Tensor } from '../engine/tensor.js';
import { checkSeed, positiveInteger } from '../util/checks.js';
import { describe, requiredOptions } from '../util/describe.js';
import { exists } from '../util/files.js';
import type { ProcessGroup } from '../distributed/group.js';
import {
  EpochLoop,
  defaultSyncEvery,
  type EpochEnd,
  type LoopPosition,
  type LoopProgress,
  type RunOptions,
} from './epoch-loop.js';
import { onRunGroup, rankGenerator, shareWeights } from './ranks.js';
import { evaluate } from './evaluate.js';
import { openRun, recordRun } from './run-files.js';
import { datasetPreset, type PresetName, type TrainPreset } from './presets.js';
import { CHECKPOINT_KIND, CHECKPOINT_VERSION } from './trained-model.js';
import { saveRunState, type RunParts } from './run-state.js';

export { CHECKPOINT_KIND, loadTrainedModel, loadTrainedRun, type TrainedRun } from './trained-model.js';

/**
 * Augmentation of a batch of [0, 1] images, applied after flip/crop and before Cutout: a
 * baseline by name, 'dna' (a searched policy, see `policyFile`), a loaded policy, or a function
 * (which gets the batch's labels as `options.labels` beside the generator).
 */
export type Augmentation = BaselineName | 'dna' | Augmenter | LoadedPolicy;

/**
 * What `train` takes. With outDir it writes train.last.ckpt, train.best.ckpt, metrics.jsonl and
 * train.run.json there; `resume` continues from train.last.ckpt (with the same settings; the
 * device, the execution settings, the test data and `evaluateEvery` may change).
 */
export interface TrainOptions extends RunOptions<TrainProgress> {
  train: ImageDataset;
  /** Evaluated after every epoch (see evaluateEvery) when given; the best accuracy picks best.ckpt. */
  test?: ImageDataset;
  /** Evaluate on `test` every this many epochs, and after the last one (default 1). */
  evaluateEvery?: number;
  /** The paper's settings for a dataset (SPEC 1.5); every option below overrides it. */
  preset?: PresetName;
  /** The network (required without a preset); classes and inChannels default to the dataset's. */
  model?: Partial<WideResNetConfig> & Pick<WideResNetConfig, 'depth' | 'widen'>;
  epochs?: number;
  /** Default: the preset's, else 128. */
  batchSize?: number;
  /** SGD: default lr 0.1, momentum 0.9, Nesterov, weight decay 2e-4; cosine to lrFloor (default 0). */
  lr?: number;
  lrFloor?: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  /**
   * Baseline preprocessing (SPEC 1.5): flip and pad + crop first, its Cutout after the
   * augmentation. Default 'none'.
   */
  preprocess?: keyof typeof PREPROCESS_PRESETS | PreprocessConfig;
  /** Default 'none'. */
  augmentation?: Augmentation;
  /**
   * The policy file of `augmentation: 'dna'` (from `search`): the policy network is frozen and
   * each image gets a hard sample of its own sub-policy, between flip/crop and Cutout.
   */
  policyFile?: string;
  /**
   * Train with the policy's marginal instead (the ablation of its conditioning): the same frozen
   * network, but each image draws its sub-policy, bits and magnitudes from the outputs of another
   * image of its batch. Needs a policy (`augmentation: 'dna'` or a loaded policy). Default false.
   */
  policyMarginal?: boolean;
}

/** Progress of `train`: after every step, and at the end of every epoch with the test accuracy. */
export type TrainProgress = LoopProgress & TrainEpochProgress;

export interface TrainResult {
  model: Module;
  epochs: number;
  steps: number;
  /** Where a resumed run continued from (absent for a fresh run). */
  resumedFrom?: { epoch: number; step: number };
  /** Last test accuracy (when there is test data) and the best one. */
  testAccuracy?: number;
  bestTestAccuracy?: number;
  /** Stopped by the AbortSignal (after saving last.ckpt). */
  aborted: boolean;
  /** Seconds of the whole run, over every process that ran it (train.run.json carries them across). */
  seconds: number;
  /** The checkpoints written: the last one, and the best one once an epoch has been evaluated. */
  checkpoints?: { last: string; best?: string };
  metrics?: string;
  stepLog?: string;
}

interface Position extends LoopPosition {
  bestTestAccuracy: number | null;
  testAccuracy: number | null;
}

interface TrainEpochProgress {
  /** Test accuracy at the end of an epoch that was evaluated. */
  testAccuracy?: number | undefined;
  /** With test data, in every event: its images, and the evaluations still to run (for an ETA). */
  testImages?: number;
  evaluationsLeft?: number;
}

/**
 * Trains a WideResNet on a dataset with SGD + cosine, the chosen baseline preprocessing and
 * augmentation. With `outDir`: last.ckpt after every epoch (and when aborted), best.ckpt on the
 * best test accuracy, metrics.jsonl one line per epoch; `resume` continues from last.ckpt with
 * the same weights, optimiser, batch order and augmentation draws as an uninterrupted run.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const started = performance.now();
  const { train: data, test, signal, onProgress } = requiredOptions(options, 'train', '{ train, model, epochs, ... }');
  checkDataset(data, 'train');
  if (test !== undefined) checkDataset(test, 'train (test data)');
  const preset = datasetPreset(options.preset, 'train')?.train;
  const modelConfig = options.model ?? preset?.model;
  if (modelConfig === undefined) throw new TypeError('train: give the model (e.g. WRN_40_2), or a preset');
  const epochs = positiveInteger(options.epochs ?? preset?.epochs, 'epochs', 'train');
  const batchSize = positiveInteger(options.batchSize ?? preset?.batchSize ?? 128, 'batchSize', 'train');
  const seed = checkSeed(options.seed ?? 0, 'train', true);
  const evaluateEvery = positiveInteger(options.evaluateEvery ?? 1, 'evaluateEvery', 'train');
  const logEvery = options.logEvery === undefined ? undefined : positiveInteger(options.logEvery, 'logEvery', 'train');
  const device = options.device ?? 'cpu';
  const baseline = preprocessConfig(options.preprocess ?? preset?.preprocess, 'train: unknown preprocess preset');
  const lr = options.lr ?? preset?.lr ?? 0.1;
  const lrFloor = options.lrFloor ?? 0;
  const [channels] = data.shape;
  if (test !== undefined && test.shape.join() !== data.shape.join()) {
    throw new RangeError(
      `train: test images are ${test.shape.join('x')} but training images are ${data.shape.join('x')}`,
    );
  }
  if (test !== undefined && test.classes.length !== data.classes.length) {
    throw new RangeError(
      `train: the test data has ${test.classes.length} classes, the training data ${data.classes.length}`,
    );
  }
  const execution = executionOptions(options.execution, 'train');
  const settings = {
    started,
    data,
    test,
    signal,
    onProgress,
    preset,
    modelConfig,
    epochs,
    batchSize,
    seed,
    device,
    baseline,
    lr,
    lrFloor,
    channels,
    execution,
    evaluateEvery,
    logEvery,
  };
  return onRunGroup(options.distributed, (group) => trainOnGroup(options, settings, group));
}

/** What `train` checked and settled before joining its group. */
type TrainSettings = {
  started: number;
  data: ImageDataset;
  test?: ImageDataset;
  signal?: AbortSignal;
  onProgress?: (progress: TrainProgress) => void;
  preset?: TrainPreset;
  modelConfig: NonNullable<TrainOptions['model']>;
  epochs: number;
  batchSize: number;
  seed: number;
  device: Device;
  baseline: PreprocessConfig;
  lr: number;
  lrFloor: number;
  channels: number;
  execution: Required<Execution>;
  evaluateEvery: number;
  logEvery?: number;
};

/** `train` as one rank of `group` (a world of one when not distributed). */
async function trainOnGroup(options: TrainOptions, settings: TrainSettings, group: ProcessGroup): Promise<TrainResult> {
  const {
    started,
    data,
    test,
    signal,
    onProgress,
    preset,
    modelConfig,
    epochs,
    batchSize,
    seed,
    device,
    baseline,
    lr,
    lrFloor,
    channels,
    execution,
    evaluateEvery,
    logEvery,
  } = settings;
  const beforePolicy: PreprocessConfig = { ...baseline, cutout: 0 };
  const { augment, policy, name: augmentationName } = await resolveAugmentation(options, channels, device);
  policy?.network.network.setExecution(execution);

  const model = wideResNet({ classes: data.classes.length, inChannels: channels, ...modelConfig, seed })
    .to(device)
    .setExecution(execution);
  const config = model.config;
  if (config.classes !== data.classes.length) {
    model.dispose();
    policy?.dispose();
    throw new RangeError(
      `train: the model has ${config.classes} outputs but the data has ${data.classes.length} classes`,
    );
  }
  const optimizer = sgd(model, {
    lr,
    momentum: options.momentum ?? 0.9,
    nesterov: options.nesterov ?? preset?.nesterov ?? true,
    weightDecay: options.weightDecay ?? 2e-4,
  });
  let generator = rankGenerator(seed, group, device);
  const distributed = group.isDistributed;

  const files = options.outDir === undefined ? undefined : checkpointPaths(options.outDir, 'train');
  const metricsFile = files === undefined ? undefined : path.join(files.dir, 'metrics.jsonl');
  const stepLog =
    files === undefined || logEvery === undefined
      ? undefined
      : { file: path.join(files.dir, 'train.steps.jsonl'), every: logEvery };
  // What the run is: a resumed run must match it (the device and, between epochs, the world size may change).
  const run = {
    dataset: data.name,
    images: data.count,
    classes: data.classes,
    seed,
    epochs,
    batchSize,
    lr,
    lrFloor,
    momentum: options.momentum ?? 0.9,
    weightDecay: options.weightDecay ?? 2e-4,
    augmentation: augmentationName,
    preprocess: baseline,
    device,
    ...(distributed ? { worldSize: group.worldSize } : {}),
  };
  // Whether the epoch that ends at `epoch` (1-based) is evaluated, and how many evaluations lie after `done` epochs.
  const evaluated = (epoch: number) => test !== undefined && (epoch % evaluateEvery === 0 || epoch === epochs);
  const evaluationsAfter = (done: number) => {
    let left = 0;
    for (let e = done + 1; e <= epochs; e++) if (evaluated(e)) left++;
    return left;
  };
  const withEta = (p: TrainProgress): TrainProgress =>
    test === undefined
      ? p
      : // p.epoch counts the epochs whose end (and evaluation) is over.
        { ...p, testImages: test.count, evaluationsLeft: evaluationsAfter(p.epoch) };
  let previousSeconds = 0;
  let resumedFrom: { epoch: number; step: number } | undefined;

  const parts: RunParts = { modules: { model }, optimizers: { optimizer }, generator };
  const loop: EpochLoop<Position, TrainEpochProgress> = new EpochLoop(
    {
      where: 'train',
      data,
      batchSize,
      seed,
      device,
      epochs,
      lr,
      lrFloor,
      optimizers: [optimizer],
      signal,
      metricsFile,
      stepLog,
      checkpoint: files?.last,
      save: async () => {
        if (files === undefined) return;
        await save(files.last);
        if (!group.isMain) return;
        await recordRun(files.dir, 'train', loop.position, {
          epochs,
          steps: loop.steps,
          aborted: signal?.aborted === true,
          seconds: previousSeconds + (performance.now() - started) / 1000,
        });
      },
      group,
      syncEvery: options.syncEvery ?? defaultSyncEvery(device),
      prefetch: options.prefetch ?? 1,
      step: async (batch) => {
        // flip/crop, the augmentation, Cutout; then forward, backward and the update on the step thread.
        const cropped = preprocessImages(batch.images, beforePolicy, { generator });
        let augmented: Tensor;
        try {
          augmented = await augment(cropped, { generator, labels: batch.labels });
        } catch (error) {
          cropped.dispose();
          throw error;
        }
        // An augmentation may hand back the very tensor it was given.
        if (augmented !== cropped) cropped.dispose();
        const images = applyCutout(augmented, baseline.cutout, { generator });
        if (images !== augmented) augmented.dispose();
        try {
          // Alone, the update is part of the step; as a rank, it follows the averaging of the gradients.
          const { loss, correct } = await classifierStep(model, images, batch.labels, {
            optimizer,
            zeroGrad: true,
            step: !distributed,
          });
          if (distributed) {
            await group.averageGradients(model);
            await optimizer.stepAsync();
          }
          return { loss, correct };
        } finally {
          images.dispose();
        }
      },
      endEpoch: async (summary): Promise<EpochEnd<TrainEpochProgress>> => {
        // Ranks kept batch statistics of their own shards: the running ones are averaged first.
        await group.syncBatchNormStatistics(model);
        let testAccuracy: number | null = null;
        if (test !== undefined && evaluated(loop.position.epoch)) {
          const at = loop.position;
          const evaluatedStarted = performance.now();
          const result = await evaluate({
            model,
            data: test,
            device,
            distributed: group,
            signal,
            onProgress: ({ images, total }) =>
              onProgress?.(
                withEta({
                  phase: 'evaluate',
                  epoch: at.epoch - 1,
                  epochs,
                  step: at.step,
                  steps: loop.steps,
                  stepInEpoch: loop.stepsPerEpoch,
                  stepsPerEpoch: loop.stepsPerEpoch,
                  loss: summary.loss ?? Number.NaN,
                  accuracy: summary.accuracy ?? Number.NaN,
                  lr: summary.lr,
                  imagesPerSecond: images / ((performance.now() - evaluatedStarted) / 1000),
                  evaluated: images,
                  evaluating: total,
                }),
              ),
          });
          if (result.aborted) return { record: {}, progress: {}, interrupted: true };
          testAccuracy = result.accuracy;
        }
        const best = loop.position.bestTestAccuracy;
        const improved = testAccuracy !== null && (best === null || testAccuracy > best);
        loop.position = { ...loop.position, testAccuracy, bestTestAccuracy: improved ? testAccuracy : best };
        if (improved && files !== undefined) await save(files.best);
        const record = {
          loss: summary.loss,
          trainAccuracy: summary.accuracy,
          testAccuracy,
          lr: summary.lr,
          seconds: (performance.now() - summary.started) / 1000,
        };
        return { record, progress: { testAccuracy: testAccuracy ?? undefined } };
      },
      onProgress: onProgress === undefined ? undefined : (p) => onProgress(withEta(p)),
    },
    { epoch: 0, batch: 0, step: 0, bestTestAccuracy: null, testAccuracy: null },
  );
  // Rank 0 alone writes.
  const save = (file: string) =>
    group.isMain
      ? saveRunState(file, CHECKPOINT_KIND, CHECKPOINT_VERSION, parts, loop.position, run)
      : Promise.resolve();
  const result = async (aborted: boolean): Promise<TrainResult> => ({
    model,
    epochs: loop.position.epoch,
    steps: loop.position.step,
    resumedFrom,
    testAccuracy: loop.position.testAccuracy ?? undefined,
    bestTestAccuracy: loop.position.bestTestAccuracy ?? undefined,
    aborted,
    seconds: previousSeconds + (performance.now() - started) / 1000,
    checkpoints:
      files === undefined ? undefined : { last: files.last, best: (await exists(files.best)) ? files.best : undefined },
    metrics: metricsFile !== undefined && (await exists(metricsFile)) ? metricsFile : undefined,
    stepLog: stepLog !== undefined && (await exists(stepLog.file)) ? stepLog.file : undefined,
  });

  model.train();
  try {
    if (files !== undefined) {
      const opened = await openRun<Position>({
        kind: 'train',
        dir: files.dir,
        resume: options.resume,
        force: options.force,
        group,
        checkpoint: files.last,
        state: { kind: CHECKPOINT_KIND, version: CHECKPOINT_VERSION, parts },
        run,
        logs: { metrics: metricsFile!, steps: stepLog?.file },
      });
      previousSeconds = opened.previousSeconds;
      if (opened.position !== undefined) {
        loop.position = opened.position;
        resumedFrom = { epoch: opened.position.epoch, step: opened.position.step };
        if (group.rank !== 0) generator = rankGenerator(seed, group, device, loop.position.step);
      }
    }
    await shareWeights(group, model);
    const { aborted } = await loop.run(resumedFrom !== undefined);
    return await result(aborted);
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    optimizer.dispose();
    policy?.dispose();
  }
}

/** An augmenter, or a frozen policy's asynchronous one. */
type AsyncAugmenter = (images: Tensor, options?: AugmenterOptions) => Tensor | Promise<Tensor>;

/** The augmentation function of the options, the policy loaded for it (to dispose), and its name for the run record. */
async function resolveAugmentation(
  options: TrainOptions,
  channels: number,
  device: Device,
): Promise<{ augment: AsyncAugmenter; policy?: LoadedPolicy; name: string }> {
  const { augmentation = 'none', policyFile, policyMarginal = false } = options;
  if (augmentation !== 'dna' && policyFile !== undefined)
    throw new TypeError("train: policyFile goes with augmentation: 'dna'");
  if (typeof policyMarginal !== 'boolean')
    throw new TypeError(`train: policyMarginal must be true or false, got ${describe(policyMarginal)}`);
  const isLoaded =
    typeof augmentation === 'object' &&
    augmentation !== null &&
    typeof (augmentation as LoadedPolicy).augment === 'function';
  if (policyMarginal && augmentation !== 'dna' && !isLoaded)
    throw new TypeError(
      "train: policyMarginal needs a policy (augmentation: 'dna' with policyFile, or a loaded policy)",
    );
  const marginal = (policy: LoadedPolicy) => (policyMarginal ? policy.marginal() : policy);
  if (augmentation === 'dna') {
    if (typeof policyFile !== 'string')
      throw new TypeError("train: augmentation 'dna' needs policyFile, a policy file written by search");
    const policy = await loadPolicy(policyFile, { device });
    if (policy.inChannels !== channels) {
      policy.dispose();
      throw new RangeError(
        `train: ${policyFile} is a policy for ${policy.inChannels}-channel images, the data has ${channels} channels`,
      );
    }
    const used = marginal(policy);
    return {
      augment: (images, o) => used.augmentAsync(images, o),
      policy,
      name: `dna${policyMarginal ? '-marginal' : ''}:${path.resolve(policyFile)}`,
    };
  }
  if (isLoaded) {
    const policy = marginal(augmentation as LoadedPolicy);
    return { augment: (images, o) => policy.augmentAsync(images, o), name: policyMarginal ? 'dna-marginal' : 'dna' };
  }
  return {
    augment: baselineAugmenter(augmentation as BaselineName | Augmenter),
    name: typeof augmentation === 'function' ? 'custom' : String(augmentation),
  };
}
