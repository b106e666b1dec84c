#include "core/handles.h"

#include <atomic>
#include <deque>
#include <memory>

#include "core/handle_class.h"

namespace dna {

namespace detail {

size_t nextHandleSlot() {
  static std::atomic<size_t> next{0};
  return next.fetch_add(1);
}

// The environment's instance data: a constructor reference per handle type. A deque, so that a
// reference handed out stays where it is when a later slot is added.
struct AddonData {
  std::deque<Napi::FunctionReference> classes;
};

Napi::FunctionReference& handleClassSlot(Napi::Env env, size_t slot) {
  auto* data = env.GetInstanceData<AddonData>();
  if (data == nullptr) {
    data = new AddonData();
    env.SetInstanceData<AddonData>(data);
  }
  if (data->classes.size() <= slot) data->classes.resize(slot + 1);
  return data->classes[slot];
}

}  // namespace detail

namespace {

std::atomic<int64_t> liveTensors{0};

// Type tags tell our handles apart from any other object, even one built on their prototype.
constexpr napi_type_tag kTensorTag = {0x6a1d0c2e5b7f4a31ULL, 0x9e3c4b8a2f6d1e07ULL};
constexpr napi_type_tag kGeneratorTag = {0x3b9f1c7e2a5d4e68ULL, 0x81c2d4f6a8b0e3c5ULL};

// Bytes reported to V8 so that the garbage collector sees what CPU tensors keep alive: their
// storage (an expanded view of one element is one element, not its numel).
int64_t hostBytes(const at::Tensor& tensor) {
  if (!tensor.defined() || !tensor.device().is_cpu() || !tensor.has_storage()) return 0;
  return static_cast<int64_t>(tensor.storage().nbytes());
}

}  // namespace

void TensorHandle::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeTensor", {});
  HandleClass<TensorHandle>::remember(env, cls);
  exports.Set("NativeTensor", cls);
}

Napi::Object TensorHandle::wrap(Napi::Env env, at::Tensor tensor) {
  Napi::Object object = HandleClass<TensorHandle>::instance(env);
  object.TypeTag(&kTensorTag);
  Unwrap(object)->hold(env, std::move(tensor));
  return object;
}

TensorHandle* TensorHandle::unwrap(Napi::Value value) {
  if (!value.IsObject()) return nullptr;
  Napi::Object object = value.As<Napi::Object>();
  if (!object.CheckTypeTag(&kTensorTag)) return nullptr;
  return Unwrap(object);
}

int64_t TensorHandle::live() { return liveTensors.load(); }

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {}

TensorHandle::~TensorHandle() {
  if (tensor_.defined()) liveTensors.fetch_sub(1);
}

void TensorHandle::Finalize(Napi::Env env) {
  if (accountedBytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(env, -accountedBytes_);
  accountedBytes_ = 0;
}

void TensorHandle::hold(Napi::Env env, at::Tensor tensor) {
  if (!tensor.defined()) return;
  tensor_ = std::move(tensor);
  liveTensors.fetch_add(1);
  accountedBytes_ = hostBytes(tensor_);
  if (accountedBytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(env, accountedBytes_);
}

void TensorHandle::dispose(Napi::Env env) {
  if (!tensor_.defined()) return;
  tensor_ = at::Tensor();
  liveTensors.fetch_sub(1);
  if (accountedBytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(env, -accountedBytes_);
  accountedBytes_ = 0;
}

void GeneratorHandle::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeGenerator", {});
  HandleClass<GeneratorHandle>::remember(env, cls);
  exports.Set("NativeGenerator", cls);
}

Napi::Object GeneratorHandle::wrap(Napi::Env env, at::Generator generator) {
  Napi::Object object = HandleClass<GeneratorHandle>::instance(env);
  object.TypeTag(&kGeneratorTag);
  Unwrap(object)->generator_ = std::move(generator);
  return object;
}

GeneratorHandle* GeneratorHandle::unwrap(Napi::Value value) {
  if (!value.IsObject()) return nullptr;
  Napi::Object object = value.As<Napi::Object>();
  if (!object.CheckTypeTag(&kGeneratorTag)) return nullptr;
  return Unwrap(object);
}

GeneratorHandle::GeneratorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GeneratorHandle>(info) {}

}  // namespace dna
