/* calib.c: calibrated kernel times and serving engines.
 *
 * A roofline is a lower bound: real kernels reach a fraction of the peak
 * that depends on their shape (wave quantisation of GEMM tiles over the
 * SMs) and kind, a fraction of the bandwidth, and cost a few microseconds
 * per launch whatever their size. calibration/<hw>.json holds those three
 * constants per kernel kind, fitted on measured kernel times by lmcalib;
 * engines/<id>.json says which rows one kernel of a serving engine fuses,
 * how many launches an unfused op costs, and what its attention kernel
 * skips. Everything per row that does not change between evaluations is
 * computed once by calib_plan, so calib_predict is a loop of a few
 * arithmetic operations per row.
 */
#include "calib.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

const char *const kernel_kind_name[KK_COUNT] = {
    "gemm", "bgemm", "attention", "norm",   "add",
    "act",  "rope",  "softmax",   "gather", "elementwise"};

int kernel_kind_find(const char *s) {
  for (int i = 0; i < KK_COUNT; i++)
    if (strcmp(s, kernel_kind_name[i]) == 0)
      return i;
  return -1;
}

bool kernel_kind_computes(KernelKind k) {
  return k == KK_GEMM || k == KK_BGEMM || k == KK_ATTENTION;
}

static inline __attribute__((always_inline)) double
waves(double m, double n, double k, double sms) {
  if (m <= 0 || n <= 0 || sms <= 0)
    return 1;
  /* x * 2^-7 is x / 128 exactly (and 2^-10, / 1024): no division */
  double tiles = ceil(m * 0.0078125) * ceil(n * 0.0078125);
  if (tiles < sms) {
    double split = floor(sms / tiles), ks = ceil(k * 0.0009765625);
    tiles *= split < ks ? split : ks;
  }
  return tiles / (ceil(tiles / sms) * sms);
}


/* ceil and floor are exact on every implementation: where the CPU has
 * SSE4.1 (roundsd), this and calib_predict_rows (which inlines it) are
 * compiled for it too and picked at load time (an x86-64 baseline build
 * expands each ceil and floor into a dozen instructions). */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__GLIBC__) && \
    !defined(__clang__) /* target_clones needs glibc's ifunc */
#define LM_SSE41_CLONES __attribute__((target_clones("sse4.1", "default")))
#else
#define LM_SSE41_CLONES
#endif
LM_SSE41_CLONES
double calib_waves(double m, double n, double k, double sms) {
  return waves(m, n, k, sms);
}

/* Compute time tc and memory time tm, overlapped: near the ridge point
 * neither term hides the other (the first tiles' loads precede the first
 * MMA and the last stores follow the last). */
static inline __attribute__((always_inline)) double
overlapped(const KernelFit *f, double tc, double tm) {
  return tc > tm ? tc + f->overlap * tm : tm + f->overlap * tc;
}

/* A flash kernel's compute time: its F FLOPs over E = F / (4d + 5) score
 * elements (the 4·d of QK^T and PV per element on the Tensor Cores, the 5
 * of the softmax not). Of the softmax's 5, the exponential runs on the
 * special-function units (sfu_ops) and max, subtract, sum and rescale on
 * the FP32 cores, one instruction each (fp32_flops / 2 per second); the
 * kernel does not hide them behind its MMAs, except the GPU's
 * attn_softmax_hidden fraction of the smaller of the two (Blackwell's
 * kernels overlap them: DESIGN.md section 12.1). d: the
 * head size, 0 when unknown (then, or for a GPU without the two rates,
 * every FLOP at the Tensor Core rate). */
static inline __attribute__((always_inline)) bool
attn_vec_known(double d, const Gpu *g) {
  return d > 0 && g->sfu_ops > 0 && g->fp32_flops > 0;
}

/* the softmax's time off the Tensor Cores, for E = e score elements */
static inline __attribute__((always_inline)) double
attn_vec(double e, const Gpu *g) {
  return e / g->sfu_ops + 4 * e / (g->fp32_flops / 2);
}

static inline __attribute__((always_inline)) double
attn_tc(double flops, double d, double rate, const Gpu *g) {
  if (!attn_vec_known(d, g))
    return flops / rate;
  double e = flops / (4 * d + 5);
  double mm = 4 * d * e / rate, vec = attn_vec(e, g);
  if (g->softmax_hidden > 0)
    return mm + vec - g->softmax_hidden * (mm < vec ? mm : vec);
  return mm + vec;
}

double calib_attn_compute_time(double flops, double d, double rate,
                               const Gpu *g) {
  return attn_tc(flops, d, rate, g);
}

double calib_attn_vector_time(double flops, double d, const Gpu *g) {
  return attn_vec_known(d, g) ? attn_vec(flops / (4 * d + 5), g) : 0;
}

double calib_kernel_time(const KernelFit *f, KernelKind kind, double flops,
                         double bytes, double m, double n, double k,
                         double peak, const Gpu *g) {
  double tm = bytes / (g->bandwidth * f->memory_eff);
  if (!kernel_kind_computes(kind))
    return tm;
  double tc;
  if (kind == KK_ATTENTION)
    tc = attn_tc(flops, k, peak * f->compute_eff, g);
  else
    tc = flops / (peak * f->compute_eff *
                  (kind == KK_GEMM ? calib_waves(m, n, k, g->sm_count) : 1));
  return overlapped(f, tc, tm);
}

/* ===== loading, with located errors ===== */

typedef struct Loader {
  const char *path, *raw;
  size_t rawlen;
  Error *err;
  JsonPath jp;
} Loader;

static int lerr(Loader *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int lerr(Loader *L, const char *fmt, ...) {
  JsonDoc doc = {.file = L->path, .text = L->raw, .len = L->rawlen};
  va_list ap;
  va_start(ap, fmt);
  jdoc_verror(L->err, &doc, &L->jp, fmt, ap);
  va_end(ap);
  return -1;
}

/* Every member of o is one of the names (NULL-terminated). */
static int only_keys(Loader *L, json_t *o, const char *const *names,
                     const char *expected) {
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    bool ok = false;
    for (int i = 0; names[i] && !ok; i++)
      ok = strcmp(key, names[i]) == 0;
    if (!ok) {
      jp_key(&L->jp, key);
      return lerr(L, "unknown member '%s' (expected: %s)", key, expected);
    }
  }
  return 0;
}

static int get_string(Loader *L, json_t *o, const char *key, bool required,
                      Arena *a, const char **out) {
  json_t *v = json_object_get(o, key);
  *out = NULL;
  if (!v) {
    if (required)
      return lerr(L, "missing required member '%s'", key);
    return 0;
  }
  if (!json_is_string(v) || json_string_length(v) == 0) {
    jp_key(&L->jp, key);
    return lerr(L, "%s must be a non-empty string", key);
  }
  *out = arena_strdup(a, json_string_value(v));
  return 0;
}

/* A number in [lo, hi]; absent leaves *out unchanged unless required. */
static int get_number(Loader *L, json_t *o, const char *key, bool required,
                      double lo, double hi, double *out) {
  json_t *v = json_object_get(o, key);
  if (!v) {
    if (required)
      return lerr(L, "missing required member '%s'", key);
    return 0;
  }
  jp_key(&L->jp, key);
  if (!json_is_number(v))
    return lerr(L, "%s must be a number", key);
  double x = json_number_value(v);
  if (!isfinite(x) || x < lo || x > hi)
    return lerr(L, "%s must lie in [%g, %g], not %g", key, lo, hi, x);
  jp_pop(&L->jp);
  *out = x;
  return 0;
}

static json_t *parse(const char *path, const char *text, size_t len,
                     Error *err) {
  JsonDoc doc = {.file = path, .text = text, .len = len};
  return jdoc_parse(&doc, err);
}

static int check_format(Loader *L, json_t *root, const char *want) {
  if (!json_is_object(root))
    return lerr(L, "the file must hold a JSON object");
  json_t *fmt = json_object_get(root, "format");
  if (!json_is_string(fmt) || strcmp(json_string_value(fmt), want) != 0) {
    if (fmt)
      jp_key(&L->jp, "format");
    return lerr(L, "format must be \"%s\"", want);
  }
  return 0;
}

