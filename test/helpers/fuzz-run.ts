// The fuzzing process that scripts/fuzz.mjs starts: random calls of the native functions and of
// the public API for a given time, then one JSON line with the counts per outcome.
//
//   node dist/test/helpers/fuzz-run.js --seconds N --seed S --dir DIR --calls FILE [--only native|api]
//
// DIR is where API calls may write (it becomes the working directory); FILE receives the label of
// each call before it is made, so that the runner can name the call in flight when this process
// crashes or hangs.
import { openSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { makeApiFuzzer } from './fuzz-api.js';
import { fuzzNativeUntil, settleAsyncCalls } from './fuzz-native.js';
import { newTally, record, recordCallsTo } from './fuzz-outcomes.js';
import { mulberry32 } from './random.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
    dir: { type: 'string' },
    calls: { type: 'string' },
    only: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const seed = Number(values.seed);
if (!(seconds > 0) || !Number.isSafeInteger(seed) || values.dir === undefined) {
  process.stderr.write('fuzz-run: --seconds N (> 0), --seed S (an integer) and --dir DIR are required\n');
  process.exit(2);
}
if (values.calls !== undefined) recordCallsTo(openSync(values.calls, 'w'));
process.chdir(values.dir);

const runNative = values.only !== 'api';
const runApi = values.only !== 'native';
// The native functions are cheap and many; the API's calls are slower: it gets two thirds.
const nativeSeconds = runNative && runApi ? seconds / 3 : runNative ? seconds : 0;

const native = newTally();
const api = newTally();
let invalid: string[] = [];
const started = performance.now();
if (runNative) {
  fuzzNativeUntil(started + nativeSeconds * 1000, mulberry32(seed), native);
  // Asynchronous calls settle after the loop: their rejections must name the function too.
  for (const problem of await settleAsyncCalls()) record(native, 'native (rejected)', 'bad-message', problem);
}
let apiTargets = 0;
if (runApi) {
  const fuzzer = await makeApiFuzzer(values.dir);
  apiTargets = fuzzer.names.length;
  invalid = await fuzzer.checkValid();
  await fuzzer.fuzzUntil(started + seconds * 1000, mulberry32(seed + 1), api);
}
process.stdout.write(
  `${JSON.stringify({ seed, seconds: (performance.now() - started) / 1000, native, api, apiTargets, invalid })}\n`,
);
