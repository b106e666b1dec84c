// The policy network of DNA (SPEC 1.2): a WideResNet that maps each image to logits over the
// sub-policies and to apply probabilities and magnitudes for their ops (sampling.ts turns those
// into the (c, b, m) of applySubPolicies).
import { releaseTables } from '../augment/kernel-tables.js';
import { defaultSearchSpace, validateSearchSpace, type SearchSpace } from '../augment/search-space.js';
import { wideResNet, type Module, type WideResNetConfig } from '../engine/models.js';
import { Tensor, tidy, type Device } from '../engine/tensor.js';
import { describe, optionsObject } from '../util/describe.js';
import { samplePolicy, type PolicyOutput, type PolicySample, type SampleOptions } from './sampling.js';

export interface PolicyNetworkConfig {
  /** The backbone; `classes` is set from the search space. */
  backbone: Pick<WideResNetConfig, 'depth' | 'widen'> & Partial<Pick<WideResNetConfig, 'dropout' | 'mean' | 'std'>>;
  inChannels: number;
  searchSpace?: SearchSpace;
  seed?: number | bigint;
}

/**
 * A WideResNet whose head gives, per image, S logits, 2S apply probabilities and 2S
 * magnitudes. The head starts at zero: uniform logits and p = m = 0.5 (SPEC 1.2).
 */
export class PolicyNetwork {
  readonly searchSpace: SearchSpace;
  readonly network: Module;

  constructor(config: PolicyNetworkConfig) {
    if (config === null || typeof config !== 'object')
      throw new TypeError(
        `PolicyNetwork: config { backbone, inChannels, searchSpace } is required, got ${describe(config)}`,
      );
    this.searchSpace = config.searchSpace ?? defaultSearchSpace();
    validateSearchSpace(this.searchSpace);
    const S = this.searchSpace.subPolicies.length;
    this.network = wideResNet({
      ...config.backbone,
      classes: 5 * S,
      inChannels: config.inChannels,
      zeroHead: true,
      seed: config.seed,
    });
  }

  get subPolicyCount(): number {
    return this.searchSpace.subPolicies.length;
  }

  /** logits, p and m for each image of a [B, C, H, W] batch in [0, 1]. */
  forward(images: Tensor): PolicyOutput {
    return tidy(() => this.outputsOf(this.network.forward(images)));
  }

  /**
   * The same with the network's forward pass on the addon's step thread (the event loop goes on
   * meanwhile; the network and the images are busy until the Promise settles).
   */
  async forwardAsync(images: Tensor): Promise<PolicyOutput> {
    const out = await this.network.forwardAsync(images);
    try {
      return tidy(() => this.outputsOf(out));
    } finally {
      out.dispose();
    }
  }

  /** The head's raw output [B, 5S] as logits [B, S], p and m [B, S, 2]. */
  outputsOf(out: Tensor): PolicyOutput {
    const S = this.subPolicyCount;
    return tidy(() => {
      const B = out.shape[0];
      return {
        logits: out.narrow(1, 0, S),
        p: out
          .narrow(1, S, 2 * S)
          .reshape([B, S, 2])
          .sigmoid(),
        m: out
          .narrow(1, 3 * S, 2 * S)
          .reshape([B, S, 2])
          .sigmoid(),
      };
    });
  }

  /** A straight-through sample (c, b, m) for each image (SPEC 1.3). */
  sample(images: Tensor, options: SampleOptions = {}): PolicySample {
    optionsObject(options, 'PolicyNetwork.sample');
    return tidy(() => samplePolicy(this.forward(images), options));
  }

  parameters(): Tensor[] {
    return this.network.parameters();
  }

  train(on = true): this {
    this.network.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  to(device: Device): this {
    this.network.to(device);
    return this;
  }

  /** Frees the network and the kernel tables of its search space. */
  dispose(): void {
    this.network.dispose();
    releaseTables(this.searchSpace);
  }
}
