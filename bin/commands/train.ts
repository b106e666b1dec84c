// dna train: a WideResNet trained with a searched policy or a baseline.
import { train, type Augmentation, type PresetName } from '../../lib/index.js';
import type { Command } from '../cli/command.js';
import {
  RUN_GROUP,
  applyThreads,
  deviceOption,
  executionOption,
  loadOpLibraries,
  modelOf,
  option,
  preprocessOption,
} from '../cli/common.js';
import { DATA_OPTIONS, SUBSET_OPTION, loadData, withSubset } from '../cli/data.js';
import { stopOnInterrupt } from '../cli/interrupt.js';
import { UsageError } from '../cli/options.js';
import { formatDuration, plural, progressPrinter, isMainRank } from '../cli/progress.js';

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a WideResNet with a searched policy (--policy FILE) or a baseline',
  usage: 'dna train --data DIR [options]',
  description:
    'Trains a WideResNet with SGD and a cosine schedule, augmenting every image with a searched policy (--policy) ' +
    'or a baseline (--augmentation), and evaluates it on the test split after every epoch. Writes ' +
    'train.last.ckpt, train.best.ckpt and metrics.jsonl into --out.',
  groups: [
    { title: 'Data', options: [...DATA_OPTIONS, SUBSET_OPTION] },
    {
      title: 'Training',
      options: [
        option.model('wrn-40-2 (default), wrn-28-10, wrn-28-2, wrn-16-1 or wrn-10-1'),
        option.epochs('epochs (default 200)'),
        option.batchSize('images per step (default 128)'),
        option.lr('SGD learning rate (default 0.1)'),
        { name: 'weight-decay', kind: 'number', value: 'X', help: 'SGD weight decay (default 2e-4)' },
        {
          name: 'policy',
          kind: 'string',
          value: 'FILE',
          help: 'augment with a searched policy (policy.dna from dna search)',
        },
        {
          name: 'marginal',
          kind: 'flag',
          help:
            "with --policy: each image draws from another image's policy (the policy's marginal, no conditioning: " +
            'the ablation that says what looking at each image is worth)',
        },
        option.augmentation(),
        option.opLibrary(),
        option.preset(),
        option.preprocess(),
        option.seed(),
      ],
    },
    {
      title: 'Output',
      options: [
        option.out('checkpoints and metrics.jsonl (default runs/train)'),
        option.resume('continue from DIR/train.last.ckpt'),
      ],
    },
    RUN_GROUP,
  ],
  async run(v) {
    applyThreads(v);
    const execution = executionOption(v);
    const preset = v.preset as PresetName | undefined;
    const model = modelOf(v.model ?? (preset === undefined ? 'wrn-40-2' : undefined));
    if (v.policy !== undefined && v.augmentation !== undefined)
      throw new UsageError('--policy and --augmentation exclude each other');
    if (v.marginal === true && v.policy === undefined) throw new UsageError('--marginal needs --policy FILE');
    const device = deviceOption(v);
    loadOpLibraries(v);
    const augmentation = (v.policy !== undefined ? 'dna' : (v.augmentation ?? 'none')) as Augmentation;
    const seed = (v.seed as number | undefined) ?? 0;
    const trainData = withSubset(await loadData(v, 'train'), v, seed);
    const testData = await loadData(v, 'test');
    const interrupt = stopOnInterrupt();
    const result = await train({
      train: trainData,
      test: testData,
      preset,
      model,
      epochs: (v.epochs as number | undefined) ?? (preset === undefined ? 200 : undefined),
      batchSize: (v['batch-size'] as number | undefined) ?? (preset === undefined ? 128 : undefined),
      lr: v.lr as number | undefined,
      weightDecay: v['weight-decay'] as number | undefined,
      augmentation,
      policyFile: v.policy as string | undefined,
      policyMarginal: v.marginal === true,
      preprocess: preprocessOption(v, trainData, preset),
      seed,
      device,
      execution,
      outDir: (v.out as string | undefined) ?? 'runs/train',
      resume: v.resume === true,
      signal: interrupt.signal,
      onProgress: progressPrinter('epoch', v.json === true),
    });
    interrupt.release();
    const summary = {
      aborted: result.aborted,
      epochs: result.epochs,
      steps: result.steps,
      testAccuracy: result.testAccuracy,
      bestTestAccuracy: result.bestTestAccuracy,
      testError: result.testAccuracy === undefined ? undefined : 1 - result.testAccuracy,
      seconds: result.seconds,
      checkpoints: result.checkpoints,
      metrics: result.metrics,
    };
    result.model.dispose();
    if (!isMainRank()) return;
    if (v.json) {
      console.log(JSON.stringify(summary));
      return;
    }
    console.log(
      result.aborted
        ? `stopped after epoch ${result.epochs}, step ${result.steps}; resume with --resume`
        : `trained ${plural(result.epochs, 'epoch')} in ${formatDuration(result.seconds)}`,
    );
    if (summary.testError !== undefined)
      console.log(
        `test error ${(100 * summary.testError).toFixed(2)}% (best accuracy ` +
          `${(100 * (result.bestTestAccuracy ?? 0)).toFixed(2)}%)`,
      );
    console.log(`checkpoints ${result.checkpoints?.last}, ${result.checkpoints?.best}`);
    console.log(`metrics     ${result.metrics}`);
  },
};
