/* test_dbindex.c: the database index (gen/dbindex.c). A Db read from the
 * index equals db_load's, field for field and tree for tree, on the
 * shipped database and on strings that need escaping; an index is used
 * only for the exact bytes it was written from, by this code, intact, and
 * otherwise db_open falls back to the full load; an edited database never
 * gives the old answer (end to end through lmrun); formulas are parsed on
 * first use, and a bad one is a located error; lmgen writes the index. */
#include "testutil.h"
#include "gen.h"
#include "runtime.h"

#include <fcntl.h>
#include <sys/stat.h>

static void same_str(const char *a, const char *b) {
  if (!a || !b)
    assert_ptr_equal(a, b);
  else
    assert_string_equal(a, b);
}

static void same_tree(const Node *a, const Node *b) {
  Buf x, y;
  buf_init(&x);
  buf_init(&y);
  if (a)
    node_sexpr(a, &x);
  if (b)
    node_sexpr(b, &y);
  assert_true((a == NULL) == (b == NULL));
  assert_string_equal(buf_str(&x), buf_str(&y));
  buf_free(&x);
  buf_free(&y);
}

/* Every field of every entry, and (after db_ensure) every tree. */
static void assert_same_db(const Db *full, const Db *idx) {
  assert_int_equal(full->nmods, idx->nmods);
  for (int i = 0; i < full->nmods; i++) {
    const ModuleDef *a = full->mods[i], *b = idx->mods[i];
    assert_string_equal(a->full_name, b->full_name);
    assert_string_equal(a->short_name, b->short_name);
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->nparams, b->nparams);
    for (int k = 0; k < a->nparams; k++) {
      assert_string_equal(a->params[k], b->params[k]);
      assert_memory_equal(&a->pmin[k], &b->pmin[k], sizeof(double));
      assert_memory_equal(&a->pmax[k], &b->pmax[k], sizeof(double));
      assert_int_equal(a->pint[k], b->pint[k]);
      same_str(a->pdesc[k], b->pdesc[k]);
    }
    for (int m = 0; m < M_COUNT; m++)
      same_str(a->formula[m], b->formula[m]);
    assert_int_equal(a->nops, b->nops);
    for (int k = 0; k < a->nops; k++) {
      assert_string_equal(a->ops[k].name, b->ops[k].name);
      assert_int_equal(a->ops[k].mode, b->ops[k].mode);
      assert_int_equal(a->ops[k].phase, b->ops[k].phase);
      same_str(a->ops[k].description, b->ops[k].description);
      for (int m = 0; m < M_COUNT; m++)
        same_str(a->ops[k].formula[m], b->ops[k].formula[m]);
    }
    same_str(a->file_name, b->file_name);
    same_str(a->class_name, b->class_name);
    same_str(a->status, b->status);
    same_str(a->source_file, b->source_file);
    same_str(a->source_version, b->source_version);
    assert_int_equal(a->line_start, b->line_start);
    assert_int_equal(a->line_end, b->line_end);
    assert_true(a->fingerprint == b->fingerprint);
    assert_int_equal(b->index, i);
    assert_ptr_equal(db_find(idx, a->full_name, NULL), b);
  }
  for (int i = 0; i < idx->nmods; i++) {
    const ModuleDef *a = full->mods[i], *b = idx->mods[i];
    assert_int_equal(db_ensure(idx, b, NULL), 0);
    assert_int_equal(b->parsed, DB_PARSED);
    for (int m = 0; m < M_COUNT; m++)
      same_tree(a->ast[m], b->ast[m]);
    for (int k = 0; k < a->nops; k++)
      for (int m = 0; m < M_COUNT; m++)
        same_tree(a->ops[k].ast[m], b->ops[k].ast[m]);
  }
}

/* The Db of text's index (NULL and *why when refused). */
static Db *via_index(const char *text, const char *itext, const char **why) {
  size_t len = strlen(text), ilen = strlen(itext);
  char *t = xstrndup(text, len), *it = xstrndup(itext, ilen);
  Db *db = dbindex_load("db.json", t, len, it, ilen, why);
  if (!db) {
    free(t);
    free(it);
  }
  return db;
}

