/* plan.c: the walk over a Model, flattened into rows, and its evaluation.
 *
 * plan_build visits layers depth-first in file order. A basic layer is one
 * row. A composite layer contributes its atomic operations as rows, at the
 * places its sub_layers list gives them ({"op": "qk_matmul"}) or else after
 * its sub-layers, and, if it has its own traffic formulas, one row after
 * its sub-layers. Operations that do not run with the chosen attention
 * implementation are left out. Every row carries the instance count of its
 * layer (the product of the repeats above it), so nothing is walked or
 * counted twice.
 *
 * plan_eval is the hot path: per layer, evaluate the few parameters that
 * depend on run variables; per row, call the JIT-compiled metric
 * functions; check every value.
 */
#include "runtime.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

typedef struct Builder {
  Plan *p;
  int caprows, capslots;
  Error *err;
} Builder;

static bool has_traffic(const ModuleDef *md) {
  for (int k = 0; k < M_TRAFFIC; k++)
    if (md->formula[k])
      return true;
  return false;
}

static bool has_state(const ModuleDef *md) {
  for (int k = M_TRAFFIC; k < M_COUNT; k++)
    if (md->formula[k])
      return true;
  return false;
}

static bool op_runs(const AtomicOp *op, AttnImpl attn) {
  return op->mode == AM_ANY || (op->mode == AM_EAGER && attn == ATTN_EAGER) ||
         (op->mode == AM_FLASH && attn == ATTN_FLASH);
}

static int add_slot(Builder *b, const Layer *ly) {
  Plan *p = b->p;
  if (p->nslots == b->capslots) {
    b->capslots = b->capslots ? b->capslots * 2 : 16;
    p->slots = xrealloc(p->slots, sizeof(Slot) * (size_t)b->capslots);
  }
  Slot *s = &p->slots[p->nslots];
  memset(s, 0, sizeof(*s));
  s->layer = ly;
  const ModuleDef *md = ly->mod->def;
  s->nargs = md->nparams;
  s->argbase = p->nargs;
  p->nargs += s->nargs;
  s->init = arena_alloc(&p->arena, sizeof(double) * (size_t)(s->nargs + 1));
  s->dyn = arena_alloc(&p->arena, sizeof(int) * (size_t)(s->nargs + 1));
  for (int i = 0; i < s->nargs; i++) {
    double v;
    if (prog_const(&ly->args[i], &v))
      s->init[i] = v;
    else
      s->dyn[s->ndyn++] = i;
  }
  for (int k = M_TRAFFIC; k < M_COUNT; k++)
    s->state[k - M_TRAFFIC] = md->formula[k] ? ly->mod->fn[k] : NULL;
  if (ly->tied) /* its weights are another layer's: held once */
    s->state[M_PARAM_BYTES - M_TRAFFIC] = NULL;
  return p->nslots++;
}

static void add_row(Builder *b, const Layer *ly, int slot, const char *path,
                    const char *op, lm_metric_fn const *fns,
                    const char *const *present) {
  Plan *p = b->p;
  if (p->nrows == b->caprows) {
    b->caprows = b->caprows ? b->caprows * 2 : 32;
    p->rows = xrealloc(p->rows, sizeof(Row) * (size_t)b->caprows);
  }
  Row *r = &p->rows[p->nrows++];
  memset(r, 0, sizeof(*r));
  r->path = path;
  r->op = op;
  r->module = ly->mod->def->full_name;
  r->count = ly->count;
  r->slot = slot;
  /* weights at the routed experts' width: the layer passes {x_bytes} */
  for (int i = 0; i < b->p->slots[slot].nargs && !r->xw; i++)
    r->xw = ly->arg_text[i] && strstr(ly->arg_text[i], "{x_bytes}");
  for (int k = 0; k < M_TRAFFIC; k++)
    r->fn[k] = present[k] ? fns[k] : NULL;
}

