/* test_jsondoc.c: JSON documents: loading (read, parse, located syntax
 * errors, the builder's ownership) and the located errors about a
 * document's values. Expected positions are counted by hand in the
 * documents below. */
#include "testutil.h"

static const char *doc =
    "{\n"
    "  \"a\": [1, {\"b\": \"x\\\"y\"}, [2, 3]],\n"
    "  \"c.d\": {\"e\": null, \"f\": \"\\u00e9t\\u00e9 {N}\"},\n"
    "  \"g\": true\n"
    "}\n";

static void test_jsondoc_errors(void **state) {
  (void)state;
  JsonPath p;
  jp_init(&p);
  jp_key(&p, "c.d");
  jp_key(&p, "f");
  Error e;
  err_clear(&e);
  const char *value = "\xc3\xa9t\xc3\xa9 {N}";
  JsonDoc d = {.file = "doc.json", .text = doc, .len = strlen(doc)};
  assert_int_equal(
      jdoc_error_string(&e, &d, &p, value, 6, 3, "unknown parameter '%s'", "N"),
      -1);
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
  JsonDoc notext = {.file = "doc.json"};
  jdoc_error_string(&e, &notext, &p, "2 * {N}", 4, 3, "bad");
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
  assert_int_equal(jdoc_error(&e, &d, &p, "missing"), -1);
  assert_int_equal(e.line, 3);
  assert_int_equal(e.col, 10);
  /* a second error does not replace the first */
  JsonDoc other = {.file = "other.json", .text = doc, .len = strlen(doc)};
  jdoc_error(&e, &other, &p, "second");
  assert_string_equal(e.msg, "missing");
}

/* A value error names the value: a scalar is underlined whole, an
 * object at its brace; no document means no position. */
static void test_jsondoc_value_spans(void **state) {
  (void)state;
  JsonDoc d = {.file = "doc.json", .text = doc, .len = strlen(doc)};
  JsonPath p;
  jp_init(&p);
  jp_key(&p, "g");
  Error e;
  err_clear(&e);
  jdoc_error(&e, &d, &p, "bad %s", "g");
  assert_string_equal(e.msg, "bad g");
  assert_string_equal(e.where, ".g");
  assert_int_equal(e.line, 4);
  assert_int_equal(e.col, 8);
  assert_int_equal(e.caret_len, 4); /* true */
  jp_init(&p);
  jp_key(&p, "c.d");
  err_clear(&e);
  jdoc_error(&e, &d, &p, "bad");
  assert_int_equal(e.line, 3);
  assert_int_equal(e.col, 10);
  assert_int_equal(e.caret_len, 1); /* the brace */
  err_clear(&e);
  jdoc_error(&e, NULL, &p, "bad");
  assert_string_equal(e.file, "");
  assert_int_equal(e.line, 0);
  jdoc_error(NULL, &d, &p, "no error to fill");
}

typedef struct Built {
  JsonDoc doc;
  json_t *root;
} Built;

/* A builder that keeps the document and the root. */
static void *build_keep(JsonDoc *d, json_t *root, const void *ctx, Error *err) {
  (void)err;
  assert_string_equal(ctx, "ctx");
  Built *b = xcalloc(1, sizeof(Built));
  b->doc = *d;
  memset(d, 0, sizeof(*d));
  b->root = json_incref(root);
  return b;
}

/* A builder that rejects the document with a located error, keeping
 * nothing (jdoc_load frees the document). */
static void *build_reject(JsonDoc *d, json_t *root, const void *ctx,
                          Error *err) {
  (void)root;
  (void)ctx;
  JsonPath p;
  jp_init(&p);
  jp_key(&p, "b");
  jdoc_error(err, d, &p, "b is wrong");
  return NULL;
}

static void built_free(Built *b) {
  jdoc_free(&b->doc);
  json_decref(b->root);
  free(b);
}

static void test_jsondoc_load(void **state) {
  (void)state;
  const char *text = "{\"a\": 1,\n \"b\": [true]}";
  Error e;
  err_clear(&e);
  Built *b = jdoc_load("t.json", text, strlen(text), build_keep, "ctx", &e);
  assert_non_null(b);
  assert_false(e.set);
  assert_string_equal(b->doc.file, "t.json");
  assert_string_equal(b->doc.text, text);
  assert_true(b->doc.text != text); /* a copy */
  assert_int_equal(b->doc.len, strlen(text));
  assert_int_equal(json_integer_value(json_object_get(b->root, "a")), 1);
  built_free(b);

  /* from a file */
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "f.json");
  tu_write(path, text);
  b = jdoc_load(path, NULL, 0, build_keep, "ctx", &e);
  assert_non_null(b);
  assert_string_equal(b->doc.text, text);
  built_free(b);

  /* the builder's error, located in the document */
  assert_null(jdoc_load(path, NULL, 0, build_reject, NULL, &e));
  assert_string_equal(e.msg, "b is wrong");
  assert_string_equal(e.file, path);
  assert_int_equal(e.line, 2);
  assert_int_equal(e.col, 7);

  /* a missing file */
  char *missing = path_join(dir, "none.json");
  err_clear(&e);
  assert_null(jdoc_load(missing, NULL, 0, build_keep, "ctx", &e));
  assert_string_equal(e.file, missing);
  assert_contains(e.msg, "cannot open");
  free(missing);
  free(path);
  tu_rm_rf(dir);
  free(dir);
}

