// Asynchronous steps (core/async.h): a network's forward pass, a backward pass, and a
// classifier's loss step (forward, cross-entropy, backward, optimiser update), run on the step
// thread while Node's event loop goes on. Their figures stay on the device: reading them is the
// caller's choice (a host read, see core/host_reads.h).
#include <ATen/ATen.h>
#include <napi.h>

#include <cmath>
#include <memory>
#include <string>

#include "core/args.h"
#include "core/async.h"
#include "core/errors.h"
#include "core/handles.h"
#include "core/registry.h"
#include "nn/module_handle.h"
#include "nn/network.h"
#include "nn/optimizer_handle.h"
#include "nn/options.h"

namespace dna {

namespace {

// Holds argument i busy; it was read (and checked) as a `Handle` already.
template <typename Handle>
void holdArg(BusyHandles& busy, Args& a, size_t i) {
  busy.add(a[i].As<Napi::Object>(), Handle::unwrap(a[i]));
}

Napi::Object stepResult(Napi::Env env, const at::Tensor& loss, const at::Tensor& correct, const at::Tensor& perImage,
                        const at::Tensor& inputGradient) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("loss", TensorHandle::wrap(env, loss));
  result.Set("correct", TensorHandle::wrap(env, correct));
  if (perImage.defined()) result.Set("perImageLoss", TensorHandle::wrap(env, perImage));
  if (inputGradient.defined()) result.Set("inputGradient", TensorHandle::wrap(env, inputGradient));
  return result;
}

// What a classifier step does, from its options.
struct StepPlan {
  bool backward = true;
  bool inputGradient = false;
  bool perImageLoss = false;
  bool zeroGrad = false;
  bool step = false;
  std::shared_ptr<OptimizerSlot> optimizer;
};

}  // namespace

