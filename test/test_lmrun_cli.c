/* test_lmrun_cli.c: end-to-end tests of lmrun: the LLM-Viewer reference
 * match for Llama-2-7B, the output formats, and bad input. */
#include "testutil.h"

static const char *MODEL = "models/llama-2-7b-hf.json";
#define REF_PREFILL "test/data/llm-viewer/llama-2-7b__prefill__B1_S2048__fp16_A100.json"
#define REF_DECODE "test/data/llm-viewer/llama-2-7b__decode__B1_S2048__fp16_A100.json"

/* A double as the shortest decimal that reads back to it (how lmrun
 * writes numbers; %.17g would not match its text). */
static void report_number_for_test(double v, char *out, size_t n) {
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(out, n, "%.*g", prec, v);
    if (strtod(out, NULL) == v)
      return;
  }
}

/* The roofline output (--roofline): what LLM-Viewer computes. The
 * calibrated default is tested in test_lmrun_calibrated. */
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

/* Our op names and LLM-Viewer's for the operations that must match. */
static const struct {
  const char *ours, *theirs;
} map[] = {{"q_proj", "q_proj"},       {"k_proj", "k_proj"},
           {"v_proj", "v_proj"},       {"o_proj", "out_proj"},
           {"gate_proj", "gate_proj"}, {"up_proj", "up_proj"},
           {"down_proj", "down_proj"}, {"qk_matmul", "qk_matmul"},
           {"softmax", "softmax"},     {"sv_matmul", "sv_matmul"}};

static json_t *phase(json_t *doc, const char *name) {
  return tu_json_find(json_object_get(doc, "phases"), "phase", name);
}

static json_t *op_named(json_t *ph, const char *op) {
  return tu_json_find(json_object_get(ph, "ops"), "op", op);
}

static json_t *ref_row(json_t *ref, const char *layer) {
  return tu_json_find(json_object_get(ref, "layers"), "layer", layer);
}

/* Every Linear projection, qk_matmul, softmax and sv_matmul agrees exactly
 * with LLM-Viewer's own output (FLOPs and each kind of bytes). */
static void check_reference(json_t *ph, json_t *ref) {
  static const struct {
    const char *ours, *theirs;
  } fields[] = {{"flops", "OPs"},
                {"weight_bytes", "load_weight"},
                {"act_read_bytes", "load_act"},
                {"act_write_bytes", "store_act"},
                {"kv_read_bytes", "load_kv_cache"},
                {"kv_write_bytes", "store_kv_cache"},
                {"bytes", "memory_access"}};
  for (size_t i = 0; i < LM_ARRAY_LEN(map); i++) {
    json_t *o = op_named(ph, map[i].ours), *r = ref_row(ref, map[i].theirs);
    assert_int_equal(json_integer_value(json_object_get(o, "count")), 32);
    for (size_t k = 0; k < LM_ARRAY_LEN(fields); k++) {
      json_t *oj = json_object_get(o, fields[k].ours);
      json_t *tj = json_object_get(r, fields[k].theirs);
      assert_true(json_is_number(oj)); /* present, not null */
      assert_true(json_is_number(tj));
      double ours = json_number_value(oj), theirs = json_number_value(tj);
      if (ours != theirs)
        print_error("%s.%s: %.17g != LLM-Viewer %.17g\n", map[i].ours,
                    fields[k].ours, ours, theirs);
      assert_double_exact(ours, theirs);
    }
  }
}

/* Per-op time and bound on a100-sxm-40gb (LLM-Viewer's nvidia_A100: 312
 * TFLOPS, 1555 GB/s). LLM-Viewer computes OPs / min(peak, AI * bandwidth),
 * we max(flops / peak, bytes / bandwidth): the same value, which may differ
 * in the last bit, hence the 1e-12 relative tolerance. */
static void check_times(json_t *ph, json_t *ref) {
  for (size_t i = 0; i < LM_ARRAY_LEN(map); i++) {
    json_t *o = op_named(ph, map[i].ours), *r = ref_row(ref, map[i].theirs);
    assert_string_equal(json_string_value(json_object_get(o, "bound")),
                        json_string_value(json_object_get(r, "bound")));
    assert_double_near(json_number_value(json_object_get(o, "time_s")),
                       json_number_value(json_object_get(r, "inference_time")),
                       1e-12);
  }
}

static void test_lmrun_matches_llm_viewer_decode_and_times(void **state) {
  (void)state;
  json_t *doc = run_json("models/llama-2-7b-hf.json -B 1 -S 2048 --hardware a100-sxm-40gb");
  json_error_t je;
  json_t *pref = json_load_file(REF_PREFILL, 0, &je);
  json_t *dref = json_load_file(REF_DECODE, 0, &je);
  assert_non_null(pref);
  assert_non_null(dref);
  json_t *dec = phase(doc, "decode");
  assert_int_equal(json_integer_value(json_object_get(dec, "tokens")), 1);
  assert_int_equal(json_integer_value(json_object_get(dec, "kv_len")), 2048);
  check_reference(dec, dref);
  check_times(phase(doc, "prefill"), pref);
  check_times(dec, dref);
  json_t *hw = json_object_get(doc, "hardware");
  assert_string_equal(json_string_value(json_object_get(hw, "id")), "a100-sxm-40gb");
  assert_double_exact(json_number_value(json_object_get(hw, "peak_flops")), 312e12);
  json_decref(pref);
  json_decref(dref);
  json_decref(doc);
}

static void test_lmrun_matches_llm_viewer_prefill(void **state) {
  (void)state;
  json_t *doc = run_json("models/llama-2-7b-hf.json -B 1 -S 2048");
  json_error_t je;
  json_t *ref = json_load_file(REF_PREFILL, 0, &je);
  assert_non_null(ref);
  assert_string_equal(json_string_value(json_object_get(doc, "model")),
                      "meta-llama/Llama-2-7b-hf");
  assert_int_equal(json_integer_value(json_object_get(doc, "batch_size")), 1);
  assert_int_equal(json_integer_value(json_object_get(doc, "seq_len")), 2048);
  json_t *pre = phase(doc, "prefill");
  assert_int_equal(json_integer_value(json_object_get(pre, "tokens")), 2048);
  assert_int_equal(json_integer_value(json_object_get(pre, "kv_len")), 2048);
  check_reference(pre, ref);
  json_decref(ref);
  json_decref(doc);
}

/* Totals are sum(count x value) over the op rows. */
static void test_lmrun_totals_sum_rows(void **state) {
  (void)state;
  json_t *doc = run_json("models/llama-2-7b-hf.json -B 3 -S 100");
  json_t *pre = phase(doc, "prefill");
  const char *keys[] = {"flops", "weight_bytes", "act_read_bytes",
                        "act_write_bytes", "kv_read_bytes", "kv_write_bytes",
                        "bytes"};
  for (size_t k = 0; k < LM_ARRAY_LEN(keys); k++) {
    double sum = 0;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(pre, "ops"), i, o)
      sum += json_number_value(json_object_get(o, "count")) *
             json_number_value(json_object_get(o, keys[k]));
    assert_double_exact(
        json_number_value(json_object_get(json_object_get(pre, "totals"), keys[k])),
        sum);
  }
  /* q_proj at B=3, S=100: 2 * 300 * 4096 * 4096 */
  assert_double_exact(json_number_value(json_object_get(op_named(pre, "q_proj"), "flops")),
                      2.0 * 300 * 4096 * 4096);
  json_decref(doc);
}

/* Decode reads the whole KV cache: B=4, S=1000, 16-bit, Llama-2-7B:
 * qk_matmul and sv_matmul each read B * Hkv * L * d * 2 = 4*32*1000*128*2
 * = 32,768,000 bytes; per model 32 x 2 x 32,768,000 = 2,097,152,000. RoPE
 * rotates the new Q and K in activation precision: it reads
 * 4*1*(32+32)*128*2 + cos,sin 2*4*1*128*2 = 65,536 + 2,048 = 67,584. */
static void test_lmrun_decode_kv_reads(void **state) {
  (void)state;
  json_t *doc = run_json("models/llama-2-7b-hf.json -B 4 -S 1000 --phase decode");
  assert_int_equal(json_array_size(json_object_get(doc, "phases")), 1);
  json_t *dec = phase(doc, "decode");
  assert_double_exact(json_number_value(json_object_get(op_named(dec, "qk_matmul"), "kv_read_bytes")),
                      32768000);
  assert_double_exact(json_number_value(json_object_get(op_named(dec, "sv_matmul"), "kv_read_bytes")),
                      32768000);
  assert_double_exact(json_number_value(json_object_get(op_named(dec, "rope"), "kv_read_bytes")),
                      0);
  assert_double_exact(json_number_value(json_object_get(op_named(dec, "rope"), "act_read_bytes")),
                      67584);
  assert_double_exact(json_number_value(json_object_get(json_object_get(dec, "totals"), "kv_read_bytes")),
                      2097152000.0);
  /* the new token's K and V go to the cache: 4 tokens * 4096 * 2 bytes */
  assert_double_exact(json_number_value(json_object_get(op_named(dec, "k_proj"), "kv_write_bytes")),
                      32768);
  json_decref(doc);
}

