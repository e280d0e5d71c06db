/* test_error.c: first error wins; printing with and without context. */
#include "testutil.h"

static void test_error_first_wins(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  err_set(&e, "first %d", 1);
  err_set(&e, "second");
  err_file(&e, "f", "third");
  assert_string_equal(e.msg, "first 1");
  assert_string_equal(e.file, "");
  err_prefix(&e, "in layer %s: ", "x");
  assert_string_equal(e.msg, "in layer x: first 1");
  err_set(NULL, "no crash");
}

static void test_error_print_forms(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  err_file(&e, "m.json", "bad thing");
  char *s = tu_err_text(&e);
  assert_string_equal(s, "m.json: error: bad thing\n");
  free(s);

  err_clear(&e);
  err_set(&e, "oops");
  e.line = 12;
  e.col = 5;
  snprintf(e.file, sizeof(e.file), "a.json");
  snprintf(e.where, sizeof(e.where), ".x");
  err_context(&e, "    \"x\": 1,\nnext line", 9, 1, 12);
  s = tu_err_text(&e);
  assert_string_equal(s, "a.json:12:5: .x: error: oops\n"
                         "    12 |     \"x\": 1,\n"
                         "       |          ^\n");
  free(s);

  /* a caret span longer than the line is clipped */
  err_clear(&e);
  err_set(&e, "x");
  err_context(&e, "ab", 1, 40, 0);
  s = tu_err_text(&e);
  assert_string_equal(s, "error: x\n    ab\n     ^\n");
  free(s);
  err_print(stderr, NULL); /* no-op */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_first_wins),
      cmocka_unit_test(test_error_print_forms),
  };
  return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
