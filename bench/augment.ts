// Speed of the fused augmentation engine (applySubPolicies) on the CPU, against per-image
// PIL and torchvision pipelines on the same workload, as ratios measured in one run.
//
//   npx tsc -p . && node dist/bench/augment.js [--write] [--seed N]
//
// Workload: 3-channel images, 32x32 and 224x224, batch 512, values in [0, 1] quantised to
// 8 bits; each image its own random sub-policy of the default search space (c one-hot of a
// random index in 105, b random 0/1 bits, m uniform). Rows: forward only (c, b, m without
// gradients) and forward + backward (c, b, m requiring gradients, out.mul(G).sum().backward()),
// at 1 and 2 LibTorch threads, which take turns in blocks (1, 2, 1, 2). The baselines
// (bench/augment_baselines.py, Debian's /usr/bin/python3) run per image in one process on one
// thread, before and after ours. The machine's other load is measured (/proc/stat) during every
// timed row; a disturbed row is timed again. --write rewrites the '## Fused augmentation (CPU)'
// section of bench/RESULTS.md (and creates the file if needed), leaving other sections alone.
import { spawnSync } from 'node:child_process';

import { applySubPolicies } from '../lib/augment/fused.js';
import { setThreads } from '../lib/engine/backend.js';
import { defaultSearchSpace } from '../lib/augment/search-space.js';
import { Generator } from '../lib/engine/random.js';
import { dispose, liveTensors, tidy } from '../lib/engine/tensor.js';
import {
  PYTHON,
  ROOT,
  backgroundCores,
  backgroundNote,
  cpuSnapshot,
  fmtRate,
  fmtRatio,
  measuredOn,
  median,
  quietest,
  rateCell,
  runBench,
  subPolicyWorkload,
} from './common.js';

const BASELINES = 'bench/augment_baselines.py';
const SECTION = '## Fused augmentation (CPU)';

const BATCH = 512;
const THREADS = [1, 2] as const;

interface SizeConfig {
  size: number;
  /** Timed iterations per thread count (after the warm-up), and at least this many seconds in all. */
  iterations: number;
  minSeconds: number;
  warmup: number;
  /** Images the Python baselines time, per pipeline. */
  baselineImages: number;
}

const SIZES: SizeConfig[] = [
  { size: 32, iterations: 15, minSeconds: 2, warmup: 3, baselineImages: 4096 },
  { size: 224, iterations: 4, minSeconds: 0, warmup: 1, baselineImages: 512 },
];

interface Timing {
  rate: number;
  iterations: number;
  /** Cores other processes kept busy while this was timed. */
  background: number;
}

/** Retries stop this many seconds into the run, so that a busy machine cannot stretch it much past ~3 minutes. */
const RETRY_WINDOW_S = 90;
const MAX_ROW_SECONDS = 25;

/**
 * Images per second of `step` (one batch) at each thread count, from the median of the timed
 * iterations. The thread counts take turns in blocks (1, 2, 1, 2 threads), so that a drift in the
 * machine's speed (shared hosts have them) moves all of them alike and their ratio stays fair.
 * Each block starts with an untimed warm-up: right after setThreads() the first iterations run
 * slow (LibTorch rebuilds its thread pools, an idle CPU wakes up), which per-iteration turns
 * would time. Timed again (up to RETRIES times) when other processes were busy meanwhile; the
 * quietest try counts.
 */
function imagesPerSecond(step: () => void, config: SizeConfig): Map<number, Timing> {
  const best = quietest(() => timeInTurns(step, config), RETRY_WINDOW_S);
  return new Map(THREADS.map((threads, k) => [threads, { ...best.timings[k], background: best.background }]));
}

const BLOCKS = 2; // turns per thread count
const WARM_SECONDS = 0.5; // at least, after each switch of the thread count

