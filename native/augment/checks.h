// Input checks of the augmentation engine, apart from the math: shapes, devices, dtypes, finite
// values, and the images as the kernels take them. Each throws ArgumentError naming the input.
#pragma once

#include <ATen/core/Tensor.h>

#include <initializer_list>

namespace dna {
namespace augment {

void expectShape(const at::Tensor& t, const char* name, std::initializer_list<int64_t> shape);
void expectDevice(const at::Tensor& t, const char* name, const at::Tensor& images);
void expectFloating(const at::Tensor& t, const char* name);
// Checks of values, not of shapes, are made on CPU tensors only: there they cost no
// synchronisation, and on a GPU the kernels are safe with any kind and value (an unknown kind is
// the identity, NaN values give no out-of-range index), so a GPU step never waits for them.
void expectFinite(const at::Tensor& t, const char* name);

// Images as the kernels want them: float32, contiguous, NCHW with 1 or 3 channels, at most
// 32768 pixels a side. uint8 images are scaled from [0, 255].
at::Tensor kernelImages(const at::Tensor& images);

// The search space's tables: kinds [S, 2] int32 (in [-1, kOpKindCount) on the CPU), ranges [S, 2, 2] floating.
void checkTables(const at::Tensor& kindsTable, const at::Tensor& ranges);

}  // namespace augment
}  // namespace dna
