/* test_emit.c: the C emitter. Golden files pin the exact text; the emitted
 * code of the real database is compiled by gcc and by libtcc, evaluated
 * against hand-derived values, and cross-checked against the interpreter.
 */
#include "testutil.h"
#include "gen.h"

#include "modabi.h"

#include <libtcc.h>

extern const char lm_modabi_text[];

static void test_emit_numbers(void **state) {
  (void)state;
  struct {
    double v;
    const char *s;
  } cases[] = {{0, "0.0"},        {2, "2.0"},           {-3, "-3.0"},
               {0.5, "0.5"},      {1e-5, "1e-05"},      {0.1, "0.1"},
               {68719476736.0, "68719476736.0"},
               {1e16, "1e+16"},   {1.0 / 3, "0.3333333333333333"},
               {2.5e-300, "2.5e-300"}};
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char buf[64];
    emit_number(cases[i].v, buf, sizeof(buf));
    assert_string_equal(buf, cases[i].s);
    assert_true(strtod(buf, NULL) == cases[i].v);
  }
}

static Db *load_db(const char *path) {
  Error e;
  err_clear(&e);
  Db *db = db_load(path, &e);
  if (!db)
    err_print(stderr, &e);
  assert_non_null(db);
  return db;
}

/* LM_UPDATE_GOLDEN=1 (set, non-empty, not "0") rewrites the golden files
 * from the emitter's output instead of comparing. That run checks nothing,
 * so it never passes: the test prints each file it rewrote and reports
 * itself SKIPPED; under CI (CI set, non-empty, not "false" or "0", as
 * .ci/run sets it) it fails before writing anything. */
static bool env_on(const char *name, const char *off) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0 && (!off || strcmp(v, off) != 0);
}

/* Golden files: the emitter's exact output for the fixture database. */
static void test_emit_golden(void **state) {
  (void)state;
  bool update = env_on("LM_UPDATE_GOLDEN", NULL);
  if (update && env_on("CI", "false"))
    fail_msg("LM_UPDATE_GOLDEN is set under CI: golden files are never "
             "rewritten there, and a run that rewrites them compares nothing. "
             "Unset LM_UPDATE_GOLDEN.");
  int rewritten = 0;
  Db *db = load_db("test/data/mini_db.json");
  const char *names[] = {"torch.nn.modules.linear.Linear",
                         "example.models.toy.ToyAttention"};
  const char *golden[] = {"test/golden/torch_linear.c",
                          "test/golden/example_toy_attention.c"};
  for (size_t i = 0; i < LM_ARRAY_LEN(names); i++) {
    Error e;
    err_clear(&e);
    ModuleDef *md = db_find(db, names[i], &e);
    char *got = emit_module(md, "mini_db.json", &e);
    assert_non_null(got);
    char *want = tu_read(golden[i]);
    if (update) {
      if (!want || strcmp(got, want) != 0) {
        tu_write(golden[i], got);
        print_message("LM_UPDATE_GOLDEN: REWROTE %s (review it with git diff)\n",
                      golden[i]);
        rewritten++;
      }
    } else {
      assert_non_null(want);
      assert_string_equal(got, want);
    }
    free(want);
    free(got);
  }
  /* an entry without stored names cannot be emitted */
  Error e;
  err_clear(&e);
  assert_null(emit_module(db->mods[3], "mini_db.json", &e));
  assert_contains(e.msg, "no stored generated_file_name");
  db_free(db);
  if (update) {
    print_message("LM_UPDATE_GOLDEN: %d golden file(s) rewritten from the "
                  "emitter's output; this run checked nothing, so the test "
                  "is SKIPPED. Rerun without LM_UPDATE_GOLDEN to compare.\n",
                  rewritten);
    skip();
  }
}

/* Emitting is deterministic: twice the same bytes. */
static void test_emit_deterministic(void **state) {
  (void)state;
  Db *a = load_db("module_db.json"), *b = load_db("module_db.json");
  for (int i = 0; i < a->nmods; i++) {
    char *x = emit_module(a->mods[i], "module_db.json", NULL);
    char *y = emit_module(b->mods[i], "module_db.json", NULL);
    assert_non_null(x);
    assert_string_equal(x, y);
    free(x);
    free(y);
  }
  db_free(a);
  db_free(b);
}

