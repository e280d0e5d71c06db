/* tokenize.c: formula text -> Token list ending in TK_EOF.
 *
 * Tokens point into the formula (loc/off/len) so every later error can put
 * a caret under the exact text. {name} and ${dotted.Name} are single tokens,
 * so a caret covers the whole reference. Anything outside the language,
 * such as ';' or '"', is rejected here, before any parsing.
 */
#include "gen.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void formula_error(Error *err, const FormulaSrc *src, const Token *tok,
                   const char *fmt, ...) {
  int off = tok ? tok->off : 0, len = tok ? tok->len : 1;
  va_list ap;
  va_start(ap, fmt);
  jdoc_verror_string(err, src->doc, src->path, src->text, off, len, fmt, ap);
  va_end(ap);
}

bool tok_equal(const Token *t, const char *op) {
  /* the first byte first: the parser asks every token about each
   * operator it could be */
  return t->kind == TK_PUNCT && t->loc[0] == op[0] &&
         (size_t)t->len == strlen(op) &&
         memcmp(t->loc, op, (size_t)t->len) == 0;
}

static bool is_ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool is_ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

static Token *new_token(Arena *a, TokenKind kind, const char *text, int off,
                        int len) {
  Token *t = arena_alloc(a, sizeof(Token));
  t->kind = kind;
  t->off = off;
  t->len = len;
  t->loc = text + off;
  return t;
}

/* Length of [A-Za-z_][A-Za-z0-9_]* at p, 0 if none. */
static int ident_len(const char *p) {
  if (!is_ident_start(*p))
    return 0;
  int n = 1;
  while (is_ident_char(p[n]))
    n++;
  return n;
}

/* Scan a number; returns its length or -1 if malformed. */
static int number_len(const char *p) {
  int n = 0;
  bool digits = false;
  while (isdigit((unsigned char)p[n])) {
    n++;
    digits = true;
  }
  if (p[n] == '.') {
    n++;
    while (isdigit((unsigned char)p[n])) {
      n++;
      digits = true;
    }
  }
  if (!digits)
    return -1;
  if (p[n] == 'e' || p[n] == 'E') {
    int m = n + 1;
    if (p[m] == '+' || p[m] == '-')
      m++;
    if (!isdigit((unsigned char)p[m]))
      return -1;
    while (isdigit((unsigned char)p[m]))
      m++;
    n = m;
  }
  if (is_ident_char(p[n]) || p[n] == '.')
    return -1;
  return n;
}

/* Length of the run of characters a malformed token spans, for the caret. */
static int bad_run(const char *p) {
  int n = 1;
  while (is_ident_char(p[n]) || p[n] == '.')
    n++;
  return n;
}

Token *tokenize(Arena *a, const FormulaSrc *src, Error *err) {
  const char *text = src->text;
  Token head = {0}, *cur = &head;
  int i = 0;
  while (text[i]) {
    char c = text[i];
    if (c == ' ' || c == '\t') {
      i++;
      continue;
    }
    if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)text[i + 1]))) {
      int n = number_len(text + i);
      if (n < 0) {
        Token bad = {.off = i, .len = bad_run(text + i)};
        formula_error(err, src, &bad, "malformed number");
        return NULL;
      }
      Token *t = new_token(a, TK_NUM, text, i, n);
      char tmp[64];
      if (n >= (int)sizeof(tmp)) {
        formula_error(err, src, t, "number too long");
        return NULL;
      }
      memcpy(tmp, text + i, (size_t)n);
      tmp[n] = '\0';
      t->val = strtod(tmp, NULL);
      if (!isfinite(t->val)) {
        formula_error(err, src, t, "number out of range");
        return NULL;
      }
      cur = cur->next = t;
      i += n;
      continue;
    }
    if (c == '{' || (c == '$' && text[i + 1] == '{')) {
      bool mod = c == '$';
      int start = i, p = i + (mod ? 2 : 1);
      int n = ident_len(text + p);
      int name_start = p;
      while (n > 0) {
        p += n;
        if (!mod || text[p] != '.')
          break;
        n = ident_len(text + p + 1);
        if (n > 0)
          p++;
      }
      int close = p;
      while (text[close] && text[close] != '}' && text[close] != '{')
        close++;
      Token whole = {.off = start,
                     .len = (text[close] == '}' ? close + 1 : close) - start};
      if (text[close] != '}') {
        formula_error(err, src, &whole, "unterminated %s reference",
                      mod ? "module" : "parameter");
        return NULL;
      }
      if (p == name_start || close != p) {
        if (close == name_start)
          formula_error(err, src, &whole, "empty %s name",
                        mod ? "module" : "parameter");
        else if (mod)
          formula_error(err, src, &whole,
                        "invalid module name: write ${package.module.Class}");
        else
          formula_error(err, src, &whole,
                        "invalid parameter name: letters, digits and '_', "
                        "not starting with a digit");
        return NULL;
      }
      Token *t = new_token(a, mod ? TK_MODREF : TK_PARAM, text, start,
                           close + 1 - start);
      t->name = arena_strndup(a, text + name_start, (size_t)(p - name_start));
      cur = cur->next = t;
      i = close + 1;
      continue;
    }
    if (is_ident_start(c)) {
      int n = ident_len(text + i);
      Token *t = new_token(a, TK_IDENT, text, i, n);
      t->name = arena_strndup(a, text + i, (size_t)n);
      cur = cur->next = t;
      i += n;
      continue;
    }
    if (c == '/' && text[i + 1] == '/') {
      cur = cur->next = new_token(a, TK_PUNCT, text, i, 2);
      i += 2;
      continue;
    }
    if (strchr("+-*/(),", c)) {
      cur = cur->next = new_token(a, TK_PUNCT, text, i, 1);
      i++;
      continue;
    }
    Token bad = {.off = i, .len = 1};
    if (isprint((unsigned char)c))
      formula_error(err, src, &bad, "unexpected character '%c'", c);
    else
      formula_error(err, src, &bad, "unexpected byte 0x%02x",
                    (unsigned char)c);
    return NULL;
  }
  cur->next = new_token(a, TK_EOF, text, i, 1);
  return head.next;
}
