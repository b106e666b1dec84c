// The augmentation baselines (lib/baselines/): AutoAugment, RandAugment, TrivialAugmentWide,
// Cutout and the registry. The draws are checked against the published tables and torchvision's
// magnitude mappings (literal values printed by torchvision 0.14), empirically over many images;
// the outputs against the draws, seeds, dtypes and bad input.
import test from 'ava';

import * as dna from '../lib/index.js';
import { preprocess } from '../lib/augment/preprocess.js';
import { BASELINES, baselineAugmenter } from '../lib/baselines/index.js';
import { AUTOAUGMENT_POLICIES, autoAugment, autoAugmentDraws, autoAugmentValue } from '../lib/baselines/autoaugment.js';
import { RANDAUGMENT_OPS, randAugment, randAugmentDraws, randAugmentValue } from '../lib/baselines/randaugment.js';
import { applyAugmentationDraws, type AugmentationDraws, type BaselineOpName } from '../lib/baselines/draws.js';
import { cutout } from '../lib/baselines/cutout.js';
import { trivialAugment, trivialAugmentDraws, trivialAugmentValue } from '../lib/baselines/trivialaugment.js';
import { OPS, findOp } from '../lib/augment/search-space.js';

const { Generator, rand, tidy } = dna;

const nums = (x: dna.Tensor) => Array.from(x.data() as ArrayLike<number | bigint>, Number);
const gen = (seed: number) => new Generator(seed);

// Images as the datasets give them: 8-bit levels scaled to [0, 1].
function randomImages(shape: number[], seed: number): dna.Tensor {
  return tidy(() =>
    rand(shape, { generator: gen(seed) })
      .mul(255)
      .round()
      .div(255),
  );
}

interface Slots {
  kinds: number[];
  values: number[];
  bits: number[];
  choice: number[];
  width: number;
}

function read(draws: AugmentationDraws): Slots {
  const slots = {
    kinds: nums(draws.kinds),
    values: nums(draws.values),
    bits: nums(draws.bits),
    choice: nums(draws.choice),
    width: draws.kinds.shape[1],
  };
  dna.dispose(draws);
  return slots;
}

const f32 = Math.fround;
const kindOf = (op: BaselineOpName) => (op === 'Identity' ? -1 : findOp(op).kind);
// A drawn float32 value is base + magnitude, or base - magnitude for a signed op, in float32.
const matches = (v: number, { base, magnitude, signed }: { base: number; magnitude: number; signed: boolean }) =>
  v === f32(f32(base) + f32(magnitude)) || (signed && v === f32(f32(base) - f32(magnitude)));

// ---- The tables and the magnitude mappings (against torchvision 0.14's printed tables) ----

test(
  'the AutoAugment policies have 25 sub-policies of two ops, all ops in our engine, probabilities and ' +
    'levels in range',
  (t) => {
    for (const [name, policy] of Object.entries(AUTOAUGMENT_POLICIES)) {
      t.is(policy.length, 25, name);
      for (const pair of policy) {
        t.is(pair.length, 2);
        for (const [op, p, level] of pair) {
          t.true(
            OPS.some((o) => o.name === op),
            `${name}: ${op} is one of our 15 ops`,
          );
          t.true(p >= 0 && p <= 1);
          const magnitudeFree = ['AutoContrast', 'Equalize', 'Invert'].includes(op);
          t.is(level === null, magnitudeFree, `${name}: ${op} level`);
          if (level !== null) t.true(Number.isInteger(level) && level >= 0 && level <= 9);
        }
      }
    }
    // Spot checks against the paper's CIFAR-10 appendix table (= torchvision AutoAugmentPolicy.CIFAR10).
    const cifar = AUTOAUGMENT_POLICIES.cifar10;
    t.deepEqual(cifar[0], [
      ['Invert', 0.1, null],
      ['Contrast', 0.2, 6],
    ]);
    t.deepEqual(cifar[5], [
      ['ShearY', 0.2, 7],
      ['Posterize', 0.3, 7],
    ]);
    t.deepEqual(cifar[14], [
      ['Solarize', 0.5, 2],
      ['Invert', 0.0, null],
    ]);
    t.deepEqual(cifar[24], [
      ['TranslateY', 0.7, 9],
      ['AutoContrast', 0.9, null],
    ]);
    t.true(Object.isFrozen(cifar) && Object.isFrozen(cifar[0]) && Object.isFrozen(cifar[0][0]));
  },
);

