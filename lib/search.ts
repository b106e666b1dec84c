// The DNA policy search (SPEC 1.5, objective `joint`): a policy network and a classifier trained
// together, end to end through the fused sub-policy op, on a stratified subset. The result is a
// policy file (lib/policy-file.ts) that `loadPolicy` turns into an augmenter.
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

import { applyCutout, applySubPolicies, preprocess as preprocessImages, preprocessConfig, PREPROCESS_PRESETS, type PreprocessConfig } from './augment.js';
import { backend } from './backend.js';
import { checkpointPaths } from './checkpoint.js';
import { batchCount, batches, stratifiedSubset, type ImageDataset } from './data/index.js';
import { crossEntropy, wideResNet, type WideResNetConfig } from './models.js';
import { adam, cosineLr, sgd } from './optim.js';
import { datasetPreset, type PresetName } from './presets.js';
import { PolicyNetwork, type PolicyNetworkConfig } from './policy.js';
import { savePolicy } from './policy-file.js';
import { TrainingDivergedError, fileExists, loadRunState, positiveInteger, saveRunState, yieldToEventLoop, type RunParts } from './run-state.js';
import type { SearchSpace } from './search-space.js';
import { Generator, dispose, noGrad, tidy, type Device } from './tensor.js';

export const SEARCH_CHECKPOINT_KIND = 'dna-augment/search';
const SEARCH_CHECKPOINT_VERSION = 1;

type Backbone = PolicyNetworkConfig['backbone'];

export interface SearchOptions {
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
  /** Baseline preprocessing: flip and crop before the sub-policy, Cutout after. Default: the preset's, else 'none'. */
  preprocess?: keyof typeof PREPROCESS_PRESETS | PreprocessConfig;
  seed?: number;
  device?: Device;
  /**
   * Where the run goes: policy.dna at the end, search.last.ckpt after every epoch (and when
   * aborted), search.jsonl one line per epoch. Without it nothing is written.
   */
  outDir?: string;
  /** Continue from outDir/search.last.ckpt when it exists. */
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: SearchProgress) => void;
}

export interface SearchProgress {
  phase: 'step' | 'epoch';
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  /** The classifier's loss on the augmented batch (of the step, or the epoch's mean). */
  loss: number;
  /** The classifier's accuracy on the augmented batch (of the step, or the epoch's mean). */
  accuracy: number;
}

export interface SearchResult {
  policy: PolicyNetwork;
  steps: number;
  aborted: boolean;
  seconds: number;
  /** GPU-hours when the search ran on a GPU. */
  gpuHours?: number;
  policyFile?: string;
  checkpoint?: string;
  metrics?: string;
}

interface SearchPosition {
  epoch: number;
  batch: number;
  step: number;
}

/** The search's settings: the preset's, overridden by the explicit options. */
function resolveSearch(options: SearchOptions) {
  const preset = datasetPreset(options.preset, 'search')?.search;
  const classifier = options.classifier ?? preset?.classifier;
  const policy = options.policy ?? preset?.policy;
  if (classifier === undefined || policy === undefined) throw new TypeError('search: give the classifier and policy backbones (e.g. WRN_40_2), or a preset');
  const epochs = positiveInteger(options.epochs ?? preset?.epochs, 'epochs', 'search');
  const batchSize = positiveInteger(options.batchSize ?? preset?.batchSize ?? 128, 'batchSize', 'search');
  const subset = options.subset ?? preset?.subset;
  if (subset !== undefined) positiveInteger(subset, 'subset', 'search');
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`search: seed must be a non-negative integer, got ${seed}`);
  return {
    classifier,
    policy,
    epochs,
    batchSize,
    subset,
    seed,
    classifierLr: options.classifierLr ?? preset?.classifierLr ?? 0.1,
    weightDecay: options.weightDecay ?? 2e-4,
    policyLr: options.policyLr ?? 0.005,
    tau: options.tau ?? 0.5,
    lambda: options.lambda ?? 0.5,
    preprocess: preprocessConfig(options.preprocess ?? preset?.preprocess, 'search: unknown preprocess preset'),
  };
}

/**
 * Searches a policy with the paper's `joint` objective: the policy network samples a sub-policy
 * per image, the fused op applies it, and both networks minimise the classifier's loss on the
 * augmented batch (policy by Adam, classifier by SGD + cosine). With `outDir` it checkpoints
 * every epoch and `resume` continues with the same result as an uninterrupted search.
 */
