// The DNA search (objective joint), the policy file and the frozen policy as an augmenter.
import test from 'ava';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import * as dna from '../lib/index.js';
import { loadPolicy, search } from '../lib/search.js';

async function searchData(n: number): Promise<dna.ImageDataset> {
  return dna.stratifiedSubset(await dna.datasets.fashionMnist({ split: 'train' }), n, 3);
}

test.serial('a tiny search writes a policy file; loading it back gives the same augmentations for the same seed', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-search-'));
  const data = await searchData(200);
  const result = await search({ train: data, classifier: dna.WRN_10_1, policy: dna.WRN_10_1, epochs: 1, batchSize: 50, seed: 7, outDir: dir });
  t.is(result.steps, 4);
  t.false(result.aborted);
  t.truthy(result.policyFile);
  // The policy moved away from its neutral start (p = m = 0.5, uniform logits).
  const images = dna.tidy(() => dna.tensor(data.images.slice(0, 8 * 784), [8, 1, 28, 28]).float().div(255));
  const moved = dna.tidy(() => {
    const { logits, p, m } = result.policy.forward(images);
    return [logits.std().item(), p.sub(0.5).abs().max().item(), m.sub(0.5).abs().max().item()];
  });
  t.true(moved.every((v) => v > 0), `logits std ${moved[0]}, max |p - 0.5| ${moved[1]}, max |m - 0.5| ${moved[2]}`);
  result.policy.dispose();

  const policy = await loadPolicy(result.policyFile!);
  t.regex(policy.provenance.dataset, /^fashion-mnist/);
  t.is(policy.provenance.seed, 7);
  t.is(policy.searchSpace.subPolicies.length, 105);
  const a = dna.tidy(() => Array.from(policy.augment(images, { generator: new dna.Generator(1) }).data() as Float32Array));
  const b = dna.tidy(() => Array.from(policy.augment(images, { generator: new dna.Generator(1) }).data() as Float32Array));
  const c = dna.tidy(() => Array.from(policy.augment(images, { generator: new dna.Generator(2) }).data() as Float32Array));
  t.deepEqual(a, b);
  t.notDeepEqual(a, c);
  policy.dispose();
  images.dispose();
  await rm(dir, { recursive: true, force: true });
});

test.serial('policy files are validated: wrong kind, corruption', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-search-'));
  const data = await searchData(100);
  const trained = await dna.train({ train: data, model: dna.WRN_10_1, epochs: 1, batchSize: 50, outDir: dir });
  trained.model.dispose();
  await t.throwsAsync(loadPolicy(path.join(dir, 'train.last.ckpt')), { message: /train\.last\.ckpt/ });
  const result = await search({ train: data, classifier: dna.WRN_10_1, policy: dna.WRN_10_1, epochs: 1, batchSize: 50, outDir: dir });
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
    train: data, classifier: dna.WRN_10_1, policy: dna.WRN_10_1, epochs: 2, batchSize: 50, signal: controller.signal,
    onProgress: (p) => {
      if (p.step === 2) controller.abort();
    },
  });
  t.true(result.aborted);
  t.is(result.steps, 2);
  result.policy.dispose();
  await t.throwsAsync(search({ train: data, classifier: dna.WRN_10_1, policy: dna.WRN_10_1, epochs: 0 }), { message: /epochs must be a positive integer/ });
  await t.throwsAsync(search({ train: data, classifier: dna.WRN_10_1, policy: dna.WRN_10_1, epochs: 1, preprocess: 'imagenet' as 'cifar' }), { message: /unknown preprocess preset/ });
});
