//===- make-tokenizer-blob.cpp - A tokenizer blob for the test models -----===//
//
// make-tokenizer-blob SPEC VOCAB OUT: compiles SPEC with
// rwkvc::compileTokenizer (as rwkvc does) and writes the blob to OUT.
//
//===----------------------------------------------------------------------===//

#include "frontend/Tokenizer.h"

#include <cstdio>
#include <cstdlib>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: make-tokenizer-blob SPEC VOCAB OUT\n");
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
  return 0;
}
