/* model.c: architecture files (models/<model>.json) -> Model.
 *
 * A model file is one root layer (its class, parameters and `layers`, the
 * root's sub-layers) plus the model id and config values. Each layer names
 * its Hugging Face module name, class, parameter values and optional
 * sub_layers and repeat. Parameter values are numbers or templates in the
 * formula language over run variables (B, S, T, L, widths) and config
 * values; they are parsed, checked and compiled here, once per load.
 *
 * Everything is checked strictly (unknown members, missing or extra
 * parameters, unknown classes, bad values, nesting depth) and every error
 * points into the file.
 */
#include "runtime.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

/* Members of a template's top level (config.c reads format, model_type,
 * config, constraints, nested_config; this file the architecture). */
const char *const tmpl_members[TMPL_NMEMBERS] = {
    "format",     "model_type", "description", "source", "validation", "config",
    "constraints", "nested_config", "class",   "parameters", "layers"};

const char *const run_var_name[V_COUNT] = {
    "B",       "S",      "T",      "L",
    "w_bytes", "a_bytes", "kv_bytes", "sram_bytes",
    "e_bytes", "x_bytes", "decode",   "expert_balance",
    "active_only"};

typedef struct Loader {
  Model *m;
  const Registry *reg;
  Error *err;
  JsonPath path;
  bool *known; /* per variable: a config constant */
  const ModelVars *vars; /* template mode: the config values, else NULL */
  HashMap progs; /* formula text -> its compiled Prog (in m->arena): the
                    variables and which are constants are fixed for the
                    whole load, so one text compiles to one Prog */
} Loader;

