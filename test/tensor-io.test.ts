// Tensors in and out of JS: typed arrays of every dtype (also views into bigger buffers),
// nested arrays, metadata, toArray/item, scalars, empty tensors, dtype conversions, errors.
import test from 'ava';
import * as dna from '../lib/index.js';
import { mulberry32 } from './helpers/random.js';

// ---- helpers ----

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** IEEE binary16, round to nearest even (from a float32 value, as LibTorch converts). */
function toHalf(x: number): number {
  x = Math.fround(x);
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  const e = Math.max(Math.floor(Math.log2(a)), -14);
  const step = 2 ** (e - 10);
  return Math.sign(x) * roundHalfEven(a / step) * step;
}

/** bfloat16: the top 16 bits of a float32, round to nearest even. */
function toBfloat16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  const bias = ((u[0] >>> 16) & 1) + 0x7fff;
  u[0] = (((u[0] + bias) >>> 16) << 16) >>> 0;
  return f[0];
}

function arr(a: dna.TypedArray): Array<number | bigint> {
  return Array.from(a as ArrayLike<number | bigint>);
}

const hasCode = (code: string) => (e: unknown) => (e as { code?: string }).code === code;

// ---- typed array round trips ----

test('Float32Array -> float32 round trip', (t) => {
  const rnd = mulberry32(1);
  const data = Float32Array.from({ length: 24 }, () => rnd() * 20 - 10);
  const x = dna.tensor(data, [2, 3, 4]);
  t.is(x.dtype, 'float32');
  t.deepEqual(x.shape, [2, 3, 4]);
  t.is(x.ndim, 3);
  t.is(x.numel, 24);
  t.is(x.device, 'cpu');
  t.true(x.isContiguous);
  const out = x.data();
  t.true(out instanceof Float32Array);
  t.deepEqual(arr(out), Array.from(data));
  // A copy both ways: mutating the source or the result leaves the tensor alone.
  data[0] = 12345;
  (out as Float32Array)[1] = 54321;
  t.not(x.data()[0], 12345);
  t.not(x.data()[1], 54321);
});

test('Float64Array -> float64 round trip keeps full precision', (t) => {
  const data = new Float64Array([Math.PI, -Math.E, 1e-300, 1e300, 0.1, -0, Number.MIN_VALUE, 2 ** 53 + 2]);
  const x = dna.tensor(data);
  t.is(x.dtype, 'float64');
  t.deepEqual(x.shape, [8]);
  const out = x.data();
  t.true(out instanceof Float64Array);
  t.deepEqual(arr(out), Array.from(data));
  t.true(Object.is(out[5], -0));
});

test('Int32Array -> int32 round trip with extremes', (t) => {
  const data = new Int32Array([0, 1, -1, 2147483647, -2147483648, 123456]);
  const x = dna.tensor(data, [3, 2]);
  t.is(x.dtype, 'int32');
  const out = x.data();
  t.true(out instanceof Int32Array);
  t.deepEqual(arr(out), Array.from(data));
  t.deepEqual(x.toArray(), [
    [0, 1],
    [-1, 2147483647],
    [-2147483648, 123456],
  ]);
});

test('BigInt64Array -> int64 round trip with 64-bit values', (t) => {
  const data = new BigInt64Array([0n, 1n, -1n, 2n ** 62n + 7n, -(2n ** 63n), 2n ** 63n - 1n]);
  const x = dna.tensor(data, [2, 3]);
  t.is(x.dtype, 'int64');
  const out = x.data();
  t.true(out instanceof BigInt64Array);
  t.deepEqual(Array.from(out as BigInt64Array), Array.from(data));
});

test('Uint8Array -> uint8 round trip', (t) => {
  const data = Uint8Array.from({ length: 256 }, (_, i) => i);
  const x = dna.tensor(data, [16, 16]);
  t.is(x.dtype, 'uint8');
  const out = x.data();
  t.true(out instanceof Uint8Array);
  t.deepEqual(arr(out), Array.from(data));
  t.is((x.toArray() as dna.NestedArray[]).length, 16);
});

