// Reading JS arguments into LibTorch values. Every reader checks the JS type first and throws
// ArgumentError naming the function and the argument, so a wrong call never reaches LibTorch
// with garbage.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/Scalar.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Optional.h>
#include <napi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dna {

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* function) : info_(info), function_(function) {}

  Napi::Env env() const { return info_.Env(); }
  size_t size() const { return info_.Length(); }
  Napi::Value operator[](size_t i) const { return info_[i]; }
  bool isMissing(size_t i) const { return i >= size() || info_[i].IsUndefined() || info_[i].IsNull(); }

  at::Tensor tensor(size_t i) const;
  c10::optional<at::Tensor> optionalTensor(size_t i) const;
  std::vector<at::Tensor> tensorList(size_t i) const;
  bool isTensor(size_t i) const;
  // A tensor or a JS number (a scalar for LibTorch's Scalar overloads).
  c10::Scalar scalar(size_t i) const;

  double number(size_t i) const;
  c10::optional<double> optionalNumber(size_t i) const;
  int64_t integer(size_t i) const;
  c10::optional<int64_t> optionalInteger(size_t i) const;
  uint64_t seed(size_t i) const;
  bool boolean(size_t i, bool fallback) const;
  std::string string(size_t i) const;
  std::vector<int64_t> integerList(size_t i) const;
  // A shape: a list of non-negative integers.
  std::vector<int64_t> shape(size_t i) const;
  c10::optional<std::vector<int64_t>> optionalIntegerList(size_t i) const;

  at::ScalarType dtype(size_t i, at::ScalarType fallback) const;
  c10::Device device(size_t i) const;
  at::Generator generator(size_t i) const;
  c10::optional<at::Generator> optionalGenerator(size_t i) const;
  // A tensor or a number; numbers keep integer-ness (see scalar()).
  c10::optional<c10::Scalar> optionalScalar(size_t i) const;

  [[noreturn]] void fail(size_t i, const std::string& expectation) const;

 private:
  const Napi::CallbackInfo& info_;
  const char* function_;
};

// "[2, 3, 4]": a shape, for error messages.
std::string shapeString(at::IntArrayRef sizes);

// "a number", "an array", ...: what a JS value is, for error messages.
const char* jsTypeName(const Napi::Value& value);

at::ScalarType parseDtype(const std::string& name);
const char* dtypeName(at::ScalarType type);

// Exports a native function whose body runs guarded: arguments parsed through Args, any
// exception turned into a JS Error that names `name`.
using NativeFunction = std::function<Napi::Value(Args&)>;
void exportFunction(Napi::Object exports, const char* name, NativeFunction body);

// Result helpers.
Napi::Value wrapTensor(Args& args, at::Tensor tensor);
Napi::Value wrapTensors(Args& args, const std::vector<at::Tensor>& tensors);

}  // namespace dna
