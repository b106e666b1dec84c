// Optimisers: LibTorch's SGD and Adam behind a handle, with a state that can be saved and loaded
// to resume exactly, and gradient clipping by total norm.
#include <ATen/ATen.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/types.h>
// clip_grad.h uses torch::Tensor and friends without including them.
#include <torch/nn/utils/clip_grad.h>

#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/args.h"
#include "core/errors.h"
#include "core/handle_class.h"
#include "core/handles.h"
#include "core/registry.h"
#include "nn/optimizer_handle.h"
#include "nn/options.h"

namespace dna {

namespace {

const char* kindName(OptimizerKind kind) { return kind == OptimizerKind::Sgd ? "sgd" : "adam"; }

// ---- State keys ----
// LibTorch keys per-parameter state by the parameter's TensorImpl: as a string of its address
// in 1.x, as the address itself in 2.x. The overload picks whichever this LibTorch uses.
using StateMap = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;
using StateKey = StateMap::key_type;

inline std::string stateKeyOf(const at::Tensor& parameter, std::string*) {
  std::ostringstream text;
  text << static_cast<const void*>(parameter.unsafeGetTensorImpl());
  return text.str();
}
inline void* stateKeyOf(const at::Tensor& parameter, void**) { return parameter.unsafeGetTensorImpl(); }
inline const void* stateKeyOf(const at::Tensor& parameter, const void**) { return parameter.unsafeGetTensorImpl(); }

StateKey stateKey(const at::Tensor& parameter) { return stateKeyOf(parameter, static_cast<StateKey*>(nullptr)); }

// ---- Options ----

torch::optim::SGDOptions readSgdOptions(Napi::Value value) {
  OptionsReader reader(value, "options");
  const double lr = reader.number("lr");
  reader.require(lr >= 0, "lr", "non-negative", lr);
  const double momentum = reader.number("momentum", 0.0);
  reader.require(momentum >= 0, "momentum", "non-negative", momentum);
  const double dampening = reader.number("dampening", 0.0);
  reader.require(dampening >= 0 && dampening <= 1, "dampening", "in [0, 1]", dampening);
  const double weightDecay = reader.number("weightDecay", 0.0);
  reader.require(weightDecay >= 0, "weightDecay", "non-negative", weightDecay);
  const bool nesterov = reader.boolean("nesterov", false);
  if (nesterov && (momentum <= 0 || dampening != 0)) {
    throw ArgumentError("options.nesterov needs a positive momentum and zero dampening");
  }
  return torch::optim::SGDOptions(lr)
      .momentum(momentum)
      .dampening(dampening)
      .weight_decay(weightDecay)
      .nesterov(nesterov);
}

torch::optim::AdamOptions readAdamOptions(Napi::Value value) {
  OptionsReader reader(value, "options");
  const double lr = reader.number("lr", 1e-3);
  reader.require(lr >= 0, "lr", "non-negative", lr);
  const std::vector<double> betas =
      reader.has("betas") ? reader.numbers("betas", 2, 0.0) : std::vector<double>{0.9, 0.999};
  for (double beta : betas) reader.require(beta >= 0 && beta < 1, "betas", "in [0, 1)", beta);
  const double eps = reader.number("eps", 1e-8);
  reader.require(eps >= 0, "eps", "non-negative", eps);
  const double weightDecay = reader.number("weightDecay", 0.0);
  reader.require(weightDecay >= 0, "weightDecay", "non-negative", weightDecay);
  return torch::optim::AdamOptions(lr).betas(std::make_tuple(betas[0], betas[1])).eps(eps).weight_decay(weightDecay);
}

Napi::Object optionsObject(Napi::Env env, const OptimizerSlot& slot) {
  Napi::Object object = Napi::Object::New(env);
  const auto& options = slot.optimizer->param_groups().front().options();
  if (slot.kind == OptimizerKind::Sgd) {
    const auto& sgd = static_cast<const torch::optim::SGDOptions&>(options);
    object.Set("lr", sgd.lr());
    object.Set("momentum", sgd.momentum());
    object.Set("dampening", sgd.dampening());
    object.Set("weightDecay", sgd.weight_decay());
    object.Set("nesterov", sgd.nesterov());
  } else {
    const auto& adam = static_cast<const torch::optim::AdamOptions&>(options);
    Napi::Array betas = Napi::Array::New(env, 2);
    betas.Set(0u, std::get<0>(adam.betas()));
    betas.Set(1u, std::get<1>(adam.betas()));
    object.Set("lr", adam.lr());
    object.Set("betas", betas);
    object.Set("eps", adam.eps());
    object.Set("weightDecay", adam.weight_decay());
  }
  return object;
}

// The parameters an optimiser may own: floating-point leaves that record gradients, each once.
std::vector<at::Tensor> readParameters(Args& a, size_t i) {
  std::vector<at::Tensor> parameters = a.tensorList(i);
  if (parameters.empty()) throw ArgumentError("an optimizer needs at least one parameter");
  std::unordered_set<const void*> seen;
  for (size_t k = 0; k < parameters.size(); ++k) {
    const at::Tensor& p = parameters[k];
    const std::string which = "parameter " + std::to_string(k);
    if (!p.is_floating_point())
      throw ArgumentError(which + " is " + dtypeName(p.scalar_type()) + "; parameters must be floating point");
    if (!p.requires_grad()) throw ArgumentError(which + " does not require gradients (call requireGrad() on it first)");
    if (!p.is_leaf())
      throw ArgumentError(which + " is computed from other tensors; optimise leaf tensors (model parameters)");
    if (!seen.insert(p.unsafeGetTensorImpl()).second) throw ArgumentError(which + " appears twice in the list");
  }
  return parameters;
}

std::shared_ptr<OptimizerSlot> makeSlot(OptimizerKind kind, std::vector<at::Tensor> parameters, Napi::Value options) {
  auto slot = std::make_shared<OptimizerSlot>();
  slot->kind = kind;
  if (kind == OptimizerKind::Sgd) {
    slot->optimizer = std::make_unique<torch::optim::SGD>(std::move(parameters), readSgdOptions(options));
  } else {
    slot->optimizer = std::make_unique<torch::optim::Adam>(std::move(parameters), readAdamOptions(options));
  }
  return slot;
}

// ---- State ----
// { kind, parameters, options, tensors: { "<i>.<name>": Tensor }, numbers: { "<i>.step": n } }:
// per-parameter entries keyed by the parameter's index; copies, so that saving is a snapshot.

Napi::Object saveState(Args& a, const OptimizerSlot& slot) {
  Napi::Env env = a.env();
  Napi::Object tensors = Napi::Object::New(env);
  Napi::Object numbers = Napi::Object::New(env);
  auto& optimizer = *slot.optimizer;
  const auto& parameters = optimizer.param_groups().front().params();
  at::NoGradGuard noGrad;
  const auto copy = [&](const std::string& key, const at::Tensor& tensor) {
    if (tensor.defined()) tensors.Set(key, wrapTensor(a, tensor.detach().clone()));
  };
  for (size_t i = 0; i < parameters.size(); ++i) {
    auto found = optimizer.state().find(stateKey(parameters[i]));
    if (found == optimizer.state().end()) continue;
    const std::string prefix = std::to_string(i) + ".";
    if (slot.kind == OptimizerKind::Sgd) {
      const auto& state = static_cast<const torch::optim::SGDParamState&>(*found->second);
      copy(prefix + "momentumBuffer", state.momentum_buffer());
    } else {
      const auto& state = static_cast<const torch::optim::AdamParamState&>(*found->second);
      numbers.Set(prefix + "step", Napi::Number::New(env, static_cast<double>(state.step())));
      copy(prefix + "expAvg", state.exp_avg());
      copy(prefix + "expAvgSq", state.exp_avg_sq());
      copy(prefix + "maxExpAvgSq", state.max_exp_avg_sq());
    }
  }
  Napi::Object object = Napi::Object::New(env);
  object.Set("kind", kindName(slot.kind));
  object.Set("parameters", Napi::Number::New(env, static_cast<double>(parameters.size())));
  object.Set("options", optionsObject(env, slot));
  object.Set("tensors", tensors);
  object.Set("numbers", numbers);
  return object;
}

// "<i>.<name>" -> (i, name), i checked against the parameter count.
std::pair<size_t, std::string> splitKey(const std::string& key, size_t count) {
  const size_t dot = key.find('.');
  const std::string index = key.substr(0, dot == std::string::npos ? 0 : dot);
  const bool digits = !index.empty() && index.size() < 10 && index.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoul(index) >= count) {
    throw ArgumentError("optimizer state entry '" + key +
                        "' does not name a parameter (expected '<index>.<name>' with index below " +
                        std::to_string(count) + ")");
  }
  return {std::stoul(index), key.substr(dot + 1)};
}

void loadState(Args& a, OptimizerSlot& slot, size_t index) {
  if (a.isMissing(index) || !a[index].IsObject() || a[index].IsArray()) a.fail(index, "an optimizer state object");
  Napi::Object object = a[index].As<Napi::Object>();
  Napi::Value kind = object.Get("kind");
  if (!kind.IsString() || kind.As<Napi::String>().Utf8Value() != kindName(slot.kind)) {
    throw ArgumentError("the state's kind is " +
                        (kind.IsString() ? "'" + kind.As<Napi::String>().Utf8Value() + "'" : jsTypeName(kind)) +
                        ", this optimizer is '" + kindName(slot.kind) + "'");
  }
  auto& optimizer = *slot.optimizer;
  const std::vector<at::Tensor> parameters = optimizer.param_groups().front().params();
  OptionsReader reader(object, "state");
  const int64_t count = reader.integer("parameters");
  if (count != static_cast<int64_t>(parameters.size())) {
    throw ArgumentError("the state is for " + std::to_string(count) + " parameters, this optimizer has " +
                        std::to_string(parameters.size()));
  }
  // Options: parsed and checked like the constructor's.
  std::unique_ptr<torch::optim::OptimizerOptions> options;
  if (slot.kind == OptimizerKind::Sgd)
    options = std::make_unique<torch::optim::SGDOptions>(readSgdOptions(object.Get("options")));
  else
    options = std::make_unique<torch::optim::AdamOptions>(readAdamOptions(object.Get("options")));

  // Entries, grouped per parameter.
  struct Entry {
    std::unordered_map<std::string, at::Tensor> tensors;
    c10::optional<int64_t> step;
  };
  std::vector<Entry> entries(parameters.size());
  Napi::Value tensorsValue = object.Get("tensors");
  if (!tensorsValue.IsObject() || tensorsValue.IsArray())
    throw ArgumentError("state.tensors must be an object of Tensors");
  Napi::Object tensors = tensorsValue.As<Napi::Object>();
  Napi::Array tensorKeys = tensors.GetPropertyNames();
  const std::unordered_set<std::string> tensorNames =
      slot.kind == OptimizerKind::Sgd ? std::unordered_set<std::string>{"momentumBuffer"}
                                      : std::unordered_set<std::string>{"expAvg", "expAvgSq", "maxExpAvgSq"};
  for (uint32_t k = 0; k < tensorKeys.Length(); ++k) {
    const std::string key = tensorKeys.Get(k).ToString().Utf8Value();
    const auto [i, name] = splitKey(key, parameters.size());
    if (tensorNames.count(name) == 0)
      throw ArgumentError("optimizer state entry '" + key + "' is not part of a " + kindName(slot.kind) + " state");
    TensorHandle* handle = TensorHandle::unwrap(tensors.Get(key));
    if (handle == nullptr) throw ArgumentError("optimizer state entry '" + key + "' is not a Tensor");
    if (handle->disposed()) throw ArgumentError("optimizer state entry '" + key + "' is a disposed Tensor");
    const at::Tensor& tensor = handle->tensor();
    if (tensor.sizes() != parameters[i].sizes() || !tensor.is_floating_point()) {
      throw ArgumentError("optimizer state entry '" + key + "' has shape " + c10::str(tensor.sizes()) + " and dtype " +
                          dtypeName(tensor.scalar_type()) + "; parameter " + std::to_string(i) + " has shape " +
                          c10::str(parameters[i].sizes()));
    }
    entries[i].tensors[name] = tensor;
  }
  Napi::Value numbersValue = object.Get("numbers");
  if (!numbersValue.IsUndefined() && !numbersValue.IsNull()) {
    if (!numbersValue.IsObject() || numbersValue.IsArray())
      throw ArgumentError("state.numbers must be an object of numbers");
    Napi::Object numbers = numbersValue.As<Napi::Object>();
    Napi::Array numberKeys = numbers.GetPropertyNames();
    OptionsReader numberReader(numbers, "state.numbers");
    for (uint32_t k = 0; k < numberKeys.Length(); ++k) {
      const std::string key = numberKeys.Get(k).ToString().Utf8Value();
      const auto [i, name] = splitKey(key, parameters.size());
      if (slot.kind != OptimizerKind::Adam || name != "step") {
        throw ArgumentError("optimizer state entry '" + key + "' is not part of a " + kindName(slot.kind) + " state");
      }
      const int64_t step = numberReader.integer(key.c_str());
      numberReader.require(step >= 0, key.c_str(), "a non-negative integer", static_cast<double>(step));
      entries[i].step = step;
    }
  }

  // Build the new per-parameter states (copies on each parameter's device and dtype).
  at::NoGradGuard noGrad;
  const auto own = [](const at::Tensor& source, const at::Tensor& parameter) {
    return source.detach().to(parameter.options(), /*non_blocking=*/false, /*copy=*/true);
  };
  std::vector<std::pair<size_t, std::unique_ptr<torch::optim::OptimizerParamState>>> states;
  for (size_t i = 0; i < parameters.size(); ++i) {
    Entry& entry = entries[i];
    if (entry.tensors.empty() && !entry.step) continue;
    if (slot.kind == OptimizerKind::Sgd) {
      auto state = std::make_unique<torch::optim::SGDParamState>();
      state->momentum_buffer(own(entry.tensors.at("momentumBuffer"), parameters[i]));
      states.emplace_back(i, std::move(state));
    } else {
      if (!entry.step || entry.tensors.count("expAvg") == 0 || entry.tensors.count("expAvgSq") == 0) {
        throw ArgumentError("the adam state of parameter " + std::to_string(i) +
                            " needs step, expAvg and expAvgSq together");
      }
      auto state = std::make_unique<torch::optim::AdamParamState>();
      state->step(*entry.step);
      state->exp_avg(own(entry.tensors.at("expAvg"), parameters[i]));
      state->exp_avg_sq(own(entry.tensors.at("expAvgSq"), parameters[i]));
      if (entry.tensors.count("maxExpAvgSq") != 0)
        state->max_exp_avg_sq(own(entry.tensors.at("maxExpAvgSq"), parameters[i]));
      states.emplace_back(i, std::move(state));
    }
  }

  // Everything checked: replace.
  optimizer.param_groups().front().set_options(std::move(options));
  optimizer.state().clear();
  for (auto& [i, state] : states) optimizer.state()[stateKey(parameters[i])] = std::move(state);
}

}  // namespace

