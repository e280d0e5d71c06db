/* hardware.c: the GPU database (hardware.json).
 *
 * Dense peak rates, memory bandwidth and capacity, L2, on-chip shared
 * memory per SM and SM count, each with its source. Users add a GPU by
 * adding an entry; every entry is checked strictly (unknown members,
 * missing or non-positive figures, a figure without a source, duplicate
 * ids) with errors located in the file.
 */
#include "runtime.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Field {
  const char *key;
  bool optional; /* may be null: the GPU lacks it */
  double scale;  /* to bytes or operations per second */
  size_t offset; /* into Gpu */
  const char *unit; /* of the scaled value, for messages */
  double min;    /* in the file's unit; 0: any positive value */
  bool integer;  /* must be a whole number */
  bool fraction; /* in (0, 1], not scaled */
} Field;

/* Every figure, after scaling, lies in [1, HW_MAX_SCALED]: far beyond any
 * real GPU, and small enough that times and intensities computed from it
 * stay finite. smem_per_sm_kib becomes the model's sram_bytes, whose
 * modules need at least one tile: 1 KiB (real GPUs have 48-256). */
#define HW_MAX_SCALED 1e30

static const Field fields[] = {
    {"fp16_tflops", false, 1e12, offsetof(Gpu, fp16_flops), "FLOP/s", 0, false,
     false},
    {"fp8_tflops", true, 1e12, offsetof(Gpu, fp8_flops), "FLOP/s", 0, false,
     false},
    {"int8_tops", true, 1e12, offsetof(Gpu, int8_ops), "op/s", 0, false, false},
    {"fp6_tflops", true, 1e12, offsetof(Gpu, fp6_flops), "FLOP/s", 0, false,
     false},
    {"fp4_tflops", true, 1e12, offsetof(Gpu, fp4_flops), "FLOP/s", 0, false,
     false},
    /* the CUDA cores and special-function units: a flash kernel's softmax
     * (calib.c: attn_tc) */
    {"fp32_tflops", true, 1e12, offsetof(Gpu, fp32_flops), "FLOP/s", 0, false,
     false},
    {"sfu_tops", true, 1e12, offsetof(Gpu, sfu_ops), "op/s", 0, false, false},
    {"attn_softmax_hidden", true, 1.0, offsetof(Gpu, softmax_hidden),
     "fraction", 0, false, true},
    {"hbm_gbps", false, 1e9, offsetof(Gpu, bandwidth), "bytes/s", 0, false,
     false},
    {"memory_gib", false, 1073741824.0, offsetof(Gpu, memory), "bytes", 0,
     false, false},
    {"l2_mib", false, 1048576.0, offsetof(Gpu, l2), "bytes", 0, false, false},
    {"smem_per_sm_kib", false, 1024.0, offsetof(Gpu, smem_per_sm), "bytes", 1,
     false, false},
    {"sm_count", false, 1.0, offsetof(Gpu, sm_count), "SMs", 1, true, false},
    /* the interconnect of the node the GPU is sold in (optional) */
    {"nvlink_gbps", true, 1e9, offsetof(Gpu, nvlink_bw), "bytes/s", 0, false,
     false},
    {"pcie_gbps", true, 1e9, offsetof(Gpu, pcie_bw), "bytes/s", 0, false,
     false},
    {"network_gbps", true, 1e9, offsetof(Gpu, network_bw), "bytes/s", 0, false,
     false},
    {"gpus_per_node", true, 1.0, offsetof(Gpu, gpus_per_node), "GPUs", 1, true,
     false},
};

typedef struct HwLoader {
  const JsonDoc *doc;
  Error *err;
  JsonPath jp;
} HwLoader;

