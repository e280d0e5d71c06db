/* test_families.c: the family templates of issue 10 (models/arch/ gpt2,
 * gptj, gpt_neox, falcon, opt, bloom, starcoder2, olmo2, cohere, granite,
 * phi3, phi, cohere2, olmo, gemma, gemma2, gemma3_text, gemma3, qwen2_vl,
 * qwen2_5_vl, qwen3_vl, qwen3_vl_moe, smollm3, mimo) filled with the real configs in
 * test/data/configs.
 *
 * Every expected number is derived here by hand from the config's values,
 * following the modeling files (the per-family parameter formulas are
 * written out below, independently of the templates and the module
 * database; DESIGN.md section 18.3 has the same table), and the parameter
 * counts are checked against the published ones of
 * test/data/configs/README.md. */
#include "testutil.h"
#include "runtime.h"

static Db *db;
static Registry *reg;

static int group_setup(void **state) {
  (void)state;
  db = tu_load_db("module_db.json");
  Error e;
  err_clear(&e);
  reg = reg_load(db, "generated_modules", &e);
  if (!reg)
    err_print(stderr, &e);
  return reg ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  reg_free(reg);
  db_free(db);
  return 0;
}

static Model *open_model(const char *path, Error *e) {
  err_clear(e);
  ModelOpenOpts o = {.arch_dir = "models/arch"};
  return model_open(path, &o, reg, e);
}

