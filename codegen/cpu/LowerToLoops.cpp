//===- LowerToLoops.cpp - rwkv ops to loops over memrefs ------------------===//
//
// Drives the lowering of rwkv functions to upstream dialects:
//
//   1. read where rwkv-assign-layout placed the weights and state slots;
//   2. for each function @f with rwkv ops, build @f_seq, @f_one, @f_all and
//      @f_batch over memrefs (@f_all: the sequence function with
//      rwkv.last_token as the identity, so the head runs on every token and
//      the result has one row per token; @f_batch: the same rows, but each
//      one token of a sequence of its own, with its own state, whose
//      address the second argument holds), lowering its ops in order with the family lowerings
//      (LowerElementwise, LowerNorm, LowerLinear, LowerWKV), reusing dead
//      activation buffers; an rwkv.layers op of several layers becomes one
//      scf.for over them whose body reads the layer's weights and slots
//      at the first layer's offsets plus the loop index times the stride;
//   3. erase the rwkv functions (the declarations stay: codegen reads the
//      layout from them).
//
//===----------------------------------------------------------------------===//

#include "codegen/BufferLiveness.h"
#include "codegen/ModelLayout.h"
#include "codegen/cpu/Lowering.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::rwkv::cpu {
#define GEN_PASS_DEF_RWKVLOWERTOLOOPSPASS
#include "codegen/cpu/Passes.h.inc"
} // namespace mlir::rwkv::cpu

using namespace mlir;
using namespace mlir::rwkv;
using namespace mlir::rwkv::cpu;

namespace {

/// Above this size the weight image does not stay in the last-level cache
/// from one token to the next (the tiny models' 1-3 MB do; a 0.1B model's
/// 180 MB do not): decode then reads every weight from memory.
constexpr int64_t kCachedWeightBytes = 64ll << 20;

/// The functions built from one rwkv function.
enum class Variant {
  Seq,   // T tokens, the result of rwkv.last_token and what follows it
  One,   // exactly one token
  All,   // T tokens, every op after rwkv.last_token on all T rows
  Trunk, // T tokens up to rwkv.last_token: what @f_seq and @f_all share
  Batch, // B rows, each one token of a sequence with its own state
  Prefix // T tokens, the state only: @f_trunk, its result dropped
};

/// A tensor type with its dynamic dimensions made 1 (one token) or kept; for
/// Variant::All and Variant::Batch the leading dimension of a result is T.
Type memrefFor(Type t, Variant variant, bool result) {
  auto tensor = cast<RankedTensorType>(t);
  SmallVector<int64_t> shape(tensor.getShape());
  if (variant == Variant::One)
    for (int64_t &d : shape)
      if (ShapedType::isDynamic(d))
        d = 1;
  if ((variant == Variant::All || variant == Variant::Batch) && result &&
      !shape.empty())
    shape[0] = ShapedType::kDynamic;
  return MemRefType::get(shape, tensor.getElementType());
}

/// True if every result of `op` holds exactly one token.
bool worksOnOneToken(Operation *op) {
  for (Type t : op->getResultTypes()) {
    auto tensor = dyn_cast<RankedTensorType>(t);
    if (!tensor || tensor.getRank() != 2 || tensor.getDimSize(0) != 1)
      return false;
  }
  return op->getNumResults() > 0;
}

const char *suffixOf(Variant variant) {
  switch (variant) {
  case Variant::Seq:
    return "_seq";
  case Variant::One:
    return "_one";
  case Variant::All:
    return "_all";
  case Variant::Trunk:
    return "_trunk";
  case Variant::Batch:
    return "_batch";
  case Variant::Prefix:
    return "_prefix";
  }
  llvm_unreachable("unknown variant");
}

/// The rwkv.last_token of `fn` if the ops after it read nothing from before
/// it but weights and its input (through it): then @f_seq and @f_all share
/// one @f_trunk, the ops before it, and differ only in the head.
LastTokenOp splitPoint(func::FuncOp fn) {
  auto ops = fn.getBody().front().getOps<LastTokenOp>();
  if (!llvm::hasSingleElement(ops))
    return {};
  LastTokenOp split = *ops.begin();
  for (Operation *op = split->getNextNode(); op; op = op->getNextNode())
    for (Value operand : op->getOperands()) {
      Operation *def = operand.getDefiningOp();
      bool after = def && def->getBlock() == split->getBlock() &&
                   split->isBeforeInBlock(def);
      if (!after && def != split.getOperation() && !isa_and_nonnull<WeightOp>(def))
        return {};
    }
  return split;
}

struct LowerToLoopsPass
    : mlir::rwkv::cpu::impl::RWKVLowerToLoopsPassBase<LowerToLoopsPass> {
  using RWKVLowerToLoopsPassBase::RWKVLowerToLoopsPassBase;
  void runOnOperation() override;

  LogicalResult readLayout(ModuleOp module);
  LogicalResult lowerFunction(func::FuncOp fn, Variant variant,
                              LastTokenOp split);

  llvm::StringMap<WeightPlacement> weightLayout;
  llvm::StringMap<SlotPlacement> stateLayout;
  int64_t weightsBytes = 0;
  int64_t stateFloats = 0;
  QuantDot dot = QuantDot::Generic;
};

LogicalResult LowerToLoopsPass::readLayout(ModuleOp module) {
  llvm::Expected<rwkvc::ModelLayout> layout = rwkvc::readModelLayout(module);
  if (!layout)
    return module.emitError() << "rwkv-lower-to-loops: "
                              << llvm::toString(layout.takeError());
  for (const rwkvc::WeightEntry &w : layout->weights)
    weightLayout[w.name] = {w.offset, w.type};
  for (const rwkvc::SlotEntry &s : layout->slots)
    stateLayout[s.name] = {s.offset, s.type};
  weightsBytes = layout->weightsBytes;
  stateFloats = layout->stateFloats;
  return success();
}

LogicalResult lowerOp(Operation *op, LoweringContext &cx) {
  if (isa<LayerNormOp, GroupNormOp, NormShiftOp>(op))
    return lowerNormOp(op, cx);
  if (isa<LinearOp, LoraOp, DDLerpOp, MixLinearOp, GateLinearOp,
          ReluSqLinearOp, PackedMixLinearOp>(op))
    return lowerLinearOp(op, cx);
  if (isa<WKV4Op, WKV5Op, WKV7Op, WKV7PrepOp, HeadBonusOp>(op))
    return lowerWKVOp(op, cx);
  return lowerElementwiseOp(op, cx);
}

/// Lowers the ops of one function variant in order: a function body, or
/// the body of an rwkv.layers op.
class OpSequenceLowering {
public:
  OpSequenceLowering(LoweringContext &cx, Variant variant)
      : cx(cx), variant(variant) {}

