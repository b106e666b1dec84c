// Input checks of the augmentation engine (checks.h).
#include "augment/checks.h"

#include <ATen/ATen.h>

#include <string>

#include "augment/ops.h"
#include "core/args.h"
#include "core/errors.h"

namespace dna {
namespace augment {

void expectShape(const at::Tensor& t, const char* name, std::initializer_list<int64_t> shape) {
  bool ok = t.dim() == static_cast<int64_t>(shape.size());
  int64_t d = 0;
  for (int64_t size : shape) ok = ok && t.size(d++) == size;
  if (!ok)
    throw ArgumentError(std::string(name) + " must have shape " + shapeString(shape) + ", got " +
                        shapeString(t.sizes()));
}

void expectDevice(const at::Tensor& t, const char* name, const at::Tensor& images) {
  if (t.device() != images.device()) {
    throw ArgumentError(std::string(name) + " is on " + t.device().str() + " but the images are on " +
                        images.device().str());
  }
}

void expectFloating(const at::Tensor& t, const char* name) {
  if (!at::isFloatingType(t.scalar_type())) {
    throw ArgumentError(std::string(name) + " must be a floating-point tensor, got " + dtypeName(t.scalar_type()));
  }
}

void expectFinite(const at::Tensor& t, const char* name) {
  if (t.is_cpu() && !at::isfinite(t).all().item<bool>())
    throw ArgumentError(std::string(name) + " contains NaN or infinite values");
}

at::Tensor kernelImages(const at::Tensor& images) {
  if (images.dim() != 4)
    throw ArgumentError("images must be a 4-d tensor [B, C, H, W], got shape " + shapeString(images.sizes()));
  const int64_t channels = images.size(1);
  if (channels != 1 && channels != 3) {
    throw ArgumentError("images must have 1 or 3 channels, got " + std::to_string(channels) + " (shape " +
                        shapeString(images.sizes()) + ")");
  }
  if (images.size(2) == 0 || images.size(3) == 0)
    throw ArgumentError("images must not be empty, got shape " + shapeString(images.sizes()));
  if (images.size(2) > (1 << 15) || images.size(3) > (1 << 15))
    throw ArgumentError("images larger than 32768 pixels a side are not supported");
  if (images.scalar_type() == at::kByte) return images.to(at::kFloat).div_(255.0).contiguous();
  if (images.scalar_type() != at::kFloat) {
    throw ArgumentError(std::string("images must be float32 in [0, 1] or uint8, got ") +
                        dtypeName(images.scalar_type()));
  }
  return images.detach().contiguous();
}

void checkTables(const at::Tensor& kindsTable, const at::Tensor& ranges) {
  if (kindsTable.dim() != 2 || kindsTable.size(1) != 2 || kindsTable.scalar_type() != at::kInt) {
    throw ArgumentError("the sub-policy table must be an int32 tensor [S, 2], got " + shapeString(kindsTable.sizes()));
  }
  if (kindsTable.is_cpu() && kindsTable.numel() > 0) {
    const int64_t low = kindsTable.min().item<int64_t>();
    const int64_t high = kindsTable.max().item<int64_t>();
    if (low < kIdentity || high >= kOpKindCount) {
      throw ArgumentError("the sub-policy table holds an unknown op kind (" +
                          std::to_string(low < kIdentity ? low : high) + ")");
    }
  }
  expectShape(ranges, "the range table", {kindsTable.size(0), 2, 2});
  expectFloating(ranges, "the range table");
}

}  // namespace augment
}  // namespace dna
