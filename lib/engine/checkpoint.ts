// Checkpoint files for long training and search runs: a small format of our own (no pickle,
// no code), written atomically (temp file + fsync + rename + directory fsync) and fully
// validated on load (magic, header, offsets, sizes, dtypes, shapes, CRC32).
//
// File layout (all integers little-endian):
//
//   offset 0   8 bytes   magic "DNACKPT1"
//   offset 8   u32       H: byte length of the JSON header
//   offset 12  H bytes   UTF-8 JSON header:
//                          { version: 1, kind, meta,
//                            tensors: [{ name, dtype, storage, shape, offset, byteLength }] }
//              ...       zero padding to the next multiple of 64
//              ...       each tensor's raw little-endian bytes at its absolute `offset` (a multiple
//                        of 64, in header order, non-overlapping), zero padding between them
//   end - 12   u64       total file length (trailer), so a file cut at a 64-byte boundary is
//                        reported as truncated rather than as a bad checksum
//   end - 4    u32       CRC32 (IEEE, as zlib) of every byte before it
//
// `dtype` is the tensor's dtype; `storage` is how its values are stored. float16 and bfloat16
// are stored as float32 (the addon only hands their values out as Float32Array; every half
// value is exactly representable in float32, so the round trip is exact), and bool as uint8
// (0 or 1). All other dtypes are stored as themselves.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import * as nodePath from 'node:path';
import * as zlib from 'node:zlib';
import { describe, optionsObject } from '../util/describe.js';
import { Tensor, tensor, type DType, type Device, type TypedArray } from './tensor.js';

/** The file's magic bytes. */
export const CHECKPOINT_MAGIC = 'DNACKPT1';
/** The format version this library writes and reads. */
export const CHECKPOINT_VERSION = 1;
/** Tensor data alignment inside the file, in bytes. */
export const CHECKPOINT_ALIGN = 64;

const MAGIC = Buffer.from(CHECKPOINT_MAGIC, 'latin1');
const PREFIX_BYTES = MAGIC.length + 4; // magic + u32 header length
const TRAILER_BYTES = 12; // u64 total length + u32 CRC32
const MAX_HEADER_BYTES = 64 * 1024 * 1024;
const MAX_KIND_LENGTH = 256;
const MAX_META_DEPTH = 256;
const READ_CHUNK = 8 * 1024 * 1024;

/** JSON values: what `meta` may hold. */
export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

export interface CheckpointData {
  /** What the file holds, e.g. `'training'` or `'policy'`; `loadCheckpoint` can insist on it. */
  kind: string;
  /**
   * Free-form JSON (epoch, step, config, optimizer hyper-parameters, ...): null, booleans, finite
   * numbers, strings, arrays and plain objects only, checked when saving (typed `unknown` so that
   * interfaces can be passed as they are; see `JSONValue`).
   */
  meta: unknown;
  /** Named tensors; names are arbitrary strings (data, never paths). */
  tensors: Record<string, Tensor>;
}

export interface LoadCheckpointOptions {
  /** When given, a file of another kind is refused with a clear Error. */
  kind?: string;
  /** Device for the loaded tensors (default `'cpu'`). */
  device?: Device;
}

export interface LoadedCheckpoint extends CheckpointData {
  /** The file format version. */
  version: number;
}

/** One tensor entry of the JSON header. */
export interface CheckpointTensorEntry {
  name: string;
  dtype: DType;
  storage: StorageDType;
  shape: number[];
  offset: number;
  byteLength: number;
}

type StorageDType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8';

/** Storage dtype and its element size, for each tensor dtype. */
const STORAGE: Record<DType, StorageDType> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float32',
  bfloat16: 'float32',
  int32: 'int32',
  int64: 'int64',
  uint8: 'uint8',
  bool: 'uint8',
};
const ELEMENT_BYTES: Record<StorageDType, number> = { float32: 4, float64: 8, int32: 4, int64: 8, uint8: 1 };

