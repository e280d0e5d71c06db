/* jit.c: in-process compilation of generated modules with libtcc.
 *
 * All sources go into ONE compiler state as one string: the modabi.h
 * prelude once, then each file behind a `#line 1 "path"` directive so
 * diagnostics name the real file and line. Per-file system includes would
 * cost ~2 ms each (shared/notes/toolchain.md); with -nostdinc -nostdlib
 * there are none, and no libtcc1.a or libc is needed at run time.
 *
 * libtcc keeps global compiler state, so this file is the only place that
 * calls it, from one thread. A state that failed is deleted, never reused.
 */
#include "runtime.h"

#include <libtcc.h>
#include <stdlib.h>
#include <string.h>

extern const char lm_modabi_text[];

struct Jit {
  TCCState *s;
};

typedef struct JitErr {
  Error *err;
  const char *const *paths;
  const char *const *texts;
  int n;
} JitErr;

/* Point the error at path:line with that line of the source shown. */
static void locate(JitErr *je, const char *path, int line) {
  Error *e = je->err;
  snprintf(e->file, sizeof(e->file), "%s", path);
  e->line = line;
  e->col = 0; /* tcc reports no column */
  for (int i = 0; i < je->n; i++) {
    if (strcmp(je->paths[i], path) != 0)
      continue;
    const char *p = je->texts[i], *last = p;
    int l = 1;
    for (; l < line && p && *p; l++) {
      last = p;
      p = strchr(p, '\n');
      if (p)
        p++;
    }
    if (!p || !*p) {
      /* past the end: tcc saw the error at the sentinel after the file */
      p = last;
      e->line = line = l - 1;
    }
    if (p) {
      size_t len = strcspn(p, "\n");
      size_t lead = strspn(p, " \t");
      if (lead < len)
        err_context(e, p, (int)lead, (int)(len - lead), line);
    }
  }
}

/* tcc reports "path:line: error: msg" (or "tcc: error: msg" at link time,
 * or "In file included from ...\npath:line: ..."). Keep the first. */
static void on_error(void *opaque, const char *msg) {
  JitErr *je = opaque;
  if (!je->err || je->err->set)
    return;
  const char *m = strrchr(msg, '\n');
  m = m ? m + 1 : msg;
  const char *kind = strstr(m, ": error: ");
  bool warning = false;
  if (!kind) {
    kind = strstr(m, ": warning: ");
    warning = kind != NULL;
  }
  if (!kind) {
    err_set(je->err, "JIT: %s", m);
    return;
  }
  const char *text = kind + (warning ? 11 : 9);
  /* split "path:line" */
  const char *colon = NULL;
  for (const char *p = kind - 1; p > m; p--)
    if (*p == ':') {
      colon = p;
      break;
    }
  if (colon && strncmp(m, "tcc", 3) != 0) {
    char path[512];
    snprintf(path, sizeof(path), "%.*s", (int)(colon - m), m);
    int line = atoi(colon + 1);
    err_set(je->err, "%s%s", warning ? "(warning treated as error) " : "", text);
    locate(je, path, line);
  } else {
    err_set(je->err, "JIT link failed: %s (run `make generate`)", text);
  }
}

Jit *jit_compile(const char *const *paths, const char *const *texts, int n,
                 Error *err) {
  Error local; /* a fresh Error: an error set before this call is not ours */
  err_clear(&local);
  JitErr je = {.err = &local, .paths = paths, .texts = texts, .n = n};
  TCCState *s = tcc_new();
  if (!s) {
    err_set(err, "JIT: cannot create a compiler state");
    (void)je;
    return NULL;
  }
  tcc_set_error_func(s, &je, on_error);
  /* options are fixed strings: libtcc exit()s on an invalid one */
  tcc_set_options(s, "-nostdlib -nostdinc -Werror");
  tcc_set_output_type(s, TCC_OUTPUT_MEMORY);

  Buf src;
  buf_init(&src);
  buf_puts(&src, lm_modabi_text);
  for (int i = 0; i < n; i++) {
    buf_puts(&src, "#line 1 \"");
    for (const char *p = paths[i]; *p; p++) {
      if (*p == '"' || *p == '\\')
        buf_putc(&src, '\\');
      buf_putc(&src, *p);
    }
    buf_puts(&src, "\"\n");
    buf_puts(&src, texts[i]);
    /* A sentinel under the same #line: tcc reports an error at its
     * look-ahead token, which must not be the next file's first token. */
    buf_printf(&src, "\ntypedef int lm_end_of_file_%d;\n", i);
  }
  int rc = tcc_compile_string(s, buf_str(&src));
  buf_free(&src);
  if (rc == 0)
    rc = tcc_relocate(s, TCC_RELOCATE_AUTO);
  if (rc != 0 || local.set) {
    if (!local.set)
      err_set(&local, "JIT: compilation failed");
    if (err && !err->set)
      *err = local;
    tcc_delete(s);
    return NULL;
  }
  Jit *j = xmalloc(sizeof(Jit));
  j->s = s;
  return j;
}

void *jit_symbol(Jit *j, const char *name) {
  return j ? tcc_get_symbol(j->s, name) : NULL;
}

void jit_free(Jit *j) {
  if (!j)
    return;
  tcc_delete(j->s);
  free(j);
}