static int load_fit(Loader *L, Calib *c, json_t *o, KernelKind k) {
  static const char *const keys[] = {
      "launch_us",     "compute_eff", "memory_eff", "overlap",
      "wall_slack_us", "rows",        "median_abs_error", "p90_abs_error",
      "from",          NULL};
  if (!json_is_object(o))
    return lerr(L, "a kernel kind's entry must be an object");
  if (only_keys(L, o, keys,
                "launch_us, compute_eff, memory_eff, overlap, wall_slack_us, "
                "rows, median_abs_error, p90_abs_error, from") < 0)
    return -1;
  KernelFit *f = &c->k[k];
  double us = 0, rows = 0, slack = 0;
  f->compute_eff = 1;
  if (get_number(L, o, "launch_us", true, 0, 1000, &us) < 0 ||
      get_number(L, o, "memory_eff", true, 0.01, 1.5, &f->memory_eff) < 0 ||
      get_number(L, o, "compute_eff", kernel_kind_computes(k), 0.01, 1.5,
                 &f->compute_eff) < 0 ||
      get_number(L, o, "overlap", false, 0, 1, &f->overlap) < 0 ||
      get_number(L, o, "wall_slack_us", false, 0, 1e6, &slack) < 0 ||
      get_number(L, o, "rows", false, 0, 1e9, &rows) < 0 ||
      get_number(L, o, "median_abs_error", false, 0, 1e9, &f->median_err) < 0 ||
      get_string(L, o, "from", false, &c->arena, &f->from) < 0)
    return -1;
  double p90 = 0;
  if (get_number(L, o, "p90_abs_error", false, 0, 1e9, &p90) < 0)
    return -1;
  f->launch = us * 1e-6;
  f->wall_slack = slack * 1e-6;
  f->rows = (int)rows;
  return 0;
}

/* jdoc_load's build step: root is borrowed, doc freed after the call. */
static void *calib_build(JsonDoc *doc, json_t *root, const void *ctx,
                         Error *err) {
  (void)ctx;
  Calib *c = xcalloc(1, sizeof(Calib));
  arena_init(&c->arena);
  c->path = arena_strdup(&c->arena, doc->file);
  Loader L = {
      .path = doc->file, .raw = doc->text, .rawlen = doc->len, .err = err};
  jp_init(&L.jp);
  static const char *const keys[] = {
      "format",  "hardware", "description", "made_by", "data",
      "sources", "kernels",  "residuals",   "notes",   NULL};
  int rc = -1;
  json_t *kern;
  if (check_format(&L, root, "lm-predictor-calibration") < 0 ||
      only_keys(&L, root, keys,
                "format, hardware, description, made_by, data, sources, "
                "kernels, residuals, notes") < 0 ||
      get_string(&L, root, "hardware", true, &c->arena, &c->hw_id) < 0)
    goto out;
  json_t *src = json_object_get(root, "sources");
  if (!json_is_array(src) || json_array_size(src) == 0) {
    if (src)
      jp_key(&L.jp, "sources");
    lerr(&L, "sources must be a non-empty array naming where the "
             "measurements come from");
    goto out;
  }
  kern = json_object_get(root, "kernels");
  if (!json_is_object(kern)) {
    if (kern)
      jp_key(&L.jp, "kernels");
    lerr(&L, kern ? "kernels must be an object"
                  : "missing required member "
                    "'kernels'");
    goto out;
  }
  jp_key(&L.jp, "kernels");
  const char *key;
  json_t *v;
  bool seen[KK_COUNT] = {false};
  json_object_foreach(kern, key, v) {
    int k = kernel_kind_find(key);
    jp_key(&L.jp, key);
    if (k < 0) {
      Buf b;
      buf_init(&b);
      for (int i = 0; i < KK_COUNT; i++)
        buf_printf(&b, "%s%s", i ? ", " : "", kernel_kind_name[i]);
      lerr(&L, "unknown kernel kind '%s' (known: %s)", key, buf_str(&b));
      buf_free(&b);
      goto out;
    }
    if (load_fit(&L, c, v, (KernelKind)k) < 0)
      goto out;
    seen[k] = true;
    jp_pop(&L.jp);
  }
  for (int k = 0; k < KK_COUNT; k++)
    if (!seen[k]) {
      lerr(&L,
           "no entry for kernel kind '%s' (every kind needs one; a kind "
           "without measurements names the kind it borrows with "
           "\"from\")",
           kernel_kind_name[k]);
      goto out;
    }
  rc = 0;
out:
  if (rc < 0) {
    calib_free(c);
    return NULL;
  }
  return c;
}

/* jdoc_load parses a NUL-terminated copy of text[0..len) (a fuzzer's
 * buffer, a slice of a larger one): error contexts are read up to a
 * newline or NUL. */
Calib *calib_load_text(const char *path, const char *text, size_t len,
                       Error *err) {
  return jdoc_load(path, text, len, calib_build, NULL, err);
}

Calib *calib_load(const char *path, Error *err) {
  return jdoc_load(path, NULL, 0, calib_build, NULL, err);
}

static bool file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

Calib *calib_for_gpu(const char *dir, const char *hw_id, Error *err) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s.json", hw_id);
  char *own = path_join(dir, buf_str(&b));
  buf_free(&b);
  if (file_exists(own)) {
    Calib *c = calib_load(own, err);
    free(own);
    if (c && strcmp(c->hw_id, hw_id) != 0) {
      err_file(err, path_display(c->path),
               "hardware is '%s', but the file is named for '%s'", c->hw_id,
               hw_id);
      calib_free(c);
      return NULL;
    }
    return c;
  }
  free(own);
  char *fb = path_join(dir, "fallback.json");
  size_t len;
  char *text = fs_read(fb, &len, err);
  Calib *c = NULL;
  json_t *root = NULL;
  if (!text)
    goto out;
  if (!(root = parse(fb, text, len, err)))
    goto out;
  Loader L = {.path = fb, .raw = text, .rawlen = len, .err = err};
  jp_init(&L.jp);
  static const char *const keys[] = {"format", "description", "gpus", NULL};
  if (check_format(&L, root, "lm-predictor-calibration-fallback") < 0 ||
      only_keys(&L, root, keys, "format, description, gpus") < 0)
    goto out;
  json_t *gpus = json_object_get(root, "gpus");
  if (!json_is_object(gpus)) {
    lerr(&L, "gpus must be an object: GPU id -> {\"from\", \"why\"}");
    goto out;
  }
  json_t *e = json_object_get(gpus, hw_id);
  if (!e) {
    err_file(err, path_display(fb),
             "no calibration for GPU '%s' and no fallback entry for it (add "
             "one to gpus, or fit one with lmcalib --fit)",
             hw_id);
    goto out;
  }
  jp_key(&L.jp, "gpus");
  jp_key(&L.jp, hw_id);
  static const char *const ekeys[] = {"from", "why", NULL};
  Arena tmp;
  arena_init(&tmp);
  const char *from = NULL, *why = NULL;
  if (!json_is_object(e)) {
    lerr(&L, "a fallback entry must be an object");
  } else if (only_keys(&L, e, ekeys, "from, why") == 0 &&
             get_string(&L, e, "from", true, &tmp, &from) == 0 &&
             get_string(&L, e, "why", true, &tmp, &why) == 0) {
    Buf p;
    buf_init(&p);
    buf_printf(&p, "%s.json", from);
    char *sib = path_join(dir, buf_str(&p));
    buf_free(&p);
    if (strcmp(from, hw_id) == 0 || !file_exists(sib)) {
      jp_key(&L.jp, "from");
      lerr(&L, "'%s' has no calibration file to borrow", from);
    } else if ((c = calib_load(sib, err))) {
      c->fallback = true;
      c->note = arena_strdup(&c->arena, why);
    }
    free(sib);
  }
  arena_free(&tmp);
out:
  json_decref(root);
  free(text);
  free(fb);
  return c;
}

void calib_free(Calib *c) {
  if (!c)
    return;
  arena_free(&c->arena);
  free(c);
}

/* ===== engines ===== */

