// CIFAR-10 and CIFAR-100, binary version (https://www.cs.toronto.edu/~kriz/cifar.html):
// fixed-size records of label byte(s) then 3072 pixel bytes, already channel-major
// (1024 red, 1024 green, 1024 blue, each 32 rows of 32).
import { join } from 'node:path';

import { describe, optionsObject } from '../util/describe.js';
import { DataFileError, type ImageDataset } from './dataset.js';
import {
  checkDirArgument,
  checkSplit,
  isDirectory,
  readClassNames,
  readRequired,
  requireFolder,
  type LoadOptions,
} from './files.js';

const PIXELS = 3 * 32 * 32;

interface CifarFormat {
  where: string;
  /** The archive's folder, which `dir` may contain. */
  folder: string;
  files: Record<'train' | 'test', string[]>;
  namesFile: string;
  /** Where the folder comes from, for the message when it is missing. */
  source: string;
  classes: number;
  /** Label bytes before the pixels. */
  labelBytes: number;
  /** Which label byte is the label, and how many values the other label bytes may take. */
  labelIndex: number;
  otherLabelClasses: number[];
}

async function loadCifar(format: CifarFormat, dir: string, options: LoadOptions): Promise<ImageDataset> {
  const { where } = format;
  checkDirArgument(where, dir);
  const split = checkSplit(where, optionsObject(options, where).split) as 'train' | 'test';
  await requireFolder(where, dir, format.source);
  const root = (await isDirectory(join(dir, format.folder))) ? join(dir, format.folder) : dir;
  const classes = await readClassNames(
    where,
    join(root, format.namesFile),
    format.classes,
    `the ${format.classes} class names of ${format.folder}, ${format.source}`,
  );
  const paths = format.files[split].map((file) => join(root, file));
  const record = format.labelBytes + PIXELS;
  const files = await Promise.all(
    paths.map((path) => readRequired(where, path, `a ${format.folder} ${split} file of ${record}-byte records`)),
  );
  let count = 0;
  files.forEach((bytes, k) => {
    if (bytes.length === 0 || bytes.length % record !== 0) {
      throw new DataFileError(
        paths[k],
        `${where}: ${paths[k]} has ${bytes.length} bytes, not a positive multiple of the ${record}-byte record ` +
          `(${format.labelBytes} label byte${format.labelBytes > 1 ? 's' : ''} + ${PIXELS} pixels): truncated or ` +
          `not a ${format.folder} file`,
      );
    }
    count += bytes.length / record;
  });
  const images = new Uint8Array(count * PIXELS);
  const labels = new Int32Array(count);
  let n = 0;
  files.forEach((bytes, k) => {
    for (let offset = 0; offset < bytes.length; offset += record, n++) {
      for (let b = 0; b < format.labelBytes; b++) {
        const value = bytes[offset + b];
        const limit = b === format.labelIndex ? format.classes : format.otherLabelClasses[b];
        if (value >= limit) {
          throw new DataFileError(
            paths[k],
            `${where}: ${paths[k]}: record ${offset / record} has label byte ${b} = ${value}, expected ` +
              `0..${limit - 1} (corrupt or not a ${format.folder} file)`,
          );
        }
      }
      labels[n] = bytes[offset + format.labelIndex];
      images.set(bytes.subarray(offset + format.labelBytes, offset + record), n * PIXELS);
    }
  });
  return { name: `${where}/${split}`, images, labels, count, shape: [3, 32, 32], classes };
}

/**
 * CIFAR-10, binary version: `dir` is `cifar-10-batches-bin` or the folder holding it.
 * Train: `data_batch_1.bin` .. `data_batch_5.bin` (50,000 images); test: `test_batch.bin`
 * (10,000). Class names from `batches.meta.txt`.
 */
export function cifar10(dir: string, options: LoadOptions = {}): Promise<ImageDataset> {
  return loadCifar(
    {
      where: 'cifar10',
      folder: 'cifar-10-batches-bin',
      files: { train: [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`), test: ['test_batch.bin'] },
      namesFile: 'batches.meta.txt',
      source: 'the unpacked cifar-10-binary.tar.gz of https://www.cs.toronto.edu/~kriz/cifar.html',
      classes: 10,
      labelBytes: 1,
      labelIndex: 0,
      otherLabelClasses: [],
    },
    dir,
    options,
  );
}

export interface Cifar100Options extends LoadOptions {
  /** The 100 fine classes (default) or the 20 coarse superclasses. */
  labels?: 'fine' | 'coarse';
}

/**
 * CIFAR-100, binary version: `dir` is `cifar-100-binary` or the folder holding it. Train:
 * `train.bin` (50,000 images), test: `test.bin` (10,000); each record has a coarse and a fine
 * label byte. Labels are the 100 fine classes (`fine_label_names.txt`) unless
 * `labels: 'coarse'` (the 20 superclasses, `coarse_label_names.txt`).
 */
export async function cifar100(dir: string, options: Cifar100Options = {}): Promise<ImageDataset> {
  const checked = optionsObject(options, 'cifar100');
  const which = checked.labels ?? 'fine';
  if (which !== 'fine' && which !== 'coarse')
    throw new RangeError(`cifar100: labels must be 'fine' or 'coarse', got ${describe(which)}`);
  const fine = which === 'fine';
  return loadCifar(
    {
      where: 'cifar100',
      folder: 'cifar-100-binary',
      files: { train: ['train.bin'], test: ['test.bin'] },
      namesFile: fine ? 'fine_label_names.txt' : 'coarse_label_names.txt',
      source: 'the unpacked cifar-100-binary.tar.gz of https://www.cs.toronto.edu/~kriz/cifar.html',
      classes: fine ? 100 : 20,
      labelBytes: 2,
      labelIndex: fine ? 1 : 0,
      otherLabelClasses: fine ? [20] : [0, 100],
    },
    dir,
    checked,
  );
}
