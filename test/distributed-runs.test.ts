// train, search and the CLI as ranks of a data-parallel run (two ranks on loopback, started by the
// launcher as `dna launch` starts them): both ranks end with the same weights, each ran its shard
// of every epoch, rank 0 alone wrote; a rank killed mid-run stops the run and --resume finishes it;
// a checkpoint saved in the middle of an epoch is refused by name for another number of ranks.
import test from 'ava';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as dna from '../lib/index.js';
import { collector, results, WORKER } from './helpers/distributed-run.js';
import { tinyDataset } from './helpers/tiny-data.js';
import { writeTinyIdx } from './helpers/tiny-data.js';

dna.setThreads(1);
const root = mkdtempSync(path.join(os.tmpdir(), 'dna-ranks-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'dna.js');

async function launchTwo(scenario: string, options: object = {}) {
  const stdout = collector();
  const stderr = collector();
  const result = await dna.launch({
    nproc: 2,
    command: process.execPath,
    args: [WORKER, scenario, JSON.stringify(options)],
    stdout: stdout.stream,
    stderr: stderr.stream,
    graceSeconds: 2,
  });
  return { result, stdout: stdout.text(), stderr: stderr.text() };
}

interface RunResult {
  rank: number;
  digest: string;
  steps: number;
  aborted?: boolean;
}

test.serial(
  'train on two ranks: each runs its shard, both end with the same weights, rank 0 alone writes',
  async (t) => {
    const outDir = path.join(root, 'train');
    const { result, stdout, stderr } = await launchTwo('train', { epochs: 2, outDir });
    t.is(result.exitCode, 0, stderr);
    const [zero, one] = results<RunResult>(stdout);
    t.is(zero.digest, one.digest, 'parameters and batch-norm statistics identical');
    // 48 images, 24 per rank, batches of 8: 3 steps per epoch.
    t.deepEqual([zero.steps, one.steps], [6, 6]);
    const metrics = readFileSync(path.join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    t.is(metrics.length, 2, 'one line per epoch, written once');
    t.true(existsSync(path.join(outDir, 'train.last.ckpt')));
    // The rank's checkpoint holds the weights both ranks ended with.
    const resumed = await dna.loadTrainedModel(path.join(outDir, 'train.last.ckpt'));
    const digestOf = (m: dna.Module) =>
      dna.tidy(() => Object.values(m.stateDict()).map((w) => Array.from(w.data() as Float32Array, Number).slice(0, 3)));
    t.true(digestOf(resumed).length > 0);
    resumed.dispose();
  },
);

for (const objective of ['joint', 'bilevel'] as const) {
  test.serial(`search (${objective}) on two ranks: the policy network ends the same on both`, async (t) => {
    const { result, stdout, stderr } = await launchTwo('search', { objective, epochs: 1 });
    t.is(result.exitCode, 0, stderr);
    const [zero, one] = results<RunResult>(stdout);
    t.is(zero.digest, one.digest);
    t.is(zero.steps, one.steps);
  });
}

test.serial(
  'search with ranges and a feature head on two ranks: the head and its backbone end the same on both',
  async (t) => {
    const { result, stdout, stderr } = await launchTwo('search', {
      objective: 'joint',
      magnitudes: 'range',
      policyHead: 'features',
      epochs: 1,
    });
    t.is(result.exitCode, 0, stderr);
    const [zero, one] = results<RunResult>(stdout);
    t.regex(zero.digest, /^[0-9a-f]+ [0-9a-f]+$/, 'a digest of the backbone and one of the head');
    t.is(zero.digest, one.digest);
    t.is(zero.steps, one.steps);
  },
);

test.serial('a rank killed mid-run stops the run; --resume on two ranks finishes it', async (t) => {
  const outDir = path.join(root, 'killed');
  const killed = await launchTwo('train', { epochs: 2, outDir, dieRank: 1, dieAt: 4 });
  t.not(killed.result.exitCode, 0);
  t.is(killed.result.failure?.rank, 1);
  t.regex(killed.result.failure?.message ?? '', /SIGKILL/);
  // The checkpoint of the first epoch (3 steps) survived; at an epoch's end one process can take it on.
  t.true(existsSync(path.join(outDir, 'train.last.ckpt')));
  const alone = path.join(root, 'killed-alone');
  cpSync(outDir, alone, { recursive: true });
  const single = await dna.train({
    train: tinyDataset(48, 3, 8),
    model: dna.WRN_10_1,
    epochs: 2,
    batchSize: 8,
    preprocess: 'cifar',
    augmentation: 'trivialaugment',
    seed: 1,
    outDir: alone,
    resume: true,
  });
  t.is(single.steps, 3 + 6, 'the second epoch of 48 images in 6 batches of one process');
  single.model.dispose();
  const resumed = await launchTwo('train', { epochs: 2, outDir, resume: true });
  t.is(resumed.result.exitCode, 0, resumed.stderr);
  const [zero, one] = results<RunResult>(resumed.stdout);
  t.deepEqual([zero.steps, one.steps], [6, 6]);
  t.is(zero.digest, one.digest);
});

test.serial('a checkpoint saved mid-epoch by two ranks is refused by one process, naming the ranks', async (t) => {
  const outDir = path.join(root, 'stopped');
  const stopped = await launchTwo('train', { epochs: 2, outDir, stopAt: 2 });
  t.is(stopped.result.exitCode, 0, stopped.stderr);
  t.true(results<RunResult>(stopped.stdout).every((r) => r.aborted && r.steps === 2));
  await t.throwsAsync(
    dna.train({
      train: tinyDataset(48, 3, 8),
      model: dna.WRN_10_1,
      epochs: 2,
      batchSize: 8,
      preprocess: 'cifar',
      augmentation: 'trivialaugment',
      seed: 1,
      outDir,
      resume: true,
    }),
    { message: /was saved by 2 rank\(s\) in the middle of an epoch; resume it with 2 rank\(s\) \(this run has 1\)/ },
  );
});

test.serial(
  'dna launch --nproc 2 dna train: one line of results, from rank 0; a failing rank fails the launch',
  async (t) => {
    const data = writeTinyIdx(path.join(root, 'idx'), 64, 32);
    const outDir = path.join(root, 'cli');
    const run = async (...args: string[]) => {
      const { spawnSync } = await import('node:child_process');
      return spawnSync(process.execPath, [CLI, 'launch', '--nproc', '2', 'dna', ...args], {
        encoding: 'utf8',
        timeout: 120_000,
      });
    };
    const trained = await run(
      'train',
      '--data',
      data,
      '--format',
      'idx',
      '--model',
      'wrn-10-1',
      '--epochs',
      '1',
      '--batch-size',
      '16',
      '--out',
      outDir,
      '--json',
    );
    t.is(trained.status, 0, trained.stderr);
    const lines = trained.stdout.trim().split('\n');
    t.true(
      lines.every((line) => line.startsWith('[rank 0] ')),
      trained.stdout,
    );
    const summary = JSON.parse(lines.at(-1)!.slice('[rank 0] '.length));
    t.is(summary.steps, 2, '64 images, 32 per rank, batches of 16');
    const failed = await run('train', '--data', path.join(root, 'nowhere'), '--format', 'idx');
    t.not(failed.status, 0);
    t.regex(failed.stderr, /dna launch: rank \d failed/);
  },
);
