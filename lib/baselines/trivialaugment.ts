// TrivialAugmentWide (Müller & Hutter 2021, as torchvision's `TrivialAugmentWide`) on the shared
// draw engine: RandAugment's ops, one per image, at a magnitude bin drawn per image.
import { cachedTables } from '../augment/kernel-tables.js';
import { randint } from '../engine/random.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { integerInRange } from '../util/checks.js';
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
import { RANDAUGMENT_OPS } from './randaugment.js';

/** TrivialAugmentWide's ranges (torchvision `TrivialAugmentWide._augmentation_space`). */
const TRIVIALAUGMENT_SPACE: MagnitudeSpace = {
  shear: 0.99,
  translate: () => 32, // pixels, whatever the image size
  rotate: 135,
  enhance: 0.99,
  posterizeDrop: 6,
};

export interface TrivialAugmentOptions extends AugmenterOptions {
  /** Number of magnitude bins, as torchvision's `num_magnitude_bins`. Default 31. */
  bins?: number;
}

/**
 * The kernel value of a TrivialAugmentWide op at bin `bin` of `bins` (default 31):
 *   ShearX/Y: +- bin/(bins-1) * 0.99       TranslateX/Y: +- int(bin/(bins-1) * 32) px
 *   Rotate: +- bin/(bins-1) * 135 degrees  Color/Contrast/Brightness/Sharpness: 1 +- bin/(bins-1) * 0.99
 *   Posterize: 8 - round(bin/(bins-1) * 6) bits (8..2)
 *   Solarize: threshold 255 * (1 - bin/(bins-1)).
 */
export function trivialAugmentValue(
  op: BaselineOpName,
  bin: number,
  bins = 31,
  height = 32,
  width = 32,
): { base: number; magnitude: number; signed: boolean } {
  checkOpValue(op, height, width, 'trivialAugmentValue');
  integerInRange(bins, 'bins', 'trivialAugmentValue', 2, 1 << 16);
  integerInRange(bin, 'bin', 'trivialAugmentValue', 0, bins - 1);
  return binValue(op, bin, bins, TRIVIALAUGMENT_SPACE, height, width);
}

/**
 * TrivialAugmentWide's per-image draws: one op per image uniformly from RANDAUGMENT_OPS
 * (`choice`, [B, 1] int64), a magnitude bin uniformly from 0..bins-1 and a sign where signed.
 * kinds/values/bits: [B, 1].
 */
export function trivialAugmentDraws(
  batch: number,
  options: DrawOptions & TrivialAugmentOptions = {},
): AugmentationDraws {
  const where = 'trivialAugmentDraws';
  const { options: checked, height, width, device, generator, batch: b } = drawGeometry(batch, options, where);
  const bins = integerInRange(checked.bins ?? 31, 'bins', where, 2, 1 << 16);
  const count = RANDAUGMENT_OPS.length;
  // Table rows: op * bins + bin.
  const [kindsTable, floatsTable] = cachedTables(TRIVIALAUGMENT_SPACE, `${device}:${height}x${width}:${bins}`, () =>
    packTables(
      RANDAUGMENT_OPS.flatMap((op) =>
        Array.from({ length: bins }, (_, bin) => ({
          kind: kindOf(op, 'TrivialAugment'),
          probability: op === 'Identity' ? 0 : 1,
          value: binValue(op, bin, bins, TRIVIALAUGMENT_SPACE, height, width),
        })),
      ),
      device,
      [count * bins],
    ),
  );
  return tidy(() => {
    const choice = randint(0, count, [b, 1], { generator, device });
    const bin = randint(0, bins, [b, 1], { generator, device });
    return { ...drawFromTables(kindsTable, floatsTable, choice.mul(bins).add(bin), [b, 1], generator, device), choice };
  });
}

/**
 * TrivialAugmentWide (Müller & Hutter 2021, as torchvision's `TrivialAugmentWide`): one op per
 * image uniformly from RANDAUGMENT_OPS (Identity included) at a magnitude bin drawn uniformly.
 * One native call per batch.
 */
export function trivialAugment(images: Tensor, options: TrivialAugmentOptions = {}): Tensor {
  return drawAndApply(
    images,
    options,
    'trivialAugment',
    (o, where) => integerInRange(o.bins ?? 31, 'bins', where, 2, 1 << 16),
    trivialAugmentDraws,
  );
}
