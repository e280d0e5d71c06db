/* test_predict.c: one whole prediction (runtime/predict.c) on the tiny
 * Llama (test/data/tiny_llama.json), whose prefill totals test_plan.c
 * derives by hand at B = 2, S = 4:
 *   flops 25096; bytes 2680 weight + 6816 act read + 5416 act write
 *   + 256 KV read + 256 KV write = 15424;
 * and whose footprint test_roofline.c derives: 2712 bytes of weights +
 * 512 per sequence at S = 4 (128 KV cache + 384 activations).
 * The GPUs are made up so that every row is on one side of the roofline
 * and its time is exactly its flops or its bytes. */
#include "testutil.h"
#include "runtime.h"
#include "calib.h"

static Db *db;
static Registry *reg;
static Model *tiny;
static Plan *eager;

static int group_setup(void **state) {
  (void)state;
  db = tu_load_db("module_db.json");
  reg = reg_load(db, "generated_modules", NULL);
  tiny = reg ? model_load("test/data/tiny_llama.json", reg, NULL) : NULL;
  eager = tiny ? plan_build(tiny, ATTN_EAGER, NULL) : NULL;
  return eager ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  plan_free(eager);
  model_free(tiny);
  reg_free(reg);
  db_free(db);
  return 0;
}

static PredictOpts tiny_opts(void) {
  PredictOpts o;
  predict_defaults(&o);
  o.batch = 2;
  o.seq_len = 4;
  return o;
}

static void test_predict_defaults(void **state) {
  (void)state;
  PredictOpts o;
  predict_defaults(&o); /* lmrun's: DESIGN.md §7 */
  assert_double_exact(o.batch, 1);
  assert_double_exact(o.seq_len, 2048);
  assert_int_equal(o.w_bits, 16);
  assert_int_equal(o.a_bits, 16);
  assert_int_equal(o.kv_bits, 16);
  assert_int_equal(o.e_bits, 16);
  assert_int_equal(o.fmt8, FMT8_AUTO);
  assert_int_equal(o.attn, ATTN_EAGER);
  assert_string_equal(o.hardware, "h100-sxm");
  assert_int_equal(o.phase, PHASE_ALL);
  assert_int_equal(o.format, FMT_TABLE);
  assert_true(o.max_batch);
}

/* Bandwidth 1 byte/s and a huge peak: every row is memory bound and takes
 * its bytes in seconds, so TTFT = prefill's total bytes = 15424 s. */
static void test_predict_memory_bound_ttft(void **state) {
  (void)state;
  Gpu g = {.id = "slow-memory", .fp16_flops = 1e30, .bandwidth = 1,
           .memory = 1e18, .smem_per_sm = 233472};
  PredictOpts o = tiny_opts();
  Prediction p = {0};
  Error e;
  err_clear(&e);
  assert_int_equal(predict(eager, &g, &o, &p, &e), 0);
  assert_double_exact(p.summary.ttft, 15424);
  assert_double_exact(p.phase[0].total_time, 15424);
  for (int r = 0; r < eager->nrows; r++)
    assert_int_equal(p.phase[0].bound[r], BOUND_MEMORY);
  assert_double_exact(p.summary.tokens_per_s, 2 / p.summary.tpot);
  /* the run variables: prefill T = S, decode T = 1, both L = S */
  assert_double_exact(p.run[0][V_T], 4);
  assert_double_exact(p.run[1][V_T], 1);
  assert_double_exact(p.run[1][V_L], 4);
  assert_double_exact(p.run[0][V_SRAM_BYTES], 233472);
  assert_double_exact(p.phase[1].tokens, 1);
  assert_double_exact(p.phase[1].kv_len, 4);
  prediction_free(&p);
}

/* Peak 1 FLOP/s and a huge bandwidth: TTFT = prefill's FLOPs = 25096 s
 * (rows without FLOPs take bytes / 1e30, lost in the sum). */
static void test_predict_compute_bound_ttft(void **state) {
  (void)state;
  Gpu g = {.id = "slow-math", .fp16_flops = 1, .bandwidth = 1e30,
           .memory = 1e18, .smem_per_sm = 233472};
  PredictOpts o = tiny_opts();
  Prediction p = {0};
  assert_int_equal(predict(eager, &g, &o, &p, NULL), 0);
  assert_double_exact(p.summary.ttft, 25096);
  prediction_free(&p);
}

