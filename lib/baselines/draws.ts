// The usual augmentation baselines, to compare DNA with: AutoAugment, RandAugment,
// TrivialAugmentWide and Cutout, all through the fused engine (one native call per two op slots
// per batch; every image its own draws), and a registry of them by name for training loops.
//
// Every policy here is an augmentation step only: it maps a batch [B, C, H, W] (float32 in
// [0, 1] or uint8) to a new float32 batch in [0, 1]. The baseline flip / crop / Cutout of
// SPEC 1.5 is the training loop's business (`preprocess`).
//
// Levels map to our ops' natural values (native/augment/ops.h) as torchvision 0.14 does
// (torchvision/transforms/autoaugment.py, `_augmentation_space`), with these differences that
// come from the engine (SPEC 1.1): geometric ops sample bilinearly (torchvision: nearest by
// default), bring in gray 0.5 from outside the image (torchvision: black), and shear about the
// image centre (torchvision and PIL: about the top-left corner, i.e. the same shear plus a
// shift). Translations are whole pixels, as torchvision's `int(magnitude)`.
import { describe, optionsObject } from '../util/describe.js';
import { native } from '../engine/native.js';
import { OPS, IDENTITY_KIND } from '../augment/search-space.js';
import { applyCutout } from '../augment/preprocess.js';
import { Generator, rand, randint } from '../engine/random.js';
import { Tensor, keep, tidy } from '../engine/tensor.js';
import { cat, full, tensor, zeros } from '../engine/creation.js';

/** The options every policy takes. */
export interface PolicyOptions {
  /** Draws every random choice. Default: LibTorch's default generator of the images' device. */
  generator?: Generator;
}

/** A batch augmentation: images [B, C, H, W] -> a new float32 batch in [0, 1]. */
export type AugmentationPolicy = (images: Tensor, options?: PolicyOptions) => Tensor;

/**
 * Per-image op slots, applied left to right: kinds [B, L] int32 (the kernel's op kinds, -1 for
 * an empty slot), values [B, L] float32 in the ops' natural units, bits [B, L] float32 (1: the
 * op is applied). `choice` says what was drawn: the sub-policy per image [B] (AutoAugment) or
 * the index into the policy's op list per slot [B, L] (RandAugment, TrivialAugment).
 */
export interface AugmentationDraws {
  kinds: Tensor;
  values: Tensor;
  bits: Tensor;
  choice: Tensor;
}

// ---------------------------------------------------------------------------------------------
// Checks

function checkImages(images: unknown, where: string): asserts images is Tensor {
  if (!(images instanceof Tensor)) throw new TypeError(`${where}: images must be a Tensor [B, C, H, W], got ${describe(images)}`);
  const shape = images.shape;
  if (shape.length !== 4) throw new RangeError(`${where}: images must be [B, C, H, W], got shape [${shape.join(', ')}]`);
}

/** The options as an object (none for undefined or null), with a Generator or none. */
function checkOptions<O extends PolicyOptions>(options: O | null | undefined, where: string): O {
  const checked = optionsObject(options, where);
  const { generator } = checked;
  if (generator !== undefined && !(generator instanceof Generator)) {
    throw new TypeError(`${where}: options.generator must be a Generator, got ${describe(generator)}`);
  }
  return checked;
}

function checkInteger(value: unknown, name: string, where: string, min: number, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `in ${min}..${max}`;
    throw new RangeError(`${where}: ${name} must be an integer ${range}, got ${describe(value)}`);
  }
  return value;
}

function checkSize(value: unknown, name: string, where: string): number {
  return checkInteger(value, name, where, 1, 1 << 15);
}

// ---------------------------------------------------------------------------------------------
// Op meanings shared by the three policies

/** The ops AutoAugment / RandAugment / TrivialAugment use; Identity is an empty slot. */
export type PolicyOpName =
  | 'Identity'
  | 'ShearX'
  | 'ShearY'
  | 'TranslateX'
  | 'TranslateY'
  | 'Rotate'
  | 'AutoContrast'
  | 'Invert'
  | 'Equalize'
  | 'Solarize'
  | 'Posterize'
  | 'Contrast'
  | 'Color'
  | 'Brightness'
  | 'Sharpness';

const KIND_OF: Readonly<Record<PolicyOpName, number>> = (() => {
  const kinds: Record<string, number> = { Identity: IDENTITY_KIND };
  for (const op of OPS) kinds[op.name] = op.kind;
  return kinds as Record<PolicyOpName, number>;
})();

/** The kernel kind of a policy op, or an Error for an op our engine does not have. */
function kindOf(name: string, where: string): number {
  if (typeof name !== 'string' || !Object.hasOwn(KIND_OF, name)) {
    throw new RangeError(`${where}: the op ${describe(name)} has no kernel in this engine (ops: ${Object.keys(KIND_OF).join(', ')})`);
  }
  return KIND_OF[name as PolicyOpName];
}

