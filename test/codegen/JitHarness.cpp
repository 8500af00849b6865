//===- JitHarness.cpp - JIT-compile one rwkv function for op tests --------===//

#include "JitHarness.h"

#include "codegen/WeightImage.h"
#include "codegen/cpu/Passes.h"
#include "passes/Passes.h"
#include "rwkv/RWKVDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>

using namespace mlir;

namespace rwkvc::testing {

namespace {

constexpr size_t kAlign = 64;

template <typename T> T *alignUp(T *p) {
  auto a = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<T *>((a + kAlign - 1) / kAlign * kAlign);
}

/// One context for every module of the process: the passes load their
/// dialects into it; each engine owns its compiled code.
MLIRContext &context() {
  static MLIRContext *ctx = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    DialectRegistry registry;
    registry.insert<rwkv::RWKVDialect, func::FuncDialect>();
    registerBuiltinDialectTranslation(registry);
    registerLLVMDialectTranslation(registry);
    auto *c = new MLIRContext(registry);
    c->loadAllAvailableDialects();
    return c;
  }();
  return *ctx;
}

llvm::Error makeError(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

/// A memref descriptor of any rank: {allocated, aligned, offset,
/// sizes[rank], strides[rank]}, as int64 words.
std::vector<int64_t> descriptor(void *data, llvm::ArrayRef<int64_t> shape) {
  size_t rank = shape.size();
  std::vector<int64_t> d(3 + 2 * rank);
  std::memcpy(&d[0], &data, sizeof(void *));
  std::memcpy(&d[1], &data, sizeof(void *));
  d[2] = 0;
  int64_t stride = 1;
  for (size_t j = rank; j-- > 0;) {
    d[3 + j] = shape[j];
    d[3 + rank + j] = stride;
    stride *= shape[j];
  }
  return d;
}

} // namespace

uint16_t toF16Bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  uint32_t sign = (u >> 16) & 0x8000;
  uint32_t absu = u & 0x7fffffff;
  if (absu >= 0x7f800000) // inf / nan
    return sign | 0x7c00 | (absu > 0x7f800000 ? 0x200 : 0);
  if (absu >= 0x477ff000) // rounds to >= 65536: inf
    return sign | 0x7c00;
  if (absu < 0x38800000) { // subnormal half (or zero): units of 2^-24
    float a;
    std::memcpy(&a, &absu, 4);
    // a * 2^24 rounded to nearest even by the FPU.
    float scaled = a * 16777216.0f;
    uint32_t q = static_cast<uint32_t>(std::nearbyint(scaled));
    return sign | q;
  }
  // Normal: rebias exponent, round mantissa 23 → 10 bits to nearest even.
  uint32_t mant = absu & 0x7fffff;
  int32_t exp = static_cast<int32_t>(absu >> 23) - 127 + 15;
  uint32_t half = (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1)))
    ++half; // may carry into the exponent: still correct
  return sign | half;
}

static float fromF16Bits(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(mant), -24);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u |= sign;
    std::memcpy(&f, &u, 4);
    return f;
  }
  uint32_t u = sign | (exp == 31 ? 0x7f800000u | (mant << 13)
                                 : ((exp - 15 + 127) << 23) | (mant << 13));
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t toBF16Bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffff) > 0x7f800000)
    return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

float roundToF16(float x) { return fromF16Bits(toF16Bits(x)); }

