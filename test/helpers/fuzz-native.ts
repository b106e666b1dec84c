// The native fuzzer's material: a valid call of each function of the raw addon, values that are
// wrong almost everywhere, plausible values to mix in, and the call that classifies what happened.
// Used by test/errors.test.ts (exhaustive positions) and test/helpers/fuzz-run.ts (timed random
// mixes, `npm run fuzz`).
//
// Set DNA_FUZZ_TRACE=/some/file to log every call before it is made (to find a crashing call).
import { openSync, writeSync } from 'node:fs';
import { native } from '../../lib/engine/native.js';
import { record, recordCall, type Outcome, type Random, type Tally } from './fuzz-outcomes.js';

type Fn = (...args: unknown[]) => unknown;
export const addon = native as unknown as Record<string, unknown>;
export const NativeTensor = addon.NativeTensor as new () => object;
export const NativeGenerator = addon.NativeGenerator as new () => object;

export const functionNames = Object.keys(addon).filter(
  (name) => typeof addon[name] === 'function' && name !== 'NativeTensor' && name !== 'NativeGenerator',
);

// ---- values: every handle made here is disposed after each call ----

let created: unknown[] = [];
function track<T>(value: T): T {
  created.push(value);
  return value;
}
export const f32 = (shape: number[], fill = (i: number) => ((i * 7) % 10) / 10) =>
  track(
    native.fromData(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => fill(i)),
      shape,
    ),
  );
const i64 = (values: number[], shape = [values.length]) =>
  track(native.fromData(BigInt64Array.from(values, BigInt), shape));
const bool = (values: number[], shape = [values.length]) =>
  track(native.fromData(Uint8Array.from(values), shape, 'bool'));
const disposed = () => {
  const x = native.full([2], 1);
  native.dispose(x);
  return x;
};
const generator = () => native.generator(7);
const requiresGrad = () => {
  const x = f32([2, 3]);
  native.setRequiresGrad(x, true);
  return x;
};
const lossOf = () => {
  const x = requiresGrad();
  return track(native.sum(track(native.mul(x, x))));
};

