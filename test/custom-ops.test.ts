// Custom transforms: the example library (examples/custom-op, built here with CMake) and
// TypeScript transforms in a search space like the built-in ops: values against a reference,
// gathering per op, the gradient rules of SPEC 1.4, a search, policy files, and bad input.
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import * as dna from '../lib/index.js';
import { applyOp, applySubPolicies } from '../lib/augment/fused.js';
import {
  OPS,
  defaultSearchSpace,
  subPolicies,
  type CustomOpSpec,
  type OpSpec,
  type SearchSpace,
} from '../lib/augment/search-space.js';
import {
  type Image,
  imageOf,
  maxAbsDiff,
  mapImage,
  pixelAt,
  referenceBlend,
  referenceOp,
} from './helpers/augment-reference.js';
import {
  type ReferenceTransform,
  NOISE_SEED,
  assertClose,
  fusedGradients,
  gradientCase,
  randomImages,
  relaxedGradients,
} from './helpers/gradient-reference.js';

const { tensor, Generator, tidy } = dna;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE_LIBRARY = path.join(root, 'build/examples/custom-op/libdna_example_ops.so');
const TEST_LIBRARY = path.join(root, 'build/test/custom-ops/libdna_test_ops.so');

// Builds a CMake project with scripts/build-op-library.mjs (incremental, ccache when present).
function buildOpLibrary(source: string, build: string): void {
  const result = spawnSync(
    process.execPath,
    [path.join(root, 'scripts/build-op-library.mjs'), path.join(root, source), path.join(root, build)],
    {
      encoding: 'utf8',
    },
  );
  if (result.status !== 0) throw new Error(`building ${source} failed:\n${result.stdout}\n${result.stderr}`);
}

let vignette: CustomOpSpec;
let gamma: CustomOpSpec;

test.before(() => {
  buildOpLibrary('examples/custom-op', 'build/examples/custom-op');
  buildOpLibrary('test/fixtures/custom-ops', 'build/test/custom-ops');
  dna.loadOpLibrary(EXAMPLE_LIBRARY);
  vignette = dna.registerOp({ name: 'Vignette', op: 'dna_example::vignette', range: [0, 1], identityAt: 0 });
  gamma = dna.registerOp({
    name: 'Gamma',
    transform: (images, values) => images.pow(values.reshape([-1, 1, 1, 1])),
    range: [0.5, 2],
    identityAt: 1 / 3,
  });
});

// ---- References, written from the ops' definitions ----

// examples/custom-op/vignette.h: each pixel times 1 - strength * r^2 / 2 (clamped at 0), r^2 the squared
// distance from the centre in units of the half-sizes.
function vignetteReference(img: Image, strength: number): Image {
  const cy = (img.height - 1) / 2;
  const cx = (img.width - 1) / 2;
  return mapImage(img, (c, y, x) => {
    const dy = cy > 0 ? (y - cy) / cy : 0;
    const dx = cx > 0 ? (x - cx) / cx : 0;
    return pixelAt(img, c, y, x) * Math.max(0, 1 - strength * 0.5 * (dx * dx + dy * dy));
  });
}

const referenceTransform: ReferenceTransform = (op, v, x, draws) => {
  if (op.custom === 'dna_example::vignette') return vignetteReference(x, v);
  if (op.custom === 'Gamma') return mapImage(x, (c, y, px) => pixelAt(x, c, y, px) ** v);
  return referenceOp(op.name, v, x, draws);
};

function spaceOf(ops: OpSpec[]): SearchSpace {
  return { ops, subPolicies: subPolicies(ops) };
}

const builtin = (name: string) => OPS.find((op) => op.name === name)!;

// ---- Values ----

test('loadOpLibrary returns the operators a library registers; loading it again does nothing', (t) => {
  t.deepEqual(dna.loadOpLibrary(EXAMPLE_LIBRARY), ['dna_example::vignette']);
  t.deepEqual(dna.loadOpLibrary(path.relative(process.cwd(), EXAMPLE_LIBRARY)), ['dna_example::vignette']);
  t.deepEqual(vignette, { name: 'Vignette', custom: 'dna_example::vignette', range: [0, 1], identityAt: 0 });
});

