// The tensor math the TypeScript layer composes: elementwise, reductions, indexing, shapes.
// Each entry is one LibTorch call; argument checks live in Args.
#include <ATen/ATen.h>
#include <ATen/ScalarOps.h>

#include <numeric>

#include "core/args.h"
#include "core/errors.h"
#include "core/registry.h"

namespace dna {

namespace {

// A JS number operand becomes a wrapped-number tensor, so it promotes like a Python scalar:
// float32 tensor + 2.5 stays float32, int32 tensor + 1 stays int32.
at::Tensor operand(Args& a, size_t i, const c10::Device& device) {
  if (a.isTensor(i)) return a.tensor(i);
  at::Tensor scalar = at::scalar_to_tensor(a.scalar(i), device);
  scalar.unsafeGetTensorImpl()->set_wrapped_number(true);
  return scalar;
}

// Two operands, at least one of them a tensor.
std::pair<at::Tensor, at::Tensor> operands(Args& a) {
  if (!a.isTensor(0) && !a.isTensor(1)) a.fail(0, "a Tensor (one of the two operands must be a Tensor)");
  const c10::Device device = a.isTensor(0) ? a.tensor(0).device() : a.tensor(1).device();
  return {operand(a, 0, device), operand(a, 1, device)};
}

std::vector<int64_t> allDims(const at::Tensor& x) {
  std::vector<int64_t> dims(static_cast<size_t>(x.dim()));
  std::iota(dims.begin(), dims.end(), 0);
  return dims;
}

// Reductions over `dims` (argument 1; all dimensions when missing), keepdim (argument 2).
template <typename Reduce>
void exportReduction(Napi::Object exports, const char* name, Reduce reduce) {
  exportFunction(exports, name, [reduce](Args& a) {
    const at::Tensor x = a.tensor(0);
    const std::vector<int64_t> dims = a.optionalIntegerList(1).value_or(allDims(x));
    return wrapTensor(a, reduce(x, at::IntArrayRef(dims), a.boolean(2, false)));
  });
}

template <typename Fn>
void exportUnary(Napi::Object exports, const char* name, Fn fn) {
  exportFunction(exports, name, [fn](Args& a) { return wrapTensor(a, fn(a.tensor(0))); });
}

template <typename Fn>
void exportBinary(Napi::Object exports, const char* name, Fn fn) {
  exportFunction(exports, name, [fn](Args& a) {
    auto [x, y] = operands(a);
    return wrapTensor(a, fn(x, y));
  });
}

}  // namespace

void registerTensorOps(Napi::Object exports) {
  using T = const at::Tensor&;

  exportBinary(exports, "add", [](T x, T y) { return at::add(x, y); });
  exportBinary(exports, "sub", [](T x, T y) { return at::sub(x, y); });
  exportBinary(exports, "mul", [](T x, T y) { return at::mul(x, y); });
  exportBinary(exports, "div", [](T x, T y) { return at::div(x, y); });
  exportBinary(exports, "pow", [](T x, T y) { return at::pow(x, y); });
  exportBinary(exports, "remainder", [](T x, T y) { return at::remainder(x, y); });
  exportBinary(exports, "maximum", [](T x, T y) { return at::maximum(x, y); });
  exportBinary(exports, "minimum", [](T x, T y) { return at::minimum(x, y); });
  exportBinary(exports, "eq", [](T x, T y) { return at::eq(x, y); });
  exportBinary(exports, "ne", [](T x, T y) { return at::ne(x, y); });
  exportBinary(exports, "lt", [](T x, T y) { return at::lt(x, y); });
  exportBinary(exports, "le", [](T x, T y) { return at::le(x, y); });
  exportBinary(exports, "gt", [](T x, T y) { return at::gt(x, y); });
  exportBinary(exports, "ge", [](T x, T y) { return at::ge(x, y); });
  exportBinary(exports, "logicalAnd", [](T x, T y) { return at::logical_and(x, y); });
  exportBinary(exports, "logicalOr", [](T x, T y) { return at::logical_or(x, y); });

  exportUnary(exports, "neg", [](T x) { return at::neg(x); });
  exportUnary(exports, "abs", [](T x) { return at::abs(x); });
  exportUnary(exports, "sign", [](T x) { return at::sign(x); });
  exportUnary(exports, "exp", [](T x) { return at::exp(x); });
  exportUnary(exports, "log", [](T x) { return at::log(x); });
  exportUnary(exports, "log1p", [](T x) { return at::log1p(x); });
  exportUnary(exports, "sqrt", [](T x) { return at::sqrt(x); });
  exportUnary(exports, "square", [](T x) { return at::square(x); });
  exportUnary(exports, "reciprocal", [](T x) { return at::reciprocal(x); });
  exportUnary(exports, "sin", [](T x) { return at::sin(x); });
  exportUnary(exports, "cos", [](T x) { return at::cos(x); });
  exportUnary(exports, "tanh", [](T x) { return at::tanh(x); });
  exportUnary(exports, "sigmoid", [](T x) { return at::sigmoid(x); });
  exportUnary(exports, "relu", [](T x) { return at::relu(x); });
  exportUnary(exports, "floor", [](T x) { return at::floor(x); });
  exportUnary(exports, "ceil", [](T x) { return at::ceil(x); });
  exportUnary(exports, "round", [](T x) { return at::round(x); });
  exportUnary(exports, "logicalNot", [](T x) { return at::logical_not(x); });
  exportUnary(exports, "isnan", [](T x) { return at::isnan(x); });
  exportUnary(exports, "isfinite", [](T x) { return at::isfinite(x); });
  exportUnary(exports, "detach", [](T x) { return x.detach(); });
  exportUnary(exports, "clone", [](T x) { return x.clone(); });
  exportUnary(exports, "contiguous", [](T x) { return x.contiguous(); });

  // logit(x, eps?): log(x / (1 - x)), x clamped to [eps, 1 - eps] when eps is given.
  exportFunction(exports, "logit", [](Args& a) { return wrapTensor(a, at::logit(a.tensor(0), a.optionalNumber(1))); });
  exportFunction(exports, "clamp", [](Args& a) {
    const at::Tensor x = a.tensor(0);
    const c10::optional<c10::Scalar> lo = a.optionalScalar(1);
    const c10::optional<c10::Scalar> hi = a.optionalScalar(2);
    if (!lo && !hi) throw ArgumentError("clamp needs a minimum, a maximum or both");
    return wrapTensor(a, at::clamp(x, lo, hi));
  });
  // where(condition, x, y): x and y tensors or numbers; numbers promote like Python scalars.
  exportFunction(exports, "where", [](Args& a) {
    const at::Tensor condition = a.tensor(0);
    if (condition.scalar_type() != at::kBool) throw ArgumentError("where: the condition must be a bool tensor");
    if (!a.isTensor(1) && !a.isTensor(2)) {
      const auto options = at::TensorOptions().dtype(at::kFloat).device(condition.device());
      return wrapTensor(
          a, at::where(condition, at::scalar_tensor(a.scalar(1), options), at::scalar_tensor(a.scalar(2), options)));
    }
    return wrapTensor(a, at::where(condition, operand(a, 1, condition.device()), operand(a, 2, condition.device())));
  });

  exportReduction(exports, "sum", [](T x, at::IntArrayRef dims, bool keep) { return at::sum(x, dims, keep); });
  exportReduction(exports, "mean", [](T x, at::IntArrayRef dims, bool keep) { return at::mean(x, dims, keep); });
  exportReduction(exports, "amax", [](T x, at::IntArrayRef dims, bool keep) { return at::amax(x, dims, keep); });
  exportReduction(exports, "amin", [](T x, at::IntArrayRef dims, bool keep) { return at::amin(x, dims, keep); });
  exportReduction(exports, "logsumexp",
                  [](T x, at::IntArrayRef dims, bool keep) { return at::logsumexp(x, dims, keep); });
  // variance / std (x, dims?, keepdim?, unbiased?)
  exportFunction(exports, "var", [](Args& a) {
    const at::Tensor x = a.tensor(0);
    const std::vector<int64_t> dims = a.optionalIntegerList(1).value_or(allDims(x));
    return wrapTensor(a, at::var(x, at::IntArrayRef(dims), a.boolean(3, true), a.boolean(2, false)));
  });
  exportFunction(exports, "std", [](Args& a) {
    const at::Tensor x = a.tensor(0);
    const std::vector<int64_t> dims = a.optionalIntegerList(1).value_or(allDims(x));
    return wrapTensor(a, at::std(x, at::IntArrayRef(dims), a.boolean(3, true), a.boolean(2, false)));
  });
  exportFunction(exports, "argmax", [](Args& a) {
    return wrapTensor(a, at::argmax(a.tensor(0), a.optionalInteger(1), a.boolean(2, false)));
  });
  exportFunction(exports, "argmin", [](Args& a) {
    return wrapTensor(a, at::argmin(a.tensor(0), a.optionalInteger(1), a.boolean(2, false)));
  });
  exportFunction(exports, "cumsum", [](Args& a) { return wrapTensor(a, at::cumsum(a.tensor(0), a.integer(1))); });
  exportFunction(exports, "softmax", [](Args& a) { return wrapTensor(a, at::softmax(a.tensor(0), a.integer(1))); });
  exportFunction(exports, "logSoftmax",
                 [](Args& a) { return wrapTensor(a, at::log_softmax(a.tensor(0), a.integer(1))); });
  exportFunction(exports, "oneHot", [](Args& a) {
    const at::Tensor index = a.tensor(0);
    if (index.scalar_type() != at::kLong) throw ArgumentError("oneHot: indices must be an int64 tensor");
    const int64_t classes = a.integer(1);
    if (classes <= 0) throw ArgumentError("oneHot: the number of classes must be positive");
    return wrapTensor(a, at::one_hot(index, classes));
  });
  exportFunction(exports, "matmul", [](Args& a) { return wrapTensor(a, at::matmul(a.tensor(0), a.tensor(1))); });

  // Indexing. Indices are int64, range-checked by LibTorch on the CPU.
  exportFunction(exports, "gather",
                 [](Args& a) { return wrapTensor(a, at::gather(a.tensor(0), a.integer(1), a.tensor(2))); });
  exportFunction(exports, "indexSelect",
                 [](Args& a) { return wrapTensor(a, at::index_select(a.tensor(0), a.integer(1), a.tensor(2))); });
  exportFunction(exports, "maskedFill",
                 [](Args& a) { return wrapTensor(a, at::masked_fill(a.tensor(0), a.tensor(1), a.scalar(2))); });
  exportFunction(exports, "narrow",
                 [](Args& a) { return wrapTensor(a, a.tensor(0).narrow(a.integer(1), a.integer(2), a.integer(3))); });
  exportFunction(exports, "select",
                 [](Args& a) { return wrapTensor(a, a.tensor(0).select(a.integer(1), a.integer(2))); });
  exportFunction(exports, "cat", [](Args& a) { return wrapTensor(a, at::cat(a.tensorList(0), a.integer(1))); });
  exportFunction(exports, "stack", [](Args& a) { return wrapTensor(a, at::stack(a.tensorList(0), a.integer(1))); });

  // Shapes.
  exportFunction(exports, "reshape", [](Args& a) { return wrapTensor(a, a.tensor(0).reshape(a.integerList(1))); });
  exportFunction(exports, "permute", [](Args& a) { return wrapTensor(a, a.tensor(0).permute(a.integerList(1))); });
  exportFunction(exports, "transpose",
                 [](Args& a) { return wrapTensor(a, a.tensor(0).transpose(a.integer(1), a.integer(2))); });
  exportFunction(exports, "expand", [](Args& a) { return wrapTensor(a, a.tensor(0).expand(a.integerList(1))); });
  exportFunction(exports, "repeat", [](Args& a) { return wrapTensor(a, a.tensor(0).repeat(a.integerList(1))); });
  exportFunction(exports, "flip", [](Args& a) { return wrapTensor(a, a.tensor(0).flip(a.integerList(1))); });
  exportFunction(exports, "flatten", [](Args& a) {
    return wrapTensor(a, a.tensor(0).flatten(a.optionalInteger(1).value_or(0), a.optionalInteger(2).value_or(-1)));
  });
  exportFunction(exports, "squeeze", [](Args& a) {
    const at::Tensor x = a.tensor(0);
    const c10::optional<int64_t> dim = a.optionalInteger(1);
    return wrapTensor(a, dim ? x.squeeze(*dim) : x.squeeze());
  });
  exportFunction(exports, "unsqueeze", [](Args& a) { return wrapTensor(a, a.tensor(0).unsqueeze(a.integer(1))); });
}

}  // namespace dna
