// Checkpoint files: format, round trips of every dtype and shape, validation of truncated,
// corrupted and crafted files, atomic replacement (failed writes, SIGKILL mid-save), paths.
import test from 'ava';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import * as dna from '../lib/index.js';
import { crc32, crc32Js } from '../lib/engine/checkpoint-format.js';
import { mulberry32 } from './helpers/random.js';

const { saveCheckpoint, loadCheckpoint, checkpointPaths, CheckpointError, tensor } = dna;
type Tensor = dna.Tensor;

// ---- helpers ----

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await fsp.mkdtemp(nodePath.join(os.tmpdir(), 'dna-ckpt-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Loads `file` expecting a CheckpointError whose message names the file. */
async function rejectsNamingFile(
  t: import('ava').ExecutionContext,
  file: string,
  options?: dna.LoadCheckpointOptions,
  pattern?: RegExp,
  note = '',
) {
  const error = await t.throwsAsync(() => loadCheckpoint(file, options), { instanceOf: CheckpointError }, note);
  if (!error) return undefined;
  t.true(error.message.includes(file), `${note}: message should name the file: ${error.message}`);
  t.is((error as dna.CheckpointError).path, file);
  if (pattern) t.regex(error.message, pattern, note);
  return error;
}

function sameValues(t: import('ava').ExecutionContext, actual: Tensor, expected: Tensor, note: string) {
  t.is(actual.dtype, expected.dtype, note);
  t.deepEqual(actual.shape, expected.shape, note);
  const a = actual.data();
  const e = expected.data();
  t.is(a.constructor, e.constructor, note);
  t.is(a.length, e.length, note);
  // Object.is: NaN equals NaN, -0 differs from 0.
  const bad = Array.from(a as ArrayLike<number | bigint>).findIndex(
    (v, i) => !Object.is(v, (e as ArrayLike<number | bigint>)[i]),
  );
  t.is(bad, -1, `${note}: first differing element ${bad}`);
}

/** Builds a file like saveCheckpoint would, from a raw header and a body, with a valid trailer. */
function craft(
  header: unknown,
  body: Uint8Array = new Uint8Array(0),
  options: { headerText?: string; magic?: string } = {},
): Buffer {
  const json = Buffer.from(options.headerText ?? JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(12);
  prefix.write(options.magic ?? 'DNACKPT1', 0, 'latin1');
  prefix.writeUInt32LE(json.length, 8);
  const start = Math.ceil((12 + json.length) / 64) * 64;
  const head = Buffer.concat([prefix, json, Buffer.alloc(start - 12 - json.length)]);
  const withBody = Buffer.concat([head, body]);
  const trailer = Buffer.alloc(12);
  trailer.writeBigUInt64LE(BigInt(withBody.length + 12), 0);
  const crc = crc32(trailer.subarray(0, 8), crc32(withBody));
  trailer.writeUInt32LE(crc, 8);
  return Buffer.concat([withBody, trailer]);
}

/** The data offset craft() gives for a header (offsets refer to it, so lay out in two passes). */
function craftStart(header: unknown): number {
  return Math.ceil((12 + Buffer.byteLength(JSON.stringify(header), 'utf8')) / 64) * 64;
}

function allEqual(x: Tensor, value: number): boolean {
  return Array.from(x.data() as ArrayLike<number | bigint>, Number).every((v) => v === value);
}

function parseFile(bytes: Buffer) {
  const length = bytes.readUInt32LE(8);
  const header = JSON.parse(bytes.subarray(12, 12 + length).toString('utf8'));
  return { magic: bytes.subarray(0, 8).toString('latin1'), length, header };
}

// ---- CRC ----

test('crc32: the IEEE check value, and the TS and zlib implementations agree, incrementally too', (t) => {
  const check = Buffer.from('123456789', 'latin1');
  t.is(crc32Js(check), 0xcbf43926);
  t.is(crc32(check), 0xcbf43926);
  t.is(crc32Js(new Uint8Array(0)), 0);
  // Empty chunks continue the running value (zlib's crc32 resets to 0 on a NULL buffer).
  const empty = tensor(new Float32Array(0), [0]).data();
  t.is(crc32(new Uint8Array(empty.buffer, 0, 0), 1234), 1234);
  t.is(crc32Js(new Uint8Array(0), 1234), 1234);
  const rand = mulberry32(7);
  const data = Uint8Array.from({ length: 10_000 }, () => Math.floor(rand() * 256));
  t.is(crc32Js(data), crc32(data));
  t.is(crc32Js(data.subarray(3000), crc32Js(data.subarray(0, 3000))), crc32Js(data));
  t.is(crc32(data.subarray(3000), crc32Js(data.subarray(0, 3000))), crc32(data));
});

// ---- round trips ----

function everyDtype(): Record<string, Tensor> {
  return {
    f32: tensor(
      new Float32Array([1.5, -0, NaN, Infinity, -Infinity, 3.4028234663852886e38, 1e-45, Math.fround(Math.PI)]),
      [2, 4],
      { dtype: 'float32' },
    ),
    f64: tensor(new Float64Array([Math.PI, -0, NaN, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE]), [3, 2], {
      dtype: 'float64',
    }),
    f16: tensor(new Float32Array([1.5, 3.14159, 65504, -2.5e-5, 0.1, -0, 1e-7, 70000]), [8], { dtype: 'float16' }),
    bf16: tensor(new Float32Array([1.5, 3.14159, 3e38, -2.5e-5, 0.1, -0, 1e-30]), [7, 1], { dtype: 'bfloat16' }),
    i32: tensor(new Int32Array([0, 1, -1, 2147483647, -2147483648]), [5], { dtype: 'int32' }),
    i64: tensor(new BigInt64Array([0n, -1n, 9007199254740993n, 9223372036854775807n, -9223372036854775808n]), [5], {
      dtype: 'int64',
    }),
    u8: tensor(
      Uint8Array.from({ length: 256 }, (_, i) => i),
      [16, 16],
      { dtype: 'uint8' },
    ),
    bool: tensor(new Uint8Array([1, 0, 0, 1, 1]), [5], { dtype: 'bool' }),
  };
}

test(
  'round trip of every dtype: values exact, float16/bfloat16 within their precision, meta ' + 'JSON intact',
  async (t) => {
    const dir = await tempDir(t);
    const file = nodePath.join(dir, 'all.ckpt');
    const tensors = everyDtype();
    const meta = {
      epoch: 3,
      lr: 0.1,
      name: 'wrn-40-2 ✓',
      nested: { a: [1, null, true, 'x', { b: -0.5 }] },
      empty: {},
      list: [],
    };
    await saveCheckpoint(file, { kind: 'training', meta, tensors });
    const loaded = await loadCheckpoint(file, { kind: 'training' });
    t.is(loaded.kind, 'training');
    t.is(loaded.version, 1);
    t.deepEqual(loaded.meta, meta);
    t.deepEqual(Object.keys(loaded.tensors), Object.keys(tensors));
    for (const [name, original] of Object.entries(tensors)) {
      const back = loaded.tensors[name];
      t.is(back.device, 'cpu');
      sameValues(t, back, original, name);
    }
    // Half precisions: the loaded values are the half-rounded inputs (relative error <= 2^-11 / 2^-8).
    const f16 = loaded.tensors.f16.data() as Float32Array;
    t.is(f16[0], 1.5);
    t.true(Math.abs(f16[1] - 3.14159) <= 3.14159 * 2 ** -11);
    t.is(f16[2], 65504);
    t.is(f16[7], Infinity); // 70000 overflows float16 when the tensor is made, and stays so
    const bf16 = loaded.tensors.bf16.data() as Float32Array;
    t.true(Math.abs(bf16[1] - 3.14159) <= 3.14159 * 2 ** -8);
    t.true(Math.abs(bf16[2] - 3e38) <= 3e38 * 2 ** -8);
    t.is(loaded.tensors.bool.dtype, 'bool');
    t.deepEqual(Array.from(loaded.tensors.bool.data() as Uint8Array), [1, 0, 0, 1, 1]);
    dna.dispose([Object.values(tensors), Object.values(loaded.tensors)]);
  },
);

test('round trip of shapes: scalars, empty tensors, zero-size dimensions, high rank, no tensors at all', async (t) => {
  const dir = await tempDir(t);
  const file = nodePath.join(dir, 'shapes.ckpt');
  const rand = mulberry32(11);
  const tensors: Record<string, Tensor> = {
    scalarF: tensor(new Float32Array([2.5]), [], { dtype: 'float32' }),
    scalarI: tensor(new BigInt64Array([-7n]), [], { dtype: 'int64' }),
    scalarB: tensor(new Uint8Array([1]), [], { dtype: 'bool' }),
    scalarH: tensor(new Float32Array([0.333]), [], { dtype: 'float16' }),
    empty: tensor(new Float32Array(0), [0], { dtype: 'float32' }),
    empty2: tensor(new Int32Array(0), [2, 0, 3], { dtype: 'int32' }),
    emptyBool: tensor(new Uint8Array(0), [0, 5], { dtype: 'bool' }),
    emptyHalf: tensor(new Float32Array(0), [0], { dtype: 'bfloat16' }),
    rank6: tensor(
      Float64Array.from({ length: 2 * 3 * 1 * 2 * 1 * 5 }, () => rand()),
      [2, 3, 1, 2, 1, 5],
      { dtype: 'float64' },
    ),
    odd: tensor(
      Uint8Array.from({ length: 13 }, (_, i) => i * 7),
      [13],
      { dtype: 'uint8' },
    ), // 13 bytes: exercises padding
    after: tensor(
      Float32Array.from({ length: 33 }, () => rand()),
      [3, 11],
      { dtype: 'float32' },
    ),
  };
  await saveCheckpoint(file, { kind: 'shapes', meta: null, tensors });
  const loaded = await loadCheckpoint(file);
  t.is(loaded.meta, null);
  for (const [name, original] of Object.entries(tensors)) sameValues(t, loaded.tensors[name], original, name);
  t.deepEqual(loaded.tensors.scalarF.shape, []);
  t.is(loaded.tensors.scalarF.item(), 2.5);

  const none = nodePath.join(dir, 'none.ckpt');
  await saveCheckpoint(none, { kind: 'empty', meta: 'just a string', tensors: {} });
  const back = await loadCheckpoint(none, { kind: 'empty' });
  t.deepEqual(back.tensors, {});
  t.is(back.meta, 'just a string');
  dna.dispose([Object.values(tensors), Object.values(loaded.tensors)]);
});

test(
  'the file layout: magic, u32 header length, JSON header, 64-byte aligned data, length and ' + 'CRC trailer',
  async (t) => {
    const dir = await tempDir(t);
    const file = nodePath.join(dir, 'layout.ckpt');
    const tensors = everyDtype();
    await saveCheckpoint(file, { kind: 'layout', meta: { step: 1 }, tensors });
    const bytes = await fsp.readFile(file);
    const { magic, length, header } = parseFile(bytes);
    t.is(magic, 'DNACKPT1');
    t.is(header.version, 1);
    t.is(header.kind, 'layout');
    t.deepEqual(header.meta, { step: 1 });
    t.is(header.tensors.length, Object.keys(tensors).length);
    let end = 12 + length;
    for (const entry of header.tensors) {
      t.is(entry.offset % 64, 0, entry.name);
      t.true(entry.offset >= end, entry.name);
      const original = tensors[entry.name];
      t.is(entry.dtype, original.dtype);
      t.deepEqual(entry.shape, original.shape);
      const storage = { float16: 'float32', bfloat16: 'float32', bool: 'uint8' }[entry.dtype as string] ?? entry.dtype;
      t.is(entry.storage, storage);
      const raw = original.data();
      t.is(entry.byteLength, raw.byteLength);
      // The stored bytes are the little-endian values (this host is little-endian).
      t.true(
        Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).equals(
          bytes.subarray(entry.offset, entry.offset + entry.byteLength),
        ),
        entry.name,
      );
      end = entry.offset + entry.byteLength;
    }
    t.is(Number(bytes.readBigUInt64LE(bytes.length - 12)), bytes.length);
    t.is(bytes.readUInt32LE(bytes.length - 4), crc32(bytes.subarray(0, bytes.length - 4)));
    dna.dispose(Object.values(tensors));
  },
);

test(
  'tensor names are data: path-like, empty, NUL, __proto__ and unicode names round trip and ' + 'touch no files',
  async (t) => {
    const dir = await tempDir(t);
    const sub = nodePath.join(dir, 'run');
    await fsp.mkdir(sub);
    const file = nodePath.join(sub, 'names.ckpt');
    const names = [
      '../../escape',
      '/etc/passwd',
      '..',
      '',
      'a\0b',
      'C:\\x',
      'конв.weight',
      'constructor',
      'toString',
      'x'.repeat(1000),
    ];
    const tensors: Record<string, Tensor> = {};
    names.forEach((name, i) => (tensors[name] = tensor(new Float32Array([i]), [1], { dtype: 'float32' })));
    Object.defineProperty(tensors, '__proto__', { value: tensor(new Float32Array([99]), [1]), enumerable: true });
    await saveCheckpoint(file, { kind: 'names', meta: {}, tensors });
    const loaded = await loadCheckpoint(file);
    t.deepEqual(Object.keys(loaded.tensors).sort(), [...names, '__proto__'].sort());
    names.forEach((name, i) => t.is(loaded.tensors[name].item(), i, JSON.stringify(name)));
    t.true(Object.prototype.hasOwnProperty.call(loaded.tensors, '__proto__'));
    t.is(Object.getPrototypeOf(loaded.tensors), Object.prototype);
    t.is((Object.getOwnPropertyDescriptor(loaded.tensors, '__proto__')!.value as Tensor).item(), 99);
    t.deepEqual(await fsp.readdir(dir), ['run']);
    t.deepEqual(await fsp.readdir(sub), ['names.ckpt']);
    dna.dispose([Object.values(tensors), Object.values(loaded.tensors)]);
  },
);

test('overwriting and larger tensors: streamed tensor by tensor, replaced atomically, loads the newest', async (t) => {
  const dir = await tempDir(t);
  const file = nodePath.join(dir, 'big.ckpt');
  for (const step of [1, 2]) {
    const tensors = {
      a: dna.full([1024, 1024], step, { dtype: 'float32' }), // 4 MiB
      b: dna.full([512, 1024], -step, { dtype: 'float64' }), // 4 MiB
      c: dna.arange(0, 100_000, 1, { dtype: 'int64' }),
    };
    await saveCheckpoint(file, { kind: 'big', meta: { step }, tensors });
    dna.dispose(Object.values(tensors));
  }
  const loaded = await loadCheckpoint(file, { kind: 'big' });
  t.deepEqual(loaded.meta, { step: 2 });
  t.is(allEqual(loaded.tensors.a, 2), true);
  t.is(allEqual(loaded.tensors.b, -2), true);
  t.is((loaded.tensors.c.data() as BigInt64Array)[99_999], 99_999n);
  t.deepEqual(await fsp.readdir(dir), ['big.ckpt']);
  dna.dispose(Object.values(loaded.tensors));
});

test(
  'device option: tensors load on the requested device (CUDA when available), bad devices give a ' + 'named error',
  async (t) => {
    const dir = await tempDir(t);
    const file = nodePath.join(dir, 'dev.ckpt');
    const tensors = everyDtype();
    await saveCheckpoint(file, { kind: 'dev', meta: {}, tensors });
    await rejectsNamingFile(t, file, { device: 'nonsense:7' }, /device/);
    if (dna.backend().cuda) {
      const onGpu = await loadCheckpoint(file, { device: 'cuda' });
      for (const [name, original] of Object.entries(tensors)) {
        t.regex(onGpu.tensors[name].device, /^cuda/);
        sameValues(t, onGpu.tensors[name], original, `cuda ${name}`);
      }
      // And saving from the GPU reads back through data().
      const again = nodePath.join(dir, 'from-gpu.ckpt');
      await saveCheckpoint(again, { kind: 'dev', meta: {}, tensors: onGpu.tensors });
      const back = await loadCheckpoint(again);
      for (const [name, original] of Object.entries(tensors))
        sameValues(t, back.tensors[name], original, `from cuda ${name}`);
      dna.dispose([Object.values(onGpu.tensors), Object.values(back.tensors)]);
    } else {
      t.log('no CUDA device: only the CPU path was checked');
    }
    dna.dispose(Object.values(tensors));
  },
);

// ---- damaged and foreign files ----

test('truncated files: a cut at every offset is refused with an error naming the file', async (t) => {
  const dir = await tempDir(t);
  const good = nodePath.join(dir, 'good.ckpt');
  const tensors = {
    w: tensor(new Float32Array([1, 2, 3, 4, 5]), [5]),
    n: tensor(new BigInt64Array([7n]), [1]),
    e: tensor(new Float32Array(0), [0]),
  };
  await saveCheckpoint(good, { kind: 'k', meta: { a: 1 }, tensors });
  const bytes = await fsp.readFile(good);
  const cut = nodePath.join(dir, 'cut.ckpt');
  for (let length = 0; length < bytes.length; length++) {
    await fsp.writeFile(cut, bytes.subarray(0, length));
    await rejectsNamingFile(t, cut, undefined, undefined, `cut at ${length} of ${bytes.length}`);
  }
  // Cut on a 64-byte boundary: reported as truncated (the recorded length), not a mystery.
  const boundary = Math.floor((bytes.length - 1) / 64) * 64;
  await fsp.writeFile(cut, bytes.subarray(0, boundary));
  await rejectsNamingFile(t, cut, undefined, /truncated/);
  // Extra bytes appended are refused too.
  await fsp.writeFile(cut, Buffer.concat([bytes, Buffer.alloc(64)]));
  await rejectsNamingFile(t, cut);
  dna.dispose(Object.values(tensors));
});

test('corrupted files: flipping any byte is detected (CRC, header or structure checks)', async (t) => {
  const dir = await tempDir(t);
  const good = nodePath.join(dir, 'good.ckpt');
  const tensors = {
    w: tensor(new Float32Array([1, 2, 3, 4, 5]), [5]),
    b: tensor(new Uint8Array([0, 1]), [2], { dtype: 'bool' }),
  };
  await saveCheckpoint(good, { kind: 'k', meta: { step: 12 }, tensors });
  const bytes = await fsp.readFile(good);
  const bad = nodePath.join(dir, 'flipped.ckpt');
  for (let i = 0; i < bytes.length; i++) {
    const copy = Buffer.from(bytes);
    copy[i] ^= i % 2 === 0 ? 0xff : 0x01;
    await fsp.writeFile(bad, copy);
    await rejectsNamingFile(t, bad, undefined, undefined, `byte ${i} flipped`);
  }
  // A flipped bit in the data of a bigger file: the CRC names it.
  const big = nodePath.join(dir, 'big.ckpt');
  const large = { x: dna.full([100_000], 1.25) };
  await saveCheckpoint(big, { kind: 'k', meta: {}, tensors: large });
  const bigBytes = await fsp.readFile(big);
  const rand = mulberry32(3);
  for (let k = 0; k < 5; k++) {
    const copy = Buffer.from(bigBytes);
    const at = 200 + Math.floor(rand() * (copy.length - 300));
    copy[at] ^= 1 << Math.floor(rand() * 8);
    await fsp.writeFile(bad, copy);
    await rejectsNamingFile(t, bad, undefined, /CRC32 mismatch/, `bit flipped at ${at}`);
  }
  dna.dispose([Object.values(tensors), Object.values(large)]);
});

test('foreign files: wrong magic, empty file, a directory, a missing file', async (t) => {
  const dir = await tempDir(t);
  const good = nodePath.join(dir, 'good.ckpt');
  await saveCheckpoint(good, { kind: 'k', meta: {}, tensors: {} });
  const bytes = await fsp.readFile(good);
  const other = nodePath.join(dir, 'other.ckpt');
  await fsp.writeFile(other, Buffer.concat([Buffer.from('DNACKPT2'), bytes.subarray(8)]));
  await rejectsNamingFile(t, other, undefined, /not a checkpoint \(bad magic/);
  await fsp.writeFile(other, Buffer.from('\x80\x02}q\x00(X\x05\x00\x00\x00model', 'latin1')); // a pickle
  await rejectsNamingFile(t, other, undefined, /not a checkpoint/);
  await fsp.writeFile(other, 'DNA');
  await rejectsNamingFile(t, other, undefined, /truncated/);
  await fsp.writeFile(other, '');
  await rejectsNamingFile(t, other, undefined, /truncated/);
  await rejectsNamingFile(t, dir, undefined, /not a regular file|EISDIR|directory/);
  await rejectsNamingFile(t, nodePath.join(dir, 'missing.ckpt'), undefined, /no such file/);
});

test('crafted headers with valid checksums are refused by the structural checks', async (t) => {
  const dir = await tempDir(t);
  const file = nodePath.join(dir, 'crafted.ckpt');
  const entry = (over: Record<string, unknown> = {}) => ({
    name: 'w',
    dtype: 'float32',
    storage: 'float32',
    shape: [2],
    offset: 0,
    byteLength: 8,
    ...over,
  });
  const base = (tensors: unknown[], over: Record<string, unknown> = {}) => ({
    version: 1,
    kind: 'k',
    meta: {},
    tensors,
    ...over,
  });
  /** A header whose first tensor sits at the data start, with `body` bytes following. */
  const write = async (make: (start: number) => unknown, body = new Uint8Array(64)) => {
    const start = craftStart(make(1_000_000)); // same digit count as real offsets below 1e6
    const header = make(start);
    t.is(craftStart(header), start);
    await fsp.writeFile(file, craft(header, body));
  };
  // Sanity: the crafting helper makes loadable files.
  await write((start) => base([entry({ offset: start })]));
  const ok = await loadCheckpoint(file);
  t.deepEqual(ok.tensors.w.shape, [2]);
  ok.tensors.w.dispose();

  const cases: [string, (start: number) => unknown, RegExp][] = [
    ['offset beyond the file', (s) => base([entry({ offset: s + 64 * 1000 })]), /outside the data area/],
    [
      'data running past the end',
      (s) => base([entry({ offset: s, shape: [100], byteLength: 400 })]),
      /outside the data area/,
    ],
    ['offset before the data area', (s) => base([entry({ offset: s - 64 })]), /outside the data area/],
    ['unaligned offset', (s) => base([entry({ offset: s + 4 })]), /multiple of 64/],
    ['negative offset', () => base([entry({ offset: -64 })]), /outside the data area/],
    ['string offset', (s) => base([entry({ offset: String(s) })]), /offset/],
    [
      'byteLength not numel * size',
      (s) => base([entry({ offset: s, byteLength: 12 })]),
      /byteLength 12 does not match/,
    ],
    ['unknown dtype', (s) => base([entry({ offset: s, dtype: 'complex64' })]), /unknown dtype/],
    [
      'storage mismatch',
      (s) => base([entry({ offset: s, dtype: 'float16', storage: 'float16', byteLength: 4 })]),
      /storage/,
    ],
    ['negative dimension', (s) => base([entry({ offset: s, shape: [-2] })]), /non-negative integer/],
    ['fractional dimension', (s) => base([entry({ offset: s, shape: [1.5] })]), /non-negative integer/],
    ['string dimension', (s) => base([entry({ offset: s, shape: ['2'] })]), /non-negative integer/],
    ['shape not an array', (s) => base([entry({ offset: s, shape: 2 })]), /shape/],
    ['huge shape', (s) => base([entry({ offset: s, shape: [2 ** 40, 2 ** 40] })]), /too big|does not match/],
    ['name not a string', (s) => base([entry({ offset: s, name: 5 })]), /name/],
    [
      'duplicate names',
      (s) =>
        base([entry({ offset: s, shape: [1], byteLength: 4 }), entry({ offset: s + 64, shape: [1], byteLength: 4 })]),
      /duplicate/,
    ],
    [
      'overlapping tensors',
      (s) => base([entry({ offset: s }), entry({ name: 'v', offset: s, shape: [1], byteLength: 4 })]),
      /overlap/,
    ],
    ['tensors not an array', () => base([], { tensors: {} }), /tensors/],
    ['header an array', () => [1, 2], /not a JSON object/],
    ['missing kind', () => base([], { kind: undefined }), /kind/],
    ['missing meta', () => ({ version: 1, kind: 'k', tensors: [] }), /meta/],
    ['future version', () => base([], { version: 2 }), /format version 2/],
  ];
  for (const [note, make, pattern] of cases) {
    await write(make);
    await rejectsNamingFile(t, file, undefined, pattern, note);
  }
  // A bool tensor holding bytes other than 0/1.
  await write(
    (s) => base([entry({ offset: s, dtype: 'bool', storage: 'uint8', shape: [2], byteLength: 2 })]),
    Uint8Array.from([1, 7, ...new Array(62).fill(0)]),
  );
  await rejectsNamingFile(t, file, undefined, /bool/);
  // Not JSON, and not UTF-8.
  await fsp.writeFile(file, craft(null, new Uint8Array(0), { headerText: '{"version":1,' }));
  await rejectsNamingFile(t, file, undefined, /not valid UTF-8 JSON/);
  const latin = craft(null, new Uint8Array(0), { headerText: '{"version":1,"kind":"k","meta":"xx","tensors":[]}' });
  latin[12 + 33] = 0xff; // inside the meta string
  await fsp.writeFile(file, latin);
  await rejectsNamingFile(t, file);
  // A header length larger than the file.
  const lying = craft(base([]));
  lying.writeUInt32LE(0xfffffff0, 8);
  await fsp.writeFile(file, lying);
  await rejectsNamingFile(t, file, undefined, /header length/);
});

test('a file of another kind is refused with a clear error; without options.kind any kind loads', async (t) => {
  const dir = await tempDir(t);
  const policy = nodePath.join(dir, 'policy.ckpt');
  const tensors = { p: tensor(new Float32Array([0.5]), [1]) };
  await saveCheckpoint(policy, { kind: 'policy', meta: {}, tensors });
  const error = await rejectsNamingFile(
    t,
    policy,
    { kind: 'training' },
    /holds a "policy" checkpoint, not the expected "training"/,
  );
  t.truthy(error);
  const any = await loadCheckpoint(policy);
  t.is(any.kind, 'policy');
  dna.dispose([Object.values(tensors), Object.values(any.tensors)]);
});

// ---- failed writes ----

async function snapshot(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of await fsp.readdir(dir)) out.set(name, await fsp.readFile(nodePath.join(dir, name)));
  return out;
}

test('a failed write leaves the previous checkpoint byte-identical and no temp file behind', async (t) => {
  const dir = await tempDir(t);
  const file = nodePath.join(dir, 'last.ckpt');
  const good = { a: dna.full([1000], 1), b: dna.full([10], 2, { dtype: 'int64' }) };
  await saveCheckpoint(file, { kind: 'training', meta: { step: 1 }, tensors: good });
  const before = await snapshot(dir);

  const failing = (code?: string, message = 'device lost') => {
    const broken = dna.full([5000], 3);
    // data() fails after the header and the first tensor are on disk.
    (broken as unknown as { data: () => never }).data = () => {
      throw Object.assign(new Error(message), code === undefined ? {} : { code });
    };
    return broken;
  };
  const attempts: [string | undefined, RegExp][] = [
    [undefined, /failed to write checkpoint .*last\.ckpt: device lost/],
    ['ENOSPC', /^no space left on device while writing .*last\.ckpt/],
    ['EACCES', /^cannot write .*last\.ckpt: /],
    ['EROFS', /^cannot write .*last\.ckpt: /],
  ];
  for (const [code, pattern] of attempts) {
    const broken = failing(code);
    const error = await t.throwsAsync(
      () => saveCheckpoint(file, { kind: 'training', meta: { step: 2 }, tensors: { a: good.a, broken } }),
      {
        instanceOf: CheckpointError,
      },
    );
    t.regex(error!.message, pattern);
    t.true(error!.message.includes(file));
    t.is((error as dna.CheckpointError).code, code);
    t.deepEqual(await snapshot(dir), before, `after a failure with ${code}`);
    broken.dispose();
  }

  // Input errors are thrown before anything touches the disk.
  const bad: [unknown, RegExp][] = [
    [{ kind: '', meta: {}, tensors: {} }, /kind/],
    [{ kind: 'k', meta: { lr: NaN }, tensors: {} }, /meta\["lr"\] is NaN/],
    [{ kind: 'k', meta: { f: () => 1 }, tensors: {} }, /not JSON/],
    [{ kind: 'k', meta: { u: undefined }, tensors: {} }, /not JSON/],
    [{ kind: 'k', meta: { n: 1n }, tensors: {} }, /not JSON/],
    [{ kind: 'k', meta: new Map(), tensors: {} }, /plain object/],
    [
      {
        kind: 'k',
        meta: (() => {
          const o: Record<string, unknown> = {};
          o.self = o;
          return o;
        })(),
        tensors: {},
      },
      /circular/,
    ],
    [{ kind: 'k', meta: {}, tensors: { w: [1, 2] } }, /not a Tensor/],
    [{ kind: 'k', meta: {}, tensors: null }, /tensors must be/],
    [null, /checkpoint must be an object/],
  ];
  for (const [checkpoint, pattern] of bad) {
    const error = await t.throwsAsync(() => saveCheckpoint(file, checkpoint as dna.CheckpointData));
    t.regex(error!.message, pattern);
    t.true(error!.message.includes(file));
  }
  const disposed = dna.full([3], 1);
  disposed.dispose();
  await t.throwsAsync(() => saveCheckpoint(file, { kind: 'k', meta: {}, tensors: { disposed } }), {
    message: /disposed/,
  });
  await t.throwsAsync(() => saveCheckpoint('', { kind: 'k', meta: {}, tensors: {} }), { instanceOf: TypeError });
  await t.throwsAsync(() => saveCheckpoint(`${file}\0.x`, { kind: 'k', meta: {}, tensors: {} }), { message: /NUL/ });
  t.deepEqual(await snapshot(dir), before);

  // The old file still loads, and a good save afterwards works.
  const old = await loadCheckpoint(file, { kind: 'training' });
  t.deepEqual(old.meta, { step: 1 });
  await saveCheckpoint(file, { kind: 'training', meta: { step: 3 }, tensors: good });
  t.deepEqual((await loadCheckpoint(file)).meta, { step: 3 });
  t.deepEqual(await fsp.readdir(dir), ['last.ckpt']);
  dna.dispose([Object.values(good), Object.values(old.tensors)]);
});

test('writes into a vanished directory or under a file fail naming the path; nothing is created', async (t) => {
  const dir = await tempDir(t);
  const gone = nodePath.join(dir, 'gone');
  await fsp.mkdir(gone);
  await fsp.rmdir(gone);
  const tensors = { w: dna.full([4], 1) };
  const target = nodePath.join(gone, 'last.ckpt');
  const error = await t.throwsAsync(() => saveCheckpoint(target, { kind: 'k', meta: {}, tensors }), {
    instanceOf: CheckpointError,
  });
  t.true(error!.message.includes(target));
  t.is((error as dna.CheckpointError).code, 'ENOENT');
  const plain = nodePath.join(dir, 'plain');
  await fsp.writeFile(plain, 'x');
  const under = nodePath.join(plain, 'last.ckpt');
  const error2 = await t.throwsAsync(() => saveCheckpoint(under, { kind: 'k', meta: {}, tensors }), {
    instanceOf: CheckpointError,
  });
  t.true(error2!.message.includes(under));
  // A directory sitting where the file should go: rename fails, the temp file is removed.
  const blocked = nodePath.join(dir, 'blocked.ckpt');
  await fsp.mkdir(blocked);
  await fsp.writeFile(nodePath.join(blocked, 'inside'), 'keep');
  const error3 = await t.throwsAsync(() => saveCheckpoint(blocked, { kind: 'k', meta: {}, tensors }), {
    instanceOf: CheckpointError,
  });
  t.true(error3!.message.includes(blocked));
  t.deepEqual((await fsp.readdir(dir)).sort(), ['blocked.ckpt', 'plain']);
  t.is(await fsp.readFile(nodePath.join(blocked, 'inside'), 'utf8'), 'keep');
  dna.dispose(Object.values(tensors));
});

test('SIGKILL during repeated saves never leaves an unloadable checkpoint', async (t) => {
  const dir = await tempDir(t);
  const file = nodePath.join(dir, 'last.ckpt');
  // Only the modules it needs, so the child does not depend on the rest of the package.
  const checkpointModule = new URL('../lib/engine/checkpoint.js', import.meta.url).href;
  const tensorModule = new URL('../lib/engine/tensor.js', import.meta.url).href;
  const creationModule = new URL('../lib/engine/creation.js', import.meta.url).href;
  const script = nodePath.join(dir, 'saver.mjs');
  await fsp.writeFile(
    script,
    `import { saveCheckpoint } from ${JSON.stringify(checkpointModule)};
import { dispose } from ${JSON.stringify(tensorModule)};
import { full } from ${JSON.stringify(creationModule)};
const dna = { full, dispose, saveCheckpoint };
const file = process.argv[2];
let step = Number(process.argv[3]);
process.stdout.write('ready\\n');
for (;;) {
  step++;
  const tensors = { w: dna.full([256 * 1024], step), s: dna.full([3], step, { dtype: 'int64' }), h: dna.full([1000], step % 2048, { dtype: 'float16' }) };
  await dna.saveCheckpoint(file, { kind: 'training', meta: { step }, tensors });
  dna.dispose(Object.values(tensors));
  process.stdout.write('saved ' + step + '\\n');
}
`,
  );
  const initial = {
    w: dna.full([256 * 1024], 0),
    s: dna.full([3], 0, { dtype: 'int64' }),
    h: dna.full([1000], 0, { dtype: 'float16' }),
  };
  await saveCheckpoint(file, { kind: 'training', meta: { step: 0 }, tensors: initial });
  dna.dispose(Object.values(initial));

  const rand = mulberry32(Date.now() >>> 0);
  let step = 0;
  let saves = 0;
  for (let round = 0; round < 5; round++) {
    const child = spawn(process.execPath, [script, file, String(step)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.on('exit', (code, signal) => resolve(signal ?? code)),
    );
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk) => {
        out += chunk;
        saves += (String(chunk).match(/saved/g) ?? []).length;
        if (out.includes('ready')) resolve();
      });
      child.on('exit', () => reject(new Error(`saver exited early: ${stderr}`)));
    });
    await new Promise((resolve) => setTimeout(resolve, 20 + rand() * 300));
    child.kill('SIGKILL');
    t.is(await exited, 'SIGKILL', stderr);

    const loaded = await loadCheckpoint(file, { kind: 'training' });
    const at = (loaded.meta as { step: number }).step;
    t.true(at >= step, `round ${round}: step ${at} after ${step}`);
    // The tensors belong to the same save as the meta.
    t.is(allEqual(loaded.tensors.w, at), true, `round ${round}`);
    t.deepEqual(Array.from(loaded.tensors.s.data() as BigInt64Array, Number), [at, at, at]);
    t.is(allEqual(loaded.tensors.h, at % 2048), true);
    dna.dispose(Object.values(loaded.tensors));
    step = at;
  }
  t.log(`${saves} saves completed across 5 killed savers; last step ${step}`);
  // Killed savers may leave their temp files; they never replace the checkpoint.
  const left = (await fsp.readdir(dir)).filter((name) => name !== 'last.ckpt' && name !== 'saver.mjs');
  t.true(
    left.every((name) => /^last\.ckpt\.tmp-\d+-[0-9a-f]{12}$/.test(name)),
    left.join(', '),
  );
});

