// The report's picture: a grid of images the policy augments, a few per class, each shown as it is
// and as the sub-policy drawn for it leaves it, labelled with that sub-policy (its ops, whether
// each was applied, and its magnitude). People would rather look than read a table of pi. The
// draws are the frozen policy's (a hard sample at temperature 1, seeded), so the grid shows what
// training with the policy does to those images.
import { applySubPolicies } from '../augment/fused.js';
import { subset, type ImageDataset } from '../data/dataset.js';
import { batchesAsync } from '../data/batches.js';
import { Generator } from '../engine/random.js';
import { dispose, noGrad, tidy, type Tensor } from '../engine/tensor.js';
import { positiveInteger } from '../util/checks.js';
import { writeFileAtomically } from '../util/files.js';
import type { LoadedPolicy } from './frozen-policy.js';
import type { PolicyNetwork } from './policy-network.js';
import { resolvePolicy } from './report.js';
import { samplePolicy } from './sampling.js';

export interface AugmentedExamplesOptions {
  policy: PolicyNetwork | LoadedPolicy;
  data: ImageDataset;
  /** Images per class (default 4), the first of each class in the data's order. */
  perClass?: number;
  /** Classes shown, the first ones (default 20). */
  classes?: number;
  /** Seeds the draws (default 0). */
  seed?: number;
}

/**
 * One op of a drawn sub-policy: whether its bit applied it, its magnitude m in [0, 1] and the op's
 * value for that m, lo + m (hi - lo) of its range (both null for an op without a magnitude).
 */
export interface DrawnOp {
  name: string;
  applied: boolean;
  magnitude: number | null;
  value: number | null;
}

/** An image of the grid: its class and the sub-policy drawn for it. */
export interface AugmentedExample {
  label: number;
  subPolicy: string;
  ops: DrawnOp[];
}

interface Drawn {
  examples: AugmentedExample[];
  /** [N, C, H, W] uint8 pixel values, as they are and augmented. */
  original: Uint8Array;
  augmented: Uint8Array;
  shape: [number, number, number];
}

/** The first `perClass` images of each of the first `classes` classes, in label order. */
function pick(data: ImageDataset, perClass: number, classes: number): number[] {
  const picked: number[][] = Array.from({ length: Math.min(classes, data.classes.length) }, () => []);
  for (let i = 0; i < data.count; i++) {
    const row = picked[data.labels[i]];
    if (row !== undefined && row.length < perClass) row.push(i);
  }
  return picked.flat();
}

const toPixels = (images: Tensor) =>
  tidy(() => images.clamp(0, 1).mul(255).round().toDtype('uint8').data() as Uint8Array);

/** Draws a sub-policy for each picked image and applies it. */
async function draw(options: AugmentedExamplesOptions): Promise<Drawn> {
  const where = 'augmentedExamples';
  const { data, seed = 0 } = options;
  const perClass = positiveInteger(options.perClass ?? 4, 'perClass', where);
  const classes = positiveInteger(options.classes ?? 20, 'classes', where);
  const { network } = resolvePolicy(options.policy);
  if (network === undefined) throw new TypeError(`${where}: policy must be a PolicyNetwork or a loaded policy`);
  const space = network.searchSpace;
  const indices = pick(data, perClass, classes);
  if (indices.length === 0) throw new RangeError(`${where}: ${data.name} has no images`);
  const chosen = subset(data, indices);
  const device = network.network.device;
  const [batch] = await (async () => {
    const all = [];
    for await (const b of batchesAsync(chosen, { batchSize: indices.length, shuffle: false, device })) all.push(b);
    return all;
  })();
  const generator = new Generator(seed, device);
  const wasTraining = network.network.training;
  network.eval();
  try {
    return noGrad(() =>
      tidy(() => {
        const sample = samplePolicy(network.forward(batch.images), { tau: 1, lambda: 1, generator });
        const augmented = applySubPolicies(batch.images, sample.c, sample.b, sample.m, {
          searchSpace: space,
          generator,
        });
        const chosenSubPolicy = Array.from(sample.c.argmax(1).data() as BigInt64Array, Number);
        const bits = sample.b.toArray() as number[][][];
        const magnitudes = sample.m.toArray() as number[][][];
        const examples = chosenSubPolicy.map((s, k) => {
          const pair = space.subPolicies[s];
          return {
            label: chosen.labels[k],
            subPolicy: pair.map((o) => space.ops[o].name).join('+'),
            ops: pair.map((o, slot) => {
              const { name, range } = space.ops[o];
              const m = magnitudes[k][s][slot];
              return {
                name,
                applied: bits[k][s][slot] > 0.5,
                magnitude: range === null ? null : m,
                value: range === null ? null : range[0] + m * (range[1] - range[0]),
              };
            }),
          };
        });
        return {
          examples,
          original: toPixels(batch.images),
          augmented: toPixels(augmented),
          shape: [...data.shape] as [number, number, number],
        };
      }),
    );
  } finally {
    if (wasTraining) network.train(true);
    dispose(batch);
  }
}

