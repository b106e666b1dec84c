// AutoAugment (Cubuk et al., CVPR 2019) with its published policies, on the shared draw engine.
import { cachedTables } from '../augment/kernel-tables.js';
import { tensor } from '../engine/creation.js';
import { randint } from '../engine/random.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { integerInRange } from '../util/checks.js';
import { describe } from '../util/describe.js';
import {
  binValue,
  checkOpValue,
  drawAndApply,
  drawFromTables,
  drawGeometry,
  kindOf,
  packTables,
  type AugmentationDraws,
  type AugmenterOptions,
  type BaselineOpName,
  type DrawOptions,
  type MagnitudeSpace,
} from './draws.js';

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}

/** One op of an AutoAugment sub-policy: (op, probability, magnitude level 0..9 or null). */
export type AutoAugmentOp = readonly [op: BaselineOpName, probability: number, level: number | null];
export type AutoAugmentSubPolicy = readonly [AutoAugmentOp, AutoAugmentOp];

/**
 * The published AutoAugment policies: Cubuk et al., "AutoAugment: Learning Augmentation
 * Strategies from Data" (CVPR 2019, arXiv:1805.09501), appendix tables; transcribed as in
 * torchvision 0.14 `AutoAugmentPolicy` (torchvision/transforms/autoaugment.py, `_get_policies`).
 * 25 sub-policies each; levels are bins 0..9 of the magnitude tables (AUTOAUGMENT_LEVELS).
 */
