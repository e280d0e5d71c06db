/* roofline.c: time, bound and memory footprint.
 *
 * An operation takes max(flops / peak, bytes / bandwidth): it is compute
 * bound when its arithmetic intensity flops/bytes reaches the ridge point
 * peak/bandwidth, memory bound below it. The peak is the 8-bit one when
 * weights and activations are both 8 bits or fewer (INT8, else FP8, else
 * the 16-bit peak on GPUs with neither), else the FP16/BF16 one.
 *
 * The footprint is weights (param_bytes) + the KV cache after S tokens
 * (kv_cache_bytes at decode's KV length, so a sliding window's rolling
 * cache counts as such) + the largest activation set one operation reads
 * and writes, over prefill and decode. The largest batch that fits is
 * found by bisection on B, each probe a full evaluation.
 */
#include "runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

Peak roof_peak(const Gpu *g, int w_bits, int a_bits) {
  if (w_bits <= 8 && a_bits <= 8) {
    if (g->int8_ops > 0)
      return (Peak){g->int8_ops, "INT8"};
    if (g->fp8_flops > 0)
      return (Peak){g->fp8_flops, "FP8"};
  }
  return (Peak){g->fp16_flops, "FP16/BF16"};
}

double roof_time(double flops, double bytes, double peak, double bandwidth,
                 Bound *bound) {
  double tc = flops / peak, tm = bytes / bandwidth;
  if (bound)
    *bound = tc >= tm && flops > 0 ? BOUND_COMPUTE : BOUND_MEMORY;
  return tc > tm ? tc : tm;
}

void phase_roofline(PhaseResult *ph, const Peak *peak, double bandwidth) {
  int n = ph->plan->nrows;
  ph->time = xcalloc((size_t)n + 1, sizeof(double));
  ph->bound = xcalloc((size_t)n + 1, sizeof(Bound));
  ph->total_time = 0;
  for (int r = 0; r < n; r++) {
    const double *v = ph->vals->row[r];
    double bytes = v[M_WEIGHT_BYTES] + v[M_ACT_READ_BYTES] +
                   v[M_ACT_WRITE_BYTES] + v[M_KV_READ_BYTES] +
                   v[M_KV_WRITE_BYTES];
    ph->time[r] =
        roof_time(v[M_FLOPS], bytes, peak->flops, bandwidth, &ph->bound[r]);
    ph->total_time += ph->plan->rows[r].count * ph->time[r];
  }
}

void phase_free_times(PhaseResult *ph) {
  free(ph->time);
  free(ph->bound);
  ph->time = NULL;
  ph->bound = NULL;
}

static double max_act(const Plan *p, const Values *v) {
  double m = 0;
  for (int r = 0; r < p->nrows; r++) {
    double a = v->row[r][M_ACT_READ_BYTES] + v->row[r][M_ACT_WRITE_BYTES];
    if (a > m)
      m = a;
  }
  return m;
}

/* The footprint at batch b. */
static int measure(const Plan *p, const double *prefill_run,
                   const double *decode_run, double b, Values *va, Values *vb,
                   Footprint *f, Error *err) {
  double pr[V_COUNT], dr[V_COUNT];
  memcpy(pr, prefill_run, sizeof(pr));
  memcpy(dr, decode_run, sizeof(dr));
  pr[V_B] = dr[V_B] = b;
  if (plan_eval(p, pr, va, err) < 0 || plan_eval(p, dr, vb, err) < 0)
    return -1;
  f->weights = vb->state[M_PARAM_BYTES - M_TRAFFIC];
  f->kv_cache = vb->state[M_KV_CACHE_BYTES - M_TRAFFIC];
  double a = max_act(p, va), d = max_act(p, vb);
  f->act = a > d ? a : d;
  f->total = f->weights + f->kv_cache + f->act;
  return 0;
}

int roof_footprint(const Plan *p, const double *prefill_run,
                   const double *decode_run, double capacity, bool search,
                   Values *va, Values *vb, Footprint *out, Error *err) {
  memset(out, 0, sizeof(*out));
  if (measure(p, prefill_run, decode_run, prefill_run[V_B], va, vb, out,
              err) < 0)
    return -1;
  out->capacity = capacity;
  out->fits = out->total <= capacity;
  if (!search)
    return 0;
  /* bisection on B: fits(lo) holds, fits(hi) does not */
  Footprint probe;
  Error perr;
  err_clear(&perr);
  if (measure(p, prefill_run, decode_run, 1, va, vb, &probe, &perr) < 0 ||
      probe.total > capacity) {
    out->max_batch = 0;
    return 0;
  }
  double lo = 1, hi = LM_MAX_BATCH;
  err_clear(&perr);
  if (measure(p, prefill_run, decode_run, hi, va, vb, &probe, &perr) == 0 &&
      probe.total <= capacity) {
    out->max_batch = hi;
    out->max_capped = true;
    return 0;
  }
  while (hi - lo > 1) {
    double mid = floor((lo + hi) / 2);
    err_clear(&perr);
    /* a probe that overflows counts as not fitting */
    if (measure(p, prefill_run, decode_run, mid, va, vb, &probe, &perr) == 0 &&
        probe.total <= capacity)
      lo = mid;
    else
      hi = mid;
  }
  out->max_batch = lo;
  return 0;
}
