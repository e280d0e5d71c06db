/* test_explain.c: runtime/explain.c through the library (lmp_explain,
 * lmp_result_tree) and lmrun --explain / --tree.
 *
 * Every expected figure is derived by hand from the formula text in
 * module_db.json and the config of models/llama-2-7b-hf.json (hidden_size
 * 4096, 32 heads of 128, 32 KV heads, 32 layers; the published Hugging
 * Face config.json), with B 1, S 2048, 16-bit everything, on h100-sxm
 * (hardware.json: 989.4 TFLOP/s dense FP16, 3350 GB/s HBM).
 */
#include "testutil.h"
#include "lmpredict.h"

#include <jansson.h>

static const char *MODEL = "models/llama-2-7b-hf.json";
static lmp_data *data;
static lmp_model *llama;

static int group_setup(void **state) {
  (void)state;
  data = lmp_open(NULL, NULL, NULL, NULL);
  llama = data ? lmp_model_load(data, MODEL, NULL) : NULL;
  return llama ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  lmp_model_free(llama);
  lmp_close(data);
  return 0;
}

/* --roofline (eager attention, no engine): the roofline terms alone. */
static char *explain(const lmp_model *m, const char *phase, const char *op,
                     lmp_error *e) {
  lmp_options *o = lmp_options_new();
  assert_int_equal(lmp_options_set(o, "phase", phase, NULL), 0);
  assert_int_equal(lmp_options_set(o, "roofline", "yes", NULL), 0);
  lmp_result *r = lmp_predict(data, m, o, NULL);
  assert_non_null(r);
  char *s = lmp_explain(r, op, e);
  lmp_result_free(r);
  lmp_options_free(o);
  return s;
}

/* A Linear: q_proj in prefill. Linear's formulas:
 *   flops        = 2 * {N} * {in_features} * {out_features} + {bias} * {N} *
 * {out_features} weight_bytes = ({in_features} * {out_features} + {bias} *
 * {out_features}) * {w_bytes} with N = B*T = 2048, in = hidden_size = 4096, out
 * = 32 * 128 = 4096, bias = attention_bias = false = 0, 2-byte weights and
 * activations. */
static void test_explain_linear(void **state) {
  (void)state;
  char *s = explain(llama, "prefill", "q_proj", NULL);
  assert_non_null(s);
  assert_contains(s, "model.layers.self_attn.q_proj, prefill: 2048 tokens "
                     "per sequence, KV length 2048, batch 1\n");
  assert_contains(s, "basic module torch.nn.modules.linear.Linear");
  assert_contains(s, "count: 32 instances in the model = 32 (model.layers: "
                     "repeat {num_hidden_layers})\n");
  assert_contains(s, "source: torch/nn/modules/linear.py (lines not stored "
                     "in the module database), torch 2.5");
  /* templates as the model file writes them, substituted, evaluated */
  assert_contains(s, "  N             = {B} * {T} = 1 * 2048 = 2048");
  assert_contains(s, "  out_features  = {num_attention_heads} * {head_dim} "
                     "= 32 * 128 = 4096");
  assert_contains(s, "  bias          = {attention_bias} = 0");
  assert_contains(s, "  out_kv_bytes  = 0");
  /* where each variable came from */
  assert_contains(s, "  B = 1: run variable: sequences in the batch (-B)\n");
  assert_contains(s, "  T = 2048: run variable: tokens per sequence in this "
                     "step");
  assert_contains(s, "  w_bytes = 2: run variable: bytes per weight element "
                     "(--w-bits / 8)\n");
  assert_contains(s, "  num_attention_heads = 32: config key "
                     "'num_attention_heads' of models/llama-2-7b-hf.json "
                     "(line 9)\n");
  assert_contains(s, "  attention_bias = 0: config key 'attention_bias'");
  /* formulas: text, substituted, value */
  assert_contains(s, "  flops = 2 * {N} * {in_features} * {out_features} + "
                     "{bias} * {N} * {out_features}\n"
                     "        = 2 * 2048 * 4096 * 4096 + 0 * 2048 * 4096\n"
                     "        = 68719476736 (68.7 G)\n");
  assert_contains(s, "  weight_bytes = ({in_features} * {out_features} + "
                     "{bias} * {out_features}) * {w_bytes}\n"
                     "               = (4096 * 4096 + 0 * 4096) * 2\n"
                     "               = 33554432 (33.6 MB)\n");
  assert_contains(s, "= 2048 * 4096 * 2\n"); /* act read, write */
  assert_contains(s, "  kv_read_bytes: no formula, 0\n");
  /* 33554432 + 2048*4096*2 (read) + 2048*4096*2 (write) + 0 (KV write) */
  assert_contains(s, "        = 33554432 + 16777216 + 16777216 + 0 + 0\n"
                     "        = 67108864 (67.1 MB)\n");
  /* roofline: 68719476736 / 989.4e12 = 69.46 us > 67108864 / 3.35e12 =
   * 20.03 us, so compute bound */
  assert_contains(s, "compute time = flops / peak = 68719476736 / "
                     "989400000000000 = 69.46 us\n");
  assert_contains(s, "memory time  = bytes / bandwidth = 67108864 / "
                     "3350000000000 = 20.03 us\n");
  assert_contains(s, "time = max(compute, memory) = 69.46 us: compute bound");
  /* 68719476736 / 67108864 = 1024; 989.4e12 / 3.35e12 = 295.3 */
  assert_contains(s, "arithmetic intensity = flops / bytes = 1024 FLOP/B; "
                     "ridge point = peak / bandwidth = 295.3 FLOP/B");
  assert_contains(s, "calibration: none (--roofline)");
  lmp_free(s);
}

