// The addon's entry point: registers every group of native functions.
#include <napi.h>

#include "core/handles.h"
#include "core/registry.h"

namespace {

Napi::Object init(Napi::Env env, Napi::Object exports) {
  dna::TensorHandle::define(env, exports);
  dna::GeneratorHandle::define(env, exports);
  dna::registerRuntime(exports);
  dna::registerTensorIo(exports);
  dna::registerTensorOps(exports);
  dna::registerRandom(exports);
  dna::registerAugment(exports);
  dna::registerModels(exports);
  dna::registerOptim(exports);
  dna::registerCustomOps(exports);
  dna::registerSteps(exports);
  dna::registerDistributed(exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(dna_native, init)
