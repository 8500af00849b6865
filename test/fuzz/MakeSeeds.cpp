//===- MakeSeeds.cpp - Writes small crafted seed files for the fuzzers ----===//
//
// make-fuzz-seeds DIR: writes DIR/{pth,safetensors,ggml}/<name> with the
// crafted models of test/frontend/TestFiles.h (the tiny real models are
// passed to the fuzzers separately, straight from RWKVC_SHARED_DIR).
//
//===----------------------------------------------------------------------===//

#include "../frontend/TestFiles.h"

#include <cstdio>
#include <string>
#include <sys/stat.h>

using namespace rwkvc;
using namespace rwkvc::testing;

static bool write(const std::string &path, const std::string &bytes) {
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    return false;
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make-fuzz-seeds DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  for (const char *sub : {"", "/pth", "/safetensors", "/ggml"})
    mkdir((dir + sub).c_str(), 0755);
  PthOptions f16, deflate, strided;
  f16.dtype = DType::F16;
  deflate.compress = true;
  strided.transposeFirst = true;
  bool ok =
      write(dir + "/pth/v4.pth", makePth(tinyV4Model())) &&
      write(dir + "/pth/v4-f16.pth", makePth(tinyV4Model(), f16)) &&
      write(dir + "/pth/v4-deflate.pth", makePth(tinyV4Model(), deflate)) &&
      write(dir + "/pth/v4-strided.pth", makePth(tinyV4Model(), strided)) &&
      write(dir + "/pth/v7.pth", makePth(tinyV7Model())) &&
      write(dir + "/safetensors/v4.safetensors",
            makeSafeTensors(tinyV4Model())) &&
      write(dir + "/safetensors/v51.safetensors",
            makeSafeTensors(tinyV51Model())) &&
      write(dir + "/safetensors/v7.safetensors",
            makeSafeTensors(tinyV7Model())) &&
      write(dir + "/ggml/v4.bin", makeGGMLV4(tinyV4Model()));
  if (!ok) {
    std::perror(dir.c_str());
    return 1;
  }
  return 0;
}
