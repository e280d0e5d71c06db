/* llm.c: the two chat APIs lmgen speaks, as JSON in and out.
 *
 * Anthropic Messages (POST .../v1/messages, x-api-key, anthropic-version
 * 2023-06-01) and OpenAI-compatible chat completions (POST
 * .../v1/chat/completions, Authorization: Bearer), which local servers
 * such as llama.cpp and vLLM also serve. Bodies are built with json_pack
 * and read with json_loadb; the configuration comes from the environment.
 *
 * The API key lives in LlmConfig.key and in one request header, nowhere
 * else: not in the body, not in messages. Error texts and saved replies
 * pass through llm_redact, because an API may echo a key back.
 */
#include "agents.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *llm_style_name(LlmStyle s) {
  return s == LLM_OPENAI ? "openai" : "anthropic";
}

static char *env_dup(const char *name) {
  const char *s = getenv(name);
  return s && *s ? xstrdup(s) : NULL;
}

int llm_config_from_env(LlmConfig *c, Error *err) {
  memset(c, 0, sizeof(*c));
  c->url = env_dup("LMGEN_API_URL");
  c->key = env_dup("LMGEN_API_KEY");
  c->model = env_dup("LMGEN_MODEL");
  c->max_tokens = 8192;
  Buf missing;
  buf_init(&missing);
  if (!c->url)
    buf_puts(&missing, "\n  LMGEN_API_URL   the endpoint, e.g. "
                       "https://api.anthropic.com/v1/messages");
  if (!c->key)
    buf_puts(&missing, "\n  LMGEN_API_KEY   the API key (any placeholder "
                       "for a local server without one)");
  if (!c->model)
    buf_puts(&missing, "\n  LMGEN_MODEL     the model name, e.g. "
                       "claude-sonnet-4-5");
  if (missing.len) {
    err_set(err,
            "the agent is not configured; set in the environment:%s\n"
            "(and LMGEN_API_STYLE=openai for an OpenAI-compatible endpoint; "
            "see README.md), or give the analysis with --analysis FILE",
            buf_str(&missing));
    buf_free(&missing);
    llm_config_free(c);
    return -1;
  }
  buf_free(&missing);
  const char *style = getenv("LMGEN_API_STYLE");
  if (!style || !*style || strcmp(style, "anthropic") == 0) {
    c->style = LLM_ANTHROPIC;
  } else if (strcmp(style, "openai") == 0) {
    c->style = LLM_OPENAI;
  } else {
    err_set(err, "LMGEN_API_STYLE must be 'anthropic' or 'openai', not '%s'",
            style);
    llm_config_free(c);
    return -1;
  }
  if (strncasecmp(c->url, "http://", 7) != 0 &&
      strncasecmp(c->url, "https://", 8) != 0) {
    err_set(err, "LMGEN_API_URL must be an http:// or https:// URL");
    llm_config_free(c);
    return -1;
  }
  for (const char *p = c->key; *p; p++)
    if ((unsigned char)*p < 0x21 || *p == 0x7f) {
      err_set(err, "LMGEN_API_KEY contains a space or control character");
      llm_config_free(c);
      return -1;
    }
  const char *mt = getenv("LMGEN_MAX_TOKENS");
  if (mt && *mt) {
    char *end;
    long v = strtol(mt, &end, 10);
    if (*mt < '0' || *mt > '9' || *end || v < 1 || v > 1000000) {
      err_set(err, "LMGEN_MAX_TOKENS must be a whole number from 1 to "
                   "1000000");
      llm_config_free(c);
      return -1;
    }
    c->max_tokens = v;
  }
  return 0;
}

void llm_config_free(LlmConfig *c) {
  if (!c)
    return;
  free(c->url);
  if (c->key)
    memset(c->key, 0, strlen(c->key));
  free(c->key);
  free(c->model);
  c->url = c->key = c->model = NULL;
}

