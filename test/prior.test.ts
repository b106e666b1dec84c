// The TrivialAugment-like prior of a search (dna/prior.ts) against a slow reference written out
// term by term, its zero at the prior itself and its gradients; the score function's per-class
// and per-draw leave-one-out baselines (dna/score-function.ts) against the same rules written as
// loops, and what the per-draw one does to the noise of the policy's gradient.
import test from 'ava';

import * as dna from '../lib/index.js';
import { classBaseline, drawBaseline, scoreFunctionLoss } from '../lib/dna/score-function.js';
import { priorDivergence } from '../lib/dna/prior.js';

const { Generator, tensor, tidy, rand } = dna;

const values = (x: dna.Tensor) => Array.from(x.data() as Float32Array);

/** The prior's divergence of image i, written out over sub-policies and slots. */
function reference(
  space: dna.SearchSpace,
  logits: number[],
  p: number[],
  centre: number[],
  width: number[] | undefined,
  i: number,
): number {
  const S = space.subPolicies.length;
  const row = logits.slice(i * S, (i + 1) * S);
  const top = Math.max(...row);
  const z = row.reduce((sum, l) => sum + Math.exp(l - top), 0);
  const pi = row.map((l) => Math.exp(l - top) / z);
  let kl = Math.log(S) + pi.reduce((sum, q) => sum + (q > 0 ? q * Math.log(q) : 0), 0);
  let ranges = 0;
  let rangeWeight = 0;
  space.subPolicies.forEach((pair, s) => {
    let bits = 0;
    pair.forEach((o, slot) => {
      const k = (i * S + s) * 2 + slot;
      const q = Math.min(Math.max(p[k], 1e-6), 1 - 1e-6);
      bits += (q * Math.log(q) + (1 - q) * Math.log(1 - q) + Math.log(2)) / 2;
      if (width === undefined || space.ops[o].range === null) return;
      const inside = Math.min(centre[k] + width[k] / 2, 1) - Math.max(centre[k] - width[k] / 2, 0);
      ranges += pi[s] * -Math.log(Math.max(inside, 1e-6));
      rangeWeight += pi[s];
    });
    kl += pi[s] * bits;
  });
  return width === undefined ? kl : kl + ranges / rangeWeight;
}

test('priorDivergence: zero at the prior (uniform pi, p = 1/2, ranges [0, 1]), the reference elsewhere', (t) => {
  const space = dna.defaultSearchSpace();
  const S = space.subPolicies.length;
  const atPrior = {
    logits: dna.full([2, S], 0.7),
    p: dna.full([2, S, 2], 0.5),
    m: dna.full([2, S, 2], 0.5),
    width: dna.full([2, S, 2], 1),
  };
  t.true(values(priorDivergence(atPrior, space)).every((v) => Math.abs(v) < 1e-5));

  const g = new Generator(4);
  const logits = dna.randn([3, S], { generator: g }).mul(2);
  const p = rand([3, S, 2], { generator: g });
  const m = rand([3, S, 2], { generator: g });
  const width = rand([3, S, 2], { generator: g }).mul(0.95).add(0.05);
  for (const ranged of [true, false]) {
    const outputs = { logits, p, m, width: ranged ? width : undefined };
    const got = values(priorDivergence(outputs, space));
    for (let i = 0; i < 3; i++) {
      const want = reference(space, values(logits), values(p), values(m), ranged ? values(width) : undefined, i);
      t.true(
        Math.abs(got[i] - want) < 1e-4 * Math.max(1, Math.abs(want)),
        `${ranged} image ${i}: ${got[i]} vs ${want}`,
      );
      t.true(got[i] > 0);
    }
  }
  dna.dispose([atPrior, logits, p, m, width]);
});

test('priorDivergence: its gradients move every output toward the prior', (t) => {
  const space = dna.defaultSearchSpace();
  const S = space.subPolicies.length;
  const g = new Generator(8);
  const logits = dna.randn([2, S], { generator: g }).requireGrad();
  const p = rand([2, S, 2], { generator: g }).mul(0.8).add(0.1).requireGrad();
  // Ranges inside [0, 1] and narrower than it: the divergence falls as they widen.
  const m = dna.full([2, S, 2], 0.5).requireGrad();
  const width = rand([2, S, 2], { generator: g }).mul(0.5).add(0.2).requireGrad();
  priorDivergence({ logits, p, m, width }, space).sum().backward();
  const pv = values(p);
  const pg = values(p.grad!);
  t.true(pv.every((q, k) => Math.sign(pg[k]) === Math.sign(q - 0.5) || Math.abs(q - 0.5) < 1e-3));
  t.true(values(width.grad!).every((v) => v <= 0));
  // The most likely sub-policy's logit is pushed down, the least likely's up.
  const l = values(logits);
  const lg = values(logits.grad!);
  const row = l.slice(0, S);
  t.true(lg[row.indexOf(Math.max(...row))] > 0);
  t.true(lg[row.indexOf(Math.min(...row))] < 0);
  // A range that sticks out of [0, 1] counts only its inside: moving its centre back in lowers the divergence.
  const centre = tensor([0.9, 0.1], [1, 1, 2]).requireGrad();
  const one = { logits: dna.zeros([1, 1]), p: dna.full([1, 1, 2], 0.5), m: centre, width: dna.full([1, 1, 2], 0.6) };
  const single = {
    ...space,
    subPolicies: [space.subPolicies.find(([a, b]) => space.ops[a].range && space.ops[b].range)!],
  };
  priorDivergence(one, single).sum().backward();
  const cg = values(centre.grad!);
  t.true(cg[0] > 0 && cg[1] < 0, `centre gradients ${cg}`);
  dna.dispose([logits, p, m, width, centre, one]);
});

