/* schema.c: a JSON Schema (2020-12) validator for the subset our schemas
 * use, so module_db.json is checked on every load with errors that point
 * at the offending value in the file.
 *
 * Supported: type, enum, const, properties, required, additionalProperties,
 * patternProperties, propertyNames, items, minItems, maxItems, uniqueItems,
 * pattern (POSIX ERE: our patterns are written in the common subset),
 * minLength, maxLength, minimum, maximum, $ref to "#/$defs/...", and the
 * annotations ($schema, $id, $comment, title, description, default,
 * examples). Any other keyword in a schema is reported as an error rather
 * than silently ignored.
 */
#include "gen.h"

#include <regex.h>
#include <math.h>
#include <string.h>

extern const char lm_schema_text[]; /* build/schema_text.c */

typedef struct V {
  const json_t *root;
  const JsonDoc *doc;
  Error *err;
  JsonPath path;
} V;

static int validate(V *v, const json_t *s, const json_t *x, int depth);

static int verr(V *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int verr(V *v, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jdoc_verror(v->err, v->doc, &v->path, fmt, ap);
  va_end(ap);
  return -1;
}

static const char *type_name(const json_t *x) {
  switch (json_typeof(x)) {
  case JSON_OBJECT:
    return "object";
  case JSON_ARRAY:
    return "array";
  case JSON_STRING:
    return "string";
  case JSON_INTEGER:
    return "integer";
  case JSON_REAL:
    return "number";
  case JSON_TRUE:
  case JSON_FALSE:
    return "boolean";
  default:
    return "null";
  }
}

static bool has_type(const json_t *x, const char *t) {
  if (strcmp(t, "number") == 0)
    return json_is_number(x);
  if (strcmp(t, "integer") == 0) {
    if (json_is_integer(x))
      return true;
    /* a real is an integer when whole and exactly representable (|v| <=
     * 2^53); never converted, so 1e300 is no undefined behaviour */
    double v = json_is_real(x) ? json_real_value(x) : 0.5;
    return v >= -9007199254740992.0 && v <= 9007199254740992.0 &&
           v == floor(v);
  }
  return strcmp(type_name(x), t) == 0;
}

/* A short rendering of a JSON value for messages. */
static void show(const json_t *x, char *out, size_t n) {
  char *s = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
  if (!s) {
    snprintf(out, n, "?");
    return;
  }
  if (strlen(s) > 60)
    snprintf(out, n, "%.57s...", s);
  else
    snprintf(out, n, "%s", s);
  free(s);
}

static regex_t *get_regex(const char *pattern) {
  static HashMap cache; /* pattern -> regex_t*, lives for the process */
  static bool init;
  if (!init) {
    hashmap_init(&cache);
    init = true;
  }
  regex_t *re = hashmap_get(&cache, pattern);
  if (re)
    return re;
  re = xmalloc(sizeof(regex_t));
  if (regcomp(re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
    free(re);
    return NULL;
  }
  hashmap_add(&cache, pattern, re);
  return re;
}

static const json_t *resolve_ref(V *v, const char *ref) {
  const char *pre = "#/$defs/";
  if (strncmp(ref, pre, strlen(pre)) != 0)
    return NULL;
  const json_t *defs = json_object_get(v->root, "$defs");
  return defs ? json_object_get(defs, ref + strlen(pre)) : NULL;
}

static const char *const known_keywords[] = {
    "$schema", "$id", "$comment", "$defs", "$ref", "title", "description",
    "default", "examples", "type", "enum", "const", "properties",
    "required", "additionalProperties", "patternProperties",
    "propertyNames", "items", "minItems", "maxItems", "uniqueItems",
    "pattern", "minLength", "maxLength", "minimum", "maximum"};

static int check_keywords(V *v, const json_t *s) {
  const char *k;
  json_t *val;
  json_object_foreach((json_t *)s, k, val) {
    bool ok = false;
    for (size_t i = 0; i < LM_ARRAY_LEN(known_keywords) && !ok; i++)
      ok = strcmp(k, known_keywords[i]) == 0;
    if (!ok) {
      err_set(v->err, "schema uses unsupported keyword '%s'", k);
      return -1;
    }
  }
  return 0;
}

static int check_type(V *v, const json_t *t, const json_t *x) {
  if (json_is_string(t)) {
    if (has_type(x, json_string_value(t)))
      return 0;
    return verr(v, "expected %s, found %s", json_string_value(t),
                type_name(x));
  }
  size_t i;
  json_t *e;
  Buf b;
  buf_init(&b);
  json_array_foreach(t, i, e) {
    if (has_type(x, json_string_value(e))) {
      buf_free(&b);
      return 0;
    }
    buf_printf(&b, "%s%s", i ? " or " : "", json_string_value(e));
  }
  verr(v, "expected %s, found %s", buf_str(&b), type_name(x));
  buf_free(&b);
  return -1;
}

static int validate_object(V *v, const json_t *s, const json_t *x, int depth) {
  const json_t *props = json_object_get(s, "properties");
  const json_t *pattern_props = json_object_get(s, "patternProperties");
  const json_t *additional = json_object_get(s, "additionalProperties");
  const json_t *names = json_object_get(s, "propertyNames");
  const json_t *required = json_object_get(s, "required");

  if (required) {
    size_t i;
    json_t *r;
    json_array_foreach(required, i, r) {
      if (!json_object_get(x, json_string_value(r)))
        return verr(v, "missing required member '%s'", json_string_value(r));
    }
  }
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)x, key, val) {
    jp_key(&v->path, key);
    if (names) {
      json_t *kj = json_string(key);
      int rc = validate(v, names, kj, depth + 1);
      json_decref(kj);
      if (rc < 0) {
        if (v->err && v->err->set)
          err_prefix(v->err, "invalid member name: ");
        jp_pop(&v->path);
        return -1;
      }
    }
    bool matched = false;
    const json_t *ps = props ? json_object_get(props, key) : NULL;
    if (ps) {
      matched = true;
      if (validate(v, ps, val, depth + 1) < 0)
        return -1;
    }
    if (pattern_props) {
      const char *pat;
      json_t *psub;
      json_object_foreach((json_t *)pattern_props, pat, psub) {
        regex_t *re = get_regex(pat);
        if (re && regexec(re, key, 0, NULL, 0) == 0) {
          matched = true;
          if (validate(v, psub, val, depth + 1) < 0)
            return -1;
        }
      }
    }
    if (!matched && additional) {
      if (json_is_false(additional)) {
        Buf b;
        buf_init(&b);
        if (props) {
          const char *pk;
          json_t *pv;
          int n = 0;
          json_object_foreach((json_t *)props, pk, pv)
            buf_printf(&b, "%s%s", n++ ? ", " : "", pk);
        }
        if (b.len)
          verr(v, "unknown member '%s' (expected: %s)", key, buf_str(&b));
        else
          verr(v, "unknown member '%s'", key);
        buf_free(&b);
        return -1;
      }
      if (json_is_object(additional) &&
          validate(v, additional, val, depth + 1) < 0)
        return -1;
    }
    jp_pop(&v->path);
  }
  return 0;
}

