// Process groups for data-parallel runs, exported to JS: joining a group through a TCPStore
// rendezvous (off the main thread), collectives that resolve Promises, gradient averaging in
// buckets, and hosting a rendezvous store (for the launcher). Every collective is started here,
// on Node's main thread, so ranks that call the same JS functions in the same order start the
// same collectives in the same order; their completion comes back through completion.h.
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/args.h"
#include "core/errors.h"
#include "core/handle_class.h"
#include "core/registry.h"
#include "distributed/buckets.h"
#include "distributed/collective_backend.h"
#include "distributed/completion.h"
#include "distributed/failures.h"
#include "nn/options.h"

namespace dna {

namespace {

using distributed::Bucket;
using distributed::CollectiveBackend;
using distributed::Completion;
using distributed::Reduction;

// What a joined group holds. The prefix store keeps the TCPStore alive (and with it the store's
// server, on the rank that hosts it).
struct GroupState {
  int rank = 0;
  int worldSize = 1;
  std::chrono::milliseconds timeout{0};
  std::string backendName;
  c10::intrusive_ptr<c10d::Store> store;
  std::unique_ptr<CollectiveBackend> backend;
};

constexpr napi_type_tag kGroupTag = {0x7a1d4c2e9b6f3058ULL, 0xe2c95b17d04a6f83ULL};
constexpr napi_type_tag kStoreTag = {0x3f86a0d45c1e97b2ULL, 0x91b2e7c4068d5af3ULL};

class ProcessGroupHandle : public Napi::ObjectWrap<ProcessGroupHandle> {
 public:
  static void define(Napi::Env env) {
    HandleClass<ProcessGroupHandle>::remember(env, DefineClass(env, "NativeProcessGroup", {}));
  }
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<GroupState> state) {
    Napi::Object object = HandleClass<ProcessGroupHandle>::instance(env);
    object.TypeTag(&kGroupTag);
    Unwrap(object)->state_ = std::move(state);
    return object;
  }
  static ProcessGroupHandle* unwrap(Napi::Value value) {
    if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kGroupTag)) return nullptr;
    return Unwrap(value.As<Napi::Object>());
  }

  explicit ProcessGroupHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroupHandle>(info) {}

  const std::shared_ptr<GroupState>& state() const { return state_; }
  std::shared_ptr<GroupState> release() { return std::move(state_); }

 private:
  // Collected without destroy(): no collective is in flight (each one references this handle
  // until it settles), so the backend's worker threads are idle and stop at once.
  std::shared_ptr<GroupState> state_;
};

class StoreHandle : public Napi::ObjectWrap<StoreHandle> {
 public:
  static void define(Napi::Env env) { HandleClass<StoreHandle>::remember(env, DefineClass(env, "NativeStore", {})); }
  static Napi::Object wrap(Napi::Env env, c10::intrusive_ptr<c10d::TCPStore> store) {
    Napi::Object object = HandleClass<StoreHandle>::instance(env);
    object.TypeTag(&kStoreTag);
    Unwrap(object)->store_ = std::move(store);
    return object;
  }
  static StoreHandle* unwrap(Napi::Value value) {
    if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kStoreTag)) return nullptr;
    return Unwrap(value.As<Napi::Object>());
  }

  explicit StoreHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StoreHandle>(info) {}
  c10::intrusive_ptr<c10d::TCPStore>& store() { return store_; }

 private:
  c10::intrusive_ptr<c10d::TCPStore> store_;
};

// Argument i as a live group: its JS object (kept referenced while collectives run) and state.
std::pair<Napi::Object, std::shared_ptr<GroupState>> groupArg(Args& a, size_t i) {
  ProcessGroupHandle* handle = i < a.size() ? ProcessGroupHandle::unwrap(a[i]) : nullptr;
  if (handle == nullptr) a.fail(i, "a process group");
  if (handle->state() == nullptr) throw ArgumentError("the process group was destroyed");
  return {a[i].As<Napi::Object>(), handle->state()};
}

