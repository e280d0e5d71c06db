/* test_db.c: loading module_db.json, and every kind of bad entry giving a
 * located error. The fixtures are edits of test/data/mini_db.json. */
#include "testutil.h"
#include "gen.h"

static char *mini;

static int setup(void **state) {
  (void)state;
  mini = tu_read("test/data/mini_db.json");
  return mini ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  free(mini);
  return 0;
}

static Db *load(const char *text, Error *e) {
  err_clear(e);
  return db_load_text("db.json", text, strlen(text), e);
}

static void test_db_loads_mini(void **state) {
  (void)state;
  Error e;
  Db *db = load(mini, &e);
  assert_non_null(db);
  assert_int_equal(db->nmods, 4);
  ModuleDef *lin = db->mods[0];
  assert_string_equal(lin->full_name, "torch.nn.modules.linear.Linear");
  assert_int_equal(lin->kind, MK_BASIC);
  assert_int_equal(lin->nparams, 5);
  assert_string_equal(lin->params[3], "w_bytes");
  assert_non_null(lin->ast[M_FLOPS]);
  assert_null(lin->ast[M_KV_READ_BYTES]);
  assert_string_equal(lin->file_name, "torch_linear.c");
  ModuleDef *att = db->mods[2];
  assert_int_equal(att->nops, 4);
  assert_string_equal(att->ops[1].name, "softmax");
  assert_int_equal(att->ops[0].mode, AM_EAGER);
  assert_int_equal(att->ops[2].mode, AM_FLASH);
  assert_int_equal(att->ops[3].mode, AM_ANY);
  assert_ptr_equal(att->ops[1].ast[M_FLOPS]->callee, db->mods[1]);
  assert_string_equal(att->status, "pending");
  assert_null(db->mods[3]->file_name);
  db_free(db);
}

/* Module calls evaluate the callee's same metric; an entry with atomic ops
 * evaluates to the sum of its eager (and always-on) ops. */
static void test_db_module_eval(void **state) {
  (void)state;
  Error e;
  Db *db = load(mini, &e);
  ModuleDef *att = db->mods[2];
  double args[] = {2, 3, 8, 4, 16, 2}; /* B T L H d a_bytes */
  /* qk: 2*2*4*3*8*16 = 6144; softmax: 5*(2*4*3)*8 = 960;
   * out: min(3,8) + max(1,16,3) - ceil(3/3) + floor(-8/4) = 3+16-1-2 = 16;
   * fused (flash) is excluded. */
  assert_double_exact(module_eval(att, M_FLOPS, args), 6144 + 960 + 16);
  assert_double_exact(node_eval(att->ops[2].ast[M_FLOPS], args, M_FLOPS), 10);
  /* kv_cache_bytes is an entry formula: 2*2*8*4*16*2 = 4096 */
  assert_double_exact(module_eval(att, M_KV_CACHE_BYTES, args), 4096);
  /* absent metric of a basic module is 0 */
  double lin[] = {2048, 4096, 4096, 2, 2};
  assert_double_exact(module_eval(db->mods[0], M_KV_READ_BYTES, lin), 0);
  assert_double_exact(module_eval(db->mods[0], M_FLOPS, lin), 68719476736.0);
  db_free(db);
}

/* ${Class.op} calls one atomic operation of Class. */
static const char *opref_to =
    "\"formulas\": {\"flops\": "
    "\"${example.models.toy.ToyAttention.qk_matmul}(1, {N}, {N}, 2, 4, 2)\"},\n"
    "      \"reasoning\": \"container\"";

