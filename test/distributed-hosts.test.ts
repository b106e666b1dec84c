// A run across two hosts, on one machine: each rank in its own network namespace, the two joined
// by a veth pair, each told its interface by GLOO_SOCKET_IFNAME and the store's address by
// MASTER_ADDR, as on two real hosts (LOCAL_WORLD_SIZE 1, WORLD_SIZE 2); the second host's rank
// started by `launch` with nnodes 2. Needs root and iproute2; CI runs as root, elsewhere the
// test says why it skipped.
import test from 'ava';
import { spawnSync } from 'node:child_process';

import { LAUNCH_MAIN, results, run, WORKER } from './helpers/distributed-run.js';

function ip(...args: string[]): void {
  const done = spawnSync('ip', args, { encoding: 'utf8' });
  if (done.status !== 0) throw new Error(`ip ${args.join(' ')}: ${done.stderr.trim() || `status ${done.status}`}`);
}

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (spawnSync('ip', ['-V']).status !== 0) return 'iproute2 (ip) is missing';
  return undefined;
}

test('two hosts in network namespaces: ranks join over veth with GLOO_SOCKET_IFNAME, one of them started by launch', async (t) => {
  const reason = skipReason();
  if (reason !== undefined) {
    t.log(`skipped: ${reason}`);
    t.pass();
    return;
  }
  // Names and a subnet of this test's own, inside namespaces that it makes and removes.
  const tag = String(process.pid % 100000);
  const hosts = [`dna-a-${tag}`, `dna-b-${tag}`];
  const links = [`dnaa${tag}`, `dnab${tag}`];
  const subnet = `10.213.${process.pid % 250}`;
  const addresses = [`${subnet}.1`, `${subnet}.2`];
  t.teardown(() => {
    for (const host of hosts) spawnSync('ip', ['netns', 'del', host]);
  });
  for (const host of hosts) ip('netns', 'add', host);
  ip('link', 'add', links[0], 'type', 'veth', 'peer', 'name', links[1]);
  hosts.forEach((host, k) => {
    ip('link', 'set', links[k], 'netns', host);
    ip('-n', host, 'addr', 'add', `${addresses[k]}/24`, 'dev', links[k]);
    ip('-n', host, 'link', 'set', links[k], 'up');
    ip('-n', host, 'link', 'set', 'lo', 'up');
  });

  // Each namespace is a fresh network: the port cannot be taken there. Host 0 runs rank 0 by
  // hand (torchrun's variables set here); host 1 runs `launch` as on a second machine.
  const worker = [WORKER, 'collectives', JSON.stringify({ timeoutSeconds: 20 })];
  const ranks = await Promise.all([
    run('ip', ['netns', 'exec', hosts[0], process.execPath, ...worker], {
      RANK: '0',
      WORLD_SIZE: '2',
      LOCAL_RANK: '0',
      LOCAL_WORLD_SIZE: '1',
      MASTER_ADDR: addresses[0],
      MASTER_PORT: '29500',
      GLOO_SOCKET_IFNAME: links[0],
    }),
    run(
      'ip',
      [
        'netns',
        'exec',
        hosts[1],
        process.execPath,
        LAUNCH_MAIN,
        '--nnodes',
        '2',
        '--node-rank',
        '1',
        '--master-addr',
        addresses[0],
        '--master-port',
        '29500',
        '1',
        process.execPath,
        ...worker,
      ],
      { GLOO_SOCKET_IFNAME: links[1] },
    ),
  ]);
  ranks.forEach((exit, rank) => t.is(exit.code, 0, `rank ${rank}: ${exit.output}`));
  const found = results<{ rank: number; summed: number[]; broadcast: number[]; localRank: number }>(
    ranks.map((r) => r.output).join('\n'),
  );
  t.deepEqual(
    found.map((r) => [r.rank, r.localRank, r.summed, r.broadcast]),
    [
      [0, 0, [3, 30], [1, 1, 1]],
      [1, 0, [3, 30], [1, 1, 1]],
    ],
  );
});