std::string rankText(const GroupState& state) {
  return "rank " + std::to_string(state.rank) + " of " + std::to_string(state.worldSize);
}

int64_t bucketBytesArg(Args& a, size_t i) {
  const int64_t bytes = a.integer(i);
  if (bytes < 1) throw ArgumentError("the bucket size must be at least 1 byte");
  return bytes;
}

void checkTensors(const GroupState& state, const std::vector<at::Tensor>& tensors, bool floatingOnly) {
  for (size_t k = 0; k < tensors.size(); ++k) {
    const at::Tensor& t = tensors[k];
    if (t.is_sparse())
      throw ArgumentError("tensor " + std::to_string(k) + " is sparse; collectives take dense tensors");
    if (floatingOnly && !at::isFloatingType(t.scalar_type())) {
      throw ArgumentError("averaging needs floating-point tensors; tensor " + std::to_string(k) + " is " +
                          dtypeName(t.scalar_type()));
    }
    if (state.backendName == "nccl" && !t.is_cuda()) {
      throw ArgumentError("the NCCL backend takes CUDA tensors; tensor " + std::to_string(k) + " is on the CPU");
    }
  }
}

using StartCollective = std::function<c10::intrusive_ptr<c10d::Work>(std::vector<at::Tensor>&)>;

// Starts `collective` on each bucket of `tensors` (flattened copies) and, when each finishes,
// copies the result back into the tensors (divided by `divisor`). Returns the Promise.
Napi::Value startCoalesced(Napi::Env env, Napi::Object handle, const std::shared_ptr<GroupState>& state,
                           const std::string& where, std::vector<at::Tensor> tensors, int64_t bucketBytes,
                           const StartCollective& collective, int64_t divisor) {
  auto completion = Completion::create(env, handle, where + " (" + rankText(*state) + ")", state->timeout);
  const bool onStream = state->backend->completesOnStream();
  auto shared = std::make_shared<const std::vector<at::Tensor>>(std::move(tensors));
  try {
    for (Bucket& bucket : distributed::planBuckets(*shared, bucketBytes)) {
      std::vector<at::Tensor> flat{distributed::flattenBucket(*shared, bucket)};
      c10::intrusive_ptr<c10d::Work> work = collective(flat);
      completion->follow(work, onStream, [shared, bucket = std::move(bucket), flat, divisor]() {
        distributed::unflattenBucket(flat[0], *shared, bucket, divisor);
      });
    }
  } catch (const std::exception& e) {
    completion->fail(e.what());
  } catch (...) {
    completion->fail("unknown error");
  }
  completion->seal();
  return completion->promise();
}

struct JoinRequest {
  int rank = 0;
  int worldSize = 1;
  std::string storeHost;
  int storePort = 0;
  bool hostStore = false;
  std::string storePrefix;
  std::chrono::milliseconds timeout{0};
  std::string backend;
  distributed::BackendOptions backendOptions;
};

JoinRequest readJoinRequest(Napi::Value value) {
  OptionsReader o(value, "options");
  JoinRequest r;
  const int64_t worldSize = o.integer("worldSize");
  o.require(worldSize >= 1 && worldSize <= 65536, "worldSize", "an integer in 1..65536",
            static_cast<double>(worldSize));
  const int64_t rank = o.integer("rank");
  o.require(rank >= 0 && rank < worldSize, "rank", "an integer in 0..worldSize-1", static_cast<double>(rank));
  const int64_t port = o.integer("storePort");
  o.require(port >= 0 && port <= 65535, "storePort", "a port number in 0..65535", static_cast<double>(port));
  const int64_t timeoutMs = o.integer("timeoutMs");
  o.require(timeoutMs >= 1, "timeoutMs", "a positive number of milliseconds", static_cast<double>(timeoutMs));
  r.rank = static_cast<int>(rank);
  r.worldSize = static_cast<int>(worldSize);
  r.storeHost = o.string("storeHost", "");
  if (r.storeHost.empty()) throw ArgumentError("options.storeHost must be a host name or address");
  r.storePort = static_cast<int>(port);
  r.hostStore = o.boolean("hostStore", false);
  if (!r.hostStore && port == 0)
    throw ArgumentError("options.storePort may be 0 only for the rank that hosts the store");
  r.storePrefix = o.string("storePrefix", "dna");
  r.timeout = std::chrono::milliseconds(timeoutMs);
  r.backend = o.string("backend", "gloo");
  if (r.backend != "gloo" && r.backend != "nccl")
    throw ArgumentError("options.backend must be 'gloo' or 'nccl', got '" + r.backend + "'");
  r.backendOptions.rank = r.rank;
  r.backendOptions.worldSize = r.worldSize;
  r.backendOptions.timeout = r.timeout;
  r.backendOptions.gloo.interfaceName = o.string("glooInterface", "");
  r.backendOptions.gloo.address = o.string("glooAddress", "");
  if (r.backend == "gloo" && r.backendOptions.gloo.interfaceName.empty() && r.backendOptions.gloo.address.empty()) {
    throw ArgumentError("options.glooInterface or options.glooAddress must say where this rank listens");
  }
  r.backendOptions.cudaDevice = static_cast<int>(o.integer("cudaDevice", 0));
  return r;
}

