// SVHN, cropped digits (http://ufldl.stanford.edu/housenumbers/): `train_32x32.mat`,
// `test_32x32.mat`, `extra_32x32.mat`, level 5 MAT-files holding X (32x32x3xN uint8,
// column-major: X(row, column, channel, image)) and y (Nx1, digits 1..9 and 10 for 0).
import { join } from 'node:path';

import { optionsObject } from '../util/describe.js';
import { DataFileError, type ImageDataset } from './dataset.js';
import { checkDirArgument, checkSplit, readRequired, requireFolder } from './files.js';

/** Where SVHN's files come from. */
const SVHN_SOURCE =
  'the cropped digits, train_32x32.mat and test_32x32.mat, from http://ufldl.stanford.edu/housenumbers/';
import { yieldToEventLoop } from '../util/event-loop.js';
import { readMat, type MatArray } from './mat.js';

export interface SvhnOptions {
  /** `'train'` (default, 73,257 images), `'test'` (26,032) or `'extra'` (531,131). */
  split?: 'train' | 'test' | 'extra';
}

const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** SVHN's cropped digits from `dir/{split}_32x32.mat`; label 10 in the file is digit 0. */
export async function svhn(dir: string, options: SvhnOptions = {}): Promise<ImageDataset> {
  const where = 'svhn';
  checkDirArgument(where, dir);
  const split = checkSplit(where, optionsObject(options, where).split, ['train', 'test', 'extra']);
  await requireFolder(where, dir, SVHN_SOURCE);
  const file = join(dir, `${split}_32x32.mat`);
  const bytes = await readRequired(
    where,
    file,
    `the SVHN ${split} set, a MAT-file with X (32x32x3xN uint8) and y (Nx1), from ${SVHN_SOURCE}`,
  );
  const variables = await readMat(where, file, bytes);
  const fail = (message: string): never => {
    throw new DataFileError(file, `${where}: ${file}: ${message}`);
  };
  const get = (name: string): MatArray & { data: Uint8Array | Float64Array } => {
    const array = variables.get(name);
    if (!array)
      fail(`no variable '${name}' (found: ${[...variables.keys()].join(', ') || 'none'}); an SVHN file holds X and y`);
    if (!array!.data || array!.complex)
      fail(`'${name}' is a ${array!.complex ? 'complex ' : ''}${array!.className} array, expected real numbers`);
    return array as MatArray & { data: Uint8Array | Float64Array };
  };
  const X = get('X');
  const y = get('y');

  // MATLAB drops trailing singleton dimensions: one image is 32x32x3.
  const dims = X.dims.length === 3 ? [...X.dims, 1] : X.dims;
  if (dims.length !== 4 || dims[2] !== 3 || dims[0] === 0 || dims[1] === 0) {
    fail(`X is ${X.dims.join('x')}, expected height x width x 3 x N (32x32x3xN)`);
  }
  const [height, width, channels, count] = dims;
  if (y.data.length !== count || !(y.dims.length === 2 && (y.dims[0] === 1 || y.dims[1] === 1))) {
    fail(`y is ${y.dims.join('x')}, expected ${count}x1 (one label per image of X)`);
  }
  const labels = new Int32Array(count);
  for (let n = 0; n < count; n++) {
    const value = y.data[n];
    if (!Number.isInteger(value) || value < 0 || value > 10)
      fail(`y(${n + 1}) = ${value}, expected a digit label 1..10 (10 for the digit 0)`);
    labels[n] = value % 10;
  }
  const source = X.data;
  if (!(source instanceof Uint8Array)) {
    for (let k = 0; k < source.length; k++) {
      const value = source[k];
      if (!Number.isInteger(value) || value < 0 || value > 255)
        fail(`X holds ${value}, expected 8-bit pixel values 0..255`);
    }
  }

  // Column-major (row fastest, then column, channel, image) to channel-major rows.
  const plane = height * width;
  const size = plane * channels;
  const images = new Uint8Array(count * size);
  for (let n = 0; n < count; n++) {
    for (let c = 0; c < channels; c++) {
      const base = n * size + c * plane;
      for (let col = 0; col < width; col++) {
        const from = base + col * height;
        for (let row = 0; row < height; row++) images[base + row * width + col] = source[from + row];
      }
    }
    if ((n & 4095) === 4095) await yieldToEventLoop();
  }
  return { name: `svhn/${split}`, images, labels, count, shape: [channels, height, width], classes: [...DIGITS] };
}