/** An error about one checkpoint file; `path` names it and the message does too. */
export class CheckpointError extends Error {
  readonly path: string;
  /** The system error code of the cause (ENOSPC, EACCES, ...), when there is one. */
  readonly code: string | undefined;
  constructor(path: string, message: string, options: { cause?: unknown; code?: string } = {}) {
    const { cause, code } = optionsObject(options, 'CheckpointError');
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'CheckpointError';
    this.path = path;
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------
// CRC32 (IEEE 802.3, reflected, polynomial 0xEDB88320), the same value as zlib's crc32.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC32 in plain TypeScript: `crc32Js(b, crc32Js(a)) === crc32Js(a ++ b)`. */
export function crc32Js(data: Uint8Array, previous = 0): number {
  let c = ~previous >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC32 of `data` continuing from `previous`; uses zlib's (Node >= 20.15) when present. */
export function crc32(data: Uint8Array, previous = 0): number {
  // Never hand zlib an empty view: one over a zero-size native buffer has a NULL data pointer,
  // and zlib's crc32(crc, NULL, 0) returns 0 (its initial value), not `crc`.
  if (data.length === 0) return previous >>> 0;
  return nativeCrc32 ? nativeCrc32(data, previous) >>> 0 : crc32Js(data, previous);
}

// ---------------------------------------------------------------------------------------------
// Paths.

function checkPathArgument(path: unknown, what: string): string {
  if (typeof path !== 'string' || path.length === 0) {
    throw new TypeError(`${what}: path must be a non-empty string, got ${describe(path)}`);
  }
  if (path.includes('\0')) throw new TypeError(`${what}: path ${describe(path)} contains a NUL byte`);
  return path;
}

const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/**
 * Paths of a run's checkpoints inside `dir`: `<dir>/<name>.last.ckpt` and `<dir>/<name>.best.ckpt`
 * (absolute). `name` must be a plain file-name stem (letters, digits, `_`, `-`, `.`, not starting
 * with `.` or `-`, at most 128 characters), so it can never reach outside `dir`; `dir` must be a
 * non-empty string without NUL bytes. Nothing is created on disk.
 */
export function checkpointPaths(dir: string, name: string): { dir: string; last: string; best: string } {
  checkPathArgument(dir, 'checkpointPaths()');
  if (typeof name !== 'string') throw new TypeError(`checkpointPaths(): name must be a string, got ${describe(name)}`);
  if (name.length === 0 || name.length > 128 || !NAME_PATTERN.test(name)) {
    throw new Error(
      `checkpointPaths(): invalid checkpoint name ${describe(name)}: use 1-128 letters, digits, '_', '-' or '.', ` +
        `not starting with '.' or '-' (no path separators, no '..', no absolute paths)`,
    );
  }
  const root = nodePath.resolve(dir);
  const last = nodePath.join(root, `${name}.last.ckpt`);
  const best = nodePath.join(root, `${name}.best.ckpt`);
  for (const file of [last, best]) {
    // Belt and braces: the pattern already rules this out.
    if (nodePath.dirname(file) !== root) throw new Error(`checkpointPaths(): name ${describe(name)} leaves ${root}`);
  }
  return { dir: root, last, best };
}

// ---------------------------------------------------------------------------------------------
// Saving.

/** Throws (a message without the file name; the caller adds it) unless `value` is plain JSON. */
function checkJSON(value: unknown, where: string, seen: Set<object>, depth: number): void {
  if (depth > MAX_META_DEPTH) throw new Error(`${where} is nested more than ${MAX_META_DEPTH} levels deep`);
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`${where} is ${value}, which JSON cannot hold`);
    return;
  }
  if (typeof value !== 'object') throw new Error(`${where} is ${describe(value)}, which is not JSON`);
  if (seen.has(value)) throw new Error(`${where} is a circular reference`);
  seen.add(value);
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkJSON(item, `${where}[${i}]`, seen, depth + 1));
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new Error(`${where} is ${describe(value)}, not a plain object`);
    }
    for (const key of Object.keys(value)) {
      checkJSON((value as Record<string, unknown>)[key], `${where}[${JSON.stringify(key)}]`, seen, depth + 1);
    }
  }
  seen.delete(value);
}

