// Custom transforms in a search space like the built-in ops: operators from a user's shared
// library (TORCH_LIBRARY / TORCH_LIBRARY_IMPL, CPU and/or CUDA), called through LibTorch's
// dispatcher, or TypeScript functions over tensors for quick experiments.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

import { describe } from '../util/describe.js';
import { addonPath, native } from '../engine/native.js';
import { OPS, hasCustomOps, type CustomOpSpec, type OpSpec, type SearchSpace } from './search-space.js';
import { Tensor, noGrad, tidy } from '../engine/tensor.js';
import { zeros } from '../engine/creation.js';

/**
 * A transform written in TypeScript: images float32 [k, C, H, W] in [0, 1] and one value per
 * image [k] (lo + m * (hi - lo) of the op's range) -> new images of the same shape and dtype.
 */
export type TransformFunction = (images: Tensor, values: Tensor) => Tensor;

export interface CustomOpDefinition {
  /** The op's name in search spaces, reports and applyOp. */
  name: string;
  /** A dispatcher operator 'namespace::name' of a library loaded with loadOpLibrary ... */
  op?: string;
  /** ... or a TypeScript transform. */
  transform?: TransformFunction;
  /** Magnitude m in [0, 1] maps to the value lo + m * (hi - lo) the op receives; null: no magnitude. Default [0, 1]. */
  range?: readonly [number, number] | null;
  /** The magnitude at which the op leaves the image unchanged, if there is one. Default null. */
  identityAt?: number | null;
}

const libraries = new Map<string, string[]>();
const registered = new Map<string, CustomOpSpec>();
const transforms = new Map<string, TransformFunction>();

// Loads the libraries given as JSON in argv[1] with the addon at argv[2], in this order.
const TRIAL_LOAD = `
import { createRequire } from 'node:module';
const [libraries, addon] = [JSON.parse(process.argv[1]), process.argv[2]];
try {
  const native = createRequire(import.meta.url)(addon);
  for (const library of libraries) native.loadOpLibrary(library);
} catch (error) {
  process.stderr.write(String(error?.message ?? error) + '\\n');
  process.exit(1);
}`;

/**
 * A library's static initialisers run inside dlopen, where a C++ exception (a namespace that
 * another library registered already, a kernel whose signature does not match its schema)
 * aborts the process. So the libraries of this process and the new one are first loaded in a
 * child process; its failure becomes an Error here.
 */
function trialLoad(file: string): void {
  const trial = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', TRIAL_LOAD, JSON.stringify([...libraries.keys(), file]), addonPath()],
    {
      encoding: 'utf8',
    },
  );
  if (trial.status === 0) return;
  const stderr = trial.stderr ?? '';
  const reason =
    /what\(\):\s*(.+)/.exec(stderr)?.[1] ?? stderr.trim().split('\n').pop() ?? `exit status ${trial.status}`;
  throw new Error(
    `loadOpLibrary: loading ${file} ${trial.signal ? `aborts (${trial.signal})` : 'fails'}: ` +
      `${reason.replace(/^loadOpLibrary: /, '')}`,
  );
}

/**
 * Loads a shared library that registers operators with TORCH_LIBRARY / TORCH_LIBRARY_IMPL
 * (dlopen, RTLD_NOW | RTLD_GLOBAL) and returns the operators it registered. The library must be
 * built against the LibTorch this package uses. Loading the same file again does nothing.
 */
export function loadOpLibrary(file: string): string[] {
  if (typeof file !== 'string' || file === '')
    throw new TypeError(`loadOpLibrary: the path must be a non-empty string, got ${describe(file)}`);
  const resolved = path.resolve(file);
  const known = libraries.get(resolved);
  if (known !== undefined) return [...known];
  if (!existsSync(resolved)) throw new Error(`loadOpLibrary: no such file: ${resolved}`);
  trialLoad(resolved);
  const added = native.loadOpLibrary(resolved);
  libraries.set(resolved, added);
  return [...added];
}

/**
 * Makes a custom transform usable in search spaces: returns its OpSpec, to put into a search
 * space's ops (then `subPolicies(ops)` pairs it with the others). A dispatcher operator must
 * have the schema (Tensor images, Tensor magnitude) -> Tensor; it is checked here. Registering
 * a name again replaces the earlier transform.
 */
export function registerOp(definition: CustomOpDefinition): CustomOpSpec {
  if (definition === null || typeof definition !== 'object')
    throw new TypeError(
      `registerOp: expected { name, op | transform, range, identityAt }, got ${describe(definition)}`,
    );
  const { name, op, transform, range = [0, 1], identityAt = null } = definition;
  if (typeof name !== 'string' || name === '')
    throw new TypeError(`registerOp: name must be a non-empty string, got ${describe(name)}`);
  if (OPS.some((builtin) => builtin.name === name))
    throw new RangeError(`registerOp: '${name}' is the name of a built-in op`);
  if ((op === undefined) === (transform === undefined)) {
    throw new TypeError(
      `registerOp('${name}'): give either op ('namespace::name') or transform (a function), not ` +
        `${op === undefined ? 'neither' : 'both'}`,
    );
  }
  if (range !== null && !(Array.isArray(range) && range.length === 2 && range.every(Number.isFinite))) {
    throw new RangeError(
      `registerOp('${name}'): range must be [lo, hi] (finite numbers) or null, got ${describe(range)}`,
    );
  }
  if (identityAt !== null && !(typeof identityAt === 'number' && identityAt >= 0 && identityAt <= 1)) {
    throw new RangeError(
      `registerOp('${name}'): identityAt must be a magnitude in [0, 1] or null, got ${describe(identityAt)}`,
    );
  }
  let custom: string;
  if (op !== undefined) {
    if (typeof op !== 'string')
      throw new TypeError(`registerOp('${name}'): op must be a string 'namespace::name', got ${describe(op)}`);
    operatorSchema(op, `registerOp('${name}')`);
    custom = op;
  } else {
    if (typeof transform !== 'function')
      throw new TypeError(
        `registerOp('${name}'): transform must be a function (images, values) => Tensor, got ${describe(transform)}`,
      );
    if (isOperatorName(name))
      throw new RangeError(`registerOp('${name}'): the name of a TypeScript transform must not contain '::'`);
    transforms.set(name, transform);
    custom = name;
  }
  const spec: CustomOpSpec = Object.freeze({
    name,
    custom,
    range: range === null ? null : ([range[0], range[1]] as const),
    identityAt,
  });
  registered.set(name, spec);
  return spec;
}

