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

#include <math.h>
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
                     .tp = 1, .pp = 1, .ep = 1, .microbatches = 1,
                     .engine = "vllm", .expert_balance = 1};
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

/* Size the buffers for plan (once per plan; the search's on first use).
 * A plan is known by its serial as well as its address: a plan built
 * after the last one was freed may get its address (and must not inherit
 * its buffers, their static arguments, or its decode to re-use). */
static void reserve(Prediction *p, const Plan *plan, bool search,
                    bool steps) {
  if (p->bufplan != plan || p->bufserial != plan->serial) {
    prediction_free(p); /* dec_valid false */
    for (int i = 0; i < 2; i++)
      p->vals[i] = values_new(plan);
    p->bufplan = plan;
    p->bufserial = plan->serial;
    p->kvmask = xcalloc((size_t)plan->nrows + 1, sizeof(bool));
    for (int i = 0; i < plan->nkvrows; i++)
      p->kvmask[plan->kvrows[i]] = true;
  }
  for (int i = 0; i < 2 && search; i++)
    if (!p->scratch[i])
      p->scratch[i] = values_new(plan);
  if (steps && !p->steps)
    p->steps = values_new(plan);
}

/* The calibrated time of every row of a phase (when the time model is
 * calibrated: p->cplan set for this plan and engine), after its
 * roofline. */
static void phase_calib(Prediction *p, PhaseResult *ph, const double *run,
                        const bool *only) {
  const PredictOpts *o = &p->opts;
  if (!(o->calib && o->engine_data && !o->roofline))
    return;
  if (!ph->pred)
    ph->pred = xcalloc((size_t)ph->plan->nrows + 1, sizeof(double));
  ph->kernel = p->cplan->kernel;
  ph->pred_total =
      calib_predict_rows(p->cplan, o->calib, o->engine_data, p->gpu, &p->peaks,
                         ph->vals, run, ph->time, ph->pred, only);
}

/* -O N: the N - 1 decode steps after the first token, at KV lengths
 * S+1 .. S+N-1, each priced as the decode phase is (same rows, same time
 * model), summed in order. Only the rows that depend on the KV length are
 * re-evaluated per step; the others are the decode phase's values. */
static int decode_steps(Prediction *p, Error *err) {
  const PredictOpts *o = &p->opts;
  Summary *s = &p->summary;
  double n = o->output_len;
  s->output_len = n;
  s->decode_sum = s->e2e = s->tpot_mean = 0;
  s->gpus = (double)o->pp * (o->tp > o->ep ? o->tp : o->ep);
  s->throughput = s->tokens_per_s;
  if (n > 0) {
    double sum = 0;
    if (n > 1) {
      const Plan *plan = p->plan;
      const Values *dec = p->vals[1];
      Values *v = p->steps;
      memcpy(v->row[0], dec->row[0],
             sizeof(double) * M_TRAFFIC * (size_t)plan->nrows);
      memcpy(v->args, dec->args, sizeof(double) * (size_t)plan->nargs);
      /* which rows run in decode (MLA's and Mamba's one-phase rows):
       * plan_eval_kv's interpretive path sets it for the KV rows only */
      if (v->off && dec->off)
        memcpy(v->off, dec->off, sizeof(bool) * (size_t)plan->nrows);
      PhaseResult *ph = &p->stepph;
      ph->name = phase_name[PHASE_DECODE];
      ph->tokens = 1;
      ph->plan = plan;
      ph->vals = v;
      double run[V_COUNT];
      memcpy(run, p->run[1], sizeof(run));
      for (double i = 1; i < n; i++) {
        run[V_S] = run[V_L] = o->seq_len + i;
        if (plan_eval_kv(plan, run, v, err) < 0)
          return -1;
        ph->kv_len = run[V_L];
        phase_roofline(ph, &p->peaks, p->gpu->bandwidth);
        phase_calib(p, ph, run, NULL);
        if (phase_latency(p, ph, run, err) < 0)
          return -1;
        sum += ph->latency;
      }
    }
    s->decode_sum = sum;
    s->e2e = s->ttft + sum;
    s->tpot_mean = n > 1 ? sum / (n - 1) : 0;
    s->throughput = s->e2e > 0 ? o->batch * n / s->e2e : 0;
  }
  s->throughput_per_gpu = s->throughput / s->gpus;
  return 0;
}

