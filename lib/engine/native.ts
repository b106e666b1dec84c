// The raw addon, typed once. Everything else in lib/ goes through the public wrappers
// (Tensor, Generator); nothing outside lib/ touches these handles.
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { CpuAllocator, MemoryStats } from './backend.js';

declare const tensorBrand: unique symbol;
declare const generatorBrand: unique symbol;
/** An opaque handle to a LibTorch tensor, owned by one `Tensor`. */
export type NativeTensor = { readonly [tensorBrand]: true };
/** An opaque handle to a LibTorch generator. */
export type NativeGenerator = { readonly [generatorBrand]: true };
declare const moduleBrand: unique symbol;
declare const optimizerBrand: unique symbol;
/** An opaque handle to a native network (a torch::nn::Module), owned by one `Module`. */
export type NativeModule = { readonly [moduleBrand]: true };
/** An opaque handle to a LibTorch optimiser, owned by one `Optimizer`. */
export type NativeOptimizer = { readonly [optimizerBrand]: true };
declare const processGroupBrand: unique symbol;
declare const storeBrand: unique symbol;
/** An opaque handle to a c10d process group (native/distributed), owned by one `ProcessGroup`. */
export type NativeProcessGroup = { readonly [processGroupBrand]: true };
/** An opaque handle to a rendezvous store served by this process (the launcher's). */
export type NativeStore = { readonly [storeBrand]: true };

export type NativeDType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int32' | 'int64' | 'uint8' | 'bool';
export type NativeTypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
type T = NativeTensor;
type Operand = NativeTensor | number | boolean;
type Gen = NativeGenerator | null | undefined;
type Dims = number | number[] | null | undefined;

export interface NativeStepOptions {
  backward?: boolean;
  inputGradient?: boolean;
  perImageLoss?: boolean;
  optimizer?: NativeOptimizer;
  zeroGrad?: boolean;
  step?: boolean;
}

export interface NativeStepResult {
  loss: T;
  correct: T;
  perImageLoss?: T;
  inputGradient?: T;
}

export interface NativeBackend {
  torch: string;
  cuda: boolean;
  cudaDevices: number;
  cudaBuilt: boolean;
  threads: number;
  allocator: CpuAllocator;
}

export interface Addon {
  backend(): NativeBackend;
  memoryStats(): MemoryStats;
  synchronize(device: string): void;
  setNumThreads(threads: number): void;
  hostReads(): number;
  tasksInFlight(): number;

  fromData(data: NativeTypedArray, shape: number[], dtype?: NativeDType, device?: string): T;
  full(shape: number[], value: number | boolean, dtype?: NativeDType, device?: string): T;
  arange(start: number, end: number, step: number, dtype?: NativeDType, device?: string): T;
  data(x: T): NativeTypedArray;
  item(x: T): number;
  shape(x: T): number[];
  dtype(x: T): NativeDType;
  device(x: T): string;
  numel(x: T): number;
  isContiguous(x: T): boolean;
  to(x: T, device: string, dtype?: NativeDType): T;
  dispose(x: T): void;
  isDisposed(x: T): boolean;
  liveTensors(): number;

  requiresGrad(x: T): boolean;
  setRequiresGrad(x: T, value: boolean): void;
  grad(x: T): T | undefined;
  setGrad(t: T, gradient: T): void;
  zeroGrad(x: T): void;
  backward(x: T, gradient?: T | null, retainGraph?: boolean, createGraph?: boolean): void;
  isGradEnabled(): boolean;
  setGradEnabled(enabled: boolean): boolean;

  add(x: Operand, y: Operand): T;
  sub(x: Operand, y: Operand): T;
  mul(x: Operand, y: Operand): T;
  div(x: Operand, y: Operand): T;
  pow(x: Operand, y: Operand): T;
  remainder(x: Operand, y: Operand): T;
  maximum(x: Operand, y: Operand): T;
  minimum(x: Operand, y: Operand): T;
  eq(x: Operand, y: Operand): T;
  ne(x: Operand, y: Operand): T;
  lt(x: Operand, y: Operand): T;
  le(x: Operand, y: Operand): T;
  gt(x: Operand, y: Operand): T;
  ge(x: Operand, y: Operand): T;
  logicalAnd(x: Operand, y: Operand): T;
  logicalOr(x: Operand, y: Operand): T;

  neg(x: T): T;
  abs(x: T): T;
  sign(x: T): T;
  exp(x: T): T;
  log(x: T): T;
  log1p(x: T): T;
  sqrt(x: T): T;
  square(x: T): T;
  reciprocal(x: T): T;
  sin(x: T): T;
  cos(x: T): T;
  tanh(x: T): T;
  sigmoid(x: T): T;
  relu(x: T): T;
  floor(x: T): T;
  ceil(x: T): T;
  round(x: T): T;
  logicalNot(x: T): T;
  isnan(x: T): T;
  isfinite(x: T): T;
  detach(x: T): T;
  clone(x: T): T;
  contiguous(x: T): T;
  logit(x: T, eps?: number | null): T;
  clamp(x: T, min?: number | null, max?: number | null): T;
  where(condition: T, x: Operand, y: Operand): T;