/* Grouped-query attention on Llama-2-70B (64 query heads, 8 KV heads,
 * d = 128), prefill B=1 S=1024: Q = 1*64*1024*128*2 = 16,777,216 bytes,
 * K (and V) = 1*8*1024*128*2 = 2,097,152; k_proj writes 1024 tokens x
 * 1024 (8 heads * 128) x 2 = 2,097,152 and reads a 8192 x 1024 weight =
 * 16,777,216 bytes. Decode: Q = 64*128*2 = 16,384, K still 2,097,152. */
static void test_lmrun_gqa_llama2_70b(void **state) {
  (void)state;
  json_t *doc = run_json("models/llama-2-70b-hf.json -B 1 -S 1024");
  json_t *pre = phase(doc, "prefill"), *dec = phase(doc, "decode");
  json_t *qk = op_named(pre, "qk_matmul");
  assert_double_exact(json_number_value(json_object_get(qk, "act_read_bytes")), 16777216);
  assert_double_exact(json_number_value(json_object_get(qk, "kv_read_bytes")), 2097152);
  assert_double_exact(json_number_value(json_object_get(qk, "act_write_bytes")),
                      1.0 * 64 * 1024 * 1024 * 2);
  assert_double_exact(json_number_value(json_object_get(op_named(pre, "sv_matmul"), "kv_read_bytes")),
                      2097152);
  json_t *k = op_named(pre, "k_proj");
  assert_double_exact(json_number_value(json_object_get(k, "kv_write_bytes")), 2097152);
  assert_double_exact(json_number_value(json_object_get(k, "weight_bytes")), 16777216);
  assert_double_exact(json_number_value(json_object_get(op_named(pre, "q_proj"), "weight_bytes")),
                      134217728);
  assert_int_equal(json_integer_value(json_object_get(k, "count")), 80);
  json_t *dqk = op_named(dec, "qk_matmul");
  assert_double_exact(json_number_value(json_object_get(dqk, "act_read_bytes")), 16384);
  assert_double_exact(json_number_value(json_object_get(dqk, "kv_read_bytes")), 2097152);
  /* KV cache: 80 layers x 2 x 1024 x 8 x 128 x 2 bytes = 335,544,320 */
  json_t *mem = json_object_get(json_object_get(doc, "summary"), "memory");
  assert_double_exact(json_number_value(json_object_get(mem, "kv_cache_bytes")), 335544320);
  json_decref(doc);
}

/* Precision. Llama-2-7B holds 6,738,415,616 parameters (its published
 * count) plus the 64 float32 of inv_freq: 2 * 6,738,415,616 + 256 bytes at
 * 16 bits. At 4-bit weights the decoder's matrices shrink 4x: 32 layers x
 * (4 x 4096^2 + 3 x 4096 x 11008) = 6,476,005,376 parameters -> 3,238,002,688
 * bytes; the embedding and lm_head stay 16-bit by default (2 x 32000 x 4096
 * x 2 = 524,288,000), as do the 65 RMSNorm scales (532,480):
 *   3,238,002,688 + 524,288,000 + 532,480 + 256 = 3,762,823,424.
 * With --embed-bits 4 as well: (13,476,831,232 - 532,480) / 4 + 532,480 +
 * 256 = 3,369,607,424.
 * q_proj reads 4096 x 4096 / 2 = 8,388,608 weight bytes. With 8-bit KV the
 * cache at B=1 S=2048 is 32 x 2 x 2048 x 32 x 128 x 1 = 536,870,912 bytes
 * and decode's qk_matmul reads 2048 x 4096 x 1 = 8,388,608. */
static void test_lmrun_quantization(void **state) {
  (void)state;
  json_t *doc = run_json("models/llama-2-7b-hf.json");
  json_t *mem = json_object_get(json_object_get(doc, "summary"), "memory");
  assert_double_exact(json_number_value(json_object_get(mem, "weight_bytes")),
                      2.0 * 6738415616 + 256);
  json_decref(doc);
  doc = run_json("models/llama-2-7b-hf.json --w-bits 4 --embed-bits 4");
  mem = json_object_get(json_object_get(doc, "summary"), "memory");
  assert_double_exact(json_number_value(json_object_get(mem, "weight_bytes")), 3369607424.0);
  json_decref(doc);
  doc = run_json("models/llama-2-7b-hf.json --w-bits 4");
  mem = json_object_get(json_object_get(doc, "summary"), "memory");
  assert_double_exact(json_number_value(json_object_get(mem, "weight_bytes")), 3762823424.0);
  /* lm_head keeps 16-bit weights: 4096 x 32000 x 2 */
  assert_double_exact(json_number_value(json_object_get(op_named(phase(doc, "decode"), "lm_head"),
                                                        "weight_bytes")),
                      262144000);
  json_t *pre = phase(doc, "prefill");
  assert_double_exact(json_number_value(json_object_get(op_named(pre, "q_proj"), "weight_bytes")),
                      8388608);
  assert_double_exact(json_number_value(json_object_get(op_named(pre, "q_proj"), "act_read_bytes")),
                      16777216); /* activations stay 16-bit */
  assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "hardware"), "peak")),
                      "FP16/BF16"); /* W4A16 computes in 16 bits */
  json_decref(doc);
  doc = run_json("models/llama-2-7b-hf.json --kv-bits 8");
  mem = json_object_get(json_object_get(doc, "summary"), "memory");
  assert_double_exact(json_number_value(json_object_get(mem, "kv_cache_bytes")), 536870912);
  json_t *dec = phase(doc, "decode");
  assert_double_exact(json_number_value(json_object_get(op_named(dec, "qk_matmul"), "kv_read_bytes")),
                      8388608);
  json_decref(doc);
  doc = run_json("models/llama-2-7b-hf.json --w-bits 8 --a-bits 8");
  json_t *hw = json_object_get(doc, "hardware");
  assert_string_equal(json_string_value(json_object_get(hw, "peak")), "INT8");
  assert_double_exact(json_number_value(json_object_get(hw, "peak_flops")), 1978.9e12);
  /* W8A8 with a 16-bit cache: the projections run at the INT8 peak, the
   * attention matmuls (which read the 16-bit cache) at the 16-bit one */
  pre = phase(doc, "prefill");
  assert_string_equal(json_string_value(json_object_get(op_named(pre, "q_proj"), "peak")), "INT8");
  assert_double_exact(json_number_value(json_object_get(op_named(pre, "q_proj"), "time_s")),
                      68719476736.0 / 1978.9e12);
  assert_string_equal(json_string_value(json_object_get(op_named(pre, "qk_matmul"), "peak")),
                      "FP16/BF16");
  json_decref(doc);
  doc = run_json("models/llama-2-7b-hf.json --w-bits 8 --a-bits 8 --kv-bits 8");
  pre = phase(doc, "prefill");
  assert_string_equal(json_string_value(json_object_get(op_named(pre, "qk_matmul"), "peak")), "INT8");
  json_decref(doc);
  /* W4A8 on an RTX 4090: INT8 (660.6 TOPS) unless FP8 is asked for */
  doc = run_json("models/llama-2-7b-hf.json --w-bits 4 --a-bits 8 --hardware rtx-4090");
  hw = json_object_get(doc, "hardware");
  assert_string_equal(json_string_value(json_object_get(hw, "peak")), "INT8");
  assert_double_exact(json_number_value(json_object_get(hw, "peak_flops")), 660.6e12);
  json_decref(doc);
  doc = run_json("models/llama-2-7b-hf.json --w-bits 8 --a-bits 8 --hardware rtx-4090 "
                 "--8bit-format fp8");
  hw = json_object_get(doc, "hardware");
  assert_string_equal(json_string_value(json_object_get(hw, "peak")), "FP8");
  assert_double_exact(json_number_value(json_object_get(hw, "peak_flops")), 330.3e12);
  json_decref(doc);
}

