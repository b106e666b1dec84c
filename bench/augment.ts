// Speed of the fused augmentation engine (applySubPolicies) on the CPU, against per-image
// PIL and torchvision pipelines on the same workload, as ratios measured in one run.
//
//   npx tsc -p . && node dist/bench/augment.js [--write] [--seed N] [--quick]
//
// Workload: 3-channel images, 32x32 and 224x224, batch 512, values in [0, 1] quantised to
// 8 bits; each image its own random sub-policy of the default search space (c one-hot of a
// random index in 105, b random 0/1 bits, m uniform). Rows: forward only (c, b, m without
// gradients) and forward + backward (c, b, m requiring gradients, out.mul(G).sum().backward()),
// at 1 and 2 LibTorch threads, each by the long-loop method (bench/long-loop.ts): a long loop of
// calls in each of 5 fresh processes, the median and the worst of their rates. The baselines
// (bench/augment_baselines.py, Debian's /usr/bin/python3) run per image in one process on one
// thread, before and after ours. The machine's other load is measured (/proc/stat) during every
// timed loop; a disturbed one is timed again. --write rewrites the '## Fused augmentation (CPU)'
// section of bench/RESULTS.md (and creates the file if needed), leaving other sections alone.
// --quick (dna bench --quick): loops a fifth as long in 3 processes each, baselines on fewer images.
import { spawnSync } from 'node:child_process';

import { PYTHON, ROOT, backgroundNote, fmtRate, fmtRatio, measuredOn, quietest, rateCell, runBench } from './common.js';
import { LOOP_PROCESSES, timeLoops, type LoopTiming } from './long-loop.js';

const BASELINES = 'bench/augment_baselines.py';
const SECTION = '## Fused augmentation (CPU)';

const BATCH = 512;
const THREADS = [1, 2] as const;

interface SizeConfig {
  size: number;
  /** Calls of the fused op in each process's loop. */
  calls: number;
  /** Images the Python baselines time, per pipeline. */
  baselineImages: number;
  /** Fresh processes per row. */
  processes: number;
}

const SIZES: SizeConfig[] = [
  { size: 32, calls: 1000, baselineImages: 4096, processes: LOOP_PROCESSES },
  // 224x224 calls take 0.3 s (forward) to 1 s (with backward) on one thread.
  { size: 224, calls: 20, baselineImages: 512, processes: LOOP_PROCESSES },
];
const QUICK_SIZES: SizeConfig[] = SIZES.map((c) => ({
  ...c,
  calls: Math.ceil(c.calls / 5),
  baselineImages: c.baselineImages / 4,
  processes: 3,
}));

/** Retries stop this many seconds into the run, so that a busy machine cannot stretch it much. */
const RETRY_WINDOW_S = 240;
/** The most the median of a row's processes may exceed its worst. */
const WORST_TARGET = 1.3;

interface OursRow {
  forward: LoopTiming;
  backward: LoopTiming;
}

