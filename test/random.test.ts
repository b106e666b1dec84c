// Seeded randomness: reproducibility, generator state, ranges, rough statistics, bad arguments.
import test from 'ava';
import * as dna from '../lib/index.js';

const nums = (x: dna.Tensor) => Array.from(x.data() as ArrayLike<number | bigint>, Number);
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const std = (v: number[]) => {
  const m = mean(v);
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1));
};

type Draw = (g: dna.Generator) => dna.Tensor;
const probabilities = dna.tensor(Array.from({ length: 200 }, (_, i) => (i % 10) / 10));
const draws: Array<[string, Draw]> = [
  ['rand', (g) => dna.rand([50], { generator: g })],
  ['rand float64', (g) => dna.rand([3, 7], { generator: g, dtype: 'float64' })],
  ['randn', (g) => dna.randn([50], { generator: g })],
  ['uniform', (g) => dna.uniform(-3, 5, [40], { generator: g })],
  ['randint', (g) => dna.randint(-100, 100, [60], { generator: g })],
  ['randint int32', (g) => dna.randint(0, 1000, [60], { generator: g, dtype: 'int32' })],
  ['randperm', (g) => dna.randperm(64, { generator: g })],
  ['bernoulli', (g) => dna.bernoulli(probabilities, { generator: g })],
];

test('the same seed gives the same draws for every random function', (t) => {
  for (const [name, draw] of draws) {
    const a = draw(new dna.Generator(1234));
    const b = draw(new dna.Generator(1234));
    t.deepEqual(nums(a), nums(b), name);
    t.is(a.dtype, b.dtype);
    // A sequence of draws replays too.
    const g1 = new dna.Generator(99n);
    const g2 = new dna.Generator(99);
    t.deepEqual([draw(g1), draw(g1), draw(g1)].map(nums), [draw(g2), draw(g2), draw(g2)].map(nums), `${name} sequence`);
  }
});

test('different seeds give different draws; successive draws differ', (t) => {
  for (const [name, draw] of draws) {
    t.notDeepEqual(nums(draw(new dna.Generator(1))), nums(draw(new dna.Generator(2))), name);
    const g = new dna.Generator(3);
    t.notDeepEqual(nums(draw(g)), nums(draw(g)), `${name} successive`);
  }
});

test('Generator state()/setState() replays the same sequence', (t) => {
  const g = new dna.Generator(2024);
  dna.rand([17], { generator: g }); // advance a bit
  dna.randn([3], { generator: g }); // leaves a cached normal behind sometimes
  const state = g.state();
  t.is(state.dtype, 'uint8');
  t.is(state.ndim, 1);
  t.true(state.numel > 0);
  const first = draws.map(([, draw]) => nums(draw(g)));
  g.setState(state);
  const again = draws.map(([, draw]) => nums(draw(g)));
  t.deepEqual(again, first);
  // The state moves to another generator, whatever its seed.
  const other = new dna.Generator(7);
  other.setState(state);
  t.deepEqual(
    draws.map(([, draw]) => nums(draw(other))),
    first,
  );
  // state() is a snapshot, not a live view.
  const snapshot = g.state();
  const before = nums(snapshot);
  dna.rand([5], { generator: g });
  t.deepEqual(nums(snapshot), before);
  t.notDeepEqual(nums(g.state()), before);
});

test('setState rejects what is not a generator state', (t) => {
  const g = new dna.Generator(1);
  t.throws(() => g.setState(dna.tensor([1, 2, 3])), { instanceOf: Error, message: /uint8/ });
  t.throws(() => g.setState(dna.zeros([2, 3], { dtype: 'uint8' })), { instanceOf: Error, message: /1-d uint8/ });
  t.throws(() => g.setState(dna.zeros([10], { dtype: 'uint8' })), {
    instanceOf: Error,
    message: /^setGeneratorState:/,
  });
  // A state of the right size with garbage inside: an Error, not a crash.
  const size = g.state().numel;
  const garbage = dna.tensor(Uint8Array.from({ length: size }, (_, i) => (i * 37 + 11) & 255));
  t.throws(() => g.setState(garbage), { instanceOf: Error });
  // The generator still works afterwards.
  t.is(dna.rand([2], { generator: g }).numel, 2);
});

