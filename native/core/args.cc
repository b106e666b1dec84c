#include "core/args.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <unordered_map>

#include "core/errors.h"
#include "core/handles.h"

namespace dna {

namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;

}  // namespace

std::string shapeString(at::IntArrayRef sizes) {
  std::string text = "[";
  for (size_t k = 0; k < sizes.size(); ++k) text += (k ? ", " : "") + std::to_string(sizes[k]);
  return text + "]";
}

const char* jsTypeName(const Napi::Value& value) {
  switch (value.Type()) {
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_boolean:
      return "a boolean";
    case napi_number:
      return "a number";
    case napi_string:
      return "a string";
    case napi_symbol:
      return "a symbol";
    case napi_function:
      return "a function";
    case napi_bigint:
      return "a bigint";
    case napi_external:
      return "an external";
    case napi_object:
      if (value.IsArray()) return "an array";
      if (value.IsTypedArray()) return "a typed array";
      return "an object";
  }
  return "an unknown value";
}

void Args::fail(size_t i, const std::string& expectation) const {
  std::ostringstream message;
  message << "argument " << (i + 1) << " must be " << expectation << ", got "
          << (i < size() ? jsTypeName(info_[i]) : "nothing");
  throw ArgumentError(message.str());
}

bool Args::isTensor(size_t i) const { return i < size() && TensorHandle::unwrap(info_[i]) != nullptr; }

at::Tensor Args::tensor(size_t i) const {
  TensorHandle* handle = i < size() ? TensorHandle::unwrap(info_[i]) : nullptr;
  if (handle == nullptr) fail(i, "a Tensor");
  if (handle->disposed()) {
    throw ArgumentError("argument " + std::to_string(i + 1) + " is a disposed Tensor");
  }
  if (handle->busy()) throwBusy(i, "Tensor");
  return handle->tensor();
}

c10::optional<at::Tensor> Args::optionalTensor(size_t i) const {
  if (isMissing(i)) return c10::nullopt;
  return tensor(i);
}

std::vector<at::Tensor> Args::tensorList(size_t i) const {
  if (i >= size() || !info_[i].IsArray()) fail(i, "an array of Tensors");
  Napi::Array array = info_[i].As<Napi::Array>();
  std::vector<at::Tensor> tensors;
  tensors.reserve(array.Length());
  for (uint32_t k = 0; k < array.Length(); ++k) {
    TensorHandle* handle = TensorHandle::unwrap(array.Get(k));
    if (handle == nullptr) {
      throw ArgumentError("argument " + std::to_string(i + 1) + "[" + std::to_string(k) + "] must be a Tensor");
    }
    if (handle->disposed()) {
      throw ArgumentError("argument " + std::to_string(i + 1) + "[" + std::to_string(k) + "] is a disposed Tensor");
    }
    if (handle->busy()) {
      throw ArgumentError("argument " + std::to_string(i + 1) + "[" + std::to_string(k) +
                          "] is a Tensor in use by an asynchronous call: await its Promise first");
    }
    tensors.push_back(handle->tensor());
  }
  return tensors;
}

c10::Scalar Args::scalar(size_t i) const {
  if (i < size() && info_[i].IsBoolean()) return c10::Scalar(info_[i].As<Napi::Boolean>().Value());
  if (i < size() && info_[i].IsNumber()) {
    const double value = info_[i].As<Napi::Number>().DoubleValue();
    // Integral JS numbers stay integral so that integer tensors keep their dtype.
    if (std::isfinite(value) && std::floor(value) == value && std::fabs(value) <= kMaxSafeInteger) {
      return c10::Scalar(static_cast<int64_t>(value));
    }
    return c10::Scalar(value);
  }
  fail(i, "a number");
}

double Args::number(size_t i) const {
  if (i >= size() || !info_[i].IsNumber()) fail(i, "a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}

c10::optional<double> Args::optionalNumber(size_t i) const {
  if (isMissing(i)) return c10::nullopt;
  return number(i);
}

int64_t Args::integer(size_t i) const {
  if (i < size() && info_[i].IsBigInt()) {
    bool lossless = false;
    const int64_t value = info_[i].As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) fail(i, "an integer within 64 bits");
    return value;
  }
  if (i >= size() || !info_[i].IsNumber()) fail(i, "an integer");
  const double value = info_[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(value) || std::floor(value) != value || std::fabs(value) > kMaxSafeInteger) {
    fail(i, "an integer");
  }
  return static_cast<int64_t>(value);
}

c10::optional<int64_t> Args::optionalInteger(size_t i) const {
  if (isMissing(i)) return c10::nullopt;
  return integer(i);
}

uint64_t Args::seed(size_t i) const {
  if (i < size() && info_[i].IsBigInt()) {
    bool lossless = false;
    const uint64_t value = info_[i].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) fail(i, "a seed: a non-negative integer within 64 bits");
    return value;
  }
  const int64_t value = integer(i);
  if (value < 0) fail(i, "a seed: a non-negative integer");
  return static_cast<uint64_t>(value);
}

