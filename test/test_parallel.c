/* test_parallel.c: runtime/parallel.c (tensor and pipeline parallelism),
 * the -O decode sum (predict.c) and the sweeps and SLO choice of the
 * library (lmpredict.c), on the tiny Llama of test/data/tiny_llama.json:
 * hidden 8, intermediate 16, 2 heads of 4, 1 KV head, 2 layers, vocabulary
 * 10. Its per-layer parameters, by hand (16-bit): input and post-attention
 * norms 8 x 2 = 16 each, q_proj 8 x 8 x 2 = 128, k_proj and v_proj 8 x 4 x
 * 2 = 64, o_proj 128, gate/up/down 8 x 16 x 2 = 256 each: 1184 per layer;
 * embed_tokens 10 x 8 x 2 = 160, rotary 4 / 2 x 4 = 8, norm 16, lm_head
 * 160; 2712 in all. KV cache per layer: 2 x B x 1 x L x 4 x 2 = 16 B L.
 * The made-up GPU is memory bound on every row (bandwidth 1 byte/s, a
 * huge peak), its NVLink carries 1000 bytes/s each way behind a switch,
 * and parallel.json's NVLink step latency is 0.6 us. */
#include "testutil.h"

#include <malloc.h>
#include "lmpredict.h"
#include "runtime.h"

static Db *db;
static Registry *reg;
static Model *tiny;
static Plan *eager;
static ParDb *pdb;
static const Gpu gpu = {.id = "slow",
                        .fp16_flops = 1e30,
                        .bandwidth = 1,
                        .memory = 1e18,
                        .smem_per_sm = 233472,
                        .nvlink_bw = 1000,
                        .nvswitch = true,
                        .gpus_per_node = 8};

static int group_setup(void **state) {
  (void)state;
  db = tu_load_db("module_db.json");
  reg = reg_load(db, "generated_modules", NULL);
  tiny = reg ? model_load("test/data/tiny_llama.json", reg, NULL) : NULL;
  eager = tiny ? plan_build(tiny, ATTN_EAGER, NULL) : NULL;
  pdb = pardb_load("parallel.json", NULL);
  return eager && pdb ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  pardb_free(pdb);
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
  o.max_batch = false;
  return o;
}

/* -O 6: TTFT + the decode steps at KV lengths 5..9, each a prediction of
 * its own at -S L; summed in the same order the sum is the same double. */
static void test_decode_sum_is_step_by_step(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  PredictOpts o = tiny_opts();
  o.output_len = 6;
  Prediction p = {0}, q = {0};
  assert_int_equal(predict(eager, &gpu, &o, &p, &e), 0);
  double sum = 0;
  for (double L = 5; L <= 9; L++) {
    PredictOpts s = tiny_opts();
    s.seq_len = L;
    assert_int_equal(predict(eager, &gpu, &s, &q, &e), 0);
    sum += q.summary.tpot;
  }
  assert_double_exact(p.summary.decode_sum, sum);
  assert_double_exact(p.summary.e2e, p.summary.ttft + sum);
  assert_double_exact(p.summary.tpot_mean, sum / 5);
  assert_double_exact(p.summary.throughput, 2 * 6 / p.summary.e2e);
  /* the footprint holds the cache of KV length 9: 16 x 2 x 9 per layer */
  assert_double_exact(p.summary.mem.kv_cache, 2 * 16 * 2 * 9);
  /* -O 1: no decode step */
  o.output_len = 1;
  assert_int_equal(predict(eager, &gpu, &o, &p, &e), 0);
  assert_double_exact(p.summary.e2e, p.summary.ttft);
  assert_double_exact(p.summary.tpot_mean, 0);
  prediction_free(&p);
  prediction_free(&q);
}

static double ring_ar(double n, double bytes) {
  return 0.6e-6 * 2 * (n - 1) + bytes * 2 * (n - 1) / n / 1000;
}

/* TP = 2: per-GPU parameters, and every communication row by hand. */
static void test_tp2_communication_rows(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  ParPlan *pp = parplan_build(pdb, tiny, reg, ATTN_EAGER, 2, 1, &e);
  assert_non_null(pp);
  assert_int_equal(pp->ncomm, 4);
  PredictOpts o = tiny_opts();
  o.tp = 2;
  Prediction p = {0};
  assert_int_equal(predict_par(pp, pdb, &gpu, &o, &p, &e), 0);
  /* rows in order: embedding all-reduce, o_proj and down_proj all-reduces
   * (once per layer), the lm_head all-gather of the logits */
  static const char *const path[] = {"model.embed_tokens.all_reduce",
                                     "model.layers.self_attn.o_proj.all_reduce",
                                     "model.layers.mlp.down_proj.all_reduce",
                                     "lm_head.all_gather"};
  static const double count[] = {1, 2, 2, 1};
  for (int ph = 0; ph < 2; ph++) {
    double T = ph == 0 ? 4 : 1;
    double hidden = 2 * T * 8 * 2; /* B T hidden a_bytes */
    double logits = 2 * 10 * 2;    /* B vocab a_bytes, the whole vocabulary */
    double want_b[] = {hidden, hidden, hidden, logits};
    double want_t[] = {ring_ar(2, hidden), ring_ar(2, hidden),
                       ring_ar(2, hidden), 0.6e-6 * 1 + logits * 1 / 2 / 1000};
    const PhaseResult *r = &p.phase[ph];
    double lat = r->total_time;
    for (int c = 0; c < 4; c++) {
      assert_string_equal(r->comm[c].path, path[c]);
      assert_double_exact(r->comm[c].count, count[c]);
      assert_double_exact(r->comm_bytes[c], want_b[c]);
      assert_double_near(r->comm_time[c], want_t[c], 1e-12);
      lat += count[c] * want_t[c];
    }
    assert_double_near(r->latency, lat, 1e-12);
  }
  /* per GPU: heads 2 -> 1, KV heads 1 replicated, intermediate 16 -> 8,
   * vocabulary 10 -> 5: per layer 16 + 64 + 64 + 64 + 64 + 16 + 3 x 128 =
   * 672; 2 layers + embedding 80 + rotary 8 + norm 16 + lm_head 80 */
  assert_double_exact(p.summary.mem.weights, 2 * 672 + 80 + 8 + 16 + 80);
  assert_double_exact(p.summary.mem.kv_cache, 2 * 16 * 2 * 4);
  assert_double_exact(p.summary.gpus, 2);
  prediction_free(&p);
  parplan_free(pp);
  /* --tp 4 does not divide 2 heads */
  assert_null(parplan_build(pdb, tiny, reg, ATTN_EAGER, 4, 1, &e));
  assert_non_null(strstr(e.msg, "--tp 4 does not divide num_attention_heads"));
}

/* PP = 2: one layer per stage; stage 0 has the embedding and rotary
 * table, stage 1 the final norm and lm_head. */
static void test_pp2_footprint_and_pipeline(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  ParPlan *pp = parplan_build(pdb, tiny, reg, ATTN_EAGER, 1, 1, &e);
  assert_non_null(pp);
  PredictOpts o = tiny_opts();
  o.pp = 2;
  Prediction p = {0};
  assert_int_equal(predict_par(pp, pdb, &gpu, &o, &p, &e), 0);
  /* stage 0: 160 + 8 + 1184 = 1352; stage 1: 1184 + 16 + 160 = 1360 */
  assert_double_exact(p.summary.mem.weights, 1360);
  assert_double_exact(p.summary.mem.kv_cache, 16 * 2 * 4);
  /* one microbatch: the stages run one after the other, plus the send of
   * B T hidden a_bytes (2 x 4 x 8 x 2 = 128 bytes in prefill) */
  double send = 0.6e-6 + 128.0 / 1000;
  assert_double_exact(p.phase[0].send_bytes, 128);
  assert_double_near(p.phase[0].latency, p.phase[0].total_time + send, 1e-12);
  /* the whole weights on one GPU with pp 1 */
  Prediction q = {0};
  PredictOpts o1 = tiny_opts();
  assert_int_equal(predict(eager, &gpu, &o1, &q, &e), 0);
  assert_double_exact(q.summary.mem.weights, 2712);
  /* two microbatches of 1: sum of stages + (2 - 1) x the slowest stage */
  o.microbatches = 2;
  assert_int_equal(predict_par(pp, pdb, &gpu, &o, &p, &e), 0);
  assert_double_exact(p.run[0][V_B], 1);
  assert_true(p.phase[0].latency > p.phase[0].total_time);
  o.microbatches = 3;
  assert_int_equal(predict_par(pp, pdb, &gpu, &o, &p, &e), -1);
  prediction_free(&p);
  prediction_free(&q);
  parplan_free(pp);
}

