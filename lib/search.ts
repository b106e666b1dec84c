// The DNA policy search (SPEC 1.5, objective `joint`): a policy network and a classifier trained
// together, end to end through the fused sub-policy op, on a stratified subset. The result is a
// policy file that `loadPolicy` turns into an augmenter.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { applyCutout, applySubPolicies, preprocess as preprocessImages, preprocessConfig, PREPROCESS_PRESETS, type PreprocessConfig } from './augment.js';
import { positiveInteger, yieldToEventLoop } from './train.js';
import { backend } from './backend.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { batchCount, batches, stratifiedSubset, type ImageDataset } from './data/index.js';
import { crossEntropy, wideResNet, type WideResNetConfig } from './models.js';
import { adam, cosineLr, sgd } from './optim.js';
import { PolicyNetwork, gumbelSoftmaxST, relaxedBernoulliST, type PolicyNetworkConfig } from './policy.js';
import { requireCustomOps } from './custom-ops.js';
import { validateSearchSpace, type SearchSpace } from './search-space.js';
import { Generator, dispose, noGrad, tidy, type Device, type Tensor } from './tensor.js';

export const POLICY_FILE_KIND = 'dna-augment/policy';
const POLICY_FILE_VERSION = 1;

type Backbone = PolicyNetworkConfig['backbone'];

export interface SearchOptions {
  /** The data to search on; `subset` takes a stratified part of it. */
  train: ImageDataset;
  /** Images of the stratified search subset (default: all of `train`). */
  subset?: number;
  classifier: Backbone;
  policy: Backbone;
  epochs: number;
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
  /** Baseline preprocessing: flip and crop before the sub-policy, Cutout after. Default 'none'. */
  preprocess?: keyof typeof PREPROCESS_PRESETS | PreprocessConfig;
  seed?: number;
  device?: Device;
  /** Where the policy file goes (policy.dna); without it nothing is written. */
  outDir?: string;
  signal?: AbortSignal;
  onProgress?: (progress: SearchProgress) => void;
}

export interface SearchProgress {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
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
}