test('seed getter returns a bigint; device is cpu', (t) => {
  const g = new dna.Generator(42);
  t.is(typeof g.seed, 'bigint');
  t.is(g.seed, 42n);
  t.is(new dna.Generator(2n ** 63n + 5n).seed, 2n ** 63n + 5n);
  t.is(new dna.Generator(2n ** 64n - 1n).seed, 2n ** 64n - 1n);
  t.is(new dna.Generator(0).seed, 0n);
  t.is(new dna.Generator(Number.MAX_SAFE_INTEGER).seed, BigInt(Number.MAX_SAFE_INTEGER));
  t.is(g.device, 'cpu');
  // Drawing does not change the seed.
  dna.rand([10], { generator: g });
  t.is(g.seed, 42n);
});

test('bad seeds throw', (t) => {
  t.throws(() => new dna.Generator(-1), { instanceOf: Error, message: /^generator:.*non-negative/ });
  t.throws(() => new dna.Generator(-1n), { instanceOf: Error, message: /^generator:/ });
  t.throws(() => new dna.Generator(2n ** 64n), { instanceOf: Error, message: /^generator:/ });
  t.throws(() => new dna.Generator(1.5), { instanceOf: Error, message: /^generator:.*integer/ });
  t.throws(() => new dna.Generator(NaN), { instanceOf: Error });
  t.throws(() => dna.manualSeed(-3), { instanceOf: Error, message: /^manualSeed:/ });
});

test('ranges: rand in [0, 1), uniform in [low, high), randint in [low, high)', (t) => {
  const g = new dna.Generator(5);
  const r = nums(dna.rand([10000], { generator: g }));
  t.true(r.every((v) => v >= 0 && v < 1));
  const u = nums(dna.uniform(-2.5, 0.5, [10000], { generator: g }));
  t.true(u.every((v) => v >= -2.5 && v < 0.5));
  t.true(Math.min(...u) < -2.4 && Math.max(...u) > 0.4);
  const ud = nums(dna.uniform(10, 10.001, [1000], { generator: g, dtype: 'float64' }));
  t.true(ud.every((v) => v >= 10 && v < 10.001));
  const i = dna.randint(-5, 5, [10000], { generator: g });
  t.is(i.dtype, 'int64');
  const iv = nums(i);
  t.true(iv.every((v) => Number.isInteger(v) && v >= -5 && v < 5));
  t.deepEqual(
    [...new Set(iv)].sort((a, b) => a - b),
    [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4],
  );
  const big = nums(dna.randint(2 ** 40, 2 ** 40 + 3, [500], { generator: g }));
  t.true(big.every((v) => v >= 2 ** 40 && v < 2 ** 40 + 3));
  t.deepEqual(nums(dna.randint(7, 8, [20], { generator: g })), Array(20).fill(7));
  t.is(dna.randint(0, 3, [4], { generator: g, dtype: 'float32' }).dtype, 'float32');
});

test('randperm is a permutation of 0..n-1; bernoulli draws 0/1 with p = 0 / 1 exact', (t) => {
  const g = new dna.Generator(6);
  for (const n of [0, 1, 2, 10, 257]) {
    const p = dna.randperm(n, { generator: g });
    t.is(p.dtype, 'int64');
    t.deepEqual(p.shape, [n]);
    t.deepEqual(
      nums(p).sort((a, b) => a - b),
      Array.from({ length: n }, (_, i) => i),
    );
  }
  const probs = dna.tensor([0, 1, 0, 1, 0.5]).reshape([5, 1]).expand([5, 200]);
  const b = dna.bernoulli(probs, { generator: g });
  t.is(b.dtype, 'float32');
  t.deepEqual(b.shape, [5, 200]);
  const rows = b.toArray() as number[][];
  t.true(rows[0].every((v) => v === 0) && rows[2].every((v) => v === 0));
  t.true(rows[1].every((v) => v === 1) && rows[3].every((v) => v === 1));
  t.true(rows[4].every((v) => v === 0 || v === 1));
  t.true(Math.abs(mean(rows[4]) - 0.5) < 0.15);
  t.is(dna.bernoulli(dna.full([4], 0.5, { dtype: 'float64' })).dtype, 'float64');
});

test('rough statistics: rand mean 0.5, randn mean 0 and std 1', (t) => {
  const g = new dna.Generator(8);
  const r = nums(dna.rand([10000], { generator: g }));
  t.true(Math.abs(mean(r) - 0.5) < 0.02, `rand mean ${mean(r)}`);
  t.true(Math.abs(std(r) - Math.sqrt(1 / 12)) < 0.01, `rand std ${std(r)}`);
  const n = nums(dna.randn([10000], { generator: g }));
  t.true(Math.abs(mean(n)) < 0.05, `randn mean ${mean(n)}`);
  t.true(Math.abs(std(n) - 1) < 0.05, `randn std ${std(n)}`);
  const u = nums(dna.uniform(2, 4, [10000], { generator: g }));
  t.true(Math.abs(mean(u) - 3) < 0.04, `uniform mean ${mean(u)}`);
  const p = nums(dna.bernoulli(dna.full([10000], 0.3), { generator: g }));
  t.true(Math.abs(mean(p) - 0.3) < 0.02, `bernoulli mean ${mean(p)}`);
  const i = nums(dna.randint(0, 10, [10000], { generator: g }));
  t.true(Math.abs(mean(i) - 4.5) < 0.15, `randint mean ${mean(i)}`);
});