/** A built-in op or a registered custom op by name; an unknown name is a RangeError starting with `where`. */
export function lookupOp(name: string, where: string): OpSpec {
  const op = OPS.find((candidate) => candidate.name === name) ?? registered.get(name);
  if (op === undefined) {
    const names = [...OPS.map((o) => o.name), ...registered.keys()];
    throw new RangeError(`${where}: unknown op ${describe(name)} (one of ${names.join(', ')})`);
  }
  return op;
}

const isOperatorName = (custom: string) => custom.includes('::');

/** The schema of a dispatcher operator, checked to be a transform; errors start with `where`. */
function operatorSchema(op: string, where: string): string {
  try {
    return native.customOpSchema(op);
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    const Kind = error instanceof TypeError ? TypeError : Error;
    throw new Kind(`${where}: ${error.message.replace(/^customOpSchema: /, '')}`, { cause: error });
  }
}

/**
 * A search space (of a policy file, a search) uses a custom op this process does not have: a
 * dispatcher operator whose library is not loaded, or a TypeScript transform not registered.
 */
export class MissingOpError extends Error {
  /** Where it was needed (a policy file, 'search'), the op's name in the space, and what it runs. */
  readonly where: string;
  readonly op: string;
  readonly custom: string;
  readonly kind: 'operator' | 'transform';
  constructor(where: string, op: string, custom: string, kind: 'operator' | 'transform', reason: string) {
    super(`${where}: the search space uses the custom op '${op}', which is not available in this process: ${reason}`);
    this.name = 'MissingOpError';
    this.where = where;
    this.op = op;
    this.custom = custom;
    this.kind = kind;
  }
}

/** Throws a MissingOpError naming the first custom op of the space that this process cannot run. */
export function requireCustomOps(space: SearchSpace, where: string): void {
  if (!hasCustomOps(space)) return;
  for (const op of space.ops) {
    if (op.custom === undefined) continue;
    if (isOperatorName(op.custom)) {
      try {
        native.customOpSchema(op.custom);
      } catch (error) {
        if (!(error instanceof Error)) throw error;
        const reason = error.message.replace(/^customOpSchema: /, '');
        throw new MissingOpError(where, op.name, op.custom, 'operator', reason);
      }
    } else if (!transforms.has(op.custom)) {
      throw new MissingOpError(
        where,
        op.name,
        op.custom,
        'transform',
        `no TypeScript transform '${op.custom}' is registered (registerOp({ name, transform }))`,
      );
    }
  }
}

/**
 * Runs a custom op on a batch (float32 [k, C, H, W]) with magnitudes m [k] in [0, 1], without
 * gradients; the op receives lo + m * (hi - lo) (zeros for an op without a range).
 */
export function runCustomOp(op: CustomOpSpec, images: Tensor, magnitudes: Tensor): Tensor {
  return noGrad(() =>
    tidy(() => {
      const [lo, hi] = op.range ?? [0, 0];
      const values =
        op.range === null
          ? zeros([images.shape[0]], { device: images.device })
          : magnitudes
              .detach()
              .float()
              .mul(hi - lo)
              .add(lo);
      if (isOperatorName(op.custom))
        return new Tensor(native.callCustomOp(op.custom, images.detach().contiguous().handle, values.handle));
      const transform = transforms.get(op.custom);
      if (transform === undefined)
        throw new Error(`custom op '${op.name}': no TypeScript transform '${op.custom}' is registered`);
      const result = transform(images.detach(), values);
      checkResult(op, result, images);
      return result;
    }),
  );
}

function checkResult(op: CustomOpSpec, result: unknown, images: Tensor): asserts result is Tensor {
  const where = `custom op '${op.name}'`;
  if (!(result instanceof Tensor) || result.isDisposed)
    throw new TypeError(`${where}: the transform must return a Tensor`);
  const [got, want] = [result.shape, images.shape];
  if (got.length !== want.length || got.some((size, k) => size !== want[k])) {
    throw new RangeError(
      `${where}: returned shape [${got.join(', ')}] for images of shape [${want.join(', ')}]; a transform must ` +
        `keep the shape`,
    );
  }
  if (result.dtype !== 'float32')
    throw new TypeError(`${where}: returned ${result.dtype}; a transform must return float32 images`);
  if (result.device !== images.device)
    throw new RangeError(`${where}: returned a tensor on ${result.device} for images on ${images.device}`);
}
