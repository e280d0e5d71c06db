/* test_fuse.c: the fused plan function (runtime/fuse.c) against the
 * interpretive evaluation, value for value (exact equality), on every
 * shipped model and the tiny one, both attention implementations, prefill
 * and decode at several batch sizes, lengths and precisions; and its
 * failure path: a check that fails falls back to the interpretive path's
 * located error. */
#include "testutil.h"
#include "runtime.h"

static Db *db;
static Registry *reg;

static int group_setup(void **state) {
  (void)state;
  db = tu_load_db("module_db.json");
  reg = reg_load(db, "generated_modules", NULL);
  return reg ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  reg_free(reg);
  db_free(db);
  return 0;
}

static void same(const Plan *p, const double *run) {
  Values *a = values_new(p), *b = values_new(p);
  assert_int_equal(fused_eval(p->fused, run, a), 0);
  assert_int_equal(plan_eval_interp(p, run, b, NULL), 0);
  for (int r = 0; r < p->nrows; r++)
    for (int k = 0; k < M_TRAFFIC; k++)
      assert_memory_equal(&a->row[r][k], &b->row[r][k], sizeof(double));
  for (int k = 0; k < M_COUNT - M_TRAFFIC; k++)
    assert_memory_equal(&a->state[k], &b->state[k], sizeof(double));
  assert_memory_equal(a->args, b->args, sizeof(double) * (size_t)p->nargs);
  values_free(a);
  values_free(b);
  /* the KV rows alone, over an evaluation at another length */
  double r2[V_COUNT];
  memcpy(r2, run, sizeof(r2));
  r2[V_S] = r2[V_L] = run[V_L] + 7;
  Values *c = values_new(p), *d = values_new(p);
  assert_int_equal(plan_eval_interp(p, run, c, NULL), 0);
  assert_int_equal(plan_eval_interp(p, run, d, NULL), 0);
  assert_int_equal(fused_eval_kv(p->fused, r2, c), 0);
  assert_int_equal(plan_eval_rows(p, r2, p->kvrows, p->nkvrows, d, NULL), 0);
  for (int r = 0; r < p->nrows; r++)
    assert_memory_equal(c->row[r], d->row[r], sizeof(double) * M_TRAFFIC);
  /* and both equal a whole evaluation at that length */
  assert_int_equal(plan_eval_interp(p, r2, d, NULL), 0);
  for (int r = 0; r < p->nrows; r++)
    assert_memory_equal(c->row[r], d->row[r], sizeof(double) * M_TRAFFIC);
  /* the KV rows and the state over a whole evaluation at run make a
   * whole evaluation at r2: rows, state and arguments */
  assert_int_equal(plan_eval_interp(p, run, c, NULL), 0);
  assert_int_equal(fused_eval_kv_state(p->fused, r2, c), 0);
  for (int r = 0; r < p->nrows; r++)
    assert_memory_equal(c->row[r], d->row[r], sizeof(double) * M_TRAFFIC);
  assert_memory_equal(c->state, d->state,
                      sizeof(double) * (M_COUNT - M_TRAFFIC));
  assert_memory_equal(c->args, d->args, sizeof(double) * (size_t)p->nargs);
  values_free(c);
  values_free(d);
}

static void test_fused_equals_interpreted(void **state) {
  (void)state;
  static const char *const models[] = {
      "models/llama-2-7b-hf.json",   "models/llama-2-13b-hf.json",
      "models/llama-2-70b-hf.json",  "models/meta-llama-3-8b.json",
      "models/mistral-7b-v0.1.json", "test/data/tiny_llama.json"};
  static const double B[] = {1, 3, 64}, S[] = {1, 17, 2048, 8192},
                      bytes[] = {2, 1, 0.5};
  for (size_t i = 0; i < LM_ARRAY_LEN(models); i++) {
    Model *m = model_load(models[i], reg, NULL);
    assert_non_null(m);
    for (int a = 0; a < ATTN_COUNT; a++) {
      Plan *p = plan_build(m, (AttnImpl)a, NULL);
      assert_non_null(p);
      assert_null(p->fused); /* fused on demand */
      plan_fuse(p);
      assert_non_null(p->fused);
      for (size_t bi = 0; bi < LM_ARRAY_LEN(B); bi++)
        for (size_t si = 0; si < LM_ARRAY_LEN(S); si++)
          for (size_t wi = 0; wi < LM_ARRAY_LEN(bytes); wi++)
            for (int dec = 0; dec < 2; dec++) {
              double run[V_COUNT] = {[V_B] = B[bi],
                                     [V_S] = S[si],
                                     [V_T] = dec ? 1 : S[si],
                                     [V_L] = S[si],
                                     [V_W_BYTES] = bytes[wi],
                                     [V_A_BYTES] = 2,
                                     [V_KV_BYTES] = bytes[2 - wi],
                                     [V_SRAM_BYTES] = 233472,
                                     [V_E_BYTES] = 2};
              same(p, run);
            }
      plan_free(p);
    }
    model_free(m);
  }
}

/* A plan is fused by use: interpreted for its first PLAN_FUSE_AFTER - 1
 * evaluations (one prediction does a few dozen: compiling would cost more
 * than it saves), fused from then on, with the same values throughout. */
