/* test_prompt.c: template filling, the prompts built from the database, and
 * that the entry shape the system prompt shows passes lmgen's own checks. */
#include "testutil.h"

#include "agents.h"

static void fill_ok(const char *tmpl, const char *want) {
  const char *keys[] = {"A", "LONG_NAME"};
  const char *vals[] = {"1", "{{A}} ${x.Y} {z}"};
  Buf b;
  buf_init(&b);
  Error e;
  err_clear(&e);
  assert_int_equal(prompt_fill(tmpl, keys, vals, 2, &b, &e), 0);
  assert_string_equal(buf_str(&b), want);
  buf_free(&b);
}

static void test_prompt_fill(void **state) {
  (void)state;
  fill_ok("a={{A}}, b={{A}}.", "a=1, b=1.");
  /* values are inserted verbatim, never scanned again */
  fill_ok("[{{LONG_NAME}}]", "[{{A}} ${x.Y} {z}]");
  /* the formula language's braces and other "{{" pass through */
  fill_ok("{N} ${a.B}({x}) {{ lower }} {{a}} {{A",
          "{N} ${a.B}({x}) {{ lower }} {{a}} {{A");
  fill_ok("", "");
  Buf b;
  buf_init(&b);
  Error e;
  err_clear(&e);
  const char *keys[] = {"A"}, *vals[] = {"1"};
  assert_int_equal(prompt_fill("x {{TYPO}} y", keys, vals, 1, &b, &e), -1);
  assert_string_equal(e.msg, "prompt template: unknown placeholder {{TYPO}}");
  buf_free(&b);
}

static void test_prompt_templates_are_the_files(void **state) {
  (void)state;
  const char *names[] = {"system",    "user",     "new",       "force",
                         "arch_system", "arch_user", "arch_new", "arch_force"};
  for (size_t i = 0; i < LM_ARRAY_LEN(names); i++) {
    char path[128];
    snprintf(path, sizeof(path), "agents/prompts/%s.txt", names[i]);
    char *file = tu_read(path);
    char *t = prompt_template(names[i], NULL);
    assert_non_null(file);
    assert_non_null(t);
    assert_string_equal(t, file);
    free(t);
    free(file);
  }
  Error e;
  err_clear(&e);
  assert_null(prompt_template("nope", &e));
  assert_contains(e.msg, "no prompt template 'nope'");
}

static Db *real_db(void) {
  return tu_load_db("module_db.json");
}

static ClassSource toy_source(void) {
  ClassSource s = {
      .file = xstrdup("src/transformers/models/toy/modeling_toy.py"),
      .text = xstrdup("class ToyGatedMLP(nn.Module):\n    def "
                      "forward(self, x):\n        return {{CLASS}}"),
      .line_start = 26,
      .line_end = 28};
  return s;
}

