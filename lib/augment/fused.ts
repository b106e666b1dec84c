// The fused augmentation engine from TypeScript: one op per image (applyOp) and a sub-policy per
// image with gradients into the policy (applySubPolicies), built-in ops in one native pass and
// custom ops gathered around it.
import { cat, full, stack, tensor, where, zeros } from '../engine/creation.js';
import { checkImages, floatImages } from '../engine/images.js';
import { native } from '../engine/native.js';
import { Generator, rand } from '../engine/random.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, optionsObject } from '../util/describe.js';
import { lookupOp, runCustomOp } from './custom-ops.js';
import { cachedTables } from './kernel-tables.js';
import {
  IDENTITY_KIND,
  defaultSearchSpace,
  hasCustomOps,
  kernelTableTensors,
  type KernelTables,
  type OpSpec,
  type SearchSpace,
} from './search-space.js';

export interface AugmentOptions {
  /** Draws the random parameters (Cutout centres, crop offsets, flips). Default: LibTorch's default generator. */
  generator?: Generator;
}

function perImageMagnitude(magnitude: number | Tensor, batch: number, device: string): Tensor {
  if (typeof magnitude === 'number') {
    if (!(magnitude >= 0 && magnitude <= 1))
      throw new RangeError(`applyOp: magnitude must be in [0, 1], got ${describe(magnitude)}`);
    return full([batch], magnitude, { device });
  }
  if (!(magnitude instanceof Tensor))
    throw new TypeError(`applyOp: magnitude must be a number or a Tensor [B], got ${describe(magnitude)}`);
  const shape = magnitude.shape;
  if (shape.length !== 1 || shape[0] !== batch) {
    throw new RangeError(`applyOp: a magnitude tensor must have shape [${batch}], got [${shape.join(', ')}]`);
  }
  return magnitude.detach().to(device, 'float32');
}

/**
 * Applies one op to every image, each with its own magnitude (a number for all, or a tensor [B]
 * of values in [0, 1]). Images: float32 in [0, 1] or uint8, [B, C, H, W], C = 1 or 3. The op is
 * a built-in op, a custom op (registerOp), or either's name.
 */
export function applyOp(
  images: Tensor,
  op: string | OpSpec,
  magnitude: number | Tensor,
  options: AugmentOptions = {},
): Tensor {
  checkImages(images, 'applyOp');
  const { generator } = optionsObject(options, 'applyOp');
  const spec = typeof op === 'string' ? lookupOp(op, 'applyOp') : op;
  if (spec === null || typeof spec !== 'object')
    throw new TypeError(`applyOp: op must be an op's name or its OpSpec, got ${describe(spec)}`);
  return tidy(() => {
    const [batch] = images.shape;
    const device = images.device;
    const m = perImageMagnitude(magnitude, batch, device);
    if (spec.custom !== undefined) return runCustomOp(spec, floatImages(images), m);
    const [lo, hi] = spec.range ?? [0, 0];
    const values = stack([m.mul(hi - lo).add(lo), zeros([batch], { device })], 1);
    const kinds = tensor(
      new Int32Array(batch * 2).map((_, k) => (k % 2 === 0 ? spec.kind : IDENTITY_KIND)),
      [batch, 2],
      { device },
    );
    const bits = tensor(
      new Float32Array(batch * 2).map((_, k) => (k % 2 === 0 ? 1 : 0)),
      [batch, 2],
      { device },
    );
    const noise = rand([batch, 2, 2], { generator, device });
    return new Tensor(native.augmentBatch(images.handle, kinds.handle, values.handle, bits.handle, noise.handle));
  });
}

export interface SubPolicyOptions extends AugmentOptions {
  /** The search space c, b and m are over. Default: defaultSearchSpace(). */
  searchSpace?: SearchSpace;
  /** Gradient of c for the sub-policies not selected: <G, x> ('identity', SPEC 1.4) or <G, 1> ('dada'). */
  unselectedGradient?: 'identity' | 'dada';
  /** dy/dm taken as 1 ('straight-through') or analytic where the op is differentiable ('exact'). */
  magnitudeGradient?: 'straight-through' | 'exact';
}

