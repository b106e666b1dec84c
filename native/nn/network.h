// A network the addon can hold in a ModuleHandle: a torch::nn::Module with one tensor in and
// one tensor out, that checks its input and can describe its configuration.
#pragma once

#include <napi.h>
#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "core/errors.h"
#include "nn/execution.h"

namespace dna {

class Network : public torch::nn::Module {
 public:
  using torch::nn::Module::Module;

  // Throws ArgumentError naming what does not fit (shape, channels, dtype, device).
  virtual void checkInput(const at::Tensor& input) const = 0;
  virtual at::Tensor forward(const at::Tensor& input) = 0;
  // What the network's last layer reads (a WideResNet's pooled activations), for heads of other models.
  virtual at::Tensor features(const at::Tensor& input) {
    throw ArgumentError("this network (" + name() + ") gives no features");
  }
  // The configuration it was built from, as a JS object (to store beside its weights).
  virtual Napi::Object config(Napi::Env env) const = 0;

  const Execution& execution() const { return execution_; }
  // Converts the 4-d parameters and buffers to the memory format asked for; forward() follows
  // the rest (input layout, autocast).
  void setExecution(const Execution& execution) {
    std::vector<at::Tensor> tensors = parameters();
    for (const at::Tensor& buffer : buffers()) tensors.push_back(buffer);
    setMemoryFormat(tensors, execution.channelsLast);
    execution_ = execution;
  }

 private:
  Execution execution_;
};

}  // namespace dna
