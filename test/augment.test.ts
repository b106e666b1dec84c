// The fused augmentation engine against the slow reference (test/helpers/augment-reference.ts):
// every op, per image, sub-policies, the gradient rules of SPEC 1.4, preprocessing, seeds, errors.
import test from 'ava';

import * as dna from '../lib/index.js';
import { applyOp, applySubPolicies } from '../lib/augment/fused.js';
import { preprocess } from '../lib/augment/preprocess.js';
import { native } from '../lib/engine/native.js';
import { OPS, defaultSearchSpace, findOp } from '../lib/augment/search-space.js';
import {
  type Image,
  imageOf,
  maxAbsDiff,
  referenceBlend,
  referenceOp,
  referencePreprocess,
} from './helpers/augment-reference.js';
import {
  assertClose,
  fusedGradients,
  gradientCase,
  randomImages,
  relaxedGradients,
} from './helpers/gradient-reference.js';

const { tensor, Generator, rand, tidy } = dna;

const valueOf = (opName: string, m: number) => {
  const [lo, hi] = findOp(opName).range ?? [0, 0];
  return lo + m * (hi - lo);
};

// Runs the kernels with explicit per-image parameters (kinds, values, bits, noise).
function runKernel(
  images: dna.Tensor,
  kinds: number[],
  values: number[],
  bits: number[],
  noise: number[],
): Float32Array {
  const B = images.shape[0];
  return tidy(() => {
    const out = new dna.Tensor(
      native.augmentBatch(
        images.handle,
        tensor(new Int32Array(kinds), [B, 2]).handle,
        tensor(new Float32Array(values), [B, 2]).handle,
        tensor(new Float32Array(bits), [B, 2]).handle,
        tensor(new Float32Array(noise), [B, 2, 2]).handle,
      ),
    );
    return out.data() as Float32Array;
  });
}

for (const shape of [
  [5, 3, 7, 9],
  [4, 1, 6, 5],
]) {
  for (const op of OPS) {
    test(`${op.name} matches the reference on random ${shape[1]}-channel images, each with its own magnitude`, (t) => {
      const images = randomImages(shape, 7 + op.kind);
      const B = shape[0];
      const magnitudes = Array.from({ length: B }, (_, i) => (i + 0.37) / B);
      const noise = Array.from({ length: B * 4 }, (_, k) => ((k * 0.618) % 1) * 0.999);
      const out = runKernel(
        images,
        magnitudes.flatMap(() => [op.kind, -1]),
        magnitudes.flatMap((m) => [valueOf(op.name, m), 0]),
        magnitudes.flatMap(() => [1, 0]),
        noise,
      );
      const input = images.data() as Float32Array;
      for (let i = 0; i < B; i++) {
        const expected = referenceOp(op.name, valueOf(op.name, magnitudes[i]), imageOf(input, shape, i), [
          noise[i * 4],
          noise[i * 4 + 1],
        ]);
        const error = maxAbsDiff(imageOf(out, shape, i).data, expected.data);
        t.true(error < 2e-5, `image ${i} (m=${magnitudes[i].toFixed(3)}): max error ${error}`);
      }
      images.dispose();
    });
  }
}

test("an image's output depends only on its own parameters", (t) => {
  const shape = [6, 3, 8, 8];
  const images = randomImages(shape, 3);
  const kinds = [4, 10, 0, -1, 7, 14, 8, 2, 13, 5, 1, 9];
  const values = [12, 1.5, 0.2, 0, 0, 0.15, 100, -0.2, 0.4, 0, -0.1, 5];
  const bits = [1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1];
  const noise = Array.from({ length: 24 }, (_, k) => (k * 0.37) % 1);
  const batch = runKernel(images, kinds, values, bits, noise);
  for (let i = 0; i < 6; i++) {
    const alone = tidy(() => {
      const one = images.narrow(0, i, 1).contiguous();
      return runKernel(
        one,
        kinds.slice(2 * i, 2 * i + 2),
        values.slice(2 * i, 2 * i + 2),
        bits.slice(2 * i, 2 * i + 2),
        noise.slice(4 * i, 4 * i + 4),
      );
    });
    t.deepEqual(Array.from(imageOf(batch, shape, i).data), Array.from(alone), `image ${i}`);
  }
  images.dispose();
});

