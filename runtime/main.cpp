//===- main.cpp - The command line of a compiled model --------------------===//
//
// main() of every executable rwkvc builds: `NAME "prompt" [options]`
// generates text, chats, measures perplexity, tokenizes; `NAME --tokens ...`
// runs the model on token ids, saves/loads states, benchmarks, and prints
// the descriptor. This file is the option table and its parser: argv becomes
// an rwkv_cli_request, which the library checks and runs (rwkv_cli.h). One
// option table (kOptions) gives both the parser and --help;
// docs/runtime.md lists the options and must stay true to it.
//
// Exit status: 0 success, 1 a runtime error (weights, state files, I/O),
// 2 a command-line error (unknown option, bad or out-of-range value).
//
//===----------------------------------------------------------------------===//

#include "rwkv_cli.h"
#include "rwkv_server.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace {

/// The request and the arrays it points to.
struct Options {
  rwkv_cli_request r;
  bool help = false;
  std::vector<const char *> stops; // into argv
  std::vector<int32_t> stopTokens;
  std::vector<int64_t> tokens, detokenize;
  int threads = -1; // --threads; -1: not given (rwkv_set_threads' default)
  bool serve = false;        // --serve
  rwkv_server_params server; // --host, --port, --parallel, ...
  Options() {
    rwkv_cli_request_default(&r);
    rwkv_server_params_default(&server);
  }
};

/// Parses a non-negative decimal integer (the whole string) up to `max`.
bool parseUnsigned(const char *s, uint64_t &out, uint64_t max = UINT64_MAX) {
  size_t n = strlen(s);
  if (n == 0 || n > 19 || strspn(s, "0123456789") != n)
    return false;
  out = strtoull(s, nullptr, 10);
  return out <= max;
}

std::string notA(const char *value, const char *what) {
  return fmt::format("'{}' is not {}", value, what);
}

//===----------------------------------------------------------------------===//
// The option table
//===----------------------------------------------------------------------===//

/// What an option takes.
enum class Value {
  None,     // a flag
  Required, // --opt VALUE or --opt=VALUE
  Optional, // --opt, --opt=VALUE, or --opt VALUE when VALUE is a number
};

/// Stores `value` (NUL-terminated, in argv; null for an Optional option
/// given without one) into the options; returns the complaint ("" if
/// fine), printed as "NAME: COMPLAINT".
using Setter = std::string (*)(Options &, const char *value);

struct Option {
  const char *name;    // "--top-p", or "" for the PROMPT argument
  const char *metavar; // shown after the name in --help ("" for none)
  Value value;
  Setter set;       // where the value goes (see the set* templates)
  const char *help; // lines for --help, '\n'-separated
};

/// The member of Options that a path of member pointers names.
template <auto... Path> auto &field(Options &o) { return (o.*....*Path); }

template <auto... Path> std::string setFlag(Options &o, const char *) {
  field<Path...>(o) = 1;
  return {};
}
template <auto... Path> std::string setText(Options &o, const char *v) {
  field<Path...>(o) = v;
  return {};
}
/// A non-negative integer up to Max.
template <uint64_t Max, auto... Path>
std::string setCount(Options &o, const char *v) {
  uint64_t n;
  if (!parseUnsigned(v, n, Max))
    return notA(v, "a non-negative integer");
  field<Path...>(o) = std::remove_reference_t<decltype(field<Path...>(o))>(n);
  return {};
}
/// Sets the flag `Given`, then runs `Set`.
template <auto Given, Setter Set> std::string given(Options &o, const char *v) {
  o.r.*Given = 1;
  return Set(o, v);
}
/// --tokens and --detokenize: an id list (rwkv_cli_parse_ids).
template <std::vector<int64_t> Options::*List>
std::string setIds(Options &o, const char *v) {
  char err[256];
  size_t n = 0;
  if (rwkv_cli_parse_ids(v, nullptr, 0, &n, err, sizeof err) != RWKV_OK)
    return err;
  (o.*List).resize(n);
  rwkv_cli_parse_ids(v, (o.*List).data(), n, &n, err, sizeof err);
  return {};
}

