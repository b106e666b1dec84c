// Compiled only when the addon is built with CUDA (see CMakeLists.txt, binding.gyp).
#include "core/cuda_support.h"

#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

namespace dna {

namespace {

// A device index, or the current device for -1.
c10::DeviceIndex deviceOrCurrent(c10::DeviceIndex index) { return index < 0 ? c10::cuda::current_device() : index; }

}  // namespace

bool builtWithCuda() { return true; }

void* currentCudaStream(c10::DeviceIndex index) { return c10::cuda::getCurrentCUDAStream(index).stream(); }

void synchronizeCuda(c10::DeviceIndex index) { c10::cuda::getCurrentCUDAStream(deviceOrCurrent(index)).synchronize(); }

at::Generator makeCudaGenerator(c10::DeviceIndex index, uint64_t seed) {
  at::Generator generator = at::cuda::detail::createCUDAGenerator(deviceOrCurrent(index));
  generator.set_current_seed(seed);
  return generator;
}

at::Tensor uploadToCuda(const at::Tensor& host, c10::DeviceIndex index) {
  const c10::DeviceIndex device = deviceOrCurrent(index);
  const c10::cuda::CUDAGuard guard(device);
  // Page-locked staging, so that the copy can run while the host goes on (the host allocator keeps
  // the block until the copy that reads it is done).
  const at::Tensor pinned = host.is_pinned() ? host : host.pin_memory();
  const c10::cuda::CUDAStream copyStream = c10::cuda::getStreamFromPool(false, device);
  const c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(device);
  at::Tensor out;
  {
    const c10::cuda::CUDAStreamGuard onCopyStream(copyStream);
    out = pinned.to(at::Device(at::kCUDA, device), /*non_blocking=*/true);
  }
  // Work queued on the current stream from now on waits for the copy; the host does not.
  cudaEvent_t copied;
  C10_CUDA_CHECK(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming));
  C10_CUDA_CHECK(cudaEventRecord(copied, copyStream.stream()));
  C10_CUDA_CHECK(cudaStreamWaitEvent(compute.stream(), copied, 0));
  // Released once the copy is done.
  C10_CUDA_CHECK(cudaEventDestroy(copied));
  // The tensor was allocated for the copy stream and is used on the current one: its memory must
  // not be handed out again before the current stream is done with it.
  c10::cuda::CUDACachingAllocator::recordStream(out.storage().data_ptr(), compute);
  return out;
}

}  // namespace dna
