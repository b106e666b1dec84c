// The JS handle over a Network. Like TensorHandle it owns one reference: disposing it (or its
// garbage collection) drops that reference, while parameter tensors handed out earlier stay valid.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>

#include "core/args.h"
#include "core/async.h"

namespace dna {

class Network;

class ModuleHandle : public Napi::ObjectWrap<ModuleHandle>, public Busy {
 public:
  static void define(Napi::Env env);
  // `hostBytes`: the CPU memory the network holds, reported to V8 so that the garbage collector
  // weighs a forgotten model by its size.
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<Network> network, int64_t hostBytes);
  // Null when `value` is not a ModuleHandle.
  static ModuleHandle* unwrap(Napi::Value value);

  explicit ModuleHandle(const Napi::CallbackInfo& info);
  void Finalize(Napi::Env env) override;

  bool disposed() const { return network_ == nullptr; }
  void dispose(Napi::Env env);
  const std::shared_ptr<Network>& network() const { return network_; }

 private:
  std::shared_ptr<Network> network_;
  int64_t accountedBytes_ = 0;
};

// Argument i as a live Network (a reference of its own, so that the call keeps it alive), or an ArgumentError
// ("argument 1 must be a Module" / "argument 1 is a disposed Module").
std::shared_ptr<Network> networkArg(Args& args, size_t i);

}  // namespace dna
