// Distributed runs, in one process: how a rank's settings come from options and torchrun's
// environment (and the errors when they are wrong), the Gloo endpoint across hosts, sharding with
// DistributedSampler's semantics against a slow reference, per-rank seeds, the world of one that
// the loops use without distribution, and a real Gloo group of one.
import test from 'ava';
import os from 'node:os';

import * as dna from '../lib/index.js';
import { distributedSettings, glooEndpoint, threadsPerRank } from '../lib/distributed/index.js';

const torchrun = {
  RANK: '1',
  WORLD_SIZE: '4',
  LOCAL_RANK: '1',
  LOCAL_WORLD_SIZE: '2',
  MASTER_ADDR: '10.0.0.1',
  MASTER_PORT: '29501',
};

test('settings come from torchrun variables, options override them', (t) => {
  const s = distributedSettings(true, torchrun);
  t.like(s, {
    rank: 1,
    worldSize: 4,
    localRank: 1,
    localWorldSize: 2,
    masterAddr: '10.0.0.1',
    masterPort: 29501,
    multiHost: true,
  });
  t.like(s, {
    backend: 'gloo',
    device: 'cpu',
    hostStore: false,
    storePrefix: 'dna',
    timeoutSeconds: 600,
    bucketBytes: 25 * 1024 * 1024,
  });
  t.like(distributedSettings({ rank: 0, timeoutSeconds: 2, bucketMegabytes: 1 }, torchrun), {
    rank: 0,
    hostStore: true,
    timeoutSeconds: 2,
    bucketBytes: 1048576,
  });
  // One host: everything local, loopback by default; a world of one needs no port.
  t.like(distributedSettings({ rank: 1, worldSize: 2, masterPort: 1234 }, {}), {
    localRank: 1,
    localWorldSize: 2,
    masterAddr: '127.0.0.1',
    multiHost: false,
  });
  t.like(distributedSettings({ rank: 0, worldSize: 1 }, {}), { masterPort: 0, hostStore: true });
  t.like(distributedSettings({ device: 'cuda' }, torchrun), { device: 'cuda:1', backend: 'nccl' });
});

test('a store served by the launcher or torchrun: every rank a client, keys per attempt', (t) => {
  const env = {
    ...torchrun,
    RANK: '0',
    TORCHELASTIC_USE_AGENT_STORE: 'True',
    TORCHELASTIC_RESTART_COUNT: '2',
    TORCHELASTIC_RUN_ID: 'abc',
  };
  t.like(distributedSettings(true, env), { hostStore: false, storePrefix: '/worker/attempt_2/dna/abc' });
  // An explicit port is not the agent's store.
  t.like(distributedSettings({ masterPort: 4000 }, env), { hostStore: true, storePrefix: 'dna' });
});

test('missing or wrong settings are errors that name the option or variable', (t) => {
  t.throws(() => distributedSettings(true, {}), {
    message:
      'initDistributed: the world size is not set: pass { worldSize } or set WORLD_SIZE (dna launch and torchrun set it)',
  });
  t.throws(() => distributedSettings(true, { WORLD_SIZE: '2' }), {
    message: /the rank is not set: pass \{ rank \} or set RANK/,
  });
  t.throws(() => distributedSettings(true, { ...torchrun, RANK: '4' }), {
    message: "initDistributed: the environment variable RANK must be an integer in 0..3, got '4'",
  });
  t.throws(() => distributedSettings(true, { ...torchrun, MASTER_PORT: 'http' }), {
    message: "initDistributed: the environment variable MASTER_PORT must be an integer in 0..65535, got 'http'",
  });
  t.throws(() => distributedSettings({ rank: 1.5 }, torchrun), {
    message: 'initDistributed: rank must be an integer in 0..3, got 1.5',
  });
  t.throws(() => distributedSettings({ worldSize: 2, rank: 0 }, {}), {
    message: /the store's port is not set: pass \{ masterPort \} or set MASTER_PORT/,
  });
  t.throws(() => distributedSettings(true, { ...torchrun, LOCAL_WORLD_SIZE: '3' }), {
    message: 'initDistributed: the world size (4) must be a multiple of the ranks per host (localWorldSize 3)',
  });
  t.throws(() => distributedSettings(true, { ...torchrun, MASTER_ADDR: '127.0.0.1' }), {
    message:
      "initDistributed: MASTER_ADDR '127.0.0.1' is a loopback address, which the other hosts of this run cannot reach: use the address of node 0",
  });
  t.throws(() => distributedSettings({ backend: 'nccl' }, torchrun), {
    message: /the NCCL backend needs a CUDA device/,
  });
  t.throws(() => distributedSettings({ backend: 'mpi' as 'gloo' }, torchrun), {
    message: "initDistributed: backend must be 'gloo' or 'nccl', got 'mpi'",
  });
  t.throws(() => distributedSettings({ timeoutSeconds: 0 }, torchrun), {
    message: 'initDistributed: timeoutSeconds must be a positive number, got 0',
  });
  t.throws(() => distributedSettings({ rank: 1, worldSize: 2, masterPort: 0 }, {}), {
    message: /port 0 \(a free port\) can only be used by the rank that hosts the store/,
  });
  t.throws(() => distributedSettings('yes' as never, torchrun), {
    message: "initDistributed: options must be an object, got 'yes'",
  });
});

