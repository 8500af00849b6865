//===- rwkv_session.cpp - Text sessions -----------------------------------===//
//
// A session bundles what the text calls of rwkv_generate.cpp take (a state
// handle, a tokenizer, the logits after what the state has seen) with the
// totals of what was fed and generated:
//
//   rwkv_session_feed / _feed_file  ──▶ rwkv_feed_text / rwkv_feed_file
//   rwkv_session_generate           ──▶ rwkv_generate
//   rwkv_session_chat               ──▶ rwkv_chat_turn
//
// Built without exceptions; every failure is a status code plus a message.
//
//===----------------------------------------------------------------------===//

#include "rwkv_internal.h"
#include "rwkv_runtime.h"

#include <new>
#include <vector>

struct rwkv_session {
  const rwkv_tokenizer *tok;
  rwkv_state *state;
  std::vector<float> logits;     // (n_vocab) after what the state has seen
  rwkv_generate_result totals{}; // over every call
};

namespace {

void add(rwkv_generate_result &total, const rwkv_generate_result &r) {
  total.n_fed += r.n_fed;
  total.fed_ms += r.fed_ms;
  total.n_generated += r.n_generated;
  total.generate_ms += r.generate_ms;
  total.stop = r.stop;
}

/// Adds a call's counts to the session and copies them to `out`.
int finish(rwkv_session *s, int status, const rwkv_generate_result &r,
           rwkv_generate_result *out) {
  add(s->totals, r);
  if (out)
    *out = r;
  return status;
}

} // namespace

extern "C" {

rwkv_session *rwkv_session_new(const rwkv_model *model,
                               const rwkv_tokenizer *tok, char *err,
                               size_t errlen) {
  if (!model || !tok) {
    RWKV_SET_ERROR(err, errlen, "rwkv_session_new: null model or tokenizer");
    return nullptr;
  }
  if (rwkv_tokenizer_n_tokens(tok) > rwkv_n_vocab(model)) {
    RWKV_SET_ERROR(err, errlen,
                   "rwkv_session_new: the tokenizer has {} tokens, the model "
                   "{} logits",
                   rwkv_tokenizer_n_tokens(tok), rwkv_n_vocab(model));
    return nullptr;
  }
  auto *s = new (std::nothrow) rwkv_session{tok, nullptr, {}, {}};
  if (!s) {
    RWKV_SET_ERROR(err, errlen, "out of memory");
    return nullptr;
  }
  s->logits.assign(rwkv_n_vocab(model), 0.0f);
  s->state = rwkv_state_new(model, err, errlen);
  if (!s->state) {
    delete s;
    return nullptr;
  }
  return s;
}

void rwkv_session_free(rwkv_session *s) {
  if (!s)
    return;
  rwkv_state_free(s->state);
  delete s;
}

rwkv_state *rwkv_session_state(rwkv_session *s) {
  return s ? s->state : nullptr;
}

const float *rwkv_session_logits(const rwkv_session *s) {
  return s ? s->logits.data() : nullptr;
}

rwkv_generate_result rwkv_session_totals(const rwkv_session *s) {
  return s ? s->totals : rwkv_generate_result{};
}

int rwkv_session_feed(rwkv_session *s, const char *text, size_t len, int mode,
                      size_t chunk, char *err, size_t errlen) {
  if (!s)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                     "rwkv_session_feed: null session");
  rwkv_generate_result r{};
  int status = rwkv_feed_text(s->state, s->tok, text, len, s->logits.data(),
                              mode, chunk, &r, err, errlen);
  return finish(s, status, r, nullptr);
}

int rwkv_session_feed_file(rwkv_session *s, const char *path, int mode,
                           size_t chunk, rwkv_progress_fn progress,
                           void *user, char *err, size_t errlen) {
  if (!s)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                     "rwkv_session_feed_file: null session");
  rwkv_generate_result r{};
  int status = rwkv_feed_file(s->state, s->tok, path, s->logits.data(), mode,
                              chunk, progress, user, &r, err, errlen);
  return finish(s, status, r, nullptr);
}

int rwkv_session_generate(rwkv_session *s, const rwkv_generate_params *p,
                          rwkv_emit_fn emit, void *user,
                          rwkv_generate_result *result, char *err,
                          size_t errlen) {
  if (!s)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                     "rwkv_session_generate: null session");
  rwkv_generate_result r{};
  int status = rwkv_generate(s->state, s->tok, s->logits.data(), p, emit,
                             user, &r, err, errlen);
  return finish(s, status, r, result);
}

int rwkv_session_chat(rwkv_session *s, const char *message, size_t len,
                      const rwkv_generate_params *p, int mode, size_t chunk,
                      rwkv_emit_fn emit, void *user,
                      rwkv_generate_result *result, char *err,
                      size_t errlen) {
  if (!s)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                     "rwkv_session_chat: null session");
  rwkv_generate_result r{};
  int status = rwkv_chat_turn(s->state, s->tok, s->logits.data(), message,
                              len, p, mode, chunk, emit, user, &r, err,
                              errlen);
  return finish(s, status, r, result);
}

} // extern "C"
