/* test_lmgen_arch_cli.c: end-to-end tests of `lmgen --arch` against the
 * fake LLM server on 127.0.0.1 (test/fake_llm_server.py, arch_*
 * scenarios), each in a fresh install-like directory ($LM_PREDICTOR_HOME:
 * module_db.json, generated_modules/, models/arch/, hardware.json,
 * calibration/, engines/) so the
 * defaults are exercised. Every rejected answer must leave every file of
 * that directory byte-for-byte as it was, and keep the reply.
 *
 * The fixture family is "minillama": Llama-3.2-1B's config.json under
 * another model_type, next to a model.safetensors.index.json whose
 * total_size is 2 x 1,235,814,400 (bfloat16). The count, by hand from the
 * config (vocab 128256, hidden 2048, 16 layers, 32 heads, 8 KV heads of
 * 64, MLP 8192, tied embeddings):
 *   embed 128256 x 2048                           = 262,668,288
 *   per layer: q, o 2048 x 2048 (x2)              =   8,388,608
 *              k, v 2048 x 512 (x2)               =   2,097,152
 *              gate, up, down 3 x 2048 x 8192     =  50,331,648
 *              two RMSNorms 2 x 2048              =       4,096
 *              sum                                =  60,821,504
 *   16 layers                                     = 973,144,064
 *   final norm                                    =       2,048
 *   total                                         = 1,235,814,400
 * (meta-llama/Llama-3.2-1B's Hub count, test/data/configs/README.md). A
 * template one layer short counts 1,174,992,896: -4.92%.
 */
#include "testutil.h"

#define KEY "sk-ant-TESTKEY-9f8e7d6c5b4a39281706"
#define ARCH "test/data/agent/arch"
#define CFG ARCH "/minillama"
#define MLP "transformers.models.minillama.modeling_minillama.MiniLlamaMLP"

typedef struct Fix {
  char *dir, *db, *gen, *arch, *replies, *tmpl;
  TuServer srv;
} Fix;

static void copy_dir(const char *from, const char *to) {
  mkdir(to, 0755);
  DIR *d = opendir(from);
  assert_non_null(d);
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.')
      continue;
    char *a = path_join(from, de->d_name);
    char *b = path_join(to, de->d_name);
    struct stat st;
    if (stat(a, &st) == 0 && S_ISDIR(st.st_mode))
      copy_dir(a, b);
    else
      tu_copy(a, b);
    free(a);
    free(b);
  }
  closedir(d);
}

static int setup(void **state) {
  Fix *f = xcalloc(1, sizeof(Fix));
  f->dir = tu_tmpdir();
  f->db = path_join(f->dir, "module_db.json");
  f->gen = path_join(f->dir, "generated_modules");
  f->arch = path_join(f->dir, "models/arch");
  f->replies = path_join(f->dir, "replies");
  f->tmpl = path_join(f->arch, "minillama.json");
  tu_copy("module_db.json", f->db);
  char *hw = path_join(f->dir, "hardware.json");
  tu_copy("hardware.json", hw);
  free(hw);
  copy_dir("generated_modules", f->gen);
  char *models = path_join(f->dir, "models");
  mkdir(models, 0755);
  free(models);
  copy_dir("models/arch", f->arch);
  /* what lmrun reads from its install besides those */
  char *cal = path_join(f->dir, "calibration");
  copy_dir("calibration", cal);
  free(cal);
  char *eng = path_join(f->dir, "engines");
  copy_dir("engines", eng);
  free(eng);
  mkdir(f->replies, 0755);
  tu_server_start(&f->srv, f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  tu_server_stop(&f->srv);
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f->db);
  free(f->gen);
  free(f->arch);
  free(f->replies);
  free(f->tmpl);
  free(f);
  return 0;
}