/* An attention op: qk_matmul in decode (T 1, L 2048), by path and by leaf
 * name. LlamaAttention.qk_matmul:
 *   flops         = 2 * {B} * {num_heads} * {T} * {L} * {head_dim}
 *   kv_read_bytes = {B} * {num_kv_heads} * {L} * {head_dim} * {kv_bytes} */
static void test_explain_attention(void **state) {
  (void)state;
  char *s = explain(llama, "decode", "model.layers.self_attn.qk_matmul", NULL);
  char *t = explain(llama, "decode", "qk_matmul", NULL);
  assert_non_null(s);
  assert_non_null(t);
  assert_string_equal(s, t);
  assert_contains(s, "atomic operation 'qk_matmul' of "
                     "transformers.models.llama.modeling_llama.LlamaAttention"
                     " (eager attention only)");
  assert_contains(s, "  T            = {T} = 1 ");
  assert_contains(s, "  L            = {L} = 2048 ");
  assert_contains(s, "  num_kv_heads = {num_key_value_heads} = 32 ");
  assert_contains(s, "        = 2 * 1 * 32 * 1 * 2048 * 128\n"
                     "        = 16777216 (16.8 M)\n");
  assert_contains(s, "  kv_read_bytes = {B} * {num_kv_heads} * {L} * "
                     "{head_dim} * {kv_bytes}\n"
                     "                = 1 * 32 * 2048 * 128 * 2\n"
                     "                = 16777216 (16.8 MB)\n");
  /* act read 32*128*2 = 8192, scores written 32*2048*2 = 131072 */
  assert_contains(s, "= 0 + 8192 + 131072 + 16777216 + 0\n"
                     "        = 16916480 (16.9 MB)\n");
  /* 16916480 / 3.35e12 = 5.05 us; 32 layers: 161.6 us */
  assert_contains(s, "= 16916480 / 3350000000000 = 5.05 us\n");
  assert_contains(s, "memory bound");
  assert_contains(s, "count x time = 32 x 5.05 us = 161.6 us");
  lmp_free(s);
  lmp_free(t);

  /* softmax calls torch's Softmax: rows = B*heads*T = 65536 in prefill,
   * cols = L = 2048, flops 5 * rows * cols */
  s = explain(llama, "prefill", "softmax", NULL);
  assert_non_null(s);
  assert_contains(s, "        = Softmax(1 * 32 * 2048, 2048, 2)\n"
                     "        = 671088640 (671 M)\n");
  assert_contains(s, "    where Softmax.flops(rows=65536, cols=2048, "
                     "a_bytes=2) = torch.nn.modules.activation.Softmax's "
                     "formula\n"
                     "      5 * {rows} * {cols}\n"
                     "      = 5 * 65536 * 2048\n"
                     "      = 671088640 (671 M)\n");
  lmp_free(s);
}

/* A composite's own op: the decoder layer's first residual add in decode,
 * LlamaDecoderLayer.attn_add: flops {N} * {hidden_size}, reads both
 * operands 2 * N * hidden * a_bytes, writes N * hidden * a_bytes. With
 * --phase all both phases are explained, prefill first. */
