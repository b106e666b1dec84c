// Data-parallel training on the CPU: throughput of one rank against two (one LibTorch thread
// each, started by lib/distributed/launch.ts as `dna launch` starts them), the same two ranks in
// PyTorch with DistributedDataParallel over Gloo (bench/distributed_ddp.py, Debian's python3-torch),
// the time per step spent averaging gradients, and a projection past one machine.
//
//   npx tsc -p . && node dist/bench/distributed.js [--write] [--seed N]
//
// The step: zeroGrad, forward, cross-entropy, backward, averageGradients (ours; DDP overlaps its
// allreduce with backward), SGD (lr 0.1, momentum 0.9, Nesterov, weight decay 2e-4), loss.item();
// WRN-16-1 on a fixed batch of 64 random 3x32x32 images per rank (random labels, 10 classes),
// each rank its own batch (weak scaling: two ranks train on 128 images per step). Each
// configuration runs as its own launch, in the order ours 1, ours 2, PyTorch 1, DDP 2, then the
// reverse, so that a drift of the machine's speed touches all alike (a run during which other
// processes kept a quarter of a core busy is run again, up to twice, and the quietest counts);
// every rank times STEPS steps after WARMUP untimed ones, and the ranks' steps are in lockstep.
// Ours at world 2 also times allReduce of 1, 4 and 16 MB alone: the latency and the cost per byte
// that the projection takes. The projection also measures one rank's step (forward, backward,
// update) of WRN-40-2 and WRN-28-10 in this process.
//
// Internally the same file is the rank: `node dist/bench/distributed.js --rank '<json>'`.
import path from 'node:path';
import { Writable } from 'node:stream';

import { launch } from '../lib/distributed/index.js';
import { initDistributed, localGroup } from '../lib/distributed/group.js';
import {
  WRN_16_1,
  WRN_28_10,
  WRN_40_2,
  crossEntropy,
  wideResNet,
  wideResNetParameterCount,
  type WideResNetPreset,
} from '../lib/engine/models.js';
import { setThreads } from '../lib/engine/backend.js';
import { sgd } from '../lib/engine/optim.js';
import { Generator, rand, randint } from '../lib/engine/random.js';
import { tidy, type Tensor } from '../lib/engine/tensor.js';
import { zeros } from '../lib/engine/creation.js';
import {
  PYTHON,
  ROOT,
  QUIET_CORES,
  backgroundNote,
  cpuSnapshot,
  fmtMs,
  fmtRate,
  fmtRatio,
  measuredOn,
  median,
  quietestAsync,
  runBench,
} from './common.js';

const SECTION = '## Distributed training (CPU)';
const BATCH = 64;
const WARMUP = 3;
const STEPS = 20;
const ROUNDS = 2;
/** A run disturbed by other processes is run again (up to twice) within this many seconds of the start. */
const RETRY_WINDOW_S = 300;
const SGD = { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 2e-4 } as const;
// 4 bytes: the latency of one collective; the megabytes: the cost per byte.
const TRANSFER_BYTES = [4, 1 << 20, 4 << 20, 16 << 20];
const THIS_SCRIPT = path.join(ROOT, 'dist', 'bench', 'distributed.js');
const DDP_SCRIPT = path.join(ROOT, 'bench', 'distributed_ddp.py');

interface RankResult {
  rank: number;
  world: number;
  stepMs: number[];
  /** Ours: the averageGradients part of each timed step. */
  allreduceMs?: number[];
  ownMs: number;
  busyMs: number | null;
  wallMs: number;
  /** Ours at world > 1: allReduce of each size alone, median ms. */
  transfer?: Array<{ bytes: number; ms: number }>;
  /** PyTorch's version (its side only). */
  torch?: string;
}

// ---- One rank (ours) ----