static void test_db_op_reference(void **state) {
  (void)state;
  char *t = tu_replace(mini, "\"formulas\": {},\n      \"reasoning\": \"container\"",
                       opref_to);
  Error e;
  Db *db = load(t, &e);
  if (!db)
    err_print(stderr, &e);
  assert_non_null(db);
  ModuleDef *blk = db->mods[3];
  const Node *call = blk->ast[M_FLOPS];
  assert_int_equal(call->kind, ND_CALL);
  assert_ptr_equal(call->callee, db->mods[2]);
  assert_ptr_equal(call->callee_op, &db->mods[2]->ops[0]);
  /* qk_matmul: 2*B*H*T*L*d = 2*1*2*N*N*4 = 16 N^2; N = 3 -> 144 */
  double args[] = {3};
  assert_double_exact(module_eval(blk, M_FLOPS, args), 144);
  db_free(db);

  /* an op that does not exist */
  char *t2 = tu_replace(t, "ToyAttention.qk_matmul}", "ToyAttention.qk}");
  assert_null(load(t2, &e));
  assert_contains(e.msg, "example.models.toy.ToyAttention has no atomic "
                         "operation 'qk' (it has: qk_matmul, softmax, fused, out)");
  /* ops carry traffic only */
  char *t3 = tu_replace(t, "{\"flops\": \"${example", "{\"param_bytes\": \"${example");
  err_clear(&e);
  assert_null(load(t3, &e));
  assert_contains(e.msg, "atomic operation example.models.toy.ToyAttention.qk_matmul "
                         "has no param_bytes");
  free(t);
  free(t2);
  free(t3);
}

static void test_db_find(void **state) {
  (void)state;
  Error e;
  Db *db = load(mini, &e);
  assert_ptr_equal(db_find(db, "Softmax", &e), db->mods[1]);
  assert_ptr_equal(db_find(db, "torch.nn.modules.activation.Softmax", &e),
                   db->mods[1]);
  err_clear(&e);
  assert_null(db_find(db, "Nope", &e));
  assert_contains(e.msg, "module 'Nope' is not in db.json");
  db_free(db);

  /* two classes named Linear: the short name is ambiguous */
  char *two = tu_replace(mini, "\"example.models.toy.ToyBlock\": {\n      \"short_name\": \"ToyBlock\"",
                         "\"example.other.Linear\": {\n      \"short_name\": \"Linear\"");
  db = load(two, &e);
  assert_non_null(db);
  err_clear(&e);
  assert_null(db_find(db, "Linear", &e));
  assert_contains(e.msg, "short name 'Linear' is ambiguous; use one of:\n"
                         "  torch.nn.modules.linear.Linear\n"
                         "  example.other.Linear");
  db_free(db);
  free(two);
}

