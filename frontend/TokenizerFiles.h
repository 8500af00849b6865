//===- TokenizerFiles.h - Where the bundled tokenizers are -------*- C++ -*-===//
//
// The World vocabulary and the 20B tokenizer ship with rwkvc (data/tokenizers,
// Apache-2.0). rwkvc finds them relative to its own executable, as it finds
// the runtime libraries:
//
//   <dir of rwkvc>/../share/rwkvc/tokenizers
//
// which is both the install layout (<prefix>/bin, <prefix>/share) and the
// build tree's (build/bin/rwkvc, build/share/rwkvc/tokenizers, copied there
// by data/CMakeLists.txt). --tokenizer-dir DIR replaces that folder.
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_FRONTEND_TOKENIZERFILES_H
#define RWKVC_FRONTEND_TOKENIZERFILES_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rwkvc {

/// The file the spec `world` / `20b` names in a tokenizer folder; "" for any
/// other spec.
llvm::StringRef bundledTokenizerFile(llvm::StringRef spec);

/// The bundled tokenizer folder of the executable `executable`:
/// <its directory>/../share/rwkvc/tokenizers (it may not exist).
std::string bundledTokenizerDir(llvm::StringRef executable);

/// compileTokenizer (Tokenizer.h) with `world` and `20b` read from
/// `explicitDir` (--tokenizer-dir) when it is not empty, else from
/// bundledTokenizerDir(executable). When the file is not there, fails with
/// one line naming the file, the folder, and the options that supply it
/// (--tokenizer FILE, --tokenizer-dir DIR).
llvm::Expected<std::vector<uint8_t>>
compileTokenizerFound(llvm::StringRef spec, int64_t vocabSize,
                      llvm::StringRef explicitDir, llvm::StringRef executable);

} // namespace rwkvc

#endif // RWKVC_FRONTEND_TOKENIZERFILES_H