async function rank(seed: number): Promise<void> {
  setThreads(1);
  const world = Number(process.env.WORLD_SIZE ?? '1');
  const group = world > 1 ? await initDistributed({ timeoutSeconds: 300 }) : localGroup();
  const model = wideResNet({ ...WRN_16_1, classes: 10, inChannels: 3, seed });
  await group.broadcastModule(model);
  const optimizer = sgd(model, SGD);
  const generator = new Generator(seed * 1000 + group.rank);
  const images = rand([BATCH, 3, 32, 32], { generator });
  const labels = randint(0, 10, [BATCH], { generator });
  const step = async () => {
    const t0 = performance.now();
    optimizer.zeroGrad();
    const loss = tidy(() => {
      const l = crossEntropy(model.forward(images), labels);
      l.backward();
      return l;
    });
    const t1 = performance.now();
    await group.averageGradients(model);
    const t2 = performance.now();
    optimizer.step();
    loss.item();
    loss.dispose();
    return { step: performance.now() - t0, allreduce: t2 - t1 };
  };
  for (let k = 0; k < WARMUP; k++) await step();
  await group.barrier();
  const before = cpuSnapshot();
  const timed = [];
  for (let k = 0; k < STEPS; k++) timed.push(await step());
  const after = cpuSnapshot();
  const transfer = [];
  if (group.isDistributed) {
    for (const bytes of TRANSFER_BYTES) {
      const buffer: Tensor = zeros([Math.max(1, bytes / 4)]);
      const times = [];
      for (let k = 0; k < 9; k++) {
        const t0 = performance.now();
        await group.allReduce(buffer, 'sum');
        if (k >= 2) times.push(performance.now() - t0);
      }
      buffer.dispose();
      transfer.push({ bytes, ms: median(times) });
    }
  }
  await group.destroy();
  const result: RankResult = {
    rank: group.rank,
    world,
    stepMs: timed.map((t) => t.step),
    allreduceMs: timed.map((t) => t.allreduce),
    ownMs: after.ownMs - before.ownMs,
    busyMs: after.busyMs - before.busyMs,
    wallMs: after.wallMs - before.wallMs,
    transfer,
  };
  process.stdout.write(`result ${JSON.stringify(result)}\n`);
}

// ---- The configurations, each as its own launch ----

type Side = 'ours' | 'pytorch';
interface Config {
  side: Side;
  world: number;
}
const CONFIGS: Config[] = [
  { side: 'ours', world: 1 },
  { side: 'ours', world: 2 },
  { side: 'pytorch', world: 1 },
  { side: 'pytorch', world: 2 },
];

async function runConfig({ side, world }: Config, seed: number): Promise<RankResult[]> {
  let out = '';
  let err = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        append(chunk.toString());
        done();
      },
    });
  const [command, args] =
    side === 'ours'
      ? [process.execPath, [THIS_SCRIPT, '--rank', JSON.stringify({ seed })]]
      : [
          PYTHON,
          [
            DDP_SCRIPT,
            '--depth',
            '16',
            '--widen',
            '1',
            '--batch',
            String(BATCH),
            '--warmup',
            String(WARMUP),
            '--steps',
            String(STEPS),
            '--seed',
            String(seed),
          ],
        ];
  const result = await launch({
    nproc: world,
    threadsPerRank: 1,
    command,
    args,
    stdout: sink((t) => (out += t)),
    stderr: sink((t) => (err += t)),
  });
  if (result.exitCode !== 0)
    throw new Error(`${side} world ${world} failed (status ${result.exitCode}):\n${out}\n${err}`);
  const ranks = [...out.matchAll(/^\[rank \d+\] result (.*)$/gm)].map((m) => JSON.parse(m[1]) as RankResult);
  if (ranks.length !== world)
    throw new Error(`${side} world ${world}: expected ${world} results, got ${ranks.length}:\n${out}\n${err}`);
  return ranks;
}

/** Cores that other processes kept busy while the ranks of one run were timed. */
function background(ranks: RankResult[]): number {
  const busy = ranks[0].busyMs;
  if (busy === null || !Number.isFinite(busy)) return Number.NaN;
  return Math.max(0, (busy - ranks.reduce((sum, r) => sum + r.ownMs, 0)) / ranks[0].wallMs);
}

// ---- One rank's step, for the projection ----

interface RankStep {
  name: string;
  preset: WideResNetPreset;
  batch: number;
  parameters: number;
  forwardMs: number;
  backwardMs: number;
  updateMs: number;
}

