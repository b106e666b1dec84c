// Every Tensor op and free function against values computed in plain JS on seeded random inputs.
import test, { type ExecutionContext } from 'ava';
import * as dna from '../lib/index.js';
import { native } from '../lib/engine/native.js';
import { mulberry32 } from './helpers/random.js';

// ---- a tiny n-d array in plain JS ----

interface ND {
  shape: number[];
  data: number[];
}

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const stridesOf = (shape: number[]) => shape.map((_, d) => sizeOf(shape.slice(d + 1)));

function unravel(flat: number, shape: number[]): number[] {
  return stridesOf(shape).map((s, d) => Math.floor(flat / s) % shape[d]);
}

function nd(shape: number[], f: (idx: number[]) => number): ND {
  return { shape, data: Array.from({ length: sizeOf(shape) }, (_, i) => f(unravel(i, shape))) };
}

/** Reads a[idx], broadcasting: idx is right-aligned and size-1 dims read index 0. */
function get(a: ND, idx: number[]): number {
  const off = idx.length - a.shape.length;
  const strides = stridesOf(a.shape);
  let flat = 0;
  a.shape.forEach((n, d) => (flat += (n === 1 ? 0 : idx[d + off]) * strides[d]));
  return a.data[flat];
}

function broadcastShape(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    return x === 1 ? y : x;
  });
}

const scalarND = (v: number): ND => ({ shape: [], data: [v] });
const asND = (v: ND | number): ND => (typeof v === 'number' ? scalarND(v) : v);

function map1(a: ND, f: (x: number) => number): ND {
  return { shape: a.shape, data: a.data.map(f) };
}
function map2(a: ND | number, b: ND | number, f: (x: number, y: number) => number): ND {
  const A = asND(a);
  const B = asND(b);
  return nd(broadcastShape(A.shape, B.shape), (idx) => f(get(A, idx), get(B, idx)));
}

/** Reduces over `dims` (all when undefined) with `f` over each group's values. */
function reduce(a: ND, dims: number[] | undefined, keepdim: boolean, f: (values: number[]) => number): ND {
  const all = dims === undefined ? a.shape.map((_, d) => d) : dims.map((d) => (d < 0 ? d + a.shape.length : d));
  const outKeep = a.shape.map((n, d) => (all.includes(d) ? 1 : n));
  const groups = new Map<number, number[]>();
  for (let i = 0; i < a.data.length; i++) {
    const idx = unravel(i, a.shape).map((v, d) => (all.includes(d) ? 0 : v));
    const key = idx.reduce((acc, v, d) => acc + v * stridesOf(outKeep)[d], 0);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(a.data[i]);
  }
  const data = Array.from({ length: sizeOf(outKeep) }, (_, k) => f(groups.get(k) ?? []));
  return { shape: keepdim ? outKeep : a.shape.filter((_, d) => !all.includes(d)), data };
}

function randND(rnd: () => number, shape: number[], lo = -3, hi = 3): ND {
  return nd(shape, () => Math.fround(lo + (hi - lo) * rnd()));
}
function intND(rnd: () => number, shape: number[], lo: number, hi: number): ND {
  return nd(shape, () => lo + Math.floor((hi - lo) * rnd()));
}

function T(a: ND, dtype: dna.DType = 'float32'): dna.Tensor {
  if (dtype === 'int64')
    return dna.tensor(
      BigInt64Array.from(a.data, (v) => BigInt(v)),
      a.shape,
    );
  return dna.tensor(new Float64Array(a.data), a.shape, { dtype });
}

const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
const mean = (v: number[]) => sum(v) / v.length;
const variance = (v: number[], unbiased: boolean) => {
  const m = mean(v);
  return sum(v.map((x) => (x - m) ** 2)) / (v.length - (unbiased ? 1 : 0));
};
const logsumexp = (v: number[]) => {
  const m = Math.max(...v);
  return m + Math.log(sum(v.map((x) => Math.exp(x - m))));
};
const roundHalfEven = (x: number) => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

interface Tol {
  rtol?: number;
  atol?: number;
  dtype?: dna.DType;
}

/** Compares a tensor's shape, dtype (when given) and values elementwise with a tolerance. */
function close(t: ExecutionContext, actual: dna.Tensor, expected: ND, what: string, tol: Tol = {}): void {
  const rtol = tol.rtol ?? 1e-5;
  const atol = tol.atol ?? 1e-6;
  t.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  if (tol.dtype) t.is(actual.dtype, tol.dtype, `${what}: dtype`);
  const got = Array.from(actual.data() as ArrayLike<number | bigint>, Number);
  t.is(got.length, expected.data.length, `${what}: numel`);
  let bad = -1;
  for (let i = 0; i < got.length; i++) {
    const e = expected.data[i];
    const g = got[i];
    const ok = Number.isNaN(e) ? Number.isNaN(g) : e === g || Math.abs(g - e) <= atol + rtol * Math.abs(e);
    if (!ok) {
      bad = i;
      break;
    }
  }
  t.is(bad, -1, bad < 0 ? what : `${what}: element ${bad} is ${got[bad]}, expected ${expected.data[bad]}`);
}

const bools = (a: ND) => map1(a, (v) => (v ? 1 : 0));

// ---- elementwise binary ----

