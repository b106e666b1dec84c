// A custom dna-augment transform: the operator dna_example::vignette, registered with LibTorch's
// dispatcher for the CPU and (when built with CUDA) the GPU. dna-augment loads this library
// with loadOpLibrary() and calls the operator on the images whose sub-policy selects it.
//
// A transform's schema is (Tensor images, Tensor magnitude) -> Tensor: images float32
// [B, C, H, W] in [0, 1], one magnitude per image (the value of the op's range), and the
// result a new float32 tensor of the images' shape on their device.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#if defined(DNA_EXAMPLE_WITH_CUDA)
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "vignette.h"

namespace dna_example {

namespace {

void checkInputs(const at::Tensor& images, const at::Tensor& strength) {
  TORCH_CHECK(images.dim() == 4 && images.scalar_type() == at::kFloat,
              "dna_example::vignette: images must be float32 [B, C, H, W]");
  TORCH_CHECK(strength.dim() == 1 && strength.size(0) == images.size(0) && strength.scalar_type() == at::kFloat,
              "dna_example::vignette: strength must be float32 [B]");
  TORCH_CHECK(strength.device() == images.device(),
              "dna_example::vignette: strength and images must be on the same device");
}

at::Tensor vignetteCpu(const at::Tensor& images, const at::Tensor& strength) {
  checkInputs(images, strength);
  const at::Tensor in = images.contiguous();
  const at::Tensor s = strength.contiguous();
  at::Tensor out = at::empty_like(in);
  const int64_t channels = in.size(1);
  const int height = static_cast<int>(in.size(2));
  const int width = static_cast<int>(in.size(3));
  const float* source = in.data_ptr<float>();
  const float* strengths = s.data_ptr<float>();
  float* target = out.data_ptr<float>();
  // One (image, channel) plane per task.
  at::parallel_for(0, in.size(0) * channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const float strength = strengths[plane / channels];
      const int64_t offset = plane * height * width;
      for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
          const int64_t k = offset + static_cast<int64_t>(y) * width + x;
          target[k] = vignette(source[k], strength, y, x, height, width);
        }
      }
    }
  });
  return out;
}

#if defined(DNA_EXAMPLE_WITH_CUDA)
at::Tensor vignetteGpu(const at::Tensor& images, const at::Tensor& strength) {
  checkInputs(images, strength);
  const c10::cuda::CUDAGuard guard(images.device());
  const at::Tensor in = images.contiguous();
  const at::Tensor s = strength.contiguous();
  at::Tensor out = at::empty_like(in);
  vignetteCuda(in.data_ptr<float>(), s.data_ptr<float>(), out.data_ptr<float>(), in.size(0),
               static_cast<int>(in.size(1)), static_cast<int>(in.size(2)), static_cast<int>(in.size(3)),
               c10::cuda::getCurrentCUDAStream().stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}
#endif

}  // namespace

TORCH_LIBRARY(dna_example, m) { m.def("vignette(Tensor images, Tensor strength) -> Tensor"); }

TORCH_LIBRARY_IMPL(dna_example, CPU, m) { m.impl("vignette", vignetteCpu); }

#if defined(DNA_EXAMPLE_WITH_CUDA)
TORCH_LIBRARY_IMPL(dna_example, CUDA, m) { m.impl("vignette", vignetteGpu); }
#endif

}  // namespace dna_example
