// A streamed image folder against the same folder in memory: an epoch of WRN-10-1 with
// TrivialAugment on a folder of JPEGs, read all at once (`imageFolder(dir, { stream: false })`) or
// batch by batch as the epoch goes (`stream: true`), each in a fresh process; images per second and
// the process's peak resident memory. Then both again under a memory limit smaller than the folder's
// decoded images (a cgroup of their own, where this machine lets us make one): the streamed run
// trains within it, the in-memory one cannot load.
//
//   npx tsc -p . && node dist/bench/streaming.js [--write] [--seed N] [--quick]
//
// The folder: 80,000 JPEGs of 64x64 in 10 classes (8,000 with --quick, which skips the limited
// runs), made once under the system's temporary folder and kept for later runs. Ours 2 LibTorch
// threads; sharp decodes in libvips' threads.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import sharp from 'sharp';

import { setThreads } from '../lib/engine/backend.js';
import { WRN_10_1 } from '../lib/engine/models.js';
import { imageFolder } from '../lib/data/image-folder.js';
import { train } from '../lib/run/train.js';
import { ROOT, backgroundCores, backgroundNote, cpuSnapshot, fmtRate, measuredOn, runBench } from './common.js';

const SIDE = 64;
const CLASSES = 10;
const BATCH = 64;
/** The memory the limited runs are allowed, in MiB (the folder's decoded images take 938 MiB). */
const LIMIT_MIB = 640;
const MIB = 2 ** 20;

// ---- The folder ----

/** A JPEG of class `label`: a colour and a gradient direction of its class, with noise of its own. */
async function writeImage(file: string, label: number, index: number): Promise<void> {
  const pixels = Buffer.alloc(SIDE * SIDE * 3);
  const angle = (label / CLASSES) * Math.PI;
  const [dx, dy] = [Math.cos(angle), Math.sin(angle)];
  let state = (index * 2654435761 + 1) >>> 0;
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const ramp = ((x - SIDE / 2) * dx + (y - SIDE / 2) * dy) / SIDE + 0.5;
      for (let c = 0; c < 3; c++) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        const base = 60 + 40 * ((label + c * 3) % CLASSES) * 0.4;
        const value = base + 100 * ramp + ((state >>> 24) - 128) * 0.25;
        pixels[(y * SIDE + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(value)));
      }
    }
  }
  await sharp(pixels, { raw: { width: SIDE, height: SIDE, channels: 3 } })
    .jpeg({ quality: 90 })
    .toFile(file);
}

/** The folder of `count` JPEGs (made now unless an earlier run left it complete). */
async function folder(count: number): Promise<string> {
  const dir = path.join(os.tmpdir(), `dna-bench-streaming-${count}x${SIDE}`);
  const done = path.join(dir, '.complete');
  if (existsSync(done)) return dir;
  console.error(`making ${count} JPEGs in ${dir}`);
  for (let label = 0; label < CLASSES; label++) mkdirSync(path.join(dir, `class-${label}`), { recursive: true });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const k = next++;
      await writeImage(path.join(dir, `class-${k % CLASSES}`, `${String(k).padStart(6, '0')}.jpg`), k % CLASSES, k);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  writeFileSync(done, `${count}\n`);
  return dir;
}

// ---- One run, in a process of its own ----

interface RunReport {
  loadSeconds: number;
  epochSeconds: number;
  /** Resident memory (MiB): the process's peak, and the median over the epoch's last half. */
  peakMiB: number;
  lateMiB: number;
  earlyMiB: number;
  background: number;
}

