// The augmentation engine as tensors: input checks, the fused sub-policy op with its autograd
// function (SPEC 1.4), and the baseline preprocessing. Kernels: kernels_cpu.cc, cuda/kernels.cu.
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/csrc/autograd/custom_function.h>

#include <atomic>
#include <limits>
#include <string>

#include "augment/kernels.h"
#include "core/args.h"
#include "core/cuda_support.h"
#include "core/errors.h"
#include "core/registry.h"

namespace dna {
namespace augment {

namespace {

void expectShape(const at::Tensor& t, const char* name, std::initializer_list<int64_t> shape) {
  bool ok = t.dim() == static_cast<int64_t>(shape.size());
  int64_t d = 0;
  for (int64_t size : shape) ok = ok && t.size(d++) == size;
  if (!ok) throw ArgumentError(std::string(name) + " must have shape " + shapeString(shape) + ", got " + shapeString(t.sizes()));
}

void expectDevice(const at::Tensor& t, const char* name, const at::Tensor& images) {
  if (t.device() != images.device()) {
    throw ArgumentError(std::string(name) + " is on " + t.device().str() + " but the images are on " + images.device().str());
  }
}

void expectFloating(const at::Tensor& t, const char* name) {
  if (!at::isFloatingType(t.scalar_type())) {
    throw ArgumentError(std::string(name) + " must be a floating-point tensor, got " + dtypeName(t.scalar_type()));
  }
}

void expectFinite(const at::Tensor& t, const char* name) {
  if (!at::isfinite(t).all().item<bool>()) throw ArgumentError(std::string(name) + " contains NaN or infinite values");
}

// Images as the kernels want them: float32, contiguous, NCHW with 1 or 3 channels.
// uint8 images are scaled from [0, 255].
at::Tensor kernelImages(const at::Tensor& images) {
  if (images.dim() != 4) throw ArgumentError("images must be a 4-d tensor [B, C, H, W], got shape " + shapeString(images.sizes()));
  const int64_t channels = images.size(1);
  if (channels != 1 && channels != 3) {
    throw ArgumentError("images must have 1 or 3 channels, got " + std::to_string(channels) + " (shape " + shapeString(images.sizes()) + ")");
  }
  if (images.size(2) == 0 || images.size(3) == 0) throw ArgumentError("images must not be empty, got shape " + shapeString(images.sizes()));
  if (images.size(2) > (1 << 15) || images.size(3) > (1 << 15)) throw ArgumentError("images larger than 32768 pixels a side are not supported");
  if (images.scalar_type() == at::kByte) return images.to(at::kFloat).div_(255.0).contiguous();
  if (images.scalar_type() != at::kFloat) {
    throw ArgumentError(std::string("images must be float32 in [0, 1] or uint8, got ") + dtypeName(images.scalar_type()));
  }
  return images.detach().contiguous();
}

ImageShape shapeOf(const at::Tensor& images) {
  return ImageShape{static_cast<int>(images.size(1)), static_cast<int>(images.size(2)), static_cast<int>(images.size(3))};
}

// The per-image op parameters of a batch, validated, as the kernels want them.
struct BatchParams {
  at::Tensor kinds;   // [B, 2] int32
  at::Tensor values;  // [B, 2] float32
  at::Tensor bits;    // [B, 2] float32
  at::Tensor noise;   // [B, 2, 2] float32
};

// When set, the buffers the kernels must write in full start as NaN instead of uninitialised
// memory, so that a test sees any value a kernel leaves unwritten (setOutputPoisoning).
std::atomic<bool> poisonOutputs{false};

at::Tensor kernelOutput(const at::Tensor& images) {
  at::Tensor output = at::empty_like(images, at::MemoryFormat::Contiguous);
  if (poisonOutputs.load(std::memory_order_relaxed)) output.fill_(std::numeric_limits<float>::quiet_NaN());
  return output;
}

// The CUDA launchers need x1 for the whole batch; the CPU ones use a buffer per thread.
at::Tensor betweenBuffer(const at::Tensor& images) {
  return images.is_cuda() ? kernelOutput(images) : at::Tensor();
}

SubPolicyBatch describe(const at::Tensor& images, const BatchParams& p, float* output, const at::Tensor& between) {
  return SubPolicyBatch{images.data_ptr<float>(), output, between.defined() ? between.data_ptr<float>() : nullptr, images.size(0),
                        shapeOf(images), p.kinds.data_ptr<int32_t>(), p.values.data_ptr<float>(), p.bits.data_ptr<float>(),
                        p.noise.data_ptr<float>()};
}

at::Tensor runForward(const at::Tensor& images, const BatchParams& p) {
  const c10::DeviceGuard guard(images.device());
  at::Tensor output = kernelOutput(images);
  const at::Tensor between = betweenBuffer(images);
  const SubPolicyBatch batch = describe(images, p, output.data_ptr<float>(), between);
  if (images.is_cuda()) subPolicyForwardCuda(batch, currentCudaStream(images.get_device()));
  else subPolicyForwardCpu(batch);
  return output;
}

// [B, kBackwardSumCount]: the per-image sums of the backward rules.
at::Tensor backwardSums(const at::Tensor& images, const BatchParams& p, const at::Tensor& gradOutput, bool exact) {
  const c10::DeviceGuard guard(images.device());
  const at::Tensor between = betweenBuffer(images);
  at::Tensor sums = at::zeros({images.size(0), kBackwardSumCount}, images.options());
  at::Tensor grad = gradOutput.to(at::kFloat).contiguous();
  const SubPolicyBatch batch = describe(images, p, nullptr, between);
  const SubPolicyGradient gradient{grad.data_ptr<float>(), sums.data_ptr<float>(), exact};
  if (images.is_cuda()) subPolicyBackwardCuda(batch, gradient, currentCudaStream(images.get_device()));
  else subPolicyBackwardCpu(batch, gradient);
  return sums;
}

// The search space's tables, checked: kinds [S, 2] int32 in [-1, kOpKindCount), ranges [S, 2, 2].
void checkTables(const at::Tensor& kindsTable, const at::Tensor& ranges) {
  if (kindsTable.dim() != 2 || kindsTable.size(1) != 2 || kindsTable.scalar_type() != at::kInt) {
    throw ArgumentError("the sub-policy table must be an int32 tensor [S, 2], got " + shapeString(kindsTable.sizes()));
  }
  if (kindsTable.numel() > 0) {
    const int64_t low = kindsTable.min().item<int64_t>();
    const int64_t high = kindsTable.max().item<int64_t>();
    if (low < kIdentity || high >= kOpKindCount) {
      throw ArgumentError("the sub-policy table holds an unknown op kind (" + std::to_string(low < kIdentity ? low : high) + ")");
    }
  }
  expectShape(ranges, "the range table", {kindsTable.size(0), 2, 2});
  expectFloating(ranges, "the range table");
}

// Hard selection: per image, its sub-policy s = argmax c, and the op parameters of s.
struct Selection {
  at::Tensor index;     // [B] int64
  at::Tensor low;       // [B, 2]
  at::Tensor span;      // [B, 2]: hi - lo
  BatchParams params;
};

Selection select(const at::Tensor& c, const at::Tensor& b, const at::Tensor& m, const at::Tensor& kindsTable,
                 const at::Tensor& ranges, const at::Tensor& noise) {
  const int64_t B = c.size(0);
  Selection s;
  s.index = c.argmax(1);
  const at::Tensor pairIndex = s.index.view({B, 1, 1}).expand({B, 1, 2});
  const at::Tensor table = kindsTable.to(c.device());
  const at::Tensor rangesHere = ranges.to(c.device(), at::kFloat).index_select(0, s.index);  // [B, 2, 2]
  s.low = rangesHere.select(2, 0);
  s.span = rangesHere.select(2, 1) - s.low;
  const at::Tensor magnitudes = m.gather(1, pairIndex).squeeze(1).to(at::kFloat);
  s.params.kinds = table.index_select(0, s.index).contiguous();
  s.params.values = (s.low + magnitudes * s.span).contiguous();
  s.params.bits = b.gather(1, pairIndex).squeeze(1).to(at::kFloat).contiguous();
  // Checked on what the images use: [B, 2] values, not the whole [B, S, 2] (no big temporaries).
  if (at::isnan(magnitudes).any().item<bool>()) throw ArgumentError("m (magnitudes) contains NaN");
  if (!at::isfinite(s.params.bits).all().item<bool>()) throw ArgumentError("b (apply bits) contains NaN or infinite values");
  s.params.noise = noise.to(at::kFloat).contiguous();
  return s;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// out = fused sub-policies; gradients into c, b and m by the rules of SPEC 1.4, none into x.
struct SubPolicyFunction : public torch::autograd::Function<SubPolicyFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& images, const at::Tensor& c, const at::Tensor& b,
                            const at::Tensor& m, const at::Tensor& kindsTable, const at::Tensor& ranges,
                            const at::Tensor& noise, bool dadaBaseline, bool exactMagnitude) {
    const Selection s = select(c, b, m, kindsTable, ranges, noise);
    ctx->save_for_backward({images, s.index, s.params.kinds, s.params.values, s.params.bits, s.params.noise, s.span});
    ctx->saved_data["dada"] = dadaBaseline;
    ctx->saved_data["exact"] = exactMagnitude;
    ctx->saved_data["subPolicies"] = c.size(1);
    return runForward(images, s.params);
  }

