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
 *
 * jit_compile_cached goes through the cache of compiled code (jitcache.c):
 * a hit is linked by objload.c without libtcc; a miss is compiled once, to
 * an object (TCC_OUTPUT_OBJ), stored and loaded the same way; anything
 * else falls back to jit_compile (DESIGN.md §7.10).
 */
#include "runtime.h"

#include <libtcc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const char lm_modabi_text[];

/* options are fixed strings: libtcc exit()s on an invalid one */
#define JIT_OPTIONS "-nostdlib -nostdinc -Werror"

struct Jit {
  TCCState *s;   /* compiled in memory by libtcc, or */
  ObjImage *obj; /* loaded from the cache (or from the object just made) */
  bool cached;   /* obj came from the cache file */
  char key[33];  /* its key in the cache; "" if not stored there */
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

/* The one string libtcc compiles: the prelude, then each file. */
static void build_source(Buf *src, const char *const *paths,
                         const char *const *texts, int n) {
  buf_init(src);
  buf_puts(src, lm_modabi_text);
  for (int i = 0; i < n; i++) {
    buf_puts(src, "#line 1 \"");
    for (const char *p = paths[i]; *p; p++) {
      if (*p == '"' || *p == '\\')
        buf_putc(src, '\\');
      buf_putc(src, *p);
    }
    buf_puts(src, "\"\n");
    buf_puts(src, texts[i]);
    /* A sentinel under the same #line: tcc reports an error at its
     * look-ahead token, which must not be the next file's first token. */
    buf_printf(src, "\ntypedef int lm_end_of_file_%d;\n", i);
  }
}

static TCCState *new_state(JitErr *je, int output) {
  TCCState *s = tcc_new();
  if (!s)
    return NULL;
  tcc_set_error_func(s, je, on_error);
  tcc_set_options(s, JIT_OPTIONS);
  tcc_set_output_type(s, output);
  return s;
}

static Jit *compile_source(const char *src, const char *const *paths,
                           const char *const *texts, int n, Error *err) {
  Error local; /* a fresh Error: an error set before this call is not ours */
  err_clear(&local);
  JitErr je = {.err = &local, .paths = paths, .texts = texts, .n = n};
  TCCState *s = new_state(&je, TCC_OUTPUT_MEMORY);
  if (!s) {
    err_set(err, "JIT: cannot create a compiler state");
    return NULL;
  }
  int rc = tcc_compile_string(s, src);
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
  Jit *j = xcalloc(1, sizeof(Jit));
  j->s = s;
  return j;
}

Jit *jit_compile(const char *const *paths, const char *const *texts, int n,
                 Error *err) {
  Buf src;
  build_source(&src, paths, texts, n);
  Jit *j = compile_source(buf_str(&src), paths, texts, n, err);
  buf_free(&src);
  return j;
}

/* A miss: compile to a relocatable object in the cache directory, load it
 * with obj_load and store it under key. NULL (and nothing stored) on any
 * failure, errors included: the caller then compiles in memory, which
 * gives the same answer or the same located error as without a cache. */
static ObjImage *compile_object(const char *dir, const char *key,
                                const char *src) {
  if (jitcache_mkdir(dir) < 0)
    return NULL;
  Buf tmp;
  buf_init(&tmp);
  buf_printf(&tmp, "%s/%s.o.XXXXXX", dir, key);
  int fd = mkstemp(tmp.data);
  if (fd < 0) {
    buf_free(&tmp);
    return NULL;
  }
  close(fd);
  Error local;
  err_clear(&local);
  JitErr je = {.err = &local};
  TCCState *s = new_state(&je, TCC_OUTPUT_OBJ);
  int rc = s ? tcc_compile_string(s, src) : -1;
  if (rc == 0 && !local.set)
    rc = tcc_output_file(s, tmp.data);
  if (s)
    tcc_delete(s);
  size_t len = 0;
  char *obj = rc == 0 && !local.set ? fs_read(tmp.data, &len, &local) : NULL;
  unlink(tmp.data);
  buf_free(&tmp);
  ObjImage *o = obj ? obj_load(obj, len, &local) : NULL;
  if (o)
    jitcache_store(dir, key, obj, len, &local); /* a cache: best effort */
  free(obj);
  return o;
}

/* What the key hashes besides the sources: the compiler's options and
 * the caller's salt. */
static void cache_opts(Buf *opts, const char *salt) {
  buf_init(opts);
  buf_printf(opts, "%s; %s", JIT_OPTIONS, salt ? salt : "");
}

static char *cache_key(const char *salt, const char *const *paths,
                       const char *const *texts, int n, char key[33]) {
  char *dir = jitcache_dir();
  if (dir) {
    Buf opts;
    cache_opts(&opts, salt);
    jitcache_key(opts.data, paths, texts, n, key);
    buf_free(&opts);
  }
  return dir;
}

/* o, loaded from the cache (hit) or from the object just stored there
 * under key. */
static Jit *wrap(ObjImage *o, bool hit, const char *key) {
  Jit *j = xcalloc(1, sizeof(Jit));
  j->obj = o;
  j->cached = hit;
  snprintf(j->key, sizeof(j->key), "%s", key);
  return j;
}

/* The cache's object under key in dir, or NULL. */
static Jit *load_hit(const char *dir, const char *key) {
  Error why;
  err_clear(&why);
  ObjImage *o = jitcache_load(dir, key, &why);
  return o ? wrap(o, true, key) : NULL;
}

Jit *jit_cache_lookup(const char *salt, const char *const *paths,
                      const char *const *texts, int n) {
  char key[33];
  char *dir = cache_key(salt, paths, texts, n, key);
  Jit *j = dir ? load_hit(dir, key) : NULL;
  free(dir);
  return j;
}

Jit *jit_cache_load_key(const char *key) {
  char *dir = jitcache_dir();
  Jit *j = dir ? load_hit(dir, key) : NULL;
  free(dir);
  return j;
}

int jit_stamp_key(const char *salt, const char *const *paths,
                  const char *const *shown, int n, char key[33],
                  bool *settled) {
  char *dir = jitcache_dir();
  if (!dir)
    return -1;
  free(dir);
  Buf opts;
  cache_opts(&opts, salt);
  int rc = jitcache_stamp_key(opts.data, paths, shown, n, key, settled);
  buf_free(&opts);
  return rc;
}

const char *jit_cache_key(const Jit *j) { return j ? j->key : ""; }

Jit *jit_compile_cached(const char *salt, const char *const *paths,
                        const char *const *texts, int n, Error *err) {
  char key[33];
  char *dir = cache_key(salt, paths, texts, n, key);
  if (!dir)
    return jit_compile(paths, texts, n, err);
  Jit *j = load_hit(dir, key);
  if (!j) {
    Buf src;
    build_source(&src, paths, texts, n);
    ObjImage *o = compile_object(dir, key, src.data);
    j = o ? wrap(o, false, key)
          : compile_source(src.data, paths, texts, n, err);
    buf_free(&src);
  }
  free(dir);
  return j;
}

bool jit_cached(const Jit *j) { return j && j->cached; }

void *jit_symbol(Jit *j, const char *name) {
  if (!j)
    return NULL;
  return j->s ? tcc_get_symbol(j->s, name) : obj_symbol(j->obj, name);
}

void jit_free(Jit *j) {
  if (!j)
    return;
  if (j->s)
    tcc_delete(j->s);
  obj_free(j->obj);
  free(j);
}