test('the example op matches its reference, each image with its own magnitude', (t) => {
  for (const shape of [
    [5, 3, 7, 9],
    [3, 1, 6, 5],
    [2, 3, 1, 4],
  ]) {
    const images = randomImages(shape, 11);
    const magnitudes = Array.from({ length: shape[0] }, (_, i) => (i + 0.5) / shape[0]);
    const out = tidy(() => applyOp(images, 'Vignette', tensor(magnitudes)).data() as Float32Array);
    const input = images.data() as Float32Array;
    for (let i = 0; i < shape[0]; i++) {
      const expected = vignetteReference(imageOf(input, shape, i), magnitudes[i]);
      const error = maxAbsDiff(imageOf(out, shape, i).data, expected.data);
      t.true(error < 1e-6, `shape [${shape.join(', ')}], image ${i}: max error ${error}`);
    }
    const unchanged = tidy(() => applyOp(images, vignette, 0).sub(images).abs().max().item());
    t.is(unchanged, 0, 'identity at m = 0');
    images.dispose();
  }
});

test('a TypeScript transform applies like an op of the library; uint8 images are scaled', (t) => {
  const images = randomImages([4, 3, 5, 5], 12);
  tidy(() => {
    const out = applyOp(images, gamma, tensor([0, 0.25, 0.5, 1])).data() as Float32Array;
    const input = images.data() as Float32Array;
    [0, 0.25, 0.5, 1].forEach((m, i) => {
      const image = imageOf(input, [4, 3, 5, 5], i);
      const expected = mapImage(image, (c, y, x) => pixelAt(image, c, y, x) ** (0.5 + 1.5 * m));
      t.true(maxAbsDiff(imageOf(out, [4, 3, 5, 5], i).data, expected.data) < 1e-6);
    });
    const bytes = images.mul(255).round().toDtype('uint8');
    t.true(
      applyOp(bytes, 'Vignette', 0.7)
        .sub(applyOp(images, 'Vignette', 0.7))
        .abs()
        .max()
        .item() < 1e-6,
    );
  });
  images.dispose();
});

// ---- Sub-policies with custom ops ----

// Rotate (exact gradient), Invert (no magnitude), Cutout (random), the library op, the TS op.
const mixedSpace = () =>
  spaceOf([builtin('Rotate'), builtin('Invert'), vignette, gamma, builtin('Contrast'), builtin('Cutout')]);

test('sub-policies with custom ops: op 1 then op 2, each blended by its bit, match the reference', (t) => {
  const space = mixedSpace();
  const S = space.subPolicies.length;
  for (const seed of [1, 2]) {
    const k = gradientCase(seed, 16, [3, 6, 5], S);
    const out = tidy(
      () =>
        applySubPolicies(k.images, k.c, k.b, k.m, {
          searchSpace: space,
          generator: new Generator(NOISE_SEED),
        }).data() as Float32Array,
    );
    const noise = tidy(() => dna.rand([16, 2, 2], { generator: new Generator(NOISE_SEED) }).data() as Float32Array);
    const [input, c, b, m] = [k.images, k.c, k.b, k.m].map((x) => x.data() as Float32Array);
    for (let i = 0; i < 16; i++) {
      const s = c.subarray(i * S, (i + 1) * S).indexOf(1);
      let x = imageOf(input, k.images.shape, i);
      for (let l = 0; l < 2; l++) {
        const op = space.ops[space.subPolicies[s][l]];
        const [lo, hi] = op.range ?? [0, 0];
        const y = referenceTransform(op, lo + m[(i * S + s) * 2 + l] * (hi - lo), x, [
          noise[(i * 2 + l) * 2],
          noise[(i * 2 + l) * 2 + 1],
        ]);
        x = referenceBlend(y, x, b[(i * S + s) * 2 + l]);
      }
      const error = maxAbsDiff(imageOf(out, k.images.shape, i).data, x.data);
      t.true(
        error < 2e-5,
        `seed ${seed}, image ${i} ` +
          `(${space.ops[space.subPolicies[s][0]].name}+${space.ops[space.subPolicies[s][1]].name}): max error ${error}`,
      );
    }
    dna.dispose([k.images, k.c, k.b, k.m, k.grad]);
  }
});

