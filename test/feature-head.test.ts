// A policy head on the classifier's features (issue 19): the head alone trains, the features are
// detached, a search with it writes a policy file that holds the classifier as the backbone and
// loads back to the same policy, and a crafted file cannot make it allocate without bound.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import * as dna from '../lib/index.js';

const values = (x: dna.Tensor) => Array.from(x.data() as Float32Array);

test('a feature head: its own parameters only, uniform at the start, detached from the classifier', (t) => {
  const classifier = dna.wideResNet({ ...dna.WRN_10_1, classes: 4, inChannels: 1, seed: 1 });
  const policy = new dna.PolicyNetwork({
    backbone: dna.WRN_10_1,
    inChannels: 1,
    magnitudes: 'range',
    features: { network: classifier, hidden: 16 },
    seed: 2,
  });
  t.is(policy.kind, 'features');
  t.is(policy.network, classifier);
  t.deepEqual(
    dna.tidy(() => policy.parameters().map((p) => p.shape)),
    [[16, 64], [16], [7 * 105, 16], [7 * 105]],
  );
  const images = dna.rand([6, 1, 16, 16], { generator: new dna.Generator(3) });
  const start = policy.forward(images);
  t.true(values(start.logits).every((v) => v === 0));
  t.true(values(start.width!).every((v) => Math.abs(v - 0.5) < 1e-6));
  // Move the head's last layer off zero: the outputs follow the classifier's features.
  dna.noGrad(() =>
    dna.tidy(() => {
      const state = policy.head!.stateDict();
      state['out.weight'] = dna.randn(state['out.weight'].shape, { generator: new dna.Generator(4) });
      policy.head!.loadStateDict(state);
    }),
  );
  const outputs = policy.forward(images);
  outputs.logits.sum().add(outputs.width!.sum()).backward();
  t.true(
    dna.tidy(() => policy.parameters().every((p) => p.grad !== undefined)),
    'the head gets gradients',
  );
  t.true(
    dna.tidy(() => classifier.parameters().every((p) => p.grad === undefined)),
    'the classifier gets none from the policy',
  );
  const rows = values(outputs.logits);
  t.notDeepEqual(rows.slice(0, 105), rows.slice(105, 210), 'images get their own outputs');
  t.throws(
    () => new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, features: { network: policy.head! } }),
    { message: /features.network must be a WideResNet Module/ },
  );
  policy.dispose();
  t.true(classifier.isDisposed, 'the policy owns the network it reads');
});

test.serial('a search with a feature head writes a policy file that loads back to the same policy', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-features-'));
  const data = dna.stratifiedSubset(await dna.datasets.fashionMnist({ split: 'train' }), 80, 3);
  const result = await dna.search({
    train: data,
    classifier: dna.WRN_10_1,
    epochs: 1,
    batchSize: 40,
    seed: 6,
    policyHead: 'features',
    outDir: dir,
  });
  t.is(result.steps, 2);
  t.is(result.policy.kind, 'features');
  t.true(result.settled!.passed, result.settled!.failures.join('; '));
  const images = dna.tidy(() =>
    dna
      .tensor(data.images.slice(0, 5 * 784), [5, 1, 28, 28])
      .float()
      .div(255),
  );
  const before = dna.tidy(() => values(result.policy.eval().forward(images).logits));
  result.policy.dispose();
  const loaded = await dna.loadPolicy(result.policyFile!);
  t.is(loaded.network.kind, 'features');
  t.is(loaded.network.network.config.classes, 10, 'the backbone is the classifier');
  const after = dna.tidy(() => values(loaded.network.forward(images).logits));
  after.forEach((v, k) => t.true(Math.abs(v - before[k]) < 1e-5, `${v} vs ${before[k]}`));
  t.true(loaded.settled!.passed);

  // A crafted hidden size that its tensors cannot fill is refused before anything is built.
  const checkpoint = await dna.loadCheckpoint(result.policyFile!, { kind: dna.POLICY_FILE_KIND });
  const crafted = path.join(dir, 'crafted.dna');
  const meta = checkpoint.meta as Record<string, unknown>;
  await dna.saveCheckpoint(crafted, {
    kind: dna.POLICY_FILE_KIND,
    meta: { ...meta, head: { kind: 'features', hidden: 1_000_000, classes: 10 } },
    tensors: checkpoint.tensors,
  });
  dna.dispose(checkpoint.tensors);
  await t.throwsAsync(() => dna.loadPolicy(crafted), {
    message:
      /crafted\.dna: the head it records \(1000000 hidden units, 525 outputs\) has \d+ parameters, but the file holds \d+ values/,
  });
  loaded.dispose();
  images.dispose();
  await rm(dir, { recursive: true, force: true });
});