/* The collectives' bytes and times of a phase (sized for the plan's). */
static void reserve_comm(PhaseResult *ph, const ParPlan *par) {
  int n = par ? par->ncomm : 0;
  if (!ph->comm_bytes || ph->comm_cap < n + 1) {
    ph->comm_bytes = xrealloc(ph->comm_bytes, sizeof(double) * (size_t)(n + 1));
    ph->comm_time = xrealloc(ph->comm_time, sizeof(double) * (size_t)(n + 1));
    ph->comm_roof = xrealloc(ph->comm_roof, sizeof(double) * (size_t)(n + 1));
    ph->comm_kernel =
        xrealloc(ph->comm_kernel, sizeof(char *) * (size_t)(n + 1));
    ph->comm_cap = n + 1;
  }
  ph->comm = NULL;
  ph->ncomm = 0;
  ph->sends = 0;
}

/* The batch one GPU's pass runs: -B over the microbatches and, under
 * --ep alone, over the data-parallel attention replicas (one per EP GPU;
 * with --tp the attention is tensor-parallel and every GPU runs all). */
static double batch_parts(const PredictOpts *o) {
  return (double)o->microbatches * (o->ep > 1 && o->tp <= 1 ? o->ep : 1);
}

typedef struct ParProbe {
  Prediction *p;
  const double *pre, *fin;
  double m; /* the batch's unit: batch_parts */
} ParProbe;

/* Does batch k x m fit on every GPU of a parallel configuration? *total:
 * the fullest GPU's footprint (NaN when the probe overflows). */
static bool par_fits(void *ctx, double k, double *total) {
  const ParProbe *q = ctx;
  Prediction *p = q->p;
  double pr[V_COUNT], dr[V_COUNT];
  memcpy(pr, q->pre, sizeof(pr));
  memcpy(dr, q->fin, sizeof(dr));
  pr[V_B] = dr[V_B] = k * q->m / batch_parts(&p->opts);
  *total = NAN;
  if (plan_eval(p->plan, pr, p->scratch[0], NULL) < 0 ||
      plan_eval(p->plan, dr, p->scratch[1], NULL) < 0)
    return false;
  Footprint f;
  par_measure(p, p->scratch[0], p->scratch[1], &f);
  *total = f.total;
  return f.fits;
}

/* The largest batch (a multiple of the microbatches) that fits. */
static void par_max_batch(Prediction *p, const double *pre, const double *fin,
                          Footprint *out) {
  ParProbe q = {p, pre, fin, batch_parts(&p->opts)};
  double t1, th;
  out->max_batch = 0;
  out->max_capped = false;
  if (!par_fits(&q, 1, &t1))
    return;
  double hi = floor(LM_MAX_BATCH / q.m); /* in units of m */
  if (par_fits(&q, hi, &th)) {
    out->max_batch = hi * q.m;
    out->max_capped = true;
    return;
  }
  out->max_batch =
      roof_search_batch(par_fits, &q, p->gpu->memory, 1, t1, hi, th) * q.m;
}

static int predict_core(const Plan *plan, const Gpu *gpu,
                        const PredictOpts *o, Prediction *p, Error *err);

int predict(const Plan *plan, const Gpu *gpu, const PredictOpts *o,
            Prediction *p, Error *err) {
  if (o->tp > 1 || o->pp > 1 || o->ep > 1 || o->microbatches > 1) {
    err_set(err, "--tp, --pp, --ep and --microbatches need a split plan");
    return -1;
  }
  p->par = NULL;
  p->pardb = NULL;
  return predict_core(plan, gpu, o, p, err);
}

int predict_par(const ParPlan *par, const ParDb *db, const Gpu *gpu,
                const PredictOpts *o, Prediction *p, Error *err) {
  if (o->tp != par->tp || o->ep != par->ep) {
    err_set(err, "the split plan is for --tp %d --ep %d", par->tp, par->ep);
    return -1;
  }
  if (fmod(o->batch, o->microbatches) != 0) {
    err_set(err, "--microbatches %d does not divide -B %g", o->microbatches,
            o->batch);
    return -1;
  }
  if (fmod(o->batch, batch_parts(o)) != 0) {
    err_set(err,
            "--ep %d x --microbatches %d does not divide -B %g (under --ep "
            "each GPU runs the attention of B / ep sequences)",
            o->ep, o->microbatches, o->batch);
    return -1;
  }
  p->par = par;
  p->pardb = db;
  return predict_core(par->plan, gpu, o, p, err);
}