function measureRankStep(name: string, preset: WideResNetPreset, batch: number, steps: number, seed: number): RankStep {
  setThreads(1);
  const model = wideResNet({ ...preset, classes: 10, inChannels: 3, seed });
  const optimizer = sgd(model, SGD);
  const generator = new Generator(seed);
  const images = rand([batch, 3, 32, 32], { generator });
  const labels = randint(0, 10, [batch], { generator });
  const phases: number[][] = [];
  for (let k = 0; k <= steps; k++) {
    const t0 = performance.now();
    optimizer.zeroGrad();
    const loss = tidy(() => crossEntropy(model.forward(images), labels));
    const t1 = performance.now();
    loss.backward();
    const t2 = performance.now();
    optimizer.step();
    loss.item();
    loss.dispose();
    if (k > 0) phases.push([t1 - t0, t2 - t1, performance.now() - t2]);
  }
  model.dispose();
  optimizer.dispose();
  return {
    name,
    preset,
    batch,
    parameters: wideResNetParameterCount({ ...preset, classes: 10, inChannels: 3 }),
    forwardMs: median(phases.map((p) => p[0])),
    backwardMs: median(phases.map((p) => p[1])),
    updateMs: median(phases.map((p) => p[2])),
  };
}

// ---- The projection: a ring allreduce of the gradients ----

/**
 * The measured allreduce as latency + perByte * bytes: the latency is the time of the 4-byte
 * allreduce, the cost per byte the slope of a least-squares line through the megabyte sizes.
 */
function fitTransfer(points: Array<{ bytes: number; ms: number }>): { latencyMs: number; msPerByte: number } {
  const large = points.filter((p) => p.bytes >= 1 << 20);
  const n = large.length;
  const mx = large.reduce((s, p) => s + p.bytes, 0) / n;
  const my = large.reduce((s, p) => s + p.ms, 0) / n;
  const slope =
    large.reduce((s, p) => s + (p.bytes - mx) * (p.ms - my), 0) / large.reduce((s, p) => s + (p.bytes - mx) ** 2, 0);
  return { latencyMs: points.find((p) => p.bytes < 1 << 20)?.ms ?? 0, msPerByte: slope };
}

/**
 * The allreduce of `bytes` over `ranks` ranks on links of `gbPerSecond`: a ring sends 2(P-1)/P of
 * the bytes from each rank over its link, and each byte also costs the measured local work
 * (flattening, summing, copying back: the slope of the loopback measurement, taken as it is);
 * plus the measured per-collective latency times log2(P).
 */
function ringAllreduceMs(
  bytes: number,
  ranks: number,
  gbPerSecond: number,
  fit: { latencyMs: number; msPerByte: number },
): number {
  const sent = (2 * (ranks - 1) * bytes) / ranks;
  return sent * (1 / (gbPerSecond * 1e6) + fit.msPerByte) + fit.latencyMs * Math.log2(ranks);
}

// ---- The report ----

function percent(x: number): string {
  return `${(100 * x).toFixed(x >= 0.995 && x < 1 ? 2 : 1)}%`;
}