function timeInTurns(
  step: () => void,
  config: SizeConfig,
): { timings: Omit<Timing, 'background'>[]; background: number } {
  const before = cpuSnapshot();
  const times: number[][] = THREADS.map(() => []);
  const perBlock = Math.ceil(config.iterations / BLOCKS);
  for (let block = 0; block < BLOCKS; block++) {
    THREADS.forEach((threads, k) => {
      setThreads(threads);
      const warmStart = performance.now();
      for (let n = 0; n < config.warmup || performance.now() - warmStart < WARM_SECONDS * 1000; n++) step();
      // At least perBlock iterations (and minSeconds / BLOCKS), but no more than two once
      // MAX_ROW_SECONDS / BLOCKS have passed.
      let total = 0;
      for (let n = 0; ; n++) {
        const enough = n >= perBlock && total >= (config.minSeconds / BLOCKS) * 1000;
        const tooLong = n >= 2 && total > (MAX_ROW_SECONDS / BLOCKS) * 1000;
        if (enough || tooLong) break;
        const start = performance.now();
        step();
        const elapsed = performance.now() - start;
        times[k].push(elapsed);
        total += elapsed;
      }
    });
  }
  return {
    timings: times.map((t) => ({ rate: BATCH / (median(t) / 1000), iterations: t.length })),
    background: backgroundCores(before),
  };
}

interface OursRow {
  forward: Timing;
  backward: Timing;
}

function measureOurs(config: SizeConfig, seed: number): Map<number, OursRow> {
  const space = defaultSearchSpace();
  const w = subPolicyWorkload(BATCH, config.size, space.subPolicies.length, new Generator(seed));
  const generator = new Generator(seed + 1);
  const forward = () => {
    tidy(() => {
      applySubPolicies(w.images, w.c, w.b, w.m, { searchSpace: space, generator });
    });
  };
  const grads = [w.c, w.b, w.m];
  const forwardBackward = () => {
    tidy(() => {
      for (const t of grads) t.requireGrad(true);
      const out = applySubPolicies(w.images, w.c, w.b, w.m, { searchSpace: space, generator });
      out.mul(w.g).sum().backward();
      for (const t of grads) t.requireGrad(false).zeroGrad();
    });
  };

  // The first call caches the search space's kernel tables (two small tensors kept for the
  // life of the search space): make it before counting live tensors.
  dispose(
    applySubPolicies(w.images.narrow(0, 0, 1), w.c.narrow(0, 0, 1), w.b.narrow(0, 0, 1), w.m.narrow(0, 0, 1), {
      searchSpace: space,
    }),
  );
  const rows = new Map<number, OursRow>();
  const live = liveTensors();
  const fwd = imagesPerSecond(forward, config);
  const bwd = imagesPerSecond(forwardBackward, config);
  for (const threads of THREADS) {
    const row = { forward: fwd.get(threads)!, backward: bwd.get(threads)! };
    rows.set(threads, row);
    console.error(
      `  ${config.size}x${config.size}, ${threads} thread(s): fwd ${fmtRate(row.forward.rate)} img/s ` +
        `(${row.forward.iterations} it, ` +
        `background ${row.forward.background.toFixed(2)} cores), fwd+bwd ${fmtRate(row.backward.rate)} img/s ` +
        `(${row.backward.iterations} it, background ${row.backward.background.toFixed(2)} cores)`,
    );
  }
  if (liveTensors() !== live) throw new Error(`tensors leaked: ${live} live before, ${liveTensors()} after`);
  dispose(w);
  return rows;
}

interface Baselines {
  pil: number;
  torchvision: number;
  /** Cores other processes kept busy while the baselines were timed (the larger of the two). */
  background: number;
  versions: string;
  /** The separate runs these rates combine, for the spread. */
  runs: { pil: number; torchvision: number }[];
}

