// The gradient rules of SPEC 1.4 as plain autograd over the relaxed formula, for any search
// space: test/augment.test.ts checks the fused op with it, test/custom-ops.test.ts the path
// with custom ops.
import type { ExecutionContext } from 'ava';

import * as dna from '../../lib/index.js';
import { applySubPolicies } from '../../lib/augment/fused.js';
import { defaultSearchSpace, type OpSpec, type SearchSpace } from '../../lib/augment/search-space.js';
import { type Image, imageOf, referenceBlend, referenceOp } from './augment-reference.js';

const { tensor, Generator, rand, tidy } = dna;

// Images as the datasets give them: 8-bit levels scaled to [0, 1].
export function randomImages(shape: number[], seed: number): dna.Tensor {
  return tidy(() =>
    rand(shape, { generator: new Generator(seed) })
      .mul(255)
      .round()
      .div(255),
  );
}

/** One op of a search space on one image with value v (natural units) and its two uniform draws. */
export type ReferenceTransform = (op: OpSpec, v: number, x: Image, draws: [number, number]) => Image;

export interface Case {
  images: dna.Tensor;
  c: dna.Tensor;
  b: dna.Tensor;
  m: dna.Tensor;
  grad: dna.Tensor;
}

export const NOISE_SEED = 99;

/** Random images, one-hot c over S sub-policies, bits b, magnitudes m and an output gradient. */
export function gradientCase(seed: number, B = 5, shape = [3, 6, 5], S = 105): Case {
  const g = new Generator(seed);
  const images = randomImages([B, ...shape], seed);
  const index = dna.randint(0, S, [B], { generator: g });
  const c = index.oneHot(S).float().requireGrad();
  const b = rand([B, S, 2], { generator: g }).lt(0.6).float().requireGrad();
  const m = rand([B, S, 2], { generator: g }).requireGrad();
  const grad = dna.randn([B, ...shape], { generator: g });
  index.dispose();
  return { images, c, b, m, grad };
}

