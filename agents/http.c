/* http.c: POST over libcurl with timeouts, a reply-size cap and retries.
 *
 * One easy handle per attempt (curl docs/examples), the body written into a
 * Buf that refuses to grow past max_reply_bytes, both the CURLcode and the
 * HTTP status checked (a 500 is CURLE_OK to libcurl). The retry policy
 * (http_post) sits above a transport interface so tests drive it with a
 * fake transport and a fake clock, and drive the libcurl transport itself
 * against a real server on 127.0.0.1.
 *
 * Proxies: requests to loopback hosts never use one (CURLOPT_NOPROXY "*"),
 * so a test server or a local llama.cpp works whatever http_proxy says;
 * every other host gets libcurl's default, which honours http_proxy,
 * https_proxy, all_proxy and no_proxy from the environment.
 *
 * Nothing here prints a header: the API key, which travels in one, never
 * reaches a message.
 *
 * libcurl is loaded on first use (dlopen of libcurl.so.4, dlsym of the
 * functions below), not linked: its dynamic linking costs every process
 * about 5 ms, and only a Hub download or an agent's request needs it.
 * <curl/curl.h> is read for the types and constants only. A missing
 * library is an error naming it and the Debian package, never a crash.
 */
#include "agents.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ----- libcurl, loaded on first use ----- */

/* The libcurl functions used, by the names libcurl gives them minus
 * "curl_" (calling them through these pointers also keeps clear of
 * curl.h's type-checking macros of the same names). */
typedef struct CurlApi {
  CURLcode (*global_init)(long flags);
  void (*global_cleanup)(void);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
  CURLcode (*easy_perform)(CURL *h);
  CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
  const char *(*easy_strerror)(CURLcode rc);
  void (*easy_cleanup)(CURL *h);
  struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
  void (*slist_free_all)(struct curl_slist *l);
  CURLU *(*url)(void);
  CURLUcode (*url_set)(CURLU *u, CURLUPart what, const char *part,
                       unsigned int flags);
  CURLUcode (*url_get)(const CURLU *u, CURLUPart what, char **part,
                       unsigned int flags);
  void (*url_cleanup)(CURLU *u);
  void (*free)(void *p);
} CurlApi;

static CurlApi curl;
static int curl_state;         /* 0: not tried, 1: loaded, -1: failed */
static char curl_why[512];     /* why it failed */
static int curl_inits;         /* http_global_init calls not yet cleaned up */

/* The library loaded: $LM_LIBCURL when set (a packager's path; the tests
 * name a missing one), else libcurl.so.4, the soname of Debian's
 * libcurl4 (and of every libcurl since 7.16). */
static const char *curl_soname(void) {
  const char *env = getenv("LM_LIBCURL");
  return env && *env ? env : "libcurl.so.4";
}

static int curl_load(void) {
  if (curl_state)
    return curl_state > 0 ? 0 : -1;
  const char *name = curl_soname();
  void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    snprintf(curl_why, sizeof(curl_why),
             "libcurl is needed to reach the network and cannot be loaded "
             "(%s): install the Debian package libcurl4",
             e ? e : name);
    curl_state = -1;
    return -1;
  }
  static const struct {
    const char *name;
    size_t off;
  } fns[] = {
#define F(field, sym) {sym, offsetof(CurlApi, field)}
      F(global_init, "curl_global_init"),
      F(global_cleanup, "curl_global_cleanup"),
      F(easy_init, "curl_easy_init"),
      F(easy_setopt, "curl_easy_setopt"),
      F(easy_perform, "curl_easy_perform"),
      F(easy_getinfo, "curl_easy_getinfo"),
      F(easy_strerror, "curl_easy_strerror"),
      F(easy_cleanup, "curl_easy_cleanup"),
      F(slist_append, "curl_slist_append"),
      F(slist_free_all, "curl_slist_free_all"),
      F(url, "curl_url"),
      F(url_set, "curl_url_set"),
      F(url_get, "curl_url_get"),
      F(url_cleanup, "curl_url_cleanup"),
      F(free, "curl_free"),
#undef F
  };
  CurlApi api;
  for (size_t i = 0; i < LM_ARRAY_LEN(fns); i++) {
    void *p = dlsym(h, fns[i].name);
    if (!p) {
      snprintf(curl_why, sizeof(curl_why),
               "%s has no %s (libcurl 7.62 or later is needed): install the "
               "Debian package libcurl4",
               name, fns[i].name);
      dlclose(h);
      curl_state = -1;
      return -1;
    }
    /* object pointer -> function pointer, as dlsym's users must */
    memcpy((char *)&api + fns[i].off, &p, sizeof(p));
  }
  curl = api; /* the handle stays open: libcurl is used until exit */
  curl_state = 1;
  return 0;
}

