/* lmpredict.c: the public C library (include/lmpredict.h) over the
 * internal parts: Db + Registry + GpuDb behind lmp_data, Model + its plans
 * behind lmp_model, PredictOpts behind lmp_options, a Prediction behind
 * lmp_result. Option parsing and its messages live here so lmrun, the
 * Python binding and C callers check options the same way.
 */
#include "lmpredict.h"
#include "calib.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef LMP_VERSION
#define LMP_VERSION "0.0.0"
#endif

#define MAX_SEQ 16777216.0 /* 2^24 tokens */

#define MAX_CACHED 32

struct lmp_data {
  char *calib_dir;   /* calibration/ of the install */
  char *engine_dir;  /* engines/ of the install */
  Calib *calib[MAX_CACHED]; /* loaded on first use, by GPU id */
  char *calib_gpu[MAX_CACHED]; /* the GPU each is for */
  Engine *engine[MAX_CACHED]; /* by engine id */
  int ncalib, nengine;
  GpuDb *gpus;
  char *hw_path;
  char *hw_text;  /* the hardware file (lmp_hardware_json) */
  size_t hw_len;
  Db *db;
  Registry *reg;
};

struct lmp_model {
  lmp_data *data;
  Model *model;
  Plan *plan[ATTN_COUNT]; /* built on first use */
};

struct lmp_options {
  PredictOpts p;
  char *hardware; /* owned; p.hardware points here */
  char *engine;   /* owned; p.engine points here */
};

struct lmp_result {
  const lmp_model *model;
  char *hardware; /* owned; pred.opts.hardware points here */
  Prediction pred;
  char *warnings; /* built on first use */
};

const char *lmp_version(void) { return LMP_VERSION; }

void lmp_free(void *p) { free(p); }

/* ------------------------------------------------------------ errors */

/* An option error: the message alone, as lmrun prints it. */
static void opt_error(lmp_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void opt_error(lmp_error *e, const char *fmt, ...) {
  if (!e)
    return;
  memset(e, 0, sizeof(*e));
  e->set = 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof(e->message), fmt, ap);
  va_end(ap);
  snprintf(e->text, sizeof(e->text), "%s\n", e->message);
}

/* A located error from the internal parts. */
static void from_error(lmp_error *e, const Error *in) {
  if (!e)
    return;
  memset(e, 0, sizeof(*e));
  e->set = 1;
  snprintf(e->file, sizeof(e->file), "%s", in->file);
  snprintf(e->where, sizeof(e->where), "%s", in->where);
  e->line = in->line;
  e->column = in->col;
  snprintf(e->message, sizeof(e->message), "%s", in->msg);
  Buf b;
  buf_init(&b);
  err_render(&b, in);
  snprintf(e->text, sizeof(e->text), "%s", buf_str(&b));
  buf_free(&b);
}

/* -------------------------------------------------------------- data */

lmp_data *lmp_open(const char *module_db, const char *modules_dir,
                   const char *hardware_db, lmp_error *err) {
  const char *home = lm_home();
  char *db_path = module_db ? xstrdup(module_db)
                            : path_join(home, "module_db.json");
  char *mod_dir = modules_dir ? xstrdup(modules_dir)
                              : path_join(home, "generated_modules");
  lmp_data *d = xcalloc(1, sizeof(*d));
  d->hw_path = hardware_db ? xstrdup(hardware_db)
                           : path_join(home, "hardware.json");
  d->calib_dir = path_join(home, "calibration");
  d->engine_dir = path_join(home, "engines");
  Error e;
  err_clear(&e);
  size_t len = 0;
  char *text = fs_read(d->hw_path, &len, &e);
  if (!text || !(d->gpus = gpudb_load_text(d->hw_path, text, len, &e)) ||
      !(d->db = db_load(db_path, &e)) || !(d->reg = reg_open(d->db, mod_dir, &e))) {
    from_error(err, &e);
    free(text);
    lmp_close(d);
    d = NULL;
  } else {
    d->hw_text = text;
    d->hw_len = len;
  }
  free(db_path);
  free(mod_dir);
  return d;
}

