/* test_roofline.c: peaks, the bound switch point, FlashAttention traffic,
 * memory footprint and the largest batch, all derived by hand on the tiny
 * Llama (test/data/tiny_llama.json; see test_plan.c for its shapes). */
#include "testutil.h"
#include "runtime.h"

#include <glob.h>

static Db *db;
static Registry *reg;
static Model *tiny;

static int group_setup(void **state) {
  (void)state;
  db = tu_load_db("module_db.json");
  reg = reg_load(db, "generated_modules", NULL);
  tiny = reg ? model_load("test/data/tiny_llama.json", reg, NULL) : NULL;
  return tiny ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  model_free(tiny);
  reg_free(reg);
  db_free(db);
  return 0;
}

static void test_roofline_peaks(void **state) {
  (void)state;
  Gpu h = {.id = "h", .fp16_flops = 989.4e12, .fp8_flops = 1978.9e12,
           .int8_ops = 1978.9e12};
  Gpu v = {.id = "v", .fp16_flops = 125e12};                       /* no 8-bit */
  Gpu f = {.id = "f", .fp16_flops = 100e12, .fp8_flops = 200e12}; /* FP8 only */
  Gpu g = {.id = "g", .fp16_flops = 165e12, .fp8_flops = 330e12, .int8_ops = 660e12};
  /* a projection (reads weights), an attention matmul (reads the KV
   * cache), an element-wise op (reads neither) */
  double proj[M_TRAFFIC] = {[M_FLOPS] = 1, [M_WEIGHT_BYTES] = 1};
  double attn[M_TRAFFIC] = {[M_FLOPS] = 1, [M_KV_READ_BYTES] = 1};
  double elem[M_TRAFFIC] = {[M_FLOPS] = 1, [M_ACT_READ_BYTES] = 1};
  struct {
    const Gpu *g;
    int w, a, kv;
    Format8 f;
    double proj, attn, elem;
  } cases[] = {
      {&h, 16, 16, 16, FMT8_AUTO, 989.4e12, 989.4e12, 989.4e12},
      {&h, 8, 8, 16, FMT8_AUTO, 1978.9e12, 989.4e12, 1978.9e12}, /* W8A8, 16-bit KV */
      {&h, 8, 8, 8, FMT8_AUTO, 1978.9e12, 1978.9e12, 1978.9e12},
      {&h, 4, 16, 8, FMT8_AUTO, 989.4e12, 989.4e12, 989.4e12},   /* W4A16 */
      {&h, 8, 16, 8, FMT8_AUTO, 989.4e12, 989.4e12, 989.4e12},
      {&h, 4, 8, 16, FMT8_AUTO, 1978.9e12, 989.4e12, 1978.9e12}, /* W4A8 */
      {&v, 8, 8, 8, FMT8_AUTO, 125e12, 125e12, 125e12},          /* V100 */
      {&f, 8, 8, 8, FMT8_AUTO, 200e12, 200e12, 200e12},          /* FP8 only */
      {&g, 8, 8, 8, FMT8_AUTO, 660e12, 660e12, 660e12},          /* INT8 wins */
      {&g, 8, 8, 8, FMT8_FP8, 330e12, 330e12, 330e12},           /* asked FP8 */
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    Peaks pk;
    Error e;
    err_clear(&e);
    assert_int_equal(roof_peaks(cases[i].g, cases[i].w, cases[i].a, cases[i].kv,
                                cases[i].f, &pk, &e), 0);
    assert_double_exact(roof_row_peak(&pk, proj, NULL), cases[i].proj);
    assert_double_exact(roof_row_peak(&pk, attn, NULL), cases[i].attn);
    assert_double_exact(roof_row_peak(&pk, elem, NULL), cases[i].elem);
    assert_double_exact(roof_weight_peak(&pk, NULL), cases[i].proj);
  }
  Peaks pk;
  const char *name;
  roof_peaks(&h, 8, 8, 8, FMT8_AUTO, &pk, NULL);
  roof_row_peak(&pk, attn, &name);
  assert_string_equal(name, "INT8");
  roof_peaks(&f, 8, 8, 8, FMT8_AUTO, &pk, NULL);
  roof_row_peak(&pk, attn, &name);
  assert_string_equal(name, "FP8");
  /* Blackwell's FP4 and FP6 (B200: 9,000 and 4,500 dense): the widest
   * operand decides; the experts' rows (xw) use x_bits */
  Gpu b = {.id = "b", .fp16_flops = 2250e12, .fp8_flops = 4500e12,
           .int8_ops = 4500e12, .fp6_flops = 4500e12, .fp4_flops = 9000e12};
  roof_peaks(&b, 4, 4, 4, FMT8_AUTO, &pk, NULL);
  assert_double_exact(roof_row_peak(&pk, proj, &name), 9000e12);
  assert_string_equal(name, "FP4");
  assert_double_exact(roof_row_peak(&pk, attn, NULL), 9000e12);
  roof_peaks(&b, 4, 4, 8, FMT8_AUTO, &pk, NULL); /* 8-bit cache */
  assert_double_exact(roof_row_peak(&pk, attn, NULL), 4500e12);
  assert_double_exact(roof_row_peak(&pk, proj, NULL), 9000e12);
  roof_peaks(&b, 16, 4, 16, FMT8_AUTO, &pk, NULL); /* bf16 weights, MXFP4 experts */
  pk.x_bits = 4;
  assert_double_exact(roof_peak(&pk, proj, false, NULL), 2250e12);
  assert_double_exact(roof_peak(&pk, proj, true, &name), 9000e12);
  assert_string_equal(name, "FP4");
  assert_double_exact(roof_peak(&pk, elem, false, NULL), 9000e12);
  roof_peaks(&h, 4, 4, 4, FMT8_AUTO, &pk, NULL); /* H100: no FP4, the 8-bit peak */
  assert_double_exact(roof_row_peak(&pk, proj, &name), 1978.9e12);
  assert_string_equal(name, "INT8");
  /* a format the GPU lacks */
  Error e;
  err_clear(&e);
  assert_int_equal(roof_peaks(&v, 8, 8, 8, FMT8_FP8, &pk, &e), -1);
  assert_string_equal(e.msg, "v has no FP8 peak in the hardware database");
  err_clear(&e);
  assert_int_equal(roof_peaks(&f, 8, 8, 8, FMT8_INT8, &pk, &e), -1);
  assert_string_equal(e.msg, "f has no INT8 Tensor Core peak in the hardware database");
}

