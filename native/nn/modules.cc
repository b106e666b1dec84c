// Models: the pre-activation WideResNet (Zagoruyko & Komodakis, 2016) built natively; the
// functions over any Network (forward, modes, parameters, state dicts, devices); the loss.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Reduction.h>
#include <torch/nn/module.h>

#include <cmath>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/args.h"
#include "core/errors.h"
#include "core/handles.h"
#include "core/host_reads.h"
#include "core/registry.h"
#include "nn/module_handle.h"
#include "nn/network.h"
#include "nn/options.h"

namespace dna {

namespace {

// ---- Layers ----
// Parameters and buffers carry PyTorch's names (weight, bias, running_mean, ...), so state
// dicts read like torch.nn's.

// A convolution without bias, He-initialised (normal, fan_out) from the model's generator.
class Conv : public torch::nn::Module {
 public:
  Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, at::Generator& generator)
      : torch::nn::Module("Conv"), stride_(stride), padding_(kernel / 2) {
    at::Tensor weight = at::empty({out, in, kernel, kernel});
    weight.normal_(0.0, std::sqrt(2.0 / static_cast<double>(out * kernel * kernel)), generator);
    weight_ = register_parameter("weight", weight);
  }

  const at::Tensor& weight() const { return weight_; }

  at::Tensor forward(const at::Tensor& x) {
    return at::conv2d(x, weight_, {}, {stride_, stride_}, {padding_, padding_});
  }

 private:
  at::Tensor weight_;
  int64_t stride_;
  int64_t padding_;
};

class BatchNorm : public torch::nn::Module {
 public:
  explicit BatchNorm(int64_t channels) : torch::nn::Module("BatchNorm") {
    weight_ = register_parameter("weight", at::ones({channels}));
    bias_ = register_parameter("bias", at::zeros({channels}));
    runningMean_ = register_buffer("running_mean", at::zeros({channels}));
    runningVar_ = register_buffer("running_var", at::ones({channels}));
    batchesTracked_ =
        register_buffer("num_batches_tracked", at::scalar_tensor(0, at::TensorOptions().dtype(at::kLong)));
  }

  at::Tensor forward(const at::Tensor& x) {
    const bool training = is_training();
    double factor = momentum_.value_or(0.0);
    if (training) {
      at::NoGradGuard noGrad;
      batchesTracked_.add_(1);
      // No momentum: the running statistics are the plain average of every batch's (PyTorch's
      // momentum=None), counted here rather than read from the device.
      if (!momentum_) factor = 1.0 / static_cast<double>(++averaged_);
    }
    return at::batch_norm(x, weight_, bias_, runningMean_, runningVar_, training, factor, kEps, true);
  }

  // The weight of a new batch in the running statistics; nullopt averages all batches equally.
  void setMomentum(std::optional<double> momentum) {
    momentum_ = momentum;
    averaged_ = 0;
  }

  // Mean 0, variance 1, no batches seen: the state before any training.
  void resetRunningStatistics() {
    at::NoGradGuard noGrad;
    runningMean_.zero_();
    runningVar_.fill_(1);
    batchesTracked_.zero_();
    averaged_ = 0;
  }

 private:
  static constexpr double kEps = 1e-5;
  std::optional<double> momentum_ = 0.1;
  // Batches averaged since momentum became null or the statistics were reset.
  int64_t averaged_ = 0;
  at::Tensor weight_;
  at::Tensor bias_;
  at::Tensor runningMean_;
  at::Tensor runningVar_;
  at::Tensor batchesTracked_;
};

// Weight uniform in +-1/sqrt(in) (PyTorch's default), or zero for a head that starts neutral;
// bias zero.
class Linear : public torch::nn::Module {
 public:
  Linear(int64_t in, int64_t out, bool zero, at::Generator& generator) : torch::nn::Module("Linear") {
    at::Tensor weight = at::empty({out, in});
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    if (zero)
      weight.zero_();
    else
      weight.uniform_(-bound, bound, generator);
    weight_ = register_parameter("weight", weight);
    bias_ = register_parameter("bias", at::zeros({out}));
  }

