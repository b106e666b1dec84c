// A slow, plain reference of every augmentation op (SPEC 1.1), written from the spec rather
// than from native/augment/ops.h: one image at a time, float64 arithmetic, no shared code.
// Images are CHW Float32Arrays with values in [0, 1].

export interface Image {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

const FILL = 0.5;

function at(img: Image, c: number, y: number, x: number): number {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return FILL;
  return img.data[(c * img.height + y) * img.width + x];
}

function map(img: Image, f: (c: number, y: number, x: number) => number): Image {
  const out = new Float32Array(img.data.length);
  for (let c = 0; c < img.channels; c++)
    for (let y = 0; y < img.height; y++)
      for (let x = 0; x < img.width; x++) out[(c * img.height + y) * img.width + x] = f(c, y, x);
  return { ...img, data: out };
}

function bilinear(img: Image, c: number, sx: number, sy: number): number {
  const x0 = Math.floor(sx);
  const y0 = Math.floor(sy);
  const ax = sx - x0;
  const ay = sy - y0;
  return (
    (1 - ay) * ((1 - ax) * at(img, c, y0, x0) + ax * at(img, c, y0, x0 + 1)) +
    ay * ((1 - ax) * at(img, c, y0 + 1, x0) + ax * at(img, c, y0 + 1, x0 + 1))
  );
}

/** Where output pixel (x, y) of a geometric op samples the input. */
export function geometricSource(op: string, v: number, img: Image, x: number, y: number): [number, number] {
  const cx = (img.width - 1) / 2;
  const cy = (img.height - 1) / 2;
  switch (op) {
    case 'ShearX':
      return [x + v * (y - cy), y];
    case 'ShearY':
      return [x, y + v * (x - cx)];
    case 'TranslateX':
      return [x - v * img.width, y];
    case 'TranslateY':
      return [x, y - v * img.height];
    case 'Rotate': {
      const t = (v * Math.PI) / 180;
      const dx = x - cx;
      const dy = y - cy;
      return [Math.cos(t) * dx - Math.sin(t) * dy + cx, Math.sin(t) * dx + Math.cos(t) * dy + cy];
    }
    default:
      throw new Error(`not geometric: ${op}`);
  }
}

const level = (value: number) => Math.min(255, Math.max(0, Math.floor(value * 255 + 0.5)));
const clamp01 = (value: number) => Math.min(1, Math.max(0, value));
const grayAt = (img: Image, y: number, x: number) =>
  img.channels === 3
    ? 0.299 * at(img, 0, y, x) + 0.587 * at(img, 1, y, x) + 0.114 * at(img, 2, y, x)
    : at(img, 0, y, x);

function channelLevels(img: Image, c: number): number[] {
  const levels: number[] = [];
  for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) levels.push(level(at(img, c, y, x)));
  return levels;
}

// PIL's ImageOps.equalize, one channel.
function equalizeTable(levels: number[]): number[] {
  const h = new Array<number>(256).fill(0);
  for (const l of levels) h[l]++;
  const used = h.filter((n) => n > 0);
  if (used.length <= 1) return h.map((_, i) => i);
  const step = Math.floor((used.reduce((a, b) => a + b, 0) - used[used.length - 1]) / 255);
  if (step === 0) return h.map((_, i) => i);
  const lut: number[] = [];
  let n = Math.floor(step / 2);
  for (let i = 0; i < 256; i++) {
    lut.push(Math.min(255, Math.floor(n / step)));
    n += h[i];
  }
  return lut;
}

function blend(img: Image, factor: number, degenerate: (c: number, y: number, x: number) => number): Image {
  return map(img, (c, y, x) => {
    const d = degenerate(c, y, x);
    return clamp01(d + factor * (at(img, c, y, x) - d));
  });
}

