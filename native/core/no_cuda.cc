// The CPU-only build's side of core/cuda_support.h.
#include <stdexcept>

#include "core/cuda_support.h"
#include "core/errors.h"

namespace dna {

bool builtWithCuda() { return false; }

at::Generator makeCudaGenerator(c10::DeviceIndex, uint64_t) {
  throw ArgumentError("dna-augment was built without CUDA: no CUDA generator (rebuild against a CUDA LibTorch)");
}

}  // namespace dna
