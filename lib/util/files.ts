// Files the library writes and checks: one atomic write for checkpoints, policies, reports and
// summaries (a killed process leaves the old file or the new one, never half of one), and the
// existence test the loops use.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as nodePath from 'node:path';

/** The system error code of an error (ENOENT, ENOSPC, ...), when it has one. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Whether anything exists at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await fsp.stat(path);
    return true;
  } catch {
    return false;
  }
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
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF' && code !== 'ENOTSUP')
      throw error;
  } finally {
    await handle?.close().catch(() => {});
  }
}

/**
 * Writes `path` atomically: `write` fills `<path>.tmp-<pid>-<random>` in the same directory
 * (created with O_EXCL, so an existing file or symlink at that name is never followed), which
 * is fsynced and renamed over `path`, and the directory is fsynced. On any failure the temp file
 * is removed, the previous file at `path` is left as it was, and the error is rethrown.
 */
export async function writeFileAtomically(path: string, write: (handle: FileHandle) => Promise<void>): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let handle: FileHandle | undefined;
  let renamed = false;
  try {
    handle = await fsp.open(temp, 'wx', 0o644);
    await write(handle);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(temp, path);
    renamed = true;
    await fsyncDirectory(nodePath.dirname(nodePath.resolve(path)));
  } catch (error) {
    if (handle !== undefined) await handle.close().catch(() => {});
    if (!renamed) await fsp.unlink(temp).catch(() => {});
    throw error;
  }
}

/** Writes a text file atomically (see writeFileAtomically). */
export function writeTextAtomically(path: string, text: string): Promise<void> {
  return writeFileAtomically(path, (handle) => handle.writeFile(text, 'utf8'));
}
