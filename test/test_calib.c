/* test_calib.c: the calibrated time model (runtime/calib.c): kernel times
 * computed by hand on the shipped A100 calibration, wave quantisation,
 * flash attention's causal and L2 treatment, the engines' fused kernels,
 * and located errors in calibration and engine files. */
#include "testutil.h"

#include "calib.h"

#define A100 "calibration/a100-sxm-80gb.json"

/* The A100 80GB figures of hardware.json. */
static Gpu a100(void) {
  return (Gpu){.id = "a100-sxm-80gb",
               .name = "A100",
               .fp16_flops = 312e12,
               .int8_ops = 624e12,
               .bandwidth = 2039e9,
               .memory = 80 * 1073741824.0,
               .l2 = 40 * 1048576.0,
               .smem_per_sm = 164 * 1024.0,
               .sm_count = 108};
}

/* The constants the tests below use are the shipped file's: a refit that
 * changes them must change this test too (on purpose). */
static void test_calib_shipped_a100(void **state) {
  (void)state;
  Error err;
  err_clear(&err);
  Calib *c = calib_load(A100, &err);
  if (!c)
    err_print(stderr, &err);
  assert_non_null(c);
  assert_string_equal(c->hw_id, "a100-sxm-80gb");
  assert_false(c->fallback);
  assert_double_near(c->k[KK_GEMM].launch, 3.892e-6,
                     1e-12); /* us in the file */
  assert_double_exact(c->k[KK_GEMM].compute_eff, 0.8166);
  assert_double_exact(c->k[KK_GEMM].memory_eff, 0.7815);
  assert_double_exact(c->k[KK_GEMM].overlap, 0.1388);
  /* the fit's reading of LLMCompass's wall-clock GEMM sweep, kept in the
   * file for the record */
  assert_double_near(c->k[KK_GEMM].wall_slack, 5.795e-6, 1e-12);
  assert_double_near(c->k[KK_NORM].launch, 4.218e-6, 1e-12);
  assert_double_exact(c->k[KK_NORM].memory_eff, 0.4026);
  assert_double_exact(c->k[KK_NORM].overlap, 0); /* memory kinds: none */
  /* every kind is present; kinds without rows say where they borrow from */
  assert_non_null(c->k[KK_ATTENTION].from);
  calib_free(c);
}

static double one(const Calib *c, KernelKind k, double flops, double bytes,
                  double m, double n, double kk) {
  Gpu g = a100();
  return c->k[k].launch +
         calib_kernel_time(&c->k[k], k, flops, bytes, m, n, kk, 312e12, &g);
}

static void test_calib_hand_a100(void **state) {
  (void)state;
  Error err;
  err_clear(&err);
  Calib *c = calib_load(A100, &err);
  assert_non_null(c);

  /* Small GEMM: Llama-2-7B decode q_proj, m = 1, k = n = 4096, 16-bit.
   * flops = 2*1*4096*4096 = 33,554,432
   * bytes = weights 4096*4096*2 + input 4096*2 + output 4096*2 = 33,570,816
   * tiles = ceil(1/128)*ceil(4096/128) = 32 < 108 SMs: split-K by
   *   min(floor(108/32) = 3, ceil(4096/1024) = 4) = 3 -> 96 tiles, 1 wave,
   *   busy = 96/108
   * compute tc = 33,554,432 / (312e12 * 0.8166 * 96/108) = 0.14816 us
   * memory  tm = 33,570,816 / (2039e9 * 0.7815)           = 21.0676 us
   * memory bound: time = launch + tm + overlap * tc
   *   = 3.892 us + 21.0676 us + 0.1388 * 0.14816 us = 24.980 us */
  double t = one(c, KK_GEMM, 33554432, 33570816, 1, 4096, 4096);
  assert_double_near(t,
                     3.892e-6 + 33570816 / (2039e9 * 0.7815) +
                         0.1388 * 33554432 / (312e12 * 0.8166 * (96.0 / 108)),
                     1e-12);
  assert_double_near(t, 24.980e-6, 1e-4);

  /* Large GEMM: m = 4096 tokens, k = 4096, n = 11008 (a 7B gate_proj).
   * flops = 2*4096*4096*11008 = 369,367,187,456
   * bytes = 2*(4096*4096 + 4096*11008 + 4096*11008) = 213,909,504
   * tiles = 32*86 = 2752; waves = ceil(2752/108) = 26; busy = 2752/2808
   * compute tc = 369,367,187,456 / (312e12 * 0.8166 * 2752/2808) = 1479.25 us
   * memory  tm = 213,909,504 / (2039e9 * 0.7815)                  = 134.24 us
   * compute bound: time = launch + tc + overlap * tm
   *   = 3.892 us + 1479.25 us + 0.1388 * 134.24 us = 1501.78 us */
  t = one(c, KK_GEMM, 369367187456.0, 213909504, 4096, 11008, 4096);
  assert_double_near(
      t,
      3.892e-6 + 369367187456.0 / (312e12 * 0.8166 * (2752.0 / 2808)) +
          0.1388 * 213909504 / (2039e9 * 0.7815),
      1e-12);
  assert_double_near(t, 1501.78e-6, 1e-4);

  /* Norm: RMSNorm over 2048 tokens of 4096, 16-bit: x read, y written,
   * gamma read: bytes = 2*2048*4096*2 + 4096*2 = 33,562,624. No compute
   * term. time = 4.218 us + 33,562,624 / (2039e9 * 0.4026)
   *   = 4.218 us + 40.885 us = 45.103 us */
  t = one(c, KK_NORM, 4 * 2048 * 4096 + 3 * 2048, 33562624, 0, 0, 0);
  assert_double_near(t, 4.218e-6 + 33562624 / (2039e9 * 0.4026), 1e-12);
  assert_double_near(t, 45.103e-6, 1e-4);
  calib_free(c);
}

/* A flash kernel's softmax off the Tensor Cores (calib.c: attn_tc), on the
 * A100 with its FP32 and special-function rates (hardware.json: 19.5
 * TFLOPS FP32, the A100 whitepaper; 16 exp2 results per clock per SM,
 * the CUDA C++ Programming Guide's throughput table for compute
 * capability 8.0, x 108 SMs x 1410 MHz = 2.43648e12 per second).
 * Llama-2-7B prefill, B = 1, T = L = 2048, 32 heads of 128, vLLM's causal
 * skipping already applied: E = 32 * 2048 * 2048 * 17/32 = 71,303,168
 * score elements, flops = E * (4 * 128 + 5) = 36,863,737,856.
 *   matmuls  E * 512 / (312e12 * 0.8166)      = 143.2896 us
 *   exp      E / 2.43648e12                   =  29.2648 us
 *   the rest 4 E / (19.5e12 / 2)              =  29.2526 us
 *   tc = 201.8071 us
 * bytes: Q and O 2 * 32 * 2048 * 128 * 2, the LSE 32 * 2048 * 4, K and V
 * once (L2) 2 * 32 * 2048 * 128 * 2: 67,371,008; tm = 67,371,008 /
 * (2039e9 * 0.7815) = 42.2792 us. Compute bound: time = launch + tc +
 * overlap * tm = 3.892 + 201.8071 + 0.1388 * 42.2792 = 211.5674 us (every
 * FLOP at the Tensor Core rate, as before the two rates: 154.4493 us). */
