/* roofline.c: time, bound and memory footprint.
 *
 * An operation takes max(flops / peak, bytes / bandwidth): it is compute
 * bound when its arithmetic intensity flops/bytes reaches the ridge point
 * peak/bandwidth, memory bound below it. The peak is chosen per operation:
 * the 8-bit one (INT8 or FP8) when every operand it reads is 8 bits or
 * narrower (activations; weights if it reads any; the KV cache if it reads
 * any), else FP16/BF16. For projections this is the rule "weights and
 * activations both 8-bit or less"; attention matmuls also need the cache.
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

int roof_peaks(const Gpu *g, int w_bits, int a_bits, int kv_bits, Format8 f,
               Peaks *out, Error *err) {
  *out = (Peaks){.p16 = g->fp16_flops, .p6 = g->fp6_flops,
                 .p4 = g->fp4_flops, .w_bits = w_bits, .a_bits = a_bits,
                 .kv_bits = kv_bits, .x_bits = w_bits};
  if (f == FMT8_INT8 || (f == FMT8_AUTO && g->int8_ops > 0)) {
    if (g->int8_ops <= 0 && f == FMT8_INT8) {
      err_set(err, "%s has no INT8 Tensor Core peak in the hardware database",
              g->id);
      return -1;
    }
    out->p8 = g->int8_ops;
    out->p8_name = "INT8";
  }
  if (f == FMT8_FP8 || (f == FMT8_AUTO && out->p8 == 0 && g->fp8_flops > 0)) {
    if (g->fp8_flops <= 0) {
      err_set(err, "%s has no FP8 peak in the hardware database", g->id);
      return -1;
    }
    out->p8 = g->fp8_flops;
    out->p8_name = "FP8";
  }
  return 0;
}

double roof_peak(const Peaks *pk, const double *v, bool xw,
                 const char **name) {
  return roof_peak_inline(pk, v, xw, name);
}

double roof_row_peak(const Peaks *pk, const double *v, const char **name) {
  return roof_peak(pk, v, false, name);
}

double roof_weight_peak(const Peaks *pk, const char **name) {
  double v[M_TRAFFIC] = {[M_WEIGHT_BYTES] = 1};
  return roof_row_peak(pk, v, name);
}

double roof_time(double flops, double bytes, double peak, double bandwidth,
                 Bound *bound) {
  double tc = flops / peak, tm = bytes / bandwidth;
  if (bound)
    *bound = tc >= tm && flops > 0 ? BOUND_COMPUTE : BOUND_MEMORY;
  return tc > tm ? tc : tm;
}

void phase_roofline(PhaseResult *ph, const Peaks *peaks, double bandwidth) {
  phase_roofline_rows(ph, peaks, bandwidth, NULL);
}

static bool peaks_same(const Peaks *a, const Peaks *b) {
  return a->p16 == b->p16 && a->p8 == b->p8 && a->p8_name == b->p8_name &&
         a->p6 == b->p6 && a->p4 == b->p4 && a->w_bits == b->w_bits &&
         a->a_bits == b->a_bits && a->kv_bits == b->kv_bits &&
         a->x_bits == b->x_bits;
}

/* The table of roof_peak's eight answers for peaks (made when they
 * change: a sweep's rows mostly share them). */
static const PeakTab *peak_tab(PeakTab *t, const Peaks *peaks) {
  if (t->valid && peaks_same(&t->pk, peaks))
    return t;
  for (int i = 0; i < 8; i++) {
    double v[M_TRAFFIC] = {0};
    v[M_WEIGHT_BYTES] = i & 1;
    v[M_KV_READ_BYTES] = i >> 1 & 1;
    t->peak[i] = roof_peak_inline(peaks, v, i >> 2, &t->name[i]);
  }
  t->pk = *peaks;
  t->valid = true;
  return t;
}

void phase_roofline_rows(PhaseResult *ph, const Peaks *peaks,
                         double bandwidth, const bool *only) {
  int n = ph->plan->nrows;
  if (!ph->time) {
    ph->time = xcalloc((size_t)n + 1, sizeof(double));
    ph->bound = xcalloc((size_t)n + 1, sizeof(Bound));
    ph->peak = xcalloc((size_t)n + 1, sizeof(char *));
  }
  ph->total_time = 0;
  const PeakTab *t = peak_tab(&ph->ptab, peaks);
  const Row *rows = ph->plan->rows;
  for (int r = 0; r < n; r++) {
    if (!only || only[r]) {
      const double *v = ph->vals->row[r];
      double bytes = metric_bytes(v);
      int i = (v[M_WEIGHT_BYTES] != 0) | (v[M_KV_READ_BYTES] != 0) << 1 |
              rows[r].xw << 2;
      ph->peak[r] = t->name[i];
      ph->time[r] =
          roof_time(v[M_FLOPS], bytes, t->peak[i], bandwidth, &ph->bound[r]);
    }
    ph->total_time += rows[r].count * ph->time[r];
  }
}

