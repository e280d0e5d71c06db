/* test_agent.c: agents/agent.c, the agent workflow (agent_run) without
 * the network: --analysis answers from test/data/agent, in a temporary
 * directory holding copies of module_db.json and generated_modules/.
 * Whatever fails must leave both byte-for-byte unchanged. (The network
 * path is driven end to end by test_lmgen_agent_cli.c.) */
#include "testutil.h"

#include "agents.h"
#include "runtime.h"

#define SILU "torch.nn.modules.activation.SiLU"
#define TOYNORM "transformers.models.toy.modeling_toy.ToyNorm"
#define DATA "test/data/agent/"

typedef struct Fix {
  char *dir, *db, *out, *orig_db, *orig_list;
} Fix;

static int setup(void **state) {
  Fix *f = xcalloc(1, sizeof(Fix));
  f->dir = tu_tmpdir();
  f->db = path_join(f->dir, "module_db.json");
  f->out = path_join(f->dir, "gen");
  tu_copy("module_db.json", f->db);
  mkdir(f->out, 0755);
  DIR *d = opendir("generated_modules");
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.')
      continue;
    char *from = path_join("generated_modules", de->d_name);
    char *to = path_join(f->out, de->d_name);
    tu_copy(from, to);
    free(from);
    free(to);
  }
  closedir(d);
  f->orig_db = tu_read(f->db);
  f->orig_list = tu_list_files(f->out);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f->db);
  free(f->out);
  free(f->orig_db);
  free(f->orig_list);
  free(f);
  return 0;
}

/* agent_run with stdout and stderr captured into *out. */
static int run(Fix *f, const AgentArgs *args, char **out) {
  AgentArgs a = *args;
  a.db_path = f->db;
  a.out_dir = f->out;
  char *cap = path_join(f->dir, "out.txt");
  fflush(stdout);
  fflush(stderr);
  int o1 = dup(1), o2 = dup(2);
  FILE *c = fopen(cap, "w");
  assert_non_null(c);
  dup2(fileno(c), 1);
  dup2(fileno(c), 2);
  fclose(c);
  int rc = agent_run(&a);
  fflush(stdout);
  fflush(stderr);
  dup2(o1, 1);
  dup2(o2, 2);
  close(o1);
  close(o2);
  *out = tu_read(cap);
  unlink(cap);
  free(cap);
  return rc;
}

static void assert_unchanged(Fix *f) {
  char *now = tu_read(f->db);
  assert_string_equal(now, f->orig_db);
  free(now);
  char *list = tu_list_files(f->out);
  assert_string_equal(list, f->orig_list);
  free(list);
  tu_assert_same_dir("generated_modules", f->out, NULL);
}

static json_t *entry(Fix *f, const char *name) {
  json_t *j = json_load_file(f->db, 0, NULL);
  assert_non_null(j);
  json_t *e =
      json_deep_copy(json_object_get(json_object_get(j, "modules"), name));
  json_decref(j);
  assert_non_null(e);
  return e;
}

/* --force --analysis: the answer (flops 5N instead of 4N) replaces the
 * formulas, the entry is marked pending by the analysis file, and the C
 * file is rewritten from it. */
static void test_force_analysis_writes(void **state) {
  Fix *f = *state;
  AgentArgs a = {
      .name = "SiLU", .force = true, .analysis = DATA "silu_good.json"};
  char *out;
  assert_int_equal(run(f, &a, &out), 0);
  assert_contains(out, "lmgen: the answer for " SILU " passed every check\n");
  assert_contains(out, "  flops:\n    old: 4 * {N}\n    new: 5 * {N}\n");
  assert_contains(out, "lmgen: updated " SILU " in ");
  assert_contains(out, "(validation: pending)\n");
  assert_contains(out, "lmgen: 1 module, 1 written, 0 unchanged\n");
  json_t *e = entry(f, SILU);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(e, "formulas"), "flops")),
                      "5 * {N}");
  json_t *v = json_object_get(e, "validation");
  assert_string_equal(json_string_value(json_object_get(v, "status")),
                      "pending");
  assert_string_equal(json_string_value(json_object_get(v, "by")),
                      "analysis:silu_good.json");
  json_decref(e);
  char *p = path_join(f->out, "torch_silu.c");
  char *c = tu_read(p);
  assert_contains(c, "return (5.0 * p_N);");
  free(c);
  free(p);
  free(out);
}

/* --dry-run: the diff and the files it would write, nothing written. */
static void test_dry_run_writes_nothing(void **state) {
  Fix *f = *state;
  AgentArgs a = {.name = SILU,
                 .force = true,
                 .dry_run = true,
                 .analysis = DATA "silu_good.json"};
  char *out;
  assert_int_equal(run(f, &a, &out), 0);
  assert_contains(out, "    new: 5 * {N}\n");
  assert_contains(out, "lmgen: would update ");
  assert_contains(out, "torch_silu.c\n");
  assert_contains(out, "lmgen: dry run: nothing written\n");
  assert_not_contains(out, "lmgen: wrote");
  assert_unchanged(f);
  free(out);
}