static int load_fusion(Loader *L, Engine *e, json_t *o, Fusion *f) {
  static const char *const keys[] = {"kernel", "ops", "kind",
                                     "drop",   "why", NULL};
  if (!json_is_object(o))
    return lerr(L, "a fusion must be an object");
  if (only_keys(L, o, keys, "kernel, ops, kind, drop, why") < 0 ||
      get_string(L, o, "kernel", true, &e->arena, &f->kernel) < 0)
    return -1;
  const char *kind, *drop, *why;
  if (get_string(L, o, "kind", true, &e->arena, &kind) < 0 ||
      get_string(L, o, "drop", true, &e->arena, &drop) < 0 ||
      get_string(L, o, "why", true, &e->arena, &why) < 0)
    return -1;
  int k = kernel_kind_find(kind);
  if (k < 0) {
    jp_key(&L->jp, "kind");
    return lerr(L, "unknown kernel kind '%s'", kind);
  }
  f->kind = (KernelKind)k;
  if (strcmp(drop, "shared_input") == 0)
    f->drop = FUSE_SHARED_INPUT;
  else if (strcmp(drop, "intermediate") == 0)
    f->drop = FUSE_INTERMEDIATE;
  else if (strcmp(drop, "intermediate_read") == 0)
    f->drop = FUSE_INTERMEDIATE_READ;
  else {
    jp_key(&L->jp, "drop");
    return lerr(L,
                "drop is shared_input, intermediate or intermediate_read, "
                "not '%s'",
                drop);
  }
  json_t *ops = json_object_get(o, "ops");
  if (!json_is_array(ops) || json_array_size(ops) < 2) {
    if (ops)
      jp_key(&L->jp, "ops");
    return lerr(L, "ops must be an array of at least two op names");
  }
  f->nops = (int)json_array_size(ops);
  f->ops = arena_alloc(&e->arena, sizeof(char *) * (size_t)f->nops);
  for (int i = 0; i < f->nops; i++) {
    json_t *s = json_array_get(ops, (size_t)i);
    if (!json_is_string(s)) {
      jp_key(&L->jp, "ops");
      jp_index(&L->jp, i);
      return lerr(L, "an op name must be a string");
    }
    f->ops[i] = arena_strdup(&e->arena, json_string_value(s));
  }
  return 0;
}

static int load_cost(Loader *L, Engine *e, const char *op, json_t *o,
                     OpCost *c) {
  static const char *const keys[] = {"launches", "traffic", "why", NULL};
  if (!json_is_object(o))
    return lerr(L, "an op's cost must be an object");
  c->op = arena_strdup(&e->arena, op);
  c->launches = 1;
  c->traffic = 1;
  const char *why;
  if (only_keys(L, o, keys, "launches, traffic, why") < 0 ||
      get_number(L, o, "launches", false, 1, 1000, &c->launches) < 0 ||
      get_number(L, o, "traffic", false, 0.01, 100, &c->traffic) < 0 ||
      get_string(L, o, "why", true, &e->arena, &why) < 0)
    return -1;
  return 0;
}

/* all_reduce.when[i]: {gpus: [n, ...], below_bytes, needs_nvlink}. */
static int load_ar_rule(Loader *L, Engine *e, json_t *o, ArRule *r) {
  static const char *const keys[] = {"gpus", "below_bytes", "needs_nvlink",
                                     NULL};
  if (!json_is_object(o))
    return lerr(L, "a rule is an object {gpus, below_bytes, needs_nvlink}");
  if (only_keys(L, o, keys, "gpus, below_bytes, needs_nvlink") < 0 ||
      get_number(L, o, "below_bytes", true, 1, 1e15, &r->below_bytes) < 0)
    return -1;
  json_t *g = json_object_get(o, "gpus");
  if (!json_is_array(g) || !json_array_size(g)) {
    if (g)
      jp_key(&L->jp, "gpus");
    return lerr(L, g ? "gpus must be a non-empty array of group sizes"
                     : "missing required member 'gpus'");
  }
  jp_key(&L->jp, "gpus");
  r->ngpus = (int)json_array_size(g);
  r->gpus = arena_alloc(&e->arena, sizeof(int) * (size_t)r->ngpus);
  for (int i = 0; i < r->ngpus; i++) {
    json_t *v = json_array_get(g, (size_t)i);
    if (!json_is_integer(v) || json_integer_value(v) < 2 ||
        json_integer_value(v) > LM_MAX_PARALLEL) {
      jp_index(&L->jp, i);
      return lerr(L, "a group size is an integer from 2 to %d",
                  (int)LM_MAX_PARALLEL);
    }
    r->gpus[i] = (int)json_integer_value(v);
  }
  jp_pop(&L->jp);
  json_t *nv = json_object_get(o, "needs_nvlink");
  if (!json_is_boolean(nv)) {
    if (nv)
      jp_key(&L->jp, "needs_nvlink");
    return lerr(L, nv ? "needs_nvlink must be true or false"
                      : "missing required member 'needs_nvlink'");
  }
  r->needs_nvlink = json_is_true(nv);
  return 0;
}

/* all_reduce: {kernel, within_node, when: [rules], why, source}; kernel
 * "nccl" takes neither within_node nor when. */
static int load_all_reduce(Loader *L, Engine *e, json_t *o) {
  static const char *const keys[] = {"kernel", "within_node", "when",
                                     "why",    "source",      NULL};
  const char *k, *why, *src;
  if (!json_is_object(o))
    return lerr(L, "all_reduce must be an object: {kernel, within_node, "
                   "when, why, source}");
  if (only_keys(L, o, keys, "kernel, within_node, when, why, source") < 0 ||
      get_string(L, o, "kernel", true, &e->arena, &k) < 0 ||
      get_string(L, o, "why", true, &e->arena, &why) < 0 ||
      get_string(L, o, "source", true, &e->arena, &src) < 0)
    return -1;
  json_t *w = json_object_get(o, "when"),
         *wn = json_object_get(o, "within_node");
  if (strcmp(k, "nccl") == 0) {
    if (w || wn) {
      jp_key(&L->jp, w ? "when" : "within_node");
      return lerr(L, "kernel \"nccl\" is the default: it takes no %s",
                  w ? "when" : "within_node");
    }
    return 0;
  }
  if (!json_is_boolean(wn)) {
    if (wn)
      jp_key(&L->jp, "within_node");
    return lerr(L,
                wn ? "within_node must be true or false"
                   : "missing required member 'within_node' (kernel '%s')",
                k);
  }
  if (!json_is_array(w) || !json_array_size(w)) {
    if (w)
      jp_key(&L->jp, "when");
    return lerr(L,
                w ? "when must be a non-empty array of rules"
                  : "missing required member 'when' (kernel '%s')",
                k);
  }
  jp_key(&L->jp, "when");
  e->nar_rules = (int)json_array_size(w);
  e->ar_rules = arena_alloc(&e->arena, sizeof(ArRule) * (size_t)e->nar_rules);
  for (int i = 0; i < e->nar_rules; i++) {
    jp_index(&L->jp, i);
    memset(&e->ar_rules[i], 0, sizeof(ArRule));
    if (load_ar_rule(L, e, json_array_get(w, (size_t)i), &e->ar_rules[i]) < 0)
      return -1;
    jp_pop(&L->jp);
  }
  jp_pop(&L->jp);
  e->ar_kernel = k;
  e->ar_one_node = json_is_true(wn);
  return 0;
}

const char *engine_all_reduce_kernel(const Engine *e, int n, double bytes,
                                     bool one_node, bool nvlink) {
  if (!e || !e->ar_kernel || (e->ar_one_node && !one_node))
    return "nccl";
  for (int i = 0; i < e->nar_rules; i++) {
    const ArRule *r = &e->ar_rules[i];
    bool takes = false;
    for (int k = 0; k < r->ngpus && !takes; k++)
      takes = r->gpus[k] == n;
    if (takes && bytes < r->below_bytes && (nvlink || !r->needs_nvlink))
      return e->ar_kernel;
  }
  return "nccl";
}

/* gemm_8bit.by_gpu: {"<hardware.json id>": speedup, ...}, each in [1, 8];
 * an id is lowercase letters, digits and '-' (a GPU hardware.json lacks
 * is never matched) */
static int load_by_gpu(Loader *L, Engine *e, json_t *o) {
  jp_key(&L->jp, "by_gpu");
  if (!json_is_object(o) || json_object_size(o) == 0 ||
      json_object_size(o) > 64)
    return lerr(L, "by_gpu must be an object of 1 to 64 GPU ids, each "
                   "with its 8-bit speedup over 16-bit");
  size_t n = json_object_size(o);
  e->g8_ids = arena_alloc(&e->arena, sizeof(char *) * n);
  e->g8_speedup = arena_alloc(&e->arena, sizeof(double) * n);
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    jp_key(&L->jp, key);
    if (!gpu_id_valid(key))
      return lerr(L, "'%s' is not a GPU id (lowercase letters, digits and "
                     "'-', as in hardware.json)",
                  key);
    double x = json_is_number(v) ? json_number_value(v) : 0;
    if (!json_is_number(v) || !(x >= 1 && x <= 8))
      return lerr(L, "the 8-bit speedup on '%s' must be a number from 1 to "
                     "8",
                  key);
    jp_pop(&L->jp);
    e->g8_ids[e->ng8] = arena_strdup(&e->arena, key);
    e->g8_speedup[e->ng8++] = x;
  }
  jp_pop(&L->jp);
  return 0;
}