static void test_prompt_build_new(void **state) {
  (void)state;
  Db *db = real_db();
  ClassSource src = toy_source();
  PromptInput in = {.db = db,
                    .full_name =
                        "transformers.models.toy.modeling_toy.ToyGatedMLP",
                    .source = &src};
  Prompt p;
  Error e;
  err_clear(&e);
  assert_int_equal(prompt_build(&in, &p, &e), 0);
  /* the system prompt: every metric by name, the language, the shape */
  for (int m = 0; m < M_COUNT; m++) { /* a meaning for every metric */
    char a[64], b[64], c[64];
    snprintf(a, sizeof(a), "\n- %s: ", metric_name[m]);
    snprintf(b, sizeof(b), " / %s: ", metric_name[m]);
    snprintf(c, sizeof(c), "\n- %s / ", metric_name[m]);
    bool ok = strstr(p.system, a) || strstr(p.system, b) || strstr(p.system, c);
    if (!ok)
      print_error("system.txt does not explain %s\n", metric_name[m]);
    assert_true(ok);
  }
  assert_contains(p.system, "\n- act_read_bytes / act_write_bytes: ");
  assert_contains(p.system,
                  "The metric names\nare exactly: flops, weight_bytes, "
                  "act_read_bytes, act_write_bytes, kv_read_bytes, "
                  "kv_write_bytes, param_bytes, kv_cache_bytes.");
  assert_contains(p.system, "w_bytes, a_bytes, kv_bytes");
  assert_not_contains(p.system, "{{");
  /* the user prompt: the class, its source verbatim, the known modules with
   * their call form, worked examples */
  assert_contains(p.user,
                  "Write the module database entry for the PyTorch "
                  "class transformers.models.toy.modeling_toy.ToyGatedMLP.");
  assert_contains(p.user, "is not in the database yet");
  assert_contains(p.user,
                  "From src/transformers/models/toy/modeling_toy.py, "
                  "lines 26-28:\n\n```python\nclass ToyGatedMLP(nn.Module):");
  assert_contains(p.user, "        return {{CLASS}}\n```"); /* not re-filled */
  for (int i = 0; i < db->nmods; i++) {
    const ModuleDef *md = db->mods[i];
    Buf call;
    buf_init(&call);
    buf_printf(&call, "- %s (%s)\n  call: ${%s}(", md->full_name,
               md->kind == MK_BASIC ? "basic" : "composite", md->full_name);
    for (int k = 0; k < md->nparams; k++)
      buf_printf(&call, "%s%s", k ? ", " : "", md->params[k]);
    buf_puts(&call, ")\n");
    assert_contains(p.user, buf_str(&call));
    buf_free(&call);
  }
  assert_contains(p.user, "  N: rows multiplied:");
  assert_contains(p.user, "  atomic operations: rope, qk_matmul, softmax, "
                          "sv_matmul");
  assert_contains(p.user, "```json\n{\n  \"full_name\": "
                          "\"torch.nn.modules.linear.Linear\",");
  assert_contains(
      p.user, "\"full_name\": "
              "\"transformers.models.llama.modeling_llama.LlamaAttention\"");
  /* the examples leave out what lmgen owns */
  assert_not_contains(p.user, "generated_file_name");
  assert_not_contains(p.user, "\"validation\"");
  assert_contains(p.user,
                  "\"full_name\": "
                  "\"transformers.models.toy.modeling_toy.ToyGatedMLP\".");
  prompt_free(&p);
  source_free(&src);
  db_free(db);
}

static void test_prompt_build_force(void **state) {
  (void)state;
  Db *db = real_db();
  ClassSource src = toy_source();
  const ModuleDef *silu = db_find(db, "SiLU", NULL);
  PromptInput in = {
      .db = db, .full_name = silu->full_name, .current = silu, .source = &src};
  Prompt p;
  Error e;
  err_clear(&e);
  assert_int_equal(prompt_build(&in, &p, &e), 0);
  assert_contains(p.user, "torch.nn.modules.activation.SiLU is already in the "
                          "database");
  assert_contains(p.user,
                  "keep its kind (basic), its parameters exactly (same "
                  "names,\nsame order: N, a_bytes) and the names of its "
                  "atomic operations\n(none)");
  assert_contains(p.user, "\"flops\": \"4 * {N}\"");
  /* SiLU is not offered as a module it may call */
  assert_not_contains(p.user, "- torch.nn.modules.activation.SiLU (basic)");
  prompt_free(&p);

  /* LMGEN_PROMPT_DIR swaps the templates without a rebuild */
  char *dir = tu_tmpdir();
  const char *names[] = {"system", "user", "force"};
  const char *texts[] = {"S {{METRIC_NAMES}}", "U {{SHORT_NAME}} {{TASK}}",
                         "F {{PARAMETERS}}|{{OPS}}\n"};
  for (int i = 0; i < 3; i++) {
    char f[64];
    snprintf(f, sizeof(f), "%s.txt", names[i]);
    char *path = path_join(dir, f);
    tu_write(path, texts[i]);
    free(path);
  }
  setenv("LMGEN_PROMPT_DIR", dir, 1);
  assert_int_equal(prompt_build(&in, &p, &e), 0);
  assert_string_equal(p.user, "U SiLU F N, a_bytes|none");
  assert_contains(p.system, "S flops, weight_bytes,");
  prompt_free(&p);
  in.current = NULL; /* needs new.txt, which is missing */
  assert_int_equal(prompt_build(&in, &p, &e), -1);
  assert_contains(e.msg, "cannot open");
  unsetenv("LMGEN_PROMPT_DIR");
  tu_rm_rf(dir);
  free(dir);
  source_free(&src);
  db_free(db);
}

