// The per-class policy report (SPEC 1.6): its numbers against a plain-JS reference for a
// hand-made policy, a real and a loaded policy network at their uniform start, the files it
// writes, its errors and its memory.
import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import sharp from 'sharp';

import * as dna from '../lib/index.js';
import { PolicyNetwork } from '../lib/dna/policy-network.js';
import { loadPolicy, savePolicy } from '../lib/dna/policy-file.js';

const { tensor, tidy } = dna;

// ---- A hand-made policy and its reference, in plain JS ----

const OP_NAMES = ['ShearX', 'Rotate', 'Invert', 'Solarize', 'Cutout'];
const ops = OP_NAMES.map((name) => dna.findOp(name));
const space: dna.SearchSpace = { ops, subPolicies: dna.subPolicies(ops) };
const S = space.subPolicies.length; // 10
const SHARPNESS = 20;

/** Sub-policy s prefers images whose mean intensity u is near s / (S - 1). */
const centre = (s: number) => s / (S - 1);
/** p and m of slot (s, l) are sigmoid(scale * u + shift). */
const pLine = (s: number, l: number): [number, number] => [(s - 4.5) / 3, l === 0 ? -0.5 : 0.7];
const mLine = (s: number, l: number): [number, number] => [2 - 0.3 * s, 0.1 * s - 0.2 * l - 1];

function slotTable(line: (s: number, l: number) => [number, number], part: 0 | 1): dna.Tensor {
  return tensor(
    Float32Array.from({ length: 2 * S }, (_, i) => line(Math.floor(i / 2), i % 2)[part]),
    [1, S, 2],
  );
}

function handMadePolicy(): dna.PolicySource & { dispose(): void } {
  const tables = {
    centres: tensor(
      Float32Array.from({ length: S }, (_, s) => centre(s)),
      [1, S],
    ),
    pScale: slotTable(pLine, 0),
    pShift: slotTable(pLine, 1),
    mScale: slotTable(mLine, 0),
    mShift: slotTable(mLine, 1),
  };
  return {
    searchSpace: space,
    forward: (images) =>
      tidy(() => {
        const B = images.shape[0];
        const u = images.mean([1, 2, 3]).reshape([B, 1]);
        const u3 = u.reshape([B, 1, 1]);
        return {
          logits: u.sub(tables.centres).square().mul(-SHARPNESS),
          p: u3.mul(tables.pScale).add(tables.pShift).sigmoid(),
          m: u3.mul(tables.mScale).add(tables.mShift).sigmoid(),
        };
      }),
    dispose: () => dna.dispose(tables),
  };
}

// Three classes of constant 1 x 4 x 4 images, interleaved, with intensities spread within each.
const INTENSITIES = [
  [0, 5, 12, 20],
  [80, 88, 95],
  [240, 245, 250, 255],
];
const CLASSES = ['dark', 'mid | gray', 'bright'];