float roundToBF16(float x) {
  uint32_t u = static_cast<uint32_t>(toBF16Bits(x)) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

JitModule::~JitModule() = default;

llvm::Expected<std::unique_ptr<JitModule>>
JitModule::compile(llvm::StringRef source, llvm::StringRef func,
                   unsigned optLevel, llvm::StringRef quantDot) {
  static std::mutex mutex; // one shared context
  std::lock_guard<std::mutex> lock(mutex);
  MLIRContext &ctx = context();

  std::string diagnostics;
  llvm::raw_string_ostream os(diagnostics);
  ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &d) {
    os << d.getLocation() << ": " << d << "\n";
    return success();
  });

  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(source, &ctx);
  if (!module)
    return makeError("parse failed:\n" + diagnostics + "\n" + source);
  auto fn = module->lookupSymbol<func::FuncOp>(func);
  if (!fn)
    return makeError("no function @" + func);

  std::unique_ptr<JitModule> jit(new JitModule());
  jit->func_ = func.str();
  jit->numInputs_ = fn.getNumArguments();
  for (Type t : llvm::concat<const Type>(fn.getArgumentTypes(),
                                         fn.getResultTypes())) {
    auto tensor = dyn_cast<RankedTensorType>(t);
    if (!tensor)
      return makeError("arguments and results must be ranked tensors");
    std::vector<int64_t> shape(tensor.getShape().begin(),
                               tensor.getShape().end());
    for (int64_t &d : shape)
      if (ShapedType::isDynamic(d))
        d = -1;
    jit->shapes_.push_back(shape);
    jit->isInt_.push_back(tensor.getElementType().isInteger(32));
  }

  PassManager lower(&ctx);
  lower.addPass(rwkv::createRWKVAssignLayoutPass(
      rwkv::RWKVAssignLayoutPassOptions{rwkv::cpu::kWeightAlignment,
                                        rwkv::cpu::kSlotAlignment}));
  // Quantized products take the integer dot products the compiler picks for
  // this machine (as `rwkvc` for the host does) unless told.
  rwkv::cpu::RWKVLowerToLoopsPassOptions loops;
  loops.quantDot =
      quantDot.empty() ? rwkv::cpu::selectQuantDot("", "") : quantDot.str();
  lower.addPass(rwkv::cpu::createRWKVLowerToLoopsPass(loops));
  if (failed(lower.run(*module)))
    return makeError("rwkv-lower-to-loops failed:\n" + diagnostics);
  auto layout = readModelLayout(*module);
  if (!layout)
    return layout.takeError();
  jit->layout_ = std::move(*layout);
  eraseModelLayout(*module); // read; LLVM IR has no use for it

  PassManager toLLVM(&ctx);
  toLLVM.addPass(rwkv::cpu::createRWKVLoopsToLLVMPass());
  if (failed(toLLVM.run(*module)))
    return makeError("rwkv-loops-to-llvm failed:\n" + diagnostics);

  // options.transformer is a function_ref: keep the callable alive.
  std::function<llvm::Error(llvm::Module *)> transformer =
      makeOptimizingTransformer(optLevel, 0, nullptr);
  ExecutionEngineOptions options;
  options.transformer = transformer;
  auto engine = ExecutionEngine::create(*module, options);
  if (!engine)
    return makeError("ExecutionEngine: " + llvm::toString(engine.takeError()) +
                     "\n" + diagnostics);
  jit->engine_ = std::move(*engine);
  // The generated code's allocation functions (runtime/rwkv_abi.h), which
  // the runtime defines for a compiled model: plain malloc and free here.
  jit->engine_->registerSymbols([](llvm::orc::MangleAndInterner interner) {
    llvm::orc::SymbolMap symbols;
    symbols[interner("_mlir_memref_to_llvm_alloc")] = {
        llvm::orc::ExecutorAddr::fromPtr(&::malloc),
        llvm::JITSymbolFlags::Exported};
    symbols[interner("_mlir_memref_to_llvm_free")] = {
        llvm::orc::ExecutorAddr::fromPtr(&::free),
        llvm::JITSymbolFlags::Exported};
    return symbols;
  });

  size_t imageBytes =
      std::max<int64_t>(kAlign, jit->layout_.weightsBytes);
  jit->weights_.assign(imageBytes + kAlign, 0);
  jit->weightsAligned_ = alignUp(jit->weights_.data());
  jit->stateFloats_ = std::max<int64_t>(16, jit->layout_.stateFloats);
  jit->state_.assign(jit->stateFloats_ + kAlign / sizeof(float), 0.0f);
  jit->stateAligned_ = alignUp(jit->state_.data());
  jit->resetState();
  return jit;
}

llvm::Error JitModule::setWeight(llvm::StringRef name,
                                 llvm::ArrayRef<float> values) {
  const WeightEntry *w = layout_.findWeight(name);
  if (!w)
    return makeError("no weight " + name);
  if (values.size() != w->numElements())
    return makeError("weight " + name + ": " + llvm::Twine(values.size()) +
                     " values for " + llvm::Twine(w->numElements()) +
                     " elements");
  uint8_t *p = weightsAligned_ + w->offset;
  for (size_t i = 0; i < values.size(); ++i) {
    if (w->type.getElementType().isF32()) {
      std::memcpy(p + 4 * i, &values[i], 4);
    } else {
      uint16_t bits = w->type.getElementType().isF16() ? toF16Bits(values[i])
                                              : toBF16Bits(values[i]);
      std::memcpy(p + 2 * i, &bits, 2);
    }
  }
  return llvm::Error::success();
}

