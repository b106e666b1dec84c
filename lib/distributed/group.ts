// Process groups: joining a data-parallel run (`initDistributed`), the collectives the loops
// need (in place, as Promises that keep Node's event loop free), gradient averaging, keeping
// replicas equal (parameters and buffers from rank 0, batch-norm statistics averaged) and
// decisions all ranks take together. A world of one (`localGroup()`) has the same methods and
// communicates nothing, so that the loops run one way with or without distribution.
import os from 'node:os';

import { describe } from '../util/describe.js';
import type { Module } from '../engine/models.js';
import { native, type NativeProcessGroup, type NativeReduction } from '../engine/native.js';
import type { Parameterized } from '../engine/optim.js';
import { Tensor, type Device } from '../engine/tensor.js';
import { tensor } from '../engine/creation.js';
import {
  DEFAULT_BUCKET_MEGABYTES,
  distributedSettings,
  glooEndpoint,
  threadsPerRank,
  torchrunEnvironmentPresent,
  type DistributedBackend,
  type DistributedOptions,
  type DistributedSettings,
} from './environment.js';

/** How `allReduce` combines the ranks' values. 'average' needs floating-point tensors. */
export type Reduction = NativeReduction;
const REDUCTIONS: readonly Reduction[] = ['sum', 'average', 'max', 'min'];

/** Something with parameters and buffers (a Module). */
export interface ModuleState extends Parameterized {
  buffers(): Tensor[];
}

/** How the ranks make their batch-norm running statistics equal (see `syncBatchNormStatistics`). */
export type BatchNormSync = 'average' | 'broadcast';

function tensorList(value: Tensor | Tensor[], where: string): Tensor[] {
  const list = Array.isArray(value) ? value : [value];
  list.forEach((t, i) => {
    if (!(t instanceof Tensor))
      throw new TypeError(
        `${where}: ${Array.isArray(value) ? `tensors[${i}]` : 'the argument'} must be a Tensor, got ${describe(t)}`,
      );
    if (t.isDisposed)
      throw new TypeError(`${where}: ${Array.isArray(value) ? `tensors[${i}]` : 'the tensor'} is disposed`);
  });
  return list;
}

function parametersOf(source: Parameterized | Tensor[], where: string): { tensors: Tensor[]; owned: boolean } {
  if (Array.isArray(source)) return { tensors: tensorList(source, where), owned: false };
  if (source === null || typeof source !== 'object' || typeof (source as Parameterized).parameters !== 'function') {
    throw new TypeError(
      `${where}: expected a model (with parameters()) or an array of Tensors, got ${describe(source)}`,
    );
  }
  return { tensors: source.parameters(), owned: true };
}

function disposeAll(tensors: Tensor[]): void {
  for (const t of tensors) t.dispose();
}

