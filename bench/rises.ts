// What objective 'invariance' sees: the rise of a classifier's loss, class by class, when each op
// is applied at a uniform magnitude. The classifier trains like the 'none' baseline of
// bench/policies.ts (the same 500 training images, 40 epochs, no augmentation), as the search's
// classifier does under that objective; the rises are measured on those training images. On the
// class-dependent benchmark, an op matches a class's nuisance where its rise there is low and
// high elsewhere: the signal a conditional policy has to learn.
//
//   npx tsc -p . && node dist/bench/rises.js [--write] [--seed N]
import { applyOp } from '../lib/augment/fused.js';
import { OPS } from '../lib/augment/search-space.js';
import { batches, datasets, stratifiedSubset, type ImageDataset } from '../lib/data/index.js';
import { setThreads } from '../lib/engine/backend.js';
import { WRN_16_1, type Module } from '../lib/engine/models.js';
import { Generator, rand } from '../lib/engine/random.js';
import { noGrad, tidy, type Tensor } from '../lib/engine/tensor.js';
import { train } from '../lib/run/train.js';
import { classAccuracies, log, measuredOn, runBench } from './common.js';
import { FASHION_NAMES, INVERTED, REGIME, ROTATED, withNuisance } from './nuisance.js';

const SCRIPT = 'rises';
const SECTION = '## Loss rise by class and op (CPU)';
const { images: IMAGES, epochs: EPOCHS, subsetSeed: DATA_SEED } = REGIME;
/** Magnitude draws per image and op. */
const DRAWS = 3;
const THREADS = 2;

/** Each image's loss under `model` (eval mode) [N], as numbers. */
function losses(model: Module, images: Tensor, labels: Tensor): Float32Array {
  return noGrad(() =>
    tidy(
      () => model.forward(images).logSoftmax(1).gather(1, labels.unsqueeze(1)).squeeze(1).neg().data() as Float32Array,
    ),
  );
}

/**
 * rise[op][class]: the mean over the class's training images and DRAWS magnitudes of
 * L(op(x)) - L(x); and the classifier's accuracy on each class of the test images.
 */
async function rises(
  data: ImageDataset,
  test: ImageDataset,
  seed: number,
): Promise<{ rise: number[][]; testAccuracy: number[] }> {
  const trained = await train({
    train: data,
    model: WRN_16_1,
    epochs: EPOCHS,
    batchSize: 128,
    preprocess: { flip: 0, pad: 0, cutout: 0 },
    augmentation: 'none',
    seed,
    onProgress: (p) => {
      if (p.phase === 'epoch' && p.epoch % 10 === 0) log(`${data.name} epoch ${p.epoch}: loss ${p.loss.toFixed(3)}`);
    },
  });
  const model = trained.model;
  const classes = data.classes.length;
  const sum = OPS.map(() => new Float64Array(classes));
  const count = new Float64Array(classes);
  const generator = new Generator(seed + 1);
  let testAccuracy: number[];
  try {
    testAccuracy = await classAccuracies(model, test);
    model.eval();
    for (const batch of batches(data, { batchSize: 250, shuffle: false })) {
      tidy(() => {
        const x = batch.images;
        const labels = Array.from(batch.labels.data() as BigInt64Array, Number);
        const clean = losses(model, x, batch.labels);
        labels.forEach((y) => (count[y] += 1));
        OPS.forEach((op, o) => {
          for (let d = 0; d < DRAWS; d++) {
            const m = rand([labels.length], { generator });
            const augmented = losses(model, applyOp(x, op.name, m, { generator }), batch.labels);
            labels.forEach((y, i) => (sum[o][y] += (augmented[i] - clean[i]) / DRAWS));
          }
        });
      });
      batch.images.dispose();
      batch.labels.dispose();
    }
  } finally {
    model.dispose();
  }
  return { rise: sum.map((row) => Array.from(row, (v, y) => v / count[y])), testAccuracy };
}

