// Autograd: gradients of composite expressions against central finite differences (float64),
// and the requiresGrad / grad / backward / noGrad / detach API.
import test, { type ExecutionContext } from 'ava';
import * as dna from '../lib/index.js';
import { mulberry32 } from './helpers/random.js';

function randomValues(rnd: () => number, n: number, lo = -2, hi = 2): Float64Array {
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * rnd());
}

const f64 = (values: Float64Array | number[], shape: number[]) =>
  dna.tensor(Float64Array.from(values), shape, { dtype: 'float64' });
const values = (x: dna.Tensor) => Array.from(x.data() as Float64Array);

/**
 * Checks d f / d inputs[k] from backward() against central differences of f in float64.
 * `f` maps the input tensors to a scalar tensor.
 */
function checkGradients(
  t: ExecutionContext,
  name: string,
  inputs: Array<{ values: Float64Array; shape: number[] }>,
  f: (...xs: dna.Tensor[]) => dna.Tensor,
): void {
  dna.tidy(() => {
    const leaves = inputs.map((input) => f64(input.values, input.shape).requireGrad());
    const out = f(...leaves);
    t.deepEqual(out.shape, [], `${name}: f is a scalar`);
    t.true(out.requiresGrad, `${name}: output requires grad`);
    out.backward();
    const h = 1e-6;
    inputs.forEach((input, k) => {
      const grad = leaves[k].grad;
      t.truthy(grad, `${name}: input ${k} has a gradient`);
      t.deepEqual(grad!.shape, input.shape);
      t.is(grad!.dtype, 'float64');
      const analytic = values(grad!);
      const numeric = dna.noGrad(() =>
        Array.from(input.values, (_, i) => {
          const at = (delta: number) =>
            dna.tidy(() => {
              const shifted = inputs.map((other, j) => {
                const v = Float64Array.from(other.values);
                if (j === k) v[i] += delta;
                return f64(v, other.shape);
              });
              return f(...shifted).item();
            });
          return (at(h) - at(-h)) / (2 * h);
        }),
      );
      let worst = 0;
      let where = -1;
      numeric.forEach((n, i) => {
        const err = Math.abs(analytic[i] - n) / (1e-6 + 1e-4 * Math.abs(n));
        if (err > worst) [worst, where] = [err, i];
      });
      t.true(
        worst <= 1,
        `${name}: d/d input ${k} [${where}]: backward ${analytic[where]}, finite differences ${numeric[where]}`,
      );
    });
  });
}

// ---- composite functions ----

test('grad of sum(sigmoid(x @ W) * logSoftmax(x @ W, 1)) w.r.t. x and W', (t) => {
  const rnd = mulberry32(101);
  checkGradients(
    t,
    'sigmoid*logSoftmax(matmul)',
    [
      { values: randomValues(rnd, 3 * 4), shape: [3, 4] },
      { values: randomValues(rnd, 4 * 5), shape: [4, 5] },
    ],
    (x, W) => {
      const z = x.matmul(W);
      return z.sigmoid().mul(z.logSoftmax(1)).sum();
    },
  );
});

test('grad of sum(sigmoid(x * w) * logSoftmax(x, 1)) (elementwise, broadcast w)', (t) => {
  const rnd = mulberry32(102);
  checkGradients(
    t,
    'sigmoid(x*w)*logSoftmax(x)',
    [
      { values: randomValues(rnd, 2 * 5), shape: [2, 5] },
      { values: randomValues(rnd, 5), shape: [5] },
    ],
    (x, w) => x.mul(w).sigmoid().mul(x.logSoftmax(1)).sum(),
  );
});

test('grad of sum(log(mean(exp(x) / (1 + softmax(x, 0)), dim 1)))', (t) => {
  const rnd = mulberry32(103);
  checkGradients(t, 'log mean exp / softmax', [{ values: randomValues(rnd, 4 * 3), shape: [4, 3] }], (x) =>
    x.exp().div(x.softmax(0).add(1)).mean(1).log().sum(),
  );
});

test('grad through where(x > 0, x^2, exp(-x/2)) and mean over dims', (t) => {
  const rnd = mulberry32(104);
  // Keep every element away from the kink at 0.
  const v = randomValues(rnd, 2 * 3 * 4).map((x) => (Math.abs(x) < 0.1 ? x + Math.sign(x || 1) * 0.2 : x));
  checkGradients(t, 'where', [{ values: v, shape: [2, 3, 4] }], (x) =>
    dna
      .where(x.gt(0), x.square(), x.mul(-0.5).exp())
      .mean([0, 2])
      .mul(dna.tensor([1, -2, 3], undefined, { dtype: 'float64' }))
      .sum(),
  );
});

