/* test_lmrun_cli.c: end-to-end tests of lmrun: the LLM-Viewer reference
 * match for Llama-2-7B, the output formats, and bad input. */
#include "testutil.h"

static const char *MODEL = "models/llama-2-7b-hf.json";
#define REF_PREFILL "test/data/llm-viewer/llama-2-7b__prefill__B1_S2048__fp16_A100.json"

static json_t *run_json(const char *args) {
  char *out = NULL;
  int rc = tu_run(&out, "%s %s --format json 2>/dev/null", tu_bin("lmrun"), args);
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
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(doc, "phases"), i, p) {
    if (strcmp(json_string_value(json_object_get(p, "phase")), name) == 0)
      return p;
  }
  fail_msg("no phase %s", name);
  return NULL;
}

static json_t *op_named(json_t *ph, const char *op) {
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(ph, "ops"), i, o) {
    if (strcmp(json_string_value(json_object_get(o, "op")), op) == 0)
      return o;
  }
  fail_msg("no op %s", op);
  return NULL;
}

static json_t *ref_row(json_t *ref, const char *layer) {
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(ref, "layers"), i, r) {
    if (strcmp(json_string_value(json_object_get(r, "layer")), layer) == 0)
      return r;
  }
  fail_msg("no reference row %s", layer);
  return NULL;
}

/* Every Linear projection, qk_matmul, softmax and sv_matmul agrees exactly
 * with LLM-Viewer's own output (FLOPs and each kind of bytes). */
static void check_reference(json_t *ph, json_t *ref) {
  static const struct {
    const char *ours, *theirs;
  } map[] = {{"q_proj", "q_proj"},       {"k_proj", "k_proj"},
             {"v_proj", "v_proj"},       {"o_proj", "out_proj"},
             {"gate_proj", "gate_proj"}, {"up_proj", "up_proj"},
             {"down_proj", "down_proj"}, {"qk_matmul", "qk_matmul"},
             {"softmax", "softmax"},     {"sv_matmul", "sv_matmul"}};
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
      double ours = json_number_value(json_object_get(o, fields[k].ours));
      double theirs = json_number_value(json_object_get(r, fields[k].theirs));
      if (ours != theirs)
        print_error("%s.%s: %.17g != LLM-Viewer %.17g\n", map[i].ours,
                    fields[k].ours, ours, theirs);
      assert_double_exact(ours, theirs);
    }
  }
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

static void test_lmrun_formats(void **state) {
  (void)state;
  char *out = NULL;
  assert_int_equal(tu_run(&out, "%s %s -B 1 -S 2048", tu_bin("lmrun"), MODEL), 0);
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
  free(out);
  assert_int_equal(tu_run(&out, "%s %s --format csv", tu_bin("lmrun"), MODEL), 0);
  assert_true(strncmp(out, "phase,path,op,module,count,flops,", 33) == 0);
  assert_contains(out, "\nprefill,model.layers.self_attn.q_proj,q_proj,"
                       "torch.nn.modules.linear.Linear,32,68719476736,"
                       "33554432,16777216,16777216,0,0,67108864,1024\n");
  int lines = 0;
  for (char *p = out; *p; p++)
    lines += *p == '\n';
  assert_int_equal(lines, 1 + 21);
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
                       "\"transformers.activations.GELUActivation\"");
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
      {"%s --format xml", "--format is table, json or csv, not 'xml'", 2},
      {"", "no model file given", 2},
      {"%s %s", "give exactly one model file", 2},
      {"/nonexistent/model.json", "/nonexistent/model.json: error: cannot open", 1},
      {"BAD", "bad.json:3:2: error: invalid JSON: '}' expected near '\"class\"'", 1},
      {"UNKNOWN",
       "error: layer 'model.layers.mlp.act_fn': class "
       "'transformers.activations.GELUActivation' is not in the module "
       "database; analyse it with `lmgen "
       "transformers.activations.GELUActivation`",
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lmrun_matches_llm_viewer_prefill),
      cmocka_unit_test(test_lmrun_totals_sum_rows),
      cmocka_unit_test(test_lmrun_formats),
      cmocka_unit_test(test_lmrun_bad_input),
  };
  return cmocka_run_group_tests_name("lmrun_cli", tests, NULL, NULL);
}
