// Speed of a DNA search step against a plain training step of the same classifier, same batch,
// on the CPU, as ratios measured in one run (SPEC 5: at most 2.3x, augmentation under 5%).
//
//   npx tsc -p . && node dist/bench/search.js [--write] [--seed N]
//
// Both steps run through the public API on a fixed synthetic dataset (random uint8 images
// 3x32x32, 10 classes), preprocess 'cifar', epochs 1: `train({ model, augmentation: 'none' })`
// and `search({ classifier, policy })` with the same backbone for the classifier and the policy
// network (the paper: WRN-40-2 for both). A step's time is the difference of consecutive
// `onProgress` step callbacks (so it includes making the batch); the first step of each call
// and `warmup` more are not timed. In the same run, the augmentation itself is timed on a batch
// of the same size: `preprocess(images, 'cifar')` and `applySubPolicies` forward + backward (c, b,
// m requiring gradients), as a share of the median search step. The blocks (one call each) take
// turns in a mirrored order, repeated (train 1, search 1, augmentation 1, train 2, search 2,
// augmentation 2, then back: augmentation 2, search 2, train 2, ... threads), so that a drift in
// the machine's speed touches both sides alike. A third side, the search with the policy head on
// the classifier's detached features (`policyHead: 'features'`, no second backbone), is timed in
// the same turns. The machine's other load is measured (/proc/stat)
// during every timed block; a disturbed block is timed again. --write rewrites the
// '## Search step (CPU)' section of bench/RESULTS.md, leaving other sections alone.
import { applySubPolicies } from '../lib/augment/fused.js';
import { preprocess } from '../lib/augment/preprocess.js';
import { setThreads } from '../lib/engine/backend.js';
import type { ImageDataset } from '../lib/data/index.js';
import { WRN_16_1, WRN_40_2, wideResNet, type WideResNetPreset } from '../lib/engine/models.js';
import { PolicyNetwork } from '../lib/dna/policy-network.js';
import { search } from '../lib/run/search.js';
import { defaultSearchSpace } from '../lib/augment/search-space.js';
import { Generator } from '../lib/engine/random.js';
import { dispose, liveTensors, tidy } from '../lib/engine/tensor.js';
import { train } from '../lib/run/train.js';
import {
  QUIET_CORES,
  backgroundCores,
  backgroundNote,
  cpuSnapshot,
  fmtMs,
  fmtRate,
  fmtRatio,
  measuredOn,
  median,
  quietestAsync,
  runBench,
  subPolicyWorkload,
  syntheticDataset,
  type CpuSnapshot,
} from './common.js';

const SECTION = '## Search step (CPU)';

const CHANNELS = 3;
const SIZE = 32;
const CLASSES = 10;
const THREADS = [1, 2] as const;
const PREPROCESS = 'cifar';

/** SPEC 5: a search step at most this many times a training step ... */
const STEP_TARGET = 2.3;
/** ... and the augmentation under this share of the search step. */
const AUGMENT_TARGET = 0.05;

/** One batch size for every model and both sides, the paper's for the search. */
const BATCH = 128;

/** A model's blocks: `warmup` untimed steps after the first of each call (which has no start time), then `steps` timed ones; `units` repeats of the mirrored order. */
type ModelConfig = WideResNetPreset & { steps: number; warmup: number; units: number };

const MODELS: ModelConfig[] = [
  { ...WRN_16_1, steps: 6, warmup: 1, units: 2 },
  { ...WRN_40_2, steps: 2, warmup: 1, units: 1 },
];

const modelName = (config: ModelConfig) => `WRN-${config.depth}-${config.widen}`;
const backbone = ({ depth, widen }: ModelConfig): WideResNetPreset => ({ depth, widen });

/** Iterations of the augmentation per block (after AUGMENT_WARMUP untimed ones). */
const AUGMENT_ITERATIONS = 20;
const AUGMENT_WARMUP = 3;

/** Retries stop this many seconds into the run (about 3 minutes on a quiet machine), so that a busy one cannot stretch it much past ~10 minutes. */
const RETRY_WINDOW_S = 360;