for (const [name, options] of [
  ['identity baseline, straight-through magnitudes', {}],
  ['DADA baseline', { dada: true }],
  ['exact magnitudes for the built-in ops', { exact: true }],
] as const) {
  test(`gradients into c, b and m with custom ops follow SPEC 1.4 (${name})`, (t) => {
    const space = mixedSpace();
    for (const seed of [3, 4, 5]) {
      const k = gradientCase(seed, 12, [3, 6, 5], space.subPolicies.length);
      const fused = fusedGradients(k, {
        searchSpace: space,
        unselectedGradient: 'dada' in options ? 'dada' : 'identity',
        magnitudeGradient: 'exact' in options ? 'exact' : 'straight-through',
      });
      t.true(fused.connected, 'the output is connected to the policy');
      const expected = relaxedGradients(k, { ...options, space, transform: referenceTransform });
      assertClose(t, fused.c, expected.c, 1e-4, `seed ${seed} dL/dc`);
      assertClose(t, fused.b, expected.b, 1e-4, `seed ${seed} dL/db`);
      // Central differences straddle the kinks of bilinear sampling: looser with `exact`.
      assertClose(t, fused.m, expected.m, 'exact' in options ? 2e-2 : 1e-4, `seed ${seed} dL/dm`);
      dna.dispose([k.images, k.c, k.b, k.m, k.grad]);
    }
  });
}

test('a custom op that no image selects leaves the fused result and its gradients unchanged', (t) => {
  const fusedSpace = defaultSearchSpace();
  const space: SearchSpace = { ops: [...fusedSpace.ops, vignette], subPolicies: [...fusedSpace.subPolicies, [0, 15]] };
  const k = gradientCase(6, 8, [3, 7, 6]);
  for (const magnitudeGradient of ['straight-through', 'exact'] as const) {
    const reference = fusedGradients(k, { magnitudeGradient });
    const widened = tidy(() => {
      const pad = (x: dna.Tensor) => dna.cat([x.detach(), dna.zeros([8, 1, ...x.shape.slice(2)])], 1);
      const c = pad(k.c).requireGrad();
      const b = pad(k.b).requireGrad();
      const m = pad(k.m).requireGrad();
      const run = (searchSpace: SearchSpace) =>
        applySubPolicies(k.images, c, b, m, { searchSpace, generator: new Generator(NOISE_SEED), magnitudeGradient });
      const out = run(space);
      const fused = tidy(() => applySubPolicies(k.images, k.c, k.b, k.m, { generator: new Generator(NOISE_SEED) }));
      const difference = out.sub(fused).abs().max().item();
      out.mul(k.grad).sum().backward();
      const read = (x: dna.Tensor, keep: number) => Array.from(x.grad!.narrow(1, 0, keep).data() as Float32Array);
      return { difference, c: read(c, 105), b: read(b, 105), m: read(m, 105) };
    });
    t.true(widened.difference < 1e-6, `max |difference| ${widened.difference}`);
    assertClose(t, widened.c, reference.c, 1e-5, `${magnitudeGradient} dL/dc`);
    assertClose(t, widened.b, reference.b, 1e-5, `${magnitudeGradient} dL/db`);
    assertClose(t, widened.m, reference.m, 1e-5, `${magnitudeGradient} dL/dm`);
  }
  dna.dispose([k.images, k.c, k.b, k.m, k.grad]);
});