static const char *join(Plan *p, const char *a, const char *b) {
  if (!a[0])
    return arena_strdup(&p->arena, b);
  size_t n = strlen(a) + strlen(b) + 2;
  char *s = arena_alloc(&p->arena, n);
  snprintf(s, n, "%s.%s", a, b);
  return s;
}

static void add_op_row(Builder *b, const Layer *ly, int slot, int k) {
  const ModuleDef *md = ly->mod->def;
  const AtomicOp *op = &md->ops[k];
  if (!op_runs(op, b->p->attn))
    return;
  add_row(b, ly, slot, join(b->p, ly->path, op->name), op->name,
          ly->mod->opfn[k], op->formula);
  b->p->rows[b->p->nrows - 1].phase = op->phase;
}

static void walk(Builder *b, const Layer *ly) {
  const ModuleDef *md = ly->mod->def;
  int slot = -1;
  if (md->nops > 0 || has_traffic(md) || has_state(md))
    slot = add_slot(b, ly);
  const char *own_name = ly->name[0] ? ly->name : md->short_name;
  if (md->kind == MK_BASIC && has_traffic(md))
    add_row(b, ly, slot, ly->path[0] ? ly->path : own_name, own_name,
            ly->mod->fn, md->formula);
  bool *placed = xcalloc((size_t)md->nops + 1, sizeof(bool));
  for (int i = 0; i < ly->nitems; i++) {
    const Item *it = &ly->items[i];
    if (it->layer) {
      walk(b, it->layer);
    } else {
      placed[it->op] = true;
      if (!it->omit)
        add_op_row(b, ly, slot, it->op);
    }
  }
  for (int k = 0; k < md->nops; k++)
    if (!placed[k])
      add_op_row(b, ly, slot, k);
  free(placed);
  if (md->kind == MK_COMPOSITE && md->nops == 0 && has_traffic(md))
    add_row(b, ly, slot, ly->path[0] ? ly->path : own_name, own_name,
            ly->mod->fn, md->formula);
}

Plan *plan_build(const Model *m, AttnImpl attn, Error *err) {
  static _Atomic unsigned long serials;
  Plan *p = xcalloc(1, sizeof(Plan));
  p->serial = ++serials;
  arena_init(&p->arena);
  p->model = m;
  p->attn = attn;
  Builder b = {.p = p, .err = err};
  walk(&b, m->root);
  if (p->nrows == 0) {
    JsonPath jp;
    jp_init(&jp);
    jp_key(&jp, "layers");
    jdoc_error(err, &m->doc, &jp,
               "the model has no operations to count: no layer has "
               "formulas of its own or atomic operations");
    plan_free(p);
    return NULL;
  }
  p->kvrows = plan_kv_rows(p, &p->nkvrows);
  p->all_phases = true;
  for (int r = 0; r < p->nrows; r++)
    p->all_phases &= p->rows[r].phase == AP_ANY;
  return p; /* fused on demand: plan_fuse, or by use (fused_for) */
}

void plan_fuse(Plan *p) {
  if (!p->fuse_tried) {
    p->fuse_tried = true;
    p->fused = fused_build(p);
  }
}

/* The fused function, compiled once the plan has been evaluated
 * PLAN_FUSE_AFTER times (a cache inside the plan, hence the cast). */
static const Fused *fused_for(const Plan *cp) {
  Plan *p = (Plan *)cp;
  if (!p->fuse_tried && ++p->evals >= PLAN_FUSE_AFTER)
    plan_fuse(p);
  return p->fused;
}

void plan_free(Plan *p) {
  if (!p)
    return;
  fused_free(p->fused);
  free(p->kvrows);
  free(p->rows);
  free(p->slots);
  arena_free(&p->arena);
  free(p);
}