void lmp_close(lmp_data *d) {
  if (!d)
    return;
  for (int i = 0; i < d->ncalib; i++) {
    calib_free(d->calib[i]);
    free(d->calib_gpu[i]);
  }
  for (int i = 0; i < d->nengine; i++)
    engine_free(d->engine[i]);
  free(d->calib_dir);
  free(d->engine_dir);
  reg_free(d->reg);
  db_free(d->db);
  gpudb_free(d->gpus);
  free(d->hw_path);
  free(d->hw_text);
  free(d);
}

char *lmp_hardware_json(const lmp_data *d) {
  /* checked by gpudb_load_text: an object with a "gpus" array */
  json_t *root = json_loadb(d->hw_text, d->hw_len, 0, NULL);
  char *s = json_dumps(json_object_get(root, "gpus"),
                       JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(root);
  char *out = xstrdup(s); /* lmp_free is free(): same allocator */
  free(s);
  return out;
}

char *lmp_hardware_text(const lmp_data *d) { return report_hardware(d->gpus); }

/* ------------------------------------------------------------- model */

lmp_model *lmp_model_load(lmp_data *d, const char *path, lmp_error *err) {
  Error e;
  err_clear(&e);
  /* a model file, a config.json, a snapshot directory or a Hub id; the
   * registry compiles the model's modules only */
  Model *m = model_open(path, NULL, d->reg, &e);
  if (!m) {
    from_error(err, &e);
    return NULL;
  }
  lmp_model *lm = xcalloc(1, sizeof(*lm));
  lm->data = d;
  lm->model = m;
  return lm;
}

void lmp_model_free(lmp_model *m) {
  if (!m)
    return;
  for (int i = 0; i < ATTN_COUNT; i++)
    plan_free(m->plan[i]);
  model_free(m->model);
  free(m);
}

const char *lmp_model_id(const lmp_model *m) { return m->model->id; }

/* ----------------------------------------------------------- options */

lmp_options *lmp_options_new(void) {
  lmp_options *o = xcalloc(1, sizeof(*o));
  predict_defaults(&o->p);
  o->hardware = xstrdup(o->p.hardware);
  o->p.hardware = o->hardware;
  o->engine = xstrdup(o->p.engine);
  o->p.engine = o->engine;
  return o;
}

void lmp_options_free(lmp_options *o) {
  if (!o)
    return;
  free(o->hardware);
  free(o->engine);
  free(o);
}

/* A whole number in [1, max], digits only. */
static int parse_count(const char *opt, const char *s, double max,
                       double *out, lmp_error *err) {
  if (!*s || strspn(s, "0123456789") != strlen(s)) {
    opt_error(err, "%s expects a whole number, not '%s'", opt, s);
    return -1;
  }
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno == ERANGE || (double)v > max) {
    opt_error(err, "%s %s is too large (at most %.0f)", opt, s, max);
    return -1;
  }
  if (v == 0) {
    opt_error(err, "%s must be at least 1", opt);
    return -1;
  }
  *out = (double)v;
  return 0;
}

static int parse_bits(const char *opt, const char *s, int *out,
                      lmp_error *err) {
  if (strcmp(s, "16") == 0 || strcmp(s, "8") == 0 || strcmp(s, "4") == 0) {
    *out = atoi(s);
    return 0;
  }
  opt_error(err, "%s is 16, 8 or 4, not '%s'", opt, s);
  return -1;
}

/* One of the names of a table (NULL entries are not choices). */
static int pick(const char *opt, const char *s, const char *const *names,
                int n, int *out, lmp_error *err) {
  for (int i = 0; i < n; i++)
    if (names[i] && strcmp(s, names[i]) == 0) {
      *out = i;
      return 0;
    }
  Buf b;
  buf_init(&b);
  int left = 0;
  for (int i = 0; i < n; i++)
    left += names[i] != NULL;
  for (int i = 0; i < n; i++)
    if (names[i]) {
      left--;
      buf_printf(&b, "%s%s", names[i], left > 1 ? ", " : left ? " or " : "");
    }
  opt_error(err, "%s is %s, not '%s'", opt, buf_str(&b), s);
  buf_free(&b);
  return -1;
}

