// The command line's parser, help pages and progress line: values and their errors, "did you
// mean", each command's own --help, --version, and a progress line that fits the terminal.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { UsageError, closest, editDistance, helpText, parseOptions, type OptionGroup } from '../bin/cli/options.js';
import { demoSummary } from '../bin/commands/demo.js';
import { topSubPolicyLines } from '../bin/commands/report.js';
import { OBJECTIVE_OPTIONS, evalCommand, objectiveOptions, resumeCommand } from '../bin/cli/common.js';
import { EtaClock, etaWarning, formatDuration, plural, progressLine, type Progress } from '../bin/cli/progress.js';

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
  // A step's loss during the epoch, the epoch's mean once it ends.
  t.regex(lines[1], /  loss 0\.1235  /);
  t.regex(progressLine('epoch', { ...p, phase: 'epoch' }, 4000, 80), /  mean loss 0\.1235  acc 91\.2%  /);
});

test('the evaluation shows as a phase of its own, within the width, with its ETA', (t) => {
  const p: Progress = {
    phase: 'evaluate',
    epoch: 0,
    epochs: 2,
    step: 16,
    steps: 32,
    stepInEpoch: 16,
    stepsPerEpoch: 16,
    loss: 2.1,
    accuracy: 0.3,
    lr: 0.05,
    imagesPerSecond: 1150.2,
    evaluated: 2560,
    evaluating: 10000,
  };
  for (const width of [60, 80, 120]) {
    const line = progressLine('epoch', p, 25, width);
    t.true(line.length <= width - 1, `${line.length}: ${line}`);
    t.regex(line, /^epoch 1\/2 .*evaluating 2,560\/10,000 test images.*ETA 25s$/);
  }
  t.regex(progressLine('epoch', p, 25, 80), /\[#+\.+\]/);
  t.regex(progressLine('epoch', p, 25, 120), /1150 img\/s/);
});

test("the ETA counts the steps left at this process's rate, and the evaluations left", (t) => {
  const base = { epochs: 4, steps: 200, stepsPerEpoch: 50, loss: 1, accuracy: 0.5, lr: 0.1, imagesPerSecond: 100 };
  // A resumed run: steps 1..100 ran in another process; this one runs a step a second.
  const clock = new EtaClock();
  const at = (p: Partial<Progress>, seconds: number) =>
    clock.update({ ...base, phase: 'step', epoch: 2, step: 100, stepInEpoch: 0, ...p } as Progress, 1000 * seconds);
  at({ phase: 'start', resumed: true }, 0);
  t.true(Number.isNaN(at({}, 0)), 'no estimate before a step of this process');
  t.is(at({ step: 110, stepInEpoch: 10 }, 10), 90);
  // Test images to evaluate: until an evaluation is timed, a third of a training image's time.
  const withTests = { testImages: 1000, evaluationsLeft: 2 };
  t.is(at({ step: 110, stepInEpoch: 10, ...withTests }, 10), 90 + (2 * 1000) / 100 / 3);
  // An evaluation of 1,000 images in 10 s: 0.01 s per image; its time is not steps' time.
  const evaluation = { phase: 'evaluate' as const, step: 150, stepInEpoch: 50, evaluating: 1000, ...withTests };
  at({ ...evaluation, evaluated: 0 }, 50);
  t.is(Math.round(at({ ...evaluation, evaluated: 500 }, 55)), 50 + 15);
  at({ ...evaluation, evaluated: 1000 }, 60);
  at({ phase: 'epoch', step: 150, stepInEpoch: 50, epoch: 3, testImages: 1000, evaluationsLeft: 1 }, 60);
  const after = at({ step: 151, stepInEpoch: 1, epoch: 3, testImages: 1000, evaluationsLeft: 1 }, 61);
  t.is(Math.round(after), 49 + 10);
});

test('an ETA absurd for the device gets one warning that says what makes it shorter', (t) => {
  t.is(etaWarning(5 * 3600, 'cpu', 'fewer --epochs'), undefined);
  t.is(
    etaWarning(118 * 3600, 'cpu', 'try --model wrn-16-1'),
    'dna: warning: at this speed the run takes about 118h00m on the CPU; try --model wrn-16-1',
  );
  t.is(etaWarning(40 * 3600, 'cuda'), undefined);
  t.regex(etaWarning(50 * 3600, 'cuda:1')!, /on the GPU$/);
});

test('durations and counts read as words', (t) => {
  t.is(formatDuration(75), '1m15s');
  t.is(formatDuration(4000), '1h06m');
  t.is(formatDuration(Number.NaN), '?');
  t.is(plural(1, 'epoch'), '1 epoch');
  t.is(plural(2, 'epoch'), '2 epochs');
  t.is(plural(10000, 'image'), '10,000 images');
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

test("dna demo's summary: paths relative to the current folder, names as wide as the longest, within 80 columns", (t) => {
  const runs = (names: string[]) =>
    names.map((augmentation, k) => ({
      augmentation,
      testAccuracy: 0.8,
      testError: 0.2 - k / 100,
      seconds: 83,
      checkpoint: `/home/me/project/runs/demo/train${k === 0 ? '' : `-${augmentation}`}/train.last.ckpt`,
    }));
  const result = {
    aborted: false,
    dataset: 'fashion-mnist/train',
    search: {
      images: 2000,
      epochs: 8,
      steps: 1000,
      seconds: 48,
      policyFile: '/home/me/project/runs/demo/search/policy.dna',
      warnings: [],
    },
    runs: runs(['dna']),
    report: {
      markdown: '/home/me/project/runs/demo/report/report.md',
      json: '/home/me/project/runs/demo/report/report.json',
      plots: [],
      examples: '/home/me/project/runs/demo/report/examples.png',
      summary: {} as never,
    },
    summaryFile: '/home/me/project/runs/demo/summary.json',
  };
  const lines = demoSummary(result, 99, '/home/me/project').split('\n');
  t.deepEqual(lines, [
    '',
    'DNA on fashion-mnist/train, done in 1m39s',
    'search   2000 images, 8 epochs (48s): runs/demo/search/policy.dna',
    'train    dna  test error 20.00%  (1m23s): runs/demo/train/train.last.ckpt',
    'report   runs/demo/report/report.md, pictures in examples.png',
    'summary  runs/demo/summary.json',
  ]);
  for (const line of lines) t.true(line.length < 80, line);
  const compared = demoSummary({ ...result, runs: runs(['dna', 'trivialaugment']) }, 99, '/elsewhere').split('\n');
  t.is(
    compared[3],
    'train    dna             test error 20.00%  (1m23s): /home/me/project/runs/demo/train/train.last.ckpt',
  );
  t.regex(compared[4], /^train    trivialaugment  test error 19\.00%/);
});

test("dna report's lines of top sub-policies: as many of three as fit the width, one at least", (t) => {
  const top = [
    { index: 0, name: 'Brightness+Cutout', probability: 0.371 },
    { index: 1, name: 'ShearX+Sharpness', probability: 0.263 },
    { index: 2, name: 'ShearY+Posterize', probability: 0.172 },
    { index: 3, name: 'Rotate+Equalize', probability: 0.1 },
  ];
  const report = {
    perClass: [
      { name: 'Ankle boot', top },
      { name: 'Bag', top },
    ],
  } as never;
  t.deepEqual(topSubPolicyLines(report, 120), [
    '  Ankle boot  Brightness+Cutout 37.1%, ShearX+Sharpness 26.3%, ShearY+Posterize 17.2%',
    '  Bag         Brightness+Cutout 37.1%, ShearX+Sharpness 26.3%, ShearY+Posterize 17.2%',
  ]);
  t.deepEqual(
    topSubPolicyLines(report, 80).map((line) => line.trimEnd()),
    [
      '  Ankle boot  Brightness+Cutout 37.1%, ShearX+Sharpness 26.3%',
      '  Bag         Brightness+Cutout 37.1%, ShearX+Sharpness 26.3%',
    ],
  );
  t.deepEqual(topSubPolicyLines(report, 20), [
    '  Ankle boot  Brightness+Cutout 37.1%',
    '  Bag         Brightness+Cutout 37.1%',
  ]);
});

test('the commands a run prints to go on: eval on the same test images, resume with the same words', (t) => {
  t.is(
    evalCommand('runs/a/train.best.ckpt', { data: 'pets', 'test-dir': 'pets test', size: '64x64', epochs: 3 }),
    "dna eval --checkpoint runs/a/train.best.ckpt --data pets --test-dir 'pets test' --size 64x64",
  );
  t.is(
    evalCommand('b.ckpt', { data: 'pets', 'val-split': 0.1, seed: 7, channels: '3', format: 'folder' }),
    'dna eval --checkpoint b.ckpt --data pets --format folder --val-split 0.1 --channels 3 --seed 7',
  );
  t.is(evalCommand('c.ckpt', { data: 'fashion-mnist', seed: 7 }), 'dna eval --checkpoint c.ckpt --data fashion-mnist');
  t.is(
    resumeCommand(['train', '--data', "it's here", '--force', '--epochs', '2']),
    "dna train --data 'it'\\''s here' --epochs 2 --resume",
  );
});

test("the objective's flags reach the search's regularisers by name; none given leaves them to the defaults", (t) => {
  const group = [{ title: 'Objective', options: OBJECTIVE_OPTIONS }];
  const { values } = parseOptions(
    'search',
    [
      ...[
        '--objective',
        'invariance',
        '--prior',
        '0.5',
        '--rise-target',
        '1',
        '--tolerance=0.2',
        '--shortfall-weight',
        '0.5',
      ],
      ...['--magnitudes', 'range', '--draws', '4'],
    ],
    group,
  );
  const chosen = objectiveOptions(values);
  t.is(chosen.objective, 'invariance');
  t.is(chosen.draws, 4);
  t.is(chosen.magnitudes, 'range');
  t.like(chosen.regularisers, {
    prior: 0.5,
    riseTarget: 1,
    tolerance: 0.2,
    shortfallWeight: 0.5,
    changeReward: undefined,
  });
  t.is(objectiveOptions(parseOptions('search', ['--objective', 'joint'], group).values).regularisers, undefined);
  t.throws(() => parseOptions('search', ['--prior', 'much'], group), { instanceOf: UsageError, message: /--prior/ });
  t.throws(() => parseOptions('search', ['--draws', '0'], group), { instanceOf: UsageError, message: /--draws/ });
});