Values *values_new(const Plan *p) {
  Values *v = xcalloc(1, sizeof(Values));
  v->nrows = p->nrows;
  v->row = xcalloc((size_t)p->nrows + 1, sizeof(*v->row));
  v->off = xcalloc((size_t)p->nrows + 1, sizeof(bool));
  v->vars = xcalloc((size_t)p->model->nvars + 1, sizeof(double));
  memcpy(v->vars, p->model->var_values, sizeof(double) * (size_t)p->model->nvars);
  v->args = xcalloc((size_t)p->nargs + 1, sizeof(double));
  for (int i = 0; i < p->nslots; i++)
    memcpy(v->args + p->slots[i].argbase, p->slots[i].init,
           sizeof(double) * (size_t)p->slots[i].nargs);
  return v;
}

void values_free(Values *v) {
  if (!v)
    return;
  free(v->row);
  free(v->off);
  free(v->vars);
  free(v->args);
  free(v);
}

/* A value every metric and parameter must be: finite and not negative. */
static bool bad(double x) { return !(x >= 0 && x <= 1.79e308); }

/* What is wrong with a bad value, in words. */
static const char *why_bad(double x) {
  if (x != x)
    return "NaN (0/0, inf - inf or 0 * inf)";
  if (x > 0)
    return "inf (a division by zero, or settings too large)";
  return NULL; /* negative: the value itself says it */
}

/* An error about a layer, pointed at `what` ("parameters.N", "class") of
 * the layer's object in the model file. */
