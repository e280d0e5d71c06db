/* test_lmrun_models.c: end-to-end tests of lmrun's JSON on the shipped
 * model files and the tiny Llama, checking what the LLM-Viewer reference
 * rows (test_lmrun_cli.c) do not:
 *   - the phase total times, TTFT and TPOT (sum over ops of count x
 *     max(flops / peak, bytes / bandwidth)), derived by hand;
 *   - each shipped model file's parameter count against the published one,
 *     and its per-op shapes (projections, act_fn, lm_head, embed_tokens)
 *     against its published config, at prefill and decode;
 *   - Mistral's sliding window on sv_matmul, softmax and flash_attention.
 * Every expected value comes from the configs and formulas written here
 * (or the hardware figures of hardware.json), never from lmrun's output. */
#include "testutil.h"

/* The roofline bound (--roofline): what the hand derivations below
 * compute; the calibrated default is tested in test_lmrun_cli.c and
 * test_calib.c. */
static json_t *run_json(const char *args) {
  char *out = NULL;
  int rc = tu_run(&out, "%s %s --roofline --format json 2>/dev/null",
                  tu_bin("lmrun"), args);
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

static json_t *phase(json_t *doc, const char *name) {
  return tu_json_find(json_object_get(doc, "phases"), "phase", name);
}

static json_t *op_named(json_t *ph, const char *op) {
  return tu_json_find(json_object_get(ph, "ops"), "op", op);
}

/* A number member, which must be present. */
static double num(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!json_is_number(v))
    fail_msg("member '%s' is missing or not a number", key);
  return json_number_value(v);
}

static double summary(json_t *doc, const char *key) {
  return num(json_object_get(doc, "summary"), key);
}

static double memory(json_t *doc, const char *key) {
  return num(json_object_get(json_object_get(doc, "summary"), "memory"), key);
}

/* TTFT, TPOT and the phase totals' time_s: the summary's figure, and the
 * phase's, both near the hand-derived total. The program adds per-row
 * times (each its own division), the derivation groups them: equal up to
 * rounding, hence the 1e-12 relative tolerance (dropping a count is off by
 * a factor, not an ulp). */
static void check_times(json_t *doc, double ttft, double tpot) {
  assert_double_near(summary(doc, "ttft_s"), ttft, 1e-12);
  assert_double_near(summary(doc, "tpot_s"), tpot, 1e-12);
  assert_double_near(num(json_object_get(phase(doc, "prefill"), "totals"), "time_s"),
                     ttft, 1e-12);
  assert_double_near(num(json_object_get(phase(doc, "decode"), "totals"), "time_s"),
                     tpot, 1e-12);
}

/* The tiny Llama (test/data/tiny_llama.json: hidden 8, intermediate 16, 2
 * heads, 1 KV head, head_dim 4, 2 layers, vocab 10), B=2, S=4, 16-bit, on
 * a100-sxm-40gb (hardware.json: 312 TFLOPS, 1555 GB/s; ridge 200 FLOP/B).
 * No operation reaches 4 FLOP/B, so every one is memory bound and a phase
 * takes (sum over ops of count x bytes) / 1555e9.
 *
 * Prefill: test_plan.c derives the totals by hand, counts included:
 *   2680 weight + 6816 act read + 5416 act write + 256 kv read + 256 kv
 *   write = 15424 bytes.
 * Decode (T=1, L=4, N = B*T = 2 tokens), bytes per op (count):
 *   embed_tokens (1)   weight 2*8*2=32, ids 2*8=16, out 2*8*2=32      80
 *   rotary_emb (1)     inv_freq 2*4=8, positions 2*8=16, cos+sin 32   56
 *   per layer (2):
 *    input_layernorm   scale 16, in 32, out 32                        80
 *    q_proj (8->8)     W 128, in 32, out 32                          192
 *    k_proj (8->4)     W 64, in 32, cache 2*4*2=16                   112
 *    v_proj            the same                                      112
 *    rope              Q,K 2*3*4*2=48 + cos,sin 2*2*4*2=32 in, 48 out 128
 *    qk_matmul         Q 2*2*4*2=32, scores 2*2*4*2=32, K 2*1*4*4*2=64 128
 *    softmax           4 rows x 4 cols x 2, in and out                64
 *    sv_matmul         P 32, out 32, V 64                            128
 *    o_proj            W 128, in 32, out 32                          192
 *    attn_add          in 2*32, out 32                                96
 *    post_attention_ln                                                80
 *    gate_proj (8->16) W 256, in 32, out 2*16*2=64                   352
 *    act_fn            32 elements in and out, 2 bytes              128
 *    up_proj                                                         352
 *    gate_up_mul       in 2*64, out 64                               192
 *    down_proj (16->8) W 256, in 64, out 32                          352
 *    mlp_add                                                          96
 *    layer sum                                                      2784
 *   norm (1)                                                          80
 *   lm_head (1, N=B=2) W 8*10*2=160, in 32, out 2*10*2=40           232
 *   total: 80 + 56 + 2 x 2784 + 80 + 232 = 6016 bytes.
 * (Without the layer count it would be 3232: half of each layer lost.) */
