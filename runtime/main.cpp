//===- main.cpp - The command line of a compiled model --------------------===//
//
// main() of every executable rwkvc builds: `NAME "prompt" [options]`
// generates text with the tokenizer linked in (streamed, UTF-8 safe), chats,
// measures perplexity, tokenizes; `NAME --tokens ...` runs the model on
// token ids, saves/loads states, benchmarks, and prints the descriptor. Options are parsed by hand (no LLVM in compiled models);
// docs/runtime.md lists them and must stay true to the usage text below.
//
// Exit status: 0 success, 1 a runtime error (weights, state files, I/O),
// 2 a command-line error (unknown option, bad or out-of-range value).
//
//===----------------------------------------------------------------------===//

#include "rwkv_runtime.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <csignal>
#include <cmath>

#include <sys/resource.h>
#include <unistd.h>

namespace {

const char *progName = "model";

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

/// Prints "NAME: error: MESSAGE" to stderr, then `hint` if not null.
__attribute__((format(printf, 1, 0))) void report(const char *fmt, va_list ap,
                                                  const char *hint) {
  fprintf(stderr, "%s: error: ", progName);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  if (hint)
    fprintf(stderr, hint, progName);
}

/// Prints a runtime error.
__attribute__((format(printf, 1, 2))) void error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(fmt, ap, nullptr);
  va_end(ap);
}

/// Prints a command-line error with a hint and returns the usage status.
__attribute__((format(printf, 1, 2))) int usageError(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(fmt, ap, "(run '%s --help' for the options)\n");
  va_end(ap);
  return kExitUsage;
}

void printHelp() {
  printf(
      "usage: %s [options] [\"PROMPT\"]\n"
      "\n"
      "Generates text from PROMPT with the RWKV model and tokenizer compiled\n"
      "into this executable, or runs the model on token ids (--tokens).\n"
      "\n"
      "text generation:\n"
      "  PROMPT              the prompt (UTF-8); the generated text is\n"
      "                      streamed to stdout token by token\n"
      "  -f FILE             read the prompt from FILE\n"
      "  -n N                generate at most N tokens (default 100)\n"
      "  --temperature T     0 = greedy (argmax); default 1.0\n"
      "  --top-p P           nucleus sampling mass in (0, 1]; default 0.85\n"
      "  --top-k K           keep the K most likely tokens; 0 (default) = off\n"
      "  --presence-penalty A   ChatRWKV alpha_presence (default 0.2)\n"
      "  --frequency-penalty A  ChatRWKV alpha_frequency (default 0.2)\n"
      "  --penalty-decay D   ChatRWKV alpha_decay (default 0.996)\n"
      "  --seed S            seed of the sampler's PRNG (default: from the\n"
      "                      clock; --verbose prints it)\n"
      "  --stop STR          stop when the output contains STR (repeatable;\n"
      "                      STR is not printed)\n"
      "  --stop-token ID     stop when token ID is sampled (repeatable; the\n"
      "                      end-of-text token 0 of world/20b always stops)\n"
      "  --chat              interactive chat on stdin (\"User: ...\\n\\n\n"
      "                      Assistant:\"), the state kept between turns;\n"
      "                      PROMPT, if any, is fed first\n"
      "  --ppl FILE          print the perplexity of the text in FILE\n"
      "  --tokenize TEXT     print the token ids of TEXT\n"
      "  --detokenize LIST   print the text of comma-separated token ids\n"
      "  --verbose           print prompt and generation tokens/s to stderr\n"
      "  Ctrl-C stops the generation (in --chat: the reply; at the User:\n"
      "  prompt, the chat) cleanly; --state-out still saves the state.\n"
      "\n"
      "token ids and the model:\n"
      "  --tokens LIST       the prompt as comma-separated token ids, e.g.\n"
      "                      --tokens 34,105,110 (each in 0..n_vocab-1)\n"
      "  --logits-out FILE   write the logits after the last token to FILE\n"
      "                      as n_vocab raw little-endian float32 values\n"
      "  --print-logits      print the logits after the last token, one per\n"
      "                      line (%%.6f)\n"
      "  --mode rnn|seq      rnn: one token at a time (forward_one);\n"
      "                      seq: chunks of tokens (forward_seq); default seq\n"
      "  --chunk N           seq mode: at most N tokens per forward_seq call\n"
      "                      (default 0: the whole prompt at once)\n"
      "  --state-in FILE     start from the state saved in FILE instead of\n"
      "                      the initial state (also for PROMPT and --chat)\n"
      "  --state-out FILE    save the state after the tokens (after the\n"
      "                      generation, after the chat) to FILE\n"
      "  --bench [N]         measure decode tokens/s (N tokens one at a time,\n"
      "                      each the argmax of the last logits) and prefill\n"
      "                      tokens/s (N tokens in one chunk, and in chunks\n"
      "                      of --chunk if given); print the times and the\n"
      "                      peak memory; default N = 512\n"
      "  --info              print the model's descriptor: versions, sizes,\n"
      "                      hash, weights, state slots\n"
      "  --help              print this help\n"
      "\n"
      "Options taking a value accept --opt VALUE and --opt=VALUE; '--' ends\n"
      "the options (for a prompt that starts with '-').\n"
      "Exit status: 0 success, 1 runtime error, 2 command-line error.\n",
      progName);
}