  static variable_list backward(AutogradContext* ctx, variable_list gradOutputs) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& images = saved[0];
    const at::Tensor& index = saved[1];
    const BatchParams p{saved[2], saved[3], saved[4], saved[5]};
    const at::Tensor& span = saved[6];
    const bool dada = ctx->saved_data["dada"].toBool();
    const bool exact = ctx->saved_data["exact"].toBool();
    const int64_t S = ctx->saved_data["subPolicies"].toInt();
    const int64_t B = images.size(0);

    const at::Tensor sums = backwardSums(images, p, gradOutputs[0], exact);
    const auto column = [&](int k) { return sums.select(1, k); };

    // c: <G, x2> for the selected sub-policy, the baseline (<G, x> or DADA's <G, 1>) elsewhere.
    at::Tensor gradC = column(dada ? kGradSum : kGradDotInput).unsqueeze(1).expand({B, S}).clone();
    gradC.scatter_(1, index.unsqueeze(1), column(kGradDotOutput).unsqueeze(1));

    // b: <G, y_l - x_{l-1}> at the selected sub-policy, zero elsewhere.
    const at::Tensor pairIndex = index.view({B, 1, 1}).expand({B, 1, 2});
    at::Tensor gradB = at::zeros({B, S, 2}, sums.options());
    gradB.scatter_(1, pairIndex, at::stack({column(kGradDotDelta1), column(kGradDotDelta2)}, 1).unsqueeze(1));

