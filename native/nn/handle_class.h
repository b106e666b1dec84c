// The JS class behind a handle type defined outside core/handles.cc: one constructor reference
// per Node environment (the environment's instance-data slot belongs to core/handles.cc), kept
// until the environment shuts down. The classes are not exported, so JS can only get their
// instances from our functions.
#pragma once

#include <napi.h>

#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace dna {

template <typename Handle>
class HandleClass {
 public:
  static void remember(Napi::Env env, Napi::Function cls) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      classes_[env].Reset(cls, 1);
    }
    napi_env raw = env;
    env.AddCleanupHook([raw] {
      std::lock_guard<std::mutex> lock(mutex_);
      classes_.erase(raw);
    });
  }

  // A new, empty instance of the class.
  static Napi::Object instance(Napi::Env env) {
    Napi::Function cls;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto found = classes_.find(env);
      if (found == classes_.end()) throw std::logic_error("handle class used before it was defined");
      cls = found->second.Value();
    }
    return cls.New({});
  }

 private:
  static inline std::mutex mutex_;
  static inline std::unordered_map<napi_env, Napi::FunctionReference> classes_;
};

}  // namespace dna
