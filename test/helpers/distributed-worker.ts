// One rank of the distributed tests: `node distributed-worker.js <scenario> ['<json>']`, started
// with torchrun's variables (by the tests, by `launch`, or by PyTorch's torchrun). It joins with
// initDistributed(true), runs the scenario, prints `result <JSON>` and exits 0; on an error it
// prints `error <code> <message>` and exits 1.
//   collectives     allReduce (sum, average, max), broadcast from the last rank, barrier, anyRank, sum
//   sgd             WRN-10-1 from a per-rank seed, broadcastModule, `steps` SGD steps on the rank's
//                   shard with averageGradients, syncBatchNormStatistics: a digest of the state
//   mlp             a two-layer perceptron (no batch norm), `steps` SGD steps on the rank's half of
//                   each batch, its two layers' gradients averaged as two sources: the parameters
//   steps           allReduce in a loop, printing `step N`; the rank `dieRank` SIGKILLs itself at `dieAt`
//   responsive      the last rank joins and reduces 600 ms late; the others time the longest gap
//                   between ticks of a 10 ms timer while they wait (joining is in the scenario)
//   train           dna.train on 48 tiny RGB images as one rank (`epochs`, `outDir`, `resume`; the rank
//                   `dieRank` SIGKILLs itself after step `dieAt`; every rank stops itself after step
//                   `stopAt`): a digest of the trained weights, the steps and whether it was stopped
//   search          dna.search (`objective`, `epochs`) as one rank: a digest of the policy network
import { createHash } from 'node:crypto';

import * as dna from '../../lib/index.js';
import { mlpBatch, mlpParameters, mlpLoss, MLP_BATCH } from './mlp.js';
import { tinyDataset } from './tiny-data.js';

interface Options {
  steps?: number;
  dieRank?: number;
  dieAt?: number;
  stopAt?: number;
  timeoutSeconds?: number;
  epochs?: number;
  outDir?: string;
  resume?: boolean;
  objective?: dna.SearchObjective;
  magnitudes?: dna.MagnitudeForm;
  policyHead?: 'network' | 'features';
}

const [scenario, json] = process.argv.slice(2);
const options = JSON.parse(json ?? '{}') as Options;

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function collectives(group: dna.ProcessGroup) {
  const { rank, worldSize } = group;
  const summed = dna.tensor([rank + 1, 10 * (rank + 1)]);
  await group.allReduce(summed, 'sum');
  const averaged = dna.tensor([rank, 2 * rank]);
  await group.allReduce([averaged], 'average');
  const largest = dna.tensor([rank], undefined, { dtype: 'int64' });
  await group.allReduce(largest, 'max');
  const broadcast = dna.tensor([rank, rank, rank]);
  await group.broadcast(broadcast, worldSize - 1);
  await group.barrier();
  const decided = await group.anyRank({ stop: rank === worldSize - 1, nonFinite: false });
  const counts = await group.sum([1, rank]);
  return {
    rank,
    worldSize,
    localRank: group.localRank,
    backend: group.backend,
    threads: dna.backend().threads,
    summed: summed.toArray(),
    averaged: averaged.toArray(),
    largest: largest.toArray(),
    broadcast: broadcast.toArray(),
    decided,
    counts,
  };
}

/** A digest of a module's state (every tensor, by name). */
function digestOf(module: dna.Module): string {
  const state = module.stateDict();
  const digest = createHash('sha256');
  for (const name of Object.keys(state).sort())
    digest.update(name).update(Buffer.from((state[name].data() as ArrayLike<number> & ArrayBufferView).buffer));
  dna.dispose(state);
  return digest.digest('hex');
}

async function train(group: dna.ProcessGroup) {
  const stop = new AbortController();
  const result = await dna.train({
    train: tinyDataset(48, 3, 8),
    model: dna.WRN_10_1,
    epochs: options.epochs ?? 2,
    batchSize: 8,
    preprocess: 'cifar',
    augmentation: 'trivialaugment',
    seed: 1,
    outDir: options.outDir,
    resume: options.resume,
    distributed: group,
    signal: stop.signal,
    onProgress: (p) => {
      if (p.phase !== 'step') return;
      if (group.rank === options.dieRank && p.step === options.dieAt) process.kill(process.pid, 'SIGKILL');
      if (p.step === options.stopAt) stop.abort();
    },
  });
  const digest = digestOf(result.model);
  result.model.dispose();
  return { rank: group.rank, digest, steps: result.steps, aborted: result.aborted };
}