/** The arguments of a policy op's value: an op of the engine, an image size in 1..32768. */
function checkOpValue(op: string, height: number, width: number, where: string): void {
  kindOf(op, where);
  checkSize(height, 'height', where);
  checkSize(width, 'width', where);
}

// torch.round: half to even.
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * A policy op at one magnitude bin, as the kernel wants it: value = base + sign * magnitude
 * where `signed` (sign +-1 drawn per image), else base + magnitude.
 */
interface BinValue {
  base: number;
  magnitude: number;
  signed: boolean;
}

/** Magnitude ranges of one policy family, following torchvision's `_augmentation_space`. */
interface MagnitudeSpace {
  shear: number; // max |shear| (x' = x + v y)
  translate: (size: number) => number; // max |shift| in pixels for an image side of `size`
  rotate: number; // max |degrees|
  enhance: number; // max |factor - 1|
  posterizeDrop: number; // bits dropped at the top bin: bits = 8 - round(bin / ((bins - 1) / drop))
}

/**
 * The value of `op` at magnitude bin `bin` of `bins` (bin 0 = weakest), for an image of
 * height x width. Exactly torchvision's tables: linspace(0, max, bins)[bin] for the signed ops,
 * int() of the translation in pixels, 8 - round(...) bits for Posterize, and the Solarize
 * threshold linspace(255, 0, bins)[bin] (pixels whose 8-bit level >= threshold are inverted).
 */
function binValue(op: PolicyOpName, bin: number, bins: number, space: MagnitudeSpace, height: number, width: number): BinValue {
  const t = bin / (bins - 1);
  switch (op) {
    case 'ShearX':
    case 'ShearY':
      return { base: 0, magnitude: t * space.shear, signed: true };
    case 'TranslateX':
      return { base: 0, magnitude: Math.trunc(t * space.translate(width) + 1e-9) / width, signed: true };
    case 'TranslateY':
      return { base: 0, magnitude: Math.trunc(t * space.translate(height) + 1e-9) / height, signed: true };
    case 'Rotate':
      return { base: 0, magnitude: t * space.rotate, signed: true };
    case 'Contrast':
    case 'Color':
    case 'Brightness':
    case 'Sharpness':
      return { base: 1, magnitude: t * space.enhance, signed: true };
    case 'Posterize':
      return { base: 8 - roundHalfEven(bin / ((bins - 1) / space.posterizeDrop)), magnitude: 0, signed: false };
    case 'Solarize':
      // 255 (bins-1-bin) / (bins-1): an exact integer where torchvision's linspace gives one.
      return { base: (255 * (bins - 1 - bin)) / (bins - 1), magnitude: 0, signed: false };
    case 'Identity':
    case 'AutoContrast':
    case 'Invert':
    case 'Equalize':
      return { base: 0, magnitude: 0, signed: false };
  }
}

// Small per-device tables, made once per key; keep() takes them out of any open tidy() scope.
const tableCache = new Map<string, Tensor[]>();
const TABLE_CACHE_LIMIT = 64;

function cachedTables(key: string, make: () => Tensor[]): Tensor[] {
  let tables = tableCache.get(key);
  if (tables === undefined) {
    if (tableCache.size >= TABLE_CACHE_LIMIT) {
      for (const old of tableCache.values()) for (const t of old) t.dispose();
      tableCache.clear();
    }
    tables = tidy(() => make()).map((t) => keep(t));
    tableCache.set(key, tables);
  }
  return tables;
}

/** Packs per-entry op tables: kinds [n] int32 and floats [n, 4] = (probability, base, magnitude, signed). */
function packTables(
  entries: readonly { kind: number; probability: number; value: BinValue }[],
  device: string,
  shape: number[],
): Tensor[] {
  const kinds = new Int32Array(entries.length);
  const floats = new Float32Array(entries.length * 4);
  entries.forEach((entry, k) => {
    kinds[k] = entry.kind;
    floats.set([entry.probability, entry.value.base, entry.value.magnitude, entry.value.signed ? 1 : 0], k * 4);
  });
  return [tensor(kinds, shape, { device }), tensor(floats, [...shape, 4], { device })];
}

/**
 * Draws from packed tables at `index` (int64, any shape [B, ...]): kinds, bits (uniform < p)
 * and values (base + sign * magnitude, signs drawn per slot), all of index's shape + trailing
 * dims of the table rows.
 */
