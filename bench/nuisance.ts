// The class-dependent benchmark data of bench/objectives.ts and bench/policies.ts: Fashion-MNIST
// whose classes carry nuisances of their own (rotated tops, inverted trousers and shoes), and
// how a policy's report reads against them (the matching-op masses per group of classes).
import { applyOp } from '../lib/augment/fused.js';
import { defaultSearchSpace } from '../lib/augment/search-space.js';
import type { Augmenter } from '../lib/baselines/draws.js';
import { batches, type ImageDataset } from '../lib/data/index.js';
import { FASHION_MNIST_CLASSES } from '../lib/data/idx.js';
import { seededRandom } from '../lib/data/random.js';
import { applyPolicySample } from '../lib/dna/frozen-policy.js';
import type { PolicyReport } from '../lib/dna/report.js';
import type { PolicyOutput } from '../lib/dna/sampling.js';
import { full, tensor } from '../lib/engine/creation.js';
import { floatImages } from '../lib/engine/images.js';
import { dispose, tidy, type Tensor } from '../lib/engine/tensor.js';

/** Which classes carry which nuisance: Rotate at a uniform magnitude, or Invert with INVERT_PROBABILITY. */
export interface NuisanceLayout {
  /** Names the changed data (`<dataset>+<name>`). */
  name: string;
  rotated: number[];
  inverted: number[];
  /**
   * Where the training split shows the nuisances less than the test split does: its inverted
   * classes come inverted with this probability, and its rotated classes rotated within this
   * fraction of Rotate's range, centred (the test split keeps INVERT_PROBABILITY and the whole range).
   */
  train?: { invertProbability: number; rotateWidth: number };
}

/**
 * The class-dependent benchmark: rotated T-shirt/top, Pullover, Coat (tops, which Shirt, unaffected,
 * resembles); inverted Trouser, Sandal, Sneaker.
 */
export const NUISANCE: NuisanceLayout = { name: 'nuisance', rotated: [0, 2, 4], inverted: [1, 5, 7] };

/**
 * The same rotated tops, but inversion as a cue inside the groups of classes that Fashion-MNIST
 * confuses: Dress and Shirt come inverted beside the tops that do not, Sneaker beside Sandal and
 * Ankle boot. Invert on an inverted class keeps its data's distribution (half of its images come
 * inverted either way); on a class of the same group it blurs the cue that tells them apart. So
 * knowing the class should be worth more here than on NUISANCE, where Trouser needs no cue and
 * Sandal and Sneaker share theirs.
 */
export const CUE: NuisanceLayout = { name: 'cue', rotated: [0, 2, 4], inverted: [3, 6, 7] };

/**
 * CUE's classes, but the training images under-represent the nuisances of the test images: 10% of
 * the inverted classes' training images come inverted (half of their test images), and the rotated
 * classes' training images turn by up to 10 degrees (their test images by up to 30). The case
 * augmentation exists for, with the right augmentation different for each group of classes: Invert
 * on Dress, Shirt and Sneaker and wide rotations of the tops fill in what their test images show;
 * either op on another class teaches the classifier images that its test set never shows and
 * blurs the cue. A benchmark where knowing the class can be worth more than the seed spread (the
 * class oracle measures it); on NUISANCE and CUE it is worth under a point.
 */
export const SHIFT: NuisanceLayout = {
  name: 'shift',
  rotated: [0, 2, 4],
  inverted: [3, 6, 7],
  train: { invertProbability: 0.1, rotateWidth: 1 / 3 },
};

/** NUISANCE's groups, as bench/objectives.ts and bench/rises.ts read them. */
export const ROTATED = NUISANCE.rotated;
export const INVERTED = NUISANCE.inverted;
export const INVERT_PROBABILITY = 0.5;
/** Seeds the nuisance draws (train and test use their own streams); fixed, not --seed. */
export const NUISANCE_SEED = 20_240;

/**
 * The regime where augmentation matters (bench/policies.ts, bench/rises.ts): a stratified subset
 * of this many training images, drawn with this seed (the same for every run), trained this many
 * epochs.
 */
export const REGIME = Object.freeze({ images: 500, subsetSeed: 1, epochs: 40 });

/** The class names of Fashion-MNIST, by label. */
export const FASHION_NAMES = FASHION_MNIST_CLASSES;

