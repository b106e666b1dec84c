// Speed of a classifier training step on the CPU, driven from TypeScript, against the same step
// in PyTorch (Debian's /usr/bin/python3, over the same LibTorch), as ratios measured in one run.
//
//   npx tsc -p . && node dist/bench/train.js [--write] [--seed N]
//
// The step (as lib/run/train.ts runs it: classifierStep on the addon's step thread): zeroGrad,
// forward, cross-entropy, backward, SGD (lr 0.1, momentum 0.9, Nesterov, weight decay 2e-4), then
// loss.item() as PyTorch's step reads its loss; on a fixed batch of random
// images in [0, 1] (3x32x32, the model's own normalisation) and random labels in 10 classes.
// Models: WRN-16-1 at batch 128 and WRN-40-2 at batch 64, at 1 and 2 LibTorch threads.
// bench/train_baseline.py builds the same WideResNet in PyTorch (checked: parameter names,
// shapes and count equal ours) and serves timed blocks of steps on request, so that our blocks
// and PyTorch's take turns in a mirrored order, repeated (PyTorch 1, ours 1, PyTorch 2, ours 2,
// then ours 2, PyTorch 2, ours 1, PyTorch 1 threads): a drift in the machine's speed touches
// both sides alike, and each of our blocks has a PyTorch block next to it to compare with. The machine's other load is measured (/proc/stat) during every timed block; a
// disturbed block is timed again. --write rewrites the '## Training step (CPU)' section of
// bench/RESULTS.md (and creates the file if needed), leaving other sections alone.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

import { setThreads } from '../lib/engine/backend.js';
import { WRN_16_1, WRN_40_2, wideResNet, type WideResNetPreset } from '../lib/engine/models.js';
import { sgd } from '../lib/engine/optim.js';
import { Generator, rand, randint } from '../lib/engine/random.js';
import { classifierStep } from '../lib/engine/steps.js';
import { dispose, liveTensors } from '../lib/engine/tensor.js';
import {
  PYTHON,
  ROOT,
  backgroundCores,
  backgroundNote,
  cpuSnapshot,
  fmtMs,
  fmtRate,
  fmtRatio,
  measuredOn,
  quietestAsync,
  median,
  rateCell,
  runBench,
} from './common.js';

const BASELINE = 'bench/train_baseline.py';
const SECTION = '## Training step (CPU)';

const CHANNELS = 3;
const SIZE = 32;
const CLASSES = 10;
const THREADS = [1, 2] as const;
const SGD = { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 2e-4 } as const;

interface ModelConfig {
  name: string;
  preset: WideResNetPreset;
  batch: number;
  /** Timed steps per block. */
  steps: number;
  /** Untimed steps before each block (at least this many, and WARM_SECONDS after a change of threads). */
  warmup: number;
  /** Repeats of the mirrored order: each side gets 2 * units blocks per thread count. */
  units: number;
}

const MODELS: ModelConfig[] = [
  { name: 'WRN-16-1', preset: WRN_16_1, batch: 128, steps: 6, warmup: 1, units: 3 },
  { name: 'WRN-40-2', preset: WRN_40_2, batch: 64, steps: 2, warmup: 1, units: 2 },
];

const WARM_SECONDS = 0.5;
const PHASES = ['forward', 'backward', 'update'] as const;

/** Retries stop this many seconds into the run, so that a busy machine cannot stretch it much past ~4 minutes. */
const RETRY_WINDOW_S = 150;

// ---- One block of steps, on either side ----

/** A timed block: the seconds of each step and of its phases, and the other processes' load meanwhile. */
interface Block {
  steps: number[];
  phases: number[][]; // per step: forward, backward, update
  /** Minor page faults of the process during the timed steps. */
  faults: number;
  background: number;
}