/* Every emitted file of the real database compiles cleanly with gcc. */
static void test_emit_compiles_with_gcc(void **state) {
  (void)state;
  Db *db = load_db("module_db.json");
  char *dir = tu_tmpdir();
  for (int i = 0; i < db->nmods; i++) {
    char *src = emit_module(db->mods[i], "module_db.json", NULL);
    char *path = path_join(dir, db->mods[i]->file_name);
    tu_write(path, src);
    char *out = NULL;
    int rc = tu_run(&out,
                    "cc -std=c11 -Wall -Wextra -Werror -Wshadow "
                    "-Wmissing-prototypes -Wstrict-prototypes -Iinclude -c %s "
                    "-o %s.o",
                    path, path);
    if (rc != 0)
      print_error("%s\n", out);
    assert_int_equal(rc, 0);
    free(out);
    free(path);
    free(src);
  }
  tu_rm_rf(dir);
  free(dir);
  db_free(db);
}

typedef struct Jit {
  TCCState *s;
  Buf errors;
} Jit;

static void on_tcc_error(void *opaque, const char *msg) {
  Buf *b = opaque;
  buf_printf(b, "%s\n", msg);
}

/* Compile all emitted modules of db in one libtcc state, as lmrun does. */
static void jit_all(Jit *j, Db *db) {
  buf_init(&j->errors);
  j->s = tcc_new();
  tcc_set_error_func(j->s, &j->errors, on_tcc_error);
  tcc_set_options(j->s, "-nostdlib -nostdinc");
  tcc_set_output_type(j->s, TCC_OUTPUT_MEMORY);
  Buf src;
  buf_init(&src);
  buf_puts(&src, lm_modabi_text);
  for (int i = 0; i < db->nmods; i++) {
    char *c = emit_module(db->mods[i], "module_db.json", NULL);
    buf_printf(&src, "#line 1 \"%s\"\n%s\n", db->mods[i]->file_name, c);
    free(c);
  }
  int rc = tcc_compile_string(j->s, buf_str(&src));
  if (rc == 0)
    rc = tcc_relocate(j->s, TCC_RELOCATE_AUTO);
  if (rc != 0)
    print_error("%s", buf_str(&j->errors));
  assert_int_equal(rc, 0);
  buf_free(&src);
}

static lm_metric_fn jit_fn(Jit *j, const ModuleDef *md, const AtomicOp *op,
                           Metric m) {
  char sym[256];
  emit_symbol(md, op, m, sym, sizeof(sym));
  void *p = tcc_get_symbol(j->s, sym);
  assert_non_null(p);
  lm_metric_fn f;
  memcpy(&f, &p, sizeof(f));
  return f;
}

static void jit_free(Jit *j) {
  tcc_delete(j->s);
  buf_free(&j->errors);
}

/* Parameter names the preprocessor owns (tcc's and gcc's predefined
 * macros, modabi.h's) cannot break generated code: emitted identifiers are
 * the generator's own (issue 9). The code compiles with libtcc and gcc and
 * computes the hand value. */
static void test_emit_macro_names_are_inert(void **state) {
  (void)state;
  static const char *const ren[][2] = {
      {"\"N\"", "\"__COUNTER__\""},     {"{N}", "{__COUNTER__}"},
      {"in_features", "unix"},           {"out_features", "__LINE__"},
      {"w_bytes", "linux"},              {"a_bytes", "LM_ABI_VERSION"},
      {"rows", "__x86_64__"},            {"cols", "__TINYC__"},
      {"\"heads\"", "\"LM_MODABI_H\""}, {"{heads}", "{LM_MODABI_H}"},
  };
  char *text = tu_read("test/data/mini_db.json");
  for (size_t r = 0; r < LM_ARRAY_LEN(ren); r++)
    while (strstr(text, ren[r][0])) {
      char *next = tu_replace(text, ren[r][0], ren[r][1]);
      free(text);
      text = next;
    }
  Error e;
  err_clear(&e);
  Db *db = db_load_text("macro_db.json", text, strlen(text), &e);
  if (!db)
    err_print(stderr, &e);
  assert_non_null(db);
  assert_true(db_assign_names(db, db->mods, db->nmods, &e) >= 0);
  char *dir = tu_tmpdir();
  for (int i = 0; i < db->nmods; i++) {
    char *src = emit_module(db->mods[i], "macro_db.json", NULL);
    char *path = path_join(dir, db->mods[i]->file_name);
    tu_write(path, src);
    char *out = NULL;
    int rc = tu_run(&out,
                    "cc -std=gnu11 -Wall -Wextra -Werror -Iinclude -c %s "
                    "-o %s.o",
                    path, path);
    if (rc != 0)
      print_error("%s\n", out);
    assert_int_equal(rc, 0);
    free(out);
    free(path);
    free(src);
  }
  tu_rm_rf(dir);
  free(dir);
  Jit j;
  jit_all(&j, db);
  ModuleDef *lin = db_find(db, "torch.nn.modules.linear.Linear", NULL);
  /* __COUNTER__=3 unix=5 __LINE__=7 linux=2 LM_ABI_VERSION=2:
   * flops = 2*3*5*7 = 210; weight bytes = 5*7*2 = 70 */
  double a[] = {3, 5, 7, 2, 2};
  assert_double_exact(jit_fn(&j, lin, NULL, M_FLOPS)(a), 210);
  assert_double_exact(jit_fn(&j, lin, NULL, M_WEIGHT_BYTES)(a), 70);
  jit_free(&j);
  db_free(db);
  free(text);
}