static int predict_core(const Plan *plan, const Gpu *gpu,
                        const PredictOpts *o, Prediction *p, Error *err) {
  /* the search's buffers serve -O's footprint at the last KV length too */
  reserve(p, plan, o->max_batch || o->output_len > 1, o->output_len > 1);
  for (int i = 0; i < 2; i++)
    reserve_comm(&p->phase[i], p->par);
  reserve_comm(&p->stepph, p->par);
  p->opts = *o;
  p->plan = plan;
  p->gpu = gpu;
  double *pre = p->run[0], *dec = p->run[1];
  memset(pre, 0, sizeof(p->run[0]));
  /* weight widths: --w-bits, else the config's quantization_config (bits
   * per weight with scales, §17.4), else 16 bits; routed experts likewise */
  const Quant *q = &plan->model->quant;
  int w_bits = o->w_bits;
  double w_bytes = o->w_bits / 8.0, x_bytes = w_bytes;
  if (!o->w_given && q->known) {
    if (q->w_bits > 0) {
      w_bytes = q->w_bits / 8.0;
      w_bits = q->nominal_w;
    }
    x_bytes = q->x_bits > 0 ? q->x_bits / 8.0 : w_bytes;
  }
  p->w_bits = w_bits;
  pre[V_B] = o->batch / batch_parts(o); /* one microbatch on one GPU */
  pre[V_S] = pre[V_T] = pre[V_L] = o->seq_len;
  pre[V_W_BYTES] = w_bytes;
  pre[V_A_BYTES] = o->a_bits / 8.0;
  pre[V_KV_BYTES] = o->kv_bits / 8.0;
  pre[V_SRAM_BYTES] = gpu->smem_per_sm;
  pre[V_E_BYTES] = o->e_bits / 8.0;
  pre[V_X_BYTES] = x_bytes;
  pre[V_EXPERT_BALANCE] = o->expert_balance > 0 ? o->expert_balance : 1;
  memcpy(dec, pre, sizeof(p->run[1]));
  dec[V_T] = 1;
  dec[V_DECODE] = 1;

  /* decode: in a sweep over S, only the rows reading the KV length (and
   * the state) change from the last decode evaluated */
  bool same = p->dec_valid;
  for (int i = 0; i < V_COUNT && same; i++)
    same = i == V_S || i == V_L || p->dec_run[i] == dec[i];
  p->dec_valid = false;
  if (plan_eval(plan, pre, p->vals[0], err) < 0 ||
      (same ? plan_eval_kv_state(plan, dec, p->vals[1], err)
            : plan_eval(plan, dec, p->vals[1], err)) < 0)
    return -1;
  p->dec_valid = true;
  memcpy(p->dec_run, dec, sizeof(p->dec_run));
  if (roof_peaks(gpu, w_bits, o->a_bits, o->kv_bits, o->fmt8, &p->peaks,
                 err) < 0)
    return -1;
  /* the routed experts' format (MXFP4: 4-bit elements) decides their
   * peak; without a quantization_config covering them, w_bits */
  if (!o->w_given && q->known && q->x_bits > 0) {
    p->peaks.x_bits = q->nominal_x;
    /* MXFP4 on a GPU without FP4 tensor cores (Hopper, Ampere): the
     * kernels dequantize the weights to bf16 and compute at 16 bits */
    if (q->method && strcmp(q->method, "mxfp4") == 0 && gpu->fp4_flops <= 0)
      p->peaks.x_bits = 16;
  }
  bool calibrated = o->calib && o->engine_data && !o->roofline;
  /* decode's rows that do not read the KV length keep their times when
   * everything else they depend on is as last time */
  const Peaks *k0 = &p->dec_peaks, *k1 = &p->peaks;
  bool times = same && p->dec_times_valid && !p->par && p->dec_gpu == gpu &&
               k0->p16 == k1->p16 && k0->p8 == k1->p8 &&
               k0->p8_name == k1->p8_name && k0->p6 == k1->p6 &&
               k0->p4 == k1->p4 && k0->w_bits == k1->w_bits &&
               k0->a_bits == k1->a_bits && k0->kv_bits == k1->kv_bits &&
               k0->x_bits == k1->x_bits &&
               p->dec_calib == (calibrated ? o->calib : NULL) &&
               p->dec_engine == (calibrated ? o->engine_data : NULL);
  p->dec_times_valid = false;
  const bool *only = times ? p->kvmask : NULL;
  for (int i = 0; i < 2; i++) {
    PhaseResult *ph = &p->phase[i];
    ph->name = phase_name[i]; /* PHASE_PREFILL, PHASE_DECODE */
    ph->tokens = p->run[i][V_T];
    ph->kv_len = p->run[i][V_L];
    ph->plan = plan;
    ph->vals = p->vals[i];
    phase_roofline_rows(ph, &p->peaks, gpu->bandwidth, i ? only : NULL);
  }
  Summary *s = &p->summary;
  s->ttft_roofline = p->phase[0].total_time;
  s->tpot_roofline = p->phase[1].total_time;
  if (calibrated) {
    /* the engine's kernels over the plan: built once per plan and engine */
    if (!p->cplan || p->cplan->plan != plan || p->cplan_engine != o->engine_data) {
      only = NULL; /* new buffers */
      calib_plan_free(p->cplan);
      p->cplan = calib_plan(plan, o->engine_data);
      p->cplan_engine = o->engine_data;
      for (int i = 0; i < 3; i++) {
        PhaseResult *ph = i < 2 ? &p->phase[i] : &p->stepph;
        free(ph->pred);
        ph->pred = NULL;
      }
    }
  } else {
    for (int i = 0; i < 3; i++) {
      PhaseResult *ph = i < 2 ? &p->phase[i] : &p->stepph;
      free(ph->pred);
      ph->pred = NULL;
      ph->kernel = NULL;
    }
  }
  for (int i = 0; i < 2; i++) {
    PhaseResult *ph = &p->phase[i];
    phase_calib(p, ph, p->run[i], i ? only : NULL);
    if (phase_latency(p, ph, p->run[i], err) < 0)
      return -1;
  }
  p->dec_times_valid = !p->par;
  p->dec_gpu = gpu;
  p->dec_peaks = p->peaks;
  p->dec_calib = calibrated ? o->calib : NULL;
  p->dec_engine = calibrated ? o->engine_data : NULL;
  s->ttft = p->phase[0].latency;
  s->tpot = p->phase[1].latency;
  if (p->par) { /* the roofline bound of the configuration */
    s->ttft_roofline = p->phase[0].latency_roofline;
    s->tpot_roofline = p->phase[1].latency_roofline;
  }
  s->tokens_per_s = s->tpot > 0 ? o->batch / s->tpot : 0;
  p->nkinds = 0;
  if (plan->model->from_config) {
    /* the parameter count (once per plan) and the KV cache per layer
     * kind, from decode's values (L = S) */
    /* the whole model's count, not one GPU's share of a split plan */
    const Plan *pp = p->par && p->par->whole ? p->par->whole : plan;
    if (p->param_plan != pp || p->param_serial != pp->serial) {
      Values *v = values_new(pp);
      int rc = plan_parameters(pp, v, &p->parameters, &p->active, err);
      values_free(v);
      if (rc < 0)
        return -1;
      p->param_plan = pp;
      p->param_serial = pp->serial;
    }
    p->nkinds = plan_kv_by_kind(plan, p->vals[1], p->kv_kinds,
                                p->kv_kind_bytes, 8);
  }
  if (decode_steps(p, err) < 0)
    return -1;
  /* the footprint holds the KV cache of the last token generated */
  const Values *kvv = p->vals[1];
  double fin[V_COUNT];
  memcpy(fin, dec, sizeof(fin));
  if (o->output_len > 1) {
    fin[V_S] = fin[V_L] = o->seq_len + o->output_len - 1;
    if (plan_eval(plan, fin, p->scratch[1], err) < 0)
      return -1;
    kvv = p->scratch[1];
  }
  if (p->par) {
    par_measure(p, p->vals[0], kvv, &s->mem);
    if (o->max_batch)
      par_max_batch(p, pre, fin, &s->mem);
  } else {
    roof_measure(plan, p->vals[0], kvv, gpu->memory, &s->mem);
    if (o->max_batch)
      roof_max_batch(plan, pre, fin, gpu->memory, p->scratch[0],
                     p->scratch[1], &s->mem);
  }
  return 0;
}