  at::Tensor forward(const at::Tensor& x) { return at::linear(x, weight_, bias_); }

  const at::Tensor& weight() const { return weight_; }

 private:
  at::Tensor weight_;
  at::Tensor bias_;
};

// (x - mean) / std per channel: the model takes images in [0, 1] and normalises them itself.
class Normalize : public torch::nn::Module {
 public:
  Normalize(const std::vector<double>& mean, const std::vector<double>& std) : torch::nn::Module("Normalize") {
    const auto options = at::TensorOptions().dtype(at::kFloat);
    mean_ = register_buffer("mean", at::tensor(at::ArrayRef<double>(mean), options));
    std_ = register_buffer("std", at::tensor(at::ArrayRef<double>(std), options));
  }

  at::Tensor forward(const at::Tensor& x) {
    return at::div(at::sub(x, mean_.view({1, -1, 1, 1})), std_.view({1, -1, 1, 1}));
  }

  std::vector<double> values(const at::Tensor& buffer) const {
    const at::Tensor cpu = buffer.detach().to(at::kCPU, at::kDouble).contiguous();
    return std::vector<double>(cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
  }
  std::vector<double> mean() const { return values(mean_); }
  std::vector<double> std() const { return values(std_); }

 private:
  at::Tensor mean_;
  at::Tensor std_;
};

// BN-ReLU-conv3x3 twice, dropout between; the shortcut is a 1x1 conv of the pre-activated input
// when the shape changes, the input itself otherwise.
class PreActBlock : public torch::nn::Module {
 public:
  PreActBlock(int64_t in, int64_t out, int64_t stride, double dropout, at::Generator& generator)
      : torch::nn::Module("PreActBlock"), dropout_(dropout) {
    bn1_ = register_module("bn1", std::make_shared<BatchNorm>(in));
    conv1_ = register_module("conv1", std::make_shared<Conv>(in, out, 3, stride, generator));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm>(out));
    conv2_ = register_module("conv2", std::make_shared<Conv>(out, out, 3, 1, generator));
    if (in != out || stride != 1)
      shortcut_ = register_module("shortcut", std::make_shared<Conv>(in, out, 1, stride, generator));
  }

  at::Tensor forward(const at::Tensor& x) {
    // In-place ReLUs are safe here: batch norm's backward needs its input, not its output.
    const at::Tensor activated = bn1_->forward(x).relu_();
    const at::Tensor residual = shortcut_ ? shortcut_->forward(activated) : x;
    at::Tensor y = bn2_->forward(conv1_->forward(activated)).relu_();
    if (dropout_ > 0) y = at::dropout(y, dropout_, is_training());
    return conv2_->forward(y).add_(residual);
  }

