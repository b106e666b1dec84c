// dna demo: the whole pipeline on Fashion-MNIST in about two minutes.
import path from 'node:path';

import { BASELINES, RunExistsError, datasets, demo, type BaselineName, type DemoResult } from '../../lib/index.js';
import type { Command } from '../cli/command.js';
import {
  OBJECTIVE_OPTIONS,
  RUN_GROUP,
  applyThreads,
  deviceOption,
  executionOption,
  checkPolicyModel,
  modelOf,
  objectiveOptions,
  option,
} from '../cli/common.js';
import { stopOnInterrupt } from '../cli/interrupt.js';
import { UsageError } from '../cli/options.js';
import { formatDuration, isMainRank } from '../cli/progress.js';
import { describe } from '../../lib/util/describe.js';
import { demoSearchObjective } from '../../lib/run/demo.js';

const count = (name: string, help: string) => ({ name, kind: 'integer' as const, min: 1, value: 'N', help });

export const demoCommand: Command = {
  name: 'demo',
  summary: 'the whole pipeline on Fashion-MNIST in a few minutes: search, train, evaluate, report',
  usage: 'dna demo [options]',
  description:
    'Searches a policy on a stratified subset of Fashion-MNIST, trains a WRN-16-1 with it (frozen; each image gets ' +
    'its own sub-policy), evaluates it on the test images and writes the per-class report, all into --out. Every ' +
    'size is an option; --compare also trains baselines at the same budget. The search, unless --objective ' +
    'says otherwise, is the measured best (see the README): invariance with prior 1, rise target 1 and change reward 1, ' +
    "magnitude ranges, a head on the classifier's features and 4 draws per image.",
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
        option.policyModel('the policy network, with --policy-head network (default wrn-10-1)'),
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
      title: 'Objective (default: the measured best, above)',
      options: OBJECTIVE_OPTIONS,
    },
    {
      title: 'Output',
      options: [
        option.out('where everything goes (default runs/demo)'),
        { name: 'force', kind: 'flag', help: 'start over in a --out that holds an earlier demo, deleting its runs' },
      ],
    },
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
      if (tty) process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns || 80) - 1)}`);
      else console.log(line);
    };
    const objective = objectiveOptions(v);
    checkPolicyModel(v, demoSearchObjective(objective).policyHead ?? 'network');
    let result: Awaited<ReturnType<typeof demo>>;
    try {
      result = await demo({
        outDir,
        force: v.force === true,
        data,
        searchImages: v['search-images'] as number | undefined,
        searchEpochs: v['search-epochs'] as number | undefined,
        trainImages: v['train-images'] as number | undefined,
        trainEpochs: v['train-epochs'] as number | undefined,
        testImages: v['test-images'] as number | undefined,
        classifier: modelOf(v.model),
        policy: modelOf(v['policy-model']),
        compare: compare as BaselineName[],
        ...objective,
        seed: (v.seed as number | undefined) ?? 0,
        device,
        execution,
        signal: interrupt.signal,
        onProgress: (event) => {
          const elapsed = formatDuration((performance.now() - started) / 1000);
          if (event.stage === 'search') {
            const p = event.progress;
            if (p.phase === 'start') return;
            if (tty || p.phase === 'epoch')
              say(
                `[${elapsed}] search  epoch ${p.phase === 'epoch' ? p.epoch : p.epoch + 1}/${p.epochs}  step ` +
                  `${p.step}/${p.steps}  loss ${p.loss.toFixed(3)}`,
              );
          } else if (event.stage === 'train') {
            const p = event.progress;
            if (p.phase === 'start') return;
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
    } catch (error) {
      if (error instanceof RunExistsError)
        throw new UsageError(
          `${outDir} holds an earlier demo; --force starts over, or --out DIR puts this one elsewhere`,
        );
      throw error;
    } finally {
      interrupt.release();
    }
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
    console.log(demoSummary(result, (performance.now() - started) / 1000, process.cwd()));
  },
};

/**
 * What dna demo prints at its end: the time, the search, each training run, the report. Paths are
 * as the user would type them, relative to `cwd` when inside it, so that the lines fit 80 columns.
 */
export function demoSummary(result: DemoResult, seconds: number, cwd: string): string {
  const shown = (file: string) => {
    const relative = path.relative(cwd, file);
    return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
  };
  const nameWidth = Math.max(...result.runs.map((run) => run.augmentation.length));
  const report = result.report!;
  return [
    `\nDNA on ${result.dataset}, done in ${formatDuration(seconds)}`,
    `search   ${result.search!.images} images, ${result.search!.epochs} epochs ` +
      `(${formatDuration(result.search!.seconds)}): ${shown(result.search!.policyFile)}`,
    ...result.runs.map(
      (run) =>
        `train    ${run.augmentation.padEnd(nameWidth)}  test error ${(100 * run.testError).toFixed(2)}%  ` +
        `(${formatDuration(run.seconds)}): ${shown(run.checkpoint)}`,
    ),
    ...result.search!.warnings.map((warning) => `warning  ${warning}`),
    `report   ${shown(report.markdown)}${report.examples === undefined ? '' : ', pictures in examples.png'}`,
    `summary  ${shown(result.summaryFile!)}`,
  ].join('\n');
}
