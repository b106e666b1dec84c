// Randomness: seeded generators (whose state goes into checkpoints) and the random tensor
// functions that draw from them or from LibTorch's default generator.
import { optionsObject } from '../util/describe.js';
import { native, type NativeGenerator } from './native.js';
import { Tensor, tensorHandle, type DType, type Device } from './tensor.js';

/** The handle of a generator option: none for undefined or null; anything else is checked by the addon. */
function generatorHandle(generator: Generator | undefined): NativeGenerator | undefined {
  if (generator === undefined || generator === null) return undefined;
  return (generator instanceof Generator ? generator.handle : generator) as NativeGenerator;
}

/**
 * A seeded random generator on one device. Pass it to the random functions so that the same
 * seed gives the same numbers; save `state()` in a checkpoint and `setState()` on resume.
 */
export class Generator {
  readonly #handle: NativeGenerator;

  constructor(seed: number | bigint, device: Device = 'cpu') {
    this.#handle = native.generator(seed, device);
  }
  /** @internal */
  get handle(): NativeGenerator {
    return this.#handle;
  }
  get seed(): bigint {
    return native.generatorSeed(this.#handle);
  }
  get device(): Device {
    return native.generatorDevice(this.#handle);
  }
  /** The full generator state, a uint8 tensor. */
  state(): Tensor {
    return new Tensor(native.generatorState(this.#handle));
  }
  setState(state: Tensor): void {
    native.setGeneratorState(this.#handle, tensorHandle(state));
  }
}

export interface RandomOptions {
  generator?: Generator;
  dtype?: DType;
  device?: Device;
}

/** Seeds LibTorch's default generators (used when no Generator is passed). */
export function manualSeed(seed: number | bigint): void {
  native.manualSeed(seed);
}
/** Uniform on [0, 1). */
export function rand(shape: number[], options: RandomOptions = {}): Tensor {
  const { generator, dtype, device } = optionsObject(options, 'rand');
  return new Tensor(native.rand(shape, generatorHandle(generator), dtype, device));
}
/** Standard normal. */
export function randn(shape: number[], options: RandomOptions = {}): Tensor {
  const { generator, dtype, device } = optionsObject(options, 'randn');
  return new Tensor(native.randn(shape, generatorHandle(generator), dtype, device));
}
/** Uniform on [low, high). */
export function uniform(low: number, high: number, shape: number[], options: RandomOptions = {}): Tensor {
  const { generator, dtype, device } = optionsObject(options, 'uniform');
  return new Tensor(native.uniform(low, high, shape, generatorHandle(generator), dtype, device));
}
/** Integers in [low, high), int64 unless a dtype is given. */
export function randint(low: number, high: number, shape: number[], options: RandomOptions = {}): Tensor {
  const { generator, dtype, device } = optionsObject(options, 'randint');
  return new Tensor(native.randint(low, high, shape, generatorHandle(generator), dtype, device));
}
/** A random permutation of 0..n-1 (int64). */
export function randperm(n: number, options: Omit<RandomOptions, 'dtype'> = {}): Tensor {
  const { generator, device } = optionsObject(options, 'randperm');
  return new Tensor(native.randperm(n, generatorHandle(generator), device));
}
/** 0/1 draws with the given probabilities (same shape and dtype). */
export function bernoulli(probabilities: Tensor, options: Pick<RandomOptions, 'generator'> = {}): Tensor {
  const { generator } = optionsObject(options, 'bernoulli');
  return new Tensor(native.bernoulli(tensorHandle(probabilities), generatorHandle(generator)));
}