  sum(x: T, dims?: Dims, keepdim?: boolean): T;
  mean(x: T, dims?: Dims, keepdim?: boolean): T;
  amax(x: T, dims?: Dims, keepdim?: boolean): T;
  amin(x: T, dims?: Dims, keepdim?: boolean): T;
  logsumexp(x: T, dims?: Dims, keepdim?: boolean): T;
  var(x: T, dims?: Dims, keepdim?: boolean, unbiased?: boolean): T;
  std(x: T, dims?: Dims, keepdim?: boolean, unbiased?: boolean): T;
  argmax(x: T, dim?: number | null, keepdim?: boolean): T;
  argmin(x: T, dim?: number | null, keepdim?: boolean): T;
  cumsum(x: T, dim: number): T;
  softmax(x: T, dim: number): T;
  logSoftmax(x: T, dim: number): T;
  oneHot(x: T, classes: number): T;
  matmul(x: T, y: T): T;

  gather(x: T, dim: number, index: T): T;
  indexSelect(x: T, dim: number, index: T): T;
  maskedFill(x: T, mask: T, value: number | boolean): T;
  narrow(x: T, dim: number, start: number, length: number): T;
  select(x: T, dim: number, index: number): T;
  cat(xs: T[], dim: number): T;
  stack(xs: T[], dim: number): T;

  reshape(x: T, shape: number[]): T;
  permute(x: T, dims: number[]): T;
  transpose(x: T, dim0: number, dim1: number): T;
  expand(x: T, shape: number[]): T;
  repeat(x: T, repeats: number[]): T;
  flip(x: T, dims: number[]): T;
  flatten(x: T, start?: number, end?: number): T;
  squeeze(x: T, dim?: number | null): T;
  unsqueeze(x: T, dim: number): T;

  generator(seed: number | bigint, device?: string): NativeGenerator;
  generatorSeed(g: NativeGenerator): bigint;
  generatorDevice(g: NativeGenerator): string;
  generatorState(g: NativeGenerator): T;
  setGeneratorState(g: NativeGenerator, state: T): void;
  manualSeed(seed: number | bigint): void;
  rand(shape: number[], g?: Gen, dtype?: NativeDType, device?: string): T;
  randn(shape: number[], g?: Gen, dtype?: NativeDType, device?: string): T;
  uniform(low: number, high: number, shape: number[], g?: Gen, dtype?: NativeDType, device?: string): T;
  randint(low: number, high: number, shape: number[], g?: Gen, dtype?: NativeDType, device?: string): T;
  randperm(n: number, g?: Gen, device?: string): T;
  bernoulli(p: T, g?: Gen): T;

  /** Testing: kernel outputs start as NaN while on; returns the previous setting. */
  setOutputPoisoning(on: boolean): boolean;
  augmentBatch(images: T, kinds: T, values: T, bits: T, noise: T): T;
  applySubPolicies(
    images: T,
    c: T,
    b: T,
    m: T,
    kindsTable: T,
    ranges: T,
    noise: T,
    dadaBaseline: boolean,
    exactMagnitude: boolean,
  ): T;
  preprocessBatch(images: T, params: T): T;

  // Custom transforms (native/ops/custom_ops.cc): libraries that register dispatcher operators.
  loadOpLibrary(path: string): string[];
  customOpSchema(name: string): string;
  callCustomOp(name: string, images: T, magnitude: T): T;

  // Models (native/nn/modules.cc). Configs and options are checked natively.
  wideResNet(config: object, seed?: number | bigint | null): NativeModule;
  mlp(config: object, seed?: number | bigint | null): NativeModule;
  moduleConfig(m: NativeModule): Record<string, unknown>;
  moduleForward(m: NativeModule, x: T): T;
  moduleFeatures(m: NativeModule, x: T): T;
  moduleSetBatchNormMomentum(m: NativeModule, momentum: number | null): void;
  moduleResetBatchNormStatistics(m: NativeModule): void;
  moduleFeaturesAsync(m: NativeModule, x: T): Promise<T>;
  moduleForwardAsync(m: NativeModule, x: T): Promise<T>;
  optimizerStepAsync(o: NativeOptimizer): Promise<void>;
  backwardAsync(x: T, holds?: (NativeModule | T)[]): Promise<void>;
  classifierStep(m: NativeModule, images: T, labels: T, options?: NativeStepOptions): Promise<NativeStepResult>;
  moduleTrain(m: NativeModule, on: boolean): void;
  moduleSetExecution(m: NativeModule, channelsLast: boolean, precision: string): void;
  moduleExecution(m: NativeModule): { channelsLast: boolean; precision: string };
  moduleIsTraining(m: NativeModule): boolean;
  moduleParameters(m: NativeModule): T[];
  moduleParameterNames(m: NativeModule): string[];
  moduleParameterCount(m: NativeModule): number;
  moduleBuffers(m: NativeModule): T[];
  moduleBufferNames(m: NativeModule): string[];
  moduleStateDict(m: NativeModule): Record<string, T>;
  moduleLoadStateDict(m: NativeModule, dict: Record<string, T>): void;
  moduleTo(m: NativeModule, device: string): void;
  moduleDevice(m: NativeModule): string;
  moduleDispose(m: NativeModule): void;
  moduleIsDisposed(m: NativeModule): boolean;
  crossEntropy(logits: T, labels: T, labelSmoothing?: number | null): T;

