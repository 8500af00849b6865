/*===- rwkv_cuda_driver.h - The CUDA driver API subset rwkvc uses -*- C -*-===*
 *
 * The types, constants and functions of the CUDA driver API that rwkvc's
 * runtime calls, declared from NVIDIA's public documentation (CUDA Driver
 * API, CUDA 13) so that neither the runtime nor the emulator needs the
 * toolkit's cuda.h. Names and numbers are the driver's; functions are listed
 * under their ABI symbols (the _v2 names cuda.h's macros select: a runtime
 * that looks up "cuMemAlloc" gets the 32-bit API of 2010). The cudaemu test
 * CudaHeaderCheck compiles every entry against cuda.h when it is present.
 *
 * The runtime opens libcuda.so.1 (or $RWKV_CUDA_LIBRARY) with dlopen and
 * looks up each function of RWKV_CUDA_DRIVER_FUNCTIONS with dlsym:
 *
 *   #define X(name, params) typedef CUresult (*PFN_##name) params;
 *   RWKV_CUDA_DRIVER_FUNCTIONS(X)
 *
 * libcuda-emu.so.1 (docs/cuda-emulator.md) exports exactly these.
 *
 *===----------------------------------------------------------------------===*/

#ifndef RWKV_CUDA_DRIVER_H
#define RWKV_CUDA_DRIVER_H

#include <stddef.h>

/* X(name, value, description) */
#define RWKV_CUDA_RESULTS(X)                                                   \
  X(CUDA_SUCCESS, 0, "no error")                                               \
  X(CUDA_ERROR_INVALID_VALUE, 1, "invalid argument")                           \
  X(CUDA_ERROR_OUT_OF_MEMORY, 2, "out of memory")                              \
  X(CUDA_ERROR_NOT_INITIALIZED, 3, "initialization error")                     \
  X(CUDA_ERROR_DEINITIALIZED, 4, "driver shutting down")                       \
  X(CUDA_ERROR_NO_DEVICE, 100, "no CUDA-capable device is detected")           \
  X(CUDA_ERROR_INVALID_DEVICE, 101, "invalid device ordinal")                  \
  X(CUDA_ERROR_INVALID_IMAGE, 200, "device kernel image is invalid")           \
  X(CUDA_ERROR_INVALID_CONTEXT, 201, "invalid device context")                 \
  X(CUDA_ERROR_NO_BINARY_FOR_GPU, 209,                                         \
    "no kernel image is available for execution on the device")                \
  X(CUDA_ERROR_INVALID_PTX, 218, "a PTX JIT compilation failed")               \
  X(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, 222,                                   \
    "the provided PTX was compiled with an unsupported toolchain")             \
  X(CUDA_ERROR_INVALID_HANDLE, 400, "invalid resource handle")                 \
  X(CUDA_ERROR_ILLEGAL_STATE, 401,                                             \
    "the operation cannot be performed in the present state")                  \
  X(CUDA_ERROR_NOT_FOUND, 500, "named symbol not found")                       \
  X(CUDA_ERROR_ILLEGAL_ADDRESS, 700,                                           \
    "an illegal memory access was encountered")                                \
  X(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, 701,                                   \
    "too many resources requested for launch")                                 \
  X(CUDA_ERROR_LAUNCH_TIMEOUT, 702, "the launch timed out and was terminated") \
  X(CUDA_ERROR_ASSERT, 710, "device-side assert triggered")                    \
  X(CUDA_ERROR_ILLEGAL_INSTRUCTION, 715,                                       \
    "an illegal instruction was encountered")                                  \
  X(CUDA_ERROR_LAUNCH_FAILED, 719, "unspecified launch failure")               \
  X(CUDA_ERROR_NOT_SUPPORTED, 801, "operation not supported")                  \
  X(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, 900,                                \
    "operation not permitted when stream is capturing")                        \
  X(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, 901,                                \
    "operation failed due to a previous error during capture")                 \
  X(CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, 903,                                  \
    "capture was not initiated in this stream")                                \
  X(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, 906,                                   \
    "operation would make the legacy stream depend on a capturing blocking "   \
    "stream")                                                                  \
  X(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, 908,                               \
    "attempt to terminate a thread-local capture sequence from another "       \
    "thread")                                                                  \
  X(CUDA_ERROR_UNKNOWN, 999, "unknown error")