/** A valid call of each function of the tensor API (fresh values each time). */
export const valid: Record<string, () => unknown[]> = {
  backend: () => [],
  setNumThreads: () => [2],
  synchronize: () => ['cpu'],
  fromData: () => [new Float32Array(6), [2, 3], 'float64', 'cpu'],
  full: () => [[2, 3], 1.5, 'float32', 'cpu'],
  arange: () => [0, 5, 1, 'int64', 'cpu'],
  data: () => [f32([2, 3])],
  item: () => [f32([1])],
  shape: () => [f32([2, 3])],
  dtype: () => [f32([2, 3])],
  device: () => [f32([2, 3])],
  numel: () => [f32([2, 3])],
  isContiguous: () => [f32([2, 3])],
  to: () => [f32([2, 3]), 'cpu', 'float64'],
  dispose: () => [f32([2])],
  isDisposed: () => [f32([2])],
  liveTensors: () => [],
  requiresGrad: () => [f32([2])],
  setRequiresGrad: () => [f32([2]), true],
  grad: () => [f32([2])],
  zeroGrad: () => [f32([2])],
  setGrad: () => [f32([2]), f32([2])],
  backward: () => [lossOf(), null, false],
  backwardAsync: () => [lossOf(), []],
  hostReads: () => [],
  tasksInFlight: () => [],
  isGradEnabled: () => [],
  setGradEnabled: () => [true],
  where: () => [bool([1, 0, 1, 0, 1, 0], [2, 3]), f32([2, 3]), f32([2, 3])],
  logit: () => [f32([2, 3]), 1e-3],
  clamp: () => [f32([2, 3]), 0.2, 0.8],
  var: () => [f32([2, 3]), [1], false, true],
  std: () => [f32([2, 3]), [1], false, true],
  argmax: () => [f32([2, 3]), 1, false],
  argmin: () => [f32([2, 3]), 1, false],
  cumsum: () => [f32([2, 3]), 1],
  softmax: () => [f32([2, 3]), 1],
  logSoftmax: () => [f32([2, 3]), 1],
  oneHot: () => [i64([0, 2, 1]), 3],
  matmul: () => [f32([2, 3]), f32([3, 2])],
  gather: () => [f32([2, 3]), 1, i64([0, 2, 1, 1], [2, 2])],
  indexSelect: () => [f32([2, 3]), 1, i64([2, 0])],
  maskedFill: () => [f32([2, 3]), bool([1, 0, 1, 0, 1, 0], [2, 3]), 0],
  narrow: () => [f32([2, 3]), 1, 0, 2],
  select: () => [f32([2, 3]), 1, 0],
  cat: () => [[f32([2, 3]), f32([1, 3])], 0],
  stack: () => [[f32([2, 3]), f32([2, 3])], 0],
  reshape: () => [f32([2, 3]), [3, 2]],
  permute: () => [f32([2, 3]), [1, 0]],
  transpose: () => [f32([2, 3]), 0, 1],
  expand: () => [f32([1, 3]), [2, 3]],
  repeat: () => [f32([2, 3]), [2, 1]],
  flip: () => [f32([2, 3]), [0]],
  flatten: () => [f32([2, 3]), 0, -1],
  squeeze: () => [f32([1, 3]), null],
  unsqueeze: () => [f32([2, 3]), 0],
  generator: () => [1, 'cpu'],
  generatorSeed: () => [generator()],
  generatorDevice: () => [generator()],
  generatorState: () => [generator()],
  setGeneratorState: () => {
    const g = generator();
    return [g, track(native.generatorState(g))];
  },
  manualSeed: () => [1],
  rand: () => [[2, 3], generator(), 'float32', 'cpu'],
  randn: () => [[2, 3], generator(), 'float64', 'cpu'],
  uniform: () => [0, 1, [2, 3], generator(), 'float32', 'cpu'],
  randint: () => [0, 10, [2, 3], generator(), 'int64', 'cpu'],
  randperm: () => [5, generator(), 'cpu'],
  bernoulli: () => [f32([2, 3]), generator()],
};
for (const name of [
  'add',
  'sub',
  'mul',
  'div',
  'pow',
  'remainder',
  'maximum',
  'minimum',
  'eq',
  'ne',
  'lt',
  'le',
  'gt',
  'ge',
  'logicalAnd',
  'logicalOr',
]) {
  valid[name] = () => [f32([2, 3]), f32([3])];
}
for (const name of [
  'neg',
  'abs',
  'sign',
  'exp',
  'log',
  'log1p',
  'sqrt',
  'square',
  'reciprocal',
  'sin',
  'cos',
  'tanh',
  'sigmoid',
  'relu',
  'floor',
  'ceil',
  'round',
  'logicalNot',
  'isnan',
  'isfinite',
  'detach',
  'clone',
  'contiguous',
]) {
  valid[name] = () => [f32([2, 3])];
}
for (const name of ['sum', 'mean', 'amax', 'amin', 'logsumexp']) valid[name] = () => [f32([2, 3]), [1], true];

/** Values that are wrong almost everywhere. `throws` marks values whose own traps throw. */
export const garbage: Array<[string, () => unknown, { throws?: boolean }?]> = [
  ['undefined', () => undefined],
  ['null', () => null],
  ['true', () => true],
  ['false', () => false],
  ['0', () => 0],
  ['-0', () => -0],
  ['-1', () => -1],
  ['0.5', () => 0.5],
  ['1e15', () => 1e15],
  ['-1e15', () => -1e15],
  ['2^53', () => 2 ** 53],
  ['-2^53', () => -(2 ** 53)],
  ['MAX_VALUE', () => Number.MAX_VALUE],
  ['NaN', () => NaN],
  ['Infinity', () => Infinity],
  ['-Infinity', () => -Infinity],
  ["'abc'", () => 'abc'],
  ["''", () => ''],
  ["'cuda'", () => 'cuda'],
  ["'cuda:99999999999'", () => 'cuda:99999999999'],
  ["'cuda:-3'", () => 'cuda:-3'],
  ["'float32'", () => 'float32'],
  ['symbol', () => Symbol('garbage')],
  ['10n', () => 10n],
  ['-1n', () => -1n],
  ['2n**80n', () => 2n ** 80n],
  ['{}', () => ({})],
  ['{ length: 3 }', () => ({ length: 3, 0: 1, 1: 2, 2: 3 })],
  ['[]', () => []],
  ["['a', {}, null]", () => ['a', {}, null]],
  ['[NaN]', () => [NaN]],
  ['[-1]', () => [-1]],
  ['[-5, 2]', () => [-5, 2]],
  ['[0.5]', () => [0.5]],
  ['[1e15, 1e15]', () => [1e15, 1e15]],
  ['[2^53]', () => [2 ** 53]],
  ['[1, ..., 9] (9 dims)', () => [1, 1, 1, 1, 1, 1, 1, 1, 1]],
  ['[0]', () => [0]],
  ['sparse array', () => [, 1]], // eslint-disable-line no-sparse-arrays
  ['array with 10n', () => [10n]],
  ['array with a symbol', () => [Symbol('s')]],
  [
    'array whose element getter throws',
    () =>
      Object.defineProperty([1, 2], 0, {
        get: () => {
          throw new Error('getter trap');
        },
      }),
    { throws: true },
  ],
  ['function', () => () => 1],
  ['Float32Array(2)', () => new Float32Array(2)],
  ['Int8Array(2)', () => new Int8Array(2)],
  ['Uint8ClampedArray(2)', () => new Uint8ClampedArray(2)],
  ['BigUint64Array(2)', () => new BigUint64Array(2)],
  ['DataView', () => new DataView(new ArrayBuffer(8))],
  ['ArrayBuffer', () => new ArrayBuffer(8)],
  ['Date', () => new Date(0)],
  ['disposed tensor', disposed],
  ['[disposed tensor]', () => [disposed()]],
  ['generator', generator],
  ['[generator]', () => [generator()]],
  ['new NativeTensor()', () => new NativeTensor()],
  ['Object.create(NativeTensor.prototype)', () => Object.create(NativeTensor.prototype)],
  ['[new NativeTensor()]', () => [new NativeTensor()]],
  ['new NativeGenerator()', () => new NativeGenerator()],
  ['Object.create(NativeGenerator.prototype)', () => Object.create(NativeGenerator.prototype)],
  ['bool tensor', () => bool([1, 0, 1])],
  ['int64 tensor', () => i64([5, -1, 2])],
  ['uint8 tensor', () => track(native.fromData(new Uint8Array([1, 2, 3, 4, 5]), [5]))],
  ['float64 scalar tensor', () => track(native.fromData(new Float64Array([2.5]), [], 'float64'))],
  ['empty tensor [0, 3]', () => f32([0, 3])],
  ['requires-grad tensor', requiresGrad],
  ['[tensor, bool tensor]', () => [f32([2, 3]), bool([1, 0])]],
];

