/* test_plan.c: the walk and its evaluation. The tiny Llama's totals are
 * derived by hand below, operation by operation. */
#include "testutil.h"
#include "runtime.h"

static Db *db;
static Registry *reg;

static int group_setup(void **state) {
  (void)state;
  db = tu_load_db("module_db.json");
  reg = reg_load(db, "generated_modules", NULL);
  return reg ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  reg_free(reg);
  db_free(db);
  return 0;
}

static Model *load_model(const char *path, const Registry *r) {
  Error e;
  err_clear(&e);
  Model *m = model_load(path, r, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  return m;
}

/* Prefill, B=2, S=T=L=4, 16-bit everything, on test/data/tiny_llama.json:
 * hidden 8, intermediate 16, 2 heads, 1 KV head, head_dim 4, 2 layers,
 * vocab 10. N = B*T = 8 tokens.
 *
 *                       flops  weight  act_rd  act_wr  kv_rd  kv_wr
 * embed_tokens             0     128      64     128      0      0   8 rows of 8, int64 ids
 * rotary_emb             144       8      64     128      0      0   8*4/2 + 4*8*4; inv_freq 2 floats
 * per layer (x2):
 *  input_layernorm       280      16     128     128                 4*8*8 + 3*8
 *  q_proj (8->8)        1024     128     128     128                 2*8*8*8
 *  k_proj (8->4)         512      64     128       0             64  output to the cache
 *  v_proj (8->4)         512      64     128       0             64
 *  rope                  288       0     320     192                 3*2*4*(2+1)*4; Q,K + cos,sin
 *  qk_matmul             512       0     128     128     64          2*2*2*4*4*4; Q, scores, K
 *  softmax               320       0     128     128                 5*2*2*4*4
 *  sv_matmul             512       0     128     128     64          P, out, V
 *  o_proj (8->8)        1024     128     128     128
 *  attn_add               64       0     256     128                 both operands read
 *  post_attention_ln     280      16     128     128
 *  gate_proj (8->16)    2048     256     128     256
 *  act_fn (128 elems)    512       0     256     256                 4 per element
 *  up_proj (8->16)      2048     256     128     256
 *  gate_up_mul           128       0     512     256
 *  down_proj (16->8)    2048     256     256     128
 *  mlp_add                64       0     256     128
 *  layer sum           12176    1184    3264    2496    128    128
 * norm                   280      16     128     128
 * lm_head (N=B=2, 8->10) 320     160      32      40
 *
 * totals: flops 144 + 2*12176 + 280 + 320 = 25096
 *         weight 128 + 8 + 2*1184 + 16 + 160 = 2680
 *         act read 64 + 64 + 2*3264 + 128 + 32 = 6816
 *         act write 128 + 128 + 2*2496 + 128 + 40 = 5416
 *         kv read 2*128 = 256, kv write 2*128 = 256
 * state:  KV cache 2 (K,V) * B 2 * L 4 * 1 head * 4 * 2 bytes = 128 per
 *         layer, 256 in all; parameters 160 (embedding 10x8) + 8 + 2*1184
 *         + 16 + 160 = 2712 bytes.
 */
static void test_plan_tiny_llama_by_hand(void **state) {
  (void)state;
  Model *m = load_model("test/data/tiny_llama.json", reg);
  Error e;
  err_clear(&e);
  Plan *p = plan_build(m, ATTN_EAGER, &e);
  assert_non_null(p);
  /* 2 top rows + 17 per layer (rows are per instance) + norm + lm_head */
  assert_int_equal(p->nrows, 2 + 17 + 2);
  const char *order[] = {
      "model.embed_tokens", "model.rotary_emb",
      "model.layers.input_layernorm", "model.layers.self_attn.q_proj",
      "model.layers.self_attn.k_proj", "model.layers.self_attn.v_proj",
      "model.layers.self_attn.rope", "model.layers.self_attn.qk_matmul",
      "model.layers.self_attn.softmax", "model.layers.self_attn.sv_matmul",
      "model.layers.self_attn.o_proj", "model.layers.attn_add",
      "model.layers.post_attention_layernorm", "model.layers.mlp.gate_proj",
      "model.layers.mlp.act_fn", "model.layers.mlp.up_proj",
      "model.layers.mlp.gate_up_mul", "model.layers.mlp.down_proj",
      "model.layers.mlp_add", "model.norm", "lm_head"};
  for (int i = 0; i < p->nrows; i++) {
    assert_string_equal(p->rows[i].path, order[i]);
    assert_double_exact(p->rows[i].count, i >= 2 && i < 19 ? 2 : 1);
  }
  assert_string_equal(p->rows[7].op, "qk_matmul");
  assert_string_equal(p->rows[7].module,
                      "transformers.models.llama.modeling_llama.LlamaAttention");
  Values *v = values_new(p);
  double run[V_COUNT] = {2, 4, 4, 4, 2, 2, 2, 233472, 2};
  assert_int_equal(plan_eval(p, run, v, &e), 0);
  double tot[M_TRAFFIC] = {0};
  for (int r = 0; r < p->nrows; r++)
    for (int k = 0; k < M_TRAFFIC; k++)
      tot[k] += p->rows[r].count * v->row[r][k];
  assert_double_exact(tot[M_FLOPS], 25096);
  assert_double_exact(tot[M_WEIGHT_BYTES], 2680);
  assert_double_exact(tot[M_ACT_READ_BYTES], 6816);
  assert_double_exact(tot[M_ACT_WRITE_BYTES], 5416);
  assert_double_exact(tot[M_KV_READ_BYTES], 256);
  assert_double_exact(tot[M_KV_WRITE_BYTES], 256);
  assert_double_exact(v->state[M_KV_CACHE_BYTES - M_TRAFFIC], 256);
  assert_double_exact(v->state[M_PARAM_BYTES - M_TRAFFIC], 2712);
  /* two rows in detail */
  assert_double_exact(v->row[6][M_FLOPS], 288);          /* rope */
  assert_double_exact(v->row[6][M_ACT_READ_BYTES], 320);
  assert_double_exact(v->row[6][M_KV_WRITE_BYTES], 0);
  assert_double_exact(v->row[20][M_FLOPS], 320);         /* lm_head */
  assert_double_exact(v->row[20][M_ACT_WRITE_BYTES], 40);
  /* evaluating again with other settings reuses the plan: B=1 halves the
   * activation rows and keeps the weights */
  run[V_B] = 1;
  assert_int_equal(plan_eval(p, run, v, &e), 0);
  assert_double_exact(v->row[3][M_FLOPS], 512);          /* q_proj, N = 4 */
  assert_double_exact(v->row[3][M_WEIGHT_BYTES], 128);
  values_free(v);
  plan_free(p);
  model_free(m);
}

static const char *toy_model =
    "{\"model\": \"toy\", \"config\": {\"d\": 4, \"heads\": 2},\n"
    " \"class\": \"example.models.toy.ToyBlock\", \"parameters\": {\"N\": 1},\n"
    " \"layers\": [\n"
    "  {\"name\": \"blocks\", \"class\": \"example.models.toy.ToyBlock\",\n"
    "   \"repeat\": 3, \"parameters\": {\"N\": \"{B} * {T}\"}, \"sub_layers\": [\n"
    "    {\"name\": \"attn\", \"class\": \"example.models.toy.ToyAttention\",\n"
    "     \"repeat\": 2, \"parameters\": {\"B\": \"{B}\", \"T\": \"{T}\",\n"
    "      \"L\": \"{L}\", \"H\": \"{heads}\", \"d\": \"{d}\", \"a_bytes\": 2},\n"
    "     \"sub_layers\": [{\"op\": \"softmax\"}, {\"op\": \"fused\"}]},\n"
    "    {\"name\": \"proj\", \"class\": \"torch.nn.modules.linear.Linear\",\n"
    "     \"parameters\": {\"N\": \"{B} * {T}\", \"in_features\": 8,\n"
    "      \"out_features\": 8, \"w_bytes\": 1, \"a_bytes\": 2}}]}]}\n";

typedef struct Toy {
  char *dir;
  Db *db;
  Registry *reg;
} Toy;

static void toy_open(Toy *t) {
  t->dir = tu_tmpdir();
  t->db = tu_load_db("test/data/mini_db.json");
  tu_generate(t->db, t->dir);
  t->reg = reg_load(t->db, t->dir, NULL);
  assert_non_null(t->reg);
}

static void toy_close(Toy *t) {
  reg_free(t->reg);
  db_free(t->db);
  tu_rm_rf(t->dir);
  free(t->dir);
}

/* Placed ops run where placed, the others after the sub-layers; flash-only
 * and eager-only ops follow the attention implementation; repeats nest. */
static void test_plan_order_modes_and_counts(void **state) {
  (void)state;
  Toy t;
  toy_open(&t);
  Error e;
  err_clear(&e);
  Model *m = model_load_text("toy.json", toy_model, strlen(toy_model), t.reg, &e);
  if (!m)
    err_print(stderr, &e);
  assert_non_null(m);
  Plan *eager = plan_build(m, ATTN_EAGER, &e);
  const char *want_eager[] = {"blocks.attn.softmax", "blocks.attn.qk_matmul",
                              "blocks.attn.out", "blocks.proj"};
  assert_int_equal(eager->nrows, 4);
  for (int i = 0; i < 4; i++)
    assert_string_equal(eager->rows[i].path, want_eager[i]);
  assert_double_exact(eager->rows[0].count, 6);
  assert_double_exact(eager->rows[3].count, 3);
  Plan *flash = plan_build(m, ATTN_FLASH, &e);
  const char *want_flash[] = {"blocks.attn.fused", "blocks.attn.out",
                              "blocks.proj"};
  assert_int_equal(flash->nrows, 3);
  for (int i = 0; i < 3; i++)
    assert_string_equal(flash->rows[i].path, want_flash[i]);

  /* the toy's "out" op writes -{T} bytes: a negative result is an error */
  Values *v = values_new(flash);
  double run[V_COUNT] = {1, 5, 5, 5, 2, 2, 2, 233472, 2};
  err_clear(&e);
  assert_int_equal(plan_eval(flash, run, v, &e), -1);
  assert_string_equal(e.msg, "blocks.attn.out: act_write_bytes evaluates to -5 "
                             "for these settings (negative: check "
                             "example.models.toy.ToyAttention's formula in the "
                             "module database)");
  /* located at the layer's class in the model file */
  assert_string_equal(e.file, "toy.json");
  assert_string_equal(e.where, ".layers[0].sub_layers[0].class");
  int line, col;
  tu_position_of(toy_model, "\"example.models.toy.ToyAttention\"", 1, 0, &line, &col);
  assert_int_equal(e.line, line);
  assert_int_equal(e.col, col);
  values_free(v);
  plan_free(eager);
  plan_free(flash);
  model_free(m);
  toy_close(&t);
}

/* A parameter that evaluates negative, and an overflow, for given
 * settings: errors naming the layer, not garbage. */
static void test_plan_eval_errors(void **state) {
  (void)state;
  char *tiny = tu_read("test/data/tiny_llama.json");
  char *neg = tu_replace(tiny, "\"N\": \"{B} * {T}\",\n            \"num_embeddings\"",
                         "\"N\": \"{B} * {T} - 100\",\n            \"num_embeddings\"");
  Error e;
  err_clear(&e);
  Model *m = model_load_text("m.json", neg, strlen(neg), reg, &e);
  assert_non_null(m);
  Plan *p = plan_build(m, ATTN_EAGER, &e);
  Values *v = values_new(p);
  double run[V_COUNT] = {2, 4, 4, 4, 2, 2, 2, 233472, 2};
  assert_int_equal(plan_eval(p, run, v, &e), -1);
  assert_string_equal(e.msg, "layer 'model.embed_tokens' (Embedding): "
                             "parameter 'N' evaluates to -92 for these "
                             "settings; it must not be negative");
  int line, col;
  tu_position_of(neg, "\"{B} * {T} - 100\"", 1, 0, &line, &col);
  assert_int_equal(e.line, line);
  assert_int_equal(e.col, col);
  assert_string_equal(e.where, ".layers[0].sub_layers[0].parameters.N");
  values_free(v);
  plan_free(p);
  model_free(m);

  char *big = tu_replace(tiny, "\"hidden_size\": 8,", "\"hidden_size\": 1e307,");
  err_clear(&e);
  m = model_load_text("m.json", big, strlen(big), reg, &e);
  assert_non_null(m);
  p = plan_build(m, ATTN_EAGER, &e);
  v = values_new(p);
  assert_int_equal(plan_eval(p, run, v, &e), -1);
  assert_string_equal(e.msg, "model.layers.input_layernorm: flops evaluates "
                             "to inf (a division by zero, or settings too "
                             "large) for these settings (check the layer's "
                             "parameters, or "
                             "transformers.models.llama.modeling_llama."
                             "LlamaRMSNorm's formula)");
  values_free(v);
  plan_free(p);
  model_free(m);

  /* a template dividing by zero, 0/0, and a declared range (>= 1) broken */
  struct {
    const char *tmpl, *msg;
  } cases[] = {
      {"\"{B} / ({S} - {S})\"", "parameter 'N' evaluates to inf (a division by zero, "
                              "or settings too large) for these settings"},
      {"\"({S} - {S}) / ({S} - {S})\"", "parameter 'N' evaluates to NaN (0/0, inf - "
                                      "inf or 0 * inf) for these settings"},
      {"\"{B} - 2\"", "parameter 'N' evaluates to 0 for these settings; it must "
                     "be at least 1"},
      {"\"{B} / 4\"", "parameter 'N' evaluates to 0.5 for these settings; it must "
                     "be a whole number"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char with[128];
    snprintf(with, sizeof(with), "\"N\": %s", cases[i].tmpl);
    char *t2 = tu_replace(tiny, "\"N\": \"{B}\"", with);
    err_clear(&e);
    m = model_load_text("m.json", t2, strlen(t2), reg, &e);
    assert_non_null(m);
    p = plan_build(m, ATTN_EAGER, &e);
    v = values_new(p);
    assert_int_equal(plan_eval(p, run, v, &e), -1);
    assert_contains(e.msg, "layer 'lm_head' (Linear): ");
    assert_contains(e.msg, cases[i].msg);
    assert_string_equal(e.where, ".layers[1].parameters.N");
    int l2, c2;
    tu_position_of(t2, cases[i].tmpl, 1, 0, &l2, &c2);
    assert_int_equal(e.line, l2);
    assert_int_equal(e.col, c2);
    values_free(v);
    plan_free(p);
    model_free(m);
    free(t2);
  }
  free(tiny);
  free(neg);
  free(big);
}

/* A model with nothing to count is an error, not a page of zeros. */
static void test_plan_empty_model(void **state) {
  (void)state;
  const char *empty = "{\"model\": \"x\", \"config\": {},\n"
                      " \"class\": \"transformers.models.llama.modeling_llama.LlamaForCausalLM\",\n"
                      " \"layers\": []}\n";
  Error e;
  err_clear(&e);
  Model *m = model_load_text("m.json", empty, strlen(empty), reg, &e);
  assert_non_null(m);
  assert_null(plan_build(m, ATTN_EAGER, &e));
  assert_contains(e.msg, "the model has no operations to count");
  assert_int_equal(e.line, 3);
  model_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plan_tiny_llama_by_hand),
      cmocka_unit_test(test_plan_order_modes_and_counts),
      cmocka_unit_test(test_plan_eval_errors),
      cmocka_unit_test(test_plan_empty_model),
  };
  return cmocka_run_group_tests_name("plan", tests, group_setup, group_teardown);
}
