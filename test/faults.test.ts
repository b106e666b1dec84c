// Faults during runs: SIGKILL at seeded random steps of `train` and `search` always leaves a
// loadable last checkpoint and the resumed run ends where an uninterrupted one does; Ctrl-C stops
// `dna train` / `dna search` after the current step and saves; a NaN loss in a search stops it
// keeping the last good checkpoint; a full disk or an unwritable output directory gives a clear
// error and leaves the previous checkpoint as it was; on CUDA, running out of memory is an Error.
// Serial: one child process at a time, so that the machine is not crowded (other test files run beside).
import test from 'ava';
import { spawn, type SpawnOptions } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as dna from '../lib/index.js';
import { CHECKPOINT_KIND } from '../lib/run/train.js';
import { mulberry32 } from './helpers/random.js';
import { runOptions, type RunChildOptions } from './helpers/run-child.js';
import { tinyDataset, writeTinyIdx } from './helpers/tiny-data.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const runChild = path.join(here, 'helpers', 'run-child.js');
const cli = path.resolve(here, '..', 'bin', 'dna.js');
// Each process uses one LibTorch thread: the runs are tiny and the cores are shared.
const env = { ...process.env, DNA_THREADS: '1' };
dna.setThreads(1);

function tempDir(t: { teardown(fn: () => void): void }, mode?: number): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-faults-'));
  if (mode !== undefined) chmodSync(dir, mode);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Child {
  /** Resolves when the child has printed a line matching `pattern` (rejects if it exits first). */
  waitFor(pattern: RegExp): Promise<string>;
  kill(signal: NodeJS.Signals): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>;
}

function start(command: string, args: string[], options: SpawnOptions = {}): Child {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env, ...options });
  let output = '';
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  const check = () => {
    for (const waiter of [...waiters]) {
      const line = output.split('\n').find((l) => waiter.pattern.test(l));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  };
  proc.stdout!.on('data', (chunk) => {
    output += chunk;
    check();
  });
  proc.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>((resolve) =>
    proc.on('close', (code, signal) => {
      for (const waiter of waiters.splice(0))
        waiter.reject(
          new Error(`exited (${signal ?? code}) before printing ${waiter.pattern}:\n${output.slice(-2000)}`),
        );
      resolve({ code, signal, output });
    }),
  );
  const timer = setTimeout(() => proc.kill('SIGKILL'), 120_000);
  exited.then(() => clearTimeout(timer));
  return {
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        waiters.push({ pattern, resolve, reject });
        check();
      }),
    kill: (signal) => proc.kill(signal),
    exited,
  };
}

const startRun = (options: RunChildOptions, spawnOptions?: SpawnOptions) =>
  start(process.execPath, [runChild, JSON.stringify(options)], spawnOptions);

/** All parameters' bytes, in order. */
function parameterBytes(source: dna.Parameterized): Buffer {
  const parameters = source.parameters();
  const bytes = Buffer.concat(parameters.map((p) => Buffer.from((p.data() as Float32Array).buffer)));
  dna.dispose(parameters);
  return bytes;
}

async function checkpointStep(file: string, kind: string): Promise<number> {
  const checkpoint = await dna.loadCheckpoint(file, { kind });
  dna.dispose(checkpoint.tensors);
  return (checkpoint.meta as { position: { step: number } }).position.step;
}

// ---- SIGKILL ----