/// Parses a non-negative decimal integer (the whole string).
bool parseUnsigned(const std::string &s, uint64_t &out) {
  if (s.empty() || s.size() > 19)
    return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + uint64_t(c - '0');
  }
  out = v;
  return true;
}

std::string trim(const std::string &s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos)
    return {};
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

struct Options {
  bool haveTokens = false;
  std::vector<int64_t> tokens; // checked against n_vocab once known
  std::string logitsOut;
  bool printLogits = false;
  int mode = RWKV_EVAL_SEQ;
  uint64_t chunk = 0;
  bool chunkGiven = false;
  std::string stateIn, stateOut;
  bool bench = false;
  uint64_t benchTokens = 512;
  bool info = false;
  bool help = false;
  // Text.
  bool havePrompt = false;
  std::string prompt;
  std::string promptFile;
  uint64_t maxTokens = 100;
  rwkv_sampler_params sampling;
  bool seedGiven = false;
  std::vector<std::string> stops;
  std::vector<int64_t> stopTokens;
  bool chat = false;
  std::string pplFile;
  bool haveTokenize = false, haveDetokenize = false;
  std::string tokenizeText;
  std::vector<int64_t> detokenizeIds;
  bool verbose = false;
  Options() { rwkv_sampler_params_default(&sampling); }
  bool textMode() const {
    return havePrompt || !promptFile.empty() || chat || !pplFile.empty() ||
           haveTokenize || haveDetokenize;
  }
};

/// Parses a finite decimal number (the whole string).
bool parseFloat(const std::string &s, float &out) {
  if (s.empty())
    return false;
  char *end = nullptr;
  errno = 0;
  double v = strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(v))
    return false;
  out = float(v);
  return true;
}

/// Parses --tokens' list. Returns false after printing the error.
bool parseTokens(const std::string &list, std::vector<int64_t> &out,
                 const char *opt = "--tokens") {
  size_t start = 0, item = 1;
  for (;;) {
    size_t comma = list.find(',', start);
    std::string text = trim(list.substr(start, comma - start));
    bool negative = !text.empty() && text[0] == '-';
    uint64_t v;
    if (!parseUnsigned(negative ? text.substr(1) : text, v) ||
        v > uint64_t(INT32_MAX)) {
      usageError("%s: item %zu, '%s', is not a token id (expected "
                 "comma-separated integers like 34,105,110)",
                 opt, item, text.c_str());
      return false;
    }
    out.push_back(negative ? -int64_t(v) : int64_t(v));
    if (comma == std::string::npos)
      return true;
    start = comma + 1;
    ++item;
  }
}