 private:
  double dropout_;
  std::shared_ptr<BatchNorm> bn1_;
  std::shared_ptr<Conv> conv1_;
  std::shared_ptr<BatchNorm> bn2_;
  std::shared_ptr<Conv> conv2_;
  std::shared_ptr<Conv> shortcut_;
};

// ---- WideResNet ----

struct WideResNetConfig {
  int64_t depth = 0;
  int64_t widen = 0;
  int64_t classes = 0;
  int64_t inChannels = 0;
  double dropout = 0;
  std::vector<double> mean;
  std::vector<double> std;
  bool zeroHead = false;
};

WideResNetConfig readWideResNetConfig(Napi::Value value) {
  OptionsReader reader(value, "config");
  WideResNetConfig config;
  config.depth = reader.integer("depth");
  reader.require(config.depth >= 10 && config.depth <= 1000 && (config.depth - 4) % 6 == 0, "depth",
                 "6n+4 with n >= 1 (10, 16, 22, 28, 40, ..., at most 1000)", static_cast<double>(config.depth));
  config.widen = reader.integer("widen");
  reader.require(config.widen >= 1 && config.widen <= 64, "widen", "an integer from 1 to 64",
                 static_cast<double>(config.widen));
  config.classes = reader.integer("classes");
  reader.require(config.classes >= 2 && config.classes <= 1000000, "classes", "an integer from 2 to 1000000",
                 static_cast<double>(config.classes));
  config.inChannels = reader.integer("inChannels");
  reader.require(config.inChannels == 1 || config.inChannels == 3, "inChannels", "1 or 3",
                 static_cast<double>(config.inChannels));
  config.dropout = reader.number("dropout", 0.0);
  reader.require(config.dropout >= 0 && config.dropout < 1, "dropout", "in [0, 1)", config.dropout);
  const size_t channels = static_cast<size_t>(config.inChannels);
  config.mean = reader.numbers("mean", channels, 0.5);
  config.std = reader.numbers("std", channels, 0.5);
  for (double s : config.std) reader.require(s > 0, "std", "positive", s);
  config.zeroHead = reader.boolean("zeroHead", false);
  return config;
}

Napi::Array numberArray(Napi::Env env, const std::vector<double>& values) {
  Napi::Array array = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) array.Set(static_cast<uint32_t>(i), Napi::Number::New(env, values[i]));
  return array;
}

// depth = 6n + 4: a 3x3 conv, three groups of n blocks (widths 16k, 32k, 64k; the last two
// halve the resolution), BN-ReLU, global average pooling, a linear classifier.
class WideResNet : public Network {
 public:
  WideResNet(const WideResNetConfig& config, at::Generator& generator) : Network("WideResNet"), config_(config) {
    const int64_t blocks = (config.depth - 4) / 6;
    const int64_t widths[3] = {16 * config.widen, 32 * config.widen, 64 * config.widen};
    normalize_ = register_module("normalize", std::make_shared<Normalize>(config.mean, config.std));
    conv1_ = register_module("conv1", std::make_shared<Conv>(config.inChannels, 16, 3, 1, generator));
    int64_t in = 16;
    for (int group = 0; group < 3; ++group) {
      auto container =
          register_module("group" + std::to_string(group + 1), std::make_shared<torch::nn::Module>("Group"));
      for (int64_t i = 0; i < blocks; ++i) {
        const int64_t stride = (i == 0 && group > 0) ? 2 : 1;
        blocks_.push_back(container->register_module(
            std::to_string(i), std::make_shared<PreActBlock>(in, widths[group], stride, config.dropout, generator)));
        in = widths[group];
      }
    }
    bn_ = register_module("bn", std::make_shared<BatchNorm>(in));
    fc_ = register_module("fc", std::make_shared<Linear>(in, config.classes, config.zeroHead, generator));
    weight_ = conv1_->weight();
  }

  void checkInput(const at::Tensor& x) const override {
    if (x.dim() != 4) {
      throw ArgumentError("a WideResNet takes a batch of images [B, C, H, W], got shape " + shapeString(x.sizes()));
    }
    if (x.size(1) != config_.inChannels) {
      throw ArgumentError("this WideResNet takes " + std::to_string(config_.inChannels) + "-channel images, got " +
                          std::to_string(x.size(1)) + " channels (input shape " + shapeString(x.sizes()) + ")");
    }
    if (x.size(0) == 0 || x.size(2) == 0 || x.size(3) == 0) {
      throw ArgumentError("the batch is empty (input shape " + shapeString(x.sizes()) + ")");
    }
    if (is_training()) {
      // Batch statistics need more than one value per channel, also after the two stride-2 groups.
      const int64_t values = x.size(0) * quarter(x.size(2)) * quarter(x.size(3));
      if (values < 2) {
        throw ArgumentError("in training mode batch norm needs more than one value per channel, and a batch of shape " +
                            shapeString(x.sizes()) + " has one at the last group; use a larger batch or eval()");
      }
    }
    if (x.scalar_type() != weight_.scalar_type()) {
      throw ArgumentError(std::string("the images must be ") + dtypeName(weight_.scalar_type()) +
                          " (values in [0, 1]), got " + dtypeName(x.scalar_type()));
    }
    if (x.device() != weight_.device()) {
      throw ArgumentError("the images are on " + x.device().str() + " but the model is on " + weight_.device().str() +
                          "; move one of them with .to()");
    }
  }

