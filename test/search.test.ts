// The DNA search (objective joint), the policy file and the frozen policy as an augmenter.
import test from 'ava';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import * as dna from '../lib/index.js';
import { search } from '../lib/run/search.js';
import { loadPolicy } from '../lib/dna/policy-file.js';

async function searchData(n: number): Promise<dna.ImageDataset> {
  return dna.stratifiedSubset(await dna.datasets.fashionMnist({ split: 'train' }), n, 3);
}

test.serial(
  'a tiny search writes a policy file; loading it back gives the same augmentations for the same seed',
  async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-search-'));
    const data = await searchData(200);
    const result = await search({
      train: data,
      classifier: dna.WRN_10_1,
      policy: dna.WRN_10_1,
      epochs: 1,
      batchSize: 50,
      seed: 7,
      outDir: dir,
    });
    t.is(result.steps, 4);
    t.false(result.aborted);
    t.truthy(result.policyFile);
    // The policy moved away from its neutral start (p = m = 0.5, uniform logits).
    const images = dna.tidy(() =>
      dna
        .tensor(data.images.slice(0, 8 * 784), [8, 1, 28, 28])
        .float()
        .div(255),
    );
    const moved = dna.tidy(() => {
      const { logits, p, m } = result.policy.forward(images);
      return [logits.std().item(), p.sub(0.5).abs().max().item(), m.sub(0.5).abs().max().item()];
    });
    t.true(
      moved.every((v) => v > 0),
      `logits std ${moved[0]}, max |p - 0.5| ${moved[1]}, max |m - 0.5| ${moved[2]}`,
    );
    result.policy.dispose();

    const policy = await loadPolicy(result.policyFile!);
    t.regex(policy.provenance.dataset, /^fashion-mnist/);
    t.is(policy.provenance.seed, 7);
    t.is(policy.searchSpace.subPolicies.length, 105);
    const a = dna.tidy(() =>
      Array.from(policy.augment(images, { generator: new dna.Generator(1) }).data() as Float32Array),
    );
    const b = dna.tidy(() =>
      Array.from(policy.augment(images, { generator: new dna.Generator(1) }).data() as Float32Array),
    );
    const c = dna.tidy(() =>
      Array.from(policy.augment(images, { generator: new dna.Generator(2) }).data() as Float32Array),
    );
    t.deepEqual(a, b);
    t.notDeepEqual(a, c);
    policy.dispose();
    images.dispose();
    await rm(dir, { recursive: true, force: true });
  },
);

test.serial('policy files are validated: wrong kind, corruption', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-search-'));
  const data = await searchData(100);
  const trained = await dna.train({ train: data, model: dna.WRN_10_1, epochs: 1, batchSize: 50, outDir: dir });
  trained.model.dispose();
  await t.throwsAsync(loadPolicy(path.join(dir, 'train.last.ckpt')), { message: /train\.last\.ckpt/ });
  const result = await search({
    train: data,
    classifier: dna.WRN_10_1,
    policy: dna.WRN_10_1,
    epochs: 1,
    batchSize: 50,
    outDir: dir,
  });
  result.policy.dispose();
  const bytes = await readFile(result.policyFile!);
  bytes[bytes.length >> 1] ^= 0xff;
  const broken = path.join(dir, 'broken.dna');
  await writeFile(broken, bytes);
  await t.throwsAsync(loadPolicy(broken), { message: /broken\.dna/ });
  await t.throwsAsync(loadPolicy(path.join(dir, 'missing.dna')), { message: /missing\.dna/ });
  await rm(dir, { recursive: true, force: true });
});

test.serial('search stops after the current step when aborted, and bad options give clear Errors', async (t) => {
  const data = await searchData(200);
  const controller = new AbortController();
  const result = await search({
    train: data,
    classifier: dna.WRN_10_1,
    policy: dna.WRN_10_1,
    epochs: 2,
    batchSize: 50,
    signal: controller.signal,
    onProgress: (p) => {
      if (p.step === 2) controller.abort();
    },
  });
  t.true(result.aborted);
  t.is(result.steps, 2);
  result.policy.dispose();
  await t.throwsAsync(search({ train: data, classifier: dna.WRN_10_1, policy: dna.WRN_10_1, epochs: 0 }), {
    message: /epochs must be a positive integer/,
  });
  await t.throwsAsync(
    search({
      train: data,
      classifier: dna.WRN_10_1,
      policy: dna.WRN_10_1,
      epochs: 1,
      preprocess: 'imagenet' as 'cifar',
    }),
    { message: /unknown preprocess preset/ },
  );
});