async function search(group: dna.ProcessGroup) {
  const result = await dna.search({
    train: tinyDataset(48, 3, 8),
    classifier: dna.WRN_10_1,
    policy: dna.WRN_10_1,
    epochs: options.epochs ?? 1,
    batchSize: 8,
    preprocess: 'cifar',
    objective: options.objective ?? 'joint',
    magnitudes: options.magnitudes,
    policyHead: options.policyHead,
    seed: 1,
    distributed: group,
  });
  // A feature head's backbone is the classifier; the head is what its search trains.
  const { network, head } = result.policy;
  const digest = digestOf(network) + (head === undefined ? '' : ` ${digestOf(head)}`);
  result.policy.dispose();
  return { rank: group.rank, digest, steps: result.steps };
}

async function sgd(group: dna.ProcessGroup) {
  const model = dna.wideResNet({ ...dna.WRN_10_1, classes: 2, inChannels: 1, seed: dna.rankSeed(5, group.rank) });
  await group.broadcastModule(model);
  const optimizer = dna.sgd(model, { lr: 0.1, momentum: 0.9 });
  const data = tinyDataset(32);
  const indices = dna.shardIndices(data.count, { rank: group.rank, worldSize: group.worldSize, seed: 1 });
  const shard = dna.subset(data, indices);
  for (let step = 0; step < (options.steps ?? 3); step++) {
    for (const batch of dna.batches(shard, { batchSize: 8, shuffle: false, startBatch: step % 2, epoch: 0 })) {
      optimizer.zeroGrad();
      dna.tidy(() => dna.crossEntropy(model.forward(batch.images), batch.labels).backward());
      dna.dispose(batch);
      await group.averageGradients(model);
      optimizer.step();
      break;
    }
  }
  await group.syncBatchNormStatistics(model);
  const state = model.stateDict();
  const digest = createHash('sha256');
  for (const name of Object.keys(state).sort())
    digest.update(name).update(Buffer.from((state[name].data() as ArrayLike<number> & ArrayBufferView).buffer));
  const firstParameter = Array.from(state['conv1.weight'].data() as Float32Array).slice(0, 4);
  dna.dispose(state);
  return { rank: group.rank, digest: digest.digest('hex'), firstParameter };
}

async function mlp(group: dna.ProcessGroup) {
  const parameters = mlpParameters();
  const optimizer = dna.sgd(parameters, { lr: 0.5 });
  const half = MLP_BATCH / group.worldSize;
  for (let step = 0; step < (options.steps ?? 3); step++) {
    const { images, labels } = mlpBatch(step, group.rank * half, half);
    optimizer.zeroGrad();
    dna.tidy(() => mlpLoss(parameters, images, labels).backward());
    dna.dispose([images, labels]);
    // Two sources in one call, as a search averages its classifier's and policy's gradients.
    await group.averageGradients(parameters.slice(0, 2), parameters.slice(2));
    optimizer.step();
  }
  return { rank: group.rank, parameters: parameters.map((p) => Array.from(p.data() as Float32Array)) };
}

async function steps(group: dna.ProcessGroup) {
  const value = dna.tensor([1]);
  for (let step = 0; step < (options.steps ?? 1000); step++) {
    if (group.rank === options.dieRank && step === options.dieAt) process.kill(process.pid, 'SIGKILL');
    await group.allReduce(value, 'average');
    print(`step ${step}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { rank: group.rank };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Joins late on the last rank; elsewhere measures how long the event loop went without a tick while waiting. */
async function responsive() {
  const late = Number(process.env.RANK) === Number(process.env.WORLD_SIZE) - 1;
  let last = performance.now();
  let longestGap = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
  }, 10);
  if (late) await sleep(600);
  const started = performance.now();
  const group = await dna.initDistributed({ timeoutSeconds: 30 });
  const joinMs = performance.now() - started;
  if (late) await sleep(600);
  const reduceStarted = performance.now();
  await group.allReduce(dna.tensor([1]));
  const reduceMs = performance.now() - reduceStarted;
  clearInterval(ticker);
  await group.destroy();
  return { rank: group.rank, joinMs, reduceMs, longestGap };
}

const scenarios: Record<string, (group: dna.ProcessGroup) => Promise<unknown>> = {
  collectives,
  sgd,
  mlp,
  steps,
  train,
  search,
};

try {
  if (scenario === 'responsive') {
    print(`result ${JSON.stringify(await responsive())}`);
    process.exit(0);
  }
  const run = scenarios[scenario];
  if (run === undefined) throw new Error(`unknown scenario ${scenario}`);
  const group = await dna.initDistributed(
    options.timeoutSeconds === undefined ? true : { timeoutSeconds: options.timeoutSeconds },
  );
  const result = await run(group);
  await group.destroy();
  print(`result ${JSON.stringify(result)}`);
} catch (error) {
  const code = (error as { code?: string }).code ?? 'none';
  print(`error ${code} ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
