// Asynchronous native calls: heavy work (a network's forward and backward passes, a training
// step) runs on the addon's step thread while Node's event loop goes on, and a Promise settles on
// the JS thread when it is done.
//
// The step thread is one per process and runs its tasks in the order they were submitted, like
// a CUDA stream: work submitted later sees the results of work submitted earlier. A task runs
// with the submitting thread's autograd and dispatch state (grad mode, autocast), and with
// LibTorch's intra-op thread count.
//
// While a task is in flight, the JS handles it uses are busy: any other native call that is
// given one of them (a tensor, a module, an optimiser) throws "... is in use by an asynchronous
// call", and disposing one throws too. They are released, on the JS thread, just before the
// Promise settles.
#pragma once

#include <napi.h>

#include <exception>
#include <functional>
#include <memory>
#include <vector>

namespace dna {

// What a handle type needs to be held busy by a task: a count of the tasks holding it.
class Busy {
 public:
  bool busy() const { return busyCount_ > 0; }
  void hold() { ++busyCount_; }
  void release() { --busyCount_; }

 private:
  int busyCount_ = 0;
};

// The error for argument `index` (0-based) of `kind` ("Tensor", "Module", "Optimizer") held busy.
[[noreturn]] void throwBusy(size_t index, const char* kind);

// The JS handles a task keeps busy (and alive: a reference each) until it settles.
class BusyHandles {
 public:
  BusyHandles() = default;
  BusyHandles(const BusyHandles&) = delete;
  BusyHandles& operator=(const BusyHandles&) = delete;
  ~BusyHandles();
  // Holds `busy` (the native side of `object`) until release().
  void add(Napi::Object object, Busy* busy);
  void release();

 private:
  std::vector<std::pair<Napi::ObjectReference, Busy*>> held_;
};

// The result of a task, turned into a JS value on the JS thread.
using ResolveFn = std::function<Napi::Value(Napi::Env)>;
// A task's work on the step thread: returns how to build its result.
using TaskFn = std::function<ResolveFn()>;

// Submits `work` to the step thread and returns its Promise. `where` names the call in errors
// (any exception the work throws rejects the Promise with an Error, as synchronous calls throw).
Napi::Promise submitTask(Napi::Env env, const char* where, std::unique_ptr<BusyHandles> busy, TaskFn work);

// Tasks submitted and not yet settled, in this process.
int64_t tasksInFlight();

}  // namespace dna