function grayData(intensities = INTENSITIES, channels = 1): dna.ImageDataset {
  const order: [number, number][] = [];
  for (let i = 0; i < Math.max(...intensities.map((v) => v.length)); i++)
    intensities.forEach((values, label) => i < values.length && order.push([label, values[i]]));
  const size = channels * 16;
  const images = new Uint8Array(order.length * size);
  order.forEach(([, value], i) => images.fill(value, i * size, (i + 1) * size));
  return {
    name: 'gray-levels',
    images,
    labels: Int32Array.from(order.map(([label]) => label)),
    count: order.length,
    shape: [channels, 4, 4],
    classes: CLASSES.slice(0, intensities.length),
  };
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const bits = (q: number[]) => -q.reduce((sum, v) => sum + (v > 0 ? v * Math.log2(v) : 0), 0);

interface Reference {
  count: number;
  meanPi: number[];
  meanEntropy: number;
  applyMass: number[];
  meanP: number[];
  meanM: number[];
}

/** The report's numbers for a group of intensities, straight from the definitions. */
function reference(values: number[]): Reference {
  const meanPi = new Array<number>(S).fill(0);
  const applied = new Array<number>(ops.length).fill(0);
  const magnitude = new Array<number>(ops.length).fill(0);
  const selected = new Array<number>(ops.length).fill(0);
  let entropySum = 0;
  for (const value of values) {
    const u = value / 255;
    const logits = Array.from({ length: S }, (_, s) => -SHARPNESS * (u - centre(s)) ** 2);
    const top = Math.max(...logits);
    const weights = logits.map((z) => Math.exp(z - top));
    const total = weights.reduce((a, b) => a + b, 0);
    const pi = weights.map((w) => w / total);
    entropySum -= pi.reduce((sum, q) => sum + q * Math.log(q), 0);
    pi.forEach((q, s) => {
      meanPi[s] += q / values.length;
      space.subPolicies[s].forEach((o, l) => {
        const [pa, pb] = pLine(s, l);
        const [ma, mb] = mLine(s, l);
        selected[o] += q;
        applied[o] += q * sigmoid(pa * u + pb);
        magnitude[o] += q * sigmoid(ma * u + mb);
      });
    });
  }
  return {
    count: values.length,
    meanPi,
    meanEntropy: entropySum / values.length,
    applyMass: applied.map((sum) => sum / values.length),
    meanP: applied.map((sum, o) => sum / selected[o]),
    meanM: magnitude.map((sum, o) => sum / selected[o]),
  };
}

function close(
  t: import('ava').ExecutionContext,
  actual: number | null,
  expected: number,
  what: string,
  tolerance = 1e-5,
): void {
  t.true(actual !== null && Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected}`);
}

function checkGroup(t: import('ava').ExecutionContext, group: dna.PolicyGroupStatistics, expected: Reference): void {
  t.is(group.count, expected.count);
  expected.meanPi.forEach((q, s) => close(t, group.meanPi[s], q, `${group.name} pi[${s}]`));
  const ranking = expected.meanPi
    .map((q, s) => [q, s])
    .sort((a, b) => b[0] - a[0])
    .slice(0, 5);
  t.deepEqual(
    group.top.map((entry) => entry.index),
    ranking.map(([, s]) => s),
    `${group.name} top 5`,
  );
  group.top.forEach((entry, i) => {
    const [i0, j0] = space.subPolicies[entry.index];
    t.is(entry.name, `${OP_NAMES[i0]}+${OP_NAMES[j0]}`);
    close(t, entry.probability, ranking[i][0], `${group.name} top ${i + 1}`);
  });
  close(t, group.meanEntropy, expected.meanEntropy, `${group.name} mean entropy`);
  close(t, group.entropyOfMean, bits(expected.meanPi) * Math.LN2, `${group.name} entropy of the mean`);
  t.deepEqual(
    group.ops.map((op) => op.name),
    OP_NAMES,
  );
  group.ops.forEach((op, o) => {
    close(t, op.applyMass, expected.applyMass[o], `${group.name} ${op.name} apply mass`);
    close(t, op.meanP, expected.meanP[o], `${group.name} ${op.name} mean p`);
    // An op without a magnitude ignores its m: the report gives none.
    if (ops[o].range === null) t.is(op.meanM, null, `${group.name} ${op.name} has no m`);
    else close(t, op.meanM, expected.meanM[o], `${group.name} ${op.name} mean m`);
  });
}

test.serial(
  'a hand-made policy: per-class mean pi, top-5, entropies, apply mass, p, m and JSD match a plain-JS reference',
  async (t) => {
    const policy = handMadePolicy();
    const data = grayData();
    const before = dna.liveTensors();
    const progress: number[] = [];
    const report = await dna.policyReport({
      policy,
      data,
      batchSize: 3,
      onProgress: ({ images }) => progress.push(images),
    });
    t.is(dna.liveTensors(), before, 'no tensor outlives the report');
    t.deepEqual(progress, [3, 6, 9, 11]);

    t.is(report.images, 11);
    t.deepEqual(report.classes, CLASSES);
    t.deepEqual(report.counts, [4, 3, 4]);
    t.is(report.dataset, 'gray-levels');
    t.deepEqual(report.searchSpace.ops, OP_NAMES);
    t.is(report.searchSpace.subPolicies[0], 'ShearX+Rotate');
    t.is(report.searchSpace.subPolicies[9], 'Solarize+Cutout');
    close(t, report.searchSpace.maxEntropy, Math.log(10), 'max entropy');
    // Where m leaves each op's image as it is: the middle for a signed range, the top for
    // Solarize, none for Invert, which has no magnitude, and 0 for Cutout.
    t.deepEqual(report.searchSpace.identityAt, [0.5, 0.5, null, 1, 0]);

    // Each class prefers the sub-policies whose centre is near its intensity.
    const names = (group: dna.PolicyGroupStatistics) => group.top.map((entry) => entry.name);
    t.deepEqual(names(report.perClass[0]), [
      'ShearX+Rotate',
      'ShearX+Invert',
      'ShearX+Solarize',
      'ShearX+Cutout',
      'Rotate+Invert',
    ]);
    t.deepEqual(names(report.perClass[1]), [
      'ShearX+Cutout',
      'Rotate+Invert',
      'ShearX+Solarize',
      'Rotate+Solarize',
      'ShearX+Invert',
    ]);
    t.deepEqual(names(report.perClass[2]), [
      'Solarize+Cutout',
      'Invert+Cutout',
      'Invert+Solarize',
      'Rotate+Cutout',
      'Rotate+Solarize',
    ]);

    const expected = INTENSITIES.map((values) => reference(values));
    report.perClass.forEach((group, k) => {
      t.is(group.label, k);
      t.is(group.name, CLASSES[k]);
      checkGroup(t, group, expected[k]);
    });
    t.is(report.overall.label, undefined);
    checkGroup(t, report.overall, reference(INTENSITIES.flat()));

    // JSD through another identity: H(mixture) - mean of the entropies, in bits.
    t.deepEqual(report.distance.classes, CLASSES);
    const jsd = (a: number[], b: number[]) => bits(a.map((q, s) => (q + b[s]) / 2)) - (bits(a) + bits(b)) / 2;
    const offDiagonal: number[] = [];
    report.distance.matrix.forEach((row, i) =>
      row.forEach((value, j) => {
        const want = jsd(expected[i].meanPi, expected[j].meanPi);
        close(t, value, want, `JSD ${i}, ${j}`);
        t.is(value, report.distance.matrix[j][i]);
        if (i !== j) offDiagonal.push(want);
        else t.is(value, 0);
      }),
    );
    t.true(report.distance.matrix[0][2] > 0.5, 'dark and bright images get very different policies');
    close(
      t,
      report.distance.meanOffDiagonal,
      offDiagonal.reduce((a, b) => a + b, 0) / offDiagonal.length,
      'mean off-diagonal',
    );
    policy.dispose();
  },
);

test('entropy and jensenShannon: their extremes', (t) => {
  t.is(dna.entropy([1, 0, 0]), 0);
  close(t, dna.entropy([0.25, 0.25, 0.25, 0.25]), Math.log(4), 'uniform');
  t.is(dna.jensenShannon([0.2, 0.8], [0.2, 0.8]), 0);
  t.is(dna.jensenShannon([1, 0], [0, 1]), 1);
  t.throws(() => dna.jensenShannon([1], [0.5, 0.5]), { instanceOf: RangeError });
});

test.serial('PolicyStatistics accumulates batches and reports at any time; top is clipped to the search space', (t) => {
  const policy = handMadePolicy();
  const statistics = new dna.PolicyStatistics(space, CLASSES);
  t.throws(() => statistics.report(), { message: /no images have been added/ });
  const data = grayData();
  for (const batch of dna.batches(data, { batchSize: 5, shuffle: false })) {
    tidy(() => statistics.add(policy.forward(batch.images), batch.labels));
    dna.dispose(batch);
  }
  t.is(statistics.images, 11);
  const report = statistics.report({ top: 50 });
  t.is(report.perClass[0].top.length, S);
  checkGroup(t, { ...report.overall, top: report.overall.top.slice(0, 5) }, reference(INTENSITIES.flat()));
  t.is(report.dataset, undefined);
  statistics.reset();
  t.is(statistics.images, 0);

  tidy(() => {
    const outputs = policy.forward(tensor(new Float32Array(2 * 16), [2, 1, 4, 4]));
    // Label and value checks come with the read of the sums (no host read per batch).
    statistics.add(outputs, tensor([0, 3], [2], { dtype: 'int64' }));
    t.throws(() => statistics.report(), { message: /1 of the 2 labels added are outside 0\.\.2/ });
    statistics.reset();
    t.throws(() => statistics.add(outputs, tensor([0, 1, 2], [3], { dtype: 'int64' })), {
      message: /logits are \[2, 10\], expected \[3, 10\]/,
    });
    t.throws(
      () => statistics.add({ ...outputs, p: outputs.m.narrow(1, 0, 4) }, tensor([0, 1], [2], { dtype: 'int64' })),
      { message: /p is \[2, 4, 2\], expected \[2, 10, 2\]/ },
    );
    statistics.add({ ...outputs, logits: outputs.logits.log() }, tensor([0, 1], [2], { dtype: 'int64' }));
    t.throws(() => statistics.images, { message: /not all finite/ });
    statistics.reset();
  });
  t.is(statistics.images, 0, 'a refused batch adds nothing');
  policy.dispose();
});

// ---- Real policy networks ----

function colourData(count: number, classes = 3): dna.ImageDataset {
  const size = 3 * 8 * 8;
  const images = Uint8Array.from({ length: count * size }, (_, i) => (i * 37 + Math.floor(i / size) * 11) % 256);
  const labels = Int32Array.from({ length: count }, (_, i) => i % classes);
  return {
    name: 'colour-noise',
    images,
    labels,
    count,
    shape: [3, 8, 8],
    classes: Array.from({ length: classes }, (_, k) => `class${k}`),
  };
}

/** At the zero-initialised head: pi uniform over the 105 sub-policies, p = m = 0.5. */
function checkUniform(t: import('ava').ExecutionContext, report: dna.PolicyReport): void {
  const uniform = 1 / 105;
  for (const group of [...report.perClass, report.overall]) {
    t.is(group.meanPi.length, 105);
    group.meanPi.forEach((q) => close(t, q, uniform, 'pi', 1e-6));
    t.is(group.top.length, 5);
    close(t, group.meanEntropy, Math.log(105), 'mean entropy');
    close(t, group.entropyOfMean, Math.log(105), 'entropy of the mean');
    // Each of the 15 ops sits in 14 of the 105 pairs: 14 / 105 slots, applied half the time.
    for (const op of group.ops) {
      close(t, op.selected, 14 / 105, `${op.name} selected`);
      close(t, op.applyMass, 7 / 105, `${op.name} apply mass`);
      close(t, op.meanP, 0.5, `${op.name} p`);
      if (dna.findOp(op.name).range === null) t.is(op.meanM, null, `${op.name} has no m`);
      else close(t, op.meanM, 0.5, `${op.name} m`);
    }
  }
  t.true(report.distance.matrix.flat().every((value) => value < 1e-9));
}

test.serial('a PolicyNetwork at its start reports uniform pi, and its training mode is restored', async (t) => {
  const policy = new PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 3, seed: 3 });
  const data = colourData(10);
  const before = dna.liveTensors();
  const report = await dna.policyReport({ policy: policy.train(), data, batchSize: 4 });
  t.is(dna.liveTensors(), before);
  t.true(policy.network.training);
  t.deepEqual(report.counts, [4, 3, 3]);
  checkUniform(t, report);
  await dna.policyReport({ policy: policy.eval(), data, batchSize: 4 });
  t.false(policy.network.training);
  await t.throwsAsync(dna.policyReport({ policy, data: grayData() }), {
    instanceOf: RangeError,
    message: /takes 3-channel images, but gray-levels has 1-channel images/,
  });
  policy.dispose();
});

test.serial('a loaded policy file: uniform at its start, with its provenance in the report', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-report-'));
  const network = new PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 3, seed: 4 });
  const file = path.join(dir, 'policy.dna');
  await savePolicy(file, network, {
    dataset: 'colour-noise',
    classes: ['class0', 'class1', 'class2'],
    seed: 4,
    steps: 0,
    seconds: 0,
  });
  network.dispose();
  const loaded = await loadPolicy(file);
  const report = await dna.policyReport({ policy: loaded, data: colourData(7), top: 3 });
  checkUniform(t, {
    ...report,
    perClass: report.perClass.map((group) => ({ ...group, top: [...group.top, ...group.top].slice(0, 5) })),
    overall: { ...report.overall, top: [...report.overall.top, ...report.overall.top].slice(0, 5) },
  });
  t.is(report.perClass[0].top.length, 3);
  t.is(report.policy?.dataset, 'colour-noise');
  t.is(report.policy?.seed, 4);
  loaded.dispose();
  await rm(dir, { recursive: true, force: true });
});

// ---- Files ----

test.serial('writePolicyReport writes JSON that round-trips, Markdown with the tables and SVG plots', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-report-'));
  const policy = handMadePolicy();
  const report = await dna.policyReport({ policy, data: grayData(), batchSize: 4 });
  policy.dispose();
  const files = await dna.writePolicyReport(report, path.join(dir, 'out'));
  t.is(files.json, path.join(dir, 'out', 'report.json'));
  t.deepEqual(JSON.parse(await readFile(files.json, 'utf8')), report);

  const markdown = await readFile(files.markdown, 'utf8');
  t.regex(markdown, /^# Policy report: gray-levels/);
  for (const name of ['dark', 'mid \\| gray', 'bright', 'Solarize+Cutout', 'ShearX+Rotate (0.', '(all 11 images)'])
    t.true(markdown.includes(name), name);
  for (const heading of ['## Top 5 sub-policies per class', '## Apply mass per op', '## Distances between classes'])
    t.true(markdown.includes(heading), heading);
  t.is(files.plots.length, 4);
  for (const plot of files.plots) {
    t.true(markdown.includes(`](${path.basename(plot)})`), `report.md links ${path.basename(plot)}`);
    const svg = await readFile(plot, 'utf8');
    t.true(svg.startsWith('<svg'), plot);
    t.true(svg.trimEnd().endsWith('</svg>'), plot);
    t.regex(svg, /class="mark-(rect|text|group)/);
  }
  const heatmap = await readFile(files.plots[0], 'utf8');
  t.true(heatmap.includes('Cutout') && heatmap.includes('bright'), 'the heatmap labels ops and classes');
  t.regex(heatmap, /white: 0\.200, the untrained policy's/, "the heatmap's white is the untrained apply mass, 1/5");
  const top = await readFile(files.plots[2], 'utf8');
  t.regex(top, /Invert\+Cutout/);
  t.is(top.match(/class="mark-rule role-mark/g)?.length, 4, 'a line for uniform pi in each class and in all');
  t.regex(top, /uniform pi, 0\.100/);
  // p for every op, m only for the four with a magnitude, and a tick where each does nothing.
  const parameters = await readFile(files.plots[3], 'utf8');
  const marks = (kind: string) =>
    [...parameters.matchAll(new RegExp(`aria-label="([^"]*)"[^>]*aria-roledescription="${kind}"`, 'g'))].map(
      (match) => match[1],
    );
  t.is(marks('bar').filter((label) => label.includes('measure: mean p')).length, 5);
  t.deepEqual(
    marks('bar')
      .filter((label) => label.includes('measure: mean m'))
      .map((label) => label.split(';')[0]),
    ['op: ShearX', 'op: Rotate', 'op: Solarize', 'op: Cutout'],
  );
  t.deepEqual(marks('tick'), [
    'op: ShearX; value: 0.5; measure: mean m',
    'op: Rotate; value: 0.5; measure: mean m',
    'op: Solarize; value: 1; measure: mean m',
    'op: Cutout; value: 0; measure: mean m',
  ]);
  await t.throwsAsync(dna.writePolicyReport({} as dna.PolicyReport, dir), {
    instanceOf: TypeError,
    message: /made by policyReport/,
  });
  await rm(dir, { recursive: true, force: true });
});