static int herr(HwLoader *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int herr(HwLoader *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jdoc_verror(L->err, L->doc, &L->jp, fmt, ap);
  va_end(ap);
  return -1;
}

bool gpu_id_valid(const char *s) {
  if (!*s)
    return false;
  for (; *s; s++)
    if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-'))
      return false;
  return true;
}

static int load_gpu(HwLoader *L, GpuDb *db, json_t *o, Gpu *g) {
  if (!json_is_object(o))
    return herr(L, "a GPU entry must be an object");
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    bool known = strcmp(key, "id") == 0 || strcmp(key, "name") == 0 ||
                 strcmp(key, "sources") == 0 || strcmp(key, "notes") == 0 ||
                 strcmp(key, "nvswitch") == 0;
    for (size_t i = 0; i < LM_ARRAY_LEN(fields) && !known; i++)
      known = strcmp(key, fields[i].key) == 0;
    if (!known) {
      jp_key(&L->jp, key);
      return herr(L, "unknown member '%s' (expected: id, name, fp16_tflops, "
                     "fp8_tflops, int8_tops, fp6_tflops, fp4_tflops, "
                     "fp32_tflops, sfu_tops, attn_softmax_hidden, "
                     "hbm_gbps, memory_gib, l2_mib, smem_per_sm_kib, sm_count, nvlink_gbps, nvswitch, "
                     "pcie_gbps, network_gbps, gpus_per_node, sources, "
                     "notes)",
                  key);
    }
  }
  json_t *id = json_object_get(o, "id"), *name = json_object_get(o, "name");
  if (!json_is_string(id) || !gpu_id_valid(json_string_value(id))) {
    if (id)
      jp_key(&L->jp, "id");
    return herr(L, id ? "id must be lowercase letters, digits and '-'"
                      : "missing required member 'id'");
  }
  g->id = arena_strdup(&db->arena, json_string_value(id));
  if (!json_is_string(name)) {
    if (name)
      jp_key(&L->jp, "name");
    return herr(L, "GPU '%s': %s", g->id,
                name ? "name must be a string" : "missing required member 'name'");
  }
  long bad =
      str_find_control(json_string_value(name), json_string_length(name));
  if (bad >= 0) {
    jp_key(&L->jp, "name");
    return herr(L,
                "GPU '%s': the name contains a control character (byte 0x%02x "
                "at offset %ld): it is printed to the terminal",
                g->id, (unsigned char)json_string_value(name)[bad], bad);
  }
  g->name = arena_strdup(&db->arena, json_string_value(name));
  json_t *src = json_object_get(o, "sources");
  if (!json_is_object(src)) {
    if (src)
      jp_key(&L->jp, "sources");
    return herr(L, "GPU '%s': 'sources' must be an object naming a source "
                   "for every figure",
                g->id);
  }
  json_t *notes = json_object_get(o, "notes");
  if (notes && !json_is_string(notes)) {
    jp_key(&L->jp, "notes");
    return herr(L, "notes must be a string");
  }
  for (size_t i = 0; i < LM_ARRAY_LEN(fields); i++) {
    const Field *f = &fields[i];
    json_t *fv = json_object_get(o, f->key);
    double *dst = (double *)((char *)g + f->offset);
    *dst = 0;
    if (!fv || json_is_null(fv)) {
      if (f->optional)
        continue;
      if (fv)
        jp_key(&L->jp, f->key);
      return herr(L, "GPU '%s': %s is required", g->id, f->key);
    }
    jp_key(&L->jp, f->key);
    if (!json_is_number(fv))
      return herr(L, "GPU '%s': %s must be a number", g->id, f->key);
    double x = json_number_value(fv);
    if (!(x > 0) || !isfinite(x))
      return herr(L, "GPU '%s': %s must be positive", g->id, f->key);
    if (f->integer && x != floor(x))
      return herr(L, "GPU '%s': %s must be a whole number", g->id, f->key);
    if (x < f->min)
      return herr(L, "GPU '%s': %s = %g is below %g", g->id, f->key, x,
                  f->min);
    if (f->fraction && x > 1)
      return herr(L, "GPU '%s': %s = %g must be at most 1 (a fraction)",
                  g->id, f->key, x);
    double scaled = x * f->scale;
    if (!f->fraction && !(scaled >= 1 && scaled <= HW_MAX_SCALED))
      return herr(L,
                  "GPU '%s': %s = %g is out of range: times %g it must give "
                  "1 to %g %s",
                  g->id, f->key, x, f->scale, HW_MAX_SCALED, f->unit);
    jp_pop(&L->jp);
    json_t *s = json_object_get(src, f->key);
    if (!json_is_string(s) || json_string_length(s) == 0) {
      jp_key(&L->jp, "sources");
      return herr(L, "GPU '%s': %s has no source (add \"%s\": \"...\" to "
                     "sources)",
                  g->id, f->key, f->key);
    }
    *dst = scaled;
  }
  json_t *sw = json_object_get(o, "nvswitch");
  if (sw && !json_is_boolean(sw)) {
    jp_key(&L->jp, "nvswitch");
    return herr(L, "GPU '%s': nvswitch must be true or false", g->id);
  }
  g->nvswitch = sw && json_is_true(sw);
  if (sw && !json_is_string(json_object_get(src, "nvswitch"))) {
    jp_key(&L->jp, "sources");
    return herr(L, "GPU '%s': nvswitch has no source (add \"nvswitch\": "
                   "\"...\" to sources)",
                g->id);
  }
  json_object_foreach(src, key, v) {
    bool known = strcmp(key, "nvswitch") == 0;
    for (size_t i = 0; i < LM_ARRAY_LEN(fields) && !known; i++)
      known = strcmp(key, fields[i].key) == 0;
    if (!known || !json_is_string(v)) {
      jp_key(&L->jp, "sources");
      jp_key(&L->jp, key);
      return herr(L, known ? "a source must be a string"
                           : "source for unknown figure '%s'",
                  key);
    }
  }
  return 0;
}