async function measure(seed: number, command: string): Promise<string> {
  const runs = new Map<string, RankResult[][]>();
  const order = [...CONFIGS, ...[...CONFIGS].reverse()];
  for (let round = 0; round < ROUNDS; round++) {
    for (const config of round === 0 ? order.slice(0, CONFIGS.length) : order.slice(CONFIGS.length)) {
      const key = `${config.side}-${config.world}`;
      console.error(`distributed: ${config.side}, world ${config.world} (round ${round + 1})`);
      const { ranks } = await quietestAsync(
        async () => {
          const tried = await runConfig(config, seed);
          return { ranks: tried, background: background(tried) };
        },
        RETRY_WINDOW_S,
        (disturbed) =>
          console.error(`distributed: other processes kept ${disturbed.background.toFixed(2)} cores busy: again`),
      );
      runs.set(key, [...(runs.get(key) ?? []), ranks]);
    }
  }
  const stepMs = (key: string) => median(runs.get(key)!.flatMap((ranks) => ranks[0].stepMs));
  const rate = (key: string, world: number) => (world * BATCH * 1000) / stepMs(key);
  const loads = [...runs.values()].flat().map(background);
  const ours1 = rate('ours-1', 1);
  const ours2 = rate('ours-2', 2);
  const torch1 = rate('pytorch-1', 1);
  const ddp2 = rate('pytorch-2', 2);
  const allreduceMs = median(runs.get('ours-2')!.flatMap((ranks) => ranks.flatMap((r) => r.allreduceMs ?? [])));
  const ours2Step = stepMs('ours-2');
  const transfer = runs.get('ours-2')!.flatMap((ranks) => ranks.flatMap((r) => r.transfer ?? []));
  const byBytes = TRANSFER_BYTES.map((bytes) => ({
    bytes,
    ms: median(transfer.filter((t) => t.bytes === bytes).map((t) => t.ms)),
  }));
  const fit = fitTransfer(byBytes);
  const gradientBytes = 4 * wideResNetParameterCount({ ...WRN_16_1, classes: 10, inChannels: 3 });

  console.error('distributed: one rank of WRN-40-2 and of WRN-28-10, for the projection');
  const rankSteps = [
    measureRankStep('WRN-40-2', WRN_40_2, 64, 3, seed),
    measureRankStep('WRN-28-10', WRN_28_10, 4, 2, seed),
  ];

  const mark = (load: number) => (load >= QUIET_CORES ? ' †' : '');
  const worst = (key: string) => Math.max(...runs.get(key)!.map(background));
  // A target is judged only on rates timed on a quiet machine: other processes' load does not
  // touch the configurations alike, so a ratio of disturbed rates says little.
  const verdict = (met: boolean, ...keys: string[]) =>
    keys.some((key) => !(worst(key) < QUIET_CORES)) ? 'not judged (disturbed)' : met ? 'met' : 'not met';
  const lines: string[] = [];
  lines.push(SECTION, '');
  lines.push(
    `${measuredOn()}; PyTorch ${runs.get('pytorch-1')![0][0].torch ?? ''} from Debian's python3-torch (/usr/bin/python3, the same LibTorch shared libraries); Gloo over loopback.`,
    '',
  );
  lines.push(`Command: \`${command}\``, '');
  lines.push(
    `Workload: a training step of WRN-16-1 (3x32x32, 10 classes) on a fixed batch of ${BATCH} random images per rank, each rank its own batch (two ranks train on ${2 * BATCH} images per step); ` +
      'zero the gradients, forward, cross-entropy, backward, average the gradients over the ranks, SGD (lr 0.1, momentum 0.9, Nesterov, weight decay 2e-4), read the loss. ' +
      'Every rank has 1 LibTorch thread; the machine has 2 cores, so two ranks use all of them. ' +
      `Ours: \`launch\` (the function behind \`dna launch\`) starts the ranks, which join with \`initDistributed\` and call \`averageGradients\` (25 MB buckets, allreduce after backward). ` +
      'PyTorch: the same launcher starts `bench/distributed_ddp.py`, the same network (bench/train_baseline.py) in `DistributedDataParallel` over Gloo (25 MB buckets, allreduce overlapped with backward, buffers broadcast before each forward); world 1 runs the plain step. ' +
      `Each configuration ran ${ROUNDS} times as its own launch, in the order ours 1, ours 2, PyTorch 1, DDP 2, then the reverse (a run disturbed by other processes ran again, up to twice, the quietest counting); each time every rank timed ${STEPS} steps after ${WARMUP} untimed ones. Rates are ranks x batch / median step time of rank 0 (the ranks step in lockstep).`,
    '',
  );
  lines.push('**Images per second** (WRN-16-1, batch 64 per rank, 1 thread per rank)', '');
  lines.push('| | world 1 | world 2 | world 2 / world 1 | target |', '|---|---:|---:|---:|---:|');
  lines.push(
    `| ours | ${fmtRate(ours1)}${mark(worst('ours-1'))} | ${fmtRate(ours2)}${mark(worst('ours-2'))} | ${fmtRatio(ours2 / ours1)} ${verdict(ours2 / ours1 >= 1.8, 'ours-1', 'ours-2')} | >= 1.8x |`,
  );
  lines.push(
    `| PyTorch (DDP at world 2) | ${fmtRate(torch1)}${mark(worst('pytorch-1'))} | ${fmtRate(ddp2)}${mark(worst('pytorch-2'))} | ${fmtRatio(ddp2 / torch1)} | — |`,
  );
  lines.push(
    `| ours / PyTorch | ${fmtRatio(ours1 / torch1)} | ${fmtRatio(ours2 / ddp2)} ${verdict(ours2 / ddp2 >= 1, 'ours-2', 'pytorch-2')} | | world 2: >= 1.0x |`,
    '',
  );
  lines.push('**Where a world-2 step goes** (ours, median ms)', '');
  lines.push('| step | averageGradients | share of the step | target |', '|---:|---:|---:|---:|');
  lines.push(
    `| ${fmtMs(ours2Step)} | ${fmtMs(allreduceMs)} | ${percent(allreduceMs / ours2Step)} ${verdict(allreduceMs / ours2Step < 0.1, 'ours-2')} | < 10% |`,
    '',
  );
  lines.push(
    `averageGradients moves ${(gradientBytes / 1e6).toFixed(2)} MB of gradients per step (one bucket) and includes the wait for the slower rank. ` +
      `allReduce alone on loopback, median of 7: ${byBytes.map((b) => `${b.bytes >= 1 << 20 ? `${b.bytes >> 20} MB` : `${b.bytes} bytes`} ${fmtMs(b.ms)} ms`).join(', ')}; ` +
      `that is ${fmtMs(fit.latencyMs)} ms per collective and, from the megabyte sizes, ${(1 / (fit.msPerByte * 1e6)).toFixed(2)} GB/s.`,
    '',
  );
  lines.push(backgroundNote(loads, 'run', 'rates'), '');

  lines.push('**Projected scaling past one machine** (a model, not a measurement)', '');
  lines.push(
    'Each rank does the step measured here for one rank (1 thread, this CPU), then a ring allreduce of the float32 gradients: ' +
      "2(P-1)/P of the gradient bytes go over each rank's link, each byte also costs the local work measured above on loopback (its per-byte slope, taken whole), " +
      'and each allreduce pays the per-collective latency measured above times log2 P. ' +
      "Without overlap the allreduce follows the step; with overlap it runs during backward (assumed perfect: the step takes forward + max(backward, allreduce) + update). Efficiency = one rank's step / the step at P ranks.",
    '',
  );
  lines.push('| model input | value | source |', '|---|---|---|');
  for (const s of rankSteps) {
    lines.push(
      `| ${s.name} step, batch ${s.batch} per rank: forward / backward / update | ${fmtMs(s.forwardMs)} / ${fmtMs(s.backwardMs)} / ${fmtMs(s.updateMs)} ms | measured (this run, 1 thread) |`,
    );
    lines.push(
      `| ${s.name} gradients | ${((4 * s.parameters) / 1e6).toFixed(1)} MB (${s.parameters.toLocaleString('en-US')} parameters) | counted |`,
    );
  }
  lines.push(`| latency per collective | ${fmtMs(fit.latencyMs)} ms | measured (Gloo on loopback, 2 ranks) |`);
  lines.push(`| local cost per byte | ${(fit.msPerByte * 1e6).toFixed(3)} ns | measured (Gloo on loopback, 2 ranks) |`);
  lines.push('| link bandwidth per rank | 10 and 100 GB/s | assumed |', '');
  lines.push(
    '| model | link | P = 8 | P = 64 | P = 512 | a step that keeps the allreduce under 10% at P = 512, no overlap |',
    '|---|---|---:|---:|---:|---:|',
  );
  for (const s of rankSteps) {
    const step = s.forwardMs + s.backwardMs + s.updateMs;
    for (const gb of [10, 100]) {
      const cells = [8, 64, 512].map((p) => {
        const comm = ringAllreduceMs(4 * s.parameters, p, gb, fit);
        const plain = step / (step + comm);
        const overlapped = step / (s.forwardMs + Math.max(s.backwardMs, comm) + s.updateMs);
        return `${percent(plain)} / ${percent(overlapped)}`;
      });
      lines.push(
        `| ${s.name}, batch ${s.batch} | ${gb} GB/s | ${cells.join(' | ')} | >= ${fmtMs(9 * ringAllreduceMs(4 * s.parameters, 512, gb, fit))} ms |`,
      );
    }
  }
  lines.push(
    '',
    "Cells: efficiency without / with overlap. The last column is the model's answer for faster ranks (a GPU's step): the shortest step for which the allreduce, not overlapped, stays under a tenth of it.",
  );
  return lines.join('\n') + '\n';
}

if (process.argv[2] === '--rank') {
  const { seed } = JSON.parse(process.argv[3] ?? '{}') as { seed?: number };
  await rank(seed ?? 0);
} else {
  await runBench('distributed', SECTION, measure);
}