// ---- Blocks ----

type SideName = 'train' | 'search' | 'features' | 'augmentation';

/** A timed block: milliseconds per step (or per augmentation of a batch), and the other processes' load meanwhile. */
interface Block {
  ms: number[];
  /** The augmentation's parts: preprocess, and the fused op forward + backward (augmentation blocks only). */
  parts?: { preprocess: number[]; fused: number[] };
  background: number;
}

/** Enough images for one call of `config`: the first step, the warm-up and the timed steps. */
function syntheticData(config: ModelConfig, seed: number): ImageDataset {
  return syntheticDataset(BATCH * (1 + config.warmup + config.steps), seed);
}

/**
 * Times the steps of one call of train() or search(): `run` gets the onProgress callback; the
 * differences of consecutive step callbacks after the first 1 + warmup are the step times.
 */
async function stepBlock(
  config: ModelConfig,
  run: (onProgress: (p: { phase: string }) => void) => Promise<void>,
): Promise<Block> {
  const stamps: number[] = [];
  let before: CpuSnapshot | undefined;
  let after: CpuSnapshot | undefined;
  await run((progress) => {
    if (progress.phase !== 'step') return;
    if (stamps.length === config.warmup) before = cpuSnapshot(); // before the stamp: its cost falls in a warm-up step
    stamps.push(performance.now());
    if (stamps.length === 1 + config.warmup + config.steps) after = cpuSnapshot();
  });
  if (before === undefined || after === undefined)
    throw new Error(`expected ${1 + config.warmup + config.steps} steps, got ${stamps.length}`);
  const ms = stamps.slice(config.warmup + 1).map((t, k) => t - stamps[config.warmup + k]);
  return { ms, background: backgroundCores(before, after) };
}

function trainBlock(config: ModelConfig, data: ImageDataset, seed: number): Promise<Block> {
  return stepBlock(config, async (onProgress) => {
    const result = await train({
      train: data,
      model: backbone(config),
      epochs: 1,
      batchSize: BATCH,
      preprocess: PREPROCESS,
      augmentation: 'none',
      seed,
      onProgress,
    });
    result.model.dispose();
  });
}

function searchBlock(
  config: ModelConfig,
  data: ImageDataset,
  seed: number,
  policyHead: 'network' | 'features',
): Promise<Block> {
  return stepBlock(config, async (onProgress) => {
    const result = await search({
      train: data,
      classifier: backbone(config),
      policy: policyHead === 'network' ? backbone(config) : undefined,
      policyHead,
      epochs: 1,
      batchSize: BATCH,
      preprocess: PREPROCESS,
      seed,
      // Timing the steps: the settle pass after the last step is not part of them.
      settle: false,
      onProgress,
    });
    result.policy.dispose();
  });
}

/**
 * The augmentation of a search step on one batch: preprocess (flip, pad + crop, Cutout) and the
 * fused op forward + backward, each image its own random sub-policy (c one-hot, b random bits,
 * m uniform; all three requiring gradients), backward from a fixed random gradient.
 */
class Augmentation {
  readonly #space = defaultSearchSpace();
  readonly #generator: Generator;
  readonly #w;

  constructor(batch: number, seed: number) {
    const S = this.#space.subPolicies.length;
    const generator = new Generator(seed);
    this.#generator = new Generator(seed + 1);
    const w = subPolicyWorkload(batch, SIZE, S, generator);
    for (const t of [w.c, w.b, w.m]) t.requireGrad();
    this.#w = w;
    // The first call caches the search space's kernel tables (kept for the life of the space).
    this.#once();
  }