static void test_calib_flash_softmax_units(void **state) {
  (void)state;
  Error err;
  err_clear(&err);
  Calib *c = calib_load(A100, &err);
  assert_non_null(c);
  Gpu g = a100();
  g.fp32_flops = 19.5e12;
  g.sfu_ops = 16 * 108 * 1410e6;
  const KernelFit *f = &c->k[KK_ATTENTION];
  double e = 32.0 * 2048 * 2048 * 17 / 32, flops = e * 517;
  assert_double_exact(flops, 36863737856.0);
  double t = f->launch + calib_kernel_time(f, KK_ATTENTION, flops, 67371008,
                                           0, 0, 128, 312e12, &g);
  assert_double_near(t, 211.5674e-6, 1e-6);
  assert_double_near(calib_attn_vector_time(flops, 128, &g),
                     29.2648e-6 + 29.2526e-6, 1e-5);
  /* the head size unknown (0), or a GPU without the two rates: every FLOP
   * at the Tensor Core rate */
  double old = f->launch + flops / (312e12 * 0.8166) +
               0.1388 * 67371008 / (2039e9 * 0.7815);
  assert_double_near(old, 154.4493e-6, 1e-6);
  assert_double_exact(f->launch + calib_kernel_time(f, KK_ATTENTION, flops,
                                                    67371008, 0, 0, 0,
                                                    312e12, &g),
                      old);
  Gpu bare = a100();
  assert_double_exact(f->launch + calib_kernel_time(f, KK_ATTENTION, flops,
                                                    67371008, 0, 0, 128,
                                                    312e12, &bare),
                      old);
  assert_double_exact(calib_attn_vector_time(flops, 128, &bare), 0);
  /* decode (T = 1, L = 2048, B = 8): memory-bound, the softmax's units add
   * to the hidden term only: E = 8 * 32 * 2048, K/V 2 * 8 * 32 * 2048 *
   * 128 * 2 = 268 MB at 2039e9 * 0.7815 */
  double ed = 8.0 * 32 * 2048, fd = ed * 517, bd = 2.0 * 8 * 32 * 2048 * 128 * 2;
  double tcd = ed * 512 / (312e12 * 0.8166) + ed / g.sfu_ops +
               4 * ed / (19.5e12 / 2),
         tmd = bd / (2039e9 * 0.7815);
  assert_true(tmd > tcd);
  assert_double_near(calib_kernel_time(f, KK_ATTENTION, fd, bd, 0, 0, 128,
                                       312e12, &g),
                     tmd + 0.1388 * tcd, 1e-15);
  calib_free(c);
}

/* gemm_8bit.by_gpu: a speedup measured on one GPU replaces the engine's
 * default there only. */
static void test_calib_gemm8_by_gpu(void **state) {
  (void)state;
  Error err;
  err_clear(&err);
  Engine *t = engine_load("engines/trtllm.json", &err);
  assert_non_null(t);
  Gpu h = {.id = "h100-sxm"}, l = {.id = "l40s"}, a = {.id = "a100-sxm-80gb"},
      p = {.id = "h100-pcie"};
  assert_double_exact(engine_gemm8(t, &h), 1.34);
  assert_double_exact(engine_gemm8(t, &l), 1.61);
  assert_double_exact(engine_gemm8(t, &a), 1.25); /* the default */
  assert_double_exact(engine_gemm8(t, &p), 1.25);
  engine_free(t);
  Engine *v = engine_load("engines/vllm.json", &err);
  assert_non_null(v);
  assert_double_exact(engine_gemm8(v, &h), 1.25); /* no by_gpu */
  engine_free(v);
  /* bad entries, located */
  char *text = tu_read("engines/trtllm.json");
  const char *bad[][2] = {
      {"\"h100-sxm\": 1.34", "\"H100\": 1.34"},
      {"\"h100-sxm\": 1.34", "\"h100-sxm\": 0.5"},
      {"\"h100-sxm\": 1.34", "\"h100-sxm\": \"fast\""},
  };
  const char *msg[] = {"'H100' is not a GPU id", "must be a number from 1 to 8",
                       "must be a number from 1 to 8"};
  for (size_t i = 0; i < LM_ARRAY_LEN(bad); i++) {
    char *b = tu_replace(text, bad[i][0], bad[i][1]);
    char *dir = tu_tmpdir();
    char *f = path_join(dir, "e.json");
    tu_write(f, b);
    err_clear(&err);
    Engine *e = engine_load(f, &err);
    assert_null(e);
    assert_non_null(strstr(err.msg, msg[i]));
    assert_true(err.line > 0);
    free(f);
    tu_rm_rf(dir);
    free(dir);
    free(b);
  }
  free(text);
}

static void test_calib_waves(void **state) {
  (void)state;
  /* 108 tiles fill 108 SMs exactly; 109 need a second, nearly empty wave */
  assert_double_exact(calib_waves(128 * 108, 128, 128, 108), 1.0);
  assert_double_exact(calib_waves(128 * 109, 128, 128, 108), 109.0 / 216);
  /* 32 tiles, k = 1024: no split (ceil(1024/1024) = 1) */
  assert_double_exact(calib_waves(128, 4096, 1024, 108), 32.0 / 108);
  /* no shape: no quantisation */
  assert_double_exact(calib_waves(0, 0, 0, 108), 1.0);
}

static Engine *load_engine(const char *path) {
  Error err;
  err_clear(&err);
  Engine *e = engine_load(path, &err);
  if (!e)
    err_print(stderr, &err);
  assert_non_null(e);
  return e;
}

