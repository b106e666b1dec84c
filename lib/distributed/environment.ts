// Where a rank is: its options checked and completed from torchrun's environment (RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, set by `dna launch` and by
// PyTorch's torchrun alike), and the network endpoint its Gloo connections use. Pure apart from
// reading the host's name and interfaces, so that every rule here is tested without a group.
import dns from 'node:dns/promises';
import os from 'node:os';

import { describe, optionsObject } from '../util/describe.js';
import type { Device } from '../engine/tensor.js';

export type DistributedBackend = 'gloo' | 'nccl';

/**
 * How this process joins a data-parallel run. Every field is optional: what is missing comes
 * from the environment that `dna launch` and torchrun set, then from the defaults.
 */
export interface DistributedOptions {
  /** This process's rank in 0..worldSize-1 (RANK). */
  rank?: number;
  /** The number of processes in the run (WORLD_SIZE). */
  worldSize?: number;
  /** This process's rank among those on its host (LOCAL_RANK; default: rank, as on one host). */
  localRank?: number;
  /** The number of processes on this host (LOCAL_WORLD_SIZE; default: worldSize, one host). */
  localWorldSize?: number;
  /** The host of the rendezvous store (MASTER_ADDR; default 127.0.0.1 on one host). */
  masterAddr?: string;
  /** Its port (MASTER_PORT); may be left out only in a world of one. */
  masterPort?: number;
  /** 'gloo' (CPU tensors; the default) or 'nccl' (CUDA tensors, CUDA builds). */
  backend?: DistributedBackend;
  /** 'cpu' (default), or 'cuda' for this rank's GPU (cuda:<localRank>), or 'cuda:N'. */
  device?: Device;
  /** How long a rendezvous or a collective may wait for the other ranks (default 600 s). */
  timeoutSeconds?: number;
  /** The network interface the ranks talk over (GLOO_SOCKET_IFNAME; needed across hosts when the host's name resolves to loopback). */
  socketInterface?: string;
  /** The size of the flat buffers that gradients travel in (default 25 MB, as DDP). */
  bucketMegabytes?: number;
}

/** The options completed: what `initDistributed` joins with. */
export interface DistributedSettings {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  /** 0: this rank hosts the store on a free port (a world of one). */
  masterPort: number;
  backend: DistributedBackend;
  device: Device;
  timeoutSeconds: number;
  socketInterface: string | undefined;
  bucketBytes: number;
  /** Whether the run spans hosts (worldSize > localWorldSize). */
  multiHost: boolean;
  /** Whether this rank serves the rendezvous store (rank 0, unless a launcher serves it). */
  hostStore: boolean;
  /** The keys of this run in the store (a launcher's store may serve several attempts). */
  storePrefix: string;
}

export const DEFAULT_TIMEOUT_SECONDS = 600;
export const DEFAULT_BUCKET_MEGABYTES = 25;
const BACKENDS: readonly DistributedBackend[] = ['gloo', 'nccl'];

type Environment = Record<string, string | undefined>;

/** Whether torchrun's variables say that this process is a rank of a run (RANK and WORLD_SIZE set). */
export function torchrunEnvironmentPresent(env: Environment = process.env): boolean {
  return env.RANK !== undefined && env.RANK !== '' && env.WORLD_SIZE !== undefined && env.WORLD_SIZE !== '';
}

