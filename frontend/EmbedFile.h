//===- EmbedFile.h - A file's bytes as a symbol of an object ------*- C++ -*-===//
//
// rwkvc links data into compiled models (the packed weights, the tokenizer)
// as an object that defines a symbol for them, read-only:
//
//   small data (the tokenizer): a .s file that .incbin's the data file,
//     assembled by `clang -c` (the assembler holds the data in memory);
//   the weight image: an ELF object written directly, whose head and tail
//     come from blobObject and whose data the packer streams in between:
//     the image is written once, and only lld copies it (into the output).
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_FRONTEND_EMBEDFILE_H
#define RWKVC_FRONTEND_EMBEDFILE_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/TargetParser/Triple.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rwkvc {

/// Assembly (GNU as syntax, for `clang -c x.s`) that defines `symbol`, the
/// bytes of the file `path` (.incbin) aligned to `alignment` bytes in the
/// read-only section .rodata.<symbol>, and `symbol`_size, a uint64_t with
/// their count.
std::string embedFileAssembly(llvm::StringRef symbol, llvm::StringRef path,
                              unsigned alignment);

/// An ELF relocatable object for `triple` that defines what
/// embedFileAssembly's assembly does, for `size` bytes the caller writes
/// itself: `head` at offset 0, the data at `dataOffset`, `tail` right after
/// the data.
struct BlobObject {
  std::vector<uint8_t> head;
  uint64_t dataOffset = 0;
  std::vector<uint8_t> tail;
};

/// The object that defines `symbol` (`size` bytes aligned to `alignment`, a
/// power of two) and `symbol`_size (a uint64_t with their count). `large`:
/// the data goes into the x86-64 large-data section .lrodata.`symbol`, which
/// lld places apart from code and small data, so that data beyond 2 GiB
/// leaves code-to-data references of the small code model in range (the
/// runtime reaches the symbol through the GOT). An error for a triple it
/// cannot write (not 64-bit little-endian ELF on x86-64 or AArch64), or for
/// `large` on AArch64.
llvm::Expected<BlobObject> blobObject(llvm::StringRef symbol, uint64_t size,
                                      uint64_t alignment,
                                      const llvm::Triple &triple, bool large);

} // namespace rwkvc

#endif // RWKVC_FRONTEND_EMBEDFILE_H
