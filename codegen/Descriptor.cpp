//===- Descriptor.cpp - The model descriptor of runtime/rwkv_abi.h --------===//
//
// Each field is listed once, with the member of the C struct it fills; the
// LLVM struct type is made from the list and each field's offset checked
// against offsetof in runtime/rwkv_abi.h.
//
//===----------------------------------------------------------------------===//

#include "codegen/Descriptor.h"

#include "runtime/rwkv_abi.h"

#include "llvm/IR/Constants.h"
#include "llvm/IR/DataLayout.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/Support/FormatVariadic.h"

#include <cstddef>

namespace rwkvc {

llvm::Expected<llvm::Constant *> makeStruct(llvm::Module &m,
                                            llvm::StringRef structName,
                                            llvm::ArrayRef<Field> fields,
                                            llvm::StructType *&type) {
  std::vector<llvm::Type *> types;
  std::vector<llvm::Constant *> values;
  for (const Field &f : fields) {
    types.push_back(f.value->getType());
    values.push_back(f.value);
  }
  type = llvm::StructType::get(m.getContext(), types);
  const llvm::DataLayout &dl = m.getDataLayout();
  if (dl.getPointerSize() == sizeof(void *)) {
    const llvm::StructLayout *sl = dl.getStructLayout(type);
    for (auto [i, f] : llvm::enumerate(fields))
      if (sl->getElementOffset(i) != f.offset)
        return llvm::createStringError(llvm::formatv(
            "{0}.{1}: the descriptor puts it at byte {2}, "
            "runtime/rwkv_abi.h at byte {3}",
            structName, f.name, uint64_t(sl->getElementOffset(i)), f.offset));
  }
  return llvm::ConstantStruct::get(type, values);
}

llvm::Error buildModelDescriptor(llvm::Module &m, const ModelLayout &layout,
                                 const ModelInfoForABI &info,
                                 uint32_t backends,
                                 llvm::Constant *cudaProgram,
                                 uint32_t entries) {
  llvm::LLVMContext &ctx = m.getContext();
  auto *i32 = llvm::Type::getInt32Ty(ctx);
  auto *i64 = llvm::Type::getInt64Ty(ctx);
  auto *ptr = llvm::PointerType::getUnqual(ctx);
  auto c32 = [&](int64_t v) { return llvm::ConstantInt::get(i32, v); };
  auto c64 = [&](int64_t v) { return llvm::ConstantInt::get(i64, v); };
  auto string = [&](llvm::StringRef s) -> llvm::Constant * {
    auto *gv = new llvm::GlobalVariable(
        m, llvm::ArrayType::get(llvm::Type::getInt8Ty(ctx), s.size() + 1),
        true, llvm::GlobalValue::PrivateLinkage,
        llvm::ConstantDataArray::getString(ctx, s), ".str");
    gv->setUnnamedAddr(llvm::GlobalValue::UnnamedAddr::Global);
    return gv;
  };

  llvm::StructType *slotType = nullptr;
  std::vector<llvm::Constant *> slots;
  for (const SlotEntry &s : layout.slots) {
    int64_t initOffset = 0;
    if (const WeightEntry *w = layout.findWeight(s.initWeight))
      initOffset = w->offset;
    auto slot = makeStruct(
        m, "rwkv_state_slot",
        {RWKV_FIELD(rwkv_state_slot, name, string(s.name)),
         RWKV_FIELD(rwkv_state_slot, offset, c64(s.offset)),
         RWKV_FIELD(rwkv_state_slot, size, c64(s.size)),
         RWKV_FIELD(rwkv_state_slot, init, c32(int32_t(s.init))),
         RWKV_FIELD(rwkv_state_slot, init_weight_offset, c64(initOffset))},
        slotType);
    if (!slot)
      return slot.takeError();
    slots.push_back(*slot);
  }
  if (!slotType) // no slots: the element type of the empty table
    slotType = llvm::StructType::get(ctx, {ptr, i64, i64, i32, i64});
  auto *slotArrayType = llvm::ArrayType::get(slotType, slots.size());
  auto *slotArray = new llvm::GlobalVariable(
      m, slotArrayType, true, llvm::GlobalValue::PrivateLinkage,
      llvm::ConstantArray::get(slotArrayType, slots), "rwkv_state_slots");

  llvm::Constant *weightsFile =
      info.weightsEmbedded
          ? static_cast<llvm::Constant *>(llvm::ConstantPointerNull::get(ptr))
          : string(info.weightsFile);
  llvm::StructType *descType = nullptr;
  auto desc = makeStruct(
      m, "rwkv_model_desc",
      {RWKV_FIELD(rwkv_model_desc, abi_version, c32(RWKV_ABI_VERSION)),
       RWKV_FIELD(rwkv_model_desc, backends, c32(backends)),
       RWKV_FIELD(rwkv_model_desc, rwkv_version, string(info.rwkvVersion)),
       RWKV_FIELD(rwkv_model_desc, model_name, string(info.modelName)),
       RWKV_FIELD(rwkv_model_desc, n_vocab, c64(info.nVocab)),
       RWKV_FIELD(rwkv_model_desc, n_embd, c64(info.nEmbd)),
       RWKV_FIELD(rwkv_model_desc, n_layer, c64(info.nLayer)),
       RWKV_FIELD(rwkv_model_desc, state_floats, c64(layout.stateFloats)),
       RWKV_FIELD(rwkv_model_desc, weights_bytes, c64(layout.weightsBytes)),
       RWKV_FIELD(rwkv_model_desc, model_hash, c64(int64_t(info.hash))),
       RWKV_FIELD(rwkv_model_desc, weights_embedded,
                  c32(info.weightsEmbedded ? 1 : 0)),
       RWKV_FIELD(rwkv_model_desc, weights_file, weightsFile),
       RWKV_FIELD(rwkv_model_desc, n_slots, c64(int64_t(slots.size()))),
       RWKV_FIELD(rwkv_model_desc, slots, slotArray),
       RWKV_FIELD(rwkv_model_desc, cuda,
                  cudaProgram ? cudaProgram
                              : llvm::ConstantPointerNull::get(ptr)),
       RWKV_FIELD(rwkv_model_desc, entries, c32(entries))},
      descType);
  if (!desc)
    return desc.takeError();
  new llvm::GlobalVariable(m, descType, true,
                           llvm::GlobalValue::ExternalLinkage, *desc,
                           "rwkv_model_descriptor");
  return llvm::Error::success();
}

} // namespace rwkvc
