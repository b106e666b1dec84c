// The reference policies of bench/policies.ts (bench/nuisance.ts): the prior applies every op
// equally often to every class; the class oracle applies Rotate and Invert only to the classes
// a class-dependent benchmark shows with them, each to the stated fraction of them, and leaves
// the other ops as the prior has them among the sub-policies it allows. And the benchmarks' data:
// each layout changes its own classes only, and SHIFT's training split shows them less.
import test from 'ava';

import * as dna from '../lib/index.js';
import {
  CUE,
  INVERT_PROBABILITY,
  NUISANCE,
  SHIFT,
  referenceOutputs,
  referencePolicy,
  withNuisance,
  type NuisanceLayout,
} from '../bench/nuisance.js';

const space = dna.defaultSearchSpace();
const opIndex = (name: string) => space.ops.findIndex((op) => op.name === name);

/** Per label 0..9, each op's probability of being applied: sum over s of pi(s) * p(slot of the op). */
function applyRates(strength: number | null, apply?: number, layout?: NuisanceLayout): number[][] {
  return dna.tidy(() => {
    const labels = dna.arange(0, 10, 1);
    const outputs = referenceOutputs(strength, labels, { apply }, layout);
    const pi = Array.from(outputs.logits.softmax(1).data() as Float32Array);
    const p = Array.from(outputs.p.data() as Float32Array);
    const S = space.subPolicies.length;
    return Array.from({ length: 10 }, (_, label) => {
      const rates = space.ops.map(() => 0);
      space.subPolicies.forEach((pair, s) =>
        pair.forEach((op, slot) => (rates[op] += pi[label * S + s] * p[(label * S + s) * 2 + slot])),
      );
      return rates;
    });
  });
}

test('the prior applies each of the 15 ops to 1/15 of every class, 2/15 when both ops apply always', (t) => {
  for (const rates of applyRates(null)) for (const rate of rates) t.true(Math.abs(rate - 1 / 15) < 1e-5);
  for (const rates of applyRates(null, 1)) for (const rate of rates) t.true(Math.abs(rate - 2 / 15) < 1e-5);
  const widths = dna.tidy(() =>
    referenceOutputs(null, dna.arange(0, 3, 1), { width: 0.6 })
      .width!.max()
      .item(),
  );
  t.true(Math.abs((widths as number) - 0.6) < 1e-6);
});

test('the class oracle applies each nuisance op to its own classes only, at the strength asked', (t) => {
  const [rotate, invert] = [opIndex('Rotate'), opIndex('Invert')];
  for (const [strength, layout] of [0.15, 0.5].flatMap((s) => [NUISANCE, CUE].map((l) => [s, l] as const))) {
    applyRates(strength, undefined, layout).forEach((rates, label) => {
      const own = layout.rotated.includes(label) ? rotate : layout.inverted.includes(label) ? invert : -1;
      for (const op of [rotate, invert]) t.true(Math.abs(rates[op] - (op === own ? strength : 0)) < 1e-5);
      // The other ops: equally often, and together what the sub-policies leave.
      const others = rates.filter((_, op) => op !== rotate && op !== invert);
      for (const rate of others) t.true(Math.abs(rate - others[0]) < 1e-5);
      t.true(others[0] > 0.05 && others[0] < 0.1, `label ${label}: ${others[0]}`);
    });
  }
});

test('the class oracle as an augmentation needs the labels and keeps the images in [0, 1]', (t) => {
  const images = dna.tidy(() => dna.rand([8, 1, 12, 12]));
  t.throws(() => referencePolicy(0.5, false)(images), { message: /needs the batch labels/ });
  for (const marginal of [false, true]) {
    const out = referencePolicy(0.5, marginal)(images, {
      generator: new dna.Generator(0),
      labels: dna.arange(0, 8, 1),
    });
    t.deepEqual(out.shape, [8, 1, 12, 12]);
    t.true((out.min().item() as number) >= 0 && (out.max().item() as number) <= 1);
    out.dispose();
  }
  images.dispose();
});

