//===- Report.h - The --inspect report of a checkpoint ----------*- C++ -*-===//
//
// What `rwkvc --inspect MODEL` prints: container format, version,
// hyper-parameters, parameter count, bytes by element type, extra tensors
// and every anomaly.
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_FRONTEND_REPORT_H
#define RWKVC_FRONTEND_REPORT_H

#include "frontend/Model.h"

#include "llvm/Support/raw_ostream.h"

namespace rwkvc {

/// Prints the inspect report of `ckpt` (described by `info`) to `os`.
void printInspectReport(llvm::raw_ostream &os, const Checkpoint &ckpt,
                        const ModelInfo &info);

} // namespace rwkvc

#endif // RWKVC_FRONTEND_REPORT_H