test('AutoAugment levels map to values as torchvision does for 32x32 images', (t) => {
  const levels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  // torch.linspace(255.0, 0.0, 10)
  const solarize = [
    255.0, 226.6666717529297, 198.3333282470703, 170.0, 141.66665649414062, 113.33333587646484, 85.0, 56.66666793823242,
    28.33333396911621, 0.0,
  ];
  // The same thresholds up to float32 rounding, and the same inverted 8-bit levels (>= ceil).
  t.true(levels.every((l) => Math.abs(autoAugmentValue('Solarize', l).base - solarize[l]) < 2e-5));
  t.deepEqual(
    levels.map((l) => Math.ceil(f32(autoAugmentValue('Solarize', l).base))),
    solarize.map(Math.ceil),
  );
  // 8 - (arange(10) / (9 / 4)).round()
  t.deepEqual(
    levels.map((l) => autoAugmentValue('Posterize', l).base),
    [8, 8, 7, 7, 6, 6, 5, 5, 4, 4],
  );
  // int(linspace(0, 150 / 331 * 32, 10)) pixels, as a fraction of the width
  t.deepEqual(
    levels.map((l) => autoAugmentValue('TranslateX', l).magnitude * 32),
    [0, 1, 3, 4, 6, 8, 9, 11, 12, 14],
  );
  t.deepEqual(
    levels.map((l) => autoAugmentValue('TranslateY', l, 64, 32).magnitude * 64),
    [0, 3, 6, 9, 12, 16, 19, 22, 25, 29],
  );
  for (const l of levels) {
    t.deepEqual(autoAugmentValue('ShearX', l), { base: 0, magnitude: (l / 9) * 0.3, signed: true });
    t.deepEqual(autoAugmentValue('Rotate', l), { base: 0, magnitude: (l / 9) * 30, signed: true });
    for (const op of ['Color', 'Contrast', 'Brightness', 'Sharpness'] as const) {
      t.deepEqual(autoAugmentValue(op, l), { base: 1, magnitude: (l / 9) * 0.9, signed: true });
    }
  }
  for (const op of ['AutoContrast', 'Equalize', 'Invert'] as const)
    t.deepEqual(autoAugmentValue(op, null), { base: 0, magnitude: 0, signed: false });
  t.throws(() => autoAugmentValue('Rotate', 10), { message: /level of Rotate must be an integer in 0\.\.9/ });
  t.throws(() => autoAugmentValue('Rotate', null), { message: /level of Rotate/ });
  t.throws(() => autoAugmentValue('Mixup' as BaselineOpName, 3), { message: /'Mixup' has no kernel/ });
});