/// Parses argv into `o`. Returns -1 to go on, else the exit status.
int parseArgs(int argc, char **argv, Options &o) {
  bool optionsEnded = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool isOption = !optionsEnded && arg.size() >= 2 && arg[0] == '-' &&
                    !(arg[1] >= '0' && arg[1] <= '9');
    if (!optionsEnded && arg == "--") {
      optionsEnded = true;
      continue;
    }
    if (!isOption) {
      if (o.havePrompt)
        return usageError("unexpected argument '%s': give one prompt (quote "
                          "it if it has spaces)",
                          arg.c_str());
      o.prompt = arg;
      o.havePrompt = true;
      continue;
    }
    std::string name = arg, value;
    bool inlineValue = false;
    size_t eq = arg.find('=');
    if (eq != std::string::npos && arg.compare(0, 2, "--") == 0) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inlineValue = true;
    }
    bool takesValue =
        name == "--tokens" || name == "--logits-out" || name == "--mode" ||
        name == "--chunk" || name == "--state-in" || name == "--state-out" ||
        name == "-n" || name == "-f" || name == "--temperature" ||
        name == "--top-p" || name == "--top-k" ||
        name == "--presence-penalty" || name == "--frequency-penalty" ||
        name == "--penalty-decay" || name == "--seed" || name == "--stop" ||
        name == "--stop-token" || name == "--ppl" || name == "--tokenize" ||
        name == "--detokenize";
    bool isFlag = name == "--print-logits" || name == "--info" ||
                  name == "--help" || name == "--bench" || name == "--chat" ||
                  name == "--verbose";
    if (!takesValue && !isFlag)
      return usageError("unknown option '%s'", name.c_str());
    if (takesValue && !inlineValue) {
      if (i + 1 >= argc)
        return usageError("%s needs a value", name.c_str());
      value = argv[++i];
    }
    if (inlineValue && isFlag && name != "--bench")
      return usageError("%s takes no value", name.c_str());

    if (name == "--tokens") {
      o.tokens.clear();
      if (!parseTokens(value, o.tokens))
        return kExitUsage;
      o.haveTokens = true;
    } else if (name == "--logits-out") {
      o.logitsOut = value;
    } else if (name == "--mode") {
      if (value == "rnn")
        o.mode = RWKV_EVAL_RNN;
      else if (value == "seq")
        o.mode = RWKV_EVAL_SEQ;
      else
        return usageError("--mode: '%s' is not rnn or seq", value.c_str());
    } else if (name == "--chunk") {
      if (!parseUnsigned(value, o.chunk))
        return usageError("--chunk: '%s' is not a non-negative integer",
                          value.c_str());
      o.chunkGiven = true;
    } else if (name == "--state-in") {
      o.stateIn = value;
    } else if (name == "--state-out") {
      o.stateOut = value;
    } else if (name == "--bench") {
      o.bench = true;
      // The count is optional: --bench=N, or --bench N when N is a number.
      if (!inlineValue && i + 1 < argc && argv[i + 1][0] >= '0' &&
          argv[i + 1][0] <= '9') {
        value = argv[++i];
        inlineValue = true;
      }
      if (inlineValue &&
          (!parseUnsigned(value, o.benchTokens) || o.benchTokens == 0))
        return usageError("--bench: '%s' is not a positive integer",
                          value.c_str());
    } else if (name == "-n") {
      if (!parseUnsigned(value, o.maxTokens))
        return usageError("-n: '%s' is not a non-negative integer",
                          value.c_str());
    } else if (name == "-f") {
      o.promptFile = value;
    } else if (name == "--temperature") {
      if (!parseFloat(value, o.sampling.temperature) ||
          o.sampling.temperature < 0)
        return usageError("--temperature: '%s' is not a number >= 0",
                          value.c_str());
    } else if (name == "--top-p") {
      if (!parseFloat(value, o.sampling.top_p) || !(o.sampling.top_p > 0) ||
          o.sampling.top_p > 1)
        return usageError("--top-p: '%s' is not a number in (0, 1]",
                          value.c_str());
    } else if (name == "--top-k") {
      uint64_t k;
      if (!parseUnsigned(value, k) || k > uint64_t(INT32_MAX))
        return usageError("--top-k: '%s' is not a non-negative integer",
                          value.c_str());
      o.sampling.top_k = int32_t(k);
    } else if (name == "--presence-penalty") {
      if (!parseFloat(value, o.sampling.presence_penalty))
        return usageError("--presence-penalty: '%s' is not a number",
                          value.c_str());
    } else if (name == "--frequency-penalty") {
      if (!parseFloat(value, o.sampling.frequency_penalty))
        return usageError("--frequency-penalty: '%s' is not a number",
                          value.c_str());
    } else if (name == "--penalty-decay") {
      if (!parseFloat(value, o.sampling.penalty_decay) ||
          o.sampling.penalty_decay < 0 || o.sampling.penalty_decay > 1)
        return usageError("--penalty-decay: '%s' is not a number in [0, 1]",
                          value.c_str());
    } else if (name == "--seed") {
      if (!parseUnsigned(value, o.sampling.seed))
        return usageError("--seed: '%s' is not a non-negative integer",
                          value.c_str());
      o.seedGiven = true;
    } else if (name == "--stop") {
      if (value.empty())
        return usageError("--stop: the stop string is empty");
      o.stops.push_back(value);
    } else if (name == "--stop-token") {
      uint64_t id;
      if (!parseUnsigned(value, id) || id > uint64_t(INT32_MAX))
        return usageError("--stop-token: '%s' is not a token id",
                          value.c_str());
      o.stopTokens.push_back(int64_t(id));
    } else if (name == "--ppl") {
      o.pplFile = value;
    } else if (name == "--tokenize") {
      o.tokenizeText = value;
      o.haveTokenize = true;
    } else if (name == "--detokenize") {
      o.detokenizeIds.clear();
      if (!parseTokens(value, o.detokenizeIds, "--detokenize"))
        return kExitUsage;
      o.haveDetokenize = true;
    } else if (name == "--chat") {
      o.chat = true;
    } else if (name == "--verbose") {
      o.verbose = true;
    } else if (name == "--print-logits") {
      o.printLogits = true;
    } else if (name == "--info") {
      o.info = true;
    } else if (name == "--help") {
      o.help = true;
    }
  }
  return -1;
}

const char *initName(int32_t init) {
  switch (init) {
  case RWKV_SLOT_ZERO:
    return "zero";
  case RWKV_SLOT_NEG_LARGE:
    return "-1e30";
  case RWKV_SLOT_WEIGHT:
    return "weight";
  default:
    return "unknown";
  }
}

