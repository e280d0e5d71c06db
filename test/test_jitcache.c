/* test_jitcache.c: the cache of compiled code. A miss compiles and
 * stores, a hit loads without compiling, and every defect (a truncated
 * or changed file, another key, a source that changed, a directory that
 * cannot be written, concurrent writers) still gives the right functions;
 * errors are the uncached ones. */
#include "testutil.h"
#include "runtime.h"

typedef struct Fix {
  char *dir;   /* $LM_PREDICTOR_CACHE */
  char *jit;   /* its jit/ */
} Fix;

static int setup(void **state) {
  Fix *f = xcalloc(1, sizeof(Fix));
  f->dir = tu_tmpdir();
  f->jit = path_join(f->dir, "jit");
  setenv("LM_PREDICTOR_CACHE", f->dir, 1);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f->jit);
  free(f);
  unsetenv("LM_PREDICTOR_CACHE");
  return 0;
}

static const char *PATHS[] = {"gen/a.c", "gen/b.c"};
/* two files, one calling the other, as the registry compiles them */
static const char *TEXTS[] = {
    "double A_flops(const double *args) { double p_n = args[0];\n"
    "  return (p_n * 2.0) + 0.5; }\n",
    "double A_flops(const double *args);\n"
    "double B_flops(const double *args) { double p_m = args[0];\n"
    "  return A_flops((const double[]){(p_m + 1.0)}) * lm_min(p_m, 3.0); }\n"};

static double call(Jit *j, const char *name, double x) {
  void *p = jit_symbol(j, name);
  assert_non_null(p);
  double (*fn)(const double *);
  memcpy(&fn, &p, sizeof(fn));
  return fn((const double[]){x});
}

/* B(m) = A(m + 1) * min(m, 3) = (2(m + 1) + 0.5) * min(m, 3):
 * B(2) = 6.5 * 2 = 13, B(5) = 12.5 * 3 = 37.5 */
static void check_values(Jit *j) {
  assert_double_exact(call(j, "A_flops", 4), 8.5);
  assert_double_exact(call(j, "B_flops", 2), 13);
  assert_double_exact(call(j, "B_flops", 5), 37.5);
}

static int count_files(const char *dir, const char *suffix) {
  char *list = tu_list_files(dir);
  int n = 0;
  for (char *p = list; p && (p = strstr(p, suffix)); p += strlen(suffix))
    n++;
  free(list);
  return n;
}

static char *the_file(const Fix *f) {
  char *list = tu_list_files(f->jit);
  assert_non_null(list);
  list[strcspn(list, "\n")] = '\0';
  char *p = path_join(f->jit, list);
  free(list);
  return p;
}

static Jit *compile(int n) {
  Error e;
  err_clear(&e);
  Jit *j = jit_compile_cached("test", PATHS, TEXTS, n, &e);
  if (!j)
    err_print(stderr, &e);
  assert_non_null(j);
  return j;
}

static void test_jitcache_miss_then_hit(void **state) {
  Fix *f = *state;
  Jit *j = compile(2);
  assert_false(jit_cached(j)); /* a miss: compiled, stored */
  check_values(j);
  jit_free(j);
  assert_int_equal(count_files(f->jit, ".jit"), 1);
  assert_int_equal(count_files(f->jit, ".o."), 0); /* no temp file left */
  j = compile(2);
  assert_true(jit_cached(j)); /* a hit: loaded */
  check_values(j);
  jit_free(j);
  assert_int_equal(count_files(f->jit, ".jit"), 1);
  /* the file is a header and libtcc's object */
  char *path = the_file(f);
  char *text = tu_read(path);
  assert_true(strncmp(text, "lm-predictor-jit 1\nkey ", 23) == 0);
  assert_non_null(strstr(text, "\nbody "));
  assert_non_null(strstr(text, "\n\177ELF"));
  free(text);
  free(path);
}

/* Another source, another key: the stored object of the old one is never
 * used for it (a stale key), and both stay. */