test('RandAugment and TrivialAugmentWide bins map to values as torchvision does', (t) => {
  const bins = Array.from({ length: 31 }, (_, i) => i);
  // torch.linspace(255.0, 0.0, 31)
  t.deepEqual(
    bins.map((b) => trivialAugmentValue('Solarize', b).base),
    bins.map((b) => 255 - 8.5 * b),
  );
  // TrivialAugmentWide: 8 - (arange(31) / (30 / 6)).round()
  t.deepEqual(
    bins.map((b) => trivialAugmentValue('Posterize', b).base),
    [8, 8, 8, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 2, 2, 2],
  );
  // int(linspace(0, 32, 31)) pixels, whatever the image size
  const pixels = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 32,
  ];
  t.deepEqual(
    bins.map((b) => trivialAugmentValue('TranslateX', b).magnitude * 32),
    pixels,
  );
  t.deepEqual(
    bins.map((b) => trivialAugmentValue('TranslateY', b, 31, 64, 48).magnitude * 64),
    pixels,
  );
  t.deepEqual(trivialAugmentValue('ShearY', 30), { base: 0, magnitude: 0.99, signed: true });
  t.deepEqual(trivialAugmentValue('Rotate', 30), { base: 0, magnitude: 135, signed: true });
  t.deepEqual(trivialAugmentValue('Sharpness', 30), { base: 1, magnitude: 0.99, signed: true });
  // RandAugment: AutoAugment's ranges on 31 bins; 8 - (arange(31) / (30 / 4)).round()
  t.deepEqual(
    bins.map((b) => randAugmentValue('Posterize', b).base),
    [8, 8, 8, 8, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4],
  );
  // int(linspace(0, 150 / 331 * 32, 31))
  t.deepEqual(
    bins.map((b) => randAugmentValue('TranslateX', b).magnitude * 32),
    bins.map((b) => Math.trunc((b / 30) * (150 / 331) * 32)),
  );
  t.is(randAugmentValue('Solarize').base, 178.5);
  t.deepEqual(randAugmentValue('Rotate'), { base: 0, magnitude: 9, signed: true });
  t.is(f32(randAugmentValue('Color').magnitude), f32(0.27));
  t.throws(() => randAugmentValue('Rotate', 31), { message: /magnitude must be an integer in 0\.\.30/ });
  t.throws(() => trivialAugmentValue('Rotate', 3, 1), { message: /bins must be an integer/ });
  t.deepEqual([...RANDAUGMENT_OPS].sort(), [
    'AutoContrast',
    'Brightness',
    'Color',
    'Contrast',
    'Equalize',
    'Identity',
    'Posterize',
    'Rotate',
    'Sharpness',
    'ShearX',
    'ShearY',
    'Solarize',
    'TranslateX',
    'TranslateY',
  ]);
});

// ---- Draws, empirically ----

test(
  'AutoAugment draws follow the CIFAR-10 table: uniform sub-policies, apply frequencies, level ' + 'values, signs',
  (t) => {
    const B = 50000;
    const d = read(autoAugmentDraws(B, { generator: gen(11) }));
    const policy = AUTOAUGMENT_POLICIES.cifar10;
    const counts = new Array(25).fill(0);
    const applied = policy.map(() => [0, 0]);
    const negative = policy.map(() => [0, 0]);
    for (let i = 0; i < B; i++) {
      const s = d.choice[i];
      counts[s]++;
      for (let slot = 0; slot < 2; slot++) {
        const [op, , level] = policy[s][slot];
        const k = i * 2 + slot;
        if (d.kinds[k] !== kindOf(op)) return t.fail(`image ${i} slot ${slot}: kind ${d.kinds[k]}, expected ${op}`);
        if (d.bits[k] !== 0 && d.bits[k] !== 1) return t.fail(`bit ${d.bits[k]}`);
        applied[s][slot] += d.bits[k];
        const { base, magnitude, signed } = autoAugmentValue(op, level);
        const v = d.values[k];
        if (!matches(v, { base, magnitude, signed }))
          return t.fail(`image ${i} slot ${slot}: ${op} level ${level} gave ${v}`);
        if (signed && magnitude > 0 && v < base) negative[s][slot]++;
      }
    }
    for (const c of counts) t.true(Math.abs(c / B - 1 / 25) < 0.004, `sub-policy frequency ${c / B}`);
    // Per op: pooled over its occurrences in the table, the apply frequency is its probability.
    const byOp = new Map<string, { applied: number; expected: number; n: number }>();
    policy.forEach((pair, s) =>
      pair.forEach(([op, p], slot) => {
        t.true(
          Math.abs(applied[s][slot] / counts[s] - p) < 0.05,
          `${s}/${slot} ${op}: ${applied[s][slot] / counts[s]} vs ${p}`,
        );
        const entry = byOp.get(op) ?? { applied: 0, expected: 0, n: 0 };
        entry.applied += applied[s][slot];
        entry.expected += p * counts[s];
        entry.n += counts[s];
        byOp.set(op, entry);
        const [, , level] = pair[slot];
        if (autoAugmentValue(op, level).signed && (level ?? 0) > 0) {
          t.true(Math.abs(negative[s][slot] / counts[s] - 0.5) < 0.06, `${op} sign frequency`);
        }
      }),
    );
    for (const [op, { applied: a, expected, n }] of byOp)
      t.true(Math.abs(a - expected) / n < 0.02, `${op}: ${a / n} vs ${expected / n}`);
    t.is(byOp.size, 13); // Invert, Contrast, Rotate, TranslateX, Sharpness, ShearY, TranslateY, AutoContrast, Equalize, Posterize, Color, Brightness, Solarize
    // Invert at probability 0 (sub-policy 14) is never applied.
    t.is(applied[14][1], 0);
  },
);

