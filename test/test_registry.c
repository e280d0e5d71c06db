/* test_registry.c: add/lookup with thousands of keys, forced collisions,
 * the short-name index and its ambiguity, insertion-order iteration. */
#include "testutil.h"
#include "runtime.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

static uint64_t weak_hash(const char *k, size_t n) {
  return n ? (uint64_t)(unsigned char)k[n - 1] % 4 : 0; /* 4 buckets' worth */
}

typedef struct Fake {
  ModuleDef def;
  char full[64], shrt[32];
} Fake;

static Fake *fakes(int n, const char *prefix) {
  Fake *f = xcalloc((size_t)n, sizeof(Fake));
  for (int i = 0; i < n; i++) {
    snprintf(f[i].full, sizeof(f[i].full), "%s.m%d.Class%d", prefix, i % 97, i);
    snprintf(f[i].shrt, sizeof(f[i].shrt), "Class%d", i);
    f[i].def.full_name = f[i].full;
    f[i].def.short_name = f[i].shrt;
  }
  return f;
}

static RegModule *wrap(const ModuleDef *d) {
  RegModule *m = xcalloc(1, sizeof(RegModule));
  m->def = d;
  return m;
}

static void fill_and_check(Registry *r, Fake *f, int n) {
  for (int i = 0; i < n; i++)
    assert_int_equal(reg_add(r, wrap(&f[i].def)), 0);
  assert_int_equal(reg_count(r), n);
  for (int i = 0; i < n; i++) {
    RegModule *m = reg_get(r, f[i].full);
    assert_non_null(m);
    assert_ptr_equal(m->def, &f[i].def);
    int count = -1;
    assert_ptr_equal(reg_get_short(r, f[i].shrt, &count), m);
    assert_int_equal(count, 1);
  }
  assert_null(reg_get(r, "no.such.Class"));
  int count = -1;
  assert_null(reg_get_short(r, "Nope", &count));
  assert_int_equal(count, 0);
  /* iteration is insertion order */
  int it = 0, k = 0;
  RegModule *m;
  while ((m = reg_next(r, &it)))
    assert_ptr_equal(m->def, &f[k++].def);
  assert_int_equal(k, n);
}

static void test_registry_thousands(void **state) {
  (void)state;
  Fake *f = fakes(5000, "lib");
  Registry *r = reg_new();
  fill_and_check(r, f, 5000);
  reg_free(r);
  free(f);
}

static void test_registry_collisions(void **state) {
  (void)state;
  Fake *f = fakes(600, "lib");
  Registry *r = reg_new_with_hash(weak_hash);
  fill_and_check(r, f, 600);
  reg_free(r);
  free(f);
}

static void test_registry_duplicates_and_ambiguity(void **state) {
  (void)state;
  ModuleDef a = {.full_name = "torch.nn.modules.linear.Linear", .short_name = "Linear"};
  ModuleDef b = {.full_name = "vendor.layers.Linear", .short_name = "Linear"};
  ModuleDef a2 = a;
  Registry *r = reg_new();
  assert_int_equal(reg_add(r, wrap(&a)), 0);
  RegModule *dup = wrap(&a2);
  assert_int_equal(reg_add(r, dup), -1); /* existing key: refused */
  free(dup);
  int count;
  assert_non_null(reg_get_short(r, "Linear", &count));
  assert_int_equal(count, 1);
  assert_int_equal(reg_add(r, wrap(&b)), 0);
  assert_null(reg_get_short(r, "Linear", &count)); /* now ambiguous */
  assert_int_equal(count, 2);
  assert_ptr_equal(reg_get(r, "vendor.layers.Linear")->def, &b);
  reg_free(r);
}

/* Loading from disk uses only the stored file names. */
static void test_registry_load_uses_stored_names(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *dbp = path_join(dir, "db.json");
  char *mini = tu_read("test/data/mini_db.json");
  /* a stored name that the naming rule would never produce */
  char *odd = tu_replace(mini, "\"torch_softmax.c\"", "\"zz_custom_name.c\"");
  tu_write(dbp, odd);
  Db *db = tu_load_db(dbp);
  tu_generate(db, dir);
  char *p = path_join(dir, "zz_custom_name.c");
  assert_int_equal(access(p, F_OK), 0);
  Error e;
  err_clear(&e);
  Registry *r = reg_load(db, dir, &e);
  if (!r)
    err_print(stderr, &e);
  assert_non_null(r);
  RegModule *sm = reg_get(r, "torch.nn.modules.activation.Softmax");
  assert_non_null(sm);
  double args[] = {3, 4, 2}; /* rows cols a_bytes: 5*3*4 = 60 */
  assert_double_exact(sm->fn[M_FLOPS](args), 60);
  reg_free(r);
  db_free(db);
  tu_rm_rf(dir);
  free(dir);
  free(dbp);
  free(mini);
  free(odd);
  free(p);
}