test('sub-policies: op 1 then op 2, each blended by its bit, match the reference composition', (t) => {
  const shape = [8, 3, 6, 7];
  const images = randomImages(shape, 11);
  const input = images.data() as Float32Array;
  const B = shape[0];
  const kinds = Array.from({ length: 2 * B }, (_, k) => (k * 7 + 3) % 15);
  const magnitudes = Array.from({ length: 2 * B }, (_, k) => (k * 0.731) % 1);
  const values = kinds.map((kind, k) => valueOf(OPS[kind].name, magnitudes[k]));
  const bits = Array.from({ length: 2 * B }, (_, k) => [1, 0, 1, 1, 0.3, 1][k % 6]);
  const noise = Array.from({ length: 4 * B }, (_, k) => (k * 0.29) % 1);
  const out = runKernel(images, kinds, values, bits, noise);
  for (let i = 0; i < B; i++) {
    let x: Image = imageOf(input, shape, i);
    for (let l = 0; l < 2; l++) {
      const k = 2 * i + l;
      const y = referenceOp(OPS[kinds[k]].name, values[k], x, [noise[2 * k], noise[2 * k + 1]]);
      x = referenceBlend(y, x, bits[k]);
    }
    const error = maxAbsDiff(imageOf(out, shape, i).data, x.data);
    t.true(
      error < 3e-5,
      `image ${i}: ${OPS[kinds[2 * i]].name} then ${OPS[kinds[2 * i + 1]].name}, max error ${error}`,
    );
  }
  images.dispose();
});

test('ops leave the image unchanged at their identity magnitude', (t) => {
  const images = randomImages([3, 3, 9, 9], 5);
  for (const op of OPS) {
    if (op.identityAt === null) continue;
    const error = tidy(() => applyOp(images, op.name, op.identityAt!).sub(images).abs().max().item());
    t.true(error < 1e-6, `${op.name} at m=${op.identityAt}: max change ${error}`);
  }
  images.dispose();
});

test('uint8 images are accepted and scaled to [0, 1]', (t) => {
  const bytes = new Uint8Array(2 * 3 * 4 * 4).map((_, k) => (k * 37) % 256);
  const asBytes = tensor(bytes, [2, 3, 4, 4]);
  const asFloats = asBytes.float().div(255);
  const error = tidy(() =>
    applyOp(asBytes, 'Invert', 0)
      .sub(applyOp(asFloats, 'Invert', 0))
      .abs()
      .max()
      .item(),
  );
  t.true(error < 1e-6);
  dna.dispose([asBytes, asFloats]);
});

test('non-contiguous images give the same result as their contiguous copy', (t) => {
  const images = randomImages([4, 3, 6, 6], 9);
  tidy(() => {
    const permuted = images.permute([0, 1, 3, 2]);
    t.false(permuted.isContiguous);
    const a = applyOp(permuted, 'Rotate', 0.9).data() as Float32Array;
    const b = applyOp(permuted.contiguous(), 'Rotate', 0.9).data() as Float32Array;
    t.deepEqual(Array.from(a), Array.from(b));
  });
  images.dispose();
});

// ---- Gradients (SPEC 1.4) against plain autograd over the relaxed formula ----

for (const [name, options] of [
  ['identity baseline, straight-through magnitudes', {}],
  ['DADA baseline', { dada: true }],
] as const) {
  test(`gradients into c, b and m follow SPEC 1.4 (${name})`, (t) => {
    for (const seed of [1, 2, 3]) {
      const k = gradientCase(seed);
      const fused = fusedGradients(k, { unselectedGradient: 'dada' in options ? 'dada' : 'identity' });
      t.true(fused.connected, 'the output is connected to the policy');
      const expected = relaxedGradients(k, options);
      assertClose(t, fused.c, expected.c, 1e-4, `seed ${seed} dL/dc`);
      assertClose(t, fused.b, expected.b, 1e-4, `seed ${seed} dL/db`);
      assertClose(t, fused.m, expected.m, 1e-4, `seed ${seed} dL/dm`);
      dna.dispose([k.images, k.c, k.b, k.m, k.grad]);
    }
  });
}

