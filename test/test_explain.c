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

/* The 1-based line of the first occurrence of needle in file at or after
 * line from (0 if none): locations derived from the files themselves, not
 * from the program. */
static int line_of(const char *file, const char *needle, int from) {
  char *t = tu_read(file);
  assert_non_null(t);
  int line = 1, found = 0;
  for (const char *p = t; *p && !found; line++) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    if (line >= from && memmem(p, n, needle, strlen(needle)))
      found = line;
    p = nl ? nl + 1 : p + n;
  }
  free(t);
  return found;
}

/* The line of the first line at or after from that is exactly text. */
static int line_exact(const char *file, const char *text, int from) {
  char *t = tu_read(file);
  assert_non_null(t);
  int line = 1, found = 0;
  for (const char *p = t; *p && !found; line++) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    if (line >= from && n == strlen(text) && memcmp(p, text, n) == 0)
      found = line;
    p = nl ? nl + 1 : p + n;
  }
  free(t);
  return found;
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
 * DESIGN.md section 12: kernel time = launch + max(tc, tm) + overlap x
 * min(tc, tm), tc = flops / (peak x compute_eff x waves), tm = bytes /
 * (bandwidth x memory_eff), shared among
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
  double ov = fitted("gemm", "overlap");
  double tc = flops / (989.4e12 * ce * (96.0 / 132));
  double tm = bytes / (3.35e12 * me);
  double kernel = launch + 0.5e-6 + tm + ov * tc;
  assert_true(tm > tc);
  assert_contains(s, "  the engine's idle gap between dependent kernels in "
                     "decode: 0.5 us per launch (launch_gap)\n");
  assert_null(strstr(s, "host-bound")); /* vLLM gives no host figure */
  assert_contains(s, "kernel time = launches x (launch + gap) + max(tc, tm) "
                     "+ overlap x min(tc, tm)");
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

/* Where the module is written down (issue 14): the module_db.json entry's
 * lines and each formula's, the generated C function's lines, the
 * reference source the entry cites. The expected lines are found in the
 * files by their text (module_db.json is written with two-space
 * indentation, so an entry of "modules" closes at a line "    }" or
 * "    },"; a generated function ends at the first "}" line). */
static void test_explain_source(void **state) {
  (void)state;
  char want[512];
  /* a Linear: the module's own formulas */
  char *s = explain(llama, "prefill", "q_proj", NULL);
  assert_non_null(s);
  int e0 = line_of("module_db.json", "\"torch.nn.modules.linear.Linear\": {",
                   1);
  int e1 = line_exact("module_db.json", "    },", e0);
  int f = line_of("module_db.json", "\"flops\": \"2 * {N} * {in_features}",
                  e0);
  assert_true(e0 > 0 && e1 > e0 && f > e0 && f < e1);
  snprintf(want, sizeof(want),
           "  entry: module_db.json lines %d-%d (validation: validated)\n",
           e0, e1);
  assert_contains(s, want);
  const char *gf = "generated_modules/torch_linear.c";
  int g0 = line_exact(gf, "double TorchLinear_flops(const double *args)", 1);
  int g1 = line_exact(gf, "}", g0);
  assert_true(g0 > 0 && g1 > g0);
  assert_contains(s, "  generated: generated_modules/torch_linear.c (C "
                     "functions TorchLinear_<metric>)\n");
  snprintf(want, sizeof(want),
           "        = 68719476736 (68.7 G)\n"
           "        (module_db.json line %d; %s lines %d-%d, "
           "TorchLinear_flops)\n",
           f, gf, g0, g1);
  assert_contains(s, want);
  assert_contains(s, "  reference source: torch/nn/modules/linear.py (lines "
                     "not stored in the module database), torch 2.5\n");
  /* weight_bytes sits on the line after flops */
  snprintf(want, sizeof(want), "(module_db.json line %d; ", f + 1);
  assert_contains(s, want);
  lmp_free(s);

  /* an atomic op: the op's span inside the entry, its own functions */
  s = explain(llama, "decode", "qk_matmul", NULL);
  assert_non_null(s);
  e0 = line_of("module_db.json",
               "\"transformers.models.llama.modeling_llama.LlamaAttention\": {",
               1);
  e1 = line_exact("module_db.json", "    },", e0);
  int o0 = line_of("module_db.json", "\"name\": \"qk_matmul\"", e0) - 1;
  int o1 = line_exact("module_db.json", "        },", o0);
  int of = line_of("module_db.json", "\"formulas\": {", o0);
  int kv = line_of("module_db.json", "\"kv_read_bytes\": ", of);
  assert_true(o0 > e0 && o1 < e1 && kv < o1);
  snprintf(want, sizeof(want),
           "  entry: module_db.json lines %d-%d, atomic op 'qk_matmul' lines "
           "%d-%d (validation: validated)\n",
           e0, e1, o0, o1);
  assert_contains(s, want);
  snprintf(want, sizeof(want), "formulas (module_db.json lines %d-%d, "
           "LlamaAttention.qk_matmul)", of, line_exact("module_db.json",
           "          }", of));
  assert_contains(s, want);
  gf = "generated_modules/transformers_llama_attention.c";
  g0 = line_exact(gf,
                  "double TransformersLlamaAttention_op_qk_matmul_kv_read_"
                  "bytes(const double *args)",
                  1);
  g1 = line_exact(gf, "}", g0);
  assert_true(g0 > 0);
  /* 1 * 32 * 2048 * 128 * 2 */
  snprintf(want, sizeof(want),
           "                = 16777216 (16.8 MB)\n"
           "                (module_db.json line %d; %s lines %d-%d, "
           "TransformersLlamaAttention_op_qk_matmul_kv_read_bytes)\n",
           kv, gf, g0, g1);
  assert_contains(s, want);
  assert_contains(s, "  reference source: src/transformers/models/llama/"
                     "modeling_llama.py");
  lmp_free(s);
}