Report prediction_report(const Prediction *p) {
  const PredictOpts *o = &p->opts;
  const Model *m = p->plan->model;
  return (Report){.model = m->id, .family = m->family, .note = m->note,
                  .parameters = m->from_config ? p->parameters : -1,
                  .active = m->from_config ? p->active : -1,
                  .quant = &m->quant,
                  .kv_kinds = p->kv_kinds, .kv_kind_bytes = p->kv_kind_bytes,
                  .nkinds = p->nkinds, .batch = o->batch,
                  .seq_len = o->seq_len, .w_bits = p->w_bits,
                  .a_bits = o->a_bits, .kv_bits = o->kv_bits,
                  .attention = attn_name[p->plan->attn],
                  .phases = o->phase == PHASE_DECODE ? &p->phase[1]
                                                     : &p->phase[0],
                  .nphases = o->phase == PHASE_ALL ? 2 : 1, .gpu = p->gpu,
                  .peaks = p->peaks, .summary = &p->summary,
                  .serving = o->output_len > 0 || p->par != NULL,
                  .tp = o->tp, .pp = o->pp, .ep = o->ep,
                  .microbatches = o->microbatches,
                  .engine = p->phase[0].pred ? o->engine_data : NULL,
                  .calib = p->phase[0].pred ? o->calib : NULL,
                  .cplan = p->phase[0].pred ? p->cplan : NULL,
                  .run = p->run};
}

