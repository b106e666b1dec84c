// The CPU tensor allocator (native/core/allocator.cc): memory stays flat in every process, not
// just in most. With glibc's malloc the two loops below grew by hundreds of MB per 100 calls in
// some fresh processes and not in others, by the heap's layout; so each runs in many fresh
// processes and every one must stay within the bound. Also: freed memory is reused without page
// faults, idle memory goes back to the system, DNA_CPU_ALLOCATOR turns it off, and tensors freed
// at exit or after their worker thread is gone are harmless.
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import * as dna from '../lib/index.js';
import { residentAfterWarmUp, traceInChildren } from '../bench/memory-trace.js';

const BOUND = 64; // MiB of growth allowed after warm-up: a fragmenting process grows by 6 MB a call

const loops = [
  { kind: 'fused-op', what: 'the fused op on 512 images in tidy', steps: 200, warmUp: 50, window: 20, processes: 10 },
  { kind: 'add', what: 'tidy(() => x.add(1)) on a 6 MB tensor', steps: 600, warmUp: 100, window: 50, processes: 12 },
] as const;

for (const loop of loops) {
  test(`${loop.what}: resident memory grows less than ${BOUND} MiB after warm-up in each of ${loop.processes} fresh processes`, async (t) => {
    const traces = await traceInChildren({ kind: loop.kind, steps: loop.steps }, loop.processes);
    const growth = traces.map((trace) => residentAfterWarmUp(trace, loop.warmUp, loop.window).growth);
    t.log(`${traces[0].allocator} allocator; growth (MiB) per process: ${growth.map((g) => g.toFixed(1)).join(', ')}`);
    growth.forEach((g, k) =>
      t.true(
        g < BOUND,
        `process ${k + 1} grew ${g.toFixed(0)} MiB after warm-up (RSS ${traces[k].rss[loop.warmUp].toFixed(0)} -> ${traces[k].rss.at(-1)!.toFixed(0)} MiB)`,
      ),
    );
    traces.forEach((trace, k) => t.is(new Set(trace.live).size, 1, `process ${k + 1}: live tensors vary`));
  });
}

test('backend() names the allocator and memoryStats() describes it', (t) => {
  t.is(dna.backend().allocator, 'dna');
  const stats = dna.memoryStats();
  t.is(stats.allocator, 'dna');
  t.is(stats.mappingThresholdBytes, 128 * 1024);
  t.is(stats.cacheLimitBytes, 2 ** 30);
  t.is(stats.idleReleaseMs, 10_000);
  for (const value of Object.values(stats))
    if (typeof value === 'number') t.true(Number.isInteger(value) && value >= 0);
});

// Serial: the statistics are the process's.
test.serial('a freed mapping serves the next tensor of its size, its pages still resident', (t) => {
  const x = dna.rand([512, 3, 32, 32]); // 6 MiB: a mapping of its own
  dna.tidy(() => void x.add(1)); // the size class has a cached mapping from here on
  const before = dna.memoryStats();
  const faultsBefore = process.resourceUsage().minorPageFault;
  for (let k = 0; k < 20; k++) dna.tidy(() => void x.add(1));
  const faults = process.resourceUsage().minorPageFault - faultsBefore;
  const after = dna.memoryStats();
  t.is(after.mappings, before.mappings, 'no new mapping');
  t.is(after.reuses - before.reuses, 20);
  // Fresh pages would fault 1,536 times a call (6 MiB of 4 KiB pages).
  t.true(faults < 20 * 64, `${faults} page faults in 20 calls`);
  t.true(after.mappedPeakBytes >= after.mappedInUseBytes + after.mappedCachedBytes);
  x.dispose();
});

test.serial('tensors on both sides of the threshold and of the size classes keep their values', (t) => {
  const threshold = dna.memoryStats().mappingThresholdBytes;
  const edge = (threshold - 64) / 4; // float32 elements from which a tensor and its 64-byte header take a mapping
  const lengths = [1, 15, 16, 17, edge - 1, edge, edge + 1, threshold, 5 * threshold + 3, 3 << 20];
  const heapBefore = dna.memoryStats().heapInUseBytes;
  const tensors = lengths.map((n) =>
    dna.tensor(
      Float32Array.from({ length: n }, (_, i) => (i * 7) % 1000),
      [n],
    ),
  );
  t.true(dna.memoryStats().heapInUseBytes > heapBefore, 'small tensors come from malloc');
  tensors.forEach((x, k) => {
    const values = x.data() as Float32Array;
    t.is(values.length, lengths[k]);
    t.true(
      values.every((v, i) => v === (i * 7) % 1000),
      `length ${lengths[k]}`,
    );
  });
  dna.dispose(tensors);
  t.is(dna.memoryStats().heapInUseBytes, heapBefore);
});