/* lmgen with the install at f->dir and the agent pointed at `scenario`. */
static int run(Fix *f, char **out, const char *scenario, const char *env,
               const char *args) {
  return tu_run(out,
                "env -u http_proxy -u https_proxy -u HTTP_PROXY -u ALL_PROXY "
                "-u LMGEN_PROMPT_DIR -u LMGEN_API_STYLE "
                "LM_PREDICTOR_HOME=%s HF_HUB_OFFLINE=1 HF_HUB_CACHE=%s/hub "
                "LMGEN_API_URL=http://127.0.0.1:%d/%s/v1/messages "
                "LMGEN_API_KEY=" KEY " LMGEN_MODEL=fake-model "
                "LMGEN_REPLY_DIR=%s "
                "LMGEN_SOURCE_ROOT=test/data/agent/tree LMGEN_RETRY_BASE_MS=20 "
                "LMGEN_TIMEOUT_MS=5000 %s %s %s",
                f->dir, f->dir, f->srv.port, scenario, f->replies, env,
                tu_bin("lmgen"), args);
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

/* Replies kept in f->replies. */
static int replies_kept(Fix *f) {
  char *list = tu_list_files(f->replies);
  int n = count_lines(list);
  free(list);
  return n;
}

/* Every file of the install as committed; `replies` replies kept. */
static void assert_unchanged(Fix *f, int replies) {
  char *now = tu_read(f->db), *orig = tu_read("module_db.json");
  assert_string_equal(now, orig);
  free(now);
  free(orig);
  tu_assert_same_dir(f->gen, "generated_modules", NULL);
  tu_assert_same_dir(f->arch, "models/arch", NULL);
  assert_int_equal(replies_kept(f), replies);
}

/* The answer's template object, from a fixture file (fenced or bare). */
static json_t *answer_object(const char *file) {
  char *t = tu_read(file);
  assert_non_null(t);
  char *open = strstr(t, "```json\n");
  char *s = open ? open + 8 : t;
  char *close = open ? strstr(s, "\n```") : NULL;
  if (close)
    *close = '\0';
  json_t *j = json_loads(s, 0, NULL);
  assert_non_null(j);
  free(t);
  return j;
}

/* The written template is the answer plus validation (pending, by). */
static void assert_template_is(Fix *f, const char *answer, const char *by) {
  json_t *w = json_load_file(f->tmpl, JSON_REJECT_DUPLICATES, NULL);
  assert_non_null(w);
  json_t *v = json_object_get(w, "validation");
  assert_string_equal(json_string_value(json_object_get(v, "status")),
                      "pending");
  assert_string_equal(json_string_value(json_object_get(v, "by")), by);
  json_incref(v);
  json_object_del(w, "validation");
  json_t *want = answer_object(answer);
  assert_true(json_equal(w, want));
  json_decref(want);
  json_decref(w);
  json_decref(v);
  /* members in template order: validation right after source */
  char *text = tu_read(f->tmpl);
  const char *src = strstr(text, "\n  \"source\":");
  const char *val = strstr(text, "\n  \"validation\":");
  const char *cfg = strstr(text, "\n  \"config\":");
  assert_true(src && val && cfg && src < val && val < cfg);
  assert_true(text[strlen(text) - 1] == '\n');
  free(text);
}

/* lmrun on the new family: the count by hand, the pending warning. */
static void assert_lmrun_reads_it(Fix *f, const char *cfg) {
  char *out = NULL;
  int rc = tu_run(&out,
                  "LM_PREDICTOR_HOME=%s HF_HUB_OFFLINE=1 HF_HUB_CACHE=%s/hub "
                  "%s %s -S 16 --format json",
                  f->dir, f->dir, tu_bin("lmrun"), cfg);
  assert_int_equal(rc, 0);
  assert_contains(out, "lmrun: warning: the template ");
  assert_contains(out, "minillama.json is 'pending': written by an LLM agent "
                       "(lmgen --arch), not reviewed yet\n");
  assert_contains(out, "\"family\": \"minillama\"");
  assert_contains(out,
                  "\"parameters\": {\"total\": 1235814400, \"active\": "
                  "1235814400}");
  free(out);
}

static void test_arch_good(void **state) {
  Fix *f = *state;
  char *out = NULL;
  assert_int_equal(run(f, &out, "arch_good", "", "--arch " CFG), 0);
  assert_contains(out, "lmgen: asking fake-model (anthropic API) for the "
                       "template of model_type 'minillama', from "
                       "src/transformers/models/minillama/"
                       "modeling_minillama.py\n");
  assert_contains(out, "lmgen: the template for model_type 'minillama' "
                       "passed every check\n");
  assert_contains(out, "lmgen: 1235814400 parameters with " CFG
                       "/config.json; reference 1235814400 (the "
                       "checkpoint): +0.000%\n");
  assert_contains(out, "minillama.json (validation: pending)\n");
  assert_not_contains(out, KEY);
  free(out);
  assert_template_is(f, ARCH "/good.txt", "agent:fake-model");
  /* the database and the generated files untouched; the other templates
   * too; no reply kept */
  char *now = tu_read(f->db), *orig = tu_read("module_db.json");
  assert_string_equal(now, orig);
  free(now);
  free(orig);
  tu_assert_same_dir(f->gen, "generated_modules", NULL);
  unlink(f->tmpl);
  tu_assert_same_dir(f->arch, "models/arch", NULL);
  assert_int_equal(replies_kept(f), 0);
  assert_int_equal(run(f, &out, "arch_good", "", "--arch " CFG), 0);
  free(out);
  assert_lmrun_reads_it(f, CFG);

  /* the request: the config, the modeling file, the known modules with
   * their parameters, the worked example */
  char *log = tu_server_log(&f->srv);
  assert_int_equal(tu_server_requests(&f->srv), 2);
  assert_contains(log, "\"x-api-key\": \"" KEY "\"");
  assert_contains(log, "Write the LM-Predictor architecture template for "
                       "model_type \\\"minillama\\\"");
  assert_contains(log, "class MiniLlamaDecoderLayer(nn.Module):");
  assert_contains(log, "\\\"model_type\\\": \\\"minillama\\\"");
  assert_contains(log, "call: ${torch.nn.modules.linear.Linear}(N, "
                       "in_features, out_features, bias, w_bytes, "
                       "in_bytes, out_act_bytes, out_kv_bytes)");
  assert_contains(log, "A worked example: the template of model_type "
                       "\\\"llama\\\"");
  assert_contains(log, "LlamaForCausalLM (Llama 1/2/3/3.1/3.2");
  assert_contains(log, "{B}, {S}, {T}, {L}, {w_bytes}");
  free(log);
}

static void test_arch_unknown_class(void **state) {
  Fix *f = *state;
  char *out = NULL;
  assert_int_equal(run(f, &out, "arch_unknown", "", "--arch " CFG), 0);
  assert_contains(out, "lmgen: the template names " MLP
                       ", which the database lacks: asking fake-model about "
                       "it, from src/transformers/models/minillama/"
                       "modeling_minillama.py lines 14-26\n");
  assert_contains(out, "lmgen: the answer for " MLP " passed every check\n");
  assert_contains(out, "lmgen: added 1 module to ");
  assert_contains(out, "transformers_mini_llama_mlp.c\n");
  assert_contains(out, "lmgen: 1235814400 parameters with ");
  free(out);
  assert_int_equal(tu_server_requests(&f->srv), 2);
  assert_template_is(f, ARCH "/unknown_class.json", "agent:fake-model");
  /* the database: the same entries plus the new one, pending */
  json_t *j0 = json_load_file("module_db.json", 0, NULL);
  json_t *j1 = json_load_file(f->db, 0, NULL);
  json_t *m0 = json_object_get(j0, "modules"), *m1 = json_object_get(j1, "modules");
  assert_int_equal(json_object_size(m1), json_object_size(m0) + 1);
  const char *k;
  json_t *v;
  json_object_foreach(m0, k, v) {
    assert_true(json_equal(v, json_object_get(m1, k)));
  }
  json_t *e = json_object_get(m1, MLP);
  assert_non_null(e);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(e, "validation"), "status")),
                      "pending");
  assert_string_equal(json_string_value(json_object_get(e, "generated_file_name")),
                      "transformers_mini_llama_mlp.c");
  json_decref(j0);
  json_decref(j1);
  /* the generated files: one more, and all consistent */
  char *p = path_join(f->gen, "transformers_mini_llama_mlp.c");
  char *c = tu_read(p);
  assert_non_null(c);
  free(c);
  unlink(p);
  free(p);
  tu_assert_same_dir(f->gen, "generated_modules", NULL);
  assert_int_equal(run(f, &out, "arch_good", "", "--force --arch " CFG
                                                 " --dry-run"),
                   0); /* still loads: the template's classes exist */
  free(out);
  assert_int_equal(replies_kept(f), 0);
}

