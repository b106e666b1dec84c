// The CPU-only build's side of core/cuda_support.h and of the CUDA launchers: clear errors
// where CUDA would be needed (no CUDA tensor can exist in such a build, but the symbols must).
#include "augment/kernels.h"
#include "core/cuda_support.h"
#include "core/errors.h"

namespace dna {

namespace {
[[noreturn]] void noCuda(const char* what) {
  throw ArgumentError(std::string("dna-augment was built without CUDA: ") + what +
                      " needs a build against a CUDA LibTorch");
}
}  // namespace

bool builtWithCuda() { return false; }
void* currentCudaStream(c10::DeviceIndex) { noCuda("a CUDA stream"); }
at::Generator makeCudaGenerator(c10::DeviceIndex, uint64_t) { noCuda("a CUDA generator"); }
void synchronizeCuda(c10::DeviceIndex) { noCuda("synchronizing a CUDA device"); }

namespace augment {
void subPolicyForwardCuda(const SubPolicyBatch&, void*) { noCuda("the CUDA augmentation kernels"); }
void subPolicyBackwardCuda(const SubPolicyBatch&, const SubPolicyGradient&, void*) { noCuda("the CUDA augmentation kernels"); }
void preprocessCuda(const PreprocessBatch&, void*) { noCuda("the CUDA augmentation kernels"); }
}  // namespace augment

}  // namespace dna