function alignUp(n: number): number {
  return Math.ceil(n / CHECKPOINT_ALIGN) * CHECKPOINT_ALIGN;
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** The bytes of `array` in little-endian order (a view without copying on little-endian hosts). */
function littleEndianBytes(array: TypedArray): Uint8Array {
  const view = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  const size = array.BYTES_PER_ELEMENT;
  if (LITTLE_ENDIAN_HOST || size === 1) return view;
  const out = new Uint8Array(view.length);
  for (let i = 0; i < view.length; i += size) for (let j = 0; j < size; j++) out[i + j] = view[i + size - 1 - j];
  return out;
}

/** `bytes` (little-endian) as a typed array of `storage`, in host order. Takes ownership. */
function typedArrayFrom(bytes: Uint8Array, storage: StorageDType): TypedArray {
  const size = ELEMENT_BYTES[storage];
  if (!LITTLE_ENDIAN_HOST && size > 1) {
    for (let i = 0; i < bytes.length; i += size) {
      for (let j = 0; j < size / 2; j++) {
        const a = bytes[i + j];
        bytes[i + j] = bytes[i + size - 1 - j];
        bytes[i + size - 1 - j] = a;
      }
    }
  }
  const { buffer, byteOffset, byteLength } = bytes;
  switch (storage) {
    case 'float32':
      return new Float32Array(buffer, byteOffset, byteLength / 4);
    case 'float64':
      return new Float64Array(buffer, byteOffset, byteLength / 8);
    case 'int32':
      return new Int32Array(buffer, byteOffset, byteLength / 4);
    case 'int64':
      return new BigInt64Array(buffer, byteOffset, byteLength / 8);
    case 'uint8':
      return bytes;
  }
}

function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    done += bytesWritten;
  }
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function writeError(path: string, error: unknown): CheckpointError {
  if (error instanceof CheckpointError) return error;
  const code = errorCode(error);
  const cause = errorMessage(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new CheckpointError(path, `no space left on device while writing ${path} (${cause})`, { cause: error, code });
  }
  if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
    return new CheckpointError(path, `cannot write ${path}: ${cause}`, { cause: error, code });
  }
  return new CheckpointError(path, `failed to write checkpoint ${path}: ${cause}`, { cause: error, code });
}

async function fsyncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch (error) {
    // Some platforms (Windows) and file systems cannot open or fsync a directory; the rename
    // itself has happened, so this only weakens durability across a power cut there.
    const code = errorCode(error);
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF' && code !== 'ENOTSUP') throw error;
  } finally {
    await handle?.close().catch(() => {});
  }
}

/**
 * Writes a checkpoint to `path` atomically: the data goes to `<path>.tmp-<pid>-<random>` in the
 * same directory, which is fsynced and then renamed over `path`, and the directory is fsynced.
 * On any failure the temp file is removed, the previous file at `path` is left as it was, and a
 * `CheckpointError` naming `path` and the cause is thrown.
 *
 * Tensors may live on any device; their values are read through `data()` one tensor at a time
 * and streamed to the file, so memory use is bounded by the biggest tensor, not the sum. Do not
 * change the tensors in place until the returned promise settles.
 */