/* The footprint comes from the two phase evaluations and the largest
 * batch from the bisection: room for exactly 10 sequences. */
static void test_predict_footprint_and_max_batch(void **state) {
  (void)state;
  Gpu g = {.id = "small", .fp16_flops = 1e12, .bandwidth = 1e12,
           .memory = 2712 + 512 * 10, .smem_per_sm = 233472};
  PredictOpts o = tiny_opts();
  Prediction p = {0};
  assert_int_equal(predict(eager, &g, &o, &p, NULL), 0);
  assert_double_exact(p.summary.mem.weights, 2712);
  assert_double_exact(p.summary.mem.kv_cache, 256);
  assert_double_exact(p.summary.mem.act, 768);
  assert_double_exact(p.summary.mem.total, 2712 + 512 * 2);
  assert_double_exact(p.summary.mem.capacity, 2712 + 512 * 10);
  assert_true(p.summary.mem.fits);
  assert_double_exact(p.summary.mem.max_batch, 10);
  /* without the search: the same footprint, no largest batch */
  o.max_batch = false;
  assert_int_equal(predict(eager, &g, &o, &p, NULL), 0);
  assert_double_exact(p.summary.mem.total, 2712 + 512 * 2);
  assert_double_exact(p.summary.mem.max_batch, 0);
  /* B = 11 does not fit */
  o.batch = 11;
  assert_int_equal(predict(eager, &g, &o, &p, NULL), 0);
  assert_false(p.summary.mem.fits);
  prediction_free(&p);
  /* first without the search, then with it (its buffers made then) */
  Prediction q = {0};
  o.batch = 2;
  assert_int_equal(predict(eager, &g, &o, &q, NULL), 0);
  assert_null(q.scratch[0]);
  o.max_batch = true;
  assert_int_equal(predict(eager, &g, &o, &q, NULL), 0);
  assert_double_exact(q.summary.mem.max_batch, 10);
  prediction_free(&q);
}

/* Predicting again into the same struct reuses its buffers; a new plan
 * gets new ones. */
static void test_predict_reuses_buffers(void **state) {
  (void)state;
  Gpu g = {.id = "g", .fp16_flops = 1e12, .bandwidth = 1e12, .memory = 1e18,
           .smem_per_sm = 233472};
  PredictOpts o = tiny_opts();
  Prediction p = {0};
  assert_int_equal(predict(eager, &g, &o, &p, NULL), 0);
  Values *v0 = p.vals[0];
  double *t0 = p.phase[0].time;
  double ttft = p.summary.ttft;
  o.batch = 3;
  assert_int_equal(predict(eager, &g, &o, &p, NULL), 0);
  assert_ptr_equal(p.vals[0], v0);
  assert_ptr_equal(p.phase[0].time, t0);
  assert_true(p.summary.ttft > ttft);
  o.batch = 2;
  assert_int_equal(predict(eager, &g, &o, &p, NULL), 0);
  assert_double_exact(p.summary.ttft, ttft);
  Plan *flash = plan_build(tiny, ATTN_FLASH, NULL);
  o.attn = ATTN_FLASH;
  assert_int_equal(predict(flash, &g, &o, &p, NULL), 0);
  assert_int_equal(p.phase[0].plan->nrows, flash->nrows);
  assert_ptr_equal(p.plan, flash);
  prediction_free(&p);
  plan_free(flash);
}

/* Predicting again into the same Prediction (a sweep) re-prices only
 * decode's rows that read the KV length when only S changed: every value
 * equals a fresh prediction's, over changes of S, B, widths, GPU and the
 * time model, on Llama-2-7B calibrated with vLLM's kernels. */
