/* test_jsonparse.c: the fast JSON path (common/jsonparse.c) against
 * Jansson. What it accepts must be exactly Jansson's tree (types, values
 * bit for bit, strings byte for byte, members in the same order); what
 * Jansson rejects it must leave to Jansson (NULL); the documents lmrun
 * reads every run (templates, configs, engines, calibration) must take the
 * fast path, or it saves nothing. */
#include "testutil.h"

#include <glob.h>

/* Same tree, stricter than json_equal: member order, integer against real,
 * the bits of a real (-0.0 is not 0.0). */
static bool same_tree(json_t *a, json_t *b) {
  if (json_typeof(a) != json_typeof(b))
    return false;
  switch (json_typeof(a)) {
  case JSON_OBJECT: {
    if (json_object_size(a) != json_object_size(b))
      return false;
    void *ia = json_object_iter(a), *ib = json_object_iter(b);
    for (; ia && ib;
         ia = json_object_iter_next(a, ia), ib = json_object_iter_next(b, ib)) {
      size_t la = json_object_iter_key_len(ia), lb = json_object_iter_key_len(ib);
      if (la != lb ||
          memcmp(json_object_iter_key(ia), json_object_iter_key(ib), la) != 0 ||
          !same_tree(json_object_iter_value(ia), json_object_iter_value(ib)))
        return false;
    }
    return !ia && !ib;
  }
  case JSON_ARRAY:
    if (json_array_size(a) != json_array_size(b))
      return false;
    for (size_t i = 0; i < json_array_size(a); i++)
      if (!same_tree(json_array_get(a, i), json_array_get(b, i)))
        return false;
    return true;
  case JSON_STRING:
    return json_string_length(a) == json_string_length(b) &&
           memcmp(json_string_value(a), json_string_value(b),
                  json_string_length(a)) == 0;
  case JSON_INTEGER:
    return json_integer_value(a) == json_integer_value(b);
  case JSON_REAL: {
    double x = json_real_value(a), y = json_real_value(b);
    return memcmp(&x, &y, sizeof(x)) == 0;
  }
  default:
    return true;
  }
}

/* One text through both: returns whether the fast path accepted it; fails
 * the test if it accepted what Jansson rejects or built another tree. */
static bool check_text(const char *text, size_t len) {
  json_t *fast = json_fast_parse(text, len);
  json_t *ref = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  if (fast && !ref)
    fail_msg("fast path accepted what Jansson rejects: %.*s", (int)len, text);
  if (fast && !same_tree(fast, ref))
    fail_msg("fast path built another tree: %.*s", (int)len, text);
  /* jdoc_loadb: Jansson's answer either way */
  json_t *both = jdoc_loadb(text, len);
  assert_int_equal(!both, !ref);
  if (both)
    assert_true(same_tree(both, ref));
  json_decref(both);
  bool took = fast != NULL;
  json_decref(fast);
  json_decref(ref);
  return took;
}

static bool check(const char *text) { return check_text(text, strlen(text)); }