// One sub-policy per line, as the paper's tables print them.
// prettier-ignore
export const AUTOAUGMENT_POLICIES: Readonly<Record<'cifar10' | 'svhn' | 'imagenet', readonly AutoAugmentSubPolicy[]>> = deepFreeze({
  cifar10: [
    [['Invert', 0.1, null], ['Contrast', 0.2, 6]],
    [['Rotate', 0.7, 2], ['TranslateX', 0.3, 9]],
    [['Sharpness', 0.8, 1], ['Sharpness', 0.9, 3]],
    [['ShearY', 0.5, 8], ['TranslateY', 0.7, 9]],
    [['AutoContrast', 0.5, null], ['Equalize', 0.9, null]],
    [['ShearY', 0.2, 7], ['Posterize', 0.3, 7]],
    [['Color', 0.4, 3], ['Brightness', 0.6, 7]],
    [['Sharpness', 0.3, 9], ['Brightness', 0.7, 9]],
    [['Equalize', 0.6, null], ['Equalize', 0.5, null]],
    [['Contrast', 0.6, 7], ['Sharpness', 0.6, 5]],
    [['Color', 0.7, 7], ['TranslateX', 0.5, 8]],
    [['Equalize', 0.3, null], ['AutoContrast', 0.4, null]],
    [['TranslateY', 0.4, 3], ['Sharpness', 0.2, 6]],
    [['Brightness', 0.9, 6], ['Color', 0.2, 8]],
    [['Solarize', 0.5, 2], ['Invert', 0.0, null]],
    [['Equalize', 0.2, null], ['AutoContrast', 0.6, null]],
    [['Equalize', 0.2, null], ['Equalize', 0.6, null]],
    [['Color', 0.9, 9], ['Equalize', 0.6, null]],
    [['AutoContrast', 0.8, null], ['Solarize', 0.2, 8]],
    [['Brightness', 0.1, 3], ['Color', 0.7, 0]],
    [['Solarize', 0.4, 5], ['AutoContrast', 0.9, null]],
    [['TranslateY', 0.9, 9], ['TranslateY', 0.7, 9]],
    [['AutoContrast', 0.9, null], ['Solarize', 0.8, 3]],
    [['Equalize', 0.8, null], ['Invert', 0.1, null]],
    [['TranslateY', 0.7, 9], ['AutoContrast', 0.9, null]],
  ],
  svhn: [
    [['ShearX', 0.9, 4], ['Invert', 0.2, null]],
    [['ShearY', 0.9, 8], ['Invert', 0.7, null]],
    [['Equalize', 0.6, null], ['Solarize', 0.6, 6]],
    [['Invert', 0.9, null], ['Equalize', 0.6, null]],
    [['Equalize', 0.6, null], ['Rotate', 0.9, 3]],
    [['ShearX', 0.9, 4], ['AutoContrast', 0.8, null]],
    [['ShearY', 0.9, 8], ['Invert', 0.4, null]],
    [['ShearY', 0.9, 5], ['Solarize', 0.2, 6]],
    [['Invert', 0.9, null], ['AutoContrast', 0.8, null]],
    [['Equalize', 0.6, null], ['Rotate', 0.9, 3]],
    [['ShearX', 0.9, 4], ['Solarize', 0.3, 3]],
    [['ShearY', 0.8, 8], ['Invert', 0.7, null]],
    [['Equalize', 0.9, null], ['TranslateY', 0.6, 6]],
    [['Invert', 0.9, null], ['Equalize', 0.6, null]],
    [['Contrast', 0.3, 3], ['Rotate', 0.8, 4]],
    [['Invert', 0.8, null], ['TranslateY', 0.0, 2]],
    [['ShearY', 0.7, 6], ['Solarize', 0.4, 8]],
    [['Invert', 0.6, null], ['Rotate', 0.8, 4]],
    [['ShearY', 0.3, 7], ['TranslateX', 0.9, 3]],
    [['ShearX', 0.1, 6], ['Invert', 0.6, null]],
    [['Solarize', 0.7, 2], ['TranslateY', 0.6, 7]],
    [['ShearY', 0.8, 4], ['Invert', 0.8, null]],
    [['ShearX', 0.7, 9], ['TranslateY', 0.8, 3]],
    [['ShearY', 0.8, 5], ['AutoContrast', 0.7, null]],
    [['ShearX', 0.7, 2], ['Invert', 0.1, null]],
  ],
  imagenet: [
    [['Posterize', 0.4, 8], ['Rotate', 0.6, 9]],
    [['Solarize', 0.6, 5], ['AutoContrast', 0.6, null]],
    [['Equalize', 0.8, null], ['Equalize', 0.6, null]],
    [['Posterize', 0.6, 7], ['Posterize', 0.6, 6]],
    [['Equalize', 0.4, null], ['Solarize', 0.2, 4]],
    [['Equalize', 0.4, null], ['Rotate', 0.8, 8]],
    [['Solarize', 0.6, 3], ['Equalize', 0.6, null]],
    [['Posterize', 0.8, 5], ['Equalize', 1.0, null]],
    [['Rotate', 0.2, 3], ['Solarize', 0.6, 8]],
    [['Equalize', 0.6, null], ['Posterize', 0.4, 6]],
    [['Rotate', 0.8, 8], ['Color', 0.4, 0]],
    [['Rotate', 0.4, 9], ['Equalize', 0.6, null]],
    [['Equalize', 0.0, null], ['Equalize', 0.8, null]],
    [['Invert', 0.6, null], ['Equalize', 1.0, null]],
    [['Color', 0.6, 4], ['Contrast', 1.0, 8]],
    [['Rotate', 0.8, 8], ['Color', 1.0, 2]],
    [['Color', 0.8, 8], ['Solarize', 0.8, 7]],
    [['Sharpness', 0.4, 7], ['Invert', 0.6, null]],
    [['ShearX', 0.6, 5], ['Equalize', 1.0, null]],
    [['Color', 0.4, 0], ['Equalize', 0.6, null]],
    [['Equalize', 0.4, null], ['Solarize', 0.2, 4]],
    [['Solarize', 0.6, 5], ['AutoContrast', 0.6, null]],
    [['Invert', 0.6, null], ['Equalize', 1.0, null]],
    [['Color', 0.6, 4], ['Contrast', 1.0, 8]],
    [['Equalize', 0.8, null], ['Equalize', 0.6, null]],
  ],
} as Record<'cifar10' | 'svhn' | 'imagenet', AutoAugmentSubPolicy[]>);

export type AutoAugmentPolicyName = keyof typeof AUTOAUGMENT_POLICIES;

/** AutoAugment's magnitude bins (10: levels 0..9) and ranges (torchvision `AutoAugment._augmentation_space`). */
const AUTOAUGMENT_BINS = 10;
export const AUTOAUGMENT_SPACE: MagnitudeSpace = {
  shear: 0.3,
  translate: (size) => (150 / 331) * size,
  rotate: 30,
  enhance: 0.9,
  posterizeDrop: 4,
};