static void same_prediction(const Prediction *a, const Prediction *b) {
  const Plan *plan = a->plan;
  assert_double_exact(a->summary.ttft, b->summary.ttft);
  assert_double_exact(a->summary.tpot, b->summary.tpot);
  assert_double_exact(a->summary.ttft_roofline, b->summary.ttft_roofline);
  assert_double_exact(a->summary.tpot_roofline, b->summary.tpot_roofline);
  assert_double_exact(a->summary.mem.total, b->summary.mem.total);
  assert_double_exact(a->summary.mem.kv_cache, b->summary.mem.kv_cache);
  for (int i = 0; i < 2; i++) {
    const PhaseResult *x = &a->phase[i], *y = &b->phase[i];
    assert_double_exact(x->total_time, y->total_time);
    assert_true((x->pred == NULL) == (y->pred == NULL));
    if (x->pred)
      assert_double_exact(x->pred_total, y->pred_total);
    for (int r = 0; r < plan->nrows; r++) {
      assert_memory_equal(a->vals[i]->row[r], b->vals[i]->row[r],
                          sizeof(double) * M_TRAFFIC);
      assert_double_exact(x->time[r], y->time[r]);
      assert_int_equal(x->bound[r], y->bound[r]);
      assert_ptr_equal(x->peak[r], y->peak[r]);
      if (x->pred)
        assert_double_exact(x->pred[r], y->pred[r]);
    }
    assert_memory_equal(a->vals[i]->state, b->vals[i]->state,
                        sizeof(double) * (M_COUNT - M_TRAFFIC));
    assert_memory_equal(a->vals[i]->args, b->vals[i]->args,
                        sizeof(double) * (size_t)plan->nargs);
  }
}

/* A plan built where a freed plan was (malloc hands its address to the
 * next plan of the same size: it did so in test_parallel's
 * test_tiny_moe_tp2_ep2 when the JIT cache was cold) is a new plan to a
 * Prediction: its buffers, the decode it would re-use and the parameter
 * count are the new plan's. The swap of the two plans' contents below is
 * that reuse made deterministic: Llama-2-7B's plan is predicted, then the
 * tiny Llama's plan takes its address. The tiny Llama's weights are 2712
 * bytes (test_plan.c derives them by hand; test_roofline.c too), and
 * every value equals a fresh prediction's. */
static void test_predict_plan_at_a_freed_plans_address(void **state) {
  (void)state;
  Gpu g = {.id = "g", .fp16_flops = 1e12, .bandwidth = 1e12, .memory = 1e18,
           .smem_per_sm = 233472};
  Model *m = model_load("models/llama-2-7b-hf.json", reg, NULL);
  assert_non_null(m);
  Plan *at = plan_build(m, ATTN_EAGER, NULL);
  Plan *other = plan_build(tiny, ATTN_EAGER, NULL);
  assert_non_null(at);
  assert_non_null(other);
  /* the tiny plan's buffers fit in the 7B plan's (no overflow even when
   * they are wrongly kept) */
  assert_true(other->nrows <= at->nrows && other->nargs <= at->nargs);
  PredictOpts o = tiny_opts();
  Prediction p = {0};
  assert_int_equal(predict(at, &g, &o, &p, NULL), 0);
  assert_true(p.summary.mem.weights > 1e9);
  Plan t = *at; /* the tiny plan now lives at the 7B plan's address */
  *at = *other;
  *other = t;
  assert_int_equal(predict(at, &g, &o, &p, NULL), 0);
  assert_double_exact(p.summary.mem.weights, 2712);
  Prediction fresh = {0};
  assert_int_equal(predict(at, &g, &o, &fresh, NULL), 0);
  assert_ptr_equal(p.plan, fresh.plan);
  assert_double_exact(p.parameters, fresh.parameters);
  same_prediction(&p, &fresh);
  prediction_free(&fresh);
  prediction_free(&p);
  plan_free(at);
  plan_free(other);
  model_free(m);
}