constexpr napi_type_tag kOptimizerTag = {0x2f7d4c19a8e35b60ULL, 0x6b03e8d5c41f9a72ULL};

void OptimizerHandle::define(Napi::Env env) {
  HandleClass<OptimizerHandle>::remember(env, DefineClass(env, "NativeOptimizer", {}));
}

Napi::Object OptimizerHandle::wrap(Napi::Env env, std::shared_ptr<OptimizerSlot> slot) {
  Napi::Object object = HandleClass<OptimizerHandle>::instance(env);
  object.TypeTag(&kOptimizerTag);
  Unwrap(object)->slot_ = std::move(slot);
  return object;
}

OptimizerHandle* OptimizerHandle::unwrap(Napi::Value value) {
  if (!value.IsObject()) return nullptr;
  Napi::Object object = value.As<Napi::Object>();
  if (!object.CheckTypeTag(&kOptimizerTag)) return nullptr;
  return Unwrap(object);
}

std::shared_ptr<OptimizerSlot> optimizerArg(Args& a, size_t i) {
  OptimizerHandle* handle = i < a.size() ? OptimizerHandle::unwrap(a[i]) : nullptr;
  if (handle == nullptr) a.fail(i, "an Optimizer");
  if (!handle->slot_) throw ArgumentError("argument " + std::to_string(i + 1) + " is a disposed Optimizer");
  if (handle->busy()) throwBusy(i, "Optimizer");
  return handle->slot_;
}

