// What bench/augment.ts, bench/train.ts and bench/search.ts share: arguments, the machine's background load
// (/proc/stat), retries, number formats, the source state and the RESULTS.md section writer.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { backend } from '../lib/engine/backend.js';
import type { Module } from '../lib/engine/models.js';
import type { ImageDataset } from '../lib/data/index.js';
import { evaluate } from '../lib/run/evaluate.js';
import { train, type TrainOptions } from '../lib/run/train.js';
import { Generator, rand, randint } from '../lib/engine/random.js';
import { tidy, type Device, type Tensor } from '../lib/engine/tensor.js';

/** The repository root (this file runs from dist/bench/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Debian's Python, which runs the baselines. */
export const PYTHON = '/usr/bin/python3';
export const RESULTS = path.join(ROOT, 'bench', 'RESULTS.md');

/** When the run started (this module's first evaluation), for retry windows and the closing time. */
export const runStarted = performance.now();

/** A line on stderr stamped with the seconds since the run started. */
export const log = (text: string) =>
  console.error(`[${((performance.now() - runStarted) / 1000).toFixed(0).padStart(5)} s] ${text}`);

// ---- Arguments ----

export interface Args {
  write: boolean;
  seed: number;
  /** A short run, for checking a machine quickly (`dna bench --quick`); its figures are rougher. */
  quick: boolean;
  /** The script's own `--name N` options (positive integers), where it has any. */
  options: Record<string, number>;
}

/** A script's own option: `--name N`, a positive integer, with what it sets. */
export interface BenchOption {
  name: string;
  what: string;
}

/** `--write`, `--seed N`, `--quick`, the script's own options and `--help` of `node dist/bench/<script>.js`. */
function parseArgs(argv: string[], script: string, own: readonly BenchOption[]): Args {
  const args: Args = { write: false, seed: 0, quick: false, options: {} };
  for (let k = 0; k < argv.length; k++) {
    const option = own.find((o) => argv[k] === `--${o.name}`);
    if (argv[k] === '--write') args.write = true;
    else if (argv[k] === '--quick') args.quick = true;
    else if (argv[k] === '--seed') args.seed = Number(argv[++k]);
    else if (option !== undefined) {
      const value = Number(argv[++k]);
      if (!Number.isInteger(value) || value <= 0) throw new Error(`--${option.name} takes a positive integer`);
      args.options[option.name] = value;
    } else if (argv[k] === '--help' || argv[k] === '-h') {
      const extra = own.map((o) => ` [--${o.name} N]`).join('');
      console.log(`usage: node dist/bench/${script}.js [--write] [--seed N] [--quick]${extra}`);
      for (const o of own) console.log(`  --${o.name} N  ${o.what}`);
      process.exit(0);
    } else throw new Error(`unknown argument '${argv[k]}' (try --help)`);
  }
  if (!Number.isInteger(args.seed) || args.seed < 0) throw new Error('--seed takes a non-negative integer');
  return args;
}

/** The command line this run reproduces, for the section's `Command:` line. */
function commandLine(script: string): string {
  return `npx tsc -p . && node dist/bench/${script}.js ${process.argv.slice(2).join(' ')}`.trim();
}

// ---- Background load: other processes share this machine and distort the timings ----

export interface CpuSnapshot {
  busyMs: number; // all CPUs, from /proc/stat (NaN where unavailable)
  ownMs: number; // this process, all its threads
  wallMs: number;
}

export function cpuSnapshot(): CpuSnapshot {
  let busyMs = Number.NaN;
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = fields;
    busyMs = (user + nice + system + irq + softirq + (steal ?? 0)) * 10; // USER_HZ = 100
  } catch {
    // not Linux: no background figure
  }
  const own = process.cpuUsage();
  return { busyMs, ownMs: (own.user + own.system) / 1000, wallMs: performance.now() };
}