/* The options: long name, the name lmrun's messages use, what it sets. */
typedef enum { K_COUNT, K_BITS, K_PICK, K_STRING, K_BOOL, K_ENGINE } OptKind;

typedef struct OptSpec {
  const char *name, *flag;
  OptKind kind;
  size_t off;                /* into PredictOpts */
  double max;                /* K_COUNT */
  const char *const *names;  /* K_PICK */
  int nnames;
} OptSpec;

static const char *const no_yes[] = {"no", "yes"};

#define OFF(f) offsetof(PredictOpts, f)
static const OptSpec specs[] = {
    {"batch", "-B", K_COUNT, OFF(batch), LM_MAX_BATCH, NULL, 0},
    {"seq-len", "-S", K_COUNT, OFF(seq_len), MAX_SEQ, NULL, 0},
    {"phase", "--phase", K_PICK, OFF(phase), 0, phase_name, PHASE_COUNT},
    {"w-bits", "--w-bits", K_BITS, OFF(w_bits), 0, NULL, 0},
    {"a-bits", "--a-bits", K_BITS, OFF(a_bits), 0, NULL, 0},
    {"kv-bits", "--kv-bits", K_BITS, OFF(kv_bits), 0, NULL, 0},
    {"embed-bits", "--embed-bits", K_BITS, OFF(e_bits), 0, NULL, 0},
    {"8bit-format", "--8bit-format", K_PICK, OFF(fmt8), 0, format8_name,
     FMT8_COUNT},
    {"attention", "--attention", K_PICK, OFF(attn), 0, attn_name, ATTN_COUNT},
    {"hardware", "--hardware", K_STRING, OFF(hardware), 0, NULL, 0},
    {"format", "--format", K_PICK, OFF(format), 0, format_name, FMT_COUNT},
    {"max-batch", "max-batch", K_BOOL, OFF(max_batch), 0, no_yes, 2},
    {"roofline", "--roofline", K_BOOL, OFF(roofline), 0, no_yes, 2},
    {"engine", "--engine", K_ENGINE, OFF(engine), 0, NULL, 0},
};
#undef OFF

/* name with '_' read as '-' equals spec. */
static bool same_name(const char *name, const char *spec) {
  for (; *name && *spec; name++, spec++)
    if (*name != *spec && !(*name == '_' && *spec == '-'))
      return false;
  return !*name && !*spec;
}

int lmp_options_set(lmp_options *o, const char *name, const char *value,
                    lmp_error *err) {
  const OptSpec *sp = NULL;
  for (size_t i = 0; i < LM_ARRAY_LEN(specs) && !sp; i++)
    if (same_name(name, specs[i].name))
      sp = &specs[i];
  if (!sp) {
    opt_error(err, "unknown option '%s'", name);
    return -1;
  }
  if (!value) {
    opt_error(err, "%s needs a value", sp->flag);
    return -1;
  }
  char *field = (char *)&o->p + sp->off;
  switch (sp->kind) {
  case K_COUNT: {
    double v;
    if (parse_count(sp->flag, value, sp->max, &v, err) < 0)
      return -1;
    memcpy(field, &v, sizeof(v));
    return 0;
  }
  case K_BITS: {
    int v;
    if (parse_bits(sp->flag, value, &v, err) < 0)
      return -1;
    memcpy(field, &v, sizeof(v));
    return 0;
  }
  case K_PICK: {
    int v;
    if (pick(sp->flag, value, sp->names, sp->nnames, &v, err) < 0)
      return -1;
    if (sp->off == offsetof(PredictOpts, attn))
      o->p.attn_set = true;
    _Static_assert(sizeof(Format) == sizeof(int) &&
                       sizeof(Format8) == sizeof(int) &&
                       sizeof(AttnImpl) == sizeof(int) &&
                       sizeof(PhaseSel) == sizeof(int),
                   "K_PICK fields are int-sized enums");
    memcpy(field, &v, sizeof(v));
    return 0;
  }
  case K_BOOL: {
    int v;
    if (pick(sp->flag, value, sp->names, sp->nnames, &v, err) < 0)
      return -1;
    *(bool *)field = v;
    return 0;
  }
  case K_ENGINE:
    /* it names a file: lowercase letters, digits and '-' only */
    if (!*value || strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
                       strlen(value)) {
      opt_error(err, "--engine is an engine id (lowercase letters, digits "
                     "and '-': vllm, trtllm, hf-eager), not '%s'",
                value);
      return -1;
    }
    free(o->engine);
    o->engine = xstrdup(value);
    o->p.engine = o->engine;
    return 0;
  case K_STRING:
    free(o->hardware);
    o->hardware = xstrdup(value);
    o->p.hardware = o->hardware;
    return 0;
  }
  return -1;
}

