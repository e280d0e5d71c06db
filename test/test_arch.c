/* test_arch.c: arch_run, the `lmgen --arch` workflow, in process on
 * --analysis answers (no network): what it writes, what it refuses, and
 * that a refusal or a rejected answer leaves every file as it was. The
 * end-to-end suite with the LLM server is test_lmgen_arch_cli.c. */
#include "testutil.h"

#include "agents.h"

#define ARCH "test/data/agent/arch"
#define CFG ARCH "/minillama"

typedef struct Fix {
  char *dir, *db, *gen, *arch, *tmpl;
} Fix;

static void copy_flat(const char *from, const char *to) {
  mkdir(to, 0755);
  DIR *d = opendir(from);
  assert_non_null(d);
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.')
      continue;
    char *a = path_join(from, de->d_name), *b = path_join(to, de->d_name);
    tu_copy(a, b);
    free(a);
    free(b);
  }
  closedir(d);
}

static int setup(void **state) {
  Fix *f = xcalloc(1, sizeof(Fix));
  f->dir = tu_tmpdir();
  f->db = path_join(f->dir, "module_db.json");
  f->gen = path_join(f->dir, "gen");
  f->arch = path_join(f->dir, "arch");
  f->tmpl = path_join(f->arch, "minillama.json");
  tu_copy("module_db.json", f->db);
  copy_flat("generated_modules", f->gen);
  copy_flat("models/arch", f->arch);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f->db);
  free(f->gen);
  free(f->arch);
  free(f->tmpl);
  free(f);
  return 0;
}

static ArchArgs args(Fix *f, const char *arg, const char *analysis) {
  return (ArchArgs){.db_path = f->db,
                    .out_dir = f->gen,
                    .arch_dir = f->arch,
                    .arg = arg,
                    .analysis = analysis};
}

static void assert_unchanged(Fix *f) {
  char *now = tu_read(f->db), *orig = tu_read("module_db.json");
  assert_string_equal(now, orig);
  free(now);
  free(orig);
  tu_assert_same_dir(f->gen, "generated_modules", NULL);
  tu_assert_same_dir(f->arch, "models/arch", NULL);
}

static void test_arch_run_writes(void **state) {
  Fix *f = *state;
  ArchArgs a = args(f, CFG, ARCH "/good.txt");
  a.dry_run = true;
  assert_int_equal(arch_run(&a), 0);
  assert_unchanged(f);
  a.dry_run = false;
  assert_int_equal(arch_run(&a), 0);
  json_t *j = json_load_file(f->tmpl, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(j, "validation"), "by")),
                      "analysis:good.txt");
  json_decref(j);
  /* the template is loaded by lmrun's own path, pending noted */
  Error e;
  err_clear(&e);
  Db *db = db_load(f->db, &e);
  Registry *reg = reg_open(db, f->gen, &e);
  ModelOpenOpts o = {.arch_dir = f->arch};
  Model *m = model_open(CFG, &o, reg, &e);
  assert_non_null(m);
  assert_non_null(m->tmpl_pending);
  assert_contains(m->tmpl_pending, "minillama.json");
  model_free(m);
  reg_free(reg);
  db_free(db);
  /* now it exists: refused without --force */
  assert_int_equal(arch_run(&a), 1);
  unlink(f->tmpl);
  assert_unchanged(f);
}

static void test_arch_run_refusals(void **state) {
  Fix *f = *state;
  /* a rejected answer */
  ArchArgs a = args(f, CFG, ARCH "/layer_off.json");
  assert_int_equal(arch_run(&a), 1);
  assert_unchanged(f);
  /* no reference */
  char *dir = path_join(f->dir, "bare");
  mkdir(dir, 0755);
  char *cfg = path_join(dir, "config.json");
  tu_copy(CFG "/config.json", cfg);
  a = args(f, dir, ARCH "/good.txt");
  assert_int_equal(arch_run(&a), 1);
  assert_unchanged(f);
  a.no_param_check = true;
  assert_int_equal(arch_run(&a), 0);
  unlink(f->tmpl);
  /* --force without a template; a missing --analysis file; a model file */
  a = args(f, CFG, ARCH "/good.txt");
  a.force = true;
  assert_int_equal(arch_run(&a), 1);
  a = args(f, CFG, ARCH "/nonexistent.json");
  assert_int_equal(arch_run(&a), 1);
  a = args(f, "models/llama-2-7b-hf.json", ARCH "/good.txt");
  a.no_param_check = true;
  assert_int_equal(arch_run(&a), 1);
  /* a class the database lacks, with --analysis */
  a = args(f, CFG, ARCH "/unknown_class.json");
  assert_int_equal(arch_run(&a), 1);
  assert_unchanged(f);
  free(cfg);
  free(dir);
}

/* --force: the install's test configs of the family must still work. */
static void test_arch_run_force(void **state) {
  Fix *f = *state;
  ArchArgs a = args(f, "test/data/configs/llama-3.2-1b.json",
                    ARCH "/llama_head_dim_required.json");
  a.force = true;
  a.expect_params = 1235814400;
  assert_int_equal(arch_run(&a), 1); /* llama-3-8b.json has no head_dim */
  assert_unchanged(f);
  a.analysis = "models/arch/llama.json";
  assert_int_equal(arch_run(&a), 0);
  char *p = path_join(f->arch, "llama.json");
  json_t *w = json_load_file(p, 0, NULL),
         *want = json_load_file("models/arch/llama.json", 0, NULL);
  free(p);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(w, "validation"), "status")),
                      "pending");
  json_object_del(w, "validation");
  assert_true(json_equal(w, want));
  json_decref(w);
  json_decref(want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_arch_run_writes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_arch_run_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_arch_run_force, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
