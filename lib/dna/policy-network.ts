// The policy side of DNA (SPEC 1.2, 1.3): a network that maps each image to logits over the
// sub-policies and to apply probabilities and magnitudes for their ops, and the
// straight-through samplers that turn those into the (c, b, m) of applySubPolicies.
import { releaseTables } from '../augment/kernel-tables.js';
import { describe, optionsObject } from '../util/describe.js';
import { wideResNet, type Module, type WideResNetConfig } from '../engine/models.js';
import { defaultSearchSpace, validateSearchSpace, type SearchSpace } from '../augment/search-space.js';
import { Generator, rand } from '../engine/random.js';
import { Tensor, tidy, type Device } from '../engine/tensor.js';

// Uniform draws are kept away from 0 and 1 so that their logs stay finite.
const EPS = 1e-6;

function checkTemperature(value: number, name: string, where: string): void {
  if (!(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
    throw new RangeError(`${where}: ${name} must be a positive number, got ${describe(value)}`);
  }
}

/**
 * Gumbel-softmax straight-through over the last dimension: the value is one-hot at
 * argmax(logits + g) (g Gumbel noise), the gradient is that of softmax((logits + g) / tau).
 */
export function gumbelSoftmaxST(logits: Tensor, tau = 0.5, generator?: Generator): Tensor {
  checkTemperature(tau, 'tau', 'gumbelSoftmaxST');
  if (!(logits instanceof Tensor)) throw new TypeError(`gumbelSoftmaxST: logits must be a Tensor, got ${describe(logits)}`);
  const last = logits.ndim - 1;
  if (last < 0) throw new RangeError('gumbelSoftmaxST: logits must have at least one dimension');
  return tidy(() => {
    const u = rand(logits.shape, { generator, device: logits.device }).clamp(EPS, 1 - EPS);
    const gumbel = u.log().neg().log().neg();
    const soft = logits.add(gumbel).div(tau).softmax(last);
    const hard = soft.argmax(last).oneHot(logits.shape[last]).toDtype(soft.dtype);
    return hard.sub(soft.detach()).add(soft);
  });
}

/**
 * Relaxed Bernoulli straight-through: the value is 1{bhat > 0.5} with
 * bhat = sigmoid((logit(p) + logit(u)) / lambda), the gradient is that of bhat.
 */
export function relaxedBernoulliST(p: Tensor, lambda = 0.5, generator?: Generator): Tensor {
  checkTemperature(lambda, 'lambda', 'relaxedBernoulliST');
  if (!(p instanceof Tensor)) throw new TypeError(`relaxedBernoulliST: p must be a Tensor of probabilities, got ${describe(p)}`);
  return tidy(() => {
    const u = rand(p.shape, { generator, device: p.device }).clamp(EPS, 1 - EPS);
    const relaxed = p.logit(EPS).add(u.logit()).div(lambda).sigmoid();
    const hard = relaxed.gt(0.5).toDtype(relaxed.dtype);
    return hard.sub(relaxed.detach()).add(relaxed);
  });
}

export interface PolicyOutput {
  /** [B, S] sub-policy logits alpha. */
  logits: Tensor;
  /** [B, S, 2] apply probabilities. */
  p: Tensor;
  /** [B, S, 2] magnitudes in [0, 1]. */
  m: Tensor;
}

export interface PolicySample {
  /** [B, S] one-hot (straight-through). */
  c: Tensor;
  /** [B, S, 2] 0/1 bits (straight-through). */
  b: Tensor;
  /** [B, S, 2] magnitudes, as the network gives them. */
  m: Tensor;
}

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
    if (config === null || typeof config !== 'object') throw new TypeError(`PolicyNetwork: config { backbone, inChannels, searchSpace } is required, got ${describe(config)}`);
    this.searchSpace = config.searchSpace ?? defaultSearchSpace();
    validateSearchSpace(this.searchSpace);
    const S = this.searchSpace.subPolicies.length;
    this.network = wideResNet({ ...config.backbone, classes: 5 * S, inChannels: config.inChannels, zeroHead: true, seed: config.seed });
  }

  get subPolicyCount(): number {
    return this.searchSpace.subPolicies.length;
  }

  /** logits, p and m for each image of a [B, C, H, W] batch in [0, 1]. */
  forward(images: Tensor): PolicyOutput {
    const S = this.subPolicyCount;
    return tidy(() => {
      const out = this.network.forward(images);
      const B = out.shape[0];
      return {
        logits: out.narrow(1, 0, S),
        p: out.narrow(1, S, 2 * S).reshape([B, S, 2]).sigmoid(),
        m: out.narrow(1, 3 * S, 2 * S).reshape([B, S, 2]).sigmoid(),
      };
    });
  }

  /** A straight-through sample (c, b, m) for each image (SPEC 1.3). */
  sample(images: Tensor, options: { tau?: number; lambda?: number; generator?: Generator } = {}): PolicySample {
    const { tau = 0.5, lambda = 0.5, generator } = optionsObject(options, 'PolicyNetwork.sample');
    return tidy(() => {
      const { logits, p, m } = this.forward(images);
      return { c: gumbelSoftmaxST(logits, tau, generator), b: relaxedBernoulliST(p, lambda, generator), m };
    });
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