// ---- paths ----

test('checkpointPaths: last/best inside dir; crafted names are refused', (t) => {
  const dir = fileURLToPath(new URL('.', import.meta.url));
  const paths = checkpointPaths(dir, 'run-1_wrn.40');
  t.is(paths.last, nodePath.join(nodePath.resolve(dir), 'run-1_wrn.40.last.ckpt'));
  t.is(paths.best, nodePath.join(nodePath.resolve(dir), 'run-1_wrn.40.best.ckpt'));
  t.is(nodePath.dirname(paths.last), nodePath.resolve(dir));
  t.is(checkpointPaths('relative/dir', 'train').last, nodePath.resolve('relative/dir', 'train.last.ckpt'));
  for (const name of [
    '../x',
    '..',
    '.',
    '',
    '/etc/passwd',
    'a/b',
    'a\\b',
    'x\0y',
    '.hidden',
    '-rf',
    'C:x',
    'a b',
    'x'.repeat(129),
    '..\\..\\x',
  ]) {
    t.throws(() => checkpointPaths(dir, name), { message: /invalid checkpoint name/ }, JSON.stringify(name));
  }
  t.throws(() => checkpointPaths(dir, 5 as unknown as string), { instanceOf: TypeError });
  t.throws(() => checkpointPaths('', 'train'), { instanceOf: TypeError });
  t.throws(() => checkpointPaths('/tmp\0/x', 'train'), { message: /NUL/ });
  t.throws(() => checkpointPaths(undefined as unknown as string, 'train'), { instanceOf: TypeError });
});

test('loadCheckpoint argument errors', async (t) => {
  await t.throwsAsync(() => loadCheckpoint(''), { instanceOf: TypeError });
  await t.throwsAsync(() => loadCheckpoint('/tmp/x\0y'), { message: /NUL/ });
  await t.throwsAsync(() => loadCheckpoint('/tmp/x', { kind: 5 as unknown as string }), { message: /options.kind/ });
});
