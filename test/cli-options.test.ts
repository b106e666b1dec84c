// The command line's parser, help pages and progress line: values and their errors, "did you
// mean", each command's own --help, --version, and a progress line that fits the terminal.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { UsageError, closest, editDistance, helpText, parseOptions, type OptionGroup } from '../bin/cli/options.js';
import { formatDuration, plural, progressLine, type Progress } from '../bin/cli/progress.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(root, 'dist', 'bin', 'dna.js');
const dna = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });

const groups: OptionGroup[] = [
  {
    title: 'Things',
    options: [
      { name: 'epochs', kind: 'integer', min: 1, value: 'N', help: 'epochs' },
      { name: 'seed', kind: 'integer', min: 0, value: 'N', help: 'seed' },
      { name: 'lr', kind: 'number', value: 'X', help: 'learning rate' },
      { name: 'model', kind: 'choice', choices: ['a', 'b'], value: 'NAME', help: 'which' },
      { name: 'resume', kind: 'flag', help: 'go on' },
      { name: 'op-library', kind: 'list', value: 'FILE', help: 'libraries' },
    ],
  },
];

test('values: after the flag or attached, negative numbers included; lists repeat; flags take none', (t) => {
  const { values, help } = parseOptions(
    'x',
    [
      '--epochs',
      '5',
      '--lr=-0.5',
      '--seed',
      '0',
      '--model',
      'b',
      '--resume',
      '--op-library',
      'a.so',
      '--op-library=b.so',
    ],
    groups,
  );
  t.deepEqual(values, { epochs: 5, lr: -0.5, seed: 0, model: 'b', resume: true, 'op-library': ['a.so', 'b.so'] });
  t.false(help);
  t.true(parseOptions('x', ['--lr', '1e-3', '-h'], groups).help);
});

test('mistakes are UsageErrors that name the flag and what it takes', (t) => {
  const cases: [string[], RegExp][] = [
    [['--epochs', '-1'], /^--epochs must be a positive integer, got '-1'$/],
    [['--epochs', '0'], /^--epochs must be a positive integer, got '0'$/],
    [['--epochs', '2.5'], /^--epochs must be a positive integer, got '2.5'$/],
    [['--seed', '-3'], /^--seed must be a non-negative integer, got '-3'$/],
    [['--lr', 'fast'], /^--lr must be a number, got 'fast'$/],
    [['--model', 'c'], /^--model must be one of a, b, got 'c'$/],
    [['--epochs'], /^--epochs needs a value \(N\)$/],
    [['--resume=yes'], /^--resume takes no value$/],
    [['--epoch', '3'], /^dna x has no option --epoch \(did you mean --epochs\?\)$/],
    [['--colour'], /^dna x has no option --colour$/],
    [['stray'], /^dna x takes no argument 'stray'; options start with --$/],
  ];
  for (const [argv, message] of cases)
    t.throws(() => parseOptions('x', argv, groups), { instanceOf: UsageError, message }, argv.join(' '));
});

test("words: 'stop' ends the options at the first word, 'collect' gathers words among the options", (t) => {
  const stop = parseOptions('launch', ['--epochs', '2', 'dna', 'train', '--epochs', '9'], groups, 'stop');
  t.deepEqual(stop.rest, ['dna', 'train', '--epochs', '9']);
  t.is(stop.values.epochs, 2);
  t.deepEqual(parseOptions('launch', ['--', '--epochs'], groups, 'stop').rest, ['--epochs']);
  const collect = parseOptions('bench', ['train', '--seed', '3', 'augment', '--resume'], groups, 'collect');
  t.deepEqual(collect.rest, ['train', 'augment']);
  t.deepEqual(collect.values, { seed: 3, resume: true });
});

test('did you mean: transpositions and small typos, not unrelated words', (t) => {
  t.is(editDistance('trian', 'train'), 1);
  t.is(closest('trian', ['info', 'train', 'search']), 'train');
  t.is(closest('serach', ['info', 'train', 'search']), 'search');
  t.is(closest('frobnicate', ['info', 'train', 'search']), undefined);
});

test('help pages list the options by group within the width', (t) => {
  const text = helpText(
    'dna x [options]',
    'Does things to a dataset, at some length so that the paragraph has to wrap.',
    groups,
    60,
  );
  for (const line of text.split('\n')) t.true(line.length <= 60, `${line.length}: ${line}`);
  t.regex(text, /^Usage: dna x \[options\]/);
  t.regex(text, /Things:\n {2}--epochs N +epochs/);
  t.regex(text, /--model NAME/);
});

test('progress lines fit 60, 80 and 120 columns and keep the ETA', (t) => {
  const p: Progress = {
    phase: 'step',
    epoch: 12,
    epochs: 200,
    step: 12345,
    steps: 93800,
    stepInEpoch: 75,
    stepsPerEpoch: 469,
    loss: 0.123456,
    accuracy: 0.9123,
    lr: 0.0987654,
    imagesPerSecond: 2048.4,
    testAccuracy: 0.8811,
  };
  const lines = [60, 80, 120].map((width) => progressLine('epoch', p, 4000, width));
  lines.forEach((line, k) => {
    t.true(line.length <= [60, 80, 120][k] - 1, `${line.length}: ${line}`);
    t.regex(line, /ETA 1h06m$/);
    t.regex(line, /^epoch 13\/200/);
  });
  t.regex(lines[2], /2048 img\/s/);
  t.notRegex(lines[0], /img\/s/);
  t.regex(progressLine('epoch', p, 4000, 160), /lr 0\.0988/);
  t.true(lines[0].length < lines[1].length && lines[1].length < lines[2].length);
});

test('durations and counts read as words', (t) => {
  t.is(formatDuration(75), '1m15s');
  t.is(formatDuration(4000), '1h06m');
  t.is(formatDuration(Number.NaN), '?');
  t.is(plural(1, 'epoch'), '1 epoch');
  t.is(plural(2, 'epoch'), '2 epochs');
});

test('each command has its own --help; --version; an unknown command suggests the near one, exit 2', (t) => {
  const train = dna('train', '--help');
  t.is(train.status, 0);
  t.regex(train.stdout, /^Usage: dna train --data DIR/);
  t.regex(train.stdout, /--augmentation NAME/);
  t.notRegex(train.stdout, /--search-images/);
  const demo = dna('help', 'demo');
  t.regex(demo.stdout, /--search-images N/);
  const version = dna('--version');
  t.is(version.stdout.trim(), JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  const typo = dna('trian');
  t.is(typo.status, 2);
  t.is(typo.stderr.trim().split('\n').length, 1);
  t.regex(typo.stderr, /did you mean train\?/);
  const epochs = dna('train', '--data', 'fashion-mnist', '--epochs', '-1');
  t.is(epochs.status, 2);
  t.regex(epochs.stderr, /--epochs must be a positive integer, got '-1'/);
  const threads = dna('train', '--data', 'fashion-mnist', '--threads', '0');
  t.is(threads.status, 2);
  t.regex(threads.stderr, /--threads must be a positive integer, got '0'/);
});

test('dna bench: names among the options, an unknown one refused by name', (t) => {
  const help = dna('bench', '--help');
  t.is(help.status, 0);
  t.regex(help.stdout, /^Usage: dna bench \[augment\|train\|search\|pipeline\|streaming \.\.\.\] \[--quick\]/);
  const unknown = dna('bench', 'train', '--quick', 'speed');
  t.is(unknown.status, 2);
  t.regex(unknown.stderr, /^dna: unknown benchmark 'speed' \(one of augment, train, search, pipeline, streaming\)/);
});
