// Magnitude ranges (SPEC 8): the InstaAug-style bounded entropy of the widths. A range of width
// w has the entropy log w (a uniform draw in it); the search rewards it with a weight that adapts
// so that the policy's mean log width stays between a floor and a ceiling: the weight grows while
// the entropy is under the floor and shrinks while it is over the ceiling. Without it the
// training loss drives every width to zero (augmenting less always lowers the loss).
import type { SearchSpace } from '../augment/search-space.js';
import { tensor, where } from '../engine/creation.js';
import { Tensor, noGrad, tidy } from '../engine/tensor.js';
import type { PolicyOutput } from './sampling.js';

/** Bounds of the widths and how the weight adapts (the bounds as widths; the entropy compares their logs). */
export interface WidthEntropy {
  /** The geometric mean width the weight pushes the ranges above (of the whole magnitude range, 1). */
  floor: number;
  /** The geometric mean width above which the weight lets the ranges fall back. */
  ceiling: number;
  /** The weight at the start of a search. */
  weight: number;
  /** The factor by which the weight grows (under the floor) or shrinks (over the ceiling) per step. */
  rate: number;
}

/** The bounds a search with magnitude ranges uses unless told otherwise. */
export const DEFAULT_WIDTH_ENTROPY: Readonly<WidthEntropy> = Object.freeze({
  floor: 0.3,
  ceiling: 0.9,
  weight: 0.01,
  rate: 1.05,
});

/** Weights are kept within these, so that a long run under a bound cannot overflow or vanish. */
const WEIGHT_LIMITS = [1e-6, 1e3] as const;

/** 1 for the slots whose op has a magnitude, 0 for the others: [S, 2] on `device`. */
function magnitudeSlots(searchSpace: SearchSpace, device: string): Tensor {
  const mask = searchSpace.subPolicies.flatMap((pair) => pair.map((o) => (searchSpace.ops[o].range === null ? 0 : 1)));
  return tensor(new Float32Array(mask), [searchSpace.subPolicies.length, 2], { device });
}

/**
 * The entropy of each image's ranges [B]: the mean log width over the slots whose op has a
 * magnitude, each sub-policy weighted by pi_s(x) (detached: the entropy term moves the widths,
 * not the choice). Differentiable in the widths.
 */
export function widthEntropy(outputs: PolicyOutput, searchSpace: SearchSpace): Tensor {
  const { logits, width } = outputs;
  if (width === undefined) throw new TypeError('widthEntropy: the policy has point magnitudes (no widths)');
  return tidy(() => magnitudeSlotMean(width.clamp(1e-6, 1).log(), logits, searchSpace));
}

/**
 * Each image's mean of `values` [B, S, 2] over the slots whose op has a magnitude, each
 * sub-policy weighted by pi_s(x) = softmax(logits) (detached) [B]: what a range's term of the
 * image is worth under its policy. Differentiable in `values`.
 */
export function magnitudeSlotMean(values: Tensor, logits: Tensor, searchSpace: SearchSpace): Tensor {
  return tidy(() => {
    const mask = magnitudeSlots(searchSpace, values.device);
    const pi = noGrad(() => logits.detach().softmax(1));
    const weights = pi.unsqueeze(2).mul(mask);
    const total = weights.sum([1, 2]).clamp(1e-12, Number.POSITIVE_INFINITY);
    return values.mul(weights).sum([1, 2]).div(total);
  });
}

/**
 * The weight after a step whose mean width entropy was `entropy` (scalars on the device, so that
 * the search reads neither every step): times `rate` under the floor, divided by it over the
 * ceiling, kept within [1e-6, 1e3].
 */
export function adaptWidthWeight(weight: Tensor, entropy: Tensor, bounds: WidthEntropy): Tensor {
  return noGrad(() =>
    tidy(() => {
      const h = entropy.detach().toDtype(weight.dtype);
      const under = h.lt(Math.log(bounds.floor));
      const over = h.gt(Math.log(bounds.ceiling));
      const grown = where(under, weight.mul(bounds.rate), where(over, weight.div(bounds.rate), weight));
      return grown.clamp(WEIGHT_LIMITS[0], WEIGHT_LIMITS[1]);
    }),
  );
}