static void round_trip(const char *path) {
  char *text = tu_read(path);
  Error e;
  err_clear(&e);
  Db *full = db_load_text(path, text, strlen(text), &e);
  assert_non_null(full);
  char *itext = dbindex_text(full, text, strlen(text));
  const char *why = "not set";
  Db *idx = via_index(text, itext, &why);
  assert_null(why);
  assert_non_null(idx);
  assert_null(idx->root); /* read-only: no JSON tree */
  for (int i = 0; i < idx->nmods; i++)
    assert_int_equal(idx->mods[i]->parsed, DB_UNPARSED);
  assert_same_db(full, idx);
  db_free(idx);
  db_free(full);
  free(itext);
  free(text);
}

static void test_dbindex_round_trip_shipped(void **state) {
  (void)state;
  round_trip("module_db.json");
  round_trip("test/data/mini_db.json");
}

/* Tabs, newlines, backslashes, a literal \N and a non-ASCII character in
 * the strings; open and closed ranges; integer flags. */
static void test_dbindex_escapes(void **state) {
  (void)state;
  char *mini = tu_read("test/data/mini_db.json");
  char *a = tu_replace(mini, "\"description\": \"rows\"",
                       "\"description\": \"a\\tb\\\\N \\\\ c\\nd \\u00e9\", "
                       "\"min\": 1, \"max\": 1e300, \"integer\": true");
  char *b = tu_replace(a, "\"file\": \"torch/nn/modules/linear.py\"",
                       "\"file\": \"\\\\N\"");
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "db.json");
  tu_write(path, b);
  round_trip(path);
  tu_rm_rf(dir);
  free(dir);
  free(path);
  free(mini);
  free(a);
  free(b);
}

/* An index is used for the bytes it was written from only. */
static void test_dbindex_refused(void **state) {
  (void)state;
  char *text = tu_read("test/data/mini_db.json");
  Db *full = db_load_text("db.json", text, strlen(text), NULL);
  char *itext = dbindex_text(full, text, strlen(text));
  const char *why = NULL;
  /* one byte of the database changed (a reasoning, which no field of the
   * index holds) */
  char *edited = tu_replace(text, "y = x W^T", "y = x W^t");
  assert_null(via_index(edited, itext, &why));
  assert_string_equal(why, "written from another module_db.json");
  /* the body damaged */
  char *damaged = tu_replace(itext, "\t2 * {N}", "\t3 * {N}");
  assert_null(via_index(text, damaged, &why));
  assert_string_equal(why, "damaged");
  /* another format version */
  char *older = tu_replace(itext, "lm-predictor-module-index 1\n",
                           "lm-predictor-module-index 0\n");
  assert_null(via_index(text, older, &why));
  assert_string_equal(why, "not an index of this version");
  /* written by code with another schema or ABI */
  char *code = xstrdup(itext);
  char *c = strstr(code, "\ncode ") + 6;
  *c = *c == '0' ? '1' : '0';
  assert_null(via_index(text, code, &why));
  assert_string_equal(why, "written by another version");
  assert_null(via_index(text, "", &why));
  assert_null(via_index(text, "lm-predictor-module-index 1\ndb x\n", &why));
  assert_string_equal(why, "malformed header");
  free(edited);
  free(damaged);
  free(older);
  free(code);
  free(itext);
  db_free(full);
  free(text);
}

/* db_open: the index when it matches, else the full load (with its
 * located errors). */
