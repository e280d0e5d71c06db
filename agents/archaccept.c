/* archaccept.c: from an LLM's reply to a checked architecture template.
 *
 * The reply is untrusted, as in accept.c: exactly one JSON object, a
 * template of the model_type asked about, with only a template's members;
 * then the model loader's own checks (config.c, model.c: the same a
 * hand-written template passes: declarations, classes, parameters, every
 * value parsed as a formula over run variables and config keys), with the
 * config asked about and any more configs of the family; then every
 * operation evaluated at a few (B, S), finite and non-negative; then the
 * parameter count against a reference. The caller writes, or nothing.
 *
 * Errors point into the reply: the text around the object is blanked to
 * spaces (newlines kept), and that text is the template the loader reads,
 * so its lines, columns and carets are the reply's own.
 */
#include "agents.h"

#include <math.h>
#include <string.h>

const double arch_points[ARCH_NPOINTS][2] = {{1, 1}, {1, 2048}, {16, 512}};

static const char *const owned[] = {"validation"};

int arch_parse_answer(const char *reply, size_t len, const char *model_type,
                      const char *reply_name, ArchAnswer *out, Error *err) {
  memset(out, 0, sizeof(*out));
  buf_init(&out->notes);
  out->name = reply_name;
  size_t off, n;
  if (accept_find_json(reply, len, &off, &n, err) < 0) {
    if (err && !err->file[0])
      snprintf(err->file, sizeof(err->file), "%s", reply_name);
    return -1;
  }
  out->text = xmalloc(len + 1);
  for (size_t i = 0; i < len; i++)
    out->text[i] = (i >= off && i < off + n) || reply[i] == '\n' ? reply[i]
                                                                 : ' ';
  out->text[len] = '\0';
  out->len = len;
  JsonDoc doc = {.file = reply_name, .text = out->text, .len = len};
  JsonPath p;
  jp_init(&p);
  out->obj = jdoc_parse(&doc, err);
  if (!out->obj)
    return -1;
  json_t *o = out->obj;
  json_t *fmt = json_object_get(o, "format");
  if (!json_is_string(fmt) ||
      strcmp(json_string_value(fmt), "lm-predictor-template") != 0) {
    if (fmt)
      jp_key(&p, "format");
    return jdoc_error(err, &doc, &p,
                      "the answer is not a template: it needs \"format\": "
                      "\"lm-predictor-template\"");
  }
  json_t *mt = json_object_get(o, "model_type");
  if (!json_is_string(mt) || strcmp(json_string_value(mt), model_type) != 0) {
    if (mt)
      jp_key(&p, "model_type");
    return jdoc_error(err, &doc, &p,
                      "the answer is a template for %s%s%s, not for "
                      "model_type '%s' (the config's)",
                      json_is_string(mt) ? "model_type '" : "no model_type",
                      json_is_string(mt) ? json_string_value(mt) : "",
                      json_is_string(mt) ? "'" : "", model_type);
  }
  const char *k;
  json_t *v;
  void *tmp;
  json_object_foreach_safe(o, tmp, k, v) {
    bool known = false;
    for (int i = 0; i < TMPL_NMEMBERS && !known; i++)
      known = strcmp(k, tmpl_members[i]) == 0;
    if (!known) {
      jp_key(&p, k);
      Buf b;
      buf_init(&b);
      for (int i = 0; i < TMPL_NMEMBERS; i++)
        if (strcmp(tmpl_members[i], owned[0]))
          buf_printf(&b, "%s%s", b.len ? ", " : "", tmpl_members[i]);
      jdoc_error(err, &doc, &p,
                 "unknown member '%s' in the template (expected: %s)", k,
                 buf_str(&b));
      buf_free(&b);
      return -1;
    }
    if (strcmp(k, owned[0]) == 0) {
      buf_printf(&out->notes, "ignored '%s' from the answer: lmgen sets it\n",
                 k);
      json_object_del(o, k);
    }
  }
  return 0;
}

void arch_answer_free(ArchAnswer *a) {
  if (!a)
    return;
  json_decref(a->obj);
  free(a->text);
  buf_free(&a->notes);
  memset(a, 0, sizeof(*a));
}

