// Every op of the fused augmentation engine against independent implementations: PIL and
// torchvision outputs stored in test/fixtures/augment/ by scripts/make-augment-fixtures.py (see
// its header for the cases and conventions). Each input image goes through applyOp as float32
// (uint8 / 255, [1, C, H, W]); the result is compared with the reference within the tolerance
// the table below gives per op and reference, and each assertion message reports the largest
// error seen (in 8-bit levels, 1 level = 1/255). Cutout has no independent equivalent.
import test from 'ava';
import { readFileSync } from 'node:fs';

import { applyOp, findOp, tensor, tidy } from '../lib/index.js';
import { geometricSource } from './helpers/augment-reference.js';

// ---- fixtures ----

interface Stored {
  file: string;
  offset: number;
  dtype: 'uint8' | 'float32';
  shape: number[];
}
interface FixtureImage extends Stored {
  name: string;
}
interface FixtureCase extends Stored {
  op: string;
  m: number;
  v: number;
  image: string;
  reference: 'PIL' | 'torchvision';
}
interface Index {
  fill: number;
  images: FixtureImage[];
  cases: FixtureCase[];
}

// Compiled to dist/test/: the fixtures stay in the source tree.
const FIXTURES = new URL('../../test/fixtures/augment/', import.meta.url);
const index = JSON.parse(readFileSync(new URL('fixtures.json', FIXTURES), 'utf8')) as Index;
const files = new Map<string, Buffer>();

/** A stored array as values in [0, 1] (uint8 levels / 255, float32 as they are). */
function load(stored: Stored): Float64Array {
  let buffer = files.get(stored.file);
  if (buffer === undefined) {
    buffer = readFileSync(new URL(stored.file, FIXTURES));
    files.set(stored.file, buffer);
  }
  const count = stored.shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(count);
  if (stored.dtype === 'uint8') {
    for (let k = 0; k < count; k++) out[k] = buffer[stored.offset + k] / 255;
  } else {
    for (let k = 0; k < count; k++) out[k] = buffer.readFloatLE(4 * (stored.offset + k));
  }
  return out;
}

const images = new Map(index.images.map((image) => [image.name, image]));

/** The engine's output for a case: applyOp on the float32 input [1, C, H, W]. */
function run(c: FixtureCase): Float32Array {
  const image = images.get(c.image)!;
  const input = Float32Array.from(load(image));
  return tidy(() => applyOp(tensor(input, [1, ...image.shape]), c.op, c.m).data() as Float32Array);
}

// ---- tolerances ----

const LEVEL = 1 / 255;
const GEOMETRIC = new Set(['ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate']);

/** engine - reference must lie in [-below, above] (in [0, 1] units; 1 level = 1/255). */
interface Bound {
  below: number;
  above: number;
}
const within = (limit: number): Bound => ({ below: limit, above: limit });
/** PIL truncates its 8-bit result after a `rounded` error either way: it may sit below us. */
const truncated = (rounded: number): Bound => ({ below: rounded + 1e-5, above: LEVEL + rounded + 1e-5 });

/**
 * The tolerance per op and reference, and why.
 * PIL works in 8 bits: it truncates (not rounds) the results of Image.blend (all of
 * ImageEnhance) and of bilinear sampling, so it sits up to 1 level below the exact value (and
 * never above it); ImageEnhance also rounds its degenerate image first (Contrast: the mean of
 * the 8-bit gray, itself rounded, to an integer: <= 1 level; Color: the 8-bit gray and
 * Sharpness: the 8-bit SMOOTH filter, <= 0.5 level), an error the blend scales by
 * |1 - v| <= 0.9. torchvision on float tensors is float math like ours, except that its
 * rgb_to_grayscale weighs red 0.2989 where ITU-R 601 (ops.h, PIL) says 0.299: a difference of
 * at most 1e-4 * |1 - v| in Color and Contrast. Geometric ops compare interior pixels only.
 */