static void test_jitcache_source_changed(void **state) {
  Fix *f = *state;
  jit_free(compile(2));
  const char *texts[] = {
      TEXTS[0], "double A_flops(const double *args);\n"
                "double B_flops(const double *args) { double p_m = args[0];\n"
                "  return A_flops((const double[]){(p_m + 1.0)}) * lm_min(p_m, 4.0); }\n"};
  Error e;
  err_clear(&e);
  Jit *j = jit_compile_cached("test", PATHS, texts, 2, &e);
  assert_non_null(j);
  assert_false(jit_cached(j));
  /* B(5) = (2 * 6 + 0.5) * min(5, 4) = 50 */
  assert_double_exact(call(j, "B_flops", 5), 50);
  jit_free(j);
  assert_int_equal(count_files(f->jit, ".jit"), 2);
  /* the key covers the file names too (they are in the #line directives) */
  const char *paths[] = {"other/a.c", "gen/b.c"};
  err_clear(&e);
  j = jit_compile_cached("test", paths, TEXTS, 2, &e);
  assert_false(jit_cached(j));
  check_values(j);
  jit_free(j);
  /* and the salt (options): another caller's word, another key */
  err_clear(&e);
  j = jit_compile_cached("other", PATHS, TEXTS, 2, &e);
  assert_false(jit_cached(j));
  jit_free(j);
  char k1[33], k2[33], k3[33];
  const char *x[] = {"x"}, *y[] = {"y"}, *xy[] = {"xy"}, *e0[] = {""};
  jitcache_key("-Werror", x, x, 1, k1);
  jitcache_key("-w", x, x, 1, k2);
  assert_string_not_equal(k1, k2);
  jitcache_key("-w", x, y, 1, k3);
  assert_string_not_equal(k3, k2);
  /* a name and a text that would make the same concatenation differ */
  jitcache_key("-w", xy, e0, 1, k1);
  jitcache_key("-w", x, y, 1, k2);
  assert_string_not_equal(k1, k2);
  jitcache_key("-w", x, y, 1, k1);
  assert_string_equal(k1, k2); /* and a key is a function of its parts */
  /* a lookup finds what a compile stored, under the same salt only */
  j = jit_cache_lookup("test", PATHS, TEXTS, 2);
  assert_true(jit_cached(j));
  check_values(j);
  jit_free(j);
  assert_null(jit_cache_lookup("never stored", PATHS, TEXTS, 2));
}

/* A damaged cache file is a miss: compiled again, the file replaced by a
 * good one, the answer right. */
static void damage_and_check(Fix *f, void (*damage)(const char *path)) {
  jit_free(compile(2));
  char *path = the_file(f);
  damage(path);
  Jit *j = compile(2);
  assert_false(jit_cached(j));
  check_values(j);
  jit_free(j);
  j = compile(2); /* rewritten whole: a hit again */
  assert_true(jit_cached(j));
  check_values(j);
  jit_free(j);
  free(path);
}

static void truncate_half(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(truncate(path, st.st_size / 2), 0);
}

static void truncate_header(const char *path) {
  assert_int_equal(truncate(path, 30), 0);
}

static void empty(const char *path) { assert_int_equal(truncate(path, 0), 0); }

/* one byte of the object's code changed: its hash no longer matches */
static void flip_body_byte(const char *path) {
  size_t n;
  char *s = fs_read(path, &n, NULL);
  s[n - 200] ^= 0x40;
  FILE *fp = fopen(path, "wb");
  fwrite(s, 1, n, fp);
  fclose(fp);
  free(s);
}

/* the header names another key */
static void other_key(const char *path) {
  size_t n;
  char *s = fs_read(path, &n, NULL);
  char *k = strstr(s, "key ") + 4;
  k[0] = k[0] == '0' ? '1' : '0';
  FILE *fp = fopen(path, "wb");
  fwrite(s, 1, n, fp);
  fclose(fp);
  free(s);
}

/* a directory where the file should be */
static void directory(const char *path) {
  assert_int_equal(unlink(path), 0);
  assert_int_equal(mkdir(path, 0700), 0);
}

/* a file of another user's (as root: chown; otherwise skipped) */
static void other_owner(const char *path) {
  if (geteuid() == 0) {
    assert_int_equal(chown(path, 65534, 65534), 0);
  } else { /* cannot make one: replace it by a link, also refused */
    char *tmp = xstrdup(path);
    tmp[strlen(tmp) - 1] = 'x';
    assert_int_equal(rename(path, tmp), 0);
    assert_int_equal(symlink(tmp, path), 0);
    free(tmp);
  }
}

/* a symbolic link to a good file */
static void link_to_good(const char *path) {
  char *tmp = xstrdup(path);
  tmp[strlen(tmp) - 1] = 'y';
  assert_int_equal(rename(path, tmp), 0);
  assert_int_equal(symlink(tmp, path), 0);
  free(tmp);
}

static void test_jitcache_damaged(void **state) {
  Fix *f = *state;
  damage_and_check(f, other_owner);
  damage_and_check(f, link_to_good);
  tu_rm_rf(f->jit);
  damage_and_check(f, truncate_half);
  damage_and_check(f, truncate_header);
  damage_and_check(f, empty);
  damage_and_check(f, flip_body_byte);
  damage_and_check(f, other_key);
  /* a directory in its place cannot be replaced: a miss every time */
  jit_free(compile(2));
  char *path = the_file(f);
  directory(path);
  for (int i = 0; i < 2; i++) {
    Jit *j = compile(2);
    assert_false(jit_cached(j));
    check_values(j);
    jit_free(j);
  }
  free(path);
}

