// Mini-batches of a dataset as tensors: one epoch per call, in an order that depends only on
// (seed, epoch), so that a run resumed at any epoch (and batch) sees the same batches.
import { describe, optionsObject, requiredOptions } from '../util/describe.js';
import { tensor } from '../engine/creation.js';
import { type Device, type Tensor } from '../engine/tensor.js';
import { checkDataset, imageBytes, isStreamed, type ImageDataset } from './dataset.js';
import { checkSeed } from '../util/checks.js';
import { seededRandom, shuffleInPlace, STREAM } from './random.js';

export interface BatchOptions {
  batchSize: number;
  /** Shuffle the images (default true); false keeps the dataset's order. */
  shuffle?: boolean;
  /** The order's seed (default 0). */
  seed?: number;
  /** Drop the last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
  /** Where the tensors go (default 'cpu'). */
  device?: Device;
  /** Which epoch's order (default 0). */
  epoch?: number;
  /** Start at this batch of the epoch, to resume in the middle of one (default 0). */
  startBatch?: number;
  /**
   * The images of the epoch, in the order to visit them (indices into the dataset, repeats
   * allowed), instead of the seeded order of `shuffle`, `seed` and `epoch`: a rank's shard of a
   * distributed run (`shardIndices`).
   */
  order?: Int32Array;
}

export interface Batch {
  /** float32 [B, C, H, W], pixel / 255, on the device. */
  images: Tensor;
  /** int64 [B] class indices, on the device. */
  labels: Tensor;
  /** Which images of the dataset these are. */
  indices: Int32Array;
}

/**
 * The order in which epoch `epoch` visits the `count` images: a permutation that depends only
 * on (seed, epoch) when shuffling, 0 .. count - 1 otherwise. A sharded sampler can take
 * every k-th entry of it.
 */
export function epochOrder(
  count: number,
  options: { shuffle?: boolean; seed?: number; epoch?: number } = {},
): Int32Array {
  const { shuffle = true, seed = 0, epoch = 0 } = optionsObject(options, 'epochOrder');
  checkSeed(seed, 'epochOrder');
  if (!Number.isInteger(count) || count < 0)
    throw new RangeError(`epochOrder: count must be a non-negative integer, got ${describe(count)}`);
  if (!Number.isInteger(epoch) || epoch < 0)
    throw new RangeError(`epochOrder: epoch must be a non-negative integer, got ${describe(epoch)}`);
  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  return shuffle ? shuffleInPlace(order, seededRandom(seed, STREAM.epoch, epoch)) : order;
}

/** How many batches one epoch of `count` images has. */
export function batchCount(count: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

/** The order and the batches of an epoch, from checked options. */
function plan(ds: ImageDataset, options: BatchOptions, where: string) {
  checkDataset(ds, where);
  const {
    batchSize,
    shuffle = true,
    seed = 0,
    dropLast = false,
    device = 'cpu',
    epoch = 0,
    startBatch = 0,
    order: given,
  } = requiredOptions(options, where, '{ batchSize, ... }');
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`${where}: batchSize must be a positive integer, got ${describe(batchSize)}`);
  checkSeed(seed, where);
  if (!Number.isInteger(epoch) || epoch < 0)
    throw new RangeError(`${where}: epoch must be a non-negative integer, got ${describe(epoch)}`);
  if (typeof device !== 'string')
    throw new TypeError(`${where}: device must be a string such as 'cpu' or 'cuda', got ${describe(device)}`);
  if (given !== undefined) {
    if (!(given instanceof Int32Array))
      throw new TypeError(`${where}: order must be an Int32Array of image indices, got ${describe(given)}`);
    const bad = given.find((i) => i < 0 || i >= ds.count);
    if (bad !== undefined) throw new RangeError(`${where}: order holds index ${bad}, outside 0..${ds.count - 1}`);
  }
  const order = given ?? epochOrder(ds.count, { shuffle, seed, epoch });
  const total = batchCount(order.length, batchSize, dropLast);
  if (!Number.isInteger(startBatch) || startBatch < 0 || startBatch > total) {
    throw new RangeError(`${where}: startBatch must be an integer in 0..${total}, got ${describe(startBatch)}`);
  }
  const indicesOf = (b: number) => order.slice(b * batchSize, Math.min((b + 1) * batchSize, order.length));
  return { startBatch, total, device, indicesOf };
}

/** The batch of the images at `indices`, whose pixels are `pixels`: float32 in [0, 1] and int64 labels on `device`. */
function assemble(ds: ImageDataset, indices: Int32Array, pixels: Uint8Array, device: Device): Batch {
  const [channels, height, width] = ds.shape;
  const count = indices.length;
  const labels = new Int32Array(count);
  for (let k = 0; k < count; k++) labels[k] = ds.labels[indices[k]];
  const bytes = tensor(pixels, [count, channels, height, width], { device });
  const floats = bytes.float();
  bytes.dispose();
  const images = floats.div(255);
  floats.dispose();
  return { images, labels: tensor(labels, [count], { dtype: 'int64', device }), indices };
}

/** The pixels of the images at `indices` of an in-memory dataset. */
function gather(ds: ImageDataset, indices: Int32Array): Uint8Array {
  const size = imageBytes(ds);
  const pixels = new Uint8Array(indices.length * size);
  for (let k = 0; k < indices.length; k++)
    pixels.set(ds.images.subarray(indices[k] * size, (indices[k] + 1) * size), k * size);
  return pixels;
}

/**
 * One epoch of `ds` in batches: images as float32 [B, C, H, W] in [0, 1] and labels as int64
 * [B], both on `device`. The uint8 pixels travel to the device and become float32 there.
 * The caller owns each batch's two tensors: `dispose(batch)` after the step. (They are made
 * when the loop asks for the next batch, so a `tidy` inside the loop body does not free them.)
 * A streamed dataset's images are read as they are needed: use `batchesAsync` for it.
 */
export function batches(ds: ImageDataset, options: BatchOptions): Generator<Batch, void, undefined> {
  const where = 'batches';
  const { startBatch, total, device, indicesOf } = plan(ds, options, where);
  if (isStreamed(ds)) {
    throw new TypeError(`${where}: ${ds.name} is streamed from its files; use batchesAsync() to read its batches`);
  }
  return (function* () {
    for (let b = startBatch; b < total; b++) {
      const indices = indicesOf(b);
      yield assemble(ds, indices, gather(ds, indices), device);
    }
  })();
}

/**
 * The same batches as `batches`, for any dataset: a streamed one reads each batch's images from
 * its source (decoding off the main thread) when the batch is asked for, so that a loop that asks
 * for the next batch before running a step has it read while the step runs.
 */
export function batchesAsync(ds: ImageDataset, options: BatchOptions): AsyncGenerator<Batch, void, undefined> {
  const { startBatch, total, device, indicesOf } = plan(ds, options, 'batchesAsync');
  return (async function* () {
    for (let b = startBatch; b < total; b++) {
      const indices = indicesOf(b);
      let pixels: Uint8Array;
      if (isStreamed(ds)) {
        pixels = new Uint8Array(indices.length * imageBytes(ds));
        await ds.source.read(indices, pixels);
      } else {
        pixels = gather(ds, indices);
      }
      yield assemble(ds, indices, pixels, device);
    }
  })();
}
