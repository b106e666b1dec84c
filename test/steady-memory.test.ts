// Memory stays flat over long runs: thousands of steps of the TypeScript training loop (and of
// the search loop) keep the number of live tensors constant from the first steps on and the
// process's resident memory within a bound after warm-up. Any tensor left behind per step would
// show in the count; a leaked batch (49 KiB) per step would exceed the RSS bound several times.
// A longer run: node dist/bench/memory.js.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as dna from '../lib/index.js';
import { median, traceRun } from './helpers/steady-memory.js';

dna.setThreads(1);
const WARM_UP = 200;
/** Growth allowed after warm-up (MiB): the allocator and V8 settling; it levels off (bench/memory.ts). */
const BOUND = 24;

for (const [kind, steps] of [
  ['train', 1500],
  ['search', 800],
] as const) {
  test.serial(
    `${kind}: ${steps} steps keep the live tensors constant and the resident memory within ${BOUND} MiB after warm-up`,
    async (t) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-memory-'));
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      const trace = await traceRun(kind, steps, dir);
      const { live, rss } = trace;
      t.true(trace.steps >= steps);
      // The same number of tensors alive after every step (from the second on: the first builds caches).
      t.deepEqual(
        new Set(live.slice(1)).size,
        1,
        `live tensors vary: ${Math.min(...live.slice(1))}..${Math.max(...live.slice(1))}`,
      );
      t.true(
        trace.liveAfter <= trace.liveBefore + 4,
        `${trace.liveAfter - trace.liveBefore} tensors left after the run (kernel tables are cached)`,
      );
      const start = median(rss, WARM_UP, WARM_UP + 100);
      const end = median(rss, rss.length - 100);
      t.log(
        `${trace.steps} steps in ${trace.seconds.toFixed(1)} s: ${live[1]} live tensors throughout; RSS ` +
          `${rss[0].toFixed(0)} MiB at step 1, ${start.toFixed(1)} after warm-up, ${end.toFixed(1)} at the end`,
      );
      t.true(end - start < BOUND, `RSS grew ${(end - start).toFixed(1)} MiB after warm-up`);
    },
  );
}

test.serial('the check catches a leak: an augmentation that keeps one tensor per step', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-memory-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kept: dna.Tensor[] = [];
  const leaky: dna.Augmenter = (images) => {
    kept.push(dna.keep(images.clone()));
    return images;
  };
  const { live } = await traceRun('train', 200, dir, leaky);
  t.is(live.at(-1)! - live[1], live.length - 2);
  dna.dispose(kept);
});
