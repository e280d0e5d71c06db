/* jsonloc.c: positions inside raw JSON text.
 *
 * Jansson reports positions only for syntax errors; a loaded value carries
 * none. To point a caret at an offending value we re-scan the raw text of
 * the (already validated) file along the value's path. The scanner is
 * tolerant: on anything unexpected it gives up and the caller falls back
 * to a formula-relative caret. The located errors built on it are
 * jsondoc.c's.
 */
#include "common.h"

#include <string.h>

void jp_init(JsonPath *p) { p->n = 0; }

void jp_key(JsonPath *p, const char *key) {
  if (p->n < JSONPATH_MAX) {
    p->c[p->n].key = key;
    p->c[p->n].index = 0;
  }
  p->n++;
}

void jp_index(JsonPath *p, int index) {
  if (p->n < JSONPATH_MAX) {
    p->c[p->n].key = NULL;
    p->c[p->n].index = index;
  }
  p->n++;
}

void jp_pop(JsonPath *p) {
  if (p->n > 0)
    p->n--;
}

static bool is_plain_key(const char *k) {
  if (!*k)
    return false;
  for (const char *s = k; *s; s++) {
    char c = *s;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
          (c >= '0' && c <= '9' && s != k)))
      return false;
  }
  return true;
}

void jp_format(const JsonPath *p, char *out, size_t outsz) {
  Buf b;
  buf_init(&b);
  int n = p->n < JSONPATH_MAX ? p->n : JSONPATH_MAX;
  for (int i = 0; i < n; i++) {
    if (!p->c[i].key)
      buf_printf(&b, "[%d]", p->c[i].index);
    else if (is_plain_key(p->c[i].key))
      buf_printf(&b, ".%s", p->c[i].key);
    else {
      buf_puts(&b, "[\"");
      for (const char *s = p->c[i].key; *s; s++) {
        if (*s == '"' || *s == '\\')
          buf_putc(&b, '\\');
        buf_putc(&b, *s);
      }
      buf_puts(&b, "\"]");
    }
  }
  if (!b.len)
    buf_putc(&b, '.');
  snprintf(out, outsz, "%s", buf_str(&b));
  buf_free(&b);
}

static size_t skip_ws(const char *t, size_t len, size_t i) {
  while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' ||
                     t[i] == '\r'))
    i++;
  return i;
}

/* i at the opening quote; returns the index after the closing quote. */
static long skip_string(const char *t, size_t len, size_t i) {
  if (i >= len || t[i] != '"')
    return -1;
  for (i++; i < len; i++) {
    if (t[i] == '\\')
      i++;
    else if (t[i] == '"')
      return (long)i + 1;
  }
  return -1;
}

static long skip_value(const char *t, size_t len, size_t i, int depth) {
  i = skip_ws(t, len, i);
  if (i >= len || depth > 512)
    return -1;
  char c = t[i];
  if (c == '"')
    return skip_string(t, len, i);
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    i = skip_ws(t, len, i + 1);
    if (i < len && t[i] == close)
      return (long)i + 1;
    for (;;) {
      if (c == '{') {
        long k = skip_string(t, len, skip_ws(t, len, i));
        if (k < 0)
          return -1;
        i = skip_ws(t, len, (size_t)k);
        if (i >= len || t[i] != ':')
          return -1;
        i++;
      }
      long v = skip_value(t, len, i, depth + 1);
      if (v < 0)
        return -1;
      i = skip_ws(t, len, (size_t)v);
      if (i < len && t[i] == ',') {
        i++;
        continue;
      }
      if (i < len && t[i] == close)
        return (long)i + 1;
      return -1;
    }
  }
  /* number, true, false, null */
  size_t j = i;
  while (j < len && !strchr(",]} \t\r\n", t[j]))
    j++;
  return j > i ? (long)j : -1;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decode one character of a string literal at t[*i]; advance *i past it and
 * return how many UTF-8 bytes it decodes to (0 on malformed input). */
