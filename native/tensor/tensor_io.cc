// Tensors in and out of JS: typed arrays, shape/dtype/device, device moves, disposal, autograd.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cstring>

#include "core/args.h"
#include "core/cuda_support.h"
#include "core/errors.h"
#include "core/handles.h"
#include "core/host_reads.h"
#include "core/registry.h"

namespace dna {

namespace {

at::ScalarType typedArrayDtype(napi_typedarray_type type) {
  switch (type) {
    case napi_float32_array:
      return at::kFloat;
    case napi_float64_array:
      return at::kDouble;
    case napi_int32_array:
      return at::kInt;
    case napi_bigint64_array:
      return at::kLong;
    case napi_uint8_array:
      return at::kByte;
    default:
      throw ArgumentError(
          "unsupported typed array (use Float32Array, Float64Array, Int32Array, BigInt64Array or Uint8Array)");
  }
}

int64_t checkedNumel(const std::vector<int64_t>& shape) {
  int64_t numel = 1;
  for (int64_t dim : shape) {
    if (__builtin_mul_overflow(numel, dim, &numel)) throw ArgumentError("shape has too many elements");
  }
  return numel;
}

template <typename Element>
Napi::Value copyOut(Napi::Env env, const at::Tensor& host) {
  auto array = Napi::TypedArrayOf<Element>::New(env, static_cast<size_t>(host.numel()));
  if (host.numel() > 0) std::memcpy(array.Data(), host.data_ptr(), host.numel() * sizeof(Element));
  return array;
}

Napi::Value toTypedArray(Napi::Env env, const at::Tensor& tensor) {
  countHostRead();
  at::Tensor host = tensor.detach().to(at::kCPU).contiguous();
  switch (host.scalar_type()) {
    case at::kFloat:
      return copyOut<float>(env, host);
    case at::kDouble:
      return copyOut<double>(env, host);
    case at::kInt:
      return copyOut<int32_t>(env, host);
    case at::kLong:
      return copyOut<int64_t>(env, host);
    case at::kByte:
      return copyOut<uint8_t>(env, host);
    case at::kBool:
      return copyOut<uint8_t>(env, host.to(at::kByte));
    case at::kHalf:
    case at::kBFloat16:
      return copyOut<float>(env, host.to(at::kFloat));
    default:
      throw ArgumentError(std::string("cannot read a tensor of dtype ") + c10::toString(host.scalar_type()));
  }
}

Napi::Array shapeArray(Napi::Env env, at::IntArrayRef sizes) {
  Napi::Array array = Napi::Array::New(env, sizes.size());
  for (size_t k = 0; k < sizes.size(); ++k)
    array.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(sizes[k])));
  return array;
}

}  // namespace