test('each custom op is called once per slot on the whole batch; the images whose sub-policy selects it keep its result', (t) => {
  const calls: number[][] = [];
  const halve = dna.registerOp({
    name: 'Halve',
    transform: (images, values) => {
      calls.push(Array.from(values.data() as Float32Array));
      return images.mul(0.5);
    },
    range: [0, 100],
  });
  // Sub-policies: 0 = Invert+Halve, 1 = Invert+Rotate, 2 = Halve+Rotate.
  const space = spaceOf([builtin('Invert'), halve, builtin('Rotate')]);
  const chosen = [0, 2, 1, 0, 2, 1];
  const images = randomImages([6, 1, 4, 4], 3);
  tidy(() => {
    const c = tensor(new Int32Array(chosen), [6]).long().oneHot(3).float();
    const b = dna.ones([6, 3, 2]);
    const m = dna.arange(0, 36).float().reshape([6, 3, 2]).div(100);
    const out = applySubPolicies(images, c, b, m, { searchSpace: space }).data() as Float32Array;
    // Slot 1 keeps it for images 1 and 4 (sub-policy 2), slot 2 for images 0 and 3 (sub-policy 0);
    // each call sees every image, with lo + m * (hi - lo) = 100 m of the image's own magnitude for
    // the slot, m = (6i + 2s + l) / 100 (s the image's sub-policy), so no index is read on the host.
    t.deepEqual(
      calls.map((values) => values.map(Math.round)),
      [
        [0, 10, 14, 18, 28, 32],
        [1, 11, 15, 19, 29, 33],
      ],
    );
    const input = images.data() as Float32Array;
    for (const i of [0, 3]) {
      const expected = imageOf(input, [6, 1, 4, 4], i).data.map((value) => (1 - value) * 0.5);
      t.true(maxAbsDiff(imageOf(out, [6, 1, 4, 4], i).data, expected) < 1e-6, `image ${i}`);
    }
  });
  images.dispose();
});

// ---- Search, policy files, training ----

test.serial('a tiny search selects the custom ops, trains through them, and its policy file loads back', async (t) => {
  const space = spaceOf([vignette, gamma, builtin('Rotate')]);
  const S = space.subPolicies.length;
  const data = dna.stratifiedSubset(await dna.datasets.fashionMnist({ split: 'train' }), 64, 5);
  const images = tidy(() =>
    tensor(data.images.slice(0, 16 * 784), [16, 1, 28, 28])
      .float()
      .div(255),
  );

  // One step by hand: every image selects a sub-policy with a custom op; gradients reach m of
  // the custom op's slot and the policy network's weights.
  const policy = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, searchSpace: space, seed: 1 });
  tidy(() => {
    const { c, b, m } = policy.sample(images, { generator: new Generator(2) });
    const out = applySubPolicies(images, c, b, m, { searchSpace: space, generator: new Generator(3) });
    out.square().mean().backward();
    const selected = Array.from(c.argmax(1).data() as BigInt64Array, Number);
    const bits = b.data() as Float32Array;
    let vignetteSlots = 0;
    selected.forEach((s, i) => {
      space.subPolicies[s].forEach((opIndex, l) => {
        if (space.ops[opIndex] === vignette && bits[(i * S + s) * 2 + l] > 0.5) vignetteSlots += 1;
      });
    });
    t.true(vignetteSlots > 0, 'some images apply the library op');
    const moved = policy.parameters().filter((p) => p.grad !== undefined && p.grad.abs().sum().item() > 0);
    t.true(moved.length > 0, 'the policy network receives gradients');
  });
  policy.dispose();

  const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-custom-ops-'));
  const result = await dna.search({
    train: data,
    classifier: dna.WRN_10_1,
    policy: dna.WRN_10_1,
    epochs: 1,
    batchSize: 32,
    seed: 4,
    searchSpace: space,
    outDir: dir,
  });
  t.is(result.steps, 2);
  result.policy.dispose();
  const loaded = await dna.loadPolicy(result.policyFile!);
  t.deepEqual(
    loaded.searchSpace.ops.map((op) => op.custom ?? op.name),
    ['dna_example::vignette', 'Gamma', 'Rotate'],
  );
  const a = tidy(() => Array.from(loaded.augment(images, { generator: new Generator(1) }).data() as Float32Array));
  const b = tidy(() => Array.from(loaded.augment(images, { generator: new Generator(1) }).data() as Float32Array));
  t.deepEqual(a, b);
  t.notDeepEqual(a, Array.from(images.data() as Float32Array));

  // Training with the searched policy as the augmentation.
  let augmented = 0;
  const trained = await dna.train({
    train: data,
    model: dna.WRN_10_1,
    epochs: 1,
    batchSize: 32,
    augmentation: (x, options) => {
      augmented += x.shape[0];
      return loaded.augment(x, options);
    },
  });
  t.is(trained.steps, 2);
  t.is(augmented, 64);
  trained.model.dispose();
  loaded.dispose();
  images.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test.serial(
  'a policy file whose custom op is not available in this process is refused with a clear error',
  async (t) => {
    const ghost: CustomOpSpec = { name: 'Ghost', custom: 'dna_ghost::ghost', range: [0, 1], identityAt: null };
    const unregistered: CustomOpSpec = { name: 'Unregistered', custom: 'Unregistered', range: null, identityAt: null };
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-custom-ops-'));
    const data = dna.stratifiedSubset(await dna.datasets.fashionMnist({ split: 'train' }), 20, 0);
    for (const op of [ghost, unregistered]) {
      const space = spaceOf([builtin('Invert'), op]);
      const policy = new dna.PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, searchSpace: space });
      const file = path.join(dir, `${op.name}.dna`);
      await dna.savePolicy(file, policy, { dataset: 'none', classes: [], seed: 0, steps: 0, seconds: 0 });
      policy.dispose();
      await t.throwsAsync(dna.loadPolicy(file), {
        message: new RegExp(
          `${op.name}\\.dna: the search space uses the custom op '${op.name}', which is not available in this process`,
        ),
      });
      await t.throwsAsync(
        dna.search({ train: data, classifier: dna.WRN_10_1, policy: dna.WRN_10_1, epochs: 1, searchSpace: space }),
        {
          message: /^search: the search space uses the custom op/,
        },
      );
      const images = dna.zeros([1, 1, 4, 4]);
      t.throws(
        () =>
          applySubPolicies(images, dna.ones([1, 1]), dna.ones([1, 1, 2]), dna.ones([1, 1, 2]), { searchSpace: space }),
        {
          message:
            op === ghost ? /no operator dna_ghost::ghost is registered/ : /no TypeScript transform 'Unregistered'/,
        },
      );
      images.dispose();
    }
    rmSync(dir, { recursive: true, force: true });
  },
);

