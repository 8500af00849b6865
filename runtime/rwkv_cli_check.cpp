//===- rwkv_cli_check.cpp - Command-line values and their combinations ----===//
//
// rwkv_cli_check: the command-line errors that the parser cannot see (it
// reads one option at a time) and that need no model or tokenizer opened:
// options that do not combine, nothing to do, token ids past the vocabulary
// of the linked model's descriptor. rwkv_cli_error prints any of them;
// rwkv_cli_parse_ids reads an id list.
//
//===----------------------------------------------------------------------===//

#include "rwkv_cli.h"
#include "rwkv_internal.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

bool textMode(const rwkv_cli_request &r) {
  return r.prompt || r.prompt_file || r.chat || r.ppl_file || r.tokenize ||
         r.has_detokenize;
}

} // namespace

extern "C" {

void rwkv_cli_request_default(rwkv_cli_request *r) {
  *r = rwkv_cli_request{};
  rwkv_generate_params_default(&r->gen);
  r->mode = RWKV_EVAL_SEQ;
  r->bench_tokens = 512;
}

int rwkv_cli_check(const rwkv_cli_request *r, char *err, size_t errlen) {
  if (r->device && rwkv_device_from_name(r->device) < 0)
    return RWKV_FAIL(err, errlen, RWKV_EXIT_USAGE,
                     "--device: '{}' is not auto, cpu or cuda", r->device);
  const char *env = getenv("RWKV_DEVICE");
  if (!r->device && env && *env && rwkv_device_from_name(env) < 0)
    return RWKV_FAIL(err, errlen, RWKV_EXIT_USAGE,
                     "RWKV_DEVICE='{}' is not auto, cpu or cuda", env);
  if (textMode(*r)) {
    if (r->has_tokens || r->bench || r->logits_out || r->print_logits)
      return RWKV_FAIL(err, errlen, RWKV_EXIT_USAGE,
                       "--tokens, --bench, --logits-out and --print-logits "
                       "do not combine with a prompt, -f, --chat, --ppl, "
                       "--tokenize or --detokenize");
    if (r->prompt && !*r->prompt)
      return RWKV_FAIL(err, errlen, RWKV_EXIT_USAGE,
                       "the prompt is empty: give some text (or --chat, or "
                       "-f FILE)");
    return RWKV_EXIT_OK;
  }
  if (!r->has_tokens) {
    if (r->logits_out || r->print_logits || r->state_in || r->state_out)
      return RWKV_FAIL(err, errlen, RWKV_EXIT_USAGE,
                       "--logits-out, --print-logits, --state-in and "
                       "--state-out need --tokens");
    if (!r->bench)
      return RWKV_FAIL(err, errlen, RWKV_EXIT_USAGE,
                       "nothing to do: give a prompt, --chat, --tokens, "
                       "--bench or --info");
  }
  const int64_t vocab = rwkv_model_descriptor.n_vocab;
  for (size_t i = 0; i < r->n_tokens; ++i)
    if (r->tokens[i] < 0 || r->tokens[i] >= vocab)
      return RWKV_FAIL(err, errlen, RWKV_EXIT_USAGE,
                       "--tokens: token {} (item {}) is out of range: the "
                       "vocabulary has {} tokens (0..{})",
                       r->tokens[i], i + 1, vocab, vocab - 1);
  return RWKV_EXIT_OK;
}

int rwkv_cli_parse_ids(const char *list, int64_t *ids, size_t cap,
                       size_t *n_ids, char *err, size_t errlen) {
  if (!list || !n_ids || (cap && !ids))
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                     "rwkv_cli_parse_ids: null list, ids or count");
  size_t n = 0;
  for (const char *item = list;; ++n) {
    const char *comma = strchr(item, ',');
    std::string text(item, comma ? size_t(comma - item) : strlen(item));
    size_t b = text.find_first_not_of(" \t");
    text = b == std::string::npos
               ? std::string()
               : text.substr(b, text.find_last_not_of(" \t") - b + 1);
    const char *digits = text.c_str() + (!text.empty() && text[0] == '-');
    size_t len = strlen(digits);
    if (len == 0 || len > 19 || strspn(digits, "0123456789") != len ||
        strtoull(digits, nullptr, 10) > uint64_t(INT32_MAX))
      return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                       "item {}, '{}', is not a token id (expected "
                       "comma-separated integers like 34,105,110)",
                       n + 1, text);
    int64_t v = strtoll(text.c_str(), nullptr, 10);
    if (n < cap)
      ids[n] = v;
    if (!comma)
      break;
    item = comma + 1;
  }
  *n_ids = n + 1;
  return RWKV_OK;
}

int rwkv_cli_error(const char *prog, int status, const char *message) {
  fmt::print(stderr, "{}: error: {}\n", prog, message);
  if (status == RWKV_EXIT_USAGE)
    fmt::print(stderr, "(run '{} --help' for the options)\n", prog);
  return status;
}

} // extern "C"