test('the Gloo endpoint: loopback on one host, a named interface, never loopback across hosts', async (t) => {
  t.deepEqual(await glooEndpoint({ socketInterface: undefined, multiHost: false, worldSize: 2, localWorldSize: 2 }), {
    address: '127.0.0.1',
  });
  const [someInterface] = Object.keys(os.networkInterfaces());
  t.deepEqual(
    await glooEndpoint({ socketInterface: someInterface, multiHost: true, worldSize: 4, localWorldSize: 2 }),
    { interface: someInterface },
  );
  await t.throwsAsync(glooEndpoint({ socketInterface: 'nosuch0', multiHost: true, worldSize: 4, localWorldSize: 2 }), {
    message:
      /^initDistributed: GLOO_SOCKET_IFNAME \(socketInterface\) 'nosuch0' names no network interface of this host \(it has /,
  });
  // Across hosts, the address the host's name resolves to; an error when that is loopback (as on
  // these machines, where the name resolves to 127.0.0.1).
  const across = glooEndpoint({ socketInterface: undefined, multiHost: true, worldSize: 4, localWorldSize: 2 });
  const resolved = await across.catch((error: Error) => error);
  if (resolved instanceof Error) {
    t.regex(
      resolved.message,
      /^initDistributed: this run spans hosts \(world size 4, 2 on this host\), but this host's name '.*' (resolves to .*, a loopback address the other hosts cannot reach|does not resolve to an address): set GLOO_SOCKET_IFNAME to the network interface that leads to the other hosts/,
    );
  } else {
    t.false(/^127\.|^::1$/.test((resolved as { address: string }).address));
  }
});

/** DistributedSampler.__iter__ written out: padded by repeating the order, then order[rank::W]. */
function samplerReference(order: number[], worldSize: number, rank: number, dropLast: boolean): number[] {
  const n = order.length;
  const perRank = dropLast && n % worldSize !== 0 ? Math.ceil((n - worldSize) / worldSize) : Math.ceil(n / worldSize);
  const total = perRank * worldSize;
  let padded = [...order];
  if (!dropLast) {
    const padding = total - n;
    if (padding <= n) padded = padded.concat(order.slice(0, padding));
    else
      padded = padded.concat(
        Array.from({ length: Math.ceil(padding / n) }, () => order)
          .flat()
          .slice(0, padding),
      );
  } else padded = padded.slice(0, total);
  return padded.filter((_, i) => i % worldSize === rank);
}

test('shards follow DistributedSampler: same order everywhere, padded or cut, order[rank::W]', (t) => {
  for (const [count, worldSize] of [
    [10, 3],
    [12, 4],
    [5, 8],
    [1, 2],
    [7, 1],
    [0, 3],
  ]) {
    for (const dropLast of [false, true]) {
      const order = Array.from(dna.epochOrder(count, { seed: 4, epoch: 2 }));
      const shards = Array.from({ length: worldSize }, (_, rank) =>
        Array.from(dna.shardIndices(count, { rank, worldSize, seed: 4, epoch: 2, dropLast })),
      );
      shards.forEach((shard, rank) =>
        t.deepEqual(
          shard,
          samplerReference(order, worldSize, rank, dropLast),
          `n=${count} W=${worldSize} rank ${rank} dropLast ${dropLast}`,
        ),
      );
      t.true(shards.every((s) => s.length === dna.shardLength(count, worldSize, dropLast)));
      if (!dropLast && count >= worldSize)
        t.deepEqual(new Set(shards.flat()).size, count, 'the shards cover the dataset');
    }
  }
  t.deepEqual(Array.from(dna.shardIndices(6, { rank: 1, worldSize: 2, shuffle: false })), [1, 3, 5]);
  t.notDeepEqual(
    Array.from(dna.shardIndices(100, { rank: 0, worldSize: 2, epoch: 0 })),
    Array.from(dna.shardIndices(100, { rank: 0, worldSize: 2, epoch: 1 })),
  );
  t.throws(() => dna.shardIndices(10, { rank: 2, worldSize: 2 }), {
    message: 'shardIndices: rank must be an integer in 0..1, got 2',
  });
  t.throws(() => dna.shardIndices(10, undefined as never), {
    message: 'shardIndices: options { rank, worldSize, ... } are required, got undefined',
  });
});

test('evaluation shards cover every image exactly once, unpadded', (t) => {
  for (const [count, worldSize] of [
    [10, 3],
    [2, 4],
    [0, 2],
    [9, 1],
  ]) {
    const shards = Array.from({ length: worldSize }, (_, rank) =>
      Array.from(dna.evaluationShard(count, rank, worldSize)),
    );
    t.deepEqual(
      shards.flat().sort((a, b) => a - b),
      Array.from({ length: count }, (_, i) => i),
    );
  }
  t.deepEqual(Array.from(dna.evaluationShard(10, 1, 3)), [1, 4, 7]);
  t.throws(() => dna.evaluationShard(10, 3, 3), { message: 'evaluationShard: rank must be an integer in 0..2, got 3' });
});

test('per-rank seeds: rank 0 keeps the seed, other ranks get distinct reproducible ones', (t) => {
  t.is(dna.rankSeed(42, 0), 42);
  const seeds = [1, 2, 3, 4].map((rank) => dna.rankSeed(42, rank));
  t.is(new Set([42, ...seeds]).size, 5);
  t.deepEqual(
    seeds,
    [1, 2, 3, 4].map((rank) => dna.rankSeed(42, rank)),
  );
  t.true(seeds.every(Number.isSafeInteger));
  t.not(dna.rankSeed(43, 1), dna.rankSeed(42, 1));
  t.throws(() => dna.rankSeed(42, -1), { message: 'rankSeed: rank must be a non-negative integer, got -1' });
});

test('threads per rank divide the cores, at least one each', (t) => {
  t.is(threadsPerRank(2, 2), 1);
  t.is(threadsPerRank(3, 16), 5);
  t.is(threadsPerRank(4, 2), 1);
});

test('a world of one: the same methods, nothing communicated', async (t) => {
  const group = dna.localGroup();
  t.like(group, { rank: 0, worldSize: 1, isDistributed: false, isMain: true, backend: 'none' });
  const x = dna.tensor([1, 2]);
  await group.allReduce(x, 'average');
  await group.broadcast([x]);
  await group.barrier();
  t.deepEqual(x.toArray(), [1, 2]);
  t.deepEqual(await group.anyRank({ stop: true, nonFinite: false }), { stop: true, nonFinite: false });
  t.deepEqual(await group.sum([3, 4]), [3, 4]);
  t.is(await dna.processGroupFor(false).then((g) => g.worldSize), 1);
  await group.destroy();
  await t.throwsAsync(group.allReduce(x), { message: 'allReduce: the process group was destroyed' });
});

test('a Gloo group of one rank: real collectives, gradients averaged over one, clear errors', async (t) => {
  t.true(dna.distributedBackends().gloo, 'this build has Gloo (libgloo-dev)');
  const group = await dna.initDistributed({ rank: 0, worldSize: 1, timeoutSeconds: 5 });
  t.like(group, { rank: 0, worldSize: 1, isDistributed: true, backend: 'gloo' });
  const x = dna.tensor([1.5, -2]);
  await group.allReduce(x, 'average');
  t.deepEqual(x.toArray(), [1.5, -2]);
  const model = dna.wideResNet({ ...dna.WRN_10_1, classes: 2, inChannels: 1, seed: 1 });
  dna.tidy(() =>
    model
      .forward(dna.rand([2, 1, 8, 8], { generator: new dna.Generator(1) }))
      .sum()
      .backward(),
  );
  const before = model.parameters().map((p) => p.grad!.toArray());
  await group.averageGradients(model);
  t.deepEqual(
    model.parameters().map((p) => p.grad!.toArray()),
    before,
  );
  // Several sources at once; a parameter without a gradient takes part with zeros.
  const extra = dna.tensor([1, 2]).requireGrad();
  await group.averageGradients(model, [extra]);
  t.deepEqual(extra.grad?.toArray(), [0, 0]);
  await t.throwsAsync(group.averageGradients(model, 'x' as never), {
    message: "averageGradients: expected a model (with parameters()) or an array of Tensors, got 'x'",
  });
  await group.broadcastModule(model);
  await group.syncBatchNormStatistics(model);
  t.deepEqual(await group.sum([2, 5]), [2, 5]);
  await t.throwsAsync(group.allReduce(dna.tensor([1, 2], undefined, { dtype: 'int64' }), 'average'), {
    message: 'distributedAllReduce: averaging needs floating-point tensors; tensor 0 is int64',
  });
  await t.throwsAsync(group.allReduce([x, 'x' as never]), {
    message: "allReduce: tensors[1] must be a Tensor, got 'x'",
  });
  await t.throwsAsync(group.broadcast(x, 1), { message: 'broadcast: root must be a rank in 0..0, got 1' });
  await t.throwsAsync(group.anyRank({ stop: 1 as never }), { message: 'anyRank: flags.stop must be a boolean, got 1' });
  await group.destroy();
  await group.destroy();
  await t.throwsAsync(group.barrier(), { message: 'barrier: the process group was destroyed' });
});

test('launch checks its options', async (t) => {
  await t.throwsAsync(dna.launch({ nproc: 0, command: 'node' }), {
    message: 'launch: nproc must be an integer in 1..1024, got 0',
  });
  await t.throwsAsync(dna.launch({ nproc: 2, nnodes: 2, command: 'node' }), {
    message: 'launch: a run across 2 hosts needs masterAddr, the address of node 0',
  });
  await t.throwsAsync(dna.launch({ nproc: 2, command: '' }), {
    message: "launch: command must be the program to run, got ''",
  });
  await t.throwsAsync(dna.launch(undefined as never), {
    message: 'launch: options { nproc, command, ... } are required, got undefined',
  });
});
