// Data: loaders for the published dataset formats, stratified subsets, shuffled batches.
import { cifar10, cifar100 } from './cifar.js';
import { fashionMnist, idx } from './idx.js';
import { imageFolder } from './image-folder.js';
import { svhn } from './svhn.js';

/**
 * Loaders, each `(dir, { split: 'train' | 'test' })` -> Promise<ImageDataset>:
 * `cifar10`, `cifar100` (binary versions), `svhn` (`*_32x32.mat`), `idx` (MNIST-style
 * files, plain or gzip), `fashionMnist` (IDX with Fashion-MNIST's class names, by default
 * from Debian's dataset-fashion-mnist) and `imageFolder` (one subfolder of PNG/JPEG per class).
 */
export const datasets = Object.freeze({ cifar10, cifar100, svhn, idx, fashionMnist, imageFolder });

export { DataFileError, classCounts, isStreamed, subset, type ImageDataset, type ImageSource } from './dataset.js';
export type { LoadOptions, Split } from './files.js';
export type { Cifar100Options } from './cifar.js';
export type { SvhnOptions } from './svhn.js';
export { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, type IdxOptions } from './idx.js';
export type { ImageFolderOptions } from './image-folder.js';
export { stratifiedSubset, splitStratified, stratifiedQuotas } from './subset.js';
export { batches, batchesAsync, batchCount, epochOrder, type Batch, type BatchOptions } from './batches.js';
