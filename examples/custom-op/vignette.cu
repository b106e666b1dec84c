// The vignette on the GPU: one thread per pixel, the math from vignette.h.
#include <cuda_runtime.h>

#include "vignette.h"

namespace dna_example {

namespace {

__global__ void vignetteKernel(const float* images, const float* strength, float* out, int64_t total, int channels,
                               int height, int width) {
  const int64_t plane = static_cast<int64_t>(height) * width;
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int x = static_cast<int>(k % width);
    const int y = static_cast<int>((k / width) % height);
    const int64_t image = k / (plane * channels);
    out[k] = vignette(images[k], strength[image], y, x, height, width);
  }
}

}  // namespace

void vignetteCuda(const float* images, const float* strength, float* out, int64_t batch, int channels, int height,
                  int width, void* stream) {
  const int64_t total = batch * channels * static_cast<int64_t>(height) * width;
  if (total == 0) return;
  const int threads = 256;
  const int64_t blocks = (total + threads - 1) / threads;
  vignetteKernel<<<static_cast<unsigned>(blocks < 65535 ? blocks : 65535), threads, 0,
                   static_cast<cudaStream_t>(stream)>>>(images, strength, out, total, channels, height, width);
}

}  // namespace dna_example
