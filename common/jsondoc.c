/* jsondoc.c: JSON documents and the located errors about them.
 *
 * A JsonDoc is a file name plus its raw text: the one thing every located
 * error needs, passed whole as Jansson's error_set(error, lex, ...) passes
 * its lexer. Loading a document is one path for every file the tools read
 * (module database, model, hardware): read the file whole, parse it with
 * Jansson (duplicate keys rejected), turn a syntax error into a located
 * one, then hand document and root to the part that builds its structure.
 */
#include "common.h"

#include <string.h>

void jdoc_free(JsonDoc *doc) {
  if (!doc)
    return;
  free((void *)doc->file);
  free((void *)doc->text);
  memset(doc, 0, sizeof(*doc));
}

/* Fill file position and a file-line caret for the byte at `off`. */
static void locate_at(Error *e, const char *text, size_t textlen, size_t off,
                      int len) {
  int line, col;
  text_linecol(text, off, &line, &col);
  e->line = line;
  e->col = col;
  size_t start = off - (size_t)(col - 1);
  err_context_n(e, text + start, textlen - start, col - 1, len, line);
}

static void set_where(Error *e, const JsonDoc *doc, const JsonPath *path) {
  if (doc && doc->file)
    snprintf(e->file, sizeof(e->file), "%s", doc->file);
  if (path)
    jp_format(path, e->where, sizeof(e->where));
}

int jdoc_verror(Error *e, const JsonDoc *doc, const JsonPath *path,
                const char *fmt, va_list ap) {
  if (!e || e->set)
    return -1;
  err_vset(e, fmt, ap);
  set_where(e, doc, path);
  const char *text = doc ? doc->text : NULL;
  if (!text || !path)
    return -1;
  long off = jloc_find_nearest(text, doc->len, path);
  if (off >= 0) {
    long end = jloc_value_end(text, doc->len, (size_t)off);
    int len = 1;
    if (end > off && text[off] != '{' && text[off] != '[')
      len = (int)(end - off);
    locate_at(e, text, doc->len, (size_t)off, len);
  }
  return -1;
}

int jdoc_error(Error *e, const JsonDoc *doc, const JsonPath *path,
               const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jdoc_verror(e, doc, path, fmt, ap);
  va_end(ap);
  return -1;
}

int jdoc_verror_string(Error *e, const JsonDoc *doc, const JsonPath *path,
                       const char *value, int off, int len, const char *fmt,
                       va_list ap) {
  if (!e || e->set)
    return -1;
  err_vset(e, fmt, ap);
  set_where(e, doc, path);
  const char *text = doc ? doc->text : NULL;
  size_t textlen = doc ? doc->len : 0;
  long q = text && path ? jloc_find(text, textlen, path) : -1;
  if (q >= 0 && text[q] == '"') {
    long a = jloc_string_offset(text, textlen, (size_t)q, (size_t)off);
    long b =
        jloc_string_offset(text, textlen, (size_t)q, (size_t)off + (size_t)len);
    if (a >= 0 && b < a)
      b = a + 1; /* the span runs past the string: the closing quote */
    if (a >= 0) {
      locate_at(e, text, textlen, (size_t)a, (int)(b - a));
      return -1;
    }
  }
  if (value)
    err_context(e, value, off, len, 0);
  return -1;
}

int jdoc_error_string(Error *e, const JsonDoc *doc, const JsonPath *path,
                      const char *value, int off, int len, const char *fmt,
                      ...) {
  va_list ap;
  va_start(ap, fmt);
  jdoc_verror_string(e, doc, path, value, off, len, fmt, ap);
  va_end(ap);
  return -1;
}

/* Jansson syntax error -> file:line:col with the offending line shown.
 * Jansson's column is that of the last character of the token it names in
 * "near 'TOKEN'", so the caret is moved back to the token's start. */
static void syntax_error(Error *err, const JsonDoc *doc, const char *jtext,
                         int jline, int jcol) {
  if (!err || err->set)
    return;
  const char *text = doc->text;
  size_t len = doc->len;
  err_file(err, doc->file, "invalid JSON: %s", jtext);
  if (jline < 1 || !text)
    return;
  int col = jcol > 0 ? jcol : 1, tok = 1;
  const char *near = strstr(jtext, "near '");
  const char *end = near ? strrchr(jtext, '\'') : NULL;
  if (near && end > near + 6) {
    int n = (int)(end - (near + 6));
    if (n <= col) {
      col = col - n + 1;
      tok = n;
    }
  }
  err->line = jline;
  err->col = col;
  const char *p = text;
  for (int l = 1; l < jline && p < text + len; l++) {
    const char *nl = memchr(p, '\n', (size_t)(text + len - p));
    if (!nl)
      break;
    p = nl + 1;
  }
  err_context_n(err, p, (size_t)(text + len - p), col - 1, tok, jline);
}

json_t *jdoc_parse(const JsonDoc *doc, Error *err) {
  json_t *root = json_fast_parse(doc->text, doc->len);
  if (root)
    return root;
  json_error_t je;
  root = json_loadb(doc->text, doc->len, JSON_REJECT_DUPLICATES, &je);
  if (!root)
    syntax_error(err, doc, je.text, je.line, je.column);
  return root;
}

json_t *jdoc_loadb(const char *text, size_t len) {
  json_t *root = json_fast_parse(text, len);
  return root ? root : json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
}

void *jdoc_load(const char *file, const char *text, size_t len, JdocBuild build,
                const void *ctx, Error *err) {
  JsonDoc doc = {.file = xstrdup(file)};
  if (text) {
    doc.text = xstrndup(text, len);
    doc.len = len;
  } else if (!(doc.text = fs_read(file, &doc.len, err))) {
    jdoc_free(&doc);
    return NULL;
  }
  void *out = NULL;
  json_t *root = jdoc_parse(&doc, err);
  if (root)
    out = build(&doc, root, ctx, err);
  json_decref(root);
  jdoc_free(&doc);
  return out;
}

int jdoc_only_members(Error *e, const JsonDoc *doc, JsonPath *path, json_t *o,
                      const char *const *keys, int n) {
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    int i = 0;
    while (i < n && strcmp(k, keys[i]) != 0)
      i++;
    if (i == n) {
      jp_key(path, k);
      return jdoc_error(e, doc, path, "unknown member '%s'", k);
    }
  }
  return 0;
}

const char *jdoc_string_member(Error *e, const JsonDoc *doc, JsonPath *path,
                               json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!json_is_string(v) || !json_string_length(v)) {
    if (v)
      jp_key(path, key);
    jdoc_error(e, doc, path,
               v ? "%s must be a non-empty string" : "missing member '%s'",
               key);
    return NULL;
  }
  return json_string_value(v);
}