  at::Tensor forward(const at::Tensor& input) override { return run(input, false); }

  // The pooled activations that the linear classifier reads: [B, 64 * widen], float32.
  at::Tensor features(const at::Tensor& input) override { return run(input, true); }

  Napi::Object config(Napi::Env env) const override {
    Napi::Object object = Napi::Object::New(env);
    object.Set("kind", "wideResNet");
    object.Set("depth", Napi::Number::New(env, static_cast<double>(config_.depth)));
    object.Set("widen", Napi::Number::New(env, static_cast<double>(config_.widen)));
    object.Set("classes", Napi::Number::New(env, static_cast<double>(config_.classes)));
    object.Set("inChannels", Napi::Number::New(env, static_cast<double>(config_.inChannels)));
    object.Set("dropout", Napi::Number::New(env, config_.dropout));
    // The normalisation in force: a loaded state dict may have replaced the configured one.
    object.Set("mean", numberArray(env, normalize_->mean()));
    object.Set("std", numberArray(env, normalize_->std()));
    object.Set("zeroHead", Napi::Boolean::New(env, config_.zeroHead));
    return object;
  }

 private:
  // A side length after two stride-2 convolutions (3x3, padding 1).
  static int64_t quarter(int64_t size) { return ((size + 1) / 2 + 1) / 2; }

  at::Tensor run(const at::Tensor& input, bool featuresOnly) {
    checkInput(input);
    const Execution& execution = this->execution();
    std::optional<AutocastScope> autocast;
    if (execution.autocast) autocast.emplace(input.device().type(), *execution.autocast);
    at::Tensor x = execution.channelsLast ? input.contiguous(at::MemoryFormat::ChannelsLast) : input;
    x = conv1_->forward(normalize_->forward(x));
    for (const auto& block : blocks_) x = block->forward(x);
    x = bn_->forward(x).relu_().mean({2, 3});
    const at::Tensor out = featuresOnly ? x : fc_->forward(x);
    // Under autocast the head runs in bfloat16; the loss and the policy's softmax want float32.
    return execution.autocast ? out.to(at::kFloat) : out;
  }

  WideResNetConfig config_;
  std::shared_ptr<Normalize> normalize_;
  std::shared_ptr<Conv> conv1_;
  std::vector<std::shared_ptr<PreActBlock>> blocks_;
  std::shared_ptr<BatchNorm> bn_;
  std::shared_ptr<Linear> fc_;
  at::Tensor weight_;  // conv1's weight: where the model's device and dtype are read
};

// ---- MLP ----

struct MlpConfig {
  int64_t inputs = 0;
  int64_t hidden = 0;
  int64_t outputs = 0;
  bool zeroHead = false;
};

MlpConfig readMlpConfig(Napi::Value value) {
  OptionsReader reader(value, "config");
  MlpConfig config;
  config.inputs = reader.integer("inputs");
  reader.require(config.inputs >= 1 && config.inputs <= 1000000, "inputs", "an integer from 1 to 1000000",
                 static_cast<double>(config.inputs));
  config.hidden = reader.integer("hidden");
  reader.require(config.hidden >= 1 && config.hidden <= 1000000, "hidden", "an integer from 1 to 1000000",
                 static_cast<double>(config.hidden));
  config.outputs = reader.integer("outputs");
  reader.require(config.outputs >= 1 && config.outputs <= 1000000, "outputs", "an integer from 1 to 1000000",
                 static_cast<double>(config.outputs));
  config.zeroHead = reader.boolean("zeroHead", false);
  return config;
}