test('exact magnitude gradients match central differences of the reference ops', (t) => {
  for (const seed of [4, 5, 6, 7]) {
    const k = gradientCase(seed, 6, [3, 8, 7]);
    const fused = fusedGradients(k, { magnitudeGradient: 'exact' });
    const expected = relaxedGradients(k, { exact: true });
    // Central differences straddle the kinks of bilinear sampling and of the clamp: looser.
    assertClose(t, fused.m, expected.m, 2e-2, `seed ${seed} dL/dm (exact)`);
    assertClose(t, fused.b, expected.b, 1e-4, `seed ${seed} dL/db`);
    dna.dispose([k.images, k.c, k.b, k.m, k.grad]);
  }
});

test('gradients are zero where the rules say zero: unselected b and m, magnitude-free ops', (t) => {
  const k = gradientCase(12, 4);
  const fused = fusedGradients(k);
  const S = 105;
  const selected = Array.from(k.c.argmax(1).data() as BigInt64Array, Number);
  const space = defaultSearchSpace();
  for (let i = 0; i < 4; i++) {
    for (let s = 0; s < S; s++) {
      for (let l = 0; l < 2; l++) {
        const index = (i * S + s) * 2 + l;
        if (s !== Number(selected[i])) {
          t.is(fused.b[index], 0);
          t.is(fused.m[index], 0);
        } else if (space.ops[space.subPolicies[s][l]].range === null) {
          t.is(fused.m[index], 0, `${space.ops[space.subPolicies[s][l]].name} has no magnitude`);
        }
      }
    }
  }
  dna.dispose([k.images, k.c, k.b, k.m, k.grad]);
});

test('no gradient flows into the images', (t) => {
  const k = gradientCase(13, 3);
  tidy(() => {
    const images = k.images.clone().requireGrad();
    const out = applySubPolicies(images, k.c, k.b, k.m);
    out.sum().backward();
    t.is(images.grad, undefined);
  });
  dna.dispose([k.images, k.c, k.b, k.m, k.grad]);
});

// ---- Preprocessing ----

test('preprocess matches the reference flip, shift and Cutout per image', (t) => {
  const shape = [6, 3, 10, 12];
  const images = randomImages(shape, 21);
  const params = [
    [1, 0, 0, 0, 0, 0],
    [0, 3, -2, 0, 0, 0],
    [1, -4, 4, 4, 2, 3],
    [0, 0, 0, 6, 9, 11],
    [1, 2, 1, 16, 5, 5],
    [0, -1, -3, 3, 0, 11],
  ];
  const out = tidy(() =>
    new dna.Tensor(native.preprocessBatch(images.handle, tensor(new Int32Array(params.flat()), [6, 6]).handle)).data(),
  ) as Float32Array;
  const input = images.data() as Float32Array;
  params.forEach(([flip, dx, dy, side, cy, cx], i) => {
    const expected = referencePreprocess(imageOf(input, shape, i), { flip: flip === 1, dx, dy, side, cy, cx });
    t.deepEqual(Array.from(imageOf(out, shape, i).data), Array.from(expected.data), `image ${i}`);
  });
  images.dispose();
});

test('preprocess presets draw flips, shifts in [-pad, pad] and Cutout squares as configured', (t) => {
  const images = dna.ones([400, 1, 12, 12]);
  tidy(() => {
    const out = preprocess(images, 'cifar', { generator: new Generator(3) });
    const values = out.data() as Float32Array;
    let withCutout = 0;
    for (let i = 0; i < 400; i++) {
      const image = values.subarray(i * 144, (i + 1) * 144);
      if (image.some((v) => v === 0.5)) withCutout++;
      t.true(
        image.every((v) => v === 0 || v === 0.5 || v === 1),
        'only image, padding or fill values',
      );
    }
    t.is(withCutout, 400, 'Cutout 16 on a 12x12 image always leaves a mark');
    const none = preprocess(images, 'none');
    t.is(none.sub(images).abs().max().item(), 0);
  });
  t.throws(() => preprocess(images, 'bogus' as 'cifar'), { message: /unknown preset 'bogus'/ });
  t.throws(() => preprocess(images, { flip: 2, pad: 0, cutout: 0 }), { message: /flip must be a probability/ });
  images.dispose();
});

// ---- Seeds ----