int http_global_init(Error *err) {
  if (curl_load() < 0) {
    err_set(err, "%s", curl_why);
    return -1;
  }
  if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    err_set(err, "libcurl's global initialisation failed");
    return -1;
  }
  curl_inits++;
  return 0;
}

void http_global_cleanup(void) {
  if (curl_inits > 0) {
    curl_inits--;
    curl.global_cleanup();
  }
}

bool http_curl_loaded(void) { return curl_state > 0; }

void http_options_default(HttpOptions *o) {
  o->connect_timeout_ms = 10000;
  o->timeout_ms = 300000;
  o->max_reply_bytes = 4u << 20;
  o->max_attempts = 3;
  o->retry_base_ms = 1000;
  o->retry_max_ms = 60000;
}

/* A decimal integer from the environment within [lo, hi]; unset keeps *v. */
static int env_long(const char *name, long lo, long hi, long *v, Error *err) {
  const char *s = getenv(name);
  if (!s || !*s)
    return 0;
  char *end;
  errno = 0;
  long x = strtol(s, &end, 10);
  if (*s < '0' || *s > '9' || *end || errno || x < lo || x > hi) {
    err_set(err, "%s must be a whole number from %ld to %ld, not '%s'", name,
            lo, hi, s);
    return -1;
  }
  *v = x;
  return 0;
}

int http_options_from_env(HttpOptions *o, Error *err) {
  http_options_default(o);
  long attempts = o->max_attempts, max = (long)o->max_reply_bytes;
  if (env_long("LMGEN_CONNECT_TIMEOUT_MS", 1, 3600000, &o->connect_timeout_ms,
               err) < 0 ||
      env_long("LMGEN_TIMEOUT_MS", 1, 86400000, &o->timeout_ms, err) < 0 ||
      env_long("LMGEN_MAX_REPLY_BYTES", 1, 1L << 30, &max, err) < 0 ||
      env_long("LMGEN_MAX_ATTEMPTS", 1, 10, &attempts, err) < 0 ||
      env_long("LMGEN_RETRY_BASE_MS", 0, 600000, &o->retry_base_ms, err) < 0 ||
      env_long("LMGEN_RETRY_MAX_MS", 0, 3600000, &o->retry_max_ms, err) < 0)
    return -1;
  o->max_attempts = (int)attempts;
  o->max_reply_bytes = (size_t)max;
  return 0;
}

void http_response_init(HttpResponse *r) {
  r->status = 0;
  r->retry_after = -1;
  r->attempts = 0;
  buf_init(&r->body);
  buf_init(&r->headers);
}

void http_response_free(HttpResponse *r) {
  if (r) {
    buf_free(&r->body);
    buf_free(&r->headers);
  }
}

/* The header lines of the last response (a redirect is not followed, so
 * one response). Capped like the body. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  Buf *h = ud;
  size_t len = size * n;
  if (h->len + len > 65536)
    return 0;
  buf_append(h, p, len);
  return len;
}

bool http_header(const HttpResponse *r, const char *name, char *out,
                 size_t outsz) {
  size_t nl = strlen(name);
  const char *s = buf_str(&r->headers);
  bool found = false;
  while (*s) {
    const char *eol = strchr(s, '\n');
    size_t ll = eol ? (size_t)(eol - s) : strlen(s);
    if (ll > nl && s[nl] == ':' && strncasecmp(s, name, nl) == 0) {
      const char *v = s + nl + 1;
      const char *e = s + ll;
      while (v < e && (*v == ' ' || *v == '\t'))
        v++;
      while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
      size_t vl = (size_t)(e - v);
      if (vl >= outsz)
        vl = outsz - 1;
      memcpy(out, v, vl);
      out[vl] = '\0';
      found = true; /* keep looking: the last one wins */
    }
    s += ll + (eol ? 1 : 0);
  }
  return found;
}

