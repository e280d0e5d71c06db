/* test_jsonloc.c: finding values in raw JSON text, string offsets with
 * escapes, and path formatting. */
#include "testutil.h"

static const char *doc = "{\n"
                         "  \"a\": [1, {\"b\": \"x\\\"y\"}, [2, 3]],\n"
                         "  \"c.d\": {\"e\": null, \"f\": \"\\u00e9t\\u00e9 {N}\"},\n"
                         "  \"g\": true\n"
                         "}\n";

static long find(JsonPath *p) { return json_locate(doc, strlen(doc), p); }

static void test_jsonloc_locate(void **state) {
  (void)state;
  JsonPath p;
  jp_init(&p);
  assert_int_equal(find(&p), 0);
  jp_key(&p, "a");
  long a = find(&p);
  assert_int_equal(doc[a], '[');
  jp_index(&p, 1);
  jp_key(&p, "b");
  long b = find(&p);
  assert_memory_equal(doc + b, "\"x\\\"y\"", 6);
  jp_init(&p);
  jp_key(&p, "a");
  jp_index(&p, 2);
  jp_index(&p, 1);
  assert_int_equal(doc[find(&p)], '3');
  jp_init(&p);
  jp_key(&p, "g");
  assert_memory_equal(doc + find(&p), "true", 4);
  jp_init(&p);
  jp_key(&p, "missing");
  assert_int_equal(find(&p), -1);
  jp_init(&p);
  jp_key(&p, "a");
  jp_index(&p, 3);
  assert_int_equal(find(&p), -1);
  int line, col;
  jp_init(&p);
  jp_key(&p, "c.d");
  jp_key(&p, "e");
  text_linecol(doc, (size_t)find(&p), &line, &col);
  assert_int_equal(line, 3);
  assert_int_equal(col, 16);
}

/* "\u00e9t\u00e9 {N}" decodes to é (2 bytes) t é (2) ' ' '{N}': the
 * decoded offset of '{' is 6; its raw offset skips two 6-byte escapes. */
static void test_jsonloc_string_offsets(void **state) {
  (void)state;
  JsonPath p;
  jp_init(&p);
  jp_key(&p, "c.d");
  jp_key(&p, "f");
  long q = find(&p);
  long r = json_string_raw_offset(doc, strlen(doc), (size_t)q, 6);
  assert_int_equal(doc[r], '{');
  assert_int_equal(r - q, 1 + 6 + 1 + 6 + 1);
  assert_int_equal(json_string_raw_offset(doc, strlen(doc), (size_t)q, 0), q + 1);
}

static void test_jsonloc_format(void **state) {
  (void)state;
  JsonPath p;
  char buf[256];
  jp_init(&p);
  jp_format(&p, buf, sizeof(buf));
  assert_string_equal(buf, ".");
  jp_key(&p, "modules");
  jp_key(&p, "torch.nn.Linear");
  jp_key(&p, "atomic_ops");
  jp_index(&p, 2);
  jp_key(&p, "a\"b");
  jp_format(&p, buf, sizeof(buf));
  assert_string_equal(buf, ".modules[\"torch.nn.Linear\"].atomic_ops[2][\"a\\\"b\"]");
}

static void test_jsonloc_errors(void **state) {
  (void)state;
  JsonPath p;
  jp_init(&p);
  jp_key(&p, "c.d");
  jp_key(&p, "f");
  Error e;
  err_clear(&e);
  const char *value = "\xc3\xa9t\xc3\xa9 {N}";
  err_json_string(&e, "doc.json", doc, strlen(doc), &p, value, 6, 3,
                  "unknown parameter '%s'", "N");
  assert_int_equal(e.line, 3);
  assert_int_equal(e.col, 42);
  assert_int_equal(e.caret_len, 3);
  char *s = tu_err_text(&e);
  assert_string_equal(
      s, "doc.json:3:42: [\"c.d\"].f: error: unknown parameter 'N'\n"
         "     3 |   \"c.d\": {\"e\": null, \"f\": \"\\u00e9t\\u00e9 {N}\"},\n"
         "       |                                          ^~~\n");
  free(s);

  /* no raw text: the caret goes under the formula itself */
  err_clear(&e);
  err_json_string(&e, "doc.json", NULL, 0, &p, "2 * {N}", 4, 3, "bad");
  s = tu_err_text(&e);
  assert_string_equal(s, "doc.json: [\"c.d\"].f:1:5: error: bad\n"
                         "    2 * {N}\n"
                         "        ^~~\n");
  free(s);

  /* a missing member points at its closest existing parent */
  jp_init(&p);
  jp_key(&p, "c.d");
  jp_key(&p, "zz");
  err_clear(&e);
  err_json_value(&e, "doc.json", doc, strlen(doc), &p, "missing");
  assert_int_equal(e.line, 3);
  assert_int_equal(e.col, 10);
  /* a second error does not replace the first */
  err_json_value(&e, "other.json", doc, strlen(doc), &p, "second");
  assert_string_equal(e.msg, "missing");
}

/* Errors about text of a given length read nothing past it, even when the
 * text is not NUL-terminated (a loader given part of a buffer). */
static void test_jsonloc_bounded_text(void **state) {
  (void)state;
  const char buf[] = "{\"a\": [1, 2]}XXXX\n";
  size_t len = strlen("{\"a\": [1, 2]}");
  JsonPath p;
  jp_init(&p);
  jp_key(&p, "a");
  Error e;
  err_clear(&e);
  err_json_value(&e, "doc.json", buf, len, &p, "bad");
  assert_int_equal(e.col, 7);
  assert_string_equal(e.context, "{\"a\": [1, 2]}");
  err_clear(&e);
  err_json_syntax(&e, "doc.json", buf, len, "end of file expected near 'X'",
                  1, 15);
  assert_not_contains(e.context, "X");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jsonloc_locate),
      cmocka_unit_test(test_jsonloc_string_offsets),
      cmocka_unit_test(test_jsonloc_format),
      cmocka_unit_test(test_jsonloc_errors),
      cmocka_unit_test(test_jsonloc_bounded_text),
  };
  return cmocka_run_group_tests_name("jsonloc", tests, NULL, NULL);
}
