// What the runtime is: LibTorch version, CUDA, threads.
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "core/allocator.h"
#include "core/args.h"
#include "core/async.h"
#include "core/cuda_support.h"
#include "core/errors.h"
#include "core/host_reads.h"
#include "core/registry.h"

namespace dna {

namespace {

void setNumber(Napi::Object& object, const char* name, uint64_t value) {
  object.Set(name, Napi::Number::New(object.Env(), static_cast<double>(value)));
}

}  // namespace

void registerRuntime(Napi::Object exports) {
  // Before any tensor exists; an unknown DNA_CPU_ALLOCATOR fails the import with its name.
  try {
    installTensorAllocator();
  } catch (...) {
    throw currentExceptionToJs(exports.Env(), "dna-augment");
  }
  exportFunction(exports, "backend", [](Args& a) {
    Napi::Object info = Napi::Object::New(a.env());
    info.Set("torch", Napi::String::New(a.env(), TORCH_VERSION));
    const bool built = builtWithCuda();
    const int64_t devices = built ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    info.Set("cuda", Napi::Boolean::New(a.env(), devices > 0));
    info.Set("cudaDevices", Napi::Number::New(a.env(), static_cast<double>(devices)));
    info.Set("cudaBuilt", Napi::Boolean::New(a.env(), built));
    info.Set("threads", Napi::Number::New(a.env(), at::get_num_threads()));
    info.Set("allocator", Napi::String::New(a.env(), tensorAllocatorStats().allocator));
    return info;
  });
  exportFunction(exports, "memoryStats", [](Args& a) {
    const TensorAllocatorStats stats = tensorAllocatorStats();
    Napi::Object info = Napi::Object::New(a.env());
    info.Set("allocator", Napi::String::New(a.env(), stats.allocator));
    setNumber(info, "mappingThresholdBytes", stats.mappingThreshold);
    setNumber(info, "mappedInUseBytes", stats.mappedInUse);
    setNumber(info, "mappedCachedBytes", stats.mappedCached);
    setNumber(info, "mappedPeakBytes", stats.mappedPeak);
    setNumber(info, "cacheLimitBytes", stats.cacheLimit);
    setNumber(info, "idleReleaseMs", stats.idleReleaseMs);
    setNumber(info, "heapInUseBytes", stats.heapInUse);
    setNumber(info, "mappings", stats.mappings);
    setNumber(info, "reuses", stats.reuses);
    setNumber(info, "releases", stats.releases);
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