static void test_calib_flash_causal_l2(void **state) {
  (void)state;
  Engine *v = load_engine("engines/vllm.json");
  Gpu g = a100();
  /* Llama-2-7B prefill, B = 1, T = L = 2048, 32 heads of 128, MHA.
   * causal: tile j attends (j+1)*128 keys; mean = (2048 + 128)/2 = 1088
   * of 2048: fraction 17/32 of the FLOPs.
   * L2: 2048/128 = 16 query tiles per head; ceil(108/16) = 7 heads in
   * flight; their K and V: 7 * 2 * 2048 * 128 * 2 B = 7.3 MB <= 40 MiB,
   * so K and V come from HBM once: 2 * 32 * 2048 * 128 * 2 = 33.5 MB
   * instead of the metric's 16 re-reads. */
  double kv_read = 2.0 * 32 * 16 * 2048 * 128 * 2, flops = 1e12, f, kv;
  calib_flash(v, &g, 1, 2048, 2048, 32, 32, 128, 2, flops, kv_read, false, &f,
              &kv);
  assert_double_exact(f, flops * 17 / 32);
  assert_double_exact(kv, 2.0 * 32 * 2048 * 128 * 2);
  /* decode: one query, nothing skipped, K/V once already */
  double kv1 = 2.0 * 32 * 2048 * 128 * 2;
  calib_flash(v, &g, 1, 1, 2048, 32, 32, 128, 2, flops, kv1, false, &f, &kv);
  assert_double_exact(f, flops);
  assert_double_exact(kv, kv1);
  /* K and V too large for L2 (L = 2^20 keys: 7 heads x 512 MiB): the
   * re-reads stay, cut by the causal fraction */
  double big = 2.0 * 32 * 8192 * 1048576.0 * 128 * 2;
  calib_flash(v, &g, 1, 1048576, 1048576, 32, 32, 128, 2, flops, big, false,
              &f, &kv);
  double frac = (1048576.0 + 128) / 2 / 1048576;
  assert_double_exact(kv, big * frac);
  engine_free(v);
  /* hf-eager skips nothing */
  Engine *h = load_engine("engines/hf-eager.json");
  assert_int_equal(h->attention, ATTN_EAGER);
  calib_flash(h, &g, 1, 2048, 2048, 32, 32, 128, 2, flops, kv_read, false, &f,
              &kv);
  assert_double_exact(f, flops);
  assert_double_exact(kv, kv_read);
  engine_free(h);
}


/* Generation attention that reads K/V once per query head (TensorRT-LLM's
 * masked MHA: one thread block per query head and sequence), Mistral-7B's
 * shape: 32 query heads, 8 KV heads (n_rep = 4), head size 128, 16-bit
 * K/V, one query (decode), A100 (108 SMs, 40 MiB of L2). */
static void test_calib_flash_per_query_head(void **state) {
  (void)state;
  Engine *t = load_engine("engines/trtllm.json");
  Gpu g = a100();
  double flops = 1e9, f, kv;
  /* B = 1, L = 4096: per query head 2 * 1 * 32 * 4096 * 128 * 2 B =
   * 67.1 MB. L2: 4 blocks (query heads) per KV head, ceil(108 / 4) = 27
   * KV heads in flight, at most B * 8 = 8; their K and V 8 * 2 * 4096 *
   * 128 * 2 = 16.8 MB <= 40 MiB: the re-reads hit, K/V from HBM once,
   * 2 * 8 * 4096 * 128 * 2 = 16.8 MB (what the metric counts). */
  double once = 2.0 * 8 * 4096 * 128 * 2;
  calib_flash(t, &g, 1, 1, 4096, 32, 8, 128, 2, flops, once, true, &f, &kv);
  assert_double_exact(f, flops);
  assert_double_exact(kv, once);
  /* B = 64: 27 KV heads in flight (of 512), 27 * 2 * 4096 * 128 * 2 =
   * 56.6 MB > 41.9 MB: every query head's read comes from HBM,
   * 2 * 64 * 32 * 4096 * 128 * 2 = 4.29 GB, 4x the metric's 1.07 GB */
  double once64 = 2.0 * 64 * 8 * 4096 * 128 * 2;
  calib_flash(t, &g, 64, 1, 4096, 32, 8, 128, 2, flops, once64, true, &f, &kv);
  assert_double_exact(kv, 2.0 * 64 * 32 * 4096 * 128 * 2);
  assert_double_exact(kv, 4 * once64);
  /* the same without per_q (XQA): once per KV head */
  calib_flash(t, &g, 64, 1, 4096, 32, 8, 128, 2, flops, once64, false, &f,
              &kv);
  assert_double_exact(kv, once64);
  /* MHA (n_rep = 1): one block per head reads its own K/V, whatever the
   * flag: 2 * 64 * 32 * 4096 * 128 * 2 either way */
  double mha = 2.0 * 64 * 32 * 4096 * 128 * 2;
  calib_flash(t, &g, 64, 1, 4096, 32, 32, 128, 2, flops, mha, true, &f, &kv);
  assert_double_exact(kv, mha);
  engine_free(t);
}

/* One row's kernel as calib_kernel_cost prices it: model m (A100, 16-bit,
 * batch b, KV length l, decode or prefill at t = l), the kernel of the
 * first row named op. Also returns the row's metric bytes and K/V read. */
typedef struct RowCost {
  KernelCost kc;
  double metric_bytes, kv_read, host;
} RowCost;