/* Refusals before any analysis: known without --force, an unknown short
 * name, a name that is no class name. */
static void test_refusals(void **state) {
  Fix *f = *state;
  static const struct {
    const char *name;
    bool force;
    const char *msg;
  } cases[] = {
      {"SiLU", false, "error: " SILU " is already in "},
      {"NoSuchThing", true, "error: module 'NoSuchThing' is not in "},
      {"a.b.not-a-class", true,
       "give its full dotted class name (package.module.Class)"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    AgentArgs a = {.name = cases[i].name,
                   .force = cases[i].force,
                   .analysis = DATA "silu_good.json"};
    char *out;
    assert_int_equal(run(f, &a, &out), 1);
    assert_contains(out, cases[i].msg);
    assert_not_contains(out, "passed every check");
    free(out);
  }
  assert_unchanged(f);
}

/* A rejected answer (a negative cost) is a located error about the
 * analysis file, and nothing changes; no reply is saved (it is a file). */
static void test_rejected_answer(void **state) {
  Fix *f = *state;
  AgentArgs a = {
      .name = "SiLU", .force = true, .analysis = DATA "silu_negative.json"};
  char *out;
  assert_int_equal(run(f, &a, &out), 1);
  assert_contains(out, DATA "silu_negative.json");
  assert_contains(out, "error: ");
  assert_not_contains(out, "the reply is saved");
  assert_unchanged(f);
  free(out);
}

/* The network path without configuration fails at once, naming what to
 * set, before reading any source. */
static void test_unconfigured(void **state) {
  Fix *f = *state;
  unsetenv("LMGEN_API_URL");
  unsetenv("LMGEN_API_KEY");
  unsetenv("LMGEN_MODEL");
  AgentArgs a = {.name = "SiLU", .force = true};
  char *out;
  assert_int_equal(run(f, &a, &out), 1);
  assert_contains(out, "LMGEN_API_URL");
  assert_not_contains(out, "asking");
  assert_unchanged(f);
  free(out);
}

/* A new class with --source: added, its source recorded, its file
 * written, the other files untouched. */
static void test_new_entry_with_source(void **state) {
  Fix *f = *state;
  AgentArgs a = {.name = TOYNORM,
                 .analysis = DATA "toy_norm.json",
                 .source =
                     DATA "tree/src/transformers/models/toy/modeling_toy.py"};
  char *out;
  assert_int_equal(run(f, &a, &out), 0);
  assert_contains(out, "lmgen: added " TOYNORM " in ");
  json_t *e = entry(f, TOYNORM);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(e, "source"), "file")),
      DATA "tree/src/transformers/models/toy/modeling_toy.py");
  assert_string_equal(
      json_string_value(json_object_get(e, "generated_file_name")),
      "transformers_toy_norm.c");
  json_decref(e);
  char *list = tu_list_files(f->out);
  assert_contains(list, "transformers_toy_norm.c\n");
  free(list);
  free(out);
}

/* An answer whose parameters are named like macros the preprocessor owns
 * (unix, __LINE__, LM_ABI_VERSION) is accepted, and the code generated for
 * it compiles and runs as lmrun loads it (issue 9: such an answer broke
 * every lmrun). 3*3*5 + 2*3 = 51 FLOPs for unix=3, __LINE__=5. */
static void test_macro_named_parameters(void **state) {
  Fix *f = *state;
  AgentArgs a = {.name = TOYNORM,
                 .analysis = DATA "toy_norm_macros.json",
                 .source =
                     DATA "tree/src/transformers/models/toy/modeling_toy.py"};
  char *out;
  assert_int_equal(run(f, &a, &out), 0);
  assert_contains(out, "lmgen: added " TOYNORM " in ");
  free(out);
  char *p = path_join(f->out, "transformers_toy_norm.c");
  char *c = tu_read(p);
  assert_contains(c, "double p_unix = args[0];");
  assert_contains(c, "double p___LINE__ = args[1];");
  free(c);
  free(p);
  Db *db = tu_load_db(f->db);
  Error e;
  err_clear(&e);
  Registry *reg = reg_load(db, f->out, &e);
  if (!reg)
    err_print(stderr, &e);
  assert_non_null(reg);
  RegModule *m = reg_get(reg, TOYNORM);
  assert_non_null(m);
  double args[] = {3, 5, 2};
  assert_double_exact(m->fn[M_FLOPS](args), 51);
  assert_double_exact(m->fn[M_ACT_READ_BYTES](args), 30);
  reg_free(reg);
  db_free(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_force_analysis_writes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_dry_run_writes_nothing, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rejected_answer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unconfigured, setup, teardown),
      cmocka_unit_test_setup_teardown(test_new_entry_with_source, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_macro_named_parameters, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
