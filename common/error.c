/* error.c: located error messages.
 *
 * An Error is filled once (the first failure wins) and printed by the
 * command's main. The printed form follows gcc/chibicc:
 *
 *   module_db.json:57:23: torch.nn.modules.linear.Linear.formulas.flops: error: unknown parameter 'N'
 *      57 |       "flops": "2 * {N} * {in_features}",
 *         |                     ^~~
 */
#include "common.h"

#include <string.h>

void err_clear(Error *e) {
  if (e)
    memset(e, 0, sizeof(*e));
}

void err_vset(Error *e, const char *fmt, va_list ap) {
  if (!e || e->set)
    return;
  e->set = true;
  vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

void err_set(Error *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  err_vset(e, fmt, ap);
  va_end(ap);
}

void err_file(Error *e, const char *file, const char *fmt, ...) {
  if (!e || e->set)
    return;
  va_list ap;
  va_start(ap, fmt);
  err_vset(e, fmt, ap);
  va_end(ap);
  if (file)
    snprintf(e->file, sizeof(e->file), "%s", file);
}

void err_context(Error *e, const char *text, int off, int len, int line) {
  err_context_n(e, text, (size_t)-1, off, len, line);
}

void err_context_n(Error *e, const char *text, size_t avail, int off, int len,
                   int line) {
  if (!e)
    return;
  size_t n = 0; /* up to the newline, the NUL or the end of the text */
  while (n < avail && text[n] != '\n' && text[n] != '\0')
    n++;
  if (n >= sizeof(e->context))
    n = sizeof(e->context) - 1;
  memcpy(e->context, text, n);
  e->context[n] = '\0';
  if (off < 0)
    off = 0;
  if ((size_t)off > n)
    off = (int)n;
  e->caret_col = off + 1;
  e->caret_len = len < 1 ? 1 : len;
  e->context_line = line;
}

void err_prefix(Error *e, const char *fmt, ...) {
  if (!e || !e->set)
    return;
  Buf b;
  buf_init(&b);
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(&b, fmt, ap);
  va_end(ap);
  buf_puts(&b, e->msg);
  snprintf(e->msg, sizeof(e->msg), "%s", buf_str(&b));
  buf_free(&b);
}

/* The caret line: copy tabs from the context so columns line up. */
static void render_caret(Buf *out, const Error *e) {
  for (int i = 0; i < e->caret_col - 1; i++) {
    unsigned char c = (unsigned char)e->context[i];
    if ((c & 0xC0) == 0x80)
      continue; /* UTF-8 continuation byte: same display column */
    buf_putc(out, c == '\t' ? '\t' : ' ');
  }
  buf_putc(out, '^');
  int rest = (int)strlen(e->context) - e->caret_col;
  int tildes = e->caret_len - 1;
  if (tildes > rest)
    tildes = rest > 0 ? rest : 0;
  for (int i = 0; i < tildes; i++)
    buf_putc(out, '~');
  buf_putc(out, '\n');
}

void err_render(Buf *out, const Error *e) {
  if (!e || !e->set)
    return;
  if (e->file[0]) {
    buf_puts(out, e->file);
    if (e->line > 0 && e->col > 0)
      buf_printf(out, ":%d:%d", e->line, e->col);
    else if (e->line > 0)
      buf_printf(out, ":%d", e->line);
    buf_puts(out, ": ");
  }
  if (e->where[0]) {
    buf_puts(out, e->where);
    /* a formula-relative position when the file position is unknown */
    if (e->line == 0 && e->context[0] && e->context_line == 0)
      buf_printf(out, ":1:%d", e->caret_col);
    buf_puts(out, ": ");
  }
  buf_printf(out, "error: %s\n", e->msg);
  if (!e->context[0])
    return;
  if (e->context_line > 0)
    buf_printf(out, "%6d | %s\n       | ", e->context_line, e->context);
  else
    buf_printf(out, "    %s\n    ", e->context);
  render_caret(out, e);
}

void err_print(FILE *out, const Error *e) {
  if (!e || !e->set)
    return;
  Buf b;
  buf_init(&b);
  err_render(&b, e);
  fputs(buf_str(&b), out);
  buf_free(&b);
}
