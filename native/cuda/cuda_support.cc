// Compiled only when the addon is built with CUDA (see CMakeLists.txt, binding.gyp).
#include "core/cuda_support.h"

#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

namespace dna {

bool builtWithCuda() { return true; }

void* currentCudaStream(c10::DeviceIndex index) { return c10::cuda::getCurrentCUDAStream(index).stream(); }

void synchronizeCuda(c10::DeviceIndex index) {
  const c10::DeviceIndex device = index < 0 ? c10::cuda::current_device() : index;
  c10::cuda::getCurrentCUDAStream(device).synchronize();
}

at::Generator makeCudaGenerator(c10::DeviceIndex index, uint64_t seed) {
  const c10::DeviceIndex device = index < 0 ? c10::cuda::current_device() : index;
  at::Generator generator = at::cuda::detail::createCUDAGenerator(device);
  generator.set_current_seed(seed);
  return generator;
}

}  // namespace dna