/* Values read by hand from the documents. */
static void test_jsonparse_values(void **state) {
  (void)state;
  const char *t = " {\"b\": 1, \"a\": [-0, 0.5, -2e3, 1E+2, 12.25e-1, true, "
                  "false, null, \"\"], \"c\": {\"x\\\"y\": \"tab\\there\\\\"
                  "\\/\\b\\f\\n\\r\"}, \"d\": 9223372036854775807, "
                  "\"e\": -9223372036854775808, \"f\": {}, \"g\": []}\r\n";
  json_t *j = json_fast_parse(t, strlen(t));
  assert_non_null(j);
  /* members in the text's order: b, a, c, d, e, f, g */
  const char *order[] = {"b", "a", "c", "d", "e", "f", "g"};
  int i = 0;
  for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it))
    assert_string_equal(json_object_iter_key(it), order[i++]);
  assert_int_equal(i, 7);
  assert_true(json_is_integer(json_object_get(j, "b")));
  assert_int_equal(json_integer_value(json_object_get(j, "b")), 1);
  json_t *a = json_object_get(j, "a");
  assert_int_equal(json_array_size(a), 9);
  /* "-0" has no '.', 'e' or 'E': an integer, 0 */
  assert_true(json_is_integer(json_array_get(a, 0)));
  assert_int_equal(json_integer_value(json_array_get(a, 0)), 0);
  assert_true(json_is_real(json_array_get(a, 1)));
  assert_double_exact(json_real_value(json_array_get(a, 1)), 0.5);
  assert_double_exact(json_real_value(json_array_get(a, 2)), -2000.0);
  assert_true(json_is_real(json_array_get(a, 3))); /* 1E+2 = 100, a real */
  assert_double_exact(json_real_value(json_array_get(a, 3)), 100.0);
  /* 12.25e-1 = 1.225: the double nearest to 1.225, as strtod gives */
  assert_double_exact(json_real_value(json_array_get(a, 4)), 1.225);
  assert_true(json_is_true(json_array_get(a, 5)));
  assert_true(json_is_false(json_array_get(a, 6)));
  assert_true(json_is_null(json_array_get(a, 7)));
  assert_string_equal(json_string_value(json_array_get(a, 8)), "");
  /* the key x"y (3 bytes) and its value's seven escapes decoded */
  json_t *c = json_object_get(j, "c");
  assert_int_equal(json_object_size(c), 1);
  assert_string_equal(json_string_value(json_object_get(c, "x\"y")),
                      "tab\there\\/\b\f\n\r");
  /* the long long range's two ends */
  assert_true(json_integer_value(json_object_get(j, "d")) == 9223372036854775807LL);
  assert_true(json_integer_value(json_object_get(j, "e")) ==
              -9223372036854775807LL - 1);
  assert_int_equal(json_object_size(json_object_get(j, "f")), 0);
  assert_int_equal(json_array_size(json_object_get(j, "g")), 0);
  json_decref(j);
  assert_true(check(t));
}

/* Each text below Jansson rejects (the reason beside it), or holds
 * something the fast path leaves to Jansson: never accepted. */
static void test_jsonparse_left_to_jansson(void **state) {
  (void)state;
  static const char *const texts[] = {
      "",                            /* nothing */
      "   ",                         /* white space only */
      "1",                           /* a top-level scalar */
      "\"s\"",                       /* a top-level string */
      "null",                        /* a top-level literal */
      "[1,]",                        /* trailing comma */
      "{\"a\":1,}",                  /* trailing comma in an object */
      "[1 2]",                       /* missing comma */
      "{\"a\" 1}",                   /* missing colon */
      "{a:1}",                       /* unquoted key */
      "{\"a\":1,\"a\":2}",           /* duplicate key */
      "[01]",                        /* leading zero */
      "[-]",                         /* minus alone */
      "[+1]",                        /* plus sign */
      "[.5]",                        /* no integer part */
      "[1.]",                        /* no fraction digits */
      "[1e]",                        /* no exponent digits */
      "[1e+]",                       /* no exponent digits */
      "[0x10]",                      /* hex */
      "[1.5.2]",                     /* two points */
      "[tru]",                       /* a short literal */
      "[truex]",                     /* a long literal */
      "[nul]",                       /* a short literal */
      "[NaN]",                       /* not JSON */
      "[Infinity]",                  /* not JSON */
      "[\"a]",                       /* unterminated string */
      "[\"a\\x\"]",                  /* unknown escape */
      "[\"a\\",                      /* escape at the end */
      "[\"a\tb\"]",                  /* control byte in a string */
      "[\"a\nb\"]",                  /* newline in a string */
      "[1] x",                       /* text after the value */
      "[1]]",                        /* text after the value */
      "[9223372036854775808]",       /* past long long */
      "[-9223372036854775809]",      /* past long long */
      "[1e400]",                     /* real overflow */
      "{\"a\":[}",                   /* mismatched brackets */
      "[\"\\u0000\"]",               /* \u: left to Jansson (which rejects NUL) */
      "\xef\xbb\xbf[1]",             /* a byte order mark */
      "[\"\xc3\x28\"]",              /* invalid UTF-8 */
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(texts); i++) {
    json_t *j = json_fast_parse(texts[i], strlen(texts[i]));
    if (j)
      fail_msg("accepted: %s", texts[i]);
    check(texts[i]);
  }
  /* a NUL byte inside the buffer's length */
  assert_null(json_fast_parse("[1,\0 2]", 7));
  check_text("[1,\0 2]", 7);
  /* the length bounds the text: the same bytes, cut short */
  assert_null(json_fast_parse("[1, 2]", 5));
  json_t *cut = json_fast_parse("[1, 2]xyz", 6);
  assert_non_null(cut);
  json_decref(cut);
}

