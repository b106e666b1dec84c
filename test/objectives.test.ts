// Search objectives (joint, bilevel, teacher), their regularisers and the collapse monitor.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import * as dna from '../lib/index.js';
import { searchStep, unrolledImageGradient, type SearchObjective, type StepSettings } from '../lib/dna/objectives.js';
import { invarianceCost } from '../lib/dna/score-function.js';
import { search } from '../lib/run/search.js';

const SIDE = 8;

/** Two classes told apart by brightness alone (dark and bright noise), 1x8x8. */
function brightnessClasses(count: number, seed: number): dna.ImageDataset {
  const size = SIDE * SIDE;
  const images = new Uint8Array(count * size);
  const labels = new Int32Array(count);
  let state = seed >>> 0;
  const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  for (let i = 0; i < count; i++) {
    labels[i] = i % 2;
    for (let k = 0; k < size; k++)
      images[i * size + k] = Math.round(255 * (labels[i] === 0 ? 0.05 + 0.3 * random() : 0.65 + 0.3 * random()));
  }
  return { name: 'brightness', images, labels, count, shape: [1, SIDE, SIDE], classes: ['dark', 'bright'] };
}

function space(names: string[]): dna.SearchSpace {
  const ops = names.map((name) => dna.findOp(name));
  return { ops, subPolicies: dna.subPolicies(ops) };
}

/** A small search's options on `data` over `searchSpace`: 6 epochs of batch 32, policy lr 0.02. */
function searchOptions(data: dna.ImageDataset, searchSpace: dna.SearchSpace, seed: number) {
  return {
    train: data,
    classifier: dna.WRN_10_1,
    policy: dna.WRN_10_1,
    searchSpace,
    epochs: 6,
    batchSize: 32,
    policyLr: 0.02,
    seed,
  };
}

/** A small search with objective 'invariance' and `regularisers`. */
function invarianceSearch(
  data: dna.ImageDataset,
  searchSpace: dna.SearchSpace,
  seed: number,
  regularisers: dna.Regularisers,
) {
  return search({ ...searchOptions(data, searchSpace, seed), objective: 'invariance', regularisers });
}

function batchOf(data: dna.ImageDataset, from: number, count: number) {
  const size = SIDE * SIDE;
  return {
    images: dna
      .tensor(data.images.slice(from * size, (from + count) * size), [count, 1, SIDE, SIDE])
      .float()
      .div(255),
    labels: dna.tensor(data.labels.slice(from, from + count), [count]).long(),
  };
}

/**
 * A small smooth classifier (tanh MLP) over 1x8x8 images: the finite-difference product is only
 * a good approximation where the loss is smooth in the weights, which ReLU networks are not
 * (their input gradient jumps wherever a unit switches).
 */
