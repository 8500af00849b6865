//===- CUDAEmitter.cpp - A placed rwkv module to kernels and a launch plan ===//
//
// Two walks over @forward, in order, into layer bodies:
//   1. number the ops and find each value's last use. A single-layer
//      rwkv.layers is transparent (its arguments are its operands, its
//      results what it yields); a stack of several layers is a loop: its
//      operands live to its end, its carried arguments keep their buffers
//      for the whole loop.
//   2. generate each op's kernels (Kernels.h) and bind their parameters:
//      activations to scratch buffers placed first-fit in bytes per token,
//      weights and slots to their placements (+ k strides in a loop), the
//      function's result to the logits.
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/CUDAEmitter.h"
#include "codegen/cuda/Kernels.h"

#include "rwkv/RWKVDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"

#include <map>

using namespace mlir;
using namespace mlir::rwkv;

namespace rwkvc::cuda {

namespace {

llvm::Error opError(Operation *op, const llvm::Twine &what) {
  std::string loc;
  llvm::raw_string_ostream os(loc);
  op->getLoc().print(os);
  return llvm::createStringError(llvm::Twine("--target=cuda: ") +
                                 op->getName().getStringRef() + " at " + loc +
                                 ": " + what);
}

constexpr int64_t kScratchAlignment = 16; // bytes per token

class Emitter {
public:
  Emitter(const ModelLayout &layout) : layout(layout) {}

  llvm::Expected<CUDAProgram> run(func::FuncOp forward);

private:
  // Walk 0: adds taken into the epilogue of the linear map they add to.
  void fuseResiduals(Block &block);
  // Walk 1: positions and last uses.
  void number(Block &block);
  Value canon(Value v) const {
    auto it = alias.find(v);
    return it == alias.end() ? v : it->second;
  }
  void use(Value v, int at) {
    int &last = lastUse[canon(v)];
    last = std::max(last, at);
  }

  // Walk 2: kernels and launches.
  llvm::Error emitBlock(Block &block);
  llvm::Error emitOp(Operation *op);
  llvm::Error emitStack(LayersOp op);
  /// The LAUNCH step of `k` (its arguments to be appended next).
  rwkv_cuda_step launchStep(const KernelText &k, llvm::StringRef family);
  llvm::Error launch(Operation *op, const KernelText &k, const OpContext &cx);
  void copy(Value from, int fromBuffer, int toBuffer, GridDim::Source rows);

  // Buffers.
  struct Buffer {
    int64_t offset = 0, bytes = 0;
    int holders = 0;      // live values in it
    int pinnedUntil = -1; // a stack's carried buffer: its end position
    bool logits = false;
    bool freed = false;
  };
  int allocate(int64_t bytes);
  void release(Value v);
  void freeIfDead(int buffer);
  int bufferFor(Value v) const {
    auto it = bufferOf.find(canon(v));
    return it == bufferOf.end() ? -1 : it->second;
  }
  void bind(Value v, int buffer) {
    bufferOf[canon(v)] = buffer;
    ++buffers[buffer].holders;
  }
  static int64_t rowBytes(Value v) {
    int64_t c = cast<RankedTensorType>(v.getType()).getShape().back();
    return (c * 4 + kScratchAlignment - 1) / kScratchAlignment *
           kScratchAlignment;
  }
  GridDim::Source rowsFor(Value v) const {
    auto it = rowsOf.find(canon(v));
    return it == rowsOf.end() ? GridDim::T : it->second;
  }

  rwkv_cuda_arg arg(int32_t kind, int64_t value, int64_t stride = 0) {
    rwkv_cuda_arg a{};
    a.kind = kind;
    a.value = value;
    a.layer_stride = stride;
    return a;
  }
  int kernelIndex(const KernelText &k, llvm::StringRef family);

  const ModelLayout &layout;
  CUDAProgram program;
  std::map<std::string, int> kernels; // definition -> index
  std::string definitions;

