// Custom transforms from a user's shared library: the library registers operators with
// TORCH_LIBRARY / TORCH_LIBRARY_IMPL (CPU and/or CUDA); calls go through LibTorch's dispatcher,
// so the implementation of the images' device runs. Schema, result shape, dtype and device are
// checked here, so a wrong op gives an Error that names it instead of corrupting a batch.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <dlfcn.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "core/args.h"
#include "core/errors.h"
#include "core/registry.h"

namespace dna {

namespace {

const char* const kSignature = "(Tensor images, Tensor magnitude) -> Tensor";

std::vector<std::string> operatorNames() {
  std::vector<std::string> names;
  for (const c10::OperatorName& name : c10::Dispatcher::singleton().getAllOpNames()) {
    names.push_back(name.overload_name.empty() ? name.name : name.name + "." + name.overload_name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string schemaText(const c10::FunctionSchema& schema) {
  std::ostringstream text;
  text << schema;
  return text.str();
}

// The operator `name` ("namespace::op"), checked to be a transform: two tensor arguments, one
// tensor result, no argument written in place.
c10::OperatorHandle transformOperator(const std::string& name) {
  if (name.find("::") == std::string::npos || name.find("::") == 0 || name.find("::") + 2 == name.size()) {
    throw ArgumentError("'" + name + "' is not an operator name; expected 'namespace::name'");
  }
  // "namespace::name" or "namespace::name.overload".
  const size_t dot = name.find('.', name.find("::"));
  const c10::OperatorName operatorName = dot == std::string::npos
                                             ? c10::OperatorName(name, "")
                                             : c10::OperatorName(name.substr(0, dot), name.substr(dot + 1));
  const auto found = c10::Dispatcher::singleton().findSchema(operatorName);
  if (!found.has_value()) {
    throw std::runtime_error("no operator " + name +
                             " is registered (load the library that defines it with loadOpLibrary first)");
  }
  const c10::FunctionSchema& schema = found->schema();
  const auto isTensor = [](const c10::Argument& a) { return a.type()->kind() == c10::TypeKind::TensorType; };
  bool ok =
      schema.arguments().size() == 2 && schema.returns().size() == 1 && !schema.is_vararg() && !schema.is_varret();
  ok = ok && std::all_of(schema.arguments().begin(), schema.arguments().end(), isTensor) &&
       isTensor(schema.returns()[0]);
  if (!ok) {
    throw ArgumentError("operator " + name + " has the schema " + schemaText(schema) + ", but a transform must be " +
                        name + kSignature);
  }
  for (const c10::Argument& argument : schema.arguments()) {
    if (argument.alias_info() != nullptr && argument.alias_info()->isWrite()) {
      throw ArgumentError("operator " + name + " writes its argument '" + argument.name() + "' in place (" +
                          schemaText(schema) + "); a transform must return a new tensor");
    }
  }
  return *found;
}

}  // namespace

void registerCustomOps(Napi::Object exports) {
  // loadOpLibrary(path) -> the operator names the library registered. The library stays loaded
  // (its operators live in the dispatcher); RTLD_GLOBAL lets one library use another's symbols.
  exportFunction(exports, "loadOpLibrary", [](Args& a) {
    const std::string path = a.string(0);
    const std::vector<std::string> before = operatorNames();
    dlerror();
    if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
      const char* reason = dlerror();
      throw std::runtime_error("cannot load " + path + ": " + (reason != nullptr ? reason : "unknown dlopen error"));
    }
    const std::vector<std::string> after = operatorNames();
    std::vector<std::string> added;
    std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(added));
    Napi::Array names = Napi::Array::New(a.env(), added.size());
    for (size_t k = 0; k < added.size(); ++k) names.Set(static_cast<uint32_t>(k), added[k]);
    return names;
  });

  // customOpSchema(name) -> its schema, after checking that it is a transform.
  exportFunction(exports, "customOpSchema", [](Args& a) {
    return Napi::String::New(a.env(), schemaText(transformOperator(a.string(0)).schema()));
  });

  // callCustomOp(name, images[B,C,H,W] float32, magnitude[B] float32) -> images of the same
  // shape, dtype and device.
  exportFunction(exports, "callCustomOp", [](Args& a) {
    const std::string name = a.string(0);
    const c10::OperatorHandle op = transformOperator(name);
    const at::Tensor images = a.tensor(1);
    const at::Tensor magnitude = a.tensor(2);
    if (images.dim() != 4 || images.scalar_type() != at::kFloat) {
      throw ArgumentError("images must be a float32 tensor [B, C, H, W], got " +
                          std::string(dtypeName(images.scalar_type())) + " " + shapeString(images.sizes()));
    }
    if (magnitude.dim() != 1 || magnitude.size(0) != images.size(0) || magnitude.scalar_type() != at::kFloat ||
        magnitude.device() != images.device()) {
      throw ArgumentError("magnitude must be a float32 tensor [" + std::to_string(images.size(0)) + "] on " +
                          images.device().str());
    }
    torch::jit::Stack stack{images.detach().contiguous(), magnitude.detach().contiguous()};
    {
      at::NoGradGuard noGrad;
      op.callBoxed(stack);
    }
    if (stack.size() != 1 || !stack[0].isTensor() || !stack[0].toTensor().defined()) {
      throw std::runtime_error(name + " returned no tensor");
    }
    const at::Tensor result = stack[0].toTensor();
    if (result.sizes() != images.sizes()) {
      throw std::runtime_error(name + " returned shape " + shapeString(result.sizes()) + " for images of shape " +
                               shapeString(images.sizes()) + "; a transform must keep the shape");
    }
    if (result.scalar_type() != at::kFloat) {
      throw std::runtime_error(name + " returned " + dtypeName(result.scalar_type()) +
                               "; a transform must return float32 images");
    }
    if (result.device() != images.device()) {
      throw std::runtime_error(name + " returned a tensor on " + result.device().str() + " for images on " +
                               images.device().str());
    }
    return wrapTensor(a, result);
  });
}

}  // namespace dna