/* JdocBuild: the GPU table of a parsed document (which it does not keep). */
static void *build_gpudb(JsonDoc *doc, json_t *root, const void *ctx,
                         Error *err) {
  (void)ctx;
  GpuDb *db = xcalloc(1, sizeof(GpuDb));
  arena_init(&db->arena);
  HwLoader L = {.doc = doc, .err = err};
  jp_init(&L.jp);
  int rc = 0;
  json_t *fmt = json_object_get(root, "format");
  json_t *gpus = json_object_get(root, "gpus");
  const char *key;
  json_t *v;
  if (!json_is_object(root)) {
    rc = herr(&L, "a hardware file is a JSON object");
    goto out;
  }
  json_object_foreach(root, key, v) {
    if (strcmp(key, "format") && strcmp(key, "description") &&
        strcmp(key, "gpus")) {
      jp_key(&L.jp, key);
      rc = herr(&L, "unknown member '%s' (expected: format, description, "
                    "gpus)",
                key);
      goto out;
    }
  }
  if (!json_is_string(fmt) ||
      strcmp(json_string_value(fmt), "lm-predictor-hardware") != 0) {
    if (fmt)
      jp_key(&L.jp, "format");
    rc = herr(&L, "format must be \"lm-predictor-hardware\"");
    goto out;
  }
  if (!json_is_array(gpus) || json_array_size(gpus) == 0) {
    if (gpus)
      jp_key(&L.jp, "gpus");
    rc = herr(&L, "gpus must be a non-empty array");
    goto out;
  }
  db->n = (int)json_array_size(gpus);
  db->gpus = arena_alloc(&db->arena, sizeof(Gpu) * (size_t)db->n);
  jp_key(&L.jp, "gpus");
  for (int i = 0; i < db->n; i++) {
    jp_index(&L.jp, i);
    if ((rc = load_gpu(&L, db, json_array_get(gpus, (size_t)i), &db->gpus[i])) < 0)
      goto out;
    for (int k = 0; k < i; k++)
      if (strcmp(db->gpus[k].id, db->gpus[i].id) == 0) {
        jp_key(&L.jp, "id");
        rc = herr(&L, "GPU id '%s' appears twice", db->gpus[i].id);
        goto out;
      }
    jp_pop(&L.jp);
  }
out:
  if (rc < 0) {
    gpudb_free(db);
    return NULL;
  }
  return db;
}

GpuDb *gpudb_load_text(const char *path, const char *text, size_t len,
                       Error *err) {
  return jdoc_load(path, text, len, build_gpudb, NULL, err);
}

GpuDb *gpudb_load(const char *path, Error *err) {
  return jdoc_load(path, NULL, 0, build_gpudb, NULL, err);
}

/* The doubles of a Gpu, in the order they are written. */
#define GPU_FIGURES(X)                                                         \
  X(fp16_flops) X(fp8_flops) X(int8_ops) X(fp6_flops) X(fp4_flops)             \
  X(fp32_flops) X(sfu_ops) X(softmax_hidden)                                  \
  X(bandwidth) X(memory) X(l2) X(smem_per_sm) X(sm_count) X(nvlink_bw)         \
  X(pcie_bw) X(network_bw) X(gpus_per_node)

/* "<n>\n", then per GPU: id TAB name TAB each figure (%a) TAB nvswitch
 * (0/1) NL. Ids are [a-z0-9-] and names hold no control character (both
 * checked), so neither holds a tab or a newline. */