static void test_models_tiny_ttft_tpot(void **state) {
  (void)state;
  json_t *doc = run_json("test/data/tiny_llama.json -B 2 -S 4 --hardware a100-sxm-40gb");
  check_times(doc, 15424 / 1555e9, 6016 / 1555e9);
  assert_double_exact(num(json_object_get(phase(doc, "decode"), "totals"), "bytes"), 6016);
  json_decref(doc);
}

/* Llama-2-7B, B=1, S=2048, 16-bit, eager, on a100-sxm-40gb (312e12 FLOP/s,
 * 1555e9 B/s, ridge 312e12 / 1555e9 = 200.6 FLOP/B). h = 4096, i = 11008,
 * 32 heads of 128, 32 KV heads, 32 layers, vocab 32000.
 *
 * Decode (N = 1 token, L = 2048): at one token every op is memory bound
 * (about 1 FLOP/B), so TPOT = bytes / 1555e9. Bytes per op:
 *   embed_tokens: row 4096*2 = 8192, id 8, out 8192               16,392
 *   rotary_emb: inv_freq 64*4 = 256, position 8, cos+sin 512         776
 *   per layer (x32):
 *    input_layernorm: 8192 scale + 8192 in + 8192 out              24,576
 *    q,k,v,o_proj: 4096*4096*2 W + 8192 in + 8192 out (or cache)
 *                  = 33,570,816 each, x4                      134,283,264
 *    rope: Q,K 64*128*2 = 16,384 + cos,sin 512 in, 16,384 out      33,280
 *    qk_matmul: Q 8192, scores 32*2048*2 = 131,072,
 *               K 32*2048*128*2 = 16,777,216                   16,916,480
 *    softmax: 131,072 in + 131,072 out                            262,144
 *    sv_matmul: P 131,072, out 8192, V 16,777,216              16,916,480
 *    attn_add, mlp_add: 16,384 in + 8192 out, each 24,576          49,152
 *    post_attention_layernorm                                      24,576
 *    gate,up_proj: 4096*11008*2 = 90,177,536 W + 8192 in + 22,016 out;
 *    down_proj: W + 22,016 in + 8192 out: 90,207,744 each, x3 270,623,232
 *    act_fn: 11008 elements, 22,016 in + 22,016 out                44,032
 *    gate_up_mul: 44,032 in + 22,016 out                           66,048
 *    layer sum                                                439,243,264
 *   norm                                                           24,576
 *   lm_head: 4096*32000*2 = 262,144,000 W + 8192 in + 64,000 out 262,216,192
 *   total: 16,392 + 776 + 32 x 439,243,264 + 24,576 + 262,216,192
 *        = 14,318,042,384 bytes; TPOT = 14,318,042,384 / 1555e9 s.
 *
 * Prefill (N = T = L = 2048). Compute bound (above 200.6 FLOP/B): the
 * seven projections, e.g. q_proj 2*2048*4096*4096 = 68,719,476,736 FLOPs
 * over 67,108,864 bytes = 1024 FLOP/B; gate/up/down 2*2048*4096*11008 =
 * 184,683,593,728 FLOPs over 152,043,520 bytes = 1215 FLOP/B. Per layer
 * 4 x 68,719,476,736 + 3 x 184,683,593,728 = 828,928,688,128 FLOPs; x32 =
 * 26,525,718,020,096 FLOPs at 312e12.
 * Memory bound, bytes per layer:
 *    input_layernorm, post_attention_layernorm: 8192 + 2 x 2048*4096*2
 *                                              = 33,562,624 each
 *    rope: 64*2048*128*2 = 33,554,432 + cos,sin 1,048,576 in,
 *          33,554,432 out                                      68,157,440
 *    qk_matmul: Q 16,777,216 + scores 32*2048*2048*2 = 268,435,456
 *               + K 16,777,216 = 301,989,888 (34,359,738,368 FLOPs:
 *               113.8 FLOP/B, memory bound)
 *    softmax: 2 x 268,435,456                                 536,870,912
 *    sv_matmul: 268,435,456 + 16,777,216 + 16,777,216         301,989,888
 *    attn_add, mlp_add: 2 x 16,777,216 in + 16,777,216 out = 50,331,648 each
 *    act_fn: 2048*11008*2 = 45,088,768 in and out              90,177,536
 *    gate_up_mul: 2 x 45,088,768 in + 45,088,768 out          135,266,304
 *    layer sum: 2 x 33,562,624 + 68,157,440 + 2 x 301,989,888
 *               + 536,870,912 + 2 x 50,331,648 + 90,177,536
 *               + 135,266,304                               1,602,240,512
 *   plus embed_tokens 16,777,216 + 16,384 + 16,777,216 = 33,570,816;
 *   rotary_emb 256 + 16,384 + 2*2048*128*2 = 1,065,216; norm 33,562,624;
 *   lm_head (last position only, N = 1) 262,216,192:
 *   32 x 1,602,240,512 + 330,414,848 = 51,602,111,232 bytes at 1555e9.
 * TTFT = 26,525,718,020,096 / 312e12 + 51,602,111,232 / 1555e9 s. */