bool Args::boolean(size_t i, bool fallback) const {
  if (isMissing(i)) return fallback;
  if (!info_[i].IsBoolean()) fail(i, "a boolean");
  return info_[i].As<Napi::Boolean>().Value();
}

std::string Args::string(size_t i) const {
  if (i >= size() || !info_[i].IsString()) fail(i, "a string");
  return info_[i].As<Napi::String>().Utf8Value();
}

std::vector<int64_t> Args::integerList(size_t i) const {
  if (i >= size() || !info_[i].IsArray()) fail(i, "an array of integers");
  Napi::Array array = info_[i].As<Napi::Array>();
  std::vector<int64_t> values;
  values.reserve(array.Length());
  for (uint32_t k = 0; k < array.Length(); ++k) {
    Napi::Value item = array.Get(k);
    const double value = item.IsNumber() ? item.As<Napi::Number>().DoubleValue() : std::nan("");
    if (!std::isfinite(value) || std::floor(value) != value || std::fabs(value) > kMaxSafeInteger) {
      throw ArgumentError("argument " + std::to_string(i + 1) + "[" + std::to_string(k) + "] must be an integer");
    }
    values.push_back(static_cast<int64_t>(value));
  }
  return values;
}

std::vector<int64_t> Args::shape(size_t i) const {
  std::vector<int64_t> dims = integerList(i);
  for (size_t k = 0; k < dims.size(); ++k) {
    if (dims[k] < 0) {
      throw ArgumentError("argument " + std::to_string(i + 1) + " is not a valid shape: dimension " +
                          std::to_string(k) + " is negative");
    }
  }
  return dims;
}

c10::optional<std::vector<int64_t>> Args::optionalIntegerList(size_t i) const {
  if (isMissing(i)) return c10::nullopt;
  if (info_[i].IsNumber()) return std::vector<int64_t>{integer(i)};
  return integerList(i);
}

at::ScalarType parseDtype(const std::string& name) {
  static const std::unordered_map<std::string, at::ScalarType> types = {
      {"float32", at::kFloat}, {"float64", at::kDouble}, {"float16", at::kHalf}, {"bfloat16", at::kBFloat16},
      {"int32", at::kInt},     {"int64", at::kLong},     {"uint8", at::kByte},   {"bool", at::kBool},
  };
  auto found = types.find(name);
  if (found == types.end()) {
    throw ArgumentError("unknown dtype '" + name +
                        "' (one of float32, float64, float16, bfloat16, int32, int64, uint8, bool)");
  }
  return found->second;
}

const char* dtypeName(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return "float32";
    case at::kDouble:
      return "float64";
    case at::kHalf:
      return "float16";
    case at::kBFloat16:
      return "bfloat16";
    case at::kInt:
      return "int32";
    case at::kLong:
      return "int64";
    case at::kByte:
      return "uint8";
    case at::kBool:
      return "bool";
    default:
      return c10::toString(type);
  }
}

at::ScalarType Args::dtype(size_t i, at::ScalarType fallback) const {
  if (isMissing(i)) return fallback;
  return parseDtype(string(i));
}

c10::Device Args::device(size_t i) const {
  if (isMissing(i)) return c10::Device(c10::kCPU);
  const std::string name = string(i);
  if (name != "cpu" && name.rfind("cuda", 0) != 0) {
    throw ArgumentError("unknown device '" + name + "' (one of cpu, cuda, cuda:N)");
  }
  return c10::Device(name);
}

at::Generator Args::generator(size_t i) const {
  GeneratorHandle* handle = i < size() ? GeneratorHandle::unwrap(info_[i]) : nullptr;
  if (handle == nullptr) fail(i, "a Generator");
  return handle->generator();
}

c10::optional<at::Generator> Args::optionalGenerator(size_t i) const {
  if (isMissing(i)) return c10::nullopt;
  return generator(i);
}

c10::optional<c10::Scalar> Args::optionalScalar(size_t i) const {
  if (isMissing(i)) return c10::nullopt;
  return scalar(i);
}

void exportFunction(Napi::Object exports, const char* name, NativeFunction body) {
  Napi::Env env = exports.Env();
  auto fn = [name, body = std::move(body)](const Napi::CallbackInfo& info) -> Napi::Value {
    return guarded(info.Env(), name, [&] {
      Args args(info, name);
      return body(args);
    });
  };
  exports.Set(name, Napi::Function::New(env, fn, name));
}

Napi::Value wrapTensor(Args& args, at::Tensor tensor) {
  if (!tensor.defined()) return args.env().Undefined();
  return TensorHandle::wrap(args.env(), std::move(tensor));
}

Napi::Value wrapTensors(Args& args, const std::vector<at::Tensor>& tensors) {
  Napi::Array array = Napi::Array::New(args.env(), tensors.size());
  for (size_t k = 0; k < tensors.size(); ++k) array.Set(static_cast<uint32_t>(k), wrapTensor(args, tensors[k]));
  return array;
}

}  // namespace dna