// Joins the group off the main thread: connecting to (or hosting) the store and forming the
// backend's connections both block until every rank is there, or the timeout.
class JoinWorker : public Napi::AsyncWorker {
 public:
  JoinWorker(Napi::Env env, JoinRequest request)
      : Napi::AsyncWorker(env, "dna-distributed-join"),
        deferred_(Napi::Promise::Deferred::New(env)),
        request_(std::move(request)) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    const JoinRequest& r = request_;
    auto stage = r.hostStore ? distributed::JoinStage::HostStore : distributed::JoinStage::ConnectStore;
    try {
      c10d::TCPStoreOptions storeOptions;
      storeOptions.port = static_cast<std::uint16_t>(r.storePort);
      storeOptions.isServer = r.hostStore;
      storeOptions.waitWorkers = false;
      storeOptions.timeout = r.timeout;
      auto tcpStore = c10::make_intrusive<c10d::TCPStore>(r.storeHost, storeOptions);
      stage = distributed::JoinStage::JoinGroup;
      auto state = std::make_shared<GroupState>();
      state->rank = r.rank;
      state->worldSize = r.worldSize;
      state->timeout = r.timeout;
      state->backendName = r.backend;
      state->store = c10::make_intrusive<c10d::PrefixStore>(r.storePrefix, tcpStore);
      state->backend = r.backend == "nccl" ? distributed::makeNcclBackend(state->store, r.backendOptions)
                                           : distributed::makeGlooBackend(state->store, r.backendOptions);
      state_ = std::move(state);
    } catch (const std::exception& e) {
      fail(stage, e.what());
    } catch (...) {
      fail(stage, "unknown error");
    }
  }

  void OnOK() override { deferred_.Resolve(ProcessGroupHandle::wrap(Env(), std::move(state_))); }
  void OnError(const Napi::Error&) override { deferred_.Reject(distributed::toJsError(Env(), failure_).Value()); }

 private:
  void fail(distributed::JoinStage stage, const std::string& raw) {
    const std::string context = "initDistributed (rank " + std::to_string(request_.rank) + " of " +
                                std::to_string(request_.worldSize) + ", store " + request_.storeHost + ":" +
                                std::to_string(request_.storePort) + ")";
    failure_ = distributed::explainJoinFailure(context, stage, raw, request_.timeout);
    SetError(failure_.message);
  }

  Napi::Promise::Deferred deferred_;
  JoinRequest request_;
  std::shared_ptr<GroupState> state_;
  distributed::Failure failure_;
};