test('typed arrays that are views at a non-zero byteOffset are read from their offset', (t) => {
  const cases: Array<[dna.TypedArray, number[], dna.DType]> = [];
  {
    const big = Float32Array.from({ length: 20 }, (_, i) => i * 1.5);
    cases.push([big.subarray(5, 11), [2, 3], 'float32']);
    cases.push([new Float32Array(big.buffer, 4 * 13, 4), [4], 'float32']);
  }
  {
    const big = Float64Array.from({ length: 12 }, (_, i) => -i / 3);
    cases.push([big.subarray(3, 9), [3, 2], 'float64']);
  }
  {
    const big = Int32Array.from({ length: 12 }, (_, i) => i * 1000 - 5000);
    cases.push([big.subarray(7, 11), [2, 2], 'int32']);
  }
  {
    const big = BigInt64Array.from({ length: 10 }, (_, i) => BigInt(i) * 10n ** 15n - 3n);
    cases.push([big.subarray(4, 10), [6], 'int64']);
  }
  {
    const big = Uint8Array.from({ length: 33 }, (_, i) => (i * 7) % 256);
    cases.push([big.subarray(1, 9), [2, 2, 2], 'uint8']); // odd, unaligned offset
    const buffer = new ArrayBuffer(64);
    new Uint8Array(buffer).forEach((_, i, a) => (a[i] = 255 - i));
    cases.push([new Uint8Array(buffer, 17, 5), [5], 'uint8']);
  }
  for (const [view, shape, dtype] of cases) {
    t.true(view.byteOffset > 0);
    const x = dna.tensor(view, shape);
    t.is(x.dtype, dtype);
    t.deepEqual(x.shape, shape);
    t.deepEqual(
      Array.from(x.data() as ArrayLike<number | bigint>),
      Array.from(view as ArrayLike<number | bigint>),
      `${dtype} view`,
    );
  }
});

test('a typed array with a dtype option is converted', (t) => {
  const x = dna.tensor(new Float64Array([1.7, -1.7, 2.5, 0]), [4], { dtype: 'int32' });
  t.is(x.dtype, 'int32');
  t.deepEqual(arr(x.data()), [1, -1, 2, 0]); // truncation toward zero
  const y = dna.tensor(new Int32Array([3, 0, -2]), undefined, { dtype: 'bool' });
  t.is(y.dtype, 'bool');
  t.deepEqual(arr(y.data()), [1, 0, 1]);
  const z = dna.tensor(new Uint8Array([1, 2, 3]).subarray(1), [2], { dtype: 'float64' });
  t.is(z.dtype, 'float64');
  t.deepEqual(arr(z.data()), [2, 3]);
});

// ---- nested arrays ----

test('nested arrays default to float32 and infer the shape', (t) => {
  const x = dna.tensor([
    [
      [1, 2],
      [3, 4],
      [5, 6],
    ],
    [
      [7, 8],
      [9, 10],
      [11, 12.5],
    ],
  ]);
  t.is(x.dtype, 'float32');
  t.deepEqual(x.shape, [2, 3, 2]);
  t.deepEqual(x.toArray(), [
    [
      [1, 2],
      [3, 4],
      [5, 6],
    ],
    [
      [7, 8],
      [9, 10],
      [11, 12.5],
    ],
  ]);
  t.true(x.data() instanceof Float32Array);
  // An explicit shape reshapes the flat values.
  t.deepEqual(dna.tensor([1, 2, 3, 4, 5, 6], [3, 2]).toArray(), [
    [1, 2],
    [3, 4],
    [5, 6],
  ]);
});

test('nested arrays with dtype bool read back as Uint8Array 0/1', (t) => {
  const x = dna.tensor(
    [
      [true, false, true],
      [false, false, true],
    ] as unknown as dna.NestedArray,
    undefined,
    { dtype: 'bool' },
  );
  t.is(x.dtype, 'bool');
  t.deepEqual(x.shape, [2, 3]);
  const out = x.data();
  t.true(out instanceof Uint8Array);
  t.deepEqual(arr(out), [1, 0, 1, 0, 0, 1]);
  t.deepEqual(x.toArray(), [
    [1, 0, 1],
    [0, 0, 1],
  ]);
  // Numbers become true when non-zero.
  const y = dna.tensor([0, 2, -1, 0.25, NaN], undefined, { dtype: 'bool' });
  t.deepEqual(arr(y.data()), [0, 1, 1, 1, 1]);
  t.is(dna.tensor([true], undefined, { dtype: 'bool' }).item(), 1);
});

