// Settled policies (issue 19): after a search, the frozen policy (evaluation mode, batch-norm
// statistics recomputed over the search images) gives on the search images what the search saw;
// without settling it does not; the check is recorded in the policy file.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import * as dna from '../lib/index.js';

async function searchData(n: number): Promise<dna.ImageDataset> {
  return dna.stratifiedSubset(await dna.datasets.fashionMnist({ split: 'train' }), n, 3);
}

/** A short search (8 steps, as in the issue) and the report and check of its frozen policy on the search images. */
async function searchAndReport(settle: boolean, magnitudes: dna.MagnitudeForm = 'point') {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-settle-'));
  const data = await searchData(160);
  const result = await dna.search({
    train: data,
    classifier: dna.WRN_10_1,
    policy: dna.WRN_10_1,
    epochs: 2,
    batchSize: 40,
    // A policy that moves fast (8 steps), while the running statistics still hold 43% of their start.
    policyLr: 0.01,
    seed: 5,
    magnitudes,
    settle,
    outDir: dir,
  });
  result.policy.dispose();
  const policy = await dna.loadPolicy(result.policyFile!);
  const report = await dna.policyReport({ policy, data });
  // The comparison of the settle check, on the network as the file holds it.
  const check = await dna.checkSettled(policy.network, data, { batchSize: 40, seed: 1 });
  policy.dispose();
  await rm(dir, { recursive: true, force: true });
  return { result, report, check, settled: policy.settled };
}

/** The largest difference of any op's apply mass between the frozen policy and the search's last epoch. */
function applyMassGap(report: dna.PolicyReport, monitor: dna.SearchMonitor): number {
  return Math.max(...report.overall.ops.map((op) => Math.abs(op.applyMass - monitor.applyMass[op.name])));
}

test.serial(
  "a settled frozen policy matches the search's last epoch on the search images, and says so in its file",
  async (t) => {
    const { result, report, check, settled } = await searchAndReport(true);
    t.is(result.steps, 8);
    const monitor = result.monitor!;
    const tolerance = dna.SETTLE_TOLERANCE;
    const entropyGap = Math.abs(report.overall.meanEntropy - monitor.entropy);
    t.true(entropyGap <= tolerance.lastEpochEntropy, `entropy ${report.overall.meanEntropy} vs ${monitor.entropy}`);
    t.true(
      applyMassGap(report, monitor) <= tolerance.lastEpochApplyMass,
      `apply mass gap ${applyMassGap(report, monitor)}`,
    );
    // The file's check: the same weights in training mode (batch statistics) and settled evaluation mode.
    t.truthy(settled);
    t.true(settled!.passed, settled!.failures.join('; '));
    t.is(settled!.images, 160);
    t.true(check.passed, check.failures.join('; '));
    t.true(settled!.piDistance.mean <= tolerance.piDistance);
    t.true(
      Math.abs(settled!.frozen.entropy - report.overall.meanEntropy) < 1e-3,
      'the report sees the settled network',
    );
    t.deepEqual(result.settled, settled);
  },
);

test.serial('without settling, the frozen policy is not the searched one (the check can fail)', async (t) => {
  const { check, settled } = await searchAndReport(false);
  t.is(settled, undefined);
  t.false(check.passed);
  t.true(
    check.piDistance.mean > dna.SETTLE_TOLERANCE.piDistance,
    `unsettled: mean total-variation distance ${check.piDistance.mean}, entropy ${check.frozen.entropy} (frozen) vs ` +
      `${check.training.entropy} (training mode)`,
  );
});

test.serial('settlePolicy on demand: ranges too; the network ends in evaluation mode at momentum 0.1', async (t) => {
  const data = await searchData(60);
  const policy = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, magnitudes: 'range', seed: 3 });
  // Make the outputs depend on the images, so that the comparison has something to compare.
  dna.noGrad(() =>
    dna.tidy(() => {
      const state = policy.network.stateDict();
      state['fc.weight'] = dna.randn(state['fc.weight'].shape, { generator: new dna.Generator(1) }).mul(0.3);
      policy.network.loadStateDict(state);
    }),
  );
  const check = await dna.settlePolicy(policy, data, { batchSize: 20, seed: 1 });
  t.true(check.passed, check.failures.join('; '));
  t.is(check.images, 60);
  t.true(check.outputDifference.width !== undefined);
  t.false(policy.network.training);
  const tracked = dna.tidy(() => policy.network.namedBuffers()['bn.num_batches_tracked'].item());
  t.is(tracked, 3 + 3, 'three batches to settle, three to compare (at momentum 0)');
  // Momentum is back at 0.1: a training-mode pass moves the statistics by a tenth.
  const before = dna.tidy(() => Array.from(policy.network.namedBuffers()['bn.running_mean'].data() as Float32Array));
  policy.train();
  dna.noGrad(() => dna.tidy(() => policy.network.forward(dna.rand([20, 1, 28, 28]))));
  const after = dna.tidy(() => Array.from(policy.network.namedBuffers()['bn.running_mean'].data() as Float32Array));
  t.notDeepEqual(before, after);
  policy.dispose();
});