char *llm_request_body(const LlmConfig *c, const char *system,
                       const char *user) {
  json_t *body;
  if (c->style == LLM_ANTHROPIC)
    body = json_pack("{s:s, s:I, s:i, s:s, s:[{s:s, s:s}]}", "model", c->model,
                     "max_tokens", (json_int_t)c->max_tokens, "temperature", 0,
                     "system", system, "messages", "role", "user", "content",
                     user);
  else
    body = json_pack("{s:s, s:i, s:[{s:s, s:s}, {s:s, s:s}]}", "model",
                     c->model, "temperature", 0, "messages", "role", "system",
                     "content", system, "role", "user", "content", user);
  if (!body) {
    fputs("lm-predictor: out of memory\n", stderr);
    abort();
  }
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  return s;
}

static char *header(const char *name, const char *value) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s: %s", name, value);
  return buf_steal(&b);
}

char **llm_request_headers(const LlmConfig *c) {
  char **h = xcalloc(6, sizeof(char *));
  int n = 0;
  h[n++] = xstrdup("Content-Type: application/json");
  h[n++] = xstrdup("Accept: application/json");
  if (c->style == LLM_ANTHROPIC) {
    h[n++] = header("x-api-key", c->key);
    h[n++] = xstrdup("anthropic-version: 2023-06-01");
  } else {
    Buf b;
    buf_init(&b);
    buf_printf(&b, "Bearer %s", c->key);
    h[n++] = header("Authorization", buf_str(&b));
    buf_free(&b);
  }
  return h;
}

void llm_headers_free(char **h) {
  if (!h)
    return;
  for (char **p = h; *p; p++) {
    memset(*p, 0, strlen(*p)); /* one of them holds the key */
    free(*p);
  }
  free(h);
}