// Releases a group off the main thread: the backend's destructor joins its worker threads,
// which finish the collectives still queued first.
class DestroyWorker : public Napi::AsyncWorker {
 public:
  DestroyWorker(Napi::Env env, std::shared_ptr<GroupState> state)
      : Napi::AsyncWorker(env, "dna-distributed-destroy"),
        deferred_(Napi::Promise::Deferred::New(env)),
        state_(std::move(state)) {}
  Napi::Promise promise() const { return deferred_.Promise(); }
  void Execute() override {
    try {
      state_.reset();
    } catch (const std::exception& e) {
      SetError(std::string("destroy: ") + distributed::essentialMessage(e.what()));
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<GroupState> state_;
};

Reduction parseReduction(const std::string& name, bool* average) {
  *average = name == "average";
  if (name == "sum" || name == "average") return Reduction::Sum;
  if (name == "max") return Reduction::Max;
  if (name == "min") return Reduction::Min;
  throw ArgumentError("the reduction must be 'sum', 'average', 'max' or 'min', got '" + name + "'");
}

}  // namespace

void registerDistributed(Napi::Object exports) {
  ProcessGroupHandle::define(exports.Env());
  StoreHandle::define(exports.Env());

  // distributedBackends(): which backends this build has.
  exportFunction(exports, "distributedBackends", [](Args& a) {
    Napi::Object info = Napi::Object::New(a.env());
    info.Set("gloo", Napi::Boolean::New(a.env(), distributed::glooAvailable()));
    info.Set("nccl", Napi::Boolean::New(a.env(), distributed::ncclAvailable()));
    return info;
  });

  // distributedJoin(options) -> Promise<group>.
  exportFunction(exports, "distributedJoin", [](Args& a) {
    JoinRequest request = readJoinRequest(a[0]);
    distributed::requireBackend(request.backend);
    auto* worker = new JoinWorker(a.env(), std::move(request));
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  });

  exportFunction(exports, "distributedGroupInfo", [](Args& a) {
    ProcessGroupHandle* handle = a.size() > 0 ? ProcessGroupHandle::unwrap(a[0]) : nullptr;
    if (handle == nullptr) a.fail(0, "a process group");
    Napi::Object info = Napi::Object::New(a.env());
    const auto& state = handle->state();
    info.Set("destroyed", Napi::Boolean::New(a.env(), state == nullptr));
    if (state != nullptr) {
      info.Set("rank", Napi::Number::New(a.env(), state->rank));
      info.Set("worldSize", Napi::Number::New(a.env(), state->worldSize));
      info.Set("backend", Napi::String::New(a.env(), state->backendName));
      info.Set("timeoutMs", Napi::Number::New(a.env(), static_cast<double>(state->timeout.count())));
    }
    return info;
  });

  // distributedAllReduce(group, tensors, reduction, bucketBytes, where) -> Promise: in place.
  exportFunction(exports, "distributedAllReduce", [](Args& a) {
    auto [handle, state] = groupArg(a, 0);
    std::vector<at::Tensor> tensors = a.tensorList(1);
    bool average = false;
    const Reduction reduction = parseReduction(a.string(2), &average);
    const int64_t bucketBytes = bucketBytesArg(a, 3);
    checkTensors(*state, tensors, average);
    CollectiveBackend* backend = state->backend.get();
    return startCoalesced(
        a.env(), handle, state, a.string(4), std::move(tensors), bucketBytes,
        [backend, reduction](std::vector<at::Tensor>& flat) { return backend->allReduce(flat, reduction); },
        average ? state->worldSize : 1);
  });

  // distributedBroadcast(group, tensors, root, bucketBytes, where) -> Promise: in place.
  exportFunction(exports, "distributedBroadcast", [](Args& a) {
    auto [handle, state] = groupArg(a, 0);
    std::vector<at::Tensor> tensors = a.tensorList(1);
    const int64_t root = a.integer(2);
    if (root < 0 || root >= state->worldSize) {
      throw ArgumentError("the root rank must be in 0.." + std::to_string(state->worldSize - 1) + ", got " +
                          std::to_string(root));
    }
    const int64_t bucketBytes = bucketBytesArg(a, 3);
    checkTensors(*state, tensors, false);
    CollectiveBackend* backend = state->backend.get();
    const int rootRank = static_cast<int>(root);
    return startCoalesced(
        a.env(), handle, state, a.string(4), std::move(tensors), bucketBytes,
        [backend, rootRank](std::vector<at::Tensor>& flat) { return backend->broadcast(flat, rootRank); }, 1);
  });

  // distributedAverageGradients(group, parameters, bucketBytes) -> Promise. A parameter without a
  // gradient takes part with zeros (and gets the average), so that every rank's buckets match
  // whichever parameters its batch reached.
  exportFunction(exports, "distributedAverageGradients", [](Args& a) {
    auto [handle, state] = groupArg(a, 0);
    std::vector<at::Tensor> parameters = a.tensorList(1);
    const int64_t bucketBytes = bucketBytesArg(a, 2);
    std::vector<at::Tensor> gradients;
    gradients.reserve(parameters.size());
    {
      at::NoGradGuard noGrad;
      for (at::Tensor& parameter : parameters) {
        if (!parameter.grad().defined()) parameter.mutable_grad() = at::zeros_like(parameter);
        gradients.push_back(parameter.grad());
      }
    }
    checkTensors(*state, gradients, true);
    CollectiveBackend* backend = state->backend.get();
    return startCoalesced(
        a.env(), handle, state, "averageGradients", std::move(gradients), bucketBytes,
        [backend](std::vector<at::Tensor>& flat) { return backend->allReduce(flat, Reduction::Sum); },
        state->worldSize);
  });

  // distributedBarrier(group) -> Promise.
  exportFunction(exports, "distributedBarrier", [](Args& a) {
    auto [handle, state] = groupArg(a, 0);
    auto completion = Completion::create(a.env(), handle, "barrier (" + rankText(*state) + ")", state->timeout);
    try {
      completion->follow(state->backend->barrier(), state->backend->completesOnStream(), [] {});
    } catch (const std::exception& e) {
      completion->fail(e.what());
    }
    completion->seal();
    return completion->promise();
  });

  // distributedDestroy(group) -> Promise; later calls with the group throw.
  exportFunction(exports, "distributedDestroy", [](Args& a) {
    ProcessGroupHandle* handle = a.size() > 0 ? ProcessGroupHandle::unwrap(a[0]) : nullptr;
    if (handle == nullptr) a.fail(0, "a process group");
    auto* worker = new DestroyWorker(a.env(), handle->release());
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  });

  // distributedHostStore(port, timeoutMs) -> store: a rendezvous store served from this process
  // (port 0: a free port, read back with distributedStorePort), for ranks that it launches.
  exportFunction(exports, "distributedHostStore", [](Args& a) {
    const int64_t port = a.integer(0);
    if (port < 0 || port > 65535) throw ArgumentError("the port must be in 0..65535, got " + std::to_string(port));
    const int64_t timeoutMs = a.integer(1);
    if (timeoutMs < 1) throw ArgumentError("the timeout must be a positive number of milliseconds");
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(port);
    options.isServer = true;
    options.waitWorkers = false;
    options.timeout = std::chrono::milliseconds(timeoutMs);
    try {
      return StoreHandle::wrap(a.env(), c10::make_intrusive<c10d::TCPStore>("127.0.0.1", options));
    } catch (const std::exception& e) {
      throw distributed::toJsError(
          a.env(), distributed::explainJoinFailure("distributedHostStore: port " + std::to_string(port),
                                                   distributed::JoinStage::HostStore, e.what(), options.timeout));
    }
  });

  exportFunction(exports, "distributedStorePort", [](Args& a) {
    StoreHandle* handle = a.size() > 0 ? StoreHandle::unwrap(a[0]) : nullptr;
    if (handle == nullptr) a.fail(0, "a store");
    if (!handle->store()) throw ArgumentError("the store was closed");
    return Napi::Number::New(a.env(), handle->store()->getPort());
  });

  exportFunction(exports, "distributedCloseStore", [](Args& a) {
    StoreHandle* handle = a.size() > 0 ? StoreHandle::unwrap(a[0]) : nullptr;
    if (handle == nullptr) a.fail(0, "a store");
    handle->store().reset();
    return a.env().Undefined();
  });
}

}  // namespace dna
