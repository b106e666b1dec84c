// Live tensors and resident memory, step by step, over a long run of one workload, in this
// process or in fresh child processes: the measurement behind test/steady-memory.test.ts and
// test/allocator.test.ts (bounded, in many processes), bench/memory.ts (long) and the long-loop
// benches (bench/long-loop.ts); here in bench/, as those ship with the package (dna bench). Whether a heap
// fragments depends on its layout, which differs from process to process: one process that
// stays flat proves little.
//
//   node dist/bench/memory-trace.js '<json MemoryRun>'   prints the MemoryTrace as JSON
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as dna from '../lib/index.js';
import { backgroundCores, cpuSnapshot, median, subPolicyWorkload, tinyDataset } from './common.js';

/**
 * train, search: `train` / `search` on 256 RGB 16x16 images in batches of 16, with TrivialAugment
 * (train) or the policy (search), a checkpoint every epoch. augmenter: a policy file's frozen
 * augmenter (`loadPolicy(...).augment`) on batches of 32 RGB 32x32 images. fused-op: the fused
 * op on 512 RGB images (32x32 unless told), each its own random sub-policy, in `tidy` (with
 * `backward`: c, b and m require gradients, and out.mul(G).sum().backward()), as bench/augment.ts
 * times it. add: `tidy(() => x.add(1))` on a 6 MB tensor. The last two are the loops that showed
 * glibc's heap fragmenting.
 */
export type MemoryWorkload = 'train' | 'search' | 'augmenter' | 'fused-op' | 'add';

export interface MemoryRun {
  kind: MemoryWorkload;
  /** Steps (rounded up to whole epochs for train and search); a step is a call for the loops. */
  steps: number;
  seed?: number;
  /** fused-op: the image size and whether to run the backward pass too. */
  size?: number;
  backward?: boolean;
  /** LibTorch threads (default 1). */
  threads?: number;
}

export interface MemoryTrace {
  kind: MemoryWorkload;
  steps: number;
  seconds: number;
  /** After each step: liveTensors(), the resident set size (MiB), the step's milliseconds and its minor page faults. */
  live: number[];
  rss: number[];
  ms: number[];
  faults: number[];
  /** liveTensors() before the run and after its result is disposed. */
  liveBefore: number;
  liveAfter: number;
  /** The tensor allocator in use (backend().allocator). */
  allocator: dna.CpuAllocator;
  /** Cores other processes kept busy meanwhile (NaN where unknown), for the benches. */
  background: number;
}

/** A step-by-step record: `begin()` where the timed steps start (else at its creation), `step()` after each step. */
function recorder(kind: MemoryWorkload) {
  const live: number[] = [];
  const rss: number[] = [];
  const ms: number[] = [];
  const faults: number[] = [];
  const liveBefore = dna.liveTensors();
  const started = performance.now();
  let last = { time: started, faults: process.resourceUsage().minorPageFault };
  let load = cpuSnapshot();
  return {
    begin() {
      last = { time: performance.now(), faults: process.resourceUsage().minorPageFault };
      load = cpuSnapshot();
    },
    step() {
      const now = { time: performance.now(), faults: process.resourceUsage().minorPageFault };
      ms.push(now.time - last.time);
      faults.push(now.faults - last.faults);
      live.push(dna.liveTensors());
      rss.push(process.memoryUsage.rss() / 2 ** 20);
      last = now;
    },
    done(): MemoryTrace {
      return {
        kind,
        steps: live.length,
        seconds: (performance.now() - started) / 1000,
        live,
        rss,
        ms,
        faults,
        liveBefore,
        liveAfter: dna.liveTensors(),
        allocator: dna.backend().allocator,
        background: backgroundCores(load),
      };
    },
  };
}

/**
 * Runs `steps` steps of `train` or `search` (rounded up to whole epochs), with a checkpoint every
 * epoch into `outDir`; `augmentation` replaces TrivialAugment in `train`. No batch is made ahead
 * (prefetch 0), so that the same tensors are alive after every step, the last of an epoch included.
 */
export async function traceRun(
  kind: 'train' | 'search',
  steps: number,
  outDir: string,
  augmentation: dna.Augmentation = 'trivialaugment',
): Promise<MemoryTrace> {
  const data = tinyDataset(256, 3, 16);
  const batchSize = 16;
  const epochs = Math.ceil(steps / (data.count / batchSize));
  const record = recorder(kind);
  const onProgress = (p: { phase: string }) => {
    if (p.phase === 'step') record.step();
  };
  if (kind === 'train') {
    const result = await dna.train({
      train: data,
      model: dna.WRN_10_1,
      epochs,
      batchSize,
      preprocess: 'cifar',
      augmentation,
      seed: 1,
      outDir,
      onProgress,
      prefetch: 0,
    });
    result.model.dispose();
  } else {
    const result = await dna.search({
      train: data,
      classifier: dna.WRN_10_1,
      policy: dna.WRN_10_1,
      epochs,
      batchSize,
      preprocess: 'cifar',
      seed: 1,
      outDir,
      onProgress,
      prefetch: 0,
    });
    result.policy.dispose();
  }
  return record.done();
}