/* peak 1000 FLOP/s, 10 B/s: the ridge is at 100 FLOP/B */
static void test_roofline_bound_switch(void **state) {
  (void)state;
  Bound b;
  assert_double_exact(roof_time(999, 10, 1000, 10, &b), 1.0); /* 1 s of bytes */
  assert_int_equal(b, BOUND_MEMORY);
  assert_double_exact(roof_time(1000, 10, 1000, 10, &b), 1.0); /* at the ridge */
  assert_int_equal(b, BOUND_COMPUTE);
  assert_double_exact(roof_time(2000, 10, 1000, 10, &b), 2.0);
  assert_int_equal(b, BOUND_COMPUTE);
  assert_double_exact(roof_time(0, 10, 1000, 10, &b), 1.0);
  assert_int_equal(b, BOUND_MEMORY);
  /* H100 SXM: ridge 989.4e12 / 3350e9 = 295.34 FLOP/B */
  roof_time(295.0 * 1e6, 1e6, 989.4e12, 3350e9, &b);
  assert_int_equal(b, BOUND_MEMORY);
  roof_time(296.0 * 1e6, 1e6, 989.4e12, 3350e9, &b);
  assert_int_equal(b, BOUND_COMPUTE);
}

static int row_of(const Plan *p, const char *path) {
  for (int r = 0; r < p->nrows; r++)
    if (strcmp(p->rows[r].path, path) == 0)
      return r;
  return -1;
}

