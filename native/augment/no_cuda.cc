// The CPU-only build's side of the CUDA launchers (kernels.h): a clear error if one were reached
// (no CUDA tensor can exist in such a build, but the symbols must).
#include "augment/kernels.h"
#include "core/cuda_support.h"

namespace dna {
namespace augment {

void subPolicyForwardCuda(const SubPolicyBatch&, void*) { throwNoCuda("the CUDA augmentation kernels"); }
void subPolicyBackwardCuda(const SubPolicyBatch&, const SubPolicyGradient&, void*) {
  throwNoCuda("the CUDA augmentation kernels");
}
void preprocessCuda(const PreprocessBatch&, void*) { throwNoCuda("the CUDA augmentation kernels"); }

}  // namespace augment
}  // namespace dna