static void test_dbindex_db_open(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "module_db.json");
  tu_copy("test/data/mini_db.json", path);
  Error e;
  err_clear(&e);
  Db *db = db_open(path, dir, &e); /* no index yet */
  assert_non_null(db);
  assert_non_null(db->root);
  db_free(db);
  bool changed = false;
  assert_int_equal(dbindex_write(path, dir, false, &changed, &e), 0);
  assert_true(changed);
  assert_int_equal(dbindex_write(path, dir, false, &changed, &e), 0);
  assert_false(changed);
  db = db_open(path, dir, &e);
  assert_non_null(db);
  assert_null(db->root); /* from the index */
  db_free(db);
  /* edited: the full load, which sees the edit */
  char *text = tu_read(path);
  char *bad = tu_replace(text, "\"flops\": \"2 * {N}", "\"flops\": \"2 * {M}");
  tu_write(path, bad);
  assert_null(db_open(path, dir, &e));
  char *msg = tu_err_text(&e);
  assert_contains(msg, "module_db.json:");
  assert_contains(msg, "unknown parameter 'M'");
  assert_contains(msg, "^");
  free(msg);
  free(text);
  free(bad);
  tu_rm_rf(dir);
  free(dir);
  free(path);
}

/* A formula is parsed when its entry is first used; one that fails (an
 * index can only hold one if written by hand, its hashes recomputed) is a
 * located error in module_db.json, and the entry stays unparsed. */
static void test_dbindex_lazy_error_located(void **state) {
  (void)state;
  char *text = tu_read("test/data/mini_db.json");
  Db *full = db_load_text("db.json", text, strlen(text), NULL);
  ModuleDef *lin = db_find(full, "Linear", NULL);
  lin->formula[M_FLOPS] = "2 * {N} * {nope}";
  char *itext = dbindex_text(full, text, strlen(text));
  Db *idx = via_index(text, itext, NULL);
  assert_non_null(idx);
  ModuleDef *l2 = db_find(idx, "Linear", NULL);
  Error e;
  err_clear(&e);
  assert_int_equal(db_ensure(idx, l2, &e), -1);
  char *msg = tu_err_text(&e);
  assert_contains(msg, "db.json:31:29: "
                       ".modules[\"torch.nn.modules.linear.Linear\"]"
                       ".formulas.flops: error:");
  assert_contains(msg, "unknown parameter 'nope'");
  free(msg);
  assert_int_equal(l2->parsed, DB_UNPARSED);
  assert_null(l2->ast[M_FLOPS]);
  db_free(idx);
  free(itext);
  db_free(full);
  free(text);
}

/* A call cycle cannot come from a checked database; in an index made by
 * hand it is an error, not an endless recursion. */
static void test_dbindex_lazy_cycle(void **state) {
  (void)state;
  char *text = tu_read("test/data/mini_db.json");
  Db *full = db_load_text("db.json", text, strlen(text), NULL);
  ModuleDef *lin = db_find(full, "Linear", NULL);
  ModuleDef *sm = db_find(full, "Softmax", NULL);
  assert_int_equal(sm->nparams, 3);
  lin->formula[M_FLOPS] =
      "${torch.nn.modules.activation.Softmax}({N}, {N}, {N})";
  sm->formula[M_FLOPS] =
      "${torch.nn.modules.linear.Linear}({rows}, {rows}, {rows}, {rows}, "
      "{rows})";
  char *itext = dbindex_text(full, text, strlen(text));
  Db *idx = via_index(text, itext, NULL);
  assert_non_null(idx);
  Error e;
  err_clear(&e);
  assert_int_equal(db_ensure(idx, db_find(idx, "Linear", NULL), &e), -1);
  assert_contains(e.msg, "a call cycle or a chain of more than 32 modules");
  assert_contains(e.msg, "run `make generate`");
  db_free(idx);
  free(itext);
  db_free(full);
  free(text);
}

/* The hash: every byte counts, and it is the same on any machine (a fixed
 * value, computed by hand from the definition for these inputs would be
 * unreadable; instead: lengths and positions all change it). */