/* The ring and the other collectives' formulas through a prediction:
 * 8 GPUs would need 8 heads, so check the formula on the 2-GPU rows above
 * and here the link choice: no NVSwitch spreads over (n-1)/(gpn-1) of the
 * links; beyond a node the network share per GPU. */
static void test_link_choice(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  ParPlan *pp = parplan_build(pdb, tiny, reg, ATTN_EAGER, 2, 1, &e);
  assert_non_null(pp);
  Gpu mesh = gpu;
  mesh.nvswitch = false; /* 7 links of 1000/7 each: a pair gets 1000/7 */
  PredictOpts o = tiny_opts();
  o.tp = 2;
  Prediction p = {0};
  assert_int_equal(predict_par(pp, pdb, &mesh, &o, &p, &e), 0);
  double bytes = 2 * 4 * 8 * 2;
  assert_double_near(p.phase[0].comm_time[1],
                     0.6e-6 * 2 + bytes * 1 / (1000.0 / 7), 1e-12);
  Gpu single = gpu;
  single.gpus_per_node = 1; /* TP 2 spans two nodes without a network */
  assert_int_equal(predict_par(pp, pdb, &single, &o, &p, &e), -1);
  assert_non_null(strstr(e.msg, "network_gbps"));
  single.network_bw = 100; /* 100 per node of 1 GPU, 2.7 us a step */
  assert_int_equal(predict_par(pp, pdb, &single, &o, &p, &e), 0);
  assert_double_near(p.phase[0].comm_time[1], 2.7e-6 * 2 + bytes / 100, 1e-12);
  prediction_free(&p);
  parplan_free(pp);
}

/* Expert parallelism's mechanism on the tiny model, with rules made up
 * for the test (no MoE model ships yet): --ep 2 splits intermediate_size
 * like an expert count and puts an all-to-all of B T hidden a_bytes after
 * gate_proj: n - 1 = 1 step, factor 1/2. */
static void test_ep_mechanism(void **state) {
  (void)state;
  static const char text[] =
      "{\"format\": \"lm-predictor-parallel\", \"latency_source\": \"test\",\n"
      " \"latency_us\": {\"nvlink\": 1, \"pcie\": 1, \"network\": 1},\n"
      " \"families\": [{\"classes\": "
      "[\"transformers.models.llama.modeling_llama.LlamaForCausalLM\"],\n"
      "  \"source\": \"test\",\n"
      "  \"ep\": {\"split\": {\"intermediate_size\": \"exact\"},\n"
      "         \"layers\": {\"model.layers.mlp.gate_proj\": {\"layout\": "
      "\"expert\", \"args\": {\"out_features\": \"intermediate_size\"}},\n"
      "                    \"model.layers.mlp.up_proj\": {\"layout\": "
      "\"expert\", \"args\": {\"out_features\": \"intermediate_size\"}},\n"
      "                    \"model.layers.mlp.down_proj\": {\"layout\": "
      "\"expert\", \"args\": {\"in_features\": \"intermediate_size\"}}},\n"
      "         \"collectives\": [{\"after\": \"model.layers.mlp.gate_proj\", "
      "\"op\": \"all_to_all\", \"bytes\": \"{B} * {T} * {hidden_size} * "
      "{a_bytes}\"}]}}]}\n";
  Error e;
  err_clear(&e);
  ParDb *db2 = pardb_load_text("ep.json", text, sizeof(text) - 1, &e);
  assert_non_null(db2);
  ParPlan *pp = parplan_build(db2, tiny, reg, ATTN_EAGER, 1, 2, &e);
  assert_non_null(pp);
  assert_int_equal(pp->ncomm, 1);
  PredictOpts o = tiny_opts();
  o.ep = 2;
  Prediction p = {0};
  assert_int_equal(predict_par(pp, db2, &gpu, &o, &p, &e), 0);
  /* under --ep each GPU runs B / ep = 1 sequence */
  double bytes = 1 * 4 * 8 * 2;
  assert_double_exact(p.phase[0].comm_bytes[0], bytes);
  assert_double_near(p.phase[0].comm_time[0], 1e-6 + bytes / 2 / 1000, 1e-12);
  /* gate/up/down hold half: 3 x 128 instead of 3 x 256 per layer */
  assert_double_exact(p.summary.mem.weights, 2712 - 2 * 3 * 128);
  assert_double_exact(p.summary.gpus, 2);
  prediction_free(&p);
  parplan_free(pp);
  /* no tp rules in this file: --tp 2 is refused */
  assert_null(parplan_build(db2, tiny, reg, ATTN_EAGER, 2, 1, &e));
  assert_contains(e.msg, "no tensor-parallel rules");
  pardb_free(db2);
  /* a bad file is located */
  err_clear(&e);
  assert_null(pardb_load_text("bad.json", "{\"format\": \"x\"}", 15, &e));
  assert_contains(e.msg, "format must be");
  assert_int_equal(e.line, 1);
  /* with_tp belongs to ep, and names the layers it splits */
  static const char head[] =
      "{\"format\": \"lm-predictor-parallel\", \"latency_source\": \"t\",\n"
      " \"latency_us\": {\"nvlink\": 1, \"pcie\": 1, \"network\": 1},\n"
      " \"families\": [{\"classes\": [\"c\"], \"source\": \"t\",\n";
  char bad[1024];
  snprintf(bad, sizeof(bad), "%s  \"tp\": {\"split\": {}, \"with_tp\": "
           "{}}}]}", head);
  err_clear(&e);
  assert_null(pardb_load_text("w.json", bad, strlen(bad), &e));
  assert_contains(e.msg, "with_tp belongs to ep");
  assert_int_equal(e.line, 4);
  snprintf(bad, sizeof(bad), "%s  \"ep\": {\"split\": {},\n \"with_tp\": "
           "{\"collectives\": []}}}]}", head);
  err_clear(&e);
  assert_null(pardb_load_text("w.json", bad, strlen(bad), &e));
  assert_contains(e.msg, "with_tp needs layers");
  assert_int_equal(e.line, 5);
}

/* A config.json model split by parallel.json's rules, predicted on the
 * slow GPU: B 2, S 4. */
static int split_predict(const char *cfg, int tp, int ep, Prediction *p,
                         ParPlan **out, Error *e) {
  Model *m = model_open(cfg, NULL, reg, e);
  if (!m)
    return -1;
  ParPlan *pp = parplan_build(pdb, m, reg, ATTN_EAGER, tp, ep, e);
  *out = pp;
  if (!pp) {
    model_free(m);
    return -1;
  }
  PredictOpts o = tiny_opts();
  o.tp = tp;
  o.ep = ep;
  int rc = predict_par(pp, pdb, &gpu, &o, p, e);
  /* the split plan owns its own model; the one opened here is freed by
   * the caller through p->plan's model only when tp = ep = 1 */
  model_free(m);
  return rc;
}

/* The decode phase's collective at path: its count and bytes. */
static void want_comm(const PhaseResult *r, const char *path, double count,
                      double bytes) {
  for (int c = 0; c < r->ncomm; c++)
    if (strcmp(r->comm[c].path, path) == 0) {
      assert_double_exact(r->comm[c].count, count);
      assert_double_exact(r->comm_bytes[c], bytes);
      return;
    }
  fail_msg("no collective %s", path);
}

/* A Mixtral of test/data/tiny_mixtral (hidden 8, intermediate 16, 2 heads
 * of 4, 1 KV head, 2 layers, vocabulary 10, 4 experts, top-2), 16-bit.
 * Per layer by hand: norms 16 + 16, q 8 x 8 x 2 = 128, k and v 8 x 4 x 2
 * = 64, o 128, router 4 x 8 x 2 = 64, experts 4 x 3 x 8 x 16 x 2 = 3072:
 * 3552; embedding 160, rotary 8, norm 16, lm_head 160: 7448 on one GPU. */