/* ----- classes ----- */

typedef struct Walk {
  const ArchAnswer *a;
  const Db *db;
  const char **names;
  int n, cap;
  Error *err;
} Walk;

static int visit_class(Walk *w, json_t *layer, JsonPath *p) {
  json_t *c = json_object_get(layer, "class");
  if (!json_is_string(c))
    return 0; /* the loader says what is wrong */
  const char *name = json_string_value(c);
  if (hashmap_get(&w->db->by_full, name))
    return 0;
  for (int i = 0; i < w->n; i++)
    if (strcmp(w->names[i], name) == 0)
      return 0;
  json_t *j = json_string(name);
  bool bad = !strchr(name, '.') ||
             schema_validate_def(schema_module_db(), "full_name", j, NULL,
                                 NULL, NULL) < 0;
  json_decref(j);
  if (bad) {
    JsonDoc doc = {.file = w->a->name, .text = w->a->text, .len = w->a->len};
    jp_key(p, "class");
    return jdoc_error(w->err, &doc, p,
                      "class '%s' is not in the module database and is not a "
                      "full dotted class name (package.module.Class) that "
                      "could be analysed",
                      name);
  }
  if (w->n == w->cap) {
    w->cap = w->cap ? 2 * w->cap : 8;
    w->names = xrealloc(w->names, sizeof(char *) * (size_t)w->cap);
  }
  w->names[w->n++] = name;
  return 0;
}

static int walk_layers(Walk *w, json_t *list, JsonPath *p, int depth) {
  if (!json_is_array(list) || depth > MODEL_MAX_DEPTH)
    return 0;
  size_t i;
  json_t *it;
  json_array_foreach(list, i, it) {
    if (!json_is_object(it))
      continue;
    jp_index(p, (int)i);
    if (visit_class(w, it, p) < 0)
      return -1;
    jp_key(p, "sub_layers");
    if (walk_layers(w, json_object_get(it, "sub_layers"), p, depth + 1) < 0)
      return -1;
    jp_pop(p);
    jp_pop(p);
  }
  return 0;
}

int arch_unknown_classes(const ArchAnswer *a, const Db *db,
                         const char ***names, int *n, Error *err) {
  Walk w = {.a = a, .db = db, .err = err};
  JsonPath p;
  jp_init(&p);
  int rc = visit_class(&w, a->obj, &p);
  if (rc == 0) {
    jp_key(&p, "layers");
    rc = walk_layers(&w, json_object_get(a->obj, "layers"), &p, 1);
  }
  if (rc < 0) {
    free(w.names);
    w.names = NULL;
    w.n = 0;
  }
  *names = w.names;
  *n = w.n;
  return rc;
}

/* ----- loading and evaluating ----- */

/* Every operation of m at every point, both attention implementations. */
static int evaluate(const Model *m, const char *cfgname, Error *err) {
  for (int at = 0; at < ATTN_COUNT; at++) {
    Plan *plan = plan_build(m, (AttnImpl)at, err);
    if (!plan) {
      err_prefix(err, "with %s: ", cfgname);
      return -1;
    }
    Values *v = values_new(plan);
    int rc = 0;
    for (int k = 0; k < ARCH_NPOINTS && rc == 0; k++)
      for (int ph = 0; ph < 2 && rc == 0; ph++) {
        double B = arch_points[k][0], S = arch_points[k][1];
        double run[V_COUNT] = {[V_B] = B,         [V_S] = S,
                               [V_T] = ph ? 1 : S, [V_L] = S,
                               [V_W_BYTES] = 2,   [V_A_BYTES] = 2,
                               [V_KV_BYTES] = 2,  [V_E_BYTES] = 2,
                               [V_SRAM_BYTES] = 228 * 1024};
        rc = plan_eval(plan, run, v, err);
        for (int r = 0; rc == 0 && r < v->nrows; r++)
          for (int q = 0; q < M_TRAFFIC; q++)
            if (!isfinite(v->row[r][q]) || v->row[r][q] < 0) {
              err_set(err, "%s of %s is %g", metric_name[q],
                      plan->rows[r].path, v->row[r][q]);
              rc = -1;
              break;
            }
        for (int q = 0; rc == 0 && q < M_COUNT - M_TRAFFIC; q++)
          if (!isfinite(v->state[q]) || v->state[q] < 0) {
            err_set(err, "%s of the model is %g", metric_name[M_TRAFFIC + q],
                    v->state[q]);
            rc = -1;
          }
        if (rc < 0)
          err_prefix(err,
                     "with %s, %s attention, B=%g S=%g (%s): the template "
                     "does not evaluate: ",
                     cfgname, attn_name[at], B, S, ph ? "decode" : "prefill");
      }
    values_free(v);
    plan_free(plan);
    if (rc < 0)
      return -1;
  }
  return 0;
}

