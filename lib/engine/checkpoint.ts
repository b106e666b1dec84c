// Checkpoint files for long training and search runs: a small format of our own (no pickle,
// no code; checkpoint-format.ts), written atomically (temp file + fsync + rename + directory
// fsync) and fully validated on load (magic, header, offsets, sizes, dtypes, shapes, CRC32).
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as nodePath from 'node:path';

import { describe, optionsObject } from '../util/describe.js';
import { errorCode, writeFileAtomically } from '../util/files.js';
import {
  CHECKPOINT_MAGIC,
  CHECKPOINT_VERSION,
  CheckpointError,
  ELEMENT_BYTES,
  MAGIC,
  MAX_HEADER_BYTES,
  MAX_KIND_LENGTH,
  PREFIX_BYTES,
  READ_CHUNK,
  STORAGE,
  TRAILER_BYTES,
  alignUp,
  checkJSON,
  crc32,
  littleEndianBytes,
  numelOf,
  typedArrayFrom,
  validateHeader,
  type CheckpointData,
  type CheckpointTensorEntry,
  type LoadCheckpointOptions,
  type LoadedCheckpoint,
} from './checkpoint-format.js';
import { tensor } from './creation.js';
import { Tensor } from './tensor.js';

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

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    done += bytesWritten;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function writeError(path: string, error: unknown): CheckpointError {
  if (error instanceof CheckpointError) return error;
  const code = errorCode(error);
  const cause = errorMessage(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new CheckpointError(path, `no space left on device while writing ${path} (${cause})`, {
      cause: error,
      code,
    });
  }
  if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
    return new CheckpointError(path, `cannot write ${path}: ${cause}`, { cause: error, code });
  }
  return new CheckpointError(path, `failed to write checkpoint ${path}: ${cause}`, { cause: error, code });
}