async function measureOurs(config: SizeConfig, seed: number): Promise<Map<number, OursRow>> {
  const loop = (threads: number, backward: boolean) => ({
    run: { kind: 'fused-op', size: config.size, steps: config.calls, backward, threads, seed } as const,
    imagesPerStep: BATCH,
  });
  const timings = await timeLoops(
    THREADS.flatMap((threads) => [loop(threads, false), loop(threads, true)]),
    RETRY_WINDOW_S,
    config.processes,
  );
  const ours = new Map<number, OursRow>();
  THREADS.forEach((threads, k) => {
    const row = { forward: timings[2 * k], backward: timings[2 * k + 1] };
    ours.set(threads, row);
    const rates = (t: LoopTiming) =>
      `${t.rates.map(fmtRate).join(', ')} img/s (background up to ${t.background.toFixed(2)} cores)`;
    console.error(
      `  ${config.size}x${config.size}, ${threads} thread(s): fwd ${rates(row.forward)}; fwd+bwd ${rates(row.backward)}`,
    );
  });
  return ours;
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
    `  ${config.size}x${config.size} baselines: PIL ${fmtRate(best.pil)} img/s, torchvision ${fmtRate(best.torchvision)} img/s ` +
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

/** A ratio against its target: at least `target`, or at most it where `atMost`. */
function ratioCell(value: number, target: number | undefined, atMost = false): string {
  if (target === undefined) return fmtRatio(value);
  return `${fmtRatio(value)} ${(atMost ? value <= target : value >= target) ? 'met' : 'MISSED'}`;
}

function tables(results: Measured[]): string {
  const sizeName = (r: Measured) => `${r.config.size}x${r.config.size}`;
  const processes = results[0].config.processes;
  const header = `| | ${results.map((r) => `${sizeName(r)} | ${sizeName(r)}, worst of ${processes}`).join(' | ')} |`;
  const rule = `|---|${results.map(() => '---:|---:').join('|')}|`;
  const row = (label: string, cell: (r: Measured) => string) => `| ${label} | ${results.map(cell).join(' | ')} |`;
  const ours = (r: Measured, threads: number) => r.ours.get(threads)!;
  const timed = (t: LoopTiming) => `${rateCell(t.median, t.background)} | ${fmtRate(t.worst)}`;
  const baseline = (rate: number, background: number) => `${rateCell(rate, background)} | —`;
  const throughput = [
    `**Images per second** (batch 512, 3 channels; ours: median and worst of ${processes} processes)`,
    '',
    header,
    rule,
    row('ours, forward, 1 thread', (r) => timed(ours(r, 1).forward)),
    row('ours, forward, 2 threads', (r) => timed(ours(r, 2).forward)),
    row('ours, forward + backward, 1 thread', (r) => timed(ours(r, 1).backward)),
    row('ours, forward + backward, 2 threads', (r) => timed(ours(r, 2).backward)),
    row('PIL per image (Fast AA / DADA loader, 1 process)', (r) => baseline(r.baselines.pil, r.baselines.background)),
    row('torchvision per image (1 thread)', (r) => baseline(r.baselines.torchvision, r.baselines.background)),
  ];

  const loops = (r: Measured) => [...r.ours.values()].flatMap((o) => [o.forward, o.backward]);
  type RatioRow = {
    label: string;
    value: (r: Measured) => number;
    target: (size: number) => number | undefined;
    atMost?: boolean;
  };
  const ratios: RatioRow[] = [
    {
      label: 'ours fwd 1 thread / PIL',
      value: (r) => ours(r, 1).forward.median / r.baselines.pil,
      target: (s) => (s <= 32 ? 20 : 2),
    },
    {
      label: 'ours fwd 1 thread / torchvision',
      value: (r) => ours(r, 1).forward.median / r.baselines.torchvision,
      target: () => undefined,
    },
    {
      label: 'ours fwd+bwd 1 thread / PIL',
      value: (r) => ours(r, 1).backward.median / r.baselines.pil,
      target: () => undefined,
    },
    {
      label: 'ours fwd 2 threads / 1 thread',
      value: (r) => ours(r, 2).forward.median / ours(r, 1).forward.median,
      target: () => 1.7,
    },
    {
      label: 'ours fwd+bwd 2 threads / 1 thread',
      value: (r) => ours(r, 2).backward.median / ours(r, 1).backward.median,
      target: () => 1.7,
    },
    {
      label: `ours median / worst of ${processes} processes, largest of the four rows`,
      value: (r) => Math.max(...loops(r).map((t) => t.median / t.worst)),
      target: () => WORST_TARGET,
      atMost: true,
    },
  ];
  const ratioHeader = `| ratio | ${results.map((r) => `${sizeName(r)} | target`).join(' | ')} |`;
  const ratioRule = `|---|${results.map(() => '---:|---:').join('|')}|`;
  const ratioLines = ratios.map((q) => {
    const cells = results.map((r) => {
      const target = q.target(r.config.size);
      return `${ratioCell(q.value(r), target, q.atMost)} | ${target === undefined ? '—' : `${q.atMost ? '<=' : '>='} ${target}x`}`;
    });
    return `| ${q.label} | ${cells.join(' | ')} |`;
  });

  const memory = results
    .map((r) => {
      const all = loops(r);
      const rss = all.flatMap((t) => t.rss);
      const faults = all.flatMap((t) => t.faults);
      return `${sizeName(r)}: ${Math.min(...rss).toFixed(0)}-${Math.max(...rss).toFixed(0)} MiB, ${Math.max(...faults)} page faults a call at most`;
    })
    .join('; ');
  const memoryNote = `Resident memory at the end of each process's loop, and minor page faults per call over its second half: ${memory}.`;
  const loads = results.flatMap((r) => [...loops(r).map((t) => t.background), r.baselines.background]);
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
  const notes = [memoryNote, loadNote, spreadNote];
  const twoThreadLoads = results.flatMap((r) => [ours(r, 2).forward.background, ours(r, 2).backward.background]);
  if (
    results.every((r) => ours(r, 2).forward.median < 1.2 * ours(r, 1).forward.median) &&
    Math.min(...twoThreadLoads) >= 0.25
  ) {
    notes.push(
      '2 threads gave no real speed-up here, with other processes busy on the machine while each of those rows ' +
        'ran (†): the second LibTorch thread had no core of its own. These rows do not measure threading.',
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
      `(\`setThreads\`). Ours by the long-loop method: each row is a loop of ${results.map(({ config: c }) => `${c.calls.toLocaleString('en-US')} calls (${c.size}x${c.size})`).join(' or ')} ` +
      `in each of ${results[0].config.processes} fresh processes, the rows' processes taking turns; a process's rate is the images of all its calls over their time, ` +
      'the first call included; the table gives the median of the processes and the worst. Baselines ' +
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
async function measureAll(seed: number, command: string, quick: boolean): Promise<string> {
  const results: Measured[] = [];
  for (const config of quick ? QUICK_SIZES : SIZES) {
    console.error(`${config.size}x${config.size}:`);
    // The baselines run before and after ours and count as one (harmonic mean of the rates), so
    // that a drift in the machine's speed during the size's measurements touches both sides.
    const before = measureBaselines(config, seed);
    const ours = await measureOurs(config, seed);
    const after = measureBaselines(config, seed + 1);
    results.push({ config, ours, baselines: combineBaselines(before, after) });
  }
  return section(results, command);
}

await runBench('augment', SECTION, measureAll);
