// The CPU tensor allocator, registered as LibTorch's CPU allocator (c10::SetCPUAllocator).
//
// Why: with glibc's malloc, batches of megabytes live in the brk heap (its mmap threshold adapts
// up to 32 MiB) among small allocations. Once a small allocation lands after a freed batch, the
// batch's space can only serve smaller requests, and the next batch of the same size extends
// the heap: a loop of the fused op grew by 600 MB per 100 calls and ran up to 4x slower (fresh
// pages faulted in on every call) in most processes, and stayed flat in others, by the layout.
// glibc's posix_memalign, which LibTorch's own allocator uses, adds to it: the slack it splits
// off around each block stays behind as small free chunks (the heap grew 0.7 MB per 100 calls
// with only small tensors in it).
//
// What: an allocation of kMappingThreshold bytes or more gets a mapping of its own (mmap), its
// size rounded up to one of four sizes per power of two. A freed mapping goes to a cache and
// serves the next allocation of its size with its pages still resident: no page fault, no
// system call. This replaces the old mallopt tuning (M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD
// 1 GiB), which kept freed batches in the heap for the same reason. Rounding costs address space,
// not memory: the pages past a request are never touched. The cache keeps at most kCacheLimit
// bytes and gives back mappings that sat unused for kIdleRelease; a mapping given back is gone
// from the process, so nothing is left to fragment. Smaller allocations come from malloc,
// aligned here rather than by posix_memalign (and so does a large one the system will not map).
//
// Every allocation has a header in the 64 bytes (LibTorch's alignment, c10::gAlignment) before
// the data it returns, saying where it came from, so that one deleter frees both kinds; it is
// also the raw deleter that oneDNN's raw_allocate/raw_deallocate go through. The allocator is
// never destroyed: tensors are freed at process exit and by any thread (LibTorch's intra-op
// threads, a worker thread after its environment is gone). Tensors allocated before it was
// registered keep their own deleter.
#include "core/allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>
#include <torch/version.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "core/errors.h"

