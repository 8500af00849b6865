/*===- rwkv_cli.h - The command line of a compiled model, as data ---------===*
 *
 * What `NAME [options] ["PROMPT"]` asks for, as a request that the library
 * checks and runs; runtime/main.cpp only parses argv into one:
 *
 *   rwkv_cli_request r;
 *   rwkv_cli_request_default(&r);
 *   r.prompt = "Hello";                       // ... from the options
 *   return rwkv_cli_run(&r, "NAME");          // the exit status
 *
 * rwkv_cli_run prints what the executable prints (stdout) and its errors
 * (stderr, "NAME: error: MESSAGE"), and returns the exit status:
 * RWKV_EXIT_OK, RWKV_EXIT_ERROR (weights, state files, I/O, the tokenizer)
 * or RWKV_EXIT_USAGE (options that do not combine, a value out of range for
 * the model, text that is not UTF-8; followed by a hint to run --help).
 * docs/runtime.md, "The executable", lists the options.
 *
 * Ownership: the request only points to the caller's strings and arrays,
 * which must stay valid during the call. Thread-safety: rwkv_cli_run is the
 * process's command line: it installs SIGINT/SIGTERM handlers and writes to
 * stdout and stderr; call it from one thread.
 *
 *===----------------------------------------------------------------------===*/

#ifndef RWKV_CLI_H
#define RWKV_CLI_H

#include "rwkv_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Exit statuses of the executable. */
#define RWKV_EXIT_OK 0
#define RWKV_EXIT_ERROR 1 /* a runtime error */
#define RWKV_EXIT_USAGE 2 /* a command-line error */

typedef struct rwkv_cli_request {
  /* Text (the tokenizer linked into the executable). */
  const char *prompt;       /* PROMPT (UTF-8, NUL-terminated), or NULL */
  const char *prompt_file;  /* -f FILE, or NULL */
  rwkv_generate_params gen; /* sampling, -n, --stop, --stop-token */
  int seed_given;           /* 0: gen.sampling.seed comes from the clock */
  int chat;                 /* --chat: turns read from stdin */
  const char *ppl_file;     /* --ppl FILE, or NULL */
  const char *tokenize;     /* --tokenize TEXT, or NULL */
  const int64_t *detokenize; /* (n_detokenize) --detokenize ids */
  size_t n_detokenize;
  int has_detokenize;
  int verbose; /* the seed and the token rates to stderr */
  /* Token ids and the model. */
  const int64_t *tokens; /* (n_tokens) --tokens ids, checked against n_vocab */
  size_t n_tokens;
  int has_tokens;
  const char *logits_out; /* --logits-out FILE, or NULL */
  int print_logits;
  int mode;         /* enum rwkv_eval_mode; default RWKV_EVAL_SEQ */
  size_t chunk;     /* --chunk; 0: rwkv_default_chunk */
  int chunk_given;  /* --bench measures --chunk too */
  const char *state_in, *state_out; /* or NULL */
  int bench;
  uint64_t bench_tokens; /* default 512 */
  int info;
  const char *device; /* --device auto|cpu|cuda; NULL: $RWKV_DEVICE, else
                         auto (rwkv_model_open_device) */
} rwkv_cli_request;

/* Nothing asked for: rwkv_generate_params_default, mode RWKV_EVAL_SEQ, 512
 * bench tokens, every other field zero or NULL. */
void rwkv_cli_request_default(rwkv_cli_request *r);

/* Whether the request's options combine, before any model or tokenizer is
 * opened: the device (--device, else $RWKV_DEVICE) is auto, cpu or cuda; a
 * prompt, -f, --chat, --ppl, --tokenize or --detokenize with
 * --tokens, --bench or the logits options; an empty prompt; the options
 * that need --tokens without it; nothing to do; a token id out of the
 * model's range. Returns RWKV_EXIT_OK, or RWKV_EXIT_USAGE with the message
 * in `err`. */
int rwkv_cli_check(const rwkv_cli_request *r, char *err, size_t errlen);

/* Parses a --tokens or --detokenize list: comma-separated decimal integers
 * in [-2^31 + 1, 2^31 - 1], blanks around each allowed ("34, 105,110").
 * Writes min(n, cap) ids to `ids` and their count n to `*n_ids` (cap 0 and
 * ids NULL size the buffer). Returns RWKV_OK, or RWKV_ERROR_ARGUMENT with
 * "item K, 'TEXT', is not a token id (...)" in `err`. Range checks against
 * a vocabulary are rwkv_cli_check's and the tokenizer's. */
int rwkv_cli_parse_ids(const char *list, int64_t *ids, size_t cap,
                       size_t *n_ids, char *err, size_t errlen);

/* Prints "PROG: error: MESSAGE" to stderr and, for RWKV_EXIT_USAGE, the hint
 * "(run 'PROG --help' for the options)"; returns `status`. */
int rwkv_cli_error(const char *prog, int status, const char *message);

/* Runs the request as the executable `prog` (the name in messages): --info
 * first, then rwkv_cli_check, then the tokenizer commands, the text (prompt,
 * -f, --chat, --ppl; Ctrl-C ends a generation cleanly and --state-out still
 * saves), or the token ids (--tokens, --logits-out, --print-logits) and
 * --bench. Every write to stdout is checked: a failed one is an error.
 * Returns the exit status. */
int rwkv_cli_run(const rwkv_cli_request *r, const char *prog);

#ifdef __cplusplus
}
#endif

#endif /* RWKV_CLI_H */
