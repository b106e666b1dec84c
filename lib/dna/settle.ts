// Settling a searched policy network: its batch-norm running statistics recomputed from a pass
// over the search images, in the spirit of SWA's update_bn, and a check that the settled network
// gives, in evaluation mode, what the search saw.
//
// Why: the search runs the policy network in training mode, where batch norm uses each batch's
// own statistics; the frozen policy (train --policy, report, loadPolicy) runs it in evaluation
// mode, on the running averages. Those averages follow the batches with momentum 0.1 and start
// at mean 0, variance 1, so after a short search they are far from the search's statistics (after
// 8 steps 43% of their weight is still the initial values), and the frozen policy differs from
// the searched one (mean entropy of pi 2.04 nats against 4.58 in the search, issue 19).
// Recomputing them as the plain average over the search images makes evaluation mode match
// training mode to within the batch-to-batch spread of the statistics. Freezing the network in
// training mode instead would make each image's policy depend on the other images of its batch
// (and on the batch size), which an augmenter used anywhere cannot promise.
import type { PreprocessConfig } from '../augment/preprocess.js';
import { preprocess as preprocessImages } from '../augment/preprocess.js';
import { batches } from '../data/batches.js';
import type { ImageDataset } from '../data/dataset.js';
import { cat, stack, zeros } from '../engine/creation.js';
import { Generator } from '../engine/random.js';
import { Tensor, dispose, noGrad, tidy, type Device } from '../engine/tensor.js';
import { positiveInteger } from '../util/checks.js';
import { yieldToEventLoop } from '../util/event-loop.js';
import type { PolicyNetwork } from './policy-network.js';
import { PolicyStatistics } from './report.js';
import type { PolicyOutput } from './sampling.js';

/**
 * How far the settled policy may be from the search's training mode on the search images, for
 * `passed`: the mean over images of the total-variation distance between the two pi(x), the
 * mean absolute difference of p, m (and widths), and the difference of the mean entropy of pi
 * (nats). The last epoch of the search (where the network still moved) is compared too, on the
 * mean entropy and each op's apply mass, with looser bounds.
 */
export const SETTLE_TOLERANCE = Object.freeze({
  piDistance: 0.05,
  outputs: 0.02,
  entropy: 0.1,
  lastEpochEntropy: 0.25,
  lastEpochApplyMass: 0.05,
});

/** A summary of the policy's outputs over a set of images. */
export interface OutputSummary {
  /** Mean entropy of pi(x) in nats. */
  entropy: number;
  /** Expected applications per image, per op (by name). */
  applyMass: Record<string, number>;
}

/** What `settlePolicy` did and found; stored in the policy file. */
export interface SettleCheck {
  /** Images of the pass, batch size, and the preprocessing before the policy network. */
  images: number;
  batchSize: number;
  /** The search's training mode (batch statistics) and the settled evaluation mode, same weights, same images. */
  training: OutputSummary;
  frozen: OutputSummary;
  /** Mean over images of the total-variation distance between the two pi(x), and the largest. */
  piDistance: { mean: number; max: number };
  /** Mean absolute differences of p, m and (ranges) width. */
  outputDifference: { p: number; m: number; width?: number };
  /** The search's last epoch as its collapse monitor saw it, when given. */
  lastEpoch?: OutputSummary;
  tolerance: typeof SETTLE_TOLERANCE;
  /** Every comparison within its tolerance. */
  passed: boolean;
  /** The comparisons that were not, in words. */
  failures: string[];
}

export interface SettleOptions {
  /** Default 128 (the search's batches: the statistics of training mode depend on the batch size). */
  batchSize?: number;
  /** Flip and crop as the search gave them to the policy network (its Cutout comes later and is ignored). */
  preprocess?: PreprocessConfig;
  seed?: number;
  device?: Device;
  /** The search's last epoch (its monitor), to compare with. */
  lastEpoch?: OutputSummary;
}