static int validate_array(V *v, const json_t *s, const json_t *x, int depth) {
  const json_t *kw;
  size_t n = json_array_size(x);
  if ((kw = json_object_get(s, "minItems")) &&
      n < (size_t)json_integer_value(kw))
    return verr(v, "needs at least %lld item%s, has %zu",
                (long long)json_integer_value(kw),
                json_integer_value(kw) == 1 ? "" : "s", n);
  if ((kw = json_object_get(s, "maxItems")) &&
      n > (size_t)json_integer_value(kw))
    return verr(v, "allows at most %lld items, has %zu",
                (long long)json_integer_value(kw), n);
  const json_t *items = json_object_get(s, "items");
  for (size_t i = 0; i < n; i++) {
    jp_index(&v->path, (int)i);
    if (items && validate(v, items, json_array_get(x, i), depth + 1) < 0)
      return -1;
    if (json_is_true(json_object_get(s, "uniqueItems")))
      for (size_t j = 0; j < i; j++)
        if (json_equal(json_array_get(x, i), json_array_get(x, j)))
          return verr(v, "duplicate of item %zu", j);
    jp_pop(&v->path);
  }
  return 0;
}

static int validate_string(V *v, const json_t *s, const json_t *x) {
  const char *str = json_string_value(x);
  size_t len = json_string_length(x);
  const json_t *kw;
  if ((kw = json_object_get(s, "minLength")) &&
      len < (size_t)json_integer_value(kw))
    return json_integer_value(kw) == 1
               ? verr(v, "must not be empty")
               : verr(v, "shorter than %lld characters",
                      (long long)json_integer_value(kw));
  if ((kw = json_object_get(s, "maxLength")) &&
      len > (size_t)json_integer_value(kw))
    return verr(v, "longer than %lld characters",
                (long long)json_integer_value(kw));
  if ((kw = json_object_get(s, "pattern"))) {
    regex_t *re = get_regex(json_string_value(kw));
    if (!re) {
      err_set(v->err, "schema pattern does not compile: %s",
              json_string_value(kw));
      return -1;
    }
    if (strlen(str) != len || regexec(re, str, 0, NULL, 0) != 0) {
      char shown[80];
      show(x, shown, sizeof(shown));
      const json_t *d = json_object_get(s, "description");
      if (d)
        return verr(v, "invalid value %s: %s", shown, json_string_value(d));
      return verr(v, "value %s does not match %s", shown,
                  json_string_value(kw));
    }
  }
  return 0;
}