export async function saveCheckpoint(path: string, checkpoint: CheckpointData): Promise<void> {
  checkPathArgument(path, 'saveCheckpoint()');
  if (checkpoint === null || typeof checkpoint !== 'object') {
    throw new TypeError(`saveCheckpoint(${path}): checkpoint must be an object { kind, meta, tensors }, got ${describe(checkpoint)}`);
  }
  const { kind, meta, tensors } = checkpoint;
  if (typeof kind !== 'string' || kind.length === 0 || kind.length > MAX_KIND_LENGTH) {
    throw new TypeError(`saveCheckpoint(${path}): kind must be a non-empty string of at most ${MAX_KIND_LENGTH} characters, got ${describe(kind)}`);
  }
  try {
    checkJSON(meta, 'meta', new Set(), 0);
  } catch (error) {
    throw new TypeError(`saveCheckpoint(${path}): ${errorMessage(error)}`);
  }
  if (tensors === null || typeof tensors !== 'object' || Array.isArray(tensors)) {
    throw new TypeError(`saveCheckpoint(${path}): tensors must be an object of named Tensors, got ${describe(tensors)}`);
  }

  // Lay out the file from shapes and dtypes alone (no data read yet).
  const entries: CheckpointTensorEntry[] = [];
  const sources: Tensor[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    if (!(t instanceof Tensor)) {
      throw new TypeError(`saveCheckpoint(${path}): tensors[${JSON.stringify(name)}] is ${describe(t)}, not a Tensor`);
    }
    if (t.isDisposed) throw new Error(`saveCheckpoint(${path}): tensors[${JSON.stringify(name)}] has been disposed`);
    const dtype = t.dtype;
    const storage = STORAGE[dtype];
    if (storage === undefined) throw new TypeError(`saveCheckpoint(${path}): tensors[${JSON.stringify(name)}] has unsupported dtype ${dtype}`);
    const shape = t.shape;
    entries.push({ name, dtype, storage, shape, offset: 0, byteLength: numelOf(shape) * ELEMENT_BYTES[storage] });
    sources.push(t);
  }
  const headerFor = () =>
    Buffer.from(JSON.stringify({ version: CHECKPOINT_VERSION, kind, meta, tensors: entries }), 'utf8');
  // Offsets change the header's length, which changes the offsets: iterate to a fixed point
  // (two or three rounds; the header only grows while offsets grow).
  let header = headerFor();
  for (let round = 0; ; round++) {
    let offset = alignUp(PREFIX_BYTES + header.length);
    for (const entry of entries) {
      entry.offset = offset;
      offset = alignUp(offset + entry.byteLength);
    }
    const next = headerFor();
    if (next.length === header.length) {
      header = next;
      break;
    }
    header = next;
    if (round > 16) throw new Error(`saveCheckpoint(${path}): could not lay out the header`);
  }
  if (header.length > MAX_HEADER_BYTES) {
    throw new Error(`saveCheckpoint(${path}): header is ${header.length} bytes, more than ${MAX_HEADER_BYTES} (meta too big?)`);
  }

  const dir = nodePath.dirname(nodePath.resolve(path));
  const temp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let handle: FileHandle | undefined;
  let renamed = false;
  try {
    // 'wx': O_CREAT|O_EXCL, so an existing file or symlink at the temp name is never followed.
    handle = await fsp.open(temp, 'wx', 0o644);
    let position = 0;
    let crc = 0;
    const put = async (bytes: Uint8Array) => {
      await writeAll(handle!, bytes, position);
      crc = crc32(bytes, crc);
      position += bytes.length;
    };
    const padTo = async (target: number) => {
      if (target > position) await put(new Uint8Array(target - position));
    };

    const lengthBytes = Buffer.alloc(4);
    lengthBytes.writeUInt32LE(header.length, 0);
    await put(MAGIC);
    await put(lengthBytes);
    await put(header);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      await padTo(entry.offset);
      const values = sources[i].data();
      const bytes = littleEndianBytes(values);
      if (bytes.length !== entry.byteLength) {
        throw new Error(
          `tensor ${JSON.stringify(entry.name)} (${entry.dtype} ${JSON.stringify(entry.shape)}) gave ${bytes.length} bytes, expected ${entry.byteLength} (changed while saving?)`,
        );
      }
      await put(bytes);
    }
    if (entries.length > 0) {
      const last = entries[entries.length - 1];
      await padTo(alignUp(last.offset + last.byteLength));
    }
    const trailer = Buffer.alloc(TRAILER_BYTES);
    trailer.writeBigUInt64LE(BigInt(position + TRAILER_BYTES), 0);
    crc = crc32(trailer.subarray(0, 8), crc);
    trailer.writeUInt32LE(crc, 8);
    await writeAll(handle, trailer, position);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(temp, path);
    renamed = true;
    await fsyncDirectory(dir);
  } catch (error) {
    if (handle !== undefined) await handle.close().catch(() => {});
    if (!renamed) await fsp.unlink(temp).catch(() => {});
    throw writeError(path, error);
  }
}

// ---------------------------------------------------------------------------------------------
// Loading.

const DTYPES = new Set<string>(Object.keys(STORAGE));

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

async function readExactly(handle: FileHandle, bytes: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesRead } = await handle.read(bytes, done, bytes.length - done, position + done);
    if (bytesRead <= 0) throw new CheckpointError(path, `checkpoint ${path} is truncated (file changed while reading?)`);
    done += bytesRead;
  }
}

