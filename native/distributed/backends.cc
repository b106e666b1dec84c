// The one translation unit that includes c10d's backend headers: ProcessGroupGloo.hpp (which
// needs Gloo's headers: Debian's libgloo-dev; the torch 2.x wheels carry Gloo inside
// libtorch_cpu but ship no Gloo headers, so a 2.x build uses the same system headers) and, in
// CUDA builds that find nccl.h, ProcessGroupNCCL.hpp. c10d compiles those headers only under
// USE_C10D_GLOO / USE_C10D_NCCL, which LibTorch's CMake config does not pass on, so they are
// defined here, where the headers are found. A build without them still builds: asking for the
// backend then throws, naming the package to install.
#if __has_include(<gloo/config.h>) && !defined(DNA_NO_GLOO)
#define USE_C10D_GLOO 1
#define DNA_HAVE_GLOO 1
#endif
#if defined(DNA_WITH_CUDA) && __has_include(<nccl.h>) && !defined(DNA_NO_NCCL)
#define USE_C10D_NCCL 1
#define DNA_HAVE_NCCL 1
#endif
// scripts/check-cuda.mjs compiles this file to check the NCCL part: it must not pass without it.
#if defined(DNA_REQUIRE_NCCL) && !defined(DNA_HAVE_NCCL)
#error \
    "DNA_REQUIRE_NCCL: the NCCL backend is not compiled (a CUDA build, DNA_WITH_CUDA, with nccl.h on the include path)"
#endif

#include "distributed/collective_backend.h"

#include <torch/csrc/distributed/c10d/Types.hpp>

#ifdef DNA_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef DNA_HAVE_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <stdexcept>

namespace dna::distributed {

namespace {

c10d::ReduceOp reduceOp(Reduction reduction) {
  switch (reduction) {
    case Reduction::Max:
      return c10d::ReduceOp::MAX;
    case Reduction::Min:
      return c10d::ReduceOp::MIN;
    case Reduction::Sum:
      break;
  }
  return c10d::ReduceOp::SUM;
}

// Any c10d process-group type: ProcessGroupGloo and ProcessGroupNCCL derive from
// c10d::ProcessGroup in 1.13 and from c10d::Backend in 2.x, with the same collective methods.
template <typename Group>
class C10dBackend final : public CollectiveBackend {
 public:
  C10dBackend(c10::intrusive_ptr<Group> group, const char* name, bool onStream)
      : group_(std::move(group)), name_(name), onStream_(onStream) {}

  const char* name() const override { return name_; }
  bool completesOnStream() const override { return onStream_; }

  c10::intrusive_ptr<c10d::Work> allReduce(std::vector<at::Tensor>& tensors, Reduction reduction) override {
    c10d::AllreduceOptions options;
    options.reduceOp = reduceOp(reduction);
    return group_->allreduce(tensors, options);
  }
  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors, int root) override {
    c10d::BroadcastOptions options;
    options.rootRank = root;
    return group_->broadcast(tensors, options);
  }
  c10::intrusive_ptr<c10d::Work> barrier() override { return group_->barrier(c10d::BarrierOptions()); }

 private:
  c10::intrusive_ptr<Group> group_;
  const char* name_;
  bool onStream_;
};

}  // namespace

bool glooAvailable() {
#ifdef DNA_HAVE_GLOO
  return true;
#else
  return false;
#endif
}

bool ncclAvailable() {
#ifdef DNA_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

void requireBackend(const std::string& name) {
  if (name == "gloo" && !glooAvailable()) {
    throw std::runtime_error(
        "this build of dna-augment has no Gloo backend: its LibTorch's c10d needs Gloo's headers to build it "
        "(Debian: apt-get install libgloo-dev), then rebuild the addon (npm rebuild dna-augment)");
  }
  if (name == "nccl" && !ncclAvailable()) {
    throw std::runtime_error(
        "this build of dna-augment has no NCCL backend: that needs a CUDA build of the addon against a CUDA "
        "LibTorch, with NCCL's header nccl.h found (NCCL_INCLUDE_DIR); use backend 'gloo' meanwhile");
  }
}

std::unique_ptr<CollectiveBackend> makeGlooBackend(const c10::intrusive_ptr<c10d::Store>& store,
                                                   const BackendOptions& options) {
#ifdef DNA_HAVE_GLOO
  auto glooOptions = c10d::ProcessGroupGloo::Options::create(options.timeout);
  glooOptions->devices.push_back(options.gloo.interfaceName.empty()
                                     ? c10d::ProcessGroupGloo::createDeviceForHostname(options.gloo.address)
                                     : c10d::ProcessGroupGloo::createDeviceForInterface(options.gloo.interfaceName));
  auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, options.rank, options.worldSize, glooOptions);
  return std::make_unique<C10dBackend<c10d::ProcessGroupGloo>>(std::move(group), "gloo", false);
#else
  requireBackend("gloo");
  return nullptr;
#endif
}

std::unique_ptr<CollectiveBackend> makeNcclBackend(const c10::intrusive_ptr<c10d::Store>& store,
                                                   const BackendOptions& options) {
#ifdef DNA_HAVE_NCCL
  // NCCL works on the current device; each rank owns one.
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(options.cudaDevice));
  auto ncclOptions = c10d::ProcessGroupNCCL::Options::create();
  ncclOptions->timeout = options.timeout;
  auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, options.rank, options.worldSize, ncclOptions);
  return std::make_unique<C10dBackend<c10d::ProcessGroupNCCL>>(std::move(group), "nccl", true);
#else
  requireBackend("nccl");
  return nullptr;
#endif
}

}  // namespace dna::distributed
