// Two ranks on loopback, started by `launch` (as `dna launch` starts them) and by PyTorch's own
// torchrun: collectives give every rank the combined values; a WideResNet trained with averaged
// gradients from different seeds ends bit-identical on both ranks; a network without batch norm
// trained on halves of each batch by two ranks equals one process trained on whole batches; and
// a rank waiting for a late peer keeps its event loop free.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as dna from '../lib/index.js';
import { collector, freePort, results, run, WORKER } from './helpers/distributed-run.js';
import { MLP_BATCH, mlpBatch, mlpLoss, mlpParameters } from './helpers/mlp.js';

dna.setThreads(1);

async function launchTwo(scenario: string, options: object = {}) {
  const stdout = collector();
  const stderr = collector();
  const result = await dna.launch({
    nproc: 2,
    command: process.execPath,
    args: [WORKER, scenario, JSON.stringify({ timeoutSeconds: 30, ...options })],
    stdout: stdout.stream,
    stderr: stderr.stream,
  });
  return { result, stdout: stdout.text(), stderr: stderr.text() };
}

interface Collectives {
  rank: number;
  worldSize: number;
  localRank: number;
  threads: number;
  summed: number[];
  averaged: number[];
  largest: number[];
  broadcast: number[];
  decided: { stop: boolean; nonFinite: boolean };
  counts: number[];
}

function checkCollectives(
  t: { deepEqual(a: unknown, b: unknown, message?: string): void },
  ranks: Collectives[],
): void {
  t.deepEqual(
    ranks.map((r) => r.rank),
    [0, 1],
  );
  for (const r of ranks) {
    t.deepEqual([r.worldSize, r.localRank], [2, r.rank]);
    t.deepEqual(r.summed, [3, 30], 'sum of [1, 10] and [2, 20]');
    t.deepEqual(r.averaged, [0.5, 1], 'average of [0, 0] and [1, 2]');
    t.deepEqual(r.largest, [1], 'max of the ranks (int64)');
    t.deepEqual(r.broadcast, [1, 1, 1], 'rank 1 broadcast its values');
    t.deepEqual(r.decided, { stop: true, nonFinite: false }, 'one rank wanted to stop: all stop');
    t.deepEqual(r.counts, [2, 1], 'summed counts');
  }
}

test.serial('launch: two ranks with prefixed output, one thread each, every collective combines both', async (t) => {
  const { result, stdout } = await launchTwo('collectives');
  t.is(result.exitCode, 0, stdout);
  t.deepEqual(
    result.ranks.map((r) => [r.rank, r.code, r.signal]),
    [
      [0, 0, null],
      [1, 0, null],
    ],
  );
  t.regex(stdout, /^\[rank 0\] result /m);
  t.regex(stdout, /^\[rank 1\] result /m);
  const ranks = results<Collectives>(stdout);
  checkCollectives(t, ranks);
  t.deepEqual(
    ranks.map((r) => r.threads),
    [1, 1],
    'the cores divided among the ranks',
  );
});

test.serial('SGD with averaged gradients: ranks built from different seeds end bit-identical', async (t) => {
  const { result, stdout } = await launchTwo('sgd', { steps: 3 });
  t.is(result.exitCode, 0, stdout);
  const [zero, one] = results<{ rank: number; digest: string; firstParameter: number[] }>(stdout);
  t.is(zero.digest, one.digest, 'parameters, batch-norm statistics and counts identical');
  // Without broadcastModule the ranks would have started apart (rank 1's own seed).
  const ownStart = dna.wideResNet({ ...dna.WRN_10_1, classes: 2, inChannels: 1, seed: dna.rankSeed(5, 1) });
  const rank0Start = dna.wideResNet({ ...dna.WRN_10_1, classes: 2, inChannels: 1, seed: dna.rankSeed(5, 0) });
  t.notDeepEqual(
    ownStart.namedParameters()['conv1.weight'].toArray(),
    rank0Start.namedParameters()['conv1.weight'].toArray(),
  );
  t.notDeepEqual(
    zero.firstParameter,
    (rank0Start.namedParameters()['conv1.weight'].data() as Float32Array).slice(0, 4),
    'training moved the weights',
  );
});