async function runOne(dir: string, stream: boolean, seed: number): Promise<RunReport> {
  setThreads(2);
  const before = cpuSnapshot();
  const loadStart = performance.now();
  const data = await imageFolder(dir, { stream });
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const rss: number[] = [];
  const epochStart = performance.now();
  const result = await train({
    train: data,
    model: WRN_10_1,
    epochs: 1,
    batchSize: BATCH,
    augmentation: 'trivialaugment',
    seed,
    onProgress: (p) => {
      if (p.phase === 'step') rss.push(process.memoryUsage.rss() / MIB);
    },
  });
  const epochSeconds = (performance.now() - epochStart) / 1000;
  result.model.dispose();
  const half = (from: number, to: number): number => {
    const part = rss.slice(from, to).sort((a, b) => a - b);
    return part[part.length >> 1];
  };
  return {
    loadSeconds,
    epochSeconds,
    peakMiB: process.resourceUsage().maxRSS / 1024,
    earlyMiB: half(Math.floor(rss.length / 10), Math.floor(rss.length / 2)),
    lateMiB: half(Math.floor(rss.length / 2), rss.length),
    background: backgroundCores(before),
  };
}

// ---- A memory limit: a cgroup of our own below this process's ----

interface Limit {
  /** The file a process writes its PID into to join the group. */
  procs: string;
  /** Whether the group killed a process for memory since `since`. */
  killed: () => boolean;
  remove: () => void;
}

/** A child memory cgroup limited to `mib`, or the reason none could be made. */
function makeLimit(mib: number): Limit | string {
  try {
    const lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
    const v1 = lines.find((line) => line.split(':')[1]?.split(',').includes('memory'));
    const name = `dna-bench-${process.pid}`;
    if (v1 !== undefined) {
      const dir = path.join('/sys/fs/cgroup/memory', v1.split(':')[2], name);
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(mib * MIB));
      // Swap would let the group go beyond the limit slowly instead of failing: forbid it where the kernel allows.
      if (existsSync(path.join(dir, 'memory.memsw.limit_in_bytes')))
        writeFileSync(path.join(dir, 'memory.memsw.limit_in_bytes'), String(mib * MIB));
      else writeFileSync(path.join(dir, 'memory.swappiness'), '0');
      return {
        procs: path.join(dir, 'cgroup.procs'),
        killed: () => /oom_kill [1-9]/.test(readFileSync(path.join(dir, 'memory.oom_control'), 'utf8')),
        remove: () => rmdirSync(dir),
      };
    }
    const v2 = lines.find((line) => line.startsWith('0::'));
    if (v2 === undefined) return 'no memory cgroup';
    const dir = path.join('/sys/fs/cgroup', v2.slice(3), name);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'memory.max'), String(mib * MIB));
    writeFileSync(path.join(dir, 'memory.swap.max'), '0');
    return {
      procs: path.join(dir, 'cgroup.procs'),
      killed: () => /oom_kill [1-9]/.test(readFileSync(path.join(dir, 'memory.events'), 'utf8')),
      remove: () => rmdirSync(dir),
    };
  } catch (error) {
    return `no memory cgroup could be made here (${(error as Error).message})`;
  }
}

type Outcome = { ok: true; report: RunReport } | { ok: false; why: string; seconds: number };

