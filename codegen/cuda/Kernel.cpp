//===- Kernel.cpp - One generated CUDA kernel -----------------------------===//
//
// The CUDA spelling of the weight element types (Kernel.h).
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/Kernel.h"

namespace rwkvc::cuda {

llvm::StringRef cudaTypeName(ElemType t) {
  switch (t) {
  case ElemType::F32:
    return "float";
  case ElemType::F16:
    return "__half";
  case ElemType::BF16:
    return "__nv_bfloat16";
  }
  return "float";
}

} // namespace rwkvc::cuda
