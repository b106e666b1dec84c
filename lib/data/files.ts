// File reading shared by the loaders: every failure becomes a DataFileError naming the file.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';

import { describe } from '../util/describe.js';
import { exists } from '../util/files.js';
import { DataFileError } from './dataset.js';

const gunzipAsync = promisify(gunzip);

/** Which part of a dataset to load. */
export type Split = 'train' | 'test';

export interface LoadOptions {
  /** `'train'` (default) or `'test'`. */
  split?: Split;
}

export function checkSplit(where: string, split: unknown, allowed: readonly string[] = ['train', 'test']): string {
  if (split === undefined) return 'train';
  if (typeof split !== 'string' || !allowed.includes(split)) {
    throw new RangeError(
      `${where}: split must be ${allowed.map((s) => `'${s}'`).join(' or ')}, got ${describe(split)}`,
    );
  }
  return split;
}

export function checkDirArgument(where: string, dir: unknown): string {
  if (typeof dir !== 'string' || dir === '')
    throw new TypeError(`${where}: dir must be a folder path, got ${describe(dir)}`);
  return dir;
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * A folder the user named must be there: a plain "not found" or "is a file" naming it, with
 * `source` (where such a folder comes from) when given.
 */
export async function requireFolder(where: string, dir: string, source?: string): Promise<void> {
  if (await isDirectory(dir)) return;
  const what = (await exists(dir)) ? 'is a file, not a folder' : 'not found';
  throw new DataFileError(dir, `${where}: ${dir} ${what}${source === undefined ? '' : ` (${source})`}`);
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Reads a whole file; a missing one gives `${where}: missing PATH (what)`. */
export async function readRequired(where: string, path: string, what: string): Promise<Uint8Array> {
  try {
    const buffer = await readFile(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    if (errorCode(error) === 'ENOENT')
      throw new DataFileError(path, `${where}: missing ${path} (expected ${what})`, { cause: error });
    throw new DataFileError(path, `${where}: cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** The first of `names` that exists in `dir`; an error listing them all when none does. */
export async function findOneOf(where: string, dir: string, names: string[], what: string): Promise<string> {
  for (const name of names) {
    const path = join(dir, name);
    if (await exists(path)) return path;
  }
  const path = join(dir, names[0]);
  throw new DataFileError(
    path,
    `${where}: missing ${path} (expected ${what}; also looked for ${names.slice(1).join(', ')})`,
  );
}

/** Decompresses gzip data (recognised by its magic bytes 1f 8b); other data is returned as is. */
export async function gunzipIfCompressed(where: string, path: string, bytes: Uint8Array): Promise<Uint8Array> {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  try {
    const out = await gunzipAsync(bytes);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (error) {
    throw new DataFileError(
      path,
      `${where}: ${path} is not a readable gzip file (truncated or corrupt: ${(error as Error).message})`,
      { cause: error },
    );
  }
}

/** Class names from a text file, one a line (blank lines ignored); exactly `expected` of them. */
export async function readClassNames(where: string, path: string, expected: number, what: string): Promise<string[]> {
  const bytes = await readRequired(where, path, what);
  const names = new TextDecoder()
    .decode(bytes)
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  if (names.length !== expected) {
    throw new DataFileError(path, `${where}: ${path} has ${names.length} class names, expected ${expected} (${what})`);
  }
  return names;
}
