//===- make-tokenizer-blob.cpp - A tokenizer blob for the test models -----===//
//
// make-tokenizer-blob SPEC VOCAB OUT ASM: compiles SPEC with
// rwkvc::compileTokenizer (as rwkvc does), writes the blob to OUT and the
// assembly that links it (rwkvc::tokenizerBlobAssembly) to ASM.
//
//===----------------------------------------------------------------------===//

#include "frontend/Tokenizer.h"

#include <cstdio>
#include <cstdlib>

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: make-tokenizer-blob SPEC VOCAB OUT ASM\n");
    return 2;
  }
  auto blob = rwkvc::compileTokenizer(argv[1], atoll(argv[2]),
                                      RWKVC_SHARED_DIR "/tokenizers");
  if (!blob) {
    fprintf(stderr, "make-tokenizer-blob: %s\n",
            llvm::toString(blob.takeError()).c_str());
    return 1;
  }
  FILE *f = fopen(argv[3], "wb");
  if (!f || fwrite(blob->data(), 1, blob->size(), f) != blob->size() ||
      fclose(f) != 0) {
    fprintf(stderr, "make-tokenizer-blob: cannot write %s\n", argv[3]);
    return 1;
  }
  std::string asmPath = argv[4];
  std::string text = rwkvc::tokenizerBlobAssembly(argv[3]);
  f = fopen(asmPath.c_str(), "wb");
  if (!f || fwrite(text.data(), 1, text.size(), f) != text.size() ||
      fclose(f) != 0) {
    fprintf(stderr, "make-tokenizer-blob: cannot write %s\n", asmPath.c_str());
    return 1;
  }
  return 0;
}