// Linear-ReLU-Linear over feature vectors [B, inputs]: a small head on another network's
// features. With zeroHead the last layer starts at zero, so the outputs start at zero.
class Mlp : public Network {
 public:
  Mlp(const MlpConfig& config, at::Generator& generator) : Network("Mlp"), config_(config) {
    hidden_ = register_module("hidden", std::make_shared<Linear>(config.inputs, config.hidden, false, generator));
    out_ = register_module("out", std::make_shared<Linear>(config.hidden, config.outputs, config.zeroHead, generator));
    weight_ = hidden_->weight();
  }

  void checkInput(const at::Tensor& x) const override {
    if (x.dim() != 2 || x.size(1) != config_.inputs || x.size(0) == 0) {
      throw ArgumentError("this MLP takes a batch of feature vectors [B, " + std::to_string(config_.inputs) +
                          "], got shape " + shapeString(x.sizes()));
    }
    if (x.scalar_type() != weight_.scalar_type()) {
      throw ArgumentError(std::string("the features must be ") + dtypeName(weight_.scalar_type()) + ", got " +
                          dtypeName(x.scalar_type()));
    }
    if (x.device() != weight_.device()) {
      throw ArgumentError("the features are on " + x.device().str() + " but the model is on " + weight_.device().str() +
                          "; move one of them with .to()");
    }
  }

  at::Tensor forward(const at::Tensor& input) override {
    checkInput(input);
    return out_->forward(hidden_->forward(input).relu());
  }

  Napi::Object config(Napi::Env env) const override {
    Napi::Object object = Napi::Object::New(env);
    object.Set("kind", "mlp");
    object.Set("inputs", Napi::Number::New(env, static_cast<double>(config_.inputs)));
    object.Set("hidden", Napi::Number::New(env, static_cast<double>(config_.hidden)));
    object.Set("outputs", Napi::Number::New(env, static_cast<double>(config_.outputs)));
    object.Set("zeroHead", Napi::Boolean::New(env, config_.zeroHead));
    return object;
  }

 private:
  MlpConfig config_;
  std::shared_ptr<Linear> hidden_;
  std::shared_ptr<Linear> out_;
  at::Tensor weight_;
};

// Every batch-norm layer of a network.
std::vector<std::shared_ptr<BatchNorm>> batchNorms(Network& network) {
  std::vector<std::shared_ptr<BatchNorm>> layers;
  for (const auto& module : network.modules(/*include_self=*/false)) {
    if (auto layer = std::dynamic_pointer_cast<BatchNorm>(module)) layers.push_back(layer);
  }
  return layers;
}

// A seed from LibTorch's default generator, so that manualSeed() governs unseeded models.
uint64_t drawSeed() {
  return static_cast<uint64_t>(
      at::randint(0, int64_t{1} << 62, {1}, at::TensorOptions().dtype(at::kLong)).item<int64_t>());
}

// ---- State dicts ----

// Parameters and buffers by name, in registration order.
std::vector<std::pair<std::string, at::Tensor>> stateEntries(const Network& network) {
  std::vector<std::pair<std::string, at::Tensor>> entries;
  for (const auto& item : network.named_parameters()) entries.emplace_back(item.key(), item.value());
  for (const auto& item : network.named_buffers()) entries.emplace_back(item.key(), item.value());
  return entries;
}

std::string listSome(const std::vector<std::string>& items, size_t shown, const char* separator = ", ") {
  std::string text;
  for (size_t i = 0; i < items.size() && i < shown; ++i) text += (i == 0 ? "" : separator) + items[i];
  if (items.size() > shown) text += " and " + std::to_string(items.size() - shown) + " more";
  return text;
}

