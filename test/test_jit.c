/* test_jit.c: JIT of every generated module, and what happens when a
 * generated file is broken, stale, missing or incomplete. */
#include "testutil.h"
#include "runtime.h"

typedef struct Fix {
  char *dir;
} Fix;

static int setup(void **state) {
  Fix *f = xcalloc(1, sizeof(Fix));
  f->dir = tu_tmpdir();
  char *out = NULL;
  tu_run(&out, "cp generated_modules/*.c %s/", f->dir);
  free(out);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

/* Write text to path with its header's checksum made to match its body,
 * as if a (buggy) generator had written it. */
static void write_as_generated(const char *path, const char *text) {
  char hdr[17], body[17];
  assert_int_equal(emit_checksum(text, hdr, body), 0);
  char *fixed = tu_replace(text, hdr, body);
  tu_write(path, fixed);
  free(fixed);
}

static Registry *load(const char *dir, Db *db, Error *e) {
  err_clear(e);
  return reg_load(db, dir, e);
}

/* The committed generated_modules/ compiles in one state and every metric
 * of every module resolves. */
static void test_jit_compiles_all(void **state) {
  (void)state;
  Db *db = tu_load_db("module_db.json");
  Error e;
  Registry *r = load("generated_modules", db, &e);
  if (!r)
    err_print(stderr, &e);
  assert_non_null(r);
  assert_int_equal(reg_count(r), db->nmods);
  int it = 0;
  RegModule *m;
  while ((m = reg_next(r, &it))) {
    for (int k = 0; k < M_COUNT; k++)
      assert_non_null(m->fn[k]);
    for (int o = 0; o < m->def->nops; o++)
      for (int k = 0; k < M_TRAFFIC; k++)
        assert_non_null(m->opfn[o][k]);
  }
  /* a cross-module call through the JIT: LlamaAttention's softmax op calls
   * TorchSoftmax: 5 * (B*H*T) * L = 5 * (1*32*2048) * 2048 */
  m = reg_get(r, "transformers.models.llama.modeling_llama.LlamaAttention");
  double a[] = {1, 2048, 2048, 32, 32, 128, 2, 2};
  const AtomicOp *sm = db_find_op(m->def, "softmax");
  assert_double_exact(m->opfn[sm - m->def->ops][M_FLOPS](a), 671088640.0);
  reg_free(r);
  db_free(db);
}

/* A compile error names the real file and line. */
static void test_jit_compile_error_location(void **state) {
  Fix *f = *state;
  Db *db = tu_load_db("module_db.json");
  char *p = path_join(f->dir, "transformers_llama_rms_norm.c");
  char *s = tu_read(p);
  /* break the return line of the flops function */
  const char *at =
      strstr(s, "double TransformersLlamaRMSNorm_flops(const double *args)\n{");
  assert_non_null(at);
  at = strstr(at, "  return ");
  int line = 1;
  for (const char *q = s; q < at; q++)
    line += *q == '\n';
  char *broken = tu_replace(at, "  return ", "  return undeclared_variable + ");
  Buf b;
  buf_init(&b);
  buf_append(&b, s, (size_t)(at - s));
  buf_puts(&b, broken);
  write_as_generated(p, buf_str(&b));
  Error e;
  assert_null(load(f->dir, db, &e));
  assert_contains(e.file, "transformers_llama_rms_norm.c");
  assert_int_equal(e.line, line);
  assert_int_equal(e.col, 0); /* tcc gives no column: none is invented */
  assert_contains(e.msg, "'undeclared_variable' undeclared");
  char *text = tu_err_text(&e);
  char want[128];
  snprintf(want, sizeof(want), "transformers_llama_rms_norm.c:%d: error: ", line);
  assert_contains(text, want);
  assert_contains(text, "undeclared_variable +");
  free(text);
  buf_free(&b);
  free(broken);
  free(s);
  free(p);
  db_free(db);
}

/* A stale file (its entry changed) is refused before compiling. */
static void test_jit_stale_fingerprint(void **state) {
  Fix *f = *state;
  char *dbp = path_join(f->dir, "module_db.json");
  char *text = tu_read("module_db.json");
  char *changed = tu_replace(text, "\"4 * {N}\"", "\"5 * {N}\""); /* SiLU */
  tu_write(dbp, changed);
  Db *db = tu_load_db(dbp);
  Error e;
  assert_null(load(f->dir, db, &e));
  assert_contains(e.file, "torch_silu.c");
  assert_contains(e.msg, "stale: fingerprint");
  assert_contains(e.msg, "torch.nn.modules.activation.SiLU");
  assert_contains(e.msg, "run `make generate`");
  db_free(db);
  free(text);
  free(changed);
  free(dbp);
}

/* A hand edit of a generated file is refused: its body no longer matches
 * the checksum in its header. */
static void test_jit_hand_edit(void **state) {
  Fix *f = *state;
  Db *db = tu_load_db("module_db.json");
  char *p = path_join(f->dir, "torch_silu.c");
  char *s = tu_read(p);
  char *t = tu_replace(s, "(4.0 * p_N)", "(5.0 * p_N)");
  tu_write(p, t);
  Error e;
  assert_null(load(f->dir, db, &e));
  assert_contains(e.file, "torch_silu.c");
  assert_contains(e.msg, "edited by hand");
  free(p);
  free(s);
  free(t);
  db_free(db);
}

/* An error in the last line of one file is reported in that file, not at
 * the first token of the next one. */
static void test_jit_error_at_end_of_file(void **state) {
  Fix *f = *state;
  Db *db = tu_load_db("module_db.json");
  char *p = path_join(f->dir, "torch_silu.c");
  char *s = tu_read(p);
  Buf b;
  buf_init(&b);
  buf_puts(&b, s);
  buf_puts(&b, "\nint x = ;\n");
  write_as_generated(p, buf_str(&b));
  Error e;
  assert_null(load(f->dir, db, &e));
  assert_contains(e.file, "torch_silu.c");
  buf_free(&b);
  free(p);
  free(s);
  db_free(db);
}

static void test_jit_missing_file_and_symbol(void **state) {
  Fix *f = *state;
  Db *db = tu_load_db("module_db.json");
  char *p = path_join(f->dir, "torch_embedding.c");
  char *s = tu_read(p);
  /* a file that lacks one metric function */
  char *cut = tu_replace(s, "double TorchEmbedding_kv_cache_bytes(const double *args)\n{",
                         "double TorchEmbedding_renamed(const double *args)\n{");
  write_as_generated(p, cut);
  Error e;
  assert_null(load(f->dir, db, &e));
  assert_contains(e.msg, "does not define TorchEmbedding_kv_cache_bytes");
  unlink(p);
  assert_null(load(f->dir, db, &e));
  assert_contains(e.msg, "generated file of torch.nn.modules.sparse.Embedding is missing");
  free(p);
  free(s);
  free(cut);
  db_free(db);
}

/* Sources compiled directly: a link error has no file, and says why. */
static void test_jit_link_error(void **state) {
  (void)state;
  const char *paths[] = {"x.c"};
  const char *texts[] = {"double f(const double *a);\n"
                         "double g(const double *a) { return f(a); }\n"};
  Error e;
  err_clear(&e);
  assert_null(jit_compile(paths, texts, 1, &e));
  assert_contains(e.msg, "JIT link failed: undefined symbol 'f'");
  const char *ok[] = {"double h(const double *a) { return lm_floordiv(a[0], "
                      "a[1]); }\n"};
  err_clear(&e);
  Jit *j = jit_compile(paths, ok, 1, &e);
  assert_non_null(j);
  void *sym = jit_symbol(j, "h");
  assert_non_null(sym);
  double (*h)(const double *);
  memcpy(&h, &sym, sizeof(h));
  double a[] = {-7, 2};
  assert_double_exact(h(a), -4);
  assert_null(jit_symbol(j, "nope"));
  jit_free(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jit_compiles_all),
      cmocka_unit_test_setup_teardown(test_jit_compile_error_location, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jit_stale_fingerprint, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jit_missing_file_and_symbol, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jit_hand_edit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jit_error_at_end_of_file, setup, teardown),
      cmocka_unit_test(test_jit_link_error),
  };
  return cmocka_run_group_tests_name("jit", tests, NULL, NULL);
}
