// CPU launchers: images in parallel (at::parallel_for), the math from ops.h. Each kind of op
// gets the loop shape that suits it (flat loops for point ops, one bilinear tap per pixel for
// all channels of a geometric op), calling the same per-pixel functions as the CUDA kernels.
#include <ATen/Parallel.h>

#include <cstring>
#include <vector>

#include "augment/kernels.h"

namespace dna {
namespace augment {

namespace {

struct StatsScratch {
  uint8_t lut[kMaxChannels * 256];
  std::vector<uint8_t> levels;  // one channel's 8-bit levels
  std::vector<int> shifts;      // per column: whole-pixel shift (ShearY, TranslateY)
  std::vector<float> weights;   // per column: fractional shift
};

OpStats computeStats(const PreparedOp& op, const float* image, ImageShape shape, StatsScratch& scratch) {
  OpStats stats{};
  stats.lut = scratch.lut;
  const int planeSize = shape.height * shape.width;
  if (needsMinMax(op.kind)) {
    for (int c = 0; c < shape.channels; ++c) {
      int low = 255, high = 0;
      for (int i = 0; i < planeSize; ++i) {
        const int level = quantize(image[c * planeSize + i]);
        low = level < low ? level : low;
        high = level > high ? level : high;
      }
      autocontrastLut(low, high, scratch.lut + c * 256);
    }
  }
  if (needsHistogram(op.kind)) {
    for (int c = 0; c < shape.channels; ++c) {
      int histogram[256] = {0};
      for (int i = 0; i < planeSize; ++i) ++histogram[quantize(image[c * planeSize + i])];
      equalizeLut(histogram, scratch.lut + c * 256);
    }
  }
  if (needsMeanGray(op.kind)) {
    double sum = 0.0;
    for (int i = 0; i < planeSize; ++i) {
      sum += shape.channels == 3 ? gray(image[i], image[planeSize + i], image[2 * planeSize + i]) : image[i];
    }
    stats.meanGray = static_cast<float>(sum / planeSize);
  }
  return stats;
}

// Point ops: a flat loop per channel. The kind is a template argument so that pointOp's switch
// folds away and the loop can vectorise.
template <int32_t Kind>
void applyPointOp(PreparedOp op, const OpStats& stats, const float* __restrict in, float* __restrict out,
                  ImageShape shape, float bit) {
  op.kind = Kind;
  const int planeSize = shape.height * shape.width;
  const float keep = 1.0f - bit;
  for (int c = 0; c < shape.channels; ++c) {
    const float* __restrict plane = in + c * planeSize;
    float* __restrict target = out + c * planeSize;
    for (int i = 0; i < planeSize; ++i) target[i] = bit * pointOp(op, stats, c, plane[i]) + keep * plane[i];
  }
}

// Geometric ops: the bilinear tap of a pixel is computed once and used for every channel.
void applyGeometric(const PreparedOp& op, const float* __restrict in, float* __restrict out, ImageShape shape,
                    float bit) {
  const int planeSize = shape.height * shape.width;
  const float keep = 1.0f - bit;
  for (int y = 0; y < shape.height; ++y) {
    for (int x = 0; x < shape.width; ++x) {
      const BilinearTap tap = geometricTap(op, shape, x, y);
      const int index = y * shape.width + x;
      for (int c = 0; c < shape.channels; ++c) {
        const float* plane = in + c * planeSize;
        out[c * planeSize + index] = bit * sampleTap(plane, tap) + keep * plane[index];
      }
    }
  }
}

// Integer floor of a shift already known to lie within (-limit, limit).
inline int floorShift(float shift, int limit) { return static_cast<int>(shift + static_cast<float>(limit)) - limit; }

// ShearX and TranslateX: row y samples itself shifted by s(y) = b y + c (a = 1, d = 0, e = 1,
// f = 0 in the affine map), so a row is a two-tap blend with weights fixed for the whole row.
void applyRowShift(const PreparedOp& op, const float* __restrict in, float* __restrict out, ImageShape shape,
                   float bit) {
  const int width = shape.width;
  const int planeSize = shape.height * width;
  const float keep = 1.0f - bit;
  for (int y = 0; y < shape.height; ++y) {
    const float shift = op.affine[1] * static_cast<float>(y) + op.affine[2];
    const bool far = !(shift > static_cast<float>(-width - 1) && shift < static_cast<float>(width + 1));
    const int k = far ? -2 * width : floorShift(shift, width + 2);
    const float a = far ? 0.0f : shift - static_cast<float>(k);
    // Columns whose two taps are both inside: x + k >= 0 and x + k + 1 <= width - 1.
    const int inStart = k < 0 ? (-k < width ? -k : width) : 0;
    const int inEnd = width - 1 - k < inStart ? inStart : (width - 1 - k > width ? width : width - 1 - k);
    for (int c = 0; c < shape.channels; ++c) {
      const float* __restrict src = in + c * planeSize + y * width;
      float* __restrict dst = out + c * planeSize + y * width;
      const auto tap = [&](int x) { return x < 0 || x >= width ? kFill : src[x]; };
      for (int x = 0; x < inStart; ++x) dst[x] = bit * ((1.0f - a) * tap(x + k) + a * tap(x + k + 1)) + keep * src[x];
      for (int x = inStart; x < inEnd; ++x)
        dst[x] = bit * ((1.0f - a) * src[x + k] + a * src[x + k + 1]) + keep * src[x];
      for (int x = inEnd; x < width; ++x) dst[x] = bit * ((1.0f - a) * tap(x + k) + a * tap(x + k + 1)) + keep * src[x];
    }
  }
}

// ShearY and TranslateY: column x samples itself shifted by s(x) = d x + f (a = 1, b = 0,
// c = 0, e = 1), so the shift and the two weights are computed once per column.
void applyColumnShift(const PreparedOp& op, const float* __restrict in, float* __restrict out, ImageShape shape,
                      float bit, std::vector<int>& shifts, std::vector<float>& weights) {
  const int width = shape.width;
  const int height = shape.height;
  const int planeSize = height * width;
  const float keep = 1.0f - bit;
  shifts.resize(static_cast<size_t>(width));
  weights.resize(static_cast<size_t>(width));
  for (int x = 0; x < width; ++x) {
    const float shift = op.affine[3] * static_cast<float>(x) + op.affine[5];
    const bool far = !(shift > static_cast<float>(-height - 1) && shift < static_cast<float>(height + 1));
    shifts[x] = far ? -2 * height : floorShift(shift, height + 2);
    weights[x] = far ? 0.0f : shift - static_cast<float>(shifts[x]);
  }
  for (int c = 0; c < shape.channels; ++c) {
    const float* __restrict plane = in + c * planeSize;
    float* __restrict target = out + c * planeSize;
    const auto tap = [&](int y, int x) { return y < 0 || y >= height ? kFill : plane[y * width + x]; };
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        const int y0 = y + shifts[x];
        const float a = weights[x];
        target[y * width + x] = bit * ((1.0f - a) * tap(y0, x) + a * tap(y0 + 1, x)) + keep * plane[y * width + x];
      }
    }
  }
}

// Color: the gray of a pixel is computed once and used for every channel.
void applyColor(const PreparedOp& op, const float* __restrict in, float* __restrict out, ImageShape shape, float bit) {
  const int planeSize = shape.height * shape.width;
  const float keep = 1.0f - bit;
  if (shape.channels != 3) {
    for (int i = 0; i < planeSize; ++i) out[i] = bit * blendClamped(in[i], op.value, in[i]) + keep * in[i];
    return;
  }
  for (int i = 0; i < planeSize; ++i) {
    const float g = gray(in[i], in[planeSize + i], in[2 * planeSize + i]);
    for (int c = 0; c < 3; ++c) {
      const float value = in[c * planeSize + i];
      out[c * planeSize + i] = bit * blendClamped(g, op.value, value) + keep * value;
    }
  }
}

// Sharpness: border pixels blend with themselves, interior rows run the stencil without checks.
void applySharpness(const PreparedOp& op, const float* __restrict in, float* __restrict out, ImageShape shape,
                    float bit) {
  const int width = shape.width;
  const int planeSize = shape.height * width;
  const float keep = 1.0f - bit;
  for (int c = 0; c < shape.channels; ++c) {
    const float* __restrict plane = in + c * planeSize;
    float* __restrict target = out + c * planeSize;
    const auto blendAt = [&](int index, float base) {
      target[index] = bit * blendClamped(base, op.value, plane[index]) + keep * plane[index];
    };
    for (int y = 0; y < shape.height; ++y) {
      const int row = y * width;
      if (y == 0 || y == shape.height - 1 || width < 3) {
        for (int x = 0; x < width; ++x) blendAt(row + x, plane[row + x]);
        continue;
      }
      blendAt(row, plane[row]);
      for (int x = 1; x < width - 1; ++x) blendAt(row + x, smoothedInterior(plane, width, row + x));
      blendAt(row + width - 1, plane[row + width - 1]);
    }
  }
}

// AutoContrast and Equalize: quantise each channel once, build its lookup table from the levels
// (min/max or histogram, as computeStats does), then map.
void applyLevelTable(const PreparedOp& op, const float* __restrict in, float* __restrict out, ImageShape shape,
                     float bit, StatsScratch& scratch, std::vector<uint8_t>& levels) {
  const int planeSize = shape.height * shape.width;
  const float keep = 1.0f - bit;
  levels.resize(static_cast<size_t>(planeSize));
  uint8_t* __restrict level = levels.data();
  for (int c = 0; c < shape.channels; ++c) {
    const float* __restrict plane = in + c * planeSize;
    float* __restrict target = out + c * planeSize;
    uint8_t* lut = scratch.lut + c * 256;
    if (op.kind == kAutoContrast) {
      // quantize is monotonic: the extreme levels are the levels of the extreme values.
      float low = plane[0], high = plane[0];
      for (int i = 0; i < planeSize; ++i) {
        low = atMost(plane[i], low);
        high = atLeast(plane[i], high);
      }
      for (int i = 0; i < planeSize; ++i) level[i] = static_cast<uint8_t>(quantize(plane[i]));
      autocontrastLut(quantize(low), quantize(high), lut);
    } else {
      int histogram[256] = {0};
      for (int i = 0; i < planeSize; ++i) level[i] = static_cast<uint8_t>(quantize(plane[i]));
      for (int i = 0; i < planeSize; ++i) ++histogram[level[i]];
      equalizeLut(histogram, lut);
    }
    for (int i = 0; i < planeSize; ++i)
      target[i] = bit * static_cast<float>(lut[level[i]]) * kInverse255 + keep * plane[i];
  }
}

// Cutout: a copy, then the square.
void applyCutout(const PreparedOp& op, const float* in, float* out, ImageShape shape, float bit) {
  const int planeSize = shape.height * shape.width;
  if (out != in) std::memcpy(out, in, static_cast<size_t>(shape.channels) * planeSize * sizeof(float));
  const int y0 = op.cutoutY0 < 0 ? 0 : op.cutoutY0;
  const int x0 = op.cutoutX0 < 0 ? 0 : op.cutoutX0;
  const int y1 = op.cutoutY0 + op.cutoutSide > shape.height ? shape.height : op.cutoutY0 + op.cutoutSide;
  const int x1 = op.cutoutX0 + op.cutoutSide > shape.width ? shape.width : op.cutoutX0 + op.cutoutSide;
  for (int c = 0; c < shape.channels; ++c) {
    for (int y = y0; y < y1; ++y) {
      for (int x = x0; x < x1; ++x) {
        const int index = c * planeSize + y * shape.width + x;
        out[index] = bit * kFill + (1.0f - bit) * in[index];
      }
    }
  }
}

// out = bit * op(in) + (1 - bit) * in for one image.
void applyImage(const OpParams& params, const float* in, float* out, ImageShape shape, float bit,
                StatsScratch& scratch) {
  const size_t count = static_cast<size_t>(shape.channels) * shape.height * shape.width;
  if (params.kind == kIdentity || bit == 0.0f) {
    if (out != in) std::memcpy(out, in, count * sizeof(float));
    return;
  }
  const PreparedOp op = prepareOp(params, shape);
  if (op.kind == kShearX || op.kind == kTranslateX) return applyRowShift(op, in, out, shape, bit);
  if (op.kind == kShearY || op.kind == kTranslateY)
    return applyColumnShift(op, in, out, shape, bit, scratch.shifts, scratch.weights);
  if (isGeometric(op.kind)) return applyGeometric(op, in, out, shape, bit);
  if (op.kind == kColor) return applyColor(op, in, out, shape, bit);
  if (op.kind == kSharpness) return applySharpness(op, in, out, shape, bit);
  if (op.kind == kCutout) return applyCutout(op, in, out, shape, bit);
  if (op.kind == kAutoContrast || op.kind == kEqualize)
    return applyLevelTable(op, in, out, shape, bit, scratch, scratch.levels);
  const OpStats stats = computeStats(op, in, shape, scratch);
  switch (op.kind) {
#define DNA_POINT_CASE(K) \
  case K:                 \
    return applyPointOp<K>(op, stats, in, out, shape, bit);
    DNA_POINT_CASE(kInvert)
    DNA_POINT_CASE(kSolarize)
    DNA_POINT_CASE(kPosterize)
    DNA_POINT_CASE(kContrast)
    DNA_POINT_CASE(kBrightness)
#undef DNA_POINT_CASE
    default:  // every kind is handled above; a copy keeps the output defined regardless
      std::memcpy(out, in, count * sizeof(float));
  }
}

OpParams opOf(const SubPolicyBatch& batch, int64_t image, int layer) {
  const int64_t k = image * 2 + layer;
  return OpParams{batch.kinds[k], batch.values[k], batch.noise[k * 2], batch.noise[k * 2 + 1]};
}

// Images per parallel task: enough work per task to amortise the scheduling.
int64_t grainFor(ImageShape shape) {
  const int64_t pixels = static_cast<int64_t>(shape.channels) * shape.height * shape.width;
  return pixels >= 16384 ? 1 : 16384 / pixels;
}

// Sum of term(k) for k < count: float partial sums in 8 lanes (so that the loop vectorises
// without reassociation flags) over blocks of 1024 values, the blocks added in double.
template <typename Term>
double blockedSum(int64_t count, Term term) {
  double total = 0.0;
  for (int64_t start = 0; start < count; start += 1024) {
    const int64_t end = start + 1024 < count ? start + 1024 : count;
    float lanes[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    int64_t k = start;
    for (; k + 8 <= end; k += 8) {
      for (int j = 0; j < 8; ++j) lanes[j] += term(k + j);
    }
    float partial = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (; k < end; ++k) partial += term(k);
    total += partial;
  }
  return total;
}

double dot(const float* __restrict g, const float* __restrict a, int64_t count) {
  return blockedSum(count, [=](int64_t k) { return g[k] * a[k]; });
}

// <G, a - b>, in one pass (no cancellation between two large dot products).
double dotDifference(const float* __restrict g, const float* __restrict a, const float* __restrict b, int64_t count) {
  return blockedSum(count, [=](int64_t k) { return g[k] * (a[k] - b[k]); });
}

double sum(const float* __restrict g, int64_t count) {
  return blockedSum(count, [=](int64_t k) { return g[k]; });
}

}  // namespace

void subPolicyForwardCpu(const SubPolicyBatch& batch) {
  const ImageShape shape = batch.shape;
  const int64_t imageSize = static_cast<int64_t>(shape.channels) * shape.height * shape.width;
  at::parallel_for(0, batch.batch, grainFor(shape), [&](int64_t begin, int64_t end) {
    StatsScratch scratch;
    std::vector<float> between(static_cast<size_t>(imageSize));  // x1, one image at a time
    for (int64_t i = begin; i < end; ++i) {
      const float* x0 = batch.input + i * imageSize;
      float* out = batch.output + i * imageSize;
      const OpParams first = opOf(batch, i, 0);
      const OpParams second = opOf(batch, i, 1);
      const float bits[2] = {batch.bits[i * 2], batch.bits[i * 2 + 1]};
      if (second.kind == kIdentity || bits[1] == 0.0f) {  // one op: straight into the output
        applyImage(first, x0, out, shape, bits[0], scratch);
        continue;
      }
      const bool firstApplies = first.kind != kIdentity && bits[0] != 0.0f;
      const float* x1 = x0;
      if (firstApplies) {
        applyImage(first, x0, between.data(), shape, bits[0], scratch);
        x1 = between.data();
      }
      applyImage(second, x1, out, shape, bits[1], scratch);
    }
  });
}

// The backward recomputes each op's output y_l with the forward loops (bit 1), then takes the
// dot products of SPEC 1.4 in flat loops: <G, x>, <G, 1>, <G, y_l - x_{l-1}>, <G, x2> and,
// with `exact`, <G, dy_l/dv>.
void subPolicyBackwardCpu(const SubPolicyBatch& batch, const SubPolicyGradient& gradient) {
  const ImageShape shape = batch.shape;
  const int64_t imageSize = static_cast<int64_t>(shape.channels) * shape.height * shape.width;
  at::parallel_for(0, batch.batch, grainFor(shape), [&](int64_t begin, int64_t end) {
    StatsScratch scratch;
    std::vector<float> between(static_cast<size_t>(imageSize));   // x1
    std::vector<float> opOutput(static_cast<size_t>(imageSize));  // y_l
    std::vector<float> blended(static_cast<size_t>(imageSize));   // x2
    for (int64_t i = begin; i < end; ++i) {
      const float* x0 = batch.input + i * imageSize;
      const float* g = gradient.gradOutput + i * imageSize;
      float* sums = gradient.sums + i * kBackwardSumCount;
      const double gradSum = sum(g, imageSize);
      sums[kGradSum] = static_cast<float>(gradSum);
      sums[kGradDotInput] = static_cast<float>(dot(g, x0, imageSize));
      const float* layerInput = x0;
      for (int layer = 0; layer < 2; ++layer) {
        const OpParams params = opOf(batch, i, layer);
        const float bit = batch.bits[i * 2 + layer];
        float* y = opOutput.data();
        applyImage(params, layerInput, y, shape, 1.0f, scratch);
        const double delta = dotDifference(g, y, layerInput, imageSize);
        float* next = layer == 0 ? between.data() : blended.data();
        for (int64_t k = 0; k < imageSize; ++k) next[k] = bit * y[k] + (1.0f - bit) * layerInput[k];
        double derivative = gradSum;  // straight-through: dy/dv taken as 1
        const PreparedOp op = prepareOp(params, shape);
        if (gradient.exact && hasDerivative(op.kind)) {
          const OpStats stats = computeStats(op, layerInput, shape, scratch);
          derivative = 0.0;
          for (int c = 0; c < shape.channels; ++c) {
            for (int yy = 0; yy < shape.height; ++yy) {
              float partial = 0.0f;
              for (int xx = 0; xx < shape.width; ++xx) {
                const int64_t k = (static_cast<int64_t>(c) * shape.height + yy) * shape.width + xx;
                partial += g[k] * pixelDerivative(op, stats, layerInput, shape, c, yy, xx);
              }
              derivative += partial;
            }
          }
        }
        sums[layer == 0 ? kGradDotDelta1 : kGradDotDelta2] = static_cast<float>(delta);
        sums[layer == 0 ? kGradDotDerivative1 : kGradDotDerivative2] = static_cast<float>(derivative);
        layerInput = next;
      }
      sums[kGradDotOutput] = static_cast<float>(dot(g, blended.data(), imageSize));
    }
  });
}

void preprocessCpu(const PreprocessBatch& batch) {
  const ImageShape shape = batch.shape;
  const int64_t planeSize = static_cast<int64_t>(shape.height) * shape.width;
  at::parallel_for(0, batch.batch, grainFor(shape), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int32_t* q = batch.params + i * 6;
      const PreprocessParams p{q[0], q[1], q[2], q[3], q[4], q[5]};
      for (int c = 0; c < shape.channels; ++c) {
        const float* plane = batch.input + (i * shape.channels + c) * planeSize;
        float* out = batch.output + (i * shape.channels + c) * planeSize;
        for (int y = 0; y < shape.height; ++y) {
          for (int x = 0; x < shape.width; ++x) out[y * shape.width + x] = preprocessPixel(p, plane, shape, x, y);
        }
      }
    }
  });
}

}  // namespace augment
}  // namespace dna
