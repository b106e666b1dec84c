// A run's output folder: the files a `train` or `search` run writes there, the refusal to mix a
// new run into a folder that holds one (resume it, or start over with `force`, which deletes the
// old run's files, so that no log line and no report of the old run sits beside the new one),
// the run record (DIR/<kind>.run.json: how far the run got, and how long it has taken over all
// its processes, kept out of the checkpoint so that a checkpoint stays byte-identical for the same
// seed), a log cut back to what a checkpoint holds, and the comparison of a resumed run's settings
// with the saved ones.
import { mkdir, readFile, rm, rmdir, truncate } from 'node:fs/promises';
import path from 'node:path';

import { isDirectory } from '../data/files.js';
import type { ProcessGroup } from '../distributed/group.js';
import { errorCode, exists, writeTextAtomically } from '../util/files.js';
import { checkResumedWorld } from './ranks.js';
import { loadRunState, type RunParts } from './run-state.js';

export type RunKind = 'train' | 'search';

/** The files each kind of run writes into its folder (a train and a search run may share one). */
export const RUN_FILES: Readonly<Record<RunKind, readonly string[]>> = Object.freeze({
  train: Object.freeze(['train.last.ckpt', 'train.best.ckpt', 'metrics.jsonl', 'train.steps.jsonl', 'train.run.json']),
  search: Object.freeze(['search.last.ckpt', 'policy.dna', 'search.jsonl', 'search.steps.jsonl', 'search.run.json']),
});

/** What `dna report` writes into report/ beside a policy: removed with the search that made the policy. */
const REPORT_FILES = ['report.md', 'report.json', 'examples.png'];

/** A new run was pointed at a folder that holds one of the same kind. */
export class RunExistsError extends Error {
  readonly dir: string;
  readonly kind: RunKind;
  /** The old run's files found there. */
  readonly files: string[];
  constructor(where: string, dir: string, kind: RunKind, files: string[]) {
    super(
      `${where}: ${dir} already holds a ${kind} run (${files.join(', ')}); continue it with resume: true, or ` +
        `start over with force: true (which deletes those files)`,
    );
    this.name = 'RunExistsError';
    this.dir = dir;
    this.kind = kind;
    this.files = files;
  }
}

/** One setting that differs between a saved run and the options of its resumption. */
export interface SettingDifference {
  name: string;
  saved: unknown;
  now: unknown;
}

/** A resumed run was given other settings than the run it continues. */
export class RunSettingsError extends Error {
  readonly file: string;
  readonly differences: SettingDifference[];
  constructor(where: string, file: string, differences: SettingDifference[]) {
    super(
      `${where}: ${file} was written by a run with other settings: ` +
        `${differences.map((d) => `${d.name} ${show(d.saved)} (now ${show(d.now)})`).join(', ')}; resume it ` +
        `with the same settings, or start over with force: true`,
    );
    this.name = 'RunSettingsError';
    this.file = file;
    this.differences = differences;
  }
}

/** A setting's value in a message: short values as JSON, long ones (a search space) cut. */
export function show(value: unknown): string {
  const text = JSON.stringify(value) ?? 'none';
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * The settings of `now` that differ from `saved`, key by key. Keys in `mayChange` are not
 * compared, nor keys the saved run did not record (a file of an older version).
 */
export function settingDifferences(
  saved: unknown,
  now: Record<string, unknown>,
  mayChange: readonly string[] = [],
): SettingDifference[] {
  const old = (saved !== null && typeof saved === 'object' ? saved : {}) as Record<string, unknown>;
  return Object.keys(now)
    .filter((name) => !mayChange.includes(name) && Object.hasOwn(old, name))
    .filter((name) => JSON.stringify(old[name]) !== JSON.stringify(now[name]))
    .map((name) => ({ name, saved: old[name], now: now[name] }));
}

/** Creates the output folder, with an error in words where it is a file or cannot be made. */
export async function makeOutDir(where: string, dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    const code = errorCode(error);
    if (code === 'EEXIST')
      throw new Error(`${where}: the output folder ${dir} is a file, not a folder`, { cause: error });
    if (code === 'ENOTDIR') {
      let file = path.dirname(dir);
      while ((await isDirectory(path.dirname(file))) === false && path.dirname(file) !== file)
        file = path.dirname(file);
      throw new Error(`${where}: the output folder ${dir} lies under a file (${file}), not a folder`, { cause: error });
    }
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
      throw new Error(`${where}: cannot create the output folder ${dir}: permission denied`, { cause: error });
    throw new Error(`${where}: cannot create the output folder ${dir}: ${(error as Error).message}`, { cause: error });
  }
}

/** The files of a `kind` run present in `dir` (report/ counts for a search). */
export async function runFilesIn(dir: string, kind: RunKind): Promise<string[]> {
  const found: string[] = [];
  for (const name of RUN_FILES[kind]) if (await exists(path.join(dir, name))) found.push(name);
  if (kind === 'search') {
    for (const name of REPORT_FILES) if (await exists(path.join(dir, 'report', name))) found.push(`report/${name}`);
  }
  return found;
}

/**
 * Gets `dir` ready for a `kind` run: created when missing; when it holds such a run already,
 * the run is resumed (`resume`), its files deleted (`force`), or a RunExistsError thrown.
 * Returns whether there is a checkpoint to resume from.
 */
