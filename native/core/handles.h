// JS handles over LibTorch objects. A handle owns one reference: disposing it (or its
// garbage collection, the safety net) drops that reference and nothing else, so storage
// shared with other tensors stays valid.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <napi.h>

#include <cstdint>

#include "core/async.h"

namespace dna {

class TensorHandle : public Napi::ObjectWrap<TensorHandle>, public Busy {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  static Napi::Object wrap(Napi::Env env, at::Tensor tensor);
  // Null when `value` is not a TensorHandle.
  static TensorHandle* unwrap(Napi::Value value);
  static int64_t live();

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;
  void Finalize(Napi::Env env) override;

  bool disposed() const { return !tensor_.defined(); }
  const at::Tensor& tensor() const { return tensor_; }
  void dispose(Napi::Env env);

 private:
  void hold(Napi::Env env, at::Tensor tensor);

  at::Tensor tensor_;
  int64_t accountedBytes_ = 0;
};

class GeneratorHandle : public Napi::ObjectWrap<GeneratorHandle> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  static Napi::Object wrap(Napi::Env env, at::Generator generator);
  static GeneratorHandle* unwrap(Napi::Value value);

  explicit GeneratorHandle(const Napi::CallbackInfo& info);
  at::Generator& generator() { return generator_; }

 private:
  at::Generator generator_;
};

}  // namespace dna