static void test_explain_composite_op(void **state) {
  (void)state;
  char *s = explain(llama, "all", "attn_add", NULL);
  assert_non_null(s);
  assert_contains(s, "atomic operation 'attn_add' of "
                     "transformers.models.llama.modeling_llama."
                     "LlamaDecoderLayer");
  assert_contains(s, "parameters of layer 'model.layers' "
                     "(models/llama-2-7b-hf.json line ");
  const char *dec = strstr(s, "model.layers.attn_add, decode: 1 token");
  assert_non_null(dec);
  assert_non_null(strstr(s, "model.layers.attn_add, prefill: 2048 tokens"));
  assert_true(strstr(s, "model.layers.attn_add, prefill") < dec);
  assert_contains(dec, "  N           = {B} * {T} = 1 * 1 = 1 ");
  assert_contains(dec, "  flops = {N} * {hidden_size}\n"
                       "        = 1 * 4096\n"
                       "        = 4096 (4.10 k)\n");
  assert_contains(dec, "                 = 2 * 1 * 4096 * 2\n"
                       "                 = 16384 (16.4 kB)\n");
  assert_contains(dec, "                  = 1 * 4096 * 2\n"
                       "                  = 8192 (8.19 kB)\n");
  /* prefill: N = 2048, 2048 * 4096 = 8388608 */
  assert_contains(s, "        = 2048 * 4096\n        = 8388608 (8.39 M)\n");
  lmp_free(s);
}

/* A figure of calibration/h100-sxm.json's "kernels" (what lmcalib
 * fitted): the documented inputs of the calibrated time. */
static double fitted(const char *kind, const char *key) {
  json_t *j = json_load_file("calibration/h100-sxm.json", 0, NULL);
  assert_non_null(j);
  json_t *v = json_object_get(
      json_object_get(json_object_get(j, "kernels"), kind), key);
  assert_non_null(v);
  double x = json_number_value(v);
  json_decref(j);
  return x;
}

/* The calibration applied, with the default engine (vLLM): in decode,
 * q_proj runs in vLLM's fused qkv_proj GEMM (engines/vllm.json). By
 * DESIGN.md section 12: kernel time = launch + max(flops / (peak x
 * compute_eff x waves), bytes / (bandwidth x memory_eff)), shared among
 * the fused rows by roofline time. Here: flops 3 x 2 x 4096 x 4096; bytes
 * 3 x 4096 x 4096 x 2 (weights) + 4096 x 2 (the input, read once) + 3 x
 * 4096 x 2 (the outputs); the GEMM is 1 x 12288 x 4096, 96 tiles of 128 on
 * 132 SMs (waves 96 / 132); memory bound. vLLM replays decode as a CUDA
 * graph: each launch also costs its graph gap, 0.5 us (engines/vllm.json's
 * launch_gap, from NVIDIA's CUDA Graphs blog). Each projection's roofline
 * bound is a third of the kernel's (the three are equal), so q_proj gets
 * a third of the kernel time. */
static void test_explain_calibration(void **state) {
  (void)state;
  lmp_options *o = lmp_options_new();
  assert_int_equal(lmp_options_set(o, "phase", "decode", NULL), 0);
  lmp_result *r = lmp_predict(data, llama, o, NULL);
  assert_non_null(r);
  char *s = lmp_explain(r, "q_proj", NULL);
  assert_non_null(s);
  assert_contains(s, "calibration: engine vllm (vLLM), calibration/"
                     "h100-sxm.json\n");
  assert_contains(s, "  kernel 'qkv_proj' (kind gemm), fusing q_proj, "
                     "k_proj, v_proj (one input, read once)\n");
  double flops = 3 * 2.0 * 4096 * 4096;
  double bytes = 3 * 4096.0 * 4096 * 2 + 4096 * 2 + 3 * 4096 * 2;
  char want[256];
  snprintf(want, sizeof(want),
           "the kernel's FLOPs = %.0f (101 M), bytes = "
           "%.0f (101 MB)",
           flops, bytes);
  assert_contains(s, want);
  assert_contains(s, "GEMM 1 x 12288 x 4096 (m x n x k): waves = 0.7273");
  double launch = fitted("gemm", "launch_us") * 1e-6;
  double ce = fitted("gemm", "compute_eff"), me = fitted("gemm", "memory_eff");
  double tc = flops / (989.4e12 * ce * (96.0 / 132));
  double tm = bytes / (3.35e12 * me);
  double kernel = launch + 0.5e-6 + (tc > tm ? tc : tm);
  assert_true(tm > tc);
  assert_contains(s, "  the engine's idle gap between dependent kernels in "
                     "decode: 0.5 us per launch (launch_gap)\n");
  assert_null(strstr(s, "host-bound")); /* vLLM gives no host figure */
  assert_contains(s, "kernel time = launches x (launch + gap) + max(");
  snprintf(want, sizeof(want), "              = %.4g us\n", kernel * 1e6);
  assert_contains(s, want);
  snprintf(want, sizeof(want), "  predicted time = %.4g us (",
           kernel / 3 * 1e6);
  assert_contains(s, want);
  /* the same number the result's row has */
  int row = -1;
  for (int i = 0; i < lmp_result_rows(r, "decode"); i++)
    if (strcmp(lmp_result_row_name(r, i, "op"), "q_proj") == 0)
      row = i;
  assert_double_near(lmp_result_row(r, "decode", row, "time_s"), kernel / 3,
                     1e-12);
  lmp_free(s);
  lmp_result_free(r);
  lmp_options_free(o);
}

