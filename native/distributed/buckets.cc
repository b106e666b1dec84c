// Bucket planning, flattening and copying back for coalesced collectives (see buckets.h).
#include "distributed/buckets.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>

namespace dna::distributed {

std::vector<Bucket> planBuckets(const std::vector<at::Tensor>& tensors, int64_t capacityBytes) {
  struct Open {
    at::ScalarType dtype;
    c10::Device device;
    Bucket bucket;
    int64_t bytes;
  };
  std::vector<Open> open;
  std::vector<Bucket> planned;
  for (size_t k = tensors.size(); k-- > 0;) {
    const at::Tensor& tensor = tensors[k];
    const int64_t bytes = tensor.numel() * static_cast<int64_t>(tensor.element_size());
    auto same = std::find_if(open.begin(), open.end(), [&](const Open& o) {
      return o.dtype == tensor.scalar_type() && o.device == tensor.device();
    });
    if (same != open.end() && same->bytes + bytes > capacityBytes && !same->bucket.members.empty()) {
      planned.push_back(std::move(same->bucket));
      same->bucket = Bucket{};
      same->bytes = 0;
    }
    if (same == open.end()) {
      open.push_back(Open{tensor.scalar_type(), tensor.device(), Bucket{}, 0});
      same = open.end() - 1;
    }
    same->bucket.members.push_back(k);
    same->bytes += bytes;
  }
  for (Open& o : open) {
    if (!o.bucket.members.empty()) planned.push_back(std::move(o.bucket));
  }
  return planned;
}

at::Tensor flattenBucket(const std::vector<at::Tensor>& tensors, const Bucket& bucket) {
  at::NoGradGuard noGrad;
  std::vector<at::Tensor> pieces;
  pieces.reserve(bucket.members.size());
  for (size_t k : bucket.members) pieces.push_back(tensors[k].detach().reshape({-1}));
  return at::cat(pieces, 0);
}

void unflattenBucket(at::Tensor flat, const std::vector<at::Tensor>& tensors, const Bucket& bucket, int64_t divisor) {
  at::NoGradGuard noGrad;
  if (divisor != 1) flat.div_(divisor);
  int64_t offset = 0;
  for (size_t k : bucket.members) {
    at::Tensor target = tensors[k];
    const int64_t count = target.numel();
    target.detach().copy_(flat.narrow(0, offset, count).view(target.sizes()));
    offset += count;
  }
}

}  // namespace dna::distributed