/* FlashAttention-2 and the footprint on a real model: Llama-2-70B, B=16,
 * S=4096, 4-bit weights, 8-bit KV, on an H200 (228 KiB shared memory per
 * SM: Br = min(ceil(233472 / (4 * 128 * 2)), 128) = 128; 8 query heads per
 * KV head are packed).
 *   decode flash FLOPs: 4*16*64*1*4096*128 + 5*16*64*1*4096 = 2,168,455,168
 *   decode K+V: 2*16*8*ceil(1*8/128)*4096*128*1 = 134,217,728
 *   prefill K+V: 2*16*8*ceil(4096*8/128)*4096*128*1 = 34,359,738,368
 *   weights: 68,976,648,192 parameters; the decoder's matrices
 *     (68,976,648,192 - 2 x 32000 x 8192 - 161 x 8192 norm scales =
 *     68,451,041,280) at 4 bits = 34,225,520,640 bytes, embedding and
 *     lm_head at 16 bits 1,048,576,000, norm scales 2,637,824, inv_freq
 *     256: 35,276,734,720
 *   KV cache: 80 x 2 x 16 x 4096 x 8 x 128 x 1 = 10,737,418,240
 *   peak activations: gate_up_mul in prefill, 3 x 65536 x 28672 x 2 =
 *     11,274,289,152
 *   largest batch: (141 GiB - weights) / (KV 671,088,640 + activations
 *     704,643,072 per sequence) = 116,120,862,464 / 1,375,731,712 = 84.4 */
static void test_lmrun_flash_70b_h200(void **state) {
  (void)state;
  json_t *doc = run_json("models/llama-2-70b-hf.json -B 16 -S 4096 --hardware h200 "
                         "--attention flash --w-bits 4 --kv-bits 8");
  json_t *dec = phase(doc, "decode"), *pre = phase(doc, "prefill");
  json_t *fd = op_named(dec, "flash_attention"), *fp = op_named(pre, "flash_attention");
  assert_double_exact(json_number_value(json_object_get(fd, "flops")), 2168455168.0);
  assert_double_exact(json_number_value(json_object_get(fd, "kv_read_bytes")), 134217728.0);
  assert_double_exact(json_number_value(json_object_get(fp, "kv_read_bytes")), 34359738368.0);
  assert_string_equal(json_string_value(json_object_get(fd, "bound")), "memory");
  /* memory bound: bytes / 4.8 TB/s; Q 16*64*128*2 = 262,144 read, O the
   * same plus a float32 log-sum-exp per row (16*64*4) written */
  assert_double_exact(json_number_value(json_object_get(fd, "time_s")),
                      (134217728.0 + 262144 + 262144 + 4096) / 4800e9);
  json_t *mem = json_object_get(json_object_get(doc, "summary"), "memory");
  assert_double_exact(json_number_value(json_object_get(mem, "weight_bytes")), 35276734720.0);
  assert_double_exact(json_number_value(json_object_get(mem, "kv_cache_bytes")), 10737418240.0);
  assert_double_exact(json_number_value(json_object_get(mem, "activation_bytes")), 11274289152.0);
  assert_double_exact(json_number_value(json_object_get(mem, "max_batch")), 84);
  assert_true(json_is_true(json_object_get(mem, "fits")));
  json_decref(doc);
}

/* Llama-2-7B on an A100-40GB, eager, 16-bit: weights 13,476,831,488;
 * per sequence at S=2048 the cache holds 1,073,741,824 bytes and prefill's
 * scores need 32*2048*2048*2 in + out = 536,870,912: (40 GiB - weights) /
 * 1,610,612,736 = 18.3 sequences. */
static void test_lmrun_max_batch_7b_a100(void **state) {
  (void)state;
  json_t *doc = run_json("models/llama-2-7b-hf.json -S 2048 --hardware a100-sxm-40gb");
  json_t *mem = json_object_get(json_object_get(doc, "summary"), "memory");
  assert_double_exact(json_number_value(json_object_get(mem, "activation_bytes")), 536870912.0);
  assert_double_exact(json_number_value(json_object_get(mem, "max_batch")), 18);
  json_decref(doc);
}

/* Warnings: a sequence past max_position_embeddings, and a module whose
 * formulas are still awaiting review. Neither stops the run. */
static void test_lmrun_warnings(void **state) {
  (void)state;
  char *out = NULL;
  assert_int_equal(tu_run(&out, "%s %s -S 5000 --format csv >/dev/null", tu_bin("lmrun"), MODEL), 0);
  assert_contains(out, "lmrun: warning: -S 5000 exceeds the model's max_position_embeddings (4096)");
  free(out);
  char *dir = tu_tmpdir();
  char *db = path_join(dir, "module_db.json");
  char *text = tu_read("module_db.json");
  /* SiLU's entry is the third: mark its validation pending */
  const char *silu = strstr(text, "\"torch.nn.modules.activation.SiLU\"");
  assert_non_null(silu);
  const char *st = strstr(silu, "\"status\": \"validated\"");
  Buf b;
  buf_init(&b);
  buf_append(&b, text, (size_t)(st - text));
  buf_puts(&b, "\"status\": \"pending\"");
  buf_puts(&b, st + strlen("\"status\": \"validated\""));
  tu_write(db, buf_str(&b));
  assert_int_equal(tu_run(&out, "%s %s --db %s --format csv >/dev/null", tu_bin("lmrun"), MODEL, db), 0);
  assert_contains(out, "lmrun: warning: torch.nn.modules.activation.SiLU is 'pending' "
                       "in the module database: its formulas have not been reviewed");
  assert_not_contains(out, "Linear is 'pending'");
  free(out);
  buf_free(&b);
  free(text);
  free(db);
  tu_rm_rf(dir);
  free(dir);
}

/* Mistral-7B's sliding window (4096) caps decode's KV length: at S=8192
 * qk_matmul reads 1 x 8 x 4096 x 128 x 2 = 8,388,608 bytes of keys and the
 * rolling cache holds 32 x 2 x 4096 x 8 x 128 x 2 = 536,870,912 bytes; at
 * S=2048 (inside the window) everything is attended. Prefill at S=8192
 * keeps the full 8192 x 8192 rectangle (eager masks, saves nothing). */
static void test_lmrun_mistral_sliding_window(void **state) {
  (void)state;
  json_t *doc = run_json("models/mistral-7b-v0.1.json -S 8192");
  json_t *dec = phase(doc, "decode"), *pre = phase(doc, "prefill");
  assert_double_exact(json_number_value(json_object_get(op_named(dec, "qk_matmul"), "kv_read_bytes")),
                      8388608);
  json_t *mem = json_object_get(json_object_get(doc, "summary"), "memory");
  assert_double_exact(json_number_value(json_object_get(mem, "kv_cache_bytes")), 536870912);
  assert_double_exact(json_number_value(json_object_get(op_named(pre, "qk_matmul"), "act_write_bytes")),
                      1.0 * 32 * 8192 * 8192 * 2);
  assert_string_equal(json_string_value(json_object_get(op_named(pre, "qk_matmul"), "module")),
                      "transformers.models.mistral.modeling_mistral.MistralAttention");
  json_decref(doc);
  doc = run_json("models/mistral-7b-v0.1.json -S 2048");
  dec = phase(doc, "decode");
  assert_double_exact(json_number_value(json_object_get(op_named(dec, "qk_matmul"), "kv_read_bytes")),
                      1.0 * 8 * 2048 * 128 * 2);
  json_decref(doc);
}

/* The summary is made of the phase totals and the footprint. */
static void test_lmrun_summary_consistent(void **state) {
  (void)state;
  const char *models[] = {"models/llama-2-7b-hf.json", "models/llama-2-13b-hf.json",
                          "models/llama-2-70b-hf.json", "models/meta-llama-3-8b.json",
                          "models/mistral-7b-v0.1.json"};
  for (size_t i = 0; i < LM_ARRAY_LEN(models); i++) {
    char args[256];
    snprintf(args, sizeof(args), "%s -B 8 -S 512 --attention flash --hardware h200", models[i]);
    json_t *doc = run_json(args);
    json_t *sum = json_object_get(doc, "summary");
    double ttft = json_number_value(json_object_get(sum, "ttft_s"));
    double tpot = json_number_value(json_object_get(sum, "tpot_s"));
    assert_double_exact(ttft, json_number_value(json_object_get(
                                  json_object_get(phase(doc, "prefill"), "totals"), "time_s")));
    assert_double_exact(tpot, json_number_value(json_object_get(
                                  json_object_get(phase(doc, "decode"), "totals"), "time_s")));
    assert_double_exact(json_number_value(json_object_get(sum, "tokens_per_s")), 8 / tpot);
    json_t *mem = json_object_get(sum, "memory");
    double total = json_number_value(json_object_get(mem, "total_bytes"));
    assert_double_exact(total, json_number_value(json_object_get(mem, "weight_bytes")) +
                                   json_number_value(json_object_get(mem, "kv_cache_bytes")) +
                                   json_number_value(json_object_get(mem, "activation_bytes")));
    assert_double_exact(json_number_value(json_object_get(mem, "capacity_bytes")),
                        141.0 * 1073741824);
    assert_true(json_is_true(json_object_get(mem, "fits")) ==
                (total <= 141.0 * 1073741824));
    /* flash replaces the three eager kernels */
    json_t *ops = json_object_get(phase(doc, "prefill"), "ops");
    size_t k;
    json_t *o;
    bool flash = false;
    json_array_foreach(ops, k, o) {
      const char *op = json_string_value(json_object_get(o, "op"));
      assert_true(strcmp(op, "qk_matmul") && strcmp(op, "softmax") && strcmp(op, "sv_matmul"));
      flash = flash || strcmp(op, "flash_attention") == 0;
    }
    assert_true(flash);
    json_decref(doc);
  }
}