  /** One batch: milliseconds of preprocess and of the fused op forward + backward. */
  #once(): [number, number] {
    const { images, c, b, m, g } = this.#w;
    const generator = this.#generator;
    return tidy(() => {
      const t0 = performance.now();
      const pre = preprocess(images, PREPROCESS, { generator });
      const t1 = performance.now();
      applySubPolicies(pre, c, b, m, { searchSpace: this.#space, generator }).backward(g);
      const t2 = performance.now();
      for (const t of [c, b, m]) t.zeroGrad();
      return [t1 - t0, t2 - t1];
    });
  }

  block(): Block {
    for (let n = 0; n < AUGMENT_WARMUP; n++) this.#once();
    const before = cpuSnapshot();
    const parts = { preprocess: [] as number[], fused: [] as number[] };
    for (let n = 0; n < AUGMENT_ITERATIONS; n++) {
      const [p, f] = this.#once();
      parts.preprocess.push(p);
      parts.fused.push(f);
    }
    const background = backgroundCores(before);
    return { ms: parts.preprocess.map((p, k) => p + parts.fused[k]), parts, background };
  }

  dispose(): void {
    dispose(this.#w);
  }
}

// ---- Measurement ----

interface Timing {
  /** Median milliseconds per step (per batch for the augmentation). */
  ms: number;
  count: number;
  /** The most cores other processes kept busy during any of its blocks. */
  background: number;
  /** The median of each block alone, in the order they ran. */
  blockMs: number[];
  /** The augmentation's parts, medians over all its blocks. */
  parts?: { preprocess: number; fused: number };
}

interface Measured {
  config: ModelConfig;
  parameters: { classifier: number; policy: number };
  timings: Map<string, Timing>;
}

const key = (side: SideName, threads: number) => `${side}/${threads}`;

function timing(blocks: Block[]): Timing {
  const parts = blocks.every((b) => b.parts !== undefined)
    ? {
        preprocess: median(blocks.flatMap((b) => b.parts!.preprocess)),
        fused: median(blocks.flatMap((b) => b.parts!.fused)),
      }
    : undefined;
  return {
    ms: median(blocks.flatMap((b) => b.ms)),
    count: blocks.reduce((sum, b) => sum + b.ms.length, 0),
    background: Math.max(...blocks.map((b) => b.background)),
    blockMs: blocks.map((b) => median(b.ms)),
    parts,
  };
}

function parameterCounts(config: ModelConfig): Measured['parameters'] {
  const classifier = wideResNet({ ...backbone(config), classes: CLASSES, inChannels: CHANNELS });
  const policy = new PolicyNetwork({ backbone: backbone(config), inChannels: CHANNELS });
  const counts = { classifier: classifier.parameterCount, policy: policy.network.parameterCount };
  classifier.dispose();
  policy.dispose();
  return counts;
}

async function measure(config: ModelConfig, seed: number): Promise<Measured> {
  console.error(`${modelName(config)}, batch ${BATCH}:`);
  const parameters = parameterCounts(config);
  const data = syntheticData(config, seed);
  const augmentation = new Augmentation(BATCH, seed + 2);
  const live = liveTensors();
  const run: Record<SideName, () => Promise<Block>> = {
    train: () => trainBlock(config, data, seed),
    search: () => searchBlock(config, data, seed, 'network'),
    features: () => searchBlock(config, data, seed, 'features'),
    augmentation: async () => augmentation.block(),
  };
  const first = THREADS.flatMap((threads) =>
    (['train', 'search', 'features', 'augmentation'] as const).map((side) => [side, threads] as const),
  );
  const order = Array.from({ length: config.units }, () => [...first, ...[...first].reverse()]).flat();
  const blocks = new Map<string, Block[]>();
  try {
    for (const [side, threads] of order) {
      const block = await quietestAsync(
        () => {
          setThreads(threads);
          return run[side]();
        },
        RETRY_WINDOW_S,
        (disturbed) =>
          console.error(
            `    ${side}, ${threads} thread(s): ${disturbed.background.toFixed(2)} cores of other load, ` +
              `timing it again`,
          ),
      );
      blocks.set(key(side, threads), [...(blocks.get(key(side, threads)) ?? []), block]);
      console.error(
        `    ${side}, ${threads} thread(s): ${fmtMs(median(block.ms))} ms per ` +
          `${side === 'augmentation' ? 'batch' : 'step'} ` +
          `(${block.ms.length} timed, background ${block.background.toFixed(2)} cores)`,
      );
    }
    if (liveTensors() !== live) throw new Error(`tensors leaked: ${live} live before, ${liveTensors()} after`);
  } finally {
    augmentation.dispose();
  }
  return { config, parameters, timings: new Map([...blocks].map(([k, b]) => [k, timing(b)])) };
}

// ---- Report ----

/** A share as a percentage: one decimal, two below 1%. */
const fmtPercent = (share: number) => `${(100 * share).toFixed(share < 0.01 ? 2 : 1)}%`;

const threadLabel = (threads: number) => `${threads} thread${threads === 1 ? '' : 's'}`;

function tables(results: Measured[]): string {
  const get = (r: Measured, side: SideName, threads: number) => r.timings.get(key(side, threads))!;
  const mark = (t: Timing) => (t.background >= QUIET_CORES ? ' †' : '');
  const stepCell = (r: Measured, t: Timing) => `${fmtMs(t.ms)} ms (${fmtRate((BATCH * 1000) / t.ms)} img/s)${mark(t)}`;
  const row = (label: string, cell: (r: Measured) => string) => `| ${label} | ${results.map(cell).join(' | ')} |`;
  const steps = [
    '**Per step** (median milliseconds; images per second in brackets)',
    '',
    `| | ${results.map((r) => `${modelName(r.config)}, batch ${BATCH}`).join(' | ')} |`,
    `|---|${results.map(() => '---:').join('|')}|`,
    row(
      'parameters, classifier / policy network',
      (r) => `${r.parameters.classifier.toLocaleString('en-US')} / ${r.parameters.policy.toLocaleString('en-US')}`,
    ),
    ...THREADS.flatMap((threads) => [
      row(`train step, ${threadLabel(threads)}`, (r) => stepCell(r, get(r, 'train', threads))),
      row(`search step, ${threadLabel(threads)}`, (r) => stepCell(r, get(r, 'search', threads))),
      row(`search step with the feature head, ${threadLabel(threads)}`, (r) =>
        stepCell(r, get(r, 'features', threads)),
      ),
      row(`augmentation of the batch, ${threadLabel(threads)}: preprocess + fused op fwd+bwd`, (r) => {
        const t = get(r, 'augmentation', threads);
        return `${fmtMs(t.parts!.preprocess)} + ${fmtMs(t.parts!.fused)} = ${fmtMs(t.ms)} ms${mark(t)}`;
      }),
    ]),
  ];

  const ratioRows = THREADS.flatMap((threads) => {
    const stepRatio = row(`search step / train step, ${threadLabel(threads)}`, (r) => {
      const value = get(r, 'search', threads).ms / get(r, 'train', threads).ms;
      return `${fmtRatio(value)} ${value <= STEP_TARGET ? 'met' : 'MISSED'} | <= ${STEP_TARGET}x`;
    });
    const share = row(`augmentation / search step, ${threadLabel(threads)}`, (r) => {
      const value = get(r, 'augmentation', threads).ms / get(r, 'search', threads).ms;
      return `${fmtPercent(value)} ${value < AUGMENT_TARGET ? 'met' : 'MISSED'} | < ${100 * AUGMENT_TARGET}%`;
    });
    const featureRatio = row(`feature-head search step / train step, ${threadLabel(threads)}`, (r) => {
      const value = get(r, 'features', threads).ms / get(r, 'train', threads).ms;
      return `${fmtRatio(value)} | (issue 19: toward 1.3x)`;
    });
    return [stepRatio, share, featureRatio];
  });
  const ratios = [
    '**Ratios**',
    '',
    `| ratio | ${results.map((r) => `${modelName(r.config)} | target`).join(' | ')} |`,
    `|---|${results.map(() => '---:|---:').join('|')}|`,
    ...ratioRows,
  ];

  const loads = results.flatMap((r) => [...r.timings.values()].map((t) => t.background));
  const pairs = results
    .map((r) => {
      const perThreads = THREADS.map((threads) => {
        const train = get(r, 'train', threads).blockMs;
        const searched = get(r, 'search', threads).blockMs;
        const features = get(r, 'features', threads).blockMs;
        return (
          `${searched.map((s, k) => (s / train[k]).toFixed(2)).join(', ')} (${threadLabel(threads)}; feature head: ` +
          `${features.map((s, k) => (s / train[k]).toFixed(2)).join(', ')})`
        );
      });
      return `${modelName(r.config)}: ${perThreads.join('; ')}`;
    })
    .join('. ');
  const counts = results
    .map((r) => {
      const { steps: n, warmup, units } = r.config;
      return (
        `${modelName(r.config)} ${get(r, 'train', 1).count} (${2 * units} blocks of ${n}, each call's first ` +
        `${1 + warmup} steps untimed)`
      );
    })
    .join(', ');
  return [
    ...steps,
    '',
    ...ratios,
    '',
    backgroundNote(loads, 'block', 'figures'),
    '',
    `Search step / train step in each pair of neighbouring blocks, in the order they ran: ${pairs}. ` +
      'Their spread is the noise of the ratios on this machine.',
    '',
    `Timed steps per side and thread count: ${counts}; augmentation: ${AUGMENT_ITERATIONS} batches per block after ` +
      `${AUGMENT_WARMUP} untimed.`,
  ].join('\n');
}

function section(results: Measured[], command: string): string {
  return [
    SECTION,
    '',
    `${measuredOn()}.`,
    '',
    `Command: \`${command}\``,
    '',
    `Workload: a fixed synthetic dataset of random uint8 images (${CHANNELS}x${SIZE}x${SIZE}) with random labels in ` +
      `${CLASSES} classes, one epoch per call, preprocess '${PREPROCESS}' (flip, pad 4 + crop, Cutout 16), the ` +
      `same seed on both sides. ` +
      "Train step: `train({ model, augmentation: 'none' })`: preprocess, forward, cross-entropy, backward, SGD. " +
      'Search step: `search({ classifier, policy })` with the same backbone for both networks (the paper: WRN-40-2): ' +
      'flip and crop, the policy network samples a sub-policy per image, the fused op applies it, Cutout, the ' +
      'classifier ' +
      'forward, cross-entropy, backward through the classifier, the fused op and the policy network, SGD and ' +
      'Adam. The ' +
      "policy network does about the classifier's work again, so about 2x is the floor. A step's time is the " +
      'difference of ' +
      'consecutive `onProgress` step callbacks (it includes making the batch); the first steps of each call ' +
      'are warm-up. ' +
      `Augmentation: on a batch of the same size, \`preprocess(images, '${PREPROCESS}')\` and \`applySubPolicies\` ` +
      `forward + ` +
      'backward (each image its own random sub-policy of the default search space; c, b, m requiring gradients), ' +
      'as a share of the median search step. Threads are LibTorch intra-op threads (`setThreads`). The ' +
      'blocks, one call ' +
      'each, take turns in a mirrored order, repeated (train 1, search 1, augmentation 1, train 2, search 2, ' +
      'augmentation 2 ' +
      "threads, then the same backwards), so that a drift in the machine's speed touches both sides alike. " +
      'Figures are ' +
      "medians over all the blocks of a side. Feature head: `search({ classifier, policyHead: 'features' })`, the " +
      "policy a Linear-ReLU-Linear head (128 hidden units) on the classifier's pooled features of the flipped and " +
      'cropped image, computed in an extra forward pass without gradients; no policy backbone, so about 4/3 of a ' +
      'train step is its floor. Searches time their steps without the settle pass that follows them.',
    '',
    tables(results),
    '',
  ].join('\n');
}

// Every model in turn, each with its train, search and augmentation blocks in turns.
await runBench('search', SECTION, async (seed, command, quick) => {
  const results: Measured[] = [];
  // --quick: WRN-16-1 alone, one round of blocks.
  for (const config of quick ? [{ ...MODELS[0], units: 1 }] : MODELS) results.push(await measure(config, seed));
  return section(results, command);
});