function drawFromTables(
  kindsTable: Tensor,
  floatsTable: Tensor,
  index: Tensor,
  outShape: number[],
  generator: Generator | undefined,
  device: string,
): { kinds: Tensor; values: Tensor; bits: Tensor } {
  const flat = index.reshape([-1]);
  const kinds = kindsTable.indexSelect(0, flat).reshape(outShape);
  const rows = floatsTable.indexSelect(0, flat).reshape([...outShape, 4]);
  const probability = rows.select(-1, 0);
  const bits = rand(outShape, { generator, device }).lt(probability).toDtype('float32');
  // torchvision negates when its sign draw is 0; either way each sign has probability 1/2.
  const sign = randint(0, 2, outShape, { generator, device, dtype: 'float32' }).mul(2).sub(1);
  const factor = sign.sub(1).mul(rows.select(-1, 3)).add(1); // signed ? sign : 1
  const values = rows.select(-1, 1).add(rows.select(-1, 2).mul(factor)).contiguous();
  return { kinds, values, bits };
}

// ---------------------------------------------------------------------------------------------
// Applying draws

/**
 * Applies per-image op slots (see AugmentationDraws) with the fused kernel: ceil(L / 2) native
 * calls, each doing two slots of every image. Images: [B, C, H, W], float32 in [0, 1] or uint8.
 */
export function applyAugmentationDraws(
  images: Tensor,
  draws: Pick<AugmentationDraws, 'kinds' | 'values' | 'bits'>,
  options: PolicyOptions = {},
): Tensor {
  const where = 'applyAugmentationDraws';
  checkImages(images, where);
  const { generator } = checkOptions(options, where);
  const { kinds, values, bits } = draws ?? ({} as AugmentationDraws);
  for (const [value, name] of [[kinds, 'kinds'], [values, 'values'], [bits, 'bits']] as const) {
    if (!(value instanceof Tensor)) throw new TypeError(`${where}: draws.${name} must be a Tensor [B, L], got ${describe(value)}`);
  }
  const [batch] = images.shape;
  const shape = kinds.shape;
  if (shape.length !== 2 || shape[0] !== batch) {
    throw new RangeError(`${where}: draws.kinds must have shape [${batch}, L], got [${shape.join(', ')}]`);
  }
  for (const [value, name] of [[values, 'values'], [bits, 'bits']] as const) {
    const other = value.shape;
    if (other.length !== 2 || other[0] !== shape[0] || other[1] !== shape[1]) {
      throw new RangeError(`${where}: draws.${name} must have the shape of draws.kinds [${shape.join(', ')}], got [${other.join(', ')}]`);
    }
  }
  if (kinds.dtype !== 'int32') throw new TypeError(`${where}: draws.kinds must be int32, got ${kinds.dtype}`);
  const device = images.device;
  return tidy(() => {
    // Pad to an even number of slots (at least two) with empty ones.
    let k = kinds;
    let v = values;
    let b = bits;
    const slots = shape[1];
    const padded = Math.max(2, slots + (slots % 2));
    if (padded > slots) {
      const pad = padded - slots;
      k = cat([k, full([batch, pad], IDENTITY_KIND, { device: kinds.device, dtype: 'int32' })], 1);
      v = cat([v, zeros([batch, pad], { device: values.device, dtype: values.dtype })], 1);
      b = cat([b, zeros([batch, pad], { device: bits.device, dtype: bits.dtype })], 1);
    }
    let x = images;
    for (let start = 0; start < padded; start += 2) {
      const noise = rand([batch, 2, 2], { generator, device });
      const next = new Tensor(
        native.augmentBatch(
          x.handle,
          k.narrow(1, start, 2).contiguous().handle,
          v.narrow(1, start, 2).contiguous().handle,
          b.narrow(1, start, 2).contiguous().handle,
          noise.handle,
        ),
      );
      if (x !== images) x.dispose();
      x = next;
    }
    return x;
  });
}

// ---------------------------------------------------------------------------------------------
// AutoAugment

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}

/** One op of an AutoAugment sub-policy: (op, probability, magnitude level 0..9 or null). */
export type AutoAugmentOp = readonly [op: PolicyOpName, probability: number, level: number | null];
export type AutoAugmentSubPolicy = readonly [AutoAugmentOp, AutoAugmentOp];

/**
 * The published AutoAugment policies: Cubuk et al., "AutoAugment: Learning Augmentation
 * Strategies from Data" (CVPR 2019, arXiv:1805.09501), appendix tables; transcribed as in
 * torchvision 0.14 `AutoAugmentPolicy` (torchvision/transforms/autoaugment.py, `_get_policies`).
 * 25 sub-policies each; levels are bins 0..9 of the magnitude tables (AUTOAUGMENT_LEVELS).
 */