void registerOptim(Napi::Object exports) {
  OptimizerHandle::define(exports.Env());

  // sgd(parameters, { lr, momentum?, dampening?, weightDecay?, nesterov? })
  exportFunction(exports, "sgd", [](Args& a) {
    std::vector<at::Tensor> parameters = readParameters(a, 0);
    if (a.isMissing(1) || !a[1].IsObject()) a.fail(1, "an options object");
    return OptimizerHandle::wrap(a.env(), makeSlot(OptimizerKind::Sgd, std::move(parameters), a[1]));
  });
  // adam(parameters, { lr?, betas?, eps?, weightDecay? })
  exportFunction(exports, "adam", [](Args& a) {
    std::vector<at::Tensor> parameters = readParameters(a, 0);
    Napi::Value options = a.isMissing(1) ? Napi::Object::New(a.env()) : a[1];
    return OptimizerHandle::wrap(a.env(), makeSlot(OptimizerKind::Adam, std::move(parameters), options));
  });

  // One update from the gradients present (parameters without a gradient are left alone).
  exportFunction(exports, "optimizerStep", [](Args& a) {
    const auto slot = optimizerArg(a, 0);
    slot->optimizer->step();
    return a.env().Undefined();
  });
  exportFunction(exports, "optimizerZeroGrad", [](Args& a) {
    optimizerArg(a, 0)->zeroGrad();
    return a.env().Undefined();
  });
  exportFunction(exports, "optimizerSetLr", [](Args& a) {
    const auto slot = optimizerArg(a, 0);
    const double lr = a.number(1);
    if (!(std::isfinite(lr) && lr >= 0))
      throw ArgumentError("the learning rate must be a non-negative finite number, got " +
                          OptionsReader::formatNumber(lr));
    for (auto& group : slot->optimizer->param_groups()) group.options().set_lr(lr);
    return a.env().Undefined();
  });
  exportFunction(exports, "optimizerGetLr", [](Args& a) {
    const auto slot = optimizerArg(a, 0);
    return Napi::Number::New(a.env(), slot->optimizer->param_groups().front().options().get_lr());
  });
  exportFunction(exports, "optimizerOptions", [](Args& a) { return optionsObject(a.env(), *optimizerArg(a, 0)); });
  exportFunction(exports, "optimizerKind",
                 [](Args& a) { return Napi::String::New(a.env(), kindName(optimizerArg(a, 0)->kind)); });
  exportFunction(exports, "optimizerParameters",
                 [](Args& a) { return wrapTensors(a, optimizerArg(a, 0)->parameters()); });
  exportFunction(exports, "optimizerState", [](Args& a) { return saveState(a, *optimizerArg(a, 0)); });
  exportFunction(exports, "optimizerLoadState", [](Args& a) {
    const auto slot = optimizerArg(a, 0);
    loadState(a, *slot, 1);
    return a.env().Undefined();
  });
  exportFunction(exports, "optimizerDispose", [](Args& a) {
    OptimizerHandle* handle = a.isMissing(0) ? nullptr : OptimizerHandle::unwrap(a[0]);
    if (handle == nullptr) a.fail(0, "an Optimizer");
    if (handle->busy()) throwBusy(0, "Optimizer");
    handle->slot_.reset();
    return a.env().Undefined();
  });

  exportFunction(exports, "optimizerIsDisposed", [](Args& a) {
    OptimizerHandle* handle = a.isMissing(0) ? nullptr : OptimizerHandle::unwrap(a[0]);
    if (handle == nullptr) a.fail(0, "an Optimizer");
    return Napi::Boolean::New(a.env(), !handle->slot_);
  });

  // clipGradNorm(parameters, maxNorm): scales the gradients so that their total L2 norm is at
  // most maxNorm; returns the norm before clipping.
  exportFunction(exports, "clipGradNorm", [](Args& a) {
    const std::vector<at::Tensor> parameters = a.tensorList(0);
    const double maxNorm = a.number(1);
    if (!(std::isfinite(maxNorm) && maxNorm > 0))
      throw ArgumentError("maxNorm must be a positive finite number, got " + OptionsReader::formatNumber(maxNorm));
    return Napi::Number::New(a.env(), torch::nn::utils::clip_grad_norm_(parameters, maxNorm));
  });
}

}  // namespace dna