test.serial(
  'the examples grid: per class the first images, as they are and as the drawn sub-policy leaves them',
  async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-report-'));
    const network = new PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 3, seed: 5 });
    const data = colourData(9);
    const file = path.join(dir, 'examples.png');
    // The first draw caches the search space's op tables (augment/kernel-tables.ts); after it, a
    // grid leaves no tensor behind.
    await dna.writeAugmentedExamples(file, { policy: network, data, perClass: 1 });
    const before = dna.liveTensors();
    const examples = await dna.writeAugmentedExamples(file, { policy: network, data, perClass: 2, seed: 4 });
    t.is(dna.liveTensors(), before, 'no tensor outlives the grid');
    t.deepEqual(
      examples.map((e) => e.label),
      [0, 0, 1, 1, 2, 2],
    );
    const names = network.searchSpace.subPolicies.map((_, s) => dna.subPolicyName(network.searchSpace, s));
    for (const example of examples) {
      t.true(names.includes(example.subPolicy), example.subPolicy);
      t.is(example.ops.map((op) => op.name).join('+'), example.subPolicy);
      for (const op of example.ops) {
        const range = dna.findOp(op.name).range;
        if (range === null) {
          t.is(op.magnitude, null, `${op.name} has no magnitude`);
          t.is(op.value, null);
        } else {
          t.true(op.magnitude !== null && op.magnitude >= 0 && op.magnitude <= 1, `${op.name} ${op.magnitude}`);
          const value = range[0] + op.magnitude! * (range[1] - range[0]);
          t.true(Math.abs(op.value! - value) < 1e-9, `${op.name} value`);
        }
      }
    }
    // The same seed draws the same sub-policies.
    t.deepEqual(
      await dna.writeAugmentedExamples(path.join(dir, 'again.png'), { policy: network, data, perClass: 2, seed: 4 }),
      examples,
    );

    // 8 x 8 images are enlarged 12 times: row k (class k) starts 60 + 140 k pixels down, the label
    // column is 110 wide, and a pair is the image, 4 pixels, then the augmented image.
    const { data: pixels, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    t.is(info.height, 60 + 3 * 140);
    const at = (x: number, y: number) =>
      Array.from(pixels.subarray((y * info.width + x) * 3, (y * info.width + x + 1) * 3));
    const size = 3 * 64;
    const pixel = (image: number, y: number, x: number) =>
      [0, 1, 2].map((c) => data.images[image * size + c * 64 + y * 8 + x]);
    for (const [y, x] of [
      [0, 0],
      [2, 3],
      [7, 7],
    ])
      t.deepEqual(at(110 + 12 * x + 6, 60 + 12 * y + 6), pixel(0, y, x), `image 0 at (${y}, ${x})`);
    // Image 4, the second of class 1, in its row's second pair.
    t.deepEqual(at(110 + 210 + 12 * 5 + 6, 60 + 140 + 12 * 1 + 6), pixel(4, 1, 5), 'image 4 at (1, 5)');
    // A sub-policy whose two ops were both drawn off leaves its image as it is.
    const untouched = examples.flatMap((e, k) => (e.ops.every((op) => !op.applied) ? [k] : []));
    t.true(untouched.length > 0, 'seed 4 draws both ops off for some image');
    for (const k of untouched) {
      const [row, column] = [Math.floor(k / 2), k % 2];
      const [left, top] = [110 + column * 210, 60 + row * 140];
      for (const [y, x] of [
        [0, 0],
        [4, 6],
      ])
        t.deepEqual(
          at(left + 100 + 12 * x + 6, top + 12 * y + 6),
          at(left + 12 * x + 6, top + 12 * y + 6),
          `image ${k}`,
        );
    }

    // writePolicyReport draws it beside the plots when asked, and report.md shows it.
    const report = await dna.policyReport({ policy: network, data });
    const files = await dna.writePolicyReport(report, path.join(dir, 'report'), {
      examples: { policy: network, data, perClass: 1 },
    });
    t.is(files.examples, path.join(dir, 'report', 'examples.png'));
    t.is((await sharp(files.examples!).metadata()).height, 60 + 3 * 140);
    t.regex(await readFile(files.markdown, 'utf8'), /!\[Augmented examples\]\(examples\.png\)/);
    t.is((await dna.writePolicyReport(report, path.join(dir, 'plain'))).examples, undefined);

    await t.throwsAsync(dna.writeAugmentedExamples(file, { policy: network, data, perClass: 0 }), {
      instanceOf: RangeError,
      message: /perClass must be a positive integer, got 0/,
    });
    const handMade = handMadePolicy();
    await t.throwsAsync(dna.writeAugmentedExamples(file, { policy: handMade as never, data: grayData() }), {
      instanceOf: TypeError,
      message: /policy must be a PolicyNetwork or a loaded policy/,
    });
    handMade.dispose();
    network.dispose();
    await rm(dir, { recursive: true, force: true });
  },
);

