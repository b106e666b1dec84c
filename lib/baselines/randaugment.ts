// RandAugment (Cubuk et al. 2020, as torchvision's `RandAugment`) on the shared draw engine.
import { cachedTables } from '../augment/kernel-tables.js';
import { randint } from '../engine/random.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { integerInRange } from '../util/checks.js';
import { AUTOAUGMENT_SPACE } from './autoaugment.js';
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

/**
 * The ops of torchvision's RandAugment and TrivialAugmentWide, in its order: Identity and 13
 * ops (no Invert, no Cutout).
 */
export const RANDAUGMENT_OPS: readonly BaselineOpName[] = Object.freeze([
  'Identity',
  'ShearX',
  'ShearY',
  'TranslateX',
  'TranslateY',
  'Rotate',
  'Brightness',
  'Color',
  'Contrast',
  'Sharpness',
  'Posterize',
  'Solarize',
  'AutoContrast',
  'Equalize',
] as BaselineOpName[]);

/** RandAugment's ranges (torchvision `RandAugment._augmentation_space`): AutoAugment's. */
const RANDAUGMENT_SPACE: MagnitudeSpace = AUTOAUGMENT_SPACE;

export interface RandAugmentOptions extends AugmenterOptions {
  /** Ops per image (0..64), each drawn uniformly from RANDAUGMENT_OPS (with replacement). Default 2. */
  n?: number;
  /** The magnitude bin, 0..bins-1, as torchvision's `magnitude`. Default 9. */
  magnitude?: number;
  /** Number of magnitude bins, as torchvision's `num_magnitude_bins`. Default 31. */
  bins?: number;
}

function randAugmentSettings(options: RandAugmentOptions, where: string) {
  const n = integerInRange(options.n ?? 2, 'n', where, 0, 64);
  const bins = integerInRange(options.bins ?? 31, 'bins', where, 2, 1 << 16);
  const magnitude = integerInRange(options.magnitude ?? 9, 'magnitude', where, 0, bins - 1);
  return { n, bins, magnitude };
}

/**
 * The kernel value of a RandAugment op at bin `magnitude` of `bins` (torchvision defaults 9 of
 * 31), for an image of height x width: AutoAugment's ranges (see autoAugmentValue) on `bins` bins.
 */
export function randAugmentValue(
  op: BaselineOpName,
  magnitude = 9,
  bins = 31,
  height = 32,
  width = 32,
): { base: number; magnitude: number; signed: boolean } {
  checkOpValue(op, height, width, 'randAugmentValue');
  integerInRange(bins, 'bins', 'randAugmentValue', 2, 1 << 16);
  integerInRange(magnitude, 'magnitude', 'randAugmentValue', 0, bins - 1);
  return binValue(op, magnitude, bins, RANDAUGMENT_SPACE, height, width);
}

/**
 * RandAugment's per-image draws: n ops per image, each uniformly from RANDAUGMENT_OPS
 * (`choice`, [B, n] int64), at the fixed magnitude with a random sign where signed. Empty
 * (Identity) slots have kind -1 and bit 0. kinds/values/bits: [B, n].
 */
export function randAugmentDraws(batch: number, options: DrawOptions & RandAugmentOptions = {}): AugmentationDraws {
  const where = 'randAugmentDraws';
  const { options: checked, height, width, device, generator, batch: b } = drawGeometry(batch, options, where);
  const { n, bins, magnitude } = randAugmentSettings(checked, where);
  const [kindsTable, floatsTable] = cachedTables(
    RANDAUGMENT_OPS,
    `${device}:${height}x${width}:${magnitude}/${bins}`,
    () =>
      packTables(
        RANDAUGMENT_OPS.map((op) => ({
          kind: kindOf(op, 'RandAugment'),
          probability: op === 'Identity' ? 0 : 1,
          value: binValue(op, magnitude, bins, RANDAUGMENT_SPACE, height, width),
        })),
        device,
        [RANDAUGMENT_OPS.length],
      ),
  );
  return tidy(() => {
    const choice = randint(0, RANDAUGMENT_OPS.length, [b, n], { generator, device });
    return { ...drawFromTables(kindsTable, floatsTable, choice, [b, n], generator, device), choice };
  });
}

/**
 * RandAugment (Cubuk et al. 2020, as torchvision's `RandAugment`): n ops per image, each drawn
 * uniformly from RANDAUGMENT_OPS (Identity included), all at the same magnitude bin (default
 * 9 of 31), signs drawn per op. ceil(n / 2) native calls per batch.
 */
export function randAugment(images: Tensor, options: RandAugmentOptions = {}): Tensor {
  return drawAndApply(images, options, 'randAugment', randAugmentSettings, randAugmentDraws);
}