  /// Lowers `op` (any op but the terminators and rwkv.last_token), then
  /// returns the buffers of the operands it read last (per `liveness`) to
  /// the pool. Block arguments are never returned: a function's are not
  /// ours, a layer's live on in the next layer.
  LogicalResult lower(Operation &op, const rwkvc::BufferLiveness &liveness) {
    if (lowered.contains(&op))
      return success(); // with a side-by-side group, earlier
    if (cx.isAbsorbed(&op)) { // by an op before it (LoweringContext::absorb)
      releaseDeadOperands(op, liveness);
      return success();
    }
    if (auto weight = dyn_cast<WeightOp>(op)) {
      cx.map(weight, cx.weightView(weight.getName()));
      return success();
    }
    cx.setOneToken(variant == Variant::One ||
                   (variant == Variant::Seq && worksOnOneToken(&op)));
    if (auto lora = dyn_cast<LoraOp>(op)) {
      SmallVector<Operation *> group = sideBySideGroup(lora);
      if (group.size() > 1)
        return lowerSideBySide(&op, group, liveness);
    }
    if (auto layers = dyn_cast<LayersOp>(op)) {
      if (failed(lowerLayers(layers)))
        return failure();
    } else if (failed(lowerOp(&op, cx))) {
      return failure();
    }
    releaseDeadOperands(op, liveness);
    return success();
  }

private:
  /// An operand whose buffer is also one of the op's results' (an absorbed
  /// add's: the product before it stored the sum into its own buffer)
  /// stays live with that result.
  void releaseDeadOperands(Operation &op,
                           const rwkvc::BufferLiveness &liveness) {
    for (Value operand : op.getOperands())
      if (!isa<BlockArgument>(operand) && liveness.diesAt(operand, &op) &&
          llvm::none_of(op.getResults(), [&](Value r) {
            return cx.lookup(r) == cx.lookup(operand);
          }))
        cx.release(operand);
  }

