// dna train: a WideResNet trained with a searched policy or a baseline.
import { train, type Augmentation, type PresetName, type TrainResult } from '../../lib/index.js';
import type { Command } from '../cli/command.js';
import {
  RUN_GROUP,
  applyThreads,
  deviceOption,
  evalCommand,
  executionOption,
  loadCustomOps,
  modelOf,
  note,
  option,
  preprocessOption,
  resumeCommand,
  runSession,
} from '../cli/common.js';
import { DATA_OPTIONS, SUBSET_OPTION, loadData, withSubset } from '../cli/data.js';
import { UsageError, type OptionValues } from '../cli/options.js';
import { formatDuration, isMainRank, plural } from '../cli/progress.js';

const percent = (x: number) => `${(100 * x).toFixed(2)}%`;

/** What a finished or stopped run tells its user: how far it got, the test figures, the files, what to run next. */
function printSummary(result: TrainResult, v: OptionValues, epochs: number): void {
  const took = formatDuration(result.seconds);
  if (result.aborted) {
    console.log(
      `stopped in epoch ${Math.min(epochs, result.epochs + 1)}/${epochs} after step ${result.steps}, ` +
        `${took} in all`,
    );
  } else if (result.resumedFrom !== undefined && result.resumedFrom.epoch >= epochs) {
    console.log(`the run had finished: ${plural(result.epochs, 'epoch')} in ${took}`);
  } else {
    const resumed = result.resumedFrom === undefined ? '' : ` (resumed after step ${result.resumedFrom.step})`;
    console.log(`trained ${plural(result.epochs, 'epoch')} in ${took}${resumed}`);
  }
  if (result.testAccuracy !== undefined) {
    console.log(
      `test accuracy ${percent(result.testAccuracy)} (error ${percent(1 - result.testAccuracy)}), best ` +
        `${percent(result.bestTestAccuracy ?? result.testAccuracy)}`,
    );
  }
  const files: [string, string | undefined][] = [
    ['checkpoint', result.checkpoints?.last],
    ['best', result.checkpoints?.best],
    ['metrics', result.metrics],
    ['steps', result.stepLog],
  ];
  for (const [label, file] of files) if (file !== undefined) console.log(`${label.padEnd(11)}${file}`);
  if (result.aborted) console.log(`continue   ${resumeCommand()}`);
  else {
    // Only a run that had test images can point to them again.
    const model = result.checkpoints?.best ?? result.checkpoints?.last;
    if (model !== undefined && result.testAccuracy !== undefined) console.log(`evaluate   ${evalCommand(model, v)}`);
  }
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a WideResNet with a searched policy (--policy FILE) or a baseline',
  usage: 'dna train --data DIR [options]',
  description:
    'Trains a WideResNet with SGD and a cosine schedule, augmenting every image with a searched policy (--policy) ' +
    'or a baseline (--augmentation), and evaluates it on the test images after every epoch (--eval-every). ' +
    'Writes train.last.ckpt, train.best.ckpt, metrics.jsonl and train.run.json into --out. The defaults are ' +
    "the paper's CIFAR settings (WRN-40-2, 200 epochs): on a CPU, take a smaller --model and fewer --epochs.",
  groups: [
    {
      title: 'Data',
      options: [
        ...DATA_OPTIONS,
        SUBSET_OPTION,
        { name: 'test-subset', kind: 'integer', min: 1, value: 'N', help: 'evaluate on a stratified N test images' },
      ],
    },
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
        option.importModule(),
        option.preset(),
        option.preprocess(),
        option.seed(),
        {
          name: 'eval-every',
          kind: 'integer',
          min: 1,
          value: 'K',
          help: 'evaluate every K epochs, and after the last (default 1)',
        },
      ],
    },
    {
      title: 'Output',
      options: [
        option.out('checkpoints and metrics.jsonl (default runs/train)'),
        option.resume('continue from DIR/train.last.ckpt (same settings; --device, --threads may change)'),
        option.force('train'),
        option.logEvery(),
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
    await loadCustomOps(v);
    const augmentation = (v.policy !== undefined ? 'dna' : (v.augmentation ?? 'none')) as Augmentation;
    const seed = (v.seed as number | undefined) ?? 0;
    const loaded = await loadData(v, 'both', seed);
    const trainData = withSubset(loaded.train!, v.subset as number | undefined, seed);
    const testData = loaded.test && withSubset(loaded.test, v['test-subset'] as number | undefined, seed);
    if (loaded.noTest !== undefined) note(`note: ${loaded.noTest}; the run is not evaluated`);
    const epochs = (v.epochs as number | undefined) ?? (preset === undefined ? 200 : undefined);
    const session = runSession(v, {
      label: 'epoch',
      device,
      defaultOut: 'runs/train',
      advice:
        v.model === undefined && v.epochs === undefined && preset === undefined
          ? "the defaults are the paper's (WRN-40-2, 200 epochs): try --model wrn-16-1 --epochs 10"
          : 'a smaller --model, fewer --epochs or a --subset make it shorter',
    });
    let result: TrainResult;
    try {
      result = await train({
        train: trainData,
        test: testData,
        preset,
        model,
        epochs,
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
        evaluateEvery: v['eval-every'] as number | undefined,
        ...session.options,
      });
    } finally {
      session.finish();
    }
    const summary = {
      aborted: result.aborted,
      epochs: result.epochs,
      steps: result.steps,
      resumedFrom: result.resumedFrom,
      testAccuracy: result.testAccuracy,
      bestTestAccuracy: result.bestTestAccuracy,
      testError: result.testAccuracy === undefined ? undefined : 1 - result.testAccuracy,
      seconds: result.seconds,
      checkpoints: result.checkpoints,
      metrics: result.metrics,
      stepLog: result.stepLog,
    };
    result.model.dispose();
    if (!isMainRank()) return;
    if (v.json) console.log(JSON.stringify(summary));
    else printSummary(result, v, epochs ?? result.epochs);
  },
};