test('the example script registers both transforms and runs a short search', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-custom-ops-'));
  const { stdout } = await promisify(execFile)(process.execPath, [
    path.join(root, 'dist/examples/custom-op/search.js'),
    EXAMPLE_LIBRARY,
    dir,
  ]);
  t.regex(stdout, /operators: dna_example::vignette/);
  t.regex(stdout, /step 4\/4: loss/);
  t.true(existsSync(path.join(dir, 'policy.dna')));
  rmSync(dir, { recursive: true, force: true });
});

test(
  'the CLI: dna search --op-library --custom-op adds the op; dna report needs the library to read ' + 'the policy',
  async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-custom-ops-cli-'));
    const cli = path.join(root, 'dist/bin/dna.js');
    const run = (...args: string[]) => promisify(execFile)(process.execPath, [cli, ...args]);
    const common = ['--data', 'fashion-mnist', '--subset', '100'];
    const { stdout } = await run(
      'search',
      ...common,
      '--model',
      'wrn-10-1',
      '--epochs',
      '1',
      '--batch-size',
      '50',
      '--op-library',
      EXAMPLE_LIBRARY,
      '--custom-op',
      'dna_example::vignette',
      '--out',
      dir,
      '--json',
    );
    const policyFile = JSON.parse(stdout.trim().split('\n').at(-1)!).policyFile;
    const error = await t.throwsAsync(run('report', '--policy', policyFile, ...common));
    t.regex(
      String((error as { stderr?: string }).stderr),
      /uses the custom op 'vignette', which is not available in this process/,
    );
    const report = JSON.parse(
      (await run('report', '--policy', policyFile, ...common, '--op-library', EXAMPLE_LIBRARY, '--json')).stdout,
    );
    const json = JSON.parse(readFileSync(report.json, 'utf8'));
    t.true(json.searchSpace.ops.includes('vignette'));
    t.is(json.searchSpace.subPolicies.length, 120); // 16 ops: 15 built-in and the custom one
    rmSync(dir, { recursive: true, force: true });
  },
);

// ---- Bad input ----