void phase_free_times(PhaseResult *ph) {
  free(ph->time);
  free(ph->bound);
  free(ph->peak);
  ph->time = NULL;
  ph->bound = NULL;
  ph->peak = NULL;
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

void roof_measure(const Plan *p, const Values *prefill, const Values *decode,
                  double capacity, Footprint *f) {
  memset(f, 0, sizeof(*f));
  f->weights = decode->state[M_PARAM_BYTES - M_TRAFFIC];
  f->kv_cache = decode->state[M_KV_CACHE_BYTES - M_TRAFFIC];
  double a = max_act(p, prefill), d = max_act(p, decode);
  f->act = a > d ? a : d;
  f->total = f->weights + f->kv_cache + f->act;
  f->capacity = capacity;
  f->fits = f->total <= capacity;
}

/* The largest k in (lo, hi) that fits, given that lo fits and hi does not
 * (totals tlo, thi: the footprints there, used only to guess). The
 * search keeps that bracket, so where fitting is monotone in k (the
 * footprint grows with the batch: weights, KV cache and activations are
 * sums and maxima of terms non-decreasing in B) its answer is the one k
 * with fits(k) and not fits(k + 1): the bisection's. It guesses where the
 * line through (lo, tlo) and (hi, thi) meets the capacity, then probes the
 * guess's neighbour, which closes the bracket when the footprint is
 * linear in k (4 probes in all against the bisection's 22); a bracket
 * still open gets a bisection step before the next guess, so a footprint
 * far from linear costs at most three probes per halving. */
double roof_search_batch(RoofFits fits, void *ctx, double capacity, double lo,
                         double tlo, double hi, double thi) {
  int step = 0;     /* 0: guess, 1: the guess's neighbour, 2: bisect */
  double next = 0;  /* the neighbour */
  while (hi - lo > 1) {
    double mid = floor((lo + hi) / 2), t;
    bool guess = step == 0 && isfinite(tlo) && isfinite(thi) && thi > tlo;
    if (guess) {
      double g = lo + floor((capacity - tlo) / (thi - tlo) * (hi - lo));
      mid = g >= lo + 1 ? (g <= hi - 1 ? g : hi - 1) : lo + 1; /* NaN: lo+1 */
    } else if (step == 1) {
      mid = next;
    }
    bool ok = fits(ctx, mid, &t);
    if (ok) {
      lo = mid;
      tlo = t;
    } else {
      hi = mid;
      thi = t;
    }
    next = ok ? mid + 1 : mid - 1;
    step = guess && next > lo && next < hi ? 1 : step == 1 ? 2 : 0;
  }
  return lo;
}

typedef struct RoofProbe {
  const Plan *p;
  const double *prefill_run, *decode_run;
  double capacity;
  Values *va, *vb;
} RoofProbe;

/* Does batch b fit? A probe that overflows counts as not fitting (its
 * total NaN). */
static bool fits_at(void *ctx, double b, double *total) {
  const RoofProbe *r = ctx;
  double pr[V_COUNT], dr[V_COUNT];
  memcpy(pr, r->prefill_run, sizeof(pr));
  memcpy(dr, r->decode_run, sizeof(dr));
  pr[V_B] = dr[V_B] = b;
  *total = NAN;
  if (plan_eval(r->p, pr, r->va, NULL) < 0 ||
      plan_eval(r->p, dr, r->vb, NULL) < 0)
    return false;
  Footprint f;
  roof_measure(r->p, r->va, r->vb, r->capacity, &f);
  *total = f.total;
  return f.fits;
}

void roof_max_batch(const Plan *p, const double *prefill_run,
                    const double *decode_run, double capacity, Values *va,
                    Values *vb, Footprint *out) {
  RoofProbe r = {p, prefill_run, decode_run, capacity, va, vb};
  double t1, th;
  out->max_batch = 0;
  out->max_capped = false;
  if (!fits_at(&r, 1, &t1))
    return;
  if (fits_at(&r, LM_MAX_BATCH, &th)) {
    out->max_batch = LM_MAX_BATCH;
    out->max_capped = true;
    return;
  }
  out->max_batch =
      roof_search_batch(fits_at, &r, capacity, 1, t1, LM_MAX_BATCH, th);
}

int roof_footprint(const Plan *p, const double *prefill_run,
                   const double *decode_run, double capacity, bool search,
                   Values *va, Values *vb, Footprint *out, Error *err) {
  memset(out, 0, sizeof(*out));
  if (plan_eval(p, prefill_run, va, err) < 0 ||
      plan_eval(p, decode_run, vb, err) < 0)
    return -1;
  roof_measure(p, va, vb, capacity, out);
  if (search)
    roof_max_batch(p, prefill_run, decode_run, capacity, va, vb, out);
  return 0;
}