void loadStateDict(Network& network, Args& a, size_t index) {
  if (a.isMissing(index) || !a[index].IsObject() || a[index].IsArray())
    a.fail(index, "a state dict (an object of Tensors by name)");
  Napi::Object object = a[index].As<Napi::Object>();
  Napi::Array keys = object.GetPropertyNames();
  std::unordered_map<std::string, at::Tensor> given;
  std::vector<std::string> givenOrder;
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string key = keys.Get(i).ToString().Utf8Value();
    TensorHandle* handle = TensorHandle::unwrap(object.Get(key));
    if (handle == nullptr) throw ArgumentError("state dict entry '" + key + "' is not a Tensor");
    if (handle->disposed()) throw ArgumentError("state dict entry '" + key + "' is a disposed Tensor");
    given.emplace(key, handle->tensor());
    givenOrder.push_back(key);
  }

  const auto entries = stateEntries(network);
  std::set<std::string> expected;
  std::vector<std::string> missing;
  std::vector<std::string> mismatched;
  for (const auto& [name, tensor] : entries) {
    expected.insert(name);
    auto found = given.find(name);
    if (found == given.end()) {
      missing.push_back(name);
      continue;
    }
    const at::Tensor& source = found->second;
    if (source.sizes() != tensor.sizes()) {
      mismatched.push_back(name + " has shape " + shapeString(source.sizes()) + ", model expects " +
                           shapeString(tensor.sizes()));
    } else if (source.is_floating_point() != tensor.is_floating_point() || source.is_complex()) {
      mismatched.push_back(name + " has dtype " + dtypeName(source.scalar_type()) + ", model expects " +
                           dtypeName(tensor.scalar_type()));
    }
  }
  std::vector<std::string> unexpected;
  for (const auto& key : givenOrder) {
    if (expected.count(key) == 0) unexpected.push_back(key);
  }
  if (!mismatched.empty() || !missing.empty() || !unexpected.empty()) {
    std::string message = "checkpoint does not fit this model: ";
    std::vector<std::string> parts;
    if (!mismatched.empty()) parts.push_back(listSome(mismatched, 3, "; "));
    if (!missing.empty()) parts.push_back("missing " + listSome(missing, 4));
    if (!unexpected.empty()) parts.push_back("unexpected " + listSome(unexpected, 4));
    for (size_t i = 0; i < parts.size(); ++i) message += (i == 0 ? "" : "; ") + parts[i];
    throw ArgumentError(message);
  }

  at::NoGradGuard noGrad;
  for (const auto& [name, tensor] : entries) {
    at::Tensor target = tensor;
    target.copy_(given.at(name));
  }
}

// Builds a Network from its config (argument 0, read by `readConfig`) and seed (argument 1) and
// wraps it in a handle that reports its memory.
template <typename Net, typename ReadConfig>
Napi::Value buildNetwork(Args& a, ReadConfig readConfig, const char* what) {
  if (a.isMissing(0) || !a[0].IsObject() || a[0].IsArray()) a.fail(0, what);
  const auto config = readConfig(a[0]);
  const uint64_t seed = a.isMissing(1) ? drawSeed() : a.seed(1);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto network = std::make_shared<Net>(config, generator);
  int64_t bytes = 0;
  for (const auto& [name, tensor] : stateEntries(*network)) bytes += static_cast<int64_t>(tensor.nbytes());
  return ModuleHandle::wrap(a.env(), std::move(network), bytes);
}

}  // namespace