/* transformers eager (engines/hf-eager.json) is host-bound in decode at
 * batch 1: 1419 launches (test_lmrun_cli counts them by hand) at the
 * engine's 23 us per launch, 32.64 ms, outlast its kernels; --explain says
 * so. */
static void test_explain_host_bound(void **state) {
  (void)state;
  lmp_options *o = lmp_options_new();
  assert_int_equal(lmp_options_set(o, "phase", "decode", NULL), 0);
  assert_int_equal(lmp_options_set(o, "engine", "hf-eager", NULL), 0);
  lmp_result *r = lmp_predict(data, llama, o, NULL);
  assert_non_null(r);
  char *s = lmp_explain(r, "q_proj", NULL);
  assert_non_null(s);
  assert_contains(s, "  host-bound: the host issues the phase's launches in "
                     "32.64 ms (23 us each, the engine's host figure)");
  lmp_free(s);
  lmp_result_free(r);
  lmp_options_free(o);
}

/* Unknown and ambiguous names are errors listing the candidates. */
static void test_explain_unknown(void **state) {
  (void)state;
  lmp_error e;
  assert_null(explain(llama, "all", "zzz", &e));
  assert_int_equal(e.set, 1);
  assert_contains(e.message, "no operation 'zzz' in meta-llama/Llama-2-7b-hf "
                             "(eager attention); the operations are:\n"
                             "  model.embed_tokens\n");
  assert_contains(e.message, "\n  model.layers.self_attn.qk_matmul\n");
  assert_contains(e.message, "\n  lm_head");
  /* a typo: the near misses only */
  assert_null(explain(llama, "all", "q_prj", &e));
  assert_contains(e.message, "did you mean:\n  model.layers.self_attn.q_proj");
  assert_not_contains(e.message, "lm_head");
  /* flash_attention does not run with eager attention */
  assert_null(explain(llama, "all", "flash_attention", &e));
  assert_contains(e.message, "no operation 'flash_attention'");

  /* two rows named proj: the leaf name is ambiguous, the paths are not */
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "two.json");
  const char *lin = "{\"name\": \"proj\", \"class\": "
                    "\"torch.nn.modules.linear.Linear\", \"parameters\": "
                    "{\"N\": \"{B} * {T}\", \"in_features\": 8, "
                    "\"out_features\": 8, \"bias\": 0, \"w_bytes\": 2, "
                    "\"in_bytes\": 2, \"out_act_bytes\": 2, "
                    "\"out_kv_bytes\": 0}}";
  char text[2048];
  snprintf(text, sizeof(text),
           "{\"model\": \"t/two\", \"config\": {}, \"class\": "
           "\"transformers.models.llama.modeling_llama.LlamaModel\", "
           "\"layers\": [{\"name\": \"a\", \"class\": "
           "\"transformers.models.llama.modeling_llama.LlamaModel\", "
           "\"sub_layers\": [%s]}, {\"name\": \"b\", \"class\": "
           "\"transformers.models.llama.modeling_llama.LlamaModel\", "
           "\"sub_layers\": [%s]}]}",
           lin, lin);
  tu_write(path, text);
  lmp_model *two = lmp_model_load(data, path, &e);
  assert_non_null(two);
  assert_null(explain(two, "all", "proj", &e));
  assert_string_equal(e.message, "operation 'proj' is ambiguous; give its "
                                 "path, one of:\n  a.proj\n  b.proj");
  char *s = explain(two, "decode", "b.proj", NULL);
  assert_non_null(s);
  assert_contains(s, "b.proj, decode: 1 token per sequence");
  /* 2 * 1 * 8 * 8 */
  assert_contains(s, "        = 2 * 1 * 8 * 8 + 0 * 1 * 8\n        = 128\n");
  lmp_free(s);
  lmp_model_free(two);
  unlink(path);
  free(path);
  tu_rm_rf(dir);
  free(dir);
}

