// The JS handle over an optimiser (optim.cc): the LibTorch optimiser in a slot that disposing
// empties, so that a handle can outlive what it held.
#pragma once

#include <napi.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <vector>

#include "core/args.h"
#include "core/async.h"

namespace dna {

enum class OptimizerKind { Sgd, Adam };

struct OptimizerSlot {
  OptimizerKind kind;
  std::unique_ptr<torch::optim::Optimizer> optimizer;

  std::vector<at::Tensor>& parameters() { return optimizer->param_groups().front().params(); }
  // Drops the gradients (as PyTorch's set_to_none): the next backward writes fresh ones.
  void zeroGrad() {
    for (auto& parameter : parameters()) parameter.mutable_grad() = at::Tensor();
  }
};

class OptimizerHandle : public Napi::ObjectWrap<OptimizerHandle>, public Busy {
 public:
  static void define(Napi::Env env);
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<OptimizerSlot> slot);
  // Null when `value` is not an OptimizerHandle.
  static OptimizerHandle* unwrap(Napi::Value value);

  explicit OptimizerHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OptimizerHandle>(info) {}

  std::shared_ptr<OptimizerSlot> slot_;
};

// Argument i as a live optimiser (an ArgumentError naming it otherwise: not an Optimizer,
// disposed, or busy).
std::shared_ptr<OptimizerSlot> optimizerArg(Args& a, size_t i);

}  // namespace dna
