// A searched policy, frozen, as an augmenter for any pipeline: each image gets a hard sample of
// its own (pi, p, m), at temperature 1, and the fused op applies it. Training with a policy
// (`augmentation: 'dna'`) and `loadPolicy` use it.
import { applySubPolicies } from '../augment/fused.js';
import type { SearchSpace } from '../augment/search-space.js';
import { floatImages } from '../engine/images.js';
import type { Generator } from '../engine/random.js';
import { Tensor, dispose, noGrad, tidy } from '../engine/tensor.js';
import { describe, optionsObject } from '../util/describe.js';
import type { PolicyNetwork } from './policy-network.js';
import { samplePolicy, type PolicyOutput } from './sampling.js';

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
  dispose(): void;
}

/** `network` (in eval mode, on its device) as a frozen policy for images of `inChannels` channels. */
export function frozenPolicy(
  network: PolicyNetwork,
  info: { inChannels: number; provenance: PolicyProvenance },
): LoadedPolicy {
  const { inChannels, provenance } = info;
  const searchSpace = network.searchSpace;
  const checkImages = (images: unknown, where: string) => {
    if (!(images instanceof Tensor) || images.ndim !== 4 || images.shape[1] !== inChannels) {
      const got = images instanceof Tensor ? `shape [${images.shape.join(', ')}]` : describe(images);
      throw new RangeError(
        `${where}: images must be a Tensor [B, ${inChannels}, H, W] (float32 in [0, 1] or uint8), got ${got}`,
      );
    }
  };
  // A hard sample of each image's (pi, p, m) at temperature 1, applied.
  const applySample = (images: Tensor, outputs: PolicyOutput, generator: Generator | undefined) => {
    const { c, b, m } = samplePolicy(outputs, { tau: 1, lambda: 1, generator });
    return applySubPolicies(images, c, b, m, { searchSpace, generator });
  };
  return {
    network,
    searchSpace,
    inChannels,
    provenance,
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
    dispose() {
      network.dispose();
    },
  };
}