test('nested arrays with dtype float16 / bfloat16 read back as Float32Array, rounded', (t) => {
  const rnd = mulberry32(7);
  const values = Array.from({ length: 40 }, () => (rnd() - 0.5) * 10 ** Math.floor(rnd() * 8 - 3));
  values.push(0, 1, -2, 65504, 0.1, 1 / 3, 6e-8, -1e-5);
  const half = dna.tensor(values, undefined, { dtype: 'float16' });
  t.is(half.dtype, 'float16');
  const h = half.data();
  t.true(h instanceof Float32Array);
  t.deepEqual(arr(h), values.map(toHalf));

  const bf = dna.tensor(values, undefined, { dtype: 'bfloat16' });
  t.is(bf.dtype, 'bfloat16');
  const b = bf.data();
  t.true(b instanceof Float32Array);
  t.deepEqual(arr(b), values.map(toBfloat16));

  // Out of float16 range: infinity.
  t.deepEqual(arr(dna.tensor([1e6, -1e6], undefined, { dtype: 'float16' }).data()), [Infinity, -Infinity]);
  // item() reads the rounded value as a number.
  t.is(dna.tensor(0.1, undefined, { dtype: 'float16' }).item(), toHalf(0.1));
  t.is(dna.tensor(1 / 3, undefined, { dtype: 'bfloat16' }).item(), toBfloat16(1 / 3));
});

test('nested arrays with integer dtypes', (t) => {
  const x = dna.tensor(
    [
      [1, -2],
      [3, 2 ** 40],
    ],
    undefined,
    { dtype: 'int64' },
  );
  t.is(x.dtype, 'int64');
  t.deepEqual(Array.from(x.data() as BigInt64Array), [1n, -2n, 3n, 2n ** 40n]);
  t.deepEqual(x.toArray(), [
    [1, -2],
    [3, 2 ** 40],
  ]);
  const u = dna.tensor([0, 255, 7], undefined, { dtype: 'uint8' });
  t.deepEqual(arr(u.data()), [0, 255, 7]);
  const i = dna.tensor([5, -6], undefined, { dtype: 'int32' });
  t.true(i.data() instanceof Int32Array);
});

test('ragged or non-numeric nested arrays throw TypeError', (t) => {
  t.throws(() => dna.tensor([[1, 2], [3]]), { instanceOf: TypeError, message: /ragged/ });
  t.throws(() => dna.tensor([[1, 2], 3] as dna.NestedArray), { instanceOf: TypeError, message: /ragged/ });
  t.throws(() => dna.tensor(['a'] as unknown as number[]), { instanceOf: TypeError, message: /numbers/ });
  t.throws(() => dna.tensor('abc' as unknown as number[]), { instanceOf: TypeError });
  t.throws(() => dna.tensor(new Int16Array(3) as unknown as number[]), { instanceOf: TypeError });
});

// ---- toArray / item / scalars / empties ----

test('toArray nests by the shape, for every dtype', (t) => {
  const flat = Array.from({ length: 24 }, (_, i) => i);
  const nested = (shape: number[]) => {
    const build = (d: number, off: number): dna.NestedArray[] => {
      const stride = shape.slice(d + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: shape[d] }, (_, i) =>
        d === shape.length - 1 ? flat[off + i] : build(d + 1, off + i * stride),
      );
    };
    return build(0, 0);
  };
  for (const shape of [[24], [4, 6], [2, 3, 4], [1, 2, 1, 3, 4], [2, 1, 12]]) {
    for (const dtype of ['float32', 'float64', 'int32', 'int64', 'uint8', 'float16', 'bfloat16'] as dna.DType[]) {
      t.deepEqual(dna.tensor(flat, shape, { dtype }).toArray(), nested(shape), `${dtype} [${shape}]`);
    }
  }
  // Non-contiguous tensors read row-major in their logical order.
  const x = dna.tensor(flat, [4, 6]).transpose(0, 1);
  t.false(x.isContiguous);
  t.deepEqual(
    x.toArray(),
    Array.from({ length: 6 }, (_, j) => Array.from({ length: 4 }, (_, i) => i * 6 + j)),
  );
});