/* A JSON string member of obj, or NULL. */
static const char *str_at(const json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

int llm_reply_text(LlmStyle style, const char *body, size_t len, Buf *text,
                   Error *err) {
  json_error_t je;
  json_t *root = json_loadb(body, len, 0, &je);
  if (!root || !json_is_object(root)) {
    err_set(err, "the API reply is not a JSON object%s%s", root ? "" : ": ",
            root ? "" : je.text);
    json_decref(root);
    return -1;
  }
  int rc = -1;
  buf_reset(text);
  if (style == LLM_ANTHROPIC) {
    const json_t *content = json_object_get(root, "content");
    if (!json_is_array(content)) {
      err_set(err, "the API reply has no 'content' array (is LMGEN_API_STYLE "
                   "right?)");
      goto out;
    }
    size_t i;
    json_t *blk;
    json_array_foreach(content, i, blk) {
      const char *type = str_at(blk, "type"), *t = str_at(blk, "text");
      if (type && strcmp(type, "text") == 0 && t)
        buf_puts(text, t);
    }
    const char *stop = str_at(root, "stop_reason");
    if (stop && strcmp(stop, "max_tokens") == 0) {
      err_set(err, "the reply was cut off at the token limit; raise "
                   "LMGEN_MAX_TOKENS");
      goto out;
    }
  } else {
    const json_t *choices = json_object_get(root, "choices");
    const json_t *msg = json_object_get(json_array_get(choices, 0), "message");
    const json_t *content = json_object_get(msg, "content");
    if (json_is_string(content)) {
      buf_puts(text, json_string_value(content));
    } else if (json_is_array(content)) { /* a list of content parts */
      size_t i;
      json_t *part;
      json_array_foreach(content, i, part) {
        const char *t = str_at(part, "text");
        if (t)
          buf_puts(text, t);
      }
    } else {
      err_set(err, "the API reply has no choices[0].message.content (is "
                   "LMGEN_API_STYLE right?)");
      goto out;
    }
    const char *fin = str_at(json_array_get(choices, 0), "finish_reason");
    if (fin && strcmp(fin, "length") == 0) {
      err_set(err, "the reply was cut off at the token limit; raise "
                   "LMGEN_MAX_TOKENS");
      goto out;
    }
  }
  if (text->len == 0) {
    err_set(err, "the API reply holds no text");
    goto out;
  }
  rc = 0;
out:
  json_decref(root);
  return rc;
}

/* The first line of a non-JSON body, printable characters only. */
static void snippet(const char *body, size_t len, char *out, size_t outsz) {
  size_t n = 0;
  for (size_t i = 0; i < len && body[i] != '\n' && n + 4 < outsz; i++) {
    unsigned char c = (unsigned char)body[i];
    out[n++] = c >= 0x20 && c != 0x7f ? (char)c : '?';
  }
  if (n + 4 >= outsz)
    memcpy(out + n, "...", 3), n += 3;
  out[n] = '\0';
}

void llm_api_error(long status, const char *body, size_t len, Error *err) {
  json_t *root = json_loadb(body, len, 0, NULL);
  const json_t *e = json_object_get(root, "error");
  const char *type = str_at(e, "type"), *msg = str_at(e, "message");
  if (!msg && json_is_string(e))
    msg = json_string_value(e);
  if (!msg)
    msg = str_at(root, "message");
  const char *hint = status == 401 || status == 403 ? " (check LMGEN_API_KEY)"
                     : status == 404 ? " (check LMGEN_API_URL: the full "
                                       "endpoint URL; and LMGEN_API_STYLE)"
                                     : "";
  if (msg) {
    err_set(err, "API error: HTTP %ld%s%s%s: %s%s", status, type ? " (" : "",
            type ? type : "", type ? ")" : "", msg, hint);
  } else {
    char snip[160];
    snippet(body, len, snip, sizeof(snip));
    err_set(err, "API error: HTTP %ld%s%s%s", status, snip[0] ? ": " : "", snip,
            hint);
  }
  json_decref(root);
}

int llm_ask(const LlmConfig *c, const HttpTransport *t, const HttpOptions *o,
            const char *system, const char *user, Buf *text, Buf *raw,
            FILE *log, Error *err) {
  char *body = llm_request_body(c, system, user);
  char **headers = llm_request_headers(c);
  HttpRequest req = {.url = c->url,
                     .headers = (const char *const *)headers,
                     .body = body,
                     .body_len = strlen(body)};
  HttpResponse resp;
  http_response_init(&resp);
  int rc = http_post(t, &req, o, &resp, log, err);
  /* everything below sees the body with the key blanked out, in case the
   * API echoed it back */
  char *red = llm_redact(buf_str(&resp.body), c->key);
  size_t redlen = strlen(red);
  if (raw) { /* only a complete reply is worth keeping */
    buf_reset(raw);
    if (rc == 0)
      buf_puts(raw, red);
  }
  if (rc == 0 && (resp.status < 200 || resp.status > 299)) {
    llm_api_error(resp.status, red, redlen, err);
    if (resp.attempts > 1)
      err_prefix(err, "gave up after %d attempts: ", resp.attempts);
    rc = -1;
  } else if (rc == 0) {
    rc = llm_reply_text(c->style, red, redlen, text, err);
    if (rc == 0) {
      char *t2 = llm_redact(buf_str(text), c->key);
      buf_reset(text);
      buf_puts(text, t2);
      free(t2);
    }
  }
  free(red);
  if (rc < 0)
    llm_redact_error(err, c->key);
  http_response_free(&resp);
  llm_headers_free(headers);
  free(body);
  return rc;
}

char *llm_redact(const char *s, const char *secret) {
  Buf b;
  buf_init(&b);
  size_t n = secret ? strlen(secret) : 0;
  if (n < 8) {
    buf_puts(&b, s);
    return buf_steal(&b);
  }
  const char *p = s, *hit;
  while ((hit = strstr(p, secret))) {
    buf_append(&b, p, (size_t)(hit - p));
    buf_puts(&b, "[REDACTED]");
    p = hit + n;
  }
  buf_puts(&b, p);
  return buf_steal(&b);
}

static void redact_field(char *field, size_t size, const char *secret) {
  char *r = llm_redact(field, secret);
  snprintf(field, size, "%s", r);
  free(r);
}

void llm_redact_error(Error *e, const char *secret) {
  if (!e)
    return;
  redact_field(e->msg, sizeof(e->msg), secret);
  redact_field(e->context, sizeof(e->context), secret);
  redact_field(e->where, sizeof(e->where), secret);
  redact_field(e->file, sizeof(e->file), secret);
}
