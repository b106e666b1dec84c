// The baseline preprocessing of SPEC 1.5 (flip, pad + random crop, Cutout), each image with its
// own random draws, in one native pass; and Cutout alone, differentiable in the images.
import { checkImages, floatImages } from '../engine/images.js';
import { native } from '../engine/native.js';
import { full, stack, where } from '../engine/creation.js';
import { rand, randint } from '../engine/random.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, optionsObject } from '../util/describe.js';
import type { AugmentOptions } from './fused.js';

/** The baseline preprocessing of SPEC 1.5, or your own. */
export interface PreprocessConfig {
  /** Probability of a horizontal flip. */
  flip: number;
  /** Pad by this many pixels, then crop back at a random offset (a shift of -pad..pad). */
  pad: number;
  /** Side of the Cutout square in pixels (0: none). */
  cutout: number;
}

export const PREPROCESS_PRESETS: Readonly<Record<'cifar' | 'svhn' | 'none', PreprocessConfig>> = Object.freeze({
  cifar: { flip: 0.5, pad: 4, cutout: 16 },
  svhn: { flip: 0, pad: 0, cutout: 16 },
  none: { flip: 0, pad: 0, cutout: 0 },
});

/**
 * The config of a preset name (or a config as it is); none when undefined. An unknown name
 * throws a RangeError, anything else that is not an object a TypeError; both start with
 * `error` and list the presets.
 */
export function preprocessConfig(
  preset: keyof typeof PREPROCESS_PRESETS | PreprocessConfig | undefined,
  error: string,
): PreprocessConfig {
  if (preset === undefined) return PREPROCESS_PRESETS.none;
  if (typeof preset === 'string' && Object.hasOwn(PREPROCESS_PRESETS, preset)) return PREPROCESS_PRESETS[preset];
  if (typeof preset === 'string' || preset === null || typeof preset !== 'object' || Array.isArray(preset)) {
    const Kind = typeof preset === 'string' ? RangeError : TypeError;
    throw new Kind(
      `${error} ${describe(preset)} (one of ${Object.keys(PREPROCESS_PRESETS).join(', ')}, or a config { flip, ` +
        `pad, cutout })`,
    );
  }
  return preset;
}

/** Flip, pad + random crop and Cutout, each image with its own random draws. */
export function preprocess(
  images: Tensor,
  preset: keyof typeof PREPROCESS_PRESETS | PreprocessConfig,
  options: AugmentOptions = {},
): Tensor {
  checkImages(images, 'preprocess');
  const { generator } = optionsObject(options, 'preprocess');
  const { flip, pad, cutout } = preprocessConfig(preset, 'preprocess: unknown preset');
  if (!(typeof flip === 'number' && flip >= 0 && flip <= 1))
    throw new RangeError(`preprocess: flip must be a probability, got ${describe(flip)}`);
  if (!Number.isInteger(pad) || pad < 0)
    throw new RangeError(`preprocess: pad must be a non-negative integer, got ${describe(pad)}`);
  if (!Number.isInteger(cutout) || cutout < 0)
    throw new RangeError(`preprocess: cutout must be a non-negative integer, got ${describe(cutout)}`);
  const [batch, , height, width] = images.shape;
  const device = images.device;
  return tidy(() => {
    const int = (low: number, high: number) => randint(low, high, [batch], { generator, device, dtype: 'int32' });
    const flips = rand([batch], { generator, device }).lt(flip).toDtype('int32');
    const params = stack(
      [
        flips,
        int(-pad, pad + 1),
        int(-pad, pad + 1),
        full([batch], cutout, { device, dtype: 'int32' }),
        int(0, height),
        int(0, width),
      ],
      1,
    );
    return new Tensor(native.preprocessBatch(images.handle, params.handle));
  });
}

/**
 * Cutout of a fixed size, each image its own random centre, differentiable in the images: the
 * gradient passes where the image is kept (the square is constant gray). Draws the same random
 * numbers as `preprocess(images, { flip: 0, pad: 0, cutout: size })` and gives the same values.
 */
export function applyCutout(images: Tensor, size: number, options: AugmentOptions = {}): Tensor {
  checkImages(images, 'applyCutout');
  const { generator } = optionsObject(options, 'applyCutout');
  if (!Number.isInteger(size) || size < 0)
    throw new RangeError(`applyCutout: size must be a non-negative integer, got ${describe(size)}`);
  if (size === 0) return images;
  const [batch, , height, width] = images.shape;
  return tidy(() => {
    const marked = preprocess(
      full([batch, 1, height, width], 1, { device: images.device }),
      { flip: 0, pad: 0, cutout: size },
      { generator },
    );
    return where(marked.lt(1), 0.5, floatImages(images));
  });
}
