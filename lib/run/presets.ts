// The paper's settings per dataset (SPEC 1.5): search subset, epochs, batch sizes, learning
// rates, networks and baseline preprocessing for the search and the training phase. `search`
// and `train` take `preset` and let every explicit option override it.
import { describe } from '../util/describe.js';
import { WRN_28_10, WRN_40_2, type WideResNetPreset } from '../engine/models.js';

export interface SearchPreset {
  subset: number;
  epochs: number;
  batchSize: number;
  classifierLr: number;
  classifier: WideResNetPreset;
  policy: WideResNetPreset;
  preprocess: 'cifar' | 'svhn' | 'none';
}

export interface TrainPreset {
  epochs: number;
  batchSize: number;
  lr: number;
  nesterov: boolean;
  model: WideResNetPreset;
  preprocess: 'cifar' | 'svhn' | 'none';
}

export interface DatasetPreset {
  search: SearchPreset;
  train: TrainPreset;
}

const cifar10: DatasetPreset = {
  search: {
    subset: 4000,
    epochs: 20,
    batchSize: 128,
    classifierLr: 0.1,
    classifier: WRN_40_2,
    policy: WRN_40_2,
    preprocess: 'cifar',
  },
  train: { epochs: 200, batchSize: 512, lr: 0.1, nesterov: true, model: WRN_40_2, preprocess: 'cifar' },
};

/** The DNA paper's hyperparameters for CIFAR-10, CIFAR-100 and SVHN (core). */
export const PAPER_PRESETS: Readonly<Record<'cifar10' | 'cifar100' | 'svhn', DatasetPreset>> = Object.freeze({
  cifar10,
  cifar100: {
    search: { ...cifar10.search, batchSize: 32, classifierLr: 0.025 },
    train: cifar10.train,
  },
  svhn: {
    search: {
      subset: 1000,
      epochs: 20,
      batchSize: 32,
      classifierLr: 0.025,
      classifier: WRN_28_10,
      policy: WRN_28_10,
      preprocess: 'svhn',
    },
    train: { epochs: 200, batchSize: 512, lr: 0.01, nesterov: true, model: WRN_28_10, preprocess: 'svhn' },
  },
});

export type PresetName = keyof typeof PAPER_PRESETS;

/** The preset called `name`, or a RangeError listing the presets. */
export function datasetPreset(name: string | undefined, where: string): DatasetPreset | undefined {
  if (name === undefined) return undefined;
  if (typeof name !== 'string' || !Object.hasOwn(PAPER_PRESETS, name)) {
    throw new RangeError(
      `${where}: unknown preset ${describe(name)} (one of ${Object.keys(PAPER_PRESETS).join(', ')})`,
    );
  }
  return (PAPER_PRESETS as Record<string, DatasetPreset>)[name];
}
