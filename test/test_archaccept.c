/* test_archaccept.c: the checks a template answer passes (or fails, located
 * in the reply) before lmgen --arch writes it: its shape, its unknown
 * classes, the loader with the config, evaluation, the parameter count
 * against a reference, and the text written.
 *
 * The fixture family is minillama (test/data/agent/arch/minillama):
 * Llama-3.2-1B's config under another model_type; its parameter count,
 * 1,235,814,400, is derived by hand in test_lmgen_arch_cli.c's header. */
#include "testutil.h"

#include "agents.h"

#define ARCH "test/data/agent/arch"
#define MLP "transformers.models.minillama.modeling_minillama.MiniLlamaMLP"

static char *good_text(void) {
  char *t = tu_read(ARCH "/good.txt");
  assert_non_null(t);
  return t;
}

/* The good answer's JSON with `from` replaced by `to` once. New string. */
static char *edited(const char *from, const char *to) {
  char *t = good_text();
  char *at = strstr(t, from);
  assert_non_null(at);
  Buf b;
  buf_init(&b);
  buf_append(&b, t, (size_t)(at - t));
  buf_puts(&b, to);
  buf_puts(&b, at + strlen(from));
  free(t);
  return buf_steal(&b);
}

static void parse_err(const char *text, const char *msg, int line, int col) {
  ArchAnswer a;
  Error e;
  err_clear(&e);
  assert_int_equal(
      arch_parse_answer(text, strlen(text), "minillama", "reply.txt", &a, &e),
      -1);
  if (!strstr(e.msg, msg) || e.line != line || e.col != col)
    print_error("%d:%d %s\n", e.line, e.col, e.msg);
  assert_contains(e.msg, msg);
  assert_int_equal(e.line, line);
  assert_int_equal(e.col, col);
  assert_string_equal(e.file, "reply.txt");
  arch_answer_free(&a);
}

static void test_arch_parse_answer(void **state) {
  (void)state;
  char *t = good_text();
  ArchAnswer a;
  Error e;
  err_clear(&e);
  assert_int_equal(
      arch_parse_answer(t, strlen(t), "minillama", "reply.txt", &a, &e), 0);
  assert_string_equal(
      json_string_value(json_object_get(a.obj, "class")),
      "transformers.models.llama.modeling_llama.LlamaForCausalLM");
  /* the blanked text keeps the reply's lines: the object starts on line 4 */
  assert_int_equal((int)a.len, (int)strlen(t));
  assert_true(strncmp(a.text + (strstr(t, "{") - t), "{\n  \"format\"", 12) ==
              0);
  assert_true(a.text[0] == ' ');
  assert_int_equal((int)a.notes.len, 0);
  arch_answer_free(&a);

  /* wrong model_type, located at it (line 6 of good.txt) */
  char *w = edited("\"model_type\": \"minillama\"", "\"model_type\": \"llama\"");
  parse_err(w, "the answer is a template for model_type 'llama', not for "
               "model_type 'minillama' (the config's)",
            6, 17);
  free(w);
  w = edited("\"format\": \"lm-predictor-template\"",
             "\"format\": \"lm-predictor-model\"");
  parse_err(w, "the answer is not a template", 5, 13);
  free(w);
  w = edited("\"class\": \"transformers.models.llama.modeling_llama."
             "LlamaForCausalLM\",",
             "\"class\": \"transformers.models.llama.modeling_llama."
             "LlamaForCausalLM\", \"code\": \"import os\",");
  parse_err(w, "unknown member 'code' in the template (expected: format, "
               "model_type, description, source, config, constraints, "
               "nested_config, class, parameters, layers)",
            105, 81);
  free(w);
  parse_err("no template here", "the reply holds no JSON object", 0, 0);
  parse_err("```json\n{\"a\": 1}\n```\n```json\n{\"b\": 2}\n```\n",
            "the reply holds 2 JSON objects", 0, 0);
  parse_err("```json\n[1, 2]\n```\n", "holds JSON that is not an object", 0,
            0);

  /* lmgen's validation member is dropped with a note */
  w = edited("\"source\":", "\"validation\": {\"status\": \"validated\"}, "
                            "\"source\":");
  err_clear(&e);
  assert_int_equal(
      arch_parse_answer(w, strlen(w), "minillama", "reply.txt", &a, &e), 0);
  assert_null(json_object_get(a.obj, "validation"));
  assert_string_equal(buf_str(&a.notes),
                      "ignored 'validation' from the answer: lmgen sets it\n");
  arch_answer_free(&a);
  free(w);
  free(t);
}

