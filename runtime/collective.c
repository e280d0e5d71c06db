/* collective.c: calibrated collective times (calibration/collectives.json).
 *
 * Measured NCCL times per message size, one table per (GPUs of a board,
 * collective, group size, within a node or across nodes): [bytes,
 * microseconds] points, sizes increasing, times not decreasing. Between
 * points the time is linear in bytes; below the first it is the first
 * point's (the fixed cost of a small message); above the last it grows at
 * the last point's achieved bandwidth, t_last x bytes / bytes_last. The
 * tables hold all_reduce and send; all_gather, reduce_scatter and
 * all_to_all of b bytes move b (n-1)/n bytes over each GPU's links, as an
 * all-reduce of b / 2 does (2 (b/2) (n-1)/n), and take that time. A
 * collective without a table has no calibrated time (the caller keeps the
 * datasheet bound). A table's kernel names the implementation measured:
 * "nccl" (the default) or an engine's own all-reduce ("vllm_custom", ...,
 * which engines/<id>.json's all_reduce chooses by size and group). Several
 * files may be loaded into one set (collcal_extend): Vidur's NCCL tables
 * and the custom kernels' published figures. DESIGN.md section 15.2.
 */
#include "runtime.h"

#include <stdarg.h>
#include <string.h>

typedef struct CollTable {
  const char **hw;
  int nhw;
  const char *kernel; /* "nccl" unless given */
  CollKind kind;      /* COLL_ALL_REDUCE or COLL_SEND */
  int gpus;
  bool nodes;           /* the group spans nodes */
  double *bytes, *time; /* time in seconds */
  int n;
} CollTable;

struct CollCal {
  CollTable *t;
  int n;
  Arena arena;
};

typedef struct CLoader {
  JsonDoc doc;
  JsonPath jp;
  Error *err;
  CollCal *c;
} CLoader;

static int cerr(CLoader *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int cerr(CLoader *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jdoc_verror(L->err, &L->doc, &L->jp, fmt, ap);
  va_end(ap);
  return -1;
}

static int only_keys(CLoader *L, json_t *o, const char *const *keys, int n) {
  return jdoc_only_members(L->err, &L->doc, &L->jp, o, keys, n);
}

/* A non-empty string member (its value, or NULL after an error). */
static const char *need_str(CLoader *L, json_t *o, const char *key) {
  return jdoc_string_member(L->err, &L->doc, &L->jp, o, key);
}

static int load_hardware(CLoader *L, json_t *o, CollTable *t) {
  json_t *hw = json_object_get(o, "hardware");
  if (hw)
    jp_key(&L->jp, "hardware");
  if (!json_is_array(hw) || !json_array_size(hw))
    return cerr(L, hw ? "hardware must be a non-empty array of GPU ids"
                      : "missing member 'hardware'");
  t->hw = arena_alloc(&L->c->arena, sizeof(char *) * json_array_size(hw));
  for (size_t i = 0; i < json_array_size(hw); i++) {
    const char *s = json_string_value(json_array_get(hw, i));
    if (!s || !*s) {
      jp_index(&L->jp, (int)i);
      return cerr(L, "a GPU id is a non-empty string (hardware.json)");
    }
    t->hw[t->nhw++] = arena_strdup(&L->c->arena, s);
  }
  jp_pop(&L->jp);
  return 0;
}

static int load_points(CLoader *L, json_t *o, CollTable *t) {
  json_t *pts = json_object_get(o, "points");
  if (pts)
    jp_key(&L->jp, "points");
  if (!json_is_array(pts) || !json_array_size(pts))
    return cerr(L, pts ? "points must be a non-empty array of [bytes, "
                         "microseconds]"
                       : "missing member 'points'");
  size_t n = json_array_size(pts);
  t->bytes = arena_alloc(&L->c->arena, sizeof(double) * n);
  t->time = arena_alloc(&L->c->arena, sizeof(double) * n);
  for (size_t i = 0; i < n; i++) {
    json_t *p = json_array_get(pts, i);
    jp_index(&L->jp, (int)i);
    json_t *b = json_array_get(p, 0), *us = json_array_get(p, 1);
    /* bounded, so that no time is infinite: above the last point a time
     * grows as t_last x bytes / bytes_last (at most 1e3 s x bytes) */
    if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_number(b) ||
        !json_is_number(us) || !(json_number_value(b) >= 1) ||
        !(json_number_value(b) <= 1e15) || !(json_number_value(us) > 0) ||
        !(json_number_value(us) <= 1e9))
      return cerr(L, "a point is [bytes, microseconds], bytes from 1 to "
                     "1e15, microseconds above 0 and at most 1e9");
    double x = json_number_value(b), y = json_number_value(us) * 1e-6;
    if (i > 0 && !(x > t->bytes[i - 1]))
      return cerr(L, "message sizes must increase from point to point");
    if (i > 0 && y < t->time[i - 1])
      return cerr(L,
                  "a larger message must not take less time (%g us after "
                  "%g us)",
                  y * 1e6, t->time[i - 1] * 1e6);
    t->bytes[i] = x;
    t->time[i] = y;
    t->n++;
    jp_pop(&L->jp);
  }
  jp_pop(&L->jp);
  return 0;
}