test('AutoAugment draws for the SVHN policy and a non-square image size', (t) => {
  const d = read(autoAugmentDraws(2000, { generator: gen(5), policy: 'svhn', height: 24, width: 40 }));
  for (let i = 0; i < 2000; i++) {
    for (let slot = 0; slot < 2; slot++) {
      const [op, , level] = AUTOAUGMENT_POLICIES.svhn[d.choice[i]][slot];
      const v = d.values[i * 2 + slot];
      if (d.kinds[i * 2 + slot] !== kindOf(op) || !matches(v, autoAugmentValue(op, level, 24, 40)))
        return t.fail(`${op} ${level}: ${v}`);
      if (op === 'TranslateY' && Math.abs(Math.round(v * 24) - v * 24) > 1e-4) return t.fail('whole pixels');
    }
  }
  t.pass();
});

test('RandAugment draws n ops per image uniformly from the 14 (Identity included) at the fixed magnitude', (t) => {
  for (const [n, magnitude] of [
    [2, 9],
    [3, 15],
  ]) {
    const B = 20000;
    const drawn = randAugmentDraws(B, { generator: gen(3 + n), n, magnitude });
    t.deepEqual(drawn.kinds.shape, [B, n]);
    t.is(drawn.kinds.dtype, 'int32');
    t.is(drawn.values.dtype, 'float32');
    t.is(drawn.bits.dtype, 'float32');
    const d = read(drawn);
    const counts = new Array(RANDAUGMENT_OPS.length).fill(0);
    let negative = 0;
    let signed = 0;
    for (let k = 0; k < B * n; k++) {
      const op = RANDAUGMENT_OPS[d.choice[k]];
      counts[d.choice[k]]++;
      if (d.kinds[k] !== kindOf(op)) return t.fail(`kind ${d.kinds[k]} for ${op}`);
      if (d.bits[k] !== (op === 'Identity' ? 0 : 1)) return t.fail(`bit ${d.bits[k]} for ${op}`);
      const value = randAugmentValue(op, magnitude);
      const v = d.values[k];
      if (!matches(v, value)) {
        return t.fail(`${op}: ${v}`);
      }
      if (value.signed) {
        signed++;
        if (v < value.base) negative++;
      }
    }
    for (const c of counts) t.true(Math.abs(c / (B * n) - 1 / 14) < 0.006, `op frequency ${c / (B * n)}`);
    t.true(Math.abs(negative / signed - 0.5) < 0.01);
    // Slots are drawn independently: the first and second op of an image are not tied.
    let same = 0;
    for (let i = 0; i < B; i++) same += d.choice[i * n] === d.choice[i * n + 1] ? 1 : 0;
    t.true(Math.abs(same / B - 1 / 14) < 0.01);
  }
});

