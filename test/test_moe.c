/* test_moe.c: mixture of experts, latent attention, Mamba-2 hybrids and
 * quantization from the config (issue 11), end to end through lmrun and
 * the module database.
 *
 * Every expected number is derived in this file by hand from the configs
 * in test/data/configs/ (written out below, independently of the templates
 * and module_db.json) or is a published figure with its source in
 * test/data/configs/README.md. */
#include "testutil.h"
#include "modabi.h"

#include <math.h>
#include <unistd.h>

#define CFG "test/data/configs/"

static json_t *run_json(const char *args) {
  char *out = NULL;
  int rc = tu_run(&out, "%s %s --format json 2>/dev/null", tu_bin("lmrun"),
                  args);
  if (rc != 0)
    print_error("lmrun %s: rc %d\n%s\n", args, rc, out);
  assert_int_equal(rc, 0);
  json_error_t je;
  json_t *j = json_loads(out, 0, &je);
  if (!j)
    print_error("not one JSON document: %s\n%s\n", je.text, out);
  assert_non_null(j);
  free(out);
  return j;
}

static double num(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  if (!json_is_number(v))
    fail_msg("no number %s", k);
  return json_number_value(v);
}

static json_t *phase(json_t *doc, const char *name) {
  return tu_json_find(json_object_get(doc, "phases"), "phase", name);
}

static json_t *op_at(json_t *ph, const char *path) {
  return tu_json_find(json_object_get(ph, "ops"), "path", path);
}

static bool has_op(json_t *ph, const char *path) {
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(ph, "ops"), i, o) {
    if (strcmp(json_string_value(json_object_get(o, "path")), path) == 0)
      return true;
  }
  return false;
}

static json_t *memory(json_t *doc) {
  return json_object_get(json_object_get(doc, "summary"), "memory");
}

static void near_rel(double got, double want, double rel) {
  if (!(fabs(got - want) <= rel * fabs(want)))
    fail_msg("%.17g is not within %g of %.17g (%+.3f%%)", got, rel, want,
             (got - want) / want * 100);
}

/* ---------------------------------------------------------------- */

/* Expected experts touched, E*(1 - (1 - k/E)^N), from the experts
 * module's weight bytes with H = I = 1 and 0.5 bytes per weight (so one
 * expert's gate_up matrix is 1 byte). */
static void test_moe_experts_touched(void **state) {
  (void)state;
  Db *db = tu_load_db("module_db.json");
  Error e;
  err_clear(&e);
  ModuleDef *md =
      db_find(db, "transformers.models.mixtral.modeling_mixtral.MixtralExperts", &e);
  assert_non_null(md);
  const AtomicOp *op = db_find_op(md, "gate_up_proj");
  assert_non_null(op);
  static const struct {
    double N, E, k, balance, want;
  } cases[] = {
      {1, 8, 2, 1, 2},               /* one token: its k experts */
      {2, 8, 2, 1, 3.5},             /* 8 * (1 - (3/4)^2) = 8 * 7/16 */
      {3, 8, 2, 1, 4.625},           /* 8 * (1 - 27/64) = 37/8 */
      {1, 128, 8, 1, 8},             /* Qwen3-MoE, one token */
      {2, 128, 8, 1, 15.5},          /* 128 * (1 - (15/16)^2) = 128 * 31/256 */
      {2, 8, 2, 0.5, 3},             /* skewed: E' = 4, 4 * (1 - 1/4) */
      {5, 8, 2, 0.1, 2},             /* E' = max(k, 0.8) = 2: always the same 2 */
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    double args[] = {cases[i].N, 1, 1, cases[i].E, cases[i].k,
                     cases[i].balance, 0, 0.5, 2};
    double got = node_eval(op->ast[M_WEIGHT_BYTES], args, M_WEIGHT_BYTES);
    near_rel(got, cases[i].want, 1e-15);
  }
  /* large N: libm's pow as the independent reference; DeepSeek-V3 decode
   * with 64 tokens touches 256 * (1 - (31/32)^64) = 221.6 of 256 */
  static const double big[][3] = {{64, 256, 8}, {16, 128, 8}, {4096, 256, 8}};
  for (size_t i = 0; i < LM_ARRAY_LEN(big); i++) {
    double N = big[i][0], E = big[i][1], k = big[i][2];
    double args[] = {N, 1, 1, E, k, 1, 0, 0.5, 2};
    double got = node_eval(op->ast[M_WEIGHT_BYTES], args, M_WEIGHT_BYTES);
    near_rel(got, E * (1 - pow(1 - k / E, N)), 1e-13);
  }
  db_free(db);
}

/* Mixtral-8x7B by hand. Attention: q, o H x 4096, k, v H x 1024 (8 KV
 * heads of 128); router E x H; norms 2H per layer; experts 3 H I each. */
static void test_moe_mixtral_parameters(void **state) {
  (void)state;
  const double V = 32000, H = 4096, I = 14336, L = 32, E = 8, k = 2;
  double attn = 2 * H * 32 * 128 + 2 * H * 8 * 128;
  double common = attn + E * H + 2 * H;
  double total = 2 * V * H + H + L * (common + E * 3 * H * I);
  double active = 2 * V * H + H + L * (common + k * 3 * H * I);
  json_t *j = run_json(CFG "mixtral-8x7b-v0.1.json -S 512");
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);   /* 46,702,792,704 */
  assert_double_exact(num(p, "active"), active); /* 12,879,925,248 */
  near_rel(total, 46.7e9, 0.005);  /* published: 46.7B */
  near_rel(active, 12.9e9, 0.005); /* published: 12.9B per token */
  /* decode, B = 1: the token's 2 experts are read, memory-bound */
  json_t *d = phase(j, "decode");
  json_t *gu = op_at(d, "model.layers.mlp.experts.gate_up_proj");
  assert_double_exact(num(gu, "flops"), 2 * 1 * k * H * 2 * I);
  assert_double_exact(num(gu, "weight_bytes"), 2 * H * 2 * I * 2);
  assert_string_equal(json_string_value(json_object_get(gu, "bound")), "memory");
  /* prefill, 512 tokens: all 8 experts (8 * (1 - 0.75^512) = 8 - 8e-64) */
  json_t *pf = phase(j, "prefill");
  gu = op_at(pf, "model.layers.mlp.experts.gate_up_proj");
  assert_double_exact(num(gu, "flops"), 2 * 512 * k * H * 2 * I);
  assert_double_exact(num(gu, "weight_bytes"), E * H * 2 * I * 2);
  /* router: 2 N H E + 5 N E (softmax) + N E (top-k) + 2 N k */
  json_t *g = op_at(pf, "model.layers.mlp.gate");
  assert_double_exact(num(g, "flops"),
                      2 * 512 * H * E + 5 * 512 * E + 512 * E + 2 * 512 * k);
  json_decref(j);
}

/* --expert-balance: B = 4 decode tokens over Mixtral's 8 experts touch
 * 8 * (1 - (3/4)^4) = 5.46875 experts uniformly, 4 * (1 - (1/2)^4) = 3.75
 * when they spread over half of them. */
static void test_moe_expert_balance(void **state) {
  (void)state;
  const double H = 4096, I = 14336;
  json_t *u = run_json(CFG "mixtral-8x7b-v0.1.json -B 4 -S 64 --phase decode");
  json_t *s = run_json(CFG "mixtral-8x7b-v0.1.json -B 4 -S 64 --phase decode "
                       "--expert-balance 0.5");
  const char *p = "model.layers.mlp.experts.down_proj";
  near_rel(num(op_at(phase(u, "decode"), p), "weight_bytes"),
           5.46875 * I * H * 2, 1e-15);
  near_rel(num(op_at(phase(s, "decode"), p), "weight_bytes"), 3.75 * I * H * 2,
           1e-15);
  /* FLOPs follow the token-expert pairs, not the routing */
  assert_double_exact(num(op_at(phase(u, "decode"), p), "flops"),
                      num(op_at(phase(s, "decode"), p), "flops"));
  json_decref(u);
  json_decref(s);
  static const char *bad[] = {"0", "1.5", "abc", "-0.5", ""};
  for (size_t i = 0; i < LM_ARRAY_LEN(bad); i++) {
    char *out = NULL;
    int rc = tu_run(&out, "%s %s --expert-balance '%s'", tu_bin("lmrun"),
                    CFG "mixtral-8x7b-v0.1.json", bad[i]);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "--expert-balance"));
    free(out);
  }
}

/* Qwen3-30B-A3B by hand: Qwen3 attention (q/k norms of head_dim), 128
 * experts of 768, 8 per token. */
static void test_moe_qwen3_moe_parameters(void **state) {
  (void)state;
  const double V = 151936, H = 2048, L = 48, E = 128, k = 8, mi = 768;
  double attn = H * 32 * 128 * 2 + 2 * H * 4 * 128 + 2 * 128;
  double common = attn + E * H + 2 * H;
  double total = 2 * V * H + H + L * (common + E * 3 * H * mi);
  double active = 2 * V * H + H + L * (common + k * 3 * H * mi);
  json_t *j = run_json(CFG "qwen3-30b-a3b.json -S 128");
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);
  assert_double_exact(num(p, "active"), active);
  near_rel(total, 30.5e9, 0.005); /* model card: 30.5B in total */
  json_decref(j);
}

/* Qwen2-MoE (qwen2_moe): Qwen2's attention (q/k/v biases, head_dim =
 * hidden / heads) and in every layer (decoder_sparse_step 1, no
 * mlp_only_layers) a router over E experts of moe_intermediate_size mi,
 * top k, plus a shared expert of shared_expert_intermediate_size si on
 * every token, scaled by sigmoid(shared_expert_gate(x)) (a Linear H -> 1).
 * Per layer, with d = H / heads, KV = kv heads * d:
 *   attention  H*H + H (q, bias) + 2 * (H*KV + KV) (k, v, biases) + H*H (o)
 *   norms 2H; router E*H; experts E * 3*H*mi; shared 3*H*si; gate H
 * plus embed_tokens and lm_head 2*V*H (untied) and the final norm H.
 * Active: k experts instead of E (the shared expert always runs).
 * Qwen1.5-MoE-A2.7B (test/data/configs/qwen1.5-moe-a2.7b.json): V 151936,
 * H 2048, 24 layers, 16 heads (16 KV, d 128), E 60, k 4, mi 1408,
 * si 5632:
 *   attention 2*4,194,304 + 2048 + 2*(4,194,304 + 2048) = 16,783,360
 *   + norms 4,096 + router 122,880 + experts 60*8,650,752 = 519,045,120
 *   + shared 34,603,008 + gate 2,048 = 570,560,512 per layer; 24 layers
 *   13,693,452,288; + 2*311,164,928 + 2,048 = 14,315,784,192
 *   active: experts 4*8,650,752 = 34,603,008: 86,118,400 per layer,
 *   2,066,841,600 + 622,331,904 = 2,689,173,504
 * Published: "14.3B parameters in total and 2.7B activated" (Qwen1.5-MoE
 * model card). KV cache: 24 layers * 2 * 16 * 128 * 2 bytes = 196,608
 * bytes per token. Decode (one token): the router 2*H*E + 5E + E = 246,120
 * FLOPs (norm_topk_prob false: no renormalisation; true adds 2k = 8); the
 * shared-expert gating sigmoid (4) + product (H) + add (H) = 4,100 FLOPs,
 * reading (2 + 3H) * 2 = 12,292 bytes and writing (1 + 2H) * 2 = 8,194. */