static void test_tiny_moe_tp2_ep2(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  Prediction p = {0};
  ParPlan *pp;
  /* TP 2: heads 2 -> 1, the KV head replicated, each expert's
   * intermediate 16 -> 8, vocabulary 10 -> 5: per layer 16 + 64 + 64 + 64
   * + 64 + 16 + 64 + 4 x 3 x 8 x 8 x 2 = 1888 */
  assert_int_equal(split_predict("test/data/tiny_mixtral/config.json", 2, 1,
                                 &p, &pp, &e), 0);
  assert_double_exact(p.summary.mem.weights, 2 * 1888 + 80 + 8 + 16 + 80);
  /* the parameter count stays the whole model's: (7448 - the rotary
   * table's 8 bytes) / 2 */
  assert_double_exact(p.parameters, 3720);
  /* decode (T 1): B T hidden a_bytes = 2 x 1 x 8 x 2 = 32 after the
   * embedding, o_proj and the experts; the logits 2 x 10 x 2 = 40 */
  const PhaseResult *d = &p.phase[1];
  assert_int_equal(d->ncomm, 4);
  want_comm(d, "model.embed_tokens.all_reduce", 1, 32);
  want_comm(d, "model.layers.self_attn.o_proj.all_reduce", 2, 32);
  want_comm(d, "model.layers.mlp.experts.combine.all_reduce", 2, 32);
  want_comm(d, "lm_head.all_gather", 1, 40);
  assert_double_near(d->comm_time[1], ring_ar(2, 32), 1e-15);
  parplan_free(pp);
  /* EP 2: 2 experts per GPU, attention data-parallel (B / 2 = 1 sequence
   * a GPU, all weights but the experts whole): per layer 3552 - 1536 */
  assert_int_equal(split_predict("test/data/tiny_mixtral/config.json", 1, 2,
                                 &p, &pp, &e), 0);
  assert_double_exact(p.summary.mem.weights, 2 * (3552 - 1536) + 344);
  assert_double_exact(p.summary.gpus, 2);
  assert_double_exact(p.parameters, 3720);
  /* dispatch after the router and combine after the experts: B/ep T k
   * hidden a_bytes = 1 x T x 2 x 8 x 2 (decode 32, prefill T 4: 128);
   * one step, off-rank factor 1/2 */
  for (int ph = 0; ph < 2; ph++) {
    double T = ph ? 1 : 4, b = 1 * T * 2 * 8 * 2;
    const PhaseResult *r = &p.phase[ph];
    assert_int_equal(r->ncomm, 2);
    want_comm(r, "model.layers.mlp.gate.all_to_all", 2, b);
    want_comm(r, "model.layers.mlp.experts.combine.all_to_all", 2, b);
    assert_double_near(r->comm_time[0], 0.6e-6 + b / 2 / 1000, 1e-15);
  }
  /* the experts of one GPU see both GPUs' tokens (2), top_k / 2 = 1 of
   * each: gate_up FLOPs 2 x 2 x 1 x 8 x 2 x 16 = 1024, half the whole
   * batch's on one GPU */
  const Plan *pl = pp->plan;
  for (int r = 0; r < pl->nrows; r++)
    if (strcmp(pl->rows[r].path, "model.layers.mlp.experts.gate_up_proj") == 0)
      assert_double_exact(p.vals[1]->row[r][M_FLOPS], 1024);
  parplan_free(pp);
  /* -B 3 does not split over 2 GPUs' attention */
  Model *m = model_open("test/data/tiny_mixtral/config.json", NULL, reg, &e);
  pp = parplan_build(pdb, m, reg, ATTN_EAGER, 1, 2, &e);
  PredictOpts o = tiny_opts();
  o.ep = 2;
  o.batch = 3;
  assert_int_equal(predict_par(pp, pdb, &gpu, &o, &p, &e), -1);
  assert_contains(e.msg, "does not divide -B 3");
  parplan_free(pp);
  /* --ep other than --tp is refused, naming both */
  err_clear(&e);
  assert_null(parplan_build(pdb, m, reg, ATTN_EAGER, 2, 4, &e));
  assert_contains(e.msg, "--tp 2 with --ep 4 is not modelled");
  assert_contains(e.msg, "--ep must equal --tp");
  /* --ep 3 does not divide 4 experts */
  err_clear(&e);
  assert_null(parplan_build(pdb, m, reg, ATTN_EAGER, 1, 3, &e));
  assert_contains(e.msg, "--ep 3 does not divide num_local_experts (4)");
  model_free(m);
  prediction_free(&p);
}

/* The pipeline send between stages in different nodes, under --ep: a
 * stage holds max(tp, ep) GPUs. --ep 2 --pp 2 on the tiny Mixtral with 2
 * GPUs a node: stage 0 is GPUs 0-1 (node 0), stage 1 GPUs 2-3 (node 1),
 * so GPU 0 sends to GPU 2 and GPU 1 to GPU 3 over the network: node
 * bandwidth 100 bytes/s shared by its 2 GPUs = 50 each, 2.7 us a step.
 * Each GPU sends its own B / ep = 1 sequence: 1 x T 4 x hidden 8 x 2
 * bytes = 64 in prefill. (Counting tp = 1 GPU a stage put both stages in
 * node 0 and priced the send on NVLink: 0.6 us + 64 / 1000.) With 4 GPUs
 * a node the same send stays inside it: 0.6 us + 64 / 1000. */
static void test_ep_pp_send_crosses_nodes(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  Model *m = model_open("test/data/tiny_mixtral/config.json", NULL, reg, &e);
  assert_non_null(m);
  ParPlan *pp = parplan_build(pdb, m, reg, ATTN_EAGER, 1, 2, &e);
  assert_non_null(pp);
  PredictOpts o = tiny_opts();
  o.ep = 2;
  o.pp = 2;
  Gpu two = gpu;
  two.gpus_per_node = 2;
  two.network_bw = 100;
  Prediction p = {0};
  assert_int_equal(predict_par(pp, pdb, &two, &o, &p, &e), 0);
  assert_double_exact(p.phase[0].send_bytes, 64);
  assert_double_near(p.phase[0].stage_send[0], 2.7e-6 + 64.0 / 50, 1e-12);
  assert_double_exact(p.summary.gpus, 4);
  Gpu four = two;
  four.gpus_per_node = 4;
  assert_int_equal(predict_par(pp, pdb, &four, &o, &p, &e), 0);
  assert_double_near(p.phase[0].stage_send[0], 0.6e-6 + 64.0 / 1000, 1e-12);
  prediction_free(&p);
  parplan_free(pp);
  model_free(m);
}

/* --tp 2 --ep 2 on the tiny Mixtral (as vLLM --tensor-parallel-size 2
 * --enable-expert-parallel, SGLang --tp 2 --ep 2): the attention,
 * embedding and lm_head tensor-parallel as at TP 2, the 4 experts split 2
 * per GPU, each whole (intermediate 16). Per layer by hand: norms 16 + 16,
 * q 8 x 4 x 2 = 64, k and v 64 each (the KV head replicated), o 4 x 8 x 2
 * = 64, router 4 x 8 x 2 = 64 (replicated), experts 2 x 3 x 8 x 16 x 2 =
 * 1536: 1888; embedding 10/2 x 8 x 2 = 80, rotary 8, norm 16, lm_head 80:
 * 2 x 1888 + 184 = 3960 per GPU, on 2 GPUs. Every GPU runs all B = 2
 * sequences (the attention is not data-parallel). */
static void test_tiny_moe_tp2_with_ep2(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  Prediction p = {0};
  ParPlan *pp;
  assert_int_equal(split_predict("test/data/tiny_mixtral/config.json", 2, 2,
                                 &p, &pp, &e), 0);
  assert_double_exact(p.summary.mem.weights, 2 * 1888 + 184);
  assert_double_exact(p.summary.gpus, 2);
  assert_double_exact(p.parameters, 3720);
  /* the communication is TP 2's and nothing else (no all-to-all: the
   * tokens are on every GPU already; the all-reduce after the experts sums
   * the two GPUs' experts' outputs). Decode (T 1): B T hidden a_bytes = 2 x
   * 1 x 8 x 2 = 32 after the embedding, o_proj and the experts; the logits
   * 2 x 10 x 2 = 40. Prefill (T 4): 128 and the last token's logits 40. On
   * the slow GPU's NVLink (1000 B/s, 0.6 us a step): a 2-GPU ring
   * all-reduce 2 x 0.6 us + 32 x 1 / 1000 s; the all-gather 0.6 us + 40 x
   * 1/2 / 1000 s. */
  for (int ph = 0; ph < 2; ph++) {
    double T = ph ? 1 : 4, h = 2 * T * 8 * 2;
    const PhaseResult *r = &p.phase[ph];
    assert_int_equal(r->ncomm, 4);
    want_comm(r, "model.embed_tokens.all_reduce", 1, h);
    want_comm(r, "model.layers.self_attn.o_proj.all_reduce", 2, h);
    want_comm(r, "model.layers.mlp.experts.combine.all_reduce", 2, h);
    want_comm(r, "lm_head.all_gather", 1, 40);
    for (int c = 0; c < r->ncomm; c++)
      assert_true(r->comm[c].kind != COLL_ALL_TO_ALL);
    assert_double_near(r->comm_time[0], 2 * 0.6e-6 + h / 1000, 1e-12);
    assert_double_near(r->comm_time[3], 0.6e-6 + 40.0 / 2 / 1000, 1e-12);
  }
  /* the experts of one GPU: all B T tokens, top_k / 2 = 1 of each token's
   * 2 experts, 2 of the 4 experts: gate_up (8 -> 2 x 16) FLOPs 2 x B T x 1
   * x 8 x 32 = 1024 in decode (B T = 2), 4096 in prefill (B T = 8): half
   * of one GPU's whole model. Weights read in decode: expected experts
   * touched (E/N)(1 - (1 - k/E)^(B T)) = 2 x (1 - (1/2)^2) = 1.5, each
   * 8 x 32 x 2 = 512 B: 768 B. */
  const Plan *pl = pp->plan;
  int found = 0;
  for (int r = 0; r < pl->nrows; r++)
    if (strcmp(pl->rows[r].path, "model.layers.mlp.experts.gate_up_proj") ==
        0) {
      assert_double_exact(p.vals[1]->row[r][M_FLOPS], 1024);
      assert_double_exact(p.vals[0]->row[r][M_FLOPS], 4096);
      assert_double_exact(p.vals[1]->row[r][M_WEIGHT_BYTES], 768);
      found++;
    }
  assert_int_equal(found, 1);
  /* -B 3 is fine: the attention is split by heads, not by sequences */
  PredictOpts o = tiny_opts();
  o.tp = o.ep = 2;
  o.batch = 3;
  assert_int_equal(predict_par(pp, pdb, &gpu, &o, &p, &e), 0);
  parplan_free(pp);
  prediction_free(&p);
}