/* Hand-derived values (Llama-2-7B, one decoder layer, prefill B=1 S=2048,
 * 16-bit): q_proj and input_layernorm. */
static void test_emit_jit_hand_values(void **state) {
  (void)state;
  Db *db = load_db("module_db.json");
  Jit j;
  jit_all(&j, db);
  ModuleDef *lin = db_find(db, "Linear", NULL);
  /* N=2048 in=4096 out=4096 bias=0 w=2 in=2 out_act=2 out_kv=0 */
  double q[] = {2048, 4096, 4096, 0, 2, 2, 2, 0};
  /* 2*2048*4096*4096 = 68,719,476,736 (LLM-Viewer's q_proj OPs) */
  assert_double_exact(jit_fn(&j, lin, NULL, M_FLOPS)(q), 68719476736.0);
  /* 4096*4096*2 = 33,554,432 weight bytes */
  assert_double_exact(jit_fn(&j, lin, NULL, M_WEIGHT_BYTES)(q), 33554432.0);
  /* 2048*4096*2 = 16,777,216 read and written */
  assert_double_exact(jit_fn(&j, lin, NULL, M_ACT_READ_BYTES)(q), 16777216.0);
  assert_double_exact(jit_fn(&j, lin, NULL, M_ACT_WRITE_BYTES)(q), 16777216.0);
  assert_double_exact(jit_fn(&j, lin, NULL, M_KV_WRITE_BYTES)(q), 0);
  /* k_proj: output to the cache: 16,777,216 KV bytes, no act write */
  double k[] = {2048, 4096, 4096, 0, 2, 2, 0, 2};
  assert_double_exact(jit_fn(&j, lin, NULL, M_ACT_WRITE_BYTES)(k), 0);
  assert_double_exact(jit_fn(&j, lin, NULL, M_KV_WRITE_BYTES)(k), 16777216.0);
  /* with a bias: 2*2*3*4 + 1*2*4 = 56 FLOPs, (3*4+4)*1 = 16 weight bytes */
  double b[] = {2, 3, 4, 1, 1, 1, 1, 0};
  assert_double_exact(jit_fn(&j, lin, NULL, M_FLOPS)(b), 56);
  assert_double_exact(jit_fn(&j, lin, NULL, M_WEIGHT_BYTES)(b), 16);

  ModuleDef *rms = db_find(db, "LlamaRMSNorm", NULL);
  /* N=2048 hidden=4096 a=2 w=2: 4*2048*4096 + 3*2048 = 33,560,576 FLOPs */
  double r[] = {2048, 4096, 2, 2};
  assert_double_exact(jit_fn(&j, rms, NULL, M_FLOPS)(r), 33560576.0);
  /* gamma: 4096*2 = 8,192; x in and y out: 2048*4096*2 = 16,777,216 each */
  assert_double_exact(jit_fn(&j, rms, NULL, M_WEIGHT_BYTES)(r), 8192);
  assert_double_exact(jit_fn(&j, rms, NULL, M_ACT_READ_BYTES)(r), 16777216.0);
  assert_double_exact(jit_fn(&j, rms, NULL, M_ACT_WRITE_BYTES)(r), 16777216.0);
  assert_double_exact(jit_fn(&j, rms, NULL, M_KV_READ_BYTES)(r), 0);
  jit_free(&j);
  db_free(db);
}

/* The JIT and the interpreter agree bit for bit on every metric of every
 * module and atomic op, over pseudo-random arguments. */
