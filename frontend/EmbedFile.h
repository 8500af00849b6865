//===- EmbedFile.h - A file's bytes as a symbol of an object ------*- C++ -*-===//
//
// rwkvc links data into compiled models (the packed weights, the tokenizer)
// by assembling a small .s file that .incbin's the data: large files are
// never held as LLVM constants, and the object maps them read-only.
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_FRONTEND_EMBEDFILE_H
#define RWKVC_FRONTEND_EMBEDFILE_H

#include "llvm/ADT/StringRef.h"

#include <string>

namespace rwkvc {

/// Assembly (GNU as syntax, for `clang -c x.s`) that defines `symbol`, the
/// bytes of the file `path` (.incbin) aligned to `alignment` bytes in the
/// read-only section .rodata.<symbol>, and `symbol`_size, a uint64_t with
/// their count.
std::string embedFileAssembly(llvm::StringRef symbol, llvm::StringRef path,
                              unsigned alignment);

} // namespace rwkvc

#endif // RWKVC_FRONTEND_EMBEDFILE_H
