// Every native entry point runs inside `guarded`: a C++ exception of any kind becomes a JS
// Error naming the entry point, never an abort.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>

namespace dna {

// A bad argument from JS: wrong type, shape, range. Reported as a TypeError/RangeError-like Error.
class ArgumentError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Converts the exception being handled (inside a catch block) into a JS Error whose message
// starts with `where`. c10::Error loses its C++ backtrace: users get the readable message.
Napi::Error currentExceptionToJs(Napi::Env env, const char* where);

template <typename Fn>
Napi::Value guarded(Napi::Env env, const char* where, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw currentExceptionToJs(env, where);
  }
}

}  // namespace dna