test('add / sub / mul / div / pow / remainder / maximum / minimum, tensor and number operands, broadcasting', (t) => {
  const rnd = mulberry32(11);
  const x = randND(rnd, [3, 4]);
  const positive = randND(rnd, [3, 4], 0.5, 2);
  const operands: Array<[string, ND | number]> = [
    ['same shape', randND(rnd, [3, 4])],
    ['row [4]', randND(rnd, [4])],
    ['column [3,1]', randND(rnd, [3, 1])],
    ['scalar tensor []', randND(rnd, [])],
    ['integer number', 3],
    ['fractional number', -1.75],
  ];
  const nonZero = (v: ND | number): ND | number =>
    typeof v === 'number' ? v : map1(v, (u) => (Math.abs(u) < 0.25 ? Math.fround(u < 0 ? u - 0.5 : u + 0.5) : u));
  const op = (v: ND | number) => (typeof v === 'number' ? v : T(v));
  for (const [label, y] of operands) {
    const xt = T(x);
    close(
      t,
      xt.add(op(y)),
      map2(x, y, (a, b) => a + b),
      `add ${label}`,
      { dtype: 'float32' },
    );
    close(
      t,
      xt.sub(op(y)),
      map2(x, y, (a, b) => a - b),
      `sub ${label}`,
      { dtype: 'float32' },
    );
    close(
      t,
      xt.mul(op(y)),
      map2(x, y, (a, b) => a * b),
      `mul ${label}`,
      { dtype: 'float32' },
    );
    const d = nonZero(y);
    close(
      t,
      xt.div(op(d)),
      map2(x, d, (a, b) => a / b),
      `div ${label}`,
      { dtype: 'float32' },
    );
    close(
      t,
      xt.remainder(op(d)),
      map2(x, d, (a, b) => a - b * Math.floor(a / b)),
      `remainder ${label}`,
      {
        dtype: 'float32',
        atol: 1e-5,
      },
    );
    close(t, xt.maximum(op(y)), map2(x, y, Math.max), `maximum ${label}`);
    close(t, xt.minimum(op(y)), map2(x, y, Math.min), `minimum ${label}`);
    const e = typeof y === 'number' ? y : map1(y, (v) => v / 2);
    close(t, T(positive).pow(op(e)), map2(positive, e, Math.pow), `pow ${label}`, { dtype: 'float32' });
  }
  close(t, T(positive).pow(0.5), map1(positive, Math.sqrt), 'pow 0.5');
  close(
    t,
    T(x).pow(2),
    map1(x, (v) => v * v),
    'pow 2',
  );
});

test('binary ops through the raw addon accept a number as the first operand', (t) => {
  const rnd = mulberry32(12);
  const x = randND(rnd, [2, 5], 0.5, 3);
  const xt = T(x);
  close(
    t,
    new dna.Tensor(native.sub(2, xt.handle)),
    map1(x, (v) => 2 - v),
    'number - tensor',
  );
  close(
    t,
    new dna.Tensor(native.div(1, xt.handle)),
    map1(x, (v) => 1 / v),
    'number / tensor',
  );
  close(
    t,
    new dna.Tensor(native.pow(2, xt.handle)),
    map1(x, (v) => 2 ** v),
    'number ** tensor',
  );
  close(t, new dna.Tensor(native.lt(1, xt.handle)), bools(map1(x, (v) => +(1 < v))), 'number < tensor', {
    dtype: 'bool',
  });
  t.throws(() => native.add(1, 2), { instanceOf: Error, message: /^add:/ });
});

test('comparisons return bool tensors', (t) => {
  const rnd = mulberry32(13);
  const x = intND(rnd, [4, 5], -2, 3);
  const y = intND(rnd, [4, 5], -2, 3);
  const row = intND(rnd, [5], -2, 3);
  const cases: Array<
    [keyof dna.Tensor & ('eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge'), (a: number, b: number) => boolean]
  > = [
    ['eq', (a, b) => a === b],
    ['ne', (a, b) => a !== b],
    ['lt', (a, b) => a < b],
    ['le', (a, b) => a <= b],
    ['gt', (a, b) => a > b],
    ['ge', (a, b) => a >= b],
  ];
  for (const [name, f] of cases) {
    const fn = (a: number, b: number) => +f(a, b);
    close(t, T(x)[name](T(y)), map2(x, y, fn), `${name} tensor`, { dtype: 'bool' });
    close(t, T(x)[name](T(row)), map2(x, row, fn), `${name} broadcast`, { dtype: 'bool' });
    close(t, T(x)[name](0), map2(x, 0, fn), `${name} number`, { dtype: 'bool' });
    close(t, T(x)[name](0.5), map2(x, 0.5, fn), `${name} fractional number`, { dtype: 'bool' });
    close(t, T(x, 'int64')[name](1), map2(x, 1, fn), `${name} int64 vs number`, { dtype: 'bool' });
  }
  t.true(
    T(x)
      .eq(T(x))
      .data()
      .every((v) => v === 1),
  );
});

test('logicalAnd / logicalOr / logicalNot on bool and numeric tensors', (t) => {
  const rnd = mulberry32(14);
  const a = intND(rnd, [3, 4], 0, 2);
  const b = intND(rnd, [3, 4], 0, 2);
  const f = intND(rnd, [3, 4], -1, 2); // numbers: non-zero is true
  const A = T(a, 'bool');
  const B = T(b, 'bool');
  close(
    t,
    A.logicalAnd(B),
    map2(a, b, (x, y) => +(x && y)),
    'and',
    { dtype: 'bool' },
  );
  close(
    t,
    A.logicalOr(B),
    map2(a, b, (x, y) => +(x || y)),
    'or',
    { dtype: 'bool' },
  );
  close(
    t,
    A.logicalNot(),
    map1(a, (x) => +!x),
    'not',
    { dtype: 'bool' },
  );
  close(
    t,
    T(f).logicalAnd(A),
    map2(f, a, (x, y) => +(x !== 0 && y !== 0)),
    'and float/bool',
    { dtype: 'bool' },
  );
  close(
    t,
    T(f).logicalOr(0),
    map1(f, (x) => +(x !== 0)),
    'or number',
    { dtype: 'bool' },
  );
  close(
    t,
    T(f).logicalNot(),
    map1(f, (x) => +(x === 0)),
    'not float',
    { dtype: 'bool' },
  );
  close(t, new dna.Tensor(native.logicalAnd(A.handle, true)), a, 'and true (raw addon)', { dtype: 'bool' });
});