static void test_arch_unknown_class_rejected(void **state) {
  Fix *f = *state;
  char *out = NULL;
  assert_int_equal(run(f, &out, "arch_unknown_bad", "", "--arch " CFG), 1);
  assert_contains(out, "lmgen-reply-MiniLlamaMLP-");
  assert_contains(out, ".atomic_ops[0].formulas.flops: error: flops gives "
                       "-16383 with every parameter = 1");
  assert_contains(out, "lmgen: the reply is saved in ");
  free(out);
  assert_unchanged(f, 2);
}

/* One rejected template answer: exit 1, the message, nothing written, the
 * reply kept. */
static void rejected(Fix *f, const char *scenario, const char *args,
                     const char *want) {
  char *out = NULL;
  assert_int_equal(run(f, &out, scenario, "", args), 1);
  assert_contains(out, want);
  assert_contains(out, "lmgen: the reply is saved in ");
  assert_not_contains(out, KEY);
  free(out);
  assert_unchanged(f, 1);
  char *list = tu_list_files(f->replies);
  assert_contains(list, "lmgen-reply-arch-minillama-");
  free(list);
}

static void test_arch_layer_off(void **state) {
  rejected(*state, "arch_layer_off", "--arch " CFG,
           ".layers: error: the template counts 1174992896 parameters with "
           CFG "/config.json; the reference, the checkpoint's "
           "(model.safetensors.index.json total_size 2471628800 bytes / 2 "
           "bytes per parameter, the config's torch_dtype), is 1235814400: "
           "off by -4.92% (at most 1% allowed)\n");
}