test('manualSeed makes default-generator draws reproducible', (t) => {
  const sample = () => [
    nums(dna.rand([20])),
    nums(dna.randn([20])),
    nums(dna.uniform(0, 9, [5])),
    nums(dna.randint(0, 1000, [20])),
    nums(dna.randperm(30)),
    nums(dna.bernoulli(dna.full([30], 0.5))),
  ];
  dna.manualSeed(31337);
  const a = sample();
  dna.manualSeed(31337);
  const b = sample();
  t.deepEqual(a, b);
  dna.manualSeed(31337n);
  t.deepEqual(sample(), a);
  dna.manualSeed(31338);
  t.notDeepEqual(sample(), a);
  // A Generator is independent of the default generator.
  dna.manualSeed(1);
  const withGen = nums(dna.rand([5], { generator: new dna.Generator(1) }));
  const x = nums(dna.rand([5]));
  dna.manualSeed(1);
  dna.rand([5], { generator: new dna.Generator(99) });
  t.deepEqual(nums(dna.rand([5])), x);
  t.is(withGen.length, 5);
});

test('bad arguments throw Errors', (t) => {
  const g = new dna.Generator(1);
  t.throws(() => dna.uniform(2, 1, [3]), { instanceOf: Error, message: /^uniform:.*low < high/ });
  t.throws(() => dna.uniform(NaN, 1, [3]), { instanceOf: Error, message: /^uniform:/ });
  t.throws(() => dna.randint(5, 5, [3]), { instanceOf: Error, message: /^randint:.*low < high/ });
  t.throws(() => dna.randint(6, 5, [3], { generator: g }), { instanceOf: Error, message: /^randint:/ });
  t.throws(() => dna.randint(0.5, 5, [3]), { instanceOf: Error, message: /^randint:.*integer/ });
  t.throws(() => dna.randperm(-1), { instanceOf: Error, message: /^randperm:.*n >= 0/ });
  t.throws(() => dna.randperm(2.5), { instanceOf: Error, message: /^randperm:/ });
  t.throws(() => dna.rand([-1]), { instanceOf: Error, message: /^rand:.*negative/ });
  t.throws(() => dna.randn([2, -3], { generator: g }), { instanceOf: Error, message: /^randn:.*negative/ });
  t.throws(() => dna.uniform(0, 1, [-2]), { instanceOf: Error, message: /^uniform:/ });
  t.throws(() => dna.randint(0, 2, [-2]), { instanceOf: Error, message: /^randint:/ });
  t.throws(() => dna.rand([2], { dtype: 'int64' }), { instanceOf: Error, message: /^rand:/ });
  t.throws(() => dna.rand([2], { dtype: 'nope' as dna.DType }), { instanceOf: Error, message: /unknown dtype/ });
  t.throws(() => dna.bernoulli(dna.tensor([1.5, 0.5]), { generator: g }), {
    instanceOf: Error,
    message: /^bernoulli:/,
  });
  t.throws(() => dna.bernoulli(dna.tensor([-0.1])), { instanceOf: Error, message: /^bernoulli:/ });
});

test("a 'cuda' generator or device throws on this CPU-only build", (t) => {
  if (dna.backend().cuda) {
    t.pass('CUDA is available here; nothing to check');
    return;
  }
  t.throws(() => new dna.Generator(1, 'cuda'), { instanceOf: Error, message: /^generator:.*CUDA/ });
  t.throws(() => new dna.Generator(1, 'cuda:0'), { instanceOf: Error, message: /CUDA/ });
  t.throws(() => new dna.Generator(1, 'tpu'), { instanceOf: Error, message: /unknown device/ });
  const g = new dna.Generator(1);
  // A CPU generator for a tensor made on another device.
  t.throws(() => dna.rand([2], { generator: g, device: 'cuda' }), {
    instanceOf: Error,
    message: /^rand:.*(generator|cuda)/i,
  });
  t.throws(() => dna.randperm(3, { device: 'cuda' }), { instanceOf: Error, message: /cuda/i });
  t.throws(() => dna.randn([2], { device: 'cuda' }), { instanceOf: Error, message: /cuda/i });
});