test('item() reads the single value of any one-element tensor', (t) => {
  t.is(dna.tensor([[2.5]]).item(), 2.5);
  t.is(dna.tensor(new Float64Array([Math.PI])).item(), Math.PI);
  t.is(dna.tensor(new Int32Array([-7])).item(), -7);
  t.is(dna.tensor(new BigInt64Array([2n ** 50n])).item(), 2 ** 50);
  t.is(dna.tensor(new Uint8Array([200])).item(), 200);
  t.is(dna.tensor([0], undefined, { dtype: 'bool' }).item(), 0);
  t.is(
    dna
      .tensor([[[4]]])
      .sum()
      .item(),
    4,
  );
});

test('scalar tensors have shape []', (t) => {
  const s = dna.tensor(3.5);
  t.deepEqual(s.shape, []);
  t.is(s.ndim, 0);
  t.is(s.numel, 1);
  t.is(s.item(), 3.5);
  t.is(s.toArray(), 3.5);
  t.deepEqual(arr(s.data()), [3.5]);
  t.is(s.dtype, 'float32');

  const f = dna.full([], 7, { dtype: 'int64' });
  t.deepEqual(f.shape, []);
  t.is(f.item(), 7);
  t.is(f.toArray(), 7);

  const fromTyped = dna.tensor(new Float64Array([-1.25]), []);
  t.deepEqual(fromTyped.shape, []);
  t.is(fromTyped.item(), -1.25);
  t.is(dna.tensor([1, 2, 3]).sum().ndim, 0);
});

test('empty tensors (shape [0, 3])', (t) => {
  const e = dna.tensor(new Float32Array(0), [0, 3]);
  t.deepEqual(e.shape, [0, 3]);
  t.is(e.ndim, 2);
  t.is(e.numel, 0);
  t.is(e.data().length, 0);
  t.deepEqual(e.toArray(), []);
  t.deepEqual(dna.zeros([3, 0]).toArray(), [[], [], []]);
  t.deepEqual(dna.zeros([0, 3], { dtype: 'int64' }).shape, [0, 3]);
  t.is(e.sum().item(), 0);
  t.deepEqual(dna.tensor(new BigInt64Array(0), [2, 0, 5]).shape, [2, 0, 5]);
  t.deepEqual(dna.tensor([]).shape, [0]);
  t.throws(() => e.item(), { instanceOf: Error, message: /one element/ });
});

test('full / zeros / ones honour dtype and requiresGrad', (t) => {
  const f = dna.full([2, 2], 1.5, { dtype: 'float64' });
  t.is(f.dtype, 'float64');
  t.deepEqual(f.toArray(), [
    [1.5, 1.5],
    [1.5, 1.5],
  ]);
  t.is(dna.zeros([3]).dtype, 'float32');
  t.deepEqual(dna.ones([2], { dtype: 'int32' }).toArray(), [1, 1]);
  t.deepEqual(arr(dna.full([2], true, { dtype: 'bool' }).data()), [1, 1]);
  t.true(dna.zeros([2], { requiresGrad: true }).requiresGrad);
  t.true(dna.tensor([1, 2], undefined, { requiresGrad: true }).requiresGrad);
  t.false(dna.tensor([1, 2]).requiresGrad);
});

// ---- device and dtype moves ----

test("to('cpu', dtype) converts; to('cpu') keeps the dtype", (t) => {
  const x = dna.tensor([-1.7, 0.4, 2.5, 300]);
  const i = x.to('cpu', 'int32');
  t.is(i.dtype, 'int32');
  t.is(i.device, 'cpu');
  t.deepEqual(i.toArray(), [-1, 0, 2, 300]);
  const d = x.to('cpu', 'float64');
  t.is(d.dtype, 'float64');
  t.deepEqual(arr(d.data()), arr(x.data()));
  const b = x.to('cpu', 'bool');
  t.deepEqual(b.toArray(), [1, 1, 1, 1]);
  const l = x.to('cpu', 'int64');
  t.deepEqual(Array.from(l.data() as BigInt64Array), [-1n, 0n, 2n, 300n]);
  const u = dna.tensor([1, 2, 3]).to('cpu', 'uint8');
  t.true(u.data() instanceof Uint8Array);
  const h = x.to('cpu', 'float16');
  t.is(h.dtype, 'float16');
  t.deepEqual(h.to('cpu', 'float32').toArray(), [toHalf(-1.7), toHalf(0.4), 2.5, 300]);
  const same = x.to('cpu');
  t.is(same.dtype, 'float32');
  t.deepEqual(same.toArray(), x.toArray());
  t.is(x.toDtype('float64').dtype, 'float64');
  t.is(l.float().dtype, 'float32');
  t.is(x.long().dtype, 'int64');
  t.is(dna.tensor([1], undefined, { device: 'cpu' }).device, 'cpu');
});