static void test_arch_inject(void **state) {
  rejected(*state, "arch_inject", "--arch " CFG,
           ".layers[0].sub_layers[2].sub_layers[1].sub_layers[0].parameters."
           "N: error: unexpected character ';'\n"
           "   169 |                     \"N\": \"{B} * {T}); system(\\\"rm "
           "-rf ~\\\"); (0\",\n"
           "       |                                     ^\n");
}

static void test_arch_malformed(void **state) {
  rejected(*state, "arch_malformed", "--arch " CFG,
           ":5:3: error: the ```json block of the reply: invalid JSON: '}' "
           "expected near '\"description\"'\n");
}

static void test_arch_wrong_model_type(void **state) {
  rejected(*state, "arch_wrong_type", "--arch " CFG,
           ":3:17: .model_type: error: the answer is a template for "
           "model_type 'llama', not for model_type 'minillama' (the "
           "config's)\n"
           "     3 |   \"model_type\": \"llama\",\n"
           "       |                 ^~~~~~~\n");
}

/* A config without an index: refused before any request, unless a count is
 * given or the check is waived (and said so). */
static void test_arch_reference(void **state) {
  Fix *f = *state;
  char *dir = path_join(f->dir, "bare");
  mkdir(dir, 0755);
  char *cfg = path_join(dir, "config.json");
  tu_copy(CFG "/config.json", cfg);
  char *out = NULL, args[1024];
  snprintf(args, sizeof(args), "--arch %s", dir);
  assert_int_equal(run(f, &out, "arch_good", "", args), 1);
  assert_contains(out, "error: no parameter count to check the template "
                       "against: ");
  assert_contains(out, "give --expect-params N (the model card's count) or, "
                       "to accept the template unchecked, --no-param-check");
  free(out);
  assert_int_equal(tu_server_requests(&f->srv), 0);
  assert_unchanged(f, 0);

  snprintf(args, sizeof(args), "--arch %s --expect-params 1300000000", cfg);
  rejected(f, "arch_good", args,
           "the reference, --expect-params, is 1300000000: off by -4.94%");
  tu_rm_rf(f->replies);
  mkdir(f->replies, 0755);

  snprintf(args, sizeof(args), "--arch %s --expect-params 1235814400", cfg);
  assert_int_equal(run(f, &out, "arch_good", "", args), 0);
  assert_contains(out, "reference 1235814400 (--expect-params): +0.000%\n");
  free(out);
  unlink(f->tmpl);

  snprintf(args, sizeof(args), "--arch %s --no-param-check", cfg);
  assert_int_equal(run(f, &out, "arch_good", "", args), 0);
  assert_contains(out, "lmgen: 1235814400 parameters with ");
  assert_contains(out, "NOT checked against any reference "
                       "(--no-param-check)\n");
  free(out);
  assert_template_is(f, ARCH "/good.txt", "agent:fake-model");
  free(cfg);
  free(dir);
}

