// What the runtime is: LibTorch version, CUDA, threads.
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/cuda.h>
#include <torch/version.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cstdlib>
#include <cstring>

#include "core/args.h"
#include "core/async.h"
#include "core/cuda_support.h"
#include "core/errors.h"
#include "core/host_reads.h"
#include "core/registry.h"

namespace dna {

namespace {

// Batches of images are allocations of megabytes. With glibc's defaults, whether a freed batch
// stays in the heap for the next step or goes back to the kernel (so that the next step faults
// in fresh zeroed pages) depends on the order of other allocations: the same step ran at half
// speed in some runs, and two threads ran slower than one. Fixed thresholds keep blocks up to
// 32 MiB (glibc's own ceiling for its adaptive threshold) in the heap and stop trimming below
// 1 GiB. DNA_MALLOC_TUNING=0 keeps glibc's defaults.
bool tuneAllocator() {
#if defined(__GLIBC__)
  const char* setting = std::getenv("DNA_MALLOC_TUNING");
  if (setting != nullptr && std::strcmp(setting, "0") == 0) return false;
  const bool threshold = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  const bool trim = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  return threshold && trim;
#else
  return false;
#endif
}

}  // namespace

void registerRuntime(Napi::Object exports) {
  static const bool allocatorTuned = tuneAllocator();
  exportFunction(exports, "backend", [](Args& a) {
    Napi::Object info = Napi::Object::New(a.env());
    info.Set("torch", Napi::String::New(a.env(), TORCH_VERSION));
    const bool built = builtWithCuda();
    const int64_t devices = built ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    info.Set("cuda", Napi::Boolean::New(a.env(), devices > 0));
    info.Set("cudaDevices", Napi::Number::New(a.env(), static_cast<double>(devices)));
    info.Set("cudaBuilt", Napi::Boolean::New(a.env(), built));
    info.Set("threads", Napi::Number::New(a.env(), at::get_num_threads()));
    info.Set("allocatorTuned", Napi::Boolean::New(a.env(), allocatorTuned));
    return info;
  });
  // synchronize(device): waits for the work queued on a CUDA device; nothing to wait for on the CPU.
  exportFunction(exports, "synchronize", [](Args& a) {
    if (a.isMissing(0)) a.fail(0, "a device name (cpu, cuda, cuda:N)");
    const c10::Device device = a.device(0);
    if (device.is_cuda()) synchronizeCuda(device.index());
    return a.env().Undefined();
  });
  // hostReads(): the host reads of tensor values counted so far (core/host_reads.h).
  exportFunction(exports, "hostReads",
                 [](Args& a) { return Napi::Number::New(a.env(), static_cast<double>(hostReads())); });
  // tasksInFlight(): asynchronous calls submitted and not yet settled (core/async.h).
  exportFunction(exports, "tasksInFlight",
                 [](Args& a) { return Napi::Number::New(a.env(), static_cast<double>(tasksInFlight())); });
  exportFunction(exports, "setNumThreads", [](Args& a) {
    const int64_t threads = a.integer(0);
    if (threads < 1 || threads > 4096) throw ArgumentError("the number of threads must be between 1 and 4096");
    at::set_num_threads(static_cast<int>(threads));
    return a.env().Undefined();
  });
}

}  // namespace dna
