//===- ErrorOf.h - The error of reading a crafted checkpoint -----*- C++
//-*-===//
//
// Shared by the bad-input tests (in process) and the bounded-input tests
// (in a limited child process).
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_TEST_FRONTEND_ERROROF_H
#define RWKVC_TEST_FRONTEND_ERROROF_H

#include "frontend/Checkpoint.h"
#include "frontend/Model.h"

#include "llvm/Support/MemoryBuffer.h"

#include <string>

namespace rwkvc::testing {

inline llvm::Expected<std::unique_ptr<Checkpoint>>
readBytes(const std::string &bytes, llvm::StringRef name) {
  return readCheckpoint(llvm::MemoryBuffer::getMemBufferCopy(bytes, name),
                        name);
}

/// The error message of reading (and, if that succeeds, describing) `bytes`
/// as the file `name`; "" if both succeed.
inline std::string errorOf(const std::string &bytes, llvm::StringRef name) {
  auto ck = readBytes(bytes, name);
  if (!ck)
    return llvm::toString(ck.takeError());
  auto info = describeModel(**ck);
  if (!info)
    return llvm::toString(info.takeError());
  return "";
}

} // namespace rwkvc::testing

#endif // RWKVC_TEST_FRONTEND_ERROROF_H