const escape = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** "Rotate 0.62 (7.2)": applied with m = 0.62, a 7.2 degree turn; "Invert"; "Rotate (off)": drawn, not applied. */
function opText(op: DrawnOp): string {
  if (!op.applied) return `${op.name} (off)`;
  if (op.magnitude === null || op.value === null) return op.name;
  return `${op.name} ${op.magnitude.toFixed(2)} (${Number(op.value.toPrecision(3))})`;
}

/**
 * Writes the grid as a PNG at `file` (atomically) and returns what each image got: per class a
 * row of image pairs (as it is | augmented), each labelled with its sub-policy.
 */
export async function writeAugmentedExamples(
  file: string,
  options: AugmentedExamplesOptions,
): Promise<AugmentedExample[]> {
  const { examples, original, augmented, shape } = await draw(options);
  const [channels, height, width] = shape;
  const { data } = options;
  // Small images are enlarged (nearest neighbour) to about 96 pixels, large ones shown as they are.
  const scale = Math.max(1, Math.round(96 / Math.max(height, width)));
  const [h, w] = [height * scale, width * scale];
  const labelWidth = 110;
  const pairWidth = Math.max(2 * w + 4, 150);
  const gap = 14;
  const lineHeight = 13;
  const cellHeight = h + 2 * lineHeight + 10;
  const header = 60;
  const rows = [...new Set(examples.map((e) => e.label))];
  const perRow = Math.max(...rows.map((label) => examples.filter((e) => e.label === label).length));
  // Wide enough for the heading's lines.
  const canvasWidth = Math.max(540, labelWidth + perRow * (pairWidth + gap));
  const canvasHeight = header + rows.length * (cellHeight + 8);

  const { default: sharp } = await import('sharp');
  const bytes = channels * height * width;
  const tile = async (pixels: Uint8Array, k: number) => {
    // Channel-major [C, H, W] to interleaved [H, W, C], as sharp takes raw pixels.
    const interleaved = Buffer.alloc(bytes);
    const plane = height * width;
    for (let c = 0; c < channels; c++)
      for (let p = 0; p < plane; p++) interleaved[p * channels + c] = pixels[k * bytes + c * plane + p];
    return sharp(interleaved, { raw: { width, height, channels: channels as 1 | 3 } })
      .resize(w, h, { kernel: 'nearest' })
      .toColourspace('srgb')
      .png()
      .toBuffer();
  };
  const layers: { input: Buffer; left: number; top: number }[] = [];
  const text: string[] = [
    `<text x="8" y="18" font-size="14" font-weight="bold">Images as they are and as the policy augments them</text>`,
    `<text x="8" y="35" font-size="11" fill="#444">Each pair: a test image, then the same image under the ` +
      `sub-policy drawn for it: its two ops,</text>`,
    `<text x="8" y="49" font-size="11" fill="#444">each with its magnitude m in [0, 1] and the op's value for it ` +
      `in brackets (gray, off: not applied).</text>`,
  ];
  for (const [row, label] of rows.entries()) {
    const top = header + row * (cellHeight + 8);
    text.push(
      `<text x="8" y="${top + h / 2 + 4}" font-size="12" font-weight="bold">${escape(data.classes[label])}</text>`,
    );
    const inRow = examples.map((e, k) => ({ e, k })).filter(({ e }) => e.label === label);
    for (const [column, { e, k }] of inRow.entries()) {
      const left = labelWidth + column * (pairWidth + gap);
      layers.push({ input: await tile(original, k), left, top });
      layers.push({ input: await tile(augmented, k), left: left + w + 4, top });
      e.ops.forEach((op, line) => {
        const colour = op.applied ? '#000' : '#999';
        text.push(
          `<text x="${left}" y="${top + h + 12 + line * lineHeight}" font-size="11" fill="${colour}">` +
            `${escape(opText(op))}</text>`,
        );
      });
    }
  }
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${canvasWidth}" height="${canvasHeight}" ` +
    `font-family="DejaVu Sans, Helvetica, Arial, sans-serif">${text.join('')}</svg>`;
  const png = await sharp({
    create: { width: canvasWidth, height: canvasHeight, channels: 3, background: '#ffffff' },
  })
    .composite([...layers, { input: Buffer.from(svg), left: 0, top: 0 }])
    .png()
    .toBuffer();
  await writeFileAtomically(file, (handle) => handle.writeFile(png));
  return examples;
}
