// A policy's marginal (issue 19): each image draws from another image's outputs (a derangement of
// the batch), the marginal augmenter is the conditional one on shuffled outputs, training takes it
// as an option (and `dna train --marginal`), and policy files of version 1 still load.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as dna from '../lib/index.js';
import { applySubPolicies } from '../lib/augment/fused.js';

const values = (x: dna.Tensor) => Array.from(x.data() as Float32Array);
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'dna.js');

/** Outputs whose rows are told apart by their first logit: row i has logit i. */
function labelledOutputs(B: number, S = 3): dna.PolicyOutput {
  const rows = (offset: number) =>
    dna.tensor(
      Array.from({ length: B * S }, (_, k) => Math.floor(k / S) + offset),
      [B, S],
    );
  return {
    logits: rows(0),
    p: rows(100).reshape([B, S, 1]).expand([B, S, 2]).contiguous(),
    m: rows(200).reshape([B, S, 1]).expand([B, S, 2]).contiguous(),
    width: rows(300).reshape([B, S, 1]).expand([B, S, 2]).contiguous(),
  };
}

test('shuffledOutputs: every image gets the whole outputs of another image, each image is used once', (t) => {
  for (const seed of [1, 2, 3, 4]) {
    const B = 7;
    const shuffled = dna.shuffledOutputs(labelledOutputs(B), new dna.Generator(seed));
    const source = values(shuffled.logits).filter((_, k) => k % 3 === 0);
    t.deepEqual(
      [...source].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6],
    );
    source.forEach((from, image) => t.not(from, image, `image ${image} kept its own outputs`));
    // p, m and width travel with the logits: the draw is one image's whole policy.
    t.deepEqual(
      values(shuffled.p).filter((_, k) => k % 6 === 0),
      source.map((s) => s + 100),
    );
    t.deepEqual(
      values(shuffled.width!).filter((_, k) => k % 6 === 0),
      source.map((s) => s + 300),
    );
    const again = dna.shuffledOutputs(labelledOutputs(B), new dna.Generator(seed));
    t.deepEqual(values(again.logits), values(shuffled.logits));
  }
  const one = labelledOutputs(1);
  t.deepEqual(values(dna.shuffledOutputs(one, new dna.Generator(1)).logits), values(one.logits));
});

test('the marginal augmenter is the conditional one applied to shuffled outputs', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-marginal-'));
  const network = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, magnitudes: 'range', seed: 3 });
  dna.noGrad(() =>
    dna.tidy(() => {
      const state = network.network.stateDict();
      state['fc.weight'] = dna.randn(state['fc.weight'].shape, { generator: new dna.Generator(1) });
      network.network.loadStateDict(state);
    }),
  );
  const file = path.join(dir, 'policy.dna');
  await dna.savePolicy(file, network, { dataset: 'noise', classes: ['a', 'b'], seed: 3, steps: 0, seconds: 0 });
  network.dispose();
  const policy = await dna.loadPolicy(file);
  const marginal = policy.marginal();
  t.is(policy.conditioning, 'image');
  t.is(marginal.conditioning, 'marginal');
  t.is(marginal.network, policy.network);
  const images = dna.rand([6, 1, 12, 12], { generator: new dna.Generator(2) });
  const viaMarginal = values(marginal.augment(images, { generator: new dna.Generator(9) }));
  const reference = dna.noGrad(() =>
    dna.tidy(() => {
      const generator = new dna.Generator(9);
      const shuffled = dna.shuffledOutputs(policy.network.forward(images), generator);
      const { c, b, m } = dna.samplePolicy(shuffled, { tau: 1, lambda: 1, generator });
      return values(applySubPolicies(images, c, b, m, { searchSpace: policy.searchSpace, generator }));
    }),
  );
  t.deepEqual(viaMarginal, reference);
  t.notDeepEqual(viaMarginal, values(policy.augment(images, { generator: new dna.Generator(9) })));
  policy.dispose();
  await rm(dir, { recursive: true, force: true });
});

test.serial('train takes policyMarginal, dna train --marginal; both refuse it without a policy', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-marginal-'));
  const network = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, seed: 3 });
  const file = path.join(dir, 'policy.dna');
  await dna.savePolicy(file, network, { dataset: 'tiny', classes: ['a', 'b'], seed: 3, steps: 0, seconds: 0 });
  network.dispose();
  const data = dna.stratifiedSubset(await dna.datasets.fashionMnist({ split: 'train' }), 40, 1);
  const options = { train: data, model: dna.WRN_10_1, epochs: 1, batchSize: 20, augmentation: 'dna' as const };
  const trained = await dna.train({
    ...options,
    policyFile: file,
    policyMarginal: true,
    outDir: path.join(dir, 'run'),
  });
  t.is(trained.steps, 2);
  trained.model.dispose();
  const record = await dna.loadCheckpoint(path.join(dir, 'run', 'train.last.ckpt'));
  t.regex(String((record.meta as { run: { augmentation: string } }).run.augmentation), /^dna-marginal:/);
  dna.dispose(record.tensors);
  await t.throwsAsync(() => dna.train({ ...options, augmentation: 'none', policyMarginal: true }), {
    message: /policyMarginal needs a policy/,
  });
  await t.throwsAsync(() => dna.train({ ...options, policyFile: file, policyMarginal: 'yes' as unknown as boolean }), {
    message: /policyMarginal must be true or false, got 'yes'/,
  });
  const usage = spawnSync(process.execPath, [cli, 'train', '--data', 'fashion-mnist', '--marginal'], {
    encoding: 'utf8',
  });
  t.is(usage.status, 2);
  t.regex(usage.stderr, /--marginal needs --policy FILE/);
  await rm(dir, { recursive: true, force: true });
});

test('a policy file of version 1 (point magnitudes, its own backbone, not settled) still loads', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-marginal-'));
  const network = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, seed: 5 });
  const file = path.join(dir, 'old.dna');
  const config = network.network.config;
  const tensors = network.network.stateDict();
  // The metadata exactly as version 1 wrote it.
  await dna.saveCheckpoint(file, {
    kind: dna.POLICY_FILE_KIND,
    meta: {
      version: 1,
      searchSpace: network.searchSpace,
      backbone: {
        depth: config.depth,
        widen: config.widen,
        dropout: config.dropout,
        mean: config.mean,
        std: config.std,
      },
      inChannels: 1,
      provenance: { dataset: 'old', classes: ['a'], seed: 5, steps: 10, seconds: 1, library: 'dna-augment' },
    },
    tensors,
  });
  dna.dispose(tensors);
  const images = dna.rand([3, 1, 12, 12], { generator: new dna.Generator(2) });
  const loaded = await dna.loadPolicy(file);
  t.is(loaded.network.magnitudes, 'point');
  t.is(loaded.network.kind, 'network');
  t.is(loaded.settled, undefined);
  t.deepEqual(values(loaded.network.forward(images).logits), values(network.eval().forward(images).logits));
  loaded.dispose();
  network.dispose();
  await rm(dir, { recursive: true, force: true });
});
