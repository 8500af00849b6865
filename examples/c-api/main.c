/* A complete program on rwkvc's C API: open a model compiled with
 *
 *   rwkvc MODEL -emit=shared-lib -o librwkvmodel.so
 *
 * tokenize a prompt, evaluate it in sequence mode, then generate with the
 * sampler, one token at a time, printing UTF-8 safely. Build:
 *
 *   cc -I<rwkvc>/runtime main.c -L. -lrwkvmodel -Wl,-rpath,'$ORIGIN' -o generate
 *   ./generate "prompt" [n_tokens] [seed]
 *
 * Ownership: every buffer below is ours (sized by the query functions); the
 * model, tokenizer and sampler handles are freed at the end.
 */
#include "rwkv_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  const char *prompt = argc > 1 ? argv[1] : "The";
  int n_generate = argc > 2 ? atoi(argv[2]) : 32;
  uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
  char err[256];
  int status = 1;

  rwkv_model *model = rwkv_model_open(err, sizeof err);
  if (!model) {
    fprintf(stderr, "error: %s\n", err);
    return 1;
  }
  size_t n_vocab = rwkv_n_vocab(model);
  rwkv_tokenizer *tok = rwkv_tokenizer_open_linked(n_vocab, err, sizeof err);
  float *state = malloc(rwkv_state_size(model));
  float *logits = malloc(n_vocab * sizeof(float));
  int32_t *ids = NULL;
  rwkv_sampler *sampler = NULL;
  if (!tok || !state || !logits) {
    fprintf(stderr, "error: %s\n", tok ? "out of memory" : err);
    goto done;
  }

  /* Tokenize: the first call sizes the buffer. */
  size_t n_ids = 0;
  if (rwkv_tokenize(tok, prompt, strlen(prompt), NULL, 0, &n_ids, err,
                    sizeof err) != RWKV_OK || n_ids == 0) {
    fprintf(stderr, "error: %s\n", n_ids ? err : "empty prompt");
    goto done;
  }
  ids = malloc(n_ids * sizeof(int32_t));
  rwkv_tokenize(tok, prompt, strlen(prompt), ids, n_ids, &n_ids, err,
                sizeof err);

  /* The prompt in sequence mode, from the initial state. */
  rwkv_state_reset(model, state);
  if (rwkv_eval(model, state, ids, n_ids, logits, RWKV_EVAL_SEQ, 0, err,
                sizeof err) != RWKV_OK) {
    fprintf(stderr, "error: %s\n", err);
    goto done;
  }

  rwkv_sampler_params params;
  rwkv_sampler_params_default(&params);
  params.seed = seed;
  sampler = rwkv_sampler_create(n_vocab, &params, err, sizeof err);
  if (!sampler) {
    fprintf(stderr, "error: %s\n", err);
    goto done;
  }

  fputs(prompt, stdout);
  rwkv_utf8_stream stream;
  rwkv_utf8_stream_init(&stream);
  for (int i = 0; i < n_generate; ++i) {
    int32_t id = rwkv_sampler_sample(sampler, logits);
    if (id == rwkv_tokenizer_eos(tok))
      break;
    rwkv_sampler_accept(sampler, id, 1.0f);
    const uint8_t *bytes;
    size_t n = rwkv_token_bytes(tok, id, &bytes);
    char *out = malloc(n + 4); /* push needs n + 4 bytes */
    if (!out)
      goto done;
    fwrite(out, 1, rwkv_utf8_stream_push(&stream, bytes, n, out), stdout);
    free(out);
    fflush(stdout);
    if (rwkv_eval(model, state, &id, 1, logits, RWKV_EVAL_RNN, 0, err,
                  sizeof err) != RWKV_OK) {
      fprintf(stderr, "\nerror: %s\n", err);
      goto done;
    }
  }
  char tail[4];
  fwrite(tail, 1, rwkv_utf8_stream_flush(&stream, tail), stdout);
  fputc('\n', stdout);
  status = 0;

done:
  rwkv_sampler_free(sampler);
  free(ids);
  free(logits);
  free(state);
  rwkv_tokenizer_close(tok);
  rwkv_model_close(model);
  return status;
}
