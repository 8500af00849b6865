# cmake -DCLANG=clang++ -DCUDA_PATH=DIR -DINCLUDE=DIR -DFILES=a.cu;b.cu
#       -DOUT=DIR -P clang-cuda-check.cmake
# Compiles each CUDA file for sm_80 with clang's CUDA front end (device
# side only, to PTX), warnings as errors: the kernel text must be valid for
# a second compiler. Skips, saying why, without the toolkit's headers.
if(NOT EXISTS "${CUDA_PATH}/include/cuda_runtime.h")
  message("skipped: no CUDA headers at ${CUDA_PATH}/include")
  return()
endif()
file(MAKE_DIRECTORY ${OUT})
foreach(file IN LISTS FILES)
  get_filename_component(name ${file} NAME_WE)
  execute_process(COMMAND ${CLANG} -x cuda --cuda-path=${CUDA_PATH}
      --cuda-gpu-arch=sm_80 -nocudalib --cuda-device-only -S -O2
      -Wall -Wextra -Wno-unused-parameter -Wno-unknown-cuda-version -Werror
      -I${INCLUDE} ${file} -o ${OUT}/${name}.ptx
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "clang CUDA: ${file}:\n${out}")
  endif()
  file(STRINGS ${OUT}/${name}.ptx entries REGEX "\\.entry ")
  list(LENGTH entries n)
  message(STATUS "ok ${name}.cu: ${n} kernels")
endforeach()
