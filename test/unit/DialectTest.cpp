//===- DialectTest.cpp - Unit tests of the rwkv dialect -------------------===//
//
// Builds rwkv IR with the C++ builders (as the importer does) and checks the
// verifier and the symbol checks from C++.
//
//===----------------------------------------------------------------------===//

#include "rwkv/RWKVDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Verifier.h"
#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::rwkv;

namespace {

class DialectTest : public ::testing::Test {
protected:
  DialectTest() {
    context.loadDialect<RWKVDialect, func::FuncDialect>();
    // Keep diagnostics quiet: the tests look at the result only.
    context.getDiagEngine().registerHandler([this](Diagnostic &d) {
      lastError = d.str();
      return success();
    });
  }
  MLIRContext context;
  std::string lastError;
};

TEST_F(DialectTest, BuildsAndVerifiesATokenShift) {
  OpBuilder b(&context);
  Location loc = b.getUnknownLoc();
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());
  auto vecTy = RankedTensorType::get({4}, b.getF32Type());
  auto actTy = RankedTensorType::get({1, 4}, b.getF32Type());
  StateDeclOp::create(b, loc, b.getStringAttr("l0.shift"), TypeAttr::get(vecTy),
                      StateInitAttr::get(&context, StateInit::zero),
                      FlatSymbolRefAttr());
  auto fn = func::FuncOp::create(b, loc, "f",
                                 b.getFunctionType({actTy}, {actTy}));
  Block *body = fn.addEntryBlock();
  b.setInsertionPointToEnd(body);
  Value prev = TokenShiftOp::create(b, loc, actTy, body->getArgument(0),
                                    FlatSymbolRefAttr::get(&context, "l0.shift"));
  func::ReturnOp::create(b, loc, prev);
  EXPECT_TRUE(succeeded(verify(*module))) << lastError;
}

TEST_F(DialectTest, RejectsATokenShiftOfAnUndeclaredSlot) {
  OpBuilder b(&context);
  Location loc = b.getUnknownLoc();
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());
  auto actTy = RankedTensorType::get({1, 4}, b.getF32Type());
  auto fn = func::FuncOp::create(b, loc, "f",
                                 b.getFunctionType({actTy}, {actTy}));
  Block *body = fn.addEntryBlock();
  b.setInsertionPointToEnd(body);
  Value prev = TokenShiftOp::create(b, loc, actTy, body->getArgument(0),
                                    FlatSymbolRefAttr::get(&context, "nope"));
  func::ReturnOp::create(b, loc, prev);
  EXPECT_TRUE(failed(verify(*module)));
  EXPECT_NE(lastError.find("state slot @nope is not declared"),
            std::string::npos)
      << lastError;
}

TEST_F(DialectTest, QuantTypeRoundTrips) {
  auto q = QuantType::get(&context, QuantKind::q5_0);
  std::string s;
  llvm::raw_string_ostream os(s);
  Type(q).print(os);
  EXPECT_EQ(s, "!rwkv.quant<q5_0>");
  Type parsed = parseType(s, &context);
  EXPECT_EQ(parsed, q);
}

TEST_F(DialectTest, ParsesAndRejectsBadLinear) {
  const char *src = R"mlir(
    func.func @f(%x: tensor<1x4xf32>, %w: tensor<8x5xf32>) -> tensor<1x8xf32> {
      %y = rwkv.linear %x, %w : (tensor<1x4xf32>, tensor<8x5xf32>) -> tensor<1x8xf32>
      return %y : tensor<1x8xf32>
    })mlir";
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(src, &context);
  EXPECT_FALSE(module);
  EXPECT_NE(lastError.find("input has 4 channels, the weight takes 5"),
            std::string::npos)
      << lastError;
}

} // namespace
