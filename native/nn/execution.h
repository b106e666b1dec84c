// How a network runs, apart from its weights: the memory format of its 4-d tensors and
// automatic mixed precision (autocast). Both change speed, not the model.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

namespace dna {

struct Execution {
  // NHWC for the input, the activations and the convolution weights (faster convolutions on
  // tensor cores); NCHW otherwise.
  bool channelsLast = false;
  // The dtype autocast runs its low-precision ops in (convolutions, matmuls): bfloat16, or none
  // for float32 throughout. Parameters, their gradients and the logits stay float32.
  std::optional<at::ScalarType> autocast;
};

// Autocast to `dtype` for ops on `device` while alive; the previous state returns on exit (also
// when an exception leaves the scope), and the cast-weight cache is cleared with the outermost
// scope, as torch.autocast does.
class AutocastScope {
 public:
  AutocastScope(at::DeviceType device, at::ScalarType dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  at::DeviceType device_;
  bool wasEnabled_;
  at::ScalarType previousDtype_;
};

// Converts the 4-d tensors among `tensors` (a network's parameters and buffers) in place to
// channels-last (or back to contiguous): the tensors keep their identity, so optimisers and
// handles given out follow.
void setMemoryFormat(const std::vector<at::Tensor>& tensors, bool channelsLast);

}  // namespace dna
