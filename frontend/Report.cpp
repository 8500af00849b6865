//===- Report.cpp - The --inspect report of a checkpoint ------------------===//

#include "frontend/Report.h"

#include "llvm/Support/FormatVariadic.h"

using namespace llvm;

namespace rwkvc {

void printInspectReport(raw_ostream &os, const Checkpoint &ckpt,
                        const ModelInfo &info) {
  os << "file:        " << ckpt.path << "\n";
  os << "format:      " << formatName(ckpt.format);
  if (ckpt.format == Format::GGML)
    os << " (rwkv.cpp file version " << ckpt.ggmlVersion << ", file type "
       << ckpt.ggmlFileType << ")";
  os << "\n";
  for (const auto &[key, value] : ckpt.metadata)
    os << "metadata:    " << key << " = " << value << "\n";
  os << "version:     RWKV-" << versionName(info.version) << "\n";
  os << "n_layer:     " << info.nLayer << "\n";
  os << "n_embd:      " << info.nEmbd << "\n";
  if (info.version == Version::V4)
    os << "heads:       per-channel (RWKV-4)\n";
  else
    os << "heads:       " << info.nHead << " x head size " << info.headSize
       << "\n";
  os << "vocab:       " << info.vocab << "\n";
  os << "ffn:         " << info.ffn << "\n";
  if (info.version == Version::V6)
    os << "lora:        mix " << info.loraMix << " (x5), decay "
       << info.loraDecay << "\n";
  if (info.version == Version::V7)
    os << "lora:        w " << info.loraDecay << ", a " << info.loraA << ", v "
       << info.loraV << ", g " << info.loraG << "\n";
  if (info.version == Version::V5_0 || info.version == Version::V5_1 ||
      info.version == Version::V5_2)
    os << "bonus:       "
       << (info.bonusIsTimeFirst ? "time_first (used as exp)"
                                 : "time_faaaa (used as is)")
       << "\n";
  os << "time_state:  " << (info.hasTimeState ? "present" : "absent") << "\n";
  os << "parameters:  " << info.parameterCount << " in " << ckpt.tensors.size()
     << " tensors\n";
  for (const auto &[type, bytes] : info.bytesByType)
    os << formatv("bytes {0,-6} {1}\n", type + ":", bytes);
  os << "extra tensors: " << info.extraTensors.size() << "\n";
  for (const std::string &x : info.extraTensors)
    os << "  " << x << "\n";
  os << "non-finite values: " << info.nonFiniteValues << "\n";
  os << "anomalies: " << info.anomalies.size() << "\n";
  for (const std::string &a : info.anomalies)
    os << "  " << a << "\n";
}

} // namespace rwkvc
