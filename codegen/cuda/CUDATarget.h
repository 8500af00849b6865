//===- CUDATarget.h - The CUDA backend ----------------------------*- C++ -*-===//
//
// `rwkvc --target=cuda`: the model's ops as CUDA C++ kernels (CUDAEmitter.h)
// compiled by NVRTC (NVRTC.h) or, for tests without a GPU, as host C++ for
// the emulator (docs/cuda-emulator.md), and the launch plan the runtime
// interprets (runtime/rwkv_abi.h).
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_CUDA_CUDATARGET_H
#define RWKV_CODEGEN_CUDA_CUDATARGET_H

namespace rwkvc {

/// Adds the CUDA target to the TargetRegistry.
void registerCUDATarget();

} // namespace rwkvc

#endif // RWKV_CODEGEN_CUDA_CUDATARGET_H
