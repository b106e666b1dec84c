// The checkpoint file format: its layout, constants and types, the CRC32, and the checks of a
// header read back (checkpoint.ts writes and reads the files).
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
import { endianness } from 'node:os';
import * as zlib from 'node:zlib';

import { describe, optionsObject } from '../util/describe.js';
import type { DType, Device, Tensor, TypedArray } from './tensor.js';

/** The file's magic bytes. */
export const CHECKPOINT_MAGIC = 'DNACKPT1';
/** The format version this library writes and reads. */
export const CHECKPOINT_VERSION = 1;
/** Tensor data alignment inside the file, in bytes. */
export const CHECKPOINT_ALIGN = 64;

export const MAGIC = Buffer.from(CHECKPOINT_MAGIC, 'latin1');
export const PREFIX_BYTES = MAGIC.length + 4; // magic + u32 header length
export const TRAILER_BYTES = 12; // u64 total length + u32 CRC32
export const MAX_HEADER_BYTES = 64 * 1024 * 1024;
export const MAX_KIND_LENGTH = 256;
const MAX_META_DEPTH = 256;
export const READ_CHUNK = 8 * 1024 * 1024;

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
  /** What the caller expects, for messages: e.g. 'a policy file (policy.dna, written by search)'. */
  what?: string;
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

export type StorageDType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8';

/** Storage dtype and its element size, for each tensor dtype. */
export const STORAGE: Record<DType, StorageDType> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float32',
  bfloat16: 'float32',
  int32: 'int32',
  int64: 'int64',
  uint8: 'uint8',
  bool: 'uint8',
};
export const ELEMENT_BYTES: Record<StorageDType, number> = { float32: 4, float64: 8, int32: 4, int64: 8, uint8: 1 };

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
// Layout and header checks.

/** Throws (a message without the file name; the caller adds it) unless `value` is plain JSON. */
export function checkJSON(value: unknown, where: string, seen: Set<object>, depth: number): void {
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

export function alignUp(n: number): number {
  return Math.ceil(n / CHECKPOINT_ALIGN) * CHECKPOINT_ALIGN;
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** The bytes of `array` in little-endian order (a view without copying on little-endian hosts). */
export function littleEndianBytes(array: TypedArray): Uint8Array {
  const view = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  const size = array.BYTES_PER_ELEMENT;
  if (LITTLE_ENDIAN_HOST || size === 1) return view;
  const out = new Uint8Array(view.length);
  for (let i = 0; i < view.length; i += size) for (let j = 0; j < size; j++) out[i + j] = view[i + size - 1 - j];
  return out;
}

/** `bytes` (little-endian) as a typed array of `storage`, in host order. Takes ownership. */
export function typedArrayFrom(bytes: Uint8Array, storage: StorageDType): TypedArray {
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

export function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

const DTYPES = new Set<string>(Object.keys(STORAGE));

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Validates the parsed header; returns the tensor entries in file order. */
export function validateHeader(path: string, header: unknown, dataStart: number, dataEnd: number) {
  const bad = (what: string) => new CheckpointError(path, `checkpoint ${path} has an invalid header: ${what}`);
  if (!isPlainObject(header)) throw bad('not a JSON object');
  const { version, kind, meta, tensors } = header;
  if (version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(
      path,
      `checkpoint ${path} has format version ${JSON.stringify(version)}; this library reads version ` +
        `${CHECKPOINT_VERSION}`,
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
    if (storage !== expectedStorage)
      throw bad(`${label}: storage ${describe(storage)} for dtype ${dtype}, expected "${expectedStorage}"`);
    if (!Array.isArray(shape) || shape.length > 64)
      throw bad(`${label}: shape is not an array of at most 64 dimensions`);
    for (const d of shape) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
        throw bad(`${label}: shape ${JSON.stringify(shape)} has a dimension that is not a non-negative integer`);
    }
    const numel = numelOf(shape as number[]);
    const expectedBytes = numel * ELEMENT_BYTES[expectedStorage];
    if (!Number.isSafeInteger(expectedBytes)) throw bad(`${label}: shape ${JSON.stringify(shape)} is too big`);
    if (byteLength !== expectedBytes) {
      throw bad(
        `${label}: byteLength ${describe(byteLength)} does not match shape ${JSON.stringify(shape)} of ${dtype} ` +
          `(${expectedBytes} bytes)`,
      );
    }
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset % CHECKPOINT_ALIGN !== 0) {
      throw bad(`${label}: offset ${describe(offset)} is not a multiple of ${CHECKPOINT_ALIGN}`);
    }
    if (offset < dataStart || offset + expectedBytes > dataEnd) {
      throw bad(
        `${label}: bytes ${offset}..${offset + expectedBytes} lie outside the data area ${dataStart}..${dataEnd} ` +
          `of the file`,
      );
    }
    entries.push({
      name,
      dtype: dtype as DType,
      storage: expectedStorage,
      shape: shape as number[],
      offset,
      byteLength: expectedBytes,
    });
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