/* Jansson accepts these; the fast path leaves them to it, and jdoc_loadb
 * still gives Jansson's tree. */
static void test_jsonparse_jansson_decides(void **state) {
  (void)state;
  static const char *const texts[] = {
      "[\"\\u00e9\"]",        /* a \u escape */
      "[\"\xc3\xa9\"]",       /* UTF-8 */
      "[1e-400]",             /* underflow: Jansson accepts 0 */
      "[0.00000000000000000000000000000000000000000000000000000000000001]",
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(texts); i++) {
    assert_null(json_fast_parse(texts[i], strlen(texts[i])));
    json_t *j = jdoc_loadb(texts[i], strlen(texts[i]));
    assert_non_null(j);
    json_decref(j);
  }
  /* nesting past the fast path's 512 levels (Jansson's limit is 2048) */
  Buf b;
  buf_init(&b);
  for (int i = 0; i < 600; i++)
    buf_putc(&b, '[');
  for (int i = 0; i < 600; i++)
    buf_putc(&b, ']');
  assert_null(json_fast_parse(b.data, b.len));
  json_t *j = jdoc_loadb(b.data, b.len);
  assert_non_null(j);
  json_decref(j);
  buf_free(&b);
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Every JSON file of the repository: the fast path accepts each one
 * Jansson accepts (they are ASCII, without \u), with Jansson's tree; and
 * every cut and many one-byte changes of them give Jansson's answer. */
static void test_jsonparse_repository(void **state) {
  (void)state;
  static const char *const patterns[] = {
      "models/*.json",         "models/arch/*.json", "test/data/configs/*.json",
      "engines/*.json",        "calibration/*.json", "hardware.json",
      "parallel.json",         "module_db.json",     "test/fuzz/corpus/*/*",
  };
  static const char bytes[] = "{}[]\":,.-+eE0 1\\\n\tatfnu\x80\xff";
  int files = 0, fast = 0, mutants = 0;
  for (size_t p = 0; p < LM_ARRAY_LEN(patterns); p++) {
    glob_t g;
    if (glob(patterns[p], 0, NULL, &g) != 0)
      continue;
    for (size_t f = 0; f < g.gl_pathc; f++) {
      size_t len;
      char *text = fs_read(g.gl_pathv[f], &len, NULL);
      if (!text)
        continue;
      json_t *ref = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
      bool plain = ref && !memchr(text, '\\', len);
      for (size_t i = 0; plain && i < len; i++)
        plain = (unsigned char)text[i] < 0x80;
      json_decref(ref);
      bool took = check_text(text, len);
      if (plain && !took && len < 4096 * 1024)
        fail_msg("%s: plain JSON left to Jansson", g.gl_pathv[f]);
      files++;
      fast += took;
      if (strncmp(g.gl_pathv[f], "module_db", 9) == 0)
        goto next; /* 500 KB: the cuts of the others cover the grammar */
      /* cuts: every length up to 512 bytes, then 64 more */
      for (size_t n = 0; n < len; n += n < 512 ? 1 : len / 64 + 1)
        check_text(text, n);
      /* one-byte changes */
      for (int k = 0; k < 40 && len; k++) {
        char *m = xstrndup(text, len);
        size_t at = (size_t)(next_rand() % len);
        m[at] = bytes[next_rand() % (sizeof(bytes) - 1)];
        check_text(m, len);
        free(m);
        mutants++;
      }
    next:
      free(text);
    }
    globfree(&g);
  }
  /* the committed data was read */
  assert_true(files > 100);
  assert_true(fast > 80);
  assert_true(mutants > 4000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jsonparse_values),
      cmocka_unit_test(test_jsonparse_left_to_jansson),
      cmocka_unit_test(test_jsonparse_jansson_decides),
      cmocka_unit_test(test_jsonparse_repository),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
