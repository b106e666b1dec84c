// The TrivialAugment-like prior a search can be held to (regulariser `prior`): every sub-policy
// equally likely, each op of a pair applied with probability 1/2, each magnitude uniform over
// its op's whole range. Its weight times the policy's divergence from the prior joins the
// policy's loss, so the policy stays as broad as TrivialAugment except where the objective
// consistently says otherwise for an image: what it removes is what looking at the image is for.
//
// Per image, with pi its sub-policy distribution over S sub-policies:
//   KL(pi || uniform)                     = log S - H(pi)
// + sum_s pi_s mean_l KL(Bern(p_sl) || Bern(1/2))
// + sum_s pi_s mean over magnitude slots of -log |[c - w/2, c + w/2] ∩ [0, 1]|  (ranges only)
// The last term is the divergence of a uniform draw in the range from a uniform draw in [0, 1],
// counting only the part of the range inside [0, 1] (a draw outside is clamped to the bound).
// pi weighs the bit and range terms detached: the prior on pi is its own term.
import type { SearchSpace } from '../augment/search-space.js';
import { noGrad, tidy, type Tensor } from '../engine/tensor.js';
import { magnitudeSlotMean } from './ranges.js';
import type { PolicyOutput } from './sampling.js';

/** Keeps logs finite where a probability or a width reaches its bound. */
const EPS = 1e-6;

/** The divergence of each image's policy from the prior [B], in nats (differentiable in the outputs). */
export function priorDivergence(outputs: PolicyOutput, searchSpace: SearchSpace): Tensor {
  return tidy(() => {
    const { logits, p, m, width } = outputs;
    const logPi = logits.logSoftmax(1);
    const subPolicies = logits.shape[1];
    const choice = logPi.exp().mul(logPi).sum(1).add(Math.log(subPolicies));
    const pi = noGrad(() => logits.detach().softmax(1));
    const q = p.clamp(EPS, 1 - EPS);
    const one = q.neg().add(1);
    // KL(Bern(q) || Bern(1/2)) = q log q + (1 - q) log(1 - q) + log 2
    const bitsKl = q.mul(q.log()).add(one.mul(one.log())).add(Math.log(2));
    let total = choice.add(bitsKl.mean(2).mul(pi).sum(1));
    if (width !== undefined) {
      const half = width.mul(0.5);
      const inside = m.add(half).clamp(0, 1).sub(m.sub(half).clamp(0, 1)).clamp(EPS, 1);
      total = total.add(magnitudeSlotMean(inside.log().neg(), logits, searchSpace));
    }
    return total;
  });
}