  /// In decode of a model that streams its weights: `first` with the
  /// rwkv.lora ops after it in its block that read nothing computed after
  /// it (their weights aside). Such products (RWKV-7's decay, value,
  /// in-context rate and gate: 768 x D and D x 768 each at 0.1B, D = 64,
  /// 32, 64 and 128, 884 KB a layer in f16) are each too small to split
  /// across threads, and on one thread they held the others idle; side by
  /// side, each thread streams whole ones from memory.
  SmallVector<Operation *> sideBySideGroup(LoraOp first) {
    SmallVector<Operation *> group = {first};
    if (!cx.oneToken || !cx.streamWeights)
      return group;
    Block *block = first->getBlock();
    auto availableAtFirst = [&](Value v) {
      Operation *def = v.getDefiningOp();
      return !def || def->getBlock() != block || isa<WeightOp>(def) ||
             def->isBeforeInBlock(first);
    };
    for (Operation *op = first->getNextNode(); op; op = op->getNextNode())
      if (isa<LoraOp>(op) && llvm::all_of(op->getOperands(), availableAtFirst))
        group.push_back(op);
    // Largest first: the threads take them one at a time (a dynamic
    // schedule), so the last taken are the smallest.
    auto width = [](Operation *op) {
      return cast<RankedTensorType>(cast<LoraOp>(op).getA().getType())
          .getDimSize(1);
    };
    llvm::stable_sort(group, [&](Operation *a, Operation *b) {
      return width(a) > width(b);
    });
    return group;
  }

  /// Lowers `group` at the place of `at`, the first of them in its block,
  /// one op per iteration of a loop whose iterations the threads share; the
  /// weight views of the ops after `at` are made first, before the loop.
  LogicalResult lowerSideBySide(Operation *at, ArrayRef<Operation *> group,
                                const rwkvc::BufferLiveness &liveness) {
    for (Operation *op : group)
      for (Value operand : op->getOperands())
        if (auto weight = operand.getDefiningOp<WeightOp>();
            weight && weight->getBlock() == at->getBlock() &&
            at->isBeforeInBlock(weight) && !lowered.contains(weight)) {
          cx.map(weight, cx.weightView(weight.getName()));
          lowered.insert(weight);
        }
    LogicalResult status = success();
    cx.sideBySideLoop(group.size(), [&](int64_t i) {
      if (failed(lowerOp(group[i], cx)))
        status = failure();
    });
    if (failed(status))
      return failure();
    for (Operation *op : group) {
      releaseDeadOperands(*op, liveness);
      lowered.insert(op);
    }
    return success();
  }

  /// rwkv.layers: one layer inline; several as a loop over the layers whose
  /// body reads weights and slots shifted by the layer's stride, carrying
  /// the results into the leading inputs through buffers of its own.
  LogicalResult lowerLayers(LayersOp layers) {
    OpBuilder &b = cx.b;
    Location loc = layers.getLoc();
    Block &body = layers.getBodyBlock();
    bool loop = layers.getNumLayers() > 1;
    LayerStrideAttr stride = layers.getStrideAttr();
    if (loop && !stride)
      return layers.emitOpError()
             << "has no layer stride: run rwkv-assign-layout first";

    SmallVector<Value> carried;
    for (auto [i, input] : llvm::enumerate(layers.getInputs())) {
      Value buffer = cx.lookup(input);
      if (loop && i < layers.getNumResults()) {
        Value own = cx.allocActivation(channelsOf(input));
        memref::CopyOp::create(b, loc, buffer, own);
        carried.push_back(own);
        buffer = own;
      }
      cx.map(body.getArgument(i), buffer);
    }

    rwkvc::BufferLiveness liveness(body, /*lastTokenAliases=*/false);
    auto lowerBody = [&]() -> LogicalResult {
      for (Operation &op : body.without_terminator())
        if (failed(lower(op, liveness)))
          return failure();
      return success();
    };
    ValueRange yielded = layers.getYielded();
    if (!loop) {
      if (failed(lowerBody()))
        return failure();
      for (auto [result, value] : llvm::zip(layers.getResults(), yielded)) {
        Value buffer = cx.lookup(value);
        if (isa<BlockArgument>(value)) {
          // A result that is an input passes through a buffer of its own.
          Value own = cx.allocActivation(channelsOf(value));
          memref::CopyOp::create(b, loc, buffer, own);
          buffer = own;
        }
        cx.map(result, buffer);
      }
      return success();
    }

    LogicalResult status = success();
    cx.forLoop(cx.index(0), cx.index(layers.getNumLayers()), 1, [&](Value k) {
      cx.setLayerShift(cx.mulIndex(k, stride.getWeights()),
                       cx.mulIndex(k, stride.getState()));
      status = lowerBody();
      cx.setLayerShift({}, {});
      if (failed(status))
        return;
      for (auto [value, own] : llvm::zip(yielded, carried)) {
        Value buffer = cx.lookup(value);
        if (buffer != own)
          memref::CopyOp::create(b, loc, buffer, own);
      }
      for (Value value : yielded)
        if (!isa<BlockArgument>(value))
          cx.release(value);
    });
    for (auto [result, own] : llvm::zip(layers.getResults(), carried))
      cx.map(result, own);
    return status;
  }