class SmoothModel {
  #params: Record<string, dna.Tensor>;
  constructor(generator: dna.Generator) {
    this.#params = {
      w1: dna
        .randn([12, SIDE * SIDE], { generator })
        .mul(0.3)
        .requireGrad(),
      b1: dna.randn([12], { generator }).mul(0.1).requireGrad(),
      w2: dna.randn([2, 12], { generator }).mul(0.5).requireGrad(),
    };
  }
  forward(x: dna.Tensor): dna.Tensor {
    const { w1, b1, w2 } = this.#params;
    return x.flatten(1).matmul(w1.transpose(0, 1)).add(b1).tanh().matmul(w2.transpose(0, 1));
  }
  // New handles to the same parameters (same autograd leaf), which callers dispose, as a Module's.
  parameters(): dna.Tensor[] {
    return Object.values(this.namedParameters());
  }
  namedParameters(): Record<string, dna.Tensor> {
    return Object.fromEntries(Object.entries(this.#params).map(([name, p]) => [name, p.to(p.device)]));
  }
  stateDict(): Record<string, dna.Tensor> {
    return Object.fromEntries(Object.entries(this.#params).map(([name, p]) => [name, p.detach().clone()]));
  }
  loadStateDict(dict: Record<string, dna.Tensor>): void {
    for (const name of Object.keys(this.#params))
      this.#params[name] = dna.keep(dict[name].detach().clone().requireGrad());
  }
}

test('bilevel: the finite-difference Hessian-vector product matches the exact second-order one', async (t) => {
  const gen = new dna.Generator(3);
  const data = brightnessClasses(32, 4);
  const model = new SmoothModel(gen);
  const lr = 0.5;
  const weightDecay = 1e-3;
  const train = batchOf(data, 0, 16);
  const validation = batchOf(data, 16, 16);
  const y = dna.rand([16, 1, SIDE, SIDE], { generator: gen });
  const before = model.stateDict();
  // The caller's training gradient at w, which the unrolled step reads and leaves in place.
  dna.tidy(() => dna.crossEntropy(model.forward(y), train.labels).backward());
  const gradients = () =>
    dna.tidy(() =>
      Object.fromEntries(Object.entries(model.namedParameters()).map(([name, p]) => [name, p.grad!.data()])),
    );
  const trainingGradient = gradients();
  const approximate = await unrolledImageGradient(
    model as unknown as dna.Module,
    y,
    train.labels,
    validation,
    lr,
    weightDecay,
  );
  t.deepEqual(gradients(), trainingGradient, 'the training gradient is left as it was');
  dna.tidy(() => {
    // Exact: v = dL_val/dw' at w' = w - lr * (g + wd * w), then -lr * d/dy <dL_train(w, y)/dw, v> by double backward.
    const params = model.namedParameters();
    const moved = Object.fromEntries(
      Object.entries(params).map(([name, p]) => [name, p.sub(p.grad!.add(p.mul(weightDecay)).mul(lr))]),
    );
    for (const p of Object.values(params)) p.zeroGrad();
    model.loadStateDict(moved);
    const shifted = model.namedParameters();
    dna.crossEntropy(model.forward(validation.images), validation.labels).backward();
    const v = Object.fromEntries(Object.entries(shifted).map(([name, p]) => [name, p.grad!.detach()]));
    model.loadStateDict(before);
    const current = model.namedParameters();
    const leaf = y.detach().requireGrad();
    dna.crossEntropy(model.forward(leaf), train.labels).backward(undefined, { createGraph: true });
    let inner = dna.zeros([]);
    for (const [name, p] of Object.entries(current)) inner = inner.add(p.grad!.mul(v[name]).sum());
    leaf.zeroGrad();
    inner.backward();
    const exact = leaf.grad!.mul(-lr);
    for (const p of Object.values(current)) p.zeroGrad();

    const norm = (x: dna.Tensor) => x.square().sum().sqrt().item();
    const error = norm(approximate.sub(exact)) / norm(exact);
    t.log(`relative error ${error.toExponential(2)}, |exact| ${norm(exact).toExponential(2)}`);
    t.true(norm(exact) > 0, 'the exact product is not zero');
    t.true(error < 0.02, `relative error ${error}`);
    // The model is left as it was found.
    const after = model.stateDict();
    for (const name of Object.keys(before)) t.deepEqual(after[name].data(), before[name].data(), name);
  });
});

for (const objective of dna.SEARCH_OBJECTIVES as readonly SearchObjective[]) {
  test(
    `${objective}: gradients reach the three policy heads, finite and non-zero, through the sampler and ` +
      `the fused op`,
    async (t) => {
      const data = brightnessClasses(32, 7);
      const searchSpace = space(['Rotate', 'Invert', 'Contrast']);
      const S = searchSpace.subPolicies.length;
      const policy = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, searchSpace, seed: 1 });
      const classifier = dna.wideResNet({ ...dna.WRN_10_1, classes: 2, inChannels: 1, seed: 2 });
      const teacher =
        objective === 'teacher'
          ? dna.wideResNet({ ...dna.WRN_10_1, classes: 2, inChannels: 1, seed: 2 }).eval()
          : undefined;
      const classifierOptimizer = dna.sgd(classifier, { lr: 0.1 });
      // lr 0: the step leaves the policy as it is, and its gradients stay readable.
      const policyOptimizer = dna.adam(policy, { lr: 0 });
      const settings: StepSettings = {
        objective,
        tau: 0.5,
        lambda: 0.5,
        cutout: 0,
        magnitudeGradient: 'straight-through',
        regularisers: {},
        lr: 0.1,
        weightDecay: 2e-4,
        teacherDecay: 0.9,
      };
      const generator = new dna.Generator(4);
      const batch = batchOf(data, 0, 16);
      const validation = batchOf(data, 16, 16);
      const result = await searchStep(
        { policy, classifier, classifierOptimizer, policyOptimizer, teacher },
        settings,
        { ...batch, validation },
        generator,
      );
      t.true(Number.isFinite(result.loss.item()));
      dna.dispose(result);
      const head = policy.network.namedParameters()['fc.bias'];
      const grad = Array.from(head.grad!.data() as Float32Array);
      const part = (from: number, to: number) => grad.slice(from, to);
      for (const [name, values] of [
        ['logits', part(0, S)],
        ['p', part(S, 3 * S)],
        ['m', part(3 * S, 5 * S)],
      ] as const) {
        t.true(values.every(Number.isFinite), `${name}: finite`);
        t.true(
          values.some((g) => g !== 0),
          `${name}: non-zero`,
        );
      }
      head.dispose();
      dna.dispose([batch.images, batch.labels, validation.images, validation.labels]);
      for (const x of [policy, classifier, teacher, classifierOptimizer, policyOptimizer]) x?.dispose();
    },
  );
}

test('each objective runs a search end to end; bilevel holds out half the subset', async (t) => {
  const data = brightnessClasses(64, 9);
  const searchSpace = space(['Rotate', 'Invert', 'Contrast']);
  for (const objective of dna.SEARCH_OBJECTIVES) {
    const result = await search({
      train: data,
      classifier: dna.WRN_10_1,
      policy: dna.WRN_10_1,
      searchSpace,
      epochs: 1,
      batchSize: 16,
      objective,
      seed: 1,
    });
    t.is(result.steps, objective === 'bilevel' ? 2 : 4, objective);
    t.truthy(result.monitor, objective);
    t.true(result.monitor!.totalApplyMass > 0);
    result.policy.dispose();
  }
  await t.throwsAsync(
    search({
      train: data,
      classifier: dna.WRN_10_1,
      policy: dna.WRN_10_1,
      epochs: 1,
      objective: 'adversarial' as 'joint',
    }),
    {
      message: /unknown objective 'adversarial' \(one of joint, bilevel, teacher, invariance\)/,
    },
  );
  await t.throwsAsync(
    search({ train: data, classifier: dna.WRN_10_1, policy: dna.WRN_10_1, epochs: 1, regularisers: { strength: -1 } }),
    {
      message: /regularisers\.strength must be a non-negative number, got -1/,
    },
  );
  await t.throwsAsync(
    search({
      train: data,
      classifier: dna.WRN_10_1,
      policy: dna.WRN_10_1,
      epochs: 1,
      regularisers: { entropy: 1 } as dna.Regularisers,
    }),
    {
      message: /unknown regulariser 'entropy'/,
    },
  );
});

test('the collapse monitor fires on a collapsing run; an entropy floor prevents the collapse', async (t) => {
  // AutoContrast destroys the brightness that tells the classes apart; under joint and a fast
  // policy optimiser, pi(x) falls onto one harmless sub-policy for every image.
  const data = brightnessClasses(256, 1);
  const searchSpace = space(['AutoContrast', 'TranslateX', 'ShearX']);
  const options = { ...searchOptions(data, searchSpace, 2), policyLr: 0.2 };
  const plain = await search(options);
  plain.policy.dispose();
  const { monitor } = plain;
  t.log(
    `joint: entropy of the mean pi ${monitor!.entropyOfMean.toFixed(3)} of ${monitor!.maxEntropy.toFixed(3)}; ` +
      `${plain.warnings.at(-1)}`,
  );
  t.true(monitor!.entropyOfMean < 0.1 * monitor!.maxEntropy);
  t.regex(
    monitor!.warning ?? '',
    /the policy has collapsed onto one sub-policy \(\w+\+\w+, entropy of the mean pi 0\.\d\d nats of 1\.10\)/,
  );
  t.true(plain.warnings.at(-1)!.startsWith('epoch 6: the policy has collapsed'));

  const floored = await search({ ...options, regularisers: { entropyFloor: 0.9, entropyWeight: 10 } });
  floored.policy.dispose();
  t.log(
    `entropy floor 0.9: mean entropy of pi(x) ${floored.monitor!.entropy.toFixed(3)}, warnings ` +
      `${floored.warnings.length}`,
  );
  t.true(floored.monitor!.entropy > 0.85);
  t.deepEqual(floored.warnings, []);
});

/** A short search over two brightness classes with photometric and geometric ops, whose pixel change the tests read. */
const pixelChangeSearch = () => ({
  train: brightnessClasses(256, 2),
  classifier: dna.WRN_10_1,
  policy: dna.WRN_10_1,
  searchSpace: space(['Brightness', 'Contrast', 'TranslateX', 'Rotate']),
  epochs: 4,
  batchSize: 32,
  policyLr: 0.05,
  seed: 4,
});

test('a strength target brings the pixel change of the sampled sub-policies toward it', async (t) => {
  const options = pixelChangeSearch();
  const target = 0.2;
  const plain = await search(options);
  plain.policy.dispose();
  const held = await search({ ...options, regularisers: { strength: target, strengthWeight: 50 } });
  held.policy.dispose();
  t.log(
    `mean pixel change: ${plain.monitor!.strength.toFixed(3)} without, ${held.monitor!.strength.toFixed(3)} with a ` +
      `target of ${target}`,
  );
  t.true(Math.abs(held.monitor!.strength - target) < 0.5 * Math.abs(plain.monitor!.strength - target));
});

test(
  'invariance with a strength target changes each image by about the target, with ops that ' + 'keep the label',
  async (t) => {
    // AutoContrast and Invert destroy the brightness that tells the classes apart; the shifts keep it.
    const data = brightnessClasses(256, 1);
    const searchSpace = space(['AutoContrast', 'Invert', 'TranslateX', 'ShearX']);
    const target = 0.15;
    const result = await invarianceSearch(data, searchSpace, 2, { strength: target, strengthWeight: 20 });
    result.policy.dispose();
    const { applyMass, strength } = result.monitor!;
    t.log(
      `apply mass ${JSON.stringify(Object.fromEntries(Object.entries(applyMass).map(([k, v]) => [k, +v.toFixed(3)])))}, strength ${strength.toFixed(3)}`,
    );
    t.true(applyMass.AutoContrast + applyMass.Invert < 0.05);
    t.true(applyMass.TranslateX + applyMass.ShearX > 0.8);
    t.true(Math.abs(strength - target) < 0.05);
  },
);

test('a change reward makes the sampled sub-policies change the images more', async (t) => {
  const options = { ...pixelChangeSearch(), objective: 'joint' as const };
  const plain = await search(options);
  plain.policy.dispose();
  const rewarded = await search({ ...options, regularisers: { changeReward: 5 } });
  rewarded.policy.dispose();
  t.log(
    `mean pixel change: ${plain.monitor!.strength.toFixed(3)} without, ${rewarded.monitor!.strength.toFixed(3)} ` +
      `with a reward of 5 per unit`,
  );
  t.true(rewarded.monitor!.strength > 1.5 * plain.monitor!.strength);
});

test('invariance with the prior: the policy stays broad but drops the op that destroys the label', async (t) => {
  // Invert turns a dark image bright: it swaps the classes, the other ops keep them.
  const data = brightnessClasses(256, 5);
  const searchSpace = space(['Invert', 'TranslateX', 'Rotate', 'Sharpness']);
  const result = await invarianceSearch(data, searchSpace, 3, { prior: 1, tolerance: 0.1 });
  result.policy.dispose();
  const { applyMass, entropy, maxEntropy } = result.monitor!;
  t.log(`apply mass ${JSON.stringify(applyMass)}, entropy ${entropy.toFixed(3)} of ${maxEntropy.toFixed(3)}`);
  const kept = (applyMass.TranslateX + applyMass.Rotate + applyMass.Sharpness) / 3;
  t.true(applyMass.Invert < 0.5 * kept);
  t.true(kept > 0.2);
  t.true(entropy > 0.8 * maxEntropy);
  await t.throwsAsync(
    () =>
      search({
        train: data,
        classifier: dna.WRN_10_1,
        policy: dna.WRN_10_1,
        epochs: 1,
        regularisers: { tolerance: 1 },
      }),
    {
      message: "search: regularisers.tolerance applies to objective: 'invariance' only",
    },
  );
  await t.throwsAsync(
    () =>
      search({
        ...searchOptions(data, searchSpace, 0),
        objective: 'invariance',
        regularisers: { tolerance: 1, riseTarget: 1 },
      }),
    { message: 'search: regularisers.tolerance and riseTarget are two costs of one rise: give one' },
  );
  await t.throwsAsync(
    () =>
      search({
        ...searchOptions(data, searchSpace, 0),
        objective: 'invariance',
        regularisers: { prior: 1, shortfallWeight: 0.5 },
      }),
    { message: 'search: regularisers.shortfallWeight weighs a rise short of riseTarget: give riseTarget too' },
  );
  await t.throwsAsync(
    () =>
      search({ train: data, classifier: dna.WRN_10_1, policy: dna.WRN_10_1, epochs: 1, regularisers: { prior: -1 } }),
    {
      message: /regularisers.prior must be a non-negative number, got -1/,
    },
  );
});

test('invarianceCost: the loss rise, less the tolerance (never below 0) or off the rise target (a shortfall weighted), plus the change terms', (t) => {
  const augmented = dna.tensor([2, 0.5, 1.2, 3], [4]);
  const clean = dna.tensor([0.5, 0.5, 0.1, 0], [4]);
  const change = dna.tensor([0.1, 0.2, 0.3, 0.4], [4]);
  const cost = (r: Parameters<typeof invarianceCost>[3]) =>
    Array.from(invarianceCost(augmented, clean, change, r).data() as Float32Array);
  const close = (a: number[], b: number[]) => a.every((v, k) => Math.abs(v - b[k]) < 1e-6);
  t.true(close(cost({}), [1.5, 0, 1.1, 3]));
  t.true(close(cost({ tolerance: 1.2 }), [0.3, 0, 0, 1.8]));
  t.true(close(cost({ tolerance: 1.2, changeReward: 2 }), [0.1, -0.4, -0.6, 1]));
  t.true(close(cost({ strength: 0.2, strengthWeight: 10 }), [1.6, 0, 1.2, 3.4]));
  t.true(close(cost({ riseTarget: 1 }), [0.5, 1, 0.1, 2]));
  t.true(close(cost({ riseTarget: 1, changeReward: 1 }), [0.4, 0.8, -0.2, 1.6]));
  t.true(close(cost({ riseTarget: 1, shortfallWeight: 0.5 }), [0.5, 0.5, 0.1, 2]));
  t.true(close(cost({ riseTarget: 1.2, shortfallWeight: 0 }), cost({ tolerance: 1.2 })));
  t.true(close(cost({ riseTarget: 1, shortfallWeight: 1 }), cost({ riseTarget: 1 })));
  dna.dispose([augmented, clean, change]);
});

test('invariance with several draws per image: a search runs and records them; other objectives and bad counts are refused', async (t) => {
  const data = brightnessClasses(64, 9);
  const searchSpace = space(['Invert', 'TranslateX', 'Rotate']);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dna-draws-'));
  try {
    const result = await search({
      ...searchOptions(data, searchSpace, 1),
      epochs: 1,
      objective: 'invariance',
      regularisers: { prior: 1 },
      draws: 3,
      outDir: dir,
    });
    result.policy.dispose();
    t.is(result.steps, 2);
    t.true(Number.isFinite(result.monitor!.entropy));
    // Resumed with another count of draws, or the default, the search refuses by name.
    for (const draws of [2, undefined])
      await t.throwsAsync(
        () =>
          search({
            ...searchOptions(data, searchSpace, 1),
            epochs: 1,
            objective: 'invariance',
            regularisers: { prior: 1 },
            draws,
            outDir: dir,
            resume: true,
          }),
        { message: new RegExp(`other settings: draws 3 \\(now ${draws ?? 1}\\)`) },
      );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await t.throwsAsync(() => search({ ...searchOptions(data, searchSpace, 0), epochs: 1, draws: 2 }), {
    message: "search: draws (several sub-policies per image) applies to objective: 'invariance' only",
  });
  for (const draws of [0, 1.5, 65])
    await t.throwsAsync(
      () => search({ ...searchOptions(data, searchSpace, 0), epochs: 1, objective: 'invariance', draws }),
      { message: `search: draws must be an integer in 1..64, got ${draws}` },
    );
});