static double qwen2_moe_count(double V, double H, double L, double heads,
                              double kv, double E, double k, double mi,
                              double si, double *active) {
  double d = H / heads, KV = kv * d;
  double attn = H * H + H + 2 * (H * KV + KV) + H * H;
  double common = attn + 2 * H + E * H + 3 * H * si + H;
  *active = 2 * V * H + H + L * (common + k * 3 * H * mi);
  return 2 * V * H + H + L * (common + E * 3 * H * mi);
}

static void test_moe_qwen2_moe(void **state) {
  (void)state;
  double active, total;
  total = qwen2_moe_count(151936, 2048, 24, 16, 16, 60, 4, 1408, 5632, &active);
  assert_double_exact(total, 14315784192.0); /* the sum written out above */
  assert_double_exact(active, 2689173504.0);
  json_t *j = run_json(CFG "qwen1.5-moe-a2.7b.json -S 1000");
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);
  assert_double_exact(num(p, "active"), active);
  near_rel(total, 14.3e9, 0.005); /* model card: 14.3B in total */
  near_rel(active, 2.7e9, 0.005); /* 2.7B activated */
  json_decref(j);
  /* --tp 2 (parallel.json): the shared expert split on its 5632 columns,
   * gate_proj 2048 x 2816 x 2 bytes = 11,534,336 per GPU; its gate
   * replicated (2048 x 2 bytes); one all-reduce per layer after the
   * shared expert's gated add, none after the routed experts */
  j = run_json(CFG "qwen1.5-moe-a2.7b.json -S 16 --tp 2");
  json_t *dt = phase(j, "decode");
  assert_double_exact(num(op_at(dt, "model.layers.mlp.shared_expert.gate_proj"),
                          "weight_bytes"), 2048 * 2816 * 2.0);
  assert_double_exact(num(op_at(dt, "model.layers.mlp.shared_expert_gate"),
                          "weight_bytes"), 2048 * 2.0);
  assert_true(has_op(dt, "model.layers.mlp.shared_gate.all_reduce"));
  assert_false(has_op(dt, "model.layers.mlp.experts.all_reduce"));
  json_decref(j);
  j = run_json(CFG "qwen1.5-moe-a2.7b.json -S 1000");
  assert_double_exact(num(memory(j), "kv_cache_bytes"), 1000 * 196608.0);
  json_t *d = phase(j, "decode");
  json_t *o = op_at(d, "model.layers.mlp.gate");
  assert_double_exact(num(o, "flops"), 2 * 2048.0 * 60 + 5 * 60 + 60);
  o = op_at(d, "model.layers.mlp.shared_gate");
  assert_double_exact(num(o, "flops"), 4 + 2 * 2048.0);
  assert_double_exact(num(o, "act_read_bytes"), (2 + 3 * 2048.0) * 2);
  assert_double_exact(num(o, "act_write_bytes"), (1 + 2 * 2048.0) * 2);
  o = op_at(d, "model.layers.mlp.shared_expert_gate");
  assert_double_exact(num(o, "flops"), 2 * 2048.0);
  assert_double_exact(num(o, "weight_bytes"), 2048 * 2.0);
  json_decref(j);
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "config.json");
  char *text = tu_read(CFG "qwen1.5-moe-a2.7b.json");
  /* norm_topk_prob true: 2 FLOPs per selected expert more */
  char *t1 = tu_replace(text, "\"norm_topk_prob\": false", "\"norm_topk_prob\": true");
  tu_write(path, t1);
  char args[600];
  snprintf(args, sizeof(args), "%s -S 16", path);
  j = run_json(args);
  o = op_at(phase(j, "decode"), "model.layers.mlp.gate");
  assert_double_exact(num(o, "flops"), 2 * 2048.0 * 60 + 5 * 60 + 60 + 2 * 4);
  json_decref(j);
  /* sliding layers (use_sliding_window with a window and
   * max_window_layers > 0) are refused at the flag */
  char *t2 = tu_replace(text, "\"use_sliding_window\": false",
                        "\"use_sliding_window\": true");
  tu_write(path, t2);
  char *out = NULL;
  assert_int_equal(tu_run(&out, "%s %s -S 16 2>&1", tu_bin("lmrun"), path), 1);
  assert_non_null(strstr(out, ".use_sliding_window"));
  assert_non_null(strstr(out, "no sliding-window layers are modelled"));
  free(out);
  /* Qwen/Qwen2-57B-A14B (keys of its config.json as re-saved in
   * zhoukz/qwen2-57b-a14b-4bit and nm-testing/Qwen2-57B-A14B-Instruct-FP8-KV,
   * their quantization_config left out): H 3584, 28 layers, 28 heads
   * (4 KV), E 64, k 8, mi 2560, si 20480, intermediate 18944 (unused:
   * every layer sparse). By hand: attention 2*12,845,056 + 3,584 +
   * 2*(1,835,008 + 512) = 29,364,736; + 7,168 + 229,376 + 64*27,525,120
   * + 220,200,960 + 3,584 = 2,011,413,504 per layer; 28 layers
   * 56,319,578,112 + 2*544,538,624 + 3,584 = 57,408,658,944 (Hub: 57.4B);
   * active: 8 experts, 470,006,784 per layer: 14,249,270,784 ("A14B"). */
  static const char q57[] =
      "{\"architectures\": [\"Qwen2MoeForCausalLM\"], \"attention_dropout\": 0.0, "
      "\"bos_token_id\": 151643, \"decoder_sparse_step\": 1, \"eos_token_id\": 151643, "
      "\"hidden_act\": \"silu\", \"hidden_size\": 3584, \"initializer_range\": 0.02, "
      "\"intermediate_size\": 18944, \"max_position_embeddings\": 131072, "
      "\"max_window_layers\": 28, \"mlp_only_layers\": [], \"model_type\": \"qwen2_moe\", "
      "\"moe_intermediate_size\": 2560, \"norm_topk_prob\": false, "
      "\"num_attention_heads\": 28, \"num_experts\": 64, \"num_experts_per_tok\": 8, "
      "\"num_hidden_layers\": 28, \"num_key_value_heads\": 4, "
      "\"output_router_logits\": false, \"rms_norm_eps\": 1e-06, "
      "\"rope_theta\": 1000000.0, \"router_aux_loss_coef\": 0.001, "
      "\"shared_expert_intermediate_size\": 20480, \"sliding_window\": 131072, "
      "\"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\", "
      "\"transformers_version\": \"4.42.4\", \"use_cache\": true, "
      "\"use_sliding_window\": false, \"vocab_size\": 151936}";
  tu_write(path, q57);
  total = qwen2_moe_count(151936, 3584, 28, 28, 4, 64, 8, 2560, 20480, &active);
  assert_double_exact(total, 57408658944.0);
  assert_double_exact(active, 14249270784.0);
  j = run_json(args);
  p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);
  assert_double_exact(num(p, "active"), active);
  near_rel(total, 57.4e9, 0.005);
  assert_true(fabs(active - 14e9) < 0.5e9);
  /* KV: 28 layers * 2 * 4 * 128 * 2 bytes = 57,344 per token */
  assert_double_exact(num(memory(j), "kv_cache_bytes"), 16 * 57344.0);
  json_decref(j);
  free(t2);
  free(t1);
  free(text);
  free(path);
  tu_rm_rf(dir);
  free(dir);
}

/* GLM-4.5 (glm4_moe): grouped-query attention with q/k/v biases
 * (attention_bias), o_proj without, explicit head_dim d, optional per-head
 * q/k RMSNorms (use_qk_norm: 2d), rotary on the first d * 0.5 dimensions;
 * the first fk = first_k_dense_replace layers a SwiGLU MLP of
 * intermediate_size I, the others DeepSeek-V3's MoE: router E*H (its
 * float32 e_score_correction_bias a buffer, not counted, as DeepSeek-V3's),
 * E experts and n_shared_experts S shared ones of moe_intermediate_size mi.
 * Per layer, with Q = heads * d and KV = kv * d:
 *   attention  H*Q + Q + 2 * (H*KV + KV) + Q*H + qk * 2d;  norms 2H
 *   dense MLP 3*H*I;  MoE E*H + E * 3*H*mi + S * 3*H*mi
 * plus embed_tokens and lm_head 2*V*H (untied) and the final norm H.
 * Active: k experts instead of E, without the input embedding (DeepSeek's
 * convention, shared by the deepseek_v3 template).
 * GLM-4.5-Air (test/data/configs/glm-4.5-air.json): V 151552, H 4096,
 * 46 layers, 96 heads, 8 KV, d 128, I 10944, mi 1408, E 128, S 1, k 8,
 * fk 1, use_qk_norm false:
 *   attention 50,331,648 + 12,288 + 2*(4,194,304 + 1,024) + 50,331,648
 *   = 109,066,240; + 8,192 = 109,074,432 per layer, 46: 5,017,423,872
 *   dense 3*4096*10944 = 134,479,872 (1 layer)
 *   MoE 524,288 + 128*17,301,504 + 17,301,504 = 2,232,418,304, 45 layers:
 *   100,458,823,680; + 2*620,756,992 + 4,096: 106,852,245,504
 *   active: 106,852,245,504 - 620,756,992 - 45*120*17,301,504
 *   = 12,803,366,912 (model card: "12B active")
 * The Hub's safetensors total, 110,468,824,832, also holds the MTP layer
 * (num_nextn_predict_layers 1, model.layers.46: a decoder layer with its
 * MoE, 109,074,432 + 2,232,418,304; eh_proj 2H*H = 33,554,432; enorm,
 * hnorm, shared_head.norm 3H = 12,288; its own embed_tokens and
 * shared_head.head 2*V*H = 1,241,513,984: 3,616,573,440) and the 46
 * float32 router biases of 128: 106,852,245,504 + 3,616,573,440 + 5,888
 * = 110,468,824,832 exactly. KV: 46 layers * 2 * 8 * 128 * 2 bytes =
 * 188,416 bytes per token. Decode rope: 3 FLOPs per rotated element,
 * (96 + 8) heads * 64 = 19,968. */
static double glm4_moe_count(double V, double H, double L, double heads,
                             double kv, double d, double I, double mi,
                             double E, double S, double k, double fk,
                             double qk, double *active) {
  double Q = heads * d, KV = kv * d;
  double attn = H * Q + Q + 2 * (H * KV + KV) + Q * H + qk * 2 * d;
  double moe = E * H + E * 3 * H * mi + S * 3 * H * mi;
  double total = 2 * V * H + H + L * (attn + 2 * H) + fk * 3 * H * I +
                 (L - fk) * moe;
  *active = total - V * H - (L - fk) * (E - k) * 3 * H * mi;
  return total;
}