test('bad libraries give an Error that names the problem, and the process goes on', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-custom-ops-'));
  t.throws(() => dna.loadOpLibrary(path.join(dir, 'missing.so')), {
    message: /loadOpLibrary: no such file: .*missing\.so/,
  });
  const text = path.join(dir, 'not-a-library.so');
  writeFileSync(text, 'not an ELF file\n'.repeat(100));
  t.throws(() => dna.loadOpLibrary(text), { message: /not-a-library\.so.*invalid ELF header/ });
  // A second library that registers the namespace again would abort inside dlopen; the trial
  // load in a child process turns that into an Error.
  const copy = path.join(dir, 'copy.so');
  copyFileSync(EXAMPLE_LIBRARY, copy);
  t.throws(() => dna.loadOpLibrary(copy), {
    message: /copy\.so aborts .*Only a single TORCH_LIBRARY can be used to register the namespace dna_example/,
  });
  t.throws(() => dna.loadOpLibrary(''), { message: /non-empty string/ });
  rmSync(dir, { recursive: true, force: true });
  // Strength 1 on a 3x3 image: the centre kept, the edges halved, the corners black.
  t.is(
    tidy(() =>
      applyOp(dna.ones([1, 1, 3, 3]), vignette, 1)
        .sum()
        .item(),
    ),
    1 + 4 * 0.5,
  );
});

test('operators with the wrong schema or results give an Error that names the operator', (t) => {
  const added = dna.loadOpLibrary(TEST_LIBRARY);
  t.true(added.includes('dna_test::wrong_shape'));
  t.throws(() => dna.registerOp({ name: 'Nope', op: 'dna_example::nope' }), {
    message: /registerOp\('Nope'\): no operator dna_example::nope is registered/,
  });
  t.throws(() => dna.registerOp({ name: 'Nope', op: 'vignette' }), {
    message: /'vignette' is not an operator name; expected 'namespace::name'/,
  });
  for (const op of ['one_argument', 'two_results', 'number_magnitude']) {
    t.throws(() => dna.registerOp({ name: 'Bad', op: `dna_test::${op}` }), {
      message: new RegExp(
        `operator dna_test::${op} has the schema .*, but a transform must be dna_test::${op}\\(Tensor images, ` +
          `Tensor magnitude\\) -> Tensor`,
      ),
    });
  }
  t.throws(() => dna.registerOp({ name: 'Bad', op: 'dna_test::in_place' }), {
    message: /writes its argument 'images' in place/,
  });

  const images = randomImages([2, 3, 4, 4], 1);
  const run = (op: string) => () => applyOp(images, dna.registerOp({ name: `Test ${op}`, op: `dna_test::${op}` }), 0.5);
  t.throws(run('wrong_shape'), {
    message: /dna_test::wrong_shape returned shape \[2, 3, 4, 3\] for images of shape \[2, 3, 4, 4\]/,
  });
  t.throws(run('scalar_out'), { message: /dna_test::scalar_out returned shape \[\]/ });
  t.throws(run('wrong_dtype'), {
    message: /dna_test::wrong_dtype returned float64; a transform must return float32 images/,
  });
  t.throws(run('fails'), { message: /this op always fails/ });
  t.throws(run('throws'), { message: /a plain C\+\+ exception/ });
  t.throws(run('cuda_only'), { message: /Could not run 'dna_test::cuda_only' with arguments from the 'CPU' backend/ });
  // Inside a sub-policy too, and nothing leaks.
  const space = spaceOf([builtin('Invert'), dna.registerOp({ name: 'Wrong shape', op: 'dna_test::wrong_shape' })]);
  const policy = [dna.ones([2, 1]), dna.ones([2, 1, 2]), dna.ones([2, 1, 2])] as const;
  const apply = () => applySubPolicies(images, ...policy, { searchSpace: space });
  t.throws(apply, { message: /wrong_shape returned shape/ });
  const before = dna.liveTensors(); // after the first call: the space's kernel tables are made once
  t.throws(apply, { message: /wrong_shape returned shape/ });
  t.is(dna.liveTensors(), before, 'no tensor leaks from a failed call');
  dna.dispose([...policy]);
  t.is(
    tidy(() => applyOp(images, vignette, 0).sub(images).abs().max().item()),
    0,
    'the process goes on',
  );
  images.dispose();
});