static RowCost row_cost(Registry *reg, const Gpu *g, const Calib *c,
                        const char *model, AttnImpl attn, const char *engine,
                        double b, double l, bool decode, const char *op) {
  Error e;
  err_clear(&e);
  ModelOpenOpts mo = {.arch_dir = "models/arch"};
  Model *m = model_open(model, &mo, reg, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  Plan *p = plan_build(m, attn, &e);
  assert_non_null(p);
  Values *v = values_new(p);
  Engine *eng = load_engine(engine);
  CalibPlan *cp = calib_plan(p, eng);
  Peaks pk;
  assert_int_equal(roof_peaks(g, 16, 16, 16, FMT8_AUTO, &pk, &e), 0);
  double run[V_COUNT] = {0};
  run[V_B] = b;
  run[V_S] = run[V_L] = l;
  run[V_T] = decode ? 1 : l;
  run[V_DECODE] = decode;
  run[V_W_BYTES] = run[V_X_BYTES] = 2;
  run[V_A_BYTES] = run[V_KV_BYTES] = run[V_E_BYTES] = 2;
  run[V_SRAM_BYTES] = g->smem_per_sm;
  run[V_EXPERT_BALANCE] = 1;
  assert_int_equal(plan_eval(p, run, v, &e), 0);
  PhaseResult ph = {.plan = p, .vals = v};
  phase_roofline(&ph, &pk, g->bandwidth);
  RowCost rc = {0};
  int r = 0;
  while (r < p->nrows && strcmp(p->rows[r].op, op) != 0)
    r++;
  assert_true(r < p->nrows);
  assert_int_equal(cp->lead[r], r);
  calib_kernel_cost(cp, c, eng, g, &pk, v, run, ph.time, r, &rc.kc);
  rc.metric_bytes = metric_bytes(v->row[r]);
  rc.kv_read = v->row[r][M_KV_READ_BYTES];
  rc.host = calib_host_time(cp, eng, v);
  phase_free_times(&ph);
  calib_plan_free(cp);
  engine_free(eng);
  values_free(v);
  plan_free(p);
  model_free(m);
  return rc;
}

/* The engines' K/V reads per query head on whole plans (A100, 16-bit):
 * transformers' eager repeat_kv (hf-eager) and TensorRT-LLM's generation
 * kernel without XQA (trtllm), against a grouped-query model (Mistral-7B:
 * 32 heads, 8 KV heads, n_rep = 4, d = 128) and an MHA one (Llama-2-7B,
 * n_rep = 1: nothing changes). */
static void test_calib_kv_per_query_head_rows(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  Db *db = tu_load_db("module_db.json");
  Registry *reg = db ? reg_load(db, "generated_modules", &e) : NULL;
  assert_non_null(reg);
  Gpu g = a100();
  Calib *c = calib_load(A100, &e);
  assert_non_null(c);
  const char *mistral = "test/data/configs/mistral-7b-v0.1.json";
  const char *llama = "models/llama-2-7b-hf.json";
  /* hf-eager, Mistral decode, B = 1, L = 2048 (below the 4096 window).
   * qk_matmul's metric reads K once per KV head: B * Hkv * L * d * 2 =
   * 1 * 8 * 2048 * 128 * 2 = 4,194,304 B. repeat_kv copies it: reads
   * 4,194,304 B and writes 4 x = 16,777,216 B (20,971,520 B, 1 launch);
   * the matmul reads the expanded K: 16,777,216 B, 12,582,912 more than
   * the metric. */
  RowCost qk = row_cost(reg, &g, c, mistral, ATTN_EAGER,
                        "engines/hf-eager.json", 1, 2048, true, "qk_matmul");
  assert_double_exact(qk.kv_read, 4194304);
  assert_double_exact(qk.kc.bytes, qk.metric_bytes + 12582912);
  assert_double_exact(qk.kc.copy_bytes, 20971520);
  assert_double_exact(qk.kc.launches, 2); /* the matmul and the copy */
  /* the copy kernel's time: one element-wise launch (+ the 0.9 us gap)
   * and its bytes at the element-wise bandwidth fraction, on top of the
   * batched matmul's own time over its bytes */
  const KernelFit *bg = &c->k[KK_BGEMM], *ew = &c->k[KK_ELEMENTWISE];
  double tc = qk.kc.flops / (312e12 * bg->compute_eff);
  double tm = qk.kc.bytes / (2039e9 * bg->memory_eff);
  double want = (bg->launch + 0.9e-6) +
                (tc > tm ? tc + bg->overlap * tm : tm + bg->overlap * tc) +
                (ew->launch + 0.9e-6) + 20971520 / (2039e9 * ew->memory_eff);
  assert_double_near(qk.kc.time, want, 1e-12);
  /* sv_matmul: V the same (its 2 launches, PV and the output copy, + 1) */
  RowCost sv = row_cost(reg, &g, c, mistral, ATTN_EAGER,
                        "engines/hf-eager.json", 1, 2048, true, "sv_matmul");
  assert_double_exact(sv.kc.bytes, sv.metric_bytes + 12582912);
  assert_double_exact(sv.kc.copy_bytes, 20971520);
  assert_double_exact(sv.kc.launches, 3);
  /* prefill too (T = L = 2048: the same K/V sizes) */
  RowCost qkp = row_cost(reg, &g, c, mistral, ATTN_EAGER,
                         "engines/hf-eager.json", 1, 2048, false, "qk_matmul");
  assert_double_exact(qkp.kc.bytes, qkp.metric_bytes + 12582912);
  assert_double_exact(qkp.kc.copy_bytes, 20971520);
  /* the host issues 2 more launches per layer (K's and V's copies): 32
   * layers x 2 x 23 us = 1.472 ms more than the same plan's launches
   * without them (hf-eager decode at B = 1 is host-bound) */
  RowCost mha_qk = row_cost(reg, &g, c, llama, ATTN_EAGER,
                            "engines/hf-eager.json", 1, 2048, true,
                            "qk_matmul");
  /* Llama-2-7B: n_rep = 1, repeat_kv returns K: the metric as it is */
  assert_double_exact(mha_qk.kc.bytes, mha_qk.metric_bytes);
  assert_double_exact(mha_qk.kc.copy_bytes, 0);
  assert_double_exact(mha_qk.kc.launches, 1);
  /* both 7B plans have the same launches apart from the copies (the same
   * 32 layers of the same rows): Mistral's host time is 64 launches more */
  assert_double_near(qk.host - mha_qk.host, 64 * 23e-6, 1e-9);

  /* trtllm decode, flash_attention (masked MHA), Mistral, L = 4096.
   * B = 1: the L2 rule catches the re-reads (8 KV heads in flight, 16.8
   * MB): the same bytes as XQA. */
  RowCost t1 = row_cost(reg, &g, c, mistral, ATTN_FLASH, "engines/trtllm.json",
                        1, 4096, true, "flash_attention");
  RowCost x1 = row_cost(reg, &g, c, mistral, ATTN_FLASH,
                        "engines/trtllm-xqa.json", 1, 4096, true,
                        "flash_attention");
  assert_double_exact(t1.kc.bytes, x1.kc.bytes);
  assert_double_exact(t1.kc.time, x1.kc.time);
  /* B = 64: 27 KV heads in flight, 56.6 MB > 40 MiB: each query head
   * reads K and V, 2 * 64 * 32 * 4096 * 128 * 2 B against XQA's (and
   * the metric's) 2 * 64 * 8 * 4096 * 128 * 2: 3 * 1,073,741,824 =
   * 3,221,225,472 B more; no copy kernel, one launch */
  RowCost t64 = row_cost(reg, &g, c, mistral, ATTN_FLASH,
                         "engines/trtllm.json", 64, 4096, true,
                         "flash_attention");
  RowCost x64 = row_cost(reg, &g, c, mistral, ATTN_FLASH,
                         "engines/trtllm-xqa.json", 64, 4096, true,
                         "flash_attention");
  assert_double_exact(x64.kv_read, 1073741824.0);
  assert_double_exact(x64.kc.bytes, x64.metric_bytes);
  assert_double_exact(t64.kc.bytes - x64.kc.bytes, 3221225472.0);
  assert_double_exact(t64.kc.copy_bytes, 0);
  assert_double_exact(t64.kc.launches, 1);
  assert_true(t64.kc.time > x64.kc.time);
  /* the context phase's FMHA indexes the KV head: prefill unchanged */
  RowCost tp = row_cost(reg, &g, c, mistral, ATTN_FLASH, "engines/trtllm.json",
                        64, 2048, false, "flash_attention");
  RowCost xp = row_cost(reg, &g, c, mistral, ATTN_FLASH,
                        "engines/trtllm-xqa.json", 64, 2048, false,
                        "flash_attention");
  assert_double_exact(tp.kc.bytes, xp.kc.bytes);
  /* MHA under trtllm at B = 64: 32 KV heads, one block each: the metric */
  RowCost tm64 = row_cost(reg, &g, c, llama, ATTN_FLASH, "engines/trtllm.json",
                          64, 4096, true, "flash_attention");
  RowCost xm64 = row_cost(reg, &g, c, llama, ATTN_FLASH,
                          "engines/trtllm-xqa.json", 64, 4096, true,
                          "flash_attention");
  assert_double_exact(tm64.kc.bytes, xm64.kc.bytes);
  assert_double_exact(tm64.kc.time, xm64.kc.time);
  calib_free(c);
  reg_free(reg);
  db_free(db);
}

static void test_calib_engines_load(void **state) {
  (void)state;
  Engine *v = load_engine("engines/vllm.json");
  assert_string_equal(v->id, "vllm");
  assert_int_equal(v->attention, ATTN_FLASH);
  assert_true(v->causal_skip && v->l2_kv_reuse);
  assert_int_equal(v->nfusions, 5);
  assert_string_equal(v->fusions[0].kernel, "qkv_proj");
  assert_int_equal(v->fusions[0].nops, 3);
  assert_int_equal(v->fusions[0].drop, FUSE_SHARED_INPUT);
  assert_double_exact(v->gemm8_speedup, 1.25);
  /* NVIDIA's CUDA Graphs blog: 3.8 - 2.9 us in a stream, 3.4 - 2.9 us in a
   * graph; vLLM replays decode as graphs */
  assert_double_near(v->launch_gap[0], 0.9e-6, 1e-15);
  assert_double_near(v->launch_gap[1], 0.5e-6, 1e-15);
  engine_free(v);
  Engine *t = load_engine("engines/trtllm.json");
  assert_string_equal(t->id, "trtllm");
  assert_double_exact(t->gemm8_speedup, 1.25);
  assert_double_near(t->launch_gap[0], 0.9e-6, 1e-15);
  assert_double_near(t->launch_gap[1], 0.9e-6, 1e-15);
  /* generation without XQA: the masked MHA reads K/V per query head */
  assert_int_equal(t->nkvq_ops, 1);
  assert_string_equal(t->kvq_ops[0], "flash_attention");
  assert_false(t->kvq_phase[0]);
  assert_true(t->kvq_phase[1]);
  assert_double_exact(t->kvq_copy, 0);
  assert_true(engine_kv_per_query_head(t, "flash_attention", true));
  assert_false(engine_kv_per_query_head(t, "flash_attention", false));
  engine_free(t);
  Engine *x = load_engine("engines/trtllm-xqa.json");
  assert_string_equal(x->id, "trtllm-xqa");
  assert_int_equal(x->nkvq_ops, 0); /* XQA: once per KV head */
  assert_false(engine_kv_per_query_head(x, "flash_attention", true));
  assert_int_equal(x->nfusions, 5);
  engine_free(x);
  Engine *h = load_engine("engines/hf-eager.json");
  assert_int_equal(h->nfusions, 0);
  bool norm = false;
  for (int i = 0; i < h->ncosts; i++)
    if (strcmp(h->costs[i].op, "input_layernorm") == 0) {
      norm = true;
      /* LlamaRMSNorm.forward: to(float32), pow, mean, + eps, rsqrt, *,
       * to(dtype), * weight */
      assert_double_exact(h->costs[i].launches, 8);
      assert_double_exact(h->costs[i].traffic, 9);
    }
  assert_true(norm);
  assert_double_near(h->host_launch, 23e-6, 1e-15);
  /* repeat_kv: K and V copied per query head before both matmuls */
  assert_int_equal(h->nkvq_ops, 2);
  assert_true(h->kvq_phase[0] && h->kvq_phase[1]);
  assert_double_exact(h->kvq_copy, 1);
  assert_true(engine_kv_per_query_head(h, "sv_matmul", false));
  engine_free(h);
}

static void expect_calib_error(const char *text, const char *msg, int line) {
  Error err;
  err_clear(&err);
  Calib *c = calib_load_text("x.json", text, strlen(text), &err);
  assert_null(c);
  assert_true(err.set);
  if (!strstr(err.msg, msg))
    print_error("message '%s' lacks '%s'\n", err.msg, msg);
  assert_non_null(strstr(err.msg, msg));
  assert_string_equal(err.file, "x.json");
  if (line)
    assert_int_equal(err.line, line);
}

static void test_calib_bad_files(void **state) {
  (void)state;
  const char *ok_kinds =
      "\"gemm\": {\"launch_us\": 1, \"compute_eff\": 0.8, \"memory_eff\": "
      "0.8},\n"
      "\"bgemm\": {\"launch_us\": 1, \"compute_eff\": 0.8, \"memory_eff\": "
      "0.8},\n"
      "\"attention\": {\"launch_us\": 1, \"compute_eff\": 0.8, \"memory_eff\": "
      "0.8},\n"
      "\"norm\": {\"launch_us\": 1, \"memory_eff\": 0.5},\n"
      "\"add\": {\"launch_us\": 1, \"memory_eff\": 0.5},\n"
      "\"act\": {\"launch_us\": 1, \"memory_eff\": 0.5},\n"
      "\"rope\": {\"launch_us\": 1, \"memory_eff\": 0.5},\n"
      "\"softmax\": {\"launch_us\": 1, \"memory_eff\": 0.5},\n"
      "\"gather\": {\"launch_us\": 1, \"memory_eff\": 0.5},\n";
  char buf[4096];
  /* a good file loads */
  snprintf(buf, sizeof(buf),
           "{\"format\": \"lm-predictor-calibration\", \"hardware\": \"x\",\n"
           "\"sources\": [\"s\"], \"kernels\": {\n%s"
           "\"elementwise\": {\"launch_us\": 1, \"memory_eff\": 0.5}}}\n",
           ok_kinds);
  Error err;
  err_clear(&err);
  Calib *c = calib_load_text("x.json", buf, strlen(buf), &err);
  assert_non_null(c);
  assert_double_exact(c->k[KK_ELEMENTWISE].launch, 1e-6);
  calib_free(c);
  /* a missing kind */
  snprintf(buf, sizeof(buf),
           "{\"format\": \"lm-predictor-calibration\", \"hardware\": \"x\",\n"
           "\"sources\": [\"s\"], \"kernels\": {\n%s\"add\": 1}}\n",
           "");
  expect_calib_error(buf, "a kernel kind's entry must be an object", 3);
  snprintf(buf, sizeof(buf),
           "{\"format\": \"lm-predictor-calibration\", \"hardware\": \"x\",\n"
           "\"sources\": [\"s\"], \"kernels\": {\n%s\"elementwise\": "
           "{\"launch_us\": 1, \"memory_eff\": -0.5}}}\n",
           ok_kinds);
  expect_calib_error(buf, "memory_eff must lie in [0.01, 1.5], not -0.5", 12);
  /* overlap is a fraction of the smaller term: [0, 1]; the wall slack a
   * non-negative time */
  snprintf(buf, sizeof(buf),
           "{\"format\": \"lm-predictor-calibration\", \"hardware\": \"x\",\n"
           "\"sources\": [\"s\"], \"kernels\": {\n%s\"elementwise\": "
           "{\"launch_us\": 1, \"memory_eff\": 0.5}}}\n",
           ok_kinds);
  char *bad = tu_replace(buf, "\"compute_eff\": 0.8, \"memory_eff\": 0.8},\n\"bgemm",
                         "\"compute_eff\": 0.8, \"overlap\": 1.5, \"memory_eff\": "
                         "0.8},\n\"bgemm");
  expect_calib_error(bad, "overlap must lie in [0, 1], not 1.5", 3);
  free(bad);
  bad = tu_replace(buf, "\"memory_eff\": 0.5}}}",
                   "\"memory_eff\": 0.5, \"wall_slack_us\": -1}}}");
  expect_calib_error(bad, "wall_slack_us must lie in [0, 1e+06], not -1", 12);
  free(bad);
  snprintf(buf, sizeof(buf),
           "{\"format\": \"lm-predictor-calibration\", \"hardware\": \"x\",\n"
           "\"sources\": [\"s\"], \"kernels\": {\n%s\"elementwise\": "
           "{\"launch_us\": 1, \"memory_eff\": 0.5}, \"tensor\": {}}}\n",
           ok_kinds);
  expect_calib_error(buf, "unknown kernel kind 'tensor'", 12);
  snprintf(buf, sizeof(buf),
           "{\"format\": \"lm-predictor-calibration\", \"hardware\": \"x\",\n"
           "\"sources\": [\"s\"], \"kernels\": {\n%s}}\n",
           ok_kinds);
  /* trailing comma: a syntax error, located */
  expect_calib_error(buf, "", 0);
  snprintf(buf, sizeof(buf),
           "{\"format\": \"lm-predictor-calibration\", \"hardware\": \"x\",\n"
           "\"sources\": [\"s\"], \"kernels\": {\"norm\": {\"launch_us\": 1, "
           "\"memory_eff\": 0.5}}}\n");
  expect_calib_error(buf, "no entry for kernel kind 'gemm'", 0);
  expect_calib_error("{\"format\": \"hardware\"}", "format must be", 1);
}

/* engine_load_text("e.json", text) fails with msg, at line (0: any) */
static void expect_engine_error(const char *text, const char *msg, int line) {
  Error err;
  err_clear(&err);
  assert_null(engine_load_text("e.json", text, strlen(text), &err));
  assert_non_null(strstr(err.msg, msg));
  if (line)
    assert_int_equal(err.line, line);
}

static void test_calib_bad_engine(void **state) {
  (void)state;
  const char *t = "{\"format\": \"lm-predictor-engine\", \"engine\": \"e\", "
                  "\"name\": \"E\",\n"
                  " \"sources\": [\"s\"],\n"
                  " \"attention\": {\"impl\": \"flash\", \"kernel\": \"k\", "
                  "\"causal_skip\": true,\n"
                  "   \"l2_kv_reuse\": false, \"q_tile\": 128},\n"
                  " \"fusions\": [{\"kernel\": \"k\", \"ops\": [\"a\", \"b\"], "
                  "\"kind\": \"norm\",\n"
                  "   \"drop\": \"everything\", \"why\": \"w\"}]}\n";
  Error err;
  expect_engine_error(t,
                      "drop is shared_input, intermediate or "
                      "intermediate_read, not 'everything'",
                      6);
  char *u = tu_replace(t, "\"everything\"", "\"intermediate\"");
  err_clear(&err);
  Engine *e = engine_load_text("e.json", u, strlen(u), &err);
  assert_non_null(e);
  assert_false(e->l2_kv_reuse);
  engine_free(e);
  char *w = tu_replace(u, "\"q_tile\": 128", "\"q_tile\": 0");
  expect_engine_error(w, "q_tile must lie in [1, 4096], not 0", 4);
  /* gemm_8bit: optional; its speedup lies in [1, 8] */
  char *g = tu_replace(u, " \"sources\": [\"s\"],\n",
                       " \"sources\": [\"s\"], \"gemm_8bit\": {\"speedup_over_16bit\": "
                       "0.5,\n \"why\": \"w\", \"source\": \"s\"},\n");
  expect_engine_error(g, "speedup_over_16bit must lie in [1, 8], not 0.5", 2);
  char *g2 = tu_replace(g, "0.5", "1.5");
  err_clear(&err);
  e = engine_load_text("e.json", g2, strlen(g2), &err);
  assert_non_null(e);
  assert_double_exact(e->gemm8_speedup, 1.5);
  assert_double_exact(e->launch_gap[0], 0); /* none given */
  engine_free(e);
  /* launch_gap: optional; both phases, a why and a source */
  char *lg = tu_replace(u, " \"sources\": [\"s\"],\n",
                        " \"sources\": [\"s\"], \"launch_gap\": {\"prefill_us\": 0.9,\n"
                        " \"why\": \"w\", \"source\": \"s\"},\n");
  expect_engine_error(lg, "missing required member 'decode_us'", 0);
  char *lg2 = tu_replace(lg, "0.9,", "0.9, \"decode_us\": -1,");
  expect_engine_error(lg2, "decode_us must lie in [0, 1000], not -1", 2);
  char *lg3 = tu_replace(lg2, "-1", "0.5");
  err_clear(&err);
  e = engine_load_text("e.json", lg3, strlen(lg3), &err);
  assert_non_null(e);
  assert_double_near(e->launch_gap[0], 0.9e-6, 1e-15);
  assert_double_near(e->launch_gap[1], 0.5e-6, 1e-15);
  engine_free(e);
  /* host: optional; launch_us in [0, 10000], a why and a source */
  char *h = tu_replace(u, " \"sources\": [\"s\"],\n",
                       " \"sources\": [\"s\"], \"host\": {\"launch_us\": -2,\n"
                       " \"why\": \"w\", \"source\": \"s\"},\n");
  expect_engine_error(h, "launch_us must lie in [0, 10000], not -2", 2);
  char *h2 = tu_replace(h, "-2", "23");
  err_clear(&err);
  e = engine_load_text("e.json", h2, strlen(h2), &err);
  assert_non_null(e);
  assert_double_near(e->host_launch, 23e-6, 1e-15);
  assert_double_exact(engine_step_time(e, true, 8), 0); /* no step given */
  engine_free(e);
  /* step: optional; prefill_us and decode_us in [0, 1e6], per_seq_us in
   * [0, 1e4], a why and a source */
  char *st = tu_replace(u, " \"sources\": [\"s\"],\n",
                        " \"sources\": [\"s\"], \"step\": {\"prefill_us\": 3000,\n"
                        " \"decode_us\": 1000, \"why\": \"w\", \"source\": \"s\"},\n");
  expect_engine_error(st, "missing required member 'per_seq_us'", 0);
  char *st2 = tu_replace(st, "1000,", "1000, \"per_seq_us\": 20000,");
  expect_engine_error(st2, "per_seq_us must lie in [0, 10000], not 20000", 3);
  char *st3 = tu_replace(st2, "20000", "100");
  err_clear(&err);
  e = engine_load_text("e.json", st3, strlen(st3), &err);
  assert_non_null(e);
  /* by hand: a prefill step of 4 sequences waits 3000 + 4 x 100 = 3400 us
   * of host time, a decode step 1000 + 4 x 100 = 1400 us; one sequence's
   * decode step 1100 us */
  assert_double_near(engine_step_time(e, false, 4), 3400e-6, 1e-15);
  assert_double_near(engine_step_time(e, true, 4), 1400e-6, 1e-15);
  assert_double_near(engine_step_time(e, true, 1), 1100e-6, 1e-15);
  assert_double_exact(engine_step_time(NULL, true, 4), 0);
  engine_free(e);
  free(st);
  free(st2);
  free(st3);
  /* all_reduce: an engine's own kernel needs within_node and rules, each
   * rule its group sizes from 2; "nccl" takes neither */
  char *a =
      tu_replace(u, " \"sources\": [\"s\"],\n",
                 " \"sources\": [\"s\"], \"all_reduce\": {\"kernel\": \"k\",\n"
                 " \"within_node\": true, \"why\": \"w\", \"source\": \"s\",\n"
                 " \"when\": [{\"gpus\": [1], \"below_bytes\": 100, "
                 "\"needs_nvlink\": true}]},\n");
  expect_engine_error(a, "a group size is an integer from 2", 4);
  char *a2 = tu_replace(a, "[1]", "[2, 4]");
  err_clear(&err);
  e = engine_load_text("e.json", a2, strlen(a2), &err);
  assert_non_null(e);
  /* below 100 bytes on 2 or 4 GPUs with NVLink in one node: its kernel */
  assert_string_equal(engine_all_reduce_kernel(e, 4, 99, true, true), "k");
  assert_string_equal(engine_all_reduce_kernel(e, 4, 100, true, true), "nccl");
  assert_string_equal(engine_all_reduce_kernel(e, 4, 99, true, false), "nccl");
  assert_string_equal(engine_all_reduce_kernel(e, 4, 99, false, true), "nccl");
  assert_string_equal(engine_all_reduce_kernel(e, 8, 99, true, true), "nccl");
  engine_free(e);
  char *a3 = tu_replace(a2, "\"k\",\n \"within_node\": true,", "\"nccl\",");
  /* a line fewer: "when" is on the third */
  expect_engine_error(a3, "kernel \"nccl\" is the default: it takes no when",
                      3);
  char *a4 = tu_replace(a2, " \"within_node\": true,", "");
  expect_engine_error(a4, "missing required member 'within_node'", 0);
  /* attention.kv_per_query_head: ops, phases ("prefill", "decode"),
   * copy_launches, why, source; errors located in the attention object */
  char *k = tu_replace(u, "\"q_tile\": 128}",
                       "\"q_tile\": 128,\n \"kv_per_query_head\": {\"ops\": "
                       "[\"qk_matmul\"],\n \"phases\": [\"generation\"], "
                       "\"copy_launches\": 1, \"why\": \"w\", \"source\": \"s\"}}");
  expect_engine_error(k, "a phase is \"prefill\" or \"decode\"", 6);
  char *k2 = tu_replace(k, "\"generation\"", "\"decode\"");
  err_clear(&err);
  e = engine_load_text("e.json", k2, strlen(k2), &err);
  assert_non_null(e);
  assert_true(engine_kv_per_query_head(e, "qk_matmul", true));
  assert_false(engine_kv_per_query_head(e, "qk_matmul", false));
  assert_false(engine_kv_per_query_head(e, "sv_matmul", true));
  assert_double_exact(e->kvq_copy, 1);
  engine_free(e);
  char *k3 = tu_replace(k2, "\"copy_launches\": 1", "\"copy_launches\": -1");
  expect_engine_error(k3, "copy_launches must lie in [0, 100], not -1", 6);
  char *k4 = tu_replace(k2, "[\"qk_matmul\"]", "[]");
  expect_engine_error(k4, "ops must be a non-empty array", 5);
  free(k);
  free(k2);
  free(k3);
  free(k4);
  free(a);
  free(a2);
  free(a3);
  free(a4);
  free(h);
  free(h2);
  free(lg);
  free(lg2);
  free(lg3);
  free(g);
  free(g2);
  free(u);
  free(w);
}

static void test_calib_fallback(void **state) {
  (void)state;
  Error err;
  err_clear(&err);
  Calib *c = calib_for_gpu("calibration", "h200", &err);
  assert_non_null(c);
  assert_true(c->fallback);
  assert_string_equal(c->hw_id, "h100-sxm");
  assert_non_null(strstr(c->note, "GH100"));
  calib_free(c);
  c = calib_for_gpu("calibration", "a100-sxm-80gb", &err);
  assert_non_null(c);
  assert_false(c->fallback);
  calib_free(c);
  /* every GPU of hardware.json has its own calibration or a fallback */
  GpuDb *db = gpudb_load("hardware.json", &err);
  assert_non_null(db);
  for (int i = 0; i < db->n; i++) {
    err_clear(&err);
    c = calib_for_gpu("calibration", db->gpus[i].id, &err);
    if (!c)
      err_print(stderr, &err);
    assert_non_null(c);
    calib_free(c);
  }
  gpudb_free(db);
  err_clear(&err);
  assert_null(calib_for_gpu("calibration", "no-such-gpu", &err));
  assert_non_null(strstr(err.msg, "no calibration for GPU 'no-such-gpu'"));
}

/* calib_predict's loop runs on the packed kernels (KernInfo, MemberInfo);
 * calib_kernel_cost walks the CalibPlan's per-row arrays (lead, next,
 * kind, ...) one kernel at a time, as --explain shows it. The phase
 * total and every row's time from the two must be the same doubles: each
 * kernel's time shared among its rows in proportion to their roofline
 * times (equally when those are all 0), summed count x time in row order
 * within kernels in lead order, a row that runs in the other phase 0, and
 * a host-bound engine's phase raised to its launches' host time. Models:
 * Llama-2-7B, DeepSeek-V2-Lite (MLA's one-phase rows, experts),
 * Nemotron-H (Mamba), gpt-oss-20b (MXFP4 experts: x_bits), Mistral-7B
 * (grouped-query: the engines' K/V reads per query head and copies); both
 * attention implementations, the four engines, H100 and A100, 16-, 8- and 4-bit
 * weights, prefill and decode at two shapes. */
static void test_calib_packed_loop_equals_kernel_cost(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  Db *db = tu_load_db("module_db.json");
  Registry *reg = db ? reg_load(db, "generated_modules", &e) : NULL;
  GpuDb *gpus = gpudb_load("hardware.json", &e);
  assert_non_null(reg);
  assert_non_null(gpus);
  static const char *const models[] = {
      "models/llama-2-7b-hf.json", "test/data/configs/deepseek-v2-lite-chat.json",
      "test/data/configs/nemotron-h-8b-base-8k.json",
      "test/data/configs/gpt-oss-20b.json",
      "test/data/configs/mistral-7b-v0.1.json"};
  static const char *const engines[] = {
      "engines/vllm.json", "engines/trtllm.json", "engines/trtllm-xqa.json",
      "engines/hf-eager.json"};
  /* b200: the softmax the matmuls hide (attn_softmax_hidden); l40s: a
   * by_gpu 8-bit speedup */
  static const char *const hw[] = {"h100-sxm", "a100-sxm-80gb", "b200",
                                   "l40s"};
  static const int wbits[] = {16, 8, 4};
  static const double shapes[][2] = {{1, 17}, {24, 1000}}; /* B, S */
  int compared = 0;
  for (size_t mi = 0; mi < LM_ARRAY_LEN(models); mi++) {
    ModelOpenOpts mo = {.arch_dir = "models/arch"};
    Model *m = model_open(models[mi], &mo, reg, &e);
    if (!m)
      err_print(stderr, &e);
    assert_non_null(m);
    for (int a = 0; a < 2; a++) {
      Plan *p = plan_build(m, a ? ATTN_FLASH : ATTN_EAGER, &e);
      assert_non_null(p);
      Values *v = values_new(p);
      double *mine = xcalloc((size_t)p->nrows + 1, sizeof(double));
      double *ref = xcalloc((size_t)p->nrows + 1, sizeof(double));
      for (size_t ei = 0; ei < LM_ARRAY_LEN(engines); ei++) {
        Engine *eng = engine_load(engines[ei], &e);
        assert_non_null(eng);
        CalibPlan *cp = calib_plan(p, eng);
        for (size_t hi = 0; hi < LM_ARRAY_LEN(hw); hi++) {
          const Gpu *g = gpudb_find(gpus, hw[hi]);
          Calib *c = calib_for_gpu("calibration", hw[hi], &e);
          assert_non_null(g);
          assert_non_null(c);
          for (size_t wi = 0; wi < LM_ARRAY_LEN(wbits); wi++) {
            Peaks pk;
            assert_int_equal(roof_peaks(g, wbits[wi], 16, 16, FMT8_AUTO, &pk,
                                        &e), 0);
            for (size_t si = 0; si < LM_ARRAY_LEN(shapes); si++)
              for (int dec = 0; dec < 2; dec++) {
                double run[V_COUNT] = {0};
                run[V_B] = shapes[si][0];
                run[V_S] = run[V_L] = shapes[si][1];
                run[V_T] = dec ? 1 : shapes[si][1];
                run[V_DECODE] = dec;
                run[V_W_BYTES] = run[V_X_BYTES] = wbits[wi] / 8.0;
                run[V_A_BYTES] = run[V_KV_BYTES] = run[V_E_BYTES] = 2;
                run[V_SRAM_BYTES] = g->smem_per_sm;
                run[V_EXPERT_BALANCE] = 1;
                assert_int_equal(plan_eval(p, run, v, &e), 0);
                PhaseResult ph = {.plan = p, .vals = v};
                phase_roofline(&ph, &pk, g->bandwidth);
                double total =
                    calib_predict(cp, c, eng, g, &pk, v, run, ph.time, mine);
                /* the reference: kernel by kernel, calib_kernel_cost */
                double rt = 0, launches = 0;
                for (int r = 0; r < p->nrows; r++) {
                  if (cp->lead[r] != r)
                    continue;
                  if (v->off && v->off[r] && cp->next[r] < 0) {
                    ref[r] = 0;
                    continue;
                  }
                  KernelCost kc;
                  calib_kernel_cost(cp, c, eng, g, &pk, v, run, ph.time, r,
                                    &kc);
                  launches += p->rows[r].count * kc.launches;
                  for (int q = r; q >= 0; q = cp->next[q]) {
                    ref[q] = kc.nrows == 1    ? kc.time
                             : kc.roof_sum > 0 ? ph.time[q] *
                                                    (kc.time / kc.roof_sum)
                                              : kc.time / kc.nrows;
                    rt += p->rows[q].count * ref[q];
                  }
                }
                double host = eng->host_launch * launches;
                if (host > rt && rt > 0) {
                  for (int r = 0; r < p->nrows; r++)
                    ref[r] *= host / rt;
                  rt = host;
                }
                assert_true(rt > 0);
                assert_memory_equal(&total, &rt, sizeof(double));
                assert_memory_equal(mine, ref,
                                    sizeof(double) * (size_t)p->nrows);
                phase_free_times(&ph);
                compared++;
              }
          }
          calib_free(c);
        }
        calib_plan_free(cp);
        engine_free(eng);
      }
      free(mine);
      free(ref);
      values_free(v);
      plan_free(p);
    }
    model_free(m);
  }
  assert_int_equal(compared, 5 * 2 * 4 * 4 * 3 * 2 * 2);
  gpudb_free(gpus);
  reg_free(reg);
  db_free(db);
}

/* Found by fuzz_calib/fuzz_engine: text[0..len) need not end in a NUL, and
 * a syntax error's caret context was read past len up to the next newline
 * (a heap overflow on a fuzzer's buffer). Here len stops at "{ bad" and
 * the bytes after it, "}PAST", must not reach the error. */
static void test_calib_text_is_bounded(void **state) {
  (void)state;
  static const char buf[] = "{ bad}PAST\n";
  Error err;
  err_clear(&err);
  assert_null(calib_load_text("x.json", buf, 5, &err));
  assert_true(err.set);
  assert_null(strstr(err.context, "PAST"));
  err_clear(&err);
  assert_null(engine_load_text("e.json", buf, 5, &err));
  assert_true(err.set);
  assert_null(strstr(err.context, "PAST"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_calib_shipped_a100),
      cmocka_unit_test(test_calib_hand_a100),
      cmocka_unit_test(test_calib_flash_softmax_units),
      cmocka_unit_test(test_calib_gemm8_by_gpu),
      cmocka_unit_test(test_calib_waves),
      cmocka_unit_test(test_calib_flash_causal_l2),
      cmocka_unit_test(test_calib_flash_per_query_head),
      cmocka_unit_test(test_calib_kv_per_query_head_rows),
      cmocka_unit_test(test_calib_engines_load),
      cmocka_unit_test(test_calib_bad_files),
      cmocka_unit_test(test_calib_bad_engine),
      cmocka_unit_test(test_calib_fallback),
      cmocka_unit_test(test_calib_packed_loop_equals_kernel_cost),
      cmocka_unit_test(test_calib_text_is_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
