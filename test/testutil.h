/* testutil.h: helpers shared by the CMocka suites (header-only).
 *
 * Every suite runs from the repository root. End-to-end suites drive the
 * programs in $LM_BIN (`.` for the normal build, build/asan for the
 * sanitizer build), each run in a fresh temporary directory.
 */
#ifndef LM_TESTUTIL_H
#define LM_TESTUTIL_H

#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "gen.h"

/* CMocka 1.1.5 has no assert_double_equal (assert_float_equal casts to
 * float): compare doubles exactly or within a relative tolerance. */
#define assert_double_exact(a, b)                                              \
  do {                                                                         \
    double a_ = (a), b_ = (b);                                                 \
    if (!(a_ == b_)) {                                                         \
      print_error("%.17g != %.17g\n", a_, b_);                                 \
      fail_msg("%s == %s", #a, #b);                                            \
    }                                                                          \
  } while (0)

#define assert_double_near(a, b, rel)                                          \
  do {                                                                         \
    double a_ = (a), b_ = (b);                                                 \
    if (!(fabs(a_ - b_) <= (rel) * fmax(fabs(a_), fabs(b_)))) {                \
      print_error("%.17g !~ %.17g\n", a_, b_);                                 \
      fail_msg("%s ~= %s", #a, #b);                                            \
    }                                                                          \
  } while (0)

#define assert_contains(hay, needle)                                           \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (!h_ || !strstr(h_, n_)) {                                              \
      print_error("expected to find \"%s\" in:\n%s\n", n_, h_ ? h_ : "(null)"); \
      fail();                                                                  \
    }                                                                          \
  } while (0)

#define assert_not_contains(hay, needle)                                       \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (h_ && strstr(h_, n_)) {                                                \
      print_error("did not expect \"%s\" in:\n%s\n", n_, h_);                  \
      fail();                                                                  \
    }                                                                          \
  } while (0)

/* The error printed as a command would print it. New string; free(). */
static inline char *tu_err_text(const Error *e) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  err_print(f, e);
  fclose(f);
  return buf;
}

static inline char *tu_tmpdir(void) {
  char tmpl[] = "/tmp/lmtest.XXXXXX";
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return xstrdup(d);
}