/* --tree of a config.json (issue 14): the template, and for every config
 * key its value and where it came from; for every layer the template line
 * and the keys it reads. gpt2's published config has n_embd 768 and no
 * n_inner, so the template's default 4 * {n_embd} = 3072 applies. */
static void test_explain_tree_config(void **state) {
  (void)state;
  const char *cfg = "test/data/configs/gpt2.json";
  const char *tpl = "models/arch/gpt2.json";
  lmp_model *m = lmp_model_load(data, cfg, NULL);
  assert_non_null(m);
  lmp_options *o = lmp_options_new();
  assert_int_equal(lmp_options_set(o, "seq-len", "1024", NULL), 0);
  lmp_result *r = lmp_predict(data, m, o, NULL);
  assert_non_null(r);
  char *s = lmp_result_tree(r);
  char want[512];
  assert_contains(s, "template: models/arch/gpt2.json (model_type gpt2), "
                     "filled with the keys of test/data/configs/gpt2.json "
                     "it declares:\n");
  int embd = line_of(cfg, "\"n_embd\": 768", 1);
  assert_true(embd > 0);
  snprintf(want, sizeof(want), " %s line %d\n", cfg, embd);
  assert_contains(s, want);
  assert_contains(s, "  n_embd = 768 ");
  assert_int_equal(line_of(cfg, "n_inner", 1), 0); /* absent */
  int d = line_of(tpl, "\"default\": \"4 * {n_embd}\"", 1);
  assert_true(d > 0);
  snprintf(want, sizeof(want),
           "absent from the config: the template's default 4 * {n_embd} "
           "(%s line %d)\n",
           tpl, d);
  assert_contains(s, want);
  assert_contains(s, "  n_inner = 3072 ");
  /* the c_fc layer: where the template writes it, the keys it reads */
  int lfc = line_of(tpl, "\"name\": \"c_fc\"", 1) - 1;
  snprintf(want, sizeof(want),
           "        c_fc  transformers.pytorch_utils.Conv1D  (12 in the "
           "model)  [basic]\n"
           "            from %s line %d; config keys: n_embd = 768 (config "
           "line %d), n_inner = 3072 (absent: default)\n",
           tpl, lfc, embd);
  assert_contains(s, want);
  /* a choice's variable: gpt2.json's activation_function is "gelu_new",
   * the first of the template's values */
  assert_contains(s, "  activation_index = 0 ");
  assert_contains(s, "the index of activation_function's value 'gelu_new' "
                     "in the template's values\n");
  lmp_free(s);
  lmp_result_free(r);

  /* a key present as null takes the template's value for null, and says
   * so: Qwen3-8B's "sliding_window": null (the declaration's "null": 0;
   * absent it would be Qwen3Config's 4096) */
  lmp_model *q = lmp_model_load(data, "test/data/configs/qwen3-8b.json", NULL);
  assert_non_null(q);
  r = lmp_predict(data, q, o, NULL);
  assert_non_null(r);
  s = lmp_result_tree(r);
  int nl = line_of("test/data/configs/qwen3-8b.json",
                   "\"sliding_window\": null", 1);
  int sd = line_of("models/arch/qwen3.json", "\"null\": 0,",
                   line_of("models/arch/qwen3.json", "\"sliding_window\": {",
                           1));
  assert_true(nl > 0 && sd > 0);
  snprintf(want, sizeof(want),
           "  sliding_window = 0%*s  null in the config (line %d): the "
           "template's value for null 0 (models/arch/qwen3.json line %d)\n",
           (int)(strlen("max_position_embeddings = 40960") -
                 strlen("sliding_window = 0")), "", nl, sd);
  assert_contains(s, want);
  /* layer_types counted: no "sliding_attention" entry */
  assert_contains(s, "  num_sliding_layers = 0 ");
  snprintf(want, sizeof(want),
           "counted in layer_types (test/data/configs/qwen3-8b.json line "
           "%d)\n",
           line_of("test/data/configs/qwen3-8b.json", "\"layer_types\"", 1));
  assert_contains(s, want);
  lmp_free(s);
  lmp_result_free(r);
  /* --explain names the config's line for a config key */
  lmp_options_set(o, "phase", "decode", NULL);
  lmp_options_set(o, "roofline", "yes", NULL);
  r = lmp_predict(data, q, o, NULL);
  s = lmp_explain(r, "model.layers.self_attn.q_proj", NULL);
  assert_non_null(s);
  snprintf(want, sizeof(want),
           "  hidden_size = 4096: config key 'hidden_size': "
           "test/data/configs/qwen3-8b.json line %d\n",
           line_of("test/data/configs/qwen3-8b.json", "\"hidden_size\"", 1));
  assert_contains(s, want);
  lmp_free(s);
  lmp_result_free(r);
  lmp_options_free(o);
  lmp_model_free(q);
  lmp_model_free(m);
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
      cmocka_unit_test(test_explain_source),
      cmocka_unit_test(test_explain_tree_config),
      cmocka_unit_test(test_explain_lmrun),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