static Model *from_file(const char *path) {
  Error e;
  Model *m = open_model(path, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  return m;
}

typedef struct Eval {
  Plan *plan;
  Values *v;
} Eval;

/* Batch 1, T new tokens over KV length L, 16 bits everywhere. */
static void eval_attn(Model *m, double T, double L, AttnImpl attn, Eval *out) {
  Error e;
  err_clear(&e);
  out->plan = plan_build(m, attn, &e);
  if (!out->plan)
    err_print(stderr, &e);
  assert_non_null(out->plan);
  out->v = values_new(out->plan);
  double run[V_COUNT] = {[V_B] = 1,        [V_S] = L,
                         [V_T] = T,        [V_L] = L,
                         [V_W_BYTES] = 2,  [V_A_BYTES] = 2,
                         [V_KV_BYTES] = 2, [V_SRAM_BYTES] = 233472,
                         [V_E_BYTES] = 2};
  if (plan_eval(out->plan, run, out->v, &e) < 0)
    err_print(stderr, &e);
}

static void eval(Model *m, double T, double L, Eval *out) {
  eval_attn(m, T, L, ATTN_EAGER, out);
}

static void eval_free(Eval *x) {
  values_free(x->v);
  plan_free(x->plan);
}

static int find_row(const Eval *x, const char *path) {
  for (int r = 0; r < x->plan->nrows; r++)
    if (strcmp(x->plan->rows[r].path, path) == 0)
      return r;
  return -1;
}

static const double *row(const Eval *x, const char *path, double *count) {
  int r = find_row(x, path);
  if (r < 0)
    fail_msg("no row %s", path);
  if (count)
    *count = x->plan->rows[r].count;
  return x->v->row[r];
}

static double kv_cache(const Eval *x) {
  return x->v->state[M_KV_CACHE_BYTES - M_TRAFFIC];
}

static double params_of(Model *m) {
  Error e;
  err_clear(&e);
  Plan *p = plan_build(m, ATTN_EAGER, &e);
  assert_non_null(p);
  Values *v = values_new(p);
  double n = -1;
  assert_int_equal(plan_parameters(p, v, &n, NULL, &e), 0);
  values_free(v);
  plan_free(p);
  return n;
}

/* ---------------------------------------------------------------- */
/* Parameter counts by hand: V vocabulary, h width, n layers, H / K query
 * and key/value heads, d head_dim, f MLP width. */

/* GPT-2: wte + wpe; per block ln_1, c_attn (h -> 3h, bias), c_proj, ln_2,
 * c_fc (h -> f, bias), mlp.c_proj (f -> h, bias); ln_f; lm_head tied. */
static double p_gpt2(double V, double P, double h, double n, double f) {
  double blk = 2 * h + (h * 3 * h + 3 * h) + (h * h + h) + 2 * h + (h * f + f) +
               (f * h + h);
  return V * h + P * h + n * blk + 2 * h;
}
/* GPT-J: wte; per block ln_1, q/k/v/out (no bias), fc_in/fc_out (bias);
 * ln_f; lm_head untied with a bias. */
static double p_gptj(double V, double h, double n, double f) {
  double blk = 2 * h + 4 * h * h + (h * f + f) + (f * h + h);
  return V * h + n * blk + 2 * h + (h * V + V);
}
/* GPT-NeoX: embed_in, embed_out; per layer two LayerNorms,
 * query_key_value (bias), dense (bias), two MLP projections (bias). */
static double p_neox(double V, double h, double n, double f) {
  double blk =
      4 * h + (h * 3 * h + 3 * h) + (h * h + h) + (h * f + f) + (f * h + h);
  return 2 * V * h + n * blk + 2 * h;
}
/* Falcon-7B: word_embeddings (lm_head tied); per layer input_layernorm,
 * query_key_value h -> (H + 2) d (multi-query), dense, MLP 4h, no biases. */
static double p_falcon7b(double V, double h, double n, double H, double d) {
  double blk = 2 * h + h * (H + 2) * d + h * h + 2 * h * 4 * h;
  return V * h + n * blk + 2 * h;
}
/* OPT: embed_tokens, embed_positions (P + 2 rows); per layer q/k/v/out
 * with bias, two LayerNorms, fc1/fc2 with bias; final LayerNorm; tied. */
static double p_opt(double V, double P, double h, double n, double f) {
  double blk = 4 * (h * h + h) + 4 * h + (h * f + f) + (f * h + h);
  return V * h + (P + 2) * h + n * blk + 2 * h;
}
/* BLOOM: word_embeddings + its LayerNorm; per block two LayerNorms,
 * query_key_value, dense, 4h MLP, all with bias; ln_f; tied. */
static double p_bloom(double V, double h, double n) {
  double blk = 4 * h + (h * 3 * h + 3 * h) + (h * h + h) + (h * 4 * h + 4 * h) +
               (4 * h * h + h);
  return V * h + 2 * h + n * blk + 2 * h;
}
/* StarCoder2: tied; per layer two LayerNorms (bias), q/k/v/o with bias,
 * c_fc/c_proj with bias; final LayerNorm. */
static double p_starcoder2(double V, double h, double n, double H, double K,
                           double d, double f) {
  double att = (h * H * d + H * d) + 2 * (h * K * d + K * d) + (H * d * h + h);
  double blk = 4 * h + att + (h * f + f) + (f * h + h);
  return V * h + n * blk + 2 * h;
}
/* Llama-like: q/k/v/o, 3 MLP projections, `norms` norm weights of h per
 * layer, extra per-layer weights, final norm h; lm_head untied or tied. */
static double p_llamalike(double V, double h, double n, double H, double K,
                          double d, double f, double norms, double extra,
                          bool tied) {
  double blk =
      h * H * d + 2 * h * K * d + H * d * h + 3 * h * f + norms * h + extra;
  return V * h * (tied ? 1 : 2) + n * blk + h;
}
/* Phi (1, 1.5, 2): a parallel block of one LayerNorm (weight and bias,
 * 2h); q, k, v, dense with biases (h x h + h each, all heads); fc1
 * h x f + f, fc2 f x h + h; final LayerNorm 2h; untied lm_head with a bias
 * (V x h + V). */
static double p_phi(double V, double h, double n, double f) {
  double blk = 2 * h + 4 * (h * h + h) + (h * f + f) + (f * h + h);
  return V * h + n * blk + 2 * h + V * h + V;
}
/* Phi-3: qkv_proj h -> (H + 2K) d, o_proj, gate_up_proj h -> 2f, down_proj,
 * two RMSNorms; untied. */
static double p_phi3(double V, double h, double n, double H, double K, double d,
                     double f) {
  double blk = h * (H + 2 * K) * d + H * d * h + h * 2 * f + f * h + 2 * h;
  return 2 * V * h + n * blk + h;
}

static void test_families_parameters(void **state) {
  (void)state;
  static const struct {
    const char *file;
    const char *family;
    double published; /* exact, or rounded (then within 0.5%) */
    bool exact;
  } cases[] = {
      {"test/data/configs/gpt2.json", "gpt2", 124e6, false},
      {"test/data/configs/gpt-j-6b.json", "gptj", 6053381344.0, false},
      {"test/data/configs/pythia-1b.json", "gpt_neox", 1011781632.0, true},
      {"test/data/configs/falcon-7b.json", "falcon", 0, false},
      {"test/data/configs/opt-125m.json", "opt", 125e6, false},
      {"test/data/configs/bloom-560m.json", "bloom", 559214592.0, true},
      {"test/data/configs/starcoder2-3b.json", "starcoder2", 3.03e9, false},
      {"test/data/configs/olmo-2-1124-7b.json", "olmo2", 7.3e9, false},
      {"test/data/configs/c4ai-command-r-v01.json", "cohere", 35e9, false},
      {"test/data/configs/granite-3.0-2b-base.json", "granite", 2.53e9, false},
      {"test/data/configs/phi-3-mini-4k-instruct.json", "phi3", 3.82e9, false},
      {"test/data/configs/gemma-2-2b.json", "gemma2", 2614341888.0, true},
      {"test/data/configs/gemma-3-1b-it.json", "gemma3_text", 1e9, false},
      {"test/data/configs/gemma-3-4b-it.json", "gemma3", 0, false},
      {"test/data/configs/gemma-7b.json", "gemma", 8.54e9, false},
      {"test/data/configs/phi-2.json", "phi", 2.78e9, false},
      {"test/data/configs/c4ai-command-r7b-12-2024.json", "cohere2", 8.03e9,
       false},
      {"test/data/configs/olmo-1b-hf.json", "olmo", 1.18e9, false},
  };
  const double hand[] = {
      p_gpt2(50257, 1024, 768, 12, 3072),
      p_gptj(50400, 4096, 28, 16384),
      p_neox(50304, 2048, 16, 8192),
      p_falcon7b(65024, 4544, 32, 71, 64),
      p_opt(50272, 2048, 768, 12, 3072),
      p_bloom(250880, 1024, 24),
      p_starcoder2(49152, 3072, 30, 24, 2, 128, 12288),
      /* OLMo 2: two norms after the sub-layers, q_norm (H d), k_norm (K d) */
      p_llamalike(100352, 4096, 32, 32, 32, 128, 11008, 2, 32 * 128 + 32 * 128,
                  false),
      /* Command R: one LayerNorm (no bias) per layer, tied */
      p_llamalike(256000, 8192, 40, 64, 64, 128, 22528, 1, 0, true),
      p_llamalike(49155, 2048, 40, 32, 8, 64, 8192, 2, 0, true),
      p_phi3(32064, 3072, 32, 32, 32, 96, 8192),
      /* Gemma 2: four norms per layer, tied */
      p_llamalike(256000, 2304, 26, 8, 4, 256, 9216, 4, 0, true),
      /* Gemma 3: plus q_norm and k_norm of head_dim */
      p_llamalike(262144, 1152, 26, 4, 1, 256, 6912, 4, 2 * 256, true),
      /* gemma-3-4b's text_config: the rest from Gemma3TextConfig defaults
       * (8 heads, 4 kv heads, head_dim 256, vocabulary 262,208) */
      p_llamalike(262208, 2560, 34, 8, 4, 256, 10240, 4, 2 * 256, true),
      /* Gemma (1): Llama's layer, two norms, tied; 16 heads x 256 = 4096
       * on 3072: per layer 3072 x 4096 x 4 (q, k, v, o) = 50,331,648 +
       * 3 x 3072 x 24576 = 226,492,416 + 6,144 = 276,830,208; 28 layers
       * 7,751,245,824 + 256,000 x 3072 = 786,432,000 + 3,072 */
      p_llamalike(256000, 3072, 28, 16, 16, 256, 24576, 2, 0, true),
      /* phi-2: per layer 5,120 + 4 x 6,556,160 + 26,224,640 + 26,216,960
       * = 78,671,360; 32 layers 2,517,483,520; + 131,072,000 (embed) +
       * 5,120 + 131,123,200 (lm_head and its bias) */
      p_phi(51200, 2560, 32, 10240),
      /* Command R7B (cohere2): Cohere's layer, one LayerNorm without bias,
       * tied; 32 heads of 128, 8 kv heads: per layer 4096 + 2 x 16,777,216
       * + 2 x 4,194,304 + 176,160,768 = 218,107,904; 32 layers
       * 6,979,452,928 + 1,048,576,000 + 4,096 */
      p_llamalike(256000, 4096, 32, 32, 8, 128, 14336, 1, 0, true),
      /* OLMo-1B (olmo): Llama's layer with LayerNorms of no parameters
       * (not even the final one: minus p_llamalike's final h), tied: per
       * layer 4 x 2048^2 + 3 x 2048 x 8192 = 67,108,864; 16 layers
       * 1,073,741,824 + 50,304 x 2048 = 103,022,592 */
      p_llamalike(50304, 2048, 16, 16, 16, 128, 8192, 0, 0, true) - 2048,
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    Model *m = from_file(cases[i].file);
    assert_string_equal(m->family, cases[i].family);
    double n = params_of(m);
    if (n != hand[i])
      print_error("%s: %.0f, by hand %.0f\n", cases[i].file, n, hand[i]);
    assert_double_exact(n, hand[i]);
    if (cases[i].exact)
      assert_double_exact(n, cases[i].published);
    else if (cases[i].published > 0)
      assert_double_near(n, cases[i].published, 0.005);
    model_free(m);
  }
  /* the numbers of DESIGN.md section 18.3 and the README */
  assert_double_exact(hand[0], 124439808.0);
  assert_double_exact(hand[1], 6050882784.0);
  assert_double_exact(hand[3], 6921720704.0);
  /* Falcon-7B's Hub figure, 7.22B, counts lm_head.weight, which the
   * checkpoint stores although FalconForCausalLM ties it (65,024 x 4544) */
  assert_double_near(hand[3] + 65024.0 * 4544, 7.22e9, 0.005);
  assert_double_exact(hand[4], 125239296.0);
  assert_double_exact(hand[6], 3030371328.0);
  assert_double_exact(hand[7], 7298617344.0);
  assert_double_exact(hand[8], 34980831232.0);
  assert_double_exact(hand[9], 2533531648.0);
  assert_double_exact(hand[10], 3821079552.0);
  assert_double_exact(hand[12], 999885952.0);
  assert_double_exact(hand[14], 8537680896.0); /* Gemma-7B (Hub: 8.54B) */
  assert_double_exact(hand[15], 2779683840.0); /* phi-2 (Hub: 2.78B) */
  assert_double_exact(hand[16], 8028033024.0); /* Command R7B (Hub: 8.03B) */
  assert_double_exact(hand[17], 1176764416.0); /* OLMo-1B (Hub: 1.18B) */
  /* Gemma-3-4B: published 4,300,079,472 with the vision tower. SigLIP
   * (27 layers of width 1152, MLP 4304, 896/14 = 64 x 64 patches of 14 x
   * 14 x 3) and the projector (1152 x 2560 and a 1152 RMSNorm) by hand;
   * the language model is the rest. */
  double vis_layer = 4 * (1152.0 * 1152 + 1152) + (1152.0 * 4304 + 4304) +
                     (4304.0 * 1152 + 1152) + 4 * 1152;
  double vision = 27 * vis_layer + (3.0 * 14 * 14 * 1152 + 1152) +
                  64.0 * 64 * 1152 + 2 * 1152;
  double projector = 1152.0 * 2560 + 1152;
  assert_double_exact(hand[13] + vision + projector, 4300079472.0);
}

/* KV cache bytes per token at 16 bits with one token of context:
 * 2 (K and V) x layers x kv heads x head_dim x 2 bytes. */
static void test_families_kv_per_token(void **state) {
  (void)state;
  static const struct {
    const char *file;
    double per_token;
  } cases[] = {
      {"test/data/configs/gpt2.json", 2.0 * 12 * 12 * 64 * 2},
      {"test/data/configs/gpt-j-6b.json", 2.0 * 28 * 16 * 256 * 2},
      {"test/data/configs/pythia-1b.json", 2.0 * 16 * 8 * 256 * 2},
      {"test/data/configs/falcon-7b.json", 2.0 * 32 * 1 * 64 * 2},
      {"test/data/configs/opt-125m.json", 2.0 * 12 * 12 * 64 * 2},
      {"test/data/configs/bloom-560m.json", 2.0 * 24 * 16 * 64 * 2},
      {"test/data/configs/starcoder2-3b.json", 2.0 * 30 * 2 * 128 * 2},
      {"test/data/configs/olmo-2-1124-7b.json", 2.0 * 32 * 32 * 128 * 2},
      {"test/data/configs/c4ai-command-r-v01.json", 2.0 * 40 * 64 * 128 * 2},
      {"test/data/configs/granite-3.0-2b-base.json", 2.0 * 40 * 8 * 64 * 2},
      {"test/data/configs/phi-3-mini-4k-instruct.json", 2.0 * 32 * 32 * 96 * 2},
      {"test/data/configs/gemma-2-2b.json", 2.0 * 26 * 4 * 256 * 2},
      {"test/data/configs/gemma-3-1b-it.json", 2.0 * 26 * 1 * 256 * 2},
      {"test/data/configs/gemma-3-4b-it.json", 2.0 * 34 * 4 * 256 * 2},
      {"test/data/configs/gemma-7b.json", 2.0 * 28 * 16 * 256 * 2},
      {"test/data/configs/phi-2.json", 2.0 * 32 * 32 * 80 * 2},
      {"test/data/configs/c4ai-command-r7b-12-2024.json", 2.0 * 32 * 8 * 128 * 2},
      {"test/data/configs/olmo-1b-hf.json", 2.0 * 16 * 16 * 128 * 2},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    Model *m = from_file(cases[i].file);
    Eval x;
    eval(m, 1, 1, &x);
    if (kv_cache(&x) != cases[i].per_token)
      print_error("%s\n", cases[i].file);
    assert_double_exact(kv_cache(&x), cases[i].per_token);
    eval_free(&x);
    model_free(m);
  }
}

/* Sliding windows: the cache of a windowed layer holds min(L, window)
 * tokens in decode; Gemma's local and global layers by kind. */
static void test_families_windows(void **state) {
  (void)state;
  const char *kinds[4];
  double bytes[4];
  /* Gemma-2-2B at 8192: 13 local layers (layer_idx even) hold 4096 tokens,
   * 13 global ones 8192; 2 x 4 x 256 x 2 = 4096 bytes per token per layer. */
  Model *m = from_file("test/data/configs/gemma-2-2b.json");
  Eval x;
  eval(m, 1, 8192, &x);
  assert_double_exact(kv_cache(&x), 13 * 4096.0 * 4096 + 13 * 4096.0 * 8192);
  int nk = plan_kv_by_kind(x.plan, x.v, kinds, bytes, 4);
  assert_int_equal(nk, 2);
  assert_string_equal(kinds[0], "sliding");
  assert_double_exact(bytes[0], 13 * 4096.0 * 4096);
  assert_string_equal(kinds[1], "global");
  assert_double_exact(bytes[1], 13 * 4096.0 * 8192);
  /* local against global attention in decode: QK^T over 4096 and 8192 keys,
   * 2 x 8 heads x L x 256 FLOPs; the soft-cap 3 FLOPs per score */
  double count;
  assert_double_exact(
      row(&x, "model.layers[sliding].self_attn.qk_matmul", &count)[M_FLOPS],
      2.0 * 8 * 4096 * 256);
  assert_double_exact(count, 13);
  assert_double_exact(
      row(&x, "model.layers[global].self_attn.qk_matmul", &count)[M_FLOPS],
      2.0 * 8 * 8192 * 256);
  assert_double_exact(count, 13);
  assert_double_exact(
      row(&x, "model.layers[sliding].self_attn.softcap", NULL)[M_FLOPS],
      3.0 * 8 * 4096);
  /* K read: 4 kv heads x 4096 keys x 256 x 2 bytes */
  assert_double_exact(row(&x, "model.layers[sliding].self_attn.qk_matmul",
                          NULL)[M_KV_READ_BYTES],
                      4.0 * 4096 * 256 * 2);
  eval_free(&x);
  model_free(m);

  /* Gemma-3-1B at 4096: 26 layers, pattern 6: layers 5, 11, 17, 23 global
   * (4), 22 local with window 512; 2 x 1 x 256 x 2 = 1024 bytes per token */
  m = from_file("test/data/configs/gemma-3-1b-it.json");
  eval(m, 1, 4096, &x);
  nk = plan_kv_by_kind(x.plan, x.v, kinds, bytes, 4);
  assert_int_equal(nk, 2);
  assert_double_exact(bytes[0], 22 * 1024.0 * 512);
  assert_double_exact(bytes[1], 4 * 1024.0 * 4096);
  row(&x, "model.layers[global].self_attn.sv_matmul", &count);
  assert_double_exact(count, 4);
  eval_free(&x);
  model_free(m);

  /* Command R7B at 8192 (cohere2, sliding_window_pattern 4): layers 3, 7,
   * ..., 31 global (8), 24 sliding with window 4096; 2 x 8 x 128 x 2 =
   * 4096 bytes per token per layer. Decode: the sliding layers read 4096
   * keys, the global 8192; only the sliding layers rotate Q and K (3 x
   * (32 + 8) x 128 FLOPs), the global ones use no positional embedding */
  m = from_file("test/data/configs/c4ai-command-r7b-12-2024.json");
  eval(m, 1, 8192, &x);
  nk = plan_kv_by_kind(x.plan, x.v, kinds, bytes, 4);
  assert_int_equal(nk, 2);
  assert_string_equal(kinds[0], "sliding");
  assert_double_exact(bytes[0], 24 * 4096.0 * 4096);
  assert_string_equal(kinds[1], "global");
  assert_double_exact(bytes[1], 8 * 4096.0 * 8192);
  assert_double_exact(row(&x, "model.layers[sliding].self_attn.qk_matmul",
                          &count)[M_KV_READ_BYTES],
                      8.0 * 4096 * 128 * 2);
  assert_double_exact(count, 24);
  assert_double_exact(row(&x, "model.layers[global].self_attn.qk_matmul",
                          &count)[M_KV_READ_BYTES],
                      8.0 * 8192 * 128 * 2);
  assert_double_exact(count, 8);
  assert_double_exact(row(&x, "model.layers[sliding].self_attn.rope",
                          NULL)[M_FLOPS],
                      3.0 * (32 + 8) * 128);
  assert_int_equal(find_row(&x, "model.layers[global].self_attn.rope"), -1);
  eval_free(&x);
  model_free(m);

  /* Phi-3-mini-4k at 4096: window 2047 on every layer:
   * 32 x 2 x 32 x 96 x 2 x 2047 */
  m = from_file("test/data/configs/phi-3-mini-4k-instruct.json");
  eval(m, 1, 4096, &x);
  assert_double_exact(kv_cache(&x), 32 * 2.0 * 32 * 96 * 2 * 2047);
  eval_free(&x);
  model_free(m);

  /* StarCoder2-3B at 16384: window 4096: 30 x 2 x 2 x 128 x 2 x 4096, and
   * QK^T reads 4096 keys: 2 x 24 x 4096 x 128 FLOPs */
  m = from_file("test/data/configs/starcoder2-3b.json");
  eval(m, 1, 16384, &x);
  assert_double_exact(kv_cache(&x), 30 * 2.0 * 2 * 128 * 2 * 4096);
  assert_double_exact(
      row(&x, "model.layers.self_attn.qk_matmul", NULL)[M_FLOPS],
      2.0 * 24 * 4096 * 128);
  eval_free(&x);
  model_free(m);
}

/* A few operations per family, one token of decode unless said. */
static void test_families_per_op_values(void **state) {
  (void)state;
  double count;
  Eval x;

  /* GPT-2: c_attn is a Conv1D 768 -> 2304 with bias; the new K and V
   * (2 x 768 x 2 bytes) go to the cache through kv_store; wpe looked up */
  Model *m = from_file("test/data/configs/gpt2.json");
  eval(m, 1, 1024, &x);
  const double *c = row(&x, "transformer.h.attn.c_attn", &count);
  assert_double_exact(count, 12);
  assert_double_exact(c[M_FLOPS], 2.0 * 768 * 2304 + 2304);
  assert_double_exact(c[M_WEIGHT_BYTES], (768.0 * 2304 + 2304) * 2);
  assert_double_exact(c[M_ACT_WRITE_BYTES], 2304.0 * 2);
  assert_double_exact(
      row(&x, "transformer.h.attn.kv_store", NULL)[M_KV_WRITE_BYTES],
      2.0 * 768 * 2);
  assert_double_exact(row(&x, "transformer.h.mlp.act", NULL)[M_FLOPS],
                      9.0 * 3072);
  assert_double_exact(row(&x, "transformer.h.ln_1", NULL)[M_FLOPS],
                      7.0 * 768 + 4);
  assert_double_exact(row(&x, "transformer.pos_add", NULL)[M_FLOPS], 768);
  assert_double_exact(row(&x, "transformer.h.attn.qk_matmul", NULL)[M_FLOPS],
                      2.0 * 12 * 1024 * 64);
  /* tied lm_head: no parameters of its own, but its matmul reads V x h */
  assert_double_exact(row(&x, "lm_head", NULL)[M_WEIGHT_BYTES],
                      50257.0 * 768 * 2);
  eval_free(&x);
  model_free(m);

  /* GPT-J: rotary on 64 of 256 dimensions: 3 x (16 + 16) x 64 FLOPs; the
   * parallel block's two adds; lm_head with a bias */
  m = from_file("test/data/configs/gpt-j-6b.json");
  eval(m, 1, 2048, &x);
  assert_double_exact(row(&x, "transformer.h.attn.rope", NULL)[M_FLOPS],
                      3.0 * 32 * 64);
  assert_double_exact(row(&x, "transformer.h.residual_add", NULL)[M_FLOPS],
                      2.0 * 4096);
  assert_double_exact(
      row(&x, "transformer.h.residual_add", NULL)[M_ACT_READ_BYTES],
      3.0 * 4096 * 2);
  assert_double_exact(row(&x, "lm_head", NULL)[M_FLOPS],
                      2.0 * 4096 * 50400 + 50400);
  assert_int_equal(find_row(&x, "transformer.h.ln_2"), -1);
  eval_free(&x);
  model_free(m);

  /* Pythia-1B: rotary on int(256 x 0.25) = 64 dims; fused QKV 2048 -> 6144
   * with bias; gelu (erf) 5 FLOPs per element */
  m = from_file("test/data/configs/pythia-1b.json");
  eval(m, 1, 2048, &x);
  assert_double_exact(row(&x, "gpt_neox.layers.attention.rope", NULL)[M_FLOPS],
                      3.0 * 16 * 64);
  assert_double_exact(
      row(&x, "gpt_neox.layers.attention.query_key_value", NULL)[M_FLOPS],
      2.0 * 2048 * 6144 + 6144);
  assert_double_exact(row(&x, "gpt_neox.layers.mlp.act", NULL)[M_FLOPS],
                      5.0 * 8192);
  assert_double_exact(row(&x, "gpt_neox.rotary_emb", NULL)[M_FLOPS],
                      64.0 / 2 + 4 * 64);
  eval_free(&x);
  model_free(m);

  /* Falcon-7B: query_key_value 4544 -> (71 + 2) x 64 = 4672, no bias; one
   * key/value head: QK^T reads 1 x 2048 x 64 x 2 bytes; parallel block:
   * no post_attention_layernorm */
  m = from_file("test/data/configs/falcon-7b.json");
  eval(m, 1, 2048, &x);
  assert_double_exact(
      row(&x, "transformer.h.self_attention.query_key_value", NULL)[M_FLOPS],
      2.0 * 4544 * 4672);
  assert_double_exact(
      row(&x, "transformer.h.self_attention.qk_matmul", NULL)[M_KV_READ_BYTES],
      2048.0 * 64 * 2);
  assert_double_exact(
      row(&x, "transformer.h.self_attention.qk_matmul", NULL)[M_FLOPS],
      2.0 * 71 * 2048 * 64);
  assert_int_equal(find_row(&x, "transformer.h.post_attention_layernorm"), -1);
  assert_int_equal(find_row(&x, "transformer.h.ln_attn"), -1);
  assert_true(find_row(&x, "transformer.h.input_layernorm") >= 0);
  eval_free(&x);
  model_free(m);

  /* OPT-125M: fc1 768 -> 3072 with bias, ReLU 1 FLOP per element, no
   * project_in (word_embed_proj_dim = hidden_size) */
  m = from_file("test/data/configs/opt-125m.json");
  eval(m, 1, 2048, &x);
  assert_double_exact(row(&x, "model.decoder.layers.fc1", NULL)[M_FLOPS],
                      2.0 * 768 * 3072 + 3072);
  assert_double_exact(
      row(&x, "model.decoder.layers.activation_fn", NULL)[M_FLOPS], 3072);
  assert_int_equal(find_row(&x, "model.decoder.project_in"), -1);
  assert_true(find_row(&x, "model.decoder.final_layer_norm") >= 0);
  eval_free(&x);
  model_free(m);

  /* BLOOM-560M at L = 100: QK^T by baddbmm with the ALiBi bias:
   * 2 x 16 x 100 x 64 + 2 x 16 x 100 FLOPs; the bias built once,
   * 16 x 100 FLOPs */
  m = from_file("test/data/configs/bloom-560m.json");
  eval(m, 1, 100, &x);
  assert_double_exact(
      row(&x, "transformer.h.self_attention.qk_matmul", NULL)[M_FLOPS],
      2.0 * 16 * 100 * 64 + 2.0 * 16 * 100);
  assert_double_exact(row(&x, "transformer.alibi", &count)[M_FLOPS],
                      16.0 * 100);
  assert_double_exact(count, 1);
  assert_double_exact(row(&x, "transformer.h.mlp.gelu_impl", NULL)[M_FLOPS],
                      9.0 * 4096);
  eval_free(&x);
  model_free(m);

  /* OLMo-2-7B: q_norm normalises the whole 4096-wide query: 4 x 4096 + 3 */
  m = from_file("test/data/configs/olmo-2-1124-7b.json");
  eval(m, 1, 1024, &x);
  assert_double_exact(row(&x, "model.layers.self_attn.q_norm", NULL)[M_FLOPS],
                      4.0 * 4096 + 3);
  assert_int_equal(find_row(&x, "model.layers.input_layernorm"), -1);
  assert_true(find_row(&x, "model.layers.post_feedforward_layernorm") >= 0);
  eval_free(&x);
  model_free(m);

  /* Command R: LayerNorm without bias (6 FLOPs per element + 4), the
   * parallel block's adds, logits x logit_scale over 256,000 */
  m = from_file("test/data/configs/c4ai-command-r-v01.json");
  eval(m, 1, 1024, &x);
  assert_double_exact(row(&x, "model.layers.input_layernorm", NULL)[M_FLOPS],
                      6.0 * 8192 + 4);
  assert_double_exact(row(&x, "model.layers.residual_add", NULL)[M_FLOPS],
                      2.0 * 8192);
  assert_double_exact(row(&x, "logit_scale", NULL)[M_FLOPS], 256000);
  assert_int_equal(find_row(&x, "model.layers.self_attn.q_norm"), -1);
  eval_free(&x);
  model_free(m);

  /* Granite-3.0-2B: embedding x multiplier, residual x multiplier + add,
   * logits / logits_scaling */
  m = from_file("test/data/configs/granite-3.0-2b-base.json");
  eval(m, 1, 1024, &x);
  assert_double_exact(row(&x, "model.embedding_multiplier", NULL)[M_FLOPS],
                      2048);
  assert_double_exact(row(&x, "model.layers.attn_add", NULL)[M_FLOPS],
                      2.0 * 2048);
  assert_double_exact(row(&x, "logits_scaling", NULL)[M_FLOPS], 49155);
  eval_free(&x);
  model_free(m);

  /* Phi-3-mini: qkv_proj 3072 -> (32 + 64) x 96 = 9216; gate_up_proj
   * 3072 -> 16384; kv_store writes 2 x 32 x 96 x 2 bytes */
  m = from_file("test/data/configs/phi-3-mini-4k-instruct.json");
  eval(m, 1, 1024, &x);
  assert_double_exact(row(&x, "model.layers.self_attn.qkv_proj", NULL)[M_FLOPS],
                      2.0 * 3072 * 9216);
  assert_double_exact(row(&x, "model.layers.mlp.gate_up_proj", NULL)[M_FLOPS],
                      2.0 * 3072 * 16384);
  assert_double_exact(
      row(&x, "model.layers.self_attn.kv_store", NULL)[M_KV_WRITE_BYTES],
      2.0 * 32 * 96 * 2);
  assert_double_exact(row(&x, "model.layers.mlp.activation_fn", NULL)[M_FLOPS],
                      4.0 * 8192);
  eval_free(&x);
  model_free(m);

  /* Gemma-2-2B: embeddings x sqrt(2304), final soft-cap over 256,000
   * logits (3 FLOPs each), Gemma2RMSNorm 4 x 2304 + 3 + 2304 */
  m = from_file("test/data/configs/gemma-2-2b.json");
  eval(m, 1, 1024, &x);
  assert_double_exact(row(&x, "model.embed_scale", NULL)[M_FLOPS], 2304);
  assert_double_exact(row(&x, "final_softcap", NULL)[M_FLOPS], 3.0 * 256000);
  assert_double_exact(row(&x, "model.norm", NULL)[M_FLOPS],
                      4.0 * 2304 + 3 + 2304);
  assert_double_exact(
      row(&x, "model.layers[sliding].mlp.act_fn", NULL)[M_FLOPS], 9.0 * 9216);
  eval_free(&x);
  /* FlashAttention-2 applies the soft-cap in the kernel: its 3 FLOPs per
   * score join 4 x 8 x L x 256 + 5 x 8 x L (global layer, L = 1024) */
  eval_attn(m, 1, 1024, ATTN_FLASH, &x);
  assert_double_exact(
      row(&x, "model.layers[global].self_attn.flash_attention", NULL)[M_FLOPS],
      4.0 * 8 * 1024 * 256 + 5.0 * 8 * 1024 + 3.0 * 8 * 1024);
  assert_int_equal(find_row(&x, "model.layers[global].self_attn.softcap"), -1);
  eval_free(&x);
  model_free(m);

  /* Gemma-7B decode over 1024 keys: embeddings x sqrt(3072), GemmaRMSNorm
   * 4 x 3072 + 3 + 3072 (1 + weight), GeGLU's tanh GELU 9 per element of
   * 24576 (hidden_act "gelu" is not read: hidden_activation, absent, is
   * gelu_pytorch_tanh), q_proj 2 x 3072 x 4096; no soft-cap, no window:
   * the KV read is 1024 keys of 16 heads x 256, K and V, 2 bytes */
  m = from_file("test/data/configs/gemma-7b.json");
  eval(m, 1, 1024, &x);
  assert_double_exact(row(&x, "model.embed_scale", NULL)[M_FLOPS], 3072);
  assert_double_exact(row(&x, "model.norm", NULL)[M_FLOPS],
                      4.0 * 3072 + 3 + 3072);
  assert_double_exact(row(&x, "model.layers.mlp.act_fn", NULL)[M_FLOPS],
                      9.0 * 24576);
  assert_double_exact(row(&x, "model.layers.self_attn.q_proj", NULL)[M_FLOPS],
                      2.0 * 3072 * 4096);
  assert_double_exact(
      row(&x, "model.layers.self_attn.qk_matmul", NULL)[M_KV_READ_BYTES],
      1024.0 * 16 * 256 * 2);
  assert_int_equal(find_row(&x, "final_softcap"), -1);
  assert_int_equal(find_row(&x, "model.layers.self_attn.softcap"), -1);
  eval_free(&x);
  model_free(m);

  /* phi-2 decode over 16 keys: rotary on int(80 x 0.4) = 32 of each
   * head's 80 dimensions: 3 FLOPs per rotated element of Q (32 heads) and
   * the new K (32 heads), 3 x 64 x 32 = 6,144; the rotary embedding's
   * cos/sin are 32 wide; q_proj with its bias 2 x 2560 x 2560 + 2560;
   * the parallel block's sum of three tensors 2 x 2560; no q/k
   * LayerNorms (qk_layernorm false) */
  m = from_file("test/data/configs/phi-2.json");
  eval(m, 1, 16, &x);
  assert_double_exact(row(&x, "model.layers.self_attn.rope", NULL)[M_FLOPS],
                      3.0 * 64 * 32);
  assert_double_exact(row(&x, "model.layers.self_attn.q_proj", NULL)[M_FLOPS],
                      2.0 * 2560 * 2560 + 2560);
  assert_double_exact(row(&x, "model.layers.residual_add", NULL)[M_FLOPS],
                      2.0 * 2560);
  assert_int_equal(find_row(&x, "model.layers.self_attn.q_layernorm"), -1);
  eval_free(&x);
  model_free(m);

  /* OLMo-1B decode: the LayerNorm without weight or bias, 5 FLOPs per
   * element and 4 per row, no weight read; clip_qkv null: no clamp. With
   * clip_qkv 8.0 (OLMo-1.7): q, k, v clamped, 2 FLOPs per element of
   * (16 + 2 x 16) x 128, each read and written once */
  m = from_file("test/data/configs/olmo-1b-hf.json");
  eval(m, 1, 16, &x);
  const double *oln = row(&x, "model.layers.input_layernorm", NULL);
  assert_double_exact(oln[M_FLOPS], 5.0 * 2048 + 4);
  assert_double_exact(oln[M_WEIGHT_BYTES], 0);
  assert_int_equal(find_row(&x, "model.layers.self_attn.clip_qkv"), -1);
  eval_free(&x);
  model_free(m);
  {
    char *o = tu_read("test/data/configs/olmo-1b-hf.json");
    char *oc = tu_replace(o, "\"clip_qkv\": null", "\"clip_qkv\": 8.0");
    char *dir = tu_tmpdir();
    char *path = path_join(dir, "config.json");
    tu_write(path, oc);
    m = from_file(path);
    eval(m, 1, 16, &x);
    const double *cq = row(&x, "model.layers.self_attn.clip_qkv", NULL);
    assert_double_exact(cq[M_FLOPS], 2.0 * 48 * 128);
    assert_double_exact(cq[M_ACT_READ_BYTES], 48.0 * 128 * 2);
    assert_double_exact(cq[M_ACT_WRITE_BYTES], 48.0 * 128 * 2);
    assert_double_exact(params_of(m), 1176764416.0);
    eval_free(&x);
    model_free(m);
    tu_rm_rf(dir);
    free(dir);
    free(path);
    free(oc);
    free(o);
  }

  /* Gemma-3-1B prefill of 4 tokens: q_norm over 4 x 4 heads of 256:
   * 4 x 16 x 256 + 3 x 16 + 256 (1 + weight); the scaled embedding
   * multiplies 4 x 1152 elements; two rotary embeddings */
  m = from_file("test/data/configs/gemma-3-1b-it.json");
  eval(m, 4, 4, &x);
  assert_double_exact(
      row(&x, "model.layers[sliding].self_attn.q_norm", NULL)[M_FLOPS],
      4.0 * 16 * 256 + 3 * 16 + 256);
  assert_double_exact(row(&x, "model.embed_tokens", NULL)[M_FLOPS], 4.0 * 1152);
  assert_true(find_row(&x, "model.rotary_emb_local") >= 0);
  eval_free(&x);
  model_free(m);

  /* Gemma-3-4B: the language model under language_model, with the note */
  m = from_file("test/data/configs/gemma-3-4b-it.json");
  assert_non_null(m->note);
  assert_contains(m->note, "vision tower");
  eval(m, 1, 1, &x);
  assert_double_exact(
      row(&x, "language_model.model.layers[global].self_attn.q_proj",
          &count)[M_FLOPS],
      2.0 * 2560 * 2048);
  assert_double_exact(count, 34 / 6);
  eval_free(&x);
  model_free(m);
}

/* Layouts the shipped configs do not exercise, from the Hub's config.json
 * files (values as published at https://huggingface.co/tiiuae/falcon-40b,
 * .../facebook/opt-350m and .../google/gemma-2-9b, blob/main/config.json). */
static const char falcon40b[] =
    "{\"alibi\": false, \"apply_residual_connection_post_layernorm\": false,\n"
    " \"architectures\": [\"FalconForCausalLM\"], \"attention_dropout\": 0.0,\n"
    " \"bias\": false, \"bos_token_id\": 11, \"eos_token_id\": 11,\n"
    " \"hidden_dropout\": 0.0, \"hidden_size\": 8192,\n"
    " \"initializer_range\": 0.02, \"layer_norm_epsilon\": 1e-05,\n"
    " \"model_type\": \"falcon\", \"new_decoder_architecture\": true,\n"
    " \"num_attention_heads\": 128, \"num_hidden_layers\": 60,\n"
    " \"num_kv_heads\": 8, \"parallel_attn\": true,\n"
    " \"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.27.4\",\n"
    " \"use_cache\": true, \"vocab_size\": 65024}\n";
static const char opt350m[] =
    "{\"activation_dropout\": 0.0, \"activation_function\": \"relu\",\n"
    " \"architectures\": [\"OPTForCausalLM\"], \"attention_dropout\": 0.0,\n"
    " \"bos_token_id\": 2, \"do_layer_norm_before\": false, \"dropout\": 0.1,\n"
    " \"eos_token_id\": 2, \"ffn_dim\": 4096, \"hidden_size\": 1024,\n"
    " \"init_std\": 0.02, \"layerdrop\": 0.0, \"max_position_embeddings\": "
    "2048,\n"
    " \"model_type\": \"opt\", \"num_attention_heads\": 16,\n"
    " \"num_hidden_layers\": 24, \"pad_token_id\": 1, \"prefix\": \"</s>\",\n"
    " \"torch_dtype\": \"float16\", \"transformers_version\": "
    "\"4.20.0.dev0\",\n"
    " \"use_cache\": true, \"vocab_size\": 50272, \"word_embed_proj_dim\": "
    "512}\n";
static const char gemma2_9b[] =
    "{\"architectures\": [\"Gemma2ForCausalLM\"], \"attention_bias\": false,\n"
    " \"attention_dropout\": 0.0, \"attn_logit_softcapping\": 50.0,\n"
    " \"bos_token_id\": 2, \"cache_implementation\": \"hybrid\",\n"
    " \"eos_token_id\": 1, \"final_logit_softcapping\": 30.0, \"head_dim\": "
    "256,\n"
    " \"hidden_act\": \"gelu_pytorch_tanh\",\n"
    " \"hidden_activation\": \"gelu_pytorch_tanh\", \"hidden_size\": 3584,\n"
    " \"initializer_range\": 0.02, \"intermediate_size\": 14336,\n"
    " \"max_position_embeddings\": 8192, \"model_type\": \"gemma2\",\n"
    " \"num_attention_heads\": 16, \"num_hidden_layers\": 42,\n"
    " \"num_key_value_heads\": 8, \"pad_token_id\": 0,\n"
    " \"query_pre_attn_scalar\": 256, \"rms_norm_eps\": 1e-06,\n"
    " \"rope_theta\": 10000.0, \"sliding_window\": 4096,\n"
    " \"torch_dtype\": \"float32\", \"transformers_version\": "
    "\"4.42.0.dev0\",\n"
    " \"use_cache\": true, \"vocab_size\": 256000}\n";

static Model *from_text(const char *text) {
  Error e;
  err_clear(&e);
  Model *m = model_from_config("config.json", text, strlen(text), NULL,
                               "models/arch", reg, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  return m;
}

static void test_families_other_layouts(void **state) {
  (void)state;
  Eval x;
  /* Falcon-40B (new_decoder_architecture): ln_attn and ln_mlp, 8 key/value
   * heads: query_key_value 8192 -> (128 + 2 x 8) x 64 = 9216; MLP 4h. */
  Model *m = from_text(falcon40b);
  double blk = 4 * 8192.0 + 8192.0 * 9216 + 8192.0 * 8192 + 2 * 8192.0 * 32768;
  double n = 65024.0 * 8192 + 60 * blk + 2 * 8192;
  assert_double_exact(params_of(m), n);
  assert_double_exact(n, 41303293952.0);
  /* the Hub's 41.8B counts lm_head.weight, which the checkpoint stores
   * although FalconForCausalLM ties it to word_embeddings */
  assert_double_near(n + 65024.0 * 8192, 41.8e9, 0.005);
  eval(m, 1, 1, &x);
  assert_double_exact(kv_cache(&x), 2.0 * 60 * 8 * 64 * 2);
  assert_true(find_row(&x, "transformer.h.ln_attn") >= 0);
  assert_true(find_row(&x, "transformer.h.ln_mlp") >= 0);
  assert_int_equal(find_row(&x, "transformer.h.input_layernorm"), -1);
  assert_double_exact(
      row(&x, "transformer.h.self_attention.query_key_value", NULL)[M_FLOPS],
      2.0 * 8192 * 9216);
  eval_free(&x);
  model_free(m);

  /* OPT-350M: 512-wide embeddings projected in and out, post-norm layers
   * and so no final LayerNorm; lm_head 512 -> vocabulary. Hub: 331M. */
  m = from_text(opt350m);
  blk = 4 * (1024.0 * 1024 + 1024) + 4 * 1024 + (1024.0 * 4096 + 4096) +
        (4096.0 * 1024 + 1024);
  n = 50272.0 * 512 + 2050.0 * 1024 + 2 * 512.0 * 1024 + 24 * blk;
  assert_double_exact(params_of(m), n);
  assert_double_exact(n, 331196416.0);
  assert_double_near(n, 331e6, 0.005);
  eval(m, 1, 1, &x);
  assert_double_exact(row(&x, "model.decoder.project_in", NULL)[M_FLOPS],
                      2.0 * 512 * 1024);
  assert_double_exact(row(&x, "model.decoder.project_out", NULL)[M_FLOPS],
                      2.0 * 1024 * 512);
  assert_int_equal(find_row(&x, "model.decoder.final_layer_norm"), -1);
  assert_double_exact(row(&x, "lm_head", NULL)[M_FLOPS], 2.0 * 512 * 50272);
  eval_free(&x);
  model_free(m);

  /* Gemma-2-9B: 16 heads of 256 on a 3584-wide model (16 x 256 = 4096 !=
   * 3584); 21 local and 21 global layers. Hub: 9.24B. */
  m = from_text(gemma2_9b);
  n = 256000.0 * 3584 +
      42 * (2 * 3584.0 * 4096 + 2 * 3584.0 * 2048 + 3 * 3584.0 * 14336 +
            4 * 3584) +
      3584;
  assert_double_exact(params_of(m), n);
  assert_double_exact(n, 9241705984.0);
  eval(m, 1, 1, &x);
  assert_double_exact(
      row(&x, "model.layers[sliding].self_attn.o_proj", NULL)[M_FLOPS],
      2.0 * 4096 * 3584);
  double count;
  row(&x, "model.layers[global].mlp.down_proj", &count);
  assert_double_exact(count, 21);
  eval_free(&x);
  model_free(m);
}

/* Variants the first templates refused, and more sizes, from the real
 * configs of test/data/configs (README there: sources and published
 * counts). */
static const char falcon11b[] = /* tiiuae/falcon-11B's architecture keys */
    "{\"model_type\": \"falcon\", \"activation\": \"gelu\", \"alibi\": false, "
    "\"bias\": false, \"ffn_hidden_size\": 16384, \"hidden_size\": 4096, "
    "\"max_position_embeddings\": 8192, \"multi_query\": true, "
    "\"new_decoder_architecture\": true, \"num_attention_heads\": 32, "
    "\"num_hidden_layers\": 60, \"num_kv_heads\": 8, "
    "\"num_ln_in_parallel_attn\": 1, \"parallel_attn\": true, "
    "\"tie_word_embeddings\": false, \"vocab_size\": 65024}";

static void test_families_refused_before(void **state) {
  (void)state;
  Eval x;
  double T = 8, L = 8;

  /* GPT-NeoX-20B: hidden_act gelu_fast (FastGELUActivation, 9 FLOPs per
   * element); 44 layers of width 6144, MLP 24576, vocabulary 50,432.
   * Published exactly: 20,554,567,680 (Black et al. 2022, GPT-NeoX-20B). */
  Model *m = from_file("test/data/configs/gpt-neox-20b.json");
  double n = p_neox(50432, 6144, 44, 24576);
  assert_double_exact(params_of(m), n);
  assert_double_exact(n, 20554567680.0);
  eval(m, T, L, &x);
  double count;
  const double *act = row(&x, "gpt_neox.layers.mlp.act", &count);
  assert_double_exact(count, 44);
  assert_double_exact(act[M_FLOPS], 9 * T * 24576);
  assert_string_equal(x.plan->rows[find_row(&x, "gpt_neox.layers.mlp.act")]
                          .module,
                      "transformers.activations.FastGELUActivation");
  /* rotary on 25% of each 96-wide head: 24 dimensions, 3 FLOPs each, Q and
   * K of 64 heads */
  assert_double_exact(
      row(&x, "gpt_neox.layers.attention.rope", NULL)[M_FLOPS],
      3 * T * (64 + 64) * 24);
  eval_free(&x);
  eval(m, 1, 1, &x);
  assert_double_exact(kv_cache(&x), 2.0 * 44 * 64 * 96 * 2);
  eval_free(&x);
  model_free(m);

  /* Falcon-RW-1B: ALiBi, no rotary embedding, sequential block (two
   * LayerNorms), biases everywhere, 32 key/value heads, tied lm_head. */
  m = from_file("test/data/configs/falcon-rw-1b.json");
  double h = 2048, V = 50304;
  double blk = 4 * h + (h * 3 * h + 3 * h) + (h * h + h) +
               (h * 4 * h + 4 * h) + (4 * h * h + h);
  n = V * h + 24 * blk + 2 * h;
  assert_double_exact(params_of(m), n);
  assert_double_exact(n, 1311625216.0);
  assert_double_near(n, 1.31e9, 0.005); /* Hub: 1.31B */
  eval(m, T, L, &x);
  assert_int_equal(find_row(&x, "transformer.rotary_emb"), -1);
  assert_int_equal(find_row(&x, "transformer.h.self_attention.rope"), -1);
  assert_true(find_row(&x, "transformer.h.post_attention_layernorm") >= 0);
  /* the bias: slope x position per head and key, once per forward */
  const double *al = row(&x, "transformer.alibi", &count);
  assert_double_exact(count, 1);
  assert_double_exact(al[M_FLOPS], 32 * L);
  assert_double_exact(al[M_ACT_WRITE_BYTES], 32 * L * 2);
  /* Q K^T (2 d per score) plus the bias add and the scale (2 per score);
   * the B x H x L bias read once */
  const double *qk = row(&x, "transformer.h.self_attention.qk_matmul", NULL);
  assert_double_exact(qk[M_FLOPS], 2 * 32 * T * L * 64 + 2 * 32 * T * L);
  eval_free(&x);
  /* FlashAttention with ALiBi slopes: 2 FLOPs per score more than the
   * same model without ALiBi */
  Eval y;
  eval_attn(m, T, L, ATTN_FLASH, &x);
  char *rw = tu_read("test/data/configs/falcon-rw-1b.json");
  char *norw = tu_replace(rw, "\"alibi\": true", "\"alibi\": false");
  Model *m2 = from_text(norw);
  eval_attn(m2, T, L, ATTN_FLASH, &y);
  assert_double_exact(
      row(&x, "transformer.h.self_attention.flash_attention", NULL)[M_FLOPS],
      row(&y, "transformer.h.self_attention.flash_attention", NULL)[M_FLOPS] +
          2 * 32 * T * L);
  assert_true(find_row(&y, "transformer.h.self_attention.rope") >= 0);
  eval_free(&y);
  eval_free(&x);
  model_free(m2);
  free(norw);
  free(rw);
  eval(m, 1, 1, &x);
  assert_double_exact(kv_cache(&x), 2.0 * 24 * 32 * 64 * 2);
  eval_free(&x);
  model_free(m);

  /* Falcon-180B: new architecture, 232 heads of 64, 8 key/value heads,
   * lm_head tied (the config leaves tie_word_embeddings at true). */
  m = from_file("test/data/configs/falcon-180b.json");
  h = 14848;
  blk = 4 * h + h * (232 + 2 * 8) * 64 + h * h + 2 * h * 4 * h;
  n = 65024.0 * h + 80 * blk + 2 * h;
  assert_double_exact(params_of(m), n);
  assert_double_exact(n, 178557088768.0);
  /* "180B" (model card) counts, like the Hub's 179.5B, the lm_head copy
   * the checkpoint stores */
  assert_double_near(n + 65024.0 * h, 180e9, 0.005);
  model_free(m);

  /* Falcon2-11B: the new architecture with num_ln_in_parallel_attn 1: one
   * input_layernorm shared by attention and MLP; untied. Hub: 11.1B. */
  m = from_text(falcon11b);
  h = 4096;
  blk = 2 * h + h * (32 + 2 * 8) * 128 + h * h + 2 * h * 16384;
  n = 2 * 65024.0 * h + 60 * blk + 2 * h;
  assert_double_exact(params_of(m), n);
  assert_double_near(n, 11.1e9, 0.005);
  eval(m, 1, 1, &x);
  assert_true(find_row(&x, "transformer.h.input_layernorm") >= 0);
  assert_int_equal(find_row(&x, "transformer.h.ln_attn"), -1);
  assert_int_equal(find_row(&x, "transformer.h.post_attention_layernorm"), -1);
  assert_double_exact(kv_cache(&x), 2.0 * 60 * 8 * 128 * 2);
  eval_free(&x);
  model_free(m);

  /* Command R+: use_qk_norm, so q_norm (96 x 128) and k_norm (8 x 128)
   * weights per layer, LayerNorm without bias; tied. Card: 104B. */
  m = from_file("test/data/configs/c4ai-command-r-plus.json");
  n = p_llamalike(256000, 12288, 64, 96, 8, 128, 33792, 1, 96 * 128 + 8 * 128,
                  true);
  assert_double_exact(params_of(m), n);
  assert_double_exact(n, 103810674688.0);
  assert_double_near(n, 104e9, 0.005);
  eval(m, T, L, &x);
  assert_double_exact(row(&x, "model.layers.self_attn.q_norm", NULL)[M_WEIGHT_BYTES],
                      96 * 128 * 2.0);
  eval_free(&x);
  eval(m, 1, 1, &x);
  assert_double_exact(kv_cache(&x), 2.0 * 64 * 8 * 128 * 2);
  eval_free(&x);
  model_free(m);

  /* OPT-350M from its file (the inline copy above has the same keys) and
   * StarCoder2-15B (untied: tie_word_embeddings false). */
  m = from_file("test/data/configs/opt-350m.json");
  assert_double_exact(params_of(m), 331196416.0);
  model_free(m);
  m = from_file("test/data/configs/starcoder2-15b.json");
  n = p_starcoder2(49152, 6144, 40, 48, 4, 128, 24576) + 49152.0 * 6144;
  assert_double_exact(params_of(m), n);
  assert_double_near(n, 15.96e9, 0.005); /* Hub: 15.96B */
  eval(m, 1, 1, &x);
  assert_double_exact(kv_cache(&x), 2.0 * 40 * 4 * 128 * 2);
  eval_free(&x);
  model_free(m);

  /* Gemma 3 with soft-capping set (no released checkpoint sets it, the
   * config allows it): Gemma 2's softcap on the scores, 3 FLOPs each, and
   * the final soft-cap on the B x vocabulary logits. */
  char *base = tu_read("test/data/configs/gemma-3-1b-it.json");
  char *t1 = tu_replace(base, "\"attn_logit_softcapping\": null",
                        "\"attn_logit_softcapping\": 50.0");
  char *t2 = tu_replace(t1, "\"final_logit_softcapping\": null",
                        "\"final_logit_softcapping\": 30.0");
  m = from_text(t2);
  assert_double_exact(params_of(m), 999885952.0);
  eval(m, T, L, &x);
  /* 4 heads; every key within the 512-token window */
  assert_double_exact(
      row(&x, "model.layers[sliding].self_attn.softcap", NULL)[M_FLOPS],
      3 * 4 * T * L);
  assert_double_exact(
      row(&x, "model.layers[global].self_attn.softcap", NULL)[M_FLOPS],
      3 * 4 * T * L);
  assert_double_exact(row(&x, "final_softcap", NULL)[M_FLOPS], 3 * 262144.0);
  eval_free(&x);
  eval_attn(m, T, L, ATTN_FLASH, &x);
  m2 = from_file("test/data/configs/gemma-3-1b-it.json");
  eval_attn(m2, T, L, ATTN_FLASH, &y);
  assert_double_exact(
      row(&x, "model.layers[global].self_attn.flash_attention", NULL)[M_FLOPS],
      row(&y, "model.layers[global].self_attn.flash_attention", NULL)[M_FLOPS] +
          3 * 4 * T * L);
  eval_free(&y);
  model_free(m2);
  eval_free(&x);
  model_free(m);
  /* without it, no row */
  m = from_text(base);
  eval(m, T, L, &x);
  assert_int_equal(find_row(&x, "model.layers[global].self_attn.softcap"), -1);
  assert_int_equal(find_row(&x, "final_softcap"), -1);
  eval_free(&x);
  model_free(m);
  free(t2);
  free(t1);
  free(base);

  /* BLOOM-176B as bigscience/bloom's config writes it: n_embed (the old
   * keyword) and num_attention_heads (BloomConfig.attribute_map); 70
   * blocks of width 14336, 112 heads. Model card: 176,247,271,424. */
  m = from_file("test/data/configs/bloom-176b.json");
  n = p_bloom(250880, 14336, 70);
  assert_double_exact(params_of(m), n);
  assert_double_exact(n, 176247271424.0);
  eval(m, 1, 1, &x);
  assert_double_exact(kv_cache(&x), 2.0 * 70 * 112 * 128 * 2);
  eval_free(&x);
  model_free(m);

  /* attribute_map names: BLOOM as bigscience/bloom writes it
   * (num_attention_heads, num_hidden_layers), GPT-2 with hidden_size */
  base = tu_read("test/data/configs/bloom-560m.json");
  t1 = tu_replace(base, "\"n_head\": 16", "\"num_attention_heads\": 16");
  t2 = tu_replace(t1, "\"n_layer\": 24", "\"num_hidden_layers\": 24");
  m = from_text(t2);
  assert_double_exact(params_of(m), 559214592.0);
  model_free(m);
  free(t2);
  free(t1);
  free(base);
  base = tu_read("test/data/configs/gpt2.json");
  t1 = tu_replace(base, "\"n_embd\": 768", "\"hidden_size\": 768");
  /* and another activation of ACT2FN: relu, 1 FLOP per element */
  t2 = tu_replace(t1, "\"gelu_new\"", "\"relu\"");
  m = from_text(t2);
  assert_double_exact(params_of(m), 124439808.0);
  eval(m, T, L, &x);
  assert_double_exact(row(&x, "transformer.h.mlp.act", NULL)[M_FLOPS],
                      T * 3072);
  eval_free(&x);
  model_free(m);
  free(t2);
  free(t1);
  free(base);
}

/* Config edge cases (issue 10 follow-up): keys real or legal configs
 * carry that change parameters or costs. */
static void test_families_edge_cases(void **state) {
  (void)state;
  /* cohere2 as transformers 5 writes it: layer_types instead of
   * sliding_window_pattern (here every second layer global: 16 and 16),
   * and the config's head_dim, which Cohere2Config overwrites with
   * hidden_size // num_attention_heads, is not read */
  {
    char *c = tu_read("test/data/configs/c4ai-command-r7b-12-2024.json");
    Buf lt;
    buf_init(&lt);
    buf_puts(&lt, "\"layer_types\": [");
    for (int i = 0; i < 32; i++)
      buf_printf(&lt, "%s\"%s\"", i ? ", " : "",
                 i % 2 ? "full_attention" : "sliding_attention");
    buf_puts(&lt, "], \"sliding_window_pattern\"");
    char *c1 = tu_replace(c, "\"sliding_window_pattern\"", buf_str(&lt));
    char *c2 = tu_replace(c1, "\"head_dim\": 128", "\"head_dim\": 64");
    Model *m = from_text(c2);
    assert_double_exact(params_of(m), 8028033024.0);
    Eval x;
    eval(m, 1, 8192, &x);
    const char *kinds[4];
    double bytes[4];
    assert_int_equal(plan_kv_by_kind(x.plan, x.v, kinds, bytes, 4), 2);
    assert_double_exact(bytes[0], 16 * 4096.0 * 4096);
    assert_double_exact(bytes[1], 16 * 4096.0 * 8192);
    eval_free(&x);
    model_free(m);
    free(c2);
    free(c1);
    buf_free(&lt);
    free(c);
  }
  /* microsoft/phi-1 (its Hub config, transformers 4.37: num_key_value_heads
   * null = 32 heads, partial_rotary_factor 0.5, 24 layers of 2048, MLP
   * 8192): per layer 4,096 + 4 x 4,196,352 + 16,785,408 + 16,779,264 =
   * 50,354,176; 24 layers 1,208,500,224 + 104,857,600 + 4,096 +
   * 104,908,800 = 1,418,270,720 (Hub: 1.42B); with qk_layernorm two
   * LayerNorms of 2 x 64 more per layer (+ 24 x 256) */
  {
    static const char phi1[] =
        "{\"_name_or_path\": \"microsoft/phi-1\", \"architectures\": "
        "[\"PhiForCausalLM\"], \"attention_dropout\": 0.0, \"bos_token_id\": "
        "null, \"embd_pdrop\": 0.0, \"eos_token_id\": null, \"hidden_act\": "
        "\"gelu_new\", \"hidden_size\": 2048, \"initializer_range\": 0.02, "
        "\"intermediate_size\": 8192, \"layer_norm_eps\": 1e-05, "
        "\"max_position_embeddings\": 2048, \"model_type\": \"phi\", "
        "\"num_attention_heads\": 32, \"num_hidden_layers\": 24, "
        "\"num_key_value_heads\": null, \"partial_rotary_factor\": 0.5, "
        "\"qk_layernorm\": false, \"resid_pdrop\": 0.0, \"rope_scaling\": "
        "null, \"rope_theta\": 10000.0, \"tie_word_embeddings\": false, "
        "\"torch_dtype\": \"float32\", \"transformers_version\": \"4.37.0\", "
        "\"use_cache\": true, \"vocab_size\": 51200}";
    assert_double_exact(p_phi(51200, 2048, 24, 8192), 1418270720.0);
    Model *m = from_text(phi1);
    assert_double_exact(params_of(m), 1418270720.0);
    model_free(m);
    char *q = tu_replace(phi1, "\"qk_layernorm\": false", "\"qk_layernorm\": true");
    m = from_text(q);
    assert_double_exact(params_of(m), 1418270720.0 + 24 * 2 * (2 * 64.0));
    model_free(m);
    free(q);
  }
  /* transformers 4.40's re-saves write "hidden_activation": null: read as
   * absent (gelu_pytorch_tanh), the count unchanged */
  {
    char *g = tu_read("test/data/configs/gemma-7b.json");
    char *gn = tu_replace(g, "\"hidden_act\": \"gelu\",",
                          "\"hidden_act\": \"gelu\", \"hidden_activation\": null,");
    Model *m = from_text(gn);
    assert_double_exact(params_of(m), 8537680896.0);
    model_free(m);
    free(gn);
    free(g);
  }
  Eval x;
  /* OPT with layer_norm_elementwise_affine false: every nn.LayerNorm is
   * built with elementwise_affine=False (modeling_opt.py), so neither
   * weight nor bias. OPT-125M has 12 layers x 2 LayerNorms + the final
   * one, each 2 x 768 parameters when affine: 25 x 1536 = 38,400 fewer
   * than p_opt's 125,239,296 = 125,200,896. */
  char *base = tu_read("test/data/configs/opt-125m.json");
  char *t = tu_replace(base, "\"do_layer_norm_before\": true,",
                 "\"do_layer_norm_before\": true, "
                 "\"layer_norm_elementwise_affine\": false,");
  Model *m = from_text(t);
  double n = p_opt(50272, 2048, 768, 12, 3072) - 25 * 2 * 768.0;
  assert_double_exact(params_of(m), n);
  assert_double_exact(n, 125200896.0);
  eval(m, 1, 1, &x);
  /* one token: mean, subtract, square, variance, rsqrt scale = 5 per
   * element + 4 per row: 5 x 768 + 4 = 3844; no gamma/beta read */
  const double *ln = row(&x, "model.decoder.layers.self_attn_layer_norm", NULL);
  assert_double_exact(ln[M_FLOPS], 5 * 768.0 + 4);
  assert_double_exact(ln[M_WEIGHT_BYTES], 0);
  ln = row(&x, "model.decoder.final_layer_norm", NULL);
  assert_double_exact(ln[M_WEIGHT_BYTES], 0);
  eval_free(&x);
  model_free(m);
  free(t);
  /* GPT-J with rotary_dim null and one head: transformers rotates the
   * whole 4096-wide head (pos_embd_dim = embed_dim); 3 FLOPs per rotated
   * element of Q and the new K of one token: 3 x (1 + 1) x 4096 = 24576.
   * The parameter count does not depend on the heads: 6,050,882,784. */
  char *gj = tu_read("test/data/configs/gpt-j-6b.json");
  char *g1 = tu_replace(gj, "\"rotary_dim\": 64", "\"rotary_dim\": null");
  char *g2 = tu_replace(g1, "\"n_head\": 16", "\"n_head\": 1");
  m = from_text(g2);
  assert_double_exact(params_of(m), 6050882784.0);
  eval(m, 1, 1, &x);
  assert_double_exact(row(&x, "transformer.h.attn.rope", NULL)[M_FLOPS],
                      3.0 * (1 + 1) * 4096);
  eval_free(&x);
  model_free(m);
  /* absent (not null): GPTJConfig's 64, 16 heads: 3 x 32 x 64 = 6144 */
  char *g3 = tu_replace(gj, "\"rotary_dim\": 64,", "");
  m = from_text(g3);
  eval(m, 1, 1, &x);
  assert_double_exact(row(&x, "transformer.h.attn.rope", NULL)[M_FLOPS],
                      3.0 * (16 + 16) * 64);
  eval_free(&x);
  model_free(m);
  free(g3);
  free(g2);
  free(g1);
  free(gj);

  /* sliding_window absent vs null. MistralConfig's default is 4096, null
   * is no window. Mistral-Nemo (40 layers, 8 key/value heads of 128: 2 x
   * 8 x 128 x 2 bytes = 4096 bytes per token and layer) at L = 8192 caches
   * min(8192, 4096) tokens without the key: 40 x 4096 x 4096 =
   * 671,088,640; with its null, all 8192: 1,342,177,280. */
  char *mn = tu_read("test/data/configs/mistral-nemo-base-2407.json");
  char *mn1 = tu_replace(mn, "\"sliding_window\": null,", "");
  m = from_text(mn1);
  eval(m, 1, 8192, &x);
  assert_double_exact(kv_cache(&x), 40.0 * 4096 * 4096);
  eval_free(&x);
  model_free(m);
  m = from_text(mn);
  eval(m, 1, 8192, &x);
  assert_double_exact(kv_cache(&x), 40.0 * 4096 * 8192);
  eval_free(&x);
  model_free(m);
  free(mn1);
  free(mn);
  /* Qwen2Config: sliding_window defaults to 4096 and only counts with
   * use_sliding_window (__post_init__ sets it to None otherwise); the
   * layers from max_window_layers on slide. Qwen2.5-0.5B: 24 layers, 2
   * key/value heads of 896 / 14 = 64: 2 x 2 x 64 x 2 = 512 bytes per token
   * and layer. With use_sliding_window, max_window_layers 20 and no
   * sliding_window key, at L = 8192: 20 x 512 x 8192 + 4 x 512 x 4096 =
   * 83,886,080 + 8,388,608 = 92,274,688. */
  char *qw = tu_read("test/data/configs/qwen2.5-0.5b.json");
  char *q1 = tu_replace(qw, "\"use_sliding_window\": false",
                        "\"use_sliding_window\": true");
  char *q2 = tu_replace(q1, "\"max_window_layers\": 24",
                        "\"max_window_layers\": 20");
  char *q3 = tu_replace(q2, "\"sliding_window\": 32768,", "");
  m = from_text(q3);
  eval(m, 1, 8192, &x);
  assert_double_exact(kv_cache(&x), 20.0 * 512 * 8192 + 4.0 * 512 * 4096);
  eval_free(&x);
  model_free(m);
  free(q3);
  /* sliding_window null: no window even with use_sliding_window: 24 x
   * 512 x 8192 = 100,663,296 */
  q3 = tu_replace(q2, "\"sliding_window\": 32768", "\"sliding_window\": null");
  m = from_text(q3);
  eval(m, 1, 8192, &x);
  assert_double_exact(kv_cache(&x), 24.0 * 512 * 8192);
  eval_free(&x);
  model_free(m);
  free(q3);
  /* layer_types naming sliding layers while use_sliding_window is false
   * (sliding_window None): Qwen2Attention gives them no window, so at L =
   * 65536 every layer caches all of it, 24 x 512 x 65536 = 805,306,368
   * (the config's 32768 would give 738,197,504) */
  char lt[1024] = "\"layer_types\": [";
  for (int i = 0; i < 24; i++)
    strcat(lt, i < 20 ? "\"full_attention\", "
                      : (i < 23 ? "\"sliding_attention\", "
                                : "\"sliding_attention\"], "));
  strcat(lt, "\"max_window_layers\"");
  q3 = tu_replace(qw, "\"max_window_layers\"", lt);
  m = from_text(q3);
  eval(m, 1, 65536, &x);
  assert_double_exact(kv_cache(&x), 24.0 * 512 * 65536);
  eval_free(&x);
  model_free(m);
  free(q3);
  free(q2);
  free(q1);
  free(qw);

  /* Gemma 3 with "sliding_window": null: the local layers get no window
   * (Gemma3Attention: sliding_window None). gemma-3-1b-it: 26 layers of 1
   * key/value head of 256, 2 x 256 x 2 = 1024 bytes per token and layer;
   * at L = 1024 all 26 cache 1024 tokens: 27,262,976, where the 512
   * window gives 22 x 1024 x 512 + 4 x 1024 x 1024 = 15,728,640 */
  char *gm = tu_read("test/data/configs/gemma-3-1b-it.json");
  char *gm1 = tu_replace(gm, "\"sliding_window\": 512", "\"sliding_window\": null");
  m = from_text(gm1);
  eval(m, 1, 1024, &x);
  assert_double_exact(kv_cache(&x), 26.0 * 1024 * 1024);
  eval_free(&x);
  model_free(m);
  m = from_text(gm);
  eval(m, 1, 1024, &x);
  assert_double_exact(kv_cache(&x), 22.0 * 1024 * 512 + 4.0 * 1024 * 1024);
  eval_free(&x);
  model_free(m);
  free(gm1);
  free(gm);

  /* StarCoder2's attention is MistralAttention: an explicit head_dim is
   * read (getattr(config, "head_dim")). starcoder2-3b with head_dim 96
   * instead of 3072 / 24 = 128: q_proj 3072 -> 24 x 96 = 2304, k/v 3072 ->
   * 2 x 96, o_proj 2304 -> 3072, biases alike: p_starcoder2 with d = 96 */
  char *sc = tu_read("test/data/configs/starcoder2-3b.json");
  char *sc1 = tu_replace(sc, "\"num_key_value_heads\": 2,",
                         "\"num_key_value_heads\": 2, \"head_dim\": 96,");
  m = from_text(sc1);
  assert_double_exact(params_of(m),
                      p_starcoder2(49152, 3072, 30, 24, 2, 96, 12288));
  eval(m, 1, 1, &x);
  assert_double_exact(row(&x, "model.layers.self_attn.q_proj", NULL)[M_FLOPS],
                      2.0 * 3072 * 2304 + 2304);
  eval_free(&x);
  model_free(m);
  free(sc1);
  free(sc);

  /* transformers 5 keeps partial_rotary_factor inside rope_parameters
   * (Phi3/GPTNeoX rotary embedding: config.rope_parameters
   * ["partial_rotary_factor"]). Phi-3-mini (32 heads of 3072 / 32 = 96, 32
   * key/value heads) with 0.5 there: int(96 x 0.5) = 48 rotated
   * dimensions, 3 FLOPs each for Q and the new K of one token: 3 x (32 +
   * 32) x 48 = 9216 (without it 1.0: 3 x 64 x 96 = 18432). */
  char *phi = tu_read("test/data/configs/phi-3-mini-4k-instruct.json");
  char *p1 = tu_replace(phi, "\"rope_scaling\": null",
                        "\"rope_scaling\": null, \"rope_parameters\": "
                        "{\"rope_type\": \"default\", \"rope_theta\": 10000.0, "
                        "\"partial_rotary_factor\": 0.5}");
  m = from_text(p1);
  eval(m, 1, 1, &x);
  assert_double_exact(row(&x, "model.layers.self_attn.rope", NULL)[M_FLOPS],
                      3.0 * (32 + 32) * 48);
  eval_free(&x);
  model_free(m);
  m = from_text(phi);
  eval(m, 1, 1, &x);
  assert_double_exact(row(&x, "model.layers.self_attn.rope", NULL)[M_FLOPS],
                      3.0 * (32 + 32) * 96);
  eval_free(&x);
  model_free(m);
  free(p1);
  free(phi);
  /* Pythia-1B (8 heads of 2048 / 8 = 256) as transformers 5 writes it:
   * no rotary_pct, partial_rotary_factor in rope_parameters */
  char *py = tu_read("test/data/configs/pythia-1b.json");
  p1 = tu_replace(py, "\"rotary_pct\": 0.25,",
                  "\"rope_parameters\": {\"rope_type\": \"default\", "
                  "\"rope_theta\": 10000, \"partial_rotary_factor\": 0.5},");
  m = from_text(p1);
  eval(m, 1, 1, &x);
  /* 0.5 here (not Pythia's 0.25) so that the default 0.25 cannot pass:
   * 128 rotated dimensions, 3 x 16 x 128 = 6144 */
  assert_double_exact(row(&x, "gpt_neox.layers.attention.rope", NULL)[M_FLOPS],
                      3.0 * (8 + 8) * 128);
  eval_free(&x);
  model_free(m);
  free(p1);
  free(py);
  /* the same config with the key true: 7 per element, gamma and beta
   * (2 x 768 x 2 bytes) read */
  /* Falcon configs written for remote code (model_type RefinedWebModel /
   * RefinedWeb, n_head, n_layer, n_head_kv): the falcon template with the
   * defaults of their RWConfig. tiiuae/falcon-7b-instruct as first
   * published: the Falcon-7B shape (71 heads of 64, one key/value head,
   * parallel block with one LayerNorm): p_falcon7b, 6,921,720,704. */
  Model *rw = from_file("test/data/configs/falcon-7b-instruct-refinedwebmodel.json");
  assert_string_equal(rw->family, "RefinedWebModel");
  assert_double_exact(params_of(rw), p_falcon7b(65024, 4544, 32, 71, 64));
  assert_double_exact(p_falcon7b(65024, 4544, 32, 71, 64), 6921720704.0);
  eval(rw, 1, 1, &x);
  assert_double_exact(kv_cache(&x), 2.0 * 32 * 1 * 64 * 2);
  eval_free(&x);
  model_free(rw);
  /* without multi_query and parallel_attn, RWConfig's defaults (false,
   * false) apply, not FalconConfig's (true, true): 71 key/value heads,
   * query_key_value 4544 -> (71 + 2 x 71) x 64, input_layernorm and
   * post_attention_layernorm. */
  char *rwt = tu_read("test/data/configs/falcon-7b-instruct-refinedwebmodel.json");
  char *r1 = tu_replace(rwt, "\"multi_query\": true,", "");
  char *r2 = tu_replace(r1, "\"parallel_attn\": true,", "");
  rw = from_text(r2);
  double h = 4544;
  double blk = 4 * h + h * (71 + 2 * 71) * 64 + h * h + 2 * h * 4 * h;
  assert_double_exact(params_of(rw), 65024 * h + 32 * blk + 2 * h);
  eval(rw, 1, 1, &x);
  assert_double_exact(kv_cache(&x), 2.0 * 32 * 71 * 64 * 2);
  assert_true(find_row(&x, "transformer.h.post_attention_layernorm") >= 0);
  eval_free(&x);
  model_free(rw);
  free(r2);
  free(r1);
  free(rwt);

  /* tiiuae/falcon-40b-instruct's RefinedWeb config: 128 heads of 64, 8
   * key/value heads, ln_attn + ln_mlp: query_key_value 8192 -> (128 + 16)
   * x 64 = 9216, dense 8192^2, MLP 2 x 8192 x 32768, 4h LayerNorm
   * parameters: per layer 4h + 8192 x 9216 + 8192^2 + 2 x 8192 x 32768;
   * x 60, + 65024 x 8192 embeddings (tied) + 2h = 41,303,293,952. */
  h = 8192;
  double n40 = 65024 * h + 60 * (4 * h + h * 9216 + h * h + 2 * h * 4 * h) +
               2 * h;
  assert_double_exact(n40, 41303293952.0);
  rwt = tu_read("test/data/configs/falcon-40b-instruct-refinedweb.json");
  rw = from_text(rwt);
  assert_double_exact(params_of(rw), n40);
  model_free(rw);
  /* the keys as tiiuae wrote them before the conversion (no
   * new_decoder_architecture, no num_kv_heads): RefinedWeb's modelling is
   * always the new architecture, so the same model */
  r1 = tu_replace(rwt, "\"new_decoder_architecture\": true,", "");
  r2 = tu_replace(r1, "\"num_kv_heads\": 8,", "");
  rw = from_text(r2);
  assert_double_exact(params_of(rw), n40);
  eval(rw, 1, 1, &x);
  assert_double_exact(kv_cache(&x), 2.0 * 60 * 8 * 64 * 2);
  assert_true(find_row(&x, "transformer.h.ln_mlp") >= 0);
  eval_free(&x);
  model_free(rw);
  /* the same keys under model_type falcon take FalconConfig's defaults
   * (old architecture, multi_query): one key/value head and one
   * input_layernorm, query_key_value 8192 -> 130 x 64. A different
   * model: why the model_type must select the defaults. */
  char *r3 = tu_replace(r2, "\"RefinedWeb\"", "\"falcon\"");
  rw = from_text(r3);
  assert_double_exact(params_of(rw),
                      65024 * h +
                          60 * (2 * h + h * 130 * 64 + h * h + 2 * h * 4 * h) +
                          2 * h);
  model_free(rw);
  free(r3);
  free(r2);
  free(r1);
  free(rwt);

  m = from_text(base);
  eval(m, 1, 1, &x);
  ln = row(&x, "model.decoder.layers.self_attn_layer_norm", NULL);
  assert_double_exact(ln[M_FLOPS], 7 * 768.0 + 4);
  assert_double_exact(ln[M_WEIGHT_BYTES], 2 * 768 * 2.0);
  eval_free(&x);
  model_free(m);
  free(base);
}

/* Inputs a family template does not model are located errors. */
/* Qwen2.5-VL and Qwen2-VL (qwen2_5_vl, qwen2_vl): the language model is
 * Qwen2's decoder (q/k/v biases, o_proj none, head_dim = h / H), read
 * from text_config when the config has one, from the top level otherwise;
 * the vision tower is not counted and the note says so in both layouts.
 * Qwen2.5-VL-3B-Instruct (test/data/configs/qwen2.5-vl-3b-instruct.json,
 * its text_config: V 151936, h 2048, 36 layers, 16 heads, 2 KV, d 128,
 * f 11008, tied): per layer q 2048*2048 + 2048 = 4,196,352, k and v
 * 2*(2048*256 + 256) = 1,049,088, o 4,194,304, MLP 3*2048*11008 =
 * 67,633,152, norms 4,096: 77,076,992; 36 layers 2,774,771,712;
 * + 151936*2048 = 311,164,928 + 2,048: 3,085,938,688.
 * The vision tower by hand (vision_config: depth 32, width 1280, MLP 3420,
 * patch 14, temporal patch 2, 3 channels, out 2048, merge 2): patch_embed
 * Conv3d 3*2*14*14*1280 = 1,505,280 (no bias); per block two RMSNorms
 * 2,560, qkv 1280*3840 + 3840 = 4,919,040, proj 1280*1280 + 1280 =
 * 1,639,680, gate and up 2*(1280*3420 + 3420) = 8,762,040, down
 * 3420*1280 + 1280 = 4,378,880: 19,702,200, 32 blocks 630,470,400;
 * merger ln_q 1,280 + (5120*5120 + 5120) + (5120*2048 + 2048) =
 * 36,708,608: 668,684,288. Language model + vision = 3,754,622,976, the
 * Hub's safetensors total of Qwen/Qwen2.5-VL-3B-Instruct ("3.75B").
 * KV: 36 layers * 2 * 2 * 128 * 2 bytes = 36,864 bytes per token. */
static void test_families_qwen_vl(void **state) {
  (void)state;
  double lm = p_llamalike(151936, 2048, 36, 16, 2, 128, 11008, 2,
                          2048 + 2 * 256, true);
  assert_double_exact(lm, 3085938688.0); /* the sum written out above */
  double vis = 3 * 2 * 14 * 14 * 1280.0 +
               32 * (2 * 1280.0 + (1280.0 * 3840 + 3840) +
                     (1280.0 * 1280 + 1280) + 2 * (1280.0 * 3420 + 3420) +
                     (3420.0 * 1280 + 1280)) +
               1280 + (5120.0 * 5120 + 5120) + (5120.0 * 2048 + 2048);
  assert_double_exact(vis, 668684288.0);
  assert_double_exact(lm + vis, 3754622976.0);
  Model *m = from_file("test/data/configs/qwen2.5-vl-3b-instruct.json");
  assert_double_exact(params_of(m), lm);
  assert_non_null(m->note);
  assert_contains(m->note, "vision tower");
  Eval x;
  eval(m, 1, 1, &x);
  assert_double_exact(kv_cache(&x), 36.0 * 2 * 2 * 128 * 2);
  /* q_proj with its bias, o_proj without */
  assert_double_exact(row(&x, "model.layers.self_attn.q_proj", NULL)
                          [M_WEIGHT_BYTES], (2048.0 * 2048 + 2048) * 2);
  assert_double_exact(row(&x, "model.layers.self_attn.o_proj", NULL)
                          [M_WEIGHT_BYTES], 2048.0 * 2048 * 2);
  eval_free(&x);
  model_free(m);

  /* The first Hub layout: the same keys at the top level, no text_config
   * (Qwen2.5-VL-3B-Instruct's config.json as first published sets
   * tie_word_embeddings true there): the same count and the same note.
   * Untied (Qwen2.5-VL-7B and larger set it false; absent reads false,
   * Qwen2_5_VLTextConfig's default): + V*h. */
  char *text = tu_read("test/data/configs/qwen2.5-vl-3b-instruct.json");
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  assert_non_null(j);
  assert_int_equal(json_object_del(j, "text_config"), 0);
  json_object_set_new(j, "tie_word_embeddings", json_true());
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "config.json");
  char *top = json_dumps(j, JSON_INDENT(2));
  tu_write(path, top);
  m = from_file(path);
  assert_double_exact(params_of(m), lm);
  assert_non_null(m->note);
  assert_contains(m->note, "vision tower");
  model_free(m);
  free(top);
  /* Qwen2-VL-7B-Instruct (test/data/configs/qwen2-vl-7b-instruct.json,
   * the keys at the top level, no text_config): V
   * 152064, h 3584, 28 layers, 28 heads, 4 KV, d 128, f 18944, untied:
   * Qwen2-7B's language model, 7,615,616,512 by hand (per layer
   * 2*(3584*3584) + 3584 + 2*(3584*512 + 512) + 3*3584*18944 + 2*3584 =
   * 233,057,792; 28 layers 6,525,618,176; + 2*152064*3584 + 3584).
   * Its vision tower (Qwen2-VL: LayerNorms with bias, fc1/fc2 of 5120 with
   * bias, merger LayerNorm + 5120 -> 5120 -> 3584): 1,505,280 + 32 *
   * (5,120 + 4,919,040 + 1,639,680 + 6,558,720 + 6,554,880) + 2,560 +
   * 26,219,520 + 18,353,664 = 675,759,104; together 8,291,375,616, the
   * Hub's total of Qwen/Qwen2-VL-7B-Instruct ("8.29B"). */
  m = from_file("test/data/configs/qwen2-vl-7b-instruct.json");
  double q7 = p_llamalike(152064, 3584, 28, 28, 4, 128, 18944, 2,
                          3584 + 2 * 512, false);
  assert_double_exact(q7, 7615616512.0);
  double v7 = 3 * 2 * 14 * 14 * 1280.0 +
              32 * (4 * 1280.0 + (1280.0 * 3840 + 3840) +
                    (1280.0 * 1280 + 1280) + (1280.0 * 5120 + 5120) +
                    (5120.0 * 1280 + 1280)) +
              2 * 1280 + (5120.0 * 5120 + 5120) + (5120.0 * 3584 + 3584);
  assert_double_exact(q7 + v7, 8291375616.0);
  assert_double_exact(params_of(m), q7);
  assert_non_null(m->note);
  assert_contains(m->note, "vision tower");
  model_free(m);
  json_decref(j);
  free(text);
  free(path);
  tu_rm_rf(dir);
  free(dir);
}

/* Qwen3-VL and Qwen3-VL-MoE (qwen3_vl, qwen3_vl_moe): the language model
 * read from text_config (Qwen3's decoder, q/k norms per head, explicit
 * head_dim; Qwen3-MoE's sparse layers), tie_word_embeddings read at the
 * top level, where Qwen3VLConfig keeps it (lm_head is the composite
 * model's). The vision tower is not counted (the note).
 * Qwen3-VL-8B-Instruct (test/data/configs/qwen3-vl-8b-instruct.json): V
 * 151936, h 4096, 36 layers, 32 heads, 8 KV, d 128, f 12288, untied: per
 * layer q 16,777,216, k and v 2*4,194,304, o 16,777,216, q/k norms 256,
 * MLP 150,994,944, norms 8,192: 192,946,432; 36 layers 6,946,071,552;
 * + 2*622,329,856 + 4,096: 8,190,735,360.
 * Its vision tower by hand (vision_config: depth 27, width 1152, MLP 4304,
 * patch 16, temporal 2, 3 channels, 2304 position embeddings, out 4096,
 * merge 2, three deepstack mergers): patch_embed Conv3d with bias
 * 3*2*16*16*1152 + 1152 = 1,770,624; pos_embed 2304*1152 = 2,654,208;
 * per block two LayerNorms 4*1152, qkv 1152*3456 + 3456, proj
 * 1152*1152 + 1152, fc1 1152*4304 + 4304, fc2 4304*1152 + 1152 =
 * 15,239,504, 27 blocks 411,466,608; merger LayerNorm(1152) 2,304 +
 * (4608*4608 + 4608) + (4608*4096 + 4096) = 40,119,040; each deepstack
 * merger LayerNorm(4608) 9,216 + the same two Linears = 40,125,952, three
 * 120,377,856: 576,388,336. Together 8,767,123,696, the Hub's total of
 * Qwen/Qwen3-VL-8B-Instruct ("8.77B").
 * Qwen3-VL-30B-A3B-Instruct (test/data/configs/qwen3-vl-30b-a3b-instruct
 * .json): h 2048, 48 layers, 32 heads, 4 KV, d 128, 128 experts of 768,
 * top 8, every layer sparse, untied: per layer attention 2048*4096 * 2 +
 * 2048*512 * 2 + 256 = 18,874,624, norms 4,096, router 128*2048 =
 * 262,144, experts 128*3*2048*768 = 603,979,776: 623,120,640; 48 layers
 * 29,909,790,720 + 2*311,164,928 + 2,048 = 30,532,122,624 (Qwen3-30B-A3B's
 * count); active: 8 experts, 37,748,736 instead of 603,979,776 per layer:
 * 3,353,032,704. Its vision tower as the 8B's with out 2048: merger
 * 2,304 + 21,238,272 + (4608*2048 + 2048) = 30,679,808, deepstack 3 *
 * 30,686,720: 538,631,408; together 31,070,754,032, the Hub's total
 * ("31.1B"). */
static void test_families_qwen3_vl(void **state) {
  (void)state;
  double lm = p_llamalike(151936, 4096, 36, 32, 8, 128, 12288, 2, 2 * 128,
                          false);
  assert_double_exact(lm, 8190735360.0);
  double blk = 4 * 1152.0 + (1152.0 * 3456 + 3456) + (1152.0 * 1152 + 1152) +
               (1152.0 * 4304 + 4304) + (4304.0 * 1152 + 1152);
  double fc1 = 4608.0 * 4608 + 4608;
  double vis_front = 3 * 2 * 16 * 16 * 1152.0 + 1152 + 2304 * 1152.0 +
                     27 * blk;
  double vis8 = vis_front + (2304 + fc1 + 4608.0 * 4096 + 4096) +
                3 * (9216 + fc1 + 4608.0 * 4096 + 4096);
  assert_double_exact(vis8, 576388336.0);
  assert_double_exact(lm + vis8, 8767123696.0);
  Model *m = from_file("test/data/configs/qwen3-vl-8b-instruct.json");
  assert_double_exact(params_of(m), lm);
  assert_non_null(m->note);
  assert_contains(m->note, "vision tower");
  Eval x;
  eval(m, 1, 1, &x);
  /* KV: 36 layers * 2 * 8 * 128 * 2 bytes per token */
  assert_double_exact(kv_cache(&x), 36.0 * 2 * 8 * 128 * 2);
  eval_free(&x);
  model_free(m);
  /* tie_word_embeddings true at the top level (Qwen3-VL-2B, -4B): lm_head
   * shares embed_tokens, V*h fewer; inside text_config it is not read */
  char *text = tu_read("test/data/configs/qwen3-vl-8b-instruct.json");
  char *tied = tu_replace(text, "\"tie_word_embeddings\": false",
                          "\"tie_word_embeddings\": true");
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "config.json");
  tu_write(path, tied);
  m = from_file(path);
  assert_double_exact(params_of(m), lm - 151936 * 4096.0);
  model_free(m);
  /* a top-level tie_word_embeddings that is not a flag is located there */
  char *bad = tu_replace(text, "\"tie_word_embeddings\": false",
                         "\"tie_word_embeddings\": \"yes\"");
  tu_write(path, bad);
  Error e;
  m = open_model(path, &e);
  assert_null(m);
  assert_contains(e.msg, "tie_word_embeddings");
  int line, col;
  tu_position_of(bad, "\"yes\"", 1, 0, &line, &col);
  assert_int_equal(e.line, line);
  assert_int_equal(e.col, col);
  free(bad);
  free(tied);

  double H = 2048, att = H * 4096 * 2 + H * 512 * 2 + 256;
  double layer = att + 2 * H + 128 * H + 128 * 3 * H * 768;
  double moe = 48 * layer + 2 * 151936 * H + H;
  double active = moe - 48 * 120 * 3 * H * 768;
  assert_double_exact(moe, 30532122624.0);
  assert_double_exact(active, 3353032704.0);
  double vis30 = vis_front + (2304 + fc1 + 4608.0 * 2048 + 2048) +
                 3 * (9216 + fc1 + 4608.0 * 2048 + 2048);
  assert_double_exact(vis30, 538631408.0);
  assert_double_exact(moe + vis30, 31070754032.0);
  m = from_file("test/data/configs/qwen3-vl-30b-a3b-instruct.json");
  assert_double_exact(params_of(m), moe);
  assert_non_null(m->note);
  eval(m, 1, 1, &x);
  /* KV: 48 layers * 2 * 4 * 128 * 2 bytes */
  assert_double_exact(kv_cache(&x), 48.0 * 2 * 4 * 128 * 2);
  eval_free(&x);
  model_free(m);
  free(text);
  free(path);
  tu_rm_rf(dir);
  free(dir);
}