test('TrivialAugmentWide draws one op per image uniformly, its magnitude uniformly over 31 bins', (t) => {
  const B = 28000;
  const d = read(trivialAugmentDraws(B, { generator: gen(8) }));
  t.is(d.width, 1);
  const counts = new Array(RANDAUGMENT_OPS.length).fill(0);
  const rotateBins = new Array(31).fill(0);
  const limits: Record<string, [number, number]> = {
    ShearX: [-0.99, 0.99],
    ShearY: [-0.99, 0.99],
    TranslateX: [-1, 1],
    TranslateY: [-1, 1],
    Rotate: [-135, 135],
    Brightness: [0.01, 1.99],
    Color: [0.01, 1.99],
    Contrast: [0.01, 1.99],
    Sharpness: [0.01, 1.99],
    Posterize: [2, 8],
    Solarize: [0, 255],
  };
  for (let i = 0; i < B; i++) {
    const op = RANDAUGMENT_OPS[d.choice[i]];
    counts[d.choice[i]]++;
    if (d.kinds[i] !== kindOf(op) || d.bits[i] !== (op === 'Identity' ? 0 : 1))
      return t.fail(`${op}: kind ${d.kinds[i]} bit ${d.bits[i]}`);
    const v = d.values[i];
    const [lo, hi] = limits[op] ?? [0, 0];
    if (!(v >= f32(lo) - 1e-6 && v <= f32(hi) + 1e-6)) return t.fail(`${op}: ${v} outside [${lo}, ${hi}]`);
    // The value is one of the bins' values.
    const ok = Array.from({ length: 31 }, (_, b) => trivialAugmentValue(op, b)).some((value) => matches(v, value));
    if (!ok) return t.fail(`${op}: ${v} is no bin's value`);
    if (op === 'Rotate') rotateBins[Math.round(Math.abs(v) / 4.5)]++;
    if (op === 'TranslateX' && !Number.isInteger(Math.round(v * 32 * 1e4) / 1e4)) return t.fail('whole pixels');
  }
  for (const c of counts) t.true(Math.abs(c / B - 1 / 14) < 0.006, `op frequency ${c / B}`);
  const rotations = counts[RANDAUGMENT_OPS.indexOf('Rotate')];
  for (const c of rotateBins) t.true(Math.abs(c / rotations - 1 / 31) < 0.02, `bin frequency ${c / rotations}`);
});

// ---- Outputs ----

test('every policy: same seed, same batch; another seed, another batch; float32 out, shape kept', (t) => {
  const images = randomImages([16, 3, 12, 12], 1);
  for (const [name, policy] of Object.entries(BASELINES)) {
    const a = policy(images, { generator: gen(42) });
    const b = policy(images, { generator: gen(42) });
    const c = policy(images, { generator: gen(43) });
    t.deepEqual(a.shape, [16, 3, 12, 12], name);
    t.is(a.dtype, 'float32', name);
    t.deepEqual(nums(a), nums(b), name);
    if (name === 'none') t.deepEqual(nums(a), nums(images));
    else t.notDeepEqual(nums(a), nums(c), name);
    const values = nums(a);
    t.true(
      values.every((v) => v >= 0 && v <= 1),
      name,
    );
    dna.dispose([a, b, c]);
  }
});

test('uint8 and gray images, non-square sizes: float32 in [0, 1] out, scaled like the engine', (t) => {
  const images = tidy(() => randomImages([6, 1, 10, 14], 2).mul(255).round().toDtype('uint8'));
  for (const [name, policy] of Object.entries(BASELINES)) {
    const out = policy(images, { generator: gen(1) });
    t.deepEqual(out.shape, [6, 1, 10, 14], name);
    t.is(out.dtype, 'float32', name);
    t.true(
      nums(out).every((v) => v >= 0 && v <= 1),
      name,
    );
  }
  const none = BASELINES.none(images);
  t.deepEqual(
    nums(none),
    nums(images).map((v) => f32(v / 255)),
  );
});