for (const kind of ['search', 'train'] as const) {
  test.serial(
    `${kind}: SIGKILL at seeded random steps always leaves a loadable checkpoint; the resumed run ends as an ` +
      `uninterrupted one`,
    async (t) => {
      const dir = tempDir(t);
      const epochs = 4;
      const stepsPerEpoch = 8; // 64 images, batches of 8
      const total = epochs * stepsPerEpoch;
      const checkpointKind = kind === 'search' ? dna.SEARCH_CHECKPOINT_KIND : CHECKPOINT_KIND;
      const last = path.join(dir, `${kind}.last.ckpt`);
      const rnd = mulberry32(kind === 'search' ? 101 : 102);
      let saved = 0;
      for (let round = 0; round < 3; round++) {
        // The first kill comes after the first checkpoint (the end of epoch 1); later ones anywhere.
        const from = round === 0 ? stepsPerEpoch + 1 : saved + 1;
        const at = Math.min(total - 1, from + Math.floor(rnd() * 12));
        // Killed anywhere between step `at` and the end of the next one (a save included, after an epoch's last step).
        const child = startRun({ kind, outDir: dir, epochs, holdAfter: at + 1 });
        await child.waitFor(new RegExp(`^step ${at}$`));
        child.kill('SIGKILL');
        t.is((await child.exited).signal, 'SIGKILL');
        const step = await checkpointStep(last, checkpointKind);
        t.true(
          step >= saved && step <= at + 1 && step % stepsPerEpoch === 0,
          `round ${round}: killed after step ${at}, checkpoint at step ${step} (before: ${saved})`,
        );
        saved = step;
      }
      const finished = startRun({ kind, outDir: dir, epochs });
      const done = JSON.parse((await finished.waitFor(/^done /)).slice(5)) as {
        steps: number;
        policyFile?: string;
        checkpoint?: string;
      };
      t.is((await finished.exited).code, 0);
      t.is(done.steps, total);

      // The same run, uninterrupted and in this process: the same weights.
      const reference = runOptions({ kind, epochs });
      if (kind === 'search') {
        const straight = await dna.search(reference.search);
        const policy = await dna.loadPolicy(done.policyFile!);
        t.true(parameterBytes(policy.network).equals(parameterBytes(straight.policy)), 'the same policy');
        policy.dispose();
        straight.policy.dispose();
      } else {
        const straight = await dna.train(reference.train);
        const model = await dna.loadTrainedModel(done.checkpoint!);
        t.true(parameterBytes(model).equals(parameterBytes(straight.model)), 'the same weights');
        model.dispose();
        straight.model.dispose();
      }
    },
  );
}

// ---- SIGINT ----

test.serial(
  'Ctrl-C: dna train stops after the current step, saves, exits 130, and --resume finishes the run',
  async (t) => {
    const dir = tempDir(t);
    const data = writeTinyIdx(path.join(dir, 'data'), 200, 40);
    const out = path.join(dir, 'run');
    const args = [
      cli,
      'train',
      '--data',
      data,
      '--format',
      'idx',
      '--model',
      'wrn-10-1',
      '--epochs',
      '8',
      '--batch-size',
      '10',
      '--preprocess',
      'none',
      '--out',
      out,
      '--json',
    ];
    const child = start(process.execPath, args);
    await child.waitFor(/"phase":"epoch"/); // epoch 1 done and saved; the run is in epoch 2
    child.kill('SIGINT');
    const { code, output } = await child.exited;
    t.is(code, 130, output);
    t.regex(output, /stopping after the current step/);
    const summary = JSON.parse(
      output
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .at(-1)!,
    );
    t.true(summary.aborted);
    t.true(summary.steps > 20 && summary.steps < 160, `stopped at step ${summary.steps}`);
    // The checkpoint holds the step it stopped after, not just the last epoch.
    t.is(await checkpointStep(summary.checkpoints.last, CHECKPOINT_KIND), summary.steps);

    const resumed = start(process.execPath, [...args, '--resume']);
    const after = await resumed.exited;
    t.is(after.code, 0, after.output);
    const final = JSON.parse(after.output.trim().split('\n').at(-1)!);
    t.false(final.aborted);
    t.is(final.steps, 160);
  },
);

