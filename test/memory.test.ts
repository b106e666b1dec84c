// Memory management: tidy scopes, keep, dispose, liveTensors accounting, use after dispose.
// Serial: liveTensors() is a process-wide count.
import test from 'ava';
import { inspect } from 'node:util';

import * as dna from '../lib/index.js';

function churn(n: number): dna.Tensor {
  let x = dna.ones([4, 4]);
  for (let i = 0; i < n; i++)
    x = x
      .add(i)
      .mul(0.5)
      .exp()
      .log()
      .matmul(dna.ones([4, 4]))
      .softmax(1);
  return x;
}

test.serial('liveTensors counts creations and disposals', (t) => {
  const before = dna.liveTensors();
  const xs = Array.from({ length: 10 }, () => dna.zeros([3]));
  t.is(dna.liveTensors(), before + 10);
  xs.slice(0, 4).forEach((x) => x.dispose());
  t.is(dna.liveTensors(), before + 6);
  dna.dispose(xs);
  t.is(dna.liveTensors(), before);
});

test.serial('tidy returns liveTensors() to where it was', (t) => {
  const before = dna.liveTensors();
  const result = dna.tidy(() => {
    churn(50);
    const parts = Array.from({ length: 100 }, (_, i) => dna.full([2, 2], i));
    dna.stack(parts).sum(0).mean();
    return 42;
  });
  t.is(result, 42);
  t.is(dna.liveTensors(), before);
});

test.serial('a tensor returned from tidy survives and is disposed later', (t) => {
  const before = dna.liveTensors();
  const r = dna.tidy(() => {
    churn(10);
    return dna.tensor([1, 2, 3]).mul(2);
  });
  t.is(dna.liveTensors(), before + 1);
  t.false(r.isDisposed);
  t.deepEqual(r.toArray(), [2, 4, 6]);
  r.dispose();
  t.true(r.isDisposed);
  t.is(dna.liveTensors(), before);
});

test.serial('arrays and plain objects of tensors returned from tidy survive', (t) => {
  const before = dna.liveTensors();
  const r = dna.tidy(() => {
    churn(5);
    const a = dna.tensor([1]);
    const b = dna.tensor([2]);
    const c = dna.tensor([3]);
    const d = dna.tensor([4]);
    dna.tensor([5]); // dropped
    return { a, nested: { list: [b, c] }, pair: [d, 'label'] as const, n: 7 };
  });
  t.is(dna.liveTensors(), before + 4);
  t.deepEqual(r.a.toArray(), [1]);
  t.deepEqual(
    r.nested.list.map((x) => x.item()),
    [2, 3],
  );
  t.deepEqual(r.pair[0].toArray(), [4]);
  t.is(r.n, 7);
  const arr = dna.tidy(() => [dna.zeros([1]), dna.ones([1]), dna.zeros([5]).sum()]);
  t.is(dna.liveTensors(), before + 7);
  t.true(arr.every((x) => !x.isDisposed));
  dna.dispose(r);
  dna.dispose(arr);
  t.is(dna.liveTensors(), before);
});

test.serial('nested tidy: inner results belong to the outer scope', (t) => {
  const before = dna.liveTensors();
  let innerResult: dna.Tensor | undefined;
  let dropped: dna.Tensor | undefined;
  const outer = dna.tidy(() => {
    dropped = dna.tidy(() => {
      churn(3);
      return dna.tensor([1]);
    });
    innerResult = dna.tidy(() => dna.tensor([2]).add(1));
    t.false(dropped.isDisposed);
    t.false(innerResult.isDisposed);
    return innerResult;
  });
  t.true(outer === innerResult);
  t.false(outer.isDisposed);
  t.true(dropped!.isDisposed); // returned by the inner tidy, not by the outer one
  t.is(dna.liveTensors(), before + 1);
  outer.dispose();
  t.is(dna.liveTensors(), before);

  // Three levels deep.
  const deep = dna.tidy(() => dna.tidy(() => dna.tidy(() => [dna.ones([2]), churn(2)])[0]));
  t.deepEqual(deep.toArray(), [1, 1]);
  t.is(dna.liveTensors(), before + 1);
  deep.dispose();
  t.is(dna.liveTensors(), before);
});