test(
  'the policies run their draws through the fused engine: output = applyAugmentationDraws(draws) with the ' +
    'same generator',
  (t) => {
    const images = randomImages([64, 3, 8, 8], 3);
    const cases: Array<[string, (g: dna.Generator) => dna.Tensor, (g: dna.Generator) => AugmentationDraws]> = [
      [
        'autoaugment',
        (g) => autoAugment(images, { generator: g }),
        (g) => autoAugmentDraws(64, { generator: g, height: 8, width: 8 }),
      ],
      [
        'autoaugment svhn',
        (g) => autoAugment(images, { generator: g, policy: 'svhn' }),
        (g) => autoAugmentDraws(64, { generator: g, height: 8, width: 8, policy: 'svhn' }),
      ],
      [
        'randaugment',
        (g) => randAugment(images, { generator: g }),
        (g) => randAugmentDraws(64, { generator: g, height: 8, width: 8 }),
      ],
      [
        'randaugment n=5',
        (g) => randAugment(images, { generator: g, n: 5, magnitude: 20 }),
        (g) => randAugmentDraws(64, { generator: g, height: 8, width: 8, n: 5, magnitude: 20 }),
      ],
      [
        'trivialaugment',
        (g) => trivialAugment(images, { generator: g }),
        (g) => trivialAugmentDraws(64, { generator: g, height: 8, width: 8 }),
      ],
    ];
    for (const [name, run, draw] of cases) {
      const g = gen(77);
      const expected = applyAugmentationDraws(images, draw(g), { generator: g });
      t.deepEqual(nums(run(gen(77))), nums(expected), name);
    }
  },
);

test('images whose bits are all 0 come out unchanged; those with Invert or Solarize applied as the op says', (t) => {
  const B = 1500;
  const images = randomImages([B, 3, 4, 4], 4);
  const d = read(autoAugmentDraws(B, { generator: gen(9), height: 4, width: 4 }));
  const out = nums(autoAugment(images, { generator: gen(9) }));
  const x = nums(images);
  const size = 3 * 4 * 4;
  let untouched = 0;
  let solarized = 0;
  for (let i = 0; i < B; i++) {
    const image = x.slice(i * size, (i + 1) * size);
    const result = out.slice(i * size, (i + 1) * size);
    if (d.bits[2 * i] === 0 && d.bits[2 * i + 1] === 0) {
      untouched++;
      t.deepEqual(result, image);
    }
    // Sub-policy 14: Solarize (0.5, level 2: threshold 198.33, levels >= 199 inverted), Invert at 0.0.
    if (d.choice[i] === 14 && d.bits[2 * i] === 1) {
      solarized++;
      t.deepEqual(
        result,
        image.map((v) => (Math.round(v * 255) >= 199 ? f32(1 - v) : v)),
      );
    }
    // Sub-policy 23: Equalize (0.8), Invert (0.1): with only Invert applied, 1 - x.
    if (d.choice[i] === 23 && d.bits[2 * i] === 0 && d.bits[2 * i + 1] === 1) {
      t.deepEqual(
        result,
        image.map((v) => f32(1 - v)),
      );
    }
  }
  t.true(untouched > 300 && solarized > 15, `${untouched} untouched, ${solarized} solarized`);
  // All bits forced to 0: the whole batch comes back as it was.
  const draws = autoAugmentDraws(B, { generator: gen(10), height: 4, width: 4 });
  const off = applyAugmentationDraws(images, { ...draws, bits: draws.bits.mul(0) });
  t.deepEqual(nums(off), x);
});