/* The calibrated default (issue 12): vLLM's kernels on the A100's
 * calibration (calibration/a100-sxm-80gb.json: gemm launch 3.892 us,
 * compute_eff 0.8166, memory_eff 0.7815, overlap 0.1388; norm launch 4.218
 * us, memory_eff 0.4026; a computing kernel takes max(tc, tm) + overlap x
 * min(tc, tm)) and engines/<id>.json's launch_gap (NVIDIA's CUDA Graphs blog:
 * 0.9 us between kernels of a stream, 0.5 us in a CUDA graph): vLLM 0.9 us
 * in prefill and 0.5 us in decode (graphs), TensorRT-LLM and transformers
 * 0.9 us in both, added to every launch. */
static json_t *run_json_cal(const char *args) {
  char *out = NULL;
  int rc = tu_run(&out, "%s %s --format json 2>/dev/null", tu_bin("lmrun"), args);
  if (rc != 0)
    print_error("lmrun %s: rc %d\n%s\n", args, rc, out);
  assert_int_equal(rc, 0);
  json_t *j = json_loads(out, 0, NULL);
  assert_non_null(j);
  free(out);
  return j;
}

static json_t *phase_ops(json_t *doc, int i) {
  return json_object_get(json_array_get(json_object_get(doc, "phases"), (size_t)i), "ops");
}

static double num(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  if (!json_is_number(v))
    fail_msg("no number '%s'", k);
  return json_number_value(v);
}

/* An engine's host time per step (engines/<id>.json "step", DESIGN.md
 * section 12.4): a copy of the install whose trtllm.json gives prefill_us
 * 3000, decode_us 1000 and per_seq_us 100. By hand, at -B 4: the first
 * token waits 3000 + 4 x 100 = 3400 us more than with the shipped file
 * (step 0), each decode step 1000 + 4 x 100 = 1400 us more, and -O 20 (the
 * prefill and 19 decode steps) 3400 + 19 x 1400 = 30,000 us more. The
 * kernels' rows and --roofline do not move. */
static json_t *run_json_home(const char *home, const char *args) {
  char *out = NULL;
  int rc = tu_run(&out, "LM_PREDICTOR_HOME=%s %s %s --format json 2>/dev/null",
                  home, tu_bin("lmrun"), args);
  if (rc != 0)
    print_error("lmrun %s: rc %d\n%s\n", args, rc, out);
  assert_int_equal(rc, 0);
  json_t *j = json_loads(out, 0, NULL);
  assert_non_null(j);
  free(out);
  return j;
}

static void test_lmrun_engine_step(void **state) {
  (void)state;
  char *dir = tu_tmpdir(), *out = NULL, *cwd = getcwd(NULL, 0);
  char *home = path_join(dir, "home");
  assert_int_equal(
      tu_run(&out,
             "mkdir -p %s/engines && for f in module_db.json hardware.json "
             "parallel.json models calibration generated_modules; do ln -s "
             "%s/$f %s/$f || exit 1; done && cp engines/*.json %s/engines/ && "
             "sed -i -e 's/\"prefill_us\": 0,/\"prefill_us\": 3000,/' -e "
             "'s/\"decode_us\": 0,/\"decode_us\": 1000,/' -e "
             "'s/\"per_seq_us\": 0,/\"per_seq_us\": 100,/' "
             "%s/engines/trtllm.json && grep -c '\"per_seq_us\": 100,' "
             "%s/engines/trtllm.json",
             home, cwd, home, home, home, home),
      0);
  assert_contains(out, "1\n"); /* the step object was edited */
  free(out);
  const char *args = "models/llama-2-7b-hf.json --hardware a100-sxm-80gb "
                     "--engine trtllm -B 4 -S 128 -O 20";
  const char *home0 = getenv("LM_PREDICTOR_HOME");
  json_t *a = run_json_home(home0 && *home0 ? home0 : cwd, args);
  json_t *b = run_json_home(home, args);
  json_t *sa = json_object_get(a, "summary"), *sb = json_object_get(b, "summary");
  assert_double_near(num(sb, "ttft_s") - num(sa, "ttft_s"), 3400e-6, 1e-12);
  assert_double_near(num(sb, "tpot_s") - num(sa, "tpot_s"), 1400e-6, 1e-12);
  assert_double_near(num(sb, "e2e_latency_s") - num(sa, "e2e_latency_s"),
                     30000e-6, 1e-11);
  /* the rows are the kernels' times: unchanged */
  json_t *qa = tu_json_find(phase_ops(a, 1), "op", "q_proj");
  json_t *qb = tu_json_find(phase_ops(b, 1), "op", "q_proj");
  assert_double_exact(num(qb, "time_s"), num(qa, "time_s"));
  json_decref(a);
  json_decref(b);
  /* --roofline: the bound, no host time */
  a = run_json_home(home0 && *home0 ? home0 : cwd,
                    "models/llama-2-7b-hf.json --hardware a100-sxm-80gb "
                    "-B 4 -S 128 --roofline");
  b = run_json_home(home, "models/llama-2-7b-hf.json --hardware a100-sxm-80gb "
                          "-B 4 -S 128 --roofline");
  assert_double_exact(num(json_object_get(b, "summary"), "ttft_s"),
                      num(json_object_get(a, "summary"), "ttft_s"));
  assert_double_exact(num(json_object_get(b, "summary"), "tpot_s"),
                      num(json_object_get(a, "summary"), "tpot_s"));
  json_decref(a);
  json_decref(b);
  tu_rm_rf(dir);
  free(home);
  free(dir);
  free(cwd);
}

