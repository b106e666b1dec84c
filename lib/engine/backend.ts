import { describe } from '../util/describe.js';
import { native } from './native.js';

/** Where CPU tensors get their memory: 'dna', this package's allocator, or 'libtorch', LibTorch's own (glibc's malloc). */
export type CpuAllocator = 'dna' | 'libtorch';

export interface Backend {
  /** The LibTorch version the addon was built against. */
  torch: string;
  /** Whether CUDA devices can be used now (a CUDA build and at least one device). */
  cuda: boolean;
  cudaDevices: number;
  /** Whether the addon was compiled with its CUDA kernels. */
  cudaBuilt: boolean;
  /** LibTorch's intra-op threads (set from DNA_THREADS, default: the available cores). */
  threads: number;
  /** The allocator of CPU tensors ('dna' unless DNA_CPU_ALLOCATOR=libtorch); `memoryStats()` says what it holds. */
  allocator: CpuAllocator;
}

/**
 * What the CPU tensor allocator holds. Tensors of `mappingThresholdBytes` or more get memory
 * mappings of their own, kept in a cache for reuse once freed; smaller ones come from malloc.
 * With `allocator: 'libtorch'` every figure is 0.
 */
export interface MemoryStats {
  allocator: CpuAllocator;
  mappingThresholdBytes: number;
  /** Bytes of mappings held by live tensors, kept in the cache, and the most held at once (both). */
  mappedInUseBytes: number;
  mappedCachedBytes: number;
  mappedPeakBytes: number;
  /** The most the cache keeps; a mapping unused for `idleReleaseMs` is given back to the system. */
  cacheLimitBytes: number;
  idleReleaseMs: number;
  /** Bytes of live tensors below the threshold, from malloc (with their headers). */
  heapInUseBytes: number;
  /** Mappings made, allocations served from the cache, and mappings given back (idle, over the limit, or to retry a failed mapping). */
  mappings: number;
  reuses: number;
  releases: number;
}

/** What the native backend is and can do. */
export function backend(): Backend {
  return native.backend();
}

/** What the CPU tensor allocator holds now (process-wide: every worker thread shares it). */
export function memoryStats(): MemoryStats {
  return native.memoryStats();
}

/**
 * Waits until the work queued on a CUDA device is done (CUDA runs asynchronously: time GPU work
 * only after this). On the CPU there is nothing to wait for.
 */
export function synchronize(device: string = 'cuda'): void {
  native.synchronize(device);
}

/**
 * Host reads of tensor values made so far by the addon (item(), data(), the engine's own checks):
 * on a GPU each waits for the device. Count them around a step to see its synchronisations.
 */
export function hostReads(): number {
  return native.hostReads();
}

/** Asynchronous native calls submitted and not yet settled. */
export function tasksInFlight(): number {
  return native.tasksInFlight();
}

/** Sets LibTorch's intra-op threads for this process. */
export function setThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > 4096)
    throw new RangeError(`setThreads: threads must be an integer from 1 to 4096, got ${describe(threads)}`);
  native.setNumThreads(threads);
}