static int lerr(Loader *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int lerr(Loader *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jdoc_verror(L->err, &L->m->doc, &L->path, fmt, ap);
  va_end(ap);
  return -1;
}

/* Only these members may appear in an object. */
static int check_members(Loader *L, json_t *obj, const char *const *allowed,
                         int n, const char *what) {
  const char *key;
  json_t *val;
  json_object_foreach(obj, key, val) {
    bool ok = false;
    for (int i = 0; i < n && !ok; i++)
      ok = strcmp(key, allowed[i]) == 0;
    if (!ok) {
      Buf b;
      buf_init(&b);
      for (int i = 0; i < n; i++)
        buf_printf(&b, "%s%s", i ? ", " : "", allowed[i]);
      jp_key(&L->path, key);
      lerr(L, "unknown member '%s' in %s (expected: %s)", key, what,
           buf_str(&b));
      buf_free(&b);
      return -1;
    }
  }
  return 0;
}

static bool is_layer_name(const char *s) {
  if (!*s)
    return false;
  for (; *s; s++)
    if (!(isalnum((unsigned char)*s) || *s == '_'))
      return false;
  return true;
}

static int load_config(Loader *L, json_t *cfg) {
  Model *m = L->m;
  int n = (int)json_object_size(cfg);
  m->nvars = V_COUNT + n;
  m->var_names = arena_alloc(&m->arena, sizeof(char *) * (size_t)m->nvars);
  m->var_values = arena_alloc(&m->arena, sizeof(double) * (size_t)m->nvars);
  L->known = arena_alloc(&m->arena, sizeof(bool) * (size_t)m->nvars);
  for (int i = 0; i < V_COUNT; i++)
    m->var_names[i] = run_var_name[i];
  int i = V_COUNT;
  const char *key;
  json_t *val;
  jp_key(&L->path, "config");
  json_object_foreach(cfg, key, val) {
    jp_key(&L->path, key);
    if (!naming_is_identifier(key))
      return lerr(L, "config key '%s' is not an identifier", key);
    for (int k = 0; k < V_COUNT; k++)
      if (strcmp(key, run_var_name[k]) == 0)
        return lerr(L, "config key '%s' is a run variable name", key);
    if (!json_is_number(val) && !json_is_boolean(val))
      return lerr(L, "config value '%s' must be a number or a boolean, not %s",
                  key,
                  json_is_string(val) ? "a string"
                  : json_is_null(val) ? "null"
                                      : "an object or array");
    double v = json_is_boolean(val) ? (json_is_true(val) ? 1 : 0)
                                    : json_number_value(val);
    if (!isfinite(v) || v < 0)
      return lerr(L, "config value '%s' must be a non-negative number", key);
    m->var_names[i] = arena_strdup(&m->arena, key);
    m->var_values[i] = v;
    L->known[i] = true;
    i++;
    jp_pop(&L->path);
  }
  jp_pop(&L->path);
  return 0;
}

/* Template mode: the values come from a Hugging Face config, already
 * checked against the template's declarations (config.c). */
static void load_vars(Loader *L) {
  Model *m = L->m;
  const ModelVars *v = L->vars;
  m->nvars = V_COUNT + v->n;
  m->var_names = arena_alloc(&m->arena, sizeof(char *) * (size_t)m->nvars);
  m->var_values = arena_alloc(&m->arena, sizeof(double) * (size_t)m->nvars);
  L->known = arena_alloc(&m->arena, sizeof(bool) * (size_t)m->nvars);
  for (int i = 0; i < V_COUNT; i++)
    m->var_names[i] = run_var_name[i];
  for (int i = 0; i < v->n; i++) {
    m->var_names[V_COUNT + i] = arena_strdup(&m->arena, v->names[i]);
    m->var_values[V_COUNT + i] = v->values[i];
    L->known[V_COUNT + i] = true;
  }
  if (v->origins && v->config_path) {
    VarOrigin *o = arena_alloc(&m->arena, sizeof(VarOrigin) * (size_t)m->nvars);
    memset(o, 0, sizeof(VarOrigin) * (size_t)m->nvars);
    for (int i = 0; i < v->n; i++) {
      const VarOrigin *s = &v->origins[i];
      o[V_COUNT + i] = *s;
      o[V_COUNT + i].array = s->array ? arena_strdup(&m->arena, s->array) : NULL;
      o[V_COUNT + i].dflt = s->dflt ? arena_strdup(&m->arena, s->dflt) : NULL;
      o[V_COUNT + i].choice =
          s->choice ? arena_strdup(&m->arena, s->choice) : NULL;
      o[V_COUNT + i].value = s->value ? arena_strdup(&m->arena, s->value) : NULL;
    }
    m->origin = o;
    m->config_path = arena_strdup(&m->arena, v->config_path);
  }
}

/* A number or a template; compiled to a Prog. */
static int load_value(Loader *L, json_t *val, Prog *out, bool config_only,
                      const char *what) {
  Model *m = L->m;
  if (json_is_number(val)) {
    double v = json_number_value(val);
    if (!isfinite(v) || v < 0)
      return lerr(L, "%s must not be negative", what);
    Instr *in = arena_alloc(&m->arena, sizeof(Instr));
    in->op = 0; /* PROG_CONST */
    in->k = v;
    out->code = in;
    out->len = 1;
    out->depth = 1;
    return 0;
  }
  if (!json_is_string(val))
    return lerr(L, "%s must be a number or a formula string", what);
  const Prog *seen =
      config_only ? NULL : hashmap_get(&L->progs, json_string_value(val));
  if (seen) { /* compiled before in this load, without an error */
    *out = *seen;
    return 0;
  }
  FormulaSrc src = {.text = arena_strdup(&m->arena, json_string_value(val)),
                    .doc = &m->doc,
                    .path = &L->path};
  Node *n = parse_formula(&m->arena, &src, L->err);
  if (!n)
    return -1;
  Scope sc = {.names = config_only ? m->var_names + V_COUNT : m->var_names,
              .nnames = config_only ? m->nvars - V_COUNT : m->nvars,
              .modules = NULL,
              .what = config_only ? "config value" : "variable"};
  if (check_formula(n, &src, &sc, L->err) < 0)
    return -1;
  if (config_only) {
    /* indexes were resolved against config names only: shift them */
    double v = node_eval(n, m->var_values + V_COUNT, M_FLOPS);
    Instr *in = arena_alloc(&m->arena, sizeof(Instr));
    in->k = v;
    out->code = in;
    out->len = 1;
    out->depth = 1;
    return 0;
  }
  Error perr;
  err_clear(&perr);
  if (prog_compile(&m->arena, n, m->var_values, L->known, out, &perr) < 0)
    return lerr(L, "%s", perr.msg);
  Prog *keep = arena_alloc(&m->arena, sizeof(Prog));
  *keep = *out;
  hashmap_add(&L->progs, json_string_value(val), keep);
  return 0;
}

static int load_layer(Loader *L, json_t *obj, Layer *parent, Layer **out,
                      int depth);

/* snprintf(out, sz, "%s'%s'", prefix, name) without printf (a model's
 * parameters each name theirs, for the errors, on every run). */
static void quoted(char *out, size_t sz, const char *prefix, const char *name) {
  const char *parts[] = {prefix, "'", name, "'"};
  size_t at = 0;
  for (int i = 0; i < 4; i++)
    str_put(out, sz, &at, parts[i]);
  out[at] = '\0';
}

/* A value over config values only (`when`, `tied`), at member key; absent
 * gives dflt. */
static int config_scalar(Loader *L, json_t *obj, const char *key, double dflt,
                         double *out) {
  json_t *v = json_object_get(obj, key);
  *out = dflt;
  if (!v)
    return 0;
  jp_key(&L->path, key);
  Prog p;
  char what[64];
  quoted(what, sizeof(what), "", key);
  if (load_value(L, v, &p, true, what) < 0)
    return -1;
  *out = p.code[0].k;
  jp_pop(&L->path);
  return 0;
}

/* False when the layer object says it is absent: `when` is 0. */
static int layer_present(Loader *L, json_t *obj, bool *present) {
  double w;
  if (config_scalar(L, obj, "when", 1, &w) < 0)
    return -1;
  *present = w != 0;
  return 0;
}


/* Keep the layer's place in the file for errors found later, at
 * evaluation time (the JSON keys die with the Jansson tree). */
static void keep_path(Model *m, const JsonPath *from, JsonPath *to) {
  *to = *from;
  int n = from->n < JSONPATH_MAX ? from->n : JSONPATH_MAX;
  for (int i = 0; i < n; i++)
    if (from->c[i].key)
      to->c[i].key = arena_strdup(&m->arena, from->c[i].key);
}

/* A value that is known at load time must already obey the module's
 * declared range. */
static int check_const_arg(Loader *L, const Layer *ly, int i) {
  double v;
  if (!prog_const(&ly->args[i], &v))
    return 0;
  const ModuleDef *md = ly->mod->def;
  const char *why = db_param_violation(md, i, v);
  if (why)
    return lerr(L, "layer '%s' (%s): parameter '%s' is %g; it %s",
                ly->path[0] ? ly->path : "(root)", md->short_name,
                md->params[i], v, why);
  return 0;
}

static int load_params(Loader *L, Layer *ly, json_t *params) {
  const ModuleDef *md = ly->mod->def;
  Model *m = L->m;
  ly->args = arena_alloc(&m->arena, sizeof(Prog) * (size_t)(md->nparams + 1));
  ly->arg_text =
      arena_alloc(&m->arena, sizeof(char *) * (size_t)(md->nparams + 1));
  if (params && !json_is_object(params)) {
    jp_key(&L->path, "parameters");
    return lerr(L, "parameters must be an object");
  }
  jp_key(&L->path, "parameters");
  for (int i = 0; i < md->nparams; i++) {
    json_t *v = params ? json_object_get(params, md->params[i]) : NULL;
    if (!v) {
      Buf b;
      buf_init(&b);
      for (int k = 0; k < md->nparams; k++)
        buf_printf(&b, "%s%s", k ? ", " : "", md->params[k]);
      if (!params)
        jp_pop(&L->path);
      lerr(L, "layer '%s' (%s) is missing parameter '%s' (declared: %s)",
           ly->path, md->short_name, md->params[i], buf_str(&b));
      buf_free(&b);
      return -1;
    }
    jp_key(&L->path, md->params[i]);
    char num[64];
    if (json_is_number(v))
      report_number(json_number_value(v), num, sizeof(num));
    ly->arg_text[i] = arena_strdup(
        &m->arena, json_is_string(v) ? json_string_value(v)
                   : json_is_number(v) ? num : "?");
    char what[300];
    quoted(what, sizeof(what), "parameter ", md->params[i]);
    if (load_value(L, v, &ly->args[i], false, what) < 0 ||
        check_const_arg(L, ly, i) < 0)
      return -1;
    jp_pop(&L->path);
  }
  if (params) {
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v) {
      bool declared = false;
      for (int i = 0; i < md->nparams && !declared; i++)
        declared = strcmp(md->params[i], key) == 0;
      if (!declared) {
        jp_key(&L->path, key);
        return lerr(L, "layer '%s' (%s) has no parameter '%s'", ly->path,
                    md->short_name, key);
      }
    }
  }
  jp_pop(&L->path);
  return 0;
}

