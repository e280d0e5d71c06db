/* test_tokenize.c: tokens, their spans, and tokenizer errors. */
#include "testutil.h"
#include "gen.h"

static Token *lex(Arena *a, const char *text, Error *e) {
  FormulaSrc src = {.text = text};
  err_clear(e);
  return tokenize(a, &src, e);
}

static void test_tokenize_kinds_and_spans(void **state) {
  (void)state;
  Arena a;
  arena_init(&a);
  Error e;
  const char *f = "2 * {N} // ${torch.nn.Linear}(1.5e3, .5) - min(3,4)";
  Token *t = lex(&a, f, &e);
  assert_non_null(t);
  struct {
    TokenKind kind;
    int off, len;
    const char *name;
  } want[] = {
      {TK_NUM, 0, 1, NULL},     {TK_PUNCT, 2, 1, NULL},
      {TK_PARAM, 4, 3, "N"},    {TK_PUNCT, 8, 2, NULL},
      {TK_MODREF, 11, 18, "torch.nn.Linear"},
      {TK_PUNCT, 29, 1, NULL},  {TK_NUM, 30, 5, NULL},
      {TK_PUNCT, 35, 1, NULL},  {TK_NUM, 37, 2, NULL},
      {TK_PUNCT, 39, 1, NULL},  {TK_PUNCT, 41, 1, NULL},
      {TK_IDENT, 43, 3, "min"}, {TK_PUNCT, 46, 1, NULL},
      {TK_NUM, 47, 1, NULL},    {TK_PUNCT, 48, 1, NULL},
      {TK_NUM, 49, 1, NULL},    {TK_PUNCT, 50, 1, NULL},
      {TK_EOF, 51, 1, NULL},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(want); i++, t = t->next) {
    assert_non_null(t);
    assert_int_equal(t->kind, want[i].kind);
    assert_int_equal(t->off, want[i].off);
    assert_int_equal(t->len, want[i].len);
    if (want[i].name)
      assert_string_equal(t->name, want[i].name);
  }
  assert_null(t);
  arena_free(&a);
}

static void test_tokenize_numbers(void **state) {
  (void)state;
  Arena a;
  arena_init(&a);
  Error e;
  struct {
    const char *text;
    double val;
  } cases[] = {{"0", 0},          {"42", 42},       {"1.5", 1.5},
               {"1.", 1},         {".25", 0.25},    {"1e3", 1000},
               {"2.5E-2", 0.025}, {"6e+1", 60},
               {"9007199254740993", 9007199254740992.0}};
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    Token *t = lex(&a, cases[i].text, &e);
    assert_non_null(t);
    assert_int_equal(t->kind, TK_NUM);
    assert_double_exact(t->val, cases[i].val);
    assert_int_equal(t->next->kind, TK_EOF);
  }
  arena_free(&a);
}

static void test_tokenize_errors(void **state) {
  (void)state;
  Arena a;
  arena_init(&a);
  struct {
    const char *text;
    const char *msg;
    int col, len;
  } cases[] = {
      {"1); system(\"x\"); (1", "unexpected character ';'", 3, 1},
      {"{N} # 2", "unexpected character '#'", 5, 1},
      {"2 * {N", "unterminated parameter reference", 5, 2},
      {"{}", "empty parameter name", 1, 2},
      {"{1a} + 1", "invalid parameter name", 1, 4},
      {"{a b}", "invalid parameter name", 1, 5},
      {"${torch..x}(1)", "invalid module name", 1, 11},
      {"${}", "empty module name", 1, 3},
      {"1e", "malformed number", 1, 2},
      {"2x", "malformed number", 1, 2},
      {"1.2.3", "malformed number", 1, 5},
      {"1e999", "number out of range", 1, 5},
      {"3 $ 4", "unexpected character '$'", 3, 1},
      {"a\n", "unexpected byte 0x0a", 2, 1},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    Error e;
    Token *t = lex(&a, cases[i].text, &e);
    assert_null(t);
    assert_true(e.set);
    assert_contains(e.msg, cases[i].msg);
    assert_int_equal(e.caret_col, cases[i].col);
    assert_int_equal(e.caret_len, cases[i].len);
  }
  arena_free(&a);
}

static void test_tokenize_error_prints_caret(void **state) {
  (void)state;
  Arena a;
  arena_init(&a);
  Error e;
  assert_null(lex(&a, "{N} * {M} ; 1", &e));
  char *s = tu_err_text(&e);
  assert_string_equal(s, "error: unexpected character ';'\n"
                         "    {N} * {M} ; 1\n"
                         "              ^\n");
  free(s);
  arena_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tokenize_kinds_and_spans),
      cmocka_unit_test(test_tokenize_numbers),
      cmocka_unit_test(test_tokenize_errors),
      cmocka_unit_test(test_tokenize_error_prints_caret),
  };
  return cmocka_run_group_tests_name("tokenize", tests, NULL, NULL);
}
