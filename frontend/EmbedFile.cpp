//===- EmbedFile.cpp - A file's bytes as a symbol of an object ------------===//

#include "frontend/EmbedFile.h"

#include "llvm/BinaryFormat/ELF.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

#include <cstring>

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

namespace {
/// Appends `value`'s bytes (the host is little-endian, as the object).
template <typename T> void append(std::vector<uint8_t> &out, const T &value) {
  const uint8_t *p = reinterpret_cast<const uint8_t *>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}
void padTo(std::vector<uint8_t> &out, uint64_t base, uint64_t alignment) {
  out.resize(llvm::alignTo(base + out.size(), alignment) - base);
}
/// A string table: "\0" then each name and its "\0".
struct StringTable {
  std::string bytes = std::string(1, '\0');
  uint32_t add(llvm::StringRef name) {
    uint32_t at = uint32_t(bytes.size());
    bytes += name.str();
    bytes += '\0';
    return at;
  }
};
} // namespace

llvm::Expected<BlobObject> blobObject(llvm::StringRef symbol, uint64_t size,
                                      uint64_t alignment,
                                      const llvm::Triple &triple, bool large) {
  using namespace llvm::ELF;
  uint16_t machine;
  if (triple.getArch() == llvm::Triple::x86_64 && triple.isOSBinFormatELF())
    machine = EM_X86_64;
  else if (triple.getArch() == llvm::Triple::aarch64 &&
           triple.isOSBinFormatELF())
    machine = EM_AARCH64;
  else
    return llvm::createStringError(
        "cannot embed data in an object for " + triple.str() +
        " (only x86-64 and AArch64 ELF objects are written)");
  if (large && machine != EM_X86_64)
    return llvm::createStringError(llvm::formatv(
        "cannot embed {0} bytes in an object for {1}: above 2 GiB only "
        "x86-64's large-data section keeps code-to-data references in range",
        size, triple.str()));
  // Sections: 1 the data, 2 its size, 3 .note.GNU-stack (not executable),
  // 4 .symtab, 5 .strtab, 6 .shstrtab.
  StringTable names, strtab;
  std::string dataSection =
      ((large ? ".lrodata." : ".rodata.") + symbol).str();
  uint32_t dataName = names.add(dataSection);
  uint32_t sizeName = names.add((".rodata." + symbol + "_size").str());
  uint32_t stackName = names.add(".note.GNU-stack");
  uint32_t symtabName = names.add(".symtab");
  uint32_t strtabName = names.add(".strtab");
  uint32_t shstrtabName = names.add(".shstrtab");
  uint32_t symbolName = strtab.add(symbol);
  uint32_t sizeSymbolName = strtab.add((symbol + "_size").str());

  BlobObject object;
  object.dataOffset = llvm::alignTo(sizeof(Elf64_Ehdr), alignment);
  uint64_t tailOffset = object.dataOffset + size;
  std::vector<uint8_t> &tail = object.tail;
  padTo(tail, tailOffset, 8);
  uint64_t sizeOffset = tailOffset + tail.size();
  append(tail, size);
  uint64_t symtabOffset = tailOffset + tail.size();
  append(tail, Elf64_Sym{});
  auto global = [&](uint32_t name, uint16_t section, uint64_t bytes) {
    Elf64_Sym sym{};
    sym.st_name = name;
    sym.setBindingAndType(STB_GLOBAL, STT_OBJECT);
    sym.st_shndx = section;
    sym.st_size = bytes;
    append(tail, sym);
  };
  global(symbolName, 1, size);
  global(sizeSymbolName, 2, 8);
  uint64_t symtabSize = tailOffset + tail.size() - symtabOffset;
  uint64_t strtabOffset = tailOffset + tail.size();
  tail.insert(tail.end(), strtab.bytes.begin(), strtab.bytes.end());
  uint64_t shstrtabOffset = tailOffset + tail.size();
  tail.insert(tail.end(), names.bytes.begin(), names.bytes.end());
  padTo(tail, tailOffset, 8);
  uint64_t sectionsOffset = tailOffset + tail.size();
  auto section = [&](uint32_t name, uint32_t type, uint64_t flags,
                     uint64_t offset, uint64_t bytes, uint64_t align,
                     uint32_t link = 0, uint32_t info = 0,
                     uint64_t entsize = 0) {
    Elf64_Shdr s{};
    s.sh_name = name;
    s.sh_type = type;
    s.sh_flags = flags;
    s.sh_offset = offset;
    s.sh_size = bytes;
    s.sh_addralign = align;
    s.sh_link = link;
    s.sh_info = info;
    s.sh_entsize = entsize;
    append(tail, s);
  };
  section(0, SHT_NULL, 0, 0, 0, 0);
  section(dataName, SHT_PROGBITS, SHF_ALLOC | (large ? SHF_X86_64_LARGE : 0),
          object.dataOffset, size, alignment);
  section(sizeName, SHT_PROGBITS, SHF_ALLOC, sizeOffset, 8, 8);
  section(stackName, SHT_PROGBITS, 0, sizeOffset + 8, 0, 1);
  // sh_info of .symtab: the index of its first global symbol.
  section(symtabName, SHT_SYMTAB, 0, symtabOffset, symtabSize, 8,
          /*link=.strtab*/ 5, /*info=*/1, sizeof(Elf64_Sym));
  section(strtabName, SHT_STRTAB, 0, strtabOffset, strtab.bytes.size(), 1);
  section(shstrtabName, SHT_STRTAB, 0, shstrtabOffset, names.bytes.size(), 1);

  Elf64_Ehdr header{};
  std::memcpy(header.e_ident, ElfMagic, 4);
  header.e_ident[EI_CLASS] = ELFCLASS64;
  header.e_ident[EI_DATA] = ELFDATA2LSB;
  header.e_ident[EI_VERSION] = EV_CURRENT;
  header.e_ident[EI_OSABI] = ELFOSABI_NONE;
  header.e_type = ET_REL;
  header.e_machine = machine;
  header.e_version = EV_CURRENT;
  header.e_shoff = sectionsOffset;
  header.e_ehsize = sizeof(Elf64_Ehdr);
  header.e_shentsize = sizeof(Elf64_Shdr);
  header.e_shnum = 7;
  header.e_shstrndx = 6;
  append(object.head, header);
  object.head.resize(object.dataOffset);
  return object;
}

} // namespace rwkvc