static void test_moe_glm4_moe(void **state) {
  (void)state;
  double active, total;
  total = glm4_moe_count(151552, 4096, 46, 96, 8, 128, 10944, 1408, 128, 1,
                         8, 1, 0, &active);
  assert_double_exact(total, 106852245504.0); /* the sums written out above */
  assert_double_exact(active, 12803366912.0);
  /* with the MTP layer and the router biases: the Hub's total */
  assert_double_exact(total + 3616573440.0 + 46 * 128.0, 110468824832.0);
  json_t *j = run_json(CFG "glm-4.5-air.json -S 1000");
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);
  assert_double_exact(num(p, "active"), active);
  assert_double_exact(num(memory(j), "kv_cache_bytes"), 1000 * 188416.0);
  json_t *d = phase(j, "decode");
  assert_double_exact(num(op_at(d, "model.layers[moe].self_attn.rope"), "flops"),
                      3 * (96 + 8) * 64.0);
  assert_false(has_op(d, "model.layers[moe].self_attn.q_norm"));
  /* route as DeepSeek-V3's (n_group 1): 4E + E + E + 1 + E + E + 3k */
  assert_double_exact(num(op_at(d, "model.layers[moe].mlp.route"), "flops"),
                      8 * 128.0 + 1 + 3 * 8);
  json_decref(j);
  /* --tp 4: q 24 heads (4096 x 3072 + bias), KV 2 heads of 8, the dense
   * MLP's 10944 columns and the experts' 1408 split; all-reduce after the
   * MoE's shared add */
  j = run_json(CFG "glm-4.5-air.json -S 16 --tp 4");
  d = phase(j, "decode");
  assert_double_exact(num(op_at(d, "model.layers[moe].self_attn.q_proj"),
                          "weight_bytes"), (4096 * 3072.0 + 3072) * 2);
  assert_double_exact(num(op_at(d, "model.layers[moe].self_attn.k_proj"),
                          "weight_bytes"), (4096 * 256.0 + 256) * 2);
  assert_double_exact(num(op_at(d, "model.layers[dense].mlp.down_proj"),
                          "weight_bytes"), 2736 * 4096 * 2.0);
  assert_true(has_op(d, "model.layers[moe].mlp.shared_add.all_reduce"));
  json_decref(j);
  /* zai-org/GLM-4.5 (the keys of its config.json): H 5120, 92 layers, 96
   * heads, 8 KV, d 128, I 12288, mi 1536, E 160, S 1, k 8, fk 3,
   * use_qk_norm true. By hand: attention 62,914,560 + 12,288 +
   * 2*(5,242,880 + 1,024) + 62,914,560 + 256 = 136,329,472; + 10,240 per
   * layer, 92: 12,543,253,504; dense 3 * 188,743,680 = 566,231,040; MoE
   * 819,200 + 160*23,592,960 + 23,592,960 = 3,799,285,760, 89 layers:
   * 338,136,432,640; + 2*775,946,240 + 5,120: 352,797,814,784;
   * active 352,797,814,784 - 775,946,240 - 89*152*23,592,960
   * = 32,856,305,664 (model card: 355B total, 32B active). With the MTP
   * layer (136,339,712 + 3,799,285,760 + 2*5120*5120 + 3*5120
   * + 2*775,946,240 = 5,539,962,112) and 90 float32 router biases of 160:
   * 358,337,791,296, the Hub's safetensors total. */
  static const char glm45[] =
      "{\"architectures\": [\"Glm4MoeForCausalLM\"], \"attention_bias\": true, "
      "\"attention_dropout\": 0.0, \"pad_token_id\": 151329, "
      "\"eos_token_id\": [151329, 151336, 151338], \"head_dim\": 128, "
      "\"hidden_act\": \"silu\", \"hidden_size\": 5120, "
      "\"partial_rotary_factor\": 0.5, \"initializer_range\": 0.02, "
      "\"intermediate_size\": 12288, \"max_position_embeddings\": 131072, "
      "\"model_type\": \"glm4_moe\", \"moe_intermediate_size\": 1536, "
      "\"norm_topk_prob\": true, \"num_attention_heads\": 96, "
      "\"n_group\": 1, \"topk_group\": 1, \"n_routed_experts\": 160, "
      "\"n_shared_experts\": 1, \"routed_scaling_factor\": 2.5, "
      "\"num_experts_per_tok\": 8, \"first_k_dense_replace\": 3, "
      "\"num_hidden_layers\": 92, \"num_key_value_heads\": 8, "
      "\"rms_norm_eps\": 1e-05, \"rope_theta\": 1000000, "
      "\"num_nextn_predict_layers\": 1, \"tie_word_embeddings\": false, "
      "\"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.54.0\", "
      "\"use_cache\": true, \"use_qk_norm\": true, \"vocab_size\": 151552}";
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "config.json");
  tu_write(path, glm45);
  total = glm4_moe_count(151552, 5120, 92, 96, 8, 128, 12288, 1536, 160, 1,
                         8, 3, 1, &active);
  assert_double_exact(total, 352797814784.0);
  assert_double_exact(active, 32856305664.0);
  assert_double_exact(total + 5539962112.0 + 90 * 160.0, 358337791296.0);
  char args[600];
  snprintf(args, sizeof(args), "%s -S 16", path);
  j = run_json(args);
  p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);
  assert_double_exact(num(p, "active"), active);
  /* q_norm over 96 heads of 128, k_norm over 8 */
  d = phase(j, "decode");
  assert_double_exact(num(op_at(d, "model.layers[moe].self_attn.q_norm"),
                          "weight_bytes"), 128 * 2.0);
  assert_true(has_op(d, "model.layers[moe].self_attn.k_norm"));
  /* KV: 92 layers * 2 * 8 * 128 * 2 bytes = 376,832 per token */
  assert_double_exact(num(memory(j), "kv_cache_bytes"), 16 * 376832.0);
  json_decref(j);
  free(path);
  tu_rm_rf(dir);
  free(dir);
}

/* Granite MoE (granitemoe): Granite's layer (multipliers; attention
 * without biases here; head_dim = h / heads) with block_sparse_moe: a
 * router Linear h -> E and E experts of input_linear [E, 2I, h] and
 * output_linear [E, h, I]; tied embeddings.
 * granite-3.1-3b-a800m-instruct (test/data/configs/granite-3.1-3b-a800m-
 * instruct.json): V 49155, h 1536, 32 layers, 24 heads, 8 KV, d 64, I 512,
 * E 40, k 8: per layer q 1536*1536 = 2,359,296, k and v 2*1536*512 =
 * 1,572,864, o 2,359,296, norms 3,072, router 40*1536 = 61,440, experts
 * 40*3*1536*512 = 94,371,840: 100,727,808; 32 layers 3,223,289,856; +
 * 49155*1536 = 75,502,080 + 1,536: 3,298,793,472 (IBM: "3.3B", "3b").
 * Active: 8 experts, 18,874,368 instead of 94,371,840 per layer:
 * 882,874,368 ("a800m" counts without the embedding: 807,372,288).
 * KV: 32 * 2 * 8 * 64 * 2 = 65,536 bytes per token. Decode router: 2*h*E
 * + E (top-k) + 5k (softmax over the k selected) = 122,960 FLOPs. */
static void test_moe_granitemoe(void **state) {
  (void)state;
  double h = 1536, layer = 2 * h * h + 2 * h * 512 + 2 * h + 40 * h +
                           40 * 3 * h * 512;
  double total = 32 * layer + 49155 * h + h;
  double active = total - 32 * 32 * 3 * h * 512;
  assert_double_exact(total, 3298793472.0); /* the sums written out above */
  assert_double_exact(active, 882874368.0);
  near_rel(total, 3.3e9, 0.005);
  json_t *j = run_json(CFG "granite-3.1-3b-a800m-instruct.json -S 1000");
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);
  assert_double_exact(num(p, "active"), active);
  assert_double_exact(num(memory(j), "kv_cache_bytes"), 1000 * 65536.0);
  json_t *d = phase(j, "decode");
  assert_double_exact(num(op_at(d, "model.layers.block_sparse_moe.router"),
                          "flops"), 2 * h * 40 + 40 + 5 * 8);
  /* one token, 8 experts: gate_up 2 * 8 * h * 2 * 512 FLOPs */
  assert_double_exact(
      num(op_at(d, "model.layers.block_sparse_moe.gate_up_proj"), "flops"),
      2 * 8 * h * 2 * 512);
  /* logits / logits_scaling: one FLOP per logit */
  assert_double_exact(num(op_at(d, "logits_scaling"), "flops"), 49155);
  json_decref(j);
  /* --tp 2: experts split on their 512 columns, the router replicated,
   * one all-reduce after the experts' combine; --ep 2: 20 experts a GPU */
  j = run_json(CFG "granite-3.1-3b-a800m-instruct.json -S 16 --tp 2");
  d = phase(j, "decode");
  assert_double_exact(
      num(op_at(d, "model.layers.block_sparse_moe.router"), "weight_bytes"),
      40 * h * 2);
  /* E * (1 - (1 - k/E)^1) = 8 experts touched, in floating point */
  near_rel(
      num(op_at(d, "model.layers.block_sparse_moe.down_proj"), "weight_bytes"),
      8 * 256 * h * 2, 1e-12);
  assert_true(has_op(d, "model.layers.block_sparse_moe.combine.all_reduce"));
  json_decref(j);
  j = run_json(CFG "granite-3.1-3b-a800m-instruct.json -S 16 -B 2 --ep 2");
  d = phase(j, "decode");
  assert_true(has_op(d, "model.layers.block_sparse_moe.router.all_to_all"));
  json_decref(j);
}

/* Mixtral-8x22B: 56 layers, H 6144, 48 heads (8 KV), experts of 16384. */
static void test_moe_mixtral_8x22b(void **state) {
  (void)state;
  const double V = 32000, H = 6144, I = 16384, L = 56, E = 8, k = 2;
  double common = 2 * H * 48 * 128 + 2 * H * 8 * 128 + E * H + 2 * H;
  double total = 2 * V * H + H + L * (common + E * 3 * H * I);
  double active = 2 * V * H + H + L * (common + k * 3 * H * I);
  json_t *j = run_json(CFG "mixtral-8x22b-v0.1.json -S 64");
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);   /* 140,620,634,112 */
  assert_double_exact(num(p, "active"), active); /* 39,152,031,744 */
  near_rel(total, 141e9, 0.005); /* Mistral AI: 141B total */
  near_rel(active, 39e9, 0.005); /* 39B active */
  json_decref(j);
}

/* Qwen3-MoE's larger sizes, every layer sparse (decoder_sparse_step 1,
 * mlp_only_layers []): Qwen3-235B-A22B and Qwen3-Coder-480B-A35B. */
static double qwen3_moe_count(double V, double H, double L, double heads,
                              double kv, double E, double k, double mi,
                              double *active) {
  double attn = H * heads * 128 * 2 + 2 * H * kv * 128 + 2 * 128;
  double common = attn + E * H + 2 * H;
  *active = 2 * V * H + H + L * (common + k * 3 * H * mi);
  return 2 * V * H + H + L * (common + E * 3 * H * mi);
}

static void test_moe_qwen3_moe_sizes(void **state) {
  (void)state;
  double active, total;
  total = qwen3_moe_count(151936, 4096, 94, 64, 4, 128, 8, 1536, &active);
  json_t *j = run_json(CFG "qwen3-235b-a22b.json -S 16");
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);   /* 235,093,634,560 */
  assert_double_exact(num(p, "active"), active); /* 22,190,763,520 */
  near_rel(total, 235e9, 0.005);                 /* 235B */
  assert_true(fabs(active - 22e9) < 0.5e9);      /* "22B activated" */
  json_decref(j);
  total = qwen3_moe_count(151936, 6144, 62, 96, 8, 160, 8, 2560, &active);
  j = run_json(CFG "qwen3-coder-480b-a35b-instruct.json -S 16");
  p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);   /* 480,154,875,392 */
  assert_double_exact(num(p, "active"), active); /* 35,474,765,312 */
  near_rel(total, 480e9, 0.005);                 /* 480B */
  assert_true(fabs(active - 35e9) < 0.5e9);      /* 35B activated */
  json_decref(j);
}