static bool same_key(const CollTable *a, const CollTable *b) {
  if (a->kind != b->kind || a->gpus != b->gpus || a->nodes != b->nodes ||
      strcmp(a->kernel, b->kernel) != 0)
    return false;
  for (int i = 0; i < a->nhw; i++)
    for (int k = 0; k < b->nhw; k++)
      if (strcmp(a->hw[i], b->hw[k]) == 0)
        return true;
  return false;
}

static int load_table(CLoader *L, json_t *o, CollTable *t) {
  static const char *const keys[] = {"hardware", "collective", "gpus",  "span",
                                     "from",     "points",     "kernel"};
  if (!json_is_object(o))
    return cerr(L, "a table is an object {hardware, collective, gpus, span, "
                   "from, points, kernel (optional)}");
  if (only_keys(L, o, keys, 7) < 0 || load_hardware(L, o, t) < 0 ||
      !need_str(L, o, "from"))
    return -1;
  t->kernel = "nccl";
  if (json_object_get(o, "kernel")) {
    const char *k = need_str(L, o, "kernel");
    if (!k)
      return -1;
    t->kernel = arena_strdup(&L->c->arena, k);
  }
  const char *c = need_str(L, o, "collective");
  if (!c)
    return -1;
  if (strcmp(c, coll_name[COLL_ALL_REDUCE]) != 0 &&
      strcmp(c, coll_name[COLL_SEND]) != 0) {
    jp_key(&L->jp, "collective");
    return cerr(L,
                "collective is \"all_reduce\" or \"send\" (the others are "
                "priced from all_reduce), not '%s'",
                c);
  }
  t->kind = strcmp(c, "send") == 0 ? COLL_SEND : COLL_ALL_REDUCE;
  json_t *g = json_object_get(o, "gpus");
  if (!json_is_integer(g) || json_integer_value(g) < 2 ||
      json_integer_value(g) > LM_MAX_PARALLEL) {
    if (g)
      jp_key(&L->jp, "gpus");
    return cerr(L,
                g ? "gpus is the group's size, an integer from 2 to %d"
                  : "missing member 'gpus'",
                (int)LM_MAX_PARALLEL);
  }
  t->gpus = (int)json_integer_value(g);
  if (t->kind == COLL_SEND && t->gpus != 2) {
    jp_key(&L->jp, "gpus");
    return cerr(L, "a send is between 2 GPUs");
  }
  const char *span = need_str(L, o, "span");
  if (!span)
    return -1;
  if (strcmp(span, "node") != 0 && strcmp(span, "nodes") != 0) {
    jp_key(&L->jp, "span");
    return cerr(L, "span is \"node\" (every GPU in one node) or \"nodes\"");
  }
  t->nodes = strcmp(span, "nodes") == 0;
  return load_points(L, o, t);
}

/* Load the file's tables into a new set, or after those of ctx (a CollCal
 * being extended: its tables are kept, a repeated key is an error). */
