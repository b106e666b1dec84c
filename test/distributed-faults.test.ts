// Faults of distributed runs, all of which end in seconds with an error that says what happened:
// a rank SIGKILLed mid-run (the survivor's collective fails, and `launch` stops the rest and
// reports the dead rank), a rank that never joins (a timeout), nobody serving the store, the
// store's port already taken, a command that cannot start.
import test from 'ava';
import net from 'node:net';

import * as dna from '../lib/index.js';
import { collector, freePort, runRank, WORKER } from './helpers/distributed-run.js';

dna.setThreads(1);

// Long enough that a test passing within it proves the failure was noticed, not timed out.
const TIMEOUT_SECONDS = 30;

test('a rank SIGKILLed mid-run: the survivor fails within seconds, naming the lost connection', async (t) => {
  const port = await freePort();
  const options = { dieRank: 1, dieAt: 3, timeoutSeconds: TIMEOUT_SECONDS };
  const [survivor, killed] = await Promise.all([
    runRank('steps', 0, 2, port, options),
    runRank('steps', 1, 2, port, options),
  ]);
  t.is(killed.signal, 'SIGKILL');
  t.regex(killed.output, /^step 2$/m);
  t.is(survivor.code, 1, survivor.output);
  t.regex(
    survivor.output,
    /^error DNA_DISTRIBUTED_PEER_LOST allReduce \(rank 0 of 2\): lost the connection to another rank, which probably died \(see its output\): /m,
  );
  t.true(survivor.ms < 15_000, `the survivor took ${Math.round(survivor.ms)} ms`);
});

test('launch: a rank SIGKILLed mid-run stops the others; launch reports the rank and fails', async (t) => {
  const stdout = collector();
  const stderr = collector();
  const started = performance.now();
  const result = await dna.launch({
    nproc: 2,
    command: process.execPath,
    args: [WORKER, 'steps', JSON.stringify({ dieRank: 1, dieAt: 3, timeoutSeconds: TIMEOUT_SECONDS })],
    stdout: stdout.stream,
    stderr: stderr.stream,
    graceSeconds: 2,
  });
  const seconds = (performance.now() - started) / 1000;
  t.is(result.exitCode, 137, stdout.text() + stderr.text());
  t.like(result.failure, { rank: 1, code: null, signal: 'SIGKILL', message: 'was ended by SIGKILL' });
  t.regex(stderr.text(), /^launch: rank 1 was ended by SIGKILL; stopping the other ranks$/m);
  t.is(result.ranks.find((r) => r.rank === 0)?.code === 0, false, 'rank 0 did not finish the run');
  t.true(seconds < 15, `launch took ${seconds.toFixed(1)} s`);
});

test('launch: a failing rank exits non-zero with its last words', async (t) => {
  const stderr = collector();
  const result = await dna.launch({
    nproc: 2,
    command: process.execPath,
    args: [
      '-e',
      "if (process.env.RANK === '1') { console.error('rank one gives up'); process.exit(3) } else setTimeout(() => {}, 60000)",
    ],
    stdout: collector().stream,
    stderr: stderr.stream,
    graceSeconds: 1,
  });
  t.is(result.exitCode, 3);
  t.like(result.failure, { rank: 1, code: 3, message: 'exited with status 3; its last output:\nrank one gives up' });
  t.regex(stderr.text(), /^\[rank 1\] rank one gives up$/m);
  t.deepEqual(
    result.ranks.map((r) => [r.rank, r.signal]),
    [
      [0, 'SIGTERM'],
      [1, null],
    ],
    'rank 0 was stopped',
  );

  const missing = await dna.launch({
    nproc: 1,
    command: 'no-such-program-dna',
    stdout: collector().stream,
    stderr: collector().stream,
  });
  t.not(missing.exitCode, 0);
  t.regex(missing.failure?.message ?? '', /^could not start 'no-such-program-dna': spawn no-such-program-dna ENOENT/);
});

test('launch: aborting stops every rank', async (t) => {
  const stdout = collector();
  const controller = new AbortController();
  stdout.stream.on('data', (chunk: Buffer) => {
    if (/step 1\n/.test(chunk.toString())) controller.abort();
  });
  const started = performance.now();
  const result = await dna.launch({
    nproc: 2,
    command: process.execPath,
    args: [WORKER, 'steps', JSON.stringify({ timeoutSeconds: TIMEOUT_SECONDS })],
    stdout: stdout.stream,
    stderr: collector().stream,
    graceSeconds: 2,
    signal: controller.signal,
  });
  t.not(result.exitCode, 0);
  t.true(
    result.ranks.every((r) => r.signal !== null || r.code !== 0),
    JSON.stringify(result.ranks),
  );
  t.true(performance.now() - started < 15_000);
});

test('a rank that never joins: the others time out with a clear error', async (t) => {
  const exit = await runRank('collectives', 0, 2, await freePort(), { timeoutSeconds: 2 });
  t.is(exit.code, 1);
  t.regex(
    exit.output,
    /^error DNA_DISTRIBUTED_TIMEOUT initDistributed \(rank 0 of 2, store 127\.0\.0\.1:\d+\): timed out after 2 s waiting for every rank to join \(a rank did not start, or failed before joining\): /m,
  );
  t.true(exit.ms < 20_000, `took ${Math.round(exit.ms)} ms`);
});

test('nobody serves the store: the rank says it cannot reach it', async (t) => {
  const exit = await runRank('collectives', 1, 2, await freePort(), { timeoutSeconds: 2 });
  t.is(exit.code, 1);
  t.regex(
    exit.output,
    /^error DNA_DISTRIBUTED_UNREACHABLE initDistributed \(rank 1 of 2, store 127\.0\.0\.1:\d+\): could not reach the rendezvous store within 2 s \(is rank 0 or the launcher running\? are MASTER_ADDR and MASTER_PORT right\?\): /m,
  );
  t.true(exit.ms < 20_000, `took ${Math.round(exit.ms)} ms`);
});

test("the store's port already taken: rank 0 and launch say so", async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, resolve));
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const exit = await runRank('collectives', 0, 2, port, { timeoutSeconds: 5 });
  t.is(exit.code, 1);
  t.regex(
    exit.output,
    new RegExp(
      `^error DNA_DISTRIBUTED_PORT_IN_USE initDistributed \\(rank 0 of 2, store 127\\.0\\.0\\.1:${port}\\): cannot host the rendezvous store: its port is already in use \\(another run or program holds it\\); choose another MASTER_PORT, or let \`dna launch\` pick a free one: `,
      'm',
    ),
  );
  await t.throwsAsync(dna.launch({ nproc: 2, masterPort: port, command: process.execPath }), {
    message: new RegExp(
      `^launch: cannot serve the rendezvous store on port ${port}: cannot host the rendezvous store: its port is already in use`,
    ),
  });
});
