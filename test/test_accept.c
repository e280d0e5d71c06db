/* test_accept.c: finding the one JSON object in a reply, and every check an
 * answer passes (or fails, with an error located in the reply) before it
 * may enter the database. */
#include "testutil.h"

#include "agents.h"

#define SILU "torch.nn.modules.activation.SiLU"
#define TOY "transformers.models.toy.modeling_toy.ToyGatedMLP"

/* ----- accept_find_json ----- */

static void find_ok(const char *text, const char *want) {
  size_t off, n;
  Error e;
  err_clear(&e);
  int rc = accept_find_json(text, strlen(text), &off, &n, &e);
  if (rc != 0)
    print_error("%s\n", e.msg);
  assert_int_equal(rc, 0);
  char *got = xstrndup(text + off, n);
  char *trim = got;
  while (*trim == '\n' || *trim == ' ')
    trim++;
  size_t k = strlen(trim);
  while (k && (trim[k - 1] == '\n' || trim[k - 1] == ' '))
    trim[--k] = '\0';
  assert_string_equal(trim, want);
  free(got);
}

static void find_err(const char *text, const char *msg, int line, int col) {
  size_t off, n;
  Error e;
  err_clear(&e);
  assert_int_equal(accept_find_json(text, strlen(text), &off, &n, &e), -1);
  if (!strstr(e.msg, msg) || e.line != line || e.col != col)
    print_error("%s: %d:%d %s\n", text, e.line, e.col, e.msg);
  assert_contains(e.msg, msg);
  assert_int_equal(e.line, line);
  assert_int_equal(e.col, col);
}

static void test_accept_find_json(void **state) {
  (void)state;
  find_ok("{\"a\": 1}", "{\"a\": 1}");
  find_ok("  \n{\"a\": \"}{\"}\n", "{\"a\": \"}{\"}");
  find_ok("Here:\n```json\n{\"a\": {\"b\": [1, {}]}}\n```\nDone.",
          "{\"a\": {\"b\": [1, {}]}}");
  find_ok("```JSON\n{\"a\": 1}\n```", "{\"a\": 1}");
  find_ok("```\n{\"a\": 1}\n```", "{\"a\": 1}"); /* an untagged fence */
  /* prose braces ({N}, a Python dict in a python fence) are not answers */
  find_ok("Use {N} and {a_bytes}.\n```python\nd = {\"k\": 1}\n```\nThe "
          "entry: {\"a\": \"{N}\"} as asked.",
          "{\"a\": \"{N}\"}");
  find_ok("```json\n{\"a\": 1}", "{\"a\": 1}"); /* unclosed fence */

  find_err("no json here, only {N}", "the reply holds no JSON object", 0, 0);
  find_err("one {\"a\": 1} two {\"b\": 2}",
           "the reply holds 2 JSON objects (lines 1 and 1); expected exactly "
           "one",
           0, 0);
  find_err("```json\n{\"a\": 1}\n```\n\n```json\n{\"b\": 2}\n```",
           "the reply holds 2 JSON objects (lines 2 and 6)", 0, 0);
  /* a fenced block that does not parse: located in the reply */
  find_err("Answer:\n```json\n{\"a\": 1,\n \"b\": }\n```",
           "the ```json block of the reply: invalid JSON: unexpected token", 4,
           7);
  find_err("```json\n{\"a\": 1, \"a\": 2}\n```", "duplicate object key", 2, 10);
  /* prose with broken JSON */
  find_err("The entry: {\"a\": 1 \"b\": 2} done",
           "the reply: invalid JSON: '}' expected", 1, 20);
  find_err("```json\n[1, 2]\n```", "holds JSON that is not an object", 0, 0);
}

/* ----- accept_answer ----- */

typedef struct Fix {
  Db *db;
  json_t *src;
  Accepted a;
  Error e;
} Fix;

static int setup(void **state) {
  Fix *f = xcalloc(1, sizeof(Fix));
  f->db = tu_load_db("module_db.json");
  f->src =
      json_pack("{s:s, s:i, s:i}", "file", "torch/nn/modules/activation.py",
                "line_start", 11, "line_end", 29);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  accepted_free(&f->a);
  json_decref(f->src);
  db_free(f->db);
  free(f);
  return 0;
}