/* Each malformed or malicious entry: message, file position, caret. */
static void test_db_errors(void **state) {
  (void)state;
  struct {
    const char *from, *to, *msg, *where;
    const char *at; /* caret: the nth occurrence of this text, plus adj */
    int nth, adj, caret_len;
  } cases[] = {
      {"\"2 * {N} * {in_features} * {out_features}\"", "\"2 * * {N}\"",
       "expected a number, {parameter}, ${module}(...), function or '(', "
       "found '*'",
       ".modules[\"torch.nn.modules.linear.Linear\"].formulas.flops",
       "* {N}\"", 1, 0, 1},
      {"\"{N} * {in_features} * {a_bytes}\"",
       "\"{N} * {in_featurs} * {a_bytes}\"", "unknown parameter 'in_featurs'",
       ".modules[\"torch.nn.modules.linear.Linear\"].formulas.act_read_bytes",
       "{in_featurs}", 1, 0, 12},
      {"\"5 * {rows} * {cols}\"", "\"1); system(\\\"x\\\"); (1\"",
       "unexpected character ';'",
       ".modules[\"torch.nn.modules.activation.Softmax\"].formulas.flops",
       "; system", 1, 0, 1},
      {"\"torch_linear.c\"", "\"../x.c\"",
       "invalid value \"../x.c\": a bare file name",
       ".modules[\"torch.nn.modules.linear.Linear\"].generated_file_name",
       "\"../x.c\"", 1, 0, 8},
      {"\"TorchSoftmax\"", "\"int\"",
       "generated_class_name 'int' is a C keyword",
       ".modules[\"torch.nn.modules.activation.Softmax\"].generated_class_name",
       "\"int\"", 1, 0, 5},
      {"\"TorchSoftmax\"", "\"TorchLinear\"",
       "generated_class_name 'TorchLinear' is already used by "
       "torch.nn.modules.linear.Linear",
       ".modules[\"torch.nn.modules.activation.Softmax\"].generated_class_name",
       "\"TorchLinear\"", 2, 0, 13},
      {"\"torch_softmax.c\"", "\"torch_linear.c\"",
       "generated_file_name 'torch_linear.c' is already used by",
       ".modules[\"torch.nn.modules.activation.Softmax\"].generated_file_name",
       "\"torch_linear.c\"", 2, 0, 16},
      {"\"short_name\": \"Softmax\"", "\"short_name\": \"SoftMax\"",
       "short_name 'SoftMax' must be the class name 'Softmax'",
       ".modules[\"torch.nn.modules.activation.Softmax\"].short_name",
       "\"SoftMax\"", 1, 0, 9},
      {"\"kind\": \"composite\",\n      \"parameters\": [\n        {\n          "
       "\"name\": \"B\"",
       "\"kind\": \"basic\",\n      \"parameters\": [\n        {\n          "
       "\"name\": \"B\"",
       "a basic module has no atomic operations",
       ".modules[\"example.models.toy.ToyAttention\"].atomic_ops",
       "\"atomic_ops\": [", 1, 14, 1},
      {"\"kv_cache_bytes\": \"2 *", "\"flops\": \"1\", \"kv_cache_bytes\": \"2 *",
       "entry has atomic_ops, so its traffic is theirs: move 'flops'",
       ".modules[\"example.models.toy.ToyAttention\"].formulas.flops",
       "\"1\", \"kv_cache", 1, 0, 3},
      {"\"param_bytes\"", "\"params_bytes\"",
       "unknown member 'params_bytes' (expected: flops, weight_bytes",
       ".modules[\"torch.nn.modules.linear.Linear\"].formulas.params_bytes",
       "\"{in_features} * {out_features} * {w_bytes}\"", 2, 0, 44},
      {"\"reasoning\": \"y = x W^T\",", "",
       "missing required member 'reasoning'",
       ".modules[\"torch.nn.modules.linear.Linear\"]",
       "\"torch.nn.modules.linear.Linear\": {", 1, 34, 1},
      {"\"name\": \"in_features\"", "\"name\": \"N\"",
       "parameter 'N' is declared twice",
       ".modules[\"torch.nn.modules.linear.Linear\"].parameters[1].name",
       "\"N\"", 2, 0, 3},
      {"\"name\": \"w_bytes\"", "\"name\": \"int\"",
       "parameter name 'int' is reserved",
       ".modules[\"torch.nn.modules.linear.Linear\"].parameters[3].name",
       "\"int\"", 1, 0, 5},
      {"({B} * {H} * {T}, {L}, {a_bytes})", "({B} * {H} * {T}, {L})",
       "${torch.nn.modules.activation.Softmax} takes 3 arguments (rows, cols, "
       "a_bytes), given 2",
       ".modules[\"example.models.toy.ToyAttention\"].atomic_ops[1].formulas."
       "flops",
       "${torch.nn.modules.activation.Softmax}", 1, 0, 38},
      {"\"name\": \"fused\"", "\"name\": \"softmax\"",
       "atomic operation 'softmax' is listed twice",
       ".modules[\"example.models.toy.ToyAttention\"].atomic_ops[2].name",
       "\"name\": \"softmax\"", 2, 8, 9},
      {"\"7 * {T} // 2\"", "\"7 * {T} // (3 - 3)\"", "division by zero",
       ".modules[\"example.models.toy.ToyAttention\"].atomic_ops[2].formulas."
       "flops",
       "- 3)", 1, 0, 1},
      {"\"format\": \"lm-predictor-module-db\"", "\"format\": \"other\"",
       "expected \"lm-predictor-module-db\", found \"other\"", ".format",
       "\"other\"", 1, 0, 7},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char *text = tu_replace(mini, cases[i].from, cases[i].to);
    int line, col;
    tu_position_of(text, cases[i].at, cases[i].nth, cases[i].adj, &line, &col);
    Error e;
    Db *db = load(text, &e);
    if (db || !e.set || !strstr(e.msg, cases[i].msg) ||
        strcmp(e.where, cases[i].where) != 0 || e.line != line ||
        e.col != col || e.caret_len != cases[i].caret_len) {
      char *s = tu_err_text(&e);
      print_error("case %zu: want line %d col %d len %d, got %d %d %d\n%s", i,
                  line, col, cases[i].caret_len, e.line, e.col, e.caret_len,
                  s);
      free(s);
      fail();
    }
    assert_string_equal(e.file, "db.json");
    free(text);
  }
}

