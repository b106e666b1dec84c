// What the CUDA translation units provide. In a build without CUDA these report the absence
// clearly instead of leaving the functions undefined.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>

namespace dna {

// In a build without CUDA (the no_cuda.cc files): throws an ArgumentError saying that `what`
// needs a CUDA build.
[[noreturn]] void throwNoCuda(const char* what);

// Whether the addon was compiled with its CUDA kernels.
bool builtWithCuda();

// The current CUDA stream of a device, as a cudaStream_t.
void* currentCudaStream(c10::DeviceIndex index);

// Waits until the work queued on the device's current stream is done.
void synchronizeCuda(c10::DeviceIndex index);

// A copy of a CPU tensor on CUDA device `index` (-1: the current one) that does not make the host
// wait: through page-locked memory, on a stream of its own, with the current stream waiting for
// it (an event).
at::Tensor uploadToCuda(const at::Tensor& host, c10::DeviceIndex index);

// A seeded generator on the given CUDA device.
at::Generator makeCudaGenerator(c10::DeviceIndex index, uint64_t seed);

}  // namespace dna