test.serial(
  'an allocation beyond the memory is an Error saying how much was asked for, and the process goes on',
  (t) => {
    t.throws(() => dna.zeros([2 ** 47]), {
      code: 'DNA_OUT_OF_MEMORY',
      message: 'full: out of memory: tried to allocate 562949953421312 bytes on the CPU, more than any machine has',
    });
    // 256 TiB that the system refuses to map (unless it overcommits without limit: then the pages would be touched).
    if (overcommit() !== '1') {
      dna.rand([512, 3, 32, 32]).dispose(); // a cached mapping, which the failed allocation gives back before it tries again
      const before = dna.memoryStats();
      t.throws(() => dna.zeros([2 ** 46]), {
        code: 'DNA_OUT_OF_MEMORY',
        message: 'full: out of memory: tried to allocate 281474976710656 bytes on the CPU',
      });
      const after = dna.memoryStats();
      t.is(after.mappedCachedBytes, 0);
      t.true(after.releases > before.releases);
    }
    t.deepEqual(dna.ones([3]).add(1).toArray(), [2, 2, 2]);
  },
);

function overcommit(): string {
  try {
    return readFileSync('/proc/sys/vm/overcommit_memory', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

const index = fileURLToPath(new URL('../lib/index.js', import.meta.url));

/** Runs an ES module `body` (with `dna` in scope) in a fresh node process. */
function inChild(
  body: string,
  env: Record<string, string> = {},
): Promise<{ status: number | null; signal: string | null; output: string }> {
  const code = `import * as dna from ${JSON.stringify(index)};\n${body}`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('close', (status, signal) => resolve({ status, signal, output }));
  });
}

test('a mapping left unused for idleReleaseMs goes back to the system', async (t) => {
  const result = await inChild(`
    dna.rand([512, 3, 32, 32]).dispose();
    const cached = dna.memoryStats();
    await new Promise((resolve) => setTimeout(resolve, cached.idleReleaseMs + 1500));
    console.log(JSON.stringify({ cached, later: dna.memoryStats() }));`);
  t.is(result.status, 0, result.output);
  const { cached, later } = JSON.parse(result.output) as { cached: dna.MemoryStats; later: dna.MemoryStats };
  t.true(cached.mappedCachedBytes >= 6 * 2 ** 20);
  t.is(later.mappedCachedBytes, 0);
  t.is(later.releases - cached.releases, 1);
});

test('DNA_CPU_ALLOCATOR=libtorch leaves LibTorch its own allocator; another value fails the import with an Error naming it', async (t) => {
  const off = await inChild(
    `const x = dna.rand([512, 3, 32, 32]).add(1);
     console.log(JSON.stringify({ backend: dna.backend().allocator, stats: dna.memoryStats(), ok: x.shape.join() }));`,
    { DNA_CPU_ALLOCATOR: 'libtorch' },
  );
  t.is(off.status, 0, off.output);
  const report = JSON.parse(off.output) as { backend: string; stats: dna.MemoryStats; ok: string };
  t.is(report.backend, 'libtorch');
  t.is(report.stats.allocator, 'libtorch');
  t.is(report.stats.mappings + report.stats.heapInUseBytes, 0);
  t.is(report.ok, '512,3,32,32');

  const bad = await inChild('', { DNA_CPU_ALLOCATOR: 'jemalloc' });
  t.is(bad.signal, null, bad.output);
  t.is(bad.status, 1);
  t.regex(bad.output, /Error: .*DNA_CPU_ALLOCATOR must be dna \(the default\) or libtorch .*not 'jemalloc'/);
});

test('tensors freed at exit, from worker threads long gone and from intra-op threads are freed without harm', async (t) => {
  const worker = `
    import { parentPort } from 'node:worker_threads';
    const dna = await import(${JSON.stringify(index)});
    globalThis.kept = [dna.rand([256, 3, 32, 32]), dna.rand([8, 8])]; // never disposed: freed as the worker's environment goes
    parentPort.postMessage(dna.rand([512, 3, 32, 32]).sum().item() > 0);`;
  const result = await inChild(`
    import { Worker } from 'node:worker_threads';
    dna.setThreads(2);
    const run = () => new Promise((resolve, reject) => {
      const w = new Worker(${JSON.stringify(worker)}, { eval: true });
      w.on('message', resolve);
      w.on('error', reject);
    });
    const results = await Promise.all([run(), run(), run()]);
    for (let k = 0; k < 50; k++) dna.tidy(() => dna.rand([512, 3, 32, 32]).mul(2).softmax(1).sum().item());
    globalThis.kept = [dna.rand([512, 3, 32, 32]), dna.ones([3])]; // alive at exit
    console.log(JSON.stringify(results));
    process.exit(0);`);
  t.is(result.signal, null, result.output);
  t.is(result.status, 0, result.output);
  t.is(result.output.trim(), '[true,true,true]');
});