/// The values a number option accepts.
enum class Range { Any, NonNegative, OpenUnit /* (0, 1] */, Unit /* [0, 1] */ };

/// A finite decimal number (the whole string) in the range Rg.
template <Range Rg, auto Member>
std::string setNumber(Options &o, const char *v) {
  static const char *const what[] = {"a number", "a number >= 0",
                                     "a number in (0, 1]",
                                     "a number in [0, 1]"};
  char *end = nullptr;
  errno = 0;
  double d = strtod(v, &end);
  float x = o.r.gen.sampling.*Member = float(d);
  bool ok = *v && errno == 0 && *end == '\0' && std::isfinite(d) &&
            (Rg == Range::Any || (Rg == Range::NonNegative && x >= 0) ||
             (Rg == Range::OpenUnit && x > 0 && x <= 1) ||
             (Rg == Range::Unit && x >= 0 && x <= 1));
  return ok ? std::string() : notA(v, what[int(Rg)]);
}

using R = rwkv_cli_request;
using S = rwkv_sampler_params;
constexpr auto kR = &Options::r;
constexpr auto kGen = &R::gen;
constexpr auto kSampling = &rwkv_generate_params::sampling;
constexpr uint64_t kI32 = uint64_t(INT32_MAX), kU64 = UINT64_MAX;