/* g's entry in gemm_8bit.by_gpu, -1 when none */
static int by_gpu_index(const Engine *e, const Gpu *g) {
  for (int i = 0; i < e->ng8; i++)
    if (strcmp(e->g8_ids[i], g->id) == 0)
      return i;
  return -1;
}

bool engine_gemm8_measured(const Engine *e, const Gpu *g) {
  return by_gpu_index(e, g) >= 0;
}

double engine_gemm8(const Engine *e, const Gpu *g) {
  int i = by_gpu_index(e, g);
  return i >= 0 ? e->g8_speedup[i] : e->gemm8_speedup;
}

/* step: the host's own time per forward step (scheduling, input
 * preparation, sampling, output processing) that the GPU waits for, per
 * phase and per sequence of the batch (DESIGN.md section 12.4). */
static int load_step(Loader *L, Engine *e, json_t *step) {
  static const char *const skeys[] = {"prefill_us", "decode_us", "per_seq_us",
                                      "why",        "source",    NULL};
  const char *why, *src;
  double us[3] = {0, 0, 0};
  jp_key(&L->jp, "step");
  if (!json_is_object(step)) {
    lerr(L, "step must be an object: {prefill_us, decode_us, per_seq_us, "
            "why, source}");
    return -1;
  }
  if (only_keys(L, step, skeys,
                "prefill_us, decode_us, per_seq_us, why, source") < 0 ||
      get_number(L, step, "prefill_us", true, 0, 1e6, &us[0]) < 0 ||
      get_number(L, step, "decode_us", true, 0, 1e6, &us[1]) < 0 ||
      get_number(L, step, "per_seq_us", true, 0, 1e4, &us[2]) < 0 ||
      get_string(L, step, "why", true, &e->arena, &why) < 0 ||
      get_string(L, step, "source", true, &e->arena, &src) < 0)
    return -1;
  e->step[0] = us[0] * 1e-6;
  e->step[1] = us[1] * 1e-6;
  e->step_per_seq = us[2] * 1e-6;
  jp_pop(&L->jp);
  return 0;
}

/* attention.kv_per_query_head: {ops: [op, ...], phases: ["prefill" |
 * "decode", ...], copy_launches, why, source} (DESIGN.md section 12.4). */
static int load_kvq(Loader *L, Engine *e, json_t *o) {
  static const char *const keys[] = {"ops", "phases", "copy_launches", "why",
                                     "source", NULL};
  const char *why, *src;
  jp_key(&L->jp, "kv_per_query_head");
  if (!json_is_object(o))
    return lerr(L, "kv_per_query_head must be an object: {ops, phases, "
                   "copy_launches, why, source}");
  if (only_keys(L, o, keys, "ops, phases, copy_launches, why, source") < 0 ||
      get_number(L, o, "copy_launches", true, 0, 100, &e->kvq_copy) < 0 ||
      get_string(L, o, "why", true, &e->arena, &why) < 0 ||
      get_string(L, o, "source", true, &e->arena, &src) < 0)
    return -1;
  json_t *ops = json_object_get(o, "ops");
  if (!json_is_array(ops) || json_array_size(ops) == 0) {
    if (ops)
      jp_key(&L->jp, "ops");
    return lerr(L, "ops must be a non-empty array of op names");
  }
  e->nkvq_ops = (int)json_array_size(ops);
  e->kvq_ops = arena_alloc(&e->arena, sizeof(char *) * (size_t)e->nkvq_ops);
  for (int i = 0; i < e->nkvq_ops; i++) {
    json_t *s = json_array_get(ops, (size_t)i);
    if (!json_is_string(s) || json_string_length(s) == 0) {
      jp_key(&L->jp, "ops");
      jp_index(&L->jp, i);
      return lerr(L, "an op name must be a non-empty string");
    }
    e->kvq_ops[i] = arena_strdup(&e->arena, json_string_value(s));
  }
  json_t *ph = json_object_get(o, "phases");
  if (!json_is_array(ph) || json_array_size(ph) == 0) {
    if (ph)
      jp_key(&L->jp, "phases");
    return lerr(L, "phases must be a non-empty array of \"prefill\" and "
                   "\"decode\"");
  }
  for (size_t i = 0; i < json_array_size(ph); i++) {
    json_t *s = json_array_get(ph, i);
    const char *name = json_is_string(s) ? json_string_value(s) : "";
    int which = strcmp(name, "prefill") == 0  ? 0
                : strcmp(name, "decode") == 0 ? 1
                                              : -1;
    if (which < 0) {
      jp_key(&L->jp, "phases");
      jp_index(&L->jp, (int)i);
      return lerr(L, "a phase is \"prefill\" or \"decode\"");
    }
    e->kvq_phase[which] = true;
  }
  jp_pop(&L->jp);
  return 0;
}

bool engine_kv_per_query_head(const Engine *e, const char *op, bool decode) {
  if (!e || !e->kvq_phase[decode])
    return false;
  for (int i = 0; i < e->nkvq_ops; i++)
    if (strcmp(e->kvq_ops[i], op) == 0)
      return true;
  return false;
}

double engine_step_time(const Engine *e, bool decode, double batch) {
  if (!e)
    return 0;
  return e->step[decode] + e->step_per_seq * batch;
}