static void test_arch_unknown_classes(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  Db *db = db_load("module_db.json", &e);
  assert_non_null(db);
  char *t = tu_read(ARCH "/unknown_class.json");
  /* the class twice: listed once */
  char *t2 = xstrdup(t);
  ArchAnswer a;
  assert_int_equal(arch_parse_answer(t2, strlen(t2), "minillama", "r.json",
                                     &a, &e),
                   0);
  const char **names;
  int n;
  assert_int_equal(arch_unknown_classes(&a, db, &names, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_string_equal(names[0], MLP);
  free(names);
  arch_answer_free(&a);
  /* known classes only */
  char *g = good_text();
  assert_int_equal(
      arch_parse_answer(g, strlen(g), "minillama", "r.json", &a, &e), 0);
  assert_int_equal(arch_unknown_classes(&a, db, &names, &n, &e), 0);
  assert_int_equal(n, 0);
  free(names);
  arch_answer_free(&a);
  free(g);
  /* not a dotted name: located at the class */
  char *bad = edited("\"class\": \"transformers.models.llama.modeling_llama."
                     "LlamaMLP\"",
                     "\"class\": \"MLP\"");
  assert_int_equal(
      arch_parse_answer(bad, strlen(bad), "minillama", "r.json", &a, &e), 0);
  assert_int_equal(arch_unknown_classes(&a, db, &names, &n, &e), -1);
  assert_contains(e.msg, "class 'MLP' is not in the module database and is "
                         "not a full dotted class name");
  assert_contains(e.where, ".layers[0].sub_layers[2].sub_layers[4].class");
  assert_true(e.line > 0);
  arch_answer_free(&a);
  free(bad);
  free(t);
  free(t2);
  db_free(db);
}

typedef struct Env {
  Db *db;
  Registry *reg;
  ConfigText ct;
} Env;

static int env_setup(void **state) {
  Env *v = xcalloc(1, sizeof(Env));
  Error e;
  err_clear(&e);
  v->db = db_load("module_db.json", &e);
  assert_non_null(v->db);
  v->reg = reg_open(v->db, "generated_modules", &e);
  assert_int_equal(config_locate(ARCH "/minillama", &v->ct, &e), 0);
  *state = v;
  return 0;
}

static int env_teardown(void **state) {
  Env *v = *state;
  config_text_free(&v->ct);
  reg_free(v->reg);
  db_free(v->db);
  free(v);
  return 0;
}

/* Check text as an answer; returns arch_check's status. */
static int check(Env *v, const char *text, double ckpt, double expect,
                 double *params, double *ref, Error *e) {
  ArchAnswer a;
  err_clear(e);
  assert_int_equal(
      arch_parse_answer(text, strlen(text), "minillama", "r.txt", &a, e), 0);
  ArchCheck c = {.reg = v->reg,
                 .cfg = &v->ct,
                 .ckpt_bytes = ckpt,
                 .expect_params = expect};
  int rc = arch_check(&a, &c, params, ref, e);
  arch_answer_free(&a);
  return rc;
}

static void test_arch_check(void **state) {
  Env *v = *state;
  char *t = good_text();
  double params, ref;
  Error e;
  /* the hand-derived count; the reference: total_size / 2 (bfloat16) */
  assert_int_equal(check(v, t, 2471628800.0, 0, &params, &ref, &e), 0);
  assert_double_exact(params, 1235814400.0);
  assert_double_exact(ref, 1235814400.0);
  /* within 1%: 0.99% over passes, 1.01% fails */
  assert_int_equal(check(v, t, 0, 1235814400.0 / 1.0099, &params, &ref, &e),
                   0);
  assert_int_equal(check(v, t, 0, 1235814400.0 / 1.0101, &params, &ref, &e),
                   -1);
  assert_contains(e.msg, "the reference, --expect-params, is ");
  assert_string_equal(e.where, ".layers");
  /* --expect-params wins over the checkpoint */
  assert_int_equal(check(v, t, 1.0, 1235814400.0, &params, &ref, &e), 0);
  assert_double_exact(ref, 1235814400.0);
  /* no reference: counted, not compared */
  assert_int_equal(check(v, t, -1, 0, &params, &ref, &e), 0);
  assert_double_exact(ref, -1);

  /* one layer short: 1235814400 - 60821504 */
  char *off = edited("\"repeat\": \"{num_hidden_layers}\"",
                     "\"repeat\": \"{num_hidden_layers} - 1\"");
  assert_int_equal(check(v, off, 2471628800.0, 0, &params, &ref, &e), -1);
  assert_double_exact(params, 1174992896.0);
  assert_contains(e.msg, "off by -4.92% (at most 1% allowed)");
  free(off);

  /* C in a value: a tokenizer error at its character, in the reply */
  char *c = edited("\"N\": \"{B}\"", "\"N\": \"{B}; exit(1)\"");
  assert_int_equal(check(v, c, -1, 0, &params, &ref, &e), -1);
  assert_contains(e.msg, "unexpected character ';'");
  assert_contains(e.where, ".layers[1].parameters.N");
  assert_string_equal(e.file, "r.txt");
  assert_true(e.line > 0);
  free(c);
  /* a name that is neither a run variable nor a declared key */
  c = edited("\"N\": \"{B}\"", "\"N\": \"{batch}\"");
  assert_int_equal(check(v, c, -1, 0, &params, &ref, &e), -1);
  assert_contains(e.msg, "unknown variable 'batch'");
  free(c);
  /* a value negative at run time: caught by the evaluation */
  c = edited("\"N\": \"{B}\"", "\"N\": \"{B} - 2\"");
  assert_int_equal(check(v, c, -1, 0, &params, &ref, &e), -1);
  assert_contains(e.msg, "eager attention, B=1 S=1 (prefill): the template "
                         "does not evaluate: ");
  free(c);
  /* a parameter the class does not declare */
  c = edited("\"N\": \"{B}\",", "\"N\": \"{B}\", \"M\": 1,");
  assert_int_equal(check(v, c, -1, 0, &params, &ref, &e), -1);
  assert_contains(e.msg, "layer 'lm_head' (Linear) has no parameter 'M'");
  free(c);
  free(t);
}

static void test_arch_template_text(void **state) {
  (void)state;
  char *t = good_text();
  ArchAnswer a;
  Error e;
  err_clear(&e);
  assert_int_equal(
      arch_parse_answer(t, strlen(t), "minillama", "r.txt", &a, &e), 0);
  char *out = arch_template_text(&a, "agent:m", "2026-12-01");
  assert_true(out[strlen(out) - 1] == '\n');
  json_t *j = json_loads(out, JSON_REJECT_DUPLICATES, NULL);
  assert_non_null(j);
  json_t *val = json_object_get(j, "validation");
  assert_string_equal(json_string_value(json_object_get(val, "status")),
                      "pending");
  assert_string_equal(json_string_value(json_object_get(val, "by")),
                      "agent:m");
  assert_string_equal(json_string_value(json_object_get(val, "date")),
                      "2026-12-01");
  json_object_del(j, "validation");
  assert_true(json_equal(j, a.obj));
  /* member order: tmpl_members */
  const char *prev = out;
  for (int i = 0; i < TMPL_NMEMBERS; i++) {
    char key[64];
    snprintf(key, sizeof(key), "\n  \"%s\":", tmpl_members[i]);
    const char *at = strstr(out, key);
    if (!at)
      continue;
    assert_true(at > prev);
    prev = at;
  }
  json_decref(j);
  free(out);
  arch_answer_free(&a);
  free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_arch_parse_answer),
      cmocka_unit_test(test_arch_unknown_classes),
      cmocka_unit_test_setup_teardown(test_arch_check, env_setup,
                                      env_teardown),
      cmocka_unit_test(test_arch_template_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