/* TP 2 on real configs: per-GPU weights by hand from the config (16-bit,
 * so bytes = 2 x parameters) and the collectives per layer. */
static void test_families_tp2(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  Prediction p = {0};
  ParPlan *pp;
  /* Llama-3-8B: hidden 4096, 32 layers, 32 heads of 128, 8 KV heads,
   * intermediate 14336, vocabulary 128256. Per GPU per layer: norms 2 x
   * 4096, q and o 4096 x 2048, k and v 4096 x 512, gate/up/down 4096 x
   * 7168; embedding and lm_head 64128 x 4096; final norm 4096; rotary
   * inv_freq 64 float32 = 256 bytes. */
  assert_int_equal(split_predict("test/data/configs/llama-3-8b.json", 2, 1,
                                 &p, &pp, &e), 0);
  double layer = 2 * 4096 + 2 * 4096.0 * 2048 + 2 * 4096.0 * 512 +
                 3 * 4096.0 * 7168;
  assert_double_exact(p.summary.mem.weights,
                      2 * (32 * layer + 2 * 64128.0 * 4096 + 4096) + 256);
  /* two all-reduces per layer of B T hidden a_bytes = 2 x 1 x 4096 x 2 */
  want_comm(&p.phase[1], "model.layers.self_attn.o_proj.all_reduce", 32,
            16384);
  want_comm(&p.phase[1], "model.layers.mlp.down_proj.all_reduce", 32, 16384);
  want_comm(&p.phase[1], "lm_head.all_gather", 1, 2 * 128256 * 2);
  parplan_free(pp);
  /* Phi-3-mini: fused qkv (32 heads + 2 x 32 KV heads) x 96 -> half,
   * fused gate_up 2 x 8192 -> half; hidden 3072, 32 layers, vocabulary
   * 32064; rotary 48 float32 = 192 bytes. */
  assert_int_equal(split_predict(
                       "test/data/configs/phi-3-mini-4k-instruct.json", 2, 1,
                       &p, &pp, &e), 0);
  layer = 2 * 3072 + 3072.0 * 48 * 96 + 1536.0 * 3072 + 3072.0 * 8192 +
          4096.0 * 3072;
  assert_double_exact(p.summary.mem.weights,
                      2 * (32 * layer + 2 * 16032.0 * 3072 + 3072) + 192);
  assert_int_equal(p.phase[1].ncomm, 4);
  parplan_free(pp);
  /* GPT-2: c_attn 768 x 3 x 384 (+ bias), c_proj 384 x 768 (+ full bias),
   * c_fc 768 x 1536 (+ bias), c_proj 1536 x 768 (+ bias), 2 LayerNorms;
   * wte 25129 x 768 (tied: lm_head not counted), wpe 1024 x 768
   * replicated, ln_f. Biases: a row-parallel layer's bias stays whole. */
  assert_int_equal(split_predict("test/data/configs/gpt2.json", 2, 1, &p, &pp,
                                 &e), 0);
  layer = 768.0 * 1152 + 1152 + 384.0 * 768 + 768 + 768.0 * 1536 + 1536 +
          1536.0 * 768 + 768 + 4 * 768;
  assert_double_exact(p.summary.mem.weights,
                      2 * (12 * layer + 25129.0 * 768 + 1024.0 * 768 +
                           2 * 768));
  want_comm(&p.phase[1], "transformer.h.attn.c_proj.all_reduce", 12,
            2 * 768 * 2);
  parplan_free(pp);
  /* Pythia (GPT-NeoX, use_parallel_residual): ONE all-reduce per layer */
  assert_int_equal(split_predict("test/data/configs/pythia-1b.json", 2, 1, &p,
                                 &pp, &e), 0);
  assert_int_equal(p.phase[1].ncomm, 3);
  want_comm(&p.phase[1], "gpt_neox.layers.mlp.dense_4h_to_h.all_reduce", 16,
            2 * 2048 * 2);
  parplan_free(pp);
  /* Falcon-7B: 71 heads; TP 2 is refused naming the key and value */
  assert_int_equal(split_predict("test/data/configs/falcon-7b.json", 2, 1, &p,
                                 &pp, &e), -1);
  assert_contains(e.msg, "--tp 2 does not divide num_attention_heads (71)");
  prediction_free(&p);
}

/* One GPU's weights of a config (B 2, S 4). */
static double whole_weights(const char *cfg) {
  Error e;
  err_clear(&e);
  Model *m = model_open(cfg, NULL, reg, &e);
  assert_non_null(m);
  Plan *pl = plan_build(m, ATTN_EAGER, &e);
  assert_non_null(pl);
  PredictOpts o = tiny_opts();
  Prediction p = {0};
  assert_int_equal(predict(pl, &gpu, &o, &p, &e), 0);
  double w = p.summary.mem.weights;
  prediction_free(&p);
  plan_free(pl);
  model_free(m);
  return w;
}

/* TP 2 (EP 2, or both, for MoE) on every family's real config: the per-GPU
 * weights are the whole model's less half of the parameters the split divides
 * (elements counted by hand from each config, 2 bytes each: so the check
 * is which parameters split, and by how much), and the decode phase's
 * collectives (count, bytes of B 2, T 1). */