static void test_lmrun_calibrated(void **state) {
  (void)state;
  json_t *doc = run_json_cal("models/llama-2-7b-hf.json --hardware a100-sxm-80gb");
  json_t *roof = run_json("models/llama-2-7b-hf.json --hardware a100-sxm-80gb --attention flash");
  assert_string_equal(json_string_value(json_object_get(doc, "attention")), "flash");
  json_t *sum = json_object_get(doc, "summary");
  json_t *rsum = json_object_get(roof, "summary");
  /* the bounds are the roofline output's, to the bit */
  assert_double_exact(num(sum, "ttft_roofline_s"), num(rsum, "ttft_s"));
  assert_double_exact(num(sum, "tpot_roofline_s"), num(rsum, "tpot_s"));
  assert_true(num(sum, "ttft_s") > num(sum, "ttft_roofline_s"));
  assert_true(num(sum, "tpot_s") > num(sum, "tpot_roofline_s"));
  assert_string_equal(json_string_value(json_object_get(sum, "engine")), "vllm");
  json_t *cal = json_object_get(sum, "calibration");
  assert_string_equal(json_string_value(json_object_get(cal, "measured_on")),
                      "a100-sxm-80gb");
  assert_true(json_is_false(json_object_get(cal, "fallback")));
  for (int ph = 0; ph < 2; ph++) {
    json_t *ops = phase_ops(doc, ph), *rops = phase_ops(roof, ph), *o;
    size_t i;
    double total = 0;
    json_array_foreach(ops, i, o) {
      json_t *r = json_array_get(rops, i);
      /* roofline_time_s is the --roofline time_s of the same row */
      assert_double_exact(num(o, "roofline_time_s"), num(r, "time_s"));
      assert_true(num(o, "time_s") > 0);
      total += num(o, "count") * num(o, "time_s");
    }
    json_t *tot = json_object_get(json_array_get(json_object_get(doc, "phases"),
                                                 (size_t)ph), "totals");
    assert_double_near(total, num(tot, "time_s"), 1e-12);
    assert_double_near(total, num(sum, ph ? "tpot_s" : "ttft_s"), 1e-12);
  }
  /* vLLM's fused kernels */
  json_t *q = tu_json_find(phase_ops(doc, 1), "op", "q_proj");
  assert_string_equal(json_string_value(json_object_get(q, "kernel")), "qkv_proj");
  json_t *act = tu_json_find(phase_ops(doc, 1), "op", "act_fn");
  assert_string_equal(json_string_value(json_object_get(act, "kernel")), "silu_and_mul");
  /* By hand: decode lm_head runs alone, m = 1, k = 4096, n = 32000;
   * bytes = 4096*32000*2 + 4096*2 + 32000*2 = 262,216,192; 250 tiles
   * (3 waves on 108 SMs, busy 250/324): compute tc = 2*4096*32000 / (312e12
   * * 0.8166 * 250/324) = 1.333 us < memory tm = 262,216,192 / (2039e9 *
   * 0.7815) = 164.556 us; time = 3.892 us + gap 0.5 us + 164.556 us +
   * 0.1388 * 1.333 us = 169.13 us. */
  /* By hand: the fused kernels' rows share the kernel's time.
   * qkv_proj (decode): one GEMM, m = 1, k = 4096, n = 3 * 4096; bytes =
   * three weights 3 * 33,554,432 + the input once 8192 + q, k, v written
   * 3 * 8192 = 100,696,064; 96 tiles (split min(1, 4) = 1), one wave:
   * compute tc = 100,663,296 / (312e12 * 0.8166 * 96/108) = 0.444 us <
   * memory tm = 100,696,064 / (2039e9 * 0.7815) = 63.193 us: 3.892 + 0.5 +
   * 63.193 + 0.1388 * 0.444 = 67.646 us.
   * silu_and_mul (act: launch 10.29 us, memory_eff 0.5478): act_fn reads
   * and writes 22,016 B, gate_up_mul reads 44,032 and writes 22,016; fused,
   * SiLU(gate) is neither written nor read back: 110,080 - 2 * 22,016 =
   * 66,048 B. */
  double qkv = 0, smul = 0;
  const char *qkv_ops[] = {"q_proj", "k_proj", "v_proj"};
  for (int i = 0; i < 3; i++)
    qkv += num(tu_json_find(phase_ops(doc, 1), "op", qkv_ops[i]), "time_s");
  assert_double_near(qkv,
                     3.892e-6 + 0.5e-6 + 100696064 / (2039e9 * 0.7815) +
                         0.1388 * 100663296 / (312e12 * 0.8166 * (96.0 / 108)),
                     1e-9);
  assert_double_near(qkv, 67.646e-6, 1e-3);
  smul = num(act, "time_s") +
         num(tu_json_find(phase_ops(doc, 1), "op", "gate_up_mul"), "time_s");
  assert_double_near(smul, 10.29e-6 + 0.5e-6 + 66048 / (2039e9 * 0.5478), 1e-9);
  /* By hand: prefill flash attention, B = 1, T = L = 2048, 32 heads of
   * 128 (MHA). Metrics: flops 4*32*2048*2048*128 + 5*32*2048*2048 =
   * 69,390,565,376; Q read 16,777,216; O + log-sum-exp written 16,777,216
   * + 262,144; K and V read once per 128-row query tile: 16 * 33,554,432.
   * vLLM's causal skipping: (2048 + 128) / 2 of 2048 keys on average, 17/32
   * of the FLOPs: 36,863,737,856. L2: 16 tiles per head, ceil(108/16) = 7
   * heads in flight, their K and V 7 * 1 MiB <= 40 MiB: K and V from HBM
   * once, 33,554,432. Bytes 67,371,008. With the attention constants (the
   * GEMM's: 3.892 us, 0.8166, 0.7815, overlap 0.1388) and the A100's
   * softmax units (hardware.json: 2.43648e12 exp2/s, 19.5 TFLOPS FP32):
   * E = 36,863,737,856 / 517 = 71,303,168 score elements; compute tc =
   * 512 E / (312e12 * 0.8166) + E / 2.43648e12 + 4 E / 9.75e12 = 143.290
   * + 29.265 + 29.253 = 201.807 us > memory tm = 67,371,008 / (2039e9 *
   * 0.7815) = 42.279 us; time 3.892 + gap 0.9 (prefill) + 201.807 + 0.1388
   * * 42.279 = 212.467 us. */
  json_t *fa = tu_json_find(phase_ops(doc, 0), "op", "flash_attention");
  double e = 69390565376.0 * 17 / 32 / 517;
  assert_double_near(num(fa, "time_s"),
                     3.892e-6 + 0.9e-6 + 512 * e / (312e12 * 0.8166) +
                         e / 2.43648e12 + 4 * e / (19.5e12 / 2) +
                         0.1388 * 67371008 / (2039e9 * 0.7815),
                     1e-9);
  assert_double_near(num(fa, "time_s"), 212.467e-6, 1e-5);
  json_t *lm = tu_json_find(phase_ops(doc, 1), "op", "lm_head");
  assert_double_near(num(lm, "time_s"),
                     3.892e-6 + 0.5e-6 + 262216192 / (2039e9 * 0.7815) +
                         0.1388 * 262144000 / (312e12 * 0.8166 * (250.0 / 324)),
                     1e-9);
  assert_double_near(num(lm, "time_s"), 169.13e-6, 1e-3);
  json_decref(doc);
  json_decref(roof);

  /* hf-eager: eager attention; RMSNorm is 8 kernels moving 9x the fused
   * bytes. Prefill (S = 2048) input_layernorm: bytes = 2 * 2048 * 4096 * 2
   * + 4096 * 2 (x, y, gamma) = 33,562,624; time = 8 * (4.218 us + gap 0.9
   * us) + 9 * 33,562,624 / (2039e9 * 0.4026) = 40.944 us + 367.97 us. The
   * prefill's kernels (240 ms) outlast the host's launches (below): not
   * host-bound. */
  doc = run_json_cal("models/llama-2-7b-hf.json --hardware a100-sxm-80gb --engine hf-eager");
  assert_string_equal(json_string_value(json_object_get(doc, "attention")), "eager");
  json_t *n = tu_json_find(phase_ops(doc, 0), "op", "input_layernorm");
  assert_double_near(num(n, "time_s"),
                     8 * (4.218e-6 + 0.9e-6) + 9 * 33562624 / (2039e9 * 0.4026), 1e-9);
  assert_double_near(num(n, "time_s"), 408.91e-6, 1e-3);
  assert_string_equal(json_string_value(json_object_get(n, "kernel")), "input_layernorm");
  /* Decode is host-bound (engines/hf-eager.json host.launch_us = 23 us per
   * launch, from PyTorch's gpt-fast eager baseline): launches per layer =
   * input_layernorm 8 + q, k, v 3 + rope 10 + qk_matmul 1 + softmax 4 +
   * sv_matmul 2 + o_proj 1 + attn_add 1 + post_attention_layernorm 8 +
   * gate, up, act_fn, gate_up_mul, down 5 + mlp_add 1 = 44; 32 layers =
   * 1408, + embed_tokens 1 + rotary_emb 1 + norm 8 + lm_head 1 = 1419;
   * TPOT = 1419 * 23 us = 32.637 ms (the kernels alone take 16.9 ms). */
  assert_double_near(num(json_object_get(doc, "summary"), "tpot_s"), 1419 * 23e-6, 1e-12);
  {
    /* every row waits in proportion: the rows still sum to the phase */
    json_t *o;
    size_t i;
    double total = 0;
    json_array_foreach(phase_ops(doc, 1), i, o) total += num(o, "count") * num(o, "time_s");
    assert_double_near(total, 1419 * 23e-6, 1e-12);
  }
  tu_json_find(phase_ops(doc, 0), "op", "qk_matmul");
  double eager_ttft = num(json_object_get(doc, "summary"), "ttft_s");
  json_decref(doc);
  doc = run_json_cal("models/llama-2-7b-hf.json --hardware a100-sxm-80gb --engine trtllm");
  assert_true(num(json_object_get(doc, "summary"), "ttft_s") < eager_ttft);
  json_decref(doc);

  /* 8-bit GEMMs: no calibration measured one, so the engine's gemm_8bit
   * (1.25x the 16-bit speed, NVIDIA's cuBLAS 12.9 figure) caps the peak at
   * 1.25 * 312e12 = 390e12 instead of the INT8 peak 624e12. Prefill
   * o_proj, W8A8, S = 4096: m = 4096, k = n = 4096; flops = 2 * 4096^3 =
   * 137,438,953,472; 32 * 32 = 1024 tiles, ceil(1024/108) = 10 waves,
   * busy 1024/1080; compute tc = 137,438,953,472 / (390e12 * 0.8166 *
   * 1024/1080) = 455.155 us; bytes (weight, input and output of one byte
   * each) 3 * 16,777,216 = 50,331,648: memory tm = 50,331,648 / (2039e9 *
   * 0.7815) = 31.586 us; time 3.892 us + gap 0.9 us + 455.155 us + 0.1388 *
   * 31.586 us = 464.33 us (the 8-bit peak would give 293.6 us). */
  doc = run_json_cal("models/llama-2-7b-hf.json --hardware a100-sxm-80gb --engine trtllm "
                     "-S 4096 --w-bits 8 --a-bits 8");
  json_t *o8 = tu_json_find(phase_ops(doc, 0), "op", "o_proj");
  assert_double_near(num(o8, "time_s"),
                     3.892e-6 + 0.9e-6 +
                         137438953472.0 / (390e12 * 0.8166 * (1024.0 / 1080)) +
                         0.1388 * 50331648 / (2039e9 * 0.7815),
                     1e-9);
  assert_double_near(num(o8, "time_s"), 464.33e-6, 1e-3);
  json_decref(doc);
  /* and says the 8-bit times are less certain (not with --roofline) */
  char *w8 = NULL;
  assert_int_equal(tu_run(&w8, "%s %s --hardware a100-sxm-80gb --engine trtllm --w-bits 8 "
                               "--a-bits 8 --format csv", tu_bin("lmrun"), MODEL), 0);
  assert_contains(w8, "lmrun: warning: no 8-bit kernel times were measured: 8-bit GEMMs run "
                      "at 1.25x the 16-bit speed (TensorRT-LLM's published figure");
  free(w8);
  /* on a GPU of gemm_8bit.by_gpu: the speedup measured there (H100:
   * 1.34, AIConfigurator's TensorRT-LLM tables) */
  assert_int_equal(tu_run(&w8, "%s %s --hardware h100-sxm --engine trtllm --w-bits 8 "
                               "--a-bits 8 --format csv", tu_bin("lmrun"), MODEL), 0);
  assert_contains(w8, "8-bit GEMMs run at 1.34x the 16-bit speed (TensorRT-LLM's FP8 GEMMs "
                      "measured on this GPU");
  free(w8);
  assert_int_equal(tu_run(&w8, "%s %s --w-bits 8 --a-bits 8 --roofline --format csv",
                          tu_bin("lmrun"), MODEL), 0);
  assert_null(strstr(w8, "8-bit kernel times"));
  free(w8);

  /* a GPU without measurements borrows its sibling's, and says so */
  char *out = NULL;
  assert_int_equal(tu_run(&out, "%s %s --hardware h200 --format json", tu_bin("lmrun"), MODEL), 0);
  assert_contains(out, "lmrun: warning: h200 has no measured kernel times: its "
                       "times use the h100-sxm calibration");
  assert_contains(out, "less certain");
  assert_contains(out, "\"fallback\": true");
  free(out);
  assert_int_equal(tu_run(&out, "%s %s --hardware h200", tu_bin("lmrun"), MODEL), 0);
  assert_contains(out, "(borrowed: LESS CERTAIN)");
  assert_contains(out, " bound        time  roofline\n");
  assert_contains(out, "time to first token (prefill of 1 x 2048 tokens): ");
  assert_contains(out, " (roofline ");
  free(out);
  assert_int_equal(tu_run(&out, "%s %s --format csv", tu_bin("lmrun"), MODEL), 0);
  assert_contains(out, ",bound,peak,time_s,roofline_time_s,kernel\n");
  assert_contains(out, ",qkv_proj\n");
  free(out);
  assert_int_equal(tu_run(&out, "%s %s --engine sglang", tu_bin("lmrun"), MODEL), 1);
  assert_contains(out, "no serving engine 'sglang'");
  free(out);
  assert_int_equal(tu_run(&out, "%s %s --engine ../x", tu_bin("lmrun"), MODEL), 2);
  assert_contains(out, "--engine is an engine id");
  free(out);
}