/** CPU cores other processes kept busy since `before`, on average. */
export function backgroundCores(before: CpuSnapshot, after = cpuSnapshot()): number {
  const wall = after.wallMs - before.wallMs;
  return Math.max(0, (after.busyMs - before.busyMs - (after.ownMs - before.ownMs)) / wall);
}

export const QUIET_CORES = 0.25;

/** Waits (up to `maxSeconds`) until other processes use less than QUIET_CORES cores; returns their load. */
export function waitForQuiet(maxSeconds: number): number {
  const deadline = performance.now() + maxSeconds * 1000;
  let load = 0;
  do {
    const before = cpuSnapshot();
    sleep(1000);
    load = backgroundCores(before);
    if (!(load >= QUIET_CORES)) return load;
  } while (performance.now() < deadline);
  return load;
}

/** At the start of a run: waits (up to 20 s) for a quiet machine, and warns when it stays busy. */
function settle(): void {
  const initialLoad = waitForQuiet(20);
  if (initialLoad >= QUIET_CORES)
    console.error(`other processes keep ${initialLoad.toFixed(2)} cores busy: timings will be disturbed`);
}

export function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A disturbed measurement is timed again up to this many times; the quietest try counts. */
export const RETRIES = 2;

/** Whether retries are still allowed: only in the first `windowSeconds` of the run, so that a busy machine cannot stretch it much. */
export function mayRetry(windowSeconds: number): boolean {
  return performance.now() - runStarted < windowSeconds * 1000;
}

/**
 * `measure()`, timed again (up to RETRIES times, each after waiting up to 10 s for a quiet machine)
 * while other processes kept QUIET_CORES or more busy and the run is within its first
 * `windowSeconds`; the quietest try counts.
 */
export function quietest<T extends { background: number }>(measure: () => T, windowSeconds: number): T {
  let best = measure();
  for (let retry = 0; retryAgain(retry, best, windowSeconds); retry++) {
    waitForQuiet(10);
    const again = measure();
    if (again.background < best.background) best = again;
  }
  return best;
}

/** quietest() for an asynchronous `measure()`; `onRetry` hears of each disturbed try before it is timed again. */
export async function quietestAsync<T extends { background: number }>(
  measure: () => Promise<T>,
  windowSeconds: number,
  onRetry?: (disturbed: T) => void,
): Promise<T> {
  let best = await measure();
  for (let retry = 0; retryAgain(retry, best, windowSeconds); retry++) {
    onRetry?.(best);
    waitForQuiet(10);
    const again = await measure();
    if (again.background < best.background) best = again;
  }
  return best;
}

/** Whether a measurement, after `retry` retries, is timed again: it was disturbed, and retries are left and allowed. */
function retryAgain(retry: number, best: { background: number }, windowSeconds: number): boolean {
  return retry < RETRIES && best.background >= QUIET_CORES && mayRetry(windowSeconds);
}

