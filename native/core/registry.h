// The groups of native functions the addon exports; each lives in its own translation unit.
#pragma once

#include <napi.h>

namespace dna {

void registerTensorIo(Napi::Object exports);
void registerTensorOps(Napi::Object exports);
void registerRandom(Napi::Object exports);
void registerRuntime(Napi::Object exports);
void registerAugment(Napi::Object exports);
void registerModels(Napi::Object exports);
void registerOptim(Napi::Object exports);
void registerCustomOps(Napi::Object exports);
void registerSteps(Napi::Object exports);
void registerDistributed(Napi::Object exports);

}  // namespace dna
