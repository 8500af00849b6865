//===- LoweringContext.cpp - Helpers for lowering rwkv ops to loops -------===//
//
// Buffers (weight views, state slots, activations) and the small vocabulary
// of loops and vector math that every op family's lowering is written in.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Lowering.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinTypes.h"

using namespace mlir;
using namespace mlir::rwkv;
using namespace mlir::rwkv::cpu;

LoweringContext::LoweringContext(
    OpBuilder &builder, Location loc, bool oneToken, Value weights,
    Value state, Value numTokens,
    const llvm::StringMap<WeightPlacement> &weightLayout,
    const llvm::StringMap<SlotPlacement> &stateLayout)
    : b(builder), loc(loc), oneToken(oneToken), weights(weights),
      state(state), T(numTokens), allocAnchor(numTokens.getDefiningOp()),
      weightLayout(weightLayout), stateLayout(stateLayout) {
  assert(allocAnchor && "T must be computed in the function's entry block");
}

//===----------------------------------------------------------------------===//
// Values
//===----------------------------------------------------------------------===//

Value LoweringContext::lookup(Value v) const {
  if (Value buffer = values.lookup(v))
    return buffer;
  if (auto w = v.getDefiningOp<WeightOp>())
    return const_cast<LoweringContext *>(this)->weightView(w.getName());
  return {};
}

MemRefType LoweringContext::activationType(int64_t channels,
                                           Type elementType) {
  return MemRefType::get({oneToken ? 1 : ShapedType::kDynamic, channels},
                         elementType ? elementType : b.getF32Type());
}

Value LoweringContext::allocResult(Value result, int64_t channels) {
  Value dest = destinations.lookup(result);
  if (dest && dest.getType() == activationType(channels))
    return dest;
  return allocActivation(channels);
}

Value LoweringContext::allocActivation(int64_t channels, Type elementType) {
  MemRefType type = activationType(channels, elementType);
  auto &free = pool[type];
  if (!free.empty())
    return free.pop_back_val();
  // Every buffer is allocated once, in the function's entry block: op
  // lowerings may run inside a loop (a stack of layers).
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointAfter(allocAnchor);
  if (oneToken)
    return memref::AllocaOp::create(b, loc, type, b.getI64IntegerAttr(64));
  Value buffer = memref::AllocOp::create(b, loc, type, ValueRange{T},
                                         b.getI64IntegerAttr(64));
  heapBuffers.push_back(buffer);
  return buffer;
}

Value LoweringContext::allocScratch(ArrayRef<int64_t> shape) {
  auto type = MemRefType::get(shape, b.getF32Type());
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointAfter(allocAnchor);
  return memref::AllocaOp::create(b, loc, type, b.getI64IntegerAttr(64));
}

Value LoweringContext::allocScratch(ArrayRef<int64_t> shape,
                                    Type elementType) {
  auto type = MemRefType::get(shape, elementType);
  auto &free = pool[type];
  if (!free.empty())
    return free.pop_back_val();
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointAfter(allocAnchor);
  return memref::AllocaOp::create(b, loc, type, b.getI64IntegerAttr(64));
}

void LoweringContext::release(Value v) {
  Value buffer = values.lookup(v);
  if (!buffer)
    return;
  Operation *def = buffer.getDefiningOp();
  if (!def || !isa<memref::AllocOp, memref::AllocaOp>(def))
    return; // a view or an argument: not ours
  releaseScratch(buffer);
  values.erase(v);
}

void LoweringContext::releaseScratch(Value buffer) {
  if (sideBySide)
    releasedSideBySide.push_back(buffer);
  else
    pool[buffer.getType()].push_back(buffer);
}

void LoweringContext::deallocAll() {
  for (Value buffer : heapBuffers)
    memref::DeallocOp::create(b, loc, buffer);
  heapBuffers.clear();
}

void LoweringContext::setLayerShift(Value weightBytes, Value stateFloats) {
  weightShift = weightBytes;
  stateShift = stateFloats;
}

Value LoweringContext::shifted(int64_t offset, Value shift) {
  if (!shift)
    return index(offset);
  return b.createOrFold<arith::AddIOp>(loc, shift, index(offset));
}

