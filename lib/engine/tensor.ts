// Tensors: a typed wrapper over LibTorch tensors, with explicit and scoped memory management.
//
// Every Tensor owns one native reference. `dispose()` drops it now; `tidy(fn)` drops every
// tensor made inside `fn` except the ones it returns; garbage collection drops forgotten ones
// eventually (a safety net, not a plan: GPU memory is invisible to the JS heap).
import { describe, optionsObject } from '../util/describe.js';
import { native, type NativeDType, type NativeTensor, type NativeTypedArray } from './native.js';

export type DType = NativeDType;
/** `'cpu'`, `'cuda'` or `'cuda:N'`. */
export type Device = string;
export type TypedArray = NativeTypedArray;
/** Nested arrays of numbers, as `toArray()` returns them. */
export type NestedArray = number | NestedArray[];
/** A tensor or a number where an operand is expected. */
export type Operand = Tensor | number;

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

// Scopes of tidy(): each collects the tensors created while it is the innermost one.
const scopes: Set<Tensor>[] = [];

/** @internal An operand as the addon takes it: a tensor's handle, or the number itself. */
export function handleOf(value: Operand | boolean): NativeTensor | number | boolean {
  return value instanceof Tensor ? value.handle : value;
}

/** A Tensor argument's handle; anything else goes to the addon as it is, which names it in its error. */
export function tensorHandle(value: Tensor): NativeTensor {
  return (value instanceof Tensor ? value.handle : value) as NativeTensor;
}

function checkFunction(fn: unknown, where: string): void {
  if (typeof fn !== 'function') throw new TypeError(`${where}: fn must be a function, got ${describe(fn)}`);
}

function dims(value: number | number[] | undefined): number[] | undefined {
  return value === undefined ? undefined : Array.isArray(value) ? value : [value];
}

export class Tensor {
  readonly #handle: NativeTensor;

  /** @internal Wraps a native handle; use `tensor()`, `zeros()` and the ops to make tensors. */
  constructor(handle: NativeTensor) {
    this.#handle = handle;
    scopes.at(-1)?.add(this);
  }

  /** @internal The native handle, for lib/ code that calls the addon directly. */
  get handle(): NativeTensor {
    return this.#handle;
  }

