/* test_lmgen_agent_cli.c: end-to-end tests of lmgen's agent commands
 * (`lmgen --force SiLU`, `lmgen NewModule`, --analysis, --dry-run) against
 * the fake LLM server on 127.0.0.1, each in a fresh temporary directory
 * holding copies of module_db.json and generated_modules/. Every failure
 * must leave both byte-for-byte unchanged. */
#include "testutil.h"

#define KEY "sk-ant-TESTKEY-9f8e7d6c5b4a39281706"
#define SILU "torch.nn.modules.activation.SiLU"
#define TOY "transformers.models.toy.modeling_toy.ToyGatedMLP"
#define TOYNORM "transformers.models.toy.modeling_toy.ToyNorm"
#define TREE "test/data/agent/tree"

typedef struct Fix {
  char *dir, *db, *out, *replies;
  TuServer srv;
} Fix;

static int setup(void **state) {
  Fix *f = xcalloc(1, sizeof(Fix));
  f->dir = tu_tmpdir();
  f->db = path_join(f->dir, "module_db.json");
  f->out = path_join(f->dir, "gen");
  f->replies = path_join(f->dir, "replies");
  tu_copy("module_db.json", f->db);
  mkdir(f->out, 0755);
  mkdir(f->replies, 0755);
  DIR *d = opendir("generated_modules");
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.')
      continue;
    char *from = path_join("generated_modules", de->d_name);
    char *to = path_join(f->out, de->d_name);
    tu_copy(from, to);
    free(from);
    free(to);
  }
  closedir(d);
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
  free(f->out);
  free(f->replies);
  free(f);
  return 0;
}

/* Run lmgen with the agent pointed at `scenario` of the fake server;
 * `env` adds or overrides variables (or unsets them with -u NAME). */
static int run(Fix *f, char **out, const char *scenario, const char *env,
               const char *args) {
  return tu_run(out,
                "env -u http_proxy -u https_proxy -u HTTP_PROXY -u ALL_PROXY "
                "-u LMGEN_PROMPT_DIR -u LMGEN_API_STYLE "
                "LMGEN_API_URL=http://127.0.0.1:%d/%s LMGEN_API_KEY=" KEY " "
                "LMGEN_MODEL=fake-model LMGEN_REPLY_DIR=%s "
                "LMGEN_SOURCE_ROOT=" TREE " LMGEN_RETRY_BASE_MS=20 "
                "LMGEN_TIMEOUT_MS=5000 %s %s --db %s --out %s %s",
                f->srv.port, scenario, f->replies, env, tu_bin("lmgen"), f->db,
                f->out, args);
}

/* module_db.json and generated files exactly as committed; no reply kept
 * unless `replies` says how many. */
static void assert_unchanged(Fix *f, int replies) {
  char *now = tu_read(f->db), *orig = tu_read("module_db.json");
  assert_string_equal(now, orig);
  free(now);
  free(orig);
  tu_assert_same_dir(f->out, "generated_modules", NULL);
  char *list = tu_list_files(f->replies);
  int n = 0;
  for (char *p = list; *p; p++)
    n += *p == '\n';
  if (n != replies)
    print_error("replies: %s\n", list);
  assert_int_equal(n, replies);
  free(list);
}

static char *entry_text(const char *db_path, const char *name) {
  json_t *root = json_load_file(db_path, 0, NULL);
  assert_non_null(root);
  char *s = json_dumps(json_object_get(json_object_get(root, "modules"), name),
                       JSON_INDENT(2));
  json_decref(root);
  return s ? s : xstrdup("");
}