/** Two-sided sign test: the chance of a split at least as uneven as `positive` of `n` under a fair coin. */
export function signTest(positive: number, n: number): number {
  const choose = (k: number) => {
    let c = 1;
    for (let j = 1; j <= k; j++) c = (c * (n - k + j)) / j;
    return c;
  };
  const extreme = Math.max(positive, n - positive);
  let tail = 0;
  for (let k = extreme; k <= n; k++) tail += choose(k) / 2 ** n;
  return Math.min(1, 2 * tail);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// ---- Report ----

export function fmtRate(rate: number): string {
  return rate >= 100 ? Math.round(rate).toLocaleString('en-US') : rate.toPrecision(3);
}

/** Milliseconds: whole from 100 up, else 3 significant digits. */
export function fmtMs(ms: number): string {
  return ms >= 100 ? Math.round(ms).toString() : ms.toPrecision(3);
}

export function fmtRatio(ratio: number): string {
  return `${ratio >= 10 ? ratio.toFixed(1) : ratio.toFixed(2)}x`;
}

/** A rate, marked † when other processes kept QUIET_CORES or more busy while it was timed. */
export function rateCell(rate: number, background: number): string {
  return `${fmtRate(rate)}${background >= QUIET_CORES ? ' †' : ''}`;
}

/**
 * The note on the worst background load among `loads` (cores, NaN where unknown): "... during any
 * timed `unit`", and, when it reached QUIET_CORES, what the † marks (`marked`: "rows", "rates").
 */
export function backgroundNote(loads: number[], unit: string, marked: string): string {
  const worst = Math.max(...loads.filter(Number.isFinite));
  return Number.isFinite(worst)
    ? `Other processes on the machine kept at most ${worst.toFixed(2)} cores busy during any timed ${unit}` +
        (worst >= QUIET_CORES
          ? ` († marks ${marked} timed with ${QUIET_CORES} cores or more of such load: read them with care).`
          : '.')
    : 'Background load unknown (no /proc/stat).';
}

/** The commit, and whether native/ or lib/ differ from it (the addon measured is the one built now). */
export function sourceState(): string {
  const git = (args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
  const head = git(['rev-parse', '--short', 'HEAD']);
  if (head.status !== 0) return 'source state unknown (no git)';
  const dirty = git(['status', '--porcelain', '--', 'native', 'lib']).stdout.trim();
  return `commit ${head.stdout.trim()}${dirty ? ' with uncommitted changes in native/ or lib/' : ''}`;
}

/** "Measured <date> on <CPU> (<n> cores), LibTorch <version>, Node <version>, addon from <source state>". */
export function measuredOn(): string {
  const cpus = os.cpus();
  const info = backend();
  const date = new Date().toISOString().slice(0, 10);
  return (
    `Measured ${date} on ${cpus[0]?.model ?? 'unknown CPU'} (${cpus.length} cores), LibTorch ${info.torch}, ` +
    `Node ${process.version}, addon from ${sourceState()}`
  );
}

/** Rewrites the `heading` section of bench/RESULTS.md with `text` (creating the file if needed), leaving other sections alone. */
export function writeSection(heading: string, text: string): void {
  let doc = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '# Measured results\n';
  const lines = doc.split('\n');
  const start = lines.findIndex((line) => line.trim() === heading);
  if (start < 0) {
    doc = `${doc.replace(/\s*$/, '')}\n\n${text}`;
  } else {
    let end = lines.findIndex((line, k) => k > start && /^##? /.test(line));
    if (end < 0) end = lines.length;
    const before = lines.slice(0, start).join('\n').replace(/\s*$/, '');
    const after = lines.slice(end).join('\n').replace(/^\s*/, '');
    doc = `${before}\n\n${text}${after ? `\n${after}` : ''}`;
  }
  writeFileSync(RESULTS, doc.replace(/\s*$/, '\n'));
  console.error(`wrote the '${heading}' section of ${path.relative(process.cwd(), RESULTS) || RESULTS}`);
}

/**
 * A benchmark's run, `node dist/bench/<script>.js [--write] [--seed N]`: parses the arguments, waits
 * (up to 20 s) for a quiet machine, measures, prints the `heading` section that `measure` returns on
 * stdout (and the run's time on stderr) and, with --write, puts it in bench/RESULTS.md.
 */
export async function runBench(
  script: string,
  heading: string,
  measure: (seed: number, command: string, quick: boolean, options: Record<string, number>) => string | Promise<string>,
  own: readonly BenchOption[] = [],
): Promise<void> {
  const args = parseArgs(process.argv.slice(2), script, own);
  const command = commandLine(script);
  settle();
  const text = await measure(args.seed, command, args.quick, args.options);
  console.log(`\n${text}`);
  console.error(`(${((performance.now() - runStarted) / 1000).toFixed(0)} s)`);
  if (args.write) writeSection(heading, text);
}

// ---- Training runs ----

/**
 * Trains a fresh classifier (`options` as `train` takes them, resuming from its `outDir`), tests it
 * on `test` and disposes of it; logs every `logEvery`-th epoch (and the last) under `label`.
 */
export async function trainAndTest(
  options: Omit<TrainOptions, 'onProgress'>,
  test: ImageDataset,
  label: string,
  logEvery = 1,
): Promise<{ testAccuracy: number; trainSeconds: number }> {
  const trained = await train({
    ...options,
    onProgress: (p) => {
      if (p.phase === 'epoch' && (p.epoch % logEvery === 0 || p.epoch === p.epochs))
        log(
          `${label} train epoch ${p.epoch}/${p.epochs}: loss ${p.loss.toFixed(3)}, train accuracy ` +
            `${p.accuracy.toFixed(3)}, ${p.imagesPerSecond.toFixed(0)} images/s`,
        );
    },
  });
  try {
    const { accuracy } = await evaluate({ model: trained.model, data: test });
    log(`${label}: test accuracy ${accuracy.toFixed(4)}`);
    return { testAccuracy: accuracy, trainSeconds: trained.seconds };
  } finally {
    trained.model.dispose();
  }
}

/** The accuracy of `model` on each class of `test` (0 for a class without images). */
export async function classAccuracies(model: Module, test: ImageDataset): Promise<number[]> {
  const { perClass } = await evaluate({ model, data: test, perClass: true });
  return perClass!.map((c) => c.accuracy ?? 0);
}

// ---- Workloads ----

/** A batch through random sub-policies: every image its own, as a policy's hard sample gives them. */
export interface SubPolicyWorkload {
  /** Random images in [0, 1], quantised to 8 bits. */
  images: Tensor;
  /** One-hot at a random sub-policy [B, S]; apply bits, 0 or 1 with probability 0.5 [B, S, 2]; magnitudes uniform [B, S, 2]. */
  c: Tensor;
  b: Tensor;
  m: Tensor;
  /** A fixed gradient for the output, uniform in [-0.5, 0.5). */
  g: Tensor;
}

/** The workload of `batch` 3-channel `size` x `size` images over `subPolicies`, drawn in a fixed order from `generator`. */
export function subPolicyWorkload(
  batch: number,
  size: number,
  subPolicies: number,
  generator: Generator,
  device: Device = 'cpu',
): SubPolicyWorkload {
  return tidy(() => ({
    images: randint(0, 256, [batch, 3, size, size], { generator, dtype: 'float32', device }).div(255),
    c: randint(0, subPolicies, [batch], { generator, device }).oneHot(subPolicies).float(),
    b: rand([batch, subPolicies, 2], { generator, device }).lt(0.5).float(),
    m: rand([batch, subPolicies, 2], { generator, device }),
    g: rand([batch, 3, size, size], { generator, device }).sub(0.5),
  }));
}

/** A dataset of `count` random uint8 images of 3x32x32 with random labels in 10 classes. */
export function syntheticDataset(count: number, seed: number): ImageDataset {
  const classes = 10;
  const generator = new Generator(seed);
  const [images, labels] = tidy(() => [
    randint(0, 256, [count, 3, 32, 32], { generator, dtype: 'uint8' }).data() as Uint8Array,
    Int32Array.from(randint(0, classes, [count], { generator, dtype: 'int32' }).data() as Int32Array),
  ]);
  return {
    name: 'synthetic',
    images,
    labels,
    count,
    shape: [3, 32, 32],
    classes: Array.from({ length: classes }, (_, k) => `class ${k}`),
  };
}

/**
 * A tiny dataset for runs of many steps or in many processes: `count` images of
 * channels x size x size (8x8 grey by default), two classes, every pixel a fixed function of
 * (image, position).
 */
export function tinyDataset(count = 32, channels = 1, size = 8): ImageDataset {
  const pixels = channels * size * size;
  const images = new Uint8Array(count * pixels).map((_, i) => (i * 37 + Math.floor(i / pixels) * 11) % 256);
  const labels = new Int32Array(count).map((_, i) => i % 2);
  return { name: 'tiny', images, labels, count, shape: [channels, size, size], classes: ['even', 'odd'] };
}
