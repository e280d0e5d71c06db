/* test_buf.c: growable strings and allocators. */
#include "testutil.h"

static void test_buf_appends(void **state) {
  (void)state;
  Buf b;
  buf_init(&b);
  assert_string_equal(buf_str(&b), "");
  buf_puts(&b, "ab");
  buf_putc(&b, 'c');
  buf_printf(&b, "-%d-%s", 42, "x");
  assert_string_equal(buf_str(&b), "abc-42-x");
  assert_int_equal(b.len, 8);
  for (int i = 0; i < 10000; i++)
    buf_putc(&b, 'z');
  assert_int_equal(b.len, 10008);
  assert_int_equal(b.data[b.len], '\0');
  buf_reset(&b);
  assert_string_equal(buf_str(&b), "");
  buf_append(&b, "a\0b", 3);
  assert_int_equal(b.len, 3);
  char *s = buf_steal(&b);
  assert_memory_equal(s, "a\0b", 4);
  assert_null(b.data);
  free(s);
  s = buf_steal(&b);
  assert_string_equal(s, "");
  free(s);
  buf_free(&b);
}

static void test_buf_strdup(void **state) {
  (void)state;
  char *s = xstrndup("hello", 3);
  assert_string_equal(s, "hel");
  free(s);
}

static void test_buf_find_control(void **state) {
  (void)state;
  assert_int_equal(str_find_control("meta-llama/Llama-2", 18), -1);
  assert_int_equal(str_find_control("caf\xc3\xa9", 5), -1); /* e-acute */
  assert_int_equal(str_find_control("a\x1b[31m", 6), 1);
  assert_int_equal(str_find_control("ab\x7f", 3), 2);
  assert_int_equal(str_find_control("x\xc2\x9b", 3), 1); /* C1 CSI */
  assert_int_equal(str_find_control("a\0b", 3), 1);       /* embedded NUL */
  assert_int_equal(str_find_control("tab\there", 8), 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buf_appends),
      cmocka_unit_test(test_buf_strdup),
      cmocka_unit_test(test_buf_find_control),
  };
  return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
