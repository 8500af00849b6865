//===- RWKVOps.cpp - rwkv dialect operations ------------------------------===//
//
// Verifiers, folders and symbol checks of the rwkv ops. Shape rules:
// activations are (T, C) f32; a per-channel parameter is a static float
// tensor of C elements; state slots are checked against their declarations.
//
//===----------------------------------------------------------------------===//

#include "rwkv/RWKVDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"

using namespace mlir;
using namespace mlir::rwkv;

//===----------------------------------------------------------------------===//
// Shape helpers
//===----------------------------------------------------------------------===//

static RankedTensorType tensorType(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// Channels (C) of a (T, C) activation; ShapedType::kDynamic if unknown.
static int64_t channelsOf(Value activation) {
  return tensorType(activation).getDimSize(1);
}

/// Checks that `param` is a static tensor with `elements` elements (or, when
/// `alternative` is non-zero, with that many).
static LogicalResult checkPerChannel(Operation *op, Value param,
                                     StringRef what, int64_t elements,
                                     int64_t alternative = 0) {
  RankedTensorType type = tensorType(param);
  if (!type.hasStaticShape())
    return op->emitOpError() << what << " must have a static shape";
  if (ShapedType::isDynamic(elements))
    return success();
  int64_t n = type.getNumElements();
  if (n == elements || (alternative && n == alternative))
    return success();
  InFlightDiagnostic diag = op->emitOpError()
                            << what << " must have " << elements;
  if (alternative)
    diag << " or " << alternative;
  return diag << " elements, found " << n;
}

/// Checks that two activations have compatible (T, C) shapes.
static LogicalResult checkSameActivation(Operation *op, Value a, Value b,
                                         StringRef what) {
  if (failed(verifyCompatibleShape(a.getType(), b.getType())))
    return op->emitOpError() << what << " must have the shape of "
                             << "the input, found " << a.getType() << " and "
                             << b.getType();
  return success();
}

/// Checks that `symbol` names a state slot of `type` in the nearest symbol
/// table.
static LogicalResult checkStateSlot(Operation *op,
                                    SymbolTableCollection &symbolTable,
                                    FlatSymbolRefAttr symbol,
                                    ArrayRef<int64_t> shape) {
  auto decl = symbolTable.lookupNearestSymbolFrom<StateDeclOp>(op, symbol);
  if (!decl)
    return op->emitOpError() << "state slot " << symbol
                             << " is not declared by an rwkv.state_decl";
  if (decl.getTensorType().getShape() != shape) {
    std::string expected;
    llvm::raw_string_ostream os(expected);
    llvm::interleave(shape, os, "x");
    return op->emitOpError()
           << "state slot " << symbol << " must be tensor<" << expected
           << "xf32>, declared as " << decl.getType();
  }
  return success();
}

/// Heads attribute must divide the channels.
static LogicalResult checkHeads(Operation *op, int64_t heads, int64_t c) {
  if (heads <= 0)
    return op->emitOpError() << "heads must be positive, found " << heads;
  if (!ShapedType::isDynamic(c) && c % heads != 0)
    return op->emitOpError() << "heads (" << heads
                             << ") must divide the channels (" << c << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// Declarations
//===----------------------------------------------------------------------===//

LogicalResult WeightDeclOp::verify() {
  if (getDerive().has_value() != bool(getSourceAttr()))
    return emitOpError() << "a derived weight needs both a kind and a source";
  if (getDerive() && !getTensorType().getElementType().isF32())
    return emitOpError() << "a derived weight must be f32";
  if (getParts()) {
    if (getDerive())
      return emitOpError() << "a weight is either derived or packed";
    if (getParts()->empty() || getTensorType().getRank() != 2 ||
        getTensorType().getDimSize(0) % int64_t(getParts()->size()) != 0)
      return emitOpError() << "a packed weight stacks one or more matrices "
                              "of equal shape";
  }
  return success();
}

LogicalResult
WeightDeclOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  if (!getSourceAttr())
    return success();
  auto source =
      symbolTable.lookupNearestSymbolFrom<WeightDeclOp>(*this, getSourceAttr());
  if (!source)
    return emitOpError() << "source " << getSourceAttr()
                         << " is not declared by an rwkv.weight_decl";
  if (source.getTensorType().getShape() != getTensorType().getShape())
    return emitOpError() << "source " << getSourceAttr() << " has type "
                         << source.getType() << ", the derived weight is "
                         << getType();
  return success();
}

LogicalResult StateDeclOp::verify() {
  if (!getTensorType().hasStaticShape())
    return emitOpError() << "state slot must have a static shape";
  bool hasWeight = getInitWeight().has_value();
  if ((getInit() == StateInit::weight) != hasWeight)
    return emitOpError()
           << "a weight initializer is given exactly when init is 'weight'";
  return success();
}

LogicalResult
StateDeclOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  if (!getInitWeight())
    return success();
  auto decl = symbolTable.lookupNearestSymbolFrom<WeightDeclOp>(
      *this, getInitWeightAttr());
  if (!decl)
    return emitOpError() << "initial value " << getInitWeightAttr()
                         << " is not declared by an rwkv.weight_decl";
  if (decl.getTensorType().getShape() != getTensorType().getShape())
    return emitOpError() << "initial value " << getInitWeightAttr()
                         << " has type " << decl.getType()
                         << ", the slot is " << getType();
  return success();
}

