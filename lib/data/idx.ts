// IDX files (MNIST, Fashion-MNIST, http://yann.lecun.com/exdb/mnist/): a big-endian header
// (two zero bytes, a type byte, the number of dimensions, one uint32 per dimension) and the
// values. Images: idx3-ubyte (N x rows x cols), labels: idx1-ubyte (N). Plain or gzip.
import { describe, optionsObject } from '../util/describe.js';
import { DataFileError, type ImageDataset } from './dataset.js';
import {
  checkDirArgument,
  checkSplit,
  findOneOf,
  gunzipIfCompressed,
  isDirectory,
  readRequired,
  requireFolder,
  type LoadOptions,
} from './files.js';

export interface IdxOptions extends LoadOptions {
  /** Class names, or their number (names '0', '1', ...). Default: the ten digits '0' .. '9'. */
  classes?: string[] | number;
  /** The dataset's name (default 'idx'). */
  name?: string;
}

/** Fashion-MNIST's classes, in label order (Xiao, Rasul and Vollgraf, 2017). */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]);

/** Where Debian's `dataset-fashion-mnist` package puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

function classNames(where: string, classes: IdxOptions['classes']): string[] {
  if (classes === undefined) return Array.from({ length: 10 }, (_, k) => String(k));
  if (typeof classes === 'number') {
    if (!Number.isInteger(classes) || classes < 1 || classes > 256)
      throw new RangeError(`${where}: classes must be 1..256 or an array of names, got ${describe(classes)}`);
    return Array.from({ length: classes }, (_, k) => String(k));
  }
  if (!Array.isArray(classes) || classes.length === 0 || !classes.every((c) => typeof c === 'string')) {
    throw new TypeError(`${where}: classes must be a non-empty array of names or a number, got ${describe(classes)}`);
  }
  return [...classes];
}

/** The header and values of one IDX ubyte file, checked against the expected number of dimensions. */
function parseIdx(
  where: string,
  path: string,
  bytes: Uint8Array,
  dimensions: number,
): { dims: number[]; values: Uint8Array } {
  const kind = dimensions === 3 ? 'an idx3-ubyte image file' : 'an idx1-ubyte label file';
  const magic = bytes.length >= 4 ? (bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3] : -1;
  const expected = 0x0800 | dimensions;
  if (magic !== expected) {
    const found = bytes.length >= 4 ? `0x${(magic >>> 0).toString(16).padStart(8, '0')}` : `only ${bytes.length} bytes`;
    throw new DataFileError(
      path,
      `${where}: ${path} has magic ${found}, expected 0x${expected.toString(16).padStart(8, '0')} (${kind})`,
    );
  }
  const header = 4 + 4 * dimensions;
  if (bytes.length < header)
    throw new DataFileError(
      path,
      `${where}: ${path} is truncated: ${bytes.length} bytes, the header alone needs ${header}`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, header);
  const dims = Array.from({ length: dimensions }, (_, k) => view.getUint32(4 + 4 * k, false));
  const size = dims.reduce((a, b) => a * b, 1);
  const present = bytes.length - header;
  if (present < size) {
    throw new DataFileError(
      path,
      `${where}: ${path} is truncated: its header says ${dims.join(' x ')} = ${size} bytes of data, only ` +
        `${present} are present`,
    );
  }
  if (present > size) {
    throw new DataFileError(
      path,
      `${where}: ${path} has ${present - size} bytes after the ${dims.join(' x ')} values its header announces ` +
        `(corrupt?)`,
    );
  }
  return { dims, values: bytes.subarray(header) };
}

async function readIdx(
  where: string,
  dir: string,
  stem: string,
  dimensions: number,
): Promise<{ path: string; dims: number[]; values: Uint8Array }> {
  const [prefix, kind] = stem.split('-');
  const names = [
    `${stem}-idx${dimensions}-ubyte`,
    `${stem}-idx${dimensions}-ubyte.gz`,
    `${prefix}-${kind}.idx${dimensions}-ubyte`,
    `${prefix}-${kind}.idx${dimensions}-ubyte.gz`,
  ];
  const what = dimensions === 3 ? 'IDX images, plain or .gz' : 'IDX labels, plain or .gz';
  const path = await findOneOf(where, dir, names, what);
  const bytes = await gunzipIfCompressed(where, path, await readRequired(where, path, what));
  return { path, ...parseIdx(where, path, bytes, dimensions) };
}

/**
 * MNIST-style IDX files from `dir`: `train-images-idx3-ubyte` + `train-labels-idx1-ubyte`
 * (or `t10k-*` for the test split), each plain or gzip-compressed (`.gz`, recognised by its
 * bytes). One channel. Labels must be below the number of classes (default ten digits).
 */
export function idx(dir: string, options: IdxOptions = {}): Promise<ImageDataset> {
  return loadIdx('idx', dir, options);
}

async function loadIdx(where: string, dir: string, options: IdxOptions): Promise<ImageDataset> {
  checkDirArgument(where, dir);
  const { split: which, classes: names, name: label } = optionsObject(options, where);
  const split = checkSplit(where, which);
  const classes = classNames(where, names);
  const name = label ?? 'idx';
  await requireFolder(where, dir);
  if (typeof name !== 'string') throw new TypeError(`${where}: name must be a string, got ${describe(name)}`);
  const prefix = split === 'train' ? 'train' : 't10k';
  const [images, labels] = await Promise.all([
    readIdx(where, dir, `${prefix}-images`, 3),
    readIdx(where, dir, `${prefix}-labels`, 1),
  ]);
  const [count, height, width] = images.dims;
  if (labels.dims[0] !== count) {
    throw new DataFileError(
      labels.path,
      `${where}: ${labels.path} has ${labels.dims[0]} labels but ${images.path} has ${count} images`,
    );
  }
  const out = new Int32Array(count);
  for (let n = 0; n < count; n++) {
    const label = labels.values[n];
    if (label >= classes.length) {
      throw new DataFileError(
        labels.path,
        `${where}: ${labels.path}: label ${n} is ${label}, expected 0..${classes.length - 1} (pass { classes } for ` +
          `more classes)`,
      );
    }
    out[n] = label;
  }
  return { name: `${name}/${split}`, images: images.values, labels: out, count, shape: [1, height, width], classes };
}

/**
 * Fashion-MNIST (60,000 train / 10,000 test images of 28x28, 10 classes with their names),
 * from `dir`, by default where Debian's `dataset-fashion-mnist` installs it:
 * `fashionMnist()`, `fashionMnist({ split: 'test' })`, `fashionMnist(dir, { split })`.
 */
export async function fashionMnist(
  dir: string | LoadOptions = FASHION_MNIST_DIR,
  options: LoadOptions = {},
): Promise<ImageDataset> {
  if (typeof dir === 'object' && dir !== null) [dir, options] = [FASHION_MNIST_DIR, dir];
  const { split } = optionsObject(options, 'fashionMnist');
  checkDirArgument('fashionMnist', dir);
  if (!(await isDirectory(dir))) {
    throw new DataFileError(
      dir,
      `fashionMnist: ${dir} is not a folder: install Debian's dataset-fashion-mnist (apt-get install ` +
        `dataset-fashion-mnist) or pass the folder`,
    );
  }
  return loadIdx('fashionMnist', dir, { split, classes: [...FASHION_MNIST_CLASSES], name: 'fashion-mnist' });
}