test('grad of a cross-entropy: -mean(gather(logSoftmax(x W + b, 1), 1, labels))', (t) => {
  const rnd = mulberry32(105);
  const labels = dna.tensor(new BigInt64Array([2n, 0n, 1n, 2n, 1n]), [5, 1]);
  checkGradients(
    t,
    'cross-entropy',
    [
      { values: randomValues(rnd, 5 * 4), shape: [5, 4] },
      { values: randomValues(rnd, 4 * 3), shape: [4, 3] },
      { values: randomValues(rnd, 3), shape: [3] },
    ],
    (x, W, b) => x.matmul(W).add(b).logSoftmax(1).gather(1, labels).mean().neg(),
  );
});

test('grad of a normalisation with division: sum(c * x / sqrt(sum(x^2, 1, keepdim)))', (t) => {
  const rnd = mulberry32(106);
  const c = f64(randomValues(rnd, 3 * 4), [3, 4]);
  checkGradients(t, 'x / |x|', [{ values: randomValues(rnd, 3 * 4), shape: [3, 4] }], (x) =>
    x.div(x.square().sum(1, true).sqrt()).mul(c).sum(),
  );
});

test('grad of logsumexp, std, var, tanh, cumsum, max, division by a tensor', (t) => {
  const rnd = mulberry32(107);
  checkGradients(
    t,
    'mixed reductions',
    [
      { values: randomValues(rnd, 3 * 5), shape: [3, 5] },
      { values: randomValues(rnd, 5, 0.5, 2), shape: [5] },
    ],
    (x, d) =>
      x
        .logsumexp(1)
        .sum()
        .add(x.std(0).sum())
        .add(x.var(1, false, false).mean())
        .add(x.tanh().cumsum(1).div(d).sum())
        .add(x.max(1).sum())
        .add(x.pow(3).mean().mul(0.1)),
  );
});

test('grad through shape ops: permute, reshape, narrow, select, cat, stack, expand, flip, indexSelect', (t) => {
  const rnd = mulberry32(108);
  const idx = dna.tensor(new BigInt64Array([2n, 0n, 2n]));
  checkGradients(t, 'shape ops', [{ values: randomValues(rnd, 2 * 3 * 4), shape: [2, 3, 4] }], (x) => {
    const a = x.permute([2, 0, 1]).reshape([4, 6]).narrow(1, 1, 4); // [4, 4]
    const b = x.select(0, 1).transpose(0, 1).flip(0); // [4, 3]
    const c = dna.cat([a, b], 1).sin(); // [4, 7]
    const d = dna.stack([x.sum(0), x.mean(0)], 0).indexSelect(1, idx); // [2, 3, 4]
    const e = x.narrow(1, 0, 1).expand([2, 3, 4]).mul(d.sum(0)); // [2, 3, 4]
    return c.square().sum().add(e.sum()).add(x.flatten().clamp(-1, 1).sum());
  });
});

// ---- the autograd API ----

test('requiresGrad getter/setter and requireGrad()', (t) => {
  const x = dna.tensor([1, 2, 3]);
  t.false(x.requiresGrad);
  x.requiresGrad = true;
  t.true(x.requiresGrad);
  x.requiresGrad = false;
  t.false(x.requiresGrad);
  const y = dna.tensor([1, 2]);
  t.is(y.requireGrad(), y);
  t.true(y.requiresGrad);
  t.is(y.requireGrad(false), y);
  t.false(y.requiresGrad);
  // Results of ops on tensors that require grad require grad too.
  const z = dna.tensor([1, 2], undefined, { requiresGrad: true });
  t.true(z.mul(2).requiresGrad);
  t.false(z.mul(2).detach().requiresGrad);
  // Integer tensors cannot require gradients.
  t.throws(() => dna.tensor(new Int32Array([1])).requireGrad(), { instanceOf: Error, message: /^setRequiresGrad:/ });
});

test('grad is undefined before backward, set after, undefined again after zeroGrad', (t) => {
  const x = dna.tensor([1, -2, 3], undefined, { requiresGrad: true });
  t.is(x.grad, undefined);
  x.square().sum().backward();
  const g = x.grad;
  t.truthy(g);
  t.deepEqual(g!.toArray(), [2, -4, 6]);
  t.false(g!.requiresGrad);
  x.zeroGrad();
  t.is(x.grad, undefined);
  x.mul(3).sum().backward();
  t.deepEqual(x.grad!.toArray(), [3, 3, 3]);
});

test(
  'setGrad replaces the gradient with a copy; later backward calls add to it; a gradient that does not fit ' +
    'is refused',
  (t) => {
    const x = dna.tensor([1, 2], undefined, { requiresGrad: true });
    const g = dna.tensor([0.5, -1]);
    t.is(x.setGrad(g), x);
    t.deepEqual(x.grad!.toArray(), [0.5, -1]);
    x.mul(2).sum().backward();
    t.deepEqual(x.grad!.toArray(), [2.5, 1]);
    t.deepEqual(g.toArray(), [0.5, -1], 'the given tensor is copied, not accumulated into');
    t.throws(() => x.setGrad(dna.tensor([1, 2, 3])), {
      message: /^setGrad: the gradient has shape \[3\] but the tensor has shape \[2\]$/,
    });
    t.throws(() => x.setGrad(dna.tensor([1, 2], undefined, { dtype: 'float64' })), {
      message: /^setGrad: the gradient is float64 but the tensor is float32$/,
    });
    t.deepEqual(x.grad!.toArray(), [2.5, 1]);
  },
);