/* jdoc_load's build step: root is borrowed, doc freed after the call. */
static void *engine_build(JsonDoc *doc, json_t *root, const void *ctx,
                          Error *err) {
  (void)ctx;
  Engine *e = xcalloc(1, sizeof(Engine));
  arena_init(&e->arena);
  Loader L = {
      .path = doc->file, .raw = doc->text, .rawlen = doc->len, .err = err};
  jp_init(&L.jp);
  static const char *const keys[] = {
      "format",  "engine",     "name",    "description", "attention",
      "fusions", "ops",        "sources", "gemm_8bit",   "launch_gap",
      "host",    "all_reduce", "step",      NULL};
  static const char *const akeys[] = {
      "impl",   "kernel", "causal_skip",       "l2_kv_reuse",
      "q_tile", "why",    "kv_per_query_head", NULL};
  int rc = -1;
  json_t *att, *fus, *ops;
  const char *impl;
  if (check_format(&L, root, "lm-predictor-engine") < 0 ||
      only_keys(&L, root, keys,
                "format, engine, name, description, attention, fusions, ops, "
                "sources, gemm_8bit, launch_gap, host, all_reduce, step") < 0 ||
      get_string(&L, root, "engine", true, &e->arena, &e->id) < 0 ||
      get_string(&L, root, "name", true, &e->arena, &e->name) < 0)
    goto out;
  json_t *src = json_object_get(root, "sources");
  if (!json_is_array(src) || json_array_size(src) == 0) {
    if (src)
      jp_key(&L.jp, "sources");
    lerr(&L, "sources must be a non-empty array");
    goto out;
  }
  att = json_object_get(root, "attention");
  if (!json_is_object(att)) {
    if (att)
      jp_key(&L.jp, "attention");
    lerr(&L, "attention must be an object");
    goto out;
  }
  jp_key(&L.jp, "attention");
  if (only_keys(&L, att, akeys,
                "impl, kernel, causal_skip, l2_kv_reuse, q_tile, why, "
                "kv_per_query_head") < 0 ||
      get_string(&L, att, "impl", true, &e->arena, &impl) < 0 ||
      get_string(&L, att, "kernel", true, &e->arena, &e->attention_kernel) <
          0 ||
      get_number(&L, att, "q_tile", true, 1, 4096, &e->q_tile) < 0)
    goto out;
  if (strcmp(impl, "flash") == 0)
    e->attention = ATTN_FLASH;
  else if (strcmp(impl, "eager") == 0)
    e->attention = ATTN_EAGER;
  else {
    jp_key(&L.jp, "impl");
    lerr(&L, "impl is flash or eager, not '%s'", impl);
    goto out;
  }
  static const char *const flags[] = {"causal_skip", "l2_kv_reuse"};
  bool *dst[] = {&e->causal_skip, &e->l2_kv_reuse};
  for (int i = 0; i < 2; i++) {
    json_t *b = json_object_get(att, flags[i]);
    if (!json_is_boolean(b)) {
      if (b)
        jp_key(&L.jp, flags[i]);
      lerr(&L, "%s must be true or false", flags[i]);
      goto out;
    }
    *dst[i] = json_is_true(b);
  }
  json_t *kvq = json_object_get(att, "kv_per_query_head");
  if (kvq && load_kvq(&L, e, kvq) < 0)
    goto out;
  jp_pop(&L.jp);
  json_t *g8 = json_object_get(root, "gemm_8bit");
  if (g8) {
    static const char *const gkeys[] = {"speedup_over_16bit", "why", "source",
                                        "by_gpu", NULL};
    const char *why, *gsrc;
    jp_key(&L.jp, "gemm_8bit");
    if (!json_is_object(g8)) {
      lerr(&L, "gemm_8bit must be an object: {speedup_over_16bit, why, "
               "source, by_gpu}");
      goto out;
    }
    if (only_keys(&L, g8, gkeys, "speedup_over_16bit, why, source, by_gpu") <
            0 ||
        get_number(&L, g8, "speedup_over_16bit", true, 1, 8,
                   &e->gemm8_speedup) < 0 ||
        get_string(&L, g8, "why", true, &e->arena, &why) < 0 ||
        get_string(&L, g8, "source", true, &e->arena, &gsrc) < 0)
      goto out;
    json_t *bg = json_object_get(g8, "by_gpu");
    if (bg && load_by_gpu(&L, e, bg) < 0)
      goto out;
    jp_pop(&L.jp);
  }
  json_t *gap = json_object_get(root, "launch_gap");
  if (gap) {
    static const char *const gkeys[] = {"prefill_us", "decode_us", "why",
                                        "source", NULL};
    const char *why, *gsrc;
    double us[2] = {0, 0};
    jp_key(&L.jp, "launch_gap");
    if (!json_is_object(gap)) {
      lerr(&L, "launch_gap must be an object: {prefill_us, decode_us, why, "
               "source}");
      goto out;
    }
    if (only_keys(&L, gap, gkeys, "prefill_us, decode_us, why, source") < 0 ||
        get_number(&L, gap, "prefill_us", true, 0, 1000, &us[0]) < 0 ||
        get_number(&L, gap, "decode_us", true, 0, 1000, &us[1]) < 0 ||
        get_string(&L, gap, "why", true, &e->arena, &why) < 0 ||
        get_string(&L, gap, "source", true, &e->arena, &gsrc) < 0)
      goto out;
    e->launch_gap[0] = us[0] * 1e-6;
    e->launch_gap[1] = us[1] * 1e-6;
    jp_pop(&L.jp);
  }
  json_t *host = json_object_get(root, "host");
  if (host) {
    static const char *const hkeys[] = {"launch_us", "why", "source", NULL};
    const char *why, *hsrc;
    double us = 0;
    jp_key(&L.jp, "host");
    if (!json_is_object(host)) {
      lerr(&L, "host must be an object: {launch_us, why, source}");
      goto out;
    }
    if (only_keys(&L, host, hkeys, "launch_us, why, source") < 0 ||
        get_number(&L, host, "launch_us", true, 0, 10000, &us) < 0 ||
        get_string(&L, host, "why", true, &e->arena, &why) < 0 ||
        get_string(&L, host, "source", true, &e->arena, &hsrc) < 0)
      goto out;
    e->host_launch = us * 1e-6;
    jp_pop(&L.jp);
  }
  json_t *step = json_object_get(root, "step");
  if (step && load_step(&L, e, step) < 0)
    goto out;
  json_t *ar = json_object_get(root, "all_reduce");
  if (ar) {
    jp_key(&L.jp, "all_reduce");
    if (load_all_reduce(&L, e, ar) < 0)
      goto out;
    jp_pop(&L.jp);
  }
  fus = json_object_get(root, "fusions");
  if (!json_is_array(fus)) {
    if (fus)
      jp_key(&L.jp, "fusions");
    lerr(&L, "fusions must be an array (empty when the engine fuses nothing)");
    goto out;
  }
  e->nfusions = (int)json_array_size(fus);
  e->fusions =
      arena_alloc(&e->arena, sizeof(Fusion) * (size_t)(e->nfusions + 1));
  jp_key(&L.jp, "fusions");
  for (int i = 0; i < e->nfusions; i++) {
    jp_index(&L.jp, i);
    if (load_fusion(&L, e, json_array_get(fus, (size_t)i), &e->fusions[i]) < 0)
      goto out;
    jp_pop(&L.jp);
  }
  jp_pop(&L.jp);
  ops = json_object_get(root, "ops");
  if (ops && !json_is_object(ops)) {
    jp_key(&L.jp, "ops");
    lerr(&L, "ops must be an object: op name -> {launches, traffic, why}");
    goto out;
  }
  e->ncosts = ops ? (int)json_object_size(ops) : 0;
  e->costs = arena_alloc(&e->arena, sizeof(OpCost) * (size_t)(e->ncosts + 1));
  if (ops) {
    jp_key(&L.jp, "ops");
    const char *key;
    json_t *v;
    int i = 0;
    json_object_foreach(ops, key, v) {
      jp_key(&L.jp, key);
      if (load_cost(&L, e, key, v, &e->costs[i++]) < 0)
        goto out;
      jp_pop(&L.jp);
    }
  }
  rc = 0;
out:
  if (rc < 0) {
    engine_free(e);
    return NULL;
  }
  return e;
}

/* jdoc_load parses a NUL-terminated copy of text[0..len), as
 * calib_load_text. */
Engine *engine_load_text(const char *path, const char *text, size_t len,
                         Error *err) {
  return jdoc_load(path, text, len, engine_build, NULL, err);
}

Engine *engine_load(const char *path, Error *err) {
  return jdoc_load(path, NULL, 0, engine_build, NULL, err);
}

void engine_free(Engine *e) {
  if (!e)
    return;
  arena_free(&e->arena);
  free(e);
}

/* ===== per plan ===== */

/* The kind of a row's kernel, from its module and op name (DESIGN.md
 * section 12). */
/* op among a NULL-terminated list of names */
static bool op_in(const char *op, const char *const *names) {
  for (int i = 0; names[i]; i++)
    if (strcmp(op, names[i]) == 0)
      return true;
  return false;
}

static KernelKind row_kind(const Row *r) {
  const char *op = r->op, *mod = r->module;
  size_t n = strlen(op);
  /* the grouped expert GEMMs and MLA's absorbed/decompressing projections
   * are GEMMs of their modules' own (§17); latent attention and the SSD
   * scan are batched GEMMs; FlashMLA a fused attention kernel */
  static const char *const gemm_ops[] = {
      "gate_up_proj", "up_proj",   "down_proj", "q_absorb",
      "out_absorb",   "kv_b_proj", NULL}; /* up_proj: NemotronHExperts */
  static const char *const bgemm_ops[] = {"qk_latent", "sv_latent",
                                          "ssd_scan", NULL};
  if (strcmp(op, "flash_attention") == 0 || strcmp(op, "flash_mla") == 0)
    return KK_ATTENTION;
  if (strcmp(op, "qk_matmul") == 0 || strcmp(op, "sv_matmul") == 0 ||
      op_in(op, bgemm_ops))
    return KK_BGEMM;
  if (strstr(mod, ".Linear") || strcmp(mod, "Linear") == 0 ||
      op_in(op, gemm_ops) || strstr(mod, "Router") ||
      strstr(mod, "TopkRouter"))
    return KK_GEMM;
  if (strcmp(op, "softmax_latent") == 0)
    return KK_SOFTMAX;
  if (strstr(mod, "Norm"))
    return KK_NORM;
  if (strstr(mod, ".Embedding"))
    return KK_GATHER;
  if (strcmp(op, "softmax") == 0)
    return KK_SOFTMAX;
  if (strcmp(op, "rope") == 0)
    return KK_ROPE;
  if (strcmp(op, "act_fn") == 0 || strcmp(op, "gate_up_mul") == 0)
    return KK_ACT;
  if (n >= 4 && strcmp(op + n - 4, "_add") == 0)
    return KK_ADD;
  return KK_ELEMENTWISE;
}

