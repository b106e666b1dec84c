// The datasets the command line reads: --data names a folder (or fashion-mnist, Debian's copy)
// and --format says its layout, guessed from the name when not given. Image folders come flat
// (DIR/<class>/) or split (DIR/train/ beside DIR/test/ or DIR/val/); --test-dir names test images
// kept elsewhere, --val-split holds out a stratified part of the training images instead, and
// --size and --channels say what the images become.
import { datasets, imageFolderLayout, splitStratified, stratifiedSubset, type ImageDataset } from '../../lib/index.js';
import { describe } from '../../lib/util/describe.js';
import { exists } from '../../lib/util/files.js';
import { UsageError, type OptionSpec, type OptionValues } from './options.js';

export const FORMATS = ['cifar10', 'cifar100', 'svhn', 'idx', 'fashion-mnist', 'folder'] as const;
type Format = (typeof FORMATS)[number];

export const DATA_OPTIONS: OptionSpec[] = [
  {
    name: 'data',
    kind: 'string',
    value: 'DIR',
    help:
      "the dataset's folder ('fashion-mnist': Debian's dataset-fashion-mnist); an image folder holds one " +
      'subfolder per class, or train/ and test/ (or val/) folders of them',
  },
  {
    name: 'format',
    kind: 'choice',
    value: 'NAME',
    choices: FORMATS,
    help: `${FORMATS.join(', ')} (default: from the --data name; folder otherwise)`,
  },
  {
    name: 'test-dir',
    kind: 'string',
    value: 'DIR',
    help: 'test images in a folder of their own (one subfolder per class), for an image folder',
  },
  {
    name: 'val-split',
    kind: 'number',
    value: 'F',
    help: 'hold out a stratified fraction F of the training images as the test images (seeded by --seed)',
  },
  { name: 'size', kind: 'string', value: 'HxW', help: 'resize the images of an image folder to H x W (or N x N)' },
  {
    name: 'channels',
    kind: 'choice',
    value: '1|3',
    choices: ['1', '3'],
    help: 'image folders: gray or RGB (default: gray when every image is gray)',
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

/** --size: 'HxW' or 'N' as [height, width]. */
function sizeOption(values: OptionValues): [number, number] | undefined {
  const text = values.size as string | undefined;
  if (text === undefined) return undefined;
  const match = /^(\d+)(?:x(\d+))?$/.exec(text);
  const size = match && [Number(match[1]), Number(match[2] ?? match[1])];
  if (size === null || size.some((d) => d < 1 || d > 65536))
    throw new UsageError(`--size must be HxW or N (e.g. 32x32 or 32), got ${describe(text)}`);
  return size as [number, number];
}

function valSplitOption(values: OptionValues): number | undefined {
  const fraction = values['val-split'] as number | undefined;
  if (fraction !== undefined && !(fraction > 0 && fraction < 1))
    throw new UsageError(`--val-split must be a fraction between 0 and 1 (e.g. 0.1), got ${fraction}`);
  return fraction;
}

/** The splits of --data that were asked for; `test` is absent where the data has none. */
export interface LoadedData {
  train?: ImageDataset;
  test?: ImageDataset;
  /** Why there is no test split, in the user's words, when there is none. */
  noTest?: string;
}

/**
 * Loads what a command needs of --data: the training images, the test images, or both. With
 * --val-split the test images are a stratified part of the training ones (seeded by `seed`), and
 * the training images the rest. `channels` is the channel count to decode an image folder to when
 * --channels does not say (a model's, for eval and report).
 */
export async function loadData(
  values: OptionValues,
  want: 'train' | 'test' | 'both',
  seed: number,
  channels?: number,
): Promise<LoadedData> {
  const dir = values.data as string | undefined;
  if (dir === undefined) throw new UsageError('--data is required (a dataset folder, or fashion-mnist)');
  const format = (values.format as Format | undefined) ?? guessFormat(dir);
  // The loaders of the published formats say where a missing folder comes from; a folder of images, plainly.
  if (format === 'folder' && !(await exists(dir))) throw new Error(`--data ${dir}: no such folder`);
  const testDir = values['test-dir'] as string | undefined;
  if (testDir !== undefined && format !== 'folder')
    throw new UsageError(`--test-dir goes with an image folder; ${dir} is read as ${format}`);
  if (testDir !== undefined && !(await exists(testDir))) throw new Error(`--test-dir ${testDir}: no such folder`);
  const fraction = valSplitOption(values);
  if (fraction !== undefined && testDir !== undefined)
    throw new UsageError('--val-split and --test-dir exclude each other: the test images come from one of them');
  const size = sizeOption(values);
  if ((size !== undefined || values.channels !== undefined) && format !== 'folder')
    throw new UsageError(`--size and --channels go with an image folder; ${dir} is read as ${format}`);
  let decodeTo = (values.channels === undefined ? channels : Number(values.channels)) as 1 | 3 | undefined;

  const folder = async (path: string) => {
    const data = await datasets.imageFolder(path, { size, channels: decodeTo });
    decodeTo ??= data.shape[0] as 1 | 3;
    return data;
  };
  const layout = format === 'folder' ? await imageFolderLayout(dir) : undefined;
  const load = async (split: 'train' | 'test'): Promise<ImageDataset | undefined> => {
    switch (format) {
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
      case 'folder': {
        if (split === 'train') return folder(layout!.train);
        if (testDir !== undefined) return folder(testDir);
        return layout!.test === undefined ? undefined : folder(layout!.test);
      }
    }
  };

  if (fraction !== undefined) {
    const all = (await load('train'))!;
    const [test, train] = splitStratified(all, fraction, seed);
    return { train, test };
  }
  const train = want === 'test' ? undefined : await load('train');
  const test = want === 'train' ? undefined : await load('test');
  if (train !== undefined && test !== undefined && train.classes.join('\n') !== test.classes.join('\n')) {
    throw new Error(
      `the test images have the classes ${test.classes.join(', ')}, the training images ` +
        `${train.classes.join(', ')}: the same class folders must be in both`,
    );
  }
  const noTest =
    test !== undefined || want === 'train'
      ? undefined
      : `${dir} has no test images (${layout?.layout === 'split' ? 'a train/ folder without test/ or val/' : 'one folder per class'}): ` +
        'name a folder of them with --test-dir DIR, or hold some training images out with --val-split F';
  return { train, test, noTest };
}

/** `data`, or its stratified subset of `count` images (all of them when it has fewer). */
export function withSubset(data: ImageDataset, count: number | undefined, seed: number): ImageDataset {
  return count === undefined || count >= data.count ? data : stratifiedSubset(data, count, seed);
}