static int accept_text(Fix *f, const char *name, const char *text,
                       const json_t *src) {
  AcceptOpts o = {.full_name = name,
                  .by = "agent:test-model",
                  .date = "2026-11-22",
                  .source = src,
                  .reply_name = "reply.txt"};
  accepted_free(&f->a);
  err_clear(&f->e);
  return accept_answer(f->db, text, strlen(text), &o, &f->a, &f->e);
}

static int accept_file(Fix *f, const char *name, const char *file,
                       const json_t *src) {
  char path[256];
  snprintf(path, sizeof(path), "test/data/agent/%s", file);
  char *t = tu_read(path);
  assert_non_null(t);
  int rc = accept_text(f, name, t, src);
  free(t);
  return rc;
}

static char *entry_json(const Db *db, const char *name) {
  return json_dumps(json_object_get(json_object_get(db->root, "modules"), name),
                    JSON_INDENT(2) | JSON_PRESERVE_ORDER);
}

static void test_accept_good_force_silu(void **state) {
  Fix *f = *state;
  assert_int_equal(accept_file(f, SILU, "silu_good.json", f->src), 0);
  ModuleDef *md = f->a.md;
  assert_false(f->a.is_new);
  assert_string_equal(md->formula[M_FLOPS], "5 * {N}");
  assert_string_equal(md->file_name, "torch_silu.c");
  assert_string_equal(md->class_name, "TorchSiLU");
  assert_string_equal(md->status, "pending");
  char *e = entry_json(f->a.db, SILU);
  assert_contains(e, "\"validation\": {\n    \"status\": \"pending\",\n    "
                     "\"by\": \"agent:test-model\",\n    \"date\": "
                     "\"2026-11-22\",\n    \"notes\": \"written by an LLM "
                     "agent through lmgen;");
  /* the same file as before: its recorded version is kept */
  assert_contains(e, "\"source\": {\n    \"file\": "
                     "\"torch/nn/modules/activation.py\",\n    \"version\": "
                     "\"torch 2.5\",\n    \"line_start\": 11,\n    "
                     "\"line_end\": 29\n  },\n");
  /* the stored parameter descriptions stay */
  assert_contains(e, "\"description\": \"elements (B*T*intermediate_size in "
                     "LlamaMLP)\"");
  free(e);
  /* every other entry and the key order are untouched */
  const json_t *m0 = json_object_get(f->db->root, "modules");
  const json_t *m1 = json_object_get(f->a.db->root, "modules");
  void *i0 = json_object_iter((json_t *)m0),
       *i1 = json_object_iter((json_t *)m1);
  int n = 0;
  for (; i0 && i1; i0 = json_object_iter_next((json_t *)m0, i0),
                   i1 = json_object_iter_next((json_t *)m1, i1), n++) {
    assert_string_equal(json_object_iter_key(i0), json_object_iter_key(i1));
    if (strcmp(json_object_iter_key(i0), SILU) != 0)
      assert_true(
          json_equal(json_object_iter_value(i0), json_object_iter_value(i1)));
  }
  assert_null(i0);
  assert_null(i1);
  assert_int_equal(n, f->db->nmods);
  /* the source lmgen read replaces another file's record */
  json_t *other = json_pack("{s:s}", "file", "elsewhere/act.py");
  assert_int_equal(accept_file(f, SILU, "silu_good.json", other), 0);
  e = entry_json(f->a.db, SILU);
  assert_contains(e, "\"source\": {\n    \"file\": \"elsewhere/act.py\"\n  },");
  free(e);
  json_decref(other);

  Buf d;
  buf_init(&d);
  accept_diff(db_find(f->db, SILU, NULL), f->a.md, &d);
  assert_string_equal(buf_str(&d),
                      "  flops:\n    old: 4 * {N}\n    new: 5 * {N}\n"
                      "  act_read_bytes: {N} * {a_bytes} (unchanged)\n"
                      "  act_write_bytes: {N} * {a_bytes} (unchanged)\n");
  buf_free(&d);
}