void registerSteps(Napi::Object exports) {
  // moduleForwardAsync(module, input) -> Promise<Tensor>: the forward pass, with the autograd
  // graph when gradients are enabled at the call.
  exportFunction(exports, "moduleForwardAsync", [](Args& a) -> Napi::Value {
    const auto network = networkArg(a, 0);
    const at::Tensor input = a.tensor(1);
    auto busy = std::make_unique<BusyHandles>();
    holdArg<ModuleHandle>(*busy, a, 0);
    holdArg<TensorHandle>(*busy, a, 1);
    return submitTask(a.env(), "moduleForwardAsync", std::move(busy), [network, input]() -> ResolveFn {
      at::Tensor output = network->forward(input);
      return [output](Napi::Env env) -> Napi::Value { return TensorHandle::wrap(env, output); };
    });
  });

  // moduleFeaturesAsync(module, input) -> Promise<Tensor>: what the network's last layer reads
  // (Network::features), like moduleForwardAsync.
  exportFunction(exports, "moduleFeaturesAsync", [](Args& a) -> Napi::Value {
    const auto network = networkArg(a, 0);
    const at::Tensor input = a.tensor(1);
    auto busy = std::make_unique<BusyHandles>();
    holdArg<ModuleHandle>(*busy, a, 0);
    holdArg<TensorHandle>(*busy, a, 1);
    return submitTask(a.env(), "moduleFeaturesAsync", std::move(busy), [network, input]() -> ResolveFn {
      at::Tensor output = network->features(input);
      return [output](Napi::Env env) -> Napi::Value { return TensorHandle::wrap(env, output); };
    });
  });

  // optimizerStepAsync(optimizer) -> Promise<undefined>: one update from the gradients present.
  exportFunction(exports, "optimizerStepAsync", [](Args& a) -> Napi::Value {
    const auto slot = optimizerArg(a, 0);
    auto busy = std::make_unique<BusyHandles>();
    holdArg<OptimizerHandle>(*busy, a, 0);
    return submitTask(a.env(), "optimizerStepAsync", std::move(busy), [slot]() -> ResolveFn {
      slot->optimizer->step();
      return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
    });
  });

  // backwardAsync(tensor, holds[]) -> Promise<undefined>: the backward pass of a scalar.
  // `holds` are the modules and tensors it writes gradients into, kept busy meanwhile.
  exportFunction(exports, "backwardAsync", [](Args& a) -> Napi::Value {
    const at::Tensor tensor = a.tensor(0);
    if (tensor.numel() != 1) {
      throw ArgumentError("backward needs a tensor with one element, this one has shape " +
                          shapeString(tensor.sizes()));
    }
    auto busy = std::make_unique<BusyHandles>();
    holdArg<TensorHandle>(*busy, a, 0);
    if (!a.isMissing(1)) {
      if (!a[1].IsArray()) a.fail(1, "an array of Modules and Tensors");
      Napi::Array holds = a[1].As<Napi::Array>();
      for (uint32_t k = 0; k < holds.Length(); ++k) {
        const Napi::Value value = holds.Get(k);
        const std::string at = "argument 2[" + std::to_string(k) + "]";
        if (ModuleHandle* module = ModuleHandle::unwrap(value)) {
          if (module->disposed()) throw ArgumentError(at + " is a disposed Module");
          if (module->busy())
            throw ArgumentError(at + " is a Module in use by an asynchronous call: await its Promise first");
          busy->add(value.As<Napi::Object>(), module);
        } else if (TensorHandle* held = TensorHandle::unwrap(value)) {
          if (held->disposed()) throw ArgumentError(at + " is a disposed Tensor");
          if (held->busy())
            throw ArgumentError(at + " is a Tensor in use by an asynchronous call: await its Promise first");
          busy->add(value.As<Napi::Object>(), held);
        } else {
          throw ArgumentError(at + " must be a Module or a Tensor, got " + jsTypeName(value));
        }
      }
    }
    return submitTask(a.env(), "backwardAsync", std::move(busy), [tensor]() -> ResolveFn {
      tensor.backward();
      return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
    });
  });

  // classifierStep(module, images, labels int64 [B], options?) -> Promise<{ loss, correct,
  // perImageLoss?, inputGradient? }>: logits = module(images); per-image cross-entropy and its
  // mean (loss, a scalar); the count of argmax hits (correct, int64). Options:
  //   backward (default true)   backpropagate the mean loss
  //   inputGradient             d loss / d images (the images as a leaf of their own)
  //   perImageLoss              the per-image losses [B] (detached)
  //   optimizer, zeroGrad, step drop its gradients before the backward, update after it; on the
  //                             CPU the update is skipped when the loss is not finite (free to
  //                             check there); on a GPU it is not, since checking would wait for
  //                             the device: the caller reads the loss later and stops.
  exportFunction(exports, "classifierStep", [](Args& a) -> Napi::Value {
    const auto network = networkArg(a, 0);
    const at::Tensor images = a.tensor(1);
    const at::Tensor labels = a.tensor(2);
    StepPlan plan;
    if (!a.isMissing(3)) {
      OptionsReader options(a[3], "options");
      plan.backward = options.boolean("backward", true);
      plan.inputGradient = options.boolean("inputGradient", false);
      plan.perImageLoss = options.boolean("perImageLoss", false);
      plan.zeroGrad = options.boolean("zeroGrad", false);
      plan.step = options.boolean("step", false);
    }
    auto busy = std::make_unique<BusyHandles>();
    const Napi::Value optimizer = a.isMissing(3) ? a.env().Undefined() : a[3].As<Napi::Object>().Get("optimizer");
    if (!optimizer.IsUndefined() && !optimizer.IsNull()) {
      OptimizerHandle* handle = OptimizerHandle::unwrap(optimizer);
      if (handle == nullptr)
        throw ArgumentError("options.optimizer must be an Optimizer, got " + std::string(jsTypeName(optimizer)));
      if (!handle->slot_) throw ArgumentError("options.optimizer is a disposed Optimizer");
      if (handle->busy())
        throw ArgumentError("options.optimizer is in use by an asynchronous call: await its Promise first");
      plan.optimizer = handle->slot_;
      busy->add(optimizer.As<Napi::Object>(), handle);
    }
    if ((plan.zeroGrad || plan.step) && !plan.optimizer)
      throw ArgumentError("zeroGrad and step need options.optimizer");
    if ((plan.step || plan.inputGradient) && !plan.backward)
      throw ArgumentError("step and inputGradient need backward");
    if (labels.scalar_type() != at::kLong)
      throw ArgumentError(std::string("labels must be int64, got ") + dtypeName(labels.scalar_type()));
    if (labels.dim() != 1 || images.dim() == 0 || labels.size(0) != images.size(0)) {
      throw ArgumentError("labels must have shape [" + std::to_string(images.dim() == 0 ? 0 : images.size(0)) +
                          "] (one per image), got " + shapeString(labels.sizes()));
    }
    if (labels.device() != images.device()) {
      throw ArgumentError("labels are on " + labels.device().str() + " but the images are on " + images.device().str());
    }
    holdArg<ModuleHandle>(*busy, a, 0);
    holdArg<TensorHandle>(*busy, a, 1);
    holdArg<TensorHandle>(*busy, a, 2);
    return submitTask(a.env(), "classifierStep", std::move(busy), [network, images, labels, plan]() -> ResolveFn {
      const at::Tensor input = plan.inputGradient ? images.detach().requires_grad_(true) : images;
      const at::Tensor logits = network->forward(input);
      // Labels of CPU data are checked for free; on a GPU the loaders' checks stand for them (an
      // out-of-range label there would stop the device).
      if (labels.is_cpu() && labels.numel() > 0) {
        const int64_t lowest = labels.min().item<int64_t>();
        const int64_t highest = labels.max().item<int64_t>();
        if (lowest < 0 || highest >= logits.size(1)) {
          throw ArgumentError("label " + std::to_string(lowest < 0 ? lowest : highest) + " is out of range for " +
                              std::to_string(logits.size(1)) + " classes");
        }
      }
      const at::Tensor perImage = at::cross_entropy_loss(logits, labels, {}, at::Reduction::None);
      const at::Tensor loss = perImage.mean();
      at::Tensor correct;
      {
        at::NoGradGuard noGrad;
        correct = logits.argmax(1).eq(labels).sum();
      }
      if (plan.backward) {
        if (plan.zeroGrad) plan.optimizer->zeroGrad();
        loss.backward();
        const bool finite = !loss.is_cpu() || std::isfinite(loss.item<float>());
        if (plan.step && finite) plan.optimizer->optimizer->step();
      }
      const at::Tensor gradient = plan.inputGradient ? input.grad() : at::Tensor();
      const at::Tensor lossValue = loss.detach();
      const at::Tensor perImageValue = plan.perImageLoss ? perImage.detach() : at::Tensor();
      return [lossValue, correct, perImageValue, gradient](Napi::Env env) -> Napi::Value {
        return stepResult(env, lossValue, correct, perImageValue, gradient);
      };
    });
  });
}

}  // namespace dna
