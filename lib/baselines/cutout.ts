// Cutout (DeVries & Taylor 2017) and no augmentation, with the baselines' interface.
import { applyCutout } from '../augment/preprocess.js';
import { checkImages, floatImages } from '../engine/images.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { integerInRange } from '../util/checks.js';
import { checkOptions, type AugmenterOptions } from './draws.js';

export interface CutoutOptions extends AugmenterOptions {
  /** Side of the square in pixels (DeVries & Taylor 2017: 16 for CIFAR-10). Default 16. */
  size?: number;
}

/**
 * Cutout (DeVries & Taylor 2017): a size x size gray square at a centre drawn uniformly over
 * the image, clipped at the borders; the preprocessing kernel's Cutout (`preprocess`).
 */
export function cutout(images: Tensor, options: CutoutOptions = {}): Tensor {
  checkImages(images, 'cutout');
  const { size, generator } = checkOptions(options, 'cutout');
  return applyCutout(images, integerInRange(size ?? 16, 'size', 'cutout', 0), { generator });
}

/** No augmentation: a float32 copy in [0, 1] (uint8 images are scaled), like every policy returns. */
export function noAugmentation(images: Tensor, options: AugmenterOptions = {}): Tensor {
  checkImages(images, 'noAugmentation');
  checkOptions(options, 'noAugmentation');
  const dtype = images.dtype;
  if (dtype === 'uint8') return tidy(() => floatImages(images.detach()));
  if (dtype !== 'float32')
    throw new TypeError(`noAugmentation: images must be float32 in [0, 1] or uint8, got ${dtype}`);
  return tidy(() => images.detach().clone());
}