/* No cache directory can be made (its parent is a file; this works as
 * root too), or the cache is off: compiled as without a cache. */
static void test_jitcache_unwritable_or_off(void **state) {
  Fix *f = *state;
  char *file = path_join(f->dir, "afile");
  tu_write(file, "x");
  char *under = path_join(file, "cache");
  const char *dirs[] = {file, under, "", "off"};
  for (size_t i = 0; i < LM_ARRAY_LEN(dirs); i++) {
    setenv("LM_PREDICTOR_CACHE", dirs[i], 1);
    Jit *j = compile(2);
    assert_false(jit_cached(j));
    check_values(j);
    jit_free(j);
  }
  char *list = tu_list_files(f->dir);
  assert_string_equal(list, "afile\n"); /* nothing written */
  free(list);
  free(file);
  free(under);
}

/* Where the cache is: $LM_PREDICTOR_CACHE, $XDG_CACHE_HOME (absolute
 * only, as the XDG specification says), $HOME/.cache. */
static void test_jitcache_dir(void **state) {
  (void)state;
  char *d, *home = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL;
  setenv("LM_PREDICTOR_CACHE", "/c", 1);
  setenv("XDG_CACHE_HOME", "/x", 1);
  setenv("HOME", "/h", 1);
  assert_string_equal(d = jitcache_dir(), "/c/jit");
  free(d);
  setenv("LM_PREDICTOR_CACHE", "off", 1);
  assert_null(jitcache_dir());
  setenv("LM_PREDICTOR_CACHE", "", 1);
  assert_null(jitcache_dir());
  unsetenv("LM_PREDICTOR_CACHE");
  assert_string_equal(d = jitcache_dir(), "/x/lm-predictor/jit");
  free(d);
  setenv("XDG_CACHE_HOME", "relative", 1);
  assert_string_equal(d = jitcache_dir(), "/h/.cache/lm-predictor/jit");
  free(d);
  unsetenv("XDG_CACHE_HOME");
  unsetenv("HOME");
  assert_null(jitcache_dir());
  if (home)
    setenv("HOME", home, 1);
  free(home);
}

/* The errors through the cache are jit_compile's, and nothing is stored
 * for a source that does not compile or link. */
static void test_jitcache_errors(void **state) {
  Fix *f = *state;
  const char *paths[] = {"gen/x.c"};
  const char *bad[] = {"double f(const double *a) {\n  return a[0] +;\n}\n"};
  const char *unlinked[] = {"double g(const double *a);\n"
                            "double f(const double *a) { return g(a); }\n"};
  const char *const *srcs[] = {bad, unlinked};
  for (int i = 0; i < 2; i++) {
    Error e1, e2;
    err_clear(&e1);
    err_clear(&e2);
    assert_null(jit_compile(paths, srcs[i], 1, &e1));
    assert_null(jit_compile_cached("test", paths, srcs[i], 1, &e2));
    char *t1 = tu_err_text(&e1), *t2 = tu_err_text(&e2);
    assert_string_equal(t1, t2);
    free(t1);
    free(t2);
  }
  assert_int_equal(count_files(f->jit, ".jit"), 0);
  assert_int_equal(count_files(f->jit, ".o."), 0);
}

/* Eight processes miss at once and all write the same key: each gets the
 * right functions, and the file left is whole (a hit). */
static void test_jitcache_concurrent_writers(void **state) {
  (void)state;
  pid_t pids[8];
  for (int i = 0; i < 8; i++) {
    pids[i] = fork();
    assert_true(pids[i] >= 0);
    if (pids[i] == 0) {
      Jit *j = jit_compile_cached("test", PATHS, TEXTS, 2, NULL);
      void *p = j ? jit_symbol(j, "B_flops") : NULL;
      double (*fn)(const double *);
      memcpy(&fn, &p, sizeof(fn));
      _exit(p && fn((const double[]){5}) == 37.5 ? 0 : 1);
    }
  }
  for (int i = 0; i < 8; i++) {
    int st;
    assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  Jit *j = compile(2);
  assert_true(jit_cached(j));
  check_values(j);
  jit_free(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_jitcache_miss_then_hit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jitcache_source_changed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jitcache_damaged, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jitcache_unwritable_or_off, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jitcache_dir, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jitcache_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jitcache_concurrent_writers, setup, teardown),
  };
  return cmocka_run_group_tests_name("jitcache", tests, NULL, NULL);
}