export const AUTOAUGMENT_POLICIES: Readonly<Record<'cifar10' | 'svhn' | 'imagenet', readonly AutoAugmentSubPolicy[]>> = deepFreeze({
  cifar10: [
    [['Invert', 0.1, null], ['Contrast', 0.2, 6]],
    [['Rotate', 0.7, 2], ['TranslateX', 0.3, 9]],
    [['Sharpness', 0.8, 1], ['Sharpness', 0.9, 3]],
    [['ShearY', 0.5, 8], ['TranslateY', 0.7, 9]],
    [['AutoContrast', 0.5, null], ['Equalize', 0.9, null]],
    [['ShearY', 0.2, 7], ['Posterize', 0.3, 7]],
    [['Color', 0.4, 3], ['Brightness', 0.6, 7]],
    [['Sharpness', 0.3, 9], ['Brightness', 0.7, 9]],
    [['Equalize', 0.6, null], ['Equalize', 0.5, null]],
    [['Contrast', 0.6, 7], ['Sharpness', 0.6, 5]],
    [['Color', 0.7, 7], ['TranslateX', 0.5, 8]],
    [['Equalize', 0.3, null], ['AutoContrast', 0.4, null]],
    [['TranslateY', 0.4, 3], ['Sharpness', 0.2, 6]],
    [['Brightness', 0.9, 6], ['Color', 0.2, 8]],
    [['Solarize', 0.5, 2], ['Invert', 0.0, null]],
    [['Equalize', 0.2, null], ['AutoContrast', 0.6, null]],
    [['Equalize', 0.2, null], ['Equalize', 0.6, null]],
    [['Color', 0.9, 9], ['Equalize', 0.6, null]],
    [['AutoContrast', 0.8, null], ['Solarize', 0.2, 8]],
    [['Brightness', 0.1, 3], ['Color', 0.7, 0]],
    [['Solarize', 0.4, 5], ['AutoContrast', 0.9, null]],
    [['TranslateY', 0.9, 9], ['TranslateY', 0.7, 9]],
    [['AutoContrast', 0.9, null], ['Solarize', 0.8, 3]],
    [['Equalize', 0.8, null], ['Invert', 0.1, null]],
    [['TranslateY', 0.7, 9], ['AutoContrast', 0.9, null]],
  ],
  svhn: [
    [['ShearX', 0.9, 4], ['Invert', 0.2, null]],
    [['ShearY', 0.9, 8], ['Invert', 0.7, null]],
    [['Equalize', 0.6, null], ['Solarize', 0.6, 6]],
    [['Invert', 0.9, null], ['Equalize', 0.6, null]],
    [['Equalize', 0.6, null], ['Rotate', 0.9, 3]],
    [['ShearX', 0.9, 4], ['AutoContrast', 0.8, null]],
    [['ShearY', 0.9, 8], ['Invert', 0.4, null]],
    [['ShearY', 0.9, 5], ['Solarize', 0.2, 6]],
    [['Invert', 0.9, null], ['AutoContrast', 0.8, null]],
    [['Equalize', 0.6, null], ['Rotate', 0.9, 3]],
    [['ShearX', 0.9, 4], ['Solarize', 0.3, 3]],
    [['ShearY', 0.8, 8], ['Invert', 0.7, null]],
    [['Equalize', 0.9, null], ['TranslateY', 0.6, 6]],
    [['Invert', 0.9, null], ['Equalize', 0.6, null]],
    [['Contrast', 0.3, 3], ['Rotate', 0.8, 4]],
    [['Invert', 0.8, null], ['TranslateY', 0.0, 2]],
    [['ShearY', 0.7, 6], ['Solarize', 0.4, 8]],
    [['Invert', 0.6, null], ['Rotate', 0.8, 4]],
    [['ShearY', 0.3, 7], ['TranslateX', 0.9, 3]],
    [['ShearX', 0.1, 6], ['Invert', 0.6, null]],
    [['Solarize', 0.7, 2], ['TranslateY', 0.6, 7]],
    [['ShearY', 0.8, 4], ['Invert', 0.8, null]],
    [['ShearX', 0.7, 9], ['TranslateY', 0.8, 3]],
    [['ShearY', 0.8, 5], ['AutoContrast', 0.7, null]],
    [['ShearX', 0.7, 2], ['Invert', 0.1, null]],
  ],
  imagenet: [
    [['Posterize', 0.4, 8], ['Rotate', 0.6, 9]],
    [['Solarize', 0.6, 5], ['AutoContrast', 0.6, null]],
    [['Equalize', 0.8, null], ['Equalize', 0.6, null]],
    [['Posterize', 0.6, 7], ['Posterize', 0.6, 6]],
    [['Equalize', 0.4, null], ['Solarize', 0.2, 4]],
    [['Equalize', 0.4, null], ['Rotate', 0.8, 8]],
    [['Solarize', 0.6, 3], ['Equalize', 0.6, null]],
    [['Posterize', 0.8, 5], ['Equalize', 1.0, null]],
    [['Rotate', 0.2, 3], ['Solarize', 0.6, 8]],
    [['Equalize', 0.6, null], ['Posterize', 0.4, 6]],
    [['Rotate', 0.8, 8], ['Color', 0.4, 0]],
    [['Rotate', 0.4, 9], ['Equalize', 0.6, null]],
    [['Equalize', 0.0, null], ['Equalize', 0.8, null]],
    [['Invert', 0.6, null], ['Equalize', 1.0, null]],
    [['Color', 0.6, 4], ['Contrast', 1.0, 8]],
    [['Rotate', 0.8, 8], ['Color', 1.0, 2]],
    [['Color', 0.8, 8], ['Solarize', 0.8, 7]],
    [['Sharpness', 0.4, 7], ['Invert', 0.6, null]],
    [['ShearX', 0.6, 5], ['Equalize', 1.0, null]],
    [['Color', 0.4, 0], ['Equalize', 0.6, null]],
    [['Equalize', 0.4, null], ['Solarize', 0.2, 4]],
    [['Solarize', 0.6, 5], ['AutoContrast', 0.6, null]],
    [['Invert', 0.6, null], ['Equalize', 1.0, null]],
    [['Color', 0.6, 4], ['Contrast', 1.0, 8]],
    [['Equalize', 0.8, null], ['Equalize', 0.6, null]],
  ],
} as Record<'cifar10' | 'svhn' | 'imagenet', AutoAugmentSubPolicy[]>);