test('each layout inverts about half of its own inverted classes, rotates its rotated ones and leaves the rest', (t) => {
  // 40 images of random pixels per class: an inverted image is exactly 255 - x.
  const [perClass, size] = [40, 8 * 8];
  const count = 10 * perClass;
  const images = new Uint8Array(count * size);
  for (let k = 0; k < images.length; k++) images[k] = (k * 7919 + 13) % 256;
  const labels = Int32Array.from({ length: count }, (_, i) => i % 10);
  const ds = { name: 'toy', images, labels, count, shape: [1, 8, 8] as [number, number, number], classes: [] };
  const runs: [NuisanceLayout, 'train' | 'test'][] = [
    [NUISANCE, 'train'],
    [CUE, 'train'],
    [SHIFT, 'test'],
  ];
  for (const [layout, split] of runs) {
    const changed = withNuisance(ds, split, layout);
    t.is(changed.name, `toy+${layout.name}`);
    for (let label = 0; label < 10; label++) {
      let [same, inverted, other] = [0, 0, 0];
      for (let i = label; i < count; i += 10) {
        const [a, b] = [images.subarray(i * size, (i + 1) * size), changed.images.subarray(i * size, (i + 1) * size)];
        if (a.every((v, k) => v === b[k])) same++;
        else if (a.every((v, k) => 255 - v === b[k])) inverted++;
        else other++;
      }
      if (layout.inverted.includes(label)) {
        t.is(other, 0, `${layout.name} label ${label}`);
        t.true(Math.abs(inverted / perClass - INVERT_PROBABILITY) < 0.3, `${layout.name} label ${label}: ${inverted}`);
      } else if (layout.rotated.includes(label)) t.is(inverted, 0, `${layout.name} label ${label}`);
      else t.is(same, perClass, `${layout.name} label ${label}`);
    }
  }
});

test("SHIFT's training split inverts fewer images and rotates by smaller angles than its test split", (t) => {
  // Horizontal ramps: an inverted image is exactly 255 - x, and a rotation changes more pixels the wider it turns.
  const [perClass, side] = [60, 16];
  const size = side * side;
  const count = 10 * perClass;
  const images = new Uint8Array(count * size);
  for (let k = 0; k < images.length; k++) images[k] = (k % side) * 16;
  const labels = Int32Array.from({ length: count }, (_, i) => i % 10);
  const ds = { name: 'ramp', images, labels, count, shape: [1, side, side] as [number, number, number], classes: [] };
  const summary = (split: 'train' | 'test') => {
    const changed = withNuisance(ds, split, SHIFT);
    let [inverted, invertedOf, change, rotatedOf] = [0, 0, 0, 0];
    for (let i = 0; i < count; i++) {
      const [a, b] = [images.subarray(i * size, (i + 1) * size), changed.images.subarray(i * size, (i + 1) * size)];
      if (SHIFT.inverted.includes(labels[i])) {
        invertedOf++;
        if (a.every((v, k) => 255 - v === b[k])) inverted++;
      } else if (SHIFT.rotated.includes(labels[i])) {
        rotatedOf++;
        change += a.reduce((sum, v, k) => sum + Math.abs(v - b[k]), 0) / size;
      } else t.deepEqual(b, a);
    }
    return { inverted: inverted / invertedOf, change: change / rotatedOf };
  };
  const [train, testSplit] = [summary('train'), summary('test')];
  t.true(Math.abs(train.inverted - SHIFT.train!.invertProbability) < 0.08, `train: ${train.inverted}`);
  t.true(Math.abs(testSplit.inverted - INVERT_PROBABILITY) < 0.15, `test: ${testSplit.inverted}`);
  t.true(train.change > 0 && train.change < 0.6 * testSplit.change, `${train.change} against ${testSplit.change}`);
});