//===----------------------------------------------------------------------===//
// Weight access and embedding
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto decl =
      symbolTable.lookupNearestSymbolFrom<WeightDeclOp>(*this, getNameAttr());
  if (!decl)
    return emitOpError() << "weight " << getNameAttr()
                         << " is not declared by an rwkv.weight_decl";
  if (decl.getType() != getType())
    return emitOpError() << "weight " << getNameAttr() << " is declared as "
                         << decl.getType() << ", used as " << getType();
  return success();
}

LogicalResult EmbeddingOp::verify() {
  RankedTensorType table = tensorType(getTable());
  if (table.getRank() != 2)
    return emitOpError() << "table must be (vocabulary, channels)";
  RankedTensorType result = getType();
  if (!ShapedType::isDynamic(result.getDimSize(1)) &&
      result.getDimSize(1) != table.getDimSize(1))
    return emitOpError() << "result has " << result.getDimSize(1)
                         << " channels, the table " << table.getDimSize(1);
  int64_t tokens = tensorType(getTokens()).getDimSize(0);
  if (!ShapedType::isDynamic(tokens) &&
      !ShapedType::isDynamic(result.getDimSize(0)) &&
      tokens != result.getDimSize(0))
    return emitOpError() << "result has " << result.getDimSize(0)
                         << " rows for " << tokens << " tokens";
  return success();
}

LogicalResult LastTokenOp::verify() {
  RankedTensorType in = tensorType(getInput()), out = getType();
  if (out.getDimSize(0) != 1)
    return emitOpError() << "result must hold one token";
  if (in.getDimSize(1) != out.getDimSize(1))
    return emitOpError() << "result must keep the input's channels";
  return success();
}

OpFoldResult LastTokenOp::fold(FoldAdaptor) {
  // last_token(x : tensor<1xC>) => x
  if (getInput().getType() == getType())
    return getInput();
  return {};
}

//===----------------------------------------------------------------------===//
// Layer structure
//===----------------------------------------------------------------------===//

std::string mlir::rwkv::renameLayerSymbol(StringRef name, int64_t from,
                                          int64_t to) {
  auto [group, rest] = name.split('.');
  auto [number, tail] = rest.split('.');
  int64_t layer;
  if ((group != "blocks" && group != "state") || tail.empty() ||
      number.getAsInteger(10, layer) || layer != from ||
      std::to_string(layer) != number)
    return {};
  return (group + "." + std::to_string(to) + "." + tail).str();
}