static void incremental_decode(const char *engine_file, AttnImpl attn) {
  Model *m = model_load("models/llama-2-7b-hf.json", reg, NULL);
  assert_non_null(m);
  Plan *plan = plan_build(m, attn, NULL);
  GpuDb *gpus = gpudb_load("hardware.json", NULL);
  Calib *cal = calib_for_gpu("calibration", "h100-sxm", NULL);
  Engine *eng = engine_load(engine_file, NULL);
  assert_non_null(plan);
  assert_non_null(gpus);
  assert_non_null(cal);
  assert_non_null(eng);
  const Gpu *h100 = gpudb_find(gpus, "h100-sxm"),
            *a100 = gpudb_find(gpus, "a100-sxm-80gb");
  PredictOpts o;
  predict_defaults(&o);
  o.attn = attn;
  o.max_batch = false;
  o.calib = cal;
  o.engine_data = eng;
  Prediction p = {0};
  /* each step changes one thing; S alone most often */
  const struct {
    double b, s;
    int kv;
    const Gpu *g;
    bool roofline;
  } steps[] = {{1, 128, 16, h100, false},  {1, 129, 16, h100, false},
               {1, 4096, 16, h100, false}, {8, 4096, 16, h100, false},
               {8, 300, 16, h100, false},  {8, 301, 8, h100, false},
               {8, 302, 8, h100, false},   {8, 303, 8, a100, false},
               {8, 304, 8, a100, false},   {8, 305, 8, a100, true},
               {8, 306, 8, a100, true},    {8, 307, 8, a100, false},
               {3, 307, 16, h100, false},  {3, 2, 16, h100, false}};
  for (size_t i = 0; i < LM_ARRAY_LEN(steps); i++) {
    o.batch = steps[i].b;
    o.seq_len = steps[i].s;
    o.kv_bits = steps[i].kv;
    o.roofline = steps[i].roofline;
    assert_int_equal(predict(plan, steps[i].g, &o, &p, NULL), 0);
    Prediction fresh = {0};
    assert_int_equal(predict(plan, steps[i].g, &o, &fresh, NULL), 0);
    same_prediction(&p, &fresh);
    prediction_free(&fresh);
  }
  prediction_free(&p);
  engine_free(eng);
  calib_free(cal);
  gpudb_free(gpus);
  plan_free(plan);
  model_free(m);
}

/* A prediction that reuses the last one's decode rows equals a fresh one:
 * vLLM (flash) and transformers eager, whose host-bound phases rescale
 * every row by the whole phase's launches (so nothing may be reused). */
static void test_predict_incremental_decode(void **state) {
  (void)state;
  incremental_decode("engines/vllm.json", ATTN_FLASH);
  incremental_decode("engines/hf-eager.json", ATTN_EAGER);
}

/* The report shows the phases asked for and names the attention. */
static void test_predict_report(void **state) {
  (void)state;
  Gpu g = {.id = "g", .name = "G", .fp16_flops = 1e12, .bandwidth = 1e12,
           .memory = 1e18, .smem_per_sm = 233472};
  PredictOpts o = tiny_opts();
  Prediction p = {0};
  assert_int_equal(predict(eager, &g, &o, &p, NULL), 0);
  Report r = prediction_report(&p);
  assert_string_equal(r.model, "test/tiny-llama");
  assert_string_equal(r.attention, "eager");
  assert_int_equal(r.nphases, 2);
  assert_string_equal(r.phases[0].name, "prefill");
  assert_string_equal(r.phases[1].name, "decode");
  p.opts.phase = PHASE_DECODE;
  r = prediction_report(&p);
  assert_int_equal(r.nphases, 1);
  assert_string_equal(r.phases[0].name, "decode");
  p.opts.phase = PHASE_PREFILL;
  r = prediction_report(&p);
  assert_int_equal(r.nphases, 1);
  assert_string_equal(r.phases[0].name, "prefill");
  /* no warnings: S within the window, every module validated */
  Buf b;
  buf_init(&b);
  prediction_warnings(&p, &b);
  assert_string_equal(buf_str(&b), "");
  buf_free(&b);
  prediction_free(&p);
}

/* Errors: an unknown GPU names the known ones; a missing 8-bit peak; a
 * parameter out of range. Each leaves a clear message. */