function integerRule(min: number, max: number): string {
  return max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer in ${min}..${max}`;
}

/** An integer option, else the environment variable; messages name whichever was wrong. */
function integerSetting(
  where: string,
  given: unknown,
  name: string,
  variable: string,
  env: Environment,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (given !== undefined && given !== null) {
    if (typeof given !== 'number' || !Number.isInteger(given) || given < min || given > max) {
      throw new RangeError(`${where}: ${name} must be ${integerRule(min, max)}, got ${describe(given)}`);
    }
    return given;
  }
  const text = env[variable];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || value < min || value > max) {
    throw new RangeError(
      `${where}: the environment variable ${variable} must be ${integerRule(min, max)}, got ${describe(text)}`,
    );
  }
  return value;
}

function stringSetting(
  where: string,
  given: unknown,
  name: string,
  variable: string | undefined,
  env: Environment,
): string | undefined {
  if (given !== undefined && given !== null) {
    if (typeof given !== 'string' || given.trim() === '')
      throw new TypeError(`${where}: ${name} must be a non-empty string, got ${describe(given)}`);
    return given.trim();
  }
  const text = variable === undefined ? undefined : env[variable];
  return text === undefined || text.trim() === '' ? undefined : text.trim();
}

function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || address === 'localhost' || /^::ffff:127\./.test(address);
}

/**
 * The settings of this rank from `options` (true: from the environment alone) and the
 * environment; throws an Error naming the option or variable that is missing or wrong.
 */
export function distributedSettings(
  options: true | DistributedOptions,
  env: Environment = process.env,
  where = 'initDistributed',
): DistributedSettings {
  const given: DistributedOptions = options === true ? {} : optionsObject(options, where);
  const worldSize = integerSetting(where, given.worldSize, 'worldSize', 'WORLD_SIZE', env, 1, 65536);
  if (worldSize === undefined) {
    throw new TypeError(
      `${where}: the world size is not set: pass { worldSize } or set WORLD_SIZE (dna launch and torchrun set it)`,
    );
  }
  const rank = integerSetting(where, given.rank, 'rank', 'RANK', env, 0, worldSize - 1);
  if (rank === undefined)
    throw new TypeError(`${where}: the rank is not set: pass { rank } or set RANK (dna launch and torchrun set it)`);
  const localWorldSize =
    integerSetting(where, given.localWorldSize, 'localWorldSize', 'LOCAL_WORLD_SIZE', env, 1, worldSize) ?? worldSize;
  if (worldSize % localWorldSize !== 0) {
    throw new RangeError(
      `${where}: the world size (${worldSize}) must be a multiple of the ranks per host (localWorldSize ${localWorldSize})`,
    );
  }
  const localRank =
    integerSetting(where, given.localRank, 'localRank', 'LOCAL_RANK', env, 0, localWorldSize - 1) ??
    rank % localWorldSize;
  const multiHost = worldSize > localWorldSize;

  const masterAddr =
    stringSetting(where, given.masterAddr, 'masterAddr', 'MASTER_ADDR', env) ?? (multiHost ? undefined : '127.0.0.1');
  if (masterAddr === undefined)
    throw new TypeError(
      `${where}: a run across hosts needs the store's host: pass { masterAddr } or set MASTER_ADDR (the address of node 0)`,
    );
  if (multiHost && isLoopback(masterAddr)) {
    throw new RangeError(
      `${where}: MASTER_ADDR ${describe(masterAddr)} is a loopback address, which the other hosts of this run cannot reach: use the address of node 0`,
    );
  }
  const portGiven = integerSetting(where, given.masterPort, 'masterPort', 'MASTER_PORT', env, 0, 65535);
  const masterPort = portGiven ?? (worldSize === 1 ? 0 : undefined);
  if (masterPort === undefined)
    throw new TypeError(
      `${where}: the store's port is not set: pass { masterPort } or set MASTER_PORT (dna launch picks a free one)`,
    );

  // torchrun's agent (and dna launch) serve the store themselves and tell the ranks so; each
  // attempt of the run then has its own keys, as torch.distributed's env:// rendezvous does.
  const portFromEnvironment = given.masterPort === undefined || given.masterPort === null;
  const agentStore = portFromEnvironment && env.TORCHELASTIC_USE_AGENT_STORE === 'True';
  if (masterPort === 0 && (agentStore || rank !== 0))
    throw new RangeError(`${where}: port 0 (a free port) can only be used by the rank that hosts the store`);
  const storePrefix = agentStore
    ? `/worker/attempt_${env.TORCHELASTIC_RESTART_COUNT ?? '0'}/dna/${env.TORCHELASTIC_RUN_ID ?? 'run'}`
    : 'dna';

  let device = stringSetting(where, given.device, 'device', undefined, env) ?? 'cpu';
  if (device !== 'cpu' && !/^cuda(:\d+)?$/.test(device))
    throw new RangeError(`${where}: device must be 'cpu', 'cuda' or 'cuda:N', got ${describe(device)}`);
  if (device === 'cuda') device = `cuda:${localRank}`;
  const backend = given.backend ?? (device.startsWith('cuda') ? 'nccl' : 'gloo');
  if (!BACKENDS.includes(backend))
    throw new RangeError(`${where}: backend must be 'gloo' or 'nccl', got ${describe(backend)}`);
  if (backend === 'nccl' && device === 'cpu')
    throw new RangeError(
      `${where}: the NCCL backend needs a CUDA device: pass { device: 'cuda' }, or use backend 'gloo' on the CPU`,
    );

  const timeoutSeconds = given.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  if (typeof timeoutSeconds !== 'number' || !Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    throw new RangeError(`${where}: timeoutSeconds must be a positive number, got ${describe(timeoutSeconds)}`);
  }
  const bucketMegabytes = given.bucketMegabytes ?? DEFAULT_BUCKET_MEGABYTES;
  if (typeof bucketMegabytes !== 'number' || !Number.isFinite(bucketMegabytes) || bucketMegabytes <= 0) {
    throw new RangeError(`${where}: bucketMegabytes must be a positive number, got ${describe(bucketMegabytes)}`);
  }
  return {
    rank,
    worldSize,
    localRank,
    localWorldSize,
    masterAddr,
    masterPort,
    backend,
    device,
    timeoutSeconds,
    socketInterface: stringSetting(where, given.socketInterface, 'socketInterface', 'GLOO_SOCKET_IFNAME', env),
    bucketBytes: Math.max(1, Math.round(bucketMegabytes * 1024 * 1024)),
    multiHost,
    hostStore: !agentStore && rank === 0,
    storePrefix,
  };
}