test('RandAugment with n = 3 is two fused calls: slots 1-2, then slot 3; n = 0 leaves the images as they are', (t) => {
  const images = randomImages([32, 3, 8, 8], 5);
  const g = gen(21);
  const d = randAugmentDraws(32, { generator: g, n: 3, height: 8, width: 8 });
  const firstTwo = { kinds: d.kinds.narrow(1, 0, 2), values: d.values.narrow(1, 0, 2), bits: d.bits.narrow(1, 0, 2) };
  const third = { kinds: d.kinds.narrow(1, 2, 1), values: d.values.narrow(1, 2, 1), bits: d.bits.narrow(1, 2, 1) };
  const step = applyAugmentationDraws(images, firstTwo, { generator: g });
  const expected = applyAugmentationDraws(step, third, { generator: g });
  t.deepEqual(nums(randAugment(images, { generator: gen(21), n: 3 })), nums(expected));
  t.deepEqual(nums(randAugment(images, { generator: gen(1), n: 0 })), nums(images));
  const one = randAugment(images, { generator: gen(1), n: 1 });
  t.deepEqual(one.shape, images.shape);
});

test("cutout is the preprocessing kernel's Cutout: a size x size gray square", (t) => {
  const images = randomImages([8, 3, 20, 20], 6);
  const out = cutout(images, { generator: gen(2), size: 6 });
  const same = preprocess(images, { flip: 0, pad: 0, cutout: 6 }, { generator: gen(2) });
  t.deepEqual(nums(out), nums(same));
  // Default size 16; size 0 changes nothing.
  t.deepEqual(nums(cutout(images, { generator: gen(2) })), nums(preprocess(images, 'svhn', { generator: gen(2) })));
  t.deepEqual(nums(cutout(images, { size: 0 })), nums(images));
  // Each image has gray pixels where the square is (at most 36 of its 400 per channel).
  const values = nums(out);
  for (let i = 0; i < 8; i++) {
    const changed = values.slice(i * 1200, i * 1200 + 400).filter((v, k) => v !== nums(images)[i * 1200 + k]).length;
    t.true(changed <= 36);
  }
});

test('the registry: names to policies, case-insensitive, functions pass through, unknown names listed', (t) => {
  t.deepEqual(Object.keys(BASELINES), ['none', 'cutout', 'autoaugment', 'randaugment', 'trivialaugment']);
  t.is(baselineAugmenter('trivialaugment'), BASELINES.trivialaugment);
  t.is(baselineAugmenter('TrivialAugment'), BASELINES.trivialaugment);
  const custom = (x: dna.Tensor) => x.clone();
  t.is(baselineAugmenter(custom), custom);
  t.throws(() => baselineAugmenter('mixup'), {
    message: /unknown augmentation policy 'mixup' \(one of none, cutout, autoaugment, randaugment, trivialaugment\)/,
  });
  t.throws(() => baselineAugmenter('toString'), { message: /unknown augmentation policy 'toString'/ });
  t.throws(() => baselineAugmenter(3 as unknown as string), { instanceOf: TypeError, message: /policy name/ });
  t.true(Object.isFrozen(BASELINES));
  // The package entry point exports the same things.
  t.is(dna.BASELINES, BASELINES);
  t.is(dna.autoAugment, autoAugment);
});