const SHORT = ['T-shirt', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Boot'];

/** Spearman's rank correlation of two equally long lists (no ties expected). */
function spearman(a: number[], b: number[]): number {
  const ranks = (v: number[]) => {
    const order = v.map((x, i) => [x, i]).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(v.length);
    order.forEach(([, i], k) => (r[i] = k));
    return r;
  };
  const [ra, rb] = [ranks(a), ranks(b)];
  const n = a.length;
  const d2 = ra.reduce((s, r, i) => s + (r - rb[i]) ** 2, 0);
  return 1 - (6 * d2) / (n * (n * n - 1));
}

const meanOverOps = (rise: number[][]) => SHORT.map((_, k) => rise.reduce((s, row) => s + row[k], 0) / rise.length);

/** The table of rises by op and class; `marked` labels the classes the nuisance benchmark changes. */
function table(rise: number[][], testAccuracy: number[], marked: boolean): string[] {
  const mark = (k: number) => (!marked ? '' : ROTATED.includes(k) ? ' (R)' : INVERTED.includes(k) ? ' (I)' : '');
  const header = SHORT.map((name, k) => `${name}${mark(k)}`);
  const rows = OPS.map((op, o) => `| ${op.name} | ${rise[o].map((v) => v.toFixed(2)).join(' | ')} |`);
  const mean = meanOverOps(rise);
  return [
    `| op | ${header.join(' | ')} |`,
    `|---|${SHORT.map(() => '---:').join('|')}|`,
    ...rows,
    `| **mean over ops** | ${mean.map((v) => `**${v.toFixed(2)}**`).join(' | ')} |`,
    `| test accuracy | ${testAccuracy.map((v) => `${(100 * v).toFixed(1)}%`).join(' | ')} |`,
  ];
}

await runBench(SCRIPT, SECTION, async (seed, command) => {
  setThreads(THREADS);
  const [full, test] = await Promise.all([
    datasets.fashionMnist({ split: 'train' }),
    datasets.fashionMnist({ split: 'test' }),
  ]);
  const sets: [string, ImageDataset, ImageDataset][] = [
    ['nuisance', stratifiedSubset(withNuisance(full, 'train'), IMAGES, DATA_SEED), withNuisance(test, 'test')],
    ['plain', stratifiedSubset(full, IMAGES, DATA_SEED), test],
  ];
  const text = [
    SECTION,
    '',
    `${measuredOn()}; ${THREADS} LibTorch threads.`,
    '',
    `Command: \`${command}\`.`,
    '',
    `A WRN-16-1 trained on the ${IMAGES} training images of bench/policies.ts (stratified, seed ${DATA_SEED}) for ` +
      `${EPOCHS} epochs without augmentation (seed ${seed}), as objective 'invariance' trains its classifier; then, ` +
      `on the same images in eval mode, the mean rise of its loss (nats) when one op is applied at a magnitude ` +
      `uniform in [0, 1] (${DRAWS} draws per image), by class. (R): a class the nuisance benchmark rotates; (I): one ` +
      `it inverts with probability 1/2. Ops that barely change a gray image (Color, AutoContrast, Posterize) cost ` +
      `nothing anywhere.`,
    '',
  ];
  for (const [name, data, testSet] of sets) {
    const { rise, testAccuracy } = await rises(data, testSet, seed);
    log(`${name}: done`);
    const rho = spearman(
      meanOverOps(rise),
      testAccuracy.map((a) => 1 - a),
    );
    text.push(
      `**${name}** (last row: the classifier's accuracy on each class of the benchmark's 10,000 test images)`,
      '',
    );
    text.push(...table(rise, testAccuracy, name === 'nuisance'), '');
    text.push(
      `Spearman's rank correlation between a class's mean rise over the ops and its test error: ${rho.toFixed(2)}.`,
      '',
    );
    if (name === 'nuisance') {
      const of = (op: string, group: number[]) => {
        const o = OPS.findIndex((spec) => spec.name === op);
        return group.reduce((s, k) => s + rise[o][k], 0) / group.length;
      };
      const others = (group: number[]) => FASHION_NAMES.map((_, k) => k).filter((k) => !group.includes(k));
      text.push(
        `On the inverted classes Invert raises the loss by ${of('Invert', INVERTED).toFixed(2)} nats, on the others ` +
          `by ${of('Invert', others(INVERTED)).toFixed(2)}; Rotate raises it by ${of('Rotate', ROTATED).toFixed(2)} on ` +
          `the rotated classes and ${of('Rotate', others(ROTATED)).toFixed(2)} on the others (Shirt: ` +
          `${of('Rotate', [6]).toFixed(2)}).`,
        '',
      );
    }
  }
  return text.join('\n');
});