/* SmolLM3 (smollm3): Llama's decoder, tied, the layers whose
 * no_rope_layers entry is 0 without rotary embedding (NoPE).
 * SmolLM3-3B (test/data/configs/smollm3-3b.json): V 128256, h 2048, 36
 * layers, 16 heads, 4 KV, d 128, f 11008, no_rope_layers 1, 1, 1, 0
 * repeated (9 NoPE layers, 27 with RoPE): per layer q 4,194,304, k and v
 * 2*1,048,576, o 4,194,304, MLP 3*2048*11008 = 67,633,152, norms 4,096:
 * 78,123,008; 36 layers 2,812,428,288; + 128256*2048 = 262,668,288 + 2,048:
 * 3,075,098,624 (Hub 3.08B). KV: 36 * 2 * 4 * 128 * 2 = 73,728 bytes per
 * token. rope: 3 FLOPs per element of Q and the new K, (16 + 4) * 128 per
 * token, in the 27 RoPE layers only. */
static void test_families_smollm3(void **state) {
  (void)state;
  double n = p_llamalike(128256, 2048, 36, 16, 4, 128, 11008, 2, 0, true);
  assert_double_exact(n, 3075098624.0);
  Model *m = from_file("test/data/configs/smollm3-3b.json");
  assert_double_exact(params_of(m), n);
  Eval x;
  eval(m, 1, 1, &x);
  assert_double_exact(kv_cache(&x), 73728.0);
  double count;
  const double *r = row(&x, "model.layers[rope].self_attn.rope", &count);
  assert_double_exact(count, 27);
  assert_double_exact(r[M_FLOPS], 3.0 * (16 + 4) * 128);
  assert_true(find_row(&x, "model.layers[nope].self_attn.rope") < 0);
  row(&x, "model.layers[nope].self_attn.q_proj", &count);
  assert_double_exact(count, 9);
  eval_free(&x);
  model_free(m);

  char *text = tu_read("test/data/configs/smollm3-3b.json");
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "config.json");
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  assert_non_null(j);
  /* no_rope_layers absent: SmolLM3Config's default list from
   * no_rope_layer_interval (4: 27 RoPE layers; 3: 24) */
  json_object_del(j, "no_rope_layers");
  json_object_set_new(j, "no_rope_layer_interval", json_integer(3));
  char *s = json_dumps(j, JSON_INDENT(2));
  tu_write(path, s);
  free(s);
  m = from_file(path);
  eval(m, 1, 1, &x);
  row(&x, "model.layers[rope].self_attn.rope", &count);
  assert_double_exact(count, 24);
  eval_free(&x);
  assert_double_exact(params_of(m), n);
  model_free(m);
  json_decref(j);
  /* an entry that is not a number, and a list of the wrong length, are
   * errors at the entry and at the list */
  char *bad = tu_replace(text, "\"no_rope_layers\": [\n    1,",
                         "\"no_rope_layers\": [\n    \"yes\",");
  assert_true(strcmp(bad, text) != 0);
  tu_write(path, bad);
  Error e;
  m = open_model(path, &e);
  assert_null(m);
  assert_contains(e.msg, "no_rope_layers[0] must be a number");
  int line, col;
  tu_position_of(bad, "\"yes\"", 1, 0, &line, &col);
  assert_int_equal(e.line, line);
  assert_int_equal(e.col, col);
  free(bad);
  bad = tu_replace(text, "\"num_hidden_layers\": 36", "\"num_hidden_layers\": 35");
  tu_write(path, bad);
  m = open_model(path, &e);
  assert_null(m);
  assert_contains(e.msg, "no_rope_layers has 36 entries");
  free(bad);
  /* sliding NoPE layers are not modelled: refused at the flag */
  bad = tu_replace(text, "\"sliding_window\": null", "\"sliding_window\": 4096");
  char *bad2 = tu_replace(bad, "\"use_sliding_window\": false",
                          "\"use_sliding_window\": true");
  tu_write(path, bad2);
  m = open_model(path, &e);
  assert_null(m);
  assert_contains(e.msg, "no sliding-window layers are modelled");
  free(bad2);
  free(bad);
  free(text);
  free(path);
  tu_rm_rf(dir);
  free(dir);
}