static void test_families_split_weights(void **state) {
  (void)state;
  static const struct {
    const char *cfg;
    int tp, ep;
    double split;     /* elements divided by the split */
    int ncomm;        /* decode collectives */
    const char *path; /* one of them */
    double count, bytes;
  } cases[] = {
      /* Qwen3-8B: q and o 4096 x 4096, k and v 4096 x 1024, gate/up/down
       * 4096 x 12288 per layer (36); embedding and lm_head 151936 x 4096;
       * the per-head q/k norms replicated */
      {"test/data/configs/qwen3-8b.json", 2, 1,
       36 * (2 * 4096.0 * 4096 + 2 * 4096.0 * 1024 + 3 * 4096.0 * 12288) +
           2 * 151936.0 * 4096,
       4, "model.layers.mlp.down_proj.all_reduce", 36, 2 * 4096 * 2},
      /* OLMo-2-7B: q/k/v/o 4096 x 4096 (32 KV heads), MLP 3 x 4096 x
       * 11008, 32 layers; embedding and lm_head 100352 x 4096; q_norm and
       * k_norm (4096 each) replicated; q and k all-gathered: 6 rows */
      {"test/data/configs/olmo-2-1124-7b.json", 2, 1,
       32 * (4 * 4096.0 * 4096 + 3 * 4096.0 * 11008) + 2 * 100352.0 * 4096, 6,
       "model.layers.self_attn.k_proj.all_gather", 32, 2 * 4096 * 2},
      /* Command-R (cohere, parallel block: one all-reduce a layer): q/k/v/o
       * 8192 x 8192, MLP 3 x 8192 x 22528, 40 layers; tied embedding
       * 256000 x 8192 */
      {"test/data/configs/c4ai-command-r-v01.json", 2, 1,
       40 * (4 * 8192.0 * 8192 + 3 * 8192.0 * 22528) + 256000.0 * 8192, 3,
       "model.layers.mlp.down_proj.all_reduce", 40, 2 * 8192 * 2},
      /* Gemma-2-2B: q 2304 x 2048, k/v 2304 x 1024, o 2048 x 2304, MLP 3 x
       * 2304 x 9216, 26 layers (13 sliding, 13 global: two rows each);
       * tied embedding 256000 x 2304 */
      {"test/data/configs/gemma-2-2b.json", 2, 1,
       26 * (2 * 2304.0 * 2048 + 2 * 2304.0 * 1024 + 3 * 2304.0 * 9216) +
           256000.0 * 2304,
       6, "model.layers[global].self_attn.o_proj.all_reduce", 13, 2 * 2304 * 2},
      /* StarCoder2-3B (biases): q 3072 x 3072 + 3072, k/v 3072 x 256 + 256
       * (2 KV heads: 1 a GPU), o 3072 x 3072 (its bias whole), c_fc 3072 x
       * 12288 + 12288, c_proj 12288 x 3072, 30 layers; tied embedding
       * 49152 x 3072 */
      {"test/data/configs/starcoder2-3b.json", 2, 1,
       30 * (3072.0 * 3072 + 3072 + 2 * (3072.0 * 256 + 256) + 3072.0 * 3072 +
             3072.0 * 12288 + 12288 + 12288.0 * 3072) +
           49152.0 * 3072,
       4, "model.layers.mlp.c_proj.all_reduce", 30, 2 * 3072 * 2},
      /* OPT-125m: q/k/v 768 x 768 + 768, out_proj 768 x 768, fc1 768 x
       * 3072 + 3072, fc2 3072 x 768, 12 layers; tied embedding 50272 x
       * 768; learned positions replicated */
      {"test/data/configs/opt-125m.json", 2, 1,
       12 * (3 * (768.0 * 768 + 768) + 768.0 * 768 + 768.0 * 3072 + 3072 +
             3072.0 * 768) +
           50272.0 * 768,
       4, "model.decoder.layers.fc2.all_reduce", 12, 2 * 768 * 2},
      /* BLOOM-560m: query_key_value 1024 x 3072 + 3072, dense 1024 x 1024,
       * h_to_4h 1024 x 4096 + 4096, 4h_to_h 4096 x 1024, 24 layers; tied
       * embedding 250880 x 1024 */
      {"test/data/configs/bloom-560m.json", 2, 1,
       24 * (1024.0 * 3072 + 3072 + 1024.0 * 1024 + 1024.0 * 4096 + 4096 +
             4096.0 * 1024) +
           250880.0 * 1024,
       4, "transformer.h.self_attention.dense.all_reduce", 24, 2 * 1024 * 2},
      /* GPT-J-6B (parallel block: one all-reduce a layer): q/k/v/out 4096 x
       * 4096, fc_in 4096 x 16384 + 16384, fc_out 16384 x 4096, 28 layers;
       * embedding 50400 x 4096, lm_head 50400 x 4096 + its bias 50400 */
      {"test/data/configs/gpt-j-6b.json", 2, 1,
       28 * (4 * 4096.0 * 4096 + 4096.0 * 16384 + 16384 + 16384.0 * 4096) +
           2 * 50400.0 * 4096 + 50400,
       3, "transformer.h.mlp.fc_out.all_reduce", 28, 2 * 4096 * 2},
      /* Mixtral-8x7B, EP 2: 4 of the 8 experts (3 x 4096 x 14336 each) a
       * GPU in each of 32 layers, everything else whole; dispatch and
       * combine of B/2 T k hidden a_bytes = 1 x 1 x 2 x 4096 x 2 */
      {"test/data/configs/mixtral-8x7b-v0.1.json", 1, 2,
       32 * 8 * 3 * 4096.0 * 14336, 2,
       "model.layers.mlp.experts.combine.all_to_all", 32, 2 * 4096 * 2},
      /* Mixtral-8x7B, TP 2 with EP 2: the attention as at TP 2 (q/o 4096
       * x 4096, k/v 4096 x 1024: 8 KV heads, 4 a GPU), 4 of the 8 whole
       * experts (3 x 4096 x 14336) a GPU, embedding and lm_head 32000 x
       * 4096: the same half of the same elements as TP 2's expert slices;
       * TP 2's 4 collectives and no all-to-all */
      {"test/data/configs/mixtral-8x7b-v0.1.json", 2, 2,
       32 * (2 * 4096.0 * 4096 + 2 * 4096.0 * 1024 + 8 * 3 * 4096.0 * 14336) +
           2 * 32000.0 * 4096,
       4, "model.layers.mlp.experts.combine.all_reduce", 32, 2 * 4096 * 2},
      /* Qwen3-30B-A3B, EP 2: 64 of 128 experts (3 x 2048 x 768) a GPU, 48
       * layers; k = 8: 1 x 1 x 8 x 2048 x 2 */
      {"test/data/configs/qwen3-30b-a3b.json", 1, 2,
       48 * 128 * 3 * 2048.0 * 768, 2, "model.layers.mlp.gate.all_to_all", 48,
       8 * 2048 * 2},
      /* Qwen3-30B-A3B, TP 2: attention (32 heads of 128, 4 KV heads)
       * q/o 2048 x 4096, k/v 2048 x 512; every expert's 3 x 2048 x 768;
       * embedding and lm_head 151936 x 2048 */
      {"test/data/configs/qwen3-30b-a3b.json", 2, 1,
       48 * (2 * 2048.0 * 4096 + 2 * 2048.0 * 512 +
             128 * 3 * 2048.0 * 768) +
           2 * 151936.0 * 2048,
       4, "model.layers.mlp.experts.combine.all_reduce", 48, 2 * 2048 * 2},
      /* Mistral-7B: the Llama layout; 32 layers of q/o 4096 x 4096, k/v
       * 4096 x 1024, MLP 3 x 4096 x 14336; embedding and lm_head 32000 x
       * 4096 */
      {"test/data/configs/mistral-7b-v0.1.json", 2, 1,
       32 * (2 * 4096.0 * 4096 + 2 * 4096.0 * 1024 + 3 * 4096.0 * 14336) +
           2 * 32000.0 * 4096,
       4, "model.layers.self_attn.o_proj.all_reduce", 32, 2 * 4096 * 2},
      /* Llama-3.2-1B: 16 layers of q/o 2048 x 2048, k/v 2048 x 512, MLP 3
       * x 2048 x 8192; tied embedding 128256 x 2048 */
      {"test/data/configs/llama-3.2-1b.json", 2, 1,
       16 * (2 * 2048.0 * 2048 + 2 * 2048.0 * 512 + 3 * 2048.0 * 8192) +
           128256.0 * 2048,
       4, "lm_head.all_gather", 1, 2 * 128256 * 2},
      /* Qwen2.5-0.5B (q/k/v biases): q 896 x 896 + 896, k/v 896 x 128 +
       * 128 (2 KV heads: 1 a GPU), o 896 x 896, MLP 3 x 896 x 4864, 24
       * layers; tied embedding 151936 x 896 */
      {"test/data/configs/qwen2.5-0.5b.json", 2, 1,
       24 * (896.0 * 896 + 896 + 2 * (896.0 * 128 + 128) + 896.0 * 896 +
             3 * 896.0 * 4864) +
           151936.0 * 896,
       4, "model.layers.mlp.down_proj.all_reduce", 24, 2 * 896 * 2},
      /* Granite-3.0-2B: 40 layers of q/o 2048 x 2048, k/v 2048 x 512, MLP
       * 3 x 2048 x 8192; tied embedding of 49155 rows, 24578 a GPU
       * (padded): 24577 x 2048 x 2 bytes fewer */
      {"test/data/configs/granite-3.0-2b-base.json", 2, 1,
       40 * (2 * 2048.0 * 2048 + 2 * 2048.0 * 512 + 3 * 2048.0 * 8192) +
           24577.0 * 2048 * 2,
       4, "model.embed_tokens.all_reduce", 1, 2 * 2048 * 2},
      /* Gemma-3-1B: 4 heads of 256, ONE KV head (replicated: k/v whole on
       * each GPU); q 1152 x 1024, o 1024 x 1152, MLP 3 x 1152 x 6912, 26
       * layers (sliding and global kinds); tied embedding 262144 x 1152 */
      {"test/data/configs/gemma-3-1b-it.json", 2, 1,
       26 * (2 * 1152.0 * 1024 + 3 * 1152.0 * 6912) + 262144.0 * 1152, 6,
       "model.layers[sliding].mlp.down_proj.all_reduce", 22, 2 * 1152 * 2},
      /* Nemotron-H-8B: 24 Mamba-2 blocks (in_proj 4096 x (2 x 8192 + 2 x 8
       * x 128 + 128), out_proj 8192 x 4096, conv1d 10240 x 4 + 10240, the
       * gated norm 8192, A_log/D/dt_bias 3 x 128: all per head or group,
       * 8 groups -> 4), 4 attention blocks (q/o 4096 x 4096, k/v 4096 x
       * 1024), 24 MLP blocks (up/down 4096 x 21504); embedding and lm_head
       * 131072 x 4096; one all-reduce a block */
      {"test/data/configs/nemotron-h-8b-base-8k.json", 2, 1,
       24 * (4096.0 * 18560 + 8192.0 * 4096 + 10240 * 4 + 10240 + 8192 +
             3 * 128) +
           4 * (2 * 4096.0 * 4096 + 2 * 4096.0 * 1024) +
           24 * 2 * 4096.0 * 21504 + 2 * 131072.0 * 4096,
       5, "backbone.layers[mamba].mixer.out_proj.all_reduce", 24,
       2 * 4096 * 2},
      /* DeepSeek-V2.5 (MLA), TP 2: 128 heads -> 64: q_b_proj 1536 x 128 x
       * 192, the attention's kv_b up-projection 512 x 128 x 256, o_proj
       * 128 x 128 x 5120 split; q_a/kv_a and their norms replicated; 1
       * dense MLP 3 x 5120 x 12288; 59 MoE layers of 160 experts 3 x 5120
       * x 1536 and 2 shared 3 x 5120 x 3072; embedding and lm_head 102400
       * x 5120. All-reduces after o_proj of both kinds, the dense MLP and
       * the MoE's shared_add */
      {"test/data/configs/deepseek-v2.5.json", 2, 1,
       60 * (1536.0 * 128 * 192 + 512.0 * 128 * 256 + 128.0 * 128 * 5120) +
           3 * 5120.0 * 12288 +
           59 * (160 * 3 * 5120.0 * 1536 + 3 * 5120.0 * 3072) +
           2 * 102400.0 * 5120,
       6, "model.layers[moe].mlp.shared_add.all_reduce", 59, 2 * 5120 * 2},
      /* DeepSeek-V2.5, TP 2 with EP 2: 80 of the 160 routed experts whole
       * a GPU, everything else as at TP 2 (the shared experts split on
       * their intermediate size): the same elements halved as TP 2 */
      {"test/data/configs/deepseek-v2.5.json", 2, 2,
       60 * (1536.0 * 128 * 192 + 512.0 * 128 * 256 + 128.0 * 128 * 5120) +
           3 * 5120.0 * 12288 +
           59 * (160 * 3 * 5120.0 * 1536 + 3 * 5120.0 * 3072) +
           2 * 102400.0 * 5120,
       6, "model.layers[moe].mlp.shared_add.all_reduce", 59, 2 * 5120 * 2},
      /* DeepSeek-V2.5, EP 2: 80 of 160 experts a GPU; dispatch after the
       * routing (k 6): 1 x 1 x 6 x 5120 x 2 */
      {"test/data/configs/deepseek-v2.5.json", 1, 2,
       59 * 160 * 3 * 5120.0 * 1536, 2,
       "model.layers[moe].mlp.route.all_to_all", 59, 6 * 5120 * 2},
      /* gpt-oss-20b, EP 2 (mxfp4 experts: weights not checked here), two
       * layer kinds of 12: dispatch and combine each, k 4: 1 x 1 x 4 x
       * 2880 x 2 */
      {"test/data/configs/gpt-oss-20b.json", 1, 2, -1, 4,
       "model.layers[sliding].mlp.router.all_to_all", 12, 4 * 2880 * 2},
      /* Gemma-3-4B (the multimodal wrapper's language model), TP 2: 8
       * heads -> 4, 4 KV heads -> 2; collectives of both layer kinds;
       * weights not checked here (the vision tower is not modelled) */
      {"test/data/configs/gemma-3-4b-it.json", 2, 1, -1, 6,
       "language_model.model.layers[sliding].self_attn.o_proj.all_reduce", 29,
       2 * 2560 * 2},
      /* gpt-oss-20b, TP 2: experts split on their intermediate size;
       * all-reduces after o_proj and the experts of both kinds */
      {"test/data/configs/gpt-oss-20b.json", 2, 1, -1, 6,
       "model.layers.mlp.experts.combine.all_reduce", 12, 2 * 2880 * 2},
      /* DeepSeek-R1 (fp8 experts), EP 2: 58 MoE layers, k 8 */
      {"test/data/configs/deepseek-r1.json", 1, 2, -1, 2,
       "model.layers[moe].mlp.experts.combine.all_to_all", 58, 8 * 7168 * 2},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    Error e;
    err_clear(&e);
    Prediction p = {0};
    ParPlan *pp;
    double w1 = whole_weights(cases[i].cfg);
    if (split_predict(cases[i].cfg, cases[i].tp, cases[i].ep, &p, &pp, &e))
      fail_msg("%s: %s", cases[i].cfg, e.msg);
    if (cases[i].split >= 0 && p.summary.mem.weights != w1 - cases[i].split)
      fail_msg("%s: %.17g per GPU, want %.17g - %.17g", cases[i].cfg,
               p.summary.mem.weights, w1, cases[i].split);
    if (p.phase[1].ncomm != cases[i].ncomm)
      fail_msg("%s: %d collectives, want %d", cases[i].cfg, p.phase[1].ncomm,
               cases[i].ncomm);
    want_comm(&p.phase[1], cases[i].path, cases[i].count, cases[i].bytes);
    parplan_free(pp);
    prediction_free(&p);
  }
}

