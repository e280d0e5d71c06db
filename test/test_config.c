/* test_config.c: Hugging Face config.json + template -> Model (config.c).
 *
 * Every expected number is derived here by hand from the config's values
 * (the formulas are written out in this file, independently of the
 * templates and the module database), and checked against the published
 * parameter counts listed in test/data/configs/README.md. */
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

static Model *from_text(const char *text, Error *e) {
  err_clear(e);
  return model_from_config("config.json", text, strlen(text), NULL,
                           "models/arch", reg, e);
}

static Model *from_file(const char *path) {
  Error e;
  err_clear(&e);
  ModelOpenOpts o = {.arch_dir = "models/arch"};
  Model *m = model_open(path, &o, reg, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  return m;
}

/* One evaluation at batch 1, T new tokens over KV length L, 16 bits. */
typedef struct Eval {
  Plan *plan;
  Values *v;
} Eval;

static void eval(Model *m, double T, double L, Eval *out) {
  Error e;
  err_clear(&e);
  out->plan = plan_build(m, ATTN_EAGER, &e);
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

static void eval_free(Eval *x) {
  values_free(x->v);
  plan_free(x->plan);
}

static const double *row(const Eval *x, const char *path, double *count) {
  for (int r = 0; r < x->plan->nrows; r++)
    if (strcmp(x->plan->rows[r].path, path) == 0) {
      if (count)
        *count = x->plan->rows[r].count;
      return x->v->row[r];
    }
  fail_msg("no row %s", path);
  return NULL;
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

/* The parameter count of a Llama-like decoder, written out by hand:
 * embeddings V*H (once more for an untied lm_head), per layer q/k/v/o
 * (+ biases), gate/up/down, two norms (+ q/k norms of head_dim), and the
 * final norm. */
typedef struct Shape {
  double V, H, I, layers, heads, kv, hd;
  bool tied, qkv_bias, o_bias, qk_norm;
} Shape;

static double hand_params(const Shape *s) {
  double q = s->H * s->heads * s->hd + (s->qkv_bias ? s->heads * s->hd : 0);
  double kv = s->H * s->kv * s->hd + (s->qkv_bias ? s->kv * s->hd : 0);
  double o = s->heads * s->hd * s->H + (s->o_bias ? s->H : 0);
  double mlp = 3 * s->H * s->I;
  double norms = 2 * s->H + (s->qk_norm ? 2 * s->hd : 0);
  double layer = q + 2 * kv + o + mlp + norms;
  return s->V * s->H * (s->tied ? 1 : 2) + s->layers * layer + s->H;
}

/* ---------------------------------------------------------------- */

static void test_config_parameters_real_files(void **state) {
  (void)state;
  static const struct {
    const char *file;
    Shape s;
    double published; /* exact, or rounded (then within 0.5%) */
    bool exact;
  } cases[] = {
      {"test/data/configs/llama-3-8b.json",
       {128256, 4096, 14336, 32, 32, 8, 128, false, false, false, false},
       8030261248.0,
       true},
      {"test/data/configs/llama-3.2-1b.json",
       {128256, 2048, 8192, 16, 32, 8, 64, true, false, false, false},
       1235814400.0,
       true},
      {"test/data/configs/mistral-7b-v0.1.json",
       {32000, 4096, 14336, 32, 32, 8, 128, false, false, false, false},
       7241732096.0,
       true},
      {"test/data/configs/qwen2.5-0.5b.json",
       {151936, 896, 4864, 24, 14, 2, 64, true, true, false, false},
       494032768.0,
       true},
      {"test/data/configs/qwen3-8b.json",
       {151936, 4096, 12288, 36, 32, 8, 128, false, false, false, true},
       8.2e9,
       false},
      /* 126 layers, 8 key/value heads (the corrected release; the first
       * upload said 16), llama3 rope_scaling; model card: 405B */
      {"test/data/configs/llama-3.1-405b-instruct.json",
       {128256, 16384, 53248, 126, 128, 8, 128, false, false, false, false},
       405e9,
       false},
      /* 32 heads of 128 on a 5120-wide model; Hub: 12.2B */
      {"test/data/configs/mistral-nemo-base-2407.json",
       {131072, 5120, 14336, 40, 32, 8, 128, false, false, false, false},
       12.2e9,
       false},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    Model *m = from_file(cases[i].file);
    double n = params_of(m);
    double want = hand_params(&cases[i].s);
    if (n != want)
      print_error("%s: %.0f, by hand %.0f\n", cases[i].file, n, want);
    assert_double_exact(n, want);
    if (cases[i].exact)
      assert_double_exact(n, cases[i].published);
    else
      assert_double_near(n, cases[i].published, 0.005);
    assert_true(m->from_config);
    model_free(m);
  }
  assert_double_exact(hand_params(&cases[5].s), 405853388800.0);
  assert_double_exact(hand_params(&cases[6].s), 12247782400.0);
  /* Qwen3-8B's card rounds: by hand 8,190,735,360 (non-embedding 6.95B) */
  assert_double_exact(hand_params(&cases[4].s), 8190735360.0);
  assert_double_exact(hand_params(&cases[4].s) - 2 * 151936.0 * 4096,
                      6946075648.0);
}

/* KV cache bytes per token at 16 bits: 2 (K and V) x layers x kv heads x
 * head_dim x 2 bytes; with one token of context the cache holds one. */
static void test_config_kv_per_token(void **state) {
  (void)state;
  static const struct {
    const char *file;
    double per_token;
  } cases[] = {
      {"test/data/configs/llama-3-8b.json", 2.0 * 32 * 8 * 128 * 2},
      {"test/data/configs/llama-3.2-1b.json", 2.0 * 16 * 8 * 64 * 2},
      {"test/data/configs/mistral-7b-v0.1.json", 2.0 * 32 * 8 * 128 * 2},
      {"test/data/configs/qwen2.5-0.5b.json", 2.0 * 24 * 2 * 64 * 2},
      {"test/data/configs/qwen3-8b.json", 2.0 * 36 * 8 * 128 * 2},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    Model *m = from_file(cases[i].file);
    Eval x;
    eval(m, 1, 1, &x);
    assert_double_exact(x.v->state[M_KV_CACHE_BYTES - M_TRAFFIC],
                        cases[i].per_token);
    eval_free(&x);
    model_free(m);
  }
  /* Mistral-7B's window: at 8192 tokens of context the cache holds 4096 */
  Model *m = from_file("test/data/configs/mistral-7b-v0.1.json");
  Eval x;
  eval(m, 1, 8192, &x);
  assert_double_exact(x.v->state[M_KV_CACHE_BYTES - M_TRAFFIC],
                      2.0 * 32 * 8 * 128 * 2 * 4096);
  /* and decode's QK^T reads 4096 keys: 2 x heads x L x head_dim FLOPs */
  assert_double_exact(
      row(&x, "model.layers.self_attn.qk_matmul", NULL)[M_FLOPS],
      2.0 * 32 * 4096 * 128);
  eval_free(&x);
  model_free(m);
}

static void test_config_per_op_values(void **state) {
  (void)state;
  double count;
  /* Qwen2.5-0.5B decode: q_proj 896 -> 14*64 with a bias: 2*in*out + out
   * FLOPs, (in*out + out) x 2 bytes of weights; o_proj has no bias */
  Model *m = from_file("test/data/configs/qwen2.5-0.5b.json");
  Eval x;
  eval(m, 1, 1024, &x);
  const double *q = row(&x, "model.layers.self_attn.q_proj", &count);
  assert_double_exact(count, 24);
  assert_double_exact(q[M_FLOPS], 2.0 * 896 * 896 + 896);
  assert_double_exact(q[M_WEIGHT_BYTES], (896.0 * 896 + 896) * 2);
  const double *k = row(&x, "model.layers.self_attn.k_proj", NULL);
  assert_double_exact(k[M_FLOPS], 2.0 * 896 * 128 + 128);
  assert_double_exact(k[M_KV_WRITE_BYTES], 128.0 * 2);
  const double *o = row(&x, "model.layers.self_attn.o_proj", NULL);
  assert_double_exact(o[M_FLOPS], 2.0 * 896 * 896);
  /* tied lm_head still reads its weights: V x H x 2 bytes */
  assert_double_exact(row(&x, "lm_head", NULL)[M_WEIGHT_BYTES],
                      151936.0 * 896 * 2);
  eval_free(&x);
  model_free(m);

  /* Qwen3-8B prefill of 4 tokens: q_norm normalises 4 x 32 rows of 128,
   * k_norm 4 x 8 rows: RMSNorm is 4 FLOPs per element + 3 per row */
  m = from_file("test/data/configs/qwen3-8b.json");
  eval(m, 4, 4, &x);
  assert_double_exact(row(&x, "model.layers.self_attn.q_norm", &count)[M_FLOPS],
                      4.0 * 128 * 128 + 3 * 128);
  assert_double_exact(count, 36);
  assert_double_exact(row(&x, "model.layers.self_attn.k_norm", NULL)[M_FLOPS],
                      4.0 * 32 * 128 + 3 * 32);
  /* q_proj 4096 -> 32 x 128 without bias (attention_bias false) */
  assert_double_exact(row(&x, "model.layers.self_attn.q_proj", NULL)[M_FLOPS],
                      2.0 * 4 * 4096 * 4096);
  eval_free(&x);
  model_free(m);
}

/* Mistral-Nemo: 32 heads x head_dim 128 = 4096 != hidden 5120, no window.
 * Values from https://huggingface.co/mistralai/Mistral-Nemo-Base-2407
 * config.json; 12,247,782,400 parameters on its Hub page (12.2B). */
static const char nemo[] =
    "{\"architectures\": [\"MistralForCausalLM\"], \"head_dim\": 128,\n"
    " \"hidden_act\": \"silu\", \"hidden_size\": 5120,\n"
    " \"intermediate_size\": 14336, \"max_position_embeddings\": 1024000,\n"
    " \"model_type\": \"mistral\", \"num_attention_heads\": 32,\n"
    " \"num_hidden_layers\": 40, \"num_key_value_heads\": 8,\n"
    " \"rms_norm_eps\": 1e-05, \"rope_theta\": 1000000.0,\n"
    " \"sliding_window\": null, \"tie_word_embeddings\": false,\n"
    " \"vocab_size\": 131072}\n";

static void test_config_mistral_nemo(void **state) {
  (void)state;
  Error e;
  Model *m = from_text(nemo, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  Shape s = {131072, 5120, 14336, 40, 32, 8, 128, false, false, false, false};
  assert_double_exact(params_of(m), hand_params(&s));
  assert_double_exact(hand_params(&s), 12247782400.0);
  Eval x;
  eval(m, 1, 200000, &x);
  assert_double_exact(row(&x, "model.layers.self_attn.q_proj", NULL)[M_FLOPS],
                      2.0 * 5120 * 4096);
  assert_double_exact(row(&x, "model.layers.self_attn.o_proj", NULL)[M_FLOPS],
                      2.0 * 4096 * 5120);
  /* sliding_window null: no window, all 200000 keys */
  assert_double_exact(x.v->state[M_KV_CACHE_BYTES - M_TRAFFIC],
                      2.0 * 40 * 8 * 128 * 2 * 200000);
  eval_free(&x);
  model_free(m);
}

/* The same model from its config and from its hand-written model file give
 * the same rows (norm weights at e_bytes = 2 bytes = the files' 2). */
static const char llama2[] =
    "{\"_name_or_path\": \"meta-llama/Llama-2-7b-hf\",\n"
    " \"architectures\": [\"LlamaForCausalLM\"], \"bos_token_id\": 1,\n"
    " \"eos_token_id\": 2, \"hidden_act\": \"silu\", \"hidden_size\": 4096,\n"
    " \"initializer_range\": 0.02, \"intermediate_size\": 11008,\n"
    " \"max_position_embeddings\": 4096, \"model_type\": \"llama\",\n"
    " \"num_attention_heads\": 32, \"num_hidden_layers\": 32,\n"
    " \"num_key_value_heads\": 32, \"pretraining_tp\": 1,\n"
    " \"rms_norm_eps\": 1e-05, \"rope_scaling\": null,\n"
    " \"tie_word_embeddings\": false, \"torch_dtype\": \"float16\",\n"
    " \"transformers_version\": \"4.31.0.dev0\", \"use_cache\": true,\n"
    " \"vocab_size\": 32000}\n";

static void test_config_equals_model_file(void **state) {
  (void)state;
  Error e;
  Model *a = from_text(llama2, &e);
  assert_non_null(a);
  assert_string_equal(a->id, "meta-llama/Llama-2-7b-hf");
  assert_string_equal(a->family, "llama");
  Model *b = from_file("models/llama-2-7b-hf.json");
  assert_false(b->from_config);
  assert_double_exact(params_of(a), 6738415616.0);
  for (int phase = 0; phase < 2; phase++) {
    Eval x, y;
    eval(a, phase ? 1 : 512, 512, &x);
    eval(b, phase ? 1 : 512, 512, &y);
    assert_int_equal(x.plan->nrows, y.plan->nrows);
    for (int r = 0; r < x.plan->nrows; r++) {
      assert_string_equal(x.plan->rows[r].path, y.plan->rows[r].path);
      assert_double_exact(x.plan->rows[r].count, y.plan->rows[r].count);
      for (int k = 0; k < M_TRAFFIC; k++)
        assert_double_exact(x.v->row[r][k], y.v->row[r][k]);
    }
    for (int k = 0; k < M_COUNT - M_TRAFFIC; k++)
      assert_double_exact(x.v->state[k], y.v->state[k]);
    eval_free(&x);
    eval_free(&y);
  }
  model_free(a);
  model_free(b);
}

/* Qwen2 with sliding-window layers: layers >= max_window_layers slide. */
static void test_config_layer_kinds(void **state) {
  (void)state;
  char *base = tu_read("test/data/configs/qwen2.5-0.5b.json");
  char *t1 = tu_replace(base, "\"use_sliding_window\": false",
                        "\"use_sliding_window\": true");
  char *t2 =
      tu_replace(t1, "\"max_window_layers\": 24", "\"max_window_layers\": 20");
  char *t3 =
      tu_replace(t2, "\"sliding_window\": 32768", "\"sliding_window\": 4096");
  Error e;
  Model *m = from_text(t3, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  Eval x;
  eval(m, 1, 8192, &x);
  double n;
  row(&x, "model.layers.self_attn.qk_matmul", &n);
  assert_double_exact(n, 20);
  const double *qk = row(&x, "model.layers[sliding].self_attn.qk_matmul", &n);
  assert_double_exact(n, 4);
  assert_double_exact(qk[M_FLOPS], 2.0 * 14 * 4096 * 64);
  const char *kinds[4];
  double bytes[4];
  int nk = plan_kv_by_kind(x.plan, x.v, kinds, bytes, 4);
  assert_int_equal(nk, 2);
  assert_string_equal(kinds[0], "");
  assert_string_equal(kinds[1], "sliding");
  assert_double_exact(bytes[0], 20 * 2.0 * 2 * 64 * 2 * 8192);
  assert_double_exact(bytes[1], 4 * 2.0 * 2 * 64 * 2 * 4096);
  /* the parameters do not depend on the kind */
  assert_double_exact(params_of(m), 494032768.0);
  eval_free(&x);
  model_free(m);
  /* layer_types, when present, decides: 3 sliding of 24 */
  Buf b;
  buf_init(&b);
  buf_puts(&b, "\"layer_types\": [");
  for (int i = 0; i < 24; i++)
    buf_printf(&b, "%s\"%s\"", i ? ", " : "",
               i % 8 == 7 ? "sliding_attention" : "full_attention");
  buf_puts(&b, "],\n  \"max_window_layers\"");
  char *t4 = tu_replace(t3, "\"max_window_layers\"", buf_str(&b));
  m = from_text(t4, &e);
  assert_non_null(m);
  eval(m, 1, 8192, &x);
  row(&x, "model.layers[sliding].self_attn.qk_matmul", &n);
  assert_double_exact(n, 3);
  eval_free(&x);
  model_free(m);
  buf_free(&b);
  free(t4);
  free(t3);
  free(t2);
  free(t1);
  free(base);
}

/* Bad configs: each a located error naming the key. */
static void test_config_errors(void **state) {
  (void)state;
  char *base = tu_read("test/data/configs/llama-3-8b.json");
  static const struct {
    const char *from, *to; /* edit of llama-3-8b.json */
    const char *msg;
    const char *at; /* where the caret goes: this text in the edited file */
  } cases[] = {
      {"\"hidden_size\": 4096,", "",
       "the config has no 'hidden_size', which "
       "the llama template needs",
       "{"},
      {"\"hidden_size\": 4096", "\"hidden_size\": 0",
       "hidden_size is 0; it must be at least 1",
       "0,\n  \"initializer_range\""},
      {"\"num_attention_heads\": 32", "\"num_attention_heads\": -4",
       "num_attention_heads is -4; it must be at least 1", "-4"},
      {"\"hidden_size\": 4096", "\"hidden_size\": 4096.5",
       "hidden_size is 4096.5; it must be a whole number", "4096.5"},
      {"\"hidden_size\": 4096", "\"hidden_size\": 4100",
       "{num_attention_heads} (32) divides {hidden_size} (4100) does not "
       "hold",
       "32,\n  \"num_hidden_layers\""},
      {"\"num_key_value_heads\": 8", "\"num_key_value_heads\": 5",
       "{num_key_value_heads} (5) divides {num_attention_heads} (32) does "
       "not hold",
       "5,"},
      {"\"hidden_size\": 4096", "\"hidden_size\": Infinity",
       "hidden_size is Infinity: it must be a finite number", "Infinity"},
      {"\"vocab_size\": 128256", "\"vocab_size\": NaN",
       "vocab_size is NaN: it must be a finite number", "NaN"},
      {"\"hidden_size\": 4096", "\"hidden_size\": \"4096\"",
       "hidden_size must be a number, not a string", "\"4096\""},
      {"\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"",
       "hidden_act is 'gelu'; the llama template models only: silu",
       "\"gelu\""},
      {"\"model_type\": \"llama\"", "\"model_type\": \"foo\"",
       "unsupported model_type 'foo' (supported: ", "\"foo\""},
      {"\"model_type\": \"llama\"", "\"model_type\": \"../x\"",
       "unsupported model_type '../x'", "\"../x\""},
      {"\"model_type\": \"llama\",", "",
       "no model_type: this is not a "
       "Hugging Face config.json",
       "{"},
      {"\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"wavy\"}",
       "unknown rope_scaling.rope_type 'wavy'", "\"wavy\""},
      {"\"rope_scaling\": null",
       "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}",
       "rope_scaling of type llama3 needs a numeric 'low_freq_factor'",
       "{\"rope_type\""},
      {"\"rope_scaling\": null",
       "\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": Infinity}",
       "rope_scaling.factor is Infinity", "Infinity"},
      {"\"tie_word_embeddings\": false", "\"tie_word_embeddings\": 2",
       "tie_word_embeddings must be true or false", "2,\n  \"torch_dtype\""},
      {"\"use_cache\": true", "\"use_cache\": tru", "invalid JSON", "tru"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char *t = tu_replace(base, cases[i].from, cases[i].to);
    Error e;
    Model *m = from_text(t, &e);
    if (m || !strstr(e.msg, cases[i].msg)) {
      char *txt = tu_err_text(&e);
      print_error("case %zu: got %s\n", i, m ? "a model" : txt);
      free(txt);
    }
    assert_null(m);
    assert_contains(e.msg, cases[i].msg);
    int line, col;
    tu_position_of(t, cases[i].at, 1, 0, &line, &col);
    if (e.line != line || e.col != col)
      print_error("case %zu: at %d:%d, want %d:%d (%s)\n", i, e.line, e.col,
                  line, col, e.msg);
    assert_int_equal(e.line, line);
    assert_int_equal(e.col, col);
    assert_string_equal(e.file, "config.json");
    free(t);
  }
  free(base);
}

/* NaN and Infinity where the cost model never looks are accepted, and the
 * column of everything after them is unchanged. */
static void test_config_nonfinite_unread(void **state) {
  (void)state;
  char *base = tu_read("test/data/configs/llama-3-8b.json");
  char *t1 = tu_replace(base, "\"initializer_range\": 0.02",
                        "\"initializer_range\": NaN, \"x\": [-Infinity, "
                        "Infinity], \"s\": \"NaN Infinity\"");
  Error e;
  Model *m = from_text(t1, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  assert_double_exact(params_of(m), 8030261248.0);
  model_free(m);
  /* a syntax error on such a line shows the line as written */
  char *t2 = tu_replace(base, "\"initializer_range\": 0.02",
                        "\"initializer_range\": Infinity 1");
  m = from_text(t2, &e);
  assert_null(m);
  assert_contains(e.msg, "invalid JSON");
  assert_contains(e.context, "\"initializer_range\": Infinity 1");
  free(t2);
  free(t1);
  free(base);
}

/* transformers 5 writes rope_parameters per layer type (Gemma 3):
 * {"full_attention": {...}, "sliding_attention": {...}}; each is checked
 * as one rope_scaling object, and a bad one is located inside it. */
static void test_config_rope_per_layer_type(void **state) {
  (void)state;
  char *base = tu_read("test/data/configs/gemma-3-1b-it.json");
  char *t1 = tu_replace(
      base, "\"rope_scaling\": null",
      "\"rope_parameters\": {\"full_attention\": {\"rope_theta\": 1000000.0, "
      "\"rope_type\": \"default\"}, \"sliding_attention\": {\"rope_theta\": "
      "10000.0, \"rope_type\": \"default\"}}");
  Error e;
  Model *m = from_text(t1, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  assert_double_exact(params_of(m), 999885952.0);
  model_free(m);
  char *t2 = tu_replace(t1, "10000.0, \"rope_type\": \"default\"",
                        "10000.0, \"rope_type\": \"linear\"");
  m = from_text(t2, &e);
  assert_null(m);
  assert_contains(e.msg, "of type linear needs a numeric 'factor'");
  assert_contains(e.msg, "sliding_attention");
  free(t2);
  free(t1);
  free(base);
}

/* Every rope type transformers' ROPE_INIT_FUNCTIONS accepts (default,
 * linear, dynamic, yarn, longrope, llama3; su is longrope's old name) is
 * accepted with the members transformers' validation requires, in
 * rope_scaling and in transformers 5's rope_parameters, flat or per layer
 * type; none changes a cost (the frequencies differ, the work does not),
 * so the parameter count stays Llama-3-8B's 8,030,261,248. Unknown types
 * and missing members are located errors, inside the nested form too. */
static void test_config_rope_types(void **state) {
  (void)state;
  char *base = tu_read("test/data/configs/llama-3-8b.json");
  static const char *const ok[] = {
      "{\"rope_type\": \"default\"}",
      "{\"rope_type\": \"linear\", \"factor\": 2.0}",
      "{\"type\": \"dynamic\", \"factor\": 2.0}",
      "{\"rope_type\": \"yarn\", \"factor\": 4.0, "
      "\"original_max_position_embeddings\": 8192}",
      "{\"rope_type\": \"longrope\", \"short_factor\": [1.0, 1.0], "
      "\"long_factor\": [2.0, 4.0]}",
      "{\"type\": \"su\", \"short_factor\": [1.0], \"long_factor\": [2.0]}",
      "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
      "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}",
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(ok); i++) {
    for (int form = 0; form < 3; form++) {
      char with[512];
      if (form == 0)
        snprintf(with, sizeof(with), "\"rope_scaling\": %s", ok[i]);
      else if (form == 1)
        snprintf(with, sizeof(with),
                 "\"rope_scaling\": null, \"rope_parameters\": %s", ok[i]);
      else
        snprintf(with, sizeof(with),
                 "\"rope_scaling\": null, \"rope_parameters\": "
                 "{\"full_attention\": %s, \"sliding_attention\": %s}",
                 ok[i], ok[i]);
      char *t = tu_replace(base, "\"rope_scaling\": null", with);
      Error e;
      Model *m = from_text(t, &e);
      if (!m) {
        print_error("type %zu form %d:\n", i, form);
        err_print(stderr, &e);
      }
      assert_non_null(m);
      assert_double_exact(params_of(m), 8030261248.0);
      model_free(m);
      free(t);
    }
  }
  static const struct {
    const char *with, *msg, *path;
  } bad[] = {
      {"\"rope_scaling\": {\"rope_type\": \"ntk-by-parts\", \"factor\": 2.0}",
       "unknown rope_scaling.rope_type 'ntk-by-parts'", ".rope_scaling.rope_type"},
      {"\"rope_scaling\": null, \"rope_parameters\": {\"full_attention\": "
       "{\"rope_type\": \"default\"}, \"sliding_attention\": {\"rope_type\": "
       "\"wavy\"}}",
       "unknown sliding_attention.rope_type 'wavy'",
       ".rope_parameters.sliding_attention.rope_type"},
      {"\"rope_scaling\": {\"rope_type\": \"yarn\"}",
       "rope_scaling of type yarn needs a numeric 'factor'", ".rope_scaling"},
      {"\"rope_scaling\": {\"rope_type\": \"longrope\", \"short_factor\": "
       "[1.0], \"long_factor\": \"x\"}",
       "rope_scaling of type longrope needs 'long_factor', a list of numbers",
       ".rope_scaling.long_factor"},
      {"\"rope_scaling\": {\"rope_type\": \"su\", \"long_factor\": [1.0]}",
       "rope_scaling of type su needs 'short_factor', a list of numbers",
       ".rope_scaling"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(bad); i++) {
    char *t = tu_replace(base, "\"rope_scaling\": null", bad[i].with);
    Error e;
    Model *m = from_text(t, &e);
    assert_null(m);
    char *txt = tu_err_text(&e);
    if (!strstr(txt, bad[i].msg) || !strstr(txt, bad[i].path))
      print_error("case %zu:\n%s\n", i, txt);
    assert_contains(txt, bad[i].msg);
    assert_contains(txt, bad[i].path);
    free(txt);
    free(t);
  }
  free(base);
}

/* A quantized checkpoint of a dense family (TheBloke-style GPTQ): the
 * projections' default width comes from quantization_config, 4 bits plus
 * a 16-bit scale and a 4-bit zero per group of 128 = 4 + 20/128 =
 * 4.15625 bits; the parameter count does not change; an unknown method is
 * reported, not modelled. */
static void test_config_dense_quantization(void **state) {
  (void)state;
  char *base = tu_read("test/data/configs/mistral-7b-v0.1.json");
  char *t1 = tu_replace(base, "\"model_type\": \"mistral\",",
                        "\"model_type\": \"mistral\", \"quantization_config\": "
                        "{\"bits\": 4, \"group_size\": 128, \"quant_method\": "
                        "\"gptq\", \"desc_act\": false},");
  Error e;
  Model *m = from_text(t1, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  assert_true(m->quant.known);
  assert_string_equal(m->quant.method, "gptq");
  assert_double_exact(m->quant.w_bits, 4 + 20.0 / 128);
  assert_int_equal(m->quant.nominal_w, 4);
  assert_double_exact(params_of(m), 7241732096.0);
  model_free(m);
  char *t2 = tu_replace(t1, "\"gptq\"", "\"fbgemm_fp8\"");
  m = from_text(t2, &e);
  assert_non_null(m);
  assert_false(m->quant.known);
  assert_string_equal(m->quant.method, "fbgemm_fp8");
  model_free(m);
  free(t2);
  free(t1);
  free(base);
}

/* Gemma3ForConditionalGeneration keeps a quantized checkpoint's
 * quantization_config at the top of config.json, beside text_config
 * (transformers' Gemma3Config is a composite: quantization_config belongs
 * to the outer PretrainedConfig). It is read there: AWQ 4 bits, group 128
 * = 4 + (16 + 4) / 128 = 4.15625 bits per projection weight; the count is
 * the language model's as without it (3,880,263,168, test_families). An
 * error in it is located at the top (.quantization_config.bits), not
 * inside text_config. */
static void test_config_nested_quantization_at_top(void **state) {
  (void)state;
  char *base = tu_read("test/data/configs/gemma-3-4b-it.json");
  char *t1 = tu_replace(base, "\"model_type\": \"gemma3\",",
                        "\"model_type\": \"gemma3\", \"quantization_config\": "
                        "{\"bits\": 4, \"group_size\": 128, \"quant_method\": "
                        "\"awq\", \"version\": \"gemm\", \"zero_point\": true},");
  Error e;
  Model *m = from_text(t1, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  assert_true(m->quant.known);
  assert_string_equal(m->quant.method, "awq");
  assert_double_exact(m->quant.w_bits, 4 + 20.0 / 128);
  assert_int_equal(m->quant.nominal_w, 4);
  assert_double_exact(params_of(m), 3880263168.0);
  model_free(m);
  char *t2 = tu_replace(t1, "\"bits\": 4,", "\"bits\": \"4\",");
  m = from_text(t2, &e);
  assert_null(m);
  char *txt = tu_err_text(&e);
  assert_contains(txt, "quantization_config.bits must be a number");
  assert_contains(txt, "config.json:14:"); /* the top-level line */
  assert_contains(txt, " .quantization_config.bits:");
  assert_true(strstr(txt, "text_config") == NULL);
  free(txt);
  free(t2);
  free(t1);
  free(base);
}

/* compressed-tensors (llm-compressor) checkpoints, widths by hand from
 * compressed_tensors' storage: a per-channel FP8 W8A8 (RedHatAI's
 * "FP8-dynamic" recipe: weights num_bits 8, type float, strategy channel)
 * is 8 bits (a scale per 4096-wide row: 16 / 4096 = 0.004 bits,
 * negligible as fp8's per-tensor scale); W4A16 (int, group 128,
 * symmetric) 4 + 16/128 = 4.125; asymmetric adds a 4-bit zero point per
 * group: 4 + 20/128 = 4.15625; NVFP4 (tensor_group, 16) an E4M3 scale per
 * 16: 4 + 8/16 = 4.5. Groups of different widths, or a 2:4 sparse
 * format, are reported as not modelled; a bad num_bits is located. */
static void test_config_compressed_tensors(void **state) {
  (void)state;
  char *base = tu_read("test/data/configs/mistral-7b-v0.1.json");
  static const struct {
    const char *weights, *format;
    double bits;
    int nominal;
  } ok[] = {
      {"{\"num_bits\": 8, \"type\": \"float\", \"strategy\": \"channel\", "
       "\"symmetric\": true, \"dynamic\": false}",
       "float-quantized", 8, 8},
      {"{\"num_bits\": 4, \"type\": \"int\", \"strategy\": \"group\", "
       "\"group_size\": 128, \"symmetric\": true}",
       "pack-quantized", 4 + 16.0 / 128, 4},
      {"{\"num_bits\": 4, \"type\": \"int\", \"strategy\": \"group\", "
       "\"group_size\": 128, \"symmetric\": false}",
       "pack-quantized", 4 + 20.0 / 128, 4},
      {"{\"num_bits\": 4, \"type\": \"float\", \"strategy\": "
       "\"tensor_group\", \"group_size\": 16, \"symmetric\": true}",
       "nvfp4-pack-quantized", 4.5, 4},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(ok); i++) {
    char q[1024];
    snprintf(q, sizeof(q),
             "\"model_type\": \"mistral\", \"quantization_config\": "
             "{\"config_groups\": {\"group_0\": {\"input_activations\": "
             "null, \"targets\": [\"Linear\"], \"weights\": %s}}, "
             "\"format\": \"%s\", \"ignore\": [\"lm_head\"], "
             "\"quant_method\": \"compressed-tensors\", "
             "\"quantization_status\": \"compressed\"},",
             ok[i].weights, ok[i].format);
    char *t = tu_replace(base, "\"model_type\": \"mistral\",", q);
    Error e;
    Model *m = from_text(t, &e);
    if (!m)
      err_print(stderr, &e);
    assert_non_null(m);
    assert_true(m->quant.known);
    assert_string_equal(m->quant.method, "compressed-tensors");
    assert_double_exact(m->quant.w_bits, ok[i].bits);
    assert_int_equal(m->quant.nominal_w, ok[i].nominal);
    model_free(m);
    free(t);
  }
  const char *two =
      "\"model_type\": \"mistral\", \"quantization_config\": "
      "{\"config_groups\": {\"group_0\": {\"targets\": [\"Linear\"], "
      "\"weights\": {\"num_bits\": 8, \"strategy\": \"channel\"}}, "
      "\"group_1\": {\"targets\": [\"re:.*mlp.*\"], \"weights\": "
      "{\"num_bits\": 4, \"strategy\": \"group\", \"group_size\": 128}}}, "
      "\"format\": \"mixed-precision\", \"quant_method\": "
      "\"compressed-tensors\"},";
  char *t = tu_replace(base, "\"model_type\": \"mistral\",", two);
  Error e;
  Model *m = from_text(t, &e);
  assert_non_null(m);
  assert_false(m->quant.known);
  assert_string_equal(m->quant.why, "config groups of different widths");
  model_free(m);
  free(t);
  /* ignore: routers ("re:.*mlp.gate$", a layer's "...mlp.gate"), lm_head
   * and a vision tower stay modelled; an attention projection or a
   * gate_proj left at 16 bits is a partial checkpoint: not modelled */
  static const struct {
    const char *ignore;
    bool known;
  } ig[] = {
      {"[\"lm_head\", \"re:.*mlp.gate$\", \"model.layers.3.mlp.gate\", "
       "\"re:vision_tower.*\"]",
       true},
      {"[\"lm_head\", \"re:.*self_attn.*\"]", false},
      {"[\"model.layers.0.mlp.gate_proj\"]", false},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(ig); i++) {
    char q[1024];
    snprintf(q, sizeof(q),
             "\"model_type\": \"mistral\", \"quantization_config\": "
             "{\"config_groups\": {\"group_0\": {\"targets\": "
             "[\"Linear\"], \"weights\": {\"num_bits\": 8, \"type\": "
             "\"float\", \"strategy\": \"channel\"}}}, \"ignore\": %s, "
             "\"quant_method\": \"compressed-tensors\"},",
             ig[i].ignore);
    char *ti = tu_replace(base, "\"model_type\": \"mistral\",", q);
    Error ei;
    Model *mi = from_text(ti, &ei);
    if (!mi)
      err_print(stderr, &ei);
    assert_non_null(mi);
    assert_int_equal(mi->quant.known, ig[i].known);
    if (!ig[i].known)
      assert_string_equal(mi->quant.why, "ignore keeps more than lm_head, "
                                         "embeddings, routers and vision "
                                         "layers at 16 bits");
    model_free(mi);
    free(ti);
  }
  const char *sparse =
      "\"model_type\": \"mistral\", \"quantization_config\": "
      "{\"config_groups\": {\"group_0\": {\"weights\": {\"num_bits\": 8}}}, "
      "\"format\": \"sparse-24-bitmask\", \"quant_method\": "
      "\"compressed-tensors\"},";
  t = tu_replace(base, "\"model_type\": \"mistral\",", sparse);
  m = from_text(t, &e);
  assert_non_null(m);
  assert_false(m->quant.known);
  assert_string_equal(m->quant.why, "a dense or 2:4-sparse format");
  model_free(m);
  {
    /* lmrun's JSON says why, as its table does */
    char *dir = tu_tmpdir(), *cfg = path_join(dir, "config.json"), *out = NULL;
    tu_write(cfg, t);
    assert_int_equal(tu_run(&out, "%s '%s' -S 64 --format json",
                            tu_bin("lmrun"), cfg),
                     0);
    assert_contains(out, "\"modelled\": false");
    assert_contains(out, "\"why\": \"a dense or 2:4-sparse format\"");
    free(out);
    free(cfg);
    tu_rm_rf(dir);
    free(dir);
  }
  free(t);
  const char *bad =
      "\"model_type\": \"mistral\", \"quantization_config\": "
      "{\"config_groups\": {\"group_0\": {\"weights\": {\"num_bits\": "
      "\"8\"}}}, \"quant_method\": \"compressed-tensors\"},";
  t = tu_replace(base, "\"model_type\": \"mistral\",", bad);
  m = from_text(t, &e);
  assert_null(m);
  char *txt = tu_err_text(&e);
  assert_contains(txt, "num_bits must be a whole number");
  assert_contains(txt, ".quantization_config.config_groups.group_0.weights");
  free(txt);
  free(t);
  free(base);
}

/* A template that declares no quantization_config (one written before
 * its family had quantized checkpoints, or by the agent): the config's
 * quantization_config is still reported, as not modelled, not passed
 * over. gpt2's template with its declaration renamed away. */
static void test_config_undeclared_quantization_reported(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *tmpl = tu_read("models/arch/gpt2.json");
  char *t = tu_replace(tmpl, "\"quantization_config\": {",
                       "\"quantization_config_undeclared\": {");
  char *tp = path_join(dir, "gpt2.json");
  tu_write(tp, t);
  char *base = tu_read("test/data/configs/gpt2.json");
  char *c1 = tu_replace(base, "\"model_type\": \"gpt2\",",
                        "\"model_type\": \"gpt2\", \"quantization_config\": "
                        "{\"bits\": 4, \"group_size\": 128, \"quant_method\": "
                        "\"gptq\"},");
  Error e;
  err_clear(&e);
  Model *m = model_from_config("config.json", c1, strlen(c1), NULL, dir, reg,
                               &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  assert_string_equal(m->quant.method, "gptq");
  assert_false(m->quant.known);
  model_free(m);
  /* the shipped gpt2 template declares it: modelled */
  m = from_text(c1, &e);
  assert_non_null(m);
  assert_true(m->quant.known);
  assert_double_exact(m->quant.w_bits, 4 + 20.0 / 128);
  model_free(m);
  free(c1);
  free(base);
  free(tp);
  free(t);
  free(tmpl);
  tu_rm_rf(dir);
  free(dir);
}

/* A config carrying both rope_scaling and transformers 5's
 * rope_parameters (NVIDIA-NeMo/Megatron-Bridge's Llama-3.2-1B fixture,
 * transformers_version 5.0.0: rope_scaling is the Hub's llama3 object,
 * rope_parameters only {"rope_type": "llama3", "rope_theta": 500000.0}).
 * transformers 5's convert_rope_params_to_dict takes `rope_scaling or
 * rope_parameters`, so rope_parameters is never read and its missing
 * factor is no error; transformers 4 ignores rope_parameters. Once refused
 * ("rope_parameters of type llama3 needs a numeric 'factor'").
 * Llama-3.2-1B by hand: V = 128256, h = 2048, 16 layers, 32 heads,
 * 8 key/value heads, head_dim 64, MLP 8192, tied:
 *   embedding 128256 * 2048                          =   262,668,288
 *   per layer q, o 2 * 2048 * 2048 = 8,388,608; k, v 2 * 2048 * 512 =
 *   2,097,152; MLP 3 * 2048 * 8192 = 50,331,648; 2 norms 4096
 *   = 60,821,504, times 16                           =   973,144,064
 *   final norm                                       =         2,048
 *   total                                            = 1,235,814,400
 * (the Hub's safetensors figure for meta-llama/Llama-3.2-1B). Without
 * rope_scaling, rope_parameters alone is read and its missing factor is
 * the error transformers' validation raises. */
static void test_config_rope_scaling_over_parameters(void **state) {
  (void)state;
  Model *m = from_file("test/data/configs/llama-3.2-1b-rope-both.json");
  assert_double_exact(params_of(m), 1235814400.0);
  model_free(m);
  char *base = tu_read("test/data/configs/llama-3.2-1b-rope-both.json");
  char *t1 = tu_replace(base, "\"rope_scaling\": {", "\"rope_scaling_\": {");
  Error e;
  m = from_text(t1, &e);
  assert_null(m);
  char *txt = tu_err_text(&e);
  assert_contains(txt, "rope_parameters of type llama3 needs a numeric 'factor'");
  free(txt);
  /* an empty rope_scaling is falsy in Python: rope_parameters is read */
  char *t2 = tu_replace(base, "\"rope_scaling\": {",
                        "\"rope_scaling\": {}, \"rope_scaling_\": {");
  m = from_text(t2, &e);
  assert_null(m);
  free(t2);
  free(t1);
  free(base);
}

/* bitsandbytes checkpoints saved by transformers 4.27-4.31 have no
 * quant_method: their quantization_config holds load_in_8bit /
 * load_in_4bit (the block below is uf-aice-lab/Llama_Lora's, commit
 * 379bae4, transformers 4.30.2, verbatim). AutoQuantizationConfig's
 * from_dict takes a true load_in_8bit or load_in_4bit as bitsandbytes,
 * whatever quant_method says, and raises only when neither flag is set and
 * quant_method is absent. bitsandbytes is not modelled (weights at
 * --w-bits); the parameter count is Llama-3-8B's 8,030,261,248. */
static void test_config_bnb_without_quant_method(void **state) {
  (void)state;
  char *base = tu_read("test/data/configs/llama-3-8b.json");
  static const char block[] =
      "\"quantization_config\": {\n"
      "    \"bnb_4bit_compute_dtype\": \"float32\",\n"
      "    \"bnb_4bit_quant_type\": \"fp4\",\n"
      "    \"bnb_4bit_use_double_quant\": false,\n"
      "    \"llm_int8_enable_fp32_cpu_offload\": false,\n"
      "    \"llm_int8_has_fp16_weight\": false,\n"
      "    \"llm_int8_skip_modules\": null,\n"
      "    \"llm_int8_threshold\": 6.0,\n"
      "    \"load_in_4bit\": false,\n"
      "    \"load_in_8bit\": true\n"
      "  },\n  \"rms_norm_eps\"";
  char *t1 = tu_replace(base, "\"rms_norm_eps\"", block);
  Error e;
  Model *m = from_text(t1, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  assert_false(m->quant.known);
  assert_string_equal(m->quant.method, "bitsandbytes");
  assert_double_exact(params_of(m), 8030261248.0);
  model_free(m);
  /* 4-bit, and a flag overriding a quant_method as transformers does */
  char *t2 = tu_replace(t1, "\"load_in_4bit\": false", "\"load_in_4bit\": true");
  char *t3 = tu_replace(t2, "\"load_in_8bit\": true",
                        "\"load_in_8bit\": false, \"quant_method\": \"gptq\"");
  m = from_text(t3, &e);
  assert_non_null(m);
  assert_false(m->quant.known);
  assert_string_equal(m->quant.method, "bitsandbytes");
  model_free(m);
  /* neither flag set and no quant_method: transformers' ValueError */
  char *t4 = tu_replace(t1, "\"load_in_8bit\": true", "\"load_in_8bit\": false");
  m = from_text(t4, &e);
  assert_null(m);
  char *txt = tu_err_text(&e);
  assert_contains(txt, "quantization_config has no quant_method");
  assert_contains(txt, ".quantization_config");
  free(txt);
  free(t4);
  free(t3);
  free(t2);
  free(t1);
  free(base);
}

/* architectures[0] names the head transformers builds; the templates
 * model the causal LM. Skywork/Skywork-Reward-Llama-3.1-8B is a
 * LlamaForSequenceClassification (a reward model): the note says so and
 * the count stays LlamaForCausalLM's. By hand, V = 128257, h = 4096,
 * 32 layers, 8 key/value heads of 128 (k, v 1024 wide), MLP 14336:
 *   per layer 2*4096*4096 + 2*4096*1024 + 3*4096*14336 + 2*4096
 *     = 33,554,432 + 8,388,608 + 176,160,768 + 8,192
 *     = 218,112,000; times 32                    = 6,979,584,000
 *   embed_tokens and lm_head 2 * 128257 * 4096 = 1,050,681,344
 *   final norm                                 =         4,096
 *   total                                      = 8,030,269,440
 * (the checkpoint itself, with a 1 x 4096 score in place of lm_head, holds
 * 8,030,269,440 - 525,340,672 + 4,096 = 7,504,932,864 parameters: 15.01 GB
 * in bf16, its four shards' 4.98 + 5 + 4.92 + 0.117 GB). A causal-LM head
 * (ForCausalLM, LMHeadModel, ForConditionalGeneration) adds no note. */
static void test_config_head_note(void **state) {
  (void)state;
  Model *m = from_file("test/data/configs/skywork-reward-llama-3.1-8b.json");
  assert_double_exact(params_of(m), 8030269440.0);
  assert_non_null(m->note);
  assert_contains(m->note, "architectures names LlamaForSequenceClassification");
  model_free(m);
  char *base = tu_read("test/data/configs/skywork-reward-llama-3.1-8b.json");
  static const char *const lm[] = {"LlamaForCausalLM", "LlamaLMHeadModel",
                                   "LlamaForConditionalGeneration"};
  for (size_t i = 0; i < LM_ARRAY_LEN(lm); i++) {
    char *t = tu_replace(base, "LlamaForSequenceClassification", lm[i]);
    Error e;
    m = from_text(t, &e);
    assert_non_null(m);
    assert_null(m->note);
    model_free(m);
    free(t);
  }
  free(base);
  /* with a template's own note, both are said */
  char *g = tu_read("test/data/configs/gemma-3-4b-it.json");
  char *t = tu_replace(g, "Gemma3ForConditionalGeneration", "Gemma3Model");
  Error e;
  m = from_text(t, &e);
  assert_non_null(m);
  assert_contains(m->note, "the vision tower (SigLIP)");
  assert_contains(m->note, "; architectures names Gemma3Model");
  model_free(m);
  free(t);
  free(g);
}

/* A template that "wraps" another: Mistral3ForConditionalGeneration's
 * language model is a config of its own under text_config (model_type
 * mistral), which the mistral template reads; the vision tower and the
 * projector are not counted and the note says so. Mistral Small 3.1's
 * language model by hand: V = 131072, h = 5120, 40 layers, 32 heads of
 * 128 (4096 wide), 8 key/value heads (1024), MLP 32768, untied:
 *   embed_tokens + lm_head 2 x 131072 x 5120          =  1,342,177,280
 *   per layer q, o 2 x 5120 x 4096 = 41,943,040; k, v 2 x 5120 x 1024 =
 *   10,485,760; MLP 3 x 5120 x 32768 = 503,316,480; 2 norms 10,240
 *   = 555,755,520, times 40                           = 22,230,220,800
 *   final norm                                        =          5,120
 *   total                                             = 23,572,403,200
 * (Mistral-Small-24B-Base-2501, the same language model without vision:
 * Hub 23.6B). Errors are located inside text_config; a text_config
 * without model_type is Mistral3Config's default, mistral; a family
 * without a template is named. */
static void test_config_wraps(void **state) {
  (void)state;
  Model *m = from_file("test/data/configs/mistral-small-3.1-24b-instruct-2503.json");
  assert_double_exact(params_of(m), 23572403200.0);
  assert_string_equal(m->family, "mistral3");
  assert_non_null(m->note);
  assert_contains(m->note, "the vision tower (Pixtral)");
  model_free(m);
  char *base = tu_read("test/data/configs/mistral-small-3.1-24b-instruct-2503.json");
  char *t1 = tu_replace(base, "\"model_type\": \"mistral\",", "");
  Error e;
  m = from_text(t1, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  assert_double_exact(params_of(m), 23572403200.0);
  model_free(m);
  char *t2 = tu_replace(base, "\"hidden_size\": 5120", "\"hidden_size\": -1");
  m = from_text(t2, &e);
  assert_null(m);
  char *txt = tu_err_text(&e);
  assert_contains(txt, ".text_config.hidden_size");
  free(txt);
  char *t3 = tu_replace(base, "\"model_type\": \"mistral\",",
                        "\"model_type\": \"mistral4\",");
  m = from_text(t3, &e);
  assert_null(m);
  txt = tu_err_text(&e);
  assert_contains(txt, "text_config.model_type 'mistral4' has no template");
  assert_contains(txt, ".text_config.model_type");
  free(txt);
  char *t4 = tu_replace(base, "\"text_config\"", "\"text_config_\"");
  m = from_text(t4, &e);
  assert_null(m);
  txt = tu_err_text(&e);
  assert_contains(txt, "reads the language model from 'text_config'");
  free(txt);
  free(t4);
  free(t3);
  free(t2);
  free(t1);
  free(base);
}

/* LLaVA-1.5-7B (llava-hf/llava-1.5-7b-hf's config.json): its text_config
 * names model_type llama and lists only vocab_size 32064,
 * max_position_embeddings 4096 and rms_norm_eps; LlavaConfig builds it as
 * LlamaConfig(**text_config), so the sizes are LlamaConfig's defaults
 * (h = 4096, MLP 11008, 32 layers, 32 heads, as many key/value heads),
 * which llava.json's wraps.class_defaults carry. By hand:
 *   embed_tokens + lm_head (untied) 2 x 32064 x 4096   =    262,668,288
 *   per layer q, k, v, o 4 x 4096^2 = 67,108,864; MLP 3 x 4096 x 11008 =
 *   135,266,304; 2 norms 8,192 = 202,383,360, x 32     =  6,476,267,520
 *   final norm                                         =          4,096
 *   total                                              =  6,738,939,904
 * (the Hub's 7.06B adds the CLIP ViT-L/14-336 tower, about 303.5M, and
 * the 1024 -> 4096 -> 4096 projector, 20,979,712, neither counted).
 * A text_config that gives a size overrides the class default
 * (LLaVA-1.5-13B's: h 5120, MLP 13824, 40 layers, 40 heads:
 *   2 x 32064 x 5120 = 328,335,360; per layer 4 x 5120^2 + 3 x 5120 x
 *   13824 + 2 x 5120 = 104,857,600 + 212,336,640 + 10,240 = 317,204,480,
 *   x 40 = 12,688,179,200; final norm 5,120; total 13,016,519,680).
 * A class default for a key the target does not declare is an error in
 * the wrapper template, located there. */
static void test_config_wraps_class_defaults(void **state) {
  (void)state;
  Model *m = from_file("test/data/configs/llava-1.5-7b-hf.json");
  assert_double_exact(params_of(m), 6738939904.0);
  assert_string_equal(m->family, "llava");
  assert_contains(m->note, "the vision tower (CLIP)");
  model_free(m);
  char *base = tu_read("test/data/configs/llava-1.5-7b-hf.json");
  char *t1 = tu_replace(base, "\"max_position_embeddings\": 4096,",
                        "\"max_position_embeddings\": 4096, \"hidden_size\": "
                        "5120, \"intermediate_size\": 13824, "
                        "\"num_hidden_layers\": 40, \"num_attention_heads\": "
                        "40,");
  Error e;
  m = from_text(t1, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  assert_double_exact(params_of(m), 13016519680.0);
  model_free(m);
  char *dir = tu_tmpdir();
  char *tl = tu_read("models/arch/llava.json");
  char *tl2 = tu_replace(tl, "\"num_attention_heads\": 32\n",
                         "\"num_attention_heads\": 32, \"n_experts\": 8\n");
  char *p1 = path_join(dir, "llava.json");
  char *p2 = path_join(dir, "llama.json");
  char *ll = tu_read("models/arch/llama.json");
  tu_write(p1, tl2);
  tu_write(p2, ll);
  err_clear(&e);
  m = model_from_config("config.json", base, strlen(base), NULL, dir, reg, &e);
  assert_null(m);
  char *txt = tu_err_text(&e);
  assert_contains(txt, "class_defaults.llama is");
  assert_contains(txt, ".wraps.class_defaults.llama.n_experts");
  assert_contains(txt, "llava.json");
  free(txt);
  tu_rm_rf(dir);
  free(dir);
  free(p1);
  free(p2);
  free(ll);
  free(tl2);
  free(tl);
  free(t1);
  free(base);
}

/* LLaVA-NeXT (llava-hf/llava-v1.6-mistral-7b-hf): its text_config, as
 * TensorRT-LLM's test_modeling_llava_next.py quotes it (LLAVA_NEXT_7B_CONFIG,
 * transformers 4.39.0.dev0), names mistral and leaves hidden_size,
 * num_hidden_layers and num_attention_heads to MistralConfig's defaults
 * (4096, 32, 32). By hand, V = 32064, 8 key/value heads of 128, MLP
 * 14336, untied:
 *   embed_tokens + lm_head 2 x 32064 x 4096            =    262,668,288
 *   per layer q, o 2 x 4096^2 = 33,554,432; k, v 2 x 4096 x 1024 =
 *   8,388,608; MLP 3 x 4096 x 14336 = 176,160,768; 2 norms 8,192
 *   = 218,112,000, x 32                                =  6,979,584,000
 *   final norm                                         =          4,096
 *   total                                              =  7,242,256,384
 * (Mistral-7B's 7,241,732,096 plus 64 more rows in each of the two
 * vocabulary matrices). sliding_window null: no window. The config:
 * test/data/configs/llava-v1.6-mistral-7b-hf.json (provenance in its
 * README). */
static void test_config_llava_next_mistral(void **state) {
  (void)state;
  Model *m = from_file("test/data/configs/llava-v1.6-mistral-7b-hf.json");
  assert_double_exact(params_of(m), 7242256384.0);
  assert_string_equal(m->family, "llava_next");
  assert_contains(m->note, "image_newline");
  model_free(m);
}

/* A template is checked by the loader model files go through; errors in
 * it point into the template. */
static void test_config_template_errors(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *tpath = path_join(dir, "llama.json");
  char *tmpl = tu_read("models/arch/llama.json");
  char *cfg = tu_read("test/data/configs/llama-3-8b.json");
  static const struct {
    const char *from, *to, *msg;
  } cases[] = {
      {"\"min\": 1,", "\"minimum\": 1,", "unknown member 'minimum'"},
      {"\"default\": \"{num_attention_heads}\"", "\"default\": \"{head_dim}\"",
       "unknown config key declared before this one 'head_dim'"},
      {"\"in_features\": \"{hidden_size}\"", "\"in_features\": \"{hiden}\"",
       "unknown variable 'hiden'"},
      {"\"tied\": \"{tie_word_embeddings}\"", "\"tied\": \"{B}\"",
       "unknown config value 'B'"},
      {"\"format\": \"lm-predictor-template\"", "\"format\": \"x\"",
       "a template has \"format\": \"lm-predictor-template\""},
      {"\"type\": \"flag\"", "\"type\": \"bool\"",
       "type must be number, flag, count, layer_count, choice, rope_scaling or "
       "quantization"},
      {"\"type\": \"flag\"", "\"type\": \"layer_count\"",
       "a layer_count declares 'every' and 'length'"},
      {"\"doc\": \"decoder layers\",", "\"doc\": \"decoder layers\", "
       "\"aliases\": \"n_layer\",",
       "aliases must be a non-empty array of config key names"},
      {"\"default\": \"silu\"", "\"default\": \"silu\", \"variable\": \"1x\"",
       "variable must be an identifier"},
      {"\"default\": \"silu\"",
       "\"default\": \"silu\", \"variable\": \"hidden_size\"",
       "variable 'hidden_size' is declared twice"},
      {"\"op\": \"rope\"", "\"op\": \"rope\", \"when\": \"{nope}\"",
       "nope"},
      {"\"op\": \"rope\"", "\"op\": \"rope\", \"at\": 1",
       "unknown member 'at'"},
      /* a "null" value is checked like a default, even when unused */
      {"\"default\": \"{hidden_size} // {num_attention_heads}\"",
       "\"default\": \"{hidden_size} // {num_attention_heads}\", \"null\": "
       "\"{nope}\"",
       "unknown config key declared before this one 'nope'"},
      {"\"type\": \"flag\"", "\"type\": \"flag\", \"null\": 1",
       "'null' (the value of an explicit null) is for number keys; "
       "attention_bias is a flag"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char *t = tu_replace(tmpl, cases[i].from, cases[i].to);
    tu_write(tpath, t);
    Error e;
    err_clear(&e);
    Model *m =
        model_from_config("config.json", cfg, strlen(cfg), NULL, dir, reg, &e);
    if (m || !strstr(e.msg, cases[i].msg)) {
      char *txt = tu_err_text(&e);
      print_error("case %zu: %s\n", i, txt);
      free(txt);
    }
    assert_null(m);
    assert_contains(e.msg, cases[i].msg);
    assert_contains(e.file, "llama.json");
    assert_true(e.line > 0);
    free(t);
  }
  tu_rm_rf(dir);
  free(dir);
  free(tpath);
  free(tmpl);
  free(cfg);
}

/* A template given as text (lmgen --arch) and its validation member. */
static void test_config_template_text(void **state) {
  (void)state;
  char *tmpl = tu_read("models/arch/llama.json");
  char *cfg = tu_read("test/data/configs/llama-3.2-1b.json");
  Error e;
  err_clear(&e);
  Model *m = model_from_template("config.json", cfg, strlen(cfg), NULL,
                                 "answer.txt", tmpl, strlen(tmpl), reg, &e);
  assert_non_null(m);
  assert_null(m->tmpl_pending);
  assert_string_equal(m->family, "llama");
  model_free(m);
  char *p = tu_replace(tmpl, "\"config\": {",
                       "\"validation\": {\"status\": \"pending\", \"by\": "
                       "\"agent:x\"},\n  \"config\": {");
  m = model_from_template("config.json", cfg, strlen(cfg), NULL, "answer.txt",
                          p, strlen(p), reg, &e);
  assert_non_null(m);
  assert_string_equal(m->tmpl_pending, "answer.txt");
  model_free(m);
  free(p);
  static const struct {
    const char *to, *msg, *where;
  } bad[] = {
      {"\"validation\": {\"status\": \"done\"},",
       "validation.status must be \"validated\" or \"pending\"",
       ".validation.status"},
      {"\"validation\": {\"status\": \"pending\", \"who\": \"x\"},",
       "unknown member 'who' in validation", ".validation.who"},
      {"\"validation\": [],", "validation is {\"status\"", ".validation"},
      {"\"validation\": {\"by\": 1},", "validation.by must be a string",
       ".validation.by"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(bad); i++) {
    char to[256];
    snprintf(to, sizeof(to), "%s\n  \"config\": {", bad[i].to);
    p = tu_replace(tmpl, "\"config\": {", to);
    err_clear(&e);
    m = model_from_template("config.json", cfg, strlen(cfg), NULL, "a.txt", p,
                            strlen(p), reg, &e);
    assert_null(m);
    assert_contains(e.msg, bad[i].msg);
    assert_string_equal(e.where, bad[i].where);
    assert_string_equal(e.file, "a.txt");
    assert_true(e.line > 0);
    free(p);
  }
  free(tmpl);
  free(cfg);
}

/* config_locate: what lmgen --arch takes, as lmrun takes it. */
static void test_config_locate(void **state) {
  (void)state;
  ConfigText ct;
  Error e;
  err_clear(&e);
  assert_int_equal(config_locate("test/data/agent/arch/minillama", &ct, &e), 0);
  assert_string_equal(ct.path, "test/data/agent/arch/minillama/config.json");
  assert_string_equal(ct.dir, "test/data/agent/arch/minillama");
  assert_null(ct.id);
  char mt[80];
  assert_int_equal(config_model_type(&ct, mt, sizeof(mt), &e), 0);
  assert_string_equal(mt, "minillama");
  config_text_free(&ct);
  assert_int_equal(config_locate("test/data/configs/gpt2.json", &ct, &e), 0);
  assert_string_equal(ct.dir, "test/data/configs");
  config_text_free(&ct);
  err_clear(&e);
  assert_int_equal(config_locate("models/llama-2-7b-hf.json", &ct, &e), -1);
  assert_contains(e.msg, "a model file, not a Hugging Face config.json");
  err_clear(&e);
  assert_int_equal(config_locate("test/data", &ct, &e), -1);
  assert_contains(e.msg, "a directory without config.json");
  /* model_type errors, located in the config */
  static const struct {
    const char *text, *msg;
  } bad[] = {
      {"{\"hidden_size\": 1}", "no model_type"},
      {"{\"model_type\": 3}", "model_type must be a string"},
      {"{\"model_type\": \"../x\"}", "model_type '../x' is not a family name"},
      {"{\"model_type\": \"x\",}", "invalid JSON"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(bad); i++) {
    ConfigText t = {.path = "c.json", .text = (char *)bad[i].text,
                    .len = strlen(bad[i].text)};
    err_clear(&e);
    assert_int_equal(config_model_type(&t, mt, sizeof(mt), &e), -1);
    assert_contains(e.msg, bad[i].msg);
    assert_string_equal(e.file, "c.json");
  }
  /* a config with NaN outside the keys read still gives its model_type */
  ConfigText t = {.path = "c.json",
                  .text = "{\"model_type\": \"llama\", \"x\": NaN}"};
  t.len = strlen(t.text);
  assert_int_equal(config_model_type(&t, mt, sizeof(mt), &e), 0);
  assert_string_equal(mt, "llama");
}

/* A snapshot directory: config.json plus model.safetensors.index.json. */
static void test_config_directory(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *cfg = path_join(dir, "config.json");
  tu_copy("test/data/configs/llama-3.2-1b.json", cfg);
  Model *m = from_file(dir);
  assert_string_equal(m->family, "llama");
  assert_double_exact(m->ckpt_bytes, -1);
  model_free(m);
  char *idx = path_join(dir, "model.safetensors.index.json");
  tu_write(idx, "{\"metadata\": {\"total_size\": 2471628800}, "
                "\"weight_map\": {}}");
  m = from_file(dir);
  assert_double_exact(m->ckpt_bytes, 2471628800.0);
  model_free(m);
  /* the checkpoint's width follows torch_dtype / dtype */
  Model *q = from_file("test/data/configs/qwen3-8b.json"); /* dtype float32 */
  assert_double_exact(q->ckpt_elem_bytes, 4);
  model_free(q);
  q = from_file("test/data/configs/llama-3.2-1b.json"); /* bfloat16 */
  assert_double_exact(q->ckpt_elem_bytes, 2);
  model_free(q);
  /* a snapshot of huggingface_hub's cache names its model */
  char *snap = path_join(dir, "models--meta-llama--Llama-3.2-1B/snapshots/c0");
  char *scfg = path_join(snap, "config.json");
  assert_int_equal(tu_run(NULL, "mkdir -p '%s'", snap), 0);
  tu_copy("test/data/configs/llama-3.2-1b.json", scfg);
  m = from_file(snap);
  assert_string_equal(m->id, "meta-llama/Llama-3.2-1B");
  model_free(m);
  free(snap);
  free(scfg);
  /* and a model file keeps loading as one */
  m = from_file("models/mistral-7b-v0.1.json");
  assert_false(m->from_config);
  assert_null(m->family);
  model_free(m);
  tu_rm_rf(dir);
  free(dir);
  free(cfg);
  free(idx);
}

/* Every template is exercised: some real config in test/data/configs has
 * its model_type and loads through it. */
static void test_config_every_template_has_a_config(void **state) {
  (void)state;
  DIR *d = opendir("models/arch");
  assert_non_null(d);
  struct dirent *t;
  int templates = 0;
  while ((t = readdir(d))) {
    size_t l = strlen(t->d_name);
    if (l < 6 || strcmp(t->d_name + l - 5, ".json") != 0)
      continue;
    templates++;
    char type[128];
    snprintf(type, sizeof(type), "\"model_type\": \"%.*s\"", (int)(l - 5),
             t->d_name);
    DIR *c = opendir("test/data/configs");
    assert_non_null(c);
    struct dirent *f;
    int found = 0;
    while ((f = readdir(c))) {
      if (!strstr(f->d_name, ".json"))
        continue;
      char *p = path_join("test/data/configs", f->d_name);
      char *text = tu_read(p);
      if (text && strstr(text, type)) {
        Model *m = from_file(p);
        assert_true(params_of(m) > 0);
        model_free(m);
        found++;
      }
      free(text);
      free(p);
    }
    closedir(c);
    if (!found)
      print_error("no config in test/data/configs for %s\n", t->d_name);
    assert_true(found > 0);
  }
  closedir(d);
  assert_true(templates >= 4);
}

/* nested_config: keys read inside text_config when the config has one,
 * the template's note carried to the report. */
static void test_config_nested(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *tpath = path_join(dir, "llama.json");
  char *tmpl = tu_read("models/arch/llama.json");
  char *t = tu_replace(tmpl, "\"config\": {",
                       "\"nested_config\": {\"key\": \"text_config\", "
                       "\"note\": \"the vision tower is not counted\"},\n"
                       "  \"config\": {");
  tu_write(tpath, t);
  char *inner = tu_read("test/data/configs/llama-3-8b.json");
  Buf b;
  buf_init(&b);
  buf_printf(&b,
             "{\"model_type\": \"llama\", \"hidden_size\": 7,\n"
             " \"vision_config\": {\"hidden_size\": Infinity},\n"
             " \"text_config\": %s}",
             inner);
  Error e;
  err_clear(&e);
  Model *m =
      model_from_config("config.json", buf_str(&b), b.len, NULL, dir, reg, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  assert_string_equal(m->note, "the vision tower is not counted");
  assert_double_exact(params_of(m), 8030261248.0);
  model_free(m);
  /* an error inside text_config points there */
  char *bad =
      tu_replace(buf_str(&b), "\"hidden_size\": 4096", "\"hidden_size\": 0");
  m = model_from_config("config.json", bad, strlen(bad), NULL, dir, reg, &e);
  assert_null(m);
  assert_contains(e.msg, "hidden_size is 0");
  int line, col;
  tu_position_of(bad, "0,\n  \"initializer_range\"", 1, 0, &line, &col);
  assert_int_equal(e.line, line);
  assert_int_equal(e.col, col);
  free(bad);
  /* without text_config the keys are read at the top level, no note */
  m = model_from_config("config.json", inner, strlen(inner), NULL, dir, reg,
                        &e);
  assert_non_null(m);
  assert_null(m->note);
  model_free(m);
  /* note_at_top: the note in the top-level layout too (qwen2_5_vl) */
  char *t2 = tu_replace(tmpl, "\"config\": {",
                        "\"nested_config\": {\"key\": \"text_config\", "
                        "\"note\": \"the vision tower is not counted\", "
                        "\"note_at_top\": true},\n  \"config\": {");
  tu_write(tpath, t2);
  m = model_from_config("config.json", inner, strlen(inner), NULL, dir, reg,
                        &e);
  assert_non_null(m);
  assert_string_equal(m->note, "the vision tower is not counted");
  assert_double_exact(params_of(m), 8030261248.0);
  model_free(m);
  /* note_at_top must be a boolean and needs a note: located template
   * errors */
  char *t3 = tu_replace(tmpl, "\"config\": {",
                        "\"nested_config\": {\"key\": \"text_config\", "
                        "\"note_at_top\": true},\n  \"config\": {");
  tu_write(tpath, t3);
  err_clear(&e);
  m = model_from_config("config.json", inner, strlen(inner), NULL, dir, reg,
                        &e);
  assert_null(m);
  assert_contains(e.msg, "note_at_top");
  assert_contains(e.file, "llama.json");
  char *t4 = tu_replace(tmpl, "\"config\": {",
                        "\"nested_config\": {\"key\": \"text_config\", "
                        "\"note\": \"n\", \"note_at_top\": 1},\n"
                        "  \"config\": {");
  tu_write(tpath, t4);
  err_clear(&e);
  m = model_from_config("config.json", inner, strlen(inner), NULL, dir, reg,
                        &e);
  assert_null(m);
  assert_contains(e.msg, "note_at_top");
  /* "outer": the key read beside text_config (Qwen3VLConfig's
   * tie_word_embeddings): true at the top ties lm_head, 128256 x 4096
   * fewer; inside text_config it is not read */
  char *t5 = tu_replace(t, "\"type\": \"flag\",\n      \"default\": 0\n    },\n"
                           "    \"hidden_act\"",
                        "\"type\": \"flag\",\n      \"default\": 0,\n"
                        "      \"outer\": true\n    },\n    \"hidden_act\"");
  assert_true(strcmp(t5, t) != 0);
  tu_write(tpath, t5);
  Buf b2;
  buf_init(&b2);
  buf_printf(&b2, "{\"model_type\": \"llama\", \"tie_word_embeddings\": true,\n"
                  " \"text_config\": %s}", inner);
  err_clear(&e);
  m = model_from_config("config.json", buf_str(&b2), b2.len, NULL, dir, reg,
                        &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  assert_double_exact(params_of(m), 8030261248.0 - 128256 * 4096.0);
  model_free(m);
  buf_free(&b2);
  /* "outer" other than true: a located template error */
  char *t6 = tu_replace(t5, "\"outer\": true", "\"outer\": 1");
  tu_write(tpath, t6);
  err_clear(&e);
  m = model_from_config("config.json", buf_str(&b), b.len, NULL, dir, reg, &e);
  assert_null(m);
  assert_contains(e.msg, "outer");
  assert_contains(e.file, "llama.json");
  free(t6);
  free(t5);
  free(t4);
  free(t3);
  free(t2);
  buf_free(&b);
  free(inner);
  free(t);
  free(tmpl);
  tu_rm_rf(dir);
  free(dir);
  free(tpath);
}

/* same_as: a template that names another family's (kimi_k2 -> deepseek_v3):
 * the config is read by that template, the family is the config's own;
 * anything else in the alias, a missing target or a chain is an error
 * located in the alias. */
static void test_config_same_as(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *llama = path_join(dir, "llama.json");
  tu_copy("models/arch/llama.json", llama);
  char *apath = path_join(dir, "myllama.json");
  char *orig = tu_read("test/data/configs/llama-3-8b.json");
  char *cfg = tu_replace(orig, "\"model_type\": \"llama\"",
                         "\"model_type\": \"myllama\"");
  static const char *good =
      "{\"format\": \"lm-predictor-template\", \"model_type\": \"myllama\",\n"
      " \"same_as\": \"llama\", \"description\": \"d\", \"source\": \"s\"}\n";
  tu_write(apath, good);
  Error e;
  err_clear(&e);
  Model *m = model_from_config("config.json", cfg, strlen(cfg), NULL, dir, reg, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  assert_string_equal(m->family, "myllama");
  assert_double_exact(params_of(m), 8030261248.0);
  model_free(m);
  /* "defaults": the alias's config class defaults differ (Falcon's
   * RefinedWeb). mlp_bias, absent from the config, now defaults to true:
   * gate and up biases (14336 each) and down's (4096) in 32 layers,
   * 32 x 32768 = 1,048,576 more; attention_bias, which the config sets
   * false, keeps the config's value. */
  tu_write(apath,
           "{\"format\": \"lm-predictor-template\", \"model_type\": "
           "\"myllama\",\n \"same_as\": \"llama\", \"defaults\": "
           "{\"mlp_bias\": true, \"attention_bias\": 1}}\n");
  err_clear(&e);
  m = model_from_config("config.json", cfg, strlen(cfg), NULL, dir, reg, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  assert_double_exact(params_of(m), 8030261248.0 + 32 * 32768.0);
  model_free(m);
  static const struct {
    const char *text, *msg;
  } bad[] = {
      {"{\"format\": \"lm-predictor-template\", \"model_type\": \"myllama\", "
       "\"same_as\": \"llama\", \"config\": {}}",
       "a template with same_as declares nothing else (unknown member 'config'"},
      {"{\"format\": \"lm-predictor-template\", \"model_type\": \"myllama\", "
       "\"same_as\": \"nosuch\"}",
       "same_as: no template nosuch.json"},
      {"{\"format\": \"lm-predictor-template\", \"model_type\": \"myllama\", "
       "\"same_as\": \"My Llama\"}",
       "same_as names another family's template"},
      {"{\"format\": \"lm-predictor-template\", \"model_type\": \"myllama\", "
       "\"same_as\": \"myllama\"}",
       "same_as names another family's template"},
      {"{\"format\": \"lm-predictor-template\", \"model_type\": \"myllama\", "
       "\"same_as\": \"llama\", \"defaults\": []}",
       "defaults is an object"},
      {"{\"format\": \"lm-predictor-template\", \"model_type\": \"myllama\", "
       "\"same_as\": \"llama\", \"defaults\": {\"mlp_bias\": \"{x}\"}}",
       "defaults.mlp_bias must be a number or true/false"},
      {"{\"format\": \"lm-predictor-template\", \"model_type\": \"myllama\", "
       "\"same_as\": \"llama\", \"defaults\": {\"n_head_kv\": 8}}",
       "defaults: llama.json declares no config key 'n_head_kv'"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(bad); i++) {
    tu_write(apath, bad[i].text);
    err_clear(&e);
    m = model_from_config("config.json", cfg, strlen(cfg), NULL, dir, reg, &e);
    if (m || !strstr(e.msg, bad[i].msg)) {
      char *txt = tu_err_text(&e);
      print_error("case %zu: %s\n", i, txt);
      free(txt);
    }
    assert_null(m);
    assert_contains(e.msg, bad[i].msg);
    assert_contains(e.file, "myllama.json");
  }
  /* a chain: the target aliases again */
  char *lt = tu_read("models/arch/llama.json");
  char *t2 = tu_replace(lt, "\"config\": {", "\"same_as\": \"x\", \"config\": {");
  tu_write(llama, t2);
  tu_write(apath, good);
  err_clear(&e);
  m = model_from_config("config.json", cfg, strlen(cfg), NULL, dir, reg, &e);
  assert_null(m);
  assert_contains(e.msg, "without same_as of its own");
  assert_contains(e.file, "llama.json");
  free(t2);
  free(lt);
  free(cfg);
  free(orig);
  free(apath);
  free(llama);
  tu_rm_rf(dir);
  free(dir);
}

/* lmrun end to end: family, parameters, KV cache per layer kind. */
static void test_config_lmrun_output(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *cfg = path_join(dir, "config.json");
  char *base = tu_read("test/data/configs/qwen2.5-0.5b.json");
  char *t1 = tu_replace(base, "\"use_sliding_window\": false",
                        "\"use_sliding_window\": true");
  char *t2 =
      tu_replace(t1, "\"max_window_layers\": 24", "\"max_window_layers\": 20");
  char *t3 =
      tu_replace(t2, "\"sliding_window\": 32768", "\"sliding_window\": 4096");
  tu_write(cfg, t3);
  char *out = NULL;
  assert_int_equal(
      tu_run(&out, "%s '%s' -S 8192 --attention eager", tu_bin("lmrun"), dir),
      0);
  assert_contains(out, "/config.json: family qwen2, 494032768 "
                       "parameters (494 M)");
  /* 20 x 2 x 2 x 64 x 2 x 8192 = 83,886,080; 4 x ... x 4096 = 8,388,608 */
  assert_contains(out, "KV cache by layer kind: (none) 83.9 MB, sliding "
                       "8.39 MB");
  assert_contains(out, "model.layers[sliding].self_attn.qk_matmul");
  free(out);
  assert_int_equal(
      tu_run(&out, "%s '%s' -S 8192 --format json", tu_bin("lmrun"), cfg), 0);
  assert_contains(out, "\"family\": \"qwen2\",\n  \"parameters\": "
                       "{\"total\": 494032768, \"active\": 494032768}");
  assert_contains(out, "\"kv_cache_bytes_by_layer_kind\": {\"(none)\": "
                       "83886080, \"sliding\": 8388608}");
  free(out);
  /* a directory without config.json */
  char *empty = path_join(dir, "empty");
  mkdir(empty, 0777);
  assert_int_equal(tu_run(&out, "%s '%s'", tu_bin("lmrun"), empty), 1);
  assert_contains(out, "a directory without config.json");
  free(out);
  free(empty);
  free(t3);
  free(t2);
  free(t1);
  free(base);
  free(cfg);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_parameters_real_files),
      cmocka_unit_test(test_config_kv_per_token),
      cmocka_unit_test(test_config_wraps_class_defaults),
      cmocka_unit_test(test_config_llava_next_mistral),
      cmocka_unit_test(test_config_per_op_values),
      cmocka_unit_test(test_config_mistral_nemo),
      cmocka_unit_test(test_config_equals_model_file),
      cmocka_unit_test(test_config_layer_kinds),
      cmocka_unit_test(test_config_errors),
      cmocka_unit_test(test_config_template_text),
      cmocka_unit_test(test_config_locate),
      cmocka_unit_test(test_config_nonfinite_unread),
      cmocka_unit_test(test_config_rope_per_layer_type),
      cmocka_unit_test(test_config_rope_types),
      cmocka_unit_test(test_config_dense_quantization),
      cmocka_unit_test(test_config_nested_quantization_at_top),
      cmocka_unit_test(test_config_compressed_tensors),
      cmocka_unit_test(test_config_undeclared_quantization_reported),
      cmocka_unit_test(test_config_rope_scaling_over_parameters),
      cmocka_unit_test(test_config_bnb_without_quant_method),
      cmocka_unit_test(test_config_head_note),
      cmocka_unit_test(test_config_wraps),
      cmocka_unit_test(test_config_template_errors),
      cmocka_unit_test(test_config_directory),
      cmocka_unit_test(test_config_every_template_has_a_config),
      cmocka_unit_test(test_config_nested),
      cmocka_unit_test(test_config_same_as),
      cmocka_unit_test(test_config_lmrun_output),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
