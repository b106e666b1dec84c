// Same seed, same result on the CPU: two runs of train or search with the same options write
// byte-identical checkpoints, the searched policies have identical weights and identical
// reports, for every objective; another seed gives another result. (Across processes and after
// SIGKILL and resume: test/faults.test.ts; after an abort and resume: test/train.test.ts and
// test/search.test.ts.)
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as dna from '../lib/index.js';
import { tinyDataset } from './helpers/tiny-data.js';

dna.setThreads(1);
const root = mkdtempSync(path.join(os.tmpdir(), 'dna-determinism-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));
let runs = 0;
const outDir = () => path.join(root, `run-${++runs}`);

const data = tinyDataset(48, 3, 12);

function parameterBytes(source: dna.Parameterized): Buffer {
  const parameters = source.parameters();
  const bytes = Buffer.concat(parameters.map((p) => Buffer.from((p.data() as Float32Array).buffer)));
  dna.dispose(parameters);
  return bytes;
}

test('train: the same seed writes the same checkpoint, byte for byte; another seed does not', async (t) => {
  const options = {
    train: data,
    test: tinyDataset(16, 3, 12),
    model: dna.WRN_10_1,
    epochs: 2,
    batchSize: 16,
    preprocess: 'cifar' as const,
    augmentation: 'randaugment' as const,
  };
  const files: Buffer[] = [];
  for (const seed of [4, 4, 5]) {
    const result = await dna.train({ ...options, seed, outDir: outDir() });
    files.push(readFileSync(result.checkpoints!.last));
    result.model.dispose();
  }
  t.true(files[0].equals(files[1]));
  t.false(files[0].equals(files[2]));
});

for (const objective of dna.SEARCH_OBJECTIVES) {
  test(`search (${objective}): the same seed gives the same checkpoint, policy weights and report`, async (t) => {
    const options: dna.SearchOptions = {
      train: data,
      classifier: dna.WRN_10_1,
      policy: dna.WRN_10_1,
      epochs: 2,
      batchSize: 16,
      preprocess: 'cifar',
      objective,
      regularisers: { entropyFloor: 2, strength: 0.05 },
    };
    const results = [];
    for (const seed of [8, 8, 9]) {
      const dir = outDir();
      const result = await dna.search({ ...options, seed, outDir: dir });
      const policy = await dna.loadPolicy(result.policyFile!);
      // The report carries the policy file's provenance, whose run time differs from run to run.
      const { policy: provenance, ...report } = await dna.policyReport({ policy, data, batchSize: 16 });
      t.is(typeof provenance?.seconds, 'number');
      results.push({
        checkpoint: readFileSync(result.checkpoint!),
        weights: parameterBytes(policy.network),
        report: JSON.stringify(report),
        monitor: JSON.stringify(result.monitor),
      });
      t.true(
        parameterBytes(result.policy).equals(results.at(-1)!.weights),
        'the policy file holds the searched weights',
      );
      policy.dispose();
      result.policy.dispose();
    }
    const [a, b, c] = results;
    t.true(a.checkpoint.equals(b.checkpoint), 'checkpoints');
    t.true(a.weights.equals(b.weights), 'policy weights');
    t.true(a.report === b.report, 'reports');
    t.true(a.monitor === b.monitor, 'collapse monitor');
    t.false(a.weights.equals(c.weights), 'another seed, another policy');
  });
}