/* Syntax errors are Jansson's, with the caret moved to the start of the
 * token Jansson names; duplicate keys are rejected. */
/* A document held with its length, not NUL-terminated (a fuzzer's input,
 * model_from_config's text): the error's context line stops at the end of
 * the document, never reads the bytes after it (found by make fuzz: "{}"
 * as a config.json, the "no model_type" error at the root). */
static void test_jsondoc_unterminated_text(void **state) {
  (void)state;
  /* the document is the first 2 bytes; the rest must never be shown */
  char *buf = malloc(2);
  assert_non_null(buf);
  memcpy(buf, "{}", 2);
  JsonDoc d = {.file = "c.json", .text = buf, .len = 2};
  JsonPath p;
  jp_init(&p);
  Error e;
  err_clear(&e);
  jdoc_error(&e, &d, &p, "no model_type");
  assert_int_equal(e.line, 1);
  assert_int_equal(e.col, 1);
  assert_string_equal(e.context, "{}");
  free(buf);

  /* a syntax error on the last line of an unterminated document */
  static const char text[] = "{\n  \"a\": tru}TRAILING";
  JsonDoc d2 = {.file = "c.json", .text = text, .len = strlen(text) - 8};
  err_clear(&e);
  assert_null(jdoc_parse(&d2, &e));
  assert_int_equal(e.line, 2);
  assert_string_equal(e.context, "  \"a\": tru}");

  /* err_context_n itself: cut at avail, at a newline, at a NUL */
  err_clear(&e);
  err_context_n(&e, "abcdef", 3, 1, 1, 1);
  assert_string_equal(e.context, "abc");
  err_clear(&e);
  err_context_n(&e, "ab\ncd", 6, 0, 1, 1);
  assert_string_equal(e.context, "ab");
}

/* The loaders' member checks: an unknown member and a string member that is
 * missing or empty, each located at the member (positions counted in the
 * text by hand, at the value: x's 1 is at 1:16, s's "" at 1:7). */
static void test_jsondoc_members(void **state) {
  (void)state;
  static const char text[] = "{\"s\": \"\", \"x\": 1}";
  JsonDoc d = {.file = "m.json", .text = text, .len = strlen(text)};
  Error e;
  err_clear(&e);
  json_t *o = jdoc_parse(&d, &e);
  assert_non_null(o);
  static const char *const keys[] = {"s"};
  JsonPath p;
  jp_init(&p);
  assert_int_equal(jdoc_only_members(&e, &d, &p, o, keys, 1), -1);
  assert_string_equal(e.msg, "unknown member 'x'");
  assert_int_equal(e.line, 1);
  assert_int_equal(e.col, 16);
  err_clear(&e);
  jp_init(&p);
  assert_null(jdoc_string_member(&e, &d, &p, o, "s"));
  assert_string_equal(e.msg, "s must be a non-empty string");
  assert_int_equal(e.col, 7);
  err_clear(&e);
  jp_init(&p);
  assert_null(jdoc_string_member(&e, &d, &p, o, "t"));
  assert_string_equal(e.msg, "missing member 't'");
  json_decref(o);
}

static void test_jsondoc_syntax_errors(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  const char *bad = "{\n  \"a\": tru\n}";
  assert_null(jdoc_load("s.json", bad, strlen(bad), build_keep, "ctx", &e));
  assert_string_equal(e.file, "s.json");
  assert_contains(e.msg, "invalid JSON: ");
  assert_contains(e.msg, "near 'tru'");
  assert_int_equal(e.line, 2);
  assert_int_equal(e.col, 8); /* the t of tru */
  assert_int_equal(e.caret_len, 3);
  assert_string_equal(e.context, "  \"a\": tru");

  err_clear(&e);
  const char *dup = "{\"a\": 1, \"a\": 2}";
  JsonDoc d = {.file = "d.json", .text = dup, .len = strlen(dup)};
  assert_null(jdoc_parse(&d, &e));
  assert_contains(e.msg, "duplicate object key");
  assert_int_equal(e.line, 1);

  /* no file: the message names none */
  err_clear(&e);
  JsonDoc anon = {.text = "[1,", .len = 3};
  assert_null(jdoc_parse(&anon, &e));
  assert_string_equal(e.file, "");
  assert_contains(e.msg, "invalid JSON: ");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jsondoc_errors),
      cmocka_unit_test(test_jsondoc_value_spans),
      cmocka_unit_test(test_jsondoc_load),
      cmocka_unit_test(test_jsondoc_syntax_errors),
      cmocka_unit_test(test_jsondoc_unterminated_text),
      cmocka_unit_test(test_jsondoc_members),
  };
  return cmocka_run_group_tests_name("jsondoc", tests, NULL, NULL);
}
