// Seeded randomness. A Generator handle owns a LibTorch generator on one device; every random
// function takes one (or null for LibTorch's default generator), so that a seed reproduces a run.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <mutex>

#include "core/args.h"
#include "core/cuda_support.h"
#include "core/errors.h"
#include "core/handles.h"
#include "core/registry.h"

namespace dna {

namespace {

at::TensorOptions optionsFrom(Args& a, size_t dtypeIndex, at::ScalarType fallback) {
  return at::TensorOptions().dtype(a.dtype(dtypeIndex, fallback)).device(a.device(dtypeIndex + 1));
}

void checkGeneratorDevice(const c10::optional<at::Generator>& generator, const c10::Device& device) {
  if (generator && generator->device().type() != device.type()) {
    throw ArgumentError("the generator is on " + generator->device().str() + " but the tensor is made on " +
                        device.str());
  }
}

}  // namespace

void registerRandom(Napi::Object exports) {
  // generator(seed, device?)
  exportFunction(exports, "generator", [](Args& a) {
    const uint64_t seed = a.seed(0);
    const c10::Device device = a.device(1);
    if (device.is_cuda()) return GeneratorHandle::wrap(a.env(), makeCudaGenerator(device.index(), seed));
    return GeneratorHandle::wrap(a.env(), at::make_generator<at::CPUGeneratorImpl>(seed));
  });
  exportFunction(exports, "generatorSeed", [](Args& a) {
    at::Generator generator = a.generator(0);
    return Napi::BigInt::New(a.env(), static_cast<uint64_t>(generator.current_seed()));
  });
  exportFunction(exports, "generatorDevice",
                 [](Args& a) { return Napi::String::New(a.env(), a.generator(0).device().str()); });
  // The full state (a uint8 tensor), to save in checkpoints and restore on resume.
  exportFunction(exports, "generatorState", [](Args& a) {
    at::Generator generator = a.generator(0);
    std::lock_guard<std::mutex> lock(generator.mutex());
    return wrapTensor(a, generator.get_state());
  });
  exportFunction(exports, "setGeneratorState", [](Args& a) {
    at::Generator generator = a.generator(0);
    const at::Tensor state = a.tensor(1);
    if (state.scalar_type() != at::kByte || state.dim() != 1) {
      throw ArgumentError("a generator state is a 1-d uint8 tensor");
    }
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state.to(at::kCPU).contiguous());
    return a.env().Undefined();
  });
  exportFunction(exports, "manualSeed", [](Args& a) {
    at::manual_seed(a.seed(0));
    return a.env().Undefined();
  });

  // rand(shape, generator?, dtype?, device?): uniform on [0, 1).
  exportFunction(exports, "rand", [](Args& a) {
    const auto options = optionsFrom(a, 2, at::kFloat);
    const auto generator = a.optionalGenerator(1);
    checkGeneratorDevice(generator, options.device());
    return wrapTensor(a, at::rand(a.shape(0), generator, options));
  });
  exportFunction(exports, "randn", [](Args& a) {
    const auto options = optionsFrom(a, 2, at::kFloat);
    const auto generator = a.optionalGenerator(1);
    checkGeneratorDevice(generator, options.device());
    return wrapTensor(a, at::randn(a.shape(0), generator, options));
  });
  // uniform(low, high, shape, generator?, dtype?, device?)
  exportFunction(exports, "uniform", [](Args& a) {
    const double low = a.number(0);
    const double high = a.number(1);
    if (!(low < high)) throw ArgumentError("uniform needs low < high");
    const auto options = optionsFrom(a, 4, at::kFloat);
    const auto generator = a.optionalGenerator(3);
    checkGeneratorDevice(generator, options.device());
    return wrapTensor(a, at::empty(a.shape(2), options).uniform_(low, high, generator));
  });
  // randint(low, high, shape, generator?, dtype?, device?): integers in [low, high).
  exportFunction(exports, "randint", [](Args& a) {
    const int64_t low = a.integer(0);
    const int64_t high = a.integer(1);
    if (low >= high) throw ArgumentError("randint needs low < high");
    const auto options = optionsFrom(a, 4, at::kLong);
    const auto generator = a.optionalGenerator(3);
    checkGeneratorDevice(generator, options.device());
    return wrapTensor(a, at::randint(low, high, a.shape(2), generator, options));
  });
  // randperm(n, generator?, device?)
  exportFunction(exports, "randperm", [](Args& a) {
    const int64_t n = a.integer(0);
    if (n < 0) throw ArgumentError("randperm needs n >= 0");
    const auto generator = a.optionalGenerator(1);
    const auto options = at::TensorOptions().dtype(at::kLong).device(a.device(2));
    checkGeneratorDevice(generator, options.device());
    return wrapTensor(a, at::randperm(n, generator, options));
  });
  // bernoulli(probabilities, generator?): 0/1 draws of the same shape and dtype.
  exportFunction(exports, "bernoulli", [](Args& a) {
    const at::Tensor p = a.tensor(0);
    const auto generator = a.optionalGenerator(1);
    checkGeneratorDevice(generator, p.device());
    return wrapTensor(a, at::bernoulli(p, generator));
  });
}

}  // namespace dna