// ---- Errors ----

test.serial('bad input: empty data, bad top or batch size, not a policy, an aborted signal', async (t) => {
  const policy = handMadePolicy();
  const data = grayData();
  const empty = { ...data, images: new Uint8Array(0), labels: new Int32Array(0), count: 0 };
  await t.throwsAsync(dna.policyReport({ policy, data: empty }), {
    instanceOf: RangeError,
    message: /the dataset gray-levels has no images/,
  });
  for (const top of [0, 2.5, -1]) {
    await t.throwsAsync(dna.policyReport({ policy, data, top }), {
      instanceOf: RangeError,
      message: /top must be a positive integer/,
    });
  }
  await t.throwsAsync(dna.policyReport({ policy, data, batchSize: 0 }), {
    message: /batchSize must be a positive integer/,
  });
  await t.throwsAsync(dna.policyReport({ policy: {} as dna.PolicySource, data }), {
    instanceOf: TypeError,
    message: /policy must be a PolicyNetwork/,
  });
  await t.throwsAsync(
    dna.policyReport({ policy, data: { ...data, labels: Int32Array.from(data.labels, (label) => label * 2) } }),
    { message: /outside 0\.\.2/ },
  );
  const wrongSpace = { ...policy, searchSpace: { ops, subPolicies: space.subPolicies.slice(0, 4) } };
  await t.throwsAsync(dna.policyReport({ policy: wrongSpace, data }), {
    message: /logits are \[\d+, 10\], expected \[\d+, 4\]/,
  });
  const before = dna.liveTensors();
  // Rejects with the signal's reason (a DOMException, which ava does not count as an Error).
  const reason = await dna.policyReport({ policy, data, signal: AbortSignal.abort() }).then(
    () => undefined,
    (error: unknown) => error,
  );
  t.is((reason as DOMException)?.name, 'AbortError');
  t.is(dna.liveTensors(), before);
  policy.dispose();
});

