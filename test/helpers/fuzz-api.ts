// The public API's fuzzer: every exported function (and the methods of Tensor, Module, Optimizer
// and PolicyNetwork) with a valid call, then with garbage in one argument or one option, with
// bad tensors (disposed, NaN, empty, wrong rank, dtype or channels), bad datasets and bad files.
// Each call must return or throw an Error; what happened is counted (fuzz-outcomes.ts).
//
// Calls touch files only inside the folder given to `makeApiFuzzer` (the runner makes it the
// working directory too, so that relative garbage paths land there).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import * as dna from '../../lib/index.js';
import { savePolicy } from '../../lib/dna/policy-file.js';
import { cifarRecords, idxFile, idxImages, writeCifar10, writePng } from './data-files.js';
import { tinyDataset } from './tiny-data.js';
import { isEngineError, record, recordCall, type Outcome, type Random, type Tally } from './fuzz-outcomes.js';

type Call = (...args: unknown[]) => unknown;

interface Target {
  name: string;
  /** Fresh arguments of a call that works. */
  valid: () => unknown[];
  call: Call;
  /** The position of an options object whose fields are fuzzed one at a time. */
  options?: number;
  /** Position 0 is the receiver of a method: a Tensor's gets only tensor garbage, another object's none. */
  method?: 'tensor' | 'object';
  /** Relative frequency (default 1); whole training runs are picked less often. */
  weight?: number;
  /** The "valid" call is expected to throw too (e.g. loading a library from a text file). */
  failing?: boolean;
}

/** A value the fuzzer puts in place of an argument; `own` marks values whose traps throw on purpose. */
interface Value {
  label: string;
  make: () => unknown;
  own?: boolean;
}

// ---- what every call makes is released afterwards ----

let made: unknown[] = [];
function track<T>(value: T): T {
  made.push(value);
  return value;
}

/** Disposes tensors, networks, optimisers and loaded policies in a value (a few levels deep). */
function release(value: unknown, depth = 0, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value) || depth > 4) return;
  seen.add(value);
  if (value instanceof dna.Tensor) return value.dispose();
  if (value instanceof dna.Module || value instanceof dna.Optimizer || value instanceof dna.PolicyNetwork)
    return value.dispose();
  if (ArrayBuffer.isView(value)) return;
  const disposable = value as { dispose?: unknown; network?: unknown };
  if (typeof disposable.dispose === 'function' && disposable.network instanceof dna.PolicyNetwork)
    return (disposable.dispose as () => void)();
  for (const inner of Array.isArray(value) ? value : Object.values(value)) release(inner, depth + 1, seen);
}

function releaseAll(result: unknown): void {
  for (const value of [...made, result]) {
    try {
      release(value);
    } catch {
      // a value of the fuzzer's own that is not what it looks like (a Proxy)
    }
  }
  made = [];
}

// ---- small valid inputs ----

const SPACE = dna.defaultSearchSpace();
const S = SPACE.subPolicies.length;
// Policy networks free their search space's kernel tables when disposed: they get their own.
const POLICY_SPACE = dna.defaultSearchSpace();
const TINY = dna.WRN_10_1;

const images = (batch = 2, channels = 3, size = 8) =>
  track(dna.rand([batch, channels, size, size], { generator: new dna.Generator(batch * 7 + channels) }));
const gen = () => new dna.Generator(3);
const f32 = (shape: number[]) => track(dna.rand(shape, { generator: new dna.Generator(shape.length) }));
const onehot = (batch: number) =>
  track(dna.tidy(() => dna.randint(0, S, [batch], { generator: gen() }).oneHot(S).float()));
const halves = (shape: number[]) => track(dna.full(shape, 0.5));
const disposedTensor = () => {
  const x = dna.ones([2, 3, 8, 8]);
  x.dispose();
  return x;
};
const model = (channels = 1) => track(dna.wideResNet({ ...TINY, classes: 2, inChannels: channels, seed: 1 }));
const optimizer = () => {
  const net = model();
  return track(dna.sgd(net, { lr: 0.1, momentum: 0.9 }));
};
const policyNetwork = (channels = 1) =>
  track(new dna.PolicyNetwork({ backbone: TINY, inChannels: channels, searchSpace: POLICY_SPACE, seed: 1 }));

/** Options of a run that stops after two steps, whatever its other options say. */
function stopping(): { signal: AbortSignal; onProgress: (p: { phase: string }) => void } {
  const controller = new AbortController();
  let steps = 0;
  return { signal: controller.signal, onProgress: (p) => p.phase === 'step' && ++steps >= 2 && controller.abort() };
}

// ---- garbage ----

const throwingGetter = () =>
  Object.defineProperty({}, 'batchSize', {
    enumerable: true,
    get: () => {
      throw new Error('getter trap');
    },
  });
const throwingProxy = () =>
  new Proxy(
    {},
    {
      get: () => {
        throw new Error('proxy trap');
      },
      ownKeys: () => {
        throw new Error('proxy trap');
      },
    },
  );