static Model *load(const ArchAnswer *a, const ArchCheck *c,
                   const ConfigText *cfg, Error *err) {
  return model_from_template(cfg->path, cfg->text, cfg->len, cfg->id, a->name,
                             a->text, a->len, c->reg, err);
}

int arch_check(const ArchAnswer *a, const ArchCheck *c, double *params,
               double *ref, Error *err) {
  *params = 0;
  *ref = -1;
  Model *m = load(a, c, c->cfg, err);
  if (!m || evaluate(m, path_display(c->cfg->path), err) < 0) {
    model_free(m);
    return -1;
  }
  int rc = -1;
  Plan *plan = plan_build(m, ATTN_EAGER, err);
  Values *v = plan ? values_new(plan) : NULL;
  if (!plan || plan_parameters(plan, v, params, NULL, err) < 0)
    goto out;
  const char *what = NULL;
  char how[400];
  if (c->expect_params > 0) {
    *ref = c->expect_params;
    what = "--expect-params";
  } else if (c->ckpt_bytes > 0) {
    *ref = c->ckpt_bytes / m->ckpt_elem_bytes;
    snprintf(how, sizeof(how),
             "the checkpoint's (model.safetensors.index.json total_size %.0f "
             "bytes / %g bytes per parameter, the config's torch_dtype)",
             c->ckpt_bytes, m->ckpt_elem_bytes);
    what = how;
  }
  if (*ref > 0 && fabs(*params - *ref) > 0.01 * *ref) {
    JsonDoc doc = {.file = a->name, .text = a->text, .len = a->len};
    JsonPath p;
    jp_init(&p);
    jp_key(&p, "layers");
    jdoc_error(err, &doc, &p,
               "the template counts %.0f parameters with %s; the reference, "
               "%s, is %.0f: off by %+.2f%% (at most 1%% allowed)",
               *params, path_display(c->cfg->path), what, *ref,
               (*params - *ref) / *ref * 100);
    goto out;
  }
  /* more configs of the family: each loads and evaluates */
  for (int i = 0; i < c->nextra; i++) {
    Model *x = load(a, c, &c->extra[i], err);
    if (!x || evaluate(x, path_display(c->extra[i].path), err) < 0) {
      err_prefix(err, "the template must keep working for every config of "
                      "the family it has: ");
      model_free(x);
      goto out;
    }
    model_free(x);
  }
  rc = 0;
out:
  values_free(v);
  plan_free(plan);
  model_free(m);
  return rc;
}

char *arch_template_text(const ArchAnswer *a, const char *by,
                         const char *date) {
  json_t *t = json_object();
  for (int i = 0; i < TMPL_NMEMBERS; i++) {
    const char *k = tmpl_members[i];
    if (strcmp(k, "validation") == 0) {
      json_object_set_new(
          t, k,
          json_pack("{s:s, s:s, s:s, s:s}", "status", "pending", "by", by,
                    "date", date, "notes",
                    "written by an LLM agent through lmgen --arch; review "
                    "the structure and the counts, then set status to "
                    "validated"));
      continue;
    }
    json_t *v = json_object_get(a->obj, k);
    if (v)
      json_object_set(t, k, v);
  }
  char *s = json_dumps(t, JSON_INDENT(2));
  json_decref(t);
  Buf b;
  buf_init(&b);
  buf_puts(&b, s);
  buf_putc(&b, '\n');
  free(s);
  return buf_steal(&b);
}