static void test_emit_jit_matches_interpreter(void **state) {
  (void)state;
  /* a variant of the fixture whose ToyBlock calls ToyAttention.qk_matmul */
  char *dir = tu_tmpdir();
  char *variant = path_join(dir, "variant.json");
  char *mini = tu_read("test/data/mini_db.json");
  char *v = tu_replace(mini, "\"formulas\": {},\n      \"reasoning\": \"container\"",
                       "\"formulas\": {\"flops\": "
                       "\"${example.models.toy.ToyAttention.qk_matmul}(1, {N}, "
                       "{N}, 2, 4, 2) + ${torch.nn.modules.activation.Softmax}"
                       "({N}, 2, 1)\"},\n      \"reasoning\": \"container\"");
  tu_write(variant, v);
  free(mini);
  free(v);
  const char *dbs[] = {"module_db.json", "test/data/mini_db.json", variant};
  for (size_t d = 0; d < LM_ARRAY_LEN(dbs); d++) {
    Db *db = load_db(dbs[d]);
    ModuleDef **all = xcalloc((size_t)db->nmods, sizeof(ModuleDef *));
    for (int i = 0; i < db->nmods; i++)
      all[i] = db->mods[i];
    db_assign_names(db, all, db->nmods, NULL);
    free(all);
    Jit j;
    jit_all(&j, db);
    uint64_t x = 88172645463325252ULL;
    for (int round = 0; round < 50; round++) {
      double args[64];
      for (int i = 0; i < 64; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        args[i] = (double)(x % 100000) / (round % 3 ? 1 : 7.0);
      }
      for (int i = 0; i < db->nmods; i++) {
        ModuleDef *md = db->mods[i];
        for (int m = 0; m < M_COUNT; m++) {
          double a = jit_fn(&j, md, NULL, (Metric)m)(args);
          double b = module_eval(md, (Metric)m, args);
          assert_memory_equal(&a, &b, sizeof(double));
        }
        for (int k = 0; k < md->nops; k++)
          for (int m = 0; m < M_TRAFFIC; m++) {
            double a = jit_fn(&j, md, &md->ops[k], (Metric)m)(args);
            double b = md->ops[k].ast[m]
                           ? node_eval(md->ops[k].ast[m], args, (Metric)m)
                           : 0.0;
            assert_memory_equal(&a, &b, sizeof(double));
          }
      }
    }
    jit_free(&j);
    db_free(db);
  }
  tu_rm_rf(dir);
  free(dir);
  free(variant);
}

/* What the p_ namespace cannot make immune is refused by name: a class
 * named p makes the function p_flops, which a parameter {flops} (the local
 * p_flops) would shadow. */
static void test_emit_refuses_shadowing_local(void **state) {
  (void)state;
  char *text = tu_read("test/data/mini_db.json");
  char *t1 = tu_replace(text, "\"TorchLinear\"", "\"p\"");
  char *t2 = tu_replace(t1, "\"name\": \"N\"", "\"name\": \"flops\"");
  char *t3 = t2;
  while (strstr(t3, "{N}")) {
    char *next = tu_replace(t3, "{N}", "{flops}");
    if (t3 != t2)
      free(t3);
    t3 = next;
  }
  Error e;
  err_clear(&e);
  Db *db = db_load_text("shadow_db.json", t3, strlen(t3), &e);
  if (!db)
    err_print(stderr, &e);
  assert_non_null(db);
  ModuleDef *lin = db_find(db, "torch.nn.modules.linear.Linear", &e);
  assert_non_null(lin);
  assert_null(emit_module(lin, "shadow_db.json", &e));
  assert_contains(e.msg, "torch.nn.modules.linear.Linear: parameter 'flops' "
                         "becomes the local p_flops, the name of a generated "
                         "function");
  db_free(db);
  if (t3 != t2)
    free(t3);
  free(t2);
  free(t1);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_emit_numbers),
      cmocka_unit_test(test_emit_golden),
      cmocka_unit_test(test_emit_macro_names_are_inert),
      cmocka_unit_test(test_emit_refuses_shadowing_local),
      cmocka_unit_test(test_emit_deterministic),
      cmocka_unit_test(test_emit_compiles_with_gcc),
      cmocka_unit_test(test_emit_jit_hand_values),
      cmocka_unit_test(test_emit_jit_matches_interpreter),
  };
  return cmocka_run_group_tests_name("emit", tests, NULL, NULL);
}
