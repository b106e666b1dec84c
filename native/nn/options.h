// Reading an options object from JS (a model config, optimiser hyperparameters): each field
// checked for its JS type and range, the message naming the field ("config.depth must be ...").
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "core/args.h"
#include "core/errors.h"

namespace dna {

class OptionsReader {
 public:
  // `what` names the object in messages: "config", "options".
  OptionsReader(Napi::Value value, std::string what) : what_(std::move(what)) {
    if (!value.IsObject() || value.IsArray() || value.IsFunction()) {
      throw ArgumentError(what_ + " must be an object, got " + jsTypeName(value));
    }
    object_ = value.As<Napi::Object>();
  }

  bool has(const char* key) const {
    Napi::Value value = object_.Get(key);
    return !value.IsUndefined() && !value.IsNull();
  }

  double number(const char* key) const {
    Napi::Value value = object_.Get(key);
    if (!value.IsNumber()) fail(key, "a number", value);
    const double number = value.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(number)) fail(key, "a finite number", value);
    return number;
  }
  double number(const char* key, double fallback) const { return has(key) ? number(key) : fallback; }

  int64_t integer(const char* key) const {
    Napi::Value value = object_.Get(key);
    const double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : std::nan("");
    if (!std::isfinite(number) || std::floor(number) != number || std::fabs(number) > 9007199254740991.0) {
      fail(key, "an integer", value);
    }
    return static_cast<int64_t>(number);
  }
  int64_t integer(const char* key, int64_t fallback) const { return has(key) ? integer(key) : fallback; }

  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    Napi::Value value = object_.Get(key);
    if (!value.IsString()) fail(key, "a string", value);
    return value.As<Napi::String>().Utf8Value();
  }

  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    Napi::Value value = object_.Get(key);
    if (!value.IsBoolean()) fail(key, "a boolean", value);
    return value.As<Napi::Boolean>().Value();
  }

  // A number repeated `count` times, or an array of `count` finite numbers.
  std::vector<double> numbers(const char* key, size_t count, double fallback) const {
    if (!has(key)) return std::vector<double>(count, fallback);
    Napi::Value value = object_.Get(key);
    if (value.IsNumber()) return std::vector<double>(count, number(key));
    const std::string expectation = "a number or an array of " + std::to_string(count) + " numbers";
    if (!value.IsArray()) fail(key, expectation, value);
    Napi::Array array = value.As<Napi::Array>();
    if (array.Length() != count) {
      throw ArgumentError(what_ + "." + key + " must be " + expectation + ", got an array of " +
                          std::to_string(array.Length()));
    }
    std::vector<double> values;
    for (uint32_t i = 0; i < count; ++i) {
      Napi::Value item = array.Get(i);
      const double number = item.IsNumber() ? item.As<Napi::Number>().DoubleValue() : std::nan("");
      if (!std::isfinite(number)) fail(key, expectation, value);
      values.push_back(number);
    }
    return values;
  }

  // A range check with a message naming the field and the value.
  void require(bool ok, const char* key, const std::string& rule, double value) const {
    if (ok) return;
    throw ArgumentError(what_ + "." + key + " must be " + rule + ", got " + formatNumber(value));
  }

  static std::string formatNumber(double value) {
    std::ostringstream text;
    text << value;
    return text.str();
  }

 private:
  [[noreturn]] void fail(const char* key, const std::string& expectation, const Napi::Value& value) const {
    std::string got = jsTypeName(value);
    if (value.IsNumber()) got = formatNumber(value.As<Napi::Number>().DoubleValue());
    throw ArgumentError(what_ + "." + key + " must be " + expectation + ", got " + got);
  }

  Napi::Object object_;
  std::string what_;
};

}  // namespace dna
