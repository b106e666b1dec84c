// The augmentation baselines by name, for training loops and the command line.
import type { Tensor } from '../engine/tensor.js';
import { describe } from '../util/describe.js';
import { autoAugment } from './autoaugment.js';
import { cutout, noAugmentation } from './cutout.js';
import type { Augmenter, AugmenterOptions } from './draws.js';
import { randAugment } from './randaugment.js';
import { trivialAugment } from './trivialaugment.js';

export type BaselineName = 'none' | 'cutout' | 'autoaugment' | 'randaugment' | 'trivialaugment';

/** The baselines by name, each with its default settings, for `augmentation: 'trivialaugment'`. */
export const BASELINES: Readonly<Record<BaselineName, Augmenter>> = Object.freeze({
  none: (images: Tensor, options?: AugmenterOptions) => noAugmentation(images, options),
  cutout: (images: Tensor, options?: AugmenterOptions) => cutout(images, options),
  autoaugment: (images: Tensor, options?: AugmenterOptions) => autoAugment(images, options),
  randaugment: (images: Tensor, options?: AugmenterOptions) => randAugment(images, options),
  trivialaugment: (images: Tensor, options?: AugmenterOptions) => trivialAugment(images, options),
});

/**
 * The baseline of a name in BASELINES (case-insensitive), or a function passed through as it
 * is; an Error listing the known names otherwise.
 */
export function baselineAugmenter(name: BaselineName | string | Augmenter): Augmenter {
  if (typeof name === 'function') return name;
  const known = Object.keys(BASELINES).join(', ');
  if (typeof name !== 'string')
    throw new TypeError(`augmentation must be a policy name (one of ${known}) or a function, got ${describe(name)}`);
  const key = name.toLowerCase();
  if (!Object.hasOwn(BASELINES, key))
    throw new RangeError(`unknown augmentation policy ${describe(name)} (one of ${known})`);
  return BASELINES[key as BaselineName];
}
