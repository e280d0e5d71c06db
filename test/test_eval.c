/* test_eval.c: interpreter semantics, shared with generated code through
 * modabi.h. Expected values are worked out by hand in the comments. */
#include "testutil.h"
#include "gen.h"
#include "modabi.h"

static double ev(const char *text, const double *args) {
  static const char *names[] = {"a", "b", "c"};
  Arena ar;
  arena_init(&ar);
  FormulaSrc src = {.text = text};
  Error e;
  err_clear(&e);
  Node *n = parse_formula(&ar, &src, &e);
  assert_non_null(n);
  Scope sc = {.names = names, .nnames = 3, .what = "parameter"};
  assert_int_equal(check_formula(n, &src, &sc, &e), 0);
  double v = node_eval(n, args, M_FLOPS);
  arena_free(&ar);
  return v;
}

static void test_eval_arithmetic(void **state) {
  (void)state;
  double args[] = {7, 2, 4096};
  assert_double_exact(ev("1 + 2 * 3", args), 7);
  assert_double_exact(ev("{a} / {b}", args), 3.5);
  assert_double_exact(ev("{a} // {b}", args), 3);
  assert_double_exact(ev("-{a} // {b}", args), -4);   /* floor, not trunc */
  assert_double_exact(ev("{a} // -{b}", args), -4);
  assert_double_exact(ev("-{a} // -{b}", args), 3);
  assert_double_exact(ev("7.5 // 2", args), 3);
  assert_double_exact(ev("-7.5 // 2", args), -4);
  assert_double_exact(ev("ceil({a} / {b})", args), 4);
  assert_double_exact(ev("floor(-0.5)", args), -1);
  assert_double_exact(ev("ceil(-0.5)", args), 0);
  assert_double_exact(ev("min(3, {a}, 1, 9)", args), 1);
  assert_double_exact(ev("max(3, {a}, 1, 9)", args), 9);
  assert_double_exact(ev("{c} // 32", args), 128);      /* head_dim */
  assert_double_exact(ev("2 * 2048 * {c} * {c}", args), 68719476736.0);
}

/* Integers below 2^53 stay exact, including floor division whose double
 * quotient would round up to the next integer. */
static void test_eval_exact_integers(void **state) {
  (void)state;
  double args[] = {9007199254740991.0, 9007199254740992.0, 3};
  /* (2^53 - 1) // 2^53 = 0, though (2^53-1)/2^53 rounds to 1.0 - 2^-53 */
  assert_double_exact(ev("{a} // {b}", args), 0);
  /* 2^53 - 1 = 3 * 3002399751580330 + 1 */
  assert_double_exact(ev("{a} // {c}", args), 3002399751580330.0);
  /* 9007199254740989 = 2^53 - 3 is odd: // 2 = 4503599627370494 */
  double odd[] = {9007199254740989.0, 2, 0};
  assert_double_exact(ev("{a} // {b}", odd), 4503599627370494.0);
  assert_double_exact(lm_floor(4503599627370495.5), 4503599627370495.0);
  assert_double_exact(lm_ceil(4503599627370495.5), 4503599627370496.0);
}

/* pow: whole exponents by square-and-multiply. The expected-experts term
 * (1 - k/E)^N: Mixtral (E = 8, k = 2), N = 3: (3/4)^3 = 27/64 exactly. */
static void test_eval_pow(void **state) {
  (void)state;
  double args[] = {0.75, 3, 10};
  assert_double_exact(ev("pow({a}, {b})", args), 27.0 / 64.0);
  assert_double_exact(ev("pow(2, {c})", args), 1024);
  assert_double_exact(ev("pow(2, -{c})", args), 1.0 / 1024);
  assert_double_exact(ev("pow({c}, 0)", args), 1);
  assert_double_exact(ev("pow(0, 0)", args), 1);
  assert_double_exact(ev("pow(-2, {b})", args), -8);
  /* 3^33 = 5559060566555523 < 2^53: exact */
  assert_double_exact(ev("pow({b}, 33)", args), 5559060566555523.0);
  /* 1 - (1 - 1/2)^60 = 1 - 2^-60 rounds to 1 in double */
  assert_double_exact(ev("8 * (1 - pow(1 - 2 / 4, 60))", args), 8);
  /* a fractional or non-finite exponent is NaN (reported by the runtime) */
  assert_true(isnan(ev("pow(2, {a})", args)));
  double inf[] = {INFINITY, NAN, 2};
  assert_true(isnan(ev("pow(2, {a})", inf)));
  assert_true(isnan(ev("pow(2, {b})", inf)));
  assert_true(isnan(ev("pow({b}, {c})", inf)));
  assert_true(isinf(ev("pow({a}, {c})", inf)));
}

static void test_eval_nan_and_inf_propagate(void **state) {
  (void)state;
  double args[] = {1, 0, NAN};
  assert_true(isinf(ev("{a} / {b}", args)));
  assert_true(isinf(ev("{a} // {b}", args)));
  assert_true(isnan(ev("min({c}, 1)", args)));
  assert_true(isnan(ev("max(1, {c})", args)));
  assert_true(isnan(ev("floor({c})", args)));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_eval_arithmetic),
      cmocka_unit_test(test_eval_exact_integers),
      cmocka_unit_test(test_eval_pow),
      cmocka_unit_test(test_eval_nan_and_inf_propagate),
  };
  return cmocka_run_group_tests_name("eval", tests, NULL, NULL);
}