static void test_accept_shapes(void **state) {
  Fix *f = *state;
  const char *files[] = {"silu_fenced.txt", "silu_prose.txt"};
  for (size_t i = 0; i < LM_ARRAY_LEN(files); i++) {
    assert_int_equal(accept_file(f, SILU, files[i], f->src), 0);
    assert_string_equal(f->a.md->formula[M_FLOPS], "5 * {N}");
  }
  /* wrapped in its full name; without full_name or short_name */
  char *good = tu_read("test/data/agent/silu_good.json");
  Buf w;
  buf_init(&w);
  buf_printf(&w, "{\"%s\": %s}", SILU, good);
  assert_int_equal(accept_text(f, SILU, buf_str(&w), f->src), 0);
  char *bare =
      tu_replace(good,
                 "\"full_name\": \"torch.nn.modules.activation.SiLU\",\n  "
                 "\"short_name\": \"SiLU\",\n",
                 "");
  assert_int_equal(accept_text(f, SILU, bare, f->src), 0);
  buf_reset(&w);
  buf_printf(&w, "{\"torch.nn.modules.activation.GELU\": %s}", bare);
  assert_int_equal(accept_text(f, SILU, buf_str(&w), f->src), -1);
  assert_contains(f->e.msg,
                  "the answer is for 'torch.nn.modules.activation.GELU', "
                  "not for torch.nn.modules.activation.SiLU");
  buf_free(&w);
  free(bare);
  free(good);
}

/* Each bad answer fails with its message, located in the reply. */
static void test_accept_rejects(void **state) {
  Fix *f = *state;
  struct {
    const char *file, *msg, *where;
    int line, col;
  } cases[] = {
      {"silu_unknown_param.json",
       "unknown parameter 'hidden_size' (parameters: N, a_bytes)",
       ".formulas.flops", 10, 25},
      {"silu_inject.json", "unexpected character ';'", ".formulas.flops", 10,
       17},
      {"silu_malformed.txt",
       "invalid JSON: '}' expected near '\"act_read_bytes\"'", "", 14, 5},
      {"silu_two.txt", "the reply holds 2 JSON objects", "", 0, 0},
      {"silu_negative.json",
       "flops gives -1 with every parameter = 1; a cost must be a finite "
       "number, not negative",
       ".formulas.flops", 10, 15},
      {"silu_wrong_class.json",
       "the answer is for 'torch.nn.modules.activation.GELU', not for "
       "torch.nn.modules.activation.SiLU",
       ".full_name", 2, 16},
      {"silu_params.json",
       "the answer changes the parameters of SiLU; re-analysis keeps them "
       "(N, a_bytes)",
       ".parameters", 5, 17},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    int rc = accept_file(f, SILU, cases[i].file, f->src);
    char *txt = tu_err_text(&f->e);
    if (rc != -1 || !strstr(f->e.msg, cases[i].msg) ||
        strcmp(f->e.where, cases[i].where) || f->e.line != cases[i].line ||
        f->e.col != cases[i].col)
      print_error("case %s:\n%s\n", cases[i].file, txt);
    assert_int_equal(rc, -1);
    assert_contains(f->e.msg, cases[i].msg);
    assert_string_equal(f->e.file, "reply.txt");
    assert_string_equal(f->e.where, cases[i].where);
    assert_int_equal(f->e.line, cases[i].line);
    assert_int_equal(f->e.col, cases[i].col);
    if (cases[i].line)
      assert_contains(txt, "^");
    assert_null(f->a.db);
    free(txt);
  }
}