llvm::Error JitModule::setQuantizedWeight(llvm::StringRef name,
                                          llvm::ArrayRef<uint8_t> blocks) {
  const WeightEntry *w = layout_.findWeight(name);
  if (!w)
    return makeError("no weight " + name);
  auto quant = dyn_cast<rwkv::QuantType>(w->type.getElementType());
  if (!quant || w->type.getRank() != 2)
    return makeError("weight " + name + " is not an (N, K) quantized matrix");
  uint64_t rows = w->type.getDimSize(0),
           nb = w->type.getDimSize(1) / rwkv::kQuantBlockElements;
  uint64_t rowBytes = uint64_t(w->bytes()) / rows;
  if (blocks.size() != rows * rowBytes)
    return makeError("weight " + name + ": " + llvm::Twine(blocks.size()) +
                     " bytes of blocks for " + llvm::Twine(rows * rowBytes));
  for (uint64_t r = 0; r < rows; ++r)
    splitBlockRow(quant.getKind(), nb, blocks.data() + r * rowBytes,
                  weightsAligned_ + w->offset + r * rowBytes);
  return llvm::Error::success();
}

float *JitModule::slot(llvm::StringRef name) {
  for (const SlotEntry &s : layout_.slots)
    if (s.name == name)
      return stateAligned_ + s.offset;
  return nullptr;
}

int64_t JitModule::slotSize(llvm::StringRef name) const {
  for (const SlotEntry &s : layout_.slots)
    if (s.name == name)
      return s.size;
  return -1;
}

void JitModule::resetState() {
  std::fill(stateAligned_, stateAligned_ + stateFloats_, 0.0f);
  for (const SlotEntry &s : layout_.slots)
    if (s.init == rwkv::StateInit::neg_large)
      std::fill(stateAligned_ + s.offset, stateAligned_ + s.offset + s.size,
                -1e30f);
}

std::vector<int64_t> JitModule::shape(unsigned i, int64_t numTokens) const {
  std::vector<int64_t> s = shapes_[i];
  for (int64_t &d : s)
    if (d < 0)
      d = numTokens;
  return s;
}

llvm::Error JitModule::run(llvm::ArrayRef<Buffer> buffers, int64_t numTokens,
                           bool oneToken) {
  if (buffers.size() != shapes_.size())
    return makeError("expected " + llvm::Twine(shapes_.size()) +
                     " buffers, got " + llvm::Twine(buffers.size()));
  if (oneToken && numTokens != 1)
    return makeError("the _one kernel takes exactly one token");
  std::vector<std::vector<int64_t>> descs;
  descs.push_back(descriptor(weightsAligned_,
                             {std::max<int64_t>(kAlign, layout_.weightsBytes)}));
  descs.push_back(descriptor(stateAligned_,
                             {static_cast<int64_t>(stateFloats_)}));
  for (size_t i = 0; i < buffers.size(); ++i) {
    std::vector<int64_t> s = shape(i, numTokens);
    int64_t n = 1;
    for (int64_t d : s)
      n *= d;
    if (static_cast<size_t>(n) != buffers[i].size)
      return makeError("buffer " + llvm::Twine(i) + " has " +
                       llvm::Twine(buffers[i].size) + " elements, expected " +
                       llvm::Twine(n));
    descs.push_back(descriptor(buffers[i].data, s));
  }
  // _mlir_ciface_<f> takes a pointer per descriptor; invokePacked takes a
  // pointer to each argument.
  std::vector<void *> pointers, args;
  for (auto &d : descs)
    pointers.push_back(d.data());
  for (auto &p : pointers)
    args.push_back(&p);
  std::string name =
      "_mlir_ciface_" + func_ + (oneToken ? "_one" : "_seq");
  return engine_->invokePacked(name, args);
}

} // namespace rwkvc::testing
