// dna eval: the test accuracy of a trained model.
import { evaluate, loadTrainedModel } from '../../lib/index.js';
import type { Command } from '../cli/command.js';
import { RUN_GROUP, applyThreads, deviceOption, executionOption } from '../cli/common.js';
import { DATA_OPTIONS, loadData } from '../cli/data.js';
import { UsageError } from '../cli/options.js';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'test accuracy of a trained model',
  usage: 'dna eval --checkpoint FILE --data DIR [options]',
  description:
    'Loads a model from a training checkpoint and evaluates it on the test split of --data: accuracy, error and ' +
    'mean loss.',
  groups: [
    {
      title: 'Model and data',
      options: [
        {
          name: 'checkpoint',
          kind: 'string',
          value: 'FILE',
          help: 'a train.last.ckpt or train.best.ckpt written by dna train',
        },
        ...DATA_OPTIONS,
        { name: 'batch-size', kind: 'integer', min: 1, value: 'N', help: 'images per forward pass (default 256)' },
      ],
    },
    RUN_GROUP,
  ],
  async run(v) {
    if (v.checkpoint === undefined)
      throw new UsageError('--checkpoint is required (a train.last.ckpt or train.best.ckpt)');
    applyThreads(v);
    const execution = executionOption(v);
    const device = deviceOption(v);
    const file = v.checkpoint as string;
    const model = await loadTrainedModel(file, { device, execution });
    try {
      const data = await loadData(v, 'test');
      if (data.classes.length !== model.config.classes || data.shape[0] !== model.config.inChannels) {
        throw new Error(
          `${file} is a model of ${model.config.classes} classes and ${model.config.inChannels} channels; the data ` +
            `has ${data.classes.length} classes and ${data.shape[0]} channels`,
        );
      }
      const result = await evaluate({ model, data, device, batchSize: (v['batch-size'] as number | undefined) ?? 256 });
      if (v.json) console.log(JSON.stringify({ ...result, testError: 1 - result.accuracy }));
      else
        console.log(
          `accuracy ${(100 * result.accuracy).toFixed(2)}%  error ${(100 * (1 - result.accuracy)).toFixed(2)}%  ` +
            `loss ${result.loss.toFixed(4)}  (${result.count} images)`,
        );
    } finally {
      model.dispose();
    }
  },
};
