/* jsonparse.c: a fast path in front of Jansson's parser.
 *
 * json_loadb reads its input through a per-character stream (a function
 * call, a UTF-8 check and a line/column update per byte, every token's text
 * copied into a growing buffer): about 130 instructions a byte, the largest
 * single cost of an lmrun run (a 28 KB template, an 8 KB engine file). This
 * parser reads the same grammar from the buffer directly and builds the
 * same tree with Jansson's own constructors, in the same order, so the
 * result is the tree json_loadb(text, len, JSON_REJECT_DUPLICATES) gives.
 *
 * It decides only what it is sure of. Anything outside a plain subset is
 * left to Jansson: it returns NULL and the caller parses with json_loadb,
 * which gives its tree or its located error, byte for byte as before. Left
 * to Jansson: any syntax error (a stray byte, a trailing comma, a missing
 * quote, a leading zero, a top-level scalar, text after the value), a byte
 * >= 0x80 anywhere (UTF-8 checks), a control byte, a \u escape, a duplicate
 * key, a number of more than 63 characters or out of range (an integer
 * past long long, a real that over- or underflows), a decimal point other
 * than '.' in the locale, nesting deeper than 512, an allocation failure.
 * test_jsonparse and fuzz_jsonparse compare the two parsers.
 */
#include "common.h"

#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 512
#define MAX_NUMBER 63

typedef struct Parser {
  const char *p, *end;
  int depth;
  Buf str; /* a string with escapes, decoded */
} Parser;

static json_t *value(Parser *s);

static void skip_ws(Parser *s) {
  while (s->p < s->end &&
         (*s->p == ' ' || *s->p == '\n' || *s->p == '\t' || *s->p == '\r'))
    s->p++;
}

/* The escape after a backslash, or -1 (\u and anything else: Jansson). */
static int unescape(char c) {
  switch (c) {
  case '"':
  case '\\':
  case '/':
    return c;
  case 'b':
    return '\b';
  case 'f':
    return '\f';
  case 'n':
    return '\n';
  case 'r':
    return '\r';
  case 't':
    return '\t';
  default:
    return -1;
  }
}

/* A string at s->p (its opening quote): its bytes, a view of the text or
 * of s->str, and their length; s->p past the closing quote. -1: not ours
 * (a control byte, a byte >= 0x80, \u, an unknown escape, no end). */
static int string(Parser *s, const char **out, size_t *len) {
  const char *p = ++s->p, *b = p;
  while (p < s->end && *p != '"' && *p != '\\' &&
         (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80)
    p++;
  if (p < s->end && *p == '"') { /* no escapes: a view of the text */
    *out = b;
    *len = (size_t)(p - b);
    s->p = p + 1;
    return 0;
  }
  s->str.len = 0;
  buf_append(&s->str, b, (size_t)(p - b));
  while (p < s->end && *p != '"') {
    unsigned char c = (unsigned char)*p;
    if (c < 0x20 || c >= 0x80)
      return -1;
    if (c == '\\') {
      int u = p + 1 < s->end ? unescape(p[1]) : -1;
      if (u < 0)
        return -1;
      buf_putc(&s->str, (char)u);
      p += 2;
    } else {
      buf_putc(&s->str, (char)c);
      p++;
    }
  }
  if (p >= s->end)
    return -1;
  *out = s->str.data ? s->str.data : "";
  *len = s->str.len;
  s->p = p + 1;
  return 0;
}

static bool digit(const Parser *s, const char *p) {
  return p < s->end && *p >= '0' && *p <= '9';
}

/* A number in JSON's grammar, converted as Jansson converts it: strtoll
 * for one without '.', 'e' or 'E', else strtod (Jansson's jsonp_strtod is
 * strtod where the locale's decimal point is '.', checked by the caller). */
static json_t *number(Parser *s) {
  const char *p = s->p;
  bool real = false;
  if (*p == '-')
    p++;
  if (!digit(s, p))
    return NULL;
  if (*p == '0')
    p++;
  else
    while (digit(s, p))
      p++;
  if (p < s->end && *p == '.') {
    p++;
    if (!digit(s, p))
      return NULL;
    while (digit(s, p))
      p++;
    real = true;
  }
  if (p < s->end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < s->end && (*p == '+' || *p == '-'))
      p++;
    if (!digit(s, p))
      return NULL;
    while (digit(s, p))
      p++;
    real = true;
  }
  size_t n = (size_t)(p - s->p);
  if (n > MAX_NUMBER)
    return NULL;
  char text[MAX_NUMBER + 1], *end;
  memcpy(text, s->p, n);
  text[n] = '\0';
  errno = 0;
  json_t *v;
  if (real) {
    double d = strtod(text, &end);
    v = errno || end != text + n ? NULL : json_real(d);
  } else {
    long long i = strtoll(text, &end, 10);
    v = errno || end != text + n ? NULL : json_integer(i);
  }
  s->p = p;
  return v;
}