/**
 * A copy of `ds`, Fashion-MNIST's split `split`, with the class-dependent nuisance of `layout`:
 * Rotate at a uniform magnitude for the rotated classes, Invert with probability
 * INVERT_PROBABILITY for the inverted ones (on the training split, `layout.train` where given).
 * Per image two uniform draws from the split's own seeded stream, in image order, whatever the
 * class (so every layout draws the same numbers for the same image).
 */
export function withNuisance(
  ds: ImageDataset,
  split: 'train' | 'test',
  layout: NuisanceLayout = NUISANCE,
): ImageDataset {
  const random = seededRandom(NUISANCE_SEED, split === 'train' ? 1 : 2);
  const { invertProbability, rotateWidth } = (split === 'train' ? layout.train : undefined) ?? {
    invertProbability: INVERT_PROBABILITY,
    rotateWidth: 1,
  };
  const size = ds.shape[0] * ds.shape[1] * ds.shape[2];
  const rotate: number[] = [];
  const rotateM: number[] = [];
  const invert: number[] = [];
  for (let i = 0; i < ds.count; i++) {
    const [u, v] = [random(), random()];
    if (layout.rotated.includes(ds.labels[i])) {
      rotate.push(i);
      // u itself at the whole range, so that NUISANCE and CUE keep their magnitudes to the last bit.
      rotateM.push(rotateWidth === 1 ? u : 0.5 + (u - 0.5) * rotateWidth);
    } else if (layout.inverted.includes(ds.labels[i]) && v < invertProbability) invert.push(i);
  }
  const images = ds.images.slice();
  const change = (indices: number[], op: string, magnitudes: (start: number, end: number) => number[]) => {
    const chunk = 2048;
    for (let start = 0; start < indices.length; start += chunk) {
      const part = indices.slice(start, start + chunk);
      const batch = new Uint8Array(part.length * size);
      part.forEach((i, k) => batch.set(images.subarray(i * size, (i + 1) * size), k * size));
      const out = tidy(() => {
        const x = tensor(batch, [part.length, ...ds.shape]);
        const m = tensor(new Float32Array(magnitudes(start, start + part.length)), [part.length]);
        return applyOp(x, op, m).mul(255).round().clamp(0, 255).toDtype('uint8').data() as Uint8Array;
      });
      part.forEach((i, k) => images.set(out.subarray(k * size, (k + 1) * size), i * size));
    }
  };
  change(rotate, 'Rotate', (start, end) => rotateM.slice(start, end));
  change(invert, 'Invert', (start, end) => new Array<number>(end - start).fill(0));
  return { ...ds, name: `${ds.name}+${layout.name}`, images };
}

/** The policy's behaviour on the test set, from policyReport. */
export interface Conditionality {
  /** Mean over the classes of each group of the op's applyMass (applications per image). */
  rotate: { rotated: number; inverted: number; unaffected: number };
  invert: { rotated: number; inverted: number; unaffected: number };
  /** Mean magnitude of Rotate over its slots (0.5 = no rotation), rotated and unaffected classes. */
  rotateM: { rotated: number | null; unaffected: number | null };
  /** All ops' applications per image, mean entropy of pi(x), entropy of the mean pi, top sub-policy. */
  totalApplyMass: number;
  meanEntropy: number;
  entropyOfMean: number;
  top: string;
  /** The op of most applyMass in each group. */
  topOp: { rotated: string; inverted: string; unaffected: string };
  /** Magnitude ranges: Rotate's mean width (of the whole range), rotated and unaffected classes. */
  rotateWidth?: { rotated: number | null; unaffected: number | null };
}

/** Mean absolute pixel change (the strength regulariser's measure) of one op at magnitude m over a dataset. */
export function meanChange(ds: ImageDataset, op: string, m: number): number {
  let sum = 0;
  for (const batch of batches(ds, { batchSize: 1000, shuffle: false })) {
    sum += tidy(() => applyOp(batch.images, op, m).sub(batch.images).abs().mean([1, 2, 3]).sum().item());
    dispose(batch);
  }
  return sum / ds.count;
}

/** How much single ops change the test images: what a strength target compares them with. */
export function opChanges(ds: ImageDataset): Record<string, number> {
  return {
    Invert: meanChange(ds, 'Invert', 0),
    'Rotate 30°': meanChange(ds, 'Rotate', 1),
    'Rotate 15°': meanChange(ds, 'Rotate', 0.75),
    'ShearX 0.3': meanChange(ds, 'ShearX', 1),
  };
}