/* reg_open's registry looks names up through its Db's maps: for every
 * entry of the shipped database, and of test/data/mini_db.json with a
 * second class named Linear, reg_get finds the entry's module, and
 * reg_get_short's count is the number of entries with that short name,
 * counted here by a scan (the module only when it is one); iteration is
 * the database's order; each module's op rows are its own; reg_add is
 * refused (the registry holds its database's modules only). */
static void check_open(const Db *db) {
  Error e;
  err_clear(&e);
  Registry *r = reg_open(db, "generated_modules", &e);
  assert_non_null(r);
  assert_int_equal(reg_count(r), db->nmods);
  int it = 0, k = 0;
  RegModule *m, *prev = NULL;
  while ((m = reg_next(r, &it))) {
    const ModuleDef *md = db->mods[k++];
    assert_ptr_equal(m->def, md);
    assert_ptr_equal(reg_get(r, md->full_name), m);
    int n = 0;
    for (int j = 0; j < db->nmods; j++)
      n += strcmp(db->mods[j]->short_name, md->short_name) == 0;
    int count = -1;
    RegModule *s = reg_get_short(r, md->short_name, &count);
    assert_int_equal(count, n);
    assert_ptr_equal(s, n == 1 ? m : NULL);
    assert_non_null(m->opfn);
    if (prev) /* rows laid out one module after another, not shared */
      assert_true(prev->opfn + prev->def->nops + 1 <= m->opfn);
    prev = m;
  }
  assert_int_equal(k, db->nmods);
  assert_null(reg_get(r, "no.such.Class"));
  int count = -1;
  assert_null(reg_get_short(r, "Nope", &count));
  assert_int_equal(count, 0);
  ModuleDef extra = {.full_name = "x.Extra", .short_name = "Extra"};
  RegModule *x = wrap(&extra);
  assert_int_equal(reg_add(r, x), -1);
  free(x);
  assert_null(reg_get(r, "x.Extra"));
  reg_free(r);
}

static void test_registry_open_lookups(void **state) {
  (void)state;
  Db *db = tu_load_db("module_db.json");
  check_open(db);
  db_free(db);
  char *mini = tu_read("test/data/mini_db.json");
  char *two = tu_replace(
      mini, "\"example.models.toy.ToyBlock\": {\n      \"short_name\": \"ToyBlock\"",
      "\"example.other.Linear\": {\n      \"short_name\": \"Linear\"");
  Error e;
  err_clear(&e);
  db = db_load_text("db.json", two, strlen(two), &e);
  assert_non_null(db);
  int count = -1;
  Registry *r = reg_open(db, "generated_modules", &e);
  assert_null(reg_get_short(r, "Linear", &count));
  assert_int_equal(count, 2); /* torch's Linear and example.other.Linear */
  reg_free(r);
  check_open(db);
  db_free(db);
  free(two);
  free(mini);
}

/* reg_open compiles nothing; loading a model compiles its modules and
 * every module their formulas call, and nothing else. */