  get shape(): number[] {
    return native.shape(this.#handle);
  }
  get dtype(): DType {
    return native.dtype(this.#handle);
  }
  get device(): Device {
    return native.device(this.#handle);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return native.numel(this.#handle);
  }
  get isContiguous(): boolean {
    return native.isContiguous(this.#handle);
  }
  get isDisposed(): boolean {
    return native.isDisposed(this.#handle);
  }

  /** Drops this tensor's reference to its storage now. Further use throws. Idempotent. */
  dispose(): void {
    native.dispose(this.#handle);
    for (const scope of scopes) scope.delete(this);
  }

  // ---- Reading values ----

  /**
   * The values as a typed array (a copy, row-major): Float32Array for float32/16, BigInt64Array
   * for int64, Uint8Array for uint8/bool.
   */
  data(): TypedArray {
    return native.data(this.#handle);
  }
  /** The values as nested arrays of numbers. */
  toArray(): NestedArray {
    const flat = Array.from(this.data() as ArrayLike<number | bigint>, Number);
    const shape = this.shape;
    if (shape.length === 0) return flat[0];
    const build = (dim: number, offset: number): NestedArray[] => {
      const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: shape[dim] }, (_, i) =>
        dim === shape.length - 1 ? flat[offset + i] : build(dim + 1, offset + i * stride),
      );
    };
    return build(0, 0);
  }
  /** The single value of a one-element tensor. */
  item(): number {
    return native.item(this.#handle);
  }

  // ---- Device and dtype ----

  /** A copy on `device` (or this tensor when it is there already), optionally in another dtype. */
  to(device: Device, dtype?: DType): Tensor {
    return new Tensor(native.to(this.#handle, device, dtype));
  }
  /** This tensor in another dtype, on the same device. */
  toDtype(dtype: DType): Tensor {
    return new Tensor(native.to(this.#handle, this.device, dtype));
  }
  float(): Tensor {
    return this.toDtype('float32');
  }
  long(): Tensor {
    return this.toDtype('int64');
  }

  // ---- Autograd ----

  get requiresGrad(): boolean {
    return native.requiresGrad(this.#handle);
  }
  set requiresGrad(value: boolean) {
    native.setRequiresGrad(this.#handle, value);
  }
  /** Marks this (leaf) tensor as needing gradients; returns it. */
  requireGrad(value = true): this {
    native.setRequiresGrad(this.#handle, value);
    return this;
  }
  /** The accumulated gradient (a new Tensor each time), or undefined. */
  get grad(): Tensor | undefined {
    const grad = native.grad(this.#handle);
    return grad === undefined ? undefined : new Tensor(grad);
  }
  /** Sets the accumulated gradient to a copy of `gradient` (same shape, dtype and device); returns this. */
  setGrad(gradient: Tensor): this {
    native.setGrad(this.#handle, tensorHandle(gradient));
    return this;
  }
  /** Forgets the accumulated gradient. */
  zeroGrad(): void {
    native.zeroGrad(this.#handle);
  }
  /**
   * Backpropagates from this tensor (a scalar, or with an explicit `gradient` of its shape).
   * `createGraph` records the backward pass itself, so that gradients can be differentiated
   * again (second-order terms); it implies `retainGraph`.
   */
  /**
   * The backward pass of a scalar on the addon's step thread: the event loop goes on meanwhile.
   * This tensor and `holds` (the modules and tensors that receive gradients) are busy until the
   * Promise settles.
   */
  async backwardAsync(holds: readonly { readonly handle: object }[] = []): Promise<void> {
    if (!Array.isArray(holds)) {
      throw new TypeError(`backwardAsync: holds must be an array of Modules and Tensors, got ${describe(holds)}`);
    }
    return native.backwardAsync(this.#handle, holds.map((h) => h?.handle) as NativeTensor[]);
  }

  backward(gradient?: Tensor, options: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    const { retainGraph, createGraph } = optionsObject(options, 'backward');
    native.backward(
      this.#handle,
      gradient === undefined || gradient === null ? null : tensorHandle(gradient),
      retainGraph ?? false,
      createGraph ?? false,
    );
  }
  /** The same values, cut from the autograd graph. */
  detach(): Tensor {
    return new Tensor(native.detach(this.#handle));
  }
  clone(): Tensor {
    return new Tensor(native.clone(this.#handle));
  }
  contiguous(): Tensor {
    return new Tensor(native.contiguous(this.#handle));
  }

  // ---- Elementwise ----

  add(other: Operand): Tensor {
    return new Tensor(native.add(this.#handle, handleOf(other)));
  }
  sub(other: Operand): Tensor {
    return new Tensor(native.sub(this.#handle, handleOf(other)));
  }
  mul(other: Operand): Tensor {
    return new Tensor(native.mul(this.#handle, handleOf(other)));
  }
  div(other: Operand): Tensor {
    return new Tensor(native.div(this.#handle, handleOf(other)));
  }
  pow(exponent: Operand): Tensor {
    return new Tensor(native.pow(this.#handle, handleOf(exponent)));
  }
  remainder(other: Operand): Tensor {
    return new Tensor(native.remainder(this.#handle, handleOf(other)));
  }
  maximum(other: Operand): Tensor {
    return new Tensor(native.maximum(this.#handle, handleOf(other)));
  }
  minimum(other: Operand): Tensor {
    return new Tensor(native.minimum(this.#handle, handleOf(other)));
  }
  eq(other: Operand): Tensor {
    return new Tensor(native.eq(this.#handle, handleOf(other)));
  }
  ne(other: Operand): Tensor {
    return new Tensor(native.ne(this.#handle, handleOf(other)));
  }
  lt(other: Operand): Tensor {
    return new Tensor(native.lt(this.#handle, handleOf(other)));
  }
  le(other: Operand): Tensor {
    return new Tensor(native.le(this.#handle, handleOf(other)));
  }
  gt(other: Operand): Tensor {
    return new Tensor(native.gt(this.#handle, handleOf(other)));
  }
  ge(other: Operand): Tensor {
    return new Tensor(native.ge(this.#handle, handleOf(other)));
  }
  logicalAnd(other: Operand): Tensor {
    return new Tensor(native.logicalAnd(this.#handle, handleOf(other)));
  }
  logicalOr(other: Operand): Tensor {
    return new Tensor(native.logicalOr(this.#handle, handleOf(other)));
  }
  logicalNot(): Tensor {
    return new Tensor(native.logicalNot(this.#handle));
  }
  neg(): Tensor {
    return new Tensor(native.neg(this.#handle));
  }
  abs(): Tensor {
    return new Tensor(native.abs(this.#handle));
  }
  sign(): Tensor {
    return new Tensor(native.sign(this.#handle));
  }
  exp(): Tensor {
    return new Tensor(native.exp(this.#handle));
  }
  log(): Tensor {
    return new Tensor(native.log(this.#handle));
  }
  log1p(): Tensor {
    return new Tensor(native.log1p(this.#handle));
  }
  sqrt(): Tensor {
    return new Tensor(native.sqrt(this.#handle));
  }
  square(): Tensor {
    return new Tensor(native.square(this.#handle));
  }
  reciprocal(): Tensor {
    return new Tensor(native.reciprocal(this.#handle));
  }
  sin(): Tensor {
    return new Tensor(native.sin(this.#handle));
  }
  cos(): Tensor {
    return new Tensor(native.cos(this.#handle));
  }
  tanh(): Tensor {
    return new Tensor(native.tanh(this.#handle));
  }
  sigmoid(): Tensor {
    return new Tensor(native.sigmoid(this.#handle));
  }
  relu(): Tensor {
    return new Tensor(native.relu(this.#handle));
  }
  floor(): Tensor {
    return new Tensor(native.floor(this.#handle));
  }
  ceil(): Tensor {
    return new Tensor(native.ceil(this.#handle));
  }
  round(): Tensor {
    return new Tensor(native.round(this.#handle));
  }
  isnan(): Tensor {
    return new Tensor(native.isnan(this.#handle));
  }
  isfinite(): Tensor {
    return new Tensor(native.isfinite(this.#handle));
  }
  /** log(x / (1 - x)); with `eps`, x is first clamped to [eps, 1 - eps]. */
  logit(eps?: number): Tensor {
    return new Tensor(native.logit(this.#handle, eps ?? null));
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return new Tensor(native.clamp(this.#handle, min ?? null, max ?? null));
  }

  // ---- Reductions (over `dims`, all of them when omitted) ----

  sum(dim?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.sum(this.#handle, dims(dim), keepdim));
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.mean(this.#handle, dims(dim), keepdim));
  }
  max(dim?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.amax(this.#handle, dims(dim), keepdim));
  }
  min(dim?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.amin(this.#handle, dims(dim), keepdim));
  }
  logsumexp(dim?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.logsumexp(this.#handle, dims(dim), keepdim));
  }
  var(dim?: number | number[], keepdim = false, unbiased = true): Tensor {
    return new Tensor(native.var(this.#handle, dims(dim), keepdim, unbiased));
  }
  std(dim?: number | number[], keepdim = false, unbiased = true): Tensor {
    return new Tensor(native.std(this.#handle, dims(dim), keepdim, unbiased));
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmax(this.#handle, dim ?? null, keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmin(this.#handle, dim ?? null, keepdim));
  }
  cumsum(dim: number): Tensor {
    return new Tensor(native.cumsum(this.#handle, dim));
  }
  softmax(dim: number): Tensor {
    return new Tensor(native.softmax(this.#handle, dim));
  }
  logSoftmax(dim: number): Tensor {
    return new Tensor(native.logSoftmax(this.#handle, dim));
  }
  /** One-hot encoding of int64 class indices: shape [...this.shape, classes], int64. */
  oneHot(classes: number): Tensor {
    return new Tensor(native.oneHot(this.#handle, classes));
  }
  matmul(other: Tensor): Tensor {
    return new Tensor(native.matmul(this.#handle, tensorHandle(other)));
  }

  // ---- Indexing ----

  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(native.gather(this.#handle, dim, tensorHandle(index)));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(native.indexSelect(this.#handle, dim, tensorHandle(index)));
  }
  maskedFill(mask: Tensor, value: number | boolean): Tensor {
    return new Tensor(native.maskedFill(this.#handle, tensorHandle(mask), value));
  }
  /** Elements start .. start+length-1 along `dim` (a view). */
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(native.narrow(this.#handle, dim, start, length));
  }
  /** The slice at `index` along `dim`, that dimension removed (a view). */
  select(dim: number, index: number): Tensor {
    return new Tensor(native.select(this.#handle, dim, index));
  }

  // ---- Shapes ----

  reshape(shape: number[]): Tensor {
    return new Tensor(native.reshape(this.#handle, shape));
  }
  permute(order: number[]): Tensor {
    return new Tensor(native.permute(this.#handle, order));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return new Tensor(native.transpose(this.#handle, dim0, dim1));
  }
  expand(shape: number[]): Tensor {
    return new Tensor(native.expand(this.#handle, shape));
  }
  repeat(repeats: number[]): Tensor {
    return new Tensor(native.repeat(this.#handle, repeats));
  }
  flip(dim: number | number[]): Tensor {
    return new Tensor(native.flip(this.#handle, dims(dim)!));
  }
  flatten(start = 0, end = -1): Tensor {
    return new Tensor(native.flatten(this.#handle, start, end));
  }
  squeeze(dim?: number): Tensor {
    return new Tensor(native.squeeze(this.#handle, dim ?? null));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(native.unsqueeze(this.#handle, dim));
  }

  toString(): string {
    if (this.isDisposed) return 'Tensor(disposed)';
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }
}

// ---- Memory and autograd scopes ----

function collectTensors(value: unknown, into: Set<Tensor>, depth = 0): void {
  if (value instanceof Tensor) into.add(value);
  else if (depth < 4 && Array.isArray(value)) for (const item of value) collectTensors(item, into, depth + 1);
  else if (
    depth < 4 &&
    value !== null &&
    typeof value === 'object' &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    for (const item of Object.values(value)) collectTensors(item, into, depth + 1);
  }
}

/**
 * Runs `fn` and disposes every tensor created inside it, except those it returns (a Tensor,
 * or arrays / plain objects holding Tensors) and those passed to `keep()`. `fn` must be
 * synchronous: tensors created after an `await` would escape the scope.
 */
export function tidy<R>(fn: () => R): R {
  checkFunction(fn, 'tidy');
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: R;
  try {
    result = fn();
  } catch (error) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw error;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new TypeError('tidy(fn): fn must be synchronous (it returned a Promise)');
  }
  const kept = new Set<Tensor>();
  collectTensors(result, kept);
  const parent = scopes.at(-1);
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Takes a tensor out of every enclosing `tidy` scope, so that it outlives them. */
export function keep<T extends Tensor>(t: T): T {
  for (const scope of scopes) scope.delete(t);
  return t;
}

/** Disposes tensors (arrays and plain objects of them too). */
export function dispose(value: unknown): void {
  const found = new Set<Tensor>();
  collectTensors(value, found);
  for (const t of found) t.dispose();
}

/** Runs `fn` with gradient recording off (synchronous `fn` only). */
export function noGrad<R>(fn: () => R): R {
  checkFunction(fn, 'noGrad');
  const previous = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(previous);
  }
}

/** Whether autograd is recording. */
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

/** The number of native tensors alive (not disposed, not yet collected). For leak tests. */
export function liveTensors(): number {
  return native.liveTensors();
}
