/* buf.c: growable strings (after sds) and the checked allocators.
 *
 * Invariant: when data != NULL, data[len] == '\0' and len < cap. An append
 * may move data, so callers keep a Buf *, never a cached char *.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fputs("lm-predictor: out of memory\n", stderr);
    exit(2);
  }
  return p;
}

void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) {
    fputs("lm-predictor: out of memory\n", stderr);
    exit(2);
  }
  return p;
}

void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) {
    fputs("lm-predictor: out of memory\n", stderr);
    exit(2);
  }
  return p;
}

char *xstrndup(const char *s, size_t n) {
  char *p = xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

void buf_init(Buf *b) { memset(b, 0, sizeof(*b)); }

void buf_free(Buf *b) {
  free(b->data);
  buf_init(b);
}

void buf_reset(Buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

static void reserve(Buf *b, size_t extra) {
  if (b->data && b->len + extra < b->cap)
    return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap <= b->len + extra)
    cap *= 2;
  b->data = xrealloc(b->data, cap);
  b->cap = cap;
}

void buf_append(Buf *b, const void *p, size_t n) {
  reserve(b, n);
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void buf_puts(Buf *b, const char *s) { buf_append(b, s, strlen(s)); }

void buf_putc(Buf *b, char c) { buf_append(b, &c, 1); }

/* Formatted once into the room the buffer has (the common case: a table
 * line, a cell), twice only when it does not fit: first to learn the
 * length, then into room made for it. */
void buf_vprintf(Buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  size_t room = b->data ? b->cap - b->len : 0;
  int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
  va_end(ap2);
  if (n >= 0 && (size_t)n < room) {
    b->len += (size_t)n;
    return;
  }
  if (room)
    b->data[b->len] = '\0'; /* whatever a failed or cut-short try left */
  if (n < 0)
    return;
  reserve(b, (size_t)n);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void buf_printf(Buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(b, fmt, ap);
  va_end(ap);
}

char *buf_steal(Buf *b) {
  char *p = b->data ? b->data : xstrdup("");
  buf_init(b);
  return p;
}

const char *buf_str(const Buf *b) { return b->data ? b->data : ""; }

void str_put(char *out, size_t outsz, size_t *at, const char *s) {
  size_t n = strlen(s);
  if (*at + n >= outsz)
    n = outsz - 1 - *at;
  memcpy(out + *at, s, n);
  *at += n;
}

long str_find_control(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n; i++) {
    if (u[i] < 0x20 || u[i] == 0x7f)
      return (long)i;
    if (u[i] == 0xc2 && i + 1 < n && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f)
      return (long)i;
  }
  return -1;
}