static RegModule *resolve_class(Loader *L, const char *cls, const char *path) {
  RegModule *mod = reg_get(L->reg, cls);
  if (mod)
    return mod;
  const char *last = strrchr(cls, '.');
  int count = 0;
  RegModule *hint = reg_get_short(L->reg, last ? last + 1 : cls, &count);
  jp_key(&L->path, "class");
  if (hint)
    lerr(L, "layer '%s': unknown class '%s' (did you mean %s?)", path, cls,
         hint->def->full_name);
  else
    lerr(L,
         "layer '%s': class '%s' is not in the module database; analyse it "
         "with `lmgen %s`",
         path, cls, cls);
  return NULL;
}

static int load_item_list(Loader *L, Layer *ly, json_t *subs, int depth,
                          bool *placed, HashMap *names);

static int load_items(Loader *L, Layer *ly, json_t *subs, int depth) {
  Model *m = L->m;
  const ModuleDef *md = ly->mod->def;
  jp_key(&L->path, "sub_layers");
  if (!json_is_array(subs))
    return lerr(L, "sub_layers must be an array");
  if (md->kind == MK_BASIC && json_array_size(subs) > 0)
    return lerr(L, "layer '%s': %s is a basic module and cannot have "
                   "sub_layers",
                ly->path, md->short_name);
  ly->nitems = (int)json_array_size(subs);
  ly->items = arena_alloc(&m->arena, sizeof(Item) * (size_t)(ly->nitems + 1));
  bool *placed = arena_alloc(&m->arena, sizeof(bool) * (size_t)(md->nops + 1));
  HashMap names; /* sibling layer paths: the duplicate check is O(n) */
  hashmap_init(&names);
  int rc = load_item_list(L, ly, subs, depth, placed, &names);
  hashmap_free(&names);
  if (rc < 0)
    return -1;
  jp_pop(&L->path);
  return 0;
}

