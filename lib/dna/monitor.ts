// The collapse monitor of a search: how the policy behaved over an epoch of search images, and a
// warning in words when it has collapsed (it applies almost nothing, or one sub-policy to
// everything).
import type { PolicyStatistics } from './report.js';

/**
 * The collapse monitor: how the policy behaved over an epoch of search images. `warning` says
 * in words when it has collapsed (it applies almost nothing, or one sub-policy to everything).
 */
export interface SearchMonitor {
  /** Mean entropy of pi(x) in nats, its maximum log S, and the entropy of the mean pi. */
  entropy: number;
  maxEntropy: number;
  entropyOfMean: number;
  /** Expected applications per image of each op (by name), and their sum. */
  applyMass: Record<string, number>;
  totalApplyMass: number;
  /** Mean absolute pixel change the sampled sub-policies made. */
  strength: number;
  /** Magnitude ranges: the mean width entropy (mean log width) and the adaptive weight at the epoch's end. */
  widthEntropy?: number;
  widthWeight?: number;
  warning?: string;
}

/** Below this many op applications per image, the policy has stopped augmenting. */
const COLLAPSED_APPLY_MASS = 0.1;
/** Below this share of the maximum entropy log S, the mean pi sits on nearly one sub-policy for every image. */
const COLLAPSED_ENTROPY = 0.1;

/** The collapse monitor's summary of an epoch's statistics. */
export function watch(statistics: PolicyStatistics, strength: number): SearchMonitor {
  const { overall, searchSpace } = statistics.report({ top: 1 });
  const applyMass = Object.fromEntries(overall.ops.map((op) => [op.name, op.applyMass]));
  const totalApplyMass = overall.ops.reduce((sum, op) => sum + op.applyMass, 0);
  const monitor: SearchMonitor = {
    entropy: overall.meanEntropy,
    maxEntropy: searchSpace.maxEntropy,
    entropyOfMean: overall.entropyOfMean,
    applyMass,
    totalApplyMass,
    strength,
  };
  if (totalApplyMass < COLLAPSED_APPLY_MASS) {
    monitor.warning =
      `the policy has collapsed: it applies ${totalApplyMass.toFixed(3)} ops per image (almost no ` +
      `augmentation); try an entropy floor or a strength target`;
  } else if (overall.entropyOfMean < COLLAPSED_ENTROPY * searchSpace.maxEntropy) {
    monitor.warning =
      `the policy has collapsed onto one sub-policy (${overall.top[0]?.name}, entropy of the mean ` +
      `pi ${overall.entropyOfMean.toFixed(2)} nats of ${searchSpace.maxEntropy.toFixed(2)}); try an entropy floor`;
  }
  return monitor;
}