test.serial('keep() takes a tensor out of every enclosing tidy', (t) => {
  const before = dna.liveTensors();
  let kept: dna.Tensor | undefined;
  let alsoKept: dna.Tensor | undefined;
  dna.tidy(() => {
    kept = dna.keep(dna.tensor([7, 8]));
    dna.tidy(() => {
      alsoKept = dna.keep(dna.tensor([9]).mul(2));
      churn(2);
    });
    churn(2);
  });
  t.false(kept!.isDisposed);
  t.false(alsoKept!.isDisposed);
  t.deepEqual(kept!.toArray(), [7, 8]);
  t.deepEqual(alsoKept!.toArray(), [18]);
  t.is(dna.liveTensors(), before + 2);
  // keep() returns its argument and is harmless outside tidy.
  t.true(dna.keep(kept!) === kept);
  dna.dispose([kept, alsoKept]);
  t.is(dna.liveTensors(), before);
});

test.serial('tidy disposes everything and rethrows when fn throws', (t) => {
  const before = dna.liveTensors();
  const error = new Error('boom');
  let inside: dna.Tensor | undefined;
  t.throws(
    () =>
      dna.tidy(() => {
        churn(5);
        inside = dna.tensor([1]);
        throw error;
      }),
    { is: error },
  );
  t.true(inside!.isDisposed);
  t.is(dna.liveTensors(), before);
  // A native error inside a nested tidy.
  t.throws(
    () =>
      dna.tidy(() => {
        const a = dna.ones([2, 3]);
        return dna.tidy(() => a.matmul(a));
      }),
    { instanceOf: Error, message: /^matmul:/ },
  );
  t.is(dna.liveTensors(), before);
  // The scope stack is intact afterwards: a following tidy still works.
  const r = dna.tidy(() => {
    churn(1);
    return dna.ones([1]);
  });
  t.is(dna.liveTensors(), before + 1);
  r.dispose();
});

test.serial('tidy with an async fn throws and leaks nothing', async (t) => {
  const before = dna.liveTensors();
  let made: dna.Tensor | undefined;
  t.throws(
    () =>
      dna.tidy((async () => {
        churn(3);
        made = dna.tensor([1, 2]);
        return made;
      }) as () => unknown),
    { instanceOf: TypeError, message: /synchronous/ },
  );
  t.true(made!.isDisposed);
  t.is(dna.liveTensors(), before);
  await new Promise((resolve) => setImmediate(resolve));
  t.is(dna.liveTensors(), before);
  // And the next tidy still works.
  const r = dna.tidy(() => dna.ones([1]));
  t.is(dna.liveTensors(), before + 1);
  r.dispose();
  t.is(dna.liveTensors(), before);
});

test.serial('dispose() is idempotent', (t) => {
  const before = dna.liveTensors();
  const x = dna.zeros([10]);
  t.is(dna.liveTensors(), before + 1);
  x.dispose();
  x.dispose();
  x.dispose();
  t.true(x.isDisposed);
  t.is(dna.liveTensors(), before);
  dna.dispose([x, x]);
  t.is(dna.liveTensors(), before);
  // Disposing inside a tidy that later ends is fine too.
  dna.tidy(() => {
    const y = dna.ones([2]);
    y.dispose();
  });
  t.is(dna.liveTensors(), before);
});

test.serial('using a disposed tensor throws an Error mentioning "disposed"', (t) => {
  const x = dna.tensor([1, 2, 3]);
  const other = dna.tensor([1, 1, 1]);
  x.dispose();
  const uses: Array<[string, () => unknown]> = [
    ['shape', () => x.shape],
    ['dtype', () => x.dtype],
    ['device', () => x.device],
    ['numel', () => x.numel],
    ['data', () => x.data()],
    ['toArray', () => x.toArray()],
    ['item', () => x.item()],
    ['add', () => x.add(1)],
    ['add as the other operand', () => other.add(x)],
    ['exp', () => x.exp()],
    ['sum', () => x.sum()],
    ['reshape', () => x.reshape([3])],
    ['to', () => x.to('cpu', 'float64')],
    ['requiresGrad', () => x.requiresGrad],
    ['grad', () => x.grad],
    ['backward', () => x.backward()],
    ['cat', () => dna.cat([other, x])],
    ['where', () => dna.where(other.gt(0), x, 0)],
    ['bernoulli', () => dna.bernoulli(x)],
  ];
  for (const [what, use] of uses) {
    t.throws(use, { instanceOf: Error, message: /disposed/ }, what);
  }
  t.is(x.toString(), 'Tensor(disposed)');
  t.true(x.isDisposed);
  other.dispose();
});