/* parallel.json's rules are checked when loaded, each error located. */
static void test_rules_refused(void **state) {
  (void)state;
  static const struct {
    const char *rules; /* the family's "tp" object */
    const char *want;
  } bad[] = {
      {"{\"split\": {\"vocab_size\": \"ceil\"}, \"layers\": {\"lm_head\": "
       "\"vocab\"}}",
       "a vocab layer says which parameters split"},
      {"{\"split\": {\"vocab_size\": \"ceil\"}, \"layers\": {\"lm_head\": "
       "{\"layout\": \"vocab\", \"args\": {\"out_features\": \"heads\"}}}}",
       "'heads' is not one of this group's split keys"},
      {"{\"split\": {\"vocab_size\": \"half\"}}",
       "a split is \"exact\", \"replicate\" or \"ceil\""},
      {"{\"split\": {\"vocab_size\": \"ceil\"}, \"layers\": {\"lm_head\": "
       "{\"layout\": \"diagonal\"}}}",
       "a layer is a layout"},
      {"{\"split\": {\"vocab_size\": \"ceil\"}, \"collectives\": [{\"after\": "
       "\"lm_head\", \"op\": \"all_gather\", \"bytes\": \"1\", \"optional\": "
       "1}]}",
       "optional is true or false"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"format\": \"lm-predictor-parallel\", \"latency_source\": "
             "\"t\",\n \"latency_us\": {\"nvlink\": 1, \"pcie\": 1, "
             "\"network\": 1},\n \"families\": [{\"classes\": [\"x\"], "
             "\"source\": \"t\",\n  \"tp\": %s}]}\n",
             bad[i].rules);
    Error e;
    err_clear(&e);
    assert_null(pardb_load_text("rules.json", text, strlen(text), &e));
    assert_contains(e.msg, bad[i].want);
    assert_int_equal(e.line, 4);
  }
  /* a rule naming a layer the model's file does not have */
  static const char text[] =
      "{\"format\": \"lm-predictor-parallel\", \"latency_source\": \"t\",\n"
      " \"latency_us\": {\"nvlink\": 1, \"pcie\": 1, \"network\": 1},\n"
      " \"families\": [{\"classes\": "
      "[\"transformers.models.llama.modeling_llama.LlamaForCausalLM\"],\n"
      "  \"source\": \"t\", \"tp\": {\"split\": {\"vocab_size\": \"ceil\"},\n"
      "  \"layers\": {\"model.lm_head\": {\"layout\": \"vocab\", \"args\": "
      "{\"out_features\": \"vocab_size\"}}}}}]}\n";
  Error e;
  err_clear(&e);
  ParDb *db2 = pardb_load_text("rules.json", text, sizeof(text) - 1, &e);
  assert_non_null(db2);
  assert_null(parplan_build(db2, tiny, reg, ATTN_EAGER, 2, 1, &e));
  assert_contains(e.msg, "--tp layer 'model.lm_head' is not in");
  pardb_free(db2);
}

/* A sweep copies its base options: freed at once (as the Python binding
 * does), the sweep still predicts with their engine and GPU. Before the
 * fix the engine id was borrowed from base: freed, the rows read freed
 * memory ("no serving engine '<garbage>'"; ASan: heap-use-after-free). */
