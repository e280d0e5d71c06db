/* common.h: the small shared layer every part of LM-Predictor links.
 *
 * Error  - errors are data: a located message, never exit(1) (error.c)
 * Buf    - a growable byte string, always NUL-terminated (buf.c)
 * Arena  - a bump allocator freed in one call (arena.c)
 * HashMap- string-keyed open-addressing table, FNV-1a (hashmap.c)
 * JsonPath / jloc_find - find where a value sits in raw JSON text, so an
 *          error can name file:line:col and draw a caret (jsonloc.c)
 * JsonDoc / jdoc_* - a JSON file's name and text: load (read, parse,
 *          located syntax errors) and located errors about it (jsondoc.c)
 * json_fast_parse - Jansson's tree of a plain document, without Jansson's
 *          per-byte stream; NULL leaves the rest to Jansson (jsonparse.c)
 * fs_*   - whole-file reads, atomic writes, advisory locks (fsutil.c)
 */
#ifndef LM_COMMON_H
#define LM_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define LM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Tables as X-macros: a list macro LIST(X) calls X(ID, "name") per entry;
 * LIST(LM_X_ENUM) makes the enum members and LIST(LM_X_NAME) the
 * designated initializers of the matching name table. */
#define LM_X_ENUM(id, name) id,
#define LM_X_NAME(id, name) [id] = name,

/* ===== error.c ===== */

/* One error, first one wins. Functions that fail fill an Error (NULL
 * allowed) and return NULL or -1. */
typedef struct Error {
  bool set;           /* true once an error has been recorded */
  char file[512];     /* file the error is in; "" if none */
  char where[512];    /* JSON path or entry.field; "" if none */
  int line;           /* 1-based line in file; 0 if unknown */
  int col;            /* 1-based column in file; 0 if unknown */
  char msg[1024];     /* the message: lowercase, failure first, no period */
  char context[512];  /* the source line the caret points into; "" = none */
  int context_line;   /* line number printed before context; 0 = formula;
                         < 0 = a line shown without a number */
  int caret_col;      /* 1-based column of the caret in context */
  int caret_len;      /* characters underlined (>= 1) */
} Error;