/* FlashAttention-2 on the tiny Llama, prefill B=2, T=L=4, 16-bit: H=2,
 * Hkv=1 (so 2 query heads per KV head), d=4.
 *   with sram 64 bytes: Br = min(ceil(64 / (4*4*2)), 4) = 2 query rows;
 *     tiles per KV head = ceil(T * 2 / Br) = ceil(8 / 2) = 4;
 *     K+V read = 2 * B 2 * Hkv 1 * 4 tiles * L 4 * d 4 * 2 bytes = 512
 *   with sram 228 KiB: Br = min(ceil(233472 / 32), 4) = 4; 2 tiles; 256
 *   FLOPs = qk 512 + sv 512 + softmax 320 = 1344 (as eager)
 *   Q read = B*H*T*d*2 = 128; O written 128 + log-sum-exp B*H*T*4 = 64 */
static void test_roofline_flash_small_case(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  Plan *p = plan_build(tiny, ATTN_FLASH, &e);
  assert_int_equal(row_of(p, "model.layers.self_attn.qk_matmul"), -1);
  assert_int_equal(row_of(p, "model.layers.self_attn.softmax"), -1);
  int f = row_of(p, "model.layers.self_attn.flash_attention");
  assert_true(f > 0);
  assert_int_equal(f, row_of(p, "model.layers.self_attn.rope") + 1);
  Values *v = values_new(p);
  double run[V_COUNT] = {2, 4, 4, 4, 2, 2, 2, 64, 2};
  assert_int_equal(plan_eval(p, run, v, &e), 0);
  assert_double_exact(v->row[f][M_FLOPS], 1344);
  assert_double_exact(v->row[f][M_ACT_READ_BYTES], 128);
  assert_double_exact(v->row[f][M_ACT_WRITE_BYTES], 192);
  assert_double_exact(v->row[f][M_KV_READ_BYTES], 512);
  assert_double_exact(v->row[f][M_KV_WRITE_BYTES], 0);
  assert_double_exact(v->row[f][M_WEIGHT_BYTES], 0);
  run[V_SRAM_BYTES] = 228 * 1024;
  assert_int_equal(plan_eval(p, run, v, &e), 0);
  assert_double_exact(v->row[f][M_KV_READ_BYTES], 256);
  /* decode (T=1): one tile, K and V read once: 2*2*1*1*4*4*2 = 128 */
  run[V_T] = 1;
  assert_int_equal(plan_eval(p, run, v, &e), 0);
  assert_double_exact(v->row[f][M_KV_READ_BYTES], 128);
  values_free(v);
  plan_free(p);
}

/* Footprint of the tiny Llama at S=4 (eager), in bytes:
 *   weights: 2712 (test_plan.c), whatever B is;
 *   KV cache: 2 layers x 2 (K,V) x B x L 4 x 1 KV head x 4 x 2 = 128 B;
 *   largest activation set: gate_up_mul in prefill, two N x 16 inputs and
 *     one output at 2 bytes with N = 4B tokens: 256B + 128B = 384 B;
 *   total 2712 + 512 B.  */
static void test_roofline_footprint_and_max_batch(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  Plan *p = plan_build(tiny, ATTN_EAGER, &e);
  Values *a = values_new(p), *b = values_new(p);
  double pre[V_COUNT] = {2, 4, 4, 4, 2, 2, 2, 233472, 2};
  double dec[V_COUNT] = {2, 4, 1, 4, 2, 2, 2, 233472, 2};
  Footprint f;
  /* capacity for exactly 10 sequences */
  assert_int_equal(roof_footprint(p, pre, dec, 2712 + 512 * 10, true, a, b, &f, &e), 0);
  assert_double_exact(f.weights, 2712);
  assert_double_exact(f.kv_cache, 256);
  assert_double_exact(f.act, 768);
  assert_double_exact(f.total, 2712 + 512 * 2);
  assert_true(f.fits);
  assert_double_exact(f.max_batch, 10);
  assert_false(f.max_capped);
  assert_int_equal(roof_footprint(p, pre, dec, 2712 + 512 * 10 - 1, true, a, b, &f, &e), 0);
  assert_double_exact(f.max_batch, 9);
  /* not even one sequence fits; B = 2 does not either */
  assert_int_equal(roof_footprint(p, pre, dec, 3000, true, a, b, &f, &e), 0);
  assert_false(f.fits);
  assert_double_exact(f.max_batch, 0);
  /* plenty of memory: capped at 2^20 sequences */
  assert_int_equal(roof_footprint(p, pre, dec, 1e18, true, a, b, &f, &e), 0);
  assert_double_exact(f.max_batch, LM_MAX_BATCH);
  assert_true(f.max_capped);
  values_free(a);
  values_free(b);
  plan_free(p);
}

