/* parallel.c: tensor, pipeline and expert parallelism.
 *
 * Sharding is data (parallel.json), per model family: tensor parallelism
 * (tp) and expert parallelism (ep) divide config dimensions (heads,
 * intermediate size, vocabulary, experts), so every operation of the
 * split model has its per-GPU shape and the existing formulas price it;
 * each layer's declared layout (column, row, vocab, replicated) is checked
 * against the split model's per-GPU parameters. Collectives follow named
 * operations with byte templates. Pipeline parallelism (pp) cuts the
 * model's repeated block of layers into contiguous stages; the first stage
 * also runs what precedes the block, the last what follows it.
 *
 * A collective over n GPUs takes latency x steps + bytes x factor /
 * bandwidth: ring all-reduce 2(n-1) steps, factor 2(n-1)/n; all-gather,
 * reduce-scatter and all-to-all n-1 steps, factor (n-1)/n; a send 1 step,
 * factor 1. A phase on p stages with m microbatches takes sum_s t_s +
 * (m - 1) max_s t_s (t_s: stage s's time for one microbatch, its sends
 * included): the makespan of m identical jobs through p stages in order.
 */
#include "calib.h"
#include "runtime.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

const char *const coll_name[COLL_COUNT] = {LM_COLLS(LM_X_NAME)};
const char *const group_name[GROUP_COUNT] = {"tp", "ep", "pp"};
static const char *const split_name[SPLIT_COUNT] = {LM_SPLITS(LM_X_NAME)};
static const char *const layout_name[LAYOUT_COUNT] = {LM_LAYOUTS(LM_X_NAME)};

/* ------------------------------------------------------------ loading */

typedef struct PLoader {
  JsonDoc doc;
  Error *err;
  JsonPath jp;
  ParDb *db;
} PLoader;

