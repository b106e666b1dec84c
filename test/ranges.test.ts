// Magnitude ranges (SPEC 8): the reparameterised draw and its gradients (against the formula and,
// through the fused op with exact magnitude gradients, against central differences), the width
// entropy and its adaptive weight, the policy network's range head, and a search with ranges.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import * as dna from '../lib/index.js';
import { applySubPolicies } from '../lib/augment/fused.js';
import { assertClose, randomImages } from './helpers/gradient-reference.js';

const { Generator, tensor, tidy, rand } = dna;

const values = (x: dna.Tensor) => Array.from(x.data() as Float32Array);

test('drawMagnitudes: m = clamp(centre + width (u - 0.5)); gradients 1 and u - 0.5 where the clamp does not bind', (t) => {
  const centre = tensor([0.5, 0.1, 0.9, 0.3, 0.6, 0.05], [2, 3]).requireGrad();
  const width = tensor([0.4, 0.8, 0.6, 0.1, 1, 0.2], [2, 3]).requireGrad();
  const m = dna.drawMagnitudes(centre, width, new Generator(3));
  const u = values(rand([2, 3], { generator: new Generator(3) }));
  const c = values(centre);
  const w = values(width);
  const expected = c.map((ck, k) => Math.min(1, Math.max(0, ck + w[k] * (u[k] - 0.5))));
  values(m).forEach((v, k) => t.true(Math.abs(v - expected[k]) < 1e-6, `${v} vs ${expected[k]}`));
  m.sum().backward();
  const inside = expected.map((v) => v > 0 && v < 1);
  t.true(inside.includes(false) && inside.includes(true), 'the case has clamped and free draws');
  values(centre.grad!).forEach((g, k) => t.is(g, inside[k] ? 1 : 0));
  values(width.grad!).forEach((g, k) =>
    t.true(Math.abs(g - (inside[k] ? u[k] - 0.5 : 0)) < 1e-6, `width gradient ${g} at ${k}`),
  );
  t.throws(() => dna.drawMagnitudes(centre, tensor([0.5])), {
    message: /centre and width must be Tensors of one shape/,
  });
});

test("a range's width gets, through the fused op with exact gradients, (u - 0.5) times the magnitude's gradient; the last op's, the central difference", (t) => {
  // Rotate, ShearX, TranslateY and Contrast: ops whose exact derivative the kernel has.
  const space = dna.defaultSearchSpace();
  const pick = ['ShearX+Rotate', 'TranslateY+Contrast', 'Rotate+Contrast'].map((name) =>
    space.subPolicies.findIndex((_, s) => dna.subPolicyName(space, s) === name),
  );
  t.false(pick.includes(-1));
  const B = 3;
  const S = space.subPolicies.length;
  const images = randomImages([B, 3, 7, 6], 11);
  const c = tensor(pick, [B], { dtype: 'int64' }).oneHot(S).float();
  const b = dna.ones([B, S, 2]);
  const centre = rand([B, S, 2], { generator: new Generator(12) })
    .mul(0.4)
    .add(0.3);
  const width = rand([B, S, 2], { generator: new Generator(13) })
    .mul(0.3)
    .add(0.2);
  const grad = dna.randn([B, 3, 7, 6], { generator: new Generator(14) });
  // The same generator state gives the same u and the same kernel noise on every evaluation.
  const loss = (cv: dna.Tensor, w: dna.Tensor) =>
    tidy(() => {
      const generator = new Generator(15);
      const m = dna.drawMagnitudes(cv, w, generator);
      return applySubPolicies(images, c, b, m, { generator, magnitudeGradient: 'exact' }).mul(grad).sum();
    });
  const centreLeaf = centre.detach().requireGrad();
  const widthLeaf = width.detach().requireGrad();
  loss(centreLeaf, widthLeaf).backward();
  const dCentre = values(centreLeaf.grad!);
  const dWidth = values(widthLeaf.grad!);
  const u = values(rand([B, S, 2], { generator: new Generator(15) }));
  // Every slot: the reparameterisation's chain rule over the op's rule (SPEC 1.4, exact).
  dWidth.forEach((g, k) => t.true(Math.abs(g - (u[k] - 0.5) * dCentre[k]) < 1e-5, `slot ${k}: ${g}`));
  t.is(dWidth.filter((g) => g !== 0).length, 2 * B, 'only the selected sub-policies get a gradient');
  // The last op of each sub-policy: its rule is the true derivative, so central differences of the loss agree.
  const h = 1e-3;
  const actual: number[] = [];
  const expected: number[] = [];
  for (let i = 0; i < B; i++) {
    const k = (i * S + pick[i]) * 2 + 1;
    const shifted = (delta: number) => {
      const raw = values(width);
      raw[k] += delta;
      return loss(centre, tensor(raw, [B, S, 2])).item();
    };
    actual.push(dWidth[k]);
    expected.push((shifted(h) - shifted(-h)) / (2 * h));
  }
  t.true(
    expected.some((g) => Math.abs(g) > 1e-2),
    `the case moves the loss: ${expected.map((g) => g.toFixed(3))}`,
  );
  // Central differences straddle the kinks of bilinear sampling: as loose as the exact-gradient test of the op.
  assertClose(t, actual, expected, 2e-2, 'dL/dwidth of the last op');
  dna.dispose([images, c, b, centre, width, grad, centreLeaf, widthLeaf]);
});