static void test_models_llama2_7b_ttft_tpot(void **state) {
  (void)state;
  json_t *doc = run_json("models/llama-2-7b-hf.json -B 1 -S 2048 --hardware a100-sxm-40gb");
  check_times(doc, 26525718020096.0 / 312e12 + 51602111232.0 / 1555e9,
              14318042384.0 / 1555e9);
  json_decref(doc);
}

/* Published configs (each model's config.json on the Hugging Face Hub, as
 * cited in the model file's "source") and published parameter counts (the
 * model cards / safetensors index totals). Typed here, not read from the
 * model files, so a wrong value in a model file is caught. */
typedef struct Cfg {
  const char *file;
  double h, i, heads, kv_heads, d, layers, vocab, params;
} Cfg;

static const Cfg models[] = {
    {"models/llama-2-7b-hf.json", 4096, 11008, 32, 32, 128, 32, 32000, 6738415616.0},
    {"models/llama-2-13b-hf.json", 5120, 13824, 40, 40, 128, 40, 32000, 13015864320.0},
    {"models/llama-2-70b-hf.json", 8192, 28672, 64, 8, 128, 80, 32000, 68976648192.0},
    {"models/meta-llama-3-8b.json", 4096, 14336, 32, 8, 128, 32, 128256, 8030261248.0},
    {"models/mistral-7b-v0.1.json", 4096, 14336, 32, 8, 128, 32, 32000, 7241732096.0},
};

/* The parameter count of a Llama-style decoder from its config: embedding
 * and untied lm_head V x h each; per layer q and o h x (H d), k and v
 * h x (Hkv d), gate, up and down h x i, two RMSNorm scales h; the final
 * norm h. No biases. */
static double params_of(const Cfg *c) {
  double attn = 2 * c->h * c->heads * c->d + 2 * c->h * c->kv_heads * c->d;
  return 2 * c->vocab * c->h + c->layers * (attn + 3 * c->h * c->i + 2 * c->h) + c->h;
}

/* The typed configs agree with the published counts, e.g. Llama-3-8B:
 * 2 x 128256 x 4096 = 1,050,673,152; per layer 2 x 4096 x 4096 + 2 x 4096 x
 * 1024 + 3 x 4096 x 14336 + 2 x 4096 = 218,112,000, x32 = 6,979,584,000;
 * + 4096 = 8,030,261,248. And each model file's weights at 16 bits are 2
 * bytes per parameter plus the 64 float32 of RoPE's inv_freq (256 bytes). */
