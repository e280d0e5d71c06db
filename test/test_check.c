/* test_check.c: name resolution, arity and constant-zero division. */
#include "testutil.h"
#include "gen.h"

static const char *params[] = {"N", "in_features", "out_features"};
static const char *sm_params[] = {"rows", "cols"};

typedef struct Fix {
  Arena arena;
  HashMap mods;
  ModuleDef lin, sm;
} Fix;

static int setup(void **state) {
  Fix *f = xcalloc(1, sizeof(Fix));
  arena_init(&f->arena);
  hashmap_init(&f->mods);
  f->lin = (ModuleDef){.full_name = "torch.nn.modules.linear.Linear",
                       .short_name = "Linear", .params = params, .nparams = 3};
  f->sm = (ModuleDef){.full_name = "torch.nn.modules.activation.Softmax",
                      .short_name = "Softmax", .params = sm_params,
                      .nparams = 2};
  hashmap_add(&f->mods, f->lin.full_name, &f->lin);
  hashmap_add(&f->mods, f->sm.full_name, &f->sm);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  arena_free(&f->arena);
  hashmap_free(&f->mods);
  free(f);
  return 0;
}

/* Parse and check; returns the error (e->set false on success). */
static Node *run(Fix *f, const char *text, bool calls, Error *e) {
  FormulaSrc src = {.text = text};
  err_clear(e);
  Node *n = parse_formula(&f->arena, &src, e);
  if (!n)
    return NULL;
  Scope sc = {.names = params, .nnames = 3,
              .modules = calls ? &f->mods : NULL, .what = "parameter"};
  return check_formula(n, &src, &sc, e) < 0 ? NULL : n;
}

static void test_check_resolves(void **state) {
  Fix *f = *state;
  Error e;
  Node *n = run(f, "2 * {N} * {out_features}", true, &e);
  assert_non_null(n);
  assert_int_equal(n->lhs->rhs->index, 0);
  assert_int_equal(n->rhs->index, 2);
  n = run(f, "${torch.nn.modules.linear.Linear}({N}, 4, 8)", true, &e);
  assert_non_null(n);
  assert_ptr_equal(n->callee, &f->lin);
}

static void test_check_errors(void **state) {
  Fix *f = *state;
  struct {
    const char *in;
    bool calls;
    const char *msg;
    int col, len;
  } cases[] = {
      {"2 * {M}", true,
       "unknown parameter 'M' (parameters: N, in_features, out_features)", 5,
       3},
      {"${torch.nn.Linear}(1, 2, 3)", true,
       "unknown module 'torch.nn.Linear' (did you mean "
       "${torch.nn.modules.linear.Linear}?)",
       1, 18},
      {"${no.such.Mod}(1)", true, "unknown module 'no.such.Mod'", 1, 14},
      {"${torch.nn.modules.linear.Linear}(1, 2)", true,
       "${torch.nn.modules.linear.Linear} takes 3 arguments (N, in_features, "
       "out_features), given 2",
       1, 33},
      {"${torch.nn.modules.activation.Softmax}({N})", true,
       "takes 2 arguments (rows, cols), given 1", 1, 38},
      {"${torch.nn.modules.linear.Linear}(1, 2, 3)", false,
       "module calls are not allowed here", 1, 33},
      {"{N} / 0", true, "division by zero", 7, 1},
      {"{N} // 0.0", true, "division by zero", 8, 3},
      {"{N} / (2 - 2)", true, "division by zero", 10, 1},
      {"{N} / max(0, -1)", true, "division by zero", 7, 3},
      {"pow({N}, 0.5)", true, "pow() takes a whole exponent below 2^53", 10,
       3},
      {"pow({N}, 1e16)", true, "pow() takes a whole exponent below 2^53", 10,
       4},
      {"min({N}, {q})", true, "unknown parameter 'q'", 10, 3},
      {"${torch.nn.modules.activation.Softmax}({N}, {z})", true,
       "unknown parameter 'z'", 45, 3},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    Error e;
    assert_null(run(f, cases[i].in, cases[i].calls, &e));
    assert_true(e.set);
    assert_contains(e.msg, cases[i].msg);
    assert_int_equal(e.caret_col, cases[i].col);
    assert_int_equal(e.caret_len, cases[i].len);
  }
}

static void test_check_division_by_nonconst_is_fine(void **state) {
  Fix *f = *state;
  Error e;
  assert_non_null(run(f, "{N} / ({N} - 1)", true, &e));
  assert_non_null(run(f, "{N} / (2 - 1)", true, &e));
}

static void test_check_is_const(void **state) {
  Fix *f = *state;
  Error e;
  assert_true(node_is_const(run(f, "min(1, 2) * ceil(3 / 2)", true, &e)));
  assert_false(node_is_const(run(f, "min(1, {N})", true, &e)));
  assert_false(
      node_is_const(run(f, "${torch.nn.modules.activation.Softmax}(1, 2)", true, &e)));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_check_resolves, setup, teardown),
      cmocka_unit_test_setup_teardown(test_check_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_check_division_by_nonconst_is_fine,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_check_is_const, setup, teardown),
  };
  return cmocka_run_group_tests_name("check", tests, NULL, NULL);
}