static void test_registry_lazy(void **state) {
  (void)state;
  Db *db = tu_load_db("module_db.json");
  Error e;
  err_clear(&e);
  Registry *r = reg_open(db, "generated_modules", &e);
  assert_non_null(r);
  int i = 0;
  RegModule *m;
  while ((m = reg_next(r, &i)))
    assert_false(m->ready);
  Model *mod = model_load("models/mistral-7b-v0.1.json", r, &e);
  if (!mod)
    err_print(stderr, &e);
  assert_non_null(mod);
  const char *llama = "transformers.models.llama.modeling_llama.";
  char name[200];
  /* used by the model */
  assert_true(reg_get(r, "transformers.models.mistral.modeling_mistral."
                         "MistralAttention")->ready);
  assert_true(reg_get(r, "torch.nn.modules.linear.Linear")->ready);
  /* called by MistralAttention's formulas: compiled with it */
  snprintf(name, sizeof(name), "%sLlamaAttention", llama);
  assert_true(reg_get(r, name)->ready);
  snprintf(name, sizeof(name), "%sLlamaForCausalLM", llama);
  assert_false(reg_get(r, name)->ready);
  /* neither used nor called */
  assert_false(reg_get(r, "transformers.models.qwen3.modeling_qwen3."
                          "Qwen3Attention")->ready);
  Plan *p = plan_build(mod, ATTN_EAGER, &e);
  assert_non_null(p);
  Values *v = values_new(p);
  double run[V_COUNT] = {[V_B] = 1, [V_S] = 8, [V_T] = 1, [V_L] = 8,
                         [V_W_BYTES] = 2, [V_A_BYTES] = 2, [V_KV_BYTES] = 2,
                         [V_SRAM_BYTES] = 1024, [V_E_BYTES] = 2};
  assert_int_equal(plan_eval(p, run, v, &e), 0);
  /* KV cache: 2 x 32 layers x 8 heads x 8 tokens x 128 x 2 bytes, through
   * MistralAttention calling LlamaAttention in the same JIT state */
  assert_double_exact(v->state[M_KV_CACHE_BYTES - M_TRAFFIC],
                      2.0 * 32 * 8 * 8 * 128 * 2);
  values_free(v);
  plan_free(p);
  /* a second model compiles what is missing in a second state */
  Model *l2 = model_load("models/llama-2-7b-hf.json", r, &e);
  assert_non_null(l2);
  assert_true(reg_get(r, name)->ready);
  model_free(l2);
  model_free(mod);
  reg_free(r);
  db_free(db);
}

/* A module compiled from text in memory (lmgen --arch's candidates), with
 * no file on disk; the text is the generator's own output. */
static void test_registry_set_text(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  Db *db = db_load("module_db.json", &e);
  assert_non_null(db);
  char *empty = tu_tmpdir();
  Registry *r = reg_open(db, empty, &e);
  ModuleDef *md = db_find(db, "SiLU", &e);
  char *text = emit_module(md, "module_db.json", &e);
  assert_non_null(text);
  assert_int_equal(reg_set_text(r, "no.such.Module", text), -1);
  assert_int_equal(reg_set_text(r, md->full_name, text), 0);
  RegModule *m = reg_get(r, md->full_name);
  assert_int_equal(reg_ensure(r, &m, 1, &e), 0);
  assert_true(m->ready);
  double args[2] = {10, 2}; /* N, a_bytes */
  assert_double_exact(m->fn[M_FLOPS](args), module_eval(md, M_FLOPS, args));
  /* without the text, the missing file is the error */
  Registry *r2 = reg_open(db, empty, &e);
  RegModule *m2 = reg_get(r2, md->full_name);
  assert_int_equal(reg_ensure(r2, &m2, 1, &e), -1);
  assert_contains(e.msg, "generated file of torch.nn.modules.activation.SiLU "
                         "is missing");
  reg_free(r2);
  reg_free(r);
  free(text);
  tu_rm_rf(empty);
  free(empty);
  db_free(db);
}

/* Files in dir ending in suffix. */
static int count_files(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int n = 0;
  size_t sl = strlen(suffix);
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    n += l > sl && strcmp(e->d_name + l - sl, suffix) == 0;
  }
  closedir(d);
  return n;
}

/* One registry over dir compiles md's file: 0 or -1 (e set); *hits: its
 * compiles answered by a stamp. */
static int compile_once(Db *db, const char *dir, ModuleDef *md, int *hits,
                        Error *e) {
  err_clear(e);
  Registry *r = reg_open(db, dir, e);
  RegModule *m = reg_get(r, md->full_name);
  int rc = reg_ensure(r, &m, 1, e);
  double args[2] = {10, 2}; /* N, a_bytes */
  if (rc == 0) /* SiLU's code: negate, exp, add, divide, 4 FLOPs each */
    assert_double_exact(m->fn[M_FLOPS](args), 4.0 * 10);
  *hits = reg_stamp_hits(r);
  reg_free(r);
  return rc;
}

/* Stamps (registry.c): a hit found by stat(2) alone must never outlive a
 * change of the file: an edit of the same size, a touch back to the same
 * modification time, a file replaced by another; nor a fingerprint the
 * database no longer has. A file that changed in the last 2 s is not
 * stamped, so the test waits 2.1 s twice. */