// ---- elementwise unary ----

test('unary ops match Math', (t) => {
  const rnd = mulberry32(15);
  const any = randND(rnd, [4, 6], -4, 4);
  const positive = randND(rnd, [4, 6], 0.05, 5);
  const aboveMinusOne = randND(rnd, [4, 6], -0.9, 5);
  const nonZero = map1(any, (v) => (Math.abs(v) < 0.1 ? 0.5 : v));
  const cases: Array<[string, (x: dna.Tensor) => dna.Tensor, (v: number) => number, ND]> = [
    ['neg', (x) => x.neg(), (v) => -v, any],
    ['abs', (x) => x.abs(), Math.abs, any],
    ['sign', (x) => x.sign(), Math.sign, map1(any, (v) => (Math.abs(v) < 0.5 ? 0 : v))],
    ['exp', (x) => x.exp(), Math.exp, any],
    ['log', (x) => x.log(), Math.log, positive],
    ['log1p', (x) => x.log1p(), Math.log1p, aboveMinusOne],
    ['sqrt', (x) => x.sqrt(), Math.sqrt, positive],
    ['square', (x) => x.square(), (v) => v * v, any],
    ['reciprocal', (x) => x.reciprocal(), (v) => 1 / v, nonZero],
    ['sin', (x) => x.sin(), Math.sin, any],
    ['cos', (x) => x.cos(), Math.cos, any],
    ['tanh', (x) => x.tanh(), Math.tanh, any],
    ['sigmoid', (x) => x.sigmoid(), sigmoid, any],
    ['relu', (x) => x.relu(), (v) => Math.max(v, 0), any],
    ['floor', (x) => x.floor(), Math.floor, any],
    ['ceil', (x) => x.ceil(), Math.ceil, any],
    ['round', (x) => x.round(), roundHalfEven, any],
  ];
  for (const [name, op, f, input] of cases) {
    close(t, op(T(input)), map1(input, f), name, { dtype: 'float32' });
    close(t, op(T(input, 'float64')), map1(input, f), `${name} float64`, {
      dtype: 'float64',
      rtol: 1e-12,
      atol: 1e-12,
    });
  }
  // Rounding ties go to even; floor/ceil/round of exact halves.
  const halves = { shape: [8], data: [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5] };
  close(t, T(halves).round(), map1(halves, roundHalfEven), 'round halves');
  t.deepEqual(T(halves).round().toArray(), [-2, -2, -0, 0, 2, 2, 4, 4]);
  close(t, T(halves).floor(), map1(halves, Math.floor), 'floor halves');
  close(t, T(halves).ceil(), map1(halves, Math.ceil), 'ceil halves');
  // Integer tensors keep their dtype where it makes sense.
  const ints = intND(rnd, [5], -5, 5);
  close(
    t,
    T(ints, 'int64').neg(),
    map1(ints, (v) => -v),
    'neg int64',
    { dtype: 'int64' },
  );
  close(t, T(ints, 'int64').abs(), map1(ints, Math.abs), 'abs int64', { dtype: 'int64' });
});

test('isnan / isfinite', (t) => {
  const special = { shape: [7], data: [0, 1.5, NaN, Infinity, -Infinity, -0, 3e38] };
  close(
    t,
    T(special).isnan(),
    map1(special, (v) => +Number.isNaN(v)),
    'isnan',
    { dtype: 'bool' },
  );
  close(
    t,
    T(special).isfinite(),
    map1(special, (v) => +Number.isFinite(v)),
    'isfinite',
    { dtype: 'bool' },
  );
  close(
    t,
    T(special, 'float64').isfinite(),
    map1(special, (v) => +Number.isFinite(v)),
    'isfinite float64',
    { dtype: 'bool' },
  );
  t.deepEqual(
    dna
      .tensor(new Int32Array([1, 2]))
      .isnan()
      .toArray(),
    [0, 0],
  );
});

test('logit with and without eps', (t) => {
  const rnd = mulberry32(16);
  const p = randND(rnd, [3, 5], 0.02, 0.98);
  const logit = (v: number) => Math.log(v / (1 - v));
  close(t, T(p).logit(), map1(p, logit), 'logit', { rtol: 1e-4, atol: 1e-5 });
  close(t, T(p, 'float64').logit(), map1(p, logit), 'logit float64', { rtol: 1e-12 });
  const edges = { shape: [7], data: [0, 1, 0.01, 0.99, 0.5, 0.04, 0.2].map(Math.fround) };
  const eps = 0.05;
  const clamped = (v: number) => logit(Math.min(Math.max(v, Math.fround(eps)), 1 - Math.fround(eps)));
  close(t, T(edges).logit(eps), map1(edges, clamped), 'logit eps', { rtol: 1e-4, atol: 1e-5 });
  const raw = T(edges).logit().toArray() as number[];
  t.is(raw[0], -Infinity);
  t.is(raw[1], Infinity);
  t.true((T(edges).logit(eps).isfinite().toArray() as number[]).every((v) => v === 1));
});