static int perr(PLoader *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int perr(PLoader *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jdoc_verror(L->err, &L->doc, &L->jp, fmt, ap);
  va_end(ap);
  return -1;
}

static int pick_name(const char *s, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (strcmp(s, names[i]) == 0)
      return i;
  return -1;
}

static int only(PLoader *L, json_t *o, const char *const *keys, int n) {
  return jdoc_only_members(L->err, &L->doc, &L->jp, o, keys, n);
}

static const char *str_member(PLoader *L, json_t *o, const char *key) {
  const char *s = jdoc_string_member(L->err, &L->doc, &L->jp, o, key);
  return s ? arena_strdup(&L->db->arena, s) : NULL;
}

static int load_rules(PLoader *L, json_t *o, ParGroup *g);

/* ep.with_tp: layers and collectives over ep's split keys. */
static int load_with_tp(PLoader *L, json_t *o, ParGroup *ep) {
  static const char *const keys[] = {"layers", "collectives"};
  jp_key(&L->jp, "with_tp");
  if (!json_is_object(o))
    return perr(L, "with_tp must be an object {layers, collectives}");
  if (only(L, o, keys, 2) < 0)
    return -1;
  ParGroup *w = arena_alloc(&L->db->arena, sizeof(ParGroup));
  memset(w, 0, sizeof(*w));
  w->split = ep->split;
  w->nsplit = ep->nsplit;
  if (load_rules(L, o, w) < 0)
    return -1;
  if (!w->nlayers)
    return perr(L, "with_tp needs layers: the expert layers split over "
                   "the tensor-parallel GPUs");
  ep->with_tp = w;
  jp_pop(&L->jp);
  return 0;
}

static int load_group(PLoader *L, json_t *o, ParGroup *g, bool ep) {
  static const char *const keys[] = {"split", "layers", "collectives",
                                     "with_tp"};
  if (!json_is_object(o))
    return perr(L, "must be an object");
  if (only(L, o, keys, 4) < 0)
    return -1;
  Arena *a = &L->db->arena;
  json_t *split = json_object_get(o, "split");
  if (!json_is_object(split)) {
    if (split)
      jp_key(&L->jp, "split");
    return perr(L, "split must be an object: config key -> exact, replicate "
                   "or ceil");
  }
  jp_key(&L->jp, "split");
  g->split = arena_alloc(a, sizeof(ParSplit) * (json_object_size(split) + 1));
  const char *k;
  json_t *v;
  json_object_foreach(split, k, v) {
    int kind = json_is_string(v)
                   ? pick_name(json_string_value(v), split_name, SPLIT_COUNT)
                   : -1;
    if (kind < 0) {
      jp_key(&L->jp, k);
      return perr(L, "a split is \"exact\", \"replicate\" or \"ceil\"");
    }
    g->split[g->nsplit++] = (ParSplit){arena_strdup(a, k), (SplitKind)kind};
  }
  jp_pop(&L->jp);
  if (load_rules(L, o, g) < 0)
    return -1;
  json_t *wt = json_object_get(o, "with_tp");
  if (wt && !ep) {
    jp_key(&L->jp, "with_tp");
    return perr(L, "with_tp belongs to ep (expert parallelism over the "
                   "tensor-parallel GPUs)");
  }
  return wt ? load_with_tp(L, wt, g) : 0;
}

/* A group's layers and collectives (its split keys loaded). */
static int load_rules(PLoader *L, json_t *o, ParGroup *g) {
  Arena *a = &L->db->arena;
  const char *k;
  json_t *v;
  json_t *layers = json_object_get(o, "layers");
  if (layers) {
    jp_key(&L->jp, "layers");
    if (!json_is_object(layers))
      return perr(L, "layers must be an object: layer path -> layout");
    g->layers =
        arena_alloc(a, sizeof(ParLayer) * (json_object_size(layers) + 1));
    json_object_foreach(layers, k, v) {
      jp_key(&L->jp, k);
      ParLayer *pl = &g->layers[g->nlayers];
      memset(pl, 0, sizeof(*pl));
      pl->path = arena_strdup(a, k);
      json_t *lv = json_is_object(v) ? json_object_get(v, "layout") : v;
      int lay = json_is_string(lv)
                    ? pick_name(json_string_value(lv), layout_name, LAYOUT_COUNT)
                    : -1;
      if (lay < 0) {
        if (json_is_object(v))
          jp_key(&L->jp, "layout");
        return perr(L, "a layer is a layout (column, row, vocab, replicated, "
                       "expert, heads or sharded) or {\"layout\": ..., \"args\": {...}}");
      }
      pl->layout = (Layout)lay;
      if (json_is_object(v)) {
        static const char *const lk[] = {"layout", "args"};
        if (only(L, v, lk, 2) < 0)
          return -1;
        json_t *args = json_object_get(v, "args");
        if (!json_is_object(args) || !json_object_size(args)) {
          if (args)
            jp_key(&L->jp, "args");
          return perr(L, "args must be a non-empty object: parameter -> "
                         "split key, \"/n\", \"*n\" or \"=formula\"");
        }
        jp_key(&L->jp, "args");
        pl->args = arena_alloc(a, sizeof(ParArg) * json_object_size(args));
        const char *an;
        json_t *av;
        json_object_foreach(args, an, av) {
          const char *t = json_string_value(av);
          if (!t || !*t) {
            jp_key(&L->jp, an);
            return perr(L, "a parameter's split is a split key, \"/n\", "
                           "\"*n\" or \"=formula\"");
          }
          ParArg *pa = &pl->args[pl->nargs++];
          pa->name = arena_strdup(a, an);
          if (strcmp(t, "/n") == 0)
            pa->rule = ARG_DIV;
          else if (strcmp(t, "*n") == 0)
            pa->rule = ARG_MUL;
          else if (t[0] == '=') {
            pa->rule = ARG_FORMULA;
            pa->text = arena_strdup(a, t + 1);
          } else {
            int i = 0;
            while (i < g->nsplit && strcmp(g->split[i].key, t) != 0)
              i++;
            if (i == g->nsplit) {
              jp_key(&L->jp, an);
              return perr(L, "'%s' is not one of this group's split keys", t);
            }
            pa->rule = ARG_KEY;
            pa->text = g->split[i].key;
          }
        }
        jp_pop(&L->jp);
      } else if (lay != LAYOUT_REPLICATED) {
        return perr(L, "a %s layer says which parameters split: "
                       "{\"layout\": \"%s\", \"args\": {...}}",
                    layout_name[lay], layout_name[lay]);
      }
      g->nlayers++;
      jp_pop(&L->jp);
    }
    jp_pop(&L->jp);
  }
  json_t *coll = json_object_get(o, "collectives");
  if (coll) {
    jp_key(&L->jp, "collectives");
    if (!json_is_array(coll))
      return perr(L, "collectives must be an array");
    g->coll = arena_alloc(a, sizeof(ParColl) * (json_array_size(coll) + 1));
    for (size_t i = 0; i < json_array_size(coll); i++) {
      json_t *c = json_array_get(coll, i);
      jp_index(&L->jp, (int)i);
      static const char *const ck[] = {"after", "op", "bytes", "when",
                                       "optional"};
      if (!json_is_object(c))
        return perr(L, "a collective is an object {after, op, bytes}");
      if (only(L, c, ck, 5) < 0)
        return -1;
      ParColl *pc = &g->coll[g->ncoll];
      memset(pc, 0, sizeof(*pc));
      if (json_object_get(c, "when") && !(pc->when = str_member(L, c, "when")))
        return -1;
      json_t *opt = json_object_get(c, "optional");
      if (opt && !json_is_boolean(opt)) {
        jp_key(&L->jp, "optional");
        return perr(L, "optional is true or false");
      }
      pc->optional = json_is_true(opt);
      const char *op;
      if (!(pc->after = str_member(L, c, "after")) ||
          !(op = str_member(L, c, "op")) ||
          !(pc->bytes = str_member(L, c, "bytes")))
        return -1;
      int kind = pick_name(op, coll_name, COLL_COUNT);
      if (kind < 0 || kind == COLL_SEND) {
        jp_key(&L->jp, "op");
        return perr(L,
                    "op is all_reduce, all_gather, reduce_scatter or "
                    "all_to_all, not '%s'",
                    op);
      }
      pc->kind = (CollKind)kind;
      g->ncoll++;
      jp_pop(&L->jp);
    }
    jp_pop(&L->jp);
  }
  return 0;
}

static int load_family(PLoader *L, json_t *o, ParFamily *f) {
  static const char *const keys[] = {"classes", "source", "tp", "ep", "pp"};
  if (!json_is_object(o))
    return perr(L, "a family is an object");
  if (only(L, o, keys, 5) < 0 || !str_member(L, o, "source"))
    return -1;
  json_t *cl = json_object_get(o, "classes");
  if (!json_is_array(cl) || json_array_size(cl) == 0) {
    if (cl)
      jp_key(&L->jp, "classes");
    return perr(L, "classes must be a non-empty array of model classes");
  }
  f->classes = arena_alloc(&L->db->arena, sizeof(char *) * json_array_size(cl));
  for (size_t i = 0; i < json_array_size(cl); i++) {
    json_t *c = json_array_get(cl, i);
    if (!json_is_string(c)) {
      jp_key(&L->jp, "classes");
      jp_index(&L->jp, (int)i);
      return perr(L, "a class is a string");
    }
    f->classes[f->nclasses++] =
        arena_strdup(&L->db->arena, json_string_value(c));
  }
  for (int g = GROUP_TP; g <= GROUP_EP; g++) {
    json_t *go = json_object_get(o, group_name[g]);
    if (!go)
      continue;
    jp_key(&L->jp, group_name[g]);
    if (load_group(L, go, &f->g[g], g == GROUP_EP) < 0)
      return -1;
    jp_pop(&L->jp);
  }
  json_t *pp = json_object_get(o, "pp");
  if (pp) {
    jp_key(&L->jp, "pp");
    static const char *const pk[] = {"send"};
    if (!json_is_object(pp))
      return perr(L, "pp must be an object {send}");
    if (only(L, pp, pk, 1) < 0 || !(f->pp_send = str_member(L, pp, "send")))
      return -1;
    jp_pop(&L->jp);
  }
  return 0;
}

/* jdoc_load's build step: root is borrowed, doc freed after the call. */
static void *pardb_build(JsonDoc *doc, json_t *root, const void *ctx,
                         Error *err) {
  (void)ctx;
  ParDb *db = xcalloc(1, sizeof(*db));
  arena_init(&db->arena);
  PLoader L = {.doc = *doc, .err = err, .db = db};
  jp_init(&L.jp);
  int rc = -1;
  static const char *const keys[] = {"format", "description", "latency_us",
                                     "latency_source", "families"};
  if (!json_is_object(root)) {
    perr(&L, "a parallel file is a JSON object");
    goto out;
  }
  if (only(&L, root, keys, 5) < 0)
    goto out;
  json_t *fmt = json_object_get(root, "format");
  if (!json_is_string(fmt) ||
      strcmp(json_string_value(fmt), "lm-predictor-parallel") != 0) {
    if (fmt)
      jp_key(&L.jp, "format");
    perr(&L, "format must be \"lm-predictor-parallel\"");
    goto out;
  }
  if (!str_member(&L, root, "latency_source"))
    goto out;
  json_t *lat = json_object_get(root, "latency_us");
  static const char *const links[] = {"nvlink", "pcie", "network"};
  if (!json_is_object(lat)) {
    if (lat)
      jp_key(&L.jp, "latency_us");
    perr(&L, "latency_us must be an object {nvlink, pcie, network}");
    goto out;
  }
  jp_key(&L.jp, "latency_us");
  if (only(&L, lat, links, 3) < 0)
    goto out;
  for (int i = 0; i < 3; i++) {
    json_t *v = json_object_get(lat, links[i]);
    if (!json_is_number(v) || !(json_number_value(v) >= 0) ||
        !(json_number_value(v) <= 1e6)) {
      if (v)
        jp_key(&L.jp, links[i]);
      perr(&L, "%s: a latency in microseconds, from 0 to 1e6", links[i]);
      goto out;
    }
    db->lat[i] = json_number_value(v) * 1e-6;
  }
  jp_pop(&L.jp);
  json_t *fams = json_object_get(root, "families");
  if (!json_is_array(fams)) {
    if (fams)
      jp_key(&L.jp, "families");
    perr(&L, "families must be an array");
    goto out;
  }
  db->fam =
      arena_alloc(&db->arena, sizeof(ParFamily) * (json_array_size(fams) + 1));
  jp_key(&L.jp, "families");
  for (size_t i = 0; i < json_array_size(fams); i++) {
    jp_index(&L.jp, (int)i);
    memset(&db->fam[i], 0, sizeof(ParFamily));
    if (load_family(&L, json_array_get(fams, i), &db->fam[i]) < 0)
      goto out;
    db->n++;
    jp_pop(&L.jp);
  }
  rc = 0;
out:
  if (rc < 0) {
    pardb_free(db);
    return NULL;
  }
  return db;
}

/* jdoc_load parses a NUL-terminated copy of text[0..len) (a fuzzer's
 * buffer, a slice of a larger one): error contexts are read up to a
 * newline or NUL. */
ParDb *pardb_load_text(const char *path, const char *text, size_t len,
                       Error *err) {
  return jdoc_load(path, text, len, pardb_build, NULL, err);
}

ParDb *pardb_load(const char *path, Error *err) {
  return jdoc_load(path, NULL, 0, pardb_build, NULL, err);
}

void pardb_free(ParDb *db) {
  if (!db)
    return;
  arena_free(&db->arena);
  free(db);
}

/* ----------------------------------------------------------- splitting */

static const ParFamily *family_of(const ParDb *db, const Model *m) {
  for (int i = 0; i < db->n; i++)
    for (int k = 0; k < db->fam[i].nclasses; k++)
      if (strcmp(db->fam[i].classes[k], m->root->cls) == 0)
        return &db->fam[i];
  return NULL;
}

static int config_index(const Model *m, const char *key) {
  for (int i = V_COUNT; i < m->nvars; i++)
    if (strcmp(m->var_names[i], key) == 0)
      return i;
  return -1;
}

/* A split config key: its value on one GPU and per GPU. */
typedef struct SplitVal {
  const char *key;
  double full, part;
} SplitVal;

/* The family's split keys of m's config divided by n (errors name the
 * key and both values). */
static int split_values(const Model *m, const ParGroup *g, int n,
                        const char *flag, SplitVal *out, Error *err) {
  for (int i = 0; i < g->nsplit; i++) {
    const ParSplit *s = &g->split[i];
    int k = config_index(m, s->key);
    if (k < 0) {
      err_set(err,
              "%s: the model's config has no '%s' to split (parallel.json)",
              flag, s->key);
      return -1;
    }
    double v = m->var_values[k], x;
    switch (s->kind) {
    case SPLIT_EXACT:
      x = v / n;
      if (x != floor(x) || x < 1) {
        err_set(err, "%s %d does not divide %s (%g)", flag, n, s->key, v);
        return -1;
      }
      break;
    case SPLIT_REPLICATE:
      if (v >= n && fmod(v, n) == 0)
        x = v / n;
      else if (v < n && v > 0 && fmod(n, v) == 0)
        x = 1;
      else {
        err_set(err, "%s %d and %s (%g): neither divides the other", flag, n,
                s->key, v);
        return -1;
      }
      break;
    default:
      x = ceil(v / n);
    }
    out[i] = (SplitVal){s->key, v, x};
  }
  return 0;
}

/* path without its layers' kinds: model.layers[moe].mlp -> model.layers.mlp */
static void strip_kinds(const char *in, Buf *out) {
  buf_reset(out);
  for (const char *c = in; *c; c++) {
    if (*c == '[') {
      while (*c && *c != ']')
        c++;
      if (!*c)
        break;
      continue;
    }
    buf_putc(out, *c);
  }
}

typedef struct Rewrite {
  const Model *m;
  const ParGroup *g;
  int n;
  const SplitVal *sv;
  const char *flag;
  bool *seen;  /* per layer rule: met in the file */
  Arena *arena;
  Error *err;
} Rewrite;

/* A formula over the config (gpu_<key>: a split key's per-GPU value). */
static int eval_config_formula(Rewrite *rw, const char *text, double *out) {
  const Model *m = rw->m;
  int nc = m->nvars, ns = rw->g->nsplit, nn = nc + ns;
  const char **names = xcalloc((size_t)nn + 1, sizeof(char *));
  double *vals = xcalloc((size_t)nn + 1, sizeof(double));
  bool *known = xcalloc((size_t)nn + 1, sizeof(bool));
  for (int i = 0; i < nc; i++) {
    names[i] = m->var_names[i];
    vals[i] = m->var_values[i];
    known[i] = i >= V_COUNT;
  }
  for (int i = 0; i < ns; i++) {
    size_t len = strlen(rw->sv[i].key) + 5;
    char *nm = arena_alloc(rw->arena, len);
    snprintf(nm, len, "gpu_%s", rw->sv[i].key);
    names[nc + i] = nm;
    vals[nc + i] = rw->sv[i].part;
    known[nc + i] = true;
  }
  FormulaSrc src = {.text = text, .doc = NULL};
  Scope sc = {.names = names, .nnames = nn, .what = "variable"};
  Prog prog;
  int rc = -1;
  Node *nd = parse_formula(rw->arena, &src, rw->err);
  if (nd && check_formula(nd, &src, &sc, rw->err) == 0 &&
      prog_compile(rw->arena, nd, vals, known, &prog, rw->err) == 0) {
    if (!prog_const(&prog, out))
      err_set(rw->err, "parallel.json: '%s' must use config values only",
              text);
    else
      rc = 0;
  }
  free(names);
  free(vals);
  free(known);
  return rc;
}

/* Rewrite the parameters of the layers the rules name (any kind). */
static int rewrite_layers(Rewrite *rw, json_t *arr, const char *prefix,
                          const char *kprefix) {
  if (!json_is_array(arr))
    return 0;
  Buf path, kpath;
  buf_init(&path);
  buf_init(&kpath);
  int rc = -1;
  for (size_t i = 0; i < json_array_size(arr); i++) {
    json_t *ly = json_array_get(arr, i);
    const char *name = json_string_value(json_object_get(ly, "name"));
    if (!name)
      continue; /* an op placement */
    const char *kind = json_string_value(json_object_get(ly, "kind"));
    buf_reset(&path);
    buf_reset(&kpath);
    if (*prefix) {
      buf_printf(&path, "%s.", prefix);
      buf_printf(&kpath, "%s.", kprefix);
    }
    buf_puts(&path, name);
    buf_puts(&kpath, name);
    if (kind)
      buf_printf(&kpath, "[%s]", kind);
    for (int r = 0; r < rw->g->nlayers; r++) {
      const ParLayer *pl = &rw->g->layers[r];
      if (strcmp(pl->path, buf_str(&path)) != 0 &&
          strcmp(pl->path, buf_str(&kpath)) != 0)
        continue;
      rw->seen[r] = true;
      json_t *params = json_object_get(ly, "parameters");
      for (int k = 0; k < pl->nargs; k++) {
        const ParArg *pa = &pl->args[k];
        json_t *v = json_object_get(params, pa->name);
        char old[64], num[64];
        const char *ot = json_string_value(v);
        if (json_is_number(v)) {
          report_number(json_number_value(v), old, sizeof(old));
          ot = old;
        }
        if (!ot) {
          err_set(rw->err,
                  "parallel.json: layer '%s' has no parameter '%s' to split",
                  pl->path, pa->name);
          goto out;
        }
        Buf nt;
        buf_init(&nt);
        switch (pa->rule) {
        case ARG_KEY: {
          const SplitVal *sv = NULL;
          for (int j = 0; j < rw->g->nsplit; j++)
            if (strcmp(rw->sv[j].key, pa->text) == 0)
              sv = &rw->sv[j];
          char f[64];
          report_number(sv->part, num, sizeof(num));
          report_number(sv->full, f, sizeof(f));
          buf_printf(&nt, "(%s) * %s / %s", ot, num, f);
          break;
        }
        case ARG_DIV:
          buf_printf(&nt, "(%s) / %d", ot, rw->n);
          break;
        case ARG_MUL:
          buf_printf(&nt, "(%s) * %d", ot, rw->n);
          break;
        default: {
          double x;
          if (eval_config_formula(rw, pa->text, &x) < 0) {
            buf_free(&nt);
            goto out;
          }
          report_number(x, num, sizeof(num));
          buf_puts(&nt, num);
        }
        }
        json_object_set_new(params, pa->name, json_string(buf_str(&nt)));
        buf_free(&nt);
      }
    }
    if (rewrite_layers(rw, json_object_get(ly, "sub_layers"), buf_str(&path),
                       buf_str(&kpath)) < 0)
      goto out;
  }
  rc = 0;
out:
  buf_free(&path);
  buf_free(&kpath);
  return rc;
}

/* Does a rule's path name this path (kinds dropped in sp, or as is)? */
static bool names_path(const char *rule, const char *path, const Buf *sp) {
  return strcmp(rule, buf_str(sp)) == 0 || strcmp(rule, path) == 0;
}

static bool under(const char *path, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(path, prefix, n) == 0 && (path[n] == 0 || path[n] == '.');
}

static const Layer *find_block(const Layer *ly) {
  if (ly->repeat > 1)
    return ly;
  for (int i = 0; i < ly->nitems; i++)
    if (ly->items[i].layer) {
      const Layer *b = find_block(ly->items[i].layer);
      if (b)
        return b;
    }
  return NULL;
}

/* A slot's parameter bytes per instance. */
static double slot_param_bytes(const Slot *s, const Values *v) {
  lm_metric_fn f = s->state[M_PARAM_BYTES - M_TRAFFIC];
  return f ? f(v->args + s->argbase) : 0;
}

/* Each declared layout against the split plan, for every kind of the
 * layer: sharded layers hold fewer parameters per GPU than on one,
 * replicated ones as many. The two plans have the same slots. */
static int check_layouts(const ParGroup *g, const Plan *full, const Plan *split,
                         int n, const char *flag, Error *err) {
  double run[V_COUNT] = {[V_B] = 1,        [V_S] = 1,
                         [V_T] = 1,        [V_L] = 1,
                         [V_W_BYTES] = 2,  [V_A_BYTES] = 2,
                         [V_KV_BYTES] = 2, [V_SRAM_BYTES] = 65536,
                         [V_E_BYTES] = 2,  [V_X_BYTES] = 2,
                         [V_EXPERT_BALANCE] = 1};
  Values *vf = values_new(full), *vs = values_new(split);
  Buf sp;
  buf_init(&sp);
  int rc = -1;
  if (full->nslots != split->nslots) {
    err_set(err, "%s %d: the split model has other layers than the model",
            flag, n);
    goto out;
  }
  if (plan_eval(full, run, vf, err) < 0 || plan_eval(split, run, vs, err) < 0)
    goto out;
  for (int s = 0; s < full->nslots; s++) {
    strip_kinds(full->slots[s].layer->path, &sp);
    for (int i = 0; i < g->nlayers; i++) {
      const ParLayer *l = &g->layers[i];
      if (!names_path(l->path, full->slots[s].layer->path, &sp))
        continue;
      double a = slot_param_bytes(&full->slots[s], vf),
             b = slot_param_bytes(&split->slots[s], vs);
      /* column layers may stay whole: key/value heads fewer than the
       * GPUs are replicated */
      bool ok = l->layout == LAYOUT_REPLICATED ? b == a
                : l->layout == LAYOUT_COLUMN   ? b <= a
                                               : b < a || a == 0;
      if (!ok) {
        err_set(err,
                "%s %d: layer '%s' is declared %s in parallel.json but "
                "holds %g parameter bytes per GPU against %g on one GPU "
                "(do its args split the right parameters?)",
                flag, n, full->slots[s].layer->path, layout_name[l->layout], b,
                a);
        goto out;
      }
    }
  }
  rc = 0;
out:
  buf_free(&sp);
  values_free(vf);
  values_free(vs);
  return rc;
}

/* Compile a byte template over the model's variables (config unsplit). */
static int compile_bytes(ParPlan *pp, const Model *m, const char *text,
                         Prog *out, Error *err) {
  FormulaSrc src = {.text = text, .doc = NULL};
  Node *n = parse_formula(&pp->arena, &src, err);
  if (!n)
    return -1;
  Scope sc = {.names = m->var_names, .nnames = m->nvars, .what = "variable"};
  if (check_formula(n, &src, &sc, err) < 0)
    return -1;
  bool *known = xcalloc((size_t)m->nvars + 1, sizeof(bool));
  for (int i = V_COUNT; i < m->nvars; i++)
    known[i] = true;
  int rc = prog_compile(&pp->arena, n, m->var_values, known, out, err);
  free(known);
  return rc;
}

/* The split model: m's file (a model file or a template) with the layer
 * parameters the rules name rewritten per GPU, loaded again with the same
 * config. */
static Model *split_model(const Model *m, const Registry *reg,
                          const ParGroup *const *gs, const int *ns,
                          const char *const *flags, Arena *arena,
                          Error *err) {
  json_t *root = json_loadb(m->doc.text, m->doc.len, 0, NULL);
  Model *out = NULL;
  if (!json_is_object(root)) {
    err_set(err, "%s: cannot read the model again to split it", m->doc.file);
    goto done;
  }
  for (int g = 0; g < 2; g++) {
    if (ns[g] <= 1)
      continue;
    const ParGroup *grp = gs[g];
    SplitVal *sv = arena_alloc(arena, sizeof(SplitVal) * (size_t)(grp->nsplit + 1));
    bool *seen = xcalloc((size_t)grp->nlayers + 1, sizeof(bool));
    Rewrite rw = {m, grp, ns[g], sv, flags[g], seen, arena, err};
    int rc = split_values(m, grp, ns[g], flags[g], sv, err);
    if (rc == 0)
      rc = rewrite_layers(&rw, json_object_get(root, "layers"), "", "");
    for (int i = 0; rc == 0 && i < grp->nlayers; i++)
      if (!seen[i]) {
        err_set(err, "parallel.json: %s layer '%s' is not in %s", flags[g],
                grp->layers[i].path, path_display(m->doc.file));
        rc = -1;
      }
    free(seen);
    if (rc < 0)
      goto done;
  }
  char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (m->from_config) {
    ModelVars vars = {.id = m->id,
                      .family = m->family,
                      .note = m->note,
                      .names = m->var_names + V_COUNT,
                      .values = m->var_values + V_COUNT,
                      .n = m->nvars - V_COUNT,
                      .quant = m->quant};
    out = model_load_json(m->doc.file, text, strlen(text), root, &vars, reg,
                          err);
    if (out) {
      out->from_config = true;
      out->ckpt_bytes = m->ckpt_bytes;
      out->ckpt_elem_bytes = m->ckpt_elem_bytes;
    }
  } else {
    out = model_load_text(m->doc.file, text, strlen(text), reg, err);
  }
  free(text);
done:
  json_decref(root);
  return out;
}

/* Is the config formula nonzero? */
static int coll_wanted(ParPlan *pp, const Model *m, const ParColl *c,
                       bool *yes, Error *err) {
  *yes = true;
  if (!c->when)
    return 0;
  Prog p;
  if (compile_bytes(pp, m, c->when, &p, err) < 0)
    return -1;
  double v;
  if (!prog_const(&p, &v)) {
    err_set(err, "parallel.json: when '%s' must use config values only",
            c->when);
    return -1;
  }
  *yes = v != 0;
  return 0;
}

/* Add the collectives of group g after every row they name: the row whose
 * path (kinds dropped) is c->after, or the last row of each run of rows of
 * the layer c->after. */
static int add_collectives(ParPlan *pp, const Model *m, const ParGroup *grp,
                           int g, Error *err) {
  const Plan *pl = pp->plan;
  Buf rp, lp;
  buf_init(&rp);
  buf_init(&lp);
  int rc = -1;
  for (int i = 0; i < grp->ncoll; i++) {
    const ParColl *c = &grp->coll[i];
    bool yes;
    if (coll_wanted(pp, m, c, &yes, err) < 0)
      goto out;
    if (!yes)
      continue;
    Prog bytes;
    if (compile_bytes(pp, m, c->bytes, &bytes, err) < 0)
      goto out;
    int found = 0;
    for (int r = 0; r < pl->nrows; r++) {
      const Row *row = &pl->rows[r];
      strip_kinds(row->path, &rp);
      bool hit = names_path(c->after, row->path, &rp);
      if (!hit) {
        /* the layer's last row */
        const char *sp = pl->slots[row->slot].layer->path;
        strip_kinds(sp, &lp);
        hit = names_path(c->after, sp, &lp);
        for (int k = r + 1; hit && k < pl->nrows; k++)
          if (pl->rows[k].slot == row->slot)
            hit = false;
      }
      if (!hit)
        continue;
      if (pp->ncomm == pp->capcomm) {
        pp->capcomm = pp->capcomm ? 2 * pp->capcomm : 8;
        CommOp *n = arena_alloc(&pp->arena, sizeof(CommOp) * (size_t)pp->capcomm);
        if (pp->ncomm)
          memcpy(n, pp->comm, sizeof(CommOp) * (size_t)pp->ncomm);
        pp->comm = n;
      }
      CommOp *op = &pp->comm[pp->ncomm++];
      size_t len = strlen(row->path) + strlen(coll_name[c->kind]) + 2;
      char *path = arena_alloc(&pp->arena, len);
      snprintf(path, len, "%s.%s", row->path, coll_name[c->kind]);
      *op = (CommOp){.path = path,
                     .kind = c->kind,
                     .group = g,
                     .after = r,
                     .count = row->count,
                     .bytes = bytes};
      found++;
    }
    if (!found && !c->optional) {
      err_set(err,
              "parallel.json: collective after '%s': the model has no such "
              "operation",
              c->after);
      goto out;
    }
  }
  rc = 0;
out:
  buf_free(&rp);
  buf_free(&lp);
  return rc;
}

/* Does group g have a layer rule for path? */
static bool has_layer(const ParGroup *g, const char *path) {
  for (int i = 0; i < g->nlayers; i++)
    if (strcmp(g->layers[i].path, path) == 0)
      return true;
  return false;
}

/* The rules a configuration applies: tp's and ep's; under --tp N --ep N
 * (attention tensor-parallel, the experts split over the same N GPUs, as
 * vLLM --tensor-parallel-size N --enable-expert-parallel and SGLang --tp N
 * --ep N run them) tp's rules but for the layers ep.with_tp names, and
 * ep.with_tp's. Other sizes are refused. */
static int effective_groups(const ParFamily *f, int tp, int ep, Arena *a,
                            const ParGroup *gs[2], Error *err) {
  gs[0] = f ? &f->g[GROUP_TP] : NULL;
  gs[1] = f ? &f->g[GROUP_EP] : NULL;
  if (tp <= 1 || ep <= 1)
    return 0;
  if (tp != ep) {
    err_set(err,
            "--tp %d with --ep %d is not modelled: --ep with --tp splits the "
            "experts over the tensor-parallel GPUs (vLLM "
            "--tensor-parallel-size N --enable-expert-parallel, SGLang --tp "
            "N --ep N), so --ep must equal --tp; --ep alone runs the "
            "attention data-parallel (DESIGN.md section 15.2)",
            tp, ep);
    return -1;
  }
  const ParGroup *w = f->g[GROUP_EP].with_tp;
  if (!w) {
    err_set(err, "--tp %d with --ep %d: parallel.json gives no ep.with_tp "
                 "rules (experts over the tensor-parallel GPUs)",
            tp, ep);
    return -1;
  }
  const ParGroup *t = &f->g[GROUP_TP];
  ParGroup *tt = arena_alloc(a, sizeof(ParGroup));
  *tt = *t;
  tt->layers = arena_alloc(a, sizeof(ParLayer) * (size_t)(t->nlayers + 1));
  tt->nlayers = 0;
  for (int i = 0; i < t->nlayers; i++)
    if (!has_layer(w, t->layers[i].path))
      tt->layers[tt->nlayers++] = t->layers[i];
  gs[0] = tt;
  gs[1] = w;
  return 0;
}

ParPlan *parplan_build(const ParDb *db, const Model *m, const Registry *reg,
                       AttnImpl attn, int tp, int ep, Error *err) {
  ParPlan *pp = xcalloc(1, sizeof(*pp));
  arena_init(&pp->arena);
  pp->tp = tp;
  pp->ep = ep;
  pp->bfirst = pp->blast = -1;
  const ParFamily *f = family_of(db, m);
  const Model *use = m;
  Plan *full = NULL;
  if ((tp > 1 || ep > 1) && (!f || (tp > 1 && !f->g[GROUP_TP].nsplit) ||
                             (ep > 1 && !f->g[GROUP_EP].nsplit))) {
    err_set(err, "parallel.json has no %s rules for %s",
            tp > 1 && (!f || !f->g[GROUP_TP].nsplit) ? "tensor-parallel"
                                                     : "expert-parallel",
            m->root->cls);
    goto fail;
  }
  const ParGroup *gs[2] = {NULL, NULL};
  if (effective_groups(f, tp, ep, &pp->arena, gs, err) < 0)
    goto fail;
  int ns[2] = {tp, ep};
  static const char *const flags[2] = {"--tp", "--ep"};
  if (tp > 1 || ep > 1) {
    if (!(pp->model = split_model(m, reg, gs, ns, flags, &pp->arena, err)))
      goto fail;
    use = pp->model;
  }
  if (!(pp->plan = plan_build(use, attn, err)))
    goto fail;
  if (tp > 1 || ep > 1) {
    if (!(full = plan_build(m, attn, err)))
      goto fail;
    for (int g = 0; g < 2; g++)
      if (ns[g] > 1 &&
          check_layouts(gs[g], full, pp->plan, ns[g], flags[g], err) < 0)
        goto fail;
    for (int g = 0; g < 2; g++)
      if (ns[g] > 1 && add_collectives(pp, m, gs[g], g, err) < 0)
        goto fail;
    /* in row order, so reports interleave them */
    for (int i = 1; i < pp->ncomm; i++)
      for (int k = i; k > 0 && pp->comm[k - 1].after > pp->comm[k].after; k--) {
        CommOp t = pp->comm[k];
        pp->comm[k] = pp->comm[k - 1];
        pp->comm[k - 1] = t;
      }
  }
  const Layer *b = find_block(use->root);
  if (b) {
    pp->bpath = b->path;
    pp->brepeat = b->repeat;
    for (int r = 0; r < pp->plan->nrows; r++)
      if (under(pp->plan->slots[pp->plan->rows[r].slot].layer->path, b->path)) {
        if (pp->bfirst < 0)
          pp->bfirst = r;
        else if (pp->blast != r - 1) {
          err_set(err, "the repeated block '%s' is not contiguous", b->path);
          goto fail;
        }
        pp->blast = r;
      }
  }
  if (f && f->pp_send && compile_bytes(pp, m, f->pp_send, &pp->send, err) < 0)
    goto fail;
  pp->whole = full;
  return pp;
fail:
  plan_free(full);
  parplan_free(pp);
  return NULL;
}

void parplan_free(ParPlan *pp) {
  if (!pp)
    return;
  plan_free(pp->plan);
  plan_free(pp->whole);
  model_free(pp->model);
  arena_free(&pp->arena);
  free(pp);
}

/* ------------------------------------------------------------- timing */

enum { LINK_NVLINK, LINK_PCIE, LINK_NET };

/* Bandwidth (one direction, per GPU) and per-step latency of a group of n
 * GPUs, within a node unless cross. */
static int link_for(const Prediction *p, int n, bool cross, double *bw,
                    double *lat, Error *err) {
  const Gpu *g = p->gpu;
  const ParDb *db = p->pardb;
  double gpn = g->gpus_per_node > 0 ? g->gpus_per_node : 1;
  if (g->nvlink_bw > 0) {
    /* without a switch the n - 1 peers are reached over their own links */
    *bw = g->nvswitch || gpn <= 1 ? g->nvlink_bw
                                  : g->nvlink_bw * (n - 1) / (gpn - 1);
    *lat = db->lat[LINK_NVLINK];
  } else if (g->pcie_bw > 0) {
    *bw = g->pcie_bw;
    *lat = db->lat[LINK_PCIE];
  } else {
    err_set(err,
            "GPU '%s' has no interconnect in the hardware database "
            "(nvlink_gbps or pcie_gbps)",
            g->id);
    return -1;
  }
  if (cross || n > gpn) {
    if (!(g->network_bw > 0)) {
      err_set(err,
              "%d GPUs span nodes of %g '%s' GPUs, and the hardware "
              "database gives no network_gbps",
              n, gpn, g->id);
      return -1;
    }
    double share = g->network_bw / gpn;
    if (share < *bw)
      *bw = share;
    *lat = db->lat[LINK_NET];
  }
  return 0;
}

static double coll_time(CollKind k, int n, double bytes, double bw,
                        double lat) {
  if (n <= 1 && k != COLL_SEND)
    return 0;
  double steps, factor;
  switch (k) {
  case COLL_ALL_REDUCE:
    steps = 2.0 * (n - 1);
    factor = 2.0 * (n - 1) / n;
    break;
  case COLL_SEND:
    steps = 1;
    factor = 1;
    break;
  default:
    steps = n - 1;
    factor = (double)(n - 1) / n;
  }
  return lat * steps + bytes * factor / bw;
}

/* Whether stage s's send to stage s + 1 leaves a node of gpn GPUs. Stage
 * s holds GPUs s w .. s w + w - 1, w = max(tp, ep) (a stage's GPUs, as the
 * configuration counts them: under --ep the attention is data-parallel
 * over ep GPUs, each sending its own sequences); GPU s w + i sends to
 * (s + 1) w + i, and the send ends with the slowest pair: it crosses when
 * any pair does. */
static bool send_crosses(const PredictOpts *o, int gpn, int s) {
  int w = o->tp > o->ep ? o->tp : o->ep;
  for (int i = 0; i < w; i++)
    if ((s * w + i) / gpn != ((s + 1) * w + i) / gpn)
      return true;
  return false;
}

/* Layers of stage s of P over R layers: the first R mod P stages one more. */
static double stage_layers(double R, int P, int s) {
  double base = floor(R / P), rem = R - base * P;
  return base + (s < rem ? 1 : 0);
}

/* Row r's stage and its instances there; or -1 for a block row (every
 * stage, count / R x layers). */
static int row_stage(const ParPlan *pp, int P, int r) {
  if (pp->bfirst < 0 || P == 1)
    return 0;
  if (r < pp->bfirst)
    return 0;
  if (r > pp->blast)
    return P - 1;
  return -1;
}

/* The phase's time with row times rowt[] (their count-weighted sum is
 * total): on one stage the rows and the collectives; on p stages
 * sum_s t_s + (m - 1) max_s t_s. The collectives' and sends' times are
 * in ph. */
static double pipeline_time(const Prediction *p, const PhaseResult *ph,
                            const double *rowt, double total) {
  const ParPlan *pp = p->par;
  int P = p->opts.pp, m = p->opts.microbatches;
  if (P == 1) {
    double t = total;
    for (int c = 0; c < pp->ncomm; c++)
      t += pp->comm[c].count * ph->comm_time[c];
    return t;
  }
  double st[64];
  double *stage = P <= 64 ? st : xcalloc((size_t)P, sizeof(double));
  for (int s = 0; s < P; s++)
    stage[s] = 0;
  const Plan *plan = pp->plan;
  for (int r = 0, c = 0; r < plan->nrows; r++) {
    int s = row_stage(pp, P, r);
    double t = rowt[r];
    double ct = 0;
    for (; c < pp->ncomm && pp->comm[c].after == r; c++)
      ct += ph->comm_time[c];
    if (s >= 0) {
      stage[s] += plan->rows[r].count * (t + ct);
    } else {
      double per = plan->rows[r].count / pp->brepeat;
      for (int k = 0; k < P; k++)
        stage[k] += per * stage_layers(pp->brepeat, P, k) * (t + ct);
    }
  }
  double sum = 0, max = 0;
  for (int s = 0; s < P; s++) {
    if (s < P - 1)
      stage[s] += ph->stage_send[s];
    sum += stage[s];
    if (stage[s] > max)
      max = stage[s];
  }
  if (stage != st)
    free(stage);
  return sum + (m - 1) * max;
}

/* The calibrated times (collectives.json) of the collectives and sends
 * that have a measured table, in place of their datasheet bounds. An
 * all-reduce runs on the engine's own kernel where its all_reduce rules
 * choose it (engines/<id>.json), timed by that kernel's table; where the
 * board has no table for the kernel, NCCL's (the kernel is chosen for
 * being faster than NCCL: its table is an upper bound). */
static void calibrate_comm(const Prediction *p, PhaseResult *ph) {
  const CollCal *cc = p->opts.coll_calib;
  for (int c = 0; c < ph->ncomm; c++)
    ph->comm_kernel[c] = NULL;
  if (!cc)
    return;
  const PredictOpts *o = &p->opts;
  const char *hw = p->gpu->id;
  int gpn = p->gpu->gpus_per_node > 0 ? (int)p->gpu->gpus_per_node : 1;
  bool nvlink = p->gpu->nvlink_bw > 0;
  int ns[2] = {o->tp, o->ep};
  for (int c = 0; c < ph->ncomm; c++) {
    int n = ns[ph->comm[c].group];
    CollKind k = ph->comm[c].kind;
    double b = ph->comm_bytes[c];
    const char *kern =
        k == COLL_ALL_REDUCE
            ? engine_all_reduce_kernel(o->engine_data, n, b, n <= gpn, nvlink)
            : "nccl";
    double t = collcal_time(cc, hw, kern, k, n, n > gpn, b);
    if (t < 0 && strcmp(kern, "nccl") != 0) {
      kern = "nccl";
      t = collcal_time(cc, hw, kern, k, n, n > gpn, b);
    }
    if (t >= 0) {
      ph->comm_time[c] = t;
      ph->comm_kernel[c] = kern;
    }
  }
  if (ph->sends <= 0)
    return;
  ph->send_time = 0;
  for (int s = 0; s < ph->sends; s++) {
    bool cross = send_crosses(o, gpn, s);
    double t =
        collcal_time(cc, hw, "nccl", COLL_SEND, 2, cross, ph->send_bytes);
    if (t >= 0)
      ph->stage_send[s] = t;
    if (ph->stage_send[s] > ph->send_time)
      ph->send_time = ph->stage_send[s];
  }
}

int phase_latency(const Prediction *p, PhaseResult *ph, const double *run,
                  Error *err) {
  const ParPlan *pp = p->par;
  /* the engine's host time per step (calibrated times only: --roofline
   * stays the kernels' bound) */
  ph->step_host = ph->pred ? engine_step_time(p->opts.engine_data,
                                              run[V_DECODE] != 0, run[V_B])
                           : 0;
  ph->latency = ph->pred ? ph->pred_total + ph->step_host : ph->total_time;
  ph->latency_roofline = ph->total_time;
  if (!pp)
    return 0;
  const PredictOpts *o = &p->opts;
  int P = o->pp;
  int ns[2] = {o->tp, o->ep};
  ph->comm = pp->comm;
  ph->ncomm = pp->ncomm;
  for (int c = 0; c < pp->ncomm; c++) {
    const CommOp *op = &pp->comm[c];
    int n = ns[op->group];
    double bw, lat;
    if (link_for(p, n, false, &bw, &lat, err) < 0)
      return -1;
    ph->comm_bytes[c] = prog_eval(&op->bytes, run);
    ph->comm_time[c] = coll_time(op->kind, n, ph->comm_bytes[c], bw, lat);
    ph->comm_kernel[c] = NULL;
  }
  ph->sends = P - 1;
  ph->send_after = pp->blast;
  ph->send_bytes = ph->send_time = 0;
  if (P > 1) {
    if (pp->bfirst < 0 || pp->brepeat < P) {
      err_set(err, "--pp %d: the model has %s", P,
              pp->bfirst < 0 ? "no repeated block of layers to cut into stages"
                             : "fewer layers than stages");
      return -1;
    }
    if (!pp->send.len) {
      err_set(err, "--pp: parallel.json gives no pipeline send for %s",
              pp->plan->model->root->cls);
      return -1;
    }
    ph->send_bytes = prog_eval(&pp->send, run);
    ph->stage_send = xrealloc(ph->stage_send, sizeof(double) * (size_t)P);
    int gpn = p->gpu->gpus_per_node > 0 ? (int)p->gpu->gpus_per_node : 1;
    for (int s = 0; s < P - 1; s++) {
      double bw, lat;
      bool cross = send_crosses(o, gpn, s);
      if (link_for(p, 2, cross, &bw, &lat, err) < 0)
        return -1;
      ph->stage_send[s] = coll_time(COLL_SEND, 2, ph->send_bytes, bw, lat);
      if (ph->stage_send[s] > ph->send_time)
        ph->send_time = ph->stage_send[s];
    }
  }
  ph->latency_roofline = pipeline_time(p, ph, ph->time, ph->total_time);
  if (pp->ncomm)
    memcpy(ph->comm_roof, ph->comm_time, sizeof(double) * (size_t)pp->ncomm);
  ph->send_time_roof = ph->send_time;
  if (!ph->pred) {
    ph->latency = ph->latency_roofline;
    return 0;
  }
  calibrate_comm(p, ph);
  ph->latency = pipeline_time(p, ph, ph->pred, ph->pred_total) + ph->step_host;
  return 0;
}

static double max_act_rows(const Plan *p, const Values *v, const ParPlan *pp,
                           int P, int s) {
  double m = 0;
  for (int r = 0; r < p->nrows; r++) {
    int rs = row_stage(pp, P, r);
    if (rs >= 0 && rs != s)
      continue;
    double a = v->row[r][M_ACT_READ_BYTES] + v->row[r][M_ACT_WRITE_BYTES];
    if (a > m)
      m = a;
  }
  return m;
}

void par_measure(const Prediction *p, const Values *prefill,
                 const Values *decode, Footprint *f) {
  const ParPlan *pp = p->par;
  const Plan *plan = pp->plan;
  int P = p->opts.pp, m = p->opts.microbatches;
  double cap = p->gpu->memory;
  memset(f, 0, sizeof(*f));
  f->capacity = cap;
  bool first = true;
  for (int s = 0; s < P; s++) {
    double w = 0, kv = 0;
    for (int i = 0; i < plan->nslots; i++) {
      const Slot *sl = &plan->slots[i];
      double count = sl->layer->count;
      if (P > 1 && pp->bfirst >= 0) {
        if (under(sl->layer->path, pp->bpath)) {
          count = count / pp->brepeat * stage_layers(pp->brepeat, P, s);
        } else {
          int fr = -1;
          for (int r = 0; r < plan->nrows && fr < 0; r++)
            if (plan->rows[r].slot == i)
              fr = r;
          int home = fr > pp->blast ? P - 1 : 0;
          if (home != s)
            continue;
        }
      }
      const double *args = decode->args + sl->argbase;
      lm_metric_fn fw = sl->state[M_PARAM_BYTES - M_TRAFFIC],
                   fk = sl->state[M_KV_CACHE_BYTES - M_TRAFFIC];
      if (fw)
        w += count * fw(args);
      if (fk)
        kv += count * fk(args);
    }
    kv *= m; /* every microbatch's cache is resident */
    double a = max_act_rows(plan, prefill, pp, P, s),
           d = max_act_rows(plan, decode, pp, P, s);
    double act = a > d ? a : d;
    double tot = w + kv + act;
    if (first || tot > f->total) {
      f->weights = w;
      f->kv_cache = kv;
      f->act = act;
      f->total = tot;
      first = false;
    }
  }
  f->fits = f->total <= cap;
}