  /// Ops launched as one kernel: the anchor's, which reads `inputs` and
  /// writes `result`; the other members are not launched.
  struct Fusion {
    SmallVector<Value> inputs;
    Value result;
    Value residual;      // a linear map's epilogue add
    Value mixA, mixB, mixT; // a LoRA's input lerp (OpContext)
    WKV7Group wkv7;      // RWKV-7's attention core
    WKV5Group wkv5;      // RWKV-5/6's WKV, group norm and gate
  };
  llvm::DenseMap<Operation *, Fusion> fusions; // anchor -> its group
  llvm::DenseSet<Operation *> fused;           // members, not launched
  void fuse(Operation *anchor, Fusion f, llvm::ArrayRef<Operation *> members) {
    for (Operation *m : members)
      fused.insert(m);
    fusions[anchor] = std::move(f);
  }
  llvm::DenseMap<Operation *, int> position, endPosition;
  llvm::DenseMap<Value, Value> alias;
  llvm::DenseMap<Value, int> lastUse;
  /// The current op's temporaries: Param::temp -> buffer.
  std::map<int, int> temps;
  int counter = 0;

  std::vector<Buffer> buffers;
  llvm::DenseMap<Value, int> bufferOf;
  llvm::DenseMap<Value, GridDim::Source> rowsOf;
  std::vector<std::pair<int64_t, int64_t>> used; // [offset, end) of live
  int64_t scratchEnd = 0;
  Value returned;
  int logitsBuffer = -1;
  int current = 0; // the position being emitted
  int64_t strideWeights = 0, strideState = 0;
};

//===----------------------------------------------------------------------===//
// Walk 0
//===----------------------------------------------------------------------===//

void Emitter::fuseResiduals(Block &block) {
  for (Operation &op : block) {
    if (auto layers = dyn_cast<LayersOp>(&op)) {
      fuseResiduals(layers.getBodyBlock());
      continue;
    }
    if (!takesResidual(&op) || op.getNumResults() != 1 ||
        !op.getResult(0).hasOneUse())
      continue;
    auto add = dyn_cast<AddOp>(*op.getResult(0).getUsers().begin());
    if (!add || add->getBlock() != &block ||
        add.getLhs().getType() != add.getRhs().getType())
      continue;
    Value other =
        add.getLhs() == op.getResult(0) ? add.getRhs() : add.getLhs();
    if (other == op.getResult(0) || other.getDefiningOp<WeightOp>())
      continue;
    // The residual must exist when the linear map runs.
    if (Operation *def = other.getDefiningOp())
      if (def->getBlock() != &block || !def->isBeforeInBlock(&op))
        continue;
    Fusion f;
    f.inputs = {other};
    f.result = add.getResult();
    f.residual = other;
    fuse(&op, f, {add});
  }
  // A LoRA reads its input's lerp (RWKV-7's w, a, v and g inputs): one
  // launch fewer each, which at decode costs as much as a small kernel.
  for (Operation &op : block) {
    auto lora = dyn_cast<LoraOp>(&op);
    if (!lora)
      continue;
    auto lerp = lora.getInput().getDefiningOp<LerpOp>();
    if (!lerp || lerp->getBlock() != &block || fused.contains(lerp) ||
        !lerp.getResult().hasOneUse() ||
        !lerp.getT().getDefiningOp<WeightOp>() ||
        lerp.getA().getType() != lerp.getResult().getType() ||
        lerp.getB().getType() != lerp.getResult().getType())
      continue;
    Fusion &f = fusions[&op]; // a residual add may be fused already
    f.mixA = lerp.getA(), f.mixB = lerp.getB(), f.mixT = lerp.getT();
    f.inputs.append({lerp.getA(), lerp.getB()});
    fused.insert(lerp);
  }
  // RWKV-7's attention core: one block per head from the keys to the gate.
  block.walk([&](WKV7Op wkv) {
    if (wkv->getBlock() != &block)
      return;
    std::optional<WKV7Group> group = matchWKV7Group(wkv);
    if (!group)
      return;
    Fusion f;
    f.result = group->gate.getResult();
    f.wkv7 = *group;
    for (Operation *op : {group->prep.getOperation(), group->norm.getOperation(),
                          group->bonus.getOperation(),
                          group->gate.getOperation()})
      for (Value v : op->getOperands())
        f.inputs.push_back(v);
    fuse(wkv, f,
         {group->prep, group->norm, group->bonus, group->sum, group->gate});
  });
  block.walk([&](WKV5Op wkv) {
    if (wkv->getBlock() != &block)
      return;
    std::optional<WKV5Group> group = matchWKV5Group(wkv);
    if (!group)
      return;
    Fusion f;
    f.wkv5 = *group;
    SmallVector<Operation *> members = {group->norm};
    for (Value v : group->norm->getOperands())
      f.inputs.push_back(v);
    f.result = group->norm.getResult();
    if (group->gate) {
      members.push_back(group->gate);
      for (Value v : group->gate->getOperands())
        f.inputs.push_back(v);
      f.result = group->gate.getResult();
    }
    fuse(wkv, f, members);
  });
}

//===----------------------------------------------------------------------===//
// Walk 1
//===----------------------------------------------------------------------===//

void Emitter::number(Block &block) {
  for (Operation &op : block) {
    int at = counter++;
    position[&op] = at;
    if (auto layers = dyn_cast<LayersOp>(&op)) {
      Block &body = layers.getBodyBlock();
      bool stack = layers.getNumLayers() > 1;
      if (!stack)
        for (auto [arg, operand] :
             llvm::zip(body.getArguments(), layers.getInputs()))
          alias[arg] = canon(operand);
      number(body);
      int end = counter++;
      endPosition[&op] = end;
      if (stack) {
        for (Value v : layers.getInputs())
          use(v, end);
        // Read-only arguments live through the loop.
        for (Value arg : body.getArguments().drop_front(layers.getNumResults()))
          use(arg, end);
      } else {
        for (auto [result, yielded] :
             llvm::zip(layers.getResults(), layers.getYielded()))
          alias[result] = canon(yielded);
      }
      continue;
    }
    if (auto yield = dyn_cast<YieldOp>(&op)) {
      auto parent = cast<LayersOp>(yield->getParentOp());
      if (parent.getNumLayers() > 1)
        for (Value v : yield.getValues())
          use(v, at);
      continue;
    }
    if (fused.contains(&op))
      continue; // its uses are its linear map's
    for (Value v : op.getOperands())
      use(v, at);
    auto fusion = fusions.find(&op);
    if (fusion != fusions.end())
      for (Value v : fusion->second.inputs)
        use(v, at);
  }
}

//===----------------------------------------------------------------------===//
// Buffers
//===----------------------------------------------------------------------===//

int Emitter::allocate(int64_t bytes) {
  std::sort(used.begin(), used.end());
  int64_t offset = 0;
  for (auto [begin, end] : used) {
    if (begin - offset >= bytes)
      break;
    offset = std::max(offset, end);
  }
  used.push_back({offset, offset + bytes});
  scratchEnd = std::max(scratchEnd, offset + bytes);
  Buffer b;
  b.offset = offset;
  b.bytes = bytes;
  buffers.push_back(b);
  return int(buffers.size()) - 1;
}

void Emitter::freeIfDead(int id) {
  Buffer &b = buffers[id];
  if (b.freed || b.holders > 0 || b.logits || b.pinnedUntil >= current)
    return;
  b.freed = true;
  auto it = llvm::find(used, std::pair(b.offset, b.offset + b.bytes));
  if (it != used.end())
    used.erase(it);
}

void Emitter::release(Value v) {
  int id = bufferFor(v);
  if (id < 0)
    return;
  bufferOf.erase(canon(v));
  --buffers[id].holders;
  freeIfDead(id);
}

//===----------------------------------------------------------------------===//
// Walk 2
//===----------------------------------------------------------------------===//

int Emitter::kernelIndex(const KernelText &k, llvm::StringRef family) {
  auto [it, inserted] = kernels.try_emplace(k.definition, 0);
  if (!inserted)
    return it->second;
  int index = int(program.kernelNames.size());
  it->second = index;
  std::string name = llvm::formatv("rwkv_{0}_{1}", family, index).str();
  std::string text = k.definition;
  size_t at = text.find(kKernelName.str());
  if (at != std::string::npos)
    text.replace(at, kKernelName.size(), name);
  definitions += text + "\n";
  program.kernelNames.push_back(name);
  return index;
}

rwkv_cuda_step Emitter::launchStep(const KernelText &k,
                                   llvm::StringRef family) {
  rwkv_cuda_step step{};
  step.kind = RWKV_CUDA_LAUNCH;
  step.when = int32_t(k.when);
  step.kernel = kernelIndex(k, family);
  for (int i = 0; i < 3; ++i) {
    step.grid[i] = {k.shape.grid[i].count, k.shape.grid[i].per,
                    int32_t(k.shape.grid[i].source)};
    step.block[i] = k.shape.block[i];
  }
  step.shared_bytes = k.shape.dynamicShared;
  program.maxDynamicShared =
      std::max(program.maxDynamicShared, k.shape.dynamicShared);
  step.first_arg = int32_t(program.args.size());
  step.n_args = int32_t(k.params.size());
  return step;
}

llvm::Error Emitter::launch(Operation *op, const KernelText &k,
                            const OpContext &cx) {
  rwkv_cuda_step step = launchStep(k, op->getName().stripDialect());

  for (auto [i, p] : llvm::enumerate(k.params)) {
    switch (p.role) {
    case ParamRole::Input:
    case ParamRole::InOut: {
      int id = bufferFor(p.value);
      if (id < 0)
        return opError(op, "an input has no buffer (operand " +
                               llvm::Twine(i) + ")");
      program.args.push_back(buffers[id].logits
                                 ? arg(RWKV_CUDA_ARG_LOGITS, 0)
                                 : arg(RWKV_CUDA_ARG_SCRATCH,
                                       buffers[id].offset));
      break;
    }
    case ParamRole::Output: {
      int id = bufferFor(p.value);
      if (id < 0) {
        Value v = canon(p.value);
        if (v == returned) {
          id = logitsBuffer;
        } else if (p.aliasOf >= 0) {
          const Param &in = k.params[p.aliasOf];
          int from = bufferFor(in.value);
          if (in.role == ParamRole::Input && from >= 0 &&
              lastUse.lookup(canon(in.value)) == current &&
              !buffers[from].logits && buffers[from].bytes == rowBytes(v) &&
              rowsFor(in.value) == cx.rows)
            id = from;
        }
        if (id < 0)
          id = allocate(rowBytes(v));
        bind(v, id);
        rowsOf[v] = cx.rows;
      }
      program.args.push_back(buffers[id].logits
                                 ? arg(RWKV_CUDA_ARG_LOGITS, 0)
                                 : arg(RWKV_CUDA_ARG_SCRATCH,
                                       buffers[id].offset));
      break;
    }
    case ParamRole::Weight: {
      auto w = p.value.getDefiningOp<WeightOp>();
      const WeightEntry *e = w ? layout.findWeight(w.getName()) : nullptr;
      if (!e)
        return opError(op, "a weight operand is not a placed rwkv.weight");
      program.args.push_back(
          arg(RWKV_CUDA_ARG_WEIGHTS, e->offset, strideWeights));
      break;
    }
    case ParamRole::State: {
      const SlotEntry *s = layout.findSlot(p.state);
      if (!s)
        return opError(op, "no placed state slot " + p.state);
      program.args.push_back(arg(RWKV_CUDA_ARG_STATE, s->offset, strideState));
      break;
    }
    case ParamRole::Tokens:
      program.args.push_back(arg(RWKV_CUDA_ARG_TOKENS, 0));
      break;
    case ParamRole::Logits:
      program.args.push_back(arg(RWKV_CUDA_ARG_LOGITS, 0));
      break;
    case ParamRole::NTokens:
      program.args.push_back(arg(RWKV_CUDA_ARG_T, 0));
      break;
    case ParamRole::NRows:
      program.args.push_back(
          arg(cx.rows == GridDim::R ? RWKV_CUDA_ARG_R : RWKV_CUDA_ARG_T, 0));
      break;
    case ParamRole::Null:
      program.args.push_back(arg(RWKV_CUDA_ARG_INT, 0));
      break;
    case ParamRole::Temp: {
      auto it = temps.find(p.temp);
      if (it == temps.end())
        return opError(op, "a temporary has no buffer");
      program.args.push_back(
          arg(RWKV_CUDA_ARG_SCRATCH, buffers[it->second].offset));
      break;
    }
    }
  }
  program.steps.push_back(step);
  return llvm::Error::success();
}

/// Copies the rows of one buffer to another (a stack's carried value).
void Emitter::copy(Value from, int fromBuffer, int toBuffer,
                   GridDim::Source rows) {
  int64_t c = cast<RankedTensorType>(from.getType()).getShape().back();
  KernelText k;
  k.definition =
      llvm::formatv("extern \"C\" __global__ void __launch_bounds__(256) "
                    "{0}(const float *a, float *out, long long rows) {{\n  "
                    "rwkv_elementwise<0, {1}, false, false>(a, nullptr, "
                    "nullptr, out, rows);\n}\n",
                    kKernelName, c)
          .str();
  k.shape.grid = {GridDim::constant(int32_t((c + 255) / 256)),
                  GridDim::rows(rows), GridDim::constant(1)};
  k.shape.block = {256, 1, 1};
  k.params.resize(3); // bound below, to buffers rather than values
  rwkv_cuda_step step = launchStep(k, "copy");
  program.args.push_back(
      arg(RWKV_CUDA_ARG_SCRATCH, buffers[fromBuffer].offset));
  program.args.push_back(arg(RWKV_CUDA_ARG_SCRATCH, buffers[toBuffer].offset));
  program.args.push_back(
      arg(rows == GridDim::R ? RWKV_CUDA_ARG_R : RWKV_CUDA_ARG_T, 0));
  program.steps.push_back(step);
}

llvm::Error Emitter::emitStack(LayersOp op) {
  Block &body = op.getBodyBlock();
  auto stride = op.getStrideAttr();
  if (!stride)
    return opError(op, "a stack of layers without a placed layer stride "
                       "(run rwkv-assign-layout)");
  if (strideWeights || strideState)
    return opError(op, "nested layer stacks");
  unsigned carried = op.getNumResults();
  int end = endPosition.lookup(op);
  // The arguments' buffers: the operands'. A carried operand that is used
  // after the stack is copied first, since the loop overwrites it.
  SmallVector<int> carriedBuffers;
  for (auto [i, pair] :
       llvm::enumerate(llvm::zip(body.getArguments(), op.getInputs()))) {
    auto [argument, operand] = pair;
    int id = bufferFor(operand);
    if (id < 0)
      return opError(op, "an input has no buffer");
    GridDim::Source rows = rowsFor(operand);
    if (i < carried) {
      if (lastUse.lookup(canon(operand)) > end || buffers[id].logits) {
        int copyId = allocate(rowBytes(operand));
        copy(operand, id, copyId, rows);
        id = copyId;
      }
      buffers[id].pinnedUntil = end;
      carriedBuffers.push_back(id);
    }
    bind(argument, id);
    rowsOf[argument] = rows;
  }
  rwkv_cuda_step loop{};
  loop.kind = RWKV_CUDA_LOOP;
  loop.count = int32_t(op.getNumLayers());
  program.steps.push_back(loop);
  strideWeights = stride.getWeights();
  strideState = stride.getState();
  if (llvm::Error e = emitBlock(body))
    return e;
  // The yielded values into the carried buffers, for the next layer.
  auto yielded = op.getYielded();
  for (unsigned i = 0; i < carried; ++i) {
    int from = bufferFor(yielded[i]);
    if (from < 0)
      return opError(op, "a yielded value has no buffer");
    for (unsigned j = 0; j < carried; ++j)
      if (j != i && from == carriedBuffers[j])
        return opError(op, "a stack yields one carried value in the place "
                           "of another");
    if (from != carriedBuffers[i])
      copy(yielded[i], from, carriedBuffers[i], rowsFor(yielded[i]));
  }
  rwkv_cuda_step endLoop{};
  endLoop.kind = RWKV_CUDA_END_LOOP;
  program.steps.push_back(endLoop);
  strideWeights = strideState = 0;
  current = end;
  for (Value v : yielded)
    release(v);
  for (BlockArgument argument : body.getArguments())
    release(argument);
  for (auto [i, result] : llvm::enumerate(op.getResults())) {
    bind(result, carriedBuffers[i]);
    rowsOf[result] = rowsFor(op.getInputs()[i]);
    buffers[carriedBuffers[i]].pinnedUntil = -1;
  }
  for (Value v : op.getInputs())
    if (lastUse.lookup(canon(v)) <= end)
      release(v);
  for (int id : carriedBuffers)
    freeIfDead(id);
  return llvm::Error::success();
}

llvm::Error Emitter::emitOp(Operation *op) {
  current = position.lookup(op);
  if (isa<WeightOp, YieldOp, func::ReturnOp>(op) || fused.contains(op))
    return llvm::Error::success();
  if (auto layers = dyn_cast<LayersOp>(op)) {
    if (layers.getNumLayers() > 1)
      return emitStack(layers);
    return emitBlock(layers.getBodyBlock());
  }
  OpContext cx;
  cx.rows = GridDim::T;
  for (Value v : op->getOperands())
    if (bufferFor(v) >= 0) {
      cx.rows = rowsFor(v);
      break;
    }
  if (isa<LastTokenOp>(op))
    cx.rows = GridDim::R;
  auto fusion = fusions.find(op);
  const Fusion *f = fusion == fusions.end() ? nullptr : &fusion->second;
  if (f) {
    cx.result = f->result;
    cx.residual = f->residual;
    cx.mixA = f->mixA, cx.mixB = f->mixB, cx.mixT = f->mixT;
  }
  auto ks = f && f->wkv7.wkv   ? generateWKV7Group(f->wkv7, cx)
            : f && f->wkv5.wkv ? generateWKV5Group(f->wkv5, cx)
                               : generateKernels(op, cx);
  if (!ks)
    return ks.takeError();
  // The op's temporaries: allocated before its outputs, so that they never
  // share memory with them, and freed after its last launch.
  temps.clear();
  for (const KernelText &k : *ks)
    for (const Param &p : k.params)
      if (p.role == ParamRole::Temp && !temps.count(p.temp))
        temps[p.temp] = allocate(p.tempBytes);
  for (const KernelText &k : *ks)
    if (llvm::Error e = launch(op, k, cx))
      return e;
  for (auto [index, id] : temps)
    freeIfDead(id);
  temps.clear();
  // Free what this op was the last use of, and results nobody reads.
  for (Value v : op->getOperands())
    if (lastUse.lookup(canon(v)) <= current)
      release(v);
  if (f) {
    for (Value v : f->inputs)
      if (lastUse.lookup(canon(v)) <= current)
        release(v);
    if (f->result && !lastUse.count(canon(f->result)) &&
        canon(f->result) != returned)
      release(f->result);
  }
  for (Value r : op->getResults())
    if (!lastUse.count(canon(r)) && canon(r) != returned)
      release(r);
  return llvm::Error::success();
}

llvm::Error Emitter::emitBlock(Block &block) {
  for (Operation &op : block)
    if (llvm::Error e = emitOp(&op))
      return e;
  return llvm::Error::success();
}

/// The plan as C data, behind RWKV_CUDA_PLAN_TABLES (with runtime/rwkv_abi.h
/// included first): what the object's rwkv_cuda_program holds, for tests
/// that run the kernels without rwkvc's object (sanitizer builds).
std::string planTables(const CUDAProgram &p, const ModelLayout &layout) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "\n#ifdef RWKV_CUDA_PLAN_TABLES\n"
     << "// The launch plan as data (tests; rwkvc's object holds the same).\n"
     << "static const rwkv_cuda_step rwkv_plan_steps[] = {\n";
  for (const rwkv_cuda_step &t : p.steps) {
    os << "  {" << t.kind << ", " << t.when << ", " << t.kernel << ", "
       << t.count << ", {";
    for (int i = 0; i < 3; ++i)
      os << (i ? ", " : "") << "{" << t.grid[i].count << ", " << t.grid[i].per
         << ", " << t.grid[i].source << "}";
    os << "}, {" << t.block[0] << ", " << t.block[1] << ", " << t.block[2]
       << "}, " << t.shared_bytes << ", " << t.first_arg << ", " << t.n_args
       << "},\n";
  }
  os << "};\nstatic const rwkv_cuda_arg rwkv_plan_args[] = {\n";
  for (const rwkv_cuda_arg &a : p.args)
    os << "  {" << a.kind << ", 0, " << a.value << ", " << a.layer_stride
       << "},\n";
  os << "};\nstatic const char *const rwkv_plan_kernels[] = {\n";
  for (const std::string &name : p.kernelNames)
    os << "  \"" << name << "\",\n";
  os << "};\nstatic const long long rwkv_plan_scratch_bytes_per_token = "
     << p.scratchBytesPerToken
     << ";\nstatic const long long rwkv_plan_weights_bytes = "
     << layout.weightsBytes << ";\nstatic const long long rwkv_plan_state_floats = "
     << layout.stateFloats << ";\n#endif // RWKV_CUDA_PLAN_TABLES\n";
  return s;
}

llvm::Expected<CUDAProgram> Emitter::run(func::FuncOp forward) {
  fuseResiduals(forward.getBody().front());
  number(forward.getBody().front());
  auto ret = cast<func::ReturnOp>(forward.getBody().front().getTerminator());
  if (ret.getNumOperands() != 1)
    return opError(forward, "@forward must return the logits only");
  returned = canon(ret.getOperand(0));
  Buffer logits;
  logits.logits = true;
  buffers.push_back(logits);
  logitsBuffer = 0;
  if (llvm::Error e = emitBlock(forward.getBody().front()))
    return std::move(e);
  if (bufferFor(returned) != logitsBuffer)
    return opError(forward, "the logits are not written by a kernel");

  std::string table;
  for (const std::string &name : program.kernelNames)
    table += "\n  RWKV_EMU_KERNEL(" + name + ")";
  program.scratchBytesPerToken = scratchEnd;
  program.source = kernelLibrary() + "\n// The model's kernels.\n\n" +
                   definitions + "RWKV_EMU_MODULE(" +
                   kEmulatorModuleSymbol.str() + "," + table + ")\n" +
                   planTables(program, layout);
  return std::move(program);
}

} // namespace