static int decode_one(const char *t, size_t len, size_t *i) {
  if (t[*i] != '\\') {
    (*i)++;
    return 1;
  }
  if (*i + 1 >= len)
    return 0;
  if (t[*i + 1] != 'u') {
    *i += 2;
    return 1;
  }
  if (*i + 6 > len)
    return 0;
  unsigned cp = 0;
  for (int k = 0; k < 4; k++) {
    int h = hexval(t[*i + 2 + k]);
    if (h < 0)
      return 0;
    cp = cp * 16 + (unsigned)h;
  }
  *i += 6;
  if (cp >= 0xD800 && cp < 0xDC00 && *i + 6 <= len && t[*i] == '\\' &&
      t[*i + 1] == 'u') {
    *i += 6; /* low surrogate: the pair is one 4-byte character */
    return 4;
  }
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
}

long jloc_string_offset(const char *text, size_t len, size_t quote_off,
                        size_t doff) {
  size_t i = quote_off + 1, d = 0;
  while (i < len && text[i] != '"') {
    if (d >= doff)
      return (long)i;
    int n = decode_one(text, len, &i);
    if (n == 0)
      return -1;
    d += (size_t)n;
  }
  return d >= doff ? (long)i : -1;
}

/* Compare a raw string literal (at its quote) with a decoded key. Keys with
 * escapes compare byte-wise on the raw text, which suffices for our keys. */
static bool key_equals(const char *t, size_t len, size_t i, const char *key) {
  size_t klen = strlen(key);
  if (i + 1 + klen + 1 > len)
    return false;
  return memcmp(t + i + 1, key, klen) == 0 && t[i + 1 + klen] == '"';
}

/* Returns the value offset of the deepest path prefix found; *found is the
 * number of components matched. */
static long locate_from(const char *t, size_t len, size_t start,
                        const JsonPath *p, int d0, int *found) {
  size_t i = skip_ws(t, len, start);
  *found = d0;
  int n = p->n < JSONPATH_MAX ? p->n : JSONPATH_MAX;
  for (int d = d0; d < n; d++) {
    if (i >= len)
      return -1;
    if (p->c[d].key) {
      if (t[i] != '{')
        return (long)i;
      i = skip_ws(t, len, i + 1);
      bool hit = false;
      while (i < len && t[i] == '"') {
        bool match = key_equals(t, len, i, p->c[d].key);
        long k = skip_string(t, len, i);
        if (k < 0)
          return -1;
        i = skip_ws(t, len, (size_t)k);
        if (i >= len || t[i] != ':')
          return -1;
        i = skip_ws(t, len, i + 1);
        if (match) {
          hit = true;
          break;
        }
        long v = skip_value(t, len, i, 0);
        if (v < 0)
          return -1;
        i = skip_ws(t, len, (size_t)v);
        if (i < len && t[i] == ',')
          i = skip_ws(t, len, i + 1);
      }
      if (!hit)
        return -2;
    } else {
      if (t[i] != '[')
        return (long)i;
      i = skip_ws(t, len, i + 1);
      for (int k = 0; k < p->c[d].index; k++) {
        long v = skip_value(t, len, i, 0);
        if (v < 0)
          return -2;
        i = skip_ws(t, len, (size_t)v);
        if (i >= len || t[i] != ',')
          return -2;
        i = skip_ws(t, len, i + 1);
      }
      if (i >= len || t[i] == ']')
        return -2;
    }
    *found = d + 1;
  }
  return (long)i;
}

static long locate_prefix(const char *t, size_t len, const JsonPath *p,
                          int *found) {
  return locate_from(t, len, 0, p, 0, found);
}

long jloc_find_from(const char *text, size_t len, size_t start,
                    const JsonPath *path, int depth) {
  if (!text || path->n > JSONPATH_MAX || depth < 0 || depth > path->n ||
      start > len)
    return -1;
  int found;
  long off = locate_from(text, len, start, path, depth, &found);
  return found == path->n && off >= 0 ? off : -1;
}

long jloc_find(const char *text, size_t len, const JsonPath *path) {
  if (!text || path->n > JSONPATH_MAX)
    return -1;
  int found;
  long off = locate_prefix(text, len, path, &found);
  return found == path->n && off >= 0 ? off : -1;
}