test('TypeScript transforms and op definitions are checked', (t) => {
  const images = randomImages([2, 3, 4, 4], 2);
  const transform = (f: dna.TransformFunction) => () =>
    applyOp(images, dna.registerOp({ name: 'Checked', transform: f }), 0.5);
  t.throws(
    transform((x) => x.narrow(2, 0, 2)),
    { message: /custom op 'Checked': returned shape \[2, 3, 2, 4\] for images of shape \[2, 3, 4, 4\]/ },
  );
  t.throws(
    transform((x) => x.toDtype('float64')),
    { message: /custom op 'Checked': returned float64/ },
  );
  t.throws(
    transform(() => 3 as unknown as dna.Tensor),
    { message: /custom op 'Checked': the transform must return a Tensor/ },
  );
  t.throws(
    transform(() => {
      throw new Error('my transform failed');
    }),
    { message: /my transform failed/ },
  );

  const define = (definition: object) => () => dna.registerOp(definition as dna.CustomOpDefinition);
  t.throws(define({ name: 'X' }), { message: /give either op .* or transform .*, not neither/ });
  t.throws(define({ name: 'X', op: 'a::b', transform: () => images }), { message: /not both/ });
  t.throws(define({ name: 'Rotate', transform: () => images }), { message: /'Rotate' is the name of a built-in op/ });
  t.throws(define({ name: '', transform: () => images }), { message: /name must be a non-empty string/ });
  t.throws(define({ name: 'a::b', transform: () => images }), { message: /must not contain '::'/ });
  t.throws(define({ name: 'X', transform: () => images, range: [0, Number.NaN] }), {
    message: /range must be \[lo, hi\]/,
  });
  t.throws(define({ name: 'X', transform: () => images, identityAt: 2 }), {
    message: /identityAt must be a magnitude in \[0, 1\]/,
  });
  t.throws(() => applyOp(images, 'Blur', 0.5), { message: /unknown op 'Blur' \(one of ShearX, .*Vignette, Gamma/ });
  t.throws(
    () =>
      dna.validateSearchSpace({
        ops: [{ name: 'X', custom: '', range: null, identityAt: null }],
        subPolicies: [[0, 0]],
      }),
    {
      message: /custom must name an operator or a transform/,
    },
  );
  images.dispose();
});

test('CUDA: the example op runs its CUDA implementation and agrees with the CPU', (t) => {
  if (!dna.backend().cuda) {
    t.log('skipped: no CUDA device here (this test runs on a machine with a GPU)');
    t.pass();
    return;
  }
  const images = randomImages([6, 3, 16, 12], 9);
  // No Cutout: its centres come from each device's own generator.
  const space = spaceOf([builtin('Rotate'), builtin('Invert'), vignette, gamma, builtin('Contrast')]);
  const k = gradientCase(7, 6, [3, 16, 12], space.subPolicies.length);
  tidy(() => {
    const m = tensor([0, 0.2, 0.4, 0.6, 0.8, 1]);
    const onCpu = applyOp(images, vignette, m);
    const onCuda = applyOp(images.to('cuda'), vignette, m.to('cuda'));
    t.is(onCuda.device, 'cuda:0');
    t.true(onCuda.to('cpu').sub(onCpu).abs().max().item() < 1e-6);
    const cpu = fusedGradients(k, { searchSpace: space });
    const moved = {
      images: k.images.to('cuda'),
      c: k.c.to('cuda'),
      b: k.b.to('cuda'),
      m: k.m.to('cuda'),
      grad: k.grad.to('cuda'),
    };
    const gpu = fusedGradients(moved, { searchSpace: space });
    assertClose(t, gpu.c, cpu.c, 1e-4, 'dL/dc');
    assertClose(t, gpu.b, cpu.b, 1e-4, 'dL/db');
    assertClose(t, gpu.m, cpu.m, 1e-4, 'dL/dm');
  });
  dna.dispose([images, k.images, k.c, k.b, k.m, k.grad]);
});