// ---- Magnitude ranges ----

test.serial(
  "ranges: per-class mean widths, the range in the op's own values, and their section in report.md",
  async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-report-'));
    const base = handMadePolicy();
    const classes = grayData();
    // Widths from the image's intensity: class 0 (dark) gets narrow ranges, class 2 (bright) wide ones.
    const policy: dna.PolicySource = {
      searchSpace: space,
      forward: (images) =>
        tidy(() => {
          const outputs = base.forward(images);
          const B = images.shape[0];
          const u = images.mean([1, 2, 3]).reshape([B, 1, 1]);
          return {
            ...outputs,
            m: dna.full([B, S, 2], 0.5),
            width: u.mul(0.9).add(0.05).expand([B, S, 2]).contiguous(),
          };
        }),
    };
    const report = await dna.policyReport({ policy, data: classes, batchSize: 4 });
    t.is(report.magnitudes, 'range');
    const rotate = report.searchSpace.ops.indexOf('Rotate');
    const widths = report.perClass.map((group) => group.ops[rotate].meanWidth!);
    t.true(widths[0] < widths[1] && widths[1] < widths[2], `widths by class: ${widths}`);
    // Every image of class 2 has width 0.9 u + 0.05: the mean, weighted by pi, lies within theirs.
    const bright = INTENSITIES[2].map((v) => (0.9 * v) / 255 + 0.05);
    t.true(widths[2] >= Math.min(...bright) - 1e-6 && widths[2] <= Math.max(...bright) + 1e-6, `${widths[2]}`);
    const group = report.perClass[2];
    const text = dna.rangeText(report, group.ops[rotate])!;
    t.is(text, `Rotate +0° ± ${((widths[2] / 2) * 60).toFixed(0)}°`);
    t.is(dna.rangeText(report, group.ops[report.searchSpace.ops.indexOf('Invert')]), null);
    const files = await dna.writePolicyReport(report, dir);
    const markdown = await readFile(files.markdown, 'utf8');
    t.regex(markdown, /## Magnitude ranges per class/);
    t.true(markdown.includes(text), 'the per-class range is in report.md');
    // A point policy has no widths and no range section.
    const point = await dna.policyReport({ policy: base, data: classes, batchSize: 4 });
    t.is(point.magnitudes, 'point');
    t.is(point.perClass[0].ops[rotate].meanWidth, null);
    base.dispose();
    await rm(dir, { recursive: true, force: true });
  },
);