static void test_registry_stamps(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  Db *db = db_load("module_db.json", &e);
  assert_non_null(db);
  char *dir = tu_tmpdir(), *cache = tu_tmpdir();
  setenv("LM_PREDICTOR_CACHE", cache, 1);
  char *jdir = path_join(cache, "jit");
  ModuleDef *md = db_find(db, "SiLU", &e);
  char *text = emit_module(md, "module_db.json", &e);
  assert_non_null(text);
  char *file = path_join(dir, md->file_name);
  tu_write(file, text);
  int hits = -1;
  /* just written: compiled and stored, not stamped */
  assert_int_equal(compile_once(db, dir, md, &hits, &e), 0);
  assert_int_equal(hits, 0);
  assert_int_equal(count_files(jdir, ".jit"), 1);
  assert_int_equal(count_files(jdir, ".stamp"), 0);
  usleep(2100 * 1000);
  /* settled: read (a cache hit by the bytes), then stamped */
  assert_int_equal(compile_once(db, dir, md, &hits, &e), 0);
  assert_int_equal(hits, 0);
  assert_int_equal(count_files(jdir, ".stamp"), 1);
  /* now found without reading the file */
  assert_int_equal(compile_once(db, dir, md, &hits, &e), 0);
  assert_int_equal(hits, 1);
  /* touched back to the same modification time: the change time moved */
  struct stat st;
  assert_int_equal(stat(file, &st), 0);
  tu_write(file, text);
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  assert_int_equal(utimensat(AT_FDCWD, file, times, 0), 0);
  assert_int_equal(compile_once(db, dir, md, &hits, &e), 0);
  assert_int_equal(hits, 0);
  /* an edit of the same size and modification time: the full check runs
   * and finds it (the checksum), as without a cache */
  char *edited = xstrdup(text);
  char *body = strstr(edited, "*/\n");
  assert_non_null(body);
  char *x = strchr(body, ';'); /* a statement's end becomes a space */
  assert_non_null(x);
  *x = ' ';
  tu_write(file, edited);
  assert_int_equal(utimensat(AT_FDCWD, file, times, 0), 0);
  assert_int_equal(compile_once(db, dir, md, &hits, &e), -1);
  assert_contains(e.msg, "edited by hand");
  assert_int_equal(hits, 0);
  /* replaced by another file (rename): another inode */
  char *other = path_join(dir, "other.c");
  tu_write(other, text);
  assert_int_equal(rename(other, file), 0);
  assert_int_equal(compile_once(db, dir, md, &hits, &e), 0);
  assert_int_equal(hits, 0);
  usleep(2100 * 1000);
  assert_int_equal(compile_once(db, dir, md, &hits, &e), 0);
  assert_int_equal(hits, 0); /* stamped now */
  assert_int_equal(count_files(jdir, ".stamp"), 2);
  assert_int_equal(compile_once(db, dir, md, &hits, &e), 0);
  assert_int_equal(hits, 1);
  /* the database's fingerprint changes (its formulas did): the stamp's
   * recorded one no longer matches, the file is read and found stale */
  md->fingerprint ^= 1;
  assert_int_equal(compile_once(db, dir, md, &hits, &e), -1);
  assert_contains(e.msg, "stale: fingerprint");
  assert_int_equal(hits, 0);
  md->fingerprint ^= 1;
  /* a damaged stamp is a miss, never an error */
  DIR *d = opendir(jdir);
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l > 6 && strcmp(de->d_name + l - 6, ".stamp") == 0) {
      char *sp = path_join(jdir, de->d_name);
      tu_write(sp, "lm-predictor-stamp 1\nkey 0\nbody 0 0\n");
      free(sp);
    }
  }
  closedir(d);
  assert_int_equal(compile_once(db, dir, md, &hits, &e), 0);
  assert_int_equal(hits, 0);
  unsetenv("LM_PREDICTOR_CACHE");
  free(other);
  free(edited);
  free(file);
  free(text);
  free(jdir);
  tu_rm_rf(dir);
  tu_rm_rf(cache);
  free(dir);
  free(cache);
  db_free(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registry_set_text),
      cmocka_unit_test(test_registry_stamps),
      cmocka_unit_test(test_registry_thousands),
      cmocka_unit_test(test_registry_collisions),
      cmocka_unit_test(test_registry_duplicates_and_ambiguity),
      cmocka_unit_test(test_registry_load_uses_stored_names),
      cmocka_unit_test(test_registry_open_lookups),
      cmocka_unit_test(test_registry_lazy),
  };
  return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