/** Validates the parsed header; returns the tensor entries in file order. */
function validateHeader(path: string, header: unknown, dataStart: number, dataEnd: number) {
  const bad = (what: string) => new CheckpointError(path, `checkpoint ${path} has an invalid header: ${what}`);
  if (!isPlainObject(header)) throw bad('not a JSON object');
  const { version, kind, meta, tensors } = header;
  if (version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(
      path,
      `checkpoint ${path} has format version ${JSON.stringify(version)}; this library reads version ${CHECKPOINT_VERSION}`,
    );
  }
  if (typeof kind !== 'string' || kind.length === 0) throw bad(`kind is ${describe(kind)}, not a non-empty string`);
  if (!('meta' in header)) throw bad('meta is missing');
  if (!Array.isArray(tensors)) throw bad(`tensors is ${describe(tensors)}, not an array`);
  const names = new Set<string>();
  const entries: CheckpointTensorEntry[] = [];
  tensors.forEach((raw: unknown, i: number) => {
    const at = `tensors[${i}]`;
    if (!isPlainObject(raw)) throw bad(`${at} is ${describe(raw)}, not an object`);
    const { name, dtype, storage, shape, offset, byteLength } = raw;
    if (typeof name !== 'string') throw bad(`${at}.name is ${describe(name)}, not a string`);
    const label = `${at} (${JSON.stringify(name)})`;
    if (names.has(name)) throw bad(`${label}: duplicate tensor name`);
    names.add(name);
    if (typeof dtype !== 'string' || !DTYPES.has(dtype)) throw bad(`${label}: unknown dtype ${describe(dtype)}`);
    const expectedStorage = STORAGE[dtype as DType];
    if (storage !== expectedStorage) throw bad(`${label}: storage ${describe(storage)} for dtype ${dtype}, expected "${expectedStorage}"`);
    if (!Array.isArray(shape) || shape.length > 64) throw bad(`${label}: shape is not an array of at most 64 dimensions`);
    for (const d of shape) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw bad(`${label}: shape ${JSON.stringify(shape)} has a dimension that is not a non-negative integer`);
    }
    const numel = numelOf(shape as number[]);
    const expectedBytes = numel * ELEMENT_BYTES[expectedStorage];
    if (!Number.isSafeInteger(expectedBytes)) throw bad(`${label}: shape ${JSON.stringify(shape)} is too big`);
    if (byteLength !== expectedBytes) {
      throw bad(`${label}: byteLength ${describe(byteLength)} does not match shape ${JSON.stringify(shape)} of ${dtype} (${expectedBytes} bytes)`);
    }
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset % CHECKPOINT_ALIGN !== 0) {
      throw bad(`${label}: offset ${describe(offset)} is not a multiple of ${CHECKPOINT_ALIGN}`);
    }
    if (offset < dataStart || offset + expectedBytes > dataEnd) {
      throw bad(`${label}: bytes ${offset}..${offset + expectedBytes} lie outside the data area ${dataStart}..${dataEnd} of the file`);
    }
    entries.push({ name, dtype: dtype as DType, storage: expectedStorage, shape: shape as number[], offset, byteLength: expectedBytes });
  });
  const ordered = [...entries].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < ordered.length; i++) {
    const prev = ordered[i - 1];
    if (ordered[i].offset < prev.offset + prev.byteLength) {
      throw bad(`tensors ${JSON.stringify(prev.name)} and ${JSON.stringify(ordered[i].name)} overlap`);
    }
  }
  return { kind, meta: meta as unknown, entries, ordered };
}

/**
 * Reads a checkpoint written by `saveCheckpoint`. Everything is checked before any tensor is
 * made: magic bytes, header length and JSON, format version, `kind` (when `options.kind` is
 * given), dtype names, shapes, byte lengths, offsets (aligned, inside the file, not
 * overlapping), the recorded file length and the CRC32. Every failure is a `CheckpointError`
 * whose message names the file. Tensor names come back as the keys of `tensors` unchanged.
 */
