// The fused sub-policy op's autograd function (sub_policy_function.h): the hard selection of
// each image's sub-policy, the forward through the fused kernels, and the backward rules.
#include "augment/sub_policy_function.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "augment/checks.h"
#include "augment/dispatch.h"
#include "augment/ops.h"
#include "core/errors.h"

namespace dna {
namespace augment {

namespace {

// Hard selection: per image, its sub-policy s = argmax c, and the op parameters of s.
struct Selection {
  at::Tensor index;  // [B] int64
  at::Tensor low;    // [B, 2]
  at::Tensor span;   // [B, 2]: hi - lo
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
  // Checked on what the images use: [B, 2] values, not the whole [B, S, 2] (no big temporaries);
  // on the CPU only (checks.h).
  if (magnitudes.is_cpu() && at::isnan(magnitudes).any().item<bool>())
    throw ArgumentError("m (magnitudes) contains NaN");
  if (s.params.bits.is_cpu() && !at::isfinite(s.params.bits).all().item<bool>())
    throw ArgumentError("b (apply bits) contains NaN or infinite values");
  s.params.noise = noise.to(at::kFloat).contiguous();
  return s;
}

// Where each op kind of `kinds` (any shape, int32, on any device) has an analytic magnitude
// derivative (hasDerivative), computed on the kinds' device from a table of every kind.
at::Tensor differentiableKinds(const at::Tensor& kinds) {
  at::Tensor table = at::empty({kOpKindCount + 1}, at::TensorOptions().dtype(at::kBool));
  bool* flags = table.data_ptr<bool>();
  for (int32_t kind = kIdentity; kind < kOpKindCount; ++kind) flags[kind - kIdentity] = hasDerivative(kind);
  // Kinds outside the table (possible on a GPU, where tables are not checked) have none.
  const at::Tensor index = (kinds.to(at::kLong) - kIdentity).clamp(0, kOpKindCount);
  const at::Tensor known = kinds.ge(kIdentity).logical_and(kinds.lt(kOpKindCount));
  return table.to(kinds.device()).index_select(0, index.reshape(-1)).reshape(kinds.sizes()).logical_and(known);
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
    if (exact) scale = at::where(differentiableKinds(p.kinds), span, scale);
    at::Tensor gradM = at::zeros({B, S, 2}, sums.options());
    gradM.scatter_(1, pairIndex, (p.bits * scale * derivative).unsqueeze(1));

    return {at::Tensor(), gradC, gradB, gradM, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor applySubPolicyFunction(const at::Tensor& images, const at::Tensor& c, const at::Tensor& b,
                                  const at::Tensor& m, const at::Tensor& kindsTable, const at::Tensor& ranges,
                                  const at::Tensor& noise, bool dadaBaseline, bool exactMagnitude) {
  return SubPolicyFunction::apply(images, c, b, m, kindsTable, ranges, noise, dadaBaseline, exactMagnitude);
}

}  // namespace augment
}  // namespace dna
