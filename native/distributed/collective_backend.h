// The communication backend of a process group (c10d's ProcessGroupGloo or ProcessGroupNCCL)
// behind one small interface. Only native/distributed/backends.cc includes the backends' headers
// (and through them Gloo's and NCCL's own); the rest of native/distributed/ starts collectives
// here and follows their c10d::Work. This keeps the heavy, version-dependent headers in one
// translation unit: 1.13's backends derive from c10d::ProcessGroup, 2.x's from c10d::Backend.
#pragma once

#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace dna::distributed {

enum class Reduction { Sum, Max, Min };

class CollectiveBackend {
 public:
  virtual ~CollectiveBackend() = default;
  // "gloo" or "nccl".
  virtual const char* name() const = 0;
  // Whether a finished collective's outputs are ready once work->wait() returned on the calling
  // thread (NCCL: wait() only makes the current CUDA stream wait, so the host never blocks);
  // otherwise (Gloo) the outputs are ready when the work's future completes, on a worker thread.
  virtual bool completesOnStream() const = 0;
  // Every rank must start the same collectives in the same order.
  virtual c10::intrusive_ptr<c10d::Work> allReduce(std::vector<at::Tensor>& tensors, Reduction reduction) = 0;
  virtual c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors, int root) = 0;
  virtual c10::intrusive_ptr<c10d::Work> barrier() = 0;
};

// How this rank's Gloo endpoint is chosen: a network interface (GLOO_SOCKET_IFNAME), else a
// hostname or address to bind to.
struct GlooEndpoint {
  std::string interfaceName;
  std::string address;
};

struct BackendOptions {
  int rank = 0;
  int worldSize = 1;
  std::chrono::milliseconds timeout{600000};
  GlooEndpoint gloo;
  // NCCL: the CUDA device this rank uses.
  int cudaDevice = 0;
};

// Whether this build has the backend (Gloo: LibTorch's c10d headers found Gloo's headers at
// compile time; NCCL: a CUDA build that found nccl.h).
bool glooAvailable();
bool ncclAvailable();
// Throws, saying what to install, when this build lacks the backend named "gloo" or "nccl".
void requireBackend(const std::string& name);

// The backends; both block until every rank has connected (or the timeout), so call them off
// Node's main thread. Without the backend in this build they throw, saying what to install.
std::unique_ptr<CollectiveBackend> makeGlooBackend(const c10::intrusive_ptr<c10d::Store>& store,
                                                   const BackendOptions& options);
std::unique_ptr<CollectiveBackend> makeNcclBackend(const c10::intrusive_ptr<c10d::Store>& store,
                                                   const BackendOptions& options);

}  // namespace dna::distributed
