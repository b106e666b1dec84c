// The draw engine the augmentation baselines share (AutoAugment, RandAugment, TrivialAugment):
// per-image op slots drawn from packed tables on the images' device, and applied by the fused
// kernel two slots per native call (every image its own draws).
//
// Levels map to our ops' natural values (native/augment/ops.h) as torchvision 0.14 does
// (torchvision/transforms/autoaugment.py, `_augmentation_space`), with these differences that
// come from the engine (SPEC 1.1): geometric ops sample bilinearly (torchvision: nearest by
// default), bring in gray 0.5 from outside the image (torchvision: black), and shear about the
// image centre (torchvision and PIL: about the top-left corner, i.e. the same shear plus a
// shift). Translations are whole pixels, as torchvision's `int(magnitude)`.
import { IDENTITY_KIND, OPS } from '../augment/search-space.js';
import { cat, full, tensor, zeros } from '../engine/creation.js';
import { checkImages } from '../engine/images.js';
import { native } from '../engine/native.js';
import { Generator, rand, randint } from '../engine/random.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { integerInRange } from '../util/checks.js';
import { describe, optionsObject } from '../util/describe.js';

/** The options every baseline takes. */
export interface AugmenterOptions {
  /** Draws every random choice. Default: LibTorch's default generator of the images' device. */
  generator?: Generator;
  /**
   * The batch's labels (int64 [B], on the images' device), where the caller has them: `train`
   * passes them, so that an augmentation of one's own may depend on the class. The baselines and
   * the searched policies do not read them.
   */
  labels?: Tensor;
}

/**
 * A batch augmentation, as training loops take one: images [B, C, H, W] (float32 in [0, 1] or
 * uint8) -> a new float32 batch in [0, 1].
 */
export type Augmenter = (images: Tensor, options?: AugmenterOptions) => Tensor;

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

/** The options as an object (none for undefined or null), with a Generator or none. */
export function checkOptions<O extends AugmenterOptions>(options: O | null | undefined, where: string): O {
  const checked = optionsObject(options, where);
  const { generator } = checked;
  if (generator !== undefined && !(generator instanceof Generator)) {
    throw new TypeError(`${where}: options.generator must be a Generator, got ${describe(generator)}`);
  }
  return checked;
}

export function checkSize(value: unknown, name: string, where: string): number {
  return integerInRange(value, name, where, 1, 1 << 15);
}

// ---------------------------------------------------------------------------------------------
// What the ops mean at a magnitude bin

/** The ops AutoAugment / RandAugment / TrivialAugment use; Identity is an empty slot. */
export type BaselineOpName =
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

export const KIND_OF: Readonly<Record<BaselineOpName, number>> = (() => {
  const kinds: Record<string, number> = { Identity: IDENTITY_KIND };
  for (const op of OPS) kinds[op.name] = op.kind;
  return kinds as Record<BaselineOpName, number>;
})();

/** The kernel kind of a policy op, or an Error for an op our engine does not have. */
export function kindOf(name: string, where: string): number {
  if (typeof name !== 'string' || !Object.hasOwn(KIND_OF, name)) {
    throw new RangeError(
      `${where}: the op ${describe(name)} has no kernel in this engine (ops: ${Object.keys(KIND_OF).join(', ')})`,
    );
  }
  return KIND_OF[name as BaselineOpName];
}

/** The arguments of a policy op's value: an op of the engine, an image size in 1..32768. */
export function checkOpValue(op: string, height: number, width: number, where: string): void {
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
export interface BinValue {
  base: number;
  magnitude: number;
  signed: boolean;
}

/** Magnitude ranges of one policy family, following torchvision's `_augmentation_space`. */
export interface MagnitudeSpace {
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
export function binValue(
  op: BaselineOpName,
  bin: number,
  bins: number,
  space: MagnitudeSpace,
  height: number,
  width: number,
): BinValue {
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

/** Packs per-entry op tables: kinds [n] int32 and floats [n, 4] = (probability, base, magnitude, signed). */
export function packTables(
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
export function drawFromTables(
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

/**
 * Applies per-image op slots (see AugmentationDraws) with the fused kernel: ceil(L / 2) native
 * calls, each doing two slots of every image. Images: [B, C, H, W], float32 in [0, 1] or uint8.
 */
export function applyAugmentationDraws(
  images: Tensor,
  draws: Pick<AugmentationDraws, 'kinds' | 'values' | 'bits'>,
  options: AugmenterOptions = {},
): Tensor {
  const where = 'applyAugmentationDraws';
  checkImages(images, where);
  const { generator } = checkOptions(options, where);
  const { kinds, values, bits } = draws ?? ({} as AugmentationDraws);
  for (const [value, name] of [
    [kinds, 'kinds'],
    [values, 'values'],
    [bits, 'bits'],
  ] as const) {
    if (!(value instanceof Tensor))
      throw new TypeError(`${where}: draws.${name} must be a Tensor [B, L], got ${describe(value)}`);
  }
  const [batch] = images.shape;
  const shape = kinds.shape;
  if (shape.length !== 2 || shape[0] !== batch) {
    throw new RangeError(`${where}: draws.kinds must have shape [${batch}, L], got [${shape.join(', ')}]`);
  }
  for (const [value, name] of [
    [values, 'values'],
    [bits, 'bits'],
  ] as const) {
    const other = value.shape;
    if (other.length !== 2 || other[0] !== shape[0] || other[1] !== shape[1]) {
      throw new RangeError(
        `${where}: draws.${name} must have the shape of draws.kinds [${shape.join(', ')}], got [${other.join(', ')}]`,
      );
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

export interface DrawOptions extends AugmenterOptions {
  /** Device of the draws (the images' device). Default 'cpu'. */
  device?: string;
  /** Image size the translations are for. Default 32 x 32. */
  height?: number;
  width?: number;
}

export function drawGeometry<O extends DrawOptions>(batch: unknown, options: O | null | undefined, where: string) {
  const checked = checkOptions(options, where);
  const b = integerInRange(batch, 'the batch size', where, 0);
  const height = checkSize(checked.height ?? 32, 'height', where);
  const width = checkSize(checked.width ?? 32, 'width', where);
  const device = checked.device ?? checked.generator?.device ?? 'cpu';
  if (typeof device !== 'string')
    throw new TypeError(`${where}: device must be a string such as 'cpu' or 'cuda', got ${describe(device)}`);
  return { options: checked, batch: b, height, width, device, generator: checked.generator };
}

/**
 * A baseline applied to a batch: checks the images, the options and the baseline's own settings
 * (`check`, so that errors name it), draws per image for this batch's size and device,
 * and applies the draws.
 */
export function drawAndApply<O extends AugmenterOptions>(
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
  return tidy(() =>
    applyAugmentationDraws(images, draw(batch, { ...checked, device: images.device, height, width }), checked),
  );
}