/* Length of the parent part of a dotted path ("a.b.c" -> 3). */
static size_t parent_len(const char *path) {
  const char *dot = strrchr(path, '.');
  return dot ? (size_t)(dot - path) : 0;
}

static bool same_parent(const Row *a, const Row *b) {
  size_t n = parent_len(a->path);
  return n == parent_len(b->path) && strncmp(a->path, b->path, n) == 0;
}

static int param_index(const ModuleDef *d, const char *name) {
  for (int i = 0; i < d->nparams; i++)
    if (strcmp(d->params[i], name) == 0)
      return i;
  return -1;
}

/* calib_predict's view of a kernel and of its rows, packed (a sweep runs
 * its loop for every configuration): the same fields as the CalibPlan's
 * per-row arrays, in the order the loop reads them. */
struct KernInfo {
  int lead, nmem;
  const struct MemberInfo *mem;
  KernelKind kind;
  FuseDrop drop;
  bool xw;
  double count;    /* the lead row's count */
  double launches; /* the lead's launches */
};
struct MemberInfo {
  int row;
  int arg;       /* attn_arg */
  int off[3];    /* attn_off */
  bool kvq;      /* an op of the engine's kv_per_query_head */
  double count;  /* the row's count */
  double traffic;
};

CalibPlan *calib_plan(const Plan *p, const Engine *e) {
  CalibPlan *cp = xcalloc(1, sizeof(CalibPlan));
  arena_init(&cp->arena);
  int n = p->nrows;
  cp->plan = p;
  cp->nrows = n;
  Arena *a = &cp->arena;
  cp->kind = arena_alloc(a, sizeof(KernelKind) * (size_t)(n + 1));
  cp->lead = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
  cp->next = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
  cp->drop = arena_alloc(a, sizeof(FuseDrop) * (size_t)(n + 1));
  cp->launches = arena_alloc(a, sizeof(double) * (size_t)(n + 1));
  cp->traffic = arena_alloc(a, sizeof(double) * (size_t)(n + 1));
  cp->kernel = arena_alloc(a, sizeof(char *) * (size_t)(n + 1));
  cp->attn_arg = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
  cp->attn_off = arena_alloc(a, sizeof(int[3]) * (size_t)(n + 1));
  cp->kvq = arena_alloc(a, sizeof(bool) * (size_t)(n + 1));
  for (int r = 0; r < n; r++) {
    const Row *row = &p->rows[r];
    cp->kind[r] = row_kind(row);
    cp->lead[r] = r;
    cp->next[r] = -1;
    cp->drop[r] = FUSE_INTERMEDIATE;
    cp->launches[r] = 1;
    cp->traffic[r] = 1;
    cp->kernel[r] = row->op;
    cp->attn_arg[r] = -1;
    /* an attention row (a flash kernel or an eager batched matmul) that
     * the engine says reads K/V once per query head in some phase */
    cp->kvq[r] = false;
    for (int i = 0; e && i < e->nkvq_ops; i++)
      if (strcmp(e->kvq_ops[i], row->op) == 0 &&
          (cp->kind[r] == KK_ATTENTION || cp->kind[r] == KK_BGEMM))
        cp->kvq[r] = true;
    /* the shape parameters of the row's layer: a flash attention's heads,
     * KV heads and head size; a GEMM's rows, input and output features */
    static const char *const shape[][3] = {
        {"num_heads", "num_kv_heads", "head_dim"},
        {"N", "in_features", "out_features"}};
    int which = cp->kind[r] == KK_ATTENTION || cp->kvq[r] ? 0
                : cp->kind[r] == KK_GEMM                  ? 1
                                                          : -1;
    if (which >= 0) {
      const Slot *s = &p->slots[row->slot];
      const ModuleDef *d = s->layer->mod->def;
      int i0 = param_index(d, shape[which][0]),
          i1 = param_index(d, shape[which][1]),
          i2 = param_index(d, shape[which][2]);
      /* an attention module without num_kv_heads is multi-head (GPT-2):
       * as many KV heads as heads */
      if (which == 0 && i1 < 0)
        i1 = i0;
      if (i0 >= 0 && i1 >= 0 && i2 >= 0) {
        cp->attn_arg[r] = s->argbase;
        cp->attn_off[r][0] = i0;
        cp->attn_off[r][1] = i1;
        cp->attn_off[r][2] = i2;
      }
    }
    for (int i = 0; e && i < e->ncosts; i++)
      if (strcmp(e->costs[i].op, row->op) == 0) {
        cp->launches[r] = e->costs[i].launches;
        cp->traffic[r] = e->costs[i].traffic;
      }
  }
  /* fused kernels: for each fusion, each row named like its first op finds
   * the others under the same parent with the same count */
  for (int f = 0; e && f < e->nfusions; f++) {
    const Fusion *fu = &e->fusions[f];
    for (int r = 0; r < n; r++) {
      const Row *row = &p->rows[r];
      if (cp->lead[r] != r || cp->next[r] >= 0 ||
          strcmp(row->op, fu->ops[0]) != 0)
        continue;
      int members[16], nm = 0;
      members[nm++] = r;
      for (int j = 1; j < fu->nops && j < 16; j++) {
        int found = -1;
        for (int q = 0; q < n && found < 0; q++)
          if (q != r && cp->lead[q] == q && cp->next[q] < 0 &&
              strcmp(p->rows[q].op, fu->ops[j]) == 0 &&
              same_parent(row, &p->rows[q]) && p->rows[q].count == row->count)
            found = q;
        if (found < 0)
          break;
        members[nm++] = found;
      }
      if (nm != fu->nops)
        continue;
      for (int j = 0; j < nm; j++) {
        cp->lead[members[j]] = r;
        cp->next[members[j]] = j + 1 < nm ? members[j + 1] : -1;
        cp->kernel[members[j]] = fu->kernel;
        cp->launches[members[j]] = 1;
        cp->traffic[members[j]] = 1;
      }
      cp->kind[r] = fu->kind;
      cp->drop[r] = fu->drop;
    }
  }
  cp->klead = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
  cp->kfirst = arena_alloc(a, sizeof(int) * (size_t)(n + 2));
  cp->member = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
  cp->kidx = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
  int nk = 0, nmem = 0;
  for (int r = 0; r < n; r++) {
    cp->kidx[r] = -1;
    if (cp->lead[r] != r)
      continue;
    cp->kidx[r] = nk;
    cp->klead[nk] = r;
    cp->kfirst[nk++] = nmem;
    for (int q = r; q >= 0; q = cp->next[q])
      cp->member[nmem++] = q;
  }
  cp->nkern = nk;
  cp->kfirst[nk] = nmem;
  cp->kinfo = arena_alloc(a, sizeof(struct KernInfo) * (size_t)(nk + 1));
  cp->minfo = arena_alloc(a, sizeof(struct MemberInfo) * (size_t)(nmem + 1));
  for (int j = 0; j < nmem; j++) {
    int q = cp->member[j];
    cp->minfo[j] = (struct MemberInfo){
        .row = q, .arg = cp->attn_arg[q],
        .off = {cp->attn_off[q][0], cp->attn_off[q][1], cp->attn_off[q][2]},
        .kvq = cp->kvq[q], .count = p->rows[q].count,
        .traffic = cp->traffic[q]};
  }
  bool used[KK_COUNT] = {false};
  for (int i = 0; i < nk; i++)
    used[cp->kind[cp->klead[i]]] = true;
  for (int k = 0; k < KK_COUNT; k++)
    if (used[k])
      cp->kinds[cp->nkinds++] = k;
  for (int i = 0; i < nk; i++) {
    int r = cp->klead[i];
    cp->kinfo[i] = (struct KernInfo){
        .lead = r, .nmem = cp->kfirst[i + 1] - cp->kfirst[i],
        .mem = cp->minfo + cp->kfirst[i], .kind = cp->kind[r],
        .drop = cp->drop[r], .xw = p->rows[r].xw, .count = p->rows[r].count,
        .launches = cp->launches[r]};
  }
  return cp;
}

void calib_plan_free(CalibPlan *cp) {
  if (!cp)
    return;
  arena_free(&cp->arena);
  free(cp);
}

