/* test_http.c: the retry policy against a fake transport and clock, and the
 * libcurl transport against the fake LLM server on 127.0.0.1. */
#include "testutil.h"

#include "agents.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* ----- a scripted transport ----- */

typedef struct Step {
  long status; /* 0: a failure of kind `fail` */
  HttpFailure fail;
  long retry_after; /* -1: none */
} Step;

typedef struct Fake {
  const Step *steps;
  int nsteps, calls;
  long sleeps[16];
  int nsleeps;
} Fake;

static int fake_send(void *ctx, const HttpRequest *req, const HttpOptions *opt,
                     HttpResponse *resp, HttpFailure *fail, Error *err) {
  (void)req;
  (void)opt;
  Fake *f = ctx;
  const Step *s = &f->steps[f->calls < f->nsteps ? f->calls : f->nsteps - 1];
  f->calls++;
  if (s->status == 0) {
    *fail = s->fail;
    err_set(err, "fake failure %d", (int)s->fail);
    return -1;
  }
  resp->status = s->status;
  resp->retry_after = s->retry_after;
  buf_printf(&resp->body, "{\"call\": %d}", f->calls);
  *fail = HF_NONE;
  return 0;
}

static void fake_sleep(void *ctx, long ms) {
  Fake *f = ctx;
  if (f->nsleeps < 16)
    f->sleeps[f->nsleeps++] = ms;
}

static int post(Fake *f, const Step *steps, int n, HttpOptions *o,
                HttpResponse *r, Error *e) {
  f->steps = steps;
  f->nsteps = n;
  HttpTransport t = {.send = fake_send, .sleep_ms = fake_sleep, .ctx = f};
  HttpRequest req = {.url = "https://api.example.com/v1/messages",
                     .body = "{}",
                     .body_len = 2};
  http_response_init(r);
  err_clear(e);
  return http_post(&t, &req, o, r, NULL, e);
}

static void opts(HttpOptions *o) {
  http_options_default(o);
  o->retry_base_ms = 100;
}

static void test_http_retry_429_honours_retry_after(void **state) {
  (void)state;
  Fake f = {0};
  HttpOptions o;
  opts(&o);
  HttpResponse r;
  Error e;
  Step s[] = {{429, HF_NONE, 3}, {200, HF_NONE, -1}};
  assert_int_equal(post(&f, s, 2, &o, &r, &e), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.attempts, 2);
  assert_int_equal(f.nsleeps, 1);
  assert_int_equal(f.sleeps[0], 3000); /* Retry-After beats the 100 ms */
  assert_string_equal(buf_str(&r.body), "{\"call\": 2}");
  http_response_free(&r);

  /* a Retry-After shorter than the backoff does not shorten it */
  Fake g = {0};
  Step s2[] = {{429, HF_NONE, 0}, {429, HF_NONE, -1}, {200, HF_NONE, -1}};
  o.retry_base_ms = 1500;
  assert_int_equal(post(&g, s2, 3, &o, &r, &e), 0);
  assert_int_equal(g.nsleeps, 2);
  assert_int_equal(g.sleeps[0], 1500);
  assert_int_equal(g.sleeps[1], 3000);
  http_response_free(&r);
}