Value LoweringContext::weightView(StringRef name) {
  auto it = weightLayout.find(name);
  assert(it != weightLayout.end() && "weight without a placement");
  const WeightPlacement &p = it->second;
  if (auto quant = dyn_cast<QuantType>(p.type.getElementType())) {
    // (N, K) in blocks of 32: N rows of K / 32 * block bytes.
    ArrayRef<int64_t> shape = p.type.getShape();
    auto type = MemRefType::get(
        {shape[0], shape[1] / kQuantBlockElements *
                       getQuantBlockBytes(quant.getKind())},
        b.getI8Type());
    Value view = memref::ViewOp::create(
        b, loc, type, weights, shifted(p.offset, weightShift), ValueRange{});
    quantKinds[view] = quant.getKind();
    return view;
  }
  auto type = MemRefType::get(p.type.getShape(), p.type.getElementType());
  return memref::ViewOp::create(b, loc, type, weights,
                                shifted(p.offset, weightShift), ValueRange{});
}

std::optional<QuantKind> LoweringContext::quantKind(Value view) const {
  auto it = quantKinds.find(view);
  if (it == quantKinds.end())
    return std::nullopt;
  return it->second;
}

Value LoweringContext::weightFlat(StringRef name) {
  auto it = weightLayout.find(name);
  assert(it != weightLayout.end() && "weight without a placement");
  const WeightPlacement &p = it->second;
  auto type =
      MemRefType::get({p.type.getNumElements()}, p.type.getElementType());
  return memref::ViewOp::create(b, loc, type, weights,
                                shifted(p.offset, weightShift), ValueRange{});
}

Value LoweringContext::paramFlat(Value v) {
  if (auto w = v.getDefiningOp<WeightOp>())
    return weightFlat(w.getName());
  // A computed per-channel value (e.g. a decay of a weight): collapse its
  // buffer to 1-D.
  Value buffer = lookup(v);
  auto type = cast<MemRefType>(buffer.getType());
  if (type.getRank() == 1)
    return buffer;
  SmallVector<ReassociationIndices> all(1);
  for (int64_t i = 0; i < type.getRank(); ++i)
    all[0].push_back(i);
  return memref::CollapseShapeOp::create(b, loc, buffer, all);
}

void LoweringContext::setBatchStates(Value states, int64_t stateFloats) {
  batchStates = states;
  batchStateFloats = stateFloats;
}

Value LoweringContext::rowState(Value row) {
  // The address states[row] as a memref<?xf32>: its LLVM descriptor
  // {allocated, aligned, offset 0, [size], [stride 1]}, built in the LLVM
  // dialect and cast to the memref type, which rwkv-loops-to-llvm's
  // conversions turn back into the same struct (reconciled casts).
  MLIRContext *ctx = b.getContext();
  auto ptr = LLVM::LLVMPointerType::get(ctx);
  auto i64 = b.getI64Type();
  auto sizes = LLVM::LLVMArrayType::get(i64, 1);
  auto descType =
      LLVM::LLVMStructType::getLiteral(ctx, {ptr, ptr, i64, sizes, sizes});
  Value address = memref::LoadOp::create(b, loc, batchStates, row);
  Value base = LLVM::IntToPtrOp::create(b, loc, ptr, address);
  auto c64 = [&](int64_t v) {
    return LLVM::ConstantOp::create(b, loc, i64, b.getI64IntegerAttr(v));
  };
  Value desc = LLVM::PoisonOp::create(b, loc, descType);
  desc = LLVM::InsertValueOp::create(b, loc, desc, base, ArrayRef<int64_t>{0});
  desc = LLVM::InsertValueOp::create(b, loc, desc, base, ArrayRef<int64_t>{1});
  desc =
      LLVM::InsertValueOp::create(b, loc, desc, c64(0), ArrayRef<int64_t>{2});
  desc = LLVM::InsertValueOp::create(b, loc, desc, c64(batchStateFloats),
                                     ArrayRef<int64_t>{3, 0});
  desc = LLVM::InsertValueOp::create(b, loc, desc, c64(1),
                                     ArrayRef<int64_t>{4, 0});
  auto type = MemRefType::get({ShapedType::kDynamic}, b.getF32Type());
  return UnrealizedConversionCastOp::create(b, loc, type, desc).getResult(0);
}

