//===- TokenizerFiles.cpp - Where the bundled tokenizers are --------------===//
//
// Finds the folder `world` and `20b` are read from (TokenizerFiles.h).
//
//===----------------------------------------------------------------------===//

#include "frontend/TokenizerFiles.h"

#include "frontend/Tokenizer.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace llvm;

namespace rwkvc {

StringRef bundledTokenizerFile(StringRef spec) {
  if (spec == "world")
    return "rwkv_vocab_v20230424.txt";
  if (spec == "20b")
    return "20B_tokenizer.json";
  return "";
}

std::string bundledTokenizerDir(StringRef executable) {
  SmallString<256> dir(sys::path::parent_path(executable));
  sys::path::append(dir, "..", "share", "rwkvc", "tokenizers");
  sys::path::remove_dots(dir, /*remove_dot_dot=*/true);
  return std::string(dir);
}

Expected<std::vector<uint8_t>> compileTokenizerFound(StringRef spec,
                                                     int64_t vocabSize,
                                                     StringRef explicitDir,
                                                     StringRef executable) {
  std::string dir = explicitDir.empty() ? bundledTokenizerDir(executable)
                                        : explicitDir.str();
  StringRef file = bundledTokenizerFile(spec);
  if (!file.empty()) {
    SmallString<256> path(dir);
    sys::path::append(path, file);
    if (!sys::fs::exists(path))
      return createStringError(
          "tokenizer '" + spec + "': " + file + " is not in " +
          (explicitDir.empty() ? "rwkvc's tokenizer folder '" + dir + "'"
                               : "--tokenizer-dir '" + dir + "'") +
          "; give its path with --tokenizer FILE or its folder with "
          "--tokenizer-dir DIR");
  }
  return compileTokenizer(spec, vocabSize, dir);
}

} // namespace rwkvc
