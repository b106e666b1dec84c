// The search space: a table of ops (name, kernel kind, magnitude range) and the sub-policies
// built from it. It is data: copy OPS, change a range or drop an op, and pass the result on.
import { describe } from '../util/describe.js';
import { Tensor } from '../engine/tensor.js';
import { tensor } from '../engine/creation.js';

interface OpSpecBase {
  /** The name reports and `applyOp` use. */
  readonly name: string;
  /** v = lo + m * (hi - lo) for a magnitude m in [0, 1]; null for ops without a magnitude. */
  readonly range: readonly [number, number] | null;
  /** The magnitude at which the op leaves the image unchanged, if there is one. */
  readonly identityAt: number | null;
}

/** A built-in op: one of the fused kernel's op kinds. */
export interface BuiltinOpSpec extends OpSpecBase {
  /** The fused kernel's op kind (native/augment/ops.h). */
  readonly kind: number;
  readonly custom?: undefined;
}

/**
 * A custom op (registerOp): `custom` names its implementation, a dispatcher operator
 * 'namespace::name' from a library loaded with loadOpLibrary, or a TypeScript transform
 * registered under that name.
 */
export interface CustomOpSpec extends OpSpecBase {
  readonly custom: string;
  readonly kind?: undefined;
}

/** One augmentation op of a search space. */
export type OpSpec = BuiltinOpSpec | CustomOpSpec;

/** The 15 AutoAugment ops with the ranges of SPEC 1.1, in the kernel's order. */
export const OPS: readonly BuiltinOpSpec[] = Object.freeze([
  { name: 'ShearX', kind: 0, range: [-0.3, 0.3], identityAt: 0.5 },
  { name: 'ShearY', kind: 1, range: [-0.3, 0.3], identityAt: 0.5 },
  { name: 'TranslateX', kind: 2, range: [-0.45, 0.45], identityAt: 0.5 },
  { name: 'TranslateY', kind: 3, range: [-0.45, 0.45], identityAt: 0.5 },
  { name: 'Rotate', kind: 4, range: [-30, 30], identityAt: 0.5 },
  { name: 'AutoContrast', kind: 5, range: null, identityAt: null },
  { name: 'Invert', kind: 6, range: null, identityAt: null },
  { name: 'Equalize', kind: 7, range: null, identityAt: null },
  { name: 'Solarize', kind: 8, range: [0, 256], identityAt: 1 },
  { name: 'Posterize', kind: 9, range: [4, 8], identityAt: 1 },
  { name: 'Contrast', kind: 10, range: [0.1, 1.9], identityAt: 0.5 },
  { name: 'Color', kind: 11, range: [0.1, 1.9], identityAt: 0.5 },
  { name: 'Brightness', kind: 12, range: [0.1, 1.9], identityAt: 0.5 },
  { name: 'Sharpness', kind: 13, range: [0.1, 1.9], identityAt: 0.5 },
  { name: 'Cutout', kind: 14, range: [0, 0.2], identityAt: 0 },
] as BuiltinOpSpec[]);

/** The kernel kind that means "no op" (an empty slot). */
export const IDENTITY_KIND = -1;
const KERNEL_KINDS = OPS.length;

/** A sub-policy: op `first`, then op `second` (indices into the search space's ops). */
export type SubPolicy = readonly [first: number, second: number];

export interface SearchSpace {
  readonly ops: readonly OpSpec[];
  readonly subPolicies: readonly SubPolicy[];
}

/** All pairs (i, j), i < j, in lexicographic order: 105 for the 15 ops. */
export function subPolicies(ops: readonly OpSpec[]): SubPolicy[] {
  if (!Array.isArray(ops)) throw new TypeError('subPolicies: ops must be an array of OpSpecs (e.g. OPS)');
  const pairs: SubPolicy[] = [];
  for (let i = 0; i < ops.length; i++) for (let j = i + 1; j < ops.length; j++) pairs.push([i, j]);
  return pairs;
}

