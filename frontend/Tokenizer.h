//===- Tokenizer.h - Compiling a tokenizer into the model blob --*- C++ -*-===//
//
// rwkvc links a tokenizer into every executable it builds: the vocabulary is
// read here at compile time (with LLVM's JSON parser for Hugging Face
// tokenizer.json files) and serialised into the compact binary blob of
// docs/tokenizers.md, which the runtime (runtime/rwkv_tokenizer.cpp) reads.
//
//   spec "bytes"          256 tokens, id = byte
//   spec "world"          <searchDir>/rwkv_vocab_v20230424.txt
//   spec "20b"            <searchDir>/20B_tokenizer.json
//   spec "PATH.txt"       an RWKV World vocabulary (`<id> <literal> <len>`)
//   spec "PATH.json"      a Hugging Face byte-level BPE tokenizer.json
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_FRONTEND_TOKENIZER_H
#define RWKVC_FRONTEND_TOKENIZER_H

#include "runtime/format/rwkv_tokenizer_format.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rwkvc {

/// Version of the blob format written by compileTokenizer (docs/tokenizers.md).
constexpr uint32_t kTokenizerBlobVersion = RWKV_TOKENIZER_FORMAT_VERSION;

/// Reads the tokenizer named by `spec` (see above; `world` and `20b` are
/// looked up in `searchDir`, e.g. RWKVC_SHARED_DIR/tokenizers) and returns
/// its blob. Fails with a message naming the tokenizer when the file is
/// missing, unreadable, malformed or of an unsupported kind, or when it has
/// more tokens than the model's `vocabSize` logits ("tokenizer 'X' has N
/// tokens, the model only V"). vocabSize <= 0 skips that check.
llvm::Expected<std::vector<uint8_t>>
compileTokenizer(llvm::StringRef spec, int64_t vocabSize,
                 llvm::StringRef searchDir);

/// Assembly (GNU as syntax, for `clang -c x.s`) that defines the symbols
/// rwkv_tokenizer_blob (the bytes of the file `blobPath`, .incbin, 8-byte
/// aligned, read-only) and rwkv_tokenizer_blob_size (a uint64_t) that the
/// runtime looks for (rwkv_abi.h, docs/tokenizers.md): embedFileAssembly.
std::string tokenizerBlobAssembly(llvm::StringRef blobPath);

/// The tokenizer spec that fits a vocabulary size: 256 -> "bytes",
/// 50277/50304 -> "20b", 65536 -> "world"; "" when none is known.
std::string defaultTokenizerFor(int64_t vocabSize);

} // namespace rwkvc

#endif // RWKVC_FRONTEND_TOKENIZER_H