test('toString describes the tensor', (t) => {
  t.is(dna.zeros([2, 3], { dtype: 'int32' }).toString(), 'Tensor(shape=[2, 3], dtype=int32, device=cpu)');
});

// ---- errors ----

test('shape / data length mismatch throws', (t) => {
  const e = t.throws(() => dna.tensor(new Float32Array(6), [4]), {
    instanceOf: Error,
    message: /6 elements.*\[4\].*needs 4/,
  });
  t.true(hasCode('DNA_INVALID_ARGUMENT')(e));
  t.throws(() => dna.tensor([1, 2, 3], [2, 2]), { instanceOf: Error, message: /3 elements/ });
  t.throws(() => dna.tensor(new Uint8Array(4).subarray(1), [4]), { instanceOf: Error, message: /3 elements/ });
  t.throws(() => dna.tensor(new Float32Array(1), [0]), { instanceOf: Error });
});

test('negative dimensions throw', (t) => {
  t.throws(() => dna.tensor(new Float32Array(2), [-1, -2]), { instanceOf: Error, message: /negative/ });
  t.throws(() => dna.zeros([2, -3]), { instanceOf: Error, message: /dimension 1 is negative/ });
  t.throws(() => dna.tensor(new Float32Array(2), [2.5]), { instanceOf: Error, message: /integer/ });
});

test('unknown dtype throws', (t) => {
  const e = t.throws(() => dna.tensor([1, 2], undefined, { dtype: 'int16' as dna.DType }), {
    instanceOf: Error,
    message: /unknown dtype 'int16'/,
  });
  t.true(hasCode('DNA_INVALID_ARGUMENT')(e));
  t.throws(() => dna.zeros([2], { dtype: 'float' as dna.DType }), { instanceOf: Error, message: /unknown dtype/ });
  t.throws(() => dna.tensor([1]).to('cpu', 'complex64' as dna.DType), { instanceOf: Error, message: /unknown dtype/ });
});

test('unknown device throws', (t) => {
  t.throws(() => dna.tensor([1, 2], undefined, { device: 'tpu' }), {
    instanceOf: Error,
    message: /unknown device 'tpu'/,
  });
  t.throws(() => dna.zeros([2], { device: 'tpu' }), { instanceOf: Error, message: /unknown device/ });
  t.throws(() => dna.tensor([1]).to('tpu'), { instanceOf: Error, message: /unknown device/ });
  t.throws(() => dna.tensor([1]).to('cuda:x'), { instanceOf: Error });
});

test("'cuda' on a CPU-only build throws an Error that mentions cuda", (t) => {
  if (dna.backend().cuda) {
    t.pass('CUDA is available here; nothing to check');
    return;
  }
  t.throws(() => dna.tensor([1, 2], undefined, { device: 'cuda' }), { instanceOf: Error, message: /cuda/i });
  t.throws(() => dna.zeros([2], { device: 'cuda' }), { instanceOf: Error, message: /cuda/i });
  t.throws(() => dna.tensor([1]).to('cuda'), { instanceOf: Error, message: /cuda/i });
  t.throws(() => dna.tensor([1]).to('cuda:0', 'float64'), { instanceOf: Error, message: /cuda/i });
  t.throws(() => dna.arange(3, undefined, 1, { device: 'cuda' }), { instanceOf: Error, message: /cuda/i });
});

test('item() of a multi-element tensor throws', (t) => {
  t.throws(() => dna.tensor([1, 2]).item(), { instanceOf: Error, message: /one element.*has 2/ });
  t.throws(() => dna.zeros([2, 2]).item(), { instanceOf: Error, message: /has 4/ });
});