void printInfo(const rwkv_model_desc &d) {
  printf("model: %s\n", d.model_name ? d.model_name : "(unnamed)");
  printf("rwkv version: %s\n", d.rwkv_version ? d.rwkv_version : "?");
  printf("abi version: %u (runtime: %u)\n", d.abi_version,
         unsigned(RWKV_ABI_VERSION));
  printf("n_vocab: %" PRId64 "\nn_embd: %" PRId64 "\nn_layer: %" PRId64 "\n",
         d.n_vocab, d.n_embd, d.n_layer);
  printf("model hash: 0x%016" PRIx64 "\n", d.model_hash);
  if (d.weights_embedded)
    printf("weights: %" PRId64 " bytes, embedded\n", d.weights_bytes);
  else
    printf("weights: %" PRId64 " bytes, in the file '%s' beside the "
           "executable\n",
           d.weights_bytes, d.weights_file ? d.weights_file : "");
  printf("state: %" PRId64 " floats (%" PRId64 " bytes), %" PRId64 " slots\n",
         d.state_floats, d.state_floats * 4, d.n_slots);
  for (int64_t i = 0; i < d.n_slots; ++i) {
    const rwkv_state_slot &s = d.slots[i];
    printf("  %-32s offset %-10" PRId64 " size %-10" PRId64 " init %s",
           s.name ? s.name : "?", s.offset, s.size, initName(s.init));
    if (s.init == RWKV_SLOT_WEIGHT)
      printf(" (weight byte %" PRId64 ")", s.init_weight_offset);
    printf("\n");
  }
}

bool writeLogits(const std::string &path, const std::vector<float> &logits) {
  FILE *f = fopen(path.c_str(), "wb");
  if (!f) {
    error("cannot write the logits to '%s': %s", path.c_str(), strerror(errno));
    return false;
  }
  size_t n = fwrite(logits.data(), sizeof(float), logits.size(), f);
  int e = errno;
  if (fclose(f) != 0 || n != logits.size()) {
    error("cannot write the logits to '%s': %s", path.c_str(), strerror(e));
    return false;
  }
  return true;
}

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - t0)
      .count();
}

void printRate(const char *what, uint64_t n, double ms) {
  printf("%s: %.1f tokens/s (%" PRIu64 " tokens, %.1f ms)\n", what,
         ms > 0 ? double(n) * 1000.0 / ms : 0.0, n, ms);
}

size_t argmax(const std::vector<float> &v) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best])
      best = i;
  return best;
}

/// --bench: decode and prefill throughput from the initial state.
int bench(const rwkv_model *m, const Options &o) {
  using clock = std::chrono::steady_clock;
  const uint64_t n = o.benchTokens;
  const size_t vocab = rwkv_n_vocab(m);
  const uint8_t *w = rwkv_model_weights(m);
  std::vector<float> state(rwkv_state_size(m) / sizeof(float));
  std::vector<float> logits(vocab);
  char err[512];
  auto total0 = clock::now();

  // Decode: one token at a time, each the argmax of the previous logits.
  rwkv_state_reset(m, state.data());
  rwkv_model_forward_one(w, state.data(), 0, logits.data()); // warm-up
  rwkv_state_reset(m, state.data());
  int32_t tok = 0;
  auto t0 = clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    rwkv_model_forward_one(w, state.data(), tok, logits.data());
    tok = int32_t(argmax(logits));
  }
  printRate("decode", n, msSince(t0));

  // Prefill: n tokens (i % n_vocab) in one forward_seq call, then chunked.
  std::vector<int32_t> tokens(n);
  for (uint64_t i = 0; i < n; ++i)
    tokens[i] = int32_t(i % vocab);
  rwkv_state_reset(m, state.data());
  rwkv_model_forward_seq(w, state.data(), tokens.data(),
                         int64_t(n < 16 ? n : 16), logits.data()); // warm-up
  struct Run {
    const char *label;
    uint64_t chunk;
  };
  std::vector<Run> runs = {{"prefill", 0}};
  std::string chunkLabel;
  if (o.chunkGiven && o.chunk != 0) {
    chunkLabel = "prefill (chunk " + std::to_string(o.chunk) + ")";
    runs.push_back({chunkLabel.c_str(), o.chunk});
  }
  for (const Run &r : runs) {
    rwkv_state_reset(m, state.data());
    t0 = clock::now();
    if (rwkv_eval(m, state.data(), tokens.data(), n, logits.data(),
                  RWKV_EVAL_SEQ, r.chunk, err, sizeof err) != RWKV_OK) {
      error("%s", err);
      return kExitError;
    }
    printRate(r.label, n, msSince(t0));
  }
  printf("total: %.1f ms\n", msSince(total0));
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    printf("peak memory: %.1f MiB\n", double(ru.ru_maxrss) / 1024.0);
  return 0;
}