static void *build(JsonDoc *doc, json_t *root, const void *ctx, Error *err) {
  CollCal *old = (CollCal *)ctx;
  CollCal *c = old;
  if (!c) {
    c = xcalloc(1, sizeof(*c));
    arena_init(&c->arena);
  }
  int n0 = c->n;
  CLoader L = {.doc = *doc, .err = err, .c = c};
  jp_init(&L.jp);
  static const char *const keys[] = {"format", "description", "source",
                                     "tables"};
  if (!json_is_object(root)) {
    cerr(&L, "a collectives file is a JSON object");
    goto fail;
  }
  if (only_keys(&L, root, keys, 4) < 0 || !need_str(&L, root, "description") ||
      !need_str(&L, root, "source"))
    goto fail;
  const char *fmt = need_str(&L, root, "format");
  if (!fmt)
    goto fail;
  if (strcmp(fmt, "lm-predictor-collectives") != 0) {
    jp_key(&L.jp, "format");
    cerr(&L, "format must be \"lm-predictor-collectives\"");
    goto fail;
  }
  json_t *tabs = json_object_get(root, "tables");
  if (!json_is_array(tabs)) {
    if (tabs)
      jp_key(&L.jp, "tables");
    cerr(&L, tabs ? "tables must be an array" : "missing member 'tables'");
    goto fail;
  }
  jp_key(&L.jp, "tables");
  CollTable *prev = c->t;
  c->t = arena_alloc(&c->arena, sizeof(CollTable) *
                                    ((size_t)n0 + json_array_size(tabs) + 1));
  if (n0)
    memcpy(c->t, prev, sizeof(CollTable) * (size_t)n0);
  for (size_t i = 0; i < json_array_size(tabs); i++) {
    jp_index(&L.jp, (int)i);
    CollTable *t = &c->t[c->n];
    memset(t, 0, sizeof(*t));
    if (load_table(&L, json_array_get(tabs, i), t) < 0)
      goto fail;
    for (int k = 0; k < c->n; k++)
      if (same_key(&c->t[k], t)) {
        char where[64];
        if (k < n0)
          snprintf(where, sizeof(where), "a file loaded before");
        else
          snprintf(where, sizeof(where), "table %d", k - n0);
        cerr(&L, "a second %s %s table over %d GPUs (%s) for a GPU of %s",
             t->kernel, coll_name[t->kind], t->gpus,
             t->nodes ? "nodes" : "node", where);
        goto fail;
      }
    c->n++;
    jp_pop(&L.jp);
  }
  return c;
fail:
  if (old) { /* the set keeps its earlier files' tables only */
    c->n = n0;
    return NULL;
  }
  collcal_free(c);
  return NULL;
}

CollCal *collcal_load_text(const char *path, const char *text, size_t len,
                           Error *err) {
  return jdoc_load(path, text, len, build, NULL, err);
}

CollCal *collcal_load(const char *path, Error *err) {
  return jdoc_load(path, NULL, 0, build, NULL, err);
}

int collcal_extend(CollCal *c, const char *path, const char *text, size_t len,
                   Error *err) {
  return jdoc_load(path, text, len, build, c, err) ? 0 : -1;
}

void collcal_free(CollCal *c) {
  if (!c)
    return;
  arena_free(&c->arena);
  free(c);
}

static const CollTable *find(const CollCal *c, const char *hw,
                             const char *kernel, CollKind k, int n,
                             bool nodes) {
  for (int i = 0; i < c->n; i++) {
    const CollTable *t = &c->t[i];
    if (t->kind != k || t->gpus != n || t->nodes != nodes ||
        strcmp(t->kernel, kernel) != 0)
      continue;
    for (int h = 0; h < t->nhw; h++)
      if (strcmp(t->hw[h], hw) == 0)
        return t;
  }
  return NULL;
}

static double table_time(const CollTable *t, double b) {
  if (b <= t->bytes[0])
    return t->time[0];
  for (int i = 1; i < t->n; i++)
    if (b <= t->bytes[i]) {
      double x0 = t->bytes[i - 1], x1 = t->bytes[i];
      return t->time[i - 1] +
             (b - x0) * (t->time[i] - t->time[i - 1]) / (x1 - x0);
    }
  return t->time[t->n - 1] * b / t->bytes[t->n - 1];
}

double collcal_time(const CollCal *c, const char *hw, const char *kernel,
                    CollKind k, int n, bool nodes, double bytes) {
  if (!c || n <= 1)
    return -1;
  if (!kernel)
    kernel = "nccl";
  if (k == COLL_SEND) {
    const CollTable *t = find(c, hw, kernel, COLL_SEND, 2, nodes);
    return t ? table_time(t, bytes) : -1;
  }
  const CollTable *t = find(c, hw, kernel, COLL_ALL_REDUCE, n, nodes);
  if (!t)
    return -1;
  return table_time(t, k == COLL_ALL_REDUCE ? bytes : bytes / 2);
}