/* Qwen3MoeDecoderLayer: layer i is sparse when i is not in mlp_only_layers
 * and (i + 1) % decoder_sparse_step == 0, else a dense MLP of
 * intermediate_size. Qwen3-30B-A3B with step 2 and mlp_only_layers [0, 1]:
 * the odd layers 1, 3, ..., 47 (24) are sparse but for 1: 23 sparse, 25
 * dense. */
static void test_moe_qwen3_sparse_layers(void **state) {
  (void)state;
  const double V = 151936, H = 2048, I = 6144, E = 128, k = 8, mi = 768;
  double attn = H * 32 * 128 * 2 + 2 * H * 4 * 128 + 2 * 128 + 2 * H;
  double sparse = attn + E * H, dense = attn + 3 * H * I;
  double total = 2 * V * H + H + 23 * (sparse + E * 3 * H * mi) + 25 * dense;
  double active = 2 * V * H + H + 23 * (sparse + k * 3 * H * mi) + 25 * dense;
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "config.json");
  char *text = tu_read(CFG "qwen3-30b-a3b.json");
  char *a = tu_replace(text, "\"mlp_only_layers\": []", "\"mlp_only_layers\": [0, 1]");
  char *b = tu_replace(a, "\"decoder_sparse_step\": 1", "\"decoder_sparse_step\": 2");
  tu_write(path, b);
  char args[600];
  snprintf(args, sizeof(args), "%s -S 16", path);
  json_t *j = run_json(args);
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);   /* 16,369,793,024 */
  assert_double_exact(num(p, "active"), active); /* 3,346,479,104 */
  json_t *d = phase(j, "decode");
  json_t *o = op_at(d, "model.layers[dense].mlp.down_proj");
  assert_double_exact(num(o, "count"), 25);
  assert_double_exact(num(o, "weight_bytes"), I * H * 2);
  o = op_at(d, "model.layers.mlp.experts.down_proj");
  assert_double_exact(num(o, "count"), 23);
  json_decref(j);
  /* every layer dense: no sparse rows at all */
  char *c = tu_replace(text, "\"decoder_sparse_step\": 1", "\"decoder_sparse_step\": 49");
  tu_write(path, c);
  j = run_json(args);
  assert_double_exact(num(json_object_get(j, "parameters"), "total"),
                      2 * V * H + H + 48 * dense);
  assert_false(has_op(phase(j, "decode"), "model.layers.mlp.experts.down_proj"));
  json_decref(j);
  free(text);
  free(a);
  free(b);
  free(c);
  free(path);
  tu_rm_rf(dir);
  free(dir);
}

/* Group-limited routing (DeepSeek-V3: n_group 8, topk_group 4; V2:
 * n_group 8, topk_group 3). A token picks M = topk_group of the G groups,
 * then k experts among their M * E / G experts. For one expert e:
 * P(e's group kept) = M / G, P(e chosen | kept) = k / (M E / G), so
 * P(e chosen) = k / E, as without groups, and N independent tokens leave
 * it untouched with (1 - k/E)^N: the expected count E (1 - (1 - k/E)^N)
 * is unchanged. A Monte-Carlo run of the routing (fixed seed) agrees, and
 * tells it from the naive E' = M E / G it would give if the step's tokens
 * all shared their groups. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rng_below(uint32_t n) {
  rng_state ^= rng_state << 13; /* xorshift64 */
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)((rng_state >> 11) % n);
}

static double mc_touched(int E, int G, int M, int k, int N, int trials) {
  int g = E / G;
  double sum = 0;
  for (int t = 0; t < trials; t++) {
    char touched[512] = {0};
    for (int n = 0; n < N; n++) {
      int groups[64], cand[512];
      for (int i = 0; i < G; i++)
        groups[i] = i;
      for (int i = 0; i < M; i++) { /* M distinct groups */
        int j = i + (int)rng_below((uint32_t)(G - i));
        int x = groups[i];
        groups[i] = groups[j];
        groups[j] = x;
      }
      int nc = 0;
      for (int i = 0; i < M; i++)
        for (int e = 0; e < g; e++)
          cand[nc++] = groups[i] * g + e;
      for (int i = 0; i < k; i++) { /* k distinct experts among them */
        int j = i + (int)rng_below((uint32_t)(nc - i));
        int x = cand[i];
        cand[i] = cand[j];
        cand[j] = x;
        touched[cand[i]] = 1;
      }
    }
    for (int e = 0; e < E; e++)
      sum += touched[e];
  }
  return sum / trials;
}

static void test_moe_group_limited(void **state) {
  (void)state;
  static const int cases[][5] = {
      /* E, G, M, k, N */
      {256, 8, 4, 8, 1}, {256, 8, 4, 8, 4}, {256, 8, 4, 8, 32},
      {160, 8, 3, 6, 4}, {160, 8, 3, 6, 16},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    double E = cases[i][0], G = cases[i][1], M = cases[i][2], k = cases[i][3],
           N = cases[i][4];
    double want = E * (1 - pow(1 - k / E, N));
    double naive = M * E / G * (1 - pow(1 - k / (M * E / G), N));
    double got = mc_touched(cases[i][0], cases[i][1], cases[i][2],
                            cases[i][3], cases[i][4], 3000);
    /* the standard error of 3000 trials is below 0.06 experts here */
    if (fabs(got - want) > 0.3)
      fail_msg("case %zu: Monte Carlo %g, formula %g", i, got, want);
    if (N > 1 && fabs(got - naive) < 0.6)
      fail_msg("case %zu: cannot tell %g from the naive %g", i, got, naive);
  }
  /* by hand: N = 4 tokens, E = 256, k = 8: 256 (1 - (31/32)^4) =
   * 256 - 923521 / 4096 = 30.5310... experts; the DeepSeek-V3 decode step
   * of 4 sequences reads that many experts' weights per MoE layer */
  json_t *j = run_json(CFG "deepseek-r1.json -B 4 -S 64 --phase decode --w-bits 16");
  json_t *o = op_at(phase(j, "decode"), "model.layers[moe].mlp.experts.down_proj");
  near_rel(num(o, "weight_bytes"), (256 - 923521.0 / 4096) * 2048 * 7168 * 2,
           1e-14);
  json_decref(j);
}

/* Nemotron 3 Nano 30B-A3B: E blocks (hybrid_override_pattern "MEMEM*E..."):
 * 23 Mamba-2, 6 attention, 23 MoE blocks; MoE: a float32-computed router
 * (128 x H) with a float32 bias buffer, 128 relu2 experts (up and down
 * only, 1856 wide), top 6, a shared relu2 expert of 3712. */
static void test_moe_nemotron_3_nano(void **state) {
  (void)state;
  const double V = 131072, H = 2688, nh = 64, P = 64, N = 128, G = 8, K = 4,
               E = 128, k = 6, mi = 1856, si = 3712;
  double di = nh * P, conv_dim = di + 2 * G * N;
  double mamba = H + H * (2 * di + 2 * G * N + nh) + conv_dim * K + conv_dim +
                 3 * nh + di + di * H;
  double attn = H + H * 32 * 128 * 2 + 2 * H * 2 * 128;
  double moe_common = H + E * H + 2 * H * si;
  double total = 2 * V * H + H + 23 * mamba + 6 * attn +
                 23 * (moe_common + E * 2 * H * mi);
  /* NVIDIA's active counts leave out the input embedding, as DeepSeek's
   * (A55B for Ultra: 54.99B; "3.2B active, 3.6B including embeddings") */
  double active = V * H + H + 23 * mamba + 6 * attn +
                  23 * (moe_common + k * 2 * H * mi);
  json_t *j = run_json(CFG "nvidia-nemotron-3-nano-30b-a3b-bf16.json -S 64");
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);   /* 31,577,937,344 */
  assert_double_exact(num(p, "active"), active); /* 3,227,751,872 */
  near_rel(total, 31.6e9, 0.005); /* model card: 31.6B total */
  assert_true(fabs(active - 3.2e9) < 0.05e9);          /* 3.2B active */
  assert_true(fabs(active + V * H - 3.6e9) < 0.05e9);  /* 3.6B with embeddings */
  json_t *d = phase(j, "decode");
  json_t *o = op_at(d, "backbone.layers[moe].mixer.experts.up_proj");
  assert_double_exact(num(o, "count"), 23);
  assert_double_exact(num(o, "flops"), 2 * k * H * mi);
  assert_double_exact(num(o, "weight_bytes"), k * H * mi * 2);
  o = op_at(d, "backbone.layers[moe].mixer.experts.act_fn");
  assert_double_exact(num(o, "flops"), 2 * k * mi);
  o = op_at(d, "backbone.layers[moe].mixer.shared_experts.down_proj");
  assert_double_exact(num(o, "weight_bytes"), si * H * 2);
  o = op_at(d, "backbone.layers[moe].mixer.gate");
  assert_double_exact(num(o, "flops"), 2 * H * E);
  /* no latent projections in Nano */
  assert_false(has_op(d, "backbone.layers[moe].mixer.fc1_latent_proj"));
  /* the Mamba state per sequence: the conv state (conv_dim channels,
   * K - 1 taps) at the cache precision, the SSM state (heads x P x N) in
   * the config's mamba_ssm_cache_dtype, float32: 4 bytes */
  json_t *mem = json_object_get(json_object_get(j, "summary"), "memory");
  json_t *kinds = json_object_get(mem, "kv_cache_bytes_by_layer_kind");
  assert_double_exact(num(kinds, "mamba"),
                      23 * (conv_dim * (K - 1) * 2 + nh * P * N * 4));
  json_decref(j);
  j = run_json(CFG "nvidia-nemotron-3-nano-30b-a3b-bf16.json -S 64 "
                   "--kv-bits 8");
  mem = json_object_get(json_object_get(j, "summary"), "memory");
  kinds = json_object_get(mem, "kv_cache_bytes_by_layer_kind");
  assert_double_exact(num(kinds, "mamba"),
                      23 * (conv_dim * (K - 1) * 1 + nh * P * N * 4));
  json_decref(j);
  /* Nemotron-H-56B: 54 Mamba-2 (256 heads of 64, N 256), 10 attention
   * (64 heads, 8 KV, 128 wide), 54 squared-ReLU MLPs of 32768 */
  const double H5 = 8192, nh5 = 256, N5 = 256, I5 = 32768;
  double di5 = nh5 * P, cd5 = di5 + 2 * G * N5;
  double m5 = H5 + H5 * (2 * di5 + 2 * G * N5 + nh5) + cd5 * K + cd5 +
              3 * nh5 + di5 + di5 * H5;
  double a5 = H5 + H5 * 64 * 128 * 2 + 2 * H5 * 8 * 128;
  double t5 = 2 * V * H5 + H5 + 54 * m5 + 10 * a5 + 54 * (H5 + 2 * H5 * I5);
  j = run_json(CFG "nemotron-h-56b-base-8k.json -S 16");
  assert_double_exact(num(json_object_get(j, "parameters"), "total"), t5);
  near_rel(t5, 56e9, 0.0075); /* "56B" (Nemotron-H report; ours 56.32B) */
  json_decref(j);
}

