// A training run's checkpoint: its kind and version, and the model (with the class names) that a
// run saved, ready to evaluate.
import { loadCheckpoint } from '../engine/checkpoint.js';
import { Module, checkRecordedNetwork, executionOptions, wideResNet, type Execution } from '../engine/models.js';
import type { Device } from '../engine/tensor.js';
import { optionsObject } from '../util/describe.js';
import { recordedModule, withPrefix } from './run-state.js';

export const CHECKPOINT_KIND = 'dna-augment/train';
export const CHECKPOINT_VERSION = 2;

/** The model a training checkpoint holds (weights and architecture), ready to evaluate. */
export async function loadTrainedModel(
  file: string,
  options: { device?: Device; execution?: Execution } = {},
): Promise<Module> {
  return (await loadTrainedRun(file, options, 'loadTrainedModel')).model;
}

/** A trained model and what its run recorded: the class names in label order (absent in older files). */
export interface TrainedRun {
  model: Module;
  classes?: string[];
}

/** The model a training checkpoint holds, and the class names its training data had. */
export async function loadTrainedRun(
  file: string,
  options: { device?: Device; execution?: Execution } = {},
  where = 'loadTrainedRun',
): Promise<TrainedRun> {
  const { device, execution: settings } = optionsObject(options, where);
  const execution = executionOptions(settings, where);
  const checkpoint = await loadCheckpoint(file, {
    kind: CHECKPOINT_KIND,
    what: 'a training checkpoint (a train.last.ckpt or train.best.ckpt written by train)',
  });
  try {
    const recorded = recordedModule(checkpoint.meta, 'model', CHECKPOINT_VERSION);
    if (recorded?.kind !== 'wideResNet') {
      throw new Error(
        `${file}: not a training checkpoint this version can read (version ` +
          `${String((checkpoint.meta as { version?: unknown } | null)?.version)})`,
      );
    }
    const { kind: _kind, ...config } = recorded;
    const weights = withPrefix(checkpoint.tensors, 'model.');
    checkRecordedNetwork(config, weights, file);
    const run = (checkpoint.meta as { run?: { classes?: unknown } } | null)?.run;
    const classes =
      Array.isArray(run?.classes) && run.classes.every((name) => typeof name === 'string')
        ? (run.classes as string[])
        : undefined;
    const model = wideResNet(config);
    try {
      model.loadStateDict(weights);
      return { model: model.to(device ?? 'cpu').setExecution(execution), classes };
    } catch (error) {
      model.dispose();
      throw error;
    }
  } finally {
    for (const t of Object.values(checkpoint.tensors)) t.dispose();
  }
}