/* MiMo (mimo, same_as qwen2): XiaomiMiMo/MiMo-7B-Base
 * (test/data/configs/mimo-7b-base.json): V 151680, h 4096, 36 layers, 32
 * heads, 8 KV, d 128, f 11008, untied, Qwen2's q/k/v biases: per layer q
 * 16,777,216 + 4,096, k and v 2*(4,194,304 + 1,024), o 16,777,216, MLP
 * 135,266,304, norms 8,192: 177,223,680; 36 layers 6,380,052,480; +
 * 2*621,281,280 + 4,096: 7,622,619,136. Its MTP layer (not counted: not
 * run by plain generation): the layer's 177,215,488 without its two norms
 * + five norms 20,480 + input_proj 8192*4096 = 33,554,432: 210,790,400;
 * with it 7,833,409,536, the Hub's "7.83B". KV: 36 * 2 * 8 * 128 * 2 =
 * 147,456 bytes per token. */
static void test_families_mimo(void **state) {
  (void)state;
  double n = p_llamalike(151680, 4096, 36, 32, 8, 128, 11008, 2,
                         4096 + 2 * 1024, false);
  assert_double_exact(n, 7622619136.0);
  double mtp = (n - 2 * 151680 * 4096.0 - 4096) / 36 - 2 * 4096 +
               5 * 4096 + 8192 * 4096.0;
  assert_double_exact(mtp, 210790400.0);
  if (!(fabs(n + mtp - 7.83e9) <= 0.005 * 7.83e9))
    fail_msg("%.0f is not within 0.5%% of 7.83B", n + mtp);
  Model *m = from_file("test/data/configs/mimo-7b-base.json");
  assert_double_exact(params_of(m), n);
  Eval x;
  eval(m, 1, 1, &x);
  assert_double_exact(kv_cache(&x), 147456.0);
  eval_free(&x);
  model_free(m);
}