test('clamp with min, max or both', (t) => {
  const rnd = mulberry32(17);
  const x = randND(rnd, [4, 5], -3, 3);
  close(
    t,
    T(x).clamp(-1, 1),
    map1(x, (v) => Math.min(Math.max(v, -1), 1)),
    'clamp both',
  );
  close(
    t,
    T(x).clamp(0.5),
    map1(x, (v) => Math.max(v, 0.5)),
    'clamp min',
  );
  close(
    t,
    T(x).clamp(null, -0.25),
    map1(x, (v) => Math.min(v, -0.25)),
    'clamp max',
  );
  close(
    t,
    T(x).clamp(undefined, 2),
    map1(x, (v) => Math.min(v, 2)),
    'clamp max (undefined min)',
  );
  const ints = intND(rnd, [6], -5, 5);
  close(
    t,
    T(ints, 'int64').clamp(-2, 2),
    map1(ints, (v) => Math.min(Math.max(v, -2), 2)),
    'clamp int64',
  );
  t.throws(() => T(x).clamp(), { instanceOf: Error, message: /clamp/ });
});

test('where with tensor and number branches', (t) => {
  const rnd = mulberry32(18);
  const c = intND(rnd, [3, 4], 0, 2);
  const a = randND(rnd, [3, 4]);
  const b = randND(rnd, [3, 4]);
  const row = randND(rnd, [4]);
  const C = T(c, 'bool');
  const pick = (x: ND | number, y: ND | number) => {
    const X = asND(x);
    const Y = asND(y);
    return nd([3, 4], (idx) => (get(c, idx) ? get(X, idx) : get(Y, idx)));
  };
  close(t, dna.where(C, T(a), T(b)), pick(a, b), 'tensor/tensor', { dtype: 'float32' });
  close(t, dna.where(C, T(a), T(row)), pick(a, row), 'tensor/broadcast row', { dtype: 'float32' });
  close(t, dna.where(C, T(a), 0.5), pick(a, 0.5), 'tensor/number', { dtype: 'float32' });
  close(t, dna.where(C, -2, T(b)), pick(-2, b), 'number/tensor', { dtype: 'float32' });
  close(t, dna.where(C, 1.5, -1), pick(1.5, -1), 'number/number', { dtype: 'float32' });
  close(
    t,
    dna.where(T(a).gt(0), T(a), 0),
    map1(a, (v) => Math.max(v, 0)),
    'relu by where',
  );
  close(t, dna.where(C, T(a, 'float64'), 7), pick(a, 7), 'float64 branch keeps float64', { dtype: 'float64' });
  t.throws(() => dna.where(T(a), 1, 0), { instanceOf: Error, message: /bool/ });
});

// ---- reductions ----

test('sum / mean / max / min / logsumexp / var / std with and without dims and keepdim', (t) => {
  const rnd = mulberry32(19);
  const x = randND(rnd, [2, 3, 4]);
  const X = T(x);
  const dimsCases: Array<number | number[] | undefined> = [undefined, 0, 1, 2, -1, [0, 2], [1, 2], [0, 1, 2]];
  const norm = (d: number | number[] | undefined) => (d === undefined ? undefined : Array.isArray(d) ? d : [d]);
  for (const dims of dimsCases) {
    for (const keepdim of [false, true]) {
      const label = `dims=${JSON.stringify(dims)} keepdim=${keepdim}`;
      const r = (f: (v: number[]) => number) => reduce(x, norm(dims), keepdim, f);
      close(t, X.sum(dims, keepdim), r(sum), `sum ${label}`, { atol: 1e-5 });
      close(t, X.mean(dims, keepdim), r(mean), `mean ${label}`, { atol: 1e-5 });
      close(
        t,
        X.max(dims, keepdim),
        r((v) => Math.max(...v)),
        `max ${label}`,
      );
      close(
        t,
        X.min(dims, keepdim),
        r((v) => Math.min(...v)),
        `min ${label}`,
      );
      close(t, X.logsumexp(dims, keepdim), r(logsumexp), `logsumexp ${label}`, { atol: 1e-5 });
      close(
        t,
        X.var(dims, keepdim),
        r((v) => variance(v, true)),
        `var ${label}`,
        { atol: 1e-5 },
      );
      close(
        t,
        X.var(dims, keepdim, false),
        r((v) => variance(v, false)),
        `var biased ${label}`,
        { atol: 1e-5 },
      );
      close(
        t,
        X.std(dims, keepdim),
        r((v) => Math.sqrt(variance(v, true))),
        `std ${label}`,
        { atol: 1e-5 },
      );
      close(
        t,
        X.std(dims, keepdim, false),
        r((v) => Math.sqrt(variance(v, false))),
        `std biased ${label}`,
        { atol: 1e-5 },
      );
    }
  }
  t.deepEqual(X.sum().shape, []);
  t.deepEqual(X.sum(undefined, true).shape, [1, 1, 1]);
  t.deepEqual(X.mean(1, true).shape, [2, 1, 4]);
  // Integer sums promote to int64; integer max stays integer.
  const ints = intND(rnd, [3, 4], -10, 10);
  close(t, T(ints, 'int64').sum(1), reduce(ints, [1], false, sum), 'int64 sum', { dtype: 'int64' });
  close(t, dna.tensor(new Int32Array(ints.data), [3, 4]).sum(), reduce(ints, undefined, false, sum), 'int32 sum', {
    dtype: 'int64',
  });
  close(
    t,
    T(ints, 'int64').max(0),
    reduce(ints, [0], false, (v) => Math.max(...v)),
    'int64 max',
    { dtype: 'int64' },
  );
});

