// Memory stays flat over long runs, in every process: training, the policy search and a policy
// file's frozen augmenter, each in several fresh processes (a heap's layout, and with it whether
// it fragments, differs between processes), keep the number of live tensors constant from the
// first steps on and the resident memory within a bound after warm-up. A tensor left behind per
// step shows in the count; 49 KiB (a batch) lost per step would reach the bound in a training
// run. Longer runs: node dist/bench/memory.js.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as dna from '../lib/index.js';
import { residentAfterWarmUp, traceInChildren, traceRun } from '../bench/memory-trace.js';

const PROCESSES = 3;
const WARM_UP = 200;
const WINDOW = 100;
/** Growth allowed after warm-up (MiB): the allocator and V8 settling; it levels off (bench/memory.ts). */
const BOUND = 24;

// Serial: each test keeps a process per core busy.
for (const [kind, steps] of [
  ['train', 800],
  ['search', 400],
  ['augmenter', 400],
] as const) {
  test.serial(
    `${kind}: ${steps} steps in each of ${PROCESSES} processes keep the live tensors constant and the resident memory within ${BOUND} MiB after warm-up`,
    async (t) => {
      const traces = await traceInChildren({ kind, steps }, PROCESSES);
      const resident = traces.map((trace) => residentAfterWarmUp(trace, WARM_UP, WINDOW));
      traces.forEach((trace, k) =>
        t.log(
          `process ${k + 1}: ${trace.steps} steps in ${trace.seconds.toFixed(1)} s, ${trace.live[1]} live tensors throughout; RSS ` +
            `${trace.rss[0].toFixed(0)} MiB at step 1, ${resident[k].start.toFixed(1)} after warm-up, ${resident[k].end.toFixed(1)} at the end`,
        ),
      );
      for (const [k, trace] of traces.entries()) {
        const where = `process ${k + 1}`;
        const live = trace.live.slice(1);
        t.true(trace.steps >= steps, where);
        // The same number of tensors alive after every step (from the second on: the first builds caches).
        t.deepEqual(new Set(live).size, 1, `${where}: live tensors vary: ${Math.min(...live)}..${Math.max(...live)}`);
        t.true(
          trace.liveAfter <= trace.liveBefore + 4,
          `${where}: ${trace.liveAfter - trace.liveBefore} tensors left after the run (kernel tables are cached)`,
        );
        t.true(resident[k].growth < BOUND, `${where}: RSS grew ${resident[k].growth.toFixed(1)} MiB after warm-up`);
      }
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