  // Optimisers (native/nn/optim.cc).
  sgd(params: T[], options: object): NativeOptimizer;
  adam(params: T[], options?: object): NativeOptimizer;
  optimizerStep(o: NativeOptimizer): void;
  optimizerZeroGrad(o: NativeOptimizer): void;
  optimizerSetLr(o: NativeOptimizer, lr: number): void;
  optimizerGetLr(o: NativeOptimizer): number;
  optimizerOptions(o: NativeOptimizer): Record<string, unknown>;
  optimizerKind(o: NativeOptimizer): 'sgd' | 'adam';
  optimizerParameters(o: NativeOptimizer): T[];
  optimizerState(o: NativeOptimizer): NativeOptimizerState;
  optimizerLoadState(o: NativeOptimizer, state: NativeOptimizerState): void;
  optimizerDispose(o: NativeOptimizer): void;
  optimizerIsDisposed(o: NativeOptimizer): boolean;
  clipGradNorm(params: T[], maxNorm: number): number;

  // Distributed (native/distributed). Collectives work in place and resolve when their results
  // are in the tensors; `where` names the operation in error messages.
  distributedBackends(): { gloo: boolean; nccl: boolean };
  distributedJoin(options: NativeJoinOptions): Promise<NativeProcessGroup>;
  distributedGroupInfo(g: NativeProcessGroup): {
    destroyed: boolean;
    rank?: number;
    worldSize?: number;
    backend?: string;
    timeoutMs?: number;
  };
  distributedAllReduce(
    g: NativeProcessGroup,
    tensors: T[],
    reduction: NativeReduction,
    bucketBytes: number,
    where: string,
  ): Promise<void>;
  distributedBroadcast(
    g: NativeProcessGroup,
    tensors: T[],
    root: number,
    bucketBytes: number,
    where: string,
  ): Promise<void>;
  distributedAverageGradients(g: NativeProcessGroup, parameters: T[], bucketBytes: number): Promise<void>;
  distributedBarrier(g: NativeProcessGroup): Promise<void>;
  distributedDestroy(g: NativeProcessGroup): Promise<void>;
  distributedHostStore(port: number, timeoutMs: number): NativeStore;
  distributedStorePort(s: NativeStore): number;
  distributedCloseStore(s: NativeStore): void;
}

export type NativeReduction = 'sum' | 'average' | 'max' | 'min';

/** How a rank joins its group (checked again natively). */
export interface NativeJoinOptions {
  rank: number;
  worldSize: number;
  storeHost: string;
  storePort: number;
  /** This rank serves the store (rank 0 unless a launcher serves it). */
  hostStore: boolean;
  storePrefix: string;
  timeoutMs: number;
  backend: 'gloo' | 'nccl';
  /** Gloo: the network interface to use, or else the address to bind to. */
  glooInterface?: string;
  glooAddress?: string;
  cudaDevice?: number;
}

/** An optimiser's state as the addon reads and writes it (copies of its tensors). */
export interface NativeOptimizerState {
  kind: 'sgd' | 'adam';
  parameters: number;
  options: Record<string, unknown>;
  tensors: Record<string, NativeTensor>;
  numbers: Record<string, number>;
}

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Where the addon is: DNA_NATIVE_PATH, else the cmake-js / node-gyp build folder. */
export function addonPath(): string {
  return process.env.DNA_NATIVE_PATH ?? path.join(packageRoot, 'build', 'Release', 'dna_native.node');
}

function load(): Addon {
  const file = addonPath();
  try {
    return createRequire(import.meta.url)(file) as Addon;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new Error(
      `dna-augment: cannot load the native addon ${file}: ${reason}\n` +
        'Build it with `npm install` (or `npm run build`) in the package folder; it needs LibTorch ' +
        '(Debian: apt-get install libtorch-dev, or LIBTORCH=/path/to/libtorch).',
      { cause },
    );
  }
}

export const native: Addon = load();

// LibTorch starts with one intra-op thread on some machines; use the available cores unless told.
const requestedThreads = Number(process.env.DNA_THREADS ?? os.availableParallelism());
if (Number.isInteger(requestedThreads) && requestedThreads >= 1) native.setNumThreads(requestedThreads);