export async function search(options: SearchOptions): Promise<SearchResult> {
  const started = performance.now();
  const { signal, onProgress } = options;
  const settings = resolveSearch(options);
  const { epochs, batchSize, seed } = settings;
  const device = options.device ?? 'cpu';
  const baseline = settings.preprocess;
  const beforePolicy: PreprocessConfig = { ...baseline, cutout: 0 };
  const data = settings.subset === undefined || settings.subset >= options.train.count ? options.train : stratifiedSubset(options.train, settings.subset, seed);
  const [channels] = data.shape;
  const classes = data.classes.length;

  const policy = new PolicyNetwork({ backbone: settings.policy, inChannels: channels, searchSpace: options.searchSpace, seed: seed + 1 }).to(device);
  const classifier = wideResNet({ ...settings.classifier, classes, inChannels: channels, seed } as WideResNetConfig).to(device);
  const classifierOptimizer = sgd(classifier, { lr: settings.classifierLr, momentum: 0.9, nesterov: true, weightDecay: settings.weightDecay });
  const policyOptimizer = adam(policy, { lr: settings.policyLr, betas: [0.5, 0.999], weightDecay: 0 });
  const generator = new Generator(seed, device);
  const parts: RunParts = { modules: { classifier, policy: policy.network }, optimizers: { classifierOptimizer, policyOptimizer }, generator };
  const stepsPerEpoch = batchCount(data.count, batchSize);
  const steps = epochs * stepsPerEpoch;
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
  };

  const outDir = options.outDir === undefined ? undefined : path.resolve(options.outDir);
  const checkpoint = outDir === undefined ? undefined : checkpointPaths(outDir, 'search').last;
  const metrics = outDir === undefined ? undefined : path.join(outDir, 'search.jsonl');
  let position: SearchPosition = { epoch: 0, batch: 0, step: 0 };
  const save = () => (checkpoint === undefined ? Promise.resolve() : saveRunState(checkpoint, SEARCH_CHECKPOINT_KIND, SEARCH_CHECKPOINT_VERSION, parts, position, run));
  let aborted = false;
  try {
    if (outDir !== undefined) await mkdir(outDir, { recursive: true });
    if (options.resume && checkpoint !== undefined && (await fileExists(checkpoint))) {
      const restored = await loadRunState<SearchPosition>(checkpoint, SEARCH_CHECKPOINT_KIND, SEARCH_CHECKPOINT_VERSION, parts);
      if (JSON.stringify(restored.run) !== JSON.stringify(run)) {
        throw new Error(`${checkpoint} was written by a search with other settings (${JSON.stringify(restored.run)}); resume it with the same data and options, or use another outDir`);
      }
      position = restored.position;
    }
    policy.train();
    classifier.train();
    outer: while (position.epoch < epochs) {
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      for (const batch of batches(data, { batchSize, seed, epoch: position.epoch, startBatch: position.batch, device })) {
        if (signal?.aborted) {
          dispose(batch);
          aborted = true;
          await save();
          break outer;
        }
        classifierOptimizer.lr = cosineLr(position.step, steps, settings.classifierLr);
        let loss: number;
        let right: number;
        try {
          [loss, right] = tidy(() => {
            const images = preprocessImages(batch.images, beforePolicy, { generator });
            const { c, b, m } = policy.sample(images, { tau: settings.tau, lambda: settings.lambda, generator });
            let augmented = applySubPolicies(images, c, b, m, { searchSpace: policy.searchSpace, generator });
            augmented = applyCutout(augmented, baseline.cutout, { generator });
            const logits = classifier.forward(augmented);
            const objective = crossEntropy(logits, batch.labels);
            classifierOptimizer.zeroGrad();
            policyOptimizer.zeroGrad();
            objective.backward();
            const value = objective.item();
            if (Number.isFinite(value)) {
              classifierOptimizer.step();
              policyOptimizer.step();
            }
            return [value, noGrad(() => logits.argmax(1).eq(batch.labels).sum().item())];
          });
        } finally {
          dispose(batch);
        }
        if (!Number.isFinite(loss)) {
          const kept = checkpoint !== undefined && (await fileExists(checkpoint)) ? `; the last good checkpoint is ${checkpoint}` : '';
          throw new TrainingDivergedError(`search: the loss became ${loss} at epoch ${position.epoch + 1}, step ${position.step + 1}${kept}`);
        }
        const size = batch.indices.length;
        lossSum += loss * size;
        correct += right;
        seen += size;
        position = { ...position, batch: position.batch + 1, step: position.step + 1 };
        onProgress?.({ phase: 'step', epoch: position.epoch, epochs, step: position.step, steps, loss, accuracy: right / size });
        await yieldToEventLoop();
      }
      position = { epoch: position.epoch + 1, batch: 0, step: position.step };
      const line = { epoch: position.epoch, step: position.step, loss: seen === 0 ? null : lossSum / seen, accuracy: seen === 0 ? null : correct / seen };
      if (metrics !== undefined) await appendFile(metrics, JSON.stringify(line) + '\n');
      await save();
      onProgress?.({ phase: 'epoch', epoch: position.epoch, epochs, step: position.step, steps, loss: line.loss ?? Number.NaN, accuracy: line.accuracy ?? Number.NaN });
    }
    const seconds = (performance.now() - started) / 1000;
    let policyFile: string | undefined;
    if (outDir !== undefined && !aborted) {
      policyFile = path.join(outDir, 'policy.dna');
      await savePolicy(policyFile, policy, { dataset: data.name, classes: data.classes, seed, steps: position.step, seconds: Math.round(seconds * 100) / 100 });
    }
    return {
      policy,
      steps: position.step,
      aborted,
      seconds,
      gpuHours: device.startsWith('cuda') && backend().cuda ? seconds / 3600 : undefined,
      policyFile,
      checkpoint,
      metrics,
    };
  } catch (error) {
    policy.dispose();
    throw error;
  } finally {
    classifier.dispose();
    classifierOptimizer.dispose();
    policyOptimizer.dispose();
  }
}
