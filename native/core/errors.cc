#include "core/errors.h"

#include <c10/util/Exception.h>

#include <new>

namespace dna {

namespace {

// c10 messages can span several lines (with "Exception raised from ..." context); the first
// paragraph is what a user needs.
std::string firstParagraph(const std::string& message) {
  const auto end = message.find("\nException raised from");
  std::string text = end == std::string::npos ? message : message.substr(0, end);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

Napi::Error currentExceptionToJs(Napi::Env env, const char* where) {
  const std::string prefix = std::string(where) + ": ";
  try {
    throw;
  } catch (const ArgumentError& e) {
    auto error = Napi::TypeError::New(env, prefix + e.what());
    error.Set("code", Napi::String::New(env, "DNA_INVALID_ARGUMENT"));
    return error;
  } catch (const c10::OutOfMemoryError& e) {
    auto error = Napi::Error::New(env, prefix + "out of memory: " + firstParagraph(e.what_without_backtrace()));
    error.Set("code", Napi::String::New(env, "DNA_OUT_OF_MEMORY"));
    return error;
  } catch (const c10::Error& e) {
    auto error = Napi::Error::New(env, prefix + firstParagraph(e.what_without_backtrace()));
    error.Set("code", Napi::String::New(env, "DNA_TORCH_ERROR"));
    return error;
  } catch (const std::bad_alloc&) {
    auto error = Napi::Error::New(env, prefix + "out of memory");
    error.Set("code", Napi::String::New(env, "DNA_OUT_OF_MEMORY"));
    return error;
  } catch (const std::exception& e) {
    return Napi::Error::New(env, prefix + e.what());
  } catch (...) {
    return Napi::Error::New(env, prefix + "unknown native error");
  }
}

}  // namespace dna
