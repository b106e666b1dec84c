// Memory over a long run: `node dist/bench/memory.js [--kind KIND] [--steps N]` (default: train,
// 20,000 steps of WRN-10-1 on 256 RGB 16x16 images, batch 16, TrivialAugment, a checkpoint every
// epoch; KIND is any workload of bench/memory-trace.ts: train, search, augmenter,
// fused-op, add). Prints live tensors and resident memory every tenth of the run and the growth
// over its second half; test/steady-memory.test.ts and test/allocator.test.ts are the bounded
// versions in `npm test`.
import { parseArgs } from 'node:util';

import { backend, setThreads } from '../lib/index.js';
import { median } from './common.js';
import { residentAfterWarmUp, traceHere, type MemoryWorkload } from './memory-trace.js';

const KINDS: MemoryWorkload[] = ['train', 'search', 'augmenter', 'fused-op', 'add'];
const { values } = parseArgs({
  options: { kind: { type: 'string', default: 'train' }, steps: { type: 'string', default: '20000' } },
});
const kind = values.kind as MemoryWorkload;
const steps = Number(values.steps);
if (!KINDS.includes(kind)) throw new Error(`--kind is one of ${KINDS.join(', ')}, got ${values.kind}`);
if (!Number.isInteger(steps) || steps < 1000)
  throw new Error(`--steps takes an integer of at least 1000, got ${values.steps}`);

setThreads(1);
const trace = await traceHere({ kind, steps });
console.log(
  `${kind}: ${trace.steps} steps in ${trace.seconds.toFixed(0)} s (${((1000 * trace.seconds) / trace.steps).toFixed(1)} ms/step), ${backend().allocator} allocator`,
);
console.log('step      live tensors   RSS (MiB, median of 100 steps)');
for (let k = 1; k <= 10; k++) {
  const at = Math.min(trace.steps, Math.round((k * trace.steps) / 10));
  console.log(
    `${String(at).padStart(6)}    ${String(trace.live[at - 1]).padStart(12)}   ${median(
      trace.rss.slice(Math.max(0, at - 100), at),
    )
      .toFixed(1)
      .padStart(8)}`,
  );
}
const half = Math.floor(trace.steps / 2);
const { growth } = residentAfterWarmUp(trace, half, 100);
const liveRange = [Math.min(...trace.live.slice(1)), Math.max(...trace.live.slice(1))];
console.log(
  `second half: RSS ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB (${((1024 * growth) / (trace.steps - half)).toFixed(2)} KiB/step); live tensors ${liveRange[0]}..${liveRange[1]}`,
);
