/* test_llm.c: request and reply JSON of both APIs, configuration from the
 * environment, key redaction; llm_ask over a fake transport and over
 * libcurl against the fake LLM server. */
#include "testutil.h"

#include "agents.h"

#include <curl/curl.h>

#define KEY "sk-test-LLMKEY-0123456789abcdef"

static LlmConfig config(LlmStyle style) {
  LlmConfig c = {.url = xstrdup("https://api.example.com/v1/messages"),
                 .key = xstrdup(KEY),
                 .model = xstrdup("claude-test-1"),
                 .style = style,
                 .max_tokens = 4096};
  return c;
}

static void test_llm_request_anthropic(void **state) {
  (void)state;
  LlmConfig c = config(LLM_ANTHROPIC);
  char *body = llm_request_body(&c, "the system \"prompt\"", "the user prompt");
  assert_string_equal(body, "{\"model\":\"claude-test-1\",\"max_tokens\":4096,"
                            "\"temperature\":0,\"system\":\"the system "
                            "\\\"prompt\\\"\",\"messages\":[{\"role\":\"user\","
                            "\"content\":\"the user prompt\"}]}");
  char **h = llm_request_headers(&c);
  assert_string_equal(h[0], "Content-Type: application/json");
  assert_string_equal(h[1], "Accept: application/json");
  assert_string_equal(h[2], "x-api-key: " KEY);
  assert_string_equal(h[3], "anthropic-version: 2023-06-01");
  assert_null(h[4]);
  llm_headers_free(h);
  free(body);
  llm_config_free(&c);
}

static void test_llm_request_openai(void **state) {
  (void)state;
  LlmConfig c = config(LLM_OPENAI);
  char *body = llm_request_body(&c, "sys", "usr");
  assert_string_equal(body,
                      "{\"model\":\"claude-test-1\",\"temperature\":0,"
                      "\"messages\":[{\"role\":\"system\",\"content\":"
                      "\"sys\"},{\"role\":\"user\",\"content\":\"usr\"}]}");
  assert_not_contains(body, KEY);
  char **h = llm_request_headers(&c);
  assert_string_equal(h[2], "Authorization: Bearer " KEY);
  assert_null(h[3]);
  llm_headers_free(h);
  free(body);
  llm_config_free(&c);
}

static void expect_text(LlmStyle s, const char *body, const char *want) {
  Buf t;
  buf_init(&t);
  Error e;
  err_clear(&e);
  int rc = llm_reply_text(s, body, strlen(body), &t, &e);
  if (rc != 0)
    print_error("%s\n", e.msg);
  assert_int_equal(rc, 0);
  assert_string_equal(buf_str(&t), want);
  buf_free(&t);
}

static void expect_text_error(LlmStyle s, const char *body, const char *msg) {
  Buf t;
  buf_init(&t);
  Error e;
  err_clear(&e);
  assert_int_equal(llm_reply_text(s, body, strlen(body), &t, &e), -1);
  assert_contains(e.msg, msg);
  buf_free(&t);
}

static void test_llm_reply_text(void **state) {
  (void)state;
  expect_text(
      LLM_ANTHROPIC,
      "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":"
      "\"part one, \"},{\"type\":\"tool_use\",\"name\":\"x\"},{\"type\":"
      "\"text\",\"text\":\"part two\"}],\"stop_reason\":\"end_turn\"}",
      "part one, part two");
  expect_text(LLM_OPENAI,
              "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
              "\"content\":\"hello\"},\"finish_reason\":\"stop\"}]}",
              "hello");
  expect_text(LLM_OPENAI,
              "{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\","
              "\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}}]}",
              "ab");
  expect_text_error(
      LLM_ANTHROPIC,
      "{\"content\":[{\"type\":\"text\",\"text\":\"{\\\"a\\\"\"}],"
      "\"stop_reason\":\"max_tokens\"}",
      "cut off at the token limit; raise LMGEN_MAX_TOKENS");
  expect_text_error(LLM_OPENAI,
                    "{\"choices\":[{\"message\":{\"content\":\"x\"},"
                    "\"finish_reason\":\"length\"}]}",
                    "cut off at the token limit");
  /* the other API's shape: the style is probably wrong */
  expect_text_error(LLM_ANTHROPIC,
                    "{\"choices\":[{\"message\":{\"content\":\"x\"}}]}",
                    "no 'content' array (is LMGEN_API_STYLE right?)");
  expect_text_error(LLM_OPENAI, "{\"content\":[]}",
                    "no choices[0].message.content");
  expect_text_error(LLM_ANTHROPIC, "<html>", "not a JSON object");
  expect_text_error(LLM_ANTHROPIC, "[1]", "not a JSON object");
  expect_text_error(LLM_ANTHROPIC, "{\"content\":[]}", "holds no text");
}

