// The count of host reads (host_reads.h).
#include "core/host_reads.h"

#include <atomic>

namespace dna {

namespace {
std::atomic<int64_t> reads{0};
}  // namespace

void countHostRead() { reads.fetch_add(1, std::memory_order_relaxed); }
int64_t hostReads() { return reads.load(std::memory_order_relaxed); }

}  // namespace dna