/** One op with value v (natural units) on one image; noise = the op's two uniform draws. */
export function referenceOp(op: string, v: number, img: Image, noise: [number, number] = [0, 0]): Image {
  switch (op) {
    case 'ShearX':
    case 'ShearY':
    case 'TranslateX':
    case 'TranslateY':
    case 'Rotate':
      return map(img, (c, y, x) => {
        const [sx, sy] = geometricSource(op, v, img, x, y);
        return bilinear(img, c, sx, sy);
      });
    case 'AutoContrast': {
      const tables = Array.from({ length: img.channels }, (_, c) => {
        const levels = channelLevels(img, c);
        const lo = Math.min(...levels);
        const hi = Math.max(...levels);
        if (hi <= lo) return (l: number) => l;
        const scale = 255 / (hi - lo);
        return (l: number) => Math.min(255, Math.max(0, Math.trunc(l * scale - lo * scale)));
      });
      return map(img, (c, y, x) => tables[c](level(at(img, c, y, x))) / 255);
    }
    case 'Invert':
      return map(img, (c, y, x) => 1 - at(img, c, y, x));
    case 'Equalize': {
      const tables = Array.from({ length: img.channels }, (_, c) => equalizeTable(channelLevels(img, c)));
      return map(img, (c, y, x) => tables[c][level(at(img, c, y, x))] / 255);
    }
    case 'Solarize':
      return map(img, (c, y, x) => (level(at(img, c, y, x)) >= v ? 1 - at(img, c, y, x) : at(img, c, y, x)));
    case 'Posterize': {
      const bits = Math.min(8, Math.max(1, Math.floor(v)));
      const drop = 2 ** (8 - bits);
      return map(img, (c, y, x) => (Math.floor(level(at(img, c, y, x)) / drop) * drop) / 255);
    }
    case 'Contrast': {
      let sum = 0;
      for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) sum += grayAt(img, y, x);
      const mean = sum / (img.height * img.width);
      return blend(img, v, () => mean);
    }
    case 'Color':
      return blend(img, v, (c, y, x) => grayAt(img, y, x));
    case 'Brightness':
      return blend(img, v, () => 0);
    case 'Sharpness':
      return blend(img, v, (c, y, x) => {
        if (x === 0 || y === 0 || x === img.width - 1 || y === img.height - 1) return at(img, c, y, x);
        let sum = 4 * at(img, c, y, x);
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) sum += at(img, c, y + dy, x + dx);
        return sum / 13;
      });
    case 'Cutout': {
      const side = Math.max(0, Math.floor(v * img.width + 0.5));
      const cy = Math.min(img.height - 1, Math.floor(noise[0] * img.height));
      const cx = Math.min(img.width - 1, Math.floor(noise[1] * img.width));
      const y0 = cy - Math.floor(side / 2);
      const x0 = cx - Math.floor(side / 2);
      return map(img, (c, y, x) =>
        side > 0 && y >= y0 && y < y0 + side && x >= x0 && x < x0 + side ? FILL : at(img, c, y, x),
      );
    }
    default:
      throw new Error(`unknown op ${op}`);
  }
}

/** x -> b*op(x) + (1-b)*x. */
export function referenceBlend(out: Image, input: Image, bit: number): Image {
  return { ...input, data: input.data.map((value, k) => bit * out.data[k] + (1 - bit) * value) };
}

/** The baseline preprocessing of one image: flip, shift by (dx, dy) with black padding, Cutout. */
export function referencePreprocess(
  img: Image,
  p: { flip: boolean; dx: number; dy: number; side: number; cy: number; cx: number },
): Image {
  return map(img, (c, y, x) => {
    const y0 = p.cy - Math.floor(p.side / 2);
    const x0 = p.cx - Math.floor(p.side / 2);
    if (p.side > 0 && y >= y0 && y < y0 + p.side && x >= x0 && x < x0 + p.side) return FILL;
    const sy = y - p.dy;
    let sx = x - p.dx;
    if (sx < 0 || sy < 0 || sx >= img.width || sy >= img.height) return 0;
    if (p.flip) sx = img.width - 1 - sx;
    return img.data[(c * img.height + sy) * img.width + sx];
  });
}

/** Image i of a [B, C, H, W] batch. */
export function imageOf(data: Float32Array, shape: number[], i: number): Image {
  const [, channels, height, width] = shape;
  const size = channels * height * width;
  return { data: data.slice(i * size, (i + 1) * size), channels, height, width };
}

/** The largest absolute difference between two arrays (pixels, logits, gradients). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(a[k] - b[k]));
  return worst;
}

/** A new image from f(channel, y, x), and one pixel (gray 0.5 outside): for other references. */
export { map as mapImage, at as pixelAt };
