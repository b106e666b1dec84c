// The CPU tensor allocator (native/core/allocator.cc) against LibTorch's own (glibc's malloc,
// DNA_CPU_ALLOCATOR=libtorch), by the long-loop method (bench/long-loop.ts): speed, resident
// memory and page faults of the same loops in 5 fresh processes each.
//
//   npx tsc -p . && node dist/bench/allocator.js [--write] [--seed N]
//
// With LibTorch's allocator a fragmenting process of the fused-op loop ends near 6 GB: the
// processes run one at a time. --write rewrites the '## CPU tensor allocator' section of
// bench/RESULTS.md.
import type { CpuAllocator } from '../lib/engine/backend.js';
import { backgroundNote, fmtRate, fmtRatio, measuredOn, median, rateCell, runBench } from './common.js';
import { LOOP_PROCESSES, timeLoops, type LoopTiming } from './long-loop.js';
import type { MemoryRun } from './memory-trace.js';

const SECTION = '## CPU tensor allocator';
const ALLOCATORS: CpuAllocator[] = ['dna', 'libtorch'];
const RETRY_WINDOW_S = 240;

const count = (value: number) => Math.round(value).toLocaleString('en-US');

interface Workload {
  label: string;
  run: MemoryRun;
  imagesPerStep: number;
}

const WORKLOADS: Workload[] = [
  {
    label: 'fused op, forward, 512 images 32x32, 1,000 calls',
    run: { kind: 'fused-op', steps: 1000 },
    imagesPerStep: 512,
  },
  {
    label: "a policy file's frozen augmenter, WRN-10-1, batches of 32 RGB 32x32 images, 400 calls",
    run: { kind: 'augmenter', steps: 400 },
    imagesPerStep: 32,
  },
];

async function measureAll(seed: number, command: string): Promise<string> {
  const rows: { workload: Workload; allocator: CpuAllocator; timing: LoopTiming }[] = [];
  for (const workload of WORKLOADS) {
    const loops = ALLOCATORS.map((allocator) => ({
      run: { ...workload.run, seed },
      imagesPerStep: workload.imagesPerStep,
      env: { DNA_CPU_ALLOCATOR: allocator },
    }));
    const timings = await timeLoops(loops, RETRY_WINDOW_S);
    ALLOCATORS.forEach((allocator, k) => {
      const timing = timings[k];
      console.error(
        `${workload.run.kind}, ${allocator}: ${timing.rates.map(fmtRate).join(', ')} img/s; RSS ${timing.rss.map((r) => r.toFixed(0)).join(', ')} MiB`,
      );
      rows.push({ workload, allocator, timing });
    });
  }
  const lines = rows.map(({ workload, allocator, timing: t }) =>
    [
      workload.label,
      allocator,
      rateCell(t.median, t.background),
      fmtRate(t.worst),
      fmtRatio(t.median / t.worst),
      `${median(t.rss).toFixed(0)} (${Math.max(...t.rss).toFixed(0)})`,
      `${count(median(t.faults))} (${count(Math.max(...t.faults))})`,
    ].join(' | '),
  );
  return [
    SECTION,
    '',
    `${measuredOn()}; 1 LibTorch thread.`,
    '',
    `Command: \`${command}\``,
    '',
    `Each row: the loop in ${LOOP_PROCESSES} fresh processes (bench/long-loop.ts; the two allocators' processes take turns), with \`DNA_CPU_ALLOCATOR\` ` +
      "set to the allocator: `dna` (ours, the default) or `libtorch` (LibTorch's own: glibc's malloc, as before). " +
      "A process's rate is the images of all its steps over their time. The fused op: `applySubPolicies` in `tidy` on the same " +
      "batch, each image its own random sub-policy (the loop that showed glibc's heap fragmenting). The augmenter: " +
      '`loadPolicy(file).augment(images)` of an untrained policy network.',
    '',
    `| workload | allocator | images/s, median | worst of ${LOOP_PROCESSES} | median / worst | RSS at the end, MiB: median (largest) | page faults a step over the second half: median (largest) |`,
    '|---|---|---:|---:|---:|---:|---:|',
    ...lines.map((line) => `| ${line} |`),
    '',
    backgroundNote(
      rows.map((r) => r.timing.background),
      'loop',
      'rates',
    ),
    '',
  ].join('\n');
}

await runBench('allocator', SECTION, measureAll);