static void test_sweep_outlives_its_base_options(void **state) {
  (void)state;
  lmp_error err;
  lmp_data *d = lmp_open(NULL, NULL, NULL, &err);
  assert_non_null(d);
  lmp_model *m = lmp_model_load(d, "test/data/tiny_llama.json", &err);
  assert_non_null(m);
  lmp_options *o = lmp_options_new();
  assert_int_equal(lmp_options_set(o, "max-batch", "no", &err), 0);
  assert_int_equal(lmp_options_set(o, "engine", "trtllm", &err), 0);
  assert_int_equal(lmp_options_set(o, "hardware", "a100-sxm-80gb", &err), 0);
  lmp_sweep *s = lmp_sweep_new(d, m, o);
  lmp_options_free(o);
  /* scribble over what o held: a borrowed string would now read this */
  char *junk[8];
  for (int i = 0; i < 8; i++)
    junk[i] = strdup("xxxxxxxxxxxxxxxxxx");
  assert_int_equal(lmp_sweep_values(s, "batch", "1,2", &err), 0);
  const lmp_result *r;
  int k, rows = 0;
  while ((k = lmp_sweep_next(s, &r, &err)) != 0) {
    assert_int_equal(k, 1);
    char *row = lmp_result_summary_row(r, "json");
    assert_contains(row, "\"hardware\": \"a100-sxm-80gb\"");
    assert_contains(row, "\"engine\": \"trtllm\"");
    lmp_free(row);
    rows++;
  }
  assert_int_equal(rows, 2);
  for (int i = 0; i < 8; i++)
    free(junk[i]);
  lmp_sweep_free(s);
  lmp_model_free(m);
  lmp_close(d);
}

/* A sweep: its row count is the cross product, and each row equals the
 * single prediction of its configuration. */
static void test_sweep_rows_match_single_runs(void **state) {
  (void)state;
  lmp_error err;
  lmp_data *d = lmp_open(NULL, NULL, NULL, &err);
  assert_non_null(d);
  lmp_model *m = lmp_model_load(d, "test/data/tiny_llama.json", &err);
  assert_non_null(m);
  lmp_options *o = lmp_options_new();
  assert_int_equal(lmp_options_set(o, "max-batch", "no", &err), 0);
  lmp_sweep *s = lmp_sweep_new(d, m, o);
  assert_int_equal(lmp_sweep_values(s, "batch", "1,2", &err), 0);
  assert_int_equal(lmp_sweep_values(s, "seq-len", "1..3", &err), 0);
  assert_int_equal(lmp_sweep_values(s, "tp", "1,2", &err), 0);
  assert_int_equal(lmp_sweep_values(s, "output-len", "2..8x2", &err), 0);
  assert_double_exact(lmp_sweep_size(s), 2 * 3 * 2 * 3);
  const lmp_result *r;
  int k, rows = 0;
  /* the last option varies fastest */
  static const char *const outs[] = {"2", "4", "8"};
  while ((k = lmp_sweep_next(s, &r, &err)) == 1) {
    lmp_options *one = lmp_options_new();
    char b[16], sq[16], tp[16];
    snprintf(b, sizeof(b), "%d", 1 + rows / 18);
    snprintf(sq, sizeof(sq), "%d", 1 + rows / 6 % 3);
    snprintf(tp, sizeof(tp), "%d", 1 + rows / 3 % 2);
    lmp_options_set(one, "max-batch", "no", NULL);
    lmp_options_set(one, "batch", b, NULL);
    lmp_options_set(one, "seq-len", sq, NULL);
    lmp_options_set(one, "tp", tp, NULL);
    lmp_options_set(one, "output-len", outs[rows % 3], NULL);
    lmp_result *single = lmp_predict(d, m, one, &err);
    assert_non_null(single);
    char *a = lmp_result_summary_row(r, "json");
    char *bb = lmp_result_summary_row(single, "json");
    assert_string_equal(a, bb);
    lmp_free(a);
    lmp_free(bb);
    lmp_result_free(single);
    lmp_options_free(one);
    rows++;
  }
  assert_int_equal(k, 0);
  assert_int_equal(rows, 36);
  lmp_sweep_free(s);
  /* bad lists */
  s = lmp_sweep_new(d, m, o);
  assert_int_equal(lmp_sweep_values(s, "batch", "4..2", &err), -1);
  assert_int_equal(err.column, 1); /* the first item */
  /* "1,2,x": the third item starts after "1,2," (4 characters) */
  assert_int_equal(lmp_sweep_values(s, "batch", "1,2,x", &err), -1);
  assert_int_equal(err.column, 5);
  assert_int_equal(err.line, 0);
  assert_string_equal(err.file, "");
  /* "8,16..4x2": the range starts after "8," */
  assert_int_equal(lmp_sweep_values(s, "batch", "8,16..4x2", &err), -1);
  assert_int_equal(err.column, 3);
  assert_int_equal(lmp_sweep_values(s, "w-bits", "4..16", &err), -1);
  assert_int_equal(lmp_sweep_values(s, "w-bits", "4..16x2", &err), 0);
  assert_int_equal(lmp_sweep_values(s, "attention", "eager..flash", &err), -1);
  assert_int_equal(lmp_sweep_values(s, "format", "json,csv", &err), -1);
  assert_double_exact(lmp_sweep_size(s), 3);
  lmp_sweep_free(s);
  lmp_options_free(o);
  lmp_model_free(m);
  lmp_close(d);
}

/* The calibrated times of a sweep's rows are those of single predictions:
 * Llama-2-7B on H100 and A100, engines vLLM, TensorRT-LLM and HF eager
 * (host-bound), weights at 16, 8 and 4 bits, B 1..4, S 1..64 varying
 * fastest (4,608 configurations). The sweep's model evaluates its plans
 * more than PLAN_FUSE_AFTER times, so its later rows come from the fused
 * functions, decode's KV rows re-evaluated alone as S steps and the
 * calibrated kernels of the packed loop (calib_predict_rows); every 7th
 * row is predicted again with lmp_predict on a second copy of the model,
 * loaded separately, whose plans see fewer than PLAN_FUSE_AFTER
 * evaluations (interpretive) and whose results start empty (nothing
 * carried over). ttft_s, tpot_s, their roofline bounds and the whole JSON
 * row must be the same doubles. */
static void test_sweep_calibrated_rows_match_unfused_runs(void **state) {
  (void)state;
  lmp_error err;
  lmp_data *d = lmp_open(NULL, NULL, NULL, &err);
  assert_non_null(d);
  lmp_model *m = lmp_model_load(d, "models/llama-2-7b-hf.json", &err);
  lmp_model *m1 = lmp_model_load(d, "models/llama-2-7b-hf.json", &err);
  assert_non_null(m);
  assert_non_null(m1);
  lmp_options *o = lmp_options_new();
  assert_int_equal(lmp_options_set(o, "max-batch", "no", &err), 0);
  lmp_sweep *s = lmp_sweep_new(d, m, o);
  static const char *const hw[] = {"h100-sxm", "a100-sxm-80gb"};
  static const char *const eng[] = {"vllm", "trtllm", "hf-eager"};
  static const char *const bits[] = {"16", "8", "4"};
  assert_int_equal(lmp_sweep_values(s, "hardware", "h100-sxm,a100-sxm-80gb",
                                    &err), 0);
  assert_int_equal(lmp_sweep_values(s, "engine", "vllm,trtllm,hf-eager",
                                    &err), 0);
  assert_int_equal(lmp_sweep_values(s, "w-bits", "16,8,4", &err), 0);
  assert_int_equal(lmp_sweep_values(s, "batch", "1..4", &err), 0);
  assert_int_equal(lmp_sweep_values(s, "seq-len", "1..64", &err), 0);
  assert_double_exact(lmp_sweep_size(s), 2 * 3 * 3 * 4 * 64);
  const lmp_result *r;
  int k, row = 0, checked = 0;
  static const char *const keys[] = {"ttft_s", "tpot_s", "ttft_roofline_s",
                                     "tpot_roofline_s", "tokens_per_s"};
  while ((k = lmp_sweep_next(s, &r, &err)) == 1) {
    int i = row++;
    if (i % 7 != 0)
      continue;
    /* the first option varies slowest */
    char b[16], sq[16];
    snprintf(sq, sizeof(sq), "%d", 1 + i % 64);
    snprintf(b, sizeof(b), "%d", 1 + i / 64 % 4);
    lmp_options *one = lmp_options_new();
    assert_int_equal(lmp_options_set(one, "max-batch", "no", &err), 0);
    assert_int_equal(lmp_options_set(one, "hardware", hw[i / 2304], &err), 0);
    assert_int_equal(lmp_options_set(one, "engine", eng[i / 768 % 3], &err),
                     0);
    assert_int_equal(lmp_options_set(one, "w-bits", bits[i / 256 % 3], &err),
                     0);
    assert_int_equal(lmp_options_set(one, "batch", b, &err), 0);
    assert_int_equal(lmp_options_set(one, "seq-len", sq, &err), 0);
    lmp_result *single = lmp_predict(d, m1, one, &err);
    assert_non_null(single);
    for (size_t j = 0; j < LM_ARRAY_LEN(keys); j++) {
      double a = lmp_result_summary(r, keys[j]),
             c = lmp_result_summary(single, keys[j]);
      if (!(a == c)) /* name the configuration that differs */
        fail_msg("row %d (%s %s w%s -B %s -S %s): %s %.17g, single run "
                 "%.17g",
                 i, hw[i / 2304], eng[i / 768 % 3], bits[i / 256 % 3], b, sq,
                 keys[j], a, c);
    }
    assert_true(lmp_result_summary(r, "ttft_s") >
                lmp_result_summary(r, "ttft_roofline_s"));
    char *x = lmp_result_summary_row(r, "json");
    char *y = lmp_result_summary_row(single, "json");
    assert_string_equal(x, y);
    lmp_free(x);
    lmp_free(y);
    lmp_result_free(single);
    lmp_options_free(one);
    checked++;
  }
  assert_int_equal(k, 0);
  assert_int_equal(row, 4608);
  assert_int_equal(checked, (4608 + 6) / 7);
  lmp_sweep_free(s);
  lmp_options_free(o);
  lmp_model_free(m1);
  lmp_model_free(m);
  lmp_close(d);
}