static void test_http_5xx_gives_up_after_max_attempts(void **state) {
  (void)state;
  Fake f = {0};
  HttpOptions o;
  opts(&o);
  HttpResponse r;
  Error e;
  Step s[] = {{500, HF_NONE, -1}};
  /* the last response comes back for the caller to report */
  assert_int_equal(post(&f, s, 1, &o, &r, &e), 0);
  assert_int_equal(r.status, 500);
  assert_int_equal(r.attempts, 3);
  assert_int_equal(f.calls, 3);
  assert_int_equal(f.nsleeps, 2);
  assert_int_equal(f.sleeps[0], 100); /* exponential backoff */
  assert_int_equal(f.sleeps[1], 200);
  assert_false(e.set);
  http_response_free(&r);

  long statuses[] = {502, 503, 504, 529};
  for (size_t i = 0; i < LM_ARRAY_LEN(statuses); i++) {
    Fake g = {0};
    Step t[] = {{statuses[i], HF_NONE, -1}, {200, HF_NONE, -1}};
    assert_int_equal(post(&g, t, 2, &o, &r, &e), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(g.calls, 2);
    http_response_free(&r);
  }
}

static void test_http_no_retry_on_other_4xx(void **state) {
  (void)state;
  long statuses[] = {400, 401, 403, 404, 413, 422};
  for (size_t i = 0; i < LM_ARRAY_LEN(statuses); i++) {
    Fake f = {0};
    HttpOptions o;
    opts(&o);
    HttpResponse r;
    Error e;
    Step s[] = {{statuses[i], HF_NONE, 5}, {200, HF_NONE, -1}};
    assert_int_equal(post(&f, s, 2, &o, &r, &e), 0);
    assert_int_equal(r.status, statuses[i]);
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.nsleeps, 0);
    http_response_free(&r);
  }
}

static void test_http_connection_failures(void **state) {
  (void)state;
  HttpOptions o;
  opts(&o);
  HttpResponse r;
  Error e;
  /* connection errors are retried */
  Fake f = {0};
  Step s[] = {{0, HF_CONNECT, -1}, {0, HF_CONNECT, -1}, {200, HF_NONE, -1}};
  assert_int_equal(post(&f, s, 3, &o, &r, &e), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(f.nsleeps, 2);
  http_response_free(&r);
  /* ... up to max_attempts */
  Fake g = {0};
  Step s2[] = {{0, HF_CONNECT, -1}};
  o.max_attempts = 4;
  assert_int_equal(post(&g, s2, 1, &o, &r, &e), -1);
  assert_int_equal(g.calls, 4);
  assert_int_equal(g.nsleeps, 3);
  assert_int_equal(g.sleeps[2], 400);
  assert_string_equal(e.msg, "gave up after 4 attempts: fake failure 1");
  http_response_free(&r);
  /* timeouts, oversized replies and other failures are final */
  HttpFailure final[] = {HF_TIMEOUT, HF_TOO_LARGE, HF_OTHER};
  for (size_t i = 0; i < LM_ARRAY_LEN(final); i++) {
    Fake h = {0};
    Step s3[] = {{0, final[i], -1}, {200, HF_NONE, -1}};
    assert_int_equal(post(&h, s3, 2, &o, &r, &e), -1);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.nsleeps, 0);
    assert_non_null(strstr(e.msg, "fake failure"));
    http_response_free(&r);
  }
}

static void test_http_waits_are_capped(void **state) {
  (void)state;
  HttpOptions o;
  opts(&o);
  HttpResponse r;
  Error e;
  /* a server asking for more than retry_max_ms gets no retry */
  Fake f = {0};
  Step s[] = {{429, HF_NONE, 86400}, {200, HF_NONE, -1}};
  assert_int_equal(post(&f, s, 2, &o, &r, &e), 0);
  assert_int_equal(r.status, 429);
  assert_int_equal(f.calls, 1);
  assert_int_equal(f.nsleeps, 0);
  http_response_free(&r);
  /* backoff doubles up to retry_max_ms */
  Fake g = {0};
  Step s2[] = {{503, HF_NONE, -1}};
  o.retry_base_ms = 40000;
  o.max_attempts = 4;
  assert_int_equal(post(&g, s2, 1, &o, &r, &e), 0);
  assert_int_equal(g.nsleeps, 3);
  assert_int_equal(g.sleeps[0], 40000);
  assert_int_equal(g.sleeps[1], 60000);
  assert_int_equal(g.sleeps[2], 60000);
  http_response_free(&r);
}

