# cmake -DIN=file -DOUT=file.inc -P embed-text.cmake
# Writes IN as a C++ raw string literal to OUT (#included where a char
# array is initialized): kernel templates that rwkvc pastes into the CUDA
# files it generates.
file(READ ${IN} text)
string(FIND "${text}" ")rwkv_embed\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw string's delimiter")
endif()
file(WRITE ${OUT} "R\"rwkv_embed(${text})rwkv_embed\"\n")