static void test_agent_force_silu(void **state) {
  Fix *f = *state;
  char *out = NULL;
  assert_int_equal(run(f, &out, "good/v1/messages", "", "--force SiLU"), 0);
  assert_contains(out, "lmgen: asking fake-model (anthropic API) about " SILU
                       ", from torch/nn/modules/activation.py lines 11-29\n");
  assert_contains(out, "  flops:\n    old: 4 * {N}\n    new: 5 * {N}\n");
  assert_contains(out, "lmgen: updated " SILU);
  assert_contains(out, "1 module, 1 written, 0 unchanged");
  assert_not_contains(out, KEY);
  free(out);

  /* only SiLU's entry changed: the text before and after it is identical,
   * and every other entry is equal as JSON, in the same order */
  char *now = tu_read(f->db), *orig = tu_read("module_db.json");
  const char *a0 = strstr(orig, "\"" SILU "\": {");
  const char *a1 = strstr(now, "\"" SILU "\": {");
  assert_true(a0 - orig == a1 - now);
  assert_true(strncmp(orig, now, (size_t)(a0 - orig)) == 0);
  const char *next = "\"torch.nn.modules.activation.Softmax\": {";
  assert_string_equal(strstr(now, next), strstr(orig, next));
  json_t *j0 = json_loads(orig, 0, NULL), *j1 = json_loads(now, 0, NULL);
  const json_t *m0 = json_object_get(j0, "modules"),
               *m1 = json_object_get(j1, "modules");
  assert_int_equal(json_object_size(m0), json_object_size(m1));
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)m0, k, v) {
    if (strcmp(k, SILU) != 0)
      assert_true(json_equal(v, json_object_get(m1, k)));
  }
  json_t *s1 = json_object_get(m1, SILU);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(s1, "formulas"), "flops")),
                      "5 * {N}");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(s1, "validation"), "status")),
                      "pending");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(s1, "validation"), "by")),
                      "agent:fake-model");
  assert_string_equal(
      json_string_value(json_object_get(s1, "generated_file_name")),
      "torch_silu.c");
  assert_string_equal(
      json_string_value(json_object_get(s1, "generated_class_name")),
      "TorchSiLU");
  json_decref(j0);
  json_decref(j1);
  free(now);
  free(orig);

  /* torch_silu.c rewritten, nothing else */
  const char *except[] = {"torch_silu.c", NULL};
  tu_assert_same_dir(f->out, "generated_modules", except);
  char *p = path_join(f->out, "torch_silu.c");
  char *c = tu_read(p);
  assert_contains(
      c, "/* flops = 5 * {N} */\ndouble TorchSiLU_flops(const double *args)");
  assert_contains(c, "return (5.0 * p_N);");
  free(c);
  free(p);
  assert_int_equal(tu_run(&out, "%s --check --all --db %s --out %s",
                          tu_bin("lmgen"), f->db, f->out),
                   0);
  free(out);

  /* the request: one, with the right headers, the model, the source and
   * what the database knows */
  assert_int_equal(tu_server_requests(&f->srv), 1);
  char *log = tu_server_log(&f->srv);
  assert_contains(log, "\"path\": \"/good/v1/messages\"");
  assert_contains(log, "\"x-api-key\": \"" KEY "\"");
  assert_contains(log, "\"anthropic-version\": \"2023-06-01\"");
  assert_contains(log, "\"model\": \"fake-model\", \"max_tokens\": 8192");
  assert_contains(log, "return F.silu(input, inplace=self.inplace)");
  assert_not_contains(log, "class Mish");
  assert_contains(log,
                  "call: ${torch.nn.modules.linear.Linear}(N, in_features, "
                  "out_features, bias, w_bytes, in_bytes, out_act_bytes, "
                  "out_kv_bytes)");
  assert_contains(log, "\\\"flops\\\": \\\"4 * {N}\\\""); /* current entry */
  assert_contains(log, "kv_cache_bytes: bytes of KV cache");
  free(log);
  char *list = tu_list_files(f->replies);
  assert_string_equal(list, "");
  free(list);
}

