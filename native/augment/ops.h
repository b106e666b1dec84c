// The math of every augmentation op, for the CPU and CUDA launchers (see below the op kinds for
// the CPU's own loops).
//
// Images are float32, CHW, values in [0, 1], one image at a time (the launchers walk the batch).
// An op is a kind plus its value v in natural units (degrees, a blend factor, a fraction of
// the width...); the search space in lib/ maps magnitudes m in [0, 1] to v. Ops defined on
// 8-bit images (AutoContrast, Equalize, Solarize, Posterize) quantise to 256 levels the way
// PIL does. Nothing here includes LibTorch or CUDA headers, so nvcc compiles it alone.
#pragma once

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define DNA_HOST_DEVICE __host__ __device__
#else
#define DNA_HOST_DEVICE
#endif

namespace dna {
namespace augment {

// The kernel's op kinds. Order and values are shared with lib/ (OPS in augment/search-space.ts).
//
// The CUDA launcher computes every op pixel by pixel with the functions below (opOutput). The CPU
// launcher (kernels_cpu.cc) has loops of its own for nine of the fifteen ops, for speed, built
// from the same pieces where the op has them:
//   ShearX, TranslateX       applyRowShift: a two-tap blend per row (the bilinear tap of a pure
//                            horizontal shift, written out with its weights fixed for the row)
//   ShearY, TranslateY       applyColumnShift: the same per column
//   Color                    applyColor: gray() once per pixel, blendClamped()
//   Sharpness                applySharpness: smoothedInterior(), blendClamped()
//   AutoContrast, Equalize   applyLevelTable: quantize(), autocontrastLut(), equalizeLut()
//   Cutout                   applyCutout: the square of cutoutSide() filled with kFill
// Rotate runs geometricTap() and sampleTap(); Invert, Solarize, Posterize, Contrast and
// Brightness run pointOp(). Every op on either launcher is tested against the plain TypeScript
// reference (test/helpers/augment-reference.ts) and against PIL / torchvision fixtures.
enum OpKind : int32_t {
  kIdentity = -1,
  kShearX = 0,
  kShearY = 1,
  kTranslateX = 2,
  kTranslateY = 3,
  kRotate = 4,
  kAutoContrast = 5,
  kInvert = 6,
  kEqualize = 7,
  kSolarize = 8,
  kPosterize = 9,
  kContrast = 10,
  kColor = 11,
  kBrightness = 12,
  kSharpness = 13,
  kCutout = 14,
  kOpKindCount = 15,
};

// Gray fill for pixels that geometric ops bring in from outside the image, and for Cutout.
constexpr float kFill = 0.5f;
constexpr int kMaxChannels = 3;

struct ImageShape {
  int channels;
  int height;
  int width;
};

// One op applied to one image: its kind, value and the uniform draws it may use.
struct OpParams {
  int32_t kind;
  float value;
  float noise0;  // Cutout: vertical centre, as a fraction of the height
  float noise1;  // Cutout: horizontal centre, as a fraction of the width
};

// Per-image statistics that some ops need before they can map pixels.
struct OpStats {
  float meanGray;      // Contrast: mean of the grayscale image
  const uint8_t* lut;  // AutoContrast, Equalize: channels x 256 lookup table of 8-bit levels
};

// AutoContrast needs each channel's darkest and brightest level, then a lookup table.
DNA_HOST_DEVICE inline bool needsMinMax(int32_t kind) { return kind == kAutoContrast; }
DNA_HOST_DEVICE inline bool needsHistogram(int32_t kind) { return kind == kEqualize; }
DNA_HOST_DEVICE inline bool needsMeanGray(int32_t kind) { return kind == kContrast; }
DNA_HOST_DEVICE inline bool isGeometric(int32_t kind) { return kind >= kShearX && kind <= kRotate; }

// max/min that compile to single instructions (fmaxf/fminf are library calls on x86 without
// -ffast-math); a NaN `value` gives `bound`.
DNA_HOST_DEVICE inline float atLeast(float value, float bound) { return value > bound ? value : bound; }
DNA_HOST_DEVICE inline float atMost(float value, float bound) { return value < bound ? value : bound; }

// The 8-bit level of a [0, 1] value, as PIL stores it: floor(255 v + 0.5), clamped. Clamping
// first makes the conversion a plain truncation (no floorf call, NaN goes to 0).
DNA_HOST_DEVICE inline int quantize(float value) {
  const float scaled = atMost(atLeast(value * 255.0f + 0.5f, 0.0f), 255.0f);
  return static_cast<int>(scaled);
}

constexpr float kInverse255 = 1.0f / 255.0f;

DNA_HOST_DEVICE inline float clamp01(float value) { return atMost(atLeast(value, 0.0f), 1.0f); }

// ITU-R 601 luma, as PIL's convert("L") and torchvision's rgb_to_grayscale.
DNA_HOST_DEVICE inline float gray(float r, float g, float b) { return 0.299f * r + 0.587f * g + 0.114f * b; }

// The pixel at (x, y) of a channel plane, or the fill outside the image.
DNA_HOST_DEVICE inline float pixelOrFill(const float* plane, int height, int width, int x, int y) {
  return (x < 0 || y < 0 || x >= width || y >= height) ? kFill : plane[y * width + x];
}

// Bilinear sampling at (sx, sy) in pixel-index coordinates, as four taps: neighbours inside
// the image by offset and weight, the weight of those outside going to the fill value. A tap is
// computed once per pixel and used for every channel.
struct BilinearTap {
  int offset[4];
  float weight[4];
  float fillWeight;
};

DNA_HOST_DEVICE inline BilinearTap bilinearTap(float sx, float sy, int height, int width) {
  BilinearTap tap{};
  // Far outside (or NaN): all fill; also keeps the integer conversion below in range.
  if (!(sx > -2.0f && sy > -2.0f && sx < static_cast<float>(width) + 1.0f && sy < static_cast<float>(height) + 1.0f)) {
    tap.fillWeight = 1.0f;
    return tap;
  }
  // sx, sy > -2 here, so truncation after a shift of 2 is the floor.
  const int x0 = static_cast<int>(sx + 2.0f) - 2;
  const int y0 = static_cast<int>(sy + 2.0f) - 2;
  const float ax = sx - static_cast<float>(x0);
  const float ay = sy - static_cast<float>(y0);
  const float weights[4] = {(1.0f - ax) * (1.0f - ay), ax * (1.0f - ay), (1.0f - ax) * ay, ax * ay};
  if (x0 >= 0 && y0 >= 0 && x0 + 1 < width && y0 + 1 < height) {  // the common case: all four inside
    const int base = y0 * width + x0;
    const int offsets[4] = {base, base + 1, base + width, base + width + 1};
    for (int k = 0; k < 4; ++k) {
      tap.offset[k] = offsets[k];
      tap.weight[k] = weights[k];
    }
    return tap;
  }
  for (int k = 0; k < 4; ++k) {
    const int x = x0 + (k & 1);
    const int y = y0 + (k >> 1);
    if (x < 0 || y < 0 || x >= width || y >= height) {
      tap.fillWeight += weights[k];
    } else {
      tap.offset[k] = y * width + x;
      tap.weight[k] = weights[k];
    }
  }
  return tap;
}

DNA_HOST_DEVICE inline float sampleTap(const float* plane, const BilinearTap& tap) {
  return tap.weight[0] * plane[tap.offset[0]] + tap.weight[1] * plane[tap.offset[1]] +
         tap.weight[2] * plane[tap.offset[2]] + tap.weight[3] * plane[tap.offset[3]] + tap.fillWeight * kFill;
}

// The derivatives of a bilinear sample with respect to sx and sy.
DNA_HOST_DEVICE inline void bilinearSlopes(const float* plane, int height, int width, float sx, float sy, float* dsx,
                                           float* dsy) {
  *dsx = 0.0f;
  *dsy = 0.0f;
  if (!(sx > -2.0f && sy > -2.0f && sx < static_cast<float>(width) + 1.0f && sy < static_cast<float>(height) + 1.0f))
    return;
  // sx, sy > -2 here, so truncation after a shift of 2 is the floor.
  const int x0 = static_cast<int>(sx + 2.0f) - 2;
  const int y0 = static_cast<int>(sy + 2.0f) - 2;
  const float ax = sx - static_cast<float>(x0);
  const float ay = sy - static_cast<float>(y0);
  const float v00 = pixelOrFill(plane, height, width, x0, y0);
  const float v01 = pixelOrFill(plane, height, width, x0 + 1, y0);
  const float v10 = pixelOrFill(plane, height, width, x0, y0 + 1);
  const float v11 = pixelOrFill(plane, height, width, x0 + 1, y0 + 1);
  *dsx = (1.0f - ay) * (v01 - v00) + ay * (v11 - v10);
  *dsy = (1.0f - ax) * (v10 - v00) + ax * (v11 - v01);
}

// An op made ready for one image: what its pixels need, computed once rather than per pixel.
struct PreparedOp {
  int32_t kind;
  float value;
  // Geometric ops: output pixel (x, y) samples the input at (a x + b y + c, d x + e y + f)
  // (inverse mapping, pixel-index coordinates), and affineDv is the derivative of those six
  // coefficients with respect to v.
  float affine[6];
  float affineDv[6];
  // Cutout: the square [y0, y0 + side) x [x0, x0 + side).
  int cutoutY0, cutoutX0, cutoutSide;
  // Posterize: the bits kept, as a mask of 8-bit levels.
  int posterizeMask;
  // Solarize: pixels at or above this 8-bit level (ceil v) are inverted.
  float solarizeLevel;
};

// The side of the Cutout square, in pixels, for a value v (a fraction of the width).
DNA_HOST_DEVICE inline int cutoutSide(float value, int width) {
  const int side = static_cast<int>(floorf(value * static_cast<float>(width) + 0.5f));
  return side < 0 ? 0 : side;
}

DNA_HOST_DEVICE inline PreparedOp prepareOp(const OpParams& op, ImageShape shape) {
  PreparedOp p{};
  p.kind = op.kind;
  p.value = op.value;
  const float v = op.value;
  const float width = static_cast<float>(shape.width);
  const float height = static_cast<float>(shape.height);
  const float cx = 0.5f * (width - 1.0f);
  const float cy = 0.5f * (height - 1.0f);
  // Identity map unless the op says otherwise.
  float a[6] = {1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f};
  float da[6] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  switch (op.kind) {
    case kShearX:  // x' = x + v * (y - cy)
      a[1] = v;
      a[2] = -v * cy;
      da[1] = 1.0f;
      da[2] = -cy;
      break;
    case kShearY:  // y' = y + v * (x - cx)
      a[3] = v;
      a[5] = -v * cx;
      da[3] = 1.0f;
      da[5] = -cx;
      break;
    case kTranslateX:  // content moves right by v * width
      a[2] = -v * width;
      da[2] = -width;
      break;
    case kTranslateY:  // content moves down by v * height
      a[5] = -v * height;
      da[5] = -height;
      break;
    case kRotate: {  // counter-clockwise by v degrees about the centre
      const float perDegree = 0.017453292519943295f;
      const float c = cosf(v * perDegree);
      const float s = sinf(v * perDegree);
      a[0] = c;
      a[1] = -s;
      a[2] = cx - c * cx + s * cy;
      a[3] = s;
      a[4] = c;
      a[5] = cy - s * cx - c * cy;
      da[0] = -s * perDegree;
      da[1] = -c * perDegree;
      da[2] = (s * cx + c * cy) * perDegree;
      da[3] = c * perDegree;
      da[4] = -s * perDegree;
      da[5] = (-c * cx + s * cy) * perDegree;
      break;
    }
    case kCutout: {
      p.cutoutSide = cutoutSide(v, shape.width);
      int centreY = static_cast<int>(op.noise0 * height);
      int centreX = static_cast<int>(op.noise1 * width);
      centreY = centreY >= shape.height ? shape.height - 1 : (centreY < 0 ? 0 : centreY);
      centreX = centreX >= shape.width ? shape.width - 1 : (centreX < 0 ? 0 : centreX);
      p.cutoutY0 = centreY - p.cutoutSide / 2;
      p.cutoutX0 = centreX - p.cutoutSide / 2;
      break;
    }
    case kSolarize:
      p.solarizeLevel = ceilf(v);
      break;
    case kPosterize: {
      int bits = static_cast<int>(floorf(v));
      bits = bits < 1 ? 1 : (bits > 8 ? 8 : bits);
      p.posterizeMask = (0xFF << (8 - bits)) & 0xFF;
      break;
    }
    default:
      break;
  }
  for (int k = 0; k < 6; ++k) {
    p.affine[k] = a[k];
    p.affineDv[k] = da[k];
  }
  return p;
}

// PIL's ImageOps.equalize lookup table for one channel's 256-bin histogram.
DNA_HOST_DEVICE inline void equalizeLut(const int* histogram, uint8_t* lut) {
  int total = 0;
  int last = 0;
  int nonzero = 0;
  for (int i = 0; i < 256; ++i) {
    if (histogram[i] != 0) {
      total += histogram[i];
      last = histogram[i];
      ++nonzero;
    }
  }
  const int step = nonzero <= 1 ? 0 : (total - last) / 255;
  if (step == 0) {
    for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i);
    return;
  }
  int n = step / 2;
  for (int i = 0; i < 256; ++i) {
    const int level = n / step;
    lut[i] = static_cast<uint8_t>(level > 255 ? 255 : level);
    n += histogram[i];
  }
}

// PIL's ImageOps.autocontrast (cutoff 0) lookup table for a channel spanning [low, high], in
// double precision as PIL's Python arithmetic (float32 would truncate 255 - epsilon to 254).
DNA_HOST_DEVICE inline void autocontrastLut(int low, int high, uint8_t* lut) {
  if (high <= low) {
    for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i);
    return;
  }
  const double scale = 255.0 / static_cast<double>(high - low);
  const double offset = -static_cast<double>(low) * scale;
  for (int i = 0; i < 256; ++i) {
    const int mapped = static_cast<int>(static_cast<double>(i) * scale + offset);  // truncation, as PIL
    lut[i] = static_cast<uint8_t>(mapped < 0 ? 0 : (mapped > 255 ? 255 : mapped));
  }
}