/* Nemotron 3 Super 120B-A12B: 40 Mamba-2 (128 heads of 64), 8 attention
 * (32 heads, 2 KV), 40 latent MoE blocks: fc1_latent_proj 4096 -> 1024,
 * 512 relu2 experts of 2688 at the latent width, top 22, fc2_latent_proj
 * back, a shared expert of 5376 on the full width. The MTP layers
 * (mtp_hybrid_override_pattern) are not counted. */
static void test_moe_nemotron_3_super(void **state) {
  (void)state;
  const double V = 131072, H = 4096, nh = 128, P = 64, N = 128, G = 8, K = 4,
               E = 512, k = 22, mi = 2688, si = 5376, lat = 1024;
  double di = nh * P, conv_dim = di + 2 * G * N;
  double mamba = H + H * (2 * di + 2 * G * N + nh) + conv_dim * K + conv_dim +
                 3 * nh + di + di * H;
  double attn = H + H * 32 * 128 * 2 + 2 * H * 2 * 128;
  double moe_common = H + E * H + H * lat + lat * H + 2 * H * si;
  double total = 2 * V * H + H + 40 * mamba + 8 * attn +
                 40 * (moe_common + E * 2 * lat * mi);
  double active = V * H + H + 40 * mamba + 8 * attn +
                  40 * (moe_common + k * 2 * lat * mi);
  json_t *j = run_json(CFG "nvidia-nemotron-3-super-120b-a12b-fp8.json -S 64");
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);   /* 120,668,687,360 */
  assert_double_exact(num(p, "active"), active); /* 12,233,346,048 */
  near_rel(total, 120e9, 0.006);                 /* "120B" */
  near_rel(active, 12e9, 0.02);                  /* "A12B" */
  json_t *d = phase(j, "decode");
  json_t *o = op_at(d, "backbone.layers[moe].mixer.fc1_latent_proj");
  assert_double_exact(num(o, "weight_bytes"), H * lat * 2);
  o = op_at(d, "backbone.layers[moe].mixer.experts.up_proj");
  assert_double_exact(num(o, "flops"), 2 * k * lat * mi);
  assert_double_exact(num(o, "weight_bytes"), k * lat * mi * 2);
  o = op_at(d, "backbone.layers[moe].mixer.fc2_latent_proj");
  assert_double_exact(num(o, "flops"), 2 * lat * H);
  json_decref(j);
}

/* Nemotron 3 Ultra 550B-A55B: a transformers 5 config that lists the
 * blocks in layers_block_type (48 mamba, 48 moe, 12 attention) and has no
 * num_hidden_layers or hybrid_override_pattern; latent MoE of 2048, 512
 * experts of 5120, top 22, shared 10240; Mamba 256 heads of 64. */
static void test_moe_nemotron_3_ultra(void **state) {
  (void)state;
  const double V = 131072, H = 8192, nh = 256, P = 64, N = 128, G = 8, K = 4,
               E = 512, k = 22, mi = 5120, si = 10240, lat = 2048;
  double di = nh * P, conv_dim = di + 2 * G * N;
  double mamba = H + H * (2 * di + 2 * G * N + nh) + conv_dim * K + conv_dim +
                 3 * nh + di + di * H;
  double attn = H + H * 64 * 128 * 2 + 2 * H * 2 * 128;
  double moe_common = H + E * H + H * lat + lat * H + 2 * H * si;
  double total = 2 * V * H + H + 48 * mamba + 12 * attn +
                 48 * (moe_common + E * 2 * lat * mi);
  double active = V * H + H + 48 * mamba + 12 * attn +
                  48 * (moe_common + k * 2 * lat * mi);
  json_t *j = run_json(CFG "nvidia-nemotron-3-ultra-550b-a55b-bf16.json -S 16");
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);   /* 549,308,968,960 */
  assert_double_exact(num(p, "active"), active); /* 54,985,076,736 */
  near_rel(total, 550e9, 0.005);                 /* "550B" */
  near_rel(active, 55e9, 0.005);                 /* "A55B" */
  json_t *kinds = json_object_get(memory(j), "kv_cache_bytes_by_layer_kind");
  assert_double_exact(num(kinds, "attention"), 12 * 2 * 2 * 128 * 2 * 16.0);
  json_decref(j);
  /* layers_block_type and num_hidden_layers must agree */
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "config.json");
  char *text = tu_read(CFG "nvidia-nemotron-3-ultra-550b-a55b-bf16.json");
  char *t2 = tu_replace(text, "\"initializer_range\"",
                        "\"num_hidden_layers\": 100, \"initializer_range\"");
  tu_write(path, t2);
  char *out = NULL;
  assert_int_equal(tu_run(&out, "%s %s", tu_bin("lmrun"), path), 1);
  assert_non_null(strstr(out, "layers_block_type has one entry per layer"));
  free(out);
  free(t2);
  /* an unknown block name without num_hidden_layers: an error at the
   * entry, not a layer left out of every count (the first entry of the
   * Ultra config is "mamba") */
  t2 = tu_replace(text, "\"mamba\"", "\"mamba3\"");
  tu_write(path, t2);
  assert_int_equal(tu_run(&out, "%s %s", tu_bin("lmrun"), path), 1);
  assert_non_null(strstr(out, ".layers_block_type[0]"));
  assert_non_null(strstr(out, "layers_block_type[0] is 'mamba3'; the "
                              "nemotron_h template models only: mamba, "
                              "attention, mlp, moe, linear_attention, "
                              "full_attention"));
  free(out);
  free(t2);
  /* the block names transformers uses now (NemotronHConfig: mamba ->
   * linear_attention, attention -> full_attention; remap_legacy_layer_types
   * maps the old ones): the same model, the same counts as above */
  char *t3 = tu_replace_all(text, "\"mamba\"", "\"linear_attention\"");
  t2 = tu_replace_all(t3, "\"attention\"", "\"full_attention\"");
  tu_write(path, t2);
  char args[600];
  snprintf(args, sizeof(args), "%s -S 16", path);
  j = run_json(args);
  p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);
  assert_double_exact(num(p, "active"), active);
  json_decref(j);
  free(t2);
  free(t3);
  free(text);
  free(path);
  tu_rm_rf(dir);
  free(dir);
}

/* Nemotron-H 47B and Nemotron Nano v2 (9B, 12B): configs written inline
 * with the geometry of NVIDIA-NeMo/Megatron-Bridge's recipes
 * (src/megatron/bridge/recipes/nemotronh/h100/nemotronh.py and
 * nemotron_nano_v2.py, snapshot 067f987: hybrid_layer_pattern,
 * hidden_size, ffn_hidden_size, heads, query groups, kv_channels, Mamba
 * heads, head_dim, state, groups) under the HF config's key names,
 * vocabulary 131,072 (the Nemotron-H tokenizer). */
static double nemotron_dense_total(double H, double I, double heads,
                                   double kv, double hd, double nh, double P,
                                   double N, double nm, double na, double nf) {
  const double V = 131072, G = 8, K = 4;
  double di = nh * P, conv_dim = di + 2 * G * N;
  double mamba = H + H * (2 * di + 2 * G * N + nh) + conv_dim * K + conv_dim +
                 3 * nh + di + di * H;
  double attn = H + H * heads * hd * 2 + 2 * H * kv * hd;
  return 2 * V * H + H + nm * mamba + na * attn + nf * (H + 2 * H * I);
}

static void test_moe_nemotron_sizes(void **state) {
  (void)state;
  static const struct {
    const char *pattern;
    double layers, H, I, heads, hd, nh, P, N, nm, na, nf, published, rel;
  } m[] = {
      /* Nemotron-H-47B-Base-8K: "47B" (Nemotron-H report) */
      {"M-M-M-M-M-M-M-M-M*-M-M-M-M-M-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-"
       "M-M-M-M---MM---M-M*-M-M-M-M-M-",
       98, 8192, 30720, 64, 128, 256, 64, 256, 45, 5, 48, 47e9, 0.005},
      /* NVIDIA-Nemotron-Nano-9B-v2: "9B" in its name (ours 8.89B) */
      {"M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-", 56, 4480,
       15680, 40, 128, 128, 80, 128, 27, 4, 25, 9e9, 0.02},
      /* NVIDIA-Nemotron-Nano-12B-v2: "12B" (ours 12.31B) */
      {"M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M-", 62,
       5120, 20480, 40, 128, 128, 80, 128, 28, 6, 28, 12e9, 0.03},
  };
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "config.json");
  for (size_t i = 0; i < LM_ARRAY_LEN(m); i++) {
    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "{\"architectures\": [\"NemotronHForCausalLM\"], \"model_type\": "
             "\"nemotron_h\", \"num_hidden_layers\": %g, \"hidden_size\": %g, "
             "\"intermediate_size\": %g, \"num_attention_heads\": %g, "
             "\"num_key_value_heads\": 8, \"head_dim\": %g, \"vocab_size\": "
             "131072, \"hybrid_override_pattern\": \"%s\", \"mamba_num_heads\": "
             "%g, \"mamba_head_dim\": %g, \"ssm_state_size\": %g, \"n_groups\": "
             "8, \"conv_kernel\": 4, \"mlp_hidden_act\": \"relu2\"}\n",
             m[i].layers, m[i].H, m[i].I, m[i].heads, m[i].hd, m[i].pattern,
             m[i].nh, m[i].P, m[i].N);
    tu_write(path, cfg);
    char args[600];
    snprintf(args, sizeof(args), "%s -S 16", path);
    json_t *j = run_json(args);
    double want = nemotron_dense_total(m[i].H, m[i].I, m[i].heads, 8, m[i].hd,
                                       m[i].nh, m[i].P, m[i].N, m[i].nm,
                                       m[i].na, m[i].nf);
    assert_double_exact(num(json_object_get(j, "parameters"), "total"), want);
    near_rel(want, m[i].published, m[i].rel);
    json_decref(j);
  }
  free(path);
  tu_rm_rf(dir);
  free(dir);
}

/* FP4 tensor cores (B200: 9,000 dense TFLOPS): gpt-oss-120b's MXFP4
 * experts with 4-bit activations compute at FP4; attention's bf16
 * projections stay at 16 bits. H100 has no FP4: MXFP4 weights are
 * dequantized to bf16, so the experts compute at 16 bits there even with
 * 8-bit activations. */