const values: Value[] = [
  { label: 'undefined', make: () => undefined },
  { label: 'null', make: () => null },
  { label: 'true', make: () => true },
  { label: '0', make: () => 0 },
  { label: '-1', make: () => -1 },
  { label: '0.5', make: () => 0.5 },
  { label: '1e15', make: () => 1e15 },
  { label: '-1e15', make: () => -1e15 },
  { label: '2^53', make: () => 2 ** 53 },
  { label: 'NaN', make: () => NaN },
  { label: 'Infinity', make: () => Infinity },
  { label: '-Infinity', make: () => -Infinity },
  { label: "'abc'", make: () => 'abc' },
  { label: "''", make: () => '' },
  { label: "'a\\0b'", make: () => 'a\0b' },
  { label: "'cuda'", make: () => 'cuda' },
  { label: "'cuda:7'", make: () => 'cuda:7' },
  { label: "'meta'", make: () => 'meta' },
  { label: "'float16'", make: () => 'float16' },
  { label: "'__proto__'", make: () => '__proto__' },
  { label: 'symbol', make: () => Symbol('garbage') },
  { label: '10n', make: () => 10n },
  { label: '{}', make: () => ({}) },
  { label: 'Object.create(null)', make: () => Object.create(null) },
  { label: '[]', make: () => [] },
  { label: '[NaN]', make: () => [NaN] },
  { label: '[-1]', make: () => [-1] },
  { label: '[0]', make: () => [0] },
  { label: '[1e15, 1e15]', make: () => [1e15, 1e15] },
  { label: '[2, 3]', make: () => [2, 3] },
  { label: "['a', {}, null]", make: () => ['a', {}, null] },
  { label: 'function', make: () => () => 1 },
  { label: 'Float32Array(3)', make: () => new Float32Array(3) },
  { label: 'Uint8Array(0)', make: () => new Uint8Array(0) },
  { label: 'Date', make: () => new Date(0) },
  { label: 'a getter that throws', make: throwingGetter, own: true },
  { label: 'a Proxy that throws', make: throwingProxy, own: true },
  { label: 'an aborted AbortSignal', make: () => AbortSignal.abort() },
  { label: 'a Generator', make: gen },
  { label: 'a Module', make: () => model() },
  {
    label: 'a disposed Module',
    make: () => {
      const m = dna.wideResNet({ ...TINY, classes: 2, inChannels: 1 });
      m.dispose();
      return m;
    },
  },
];

/** Tensors that are wrong for most uses: in tensor positions and as method receivers. */
const badTensors: Value[] = [
  { label: 'disposed tensor', make: disposedTensor },
  { label: 'NaN images', make: () => track(dna.full([2, 3, 8, 8], NaN)) },
  { label: 'Infinity images', make: () => track(dna.full([2, 3, 8, 8], Infinity)) },
  { label: '-Infinity images', make: () => track(dna.full([2, 1, 8, 8], -Infinity)) },
  { label: 'empty batch [0, 3, 8, 8]', make: () => track(dna.zeros([0, 3, 8, 8])) },
  { label: 'zero-size image [2, 3, 0, 8]', make: () => track(dna.zeros([2, 3, 0, 8])) },
  { label: '1x1 images', make: () => f32([2, 3, 1, 1]) },
  { label: '7-channel images', make: () => f32([2, 7, 8, 8]) },
  { label: 'uint8 images', make: () => track(dna.full([2, 3, 8, 8], 200, { dtype: 'uint8' })) },
  { label: 'float64 images', make: () => track(dna.rand([2, 3, 8, 8], { dtype: 'float64' })) },
  { label: 'float16 images', make: () => track(dna.tidy(() => dna.rand([2, 3, 8, 8]).toDtype('float16'))) },
  { label: 'int64 tensor', make: () => track(dna.tensor([5, -1, 2], [3], { dtype: 'int64' })) },
  { label: 'bool tensor', make: () => track(dna.tensor([true, false, true])) },
  { label: 'scalar tensor', make: () => track(dna.tensor(2.5)) },
  { label: '1-d tensor', make: () => f32([5]) },
  { label: '5-d tensor', make: () => f32([1, 2, 3, 4, 5]) },
  { label: 'requires-grad images', make: () => f32([2, 3, 8, 8]).requireGrad() },
  { label: 'a transposed view', make: () => track(f32([2, 3, 8, 8]).transpose(2, 3)) },
  { label: 'an expanded view', make: () => track(f32([1, 3, 8, 8]).expand([4, 3, 8, 8])) },
  { label: 'negative images', make: () => track(dna.full([2, 3, 8, 8], -3)) },
];

/** Datasets that are wrong in one way each. */
const badDatasets: Value[] = [
  { label: 'dataset with fewer bytes than images', make: () => ({ ...tinyDataset(), images: new Uint8Array(10) }) },
  { label: 'dataset with a huge count', make: () => ({ ...tinyDataset(), count: 1e15 }) },
  { label: 'dataset with labels out of range', make: () => ({ ...tinyDataset(), labels: new Int32Array(32).fill(7) }) },
  { label: 'dataset with negative labels', make: () => ({ ...tinyDataset(), labels: new Int32Array(32).fill(-1) }) },
  { label: 'dataset with shape [0, 0, 0]', make: () => ({ ...tinyDataset(), shape: [0, 0, 0] }) },
  {
    label: 'dataset with 5 channels',
    make: () => ({ ...tinyDataset(), images: new Uint8Array(32 * 5 * 64), shape: [5, 8, 8] }),
  },
  { label: 'dataset with float images', make: () => ({ ...tinyDataset(), images: new Float32Array(32 * 64) }) },
  { label: 'dataset with no classes', make: () => ({ ...tinyDataset(), classes: [] }) },
  {
    label: 'empty dataset',
    make: () => ({ ...tinyDataset(), images: new Uint8Array(0), labels: new Int32Array(0), count: 0 }),
  },
  { label: 'dataset of one image', make: () => tinyDataset(1) },
  { label: '3-channel dataset', make: () => tinyDataset(8, 3) },
];