namespace dna {

namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kMappingThreshold = size_t{128} << 10;    // glibc's own default mmap threshold
constexpr size_t kCacheLimit = size_t{1} << 30;            // what the old trim threshold let glibc keep
constexpr std::chrono::milliseconds kIdleRelease{10'000};  // jemalloc's default decay time
// Far beyond any machine; keeps the size arithmetic below from overflowing.
constexpr size_t kLargestAllocation = size_t{1} << 48;

// Which path an allocation took ("dna heap", "dna mmap", "dna memo": a mapping in the cache).
constexpr uint64_t kHeapMagic = 0x7061656820616e64;
constexpr uint64_t kMappedMagic = 0x70616d6d20616e64;
constexpr uint64_t kCachedMagic = 0x6f6d656d20616e64;

using Clock = std::chrono::steady_clock;

// The 64 bytes before the data. A mapping's header is its first bytes; the links and the time
// are used while it is in the cache.
struct alignas(kAlignment) Header {
  uint64_t magic;
  size_t length;      // bytes of the mapping, or bytes taken from malloc
  void* mallocStart;  // what malloc returned (the header is aligned within it)
  Clock::time_point cachedAt;
  Header* olderInCache;
  Header* newerInCache;
  Header* olderOfSize;
  Header* newerOfSize;
};
static_assert(sizeof(Header) == kAlignment, "the header is one alignment unit");

void* dataOf(Header* header) { return reinterpret_cast<char*>(header) + sizeof(Header); }
Header* headerOf(void* data) { return reinterpret_cast<Header*>(static_cast<char*>(data) - sizeof(Header)); }

// Mapping sizes: four per power of two (1, 1.25, 1.5, 1.75 x 2^k); from the threshold up the
// step (2^(k-2)) is a multiple of the page. The class index addresses the cache's lists.
constexpr int kClasses = 256;
static_assert(kMappingThreshold >= (size_t{4} << 12), "mapping sizes are whole pages");
size_t mappingSize(size_t bytes) {
  const int log = 63 - __builtin_clzll(bytes);
  const size_t step = size_t{1} << (log - 2);
  return (bytes + step - 1) & ~(step - 1);
}
int classOf(size_t size) {
  const int log = 63 - __builtin_clzll(size);
  return 4 * log + static_cast<int>((size >> (log - 2)) & 3);
}

class TensorAllocator final : public c10::Allocator {
 public:
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  // LibTorch 2.3 made allocate() non-const and added copy_data().
  c10::DataPtr allocate(size_t bytes) override { return allocateData(bytes); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#else
  c10::DataPtr allocate(size_t bytes) const override { return allocateData(bytes); }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  static TensorAllocator& instance() {
    // Never destroyed: tensors may be freed during and after static destruction.
    static TensorAllocator* const allocator = new TensorAllocator();
    return *allocator;
  }

  TensorAllocatorStats stats() {
    TensorAllocatorStats s{};
    s.allocator = "dna";
    s.mappingThreshold = kMappingThreshold;
    s.cacheLimit = kCacheLimit;
    s.idleReleaseMs = static_cast<uint64_t>(kIdleRelease.count());
    s.heapInUse = heapInUse_.load(std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mutex_);
    s.mappedInUse = mappedInUse_;
    s.mappedCached = mappedCached_;
    s.mappedPeak = mappedPeak_;
    s.mappings = mappings_;
    s.reuses = reuses_;
    s.releases = releases_;
    return s;
  }

 private:
  c10::DataPtr allocateData(size_t bytes) const {
    // const only for LibTorch 1.x's signature: the state it changes is the process's.
    void* data = const_cast<TensorAllocator*>(this)->allocateBytes(bytes);
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  void* allocateBytes(size_t bytes) {
    if (bytes == 0) return nullptr;
    TORCH_CHECK_WITH(OutOfMemoryError, bytes <= kLargestAllocation, "tried to allocate ", bytes,
                     " bytes on the CPU, more than any machine has");
    if (bytes + sizeof(Header) < kMappingThreshold) return allocateFromHeap(bytes);
    return allocateMapping(bytes);
  }

  void* allocateFromHeap(size_t bytes) {
    // malloc's blocks are 16-byte aligned: up to 48 bytes more find a 64-byte boundary.
    const size_t length = bytes + sizeof(Header) + kAlignment - 16;
    void* start = std::malloc(length);
    TORCH_CHECK_WITH(OutOfMemoryError, start != nullptr, "tried to allocate ", bytes, " bytes on the CPU");
    auto* header =
        reinterpret_cast<Header*>((reinterpret_cast<uintptr_t>(start) + kAlignment - 1) & ~uintptr_t{kAlignment - 1});
    header->magic = kHeapMagic;
    header->length = length;
    header->mallocStart = start;
    heapInUse_.fetch_add(length, std::memory_order_relaxed);
    return dataOf(header);
  }

  void* allocateMapping(size_t bytes) {
    const size_t size = mappingSize(bytes + sizeof(Header));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Header* header = newestOfClass_[classOf(size)];
      if (header != nullptr) {
        unlinkCached(header);
        header->magic = kMappedMagic;
        mappedInUse_ += size;
        ++reuses_;
        return dataOf(header);
      }
    }
    void* memory = mapPages(size);
    if (memory == nullptr) {
      // The cache may hold the memory (or the address space) this needs: give it all back and
      // try once more; then malloc, which can still grow its heap where the process has run out
      // of mappings (vm.max_map_count) and fails with an out-of-memory error otherwise.
      releaseCached([](const Header*) { return true; });
      memory = mapPages(size);
      if (memory == nullptr) return allocateFromHeap(bytes);
    }
    auto* header = static_cast<Header*>(memory);
    header->magic = kMappedMagic;
    header->length = size;
    std::lock_guard<std::mutex> lock(mutex_);
    mappedInUse_ += size;
    mappedPeak_ = std::max(mappedPeak_, mappedInUse_ + mappedCached_);
    ++mappings_;
    return dataOf(header);
  }

  static void* mapPages(size_t size) {
    void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return memory == MAP_FAILED ? nullptr : memory;
  }

  // The deleter of every DataPtr this allocator makes. Never throws: LibTorch calls it from
  // destructors.
  static void release(void* data) noexcept {
    if (data == nullptr) return;
    Header* header = headerOf(data);
    if (header->magic == kHeapMagic) {
      instance().heapInUse_.fetch_sub(header->length, std::memory_order_relaxed);
      header->magic = 0;
      std::free(header->mallocStart);
    } else if (header->magic == kMappedMagic) {
      instance().cacheMapping(header);
    }
    // Anything else was not allocated here (a raw allocation from before registration) or is
    // already in the cache (freed twice): left alone.
  }

  void cacheMapping(Header* header) noexcept {
    Header* released = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      mappedInUse_ -= header->length;
      if (header->length > kCacheLimit) {
        released = pushReleased(released, header);
      } else {
        // Room for it by giving back the mappings unused for longest.
        while (mappedCached_ + header->length > kCacheLimit) released = pushReleased(released, unlinkCached(oldest_));
        const bool wasEmpty = oldest_ == nullptr;
        linkCached(header);
        if (wasEmpty) wakeTrimmer();
      }
    }
    unmapReleased(released);
  }

  // Gives back the cached mappings `which` selects, oldest first, up to the first it keeps.
  template <typename Which>
  void releaseCached(Which which) noexcept {
    Header* released = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (oldest_ != nullptr && which(oldest_)) released = pushReleased(released, unlinkCached(oldest_));
    }
    unmapReleased(released);
  }

  // Mappings to give back are unlinked under the lock and unmapped after it (unmapping
  // megabytes takes long enough to hold up the threads that free); meanwhile they chain through
  // olderInCache. Requires mutex_.
  Header* pushReleased(Header* list, Header* header) {
    header->magic = 0;
    header->olderInCache = list;
    ++releases_;
    return header;
  }

  static void unmapReleased(Header* list) noexcept {
    while (list != nullptr) {
      Header* next = list->olderInCache;
      munmap(list, list->length);
      list = next;
    }
  }

  // The cache: every mapping in one list by the time it was freed (for the limit and the idle
  // release, oldest first) and in one list per size (for reuse, newest first: its pages are the
  // likeliest to be in the CPU's caches). Requires mutex_.
  void linkCached(Header* header) {
    header->magic = kCachedMagic;
    header->cachedAt = Clock::now();
    header->olderInCache = newest_;
    header->newerInCache = nullptr;
    (newest_ != nullptr ? newest_->newerInCache : oldest_) = header;
    newest_ = header;
    Header*& newestOfSize = newestOfClass_[classOf(header->length)];
    header->olderOfSize = newestOfSize;
    header->newerOfSize = nullptr;
    if (newestOfSize != nullptr) newestOfSize->newerOfSize = header;
    newestOfSize = header;
    mappedCached_ += header->length;
  }

  // Requires mutex_.
  Header* unlinkCached(Header* header) {
    (header->newerInCache != nullptr ? header->newerInCache->olderInCache : newest_) = header->olderInCache;
    (header->olderInCache != nullptr ? header->olderInCache->newerInCache : oldest_) = header->newerInCache;
    (header->newerOfSize != nullptr ? header->newerOfSize->olderOfSize : newestOfClass_[classOf(header->length)]) =
        header->olderOfSize;
    if (header->olderOfSize != nullptr) header->olderOfSize->newerOfSize = header->newerOfSize;
    mappedCached_ -= header->length;
    return header;
  }

  // A thread gives back the mappings left unused for kIdleRelease, so that a process that stops
  // allocating (or changes its sizes) does not keep the cache. It starts with the first cached
  // mapping and sleeps until the oldest falls due, or while the cache is empty, until it is not.
  // Requires mutex_.
  void wakeTrimmer() {
    if (trimmerStarted_) {
      trimmerWake_.notify_one();
      return;
    }
    trimmerStarted_ = true;
    try {
      std::thread([this] { trimWhenIdle(); }).detach();
    } catch (const std::exception&) {
      // No thread to be had (a process at its limit): the cache is still bounded by kCacheLimit.
    }
  }

  [[noreturn]] void trimWhenIdle() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      if (oldest_ == nullptr) {
        trimmerWake_.wait(lock);
        continue;
      }
      const Clock::time_point now = Clock::now();
      if (now < oldest_->cachedAt + kIdleRelease) {
        trimmerWake_.wait_until(lock, oldest_->cachedAt + kIdleRelease);
        continue;
      }
      Header* released = nullptr;
      while (oldest_ != nullptr && oldest_->cachedAt + kIdleRelease <= now)
        released = pushReleased(released, unlinkCached(oldest_));
      lock.unlock();
      unmapReleased(released);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable trimmerWake_;
  bool trimmerStarted_ = false;
  Header* newest_ = nullptr;
  Header* oldest_ = nullptr;
  Header* newestOfClass_[kClasses] = {};
  size_t mappedInUse_ = 0;
  size_t mappedCached_ = 0;
  size_t mappedPeak_ = 0;
  uint64_t mappings_ = 0;
  uint64_t reuses_ = 0;
  uint64_t releases_ = 0;
  std::atomic<size_t> heapInUse_{0};
};

// The allocator once registered; null while LibTorch's own is in use.
std::atomic<TensorAllocator*> registered{nullptr};

const char* install() {
  const char* setting = std::getenv("DNA_CPU_ALLOCATOR");
  const std::string choice = setting == nullptr ? "" : setting;
  if (choice == "libtorch") return "libtorch";
  if (!choice.empty() && choice != "dna") {
    throw ArgumentError(
        "DNA_CPU_ALLOCATOR must be dna (the default) or libtorch (LibTorch's own: glibc's malloc), not '" + choice +
        "'");
  }
  TensorAllocator& allocator = TensorAllocator::instance();
  // Priority above LibTorch's own registration (0), so that no later default replaces it.
  c10::SetCPUAllocator(&allocator, 1);
  if (c10::GetCPUAllocator() != &allocator) return "libtorch";
  registered.store(&allocator);
  return "dna";
}

}  // namespace

const char* installTensorAllocator() {
  static const char* const name = install();  // a throw leaves the decision to the next call
  return name;
}

TensorAllocatorStats tensorAllocatorStats() {
  if (TensorAllocator* allocator = registered.load()) return allocator->stats();
  TensorAllocatorStats none{};
  none.allocator = "libtorch";
  return none;
}

}  // namespace dna