static void test_lmrun_formats(void **state) {
  (void)state;
  char *out = NULL;
  assert_int_equal(tu_run(&out, "%s %s -B 1 -S 2048 --roofline", tu_bin("lmrun"), MODEL), 0);
  assert_contains(out, "meta-llama/Llama-2-7b-hf  batch 1, sequence 2048");
  assert_contains(out, "prefill: 2048 tokens per sequence, KV length 2048");
  /* the qk_matmul line: count 32, 34.4 GFLOPs, 268 MB of scores written */
  const char *line = strstr(out, "\nmodel.layers.self_attn.qk_matmul ");
  assert_non_null(line);
  char buf[256];
  snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(line + 1, "\n"), line + 1);
  char path[64], count[16], flops[16], unit[4];
  assert_int_equal(sscanf(buf, "%63s %15s %15s %3s", path, count, flops, unit), 4);
  assert_string_equal(count, "32");
  assert_string_equal(flops, "34.4");
  assert_string_equal(unit, "G");
  assert_contains(buf, " 268 MB ");
  assert_contains(out, "\ntotal ");
  assert_contains(out, "time to first token (prefill of 1 x 2048 tokens): ");
  assert_contains(out, "largest batch at sequence 2048 (the whole batch prefilled at once): ");
  free(out);
  assert_int_equal(tu_run(&out, "%s --list-hardware", tu_bin("lmrun")), 0);
  assert_contains(out, "a100-sxm-40gb");
  assert_contains(out, "v100-sxm");
  free(out);
  assert_int_equal(tu_run(&out, "%s %s --format csv --roofline", tu_bin("lmrun"), MODEL), 0);
  assert_true(strncmp(out, "phase,path,op,module,count,flops,", 33) == 0);
  const char *q = "\nprefill,model.layers.self_attn.q_proj,q_proj,"
                  "torch.nn.modules.linear.Linear,32,68719476736,"
                  "33554432,16777216,16777216,0,0,67108864,1024,compute,FP16/BF16,";
  const char *at = strstr(out, q);
  assert_non_null(at);
  /* compute bound on the default h100-sxm: 2*2048*4096*4096 / 989.4e12 s */
  assert_double_exact(strtod(at + strlen(q), NULL), 68719476736.0 / 989.4e12);
  int lines = 0;
  for (char *p = out; *p; p++)
    lines += *p == '\n';
  assert_int_equal(lines, 1 + 2 * 21); /* header, prefill and decode rows */
  free(out);
}

static void test_lmrun_bad_input(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *bad_json = path_join(dir, "bad.json");
  tu_write(bad_json, "{\"model\": \"x\",\n \"config\": {}\n \"class\": 1}\n");
  char *unknown = path_join(dir, "unknown.json");
  char *m = tu_read(MODEL);
  char *u = tu_replace(m, "\"torch.nn.modules.activation.SiLU\"",
                       "\"transformers.activations.LaplaceActivation\"");
  tu_write(unknown, u);
  struct {
    const char *args, *msg;
    int rc;
  } cases[] = {
      {"%s -B 0", "-B must be at least 1", 2},
      {"%s -S 0", "-S must be at least 1", 2},
      {"%s -B abc", "-B expects a whole number, not 'abc'", 2},
      {"%s -B 1.5", "-B expects a whole number, not '1.5'", 2},
      {"%s -B -1", "-B expects a whole number, not '-1'", 2},
      {"%s -B 99999999999999999999999", "is too large (at most 1048576)", 2},
      {"%s -S 16777217", "-S 16777217 is too large (at most 16777216)", 2},
      {"%s --bogus", "usage: lmrun", 2},
      {"%s --format xml", "--format is table, json, csv, markdown or html, not 'xml'", 2},
      {"%s --w-bits 3", "--w-bits is 16, 8 or 4, not '3'", 2},
      {"%s --kv-bits 32", "--kv-bits is 16, 8 or 4, not '32'", 2},
      {"%s --attention sdpa", "--attention is eager or flash, not 'sdpa'", 2},
      {"%s --phase both", "--phase is prefill, decode or all, not 'both'", 2},
      {"%s --embed-bits 2", "--embed-bits is 16, 8 or 4, not '2'", 2},
      {"%s --8bit-format fp4", "--8bit-format is int8 or fp8, not 'fp4'", 2},
      {"%s --8bit-format fp8 --hardware a100-sxm-40gb",
       "error: a100-sxm-40gb has no FP8 peak in the hardware database", 1},
      {"%s --hardware h100", "hardware.json: error: no GPU 'h100' (known: a100-sxm-40gb,", 1},
      {"", "no model file given", 2},
      {"%s %s", "give exactly one model file", 2},
      {"/nonexistent/model.json", "/nonexistent/model.json: error: cannot open", 1},
      {"BAD", "bad.json:3:2: error: invalid JSON: '}' expected near '\"class\"'", 1},
      {"UNKNOWN",
       "error: layer 'model.layers.mlp.act_fn': class "
       "'transformers.activations.LaplaceActivation' is not in the module "
       "database; analyse it with `lmgen "
       "transformers.activations.LaplaceActivation`",
       1},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char args[1024];
    if (strcmp(cases[i].args, "BAD") == 0)
      snprintf(args, sizeof(args), "%s", bad_json);
    else if (strcmp(cases[i].args, "UNKNOWN") == 0)
      snprintf(args, sizeof(args), "%s", unknown);
    else
      snprintf(args, sizeof(args), cases[i].args, MODEL, MODEL);
    char *out = NULL;
    int rc = tu_run(&out, "%s %s", tu_bin("lmrun"), args);
    if (rc != cases[i].rc || !strstr(out, cases[i].msg))
      print_error("case %zu (%s): rc %d\n%s\n", i, args, rc, out);
    assert_int_equal(rc, cases[i].rc);
    assert_contains(out, cases[i].msg);
    free(out);
  }
  /* a stale generated file stops lmrun with the fix named */
  char *mods = path_join(dir, "mods");
  char *out = NULL;
  tu_run(&out, "mkdir %s && cp generated_modules/*.c %s/", mods, mods);
  free(out);
  char *silu = path_join(mods, "torch_silu.c");
  char *s = tu_read(silu);
  char *t = tu_replace(s, "fingerprint: ", "fingerprint: 0");
  tu_write(silu, t);
  assert_int_equal(tu_run(&out, "%s %s --modules %s", tu_bin("lmrun"), MODEL, mods), 1);
  assert_contains(out, "torch_silu.c: error: stale: fingerprint");
  assert_contains(out, "run `make generate`");
  free(out);
  tu_rm_rf(dir);
  free(dir);
  free(bad_json);
  free(unknown);
  free(m);
  free(u);
  free(mods);
  free(silu);
  free(s);
  free(t);
}