export async function prepareOutDir(
  where: string,
  dir: string,
  kind: RunKind,
  options: { resume?: boolean; force?: boolean; main?: boolean },
): Promise<{ checkpoint: string; resumable: boolean }> {
  // In a distributed run every rank looks (and refuses alike); rank 0 alone creates and deletes.
  const main = options.main ?? true;
  if (main) await makeOutDir(where, dir);
  const checkpoint = path.join(dir, `${kind}.last.ckpt`);
  if (options.resume && (await exists(checkpoint))) return { checkpoint, resumable: true };
  const found = await runFilesIn(dir, kind);
  if (found.length > 0 && !options.resume && !options.force) throw new RunExistsError(where, dir, kind, found);
  if (!main) return { checkpoint, resumable: false };
  // Resuming a run that never saved, or starting over: nothing of the old run stays.
  for (const name of found) await rm(path.join(dir, name), { force: true });
  if (found.some((name) => name.startsWith('report/'))) await rmdir(path.join(dir, 'report')).catch(() => {});
  return { checkpoint, resumable: false };
}

/** How far a run got and how long it took over all its processes: DIR/<kind>.run.json. */
export interface RunRecord {
  kind: RunKind;
  /** 'running' (or killed), 'stopped' (by its signal, resumable) or 'finished'. */
  status: 'running' | 'stopped' | 'finished';
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  /** Seconds over every process that ran it. */
  seconds: number;
  /** When it was written (ISO 8601). */
  updated: string;
}

export function runRecordPath(dir: string, kind: RunKind): string {
  return path.join(dir, `${kind}.run.json`);
}

/** The run record in `dir`, or undefined when there is none or it cannot be read (it is advisory). */
export async function readRunRecord(dir: string, kind: RunKind): Promise<RunRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(runRecordPath(dir, kind), 'utf8')) as Partial<RunRecord>;
    return typeof record.seconds === 'number' && Number.isFinite(record.seconds) ? (record as RunRecord) : undefined;
  } catch {
    return undefined;
  }
}

export async function writeRunRecord(dir: string, record: Omit<RunRecord, 'updated'>): Promise<void> {
  const full: RunRecord = {
    ...record,
    seconds: Math.round(record.seconds * 100) / 100,
    updated: new Date().toISOString(),
  };
  await writeTextAtomically(runRecordPath(dir, record.kind), JSON.stringify(full, null, 2) + '\n');
}

/**
 * Cuts a JSON-lines log back to the lines of the first `epochs` epochs (lines with a larger
 * `epoch`, written after the checkpoint a run resumes from, would be written again), or of the
 * steps up to `step` for a step log. A missing file is left missing.
 */
export async function trimLog(file: string, keep: { epoch?: number; step?: number }): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return;
    throw error;
  }
  let bytes = 0;
  for (const line of text.split('\n')) {
    if (line === '') break;
    let entry: { epoch?: unknown; step?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      break; // A line cut by a kill: it and what follows go.
    }
    if (keep.epoch !== undefined && typeof entry.epoch === 'number' && entry.epoch > keep.epoch) break;
    if (keep.step !== undefined && typeof entry.step === 'number' && entry.step > keep.step) break;
    bytes += Buffer.byteLength(line) + 1;
  }
  if (bytes < Buffer.byteLength(text)) await truncate(file, bytes);
}

/**
 * Opens a run's folder (prepareOutDir) and, when there is a checkpoint to resume, restores it:
 * loads the run's parts (`state`, loadRunState), refuses a world size that cannot continue its
 * epoch (checkResumedWorld) and other settings by name (the device may change), and reads the time
 * the earlier processes took; the logs are cut back to where the run continues. `position` is
 * absent for a fresh run.
 */
export async function openRun<P extends { epoch: number; batch: number; step: number }>(options: {
  kind: RunKind;
  dir: string;
  resume?: boolean;
  force?: boolean;
  group: ProcessGroup;
  checkpoint: string;
  /** The checkpoint's kind and version, and the modules, optimisers and generators it restores. */
  state: { kind: string; version: number; parts: RunParts };
  run: Record<string, unknown>;
  logs: { metrics: string; steps?: string };
}): Promise<{ position?: P; previousSeconds: number }> {
  const { kind, dir, checkpoint, group, state } = options;
  const { resumable } = await prepareOutDir(kind, dir, kind, options);
  let position: P | undefined;
  let previousSeconds = 0;
  if (resumable) {
    const restored = await loadRunState<P>(checkpoint, state.kind, state.version, state.parts);
    checkResumedWorld(kind, checkpoint, restored.run, group, restored.position);
    const differences = settingDifferences(restored.run, options.run, ['device', 'worldSize']);
    if (differences.length > 0) throw new RunSettingsError(kind, checkpoint, differences);
    position = restored.position;
    previousSeconds = (await readRunRecord(dir, kind))?.seconds ?? 0;
  }
  // Rank 0 (or a run of its own) writes the logs.
  if (group.isMain) {
    await trimLog(options.logs.metrics, { epoch: position?.epoch ?? 0 });
    if (options.logs.steps !== undefined) await trimLog(options.logs.steps, { step: position?.step ?? 0 });
  }
  return { position, previousSeconds };
}

/** Writes the run record after a save at `position`: finished, stopped by its signal, or running. */
export async function recordRun(
  dir: string,
  kind: RunKind,
  position: { epoch: number; batch: number; step: number },
  run: { epochs: number; steps: number; aborted: boolean; seconds: number },
): Promise<void> {
  const { epoch, batch, step } = position;
  const finished = epoch >= run.epochs && batch === 0;
  await writeRunRecord(dir, {
    kind,
    status: finished ? 'finished' : run.aborted ? 'stopped' : 'running',
    epoch,
    epochs: run.epochs,
    step,
    steps: run.steps,
    seconds: run.seconds,
  });
}