/* A call cycle names the cycle and points at the closing call. */
static void test_db_cycle(void **state) {
  (void)state;
  char *t1 = tu_replace(mini, "\"5 * {rows} * {cols}\"",
                        "\"${example.models.toy.ToyAttention}(1, 2, 3, 4, 5, "
                        "6)\"");
  Error e;
  Db *db = load(t1, &e);
  assert_null(db);
  assert_contains(e.msg, "call cycle: Softmax -> ToyAttention -> Softmax");
  int line, col;
  tu_position_of(t1, "${torch.nn.modules.activation.Softmax}(", 1, 0, &line, &col);
  assert_int_equal(e.line, line);
  assert_int_equal(e.col, col);
  char *s = tu_err_text(&e);
  char want[256];
  snprintf(want, sizeof(want),
           "db.json:%d:%d: .modules[\"example.models.toy.ToyAttention\"]"
           ".atomic_ops[1].formulas.flops: error: call cycle",
           line, col);
  assert_contains(s, want);
  snprintf(want, sizeof(want), "%6d |", line);
  assert_contains(s, want);
  free(s);
  free(t1);

  /* a module calling itself */
  char *t2 = tu_replace(mini, "\"5 * {rows} * {cols}\"",
                        "\"${torch.nn.modules.activation.Softmax}(1, 2, 3)\"");
  assert_null(load(t2, &e));
  assert_contains(e.msg, "call cycle: Softmax -> Softmax");
  free(t2);
}

static void test_db_json_syntax_and_duplicates(void **state) {
  (void)state;
  Error e;
  char *dup = tu_replace(mini, "\"kind\": \"basic\",", "\"kind\": \"basic\", \"kind\": \"basic\",");
  assert_null(load(dup, &e));
  assert_contains(e.msg, "invalid JSON: duplicate object key");
  int line, col;
  tu_position_of(dup, "\"kind\": \"basic\",", 2, 0, &line, &col);
  assert_int_equal(e.line, line);
  assert_int_equal(e.col, col); /* the caret is under the repeated key */
  assert_int_equal(e.caret_len, 6);
  char *s = tu_err_text(&e);
  assert_contains(s, "      \"kind\": \"basic\", \"kind\"");
  free(s);
  free(dup);

  char *bad = tu_replace(mini, "\"kind\": \"basic\",", "\"kind\": \"basic\",,");
  assert_null(load(bad, &e));
  assert_contains(e.msg, "invalid JSON: string or '}' expected near ','");
  tu_position_of(bad, ",,", 1, 1, &line, &col);
  assert_int_equal(e.line, line);
  assert_int_equal(e.col, col);
  free(bad);

  assert_null(load("", &e));
  assert_contains(e.msg, "invalid JSON");

  err_clear(&e);
  assert_null(db_load("/nonexistent/db.json", &e));
  assert_contains(e.msg, "cannot open: No such file or directory");
  assert_string_equal(e.file, "/nonexistent/db.json");
}

/* Symbols of different entries must not collide: ToyAttention's op "out"
 * makes ExampleToyAttention_op_out_flops, which would also be the flops of
 * a class named ExampleToyAttention_op_out. */
static void test_db_symbol_clash(void **state) {
  (void)state;
  char *t = tu_replace(mini, "\"generated_class_name\": \"TorchSoftmax\"",
                       "\"generated_class_name\": \"ExampleToyAttention_op_out\"");
  Error e;
  assert_null(load(t, &e));
  assert_contains(e.msg, "generated C symbol ExampleToyAttention_op_out_flops "
                         "clashes with one of");
  free(t);
}

static void test_db_assign_names(void **state) {
  (void)state;
  Error e;
  Db *db = load(mini, &e);
  ModuleDef *blk = db->mods[3];
  uint64_t before = blk->fingerprint;
  assert_int_equal(db_assign_names(db, &blk, 1, &e), 1);
  assert_string_equal(blk->file_name, "example_toy_block.c");
  assert_string_equal(blk->class_name, "ExampleToyBlock");
  assert_true(blk->fingerprint != before);
  char *out = db_dump(db);
  /* only the two names were added, at the end of the entry */
  char *want = tu_replace(mini, "\"validation\": {\n        \"status\": \"validated\"\n      }\n    }\n  }\n}",
                          "\"validation\": {\n        \"status\": \"validated\"\n      },\n"
                          "      \"generated_file_name\": \"example_toy_block.c\",\n"
                          "      \"generated_class_name\": \"ExampleToyBlock\"\n    }\n  }\n}");
  assert_string_equal(out, want);
  free(out);
  free(want);
  assert_int_equal(db_assign_names(db, &blk, 1, &e), 0);
  db_free(db);

  /* a derived name that is already stored by another entry */
  char *t = tu_replace(mini, "\"torch_softmax.c\"", "\"example_toy_block.c\"");
  db = load(t, &e);
  assert_non_null(db);
  blk = db->mods[3];
  assert_int_equal(db_assign_names(db, &blk, 1, &e), -1);
  assert_contains(e.msg, "generated_file_name 'example_toy_block.c' is already used by");
  db_free(db);
  free(t);
}

