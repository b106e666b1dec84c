// CPU launchers: images in parallel (at::parallel_for), the math from ops.h.
#include <ATen/Parallel.h>

#include <cstring>
#include <vector>

#include "augment/kernels.h"

namespace dna {
namespace augment {

namespace {

struct StatsScratch {
  uint8_t lut[kMaxChannels * 256];
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
      stats.low[c] = static_cast<float>(low);
      stats.high[c] = static_cast<float>(high);
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

// One op over one image, blended with its input by `bit`. The op kind is a template argument
// so that the per-pixel switch folds away and simple ops vectorise.
template <int32_t Kind>
void applyImageAs(PreparedOp op, const OpStats& stats, const float* in, float* out, ImageShape shape, float bit) {
  op.kind = Kind;
  const float keep = 1.0f - bit;
  for (int c = 0; c < shape.channels; ++c) {
    for (int y = 0; y < shape.height; ++y) {
      const int row = (c * shape.height + y) * shape.width;
      for (int x = 0; x < shape.width; ++x) {
        out[row + x] = bit * applyPixel(op, stats, in, shape, c, y, x) + keep * in[row + x];
      }
    }
  }
}

// Geometric ops: the bilinear tap of a pixel is computed once and used for every channel.
void applyGeometric(const PreparedOp& op, const float* in, float* out, ImageShape shape, float bit) {
  const int planeSize = shape.height * shape.width;
  const float keep = 1.0f - bit;
  for (int y = 0; y < shape.height; ++y) {
    const float fy = static_cast<float>(y);
    for (int x = 0; x < shape.width; ++x) {
      const float fx = static_cast<float>(x);
      const BilinearTap tap = bilinearTap(op.affine[0] * fx + op.affine[1] * fy + op.affine[2],
                                          op.affine[3] * fx + op.affine[4] * fy + op.affine[5], shape.height, shape.width);
      const int index = y * shape.width + x;
      for (int c = 0; c < shape.channels; ++c) {
        const float* plane = in + c * planeSize;
        out[c * planeSize + index] = bit * sampleTap(plane, tap) + keep * plane[index];
      }
    }
  }
}

void applyImage(const OpParams& params, const float* in, float* out, ImageShape shape, float bit) {
  const size_t count = static_cast<size_t>(shape.channels) * shape.height * shape.width;
  if (params.kind == kIdentity || bit == 0.0f) {
    std::memcpy(out, in, count * sizeof(float));
    return;
  }
  const PreparedOp op = prepareOp(params, shape);
  if (isGeometric(op.kind)) return applyGeometric(op, in, out, shape, bit);
  StatsScratch scratch;
  const OpStats stats = computeStats(op, in, shape, scratch);
  switch (op.kind) {
#define DNA_CASE(K) \
  case K:           \
    return applyImageAs<K>(op, stats, in, out, shape, bit);
    DNA_CASE(kAutoContrast)
    DNA_CASE(kInvert)
    DNA_CASE(kEqualize)
    DNA_CASE(kSolarize)
    DNA_CASE(kPosterize)
    DNA_CASE(kContrast)
    DNA_CASE(kColor)
    DNA_CASE(kBrightness)
    DNA_CASE(kSharpness)
    DNA_CASE(kCutout)
#undef DNA_CASE
    default:
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

}  // namespace

void subPolicyForwardCpu(const SubPolicyBatch& batch) {
  const ImageShape shape = batch.shape;
  const int64_t imageSize = static_cast<int64_t>(shape.channels) * shape.height * shape.width;
  at::parallel_for(0, batch.batch, grainFor(shape), [&](int64_t begin, int64_t end) {
    std::vector<float> between(static_cast<size_t>(imageSize));  // x1, one image at a time
    for (int64_t i = begin; i < end; ++i) {
      const float* x0 = batch.input + i * imageSize;
      float* x1 = between.data();
      applyImage(opOf(batch, i, 0), x0, x1, shape, batch.bits[i * 2]);
      applyImage(opOf(batch, i, 1), x1, batch.output + i * imageSize, shape, batch.bits[i * 2 + 1]);
    }
  });
}

void subPolicyBackwardCpu(const SubPolicyBatch& batch, const SubPolicyGradient& gradient) {
  const ImageShape shape = batch.shape;
  const int64_t imageSize = static_cast<int64_t>(shape.channels) * shape.height * shape.width;
  at::parallel_for(0, batch.batch, grainFor(shape), [&](int64_t begin, int64_t end) {
    StatsScratch scratch;
    std::vector<float> between(static_cast<size_t>(imageSize));  // x1, one image at a time
    for (int64_t i = begin; i < end; ++i) {
      const float* x0 = batch.input + i * imageSize;
      const float* g = gradient.gradOutput + i * imageSize;
      float* x1 = between.data();
      double sums[kBackwardSumCount] = {0};
      const float bits[2] = {batch.bits[i * 2], batch.bits[i * 2 + 1]};
      const float* layerInput = x0;
      for (int layer = 0; layer < 2; ++layer) {
        const PreparedOp op = prepareOp(opOf(batch, i, layer), shape);
        const OpStats stats = computeStats(op, layerInput, shape, scratch);
        const bool exact = gradient.exact && hasDerivative(op.kind);
        double delta = 0.0, derivative = 0.0, gradSum = 0.0, gradDotInput = 0.0, gradDotOutput = 0.0;
        for (int c = 0; c < shape.channels; ++c) {
          for (int y = 0; y < shape.height; ++y) {
            for (int x = 0; x < shape.width; ++x) {
              const int64_t k = (static_cast<int64_t>(c) * shape.height + y) * shape.width + x;
              const float in = layerInput[k];
              const float out = op.kind == kIdentity ? in : applyPixel(op, stats, layerInput, shape, c, y, x);
              const float blended = bits[layer] * out + (1.0f - bits[layer]) * in;
              delta += static_cast<double>(g[k]) * (out - in);
              gradSum += g[k];
              gradDotInput += static_cast<double>(g[k]) * in;
              gradDotOutput += static_cast<double>(g[k]) * blended;
              if (exact) derivative += static_cast<double>(g[k]) * pixelDerivative(op, stats, layerInput, shape, c, y, x);
              if (layer == 0) x1[k] = blended;
            }
          }
        }
        if (layer == 0) {
          sums[kGradDotInput] = gradDotInput;
          sums[kGradSum] = gradSum;
          sums[kGradDotDelta1] = delta;
          sums[kGradDotDerivative1] = exact ? derivative : gradSum;
          layerInput = x1;
        } else {
          sums[kGradDotOutput] = gradDotOutput;
          sums[kGradDotDelta2] = delta;
          sums[kGradDotDerivative2] = exact ? derivative : gradSum;
        }
      }
      for (int k = 0; k < kBackwardSumCount; ++k) gradient.sums[i * kBackwardSumCount + k] = static_cast<float>(sums[k]);
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
