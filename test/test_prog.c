/* test_prog.c: template compilation, constant folding and evaluation. */
#include "testutil.h"
#include "runtime.h"

/* variables: B, T (run) and hidden, heads (config: 4096, 32) */
static const char *names[] = {"B", "T", "hidden", "heads"};
static const double values[] = {0, 0, 4096, 32};
static const bool known[] = {false, false, true, true};

static Prog compile(Arena *a, const char *text) {
  FormulaSrc src = {.text = text};
  Error e;
  err_clear(&e);
  Node *n = parse_formula(a, &src, &e);
  assert_non_null(n);
  Scope sc = {.names = names, .nnames = 4, .what = "variable"};
  assert_int_equal(check_formula(n, &src, &sc, &e), 0);
  Prog p;
  assert_int_equal(prog_compile(a, n, values, known, &p, &e), 0);
  return p;
}

static void test_prog_folds_config(void **state) {
  (void)state;
  Arena a;
  arena_init(&a);
  double v;
  Prog p = compile(&a, "{hidden} // {heads}");
  assert_true(prog_const(&p, &v));
  assert_double_exact(v, 128);
  p = compile(&a, "{B} * {T} * ({hidden} // {heads})");
  assert_false(prog_const(&p, NULL));
  assert_int_equal(p.len, 5); /* B T * 128 * */
  double vars[] = {3, 7, 4096, 32};
  assert_double_exact(prog_eval(&p, vars), 3 * 7 * 128);
  p = compile(&a, "12.5");
  assert_true(prog_const(&p, &v));
  assert_double_exact(v, 12.5);
  arena_free(&a);
}

static void test_prog_eval_matches_interpreter(void **state) {
  (void)state;
  const char *cases[] = {
      "{B} + {T} * 2 - 1",          "-{B} // {T}",
      "min({B}, {T}, {heads}) * 2", "max({B} / {T}, 0.5)",
      "ceil({T} / 3) + floor({B} / 4) - {hidden} // 7",
      "{B} * ({T} - ({B} - {T}))",
      "{heads} * (1 - pow(1 - {T} / {heads}, {B} * {T}))",
  };
  double vars[] = {9, 4, 4096, 32};
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    Arena a;
    arena_init(&a);
    Prog p = compile(&a, cases[i]);
    FormulaSrc src = {.text = cases[i]};
    Node *n = parse_formula(&a, &src, NULL);
    Scope sc = {.names = names, .nnames = 4, .what = "variable"};
    check_formula(n, &src, &sc, NULL);
    double want = node_eval(n, vars, M_FLOPS), got = prog_eval(&p, vars);
    assert_memory_equal(&want, &got, sizeof(double));
    arena_free(&a);
  }
}

static void test_prog_depth_limit(void **state) {
  (void)state;
  Buf b;
  buf_init(&b);
  for (int i = 0; i < 70; i++)
    buf_puts(&b, "{B} + (");
  buf_puts(&b, "{T}");
  for (int i = 0; i < 70; i++)
    buf_putc(&b, ')');
  Arena a;
  arena_init(&a);
  FormulaSrc src = {.text = buf_str(&b)};
  Node *n = parse_formula(&a, &src, NULL);
  assert_non_null(n);
  Scope sc = {.names = names, .nnames = 4, .what = "variable"};
  assert_int_equal(check_formula(n, &src, &sc, NULL), 0);
  Prog p;
  Error e;
  err_clear(&e);
  assert_int_equal(prog_compile(&a, n, values, known, &p, &e), -1);
  assert_contains(e.msg, "template too complex");
  arena_free(&a);
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_prog_folds_config),
      cmocka_unit_test(test_prog_eval_matches_interpreter),
      cmocka_unit_test(test_prog_depth_limit),
  };
  return cmocka_run_group_tests_name("prog", tests, NULL, NULL);
}