static bool literal(Parser *s, const char *word, size_t n) {
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
    return false;
  s->p += n;
  return true;
}

/* After a member or element: ',' (true, more follow) or `close` (false,
 * s->p past it); anything else is not ours (-1). */
static int next_item(Parser *s, char close) {
  skip_ws(s);
  if (s->p < s->end && *s->p == ',') {
    s->p++;
    skip_ws(s);
    return 1;
  }
  if (s->p < s->end && *s->p == close) {
    s->p++;
    return 0;
  }
  return -1;
}

static json_t *object(Parser *s) {
  json_t *o = json_object();
  s->p++;
  skip_ws(s);
  if (o && s->p < s->end && *s->p == '}') {
    s->p++;
    return o;
  }
  for (int more = 1; o && more == 1;) {
    const char *key;
    size_t klen;
    if (s->p >= s->end || *s->p != '"' || string(s, &key, &klen) < 0)
      break;
    /* the key's bytes may sit in s->str, which the value may reuse */
    char small[64], *k = klen < sizeof(small) ? small : malloc(klen + 1);
    if (!k)
      break;
    memcpy(k, key, klen);
    skip_ws(s);
    json_t *v = NULL;
    if (s->p < s->end && *s->p == ':' && !json_object_getn(o, k, klen)) {
      s->p++;
      skip_ws(s);
      v = value(s);
    }
    int bad = !v || json_object_setn_new_nocheck(o, k, klen, v) != 0;
    if (k != small)
      free(k);
    if (bad)
      break;
    if ((more = next_item(s, '}')) == 0)
      return o;
  }
  json_decref(o);
  return NULL;
}

static json_t *array(Parser *s) {
  json_t *a = json_array();
  s->p++;
  skip_ws(s);
  if (a && s->p < s->end && *s->p == ']') {
    s->p++;
    return a;
  }
  for (int more = 1; a && more == 1;) {
    json_t *v = value(s);
    if (!v || json_array_append_new(a, v) != 0)
      break;
    if ((more = next_item(s, ']')) == 0)
      return a;
  }
  json_decref(a);
  return NULL;
}

/* A value at s->p (no white space before it), or NULL: not ours. */
static json_t *value(Parser *s) {
  if (s->p >= s->end || s->depth >= MAX_DEPTH)
    return NULL;
  json_t *v = NULL;
  s->depth++;
  switch (*s->p) {
  case '{':
    v = object(s);
    break;
  case '[':
    v = array(s);
    break;
  case '"': {
    const char *str;
    size_t n;
    if (string(s, &str, &n) == 0)
      v = json_stringn_nocheck(str, n);
    break;
  }
  case 't':
    v = literal(s, "true", 4) ? json_true() : NULL;
    break;
  case 'f':
    v = literal(s, "false", 5) ? json_false() : NULL;
    break;
  case 'n':
    v = literal(s, "null", 4) ? json_null() : NULL;
    break;
  default:
    if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
      v = number(s);
  }
  s->depth--;
  return v;
}

json_t *json_fast_parse(const char *text, size_t len) {
  const char *point = localeconv()->decimal_point;
  if (!text || !point || strcmp(point, ".") != 0)
    return NULL;
  Parser s = {.p = text, .end = text + len};
  buf_init(&s.str);
  skip_ws(&s);
  json_t *root = NULL;
  if (s.p < s.end && (*s.p == '{' || *s.p == '['))
    root = value(&s);
  buf_free(&s.str);
  if (root) {
    skip_ws(&s);
    if (s.p != s.end) { /* text after the value: Jansson's error */
      json_decref(root);
      root = NULL;
    }
  }
  return root;
}
