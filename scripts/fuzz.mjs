#!/usr/bin/env node
// npm run fuzz -- --seconds N [--seed S] [--only native|api] [--json]
//
// Fuzzes every native function and the public API for N seconds (default 60) in a child process
// (dist/test/helpers/fuzz-run.js; `npm run fuzz` compiles it first) and reports the calls per
// outcome. The child must end by itself: a crash (a signal, an abort) or a hang (no result
// within N seconds plus a grace period) is reported with the call that was in flight.
// Exit status: 0 when every call returned or threw an Error (with a message, leaving no tensor
// behind), 1 otherwise. Errors the engine wrote ("Cannot read properties of null") instead of one
// that names the problem are listed but do not fail the run.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const child = path.join(root, 'dist', 'test', 'helpers', 'fuzz-run.js');
// Setting up the API fuzzer (a tiny search and training run) and ending take a while on a busy machine.
const GRACE_SECONDS = 90;
const PROBLEMS = ['bad-message', 'non-error', 'leak'];

/**
 * Runs the fuzzer for `seconds`; resolves to { status: 'ok' | 'problems' | 'crash' | 'hang',
 * result (the child's counts, when it finished), lastCall, signal, exitCode, stderr }.
 */
export async function fuzz({
  seconds = 60,
  seed = Math.floor(Math.random() * 2 ** 31),
  only,
  graceSeconds = GRACE_SECONDS,
} = {}) {
  if (!existsSync(child)) throw new Error(`fuzz: ${child} is missing; compile first (npx tsc -p tsconfig.json)`);
  const dir = mkdtempSync(path.join(tmpdir(), 'dna-fuzz-'));
  const calls = path.join(dir, 'calls.txt');
  const work = path.join(dir, 'work');
  const args = [child, '--seconds', String(seconds), '--seed', String(seed), '--dir', work, '--calls', calls];
  if (only !== undefined) args.push('--only', only);
  try {
    mkdirSync(work);
    // One LibTorch thread: the fuzzed tensors are tiny, and more threads only contend for the cores.
    const env = { ...process.env, DNA_THREADS: process.env.DNA_THREADS ?? '1' };
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (chunk) => (stdout += chunk));
    proc.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-20_000)));
    let hung = false;
    const timer = setTimeout(
      () => {
        hung = true;
        proc.kill('SIGKILL');
      },
      (seconds + graceSeconds) * 1000,
    );
    const [exitCode, signal] = await new Promise((resolve) => proc.on('close', (code, sig) => resolve([code, sig])));
    clearTimeout(timer);
    const lastCall = existsSync(calls) ? readFileSync(calls, 'utf8').trim() : undefined;
    const line = stdout.trim().split('\n').at(-1);
    let result;
    try {
      result = line ? JSON.parse(line) : undefined;
    } catch {
      result = undefined;
    }
    if (hung) return { status: 'hang', seed, lastCall, stderr };
    if (signal !== null || exitCode !== 0 || result === undefined)
      return { status: 'crash', seed, signal, exitCode, lastCall, stderr };
    const problems =
      result.invalid.length + PROBLEMS.reduce((sum, p) => sum + result.native.outcomes[p] + result.api.outcomes[p], 0);
    return { status: problems === 0 ? 'ok' : 'problems', seed, result, stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function table(name, tally) {
  const parts = Object.entries(tally.outcomes)
    .filter(([, n]) => n > 0)
    .map(([outcome, n]) => `${outcome} ${n}`);
  return (
    `${name.padEnd(7)} ${String(tally.calls).padStart(7)} calls of ${Object.keys(tally.targets).length} ` +
    `functions: ${parts.join(', ')}`
  );
}

async function main() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      seed: { type: 'string' },
      only: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new Error(`fuzz: --seconds must be a positive number, got ${values.seconds}`);
  if (values.only !== undefined && !['native', 'api'].includes(values.only))
    throw new Error(`fuzz: --only is native or api, got ${values.only}`);
  const outcome = await fuzz({
    seconds,
    seed: values.seed === undefined ? undefined : Number(values.seed),
    only: values.only,
  });
  if (values.json) {
    console.log(JSON.stringify(outcome));
  } else if (outcome.status === 'crash' || outcome.status === 'hang') {
    console.log(
      `fuzz (seed ${outcome.seed}): the process ` +
        `${outcome.status === 'hang' ? 'hung' : `crashed (${outcome.signal ?? `exit ${outcome.exitCode}`})`}`,
    );
    console.log(`call in flight: ${outcome.lastCall ?? 'unknown'}`);
    if (outcome.stderr) console.log(outcome.stderr.trim().split('\n').slice(-20).join('\n'));
  } else {
    const { result } = outcome;
    console.log(
      `fuzz (seed ${outcome.seed}, ${result.seconds.toFixed(1)} s): ${result.native.calls + result.api.calls} ` +
        `calls, no crash, no hang`,
    );
    console.log(table('native', result.native));
    console.log(table('api', result.api));
    for (const problem of [
      ...result.invalid.map((p) => `valid call failed: ${p}`),
      ...result.native.problems,
      ...result.api.problems,
    ])
      console.log(`  ${problem}`);
  }
  process.exitCode = outcome.status === 'ok' ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 2;
  });
}
