// Buckets for coalesced collectives: many small tensors (a network's gradients, parameters,
// buffers) travel as a few flat buffers of about 25 MB, as DDP's do. One collective per tensor
// would pay the per-message latency hundreds of times per step; one buffer for everything could
// not start before the last gradient is ready and doubles the peak memory.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace dna::distributed {

// Indices into the tensor list, in the order their values lie in the flat buffer.
struct Bucket {
  std::vector<size_t> members;
};

// Buckets of at most `capacityBytes` (a tensor larger than that gets a bucket of its own) in
// reverse order of the list, the order in which backward produces a network's gradients. A
// bucket holds one dtype on one device. Ranks with the same list (shapes and dtypes) get the
// same buckets, which is what makes their collectives match.
std::vector<Bucket> planBuckets(const std::vector<at::Tensor>& tensors, int64_t capacityBytes);

// The bucket's tensors, flattened and concatenated into a new contiguous 1-d tensor.
at::Tensor flattenBucket(const std::vector<at::Tensor>& tensors, const Bucket& bucket);

// Copies the flat buffer back into the bucket's tensors (in place, keeping their strides), after
// dividing it by `divisor` when that is not 1.
void unflattenBucket(at::Tensor flat, const std::vector<at::Tensor>& tensors, const Bucket& bucket, int64_t divisor);

}  // namespace dna::distributed
