// The CPU tensor allocator: where LibTorch's CPU tensors get their memory (allocator.cc says why
// not from glibc's malloc), and what it holds.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dna {

struct TensorAllocatorStats {
  // "dna" (this allocator) or "libtorch" (LibTorch's own: glibc's malloc).
  const char* allocator;
  // Allocations of at least this many bytes get mappings of their own; smaller ones come from malloc.
  size_t mappingThreshold;
  // Bytes of mappings held by live tensors, kept for reuse, and the most held at once (both together).
  size_t mappedInUse;
  size_t mappedCached;
  size_t mappedPeak;
  // The most the cache keeps, and how long a mapping may sit unused in it.
  size_t cacheLimit;
  uint64_t idleReleaseMs;
  // Bytes of live allocations below the threshold (from malloc).
  size_t heapInUse;
  // Mappings made, allocations served from the cache, mappings given back (idle, over the
  // limit or to retry a failed mapping).
  uint64_t mappings;
  uint64_t reuses;
  uint64_t releases;
};

// Makes this allocator LibTorch's CPU allocator, once per process (every Node environment calls
// it; the first call decides), unless DNA_CPU_ALLOCATOR=libtorch. Returns the allocator in use:
// "dna" or "libtorch". Throws ArgumentError for any other value of DNA_CPU_ALLOCATOR.
const char* installTensorAllocator();

TensorAllocatorStats tensorAllocatorStats();

}  // namespace dna
