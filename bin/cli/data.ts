// The datasets the command line reads: --data names a folder (or fashion-mnist, Debian's copy)
// and --format says its layout, guessed from the name when not given.
import { datasets, stratifiedSubset, type ImageDataset } from '../../lib/index.js';
import { UsageError, type OptionSpec, type OptionValues } from './options.js';

export const FORMATS = ['cifar10', 'cifar100', 'svhn', 'idx', 'fashion-mnist', 'folder'] as const;
type Format = (typeof FORMATS)[number];

export const DATA_OPTIONS: OptionSpec[] = [
  {
    name: 'data',
    kind: 'string',
    value: 'DIR',
    help: "the dataset's folder ('fashion-mnist': Debian's dataset-fashion-mnist)",
  },
  {
    name: 'format',
    kind: 'choice',
    value: 'NAME',
    choices: FORMATS,
    help: `${FORMATS.join(', ')} (default: from the --data name)`,
  },
];

export const SUBSET_OPTION: OptionSpec = {
  name: 'subset',
  kind: 'integer',
  min: 1,
  value: 'N',
  help: 'a stratified subset of N images',
};

function guessFormat(dir: string): Format {
  if (dir === 'fashion-mnist') return 'fashion-mnist';
  if (/cifar-?100/i.test(dir)) return 'cifar100';
  if (/cifar/i.test(dir)) return 'cifar10';
  if (/svhn/i.test(dir)) return 'svhn';
  if (/mnist/i.test(dir)) return 'idx';
  return 'folder';
}

/** The split of the dataset that --data and --format name. */
export async function loadData(values: OptionValues, split: 'train' | 'test'): Promise<ImageDataset> {
  const dir = values.data as string | undefined;
  if (dir === undefined) throw new UsageError('--data is required (a dataset folder, or fashion-mnist)');
  switch ((values.format as Format | undefined) ?? guessFormat(dir)) {
    case 'cifar10':
      return datasets.cifar10(dir, { split });
    case 'cifar100':
      return datasets.cifar100(dir, { split });
    case 'svhn':
      return datasets.svhn(dir, { split });
    case 'idx':
      return datasets.idx(dir, { split });
    case 'fashion-mnist':
      return dir === 'fashion-mnist' ? datasets.fashionMnist({ split }) : datasets.fashionMnist(dir, { split });
    case 'folder':
      return datasets.imageFolder(dir, { split });
  }
}

/** `data`, or its stratified subset of --subset images. */
export function withSubset(data: ImageDataset, values: OptionValues, seed: number): ImageDataset {
  return values.subset === undefined ? data : stratifiedSubset(data, values.subset as number, seed);
}
