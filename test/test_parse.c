/* test_parse.c: formula shapes (as s-expressions) and parse errors. */
#include "testutil.h"
#include "gen.h"

static char *sexpr_of(const char *text) {
  Arena a;
  arena_init(&a);
  FormulaSrc src = {.text = text};
  Error e;
  err_clear(&e);
  Node *n = parse_formula(&a, &src, &e);
  if (!n) {
    print_error("parse failed: %s\n", e.msg);
    arena_free(&a);
    return NULL;
  }
  Buf b;
  buf_init(&b);
  node_sexpr(n, &b);
  arena_free(&a);
  return buf_steal(&b);
}

static void test_parse_shapes(void **state) {
  (void)state;
  struct {
    const char *in, *out;
  } cases[] = {
      {"1", "1.0"},
      {"{a}", "{a}"},
      {"1 + 2 * 3", "(+ 1.0 (* 2.0 3.0))"},
      {"(1 + 2) * 3", "(* (+ 1.0 2.0) 3.0)"},
      {"1 - 2 - 3", "(- (- 1.0 2.0) 3.0)"},
      {"8 / 4 / 2", "(/ (/ 8.0 4.0) 2.0)"},
      {"{a} // {b} * {c}", "(* (// {a} {b}) {c})"},
      {"-{a} + +{b}", "(+ (neg {a}) {b})"},
      {"--2", "(neg (neg 2.0))"},
      {"2 * -3", "(* 2.0 (neg 3.0))"},
      {"min({a}, 2, {b})", "(min {a} 2.0 {b})"},
      {"max(1,2)", "(max 1.0 2.0)"},
      {"ceil({T} / 64) * 64", "(* (ceil (/ {T} 64.0)) 64.0)"},
      {"floor(0.5)", "(floor 0.5)"},
      {"${a.B}({x} * 2, 3)", "(${a.B} (* {x} 2.0) 3.0)"},
      {"${a.B}()", "(${a.B})"},
      {"1e-5 + 2.5e3", "(+ 1e-05 2500.0)"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char *s = sexpr_of(cases[i].in);
    assert_non_null(s);
    assert_string_equal(s, cases[i].out);
    free(s);
  }
}

static void test_parse_errors(void **state) {
  (void)state;
  struct {
    const char *in, *msg;
    int col;
  } cases[] = {
      {"", "empty formula", 1},
      {"   ", "empty formula", 4},
      {"1 +", "expected a number, {parameter}, ${module}(...), function or "
              "'(', found end of formula", 4},
      {"(1 + 2", "expected ')', found end of formula", 7},
      {"1 + 2)", "unmatched ')'", 6},
      {"{a} {b}", "expected an operator or end of formula, found parameter", 5},
      {"2 * * 3", "found '*'", 5},
      {"foo(1)", "unknown function 'foo' (known: min, max, ceil, floor)", 1},
      {"N * 2", "unknown name 'N': write parameters as {N}", 1},
      {"min(1)", "min() takes at least 2 arguments, given 1", 1},
      {"ceil(1, 2)", "ceil() takes 1 argument, given 2", 1},
      {"${a.B}", "expected '(' after the name, found end of formula", 7},
      {"${a.B}(1,)", "found ')'", 10},
      {"max(1 2)", "expected ',' or ')', found number", 7},
      {"1 / / 2", "found '/'", 5},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    Arena a;
    arena_init(&a);
    FormulaSrc src = {.text = cases[i].in};
    Error e;
    err_clear(&e);
    assert_null(parse_formula(&a, &src, &e));
    assert_true(e.set);
    assert_contains(e.msg, cases[i].msg);
    assert_int_equal(e.caret_col, cases[i].col);
    arena_free(&a);
  }
}

static void test_parse_depth_limit(void **state) {
  (void)state;
  Buf b;
  buf_init(&b);
  for (int i = 0; i < 500; i++)
    buf_putc(&b, '(');
  buf_putc(&b, '1');
  for (int i = 0; i < 500; i++)
    buf_putc(&b, ')');
  Arena a;
  arena_init(&a);
  FormulaSrc src = {.text = buf_str(&b)};
  Error e;
  err_clear(&e);
  assert_null(parse_formula(&a, &src, &e));
  assert_contains(e.msg, "nested too deeply");
  arena_free(&a);
  buf_free(&b);
}

/* A flat chain is as tall as it is long: 60,000 terms are refused (issue
 * 9: they overflowed the stack of the recursive walks after parsing), and
 * so are 257 (256 '+', leaves at level 257); 256 terms are accepted. */
static Node *chain(Arena *a, Buf *b, int terms, Error *e) {
  buf_reset(b);
  for (int i = 0; i < terms; i++)
    buf_puts(b, i ? "+{B}" : "{B}");
  FormulaSrc src = {.text = buf_str(b)};
  err_clear(e);
  return parse_formula(a, &src, e);
}

static void test_parse_flat_chain_limit(void **state) {
  (void)state;
  Arena a;
  arena_init(&a);
  Buf b;
  buf_init(&b);
  Error e;
  assert_null(chain(&a, &b, 60000, &e));
  assert_contains(e.msg, "nested too deeply: more than 256 levels");
  assert_null(chain(&a, &b, 257, &e));
  assert_contains(e.msg, "nested too deeply");
  assert_non_null(chain(&a, &b, 256, &e));
  arena_free(&a);
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_shapes),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_parse_depth_limit),
      cmocka_unit_test(test_parse_flat_chain_limit),
  };
  return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
