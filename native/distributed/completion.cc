// Settling a Promise when collectives finish (see completion.h).
#include "distributed/completion.h"

#include <ATen/core/ivalue.h>

#include <exception>

namespace dna::distributed {

struct Completion::JsSide {
  Napi::Promise::Deferred deferred;
  Napi::ObjectReference keepAlive;
};

std::shared_ptr<Completion> Completion::create(Napi::Env env, Napi::Object keepAlive, std::string where,
                                               std::chrono::milliseconds timeout) {
  std::shared_ptr<Completion> completion(new Completion(std::move(where), timeout));
  auto* js = new JsSide{Napi::Promise::Deferred::New(env), Napi::Persistent(keepAlive)};
  completion->js_ = js;
  // The function itself is never called: each call passes its own callback.
  completion->settle_ =
      Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "dna-distributed",
                                    0, 1, js, [](Napi::Env, JsSide* side) { delete side; });
  return completion;
}

Napi::Promise Completion::promise() const { return js_->deferred.Promise(); }

void Completion::follow(const c10::intrusive_ptr<c10d::Work>& work, bool onStream, std::function<void()> onSuccess) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++outstanding_;
  }
  if (onStream) {
    try {
      work->wait();
      onSuccess();
    } catch (const std::exception& e) {
      record(e.what());
    } catch (...) {
      record("unknown error");
    }
    finishOne();
    return;
  }
  auto self = shared_from_this();
  work->getFuture()->addCallback([self, onSuccess = std::move(onSuccess)](c10::ivalue::Future& future) {
    // On a Gloo worker thread (or here, when the work had already finished).
    if (future.hasError()) {
      self->record(future.tryRetrieveErrorMessage());
    } else {
      try {
        onSuccess();
      } catch (const std::exception& e) {
        self->record(e.what());
      } catch (...) {
        self->record("unknown error");
      }
    }
    self->finishOne();
  });
}

void Completion::fail(const std::string& error) { record(error); }

void Completion::seal() { finishOne(); }

void Completion::record(const std::string& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failed_) return;
  failed_ = true;
  firstError_ = error;
}

void Completion::finishOne() {
  bool failed;
  std::string error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--outstanding_ > 0) return;
    failed = failed_;
    error = firstError_;
  }
  const Failure failure = failed ? explainCollectiveFailure(where_, error, timeout_) : Failure{};
  JsSide* js = js_;
  settle_.BlockingCall([js, failed, failure](Napi::Env env, Napi::Function) {
    if (failed)
      js->deferred.Reject(toJsError(env, failure).Value());
    else
      js->deferred.Resolve(env.Undefined());
    js->keepAlive.Reset();
  });
  settle_.Release();
}

}  // namespace dna::distributed
