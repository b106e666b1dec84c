// Robustness of the raw addon: every exported function, called with no arguments, with garbage
// in each position of an otherwise valid call, and with random mixes of valid and invalid values,
// must return normally or throw an Error whose message names the function -- never crash.
//
// The values and the calling are in test/helpers/fuzz-native.ts (shared with `npm run fuzz`);
// set DNA_FUZZ_TRACE=/some/file to log every call before it is made (to find a crashing call).
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { native } from '../lib/engine/native.js';
import {
  NativeGenerator,
  NativeTensor,
  addon,
  attempt,
  cleanup,
  describe,
  f32,
  functionNames,
  garbage,
  originalThreads,
  randomMix,
  settleAsyncCalls,
  valid,
} from './helpers/fuzz-native.js';
import { mulberry32 } from './helpers/random.js';

type Fn = (...args: unknown[]) => unknown;

// ---- tests ----

test('every exported function is covered (the table of valid calls knows the tensor API)', (t) => {
  t.true(functionNames.length > 80);
  const known = Object.keys(valid);
  // Functions outside the tensor API (e.g. augmentation kernels) are fuzzed without a valid baseline.
  for (const name of known) t.true(functionNames.includes(name), `${name} is exported`);
  const withoutBaseline = functionNames.filter((name) => !known.includes(name));
  if (withoutBaseline.length > 0) t.log(`fuzzed without a valid baseline: ${withoutBaseline.join(', ')}`);
});

test('the valid calls succeed', async (t) => {
  for (const [name, make] of Object.entries(valid)) {
    const args = make();
    const label = `${name}(${args.map(describe).join(', ')})`;
    let result: unknown;
    t.notThrows(() => {
      result = (addon[name] as Fn)(...args);
    }, label);
    // Asynchronous functions: the Promise resolves.
    if (result instanceof Promise) result = await t.notThrowsAsync(result, label).then(() => result);
    cleanup(result instanceof Promise ? undefined : result);
  }
  native.setNumThreads(originalThreads);
});

test('no arguments: every function returns or throws an Error naming it', async (t) => {
  const problems = functionNames.map((name) => attempt(name, [], 'no arguments')).filter(Boolean);
  t.deepEqual([...problems, ...(await settleAsyncCalls())], []);
  native.setNumThreads(originalThreads);
});

test('no arguments where one is required: a TypeError "name: argument N must be ..., got nothing"', (t) => {
  for (const [name, make] of Object.entries(valid)) {
    // A string is the right type where the first argument is a name (a device): not a type error.
    if (make().length === 0 || name === 'setGradEnabled' || typeof make()[0] === 'string') continue;
    cleanup(undefined);
    const error = t.throws(() => (addon[name] as Fn)(), { instanceOf: TypeError }, name);
    t.regex(error?.message ?? '', new RegExp(`^${name}: argument \\d+ must be .+, got nothing$`));
    t.is((error as { code?: string } | undefined)?.code, 'DNA_INVALID_ARGUMENT', name);
  }
  cleanup(undefined);
});

test('wrong argument types: the TypeError names the function, the argument and what it got', (t) => {
  const wrong: Array<[unknown, string]> = [
    ['abc', 'a string'],
    [Symbol('s'), 'a symbol'],
    [{}, 'an object'],
    [() => 1, 'a function'],
  ];
  for (const [name, make] of Object.entries(valid)) {
    // A string is the right type where the first argument is a name (a device): not a type error.
    if (make().length === 0 || name === 'setGradEnabled' || typeof make()[0] === 'string') continue;
    for (const [value, got] of wrong) {
      const args = make();
      args[0] = value;
      const error = t.throws(() => (addon[name] as Fn)(...args), { instanceOf: TypeError }, `${name}(${got})`);
      t.regex(error?.message ?? '', new RegExp(`^${name}: argument 1 must be .+, got ${got}$`));
      cleanup(undefined);
    }
  }
  // A later argument too.
  t.throws(() => native.reshape(native.full([2], 1), 'abc' as never), {
    instanceOf: TypeError,
    message: /^reshape: argument 2 must be an array of integers, got a string$/,
  });
  t.throws(() => native.add(native.full([2], 1), 'abc' as never), {
    instanceOf: TypeError,
    message: /^add: argument 2 must be a number, got a string$/,
  });
  t.throws(() => native.full([2], 1, 'float32', 42 as never), {
    instanceOf: TypeError,
    message: /^full: argument 4 must be a string, got a number$/,
  });
  t.throws(() => native.cat([native.full([2], 1), 'x'] as never, 0), {
    instanceOf: TypeError,
    message: /^cat: argument 1\[1\] must be a Tensor$/,
  });
  t.throws(() => native.reshape(native.full([2], 1), [2, 'x'] as never), {
    instanceOf: TypeError,
    message: /^reshape: argument 2\[1\] must be an integer$/,
  });
});