/* ----------------------------------------------------------- predict */

/* The engine named id, loaded from engines/<id>.json on first use. */
static const Engine *data_engine(lmp_data *d, const char *id, Error *e) {
  for (int i = 0; i < d->nengine; i++)
    if (strcmp(d->engine[i]->id, id) == 0)
      return d->engine[i];
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s.json", id);
  char *path = path_join(d->engine_dir, buf_str(&b));
  buf_free(&b);
  FILE *f = fopen(path, "r");
  if (!f) {
    err_set(e, "no serving engine '%s' (%s not found; shipped: vllm, trtllm, "
               "hf-eager)",
            id, path_display(path));
    free(path);
    return NULL;
  }
  fclose(f);
  Engine *en = engine_load(path, e);
  if (en && strcmp(en->id, id) != 0) {
    err_file(e, path_display(path), "engine is '%s', but the file is named "
                                    "for '%s'",
             en->id, id);
    engine_free(en);
    en = NULL;
  }
  free(path);
  if (!en)
    return NULL;
  if (d->nengine == MAX_CACHED) { /* results borrow them: never evicted */
    err_set(e, "more than %d serving engines in one session", MAX_CACHED);
    engine_free(en);
    return NULL;
  }
  d->engine[d->nengine++] = en;
  return en;
}

/* The calibration for GPU id (its own, or a sibling's), on first use. */
static const Calib *data_calib(lmp_data *d, const char *id, Error *e) {
  for (int i = 0; i < d->ncalib; i++)
    if (strcmp(d->calib_gpu[i], id) == 0)
      return d->calib[i];
  if (d->ncalib == MAX_CACHED) { /* results borrow them: never evicted */
    err_set(e, "more than %d GPUs in one session", MAX_CACHED);
    return NULL;
  }
  Calib *c = calib_for_gpu(d->calib_dir, id, e);
  if (!c)
    return NULL;
  d->calib_gpu[d->ncalib] = xstrdup(id);
  d->calib[d->ncalib++] = c;
  return c;
}

lmp_result *lmp_predict(lmp_data *d, const lmp_model *m,
                        const lmp_options *o, lmp_error *err) {
  Error e;
  err_clear(&e);
  const Gpu *gpu = predict_gpu(d->gpus, d->hw_path, o->p.hardware, &e);
  lmp_model *mm = (lmp_model *)m; /* the plan cache */
  AttnImpl a = o->p.attn;
  const Calib *cal = NULL;
  const Engine *eng = NULL;
  if (gpu && !o->p.roofline) {
    if (!(eng = data_engine(d, o->p.engine, &e)) ||
        !(cal = data_calib(d, gpu->id, &e))) {
      from_error(err, &e);
      return NULL;
    }
    if (!o->p.attn_set)
      a = eng->attention;
  }
  if (gpu && !mm->plan[a])
    mm->plan[a] = plan_build(m->model, a, &e);
  if (!gpu || !mm->plan[a]) {
    from_error(err, &e);
    return NULL;
  }
  lmp_result *r = xcalloc(1, sizeof(*r));
  r->model = m;
  r->hardware = xstrdup(o->p.hardware);
  PredictOpts po = o->p;
  po.hardware = r->hardware;
  po.attn = a;
  po.calib = cal;
  po.engine_data = eng;
  if (predict(mm->plan[a], gpu, &po, &r->pred, &e) < 0) {
    from_error(err, &e);
    lmp_result_free(r);
    return NULL;
  }
  return r;
}