int http_get(const HttpTransport *t, const char *url,
             const char *const *headers, const HttpOptions *opt,
             HttpResponse *resp, FILE *log, Error *err) {
  HttpRequest req = {.url = url, .headers = headers};
  return http_post(t, &req, opt, resp, log, err);
}

/* The URL's host, lowercased, or "" when it does not parse. */
static void url_host(const char *url, char *out, size_t outsz) {
  out[0] = '\0';
  if (curl_load() < 0)
    return; /* no parser: no host (the request itself says why) */
  CURLU *u = curl.url();
  char *host = NULL;
  if (u && curl.url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl.url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
    snprintf(out, outsz, "%s", host);
    for (char *p = out; *p; p++)
      if (*p >= 'A' && *p <= 'Z')
        *p = (char)(*p - 'A' + 'a');
  }
  curl.free(host);
  if (u)
    curl.url_cleanup(u);
}

bool http_is_loopback_url(const char *url) {
  char host[256];
  url_host(url, host, sizeof(host));
  struct in_addr a4;
  if (inet_pton(AF_INET, host, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  return strcmp(host, "localhost") == 0 || strcmp(host, "localhost.") == 0 ||
         strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* ----- the libcurl transport ----- */

typedef struct Sink {
  Buf *body;
  size_t max;
  bool too_large;
} Sink;

/* Append to the body unless that would pass the cap (getinmemory.c). */
static size_t on_write(char *p, size_t size, size_t n, void *ud) {
  Sink *s = ud;
  size_t len = size * n;
  if (s->body->len + len > s->max) {
    s->too_large = true;
    return 0; /* CURLE_WRITE_ERROR */
  }
  buf_append(s->body, p, len);
  return len;
}

static int curl_send(void *ctx, const HttpRequest *req, const HttpOptions *opt,
                     HttpResponse *resp, HttpFailure *fail, Error *err) {
  (void)ctx;
  if (curl_load() < 0) {
    *fail = HF_OTHER;
    err_set(err, "%s", curl_why);
    return -1;
  }
  char host[256];
  url_host(req->url, host, sizeof(host));
  CURL *h = curl.easy_init();
  if (!h) {
    *fail = HF_OTHER;
    err_set(err, "cannot create a libcurl handle");
    return -1;
  }
  struct curl_slist *hdrs = NULL;
  for (const char *const *p = req->headers; p && *p; p++)
    hdrs = curl.slist_append(hdrs, *p);
  hdrs = curl.slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
  char errbuf[CURL_ERROR_SIZE] = "";
  Sink sink = {.body = &resp->body, .max = opt->max_reply_bytes};

  curl.easy_setopt(h, CURLOPT_URL, req->url);
  curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  if (req->body) {
    curl.easy_setopt(h, CURLOPT_POST, 1L);
    curl.easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
    curl.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)req->body_len);
  } else {
    curl.easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  curl.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl.easy_setopt(h, CURLOPT_HEADERDATA, &resp->headers);
  curl.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl.easy_setopt(h, CURLOPT_USERAGENT, "lmgen (LM-Predictor)");
  curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl.easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl.easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, opt->connect_timeout_ms);
  curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, opt->timeout_ms);
  curl.easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                   (curl_off_t)opt->max_reply_bytes);
  if (http_is_loopback_url(req->url))
    curl.easy_setopt(h, CURLOPT_NOPROXY, "*");

  CURLcode rc = curl.easy_perform(h);
  int ret = 0;
  if (rc == CURLE_OK) {
    curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_off_t ra = 0;
    if (curl.easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
      resp->retry_after = (long)ra;
    *fail = HF_NONE;
  } else {
    ret = -1;
    const char *what = errbuf[0] ? errbuf : curl.easy_strerror(rc);
    curl_off_t connected = 0;
    curl.easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected);
    if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
      *fail = HF_TOO_LARGE;
      err_set(err,
              "the reply from %s is larger than %zu bytes "
              "(LMGEN_MAX_REPLY_BYTES)",
              host, opt->max_reply_bytes);
    } else if (rc == CURLE_OPERATION_TIMEDOUT && connected > 0) {
      *fail = HF_TIMEOUT;
      err_set(err, "no complete reply from %s within %ld ms (LMGEN_TIMEOUT_MS)",
              host, opt->timeout_ms);
    } else if (rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT ||
               rc == CURLE_GOT_NOTHING || rc == CURLE_SEND_ERROR ||
               rc == CURLE_RECV_ERROR || rc == CURLE_PARTIAL_FILE) {
      *fail = HF_CONNECT;
      err_set(err, "cannot reach %s: %s", host, what);
    } else {
      *fail = HF_OTHER;
      err_set(err, "request to %s failed: %s", host[0] ? host : "the API URL",
              what);
    }
  }
  curl.slist_free_all(hdrs);
  curl.easy_cleanup(h);
  return ret;
}

