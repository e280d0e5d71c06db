/* http.h: HTTP over libcurl with timeouts, a reply-size cap and retries
 * (agents/http.c). Two users: the agents (POST to an LLM API) and the
 * runtime's Hub client (GET of a config.json, runtime/hub.c), which is why
 * it has a header of its own: the runtime does not depend on the agents.
 */
#ifndef LM_HTTP_H
#define LM_HTTP_H

#include "common.h"

#include <stdio.h>

/* ===== http.c ===== */

/* One POST, or a GET when body is NULL. */
typedef struct HttpRequest {
  const char *url;
  const char *const *headers; /* "Name: value" lines, NULL-terminated */
  const char *body;
  size_t body_len;
} HttpRequest;

/* Limits and retry policy; see http_options_from_env for the variables. */
typedef struct HttpOptions {
  long connect_timeout_ms; /* LMGEN_CONNECT_TIMEOUT_MS, default 10 s */
  long timeout_ms;         /* LMGEN_TIMEOUT_MS: one attempt, default 300 s */
  size_t max_reply_bytes;  /* LMGEN_MAX_REPLY_BYTES, default 4 MiB */
  int max_attempts;        /* LMGEN_MAX_ATTEMPTS, default 3 */
  long retry_base_ms;      /* LMGEN_RETRY_BASE_MS: first backoff, default 1 s */
  long retry_max_ms;       /* LMGEN_RETRY_MAX_MS: longest wait, default 60 s */
} HttpOptions;

/* Why an attempt produced no response. */
typedef enum {
  HF_NONE,      /* a response arrived */
  HF_CONNECT,   /* could not connect, or the connection dropped: retried */
  HF_TIMEOUT,   /* no complete reply within timeout_ms: not retried */
  HF_TOO_LARGE, /* the reply is larger than max_reply_bytes: not retried */
  HF_OTHER,     /* bad URL, TLS, protocol...: not retried */
} HttpFailure;

typedef struct HttpResponse {
  long status;      /* HTTP status of the last attempt; 0 if none arrived */
  long retry_after; /* seconds asked by Retry-After; -1 if absent */
  int attempts;     /* attempts made */
  Buf body;         /* body of the last attempt, at most max_reply_bytes */
  Buf headers;      /* header lines of the last attempt (at most 64 KiB) */
} HttpResponse;

/* A transport sends one attempt; tests inject a fake (the TCCErrorFunc /
 * dictType pattern). */
typedef struct HttpTransport {
  /* Returns 0 when a response arrived (whatever its status), else -1 with
   * *fail and err set. resp->body is reset by the caller. */
  int (*send)(void *ctx, const HttpRequest *req, const HttpOptions *opt,
              HttpResponse *resp, HttpFailure *fail, Error *err);
  /* Wait before a retry. */
  void (*sleep_ms)(void *ctx, long ms);
  void *ctx;
} HttpTransport;

void http_options_default(HttpOptions *o);
/* Defaults, overridden by the LMGEN_* variables above (decimal integers;
 * anything else is an error naming the variable). */
int http_options_from_env(HttpOptions *o, Error *err);
/* libcurl is loaded on first use (dlopen of libcurl.so.4, or $LM_LIBCURL),
 * never linked: programs that do not reach the network never pay for it.
 * http_global_init loads it and runs curl_global_init; -1 with err saying
 * the library is missing and which package has it. Call it once before
 * using the libcurl transport, and http_global_cleanup after. */
int http_global_init(Error *err);
void http_global_cleanup(void);
/* True once libcurl has been loaded (tests: a model file never loads it). */
bool http_curl_loaded(void);
/* The libcurl transport (one easy handle per attempt); an attempt without
 * the library fails with http_global_init's message. Borrowed, static. */
const HttpTransport *http_curl(void);
/* True if the URL's host is 127.0.0.1 (or 127.x), localhost or ::1: such
 * requests never go through a proxy, other hosts honour the environment's
 * http_proxy / https_proxy / no_proxy. */
bool http_is_loopback_url(const char *url);
void http_response_init(HttpResponse *r);
void http_response_free(HttpResponse *r);
/* POST with retries: 429 and 5xx responses and connection failures are
 * retried with exponential backoff (retry_base_ms, doubled each time; a
 * Retry-After in seconds is honoured when longer), up to max_attempts in
 * all; other statuses, timeouts and oversized replies are final. Returns
 * 0 when a response arrived (resp->status tells which: the caller decides
 * what a 4xx means), -1 when none did (err says why, after how many
 * attempts). Retries are announced on `log` (may be NULL). */
int http_post(const HttpTransport *t, const HttpRequest *req,
              const HttpOptions *opt, HttpResponse *resp, FILE *log,
              Error *err);
/* GET with the same retries. */
int http_get(const HttpTransport *t, const char *url,
             const char *const *headers, const HttpOptions *opt,
             HttpResponse *resp, FILE *log, Error *err);
/* The value of response header `name` (case-insensitive; the last one when
 * repeated), trimmed, into out. False if absent. */
bool http_header(const HttpResponse *r, const char *name, char *out,
                 size_t outsz);

#endif