static int load_item_list(Loader *L, Layer *ly, json_t *subs, int depth,
                          bool *placed, HashMap *names) {
  const ModuleDef *md = ly->mod->def;
  int total = ly->nitems, n = 0; /* n: items kept */
  for (int i = 0; i < total; i++) {
    json_t *it = json_array_get(subs, (size_t)i);
    jp_index(&L->path, i);
    if (!json_is_object(it))
      return lerr(L, "a sub-layer must be an object");
    json_t *op = json_object_get(it, "op");
    if (op) {
      static const char *const allowed[] = {"op", "when"};
      if (check_members(L, it, allowed, 2, "an operation placement") < 0)
        return -1;
      bool present;
      if (layer_present(L, it, &present) < 0)
        return -1;
      jp_key(&L->path, "op");
      if (!json_is_string(op))
        return lerr(L, "op must be a string");
      int found = -1;
      for (int k = 0; k < md->nops && found < 0; k++)
        if (strcmp(md->ops[k].name, json_string_value(op)) == 0)
          found = k;
      if (found < 0) {
        Buf b;
        buf_init(&b);
        for (int k = 0; k < md->nops; k++)
          buf_printf(&b, "%s%s", k ? ", " : "", md->ops[k].name);
        lerr(L, "%s has no atomic operation '%s'%s%s%s", md->short_name,
             json_string_value(op), md->nops ? " (it has: " : "",
             buf_str(&b), md->nops ? ")" : "");
        buf_free(&b);
        return -1;
      }
      if (placed[found])
        return lerr(L, "operation '%s' is placed twice", md->ops[found].name);
      placed[found] = true;
      ly->items[n].op = found;
      ly->items[n].omit = !present; /* placed, so not appended either */
      jp_pop(&L->path);
    } else {
      ly->items[n].op = -1;
      ly->items[n].omit = false;
      if (load_layer(L, it, ly, &ly->items[n].layer, depth + 1) < 0)
        return -1;
      if (!ly->items[n].layer) { /* `when` 0 or repeat 0: left out */
        jp_pop(&L->path);
        continue;
      }
      /* the path: name and kind (two kinds of a layer may share a name) */
      if (hashmap_add(names, ly->items[n].layer->path, NULL) < 0) {
        jp_key(&L->path, "name");
        return lerr(L, "layer '%s' appears twice", ly->items[n].layer->path);
      }
    }
    n++;
    jp_pop(&L->path);
  }
  ly->nitems = n;
  return 0;
}