static int layer_error(const Plan *p, const Layer *ly, const char *k1,
                       const char *k2, Error *err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int layer_error(const Plan *p, const Layer *ly, const char *k1,
                       const char *k2, Error *err, const char *fmt, ...) {
  JsonPath jp = ly->jp;
  jp_key(&jp, k1);
  if (k2)
    jp_key(&jp, k2);
  va_list ap;
  va_start(ap, fmt);
  jdoc_verror(err, &p->model->doc, &jp, fmt, ap);
  va_end(ap);
  return -1;
}

static int bad_arg(const Plan *p, const Slot *s, int i, double x,
                   const char *rule, Error *err) {
  const ModuleDef *md = s->layer->mod->def;
  const char *path = s->layer->path[0] ? s->layer->path : "(root)";
  const char *why = why_bad(x);
  if (rule)
    return layer_error(p, s->layer, "parameters", md->params[i], err,
                       "layer '%s' (%s): parameter '%s' evaluates to %g for "
                       "these settings; it %s",
                       path, md->short_name, md->params[i], x, rule);
  if (why)
    return layer_error(p, s->layer, "parameters", md->params[i], err,
                       "layer '%s' (%s): parameter '%s' evaluates to %s for "
                       "these settings",
                       path, md->short_name, md->params[i], why);
  return layer_error(p, s->layer, "parameters", md->params[i], err,
                     "layer '%s' (%s): parameter '%s' evaluates to %g for "
                     "these settings; it must not be negative",
                     path, md->short_name, md->params[i], x);
}

static int bad_metric(const Plan *p, const Layer *ly, const char *what,
                      Metric k, double x, Error *err) {
  const char *why = why_bad(x);
  const ModuleDef *md = ly->mod->def;
  if (why)
    return layer_error(p, ly, "class", NULL, err,
                       "%s: %s evaluates to %s for these settings (check "
                       "the layer's parameters, or %s's formula)",
                       what, metric_name[k], why, md->full_name);
  return layer_error(p, ly, "class", NULL, err,
                     "%s: %s evaluates to %g for these settings (negative: "
                     "check %s's formula in the module database)",
                     what, metric_name[k], x, md->full_name);
}

/* Whether row r runs in the phase run describes (MLA's two paths, Mamba's
 * scan and recurrent step run in one phase only). */
static bool row_off(const Row *row, const double *run) {
  return row->phase != AP_ANY &&
         (row->phase == AP_DECODE) != (run[V_DECODE] != 0);
}

/* The fused code zeroes the rows of the other phase; mark them. */
static void mark_off(const Plan *p, const double *run, Values *out) {
  if (p->all_phases) /* off[] holds row_off's false already */
    return;
  for (int r = 0; r < p->nrows; r++)
    out->off[r] = row_off(&p->rows[r], run);
}

int plan_eval(const Plan *p, const double *run, Values *out, Error *err) {
  const Fused *f = fused_for(p);
  if (f && fused_eval(f, run, out) == 0) {
    mark_off(p, run, out);
    return 0;
  }
  return plan_eval_interp(p, run, out, err);
}

int plan_eval_interp(const Plan *p, const double *run, Values *out,
                     Error *err) {
  double *vars = out->vars;
  memcpy(vars, run, sizeof(double) * V_COUNT);
  for (int i = 0; i < p->nslots; i++) {
    const Slot *s = &p->slots[i];
    const ModuleDef *md = s->layer->mod->def;
    double *args = out->args + s->argbase;
    for (int d = 0; d < s->ndyn; d++) {
      int k = s->dyn[d];
      double x = prog_eval(&s->layer->args[k], vars);
      /* fast path: finite, in range, whole when it must be */
      if (!(x >= md->pmin[k] && x <= md->pmax[k] && x >= 0 &&
            x <= 1.79e308 && (!md->pint[k] || x == lm_floor(x))))
        return bad_arg(p, s, k, x,
                       bad(x) ? NULL : db_param_violation(md, k, x), err);
      args[k] = x;
    }
  }
  for (int r = 0; r < p->nrows; r++) {
    const Row *row = &p->rows[r];
    const double *args = out->args + p->slots[row->slot].argbase;
    double *v = out->row[r];
    out->off[r] = row_off(row, run);
    if (out->off[r]) {
      memset(v, 0, sizeof(double) * M_TRAFFIC);
      continue;
    }
    for (int k = 0; k < M_TRAFFIC; k++) {
      double x = row->fn[k] ? row->fn[k](args) : 0.0;
      if (bad(x))
        return bad_metric(p, p->slots[row->slot].layer, row->path, (Metric)k,
                          x, err);
      v[k] = x;
    }
  }
  for (int k = 0; k < M_COUNT - M_TRAFFIC; k++)
    out->state[k] = 0;
  for (int i = 0; i < p->nslots; i++) {
    const Slot *s = &p->slots[i];
    for (int k = 0; k < M_COUNT - M_TRAFFIC; k++) {
      if (!s->state[k])
        continue;
      double x = s->state[k](out->args + s->argbase);
      if (bad(x))
        return bad_metric(p, s->layer,
                          s->layer->path[0] ? s->layer->path : "(root)",
                          (Metric)(M_TRAFFIC + k), x, err);
      out->state[k] += s->layer->count * x;
    }
  }
  return 0;
}

static bool slot_reads_kv(const Slot *s) {
  for (int d = 0; d < s->ndyn; d++) {
    const Prog *pr = &s->layer->args[s->dyn[d]];
    if (prog_reads(pr, V_L) || prog_reads(pr, V_S))
      return true;
  }
  return false;
}

int *plan_kv_rows(const Plan *p, int *n) {
  int *rows = xcalloc((size_t)p->nrows + 1, sizeof(int));
  *n = 0;
  for (int r = 0; r < p->nrows; r++)
    if (slot_reads_kv(&p->slots[p->rows[r].slot]))
      rows[(*n)++] = r;
  return rows;
}

int plan_eval_rows(const Plan *p, const double *run, const int *rows, int n,
                   Values *out, Error *err) {
  double *vars = out->vars;
  memcpy(vars, run, sizeof(double) * V_COUNT);
  int last = -1;
  for (int i = 0; i < n; i++) {
    const Row *row = &p->rows[rows[i]];
    const Slot *s = &p->slots[row->slot];
    double *args = out->args + s->argbase;
    if (row->slot != last) { /* a slot's rows are adjacent in the walk */
      const ModuleDef *md = s->layer->mod->def;
      for (int d = 0; d < s->ndyn; d++) {
        int k = s->dyn[d];
        double x = prog_eval(&s->layer->args[k], vars);
        if (!(x >= md->pmin[k] && x <= md->pmax[k] && x >= 0 &&
              x <= 1.79e308 && (!md->pint[k] || x == lm_floor(x))))
          return bad_arg(p, s, k, x,
                         bad(x) ? NULL : db_param_violation(md, k, x), err);
        args[k] = x;
      }
      last = row->slot;
    }
    double *v = out->row[rows[i]];
    out->off[rows[i]] = row_off(row, run);
    if (out->off[rows[i]]) {
      memset(v, 0, sizeof(double) * M_TRAFFIC);
      continue;
    }
    for (int k = 0; k < M_TRAFFIC; k++) {
      double x = row->fn[k] ? row->fn[k](args) : 0.0;
      if (bad(x))
        return bad_metric(p, s->layer, row->path, (Metric)k, x, err);
      v[k] = x;
    }
  }
  return 0;
}

int plan_eval_kv(const Plan *p, const double *run, Values *out, Error *err) {
  const Fused *f = fused_for(p);
  if (f && fused_eval_kv(f, run, out) == 0) {
    mark_off(p, run, out);
    return 0;
  }
  return plan_eval_rows(p, run, p->kvrows, p->nkvrows, out, err);
}

int plan_eval_kv_state(const Plan *p, const double *run, Values *out,
                       Error *err) {
  if (p->fused && fused_eval_kv_state(p->fused, run, out) == 0) {
    mark_off(p, run, out);
    return 0;
  }
  return plan_eval(p, run, out, err);
}

/* Parameters as transformers allocates them. Every weight tensor's
 * param_bytes is its element count times a width variable (w_bytes for
 * the weights quantization applies to, e_bytes for those kept at 16 bits:
 * embeddings, lm_head, norms), while buffers such as the rotary
 * embedding's inv_freq have a fixed width. So the count is param_bytes at
 * widths 2 minus param_bytes at widths 1: buffers cancel, tied layers are
 * not counted (their state is dropped at plan_build). */
int plan_parameters(const Plan *p, Values *scratch, double *total,
                    double *active, Error *err) {
  double run[V_COUNT] = {[V_B] = 1, [V_S] = 1, [V_T] = 1, [V_L] = 1,
                         [V_A_BYTES] = 2, [V_KV_BYTES] = 2,
                         [V_SRAM_BYTES] = 65536, [V_EXPERT_BALANCE] = 1};
  double *outs[2] = {total, active};
  for (int a = 0; a < 2; a++) {
    double at[2];
    run[V_ACTIVE_ONLY] = a;
    for (int w = 1; w <= 2; w++) {
      run[V_W_BYTES] = run[V_E_BYTES] = run[V_X_BYTES] = w;
      if (plan_eval(p, run, scratch, err) < 0)
        return -1;
      at[w - 1] = scratch->state[M_PARAM_BYTES - M_TRAFFIC];
    }
    if (outs[a])
      *outs[a] = at[1] - at[0];
  }
  return 0;
}

/* KV cache bytes held per kind of layer ("" for layers without a kind),
 * summed over instances, from the state of values already evaluated. */
int plan_kv_by_kind(const Plan *p, const Values *v, const char **kinds,
                    double *bytes, int max) {
  int n = 0;
  lm_metric_fn fn;
  for (int i = 0; i < p->nslots; i++) {
    const Slot *s = &p->slots[i];
    if (!(fn = s->state[M_KV_CACHE_BYTES - M_TRAFFIC]))
      continue;
    const char *k = s->layer->kind ? s->layer->kind : "";
    int j = 0;
    while (j < n && strcmp(kinds[j], k) != 0)
      j++;
    if (j == n) {
      if (n == max)
        continue;
      kinds[n] = k;
      bytes[n++] = 0;
    }
    bytes[j] += s->layer->count * fn(v->args + s->argbase);
  }
  return n;
}