test('argmax / argmin with and without dim', (t) => {
  const rnd = mulberry32(20);
  const x = randND(rnd, [3, 5]);
  const X = T(x);
  const argOf = (v: number[], better: (a: number, b: number) => boolean) =>
    v.reduce((best, value, i) => (better(value, v[best]) ? i : best), 0);
  const gt = (a: number, b: number) => a > b;
  const lt = (a: number, b: number) => a < b;
  const flatMax = X.argmax();
  t.is(flatMax.dtype, 'int64');
  t.deepEqual(flatMax.shape, []);
  t.is(flatMax.item(), argOf(x.data, gt));
  t.is(X.argmin().item(), argOf(x.data, lt));
  for (const dim of [0, 1, -1]) {
    close(
      t,
      X.argmax(dim),
      reduce(x, [dim], false, (v) => argOf(v, gt)),
      `argmax dim ${dim}`,
      { dtype: 'int64' },
    );
    close(
      t,
      X.argmin(dim),
      reduce(x, [dim], false, (v) => argOf(v, lt)),
      `argmin dim ${dim}`,
      { dtype: 'int64' },
    );
    close(
      t,
      X.argmax(dim, true),
      reduce(x, [dim], true, (v) => argOf(v, gt)),
      `argmax keepdim ${dim}`,
    );
    close(
      t,
      X.argmin(dim, true),
      reduce(x, [dim], true, (v) => argOf(v, lt)),
      `argmin keepdim ${dim}`,
    );
  }
});

test('cumsum along each dim', (t) => {
  const rnd = mulberry32(21);
  const x = randND(rnd, [2, 3, 4]);
  for (const dim of [0, 1, 2, -1]) {
    const d = dim < 0 ? dim + 3 : dim;
    const expected = nd(x.shape, (idx) => {
      let s = 0;
      for (let k = 0; k <= idx[d]; k++)
        s += get(
          x,
          idx.map((v, j) => (j === d ? k : v)),
        );
      return s;
    });
    close(t, T(x).cumsum(dim), expected, `cumsum ${dim}`, { atol: 1e-5 });
  }
  close(
    t,
    T(intND(rnd, [4], 0, 3), 'int64')
      .cumsum(0)
      .ge(0),
    { shape: [4], data: [1, 1, 1, 1] },
    'int64 cumsum',
  );
});

test('softmax / logSoftmax', (t) => {
  const rnd = mulberry32(22);
  const x = randND(rnd, [3, 4, 2], -5, 5);
  for (const dim of [0, 1, 2, -1]) {
    const d = dim < 0 ? dim + 3 : dim;
    const lse = (idx: number[]) => {
      const vals = Array.from({ length: x.shape[d] }, (_, k) =>
        get(
          x,
          idx.map((v, j) => (j === d ? k : v)),
        ),
      );
      return logsumexp(vals);
    };
    close(
      t,
      T(x).logSoftmax(dim),
      nd(x.shape, (idx) => get(x, idx) - lse(idx)),
      `logSoftmax ${dim}`,
      { atol: 1e-5 },
    );
    close(
      t,
      T(x).softmax(dim),
      nd(x.shape, (idx) => Math.exp(get(x, idx) - lse(idx))),
      `softmax ${dim}`,
      { atol: 1e-6 },
    );
  }
  close(
    t,
    T(x).softmax(1).sum(1),
    nd([3, 2], () => 1),
    'softmax sums to 1',
    { atol: 1e-6 },
  );
});

test('oneHot', (t) => {
  const rnd = mulberry32(23);
  const idx = intND(rnd, [6], 0, 4);
  const oh = T(idx, 'int64').oneHot(4);
  close(
    t,
    oh,
    nd([6, 4], ([i, c]) => +(idx.data[i] === c)),
    'oneHot 1-d',
    { dtype: 'int64' },
  );
  const idx2 = intND(rnd, [2, 3], 0, 5);
  close(
    t,
    T(idx2, 'int64').oneHot(5),
    nd([2, 3, 5], ([i, j, c]) => +(get(idx2, [i, j]) === c)),
    'oneHot 2-d',
  );
  t.throws(() => T(idx).oneHot(4), { instanceOf: Error, message: /int64/ });
  t.throws(() => T(idx, 'int64').oneHot(0), { instanceOf: Error, message: /positive/ });
  t.throws(() => T(idx, 'int64').oneHot(2), { instanceOf: Error });
});

test('matmul: 2-d, matrix-vector, batched and broadcast batches', (t) => {
  const rnd = mulberry32(24);
  const mm = (a: ND, b: ND): ND => {
    const batchA = a.shape.slice(0, -2);
    const batchB = b.shape.slice(0, -2);
    const batch = broadcastShape(batchA, batchB);
    const [n, k] = a.shape.slice(-2);
    const m = b.shape[b.shape.length - 1];
    return nd([...batch, n, m], (idx) => {
      const bi = idx.slice(0, -2);
      const [i, j] = idx.slice(-2);
      let s = 0;
      for (let q = 0; q < k; q++) s += get(a, [...bi, i, q]) * get(b, [...bi, q, j]);
      return s;
    });
  };
  const a = randND(rnd, [3, 4]);
  const b = randND(rnd, [4, 5]);
  close(t, T(a).matmul(T(b)), mm(a, b), '2-d', { atol: 1e-5 });
  const v = randND(rnd, [4]);
  close(
    t,
    T(a).matmul(T(v)),
    nd([3], ([i]) => sum(Array.from({ length: 4 }, (_, q) => get(a, [i, q]) * v.data[q]))),
    'mat-vec',
    {
      atol: 1e-5,
    },
  );
  const A = randND(rnd, [2, 3, 4]);
  const B = randND(rnd, [2, 4, 5]);
  close(t, T(A).matmul(T(B)), mm(A, B), 'batched', { atol: 1e-5 });
  close(t, T(A).matmul(T(b)), mm(A, b), 'broadcast rhs', { atol: 1e-5 });
  const A4 = randND(rnd, [2, 1, 3, 4]);
  const B4 = randND(rnd, [3, 4, 2]);
  close(t, T(A4).matmul(T(B4)), mm(A4, B4), 'broadcast batch dims', { atol: 1e-5 });
  close(t, T(a, 'float64').matmul(T(b, 'float64')), mm(a, b), 'float64', {
    rtol: 1e-12,
    atol: 1e-12,
    dtype: 'float64',
  });
  t.throws(() => T(a).matmul(T(a)), { instanceOf: Error, message: /^matmul:/ });
});

