// The launchers' interface: plain pointers and sizes, no LibTorch, so that the CUDA side
// compiles with nvcc alone. augment.cc fills these from tensors and picks the device.
#pragma once

#include <stdint.h>

#include "augment/ops.h"

namespace dna {
namespace augment {

// A batch through a two-op sub-policy per image: x1 = b1*op1(x) + (1-b1)*x,
// out = b2*op2(x1) + (1-b2)*x1. A single op is the same with kinds[i, 1] = kIdentity.
struct SubPolicyBatch {
  const float* input;  // [B, C, H, W], contiguous
  float* output;       // [B, C, H, W]
  float* between;      // [B, C, H, W]: x1, scratch for the CUDA launchers (the CPU ones keep their own)
  int64_t batch;
  ImageShape shape;
  const int32_t* kinds;  // [B, 2]
  const float* values;   // [B, 2], in the ops' natural units
  const float* bits;     // [B, 2]
  const float* noise;    // [B, 2, 2], uniform draws on [0, 1)
};

// The backward pass: per image, the sums of BackwardSum (ops.h) given dL/dout.
struct SubPolicyGradient {
  const float* gradOutput;  // [B, C, H, W], contiguous
  float* sums;              // [B, kBackwardSumCount]
  bool exact;               // also <G, dy/dv> where the op has a derivative
};

struct PreprocessBatch {
  const float* input;  // [B, C, H, W], contiguous
  float* output;       // [B, C, H, W]
  int64_t batch;
  ImageShape shape;
  const int32_t* params;  // [B, 6]: PreprocessParams fields in order
};

void subPolicyForwardCpu(const SubPolicyBatch& batch);
void subPolicyBackwardCpu(const SubPolicyBatch& batch, const SubPolicyGradient& gradient);
void preprocessCpu(const PreprocessBatch& batch);

// CUDA launchers (augment/cuda/kernels.cu); `stream` is a cudaStream_t.
void subPolicyForwardCuda(const SubPolicyBatch& batch, void* stream);
void subPolicyBackwardCuda(const SubPolicyBatch& batch, const SubPolicyGradient& gradient, void* stream);
void preprocessCuda(const PreprocessBatch& batch, void* stream);

}  // namespace augment
}  // namespace dna