test.serial('console.log shows a tensor: shape, dtype, device, grad and its first values, read alone', (t) => {
  const before = dna.liveTensors();
  dna.tidy(() => {
    const small = dna.tensor([
      [1, 2],
      [3, 4.5],
    ]);
    t.is(inspect(small), 'Tensor [2, 2] float32 cpu [1, 2, 3, 4.5]');
    const big = dna
      .arange(0, 3 * 32 * 32)
      .div(7)
      .reshape([3, 32, 32]);
    t.is(inspect(big), 'Tensor [3, 32, 32] float32 cpu [0, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, ... 3,066 more]');
    t.is(inspect(dna.tensor([5, -6], [2], { dtype: 'int64' })), 'Tensor [2] int64 cpu [5, -6]');
    t.is(inspect(dna.tensor([1, 0, 1], [3], { dtype: 'uint8' }).gt(0)), 'Tensor [3] bool cpu [1, 0, 1]');
    t.is(inspect(dna.full([], 2.5)), 'Tensor [] float32 cpu 2.5');
    t.is(inspect(dna.zeros([0, 3])), 'Tensor [0, 3] float32 cpu []');
    t.is(inspect(dna.ones([2]).requireGrad()), 'Tensor [2] float32 cpu requires grad [1, 1]');
    // Inside objects, as console.log prints them.
    t.is(inspect({ x: small }), '{ x: Tensor [2, 2] float32 cpu [1, 2, 3, 4.5] }');
    small.dispose();
    t.is(inspect(small), 'Tensor(disposed)');
  });
  t.is(dna.liveTensors(), before, 'the views it reads are dropped with the rest');
  // Outside any tidy scope too.
  const x = dna.ones([3]);
  const made = dna.liveTensors();
  t.is(inspect(x), 'Tensor [3] float32 cpu [1, 1, 1]');
  t.is(dna.liveTensors(), made);
  x.dispose();
});

test.serial('dispose(array / object) disposes every tensor in it', (t) => {
  const before = dna.liveTensors();
  const list = [dna.zeros([1]), dna.ones([2]), dna.full([3], 2)];
  dna.dispose(list);
  t.true(list.every((x) => x.isDisposed));
  const obj = { a: dna.zeros([1]), b: [dna.ones([1]), { c: dna.ones([1]) }], s: 'x', n: null };
  dna.dispose(obj);
  t.true(obj.a.isDisposed);
  t.true((obj.b[0] as dna.Tensor).isDisposed);
  t.true((obj.b[1] as { c: dna.Tensor }).c.isDisposed);
  const single = dna.zeros([1]);
  dna.dispose(single);
  t.true(single.isDisposed);
  dna.dispose(undefined);
  dna.dispose(42);
  t.is(dna.liveTensors(), before);
});

test.serial('disposing a base tensor leaves its views valid', (t) => {
  const before = dna.liveTensors();
  const base = dna.tidy(() => dna.arange(12, undefined, 1, { dtype: 'float32' }).reshape([3, 4]));
  const view = base.narrow(1, 1, 2);
  const row = base.select(0, 2);
  base.dispose();
  t.deepEqual(view.toArray(), [
    [1, 2],
    [5, 6],
    [9, 10],
  ]);
  t.deepEqual(row.toArray(), [8, 9, 10, 11]);
  dna.dispose([view, row]);
  t.is(dna.liveTensors(), before);
});

test.serial('gradients read inside tidy are disposed with it; the leaf keeps its gradient', (t) => {
  const x = dna.tensor([1, 2], undefined, { requiresGrad: true });
  const before = dna.liveTensors();
  dna.tidy(() => {
    x.square().sum().backward();
    t.deepEqual(x.grad!.toArray(), [2, 4]);
  });
  t.is(dna.liveTensors(), before);
  t.deepEqual(x.grad!.toArray(), [2, 4]);
  x.dispose();
});

test.serial('tensors created outside tidy and returned from it are untouched', (t) => {
  const outside = dna.ones([2]);
  const before = dna.liveTensors();
  const r = dna.tidy(() => {
    churn(2);
    return outside;
  });
  t.is(r, outside);
  t.false(outside.isDisposed);
  t.is(dna.liveTensors(), before);
  outside.dispose();
});