test('garbage in each position of a valid call: returns or throws an Error naming the function', async (t) => {
  const problems: string[] = [];
  let calls = 0;
  for (const name of functionNames) {
    const make =
      valid[name] ??
      (() => [f32([2, 3]), f32([2, 3]), f32([2, 3]), f32([2, 3]), f32([2, 3]), f32([2, 3]), f32([2, 3])]);
    const arity = make().length;
    cleanup(undefined);
    for (let position = 0; position <= arity; position++) {
      for (const [label, value, flags] of garbage) {
        const args = make();
        args[position] = value();
        calls++;
        const problem = attempt(name, args, `#${position}=${label}`, flags?.throws);
        if (problem) problems.push(problem);
      }
    }
    // The same garbage in every position.
    for (const [label, value, flags] of garbage) {
      for (const n of [1, 3, 9]) {
        calls++;
        const problem = attempt(name, Array.from({ length: n }, value), `${n} x ${label}`, flags?.throws);
        if (problem) problems.push(problem);
      }
    }
  }
  problems.push(...(await settleAsyncCalls()));
  native.setNumThreads(originalThreads);
  t.true(calls > 10000);
  t.deepEqual(problems.slice(0, 30), []);
});

test('random mixes of valid and invalid values: returns or throws an Error naming the function', async (t) => {
  const rnd = mulberry32(20240601);
  const problems: string[] = [];
  for (const name of functionNames) {
    for (let k = 0; k < 120; k++) {
      const { args, label, ownThrow } = randomMix(name, rnd);
      const problem = attempt(name, args, label, ownThrow);
      if (problem) problems.push(problem);
    }
  }
  problems.push(...(await settleAsyncCalls()));
  native.setNumThreads(originalThreads);
  t.deepEqual(problems.slice(0, 30), []);
});

test('objects built on the NativeTensor / NativeGenerator classes are not tensors or generators', (t) => {
  const fakes: Array<[string, () => unknown]> = [
    ['new NativeTensor()', () => new NativeTensor()],
    ['Object.create(NativeTensor.prototype)', () => Object.create(NativeTensor.prototype)],
    ['new NativeGenerator()', () => new NativeGenerator()],
    ['Object.create(NativeGenerator.prototype)', () => Object.create(NativeGenerator.prototype)],
  ];
  for (const [label, fake] of fakes) {
    for (const name of [
      'shape',
      'data',
      'item',
      'dispose',
      'isDisposed',
      'exp',
      'sum',
      'backward',
      'requiresGrad',
      'grad',
      'bernoulli',
    ]) {
      t.throws(
        () => (addon[name] as Fn)(fake()),
        { instanceOf: Error, message: new RegExp(`^${name}: argument 1 must be a Tensor`) },
        `${name}(${label})`,
      );
    }
    t.throws(() => native.add(fake() as never, native.full([1], 1)), {
      instanceOf: Error,
      message: /^add: argument 1/,
    });
    t.throws(() => native.where(native.full([1], true, 'bool'), fake() as never, 1), {
      instanceOf: Error,
      message: /^where:/,
    });
    t.throws(() => native.cat([native.full([1], 1), fake()] as never, 0), {
      instanceOf: Error,
      message: /^cat: argument 1\[1\] must be a Tensor/,
    });
    t.throws(() => native.rand([2], fake() as never), {
      instanceOf: Error,
      message: /^rand: argument 2 must be a Generator/,
    });
    t.throws(() => native.generatorSeed(fake() as never), {
      instanceOf: Error,
      message: /^generatorSeed: argument 1 must be a Generator/,
    });
    t.throws(() => native.setGeneratorState(native.generator(1), fake() as never), {
      instanceOf: Error,
      message: /^setGeneratorState: argument 2 must be a Tensor/,
    });
  }
  // A generator where a tensor is expected, and a tensor where a generator is expected.
  t.throws(() => native.exp(native.generator(1) as never), {
    instanceOf: TypeError,
    message: /^exp: argument 1 must be a Tensor, got an object$/,
  });
  t.throws(() => native.randn([2], native.full([1], 1) as never), {
    instanceOf: TypeError,
    message: /^randn: argument 2 must be a Generator/,
  });
  // The classes themselves: callable only with new, harmless with it.
  t.throws(() => (NativeTensor as unknown as () => unknown)(), { instanceOf: Error });
  t.notThrows(() => new NativeTensor());
  t.notThrows(() => new NativeGenerator());
});