export type AutoAugmentPolicyName = keyof typeof AUTOAUGMENT_POLICIES;

/** AutoAugment's magnitude bins (10: levels 0..9) and ranges (torchvision `AutoAugment._augmentation_space`). */
const AUTOAUGMENT_BINS = 10;
const AUTOAUGMENT_SPACE: MagnitudeSpace = {
  shear: 0.3,
  translate: (size) => (150 / 331) * size,
  rotate: 30,
  enhance: 0.9,
  posterizeDrop: 4,
};

/**
 * The kernel value of an AutoAugment op at `level` (0..9) for an image of height x width,
 * before the sign: { base, magnitude, signed } with value = base +- magnitude.
 *   ShearX/Y: +- level/9 * 0.3            TranslateX/Y: +- int(level/9 * 150/331 * side) px
 *   Rotate: +- level/9 * 30 degrees        Color/Contrast/Brightness/Sharpness: 1 +- level/9 * 0.9
 *   Posterize: 8 - round(level/9 * 4) bits Solarize: threshold 255 * (1 - level/9)
 *   AutoContrast/Equalize/Invert: no magnitude.
 */
export function autoAugmentValue(op: PolicyOpName, level: number | null, height = 32, width = 32): { base: number; magnitude: number; signed: boolean } {
  checkOpValue(op, height, width, 'autoAugmentValue');
  const needsLevel = !['Identity', 'AutoContrast', 'Equalize', 'Invert'].includes(op);
  if (needsLevel) checkInteger(level, `the level of ${op}`, 'autoAugmentValue', 0, AUTOAUGMENT_BINS - 1);
  return binValue(op, needsLevel ? (level as number) : 0, AUTOAUGMENT_BINS, AUTOAUGMENT_SPACE, height, width);
}

function autoAugmentTables(policyName: AutoAugmentPolicyName, device: string, height: number, width: number): Tensor[] {
  return cachedTables(`autoaugment:${policyName}:${device}:${height}x${width}`, () => {
    const policy = AUTOAUGMENT_POLICIES[policyName];
    const entries = policy.flatMap((pair) =>
      pair.map(([op, probability, level]) => ({
        kind: kindOf(op, `AutoAugment ${policyName} policy`),
        probability,
        value: autoAugmentValue(op, level, height, width),
      })),
    );
    return packTables(entries, device, [policy.length, 2]);
  });
}

export interface AutoAugmentOptions extends PolicyOptions {
  /** Which published policy: 'cifar10' (default), 'svhn' or 'imagenet'. */
  policy?: AutoAugmentPolicyName;
}

export interface DrawOptions extends PolicyOptions {
  /** Device of the draws (the images' device). Default 'cpu'. */
  device?: string;
  /** Image size the translations are for. Default 32 x 32. */
  height?: number;
  width?: number;
}

function checkPolicyName(name: unknown, where: string): AutoAugmentPolicyName {
  if (typeof name !== 'string' || !Object.hasOwn(AUTOAUGMENT_POLICIES, name)) {
    throw new RangeError(`${where}: unknown AutoAugment policy ${describe(name)} (one of ${Object.keys(AUTOAUGMENT_POLICIES).join(', ')})`);
  }
  return name as AutoAugmentPolicyName;
}