// ---- the targets ----

/** Files the targets read and write, made once in `dir`. */
interface Files {
  dir: string;
  policy: string;
  trainCheckpoint: string;
  text: string;
  idx: string;
  cifar10: string;
  cifar100: string;
  images: string;
  /** The policy file, loaded once (never disposed). */
  loaded: dna.LoadedPolicy;
}

function targets(files: Files): Target[] {
  const out = (name: string) => path.join(files.dir, 'out', name);
  const list: Target[] = [
    // tensors
    {
      name: 'tensor',
      valid: () => [[1, 2, 3, 4], [2, 2], { dtype: 'float32' }],
      call: (d, s, o) => dna.tensor(d as number[], s as number[], o as dna.TensorOptions),
      options: 2,
    },
    {
      name: 'full',
      valid: () => [[2, 3], 1.5, { dtype: 'float32', device: 'cpu' }],
      call: (s, v, o) => dna.full(s as number[], v as number, o as dna.TensorOptions),
      options: 2,
    },
    {
      name: 'zeros',
      valid: () => [[2, 3], { dtype: 'int32' }],
      call: (s, o) => dna.zeros(s as number[], o as dna.TensorOptions),
      options: 1,
    },
    {
      name: 'arange',
      valid: () => [0, 10, 2, { dtype: 'int64' }],
      call: (a, b, c, o) => dna.arange(a as number, b as number, c as number, o as dna.TensorOptions),
      options: 3,
    },
    {
      name: 'cat',
      valid: () => [[f32([2, 3]), f32([1, 3])], 0],
      call: (t, d) => dna.cat(t as dna.Tensor[], d as number),
    },
    {
      name: 'stack',
      valid: () => [[f32([2, 3]), f32([2, 3])], 1],
      call: (t, d) => dna.stack(t as dna.Tensor[], d as number),
    },
    {
      name: 'where',
      valid: () => [track(f32([2, 3]).gt(0.5)), f32([2, 3]), 0],
      call: (c, x, y) => dna.where(c as dna.Tensor, x as dna.Tensor, y as dna.Tensor),
    },
    {
      name: 'rand',
      valid: () => [[2, 3], { generator: gen(), dtype: 'float64' }],
      call: (s, o) => dna.rand(s as number[], o as dna.RandomOptions),
      options: 1,
    },
    {
      name: 'uniform',
      valid: () => [-1, 1, [4], { generator: gen() }],
      call: (a, b, s, o) => dna.uniform(a as number, b as number, s as number[], o as dna.RandomOptions),
      options: 3,
    },
    {
      name: 'randint',
      valid: () => [0, 10, [4], { generator: gen() }],
      call: (a, b, s, o) => dna.randint(a as number, b as number, s as number[], o as dna.RandomOptions),
      options: 3,
    },
    {
      name: 'randperm',
      valid: () => [10, { generator: gen() }],
      call: (n, o) => dna.randperm(n as number, o as dna.RandomOptions),
      options: 1,
    },
    {
      name: 'bernoulli',
      valid: () => [halves([4]), { generator: gen() }],
      call: (p, o) => dna.bernoulli(p as dna.Tensor, o as dna.RandomOptions),
      options: 1,
    },
    { name: 'new Generator', valid: () => [5, 'cpu'], call: (s, d) => new dna.Generator(s as number, d as string) },
    {
      name: 'Generator.setState',
      valid: () => {
        const g = gen();
        return [g, track(g.state())];
      },
      call: (g, s) => (g as dna.Generator).setState(s as dna.Tensor),
      method: 'object',
    },
    { name: 'tidy', valid: () => [() => dna.ones([2]).add(1)], call: (fn) => dna.tidy(fn as () => unknown) },
    { name: 'noGrad', valid: () => [() => 1], call: (fn) => dna.noGrad(fn as () => unknown) },
    { name: 'dispose', valid: () => [[track(dna.ones([1]))]], call: (v) => dna.dispose(v) },
    // the augmentation engine
    {
      name: 'applyOp',
      valid: () => [images(), 'Rotate', 0.7, { generator: gen() }],
      call: (x, op, m, o) => dna.applyOp(x as dna.Tensor, op as string, m as number, o as dna.AugmentOptions),
      options: 3,
    },
    {
      name: 'applyOp (a magnitude per image)',
      valid: () => [images(), 'Solarize', f32([2]), {}],
      call: (x, op, m, o) => dna.applyOp(x as dna.Tensor, op as string, m as dna.Tensor, o as dna.AugmentOptions),
    },
    {
      name: 'applySubPolicies',
      valid: () => [
        images(),
        onehot(2),
        halves([2, S, 2]),
        halves([2, S, 2]),
        { generator: gen(), searchSpace: SPACE, magnitudeGradient: 'exact', unselectedGradient: 'dada' },
      ],
      call: (x, c, b, m, o) =>
        dna.applySubPolicies(
          x as dna.Tensor,
          c as dna.Tensor,
          b as dna.Tensor,
          m as dna.Tensor,
          o as dna.SubPolicyOptions,
        ),
      options: 4,
    },
    {
      name: 'preprocess',
      valid: () => [images(), { flip: 0.5, pad: 2, cutout: 3 }, { generator: gen() }],
      call: (x, p, o) => dna.preprocess(x as dna.Tensor, p as dna.PreprocessConfig, o as dna.AugmentOptions),
      options: 1,
    },
    {
      name: 'preprocess (a preset)',
      valid: () => [images(), 'cifar', {}],
      call: (x, p, o) => dna.preprocess(x as dna.Tensor, p as 'cifar', o as dna.AugmentOptions),
    },
    {
      name: 'applyCutout',
      valid: () => [images(), 3, { generator: gen() }],
      call: (x, s, o) => dna.applyCutout(x as dna.Tensor, s as number, o as dna.AugmentOptions),
    },
    {
      name: 'autoAugment',
      valid: () => [images(), { generator: gen(), policy: 'svhn' }],
      call: (x, o) => dna.autoAugment(x as dna.Tensor, o as dna.AutoAugmentOptions),
      options: 1,
    },
    {
      name: 'randAugment',
      valid: () => [images(), { generator: gen(), n: 2, magnitude: 9 }],
      call: (x, o) => dna.randAugment(x as dna.Tensor, o as dna.RandAugmentOptions),
      options: 1,
    },
    {
      name: 'trivialAugment',
      valid: () => [images(), { generator: gen() }],
      call: (x, o) => dna.trivialAugment(x as dna.Tensor, o as dna.TrivialAugmentOptions),
      options: 1,
    },
    {
      name: 'cutout',
      valid: () => [images(), { generator: gen(), size: 4 }],
      call: (x, o) => dna.cutout(x as dna.Tensor, o as dna.CutoutOptions),
      options: 1,
    },
    {
      name: 'baselineAugmenter',
      valid: () => ['randaugment'],
      call: (n) => dna.baselineAugmenter(n as dna.BaselineName),
    },
    {
      name: 'autoAugmentDraws',
      valid: () => [4, { generator: gen(), height: 8, width: 8 }],
      call: (b, o) => dna.autoAugmentDraws(b as number, o as dna.DrawOptions),
      options: 1,
    },
    {
      name: 'applyAugmentationDraws',
      valid: () => [images(4), track(dna.trivialAugmentDraws(4, { generator: gen() })), { generator: gen() }],
      call: (x, d, o) =>
        dna.applyAugmentationDraws(x as dna.Tensor, d as dna.AugmentationDraws, o as dna.AugmenterOptions),
      options: 2,
    },
    // the search space
    { name: 'subPolicies', valid: () => [dna.OPS.slice(0, 4)], call: (ops) => dna.subPolicies(ops as dna.OpSpec[]) },
    {
      name: 'validateSearchSpace',
      valid: () => [
        {
          ops: dna.OPS.slice(0, 3),
          subPolicies: [
            [0, 1],
            [1, 2],
          ],
        },
      ],
      call: (s) => dna.validateSearchSpace(s as dna.SearchSpace),
      options: 0,
    },
    { name: 'findOp', valid: () => ['Invert'], call: (n) => dna.findOp(n as string) },
    {
      name: 'subPolicyName',
      valid: () => [SPACE, 3],
      call: (s, i) => dna.subPolicyName(s as dna.SearchSpace, i as number),
    },
    {
      name: 'registerOp',
      valid: () => [{ name: 'FuzzGamma', transform: (x: dna.Tensor) => x.clone(), range: [0.5, 2], identityAt: null }],
      call: (d) => dna.registerOp(d as dna.CustomOpDefinition),
      options: 0,
    },
    {
      name: 'loadOpLibrary',
      valid: () => [files.text],
      call: (f) => dna.loadOpLibrary(f as string),
      weight: 0.1,
      failing: true,
    },
    // sampling and the policy network
    {
      name: 'gumbelSoftmaxST',
      valid: () => [f32([2, S]), 0.5, gen()],
      call: (l, tau, g) => dna.gumbelSoftmaxST(l as dna.Tensor, tau as number, g as dna.Generator),
    },
    {
      name: 'relaxedBernoulliST',
      valid: () => [halves([2, S, 2]), 0.5, gen()],
      call: (p, l, g) => dna.relaxedBernoulliST(p as dna.Tensor, l as number, g as dna.Generator),
    },
    {
      name: 'new PolicyNetwork',
      valid: () => [{ backbone: TINY, inChannels: 1, searchSpace: POLICY_SPACE, seed: 2 }],
      call: (c) => new dna.PolicyNetwork(c as dna.PolicyNetworkConfig),
      options: 0,
    },
    {
      name: 'PolicyNetwork.sample',
      valid: () => [policyNetwork(3), images(2, 3), { tau: 0.5, lambda: 0.5, generator: gen() }],
      call: (p, x, o) => (p as dna.PolicyNetwork).sample(x as dna.Tensor, o as { tau: number }),
      method: 'object',
      options: 2,
    },
    // networks and optimisers
    {
      name: 'wideResNet',
      valid: () => [{ ...TINY, classes: 3, inChannels: 3, dropout: 0.1, seed: 1 }],
      call: (c) => dna.wideResNet(c as dna.WideResNetConfig),
      options: 0,
    },
    {
      name: 'Module.forward',
      valid: () => [model(3), images(2, 3)],
      call: (m, x) => (m as dna.Module).forward(x as dna.Tensor),
      method: 'object',
    },
    {
      name: 'Module.loadStateDict',
      valid: () => {
        const m = model();
        return [m, track(m.stateDict())];
      },
      call: (m, d) => (m as dna.Module).loadStateDict(d as Record<string, dna.Tensor>),
      method: 'object',
    },
    {
      name: 'Module.to',
      valid: () => [model(), 'cpu'],
      call: (m, d) => (m as dna.Module).to(d as string),
      method: 'object',
    },
    {
      name: 'Module.setExecution',
      valid: () => [model(), { memoryFormat: 'channelsLast', precision: 'bfloat16' }],
      call: (m, e) => (m as dna.Module).setExecution(e as dna.Execution),
      method: 'object',
      options: 1,
    },
    {
      name: 'crossEntropy',
      valid: () => [f32([4, 3]), track(dna.tensor([0, 2, 1, 1], [4], { dtype: 'int64' })), { labelSmoothing: 0.1 }],
      call: (l, y, o) => dna.crossEntropy(l as dna.Tensor, y as dna.Tensor, o as dna.CrossEntropyOptions),
      options: 2,
    },
    {
      name: 'sgd',
      valid: () => [model(), { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }],
      call: (p, o) => dna.sgd(p as dna.Module, o as dna.SgdOptions),
      options: 1,
    },
    {
      name: 'adam',
      valid: () => [[f32([3]).requireGrad()], { lr: 0.01, betas: [0.5, 0.999], eps: 1e-8 }],
      call: (p, o) => dna.adam(p as dna.Tensor[], o as dna.AdamOptions),
      options: 1,
    },
    {
      name: 'Optimizer.loadState',
      valid: () => {
        const o = optimizer();
        return [o, track(o.state())];
      },
      call: (o, s) => (o as dna.Optimizer).loadState(s as dna.OptimizerState),
      method: 'object',
      options: 1,
    },
    {
      name: 'Optimizer.lr',
      valid: () => [optimizer(), 0.05],
      call: (o, lr) => ((o as dna.Optimizer).lr = lr as number),
      method: 'object',
    },
    {
      name: 'clipGradNorm',
      valid: () => [[f32([3]).requireGrad()], 1],
      call: (p, n) => dna.clipGradNorm(p as dna.Tensor[], n as number),
    },
    {
      name: 'cosineLr',
      valid: () => [5, 100, 0.1, 0, 10],
      call: (a, b, c, d, e) => dna.cosineLr(a as number, b as number, c as number, d as number, e as number),
    },
    // checkpoints
    {
      name: 'saveCheckpoint',
      valid: () => [out('fuzz.ckpt'), { kind: 'fuzz', meta: { step: 1 }, tensors: { w: f32([3]) } }],
      call: (f, d) => dna.saveCheckpoint(f as string, d as dna.CheckpointData),
      options: 1,
    },
    {
      name: 'loadCheckpoint',
      valid: () => [files.trainCheckpoint, { kind: dna.TRAIN_CHECKPOINT_KIND, device: 'cpu' }],
      call: (f, o) => dna.loadCheckpoint(f as string, o as dna.LoadCheckpointOptions),
      options: 1,
    },
    {
      name: 'checkpointPaths',
      valid: () => [files.dir, 'run'],
      call: (d, n) => dna.checkpointPaths(d as string, n as string),
    },
    // data
    {
      name: 'datasets.idx',
      valid: () => [files.idx, { split: 'train' }],
      call: (d, o) => dna.datasets.idx(d as string, o as dna.IdxOptions),
      options: 1,
    },
    {
      name: 'datasets.cifar10',
      valid: () => [files.cifar10, { split: 'test' }],
      call: (d, o) => dna.datasets.cifar10(d as string, o as dna.LoadOptions),
      options: 1,
    },
    {
      name: 'datasets.cifar100',
      valid: () => [files.cifar100, { labels: 'coarse' }],
      call: (d, o) => dna.datasets.cifar100(d as string, o as dna.Cifar100Options),
      options: 1,
    },
    {
      name: 'datasets.svhn',
      valid: () => [files.idx, { split: 'extra' }],
      call: (d, o) => dna.datasets.svhn(d as string, o as dna.SvhnOptions),
      options: 1,
      failing: true,
    },
    {
      name: 'datasets.imageFolder',
      valid: () => [files.images, { size: [8, 8] }],
      call: (d, o) => dna.datasets.imageFolder(d as string, o as dna.ImageFolderOptions),
      options: 1,
    },
    {
      name: 'stratifiedSubset',
      valid: () => [tinyDataset(), 10, 1],
      call: (d, n, s) => dna.stratifiedSubset(d as dna.ImageDataset, n as number, s as number),
    },
    {
      name: 'splitStratified',
      valid: () => [tinyDataset(), 0.25, 1],
      call: (d, f, s) => dna.splitStratified(d as dna.ImageDataset, f as number, s as number),
    },
    {
      name: 'subset',
      valid: () => [tinyDataset(), [3, 1, 4], 'part'],
      call: (d, i, n) => dna.subset(d as dna.ImageDataset, i as number[], n as string),
    },
    { name: 'classCounts', valid: () => [tinyDataset()], call: (d) => dna.classCounts(d as dna.ImageDataset) },
    {
      name: 'stratifiedQuotas',
      valid: () => [[10, 20], 6],
      call: (c, n) => dna.stratifiedQuotas(c as number[], n as number),
    },
    {
      name: 'epochOrder',
      valid: () => [10, { seed: 1, epoch: 2 }],
      call: (c, o) => dna.epochOrder(c as number, o as { seed: number }),
      options: 1,
    },
    {
      name: 'batches',
      valid: () => [tinyDataset(), { batchSize: 8, seed: 1, epoch: 1, startBatch: 1, dropLast: true }],
      call: (d, o) => {
        let count = 0;
        for (const batch of dna.batches(d as dna.ImageDataset, o as dna.BatchOptions)) {
          dna.dispose(batch);
          if (++count > 100) break;
        }
        return count;
      },
      options: 1,
    },
    // the pipeline
    {
      name: 'train',
      valid: () => [
        {
          train: tinyDataset(),
          test: tinyDataset(8),
          model: TINY,
          epochs: 1,
          batchSize: 16,
          lr: 0.05,
          preprocess: 'cifar',
          augmentation: 'trivialaugment',
          seed: 1,
          outDir: out('train'),
          ...stopping(),
        },
      ],
      call: (o) => dna.train(o as dna.TrainOptions),
      options: 0,
      weight: 0.5,
    },
    {
      name: 'search',
      valid: () => [
        {
          train: tinyDataset(),
          classifier: TINY,
          policy: TINY,
          epochs: 1,
          batchSize: 16,
          subset: 24,
          seed: 1,
          objective: 'joint',
          regularisers: { entropyFloor: 1 },
          outDir: out('search'),
          ...stopping(),
        },
      ],
      call: (o) => dna.search(o as dna.SearchOptions),
      options: 0,
      weight: 0.5,
    },
    {
      name: 'evaluate',
      valid: () => [{ model: model(), data: tinyDataset(), batchSize: 16 }],
      call: (o) => dna.evaluate(o as Parameters<typeof dna.evaluate>[0]),
      options: 0,
    },
    {
      name: 'loadTrainedModel',
      valid: () => [files.trainCheckpoint, { device: 'cpu' }],
      call: (f, o) => dna.loadTrainedModel(f as string, o as { device: string }),
      options: 1,
    },
    {
      name: 'loadPolicy',
      valid: () => [files.policy, { device: 'cpu' }],
      call: (f, o) => dna.loadPolicy(f as string, o as { device: string }),
      options: 1,
    },
    {
      name: 'LoadedPolicy.augment',
      valid: () => [files.loaded, images(2, 1), { generator: gen() }],
      call: (p, x, o) => (p as dna.LoadedPolicy).augment(x as dna.Tensor, o as { generator: dna.Generator }),
      method: 'object',
    },
    {
      name: 'savePolicy',
      valid: () => [
        out('fuzz.dna'),
        policyNetwork(),
        { dataset: 'tiny', classes: ['a', 'b'], seed: 1, steps: 1, seconds: 1 },
      ],
      call: (f, p, v) => savePolicy(f as string, p as dna.PolicyNetwork, v as never),
      options: 2,
    },
    {
      name: 'policyReport',
      valid: () => [{ policy: policyNetwork(), data: tinyDataset(), batchSize: 16, top: 3 }],
      call: (o) => dna.policyReport(o as dna.PolicyReportOptions),
      options: 0,
    },
    {
      name: 'new PolicyStatistics',
      valid: () => [SPACE, ['a', 'b']],
      call: (s, c) => new dna.PolicyStatistics(s as dna.SearchSpace, c as string[]),
    },
    { name: 'entropy', valid: () => [[0.25, 0.75]], call: (d) => dna.entropy(d as number[]) },
    {
      name: 'jensenShannon',
      valid: () => [
        [0.25, 0.75],
        [0.5, 0.5],
      ],
      call: (a, b) => dna.jensenShannon(a as number[], b as number[]),
    },
    {
      name: 'demo',
      valid: () => [
        {
          outDir: out('demo'),
          data: { train: tinyDataset(), test: tinyDataset(8) },
          searchImages: 16,
          searchEpochs: 1,
          trainImages: 16,
          trainEpochs: 1,
          classifier: TINY,
          policy: TINY,
          batchSize: 16,
          signal: AbortSignal.abort(),
        },
      ],
      call: (o) => dna.demo(o as dna.DemoOptions),
      options: 0,
      weight: 0.3,
    },
    { name: 'backend', valid: () => [], call: () => dna.backend() },
    { name: 'setThreads', valid: () => [1], call: (n) => dna.setThreads(n as number) },
    { name: 'synchronize', valid: () => ['cpu'], call: (d) => dna.synchronize(d as string) },
  ];
  // Tensor methods: the receiver is a valid tensor (or a bad one), the arguments are fuzzed.
  const methods: Array<[string, () => unknown[]]> = [
    ['add', () => [f32([2, 3])]],
    ['mul', () => [2]],
    ['div', () => [f32([3])]],
    ['pow', () => [2]],
    ['maximum', () => [0.5]],
    ['matmul', () => [f32([3, 2])]],
    ['reshape', () => [[3, 2]]],
    ['permute', () => [[1, 0]]],
    ['transpose', () => [0, 1]],
    ['expand', () => [[2, 3]]],
    ['repeat', () => [[2, 1]]],
    ['flip', () => [[0]]],
    ['flatten', () => [0, -1]],
    ['squeeze', () => [0]],
    ['unsqueeze', () => [1]],
    ['narrow', () => [1, 0, 2]],
    ['select', () => [0, 1]],
    ['sum', () => [[1], true]],
    ['mean', () => [1]],
    ['max', () => [1]],
    ['var', () => [1, false, true]],
    ['logsumexp', () => [1]],
    ['argmax', () => [1]],
    ['cumsum', () => [1]],
    ['softmax', () => [1]],
    ['logSoftmax', () => [0]],
    ['clamp', () => [0.2, 0.8]],
    ['logit', () => [1e-3]],
    ['gather', () => [1, track(dna.tensor([0, 2, 1, 1], [2, 2], { dtype: 'int64' }))]],
    ['indexSelect', () => [1, track(dna.tensor([2, 0], [2], { dtype: 'int64' }))]],
    ['maskedFill', () => [track(f32([2, 3]).gt(0.5)), 0]],
    ['to', () => ['cpu', 'float64']],
    ['toDtype', () => ['int32']],
    ['requireGrad', () => [true]],
    ['toArray', () => []],
    ['data', () => []],
    ['backward', () => [f32([2, 3])]],
    ['eq', () => [f32([2, 3])]],
    ['setGrad', () => [f32([2, 3])]],
  ];
  for (const [method, args] of methods) {
    list.push({
      name: `Tensor.${method}`,
      valid: () => [method === 'backward' ? track(f32([2, 3]).requireGrad().mul(2)) : f32([2, 3]), ...args()],
      call: (receiver, ...rest) => (receiver as Record<string, Call>)[method](...rest),
      method: 'tensor',
    });
  }
  list.push({ name: 'Tensor.item', valid: () => [f32([1])], call: (x) => (x as dna.Tensor).item(), method: 'tensor' });
  list.push({
    name: 'Tensor.oneHot',
    valid: () => [track(dna.tensor([0, 2], [2], { dtype: 'int64' })), 3],
    call: (x, n) => (x as dna.Tensor).oneHot(n as number),
    method: 'tensor',
  });
  return list;
}

