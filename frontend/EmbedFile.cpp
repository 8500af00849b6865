//===- EmbedFile.cpp - A file's bytes as a symbol of an object ------------===//

#include "frontend/EmbedFile.h"

#include "llvm/Support/FormatVariadic.h"

namespace rwkvc {

std::string embedFileAssembly(llvm::StringRef symbol, llvm::StringRef path,
                              unsigned alignment) {
  std::string quoted;
  for (char c : path) {
    if (c == '"' || c == '\\')
      quoted += '\\';
    quoted += c;
  }
  return llvm::formatv("\t.section .rodata.{0},\"a\",@progbits\n"
                       "\t.balign {2}\n"
                       "\t.globl {0}\n"
                       "\t.type {0}, @object\n"
                       "{0}:\n"
                       "\t.incbin \"{1}\"\n"
                       ".L{0}_end:\n"
                       "\t.size {0}, .L{0}_end - {0}\n"
                       "\t.balign 8\n"
                       "\t.globl {0}_size\n"
                       "\t.type {0}_size, @object\n"
                       "{0}_size:\n"
                       "\t.quad .L{0}_end - {0}\n"
                       "\t.size {0}_size, 8\n"
                       "\t.section .note.GNU-stack,\"\",@progbits\n",
                       symbol, quoted, alignment)
      .str();
}

} // namespace rwkvc