/** Searches a policy with the paper's `joint` objective. */
export async function search(options: SearchOptions): Promise<SearchResult> {
  const started = performance.now();
  const { signal, onProgress } = options;
  const epochs = positiveInteger(options.epochs, 'epochs', 'search');
  const batchSize = positiveInteger(options.batchSize ?? 128, 'batchSize', 'search');
  const seed = options.seed ?? 0;
  const device = options.device ?? 'cpu';
  const baseline = preprocessConfig(options.preprocess, 'search: unknown preprocess preset');
  const beforePolicy: PreprocessConfig = { ...baseline, cutout: 0 };
  const data = options.subset === undefined ? options.train : stratifiedSubset(options.train, options.subset, seed);
  const [channels] = data.shape;
  const classes = data.classes.length;

  if (options.searchSpace !== undefined) {
    validateSearchSpace(options.searchSpace);
    requireCustomOps(options.searchSpace, 'search');
  }
  const policy = new PolicyNetwork({ backbone: options.policy, inChannels: channels, searchSpace: options.searchSpace, seed: seed + 1 }).to(device);
  const classifier = wideResNet({ ...options.classifier, classes, inChannels: channels, seed } as WideResNetConfig).to(device);
  const classifierLr = options.classifierLr ?? 0.1;
  const classifierOptimizer = sgd(classifier.parameters(), { lr: classifierLr, momentum: 0.9, nesterov: true, weightDecay: options.weightDecay ?? 2e-4 });
  const policyOptimizer = adam(policy.parameters(), { lr: options.policyLr ?? 0.005, betas: [0.5, 0.999], weightDecay: 0 });
  const generator = new Generator(seed, device);
  const stepsPerEpoch = batchCount(data.count, batchSize);
  const steps = epochs * stepsPerEpoch;
  let step = 0;
  let aborted = false;
  try {
    outer: for (let epoch = 0; epoch < epochs; epoch++) {
      for (const batch of batches(data, { batchSize, seed, epoch, device })) {
        if (signal?.aborted) {
          dispose(batch);
          aborted = true;
          break outer;
        }
        classifierOptimizer.lr = cosineLr(step, steps, classifierLr);
        let loss: number;
        let right: number;
        try {
          [loss, right] = tidy(() => {
            const images = preprocessImages(batch.images, beforePolicy, { generator });
            const { c, b, m } = policy.sample(images, { tau: options.tau, lambda: options.lambda, generator });
            let augmented = applySubPolicies(images, c, b, m, { searchSpace: policy.searchSpace, generator });
            augmented = applyCutout(augmented, baseline.cutout, { generator });
            const logits = classifier.forward(augmented);
            const objective = crossEntropy(logits, batch.labels);
            classifierOptimizer.zeroGrad();
            policyOptimizer.zeroGrad();
            objective.backward();
            const value = objective.item();
            if (!Number.isFinite(value)) throw new Error(`search: the loss became ${value} at step ${step + 1}`);
            classifierOptimizer.step();
            policyOptimizer.step();
            return [value, noGrad(() => logits.argmax(1).eq(batch.labels).sum().item())];
          });
        } finally {
          dispose(batch);
        }
        step += 1;
        onProgress?.({ epoch, epochs, step, steps, loss, accuracy: right / batch.indices.length });
        await yieldToEventLoop();
      }
    }
    const seconds = (performance.now() - started) / 1000;
    let policyFile: string | undefined;
    if (options.outDir !== undefined) {
      await mkdir(options.outDir, { recursive: true });
      policyFile = path.join(path.resolve(options.outDir), 'policy.dna');
      await savePolicy(policyFile, policy, { dataset: data.name, classes: data.classes, seed, steps, seconds });
    }
    return {
      policy,
      steps: step,
      aborted,
      seconds,
      gpuHours: device.startsWith('cuda') && backend().cuda ? seconds / 3600 : undefined,
      policyFile,
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

interface PolicyFileMeta {
  version: number;
  searchSpace: SearchSpace;
  backbone: Backbone;
  inChannels: number;
  provenance: { dataset: string; classes: string[]; seed: number; steps: number; seconds: number; library: string };
}

/** Writes a policy file: the policy network's weights and everything needed to use them. */
export async function savePolicy(file: string, policy: PolicyNetwork, provenance: Omit<PolicyFileMeta['provenance'], 'library'>): Promise<void> {
  const config = policy.network.config;
  const state = policy.network.stateDict();
  try {
    const meta: PolicyFileMeta = {
      version: POLICY_FILE_VERSION,
      searchSpace: policy.searchSpace,
      backbone: { depth: config.depth, widen: config.widen, dropout: config.dropout, mean: config.mean, std: config.std },
      inChannels: config.inChannels,
      provenance: { ...provenance, library: 'dna-augment' },
    };
    await saveCheckpoint(file, { kind: POLICY_FILE_KIND, meta, tensors: state });
  } finally {
    dispose(state);
  }
}

/** A searched policy, frozen: each image gets a hard sample from its own (pi, p, m). */
export interface LoadedPolicy {
  readonly network: PolicyNetwork;
  readonly searchSpace: SearchSpace;
  readonly provenance: PolicyFileMeta['provenance'];
  /** Augments a batch of [0, 1] images (float32 [B, C, H, W]); the same generator state gives the same result. */
  augment(images: Tensor, options?: { generator?: Generator }): Tensor;
  dispose(): void;
}

/** Loads a policy file written by `search` as an augmenter usable in any pipeline. */
export async function loadPolicy(file: string, options: { device?: Device } = {}): Promise<LoadedPolicy> {
  const checkpoint = await loadCheckpoint(file, { kind: POLICY_FILE_KIND });
  try {
    const meta = checkpoint.meta as PolicyFileMeta;
    if (meta?.version !== POLICY_FILE_VERSION) throw new Error(`${file}: policy file version ${String(meta?.version)}, this version reads ${POLICY_FILE_VERSION}`);
    validateSearchSpace(meta.searchSpace);
    requireCustomOps(meta.searchSpace, file);
    const network = new PolicyNetwork({ backbone: meta.backbone, inChannels: meta.inChannels, searchSpace: meta.searchSpace });
    try {
      network.network.loadStateDict(checkpoint.tensors);
    } catch (error) {
      network.dispose();
      throw new Error(`${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
    network.to(options.device ?? 'cpu').eval();
    return {
      network,
      searchSpace: meta.searchSpace,
      provenance: meta.provenance,
      augment(images, augmentOptions = {}) {
        const { generator } = augmentOptions;
        return noGrad(() =>
          tidy(() => {
            const { logits, p, m } = network.forward(images);
            const c = gumbelSoftmaxST(logits, 1, generator);
            const b = relaxedBernoulliST(p, 1, generator);
            return applySubPolicies(images, c, b, m, { searchSpace: meta.searchSpace, generator });
          }),
        );
      },
      dispose() {
        network.dispose();
      },
    };
  } finally {
    dispose(checkpoint.tensors);
  }
}