static void test_predict_errors(void **state) {
  (void)state;
  GpuDb gdb = {.gpus = (Gpu[]){{.id = "a", .fp16_flops = 1, .bandwidth = 1,
                                .memory = 1, .smem_per_sm = 233472},
                               {.id = "b", .fp16_flops = 1, .bandwidth = 1,
                                .memory = 1}},
               .n = 2};
  Error e;
  err_clear(&e);
  assert_ptr_equal(predict_gpu(&gdb, "hw.json", "b", &e), &gdb.gpus[1]);
  assert_null(predict_gpu(&gdb, "hw.json", "c", &e));
  assert_string_equal(e.msg, "no GPU 'c' (known: a, b)");
  assert_string_equal(e.file, "hw.json");
  PredictOpts o = tiny_opts();
  o.fmt8 = FMT8_FP8;
  Prediction p = {0};
  err_clear(&e);
  assert_int_equal(predict(eager, &gdb.gpus[0], &o, &p, &e), -1);
  assert_string_equal(e.msg, "a has no FP8 peak in the hardware database");
  /* a parameter out of its range (b has no shared memory): the layer named */
  o.fmt8 = FMT8_AUTO;
  err_clear(&e);
  assert_int_equal(predict(eager, &gdb.gpus[1], &o, &p, &e), -1);
  assert_contains(e.msg, "layer 'model.layers.self_attn' (LlamaAttention): "
                         "parameter 'sram_bytes' evaluates to 0");
  prediction_free(&p);
}

/* -O N prices each decode step from the decode phase's rows, the KV rows
 * re-evaluated: rows of one phase only (Nemotron-H's Mamba scan,
 * DeepSeek's MLA paths) stay off in every step, whether the plan is still
 * interpreted (its first PLAN_FUSE_AFTER evaluations) or fused: the two
 * give the same bits (the interpreted steps once counted the prefill-only
 * rows, which the fused ones never did). */
static void test_predict_steps_interpreted_equal_fused(void **state) {
  (void)state;
  const char *cfgs[] = {"test/data/configs/nemotron-h-8b-base-8k.json",
                        "test/data/configs/deepseek-v2.5.json"};
  Gpu g = {.id = "g", .fp16_flops = 1e15, .bandwidth = 3e12, .memory = 8e10,
           .smem_per_sm = 233472};
  for (size_t i = 0; i < LM_ARRAY_LEN(cfgs); i++) {
    ModelOpenOpts mo = {.arch_dir = "models/arch"};
    Error e;
    err_clear(&e);
    Model *m = model_open(cfgs[i], &mo, reg, &e);
    assert_non_null(m);
    Plan *interp = plan_build(m, ATTN_FLASH, NULL),
         *fused = plan_build(m, ATTN_FLASH, NULL);
    plan_fuse(fused);
    assert_non_null(fused->fused);
    PredictOpts o;
    predict_defaults(&o);
    o.attn = ATTN_FLASH;
    o.seq_len = 512;
    o.output_len = 33;
    o.max_batch = false;
    /* calibrated, as lmrun's default: every row that runs costs a launch */
    Calib *cal = calib_load("calibration/h100-sxm.json", &e);
    Engine *eng = engine_load("engines/vllm.json", &e);
    assert_non_null(cal);
    assert_non_null(eng);
    o.calib = cal;
    o.engine_data = eng;
    Prediction a = {0}, b = {0};
    assert_int_equal(predict(interp, &g, &o, &a, NULL), 0);
    assert_null(interp->fused);
    assert_int_equal(predict(fused, &g, &o, &b, NULL), 0);
    assert_true(a.summary.e2e > a.summary.ttft);
    assert_memory_equal(&a.summary.e2e, &b.summary.e2e, sizeof(double));
    assert_memory_equal(&a.summary.tpot_mean, &b.summary.tpot_mean,
                        sizeof(double));
    assert_memory_equal(&a.summary.decode_sum, &b.summary.decode_sum,
                        sizeof(double));
    prediction_free(&a);
    prediction_free(&b);
    plan_free(interp);
    plan_free(fused);
    model_free(m);
    calib_free(cal);
    engine_free(eng);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_predict_defaults),
      cmocka_unit_test(test_predict_memory_bound_ttft),
      cmocka_unit_test(test_predict_compute_bound_ttft),
      cmocka_unit_test(test_predict_footprint_and_max_batch),
      cmocka_unit_test(test_predict_reuses_buffers),
      cmocka_unit_test(test_predict_incremental_decode),
      cmocka_unit_test(test_predict_plan_at_a_freed_plans_address),
      cmocka_unit_test(test_predict_report),
      cmocka_unit_test(test_predict_errors),
      cmocka_unit_test(test_predict_steps_interpreted_equal_fused),
  };
  return cmocka_run_group_tests_name("predict", tests, group_setup,
                                     group_teardown);
}
