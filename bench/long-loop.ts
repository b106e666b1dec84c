// The long-loop method of bench/augment.ts and bench/allocator.ts: a row is the same long loop
// (1,000 calls of the fused op, say) in LOOP_PROCESSES fresh processes, one at a time, and
// reports the median and the worst of their rates. Short blocks in one process could not see
// what decides the speed of a long run: whether that process's heap fragments (then each call
// faults in fresh pages), which differs from process to process.
import { median, quietestAsync } from './common.js';
import { traceInChild, type MemoryRun, type MemoryTrace } from './memory-trace.js';

export const LOOP_PROCESSES = 5;

export interface LoopTiming {
  /** Images per second over the whole loop, in each process in the order they ran. */
  rates: number[];
  median: number;
  worst: number;
  /** The most cores other processes kept busy while a loop ran. */
  background: number;
  /** Resident memory at the end of each loop (MiB), and its minor page faults per step over the loop's second half. */
  rss: number[];
  faults: number[];
}

export interface Loop {
  run: MemoryRun;
  /** What a step counts for the rates: the batch's images. */
  imagesPerStep: number;
  /** Added to each process's environment. */
  env?: Record<string, string>;
}

/**
 * Each loop in `processes` fresh processes (LOOP_PROCESSES unless told). The loops take turns (the first process of each,
 * then the second of each, ...), so that a drift in the machine's speed moves all of them alike
 * and their ratios stay fair. A process disturbed by other processes' load runs again as
 * quietestAsync() says (while the bench is within its first `windowSeconds`). Throws when live
 * tensors change from step to step (a leak).
 */
export async function timeLoops(
  loops: Loop[],
  windowSeconds: number,
  processes = LOOP_PROCESSES,
): Promise<LoopTiming[]> {
  const traces: MemoryTrace[][] = loops.map(() => []);
  for (let k = 0; k < processes; k++) {
    for (const [i, { run, env }] of loops.entries()) {
      const trace = await quietestAsync(() => traceInChild({ ...run, seed: (run.seed ?? 0) + k }, env), windowSeconds);
      const live = new Set(trace.live);
      if (live.size > 1) throw new Error(`${run.kind}: tensors leaked (${[...live].join(', ')} live)`);
      traces[i].push(trace);
    }
  }
  return loops.map((loop, i) => timing(traces[i], loop.imagesPerStep));
}

function timing(traces: MemoryTrace[], imagesPerStep: number): LoopTiming {
  const rates = traces.map((t) => (imagesPerStep * t.ms.length) / (t.ms.reduce((a, b) => a + b, 0) / 1000));
  const secondHalf = (values: number[]) => values.slice(values.length >> 1);
  return {
    rates,
    median: median(rates),
    worst: Math.min(...rates),
    background: Math.max(...traces.map((t) => t.background)),
    rss: traces.map((t) => t.rss.at(-1)!),
    faults: traces.map((t) => median(secondHalf(t.faults))),
  };
}
