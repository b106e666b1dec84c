// The step thread and the settling of its Promises (async.h).
#include "core/async.h"

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "core/errors.h"

namespace dna {

void throwBusy(size_t index, const char* kind) {
  throw ArgumentError("argument " + std::to_string(index + 1) + " is a " + kind +
                      " in use by an asynchronous call: await its Promise first");
}

BusyHandles::~BusyHandles() { release(); }

void BusyHandles::add(Napi::Object object, Busy* busy) {
  busy->hold();
  held_.emplace_back(Napi::Persistent(object), busy);
}

void BusyHandles::release() {
  for (auto& [reference, busy] : held_) {
    busy->release();
    reference.Reset();
  }
  held_.clear();
}

namespace {

std::atomic<int64_t> inFlight{0};

// One submitted call: what it runs, and how its Promise settles back on the JS thread.
struct Task {
  std::string where;
  TaskFn work;
  at::ThreadLocalState state;
  std::unique_ptr<BusyHandles> busy;
  napi_deferred deferred = nullptr;
  napi_threadsafe_function settle = nullptr;
  // Filled on the step thread.
  ResolveFn resolve;
  std::exception_ptr error;
};

// The step thread: a FIFO of tasks, run one at a time. It is never destroyed (a detached
// thread); at exit, the process waits for the task that is running, so that LibTorch is not torn
// down under it.
class StepThread {
 public:
  static StepThread& get() {
    static StepThread* instance = [] {
      auto* thread = new StepThread();
      std::atexit([] { StepThread::get().waitIdle(); });
      return thread;
    }();
    return *instance;
  }

  void push(Task* task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(task);
    }
    wake_.notify_one();
  }

 private:
  StepThread() {
    std::thread([this] { loop(); }).detach();
  }

  void waitIdle() {
    std::unique_lock<std::mutex> lock(mutex_);
    stopping_ = true;
    idle_.wait(lock, [this] { return !running_; });
  }

  void loop() {
    for (;;) {
      Task* task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return !queue_.empty() && !stopping_; });
        task = queue_.front();
        queue_.pop_front();
        running_ = true;
      }
      run(task);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        running_ = false;
      }
      idle_.notify_all();
    }
  }

  static void run(Task* task) {
    try {
      // LibTorch's intra-op threads are set per thread (OpenMP): take the process's count.
      at::init_num_threads();
      at::ThreadLocalStateGuard guard(task->state);
      task->resolve = task->work();
    } catch (...) {
      task->error = std::current_exception();
    }
    task->work = nullptr;
    // The JS thread settles the Promise; if its environment is gone, the task is dropped there.
    if (napi_call_threadsafe_function(task->settle, task, napi_tsfn_blocking) != napi_ok) {
      napi_release_threadsafe_function(task->settle, napi_tsfn_release);
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<Task*> queue_;
  bool running_ = false;
  bool stopping_ = false;
};

// On the JS thread: releases the busy handles, then resolves or rejects.
void settleOnJsThread(napi_env rawEnv, napi_value, void*, void* data) {
  auto* task = static_cast<Task*>(data);
  --inFlight;
  napi_threadsafe_function settle = task->settle;
  if (rawEnv != nullptr) {
    Napi::Env env(rawEnv);
    Napi::HandleScope scope(env);
    task->busy->release();
    Napi::Value value;
    bool ok = false;
    if (!task->error) {
      try {
        value = task->resolve(env);
        ok = true;
      } catch (...) {
        task->error = std::current_exception();
      }
    }
    if (!ok) {
      try {
        std::rethrow_exception(task->error);
      } catch (const Napi::Error& e) {
        value = e.Value();
      } catch (...) {
        value = currentExceptionToJs(env, task->where.c_str()).Value();
      }
    }
    if (ok)
      napi_resolve_deferred(rawEnv, task->deferred, value);
    else
      napi_reject_deferred(rawEnv, task->deferred, value);
    delete task;
  }
  // Without an environment (it is shutting down) the task's references cannot be released on
  // their thread; it is left to the process's end.
  napi_release_threadsafe_function(settle, napi_tsfn_release);
}

}  // namespace

Napi::Promise submitTask(Napi::Env env, const char* where, std::unique_ptr<BusyHandles> busy, TaskFn work) {
  auto* task = new Task{where, std::move(work), at::ThreadLocalState(), std::move(busy)};
  napi_value promise;
  if (napi_create_promise(env, &task->deferred, &promise) != napi_ok) {
    delete task;
    throw Napi::Error::New(env, std::string(where) + ": could not create a Promise");
  }
  napi_value name = Napi::String::New(env, where);
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, nullptr, settleOnJsThread,
                                      &task->settle) != napi_ok) {
    // The deferred must still settle: reject it.
    napi_reject_deferred(env, task->deferred, Napi::Error::New(env, std::string(where) + ": could not start").Value());
    delete task;
    return Napi::Promise(env, promise);
  }
  ++inFlight;
  StepThread::get().push(task);
  return Napi::Promise(env, promise);
}

int64_t tasksInFlight() { return inFlight.load(); }

}  // namespace dna