/* -O: the serving keys appear (and only then); e2e = TTFT + the decode
 * steps' sum, which for -O 2 is one step at KV length S + 1, i.e. the TPOT
 * of a run at -S S+1. */
static void test_lmrun_output_len(void **state) {
  (void)state;
  json_t *a = run_json("models/llama-2-7b-hf.json -B 2 -S 100 -O 2");
  json_t *b = run_json("models/llama-2-7b-hf.json -B 2 -S 101");
  json_t *c = run_json("models/llama-2-7b-hf.json -B 2 -S 100");
  json_t *sa = json_object_get(a, "summary"), *sb = json_object_get(b, "summary");
  assert_double_exact(json_number_value(json_object_get(sa, "output_len")), 2);
  assert_double_exact(json_number_value(json_object_get(sa, "tpot_mean_s")),
                      json_number_value(json_object_get(sb, "tpot_s")));
  assert_double_exact(json_number_value(json_object_get(sa, "e2e_latency_s")),
                      json_number_value(json_object_get(sa, "ttft_s")) +
                          json_number_value(json_object_get(sb, "tpot_s")));
  assert_null(json_object_get(json_object_get(c, "summary"), "e2e_latency_s"));
  json_decref(a);
  json_decref(b);
  json_decref(c);
}

/* --tp 2: the collectives are rows after the operations they follow, and
 * the phase's total time is the rows' plus count x each collective's. */
static void test_lmrun_tensor_parallel_rows(void **state) {
  (void)state;
  json_t *d = run_json("models/llama-2-7b-hf.json -B 4 -S 256 --tp 2");
  json_t *ops = json_object_get(phase(d, "decode"), "ops");
  double rows = 0, comm = 0;
  size_t i;
  json_t *o;
  int after_o = 0;
  json_array_foreach(ops, i, o) {
    const char *op = json_string_value(json_object_get(o, "op"));
    double n = json_number_value(json_object_get(o, "count"));
    double t = json_number_value(json_object_get(o, "time_s"));
    if (json_object_get(o, "comm_bytes")) {
      comm += n * t;
      if (strcmp(op, "all_reduce") == 0 && i > 0 &&
          strcmp(json_string_value(json_object_get(json_array_get(ops, i - 1),
                                                   "op")),
                 "o_proj") == 0) {
        after_o = 1;
        /* B T hidden a_bytes = 4 x 1 x 4096 x 2 */
        assert_double_exact(json_number_value(json_object_get(o, "comm_bytes")),
                            4 * 4096 * 2);
        assert_double_exact(n, 32);
      }
    } else {
      rows += n * t;
    }
  }
  assert_true(after_o);
  double total = json_number_value(json_object_get(
      json_object_get(phase(d, "decode"), "totals"), "time_s"));
  assert_double_near(total, rows + comm, 1e-12);
  assert_double_exact(
      json_number_value(json_object_get(json_object_get(d, "summary"), "gpus")), 2);
  json_decref(d);
}

/* --ep 2 on a config.json (test/data/tiny_mixtral: hidden 8, 4 experts,
 * top-2, 2 layers): all-to-all dispatch after the router and combine after
 * the experts, bytes B/ep T k hidden a_bytes = 1 x 4 x 2 x 8 x 2 = 128 in
 * prefill (-B 2 -S 4); 2 GPUs; -B 3 is refused with the reason. */
static void test_lmrun_expert_parallel_rows(void **state) {
  (void)state;
  json_t *d = run_json("test/data/tiny_mixtral/config.json -B 2 -S 4 --ep 2");
  json_t *ops = json_object_get(phase(d, "prefill"), "ops");
  int n = 0;
  size_t i;
  json_t *o;
  json_array_foreach(ops, i, o) {
    const char *op = json_string_value(json_object_get(o, "op"));
    if (strcmp(op, "all_to_all") == 0) {
      n++;
      assert_double_exact(json_number_value(json_object_get(o, "comm_bytes")),
                          128);
      assert_double_exact(json_number_value(json_object_get(o, "count")), 2);
    }
  }
  assert_int_equal(n, 2);
  assert_double_exact(
      json_number_value(json_object_get(json_object_get(d, "summary"), "gpus")), 2);
  json_decref(d);
  char *out = NULL;
  assert_int_not_equal(tu_run(&out, "%s test/data/tiny_mixtral/config.json "
                                    "-B 3 --ep 2 2>&1",
                              tu_bin("lmrun")),
                       0);
  assert_contains(out, "does not divide -B 3");
  free(out);
  /* --tp on a config of a family without a model file: Qwen3 */
  d = run_json("test/data/configs/qwen3-8b.json -B 1 -S 16 --tp 4");
  assert_non_null(op_named(phase(d, "decode"), "all_reduce"));
  json_decref(d);
}

/* A sweep: one row per configuration (CSV), each equal to the single run;
 * JSON lines; an SLO document; errors. */
static void test_lmrun_sweep(void **state) {
  (void)state;
  char *out = NULL;
  assert_int_equal(tu_run(&out, "%s %s -B 1,3 -S 64..256x2 --roofline "
                                "--format csv 2>/dev/null",
                          tu_bin("lmrun"), MODEL),
                   0);
  int lines = 0;
  for (const char *p = out; (p = strchr(p, '\n')); p++)
    lines++;
  assert_int_equal(lines, 1 + 2 * 3);
  /* the row of B 3, S 128 against lmrun -B 3 -S 128 */
  json_t *one = run_json("models/llama-2-7b-hf.json -B 3 -S 128");
  char want[256], n[64];
  report_number_for_test(json_number_value(json_object_get(
                             json_object_get(one, "summary"), "ttft_s")),
                         n, sizeof(n));
  snprintf(want, sizeof(want), ",3,128,0,1,1,1,1,16,16,16,%s,", n);
  assert_contains(out, want);
  json_decref(one);
  free(out);
  /* JSON lines: every line one object */
  assert_int_equal(tu_run(&out, "%s %s -B 1..4 --format json 2>/dev/null",
                          tu_bin("lmrun"), MODEL),
                   0);
  int objs = 0;
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    assert_double_exact(json_number_value(json_object_get(j, "batch_size")),
                        ++objs);
    json_decref(j);
  }
  assert_int_equal(objs, 4);
  free(out);
  /* the best under an SLO, as one JSON document */
  assert_int_equal(tu_run(&out, "%s %s -B 1..64x2 -S 1024 -O 16 --tp 1,2 "
                                "--slo tpot=5ms --maximize throughput-per-gpu "
                                "--format json 2>/dev/null",
                          tu_bin("lmrun"), MODEL),
                   0);
  json_t *j = json_loads(out, 0, NULL);
  assert_non_null(j);
  assert_double_exact(json_number_value(json_object_get(j, "configurations")), 14);
  json_t *best = json_object_get(j, "best");
  assert_non_null(json_object_get(best, "summary"));
  assert_true(json_number_value(json_object_get(
                  json_object_get(best, "summary"), "tpot_mean_s")) <= 0.005);
  json_decref(j);
  free(out);
  /* errors: a bad list, --maximize alone */
  assert_int_equal(tu_run(&out, "%s %s -B 4..1", tu_bin("lmrun"), MODEL), 1);
  assert_contains(out, "range '4..1' is empty");
  free(out);
  assert_int_equal(tu_run(&out, "%s %s --maximize throughput", tu_bin("lmrun"),
                          MODEL),
                   2);
  assert_contains(out, "--maximize needs --slo");
  free(out);
  assert_int_equal(tu_run(&out, "%s %s -B 1,2 --slo ttft=fast", tu_bin("lmrun"),
                          MODEL),
                   1);
  assert_contains(out, "--slo: 'ttft=fast' is not a target");
  free(out);
}