/** Checks a search space and says what is wrong with it. */
export function validateSearchSpace(space: SearchSpace): void {
  if (!space || !Array.isArray(space.ops) || !Array.isArray(space.subPolicies)) {
    throw new TypeError('a search space is { ops: OpSpec[], subPolicies: [i, j][] }');
  }
  if (space.ops.length === 0) throw new RangeError('the search space has no ops');
  if (space.subPolicies.length === 0) throw new RangeError('the search space has no sub-policies');
  const names = new Set<string>();
  for (const op of space.ops) {
    if (typeof op?.name !== 'string' || op.name === '') throw new TypeError('every op needs a name');
    if (names.has(op.name)) throw new RangeError(`the op '${op.name}' appears twice in the search space`);
    names.add(op.name);
    if (op.custom !== undefined) {
      if (typeof op.custom !== 'string' || op.custom === '')
        throw new TypeError(`op '${op.name}': custom must name an operator or a transform`);
      if (op.kind !== undefined)
        throw new TypeError(`op '${op.name}': an op has a kernel kind or a custom implementation, not both`);
    } else if (!Number.isInteger(op.kind) || op.kind < 0 || op.kind >= KERNEL_KINDS) {
      throw new RangeError(`op '${op.name}': unknown kernel kind ${describe(op.kind)}`);
    }
    if (
      op.identityAt !== null &&
      op.identityAt !== undefined &&
      !(typeof op.identityAt === 'number' && op.identityAt >= 0 && op.identityAt <= 1)
    ) {
      throw new RangeError(
        `op '${op.name}': identityAt must be a magnitude in [0, 1] or null, got ${describe(op.identityAt)}`,
      );
    }
    if (op.range !== null) {
      const [lo, hi] = Array.isArray(op.range) ? op.range : [];
      if (!Number.isFinite(lo) || !Number.isFinite(hi))
        throw new RangeError(`op '${op.name}': the range must be two finite numbers or null`);
    }
  }
  space.subPolicies.forEach((pair, k) => {
    if (!Array.isArray(pair) || pair.length !== 2)
      throw new TypeError(`sub-policy ${k} must be a pair of op indices [i, j]`);
    for (const index of pair) {
      if (!Number.isInteger(index) || index < 0 || index >= space.ops.length) {
        throw new RangeError(
          `sub-policy ${k} refers to op ${describe(index)}, but the search space has ${space.ops.length} ops`,
        );
      }
    }
  });
}

/** The 15 ops of SPEC 1.1 and their 105 sub-policies. */
export function defaultSearchSpace(): SearchSpace {
  const ops = OPS.map((op) => ({ ...op, range: op.range ? ([...op.range] as [number, number]) : null }));
  return { ops, subPolicies: subPolicies(ops) };
}

/** Whether a search space has custom ops (which the fused kernel alone cannot apply). */
export function hasCustomOps(space: SearchSpace): boolean {
  return space.ops.some((op) => op.custom !== undefined);
}

/** Looks an op up by name. */
export function findOp(name: string): BuiltinOpSpec;
export function findOp<T extends OpSpec>(name: string, ops: readonly T[]): T;
export function findOp(name: string, ops: readonly OpSpec[] = OPS): OpSpec {
  if (!Array.isArray(ops)) throw new TypeError(`findOp: ops must be an array of OpSpecs, got ${describe(ops)}`);
  const op = ops.find((candidate) => candidate.name === name);
  if (op === undefined) {
    throw new RangeError(`findOp: unknown op ${describe(name)} (one of ${ops.map((o) => o.name).join(', ')})`);
  }
  return op;
}

/** A sub-policy's name, e.g. "Rotate+Invert". */
export function subPolicyName(space: SearchSpace, index: number): string {
  if (!Array.isArray(space?.subPolicies) || !Array.isArray(space.ops))
    throw new TypeError('subPolicyName: a search space is { ops, subPolicies }');
  if (!Number.isInteger(index) || index < 0 || index >= space.subPolicies.length) {
    throw new RangeError(
      `subPolicyName: index must be an integer in 0..${space.subPolicies.length - 1}, got ${describe(index)}`,
    );
  }
  const [i, j] = space.subPolicies[index];
  return `${space.ops[i].name}+${space.ops[j].name}`;
}

/** The kernel tables of a search space: kinds [S, 2] int32 and ranges [S, 2, 2] (lo, hi). */
export interface KernelTables {
  kinds: Tensor;
  ranges: Tensor;
}

/**
 * The kernel tables of a (validated) search space as tensors on `device`. Custom ops are
 * identity there (kind -1, range [0, 0]): applySubPolicies applies them apart.
 */
export function kernelTableTensors(space: SearchSpace, device = 'cpu'): KernelTables {
  validateSearchSpace(space);
  const count = space.subPolicies.length;
  const kinds = new Int32Array(count * 2);
  const ranges = new Float32Array(count * 4);
  space.subPolicies.forEach((pair, s) => {
    pair.forEach((opIndex, slot) => {
      const op = space.ops[opIndex];
      kinds[s * 2 + slot] = op.custom === undefined ? op.kind : IDENTITY_KIND;
      const [lo, hi] = op.custom === undefined ? (op.range ?? [0, 0]) : [0, 0];
      ranges[s * 4 + slot * 2] = lo;
      ranges[s * 4 + slot * 2 + 1] = hi;
    });
  });
  return {
    kinds: tensor(kinds, [count, 2], { device }),
    ranges: tensor(ranges, [count, 2, 2], { device }),
  };
}