interface Side {
  name: 'ours' | 'PyTorch';
  /** A block at `threads`: config.warmup untimed steps (and more until `warmSeconds` have passed), then config.steps timed ones. */
  run(threads: number, config: ModelConfig, warmSeconds: number): Promise<Block>;
}

/** Our step: a model, an optimiser and a fixed batch, built once per model. */
class Ours implements Side {
  readonly name = 'ours';
  readonly parameterCount: number;
  readonly parameterNames: string[];
  readonly parameterShapes: number[][];
  readonly bufferNames: string[];
  readonly mean: number[];
  readonly std: number[];
  readonly #model;
  readonly #optimizer;
  readonly #images;
  readonly #labels;

  constructor(config: ModelConfig, seed: number) {
    this.#model = wideResNet({ ...config.preset, classes: CLASSES, inChannels: CHANNELS, seed }).train();
    const parameters = this.#model.parameters();
    this.#optimizer = sgd(parameters, SGD);
    this.parameterShapes = parameters.map((p) => p.shape);
    dispose(parameters);
    this.parameterCount = this.#model.parameterCount;
    this.parameterNames = this.#model.parameterNames;
    this.bufferNames = this.#model.bufferNames;
    ({ mean: this.mean, std: this.std } = this.#model.config);
    const generator = new Generator(seed + 1);
    this.#images = rand([config.batch, CHANNELS, SIZE, SIZE], { generator });
    this.#labels = randint(0, CLASSES, [config.batch], { generator });
  }

  /**
   * One step as `train` runs it: forward, cross-entropy, backward and the update in one call on the
   * step thread (classifierStep), then the loss read (item(), as PyTorch's step reads it). Its
   * phases are not timed apart: they run in one native call.
   */
  async step(): Promise<number> {
    const { loss, correct } = await classifierStep(this.#model, this.#images, this.#labels, {
      optimizer: this.#optimizer,
      zeroGrad: true,
      step: true,
    });
    const value = loss.item();
    dispose([loss, correct]);
    return value;
  }

  async run(threads: number, config: ModelConfig, warmSeconds: number): Promise<Block> {
    setThreads(threads);
    const warmStart = performance.now();
    for (let n = 0; n < config.warmup || performance.now() - warmStart < warmSeconds * 1000; n++) await this.step();
    const live = liveTensors();
    const faults = process.resourceUsage().minorPageFault;
    const before = cpuSnapshot();
    const steps: number[] = [];
    let loss = 0;
    for (let n = 0; n < config.steps; n++) {
      const start = performance.now();
      loss = await this.step();
      steps.push((performance.now() - start) / 1000);
    }
    const background = backgroundCores(before);
    const faulted = process.resourceUsage().minorPageFault - faults;
    if (liveTensors() !== live)
      throw new Error(`tensors leaked: ${live} live before the steps, ${liveTensors()} after`);
    if (!Number.isFinite(loss)) throw new Error(`our loss became ${loss}`);
    return { steps, phases: [], faults: faulted, background };
  }

