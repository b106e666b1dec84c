// Collectives in flight, seen from JS as one Promise. The collectives are started on Node's
// main thread (so that every rank starts them in the same order); each one's completion arrives
// through its c10d::Work: Gloo completes the work's future on one of its worker threads, where
// the outputs are copied back, and a thread-safe function then settles the Promise on the main
// thread. Nothing waits on the main thread. The Promise settles only after every followed work
// has finished, failed ones included, so no collective still writes into a tensor afterwards.
#pragma once

#include <napi.h>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "distributed/failures.h"

namespace dna::distributed {

class Completion : public std::enable_shared_from_this<Completion> {
 public:
  // On the main thread. `keepAlive` (the group's JS handle) stays referenced until the Promise
  // settles, so the group is not collected while its collectives run. `where` names the
  // operation and the rank in error messages; `timeout` is the group's.
  static std::shared_ptr<Completion> create(Napi::Env env, Napi::Object keepAlive, std::string where,
                                            std::chrono::milliseconds timeout);

  Napi::Promise promise() const;

  // Follows one started work. `onSuccess` runs once the work's outputs are ready: on the thread
  // that completes its future (Gloo), or here after work->wait() when `onStream` (NCCL, whose
  // wait() only orders the current CUDA stream). An exception from it fails the operation.
  void follow(const c10::intrusive_ptr<c10d::Work>& work, bool onStream, std::function<void()> onSuccess);

  // Fails the operation (a collective could not be started) without ending it: works already
  // followed still run to their end.
  void fail(const std::string& error);

  // No more works will follow; the Promise settles once the followed ones have finished. Every
  // Completion must be sealed exactly once, or the Promise never settles and Node never exits.
  void seal();

 private:
  struct JsSide;
  Completion(std::string where, std::chrono::milliseconds timeout) : where_(std::move(where)), timeout_(timeout) {}
  void record(const std::string& error);
  void finishOne();

  std::string where_;
  std::chrono::milliseconds timeout_;
  Napi::ThreadSafeFunction settle_;
  JsSide* js_ = nullptr;  // owned by settle_ (freed by its finaliser, on the main thread)
  std::mutex mutex_;
  int outstanding_ = 1;  // the followed works, plus one until seal()
  bool failed_ = false;
  std::string firstError_;
};

}  // namespace dna::distributed