static void test_moe_fp4_peak(void **state) {
  (void)state;
  json_t *j = run_json(CFG "gpt-oss-120b.json -S 512 --a-bits 4 --hardware b200");
  json_t *hw = json_object_get(j, "hardware");
  assert_double_exact(num(hw, "peak_fp4_flops"), 9000e12);
  assert_double_exact(num(hw, "peak_fp6_flops"), 4500e12);
  json_t *pf = phase(j, "prefill");
  json_t *o = op_at(pf, "model.layers.mlp.experts.gate_up_proj");
  assert_string_equal(json_string_value(json_object_get(o, "peak")), "FP4");
  double rt = num(o, "roofline_time_s");
  double want = fmax(num(o, "flops") / 9000e12, num(o, "bytes") / 7700e9);
  near_rel(rt, want, 1e-12);
  o = op_at(pf, "model.layers.self_attn.q_proj");
  assert_string_equal(json_string_value(json_object_get(o, "peak")), "FP16/BF16");
  json_decref(j);
  j = run_json(CFG "gpt-oss-120b.json -S 512 --a-bits 8 --hardware h100-sxm");
  hw = json_object_get(j, "hardware");
  assert_null(json_object_get(hw, "peak_fp4_flops"));
  o = op_at(phase(j, "prefill"), "model.layers.mlp.experts.gate_up_proj");
  assert_string_equal(json_string_value(json_object_get(o, "peak")), "FP16/BF16");
  json_decref(j);
  /* --w-bits 4 --a-bits 4 on B200: every projection at FP4; on A100
   * (no FP4) the 8-bit peak, as before */
  j = run_json("models/llama-2-7b-hf.json -S 64 --w-bits 4 --a-bits 4 --hardware b200");
  o = op_at(phase(j, "prefill"), "model.layers.self_attn.q_proj");
  assert_string_equal(json_string_value(json_object_get(o, "peak")), "FP4");
  json_decref(j);
  j = run_json("models/llama-2-7b-hf.json -S 64 --w-bits 4 --a-bits 4 "
               "--hardware a100-sxm-80gb");
  o = op_at(phase(j, "prefill"), "model.layers.self_attn.q_proj");
  assert_string_equal(json_string_value(json_object_get(o, "peak")), "INT8");
  json_decref(j);
}

/* DeepSeek's attention per layer: q_a (H x q_lora) + its norm, q_b, the
 * joint kv_a (H x (kv_lora + rope)) + its norm, kv_b, o. */
static double mla_params(double H, double heads, double ql, double kvl,
                         double nope, double rope, double v) {
  return H * ql + ql + ql * heads * (nope + rope) + H * (kvl + rope) + kvl +
         kvl * heads * (nope + v) + heads * v * H;
}

/* DeepSeek-V3 architecture (the DeepSeek-R1 config: 61 layers, 3 dense,
 * 256 routed experts of 2048, 1 shared, top 8; MTP layer excluded). */
static void test_moe_deepseek_v3(void **state) {
  (void)state;
  const double V = 129280, H = 7168, I = 18432, mi = 2048, E = 256, k = 8;
  double attn = mla_params(H, 128, 1536, 512, 128, 64, 128);
  double dense = attn + 2 * H + 3 * H * I;
  double moe_common = attn + 2 * H + E * H + 3 * H * mi; /* router, shared */
  double total = 2 * V * H + H + 3 * dense + 58 * (moe_common + E * 3 * H * mi);
  /* DeepSeek's activated count leaves out the input embedding table (a
   * token reads one row of it) and keeps the output head: the template
   * counts active parameters so (DESIGN 17.1) */
  double active = V * H + H + 3 * dense + 58 * (moe_common + k * 3 * H * mi);
  json_t *j = run_json(CFG "deepseek-r1.json -S 2048 --attention eager");
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);   /* 671,026,404,352 */
  assert_double_exact(num(p, "active"), active); /* 36,625,603,584 */
  near_rel(total, 671e9, 0.005); /* published: 671B (without the MTP layer) */
  /* README_WEIGHTS: "36.6B (including 0.9B for the output Head)"; "37B" */
  near_rel(active, 36.6e9, 0.005);
  assert_true(fabs(active - 37e9) < 0.5e9);
  /* DeepSeek-V3's own config gives the same counts; Kimi-K2 (model_type
   * kimi_k2, DeepseekV3ForCausalLM: 384 experts, 1 dense layer, 64 heads,
   * vocab 163,840, no MTP layer) through deepseek_v3's template */
  json_t *v3 = run_json(CFG "deepseek-v3.json -S 16");
  assert_double_exact(num(json_object_get(v3, "parameters"), "total"), total);
  assert_double_exact(num(json_object_get(v3, "parameters"), "active"), active);
  assert_string_equal(json_string_value(json_object_get(v3, "family")),
                      "deepseek_v3");
  json_decref(v3);
  {
    const double Vk = 163840, Ek = 384;
    double ak = mla_params(H, 64, 1536, 512, 128, 64, 128);
    double dk = ak + 2 * H + 3 * H * I;
    double mk = ak + 2 * H + Ek * H + 3 * H * mi;
    double tk = 2 * Vk * H + H + dk + 60 * (mk + Ek * 3 * H * mi);
    double ck = Vk * H + H + dk + 60 * (mk + k * 3 * H * mi);
    json_t *kj = run_json(CFG "kimi-k2-instruct.json -S 16");
    json_t *kp = json_object_get(kj, "parameters");
    assert_double_exact(num(kp, "total"), tk); /* 1,026,408,209,408 */
    assert_double_exact(num(kp, "active"), ck); /* 31,687,072,768 */
    assert_true(fabs(tk - 1e12) < 0.05e12); /* model card: "1 trillion total" */
    assert_true(fabs(ck - 32e9) < 0.5e9); /* 32B activated */
    assert_string_equal(json_string_value(json_object_get(kj, "family")),
                        "kimi_k2");
    json_decref(kj);
  }

  /* MLA's cache: (512 + 64) elements per token and layer, 61 layers */
  json_t *mem = memory(j);
  assert_double_exact(num(mem, "kv_cache_bytes"), 61 * 576 * 2 * 2048.0);
  json_t *kinds = json_object_get(mem, "kv_cache_bytes_by_layer_kind");
  assert_double_exact(num(kinds, "dense"), 3 * 576 * 2 * 2048.0);
  assert_double_exact(num(kinds, "moe"), 58 * 576 * 2 * 2048.0);

  /* decode: the absorbed path over the latent cache */
  json_t *d = phase(j, "decode");
  const char *at = "model.layers[moe].self_attn.";
  char path[128];
  snprintf(path, sizeof(path), "%sqk_latent", at);
  json_t *o = op_at(d, path);
  assert_double_exact(num(o, "flops"), 2 * 128 * 1 * 2048.0 * 576);
  assert_double_exact(num(o, "kv_read_bytes"), 2048.0 * 576 * 2);
  snprintf(path, sizeof(path), "%sq_absorb", at);
  o = op_at(d, path);
  assert_double_exact(num(o, "flops"), 2 * 128 * 128 * 512.0);
  /* FP8 weights with a float32 scale per 128 x 128 block */
  assert_double_exact(num(o, "weight_bytes"),
                      128 * 128 * 512.0 * (8 + 32.0 / 16384) / 8);
  snprintf(path, sizeof(path), "%sout_absorb", at);
  assert_double_exact(num(op_at(d, path), "flops"), 2 * 128 * 512 * 128.0);
  snprintf(path, sizeof(path), "%skv_b_proj", at);
  assert_false(has_op(d, path));
  snprintf(path, sizeof(path), "%sqk_matmul", at);
  assert_false(has_op(d, path));
  /* prefill: the decompressing path */
  json_t *pf = phase(j, "prefill");
  snprintf(path, sizeof(path), "%skv_b_proj", at);
  o = op_at(pf, path);
  assert_double_exact(num(o, "flops"), 2 * 2048.0 * 512 * 128 * (128 + 128));
  assert_double_exact(num(o, "kv_read_bytes"), 2048.0 * 512 * 2);
  snprintf(path, sizeof(path), "%sqk_matmul", at);
  assert_double_exact(num(op_at(pf, path), "flops"),
                      2 * 128 * 2048.0 * 2048 * 192);
  snprintf(path, sizeof(path), "%sqk_latent", at);
  assert_false(has_op(pf, path));
  /* the kv_a projection writes the cache's growth */
  snprintf(path, sizeof(path), "%skv_a_proj_with_mqa", at);
  assert_double_exact(num(op_at(d, path), "kv_write_bytes"), 576 * 2.0);

  /* decode reads the shared expert always and the touched routed ones */
  o = op_at(d, "model.layers[moe].mlp.shared_experts.down_proj");
  assert_double_exact(num(o, "flops"), 2 * mi * H);
  o = op_at(d, "model.layers[moe].mlp.experts.down_proj");
  assert_double_exact(num(o, "weight_bytes"), k * mi * H * (8 + 32.0 / 16384) / 8);

  /* weights: FP8 (+ scales) for every projection, routed or not; bf16
   * embeddings, lm_head, norms, routers; float32 router bias buffers and
   * the rotary inv_freq (32 floats) */
  double norms = 3 * (2 * H + 1536 + 512) + 58 * (2 * H + 1536 + 512) + H;
  double bf16 = 2 * V * H + norms + 58 * E * H;
  double fp8 = total - bf16;
  double want = fp8 * (8 + 32.0 / 16384) / 8 + bf16 * 2 + 58 * E * 4 + 32 * 4;
  assert_double_exact(num(mem, "weight_bytes"), want);
  json_t *q = json_object_get(j, "quantization");
  assert_string_equal(json_string_value(json_object_get(q, "method")), "fp8");
  json_decref(j);
  /* --w-bits overrides: every weight at 16 bits */
  j = run_json(CFG "deepseek-r1.json -S 16 --w-bits 16");
  assert_double_exact(num(memory(j), "weight_bytes"),
                      2 * total + 58 * E * 4 + 32 * 4);
  json_decref(j);
}

/* DeepSeek-V2.5: 60 layers, 1 dense, 160 experts of 1536, 2 shared, top 6;
 * the router is an nn.Linear. */
static void test_moe_deepseek_v2(void **state) {
  (void)state;
  const double V = 102400, H = 5120, I = 12288, mi = 1536, E = 160, k = 6;
  double attn = mla_params(H, 128, 1536, 512, 128, 64, 128);
  double dense = attn + 2 * H + 3 * H * I;
  double moe_common = attn + 2 * H + E * H + 2 * 3 * H * mi;
  double total = 2 * V * H + H + dense + 59 * (moe_common + E * 3 * H * mi);
  double active = V * H + H + dense + 59 * (moe_common + k * 3 * H * mi);
  static const char *const files[] = {"deepseek-v2.5.json", "deepseek-v2.json"};
  for (int f = 0; f < 2; f++) {
    char args[200];
    snprintf(args, sizeof(args), CFG "%s -S 64", files[f]);
    json_t *j = run_json(args);
    json_t *p = json_object_get(j, "parameters");
    assert_double_exact(num(p, "total"), total);   /* 235,741,434,880 */
    assert_double_exact(num(p, "active"), active); /* 20,851,512,320 */
    near_rel(total, 236e9, 0.005); /* published: 236B total */
    near_rel(active, 21e9, 0.0075); /* 21B activated (rounded: -0.7%) */
    json_decref(j);
  }
}

/* DeepSeek-V2-Lite: q_lora_rank null, so q_proj (H x heads*(nope + rope))
 * instead of q_a/q_norm/q_b; 27 layers, 1 dense, 64 experts of 1408, 2
 * shared, top 6, no groups. The exact count is the checkpoint's (safetensors,
 * 15,706,484,224). */
