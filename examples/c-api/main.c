/* A complete program on rwkvc's C API: open a model compiled with
 *
 *   rwkvc MODEL -emit=shared-lib -o librwkvmodel.so
 *
 * create a state handle, feed a prompt in sequence mode, then generate with
 * the library's sampler wiring, the text streamed through a callback that
 * never splits a UTF-8 character. Build:
 *
 *   cc -I<rwkvc>/runtime main.c -L. -lrwkvmodel -Wl,-rpath,'$ORIGIN' -o generate
 *   ./generate "prompt" [n_tokens] [seed]
 *
 * Ownership: the logits buffer is ours (sized by rwkv_n_vocab); the model,
 * tokenizer and state handles are freed at the end. The state handle keeps
 * the state where the model's backend wants it; rwkv_state_read would copy
 * it out in the host layout, rwkv_state_save_file to a file.
 */
#include "rwkv_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Receives generated text (whole UTF-8 characters); 0 = go on. */
static int print_text(void *user, const char *text, size_t n) {
  (void)user;
  fwrite(text, 1, n, stdout);
  fflush(stdout);
  return 0;
}

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
  rwkv_state *state = tok ? rwkv_state_new(model, err, sizeof err) : NULL;
  float *logits = malloc(n_vocab * sizeof(float));
  if (!tok || !state || !logits) {
    fprintf(stderr, "error: %s\n", logits ? err : "out of memory");
    goto done;
  }

  /* The prompt in sequence mode (whole), from the initial state. */
  if (rwkv_feed_text(state, tok, prompt, strlen(prompt), logits,
                     RWKV_EVAL_SEQ, 0, NULL, err, sizeof err) != RWKV_OK) {
    fprintf(stderr, "error: %s\n", err);
    goto done;
  }

  rwkv_generate_params params;
  rwkv_generate_params_default(&params);
  params.sampling.seed = seed;
  params.max_tokens = n_generate > 0 ? (uint64_t)n_generate : 0;
  fputs(prompt, stdout);
  rwkv_generate_result result;
  if (rwkv_generate(state, tok, logits, &params, print_text, NULL, &result,
                    err, sizeof err) != RWKV_OK) {
    fprintf(stderr, "\nerror: %s\n", err);
    goto done;
  }
  fputc('\n', stdout);
  status = 0;

done:
  free(logits);
  rwkv_state_free(state);
  rwkv_tokenizer_close(tok);
  rwkv_model_close(model);
  return status;
}