// The 3x3 smoothing PIL's ImageFilter.SMOOTH applies ([1 1 1; 1 5 1; 1 1 1] / 13), with the
// border pixels kept as they are.
// The smoothing at an interior pixel (index = y * width + x, not on the border).
DNA_HOST_DEVICE inline float smoothedInterior(const float* plane, int width, int index) {
  const float* above = plane + index - width;
  const float* here = plane + index;
  const float* below = plane + index + width;
  const float sum =
      (above[-1] + above[0] + above[1]) + (here[-1] + 5.0f * here[0] + here[1]) + (below[-1] + below[0] + below[1]);
  return sum / 13.0f;
}

DNA_HOST_DEVICE inline float smoothed(const float* plane, ImageShape shape, int x, int y) {
  if (x == 0 || y == 0 || x == shape.width - 1 || y == shape.height - 1) return plane[y * shape.width + x];
  return smoothedInterior(plane, shape.width, y * shape.width + x);
}

// What a blend op blends with at (c, y, x): the op's "degenerate" image.
DNA_HOST_DEVICE inline float degenerate(int32_t kind, const OpStats& stats, const float* image, ImageShape shape, int c,
                                        int y, int x) {
  const int planeSize = shape.height * shape.width;
  const int index = y * shape.width + x;
  switch (kind) {
    case kContrast:
      return stats.meanGray;
    case kColor:
      return shape.channels == 3 ? gray(image[index], image[planeSize + index], image[2 * planeSize + index])
                                 : image[c * planeSize + index];
    case kBrightness:
      return 0.0f;
    case kSharpness:
      return smoothed(image + c * planeSize, shape, x, y);
    default:
      return image[c * planeSize + index];
  }
}