// ---- indexing ----

test('gather / indexSelect / maskedFill', (t) => {
  const rnd = mulberry32(25);
  const x = randND(rnd, [3, 5]);
  const idx1 = intND(rnd, [3, 2], 0, 5);
  close(
    t,
    T(x).gather(1, T(idx1, 'int64')),
    nd([3, 2], ([i, j]) => get(x, [i, get(idx1, [i, j])])),
    'gather dim 1',
  );
  const idx0 = intND(rnd, [2, 5], 0, 3);
  close(
    t,
    T(x).gather(0, T(idx0, 'int64')),
    nd([2, 5], ([i, j]) => get(x, [get(idx0, [i, j]), j])),
    'gather dim 0',
  );

  const sel = intND(rnd, [4], 0, 5);
  close(
    t,
    T(x).indexSelect(1, T(sel, 'int64')),
    nd([3, 4], ([i, j]) => get(x, [i, sel.data[j]])),
    'indexSelect dim 1',
  );
  const rows = { shape: [3], data: [2, 0, 2] };
  close(
    t,
    T(x).indexSelect(0, T(rows, 'int64')),
    nd([3, 5], ([i, j]) => get(x, [rows.data[i], j])),
    'indexSelect dim 0',
  );

  const mask = intND(rnd, [3, 5], 0, 2);
  close(
    t,
    T(x).maskedFill(T(mask, 'bool'), -9),
    nd([3, 5], (i) => (get(mask, i) ? -9 : get(x, i))),
    'maskedFill',
  );
  const rowMask = intND(rnd, [5], 0, 2);
  close(
    t,
    T(x).maskedFill(T(rowMask, 'bool'), 0.25),
    nd([3, 5], (i) => (get(rowMask, i) ? 0.25 : get(x, i))),
    'maskedFill broadcast',
  );
  const ints = intND(rnd, [3, 5], 0, 9);
  close(
    t,
    T(ints, 'int64').maskedFill(T(mask, 'bool'), 100),
    nd([3, 5], (i) => (get(mask, i) ? 100 : get(ints, i))),
    'maskedFill int64',
    {
      dtype: 'int64',
    },
  );
  const bmask = dna.zeros([2], { dtype: 'bool' }).maskedFill(dna.tensor([1, 0], undefined, { dtype: 'bool' }), true);
  t.deepEqual(bmask.toArray(), [1, 0]);
  t.throws(() => T(x).gather(1, T(idx1)), { instanceOf: Error });
  t.throws(() => T(x).indexSelect(0, T({ shape: [1], data: [7] }, 'int64')), { instanceOf: Error });
});

test('narrow / select', (t) => {
  const rnd = mulberry32(26);
  const x = randND(rnd, [3, 5, 2]);
  close(
    t,
    T(x).narrow(1, 1, 3),
    nd([3, 3, 2], ([i, j, k]) => get(x, [i, j + 1, k])),
    'narrow dim 1',
  );
  close(
    t,
    T(x).narrow(0, 2, 1),
    nd([1, 5, 2], ([i, j, k]) => get(x, [i + 2, j, k])),
    'narrow dim 0',
  );
  close(
    t,
    T(x).narrow(-1, 1, 1),
    nd([3, 5, 1], ([i, j]) => get(x, [i, j, 1])),
    'narrow dim -1',
  );
  close(
    t,
    T(x).select(1, 4),
    nd([3, 2], ([i, k]) => get(x, [i, 4, k])),
    'select',
  );
  close(
    t,
    T(x).select(0, -1),
    nd([5, 2], ([j, k]) => get(x, [2, j, k])),
    'select negative index',
  );
  close(
    t,
    T(x).select(2, 0),
    nd([3, 5], ([i, j]) => get(x, [i, j, 0])),
    'select last dim',
  );
  t.throws(() => T(x).narrow(1, 4, 3), { instanceOf: Error });
  t.throws(() => T(x).select(0, 3), { instanceOf: Error });
});

test('cat / stack', (t) => {
  const rnd = mulberry32(27);
  const a = randND(rnd, [2, 3]);
  const b = randND(rnd, [2, 3]);
  const c = randND(rnd, [1, 3]);
  close(
    t,
    dna.cat([T(a), T(b), T(c)]),
    nd([5, 3], ([i, j]) => (i < 2 ? get(a, [i, j]) : i < 4 ? get(b, [i - 2, j]) : get(c, [0, j]))),
    'cat 0',
  );
  close(
    t,
    dna.cat([T(a), T(b)], 1),
    nd([2, 6], ([i, j]) => (j < 3 ? get(a, [i, j]) : get(b, [i, j - 3]))),
    'cat 1',
  );
  close(
    t,
    dna.cat([T(a), T(b)], -1),
    nd([2, 6], ([i, j]) => (j < 3 ? get(a, [i, j]) : get(b, [i, j - 3]))),
    'cat -1',
  );
  const both = [a, b];
  close(
    t,
    dna.stack([T(a), T(b)]),
    nd([2, 2, 3], ([s, i, j]) => get(both[s], [i, j])),
    'stack 0',
  );
  close(
    t,
    dna.stack([T(a), T(b)], 1),
    nd([2, 2, 3], ([i, s, j]) => get(both[s], [i, j])),
    'stack 1',
  );
  close(
    t,
    dna.stack([T(a), T(b)], 2),
    nd([2, 3, 2], ([i, j, s]) => get(both[s], [i, j])),
    'stack 2',
  );
  close(
    t,
    dna.stack([T(a), T(b)], -1),
    nd([2, 3, 2], ([i, j, s]) => get(both[s], [i, j])),
    'stack -1',
  );
  t.throws(() => dna.stack([T(a), T(c)]), { instanceOf: Error });
  t.throws(() => dna.cat([]), { instanceOf: Error });
});