static void test_http_options_from_env(void **state) {
  (void)state;
  HttpOptions o;
  Error e;
  err_clear(&e);
  unsetenv("LMGEN_TIMEOUT_MS");
  assert_int_equal(http_options_from_env(&o, &e), 0);
  assert_int_equal(o.timeout_ms, 300000);
  assert_int_equal(o.connect_timeout_ms, 10000);
  assert_int_equal(o.max_reply_bytes, 4u << 20);
  assert_int_equal(o.max_attempts, 3);
  setenv("LMGEN_TIMEOUT_MS", "750", 1);
  setenv("LMGEN_MAX_REPLY_BYTES", "65536", 1);
  setenv("LMGEN_RETRY_BASE_MS", "0", 1);
  setenv("LMGEN_MAX_ATTEMPTS", "5", 1);
  assert_int_equal(http_options_from_env(&o, &e), 0);
  assert_int_equal(o.timeout_ms, 750);
  assert_int_equal(o.max_reply_bytes, 65536);
  assert_int_equal(o.retry_base_ms, 0);
  assert_int_equal(o.max_attempts, 5);
  const char *bad[] = {"-5", "12ms", "0x10", "99999999999999999999", " 7"};
  for (size_t i = 0; i < LM_ARRAY_LEN(bad); i++) {
    setenv("LMGEN_TIMEOUT_MS", bad[i], 1);
    err_clear(&e);
    assert_int_equal(http_options_from_env(&o, &e), -1);
    assert_non_null(strstr(e.msg, "LMGEN_TIMEOUT_MS must be a whole number"));
  }
  setenv("LMGEN_TIMEOUT_MS", "1", 1);
  setenv("LMGEN_MAX_ATTEMPTS", "11", 1);
  err_clear(&e);
  assert_int_equal(http_options_from_env(&o, &e), -1);
  assert_non_null(strstr(e.msg, "LMGEN_MAX_ATTEMPTS must be a whole number "
                                "from 1 to 10, not '11'"));
  unsetenv("LMGEN_TIMEOUT_MS");
  unsetenv("LMGEN_MAX_REPLY_BYTES");
  unsetenv("LMGEN_RETRY_BASE_MS");
  unsetenv("LMGEN_MAX_ATTEMPTS");
}

static void test_http_is_loopback_url(void **state) {
  (void)state;
  struct {
    const char *url;
    bool loop;
  } cases[] = {
      {"http://127.0.0.1:8080/v1/messages", true},
      {"http://127.1.2.3/x", true},
      {"http://localhost:11434/v1/chat/completions", true},
      {"http://LOCALHOST/x", true},
      {"http://[::1]:9000/x", true},
      {"https://api.anthropic.com/v1/messages", false},
      {"http://127.0.0.1.example.com/x", false},
      {"http://10.0.0.1/x", false},
      {"not a url", false},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    if (http_is_loopback_url(cases[i].url) != cases[i].loop)
      print_error("case %s\n", cases[i].url);
    assert_true(http_is_loopback_url(cases[i].url) == cases[i].loop);
  }
}

/* ----- libcurl against the fake server ----- */

typedef struct Fix {
  char *dir;
  TuServer srv;
} Fix;

static int setup(void **state) {
  Fix *f = xcalloc(1, sizeof(Fix));
  f->dir = tu_tmpdir();
  tu_server_start(&f->srv, f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  tu_server_stop(&f->srv);
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f);
  unsetenv("http_proxy");
  unsetenv("HTTP_PROXY");
  unsetenv("https_proxy");
  unsetenv("ALL_PROXY");
  unsetenv("all_proxy");
  return 0;
}

/* One attempt through libcurl. */
static int send1(const char *url, const HttpOptions *o, HttpResponse *r,
                 HttpFailure *fail, Error *e) {
  static const char *const hdrs[] = {"Content-Type: application/json",
                                     "X-Test: yes", NULL};
  HttpRequest req = {
      .url = url, .headers = hdrs, .body = "{\"hello\": 1}", .body_len = 12};
  http_response_init(r);
  err_clear(e);
  return http_curl()->send(NULL, &req, o, r, fail, e);
}

