// The score function of objective 'invariance' (dna/objectives.ts): each image's cost (the true
// rise of its loss when augmented, with the tolerance and the change terms) and the REINFORCE
// surrogate that carries it to the discrete choices, against a leave-one-out baseline: the other
// images of the class, or the image's other draws where it draws several sub-policies.
import { where } from '../engine/creation.js';
import { noGrad, tidy, type Tensor } from '../engine/tensor.js';
import type { Regularisers } from './objectives.js';
import type { PolicyOutput } from './sampling.js';

/**
 * The strength target's and the change reward's cost of each image [B] for its pixel change
 * `change` [B]: strengthWeight * (change - strength)^2 - changeReward * change; undefined when
 * neither is set.
 */
export function changeCost(regularisers: Regularisers, change: Tensor): Tensor | undefined {
  const { strength, strengthWeight = 10, changeReward } = regularisers;
  const terms: Tensor[] = [];
  if (strength !== undefined) terms.push(change.sub(strength).square().mul(strengthWeight));
  if (changeReward !== undefined) terms.push(change.mul(-changeReward));
  return terms.length === 0 ? undefined : terms.reduce((sum, term) => sum.add(term));
}

/**
 * The cost of each image [B] under objective 'invariance': the rise of its loss when augmented
 * (less the tolerance, never below 0; or its distance from the rise target, a shortfall weighted
 * by shortfallWeight), plus the strength target's and the change reward's cost of its pixel change.
 */
export function invarianceCost(augmented: Tensor, clean: Tensor, change: Tensor, regularisers: Regularisers): Tensor {
  return tidy(() => {
    const rise = augmented.sub(clean);
    const { tolerance, riseTarget, shortfallWeight = 1 } = regularisers;
    let cost = rise;
    if (tolerance !== undefined) cost = rise.sub(tolerance).relu();
    else if (riseTarget !== undefined) {
      // Past the target at full weight, short of it at shortfallWeight: |rise - target| at weight 1.
      const gap = rise.sub(riseTarget);
      cost = gap.relu().add(gap.neg().relu().mul(shortfallWeight));
    }
    const extra = changeCost(regularisers, change);
    return extra === undefined ? cost : cost.add(extra);
  });
}

/**
 * Each image's baseline for the score function [B]: the mean cost of the other images of its
 * class in the batch (leave-one-out, so that it does not depend on the image's own draw), or of
 * the whole batch where the image is alone in its class. A baseline that depends on anything but
 * the image's own draw leaves the gradient's expectation as it is; one per class removes what
 * separates classes (some tolerate little of anything) from the noise each choice is judged by.
 */
export function classBaseline(cost: Tensor, labels: Tensor): Tensor {
  return noGrad(() =>
    tidy(() => {
      const same = labels.unsqueeze(1).eq(labels.unsqueeze(0)).toDtype('float32');
      const others = same.sum(1).sub(1);
      const classMean = same.matmul(cost.unsqueeze(1)).squeeze(1).sub(cost).div(others.clamp(1, Infinity));
      const batchMean = cost
        .sum()
        .sub(cost)
        .div(Math.max(cost.shape[0] - 1, 1));
      return where(others.gt(0), classMean, batchMean);
    }),
  );
}

/**
 * Each draw's baseline [K * B] when every image drew K >= 2 sub-policies (draw-major: row
 * k * B + i is image i's k-th draw): the mean cost of the image's other K - 1 draws (leave-one-
 * out). It depends on the image but not on the draw it scores, so the gradient's expectation is
 * unchanged, and what separates one image from another (how much it tolerates of anything) is gone
 * from the noise.
 */
export function drawBaseline(cost: Tensor, draws: number): Tensor {
  if (!Number.isInteger(draws) || draws < 2 || cost.shape[0] % draws !== 0)
    throw new RangeError(`drawBaseline: ${cost.shape[0]} costs are not draws >= 2 (${draws}) of each image`);
  return noGrad(() =>
    tidy(() => {
      const perImage = cost.reshape([draws, cost.shape[0] / draws]);
      const others = perImage
        .sum(0)
        .unsqueeze(0)
        .sub(perImage)
        .div(draws - 1);
      return others.reshape([cost.shape[0]]);
    }),
  );
}

/**
 * The score-function surrogate of objective 'invariance': mean over the draws of the normalised
 * advantage (cost against `baseline`, classBaseline or drawBaseline) times log pi(s|x) +
 * log P(bits of s | x), for the sampled s and bits.
 */
export function scoreFunctionLoss(outputs: PolicyOutput, c: Tensor, b: Tensor, cost: Tensor, baseline: Tensor): Tensor {
  const advantage = noGrad(() =>
    tidy(() => {
      const centred = cost.sub(baseline);
      return centred.div(centred.std().add(1e-6));
    }),
  );
  const chosen = c.detach();
  const bits = b.detach();
  const logPi = outputs.logits.logSoftmax(1).mul(chosen).sum(1);
  const p = outputs.p.clamp(1e-6, 1 - 1e-6);
  const logBits = bits
    .mul(p.log())
    .add(bits.neg().add(1).mul(p.neg().add(1).log()))
    .mul(chosen.unsqueeze(2))
    .sum([1, 2]);
  return logPi.add(logBits).mul(advantage).mean();
}