LogicalResult LayersOp::verify() {
  if (getFirst() < 0 || getLast() < getFirst())
    return emitOpError() << "must run layers first to last with 0 <= first "
                            "<= last, not "
                         << getFirst() << " to " << getLast();
  Block &body = getBodyBlock();
  if (body.getArgumentTypes() != getInputs().getTypes())
    return emitOpError() << "body arguments must have the types of the inputs";
  if (TypeRange(getYielded().getTypes()) != getResultTypes())
    return emitOpError() << "body must yield the types of the results";
  if (getNumLayers() > 1 &&
      (getNumResults() > getInputs().size() ||
       TypeRange(getResultTypes()) !=
           getInputs().take_front(getNumResults()).getTypes()))
    return emitOpError() << "of several layers must have results of the "
                            "types of its leading inputs (a layer's results "
                            "are the next layer's inputs)";
  return success();
}

//===----------------------------------------------------------------------===//
// Element-wise ops (shared verifier shape)
//===----------------------------------------------------------------------===//

/// The result of an element-wise op has its first operand's type.
static LogicalResult checkResultLikeInput(Operation *op) {
  if (op->getResult(0).getType() != op->getOperand(0).getType())
    return op->emitOpError() << "result type " << op->getResult(0).getType()
                             << " must match the input type "
                             << op->getOperand(0).getType();
  return success();
}

/// The parameters of a normalization over `groups` groups of channels.
static LogicalResult checkNorm(Operation *op, Value input, Value weight,
                               Value bias, int64_t groups, APFloat epsilon) {
  int64_t c = channelsOf(input);
  if (failed(checkHeads(op, groups, c)) ||
      failed(checkPerChannel(op, weight, "weight", c)) ||
      failed(checkPerChannel(op, bias, "bias", c)))
    return failure();
  if (epsilon.convertToFloat() <= 0)
    return op->emitOpError() << "epsilon must be positive";
  return success();
}

LogicalResult LayerNormOp::verify() {
  if (failed(checkResultLikeInput(*this)))
    return failure();
  return checkNorm(*this, getInput(), getWeight(), getBias(), 1, getEpsilon());
}

LogicalResult GroupNormOp::verify() {
  if (failed(checkResultLikeInput(*this)))
    return failure();
  return checkNorm(*this, getInput(), getWeight(), getBias(), getGroups(),
                   getEpsilon());
}

LogicalResult LerpOp::verify() {
  if (failed(checkResultLikeInput(*this)) ||
      failed(checkSameActivation(*this, getA(), getB(), "b")))
    return failure();
  RankedTensorType t = tensorType(getT());
  if (t.getRank() == 2 && isa<Float32Type>(t.getElementType()) &&
      !t.hasStaticShape())
    return checkSameActivation(*this, getA(), getT(), "t");
  if (t.getRank() == 2 && t.getDimSize(0) != 1 && t.hasStaticShape())
    return checkSameActivation(*this, getA(), getT(), "t");
  return checkPerChannel(*this, getT(), "t", channelsOf(getA()));
}

OpFoldResult LerpOp::fold(FoldAdaptor) {
  // lerp(a, a, t) => a
  if (getA() == getB())
    return getA();
  return {};
}

/// Binary ops: rhs is an activation like lhs or a per-channel parameter.
static LogicalResult verifyBinary(Operation *op) {
  if (failed(checkResultLikeInput(op)))
    return failure();
  Value lhs = op->getOperand(0), rhs = op->getOperand(1);
  RankedTensorType r = tensorType(rhs);
  if (r.getRank() == 2 && isa<Float32Type>(r.getElementType()) &&
      (!r.hasStaticShape() || r.getDimSize(0) != 1 ||
       tensorType(lhs).getDimSize(0) == 1) &&
      succeeded(verifyCompatibleShape(lhs.getType(), rhs.getType())))
    return success();
  return checkPerChannel(op, rhs, "rhs", channelsOf(lhs));
}

LogicalResult AddOp::verify() { return verifyBinary(*this); }
LogicalResult MulOp::verify() { return verifyBinary(*this); }
LogicalResult SigmoidOp::verify() { return checkResultLikeInput(*this); }
LogicalResult SiluOp::verify() { return checkResultLikeInput(*this); }
LogicalResult ReluSqOp::verify() { return checkResultLikeInput(*this); }
LogicalResult TanhOp::verify() { return checkResultLikeInput(*this); }

