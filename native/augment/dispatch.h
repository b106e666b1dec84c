// The fused kernels on tensors: the per-image parameters of a batch, and the forward and
// backward passes launched on the CPU or CUDA by the images' device (augment.cc).
#pragma once

#include <ATen/core/Tensor.h>

namespace dna {
namespace augment {

// The per-image op parameters of a batch, validated, as the kernels want them.
struct BatchParams {
  at::Tensor kinds;   // [B, 2] int32
  at::Tensor values;  // [B, 2] float32
  at::Tensor bits;    // [B, 2] float32
  at::Tensor noise;   // [B, 2, 2] float32
};

// The fused forward: per image, op 1 then op 2 with their bits (kernels.h).
at::Tensor runForward(const at::Tensor& images, const BatchParams& p);

// [B, kBackwardSumCount]: the per-image sums of the backward rules, given dL/dout.
at::Tensor backwardSums(const at::Tensor& images, const BatchParams& p, const at::Tensor& gradOutput, bool exact);

}  // namespace augment
}  // namespace dna
