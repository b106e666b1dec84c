// Tiny datasets for tests that run many steps or many processes: 8x8 images, two classes by
// default, every pixel a fixed function of (image, position); and the same in IDX files for the CLI.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { idxFile, idxImages } from './data-files.js';

// In bench/ (the memory benches use it too, and bench/ ships with the package).
export { tinyDataset } from '../../bench/common.js';

/** An IDX dataset folder (train and t10k files, 8x8, labels 0..9) for `dna --data DIR --format idx`. */
export function writeTinyIdx(dir: string, trainCount: number, testCount: number): string {
  mkdirSync(dir, { recursive: true });
  const labels = (count: number) =>
    idxFile(
      [count],
      Uint8Array.from({ length: count }, (_, i) => i % 10),
    );
  writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxImages(0, trainCount, 8, 8));
  writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), labels(trainCount));
  writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), idxImages(trainCount, testCount, 8, 8));
  writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), labels(testCount));
  return dir;
}