//===----------------------------------------------------------------------===//
// Text: tokenizer, generation, chat, perplexity
//===----------------------------------------------------------------------===//

std::string trimAll(const std::string &s) {
  size_t b = s.find_first_not_of(" \t\n\r");
  if (b == std::string::npos)
    return {};
  size_t e = s.find_last_not_of(" \t\n\r");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> stopsWith(std::vector<std::string> stops,
                                     const std::string &extra) {
  stops.push_back(extra);
  return stops;
}

volatile sig_atomic_t interrupted = 0;

void onSigint(int) { interrupted = 1; }

/// Ctrl-C sets `interrupted` (no SA_RESTART, so a blocking read returns).
void installSigint() {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = onSigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}

bool readFile(const std::string &path, std::string &out, const char *what) {
  FILE *f = fopen(path.c_str(), "rb");
  if (!f) {
    error("cannot read the %s file '%s': %s", what, path.c_str(),
          strerror(errno));
    return false;
  }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    out.append(buf, n);
  bool bad = ferror(f);
  fclose(f);
  if (bad) {
    error("cannot read the %s file '%s'", what, path.c_str());
    return false;
  }
  return true;
}

/// Refuses invalid UTF-8 (all tokenizers: a prompt is text).
bool checkUtf8(const std::string &s, const char *what) {
  size_t v = rwkv_utf8_valid_prefix(s.data(), s.size());
  if (v == s.size())
    return true;
  error("%s is not valid UTF-8: byte 0x%02x at offset %zu", what,
        unsigned(uint8_t(s[v])), v);
  return false;
}

bool tokenize(const rwkv_tokenizer *tok, const std::string &s,
              std::vector<int32_t> &ids) {
  char err[512];
  size_t n = 0;
  if (rwkv_tokenize(tok, s.data(), s.size(), nullptr, 0, &n, err,
                    sizeof err) != RWKV_OK) {
    error("%s", err);
    return false;
  }
  ids.resize(n);
  return rwkv_tokenize(tok, s.data(), s.size(), ids.data(), n, &n, err,
                       sizeof err) == RWKV_OK;
}

/// Writes bytes to stdout and flushes.
void emit(const char *p, size_t n) {
  if (n) {
    fwrite(p, 1, n, stdout);
    fflush(stdout);
  }
}

/// ChatRWKV's occurrence weight: 0 for tokens whose text is a substring of
/// " \t0123456789" (spaces, digits), else 1.
float occurrenceWeight(const rwkv_tokenizer *tok, int32_t id) {
  const uint8_t *b;
  size_t n = rwkv_token_bytes(tok, id, &b);
  static const char kLight[] = " \t0123456789";
  if (n == 0)
    return 0.0f;
  return std::string(kLight).find(std::string(
             reinterpret_cast<const char *>(b), n)) != std::string::npos
             ? 0.0f
             : 1.0f;
}

struct TextSession {
  const Options &o;
  rwkv_model *m = nullptr;
  rwkv_tokenizer *tok = nullptr;
  std::vector<float> state, logits;
  double promptMs = 0, genMs = 0;
  uint64_t promptTokens = 0, genTokens = 0;

  explicit TextSession(const Options &o) : o(o) {}
  ~TextSession() {
    rwkv_tokenizer_close(tok);
    rwkv_model_close(m);
  }

  /// Feeds `ids` (SEQ mode unless --mode rnn) and leaves the logits.
  bool feed(const std::vector<int32_t> &ids) {
    char err[512];
    auto t0 = std::chrono::steady_clock::now();
    if (rwkv_eval(m, state.data(), ids.data(), ids.size(), logits.data(),
                  o.mode, o.chunk, err, sizeof err) != RWKV_OK) {
      error("%s", err);
      return false;
    }
    promptMs += msSince(t0);
    promptTokens += ids.size();
    return true;
  }

  /// Generates from the current logits, streaming to stdout, until
  /// --max tokens, a stop token/string or Ctrl-C. Every token printed was fed
  /// to the model, so the state continues the text printed (plus a stop
  /// string). `banEos`: the chat never ends on end-of-text.
  bool generate(const std::vector<std::string> &stops, uint64_t seed,
                bool banEos, bool *stoppedByString = nullptr) {
    char err[512];
    rwkv_sampler_params p = o.sampling;
    p.seed = seed;
    rwkv_sampler *s = rwkv_sampler_create(logits.size(), &p, err, sizeof err);
    if (!s) {
      error("%s", err);
      return false;
    }
    int32_t eos = rwkv_tokenizer_eos(tok);
    if (banEos && eos >= 0)
      rwkv_sampler_ban(s, eos);
    // Logits past the vocabulary (padding, e.g. 20B's 50277 tokens in 50304
    // logits) are never sampled.
    for (size_t id = rwkv_tokenizer_n_tokens(tok); id < logits.size(); ++id)
      rwkv_sampler_ban(s, int32_t(id));
    const uint8_t *w = rwkv_model_weights(m);
    rwkv_utf8_stream utf8;
    rwkv_utf8_stream_init(&utf8);
    std::string pending; // generated, not printed: may start a stop string
    std::vector<char> out;
    auto print = [&](const std::string &text) {
      out.resize(text.size() + 4);
      emit(out.data(), rwkv_utf8_stream_push(&utf8, text.data(), text.size(),
                                             out.data()));
    };
    auto t0 = std::chrono::steady_clock::now();
    bool stopped = false;
    for (uint64_t i = 0; i < o.maxTokens && !interrupted && !stopped; ++i) {
      int32_t id = rwkv_sampler_sample(s, logits.data());
      if (id < 0 || id == eos ||
          std::find(o.stopTokens.begin(), o.stopTokens.end(), id) !=
              o.stopTokens.end())
        break;
      rwkv_model_forward_one(w, state.data(), id, logits.data());
      rwkv_sampler_accept(s, id, occurrenceWeight(tok, id));
      ++genTokens;
      const uint8_t *b;
      size_t n = rwkv_token_bytes(tok, id, &b);
      pending.append(reinterpret_cast<const char *>(b), n);
      // A stop string: print what precedes it, end.
      size_t cut = std::string::npos;
      for (const std::string &st : stops)
        cut = std::min(cut, pending.find(st));
      if (cut != std::string::npos) {
        pending.resize(cut);
        stopped = true;
        break;
      }
      // Hold back the longest tail that could start a stop string.
      size_t hold = 0;
      for (const std::string &st : stops)
        for (size_t k = std::min(st.size() - 1, pending.size()); k > hold; --k)
          if (pending.compare(pending.size() - k, k, st, 0, k) == 0) {
            hold = k;
            break;
          }
      print(pending.substr(0, pending.size() - hold));
      pending.erase(0, pending.size() - hold);
    }
    print(pending);
    out.resize(4);
    emit(out.data(), rwkv_utf8_stream_flush(&utf8, out.data()));
    genMs += msSince(t0);
    if (stoppedByString)
      *stoppedByString = stopped;
    rwkv_sampler_free(s);
    return true;
  }

  void report() const {
    if (!o.verbose)
      return;
    fprintf(stderr, "\nprompt: %" PRIu64 " tokens, %.1f ms (%.1f tokens/s)\n",
            promptTokens, promptMs,
            promptMs > 0 ? double(promptTokens) * 1000.0 / promptMs : 0.0);
    fprintf(stderr,
            "generation: %" PRIu64 " tokens, %.1f ms (%.1f tokens/s)\n",
            genTokens, genMs,
            genMs > 0 ? double(genTokens) * 1000.0 / genMs : 0.0);
  }
};

/// --ppl: exp of the mean negative log-likelihood of tokens 2..N given the
/// ones before them (RNN mode: one forward_one per token).
int perplexity(TextSession &t, const std::vector<int32_t> &ids) {
  if (ids.size() < 2) {
    error("--ppl: the text has %zu token(s); perplexity needs at least 2",
          ids.size());
    return kExitError;
  }
  const uint8_t *w = rwkv_model_weights(t.m);
  double nll = 0;
  size_t n = 0;
  for (size_t i = 0; i + 1 < ids.size() && !interrupted; ++i) {
    rwkv_model_forward_one(w, t.state.data(), ids[i], t.logits.data());
    double mx = -INFINITY, sum = 0;
    for (float v : t.logits)
      mx = std::max(mx, double(v));
    for (float v : t.logits)
      sum += std::exp(double(v) - mx);
    nll += mx + std::log(sum) - double(t.logits[size_t(ids[i + 1])]);
    ++n;
  }
  if (n == 0) {
    error("--ppl: interrupted before the first prediction");
    return kExitError;
  }
  printf("perplexity: %.4f (%zu tokens, %zu predictions, %.4f nats/token)\n",
         std::exp(nll / double(n)), ids.size(), n, nll / double(n));
  return 0;
}

/// --chat: "User: MSG\n\nAssistant:" per turn, replies stop at "\n\n".
int chat(TextSession &t, uint64_t seed) {
  std::vector<std::string> stops = stopsWith(t.o.stops, "\n\n");
  for (uint64_t turn = 0; !interrupted; ++turn) {
    printf("User: ");
    fflush(stdout);
    std::string line;
    char buf[4096];
    bool got = false;
    while (fgets(buf, sizeof buf, stdin)) {
      got = true;
      line += buf;
      if (!line.empty() && line.back() == '\n')
        break;
    }
    if (!got || interrupted)
      break;
    // ChatRWKV: strip, \r\n -> \n, no blank lines inside a message.
    std::string msg;
    for (char c : line)
      if (c != '\r')
        msg += c;
    size_t pos;
    while ((pos = msg.find("\n\n")) != std::string::npos)
      msg.replace(pos, 2, "\n");
    msg = trimAll(msg);
    if (msg.empty())
      continue;
    if (!checkUtf8(msg, "the message"))
      continue;
    std::vector<int32_t> ids;
    if (!tokenize(t.tok, "User: " + msg + "\n\nAssistant:", ids) ||
        !t.feed(ids))
      return kExitError;
    printf("Assistant:");
    fflush(stdout);
    bool stopped = false;
    if (!t.generate(stops, seed + turn, /*banEos=*/true, &stopped))
      return kExitError;
    // A reply cut short (-n, Ctrl-C) still ends with "\n\n" in the state,
    // so that the next turn has RWKV's format.
    if (!stopped && (!tokenize(t.tok, "\n\n", ids) || !t.feed(ids)))
      return kExitError;
    printf("\n\n");
    fflush(stdout);
    interrupted = 0; // Ctrl-C ends a reply, not the chat
  }
  printf("\n");
  return 0;
}

int runText(const Options &o) {
  if (o.havePrompt && o.prompt.empty())
    return usageError("the prompt is empty: give some text (or --chat, or "
                      "-f FILE)");
  char err[512];
  const rwkv_model_desc &d = rwkv_model_descriptor;
  rwkv_tokenizer *tok =
      rwkv_tokenizer_open_linked(size_t(d.n_vocab > 0 ? d.n_vocab : 0), err,
                                 sizeof err);
  if (!tok) {
    error("%s", err);
    return kExitError;
  }
  TextSession t(o);
  t.tok = tok;

  // Tokenizer-only commands: no weights needed.
  if (o.haveTokenize || o.haveDetokenize) {
    if (o.haveTokenize) {
      if (!checkUtf8(o.tokenizeText, "--tokenize: the text"))
        return kExitUsage;
      std::vector<int32_t> ids;
      if (!tokenize(tok, o.tokenizeText, ids))
        return kExitError;
      for (size_t i = 0; i < ids.size(); ++i)
        printf("%s%d", i ? "," : "", ids[i]);
      printf("\n");
    }
    if (o.haveDetokenize) {
      std::vector<int32_t> ids(o.detokenizeIds.size());
      for (size_t i = 0; i < ids.size(); ++i) {
        if (o.detokenizeIds[i] < 0 ||
            size_t(o.detokenizeIds[i]) >= rwkv_tokenizer_n_tokens(tok))
          return usageError("--detokenize: token %" PRId64 " (item %zu) is "
                            "out of range: the tokenizer has %zu tokens",
                            o.detokenizeIds[i], i + 1,
                            rwkv_tokenizer_n_tokens(tok));
        ids[i] = int32_t(o.detokenizeIds[i]);
      }
      size_t n = 0;
      rwkv_detokenize(tok, ids.data(), ids.size(), nullptr, 0, &n, err,
                      sizeof err);
      std::string text(n, '\0');
      rwkv_detokenize(tok, ids.data(), ids.size(), text.data(), n, &n, err,
                      sizeof err);
      fwrite(text.data(), 1, text.size(), stdout);
    }
    return 0;
  }

  // The text to feed.
  std::string text;
  bool haveText = false;
  if (!o.pplFile.empty()) {
    if (!readFile(o.pplFile, text, "--ppl"))
      return kExitError;
    if (!checkUtf8(text, ("the text of '" + o.pplFile + "'").c_str()))
      return kExitError;
    haveText = true;
  } else if (!o.promptFile.empty()) {
    if (!readFile(o.promptFile, text, "prompt"))
      return kExitError;
    if (text.empty()) {
      error("the prompt file '%s' is empty", o.promptFile.c_str());
      return kExitError;
    }
    if (!checkUtf8(text, ("the prompt in '" + o.promptFile + "'").c_str()))
      return kExitError;
    haveText = true;
  } else if (o.havePrompt) {
    if (!checkUtf8(o.prompt, "the prompt"))
      return kExitUsage;
    text = o.prompt;
    haveText = true;
  }
  std::vector<int32_t> ids;
  if (haveText && !tokenize(tok, text, ids))
    return kExitError;
  if (haveText && ids.empty() && o.pplFile.empty()) {
    error("the prompt has no tokens");
    return kExitError;
  }

  t.m = rwkv_model_open(err, sizeof err);
  if (!t.m) {
    error("%s", err);
    return kExitError;
  }
  t.state.resize(rwkv_state_size(t.m) / sizeof(float));
  t.logits.resize(rwkv_n_vocab(t.m));
  if (!o.stateIn.empty()) {
    if (rwkv_state_load(t.m, t.state.data(), o.stateIn.c_str(), err,
                        sizeof err) != RWKV_OK) {
      error("%s", err);
      return kExitError;
    }
  } else {
    rwkv_state_reset(t.m, t.state.data());
  }
  installSigint();
  uint64_t seed = o.sampling.seed;
  if (!o.seedGiven)
    seed = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^
           (uint64_t(getpid()) << 32);
  if (o.verbose && o.sampling.temperature > 0)
    fprintf(stderr, "seed: %" PRIu64 "\n", seed);

  int status = 0;
  if (!o.pplFile.empty()) {
    status = perplexity(t, ids);
  } else {
    if (!ids.empty() && !t.feed(ids))
      return kExitError;
    if (o.chat)
      status = chat(t, seed);
    else if (!t.generate(o.stops, seed, /*banEos=*/false))
      status = kExitError;
    t.report();
  }
  if (status == 0 && !o.stateOut.empty() &&
      rwkv_state_save(t.m, t.state.data(), o.stateOut.c_str(), err,
                      sizeof err) != RWKV_OK) {
    error("%s", err);
    status = kExitError;
  }
  return status;
}

int run(const Options &o) {
  const rwkv_model_desc &d = rwkv_model_descriptor;
  if (o.info) {
    printInfo(d);
    char terr[512];
    rwkv_tokenizer *tok = rwkv_tokenizer_open_linked(
        size_t(d.n_vocab > 0 ? d.n_vocab : 0), terr, sizeof terr);
    if (tok)
      printf("tokenizer: %s, %zu tokens, end of text %d\n",
             rwkv_tokenizer_kind(tok), rwkv_tokenizer_n_tokens(tok),
             rwkv_tokenizer_eos(tok));
    else
      printf("tokenizer: none (%s)\n", terr);
    rwkv_tokenizer_close(tok);
    if (!o.haveTokens && !o.bench && !o.textMode())
      return 0;
  }
  if (o.textMode()) {
    if (o.haveTokens || o.bench || !o.logitsOut.empty() || o.printLogits)
      return usageError("--tokens, --bench, --logits-out and --print-logits "
                        "do not combine with a prompt, -f, --chat, --ppl, "
                        "--tokenize or --detokenize");
    return runText(o);
  }
  if (!o.haveTokens) {
    if (!o.logitsOut.empty() || o.printLogits || !o.stateIn.empty() ||
        !o.stateOut.empty())
      return usageError("--logits-out, --print-logits, --state-in and "
                        "--state-out need --tokens");
    if (!o.bench)
      return usageError("nothing to do: give a prompt, --chat, --tokens, "
                        "--bench or --info");
  }
  for (size_t i = 0; i < o.tokens.size(); ++i)
    if (o.tokens[i] < 0 || o.tokens[i] >= d.n_vocab)
      return usageError("--tokens: token %" PRId64 " (item %zu) is out of "
                        "range: the vocabulary has %" PRId64
                        " tokens (0..%" PRId64 ")",
                        o.tokens[i], i + 1, d.n_vocab, d.n_vocab - 1);

  char err[512];
  rwkv_model *m = rwkv_model_open(err, sizeof err);
  if (!m) {
    error("%s", err);
    return kExitError;
  }
  int status = 0;
  if (o.haveTokens) {
    std::vector<float> state(rwkv_state_size(m) / sizeof(float));
    std::vector<float> logits(rwkv_n_vocab(m));
    std::vector<int32_t> tokens(o.tokens.begin(), o.tokens.end());
    if (!o.stateIn.empty()) {
      if (rwkv_state_load(m, state.data(), o.stateIn.c_str(), err,
                          sizeof err) != RWKV_OK) {
        error("%s", err);
        status = kExitError;
      }
    } else {
      rwkv_state_reset(m, state.data());
    }
    if (status == 0 &&
        rwkv_eval(m, state.data(), tokens.data(), tokens.size(), logits.data(),
                  o.mode, o.chunk, err, sizeof err) != RWKV_OK) {
      error("%s", err);
      status = kExitError;
    }
    if (status == 0 && !o.logitsOut.empty() &&
        !writeLogits(o.logitsOut, logits))
      status = kExitError;
    if (status == 0 && o.printLogits)
      for (float v : logits)
        printf("%.6f\n", double(v));
    if (status == 0 && !o.stateOut.empty() &&
        rwkv_state_save(m, state.data(), o.stateOut.c_str(), err, sizeof err) !=
            RWKV_OK) {
      error("%s", err);
      status = kExitError;
    }
  }
  if (status == 0 && o.bench)
    status = bench(m, o);
  rwkv_model_close(m);
  return status;
}

} // namespace

int main(int argc, char **argv) {
  if (argc > 0 && argv[0]) {
    const char *slash = strrchr(argv[0], '/');
    progName = slash ? slash + 1 : argv[0];
  }
  Options o;
  int status = parseArgs(argc, argv, o);
  if (status >= 0)
    return status;
  if (o.help) {
    printHelp();
    return 0;
  }
  status = run(o);
  if (fflush(stdout) != 0 && status == 0) {
    error("cannot write to stdout: %s", strerror(errno));
    status = kExitError;
  }
  return status;
}