static void test_models_parameter_counts(void **state) {
  (void)state;
  for (size_t m = 0; m < LM_ARRAY_LEN(models); m++) {
    const Cfg *c = &models[m];
    assert_double_exact(params_of(c), c->params);
    char args[256];
    snprintf(args, sizeof(args), "%s -B 1 -S 128 --phase decode", c->file);
    json_t *doc = run_json(args);
    double w = memory(doc, "weight_bytes");
    if (w != 2 * c->params + 256)
      print_error("%s: weight_bytes %.17g, want 2 x %.17g + 256\n", c->file, w, c->params);
    assert_double_exact(w, 2 * c->params + 256);
    json_decref(doc);
  }
}

/* What one op row should hold. */
typedef struct Want {
  const char *op;
  double count, flops, weight, act_read, act_write, kv_read, kv_write;
} Want;

/* A bias-free Linear on N rows, in -> out, 16-bit: 2 N in out FLOPs, the
 * in x out matrix read once, N x in read, N x out written to activations
 * (to_cache 0) or to the KV cache (to_cache 1). */
static Want linear(const char *op, double count, double n, double in, double out,
                   int to_cache) {
  return (Want){op, count, 2 * n * in * out, in * out * 2, n * in * 2,
                to_cache ? 0 : n * out * 2, 0, to_cache ? n * out * 2 : 0};
}

static void check_op(const char *file, const char *ph_name, json_t *ph, const Want *w) {
  json_t *o = op_named(ph, w->op);
  static const char *keys[] = {"count", "flops", "weight_bytes", "act_read_bytes",
                               "act_write_bytes", "kv_read_bytes", "kv_write_bytes"};
  const double want[] = {w->count, w->flops, w->weight, w->act_read,
                         w->act_write, w->kv_read, w->kv_write};
  for (size_t k = 0; k < LM_ARRAY_LEN(keys); k++) {
    double got = num(o, keys[k]);
    if (got != want[k])
      print_error("%s %s %s.%s: %.17g, want %.17g\n", file, ph_name, w->op, keys[k],
                  got, want[k]);
    assert_double_exact(got, want[k]);
  }
}

/* Per-op shapes of every shipped model at B=2, S=300 (16-bit), prefill
 * (N = B*S = 600 tokens) and decode (N = B = 2), from the config:
 *   q_proj h -> H d; k_proj, v_proj h -> Hkv d, written to the cache;
 *   o_proj H d -> h; gate_proj, up_proj h -> i; down_proj i -> h; all
 *   repeated once per layer;
 *   act_fn: SiLU over the N x i gate output, 4 FLOPs per element, read
 *   and written at 2 bytes;
 *   lm_head: only the last position of each sequence, N = B in both
 *   phases: h -> vocab, once;
 *   embed_tokens: gathers N rows of h (weight bytes N h 2), reads N int64
 *   token ids (8 bytes each), writes N x h; no FLOPs; once.
 * For example Llama-3-8B k_proj at prefill: 2 x 600 x 4096 x 1024 =
 * 5,033,164,800 FLOPs, weight 4096 x 1024 x 2 = 8,388,608 bytes (8 KV
 * heads, not 32), cache write 600 x 1024 x 2 = 1,228,800. */
static void test_models_op_shapes(void **state) {
  (void)state;
  const double B = 2, S = 300;
  for (size_t m = 0; m < LM_ARRAY_LEN(models); m++) {
    const Cfg *c = &models[m];
    char args[256];
    snprintf(args, sizeof(args), "%s -B 2 -S 300", c->file);
    json_t *doc = run_json(args);
    for (int p = 0; p < 2; p++) {
      const char *ph_name = p == 0 ? "prefill" : "decode";
      json_t *ph = phase(doc, ph_name);
      double n = p == 0 ? B * S : B, L = c->layers;
      double q = c->heads * c->d, kv = c->kv_heads * c->d;
      Want wants[] = {
          linear("q_proj", L, n, c->h, q, 0),
          linear("k_proj", L, n, c->h, kv, 1),
          linear("v_proj", L, n, c->h, kv, 1),
          linear("o_proj", L, n, q, c->h, 0),
          linear("gate_proj", L, n, c->h, c->i, 0),
          linear("up_proj", L, n, c->h, c->i, 0),
          linear("down_proj", L, n, c->i, c->h, 0),
          {"act_fn", L, 4 * n * c->i, 0, n * c->i * 2, n * c->i * 2, 0, 0},
          linear("lm_head", 1, B, c->h, c->vocab, 0),
          {"embed_tokens", 1, 0, n * c->h * 2, n * 8, n * c->h * 2, 0, 0},
      };
      for (size_t k = 0; k < LM_ARRAY_LEN(wants); k++)
        check_op(c->file, ph_name, ph, &wants[k]);
    }
    json_decref(doc);
  }
}

