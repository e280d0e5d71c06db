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
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    int i = 0;
    while (i < n && strcmp(k, keys[i]) != 0)
      i++;
    if (i == n) {
      jp_key(&L->jp, k);
      return perr(L, "unknown member '%s'", k);
    }
  }
  return 0;
}

static const char *str_member(PLoader *L, json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!json_is_string(v) || !json_string_length(v)) {
    if (v)
      jp_key(&L->jp, key);
    perr(L, v ? "%s must be a non-empty string" : "missing member '%s'", key);
    return NULL;
  }
  return arena_strdup(&L->db->arena, json_string_value(v));
}

static int load_group(PLoader *L, json_t *o, ParGroup *g) {
  static const char *const keys[] = {"split", "layers", "collectives"};
  if (!json_is_object(o))
    return perr(L, "must be an object");
  if (only(L, o, keys, 3) < 0)
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
  json_t *layers = json_object_get(o, "layers");
  if (layers) {
    jp_key(&L->jp, "layers");
    if (!json_is_object(layers))
      return perr(L, "layers must be an object: layer path -> layout");
    g->layers =
        arena_alloc(a, sizeof(ParLayer) * (json_object_size(layers) + 1));
    json_object_foreach(layers, k, v) {
      int lay = json_is_string(v)
                    ? pick_name(json_string_value(v), layout_name, LAYOUT_COUNT)
                    : -1;
      if (lay < 0) {
        jp_key(&L->jp, k);
        return perr(L, "a layout is column, row, vocab, replicated or expert");
      }
      g->layers[g->nlayers++] = (ParLayer){arena_strdup(a, k), (Layout)lay};
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
      static const char *const ck[] = {"after", "op", "bytes"};
      if (!json_is_object(c))
        return perr(L, "a collective is an object {after, op, bytes}");
      if (only(L, c, ck, 3) < 0)
        return -1;
      ParColl *pc = &g->coll[g->ncoll];
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
    if (load_group(L, go, &f->g[g]) < 0)
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

ParDb *pardb_load_text(const char *path, const char *text, size_t len,
                       Error *err) {
  ParDb *db = xcalloc(1, sizeof(*db));
  arena_init(&db->arena);
  PLoader L = {.doc = {path, text, len}, .err = err, .db = db};
  jp_init(&L.jp);
  json_t *root = jdoc_parse(&L.doc, err);
  int rc = -1;
  if (!root)
    goto out;
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
    if (!json_is_number(v) || !(json_number_value(v) >= 0)) {
      perr(&L, "%s: a latency in microseconds, not negative", links[i]);
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
  json_decref(root);
  if (rc < 0) {
    pardb_free(db);
    return NULL;
  }
  return db;
}

ParDb *pardb_load(const char *path, Error *err) {
  size_t len;
  char *text = fs_read(path, &len, err);
  if (!text)
    return NULL;
  ParDb *db = pardb_load_text(path, text, len, err);
  free(text);
  return db;
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

/* Divide the family's split keys of root's config by n. */
static int split_config(const Model *m, json_t *cfg, const ParGroup *g, int n,
                        const char *flag, Error *err) {
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
      else if (v < n && fmod(n, v) == 0)
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
    json_object_set_new(cfg, s->key, json_integer((json_int_t)x));
  }
  return 0;
}

/* The rows of the layer at path (a basic layer's row, or a composite's). */
static int row_of(const Plan *p, const char *path) {
  for (int r = 0; r < p->nrows; r++)
    if (strcmp(p->rows[r].path, path) == 0)
      return r;
  return -1;
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
static double slot_params(const Plan *p, const Values *v, const char *path) {
  for (int i = 0; i < p->nslots; i++) {
    const Slot *s = &p->slots[i];
    if (strcmp(s->layer->path, path) == 0) {
      lm_metric_fn f = s->state[M_PARAM_BYTES - M_TRAFFIC];
      return f ? f(v->args + s->argbase) : 0;
    }
  }
  return -1;
}

/* Each declared layout against the split plan: sharded layers hold fewer
 * parameters per GPU than on one, replicated ones as many. */
static int check_layouts(const ParGroup *g, const Plan *full, const Plan *split,
                         int n, const char *flag, Error *err) {
  double run[V_COUNT] = {[V_B] = 1,        [V_S] = 1,
                         [V_T] = 1,        [V_L] = 1,
                         [V_W_BYTES] = 2,  [V_A_BYTES] = 2,
                         [V_KV_BYTES] = 2, [V_SRAM_BYTES] = 65536,
                         [V_E_BYTES] = 2};
  Values *vf = values_new(full), *vs = values_new(split);
  int rc = -1;
  if (plan_eval(full, run, vf, err) < 0 || plan_eval(split, run, vs, err) < 0)
    goto out;
  for (int i = 0; i < g->nlayers; i++) {
    const ParLayer *l = &g->layers[i];
    double a = slot_params(full, vf, l->path),
           b = slot_params(split, vs, l->path);
    if (a < 0) {
      err_set(err, "parallel.json: layer '%s' (%s) is not in the model",
              l->path, layout_name[l->layout]);
      goto out;
    }
    /* column layers may stay whole: key/value heads fewer than the GPUs
     * are replicated */
    bool ok = l->layout == LAYOUT_REPLICATED ? b == a
              : l->layout == LAYOUT_COLUMN   ? b <= a
                                             : b < a || a == 0;
    if (!ok) {
      err_set(err,
              "%s %d: layer '%s' is declared %s in parallel.json but "
              "holds %g parameter bytes per GPU against %g on one GPU "
              "(does its template use the split config keys?)",
              flag, n, l->path, layout_name[l->layout], b, a);
      goto out;
    }
  }
  rc = 0;
out:
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
  if (tp > 1 || ep > 1) {
    json_t *root = json_loadb(m->doc.text, m->doc.len, 0, NULL);
    json_t *cfg = json_object_get(root, "config");
    if (!json_is_object(cfg)) {
      json_decref(root);
      err_set(err, "%s: no config object to split", m->doc.file);
      goto fail;
    }
    int ns[2] = {tp, ep};
    const char *flags[2] = {"--tp", "--ep"};
    for (int g = 0; g < 2; g++)
      if (ns[g] > 1 &&
          split_config(m, cfg, &f->g[g], ns[g], flags[g], err) < 0) {
        json_decref(root);
        goto fail;
      }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    pp->model = model_load_text(m->doc.file, text, strlen(text), reg, err);
    free(text);
    if (!pp->model)
      goto fail;
    use = pp->model;
  }
  if (!(pp->plan = plan_build(use, attn, err)))
    goto fail;
  if (tp > 1 || ep > 1) {
    if (!(full = plan_build(m, attn, err)))
      goto fail;
    int ns[2] = {tp, ep};
    const char *flags[2] = {"--tp", "--ep"};
    for (int g = 0; g < 2; g++)
      if (ns[g] > 1 &&
          check_layouts(&f->g[g], full, pp->plan, ns[g], flags[g], err) < 0)
        goto fail;
    int cap = f->g[0].ncoll + f->g[1].ncoll;
    pp->comm = arena_alloc(&pp->arena, sizeof(CommOp) * (size_t)(cap + 1));
    for (int g = 0; g < 2; g++) {
      if (ns[g] <= 1)
        continue;
      for (int i = 0; i < f->g[g].ncoll; i++) {
        const ParColl *c = &f->g[g].coll[i];
        int r = row_of(pp->plan, c->after);
        if (r < 0) {
          err_set(err,
                  "parallel.json: collective after '%s': the model has "
                  "no such operation",
                  c->after);
          goto fail;
        }
        CommOp *op = &pp->comm[pp->ncomm++];
        size_t len = strlen(c->after) + strlen(coll_name[c->kind]) + 2;
        char *path = arena_alloc(&pp->arena, len);
        snprintf(path, len, "%s.%s", c->after, coll_name[c->kind]);
        *op = (CommOp){.path = path,
                       .kind = c->kind,
                       .group = g,
                       .after = r,
                       .count = pp->plan->rows[r].count};
        if (compile_bytes(pp, m, c->bytes, &op->bytes, err) < 0)
          goto fail;
      }
    }
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
  plan_free(full);
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

int phase_latency(const Prediction *p, PhaseResult *ph, const double *run,
                  Error *err) {
  const ParPlan *pp = p->par;
  ph->latency = ph->pred ? ph->pred_total : ph->total_time;
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
      bool cross = (s * o->tp) / gpn != ((s + 1) * o->tp) / gpn;
      if (link_for(p, 2, cross, &bw, &lat, err) < 0)
        return -1;
      ph->stage_send[s] = coll_time(COLL_SEND, 2, ph->send_bytes, bw, lat);
      if (ph->stage_send[s] > ph->send_time)
        ph->send_time = ph->stage_send[s];
    }
  }
  ph->latency = ph->pred ? pipeline_time(p, ph, ph->pred, ph->pred_total)
                         : pipeline_time(p, ph, ph->time, ph->total_time);
  ph->latency_roofline = pipeline_time(p, ph, ph->time, ph->total_time);
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