export async function loadCheckpoint(path: string, options: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  checkPathArgument(path, 'loadCheckpoint()');
  const { kind: wantKind, device = 'cpu' } = optionsObject(options, `loadCheckpoint(${path})`);
  if (wantKind !== undefined && typeof wantKind !== 'string') throw new TypeError(`loadCheckpoint(${path}): options.kind must be a string, got ${describe(wantKind)}`);
  if (typeof device !== 'string') throw new TypeError(`loadCheckpoint(${path}): options.device must be a string, got ${describe(device)}`);

  let handle: FileHandle | undefined;
  try {
    try {
      handle = await fsp.open(path, 'r');
    } catch (error) {
      const code = errorCode(error);
      const why = code === 'ENOENT' ? 'no such file' : errorMessage(error);
      throw new CheckpointError(path, `cannot read checkpoint ${path}: ${why}`, { cause: error, code });
    }
    const stat = await handle.stat();
    if (!stat.isFile()) throw new CheckpointError(path, `checkpoint ${path} is not a regular file`);
    const size = stat.size;
    const truncated = (detail: string) => new CheckpointError(path, `checkpoint ${path} is truncated or corrupt: ${detail}`);
    if (size < PREFIX_BYTES) {
      // Still tell a foreign file from a cut one when the magic cannot match.
      const head = Buffer.alloc(size);
      await readExactly(handle, head, 0, path);
      if (!MAGIC.subarray(0, size).equals(head)) throw new CheckpointError(path, `${path} is not a checkpoint (bad magic bytes)`);
      throw truncated(`only ${size} bytes`);
    }
    const prefix = Buffer.alloc(PREFIX_BYTES);
    await readExactly(handle, prefix, 0, path);
    if (!prefix.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new CheckpointError(path, `${path} is not a checkpoint (bad magic bytes, expected "${CHECKPOINT_MAGIC}")`);
    }
    const headerLength = prefix.readUInt32LE(MAGIC.length);
    if (headerLength > MAX_HEADER_BYTES) throw truncated(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
    const dataStart = alignUp(PREFIX_BYTES + headerLength);
    if (PREFIX_BYTES + headerLength + TRAILER_BYTES > size) {
      throw truncated(`header length ${headerLength} runs past the end of the ${size}-byte file`);
    }
    // The recorded total length first: a cut file is reported as truncated, whatever it cuts.
    const trailer = Buffer.alloc(TRAILER_BYTES);
    await readExactly(handle, trailer, size - TRAILER_BYTES, path);
    const recordedLength = trailer.readBigUInt64LE(0);
    if (recordedLength !== BigInt(size)) {
      throw truncated(`the file is ${size} bytes but its trailer records ${recordedLength} (cut short, or not written by saveCheckpoint)`);
    }
    const headerBytes = Buffer.alloc(headerLength);
    await readExactly(handle, headerBytes, PREFIX_BYTES, path);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
    } catch (error) {
      throw truncated(`header is not valid UTF-8 JSON (${errorMessage(error)})`);
    }
    const dataEnd = size - TRAILER_BYTES;
    const { kind, meta, entries, ordered } = validateHeader(path, header, dataStart, dataEnd);
    if (wantKind !== undefined && kind !== wantKind) {
      throw new CheckpointError(path, `checkpoint ${path} holds a "${kind}" checkpoint, not the expected "${wantKind}"`);
    }

    // Stream the whole file once, in order: CRC over every byte, tensor bytes into their arrays.
    const arrays = new Map<CheckpointTensorEntry, Uint8Array>();
    let crc = 0;
    let position = 0;
    const scratch = Buffer.alloc(Math.min(READ_CHUNK, Math.max(dataEnd, 1)));
    const skipTo = async (target: number) => {
      while (position < target) {
        const n = Math.min(scratch.length, target - position);
        const chunk = scratch.subarray(0, n);
        await readExactly(handle!, chunk, position, path);
        crc = crc32(chunk, crc);
        position += n;
      }
    };
    for (const entry of ordered) {
      await skipTo(entry.offset);
      const bytes = new Uint8Array(entry.byteLength);
      await readExactly(handle, bytes, position, path);
      crc = crc32(bytes, crc);
      position += bytes.length;
      arrays.set(entry, bytes);
    }
    await skipTo(dataEnd);
    crc = crc32(trailer.subarray(0, 8), crc);
    const recordedCrc = trailer.readUInt32LE(8);
    if (crc !== recordedCrc) {
      throw truncated(`CRC32 mismatch (computed ${crc.toString(16).padStart(8, '0')}, recorded ${recordedCrc.toString(16).padStart(8, '0')})`);
    }
    await handle.close();
    handle = undefined;

    // Only now make tensors.
    const out: Record<string, Tensor> = {};
    const made: Tensor[] = [];
    try {
      for (const entry of entries) {
        const values = typedArrayFrom(arrays.get(entry)!, entry.storage);
        arrays.delete(entry);
        if (entry.dtype === 'bool') {
          const bytes = values as Uint8Array;
          for (let i = 0; i < bytes.length; i++) {
            if (bytes[i] > 1) throw new CheckpointError(path, `checkpoint ${path}: bool tensor ${JSON.stringify(entry.name)} holds byte ${bytes[i]}`);
          }
        }
        const t = tensor(values, entry.shape, { dtype: entry.dtype, device });
        made.push(t);
        // defineProperty, so that a tensor named "__proto__" is an own key like any other name.
        Object.defineProperty(out, entry.name, { value: t, enumerable: true, writable: true, configurable: true });
      }
    } catch (error) {
      for (const t of made) t.dispose();
      if (error instanceof CheckpointError) throw error;
      throw new CheckpointError(path, `checkpoint ${path}: cannot create tensors on device "${device}": ${errorMessage(error)}`, { cause: error });
    }
    return { version: CHECKPOINT_VERSION, kind, meta, tensors: out };
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointError(path, `cannot read checkpoint ${path}: ${errorMessage(error)}`, { cause: error, code: errorCode(error) });
  } finally {
    if (handle !== undefined) await handle.close().catch(() => {});
  }
}