/** More plausible values for random argument mixes. */
export const plausible: Array<[string, () => unknown]> = [
  ['1', () => 1],
  ['2', () => 2],
  ['3', () => 3],
  ['-2', () => -2],
  ['1.5', () => 1.5],
  ["'int64'", () => 'int64'],
  ["'bool'", () => 'bool'],
  ["'float16'", () => 'float16'],
  ["'cpu'", () => 'cpu'],
  ['[2, 3]', () => [2, 3]],
  ['[3, 2]', () => [3, 2]],
  ['[6]', () => [6]],
  ['[1, 0]', () => [1, 0]],
  ['[2, 1, 3]', () => [2, 1, 3]],
  ['f32 [2, 3]', () => f32([2, 3])],
  ['f32 [1, 3]', () => f32([1, 3])],
  ['f32 [3]', () => f32([3])],
  ['f32 [3, 2]', () => f32([3, 2])],
  ['f32 image [2, 3, 8, 8]', () => f32([2, 3, 8, 8], (i) => (i % 17) / 17)],
  ['f32 [2, 4]', () => f32([2, 4])],
  ['int64 [2, 2] in range', () => i64([0, 2, 1, 1], [2, 2])],
  ['int64 [2] large', () => i64([1e9, -1e9])],
  ['int32 [2, 2]', () => track(native.fromData(new Int32Array([1, 0, 2, 1]), [2, 2]))],
  ['bool [2, 3]', () => bool([1, 0, 1, 0, 0, 1], [2, 3])],
  ['float16 [2, 3]', () => track(native.to(f32([2, 3]), 'cpu', 'float16'))],
  ['expanded view', () => track(native.expand(f32([1, 3]), [4, 3]))],
  ['transposed view', () => track(native.transpose(f32([2, 3]), 0, 1))],
  ['[f32 [2, 3], f32 [2, 3]]', () => [f32([2, 3]), f32([2, 3])]],
];

// ---- calling ----

const tracePath = process.env.DNA_FUZZ_TRACE;
const traceFd = tracePath ? openSync(tracePath, 'a') : undefined;

export const originalThreads = native.backend().threads;

export function cleanup(result: unknown): void {
  const handles = [...created, result, ...(Array.isArray(result) ? result : [])];
  for (const h of handles) {
    if (h instanceof NativeTensor) {
      try {
        native.dispose(h as never);
      } catch {
        // not a real handle (e.g. new NativeTensor())
      }
    }
  }
  created = [];
  native.setGradEnabled(true);
}