llvm::Expected<CUDAProgram> emitCUDAProgram(ModuleOp module,
                                            const ModelLayout &layout) {
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward || forward.getBody().empty())
    return llvm::createStringError("--target=cuda: the module has no "
                                   "@forward function");
  Emitter emitter(layout);
  return emitter.run(forward);
}

void printPlan(const CUDAProgram &program, llvm::raw_ostream &os) {
  static const char *const argNames[] = {"weights", "state", "scratch",
                                         "tokens",  "logits", "T",
                                         "R",       "int"};
  static const char *const sources[] = {"", "T", "R"};
  static const char *const whens[] = {"", " if T == 1", " if T > 1",
                                      " if R == 1", " if R > 1"};
  os << "// scratch: " << program.scratchBytesPerToken
     << " bytes per token\n";
  for (const rwkv_cuda_step &s : program.steps) {
    if (s.kind == RWKV_CUDA_LOOP) {
      os << "// loop " << s.count << " layers\n";
      continue;
    }
    if (s.kind == RWKV_CUDA_END_LOOP) {
      os << "// end loop\n";
      continue;
    }
    os << "// launch " << program.kernelNames[s.kernel] << "<<<(";
    for (int i = 0; i < 3; ++i) {
      const rwkv_cuda_dim &d = s.grid[i];
      os << (i ? ", " : "");
      if (d.source == RWKV_CUDA_DIM_ONE)
        os << d.count;
      else
        os << (d.count != 1 ? std::to_string(d.count) + "*" : "")
           << (d.per != 1 ? "ceil(" : "") << sources[d.source]
           << (d.per != 1 ? "/" + std::to_string(d.per) + ")" : "");
    }
    os << "), " << s.block[0] << ", " << s.shared_bytes << ">>>(";
    for (int i = 0; i < s.n_args; ++i) {
      const rwkv_cuda_arg &a = program.args[s.first_arg + i];
      os << (i ? ", " : "") << argNames[a.kind];
      if (a.kind == RWKV_CUDA_ARG_WEIGHTS || a.kind == RWKV_CUDA_ARG_STATE ||
          a.kind == RWKV_CUDA_ARG_SCRATCH || a.kind == RWKV_CUDA_ARG_INT)
        os << "+" << a.value;
      if (a.layer_stride)
        os << "+k*" << a.layer_stride;
    }
    os << ")" << whens[s.when] << "\n";
  }
}

} // namespace rwkvc::cuda