test('classBaseline: the mean cost of the other images of the class, else of the other images of the batch', (t) => {
  const g = new Generator(2);
  const labels = tensor(new BigInt64Array([0n, 1n, 0n, 2n, 1n, 0n, 3n, 1n].map(BigInt)), [8], { dtype: 'int64' });
  const cost = dna.randn([8], { generator: g });
  const got = values(classBaseline(cost, labels));
  const c = values(cost);
  const l = [0, 1, 0, 2, 1, 0, 3, 1];
  for (let i = 0; i < 8; i++) {
    const same = l.map((y, j) => (y === l[i] && j !== i ? j : -1)).filter((j) => j >= 0);
    const pool = same.length > 0 ? same : l.map((_, j) => j).filter((j) => j !== i);
    const want = pool.reduce((s, j) => s + c[j], 0) / pool.length;
    t.true(Math.abs(got[i] - want) < 1e-5, `image ${i}: ${got[i]} vs ${want}`);
  }
  tidy(() => t.false(classBaseline(cost.requireGrad(), labels).requiresGrad));
  dna.dispose([labels, cost]);
});

test("drawBaseline: each draw's baseline is the mean cost of the image's other draws", (t) => {
  const [draws, images] = [3, 5];
  const cost = dna.randn([draws * images], { generator: new Generator(4) });
  const got = values(drawBaseline(cost, draws));
  const c = values(cost);
  for (let k = 0; k < draws; k++)
    for (let i = 0; i < images; i++) {
      const others = [0, 1, 2].filter((j) => j !== k).map((j) => c[j * images + i]);
      const want = (others[0] + others[1]) / 2;
      t.true(Math.abs(got[k * images + i] - want) < 1e-5, `draw ${k} of image ${i}: ${got[k * images + i]} vs ${want}`);
    }
  tidy(() => t.false(drawBaseline(cost.requireGrad(), draws).requiresGrad));
  t.throws(() => drawBaseline(cost, 4), { message: /15 costs are not draws >= 2 \(4\) of each image/ });
  t.throws(() => drawBaseline(cost, 1), { message: /not draws >= 2/ });
  cost.dispose();
});

test('images that differ in what they tolerate: their own draws make a baseline with far less noise than their class', (t) => {
  // 4 sub-policies, the last one costs 1 more; each image adds a cost of its own (sd 3) to every
  // draw. 256 draws per step either way: 256 images of 4 classes once, or 64 images 4 times. The
  // gradient on the costly sub-policy's logit, over 40 steps: its mean over its spread.
  const S = 4;
  let state = 7;
  const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const gaussian = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const signalToNoise = (draws: number) => {
    const images = 256 / draws;
    const gradients: number[] = [];
    for (let step = 0; step < 40; step++) {
      const offset = Array.from({ length: images }, () => 3 * gaussian());
      const chosen = Array.from({ length: 256 }, () => Math.floor(random() * S));
      const cost = chosen.map((s, n) => offset[n % images] + (s === S - 1 ? 1 : 0));
      gradients.push(
        tidy(() => {
          const logits = dna.zeros([256, S]).requireGrad();
          const outputs = { logits, p: dna.full([256, S, 2], 0.5), m: dna.full([256, S, 2], 0.5) };
          const c = tensor(new Float32Array(chosen.flatMap((s) => [0, 1, 2, 3].map((k) => (k === s ? 1 : 0)))), [
            256,
            S,
          ]);
          const b = dna.zeros([256, S, 2]);
          const costs = tensor(new Float32Array(cost), [256]);
          const labels = tensor(new BigInt64Array(Array.from({ length: 256 }, (_, n) => BigInt(n % 4))), [256], {
            dtype: 'int64',
          });
          const baseline = draws === 1 ? classBaseline(costs, labels) : drawBaseline(costs, draws);
          scoreFunctionLoss(outputs, c, b, costs, baseline).backward();
          return values(logits.grad!.sum(0))[S - 1];
        }),
      );
    }
    const mean = gradients.reduce((a, g) => a + g, 0) / gradients.length;
    const sd = Math.sqrt(gradients.reduce((a, g) => a + (g - mean) ** 2, 0) / (gradients.length - 1));
    return mean / sd;
  };
  const [byClass, byDraws] = [signalToNoise(1), signalToNoise(4)];
  t.log(`signal to noise: class baseline ${byClass.toFixed(2)}, 4 draws ${byDraws.toFixed(2)}`);
  // The costly sub-policy's logit must be pushed down (a positive gradient of the loss) in both.
  t.true(byClass > 0);
  t.true(byDraws > 3 * byClass);
});