/** A 32-bit FNV-1a hash of the tensors' dtypes and shapes: equal on ranks that hold the same network. */
function layoutHash(tensors: Tensor[]): number {
  let hash = 0x811c9dc5;
  for (const t of tensors) {
    for (const char of `${t.dtype}[${t.shape.join(',')}];`)
      hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * The ranks of a data-parallel run, or a world of one. Every collective is started on the main
 * thread in call order, so all ranks must call the same methods in the same order (as they do
 * when they run the same loop); each returns a Promise that resolves once the result is in the
 * tensors. A rank that dies makes the others' pending collectives reject within moments (code
 * DNA_DISTRIBUTED_PEER_LOST); a silent one, after the timeout (DNA_DISTRIBUTED_TIMEOUT).
 */
export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;
  readonly localWorldSize: number;
  /** 'gloo' or 'nccl'; 'none' for a world of one without communication. */
  readonly backend: DistributedBackend | 'none';
  /** The device this rank computes on ('cpu', or its GPU). */
  readonly device: Device;
  /** The size of the buffers gradients travel in. */
  readonly bucketBytes: number;
  #native: NativeProcessGroup | null;
  readonly #distributed: boolean;
  #destroyed = false;
  // Models whose parameter layout every rank was checked to share.
  readonly #checkedLayouts = new WeakSet<object>();

  /** @internal Use `initDistributed()` or `localGroup()`. */
  constructor(
    handle: NativeProcessGroup | null,
    settings: Pick<
      DistributedSettings,
      'rank' | 'worldSize' | 'localRank' | 'localWorldSize' | 'device' | 'bucketBytes'
    > & { backend: DistributedBackend | 'none' },
  ) {
    this.#native = handle;
    this.#distributed = handle !== null;
    this.rank = settings.rank;
    this.worldSize = settings.worldSize;
    this.localRank = settings.localRank;
    this.localWorldSize = settings.localWorldSize;
    this.backend = settings.backend;
    this.device = settings.device;
    this.bucketBytes = settings.bucketBytes;
  }

  /** Whether this group talks to other processes (false for a world of one made by `localGroup()`). */
  get isDistributed(): boolean {
    return this.#distributed;
  }
  /** Whether this is rank 0, the rank that alone writes checkpoints, logs and reports. */
  get isMain(): boolean {
    return this.rank === 0;
  }
  get isDestroyed(): boolean {
    return this.#destroyed;
  }

  #handle(where: string): NativeProcessGroup | null {
    if (this.#destroyed) throw new Error(`${where}: the process group was destroyed`);
    return this.#native;
  }

  /** Combines `tensors` across the ranks, in place (every rank ends with the same values). */
  async allReduce(tensors: Tensor | Tensor[], reduction: Reduction = 'sum'): Promise<void> {
    const handle = this.#handle('allReduce');
    const list = tensorList(tensors, 'allReduce');
    if (!REDUCTIONS.includes(reduction))
      throw new RangeError(`allReduce: reduction must be one of ${REDUCTIONS.join(', ')}, got ${describe(reduction)}`);
    if (handle === null) return;
    await native.distributedAllReduce(
      handle,
      list.map((t) => t.handle),
      reduction,
      this.bucketBytes,
      'allReduce',
    );
  }

  /** Copies `root`'s values of `tensors` into every rank's, in place. */
  async broadcast(tensors: Tensor | Tensor[], root = 0): Promise<void> {
    const handle = this.#handle('broadcast');
    const list = tensorList(tensors, 'broadcast');
    this.#checkRoot(root, 'broadcast');
    if (handle === null) return;
    await native.distributedBroadcast(
      handle,
      list.map((t) => t.handle),
      root,
      this.bucketBytes,
      'broadcast',
    );
  }

  /** Resolves once every rank has reached it. */
  async barrier(): Promise<void> {
    const handle = this.#handle('barrier');
    if (handle === null) return;
    await native.distributedBarrier(handle);
  }

  /**
   * Replaces each parameter's gradient by its mean over the ranks, after backward and before the
   * optimisers step: what DDP does, in buckets of `bucketBytes` in reverse parameter order. Several
   * sources (a search's classifier and policy network) travel together, in the order given. A
   * parameter without a gradient counts as zeros and gets the mean. The first call for a model
   * checks that every rank holds the same layout of parameters (a mismatch would mix unrelated
   * values), and rejects on every rank if not.
   */
  async averageGradients(...sources: Array<Parameterized | Tensor[]>): Promise<void> {
    const where = 'averageGradients';
    const handle = this.#handle(where);
    if (sources.length === 0)
      throw new TypeError(`${where}: expected a model (with parameters()) or an array of Tensors`);
    const parts: Array<{ tensors: Tensor[]; owned: boolean }> = [];
    try {
      for (const source of sources) parts.push(parametersOf(source, where));
      const tensors = parts.flatMap((part) => part.tensors);
      if (handle === null) return;
      const models = sources.filter((source): source is Parameterized => !Array.isArray(source));
      if (models.length < sources.length || !models.every((model) => this.#checkedLayouts.has(model))) {
        await this.#checkSameLayout(tensors, where, 'parameters');
        for (const model of models) this.#checkedLayouts.add(model);
      }
      await native.distributedAverageGradients(
        handle,
        tensors.map((t) => t.handle),
        this.bucketBytes,
      );
    } finally {
      for (const part of parts) if (part.owned) disposeAll(part.tensors);
    }
  }

  /**
   * Makes every rank's parameters and buffers equal to `root`'s: at the start of a run (each rank
   * built its model from its own seed) and on resume.
   */
  async broadcastModule(module: ModuleState, root = 0): Promise<void> {
    const where = 'broadcastModule';
    const handle = this.#handle(where);
    this.#checkRoot(root, where);
    if (
      module === null ||
      typeof module !== 'object' ||
      typeof module.parameters !== 'function' ||
      typeof module.buffers !== 'function'
    ) {
      throw new TypeError(`${where}: expected a model (with parameters() and buffers()), got ${describe(module)}`);
    }
    if (handle === null) return;
    const tensors = [...module.parameters(), ...module.buffers()];
    try {
      await this.#checkSameLayout(tensors, where, 'parameters and buffers');
      await native.distributedBroadcast(
        handle,
        tensors.map((t) => t.handle),
        root,
        this.bucketBytes,
        where,
      );
    } finally {
      disposeAll(tensors);
    }
  }

  /**
   * Makes the batch-norm running statistics equal on every rank, before evaluating or saving.
   * Each rank trains with its own batches' statistics (as DDP does by default), so their running
   * averages drift apart. 'average' (the default) sets running_mean and running_var to their mean
   * over the ranks, which uses every rank's data; 'broadcast' takes rank 0's, as DDP's
   * broadcast_buffers does. Other buffers (the batch counts, the input normalisation) are the
   * same on every rank and are taken from rank 0 either way.
   */
  async syncBatchNormStatistics(module: Module, mode: BatchNormSync = 'average'): Promise<void> {
    const where = 'syncBatchNormStatistics';
    const handle = this.#handle(where);
    if (mode !== 'average' && mode !== 'broadcast')
      throw new RangeError(`${where}: mode must be 'average' or 'broadcast', got ${describe(mode)}`);
    if (module === null || typeof module !== 'object' || typeof (module as Module).namedBuffers !== 'function') {
      throw new TypeError(`${where}: expected a Module, got ${describe(module)}`);
    }
    if (handle === null) return;
    const buffers = Object.entries(module.namedBuffers());
    const averaged =
      mode === 'average'
        ? buffers.filter(([name, t]) => /running_(mean|var)$/.test(name) && t.dtype.startsWith('float'))
        : [];
    const taken = buffers.filter((entry) => !averaged.includes(entry));
    const all = buffers.map(([, t]) => t);
    try {
      await this.#checkSameLayout(all, where, 'buffers');
      await Promise.all([
        averaged.length > 0
          ? native.distributedAllReduce(
              handle,
              averaged.map(([, t]) => t.handle),
              'average',
              this.bucketBytes,
              where,
            )
          : undefined,
        taken.length > 0
          ? native.distributedBroadcast(
              handle,
              taken.map(([, t]) => t.handle),
              0,
              this.bucketBytes,
              where,
            )
          : undefined,
      ]);
    } finally {
      disposeAll(all);
    }
  }

  /**
   * A decision all ranks take together, in one small collective: for each flag, whether any rank
   * raised it. For what ends or skips a step (a non-finite loss, an abort, divergence), so that
   * no rank goes on alone into a collective the others never start.
   */
  async anyRank<K extends string>(flags: Record<K, boolean>): Promise<Record<K, boolean>> {
    const where = 'anyRank';
    const handle = this.#handle(where);
    if (flags === null || typeof flags !== 'object' || Array.isArray(flags))
      throw new TypeError(`${where}: flags must be an object of booleans, got ${describe(flags)}`);
    const keys = (Object.keys(flags) as K[]).sort();
    for (const key of keys) {
      if (typeof flags[key] !== 'boolean')
        throw new TypeError(`${where}: flags.${key} must be a boolean, got ${describe(flags[key])}`);
    }
    if (handle === null || keys.length === 0) return { ...flags };
    const values = tensor(new Float32Array(keys.map((key) => (flags[key] ? 1 : 0))));
    try {
      await native.distributedAllReduce(handle, [values.handle], 'max', this.bucketBytes, where);
      const combined = values.data();
      return Object.fromEntries(keys.map((key, i) => [key, combined[i] > 0])) as Record<K, boolean>;
    } finally {
      values.dispose();
    }
  }

  /** The sums over the ranks of `values` (counts of a sharded evaluation; exact for integers below 2^53). */
  async sum(values: number[]): Promise<number[]> {
    const where = 'sum';
    const handle = this.#handle(where);
    if (!Array.isArray(values) || !values.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new TypeError(`${where}: values must be an array of finite numbers, got ${describe(values)}`);
    }
    if (handle === null || values.length === 0) return [...values];
    const totals = tensor(new Float64Array(values));
    try {
      await native.distributedAllReduce(handle, [totals.handle], 'sum', this.bucketBytes, where);
      return Array.from(totals.data() as Float64Array);
    } finally {
      totals.dispose();
    }
  }

  /** Leaves the group: its connections close (off the main thread). Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const handle = this.#native;
    this.#native = null;
    if (handle !== null) await native.distributedDestroy(handle);
  }

  #checkRoot(root: number, where: string): void {
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) {
      throw new RangeError(`${where}: root must be a rank in 0..${this.worldSize - 1}, got ${describe(root)}`);
    }
  }

  // One tiny collective: the maximum of the hash and of its negation tell whether all ranks agree.
  async #checkSameLayout(tensors: Tensor[], where: string, what: string): Promise<void> {
    const hash = layoutHash(tensors);
    const probe = tensor(new Float64Array([hash, -hash, tensors.length, -tensors.length]));
    try {
      await native.distributedAllReduce(this.#native!, [probe.handle], 'max', this.bucketBytes, where);
      const [maxHash, minusMinHash, maxCount, minusMinCount] = probe.data() as Float64Array;
      if (maxHash !== -minusMinHash || maxCount !== -minusMinCount) {
        throw new Error(
          `${where}: the ranks hold different ${what} (${tensors.length} tensors here; shapes or order differ between ranks): every rank must build the same network`,
        );
      }
    } finally {
      probe.dispose();
    }
  }
}

/** The backends this build of the addon has: Gloo (CPU) and NCCL (CUDA builds with NCCL). */
export function distributedBackends(): { gloo: boolean; nccl: boolean } {
  return native.distributedBackends();
}

// Groups joined by this process so far: the n-th group of a run has keys of its own in the store,
// so that a program that joins several in turn (dna demo: a search, then trainings) does not meet
// the keys of the one before. Every rank joins its groups in the same order.
let joined = 0;

/**
 * Joins a data-parallel run: `true` takes everything from torchrun's environment (as `dna launch`
 * and torchrun set it), an object overrides what it names (see DistributedOptions). Resolves once
 * every rank has joined; rejects after the timeout when one does not, or at once when the store's
 * port is taken (code DNA_DISTRIBUTED_PORT_IN_USE). Unless DNA_THREADS is set, each rank takes
 * its share of this host's cores for LibTorch's threads.
 */
export async function initDistributed(options: true | DistributedOptions = true): Promise<ProcessGroup> {
  const where = 'initDistributed';
  if (options !== true && (options === null || typeof options !== 'object' || Array.isArray(options))) {
    throw new TypeError(`${where}: options must be true (from the environment) or an object, got ${describe(options)}`);
  }
  const settings = distributedSettings(options, process.env, where);
  const available = native.distributedBackends();
  if (!available[settings.backend]) {
    throw new Error(
      settings.backend === 'gloo'
        ? `${where}: this build of dna-augment has no Gloo backend: its LibTorch's c10d needs Gloo's headers to build it (Debian: apt-get install libgloo-dev), then rebuild the addon (npm rebuild dna-augment)`
        : `${where}: this build of dna-augment has no NCCL backend (it needs a CUDA build that found nccl.h); use backend 'gloo'`,
    );
  }
  const endpoint = settings.backend === 'gloo' ? await glooEndpoint(settings, where) : undefined;
  if ((process.env.DNA_THREADS ?? '') === '' && settings.localWorldSize > 1)
    native.setNumThreads(threadsPerRank(settings.localWorldSize, os.availableParallelism()));
  const handle = await native.distributedJoin({
    rank: settings.rank,
    worldSize: settings.worldSize,
    storeHost: settings.masterAddr,
    storePort: settings.masterPort,
    hostStore: settings.hostStore,
    storePrefix: `${settings.storePrefix}/${joined++}`,
    timeoutMs: Math.max(1, Math.round(settings.timeoutSeconds * 1000)),
    backend: settings.backend,
    glooInterface: endpoint !== undefined && 'interface' in endpoint ? endpoint.interface : undefined,
    glooAddress: endpoint !== undefined && 'address' in endpoint ? endpoint.address : undefined,
    cudaDevice: settings.device.startsWith('cuda:') ? Number(settings.device.slice(5)) : 0,
  });
  return new ProcessGroup(handle, settings);
}

/** A world of one: rank 0 of 1, every collective a no-op. What the loops use when not distributed. */
export function localGroup(device: Device = 'cpu'): ProcessGroup {
  return new ProcessGroup(null, {
    rank: 0,
    worldSize: 1,
    localRank: 0,
    localWorldSize: 1,
    backend: 'none',
    device,
    bucketBytes: DEFAULT_BUCKET_MEGABYTES * 1024 * 1024,
  });
}

/**
 * The group for a run's `distributed` option, as `train`, `search`, `evaluate` and `demo` take
 * it: false, a world of one; true or an object, `initDistributed`; left out, `initDistributed`
 * when torchrun's variables (RANK, WORLD_SIZE) are set, else a world of one.
 */
export async function processGroupFor(distributed: boolean | DistributedOptions | undefined): Promise<ProcessGroup> {
  if (distributed === undefined || distributed === null)
    return torchrunEnvironmentPresent() ? initDistributed(true) : localGroup();
  if (distributed === false) return localGroup();
  return initDistributed(distributed);
}