static inline __attribute__((always_inline)) void
flash(const Engine *e, const Gpu *g, double b, double t, double l, double h,
      double hkv, double d, double kv_bytes, double flops, double kv_read,
      bool per_q, double *flops_out, double *kv_out) {
  double frac = 1;
  double bt = e->q_tile;
  if (e->causal_skip && t > 1 && l > 0) {
    /* query tile j (rows j*Br .. (j+1)*Br - 1 of the last t of l
     * positions) attends l - t + min((j + 1) Br, t) keys; the mean over the
     * tiles is l - t + (t + Br) / 2 when Br divides t */
    double keys = l - t + (t + bt) / 2;
    frac = keys / l;
    if (frac > 1)
      frac = 1;
  }
  /* per_q: one thread block per query head (and query tile) reads its KV
   * head's K and V itself: 2 b h ceil(t / Br) l d kv_bytes */
  if (per_q)
    kv_read = 2 * b * h * ceil(t / bt) * l * d * kv_bytes;
  *flops_out = flops * frac;
  *kv_out = kv_read * frac;
  if (e->l2_kv_reuse && hkv > 0) {
    /* CTAs of one KV head's query tiles run side by side (the tile index
     * varies fastest in FlashAttention's grid; per_q: the query heads of
     * one KV head are adjacent blocks, the head index fastest, as in
     * TensorRT-LLM's masked MHA grid (heads, batch)); the heads in flight
     * at once are the SMs over the tiles per head. When their K and V fit
     * in L2, each K/V block comes from HBM once. */
    double tiles =
        per_q ? ceil(t / bt) * (h / hkv) : ceil(t * (h / hkv) / bt);
    double heads = ceil(g->sm_count / tiles);
    if (heads > b * hkv)
      heads = b * hkv;
    double once = 2 * b * hkv * l * d * kv_bytes;
    double ws = heads * 2 * l * d * kv_bytes;
    if (ws <= g->l2 && once < *kv_out)
      *kv_out = once;
  }
}

void calib_flash(const Engine *e, const Gpu *g, double b, double t, double l,
                 double h, double hkv, double d, double kv_bytes, double flops,
                 double kv_read, bool per_q, double *flops_out,
                 double *kv_out) {
  flash(e, g, b, t, l, h, hkv, d, kv_bytes, flops, kv_read, per_q, flops_out,
        kv_out);
}

/* An attention row's FLOPs and bytes under the engine (*fl, *by: the
 * row's, updated): a flash kernel after causal skipping and L2 reuse; a
 * row of kv_per_query_head in one of its phases, in a grouped-query layer
 * (h > hkv), reads K/V once per query head: a flash kernel per query-head
 * block (calib_flash's per_q), an eager batched matmul the n_rep-times
 * expanded tensor (its K/V read x n_rep); with copy_launches, copy kernels
 * first materialise that tensor, reading the compact K/V once and writing
 * it n_rep times (*copy_by, *copy_l add their bytes and launches). */
static inline __attribute__((always_inline)) void
attn_member(const Engine *e, const Gpu *g, KernelKind k, bool kvq,
            const double *args, const int *off, const double *run,
            const double *x, double *fl, double *by, double *copy_by,
            double *copy_l) {
  double h = args[off[0]], hkv = args[off[1]], d = args[off[2]];
  double b = run[V_B], t = run[V_T];
  bool per_q = kvq && e->kvq_phase[run[V_DECODE] != 0] && hkv > 0 && h > hkv;
  double l = 0;
  if (k == KK_ATTENTION) {
    double bht = b * h * t;
    l = bht > 0 ? *fl / (bht * (4 * d + 5)) : 0;
    double f2, kv2;
    flash(e, g, b, t, l, h, hkv, d, run[V_KV_BYTES], *fl, x[M_KV_READ_BYTES],
          per_q, &f2, &kv2);
    *by -= x[M_KV_READ_BYTES] - kv2;
    *fl = f2;
  } else if (per_q)
    *by += x[M_KV_READ_BYTES] * (h / hkv - 1);
  if (per_q && e->kvq_copy > 0) {
    /* the compact tensor(s) the copy reads: a flash row's K and V, an
     * eager matmul's K or V */
    double compact = k == KK_ATTENTION ? 2 * b * hkv * l * d * run[V_KV_BYTES]
                                       : x[M_KV_READ_BYTES];
    *copy_by += compact * (1 + h / hkv);
    *copy_l += e->kvq_copy;
  }
}

/* The engine's K/V copy kernels: memory-bound, with the element-wise
 * kind's constants. */
static inline __attribute__((always_inline)) double
copy_time(const Calib *c, const Gpu *g, double gap, double launches,
          double bytes) {
  const KernelFit *f = &c->k[KK_ELEMENTWISE];
  return launches * (f->launch + gap) + bytes / (g->bandwidth * f->memory_eff);
}

/* The bytes a fused kernel's row after the first does not move (x: its
 * metrics; prev_write: the previous row's activation write). */
static inline __attribute__((always_inline)) double
fused_away(FuseDrop drop, const double *x, double prev_write) {
  if (drop == FUSE_SHARED_INPUT)
    return x[M_ACT_READ_BYTES]; /* the lead's read of the input */
  if (drop == FUSE_INTERMEDIATE)
    return 2 * prev_write; /* written and read back: neither */
  return prev_write;       /* written, but not read back */
}

/* The body of calib_kernel_cost, inlined into calib_predict_rows too (a
 * sweep's hot loop: the fields it does not read are not computed). */
static inline __attribute__((always_inline)) void
kernel_cost(const CalibPlan *cp, const Calib *c, const Engine *e,
            const Gpu *g, const Peaks *pk, const Values *v, const double *run,
            const double *roof, int r, KernelCost *out) {
  KernelKind k = cp->kind[r];
  const KernelFit *f = &c->k[k];
  double flops = 0, bytes = 0, roof_sum = 0, m = 0, ncols = 0, kred = 0;
  double prev_write = 0, copy_by = 0, copy_l = 0;
  int i = cp->kidx[r];
  const int *mem = cp->member + cp->kfirst[i];
  int nmem = cp->kfirst[i + 1] - cp->kfirst[i], nm = 0;
  for (; nm < nmem; nm++) {
    int q = mem[nm];
    const double *x = v->row[q];
    double fl = x[M_FLOPS], by = metric_bytes(x);
    roof_sum += roof[q];
    if (cp->traffic[q] != 1)
      by *= cp->traffic[q];
    if ((k == KK_ATTENTION || cp->kvq[q]) && cp->attn_arg[q] >= 0 && e)
      attn_member(e, g, k, cp->kvq[q], v->args + cp->attn_arg[q],
                  cp->attn_off[q], run, x, &fl, &by, &copy_by, &copy_l);
    if (nm > 0)
      by -= fused_away(cp->drop[r], x, prev_write);
    prev_write = x[M_ACT_WRITE_BYTES];
    flops += fl;
    bytes += by;
    if (k == KK_GEMM && cp->attn_arg[q] >= 0) {
      /* the Linear's own parameters: N rows, in_features, out_features */
      const double *args = v->args + cp->attn_arg[q];
      m = args[cp->attn_off[q][0]];
      kred = args[cp->attn_off[q][1]];
      ncols += args[cp->attn_off[q][2]];
    } else if (k == KK_ATTENTION && cp->attn_arg[q] >= 0)
      kred = v->args[cp->attn_arg[q] + cp->attn_off[q][2]]; /* head size */
  }
  if (bytes < 0)
    bytes = 0;
  double peak = pk->p16;
  if (kernel_kind_computes(k)) {
    peak = roof_peak_inline(pk, v->row[r], cp->plan->rows[r].xw, NULL);
    /* 8-bit kernels: the engine's published 8-bit speedup over 16-bit
     * (no calibration measured 8-bit kernels; DESIGN.md section 12) */
    double s8 = e ? engine_gemm8(e, g) : 0;
    if (s8 > 0 && peak > pk->p16 * s8)
      peak = pk->p16 * s8;
  }
  *out = (KernelCost){.flops = flops, .bytes = bytes, .m = m, .n = ncols,
                      .k = kred, .peak = peak, .roof_sum = roof_sum,
                      .nrows = nm, .copy_bytes = copy_by,
                      .launches = cp->launches[r] + copy_l};
  /* each launch: the kernel's own fixed cost (calibrated) and the engine's
   * idle gap between dependent kernels in a stream (launch_gap: smaller
   * in a phase the engine replays as a CUDA graph) */
  double gap = e ? e->launch_gap[run[V_DECODE] != 0] : 0;
  out->time = cp->launches[r] * (f->launch + gap) +
              calib_kernel_time(f, k, flops, bytes, m, ncols, kred, peak, g);
  if (copy_l > 0)
    out->time += copy_time(c, g, gap, copy_l, copy_by);
}