/// The options: parseArgs and printHelp both read this table.
constexpr Option kOptions[] = {
    // ---- text generation
    {"", "PROMPT", Value::Required, nullptr,
     "the prompt (UTF-8); the generated text is\n"
     "streamed to stdout token by token"},
    {"-f", "FILE", Value::Required, setText<kR, &R::prompt_file>,
     "read the prompt from FILE"},
    {"-n", "N", Value::Required,
     setCount<kU64, kR, kGen, &rwkv_generate_params::max_tokens>,
     "generate at most N tokens (default 100)"},
    {"--temperature", "T", Value::Required,
     setNumber<Range::NonNegative, &S::temperature>,
     "0 = greedy (argmax); default 1.0"},
    {"--top-p", "P", Value::Required, setNumber<Range::OpenUnit, &S::top_p>,
     "nucleus sampling mass in (0, 1]; default 0.85"},
    {"--top-k", "K", Value::Required,
     setCount<kI32, kR, kGen, kSampling, &S::top_k>,
     "keep the K most likely tokens; 0 (default) = off"},
    {"--presence-penalty", "A", Value::Required,
     setNumber<Range::Any, &S::presence_penalty>,
     "ChatRWKV alpha_presence (default 0.2)"},
    {"--frequency-penalty", "A", Value::Required,
     setNumber<Range::Any, &S::frequency_penalty>,
     "ChatRWKV alpha_frequency (default 0.2)"},
    {"--penalty-decay", "D", Value::Required,
     setNumber<Range::Unit, &S::penalty_decay>,
     "ChatRWKV alpha_decay (default 0.996)"},
    {"--seed", "S", Value::Required,
     given<&R::seed_given, setCount<kU64, kR, kGen, kSampling, &S::seed>>,
     "seed of the sampler's PRNG (default: from the\n"
     "clock; --verbose prints it)"},
    {"--stop", "STR", Value::Required,
     [](Options &o, const char *v) {
       if (!*v)
         return std::string("the stop string is empty");
       o.stops.push_back(v);
       return std::string();
     },
     "stop when the output contains STR (repeatable;\n"
     "STR is not printed)"},
    {"--stop-token", "ID", Value::Required,
     [](Options &o, const char *v) {
       uint64_t id;
       if (!parseUnsigned(v, id, uint64_t(INT32_MAX)))
         return notA(v, "a token id");
       o.stopTokens.push_back(int32_t(id));
       return std::string();
     },
     "stop when token ID is sampled (repeatable; the\n"
     "end-of-text token 0 of world/20b always stops)"},
    {"--chat", "", Value::None, setFlag<kR, &R::chat>,
     "interactive chat on stdin (\"User: ...\\n\\n\n"
     "Assistant:\"), the state kept between turns;\n"
     "PROMPT, if any, is fed first"},
    {"--ppl", "FILE", Value::Required, setText<kR, &R::ppl_file>,
     "print the perplexity of the text in FILE\n"
     "(sequence mode, all positions' logits, in\n"
     "chunks of --chunk tokens, default as --chunk)"},
    {"--tokenize", "TEXT", Value::Required, setText<kR, &R::tokenize>,
     "print the token ids of TEXT"},
    {"--detokenize", "LIST", Value::Required,
     given<&R::has_detokenize, setIds<&Options::detokenize>>,
     "print the text of comma-separated token ids"},
    {"--verbose", "", Value::None, setFlag<kR, &R::verbose>,
     "print the device, prompt and generation\n"
     "tokens/s to stderr (also -v)"},
    {"-v", "", Value::None, setFlag<kR, &R::verbose>, nullptr},
    // ---- token ids and the model
    {"--tokens", "LIST", Value::Required,
     given<&R::has_tokens, setIds<&Options::tokens>>,
     "the prompt as comma-separated token ids, e.g.\n"
     "--tokens 34,105,110 (each in 0..n_vocab-1)"},
    {"--logits-out", "FILE", Value::Required, setText<kR, &R::logits_out>,
     "write the logits after the last token to FILE\n"
     "as n_vocab raw little-endian float32 values"},
    {"--print-logits", "", Value::None, setFlag<kR, &R::print_logits>,
     "print the logits after the last token, one per\n"
     "line (%.6f)"},
    {"--mode", "rnn|seq", Value::Required,
     [](Options &o, const char *v) {
       if (strcmp(v, "rnn") && strcmp(v, "seq"))
         return notA(v, "rnn or seq");
       o.r.mode = strcmp(v, "rnn") ? RWKV_EVAL_SEQ : RWKV_EVAL_RNN;
       return std::string();
     },
     "rnn: one token at a time (forward_one);\n"
     "seq: chunks of tokens (forward_seq); default seq"},
    {"--chunk", "N", Value::Required,
     given<&R::chunk_given, setCount<kU64, kR, &R::chunk>>,
     "seq mode: at most N tokens per forward_seq call\n"
     "(default 0: 16, or 128 for a model of more than\n"
     "64 MiB of weights; capped so that scratch memory\n"
     "stays bounded, see docs/runtime.md)"},
    {"--state-in", "FILE", Value::Required, setText<kR, &R::state_in>,
     "start from the state saved in FILE instead of\n"
     "the initial state (also for PROMPT and --chat)"},
    {"--state-out", "FILE", Value::Required, setText<kR, &R::state_out>,
     "save the state after the tokens (after the\n"
     "generation, after the chat) to FILE"},
    {"--bench", "[N]", Value::Optional,
     [](Options &o, const char *v) {
       o.r.bench = 1;
       if (!v)
         return std::string(); // the default count
       return parseUnsigned(v, o.r.bench_tokens) && o.r.bench_tokens != 0
                  ? std::string()
                  : notA(v, "a positive integer");
     },
     "measure decode tokens/s (N tokens one at a time,\n"
     "each the argmax of the last logits) and prefill\n"
     "tokens/s (N tokens in chunks of the default\n"
     "size, and of --chunk if given); print the times\n"
     "and the peak memory; default N = 512"},
    {"--device", "auto|cpu|cuda", Value::Required,
     [](Options &o, const char *v) {
       if (rwkv_device_from_name(v) < 0)
         return notA(v, "auto, cpu or cuda");
       o.r.device = v;
       return std::string();
     },
     "where the model runs: cuda (its CUDA kernels on\n"
     "GPU 0), cpu, or auto (default; $RWKV_DEVICE):\n"
     "CUDA when the model has it and a driver and\n"
     "GPU are usable, else the CPU"},
    {"--threads", "N", Value::Required,
     [](Options &o, const char *v) {
       uint64_t n;
       if (!parseUnsigned(v, n, 4096))
         return notA(v, "a thread count (0..4096)");
       o.threads = int(n);
       return std::string();
     },
     "threads of the model's large products and\n"
     "recurrences (default 0: the cores this process\n"
     "may run on)"},
    {"--info", "", Value::None, setFlag<kR, &R::info>,
     "print the model's descriptor: versions, sizes,\n"
     "hash, weights, backends, CUDA images, slots"},
    {"--help", "", Value::None, setFlag<&Options::help>, "print this help"},
    // ---- the server (docs/serving.md)
    {"--serve", "", Value::None, setFlag<&Options::serve>,
     "serve the OpenAI API over HTTP: POST\n"
     "/v1/completions, /v1/chat/completions; GET\n"
     "/v1/models, /health, /metrics (until Ctrl-C)"},
    {"--host", "ADDR", Value::Required,
     setText<&Options::server, &rwkv_server_params::host>,
     "address to listen on (default 127.0.0.1)"},
    {"--port", "N", Value::Required,
     setCount<65535, &Options::server, &rwkv_server_params::port>,
     "port to listen on (default 8080; 0: any free)"},
    {"--parallel", "N", Value::Required,
     [](Options &o, const char *v) {
       uint64_t n;
       if (!parseUnsigned(v, n, 4096) || n == 0)
         return notA(v, "a count in 1..4096");
       o.server.parallel = size_t(n);
       return std::string();
     },
     "sequences decoded together, one batch per\n"
     "step (default 8)"},
    {"--state-cache", "SIZE|URL", Value::Required,
     setText<&Options::server, &rwkv_server_params::state_cache>,
     "keep each conversation's state: in memory up\n"
     "to SIZE (e.g. 256M, the default; 0: off), or\n"
     "in Redis: redis://HOST:PORT (shared by\n"
     "replicas)"},
    {"--queue", "N", Value::Required,
     setCount<1u << 20, &Options::server, &rwkv_server_params::queue>,
     "requests waiting for a slot; beyond: 503\n"
     "(default 64)"},
    {"--max-prompt", "N", Value::Required,
     [](Options &o, const char *v) {
       uint64_t n;
       if (!parseUnsigned(v, n) || n == 0)
         return notA(v, "a positive integer");
       o.server.max_prompt_tokens = size_t(n);
       return std::string();
     },
     "longest prompt in tokens; longer: 413\n"
     "(default 32768)"},
    {"--timeout", "S", Value::Required,
     [](Options &o, const char *v) {
       uint64_t n;
       if (!parseUnsigned(v, n, 1u << 30) || n == 0)
         return notA(v, "a positive number of seconds");
       o.server.timeout_s = double(n);
       return std::string();
     },
     "a request's time limit in seconds, queue\n"
     "included (default 600)"},
};
/// kOptions[0, kTextOptions) are the text options, the rest the model's
/// (from --tokens on).
constexpr size_t kTextOptions = 18;
static_assert(std::string_view(kOptions[kTextOptions].name) == "--tokens",
              "kTextOptions must point at --tokens");
