/* predict.c: one whole prediction, from a plan, a GPU and options.
 *
 * The pipeline every command and the library share: the plan (built once
 * per model and attention implementation) is evaluated twice, prefill
 * (T = S tokens per sequence, KV length L = S) and one decode step (T = 1
 * new token attending over L = S); every row gets its roofline time and
 * bound at the peak its precisions allow; the phase totals give TTFT and
 * TPOT; the footprint is measured from the same two evaluations, and the
 * largest batch that fits is found by bisection (opts.max_batch).
 *
 * A Prediction keeps its buffers: predicting again into the same struct
 * allocates nothing unless the plan changed, so a sweep costs only the
 * evaluations (make bench: "one predict").
 */
#include "calib.h"

#include <string.h>

const char *const attn_name[ATTN_COUNT] = {LM_ATTNS(LM_X_NAME)};
const char *const format8_name[FMT8_COUNT] = {LM_FORMATS8(LM_X_NAME)};
const char *const format_name[FMT_COUNT] = {LM_FORMATS(LM_X_NAME)};
const char *const phase_name[PHASE_COUNT] = {LM_PHASES(LM_X_NAME)};

void predict_defaults(PredictOpts *o) {
  *o = (PredictOpts){.batch = 1, .seq_len = 2048, .w_bits = 16,
                     .a_bits = 16, .kv_bits = 16, .e_bits = 16,
                     .fmt8 = FMT8_AUTO, .attn = ATTN_EAGER,
                     .hardware = "h100-sxm", .phase = PHASE_ALL,
                     .format = FMT_TABLE, .max_batch = true,
                     .engine = "vllm"};
}

const Gpu *predict_gpu(const GpuDb *db, const char *file, const char *id,
                       Error *err) {
  const Gpu *g = gpudb_find(db, id);
  if (g)
    return g;
  Buf b;
  buf_init(&b);
  for (int i = 0; i < db->n; i++)
    buf_printf(&b, "%s%s", i ? ", " : "", db->gpus[i].id);
  err_file(err, file ? path_display(file) : NULL, "no GPU '%s' (known: %s)",
           id, buf_str(&b));
  buf_free(&b);
  return NULL;
}

/* Size the buffers for plan (once per plan; the search's on first use). */
static void reserve(Prediction *p, const Plan *plan, bool search) {
  if (p->bufplan != plan) {
    prediction_free(p);
    for (int i = 0; i < 2; i++)
      p->vals[i] = values_new(plan);
    p->bufplan = plan;
  }
  for (int i = 0; i < 2 && search; i++)
    if (!p->scratch[i])
      p->scratch[i] = values_new(plan);
}

int predict(const Plan *plan, const Gpu *gpu, const PredictOpts *o,
            Prediction *p, Error *err) {
  reserve(p, plan, o->max_batch);
  p->opts = *o;
  p->plan = plan;
  p->gpu = gpu;
  double *pre = p->run[0], *dec = p->run[1];
  memset(pre, 0, sizeof(p->run[0]));
  pre[V_B] = o->batch;
  pre[V_S] = pre[V_T] = pre[V_L] = o->seq_len;
  pre[V_W_BYTES] = o->w_bits / 8.0;
  pre[V_A_BYTES] = o->a_bits / 8.0;
  pre[V_KV_BYTES] = o->kv_bits / 8.0;
  pre[V_SRAM_BYTES] = gpu->smem_per_sm;
  pre[V_E_BYTES] = o->e_bits / 8.0;
  memcpy(dec, pre, sizeof(p->run[1]));
  dec[V_T] = 1;

  if (plan_eval(plan, pre, p->vals[0], err) < 0 ||
      plan_eval(plan, dec, p->vals[1], err) < 0)
    return -1;
  if (roof_peaks(gpu, o->w_bits, o->a_bits, o->kv_bits, o->fmt8, &p->peaks,
                 err) < 0)
    return -1;
  for (int i = 0; i < 2; i++) {
    PhaseResult *ph = &p->phase[i];
    ph->name = phase_name[i]; /* PHASE_PREFILL, PHASE_DECODE */
    ph->tokens = p->run[i][V_T];
    ph->kv_len = p->run[i][V_L];
    ph->plan = plan;
    ph->vals = p->vals[i];
    phase_roofline(ph, &p->peaks, gpu->bandwidth);
  }
  Summary *s = &p->summary;
  s->ttft = s->ttft_roofline = p->phase[0].total_time;
  s->tpot = s->tpot_roofline = p->phase[1].total_time;
  if (o->calib && o->engine_data && !o->roofline) {
    /* the engine's kernels over the plan: built once per plan and engine */
    if (!p->cplan || p->cplan->plan != plan || p->cplan_engine != o->engine_data) {
      calib_plan_free(p->cplan);
      p->cplan = calib_plan(plan, o->engine_data);
      p->cplan_engine = o->engine_data;
      for (int i = 0; i < 2; i++) {
        free(p->phase[i].pred);
        p->phase[i].pred = NULL;
      }
    }
    for (int i = 0; i < 2; i++) {
      PhaseResult *ph = &p->phase[i];
      if (!ph->pred)
        ph->pred = xcalloc((size_t)plan->nrows + 1, sizeof(double));
      ph->kernel = p->cplan->kernel;
      ph->pred_total = calib_predict(p->cplan, o->calib, o->engine_data, gpu,
                                     &p->peaks, p->vals[i], p->run[i],
                                     ph->time, ph->pred);
    }
    s->ttft = p->phase[0].pred_total;
    s->tpot = p->phase[1].pred_total;
  } else {
    for (int i = 0; i < 2; i++) {
      free(p->phase[i].pred);
      p->phase[i].pred = NULL;
      p->phase[i].kernel = NULL;
    }
  }
  s->tokens_per_s = s->tpot > 0 ? o->batch / s->tpot : 0;
  roof_measure(plan, p->vals[0], p->vals[1], gpu->memory, &s->mem);
  p->nkinds = 0;
  if (plan->model->from_config) {
    /* the parameter count (once per plan) and the KV cache per layer
     * kind, from decode's values (L = S) */
    if (p->param_plan != plan) {
      if (!p->scratch[0])
        p->scratch[0] = values_new(plan);
      if (plan_parameters(plan, p->scratch[0], &p->parameters, err) < 0)
        return -1;
      p->param_plan = plan;
    }
    p->nkinds = plan_kv_by_kind(plan, p->vals[1], p->kv_kinds,
                                p->kv_kind_bytes, 8);
  }
  if (o->max_batch)
    roof_max_batch(plan, pre, dec, gpu->memory, p->scratch[0], p->scratch[1],
                   &s->mem);
  return 0;
}