static int load_repeat(Loader *L, Layer *ly, json_t *rep) {
  ly->repeat = 1;
  if (!rep)
    return 0;
  jp_key(&L->path, "repeat");
  char num[64];
  if (json_is_number(rep))
    report_number(json_number_value(rep), num, sizeof(num));
  ly->repeat_text = arena_strdup(&L->m->arena,
                                 json_is_string(rep)   ? json_string_value(rep)
                                 : json_is_number(rep) ? num
                                                       : "?");
  Prog p;
  if (load_value(L, rep, &p, true, "repeat") < 0)
    return -1;
  double v = p.code[0].k;
  double lo = L->vars ? 0 : 1; /* a template may leave a kind of layer out */
  if (!(v >= lo) || v != lm_floor(v) || v > 1e6)
    return lerr(L, "repeat must be a whole number from %g to 1000000, not %g",
                lo, v);
  ly->repeat = v;
  jp_pop(&L->path);
  return 0;
}

static int load_layer(Loader *L, json_t *obj, Layer *parent, Layer **out,
                      int depth) {
  Model *m = L->m;
  if (depth > MODEL_MAX_DEPTH)
    return lerr(L, "layers nested deeper than %d", MODEL_MAX_DEPTH);
  static const char *const allowed[] = {
      "name",   "class", "parameters", "sub_layers", "repeat",
      "description", "when", "tied", "kind"};
  *out = NULL;
  if (check_members(L, obj, allowed, LM_ARRAY_LEN(allowed), "a layer") < 0)
    return -1;
  bool present;
  if (layer_present(L, obj, &present) < 0)
    return -1;
  if (!present)
    return 0;
  json_t *name = json_object_get(obj, "name");
  json_t *cls = json_object_get(obj, "class");
  if (!name || !json_is_string(name) || !is_layer_name(json_string_value(name))) {
    if (name)
      jp_key(&L->path, "name");
    return lerr(L, name ? "layer name must be letters, digits and '_'"
                        : "layer has no 'name' (and is not an {\"op\": ...} "
                          "placement)");
  }
  Layer *ly = arena_alloc(&m->arena, sizeof(Layer));
  ly->name = arena_strdup(&m->arena, json_string_value(name));
  ly->depth = depth;
  json_t *kind = json_object_get(obj, "kind");
  if (kind) {
    jp_key(&L->path, "kind");
    if (!json_is_string(kind) || !is_layer_name(json_string_value(kind)))
      return lerr(L, "kind must be letters, digits and '_' (e.g. \"sliding\")");
    ly->kind = arena_strdup(&m->arena, json_string_value(kind));
    jp_pop(&L->path);
  }
  {
    Buf b;
    buf_init(&b);
    if (parent && parent->path[0])
      buf_printf(&b, "%s.", parent->path);
    buf_puts(&b, ly->name);
    if (ly->kind)
      buf_printf(&b, "[%s]", ly->kind);
    ly->path = arena_strdup(&m->arena, buf_str(&b));
    buf_free(&b);
  }
  if (!ly->kind && parent)
    ly->kind = parent->kind; /* a sub-layer belongs to its layer's kind */
  if (!cls || !json_is_string(cls)) {
    if (cls)
      jp_key(&L->path, "class");
    return lerr(L, "layer '%s' has no class (a string)", ly->path);
  }
  ly->cls = arena_strdup(&m->arena, json_string_value(cls));
  if (!(ly->mod = resolve_class(L, ly->cls, ly->path)))
    return -1;
  keep_path(m, &L->path, &ly->jp);
  if (load_repeat(L, ly, json_object_get(obj, "repeat")) < 0)
    return -1;
  if (ly->repeat == 0)
    return 0; /* no layer of this kind in this model */
  double tied;
  if (config_scalar(L, obj, "tied", 0, &tied) < 0)
    return -1;
  ly->tied = tied != 0 || (parent && parent->tied);
  ly->count = (parent ? parent->count : 1) * ly->repeat;
  if (load_params(L, ly, json_object_get(obj, "parameters")) < 0)
    return -1;
  json_t *subs = json_object_get(obj, "sub_layers");
  if (subs && load_items(L, ly, subs, depth) < 0)
    return -1;
  *out = ly;
  return 0;
}

