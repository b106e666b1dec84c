// The CPU-only build's side of core/cuda_support.h: clear errors where CUDA would be needed (no
// CUDA tensor can exist in such a build, but the symbols must).
#include <string>

#include "core/cuda_support.h"
#include "core/errors.h"

namespace dna {

void throwNoCuda(const char* what) {
  throw ArgumentError(std::string("dna-augment was built without CUDA: ") + what +
                      " needs a build against a CUDA LibTorch");
}

bool builtWithCuda() { return false; }
void* currentCudaStream(c10::DeviceIndex) { throwNoCuda("a CUDA stream"); }
at::Generator makeCudaGenerator(c10::DeviceIndex, uint64_t) { throwNoCuda("a CUDA generator"); }
void synchronizeCuda(c10::DeviceIndex) { throwNoCuda("synchronizing a CUDA device"); }
at::Tensor uploadToCuda(const at::Tensor&, c10::DeviceIndex) { throwNoCuda("a copy to a CUDA device"); }

}  // namespace dna
