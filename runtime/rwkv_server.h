/*===- rwkv_server.h - An OpenAI-compatible HTTP server over a model ------===*
 *
 * What `NAME --serve` runs (docs/serving.md), as a C API:
 *
 *   rwkv_server_params p;
 *   rwkv_server_params_default(&p);
 *   p.port = 0;                                   // any free port
 *   rwkv_server *s = rwkv_server_start(model, tok, &p, err, sizeof err);
 *   int port = rwkv_server_port(s);               // serving now
 *   ...
 *   rwkv_server_stop(s);
 *
 * Endpoints: POST /v1/completions, POST /v1/chat/completions (streamed as
 * server-sent events or not), GET /v1/models, GET /health, GET /metrics
 * (Prometheus text). One scheduler thread batches every active request into
 * one rwkv_eval_batch call per step (continuous batching, chunked prefill);
 * the state cache keeps the state after each conversation so that the next
 * turn prefills only its new tokens.
 *
 * Built with exceptions (cpp-httplib, nlohmann-json) in its own archive,
 * librwkv_server.a, with hiredis linked statically (librwkv_hiredis.a); no
 * exception leaves these functions.
 *
 * Ownership: the caller owns the server (rwkv_server_stop) and keeps
 * `model` and `tok` open until it is stopped. Thread-safety: the server
 * runs its own threads; each function may be called from any thread, one
 * rwkv_server_stop per server.
 *
 *===----------------------------------------------------------------------===*/

#ifndef RWKV_SERVER_H
#define RWKV_SERVER_H

#include "rwkv_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rwkv_server_params {
  const char *host;         /* address to listen on; "127.0.0.1" */
  int port;                 /* 8080; 0: any free port (rwkv_server_port) */
  size_t parallel;          /* sequences in the batch at once; 8 */
  size_t queue;             /* requests waiting for a slot; 64 (more: 503) */
  const char *state_cache;  /* "256M" (bytes, K/M/G = 1024^n) in memory,
                               "0" none, or "redis://HOST:PORT"; "256M" */
  size_t max_prompt_tokens; /* longer prompts: 413; 32768 */
  size_t prefill_chunk;     /* prompt tokens per sequence per step; 64 */
  double timeout_s;         /* a request's limit, queue included; 600 */
  const char *model_id;     /* the "model" of the API; NULL: the
                               descriptor's model_name */
  int log_requests;         /* one line per request to stderr; 1 */
} rwkv_server_params;

/* Fills `p` with the defaults above. */
void rwkv_server_params_default(rwkv_server_params *p);

typedef struct rwkv_server rwkv_server;

/* Opens the state cache, binds host:port and starts serving in threads of
 * its own. Returns a handle owned by the caller, or NULL with a message in
 * `err` (a bad parameter, the state cache unreachable, the port taken). */
rwkv_server *rwkv_server_start(const rwkv_model *model,
                               const rwkv_tokenizer *tok,
                               const rwkv_server_params *p, char *err,
                               size_t errlen);

/* The port the server listens on. */
int rwkv_server_port(const rwkv_server *s);

/* Stops listening, ends the requests in flight, joins the threads and
 * frees the server; accepts NULL. */
void rwkv_server_stop(rwkv_server *s);

/* The executable's --serve: opens the model on `device` ("auto", "cpu",
 * "cuda"; NULL: $RWKV_DEVICE, else auto) and the linked tokenizer, serves
 * until SIGINT or SIGTERM, and returns the exit status (RWKV_EXIT_*;
 * errors on stderr as "PROG: error: ..."). `model_id` NULL: PROG. */
int rwkv_serve(const rwkv_server_params *p, const char *device,
               const char *prog);

#ifdef __cplusplus
}
#endif

#endif /* RWKV_SERVER_H */
