//===- CPUTarget.h - The CPU backend behind the Target interface -*- C++ -*-===//

#ifndef RWKV_CODEGEN_CPU_CPUTARGET_H
#define RWKV_CODEGEN_CPU_CPUTARGET_H

namespace rwkvc {

/// Registers the `cpu` target (rwkv-lower-to-loops, rwkv-loops-to-llvm,
/// LLVM for the host or --target-cpu) with the TargetRegistry, and its
/// passes with the pass registry.
void registerCPUTarget();

} // namespace rwkvc

#endif // RWKV_CODEGEN_CPU_CPUTARGET_H
