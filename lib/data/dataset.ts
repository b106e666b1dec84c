// The image dataset every loader returns (in memory, or read from its files batch by batch), and
// the small operations on it.
import { describe } from '../util/describe.js';

/**
 * Images and labels. Pixels stay uint8 (a quarter of float32's memory); the batches of a run turn
 * the images of one batch into float32 in [0, 1] on the device. A streamed dataset (`source`)
 * keeps only its labels in memory and reads the images of each batch when it is made.
 */
export interface ImageDataset {
  /** Where it came from, e.g. `'cifar10/train'`. */
  name: string;
  /**
   * `count` images one after another, each channel-major (C planes of H rows of W pixels); empty
   * for a streamed dataset.
   */
  images: Uint8Array;
  /** Where a streamed dataset's images come from; absent when they are in `images`. */
  source?: ImageSource;
  /** One class index per image, in 0 .. classes.length - 1. */
  labels: Int32Array;
  count: number;
  /** [C, H, W] of every image. */
  shape: [number, number, number];
  /** Class names; label k is `classes[k]`. */
  classes: string[];
}

/** A streamed dataset's images, read on demand. */
export interface ImageSource {
  /**
   * Reads the images at `indices` (of the dataset) into `into`, one after another, each
   * channel-major as `ImageDataset.images` holds them.
   */
  read(indices: Int32Array, into: Uint8Array): Promise<void>;
}

/** Whether the dataset's images are read on demand (a streamed dataset). */
export function isStreamed(ds: ImageDataset): ds is ImageDataset & { source: ImageSource } {
  return ds.source !== undefined;
}

/** A loader's error about a file: the message names the file, `file` holds its path. */
export class DataFileError extends Error {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataFileError';
    this.file = file;
  }
}

/** Bytes per image: C * H * W. */
export function imageBytes(ds: Pick<ImageDataset, 'shape'>): number {
  return ds.shape[0] * ds.shape[1] * ds.shape[2];
}

/** Checks that `ds` is a consistent ImageDataset (sizes agree, labels in range). */
export function checkDataset(ds: ImageDataset, where: string): void {
  if (ds === null || typeof ds !== 'object') throw new TypeError(`${where}: expected a dataset, got ${describe(ds)}`);
  // The name goes into messages, subsets' names and reports: a string (or, as datasets made by hand may have it, none).
  if (ds.name !== undefined && typeof ds.name !== 'string')
    throw new TypeError(`${where}: dataset.name must be a string, got ${describe(ds.name)}`);
  if (!(ds.images instanceof Uint8Array)) throw new TypeError(`${where}: dataset.images must be a Uint8Array`);
  if (!(ds.labels instanceof Int32Array)) throw new TypeError(`${where}: dataset.labels must be an Int32Array`);
  if (!Array.isArray(ds.classes) || ds.classes.length === 0)
    throw new TypeError(`${where}: dataset.classes must be a non-empty array of names`);
  const shape = ds.shape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new TypeError(`${where}: dataset.shape must be [C, H, W] of positive integers, got ${describe(shape)}`);
  }
  if (!Number.isInteger(ds.count) || ds.count < 0)
    throw new TypeError(`${where}: dataset.count must be a non-negative integer, got ${describe(ds.count)}`);
  if (ds.labels.length !== ds.count) {
    throw new RangeError(`${where}: dataset has ${ds.count} images but ${ds.labels.length} labels`);
  }
  if (ds.source !== undefined) {
    if (typeof ds.source?.read !== 'function')
      throw new TypeError(`${where}: dataset.source must have a read(indices, into) method`);
    if (ds.images.length !== 0) throw new RangeError(`${where}: a streamed dataset holds no images in memory`);
  } else if (ds.images.length !== ds.count * imageBytes(ds)) {
    throw new RangeError(
      `${where}: dataset.images has ${ds.images.length} bytes, ${ds.count} images of [${shape.join(', ')}] need ` +
        `${ds.count * imageBytes(ds)}`,
    );
  }
}

/** How many images of each class: `counts[k]` for `classes[k]`. */
export function classCounts(ds: ImageDataset): number[] {
  checkDataset(ds, 'classCounts');
  const counts = new Array<number>(ds.classes.length).fill(0);
  for (const label of ds.labels) {
    if (!(label >= 0 && label < counts.length)) {
      throw new RangeError(`classCounts: ${ds.name} has label ${label}, outside 0..${counts.length - 1}`);
    }
    counts[label]++;
  }
  return counts;
}

/**
 * The images at `indices` (in that order), copied into a new dataset with the same classes; of a
 * streamed dataset, a streamed dataset that reads them from its source.
 */
export function subset(ds: ImageDataset, indices: ArrayLike<number>, name = ds.name): ImageDataset {
  checkDataset(ds, 'subset');
  if (typeof (indices as Partial<ArrayLike<number>> | null | undefined)?.length !== 'number') {
    throw new TypeError(`subset: indices must be an array of image indices, got ${describe(indices)}`);
  }
  const size = imageBytes(ds);
  const images = new Uint8Array(isStreamed(ds) ? 0 : indices.length * size);
  const labels = new Int32Array(indices.length);
  const chosen = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= ds.count) {
      throw new RangeError(`subset: index ${describe(i)} is outside 0..${ds.count - 1}`);
    }
    if (!isStreamed(ds)) images.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = ds.labels[i];
    chosen[k] = i;
  }
  const made: ImageDataset = {
    name,
    images,
    labels,
    count: indices.length,
    shape: [...ds.shape],
    classes: [...ds.classes],
  };
  if (isStreamed(ds)) {
    const parent = ds.source;
    made.source = {
      read: (at, into) =>
        parent.read(
          at.map((k) => chosen[k]),
          into,
        ),
    };
  }
  return made;
}
