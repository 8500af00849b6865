//===- rwkv-opt.cpp - Runs rwkv dialect passes on .mlir files -------------===//
//
// The dialect's mlir-opt: registers the rwkv dialect and its passes with the
// upstream dialects and passes that the pipelines use.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Passes.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"
#include "rwkv/RWKVDialect.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::rwkv::registerRWKVPasses();
  mlir::rwkv::registerRWKVPipelines();
  mlir::rwkv::cpu::registerRWKVCPUPasses();
  mlir::rwkv::cpu::registerCPUPipelines();

  mlir::DialectRegistry registry;
  registry.insert<mlir::rwkv::RWKVDialect>();
  mlir::registerAllDialects(registry);

  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "rwkv dialect optimizer\n", registry));
}