export const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

/** The policy's behaviour on the test set, read against the groups of classes of `layout`. */
export function conditionality(report: PolicyReport, layout: NuisanceLayout = NUISANCE): Conditionality {
  const ops = report.searchSpace.ops;
  const rotate = ops.indexOf('Rotate');
  const invert = ops.indexOf('Invert');
  const { rotated, inverted } = layout;
  const unaffected = report.perClass.filter((g) => !rotated.includes(g.label!) && !inverted.includes(g.label!));
  const groups = {
    rotated: report.perClass.filter((g) => rotated.includes(g.label!)),
    inverted: report.perClass.filter((g) => inverted.includes(g.label!)),
    unaffected,
  };
  const mass = (op: number) => ({
    rotated: mean(groups.rotated.map((g) => g.ops[op].applyMass)),
    inverted: mean(groups.inverted.map((g) => g.ops[op].applyMass)),
    unaffected: mean(groups.unaffected.map((g) => g.ops[op].applyMass)),
  });
  const meanOf = (group: typeof unaffected, field: 'meanM' | 'meanWidth') => {
    const values = group.map((g) => g.ops[rotate][field]).filter((m): m is number => m !== null && m !== undefined);
    return values.length === 0 ? null : mean(values);
  };
  const topOp = (group: typeof unaffected) => {
    const masses = ops.map((_, o) => mean(group.map((g) => g.ops[o].applyMass)));
    return ops[masses.indexOf(Math.max(...masses))];
  };
  const overall = report.overall;
  return {
    rotate: mass(rotate),
    invert: mass(invert),
    rotateM: { rotated: meanOf(groups.rotated, 'meanM'), unaffected: meanOf(groups.unaffected, 'meanM') },
    totalApplyMass: overall.ops.reduce((sum, op) => sum + op.applyMass, 0),
    meanEntropy: overall.meanEntropy,
    entropyOfMean: overall.entropyOfMean,
    top: `${overall.top[0].name} (${overall.top[0].probability.toFixed(3)})`,
    topOp: { rotated: topOp(groups.rotated), inverted: topOp(groups.inverted), unaffected: topOp(groups.unaffected) },
    ...(report.magnitudes === 'range'
      ? {
          rotateWidth: {
            rotated: meanOf(groups.rotated, 'meanWidth'),
            unaffected: meanOf(groups.unaffected, 'meanWidth'),
          },
        }
      : {}),
  };
}

export function fmtRatio(affected: number, unaffected: number): string {
  return `${(affected / unaffected).toFixed(2)}x`;
}

export const pct = (value: number) => `${(100 * value).toFixed(2)}%`;
/** A difference of accuracies in points, signed; one that rounds to zero reads +0.00 (not -0.00). */
export const points = (delta: number) => {
  const text = (100 * delta).toFixed(2);
  return Number(text) < 0 ? text : `+${text.replace('-', '')}`;
};
export const f3 = (value: number) => value.toFixed(3);
/** Masses: 4 decimals, so that small ones and their ratios can be checked. */
export const f4 = (value: number) => value.toFixed(4);

/** The goal: matching-op mass at least GOAL_RATIO x on the affected classes, for both ops ... */
export const GOAL_RATIO = 2;
/** ... where the affected classes get at least this many applications per image (below it a ratio is noise on nothing). */
export const NEGLIGIBLE = 0.01;

/** A ratio cell: marked when the affected classes' mass is negligible. */
export function ratioCell(affected: number, unaffected: number): string {
  return `${fmtRatio(affected, unaffected)}${affected < NEGLIGIBLE ? ' (negligible)' : ''}`;
}

/** Rotate's mean magnitude and the mean angle it stands for. */
export function rotateCell(m: number | null): string {
  if (m === null) return '—';
  const angle = -30 + 60 * m;
  return `${f3(m)} (${angle >= 0 ? '+' : ''}${angle.toFixed(1)}°)`;
}