/// kOptions[kServeOptions, end) are the server's.
constexpr size_t kServeOptions = std::size(kOptions) - 8;
static_assert(std::string_view(kOptions[kServeOptions].name) == "--serve",
              "kServeOptions must point at --serve");

void printOptions(size_t begin, size_t end) {
  for (const Option *opt = kOptions + begin; opt != kOptions + end; ++opt) {
    if (!opt->help)
      continue; // an alias, named in the help of the option it stands for
    std::string head = opt->name;
    if (*opt->metavar)
      head += (head.empty() ? "" : " ") + std::string(opt->metavar);
    std::string help = opt->help;
    size_t nl = help.find('\n');
    fmt::print("  {:<18}  {}\n", head, help.substr(0, nl));
    for (; nl != std::string::npos; nl = help.find('\n', nl + 1))
      fmt::print("{:22}{}\n", "",
                 help.substr(nl + 1, help.find('\n', nl + 1) - nl - 1));
  }
}

void printHelp(const char *prog) {
  fmt::print("usage: {} [options] [\"PROMPT\"]\n\n"
             "Generates text from PROMPT with the RWKV model and tokenizer "
             "compiled\ninto this executable, or runs the model on token ids "
             "(--tokens).\n\ntext generation:\n",
             prog);
  printOptions(0, kTextOptions);
  fmt::print("  Ctrl-C stops the generation (in --chat: the reply; at the "
             "User:\n  prompt, the chat) cleanly; --state-out still saves the "
             "state.\n\ntoken ids and the model:\n");
  printOptions(kTextOptions, kServeOptions);
  fmt::print("\nthe server (the model's device, --threads and --chunk apply):\n");
  printOptions(kServeOptions, std::size(kOptions));
  fmt::print("\nOptions taking a value accept --opt VALUE and --opt=VALUE; "
             "'--' ends\nthe options (for a prompt that starts with '-').\n"
             "Exit status: 0 success, 1 runtime error, 2 command-line "
             "error.\n");
}

