// Starting ranks of distributed-worker.js for the distributed tests: fresh ports, each rank's
// output and exit, the `result` lines it printed. Every rank runs with one LibTorch thread and is
// killed after `limitMs` at the latest, so a test can fail but never hang.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const WORKER = path.join(here, 'distributed-worker.js');
export const LAUNCH_MAIN = path.join(here, 'launch-main.js');

/** A port that was free a moment ago (the kernel's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  /** Milliseconds from start to exit. */
  ms: number;
}

/**
 * Runs `command args` with `env` added to this process's (undefined removes a variable), one
 * LibTorch thread unless `env` says otherwise, killed after `limitMs`.
 */
export function run(
  command: string,
  args: string[],
  env: Record<string, string | undefined>,
  limitMs = 60_000,
): Promise<Exit> {
  const started = performance.now();
  const merged: Record<string, string | undefined> = { ...process.env, DNA_THREADS: '1', ...env };
  for (const [name, value] of Object.entries(merged)) if (value === undefined) delete merged[name];
  const child = spawn(command, args, { env: merged, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, ms: performance.now() - started });
    });
  });
}

/** Rank `rank` of a run of `worldSize` ranks on this host, its store at 127.0.0.1:port (rank 0 hosts it). */
export function runRank(
  scenario: string,
  rank: number,
  worldSize: number,
  port: number,
  options: object = {},
  env: Record<string, string | undefined> = {},
): Promise<Exit> {
  return run(process.execPath, [WORKER, scenario, JSON.stringify(options)], {
    RANK: String(rank),
    WORLD_SIZE: String(worldSize),
    LOCAL_RANK: String(rank),
    LOCAL_WORLD_SIZE: String(worldSize),
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(port),
    ...env,
  });
}

/** The JSON of every `result ...` line in `output` (prefixed by `[rank N] ` or not), by rank. */
export function results<T extends { rank: number }>(output: string): T[] {
  const found = [...output.matchAll(/^(?:\[[^\]]*\] ?)?(?:\[default\d+\]:)?result (.*)$/gm)].map(
    (m) => JSON.parse(m[1]) as T,
  );
  return found.sort((a, b) => a.rank - b.rank);
}

/** A stream that collects what is written to it. */
export function collector(): { stream: PassThrough; text(): string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
}