test('widthEntropy: the mean log width over the slots with a magnitude, weighted by pi; adaptWidthWeight', (t) => {
  const space = dna.defaultSearchSpace();
  const S = space.subPolicies.length;
  const g = new Generator(21);
  const logits = dna.randn([2, S], { generator: g });
  const width = rand([2, S, 2], { generator: g }).mul(0.9).add(0.05).requireGrad();
  const outputs = { logits, p: dna.full([2, S, 2], 0.5), m: dna.full([2, S, 2], 0.5), width };
  const entropy = dna.widthEntropy(outputs, space);
  const pi = values(logits.softmax(1));
  const w = values(width);
  for (let i = 0; i < 2; i++) {
    let sum = 0;
    let weight = 0;
    space.subPolicies.forEach((pair, s) =>
      pair.forEach((o, slot) => {
        if (space.ops[o].range === null) return;
        sum += pi[i * S + s] * Math.log(w[(i * S + s) * 2 + slot]);
        weight += pi[i * S + s];
      }),
    );
    t.true(Math.abs(values(entropy)[i] - sum / weight) < 1e-5, `image ${i}: ${values(entropy)[i]} vs ${sum / weight}`);
  }
  entropy.sum().backward();
  t.truthy(width.grad);
  t.false(logits.requiresGrad);
  t.throws(() => dna.widthEntropy({ logits, p: outputs.p, m: outputs.m }, space), { message: /point magnitudes/ });

  const bounds = { floor: 0.3, ceiling: 0.9, weight: 0.01, rate: 2 };
  const adapt = (weight: number, entropy: number) =>
    tidy(() => dna.adaptWidthWeight(dna.full([], weight), dna.full([], entropy), bounds).item());
  t.is(adapt(1, Math.log(0.1)), 2);
  t.is(adapt(1, Math.log(0.95)), 0.5);
  t.is(adapt(1, Math.log(0.5)), 1);
  t.is(adapt(900, Math.log(0.1)), 1000);
});

test('PolicyNetwork with ranges: widths start at 0.5; each draw is a new magnitude inside centre +- width / 2', (t) => {
  const policy = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, magnitudes: 'range', seed: 2 });
  const images = rand([4, 1, 12, 12], { generator: new Generator(1) });
  const out = policy.forward(images);
  t.deepEqual(out.width!.shape, [4, 105, 2]);
  t.true(values(out.width!).every((w) => Math.abs(w - 0.5) < 1e-6));
  const first = values(policy.sample(images, { generator: new Generator(5) }).m);
  const second = values(policy.sample(images, { generator: new Generator(6) }).m);
  t.true(first.every((m) => m >= 0.25 - 1e-6 && m <= 0.75 + 1e-6));
  t.notDeepEqual(first, second);
  const point = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, seed: 2 });
  t.is(point.forward(images).width, undefined);
  t.deepEqual(values(point.sample(images, { generator: new Generator(5) }).m), values(point.forward(images).m));
  t.throws(() => new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, magnitudes: 'wide' as 'range' }), {
    message: /magnitudes must be 'point' or 'range', got 'wide'/,
  });
  policy.dispose();
  point.dispose();
});

async function searchData(n: number): Promise<dna.ImageDataset> {
  return dna.stratifiedSubset(await dna.datasets.fashionMnist({ split: 'train' }), n, 3);
}

test.serial(
  'a search with ranges: the weight grows while the widths are under the floor; resume gives the same policy',
  async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-ranges-'));
    const data = await searchData(120);
    const options = {
      train: data,
      classifier: dna.WRN_10_1,
      policy: dna.WRN_10_1,
      epochs: 2,
      batchSize: 40,
      seed: 4,
      magnitudes: 'range' as const,
      // Widths start at 0.5, under this floor: the weight must double every step.
      regularisers: { widthFloor: 0.9, widthCeiling: 1, widthWeight: 0.01, widthRate: 2 },
      settle: false,
    };
    const monitors: dna.SearchMonitor[] = [];
    const straight = await dna.search({
      ...options,
      outDir: path.join(dir, 'straight'),
      onProgress: (p) => p.monitor && monitors.push(p.monitor),
    });
    t.is(straight.steps, 6);
    t.is(monitors.length, 2);
    t.is(monitors[0].widthWeight, 0.01 * 2 ** 3);
    t.is(monitors[1].widthWeight, 0.01 * 2 ** 6);
    t.true(monitors[0].widthEntropy! < Math.log(0.9));

    const controller = new AbortController();
    const first = await dna.search({
      ...options,
      outDir: path.join(dir, 'resumed'),
      signal: controller.signal,
      onProgress: (p) => p.phase === 'epoch' && controller.abort(),
    });
    t.true(first.aborted);
    first.policy.dispose();
    const resumed = await dna.search({ ...options, outDir: path.join(dir, 'resumed'), resume: true });
    t.is(resumed.steps, 6);
    const images = dna.tidy(() =>
      tensor(data.images.slice(0, 4 * 784), [4, 1, 28, 28])
        .float()
        .div(255),
    );
    const a = tidy(() => values(straight.policy.forward(images).width!));
    const b = tidy(() => values(resumed.policy.forward(images).width!));
    t.deepEqual(a, b);
    await t.throwsAsync(() => dna.search({ ...options, magnitudes: 'point', outDir: undefined }), {
      message: /regularisers.widthFloor applies to magnitudes: 'range' only/,
    });
    await t.throwsAsync(() => dna.search({ ...options, regularisers: { widthFloor: 1.5 }, outDir: undefined }), {
      message: /regularisers.widthFloor must be a width in \(0, 1\], got 1.5/,
    });
    dna.dispose([images]);
    straight.policy.dispose();
    resumed.policy.dispose();
    await rm(dir, { recursive: true, force: true });
  },
);