function parameterValues(policy: dna.Parameterized): number[][] {
  const parameters = policy.parameters();
  const values = parameters.map((p) => Array.from(p.data() as Float32Array));
  dna.dispose(parameters);
  return values;
}

test.serial(
  'a search stopped and resumed from its checkpoint ends with the same policy as an uninterrupted one',
  async (t) => {
    const data = await searchData(150);
    const options = {
      train: data,
      classifier: dna.WRN_10_1,
      policy: dna.WRN_10_1,
      epochs: 2,
      batchSize: 50,
      seed: 5,
      preprocess: 'cifar' as const,
    };
    const straight = await search(options);
    const expected = parameterValues(straight.policy);
    straight.policy.dispose();

    const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-search-resume-'));
    const controller = new AbortController();
    const first = await search({
      ...options,
      outDir: dir,
      signal: controller.signal,
      onProgress: (p) => p.phase === 'step' && p.step === 4 && controller.abort(),
    });
    t.true(first.aborted);
    t.is(first.steps, 4);
    t.is(first.policyFile, undefined);
    first.policy.dispose();
    const resumed = await search({ ...options, outDir: dir, resume: true });
    t.false(resumed.aborted);
    t.is(resumed.steps, 6);
    t.deepEqual(parameterValues(resumed.policy), expected);
    resumed.policy.dispose();
    const lines = (await readFile(resumed.metrics!, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    t.deepEqual(
      lines.map((l) => l.epoch),
      [1, 2],
    );

    // A checkpoint of another search (other batch size) is refused, not silently reused.
    await t.throwsAsync(search({ ...options, batchSize: 30, outDir: dir, resume: true }), {
      instanceOf: dna.RunSettingsError,
      message: /search\.last\.ckpt was written by a run with other settings: batchSize 50 \(now 30\);/,
    });
    await rm(dir, { recursive: true, force: true });
  },
);

test.serial('presets give the paper settings, explicit options override them', async (t) => {
  t.is(dna.PAPER_PRESETS.cifar10.search.subset, 4000);
  t.is(dna.PAPER_PRESETS.cifar100.search.batchSize, 32);
  t.is(dna.PAPER_PRESETS.svhn.train.lr, 0.01);
  t.deepEqual(dna.PAPER_PRESETS.svhn.search.classifier, dna.WRN_28_10);
  const data = await searchData(100);
  // cifar100's preset: batch 32, subset 4000 (all 100 here); the explicit options shrink the rest.
  const result = await search({
    train: data,
    preset: 'cifar100',
    classifier: dna.WRN_10_1,
    policy: dna.WRN_10_1,
    epochs: 1,
    preprocess: 'none',
  });
  t.is(result.steps, Math.ceil(100 / 32));
  result.policy.dispose();
  await t.throwsAsync(search({ train: data, preset: 'imagenet' as 'cifar10', epochs: 1 }), {
    message: /unknown preset 'imagenet' \(one of cifar10, cifar100, svhn\)/,
  });
  await t.throwsAsync(search({ train: data, epochs: 1 }), { message: /give the classifier and policy backbones/ });
});

/**
 * Two classes told apart only by brightness (dark and bright noise). AutoContrast stretches
 * every image to the full range and so destroys the label signal; the two shifts keep it.
 * (Invert would not do: applied to every image it only relabels the brightness.)
 */
function brightnessClasses(count: number, seed: number): dna.ImageDataset {
  const size = 8 * 8;
  const images = new Uint8Array(count * size);
  const labels = new Int32Array(count);
  let state = seed >>> 0;
  const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  for (let i = 0; i < count; i++) {
    labels[i] = i % 2;
    for (let k = 0; k < size; k++)
      images[i * size + k] = Math.round(255 * (labels[i] === 0 ? 0.05 + 0.3 * random() : 0.65 + 0.3 * random()));
  }
  return { name: 'brightness', images, labels, count, shape: [1, 8, 8], classes: ['dark', 'bright'] };
}

test.serial('under joint, the policy learns to avoid an op that destroys the label signal', async (t) => {
  const ops = ['AutoContrast', 'TranslateX', 'ShearX'].map((name) => dna.findOp(name));
  const space: dna.SearchSpace = { ops, subPolicies: dna.subPolicies(ops) };
  const data = brightnessClasses(256, 1);
  const probe = dna.tidy(() =>
    dna
      .tensor(data.images.slice(0, 64 * 64), [64, 1, 8, 8])
      .float()
      .div(255),
  );
  // Expected applications of AutoContrast per image: sum over the slots holding it of pi * p.
  const destroyerMass = (policy: dna.PolicyNetwork) =>
    dna.noGrad(() =>
      dna.tidy(() => {
        const { logits, p } = policy.forward(probe);
        const pi = logits.softmax(1);
        const mask = dna.tensor(
          space.subPolicies.flatMap(([i, j]) => [i === 0 ? 1 : 0, j === 0 ? 1 : 0]),
          [3, 2],
        );
        return pi.unsqueeze(2).mul(p).mul(mask).sum([1, 2]).mean().item();
      }),
    );
  const result = await search({
    train: data,
    classifier: dna.WRN_10_1,
    policy: dna.WRN_10_1,
    searchSpace: space,
    epochs: 6,
    batchSize: 32,
    policyLr: 0.02,
    seed: 2,
  });
  const initial = 0.5 * (2 / 3); // uniform pi (2 of 3 sub-policies hold AutoContrast), p = 0.5
  const final = destroyerMass(result.policy);
  t.log(`AutoContrast apply mass ${final.toFixed(3)}, from ${initial.toFixed(3)}`);
  t.true(final < 0.6 * initial, `AutoContrast apply mass ${final.toFixed(3)} (start ${initial.toFixed(3)})`);
  result.policy.dispose();
  probe.dispose();
});

test.serial(
  "train with augmentation 'dna': the searched policy augments each image; same seed, same weights; clear errors",
  async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-train-policy-'));
    const data = await searchData(100);
    const live = dna.liveTensors();
    const searched = await search({
      train: data,
      classifier: dna.WRN_10_1,
      policy: dna.WRN_10_1,
      epochs: 1,
      batchSize: 50,
      seed: 3,
      outDir: dir,
    });
    const before = parameterValues(searched.policy);
    searched.policy.dispose();
    const options = { train: data, model: dna.WRN_10_1, epochs: 1, batchSize: 50, seed: 4 };
    const weights = async (extra: Partial<dna.TrainOptions>) => {
      const result = await dna.train({ ...options, ...extra });
      const values = parameterValues(result.model);
      result.model.dispose();
      return values;
    };
    const withPolicy = await weights({ augmentation: 'dna', policyFile: searched.policyFile });
    t.deepEqual(await weights({ augmentation: 'dna', policyFile: searched.policyFile }), withPolicy);
    t.notDeepEqual(await weights({ augmentation: 'none' }), withPolicy);
    // A loaded policy works the same way, and stays frozen.
    const loaded = await loadPolicy(searched.policyFile!);
    t.deepEqual(await weights({ augmentation: loaded }), withPolicy);
    t.deepEqual(parameterValues(loaded.network), before);
    loaded.dispose();

    await t.throwsAsync(dna.train({ ...options, augmentation: 'dna' }), {
      message: /augmentation 'dna' needs policyFile/,
    });
    await t.throwsAsync(dna.train({ ...options, policyFile: searched.policyFile }), {
      message: /policyFile goes with augmentation: 'dna'/,
    });
    const rgb: dna.ImageDataset = {
      name: 'rgb',
      images: new Uint8Array(4 * 3 * 28 * 28),
      labels: new Int32Array([0, 1, 0, 1]),
      count: 4,
      shape: [3, 28, 28],
      classes: ['a', 'b'],
    };
    await t.throwsAsync(dna.train({ ...options, train: rgb, augmentation: 'dna', policyFile: searched.policyFile }), {
      message: /a policy for 1-channel images, the data has 3 channels/,
    });
    t.is(dna.liveTensors(), live, 'the policy loaded for training, and for the failed runs, is disposed');
    await rm(dir, { recursive: true, force: true });
  },
);
