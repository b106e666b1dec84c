// Error messages about values the caller gave: every public function, given a Symbol, an object
// without a prototype or a BigInt, throws its own Error naming itself and the problem (building
// the message must not throw "Cannot convert a Symbol value to a string" instead), and an
// explicit null options argument is no options, while options of the wrong kind are a TypeError.
import test, { type ExecutionContext } from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as dna from '../lib/index.js';
import { describe, optionsObject, requiredOptions } from '../lib/util/describe.js';
import { cifarRecords, writeCifar10, writePng } from './helpers/data-files.js';
import { tinyDataset, writeTinyIdx } from './helpers/tiny-data.js';

const root = mkdtempSync(join(tmpdir(), 'dna-messages-test-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

const symbol = Symbol('garbage');
const bare = () => Object.create(null) as object;
const ENGINE = /Cannot (convert|read|destructure)|is not (a function|iterable)/;

/** Runs `call`, which must throw (or reject with) an Error whose message matches `pattern` and is none of the engine's. */
async function refuses(t: ExecutionContext, label: string, call: () => unknown, pattern: RegExp): Promise<void> {
  let error: unknown;
  try {
    await call();
  } catch (caught) {
    error = caught;
  }
  if (!(error instanceof Error)) return void t.fail(`${label}: expected an Error, got ${describe(error)}`);
  t.notRegex(error.message, ENGINE, label);
  t.regex(error.message, pattern, label);
}

test('describe: every kind of value, without ever throwing', (t) => {
  const trap = new Proxy(
    {},
    {
      get: () => {
        throw new Error('trap');
      },
      getPrototypeOf: () => {
        throw new Error('trap');
      },
    },
  );
  const cases: Array<[unknown, string]> = [
    [1.5, '1.5'],
    [NaN, 'NaN'],
    [-Infinity, '-Infinity'],
    [0, '0'],
    ['abc', "'abc'"],
    ["it's", "'it\\'s'"],
    ['a\0b', "'a\\u0000b'"],
    ['x'.repeat(100), `'${'x'.repeat(60)}...'`],
    [true, 'true'],
    [undefined, 'undefined'],
    [null, 'null'],
    [10n, '10n'],
    [symbol, 'Symbol(garbage)'],
    [Symbol(), 'a symbol'],
    [function blur() {}, 'a function (blur)'],
    [[], '[]'],
    [[2, 'a', null, NaN], "[2, 'a', null, NaN]"],
    [['a', {}, null], 'an array of 3 items'],
    [new Array(20).fill(0), 'an array of 20 items'],
    [new Float32Array(3), 'a Float32Array of 3'],
    [new Int32Array(0), 'an Int32Array of 0'],
    [{}, 'an object'],
    [bare(), 'an object'],
    [new Date(0), 'a Date'],
    [AbortSignal.abort(), 'an AbortSignal'],
    [new dna.Generator(1), 'a Generator'],
    [trap, 'an object'],
  ];
  for (const [value, expected] of cases) t.is(describe(value), expected);
});

test('optionsObject and requiredOptions: null is no options, other kinds a TypeError naming the function', (t) => {
  t.deepEqual(optionsObject(undefined, 'f'), {});
  t.deepEqual(optionsObject(null, 'f'), {});
  const options = { a: 1 };
  t.is(optionsObject(options, 'f'), options);
  const withoutPrototype = bare();
  t.is(optionsObject(withoutPrototype, 'f'), withoutPrototype);
  for (const [value, got] of [
    [5, '5'],
    ['abc', "'abc'"],
    [symbol, 'Symbol\\(garbage\\)'],
    [10n, '10n'],
    [[1], '\\[1\\]'],
    [() => 1, 'a function'],
  ] as const) {
    t.throws(() => optionsObject(value as never, 'f'), {
      instanceOf: TypeError,
      message: new RegExp(`^f: options must be an object, got ${got}$`),
    });
  }
  t.is(requiredOptions(options, 'g', '{ a }'), options);
  t.throws(() => requiredOptions(null, 'g', '{ a }'), {
    instanceOf: TypeError,
    message: /^g: options \{ a \} are required, got null$/,
  });
  t.throws(() => requiredOptions(undefined, 'g', '{ a }'), {
    instanceOf: TypeError,
    message: /^g: options \{ a \} are required, got undefined$/,
  });
  t.throws(() => requiredOptions(7 as never, 'g', '{ a }'), {
    instanceOf: TypeError,
    message: /^g: options must be an object, got 7$/,
  });
});

test('a Symbol, an object without a prototype or a BigInt: the Error names the function and the problem', async (t) => {
  const ds = tinyDataset();
  const images = dna.rand([2, 3, 8, 8], { generator: new dna.Generator(1) });
  const one = dna.zeros([1]);
  const model = dna.wideResNet({ ...dna.WRN_10_1, classes: 2, inChannels: 1, seed: 1 });
  const network = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 3, seed: 1 });
  const space = dna.defaultSearchSpace();
  const run = { train: ds, model: dna.WRN_10_1, epochs: 1, batchSize: 16 };
  const cases: Array<[string, () => unknown, RegExp]> = [
    [
      'cosineLr step',
      () => dna.cosineLr(symbol as never, 100, 0.1),
      /^cosineLr: step must be a non-negative number, got Symbol\(garbage\)$/,
    ],
    [
      'cosineLr totalSteps',
      () => dna.cosineLr(5, bare() as never, 0.1),
      /^cosineLr: totalSteps must be positive, got an object$/,
    ],
    [
      'cosineLr baseLr',
      () => dna.cosineLr(5, 100, 10n as never),
      /^cosineLr: baseLr must be a non-negative number, got 10n$/,
    ],
    [
      'cosineLr warmupSteps',
      () => dna.cosineLr(5, 100, 0.1, 0, symbol as never),
      /^cosineLr: warmupSteps must be in \[0, totalSteps\), got Symbol\(garbage\)$/,
    ],
    [
      'epochOrder count',
      () => dna.epochOrder(bare() as never),
      /^epochOrder: count must be a non-negative integer, got an object$/,
    ],
    [
      'epochOrder seed',
      () => dna.epochOrder(10, { seed: bare() as never }),
      /^epochOrder: seed must be an integer, got an object$/,
    ],
    [
      'epochOrder epoch',
      () => dna.epochOrder(10, { epoch: symbol as never }),
      /^epochOrder: epoch must be a non-negative integer, got Symbol\(garbage\)$/,
    ],
    [
      'batches epoch',
      () => dna.batches(ds, { batchSize: 8, epoch: symbol as never }),
      /^batches: epoch must be a non-negative integer, got Symbol\(garbage\)$/,
    ],
    [
      'batches batchSize',
      () => dna.batches(ds, { batchSize: bare() as never }),
      /^batches: batchSize must be a positive integer, got an object$/,
    ],
    [
      'batches device',
      () => dna.batches(ds, { batchSize: 8, device: symbol as never }),
      /^batches: device must be a string .*, got Symbol\(garbage\)$/,
    ],
    [
      'stratifiedSubset n',
      () => dna.stratifiedSubset(ds, bare() as never, 1),
      /^stratifiedSubset: n must be an integer, got an object$/,
    ],
    [
      'stratifiedSubset seed',
      () => dna.stratifiedSubset(ds, 10, symbol as never),
      /^stratifiedSubset: seed must be an integer, got Symbol\(garbage\)$/,
    ],
    [
      'stratifiedSubset BigInt',
      () => dna.stratifiedSubset(ds, 10n as never, 1),
      /^stratifiedSubset: n must be an integer, got 10n$/,
    ],
    [
      'splitStratified fraction',
      () => dna.splitStratified(ds, symbol as never, 1),
      /^splitStratified: fraction must be in \(0, 1\), got Symbol\(garbage\)$/,
    ],
    [
      'stratifiedQuotas n',
      () => dna.stratifiedQuotas([10, 20], symbol as never),
      /^stratifiedQuotas: n must be a non-negative integer, got Symbol\(garbage\)$/,
    ],
    [
      'stratifiedQuotas counts',
      () => dna.stratifiedQuotas([10, bare()] as never, 3),
      /^stratifiedQuotas: counts must be an array of class counts .*, got an array of 2 items$/,
    ],
    [
      'subset indices',
      () => dna.subset(ds, null as never),
      /^subset: indices must be an array of image indices, got null$/,
    ],
    ['subset index', () => dna.subset(ds, [symbol] as never), /^subset: index Symbol\(garbage\) is outside 0\.\.31$/],
    [
      'stratifiedSubset name',
      () => dna.stratifiedSubset({ ...ds, name: symbol } as never, 10, 1),
      /^stratifiedSubset: dataset\.name must be a string, got Symbol\(garbage\)$/,
    ],
    ['classCounts', () => dna.classCounts(symbol as never), /^classCounts: expected a dataset, got Symbol\(garbage\)$/],
    [
      'applyCutout size',
      () => dna.applyCutout(images, symbol as never),
      /^applyCutout: size must be a non-negative integer, got Symbol\(garbage\)$/,
    ],
    [
      'applyCutout BigInt',
      () => dna.applyCutout(images, 10n as never),
      /^applyCutout: size must be a non-negative integer, got 10n$/,
    ],
    [
      'applyOp op',
      () => dna.applyOp(images, symbol as never, 0.5),
      /^applyOp: op must be an op's name or its OpSpec, got Symbol\(garbage\)$/,
    ],
    [
      'applyOp images',
      () => dna.applyOp(bare() as never, 'Invert', 0.5),
      /^applyOp: images must be a Tensor \[B, C, H, W\], got an object$/,
    ],
    [
      'applySubPolicies option',
      () => dna.applySubPolicies(images, one, one, one, { magnitudeGradient: symbol as never }),
      /^applySubPolicies: magnitudeGradient must be 'straight-through' or 'exact', got Symbol\(garbage\)$/,
    ],
    [
      'preprocess flip',
      () => dna.preprocess(images, { flip: symbol as never, pad: 0, cutout: 0 }),
      /^preprocess: flip must be a probability, got Symbol\(garbage\)$/,
    ],
    [
      'preprocess preset',
      () => dna.preprocess(images, null as never),
      /^preprocess: unknown preset null \(one of cifar, svhn, none, or a config/,
    ],
    [
      'preprocess inherited name',
      () => dna.preprocess(images, 'toString' as never),
      /^preprocess: unknown preset 'toString'/,
    ],
    ['findOp', () => dna.findOp(symbol as never), /^findOp: unknown op Symbol\(garbage\) \(one of ShearX, /],
    ['findOp object', () => dna.findOp(bare() as never), /^findOp: unknown op an object/],
    [
      'subPolicyName',
      () => dna.subPolicyName(space, symbol as never),
      /^subPolicyName: index must be an integer in 0\.\.104, got Symbol\(garbage\)$/,
    ],
    [
      'autoAugmentDraws height',
      () => dna.autoAugmentDraws(4, { height: bare() as never }),
      /^autoAugmentDraws: height must be an integer in 1\.\.32768, got an object$/,
    ],
    [
      'autoAugmentDraws policy',
      () => dna.autoAugmentDraws(4, { policy: symbol as never }),
      /^autoAugmentDraws: unknown AutoAugment policy Symbol\(garbage\)/,
    ],
    [
      'randAugment n',
      () => dna.randAugment(images, { n: bare() as never }),
      /^randAugment: n must be an integer in 0\.\.64, got an object$/,
    ],
    [
      'cutout generator',
      () => dna.cutout(images, { generator: symbol as never }),
      /^cutout: options\.generator must be a Generator, got Symbol\(garbage\)$/,
    ],
    [
      'autoAugmentValue op',
      () => dna.autoAugmentValue(symbol as never, 3),
      /^autoAugmentValue: the op Symbol\(garbage\) has no kernel/,
    ],
    [
      'autoAugmentValue inherited name',
      () => dna.autoAugmentValue('toString' as never, 3),
      /^autoAugmentValue: the op 'toString' has no kernel/,
    ],
    [
      'trivialAugmentValue width',
      () => dna.trivialAugmentValue('Rotate', 3, 31, 32, bare() as never),
      /^trivialAugmentValue: width must be an integer in 1\.\.32768, got an object$/,
    ],
    [
      'gumbelSoftmaxST tau',
      () => dna.gumbelSoftmaxST(one, bare() as never),
      /^gumbelSoftmaxST: tau must be a positive number, got an object$/,
    ],
    [
      'relaxedBernoulliST lambda',
      () => dna.relaxedBernoulliST(one, symbol as never),
      /^relaxedBernoulliST: lambda must be a positive number, got Symbol\(garbage\)$/,
    ],
    [
      'PolicyNetwork.sample lambda',
      () => network.sample(images, { lambda: bare() as never }),
      /^relaxedBernoulliST: lambda must be a positive number, got an object$/,
    ],
    ['tensor data', () => dna.tensor(symbol as never), /^tensor\(\): data must be .*, got Symbol\(garbage\)$/],
    ['tensor items', () => dna.tensor([1, bare()] as never), /^tensor\(\): expected numbers, got an object$/],
    ['tidy', () => dna.tidy(bare() as never), /^tidy: fn must be a function, got an object$/],
    [
      'setExecution',
      () => model.setExecution({ precision: symbol as never }),
      /^setExecution: precision must be one of float32, bfloat16, got Symbol\(garbage\)$/,
    ],
    [
      'registerOp',
      () => dna.registerOp({ name: symbol } as never),
      /^registerOp: name must be a non-empty string, got Symbol\(garbage\)$/,
    ],
    [
      'checkpointPaths',
      () => dna.checkpointPaths(root, symbol as never),
      /^checkpointPaths\(\): name must be a string, got Symbol\(garbage\)$/,
    ],
    [
      'saveCheckpoint meta',
      () => dna.saveCheckpoint(join(root, 'x.ckpt'), { kind: 'k', meta: { n: 10n }, tensors: {} }),
      /^saveCheckpoint\(.*\): meta\["n"\] is 10n, which is not JSON$/,
    ],
    [
      'saveCheckpoint kind',
      () => dna.saveCheckpoint(join(root, 'x.ckpt'), { kind: symbol as never, meta: null, tensors: {} }),
      /^saveCheckpoint\(.*\): kind must be .*, got Symbol\(garbage\)$/,
    ],
    [
      'savePolicy',
      () =>
        dna.savePolicy(join(root, 'p.dna'), symbol as never, {
          dataset: 'd',
          classes: [],
          seed: 0,
          steps: 0,
          seconds: 0,
        }),
      /^savePolicy: policy must be a PolicyNetwork, got Symbol\(garbage\)$/,
    ],
    [
      'datasets.cifar10 dir',
      () => dna.datasets.cifar10(bare() as never),
      /^cifar10: dir must be a folder path, got an object$/,
    ],
    [
      'datasets.idx dir',
      () => dna.datasets.idx(symbol as never),
      /^idx: dir must be a folder path, got Symbol\(garbage\)$/,
    ],
    [
      'datasets.cifar100 labels',
      () => dna.datasets.cifar100(root, { labels: symbol as never }),
      /^cifar100: labels must be 'fine' or 'coarse', got Symbol\(garbage\)$/,
    ],
    [
      'datasets.svhn split',
      () => dna.datasets.svhn(root, { split: bare() as never }),
      /^svhn: split must be 'train' or 'test' or 'extra', got an object$/,
    ],
    [
      'datasets.imageFolder size',
      () => dna.datasets.imageFolder(root, { size: [8, symbol] as never }),
      /^imageFolder: size must be \[height, width\] of positive integers, got \[8, Symbol\(garbage\)\]$/,
    ],
    [
      'train seed',
      () => dna.train({ ...run, seed: bare() as never }),
      /^train: seed must be a non-negative integer, got an object$/,
    ],
    [
      'train epochs',
      () => dna.train({ ...run, epochs: symbol as never }),
      /^train: epochs must be a positive integer, got Symbol\(garbage\)$/,
    ],
    ['train preset', () => dna.train({ ...run, preset: symbol as never }), /^train: unknown preset Symbol\(garbage\)/],
    [
      'search seed',
      () => dna.search({ train: ds, classifier: dna.WRN_10_1, policy: dna.WRN_10_1, epochs: 1, seed: symbol as never }),
      /^search: seed must be a non-negative integer, got Symbol\(garbage\)$/,
    ],
    [
      'search objective',
      () =>
        dna.search({
          train: ds,
          classifier: dna.WRN_10_1,
          policy: dna.WRN_10_1,
          epochs: 1,
          objective: bare() as never,
        }),
      /^search: unknown objective an object/,
    ],
    [
      'entropy',
      () => dna.entropy([0.5, symbol] as never),
      /^entropy: a distribution must be an array of probabilities, got \[0\.5, Symbol\(garbage\)\]$/,
    ],
    [
      'jensenShannon',
      () => dna.jensenShannon([0.5], new BigInt64Array(1) as never),
      /^jensenShannon: a distribution must be an array of probabilities, got a BigInt64Array of 1$/,
    ],
    [
      'evaluate model',
      () => dna.evaluate({ model: symbol as never, data: ds }),
      /^evaluate: options\.model must be a Module .*, got Symbol\(garbage\)$/,
    ],
  ];
  for (const [label, call, pattern] of cases) await refuses(t, label, call, pattern);
  dna.dispose([images, one]);
  model.dispose();
  network.dispose();
});

test('null options are no options; options of another kind are a TypeError naming the function', async (t) => {
  const images = dna.rand([2, 3, 8, 8], { generator: new dna.Generator(2) });
  const gray = dna.rand([2, 1, 8, 8], { generator: new dna.Generator(3) });
  const ds = tinyDataset();
  const space = dna.defaultSearchSpace();
  const S = space.subPolicies.length;
  const network = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 3, searchSpace: space, seed: 1 });
  const sync: Array<[string, (options: unknown) => unknown]> = [
    ['tensor()', (o) => dna.tensor([1, 2], [2], o as never)],
    ['full', (o) => dna.full([2], 1, o as never)],
    ['zeros', (o) => dna.zeros([2], o as never)],
    ['ones', (o) => dna.ones([2], o as never)],
    ['arange', (o) => dna.arange(0, 3, 1, o as never)],
    ['rand', (o) => dna.rand([2], o as never)],
    ['randn', (o) => dna.randn([2], o as never)],
    ['uniform', (o) => dna.uniform(0, 1, [2], o as never)],
    ['randint', (o) => dna.randint(0, 5, [2], o as never)],
    ['randperm', (o) => dna.randperm(3, o as never)],
    ['bernoulli', (o) => dna.tidy(() => dna.bernoulli(dna.full([2], 0.5), o as never))],
    [
      'backward',
      (o) =>
        dna.tidy(() =>
          dna
            .ones([2])
            .requireGrad()
            .mul(2)
            .sum()
            .backward(undefined, o as never),
        ),
    ],
    [
      'crossEntropy',
      (o) =>
        dna.tidy(() => dna.crossEntropy(dna.zeros([2, 3]), dna.tensor([0, 1], [2], { dtype: 'int64' }), o as never)),
    ],
    ['adam', (o) => dna.tidy(() => dna.adam([dna.zeros([2]).requireGrad()], o as never).dispose())],
    ['applyOp', (o) => dna.applyOp(images, 'Invert', 0.5, o as never)],
    [
      'applySubPolicies',
      (o) =>
        dna.tidy(() =>
          dna.applySubPolicies(
            images,
            dna.zeros([2], { dtype: 'int64' }).oneHot(S).float(),
            dna.full([2, S, 2], 0.5),
            dna.full([2, S, 2], 0.5),
            o as never,
          ),
        ),
    ],
    ['preprocess', (o) => dna.preprocess(images, 'cifar', o as never)],
    ['applyCutout', (o) => dna.applyCutout(images, 2, o as never)],
    ['autoAugment', (o) => dna.autoAugment(images, o as never)],
    ['randAugment', (o) => dna.randAugment(images, o as never)],
    ['trivialAugment', (o) => dna.trivialAugment(images, o as never)],
    ['cutout', (o) => dna.cutout(images, o as never)],
    ['noAugmentation', (o) => dna.noAugmentation(images, o as never)],
    ['autoAugmentDraws', (o) => dna.autoAugmentDraws(2, o as never)],
    ['randAugmentDraws', (o) => dna.randAugmentDraws(2, o as never)],
    ['trivialAugmentDraws', (o) => dna.trivialAugmentDraws(2, o as never)],
    [
      'applyAugmentationDraws',
      (o) => dna.tidy(() => dna.applyAugmentationDraws(images, dna.trivialAugmentDraws(2), o as never)),
    ],
    ['epochOrder', (o) => dna.epochOrder(5, o as never)],
    ['PolicyNetwork.sample', (o) => network.sample(images, o as never)],
    [
      'PolicyStatistics.report',
      (o) => {
        const statistics = new dna.PolicyStatistics(space, ['a', 'b']);
        dna.tidy(() => statistics.add(network.forward(images), dna.tensor([0, 1], [2], { dtype: 'int64' })));
        return statistics.report(o as never);
      },
    ],
  ];
  for (const [name, call] of sync) {
    t.notThrows(() => dna.dispose(call(null)), `${name}(null)`);
    t.throws(
      () => call(5),
      {
        instanceOf: TypeError,
        message: new RegExp(`^${name.replace(/[()]/g, '\\$&')}: options must be an object, got 5$`),
      },
      `${name}(5)`,
    );
    t.throws(
      () => call(symbol),
      { instanceOf: TypeError, message: new RegExp(`options must be an object, got Symbol\\(garbage\\)$`) },
      `${name}(symbol)`,
    );
  }
  t.deepEqual(dna.epochOrder(5, null as never), dna.epochOrder(5));

  // Files for the loaders.
  const idx = writeTinyIdx(join(root, 'idx'), 4, 2);
  const cifar10 = writeCifar10(join(root, 'cifar10'));
  const cifar100 = join(root, 'cifar-100-binary');
  mkdirSync(cifar100);
  for (const split of ['train', 'test'])
    writeFileSync(
      join(cifar100, `${split}.bin`),
      cifarRecords(0, 2, (n) => [n % 20, n % 100]),
    );
  writeFileSync(join(cifar100, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, k) => `fine${k}`).join('\n'));
  const folder = join(root, 'images');
  for (const label of ['a', 'b']) {
    mkdirSync(join(folder, label), { recursive: true });
    await writePng(join(folder, label, '0.png'), label.length, 8, 8);
  }
  const trained = await dna.train({
    train: ds,
    model: dna.WRN_10_1,
    epochs: 1,
    batchSize: 16,
    outDir: join(root, 'train'),
  });
  trained.model.dispose();
  const checkpoint = join(root, 'train', 'train.last.ckpt');
  const policyFile = join(root, 'policy.dna');
  const policyNetwork = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, seed: 1 });
  await dna.savePolicy(policyFile, policyNetwork, {
    dataset: 'tiny',
    classes: ['even', 'odd'],
    seed: 1,
    steps: 0,
    seconds: 0,
  });
  policyNetwork.dispose();
  const loaded = await dna.loadPolicy(policyFile);

  const release = (value: unknown) => {
    if (value instanceof dna.Module) value.dispose();
    else if (value !== null && typeof value === 'object' && 'network' in value && 'dispose' in value)
      (value as dna.LoadedPolicy).dispose();
    else if (value !== null && typeof value === 'object' && 'tensors' in value)
      dna.dispose((value as dna.LoadedCheckpoint).tensors);
    else dna.dispose(value);
  };
  const loaders: Array<[string, (options: unknown) => Promise<unknown>]> = [
    ['idx', (o) => dna.datasets.idx(idx, o as never)],
    ['cifar10', (o) => dna.datasets.cifar10(cifar10, o as never)],
    ['cifar100', (o) => dna.datasets.cifar100(cifar100, o as never)],
    ['imageFolder', (o) => dna.datasets.imageFolder(folder, o as never)],
    ['loadCheckpoint\\(.*\\)', (o) => dna.loadCheckpoint(checkpoint, o as never)],
    ['loadTrainedModel', (o) => dna.loadTrainedModel(checkpoint, o as never)],
    ['loadPolicy', (o) => dna.loadPolicy(policyFile, o as never)],
    ['policy.augment', async (o) => loaded.augment(gray, o as never)],
  ];
  for (const [name, call] of loaders) {
    await t.notThrowsAsync(async () => release(await call(null)), `${name}(null)`);
    await t.throwsAsync(
      call([1]),
      { instanceOf: TypeError, message: new RegExp(`^${name}: options must be an object, got \\[1\\]$`) },
      `${name}([1])`,
    );
  }
  // A loader whose files are missing still gets past its options.
  await t.throwsAsync(dna.datasets.svhn(join(root, 'nothing'), null as never), {
    instanceOf: dna.DataFileError,
    message: /^svhn: .*nothing not found \(the cropped digits/,
  });
  await t.throwsAsync(dna.datasets.fashionMnist(join(root, 'nothing'), null as never), {
    instanceOf: dna.DataFileError,
    message: /^fashionMnist: .* is not a folder/,
  });

  // Functions whose options are required: null and other kinds are a TypeError naming them.
  const required: Array<[string, (options: unknown) => unknown]> = [
    ['train', (o) => dna.train(o as never)],
    ['search', (o) => dna.search(o as never)],
    ['evaluate', (o) => dna.evaluate(o as never)],
    ['policyReport', (o) => dna.policyReport(o as never)],
    ['demo', (o) => dna.demo(o as never)],
    ['batches', (o) => dna.batches(ds, o as never)],
    ['sgd', (o) => dna.sgd([], o as never)],
  ];
  for (const [name, call] of required) {
    await refuses(
      t,
      `${name}(null)`,
      () => call(null),
      new RegExp(`^${name}: options \\{ .* \\} are required, got null$`),
    );
    await refuses(
      t,
      `${name}('abc')`,
      () => call('abc'),
      new RegExp(`^${name}: options must be an object, got 'abc'$`),
    );
  }
  await refuses(
    t,
    'demo outDir',
    () => dna.demo({ outDir: symbol } as never),
    /^demo: outDir must be a folder path, got Symbol\(garbage\)$/,
  );

  loaded.dispose();
  network.dispose();
  dna.dispose([images, gray]);
});