test.serial(
  'Ctrl-C: dna search stops after the current step, saves, exits 130, and --resume finishes the search',
  async (t) => {
    const dir = tempDir(t);
    const data = writeTinyIdx(path.join(dir, 'data'), 100, 10);
    const out = path.join(dir, 'run');
    const args = [
      cli,
      'search',
      '--data',
      data,
      '--format',
      'idx',
      '--model',
      'wrn-10-1',
      '--epochs',
      '8',
      '--subset',
      '100',
      '--batch-size',
      '10',
      '--preprocess',
      'none',
      '--out',
      out,
    ];
    const child = start(process.execPath, args);
    await child.waitFor(/^search epoch 1\/8/); // printed at the end of epoch 1
    child.kill('SIGINT');
    const { code, output } = await child.exited;
    t.is(code, 130, output);
    const stopped =
      /^stopped after step (\d+), \d+s in all\ncheckpoint (.+)\ncontinue {3}dna search .* --resume$/m.exec(output);
    t.truthy(stopped, output);
    const step = Number(stopped![1]);
    t.true(step > 10 && step < 80, `stopped at step ${step}`);
    t.is(await checkpointStep(stopped![2], dna.SEARCH_CHECKPOINT_KIND), step);
    t.false(existsSync(path.join(out, 'policy.dna')), 'no policy file for a stopped search');

    const resumed = start(process.execPath, [...args, '--resume', '--json']);
    const after = await resumed.exited;
    t.is(after.code, 0, after.output);
    const final = JSON.parse(after.output.trim().split('\n').at(-1)!);
    t.false(final.aborted);
    t.is(final.steps, 80);
    const policy = await dna.loadPolicy(final.policyFile);
    policy.dispose();
  },
);

// ---- NaN ----

test.serial('a NaN loss in a search stops it with a clear message and keeps the last good checkpoint', async (t) => {
  const dir = tempDir(t);
  // One step per epoch: epoch 1 is finite and saved, the huge learning rate ruins step 2.
  const options = {
    train: tinyDataset(16),
    classifier: dna.WRN_10_1,
    policy: dna.WRN_10_1,
    epochs: 3,
    batchSize: 16,
    classifierLr: 1e30,
    outDir: dir,
    seed: 1,
  };
  const error = await t.throwsAsync(dna.search(options), { instanceOf: dna.TrainingDivergedError });
  t.regex(
    error!.message,
    /^search: the loss became (NaN|Infinity|-Infinity) at epoch 2, step 2; the last good checkpoint is .*search\.last\.ckpt$/,
  );
  const checkpoint = await dna.loadCheckpoint(path.join(dir, 'search.last.ckpt'), { kind: dna.SEARCH_CHECKPOINT_KIND });
  t.deepEqual((checkpoint.meta as { position: unknown }).position, { epoch: 1, batch: 0, step: 1 });
  const nans = dna.tidy(() =>
    Object.values(checkpoint.tensors).reduce((sum, x) => sum + (x.dtype === 'float32' ? x.isnan().sum().item() : 0), 0),
  );
  t.is(nans, 0, 'the kept weights are the good ones');
  dna.dispose(checkpoint.tensors);
  t.false(existsSync(path.join(dir, 'policy.dna')));
});

// ---- full disk, unwritable directory ----

/** Every file of a folder with its bytes. */
function snapshot(dir: string): Map<string, Buffer> {
  return new Map(
    readdirSync(dir)
      .filter((name) => statSync(path.join(dir, name)).isFile())
      .map((name) => [name, readFileSync(path.join(dir, name))]),
  );
}

/**
 * Runs `kind` for two epochs into `dir`, killed early in the second, then resumes it in a child
 * started by `spawnRun` whose checkpoint at the end must fail; returns the error it printed.
 */