test('gradients accumulate across backward calls until zeroGrad', (t) => {
  const x = dna.tensor([1, 2], undefined, { requiresGrad: true });
  x.mul(2).sum().backward();
  x.mul(5).sum().backward();
  t.deepEqual(x.grad!.toArray(), [7, 7]);
  x.zeroGrad();
  x.sum().backward();
  t.deepEqual(x.grad!.toArray(), [1, 1]);
});

test('backward with an explicit gradient tensor', (t) => {
  const x = dna.tensor(
    [
      [1, 2, 3],
      [4, 5, 6],
    ],
    undefined,
    { requiresGrad: true },
  );
  const y = x.square(); // non-scalar
  const g = dna.tensor([
    [1, 0, -1],
    [0.5, 2, 0],
  ]);
  y.backward(g);
  t.deepEqual(x.grad!.toArray(), [
    [2, 0, -6],
    [4, 20, 0],
  ]);
  // A non-scalar without a gradient, or a gradient of the wrong shape, is an Error.
  const z = dna.tensor([1, 2], undefined, { requiresGrad: true }).mul(2);
  t.throws(() => z.backward(), { instanceOf: Error, message: /^backward:/ });
  const w = dna.tensor([1, 2], undefined, { requiresGrad: true }).mul(2);
  t.throws(() => w.backward(dna.tensor([1, 2, 3])), { instanceOf: Error, message: /^backward:/ });
});

test('retainGraph lets backward run twice and gradients accumulate; without it the second call throws', (t) => {
  const x = dna.tensor([1, 2, 3], undefined, { dtype: 'float64', requiresGrad: true });
  const y = x.exp().mul(x).sum();
  y.backward(undefined, { retainGraph: true });
  const once = values(x.grad!);
  y.backward();
  const twice = values(x.grad!);
  once.forEach((v, i) => t.true(Math.abs(twice[i] - 2 * v) < 1e-12));
  const expected = [1, 2, 3].map((v) => Math.exp(v) * (1 + v));
  once.forEach((v, i) => t.true(Math.abs(v - expected[i]) < 1e-10));

  const a = dna.tensor([1, 2], undefined, { requiresGrad: true });
  const b = a.exp().sum();
  b.backward();
  t.throws(() => b.backward(), { instanceOf: Error, message: /^backward:.*(second time|freed)/s });
});

test('backward on a tensor that does not require grad throws', (t) => {
  t.throws(() => dna.tensor([1, 2]).sum().backward(), { instanceOf: Error, message: /^backward:/ });
});

test('noGrad disables recording and restores it afterwards', (t) => {
  const x = dna.tensor([1, 2], undefined, { requiresGrad: true });
  t.true(dna.isGradEnabled());
  const r = dna.noGrad(() => {
    t.false(dna.isGradEnabled());
    return x.mul(2).exp();
  });
  t.false(r.requiresGrad);
  t.true(dna.isGradEnabled());
  t.true(x.mul(2).requiresGrad);
  // Nested noGrad restores the outer (disabled) state, then the enabled one.
  dna.noGrad(() => {
    dna.noGrad(() => t.false(dna.isGradEnabled()));
    t.false(dna.isGradEnabled());
  });
  t.true(dna.isGradEnabled());
});

test('noGrad restores grad mode when fn throws', (t) => {
  const x = dna.tensor([1, 2], undefined, { requiresGrad: true });
  const error = new Error('boom');
  t.throws(
    () =>
      dna.noGrad(() => {
        x.mul(2);
        throw error;
      }),
    { is: error },
  );
  t.true(dna.isGradEnabled());
  t.true(x.mul(2).requiresGrad);
  // A native error inside noGrad too.
  t.throws(() => dna.noGrad(() => x.reshape([5])), { instanceOf: Error, message: /^reshape:/ });
  t.true(dna.isGradEnabled());
});

test('detach cuts the graph and keeps the values', (t) => {
  const x = dna.tensor([1, 2, 3], undefined, { requiresGrad: true });
  const d = x.detach();
  t.false(d.requiresGrad);
  t.deepEqual(d.toArray(), [1, 2, 3]);
  // f = sum(x * detach(x)): the gradient is detach(x), not 2x.
  x.mul(x.detach()).sum().backward();
  t.deepEqual(x.grad!.toArray(), [1, 2, 3]);
  x.zeroGrad();
  x.mul(x).sum().backward();
  t.deepEqual(x.grad!.toArray(), [2, 4, 6]);
});

test('gradients of non-leaf tensors are not kept; leaves created inside tidy still work', (t) => {
  const x = dna.tensor([1, 2], undefined, { requiresGrad: true });
  const loss = dna.tidy(() => x.mul(3).square().sum());
  loss.backward();
  t.deepEqual(x.grad!.toArray(), [18, 36]);
  t.pass();
});