static void test_agent_reply_shapes_and_styles(void **state) {
  Fix *f = *state;
  struct {
    const char *scenario, *env;
  } cases[] = {
      {"fenced/v1/messages", ""},
      {"prose/v1/chat/completions", "LMGEN_API_STYLE=openai"},
      {"good/v1/chat/completions", "LMGEN_API_STYLE=openai"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    tu_copy("module_db.json", f->db);
    char *out = NULL;
    int rc = run(f, &out, cases[i].scenario, cases[i].env, "--force SiLU");
    if (rc != 0)
      print_error("%s\n%s\n", cases[i].scenario, out);
    assert_int_equal(rc, 0);
    free(out);
    char *e = entry_text(f->db, SILU);
    assert_contains(e, "\"flops\": \"5 * {N}\"");
    free(e);
  }
  char *log = tu_server_log(&f->srv);
  assert_contains(log, "\"Authorization\": \"Bearer " KEY "\"");
  assert_contains(log, "\"messages\": [{\"role\": \"system\", \"content\": "
                       "\"You are a performance analyst");
  free(log);
}

static void test_agent_bad_replies_change_nothing(void **state) {
  Fix *f = *state;
  struct {
    const char *scenario, *file, *msg;
  } cases[] = {
      {"malformed", "silu_malformed.txt",
       ":14:5: error: the ```json block of the reply: invalid JSON: '}' "
       "expected near '\"act_read_bytes\"'"},
      {"unknown_param", "silu_unknown_param.json",
       ":10:25: .formulas.flops: error: unknown parameter 'hidden_size' "
       "(parameters: N, a_bytes)"},
      {"inject", "silu_inject.json",
       ":10:17: .formulas.flops: error: unexpected character ';'"},
      {"two", "silu_two.txt", "error: the reply holds 2 JSON objects"},
      {"negative", "silu_negative.json",
       "error: flops gives -1 with every parameter = 1"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char *out = NULL, sc[64];
    snprintf(sc, sizeof(sc), "%s/v1/messages", cases[i].scenario);
    int rc = run(f, &out, sc, "", "--force SiLU");
    if (rc != 1 || !strstr(out, cases[i].msg))
      print_error("%s: rc %d\n%s\n", cases[i].scenario, rc, out);
    assert_int_equal(rc, 1);
    assert_contains(out, cases[i].msg);
    assert_contains(out, "lmgen: the reply is saved in ");
    assert_unchanged(f, 1);
    /* the saved reply is the reply text the error points into */
    char *list = tu_list_files(f->replies);
    assert_true(strncmp(list, "lmgen-reply-SiLU-", 17) == 0);
    list[strlen(list) - 1] = '\0';
    char *saved_path = path_join(f->replies, list);
    assert_contains(out, list);
    char *saved = tu_read(saved_path), *want_path = NULL;
    want_path = path_join("test/data/agent", cases[i].file);
    char *want = tu_read(want_path);
    assert_string_equal(saved, want);
    unlink(saved_path);
    free(saved);
    free(want);
    free(want_path);
    free(saved_path);
    free(list);
    free(out);
  }
  /* the injected C ran nowhere */
  char *out = NULL;
  assert_int_equal(tu_run(&out, "find %s . -maxdepth 3 -name pwned", f->dir),
                   0);
  assert_string_equal(out, "");
  free(out);
}

static void test_agent_retries(void **state) {
  Fix *f = *state;
  char *out = NULL;
  /* 429 with Retry-After: 1, then the answer */
  double t0 = now_seconds();
  assert_int_equal(run(f, &out, "429_then_ok/v1/messages", "", "--force SiLU"),
                   0);
  double dt = now_seconds() - t0;
  assert_contains(out, "lmgen: HTTP 429 from 127.0.0.1; retrying in 1 s "
                       "(attempt 2 of 3)\n");
  assert_contains(out, "lmgen: updated " SILU);
  assert_true(dt >= 0.95);
  assert_int_equal(tu_server_requests(&f->srv), 2);
  free(out);
  char *e = entry_text(f->db, SILU);
  assert_contains(e, "\"flops\": \"5 * {N}\"");
  free(e);

  /* 500 three times: give up, nothing changes */
  tu_copy("module_db.json", f->db);
  char *p = path_join(f->out, "torch_silu.c");
  tu_copy("generated_modules/torch_silu.c", p);
  free(p);
  assert_int_equal(run(f, &out, "500/v1/messages", "", "--force SiLU"), 1);
  assert_contains(out, "lmgen: HTTP 500 from 127.0.0.1; retrying in 0.02 s "
                       "(attempt 2 of 3)\n");
  assert_contains(out, "lmgen: HTTP 500 from 127.0.0.1; retrying in 0.04 s "
                       "(attempt 3 of 3)\n");
  assert_contains(out, "error: gave up after 3 attempts: API error: HTTP 500 "
                       "(api_error): internal failure\n");
  assert_int_equal(tu_server_requests(&f->srv), 2 + 3);
  assert_unchanged(f, 1); /* the API's error body is kept */
  free(out);

  /* other 4xx: no retry */
  tu_rm_rf(f->replies);
  mkdir(f->replies, 0755);
  assert_int_equal(run(f, &out, "bad_request/v1/messages", "", "--force SiLU"),
                   1);
  assert_contains(out, "error: API error: HTTP 400 (invalid_request_error): "
                       "max_tokens: must be positive\n");
  assert_not_contains(out, "retrying");
  assert_int_equal(tu_server_requests(&f->srv), 2 + 3 + 1);
  assert_unchanged(f, 1);
  free(out);
}

static void test_agent_timeout_and_size_cap(void **state) {
  Fix *f = *state;
  char *out = NULL;
  double t0 = now_seconds();
  assert_int_equal(
      run(f, &out, "hang/v1/messages", "LMGEN_TIMEOUT_MS=500", "--force SiLU"),
      1);
  double dt = now_seconds() - t0;
  assert_contains(out, "error: no complete reply from 127.0.0.1 within 500 ms "
                       "(LMGEN_TIMEOUT_MS)\n");
  assert_true(dt < 5.0); /* not retried, not waited out */
  assert_int_equal(tu_server_requests(&f->srv), 1);
  assert_unchanged(f, 0);
  free(out);
  const char *sc[] = {"oversized/v1/messages", "oversized_chunked/v1/messages"};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(
        run(f, &out, sc[i], "LMGEN_MAX_REPLY_BYTES=65536", "--force SiLU"), 1);
    assert_contains(out, "error: the reply from 127.0.0.1 is larger than 65536 "
                         "bytes (LMGEN_MAX_REPLY_BYTES)\n");
    assert_unchanged(f, 0);
    free(out);
  }
}

/* The key appears in no output and no file lmgen writes, even when the API
 * echoes it back. */
static void test_agent_key_never_leaks(void **state) {
  Fix *f = *state;
  const char *sc[] = {"echo_key/v1/messages",         "echo_key_ok/v1/messages",
                      "malformed/v1/messages",        "500/v1/messages",
                      "echo_key/v1/chat/completions", "good/v1/messages"};
  for (size_t i = 0; i < LM_ARRAY_LEN(sc); i++) {
    char *out = NULL;
    const char *env = strstr(sc[i], "chat") ? "LMGEN_API_STYLE=openai" : "";
    run(f, &out, sc[i], env, "--force SiLU");
    assert_not_contains(out, KEY);
    assert_not_contains(out, "TESTKEY");
    if (strncmp(sc[i], "echo_key/", 9) == 0)
      assert_contains(out, "[REDACTED] (check LMGEN_API_KEY)");
    free(out);
  }
  tu_assert_tree_lacks(f->dir, KEY, "server-requests.log");
  tu_assert_tree_lacks(f->dir, "TESTKEY", "server-requests.log");
  /* ... though it was sent */
  char *log = tu_server_log(&f->srv);
  assert_contains(log, KEY);
  free(log);
}

static void test_agent_new_module(void **state) {
  Fix *f = *state;
  char *out = NULL;
  assert_int_equal(run(f, &out, "new/v1/messages", "", TOY), 0);
  assert_contains(out,
                  "about " TOY ", from "
                  "src/transformers/models/toy/modeling_toy.py lines 26-39");
  assert_contains(out,
                  "  new composite entry; parameters: N, intermediate_size, "
                  "a_bytes\n");
  assert_contains(out, "lmgen: added " TOY);
  assert_contains(out, "wrote ");
  assert_contains(out, "transformers_toy_gated_mlp.c");
  assert_contains(out, "2 modules, 1 written, 1 unchanged"); /* + SiLU */
  free(out);
  char *e = entry_text(f->db, TOY);
  assert_contains(e, "\"source\": {\n    \"file\": "
                     "\"src/transformers/models/toy/modeling_toy.py\",\n    "
                     "\"line_start\": 26,\n    \"line_end\": 39\n  },");
  assert_contains(e,
                  "\"generated_file_name\": \"transformers_toy_gated_mlp.c\"");
  assert_contains(e, "\"generated_class_name\": \"TransformersToyGatedMLP\"");
  assert_contains(e, "\"status\": \"pending\"");
  free(e);
  /* appended at the end; the rest untouched */
  char *now = tu_read(f->db), *orig = tu_read("module_db.json");
  const char *tail = strstr(orig, "\n    }\n  }\n}\n");
  assert_true(strncmp(now, orig, (size_t)(tail - orig)) == 0);
  free(now);
  free(orig);
  const char *except[] = {"transformers_toy_gated_mlp.c", NULL};
  char *list = tu_list_files(f->out);
  assert_contains(list, "transformers_toy_gated_mlp.c\n");
  free(list);
  assert_int_equal(tu_run(&out, "%s --check --all --db %s --out %s",
                          tu_bin("lmgen"), f->db, f->out),
                   0);
  free(out);
  /* now known: regenerated from the database, no agent, no configuration */
  assert_int_equal(
      tu_run(&out,
             "env -u LMGEN_API_URL -u LMGEN_API_KEY -u LMGEN_MODEL "
             "%s --db %s --out %s ToyGatedMLP",
             tu_bin("lmgen"), f->db, f->out),
      0);
  assert_contains(out, "2 modules, 0 written, 2 unchanged");
  free(out);
  assert_int_equal(tu_server_requests(&f->srv), 1);
  /* no other generated file was touched */
  char *np = path_join(f->out, except[0]);
  unlink(np);
  free(np);
  tu_assert_same_dir(f->out, "generated_modules", NULL);
}

static void test_agent_known_names_stay_offline(void **state) {
  Fix *f = *state;
  char *out = NULL;
  assert_int_equal(run(f, &out, "good/v1/messages", "", "SiLU"), 0);
  assert_contains(out, "1 module, 0 written, 1 unchanged");
  free(out);
  assert_int_equal(run(f, &out, "good/v1/messages", "", SILU " Linear"), 0);
  free(out);
  assert_int_equal(run(f, &out, "good/v1/messages", "", "--dry-run SiLU"), 0);
  assert_contains(out,
                  "dry run: 1 module, 0 would be written; nothing written");
  free(out);
  assert_int_equal(tu_server_requests(&f->srv), 0);
  assert_unchanged(f, 0);
}

static void test_agent_configuration_and_names(void **state) {
  Fix *f = *state;
  char *out = NULL;
  struct {
    const char *env, *args, *msg;
    int rc;
  } cases[] = {
      {"-u LMGEN_API_URL -u LMGEN_API_KEY", "--force SiLU",
       "error: the agent is not configured; set in the environment:\n"
       "  LMGEN_API_URL ",
       1},
      {"-u LMGEN_API_KEY", TOY, "\n  LMGEN_API_KEY ", 1},
      {"LMGEN_API_STYLE=bard", "--force SiLU",
       "LMGEN_API_STYLE must be 'anthropic' or 'openai'", 1},
      {"LMGEN_TIMEOUT_MS=soon", "--force SiLU",
       "LMGEN_TIMEOUT_MS must be a whole number", 1},
      {"", "ToyGatedMLP",
       "error: module 'ToyGatedMLP' is not in " /* a short name */, 1},
      {"", "ToyGatedMLP", "give its full dotted class name", 1},
      {"", "--source " TREE "/torch/nn/modules/activation.py SiLU",
       "is already in ", 1},
      {"", "--source " TREE "/torch/nn/modules/activation.py SiLU",
       "add --force to analyse it again", 1},
      {"", "--force 'bad..name'", "give its full dotted class name", 1},
      {"", "Linear " TOY, "analyse it on its own: lmgen NAME", 1},
      {"", "--check " TOY, "run lmgen NAME to analyse it", 1},
      {"-u LMGEN_SOURCE_ROOT", "--force SiLU",
       "error: no source for " SILU ": give --source PATH", 1},
      {"", "--force transformers.models.toy.modeling_toy.Missing",
       "error: class Missing is not defined in it", 1},
      {"", "--force SiLU Linear", "analyse one NAME at a time", 2},
      {"", "--force --all", "without --all or --check", 2},
      {"", "--analysis x.json --check SiLU", "without --all or --check", 2},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char env[256];
    snprintf(env, sizeof(env), "%s", cases[i].env);
    int rc;
    if (strncmp(env, "-u ", 3) == 0) { /* unset after setting them all */
      rc = tu_run(&out,
                  "env LMGEN_API_URL=http://127.0.0.1:%d/good/v1/messages "
                  "LMGEN_API_KEY=" KEY " LMGEN_MODEL=m LMGEN_SOURCE_ROOT=" TREE
                  " LMGEN_REPLY_DIR=%s env %s %s --db %s --out %s %s",
                  f->srv.port, f->replies, env, tu_bin("lmgen"), f->db, f->out,
                  cases[i].args);
    } else {
      rc = run(f, &out, "good/v1/messages", env, cases[i].args);
    }
    if (rc != cases[i].rc || !strstr(out, cases[i].msg))
      print_error("case %zu (%s %s): rc %d\n%s\n", i, cases[i].env,
                  cases[i].args, rc, out);
    assert_int_equal(rc, cases[i].rc);
    assert_contains(out, cases[i].msg);
    free(out);
  }
  /* nothing was asked, nothing changed */
  assert_int_equal(tu_server_requests(&f->srv), 0);
  assert_unchanged(f, 0);
}

static void test_agent_analysis_file(void **state) {
  Fix *f = *state;
  char *out = NULL;
  /* no network and no configuration needed */
  const char *offline = "env -u LMGEN_API_URL -u LMGEN_API_KEY -u LMGEN_MODEL "
                        "-u LMGEN_SOURCE_ROOT";
  assert_int_equal(tu_run(&out,
                          "%s LMGEN_REPLY_DIR=%s %s --db %s --out %s --force "
                          "--analysis test/data/agent/silu_unknown_param.json "
                          "SiLU",
                          offline, f->replies, tu_bin("lmgen"), f->db, f->out),
                   1);
  /* the error points into the file itself; no copy is saved */
  assert_contains(out, "test/data/agent/silu_unknown_param.json:10:25: "
                       ".formulas.flops: error: unknown parameter "
                       "'hidden_size'");
  assert_not_contains(out, "saved");
  free(out);
  assert_unchanged(f, 0);

  assert_int_equal(tu_run(&out,
                          "%s %s --db %s --out %s --force --analysis "
                          "test/data/agent/silu_fenced.txt SiLU",
                          offline, tu_bin("lmgen"), f->db, f->out),
                   0);
  assert_contains(out, "new: 5 * {N}");
  free(out);
  char *e = entry_text(f->db, SILU);
  assert_contains(e, "\"by\": \"analysis:silu_fenced.txt\"");
  /* no source was read: the stored one stays */
  assert_contains(e, "\"source\": {\n    \"file\": "
                     "\"torch/nn/modules/activation.py\",\n    \"version\": "
                     "\"torch 2.5\"\n  },");
  free(e);
  /* a new module from a file, with its source named */
  assert_int_equal(
      tu_run(&out,
             "%s %s --db %s --out %s --analysis "
             "test/data/agent/toy_norm.json --source " TREE
             "/src/transformers/models/toy/modeling_toy.py " TOYNORM,
             offline, tu_bin("lmgen"), f->db, f->out),
      0);
  free(out);
  e = entry_text(f->db, TOYNORM);
  assert_contains(e, "\"line_start\": 7,\n    \"line_end\": 18");
  free(e);
  assert_int_equal(tu_server_requests(&f->srv), 0);
}

static void test_agent_dry_run(void **state) {
  Fix *f = *state;
  char *out = NULL;
  assert_int_equal(
      run(f, &out, "good/v1/messages", "", "--dry-run --force SiLU"), 0);
  assert_contains(out, "  flops:\n    old: 4 * {N}\n    new: 5 * {N}\n"
                       "  act_read_bytes: {N} * {a_bytes} (unchanged)\n");
  assert_contains(out, "lmgen: would update ");
  assert_contains(out, "lmgen: would write ");
  assert_contains(out, "torch_silu.c\n");
  assert_contains(out, "lmgen: dry run: nothing written\n");
  free(out);
  assert_int_equal(run(f, &out, "new/v1/messages", "", "--dry-run " TOY), 0);
  assert_contains(
      out, "  atomic op gate_mul:\n    flops: {N} * {intermediate_size}\n");
  assert_contains(out, "transformers_toy_gated_mlp.c\n");
  free(out);
  /* a failed dry run keeps its reply */
  assert_int_equal(
      run(f, &out, "inject/v1/messages", "", "--dry-run --force SiLU"), 1);
  free(out);
  assert_unchanged(f, 1);
  char *lock = path_join(f->dir, "module_db.json.lock");
  assert_int_not_equal(access(lock, F_OK), 0); /* not even a lock taken */
  free(lock);
}

/* Two runs adding different modules at once: both entries land. The first
 * holds the lock a while, so the second read the database before the
 * first wrote it and must re-read it under the lock. */
static void test_agent_concurrent_runs_both_land(void **state) {
  Fix *f = *state;
  char *out = NULL;
  const char *src = TREE "/src/transformers/models/toy/modeling_toy.py";
  int rc =
      tu_run(&out,
             "env LMGEN_TEST_LOCK_DELAY_MS=1000 %s --db %s --out %s "
             "--analysis test/data/agent/toy_mlp.json --source %s " TOY
             " > %s/a.out 2>&1 & "
             "sleep 0.3; env LMGEN_TEST_LOCK_DELAY_MS=10 %s --db %s --out %s "
             "--analysis test/data/agent/toy_norm.json --source %s " TOYNORM
             " > %s/b.out 2>&1; b=$?; wait $!; a=$?; echo $a $b",
             tu_bin("lmgen"), f->db, f->out, src, f->dir, tu_bin("lmgen"),
             f->db, f->out, src, f->dir);
  assert_int_equal(rc, 0);
  assert_string_equal(out, "0 0\n");
  free(out);
  /* the first run wrote first (its entry comes first), so the second one
   * had read the database before that write */
  char *text = tu_read(f->db);
  assert_non_null(strstr(text, "\"" TOYNORM "\""));
  assert_true(strstr(text, "\"" TOY "\"") < strstr(text, "\"" TOYNORM "\""));
  free(text);
  char *a = entry_text(f->db, TOY), *b = entry_text(f->db, TOYNORM);
  assert_contains(a, "\"short_name\": \"ToyGatedMLP\"");
  assert_contains(b, "\"short_name\": \"ToyNorm\"");
  free(a);
  free(b);
  char *list = tu_list_files(f->out);
  assert_contains(list, "transformers_toy_gated_mlp.c\n");
  assert_contains(list, "transformers_toy_norm.c\n");
  free(list);
  assert_int_equal(tu_run(&out, "%s --check --all --db %s --out %s",
                          tu_bin("lmgen"), f->db, f->out),
                   0);
  free(out);
}

static void test_agent_proxy_environment(void **state) {
  Fix *f = *state;
  char *out = NULL;
  /* a dead proxy in the environment does not stop a loopback endpoint */
  int rc =
      tu_run(&out,
             "env http_proxy=http://127.0.0.1:1 HTTP_PROXY=http://127.0.0.1:1 "
             "ALL_PROXY=http://127.0.0.1:1 LMGEN_API_URL=http://127.0.0.1:%d/"
             "good/v1/messages LMGEN_API_KEY=" KEY " LMGEN_MODEL=m "
             "LMGEN_SOURCE_ROOT=" TREE " %s --db %s --out %s --dry-run "
             "--force SiLU",
             f->srv.port, tu_bin("lmgen"), f->db, f->out);
  if (rc != 0)
    print_error("%s\n", out);
  assert_int_equal(rc, 0);
  free(out);
  /* a remote one goes through the proxy (the fake server plays it) */
  rc = tu_run(&out,
              "env -u no_proxy -u NO_PROXY http_proxy=http://127.0.0.1:%d "
              "LMGEN_API_URL=http://"
              "llm.example.invalid/good/v1/messages LMGEN_API_KEY=" KEY
              " LMGEN_MODEL=m LMGEN_SOURCE_ROOT=" TREE " %s --db %s --out %s "
              "--dry-run --force SiLU",
              f->srv.port, tu_bin("lmgen"), f->db, f->out);
  assert_int_equal(rc, 0);
  free(out);
  char *log = tu_server_log(&f->srv);
  assert_contains(log,
                  "\"path\": \"http://llm.example.invalid/good/v1/messages\"");
  free(log);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_agent_force_silu, setup, teardown),
      cmocka_unit_test_setup_teardown(test_agent_reply_shapes_and_styles, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_agent_bad_replies_change_nothing,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_agent_retries, setup, teardown),
      cmocka_unit_test_setup_teardown(test_agent_timeout_and_size_cap, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_agent_key_never_leaks, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_agent_new_module, setup, teardown),
      cmocka_unit_test_setup_teardown(test_agent_known_names_stay_offline,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_agent_configuration_and_names, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_agent_analysis_file, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_agent_dry_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_agent_concurrent_runs_both_land,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_agent_proxy_environment, setup,
                                      teardown),
  };
  return cmocka_run_group_tests_name("lmgen_agent_cli", tests, NULL, NULL);
}