function drawGeometry<O extends DrawOptions>(batch: unknown, options: O | null | undefined, where: string) {
  const checked = checkOptions(options, where);
  const b = checkInteger(batch, 'the batch size', where, 0);
  const height = checkSize(checked.height ?? 32, 'height', where);
  const width = checkSize(checked.width ?? 32, 'width', where);
  const device = checked.device ?? checked.generator?.device ?? 'cpu';
  if (typeof device !== 'string') throw new TypeError(`${where}: device must be a string such as 'cpu' or 'cuda', got ${describe(device)}`);
  return { options: checked, batch: b, height, width, device, generator: checked.generator };
}

/**
 * AutoAugment's per-image draws: a sub-policy per image, uniformly (`choice`, [B] int64), then
 * for each of its two ops a bit (applied with the op's probability) and a sign (for the signed
 * ops). kinds/values/bits: [B, 2].
 */
export function autoAugmentDraws(batch: number, options: DrawOptions & { policy?: AutoAugmentPolicyName } = {}): AugmentationDraws {
  const where = 'autoAugmentDraws';
  const { options: checked, height, width, device, generator, batch: b } = drawGeometry(batch, options, where);
  const policyName = checkPolicyName(checked.policy ?? 'cifar10', where);
  const [kindsTable, floatsTable] = autoAugmentTables(policyName, device, height, width);
  return tidy(() => {
    const choice = randint(0, AUTOAUGMENT_POLICIES[policyName].length, [b], { generator, device });
    // Rows of the [P, 2] tables: expand the sub-policy index to its two slots.
    const slots = choice.mul(2).unsqueeze(1).add(slotOffsets(device));
    const drawn = drawFromTables(kindsTable.reshape([-1]), floatsTable.reshape([-1, 4]), slots, [b, 2], generator, device);
    return { ...drawn, choice };
  });
}

// [1, 2] int64 (0, 1): the slot offsets of a sub-policy's two ops in the flattened tables.
function slotOffsets(device: string): Tensor {
  return tensor(new BigInt64Array([0n, 1n]), [1, 2], { device });
}

/**
 * AutoAugment (Cubuk et al. 2019) with a published policy (default: CIFAR-10): per image, one
 * of the 25 sub-policies uniformly, each of its two ops applied with its probability at its
 * level (see autoAugmentValue). One native call per batch.
 */
export function autoAugment(images: Tensor, options: AutoAugmentOptions = {}): Tensor {
  return drawAndApply(images, options, 'autoAugment', (o, where) => checkPolicyName(o.policy ?? 'cifar10', where), autoAugmentDraws);
}

/**
 * A policy applied to a batch: checks the images, the options and the policy's own settings
 * (`check`, so that errors name the policy), draws per image for this batch's size and device,
 * and applies the draws.
 */
function drawAndApply<O extends PolicyOptions>(
  images: Tensor,
  options: O,
  where: string,
  check: (options: O, where: string) => unknown,
  draw: (batch: number, options: DrawOptions & O) => AugmentationDraws,
): Tensor {
  checkImages(images, where);
  const checked = checkOptions(options, where);
  check(checked, where);
  const [batch, , height, width] = images.shape;
  return tidy(() => applyAugmentationDraws(images, draw(batch, { ...checked, device: images.device, height, width }), checked));
}

// ---------------------------------------------------------------------------------------------
// RandAugment and TrivialAugmentWide

/**
 * The ops of torchvision's RandAugment and TrivialAugmentWide, in its order: Identity and 13
 * ops (no Invert, no Cutout).
 */
export const RANDAUGMENT_OPS: readonly PolicyOpName[] = Object.freeze([
  'Identity',
  'ShearX',
  'ShearY',
  'TranslateX',
  'TranslateY',
  'Rotate',
  'Brightness',
  'Color',
  'Contrast',
  'Sharpness',
  'Posterize',
  'Solarize',
  'AutoContrast',
  'Equalize',
] as PolicyOpName[]);

/** RandAugment's ranges (torchvision `RandAugment._augmentation_space`): AutoAugment's. */
const RANDAUGMENT_SPACE: MagnitudeSpace = AUTOAUGMENT_SPACE;

/** TrivialAugmentWide's ranges (torchvision `TrivialAugmentWide._augmentation_space`). */
const TRIVIALAUGMENT_SPACE: MagnitudeSpace = {
  shear: 0.99,
  translate: () => 32, // pixels, whatever the image size
  rotate: 135,
  enhance: 0.99,
  posterizeDrop: 6,
};

export interface RandAugmentOptions extends PolicyOptions {
  /** Ops per image (0..64), each drawn uniformly from RANDAUGMENT_OPS (with replacement). Default 2. */
  n?: number;
  /** The magnitude bin, 0..bins-1, as torchvision's `magnitude`. Default 9. */
  magnitude?: number;
  /** Number of magnitude bins, as torchvision's `num_magnitude_bins`. Default 31. */
  bins?: number;
}

