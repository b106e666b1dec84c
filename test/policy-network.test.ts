// The straight-through samplers (SPEC 1.3) and the policy network (SPEC 1.2): values,
// distributions, gradients, and gradients reaching all three heads through the fused op.
import test from 'ava';

import * as dna from '../lib/index.js';
import { PolicyNetwork } from '../lib/dna/policy-network.js';
import { gumbelSoftmaxST, relaxedBernoulliST } from '../lib/dna/sampling.js';

const { Generator, tensor, tidy } = dna;

function values(t: dna.Tensor): number[] {
  return Array.from(t.data() as Float32Array);
}

test(
  'gumbelSoftmaxST: one-hot values, argmax frequencies follow softmax(logits), the same seed the ' + 'same sample',
  (t) => {
    const logits = tensor([[2, 0, -1, 0.5]])
      .expand([20000, 4])
      .contiguous();
    const c = gumbelSoftmaxST(logits, 0.5, new Generator(1));
    const rows = values(c);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) {
      const row = rows.slice(i * 4, i * 4 + 4);
      t.true(
        Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5 &&
          row.every((v) => Math.abs(v) < 1e-5 || Math.abs(v - 1) < 1e-5),
      );
      counts[row.indexOf(Math.max(...row))]++;
    }
    const expected = values(tensor([[2, 0, -1, 0.5]]).softmax(1));
    counts.forEach((count, k) =>
      t.true(Math.abs(count / 20000 - expected[k]) < 0.015, `class ${k}: ${count / 20000} vs ${expected[k]}`),
    );
    t.deepEqual(values(gumbelSoftmaxST(logits, 0.5, new Generator(1))), rows);
    t.throws(() => gumbelSoftmaxST(logits, 0), { message: /tau must be a positive number/ });
  },
);

test('gumbelSoftmaxST: the gradient is that of the relaxed softmax', (t) => {
  const raw = [0.3, -0.2, 1.1, 0.0, 0.7, -0.9];
  const weights = tensor([
    [1, -2, 0.5],
    [0.3, 2, -1],
  ]);
  const viaSampler = tidy(() => {
    const logits = tensor(raw, [2, 3]).requireGrad();
    gumbelSoftmaxST(logits, 0.7, new Generator(5)).mul(weights).sum().backward();
    return values(logits.grad!);
  });
  const viaSoftmax = tidy(() => {
    const logits = tensor(raw, [2, 3]).requireGrad();
    // The same noise: the first draw of Generator(5), as the sampler makes it.
    const u = dna.rand([2, 3], { generator: new Generator(5) }).clamp(1e-6, 1 - 1e-6);
    logits.add(u.log().neg().log().neg()).div(0.7).softmax(1).mul(weights).sum().backward();
    return values(logits.grad!);
  });
  viaSampler.forEach((g, k) => t.true(Math.abs(g - viaSoftmax[k]) < 1e-5, `${g} vs ${viaSoftmax[k]}`));
});

test('relaxedBernoulliST: 0/1 values, P(1) = p, gradient that of the relaxed sigmoid', (t) => {
  const p = tensor([0.1, 0.5, 0.8]).unsqueeze(0).expand([20000, 3]).contiguous();
  const b = values(relaxedBernoulliST(p, 0.5, new Generator(2)));
  t.true(b.every((v) => Math.abs(v) < 1e-5 || Math.abs(v - 1) < 1e-5));
  [0.1, 0.5, 0.8].forEach((expected, k) => {
    let ones = 0;
    for (let i = 0; i < 20000; i++) ones += Math.round(b[i * 3 + k]);
    t.true(Math.abs(ones / 20000 - expected) < 0.015, `p=${expected}: ${ones / 20000}`);
  });
  const grads = tidy(() => {
    const q = tensor([0.3, 0.6]).requireGrad();
    relaxedBernoulliST(q, 0.5, new Generator(3))
      .mul(tensor([1, -1]))
      .sum()
      .backward();
    const viaSampler = values(q.grad!);
    const r = tensor([0.3, 0.6]).requireGrad();
    const u = dna.rand([2], { generator: new Generator(3) }).clamp(1e-6, 1 - 1e-6);
    r.logit(1e-6)
      .add(u.logit())
      .div(0.5)
      .sigmoid()
      .mul(tensor([1, -1]))
      .sum()
      .backward();
    return [viaSampler, values(r.grad!)];
  });
  grads[0].forEach((g, k) => t.true(Math.abs(g - grads[1][k]) < 1e-5, `${g} vs ${grads[1][k]}`));
  t.throws(() => relaxedBernoulliST(p, -1), { message: /lambda must be a positive number/ });
});

test('a new policy network gives uniform logits and p = m = 0.5', (t) => {
  const policy = new PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 1, seed: 1 });
  tidy(() => {
    const { logits, p, m } = policy.forward(dna.rand([4, 1, 12, 12], { generator: new Generator(0) }));
    t.deepEqual(logits.shape, [4, 105]);
    t.deepEqual(p.shape, [4, 105, 2]);
    t.deepEqual(m.shape, [4, 105, 2]);
    t.is(logits.sub(logits.mean()).abs().max().item(), 0);
    t.true(p.sub(0.5).abs().max().item() < 1e-6);
    t.true(m.sub(0.5).abs().max().item() < 1e-6);
  });
  policy.dispose();
});

test('gradients reach all three heads, finite and non-zero, through the sampler and the fused op', (t) => {
  const policy = new PolicyNetwork({ backbone: dna.WRN_10_1, inChannels: 3, seed: 2 });
  const g = new Generator(4);
  const images = dna.rand([16, 3, 16, 16], { generator: g });
  // The head starts at zero, so the backbone gets no gradient on the first step; the head's own
  // gradients show what reaches each of the three outputs.
  const names = policy.network.parameterNames;
  const head = policy.parameters()[names.indexOf('fc.weight')];
  const headBias = policy.parameters()[names.indexOf('fc.bias')];
  tidy(() => {
    const { c, b, m } = policy.sample(images, { generator: g });
    const out = dna.applySubPolicies(images, c, b, m, { generator: g });
    out.sub(images.flip(3)).square().mean().backward();
  });
  const S = 105;
  const biasGrad = values(headBias.grad!);
  const part = (from: number, length: number) => biasGrad.slice(from, from + length);
  for (const [name, grads] of [
    ['logits', part(0, S)],
    ['p', part(S, 2 * S)],
    ['m', part(3 * S, 2 * S)],
  ] as const) {
    t.true(grads.every(Number.isFinite), `${name}: finite`);
    t.true(
      grads.some((v) => v !== 0),
      `${name}: non-zero`,
    );
  }
  t.true(
    values(head.grad!).some((v) => v !== 0),
    'the head weights receive gradients',
  );
  images.dispose();
  policy.dispose();
});