  LoweringContext &cx;
  Variant variant;
  /// Ops lowered ahead of their place (sideBySideGroup and their weights).
  llvm::SmallPtrSet<Operation *, 8> lowered;
};

LogicalResult LowerToLoopsPass::lowerFunction(func::FuncOp fn,
                                              Variant variant,
                                              LastTokenOp split) {
  MLIRContext *ctx = fn.getContext();
  bool oneToken = variant == Variant::One;
  OpBuilder b(fn);
  Location loc = fn.getLoc();

  // Signature: weights, state, one memref per argument, one per result. A
  // batch function takes the addresses of its rows' states instead of one
  // state.
  bool batch = variant == Variant::Batch;
  SmallVector<Type> inputs = {
      MemRefType::get({ShapedType::kDynamic}, b.getI8Type()),
      MemRefType::get({ShapedType::kDynamic},
                      batch ? Type(b.getI64Type()) : b.getF32Type())};
  for (Type t : fn.getArgumentTypes())
    inputs.push_back(memrefFor(t, variant, /*result=*/false));
  if (variant == Variant::Trunk)
    inputs.push_back(memrefFor(split.getInput().getType(), variant,
                               /*result=*/false));
  else if (variant != Variant::Prefix)
    for (Type t : fn.getResultTypes())
      inputs.push_back(memrefFor(t, variant, /*result=*/true));
  std::string name = (fn.getSymName() + suffixOf(variant)).str();
  auto lowered =
      func::FuncOp::create(b, loc, name, b.getFunctionType(inputs, {}));
  if (variant == Variant::Trunk) {
    // One copy of the layer stack for @f_seq and @f_all: never inlined.
    lowered.setPrivate();
    lowered->setAttr("passthrough",
                     b.getArrayAttr({b.getStringAttr("noinline")}));
  } else {
    lowered->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
  }
  Block *entry = lowered.addEntryBlock();
  b.setInsertionPointToStart(entry);

  // T: the first dynamic leading dimension of an argument, else 1.
  Value numTokens;
  for (auto [i, t] : llvm::enumerate(fn.getArgumentTypes())) {
    auto tensor = cast<RankedTensorType>(t);
    if (!oneToken && tensor.getRank() >= 1 && tensor.isDynamicDim(0)) {
      numTokens = memref::DimOp::create(b, loc, entry->getArgument(2 + i), 0);
      break;
    }
  }
  if (!numTokens)
    numTokens = arith::ConstantIndexOp::create(b, loc, 1);

  LoweringContext cx(b, loc, oneToken, entry->getArgument(0),
                     entry->getArgument(1), numTokens, weightLayout,
                     stateLayout);
  for (auto [i, arg] : llvm::enumerate(fn.getArguments()))
    cx.map(arg, entry->getArgument(2 + i));
  cx.streamWeights = streamWeights == "on" ||
                     (streamWeights == "auto" &&
                      weightsBytes > kCachedWeightBytes);
  if (batch)
    cx.setBatchStates(entry->getArgument(1), stateFloats);
  cx.quantDot = dot;

  // @f_prefix: the ops before rwkv.last_token (@f_trunk) into a buffer
  // dropped after: what a sequence call that needs no logits runs (the
  // runtime's chunks before the last), without the head.
  if (variant == Variant::Prefix) {
    SmallVector<Value> args(
        entry->getArguments().take_front(2 + fn.getNumArguments()));
    args.push_back(cx.allocActivation(
        cast<RankedTensorType>(split.getInput().getType()).getDimSize(1)));
    func::CallOp::create(
        b, loc, (fn.getSymName() + suffixOf(Variant::Trunk)).str(),
        TypeRange{}, args);
    cx.deallocAll();
    func::ReturnOp::create(b, loc);
    return success();
  }

  // Last user of each buffer, to return dead buffers to the pool. In @f_all
  // and @f_batch the result of rwkv.last_token aliases its input's buffer.
  bool everyRow = variant == Variant::All || batch;
  rwkvc::BufferLiveness liveness(fn.getBody().front(),
                                 /*lastTokenAliases=*/everyRow);
  OpSequenceLowering ops(cx, variant);
  // A product the function returns (the head's logits) writes into its
  // output argument where that has the type of its buffer (@f_one, @f_all,
  // @f_batch), instead of into a buffer copied there at the end: 2 MB a
  // step of 8 rows of the 0.1B.
  // (A value returned twice is written into the last of its arguments and
  // copied into the others at the return.)
  if (variant != Variant::Trunk)
    for (auto [i, v] :
         llvm::enumerate(fn.getBody().front().getTerminator()->getOperands()))
      cx.setDestination(v, entry->getArgument(2 + fn.getNumArguments() + i));

  // @f_seq and @f_all call @f_trunk for everything before rwkv.last_token
  // (whose input it writes to its last argument), then lower the head.
  bool beforeSplit = split && variant != Variant::One && !batch;
  if (beforeSplit && variant != Variant::Trunk) {
    SmallVector<Value> args(entry->getArguments().take_front(
        2 + fn.getNumArguments()));
    Value x = cx.allocActivation(
        cast<RankedTensorType>(split.getInput().getType()).getDimSize(1));
    args.push_back(x);
    func::CallOp::create(b, loc, (fn.getSymName() + suffixOf(Variant::Trunk)).str(),
                         TypeRange{}, args);
    cx.map(split.getInput(), x);
  }

  for (Operation &op : fn.getBody().front()) {
    if (&op == split.getOperation())
      beforeSplit = false;
    if (variant == Variant::Trunk && !beforeSplit) {
      memref::CopyOp::create(b, loc, cx.lookup(split.getInput()),
                             entry->getArguments().back());
      break;
    }
    if (beforeSplit && variant != Variant::Trunk &&
        !isa<WeightOp>(op))
      continue;
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
        Value out = entry->getArgument(2 + fn.getNumArguments() + i);
        if (cx.lookup(v) != out)
          memref::CopyOp::create(b, loc, cx.lookup(v), out);
      }
      break;
    }
    if (auto last = dyn_cast<LastTokenOp>(op); last && everyRow) {
      // Every row goes on to the head: the result is the input itself, whose
      // buffer stays alive as long as the result does.
      cx.map(last.getResult(), cx.lookup(last.getInput()));
      continue;
    }
    if (failed(ops.lower(op, liveness)))
      return failure();
  }
  cx.deallocAll();
  func::ReturnOp::create(b, loc);
  return success();
}