static void test_dbindex_hash(void **state) {
  (void)state;
  char buf[100];
  for (int i = 0; i < 100; i++)
    buf[i] = (char)('a' + i % 26);
  uint64_t h0 = dbindex_hash(buf, 100);
  for (int i = 0; i < 100; i++) {
    buf[i] ^= 1;
    assert_true(dbindex_hash(buf, 100) != h0);
    buf[i] ^= 1;
  }
  for (size_t n = 0; n < 100; n++)
    assert_true(dbindex_hash(buf, n) != dbindex_hash(buf, n + 1));
  assert_true(dbindex_hash(buf, 100) == h0);
}

/* lmrun on an edited database whose index is the old one: the edit
 * counts (a parameter range, which the generated code does not see: the
 * fingerprints still match, so only the stale index could hide it). */
static void test_dbindex_lmrun_never_stale(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *db = path_join(dir, "module_db.json");
  char *gen = path_join(dir, "gen");
  tu_copy("module_db.json", db);
  assert_int_equal(tu_run(NULL, "cp -r generated_modules '%s'", gen), 0);
  assert_int_equal(tu_run(NULL, "rm -f '%s/module_db.index'", gen), 0);
  char *out = NULL;
  assert_int_equal(tu_run(&out, "%s --db '%s' --out '%s' --index",
                          tu_bin("lmgen"), db, gen),
                   0);
  assert_contains(out, "lmgen: wrote ");
  assert_contains(out, "module_db.index");
  free(out);
  char *ip = path_join(gen, "module_db.index");
  char *idx = tu_read(ip);
  assert_non_null(idx);
  char *want = dbindex_build(db, NULL);
  assert_string_equal(idx, want);
  free(want);
  assert_int_equal(tu_run(&out, "%s --db '%s' --out '%s' --index",
                          tu_bin("lmgen"), db, gen),
                   0);
  assert_contains(out, "lmgen: up to date: ");
  free(out);
  const char *args = "models/llama-2-7b-hf.json -S 64 --format json";
  char *before = NULL;
  assert_int_equal(tu_run(&before, "%s --db '%s' --modules '%s' %s",
                          tu_bin("lmrun"), db, gen, args),
                   0);
  char *plain = NULL;
  assert_int_equal(tu_run(&plain, "%s %s", tu_bin("lmrun"), args), 0);
  assert_string_equal(before, plain);
  /* Linear's N must now be at least 10^9 */
  char *text = tu_read(db);
  char *edited = tu_replace(
      text,
      "\"description\": \"rows multiplied: tokens in this step times batch "
      "(B*T), or B for lm_head\",\n          \"min\": 1,",
      "\"description\": \"rows multiplied: tokens in this step times batch "
      "(B*T), or B for lm_head\",\n          \"min\": 1000000000,");
  assert_true(strcmp(edited, text) != 0);
  tu_write(db, edited);
  char *after = NULL;
  assert_int_equal(tu_run(&after, "%s --db '%s' --modules '%s' %s",
                          tu_bin("lmrun"), db, gen, args),
                   1);
  assert_contains(after, "must be at least 1e+09");
  free(after);
  /* the index was left as it was: lmrun never writes it */
  char *idx2 = tu_read(ip);
  assert_string_equal(idx, idx2);
  free(idx2);
  free(before);
  free(plain);
  free(text);
  free(edited);
  free(idx);
  free(ip);
  tu_rm_rf(dir);
  free(dir);
  free(db);
  free(gen);
}

/* Linear's FLOPs in db for N = 3, in = 5, out = 7. */
static double linear_flops(Db *db) {
  Error e;
  err_clear(&e);
  ModuleDef *md = db_find(db, "Linear", &e);
  assert_non_null(md);
  assert_int_equal(db_ensure(db, md, &e), 0);
  double args[5] = {3, 5, 7, 2, 2};
  return module_eval(md, M_FLOPS, args);
}

static int stamps_in(const char *cache) {
  char *out = NULL;
  assert_int_equal(tu_run(&out, "ls '%s/db' 2>/dev/null | grep -c '\\.stamp$'",
                          cache) < 0, 0);
  int n = atoi(out);
  free(out);
  return n;
}