/**
 * Writes a checkpoint to `path` atomically (util/files.ts: a temp file beside it, fsynced and
 * renamed over `path`, then the directory fsynced).
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
    throw new TypeError(
      `saveCheckpoint(${path}): checkpoint must be an object { kind, meta, tensors }, got ${describe(checkpoint)}`,
    );
  }
  const { kind, meta, tensors } = checkpoint;
  if (typeof kind !== 'string' || kind.length === 0 || kind.length > MAX_KIND_LENGTH) {
    throw new TypeError(
      `saveCheckpoint(${path}): kind must be a non-empty string of at most ${MAX_KIND_LENGTH} characters, got ` +
        `${describe(kind)}`,
    );
  }
  try {
    checkJSON(meta, 'meta', new Set(), 0);
  } catch (error) {
    throw new TypeError(`saveCheckpoint(${path}): ${errorMessage(error)}`);
  }
  if (tensors === null || typeof tensors !== 'object' || Array.isArray(tensors)) {
    throw new TypeError(
      `saveCheckpoint(${path}): tensors must be an object of named Tensors, got ${describe(tensors)}`,
    );
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
    if (storage === undefined)
      throw new TypeError(`saveCheckpoint(${path}): tensors[${JSON.stringify(name)}] has unsupported dtype ${dtype}`);
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
    throw new Error(
      `saveCheckpoint(${path}): header is ${header.length} bytes, more than ${MAX_HEADER_BYTES} (meta too big?)`,
    );
  }

  try {
    await writeFileAtomically(path, async (handle) => {
      let position = 0;
      let crc = 0;
      const put = async (bytes: Uint8Array) => {
        await writeAll(handle, bytes, position);
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
            `tensor ${JSON.stringify(entry.name)} (${entry.dtype} ${JSON.stringify(entry.shape)}) gave ` +
              `${bytes.length} bytes, expected ${entry.byteLength} (changed while saving?)`,
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
    });
  } catch (error) {
    throw writeError(path, error);
  }
}

// ---------------------------------------------------------------------------------------------
// Loading.

async function readExactly(handle: FileHandle, bytes: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesRead } = await handle.read(bytes, done, bytes.length - done, position + done);
    if (bytesRead <= 0)
      throw new CheckpointError(path, `checkpoint ${path} is truncated (file changed while reading?)`);
    done += bytesRead;
  }
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
  const { kind: wantKind, what, device = 'cpu' } = optionsObject(options, `loadCheckpoint(${path})`);
  // A file that is no checkpoint at all: said in the caller's words when it gave them.
  const foreign = (detail: string) =>
    new CheckpointError(
      path,
      what === undefined
        ? `${path} is not a checkpoint (${detail})`
        : `${path} is not ${what}: it is no file of dna-augment at all (${detail})`,
    );
  if (wantKind !== undefined && typeof wantKind !== 'string')
    throw new TypeError(`loadCheckpoint(${path}): options.kind must be a string, got ${describe(wantKind)}`);
  if (typeof device !== 'string')
    throw new TypeError(`loadCheckpoint(${path}): options.device must be a string, got ${describe(device)}`);

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
    const truncated = (detail: string) =>
      new CheckpointError(path, `checkpoint ${path} is truncated or corrupt: ${detail}`);
    if (size < PREFIX_BYTES) {
      // Still tell a foreign file from a cut one when the magic cannot match.
      const head = Buffer.alloc(size);
      await readExactly(handle, head, 0, path);
      if (!MAGIC.subarray(0, size).equals(head)) throw foreign('bad magic bytes');
      throw truncated(`only ${size} bytes`);
    }
    const prefix = Buffer.alloc(PREFIX_BYTES);
    await readExactly(handle, prefix, 0, path);
    if (!prefix.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw foreign(`bad magic bytes, expected "${CHECKPOINT_MAGIC}"`);
    }
    const headerLength = prefix.readUInt32LE(MAGIC.length);
    if (headerLength > MAX_HEADER_BYTES)
      throw truncated(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
    const dataStart = alignUp(PREFIX_BYTES + headerLength);
    if (PREFIX_BYTES + headerLength + TRAILER_BYTES > size) {
      throw truncated(`header length ${headerLength} runs past the end of the ${size}-byte file`);
    }
    // The recorded total length first: a cut file is reported as truncated, whatever it cuts.
    const trailer = Buffer.alloc(TRAILER_BYTES);
    await readExactly(handle, trailer, size - TRAILER_BYTES, path);
    const recordedLength = trailer.readBigUInt64LE(0);
    if (recordedLength !== BigInt(size)) {
      throw truncated(
        `the file is ${size} bytes but its trailer records ${recordedLength} (cut short, or not written by ` +
          `saveCheckpoint)`,
      );
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
      throw new CheckpointError(
        path,
        what === undefined
          ? `checkpoint ${path} holds a "${kind}" checkpoint, not the expected "${wantKind}"`
          : `${path} is not ${what}: it holds a "${kind}" checkpoint`,
      );
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
      throw truncated(
        `CRC32 mismatch (computed ${crc.toString(16).padStart(8, '0')}, recorded ` +
          `${recordedCrc.toString(16).padStart(8, '0')})`,
      );
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
            if (bytes[i] > 1)
              throw new CheckpointError(
                path,
                `checkpoint ${path}: bool tensor ${JSON.stringify(entry.name)} holds byte ${bytes[i]}`,
              );
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
      throw new CheckpointError(
        path,
        `checkpoint ${path}: cannot create tensors on device "${device}": ${errorMessage(error)}`,
        { cause: error },
      );
    }
    return { version: CHECKPOINT_VERSION, kind, meta, tensors: out };
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointError(path, `cannot read checkpoint ${path}: ${errorMessage(error)}`, {
      cause: error,
      code: errorCode(error),
    });
  } finally {
    if (handle !== undefined) await handle.close().catch(() => {});
  }
}

/** The tensors whose names start with `prefix`, without it (a part of a checkpoint that holds several). */
export function withPrefix(tensors: Record<string, Tensor>, prefix: string): Record<string, Tensor> {
  return Object.fromEntries(
    Object.entries(tensors)
      .filter(([name]) => name.startsWith(prefix))
      .map(([name, t]) => [name.slice(prefix.length), t]),
  );
}