Value LoweringContext::stateSlot(FlatSymbolRefAttr slot, Value row) {
  auto it = stateLayout.find(slot.getValue());
  assert(it != stateLayout.end() && "state slot without a placement");
  assert((!batch() || row) && "a batch function reads the state of a row");
  Value source = batch() ? rowState(row) : state;
  const SlotPlacement &p = it->second;
  ArrayRef<int64_t> shape = p.type.getShape();
  SmallVector<int64_t> strides(shape.size(), 1);
  for (int64_t i = int64_t(shape.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  if (!stateShift) {
    auto type = MemRefType::get(
        shape, b.getF32Type(),
        StridedLayoutAttr::get(b.getContext(), p.offset, strides));
    return memref::ReinterpretCastOp::create(b, loc, type, source, p.offset,
                                             shape, strides);
  }
  // In a stack of layers: the slot of this iteration's layer.
  auto type = MemRefType::get(
      shape, b.getF32Type(),
      StridedLayoutAttr::get(b.getContext(), ShapedType::kDynamic, strides));
  SmallVector<OpFoldResult> sizes, steps;
  for (auto [size, stride] : llvm::zip(shape, strides)) {
    sizes.push_back(b.getIndexAttr(size));
    steps.push_back(b.getIndexAttr(stride));
  }
  return memref::ReinterpretCastOp::create(
      b, loc, type, source, OpFoldResult(shifted(p.offset, stateShift)), sizes,
      steps);
}

//===----------------------------------------------------------------------===//
// Code building helpers
//===----------------------------------------------------------------------===//

int64_t LoweringContext::vectorWidth(int64_t n) {
  for (int64_t w : {16, 8, 4, 2})
    if (n % w == 0)
      return w;
  return 1;
}

Value LoweringContext::index(int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

Value LoweringContext::addIndex(Value a, int64_t c) {
  if (c == 0)
    return a;
  return b.createOrFold<arith::AddIOp>(loc, a, index(c));
}

Value LoweringContext::mulIndex(Value a, int64_t c) {
  return b.createOrFold<arith::MulIOp>(loc, a, index(c));
}

Value LoweringContext::f32(float v) {
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
}

Value LoweringContext::splat(float v, int64_t width) {
  auto type = VectorType::get({width}, b.getF32Type());
  return arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(type, b.getF32FloatAttr(v)));
}

Value LoweringContext::splat(Value scalar, int64_t width) {
  auto type = VectorType::get({width}, b.getF32Type());
  return vector::BroadcastOp::create(b, loc, type, scalar);
}

void LoweringContext::forLoop(Value lb, Value ub, int64_t step,
                              function_ref<void(Value)> body) {
  auto loop = scf::ForOp::create(b, loc, lb, ub, index(step));
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(loop.getBody()->getTerminator());
  body(loop.getInductionVar());
}

SmallVector<Value> LoweringContext::forLoopCarrying(
    Value lb, Value ub, int64_t step, ValueRange init,
    function_ref<SmallVector<Value>(Value, ValueRange)> body) {
  // scf.for's builder runs the body callback with `b` set inside the loop.
  auto loop = scf::ForOp::create(
      b, loc, lb, ub, index(step), init,
      [&](OpBuilder &nested, Location nestedLoc, Value iv, ValueRange iters) {
        scf::YieldOp::create(nested, nestedLoc, body(iv, iters));
      });
  return SmallVector<Value>(loop.getResults());
}

void LoweringContext::forLoopMaybeParallel(Value lb, Value ub, int64_t step,
                                           bool parallel,
                                           function_ref<void(Value)> body) {
  if (!parallel || sideBySide)
    return forLoop(lb, ub, step, body);
  auto loop = scf::ParallelOp::create(b, loc, ValueRange{lb}, ValueRange{ub},
                                      ValueRange{index(step)});
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(loop.getBody()->getTerminator());
  body(loop.getInductionVars()[0]);
}

void LoweringContext::sideBySideLoop(int64_t n,
                                     function_ref<void(int64_t)> body) {
  assert(!sideBySide && "side-by-side loops do not nest");
  auto marked = NameLoc::get(b.getStringAttr(kSideBySideLoopName), loc);
  auto loop = scf::ParallelOp::create(b, marked, ValueRange{index(0)},
                                      ValueRange{index(n)},
                                      ValueRange{index(1)});
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(loop.getBody()->getTerminator());
    sideBySide = true;
    switchOver(loop.getInductionVars()[0], n, body);
    sideBySide = false;
  }
  for (Value buffer : releasedSideBySide)
    pool[buffer.getType()].push_back(buffer);
  releasedSideBySide.clear();
}

void LoweringContext::switchOver(Value selector, int64_t n,
                                 function_ref<void(int64_t)> body) {
  if (n == 1)
    return body(0);
  SmallVector<int64_t> cases;
  for (int64_t i = 0; i + 1 < n; ++i)
    cases.push_back(i);
  auto sw = scf::IndexSwitchOp::create(b, loc, TypeRange{}, selector, cases,
                                       cases.size());
  OpBuilder::InsertionGuard guard(b);
  auto fill = [&](Region &region, int64_t i) {
    b.setInsertionPointToStart(&region.emplaceBlock());
    scf::YieldOp::create(b, loc);
    b.setInsertionPointToStart(&region.front());
    body(i);
  };
  for (int64_t i = 0; i + 1 < n; ++i)
    fill(sw.getCaseRegions()[i], i);
  fill(sw.getDefaultRegion(), n - 1);
}

void LoweringContext::forTokens(function_ref<void(Value)> body) {
  if (oneToken) {
    body(index(0));
    return;
  }
  forLoop(index(0), T, 1, body);
}

scf::ParallelOp LoweringContext::enclosingParallelLoop() const {
  Operation *parent = b.getInsertionBlock()->getParentOp();
  if (auto loop = dyn_cast<scf::ParallelOp>(parent))
    return loop;
  return parent->getParentOfType<scf::ParallelOp>();
}

void LoweringContext::forEachToken(function_ref<void(Value)> body) {
  if (oneToken || batch() || !streamWeights || sideBySide ||
      enclosingParallelLoop()) {
    forTokens(body);
    return;
  }
  forLoopMaybeParallel(index(0), T, kTokenBlock, /*parallel=*/true,
                       [&](Value t0) {
                         Value end = arith::MinUIOp::create(
                             b, loc, addIndex(t0, kTokenBlock), T);
                         forLoop(t0, end, 1, body);
                       });
}

void LoweringContext::setOneToken(bool v) { oneToken = v; }

void LoweringContext::forChannels(int64_t n, int64_t width,
                                  function_ref<void(Value)> body) {
  forLoop(index(0), index(n), width, body);
}

Value LoweringContext::load(Value memref, ValueRange indices, int64_t width) {
  auto type = cast<MemRefType>(memref.getType());
  Type element = type.getElementType();
  auto vecType = VectorType::get({width}, element);
  Value v = vector::LoadOp::create(b, loc, vecType, memref, indices);
  if (!element.isF32())
    v = arith::ExtFOp::create(b, loc,
                              VectorType::get({width}, b.getF32Type()), v);
  return v;
}

void LoweringContext::store(Value vec, Value memref, ValueRange indices) {
  vector::StoreOp::create(b, loc, vec, memref, indices);
}

Value LoweringContext::loadScalar(Value memref, ValueRange indices) {
  Value v = memref::LoadOp::create(b, loc, memref, indices);
  if (!v.getType().isF32())
    v = arith::ExtFOp::create(b, loc, b.getF32Type(), v);
  return v;
}

Value LoweringContext::exp(Value x) { return math::ExpOp::create(b, loc, x); }
Value LoweringContext::tanh(Value x) {
  return math::TanhOp::create(b, loc, x);
}
Value LoweringContext::add(Value a, Value c) {
  return arith::AddFOp::create(b, loc, a, c);
}
Value LoweringContext::sub(Value a, Value c) {
  return arith::SubFOp::create(b, loc, a, c);
}
Value LoweringContext::mul(Value a, Value c) {
  return arith::MulFOp::create(b, loc, a, c);
}
Value LoweringContext::div(Value a, Value c) {
  return arith::DivFOp::create(b, loc, a, c);
}
Value LoweringContext::max(Value a, Value c) {
  return arith::MaximumFOp::create(b, loc, a, c);
}
Value LoweringContext::fma(Value a, Value c, Value acc) {
  if (isa<VectorType>(a.getType()))
    return vector::FMAOp::create(b, loc, a, c, acc);
  return math::FmaOp::create(b, loc, a, c, acc);
}

Value LoweringContext::sigmoid(Value x) {
  // 1 / (1 + exp(-x))
  Type t = x.getType();
  Value one = isa<VectorType>(t)
                  ? splat(1.0f, cast<VectorType>(t).getDimSize(0))
                  : f32(1.0f);
  Value negX = arith::NegFOp::create(b, loc, x);
  return div(one, add(one, exp(negX)));
}

Value LoweringContext::reduceAdd(Value vec) {
  return vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, vec,
                                     arith::FastMathFlags::reassoc);
}

//===----------------------------------------------------------------------===//
// ChannelOperand
//===----------------------------------------------------------------------===//

bool ChannelOperand::isPerToken(Value v) {
  auto t = cast<RankedTensorType>(v.getType());
  return t.getRank() == 2 && t.getElementType().isF32() &&
         !v.getDefiningOp<WeightOp>() && t.getDimSize(0) != 1;
}

ChannelOperand::ChannelOperand(LoweringContext &cx, Value v)
    : tokenwise(isPerToken(v)),
      buffer(tokenwise ? cx.lookup(v) : cx.paramFlat(v)) {}

Value ChannelOperand::load(LoweringContext &cx, Value t, Value c,
                           int64_t width) const {
  if (tokenwise)
    return cx.load(buffer, {t, c}, width);
  return cx.load(buffer, {c}, width);
}