/* Mistral-7B (32 heads, 8 KV heads, d = 128, sliding_window 4096), B=1,
 * decode: a new token attends the last min(L, 4096) positions (the window
 * counts the token itself: min(L, window + T - 1) with T = 1).
 *   S=8192, eager: sv_matmul P 32 x 4096 x 2 = 262,144 bytes in, out
 *     32 x 128 x 2 = 8192, V 8 x 4096 x 128 x 2 = 8,388,608, FLOPs
 *     2 x 32 x 4096 x 128 = 33,554,432; softmax 5 x 32 x 4096 = 655,360
 *     FLOPs, 262,144 in and out.
 *   S=4097: the same (the window starts to bind one past 4096).
 *   S=2048: everything attended: V 8 x 2048 x 128 x 2 = 4,194,304.
 *   S=8192, flash on h100-sxm (228 KiB = 233,472 bytes of shared memory):
 *     Br = min(ceil(233472 / (4 x 128 x 2)), 128) = 128 query rows; the 4
 *     query heads of a KV head fit one tile (ceil(1 x 32 / 8 / 128) = 1),
 *     so K and V are read once: 2 x 8 x 4096 x 128 x 2 = 16,777,216;
 *     FLOPs 4 x 32 x 4096 x 128 + 5 x 32 x 4096 = 67,764,224; Q in
 *     32 x 128 x 2 = 8192, O out 8192 + log-sum-exp 32 x 4 = 8320. */
static void test_models_mistral_window_sv_flash(void **state) {
  (void)state;
  const int sizes[] = {8192, 4097};
  for (size_t k = 0; k < LM_ARRAY_LEN(sizes); k++) {
    char args[256];
    snprintf(args, sizeof(args), "models/mistral-7b-v0.1.json -B 1 -S %d --phase decode",
             sizes[k]);
    json_t *doc = run_json(args);
    json_t *dec = phase(doc, "decode");
    assert_double_exact(num(dec, "kv_len"), sizes[k]);
    Want sv = {"sv_matmul", 32, 33554432, 0, 262144, 8192, 8388608, 0};
    Want sm = {"softmax", 32, 655360, 0, 262144, 262144, 0, 0};
    check_op("mistral", args, dec, &sv);
    check_op("mistral", args, dec, &sm);
    json_decref(doc);
  }
  json_t *doc = run_json("models/mistral-7b-v0.1.json -B 1 -S 2048 --phase decode");
  Want sv = {"sv_matmul", 32, 2.0 * 32 * 2048 * 128, 0, 32 * 2048 * 2, 8192, 4194304, 0};
  check_op("mistral", "S=2048", phase(doc, "decode"), &sv);
  json_decref(doc);
  doc = run_json("models/mistral-7b-v0.1.json -B 1 -S 8192 --phase decode "
                 "--attention flash --hardware h100-sxm");
  Want fa = {"flash_attention", 32, 67764224, 0, 8192, 8320, 16777216, 0};
  check_op("mistral", "flash S=8192", phase(doc, "decode"), &fa);
  json_decref(doc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_models_tiny_ttft_tpot),
      cmocka_unit_test(test_models_llama2_7b_ttft_tpot),
      cmocka_unit_test(test_models_parameter_counts),
      cmocka_unit_test(test_models_op_shapes),
      cmocka_unit_test(test_models_mistral_window_sv_flash),
  };
  return cmocka_run_group_tests_name("lmrun_models", tests, NULL, NULL);
}