/* The root: the file's top level is the outermost module. */
static int load_root(Loader *L, json_t *root) {
  Model *m = L->m;
  static const char *const allowed[] = {"format",  "model",      "description",
                                        "source",  "config",     "class",
                                        "parameters", "layers"};
  if (!json_is_object(root))
    return lerr(L, "a model file is a JSON object");
  if (L->vars) {
    /* the architecture part of a template; config.c read the rest */
    if (check_members(L, root, tmpl_members, TMPL_NMEMBERS, "a template") < 0)
      return -1;
    long bad = str_find_control(L->vars->id, strlen(L->vars->id));
    if (bad >= 0)
      return lerr(L, "the model id contains a control character (byte 0x%02x "
                     "at offset %ld): it is printed to the terminal",
                  (unsigned char)L->vars->id[bad], bad);
    m->id = arena_strdup(&m->arena, L->vars->id);
    load_vars(L);
    static const char *const required[] = {"class", "layers"};
    for (size_t i = 0; i < LM_ARRAY_LEN(required); i++)
      if (!json_object_get(root, required[i]))
        return lerr(L, "missing required member '%s'", required[i]);
  } else {
    if (check_members(L, root, allowed, LM_ARRAY_LEN(allowed),
                      "a model file") < 0)
      return -1;
    json_t *fmt = json_object_get(root, "format");
    if (fmt && !(json_is_string(fmt) &&
                 strcmp(json_string_value(fmt), "lm-predictor-model") == 0)) {
      jp_key(&L->path, "format");
      return lerr(L, "format must be \"lm-predictor-model\"");
    }
    static const char *const required[] = {"model", "config", "class",
                                           "layers"};
    for (size_t i = 0; i < LM_ARRAY_LEN(required); i++)
      if (!json_object_get(root, required[i]))
        return lerr(L, "missing required member '%s'", required[i]);
    json_t *id = json_object_get(root, "model");
    if (!json_is_string(id)) {
      jp_key(&L->path, "model");
      return lerr(L, "model must be a string (the model id)");
    }
    long bad = str_find_control(json_string_value(id), json_string_length(id));
    if (bad >= 0) {
      jp_key(&L->path, "model");
      return lerr(L,
                  "the model id contains a control character (byte 0x%02x at "
                  "offset %ld): it is printed to the terminal",
                  (unsigned char)json_string_value(id)[bad], bad);
    }
    m->id = arena_strdup(&m->arena, json_string_value(id));
    json_t *cfg = json_object_get(root, "config");
    if (!json_is_object(cfg)) {
      jp_key(&L->path, "config");
      return lerr(L, "config must be an object of numbers");
    }
    if (load_config(L, cfg) < 0)
      return -1;
  }
  json_t *cls = json_object_get(root, "class");
  if (!json_is_string(cls)) {
    jp_key(&L->path, "class");
    return lerr(L, "class must be a string");
  }
  Layer *ly = arena_alloc(&m->arena, sizeof(Layer));
  ly->name = "";
  ly->path = "";
  ly->cls = arena_strdup(&m->arena, json_string_value(cls));
  ly->repeat = ly->count = 1;
  if (!(ly->mod = resolve_class(L, ly->cls, "(root)")))
    return -1;
  keep_path(m, &L->path, &ly->jp);
  if (load_params(L, ly, json_object_get(root, "parameters")) < 0)
    return -1;
  json_t *layers = json_object_get(root, "layers");
  if (!json_is_array(layers)) {
    jp_key(&L->path, "layers");
    return lerr(L, "layers must be an array");
  }
  /* the root's sub-layers are under "layers", not "sub_layers" */
  const ModuleDef *md = ly->mod->def;
  ly->nitems = (int)json_array_size(layers);
  ly->items = arena_alloc(&m->arena, sizeof(Item) * (size_t)(ly->nitems + 1));
  jp_key(&L->path, "layers");
  if (md->kind == MK_BASIC && ly->nitems > 0)
    return lerr(L, "the root class %s is a basic module and cannot have layers",
                md->short_name);
  /* the same items as sub_layers: layers, and placements of the root
   * class's own operations (Gemma3ForCausalLM's final_softcap) */
  bool *placed = arena_alloc(&m->arena, sizeof(bool) * (size_t)(md->nops + 1));
  HashMap names; /* the duplicate check is O(n) */
  hashmap_init(&names);
  int rc = load_item_list(L, ly, layers, 0, placed, &names);
  hashmap_free(&names);
  if (rc < 0)
    return -1;
  jp_pop(&L->path);
  m->root = ly;
  return 0;
}