/** `steps` batches through a policy file's frozen augmenter (a fresh WRN-10-1 policy, saved into `outDir`). */
export async function traceAugmenter(steps: number, outDir: string, seed = 1): Promise<MemoryTrace> {
  const file = path.join(outDir, 'policy.dna');
  const network = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 3, seed });
  await dna.savePolicy(file, network, { dataset: 'random', classes: [], seed, steps: 0, seconds: 0 });
  network.dispose();
  const policy = await dna.loadPolicy(file);
  const generator = new dna.Generator(seed);
  const images = dna.rand([32, 3, 32, 32], { generator });
  const record = recorder('augmenter');
  for (let k = 0; k < steps; k++) {
    policy.augment(images, { generator }).dispose();
    record.step();
  }
  images.dispose();
  policy.dispose();
  return record.done();
}

/** The loops of the fused op and of `x.add(1)` (MemoryWorkload). */
export function traceLoop(run: MemoryRun & { kind: 'fused-op' | 'add' }): MemoryTrace {
  const record = recorder(run.kind);
  const space = dna.defaultSearchSpace();
  const generator = new dna.Generator(run.seed ?? 0);
  const w = subPolicyWorkload(512, run.size ?? 32, space.subPolicies.length, generator);
  const grads = [w.c, w.b, w.m];
  const fusedOp = () =>
    dna.tidy(() => {
      if (!run.backward) return void dna.applySubPolicies(w.images, w.c, w.b, w.m, { searchSpace: space, generator });
      for (const x of grads) x.requireGrad(true);
      dna.applySubPolicies(w.images, w.c, w.b, w.m, { searchSpace: space, generator }).mul(w.g).sum().backward();
      for (const x of grads) x.requireGrad(false).zeroGrad();
    });
  const step = run.kind === 'fused-op' ? fusedOp : () => dna.tidy(() => void w.images.add(1));
  record.begin();
  for (let k = 0; k < run.steps; k++) {
    step();
    record.step();
  }
  dna.dispose(w);
  return record.done();
}

/** One run in this process, with its own temporary folder for checkpoints and policy files. */
export async function traceHere(run: MemoryRun): Promise<MemoryTrace> {
  if (run.kind === 'fused-op' || run.kind === 'add') return traceLoop({ ...run, kind: run.kind });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-memory-'));
  try {
    if (run.kind === 'augmenter') return await traceAugmenter(run.steps, dir, run.seed);
    return await traceRun(run.kind, run.steps, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const thisFile = fileURLToPath(import.meta.url);

/** One run in a fresh Node process, with `env` added to this one's environment. */
export function traceInChild(run: MemoryRun, env: Record<string, string> = {}): Promise<MemoryTrace> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [thisFile, JSON.stringify(run)], {
      env: { ...process.env, DNA_THREADS: String(run.threads ?? 1), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(JSON.parse(stdout) as MemoryTrace);
      else reject(new Error(`${run.kind} in a child process: exit ${code ?? signal}\n${stderr.slice(-2000)}`));
    });
  });
}

/** `processes` runs, each in a fresh process, as many at a time as there are cores. */
export async function traceInChildren(
  run: MemoryRun,
  processes: number,
  env: Record<string, string> = {},
): Promise<MemoryTrace[]> {
  const traces: MemoryTrace[] = [];
  let next = 0;
  const worker = async () => {
    for (let k = next++; k < processes; k = next++)
      traces[k] = await traceInChild({ ...run, seed: (run.seed ?? 0) + k }, env);
  };
  await Promise.all(Array.from({ length: Math.min(processes, os.availableParallelism()) }, worker));
  return traces;
}

/**
 * Resident memory (MiB) just after `warmUp` steps and at the end of the run: medians of `window`
 * steps at each end, so that one step's garbage collection does not count; and the growth between.
 */
export function residentAfterWarmUp(
  trace: MemoryTrace,
  warmUp: number,
  window: number,
): { start: number; end: number; growth: number } {
  const start = median(trace.rss.slice(warmUp, warmUp + window));
  const end = median(trace.rss.slice(-window));
  return { start, end, growth: end - start };
}

if (process.argv[1] === thisFile) {
  const run = JSON.parse(process.argv[2]) as MemoryRun;
  dna.setThreads(run.threads ?? 1);
  const trace = await traceHere(run);
  process.stdout.write(JSON.stringify(trace));
}