static void real_sleep(void *ctx, long ms) {
  (void)ctx;
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

const HttpTransport *http_curl(void) {
  static const HttpTransport t = {.send = curl_send, .sleep_ms = real_sleep};
  return &t;
}

/* ----- retries ----- */

static bool retryable_status(long s) {
  return s == 429 || (s >= 500 && s <= 599);
}

int http_post(const HttpTransport *t, const HttpRequest *req,
              const HttpOptions *opt, HttpResponse *resp, FILE *log,
              Error *err) {
  char host[256];
  url_host(req->url, host, sizeof(host));
  long backoff = opt->retry_base_ms;
  for (int attempt = 1;; attempt++) {
    buf_reset(&resp->body);
    buf_reset(&resp->headers);
    resp->status = 0;
    resp->retry_after = -1;
    resp->attempts = attempt;
    HttpFailure fail = HF_NONE;
    Error e;
    err_clear(&e);
    int rc = t->send(t->ctx, req, opt, resp, &fail, &e);
    if (rc == 0 && !retryable_status(resp->status))
      return 0; /* success, or a final 4xx for the caller to explain */
    if (rc < 0 && fail != HF_CONNECT) {
      if (err && !err->set)
        *err = e;
      return -1;
    }
    if (attempt >= opt->max_attempts) {
      if (rc == 0)
        return 0; /* the last 429/5xx: the caller reports it */
      if (err && !err->set) {
        *err = e;
        if (attempt > 1)
          err_prefix(err, "gave up after %d attempts: ", attempt);
      }
      return -1;
    }
    long delay = backoff;
    if (rc == 0 && resp->retry_after >= 0) {
      long asked = resp->retry_after > opt->retry_max_ms / 1000 + 1
                       ? opt->retry_max_ms + 1
                       : resp->retry_after * 1000;
      if (asked > opt->retry_max_ms) {
        if (log)
          fprintf(log,
                  "lmgen: HTTP %ld from %s asks to wait %ld s, longer than "
                  "LMGEN_RETRY_MAX_MS allows; not retrying\n",
                  resp->status, host, resp->retry_after);
        return 0;
      }
      if (asked > delay)
        delay = asked;
    }
    if (delay > opt->retry_max_ms)
      delay = opt->retry_max_ms;
    if (log) {
      if (rc == 0)
        fprintf(log, "lmgen: HTTP %ld from %s", resp->status, host);
      else
        fprintf(log, "lmgen: %s", e.msg);
      fprintf(log, "; retrying in %g s (attempt %d of %d)\n",
              (double)delay / 1000.0, attempt + 1, opt->max_attempts);
    }
    t->sleep_ms(t->ctx, delay);
    backoff = backoff > opt->retry_max_ms / 2 ? opt->retry_max_ms : backoff * 2;
  }
}