function runBaselines(config: SizeConfig, seed: number): Baselines {
  const args = [BASELINES, String(config.size), String(config.baselineImages), String(seed)];
  const result = spawnSync(PYTHON, args, {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
  });
  if (result.error) throw new Error(`${PYTHON} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0)
    throw new Error(`${PYTHON} ${args.join(' ')} exited with ${result.status}:\n${result.stderr}`);
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  const parsed = JSON.parse(line) as Record<string, number | string | null>;
  const pil = Number(parsed.pil_images_per_s);
  const torchvision = Number(parsed.torchvision_images_per_s);
  if (!(pil > 0 && torchvision > 0)) throw new Error(`unexpected baseline output: ${line}`);
  const cores = (value: unknown) => (typeof value === 'number' ? value : Number.NaN); // null off Linux
  const background = Math.max(cores(parsed.pil_background_cores), cores(parsed.torchvision_background_cores));
  return {
    pil,
    torchvision,
    background,
    versions: `Pillow ${parsed.pil}, torch ${parsed.torch}, torchvision ${parsed.torchvision}`,
    runs: [{ pil, torchvision }],
  };
}

function measureBaselines(config: SizeConfig, seed: number): Baselines {
  const best = quietest(() => runBaselines(config, seed), RETRY_WINDOW_S);
  console.error(
    `  ${config.size}x${config.size} baselines: PIL ${fmtRate(best.pil)} img/s, torchvision ` +
      `${fmtRate(best.torchvision)} img/s ` +
      `(background ${best.background.toFixed(2)} cores)`,
  );
  return best;
}

function combineBaselines(a: Baselines, b: Baselines): Baselines {
  const harmonic = (x: number, y: number) => 2 / (1 / x + 1 / y);
  return {
    pil: harmonic(a.pil, b.pil),
    torchvision: harmonic(a.torchvision, b.torchvision),
    background: Math.max(a.background, b.background),
    versions: a.versions,
    runs: [...a.runs, ...b.runs],
  };
}

interface Measured {
  config: SizeConfig;
  ours: Map<number, OursRow>;
  baselines: Baselines;
}

function ratioCell(value: number, target: number | undefined): string {
  if (target === undefined) return fmtRatio(value);
  return `${fmtRatio(value)} ${value >= target ? 'met' : 'MISSED'}`;
}

function tables(results: Measured[]): string {
  const header = `| | ${results.map((r) => `${r.config.size}x${r.config.size}`).join(' | ')} |`;
  const rule = `|---|${results.map(() => '---:').join('|')}|`;
  const row = (label: string, cell: (r: Measured) => string) => `| ${label} | ${results.map(cell).join(' | ')} |`;
  const ours = (r: Measured, threads: number) => r.ours.get(threads)!;
  const timed = (t: Timing) => rateCell(t.rate, t.background);
  const throughput = [
    '**Images per second** (batch 512, 3 channels)',
    '',
    header,
    rule,
    row('ours, forward, 1 thread', (r) => timed(ours(r, 1).forward)),
    row('ours, forward, 2 threads', (r) => timed(ours(r, 2).forward)),
    row('ours, forward + backward, 1 thread', (r) => timed(ours(r, 1).backward)),
    row('ours, forward + backward, 2 threads', (r) => timed(ours(r, 2).backward)),
    row('PIL per image (Fast AA / DADA loader, 1 process)', (r) => rateCell(r.baselines.pil, r.baselines.background)),
    row('torchvision per image (1 thread)', (r) => rateCell(r.baselines.torchvision, r.baselines.background)),
  ];

  type RatioRow = { label: string; value: (r: Measured) => number; target: (size: number) => number | undefined };
  const ratios: RatioRow[] = [
    {
      label: 'ours fwd 1 thread / PIL',
      value: (r) => ours(r, 1).forward.rate / r.baselines.pil,
      target: (s) => (s <= 32 ? 20 : 2),
    },
    {
      label: 'ours fwd 1 thread / torchvision',
      value: (r) => ours(r, 1).forward.rate / r.baselines.torchvision,
      target: () => undefined,
    },
    {
      label: 'ours fwd+bwd 1 thread / PIL',
      value: (r) => ours(r, 1).backward.rate / r.baselines.pil,
      target: () => undefined,
    },
    {
      label: 'ours fwd 2 threads / 1 thread',
      value: (r) => ours(r, 2).forward.rate / ours(r, 1).forward.rate,
      target: () => 1.7,
    },
    {
      label: 'ours fwd+bwd 2 threads / 1 thread',
      value: (r) => ours(r, 2).backward.rate / ours(r, 1).backward.rate,
      target: () => 1.7,
    },
  ];
  const ratioHeader = `| ratio | ${results.map((r) => `${r.config.size}x${r.config.size} | target`).join(' | ')} |`;
  const ratioRule = `|---|${results.map(() => '---:|---:').join('|')}|`;
  const ratioLines = ratios.map((q) => {
    const cells = results.map((r) => {
      const target = q.target(r.config.size);
      return `${ratioCell(q.value(r), target)} | ${target === undefined ? '—' : `>= ${target}x`}`;
    });
    return `| ${q.label} | ${cells.join(' | ')} |`;
  });

  const loads = results.flatMap((r) => [
    ...[...r.ours.values()].flatMap((o) => [o.forward.background, o.backward.background]),
    r.baselines.background,
  ]);
  const loadNote = backgroundNote(loads, 'row', 'rows');
  const spread = (pick: (run: { pil: number; torchvision: number }) => number) =>
    results
      .map(
        (r) => `${r.baselines.runs.map((run) => fmtRate(pick(run))).join(' / ')} (${r.config.size}x${r.config.size})`,
      )
      .join(', ');
  const spreadNote =
    `The baselines' separate runs, before / after ours: PIL ${spread((run) => run.pil)}; torchvision ` +
    `${spread((run) => run.torchvision)}. Their spread is the machine's drift: read the ratios with it in mind.`;
  const notes = [loadNote, spreadNote];
  if (results.every((r) => ours(r, 2).forward.rate < 1.2 * ours(r, 1).forward.rate)) {
    notes.push(
      "2 threads gave no real speed-up. `at::parallel_for` is header-inline: unless the addon's CPU kernels " +
        'are compiled with OpenMP (`-fopenmp`, as LibTorch is), it runs the whole batch on the calling thread.',
    );
  }
  return [
    ...throughput,
    '',
    '**Ratios**',
    '',
    ratioHeader,
    ratioRule,
    ...ratioLines,
    '',
    ...notes.flatMap((n) => [n, '']),
  ]
    .join('\n')
    .trimEnd();
}

function section(results: Measured[], command: string): string {
  const versions = results[0]?.baselines.versions ?? '';
  return [
    SECTION,
    '',
    `${measuredOn()}; baselines with Debian's ${PYTHON} (${versions}).`,
    '',
    `Command: \`${command}\``,
    '',
    'Workload: random images in [0, 1] quantised to 8 bits, each image its own random sub-policy of the ' +
      'default search space (c one-hot of a random index in 105, b random 0/1 bits, m uniform). ' +
      '"forward": `applySubPolicies` with c, b, m not requiring gradients; "forward + backward": c, b, m ' +
      'requiring gradients and `out.mul(G).sum().backward()`. Threads are LibTorch intra-op threads ' +
      '(`setThreads`), taking turns in blocks (1, 2, 1, 2 threads), each after an untimed warm-up of at least ' +
      `${WARM_SECONDS} s. Rates are batch / median iteration time. Baselines ` +
      '(`bench/augment_baselines.py`), timed before and after ours (harmonic mean), per image in one process: ' +
      'PIL as the Fast AutoAugment / DADA loaders ' +
      '(Image.fromarray, ops on `img.copy()`, nearest-neighbour affine/rotate as in their code, Cutout ' +
      'rectangle, then ToTensor), and `torchvision.transforms.functional` on float [C, H, W] tensors ' +
      '(bilinear affine/rotate with the default fill, uint8 round trips for equalize/posterize, ' +
      '`torch.set_num_threads(1)`); each op applied with probability 0.5 at a uniform magnitude.',
    '',
    tables(results),
    '',
  ].join('\n');
}

/** Every size, its baselines before and after ours; the section. */
function measureAll(seed: number, command: string): string {
  const results: Measured[] = [];
  for (const config of SIZES) {
    console.error(`${config.size}x${config.size}:`);
    // The baselines run before and after ours and count as one (harmonic mean of the rates), so
    // that a drift in the machine's speed during the size's measurements touches both sides.
    const before = measureBaselines(config, seed);
    const ours = measureOurs(config, seed);
    const after = measureBaselines(config, seed + 1);
    results.push({ config, ours, baselines: combineBaselines(before, after) });
  }
  return section(results, command);
}

await runBench('augment', SECTION, measureAll);