static char *url(const Fix *f, const char *scenario) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "http://127.0.0.1:%d/%s/v1/messages", f->srv.port, scenario);
  return buf_steal(&b);
}

static void test_http_curl_post_roundtrip(void **state) {
  Fix *f = *state;
  HttpOptions o;
  http_options_default(&o);
  HttpResponse r;
  HttpFailure fail;
  Error e;
  char *u = url(f, "echo");
  assert_int_equal(send1(u, &o, &r, &fail, &e), 0);
  assert_int_equal(fail, HF_NONE);
  assert_int_equal(r.status, 200);
  assert_string_equal(buf_str(&r.body), "{\"echo\": \"{\\\"hello\\\": 1}\"}");
  char *log = tu_server_log(&f->srv);
  assert_contains(log, "\"X-Test\": \"yes\"");
  assert_contains(log, "\"path\": \"/echo/v1/messages\"");
  assert_not_contains(log, "Expect");
  free(log);
  http_response_free(&r);
  free(u);
}

static void test_http_curl_status_is_a_response(void **state) {
  Fix *f = *state;
  HttpOptions o;
  http_options_default(&o);
  HttpResponse r;
  HttpFailure fail;
  Error e;
  char *u = url(f, "500");
  /* HTTP 500 is CURLE_OK to libcurl: the status is read separately */
  assert_int_equal(send1(u, &o, &r, &fail, &e), 0);
  assert_int_equal(r.status, 500);
  assert_contains(buf_str(&r.body), "internal failure");
  http_response_free(&r);
  free(u);
  u = url(f, "429_then_ok");
  assert_int_equal(send1(u, &o, &r, &fail, &e), 0);
  assert_int_equal(r.status, 429);
  assert_int_equal(r.retry_after, 1);
  http_response_free(&r);
  free(u);
  /* Retry-After as an HTTP date, 3 s ahead (whole seconds: 2 or 3 left) */
  u = url(f, "429_date");
  assert_int_equal(send1(u, &o, &r, &fail, &e), 0);
  assert_int_equal(r.status, 429);
  assert_true(r.retry_after >= 1 && r.retry_after <= 3);
  http_response_free(&r);
  free(u);
}

static void test_http_curl_timeout(void **state) {
  Fix *f = *state;
  HttpOptions o;
  http_options_default(&o);
  o.timeout_ms = 300;
  HttpResponse r;
  HttpFailure fail;
  Error e;
  char *u = url(f, "hang");
  double t0 = now_seconds();
  assert_int_equal(send1(u, &o, &r, &fail, &e), -1);
  double dt = now_seconds() - t0;
  assert_int_equal(fail, HF_TIMEOUT);
  assert_string_equal(e.msg, "no complete reply from 127.0.0.1 within 300 ms "
                             "(LMGEN_TIMEOUT_MS)");
  assert_true(dt >= 0.25 && dt < 3.0);
  http_response_free(&r);
  free(u);
}

static void test_http_curl_reply_size_cap(void **state) {
  Fix *f = *state;
  HttpOptions o;
  http_options_default(&o);
  o.max_reply_bytes = 64 * 1024;
  const char *sc[] = {"oversized", "oversized_chunked"};
  for (size_t i = 0; i < LM_ARRAY_LEN(sc); i++) {
    HttpResponse r;
    HttpFailure fail;
    Error e;
    char *u = url(f, sc[i]);
    assert_int_equal(send1(u, &o, &r, &fail, &e), -1);
    assert_int_equal(fail, HF_TOO_LARGE);
    assert_contains(e.msg, "larger than 65536 bytes (LMGEN_MAX_REPLY_BYTES)");
    assert_true(r.body.len <= 64 * 1024);
    http_response_free(&r);
    free(u);
  }
}