/* The committed database is in canonical form, so tools that write it
 * change only what they mean to. */
static void test_db_repo_is_canonical(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  Db *db = db_load("module_db.json", &e);
  if (!db)
    err_print(stderr, &e);
  assert_non_null(db);
  char *dump = db_dump(db);
  assert_string_equal(dump, db->doc.text);
  for (int i = 0; i < db->nmods; i++) {
    assert_non_null(db->mods[i]->file_name);
    assert_non_null(db->mods[i]->class_name);
  }
  free(dump);
  db_free(db);
}

/* A syntax error in text of a given length is reported from that text
 * only, never from bytes past its end (issue 9). */
static void test_db_text_not_terminated(void **state) {
  (void)state;
  const char buf[] = "{\"format\": @XXXX";
  Error e;
  err_clear(&e);
  assert_null(db_load_text("db.json", buf, strlen("{\"format\": @"), &e));
  assert_contains(e.msg, "invalid JSON");
  assert_not_contains(e.context, "X");
}

/* A database whose modules call each other in a chain of n. */
static char *call_chain(int n) {
  Buf b;
  buf_init(&b);
  buf_puts(&b, "{\"format\": \"lm-predictor-module-db\", \"version\": 1, "
               "\"modules\": {");
  for (int i = 0; i < n; i++) {
    char f[64];
    if (i + 1 < n)
      snprintf(f, sizeof(f), "${c.m%d}()", i + 1);
    else
      snprintf(f, sizeof(f), "1");
    buf_printf(&b,
               "%s\n\"c.m%d\": {\"short_name\": \"m%d\", \"kind\": \"basic\", "
               "\"parameters\": [], \"formulas\": {\"flops\": \"%s\"}, "
               "\"reasoning\": \"r\", \"source\": {\"file\": \"x.py\"}, "
               "\"validation\": {\"status\": \"validated\"}}",
               i ? "," : "", i, i, f);
  }
  buf_puts(&b, "}}\n");
  return buf_steal(&b);
}

/* Call chains are walked without recursion and bounded: 32 modules load,
 * 33 are a located error naming the chain, and a chain of 5,000 gives the
 * same error (issue 9: a 100,000-deep chain overflowed the stack). */
static void test_db_call_chain_limit(void **state) {
  (void)state;
  Error e;
  char *t = call_chain(32);
  Db *db = load(t, &e);
  assert_non_null(db);
  db_free(db);
  free(t);
  t = call_chain(33);
  assert_null(load(t, &e));
  assert_contains(e.msg, "calls nest too deeply: more than 32 modules in a "
                         "chain (m0 -> m1 -> m2 -> m3 -> m4 -> ... (22 more) "
                         "-> m27 -> m28 -> m29 -> m30 -> m31 -> m32)");
  assert_string_equal(e.where, ".modules[\"c.m31\"].formulas.flops");
  assert_int_equal(e.line, 33);
  free(t);
  t = call_chain(5000);
  assert_null(load(t, &e));
  assert_contains(e.msg, "calls nest too deeply");
  free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_db_loads_mini),
      cmocka_unit_test(test_db_module_eval),
      cmocka_unit_test(test_db_op_reference),
      cmocka_unit_test(test_db_find),
      cmocka_unit_test(test_db_errors),
      cmocka_unit_test(test_db_cycle),
      cmocka_unit_test(test_db_call_chain_limit),
      cmocka_unit_test(test_db_json_syntax_and_duplicates),
      cmocka_unit_test(test_db_symbol_clash),
      cmocka_unit_test(test_db_assign_names),
      cmocka_unit_test(test_db_repo_is_canonical),
      cmocka_unit_test(test_db_text_not_terminated),
  };
  return cmocka_run_group_tests_name("db", tests, setup, teardown);
}
