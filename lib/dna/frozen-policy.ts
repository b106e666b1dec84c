// A searched policy, frozen, as an augmenter for any pipeline: each image gets a hard sample of
// its own (pi, p, m), at temperature 1, and the fused op applies it. Training with a policy
// (`augmentation: 'dna'`) and `loadPolicy` use it.
//
// Its marginal is the ablation of the conditioning: the same frozen network, but each image draws
// its sub-policy, bits and magnitudes from the outputs of another image of its batch (a random
// derangement), so every image gets a draw from the policy's average over the data, whatever its
// own content. Same ops, same average strength, no conditioning.
import { applySubPolicies } from '../augment/fused.js';
import type { SearchSpace } from '../augment/search-space.js';
import { floatImages } from '../engine/images.js';
import { arange } from '../engine/creation.js';
import { randperm, type Generator } from '../engine/random.js';
import { Tensor, dispose, noGrad, tidy } from '../engine/tensor.js';
import { describe, optionsObject } from '../util/describe.js';
import type { PolicyNetwork } from './policy-network.js';
import { mapOutputs, samplePolicy, type PolicyOutput } from './sampling.js';
import type { SettleCheck } from './settle.js';

/** Where a policy came from: the search that wrote its file. */
export interface PolicyProvenance {
  dataset: string;
  classes: string[];
  seed: number;
  steps: number;
  seconds: number;
  library: string;
}

/** A searched policy, frozen: each image gets a hard sample from its own (pi, p, m). */
export interface LoadedPolicy {
  readonly network: PolicyNetwork;
  readonly searchSpace: SearchSpace;
  /** The channels of the images it was searched on (1 or 3). */
  readonly inChannels: number;
  readonly provenance: PolicyProvenance;
  /** How the file's network was settled (batch-norm statistics recomputed) and how it compared; absent in older files. */
  readonly settled?: SettleCheck;
  /** 'marginal' when each image draws from another image's outputs (see `marginal()`). */
  readonly conditioning: 'image' | 'marginal';
  /**
   * Augments a batch of images (float32 [B, C, H, W] in [0, 1], or uint8 pixel values), giving
   * float32 in [0, 1]; the same generator state gives the same result.
   */
  augment(images: Tensor, options?: { generator?: Generator }): Tensor;
  /**
   * The same, with the policy network's forward pass on the addon's step thread (the event loop
   * goes on meanwhile); the same draws as `augment`.
   */
  augmentAsync(images: Tensor, options?: { generator?: Generator }): Promise<Tensor>;
  /**
   * The same network as its own marginal: each image draws from the outputs of another image of
   * its batch. It shares the network: dispose one of the two.
   */
  marginal(): LoadedPolicy;
  dispose(): void;
}

/**
 * The outputs rearranged so that no image keeps its own: for a random permutation `order`, image
 * order[k] gets the outputs of image order[(k + 1) mod B] (one cycle through the batch). A batch
 * of one keeps its outputs.
 */
export function shuffledOutputs(outputs: PolicyOutput, generator?: Generator): PolicyOutput {
  return tidy(() => {
    const B = outputs.logits.shape[0];
    if (B < 2) return { ...outputs };
    const device = outputs.logits.device;
    // All on the device (no host read): position[i] = k where order[k] = i, by the permutation
    // matrix; image i takes the outputs of order[(position[i] + 1) mod B].
    const order = randperm(B, { generator, device });
    const positions = arange(0, B, 1, { device, dtype: 'float32' });
    const position = order.oneHot(B).toDtype('float32').transpose(0, 1).matmul(positions).round().long();
    const index = order.indexSelect(0, position.add(1).remainder(B));
    return mapOutputs(outputs, (t) => t.indexSelect(0, index));
  });
}

/**
 * Float images [B, C, H, W] augmented by a hard sample of each image's `outputs` at temperature 1
 * over `searchSpace`, as a frozen policy augments them; with `marginal`, each image draws from
 * another image's outputs (`shuffledOutputs`). The same generator state gives the same result.
 */
export function applyPolicySample(
  images: Tensor,
  outputs: PolicyOutput,
  options: { searchSpace: SearchSpace; marginal: boolean; generator?: Generator },
): Tensor {
  const { searchSpace, marginal, generator } = options;
  const drawn = marginal ? shuffledOutputs(outputs, generator) : outputs;
  const { c, b, m } = samplePolicy(drawn, { tau: 1, lambda: 1, generator });
  return applySubPolicies(images, c, b, m, { searchSpace, generator });
}

/** `network` (in eval mode, on its device) as a frozen policy for images of `inChannels` channels. */
export function frozenPolicy(
  network: PolicyNetwork,
  info: {
    inChannels: number;
    provenance: PolicyProvenance;
    settled?: SettleCheck;
    conditioning?: 'image' | 'marginal';
  },
): LoadedPolicy {
  const { inChannels, provenance, settled, conditioning = 'image' } = info;
  const searchSpace = network.searchSpace;
  const checkImages = (images: unknown, where: string) => {
    if (!(images instanceof Tensor) || images.ndim !== 4 || images.shape[1] !== inChannels) {
      const got = images instanceof Tensor ? `shape [${images.shape.join(', ')}]` : describe(images);
      throw new RangeError(
        `${where}: images must be a Tensor [B, ${inChannels}, H, W] (float32 in [0, 1] or uint8), got ${got}`,
      );
    }
  };
  const applySample = (images: Tensor, own: PolicyOutput, generator: Generator | undefined) =>
    applyPolicySample(images, own, { searchSpace, marginal: conditioning === 'marginal', generator });
  return {
    network,
    searchSpace,
    inChannels,
    provenance,
    settled,
    conditioning,
    augment(images, augmentOptions = {}) {
      const { generator } = optionsObject(augmentOptions, 'policy.augment');
      checkImages(images, 'policy.augment');
      return noGrad(() =>
        tidy(() => {
          const input = floatImages(images);
          return applySample(input, network.forward(input), generator);
        }),
      );
    },
    async augmentAsync(images, augmentOptions = {}) {
      const { generator } = optionsObject(augmentOptions, 'policy.augmentAsync');
      checkImages(images, 'policy.augmentAsync');
      const input = floatImages(images);
      try {
        const outputs = await noGrad(() => network.forwardAsync(input));
        try {
          return noGrad(() => tidy(() => applySample(input, outputs, generator)));
        } finally {
          dispose(outputs);
        }
      } finally {
        if (input !== images) input.dispose();
      }
    },
    marginal() {
      return frozenPolicy(network, { ...info, conditioning: 'marginal' });
    },
    dispose() {
      network.dispose();
    },
  };
}