let defaultSpace: SearchSpace | undefined;

/** The search space's kernel tables on `device` (op kinds [S, 2] int32, ranges [S, 2, 2]), made once. */
function tablesFor(space: SearchSpace, device: string): KernelTables {
  const [kinds, ranges] = cachedTables(space, device, () => {
    const made = kernelTableTensors(space, device);
    return [made.kinds, made.ranges];
  });
  return { kinds, ranges };
}

/**
 * The fused sub-policy op (SPEC 1.4): per image, sub-policy s = argmax c; op 1 then op 2 of s,
 * each applied with its bit b[s, l] and magnitude m[s, l]. Gradients flow into c, b and m by
 * the straight-through rules; none into the images.
 *
 * c: [B, S] (one-hot, e.g. from gumbelSoftmaxST), b: [B, S, 2] (bits), m: [B, S, 2] in [0, 1].
 */
export function applySubPolicies(
  images: Tensor,
  c: Tensor,
  b: Tensor,
  m: Tensor,
  options: SubPolicyOptions = {},
): Tensor {
  checkImages(images, 'applySubPolicies');
  for (const [value, name] of [
    [c, 'c'],
    [b, 'b'],
    [m, 'm'],
  ] as const) {
    if (!(value instanceof Tensor))
      throw new TypeError(`applySubPolicies: ${name} must be a Tensor, got ${describe(value)}`);
  }
  const { unselectedGradient, magnitudeGradient, searchSpace, generator } = optionsObject(options, 'applySubPolicies');
  const unselected = unselectedGradient ?? 'identity';
  const magnitude = magnitudeGradient ?? 'straight-through';
  if (unselected !== 'identity' && unselected !== 'dada') {
    throw new RangeError(
      `applySubPolicies: unselectedGradient must be 'identity' or 'dada', got ${describe(unselected)}`,
    );
  }
  if (magnitude !== 'straight-through' && magnitude !== 'exact') {
    throw new RangeError(
      `applySubPolicies: magnitudeGradient must be 'straight-through' or 'exact', got ${describe(magnitude)}`,
    );
  }
  const space = searchSpace ?? (defaultSpace ??= defaultSearchSpace());
  const device = images.device;
  const tables = tablesFor(space, device);
  return tidy(() => {
    const noise = rand([images.shape[0], 2, 2], { generator, device });
    if (hasCustomOps(space))
      return applyBySlot(images, c, b, m, space, tables, noise, unselected === 'dada', magnitude === 'exact');
    return new Tensor(
      native.applySubPolicies(
        images.handle,
        c.handle,
        b.handle,
        m.handle,
        tables.kinds.handle,
        tables.ranges.handle,
        noise.handle,
        unselected === 'dada',
        magnitude === 'exact',
      ),
    );
  });
}

/**
 * applySubPolicies over a search space with custom ops: slot 1, then slot 2. In each slot the
 * fused kernel applies the built-in ops (custom ops are identity in its tables) and each custom
 * op runs once on the images that select it, gathered into one batch and scattered back. The
 * value is the forward of SPEC 1.4; the gradients into c, b and m are its rules, built from
 * detached parts: the fused kernel gives y and dy/dm of the built-in ops (straight-through or
 * exact), custom ops take dy/dm = 1, every op's input Jacobian is the identity.
 */
