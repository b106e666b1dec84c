import { native } from './native.js';

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
  /** Whether glibc keeps freed batches in the heap for reuse (DNA_MALLOC_TUNING=0 turns it off). */
  allocatorTuned: boolean;
}

/** What the native backend is and can do. */
export function backend(): Backend {
  return native.backend();
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
  native.setNumThreads(threads);
}