const TOLERANCE: Record<string, { PIL: Bound; torchvision?: Bound; why: string }> = {
  ShearX: { PIL: truncated(0), why: 'PIL truncates the bilinear sample' },
  ShearY: { PIL: truncated(0), why: 'PIL truncates the bilinear sample' },
  TranslateX: { PIL: within(1e-5), why: 'whole-pixel shifts: exact copies' },
  TranslateY: { PIL: within(1e-5), why: 'whole-pixel shifts: exact copies' },
  Rotate: { PIL: truncated(0), why: 'PIL truncates the bilinear sample' },
  AutoContrast: {
    PIL: within(LEVEL + 1e-6),
    torchvision: within(LEVEL + 1e-6),
    why: 'a truncated level * scale + offset: float vs double rounding may move it by 1 level',
  },
  Invert: { PIL: within(1e-6), torchvision: within(1e-6), why: 'exact' },
  Equalize: { PIL: within(1e-6), torchvision: within(1e-6), why: 'exact (the same lookup table)' },
  Solarize: { PIL: within(1e-6), torchvision: within(1e-6), why: 'exact' },
  Posterize: { PIL: within(1e-6), torchvision: within(1e-6), why: 'exact' },
  Contrast: {
    PIL: truncated(0.9 * LEVEL),
    torchvision: within(1.1e-4),
    why: 'PIL: mean rounded, blend truncated; torchvision: red 0.2989',
  },
  Color: {
    PIL: truncated(0.5 * LEVEL),
    torchvision: within(1.1e-4),
    why: 'PIL: gray rounded, blend truncated; torchvision: red 0.2989',
  },
  Brightness: { PIL: truncated(0), torchvision: within(1e-5), why: 'PIL: blend truncated' },
  Sharpness: { PIL: truncated(0.5 * LEVEL), torchvision: within(1e-5), why: 'PIL: SMOOTH rounded, blend truncated' },
};

// ---- geometric masks ----

const f32 = Math.fround;

/** v as applyOp computes it (float32 tensor arithmetic). */
function kernelValue(op: string, m: number): number {
  const [lo, hi] = findOp(op).range ?? [0, 0];
  return f32(f32(f32(m) * f32(hi - lo)) + f32(lo));
}

// Source points within EPS of the image count as inside: a neighbour that far out has weight
// <= EPS (the float32 v of the translations is ~1e-7 off whole pixels).
const EPS = 1e-3;

function geometricMask(op: string, v: number, height: number, width: number): ('inside' | 'outside' | 'edge')[] {
  const mask: ('inside' | 'outside' | 'edge')[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [sx, sy] = geometricSource(op, v, { data: new Float32Array(0), channels: 1, height, width }, x, y);
      if (sx >= -EPS && sx <= width - 1 + EPS && sy >= -EPS && sy <= height - 1 + EPS) mask.push('inside');
      else if (sx < -1 - EPS || sx > width + EPS || sy < -1 - EPS || sy > height + EPS) mask.push('outside');
      else mask.push('edge');
    }
  }
  return mask;
}

// ---- the tests ----

/** An error in 8-bit levels (1 level = 1/255), small ones in exponent notation. */
const levels = (error: number) => {
  const l = error * 255;
  return `${l !== 0 && Math.abs(l) < 0.01 ? l.toExponential(1) : l.toFixed(4)} levels`;
};
const ops = [...new Set(index.cases.map((c) => c.op))];

test('the fixtures cover every op but Cutout, each against its references, on every image', (t) => {
  const expected = [
    'ShearX',
    'ShearY',
    'TranslateX',
    'TranslateY',
    'Rotate',
    'AutoContrast',
    'Invert',
    'Equalize',
    'Solarize',
    'Posterize',
    'Contrast',
    'Color',
    'Brightness',
    'Sharpness',
  ];
  t.deepEqual(ops, expected);
  for (const op of expected) {
    const tolerance = TOLERANCE[op];
    for (const reference of ['PIL', 'torchvision'] as const) {
      const cases = index.cases.filter((c) => c.op === op && c.reference === reference);
      if (reference === 'torchvision' && tolerance.torchvision === undefined) {
        t.is(cases.length, 0, `${op}: no tolerance for torchvision`);
        continue;
      }
      t.deepEqual(new Set(cases.map((c) => c.image)), new Set(images.keys()), `${op} vs ${reference}: every image`);
    }
  }
});

