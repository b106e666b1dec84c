// Reads of tensor values by the host. On a GPU each one waits until the device has computed the
// value (a synchronisation that leaves the device idle); the addon makes every such read through
// these functions, so that a test can count them per training step. Reads that only ever happen
// on CPU tensors (checks guarded by `is_cpu()`) are not synchronisations and are not counted.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace dna {

void countHostRead();
// Host reads counted since the process started.
int64_t hostReads();

// t.item<T>(), counted.
template <typename T>
T readScalar(const at::Tensor& t) {
  countHostRead();
  return t.item<T>();
}

}  // namespace dna