Report prediction_report(const Prediction *p) {
  const PredictOpts *o = &p->opts;
  const Model *m = p->plan->model;
  return (Report){.model = m->id, .family = m->family, .note = m->note,
                  .parameters = m->from_config ? p->parameters : -1,
                  .kv_kinds = p->kv_kinds, .kv_kind_bytes = p->kv_kind_bytes,
                  .nkinds = p->nkinds, .batch = o->batch,
                  .seq_len = o->seq_len, .w_bits = o->w_bits,
                  .a_bits = o->a_bits, .kv_bits = o->kv_bits,
                  .attention = attn_name[p->plan->attn],
                  .phases = o->phase == PHASE_DECODE ? &p->phase[1]
                                                     : &p->phase[0],
                  .nphases = o->phase == PHASE_ALL ? 2 : 1, .gpu = p->gpu,
                  .peaks = p->peaks, .summary = &p->summary,
                  .engine = p->phase[0].pred ? o->engine_data : NULL,
                  .calib = p->phase[0].pred ? o->calib : NULL};
}

void prediction_warnings(const Prediction *p, Buf *out) {
  const Model *m = p->plan->model;
  const Calib *c = p->opts.calib;
  if (c && c->fallback && p->phase[0].pred)
    buf_printf(out, "%s has no measured kernel times: its times use the %s "
                    "calibration (%s), scaled to its own peaks and "
                    "bandwidth; they are less certain\n",
               p->gpu->id, c->hw_id, c->note);
  double seq = p->opts.seq_len;
  if (m->warnings)
    buf_puts(out, m->warnings);
  if (m->from_config && m->ckpt_bytes > 0 && p->param_plan == p->plan) {
    /* the checkpoint stores every parameter at its torch_dtype */
    double want = m->ckpt_elem_bytes * p->parameters;
    double rel = (want - m->ckpt_bytes) / m->ckpt_bytes;
    if (rel > 0.01 || rel < -0.01)
      buf_printf(out,
                 "predicted weights (%.0f parameters x %g bytes = %.0f) "
                 "differ from the checkpoint's model.safetensors.index.json "
                 "total_size (%.0f) by %+.2f%%\n",
                 p->parameters, m->ckpt_elem_bytes, want, m->ckpt_bytes,
                 rel * 100);
  }
  for (int i = V_COUNT; i < m->nvars; i++)
    if (strcmp(m->var_names[i], "max_position_embeddings") == 0 &&
        seq > m->var_values[i])
      buf_printf(out, "-S %g exceeds the model's max_position_embeddings "
                      "(%g)\n",
                 seq, m->var_values[i]);
  if (m->tmpl_pending)
    buf_printf(out, "the template %s is 'pending': written by an LLM agent "
                    "(lmgen --arch), not reviewed yet\n",
               m->tmpl_pending);
  HashMap seen;
  hashmap_init(&seen);
  for (int r = 0; r < p->plan->nrows; r++) {
    const ModuleDef *md = p->plan->slots[p->plan->rows[r].slot].layer->mod->def;
    if (strcmp(md->status, "validated") != 0 &&
        hashmap_add(&seen, md->full_name, (void *)md) == 0)
      buf_printf(out, "%s is '%s' in the module database: its formulas have "
                      "not been reviewed\n",
                 md->full_name, md->status);
  }
  hashmap_free(&seen);
}

void prediction_free(Prediction *p) {
  calib_plan_free(p->cplan);
  p->cplan = NULL;
  p->cplan_engine = NULL;
  for (int i = 0; i < 2; i++) {
    free(p->phase[i].pred);
    p->phase[i].pred = NULL;
    p->phase[i].kernel = NULL;
    phase_free_times(&p->phase[i]);
    values_free(p->vals[i]);
    values_free(p->scratch[i]);
    p->vals[i] = p->scratch[i] = NULL;
  }
  p->bufplan = NULL;
  p->param_plan = NULL;
}
