// Sampling a policy (SPEC 1.3): the straight-through samplers, and `samplePolicy`, which turns a
// policy network's outputs into the (c, b, m) of applySubPolicies. The search, the network's
// own sample() and a frozen policy all sample through it.
import { rand } from '../engine/random.js';
import type { Generator } from '../engine/random.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, optionsObject } from '../util/describe.js';

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
  if (!(logits instanceof Tensor))
    throw new TypeError(`gumbelSoftmaxST: logits must be a Tensor, got ${describe(logits)}`);
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
  if (!(p instanceof Tensor))
    throw new TypeError(`relaxedBernoulliST: p must be a Tensor of probabilities, got ${describe(p)}`);
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
  /** [B, S, 2] magnitudes in [0, 1]; for ranges, their centres. */
  m: Tensor;
  /** [B, S, 2] widths of the magnitude ranges in (0, 1) (magnitudes 'range' only). */
  width?: Tensor;
}

/** The outputs with `f` applied to each of their tensors (the widths too, where there are any). */
export function mapOutputs(outputs: PolicyOutput, f: (t: Tensor) => Tensor): PolicyOutput {
  const mapped: PolicyOutput = { logits: f(outputs.logits), p: f(outputs.p), m: f(outputs.m) };
  if (outputs.width !== undefined) mapped.width = f(outputs.width);
  return mapped;
}

export interface PolicySample {
  /** [B, S] one-hot (straight-through). */
  c: Tensor;
  /** [B, S, 2] 0/1 bits (straight-through). */
  b: Tensor;
  /** [B, S, 2] magnitudes: as the network gives them, or for ranges drawn in them (reparameterised). */
  m: Tensor;
}

export interface SampleOptions {
  /** Gumbel-softmax temperature of the sub-policy choice. Default 0.5. */
  tau?: number;
  /** Relaxed-Bernoulli temperature of the apply bits. Default 0.5. */
  lambda?: number;
  generator?: Generator;
}

/**
 * A magnitude per slot drawn in each range: m = clamp(centre + width * (u - 0.5), 0, 1), u uniform
 * in [0, 1) from `generator`. Reparameterised: the gradient reaches the centre (1) and the width
 * (u - 0.5) wherever the clamp does not bind.
 */
export function drawMagnitudes(centre: Tensor, width: Tensor, generator?: Generator): Tensor {
  if (!(centre instanceof Tensor) || !(width instanceof Tensor) || centre.shape.join() !== width.shape.join()) {
    const shape = (t: unknown) => (t instanceof Tensor ? `[${t.shape.join(', ')}]` : describe(t));
    throw new RangeError(
      `drawMagnitudes: centre and width must be Tensors of one shape, got ${shape(centre)} and ${shape(width)}`,
    );
  }
  return tidy(() => {
    const u = rand(centre.shape, { generator, device: centre.device });
    return centre.add(width.mul(u.sub(0.5))).clamp(0, 1);
  });
}

/**
 * A straight-through sample of each image's policy: c = gumbelSoftmaxST(logits, tau), then
 * b = relaxedBernoulliST(p, lambda), then for ranges m = drawMagnitudes(m, width), all from
 * `generator` in that order; point magnitudes as given.
 */
export function samplePolicy(outputs: PolicyOutput, options: SampleOptions = {}): PolicySample {
  const { tau = 0.5, lambda = 0.5, generator } = optionsObject(options, 'samplePolicy');
  return tidy(() => ({
    c: gumbelSoftmaxST(outputs.logits, tau, generator),
    b: relaxedBernoulliST(outputs.p, lambda, generator),
    m: outputs.width === undefined ? outputs.m : drawMagnitudes(outputs.m, outputs.width, generator),
  }));
}