// ---- shapes ----

test('reshape / permute / transpose / expand / repeat / flip / flatten / squeeze / unsqueeze', (t) => {
  const rnd = mulberry32(28);
  const x = randND(rnd, [2, 3, 4]);
  const X = T(x);
  const flat = { shape: [24], data: x.data };
  close(t, X.reshape([4, 6]), { shape: [4, 6], data: x.data }, 'reshape');
  close(t, X.reshape([-1, 8]), { shape: [3, 8], data: x.data }, 'reshape -1');
  close(t, X.reshape([24]), flat, 'reshape flat');
  close(
    t,
    X.permute([2, 0, 1]),
    nd([4, 2, 3], ([k, i, j]) => get(x, [i, j, k])),
    'permute',
  );
  close(
    t,
    X.permute([2, 0, 1]).contiguous(),
    nd([4, 2, 3], ([k, i, j]) => get(x, [i, j, k])),
    'permute contiguous',
  );
  t.true(X.permute([2, 0, 1]).contiguous().isContiguous);
  close(
    t,
    X.transpose(0, 2),
    nd([4, 3, 2], ([k, j, i]) => get(x, [i, j, k])),
    'transpose',
  );
  close(
    t,
    X.transpose(-1, 1),
    nd([2, 4, 3], ([i, k, j]) => get(x, [i, j, k])),
    'transpose negative',
  );
  const row = randND(rnd, [1, 4]);
  close(
    t,
    T(row).expand([3, 4]),
    nd([3, 4], ([, j]) => get(row, [0, j])),
    'expand',
  );
  close(
    t,
    T(row).expand([2, 3, -1]),
    nd([2, 3, 4], ([, , j]) => get(row, [0, j])),
    'expand new dim and -1',
  );
  const small = randND(rnd, [2, 3]);
  close(
    t,
    T(small).repeat([2, 2]),
    nd([4, 6], ([i, j]) => get(small, [i % 2, j % 3])),
    'repeat',
  );
  close(
    t,
    T(small).repeat([3, 1, 1]),
    nd([3, 2, 3], ([, i, j]) => get(small, [i, j])),
    'repeat new dim',
  );
  close(
    t,
    X.flip(0),
    nd(x.shape, ([i, j, k]) => get(x, [1 - i, j, k])),
    'flip 0',
  );
  close(
    t,
    X.flip([0, 2]),
    nd(x.shape, ([i, j, k]) => get(x, [1 - i, j, 3 - k])),
    'flip [0, 2]',
  );
  close(
    t,
    X.flip(-2),
    nd(x.shape, ([i, j, k]) => get(x, [i, 2 - j, k])),
    'flip -2',
  );
  close(t, X.flatten(), flat, 'flatten');
  close(t, X.flatten(1), { shape: [2, 12], data: x.data }, 'flatten(1)');
  close(t, X.flatten(0, 1), { shape: [6, 4], data: x.data }, 'flatten(0, 1)');
  const s = randND(rnd, [1, 3, 1, 2]);
  close(t, T(s).squeeze(), { shape: [3, 2], data: s.data }, 'squeeze all');
  close(t, T(s).squeeze(2), { shape: [1, 3, 2], data: s.data }, 'squeeze 2');
  close(t, T(s).squeeze(1), { shape: [1, 3, 1, 2], data: s.data }, 'squeeze of a non-1 dim is a no-op');
  close(t, T(small).unsqueeze(0), { shape: [1, 2, 3], data: small.data }, 'unsqueeze 0');
  close(t, T(small).unsqueeze(1), { shape: [2, 1, 3], data: small.data }, 'unsqueeze 1');
  close(t, T(small).unsqueeze(-1), { shape: [2, 3, 1], data: small.data }, 'unsqueeze -1');
  t.throws(() => X.reshape([5, 5]), { instanceOf: Error, message: /^reshape:/ });
  t.throws(() => X.permute([0, 0, 1]), { instanceOf: Error });
  t.throws(() => T(row).expand([3, 5]), { instanceOf: Error });
});

test('views: ops on non-contiguous tensors read the right elements; clone is independent', (t) => {
  const rnd = mulberry32(29);
  const x = randND(rnd, [4, 6]);
  const X = T(x);
  const v = X.transpose(0, 1).narrow(0, 1, 3); // [3, 4]
  t.false(v.isContiguous);
  const expected = nd([3, 4], ([i, j]) => get(x, [j, i + 1]));
  close(t, v, expected, 'view values');
  close(
    t,
    v.add(1),
    map1(expected, (e) => e + 1),
    'add on a view',
  );
  close(t, v.sum(1), reduce(expected, [1], false, sum), 'sum on a view', { atol: 1e-5 });
  close(t, v.clone(), expected, 'clone');
  close(t, v.reshape([12]), { shape: [12], data: expected.data }, 'reshape of a view');
});

