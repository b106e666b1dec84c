// Batches of images as the engine takes them: a Tensor [B, C, H, W], float32 in [0, 1] or uint8
// pixel values, which become float32 in [0, 1] where a function computes on them.
import { describe } from '../util/describe.js';
import { Tensor } from './tensor.js';

/** Throws unless `images` is a 4-d Tensor, naming `where`. */
export function checkImages(images: unknown, where: string): asserts images is Tensor {
  if (!(images instanceof Tensor))
    throw new TypeError(`${where}: images must be a Tensor [B, C, H, W], got ${describe(images)}`);
  const shape = images.shape;
  if (shape.length !== 4)
    throw new RangeError(`${where}: images must be [B, C, H, W], got shape [${shape.join(', ')}]`);
}

/** Images as float32 in [0, 1]: uint8 pixel values are scaled by 1/255, other tensors pass as they are. */
export function floatImages(images: Tensor): Tensor {
  return images.dtype === 'uint8' ? images.float().div(255) : images;
}