// ---- calling ----

/** Resolves what a call returned (awaiting a promise), or what it threw. */
async function settle(target: Target, args: unknown[]): Promise<{ threw: boolean; value: unknown }> {
  try {
    let value = target.call(...args);
    if (value instanceof Promise) value = await value;
    return { threw: false, value };
  } catch (error) {
    return { threw: true, value: error };
  }
}

function classify(error: unknown, own: boolean): Outcome {
  if (!(error instanceof Error)) return 'non-error';
  if (typeof error.message !== 'string' || error.message.length === 0) return 'bad-message';
  if (own && /trap/.test(error.message)) return 'error';
  return isEngineError(error) ? 'unclear-error' : 'error';
}

function describeArgs(labels: string[]): string {
  return labels.join(', ');
}

export interface ApiFuzzer {
  /** The targets' names. */
  readonly names: string[];
  /** Calls every target's valid call; returns the names of those that failed, with the error. */
  checkValid(): Promise<string[]>;
  /** Random calls until `deadline` (performance.now()), counted in `tally`. */
  fuzzUntil(deadline: number, rnd: Random, tally: Tally): Promise<void>;
}

/** A fuzzer whose files live in `dir` (made here). */
export async function makeApiFuzzer(dir: string): Promise<ApiFuzzer> {
  mkdirSync(path.join(dir, 'out'), { recursive: true });
  const policy = path.join(dir, 'policy.dna');
  const text = path.join(dir, 'notes.txt');
  writeFileSync(text, 'not a library, not a checkpoint\n');
  // Tiny datasets in each format, a policy file and a training checkpoint.
  const idx = path.join(dir, 'idx');
  mkdirSync(idx, { recursive: true });
  writeFileSync(path.join(idx, 'train-images-idx3-ubyte'), idxImages(0, 4, 8, 8));
  writeFileSync(path.join(idx, 'train-labels-idx1-ubyte'), idxFile([4], Uint8Array.from([0, 1, 2, 3])));
  const cifar10 = writeCifar10(dir);
  const cifar100 = path.join(dir, 'cifar-100-binary');
  mkdirSync(cifar100);
  for (const split of ['train', 'test'])
    writeFileSync(
      path.join(cifar100, `${split}.bin`),
      cifarRecords(0, 2, (n) => [n % 20, n % 100]),
    );
  writeFileSync(
    path.join(cifar100, 'fine_label_names.txt'),
    Array.from({ length: 100 }, (_, k) => `fine${k}`).join('\n'),
  );
  writeFileSync(
    path.join(cifar100, 'coarse_label_names.txt'),
    Array.from({ length: 20 }, (_, k) => `coarse${k}`).join('\n'),
  );
  const folder = path.join(dir, 'images');
  for (const label of ['a', 'b']) {
    mkdirSync(path.join(folder, label), { recursive: true });
    await writePng(path.join(folder, label, '0.png'), label.length, 8, 8);
  }
  const searched = await dna.search({
    train: tinyDataset(),
    classifier: TINY,
    policy: TINY,
    epochs: 1,
    batchSize: 16,
    seed: 1,
  });
  await savePolicy(policy, searched.policy, {
    dataset: 'tiny',
    classes: ['even', 'odd'],
    seed: 1,
    steps: searched.steps,
    seconds: 0,
  });
  searched.policy.dispose();
  const trained = await dna.train({
    train: tinyDataset(),
    model: TINY,
    epochs: 1,
    batchSize: 16,
    outDir: path.join(dir, 'train'),
  });
  trained.model.dispose();
  const files: Files = {
    dir,
    policy,
    trainCheckpoint: path.join(dir, 'train', 'train.last.ckpt'),
    text,
    idx,
    cifar10,
    cifar100,
    images: folder,
    loaded: await dna.loadPolicy(policy),
  };

  const all = targets(files);
  const weights = all.map((target) => target.weight ?? 1);
  const totalWeight = weights.reduce((a, b) => a + b, 0);
  const pick = (rnd: Random) => {
    let r = rnd() * totalWeight;
    for (let i = 0; i < all.length; i++) if ((r -= weights[i]) < 0) return all[i];
    return all[all.length - 1];
  };
  const tensorValues = [...badTensors, { label: 'a valid tensor', make: () => f32([2, 3, 8, 8]) }];
  const anyValue = [...values, ...badTensors, ...badDatasets];
  const choose = <T>(list: readonly T[], rnd: Random) => list[Math.floor(rnd() * list.length)];

  /** One fuzzed call of `target`: garbage in an argument, in an option, or a random mix. */
  function fuzzedCall(target: Target, rnd: Random): { args: unknown[]; label: string; own: boolean } {
    const args = target.valid();
    const labels = args.map(() => 'valid');
    let own = false;
    const mode = rnd();
    const options = target.options === undefined ? undefined : args[target.options];
    if (options !== undefined && options !== null && typeof options === 'object' && mode < 0.4) {
      // One option replaced (or an unknown one added).
      const keys = [...Object.keys(options), 'unknownOption'].filter((k) => k !== 'signal' && k !== 'onProgress');
      const key = choose(keys, rnd);
      const value = choose(anyValue, rnd);
      track((options as Record<string, unknown>)[key]); // released even though the call no longer sees it
      (options as Record<string, unknown>)[key] = value.make();
      labels[target.options!] = `{ ...valid, ${key}: ${value.label} }`;
      own = value.own === true;
    } else if (mode < 0.85 || args.length === 0) {
      // One argument replaced; the receiver of a method only by tensors.
      const first = target.method === 'object' ? 1 : 0;
      const at = first + Math.floor(rnd() * (args.length + (target.method ? 0 : 1) - first));
      const value = target.method === 'tensor' && at === 0 ? choose(tensorValues, rnd) : choose(anyValue, rnd);
      args[at] = value.make();
      labels[at] = value.label;
      own = value.own === true;
    } else {
      // A random mix: every argument after the receiver replaced.
      for (let at = target.method ? 1 : 0; at < args.length; at++) {
        const value = choose(anyValue, rnd);
        args[at] = value.make();
        labels[at] = value.label;
        own ||= value.own === true;
      }
    }
    return { args, label: describeArgs(labels), own };
  }

  const threads = dna.backend().threads;
  return {
    names: all.map((target) => target.name),
    async checkValid() {
      const failed: string[] = [];
      for (const target of all) {
        recordCall(`${target.name}(valid)`);
        const { threw, value } = await settle(target, target.valid());
        if (threw !== (target.failing === true))
          failed.push(`${target.name}: ${value instanceof Error ? value.message : String(value)}`);
        releaseAll(value);
      }
      dna.setThreads(threads);
      return failed;
    },
    async fuzzUntil(deadline, rnd, tally) {
      while (performance.now() < deadline) {
        const target = pick(rnd);
        const before = dna.liveTensors();
        let call: { args: unknown[]; label: string; own: boolean };
        try {
          call = fuzzedCall(target, rnd);
        } catch (error) {
          // A garbage value's own trap fired while the valid arguments were being set up.
          releaseAll(undefined);
          continue;
        }
        const description = `${target.name}(${call.label})`;
        recordCall(description);
        const { threw, value } = await settle(target, call.args);
        releaseAll(threw ? undefined : value);
        if (target.name === 'setThreads') dna.setThreads(threads);
        let outcome: Outcome = threw ? classify(value, call.own) : 'returned';
        let problem: string | undefined;
        if (outcome !== 'returned' && outcome !== 'error')
          problem =
            `${description} threw ` + `${value instanceof Error ? `${value.name}: ${value.message}` : String(value)}`;
        const leaked = dna.liveTensors() - before;
        if (threw && leaked > 0 && outcome === 'error') {
          outcome = 'leak';
          problem = `${description} threw "${(value as Error).message}" and left ${leaked} tensors alive`;
        }
        record(tally, target.name, outcome, problem);
      }
    },
  };
}