// ---- making tensors ----

test('arange', (t) => {
  const a = dna.arange(5);
  t.is(a.dtype, 'int64');
  t.deepEqual(a.toArray(), [0, 1, 2, 3, 4]);
  t.deepEqual(dna.arange(2, 7).toArray(), [2, 3, 4, 5, 6]);
  t.deepEqual(dna.arange(10, 0, -3).toArray(), [10, 7, 4, 1]);
  t.deepEqual(dna.arange(0).toArray(), []);
  const f = dna.arange(0, 1, 0.25, { dtype: 'float32' });
  t.is(f.dtype, 'float32');
  t.deepEqual(f.toArray(), [0, 0.25, 0.5, 0.75]);
  const d = dna.arange(1, -1, -0.5, { dtype: 'float64' });
  t.is(d.dtype, 'float64');
  t.deepEqual(d.toArray(), [1, 0.5, 0, -0.5]);
  t.deepEqual(dna.arange(3, undefined, 1, { dtype: 'int32' }).toArray(), [0, 1, 2]);
  const fractional = dna.arange(0, 1, 0.25);
  t.is(fractional.dtype, 'float32', 'a fractional start, end or step gives float32 by default');
  t.deepEqual(fractional.toArray(), [0, 0.25, 0.5, 0.75]);
  t.deepEqual(dna.arange(0, 2.5).toArray(), [0, 1, 2]);
  t.throws(() => dna.arange(0, 5, 0), { instanceOf: Error, message: /^arange:/ });
  t.throws(() => dna.arange(0, 5, -1), { instanceOf: Error });
});

test('full / zeros / ones', (t) => {
  const f = dna.full([2, 3], -2.5);
  t.is(f.dtype, 'float32');
  t.deepEqual(f.toArray(), [
    [-2.5, -2.5, -2.5],
    [-2.5, -2.5, -2.5],
  ]);
  t.deepEqual(dna.full([2], 7, { dtype: 'int64' }).toArray(), [7, 7]);
  t.is(dna.full([2], 7, { dtype: 'int64' }).dtype, 'int64');
  t.deepEqual(dna.full([3], false, { dtype: 'bool' }).toArray(), [0, 0, 0]);
  t.deepEqual(dna.zeros([2, 2]).toArray(), [
    [0, 0],
    [0, 0],
  ]);
  t.deepEqual(dna.ones([3], { dtype: 'float64' }).toArray(), [1, 1, 1]);
  t.is(dna.ones([1], { dtype: 'uint8' }).dtype, 'uint8');
  t.deepEqual(dna.zeros([]).shape, []);
});

// ---- type promotion ----

test('type promotion with number operands follows LibTorch scalar rules', (t) => {
  const i32 = dna.tensor(new Int32Array([1, 2, 3]));
  const plusOne = i32.add(1);
  t.is(plusOne.dtype, 'int32');
  t.deepEqual(plusOne.toArray(), [2, 3, 4]);
  t.is(i32.mul(-2).dtype, 'int32');
  const f32 = dna.tensor([1, 2, 3]);
  t.is(f32.add(2.5).dtype, 'float32');
  t.deepEqual(f32.add(2.5).toArray(), [3.5, 4.5, 5.5]);
  t.is(f32.mul(1e10).dtype, 'float32');
  const half = i32.div(2);
  t.is(half.dtype, 'float32');
  t.deepEqual(half.toArray(), [0.5, 1, 1.5]);
  t.is(dna.tensor(new BigInt64Array([3n])).div(2).dtype, 'float32');
  t.is(i32.add(0.5).dtype, 'float32');
  t.deepEqual(i32.add(0.5).toArray(), [1.5, 2.5, 3.5]);
  t.is(dna.tensor(new BigInt64Array([3n])).add(1).dtype, 'int64');
  t.is(dna.tensor([1], undefined, { dtype: 'float64' }).add(1.5).dtype, 'float64');
  t.is(dna.tensor([1], undefined, { dtype: 'float16' }).add(1.5).dtype, 'float16');
  t.is(dna.tensor(new Uint8Array([1])).add(1).dtype, 'uint8');
  t.is(dna.tensor([1, 0], undefined, { dtype: 'bool' }).add(1).dtype, 'int64');
  // Tensor-tensor promotion.
  t.is(i32.add(f32).dtype, 'float32');
  t.is(f32.add(f32.toDtype('float64')).dtype, 'float64');
  t.is(i32.add(dna.tensor(new BigInt64Array([1n, 1n, 1n]))).dtype, 'int64');
  // A zero-dim tensor operand does not promote a higher-dimensional one of the same category.
  t.is(f32.add(dna.tensor(1, undefined, { dtype: 'float64' })).dtype, 'float32');
  // Comparisons are bool whatever the inputs.
  t.is(i32.lt(1.5).dtype, 'bool');
  t.deepEqual(i32.lt(1.5).toArray(), [1, 0, 0]);
});

// ---- type promotion of number operands ----

test('where(cond, int32 tensor, 2.5) promotes to float32 like any number operand', (t) => {
  const c = dna.tensor([1, 0, 1], undefined, { dtype: 'bool' });
  const w = dna.where(c, dna.tensor(new Int32Array([1, 2, 3])), 2.5);
  t.is(w.dtype, 'float32');
  t.deepEqual(w.toArray(), [1, 2.5, 3]);
});

test('clamp of an int64 tensor with integral bounds stays int64', (t) => {
  const x = dna.tensor(new BigInt64Array([-5n, 0n, 7n]));
  const c = x.clamp(-2, 2);
  t.deepEqual(c.toArray(), [-2, 0, 2]);
  t.is(c.dtype, 'int64');
});