static inline void tu_rm_rf(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *de;
    while ((de = readdir(d))) {
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
        continue;
      char *p = path_join(dir, de->d_name);
      struct stat st;
      if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
        tu_rm_rf(p);
      else
        unlink(p);
      free(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

static inline char *tu_read(const char *path) {
  size_t n;
  char *s = fs_read(path, &n, NULL);
  return s;
}

static inline void tu_write(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static inline void tu_copy(const char *from, const char *to) {
  char *s = tu_read(from);
  assert_non_null(s);
  tu_write(to, s);
  free(s);
}

/* Path of a program under $LM_BIN. Static buffer. */
static inline const char *tu_bin(const char *name) {
  static char buf[4][512];
  static int k;
  const char *dir = getenv("LM_BIN");
  char *b = buf[k++ % 4];
  snprintf(b, 512, "%s/%s", dir && *dir ? dir : ".", name);
  return b;
}

/* Run a shell command; capture stdout+stderr into *out (may be NULL).
 * Returns the exit status, or -1 if it did not exit normally. */
static inline int tu_run(char **out, const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  char full[8300];
  snprintf(full, sizeof(full), "(%s) 2>&1", cmd);
  FILE *p = popen(full, "r");
  assert_non_null(p);
  Buf b;
  buf_init(&b);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
    buf_append(&b, chunk, n);
  int st = pclose(p);
  if (out)
    *out = buf_steal(&b);
  else
    buf_free(&b);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Replace the first occurrence of `from` in s with `to`. New string. */
static inline char *tu_replace(const char *s, const char *from, const char *to) {
  const char *p = strstr(s, from);
  assert_non_null(p);
  Buf b;
  buf_init(&b);
  buf_append(&b, s, (size_t)(p - s));
  buf_puts(&b, to);
  buf_puts(&b, p + strlen(from));
  return buf_steal(&b);
}

/* Replace every occurrence of `from` (at least one) in s with `to`. */
static inline char *tu_replace_all(const char *s, const char *from,
                                   const char *to) {
  assert_non_null(strstr(s, from));
  Buf b;
  buf_init(&b);
  for (const char *p; (p = strstr(s, from)); s = p + strlen(from)) {
    buf_append(&b, s, (size_t)(p - s));
    buf_puts(&b, to);
  }
  buf_puts(&b, s);
  return buf_steal(&b);
}

/* Generate every module of db into dir (names assigned in memory). */
static inline void tu_generate(Db *db, const char *dir) {
  ModuleDef **all = xcalloc((size_t)db->nmods + 1, sizeof(ModuleDef *));
  for (int i = 0; i < db->nmods; i++)
    all[i] = db->mods[i];
  assert_true(db_assign_names(db, all, db->nmods, NULL) >= 0);
  free(all);
  for (int i = 0; i < db->nmods; i++) {
    char *src = emit_module(db->mods[i], "module_db.json", NULL);
    assert_non_null(src);
    char *p = path_join(dir, db->mods[i]->file_name);
    tu_write(p, src);
    free(p);
    free(src);
  }
}

/* Where the n-th (1-based) occurrence of `at`, plus adj bytes, sits in
 * text: the expected caret of an error, found by plain text search, so
 * tests do not depend on the JSON locator they check. */
static inline void tu_position_of(const char *text, const char *at, int nth,
                                  int adj, int *line, int *col) {
  const char *p = text;
  for (int k = 0; k < nth; k++) {
    p = strstr(k ? p + 1 : p, at);
    assert_non_null(p);
  }
  p += adj;
  *line = 1;
  const char *bol = text;
  for (const char *q = text; q < p; q++)
    if (*q == '\n') {
      (*line)++;
      bol = q + 1;
    }
  *col = (int)(p - bol) + 1;
}

/* The element of a JSON array whose string member `key` equals `value`
 * (borrowed); fails the test if there is none. */
static inline json_t *tu_json_find(json_t *array, const char *key,
                                   const char *value) {
  size_t i;
  json_t *o;
  json_array_foreach(array, i, o) {
    const char *s = json_string_value(json_object_get(o, key));
    if (s && strcmp(s, value) == 0)
      return o;
  }
  fail_msg("no element with %s = %s", key, value);
  return NULL;
}

static inline Db *tu_load_db(const char *path) {
  Error e;
  err_clear(&e);
  Db *db = db_load(path, &e);
  if (!db)
    err_print(stderr, &e);
  assert_non_null(db);
  return db;
}

/* Every regular file under dir (recursively), as "relative/path\n" lines,
 * sorted. New string. */
static inline void tu_list_into(const char *dir, const char *rel, Buf *b) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    char *p = path_join(dir, de->d_name);
    char *r = rel ? path_join(rel, de->d_name) : xstrdup(de->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
      tu_list_into(p, r, b);
    else
      buf_printf(b, "%s\n", r);
    free(p);
    free(r);
  }
  closedir(d);
}

static inline int tu_cmp_lines(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static inline char *tu_list_files(const char *dir) {
  Buf b;
  buf_init(&b);
  tu_list_into(dir, NULL, &b);
  char *all = buf_steal(&b);
  size_t n = 0;
  for (char *p = all; *p; p++)
    n += *p == '\n';
  char **v = xcalloc(n + 1, sizeof(char *));
  size_t k = 0;
  for (char *save = NULL, *t = strtok_r(all, "\n", &save); t;
       t = strtok_r(NULL, "\n", &save))
    v[k++] = t;
  qsort(v, k, sizeof(char *), tu_cmp_lines);
  buf_init(&b);
  for (size_t i = 0; i < k; i++)
    buf_printf(&b, "%s\n", v[i]);
  free(v);
  free(all);
  return buf_steal(&b);
}

/* Assert two directories hold the same files with the same bytes, except
 * those named in `except` (NULL-terminated, may be NULL) and the database
 * index (module_db.index: a cache of the database it sits beside, which
 * differs when the databases do; test_dbindex checks its bytes). */
static inline void tu_assert_same_dir(const char *a, const char *b,
                                      const char *const *except) {
  char *la = tu_list_files(a), *lb = tu_list_files(b);
  assert_string_equal(la, lb);
  for (char *save = NULL, *t = strtok_r(la, "\n", &save); t;
       t = strtok_r(NULL, "\n", &save)) {
    bool skip = strcmp(t, "module_db.index") == 0;
    for (const char *const *e = except; e && *e; e++)
      skip = skip || strcmp(*e, t) == 0;
    if (skip)
      continue;
    char *pa = path_join(a, t), *pb = path_join(b, t);
    char *ta = tu_read(pa), *tb = tu_read(pb);
    if (!ta || !tb || strcmp(ta, tb) != 0)
      print_error("%s differs from %s\n", pa, pb);
    assert_non_null(ta);
    assert_non_null(tb);
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
    free(pa);
    free(pb);
  }
  free(la);
  free(lb);
}

/* Assert no file under dir contains needle (except files named `skip`). */
static inline void tu_assert_tree_lacks(const char *dir, const char *needle,
                                        const char *skip) {
  char *list = tu_list_files(dir);
  for (char *save = NULL, *t = strtok_r(list, "\n", &save); t;
       t = strtok_r(NULL, "\n", &save)) {
    if (skip && strcmp(t, skip) == 0)
      continue;
    char *p = path_join(dir, t);
    char *s = tu_read(p);
    if (s && strstr(s, needle))
      print_error("%s contains \"%s\"\n", p, needle);
    assert_true(!s || !strstr(s, needle));
    free(s);
    free(p);
  }
  free(list);
}

/* The fake LLM server (test/fake_llm_server.py) on 127.0.0.1: started per
 * test, killed in teardown; every request lands in `log` as a JSON line. */
typedef struct TuServer {
  pid_t pid;
  int port;
  char *log; /* path of the request log */
} TuServer;

static inline void tu_server_start(TuServer *s, const char *dir) {
  s->log = path_join(dir, "server-requests.log");
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(NULL);
  s->pid = fork();
  assert_true(s->pid >= 0);
  if (s->pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execlp("python3", "python3", "test/fake_llm_server.py", "test/data/agent",
           s->log, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  FILE *f = fdopen(fds[0], "r");
  char line[64] = "";
  bool ok = fgets(line, sizeof(line), f) != NULL;
  fclose(f);
  if (!ok)
    print_error("the fake LLM server did not start (python3 missing?)\n");
  assert_true(ok);
  s->port = atoi(line);
  assert_true(s->port > 0);
}

static inline void tu_server_stop(TuServer *s) {
  if (s->pid > 0) {
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
  }
  s->pid = 0;
  free(s->log);
  s->log = NULL;
}

/* The server's request log ("" when nothing arrived). New string. */
static inline char *tu_server_log(const TuServer *s) {
  char *t = tu_read(s->log);
  return t ? t : xstrdup("");
}

/* Requests the server received. */
static inline int tu_server_requests(const TuServer *s) {
  char *t = tu_server_log(s);
  int n = 0;
  for (char *p = t; *p; p++)
    n += *p == '\n';
  free(t);
  return n;
}

#endif