test('huge shapes throw an Error (overflow or allocation failure) instead of crashing', (t) => {
  const one = native.full([1, 1], 1);
  const cases: Array<[string, () => unknown]> = [
    ['fromData [1e15, 1e15]', () => native.fromData(new Float32Array(4), [1e15, 1e15])],
    ['fromData [2^31, 2^31, 2^31]', () => native.fromData(new Float32Array(4), [2 ** 31, 2 ** 31, 2 ** 31])],
    ['full [1e15, 1e15]', () => native.full([1e15, 1e15], 0)],
    ['full [1e15]', () => native.full([1e15], 0)],
    ['rand [1e15, 1e15]', () => native.rand([1e15, 1e15])],
    ['randn [3e9, 3e9]', () => native.randn([3e9, 3e9])],
    ['uniform [1e15, 1e15]', () => native.uniform(0, 1, [1e15, 1e15])],
    ['randint [1e15, 1e15]', () => native.randint(0, 2, [1e15, 1e15])],
    ['reshape [1e15, 1e15]', () => native.reshape(one, [1e15, 1e15])],
    ['expand [1e15, 1e15]', () => native.expand(one, [1e15, 1e15])],
    ['repeat [1e15, 1e15]', () => native.repeat(one, [1e15, 1e15])],
    ['arange 0..1e15', () => native.arange(0, 1e15, 1)],
    ['arange 0..MAX_VALUE', () => native.arange(0, Number.MAX_VALUE, 1)],
    ['randperm 1e15', () => native.randperm(1e15)],
    ['oneHot 1e15 classes', () => native.oneHot(native.full([2], 1, 'int64'), 1e15)],
    ['rand [2^53]', () => native.rand([2 ** 53])],
  ];
  for (const [label, call] of cases) {
    const error = t.throws(call, { instanceOf: Error }, label);
    t.truthy(error?.message, label);
  }
  native.dispose(one);
});

test('errors carry codes: DNA_INVALID_ARGUMENT for bad arguments, DNA_TORCH_ERROR for LibTorch checks', (t) => {
  const bad = t.throws(() => native.exp('x' as never), { instanceOf: TypeError });
  t.is((bad as { code?: string } | undefined)?.code, 'DNA_INVALID_ARGUMENT');
  const torch = t.throws(() => native.matmul(native.full([2, 3], 1), native.full([2, 3], 1)), { instanceOf: Error });
  t.is((torch as { code?: string } | undefined)?.code, 'DNA_TORCH_ERROR');
  t.notRegex(torch?.message ?? '', /Exception raised from/);
});

test('the process is still healthy after all that', (t) => {
  const x = native.fromData(new Float32Array([1, 2, 3]), [3]);
  t.deepEqual(Array.from(native.data(native.mul(x, 2)) as Float32Array), [2, 4, 6]);
  t.true(native.isGradEnabled());
});

// ---- calls that crash the process today: checked in a child process ----

const nativeModule = fileURLToPath(new URL('../lib/engine/native.js', import.meta.url));

/** Runs `body` (with `native` in scope) in a fresh node process; returns its exit status and output. */
function inChild(body: string): Promise<{ status: number | null; signal: string | null; output: string }> {
  const code = `import { native } from ${JSON.stringify(nativeModule)};\n${body}`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, output });
    });
  });
}

async function expectCleanError(t: import('ava').ExecutionContext, call: string, message: RegExp): Promise<void> {
  const result = await inChild(`
    try { ${call}; console.log('RETURNED'); }
    catch (error) { console.log(error instanceof Error ? 'ERROR ' + error.message : 'NON-ERROR'); }`);
  t.is(result.signal, null, `${call} killed the process: ${result.signal}\n${result.output.slice(0, 500)}`);
  t.is(result.status, 0, `${call} exited with ${result.status}\n${result.output.slice(0, 500)}`);
  t.regex(result.output, message, call);
}

// Generator functions with a missing generator once dereferenced an empty optional (SIGSEGV).
// One call per function, each in its own process, so a regression cannot take the suite down.
const missingGenerator: Array<[string, string]> = [
  ['generatorSeed', ''],
  ['generatorDevice', 'null'],
  ['generatorState', 'undefined'],
  ['setGeneratorState', 'null, native.full([4], 0, "uint8")'],
];
for (const [name, args] of missingGenerator) {
  test(`${name}(${args}) throws "argument 1 must be a Generator" instead of crashing`, async (t) => {
    await expectCleanError(
      t,
      `native.${name}(${args})`,
      new RegExp(`^ERROR ${name}: argument 1 must be a Generator`, 'm'),
    );
  });
}

// External-memory accounting counts storage, not numel: an expanded view of one element once
// reported 2^62 bytes to V8, which aborts (Check failed: ... change_in_bytes < kMaxReasonableBytes).
test('expand of a 1-element tensor to [1e9, 1e9] (a stride-0 view) does not abort', async (t) => {
  await expectCleanError(
    t,
    `const v = native.expand(native.full([1, 1], 1), [1e9, 1e9]); console.log('VIEW ' + native.numel(v)); ` +
      `native.dispose(v)`,
    /^(VIEW 1000000000000000000|ERROR expand: )/m,
  );
});