/**
 * A reference policy that is not searched, in the form of a policy network's outputs over the
 * default search space (105 sub-policies, each magnitude drawn uniformly over its op's whole
 * range), so that it samples, applies and has a marginal exactly as a frozen policy does.
 *
 * - `strength: null`: the prior (every sub-policy equally likely, each op applied with
 *   probability 1/2), the same for every image.
 * - `strength: s`: the class oracle. It reads each image's label and never applies a nuisance op
 *   to a class the data never shows with it: Rotate only on the rotated classes, Invert only on
 *   the inverted ones. There, the sub-policies with the class's own nuisance op share probability
 *   s and apply that op always, so that it is applied to a fraction s of the class's images;
 *   everything else is as in the prior.
 *
 * `form` changes the prior itself: `apply`, the probability of applying each op of a drawn
 * sub-policy (default 1/2), and `width`, the width of every magnitude range, centred in the
 * op's range (default 1, the whole range).
 *
 * The outputs for images of labels `labels` (int64 [B]; for the prior, any [B] tensor); the
 * oracle reads the groups of classes of `layout`.
 */
export function referenceOutputs(
  strength: number | null,
  labels: Tensor,
  form: { apply?: number; width?: number } = {},
  layout: NuisanceLayout = NUISANCE,
): PolicyOutput {
  const { apply = 0.5, width = 1 } = form;
  if (strength !== null && !(strength > 0 && strength < 1)) throw new RangeError('strength must be in (0, 1)');
  const space = defaultSearchSpace();
  const S = space.subPolicies.length;
  const rotate = space.ops.findIndex((op) => op.name === 'Rotate');
  const invert = space.ops.findIndex((op) => op.name === 'Invert');
  // Per class: the sub-policy probabilities and each slot's apply probability.
  const classes = FASHION_NAMES.length;
  const probabilities: number[] = [];
  const applies: number[] = [];
  for (let label = 0; label < classes; label++) {
    const own =
      strength === null ? -1 : layout.rotated.includes(label) ? rotate : layout.inverted.includes(label) ? invert : -1;
    const forbidden = strength === null ? [] : [rotate, invert].filter((op) => op !== own);
    const allowed = space.subPolicies.map(([a, b]) => !forbidden.includes(a) && !forbidden.includes(b));
    const withOwn = space.subPolicies.map(([a, b]) => a === own || b === own);
    const count = (where: (k: number) => boolean) => allowed.filter((ok, k) => ok && where(k)).length;
    const ownCount = count((k) => withOwn[k]);
    const otherCount = count((k) => !withOwn[k]);
    space.subPolicies.forEach(([a, b], k) => {
      const share = own < 0 ? 1 / count(() => true) : withOwn[k] ? strength! / ownCount : (1 - strength!) / otherCount;
      probabilities.push(allowed[k] ? share : 0);
      applies.push(a === own ? 1 : apply, b === own ? 1 : apply);
    });
  }
  return tidy(() => {
    const B = labels.shape[0];
    const rows = strength === null ? full([B], 0, { dtype: 'int64' }) : labels.long();
    const logits = tensor(new Float32Array(probabilities.map((q) => (q > 0 ? Math.log(q) : -1e4))), [classes, S]);
    return {
      logits: logits.indexSelect(0, rows),
      p: tensor(new Float32Array(applies), [classes, S, 2]).indexSelect(0, rows),
      m: full([B, S, 2], 0.5),
      width: full([B, S, 2], width),
    };
  });
}

/**
 * `referenceOutputs` as an augmentation for `train` (which passes the labels), sampled and applied
 * by the frozen policy's own `applyPolicySample`. `marginal`: each image draws from another
 * image's outputs, so that the class oracle's marginal applies the same ops at the same rates,
 * whatever the class.
 */
export function referencePolicy(
  strength: number | null,
  marginal: boolean,
  form: { apply?: number; width?: number } = {},
  layout: NuisanceLayout = NUISANCE,
): Augmenter {
  const space = defaultSearchSpace();
  return (images, options = {}) => {
    const { generator, labels } = options;
    if (strength !== null && labels === undefined)
      throw new TypeError('referencePolicy: the class oracle needs the batch labels (train passes them)');
    return tidy(() => {
      const input = floatImages(images);
      const own = referenceOutputs(strength, labels ?? full([input.shape[0]], 0, { dtype: 'int64' }), form, layout);
      return applyPolicySample(input, own, { searchSpace: space, marginal, generator });
    });
  };
}
