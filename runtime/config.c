/* config.c: a Hugging Face config.json and its family's template -> Model.
 *
 * models/arch/<model_type>.json is a model file whose numbers are
 * templates over config values, plus the declaration of every config key
 * it reads (its default, as a template over keys declared before it, and
 * its range) and constraints between keys. This file reads the config,
 * applies the declarations and constraints, and hands the values and the
 * template's architecture to model.c, the loader model files go through:
 * a template passes exactly the checks a model file does.
 *
 * Keys a template does not declare are never read, so a config may carry
 * anything there (Python's json writes NaN and Infinity, which are not
 * JSON: they are accepted outside the declared keys, and named when a
 * declared key holds one).
 *
 * model_open is the one entry point for everything lmrun accepts: a model
 * file, a config.json, a directory holding one, a Hub id (hub.c).
 */
#include "runtime.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

/* ----- NaN and Infinity ----- */

/* The text with every bare NaN, Infinity and -Infinity outside strings
 * replaced by a string literal of the same length, so Jansson parses it
 * and every offset (hence every caret) stays where it was. */
static char *replace_nonfinite(const char *t, size_t len) {
  char *s = xstrndup(t, len);
  bool in_str = false;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (c == '"') {
      in_str = true;
      continue;
    }
    if (i > 0 && (isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_'))
      continue;
    size_t n = 0;
    if (strncmp(s + i, "NaN", 3) == 0)
      n = 3;
    else if (strncmp(s + i, "Infinity", 8) == 0)
      n = 8;
    else if (strncmp(s + i, "-Infinity", 9) == 0)
      n = 9;
    if (n && !(i + n < len &&
               (isalnum((unsigned char)s[i + n]) || s[i + n] == '_'))) {
      s[i] = '"';
      memset(s + i + 1, '~', n - 2);
      s[i + n - 1] = '"';
      i += n - 1;
    }
  }
  return s;
}


/* ----- the reader ----- */

#define CFG_MAX_KEYS 128

typedef struct Cfg {
  /* the config */
  const char *cpath;
  const char *ctext; /* original text, for carets */
  size_t clen;
  JsonDoc cdoc; /* a view of the three above */
  json_t *obj;  /* where keys are read (the config, or text_config) */
  JsonPath cjp; /* path of obj */
  json_t *outer;      /* the config's root when obj is nested in it */
  JsonPath outer_jp;  /* its path */
  /* the template */
  const char *tpath;
  const char *ttext;
  size_t tlen;
  JsonDoc tdoc; /* a view of the three above */
  JsonPath tjp;
  JlocIndex tcfg; /* the template's "config" object's members, located */
  JlocIndex ccfg; /* the config's (or its nested object's) members */
  const char *family;
  /* values so far */
  const char *names[CFG_MAX_KEYS];
  double values[CFG_MAX_KEYS];
  VarOrigin origins[CFG_MAX_KEYS]; /* strings in arena */
  int n;
  Quant quant;       /* from a "quantization" declaration */
  json_t *dflt_over; /* a same_as template's "defaults": key -> number */
  /* a "wraps" template's target, handed over to from_config (owned) */
  json_t *wrap_root;
  char *wrap_text, *wrap_path;
  json_t *wrap_over; /* the wraps' class_defaults of the target (a ref) */
  Arena *arena;
  Error *err;
} Cfg;

/* The non-finite literal the value at path was written as, or NULL. */
static const char *nonfinite_at(const Cfg *c, const JsonPath *p) {
  const char *t = c->ctext;
  long off = jloc_index_find(&c->ccfg, p);
  if (off < 0)
    return NULL;
  if (strncmp(t + off, "NaN", 3) == 0)
    return "NaN";
  if (strncmp(t + off, "Infinity", 8) == 0)
    return "Infinity";
  if (strncmp(t + off, "-Infinity", 9) == 0)
    return "-Infinity";
  return NULL;
}

/* A config name as declarations give it: a key of c->obj, or "obj.key"
 * for a key one level down (an alias such as
 * rope_parameters.partial_rotary_factor: transformers 5 moves the key
 * there). Its value, or NULL. */
static json_t *cfg_get(const Cfg *c, const char *name) {
  const char *dot = strchr(name, '.');
  if (!dot)
    return json_object_get(c->obj, name);
  char outer[128];
  snprintf(outer, sizeof(outer), "%.*s", (int)(dot - name), name);
  json_t *o = json_object_get(c->obj, outer);
  return json_is_object(o) ? json_object_get(o, dot + 1) : NULL;
}

/* Extend p (c->cjp or a copy) to name's value. The path keeps pointers:
 * the outer part of a dotted name is copied into c's arena. */
static void jp_cfg(Cfg *c, JsonPath *p, const char *name) {
  const char *dot = strchr(name, '.');
  if (!dot) {
    jp_key(p, name);
    return;
  }
  char *outer = arena_strndup(c->arena, name, (size_t)(dot - name));
  jp_key(p, outer);
  jp_key(p, dot + 1);
}

static int cerr_at(Cfg *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An error in the config, at key (or at the object that lacks it). */
static int cerr_at(Cfg *c, const char *key, const char *fmt, ...) {
  char msg[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  JsonPath p = c->cjp;
  if (key && cfg_get(c, key))
    jp_cfg(c, &p, key);
  return jdoc_error(c->err, &c->cdoc, &p, "%s", msg);
}

static int terr(Cfg *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* An error in the template, at c->tjp. */
static int terr(Cfg *c, const char *fmt, ...) {
  char msg[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return jdoc_error(c->err, &c->tdoc, &c->tjp, "%s", msg);
}

/* A formula over the keys declared so far (the template's text at
 * c->tjp), evaluated. */
static int eval_over_keys(Cfg *c, json_t *v, double *out) {
  if (json_is_number(v)) {
    *out = json_number_value(v);
    return 0;
  }
  if (json_is_boolean(v)) {
    *out = json_is_true(v) ? 1 : 0;
    return 0;
  }
  if (!json_is_string(v))
    return terr(c, "must be a number or a formula over config keys");
  FormulaSrc src = {
      .text = json_string_value(v), .doc = &c->tdoc, .path = &c->tjp};
  Node *n = parse_formula(c->arena, &src, c->err);
  if (!n)
    return -1;
  Scope sc = {.names = c->names,
              .nnames = c->n,
              .modules = NULL,
              .what = "config key declared before this one"};
  if (check_formula(n, &src, &sc, c->err) < 0)
    return -1;
  *out = node_eval(n, c->values, M_FLOPS);
  return 0;
}

static int find_key(const Cfg *c, const char *name) {
  for (int i = 0; i < c->n; i++)
    if (strcmp(c->names[i], name) == 0)
      return i;
  return -1;
}

/* A value Python's truth test takes as true: true, a non-zero number, a
 * non-empty string, array or object. */
static bool py_truthy(json_t *v) {
  if (!v)
    return false;
  switch (json_typeof(v)) {
  case JSON_TRUE:
    return true;
  case JSON_INTEGER:
  case JSON_REAL:
    return json_number_value(v) != 0;
  case JSON_STRING:
    return json_string_length(v) > 0;
  case JSON_ARRAY:
    return json_array_size(v) > 0;
  case JSON_OBJECT:
    return json_object_size(v) > 0;
  default:
    return false;
  }
}

static const char *const rope_types[] = {"default", "linear",   "dynamic",
                                         "yarn",    "longrope", "llama3",
                                         "su",      "mrope"};

/* rope_scaling changes no cost (the rotary embedding's work does not
 * depend on it) but is checked as transformers checks it. */
static int check_rope(Cfg *c, const char *key, json_t *v);

/* transformers 5 writes the rope parameters of models whose layers differ
 * per layer type: {"full_attention": {...}, "sliding_attention": {...}}
 * (Gemma 3): an object of objects, each checked as one. */
static bool rope_per_layer_type(json_t *v) {
  if (json_object_get(v, "rope_type") || json_object_get(v, "type") ||
      json_object_size(v) == 0)
    return false;
  const char *k;
  json_t *x;
  json_object_foreach(v, k, x) {
    if (!json_is_object(x))
      return false;
  }
  return true;
}

static int read_rope_scaling(Cfg *c, const char *key) {
  json_t *v = json_object_get(c->obj, key);
  if (!v || json_is_null(v))
    return 0;
  /* transformers 5 (convert_rope_params_to_dict): rope_parameters =
   * rope_scaling or rope_parameters, so a config with both (re-saved with
   * a rope_scaling kept) uses rope_scaling and never reads
   * rope_parameters; transformers 4 ignores rope_parameters altogether */
  if (strcmp(key, "rope_parameters") == 0 &&
      py_truthy(json_object_get(c->obj, "rope_scaling")))
    return 0;
  if (!json_is_object(v))
    return cerr_at(c, key, "%s must be an object or null", key);
  if (!rope_per_layer_type(v))
    return check_rope(c, key, v);
  JsonPath save = c->cjp;
  jp_key(&c->cjp, key);
  json_t *saveobj = c->obj;
  c->obj = v;
  int rc = 0;
  const char *k;
  json_t *x;
  json_object_foreach(v, k, x) {
    if ((rc = check_rope(c, k, x)) < 0)
      break;
  }
  c->obj = saveobj;
  c->cjp = save;
  return rc;
}

/* One rope_scaling object, at key of c->obj. */
static int check_rope(Cfg *c, const char *key, json_t *v) {
  JsonPath save = c->cjp;
  jp_key(&c->cjp, key);
  json_t *saveobj = c->obj;
  c->obj = v;
  int rc = -1;
  json_t *t = json_object_get(v, "rope_type");
  const char *tk = "rope_type";
  if (!t) {
    t = json_object_get(v, "type");
    tk = "type";
  }
  if (!t || !json_is_string(t)) {
    cerr_at(c, t ? tk : NULL, "%s needs a rope_type (a string)", key);
    goto out;
  }
  const char *ty = json_string_value(t);
  bool known = false;
  for (size_t i = 0; i < LM_ARRAY_LEN(rope_types) && !known; i++)
    known = strcmp(ty, rope_types[i]) == 0;
  if (!known) {
    cerr_at(c, tk,
            "unknown %s.%s '%s' (known: default, linear, dynamic, yarn, "
            "longrope, llama3, su, mrope)",
            key, tk, ty);
    goto out;
  }
  const char *k;
  json_t *x;
  json_object_foreach(v, k, x) {
    JsonPath p = c->cjp;
    jp_key(&p, k);
    const char *nf = nonfinite_at(c, &p);
    if (nf) {
      cerr_at(c, k, "%s.%s is %s: it must be a finite number", key, k, nf);
      goto out;
    }
    if (json_is_number(x) && strcmp(k, "factor") == 0 &&
        !(json_number_value(x) > 0)) {
      cerr_at(c, k, "%s.factor must be positive", key);
      goto out;
    }
  }
  static const char *const need_factor[] = {"linear", "dynamic", "yarn",
                                            "llama3"};
  for (size_t i = 0; i < LM_ARRAY_LEN(need_factor); i++)
    if (strcmp(ty, need_factor[i]) == 0 &&
        !json_is_number(json_object_get(v, "factor"))) {
      cerr_at(c, NULL, "%s of type %s needs a numeric 'factor'", key, ty);
      goto out;
    }
  if (strcmp(ty, "longrope") == 0 || strcmp(ty, "su") == 0) {
    /* _validate_longrope_parameters: short_factor and long_factor, lists
     * of numbers (one per rotated frequency) */
    static const char *const lists[] = {"short_factor", "long_factor"};
    for (size_t i = 0; i < LM_ARRAY_LEN(lists); i++) {
      json_t *l = json_object_get(v, lists[i]);
      bool ok = json_is_array(l) && json_array_size(l) > 0;
      for (size_t j = 0; ok && j < json_array_size(l); j++)
        ok = json_is_number(json_array_get(l, j));
      if (!ok) {
        cerr_at(c, l ? lists[i] : NULL,
                "%s of type %s needs '%s', a list of numbers", key, ty,
                lists[i]);
        goto out;
      }
    }
  }
  if (strcmp(ty, "llama3") == 0) {
    static const char *const need[] = {"low_freq_factor", "high_freq_factor",
                                       "original_max_position_embeddings"};
    for (size_t i = 0; i < LM_ARRAY_LEN(need); i++)
      if (!json_is_number(json_object_get(v, need[i]))) {
        cerr_at(c, NULL, "%s of type llama3 needs a numeric '%s'", key,
                need[i]);
        goto out;
      }
    if (!(json_number_value(json_object_get(v, "low_freq_factor")) <
          json_number_value(json_object_get(v, "high_freq_factor")))) {
      cerr_at(c, "low_freq_factor",
              "%s.low_freq_factor must be below high_freq_factor", key);
      goto out;
    }
  }
  rc = 0;
out:
  c->obj = saveobj;
  c->cjp = save;
  return rc;
}

/* A count of array elements equal to a string (layer_types). */
/* A declaration's "values" (a count's block names, a choice's values):
 * the index of the string v among them, -1 if absent or not a string. */
static long values_index(json_t *vals, json_t *v) {
  for (size_t j = 0; json_is_string(v) && j < json_array_size(vals); j++) {
    const char *x = json_string_value(json_array_get(vals, j));
    if (x && strcmp(x, json_string_value(v)) == 0)
      return (long)j;
  }
  return -1;
}

/* The values listed for an error message: "a, b, c". */
static void values_list(Buf *b, json_t *vals) {
  for (size_t j = 0; j < json_array_size(vals); j++)
    buf_printf(b, "%s%s", j ? ", " : "",
               json_string_value(json_array_get(vals, j)));
}

/* A pattern string's characters against the declaration's "values" (one
 * character each: nemotron_h's M, *, -, E): an unknown character is an
 * error with the caret under it (NemotronHConfig._pattern_to_list raises
 * KeyError on it), not a layer left out of every count. */
static int check_pattern(Cfg *c, json_t *decl, const char *an,
                         const char *s) {
  json_t *vals = json_object_get(decl, "values");
  if (!vals)
    return 0;
  bool ok = json_is_array(vals);
  for (size_t j = 0; ok && j < json_array_size(vals); j++) {
    const char *v = json_string_value(json_array_get(vals, j));
    ok = v && strlen(v) == 1;
  }
  if (!ok)
    return terr(c, "counting in a string: 'values' lists the characters "
                   "a pattern may hold, one-character strings");
  Buf known;
  buf_init(&known);
  for (size_t j = 0; j < json_array_size(vals); j++)
    buf_puts(&known, json_string_value(json_array_get(vals, j)));
  int rc = 0;
  for (const char *x = s; *x; x++) {
    if (strchr(buf_str(&known), *x))
      continue;
    JsonPath p = c->cjp;
    jp_key(&p, an);
    Buf l;
    buf_init(&l);
    for (const char *k = buf_str(&known); *k; k++)
      buf_printf(&l, "%s'%c'", k == buf_str(&known) ? "" : ", ", *k);
    rc = jdoc_error_string(c->err, &c->cdoc, &p, s, (int)(x - s), 1,
                           "%s[%d] is '%c'; the %s template knows only the "
                           "block characters %s",
                           an, (int)(x - s), *x, c->family, buf_str(&l));
    buf_free(&l);
    break;
  }
  buf_free(&known);
  return rc;
}

static int read_count(Cfg *c, const char *key, json_t *decl, bool *found,
                      double *out) {
  json_t *arr_name = json_object_get(decl, "array");
  json_t *eq = json_object_get(decl, "equals");
  /* equals: a string, or for arrays a list of names counted alike (a block
   * renamed between transformers versions: nemotron_h's mamba, now
   * linear_attention) */
  bool eq_ok = json_is_string(eq) || json_is_number(eq) ||
               (json_is_array(eq) && json_array_size(eq) > 0 &&
                json_is_string(json_array_get(eq, 0)));
  for (size_t j = 0; eq_ok && json_is_array(eq) && j < json_array_size(eq); j++)
    eq_ok = json_is_string(json_array_get(eq, j));
  if (!json_is_string(arr_name) || !eq_ok)
    return terr(c, "a count declares 'array' (a string) and 'equals' (a "
                   "string, an array of strings, or a number)");
  const char *an = json_string_value(arr_name);
  json_t *arr = json_object_get(c->obj, an);
  *found = false;
  if (!arr || json_is_null(arr))
    return 0;
  if (json_is_number(eq) && !json_is_array(arr))
    return cerr_at(c, an, "%s must be an array of numbers", an);
  if (json_is_string(arr)) {
    /* a pattern string, one character per layer (nemotron_h's
     * hybrid_override_pattern: "M-M*-..."): count the character */
    const char *e = json_string_value(eq), *s = json_string_value(arr);
    if (!e || strlen(e) != 1)
      return terr(c, "counting in a string needs 'equals' of one character");
    if (check_pattern(c, decl, an, s) < 0)
      return -1;
    double n = 0;
    for (const char *x = s; *x; x++)
      n += *x == *e;
    json_t *lk = json_object_get(decl, "length");
    if (lk) {
      int k = json_is_string(lk) ? find_key(c, json_string_value(lk)) : -1;
      if (k < 0)
        return terr(c, "'length' must name a config key declared before %s",
                    key);
      if ((double)strlen(s) != c->values[k])
        return cerr_at(c, an, "%s has %zu characters but %s is %g", an,
                       strlen(s), c->names[k], c->values[k]);
    }
    *found = true;
    *out = n;
    return 0;
  }
  if (!json_is_array(arr))
    return cerr_at(c, an, "%s must be an array of strings, or a string", an);
  /* "values": the names an entry may have (nemotron_h's mamba, attention,
   * mlp, moe), so that an unknown block is an error at its entry rather
   * than a layer left out of every count */
  json_t *vals = json_object_get(decl, "values");
  if (vals && (!json_is_array(vals) || json_array_size(vals) == 0))
    return terr(c, "a count's 'values' is a non-empty array of strings");
  for (size_t j = 0; vals && j < json_array_size(vals); j++)
    if (!json_is_string(json_array_get(vals, j)))
      return terr(c, "a count's 'values' is a non-empty array of strings");
  double n = 0;
  for (size_t i = 0; json_is_number(eq) && i < json_array_size(arr); i++) {
    /* equals a number: an array of numbers (SmolLM3's no_rope_layers of
     * 1 and 0; true and false read as 1 and 0, as Python's int()) */
    json_t *e = json_array_get(arr, i);
    if (!json_is_number(e) && !json_is_boolean(e)) {
      JsonPath p = c->cjp;
      jp_key(&p, an);
      jp_index(&p, (int)i);
      return jdoc_error(c->err, &c->cdoc, &p, "%s[%zu] must be a number", an,
                        i);
    }
    double x = json_is_boolean(e) ? (double)json_is_true(e)
                                  : json_number_value(e);
    n += x == json_number_value(eq);
  }
  for (size_t i = 0; !json_is_number(eq) && i < json_array_size(arr); i++) {
    json_t *e = json_array_get(arr, i);
    bool known = vals ? values_index(vals, e) >= 0 : json_is_string(e);
    if (!known) {
      JsonPath p = c->cjp;
      jp_key(&p, an);
      jp_index(&p, (int)i);
      if (!vals || !json_is_string(e))
        return jdoc_error(c->err, &c->cdoc, &p, "%s[%zu] must be a string",
                          an, i);
      Buf b;
      buf_init(&b);
      values_list(&b, vals);
      int rc = jdoc_error(c->err, &c->cdoc, &p,
                          "%s[%zu] is '%s'; the %s template models only: %s",
                          an, i, json_string_value(e), c->family, buf_str(&b));
      buf_free(&b);
      return rc;
    }
    n += json_is_string(eq)
             ? strcmp(json_string_value(e), json_string_value(eq)) == 0
             : values_index(eq, e) >= 0;
  }
  json_t *lenkey = json_object_get(decl, "length");
  if (lenkey) {
    int k =
        json_is_string(lenkey) ? find_key(c, json_string_value(lenkey)) : -1;
    if (k < 0)
      return terr(c, "'length' must name a config key declared before %s", key);
    if ((double)json_array_size(arr) != c->values[k])
      return cerr_at(c, an, "%s has %zu entries but %s is %g", an,
                     json_array_size(arr), c->names[k], c->values[k]);
  }
  *found = true;
  *out = n;
  return 0;
}

/* A count of layer indices i in [0, length) with (i + 1) % every == 0
 * that the array `except` does not list: Qwen2/Qwen3-MoE's sparse layers
 * (Qwen3MoeDecoderLayer: MoE when layer_idx not in mlp_only_layers and
 * (layer_idx + 1) % decoder_sparse_step == 0). `every` and `length` name
 * keys declared before; `except` absent or null is empty. */
static int read_layer_count(Cfg *c, const char *key, json_t *decl,
                            bool *found, double *out) {
  json_t *ev = json_object_get(decl, "every");
  json_t *ex = json_object_get(decl, "except");
  json_t *ln = json_object_get(decl, "length");
  int ke = json_is_string(ev) ? find_key(c, json_string_value(ev)) : -1;
  int kl = json_is_string(ln) ? find_key(c, json_string_value(ln)) : -1;
  if (ke < 0 || kl < 0 || !json_is_string(ex))
    return terr(c, "a layer_count declares 'every' and 'length' (config keys "
                   "declared before %s) and 'except' (the config array of "
                   "layer indices left out)",
                key);
  double every = c->values[ke], length = c->values[kl];
  if (every < 1 || every != floor(every) || length < 0 || length > 1e6 ||
      length != floor(length))
    return cerr_at(c, c->names[ke], "%s must be a whole number >= 1",
                   c->names[ke]);
  const char *an = json_string_value(ex);
  json_t *arr = json_object_get(c->obj, an);
  if (arr && !json_is_null(arr) && !json_is_array(arr))
    return cerr_at(c, an, "%s must be an array of layer indices", an);
  double n = 0;
  for (long i = 0; i < (long)length; i++) {
    if ((i + 1) % (long)every != 0)
      continue;
    bool listed = false;
    for (size_t j = 0; arr && j < json_array_size(arr); j++)
      listed |= json_number_value(json_array_get(arr, j)) == (double)i;
    n += !listed;
  }
  for (size_t j = 0; arr && j < json_array_size(arr); j++) {
    json_t *e = json_array_get(arr, j);
    double v = json_number_value(e);
    if (!json_is_integer(e) || v < 0 || v >= length) {
      JsonPath p = c->cjp;
      jp_key(&p, an);
      jp_index(&p, (int)j);
      return jdoc_error(c->err, &c->cdoc, &p,
                        "%s[%zu] must be a layer index, 0 to %s - 1 (%g)", an,
                        j, c->names[kl], length - 1);
    }
  }
  *found = true;
  *out = n;
  return 0;
}

static const char *const decl_members[] = {
    "doc",    "default", "type",   "min",    "max",    "integer",
    "array",  "equals",  "length", "values", "covers", "every",
    "except", "aliases", "variable", "null", "outer"};

/* The name under which the config gives a declared key: the key itself
 * when present and not null, else the first of the declaration's
 * "aliases" that is (a config class's attribute_map or a renamed keyword:
 * BloomConfig reads num_attention_heads as n_head, n_embed as
 * hidden_size); the key itself when none is. */
static const char *config_name(Cfg *c, const char *key, json_t *decl) {
  json_t *v = json_object_get(c->obj, key);
  if (v && !json_is_null(v))
    return key;
  json_t *al = json_object_get(decl, "aliases");
  for (size_t i = 0; json_is_array(al) && i < json_array_size(al); i++) {
    const char *a = json_string_value(json_array_get(al, i));
    json_t *av = a ? cfg_get(c, a) : NULL;
    if (av && !json_is_null(av))
      return a;
  }
  return key;
}

static int check_aliases(Cfg *c, json_t *decl) {
  json_t *al = json_object_get(decl, "aliases");
  if (!al)
    return 0;
  bool ok = json_is_array(al) && json_array_size(al) > 0;
  for (size_t i = 0; ok && i < json_array_size(al); i++)
    ok = json_is_string(json_array_get(al, i));
  if (!ok) {
    jp_key(&c->tjp, "aliases");
    return terr(c, "aliases must be a non-empty array of config key names");
  }
  return 0;
}

/* A choice's "variable": a config variable of that name holding the index
 * of the value in `values` (0 for the first), so that layers can depend
 * on it through `when` (gpt_neox's hidden_act: gelu or gelu_fast). */
static int choice_variable(Cfg *c, json_t *decl, const char *key,
                           const char *value, double index) {
  json_t *var = json_object_get(decl, "variable");
  if (!var)
    return 0;
  const char *name = json_string_value(var);
  jp_key(&c->tjp, "variable");
  if (!name || !naming_is_identifier(name))
    return terr(c, "variable must be an identifier");
  for (int i = 0; i < V_COUNT; i++)
    if (strcmp(name, run_var_name[i]) == 0)
      return terr(c, "variable '%s' is a run variable name", name);
  if (find_key(c, name) >= 0)
    return terr(c, "variable '%s' is declared twice", name);
  if (c->n == CFG_MAX_KEYS)
    return terr(c, "more than %d config keys", CFG_MAX_KEYS);
  jp_pop(&c->tjp);
  VarOrigin *o = &c->origins[c->n];
  memset(o, 0, sizeof(*o));
  o->choice = arena_strdup(c->arena, key);
  o->value = arena_strdup(c->arena, value);
  c->names[c->n] = arena_strdup(c->arena, name);
  c->values[c->n++] = index;
  return 0;
}

/* A string key that selects what the template models (hidden_act): its
 * value, or its default, must be one of `values`. Not a variable. */
static int read_choice(Cfg *c, const char *key, json_t *decl) {
  key = config_name(c, key, decl);
  json_t *vals = json_object_get(decl, "values");
  json_t *dflt = json_object_get(decl, "default");
  if (!json_is_array(vals) || json_array_size(vals) == 0 ||
      (dflt && !json_is_string(dflt)))
    return terr(c, "a choice declares 'values' (strings) and a string "
                   "'default'");
  json_t *v = cfg_get(c, key);
  if (!v || json_is_null(v)) {
    if (!dflt)
      return cerr_at(c, NULL,
                     "the config has no '%s', which the %s template "
                     "needs",
                     key, c->family);
    v = dflt;
  }
  for (size_t i = 0; i < json_array_size(vals); i++)
    if (!json_is_string(json_array_get(vals, i)))
      return terr(c, "values must be strings");
  long index = values_index(vals, v);
  if (index >= 0)
    return choice_variable(c, decl, key, json_string_value(v), (double)index);
  Buf b;
  buf_init(&b);
  values_list(&b, vals);
  int rc =
      cerr_at(c, key, "%s is %s%s%s; the %s template models only: %s", key,
              json_is_string(v) ? "'" : "",
              json_is_string(v) ? json_string_value(v) : "not a string",
              json_is_string(v) ? "'" : "", c->family, buf_str(&b));
  buf_free(&b);
  return rc;
}

static int qerr(Cfg *c, const char *key, const char *a, const char *b,
                const char *d, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* An error at quantization_config.<a>.<b>.<d> (NULL ends the path). */
static int qerr(Cfg *c, const char *key, const char *a, const char *b,
                const char *d, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  JsonPath p = c->cjp;
  jp_key(&p, key);
  if (a)
    jp_key(&p, a);
  if (a && b)
    jp_key(&p, b);
  if (a && b && d)
    jp_key(&p, d);
  return jdoc_error(c->err, &c->cdoc, &p, "%s", msg);
}

/* A number member of the quantization object, or dflt when absent. */
static int quant_number(Cfg *c, json_t *q, const char *key, const char *name,
                        double dflt, double *out) {
  json_t *v = json_object_get(q, name);
  if (!v || json_is_null(v)) {
    *out = dflt;
    return 0;
  }
  if (!json_is_number(v))
    return qerr(c, key, name, NULL, NULL, "%s.%s must be a number", key,
                name);
  *out = json_number_value(v);
  return 0;
}

/* Whether an entry of compressed-tensors' `ignore` (a module name or a
 * "re:" pattern) names a layer the model keeps at 16 bits anyway or does
 * not count: lm_head, the embeddings, a MoE router or shared-expert gate
 * (a name ending in "gate": "re:.*mlp.gate$", "model.layers.3.mlp.gate";
 * not gate_proj), the vision tower and projector of an image-text model,
 * multi-token-prediction layers. Any other entry (an attention projection,
 * a shared expert, a dense layer) leaves part of the quantized layers at
 * 16 bits: one width cannot describe that checkpoint. */
static bool ct_ignore_harmless(const char *e) {
  size_t n = strlen(e);
  while (n && e[n - 1] == '$')
    n--;
  static const char *const has[] = {"lm_head", "embed", "vision", "visual",
                                    "multi_modal", "mm_projector", "mtp",
                                    "nextn"};
  for (size_t i = 0; i < LM_ARRAY_LEN(has); i++)
    if (strstr(e, has[i]))
      return true;
  return n >= 4 && memcmp(e + n - 4, "gate", 4) == 0;
}

/* compressed-tensors (llm-compressor's checkpoints: FP8 W8A8, INT4/INT8
 * W4A16/W8A16, NVFP4): the bits per weight of its config_groups' weights
 * scheme, scales included, as compressed_tensors stores them: "tensor" and
 * "channel" one scale per tensor or output row (negligible per weight, as
 * fp8's per-tensor scale); "group" a 16-bit scale per group_size inputs
 * (the model's dtype) and, asymmetric, a num_bits zero point packed beside
 * it; "tensor_group" (NVFP4) an FP8 E4M3 scale per group_size; "block" a
 * 16-bit scale per block_structure block. 1: modelled, 0: not modelled
 * (mixed schemes across groups, a group without weights, a sparse or
 * dense format, an `ignore` entry beyond ct_ignore_harmless), -1: a
 * located error in a value that decides the width. */
static int ct_bits(Cfg *c, json_t *q, const char *key, double *bits,
                   double *nominal) {
  const char *fmt = json_string_value(json_object_get(q, "format"));
  json_t *sp = json_object_get(q, "sparsity_config");
  if ((fmt && (strcmp(fmt, "dense") == 0 || strstr(fmt, "24"))) ||
      (sp && !json_is_null(sp))) {
    c->quant.why = "a dense or 2:4-sparse format";
    return 0;
  }
  json_t *ign = json_object_get(q, "ignore");
  for (size_t i = 0; json_is_array(ign) && i < json_array_size(ign); i++) {
    const char *e = json_string_value(json_array_get(ign, i));
    if (e && !ct_ignore_harmless(e)) {
      c->quant.why = "ignore keeps more than lm_head, embeddings, routers "
                     "and vision layers at 16 bits";
      return 0;
    }
  }
  json_t *groups = json_object_get(q, "config_groups");
  if (!json_is_object(groups) || json_object_size(groups) == 0)
    return qerr(c, key, json_is_object(groups) ? "config_groups" : NULL, NULL,
                NULL,
                "compressed-tensors needs config_groups: {\"group_0\": "
                "{\"weights\": {\"num_bits\": ..., \"strategy\": ...}}}");
  const char *gname;
  json_t *g;
  bool first = true;
  json_object_foreach(groups, gname, g) {
    json_t *w = json_is_object(g) ? json_object_get(g, "weights") : NULL;
    if (!json_is_object(w)) {
      c->quant.why = "a config group without a weights scheme";
      return 0;
    }
    json_t *nb = json_object_get(w, "num_bits");
    if (!json_is_integer(nb) || json_integer_value(nb) < 1 ||
        json_integer_value(nb) > 16)
      return qerr(c, key, "config_groups", gname, "weights",
                  "weights.num_bits must be a whole number from 1 to 16");
    double b = (double)json_integer_value(nb), over = 0;
    const char *st = json_string_value(json_object_get(w, "strategy"));
    if (!st)
      st = "tensor";
    json_t *sym = json_object_get(w, "symmetric");
    bool asym = json_is_false(sym);
    if (strcmp(st, "group") == 0 || strcmp(st, "tensor_group") == 0) {
      json_t *gs = json_object_get(w, "group_size");
      if (!json_is_integer(gs) || json_integer_value(gs) < 1)
        return qerr(c, key, "config_groups", gname, "weights",
                    "weights.group_size must be a positive whole number for "
                    "the group strategies");
      double n = (double)json_integer_value(gs);
      over = strcmp(st, "group") == 0 ? (16 + (asym ? b : 0)) / n : 8 / n;
    } else if (strcmp(st, "block") == 0) {
      json_t *bs = json_object_get(w, "block_structure");
      if (!json_is_array(bs) || json_array_size(bs) != 2 ||
          !json_is_integer(json_array_get(bs, 0)) ||
          !json_is_integer(json_array_get(bs, 1)) ||
          json_integer_value(json_array_get(bs, 0)) < 1 ||
          json_integer_value(json_array_get(bs, 1)) < 1)
        return qerr(c, key, "config_groups", gname, "weights",
                    "weights.block_structure must be [rows, columns] "
                    "(positive whole numbers) for the block strategy");
      over = 16 / ((double)json_integer_value(json_array_get(bs, 0)) *
                   (double)json_integer_value(json_array_get(bs, 1)));
    } else if (strcmp(st, "tensor") != 0 && strcmp(st, "channel") != 0) {
      c->quant.why = "a weights strategy other than tensor, channel, group, "
                     "tensor_group or block";
      return 0;
    }
    if (!first && (b + over != *bits || b != *nominal)) {
      c->quant.why = "config groups of different widths";
      return 0;
    }
    *bits = b + over;
    *nominal = b;
    first = false;
  }
  return 1;
}

/* bitsandbytes configs written before quant_method existed (transformers
 * < 4.32; 8-bit saving since 4.27, 4-bit since 4.30) carry only
 * load_in_8bit / load_in_4bit. AutoQuantizationConfig.from_dict takes
 * either flag, when true, as bitsandbytes whatever quant_method says, and
 * raises only when neither is set and quant_method is absent. */
static bool bnb_legacy(json_t *q) {
  return py_truthy(json_object_get(q, "load_in_8bit")) ||
         py_truthy(json_object_get(q, "load_in_4bit"));
}

/* The method a quantization_config names (bnb_legacy's flags first), or
 * NULL: no quant_method string. */
static const char *quant_method(json_t *q) {
  if (bnb_legacy(q))
    return "bitsandbytes";
  return json_string_value(json_object_get(q, "quant_method"));
}

/* read(c, key, decl) with the config reader pointed at the composite
 * config's top level (c->outer, beside nested_config's object), then
 * pointed back. */
static int read_at_outer(Cfg *c,
                         int (*read)(Cfg *, const char *, json_t *),
                         const char *key, json_t *decl) {
  json_t *obj = c->obj, *outer = c->outer;
  JsonPath jp = c->cjp;
  c->obj = outer;
  c->cjp = c->outer_jp;
  c->outer = NULL;
  int rc = read(c, key, decl);
  c->obj = obj;
  c->cjp = jp;
  c->outer = outer;
  return rc;
}

/* quantization_config: the bits per weight, scales included, of the layers
 * the method covers. The formats are facts about the methods (here); which
 * layers each covers is the template's "covers": {"fp8": ["weights",
 * "experts"], "mxfp4": ["experts"], ...} ("weights": every w_bytes weight,
 * "experts": the routed experts' x_bytes). A method the template does not
 * list, or an unknown one, is reported as not modelled (weights at
 * --w-bits), not an error: the costs are still those of the layers. */
static int read_quantization(Cfg *c, const char *key, json_t *decl) {
  json_t *q = json_object_get(c->obj, key);
  if ((!q || json_is_null(q)) && c->outer) {
    /* a composite model (Gemma3ForConditionalGeneration,
     * Mistral3ForConditionalGeneration) keeps its quantization_config at
     * the top, beside text_config: read it there, errors located there */
    return read_at_outer(c, read_quantization, key, decl);
  }
  if (!q || json_is_null(q))
    return 0;
  if (!json_is_object(q))
    return cerr_at(c, key, "%s must be an object", key);
  const char *method = quant_method(q);
  if (!method)
    return cerr_at(c, key, "%s has no quant_method (a string)", key);
  c->quant.method = arena_strdup(c->arena, method);
  json_t *covers = json_object_get(decl, "covers");
  if (!json_is_object(covers))
    return terr(c, "a quantization declares 'covers': {\"method\": "
                   "[\"weights\", \"experts\"]}");
  json_t *list = json_object_get(covers, method);
  if (!list)
    return 0; /* not modelled */
  bool w = false, x = false;
  for (size_t i = 0; json_is_array(list) && i < json_array_size(list); i++) {
    const char *s = json_string_value(json_array_get(list, i));
    w = w || (s && strcmp(s, "weights") == 0);
    x = x || (s && strcmp(s, "experts") == 0);
  }
  double bits = 0, nominal = 0;
  if (strcmp(method, "fp8") == 0) {
    /* FP8 e4m3 weights, a float32 scale per weight_block_size block
     * (DeepSeek-V3: weight_scale_inv per 128 x 128) */
    json_t *bs = json_object_get(q, "weight_block_size");
    double blk = 0; /* per-tensor scale: negligible */
    if (bs && !json_is_null(bs)) {
      if (!json_is_array(bs) || json_array_size(bs) != 2 ||
          !json_is_integer(json_array_get(bs, 0)) ||
          !json_is_integer(json_array_get(bs, 1)) ||
          json_integer_value(json_array_get(bs, 0)) < 1 ||
          json_integer_value(json_array_get(bs, 1)) < 1)
        return cerr_at(c, key, "%s.weight_block_size must be [rows, columns] "
                               "(positive integers)", key);
      blk = (double)json_integer_value(json_array_get(bs, 0)) *
            (double)json_integer_value(json_array_get(bs, 1));
    }
    bits = 8 + (blk > 0 ? 32 / blk : 0);
    nominal = 8;
  } else if (strcmp(method, "mxfp4") == 0) {
    /* OCP MX FP4: 4-bit E2M1 elements, an 8-bit E8M0 scale per 32 */
    bits = 4 + 8.0 / 32;
    nominal = 4;
  } else if (strcmp(method, "gptq") == 0 || strcmp(method, "awq") == 0) {
    /* b-bit integers; per group of group_size input rows and per output
     * column a 16-bit scale and a b-bit zero point (qzeros) */
    double b = 4, g = 128;
    if (quant_number(c, q, key, "bits", 4, &b) < 0 ||
        quant_number(c, q, key, "group_size", 128, &g) < 0)
      return -1;
    if (!(b == 2 || b == 3 || b == 4 || b == 8))
      return cerr_at(c, key, "%s.bits is %g; GPTQ/AWQ use 2, 3, 4 or 8", key,
                     b);
    if (!(g == -1 || (g >= 1 && g == floor(g))))
      return cerr_at(c, key, "%s.group_size is %g; it must be -1 (per "
                             "column) or a positive whole number", key, g);
    bits = b + (g > 0 ? (16 + b) / g : 0);
    nominal = b;
  } else if (strcmp(method, "compressed-tensors") == 0) {
    int rc = ct_bits(c, q, key, &bits, &nominal);
    if (rc <= 0)
      return rc; /* an error, or not modelled */
  } else {
    return 0; /* listed by the template but no format known: not modelled */
  }
  c->quant.known = true;
  if (w) {
    c->quant.w_bits = bits;
    c->quant.nominal_w = (int)nominal;
  }
  if (x) {
    c->quant.x_bits = bits;
    c->quant.nominal_x = (int)nominal;
  }
  return 0;
}

/* A quantization_config the template does not declare (a template
 * written before its family had quantized checkpoints, or by the agent) is
 * still said: reported as not modelled, weights at --w-bits, rather than
 * passed over in silence. */
static void undeclared_quantization(Cfg *c) {
  if (c->quant.method)
    return;
  json_t *q = json_object_get(c->obj, "quantization_config");
  if ((!q || json_is_null(q)) && c->outer)
    q = json_object_get(c->outer, "quantization_config");
  if (!json_is_object(q))
    return;
  const char *m = quant_method(q);
  c->quant.method = arena_strdup(c->arena, m ? m : "unknown");
  c->quant.known = false;
}

/* One declared key: its value from the config, or its default. */
static int read_key(Cfg *c, const char *key, json_t *decl) {
  if (!json_is_object(decl))
    return terr(c, "a config key is declared by an object {\"doc\": ...}");
  const char *k;
  json_t *x;
  json_object_foreach(decl, k, x) {
    bool ok = false;
    for (size_t i = 0; i < LM_ARRAY_LEN(decl_members) && !ok; i++)
      ok = strcmp(k, decl_members[i]) == 0;
    if (!ok) {
      jp_key(&c->tjp, k);
      return terr(c,
                  "unknown member '%s' (expected: doc, default, null, "
                  "type, min, max, integer, array, equals, length, values, "
                  "covers, every, except, aliases, variable, outer)",
                  k);
    }
  }
  if (!json_is_string(json_object_get(decl, "doc")))
    return terr(c,
                "config key '%s' needs a 'doc' (what it is, where "
                "transformers reads it)",
                key);
  if (check_aliases(c, decl) < 0)
    return -1;
  json_t *outer = json_object_get(decl, "outer");
  if (outer && !json_is_true(outer)) {
    jp_key(&c->tjp, "outer");
    return terr(c, "outer is true (the key is read beside nested_config's "
                   "object, at the top level) or absent");
  }
  if (outer && c->outer) {
    /* a composite config's own key (Qwen3VLConfig.tie_word_embeddings:
     * lm_head belongs to the composite model), beside text_config: read
     * there, errors located there */
    return read_at_outer(c, read_key, key, decl);
  }
  json_t *tyv = json_object_get(decl, "type");
  const char *ty = tyv ? json_string_value(tyv) : "number";
  if (!ty ||
      (strcmp(ty, "number") && strcmp(ty, "flag") && strcmp(ty, "count") &&
       strcmp(ty, "layer_count") && strcmp(ty, "rope_scaling") &&
       strcmp(ty, "choice") && strcmp(ty, "quantization"))) {
    jp_key(&c->tjp, "type");
    return terr(c, "type must be number, flag, count, layer_count, choice, "
                   "rope_scaling or quantization");
  }
  if (json_object_get(decl, "null") && strcmp(ty, "number") != 0) {
    jp_key(&c->tjp, "null");
    return terr(c, "'null' (the value of an explicit null) is for number "
                   "keys; %s is a %s",
                key, ty);
  }
  if (strcmp(ty, "quantization") == 0)
    return read_quantization(c, key, decl);
  if (strcmp(ty, "rope_scaling") == 0)
    return read_rope_scaling(c, key);
  if (strcmp(ty, "choice") == 0)
    return read_choice(c, key, decl);
  if (!naming_is_identifier(key))
    return terr(c, "config key '%s' is not an identifier", key);
  for (int i = 0; i < V_COUNT; i++)
    if (strcmp(key, run_var_name[i]) == 0)
      return terr(c, "config key '%s' is a run variable name", key);
  if (c->n == CFG_MAX_KEYS)
    return terr(c, "more than %d config keys", CFG_MAX_KEYS);

  double v = 0;
  bool have = false, defaulted = false;
  if (strcmp(ty, "count") == 0) {
    if (read_count(c, key, decl, &have, &v) < 0)
      return -1;
  } else if (strcmp(ty, "layer_count") == 0) {
    if (read_layer_count(c, key, decl, &have, &v) < 0)
      return -1;
  } else {
    const char *ck = config_name(c, key, decl);
    json_t *cv = cfg_get(c, ck);
    if (cv && !json_is_null(cv)) {
      JsonPath p = c->cjp;
      jp_cfg(c, &p, ck);
      const char *nf = nonfinite_at(c, &p);
      if (nf)
        return cerr_at(c, ck, "%s is %s: it must be a finite number", ck, nf);
      if (strcmp(ty, "flag") == 0) {
        if (json_is_boolean(cv))
          v = json_is_true(cv);
        else if (json_is_number(cv) &&
                 (json_number_value(cv) == 0 || json_number_value(cv) == 1))
          v = json_number_value(cv);
        else
          return cerr_at(c, ck, "%s must be true or false", ck);
      } else {
        if (!json_is_number(cv))
          return cerr_at(c, ck, "%s must be a number, not %s", ck,
                         json_is_string(cv)    ? "a string"
                         : json_is_boolean(cv) ? "a boolean"
                                               : "an object or array");
        v = json_number_value(cv);
      }
      have = true;
    }
  }
  json_t *dflt = json_object_get(decl, "default");
  /* a same_as template's defaults replace the declared ones (the config
   * class of that model_type has other defaults, RWConfig's) */
  json_t *over = c->dflt_over ? json_object_get(c->dflt_over, key) : NULL;
  if (over)
    dflt = over;
  /* "null": what an explicit null means when the config class gives it a
   * meaning of its own (GPTJConfig's rotary_dim: None rotates the whole
   * width, absent is 64) */
  const char *dmember = "default";
  json_t *nullv = json_object_get(decl, "null");
  if (nullv && !have && !strcmp(ty, "number")) {
    json_t *raw = json_object_get(c->obj, key);
    if (raw && json_is_null(raw)) {
      dflt = nullv;
      dmember = "null";
      over = NULL;
    }
  }
  if (have && dflt && !over) {
    /* checked even when unused, so a template's mistake shows whatever
     * the config says */
    double unused;
    jp_key(&c->tjp, "default");
    if (eval_over_keys(c, dflt, &unused) < 0)
      return -1;
    jp_pop(&c->tjp);
  }
  if (nullv && dflt != nullv) { /* checked even when unused */
    double unused;
    jp_key(&c->tjp, "null");
    if (eval_over_keys(c, nullv, &unused) < 0)
      return -1;
    jp_pop(&c->tjp);
  }
  if (!have) {
    if (!dflt)
      return cerr_at(c, NULL,
                     "the config has no '%s', which the %s template needs "
                     "(%s)",
                     key, c->family,
                     json_string_value(json_object_get(decl, "doc")));
    jp_key(&c->tjp, dmember);
    if (eval_over_keys(c, dflt, &v) < 0)
      return -1;
    jp_pop(&c->tjp);
    defaulted = true;
  }
  /* the range */
  double lo = -INFINITY, hi = INFINITY;
  json_t *mn = json_object_get(decl, "min"), *mx = json_object_get(decl, "max");
  if ((mn && !json_is_number(mn)) || (mx && !json_is_number(mx)))
    return terr(c, "min and max must be numbers");
  if (mn)
    lo = json_number_value(mn);
  if (mx)
    hi = json_number_value(mx);
  bool integer = json_is_true(json_object_get(decl, "integer"));
  const char *why = NULL;
  char buf[64];
  if (!isfinite(v))
    why = "a finite number";
  else if (v < lo)
    why = (snprintf(buf, sizeof(buf), "at least %g", lo), buf);
  else if (v > hi)
    why = (snprintf(buf, sizeof(buf), "at most %g", hi), buf);
  else if (integer && v != floor(v))
    why = "a whole number";
  if (why) {
    if (defaulted && strcmp(dmember, "null") == 0)
      return cerr_at(c, key, "%s is null, which the %s template reads as %s "
                             "= %g; it must be %s",
                     key, c->family,
                     json_is_string(dflt) ? json_string_value(dflt) : "", v,
                     why);
    if (defaulted)
      return cerr_at(c, NULL,
                     "'%s' is absent and its default (%s) gives %g; it must "
                     "be %s",
                     key, json_is_string(dflt) ? json_string_value(dflt) : "",
                     v, why);
    const char *ck = config_name(c, key, decl);
    return cerr_at(c, ck, "%s is %g; it must be %s", ck, v, why);
  }
  /* where it came from, for --tree and --explain */
  VarOrigin *o = &c->origins[c->n];
  memset(o, 0, sizeof(*o));
  JsonPath p = c->cjp;
  if (have && strcmp(ty, "count") == 0) {
    const char *an = json_string_value(json_object_get(decl, "array"));
    o->array = arena_strdup(c->arena, an);
    jp_key(&p, an);
  } else {
    jp_cfg(c, &p, config_name(c, key, decl));
  }
  {
    /* present, or null (then the default applies: line kept) */
    long off = jloc_index_find(&c->ccfg, &p);
    int col;
    if (off >= 0)
      text_linecol(c->ctext, (size_t)off, &o->line, &col);
  }
  if (!have) {
    char d[64];
    if (json_is_string(dflt))
      o->dflt = arena_strdup(c->arena, json_string_value(dflt));
    else
      o->dflt = (report_number(json_is_true(dflt) ? 1
                               : json_is_number(dflt)
                                   ? json_number_value(dflt)
                                   : 0,
                               d, sizeof(d)),
                 arena_strdup(c->arena, d));
    o->by_null = strcmp(dmember, "null") == 0;
    JsonPath tp = c->tjp;
    jp_key(&tp, dmember);
    long off = over ? -1 : jloc_index_find(&c->tcfg, &tp);
    int col;
    if (off >= 0)
      text_linecol(c->ttext, (size_t)off, &o->dflt_line, &col);
  }
  c->names[c->n] = arena_strdup(c->arena, key);
  c->values[c->n++] = v;
  return 0;
}

/* constraints: [{"check": [lhs, op, rhs], "at": key, "doc": why}] */
static int check_constraints(Cfg *c, json_t *list) {
  if (!list)
    return 0;
  jp_key(&c->tjp, "constraints");
  if (!json_is_array(list))
    return terr(c, "constraints must be an array");
  for (size_t i = 0; i < json_array_size(list); i++) {
    json_t *it = json_array_get(list, i);
    jp_index(&c->tjp, (int)i);
    json_t *chk = json_object_get(it, "check");
    json_t *at = json_object_get(it, "at");
    json_t *doc = json_object_get(it, "doc");
    if (!json_is_object(it) || json_object_size(it) != 3 ||
        !json_is_array(chk) || json_array_size(chk) != 3 ||
        !json_is_string(json_array_get(chk, 1)) || !json_is_string(at) ||
        !json_is_string(doc))
      return terr(c, "a constraint is {\"check\": [lhs, op, rhs], \"at\": "
                     "\"key\", \"doc\": \"why\"}");
    double a, b;
    jp_key(&c->tjp, "check");
    jp_index(&c->tjp, 0);
    if (eval_over_keys(c, json_array_get(chk, 0), &a) < 0)
      return -1;
    jp_pop(&c->tjp);
    jp_index(&c->tjp, 2);
    if (eval_over_keys(c, json_array_get(chk, 2), &b) < 0)
      return -1;
    jp_pop(&c->tjp);
    const char *op = json_string_value(json_array_get(chk, 1));
    bool ok;
    if (strcmp(op, "divides") == 0)
      ok = a > 0 && fmod(b, a) == 0;
    else if (strcmp(op, "<=") == 0)
      ok = a <= b;
    else if (strcmp(op, "<") == 0)
      ok = a < b;
    else if (strcmp(op, "==") == 0)
      ok = a == b;
    else {
      jp_index(&c->tjp, 1);
      return terr(c, "op must be divides, <=, < or ==");
    }
    jp_pop(&c->tjp);
    if (!ok) {
      const char *l = json_is_string(json_array_get(chk, 0))
                          ? json_string_value(json_array_get(chk, 0))
                          : "";
      const char *r = json_is_string(json_array_get(chk, 2))
                          ? json_string_value(json_array_get(chk, 2))
                          : "";
      return cerr_at(c, json_string_value(at),
                     "%s (%g) %s %s (%g) does not hold: %s", l, a,
                     strcmp(op, "divides") == 0 ? "divides" : op, r, b,
                     json_string_value(doc));
    }
    jp_pop(&c->tjp);
  }
  jp_pop(&c->tjp);
  return 0;
}

/* ----- templates ----- */

char *arch_dir_default(void) {
  return path_join(lm_home(), "models/arch");
}

/* "a, b, c": the model types the directory has templates for. */
static void list_types(const char *dir, Buf *out) {
  DIR *d = opendir(dir);
  if (!d) {
    buf_puts(out, "(none: no directory ");
    buf_puts(out, dir);
    buf_puts(out, ")");
    return;
  }
  char *names[256];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 256) {
    size_t l = strlen(e->d_name);
    if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
      names[n++] = xstrndup(e->d_name, l - 5);
  }
  closedir(d);
  for (int i = 1; i < n; i++) /* insertion sort: a handful of names */
    for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      char *t = names[j];
      names[j] = names[j - 1];
      names[j - 1] = t;
    }
  for (int i = 0; i < n; i++) {
    buf_printf(out, "%s%s", i ? ", " : "", names[i]);
    free(names[i]);
  }
}

/* A model_type names a template file: letters, digits, '_' and '-',
 * starting with a letter (transformers' are lowercase, but configs written
 * for remote code carry others: Falcon's RefinedWeb, RefinedWebModel). */
static bool is_model_type(const char *s) {
  if (!isalpha((unsigned char)*s) || strlen(s) > 64)
    return false;
  for (; *s; s++)
    if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-'))
      return false;
  return true;
}

/* A Hub-style id ("org/name") from _name_or_path, else NULL. */
static const char *id_from_config(json_t *root) {
  const char *s = json_string_value(json_object_get(root, "_name_or_path"));
  if (!s || !*s || s[0] == '/' || s[0] == '.' || strchr(s, '\\'))
    return NULL;
  const char *slash = strchr(s, '/');
  if (!slash || strchr(slash + 1, '/'))
    return NULL;
  return s;
}

/* architectures[0] is the head class transformers builds. The templates
 * model the causal LM: XForCausalLM, GPT2LMHeadModel-style XLMHeadModel,
 * or XForConditionalGeneration's language model. Any other head (the
 * XForSequenceClassification of reward models: a num_labels x hidden
 * score in place of lm_head; the bare XModel of embedding models: no
 * lm_head) is said in the note, not modelled: the costs and the parameter
 * count stay the causal LM's, lm_head over the vocabulary included.
 * Returns the note to show (with the template's own note, if any), in a. */
static const char *head_note(Arena *a, json_t *root, const char *note) {
  json_t *arr = json_object_get(root, "architectures");
  const char *h = json_string_value(json_array_get(arr, 0));
  if (!h)
    return note;
  static const char *const lm[] = {"ForCausalLM", "LMHeadModel",
                                   "ForConditionalGeneration"};
  size_t hl = strlen(h);
  for (size_t i = 0; i < LM_ARRAY_LEN(lm); i++) {
    size_t l = strlen(lm[i]);
    if (hl >= l && strcmp(h + hl - l, lm[i]) == 0)
      return note;
  }
  Buf b;
  buf_init(&b);
  if (note)
    buf_printf(&b, "%s; ", note);
  buf_printf(&b,
             "architectures names %s, not a causal LM: the costs and the "
             "parameter count are the causal LM's (lm_head over the "
             "vocabulary included), not that head's",
             h);
  const char *r = arena_strdup(a, buf_str(&b));
  buf_free(&b);
  return r;
}

/* The id a huggingface_hub cache path names:
 * .../models--org--name/snapshots/<commit>/config.json -> org/name. */
static char *id_from_cache_path(const char *path) {
  const char *p = strstr(path, "models--");
  const char *snap = p ? strstr(p, "/snapshots/") : NULL;
  if (!snap)
    return NULL;
  Buf b;
  buf_init(&b);
  for (const char *q = p + 8; q < snap; q++) {
    if (q[0] == '-' && q[1] == '-') {
      buf_putc(&b, '/');
      q++;
    } else {
      buf_putc(&b, *q);
    }
  }
  char *id = buf_steal(&b);
  if (!hub_valid_id(id)) {
    free(id);
    return NULL;
  }
  return id;
}

/* A template's validation member: {"status": "validated" | "pending",
 * "by", "date", "notes"}; absent: written by hand (validated). Sets
 * *pending. */
static int read_validation(Cfg *c, json_t *troot, bool *pending) {
  json_t *v = json_object_get(troot, "validation");
  *pending = false;
  if (!v)
    return 0;
  jp_key(&c->tjp, "validation");
  if (!json_is_object(v))
    return terr(c, "validation is {\"status\": \"validated\" or "
                   "\"pending\", \"by\", \"date\", \"notes\"}");
  const char *k;
  json_t *x;
  json_object_foreach(v, k, x) {
    if (strcmp(k, "status") && strcmp(k, "by") && strcmp(k, "date") &&
        strcmp(k, "notes")) {
      jp_key(&c->tjp, k);
      return terr(c, "unknown member '%s' in validation (expected: status, "
                     "by, date, notes)",
                  k);
    }
    if (!json_is_string(x)) {
      jp_key(&c->tjp, k);
      return terr(c, "validation.%s must be a string", k);
    }
  }
  const char *st = json_string_value(json_object_get(v, "status"));
  if (!st || (strcmp(st, "validated") && strcmp(st, "pending"))) {
    if (st)
      jp_key(&c->tjp, "status");
    return terr(c, "validation.status must be \"validated\" or \"pending\"");
  }
  *pending = strcmp(st, "pending") == 0;
  jp_pop(&c->tjp);
  return 0;
}

/* model_from_config, or with ttext set: that template text (named tname)
 * instead of the file in arch_dir. */
/* A same_as template's "defaults": {"config key": number or boolean},
 * the defaults of the config class that model_type names where they
 * differ from the target template's (Falcon's RefinedWeb: RWConfig).
 * *out: a copy (the template's tree is freed when the target is read). */
static int alias_defaults(Cfg *c, json_t *troot, json_t **out) {
  json_t *d = json_object_get(troot, "defaults");
  if (!d)
    return 0;
  jp_key(&c->tjp, "defaults");
  if (!json_is_object(d) || json_object_size(d) == 0)
    return terr(c, "defaults is an object {\"config key\": number or "
                   "true/false}");
  const char *k;
  json_t *x;
  json_object_foreach(d, k, x) {
    if (!json_is_number(x) && !json_is_boolean(x)) {
      jp_key(&c->tjp, k);
      return terr(c, "defaults.%s must be a number or true/false (a "
                     "formula belongs in the target template)",
                  k);
    }
  }
  jp_pop(&c->tjp);
  *out = json_deep_copy(d);
  return 0;
}

/* The template a wraps or same_as names, at path: read (*text, NULL when
 * it could not be) and parsed, the template reader (c->tpath, ttext, tlen,
 * tdoc, tjp) pointed at it. Its tree, or NULL after an error. */
static json_t *open_target(Cfg *c, const char *path, char **text,
                           size_t *len) {
  if (!(*text = fs_read(path, len, c->err)))
    return NULL;
  c->tpath = path_display(path);
  c->ttext = *text;
  c->tlen = *len;
  c->tdoc = (JsonDoc){.file = c->tpath, .text = *text, .len = *len};
  jp_init(&c->tjp);
  return jdoc_parse(&c->tdoc, c->err);
}

/* A template that is a pointer (wraps, same_as) declares only the
 * members listed: an error at the first other one. */
static int only_members(Cfg *c, json_t *troot, const char *what,
                        const char *const *allowed, size_t n) {
  const char *k;
  json_t *x;
  json_object_foreach(troot, k, x) {
    size_t i = 0;
    while (i < n && strcmp(k, allowed[i]) != 0)
      i++;
    if (i < n)
      continue;
    Buf b;
    buf_init(&b);
    for (i = 0; i < n; i++)
      buf_printf(&b, "%s%s", i ? ", " : "", allowed[i]);
    jp_key(&c->tjp, k);
    int rc = terr(c, "a template with %s declares nothing else (unknown "
                     "member '%s'; expected: %s)",
                  what, k, buf_str(&b));
    buf_free(&b);
    return rc;
  }
  return 0;
}

/* A "wraps" template: {"format", "model_type", "description", "source",
 * "wraps": {"key": "text_config", "note": "...", "default_model_type":
 * "mistral"}}. Loads the template of the wrapped config's model_type (its
 * "model_type" member, else the default) into c->wrap_* and points the
 * config reader at that object. The target may not wrap, alias (same_as)
 * or nest itself. */
static int read_wraps(Cfg *c, json_t *troot, json_t *root,
                      const char *arch_dir, bool inline_template,
                      const char **note) {
  static const char *const members[] = {"format", "model_type", "wraps",
                                         "description", "source"};
  if (only_members(c, troot, "wraps", members, LM_ARRAY_LEN(members)) < 0)
    return -1;
  const char *k;
  json_t *x;
  json_t *w = json_object_get(troot, "wraps");
  jp_key(&c->tjp, "wraps");
  json_t *wk = json_object_get(w, "key"), *wn = json_object_get(w, "note");
  json_t *wd = json_object_get(w, "default_model_type");
  json_t *cd = json_object_get(w, "class_defaults");
  if (!json_is_object(w) || !json_is_string(wk) || !json_is_string(wn) ||
      (wd && !json_is_string(wd)) || (cd && !json_is_object(cd)) ||
      json_object_size(w) != (size_t)(2 + (wd != NULL) + (cd != NULL)))
    return terr(c, "wraps is {\"key\": \"text_config\", \"note\": \"what is "
                   "not counted\", \"default_model_type\": \"...\" "
                   "(optional), \"class_defaults\": {\"<model_type>\": "
                   "{\"<config key>\": number}} (optional)}");
  if (inline_template)
    return terr(c, "wraps is for template files in the template directory");
  /* copies: the wrapper's template is freed once the target replaces it,
   * and the config path keeps a pointer to the key */
  const char *key = arena_strdup(c->arena, json_string_value(wk));
  json_t *inner = json_object_get(root, key);
  if (!json_is_object(inner))
    return cerr_at(c, inner ? key : NULL,
                   "the %s template reads the language model from '%s', "
                   "which must be an object",
                   c->family, key);
  json_t *imt = json_object_get(inner, "model_type");
  const char *to = json_is_string(imt) ? json_string_value(imt)
                   : wd                ? json_string_value(wd)
                                       : NULL;
  if (!to) {
    return cerr_at(c, key, "%s has no model_type (a string) naming the "
                           "language model's family",
                   key);
  }
  char name[96];
  snprintf(name, sizeof(name), "%s.json", to);
  struct stat st;
  char *path = is_model_type(to) ? path_join(arch_dir, name) : NULL;
  if (!path || stat(path, &st) != 0) {
    free(path);
    JsonPath p = c->cjp;
    jp_key(&p, key);
    if (imt)
      jp_key(&p, "model_type");
    return jdoc_error(c->err, &c->cdoc, &p,
                      "%s.model_type '%s' has no template in %s (the %s "
                      "template reads its language model from %s)",
                      key, to, path_display(arch_dir), c->family, key);
  }
  size_t len;
  char *text;
  JsonDoc wdoc = c->tdoc; /* the wrapper's, for class_defaults' errors */
  json_t *t = open_target(c, path, &text, &len);
  if (!text) {
    free(path);
    return -1;
  }
  if (!t) {
    free(text);
    free(path);
    return -1;
  }
  json_t *tf = json_object_get(t, "format");
  json_t *tm = json_object_get(t, "model_type");
  if (!json_is_object(t) || !json_is_string(tf) ||
      strcmp(json_string_value(tf), "lm-predictor-template") != 0 ||
      !json_is_string(tm) || strcmp(json_string_value(tm), to) != 0 ||
      json_object_get(t, "same_as") || json_object_get(t, "wraps") ||
      json_object_get(t, "nested_config")) {
    terr(c, "the template a wraps names must be a template of model_type "
            "\"%s\" without same_as, wraps or nested_config",
         to);
    json_decref(t);
    free(text);
    free(path);
    return -1;
  }
  /* the language model's config class fills what text_config leaves out
   * (LlavaConfig: CONFIG_MAPPING[model_type](**text_config), so LlamaConfig's
   * defaults): class_defaults.<model_type>, each a key the target declares */
  json_t *over = cd ? json_object_get(cd, to) : NULL;
  if (over) {
    json_t *decls = json_object_get(t, "config");
    const char *bad = NULL;
    if (!json_is_object(over))
      bad = "";
    else
      json_object_foreach(over, k, x) if (!bad && (!json_is_number(x) ||
                                                   !json_object_get(decls, k)))
          bad = k;
    if (bad) {
      JsonPath p;
      jp_init(&p);
      jp_key(&p, "wraps");
      jp_key(&p, "class_defaults");
      jp_key(&p, to);
      if (*bad)
        jp_key(&p, bad);
      jdoc_error(c->err, &wdoc, &p,
                 "class_defaults.%s is {\"<config key>\": number}, each a "
                 "key %s.json declares",
                 to, to);
      json_decref(t);
      free(text);
      free(path);
      return -1;
    }
    c->wrap_over = json_incref(over);
  }
  c->wrap_root = t;
  c->wrap_text = text;
  c->wrap_path = path;
  c->outer = c->obj;
  c->outer_jp = c->cjp;
  c->obj = inner;
  jp_key(&c->cjp, key);
  *note = arena_strdup(c->arena, json_string_value(wn));
  return 0;
}

static Model *from_config(const char *cpath, const char *text, size_t len,
                          const char *id, const char *arch_dir,
                          const char *tname, const char *ttext_in,
                          size_t tlen_in, const Registry *reg, Error *err) {
  char *clean = replace_nonfinite(text, len);
  JsonDoc cleandoc = {.file = cpath, .text = clean, .len = len};
  json_t *root = jdoc_parse(&cleandoc, err);
  free(clean);
  if (!root) {
    /* the error's line as the user wrote it (offsets are the same) */
    if (err && err->line > 0) {
      const char *l = text;
      for (int n = 1; n < err->line && l; n++)
        if ((l = memchr(l, '\n', len - (size_t)(l - text))))
          l++;
      if (l) {
        const char *e = memchr(l, '\n', len - (size_t)(l - text));
        snprintf(err->context, sizeof(err->context), "%.*s",
                 (int)(e ? e - l : (long)(len - (size_t)(l - text))), l);
      }
    }
    return NULL;
  }
  Model *m = NULL;
  json_t *troot = NULL, *over = NULL;
  char *tpath = NULL, *ttext = NULL, *dir_owned = NULL;
  char *alias_text = NULL, *alias_path = NULL;
  JsonDoc alias_doc = {0};
  size_t tlen = 0;
  Arena arena;
  arena_init(&arena);
  Cfg c = {.cpath = cpath,
           .ctext = text,
           .clen = len,
           .obj = root,
           .arena = &arena,
           .err = err,
           .cdoc = {.file = cpath, .text = text, .len = len},
           .ccfg = {.text = text, .len = len, .depth = -1},
           .tcfg = {.depth = -1}};
  jp_init(&c.cjp);
  jp_init(&c.tjp);
  if (!json_is_object(root)) {
    jdoc_error(err, &c.cdoc, &c.cjp, "a config.json is a JSON object");
    goto out;
  }
  json_t *mt = json_object_get(root, "model_type");
  if (!json_is_string(mt)) {
    cerr_at(&c, "model_type",
            mt ? "model_type must be a string"
               : "no model_type: this is not a Hugging Face config.json "
                 "(nor a model file: those have \"format\": "
                 "\"lm-predictor-model\")");
    goto out;
  }
  c.family = json_string_value(mt);
  if (!arch_dir)
    arch_dir = dir_owned = arch_dir_default();
  Buf types;
  buf_init(&types);
  if (!is_model_type(c.family)) {
    list_types(arch_dir, &types);
    cerr_at(&c, "model_type", "unsupported model_type '%s' (supported: %s)",
            c.family, buf_str(&types));
    buf_free(&types);
    goto out;
  }
  {
    char name[80];
    snprintf(name, sizeof(name), "%s.json", c.family);
    tpath = ttext_in ? xstrdup(tname) : path_join(arch_dir, name);
  }
  struct stat st;
  if (ttext_in) {
    ttext = xstrndup(ttext_in, tlen_in);
    tlen = tlen_in;
  } else if (stat(tpath, &st) != 0) {
    list_types(arch_dir, &types);
    cerr_at(&c, "model_type",
            "unsupported model_type '%s' (supported: %s; a new family is a "
            "template in %s plus its modules' entries)",
            c.family, buf_str(&types), path_display(arch_dir));
    buf_free(&types);
    goto out;
  }
  buf_free(&types);
  if (!ttext && !(ttext = fs_read(tpath, &tlen, err)))
    goto out;
  c.tpath = ttext_in ? tpath : path_display(tpath);
  c.ttext = ttext;
  c.tlen = tlen;
  c.tdoc = (JsonDoc){.file = c.tpath, .text = ttext, .len = tlen};
  troot = jdoc_parse(&c.tdoc, err);
  if (!troot)
    goto out;
  if (!json_is_object(troot)) {
    terr(&c, "a template is a JSON object");
    goto out;
  }
  json_t *fmt = json_object_get(troot, "format");
  if (!json_is_string(fmt) ||
      strcmp(json_string_value(fmt), "lm-predictor-template") != 0) {
    if (fmt)
      jp_key(&c.tjp, "format");
    terr(&c, "a template has \"format\": \"lm-predictor-template\"");
    goto out;
  }
  json_t *tmt = json_object_get(troot, "model_type");
  if (!json_is_string(tmt) || strcmp(json_string_value(tmt), c.family) != 0) {
    if (tmt)
      jp_key(&c.tjp, "model_type");
    terr(&c, "the template's model_type must be \"%s\" (its file name)",
         c.family);
    goto out;
  }
  /* "wraps": an image-text model whose language model is a config of its
   * own under a key (Mistral3ForConditionalGeneration: text_config, of
   * model_type mistral): that model_type's template reads that object, and
   * the note says what is not counted */
  const char *wrap_note = NULL;
  if (json_object_get(troot, "wraps")) {
    if (read_wraps(&c, troot, root, arch_dir, ttext_in != NULL, &wrap_note) <
        0)
      goto out;
    free(ttext);
    free(tpath);
    ttext = c.wrap_text;
    tpath = c.wrap_path;
    tlen = c.tlen;
    json_decref(troot);
    troot = c.wrap_root;
    c.wrap_text = c.wrap_path = NULL;
    c.wrap_root = NULL;
    over = c.wrap_over; /* owned here from now on */
    c.wrap_over = NULL;
    c.dflt_over = over;
  }
  /* "same_as": another family's template serves this model_type (Kimi-K2's
   * kimi_k2 is DeepseekV3ForCausalLM): one level, nothing else declared */
  json_t *alias = json_object_get(troot, "same_as");
  if (alias) {
    static const char *const members[] = {
        "format", "model_type", "same_as", "description", "source",
        "defaults"};
    if (only_members(&c, troot, "same_as", members, LM_ARRAY_LEN(members)) <
        0)
      goto out;
    const char *k;
    json_t *x;
    if (alias_defaults(&c, troot, &over) < 0)
      goto out;
    jp_key(&c.tjp, "same_as");
    const char *to = json_string_value(alias);
    if (!to || !is_model_type(to) || strcmp(to, c.family) == 0 || ttext_in) {
      terr(&c, ttext_in ? "same_as is for template files in the template "
                          "directory"
                        : "same_as names another family's template (a "
                          "model_type: letters, digits, _ and -)");
      goto out;
    }
    char to_buf[80], name[96];
    snprintf(to_buf, sizeof(to_buf), "%s", to);
    to = to_buf; /* troot, which holds the string, is replaced below */
    snprintf(name, sizeof(name), "%s.json", to);
    char *apath = path_join(arch_dir, name);
    if (stat(apath, &st) != 0) {
      free(apath);
      terr(&c, "same_as: no template %s.json in the template directory", to);
      goto out;
    }
    char *atext;
    size_t alen;
    alias_doc = c.tdoc;
    json_t *aroot = open_target(&c, apath, &atext, &alen);
    if (!atext) {
      free(apath);
      goto out;
    }
    json_decref(troot);
    alias_text = ttext; /* kept: errors in "defaults" point into it */
    alias_path = tpath;
    tpath = apath;
    ttext = atext;
    tlen = alen;
    if (!(troot = aroot))
      goto out;
    json_t *afmt = json_object_get(troot, "format");
    json_t *amt = json_object_get(troot, "model_type");
    if (!json_is_object(troot) || !json_is_string(afmt) ||
        strcmp(json_string_value(afmt), "lm-predictor-template") != 0 ||
        !json_is_string(amt) || strcmp(json_string_value(amt), to) != 0 ||
        json_object_get(troot, "same_as")) {
      terr(&c, "the template that same_as names must be a template of "
               "model_type \"%s\" without same_as of its own",
           to);
      goto out;
    }
    json_t *tdecls = json_object_get(troot, "config");
    json_object_foreach(over, k, x) {
      if (!json_object_get(tdecls, k)) {
        JsonPath p;
        jp_init(&p);
        jp_key(&p, "defaults");
        jp_key(&p, k);
        jdoc_error(err, &alias_doc, &p,
                   "defaults: %s.json declares no config key '%s'", to, k);
        goto out;
      }
    }
    c.dflt_over = over;
  }
  bool pending;
  if (read_validation(&c, troot, &pending) < 0)
    goto out;
  /* nested_config: {"key": "text_config", "note": "..."} */
  const char *note = wrap_note;
  json_t *nest = json_object_get(troot, "nested_config");
  if (nest && wrap_note) {
    terr(&c, "a template that \"wraps\" names may not have nested_config");
    goto out;
  }
  if (nest) {
    jp_key(&c.tjp, "nested_config");
    json_t *nk = json_object_get(nest, "key");
    json_t *nn = json_object_get(nest, "note");
    /* note_at_top: the keys may also sit at the top level of the same
     * image-text model (Qwen2-VL, Qwen2.5-VL as first saved): the note
     * holds in both layouts */
    json_t *nt = json_object_get(nest, "note_at_top");
    if (!json_is_object(nest) || !json_is_string(nk) ||
        (nn && !json_is_string(nn)) || (nt && !json_is_boolean(nt)) ||
        (nt && !nn) ||
        json_object_size(nest) !=
            (size_t)(1 + (nn != NULL) + (nt != NULL))) {
      terr(&c, "nested_config is {\"key\": \"text_config\", \"note\": "
               "\"what is not counted\"[, \"note_at_top\": true]}");
      goto out;
    }
    jp_pop(&c.tjp);
    if (json_is_true(nt))
      note = json_string_value(nn);
    json_t *inner = json_object_get(root, json_string_value(nk));
    if (inner && !json_is_null(inner)) {
      if (!json_is_object(inner)) {
        cerr_at(&c, json_string_value(nk), "%s must be an object",
                json_string_value(nk));
        goto out;
      }
      c.outer = c.obj;
      c.outer_jp = c.cjp;
      c.obj = inner;
      jp_key(&c.cjp, json_string_value(nk));
      note = nn ? json_string_value(nn) : NULL;
    }
  }
  json_t *decls = json_object_get(troot, "config");
  jp_key(&c.tjp, "config");
  jloc_index_init(&c.tcfg, c.ttext, c.tlen, &c.tjp);
  jloc_index_init(&c.ccfg, c.ctext, c.clen, &c.cjp);
  if (!json_is_object(decls)) {
    terr(&c, "config must be an object declaring the config keys read");
    goto out;
  }
  const char *key;
  json_t *decl;
  json_object_foreach(decls, key, decl) {
    jp_key(&c.tjp, key);
    if (read_key(&c, key, decl) < 0)
      goto out;
    jp_pop(&c.tjp);
  }
  jp_pop(&c.tjp);
  if (check_constraints(&c, json_object_get(troot, "constraints")) < 0)
    goto out;
  undeclared_quantization(&c);
  char *cache_id = NULL;
  if (!id)
    id = id_from_config(root);
  if (!id)
    id = cache_id = id_from_cache_path(cpath);
  ModelVars vars = {.id = id ? id : path_display(cpath),
                    .family = c.family,
                    .note = head_note(&arena, root, note),
                    .names = c.names,
                    .values = c.values,
                    .n = c.n,
                    .quant = c.quant,
                    .config_path = path_display(cpath),
                    .origins = c.origins};
  m = model_load_json(c.tpath, ttext, tlen, troot, &vars, reg, err);
  free(cache_id);
  if (m) {
    /* the checkpoint's element width, for the size self-check: the
     * config's torch_dtype (transformers 5: dtype), 16 bits if absent */
    const char *dt = json_string_value(json_object_get(c.obj, "torch_dtype"));
    if (!dt)
      dt = json_string_value(json_object_get(c.obj, "dtype"));
    if (!dt)
      dt = json_string_value(json_object_get(root, "torch_dtype"));
    m->ckpt_elem_bytes = 2;
    if (dt && strcmp(dt, "float32") == 0)
      m->ckpt_elem_bytes = 4;
    else if (dt && strncmp(dt, "float8", 6) == 0)
      m->ckpt_elem_bytes = 1;
    if (pending)
      m->tmpl_pending = arena_strdup(&m->arena, c.tpath);
  }
out:
  jloc_index_free(&c.tcfg);
  jloc_index_free(&c.ccfg);
  json_decref(over);
  free(alias_text);
  free(alias_path);
  json_decref(troot);
  json_decref(root);
  free(ttext);
  free(tpath);
  free(dir_owned);
  arena_free(&arena);
  return m;
}

Model *model_from_config(const char *cpath, const char *text, size_t len,
                         const char *id, const char *arch_dir,
                         const Registry *reg, Error *err) {
  return from_config(cpath, text, len, id, arch_dir, NULL, NULL, 0, reg, err);
}

Model *model_from_template(const char *cpath, const char *text, size_t len,
                           const char *id, const char *tname,
                           const char *ttext, size_t tlen,
                           const Registry *reg, Error *err) {
  return from_config(cpath, text, len, id, NULL, tname, ttext, tlen, reg, err);
}

/* ----- the entry point ----- */

/* A model file has "format": "lm-predictor-model", or, written before the
 * member existed, "layers" and no "model_type". */
static bool is_model_file(json_t *r) {
  if (!json_is_object(r))
    return false;
  json_t *f = json_object_get(r, "format");
  return (f && json_is_string(f) &&
          strcmp(json_string_value(f), "lm-predictor-model") == 0) ||
         (!json_object_get(r, "model_type") && json_object_get(r, "layers"));
}

Model *model_open(const char *arg, const ModelOpenOpts *o, const Registry *reg,
                  Error *err) {
  ModelOpenOpts dflt = {0};
  if (!o)
    o = &dflt;
  struct stat st;
  if (stat(arg, &st) == 0) {
    char *path =
        S_ISDIR(st.st_mode) ? path_join(arg, "config.json") : xstrdup(arg);
    size_t len;
    char *text = fs_read(path, &len, err);
    Model *m = NULL;
    if (text) {
      /* parsed once: a model file goes on from this tree; anything else
       * (a config, which may carry NaN, or malformed text) is read as a
       * config, whose parser reports syntax errors */
      json_t *root = jdoc_loadb(text, len);
      if (is_model_file(root))
        m = model_load_json(path, text, len, root, NULL, reg, err);
      else
        m = model_from_config(path, text, len, NULL, o->arch_dir, reg, err);
      json_decref(root);
      if (m && m->from_config) {
        char *dir = S_ISDIR(st.st_mode) ? xstrdup(arg) : NULL;
        if (!dir) {
          const char *sl = strrchr(path, '/');
          dir = sl ? xstrndup(path, (size_t)(sl - path)) : xstrdup(".");
        }
        hub_read_index(m, dir);
        free(dir);
      }
    } else if (S_ISDIR(st.st_mode) && err) {
      err_clear(err);
      err_file(err, arg, "a directory without config.json");
    }
    free(text);
    free(path);
    return m;
  }
  return hub_open_model(arg, o, reg, err);
}

int config_locate(const char *arg, ConfigText *out, Error *err) {
  memset(out, 0, sizeof(*out));
  struct stat st;
  if (stat(arg, &st) != 0)
    return hub_config_text(arg, out, err);
  bool dir = S_ISDIR(st.st_mode);
  out->path = dir ? path_join(arg, "config.json") : xstrdup(arg);
  if (!(out->text = fs_read(out->path, &out->len, err))) {
    if (dir && err) {
      err_clear(err);
      err_file(err, arg, "a directory without config.json");
    }
    config_text_free(out);
    return -1;
  }
  if (dir) {
    out->dir = xstrdup(arg);
  } else {
    const char *sl = strrchr(out->path, '/');
    out->dir = sl ? xstrndup(out->path, (size_t)(sl - out->path)) : xstrdup(".");
  }
  json_t *root = json_loadb(out->text, out->len, 0, NULL);
  bool model_file = is_model_file(root);
  json_decref(root);
  if (model_file) {
    err_file(err, out->path,
             "a model file, not a Hugging Face config.json: --arch writes the "
             "template of a config's model_type");
    config_text_free(out);
    return -1;
  }
  return 0;
}

void config_text_free(ConfigText *c) {
  if (!c)
    return;
  free(c->path);
  free(c->text);
  free(c->id);
  free(c->dir);
  memset(c, 0, sizeof(*c));
}

int config_model_type(const ConfigText *ct, char *out, size_t outsz,
                      Error *err) {
  char *clean = replace_nonfinite(ct->text, ct->len);
  JsonDoc doc = {.file = ct->path, .text = clean, .len = ct->len};
  json_t *root = jdoc_parse(&doc, err);
  int rc = -1;
  JsonPath p;
  jp_init(&p);
  doc.text = ct->text;
  if (!root)
    goto out;
  json_t *mt = json_object_get(root, "model_type");
  if (mt)
    jp_key(&p, "model_type");
  if (!json_is_string(mt)) {
    jdoc_error(err, &doc, &p,
               mt ? "model_type must be a string"
                  : "no model_type: this is not a Hugging Face config.json");
    goto out;
  }
  if (!is_model_type(json_string_value(mt))) {
    jdoc_error(err, &doc, &p,
               "model_type '%s' is not a family name (lowercase letters, "
               "digits and '_', at most 64)",
               json_string_value(mt));
    goto out;
  }
  snprintf(out, outsz, "%s", json_string_value(mt));
  rc = 0;
out:
  json_decref(root);
  free(clean);
  return rc;
}