/* Variations of the good answer, each breaking one rule. */
static void test_accept_rule_violations(void **state) {
  Fix *f = *state;
  char *good = tu_read("test/data/agent/silu_good.json");
  struct {
    const char *from, *to, *msg;
  } cases[] = {
      {"\"5 * {N}\"", "\"${torch.nn.modules.activation.GELU}({N})\"",
       "unknown module 'torch.nn.modules.activation.GELU'"},
      {"\"5 * {N}\"", "\"${torch.nn.modules.activation.Softmax}({N})\"",
       "takes 3 arguments (rows, cols, a_bytes), given 1"},
      {"\"5 * {N}\"", "\"{N} / 0\"", "division by zero"},
      {"\"5 * {N}\"", "\"{N} / ({a_bytes} - {a_bytes})\"",
       "flops gives inf with every parameter = 1"},
      {"\"5 * {N}\"", "\"0 * {N} / ({a_bytes} - {a_bytes})\"",
       "flops gives NaN with every parameter = 1"},
      {"\"5 * {N}\"", "\"1e300 * {N} * {N} * {N}\"",
       "flops gives inf with every parameter = 4096"},
      {"\"5 * {N}\"", "\"${torch.nn.modules.activation.SiLU}({N}, 2)\"",
       "call cycle: SiLU -> SiLU"},
      {"\"kind\": \"basic\"", "\"kind\": \"composite\"",
       "the answer makes SiLU composite; re-analysis keeps its kind (basic)"},
      {"\"kind\": \"basic\"", "\"kind\": \"weird\"",
       "value \"weird\" is not one of: \"basic\", \"composite\""},
      {"\"kind\": \"basic\",", "", "missing required member 'kind'"},
      {"\"reasoning\"", "\"cost\": 1, \"reasoning\"",
       "unknown member 'cost' in the answer (expected: full_name, short_name, "
       "kind, parameters, formulas, atomic_ops, reasoning)"},
      {"\"short_name\": \"SiLU\"", "\"short_name\": \"Silu\"",
       "short_name must be 'SiLU', the class asked about"},
      {"\"flops\": \"5 * {N}\"", "\"flops\": 5",
       "expected string, found integer"},
      {"\"flops\"", "\"flopz\"", "unknown member 'flopz'"},
      {"\"5 * {N}\"", "\"\"", "must not be empty"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char *bad = tu_replace(good, cases[i].from, cases[i].to);
    int rc = accept_text(f, SILU, bad, f->src);
    if (rc != -1 || !strstr(f->e.msg, cases[i].msg)) {
      char *txt = tu_err_text(&f->e);
      print_error("case %zu: rc %d\n%s\n", i, rc, txt);
      free(txt);
    }
    assert_int_equal(rc, -1);
    assert_contains(f->e.msg, cases[i].msg);
    assert_string_equal(f->e.file, "reply.txt");
    free(bad);
  }
  free(good);
}

static void test_accept_ignores_owned_members(void **state) {
  Fix *f = *state;
  assert_int_equal(accept_file(f, SILU, "silu_names.json", f->src), 0);
  assert_string_equal(f->a.md->file_name, "torch_silu.c");
  assert_string_equal(f->a.md->class_name, "TorchSiLU");
  assert_string_equal(f->a.md->status, "pending");
  assert_string_equal(buf_str(&f->a.notes),
                      "ignored 'generated_file_name' from the answer: lmgen "
                      "sets it\n"
                      "ignored 'generated_class_name' from the answer: lmgen "
                      "sets it\n"
                      "ignored 'validation' from the answer: lmgen sets it\n");
}

static void test_accept_new_entry(void **state) {
  Fix *f = *state;
  json_t *src =
      json_pack("{s:s}", "file", "src/transformers/models/toy/modeling_toy.py");
  assert_int_equal(accept_file(f, TOY, "toy_mlp.json", src), 0);
  assert_true(f->a.is_new);
  assert_int_equal(f->a.db->nmods, f->db->nmods + 1);
  assert_ptr_equal(f->a.db->mods[f->a.db->nmods - 1], f->a.md); /* appended */
  assert_string_equal(f->a.md->file_name, "transformers_toy_gated_mlp.c");
  assert_string_equal(f->a.md->class_name, "TransformersToyGatedMLP");
  assert_int_equal(f->a.md->nops, 2);
  /* the op calling SiLU evaluates through it */
  double args[] = {2, 3, 2};
  assert_double_exact(module_eval(f->a.md, M_FLOPS, args), 4 * 6 + 6);
  Buf d;
  buf_init(&d);
  accept_diff(NULL, f->a.md, &d);
  assert_contains(buf_str(&d), "  new composite entry; parameters: N, "
                               "intermediate_size, a_bytes\n  atomic op "
                               "gate_act:\n    flops: ${torch.nn.modules."
                               "activation.SiLU}({N} * {intermediate_size}, "
                               "{a_bytes})\n");
  buf_free(&d);

  /* without a source lmgen read, the answer's own is taken; with none at
   * all the entry cannot be recorded */
  char *t = tu_read("test/data/agent/toy_mlp.json");
  assert_int_equal(accept_text(f, TOY, t, NULL), -1);
  assert_contains(f->e.msg,
                  "no source is known for " TOY ": give --source PATH");
  char *with = tu_replace(t, "\"reasoning\"",
                          "\"source\": {\"file\": \"x.py\"}, \"reasoning\"");
  assert_int_equal(accept_text(f, TOY, with, NULL), 0);
  char *e = entry_json(f->a.db, TOY);
  assert_contains(e, "\"source\": {\n    \"file\": \"x.py\"\n  },");
  free(e);
  free(with);

  /* a new entry whose parameter name is reserved fails the database's own
   * rules; the error names the reply */
  char *bad = tu_replace(t, "\"name\": \"a_bytes\"", "\"name\": \"args\"");
  char *bad2 = xstrdup(bad);
  while (strstr(bad2, "{a_bytes}")) {
    char *next = tu_replace(bad2, "{a_bytes}", "{args}");
    free(bad2);
    bad2 = next;
  }
  assert_int_equal(accept_text(f, TOY, bad2, src), -1);
  char *txt = tu_err_text(&f->e);
  assert_contains(txt, "reply.txt: .modules[\"" TOY "\"].parameters[2].name: "
                       "error: with this answer the database fails a check: "
                       "parameter name 'args' is reserved");
  assert_not_contains(txt, ":1:");
  free(txt);
  free(bad);
  free(bad2);
  free(t);
  json_decref(src);
}

static void test_accept_new_entry_name_collision(void **state) {
  Fix *f = *state;
  /* another library's SiLU would be generated as torch_silu.c too */
  char *t = tu_read("test/data/agent/silu_good.json");
  char *other = tu_replace(t, SILU, "torch.nn.other.SiLU");
  assert_int_equal(accept_text(f, "torch.nn.other.SiLU", other, f->src), -1);
  assert_contains(f->e.msg,
                  "generated_file_name 'torch_silu.c' is already used");
  free(other);
  free(t);
}

static void test_accept_force_keeps_ops(void **state) {
  Fix *f = *state;
  const char *mlp = "transformers.models.llama.modeling_llama.LlamaMLP";
  json_t *entry = json_deep_copy(
      json_object_get(json_object_get(f->db->root, "modules"), mlp));
  json_t *ops = json_object_get(entry, "atomic_ops");
  json_t *op = json_deep_copy(json_array_get(ops, 0));
  json_object_set_new(op, "name", json_string("extra_copy"));
  json_array_append_new(ops, op);
  char *text = json_dumps(entry, JSON_INDENT(2));
  /* adding an op is fine */
  assert_int_equal(accept_text(f, mlp, text, NULL), 0);
  Buf d;
  buf_init(&d);
  accept_diff(db_find(f->db, mlp, NULL), f->a.md, &d);
  assert_contains(buf_str(&d), "  atomic op extra_copy (added):\n");
  buf_free(&d);
  free(text);
  /* dropping one is not */
  json_array_remove(ops, 0);
  text = json_dumps(entry, JSON_INDENT(2));
  assert_int_equal(accept_text(f, mlp, text, NULL), -1);
  assert_contains(f->e.msg, "the answer drops atomic operation 'gate_up_mul' "
                            "of LlamaMLP");
  free(text);
  json_decref(entry);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accept_find_json),
      cmocka_unit_test_setup_teardown(test_accept_good_force_silu, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_accept_shapes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_accept_rejects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_accept_rule_violations, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_accept_ignores_owned_members, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_accept_new_entry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_accept_new_entry_name_collision,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_accept_force_keeps_ops, setup,
                                      teardown),
  };
  return cmocka_run_group_tests_name("accept", tests, NULL, NULL);
}