/* --tree: the walk's view, each parameter's template and its value. */
static void test_explain_tree(void **state) {
  (void)state;
  lmp_options *o = lmp_options_new();
  lmp_result *r = lmp_predict(data, llama, o, NULL);
  assert_non_null(r);
  char *s = lmp_result_tree(r);
  assert_contains(s, "(root)  transformers.models.llama.modeling_llama."
                     "LlamaForCausalLM  [composite]\n"
                     "  model  transformers.models.llama.modeling_llama."
                     "LlamaModel  [composite]\n"
                     "    embed_tokens  torch.nn.modules.sparse.Embedding  "
                     "[basic]\n"
                     "        N = {B} * {T} = 2048 prefill, 1 decode\n"
                     "        num_embeddings = {vocab_size} = 32000\n");
  assert_contains(s, "    layers  transformers.models.llama.modeling_llama."
                     "LlamaDecoderLayer  x32 (repeat {num_hidden_layers})"
                     "  (32 in the model)  "
                     "[composite]\n");
  /* the ops in the places the model file gives them, in nesting order */
  const char *qk = strstr(s, "\n        op qk_matmul  (eager attention)\n");
  const char *v = strstr(s, "\n        v_proj  torch.nn.modules.linear.Linear");
  const char *o_proj = strstr(s, "\n        o_proj  ");
  assert_non_null(qk);
  assert_non_null(v);
  assert_non_null(o_proj);
  assert_true(v < qk && qk < o_proj);
  assert_contains(s, "          sram_bytes = {sram_bytes} = 233472\n");
  assert_contains(s, "            out_features = {num_attention_heads} * "
                     "{head_dim} = 4096\n");
  assert_contains(s, "config: hidden_size=4096 ");
  lmp_free(s);
  lmp_result_free(r);
  lmp_options_free(o);
}

/* The command: --explain and --tree print what the library returns;
 * errors exit 1; -o writes the file and nothing on stdout. */
static void test_explain_lmrun(void **state) {
  (void)state;
  char *out = NULL;
  assert_int_equal(tu_run(&out, "%s %s --explain q_proj --phase decode",
                          tu_bin("lmrun"), MODEL),
                   0);
  assert_contains(out, "model.layers.self_attn.q_proj, decode:");
  /* 2 * 1 * 4096 * 4096 */
  assert_contains(out, "= 33554432 (33.6 M)\n");
  free(out);
  assert_int_equal(tu_run(&out, "%s %s --explain nope", tu_bin("lmrun"), MODEL),
                   1);
  assert_contains(out, "lmrun: error: no operation 'nope'");
  free(out);
  assert_int_equal(tu_run(&out, "%s %s --tree", tu_bin("lmrun"), MODEL), 0);
  assert_contains(out, "        op rope\n");
  free(out);
  char *dir = tu_tmpdir();
  char *file = path_join(dir, "x.txt");
  assert_int_equal(
      tu_run(&out, "%s %s --tree -o %s", tu_bin("lmrun"), MODEL, file), 0);
  assert_string_equal(out, "");
  free(out);
  char *got = tu_read(file);
  assert_non_null(got);
  assert_contains(got, "    layers  transformers.models.llama");
  free(got);
  /* a directory that does not exist: an error, nothing written */
  assert_int_equal(
      tu_run(&out, "%s %s -o %s/no/such/x.txt", tu_bin("lmrun"), MODEL, dir),
      1);
  assert_contains(out, "lmrun: ");
  free(out);
  unlink(file);
  free(file);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_explain_linear),
      cmocka_unit_test(test_explain_attention),
      cmocka_unit_test(test_explain_composite_op),
      cmocka_unit_test(test_explain_calibration),
      cmocka_unit_test(test_explain_host_bound),
      cmocka_unit_test(test_explain_unknown),
      cmocka_unit_test(test_explain_tree),
      cmocka_unit_test(test_explain_lmrun),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
