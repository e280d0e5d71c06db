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

/* buf_printf formats into the room left, and again into more room when
 * that was too little: pieces of every length from 0 to 199 characters
 * land exactly at, just before and past each capacity (64, 128, ...),
 * and the text is the pieces in order. The expected text is built
 * independently, piece by piece with memset. */
static void test_buf_printf_room(void **state) {
  (void)state;
  Buf b;
  buf_init(&b);
  static char want[20000 + 1];
  size_t wl = 0;
  char piece[200];
  for (int n = 0; n < 200; n++) {
    memset(piece, 'a' + n % 26, (size_t)n);
    piece[n] = '\0';
    buf_printf(&b, "%s", piece);
    memcpy(want + wl, piece, (size_t)n);
    wl += (size_t)n;
    want[wl] = '\0';
    assert_int_equal(b.len, wl);
    assert_true(b.len < b.cap);
    assert_int_equal(b.data[b.len], '\0');
  }
  assert_string_equal(buf_str(&b), want);
  /* a piece of exactly the room left less one fits; of exactly the room
   * left, it does not (the NUL): both end whole */
  buf_free(&b);
  buf_putc(&b, 'z'); /* 64 bytes, 1 used: room for 62 and the NUL */
  size_t room = b.cap - b.len;
  assert_true(room < sizeof(piece));
  memset(piece, 'x', room - 1);
  piece[room - 1] = '\0';
  size_t cap0 = b.cap;
  buf_printf(&b, "%s", piece);
  assert_int_equal(b.cap, cap0);
  assert_int_equal(b.len, cap0 - 1);
  assert_int_equal(strspn(buf_str(&b) + 1, "x"), cap0 - 2);
  buf_free(&b);
  buf_putc(&b, 'z');
  cap0 = b.cap;
  memset(piece, 'y', 199);
  piece[199] = '\0';
  buf_printf(&b, "%.*s", (int)(cap0 - 1), piece); /* one too many */
  assert_true(b.cap > cap0);
  assert_int_equal(b.len, cap0);
  assert_int_equal(b.data[b.len], '\0');
  assert_int_equal(strspn(buf_str(&b) + 1, "y"), cap0 - 1);
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

static void test_str_put(void **state) {
  (void)state;
  /* room for 7 characters and the NUL: "abc" fits (at 3), "defghij" is
   * cut to its first 4 (at 7, out[7] left for the NUL), and anything
   * after adds nothing, as snprintf(out, 8, "abcdefghij") gives "abcdefg" */
  char out[8];
  size_t at = 0;
  str_put(out, sizeof(out), &at, "abc");
  assert_int_equal(at, 3);
  str_put(out, sizeof(out), &at, "defghij");
  assert_int_equal(at, 7);
  str_put(out, sizeof(out), &at, "x");
  assert_int_equal(at, 7);
  out[at] = '\0';
  assert_string_equal(out, "abcdefg");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buf_appends),
      cmocka_unit_test(test_buf_printf_room),
      cmocka_unit_test(test_buf_strdup),
      cmocka_unit_test(test_buf_find_control),
      cmocka_unit_test(test_str_put),
  };
  return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