/* A sweep streams: the heap in use after PLAN_FUSE_AFTER + 10
 * configurations (each evaluates the plan at least once, so the plan has
 * fused itself by then: a one-time allocation) and after 20,000 is the
 * same (the result's buffers are reused, nothing is kept).
 * mallinfo2 reports 0 under ASan's allocator, where this compares 0 and 0;
 * the normal build is the one that measures. */
static void test_sweep_memory_is_constant(void **state) {
  (void)state;
  lmp_error err;
  lmp_data *d = lmp_open(NULL, NULL, NULL, &err);
  lmp_model *m = lmp_model_load(d, "models/llama-2-7b-hf.json", &err);
  lmp_options *o = lmp_options_new();
  lmp_options_set(o, "max-batch", "no", NULL);
  lmp_sweep *s = lmp_sweep_new(d, m, o);
  assert_int_equal(lmp_sweep_values(s, "batch", "1..20000", &err), 0);
  const lmp_result *r;
  size_t at10 = 0;
  for (int i = 1; lmp_sweep_next(s, &r, &err) == 1; i++)
    if (i == PLAN_FUSE_AFTER + 10)
      at10 = mallinfo2().uordblks;
  size_t at20000 = mallinfo2().uordblks;
  assert_true(at20000 <= at10);
  lmp_sweep_free(s);
  lmp_options_free(o);
  lmp_model_free(m);
  lmp_close(d);
}

/* The SLO choice against a brute-force search over the same rows. */
static void test_slo_matches_brute_force(void **state) {
  (void)state;
  lmp_error err;
  lmp_data *d = lmp_open(NULL, NULL, NULL, &err);
  lmp_model *m = lmp_model_load(d, "models/llama-2-7b-hf.json", &err);
  assert_non_null(m);
  lmp_options *o = lmp_options_new();
  lmp_options_set(o, "max-batch", "no", NULL);
  lmp_options_set(o, "hardware", "a100-sxm-40gb", NULL);
  for (int per_gpu = 0; per_gpu < 2; per_gpu++) {
    lmp_sweep *s = lmp_sweep_new(d, m, o);
    lmp_sweep_values(s, "batch", "1..256x2", &err);
    lmp_sweep_values(s, "seq-len", "512,2048,4096", &err);
    lmp_sweep_values(s, "tp", "1,2,3", &err); /* 3 divides no head count */
    lmp_slo *slo =
        lmp_slo_new("ttft=400ms,tpot=20ms",
                    per_gpu ? "throughput-per-gpu" : "throughput", &err);
    assert_non_null(slo);
    double best = -1, nfit = 0, nttft = 0, ntpot = 0, nbad = 0, n = 0;
    double best_b = 0, best_s = 0, best_tp = 0;
    const lmp_result *r;
    int k;
    while ((k = lmp_sweep_next(s, &r, &err)) != 0) {
      n++;
      if (k < 0) {
        nbad++;
        lmp_slo_offer_error(slo, &err);
        continue;
      }
      lmp_slo_offer(slo, r);
      if (!lmp_result_summary(r, "fits"))
        nfit++;
      else if (lmp_result_summary(r, "ttft_s") > 0.4)
        nttft++;
      else if (lmp_result_summary(r, "tpot_s") > 0.02)
        ntpot++;
      else {
        double x =
            lmp_result_summary(r, per_gpu ? "throughput_per_gpu_tokens_per_s"
                                          : "throughput_tokens_per_s");
        if (x > best) {
          best = x;
          const lmp_options *c = lmp_sweep_options(s);
          (void)c;
          best_b = lmp_result_summary(r, "tokens_per_s") *
                   lmp_result_summary(r, "tpot_s");
          best_s = lmp_result_summary(r, "kv_cache_bytes");
          best_tp = lmp_result_summary(r, "gpus");
        }
      }
    }
    assert_double_exact(n, 9 * 3 * 3);
    assert_double_exact(nbad, 27);
    assert_true(best > 0);
    char *j = lmp_slo_result(slo, "json");
    char want[256];
    snprintf(want, sizeof(want),
             "\"lost\": {\"does_not_fit\": %.0f, \"ttft\": "
             "%.0f, \"tpot\": %.0f, \"e2e\": 0, "
             "\"invalid\": 27}",
             nfit, nttft, ntpot);
    assert_contains(j, want);
    char nb[64];
    snprintf(nb, sizeof(nb), "\"batch_size\": %.0f,", round(best_b));
    assert_contains(j, nb);
    snprintf(nb, sizeof(nb), "\"kv_cache_bytes\": %.0f,", best_s);
    assert_contains(j, nb);
    snprintf(nb, sizeof(nb), "\"gpus\": %.0f,", best_tp);
    assert_contains(j, nb);
    lmp_free(j);
    lmp_slo_free(slo);
    lmp_sweep_free(s);
  }
  assert_null(lmp_slo_new("ttft=fast", NULL, &err));
  assert_null(lmp_slo_new("tpot=30ms", "latency", &err));
  lmp_options_free(o);
  lmp_model_free(m);
  lmp_close(d);
}

/* Found by fuzz_parallel: text[0..len) need not end in a NUL, and a syntax
 * error's caret context was read past len up to the next newline (a heap
 * overflow on a fuzzer's buffer). len stops at "{ bad"; "}PAST" is beyond. */
static void test_load_text_is_bounded(void **state) {
  (void)state;
  static const char buf[] = "{ bad}PAST\n";
  Error e;
  err_clear(&e);
  assert_null(pardb_load_text("x.json", buf, 5, &e));
  assert_true(e.set);
  assert_null(strstr(e.context, "PAST"));
}

/* Found in review for fuzz_parallel: a latency of 1e308 us was taken
 * (1e302 s a step); a latency is at most 1e6 us (1 s), refused at its
 * member (line 2). 1e6 itself is taken: 1 s a step. */
static void test_latency_bounded(void **state) {
  (void)state;
  static const char fmt[] =
      "{\"format\": \"lm-predictor-parallel\", \"latency_source\": \"t\",\n"
      " \"latency_us\": {\"pcie\": 1, \"nvlink\": %s, \"network\": 1},\n"
      " \"families\": []}";
  char text[512];
  Error e;
  snprintf(text, sizeof(text), fmt, "1e308");
  err_clear(&e);
  assert_null(pardb_load_text("l.json", text, strlen(text), &e));
  assert_contains(e.msg, "nvlink: a latency in microseconds, from 0 to 1e6");
  assert_int_equal(e.line, 2);
  snprintf(text, sizeof(text), fmt, "1e6");
  ParDb *pd = pardb_load_text("l.json", text, strlen(text), &e);
  assert_non_null(pd);
  assert_double_near(pd->lat[0], 1.0, 1e-12);
  pardb_free(pd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_sum_is_step_by_step),
      cmocka_unit_test(test_tp2_communication_rows),
      cmocka_unit_test(test_pp2_footprint_and_pipeline),
      cmocka_unit_test(test_link_choice),
      cmocka_unit_test(test_ep_mechanism),
      cmocka_unit_test(test_tiny_moe_tp2_ep2),
      cmocka_unit_test(test_tiny_moe_tp2_with_ep2),
      cmocka_unit_test(test_ep_pp_send_crosses_nodes),
      cmocka_unit_test(test_families_tp2),
      cmocka_unit_test(test_families_split_weights),
      cmocka_unit_test(test_rules_refused),
      cmocka_unit_test(test_sweep_outlives_its_base_options),
      cmocka_unit_test(test_sweep_rows_match_single_runs),
      cmocka_unit_test(test_load_text_is_bounded),
      cmocka_unit_test(test_latency_bounded),
      cmocka_unit_test(test_sweep_calibrated_rows_match_unfused_runs),
      cmocka_unit_test(test_slo_matches_brute_force),
      cmocka_unit_test(test_sweep_memory_is_constant),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