test.serial('gradient sync without batch norm: 2 ranks x B/2 equal 1 process x B', async (t) => {
  const steps = 4;
  const { result, stdout } = await launchTwo('mlp', { steps });
  t.is(result.exitCode, 0, stdout);
  const ranks = results<{ rank: number; parameters: number[][] }>(stdout);

  const train = (count: number) => {
    const parameters = mlpParameters();
    const optimizer = dna.sgd(parameters, { lr: 0.5 });
    for (let step = 0; step < steps; step++) {
      const { images, labels } = mlpBatch(step, 0, count);
      optimizer.zeroGrad();
      dna.tidy(() => mlpLoss(parameters, images, labels).backward());
      dna.dispose([images, labels]);
      optimizer.step();
    }
    return parameters.map((p) => Array.from(p.data() as Float32Array));
  };
  const whole = train(MLP_BATCH);
  const firstHalfOnly = train(MLP_BATCH / 2);
  const maxDifference = (a: number[][], b: number[][]) =>
    Math.max(...a.flatMap((p, i) => p.map((v, j) => Math.abs(v - b[i][j]))));
  for (const rank of ranks)
    t.true(maxDifference(rank.parameters, whole) < 1e-5, `rank ${rank.rank}: ${maxDifference(rank.parameters, whole)}`);
  t.true(maxDifference(firstHalfOnly, whole) > 1e-3, 'one rank alone would have trained differently');
});

test.serial('joining and collectives wait off the main thread: timers keep firing', async (t) => {
  const { result, stdout } = await launchTwo('responsive');
  t.is(result.exitCode, 0, stdout);
  const [waiting] = results<{ rank: number; joinMs: number; reduceMs: number; longestGap: number }>(stdout);
  t.true(
    waiting.joinMs > 300 && waiting.reduceMs > 300,
    `rank 0 waited ${Math.round(waiting.joinMs)} ms to join and ${Math.round(waiting.reduceMs)} ms to reduce`,
  );
  t.true(waiting.longestGap < 150, `the event loop went ${Math.round(waiting.longestGap)} ms without a tick`);
});

test.serial("PyTorch's torchrun starts ranks that join with initDistributed(true)", async (t) => {
  const torchrun = '/usr/bin/torchrun';
  if (!existsSync(torchrun)) {
    t.log(`skipped: ${torchrun} is missing (Debian: apt-get install python3-torch)`);
    t.pass();
    return;
  }
  // The ranks connect to the store that torchrun's agent serves: the protocols must be the same version.
  const version = spawnSync('/usr/bin/python3', ['-c', 'import torch; print(torch.__version__)'], {
    encoding: 'utf8',
  }).stdout.trim();
  const ours = dna.backend().torch;
  if (version.split('.').slice(0, 2).join('.') !== ours.split('.').slice(0, 2).join('.')) {
    t.log(`skipped: torchrun is torch ${version}, the addon is built against LibTorch ${ours} (their stores differ)`);
    t.pass();
    return;
  }
  const logDir = mkdtempSync(path.join(os.tmpdir(), 'dna-torchrun-'));
  t.teardown(() => rmSync(logDir, { recursive: true, force: true }));
  // Debian's torchrun 1.13 under Python 3.11 cannot parse its default --redirects/--tee of 0
  // (Std(0) is no longer an iterable member of the IntFlag): name one stream explicitly.
  const exit = await run(
    torchrun,
    [
      '--no_python',
      '--nproc_per_node',
      '2',
      '--master_port',
      String(await freePort()),
      '--monitor_interval',
      '0.2',
      '--redirects',
      '1',
      '--tee',
      '1',
      '--log_dir',
      logDir,
      process.execPath,
      WORKER,
      'collectives',
      JSON.stringify({ timeoutSeconds: 30 }),
    ],
    { DNA_THREADS: undefined },
    60_000,
  );
  t.is(exit.code, 0, exit.output);
  const ranks = results<Collectives>(exit.output);
  checkCollectives(t, ranks);
  t.deepEqual(
    ranks.map((r) => r.threads),
    [1, 1],
    'without DNA_THREADS each rank takes its share of the cores',
  );
});