/* phase_roofline keeps a table of the peaks (PeakTab) between calls on
 * one PhaseResult; when the peaks change the rows must get the new ones.
 * The tiny Llama's rows evaluated once, then priced on the same
 * PhaseResult at W16A16, W8A8 (projections at the 8-bit peak), W8A8 with
 * an 8-bit cache (the attention matmuls too), W16A16 again and on an
 * FP8-only GPU: each time every row's peak and name must be roof_peak's
 * for that row (the operand rule, tested by hand in test_roofline_peaks)
 * and its time max(flops / peak, bytes / bandwidth). */
static void test_roofline_peak_table_follows_peaks(void **state) {
  (void)state;
  Plan *p = plan_build(tiny, ATTN_EAGER, NULL);
  assert_non_null(p);
  Values *v = values_new(p);
  double run[V_COUNT] = {[V_B] = 2, [V_S] = 7, [V_T] = 7, [V_L] = 7,
                         [V_W_BYTES] = 1, [V_A_BYTES] = 1, [V_KV_BYTES] = 1,
                         [V_E_BYTES] = 2, [V_X_BYTES] = 1,
                         [V_SRAM_BYTES] = 65536, [V_EXPERT_BALANCE] = 1};
  assert_int_equal(plan_eval(p, run, v, NULL), 0);
  Gpu h = {.id = "h", .fp16_flops = 989.4e12, .int8_ops = 1978.9e12};
  Gpu f = {.id = "f", .fp16_flops = 100e12, .fp8_flops = 200e12};
  struct {
    const Gpu *g;
    int w, a, kv;
  } cases[] = {{&h, 16, 16, 16}, {&h, 8, 8, 16}, {&h, 8, 8, 8},
               {&h, 16, 16, 16}, {&f, 8, 8, 8}};
  PhaseResult ph = {.plan = p, .vals = v};
  int eight = 0;
  for (size_t c = 0; c < LM_ARRAY_LEN(cases); c++) {
    Peaks pk;
    assert_int_equal(roof_peaks(cases[c].g, cases[c].w, cases[c].a,
                                cases[c].kv, FMT8_AUTO, &pk, NULL), 0);
    phase_roofline(&ph, &pk, 2e12);
    for (int r = 0; r < p->nrows; r++) {
      const double *x = v->row[r];
      const char *name;
      double peak = roof_peak(&pk, x, p->rows[r].xw, &name);
      assert_string_equal(ph.peak[r], name);
      double tc = x[M_FLOPS] / peak, tm = metric_bytes(x) / 2e12;
      assert_double_exact(ph.time[r], tc > tm ? tc : tm);
      eight += peak != pk.p16;
    }
  }
  assert_true(eight > 0); /* some rows did run at an 8-bit peak */
  phase_free_times(&ph);
  values_free(v);
  plan_free(p);
}

/* ----- the largest batch: the search against the bisection it replaced ----- */

/* The bisection roof_max_batch ran before roof_search_batch (kept here as
 * the reference): lo fits, hi does not, halve until they are adjacent. */