char *lmp_result_json(const lmp_result *r) {
  Report rep = prediction_report(&r->pred);
  return report_render(&rep, FMT_JSON);
}

char *lmp_result_text(const lmp_result *r) {
  Report rep = prediction_report(&r->pred);
  return report_render(&rep, r->pred.opts.format);
}

const char *lmp_result_warnings(const lmp_result *r) {
  lmp_result *w = (lmp_result *)r; /* built on first use */
  if (!w->warnings) {
    Buf b;
    buf_init(&b);
    prediction_warnings(&r->pred, &b);
    w->warnings = buf_steal(&b);
  }
  return w->warnings;
}

static int phase_index(const char *phase) {
  if (!phase)
    return -1;
  for (int i = PHASE_PREFILL; i <= PHASE_DECODE; i++)
    if (strcmp(phase, phase_name[i]) == 0)
      return i;
  return -1;
}

int lmp_result_rows(const lmp_result *r, const char *phase) {
  return phase_index(phase) < 0 ? -1 : r->pred.plan->nrows;
}

const char *lmp_result_row_name(const lmp_result *r, int row,
                                const char *field) {
  if (row < 0 || row >= r->pred.plan->nrows || !field)
    return NULL;
  const Row *w = &r->pred.plan->rows[row];
  if (strcmp(field, "path") == 0)
    return w->path;
  if (strcmp(field, "op") == 0)
    return w->op;
  if (strcmp(field, "module") == 0)
    return w->module;
  return NULL;
}

double lmp_result_row(const lmp_result *r, const char *phase, int row,
                      const char *key) {
  int p = phase_index(phase);
  if (p < 0 || row < 0 || row >= r->pred.plan->nrows || !key)
    return NAN;
  const PhaseResult *ph = &r->pred.phase[p];
  const double *v = ph->vals->row[row];
  int k = metric_lookup(key);
  if (k >= 0 && k < M_TRAFFIC)
    return v[k];
  double bytes = metric_bytes(v);
  if (strcmp(key, "count") == 0)
    return r->pred.plan->rows[row].count;
  if (strcmp(key, "bytes") == 0)
    return bytes;
  if (strcmp(key, "arithmetic_intensity") == 0)
    return bytes == 0 ? (v[M_FLOPS] == 0 ? 0 : INFINITY) : v[M_FLOPS] / bytes;
  if (strcmp(key, "time_s") == 0)
    return ph->pred ? ph->pred[row] : ph->time[row];
  if (strcmp(key, "roofline_time_s") == 0)
    return ph->time[row];
  return NAN;
}

double lmp_result_summary(const lmp_result *r, const char *key) {
  const Summary *s = &r->pred.summary;
  const struct {
    const char *key;
    double v;
  } t[] = {{"ttft_s", s->ttft},
           {"tpot_s", s->tpot},
           {"ttft_roofline_s", s->ttft_roofline},
           {"tpot_roofline_s", s->tpot_roofline},
           {"tokens_per_s", s->tokens_per_s},
           {"weight_bytes", s->mem.weights},
           {"kv_cache_bytes", s->mem.kv_cache},
           {"activation_bytes", s->mem.act},
           {"total_bytes", s->mem.total},
           {"capacity_bytes", s->mem.capacity},
           {"fits", s->mem.fits},
           {"max_batch", s->mem.max_batch},
           {"max_batch_capped", s->mem.max_capped}};
  for (size_t i = 0; key && i < LM_ARRAY_LEN(t); i++)
    if (strcmp(key, t[i].key) == 0)
      return t[i].v;
  return NAN;
}

void lmp_result_free(lmp_result *r) {
  if (!r)
    return;
  prediction_free(&r->pred);
  free(r->hardware);
  free(r->warnings);
  free(r);
}