/* db_open_stamped: the index taken without hashing either file only while
 * both are as they were when stamped. An edit of module_db.json of the
 * same size with its modification time put back, a touch of the index, a
 * replaced file: each is the full check again, which sees the edit. */
static void test_dbindex_stamped(void **state) {
  (void)state;
  char *dir = tu_tmpdir(), *cache = tu_tmpdir();
  setenv("LM_PREDICTOR_CACHE", cache, 1);
  char *path = path_join(dir, "module_db.json");
  tu_copy("test/data/mini_db.json", path);
  Error e;
  err_clear(&e);
  bool changed = false;
  assert_int_equal(dbindex_write(path, dir, false, &changed, &e), 0);
  /* just written: the index, checked, not stamped */
  Db *db = db_open_stamped(path, dir, &e);
  assert_non_null(db);
  assert_null(db->root);
  assert_false(db->verified);
  db_free(db);
  assert_int_equal(stamps_in(cache), 0);
  usleep(2100 * 1000);
  db = db_open_stamped(path, dir, &e); /* settled: checked, stamped */
  assert_false(db->verified);
  db_free(db);
  assert_int_equal(stamps_in(cache), 1);
  db = db_open_stamped(path, dir, &e);
  assert_null(db->root);
  assert_true(db->verified);
  /* 2 N in out = 2 x 3 x 5 x 7 */
  assert_double_exact(linear_flops(db), 210.0);
  db_free(db);
  /* the same size, the same modification time, another formula */
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  char *text = tu_read(path);
  char *edited = tu_replace(text, "\"flops\": \"2 * {N} * {in_features}",
                            "\"flops\": \"3 * {N} * {in_features}");
  assert_int_equal(strlen(edited), strlen(text));
  tu_write(path, edited);
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
  db = db_open_stamped(path, dir, &e);
  assert_non_null(db);
  assert_false(db->verified);
  assert_non_null(db->root); /* the index is not this file's */
  assert_double_exact(linear_flops(db), 315.0); /* 3 x 3 x 5 x 7 */
  db_free(db);
  /* back to the original bytes by another file renamed over it */
  char *other = path_join(dir, "other.json");
  tu_write(other, text);
  assert_int_equal(rename(other, path), 0);
  db = db_open_stamped(path, dir, &e);
  assert_false(db->verified);
  assert_null(db->root);
  db_free(db);
  /* the index touched back to its modification time */
  char *ip = path_join(dir, DBINDEX_FILE);
  assert_int_equal(stat(ip, &st), 0);
  char *itext = tu_read(ip);
  tu_write(ip, itext);
  struct timespec itimes[2] = {st.st_atim, st.st_mtim};
  assert_int_equal(utimensat(AT_FDCWD, ip, itimes, 0), 0);
  db = db_open_stamped(path, dir, &e);
  assert_false(db->verified);
  db_free(db);
  /* no cache: as db_open */
  setenv("LM_PREDICTOR_CACHE", "off", 1);
  db = db_open_stamped(path, dir, &e);
  assert_false(db->verified);
  assert_null(db->root);
  db_free(db);
  unsetenv("LM_PREDICTOR_CACHE");
  free(itext);
  free(ip);
  free(other);
  free(edited);
  free(text);
  free(path);
  tu_rm_rf(dir);
  tu_rm_rf(cache);
  free(dir);
  free(cache);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dbindex_round_trip_shipped),
      cmocka_unit_test(test_dbindex_escapes),
      cmocka_unit_test(test_dbindex_refused),
      cmocka_unit_test(test_dbindex_db_open),
      cmocka_unit_test(test_dbindex_stamped),
      cmocka_unit_test(test_dbindex_lazy_error_located),
      cmocka_unit_test(test_dbindex_lazy_cycle),
      cmocka_unit_test(test_dbindex_hash),
      cmocka_unit_test(test_dbindex_lmrun_never_stale),
  };
  return cmocka_run_group_tests_name("dbindex", tests, NULL, NULL);
}
