// CUDA launchers: one block per image, so that a block never diverges on the op choice; the
// math from ops.h. Per-image statistics (min/max, histograms, mean gray) are block reductions
// in shared memory.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "augment/kernels.h"

namespace dna {
namespace augment {

namespace {

constexpr int kThreads = 256;

struct SharedStats {
  int histogram[kMaxChannels * 256];
  uint8_t lut[kMaxChannels * 256];
  int low[kMaxChannels];
  int high[kMaxChannels];
  double reduce[kThreads];
};

__device__ double blockSum(double value, double* scratch) {
  scratch[threadIdx.x] = value;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) scratch[threadIdx.x] += scratch[threadIdx.x + stride];
    __syncthreads();
  }
  const double total = scratch[0];
  __syncthreads();
  return total;
}

// All threads of the block call this with the same op.
__device__ OpStats computeStats(const PreparedOp& op, const float* image, ImageShape shape, SharedStats& shared) {
  OpStats stats{};
  stats.lut = shared.lut;
  const int planeSize = shape.height * shape.width;
  const int count = shape.channels * planeSize;
  if (needsMinMax(op.kind)) {
    if (threadIdx.x < kMaxChannels) {
      shared.low[threadIdx.x] = 255;
      shared.high[threadIdx.x] = 0;
    }
    __syncthreads();
    for (int k = threadIdx.x; k < count; k += blockDim.x) {
      const int level = quantize(image[k]);
      atomicMin(&shared.low[k / planeSize], level);
      atomicMax(&shared.high[k / planeSize], level);
    }
    __syncthreads();
    if (threadIdx.x < shape.channels)
      autocontrastLut(shared.low[threadIdx.x], shared.high[threadIdx.x], shared.lut + threadIdx.x * 256);
    __syncthreads();
  }
  if (needsHistogram(op.kind)) {
    for (int k = threadIdx.x; k < kMaxChannels * 256; k += blockDim.x) shared.histogram[k] = 0;
    __syncthreads();
    for (int k = threadIdx.x; k < count; k += blockDim.x) {
      atomicAdd(&shared.histogram[(k / planeSize) * 256 + quantize(image[k])], 1);
    }
    __syncthreads();
    if (threadIdx.x < shape.channels) equalizeLut(shared.histogram + threadIdx.x * 256, shared.lut + threadIdx.x * 256);
    __syncthreads();
  }
  if (needsMeanGray(op.kind)) {
    double sum = 0.0;
    for (int i = threadIdx.x; i < planeSize; i += blockDim.x) {
      sum += shape.channels == 3 ? gray(image[i], image[planeSize + i], image[2 * planeSize + i]) : image[i];
    }
    stats.meanGray = static_cast<float>(blockSum(sum, shared.reduce) / planeSize);
  }
  return stats;
}

__device__ void applyImage(const OpParams& params, const float* in, float* out, ImageShape shape, float bit,
                           SharedStats& shared) {
  const int count = shape.channels * shape.height * shape.width;
  if (params.kind == kIdentity || bit == 0.0f) {
    for (int k = threadIdx.x; k < count; k += blockDim.x) out[k] = in[k];
    return;
  }
  const PreparedOp op = prepareOp(params, shape);
  const OpStats stats = computeStats(op, in, shape, shared);
  const int planeSize = shape.height * shape.width;
  for (int k = threadIdx.x; k < count; k += blockDim.x) {
    const int c = k / planeSize;
    const int y = (k % planeSize) / shape.width;
    const int x = k % shape.width;
    out[k] = bit * applyPixel(op, stats, in, shape, c, y, x) + (1.0f - bit) * in[k];
  }
}

__device__ OpParams opOf(const SubPolicyBatch& batch, int64_t image, int layer) {
  const int64_t k = image * 2 + layer;
  return OpParams{batch.kinds[k], batch.values[k], batch.noise[k * 2], batch.noise[k * 2 + 1]};
}

__global__ void subPolicyForwardKernel(SubPolicyBatch batch) {
  __shared__ SharedStats shared;
  const int64_t i = blockIdx.x;
  const int64_t imageSize = static_cast<int64_t>(batch.shape.channels) * batch.shape.height * batch.shape.width;
  const float* x0 = batch.input + i * imageSize;
  float* x1 = batch.between + i * imageSize;
  applyImage(opOf(batch, i, 0), x0, x1, batch.shape, batch.bits[i * 2], shared);
  __syncthreads();  // x1 is complete and visible to the whole block
  applyImage(opOf(batch, i, 1), x1, batch.output + i * imageSize, batch.shape, batch.bits[i * 2 + 1], shared);
}

__global__ void subPolicyBackwardKernel(SubPolicyBatch batch, SubPolicyGradient gradient) {
  __shared__ SharedStats shared;
  const int64_t i = blockIdx.x;
  const ImageShape shape = batch.shape;
  const int planeSize = shape.height * shape.width;
  const int count = shape.channels * planeSize;
  const float* x0 = batch.input + i * count;
  const float* g = gradient.gradOutput + i * count;
  float* x1 = batch.between + i * count;
  float* sums = gradient.sums + i * kBackwardSumCount;
  const float* layerInput = x0;
  for (int layer = 0; layer < 2; ++layer) {
    const PreparedOp op = prepareOp(opOf(batch, i, layer), shape);
    const float bit = batch.bits[i * 2 + layer];
    const OpStats stats = computeStats(op, layerInput, shape, shared);
    const bool exact = gradient.exact && hasDerivative(op.kind);
    double delta = 0.0, derivative = 0.0, gradSum = 0.0, gradDotInput = 0.0, gradDotOutput = 0.0;
    for (int k = threadIdx.x; k < count; k += blockDim.x) {
      const int c = k / planeSize;
      const int y = (k % planeSize) / shape.width;
      const int x = k % shape.width;
      const float in = layerInput[k];
      const float out = op.kind == kIdentity ? in : applyPixel(op, stats, layerInput, shape, c, y, x);
      const float blended = bit * out + (1.0f - bit) * in;
      delta += static_cast<double>(g[k]) * (out - in);
      gradSum += g[k];
      gradDotInput += static_cast<double>(g[k]) * in;
      gradDotOutput += static_cast<double>(g[k]) * blended;
      if (exact) derivative += static_cast<double>(g[k]) * pixelDerivative(op, stats, layerInput, shape, c, y, x);
      if (layer == 0) x1[k] = blended;
    }
    delta = blockSum(delta, shared.reduce);
    gradSum = blockSum(gradSum, shared.reduce);
    derivative = exact ? blockSum(derivative, shared.reduce) : gradSum;
    if (layer == 0) {
      gradDotInput = blockSum(gradDotInput, shared.reduce);
      if (threadIdx.x == 0) {
        sums[kGradDotInput] = static_cast<float>(gradDotInput);
        sums[kGradSum] = static_cast<float>(gradSum);
        sums[kGradDotDelta1] = static_cast<float>(delta);
        sums[kGradDotDerivative1] = static_cast<float>(derivative);
      }
      __syncthreads();  // x1 is complete before the second op reads it
      layerInput = x1;
    } else {
      gradDotOutput = blockSum(gradDotOutput, shared.reduce);
      if (threadIdx.x == 0) {
        sums[kGradDotOutput] = static_cast<float>(gradDotOutput);
        sums[kGradDotDelta2] = static_cast<float>(delta);
        sums[kGradDotDerivative2] = static_cast<float>(derivative);
      }
    }
  }
}

__global__ void preprocessKernel(PreprocessBatch batch) {
  const int64_t i = blockIdx.x;
  const ImageShape shape = batch.shape;
  const int planeSize = shape.height * shape.width;
  const int32_t* q = batch.params + i * 6;
  const PreprocessParams p{q[0], q[1], q[2], q[3], q[4], q[5]};
  const float* image = batch.input + i * shape.channels * planeSize;
  float* out = batch.output + i * shape.channels * planeSize;
  for (int k = threadIdx.x; k < shape.channels * planeSize; k += blockDim.x) {
    const int c = k / planeSize;
    const int y = (k % planeSize) / shape.width;
    const int x = k % shape.width;
    out[k] = preprocessPixel(p, image + c * planeSize, shape, x, y);
  }
}

void check(const char* what) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

}  // namespace

void subPolicyForwardCuda(const SubPolicyBatch& batch, void* stream) {
  if (batch.batch == 0) return;
  subPolicyForwardKernel<<<static_cast<unsigned>(batch.batch), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(batch);
  check("applySubPolicies (CUDA forward)");
}

void subPolicyBackwardCuda(const SubPolicyBatch& batch, const SubPolicyGradient& gradient, void* stream) {
  if (batch.batch == 0) return;
  subPolicyBackwardKernel<<<static_cast<unsigned>(batch.batch), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      batch, gradient);
  check("applySubPolicies (CUDA backward)");
}

void preprocessCuda(const PreprocessBatch& batch, void* stream) {
  if (batch.batch == 0) return;
  preprocessKernel<<<static_cast<unsigned>(batch.batch), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(batch);
  check("preprocess (CUDA)");
}

}  // namespace augment
}  // namespace dna
