#include "nn/execution.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace dna {

namespace {

// LibTorch 2.4 made the autocast state a function of the device type; 1.13 has one pair of
// functions per device. Only CPU and CUDA reach here.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool autocastEnabled(at::DeviceType device) { return at::autocast::is_autocast_enabled(device); }
void setAutocastEnabled(at::DeviceType device, bool on) { at::autocast::set_autocast_enabled(device, on); }
at::ScalarType autocastDtype(at::DeviceType device) { return at::autocast::get_autocast_dtype(device); }
void setAutocastDtype(at::DeviceType device, at::ScalarType dtype) { at::autocast::set_autocast_dtype(device, dtype); }
#else
bool autocastEnabled(at::DeviceType device) {
  return device == at::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
void setAutocastEnabled(at::DeviceType device, bool on) {
  if (device == at::kCUDA)
    at::autocast::set_enabled(on);
  else
    at::autocast::set_cpu_enabled(on);
}
at::ScalarType autocastDtype(at::DeviceType device) {
  return device == at::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void setAutocastDtype(at::DeviceType device, at::ScalarType dtype) {
  if (device == at::kCUDA)
    at::autocast::set_autocast_gpu_dtype(dtype);
  else
    at::autocast::set_autocast_cpu_dtype(dtype);
}
#endif

}  // namespace

AutocastScope::AutocastScope(at::DeviceType device, at::ScalarType dtype)
    : device_(device == at::kCUDA ? at::kCUDA : at::kCPU),
      wasEnabled_(autocastEnabled(device_)),
      previousDtype_(autocastDtype(device_)) {
  setAutocastEnabled(device_, true);
  setAutocastDtype(device_, dtype);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  setAutocastEnabled(device_, wasEnabled_);
  setAutocastDtype(device_, previousDtype_);
}

void setMemoryFormat(const std::vector<at::Tensor>& tensors, bool channelsLast) {
  const at::MemoryFormat format = channelsLast ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  at::NoGradGuard noGrad;
  for (at::Tensor tensor : tensors) {
    if (tensor.dim() != 4 || tensor.is_contiguous(format)) continue;
    tensor.set_data(tensor.contiguous(format));
  }
}

}  // namespace dna