  dispose(): void {
    dispose([this.#images, this.#labels]);
    this.#optimizer.dispose();
    this.#model.dispose();
  }
}

interface BaselineInfo {
  model: string;
  parameters: number;
  parameter_names: string[];
  parameter_shapes: number[][];
  buffer_names: string[];
  torch: string;
  sgd_foreach: boolean | null;
}

/** PyTorch's step, in a /usr/bin/python3 process that times blocks of steps on request. */
class PyTorch implements Side {
  readonly name = 'PyTorch';
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterableIterator<string>;
  #stderr = '';
  readonly #command: string;

  private constructor(child: ChildProcessWithoutNullStreams, command: string) {
    this.#child = child;
    this.#command = command;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      this.#stderr += chunk;
    });
    this.#lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  /** Starts the server for `config`, checking that its model has our parameters (names, shapes, count). */
  static async start(config: ModelConfig, ours: Ours, seed: number): Promise<{ side: PyTorch; info: BaselineInfo }> {
    const { depth, widen } = config.preset;
    const args = [
      BASELINE,
      '--serve',
      ...['--depth', String(depth), '--widen', String(widen), '--batch', String(config.batch)],
      ...['--classes', String(CLASSES), '--size', String(SIZE), '--seed', String(seed)],
      ...['--mean', ...ours.mean.map(String), '--std', ...ours.std.map(String)],
      ...['--expect-params', String(ours.parameterCount)],
    ];
    const command = `${PYTHON} ${args.join(' ')}`;
    const child = spawn(PYTHON, args, { cwd: ROOT, env: process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const side = new PyTorch(child, command);
    try {
      const info = (await side.#reply()) as unknown as BaselineInfo;
      side.#check(info, ours);
      return { side, info };
    } catch (error) {
      side.kill();
      throw error;
    }
  }

  #check(info: BaselineInfo, ours: Ours): void {
    const names = info.parameter_names.join(',');
    if (names !== ours.parameterNames.join(',')) {
      throw new Error(
        `the PyTorch model's parameters are not ours:\n  PyTorch: ${names}\n  ours:    ` +
          `${ours.parameterNames.join(',')}`,
      );
    }
    const shapes = JSON.stringify(info.parameter_shapes);
    if (shapes !== JSON.stringify(ours.parameterShapes)) {
      throw new Error(
        `the PyTorch model's parameter shapes are not ours:\n  PyTorch: ${shapes}\n  ours:    ` +
          `${JSON.stringify(ours.parameterShapes)}`,
      );
    }
    if (info.buffer_names.join(',') !== ours.bufferNames.join(',')) {
      throw new Error(
        `the PyTorch model's buffers are not ours:\n  PyTorch: ${info.buffer_names.join(',')}\n  ours:    ` +
          `${ours.bufferNames.join(',')}`,
      );
    }
    if (info.parameters !== ours.parameterCount) {
      throw new Error(`parameter counts differ: PyTorch ${info.parameters}, ours ${ours.parameterCount}`);
    }
  }

  async #reply(): Promise<Record<string, unknown>> {
    const next = await this.#lines.next();
    if (next.done) {
      const code = await new Promise<number | null>((resolve) => {
        if (this.#child.exitCode !== null) resolve(this.#child.exitCode);
        else this.#child.once('exit', (c) => resolve(c));
      });
      throw new Error(`${this.#command} exited with ${code}:\n${this.#stderr}`);
    }
    return JSON.parse(next.value) as Record<string, unknown>;
  }

  async run(threads: number, config: ModelConfig, warmSeconds: number): Promise<Block> {
    this.#child.stdin.write(
      `${JSON.stringify({ threads, warmup: config.warmup, warmup_seconds: warmSeconds, steps: config.steps })}\n`,
    );
    const reply = await this.#reply();
    if (reply.torch_threads !== threads)
      throw new Error(`PyTorch ran at ${String(reply.torch_threads)} threads, asked for ${threads}`);
    const background = typeof reply.background_cores === 'number' ? reply.background_cores : Number.NaN; // null off Linux
    return {
      steps: reply.step_seconds as number[],
      phases: reply.phase_seconds as number[][],
      faults: Number(reply.minor_faults),
      background,
    };
  }

  kill(): void {
    if (this.#child.exitCode === null) this.#child.kill();
  }

  async close(): Promise<void> {
    this.#child.stdin.end();
    const code = await new Promise<number | null>((resolve) => {
      if (this.#child.exitCode !== null) resolve(this.#child.exitCode);
      else this.#child.once('exit', (c) => resolve(c));
    });
    if (code !== 0) throw new Error(`${this.#command} exited with ${code}:\n${this.#stderr}`);
  }
}

/** A block, timed again (up to RETRIES times) when other processes were busy meanwhile; the quietest try counts. */
function quietBlock(side: Side, threads: number, config: ModelConfig, warmSeconds: number): Promise<Block> {
  return quietestAsync(
    () => side.run(threads, config, warmSeconds),
    RETRY_WINDOW_S,
    (disturbed) =>
      console.error(
        `    ${side.name}, ${threads} thread(s): ${disturbed.background.toFixed(2)} cores of other load, ` +
          `timing it again`,
      ),
  );
}

// ---- Measurement ----

interface Timing {
  /** Images per second: batch / median step time. */
  rate: number;
  steps: number;
  /** Median seconds per step of each phase. */
  phases: number[];
  /** Minor page faults per timed step, on average. */
  faultsPerStep: number;
  /** The most cores other processes kept busy during any of its blocks. */
  background: number;
  /** The rate of each block alone, in the order they ran. */
  blockRates: number[];
}

interface Measured {
  config: ModelConfig;
  parameters: { ours: number; pytorch: number };
  ours: Map<number, Timing>;
  pytorch: Map<number, Timing>;
  /** Our rate over PyTorch's in each pair of adjacent blocks, per thread count. */
  pairRatios: Map<number, number[]>;
  torch: string;
  foreach: boolean | null;
}

function timing(blocks: Block[], batch: number): Timing {
  const steps = blocks.flatMap((b) => b.steps);
  const phases = blocks.flatMap((b) => b.phases);
  return {
    rate: batch / median(steps),
    steps: steps.length,
    phases: PHASES.map((_, k) => (phases.length === 0 ? Number.NaN : median(phases.map((p) => p[k])))),
    faultsPerStep: blocks.reduce((sum, b) => sum + b.faults, 0) / steps.length,
    background: Math.max(...blocks.map((b) => b.background)),
    blockRates: blocks.map((b) => batch / median(b.steps)),
  };
}

async function measure(config: ModelConfig, seed: number): Promise<Measured> {
  const ours = new Ours(config, seed);
  const { side: pytorch, info } = await PyTorch.start(config, ours, seed);
  console.error(
    `  parameters: ours ${ours.parameterCount.toLocaleString('en-US')}, PyTorch ` +
      `${info.parameters.toLocaleString('en-US')}`,
  );
  try {
    // The mirrored order: each thread count's PyTorch and our blocks sit symmetrically around
    // the middle of each unit; the k-th blocks of the two sides at a thread count are neighbours.
    const first: [Side, number][] = THREADS.flatMap((threads) => [
      [pytorch, threads] as [Side, number],
      [ours, threads] as [Side, number],
    ]);
    const unit = [...first, ...[...first].reverse()];
    const order = Array.from({ length: config.units }, () => unit).flat();
    const blocks = new Map<string, Block[]>();
    const lastThreads = new Map<Side, number>();
    for (const [side, threads] of order) {
      const warmSeconds = lastThreads.get(side) === threads ? 0 : WARM_SECONDS;
      lastThreads.set(side, threads);
      const block = await quietBlock(side, threads, config, warmSeconds);
      const key = `${side.name}/${threads}`;
      blocks.set(key, [...(blocks.get(key) ?? []), block]);
      console.error(
        `    ${side.name}, ${threads} thread(s): ${fmtRate(config.batch / median(block.steps))} img/s ` +
          `(${block.steps.length} steps, background ${block.background.toFixed(2)} cores)`,
      );
    }
    const pick = (side: Side, threads: number) => timing(blocks.get(`${side.name}/${threads}`)!, config.batch);
    const result: Measured = {
      config,
      parameters: { ours: ours.parameterCount, pytorch: info.parameters },
      ours: new Map(THREADS.map((t) => [t, pick(ours, t)])),
      pytorch: new Map(THREADS.map((t) => [t, pick(pytorch, t)])),
      pairRatios: new Map(),
      torch: info.torch,
      foreach: info.sgd_foreach,
    };
    for (const t of THREADS) {
      const o = result.ours.get(t)!.blockRates;
      const p = result.pytorch.get(t)!.blockRates;
      result.pairRatios.set(
        t,
        o.map((rate, k) => rate / p[k]),
      );
    }
    await pytorch.close();
    return result;
  } catch (error) {
    pytorch.kill();
    throw error;
  } finally {
    ours.dispose();
  }
}

// ---- Report ----

/** Seconds as milliseconds, as the other tables show them. */
const fmtSeconds = (seconds: number) => fmtMs(seconds * 1000);

const TARGET = 1.0;

function tables(results: Measured[]): string {
  const label = (r: Measured) => `${r.config.name}, batch ${r.config.batch}`;
  const header = `| | ${results.map(label).join(' | ')} |`;
  const rule = `|---|${results.map(() => '---:').join('|')}|`;
  const row = (name: string, cell: (r: Measured) => string) => `| ${name} | ${results.map(cell).join(' | ')} |`;
  const timed = (t: Timing) => rateCell(t.rate, t.background);
  const throughput = [
    `**Images per second** (${CHANNELS}x${SIZE}x${SIZE}, ${CLASSES} classes; forward, cross-entropy, ` +
      `backward, SGD step)`,
    '',
    header,
    rule,
    row(
      'parameters, ours / PyTorch',
      (r) => `${r.parameters.ours.toLocaleString('en-US')} / ${r.parameters.pytorch.toLocaleString('en-US')}`,
    ),
    ...THREADS.flatMap((t) => {
      const s = t === 1 ? '' : 's';
      return [
        row(`ours, ${t} thread${s}`, (r) => timed(r.ours.get(t)!)),
        row(`PyTorch, ${t} thread${s}`, (r) => timed(r.pytorch.get(t)!)),
      ];
    }),
  ];

  const ratioHeader = `| ratio | ${results.map((r) => `${r.config.name} | target`).join(' | ')} |`;
  const ratioRule = `|---|${results.map(() => '---:|---:').join('|')}|`;
  const ratioRows = [
    ...THREADS.map((t) => {
      const cells = results.map((r) => {
        const value = r.ours.get(t)!.rate / r.pytorch.get(t)!.rate;
        return `${fmtRatio(value)} ${value >= TARGET ? 'met' : 'MISSED'} | >= ${TARGET.toFixed(1)}x`;
      });
      return `| ours / PyTorch, ${t} thread${t === 1 ? '' : 's'} | ${cells.join(' | ')} |`;
    }),
    `| ours 2 threads / 1 thread | ` +
      `${results.map((r) => `${fmtRatio(r.ours.get(2)!.rate / r.ours.get(1)!.rate)} | —`).join(' | ')} |`,
    `| PyTorch 2 threads / 1 thread | ` +
      `${results.map((r) => `${fmtRatio(r.pytorch.get(2)!.rate / r.pytorch.get(1)!.rate)} | —`).join(' | ')} |`,
  ];

  const phaseHeader = `| ms per step (median) | ${PHASES.join(' | ')} | whole step | page faults per step |`;
  const phaseRule = `|---|${PHASES.map(() => '---:').join('|')}|---:|---:|`;
  const phaseRows = results.flatMap((r) =>
    THREADS.flatMap((t) =>
      (['ours', 'PyTorch'] as const).map((side) => {
        const timingOf = side === 'ours' ? r.ours.get(t)! : r.pytorch.get(t)!;
        return (
          `| ${r.config.name}, ${t} thread${t === 1 ? '' : 's'}, ${side} | ` +
          `${timingOf.phases.map((p) => (Number.isFinite(p) ? fmtSeconds(p) : '—')).join(' | ')} | ` +
          `${fmtSeconds(r.config.batch / timingOf.rate)} | ` +
          `${Math.round(timingOf.faultsPerStep).toLocaleString('en-US')} |`
        );
      }),
    ),
  );

  const loads = results.flatMap((r) => [...r.ours.values(), ...r.pytorch.values()].map((t) => t.background));
  const loadNote = backgroundNote(loads, 'block', 'rates');
  const pairs = results
    .map(
      (r) =>
        `${r.config.name}: ${THREADS.map(
          (t) =>
            `${r.pairRatios
              .get(t)!
              .map((x) => x.toFixed(2))
              .join(', ')} (${t} thread${t === 1 ? '' : 's'})`,
        ).join('; ')}`,
    )
    .join('. ');
  const spreadNote =
    `ours / PyTorch in each pair of neighbouring blocks, in the order they ran: ${pairs}. ` +
    'Their spread is the noise of the ratios on this machine.';
  const steps = results
    .map((r) => `${r.config.name} ${r.ours.get(1)!.steps} (${2 * r.config.units} blocks of ${r.config.steps})`)
    .join(', ');
  const countNote = `Timed steps per side and thread count: ${steps}.`;
  return [
    ...throughput,
    '',
    '**Ratios**',
    '',
    ratioHeader,
    ratioRule,
    ...ratioRows,
    '',
    '**Where the time goes** (forward includes zeroGrad and the loss; update is the SGD step and `item()`; ' +
      'the phases are medians of their own, so they need not add up to the whole step)',
    '',
    phaseHeader,
    phaseRule,
    ...phaseRows,
    '',
    loadNote,
    '',
    spreadNote,
    '',
    countNote,
  ].join('\n');
}

function section(results: Measured[], command: string): string {
  const foreach = results[0]?.foreach;
  return [
    SECTION,
    '',
    `${measuredOn()}; PyTorch ${results[0]?.torch ?? '?'} with Debian's ${PYTHON} ` +
      '(the same LibTorch shared libraries).',
    '',
    `Command: \`${command}\``,
    '',
    'Workload: one training step of a pre-activation WideResNet on a fixed batch of random images in [0, 1] ' +
      `(${CHANNELS}x${SIZE}x${SIZE}, normalised by the model: (x - 0.5) / 0.5) and random labels in ` +
      `${CLASSES} classes: ` +
      'zero the gradients (set to none), forward, mean cross-entropy, backward, SGD (lr 0.1, momentum 0.9, Nesterov, ' +
      `weight decay 2e-4${foreach === null || foreach === undefined ? '' : `, foreach ${String(foreach)}`}), ` +
      'read the loss. Ours: `wideResNet`, `crossEntropy` and `sgd` from TypeScript, in `tidy`. PyTorch ' +
      '(`bench/train_baseline.py`): the same network written with torch.nn layer for layer (same parameter names, ' +
      'shapes and count and buffer names, checked; same initial distributions), `F.cross_entropy`, ' +
      '`torch.optim.SGD`, in one ' +
      'process that times blocks of steps on request. Threads are LibTorch intra-op threads (`setThreads`, ' +
      '`torch.set_num_threads`). The blocks take turns in a mirrored order, repeated (PyTorch 1, ours 1, PyTorch ' +
      '2, ours 2, ' +
      `ours 2, PyTorch 2, ours 1, PyTorch 1 threads), each after an untimed warm-up of one step (and at least ` +
      `${WARM_SECONDS} s ` +
      'when its side changed threads). ' +
      'Rates are batch / median step time over all the blocks of a side.',
    '',
    tables(results),
    '',
  ].join('\n');
}

/** Every model (WRN-16-1 alone with --quick), ours and PyTorch's in turns; the section. */
async function measureAll(seed: number, command: string, quick: boolean): Promise<string> {
  const results: Measured[] = [];
  // --quick: WRN-16-1 alone, one round of blocks.
  for (const config of quick ? [{ ...MODELS[0], units: 1 }] : MODELS) {
    console.error(`${config.name}, batch ${config.batch}:`);
    results.push(await measure(config, seed));
  }
  return section(results, command);
}

await runBench('train', SECTION, measureAll);
