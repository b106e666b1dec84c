// dna demo: the whole pipeline on Fashion-MNIST in about two minutes.
import path from 'node:path';

import { BASELINES, datasets, demo, type BaselineName } from '../../lib/index.js';
import type { Command } from '../cli/command.js';
import {
  OBJECTIVE_OPTIONS,
  RUN_GROUP,
  applyThreads,
  deviceOption,
  executionOption,
  modelOf,
  objectiveOptions,
  option,
} from '../cli/common.js';
import { stopOnInterrupt } from '../cli/interrupt.js';
import { UsageError } from '../cli/options.js';
import { formatDuration, isMainRank } from '../cli/progress.js';
import { describe } from '../../lib/util/describe.js';

const count = (name: string, help: string) => ({ name, kind: 'integer' as const, min: 1, value: 'N', help });

export const demoCommand: Command = {
  name: 'demo',
  summary: 'the whole pipeline on Fashion-MNIST in about 2 minutes: search, train, evaluate, report',
  usage: 'dna demo [options]',
  description:
    'Searches a policy on a stratified subset of Fashion-MNIST, trains a WRN-16-1 with it (frozen; each image gets ' +
    'its own sub-policy), evaluates it on the test images and writes the per-class report, all into --out. Every ' +
    'size is an option; --compare also trains baselines at the same budget.',
  groups: [
    {
      title: 'Data and budget',
      options: [
        {
          name: 'data',
          kind: 'string',
          value: 'DIR',
          help: "Fashion-MNIST IDX files (default: Debian's dataset-fashion-mnist)",
        },
        count('search-images', 'stratified search subset (default 2000)'),
        count('search-epochs', 'search epochs (default 8)'),
        count('train-images', 'stratified training subset (default 6000)'),
        count('train-epochs', 'training epochs (default 6)'),
        count('test-images', 'stratified test subset (default all 10,000)'),
        option.model('the classifier (default wrn-16-1)'),
        option.policyModel('the policy network (default wrn-10-1)'),
        {
          name: 'compare',
          kind: 'string',
          value: 'NAMES',
          help: `also train baselines with the same budget, comma-separated: ${Object.keys(BASELINES).join(', ')}`,
        },
        option.seed(),
      ],
    },
    {
      title: 'Objective (default: invariance, change reward 1, entropy floor 2: measured best, see the README)',
      options: OBJECTIVE_OPTIONS,
    },
    { title: 'Output', options: [option.out('where everything goes (default runs/demo)')] },
    RUN_GROUP,
  ],
  async run(v) {
    applyThreads(v);
    const execution = executionOption(v);
    const device = deviceOption(v);
    const compare = v.compare === undefined ? [] : (v.compare as string).split(',').map((name) => name.trim());
    for (const name of compare) {
      if (!Object.hasOwn(BASELINES, name))
        throw new UsageError(`--compare must be one of ${Object.keys(BASELINES).join(', ')}, got ${describe(name)}`);
    }
    const dir = v.data as string | undefined;
    const data =
      dir === undefined
        ? undefined
        : {
            train: await datasets.fashionMnist(dir, { split: 'train' }),
            test: await datasets.fashionMnist(dir, { split: 'test' }),
          };
    const outDir = path.resolve((v.out as string | undefined) ?? 'runs/demo');
    const interrupt = stopOnInterrupt();
    const tty = process.stderr.isTTY === true && !v.json;
    const started = performance.now();
    const say = (line: string) => {
      if (v.json || !isMainRank()) return;
      if (tty) process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns ?? 80) - 1)}`);
      else console.log(line);
    };
    const result = await demo({
      outDir,
      data,
      searchImages: v['search-images'] as number | undefined,
      searchEpochs: v['search-epochs'] as number | undefined,
      trainImages: v['train-images'] as number | undefined,
      trainEpochs: v['train-epochs'] as number | undefined,
      testImages: v['test-images'] as number | undefined,
      classifier: modelOf(v.model),
      policy: modelOf(v['policy-model']),
      compare: compare as BaselineName[],
      ...objectiveOptions(v),
      seed: (v.seed as number | undefined) ?? 0,
      device,
      execution,
      signal: interrupt.signal,
      onProgress: (event) => {
        const elapsed = formatDuration((performance.now() - started) / 1000);
        if (event.stage === 'search') {
          const p = event.progress;
          if (tty || p.phase === 'epoch')
            say(
              `[${elapsed}] search  epoch ${p.phase === 'epoch' ? p.epoch : p.epoch + 1}/${p.epochs}  step ` +
                `${p.step}/${p.steps}  loss ${p.loss.toFixed(3)}`,
            );
        } else if (event.stage === 'train') {
          const p = event.progress;
          if (tty || p.phase === 'epoch')
            say(
              `[${elapsed}] train (${event.augmentation})  epoch ` +
                `${p.phase === 'epoch' ? p.epoch : p.epoch + 1}/${p.epochs}  step ${p.step}/${p.steps}  loss ` +
                `${p.loss.toFixed(3)}  ${Math.round(p.imagesPerSecond)} img/s`,
            );
        } else {
          say(`[${elapsed}] report`);
        }
      },
    });
    interrupt.release();
    if (tty) process.stderr.write('\n');
    if (!isMainRank()) return;
    if (v.json) {
      console.log(JSON.stringify(result));
      return;
    }
    if (result.aborted) {
      console.log(`stopped; what was done is in ${outDir}`);
      return;
    }
    console.log(`\nDNA on ${result.dataset}, done in ${formatDuration((performance.now() - started) / 1000)}`);
    console.log(
      `search   ${result.search!.images} images, ${result.search!.epochs} epochs ` +
        `(${formatDuration(result.search!.seconds)}): ${result.search!.policyFile}`,
    );
    for (const run of result.runs)
      console.log(
        `train    ${run.augmentation.padEnd(14)} test error ${(100 * run.testError).toFixed(2)}%  ` +
          `(${formatDuration(run.seconds)}): ${run.checkpoint}`,
      );
    for (const warning of result.search!.warnings) console.log(`warning  ${warning}`);
    console.log(`report   ${result.report!.markdown}`);
    console.log(`summary  ${result.summaryFile}`);
  },
};