/**
 * The kernel value of an AutoAugment op at `level` (0..9) for an image of height x width,
 * before the sign: { base, magnitude, signed } with value = base +- magnitude.
 *   ShearX/Y: +- level/9 * 0.3            TranslateX/Y: +- int(level/9 * 150/331 * side) px
 *   Rotate: +- level/9 * 30 degrees        Color/Contrast/Brightness/Sharpness: 1 +- level/9 * 0.9
 *   Posterize: 8 - round(level/9 * 4) bits Solarize: threshold 255 * (1 - level/9)
 *   AutoContrast/Equalize/Invert: no magnitude.
 */
export function autoAugmentValue(
  op: BaselineOpName,
  level: number | null,
  height = 32,
  width = 32,
): { base: number; magnitude: number; signed: boolean } {
  checkOpValue(op, height, width, 'autoAugmentValue');
  const needsLevel = !['Identity', 'AutoContrast', 'Equalize', 'Invert'].includes(op);
  if (needsLevel) integerInRange(level, `the level of ${op}`, 'autoAugmentValue', 0, AUTOAUGMENT_BINS - 1);
  return binValue(op, needsLevel ? (level as number) : 0, AUTOAUGMENT_BINS, AUTOAUGMENT_SPACE, height, width);
}

function autoAugmentTables(policyName: AutoAugmentPolicyName, device: string, height: number, width: number): Tensor[] {
  return cachedTables(AUTOAUGMENT_POLICIES, `${policyName}:${device}:${height}x${width}`, () => {
    const policy = AUTOAUGMENT_POLICIES[policyName];
    const entries = policy.flatMap((pair) =>
      pair.map(([op, probability, level]) => ({
        kind: kindOf(op, `AutoAugment ${policyName} policy`),
        probability,
        value: autoAugmentValue(op, level, height, width),
      })),
    );
    return packTables(entries, device, [policy.length, 2]);
  });
}

export interface AutoAugmentOptions extends AugmenterOptions {
  /** Which published policy: 'cifar10' (default), 'svhn' or 'imagenet'. */
  policy?: AutoAugmentPolicyName;
}

function checkPolicyName(name: unknown, where: string): AutoAugmentPolicyName {
  if (typeof name !== 'string' || !Object.hasOwn(AUTOAUGMENT_POLICIES, name)) {
    throw new RangeError(
      `${where}: unknown AutoAugment policy ${describe(name)} (one of ${Object.keys(AUTOAUGMENT_POLICIES).join(', ')})`,
    );
  }
  return name as AutoAugmentPolicyName;
}

/**
 * AutoAugment's per-image draws: a sub-policy per image, uniformly (`choice`, [B] int64), then
 * for each of its two ops a bit (applied with the op's probability) and a sign (for the signed
 * ops). kinds/values/bits: [B, 2].
 */
export function autoAugmentDraws(
  batch: number,
  options: DrawOptions & { policy?: AutoAugmentPolicyName } = {},
): AugmentationDraws {
  const where = 'autoAugmentDraws';
  const { options: checked, height, width, device, generator, batch: b } = drawGeometry(batch, options, where);
  const policyName = checkPolicyName(checked.policy ?? 'cifar10', where);
  const [kindsTable, floatsTable] = autoAugmentTables(policyName, device, height, width);
  return tidy(() => {
    const choice = randint(0, AUTOAUGMENT_POLICIES[policyName].length, [b], { generator, device });
    // Rows of the [P, 2] tables: expand the sub-policy index to its two slots.
    const slots = choice.mul(2).unsqueeze(1).add(slotOffsets(device));
    const drawn = drawFromTables(
      kindsTable.reshape([-1]),
      floatsTable.reshape([-1, 4]),
      slots,
      [b, 2],
      generator,
      device,
    );
    return { ...drawn, choice };
  });
}

// [1, 2] int64 (0, 1): the slot offsets of a sub-policy's two ops in the flattened tables.
function slotOffsets(device: string): Tensor {
  return tensor(new BigInt64Array([0n, 1n]), [1, 2], { device });
}

/**
 * AutoAugment (Cubuk et al. 2019) with a published policy (default: CIFAR-10): per image, one
 * of the 25 sub-policies uniformly, each of its two ops applied with its probability at its
 * level (see autoAugmentValue). One native call per batch.
 */
export function autoAugment(images: Tensor, options: AutoAugmentOptions = {}): Tensor {
  return drawAndApply(
    images,
    options,
    'autoAugment',
    (o, where) => checkPolicyName(o.policy ?? 'cifar10', where),
    autoAugmentDraws,
  );
}
