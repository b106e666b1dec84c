// The JS class behind each handle type (tensors, generators, modules, optimisers): one
// constructor reference per handle type and Node environment, kept in the environment's
// instance data (core/handles.cc) and released when the environment shuts down. The module and
// optimiser classes are not exported, so JS can only get their instances from our functions.
#pragma once

#include <napi.h>

#include <cstddef>
#include <stdexcept>

namespace dna {

namespace detail {
// A new slot number, one per handle type (the first call of each HandleClass<T>::slot()).
size_t nextHandleSlot();
// The environment's constructor reference in `slot` (empty until remembered).
Napi::FunctionReference& handleClassSlot(Napi::Env env, size_t slot);
}  // namespace detail

template <typename Handle>
class HandleClass {
 public:
  static void remember(Napi::Env env, Napi::Function cls) {
    detail::handleClassSlot(env, slot()) = Napi::Persistent(cls);
  }

  // A new, empty instance of the class.
  static Napi::Object instance(Napi::Env env) {
    Napi::FunctionReference& cls = detail::handleClassSlot(env, slot());
    if (cls.IsEmpty()) throw std::logic_error("handle class used before it was defined");
    return cls.New({});
  }

 private:
  static size_t slot() {
    static const size_t id = detail::nextHandleSlot();
    return id;
  }
};

}  // namespace dna