LogicalResult DecayOp::verify() {
  if (tensorType(getInput()).getShape() != getType().getShape())
    return emitOpError() << "result must have the input's shape";
  return success();
}

//===----------------------------------------------------------------------===//
// Mixing and linear maps
//===----------------------------------------------------------------------===//

LogicalResult TokenShiftOp::verify() {
  if (getType() != getInput().getType())
    return emitOpError() << "result type must match the input type";
  if (ShapedType::isDynamic(channelsOf(getInput())))
    return emitOpError() << "channels must be static";
  return success();
}

LogicalResult
TokenShiftOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return checkStateSlot(*this, symbolTable, getStateAttr(),
                        {channelsOf(getInput())});
}

LogicalResult DDLerpOp::verify() {
  int64_t c = channelsOf(getInput());
  if (failed(checkSameActivation(*this, getInput(), getPrev(), "prev")) ||
      failed(checkPerChannel(*this, getMaaX(), "maa_x", c)))
    return failure();
  size_t f = getMaa().size();
  if (f == 0 || getResults().size() != f)
    return emitOpError() << "needs one result per mix, found " << f
                         << " mixes and " << getResults().size()
                         << " results";
  for (Value m : getMaa())
    if (failed(checkPerChannel(*this, m, "maa", c)))
      return failure();
  for (Value r : getResults())
    if (r.getType() != getInput().getType())
      return emitOpError() << "results must have the input's type";
  RankedTensorType w1 = tensorType(getW1()), w2 = tensorType(getW2());
  if (w1.getRank() != 2 || w2.getRank() != 3)
    return emitOpError() << "w1 must be (C, F*D) and w2 (F, D, C)";
  int64_t d = w2.getDimSize(1);
  if (w1.getDimSize(0) != c || w1.getDimSize(1) != int64_t(f) * d ||
      w2.getDimSize(0) != int64_t(f) || w2.getDimSize(2) != c)
    return emitOpError() << "w1 " << w1 << " and w2 " << w2
                         << " do not fit " << f << " mixes of " << c
                         << " channels";
  return success();
}

/// (in, out) of a matrix used as `layout`.
static std::pair<int64_t, int64_t> inOut(RankedTensorType w,
                                         WeightLayout layout) {
  if (layout == WeightLayout::out_in)
    return {w.getDimSize(1), w.getDimSize(0)};
  return {w.getDimSize(0), w.getDimSize(1)};
}

LogicalResult LinearOp::verify() {
  RankedTensorType w = tensorType(getWeight());
  if (w.getRank() != 2)
    return emitOpError() << "weight must be a matrix, found " << w;
  auto [in, out] = inOut(w, getLayout());
  if (channelsOf(getInput()) != in)
    return emitOpError() << "input has " << channelsOf(getInput())
                         << " channels, the weight takes " << in;
  if (getType().getDimSize(1) != out)
    return emitOpError() << "result has " << getType().getDimSize(1)
                         << " channels, the weight gives " << out;
  if (failed(verifyCompatibleDims(
          {tensorType(getInput()).getDimSize(0), getType().getDimSize(0)})))
    return emitOpError() << "result must have one row per input token";
  if (auto q = dyn_cast<QuantType>(w.getElementType()))
    if (w.getDimSize(1) % 32 != 0)
      return emitOpError() << "a quantized weight's rows must be whole "
                              "blocks of 32, found "
                           << w.getDimSize(1);
  return success();
}