/* Per call of calib_predict: per kernel kind, f->launch + gap and the
 * bandwidth it reaches (the products and sums kernel_cost makes). */
typedef struct KindConst {
  double launch_gap[KK_COUNT], bw_eff[KK_COUNT];
  double gemm8; /* engine_gemm8 on this GPU (0: none) */
} KindConst;

/* kernel_cost's time of kernel ki, its rows' roofline times summed in
 * *roof_sum: the same operations in the same order, on the packed
 * KernInfo (test_calib compares the two bit for bit). */
static inline __attribute__((always_inline)) double
kernel_time_fast(const struct KernInfo *ki, const KindConst *kk,
                 const Calib *c, const Engine *e, const Gpu *g,
                 const Peaks *pk, const Values *v, const double *run,
                 const double *roof, double *roof_sum, double *copy_launches) {
  KernelKind k = ki->kind;
  const KernelFit *f = &c->k[k];
  double flops = 0, bytes = 0, rs = 0, m = 0, ncols = 0, kred = 0;
  double prev_write = 0, copy_by = 0, copy_l = 0;
  if (!kernel_kind_computes(k)) { /* the same loop, bytes only */
    for (int nm = 0; nm < ki->nmem; nm++) {
      const struct MemberInfo *mi = &ki->mem[nm];
      const double *x = v->row[mi->row];
      double by = metric_bytes(x);
      rs += roof[mi->row];
      if (mi->traffic != 1)
        by *= mi->traffic;
      if (nm > 0)
        by -= fused_away(ki->drop, x, prev_write);
      prev_write = x[M_ACT_WRITE_BYTES];
      bytes += by;
    }
    if (bytes < 0)
      bytes = 0;
    *roof_sum = rs;
    return ki->launches * kk->launch_gap[k] + bytes / kk->bw_eff[k];
  }
  for (int nm = 0; nm < ki->nmem; nm++) {
    const struct MemberInfo *mi = &ki->mem[nm];
    const double *x = v->row[mi->row];
    double fl = x[M_FLOPS], by = metric_bytes(x);
    rs += roof[mi->row];
    if (mi->traffic != 1)
      by *= mi->traffic;
    if ((k == KK_ATTENTION || mi->kvq) && mi->arg >= 0 && e)
      attn_member(e, g, k, mi->kvq, v->args + mi->arg, mi->off, run, x, &fl,
                  &by, &copy_by, &copy_l);
    if (nm > 0)
      by -= fused_away(ki->drop, x, prev_write);
    prev_write = x[M_ACT_WRITE_BYTES];
    flops += fl;
    bytes += by;
    if (k == KK_GEMM && mi->arg >= 0) {
      const double *args = v->args + mi->arg;
      m = args[mi->off[0]];
      kred = args[mi->off[1]];
      ncols += args[mi->off[2]];
    } else if (k == KK_ATTENTION && mi->arg >= 0)
      kred = v->args[mi->arg + mi->off[2]];
  }
  if (bytes < 0)
    bytes = 0;
  *roof_sum = rs;
  double launch = ki->launches * kk->launch_gap[k];
  /* calib_kernel_time */
  double tm = bytes / kk->bw_eff[k];
  double peak = roof_peak_inline(pk, v->row[ki->lead], ki->xw, NULL);
  if (kk->gemm8 > 0 && peak > pk->p16 * kk->gemm8)
    peak = pk->p16 * kk->gemm8;
  double tc;
  if (k == KK_ATTENTION)
    tc = attn_tc(flops, kred, peak * f->compute_eff, g);
  else
    tc = flops / (peak * f->compute_eff *
                  (k == KK_GEMM ? waves(m, ncols, kred, g->sm_count) : 1));
  double time = launch + overlapped(f, tc, tm);
  if (copy_l > 0) {
    double gap = e ? e->launch_gap[run[V_DECODE] != 0] : 0;
    time += copy_time(c, g, gap, copy_l, copy_by);
    *copy_launches = copy_l;
  }
  return time;
}

void calib_kernel_cost(const CalibPlan *cp, const Calib *c, const Engine *e,
                       const Gpu *g, const Peaks *pk, const Values *v,
                       const double *run, const double *roof, int r,
                       KernelCost *out) {
  kernel_cost(cp, c, e, g, pk, v, run, roof, r, out);
}

double calib_predict(const CalibPlan *cp, const Calib *c, const Engine *e,
                     const Gpu *g, const Peaks *pk, const Values *v,
                     const double *run, const double *roof, double *row_time) {
  return calib_predict_rows(cp, c, e, g, pk, v, run, roof, row_time, NULL);
}

LM_SSE41_CLONES
double calib_predict_rows(const CalibPlan *cp, const Calib *c,
                          const Engine *e, const Gpu *g, const Peaks *pk,
                          const Values *v, const double *run,
                          const double *roof, double *row_time,
                          const bool *only) {
  double total = 0, launches = 0;
  /* a host-bound engine rescales every row by the whole phase's launches:
   * no row's time can be kept from the last evaluation */
  if (e && e->host_launch > 0)
    only = NULL;
  bool host_bound = e && e->host_launch > 0;
  KindConst kk;
  kk.gemm8 = e ? engine_gemm8(e, g) : 0;
  double gap = e ? e->launch_gap[run[V_DECODE] != 0] : 0;
  for (int i = 0; i < cp->nkinds; i++) {
    int k = cp->kinds[i];
    kk.launch_gap[k] = c->k[k].launch + gap;
    kk.bw_eff[k] = g->bandwidth * c->k[k].memory_eff;
  }
  for (int i = 0; i < cp->nkern; i++) {
    const struct KernInfo *ki = &cp->kinfo[i];
    int r = ki->lead, nmem = ki->nmem;
    const struct MemberInfo *mem = ki->mem;
    if (nmem == 1 && v->off && v->off[r]) {
      row_time[r] = 0; /* runs in the other phase (MLA, Mamba): no kernel */
      continue;
    }
    bool again = !only;
    for (int j = 0; j < nmem && !again; j++)
      again = only[mem[j].row];
    if (!again) { /* its rows' times are still there: the same sum */
      for (int j = 0; j < nmem; j++)
        total += mem[j].count * row_time[mem[j].row];
      continue;
    }
    double roof_sum, copy_l = 0;
    double t = kernel_time_fast(ki, &kk, c, e, g, pk, v, run, roof, &roof_sum,
                                &copy_l);
    if (host_bound) /* (else host is 0 x launches = 0 whatever they are) */
      launches += ki->count * (ki->launches + copy_l);
    /* share among the rows by roofline time (equal shares if all 0) */
    if (nmem == 1) {
      row_time[r] = t;
      total += ki->count * t;
      continue;
    }
    double scale = roof_sum > 0 ? t / roof_sum : 0;
    for (int j = 0; j < nmem; j++) {
      int q = mem[j].row;
      row_time[q] = roof_sum > 0 ? roof[q] * scale : t / nmem;
      total += mem[j].count * row_time[q];
    }
  }
  /* host-bound (an engine whose host issues each launch in host_launch): the
   * GPU waits for the host when issuing the phase's launches takes longer
   * than running them; every row waits in proportion to its time */
  double host = e ? e->host_launch * launches : 0;
  if (host > total && total > 0) {
    double k = host / total;
    for (int r = 0; r < cp->nrows; r++)
      row_time[r] *= k;
    total = host;
  }
  return total;
}

double calib_host_time(const CalibPlan *cp, const Engine *e, const Values *v) {
  if (!e || e->host_launch <= 0)
    return 0;
  double launches = 0;
  bool decode = v->vars[V_DECODE] != 0;
  for (int r = 0; r < cp->nrows; r++)
    if (cp->lead[r] == r && !(v->off && v->off[r] && cp->next[r] < 0)) {
      double n = cp->launches[r];
      /* kv_per_query_head's copy kernels, in a grouped-query layer */
      if (cp->kvq[r] && cp->attn_arg[r] >= 0 && e->kvq_copy > 0 &&
          e->kvq_phase[decode]) {
        const double *args = v->args + cp->attn_arg[r];
        double h = args[cp->attn_off[r][0]], hkv = args[cp->attn_off[r][1]];
        if (hkv > 0 && h > hkv)
          n += e->kvq_copy;
      }
      launches += cp->plan->rows[r].count * n;
    }
  return launches * e->host_launch;
}