async function secondEpochFails(
  t: import('ava').ExecutionContext,
  kind: 'train' | 'search',
  dir: string,
  spawnRun: (json: string) => Child,
) {
  const first = startRun({ kind, outDir: dir, epochs: 2, holdAfter: 10 });
  await first.waitFor(/^step 10$/);
  first.kill('SIGKILL');
  await first.exited;
  const before = snapshot(dir);
  const child = spawnRun(JSON.stringify({ kind, outDir: dir, epochs: 2 }));
  const { code, output } = await child.exited;
  t.is(code, 1, output);
  const after = snapshot(dir);
  // The checkpoint is the one of epoch 1, byte for byte; no temporary file is left behind.
  const checkpoint = `${kind}.last.ckpt`;
  t.true(after.get(checkpoint)!.equals(before.get(checkpoint)!), 'the previous checkpoint is untouched');
  t.deepEqual(
    [...after.keys()].filter((name) => name.includes('.tmp')),
    [],
  );
  t.is(
    await checkpointStep(path.join(dir, checkpoint), kind === 'search' ? dna.SEARCH_CHECKPOINT_KIND : CHECKPOINT_KIND),
    8,
  );
  return (
    output
      .trim()
      .split('\n')
      .find((line) => line.startsWith('error ')) ?? output
  );
}

test.serial(
  'a file-size limit that stops the next checkpoint: a clear error, the previous checkpoint untouched (train ' +
    'and search)',
  async (t) => {
    for (const kind of ['train', 'search'] as const) {
      const dir = tempDir(t);
      // ulimit -f (1 KiB blocks): the first checkpoint exists already; writing the next one fails with EFBIG.
      const message = await secondEpochFails(t, kind, dir, (json) =>
        start('bash', ['-c', 'ulimit -f 64; exec "$0" "$@"', process.execPath, runChild, json]),
      );
      t.regex(
        message,
        new RegExp(`^error CheckpointError: failed to write checkpoint .*${kind}\\.last\\.ckpt: EFBIG: file too large`),
      );
    }
  },
);

test.serial(
  'a full disk (a tmpfs filled by the run): "no space left on device", the previous checkpoint untouched',
  async (t) => {
    const { execFileSync } = await import('node:child_process');
    const dir = tempDir(t);
    const mount = path.join(dir, 'small');
    mkdirSync(mount);
    // Room for one checkpoint of the tiny training run (620 KiB) and a little more, not for a second one beside it.
    try {
      if (process.getuid?.() !== 0) throw new Error('not root');
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1000k', 'tmpfs', mount], { stdio: 'ignore' });
    } catch {
      t.log('mounting a small tmpfs needs root: checked with the file-size limit only (the test above)');
      t.pass();
      return;
    }
    try {
      const message = await secondEpochFails(t, 'train', mount, (json) => startRun(JSON.parse(json)));
      t.regex(message, /^error CheckpointError: no space left on device while writing .*train\.last\.ckpt/);
      t.log(message);
    } finally {
      execFileSync('umount', [mount]);
    }
  },
);

test.serial(
  'an unwritable output directory: a clear error naming the file, the previous checkpoint untouched',
  async (t) => {
    const dir = path.join(tempDir(t, 0o755), 'run');
    mkdirSync(dir);
    const root = process.getuid?.() === 0;
    // Root ignores permissions: then the resumed run is a child running as the user "nobody".
    const message = await secondEpochFails(t, 'train', dir, (json) => {
      if (!root) chmodSync(dir, 0o555);
      return startRun(JSON.parse(json), root ? { uid: 65534, gid: 65534 } : {});
    });
    if (!root) chmodSync(dir, 0o755);
    t.log(message);
    t.regex(message, /^error .*(EACCES|permission denied).*run\/(metrics\.jsonl|train\.last\.ckpt)/);
  },
);

// ---- CUDA ----

test.serial('on CUDA, running out of memory is an Error that says so', (t) => {
  if (!dna.backend().cuda) {
    t.log(
      'skipped: no CUDA device here (the path: c10::OutOfMemoryError becomes an Error "...: out of memory: ...", ' +
        'code DNA_OUT_OF_MEMORY, native/core/errors.cc)',
    );
    t.pass();
    return;
  }
  const error = t.throws(() => dna.full([1 << 20, 1 << 20], 1, { device: 'cuda' }), { message: /out of memory/i });
  t.is((error as { code?: string } | undefined)?.code, 'DNA_OUT_OF_MEMORY');
  // The device is still usable afterwards.
  const x = dna.ones([4], { device: 'cuda' });
  t.is(x.sum().item(), 4);
  x.dispose();
});