static void test_families_errors(void **state) {
  (void)state;
  static const struct {
    const char *file, *from, *to, *msg, *at;
  } cases[] = {
      {"test/data/configs/pythia-1b.json", "\"gelu\"", "\"tanh\"",
       "hidden_act is 'tanh'; the gpt_neox template models only: gelu, "
       "gelu_fast, gelu_new, gelu_pytorch_tanh, relu, silu",
       "\"tanh\""},
      {"test/data/configs/falcon-7b.json", "\"alibi\": false",
       "\"alibi\": false, \"num_ln_in_parallel_attn\": 3",
       "num_ln_in_parallel_attn is 3; it must be at most 2", "3"},
      {"test/data/configs/gemma-3-1b-it.json",
       "\"attn_logit_softcapping\": null", "\"attn_logit_softcapping\": -50.0",
       "attn_logit_softcapping is -50; it must be at least 0", "-50.0"},
      {"test/data/configs/bloom-560m.json", "\"n_head\": 16",
       "\"num_attention_heads\": 15",
       "{n_head} (15) divides {hidden_size} (1024) does not hold", "15"},
      {"test/data/configs/gpt2.json", "\"n_head\": 12", "\"n_head\": 7",
       "{n_head} (7) divides {n_embd} (768) does not hold", "7,"},
      {"test/data/configs/gpt-j-6b.json", "\"rotary_dim\": 64",
       "\"rotary_dim\": 512", "does not hold", "512"},
      /* rotary_dim null: GPTJAttention builds sin/cos n_embd (4096) wide
       * and multiplies 256-wide heads by them: transformers raises */
      {"test/data/configs/gpt-j-6b.json", "\"rotary_dim\": 64",
       "\"rotary_dim\": null",
       "(4096) <= {n_embd} // {n_head} (256) does not hold: rotary_dim is a "
       "part of each head (GPTJAttention slices q[..., :rotary_dim]); with "
       "rotary_dim null transformers builds sin and cos n_embd wide",
       "null"},
      {"test/data/configs/gemma-2-2b.json", "\"sliding_window\": 4096,", "",
       "the config has no 'sliding_window', which the gemma2 template needs",
       "{"},
      /* Gemma with an exact GELU asked for by hidden_activation: the
       * gemma template models the tanh approximation only */
      {"test/data/configs/gemma-7b.json", "\"hidden_act\": \"gelu\",",
       "\"hidden_act\": \"gelu\", \"hidden_activation\": \"gelu\",",
       "hidden_activation is 'gelu'; the gemma template models only: "
       "gelu_pytorch_tanh",
       "\"gelu\","},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char *base = tu_read(cases[i].file);
    char *t = tu_replace(base, cases[i].from, cases[i].to);
    char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs(t, f);
    fclose(f);
    Error e;
    Model *m = open_model(path, &e);
    assert_null(m);
    char *txt = tu_err_text(&e);
    if (!strstr(txt, cases[i].msg))
      print_error("case %zu:\n%s\n", i, txt);
    assert_contains(txt, cases[i].msg);
    assert_contains(txt, "config.json:");
    /* the caret's line shows the offending text */
    assert_contains(txt, cases[i].at);
    free(txt);
    unlink(path);
    rmdir(dir);
    free(dir);
    free(t);
    free(base);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_families_parameters),
      cmocka_unit_test(test_families_kv_per_token),
      cmocka_unit_test(test_families_windows),
      cmocka_unit_test(test_families_per_op_values),
      cmocka_unit_test(test_families_other_layouts),
      cmocka_unit_test(test_families_refused_before),
      cmocka_unit_test(test_families_edge_cases),
      cmocka_unit_test(test_families_qwen_vl),
      cmocka_unit_test(test_families_qwen3_vl),
      cmocka_unit_test(test_families_smollm3),
      cmocka_unit_test(test_families_mimo),
      cmocka_unit_test(test_families_errors),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
