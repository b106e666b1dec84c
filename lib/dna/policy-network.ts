// The policy network of DNA (SPEC 1.2): maps each image to logits over the sub-policies and to
// apply probabilities and magnitudes for their ops (sampling.ts turns those into the (c, b, m) of
// applySubPolicies). Two choices beside the paper's:
//   magnitudes  'point' (the paper: one magnitude per slot) or 'range' (SPEC 8: a centre and a
//               width per slot; each draw takes a magnitude uniformly in the range).
//   head        a WideResNet of its own (the paper), or a small MLP on another network's detached
//               features (the classifier's, during a search): class-aware from the first step, and
//               no second backbone to run and train.
import { releaseTables } from '../augment/kernel-tables.js';
import { defaultSearchSpace, validateSearchSpace, type SearchSpace } from '../augment/search-space.js';
import { Module, mlp, wideResNet, type WideResNetConfig } from '../engine/models.js';
import { Tensor, noGrad, tidy, type Device } from '../engine/tensor.js';
import { describe, optionsObject } from '../util/describe.js';
import { samplePolicy, type PolicyOutput, type PolicySample, type SampleOptions } from './sampling.js';

/** One magnitude per slot ('point', the paper) or a range, a centre and a width per slot ('range'). */
export type MagnitudeForm = 'point' | 'range';
export const MAGNITUDE_FORMS: readonly MagnitudeForm[] = Object.freeze(['point', 'range']);

/** Hidden units of the feature head's MLP unless set. */
export const FEATURE_HEAD_HIDDEN = 128;

export interface PolicyNetworkConfig {
  /** The backbone of a policy network of its own; `classes` is set from the search space. */
  backbone: Pick<WideResNetConfig, 'depth' | 'widen'> & Partial<Pick<WideResNetConfig, 'dropout' | 'mean' | 'std'>>;
  inChannels: number;
  searchSpace?: SearchSpace;
  seed?: number | bigint;
  /** Default 'point'. */
  magnitudes?: MagnitudeForm;
  /**
   * A head on the detached features of `network` (a WideResNet, e.g. the classifier being
   * searched with) instead of a backbone of its own; `backbone` is then ignored. The policy
   * shares `network` and disposes it with itself.
   */
  features?: { network: Module; hidden?: number };
}

/** Outputs per sub-policy: its logit, 2 apply probabilities, 2 magnitudes (centres) and, for ranges, 2 widths. */
function outputsPerSubPolicy(magnitudes: MagnitudeForm): number {
  return magnitudes === 'range' ? 7 : 5;
}

/**
 * Per image: S logits, 2S apply probabilities, 2S magnitudes (for ranges, their centres) and,
 * for ranges, 2S widths in (0, 1). The last layer starts at zero: uniform logits and p = m = 0.5
 * (SPEC 1.2), widths 0.5.
 */
export class PolicyNetwork {
  readonly searchSpace: SearchSpace;
  readonly magnitudes: MagnitudeForm;
  /** The backbone: the policy's own WideResNet, or the network whose features the head reads. */
  readonly network: Module;
  /** The MLP on `network`'s features (a feature head only). */
  readonly head?: Module;

  constructor(config: PolicyNetworkConfig) {
    if (config === null || typeof config !== 'object')
      throw new TypeError(
        `PolicyNetwork: config { backbone, inChannels, searchSpace } is required, got ${describe(config)}`,
      );
    this.searchSpace = config.searchSpace ?? defaultSearchSpace();
    validateSearchSpace(this.searchSpace);
    const magnitudes = config.magnitudes ?? 'point';
    if (!MAGNITUDE_FORMS.includes(magnitudes))
      throw new RangeError(`PolicyNetwork: magnitudes must be 'point' or 'range', got ${describe(magnitudes)}`);
    this.magnitudes = magnitudes;
    const outputs = outputsPerSubPolicy(magnitudes) * this.searchSpace.subPolicies.length;
    if (config.features !== undefined) {
      const { network, hidden = FEATURE_HEAD_HIDDEN } = optionsObject(config.features, 'PolicyNetwork (features)');
      if (!(network instanceof Module) || network.config.kind !== 'wideResNet')
        throw new TypeError(`PolicyNetwork: features.network must be a WideResNet Module, got ${describe(network)}`);
      this.network = network;
      const inputs = 64 * network.config.widen;
      this.head = mlp({ inputs, hidden, outputs, zeroHead: true, seed: config.seed }).to(network.device);
    } else {
      this.network = wideResNet({
        ...config.backbone,
        classes: outputs,
        inChannels: config.inChannels,
        zeroHead: true,
        seed: config.seed,
      });
    }
  }

  get subPolicyCount(): number {
    return this.searchSpace.subPolicies.length;
  }

  /** 'features' when the policy is a head on another network's features, 'network' when it has a backbone of its own. */
  get kind(): 'network' | 'features' {
    return this.head === undefined ? 'network' : 'features';
  }

  /** logits, p and m (and for ranges the widths) for each image of a [B, C, H, W] batch in [0, 1]. */
  forward(images: Tensor): PolicyOutput {
    const head = this.head;
    if (head === undefined) return tidy(() => this.outputsOf(this.network.forward(images)));
    // A feature head reads the backbone's features detached: the policy's loss does not reach the backbone.
    return tidy(() => this.outputsOf(head.forward(noGrad(() => this.network.features(images)))));
  }

  /**
   * The same with the backbone's forward pass on the addon's step thread (the event loop goes on
   * meanwhile; the network and the images are busy until the Promise settles). A feature head,
   * small, runs here.
   */
  async forwardAsync(images: Tensor): Promise<PolicyOutput> {
    const head = this.head;
    const out =
      head === undefined
        ? await this.network.forwardAsync(images)
        : await noGrad(() => this.network.featuresAsync(images));
    try {
      return tidy(() => this.outputsOf(head === undefined ? out : head.forward(out)));
    } finally {
      out.dispose();
    }
  }

  /** The raw output [B, 5S] (ranges: [B, 7S]) as logits [B, S], p, m (and widths) [B, S, 2]. */
  outputsOf(out: Tensor): PolicyOutput {
    const S = this.subPolicyCount;
    return tidy(() => {
      const B = out.shape[0];
      const slots = (index: number) =>
        out
          .narrow(1, index * S, 2 * S)
          .reshape([B, S, 2])
          .sigmoid();
      const outputs: PolicyOutput = { logits: out.narrow(1, 0, S), p: slots(1), m: slots(3) };
      if (this.magnitudes === 'range') outputs.width = slots(5);
      return outputs;
    });
  }

  /** A straight-through sample (c, b, m) for each image (SPEC 1.3). */
  sample(images: Tensor, options: SampleOptions = {}): PolicySample {
    optionsObject(options, 'PolicyNetwork.sample');
    return tidy(() => samplePolicy(this.forward(images), options));
  }

  /** What the policy's optimiser trains: the backbone's parameters, or only the head's. */
  parameters(): Tensor[] {
    return (this.head ?? this.network).parameters();
  }

  train(on = true): this {
    this.network.train(on);
    this.head?.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  to(device: Device): this {
    this.network.to(device);
    this.head?.to(device);
    return this;
  }

  /** Frees the network (a shared one too), the head and the kernel tables of its search space. */
  dispose(): void {
    this.network.dispose();
    this.head?.dispose();
    releaseTables(this.searchSpace);
  }
}