/* X(name, value) */
#define RWKV_CUDA_DEVICE_ATTRIBUTES(X)                                         \
  X(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1)                              \
  X(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, 2)                                    \
  X(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, 3)                                    \
  X(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, 4)                                    \
  X(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 5)                                     \
  X(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, 6)                                     \
  X(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, 7)                                     \
  X(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 8)                        \
  X(CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY, 9)                              \
  X(CU_DEVICE_ATTRIBUTE_WARP_SIZE, 10)                                         \
  X(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, 12)                           \
  X(CU_DEVICE_ATTRIBUTE_CLOCK_RATE, 13)                                        \
  X(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 16)                              \
  X(CU_DEVICE_ATTRIBUTE_INTEGRATED, 18)                                        \
  X(CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS, 31)                                \
  X(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, 36)                                 \
  X(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, 37)                           \
  X(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, 38)                                     \
  X(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, 39)                    \
  X(CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 41)                                \
  X(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 75)                          \
  X(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 76)                          \
  X(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 81)              \
  X(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 97)

#define RWKV_CUDA_FUNCTION_ATTRIBUTES(X)                                       \
  X(CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 0)                                \
  X(CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, 1)                                    \
  X(CU_FUNC_ATTRIBUTE_NUM_REGS, 4)                                             \
  X(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 8)                        \
  X(CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT, 9)

#define RWKV_CUDA_JIT_OPTIONS(X)                                               \
  X(CU_JIT_MAX_REGISTERS, 0)                                                   \
  X(CU_JIT_INFO_LOG_BUFFER, 3)                                                 \
  X(CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, 4)                                      \
  X(CU_JIT_ERROR_LOG_BUFFER, 5)                                                \
  X(CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, 6)

#define RWKV_CUDA_STREAM_CAPTURE_MODES(X)                                      \
  X(CU_STREAM_CAPTURE_MODE_GLOBAL, 0)                                          \
  X(CU_STREAM_CAPTURE_MODE_THREAD_LOCAL, 1)                                    \
  X(CU_STREAM_CAPTURE_MODE_RELAXED, 2)

#define RWKV_CUDA_STREAM_FLAGS(X)                                              \
  X(CU_STREAM_DEFAULT, 0)                                                      \
  X(CU_STREAM_NON_BLOCKING, 1)