DNA_HOST_DEVICE inline bool isBlend(int32_t kind) {
  return kind == kContrast || kind == kColor || kind == kBrightness || kind == kSharpness;
}

// base + factor * (input - base), in [0, 1].
DNA_HOST_DEVICE inline float blendClamped(float base, float factor, float input) {
  return clamp01(base + factor * (input - base));
}

// Ops whose output at a pixel depends only on that pixel's value and channel.
DNA_HOST_DEVICE inline bool isPointOp(int32_t kind) {
  return kind == kAutoContrast || kind == kInvert || kind == kEqualize || kind == kSolarize || kind == kPosterize ||
         kind == kContrast || kind == kBrightness;
}

DNA_HOST_DEVICE inline float pointOp(const PreparedOp& op, const OpStats& stats, int c, float input) {
  switch (op.kind) {
    case kAutoContrast:
    case kEqualize:
      return static_cast<float>(stats.lut[c * 256 + quantize(input)]) * kInverse255;
    case kInvert:
      return 1.0f - input;
    case kSolarize:  // quantize(input) >= ceil(v), without the integer conversion
      return atMost(atLeast(input * 255.0f + 0.5f, 0.0f), 255.0f) >= op.solarizeLevel ? 1.0f - input : input;
    case kPosterize:
      return static_cast<float>(quantize(input) & op.posterizeMask) * kInverse255;
    case kContrast:
      return blendClamped(stats.meanGray, op.value, input);
    case kBrightness:
      return clamp01(op.value * input);
    default:
      return input;
  }
}