LogicalResult LoraOp::verify() {
  RankedTensorType a = tensorType(getA()), b = tensorType(getB());
  if (a.getRank() != 2 || b.getRank() != 2)
    return emitOpError() << "a and b must be matrices";
  if (a.getDimSize(0) != channelsOf(getInput()))
    return emitOpError() << "a takes " << a.getDimSize(0)
                         << " channels, the input has "
                         << channelsOf(getInput());
  if (a.getDimSize(1) != b.getDimSize(0))
    return emitOpError() << "a " << a << " and b " << b
                         << " disagree on the rank";
  if (getType().getDimSize(1) != b.getDimSize(1))
    return emitOpError() << "result has " << getType().getDimSize(1)
                         << " channels, b gives " << b.getDimSize(1);
  if (getBias() &&
      failed(checkPerChannel(*this, getBias(), "bias", b.getDimSize(1))))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// Recurrences
//===----------------------------------------------------------------------===//

LogicalResult WKV4Op::verify() {
  int64_t c = channelsOf(getK());
  if (ShapedType::isDynamic(c))
    return emitOpError() << "channels must be static";
  if (failed(checkSameActivation(*this, getK(), getV(), "v")) ||
      failed(checkSameActivation(*this, getK(), getResult(), "result")) ||
      failed(checkPerChannel(*this, getW(), "w", c)) ||
      failed(checkPerChannel(*this, getU(), "u", c)))
    return failure();
  return success();
}

LogicalResult WKV4Op::verifySymbolUses(SymbolTableCollection &symbolTable) {
  int64_t c = channelsOf(getK());
  for (FlatSymbolRefAttr slot : {getAaAttr(), getBbAttr(), getPpAttr()})
    if (failed(checkStateSlot(*this, symbolTable, slot, {c})))
      return failure();
  return success();
}

LogicalResult WKV5Op::verify() {
  int64_t c = channelsOf(getR()), h = getHeads();
  if (ShapedType::isDynamic(c))
    return emitOpError() << "channels must be static";
  if (failed(checkHeads(*this, h, c)))
    return failure();
  for (auto [v, what] : {std::pair(getK(), "k"), std::pair(getV(), "v"),
                         std::pair(getResult(), "result")})
    if (failed(checkSameActivation(*this, getR(), v, what)))
      return failure();
  RankedTensorType w = tensorType(getW());
  bool perToken = w.getRank() == 2 && isa<Float32Type>(w.getElementType()) &&
                  (w.isDynamicDim(0) || w.getDimSize(0) != 1 ||
                   tensorType(getR()).getDimSize(0) == 1) &&
                  w.getDimSize(1) == c;
  if (perToken) {
    if (failed(checkSameActivation(*this, getR(), getW(), "w")))
      return failure();
  } else if (failed(checkPerChannel(*this, getW(), "w", c, h))) {
    return failure();
  }
  return checkPerChannel(*this, getU(), "u", c, h);
}

LogicalResult WKV5Op::verifySymbolUses(SymbolTableCollection &symbolTable) {
  int64_t h = getHeads(), n = channelsOf(getR()) / h;
  return checkStateSlot(*this, symbolTable, getStateAttr(), {h, n, n});
}

LogicalResult WKV7Op::verify() {
  int64_t c = channelsOf(getR()), h = getHeads();
  if (ShapedType::isDynamic(c))
    return emitOpError() << "channels must be static";
  if (failed(checkHeads(*this, h, c)))
    return failure();
  for (Value v : {getW(), getK(), getV(), getA(), getB(), getResult()})
    if (failed(checkSameActivation(*this, getR(), v, "every operand")))
      return failure();
  return success();
}

LogicalResult WKV7Op::verifySymbolUses(SymbolTableCollection &symbolTable) {
  int64_t h = getHeads(), n = channelsOf(getR()) / h;
  return checkStateSlot(*this, symbolTable, getStateAttr(), {h, n, n});
}

LogicalResult WKV7PrepOp::verify() {
  int64_t c = channelsOf(getK());
  if (failed(checkHeads(*this, getHeads(), c)) ||
      failed(checkSameActivation(*this, getK(), getA(), "a")) ||
      failed(checkPerChannel(*this, getKK(), "k_k", c)) ||
      failed(checkPerChannel(*this, getKA(), "k_a", c)))
    return failure();
  for (Value r : getResults())
    if (r.getType() != getK().getType())
      return emitOpError() << "results must have the type of k";
  return success();
}

LogicalResult HeadBonusOp::verify() {
  int64_t c = channelsOf(getR());
  if (failed(checkHeads(*this, getHeads(), c)) ||
      failed(checkSameActivation(*this, getR(), getK(), "k")) ||
      failed(checkSameActivation(*this, getR(), getV(), "v")) ||
      failed(checkSameActivation(*this, getR(), getResult(), "result")) ||
      failed(checkPerChannel(*this, getRK(), "r_k", c)))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// Fused ops
//===----------------------------------------------------------------------===//

/// A fused linear's weight (out, in) against its input and result.
static LogicalResult checkFusedLinear(Operation *op, Value input, Value w,
                                      Value result) {
  RankedTensorType wt = tensorType(w);
  if (wt.getRank() != 2)
    return op->emitOpError() << "weight must be a matrix, found " << wt;
  if (channelsOf(input) != wt.getDimSize(1))
    return op->emitOpError() << "input has " << channelsOf(input)
                             << " channels, the weight takes "
                             << wt.getDimSize(1);
  if (channelsOf(result) != wt.getDimSize(0))
    return op->emitOpError() << "result has " << channelsOf(result)
                             << " channels, the weight gives "
                             << wt.getDimSize(0);
  if (failed(verifyCompatibleDims({tensorType(input).getDimSize(0),
                                   tensorType(result).getDimSize(0)})))
    return op->emitOpError() << "result must have one row per input token";
  return success();
}

LogicalResult MixLinearOp::verify() {
  if (failed(checkSameActivation(*this, getA(), getB(), "b")) ||
      failed(checkFusedLinear(*this, getA(), getWeight(), getResult())))
    return failure();
  RankedTensorType t = tensorType(getT());
  if (t.getRank() == 2 && t.getDimSize(0) != 1)
    return checkSameActivation(*this, getA(), getT(), "t");
  return checkPerChannel(*this, getT(), "t", channelsOf(getA()));
}

LogicalResult GateLinearOp::verify() {
  if (failed(checkSameActivation(*this, getG(), getY(), "y")))
    return failure();
  return checkFusedLinear(*this, getY(), getWeight(), getResult());
}

LogicalResult ReluSqLinearOp::verify() {
  return checkFusedLinear(*this, getInput(), getWeight(), getResult());
}

LogicalResult PackedMixLinearOp::verify() {
  size_t n = getMixes().size();
  if (n == 0 || getResults().size() != n)
    return emitOpError() << "needs one result per mix, found " << n
                         << " mixes and " << getResults().size()
                         << " results";
  if (failed(checkSameActivation(*this, getA(), getB(), "b")))
    return failure();
  RankedTensorType w = tensorType(getWeight());
  int64_t c = channelsOf(getA());
  if (w.getRank() != 2 || w.getDimSize(1) != c ||
      w.getDimSize(0) % int64_t(n) != 0)
    return emitOpError() << "weight " << w << " does not stack " << n
                         << " matrices of " << c << " inputs";
  int64_t out = w.getDimSize(0) / int64_t(n);
  for (Value t : getMixes())
    if (failed(checkPerChannel(*this, t, "mix", c)))
      return failure();
  for (Value r : getResults()) {
    if (channelsOf(r) != out)
      return emitOpError() << "each result must have " << out << " channels";
    if (failed(verifyCompatibleDims({tensorType(getA()).getDimSize(0),
                                     tensorType(r).getDimSize(0)})))
      return emitOpError() << "results must have one row per input token";
  }
  return success();
}

LogicalResult NormShiftOp::verify() {
  int64_t c = channelsOf(getInput());
  if (ShapedType::isDynamic(c))
    return emitOpError() << "channels must be static";
  for (Value r : {getNormalized(), getPrev()})
    if (r.getType() != getInput().getType())
      return emitOpError() << "results must have the input's type";
  return checkNorm(*this, getInput(), getWeight(), getBias(), 1, getEpsilon());
}

LogicalResult NormShiftOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return checkStateSlot(*this, symbolTable, getStateAttr(),
                        {channelsOf(getInput())});
}

#define GET_OP_CLASSES
#include "rwkv/RWKVOps.cpp.inc"