static void expect_api_error(long status, const char *body, const char *msg) {
  Error e;
  err_clear(&e);
  llm_api_error(status, body, strlen(body), &e);
  assert_string_equal(e.msg, msg);
}

static void test_llm_api_error(void **state) {
  (void)state;
  expect_api_error(
      401,
      "{\"type\":\"error\",\"error\":{\"type\":"
      "\"authentication_error\",\"message\":\"invalid x-api-key\"}}",
      "API error: HTTP 401 (authentication_error): invalid "
      "x-api-key (check LMGEN_API_KEY)");
  expect_api_error(429,
                   "{\"error\":{\"message\":\"Rate limit reached\",\"type\":"
                   "\"requests\",\"code\":null}}",
                   "API error: HTTP 429 (requests): Rate limit reached");
  expect_api_error(404, "{\"error\":\"model not found\"}",
                   "API error: HTTP 404: model not found (check LMGEN_API_URL: "
                   "the full endpoint URL; and LMGEN_API_STYLE)");
  expect_api_error(502, "<html>\n<body>bad gateway</body>",
                   "API error: HTTP 502: <html>");
  expect_api_error(500, "", "API error: HTTP 500");
  expect_api_error(503,
                   "a\x01\x7f"
                   "b",
                   "API error: HTTP 503: a??b");
}

static void set_env(const char *url, const char *key, const char *model,
                    const char *style) {
  const char *names[] = {"LMGEN_API_URL", "LMGEN_API_KEY", "LMGEN_MODEL",
                         "LMGEN_API_STYLE"};
  const char *vals[] = {url, key, model, style};
  for (int i = 0; i < 4; i++) {
    if (vals[i])
      setenv(names[i], vals[i], 1);
    else
      unsetenv(names[i]);
  }
}