DNA_HOST_DEVICE inline bool insideCutout(const PreparedOp& op, int x, int y) {
  return y >= op.cutoutY0 && y < op.cutoutY0 + op.cutoutSide && x >= op.cutoutX0 && x < op.cutoutX0 + op.cutoutSide;
}

// A geometric op's output at (x, y) of one channel plane.
DNA_HOST_DEVICE inline BilinearTap geometricTap(const PreparedOp& op, ImageShape shape, int x, int y) {
  const float fx = static_cast<float>(x);
  const float fy = static_cast<float>(y);
  return bilinearTap(op.affine[0] * fx + op.affine[1] * fy + op.affine[2],
                     op.affine[3] * fx + op.affine[4] * fy + op.affine[5], shape.height, shape.width);
}

// The op's output at (c, y, x). `image` is the whole input image (CHW, contiguous).
DNA_HOST_DEVICE inline float applyPixel(const PreparedOp& op, const OpStats& stats, const float* image,
                                        ImageShape shape, int c, int y, int x) {
  const int planeSize = shape.height * shape.width;
  const float* plane = image + c * planeSize;
  const float input = plane[y * shape.width + x];
  if (isGeometric(op.kind)) return sampleTap(plane, geometricTap(op, shape, x, y));
  if (isPointOp(op.kind)) return pointOp(op, stats, c, input);
  switch (op.kind) {
    case kColor:
    case kSharpness:
      return blendClamped(degenerate(op.kind, stats, image, shape, c, y, x), op.value, input);
    case kCutout:
      return insideCutout(op, x, y) ? kFill : input;
    default:
      return input;
  }
}