/** What a thrown (or rejected) value says about the call: the outcome and the problem, if any. */
function judgeError(
  name: string,
  label: string,
  error: unknown,
  ownThrow: boolean,
): { outcome: Outcome; problem?: string } {
  if (!(error instanceof Error))
    return { outcome: 'non-error', problem: `${name}(${label}) threw a non-Error: ${String(error)}` };
  if (typeof error.message !== 'string' || error.message.length === 0)
    return { outcome: 'bad-message', problem: `${name}(${label}) threw an Error without a message` };
  if (ownThrow && /trap/.test(error.message)) return { outcome: 'error' };
  if (!error.message.startsWith(`${name}: `))
    return {
      outcome: 'bad-message',
      problem: `${name}(${label}) threw "${error.message}", which does not name the function`,
    };
  return { outcome: 'error' };
}

// Asynchronous calls (they return Promises) still settling, and the problems of those that settled.
const pendingCalls = new Set<Promise<void>>();
const asyncProblems: string[] = [];

/**
 * Waits until every asynchronous call made so far has settled; returns the problems their
 * rejections showed (a rejection must be an Error that names the function, as a throw must).
 */
export async function settleAsyncCalls(): Promise<string[]> {
  while (pendingCalls.size > 0) await Promise.all([...pendingCalls]);
  return asyncProblems.splice(0);
}

/** Makes the call and says what happened (a description of the problem, if there is one). */
export function callNative(
  name: string,
  args: unknown[],
  label: string,
  ownThrow = false,
): { outcome: Outcome; problem?: string } {
  if (traceFd !== undefined) writeSync(traceFd, `${name} ${label}\n`);
  recordCall(`native.${name}(${label})`);
  let result: unknown;
  try {
    result = (addon[name] as Fn)(...args);
  } catch (error) {
    cleanup(undefined);
    return judgeError(name, label, error, ownThrow);
  }
  if (result instanceof Promise) {
    // What it holds is busy until it settles: disposed then, by the cleanup of a later call.
    const settled = result.then(
      (value) => cleanup(value),
      (error) => {
        const { problem } = judgeError(name, label, error, ownThrow);
        if (problem !== undefined) asyncProblems.push(`(rejected) ${problem}`);
      },
    );
    pendingCalls.add(settled);
    void settled.finally(() => pendingCalls.delete(settled));
    return { outcome: 'returned' };
  }
  cleanup(result);
  return { outcome: 'returned' };
}

/** Makes the call; returns a description of what went wrong, or undefined when all is well. */
export function attempt(name: string, args: unknown[], label: string, ownThrow = false): string | undefined {
  return callNative(name, args, label, ownThrow).problem;
}

const mixPool = [...garbage, ...plausible, ...plausible];

/**
 * A random mix of valid and invalid values for `name`: half of the mixes start from its valid
 * call and replace some arguments, the others are up to nine values from the pools.
 */
export function randomMix(name: string, rnd: Random): { args: unknown[]; label: string; ownThrow: boolean } {
  const length = Math.floor(rnd() * 10);
  const picks = Array.from({ length }, () => mixPool[Math.floor(rnd() * mixPool.length)]);
  const fromValid = rnd() < 0.5 && valid[name] !== undefined && valid[name]().length > 0;
  if (valid[name] !== undefined) cleanup(undefined);
  const args = fromValid ? (valid[name]!() as unknown[]) : [];
  const labels: string[] = fromValid ? args.map(() => 'valid') : [];
  picks.forEach(([label, value], i) => {
    const at = fromValid ? Math.floor(rnd() * (args.length + 1)) : i;
    args[at] = value();
    labels[at] = label;
  });
  const ownThrow = picks.some((p) => (p as [string, () => unknown, { throws?: boolean }?])[2]?.throws === true);
  return { args, label: labels.join(', '), ownThrow };
}

/** Random mixes of every native function until `deadline` (performance.now()), counted in `tally`. */
export function fuzzNativeUntil(deadline: number, rnd: Random, tally: Tally): void {
  while (performance.now() < deadline) {
    for (let k = 0; k < 50; k++) {
      const name = functionNames[Math.floor(rnd() * functionNames.length)];
      const { args, label, ownThrow } = randomMix(name, rnd);
      const { outcome, problem } = callNative(name, args, label, ownThrow);
      record(tally, `native.${name}`, outcome, problem);
    }
    native.setNumThreads(originalThreads);
  }
}

export function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol') return 'symbol';
  if (value instanceof NativeTensor) return 'tensor';
  if (Array.isArray(value)) return `[${value.map(describe).join(', ')}]`;
  if (typeof value === 'function') return 'function';
  if (value !== null && typeof value === 'object') return value.constructor?.name ?? 'object';
  return String(value);
}