/* Non-regular input files are refused at once, clearly (issue 9: lmrun
 * /dev/zero grew without bound). */
static void test_lmrun_non_regular_inputs(void **state) {
  (void)state;
  char *out = NULL;
  assert_int_equal(tu_run(&out, "%s /dev/zero", tu_bin("lmrun")), 1);
  assert_contains(out, "/dev/zero: error: cannot read: a character device, "
                       "not a regular file");
  free(out);
  /* a directory is a snapshot (issue 10): without config.json, refused */
  assert_int_equal(tu_run(&out, "%s models", tu_bin("lmrun")), 1);
  assert_contains(out, "models: error: a directory without config.json");
  free(out);
  assert_int_equal(
      tu_run(&out, "%s --db /dev/zero --check --all", tu_bin("lmgen")), 1);
  assert_contains(out, "not a regular file");
  free(out);
}

/* The caches (DESIGN.md §7.10: compiled code, the GPU table) change no
 * byte of lmrun's output or errors: without a cache, on a miss (compiled, stored), on a
 * hit (loaded), with every cache file damaged (truncated: compiled again)
 * and with a cache that cannot be written, for the model file and configs
 * of three families, both the calibrated table and --roofline JSON. */
static void test_lmrun_jit_cache_same_output(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *file = path_join(dir, "afile");
  tu_write(file, "x");
  const char *inputs[] = {MODEL, "test/data/configs/gemma-3-1b-it.json",
                          "test/data/configs/deepseek-v2-lite-chat.json",
                          "test/data/configs/gpt2.json -B 4 -S 512 --roofline "
                          "--format json"};
  for (size_t i = 0; i < LM_ARRAY_LEN(inputs); i++) {
    char *want = NULL, *got = NULL;
    assert_int_equal(tu_run(&want, "LM_PREDICTOR_CACHE=off %s %s 2>&1",
                            tu_bin("lmrun"), inputs[i]), 0);
    /* a miss, then a hit */
    for (int k = 0; k < 2; k++) {
      assert_int_equal(tu_run(&got, "LM_PREDICTOR_CACHE=%s %s %s 2>&1", dir,
                              tu_bin("lmrun"), inputs[i]), 0);
      assert_string_equal(got, want);
      free(got);
    }
    /* every cache file cut short */
    char *out = NULL;
    tu_run(&out, "for f in %s/jit/*.jit %s/hw/*.gpus; do truncate -s 100 $f; "
                 "done", dir, dir);
    free(out);
    assert_int_equal(tu_run(&got, "LM_PREDICTOR_CACHE=%s %s %s 2>&1", dir,
                            tu_bin("lmrun"), inputs[i]), 0);
    assert_string_equal(got, want);
    free(got);
    /* unwritable: its parent is a file */
    assert_int_equal(tu_run(&got, "LM_PREDICTOR_CACHE=%s/sub %s %s 2>&1",
                            file, tu_bin("lmrun"), inputs[i]), 0);
    assert_string_equal(got, want);
    free(got);
    free(want);
  }
  /* one file per model's set of modules, no temporary file left */
  char *list = tu_list_files(dir);
  int n = 0;
  for (char *p = list; (p = strstr(p, ".jit\n")); p++)
    n++;
  assert_int_equal(n, 4);
  assert_not_contains(list, ".o.");
  free(list);
  /* an error is the same with a cache (here: an edited generated file
   * under a copy of the tree's data) */
  char *out = NULL, *home = path_join(dir, "home");
  tu_run(&out, "mkdir -p %s && cp -r module_db.json hardware.json parallel.json "
               "models calibration engines generated_modules %s/ && sed -i "
               "'s/(2.0 \\* p_N)/(3.0 * p_N)/' %s/generated_modules/torch_linear.c",
         home, home, home);
  free(out);
  char *e1 = NULL, *e2 = NULL;
  assert_int_equal(tu_run(&e1, "LM_PREDICTOR_HOME=%s LM_PREDICTOR_CACHE=off "
                               "%s %s 2>&1", home, tu_bin("lmrun"), MODEL), 1);
  assert_int_equal(tu_run(&e2, "LM_PREDICTOR_HOME=%s LM_PREDICTOR_CACHE=%s "
                               "%s %s 2>&1", home, dir, tu_bin("lmrun"), MODEL), 1);
  assert_contains(e1, "edited by hand");
  assert_string_equal(e1, e2);
  free(e1);
  free(e2);
  /* a hit does not skip the fingerprint check: the file restored (a hit
   * for the same bytes, stored by a run before), a formula changed in the
   * database, and the file is stale with and without the cache */
  tu_run(&out, "cp generated_modules/torch_linear.c %s/generated_modules/ && "
               "LM_PREDICTOR_HOME=%s LM_PREDICTOR_CACHE=%s %s %s >/dev/null && "
               "sed -i 's/\"2 \\* {N} \\* {in_features}/\"3 * {N} * {in_features}/' "
               "%s/module_db.json",
         home, home, dir, tu_bin("lmrun"), MODEL, home);
  free(out);
  assert_int_equal(tu_run(&e1, "LM_PREDICTOR_HOME=%s LM_PREDICTOR_CACHE=off "
                               "%s %s 2>&1", home, tu_bin("lmrun"), MODEL), 1);
  assert_int_equal(tu_run(&e2, "LM_PREDICTOR_HOME=%s LM_PREDICTOR_CACHE=%s "
                               "%s %s 2>&1", home, dir, tu_bin("lmrun"), MODEL), 1);
  assert_contains(e1, "stale: fingerprint");
  assert_string_equal(e1, e2);
  free(e1);
  free(e2);
  /* the GPU table (hw/ in the cache): a broken hardware.json is the same
   * located error with and without the cache, though a good one was
   * cached before */
  tu_run(&out, "cp module_db.json %s/ && LM_PREDICTOR_HOME=%s "
               "LM_PREDICTOR_CACHE=%s %s %s >/dev/null && sed -i "
               "'s/\"hbm_gbps\": 3350/\"hbm_gbps\": 0/' %s/hardware.json",
         home, home, dir, tu_bin("lmrun"), MODEL, home);
  free(out);
  assert_int_equal(tu_run(&e1, "LM_PREDICTOR_HOME=%s LM_PREDICTOR_CACHE=off "
                               "%s %s 2>&1", home, tu_bin("lmrun"), MODEL), 1);
  assert_int_equal(tu_run(&e2, "LM_PREDICTOR_HOME=%s LM_PREDICTOR_CACHE=%s "
                               "%s %s 2>&1", home, dir, tu_bin("lmrun"), MODEL), 1);
  assert_contains(e1, "hbm_gbps must be positive");
  assert_string_equal(e1, e2);
  free(e1);
  free(e2);
  free(home);
  free(file);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lmrun_matches_llm_viewer_prefill),
      cmocka_unit_test(test_lmrun_matches_llm_viewer_decode_and_times),
      cmocka_unit_test(test_lmrun_decode_kv_reads),
      cmocka_unit_test(test_lmrun_gqa_llama2_70b),
      cmocka_unit_test(test_lmrun_quantization),
      cmocka_unit_test(test_lmrun_mistral_sliding_window),
      cmocka_unit_test(test_lmrun_summary_consistent),
      cmocka_unit_test(test_lmrun_flash_70b_h200),
      cmocka_unit_test(test_lmrun_max_batch_7b_a100),
      cmocka_unit_test(test_lmrun_warnings),
      cmocka_unit_test(test_lmrun_totals_sum_rows),
      cmocka_unit_test(test_lmrun_formats),
      cmocka_unit_test(test_lmrun_calibrated),
      cmocka_unit_test(test_lmrun_engine_step),
      cmocka_unit_test(test_lmrun_bad_input),
      cmocka_unit_test(test_lmrun_output_len),
      cmocka_unit_test(test_lmrun_tensor_parallel_rows),
      cmocka_unit_test(test_lmrun_expert_parallel_rows),
      cmocka_unit_test(test_lmrun_sweep),
      cmocka_unit_test(test_lmrun_non_regular_inputs),
      cmocka_unit_test(test_lmrun_jit_cache_same_output),
  };
  return cmocka_run_group_tests_name("lmrun_cli", tests, NULL, NULL);
}