static double bisect(RoofFits fits, void *ctx, double lo, double hi) {
  while (hi - lo > 1) {
    double mid = floor((lo + hi) / 2), t;
    if (fits(ctx, mid, &t))
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

/* A made-up monotone predicate: k fits iff k <= limit; the totals handed
 * to the search are a shape of k (linear, convex, concave, a step, noise,
 * NaN past a point), so they guide it well, badly or not at all: its
 * answer must be the bisection's whatever they are. */
typedef struct Synth {
  double limit;
  int shape;
  int probes;
  uint64_t seed;
} Synth;

static bool synth_fits(void *ctx, double k, double *total) {
  Synth *s = ctx;
  s->probes++;
  switch (s->shape) {
  case 0: *total = 1000 + 3 * k; break;             /* linear */
  case 1: *total = k * k; break;                    /* convex */
  case 2: *total = sqrt(k); break;                  /* concave */
  case 3: *total = k > s->limit / 2 ? 1e30 : 1; break; /* a step */
  case 4:                                           /* noise */
    s->seed = s->seed * 6364136223846793005u + 1442695040888963407u;
    *total = (double)(s->seed >> 11);
    break;
  case 5: *total = k > 1000 ? NAN : k; break;       /* overflow past 1000 */
  default: *total = -k; break;                      /* decreasing: useless */
  }
  return k <= s->limit;
}

static void test_roofline_search_synthetic(void **state) {
  (void)state;
  const double H = LM_MAX_BATCH;
  int cases = 0;
  for (int shape = 0; shape <= 6; shape++) {
    double limits[] = {1, 2, 3, 7, 100, 999, 1000, 1001, 4096, 65535,
                       H / 2, H - 2, H - 1};
    for (size_t i = 0; i < LM_ARRAY_LEN(limits); i++) {
      for (double c = 0; c < 3; c++) {
        Synth s = {.limit = limits[i], .shape = shape, .seed = 7 + i};
        double t1, th;
        synth_fits(&s, 1, &t1);
        synth_fits(&s, H, &th);
        /* the capacity: where the linear total crosses the limit, and
         * two others the totals do not match */
        double cap = c == 0 ? 1000 + 3 * limits[i] + 1 : c == 1 ? 0 : 1e300;
        double got = roof_search_batch(synth_fits, &s, cap, 1, t1, H, th);
        Synth r = {.limit = limits[i], .shape = shape};
        assert_double_exact(got, bisect(synth_fits, &r, 1, H));
        assert_double_exact(got, limits[i]); /* the one k: k fits, k+1 not */
        /* never more than three probes a halving */
        assert_true(s.probes <= 2 + 3 * 21);
        if (shape == 0 && c == 0 && limits[i] > 1 && limits[i] < H - 1)
          assert_true(s.probes <= 2 + 3); /* linear: found in the guess */
        cases++;
      }
    }
  }
  /* random limits against random totals */
  uint64_t x = 12345;
  for (int n = 0; n < 2000; n++) {
    x = x * 6364136223846793005u + 1442695040888963407u;
    double lim = 1 + (double)((x >> 44) % (uint64_t)(H - 1));
    Synth s = {.limit = lim, .shape = (int)(x >> 20) % 7, .seed = x};
    double t1, th;
    synth_fits(&s, 1, &t1);
    synth_fits(&s, H, &th);
    double cap = (double)((x >> 8) % 100000);
    assert_double_exact(roof_search_batch(synth_fits, &s, cap, 1, t1, H, th),
                        lim);
    cases++;
  }
  assert_true(cases > 2000);
}

/* The models' footprints: plan_eval and roof_measure at batch k, counting
 * the probes. */
typedef struct Real {
  const Plan *p;
  const double *pre, *dec;
  double capacity;
  Values *va, *vb;
  int probes;
} Real;

static bool real_fits(void *ctx, double k, double *total) {
  Real *r = ctx;
  r->probes++;
  double pr[V_COUNT], dr[V_COUNT];
  memcpy(pr, r->pre, sizeof(pr));
  memcpy(dr, r->dec, sizeof(dr));
  pr[V_B] = dr[V_B] = k;
  *total = NAN;
  if (plan_eval(r->p, pr, r->va, NULL) < 0 ||
      plan_eval(r->p, dr, r->vb, NULL) < 0)
    return false;
  Footprint f;
  roof_measure(r->p, r->va, r->vb, r->capacity, &f);
  *total = f.total;
  return f.fits;
}

/* roof_max_batch against the bisection, on every config of
 * test/data/configs and every model file, eager and flash, at short and
 * long sequences, 16- to 4-bit weights and caches, on GPUs of 16 GB to
 * 1.5 TB: the same largest batch and the same cap, every time. */
static void test_roofline_search_matches_bisection(void **state) {
  (void)state;
  glob_t g;
  assert_int_equal(glob("test/data/configs/*.json", 0, NULL, &g), 0);
  assert_int_equal(glob("models/*.json", GLOB_APPEND, NULL, &g), 0);
  static const double seqs[] = {128, 4096, 131072};
  static const double widths[][2] = {{2, 2}, {1, 1}, {0.5, 1}};
  static const double caps[] = {16e9, 80e9, 192e9, 1.5e12};
  long cases = 0, old_probes = 0, new_probes = 0;
  int models = 0;
  for (size_t f = 0; f < g.gl_pathc; f++) {
    Error e;
    err_clear(&e);
    ModelOpenOpts o = {.arch_dir = "models/arch"};
    Model *m = model_open(g.gl_pathv[f], &o, reg, &e);
    if (!m)
      continue; /* not a model (the README) */
    models++;
    for (int attn = 0; attn < 2; attn++) {
      Plan *p = plan_build(m, attn ? ATTN_FLASH : ATTN_EAGER, &e);
      assert_non_null(p);
      Values *va = values_new(p), *vb = values_new(p);
      for (size_t si = 0; si < LM_ARRAY_LEN(seqs); si++)
        for (size_t wi = 0; wi < LM_ARRAY_LEN(widths); wi++) {
          double pre[V_COUNT] = {0};
          pre[V_B] = 1;
          pre[V_S] = pre[V_T] = pre[V_L] = seqs[si];
          pre[V_W_BYTES] = pre[V_X_BYTES] = widths[wi][0];
          pre[V_KV_BYTES] = widths[wi][1];
          pre[V_A_BYTES] = pre[V_E_BYTES] = 2;
          pre[V_SRAM_BYTES] = 233472;
          pre[V_EXPERT_BALANCE] = 1;
          double dec[V_COUNT];
          memcpy(dec, pre, sizeof(dec));
          dec[V_T] = 1;
          dec[V_DECODE] = 1;
          for (size_t ci = 0; ci < LM_ARRAY_LEN(caps); ci++) {
            Footprint fp = {0};
            roof_max_batch(p, pre, dec, caps[ci], va, vb, &fp);
            Real r = {p, pre, dec, caps[ci], va, vb, 0};
            double t;
            double want = 0;
            bool capped = false;
            if (real_fits(&r, 1, &t)) {
              capped = real_fits(&r, LM_MAX_BATCH, &t);
              want = capped ? LM_MAX_BATCH : bisect(real_fits, &r, 1, LM_MAX_BATCH);
            }
            if (fp.max_batch != want || fp.max_capped != capped)
              fail_msg("%s attn %d S %g widths %g/%g capacity %g: %g (%d), "
                       "bisection %g (%d)", g.gl_pathv[f], attn, seqs[si],
                       widths[wi][0], widths[wi][1], caps[ci], fp.max_batch,
                       fp.max_capped, want, capped);
            if (want > 1 && !capped) { /* the probes of both searches */
              Real q = {p, pre, dec, caps[ci], va, vb, 0};
              double t1, th;
              real_fits(&q, 1, &t1);
              real_fits(&q, LM_MAX_BATCH, &th);
              roof_search_batch(real_fits, &q, caps[ci], 1, t1, LM_MAX_BATCH, th);
              new_probes += q.probes;
              old_probes += r.probes;
            }
            cases++;
          }
        }
      values_free(va);
      values_free(vb);
      plan_free(p);
    }
    model_free(m);
  }
  globfree(&g);
  assert_true(models >= 50);
  assert_true(cases >= 50 * 2 * 3 * 3 * 4);
  print_message("  %ld searches over %d models: %ld probes, bisection %ld\n",
                cases, models, new_probes, old_probes);
  /* the point of it: far fewer plan evaluations */
  assert_true(new_probes * 3 < old_probes);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roofline_peaks),
      cmocka_unit_test(test_roofline_bound_switch),
      cmocka_unit_test(test_roofline_flash_small_case),
      cmocka_unit_test(test_roofline_footprint_and_max_batch),
      cmocka_unit_test(test_roofline_peak_table_follows_peaks),
      cmocka_unit_test(test_roofline_search_synthetic),
      cmocka_unit_test(test_roofline_search_matches_bisection),
  };
  return cmocka_run_group_tests_name("roofline", tests, group_setup, group_teardown);
}
