// dna eval: the test accuracy of a trained model, overall and per class, with its confusion matrix
// (as text when it fits the terminal, and always as an SVG beside the checkpoint).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { evaluate, loadTrainedRun, type EvaluateResult } from '../../lib/index.js';
import { confusionSpec, renderSvg } from '../../lib/util/plots.js';
import type { Command } from '../cli/command.js';
import { RUN_GROUP, applyThreads, deviceOption, executionOption, option } from '../cli/common.js';
import { DATA_OPTIONS, loadData, withSubset } from '../cli/data.js';
import { UsageError } from '../cli/options.js';

const percent = (x: number | null, digits = 1) => (x === null ? '-' : `${(100 * x).toFixed(digits)}%`);

/** Per class: images, accuracy and the class it is most often taken for. */
function perClassLines(result: EvaluateResult): string[] {
  const confusion = result.confusion!;
  const classes = result.perClass!;
  const name = Math.min(24, Math.max(5, ...classes.map((c, k) => `${k} ${c.name}`.length)));
  const lines = [`${'class'.padEnd(name)}  images  accuracy  most often taken for`];
  classes.forEach((c, k) => {
    const row = confusion[k];
    let other = -1;
    for (let j = 0; j < row.length; j++) if (j !== k && row[j] > 0 && (other < 0 || row[j] > row[other])) other = j;
    const taken =
      other < 0 || c.images === 0 ? '' : `${other} ${classes[other].name} (${percent(row[other] / c.images)})`;
    lines.push(
      `${`${k} ${c.name}`.slice(0, name).padEnd(name)}  ${String(c.images).padStart(6)}  ${percent(c.accuracy).padStart(8)}  ${taken}`,
    );
  });
  return lines;
}

/** The confusion matrix as text (rows: true class, columns: predicted), or undefined when wider than `width`. */
function confusionLines(confusion: number[][], width: number): string[] | undefined {
  const cell = Math.max(3, ...confusion.flat().map((n) => String(n).length)) + 1;
  const label = String(confusion.length - 1).length + 2;
  if (label + cell * confusion.length > width - 1) return undefined;
  const header = ' '.repeat(label) + confusion.map((_, j) => String(j).padStart(cell)).join('');
  return [
    'confusion matrix (rows: true class, columns: predicted class)',
    header,
    ...confusion.map(
      (row, i) => `${String(i).padStart(label - 2)}  ${row.map((n) => String(n).padStart(cell)).join('')}`,
    ),
  ];
}

export const evalCommand: Command = {
  name: 'eval',
  summary: 'test accuracy of a trained model, per class and as a confusion matrix',
  usage: 'dna eval --checkpoint FILE --data DIR [options]',
  description:
    'Loads a model from a training checkpoint and evaluates it on the test images of --data: accuracy, error, ' +
    'mean loss, the accuracy of each class and the confusion matrix (printed when it fits, and written as ' +
    'confusion.svg with eval.json into --out).',
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
        { name: 'test-subset', kind: 'integer', min: 1, value: 'N', help: 'a stratified N of the test images' },
        option.seed(),
        { name: 'batch-size', kind: 'integer', min: 1, value: 'N', help: 'images per forward pass (default 256)' },
      ],
    },
    { title: 'Output', options: [option.out('confusion.svg and eval.json (default: eval/ beside the checkpoint)')] },
    RUN_GROUP,
  ],
  async run(v) {
    if (v.checkpoint === undefined)
      throw new UsageError('--checkpoint is required (a train.last.ckpt or train.best.ckpt)');
    applyThreads(v);
    const execution = executionOption(v);
    const device = deviceOption(v);
    const file = v.checkpoint as string;
    const seed = (v.seed as number | undefined) ?? 0;
    const { model, classes } = await loadTrainedRun(file, { device, execution });
    try {
      const loaded = await loadData(v, 'test', seed, model.config.inChannels);
      if (loaded.test === undefined) throw new UsageError(loaded.noTest!);
      const data = withSubset(loaded.test, v['test-subset'] as number | undefined, seed);
      if (data.classes.length !== model.config.classes || data.shape[0] !== model.config.inChannels) {
        throw new Error(
          `${file} is a model of ${model.config.classes} classes and ${model.config.inChannels} channels; the data ` +
            `has ${data.classes.length} classes and ${data.shape[0]} channels`,
        );
      }
      if (classes !== undefined && classes.join('\n') !== data.classes.join('\n')) {
        throw new Error(
          `${file} was trained on the classes ${classes.join(', ')} (in this order); the data has ` +
            `${data.classes.join(', ')}: its labels would be read as other classes`,
        );
      }
      const result = await evaluate({
        model,
        data,
        device,
        batchSize: (v['batch-size'] as number | undefined) ?? 256,
        perClass: true,
      });
      const outDir = path.resolve((v.out as string | undefined) ?? path.join(path.dirname(file), 'eval'));
      await mkdir(outDir, { recursive: true });
      const svg = path.join(outDir, 'confusion.svg');
      const json = path.join(outDir, 'eval.json');
      const { aborted: _aborted, ...figures } = result;
      const record = { checkpoint: path.resolve(file), data: data.name, ...figures, testError: 1 - result.accuracy };
      await writeFile(json, JSON.stringify(record, null, 2) + '\n');
      await writeFile(
        svg,
        await renderSvg(confusionSpec(data.classes, result.confusion!, `Confusion on ${data.name}`)),
      );
      if (v.json) {
        console.log(JSON.stringify({ ...record, files: { json, svg } }));
        return;
      }
      const width = Math.min(120, process.stdout.columns || 80);
      console.log(
        `accuracy ${percent(result.accuracy, 2)}  error ${percent(1 - result.accuracy, 2)}  loss ` +
          `${result.loss.toFixed(4)}  (${result.count.toLocaleString('en-US')} images)`,
      );
      console.log('');
      for (const line of perClassLines(result)) console.log(line.slice(0, width - 1));
      const matrix = confusionLines(result.confusion!, width);
      console.log('');
      if (matrix !== undefined) for (const line of matrix) console.log(line);
      console.log(`confusion ${svg}\nfigures   ${json}`);
    } finally {
      model.dispose();
    }
  },
};
