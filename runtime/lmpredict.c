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
  size_t hw_mapped; /* hw_text is fs_map's mapping of this length */
  size_t hw_len;
  Db *db;
  Registry *reg;
  char *par_path; /* parallel.json, loaded on first use */
  ParDb *par;
  CollCal *coll;  /* calibration/collectives.json with custom_all_reduce.json,
                     loaded on first use */
};

typedef struct ParCache {
  AttnImpl attn;
  ParPlan *pp;
  struct ParCache *next;
} ParCache;

struct lmp_model {
  lmp_data *data;
  Model *model;
  Plan *plan[ATTN_COUNT]; /* built on first use */
  ParCache *par;          /* split plans, built on first use */
};

struct lmp_options {
  PredictOpts p;
  char *hardware; /* owned; p.hardware points here */
  char *engine;   /* owned; p.engine points here */
};

struct lmp_result {
  const lmp_model *model;
  char *hardware; /* owned; pred.opts.hardware points here */
  const Gpu *gpu; /* the GPU named hardware (looked up once) */
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
  d->par_path = path_join(home, "parallel.json");
  d->calib_dir = path_join(home, "calibration");
  d->engine_dir = path_join(home, "engines");
  Error e;
  err_clear(&e);
  size_t len = 0, mapped = 0;
  /* mapped from the page cache, not read: every run hashes it for the
   * cache's key, few parse it */
  char *text = fs_map(d->hw_path, &len, &mapped, &e);
  if (!text || !(d->gpus = gpudb_load_cached(d->hw_path, text, len, &e)) ||
      !(d->db = db_open_stamped(db_path, mod_dir, &e)) ||
      !(d->reg = reg_open(d->db, mod_dir, &e))) {
    from_error(err, &e);
    if (text)
      fs_unmap(text, mapped);
    lmp_close(d);
    d = NULL;
  } else {
    d->hw_text = text;
    d->hw_len = len;
    d->hw_mapped = mapped;
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
  if (d->hw_text)
    fs_unmap(d->hw_text, d->hw_mapped);
  free(d->par_path);
  pardb_free(d->par);
  collcal_free(d->coll);
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
  for (ParCache *c = m->par, *nx; c; c = nx) {
    nx = c->next;
    parplan_free(c->pp);
    free(c);
  }
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

/* A decimal in (0, 1] (--expert-balance). */
static int parse_fraction(const char *opt, const char *s, double *out,
                          lmp_error *err) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (!*s || *end || errno || !(v > 0 && v <= 1) ||
      strspn(s, "0123456789.eE-+") != strlen(s)) {
    opt_error(err, "%s is a number above 0 and at most 1, not '%s'", opt, s);
    return -1;
  }
  *out = v;
  return 0;
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
typedef enum {
  K_COUNT,
  K_BITS,
  K_PICK,
  K_STRING,
  K_BOOL,
  K_INT,
  K_ENGINE,
  K_FRACTION
} OptKind;

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
    {"output-len", "-O", K_COUNT, OFF(output_len), MAX_SEQ, NULL, 0},
    {"tp", "--tp", K_INT, OFF(tp), LM_MAX_PARALLEL, NULL, 0},
    {"pp", "--pp", K_INT, OFF(pp), LM_MAX_PARALLEL, NULL, 0},
    {"ep", "--ep", K_INT, OFF(ep), LM_MAX_PARALLEL, NULL, 0},
    {"microbatches", "--microbatches", K_INT, OFF(microbatches), LM_MAX_BATCH,
     NULL, 0},
    {"roofline", "--roofline", K_BOOL, OFF(roofline), 0, no_yes, 2},
    {"engine", "--engine", K_ENGINE, OFF(engine), 0, NULL, 0},
    {"expert-balance", "--expert-balance", K_FRACTION, OFF(expert_balance), 0,
     NULL, 0},
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
  case K_INT: {
    double v;
    if (parse_count(sp->flag, value, sp->max, &v, err) < 0)
      return -1;
    int iv = (int)v;
    memcpy(field, &iv, sizeof(iv));
    return 0;
  }
  case K_BITS: {
    int v;
    if (parse_bits(sp->flag, value, &v, err) < 0)
      return -1;
    memcpy(field, &v, sizeof(v));
    if (field == (char *)&o->p.w_bits)
      o->p.w_given = true; /* overrides a quantization_config */
    return 0;
  }
  case K_FRACTION: {
    double v;
    if (parse_fraction(sp->flag, value, &v, err) < 0)
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
                     "and '-': vllm, trtllm, trtllm-xqa, hf-eager), not '%s'",
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
               "trtllm-xqa, hf-eager)",
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

/* The options one prediction into r runs with: r keeps its own copy of the
 * hardware id (the options may be freed before r) and drops the previous
 * prediction's warnings. */
static PredictOpts result_begin(lmp_result *r, const lmp_options *o,
                                const Gpu *gpu, AttnImpl a, const Calib *cal,
                                const Engine *eng) {
  if (!r->hardware || strcmp(r->hardware, o->p.hardware) != 0) {
    free(r->hardware);
    r->hardware = xstrdup(o->p.hardware);
  }
  r->gpu = gpu;
  free(r->warnings);
  r->warnings = NULL;
  PredictOpts po = o->p;
  po.hardware = r->hardware;
  po.attn = a;
  po.calib = cal;
  po.engine_data = eng;
  return po;
}

/* Predict into r (its buffers reused). e: a cleared Error (a sweep keeps
 * one and clears it only after it was set: clearing it costs more than a
 * prediction's arithmetic). */
static int predict_into(lmp_data *d, const lmp_model *m, const lmp_options *o,
                        lmp_result *r, lmp_error *err, Error *e) {
  const Gpu *gpu =
      r->gpu && r->hardware && strcmp(r->hardware, o->p.hardware) == 0
          ? r->gpu
          : predict_gpu(d->gpus, d->hw_path, o->p.hardware, e);
  lmp_model *mm = (lmp_model *)m; /* the plan cache */
  AttnImpl a = o->p.attn;
  const Calib *cal = NULL;
  const Engine *eng = NULL;
  if (gpu && !o->p.roofline) {
    if (!(eng = data_engine(d, o->p.engine, e)) ||
        !(cal = data_calib(d, gpu->id, e))) {
      from_error(err, e);
      return -1;
    }
    if (!o->p.attn_set)
      a = eng->attention;
  }
  const PredictOpts *po0 = &o->p;
  if (gpu && (po0->tp > 1 || po0->pp > 1 || po0->ep > 1 ||
              po0->microbatches > 1)) {
    if (!d->par && !(d->par = pardb_load(d->par_path, e))) {
      from_error(err, e);
      return -1;
    }
    if (cal && !d->coll) {
      char *cp = path_join(d->calib_dir, "collectives.json");
      d->coll = collcal_load(cp, e);
      free(cp);
      if (!d->coll) {
        from_error(err, e);
        return -1;
      }
      /* the engines' own all-reduce kernels (engines/<id>.json all_reduce) */
      cp = path_join(d->calib_dir, "custom_all_reduce.json");
      int rc = collcal_extend(d->coll, cp, NULL, 0, e);
      free(cp);
      if (rc < 0) {
        collcal_free(d->coll);
        d->coll = NULL;
        from_error(err, e);
        return -1;
      }
    }
    ParCache *c = mm->par;
    while (c && !(c->attn == a && c->pp->tp == po0->tp && c->pp->ep == po0->ep))
      c = c->next;
    if (!c) {
      ParPlan *pp = parplan_build(d->par, m->model, d->reg, a, po0->tp,
                                  po0->ep, e);
      if (!pp) {
        from_error(err, e);
        return -1;
      }
      c = xcalloc(1, sizeof(*c));
      *c = (ParCache){a, pp, mm->par};
      mm->par = c;
    }
    PredictOpts po = result_begin(r, o, gpu, a, cal, eng);
    po.coll_calib = cal ? d->coll : NULL;
    if (predict_par(c->pp, d->par, gpu, &po, &r->pred, e) < 0) {
      from_error(err, e);
      return -1;
    }
    return 0;
  }
  if (gpu && !mm->plan[a])
    mm->plan[a] = plan_build(m->model, a, e);
  if (!gpu || !mm->plan[a]) {
    from_error(err, e);
    return -1;
  }
  PredictOpts po = result_begin(r, o, gpu, a, cal, eng);
  if (predict(mm->plan[a], gpu, &po, &r->pred, e) < 0) {
    from_error(err, e);
    return -1;
  }
  return 0;
}

lmp_result *lmp_predict(lmp_data *d, const lmp_model *m,
                        const lmp_options *o, lmp_error *err) {
  lmp_result *r = xcalloc(1, sizeof(*r));
  r->model = m;
  Error e;
  err_clear(&e);
  if (predict_into(d, m, o, r, err, &e) < 0) {
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

char *lmp_explain(const lmp_result *r, const char *op, lmp_error *err) {
  Error e;
  err_clear(&e);
  if (!op || !*op) {
    opt_error(err, "--explain needs an operation name or path");
    return NULL;
  }
  int row = explain_find(r->pred.plan, op, &e);
  if (row < 0) {
    from_error(err, &e);
    return NULL;
  }
  Report rep = prediction_report(&r->pred);
  Buf b;
  buf_init(&b);
  for (int i = 0; i < rep.nphases; i++) {
    if (i)
      buf_puts(&b, "\n----------------------------------------------------"
                   "--------------------------\n\n");
    explain_row(&rep, i, row, &b);
  }
  return buf_steal(&b);
}

char *lmp_result_tree(const lmp_result *r) {
  Buf b;
  buf_init(&b);
  tree_render(r->pred.plan, r->pred.vals[0], r->pred.vals[1], &b);
  return buf_steal(&b);
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
           {"max_batch_capped", s->mem.max_capped},
           {"output_len", s->output_len},
           {"e2e_latency_s", s->e2e},
           {"tpot_mean_s", s->tpot_mean},
           {"gpus", s->gpus},
           {"throughput_tokens_per_s", s->throughput},
           {"throughput_per_gpu_tokens_per_s", s->throughput_per_gpu}};
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

/* ------------------------------------------------------- summary rows */

/* The configuration and summary of a result as (key, number) pairs; the
 * strings (model, hardware, attention) are written separately. */
typedef struct RowNum {
  const char *key;
  double v;
  bool flag; /* true/false in JSON */
} RowNum;

static int opts_config(const PredictOpts *o, RowNum *out) {
  const RowNum t[] = {{"batch_size", o->batch, false},
                      {"seq_len", o->seq_len, false},
                      {"output_len", o->output_len, false},
                      {"tp", o->tp, false},
                      {"pp", o->pp, false},
                      {"ep", o->ep, false},
                      {"microbatches", o->microbatches, false},
                      {"w_bits", o->w_bits, false},
                      {"a_bits", o->a_bits, false},
                      {"kv_bits", o->kv_bits, false}};
  memcpy(out, t, sizeof(t));
  return (int)LM_ARRAY_LEN(t);
}

static int row_config(const lmp_result *r, RowNum *out) {
  return opts_config(&r->pred.opts, out);
}

static int row_summary(const lmp_result *r, RowNum *out) {
  const Summary *s = &r->pred.summary;
  bool o = s->output_len > 0;
  const RowNum t[] = {{"ttft_s", s->ttft, false},
                      {"tpot_s", s->tpot, false},
                      {"tpot_mean_s", o ? s->tpot_mean : NAN, false},
                      {"e2e_latency_s", o ? s->e2e : NAN, false},
                      {"tokens_per_s", s->tokens_per_s, false},
                      {"throughput_tokens_per_s", s->throughput, false},
                      {"throughput_per_gpu_tokens_per_s",
                       s->throughput_per_gpu, false},
                      {"gpus", s->gpus, false},
                      {"weight_bytes", s->mem.weights, false},
                      {"kv_cache_bytes", s->mem.kv_cache, false},
                      {"activation_bytes", s->mem.act, false},
                      {"total_bytes", s->mem.total, false},
                      {"capacity_bytes", s->mem.capacity, false},
                      {"fits", s->mem.fits, true},
                      {"max_batch", s->mem.max_batch, false}};
  memcpy(out, t, sizeof(t));
  return (int)LM_ARRAY_LEN(t);
}

static void row_json_pairs(Buf *b, const RowNum *t, int n, bool first) {
  for (int i = 0; i < n; i++) {
    char num[64];
    if (t[i].flag)
      snprintf(num, sizeof(num), "%s", t[i].v != 0 ? "true" : "false");
    else
      report_number(t[i].v, num, sizeof(num));
    buf_puts(b, first && i == 0 ? "\"" : ", \"");
    buf_puts(b, t[i].key);
    buf_puts(b, "\": ");
    buf_puts(b, num);
  }
}

/* {"model": ..., "hardware": ..., "attention": ..., config... */
static void opts_json_config(Buf *b, const char *model, const PredictOpts *o) {
  RowNum t[16];
  buf_puts(b, "{\"model\": ");
  report_json_string(b, model);
  buf_puts(b, ", \"hardware\": ");
  report_json_string(b, o->hardware);
  buf_puts(b, ", \"attention\": ");
  report_json_string(b, attn_name[o->attn]);
  buf_puts(b, ", \"engine\": ");
  if (o->roofline)
    buf_puts(b, "null");
  else
    report_json_string(b, o->engine);
  buf_printf(b, ", \"roofline\": %s, ", o->roofline ? "true" : "false");
  row_json_pairs(b, t, opts_config(o, t), true);
}

static void row_json_config(Buf *b, const lmp_result *r) {
  opts_json_config(b, r->model->model->id, &r->pred.opts);
}

#define ROW_TABLE_HEAD                                                         \
  "%6s %7s %6s %-14s %3s %3s %2s %2s %-5s %-8s %10s %10s %10s %10s %11s "  \
  "%11s %10s %4s\n"

char *lmp_row_header(const char *format) {
  Buf b;
  buf_init(&b);
  if (format && strcmp(format, "csv") == 0) {
    buf_puts(&b, "model,hardware,attention,engine,roofline,batch_size,seq_len,"
                 "output_len,tp,"
                 "pp,ep,microbatches,w_bits,a_bits,kv_bits,ttft_s,tpot_s,"
                 "tpot_mean_s,e2e_latency_s,tokens_per_s,"
                 "throughput_tokens_per_s,throughput_per_gpu_tokens_per_s,"
                 "gpus,weight_bytes,kv_cache_bytes,activation_bytes,"
                 "total_bytes,capacity_bytes,fits,max_batch,error\n");
  } else if (!format || strcmp(format, "table") == 0) {
    buf_printf(&b, ROW_TABLE_HEAD, "batch", "seq", "out", "hardware", "tp",
               "pp", "w", "kv", "attn", "engine", "ttft_ms", "tpot_ms",
               "tpot_mean",
               "e2e_ms", "tok/s", "tok/s/gpu", "mem_GiB", "fits");
  }
  return buf_steal(&b);
}

char *lmp_result_summary_row(const lmp_result *r, const char *format) {
  Buf b;
  buf_init(&b);
  RowNum c[16], s[16];
  int nc = row_config(r, c), ns = row_summary(r, s);
  if (format && strcmp(format, "json") == 0) {
    row_json_config(&b, r);
    row_json_pairs(&b, s, ns, false);
    buf_puts(&b, "}\n");
  } else if (format && strcmp(format, "csv") == 0) {
    const PredictOpts *po = &r->pred.opts;
    buf_printf(&b, "%s,%s,%s,%s,%s", r->model->model->id, po->hardware,
               attn_name[po->attn], po->roofline ? "" : po->engine,
               po->roofline ? "true" : "false");
    for (int i = 0; i < nc + ns; i++) {
      const RowNum *x = i < nc ? &c[i] : &s[i - nc];
      char num[64] = "";
      if (x->flag)
        snprintf(num, sizeof(num), "%s", x->v != 0 ? "true" : "false");
      else if (isfinite(x->v))
        report_number(x->v, num, sizeof(num));
      buf_putc(&b, ',');
      buf_puts(&b, num);
    }
    buf_puts(&b, ",\n");
  } else {
    const PredictOpts *o = &r->pred.opts;
    const Summary *m = &r->pred.summary;
    char tm[32] = "", e2e[32] = "";
    if (m->output_len > 0) { /* the -O columns */
      snprintf(tm, sizeof(tm), "%.4g", m->tpot_mean * 1e3);
      snprintf(e2e, sizeof(e2e), "%.4g", m->e2e * 1e3);
    }
    buf_printf(&b,
               "%6g %7g %6g %-14s %3d %3d %2d %2d %-5s %-8s %10.4g %10.4g "
               "%10s %10s %11.5g %11.5g %10.2f %4s\n",
               o->batch, o->seq_len, o->output_len, o->hardware, o->tp, o->pp,
               o->w_bits, o->kv_bits, attn_name[o->attn],
               o->roofline ? "roofline" : o->engine, m->ttft * 1e3,
               m->tpot * 1e3, tm, e2e, m->throughput, m->throughput_per_gpu,
               m->mem.total / 1073741824.0, m->mem.fits ? "yes" : "no");
  }
  return buf_steal(&b);
}

/* --------------------------------------------------------------- sweeps */

/* One item of a value list: a value, or a range lo..hi stepping +1 or xk. */
typedef struct SweepItem {
  char *value;        /* a single value; NULL for a range */
  double num;         /* a single value's number (numeric options) */
  double lo, hi, mul; /* range: mul 0 = every integer */
} SweepItem;

typedef struct SweepDim {
  const OptSpec *spec;
  SweepItem *items;
  int nitems;
  double count;
  int item;   /* iterator: current item */
  double cur; /* current value of a range */
} SweepDim;

struct lmp_sweep {
  lmp_data *data;
  const lmp_model *model;
  lmp_options *opts;
  SweepDim *dims;
  int ndims;
  bool started, done;
  lmp_result *res;
  Error e; /* cleared once set */
};

/* Options whose values are whole numbers (counts, integers, widths). */
static bool numeric(const OptSpec *sp) {
  return sp->kind == K_COUNT || sp->kind == K_INT || sp->kind == K_BITS;
}

static const OptSpec *find_spec(const char *name) {
  for (size_t i = 0; i < LM_ARRAY_LEN(specs); i++)
    if (same_name(name, specs[i].name))
      return &specs[i];
  return NULL;
}

lmp_sweep *lmp_sweep_new(lmp_data *d, const lmp_model *m,
                         const lmp_options *base) {
  lmp_sweep *s = xcalloc(1, sizeof(*s));
  err_clear(&s->e);
  s->data = d;
  s->model = m;
  s->opts = lmp_options_new();
  s->opts->p = base->p;
  free(s->opts->hardware);
  s->opts->hardware = xstrdup(base->p.hardware);
  s->opts->p.hardware = s->opts->hardware;
  free(s->opts->engine); /* owned by base: copied too (base may go) */
  s->opts->engine = xstrdup(base->p.engine);
  s->opts->p.engine = s->opts->engine;
  return s;
}

static double item_count(const SweepItem *it) {
  if (it->value)
    return 1;
  if (it->mul == 0)
    return it->hi - it->lo + 1;
  double n = 0;
  for (double v = it->lo; v <= it->hi; v *= it->mul)
    n++;
  return n;
}

/* A whole number for a range bound. */
static int range_num(const char *opt, const char *s, size_t len, double *out,
                     lmp_error *err) {
  char buf[64];
  if (len == 0 || len >= sizeof(buf) || strspn(s, "0123456789") < len) {
    opt_error(err, "%s: '%.*s' is not a whole number in a range", opt,
              (int)len, s);
    return -1;
  }
  memcpy(buf, s, len);
  buf[len] = 0;
  *out = strtod(buf, NULL);
  return 0;
}

int lmp_sweep_values(lmp_sweep *s, const char *name, const char *values,
                     lmp_error *err) {
  const OptSpec *sp = find_spec(name);
  if (!sp) {
    opt_error(err, "unknown option '%s'", name);
    return -1;
  }
  if (!values || !*values) {
    opt_error(err, "%s needs a value", sp->flag);
    return -1;
  }
  if (sp->off == offsetof(PredictOpts, phase) ||
      sp->off == offsetof(PredictOpts, format) ||
      sp->off == offsetof(PredictOpts, max_batch)) {
    opt_error(err, "%s is not swept: it says what a row shows", sp->flag);
    return -1;
  }
  SweepDim dim = {.spec = sp};
  lmp_options *probe = lmp_options_new();
  const char *p = values;
  int rc = -1;
  for (;;) {
    size_t len = strcspn(p, ",");
    const char *dots = memchr(p, '.', len);
    SweepItem it = {0};
    if (dots && dots + 1 < p + len && dots[1] == '.') {
      if (sp->kind != K_COUNT && sp->kind != K_INT && sp->kind != K_BITS) {
        opt_error(err, "%s takes a list of values, not a range ('%.*s')",
                  sp->flag, (int)len, p);
        goto out;
      }
      const char *hi = dots + 2, *end = p + len;
      const char *x = memchr(hi, 'x', (size_t)(end - hi));
      if (range_num(sp->flag, p, (size_t)(dots - p), &it.lo, err) < 0 ||
          range_num(sp->flag, hi, (size_t)((x ? x : end) - hi), &it.hi,
                    err) < 0 ||
          (x && range_num(sp->flag, x + 1, (size_t)(end - x - 1), &it.mul,
                          err) < 0))
        goto out;
      if (it.lo > it.hi || (x && it.mul < 2)) {
        opt_error(err, "%s: range '%.*s' is empty or its factor is below 2",
                  sp->flag, (int)len, p);
        goto out;
      }
      /* check every value of the range (they are whole numbers) */
      char num[32];
      for (double v = it.lo; v <= it.hi; v = it.mul ? v * it.mul : v + 1) {
        snprintf(num, sizeof(num), "%.0f", v);
        if (lmp_options_set(probe, sp->name, num, err) < 0)
          goto out;
        if (sp->kind != K_BITS && v > it.lo && it.mul == 0) {
          /* counts: the bounds decide; skip to the end */
          snprintf(num, sizeof(num), "%.0f", it.hi);
          if (lmp_options_set(probe, sp->name, num, err) < 0)
            goto out;
          break;
        }
      }
    } else {
      it.value = xstrndup(p, len);
      if (lmp_options_set(probe, sp->name, it.value, err) < 0) {
        free(it.value);
        goto out;
      }
      if (numeric(sp)) /* checked: digits only */
        it.num = strtod(it.value, NULL);
    }
    dim.items = xrealloc(dim.items, sizeof(SweepItem) * (size_t)(dim.nitems + 1));
    dim.items[dim.nitems++] = it;
    dim.count += item_count(&it);
    if (!p[len])
      break;
    p += len + 1;
  }
  s->dims = xrealloc(s->dims, sizeof(SweepDim) * (size_t)(s->ndims + 1));
  s->dims[s->ndims++] = dim;
  dim.items = NULL;
  rc = 0;
out:
  if (rc < 0 && err) /* where in the list: the bad item's 1-based offset */
    err->column = (int)(p - values) + 1;
  for (int i = 0; dim.items && i < dim.nitems; i++)
    free(dim.items[i].value);
  free(dim.items);
  lmp_options_free(probe);
  return rc;
}

double lmp_sweep_size(const lmp_sweep *s) {
  double n = 1;
  for (int i = 0; i < s->ndims; i++)
    n *= s->dims[i].count;
  return n;
}

/* Set the dimension's current value into the options (checked before):
 * a number straight into its field, as lmp_options_set puts it there. */
static void dim_apply(lmp_sweep *s, SweepDim *d) {
  const SweepItem *it = &d->items[d->item];
  const OptSpec *sp = d->spec;
  if (!numeric(sp)) {
    lmp_options_set(s->opts, sp->name, it->value, NULL);
    return;
  }
  double v = it->value ? it->num : d->cur;
  char *field = (char *)&s->opts->p + sp->off;
  if (sp->kind == K_COUNT) {
    memcpy(field, &v, sizeof(v));
  } else {
    int iv = (int)v;
    memcpy(field, &iv, sizeof(iv));
    if (sp->kind == K_BITS && field == (char *)&s->opts->p.w_bits)
      s->opts->p.w_given = true; /* as lmp_options_set */
  }
}

static void dim_first(SweepDim *d) {
  d->item = 0;
  d->cur = d->items[0].lo;
}

/* Step a dimension; false when it wrapped around. */
static bool dim_step(SweepDim *d) {
  const SweepItem *it = &d->items[d->item];
  if (!it->value) {
    double nx = it->mul ? d->cur * it->mul : d->cur + 1;
    if (nx <= it->hi) {
      d->cur = nx;
      return true;
    }
  }
  if (++d->item < d->nitems) {
    d->cur = d->items[d->item].lo;
    return true;
  }
  dim_first(d);
  return false;
}

int lmp_sweep_next(lmp_sweep *s, const lmp_result **r, lmp_error *err) {
  if (s->done)
    return 0;
  if (!s->started) {
    s->started = true;
    for (int i = 0; i < s->ndims; i++) {
      dim_first(&s->dims[i]);
      dim_apply(s, &s->dims[i]);
    }
  } else {
    int i = s->ndims - 1; /* the last option varies fastest */
    while (i >= 0 && !dim_step(&s->dims[i])) {
      dim_apply(s, &s->dims[i]);
      i--;
    }
    if (i < 0) {
      s->done = true;
      return 0;
    }
    dim_apply(s, &s->dims[i]);
  }
  if (!s->res) {
    s->res = xcalloc(1, sizeof(*s->res));
    s->res->model = s->model;
  }
  if (s->e.set)
    err_clear(&s->e);
  if (predict_into(s->data, s->model, s->opts, s->res, err, &s->e) < 0)
    return -1;
  *r = s->res;
  return 1;
}

const lmp_options *lmp_sweep_options(const lmp_sweep *s) { return s->opts; }

char *lmp_sweep_error_row(const lmp_sweep *s, const char *format,
                          const lmp_error *err) {
  Buf b;
  buf_init(&b);
  const PredictOpts *o = &s->opts->p;
  const char *id = s->model->model->id;
  const char *msg = err ? err->message : "";
  if (format && strcmp(format, "json") == 0) {
    opts_json_config(&b, id, o);
    buf_puts(&b, ", \"error\": ");
    report_json_string(&b, msg);
    buf_puts(&b, "}\n");
  } else if (format && strcmp(format, "csv") == 0) {
    RowNum c[16], sm[16];
    int nc = opts_config(o, c);
    lmp_result probe = {0};
    int ns = row_summary(&probe, sm);
    buf_printf(&b, "%s,%s,%s,%s,%s", id, o->hardware, attn_name[o->attn],
               o->roofline ? "" : o->engine, o->roofline ? "true" : "false");
    for (int i = 0; i < nc; i++) {
      char num[64];
      report_number(c[i].v, num, sizeof(num));
      buf_printf(&b, ",%s", num);
    }
    for (int i = 0; i < ns; i++)
      buf_putc(&b, ',');
    buf_putc(&b, ',');
    bool q = strpbrk(msg, ",\"\n\r") != NULL;
    if (q)
      buf_putc(&b, '"');
    for (const char *p = msg; *p; p++) {
      if (*p == '"')
        buf_putc(&b, '"');
      buf_putc(&b, *p);
    }
    if (q)
      buf_putc(&b, '"');
    buf_putc(&b, '\n');
  } else {
    buf_printf(&b, "%6g %7g %6g %-14s %3d %3d %2d %2d %-5s %-8s error: %s\n",
               o->batch, o->seq_len, o->output_len, o->hardware, o->tp, o->pp,
               o->w_bits, o->kv_bits, attn_name[o->attn],
               o->roofline ? "roofline" : o->engine, msg);
  }
  return buf_steal(&b);
}

void lmp_sweep_free(lmp_sweep *s) {
  if (!s)
    return;
  for (int i = 0; i < s->ndims; i++) {
    for (int k = 0; k < s->dims[i].nitems; k++)
      free(s->dims[i].items[k].value);
    free(s->dims[i].items);
  }
  free(s->dims);
  lmp_result_free(s->res);
  lmp_options_free(s->opts);
  free(s);
}

/* ------------------------------------------------------------------ SLO */

enum { SLO_BEST, SLO_MET, SLO_FIT, SLO_TTFT, SLO_TPOT, SLO_E2E, SLO_ERR,
       SLO_N };
static const char *const slo_reason[SLO_N] = {
    NULL, NULL, "does_not_fit", "ttft", "tpot", "e2e", "invalid"};

struct lmp_slo {
  char *spec;
  double ttft, tpot, e2e; /* seconds; 0 = no target */
  bool per_gpu;
  double count[SLO_N], total;
  double best_value;
  /* the best so far: its options and summary (strings copied), written
   * out by lmp_slo_result; the best changes often in a sweep */
  bool has_best;
  lmp_result best;
  char *best_engine;
  char *first_error;
};

/* "200ms" -> 0.2. */
static int slo_time(const char *s, size_t len, double *out) {
  char buf[64];
  if (len == 0 || len >= sizeof(buf))
    return -1;
  memcpy(buf, s, len);
  buf[len] = 0;
  char *end;
  errno = 0;
  double v = strtod(buf, &end);
  double scale = strcmp(end, "s") == 0    ? 1
                 : strcmp(end, "ms") == 0 ? 1e-3
                 : strcmp(end, "us") == 0 ? 1e-6
                                          : 0;
  if (end == buf || scale == 0 || !(v > 0) || !isfinite(v) || errno)
    return -1;
  *out = v * scale;
  return 0;
}

lmp_slo *lmp_slo_new(const char *targets, const char *maximize,
                     lmp_error *err) {
  lmp_slo *s = xcalloc(1, sizeof(*s));
  s->spec = xstrdup(targets ? targets : "");
  if (!maximize || strcmp(maximize, "throughput") == 0)
    s->per_gpu = false;
  else if (strcmp(maximize, "throughput-per-gpu") == 0)
    s->per_gpu = true;
  else {
    opt_error(err, "--maximize is throughput or throughput-per-gpu, not '%s'",
              maximize);
    lmp_slo_free(s);
    return NULL;
  }
  for (const char *p = s->spec; *p;) {
    size_t len = strcspn(p, ",");
    const char *eq = memchr(p, '=', len);
    double *dst = NULL;
    if (eq && (size_t)(eq - p) == 4 && strncmp(p, "ttft", 4) == 0)
      dst = &s->ttft;
    else if (eq && (size_t)(eq - p) == 4 && strncmp(p, "tpot", 4) == 0)
      dst = &s->tpot;
    else if (eq && (size_t)(eq - p) == 3 && strncmp(p, "e2e", 3) == 0)
      dst = &s->e2e;
    if (!dst || slo_time(eq + 1, (size_t)(p + len - eq - 1), dst) < 0) {
      opt_error(err, "--slo: '%.*s' is not a target (ttft=200ms, tpot=30ms "
                     "or e2e=10s; units s, ms, us; several separated by ',')",
                (int)len, p);
      lmp_slo_free(s);
      return NULL;
    }
    p += len;
    if (*p)
      p++;
  }
  s->best_value = -1;
  return s;
}

int lmp_slo_offer(lmp_slo *s, const lmp_result *r) {
  const Summary *m = &r->pred.summary;
  bool out = m->output_len > 0;
  double tpot = out ? m->tpot_mean : m->tpot;
  int v;
  if (!m->mem.fits)
    v = SLO_FIT;
  else if (s->ttft > 0 && !(m->ttft <= s->ttft))
    v = SLO_TTFT;
  else if (s->tpot > 0 && !(tpot <= s->tpot) && !(out && m->output_len == 1))
    v = SLO_TPOT;
  else if (s->e2e > 0 && !(out ? m->e2e <= s->e2e : m->ttft <= s->e2e))
    v = SLO_E2E;
  else {
    double x = s->per_gpu ? m->throughput_per_gpu : m->throughput;
    if (x > s->best_value) {
      s->best_value = x;
      lmp_result *b = &s->best;
      const PredictOpts *po = &r->pred.opts;
      b->model = r->model;
      b->pred.opts = *po;
      b->pred.summary = r->pred.summary;
      if (!b->hardware || strcmp(b->hardware, po->hardware) != 0) {
        free(b->hardware);
        b->hardware = xstrdup(po->hardware);
      }
      if (po->engine && (!s->best_engine ||
                         strcmp(s->best_engine, po->engine) != 0)) {
        free(s->best_engine);
        s->best_engine = xstrdup(po->engine);
      }
      b->pred.opts.hardware = b->hardware;
      b->pred.opts.engine = s->best_engine;
      s->has_best = true;
      v = SLO_BEST;
    } else {
      v = SLO_MET;
    }
  }
  s->count[v]++;
  s->total++;
  return v;
}

void lmp_slo_offer_error(lmp_slo *s, const lmp_error *err) {
  s->count[SLO_ERR]++;
  s->total++;
  if (!s->first_error && err)
    s->first_error = xstrdup(err->message);
}

char *lmp_slo_result(const lmp_slo *s, const char *format) {
  Buf b;
  buf_init(&b);
  double met = s->count[SLO_BEST] + s->count[SLO_MET];
  const char *what = s->per_gpu ? "throughput-per-gpu" : "throughput";
  if (format && strcmp(format, "json") == 0) {
    buf_puts(&b, "{\"slo\": {");
    const char *sep = "";
    char n[64];
    if (s->ttft > 0) {
      report_number(s->ttft, n, sizeof(n));
      buf_printf(&b, "\"ttft_s\": %s", n);
      sep = ", ";
    }
    if (s->tpot > 0) {
      report_number(s->tpot, n, sizeof(n));
      buf_printf(&b, "%s\"tpot_s\": %s", sep, n);
      sep = ", ";
    }
    if (s->e2e > 0) {
      report_number(s->e2e, n, sizeof(n));
      buf_printf(&b, "%s\"e2e_latency_s\": %s", sep, n);
    }
    buf_printf(&b, "}, \"maximize\": \"%s\", \"configurations\": %.0f, "
                   "\"met\": %.0f, \"lost\": {",
               what, s->total, met);
    for (int k = SLO_FIT; k < SLO_N; k++)
      buf_printf(&b, "%s\"%s\": %.0f", k == SLO_FIT ? "" : ", ",
                 slo_reason[k], s->count[k]);
    buf_puts(&b, "},\n \"best\": ");
    if (s->has_best) {
      row_json_config(&b, &s->best);
      RowNum t[16];
      buf_puts(&b, ", \"summary\": {");
      row_json_pairs(&b, t, row_summary(&s->best, t), true);
      buf_puts(&b, "}}");
    } else {
      buf_puts(&b, "null");
    }
    buf_puts(&b, "}\n");
  } else {
    buf_printf(&b, "%.0f configurations; %.0f fit and meet the SLO (%s); "
                   "lost: %.0f do not fit, %.0f miss TTFT, %.0f miss TPOT, "
                   "%.0f miss e2e, %.0f invalid\n",
               s->total, met, s->spec, s->count[SLO_FIT], s->count[SLO_TTFT],
               s->count[SLO_TPOT], s->count[SLO_E2E], s->count[SLO_ERR]);
    if (s->first_error)
      buf_printf(&b, "first invalid configuration: %s\n", s->first_error);
    if (s->has_best) {
      buf_printf(&b, "best by %s:\n", what);
      char *h = lmp_row_header("table");
      buf_puts(&b, h);
      free(h);
      char *row = lmp_result_summary_row(&s->best, "table");
      buf_puts(&b, row);
      free(row);
    } else {
      buf_puts(&b, "no configuration meets the SLO\n");
    }
  }
  return buf_steal(&b);
}

void lmp_slo_free(lmp_slo *s) {
  if (!s)
    return;
  free(s->spec);
  free(s->best.hardware);
  free(s->best_engine);
  free(s->first_error);
  free(s);
}

/* ---------------------------------------------------- a sweep's page */

struct lmp_sweep_page {
  char *model;
  const OptSpec *x;     /* the swept variable; NULL: the configuration's
                           number */
  const OptSpec **other; /* the other swept options: the series */
  int nother;
  SweepPoint *pts;
  char **series;
  int n, cap;
  int best;             /* the last point the SLO kept as best, or -1 */
  bool any_slo;
  PredictOpts first;    /* the first configuration's options */
  bool have_first;
};

/* An option's value in o, as text. */
static void spec_text(const OptSpec *sp, const PredictOpts *o, char *out,
                      size_t n) {
  const char *f = (const char *)o + sp->off;
  switch (sp->kind) {
  case K_COUNT:
  case K_FRACTION: {
    double v;
    memcpy(&v, f, sizeof(v));
    snprintf(out, n, "%g", v);
    return;
  }
  case K_BITS:
  case K_INT:
  case K_PICK: {
    int v;
    memcpy(&v, f, sizeof(v));
    if (sp->kind == K_PICK && sp->names && v >= 0 && v < sp->nnames &&
        sp->names[v])
      snprintf(out, n, "%s", sp->names[v]);
    else
      snprintf(out, n, "%d", v);
    return;
  }
  case K_BOOL:
    snprintf(out, n, "%s", *(const bool *)f ? "yes" : "no");
    return;
  case K_STRING:
  case K_ENGINE: {
    const char *s;
    memcpy(&s, f, sizeof(s));
    snprintf(out, n, "%s", s ? s : "");
    return;
  }
  }
}

static double spec_number(const OptSpec *sp, const PredictOpts *o) {
  const char *f = (const char *)o + sp->off;
  if (sp->kind == K_COUNT || sp->kind == K_FRACTION) {
    double v;
    memcpy(&v, f, sizeof(v));
    return v;
  }
  int v;
  memcpy(&v, f, sizeof(v));
  return v;
}

lmp_sweep_page *lmp_sweep_page_new(const lmp_sweep *s) {
  lmp_sweep_page *pg = xcalloc(1, sizeof(*pg));
  pg->model = xstrdup(s->model->model->id);
  pg->other = xcalloc((size_t)s->ndims + 1, sizeof(*pg->other));
  pg->best = -1;
  for (int i = 0; i < s->ndims; i++) {
    const OptSpec *sp = s->dims[i].spec;
    bool numeric =
        sp->kind == K_COUNT || sp->kind == K_BITS || sp->kind == K_INT;
    if (!pg->x && numeric)
      pg->x = sp;
    else
      pg->other[pg->nother++] = sp;
  }
  return pg;
}

void lmp_sweep_page_add(lmp_sweep_page *pg, const lmp_result *r, int slo) {
  if (pg->n == pg->cap) {
    pg->cap = pg->cap ? 2 * pg->cap : 64;
    pg->pts = xrealloc(pg->pts, sizeof(*pg->pts) * (size_t)pg->cap);
    pg->series = xrealloc(pg->series, sizeof(char *) * (size_t)pg->cap);
  }
  const PredictOpts *o = &r->pred.opts;
  const Summary *m = &r->pred.summary;
  if (!pg->have_first) {
    pg->first = *o;
    pg->first.hardware = NULL; /* borrowed from the result */
    pg->first.engine = NULL;
    pg->have_first = true;
  }
  Buf b;
  buf_init(&b);
  for (int i = 0; i < pg->nother; i++) {
    char v[128];
    spec_text(pg->other[i], o, v, sizeof(v));
    if (pg->other[i]->kind == K_STRING || pg->other[i]->kind == K_ENGINE)
      buf_printf(&b, "%s%s", i ? ", " : "", v);
    else
      buf_printf(&b, "%s%s %s", i ? ", " : "", pg->other[i]->flag, v);
  }
  if (!pg->nother)
    buf_puts(&b, o->hardware);
  pg->series[pg->n] = buf_steal(&b);
  if (slo == 0)
    pg->best = pg->n;
  pg->any_slo = pg->any_slo || slo >= 0;
  pg->pts[pg->n] = (SweepPoint){
      .series = pg->series[pg->n],
      .x = pg->x ? spec_number(pg->x, o) : pg->n + 1,
      .ttft = m->ttft,
      .tpot = m->output_len > 1 ? m->tpot_mean : m->tpot,
      .throughput = m->throughput,
      .fits = m->mem.fits,
      .slo = slo < 0 ? -1 : slo <= 1 ? 0 : 1};
  pg->n++;
}

char *lmp_sweep_page_html(lmp_sweep_page *pg, const lmp_slo *slo) {
  for (int i = 0; i < pg->n; i++)
    pg->pts[i].best = i == pg->best;
  char xname[64];
  if (pg->x)
    snprintf(xname, sizeof(xname), "%s (%s)", pg->x->name, pg->x->flag);
  else
    snprintf(xname, sizeof(xname), "configuration");
  Buf set;
  buf_init(&set);
  const PredictOpts *f = &pg->first;
  buf_printf(&set, "fixed: batch %g, sequence %g", f->batch, f->seq_len);
  if (f->output_len > 0)
    buf_printf(&set, ", %g tokens out", f->output_len);
  buf_printf(&set, ", weights %d-bit, activations %d-bit, KV %d-bit%s",
             f->w_bits, f->a_bits, f->kv_bits,
             f->roofline ? ", roofline bound" : "");
  buf_puts(&set, " (the swept options vary)");
  char *outcome = slo ? lmp_slo_result(slo, "table") : NULL;
  SweepPage page = {.model = pg->model,
                    .settings = buf_str(&set),
                    .xname = xname,
                    .pts = pg->pts,
                    .n = pg->n,
                    .slo = slo ? slo->spec : NULL,
                    .slo_ttft = slo ? slo->ttft : 0,
                    .slo_tpot = slo ? slo->tpot : 0,
                    .outcome = outcome};
  Buf b;
  buf_init(&b);
  render_sweep_html(&page, &b);
  free(outcome);
  buf_free(&set);
  return buf_steal(&b);
}

void lmp_sweep_page_free(lmp_sweep_page *pg) {
  if (!pg)
    return;
  for (int i = 0; i < pg->n; i++)
    free(pg->series[i]);
  free(pg->series);
  free(pg->pts);
  free(pg->other);
  free(pg->model);
  free(pg);
}
