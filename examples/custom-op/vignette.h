// The vignette's math, written once for the CPU and the GPU: each pixel darkened by
// strength * r^2, where r is its distance from the image centre relative to the corners'
// (0 at the centre, 1 in the corners). Plain C++; no LibTorch, so nvcc compiles it alone.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define DNA_EXAMPLE_HOST_DEVICE __host__ __device__
#else
#define DNA_EXAMPLE_HOST_DEVICE
#endif

namespace dna_example {

DNA_EXAMPLE_HOST_DEVICE inline float vignette(float value, float strength, int y, int x, int height, int width) {
  const float cy = 0.5f * static_cast<float>(height - 1);
  const float cx = 0.5f * static_cast<float>(width - 1);
  const float dy = cy > 0.f ? (static_cast<float>(y) - cy) / cy : 0.f;
  const float dx = cx > 0.f ? (static_cast<float>(x) - cx) / cx : 0.f;
  const float factor = 1.f - strength * 0.5f * (dx * dx + dy * dy);
  return factor > 0.f ? value * factor : 0.f;
}

// The CUDA launcher (vignette.cu): images [batch, channels, height, width] and strength [batch],
// contiguous float32 on the GPU; `stream` is a cudaStream_t.
void vignetteCuda(const float* images, const float* strength, float* out, int64_t batch, int channels, int height,
                  int width, void* stream);

}  // namespace dna_example