    // m: b * <G, dy/dm>; dy/dm is 1 (straight-through) or, with `exact`, span * dy/dv where the
    // op has a derivative; zero for ops without a magnitude (span 0).
    at::Tensor derivative = at::stack({column(kGradDotDerivative1), column(kGradDotDerivative2)}, 1);
    at::Tensor scale = (span != 0).to(at::kFloat);
    if (exact) {
      const at::Tensor differentiable = p.kinds.cpu().to(at::kInt).contiguous();
      at::Tensor useSpan = at::zeros_like(differentiable, at::kBool);
      const int32_t* kinds = differentiable.data_ptr<int32_t>();
      bool* flags = useSpan.data_ptr<bool>();
      for (int64_t k = 0; k < differentiable.numel(); ++k) flags[k] = hasDerivative(kinds[k]);
      scale = at::where(useSpan.to(span.device()), span, scale);
    }
    at::Tensor gradM = at::zeros({B, S, 2}, sums.options());
    gradM.scatter_(1, pairIndex, (p.bits * scale * derivative).unsqueeze(1));

    return {at::Tensor(), gradC, gradB, gradM, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

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
    return wrapTensor(a, SubPolicyFunction::apply(images, c, b, m, kindsTable, ranges, noise, dada, exact));
  });

  // setOutputPoisoning(on): kernel outputs start as NaN while on (a check that kernels write
  // every value); returns the previous setting.
  exportFunction(exports, "setOutputPoisoning", [](Args& a) {
    return Napi::Boolean::New(a.env(), poisonOutputs.exchange(a.boolean(0, false)));
  });

  // preprocess(images, params[B,6] int32): flip, shift, Cutout per image (PreprocessParams).
  exportFunction(exports, "preprocessBatch", [](Args& a) {
    const at::Tensor images = kernelImages(a.tensor(0));
    const at::Tensor params = a.tensor(1);
    expectShape(params, "preprocess parameters", {images.size(0), 6});
    if (params.scalar_type() != at::kInt) throw ArgumentError("preprocess parameters must be an int32 tensor");
    expectDevice(params, "preprocess parameters", images);
    const at::Tensor q = params.contiguous();
    const c10::DeviceGuard guard(images.device());
    at::Tensor output = kernelOutput(images);
    const PreprocessBatch batch{images.data_ptr<float>(), output.data_ptr<float>(), images.size(0), shapeOf(images),
                                q.data_ptr<int32_t>()};
    if (images.is_cuda()) preprocessCuda(batch, currentCudaStream(images.get_device()));
    else preprocessCpu(batch);
    return wrapTensor(a, output);
  });
}

}  // namespace dna