void err_clear(Error *e);
/* Record a plain message. No-op if e is NULL or already set. */
void err_set(Error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void err_vset(Error *e, const char *fmt, va_list ap);
/* Record a message about `file` (may be NULL). */
void err_file(Error *e, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Attach a caret context: `text` is the line shown (copied up to the first
 * newline), `off`/`len` the byte span underlined, `line` its line number in
 * file (0 when text is a formula rather than a file line). */
void err_context(Error *e, const char *text, int off, int len, int line);
/* The same within the `avail` bytes at text (a document held with its
 * length, not NUL-terminated: a line is also cut at the end). */
void err_context_n(Error *e, const char *text, size_t avail, int off, int len,
                   int line);
/* Prefix the message with more context, e.g. "in layer x: ". */
void err_prefix(Error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append the printed form to out:  file:line:col: where: error: msg, then
 * the context line and a caret under the span. Nothing if e is unset. */
typedef struct Buf Buf;
void err_render(Buf *out, const Error *e);
/* Print the same to out. */
void err_print(FILE *out, const Error *e);

/* ===== buf.c ===== */

typedef struct Buf {
  char *data; /* NUL-terminated; NULL until the first append */
  size_t len;
  size_t cap;
} Buf;

void buf_init(Buf *b);
void buf_free(Buf *b);
void buf_reset(Buf *b);
void buf_append(Buf *b, const void *p, size_t n);
void buf_puts(Buf *b, const char *s);
void buf_putc(Buf *b, char c);
void buf_printf(Buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(Buf *b, const char *fmt, va_list ap);
/* Take ownership of the bytes ("" if empty); b is reset. Free with free(). */
char *buf_steal(Buf *b);
/* The contents as a C string, never NULL (borrowed). */
const char *buf_str(const Buf *b);

/* Offset of the first control character in s[0..n) (C0, DEL, or a C1
 * control encoded in UTF-8), or -1: text that reaches the terminal (model
 * ids, GPU names) must not carry escape sequences. */
long str_find_control(const char *s, size_t n);

/* Append s at out + *at and advance *at, cut (as snprintf cuts) so that
 * out[outsz - 1] stays free for the NUL, which the caller writes;
 * *at < outsz. snprintf without its cost, where names are built on every
 * run (symbol names, error labels). */
void str_put(char *out, size_t outsz, size_t *at, const char *s);

/* Out-of-memory is fatal: the only exit() in the library. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* ===== arena.c ===== */

typedef struct ArenaChunk ArenaChunk;
typedef struct Arena {
  ArenaChunk *head;
} Arena;

void arena_init(Arena *a);
void *arena_alloc(Arena *a, size_t n); /* zeroed, 16-byte aligned */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
void arena_free(Arena *a);

/* ===== hashmap.c ===== */

typedef uint64_t (*HashFn)(const char *key, size_t len);

typedef struct HashEntry {
  char *key; /* owned copy; NULL = empty, TOMBSTONE never used */
  size_t keylen;
  uint64_t hash;
  void *val;
} HashEntry;

typedef struct HashMap {
  HashEntry *buckets;
  size_t cap;  /* power of two, 0 before first insert */
  size_t used; /* occupied buckets */
  HashFn hash; /* fnv1a64 unless a test injects another */
} HashMap;

uint64_t fnv1a64(const char *s, size_t len);
void hashmap_init(HashMap *m);
/* Tests inject a weak hash to force collisions. */
void hashmap_init_with_hash(HashMap *m, HashFn fn);
void hashmap_free(HashMap *m);
/* Add key (copied). Returns -1 if the key is already present. */
int hashmap_add(HashMap *m, const char *key, void *val);
int hashmap_addn(HashMap *m, const char *key, size_t len, void *val);
/* Borrowed value, or NULL if absent. */
void *hashmap_get(const HashMap *m, const char *key);
void *hashmap_getn(const HashMap *m, const char *key, size_t len);
/* Iterate: start with *i = 0; returns false when done. */
bool hashmap_next(const HashMap *m, size_t *i, const char **key, void **val);

/* ===== jsonloc.c ===== */

#define JSONPATH_MAX 24

/* A path to a JSON value: object keys and array indexes. */
typedef struct JsonPath {
  int n;
  struct {
    const char *key; /* object key, or NULL for an array index */
    int index;
  } c[JSONPATH_MAX];
} JsonPath;

void jp_init(JsonPath *p);
void jp_key(JsonPath *p, const char *key);
void jp_index(JsonPath *p, int index);
void jp_pop(JsonPath *p);
/* Render as  a.b[3].c  (keys containing dots are quoted). */
void jp_format(const JsonPath *p, char *out, size_t outsz);

/* Find the value at `path` in raw JSON text. On success returns the byte
 * offset of the value's first character; -1 if not found or malformed. */
long jloc_find(const char *text, size_t len, const JsonPath *path);
/* Same, resuming from a located prefix: `start` is the offset jloc_find
 * gave for path's first `depth` components; the rest are looked up from
 * there. The same offset as jloc_find (the scan is the same), without
 * re-reading the text before `start`: for many lookups under one object. */
long jloc_find_from(const char *text, size_t len, size_t start,
                    const JsonPath *path, int depth);
/* Same, but when a member is missing, the offset of its closest existing
 * ancestor; -1 if nothing can be located. */
long jloc_find_nearest(const char *text, size_t len, const JsonPath *path);
/* The members of one object located once (their key's quote and value
 * offsets, in the text's order), for many lookups of paths under it:
 * jloc_index_find(x, path) is jloc_find(text, len, path); for a path whose
 * first components are `prefix` (the path the index was made with), found
 * without re-scanning the text before each member (a template's "config"
 * object is 10 to 20 KB, looked up 10 to 60 times per load). An object
 * that could not be indexed: every lookup is a plain jloc_find. */
typedef struct JlocIndex {
  const char *text;
  size_t len;
  int depth; /* the prefix's length; -1: not indexed */
  int n;
  size_t *quote, *val;
  JsonPath prefix;
} JlocIndex;
void jloc_index_init(JlocIndex *x, const char *text, size_t len,
                     const JsonPath *prefix);
long jloc_index_find(const JlocIndex *x, const JsonPath *path);
void jloc_index_free(JlocIndex *x);
/* The offset just past the value starting at off; -1 if malformed. */
long jloc_value_end(const char *text, size_t len, size_t off);
/* Map a byte offset in text to 1-based line and column. */
void text_linecol(const char *text, size_t off, int *line, int *col);
/* Given the offset of a JSON string literal (its opening quote), return
 * the offset in text of the byte that decodes to decoded offset `doff`. */
long jloc_string_offset(const char *text, size_t len, size_t quote_off,
                        size_t doff);

/* ===== jsondoc.c ===== */

/* A JSON document: where it came from and its raw text, the position
 * source of every located error about it, passed as one thing (as
 * Jansson's error_set takes its lexer). A document jdoc_load makes owns
 * its strings (jdoc_free); one built by hand is a view of strings owned
 * elsewhere and is never freed. */
typedef struct JsonDoc {
  const char *file; /* named in errors; NULL when none */
  const char *text; /* the raw text, NUL-terminated; NULL: no carets */
  size_t len;
} JsonDoc;

/* Builds a loaded document's value. It may take *doc over (copy it, then
 * zero it) or leave it to jdoc_load to free; root is borrowed (json_incref
 * to keep it). Returns the value, or NULL with err set. */
typedef void *(*JdocBuild)(JsonDoc *doc, json_t *root, const void *ctx,
                           Error *err);

/* Load a JSON document: the whole of `file`, or, when text is not NULL, a
 * copy of text[0..len) named `file`; parse it with Jansson, duplicate keys
 * rejected (a syntax error is located: "invalid JSON: ...", the caret at
 * the token Jansson names); then build(doc, root, ctx, err). Returns what
 * build returns; NULL on any error. */
void *jdoc_load(const char *file, const char *text, size_t len,
                JdocBuild build, const void *ctx, Error *err);
/* Parse doc->text as jdoc_load does. New reference, or NULL with err. */
json_t *jdoc_parse(const JsonDoc *doc, Error *err);
/* json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL) through the fast
 * path below: the tree, or NULL for text Jansson does not accept. */
json_t *jdoc_loadb(const char *text, size_t len);

/* ===== jsonparse.c ===== */
/* The tree json_loadb(text, len, JSON_REJECT_DUPLICATES) gives, built
 * faster, for the plain documents it accepts (ASCII, no \u escape, no
 * syntax error, numbers in range); NULL for anything else, which the
 * caller then parses with Jansson (its tree or its error). New reference. */
json_t *json_fast_parse(const char *text, size_t len);
void jdoc_free(JsonDoc *doc);

/* Record an error about the value at `path` of doc: message, where (the
 * path, jq style), file line:col and a caret at the value's start (the
 * whole value when it is a scalar); when the value does not exist, at its
 * closest existing ancestor; no position without raw text. Returns -1, so
 * a loader can `return jdoc_error(...)`. No-op if e is NULL or set. */
int jdoc_error(Error *e, const JsonDoc *doc, const JsonPath *path,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int jdoc_verror(Error *e, const JsonDoc *doc, const JsonPath *path,
                const char *fmt, va_list ap);
/* Same about the span [off, off+len) of the decoded string value at
 * `path`: the caret under the raw bytes of that span. When the string
 * cannot be located (no raw text), the caret is drawn under `value`
 * itself, as a formula line. */
int jdoc_error_string(Error *e, const JsonDoc *doc, const JsonPath *path,
                      const char *value, int off, int len, const char *fmt,
                      ...) __attribute__((format(printf, 7, 8)));
int jdoc_verror_string(Error *e, const JsonDoc *doc, const JsonPath *path,
                       const char *value, int off, int len, const char *fmt,
                       va_list ap);

/* A loader's two member checks, located at `path` (left at the offending
 * member): every member of object o is one of keys[0..n) ("unknown member
 * 'K'"), and o[key] is a non-empty string (its value; NULL after "missing
 * member 'K'" or "K must be a non-empty string"). */
int jdoc_only_members(Error *e, const JsonDoc *doc, JsonPath *path, json_t *o,
                      const char *const *keys, int n);
const char *jdoc_string_member(Error *e, const JsonDoc *doc, JsonPath *path,
                               json_t *o, const char *key);

/* ===== fsutil.c ===== */

/* The most fs_read reads: far above any real input (module_db.json is
 * ~40 KB, a model file ~10 KB), far below what would exhaust memory. */
#define FS_MAX_READ (64 << 20)

/* Read a whole regular file of at most FS_MAX_READ bytes; returns a
 * malloc'd NUL-terminated buffer or NULL. A directory, FIFO, device or
 * socket is refused without reading (or waiting for) anything. */
char *fs_read(const char *path, size_t *len, Error *err);
/* The same bytes as fs_read, NUL-terminated, mapped read-only from the
 * page cache when that is possible (no copy; *mapped set to the length to
 * pass to fs_unmap), else read (*mapped 0: free() it). For large inputs
 * read whole on every run (module_db.json, to hash it). */
char *fs_map(const char *path, size_t *len, size_t *mapped, Error *err);
/* The same, the pages read only when touched (not read ahead whole). */
char *fs_map_lazy(const char *path, size_t *len, size_t *mapped, Error *err);
void fs_unmap(char *p, size_t mapped);
/* Write atomically: temp file in the same directory, fsync, rename, fsync
 * the directory. On failure nothing at path changes. A symbolic link is
 * written through (the file it points to is replaced, the link stays);
 * an existing file keeps its mode. */
int fs_write_atomic(const char *path, const void *data, size_t len,
                    Error *err);
/* True if path holds exactly these bytes. */
bool fs_same_content(const char *path, const void *data, size_t len);
/* Take an exclusive advisory lock on path (created if missing). Blocks.
 * Returns an fd to pass to fs_unlock, or -1. */
int fs_lock(const char *path, Error *err);
void fs_unlock(int fd);
/* The data directory (module_db.json, generated_modules/, hardware.json,
 * models/): $LM_PREDICTOR_HOME when set; else, starting from the directory
 * of liblmpredict.so when the code runs from that shared library (found with
 * dladdr), then from the executable's (/proc/self/exe): that directory if
 * it holds module_db.json (the build tree), its ../share/lm-predictor (an
 * install), or the first of its three parents that holds module_db.json.
 * Returns a static string. */
const char *lm_home(void);
/* Join dir and name into a malloc'd path ("name" if dir is NULL/empty or
 * name is absolute). */
char *path_join(const char *dir, const char *name);
/* path relative to the working directory when it lies under it, for
 * messages; otherwise path itself. Borrowed from path. */
const char *path_display(const char *path);
/* Monotonic clock in seconds. */
double now_seconds(void);

#endif