/* The shape the system prompt shows is exactly one lmgen accepts. */
static void test_prompt_example_is_a_valid_answer(void **state) {
  (void)state;
  char *sys = prompt_template("system", NULL);
  Db *db = real_db();
  json_t *src = json_pack("{s:s}", "file", "example/models/demo.py");
  AcceptOpts o = {.full_name = "example.models.demo.ScaledResidual",
                  .by = "test",
                  .date = "2026-01-01",
                  .source = src,
                  .reply_name = "system.txt"};
  Accepted a;
  Error e;
  err_clear(&e);
  int rc = accept_answer(db, sys, strlen(sys), &o, &a, &e);
  if (rc != 0)
    err_print(stderr, &e);
  assert_int_equal(rc, 0);
  assert_true(a.is_new);
  assert_string_equal(a.md->formula[M_FLOPS], "2 * {N} * {hidden_size}");
  assert_int_equal(a.notes.len, 0);
  accepted_free(&a);
  json_decref(src);
  db_free(db);
  free(sys);
}

/* The architecture prompt: every placeholder filled, the config, the
 * modeling file, the known modules, the example template, the run
 * variables; with --force, the current template and the force task. */
static void test_prompt_build_arch(void **state) {
  (void)state;
  Db *db = real_db();
  char *example = tu_read("models/arch/llama.json");
  const char *const vars[] = {"B", "S", "T"};
  ArchPromptInput in = {.db = db,
                        .model_type = "minillama",
                        .config_file = "cfg/config.json",
                        .config = "{\"model_type\": \"minillama\"}",
                        .source_file = "src/modeling_minillama.py",
                        .source = "class MiniLlamaMLP(nn.Module):\n    pass",
                        .example_type = "llama",
                        .example = example,
                        .run_vars = vars,
                        .nrun_vars = 3};
  Prompt p;
  Error e;
  err_clear(&e);
  assert_int_equal(prompt_build_arch(&in, &p, &e), 0);
  assert_not_contains(p.user, "{{");
  assert_not_contains(p.system, "{{");
  assert_contains(p.system, "The run\nvariables are: {B}, {S}, {T}.");
  assert_contains(p.user, "Write the LM-Predictor architecture template for "
                          "model_type \"minillama\".\n\nLM-Predictor has no "
                          "template for \"minillama\" yet.");
  assert_contains(p.user, "cfg/config.json:\n\n```json\n{\"model_type\": "
                          "\"minillama\"}\n```");
  assert_contains(p.user, "From src/modeling_minillama.py:\n\n```python\n"
                          "class MiniLlamaMLP(nn.Module):");
  assert_contains(p.user, "- torch.nn.modules.activation.SiLU (basic)\n"
                          "  call: ${torch.nn.modules.activation.SiLU}(N, "
                          "a_bytes)\n");
  assert_contains(p.user, "A worked example: the template of model_type "
                          "\"llama\"\n\n```json\n{\n  \"format\"");
  assert_not_contains(p.user, "The current template");
  prompt_free(&p);
  in.current = "{\"current\": 1}";
  assert_int_equal(prompt_build_arch(&in, &p, &e), 0);
  assert_contains(p.user, "LM-Predictor already has a template for "
                          "\"minillama\"");
  assert_contains(p.user, "The current template:\n\n```json\n{\"current\": "
                          "1}\n```");
  prompt_free(&p);
  free(example);
  db_free(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_prompt_fill),
      cmocka_unit_test(test_prompt_templates_are_the_files),
      cmocka_unit_test(test_prompt_build_new),
      cmocka_unit_test(test_prompt_build_force),
      cmocka_unit_test(test_prompt_build_arch),
      cmocka_unit_test(test_prompt_example_is_a_valid_answer),
  };
  return cmocka_run_group_tests_name("prompt", tests, NULL, NULL);
}