static void test_http_curl_connection_refused(void **state) {
  (void)state;
  /* a port nobody listens on: bind one, then close it */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(s, (struct sockaddr *)&a, &len);
  close(s);
  char u[128];
  snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", ntohs(a.sin_port));
  HttpOptions o;
  http_options_default(&o);
  HttpResponse r;
  HttpFailure fail;
  Error e;
  assert_int_equal(send1(u, &o, &r, &fail, &e), -1);
  assert_int_equal(fail, HF_CONNECT);
  assert_contains(e.msg, "cannot reach 127.0.0.1");
  http_response_free(&r);
  /* only http and https */
  assert_int_equal(send1("file:///etc/passwd", &o, &r, &fail, &e), -1);
  assert_int_equal(fail, HF_OTHER);
  http_response_free(&r);
}

static void test_http_curl_proxies(void **state) {
  Fix *f = *state;
  HttpOptions o;
  http_options_default(&o);
  o.connect_timeout_ms = 2000;
  HttpResponse r;
  HttpFailure fail;
  Error e;
  /* a dead proxy in the environment does not stop loopback requests */
  setenv("http_proxy", "http://127.0.0.1:1", 1);
  setenv("HTTP_PROXY", "http://127.0.0.1:1", 1);
  setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
  char *u = url(f, "echo");
  assert_int_equal(send1(u, &o, &r, &fail, &e), 0);
  assert_int_equal(r.status, 200);
  http_response_free(&r);
  free(u);
  /* a remote endpoint goes through the environment's proxy: here the fake
   * server plays the proxy and sees the absolute URL */
  char proxy[64];
  snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", f->srv.port);
  setenv("http_proxy", proxy, 1);
  unsetenv("no_proxy");
  unsetenv("NO_PROXY");
  unsetenv("HTTP_PROXY");
  unsetenv("ALL_PROXY");
  assert_int_equal(
      send1("http://llm.example.invalid/echo/v1/messages", &o, &r, &fail, &e),
      0);
  assert_int_equal(r.status, 200);
  char *log = tu_server_log(&f->srv);
  assert_contains(log,
                  "\"path\": \"http://llm.example.invalid/echo/v1/messages\"");
  free(log);
  http_response_free(&r);
}

static void test_http_post_retries_through_curl(void **state) {
  Fix *f = *state;
  HttpOptions o;
  http_options_default(&o);
  o.retry_base_ms = 10;
  char *u = url(f, "503_then_ok");
  HttpRequest req = {.url = u, .body = "{}", .body_len = 2};
  HttpResponse r;
  http_response_init(&r);
  Error e;
  err_clear(&e);
  char *msgs = NULL;
  size_t mlen = 0;
  FILE *log = open_memstream(&msgs, &mlen);
  assert_int_equal(http_post(http_curl(), &req, &o, &r, log, &e), 0);
  fclose(log);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.attempts, 2);
  assert_string_equal(msgs, "lmgen: HTTP 503 from 127.0.0.1; retrying in "
                            "0.01 s (attempt 2 of 3)\n");
  assert_int_equal(tu_server_requests(&f->srv), 2);
  free(msgs);
  http_response_free(&r);
  free(u);
}

int main(void) {
  if (http_global_init(NULL) < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_http_retry_429_honours_retry_after),
      cmocka_unit_test(test_http_5xx_gives_up_after_max_attempts),
      cmocka_unit_test(test_http_no_retry_on_other_4xx),
      cmocka_unit_test(test_http_connection_failures),
      cmocka_unit_test(test_http_waits_are_capped),
      cmocka_unit_test(test_http_options_from_env),
      cmocka_unit_test(test_http_is_loopback_url),
      cmocka_unit_test_setup_teardown(test_http_curl_post_roundtrip, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_http_curl_status_is_a_response,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_curl_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_curl_reply_size_cap, setup,
                                      teardown),
      cmocka_unit_test(test_http_curl_connection_refused),
      cmocka_unit_test_setup_teardown(test_http_curl_proxies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_post_retries_through_curl,
                                      setup, teardown),
  };
  int rc = cmocka_run_group_tests_name("http", tests, NULL, NULL);
  http_global_cleanup();
  return rc;
}
