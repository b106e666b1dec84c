// Making tensors: from typed arrays, nested arrays or a number, filled, ranges, and joins.
import { describe, optionsObject } from '../util/describe.js';
import { native } from './native.js';
import {
  Tensor,
  handleOf,
  tensorHandle,
  type NestedArray,
  type Operand,
  type TensorOptions,
  type TypedArray,
} from './tensor.js';

function isTypedArray(value: unknown): value is TypedArray {
  return (
    value instanceof Float32Array ||
    value instanceof Float64Array ||
    value instanceof Int32Array ||
    value instanceof BigInt64Array ||
    value instanceof Uint8Array
  );
}

function flattenNested(value: NestedArray | boolean, shape: number[], depth: number, out: number[]): void {
  if (!Array.isArray(value)) {
    if (depth !== shape.length) throw new TypeError('tensor(): nested arrays are ragged');
    if (typeof value === 'boolean') value = value ? 1 : 0;
    if (typeof value !== 'number') throw new TypeError(`tensor(): expected numbers, got ${describe(value)}`);
    out.push(value);
    return;
  }
  if (depth === shape.length) shape.push(value.length);
  else if (shape[depth] !== value.length) throw new TypeError('tensor(): nested arrays are ragged');
  for (const item of value) flattenNested(item, shape, depth + 1, out);
}

function withGrad(t: Tensor, options: TensorOptions): Tensor {
  if (options.requiresGrad) t.requiresGrad = true;
  return t;
}

/**
 * A tensor from values: a typed array (with `shape`, or 1-d), nested number arrays (shape
 * inferred), or one number (a scalar). Plain numbers default to float32; a typed array keeps
 * its own dtype unless `dtype` says otherwise.
 */
export function tensor(
  data: TypedArray | NestedArray | boolean[],
  shape?: number[],
  options: TensorOptions = {},
): Tensor {
  options = optionsObject(options, 'tensor()');
  if (isTypedArray(data)) {
    return withGrad(new Tensor(native.fromData(data, shape ?? [data.length], options.dtype, options.device)), options);
  }
  if (!Array.isArray(data) && typeof data !== 'number') {
    throw new TypeError(
      `tensor(): data must be a typed array, a number or nested arrays of numbers, got ${describe(data)}`,
    );
  }
  const inferred: number[] = [];
  const flat: number[] = [];
  flattenNested(data as NestedArray, inferred, 0, flat);
  const values = new Float64Array(flat);
  const dtype = options.dtype ?? 'float32';
  return withGrad(new Tensor(native.fromData(values, shape ?? inferred, dtype, options.device)), options);
}

export function full(shape: number[], value: number | boolean, options: TensorOptions = {}): Tensor {
  options = optionsObject(options, 'full');
  return withGrad(new Tensor(native.full(shape, value, options.dtype, options.device)), options);
}
export function zeros(shape: number[], options: TensorOptions = {}): Tensor {
  return full(shape, 0, optionsObject(options, 'zeros'));
}
export function ones(shape: number[], options: TensorOptions = {}): Tensor {
  return full(shape, 1, optionsObject(options, 'ones'));
}
/** start, start+step, ... below end: int64 when all three are integers, else float32, unless a dtype is given. */
export function arange(start: number, end?: number, step = 1, options: TensorOptions = {}): Tensor {
  const { dtype, device } = optionsObject(options, 'arange');
  const [from, to] = end === undefined ? [0, start] : [start, end];
  return new Tensor(native.arange(from, to, step, dtype, device));
}

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(native.cat(Array.isArray(tensors) ? tensors.map(tensorHandle) : tensors, dim));
}
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(native.stack(Array.isArray(tensors) ? tensors.map(tensorHandle) : tensors, dim));
}
/** Elementwise `condition ? x : y`; x and y may be numbers. */
export function where(condition: Tensor, x: Operand, y: Operand): Tensor {
  return new Tensor(native.where(tensorHandle(condition), handleOf(x), handleOf(y)));
}