void registerModels(Napi::Object exports) {
  ModuleHandle::define(exports.Env());

  // wideResNet(config, seed?) and mlp(config, seed?): initial weights drawn from a generator
  // seeded with `seed` (from the default generator when missing), on the CPU.
  exportFunction(exports, "wideResNet", [](Args& a) {
    return buildNetwork<WideResNet>(a, readWideResNetConfig, "a WideResNet config object");
  });
  exportFunction(exports, "mlp", [](Args& a) { return buildNetwork<Mlp>(a, readMlpConfig, "an MLP config object"); });
  exportFunction(exports, "moduleConfig", [](Args& a) { return networkArg(a, 0)->config(a.env()); });

  exportFunction(exports, "moduleForward", [](Args& a) {
    const auto network = networkArg(a, 0);
    return wrapTensor(a, network->forward(a.tensor(1)));
  });
  exportFunction(exports, "moduleFeatures", [](Args& a) {
    const auto network = networkArg(a, 0);
    return wrapTensor(a, network->features(a.tensor(1)));
  });
  // moduleSetBatchNormMomentum(module, momentum | null): null averages every batch alike.
  exportFunction(exports, "moduleSetBatchNormMomentum", [](Args& a) {
    const auto network = networkArg(a, 0);
    std::optional<double> momentum;
    if (const auto given = a.optionalNumber(1)) momentum = *given;
    if (momentum && !(*momentum >= 0 && *momentum <= 1))
      throw ArgumentError("momentum must be in [0, 1] or null, got " + OptionsReader::formatNumber(*momentum));
    for (const auto& layer : batchNorms(*network)) layer->setMomentum(momentum);
    return a.env().Undefined();
  });
  exportFunction(exports, "moduleResetBatchNormStatistics", [](Args& a) {
    const auto network = networkArg(a, 0);
    for (const auto& layer : batchNorms(*network)) layer->resetRunningStatistics();
    return a.env().Undefined();
  });
  // moduleSetExecution(module, channelsLast, precision: float32 | bfloat16): see nn/execution.h.
  exportFunction(exports, "moduleSetExecution", [](Args& a) {
    const auto network = networkArg(a, 0);
    Execution execution;
    execution.channelsLast = a.boolean(1, false);
    const at::ScalarType precision = a.dtype(2, at::kFloat);
    if (precision == at::kBFloat16)
      execution.autocast = precision;
    else if (precision != at::kFloat) {
      throw ArgumentError(std::string("precision must be float32 or bfloat16 (autocast), got ") + dtypeName(precision));
    }
    network->setExecution(execution);
    return a.env().Undefined();
  });
  exportFunction(exports, "moduleExecution", [](Args& a) {
    const Execution& execution = networkArg(a, 0)->execution();
    Napi::Object object = Napi::Object::New(a.env());
    object.Set("channelsLast", Napi::Boolean::New(a.env(), execution.channelsLast));
    object.Set("precision", dtypeName(execution.autocast.value_or(at::kFloat)));
    return object;
  });
  exportFunction(exports, "moduleTrain", [](Args& a) {
    const auto network = networkArg(a, 0);
    network->train(a.boolean(1, true));
    return a.env().Undefined();
  });
  exportFunction(exports, "moduleIsTraining",
                 [](Args& a) { return Napi::Boolean::New(a.env(), networkArg(a, 0)->is_training()); });

  // The live parameter and buffer tensors (not copies): gradients and updates show through.
  exportFunction(exports, "moduleParameters", [](Args& a) { return wrapTensors(a, networkArg(a, 0)->parameters()); });
  exportFunction(exports, "moduleParameterNames", [](Args& a) {
    const auto names = networkArg(a, 0)->named_parameters().keys();
    Napi::Array array = Napi::Array::New(a.env(), names.size());
    for (size_t i = 0; i < names.size(); ++i) array.Set(static_cast<uint32_t>(i), names[i]);
    return array;
  });
  exportFunction(exports, "moduleParameterCount", [](Args& a) {
    int64_t count = 0;
    for (const auto& parameter : networkArg(a, 0)->parameters()) count += parameter.numel();
    return Napi::Number::New(a.env(), static_cast<double>(count));
  });
  exportFunction(exports, "moduleBuffers", [](Args& a) { return wrapTensors(a, networkArg(a, 0)->buffers()); });
  exportFunction(exports, "moduleBufferNames", [](Args& a) {
    const auto names = networkArg(a, 0)->named_buffers().keys();
    Napi::Array array = Napi::Array::New(a.env(), names.size());
    for (size_t i = 0; i < names.size(); ++i) array.Set(static_cast<uint32_t>(i), names[i]);
    return array;
  });

  // Copies of every parameter and buffer by name: a snapshot that later training leaves alone.
  exportFunction(exports, "moduleStateDict", [](Args& a) {
    const auto network = networkArg(a, 0);
    Napi::Object dict = Napi::Object::New(a.env());
    at::NoGradGuard noGrad;
    for (const auto& [name, tensor] : stateEntries(*network)) dict.Set(name, wrapTensor(a, tensor.detach().clone()));
    return dict;
  });
  // Copies values in (converting dtype and device); all-or-nothing: every key, shape and kind
  // of dtype is checked before anything is written.
  exportFunction(exports, "moduleLoadStateDict", [](Args& a) {
    const auto network = networkArg(a, 0);
    loadStateDict(*network, a, 1);
    return a.env().Undefined();
  });

  // Moves parameters and buffers in place: tensors from moduleParameters() follow.
  exportFunction(exports, "moduleTo", [](Args& a) {
    const auto network = networkArg(a, 0);
    network->to(a.device(1));
    return a.env().Undefined();
  });
  exportFunction(exports, "moduleDevice", [](Args& a) {
    const auto parameters = networkArg(a, 0)->parameters();
    return Napi::String::New(a.env(), parameters.empty() ? "cpu" : parameters.front().device().str());
  });
  exportFunction(exports, "moduleDispose", [](Args& a) {
    ModuleHandle* handle = a.isMissing(0) ? nullptr : ModuleHandle::unwrap(a[0]);
    if (handle == nullptr) a.fail(0, "a Module");
    if (handle->busy()) throwBusy(0, "Module");
    handle->dispose(a.env());
    return a.env().Undefined();
  });
  exportFunction(exports, "moduleIsDisposed", [](Args& a) {
    ModuleHandle* handle = a.isMissing(0) ? nullptr : ModuleHandle::unwrap(a[0]);
    if (handle == nullptr) a.fail(0, "a Module");
    return Napi::Boolean::New(a.env(), handle->disposed());
  });

  // crossEntropy(logits [B, K], labels int64 [B], labelSmoothing?): the mean loss, a scalar.
  exportFunction(exports, "crossEntropy", [](Args& a) {
    const at::Tensor logits = a.tensor(0);
    const at::Tensor labels = a.tensor(1);
    const double smoothing = a.optionalNumber(2).value_or(0.0);
    if (logits.dim() != 2 || logits.size(0) == 0 || logits.size(1) == 0) {
      throw ArgumentError("logits must be a non-empty [batch, classes] tensor, got shape " +
                          shapeString(logits.sizes()));
    }
    if (!logits.is_floating_point())
      throw ArgumentError(std::string("logits must be floating point, got ") + dtypeName(logits.scalar_type()));
    if (labels.scalar_type() != at::kLong)
      throw ArgumentError(std::string("labels must be int64, got ") + dtypeName(labels.scalar_type()));
    if (labels.dim() != 1 || labels.size(0) != logits.size(0)) {
      throw ArgumentError("labels must have shape [" + std::to_string(logits.size(0)) +
                          "] (one per row of logits), got " + shapeString(labels.sizes()));
    }
    if (labels.device() != logits.device()) {
      throw ArgumentError("labels are on " + labels.device().str() + " but logits are on " + logits.device().str());
    }
    if (!(smoothing >= 0 && smoothing <= 1))
      throw ArgumentError("labelSmoothing must be in [0, 1], got " + OptionsReader::formatNumber(smoothing));
    const int64_t lowest = readScalar<int64_t>(labels.min());
    const int64_t highest = readScalar<int64_t>(labels.max());
    if (lowest < 0 || highest >= logits.size(1)) {
      const int64_t bad = lowest < 0 ? lowest : highest;
      throw ArgumentError("label " + std::to_string(bad) + " is out of range for " + std::to_string(logits.size(1)) +
                          " classes (labels must be in [0, " + std::to_string(logits.size(1) - 1) + "])");
    }
    return wrapTensor(a, at::cross_entropy_loss(logits, labels, {}, at::Reduction::Mean, -100, smoothing));
  });
}

}  // namespace dna