test('the same seed gives the same augmentation', (t) => {
  const images = randomImages([16, 3, 8, 8], 1);
  const S = 105;
  const run = (seed: number) =>
    tidy(() => {
      const g = new Generator(seed);
      const c = dna.randint(0, S, [16], { generator: g }).oneHot(S).float();
      const b = rand([16, S, 2], { generator: g }).lt(0.5).float();
      const m = rand([16, S, 2], { generator: g });
      const pre = preprocess(images, 'cifar', { generator: g });
      return Array.from(applySubPolicies(pre, c, b, m, { generator: g }).data() as Float32Array);
    });
  t.deepEqual(run(5), run(5));
  t.notDeepEqual(run(5), run(6));
  images.dispose();
});

// ---- Bad input ----

test('bad input gives an Error that names the problem', (t) => {
  const images = randomImages([2, 3, 4, 4], 1);
  const S = 105;
  const c = dna.zeros([2, S]);
  const b = dna.zeros([2, S, 2]);
  const m = dna.zeros([2, S, 2]);
  t.throws(() => applyOp(images, 'Blur', 0.5), { message: /unknown op 'Blur'/ });
  t.throws(() => applyOp(images, 'Rotate', Number.NaN), { message: /magnitude must be in \[0, 1\]/ });
  t.throws(() => applyOp(images, 'Rotate', dna.zeros([3])), { message: /shape \[2\]/ });
  t.throws(() => applyOp(dna.zeros([2, 4, 4]), 'Rotate', 0.5), { message: /\[B, C, H, W\]/ });
  t.throws(() => applyOp(dna.zeros([2, 2, 4, 4]), 'Rotate', 0.5), { message: /1 or 3 channels/ });
  t.throws(() => applyOp(dna.zeros([2, 3, 4, 4], { dtype: 'float64' }), 'Rotate', 0.5), {
    message: /float32 in \[0, 1\] or uint8/,
  });
  t.throws(() => applyOp(images, 'Rotate', tensor([Number.NaN, 0.5])), { message: /NaN/ });
  t.throws(() => applySubPolicies(images, dna.zeros([2, 10]), b, m), {
    message: /c \(sub-policy weights\) must have shape \[2, 105\]/,
  });
  t.throws(() => applySubPolicies(images, c, dna.zeros([2, S]), m), { message: /b \(apply bits\) must have shape/ });
  t.throws(() => applySubPolicies(images, c, b, dna.zeros([3, S, 2])), { message: /m \(magnitudes\) must have shape/ });
  t.throws(() => applySubPolicies(images, c, b, dna.full([2, S, 2], Number.NaN)), {
    message: /m \(magnitudes\) contains NaN/,
  });
  t.throws(() => applySubPolicies(images, c, b, dna.zeros([2, S, 2], { dtype: 'int32' })), {
    message: /m must be a floating-point tensor/,
  });
  t.throws(() => applySubPolicies(images, c, b, m, { magnitudeGradient: 'fast' as 'exact' }), {
    message: /magnitudeGradient/,
  });
  t.throws(() => applySubPolicies(images, c, b, m, { searchSpace: { ops: [], subPolicies: [] } }), {
    message: /no ops/,
  });
  dna.dispose([images, c, b, m]);
});

test("applyCutout gives preprocess's Cutout and passes gradients where the image is kept", (t) => {
  const images = randomImages([6, 3, 10, 10], 31);
  tidy(() => {
    const viaPreprocess = preprocess(images, { flip: 0, pad: 0, cutout: 4 }, { generator: new Generator(8) });
    const x = images.clone().requireGrad();
    const viaCutout = dna.applyCutout(x, 4, { generator: new Generator(8) });
    t.deepEqual(Array.from(viaCutout.data() as Float32Array), Array.from(viaPreprocess.data() as Float32Array));
    viaCutout.sum().backward();
    const grad = x.grad!.data() as Float32Array;
    const out = viaCutout.data() as Float32Array;
    const input = images.data() as Float32Array;
    for (let k = 0; k < grad.length; k++) {
      const cut = out[k] === 0.5 && input[k] !== 0.5;
      t.is(grad[k], cut ? 0 : 1);
    }
    t.is(dna.applyCutout(x, 0), x, 'size 0 is the identity');
  });
  images.dispose();
});
