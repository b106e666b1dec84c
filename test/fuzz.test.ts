// Robustness of everything at once: `npm run fuzz` (scripts/fuzz.mjs) for a short, bounded time.
// Every native function and every public API function, with garbage arguments and options, bad
// tensors, bad datasets and bad files: each call returns or throws an Error, the process neither
// crashes nor hangs, and a throwing call leaves no tensor behind. A longer run: npm run fuzz -- --seconds 600.
import test from 'ava';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface Tally {
  calls: number;
  outcomes: Record<string, number>;
  targets: Record<string, number>;
  problems: string[];
}
interface FuzzOutcome {
  status: 'ok' | 'problems' | 'crash' | 'hang';
  seed: number;
  result?: { seconds: number; native: Tally; api: Tally; apiTargets: number; invalid: string[] };
  lastCall?: string;
  signal?: string;
  stderr?: string;
}
type Fuzz = (options: { seconds: number; seed?: number; only?: string; graceSeconds?: number }) => Promise<FuzzOutcome>;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { fuzz } = (await import(pathToFileURL(path.join(root, 'scripts', 'fuzz.mjs')).href)) as { fuzz: Fuzz };

const SECONDS = 30;

test('a bounded fuzz run: every call returns or throws an Error; no crash, no hang, no leak', async (t) => {
  const seed = 20260101;
  const outcome = await fuzz({ seconds: SECONDS, seed });
  t.true(
    outcome.status === 'ok' || outcome.status === 'problems',
    `${outcome.status} (seed ${seed}); call in flight: ${outcome.lastCall}\n${outcome.stderr ?? ''}`,
  );
  const result = outcome.result!;
  const summary = (tally: Tally) =>
    `${tally.calls} calls of ${Object.keys(tally.targets).length} functions: ${JSON.stringify(tally.outcomes)}`;
  t.log(`native: ${summary(result.native)}`);
  t.log(`api:    ${summary(result.api)}`);
  t.deepEqual(result.invalid, [], 'the valid call of every API function works');
  for (const [name, tally] of [
    ['native', result.native],
    ['api', result.api],
  ] as const) {
    t.is(
      tally.outcomes['non-error'],
      0,
      `${name}: something other than an Error was thrown: ${tally.problems.join('\n')}`,
    );
    t.is(tally.outcomes['bad-message'], 0, `${name}: an Error without a clear message: ${tally.problems.join('\n')}`);
    t.is(tally.outcomes.leak, 0, `${name}: a call that threw left tensors alive: ${tally.problems.join('\n')}`);
  }
  t.true(result.native.calls > 5000, `${result.native.calls} native calls`);
  t.true(result.api.calls > 2000, `${result.api.calls} API calls`);
  t.is(Object.keys(result.api.targets).length, result.apiTargets, 'every API function was called');
  // Errors the engine writes ("Cannot read properties of null") instead of one naming the
  // problem: only for exotic values (null-prototype objects, symbols, null options) now.
  const unclear = result.api.outcomes['unclear-error'];
  if (unclear > 0) t.log(`${unclear} unclear errors, e.g.\n${result.api.problems.slice(0, 5).join('\n')}`);
  t.true(
    unclear < 0.01 * result.api.calls,
    `${unclear} of ${result.api.calls} API calls threw an engine error rather than a clear one`,
  );
});

test(
  'the runner reports a fuzzing process that does not finish in time as a hang, naming the ' + 'call in flight',
  async (t) => {
    // A grace period shorter than the API fuzzer's setup: the runner must kill the child and say so.
    const outcome = await fuzz({ seconds: 0.2, only: 'api', seed: 1, graceSeconds: 0.3 });
    t.is(outcome.status, 'hang');
    t.truthy(outcome.lastCall === undefined || typeof outcome.lastCall === 'string');
  },
);
