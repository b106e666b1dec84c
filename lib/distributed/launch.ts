// The launcher behind `dna launch`: starts this host's ranks of a data-parallel run with
// torchrun's variables, divides the cores among them, prefixes their output with their rank, and
// when one fails stops the others and reports that rank's error: never a hang. On one host it
// serves the rendezvous store itself on a free port (as torchrun's agent does), so that two runs
// never race for a port; across hosts, rank 0 serves it at masterAddr:masterPort.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';

import { describe, requiredOptions } from '../util/describe.js';
import { native, type NativeStore } from '../engine/native.js';
import { threadsPerRank } from './environment.js';

export interface LaunchOptions {
  /** Ranks on this host. */
  nproc: number;
  /** Hosts in the run (default 1). */
  nnodes?: number;
  /** This host's index in 0..nnodes-1 (default 0). */
  nodeRank?: number;
  /** Node 0's address (needed across hosts; on one host 127.0.0.1). */
  masterAddr?: string;
  /** The store's port on node 0 (needed across hosts; on one host a free port is chosen). */
  masterPort?: number;
  /** LibTorch threads per rank (DNA_THREADS); default this host's cores divided among the ranks. */
  threadsPerRank?: number;
  /** The program each rank runs, e.g. 'node' or 'npx', and its arguments. */
  command: string;
  args?: string[];
  /** The ranks' environment, before torchrun's variables are added (default process.env). */
  env?: Record<string, string | undefined>;
  /** Where the prefixed output goes (default process.stdout and process.stderr). */
  stdout?: Writable;
  stderr?: Writable;
  /** After a rank fails, how long the others get to stop after SIGTERM before SIGKILL (default 3 s). */
  graceSeconds?: number;
  /** Aborting stops every rank (SIGTERM, then SIGKILL after the grace period). */
  signal?: AbortSignal;
  /**
   * Aborting interrupts every rank (SIGINT, as Ctrl-C would): a run stops after its current step,
   * saves and exits with 130, which then counts as an interruption, not a failure.
   */
  interrupt?: AbortSignal;
}

export interface RankExit {
  rank: number;
  localRank: number;
  /** The exit status, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchResult {
  /** 0 when every rank succeeded; else the failed rank's status (128 + signal number for a signal). */
  exitCode: number;
  ranks: RankExit[];
  /** The first rank that failed, and what it said last on stderr. */
  failure?: { rank: number; code: number | null; signal: NodeJS.Signals | null; message: string };
}

const TAIL_LINES = 20;

function checkedOptions(options: LaunchOptions) {
  const where = 'launch';
  const o = requiredOptions(options, where, '{ nproc, command, ... }');
  const integer = (value: unknown, name: string, min: number, max: number) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new RangeError(`${where}: ${name} must be an integer in ${min}..${max}, got ${describe(value)}`);
    }
    return value;
  };
  const nproc = integer(o.nproc, 'nproc', 1, 1024);
  const nnodes = integer(o.nnodes ?? 1, 'nnodes', 1, 65536);
  const nodeRank = integer(o.nodeRank ?? 0, 'nodeRank', 0, nnodes - 1);
  if (typeof o.command !== 'string' || o.command === '')
    throw new TypeError(`${where}: command must be the program to run, got ${describe(o.command)}`);
  const args = o.args ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string'))
    throw new TypeError(`${where}: args must be an array of strings, got ${describe(args)}`);
  if (nnodes > 1 && (typeof o.masterAddr !== 'string' || o.masterAddr === '')) {
    throw new TypeError(`${where}: a run across ${nnodes} hosts needs masterAddr, the address of node 0`);
  }
  if (nnodes > 1 && o.masterPort === undefined)
    throw new TypeError(`${where}: a run across ${nnodes} hosts needs masterPort, the store's port on node 0`);
  const masterPort =
    o.masterPort === undefined ? undefined : integer(o.masterPort, 'masterPort', nnodes > 1 ? 1 : 0, 65535);
  const threads =
    o.threadsPerRank === undefined
      ? threadsPerRank(nproc, os.availableParallelism())
      : integer(o.threadsPerRank, 'threadsPerRank', 1, 4096);
  const graceSeconds = o.graceSeconds ?? 3;
  if (typeof graceSeconds !== 'number' || !(graceSeconds >= 0))
    throw new RangeError(`${where}: graceSeconds must be a non-negative number, got ${describe(graceSeconds)}`);
  return {
    ...o,
    nproc,
    nnodes,
    nodeRank,
    args,
    masterPort,
    threads,
    graceSeconds,
    masterAddr: o.masterAddr ?? '127.0.0.1',
  };
}