char *gpudb_serialize(const GpuDb *db) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%d\n", db->n);
  for (int i = 0; i < db->n; i++) {
    const Gpu *g = &db->gpus[i];
    buf_printf(&b, "%s\t%s", g->id, g->name);
#define PUT(f) buf_printf(&b, "\t%a", g->f);
    GPU_FIGURES(PUT)
#undef PUT
    buf_printf(&b, "\t%d\n", g->nvswitch ? 1 : 0);
  }
  return buf_steal(&b);
}

/* One tab- or newline-ended field at *p: copied into the arena. */
static const char *take_field(Arena *a, const char **p, const char *end,
                              char stop) {
  const char *q = *p;
  while (q < end && *q != '\t' && *q != '\n')
    q++;
  if (q >= end || *q != stop || q == *p)
    return NULL;
  const char *s = arena_strndup(a, *p, (size_t)(q - *p));
  *p = q + 1;
  return s;
}

static bool take_double(const char **p, const char *end, char stop,
                        double *x) {
  char *e = NULL;
  if (*p >= end)
    return false;
  errno = 0;
  *x = strtod(*p, &e);
  if (e == *p || e >= end || *e != stop || errno != 0)
    return false;
  *p = e + 1;
  return true;
}

GpuDb *gpudb_deserialize(const char *text, size_t len) {
  const char *p = text, *end = text + len;
  char *e = NULL;
  long n = strtol(p, &e, 10);
  if (e == p || e >= end || *e != '\n' || n <= 0 || n > 100000)
    return NULL;
  p = e + 1;
  GpuDb *db = xcalloc(1, sizeof(GpuDb));
  arena_init(&db->arena);
  db->n = (int)n;
  db->gpus = arena_alloc(&db->arena, sizeof(Gpu) * (size_t)n);
  for (int i = 0; i < db->n; i++) {
    Gpu *g = &db->gpus[i];
    memset(g, 0, sizeof(*g));
    double sw = 0;
    if (!(g->id = take_field(&db->arena, &p, end, '\t')) ||
        !(g->name = take_field(&db->arena, &p, end, '\t')))
      goto bad;
#define GET(f)                                                                 \
  if (!take_double(&p, end, '\t', &g->f))                                      \
    goto bad;
    GPU_FIGURES(GET)
#undef GET
    if (!take_double(&p, end, '\n', &sw) || (sw != 0 && sw != 1))
      goto bad;
    g->nvswitch = sw == 1;
  }
  if (p != end)
    goto bad;
  return db;
bad:
  gpudb_free(db);
  return NULL;
}

#define HW_CACHE_MAGIC "lm-predictor-gpus"

GpuDb *gpudb_load_cached(const char *path, const char *text, size_t len,
                         Error *err) {
  char *dir = cache_dir("hw");
  if (!dir)
    return gpudb_load_text(path, text, len, err);
  /* the key: the file's bytes and the build that checks them */
  Buf k;
  buf_init(&k);
  buf_printf(&k, "%s\n%s\n%zu\n", HW_CACHE_MAGIC, cache_build_id(), len);
  uint64_t h[2], t[2];
  jitcache_hash(text, len, 0, t);
  buf_printf(&k, "%016llx%016llx\n", (unsigned long long)t[0],
             (unsigned long long)t[1]);
  jitcache_hash(k.data, k.len, 0, h);
  buf_free(&k);
  char key[33];
  snprintf(key, sizeof(key), "%016llx%016llx", (unsigned long long)h[0],
           (unsigned long long)h[1]);
  Buf file;
  buf_init(&file);
  buf_printf(&file, "%s/%s.gpus", dir, key);
  Error why;
  err_clear(&why);
  size_t off = 0, blen = 0;
  char *cached = cache_get(file.data, HW_CACHE_MAGIC, key, &off, &blen, &why);
  GpuDb *db = cached ? gpudb_deserialize(cached + off, blen) : NULL;
  free(cached);
  if (!db && (db = gpudb_load_text(path, text, len, err)) &&
      jitcache_mkdir(dir) == 0) {
    char *body = gpudb_serialize(db);
    cache_put(file.data, HW_CACHE_MAGIC, key, body, strlen(body), &why);
    free(body);
  }
  buf_free(&file);
  free(dir);
  return db;
}

const Gpu *gpudb_find(const GpuDb *db, const char *id) {
  for (int i = 0; i < db->n; i++)
    if (strcmp(db->gpus[i].id, id) == 0)
      return &db->gpus[i];
  return NULL;
}

void gpudb_free(GpuDb *db) {
  if (!db)
    return;
  arena_free(&db->arena);
  free(db);
}