/** Runs one mode in a fresh process, inside `limit` when given. */
function child(dir: string, stream: boolean, seed: number, limit?: Limit): Promise<Outcome> {
  const script = path.join(ROOT, 'dist', 'bench', 'streaming.js');
  const args = [script, '--worker', JSON.stringify({ dir, stream, seed })];
  // The shell joins the group, then becomes node: only the run itself is limited.
  const [command, argv] =
    limit === undefined
      ? [process.execPath, args]
      : ['/bin/sh', ['-c', 'echo $$ > "$DNA_CGROUP_PROCS" && exec "$@"', 'sh', process.execPath, ...args]];
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const run = spawn(command, argv, {
      env: { ...process.env, DNA_CGROUP_PROCS: limit?.procs ?? '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    run.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    run.on('error', reject);
    run.on('close', (status, signal) => {
      const seconds = (performance.now() - started) / 1000;
      if (status === 0) resolve({ ok: true, report: JSON.parse(out.trim().split('\n').at(-1)!) as RunReport });
      else if (limit?.killed()) resolve({ ok: false, why: 'killed for memory by the limit', seconds });
      else resolve({ ok: false, why: `failed (${signal ?? `exit status ${status}`})`, seconds });
    });
  });
}

// ---- The table ----

function row(label: string, count: number, outcome: Outcome): string {
  if (!outcome.ok) return `| ${label} | ${outcome.why} after ${outcome.seconds.toFixed(0)} s | | | | |`;
  const r = outcome.report;
  const mark = r.background >= 0.25 ? ' †' : '';
  return (
    `| ${label} | ${r.loadSeconds.toFixed(1)} s | ${fmtRate(count / r.epochSeconds)}${mark} | ` +
    `${fmtRate(count / (r.loadSeconds + r.epochSeconds))}${mark} | ${r.earlyMiB.toFixed(0)} / ${r.lateMiB.toFixed(0)} | ` +
    `${r.peakMiB.toFixed(0)} |`
  );
}

if (process.argv[2] === '--worker') {
  const { dir, stream, seed } = JSON.parse(process.argv[3]) as { dir: string; stream: boolean; seed: number };
  console.log(JSON.stringify(await runOne(dir, stream, seed)));
} else {
  await runBench('streaming', '## Streamed image folders (CPU)', async (seed, command, quick) => {
    const count = quick ? 8000 : 80000;
    const dir = await folder(count);
    const decodedMiB = (count * 3 * SIDE * SIDE) / MIB;
    const outcomes: { label: string; outcome: Outcome }[] = [];
    for (const stream of [false, true]) {
      outcomes.push({ label: stream ? 'streamed' : 'in memory', outcome: await child(dir, stream, seed) });
    }
    let limitNote: string;
    if (quick) limitNote = 'The limited runs are skipped with --quick.';
    else {
      const limit = makeLimit(LIMIT_MIB);
      if (typeof limit === 'string') limitNote = `The limited runs are skipped: ${limit}.`;
      else {
        try {
          for (const stream of [true, false]) {
            outcomes.push({
              label: `${stream ? 'streamed' : 'in memory'}, limited to ${LIMIT_MIB} MiB`,
              outcome: await child(dir, stream, seed, limit),
            });
          }
        } finally {
          limit.remove();
        }
        limitNote =
          `Limited: each run in a memory cgroup of its own with ${LIMIT_MIB} MiB (swap off), less than the ` +
          `${decodedMiB.toFixed(0)} MiB of the folder's decoded images.`;
      }
    }
    const loads = outcomes.flatMap(({ outcome }) => (outcome.ok ? [outcome.report.background] : []));
    return [
      '## Streamed image folders (CPU)',
      '',
      `${measuredOn()}. Threads: 2 LibTorch threads; sharp (libvips) decodes in threads of its own.`,
      '',
      `Command: \`${command}\``,
      '',
      `A folder of ${count.toLocaleString('en-US')} JPEGs (${SIDE}x${SIDE} RGB, ${CLASSES} classes; ` +
        `${decodedMiB.toFixed(0)} MiB decoded), one epoch of WRN-10-1, batch ${BATCH}, TrivialAugment, each run ` +
        'in a fresh process. In memory: `imageFolder(dir, { stream: false })` decodes every image before the run ' +
        '(load); streamed: `stream: true` keeps the paths and decodes each batch while the step before it runs. ' +
        'Resident memory: the median over the epoch’s second tenth to its half / over its second half, and the peak.',
      '',
      '| mode | load | epoch (img/s) | load and epoch (img/s) | resident memory (MiB) | peak (MiB) |',
      '|---|---:|---:|---:|---:|---:|',
      ...outcomes.map(({ label, outcome }) => row(label, count, outcome)),
      '',
      limitNote,
      backgroundNote(loads, 'run', 'rates'),
      '',
    ].join('\n');
  });
}