/** A pass's batch size, seed, device and preprocessing (the options with their defaults) and the backbone it runs. */
function passSettings(policy: PolicyNetwork, options: SettleOptions, where: string) {
  return {
    preprocess: options.preprocess,
    batchSize: positiveInteger(options.batchSize ?? 128, 'batchSize', where),
    seed: options.seed ?? 0,
    device: options.device ?? policy.network.device,
    backbone: policy.network,
  };
}

/** The images of `data` in the search's shuffled batches, flipped and cropped by a generator seeded with `seed`. */
function* searchBatches(data: ImageDataset, batchSize: number, seed: number, device: Device, pre?: PreprocessConfig) {
  const generator = new Generator(seed, device);
  const before = pre === undefined ? undefined : { ...pre, cutout: 0 };
  for (const batch of batches(data, { batchSize, seed, epoch: 0, device })) {
    try {
      const images =
        before === undefined ? batch.images.clone() : preprocessImages(batch.images, before, { generator });
      yield { images, labels: batch.labels.clone() };
    } finally {
      dispose(batch);
    }
  }
}

/**
 * Runs `each` on every search batch of `data` with the backbone's batch norm at `momentum`,
 * disposing each batch and yielding to the event loop between them. Afterwards, however it ended,
 * the batch norm is back at momentum 0.1 and the network in evaluation mode.
 */
async function overSearchBatches(
  policy: PolicyNetwork,
  data: ImageDataset,
  settings: ReturnType<typeof passSettings>,
  momentum: number | null,
  each: (batch: { images: Tensor; labels: Tensor }) => void,
): Promise<void> {
  const { batchSize, seed, device, backbone, preprocess } = settings;
  try {
    backbone.setBatchNormMomentum(momentum);
    for (const batch of searchBatches(data, batchSize, seed, device, preprocess)) {
      try {
        each(batch);
      } finally {
        dispose(batch);
      }
      await yieldToEventLoop();
    }
  } finally {
    backbone.setBatchNormMomentum(0.1);
    policy.eval();
  }
}

function summary(statistics: PolicyStatistics): OutputSummary {
  const { overall } = statistics.report({ top: 1 });
  return {
    entropy: overall.meanEntropy,
    applyMass: Object.fromEntries(overall.ops.map((op) => [op.name, op.applyMass])),
  };
}

/**
 * Recomputes the batch-norm running statistics of `policy`'s backbone as the average over the
 * images of `data` (training mode, no gradients, the plain average of every batch's statistics),
 * then checks the settled network (`checkSettled`). Leaves the network in evaluation mode, its
 * batch norm back at momentum 0.1.
 */
export async function settlePolicy(
  policy: PolicyNetwork,
  data: ImageDataset,
  options: SettleOptions = {},
): Promise<SettleCheck> {
  const settings = passSettings(policy, options, 'settlePolicy');
  const { backbone } = settings;
  backbone.resetBatchNormStatistics();
  policy.train();
  await overSearchBatches(policy, data, settings, null, (batch) => {
    noGrad(() => tidy(() => void backbone.forward(batch.images)));
  });
  return checkSettled(policy, data, options);
}

/**
 * Compares `policy` in evaluation mode (its running statistics, as a frozen policy runs) with
 * training mode (each batch's own statistics, as the search ran) on the images of `data`, in the
 * search's batches; with `lastEpoch`, also against the search's last epoch. Changes no weight or
 * statistic; leaves the network in evaluation mode.
 */