function applyBySlot(
  images: Tensor,
  c: Tensor,
  b: Tensor,
  m: Tensor,
  space: SearchSpace,
  tables: KernelTables,
  noise: Tensor,
  dada: boolean,
  exact: boolean,
): Tensor {
  const x = floatImages(images).detach();
  const [B] = x.shape;
  const S = space.subPolicies.length;
  const device = x.device;
  for (const [value, name, shape] of [
    [c, 'c (sub-policy weights)', [B, S]],
    [b, 'b (apply bits)', [B, S, 2]],
    [m, 'm (magnitudes)', [B, S, 2]],
  ] as const) {
    if (value.shape.length !== shape.length || value.shape.some((size, k) => size !== shape[k])) {
      throw new RangeError(
        `applySubPolicies: ${name} must have shape [${shape.join(', ')}], got [${value.shape.join(', ')}]`,
      );
    }
  }
  const selected = c.argmax(1);
  const pair = selected.reshape([B, 1, 1]).expand([B, 1, 2]);
  const bits = b.gather(1, pair).reshape([B, 2]);
  const magnitudes = m.gather(1, pair).reshape([B, 2]);
  // The fused kernel for one slot: c selects as before, the bit is 1 (the blend happens here),
  // the magnitude is m's slot, the other slot is identity.
  const selection = c.detach();
  const applied = full([B, S, 2], 1, { device });
  let current = x;
  for (const slot of [0, 1]) {
    const kinds = cat([tables.kinds.narrow(1, slot, 1), full([S, 1], IDENTITY_KIND, { device, dtype: 'int32' })], 1);
    const ranges = cat([tables.ranges.narrow(1, slot, 1), zeros([S, 1, 2], { device })], 1);
    const slotMagnitudes = cat([m.narrow(2, slot, 1), zeros([B, S, 1], { device })], 2);
    const slotNoise = cat([noise.narrow(1, slot, 1), zeros([B, 1, 2], { device })], 1);
    const builtIn = new Tensor(
      native.applySubPolicies(
        current.detach().handle,
        selection.handle,
        applied.handle,
        slotMagnitudes.handle,
        kinds.handle,
        ranges.handle,
        slotNoise.handle,
        false,
        exact,
      ),
    );
    const y = withCustomOps(builtIn, current, selected, slot, magnitudes.narrow(1, slot, 1), space);
    // The op's input Jacobian taken as the identity: gradients reach the previous slot's b and m.
    const output = y.add(current.sub(current.detach()));
    const bit = bits.narrow(1, slot, 1).reshape([B, 1, 1, 1]);
    current = current.add(bit.mul(output.sub(current)));
  }
  // c: <G, x2> for the selected sub-policy, the baseline (<G, x> or DADA's <G, 1>) for the others.
  const cSelected = c.gather(1, selected.reshape([B, 1])).reshape([B, 1, 1, 1]);
  const cOthers = c.sum(1).reshape([B, 1, 1, 1]).sub(cSelected);
  const weighted = cSelected.mul(current.detach()).add(cOthers.mul(dada ? 1 : x));
  return current.add(weighted.sub(weighted.detach()));
}

/**
 * The slot's output: the fused kernel's for images whose op is built in; for each custom op of
 * the slot, the op run on the whole batch and kept where the image's sub-policy selects it
 * (dy/dm = 1 for ops with a range). Which images those are stays on the device: no host read, at
 * the cost of each custom op seeing every image of the batch.
 */
function withCustomOps(
  builtIn: Tensor,
  input: Tensor,
  selected: Tensor,
  slot: number,
  magnitudes: Tensor,
  space: SearchSpace,
): Tensor {
  const opsInSlot = new Set(
    space.subPolicies.map((pair) => pair[slot]).filter((op) => space.ops[op].custom !== undefined),
  );
  if (opsInSlot.size === 0) return builtIn;
  const [B] = selected.shape;
  const device = input.device;
  // The op index of each image's sub-policy in this slot, [B].
  const opIndex = tensor(new Int32Array(space.subPolicies.map((pair) => pair[slot])), [space.subPolicies.length], {
    device,
  }).indexSelect(0, selected);
  const m = magnitudes.reshape([B]);
  let out = builtIn;
  for (const index of opsInSlot) {
    const op = space.ops[index];
    if (op.custom === undefined) continue;
    const y = runCustomOp(op, input.detach(), m.detach());
    const withGradient = op.range === null ? y : y.add(m.sub(m.detach()).reshape([B, 1, 1, 1]));
    out = where(opIndex.eq(index).reshape([B, 1, 1, 1]), withGradient, out);
  }
  return out;
}