/* X(name, (parameters)): every function returns CUresult. */
#define RWKV_CUDA_DRIVER_FUNCTIONS(X)                                          \
  X(cuGetErrorName, (CUresult error, const char **pStr))                       \
  X(cuGetErrorString, (CUresult error, const char **pStr))                     \
  X(cuInit, (unsigned int Flags))                                              \
  X(cuDriverGetVersion, (int *driverVersion))                                  \
  X(cuDeviceGetCount, (int *count))                                            \
  X(cuDeviceGet, (CUdevice * device, int ordinal))                             \
  X(cuDeviceGetName, (char *name, int len, CUdevice dev))                      \
  X(cuDeviceGetAttribute, (int *pi, CUdevice_attribute attrib, CUdevice dev))  \
  X(cuDeviceTotalMem_v2, (size_t * bytes, CUdevice dev))                       \
  X(cuDevicePrimaryCtxRetain, (CUcontext * pctx, CUdevice dev))                \
  X(cuDevicePrimaryCtxRelease_v2, (CUdevice dev))                              \
  X(cuCtxSetCurrent, (CUcontext ctx))                                          \
  X(cuCtxGetCurrent, (CUcontext * pctx))                                       \
  X(cuCtxSynchronize, (void))                                                  \
  X(cuModuleLoadData, (CUmodule * module, const void *image))                  \
  X(cuModuleLoadDataEx,                                                        \
    (CUmodule * module, const void *image, unsigned int numOptions,            \
     CUjit_option *options, void **optionValues))                              \
  X(cuModuleUnload, (CUmodule hmod))                                           \
  X(cuModuleGetFunction, (CUfunction * hfunc, CUmodule hmod, const char *name))\
  X(cuFuncSetAttribute,                                                        \
    (CUfunction hfunc, CUfunction_attribute attrib, int value))                \
  X(cuMemAlloc_v2, (CUdeviceptr * dptr, size_t bytesize))                      \
  X(cuMemFree_v2, (CUdeviceptr dptr))                                          \
  X(cuMemGetInfo_v2, (size_t * free, size_t * total))                          \
  X(cuMemcpyHtoD_v2,                                                           \
    (CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount))            \
  X(cuMemcpyDtoH_v2,                                                           \
    (void *dstHost, CUdeviceptr srcDevice, size_t ByteCount))                  \
  X(cuMemcpyDtoD_v2,                                                           \
    (CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount))          \
  X(cuMemcpyHtoDAsync_v2, (CUdeviceptr dstDevice, const void *srcHost,         \
                           size_t ByteCount, CUstream hStream))                \
  X(cuMemcpyDtoHAsync_v2, (void *dstHost, CUdeviceptr srcDevice,               \
                           size_t ByteCount, CUstream hStream))                \
  X(cuMemcpyDtoDAsync_v2, (CUdeviceptr dstDevice, CUdeviceptr srcDevice,       \
                           size_t ByteCount, CUstream hStream))                \
  X(cuMemsetD8_v2, (CUdeviceptr dstDevice, unsigned char uc, size_t N))        \
  X(cuMemsetD32_v2, (CUdeviceptr dstDevice, unsigned int ui, size_t N))        \
  X(cuMemsetD8Async,                                                           \
    (CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream))     \
  X(cuMemsetD32Async,                                                          \
    (CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream))      \
  X(cuStreamCreate, (CUstream * phStream, unsigned int Flags))                 \
  X(cuStreamDestroy_v2, (CUstream hStream))                                    \
  X(cuStreamSynchronize, (CUstream hStream))                                   \
  X(cuLaunchKernel,                                                            \
    (CUfunction f, unsigned int gridDimX, unsigned int gridDimY,               \
     unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,    \
     unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,    \
     void **kernelParams, void **extra))                                       \
  X(cuStreamBeginCapture_v2, (CUstream hStream, CUstreamCaptureMode mode))     \
  X(cuStreamEndCapture, (CUstream hStream, CUgraph * phGraph))                 \
  X(cuGraphInstantiateWithFlags,                                               \
    (CUgraphExec * phGraphExec, CUgraph hGraph, unsigned long long flags))     \
  X(cuGraphLaunch, (CUgraphExec hGraphExec, CUstream hStream))                 \
  X(cuGraphExecDestroy, (CUgraphExec hGraphExec))                              \
  X(cuGraphDestroy, (CUgraph hGraph))

/* cuda.h already declares the types when the check against it includes
 * this header (it defines RWKV_CUDA_DRIVER_TYPES_FROM_CUDA_H). */
#ifndef RWKV_CUDA_DRIVER_TYPES_FROM_CUDA_H
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;

#define RWKV_CUDA_RESULT_ENUMERATOR(name, value, text) name = value,
#define RWKV_CUDA_ENUMERATOR(name, value) name = value,
typedef enum cudaError_enum {
  RWKV_CUDA_RESULTS(RWKV_CUDA_RESULT_ENUMERATOR)
} CUresult;
typedef enum CUdevice_attribute_enum {
  RWKV_CUDA_DEVICE_ATTRIBUTES(RWKV_CUDA_ENUMERATOR)
} CUdevice_attribute;
typedef enum CUfunction_attribute_enum {
  RWKV_CUDA_FUNCTION_ATTRIBUTES(RWKV_CUDA_ENUMERATOR)
} CUfunction_attribute;
typedef enum CUjit_option_enum {
  RWKV_CUDA_JIT_OPTIONS(RWKV_CUDA_ENUMERATOR)
} CUjit_option;
typedef enum CUstreamCaptureMode_enum {
  RWKV_CUDA_STREAM_CAPTURE_MODES(RWKV_CUDA_ENUMERATOR)
} CUstreamCaptureMode;
typedef enum CUstream_flags_enum {
  RWKV_CUDA_STREAM_FLAGS(RWKV_CUDA_ENUMERATOR)
} CUstream_flags;
#undef RWKV_CUDA_RESULT_ENUMERATOR
#undef RWKV_CUDA_ENUMERATOR
#endif /* RWKV_CUDA_DRIVER_TYPES_FROM_CUDA_H */

#endif /* RWKV_CUDA_DRIVER_H */