/* Every module the model's layers use, once. */
static void used_modules(const Layer *ly, HashMap *seen, RegModule ***list,
                         int *n, int *cap) {
  if (hashmap_add(seen, ly->mod->def->full_name, ly->mod) == 0) {
    if (*n == *cap) {
      *cap = *cap ? *cap * 2 : 16;
      *list = xrealloc(*list, sizeof(RegModule *) * (size_t)*cap);
    }
    (*list)[(*n)++] = ly->mod;
  }
  for (int i = 0; i < ly->nitems; i++)
    if (ly->items[i].layer)
      used_modules(ly->items[i].layer, seen, list, n, cap);
}

/* A registry from reg_open compiles lazily: compile what this model uses
 * (a no-op when everything is compiled already). */
static int compile_used(Model *m, const Registry *reg, Error *err) {
  HashMap seen;
  hashmap_init(&seen);
  RegModule **list = NULL;
  int n = 0, cap = 0;
  used_modules(m->root, &seen, &list, &n, &cap);
  int rc = reg_ensure((Registry *)reg, list, n, err);
  free(list);
  hashmap_free(&seen);
  return rc;
}

/* The model of a parsed document, which it takes over (*doc zeroed);
 * vars: a template's config values, or NULL for a model file. */
static Model *build(JsonDoc *doc, json_t *root, const ModelVars *vars,
                   const Registry *reg, Error *err) {
  Model *m = xcalloc(1, sizeof(Model));
  arena_init(&m->arena);
  m->ckpt_bytes = -1;
  m->doc = *doc; /* taken over */
  memset(doc, 0, sizeof(*doc));
  Error local;
  err_clear(&local);
  Loader L = {.m = m, .reg = reg, .err = err ? err : &local, .vars = vars};
  jp_init(&L.path);
  hashmap_init(&L.progs);
  int rc = load_root(&L, root);
  hashmap_free(&L.progs);
  if (rc < 0 || compile_used(m, reg, L.err) < 0) {
    model_free(m);
    return NULL;
  }
  if (vars) {
    m->family = arena_strdup(&m->arena, vars->family);
    if (vars->note)
      m->note = arena_strdup(&m->arena, vars->note);
    m->from_config = true;
    m->quant = vars->quant;
    if (vars->quant.method)
      m->quant.method = arena_strdup(&m->arena, vars->quant.method);
  }
  return m;
}

/* JdocBuild: the model of a parsed document; ctx is the Registry. */
static void *build_model(JsonDoc *doc, json_t *root, const void *ctx,
                         Error *err) {
  return build(doc, root, NULL, ctx, err);
}

Model *model_load_json(const char *path, const char *text, size_t len,
                       json_t *root, const ModelVars *vars,
                       const Registry *reg, Error *err) {
  JsonDoc doc = {.file = xstrdup(path), .text = xstrndup(text, len),
                 .len = len};
  Model *m = build(&doc, root, vars, reg, err);
  jdoc_free(&doc); /* a no-op unless build failed before taking it */
  return m;
}

Model *model_load_text(const char *path, const char *text, size_t len,
                       const Registry *reg, Error *err) {
  return jdoc_load(path, text, len, build_model, reg, err);
}

Model *model_load(const char *path, const Registry *reg, Error *err) {
  return jdoc_load(path, NULL, 0, build_model, reg, err);
}

void model_free(Model *m) {
  if (!m)
    return;
  jdoc_free(&m->doc);
  arena_free(&m->arena);
  free(m);
}