long jloc_find_nearest(const char *text, size_t len, const JsonPath *path) {
  int found;
  long off = locate_prefix(text, len, path, &found);
  if (off == -2 && found < path->n) {
    /* missing member: the closest existing ancestor */
    JsonPath anc = *path;
    anc.n = found;
    off = locate_prefix(text, len, &anc, &found);
  }
  return off >= 0 && (size_t)off < len ? off : -1;
}

long jloc_value_end(const char *text, size_t len, size_t off) {
  return skip_value(text, len, off, 0);
}

void text_linecol(const char *text, size_t off, int *line, int *col) {
  /* the newlines before off (or before the text's end, if sooner), found
   * with strnlen and memchr, which scan words, not bytes: a config's keys
   * are located on every run (their lines, for --explain), 10 to 60 times
   * over a template of up to 28 KB */
  size_t n = strnlen(text, off);
  int l = 1;
  size_t bol = 0;
  for (const char *p = text, *end = text + n;
       (p = memchr(p, '\n', (size_t)(end - p))); p++) {
    l++;
    bol = (size_t)(p - text) + 1;
  }
  *line = l;
  *col = (int)(off - bol) + 1;
}

void jloc_index_init(JlocIndex *x, const char *text, size_t len,
                     const JsonPath *prefix) {
  *x = (JlocIndex){.text = text, .len = len, .depth = -1};
  if (prefix->n > JSONPATH_MAX)
    return;
  long off = text ? jloc_find(text, len, prefix) : -1;
  if (off < 0 || (size_t)off >= len || text[off] != '{')
    return;
  /* the same walk as locate_from's over one object, every member kept */
  size_t i = skip_ws(text, len, (size_t)off + 1);
  int cap = 0;
  while (i < len && text[i] == '"') {
    size_t q = i;
    long k = skip_string(text, len, i);
    if (k < 0)
      goto bad;
    i = skip_ws(text, len, (size_t)k);
    if (i >= len || text[i] != ':')
      goto bad;
    i = skip_ws(text, len, i + 1);
    if (x->n == cap) {
      cap = cap ? 2 * cap : 32;
      size_t *nq = realloc(x->quote, (size_t)cap * sizeof(*nq));
      size_t *nv = nq ? realloc(x->val, (size_t)cap * sizeof(*nv)) : NULL;
      if (nq)
        x->quote = nq;
      if (!nv)
        goto bad;
      x->val = nv;
    }
    x->quote[x->n] = q;
    x->val[x->n++] = i;
    long v = skip_value(text, len, i, 0);
    if (v < 0)
      break; /* members before it are located as locate_from would */
    i = skip_ws(text, len, (size_t)v);
    if (i < len && text[i] == ',')
      i = skip_ws(text, len, i + 1);
  }
  x->depth = prefix->n;
  x->prefix = *prefix;
  return;
bad:
  jloc_index_free(x);
  *x = (JlocIndex){.text = text, .len = len, .depth = -1};
}

/* path starts with prefix (prefix->n <= path->n <= JSONPATH_MAX) */
static bool same_prefix(const JsonPath *prefix, const JsonPath *path) {
  for (int d = 0; d < prefix->n; d++) {
    const char *a = prefix->c[d].key, *b = path->c[d].key;
    if (a ? !b || strcmp(a, b) != 0 : b || prefix->c[d].index != path->c[d].index)
      return false;
  }
  return true;
}

long jloc_index_find(const JlocIndex *x, const JsonPath *path) {
  if (x->depth < 0 || path->n <= x->depth || path->n > JSONPATH_MAX ||
      !path->c[x->depth].key || !same_prefix(&x->prefix, path))
    return jloc_find(x->text, x->len, path);
  for (int m = 0; m < x->n; m++)
    if (key_equals(x->text, x->len, x->quote[m], path->c[x->depth].key))
      return jloc_find_from(x->text, x->len, x->val[m], path, x->depth + 1);
  return -1;
}

void jloc_index_free(JlocIndex *x) {
  free(x->quote);
  free(x->val);
  x->quote = x->val = NULL;
  x->n = 0;
}