void LowerToLoopsPass::runOnOperation() {
  ModuleOp module = getOperation();
  std::optional<QuantDot> parsed =
      llvm::StringSwitch<std::optional<QuantDot>>(quantDot)
          .Case("avx512-vnni", QuantDot::AVX512VNNI)
          .Case("avx-vnni", QuantDot::AVXVNNI)
          .Case("avx2", QuantDot::AVX2)
          .Case("generic", QuantDot::Generic)
          .Default(std::nullopt);
  if (!parsed) {
    module.emitError() << "rwkv-lower-to-loops: unknown quant-dot '"
                       << quantDot
                       << "' (avx512-vnni, avx-vnni, avx2 or generic)";
    return signalPassFailure();
  }
  dot = *parsed;
  if (streamWeights != "auto" && streamWeights != "on" &&
      streamWeights != "off") {
    module.emitError() << "rwkv-lower-to-loops: unknown stream-weights '"
                       << streamWeights << "' (auto, on or off)";
    return signalPassFailure();
  }
  if (failed(readLayout(module)))
    return signalPassFailure();

  SmallVector<func::FuncOp> functions;
  for (auto fn : module.getOps<func::FuncOp>())
    if (!fn.isExternal() && llvm::any_of(fn.getArgumentTypes(), [](Type t) {
          return isa<RankedTensorType>(t);
        }))
      functions.push_back(fn);
  for (func::FuncOp fn : functions) {
    LastTokenOp split = splitPoint(fn);
    SmallVector<Variant> variants = {Variant::Seq, Variant::One, Variant::All};
    if (split)
      variants.append({Variant::Trunk, Variant::Prefix});
    if (batchEntry)
      variants.push_back(Variant::Batch);
    for (Variant variant : variants)
      if (failed(lowerFunction(fn, variant, split)))
        return signalPassFailure();
    fn.erase();
  }
}

} // namespace