test('what a newcomer meets, in their words: wrong files, missing folders, threads, uint8 images, missing ops', async (t) => {
  const dir = join(root, 'newcomer');
  mkdirSync(dir, { recursive: true });
  const text = join(dir, 'notes.txt');
  writeFileSync(text, 'hello\n');
  const ds = tinyDataset(16);
  const trained = await dna.train({
    train: ds,
    model: dna.WRN_10_1,
    epochs: 1,
    batchSize: 16,
    outDir: join(dir, 'run'),
  });
  trained.model.dispose();
  const checkpoint = trained.checkpoints!.last;
  const network = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, seed: 1 });
  const policyFile = join(dir, 'policy.dna');
  await dna.savePolicy(policyFile, network, {
    dataset: 'tiny',
    classes: ['even', 'odd'],
    seed: 1,
    steps: 0,
    seconds: 0,
  });
  network.dispose();

  await refuses(
    t,
    'a text file as a policy',
    () => dna.loadPolicy(text),
    new RegExp(
      `^${text} is not a policy file \\(a policy\\.dna written by search\\): it is no file of dna-augment at all ` +
        `\\(bad magic bytes`,
    ),
  );
  await refuses(
    t,
    'a training checkpoint as a policy',
    () => dna.loadPolicy(checkpoint),
    /is not a policy file \(a policy\.dna written by search\): it holds a "dna-augment\/train" checkpoint$/,
  );
  await refuses(
    t,
    'a policy as a trained model',
    () => dna.loadTrainedModel(policyFile),
    /policy\.dna is not a training checkpoint \(a train\.last\.ckpt or train\.best\.ckpt written by train\): it holds a "dna-augment\/policy" checkpoint$/,
  );
  const cifar = join(dir, 'cifar-10-batches-bin');
  await refuses(
    t,
    'a missing CIFAR folder',
    () => dna.datasets.cifar10(cifar),
    /^cifar10: .*cifar-10-batches-bin not found \(the unpacked cifar-10-binary\.tar\.gz of https:\/\/www\.cs\.toronto\.edu\/~kriz\/cifar\.html\)$/,
  );
  mkdirSync(cifar);
  await refuses(
    t,
    'an empty CIFAR folder',
    () => dna.datasets.cifar10(cifar),
    /^cifar10: missing .*batches\.meta\.txt \(expected the 10 class names of cifar-10-batches-bin, the unpacked cifar-10-binary\.tar\.gz of https:/,
  );
  await refuses(t, 'a missing IDX folder', () => dna.datasets.idx(join(dir, 'mnist')), /^idx: .*mnist not found$/);
  for (const threads of [0, 1.5, -2])
    await refuses(
      t,
      `setThreads(${threads})`,
      () => dna.setThreads(threads),
      new RegExp(`^setThreads: threads must be an integer from 1 to 4096, got ${threads}$`),
    );

  // uint8 images, which the README allows, go through a frozen policy as pixel values.
  const policy = await dna.loadPolicy(policyFile);
  const pixels = dna.tensor(
    new Uint8Array(2 * 64).map((_, i) => (i * 7) % 256),
    [2, 1, 8, 8],
    { dtype: 'uint8' },
  );
  const scaled = pixels.float().div(255);
  const fromUint8 = policy.augment(pixels, { generator: new dna.Generator(5) });
  const fromFloat = policy.augment(scaled, { generator: new dna.Generator(5) });
  t.is(fromUint8.dtype, 'float32');
  t.deepEqual(fromUint8.toArray(), fromFloat.toArray());
  const asynchronous = await policy.augmentAsync(pixels, { generator: new dna.Generator(5) });
  t.deepEqual(asynchronous.toArray(), fromFloat.toArray());
  dna.dispose([pixels, scaled, fromUint8, fromFloat, asynchronous]);
  policy.dispose();

  // A custom op the process does not have: a MissingOpError saying which op and what runs it.
  const { requireCustomOps } = await import('../lib/augment/custom-ops.js');
  const space = {
    ops: [...dna.defaultSearchSpace().ops, { name: 'Vignette', custom: 'dna_example::vignette', range: [0, 1] }],
    subPolicies: [],
  } as unknown as dna.SearchSpace;
  const error = t.throws(() => requireCustomOps(space, 'policy.dna'), { instanceOf: dna.MissingOpError });
  t.like(error, { op: 'Vignette', custom: 'dna_example::vignette', kind: 'operator', where: 'policy.dna' });
  t.regex(
    error!.message,
    /^policy\.dna: the search space uses the custom op 'Vignette', which is not available in this process: /,
  );
});