static void test_fused_after_use(void **state) {
  (void)state;
  Model *m = model_load("models/llama-2-7b-hf.json", reg, NULL);
  assert_non_null(m);
  Plan *p = plan_build(m, ATTN_EAGER, NULL);
  assert_non_null(p);
  double run[V_COUNT] = {[V_B] = 2,         [V_S] = 512,      [V_T] = 512,
                         [V_L] = 512,       [V_W_BYTES] = 2,  [V_A_BYTES] = 2,
                         [V_KV_BYTES] = 2,  [V_SRAM_BYTES] = 233472,
                         [V_E_BYTES] = 2};
  Values *first = values_new(p), *v = values_new(p);
  assert_int_equal(plan_eval(p, run, first, NULL), 0);
  for (int i = 1; i < PLAN_FUSE_AFTER - 1; i++)
    assert_int_equal(plan_eval(p, run, v, NULL), 0);
  assert_null(p->fused);
  assert_int_equal(plan_eval(p, run, v, NULL), 0);
  assert_non_null(p->fused);
  for (int r = 0; r < p->nrows; r++)
    assert_memory_equal(first->row[r], v->row[r], sizeof(double) * M_TRAFFIC);
  values_free(first);
  values_free(v);
  plan_free(p);
  model_free(m);
}

/* B = 0 breaks the range check of N >= 1: the fused function says -1,
 * plan_eval words the interpretive path's located error. */
static void test_fused_failure_falls_back(void **state) {
  (void)state;
  Model *m = model_load("test/data/tiny_llama.json", reg, NULL);
  Plan *p = plan_build(m, ATTN_EAGER, NULL);
  plan_fuse(p);
  assert_non_null(p->fused);
  double run[V_COUNT] = {
      [V_B] = 0,       [V_S] = 4,       [V_T] = 4,        [V_L] = 4,
      [V_W_BYTES] = 2, [V_A_BYTES] = 2, [V_KV_BYTES] = 2, [V_SRAM_BYTES] = 1024,
      [V_E_BYTES] = 2};
  Values *v = values_new(p), *w = values_new(p);
  assert_int_equal(fused_eval(p->fused, run, v), -1);
  Error e1, e2;
  err_clear(&e1);
  err_clear(&e2);
  assert_int_equal(plan_eval(p, run, v, &e1), -1);
  assert_int_equal(plan_eval_interp(p, run, w, &e2), -1);
  assert_string_equal(e1.msg, e2.msg);
  assert_contains(e1.msg, "parameter 'N'");
  values_free(v);
  values_free(w);
  plan_free(p);
  model_free(m);
}

/* Whole-number and range checks: the fused function passes or fails
 * every run exactly as the interpretive path does (its checks leave out
 * the comparisons already proven and test wholeness by conversion, not
 * lm_floor). Non-whole B, token counts N = B x T that are not whole (1.5
 * x 3), a non-whole length, and B, S below 1 or far above a parameter's
 * bound: where the interpretive path fails the fused function returns -1
 * and plan_eval's error is the interpretive one; where it passes the
 * values are the same. The non-whole cases must fail (tiny Llama's
 * Linear N, heads x B and lengths are whole-number parameters). */
static void test_fused_checks_match_interpreted(void **state) {
  (void)state;
  Model *m = model_load("test/data/tiny_llama.json", reg, NULL);
  Plan *p = plan_build(m, ATTN_EAGER, NULL);
  plan_fuse(p);
  assert_non_null(p->fused);
  static const double cases[][4] = {/* B, S, T, L */
                                    {2.5, 4, 4, 4},   {1.5, 3, 3, 3},
                                    {2, 2.5, 2.5, 2.5}, {2, 4, 1, 2.5},
                                    {0.5, 4, 4, 4},   {3, 4, 4, 4},
                                    {1e9, 4096, 4096, 4096},
                                    {4294967296.0, 1, 1, 1}};
  int failed = 0;
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    double run[V_COUNT] = {[V_B] = cases[i][0], [V_S] = cases[i][1],
                           [V_T] = cases[i][2], [V_L] = cases[i][3],
                           [V_W_BYTES] = 2, [V_A_BYTES] = 2,
                           [V_KV_BYTES] = 2, [V_SRAM_BYTES] = 1024,
                           [V_E_BYTES] = 2, [V_DECODE] = cases[i][2] == 1};
    Values *v = values_new(p), *w = values_new(p);
    Error e1, e2;
    err_clear(&e1);
    err_clear(&e2);
    int rf = fused_eval(p->fused, run, v);
    int ri = plan_eval_interp(p, run, w, &e2);
    assert_int_equal(rf, ri);
    if (ri < 0) {
      assert_int_equal(plan_eval(p, run, v, &e1), -1);
      assert_string_equal(e1.msg, e2.msg);
      failed++;
    } else {
      for (int r = 0; r < p->nrows; r++)
        assert_memory_equal(v->row[r], w->row[r], sizeof(double) * M_TRAFFIC);
    }
    if (i < 5) /* the non-whole ones and B below 1 */
      assert_int_equal(ri, -1);
    values_free(v);
    values_free(w);
  }
  assert_true(failed >= 5);
  plan_free(p);
  model_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fused_equals_interpreted),
      cmocka_unit_test(test_fused_after_use),
      cmocka_unit_test(test_fused_failure_falls_back),
      cmocka_unit_test(test_fused_checks_match_interpreted),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