void prediction_warnings(const Prediction *p, Buf *out) {
  const Model *m = p->plan->model;
  const Calib *c = p->opts.calib;
  if (c && c->fallback && p->phase[0].pred)
    buf_printf(out, "%s has no measured kernel times: its times use the %s "
                    "calibration (%s), scaled to its own peaks and "
                    "bandwidth; they are less certain\n",
               p->gpu->id, c->hw_id, c->note);
  const Engine *e = p->opts.engine_data;
  double s8 = e ? engine_gemm8(e, p->gpu) : 0;
  if (c && e && p->phase[0].pred && s8 > 0 &&
      roof_weight_peak(&p->peaks, NULL) > p->peaks.p16)
    buf_printf(out, "no 8-bit kernel times were measured: 8-bit GEMMs run at "
                    "%gx the 16-bit speed (%s's %s, engines/%s.json "
                    "gemm_8bit); they are less certain\n",
               s8, e->name,
               engine_gemm8_measured(e, p->gpu)
                   ? "FP8 GEMMs measured on this GPU"
                   : "published figure",
               e->id);
  double seq = p->opts.seq_len;
  if (m->warnings)
    buf_puts(out, m->warnings);
  bool quantized = m->quant.known;
  /* (a split plan's weights are one GPU's: the quantized check needs the
   * whole model's, so it runs on one GPU only) */
  if (m->from_config && m->ckpt_bytes > 0 && p->param_plan &&
      (p->param_plan == p->plan || !quantized) &&
      !(quantized && p->opts.w_given)) {
    /* the checkpoint stores every parameter at its torch_dtype, or, with a
     * quantization_config, as that says: the weights' footprint */
    double want = quantized ? p->summary.mem.weights
                            : m->ckpt_elem_bytes * p->parameters;
    double rel = (want - m->ckpt_bytes) / m->ckpt_bytes;
    if ((rel > 0.01 || rel < -0.01) && quantized)
      buf_printf(out,
                 "predicted weights (%.0f parameters at the "
                 "quantization_config's widths = %.0f) differ from the "
                 "checkpoint's model.safetensors.index.json total_size "
                 "(%.0f) by %+.2f%%\n",
                 p->parameters, want, m->ckpt_bytes, rel * 100);
    else if (rel > 0.01 || rel < -0.01)
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
  phase_free_times(&p->stepph);
  free(p->stepph.pred);
  p->stepph.pred = NULL;
  p->stepph.kernel = NULL;
  for (int i = 0; i < 3; i++) {
    PhaseResult *ph = i < 2 ? &p->phase[i] : &p->stepph;
    free(ph->comm_bytes);
    free(ph->comm_time);
    free(ph->comm_roof);
    free(ph->comm_kernel);
    ph->comm_kernel = NULL;
    free(ph->stage_send);
    ph->comm_bytes = ph->comm_time = ph->comm_roof = ph->stage_send = NULL;
    ph->comm_cap = 0;
  }
  values_free(p->steps);
  p->steps = NULL;
  p->bufplan = NULL;
  p->dec_valid = false;
  p->dec_times_valid = false;
  free(p->kvmask);
  p->kvmask = NULL;
  p->param_plan = NULL;
}