/* A Hub id, resolved as lmrun resolves it: the cache's snapshot (with the
 * index beside its config). */
static void test_arch_hub_id(void **state) {
  Fix *f = *state;
  const char *commit = "0123456789abcdef0123456789abcdef01234567";
  char path[1024];
  snprintf(path, sizeof(path), "%s/hub/models--test-org--minillama/refs",
           f->dir);
  assert_int_equal(tu_run(NULL, "mkdir -p %s %s/../snapshots/%s", path, path,
                          commit),
                   0);
  snprintf(path, sizeof(path), "%s/hub/models--test-org--minillama/refs/main",
           f->dir);
  tu_write(path, commit);
  snprintf(path, sizeof(path),
           "%s/hub/models--test-org--minillama/snapshots/%s/config.json",
           f->dir, commit);
  tu_copy(CFG "/config.json", path);
  snprintf(path, sizeof(path),
           "%s/hub/models--test-org--minillama/snapshots/%s/"
           "model.safetensors.index.json",
           f->dir, commit);
  tu_copy(CFG "/model.safetensors.index.json", path);
  char *out = NULL;
  assert_int_equal(run(f, &out, "arch_good", "", "--arch test-org/minillama"),
                   0);
  assert_contains(out, "reference 1235814400 (the checkpoint): +0.000%\n");
  free(out);
  assert_template_is(f, ARCH "/good.txt", "agent:fake-model");
  assert_lmrun_reads_it(f, "test-org/minillama");
}

/* --force, --dry-run, --analysis: an existing template, re-analysed; the
 * answer must work with every config of the family in test/data/configs. */