function randAugmentSettings(options: RandAugmentOptions, where: string) {
  const n = checkInteger(options.n ?? 2, 'n', where, 0, 64);
  const bins = checkInteger(options.bins ?? 31, 'bins', where, 2, 1 << 16);
  const magnitude = checkInteger(options.magnitude ?? 9, 'magnitude', where, 0, bins - 1);
  return { n, bins, magnitude };
}

/**
 * The kernel value of a RandAugment op at bin `magnitude` of `bins` (torchvision defaults 9 of
 * 31), for an image of height x width: AutoAugment's ranges (see autoAugmentValue) on `bins` bins.
 */
export function randAugmentValue(op: PolicyOpName, magnitude = 9, bins = 31, height = 32, width = 32): { base: number; magnitude: number; signed: boolean } {
  checkOpValue(op, height, width, 'randAugmentValue');
  checkInteger(bins, 'bins', 'randAugmentValue', 2, 1 << 16);
  checkInteger(magnitude, 'magnitude', 'randAugmentValue', 0, bins - 1);
  return binValue(op, magnitude, bins, RANDAUGMENT_SPACE, height, width);
}

/**
 * RandAugment's per-image draws: n ops per image, each uniformly from RANDAUGMENT_OPS
 * (`choice`, [B, n] int64), at the fixed magnitude with a random sign where signed. Empty
 * (Identity) slots have kind -1 and bit 0. kinds/values/bits: [B, n].
 */
export function randAugmentDraws(batch: number, options: DrawOptions & RandAugmentOptions = {}): AugmentationDraws {
  const where = 'randAugmentDraws';
  const { options: checked, height, width, device, generator, batch: b } = drawGeometry(batch, options, where);
  const { n, bins, magnitude } = randAugmentSettings(checked, where);
  const [kindsTable, floatsTable] = cachedTables(`randaugment:${device}:${height}x${width}:${magnitude}/${bins}`, () =>
    packTables(
      RANDAUGMENT_OPS.map((op) => ({
        kind: kindOf(op, 'RandAugment'),
        probability: op === 'Identity' ? 0 : 1,
        value: binValue(op, magnitude, bins, RANDAUGMENT_SPACE, height, width),
      })),
      device,
      [RANDAUGMENT_OPS.length],
    ),
  );
  return tidy(() => {
    const choice = randint(0, RANDAUGMENT_OPS.length, [b, n], { generator, device });
    return { ...drawFromTables(kindsTable, floatsTable, choice, [b, n], generator, device), choice };
  });
}

/**
 * RandAugment (Cubuk et al. 2020, as torchvision's `RandAugment`): n ops per image, each drawn
 * uniformly from RANDAUGMENT_OPS (Identity included), all at the same magnitude bin (default
 * 9 of 31), signs drawn per op. ceil(n / 2) native calls per batch.
 */
export function randAugment(images: Tensor, options: RandAugmentOptions = {}): Tensor {
  return drawAndApply(images, options, 'randAugment', randAugmentSettings, randAugmentDraws);
}

export interface TrivialAugmentOptions extends PolicyOptions {
  /** Number of magnitude bins, as torchvision's `num_magnitude_bins`. Default 31. */
  bins?: number;
}

/**
 * The kernel value of a TrivialAugmentWide op at bin `bin` of `bins` (default 31):
 *   ShearX/Y: +- bin/(bins-1) * 0.99       TranslateX/Y: +- int(bin/(bins-1) * 32) px
 *   Rotate: +- bin/(bins-1) * 135 degrees  Color/Contrast/Brightness/Sharpness: 1 +- bin/(bins-1) * 0.99
 *   Posterize: 8 - round(bin/(bins-1) * 6) bits (8..2)
 *   Solarize: threshold 255 * (1 - bin/(bins-1)).
 */
export function trivialAugmentValue(op: PolicyOpName, bin: number, bins = 31, height = 32, width = 32): { base: number; magnitude: number; signed: boolean } {
  checkOpValue(op, height, width, 'trivialAugmentValue');
  checkInteger(bins, 'bins', 'trivialAugmentValue', 2, 1 << 16);
  checkInteger(bin, 'bin', 'trivialAugmentValue', 0, bins - 1);
  return binValue(op, bin, bins, TRIVIALAUGMENT_SPACE, height, width);
}

/**
 * TrivialAugmentWide's per-image draws: one op per image uniformly from RANDAUGMENT_OPS
 * (`choice`, [B, 1] int64), a magnitude bin uniformly from 0..bins-1 and a sign where signed.
 * kinds/values/bits: [B, 1].
 */
