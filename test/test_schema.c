/* test_schema.c: the JSON Schema subset, with error locations. */
#include "testutil.h"
#include "gen.h"

static const char *schema_text =
    "{\"type\": \"object\", \"required\": [\"a\"],"
    " \"additionalProperties\": false,"
    " \"properties\": {"
    "  \"a\": {\"type\": \"integer\", \"minimum\": 1},"
    "  \"b\": {\"enum\": [\"x\", \"y\"]},"
    "  \"c\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/$defs/s\"},"
    "         \"minItems\": 1, \"uniqueItems\": true},"
    "  \"d\": {\"type\": \"object\", \"propertyNames\": {\"pattern\": \"^[a-z]+$\"},"
    "         \"additionalProperties\": {\"type\": [\"string\", \"null\"]}},"
    "  \"e\": {\"const\": 1}"
    " },"
    " \"$defs\": {\"s\": {\"type\": \"string\", \"minLength\": 1,"
    "   \"pattern\": \"^[a-z_]+$\", \"maxLength\": 5}}}";

static int check(const char *inst_text, Error *e) {
  json_error_t je;
  json_t *schema = json_loads(schema_text, 0, &je);
  assert_non_null(schema);
  json_t *inst = json_loads(inst_text, JSON_DECODE_ANY, &je);
  assert_non_null(inst);
  err_clear(e);
  JsonDoc doc = {.file = "f.json", .text = inst_text, .len = strlen(inst_text)};
  int rc = schema_validate(schema, inst, &doc, e);
  json_decref(schema);
  json_decref(inst);
  return rc;
}

static void test_schema_accepts(void **state) {
  (void)state;
  Error e;
  assert_int_equal(check("{\"a\": 3}", &e), 0);
  assert_int_equal(check("{\"a\": 1, \"b\": \"y\", \"c\": [\"ab\", \"c_d\"],"
                         " \"d\": {\"k\": null, \"z\": \"s\"}, \"e\": 1}",
                         &e),
                   0);
  assert_int_equal(check("{\"a\": 2.0}", &e), 0); /* integral number */
}

static void test_schema_errors(void **state) {
  (void)state;
  struct {
    const char *inst, *msg, *where;
    int line, col;
  } cases[] = {
      {"{}", "missing required member 'a'", ".", 1, 1},
      {"{\"a\": \"3\"}", "expected integer, found string", ".a", 1, 7},
      {"{\"a\": 1.5}", "expected integer, found number", ".a", 1, 7},
      /* issue 9: 1e300 was converted to long long (undefined behaviour,
       * caught by the sanitizer build); integers are whole numbers of
       * magnitude at most 2^53, exactly representable */
      {"{\"a\": 1e300}", "expected integer, found number", ".a", 1, 7},
      {"{\"a\": -1e19}", "expected integer, found number", ".a", 1, 7},
      {"{\"a\": 0}", "must be >= 1", ".a", 1, 7},
      {"{\"a\": 1,\n \"bb\": 2}", "unknown member 'bb' (expected: a, b, c, d, e)",
       ".bb", 2, 8},
      {"{\"a\": 1, \"b\": \"z\"}", "value \"z\" is not one of: \"x\", \"y\"",
       ".b", 1, 15},
      {"{\"a\": 1, \"c\": []}", "needs at least 1 item, has 0", ".c", 1, 15},
      {"{\"a\": 1, \"c\": [\"ok\", \"\"]}", "must not be empty", ".c[1]", 1, 22},
      {"{\"a\": 1, \"c\": [\"A\"]}", "value \"A\" does not match ^[a-z_]+$",
       ".c[0]", 1, 16},
      {"{\"a\": 1, \"c\": [\"abcdef\"]}", "longer than 5 characters", ".c[0]",
       1, 16},
      {"{\"a\": 1, \"c\": [\"x\", \"x\"]}", "duplicate of item 0", ".c[1]", 1,
       21},
      {"{\"a\": 1, \"d\": {\"Q\": \"s\"}}", "invalid member name", ".d.Q", 1,
       21},
      {"{\"a\": 1, \"d\": {\"q\": 5}}", "expected string or null, found integer",
       ".d.q", 1, 21},
      {"{\"a\": 1, \"e\": 2}", "expected 1, found 2", ".e", 1, 15},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    Error e;
    assert_int_equal(check(cases[i].inst, &e), -1);
    assert_contains(e.msg, cases[i].msg);
    assert_string_equal(e.where, cases[i].where);
    assert_int_equal(e.line, cases[i].line);
    assert_int_equal(e.col, cases[i].col);
    assert_string_equal(e.file, "f.json");
  }
}

static void test_schema_rejects_unknown_keyword(void **state) {
  (void)state;
  json_t *schema = json_loads("{\"type\": \"object\", \"oneOf\": []}", 0, NULL);
  json_t *inst = json_loads("{}", 0, NULL);
  Error e;
  err_clear(&e);
  assert_int_equal(schema_validate(schema, inst, NULL, &e), -1);
  assert_contains(e.msg, "unsupported keyword 'oneOf'");
  json_decref(schema);
  json_decref(inst);
}

/* The real schema validates the committed database. */
static void test_schema_module_db_validates_repo_db(void **state) {
  (void)state;
  json_error_t je;
  json_t *db = json_load_file("module_db.json", JSON_REJECT_DUPLICATES, &je);
  assert_non_null(db);
  Error e;
  err_clear(&e);
  assert_int_equal(
      schema_validate(schema_module_db(), db,
                      &(JsonDoc){.file = "module_db.json"}, &e),
      0);
  json_decref(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_schema_accepts),
      cmocka_unit_test(test_schema_errors),
      cmocka_unit_test(test_schema_rejects_unknown_keyword),
      cmocka_unit_test(test_schema_module_db_validates_repo_db),
  };
  return cmocka_run_group_tests_name("schema", tests, NULL, NULL);
}
