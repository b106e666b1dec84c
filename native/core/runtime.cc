// What the runtime is: LibTorch version, CUDA, threads.
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "core/args.h"
#include "core/cuda_support.h"
#include "core/errors.h"
#include "core/registry.h"

namespace dna {

void registerRuntime(Napi::Object exports) {
  exportFunction(exports, "backend", [](Args& a) {
    Napi::Object info = Napi::Object::New(a.env());
    info.Set("torch", Napi::String::New(a.env(), TORCH_VERSION));
    const bool built = builtWithCuda();
    const int64_t devices = built ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    info.Set("cuda", Napi::Boolean::New(a.env(), devices > 0));
    info.Set("cudaDevices", Napi::Number::New(a.env(), static_cast<double>(devices)));
    info.Set("cudaBuilt", Napi::Boolean::New(a.env(), built));
    info.Set("threads", Napi::Number::New(a.env(), at::get_num_threads()));
    return info;
  });
  exportFunction(exports, "setNumThreads", [](Args& a) {
    const int64_t threads = a.integer(0);
    if (threads < 1 || threads > 4096) throw ArgumentError("the number of threads must be between 1 and 4096");
    at::set_num_threads(static_cast<int>(threads));
    return a.env().Undefined();
  });
}

}  // namespace dna