test('bad input and options give Errors that name the problem', (t) => {
  const images = randomImages([2, 3, 8, 8], 7);
  t.throws(() => autoAugment(images, { policy: 'cifar100' as 'cifar10' }), {
    message: /autoAugment: unknown AutoAugment policy 'cifar100' \(one of cifar10, svhn, imagenet\)/,
  });
  t.throws(() => randAugment(images, { n: -1 }), { message: /randAugment: n must be an integer in 0\.\.64, got -1/ });
  t.throws(() => randAugment(images, { n: 1.5 }), { message: /n must be an integer/ });
  t.throws(() => randAugment(images, { magnitude: 31 }), {
    message: /magnitude must be an integer in 0\.\.30, got 31/,
  });
  t.throws(() => randAugment(images, { magnitude: 5, bins: 1 }), { message: /bins must be an integer/ });
  t.throws(() => trivialAugment(images, { bins: 0 }), {
    message: /trivialAugment: bins must be an integer in 2\.\.65536, got 0/,
  });
  t.throws(() => cutout(images, { size: -1 }), { message: /size must be an integer/ });
  t.throws(() => cutout(images, { size: 2.5 }), { message: /size must be an integer/ });
  t.throws(() => trivialAugment(images, { generator: {} as dna.Generator }), {
    instanceOf: TypeError,
    message: /generator must be a Generator/,
  });
  t.throws(() => autoAugment(images, 5 as unknown as {}), {
    instanceOf: TypeError,
    message: /^autoAugment: options must be an object, got 5$/,
  });
  dna.dispose(autoAugment(images, null as unknown as {})); // null is no options
  t.throws(() => autoAugment([1, 2] as unknown as dna.Tensor), {
    instanceOf: TypeError,
    message: /autoAugment: images must be a Tensor/,
  });
  t.throws(() => randAugment(dna.zeros([3, 8, 8])), {
    message: /images must be \[B, C, H, W\], got shape \[3, 8, 8\]/,
  });
  t.throws(() => trivialAugment(dna.zeros([2, 4, 8, 8])), { message: /1 or 3 channels/ });
  t.throws(() => BASELINES.none(dna.zeros([2, 3, 8, 8], { dtype: 'float64' })), {
    message: /float32 in \[0, 1\] or uint8, got float64/,
  });
  t.throws(() => autoAugmentDraws(-1), { message: /batch size must be an integer/ });
  t.throws(() => autoAugmentDraws(4, { width: 0 }), { message: /width must be an integer/ });
  const d = autoAugmentDraws(3);
  t.throws(() => applyAugmentationDraws(images, d), { message: /draws.kinds must have shape \[2, L\], got \[3, 2\]/ });
  const e = autoAugmentDraws(2);
  t.throws(() => applyAugmentationDraws(images, { ...e, values: dna.zeros([2, 3]) }), {
    message: /draws.values must have the shape of draws.kinds/,
  });
  t.throws(() => applyAugmentationDraws(images, { ...e, kinds: e.kinds.toDtype('int64') }), {
    message: /kinds must be int32/,
  });
  t.throws(() => applyAugmentationDraws(images, { ...e, kinds: dna.full([2, 2], 99, { dtype: 'int32' }) }), {
    message: /kind|99/,
  });
  t.throws(() => applyAugmentationDraws(images, { ...e, values: dna.full([2, 2], NaN) }), { message: /NaN/ });
});

test.serial('no tensors leak: a policy call leaves only its output behind', (t) => {
  const images = randomImages([8, 3, 8, 8], 8);
  const g = gen(1);
  const policies = Object.values(BASELINES);
  for (const policy of policies) policy(images, { generator: g }).dispose(); // warm the table caches
  const before = dna.liveTensors();
  for (let round = 0; round < 3; round++) {
    for (const policy of policies) policy(images, { generator: g }).dispose();
    randAugment(images, { generator: g, n: 5 }).dispose();
    dna.dispose(autoAugmentDraws(8, { generator: g, height: 8, width: 8 }));
  }
  t.true(dna.liveTensors() <= before, `${dna.liveTensors()} live, ${before} before`);
});

test("the generator must be on the images' device", (t) => {
  if (!dna.backend().cuda) {
    t.pass('no CUDA here');
    return;
  }
  const images = randomImages([2, 3, 8, 8], 9);
  t.throws(() => trivialAugment(images, { generator: new Generator(1, 'cuda') }), { message: /generator is on cuda/ });
  const onGpu = images.to('cuda');
  const g = new Generator(3, 'cuda');
  for (const [name, policy] of Object.entries(BASELINES)) {
    const out = policy(onGpu, { generator: g });
    t.is(out.device, onGpu.device, name);
  }
  t.deepEqual(
    nums(autoAugment(onGpu, { generator: new Generator(4, 'cuda') })),
    nums(autoAugment(onGpu, { generator: new Generator(4, 'cuda') })),
  );
});