/// Parses argv into `o`. Returns -1 to go on, else the exit status.
int parseArgs(int argc, char **argv, Options &o, const char *prog) {
  auto usage = [&](const std::string &message) {
    return rwkv_cli_error(prog, RWKV_EXIT_USAGE, message.c_str());
  };
  bool optionsEnded = false;
  for (int i = 1; i < argc; ++i) {
    const char *arg = argv[i];
    if (!optionsEnded && !strcmp(arg, "--")) {
      optionsEnded = true;
      continue;
    }
    if (optionsEnded || arg[0] != '-' || !arg[1] ||
        (arg[1] >= '0' && arg[1] <= '9')) {
      if (o.r.prompt)
        return usage(fmt::format("unexpected argument '{}': give one prompt "
                                 "(quote it if it has spaces)",
                                 arg));
      o.r.prompt = arg;
      continue;
    }
    // --opt=VALUE: the value points into argv.
    const char *eq = arg[1] == '-' ? strchr(arg, '=') : nullptr;
    std::string name = eq ? std::string(arg, eq) : std::string(arg);
    const char *value = eq ? eq + 1 : nullptr;
    const Option *opt = nullptr;
    for (const Option &candidate : kOptions)
      if (*candidate.name && name == candidate.name)
        opt = &candidate;
    if (!opt)
      return usage(fmt::format("unknown option '{}'", name));
    if (opt->value == Value::None && value)
      return usage(fmt::format("{} takes no value", name));
    if (opt->value == Value::Required && !value) {
      if (i + 1 >= argc)
        return usage(fmt::format("{} needs a value", name));
      value = argv[++i];
    }
    if (opt->value == Value::Optional && !value && i + 1 < argc &&
        argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9')
      value = argv[++i];
    std::string complaint = opt->set(o, value);
    if (!complaint.empty())
      return usage(fmt::format("{}: {}", name, complaint));
  }
  return -1;
}

} // namespace

int main(int argc, char **argv) {
  const char *prog = "model";
  if (argc > 0 && argv[0]) {
    const char *slash = strrchr(argv[0], '/');
    prog = slash ? slash + 1 : argv[0];
  }
  Options o;
  if (int status = parseArgs(argc, argv, o, prog); status >= 0)
    return status;
  if (o.help) {
    printHelp(prog);
    return RWKV_EXIT_OK;
  }
  rwkv_cli_request &r = o.r;
  r.gen.stop_strings = o.stops.data();
  r.gen.n_stop_strings = o.stops.size();
  r.gen.stop_tokens = o.stopTokens.data();
  r.gen.n_stop_tokens = o.stopTokens.size();
  r.tokens = o.tokens.data();
  r.n_tokens = o.tokens.size();
  r.detokenize = o.detokenize.data();
  r.n_detokenize = o.detokenize.size();
  if (o.threads >= 0)
    rwkv_set_threads(o.threads);
  if (o.serve) {
    if (r.prompt || r.prompt_file || r.chat || r.ppl_file || r.tokenize ||
        r.has_detokenize || r.has_tokens || r.bench || r.info)
      return rwkv_cli_error(prog, RWKV_EXIT_USAGE,
                            "--serve takes no prompt and none of -f, --chat, "
                            "--ppl, --tokenize, --detokenize, --tokens, "
                            "--bench, --info");
    if (r.chunk_given && r.chunk)
      o.server.prefill_chunk = r.chunk;
    return rwkv_serve(&o.server, r.device, prog);
  }
  return rwkv_cli_run(&r, prog);
}