export async function checkSettled(
  policy: PolicyNetwork,
  data: ImageDataset,
  options: SettleOptions = {},
): Promise<SettleCheck> {
  const settings = passSettings(policy, options, 'checkSettled');
  const { batchSize, device } = settings;
  const statistics = {
    training: new PolicyStatistics(policy.searchSpace, data.classes),
    frozen: new PolicyStatistics(policy.searchSpace, data.classes),
  };
  let images = 0;
  // Sums over the images, on the device until the end (one host read, not one per batch):
  // total-variation distance of pi, its largest value, and the absolute differences of p, m, width.
  let sums = zeros([5], { dtype: 'float64', device });
  // Momentum 0: training mode reads batch statistics and leaves the running ones alone.
  await overSearchBatches(policy, data, settings, 0, (batch) => {
    policy.train();
    const training = noGrad(() => policy.forward(batch.images));
    policy.eval();
    const frozen = noGrad(() => policy.forward(batch.images));
    try {
      statistics.training.add(training, batch.labels);
      statistics.frozen.add(frozen, batch.labels);
      const next = noGrad(() =>
        tidy(() => {
          const distance = piDistance(training, frozen).toDtype('float64');
          const meanAbs = (a: Tensor, b: Tensor) => a.sub(b).abs().mean([1, 2]).toDtype('float64').sum();
          const width =
            training.width !== undefined && frozen.width !== undefined
              ? meanAbs(training.width, frozen.width)
              : zeros([], { dtype: 'float64', device });
          const batchSums = stack([
            distance.sum(),
            zeros([], { dtype: 'float64', device }),
            meanAbs(training.p, frozen.p),
            meanAbs(training.m, frozen.m),
            width,
          ]);
          // The largest distance: a running maximum in slot 1.
          const added = sums.add(batchSums);
          return cat([
            added.narrow(0, 0, 1),
            sums.narrow(0, 1, 1).maximum(distance.max().reshape([1])),
            added.narrow(0, 2, 3),
          ]);
        }),
      );
      sums.dispose();
      sums = next;
      images += batch.labels.shape[0];
    } finally {
      dispose([training, frozen]);
    }
  });
  const [distanceSum, distanceMax, pSum, mSum, widthSum] = Array.from(sums.data() as Float64Array);
  sums.dispose();
  return judge({
    images,
    batchSize,
    training: summary(statistics.training),
    frozen: summary(statistics.frozen),
    piDistance: { mean: distanceSum / images, max: distanceMax },
    outputDifference: {
      p: pSum / images,
      m: mSum / images,
      ...(policy.magnitudes === 'range' ? { width: widthSum / images } : {}),
    },
    lastEpoch: options.lastEpoch,
  });
}

/** Total-variation distance between the pi(x) of two outputs, per image [B]. */
function piDistance(a: PolicyOutput, b: PolicyOutput): Tensor {
  return a.logits.softmax(1).sub(b.logits.softmax(1)).abs().sum(1).mul(0.5);
}

/** The check's verdict: each comparison against SETTLE_TOLERANCE. */
function judge(found: Omit<SettleCheck, 'tolerance' | 'passed' | 'failures'>): SettleCheck {
  const t = SETTLE_TOLERANCE;
  const failures: string[] = [];
  const over = (what: string, value: number, bound: number) => {
    if (!(Math.abs(value) <= bound)) failures.push(`${what} ${value.toFixed(4)} exceeds ${bound}`);
  };
  over('mean total-variation distance of pi(x)', found.piDistance.mean, t.piDistance);
  over('mean |p| difference', found.outputDifference.p, t.outputs);
  over('mean |m| difference', found.outputDifference.m, t.outputs);
  if (found.outputDifference.width !== undefined)
    over('mean |width| difference', found.outputDifference.width, t.outputs);
  over('entropy difference (nats)', found.frozen.entropy - found.training.entropy, t.entropy);
  if (found.lastEpoch !== undefined) {
    over(
      'entropy difference from the last epoch (nats)',
      found.frozen.entropy - found.lastEpoch.entropy,
      t.lastEpochEntropy,
    );
    for (const [op, mass] of Object.entries(found.frozen.applyMass)) {
      const last = found.lastEpoch.applyMass[op];
      if (last !== undefined)
        over(`${op} apply mass difference from the last epoch`, mass - last, t.lastEpochApplyMass);
    }
  }
  return { ...found, tolerance: t, passed: failures.length === 0, failures };
}