// The relaxed formula whose plain-autograd gradients are the rules of SPEC 1.4:
// out = sum_s c_s z_s, z = x2 for the selected s and the baseline (x, or 1 for DADA) elsewhere;
// x1 = b1 y1 + (1-b1) x, x2 = b2 y2 + (1-b2) x1, with dy/dm = 1 (or the exact derivative) and
// the op's input Jacobian taken as the identity.
// `transform` gives each op's output in the reference (default: referenceOp of the built-in ops).
export function relaxedGradients(
  k: Case,
  options: { dada?: boolean; exact?: boolean; space?: SearchSpace; transform?: ReferenceTransform } = {},
): { c: number[]; b: number[]; m: number[] } {
  const space = options.space ?? defaultSearchSpace();
  const transform: ReferenceTransform = options.transform ?? ((op, v, x, draws) => referenceOp(op.name, v, x, draws));
  const [B, C, H, W] = k.images.shape;
  const S = space.subPolicies.length;
  const P = C * H * W;
  const input = k.images.data() as Float32Array;
  const cValues = k.c.data() as Float32Array;
  const bValues = k.b.data() as Float32Array;
  const mValues = k.m.data() as Float32Array;
  const selected = Array.from({ length: B }, (_, i) => {
    let best = 0;
    for (let s = 1; s < S; s++) if (cValues[i * S + s] > cValues[i * S + best]) best = s;
    return best;
  });
  // Constant parts from the reference: y1, y2 - x1 and (exact) dy/dm by central differences.
  // The noise applySubPolicies draws first from Generator(NOISE_SEED): Cutout's centres.
  const noise = tidy(() => rand([B, 2, 2], { generator: new Generator(NOISE_SEED) }).data() as Float32Array);
  const y1 = new Float32Array(B * P);
  const y2MinusX1 = new Float32Array(B * P);
  const dy = [new Float32Array(B * P), new Float32Array(B * P)];
  for (let i = 0; i < B; i++) {
    let x = imageOf(input, k.images.shape, i);
    for (let l = 0; l < 2; l++) {
      const op = space.ops[space.subPolicies[selected[i]][l]];
      const [lo, hi] = op.range ?? [0, 0];
      const mm = mValues[(i * S + selected[i]) * 2 + l];
      const v = lo + mm * (hi - lo);
      const draws: [number, number] = [noise[(i * 2 + l) * 2], noise[(i * 2 + l) * 2 + 1]];
      const y = transform(op, v, x, draws);
      const differentiable = [
        'ShearX',
        'ShearY',
        'TranslateX',
        'TranslateY',
        'Rotate',
        'Contrast',
        'Color',
        'Brightness',
        'Sharpness',
      ].includes(op.name);
      for (let p = 0; p < P; p++) {
        if (l === 0) y1[i * P + p] = y.data[p];
        else y2MinusX1[i * P + p] = y.data[p] - x.data[p];
      }
      if (options.exact && differentiable) {
        const h = 1e-3 * (hi - lo);
        const up = transform(op, v + h, x, draws);
        const down = transform(op, v - h, x, draws);
        for (let p = 0; p < P; p++) dy[l][i * P + p] = ((up.data[p] - down.data[p]) / (2 * h)) * (hi - lo);
      } else {
        dy[l].fill(op.range === null ? 0 : 1, i * P, (i + 1) * P);
      }
      x = referenceBlend(y, x, bValues[(i * S + selected[i]) * 2 + l]);
    }
  }
  return tidy(() => {
    const c = k.c.detach().requireGrad();
    const b = k.b.detach().requireGrad();
    const m = k.m.detach().requireGrad();
    const x = k.images.reshape([B, P]);
    const mask = tensor(new Int32Array(selected), [B]).long().oneHot(S).float(); // [B, S]
    const pick = (t: dna.Tensor) => t.mul(mask.unsqueeze(2)).sum(1); // [B, S, 2] -> [B, 2]
    const bSel = pick(b);
    const mSel = pick(m);
    const mMoves = mSel.sub(mSel.detach()); // 0 in value, d/dm = 1
    const layer = (l: number) => [bSel.narrow(1, l, 1), mMoves.narrow(1, l, 1), tensor(dy[l], [B, P])] as const;
    const [b1, dm1, dy1] = layer(0);
    const [b2, dm2, dy2] = layer(1);
    const Y1 = tensor(y1, [B, P]).add(dm1.mul(dy1));
    const X1 = b1.mul(Y1).add(b1.neg().add(1).mul(x));
    const Y2 = tensor(y2MinusX1, [B, P]).add(X1).add(dm2.mul(dy2));
    const X2 = b2.mul(Y2).add(b2.neg().add(1).mul(X1));
    const baseline = options.dada ? dna.ones([B, P]) : x;
    const unselected = c.mul(mask.neg().add(1)).unsqueeze(2).mul(baseline.unsqueeze(1)).sum(1);
    const out = unselected.add(c.mul(mask).sum(1, true).mul(X2));
    out
      .mul(k.grad.reshape([B, P]))
      .sum()
      .backward();
    const read = (t: dna.Tensor) => Array.from(t.grad!.data() as Float32Array);
    return { c: read(c), b: read(b), m: read(m) };
  });
}

export function fusedGradients(
  k: Case,
  options: dna.SubPolicyOptions = {},
): { c: number[]; b: number[]; m: number[]; connected: boolean } {
  return tidy(() => {
    const c = k.c.detach().requireGrad();
    const b = k.b.detach().requireGrad();
    const m = k.m.detach().requireGrad();
    const out = applySubPolicies(k.images, c, b, m, { ...options, generator: new Generator(NOISE_SEED) });
    const connected = out.requiresGrad;
    out.mul(k.grad).sum().backward();
    const read = (t: dna.Tensor) => Array.from(t.grad!.data() as Float32Array);
    return { c: read(c), b: read(b), m: read(m), connected };
  });
}

export function assertClose(
  t: ExecutionContext,
  actual: number[],
  expected: number[],
  tolerance: number,
  what: string,
): void {
  t.is(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let where = -1;
  for (let k = 0; k < actual.length; k++) {
    const error = Math.abs(actual[k] - expected[k]) / (1 + Math.abs(expected[k]));
    if (error > worst) {
      worst = error;
      where = k;
    }
  }
  t.true(
    worst < tolerance,
    `${what}: worst relative error ${worst} at ${where} (${actual[where]} vs ${expected[where]})`,
  );
}