/** Where this rank's Gloo connections listen: a network interface, or an address. */
export type GlooEndpoint = { interface: string } | { address: string };

/**
 * The Gloo endpoint of a rank: the interface named by socketInterface / GLOO_SOCKET_IFNAME;
 * else loopback when every rank is on this host; else the address this host's name resolves
 * to, which must not be a loopback address (the other hosts could not reach it).
 */
export async function glooEndpoint(
  settings: Pick<DistributedSettings, 'socketInterface' | 'multiHost' | 'worldSize' | 'localWorldSize'>,
  where = 'initDistributed',
): Promise<GlooEndpoint> {
  const interfaces = os.networkInterfaces();
  if (settings.socketInterface !== undefined) {
    if (interfaces[settings.socketInterface] === undefined) {
      throw new RangeError(
        `${where}: GLOO_SOCKET_IFNAME (socketInterface) ${describe(settings.socketInterface)} names no network interface of this host (it has ${Object.keys(interfaces).join(', ')})`,
      );
    }
    return { interface: settings.socketInterface };
  }
  if (!settings.multiHost) return { address: '127.0.0.1' };
  const hostname = os.hostname();
  const fix =
    'set GLOO_SOCKET_IFNAME to the network interface that leads to the other hosts (e.g. GLOO_SOCKET_IFNAME=eth0)';
  let addresses: string[];
  try {
    addresses = (await dns.lookup(hostname, { all: true })).map((entry) => entry.address);
  } catch (cause) {
    throw new Error(
      `${where}: this run spans hosts, and this host's name ${describe(hostname)} does not resolve to an address: ${fix}`,
      { cause },
    );
  }
  const reachable = addresses.find((address) => !isLoopback(address));
  if (reachable === undefined) {
    throw new Error(
      `${where}: this run spans hosts (world size ${settings.worldSize}, ${settings.localWorldSize} on this host), but this host's name ${describe(hostname)} resolves to ${addresses.join(', ')}, a loopback address the other hosts cannot reach: ${fix}`,
    );
  }
  return { address: reachable };
}

/**
 * LibTorch threads for each of `localWorldSize` ranks sharing this host's cores: the cores
 * divided among them, at least one.
 */
export function threadsPerRank(localWorldSize: number, cores: number = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / Math.max(1, localWorldSize)));
}
