/* test_jsonloc.c: finding values in raw JSON text, string offsets with
 * escapes, and path formatting. */
#include "testutil.h"

static const char *doc = "{\n"
                         "  \"a\": [1, {\"b\": \"x\\\"y\"}, [2, 3]],\n"
                         "  \"c.d\": {\"e\": null, \"f\": \"\\u00e9t\\u00e9 {N}\"},\n"
                         "  \"g\": true\n"
                         "}\n";

static long find(JsonPath *p) { return jloc_find(doc, strlen(doc), p); }

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
  long r = jloc_string_offset(doc, strlen(doc), (size_t)q, 6);
  assert_int_equal(doc[r], '{');
  assert_int_equal(r - q, 1 + 6 + 1 + 6 + 1);
  assert_int_equal(jloc_string_offset(doc, strlen(doc), (size_t)q, 0), q + 1);
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

/* The nearest existing ancestor of a missing member, and value ends. */
static void test_jsonloc_nearest_and_end(void **state) {
  (void)state;
  JsonPath p;
  jp_init(&p);
  jp_key(&p, "c.d");
  jp_key(&p, "zz");
  long cd = (long)(strstr(doc, "{\"e\"") - doc);
  assert_int_equal(jloc_find(doc, strlen(doc), &p), -1);
  assert_int_equal(jloc_find_nearest(doc, strlen(doc), &p), cd);
  jp_pop(&p);
  jp_key(&p, "e");
  long e = (long)(strstr(doc, "null") - doc);
  assert_int_equal(jloc_find_nearest(doc, strlen(doc), &p), e);
  assert_int_equal(jloc_value_end(doc, strlen(doc), (size_t)e), e + 4);
  long g = (long)(strstr(doc, "[2, 3]") - doc);
  assert_int_equal(jloc_value_end(doc, strlen(doc), (size_t)g), g + 6);
  assert_int_equal(jloc_value_end("[1, 2", 5, 0), -1);
  jp_init(&p);
  jp_key(&p, "x");
  assert_int_equal(jloc_find_nearest("[1]", 3, &p), 0); /* not an object */
}

/* Line and column of byte offsets, counted by hand in "ab\ncd\n\nx":
 * a=0 b=1 \n=2 c=3 d=4 \n=5 \n=6 x=7, then the NUL at 8. */
static void test_jsonloc_linecol(void **state) {
  (void)state;
  const char *t = "ab\ncd\n\nx";
  int line, col;
  text_linecol(t, 0, &line, &col); /* 'a' */
  assert_int_equal(line, 1);
  assert_int_equal(col, 1);
  text_linecol(t, 2, &line, &col); /* the first newline: still line 1 */
  assert_int_equal(line, 1);
  assert_int_equal(col, 3);
  text_linecol(t, 4, &line, &col); /* 'd' */
  assert_int_equal(line, 2);
  assert_int_equal(col, 2);
  text_linecol(t, 6, &line, &col); /* the empty line 3 */
  assert_int_equal(line, 3);
  assert_int_equal(col, 1);
  text_linecol(t, 7, &line, &col); /* 'x' */
  assert_int_equal(line, 4);
  assert_int_equal(col, 1);
  /* past the end: lines counted to the NUL, the column from the offset */
  text_linecol(t, 12, &line, &col);
  assert_int_equal(line, 4);
  assert_int_equal(col, 12 - 7 + 1);
}

/* jloc_index: the members of one object located once. Offsets are found
 * by hand in the text (strstr of unique substrings), and each lookup must
 * agree with a plain jloc_find, which scans from the start. */
static void test_jsonloc_index(void **state) {
  (void)state;
  /* "k" twice: the first one is the one located (as jloc_find does);
   * "bad" is malformed (an unterminated array), so a member after it is
   * not found, by either */
  const char *t = "{\"cfg\": {\"k\": {\"default\": 7}, \"m\": [1, 2],\n"
                  "  \"k\": {\"default\": 8}, \"z\": {\"null\": 9}},\n"
                  " \"other\": {\"k\": 5}}";
  const char *u = "{\"k\": [1, 2, \"bad\": 3, \"after\": 4}";
  size_t len = strlen(t);
  JsonPath pre;
  jp_init(&pre);
  jp_key(&pre, "cfg");
  JlocIndex x;
  jloc_index_init(&x, t, len, &pre);
  assert_int_equal(x.depth, 1);
  assert_int_equal(x.n, 4); /* k, m, k, z */
  JsonPath p = pre;
  jp_key(&p, "k");
  jp_key(&p, "default");
  long seven = (long)(strstr(t, "7}") - t);
  assert_int_equal(jloc_index_find(&x, &p), seven);
  assert_int_equal(jloc_find(t, len, &p), seven);
  p = pre;
  jp_key(&p, "m");
  jp_index(&p, 1);
  assert_int_equal(jloc_index_find(&x, &p), (long)(strstr(t, "2]") - t));
  p = pre;
  jp_key(&p, "z");
  jp_key(&p, "null");
  assert_int_equal(jloc_index_find(&x, &p), (long)(strstr(t, "9}") - t));
  p = pre;
  jp_key(&p, "absent");
  assert_int_equal(jloc_index_find(&x, &p), -1);
  p = pre;
  jp_key(&p, "z");
  jp_key(&p, "absent");
  assert_int_equal(jloc_index_find(&x, &p), -1);
  /* a path not under the prefix: a plain lookup, from the start */
  jp_init(&p);
  jp_key(&p, "other");
  jp_key(&p, "k");
  assert_int_equal(jloc_index_find(&x, &p), (long)(strstr(t, "5}") - t));
  jp_init(&p);
  assert_int_equal(jloc_index_find(&x, &p), 0);
  jloc_index_free(&x);
  /* the root object, its second member's value malformed */
  jp_init(&pre);
  jloc_index_init(&x, u, strlen(u), &pre);
  jp_init(&p);
  jp_key(&p, "k");
  assert_int_equal(jloc_index_find(&x, &p), 6); /* {"k": [ : offset 6 */
  assert_int_equal(jloc_find(u, strlen(u), &p), 6);
  jp_init(&p);
  jp_key(&p, "after");
  assert_int_equal(jloc_index_find(&x, &p), -1);
  assert_int_equal(jloc_find(u, strlen(u), &p), -1);
  jloc_index_free(&x);
  /* a prefix that is not an object: nothing indexed, plain lookups */
  jp_init(&pre);
  jp_key(&pre, "cfg");
  jp_key(&pre, "m");
  jloc_index_init(&x, t, len, &pre);
  assert_int_equal(x.depth, -1);
  p = pre;
  jp_index(&p, 0);
  assert_int_equal(jloc_index_find(&x, &p), (long)(strstr(t, "1, 2]") - t));
  jloc_index_free(&x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jsonloc_locate),
      cmocka_unit_test(test_jsonloc_string_offsets),
      cmocka_unit_test(test_jsonloc_format),
      cmocka_unit_test(test_jsonloc_nearest_and_end),
      cmocka_unit_test(test_jsonloc_linecol),
      cmocka_unit_test(test_jsonloc_index),
  };
  return cmocka_run_group_tests_name("jsonloc", tests, NULL, NULL);
}
