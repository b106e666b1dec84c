// No host synchronisation inside a step: the addon counts every read of a tensor's values by the
// host (on a GPU each one waits for the device), and a training step, a search step of every
// objective and a step with a frozen policy make none. Runs of 2 and 6 steps, with the figures read
// once at the end (syncEvery above the step count), must make the same number of host reads.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as dna from '../lib/index.js';
import { hostReads } from '../lib/engine/backend.js';
import { tinyDataset } from './helpers/tiny-data.js';

dna.setThreads(1);
const BATCH = 8;

/** Host reads made by `run` on datasets of 2 and of 6 batches: [fixed, per step]. */
async function readsOf(run: (data: dna.ImageDataset) => Promise<number>): Promise<{ fixed: number; perStep: number }> {
  const counts: { reads: number; steps: number }[] = [];
  for (const batches of [2, 6]) {
    const data = tinyDataset(batches * BATCH, 3, 8);
    const before = hostReads();
    const steps = await run(data);
    counts.push({ reads: hostReads() - before, steps });
  }
  const perStep = (counts[1].reads - counts[0].reads) / (counts[1].steps - counts[0].steps);
  return { fixed: counts[0].reads - perStep * counts[0].steps, perStep };
}

const trainRun = (augmentation: dna.Augmentation) => async (data: dna.ImageDataset) => {
  const result = await dna.train({
    train: data,
    model: dna.WRN_10_1,
    epochs: 1,
    batchSize: BATCH,
    preprocess: 'cifar',
    augmentation,
    seed: 1,
    syncEvery: 1000,
  });
  result.model.dispose();
  return result.steps;
};

for (const augmentation of ['none', 'trivialaugment', 'autoaugment'] as const) {
  test.serial(`a train step with ${augmentation} makes no host read`, async (t) => {
    const { fixed, perStep } = await readsOf(trainRun(augmentation));
    t.log(`${perStep} host reads per step, ${fixed} per run (the figures read at the end)`);
    t.is(perStep, 0);
    t.true(fixed <= 2, `${fixed} reads per run`);
  });
}

test.serial('a train step with a frozen policy makes no host read', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-reads-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const network = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 3, seed: 2 });
  const file = path.join(dir, 'policy.dna');
  await dna.savePolicy(file, network, { dataset: 'tiny', classes: ['even', 'odd'], seed: 2, steps: 0, seconds: 0 });
  network.dispose();
  const policy = await dna.loadPolicy(file);
  const { perStep } = await readsOf(trainRun(policy));
  policy.dispose();
  t.is(perStep, 0);
});

for (const objective of dna.SEARCH_OBJECTIVES) {
  test.serial(`a search step (${objective}) makes no host read`, async (t) => {
    const { fixed, perStep } = await readsOf(async (data) => {
      const result = await dna.search({
        train: data,
        classifier: dna.WRN_10_1,
        policy: dna.WRN_10_1,
        epochs: 1,
        batchSize: BATCH,
        preprocess: 'cifar',
        objective,
        regularisers: { entropyFloor: 1, changeReward: 0.5 },
        magnitudeGradient: objective === 'joint' ? 'exact' : 'straight-through',
        seed: 1,
        syncEvery: 1000,
        // The settle pass after the last step is measured on its own below.
        settle: false,
      });
      result.policy.dispose();
      return result.steps;
    });
    t.log(`${perStep} host reads per step, ${fixed} per run`);
    t.is(perStep, 0);
    t.true(fixed <= 4, `${fixed} reads per run`);
  });
}

test.serial('settling a policy reads its sums a fixed number of times, whatever the number of batches', async (t) => {
  const policy = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 3, magnitudes: 'range', seed: 3 });
  const { perStep, fixed } = await readsOf(async (data) => {
    await dna.settlePolicy(policy, data, { batchSize: BATCH, seed: 1 });
    return data.count / BATCH;
  });
  policy.dispose();
  t.is(perStep, 0);
  // The two summaries (training and evaluation mode) and the comparison's sums.
  t.is(fixed, 3);
});

test.serial('evaluation reads its sums once, whatever the number of batches', async (t) => {
  const model = dna.wideResNet({ ...dna.WRN_10_1, classes: 2, inChannels: 3, seed: 1 });
  const { perStep, fixed } = await readsOf(async (data) => {
    await dna.evaluate({ model, data, batchSize: BATCH });
    return data.count / BATCH;
  });
  model.dispose();
  t.is(perStep, 0);
  t.is(fixed, 1);
});

test.serial('the counter counts: a step that reads its loss every step shows one read per step', async (t) => {
  const { perStep } = await readsOf(async (data) => {
    const result = await dna.train({ train: data, model: dna.WRN_10_1, epochs: 1, batchSize: BATCH, syncEvery: 1 });
    result.model.dispose();
    return result.steps;
  });
  t.is(perStep, 1);
});