static void test_llm_config_from_env(void **state) {
  (void)state;
  LlmConfig c;
  Error e;
  err_clear(&e);
  unsetenv("LMGEN_MAX_TOKENS");
  set_env(NULL, NULL, NULL, NULL);
  assert_int_equal(llm_config_from_env(&c, &e), -1);
  assert_contains(e.msg,
                  "the agent is not configured; set in the environment:");
  assert_contains(e.msg, "\n  LMGEN_API_URL ");
  assert_contains(e.msg, "\n  LMGEN_API_KEY ");
  assert_contains(e.msg, "\n  LMGEN_MODEL ");
  assert_null(c.url);
  /* only what is missing is listed */
  err_clear(&e);
  set_env("http://127.0.0.1:1/v1/messages", NULL, "m", NULL);
  assert_int_equal(llm_config_from_env(&c, &e), -1);
  assert_contains(e.msg, "LMGEN_API_KEY");
  assert_not_contains(e.msg, "\n  LMGEN_API_URL");
  assert_not_contains(e.msg, "\n  LMGEN_MODEL");

  err_clear(&e);
  set_env("https://api.anthropic.com/v1/messages", KEY, "m", NULL);
  assert_int_equal(llm_config_from_env(&c, &e), 0);
  assert_int_equal(c.style, LLM_ANTHROPIC);
  assert_int_equal(c.max_tokens, 8192);
  assert_string_equal(c.key, KEY);
  llm_config_free(&c);
  setenv("LMGEN_MAX_TOKENS", "2000", 1);
  set_env("http://localhost:8080/v1/chat/completions", "none", "local",
          "openai");
  assert_int_equal(llm_config_from_env(&c, &e), 0);
  assert_int_equal(c.style, LLM_OPENAI);
  assert_int_equal(c.max_tokens, 2000);
  llm_config_free(&c);

  struct {
    const char *url, *key, *style, *tokens, *msg;
  } bad[] = {
      {"https://x/v1", KEY, "gemini", "10",
       "LMGEN_API_STYLE must be 'anthropic' or 'openai', not 'gemini'"},
      {"ftp://x/v1", KEY, NULL, "10", "must be an http:// or https:// URL"},
      {"https://x/v1", "abc\r\nX-Evil: 1", NULL, "10",
       "LMGEN_API_KEY contains a space or control character"},
      {"https://x/v1", KEY, NULL, "0", "LMGEN_MAX_TOKENS must be"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(bad); i++) {
    err_clear(&e);
    set_env(bad[i].url, bad[i].key, "m", bad[i].style);
    setenv("LMGEN_MAX_TOKENS", bad[i].tokens, 1);
    assert_int_equal(llm_config_from_env(&c, &e), -1);
    assert_contains(e.msg, bad[i].msg);
    assert_not_contains(e.msg, "X-Evil");
  }
  set_env(NULL, NULL, NULL, NULL);
  unsetenv("LMGEN_MAX_TOKENS");
}

static void test_llm_redact(void **state) {
  (void)state;
  char *r = llm_redact("key " KEY " and again " KEY ".", KEY);
  assert_string_equal(r, "key [REDACTED] and again [REDACTED].");
  free(r);
  r = llm_redact("nothing here", KEY);
  assert_string_equal(r, "nothing here");
  free(r);
  /* a placeholder key for a local server is not a secret worth hunting */
  r = llm_redact("none of it", "none");
  assert_string_equal(r, "none of it");
  free(r);
  r = llm_redact("x", NULL);
  assert_string_equal(r, "x");
  free(r);
  Error e;
  err_clear(&e);
  err_set(&e, "bad key %s", KEY);
  err_context(&e, "Authorization: Bearer " KEY, 0, 5, 0);
  llm_redact_error(&e, KEY);
  assert_string_equal(e.msg, "bad key [REDACTED]");
  assert_string_equal(e.context, "Authorization: Bearer [REDACTED]");
}

/* ----- llm_ask over a fake transport ----- */

typedef struct Canned {
  long status;
  const char *body;
  char *seen_body;
  char *seen_headers;
} Canned;

static int canned_send(void *ctx, const HttpRequest *req,
                       const HttpOptions *opt, HttpResponse *resp,
                       HttpFailure *fail, Error *err) {
  (void)opt;
  (void)err;
  Canned *c = ctx;
  c->seen_body = xstrndup(req->body, req->body_len);
  Buf h;
  buf_init(&h);
  for (const char *const *p = req->headers; *p; p++)
    buf_printf(&h, "%s\n", *p);
  c->seen_headers = buf_steal(&h);
  resp->status = c->status;
  buf_puts(&resp->body, c->body);
  *fail = HF_NONE;
  return 0;
}

static void no_sleep(void *ctx, long ms) {
  (void)ctx;
  (void)ms;
}

static void test_llm_ask_fake(void **state) {
  (void)state;
  LlmConfig c = config(LLM_ANTHROPIC);
  HttpOptions o;
  http_options_default(&o);
  Canned can = {.status = 200,
                .body = "{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}"};
  HttpTransport t = {.send = canned_send, .sleep_ms = no_sleep, .ctx = &can};
  Buf text, raw;
  buf_init(&text);
  buf_init(&raw);
  Error e;
  err_clear(&e);
  assert_int_equal(llm_ask(&c, &t, &o, "S", "U", &text, &raw, NULL, &e), 0);
  assert_string_equal(buf_str(&text), "ok");
  assert_contains(can.seen_headers, "x-api-key: " KEY "\n");
  assert_not_contains(can.seen_body, KEY);
  free(can.seen_body);
  free(can.seen_headers);

  /* an API that echoes the key: neither the error nor the raw body has it */
  Canned echo = {.status = 401,
                 .body = "{\"error\":{\"type\":\"authentication_error\","
                         "\"message\":\"bad key " KEY "\"}}"};
  t.ctx = &echo;
  err_clear(&e);
  assert_int_equal(llm_ask(&c, &t, &o, "S", "U", &text, &raw, NULL, &e), -1);
  assert_string_equal(e.msg, "API error: HTTP 401 (authentication_error): bad "
                             "key [REDACTED] (check LMGEN_API_KEY)");
  assert_contains(buf_str(&raw), "bad key [REDACTED]");
  assert_not_contains(buf_str(&raw), KEY);
  free(echo.seen_body);
  free(echo.seen_headers);

  /* ... nor the reply text */
  Canned echo2 = {.status = 200,
                  .body = "{\"content\":[{\"type\":\"text\",\"text\":\"k=" KEY
                          "\"}]}"};
  t.ctx = &echo2;
  err_clear(&e);
  assert_int_equal(llm_ask(&c, &t, &o, "S", "U", &text, &raw, NULL, &e), 0);
  assert_string_equal(buf_str(&text), "k=[REDACTED]");
  free(echo2.seen_body);
  free(echo2.seen_headers);
  buf_free(&text);
  buf_free(&raw);
  llm_config_free(&c);
}

/* ----- llm_ask through libcurl against the fake server ----- */

static void test_llm_ask_server_both_styles(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  TuServer srv;
  tu_server_start(&srv, dir);
  HttpOptions o;
  http_options_default(&o);
  LlmStyle styles[] = {LLM_ANTHROPIC, LLM_OPENAI};
  const char *paths[] = {"v1/messages", "v1/chat/completions"};
  for (int i = 0; i < 2; i++) {
    LlmConfig c = config(styles[i]);
    free(c.url);
    Buf u;
    buf_init(&u);
    buf_printf(&u, "http://127.0.0.1:%d/fenced/%s", srv.port, paths[i]);
    c.url = buf_steal(&u);
    Buf text, raw;
    buf_init(&text);
    buf_init(&raw);
    Error e;
    err_clear(&e);
    assert_int_equal(
        llm_ask(&c, http_curl(), &o, "SYS", "USR", &text, &raw, NULL, &e), 0);
    assert_contains(buf_str(&text), "```json\n{\n  \"full_name\": "
                                    "\"torch.nn.modules.activation.SiLU\"");
    buf_free(&text);
    buf_free(&raw);
    llm_config_free(&c);
  }
  char *log = tu_server_log(&srv);
  assert_contains(log, "\"x-api-key\": \"" KEY "\"");
  assert_contains(log, "\"anthropic-version\": \"2023-06-01\"");
  assert_contains(log, "\"Authorization\": \"Bearer " KEY "\"");
  assert_contains(log, "\"model\": \"claude-test-1\"");
  assert_contains(log, "\"system\": \"SYS\"");
  assert_contains(log, "{\"role\": \"system\", \"content\": \"SYS\"}");
  free(log);
  tu_server_stop(&srv);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  if (http_global_init(NULL) < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_llm_request_anthropic),
      cmocka_unit_test(test_llm_request_openai),
      cmocka_unit_test(test_llm_reply_text),
      cmocka_unit_test(test_llm_api_error),
      cmocka_unit_test(test_llm_config_from_env),
      cmocka_unit_test(test_llm_redact),
      cmocka_unit_test(test_llm_ask_fake),
      cmocka_unit_test(test_llm_ask_server_both_styles),
  };
  int rc = cmocka_run_group_tests_name("llm", tests, NULL, NULL);
  http_global_cleanup();
  return rc;
}