for (const op of ops) {
  const references = [...new Set(index.cases.filter((c) => c.op === op).map((c) => c.reference))];
  test(`${op} matches ${references.join(' and ')}`, (t) => {
    const tolerance = TOLERANCE[op];
    const seen: Record<string, { low: number; high: number; compared: number }> = {};
    for (const c of index.cases.filter((k) => k.op === op)) {
      const bound = tolerance[c.reference]!;
      const [, height, width] = c.shape;
      t.deepEqual(c.shape, images.get(c.image)!.shape, `${op} ${c.image}: shapes`);
      const got = run(c);
      const want = load(c);
      const what = `${op} m=${c.m} (v=${c.v}) on ${c.image} vs ${c.reference}`;
      // Which pixels to compare: all, or for geometric ops the interior ones.
      let compare = (_pixel: number) => true;
      let compared = 1;
      if (GEOMETRIC.has(op)) {
        const mask = geometricMask(op, kernelValue(op, c.m), height, width);
        compare = (pixel) => mask[pixel] === 'inside';
        compared = mask.filter((k) => k === 'inside').length / (height * width);
        t.true(compared >= 0.5, `${what}: only ${(100 * compared).toFixed(1)}% of the pixels are compared`);
        let fillError = 0;
        for (let k = 0; k < got.length; k++) {
          // Beyond every neighbour: ops.h fills with 0.5, PIL with the 8-bit gray (128).
          if (mask[k % (height * width)] === 'outside') {
            fillError = Math.max(fillError, Math.abs(got[k] - index.fill / 255), Math.abs(got[k] - 0.5));
          }
        }
        t.true(fillError <= 0.5 / 255 + 1e-6, `${what}: the fill differs by ${levels(fillError)}`);
      }
      let low = 0;
      let high = 0;
      let lowAt = -1;
      let highAt = -1;
      for (let k = 0; k < got.length; k++) {
        if (!compare(k % (height * width))) continue;
        const d = got[k] - want[k];
        if (d < low) [low, lowAt] = [d, k];
        if (d > high) [high, highAt] = [d, k];
      }
      const at = (k: number) =>
        k < 0
          ? ''
          : ` at (c=${Math.floor(k / (height * width))}, y=${Math.floor(k / width) % height}, x=${k % width}): ` +
            `engine ${(got[k] * 255).toFixed(3)}, reference ${(want[k] * 255).toFixed(3)} levels`;
      t.true(
        -low <= bound.below && high <= bound.above,
        `${what}: engine - reference in [${levels(low)}, ${levels(high)}], allowed [${levels(-bound.below)}, ` +
          `${levels(bound.above)}]` +
          `${-low > bound.below ? at(lowAt) : at(highAt)} [${tolerance.why}]`,
      );
      const s = (seen[c.reference] ??= { low: 0, high: 0, compared: 1 });
      [s.low, s.high, s.compared] = [Math.min(s.low, low), Math.max(s.high, high), Math.min(s.compared, compared)];
    }
    for (const [reference, s] of Object.entries(seen)) {
      const bound = tolerance[reference as 'PIL' | 'torchvision']!;
      t.log(
        `${op} vs ${reference}: max error ${levels(Math.max(-s.low, s.high))}; engine - reference in ` +
          `[${levels(s.low)}, ${levels(s.high)}], ` +
          `allowed [${levels(-bound.below)}, ${levels(bound.above)}]` +
          (GEOMETRIC.has(op) ? `; >= ${(100 * s.compared).toFixed(1)}% of pixels compared` : ''),
      );
    }
  });
}