// d(output)/dv at (c, y, x) where the op is differentiable in its value: geometric ops through
// bilinear sampling, blends away from the clamp. `hasDerivative` is false for the others
// (their magnitude gradient falls back to straight-through).
DNA_HOST_DEVICE inline bool hasDerivative(int32_t kind) { return isGeometric(kind) || isBlend(kind); }

DNA_HOST_DEVICE inline float pixelDerivative(const PreparedOp& op, const OpStats& stats, const float* image,
                                             ImageShape shape, int c, int y, int x) {
  const int planeSize = shape.height * shape.width;
  const float* plane = image + c * planeSize;
  if (isGeometric(op.kind)) {
    const float fx = static_cast<float>(x);
    const float fy = static_cast<float>(y);
    const float sx = op.affine[0] * fx + op.affine[1] * fy + op.affine[2];
    const float sy = op.affine[3] * fx + op.affine[4] * fy + op.affine[5];
    float dsx, dsy;
    bilinearSlopes(plane, shape.height, shape.width, sx, sy, &dsx, &dsy);
    const float dxdv = op.affineDv[0] * fx + op.affineDv[1] * fy + op.affineDv[2];
    const float dydv = op.affineDv[3] * fx + op.affineDv[4] * fy + op.affineDv[5];
    return dsx * dxdv + dsy * dydv;
  }
  if (isBlend(op.kind)) {
    const float input = plane[y * shape.width + x];
    const float base = degenerate(op.kind, stats, image, shape, c, y, x);
    const float blended = base + op.value * (input - base);
    return (blended <= 0.0f || blended >= 1.0f) ? 0.0f : input - base;
  }
  return 0.0f;
}

// Per-image sums the backward of the fused sub-policy op needs (SPEC 1.4), in this order.
enum BackwardSum : int {
  kGradDotInput = 0,        // <G, x>
  kGradDotOutput = 1,       // <G, x2>
  kGradDotDelta1 = 2,       // <G, y1 - x>
  kGradDotDelta2 = 3,       // <G, y2 - x1>
  kGradSum = 4,             // <G, 1>
  kGradDotDerivative1 = 5,  // <G, dy1/dv1>
  kGradDotDerivative2 = 6,  // <G, dy2/dv2>
  kBackwardSumCount = 7,
};

// The baseline preprocessing of one image (SPEC 1.5): horizontal flip, then a shift by
// (dx, dy) whole pixels (pad + random crop; the padding is black), then a Cutout square of
// `cutoutSide` pixels at (cutoutY, cutoutX) filled with gray.
struct PreprocessParams {
  int32_t flip;
  int32_t dx, dy;
  int32_t cutoutSide;
  int32_t cutoutY, cutoutX;
};

DNA_HOST_DEVICE inline float preprocessPixel(const PreprocessParams& p, const float* plane, ImageShape shape, int x,
                                             int y) {
  const int y0 = p.cutoutY - p.cutoutSide / 2;
  const int x0 = p.cutoutX - p.cutoutSide / 2;
  if (p.cutoutSide > 0 && y >= y0 && y < y0 + p.cutoutSide && x >= x0 && x < x0 + p.cutoutSide) return kFill;
  const int sy = y - p.dy;
  int sx = x - p.dx;
  if (sx < 0 || sy < 0 || sx >= shape.width || sy >= shape.height) return 0.0f;
  if (p.flip) sx = shape.width - 1 - sx;
  return plane[sy * shape.width + sx];
}

}  // namespace augment
}  // namespace dna
