// The augmentation engine's Node exports, and where its kernels run: the CPU or the CUDA
// launchers, by the images' device. Input checks are in checks.cc, the autograd function of the
// fused op in sub_policy_function.cc, the math in ops.h.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/DeviceGuard.h>

#include <atomic>
#include <limits>
#include <string>

#include "augment/checks.h"
#include "augment/dispatch.h"
#include "augment/kernels.h"
#include "augment/sub_policy_function.h"
#include "core/args.h"
#include "core/cuda_support.h"
#include "core/errors.h"
#include "core/registry.h"

namespace dna {
namespace augment {

namespace {

ImageShape shapeOf(const at::Tensor& images) {
  return ImageShape{static_cast<int>(images.size(1)), static_cast<int>(images.size(2)),
                    static_cast<int>(images.size(3))};
}

// When set, the buffers the kernels must write in full start as NaN instead of uninitialised
// memory, so that a test sees any value a kernel leaves unwritten (setOutputPoisoning).
std::atomic<bool> poisonOutputs{false};

at::Tensor kernelOutput(const at::Tensor& images) {
  at::Tensor output = at::empty_like(images, at::MemoryFormat::Contiguous);
  if (poisonOutputs.load(std::memory_order_relaxed)) output.fill_(std::numeric_limits<float>::quiet_NaN());
  return output;
}

// The CUDA launchers need x1 for the whole batch; the CPU ones use a buffer per thread.
at::Tensor betweenBuffer(const at::Tensor& images) { return images.is_cuda() ? kernelOutput(images) : at::Tensor(); }

SubPolicyBatch describeBatch(const at::Tensor& images, const BatchParams& p, float* output, const at::Tensor& between) {
  return SubPolicyBatch{images.data_ptr<float>(),
                        output,
                        between.defined() ? between.data_ptr<float>() : nullptr,
                        images.size(0),
                        shapeOf(images),
                        p.kinds.data_ptr<int32_t>(),
                        p.values.data_ptr<float>(),
                        p.bits.data_ptr<float>(),
                        p.noise.data_ptr<float>()};
}

// The baseline preprocessing with per-image parameters [B, 6] int32 (PreprocessParams).
at::Tensor runPreprocess(const at::Tensor& images, const at::Tensor& params) {
  const c10::DeviceGuard guard(images.device());
  at::Tensor output = kernelOutput(images);
  const PreprocessBatch batch{images.data_ptr<float>(), output.data_ptr<float>(), images.size(0), shapeOf(images),
                              params.data_ptr<int32_t>()};
  if (images.is_cuda())
    preprocessCuda(batch, currentCudaStream(images.get_device()));
  else
    preprocessCpu(batch);
  return output;
}

}  // namespace

at::Tensor runForward(const at::Tensor& images, const BatchParams& p) {
  const c10::DeviceGuard guard(images.device());
  at::Tensor output = kernelOutput(images);
  const at::Tensor between = betweenBuffer(images);
  const SubPolicyBatch batch = describeBatch(images, p, output.data_ptr<float>(), between);
  if (images.is_cuda())
    subPolicyForwardCuda(batch, currentCudaStream(images.get_device()));
  else
    subPolicyForwardCpu(batch);
  return output;
}

at::Tensor backwardSums(const at::Tensor& images, const BatchParams& p, const at::Tensor& gradOutput, bool exact) {
  const c10::DeviceGuard guard(images.device());
  const at::Tensor between = betweenBuffer(images);
  at::Tensor sums = at::zeros({images.size(0), kBackwardSumCount}, images.options());
  at::Tensor grad = gradOutput.to(at::kFloat).contiguous();
  const SubPolicyBatch batch = describeBatch(images, p, nullptr, between);
  const SubPolicyGradient gradient{grad.data_ptr<float>(), sums.data_ptr<float>(), exact};
  if (images.is_cuda())
    subPolicyBackwardCuda(batch, gradient, currentCudaStream(images.get_device()));
  else
    subPolicyBackwardCpu(batch, gradient);
  return sums;
}

}  // namespace augment

void registerAugment(Napi::Object exports) {
  using namespace augment;

  // augmentBatch(images, kinds[B,2] int32, values[B,2], bits[B,2], noise[B,2,2]): the fused
  // forward without autograd, for applyOp and for frozen policies.
  exportFunction(exports, "augmentBatch", [](Args& a) {
    const at::Tensor images = kernelImages(a.tensor(0));
    const int64_t B = images.size(0);
    BatchParams p{a.tensor(1), a.tensor(2), a.tensor(3), a.tensor(4)};
    expectShape(p.kinds, "kinds", {B, 2});
    expectShape(p.values, "values", {B, 2});
    expectShape(p.bits, "bits", {B, 2});
    expectShape(p.noise, "noise", {B, 2, 2});
    if (p.kinds.scalar_type() != at::kInt) throw ArgumentError("kinds must be an int32 tensor");
    for (const auto& [t, name] : {std::pair{p.values, "values"}, {p.bits, "bits"}, {p.noise, "noise"}}) {
      expectDevice(t, name, images);
      expectFloating(t, name);
    }
    expectDevice(p.kinds, "kinds", images);
    expectFinite(p.values, "values");
    checkTables(p.kinds, at::zeros({B, 2, 2}));
    p.kinds = p.kinds.contiguous();
    p.values = p.values.to(at::kFloat).contiguous();
    p.bits = p.bits.to(at::kFloat).contiguous();
    p.noise = p.noise.to(at::kFloat).contiguous();
    at::NoGradGuard noGrad;
    return wrapTensor(a, runForward(images, p));
  });

  // applySubPolicies(images, c[B,S], b[B,S,2], m[B,S,2], kindsTable[S,2], ranges[S,2,2],
  //                  noise[B,2,2], dadaBaseline, exactMagnitude)
  exportFunction(exports, "applySubPolicies", [](Args& a) {
    const at::Tensor images = kernelImages(a.tensor(0));
    const at::Tensor c = a.tensor(1);
    const at::Tensor b = a.tensor(2);
    const at::Tensor m = a.tensor(3);
    const at::Tensor kindsTable = a.tensor(4);
    const at::Tensor ranges = a.tensor(5);
    const at::Tensor noise = a.tensor(6);
    const bool dada = a.boolean(7, false);
    const bool exact = a.boolean(8, false);
    checkTables(kindsTable, ranges);
    const int64_t B = images.size(0);
    const int64_t S = kindsTable.size(0);
    if (S == 0) throw ArgumentError("the search space has no sub-policies");
    expectShape(c, "c (sub-policy weights)", {B, S});
    expectShape(b, "b (apply bits)", {B, S, 2});
    expectShape(m, "m (magnitudes)", {B, S, 2});
    expectShape(noise, "noise", {B, 2, 2});
    for (const auto& [t, name] : {std::pair{c, "c"}, {b, "b"}, {m, "m"}, {noise, "noise"}}) {
      expectDevice(t, name, images);
      expectFloating(t, name);
    }
    return wrapTensor(a, applySubPolicyFunction(images, c, b, m, kindsTable, ranges, noise, dada, exact));
  });

  // setOutputPoisoning(on): kernel outputs start as NaN while on (a check that kernels write
  // every value); returns the previous setting.
  exportFunction(exports, "setOutputPoisoning",
                 [](Args& a) { return Napi::Boolean::New(a.env(), poisonOutputs.exchange(a.boolean(0, false))); });

  // preprocess(images, params[B,6] int32): flip, shift, Cutout per image (PreprocessParams).
  exportFunction(exports, "preprocessBatch", [](Args& a) {
    const at::Tensor images = kernelImages(a.tensor(0));
    const at::Tensor params = a.tensor(1);
    expectShape(params, "preprocess parameters", {images.size(0), 6});
    if (params.scalar_type() != at::kInt) throw ArgumentError("preprocess parameters must be an int32 tensor");
    expectDevice(params, "preprocess parameters", images);
    return wrapTensor(a, runPreprocess(images, params.contiguous()));
  });
}

}  // namespace dna