void registerTensorIo(Napi::Object exports) {
  // fromData(typedArray, shape, dtype?, device?)
  exportFunction(exports, "fromData", [](Args& a) {
    if (a.isMissing(0) || !a[0].IsTypedArray()) a.fail(0, "a typed array");
    Napi::TypedArray data = a[0].As<Napi::TypedArray>();
    const at::ScalarType source = typedArrayDtype(data.TypedArrayType());
    const std::vector<int64_t> shape = a.shape(1);
    const int64_t numel = checkedNumel(shape);
    if (numel != static_cast<int64_t>(data.ElementLength())) {
      throw ArgumentError("data has " + std::to_string(data.ElementLength()) + " elements but shape " +
                          shapeString(shape) + " needs " + std::to_string(numel));
    }
    const at::ScalarType dtype = a.dtype(2, source);
    const c10::Device device = a.device(3);
    at::Tensor tensor = at::empty(shape, at::TensorOptions().dtype(source));
    if (numel > 0) {
      const auto* bytes = static_cast<const uint8_t*>(data.ArrayBuffer().Data()) + data.ByteOffset();
      std::memcpy(tensor.data_ptr(), bytes, static_cast<size_t>(numel) * tensor.element_size());
    }
    // To a GPU without a synchronous, pageable copy (core/cuda_support.h).
    if (device.is_cuda()) return wrapTensor(a, uploadToCuda(tensor, device.index()).to(dtype));
    return wrapTensor(a, tensor.to(device, dtype));
  });

  exportFunction(exports, "full", [](Args& a) {
    const std::vector<int64_t> shape = a.shape(0);
    checkedNumel(shape);
    const auto options = at::TensorOptions().dtype(a.dtype(2, at::kFloat)).device(a.device(3));
    return wrapTensor(a, at::full(shape, a.scalar(1), options));
  });

  exportFunction(exports, "arange", [](Args& a) {
    const c10::Scalar start = a.scalar(0);
    const c10::Scalar end = a.scalar(1);
    const c10::Scalar step = a.scalar(2);
    const bool integral = start.isIntegral(false) && end.isIntegral(false) && step.isIntegral(false);
    const auto options = at::TensorOptions().dtype(a.dtype(3, integral ? at::kLong : at::kFloat)).device(a.device(4));
    return wrapTensor(a, at::arange(start, end, step, options));
  });

  exportFunction(exports, "data", [](Args& a) { return toTypedArray(a.env(), a.tensor(0)); });

  exportFunction(exports, "item", [](Args& a) {
    const at::Tensor tensor = a.tensor(0);
    if (tensor.numel() != 1) {
      throw ArgumentError("item() needs a tensor with one element, this one has " + std::to_string(tensor.numel()));
    }
    countHostRead();
    return Napi::Number::New(a.env(), tensor.item().toDouble());
  });

  exportFunction(exports, "shape", [](Args& a) { return shapeArray(a.env(), a.tensor(0).sizes()); });
  exportFunction(exports, "dtype",
                 [](Args& a) { return Napi::String::New(a.env(), dtypeName(a.tensor(0).scalar_type())); });
  exportFunction(exports, "device", [](Args& a) { return Napi::String::New(a.env(), a.tensor(0).device().str()); });
  exportFunction(exports, "numel",
                 [](Args& a) { return Napi::Number::New(a.env(), static_cast<double>(a.tensor(0).numel())); });
  exportFunction(exports, "isContiguous",
                 [](Args& a) { return Napi::Boolean::New(a.env(), a.tensor(0).is_contiguous()); });

  exportFunction(exports, "to", [](Args& a) {
    const at::Tensor tensor = a.tensor(0);
    return wrapTensor(a, tensor.to(a.device(1), a.dtype(2, tensor.scalar_type())));
  });

  exportFunction(exports, "dispose", [](Args& a) {
    TensorHandle* handle = a.isMissing(0) ? nullptr : TensorHandle::unwrap(a[0]);
    if (handle == nullptr) a.fail(0, "a Tensor");
    if (handle->busy()) throwBusy(0, "Tensor");
    handle->dispose(a.env());
    return a.env().Undefined();
  });
  exportFunction(exports, "isDisposed", [](Args& a) {
    TensorHandle* handle = a.isMissing(0) ? nullptr : TensorHandle::unwrap(a[0]);
    if (handle == nullptr) a.fail(0, "a Tensor");
    return Napi::Boolean::New(a.env(), handle->disposed());
  });
  exportFunction(exports, "liveTensors",
                 [](Args& a) { return Napi::Number::New(a.env(), static_cast<double>(TensorHandle::live())); });

  // Autograd.
  exportFunction(exports, "requiresGrad",
                 [](Args& a) { return Napi::Boolean::New(a.env(), a.tensor(0).requires_grad()); });
  exportFunction(exports, "setRequiresGrad", [](Args& a) {
    at::Tensor tensor = a.tensor(0);
    tensor.requires_grad_(a.boolean(1, true));
    return a.env().Undefined();
  });
  exportFunction(exports, "grad", [](Args& a) { return wrapTensor(a, a.tensor(0).grad()); });
  exportFunction(exports, "zeroGrad", [](Args& a) {
    at::Tensor tensor = a.tensor(0);
    tensor.mutable_grad() = at::Tensor();
    return a.env().Undefined();
  });
  // setGrad(tensor, gradient): the accumulated gradient becomes a copy of `gradient`, which must
  // have the tensor's shape, dtype and device.
  exportFunction(exports, "setGrad", [](Args& a) {
    at::Tensor tensor = a.tensor(0);
    const at::Tensor gradient = a.tensor(1);
    if (gradient.sizes() != tensor.sizes()) {
      throw ArgumentError("the gradient has shape " + shapeString(gradient.sizes()) + " but the tensor has shape " +
                          shapeString(tensor.sizes()));
    }
    if (gradient.scalar_type() != tensor.scalar_type()) {
      throw ArgumentError(std::string("the gradient is ") + dtypeName(gradient.scalar_type()) + " but the tensor is " +
                          dtypeName(tensor.scalar_type()));
    }
    if (gradient.device() != tensor.device()) {
      throw ArgumentError("the gradient is on " + gradient.device().str() + " but the tensor is on " +
                          tensor.device().str());
    }
    tensor.mutable_grad() = gradient.detach().clone();
    return a.env().Undefined();
  });
  // backward(tensor, gradient?, retainGraph?)
  exportFunction(exports, "backward", [](Args& a) {
    const at::Tensor tensor = a.tensor(0);
    const c10::optional<at::Tensor> gradient = a.optionalTensor(1);
    const bool retainGraph = a.boolean(2, false);
    const bool createGraph = a.boolean(3, false);
    tensor.backward(gradient.value_or(at::Tensor()), retainGraph || createGraph, createGraph);
    return a.env().Undefined();
  });
  exportFunction(exports, "isGradEnabled",
                 [](Args& a) { return Napi::Boolean::New(a.env(), at::GradMode::is_enabled()); });
  exportFunction(exports, "setGradEnabled", [](Args& a) {
    const bool previous = at::GradMode::is_enabled();
    at::GradMode::set_enabled(a.boolean(0, true));
    return Napi::Boolean::New(a.env(), previous);
  });
}

}  // namespace dna