static int validate(V *v, const json_t *s, const json_t *x, int depth) {
  if (depth > 64) {
    err_set(v->err, "schema nesting too deep");
    return -1;
  }
  if (!json_is_object(s)) {
    err_set(v->err, "schema is not an object");
    return -1;
  }
  if (check_keywords(v, s) < 0)
    return -1;
  const json_t *kw;
  if ((kw = json_object_get(s, "$ref"))) {
    const json_t *target = resolve_ref(v, json_string_value(kw));
    if (!target) {
      err_set(v->err, "schema $ref not found: %s", json_string_value(kw));
      return -1;
    }
    if (validate(v, target, x, depth + 1) < 0)
      return -1;
  }
  if ((kw = json_object_get(s, "type")) && check_type(v, kw, x) < 0)
    return -1;
  if ((kw = json_object_get(s, "const")) && !json_equal(kw, (json_t *)x)) {
    char want[80], got[80];
    show(kw, want, sizeof(want));
    show(x, got, sizeof(got));
    return verr(v, "expected %s, found %s", want, got);
  }
  if ((kw = json_object_get(s, "enum"))) {
    size_t i;
    json_t *e;
    bool ok = false;
    json_array_foreach(kw, i, e) ok = ok || json_equal(e, (json_t *)x);
    if (!ok) {
      Buf b;
      buf_init(&b);
      char one[80];
      json_array_foreach(kw, i, e) {
        show(e, one, sizeof(one));
        buf_printf(&b, "%s%s", i ? ", " : "", one);
      }
      show(x, one, sizeof(one));
      verr(v, "value %s is not one of: %s", one, buf_str(&b));
      buf_free(&b);
      return -1;
    }
  }
  if (json_is_number(x)) {
    double d = json_number_value(x);
    if ((kw = json_object_get(s, "minimum")) && d < json_number_value(kw))
      return verr(v, "must be >= %g", json_number_value(kw));
    if ((kw = json_object_get(s, "maximum")) && d > json_number_value(kw))
      return verr(v, "must be <= %g", json_number_value(kw));
  }
  if (json_is_string(x) && validate_string(v, s, x) < 0)
    return -1;
  if (json_is_object(x) && validate_object(v, s, x, depth) < 0)
    return -1;
  if (json_is_array(x) && validate_array(v, s, x, depth) < 0)
    return -1;
  return 0;
}

int schema_validate(const json_t *schema, const json_t *inst,
                    const JsonDoc *doc, Error *err) {
  V v = {.root = schema, .doc = doc, .err = err};
  jp_init(&v.path);
  return validate(&v, schema, inst, 0);
}

int schema_validate_def(const json_t *schema, const char *def,
                        const json_t *inst, const JsonPath *base,
                        const JsonDoc *doc, Error *err) {
  V v = {.root = schema, .doc = doc, .err = err};
  if (base)
    v.path = *base;
  else
    jp_init(&v.path);
  const json_t *defs = json_object_get(schema, "$defs");
  const json_t *s = defs ? json_object_get(defs, def) : NULL;
  if (!s) {
    err_set(err, "schema has no definition '%s'", def);
    return -1;
  }
  return validate(&v, s, inst, 0);
}

const json_t *schema_module_db(void) {
  static json_t *schema;
  if (!schema) {
    json_error_t je;
    schema = json_loads(lm_schema_text, JSON_REJECT_DUPLICATES, &je);
    if (!schema) {
      fprintf(stderr, "lm-predictor: embedded schema is invalid: %s\n",
              je.text);
      abort();
    }
  }
  return schema;
}
