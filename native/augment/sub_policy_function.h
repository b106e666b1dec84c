// The fused sub-policy op with its autograd function (SPEC 1.4): per image the sub-policy
// s = argmax c is applied with its bits and magnitudes; gradients flow into c, b and m by the
// straight-through rules, none into the images.
#pragma once

#include <ATen/core/Tensor.h>

namespace dna {
namespace augment {

// images [B, C, H, W] (kernel images), c [B, S], b and m [B, S, 2], the search space's tables
// kinds [S, 2] and ranges [S, 2, 2], noise [B, 2, 2]; all checked by the caller.
at::Tensor applySubPolicyFunction(const at::Tensor& images, const at::Tensor& c, const at::Tensor& b,
                                  const at::Tensor& m, const at::Tensor& kindsTable, const at::Tensor& ranges,
                                  const at::Tensor& noise, bool dadaBaseline, bool exactMagnitude);

}  // namespace augment
}  // namespace dna