static void test_moe_deepseek_v2_lite(void **state) {
  (void)state;
  const double V = 102400, H = 2048, I = 10944, mi = 1408, E = 64, k = 6;
  double attn = H * 16 * (128 + 64) + H * (512 + 64) + 512 +
                512 * 16 * (128 + 128) + 16 * 128 * H;
  double dense = attn + 2 * H + 3 * H * I;
  double moe_common = attn + 2 * H + E * H + 2 * 3 * H * mi;
  double total = 2 * V * H + H + dense + 26 * (moe_common + E * 3 * H * mi);
  double active = V * H + H + dense + 26 * (moe_common + k * 3 * H * mi);
  json_t *j = run_json(CFG "deepseek-v2-lite-chat.json -S 64");
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(total, 15706484224.0); /* the checkpoint's count */
  assert_double_exact(num(p, "total"), total);
  assert_double_exact(num(p, "active"), active); /* 2,451,435,008 */
  near_rel(total, 15.7e9, 0.005);                /* published: 15.7B */
  assert_true(fabs(active - 2.4e9) < 0.06e9);    /* 2.4B activated */
  /* no q-LoRA: q_proj, and no q_a_proj */
  json_t *d = phase(j, "decode");
  assert_true(has_op(d, "model.layers[moe].self_attn.q_proj"));
  assert_false(has_op(d, "model.layers[moe].self_attn.q_a_proj"));
  assert_double_exact(num(op_at(d, "model.layers[moe].self_attn.q_proj"),
                          "weight_bytes"),
                      H * 16 * 192 * 2);
  json_decref(j);
}

/* gpt-oss by hand: attention with biases and 64 sinks, a biased router,
 * experts of 3 H I weights plus 2I + H biases, untied embeddings. */
static double gpt_oss_total(double L, double E, double *experts_w) {
  const double V = 201088, H = 2880, I = 2880;
  double attn = H * 64 * 64 + 64 * 64 + 2 * (H * 8 * 64 + 8 * 64) +
                64 * 64 * H + H + 64;
  double layer = attn + 2 * H + E * H + E + E * (3 * H * I + 2 * I + H);
  *experts_w = L * E * 3 * H * I;
  return 2 * V * H + H + L * layer;
}

static void test_moe_gpt_oss(void **state) {
  (void)state;
  const double V = 201088, H = 2880;
  double xw;
  double total = gpt_oss_total(24, 32, &xw);
  json_t *j = run_json(CFG "gpt-oss-20b.json -S 256 --attention eager");
  json_t *p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total); /* 20,914,757,184 */
  near_rel(total, 20.91e9, 0.005);             /* model card: 20.91B */
  /* OpenAI's active count (3.61B) leaves out the embedding table, as the
   * template does */
  near_rel(num(p, "active"), 3.61e9, 0.005);
  assert_double_exact(num(p, "active"), total - V * H - 24 * (32 - 4) *
                                                          (3 * H * 2880 + 2 * 2880 + H));
  /* MXFP4 experts: 4.25 bits per weight; biases and the rest bf16; the
   * rotary buffer 32 floats */
  double want = xw * 4.25 / 8 + (total - xw) * 2 + 32 * 4;
  assert_double_exact(num(memory(j), "weight_bytes"), want);
  near_rel(want / 1073741824.0, 12.8, 0.005); /* checkpoint: 12.8 GiB */
  /* sliding layers hold 128 tokens of cache, full ones all 256 */
  json_t *kinds = json_object_get(memory(j), "kv_cache_bytes_by_layer_kind");
  assert_double_exact(num(kinds, "sliding"), 12 * 2 * 8 * 64 * 2 * 128.0);
  /* the sinks widen each softmax row by one: decode attends over the
   * window's 128 keys + the sink; prefill (eager) over all 256 + 1 */
  json_t *sm = op_at(phase(j, "decode"), "model.layers[sliding].self_attn.softmax");
  assert_double_exact(num(sm, "flops"), 5 * 64 * 1 * (128 + 1.0));
  sm = op_at(phase(j, "prefill"), "model.layers[sliding].self_attn.softmax");
  assert_double_exact(num(sm, "flops"), 5 * 64 * 256.0 * (256 + 1));
  json_decref(j);

  j = run_json(CFG "gpt-oss-120b.json -S 4096 --hardware h100-sxm");
  total = gpt_oss_total(36, 128, &xw);
  p = json_object_get(j, "parameters");
  assert_double_exact(num(p, "total"), total);
  near_rel(total, 116.83e9, 0.005);         /* 116.83B */
  near_rel(num(p, "active"), 5.13e9, 0.005); /* 5.13B */
  want = xw * 4.25 / 8 + (total - xw) * 2 + 32 * 4;
  json_t *mem = memory(j);
  assert_double_exact(num(mem, "weight_bytes"), want); /* 65,248,815,872 */
  near_rel(want / 1073741824.0, 60.8, 0.005);          /* 60.8 GiB */
  /* built to fit one 80 GB GPU */
  assert_true(json_is_true(json_object_get(mem, "fits")));
  assert_true(num(mem, "max_batch") >= 1);
  json_decref(j);
}

/* Nemotron-H-8B: 24 Mamba-2, 4 attention, 24 MLP blocks. */
static void test_moe_nemotron_h(void **state) {
  (void)state;
  const double V = 131072, H = 4096, I = 21504, nh = 128, P = 64, N = 128,
               G = 8, K = 4;
  double di = nh * P, conv_dim = di + 2 * G * N;
  double mamba = H + H * (2 * di + 2 * G * N + nh) + conv_dim * K + conv_dim +
                 3 * nh + di + di * H;
  double attn = H + H * 32 * 128 * 2 + 2 * H * 8 * 128;
  double mlp = H + 2 * H * I;
  double total = 2 * V * H + H + 24 * mamba + 4 * attn + 24 * mlp;
  json_t *j = run_json(CFG "nemotron-h-8b-base-8k.json -S 16 -B 2");
  assert_double_exact(num(json_object_get(j, "parameters"), "total"), total);
  assert_true(fabs(total - 8e9) < 0.5e9); /* model card: 8B */
  /* a Mamba2 layer's state per sequence: conv (K - 1) x conv_dim, SSM
   * heads x P x N, 16 bits: 2 x (30,720 + 1,048,576) = 2,158,592 bytes */
  double state1 = 2 * ((K - 1) * conv_dim + nh * P * N);
  json_t *kinds = json_object_get(memory(j), "kv_cache_bytes_by_layer_kind");
  assert_double_exact(num(kinds, "mamba"), 2 * 24 * state1);
  assert_double_exact(num(kinds, "attention"), 2 * 4 * 2 * 8 * 128 * 2 * 16.0);
  /* decode: one recurrent step reads and writes the SSM state */
  json_t *o = op_at(phase(j, "decode"), "backbone.layers[mamba].mixer.ssm_update");
  assert_double_exact(num(o, "kv_read_bytes"), 2 * nh * P * N * 2);
  assert_double_exact(num(o, "flops"), 2 * nh * (5 * P * N + 2 * P + 5));
  assert_false(has_op(phase(j, "decode"), "backbone.layers[mamba].mixer.ssd_scan"));
  /* prefill: the chunked scan, T = 16 < chunk 128 so Q = 16, one chunk */
  o = op_at(phase(j, "prefill"), "backbone.layers[mamba].mixer.ssd_scan");
  double T = 16, Q = 16;
  double f = 2 * 2 * T * Q * G * N +
             2 * nh * (T * Q + 2 * T * Q * P + 2 * T * N * P + 2 * 1 * N * P +
                       2 * T * N * P + 3 * T * P + 5 * T);
  assert_double_exact(num(o, "flops"), f);
  json_decref(j);
  /* the state does not grow with the sequence */
  j = run_json(CFG "nemotron-h-8b-base-8k.json -S 4096 -B 2");
  kinds = json_object_get(memory(j), "kv_cache_bytes_by_layer_kind");
  assert_double_exact(num(kinds, "mamba"), 2 * 24 * state1);
  json_decref(j);
}

/* GPTQ / AWQ: b bits plus a 16-bit scale and a b-bit zero per group of
 * group_size weights of a column: b + (16 + b) / g bits per weight, on every
 * projection and expert (not the router, embeddings, lm_head, norms). */
static void test_moe_gptq_awq(void **state) {
  (void)state;
  const double V = 32000, H = 4096, I = 14336, L = 32, E = 8;
  double lin = L * (2 * H * 32 * 128 + 2 * H * 8 * 128 + E * 3 * H * I);
  double rest = 2 * V * H + H + L * (E * H + 2 * H);
  char *dir = tu_tmpdir();
  static const char *methods[] = {"gptq", "awq"};
  for (int m = 0; m < 2; m++) {
    char *text = tu_read(CFG "mixtral-8x7b-v0.1.json");
    char q[200];
    snprintf(q, sizeof(q),
             "\"quantization_config\": {\"bits\": 4, \"group_size\": 128, "
             "\"quant_method\": \"%s\"},\n  \"rms_norm_eps\"",
             methods[m]);
    char *t2 = tu_replace(text, "\"rms_norm_eps\"", q);
    char *path = path_join(dir, "config.json");
    tu_write(path, t2);
    char args[600];
    snprintf(args, sizeof(args), "%s -S 16", path);
    json_t *j = run_json(args);
    /* 4 + 20/128 = 4.15625 bits: exact in binary */
    assert_double_exact(num(memory(j), "weight_bytes"),
                        lin * 4.15625 / 8 + rest * 2 + 64 * 4);
    json_decref(j);
    free(text);
    free(t2);
    free(path);
  }
  tu_rm_rf(dir);
  free(dir);
}