static void test_arch_force(void **state) {
  Fix *f = *state;
  char *out = NULL;
  /* known family: refused without --force, before any request */
  assert_int_equal(run(f, &out, "arch_good", "",
                       "--arch test/data/configs/llama-3.2-1b.json "
                       "--no-param-check"),
                   1);
  assert_contains(out, "/models/arch/llama.json exists: lmrun already "
                       "reads model_type 'llama'; add --force to analyse "
                       "the family again\n");
  free(out);
  assert_int_equal(run(f, &out, "arch_good", "",
                       "--force --arch " CFG " --no-param-check"),
                   1);
  assert_contains(out, "error: --force re-analyses a template, and ");
  free(out);
  assert_int_equal(tu_server_requests(&f->srv), 0);

  /* the family's test configs come from the install */
  char *td = path_join(f->dir, "test/data");
  assert_int_equal(tu_run(NULL, "mkdir -p %s && cp -r test/data/configs %s/",
                          td, td),
                   0);
  free(td);
  /* head_dim made required: fine for Llama-3.2-1B, not for Llama-3-8B */
  assert_int_equal(run(f, &out, "arch_good", "",
                       "--force --arch test/data/configs/llama-3.2-1b.json "
                       "--expect-params 1235814400 --analysis " ARCH
                       "/llama_head_dim_required.json"),
                   1);
  assert_contains(out, "llama-3-8b.json:1:1: .: error: the template must keep "
                       "working for every config of the family it has: the "
                       "config has no 'head_dim', which the llama template "
                       "needs");
  free(out);
  assert_unchanged(f, 0);

  /* the committed template as the answer: passes, rewrites with pending */
  assert_int_equal(run(f, &out, "arch_good", "",
                       "--force --arch test/data/configs/llama-3.2-1b.json "
                       "--expect-params 1235814400 --dry-run --analysis "
                       "models/arch/llama.json"),
                   0);
  assert_contains(out, "lmgen: also loads and evaluates with ");
  assert_contains(out, "lmgen: would rewrite ");
  assert_contains(out, "\"by\": \"analysis:llama.json\"");
  assert_contains(out, "lmgen: dry run: nothing written\n");
  free(out);
  assert_unchanged(f, 0);
  assert_int_equal(run(f, &out, "arch_good", "",
                       "--force --arch test/data/configs/llama-3.2-1b.json "
                       "--expect-params 1235814400 --analysis "
                       "models/arch/llama.json"),
                   0);
  assert_contains(out, "lmgen: rewrote ");
  free(out);
  assert_int_equal(tu_server_requests(&f->srv), 0);
  char *p = path_join(f->arch, "llama.json");
  json_t *w = json_load_file(p, 0, NULL), *want =
      json_load_file("models/arch/llama.json", 0, NULL);
  free(p);
  json_object_del(w, "validation");
  assert_true(json_equal(w, want));
  json_decref(w);
  json_decref(want);

  /* --analysis never asks: a class the database lacks is an error */
  assert_int_equal(run(f, &out, "arch_good", "",
                       "--arch " CFG " --analysis " ARCH "/unknown_class.json"),
                   1);
  assert_contains(out, "the template names " MLP ", which the database lacks; "
                       "--analysis never asks the network");
  free(out);
  assert_int_equal(tu_server_requests(&f->srv), 0);
}

static void test_arch_usage(void **state) {
  Fix *f = *state;
  char *out = NULL;
  assert_int_equal(run(f, &out, "arch_good", "", "--arch " CFG " SiLU"), 2);
  assert_contains(out, "lmgen: --arch takes no NAME, --all or --check\n");
  free(out);
  assert_int_equal(run(f, &out, "arch_good", "",
                       "--arch " CFG " --expect-params 5 --no-param-check"),
                   2);
  assert_contains(out, "give --expect-params or --no-param-check, not both");
  free(out);
  assert_int_equal(run(f, &out, "arch_good", "", "--expect-params x SiLU"), 2);
  assert_contains(out, "--expect-params takes a parameter count");
  free(out);
  assert_int_equal(run(f, &out, "arch_good", "", "--no-param-check SiLU"), 2);
  assert_contains(out, "--arch-dir, --expect-params and --no-param-check go "
                       "with --arch");
  free(out);
  assert_int_equal(run(f, &out, "arch_good", "",
                       "--arch models/llama-2-7b-hf.json --no-param-check"),
                   1);
  assert_contains(out, "a model file, not a Hugging Face config.json");
  free(out);
  assert_int_equal(tu_server_requests(&f->srv), 0);
  assert_unchanged(f, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_arch_good, setup, teardown),
      cmocka_unit_test_setup_teardown(test_arch_unknown_class, setup, teardown),
      cmocka_unit_test_setup_teardown(test_arch_unknown_class_rejected, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_arch_layer_off, setup, teardown),
      cmocka_unit_test_setup_teardown(test_arch_inject, setup, teardown),
      cmocka_unit_test_setup_teardown(test_arch_malformed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_arch_wrong_model_type, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_arch_reference, setup, teardown),
      cmocka_unit_test_setup_teardown(test_arch_hub_id, setup, teardown),
      cmocka_unit_test_setup_teardown(test_arch_force, setup, teardown),
      cmocka_unit_test_setup_teardown(test_arch_usage, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