/** Signals a rank's whole process group (it may have started children of its own, as npx does). */
function signalRank(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

/** Writes each line of `stream` to `out` behind `prefix`; `tail` keeps the last lines. */
function relayLines(
  stream: NodeJS.ReadableStream,
  out: Writable,
  prefix: string,
  tail: string[] | null,
): Promise<void> {
  return new Promise((resolve) => {
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    lines.on('line', (line) => {
      out.write(`${prefix}${line}\n`);
      if (tail !== null) {
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
      }
    });
    lines.on('close', resolve);
  });
}

/**
 * Starts this host's ranks of `command args` and resolves when all have ended. When one fails
 * (a non-zero status or a signal), the others get SIGTERM and, after `graceSeconds`, SIGKILL;
 * the result names the failed rank and its last lines of stderr. The ranks see RANK, WORLD_SIZE,
 * LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT, DNA_THREADS and
 * OMP_NUM_THREADS, and on one host TORCHELASTIC_USE_AGENT_STORE=True (the store is served here).
 */
export async function launch(options: LaunchOptions): Promise<LaunchResult> {
  const o = checkedOptions(options);
  const stdout = o.stdout ?? process.stdout;
  const stderr = o.stderr ?? process.stderr;
  const worldSize = o.nproc * o.nnodes;
  let store: NativeStore | undefined;
  let masterPort = o.masterPort;
  const agentStore = o.nnodes === 1;
  if (agentStore) {
    try {
      store = native.distributedHostStore(masterPort ?? 0, 60_000);
    } catch (error) {
      const message =
        error instanceof Error ? error.message.replace(/^distributedHostStore: port \d+: /, '') : String(error);
      throw Object.assign(
        new Error(`launch: cannot serve the rendezvous store on port ${masterPort}: ${message}`, { cause: error }),
        {
          code: (error as { code?: string }).code,
        },
      );
    }
    masterPort = native.distributedStorePort(store);
  }
  const runId = randomUUID();
  const ranks: RankExit[] = [];
  const children: ChildProcess[] = [];
  let failure: LaunchResult['failure'];
  let killTimer: NodeJS.Timeout | undefined;

  const stopAll = () => {
    for (const child of children) signalRank(child, 'SIGTERM');
    killTimer ??= setTimeout(() => {
      for (const child of children) signalRank(child, 'SIGKILL');
    }, o.graceSeconds * 1000);
  };
  const onAbort = () => stopAll();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  let interrupted = false;
  const onInterrupt = () => {
    interrupted = true;
    for (const child of children) signalRank(child, 'SIGINT');
  };
  o.interrupt?.addEventListener('abort', onInterrupt, { once: true });

  try {
    const ended = Array.from({ length: o.nproc }, (_, localRank) => {
      const rank = o.nodeRank * o.nproc + localRank;
      const env: Record<string, string | undefined> = {
        ...(o.env ?? process.env),
        RANK: String(rank),
        WORLD_SIZE: String(worldSize),
        LOCAL_RANK: String(localRank),
        LOCAL_WORLD_SIZE: String(o.nproc),
        GROUP_RANK: String(o.nodeRank),
        GROUP_WORLD_SIZE: String(o.nnodes),
        ROLE_RANK: String(rank),
        ROLE_WORLD_SIZE: String(worldSize),
        MASTER_ADDR: o.masterAddr,
        MASTER_PORT: String(masterPort),
        DNA_THREADS: String(o.threads),
        OMP_NUM_THREADS: String(o.threads),
        TORCHELASTIC_RUN_ID: runId,
        TORCHELASTIC_RESTART_COUNT: '0',
        TORCHELASTIC_MAX_RESTARTS: '0',
      };
      if (agentStore) env.TORCHELASTIC_USE_AGENT_STORE = 'True';
      else delete env.TORCHELASTIC_USE_AGENT_STORE;
      // Its own process group, so that stopping it reaches whatever it started.
      const child = spawn(o.command, o.args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      children.push(child);
      const prefix = `[rank ${rank}] `;
      const tail: string[] = [];
      const relayed = Promise.all([
        relayLines(child.stdout!, stdout, prefix, null),
        relayLines(child.stderr!, stderr, prefix, tail),
      ]);
      return new Promise<void>((resolve) => {
        let spawnError: Error | undefined;
        child.on('error', (error) => {
          spawnError = error;
        });
        child.on('close', (code, signal) => {
          void relayed.then(() => {
            ranks.push({ rank, localRank, code, signal });
            // After an interrupt, a rank that saved and exited with 130 did what it was asked.
            const failed = (code !== 0 && !(interrupted && code === 130)) || signal !== null;
            if (failed && failure === undefined) {
              const how =
                spawnError !== undefined
                  ? `could not start ${describe(o.command)}: ${spawnError.message}`
                  : signal !== null
                    ? `was ended by ${signal}`
                    : `exited with status ${code}`;
              failure = {
                rank,
                code,
                signal,
                message: tail.length > 0 ? `${how}; its last output:\n${tail.join('\n')}` : how,
              };
              stderr.write(`launch: rank ${rank} ${how}; stopping the other ranks\n`);
              stopAll();
            }
            resolve();
          });
        });
      });
    });
    await Promise.all(ended);
  } finally {
    clearTimeout(killTimer);
    o.signal?.removeEventListener('abort', onAbort);
    o.interrupt?.removeEventListener('abort', onInterrupt);
    if (store !== undefined) native.distributedCloseStore(store);
  }
  ranks.sort((a, b) => a.rank - b.rank);
  if (failure === undefined) return { exitCode: interrupted && ranks.some((r) => r.code === 130) ? 130 : 0, ranks };
  const signalNumber = failure.signal !== null ? (os.constants.signals[failure.signal] ?? 0) : 0;
  return { exitCode: failure.code !== null && failure.code !== 0 ? failure.code : 128 + signalNumber, ranks, failure };
}