/* Errors and notes of the new config keys, located in the config. */
static void test_moe_config_errors(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "config.json");
  static const struct {
    const char *file, *from, *to, *msg;
    int rc;
  } cases[] = {
      /* an unknown block character: located at the character itself
       * (NemotronHConfig._pattern_to_list raises KeyError on it) */
      {"nemotron-h-8b-base-8k.json", "M-M-M-M*-M", "MXM-M*-M-M",
       "hybrid_override_pattern[1] is 'X'; the nemotron_h template knows "
       "only the block characters 'M', '*', '-', 'E'", 1},
      {"nemotron-h-8b-base-8k.json", "M-M-M-M*-M", "MEM-M*-M-M",
       "E blocks need n_routed_experts", 1},
      {"qwen3-30b-a3b.json", "\"mlp_only_layers\": []", "\"mlp_only_layers\": [48]",
       "mlp_only_layers[0] must be a layer index, 0 to num_hidden_layers - 1 (47)", 1},
      {"qwen3-30b-a3b.json", "\"mlp_only_layers\": []", "\"mlp_only_layers\": 3",
       "mlp_only_layers must be an array of layer indices", 1},
      {"nemotron-h-8b-base-8k.json", "M-M-M-M*-M", "M-M-M*-M",
       "hybrid_override_pattern has 50 characters but num_hidden_layers is 52", 1},
      {"deepseek-r1.json", "\"quant_method\": \"fp8\"", "\"method\": \"fp8\"",
       "quantization_config has no quant_method", 1},
      {"deepseek-r1.json", "\"weight_block_size\": [\n      128,\n      128\n    ]",
       "\"weight_block_size\": [0, 128]", "weight_block_size must be [rows, columns]", 1},
      {"gpt-oss-20b.json", "\"num_experts_per_tok\": 4", "\"num_experts_per_tok\": 40",
       "num_experts_per_tok", 1},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char src[256];
    snprintf(src, sizeof(src), CFG "%s", cases[i].file);
    char *text = tu_read(src);
    char *t2 = tu_replace(text, cases[i].from, cases[i].to);
    tu_write(path, t2);
    char *out = NULL;
    int rc = tu_run(&out, "%s %s", tu_bin("lmrun"), path);
    if (rc != cases[i].rc || !strstr(out, cases[i].msg))
      print_error("case %zu: rc %d\n%s\n", i, rc, out);
    assert_int_equal(rc, cases[i].rc);
    assert_non_null(strstr(out, cases[i].msg));
    assert_non_null(strstr(out, "config.json:")); /* located */
    free(out);
    free(text);
    free(t2);
  }
  /* the caret under the unknown character: line 19 of the file is
   *   "hybrid_override_pattern": "M-M-X-...
   * (2 spaces, the 25-character key with its quotes, ':', ' ', '"'), so
   * the pattern starts at column 31 and its character 4 is at column 35 */
  {
    char *text = tu_read(CFG "nemotron-h-8b-base-8k.json");
    char *t2 = tu_replace(text, "M-M-M-M*-M", "M-M-X-M*-M");
    tu_write(path, t2);
    char *out = NULL;
    assert_int_equal(tu_run(&out, "%s %s", tu_bin("lmrun"), path), 1);
    assert_non_null(strstr(out, "config.json:19:35: .hybrid_override_pattern"));
    assert_non_null(strstr(out, "hybrid_override_pattern[4] is 'X'"));
    /* the caret line: the gutter "| ", 34 spaces (columns 1-34), ^ */
    assert_non_null(strstr(out, "|                                   ^"));
    free(out);
    free(t2);
    free(text);
  }
  /* Qwen3-MoE sliding windows: use_sliding_window alone slides no layer
   * when sliding_window is null (Qwen3MoeConfig: None) or max_window_layers
   * covers every layer (48 of 48): the model loads, 30,532,122,624
   * parameters as always; with a window and max_window_layers 40 the
   * layers 40-47 would slide, which the template refuses at the flag */
  {
    char *text = tu_read(CFG "qwen3-30b-a3b.json");
    char *t1 = tu_replace(text, "\"use_sliding_window\": false",
                          "\"use_sliding_window\": true");
    char *t2 = tu_replace(t1, "\"sliding_window\": null",
                          "\"sliding_window\": 4096");
    char *t3 = tu_replace(t2, "\"max_window_layers\": 48",
                          "\"max_window_layers\": 40");
    const char *ok[] = {t1, t2};
    for (int i = 0; i < 2; i++) {
      tu_write(path, ok[i]);
      char args[600];
      snprintf(args, sizeof(args), "%s -S 16", path);
      json_t *j = run_json(args);
      assert_double_exact(num(json_object_get(j, "parameters"), "total"),
                          30532122624.0);
      json_decref(j);
    }
    tu_write(path, t3);
    char *out = NULL;
    assert_int_equal(tu_run(&out, "%s %s", tu_bin("lmrun"), path), 1);
    assert_non_null(strstr(out, "(8) == 0 (0) does not hold: no sliding-window "
                                "layers are modelled for Qwen3-MoE"));
    assert_non_null(strstr(out, ".use_sliding_window"));
    free(out);
    free(t3);
    free(t2);
    free(t1);
    free(text);
  }
  /* GPTQ bits other than 2, 3, 4, 8 */
  {
    char *text = tu_read(CFG "mixtral-8x7b-v0.1.json");
    char *t2 = tu_replace(text, "\"rms_norm_eps\"",
                          "\"quantization_config\": {\"bits\": 5, "
                          "\"quant_method\": \"gptq\"}, \"rms_norm_eps\"");
    tu_write(path, t2);
    char *out = NULL;
    assert_int_equal(tu_run(&out, "%s %s", tu_bin("lmrun"), path), 1);
    assert_non_null(strstr(out, "quantization_config.bits is 5; GPTQ/AWQ use 2, 3, 4 or 8"));
    free(out);
    free(text);
    free(t2);
  }
  /* the checkpoint self-check compares the quantized footprint: silent at
   * gpt-oss-20b's predicted 13,761,264,896 bytes, a warning at 2 bytes a
   * parameter */
  {
    tu_copy(CFG "gpt-oss-20b.json", path);
    char *index = path_join(dir, "model.safetensors.index.json");
    static const struct {
      const char *size;
      bool warns;
    } idx[] = {{"13761264896", false}, {"41829514368", true}};
    for (size_t i = 0; i < LM_ARRAY_LEN(idx); i++) {
      char body[200];
      snprintf(body, sizeof(body),
               "{\"metadata\": {\"total_size\": %s}, \"weight_map\": {}}\n",
               idx[i].size);
      tu_write(index, body);
      char *out = NULL;
      assert_int_equal(tu_run(&out, "%s %s -S 16", tu_bin("lmrun"), dir), 0);
      bool warned = strstr(out, "at the quantization_config's widths") != NULL;
      if (warned != idx[i].warns)
        print_error("%s\n", out);
      assert_true(warned == idx[i].warns);
      free(out);
    }
    unlink(index);
    free(index);
  }
  /* a method the template does not model: said so, weights at --w-bits */
  char *text = tu_read(CFG "gpt-oss-20b.json");
  char *t2 = tu_replace(text, "\"quant_method\": \"mxfp4\"",
                        "\"quant_method\": \"bitsandbytes\"");
  tu_write(path, t2);
  char *out = NULL;
  assert_int_equal(tu_run(&out, "%s %s -S 16", tu_bin("lmrun"), path), 0);
  assert_non_null(strstr(out, "method bitsandbytes is not modelled"));
  free(out);
  free(text);
  free(t2);
  free(path);
  tu_rm_rf(dir);
  free(dir);
}

/* Every new family runs both attention implementations and phases with
 * finite values, and --attention flash keeps MLA's path per phase. */
static void test_moe_flash(void **state) {
  (void)state;
  json_t *j = run_json(CFG "deepseek-r1.json -S 4096 --attention flash");
  json_t *d = phase(j, "decode"), *pf = phase(j, "prefill");
  assert_true(has_op(d, "model.layers[moe].self_attn.flash_mla"));
  assert_false(has_op(d, "model.layers[moe].self_attn.qk_latent"));
  assert_true(has_op(pf, "model.layers[moe].self_attn.flash_attention"));
  /* FlashMLA: the 128 heads in tiles of Br = min(ceil(233472/2 /
   * (4 * 576)), 576) = 51 rows (H200's 228 KiB... here h100-sxm: 233472 B
   * of shared memory per SM): ceil(128 / 51) = 3 reads of the latent */
  json_t *o = op_at(d, "model.layers[moe].self_attn.flash_mla");
  assert_double_exact(num(o, "kv_read_bytes"), 3 * 4096.0 * 576 * 2);
  json_decref(j);
  static const char *files[] = {"mixtral-8x7b-v0.1.json", "qwen3-30b-a3b.json",
                                "deepseek-v2.5.json", "gpt-oss-20b.json",
                                "nemotron-h-8b-base-8k.json"};
  for (size_t i = 0; i < LM_ARRAY_LEN(files); i++) {
    char args[300];
    snprintf(args, sizeof(args), CFG "%s -S 1024 -B 3 --attention flash", files[i]);
    j = run_json(args);
    assert_true(num(json_object_get(j, "summary"), "tpot_s") > 0);
    json_decref(j);
  }
}

/* With a serving engine's calibrated times (the default), the grouped
 * expert GEMMs and MLA's projections are timed as GEMMs (compute counts:
 * at least the roofline), and the other phase's rows launch nothing: the
 * phase total is the sum of the rows shown. */
static void test_moe_calibrated(void **state) {
  (void)state;
  json_t *j = run_json(CFG "mixtral-8x7b-v0.1.json -S 2048");
  json_t *o = op_at(phase(j, "prefill"), "model.layers.mlp.experts.gate_up_proj");
  assert_string_equal(json_string_value(json_object_get(o, "bound")), "compute");
  assert_true(num(o, "time_s") >= num(o, "roofline_time_s"));
  json_decref(j);
  j = run_json(CFG "deepseek-r1.json -S 2048");
  static const char *const ph[] = {"prefill", "decode"};
  for (int i = 0; i < 2; i++) {
    json_t *p = phase(j, ph[i]);
    double sum = 0;
    size_t k;
    json_t *op;
    json_array_foreach(json_object_get(p, "ops"), k, op) {
      sum += num(op, "count") * num(op, "time_s");
    }
    near_rel(sum, num(json_object_get(p, "totals"), "time_s"), 1e-9);
  }
  o = op_at(phase(j, "decode"), "model.layers[moe].self_attn.q_absorb");
  assert_true(num(o, "time_s") >= num(o, "roofline_time_s"));
  json_decref(j);
}

/* Every format shows a phase's own rows only: in decode, MLA's
 * decompressing projection (kv_b_proj, prefill only) is absent from the
 * Markdown table and the HTML page too, and the absorbed path is there. */
static void test_moe_formats_one_phase(void **state) {
  (void)state;
  static const char *const fmts[] = {"table", "csv", "markdown", "html"};
  for (int i = 0; i < 4; i++) {
    char *out = NULL;
    int rc = tu_run(&out, "%s " CFG "deepseek-v2.5.json --phase decode "
                    "--format %s 2>&1", tu_bin("lmrun"), fmts[i]);
    assert_int_equal(rc, 0);
    if (strstr(out, "self_attn.kv_b_proj"))
      print_error("--format %s shows kv_b_proj in decode\n", fmts[i]);
    assert_null(strstr(out, "self_attn.kv_b_proj"));
    assert_non_null(strstr(out, "self_attn.q_absorb"));
    free(out);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_moe_experts_touched),
      cmocka_unit_test(test_moe_mixtral_parameters),
      cmocka_unit_test(test_moe_expert_balance),
      cmocka_unit_test(test_moe_qwen3_moe_parameters),
      cmocka_unit_test(test_moe_qwen2_moe),
      cmocka_unit_test(test_moe_glm4_moe),
      cmocka_unit_test(test_moe_granitemoe),
      cmocka_unit_test(test_moe_deepseek_v3),
      cmocka_unit_test(test_moe_deepseek_v2),
      cmocka_unit_test(test_moe_deepseek_v2_lite),
      cmocka_unit_test(test_moe_mixtral_8x22b),
      cmocka_unit_test(test_moe_qwen3_moe_sizes),
      cmocka_unit_test(test_moe_qwen3_sparse_layers),
      cmocka_unit_test(test_moe_group_limited),
      cmocka_unit_test(test_moe_nemotron_3_nano),
      cmocka_unit_test(test_moe_nemotron_sizes),
      cmocka_unit_test(test_moe_nemotron_3_super),
      cmocka_unit_test(test_moe_nemotron_3_ultra),
      cmocka_unit_test(test_moe_fp4_peak),
      cmocka_unit_test(test_moe_formats_one_phase),
      cmocka_unit_test(test_moe_gpt_oss),
      cmocka_unit_test(test_moe_nemotron_h),
      cmocka_unit_test(test_moe_gptq_awq),
      cmocka_unit_test(test_moe_config_errors),
      cmocka_unit_test(test_moe_flash),
      cmocka_unit_test(test_moe_calibrated),
  };
  return cmocka_run_group_tests_name("moe", tests, NULL, NULL);
}
