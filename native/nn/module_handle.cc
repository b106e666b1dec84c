#include "nn/module_handle.h"

#include "core/errors.h"
#include "core/handle_class.h"

namespace dna {

namespace {

constexpr napi_type_tag kModuleTag = {0x5c8e2a4f71b03d96ULL, 0xd14b7e9a03c62f58ULL};

}  // namespace

void ModuleHandle::define(Napi::Env env) {
  HandleClass<ModuleHandle>::remember(env, DefineClass(env, "NativeModule", {}));
}

Napi::Object ModuleHandle::wrap(Napi::Env env, std::shared_ptr<Network> network, int64_t hostBytes) {
  Napi::Object object = HandleClass<ModuleHandle>::instance(env);
  object.TypeTag(&kModuleTag);
  ModuleHandle* handle = Unwrap(object);
  handle->network_ = std::move(network);
  handle->accountedBytes_ = hostBytes;
  if (hostBytes != 0) Napi::MemoryManagement::AdjustExternalMemory(env, hostBytes);
  return object;
}

void ModuleHandle::dispose(Napi::Env env) {
  network_.reset();
  if (accountedBytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(env, -accountedBytes_);
  accountedBytes_ = 0;
}

void ModuleHandle::Finalize(Napi::Env env) {
  if (accountedBytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(env, -accountedBytes_);
  accountedBytes_ = 0;
}

ModuleHandle* ModuleHandle::unwrap(Napi::Value value) {
  if (!value.IsObject()) return nullptr;
  Napi::Object object = value.As<Napi::Object>();
  if (!object.CheckTypeTag(&kModuleTag)) return nullptr;
  return Unwrap(object);
}

ModuleHandle::ModuleHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModuleHandle>(info) {}

std::shared_ptr<Network> networkArg(Args& args, size_t i) {
  ModuleHandle* handle = i < args.size() ? ModuleHandle::unwrap(args[i]) : nullptr;
  if (handle == nullptr) args.fail(i, "a Module");
  if (handle->disposed()) throw ArgumentError("argument " + std::to_string(i + 1) + " is a disposed Module");
  if (handle->busy()) throwBusy(i, "Module");
  return handle->network();
}

}  // namespace dna
