//===- FuzzReader.cpp - libFuzzer target for one checkpoint reader --------===//
//
// Built once per reader with RWKVC_FUZZ_READER = readPth, readSafeTensors or
// readGGML. Each input is read from memory, described, and reported; every
// tensor byte the reader hands out is touched so that AddressSanitizer sees
// any out-of-bounds view. Errors are the expected outcome for most inputs.
//
//===----------------------------------------------------------------------===//

#include "frontend/Checkpoint.h"
#include "frontend/Model.h"
#include "frontend/Report.h"

#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <cstdlib>

using namespace rwkvc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto buffer = llvm::MemoryBuffer::getMemBufferCopy(
      llvm::StringRef(reinterpret_cast<const char *>(data), size), "fuzz");
  auto ck = RWKVC_FUZZ_READER(std::move(buffer), "fuzz-input");
  if (!ck) {
    llvm::consumeError(ck.takeError());
    return 0;
  }
  [[maybe_unused]] static volatile uint8_t sink;
  uint8_t sum = 0;
  for (const Tensor &t : (*ck)->tensors) {
    // The contract: nbytes is exactly the storage of the shape.
    if (t.nbytes != dtypeStorageBytes(t.dtype, t.numElements()))
      std::abort();
    for (uint64_t i = 0; i < t.nbytes; ++i)
      sum ^= t.data[i];
  }
  auto info = describeModel(**ck);
  if (!info) {
    llvm::consumeError(info.takeError());
    sink = sum;
    return 0;
  }
  sink = sum;
  std::string report;
  llvm::raw_string_ostream os(report);
  printInspectReport(os, **ck, *info);
  return 0;
}