export function trivialAugmentDraws(batch: number, options: DrawOptions & TrivialAugmentOptions = {}): AugmentationDraws {
  const where = 'trivialAugmentDraws';
  const { options: checked, height, width, device, generator, batch: b } = drawGeometry(batch, options, where);
  const bins = checkInteger(checked.bins ?? 31, 'bins', where, 2, 1 << 16);
  const count = RANDAUGMENT_OPS.length;
  // Table rows: op * bins + bin.
  const [kindsTable, floatsTable] = cachedTables(`trivialaugment:${device}:${height}x${width}:${bins}`, () =>
    packTables(
      RANDAUGMENT_OPS.flatMap((op) =>
        Array.from({ length: bins }, (_, bin) => ({
          kind: kindOf(op, 'TrivialAugment'),
          probability: op === 'Identity' ? 0 : 1,
          value: binValue(op, bin, bins, TRIVIALAUGMENT_SPACE, height, width),
        })),
      ),
      device,
      [count * bins],
    ),
  );
  return tidy(() => {
    const choice = randint(0, count, [b, 1], { generator, device });
    const bin = randint(0, bins, [b, 1], { generator, device });
    return { ...drawFromTables(kindsTable, floatsTable, choice.mul(bins).add(bin), [b, 1], generator, device), choice };
  });
}

/**
 * TrivialAugmentWide (Müller & Hutter 2021, as torchvision's `TrivialAugmentWide`): one op per
 * image uniformly from RANDAUGMENT_OPS (Identity included) at a magnitude bin drawn uniformly.
 * One native call per batch.
 */
export function trivialAugment(images: Tensor, options: TrivialAugmentOptions = {}): Tensor {
  return drawAndApply(images, options, 'trivialAugment', (o, where) => checkInteger(o.bins ?? 31, 'bins', where, 2, 1 << 16), trivialAugmentDraws);
}

// ---------------------------------------------------------------------------------------------
// Cutout and the registry

export interface CutoutOptions extends PolicyOptions {
  /** Side of the square in pixels (DeVries & Taylor 2017: 16 for CIFAR-10). Default 16. */
  size?: number;
}

/**
 * Cutout (DeVries & Taylor 2017): a size x size gray square at a centre drawn uniformly over
 * the image, clipped at the borders; the preprocessing kernel's Cutout (`preprocess`).
 */
export function cutout(images: Tensor, options: CutoutOptions = {}): Tensor {
  checkImages(images, 'cutout');
  const { size, generator } = checkOptions(options, 'cutout');
  return applyCutout(images, checkInteger(size ?? 16, 'size', 'cutout', 0), { generator });
}

/** No augmentation: a float32 copy in [0, 1] (uint8 images are scaled), like every policy returns. */
export function noAugmentation(images: Tensor, options: PolicyOptions = {}): Tensor {
  checkImages(images, 'noAugmentation');
  checkOptions(options, 'noAugmentation');
  const dtype = images.dtype;
  if (dtype === 'uint8') return tidy(() => images.detach().toDtype('float32').div(255));
  if (dtype !== 'float32') throw new TypeError(`noAugmentation: images must be float32 in [0, 1] or uint8, got ${dtype}`);
  return tidy(() => images.detach().clone());
}

export type AugmentationName = 'none' | 'cutout' | 'autoaugment' | 'randaugment' | 'trivialaugment';

/** The baselines by name, each with its default settings, for `augmentation: 'trivialaugment'`. */
export const AUGMENTATION_POLICIES: Readonly<Record<AugmentationName, AugmentationPolicy>> = Object.freeze({
  none: (images: Tensor, options?: PolicyOptions) => noAugmentation(images, options),
  cutout: (images: Tensor, options?: PolicyOptions) => cutout(images, options),
  autoaugment: (images: Tensor, options?: PolicyOptions) => autoAugment(images, options),
  randaugment: (images: Tensor, options?: PolicyOptions) => randAugment(images, options),
  trivialaugment: (images: Tensor, options?: PolicyOptions) => trivialAugment(images, options),
});

/**
 * The policy of a name in AUGMENTATION_POLICIES (case-insensitive), or a function passed
 * through as it is; an Error listing the known names otherwise.
 */
export function augmentationPolicy(name: AugmentationName | string | AugmentationPolicy): AugmentationPolicy {
  if (typeof name === 'function') return name;
  const known = Object.keys(AUGMENTATION_POLICIES).join(', ');
  if (typeof name !== 'string') throw new TypeError(`augmentation must be a policy name (one of ${known}) or a function, got ${describe(name)}`);
  const key = name.toLowerCase();
  if (!Object.hasOwn(AUGMENTATION_POLICIES, key)) throw new RangeError(`unknown augmentation policy ${describe(name)} (one of ${known})`);
  return AUGMENTATION_POLICIES[key as AugmentationName];
}
