//===- CudaHeaderCheck.cpp - rwkv_cuda_driver.h against cuda.h ------------===//
//
// Compiles only when every function of rwkv_cuda_driver.h has cuda.h's type
// under its ABI name and every constant has cuda.h's value; running it says
// how much was checked.
//
//===----------------------------------------------------------------------===//

#include <cuda.h>
#define RWKV_CUDA_DRIVER_TYPES_FROM_CUDA_H
#include "rwkv_cuda_driver.h"

#include <cstdio>
#include <type_traits>

#define CHECK_FUNCTION(name, params)                                           \
  static_assert(std::is_same_v<decltype(&::name), CUresult(*) params>,         \
                #name " is declared differently in cuda.h");                   \
  ++functions;
#define CHECK_RESULT(name, value, text)                                        \
  static_assert(name == value, #name " differs from cuda.h");                  \
  ++constants;
#define CHECK_CONSTANT(name, value)                                            \
  static_assert(name == value, #name " differs from cuda.h");                  \
  ++constants;

int main() {
  int functions = 0, constants = 0;
  RWKV_CUDA_DRIVER_FUNCTIONS(CHECK_FUNCTION)
  RWKV_CUDA_RESULTS(CHECK_RESULT)
  RWKV_CUDA_DEVICE_ATTRIBUTES(CHECK_CONSTANT)
  RWKV_CUDA_FUNCTION_ATTRIBUTES(CHECK_CONSTANT)
  RWKV_CUDA_JIT_OPTIONS(CHECK_CONSTANT)
  RWKV_CUDA_STREAM_CAPTURE_MODES(CHECK_CONSTANT)
  RWKV_CUDA_STREAM_FLAGS(CHECK_CONSTANT)
  std::printf("rwkv_cuda_driver.h matches cuda.h (CUDA_VERSION %d): %d "
              "functions, %d constants\n",
              CUDA_VERSION, functions, constants);
  return 0;
}
