/* test_source.c: cutting a class out of Python source, and mapping full
 * class names to files under source roots. */
#include "testutil.h"

#include "agents.h"

#define TREE "test/data/agent/tree"

static void extract(const char *py, const char *cls, const char *want, int l0,
                    int l1) {
  ClassSource s;
  Error e;
  err_clear(&e);
  int rc = source_extract(py, strlen(py), cls, &s, &e);
  if (rc != 0)
    print_error("%s: %s\n", cls, e.msg);
  assert_int_equal(rc, 0);
  assert_string_equal(s.text, want);
  assert_int_equal(s.line_start, l0);
  assert_int_equal(s.line_end, l1);
  source_free(&s);
}

static void test_source_extract_cases(void **state) {
  (void)state;
  /* the class ends at the next logical line at its indentation */
  extract("import x\n\nclass A(B):\n    def f(self):\n        return 1\n\n"
          "def g():\n    pass\n",
          "A", "class A(B):\n    def f(self):\n        return 1", 3, 5);
  /* a prefix of another class's name does not match */
  extract("class AB:\n    x = 1\nclass A:\n    y = 2\n", "A",
          "class A:\n    y = 2", 3, 4);
  /* decorators come along; a one-line class; the file's end */
  extract("@dataclass(\n    frozen=True)\n@other\nclass C: pass", "C",
          "@dataclass(\n    frozen=True)\n@other\nclass C: pass", 1, 4);
  /* strings, brackets and continuations at column 0 do not end it */
  extract("class D:\n    s = '''\ntext at column 0\n'''\n    t = (1,\n2)\n"
          "    u = 1 + \\\n2\n    v = \"# not a comment (\"\nE = 1\n",
          "D",
          "class D:\n    s = '''\ntext at column 0\n'''\n    t = (1,\n2)\n"
          "    u = 1 + \\\n2\n    v = \"# not a comment (\"",
          1, 9);
  /* comment lines at column 0 inside the body stay; trailing ones go */
  extract("class F:\n    a = 1\n# inside\n    b = 2\n\n# after\n\nclass G:\n"
          "    pass\n",
          "F", "class F:\n    a = 1\n# inside\n    b = 2", 1, 4);
  /* a nested class; tabs */
  extract("class Outer:\n\tclass Inner:\n\t\tz = 1\n\tw = 2\n", "Inner",
          "\tclass Inner:\n\t\tz = 1", 2, 3);
  /* at several depths, the outermost definition wins */
  extract("def f():\n    class H:\n        pass\nclass H(X):\n    q = 1\n", "H",
          "class H(X):\n    q = 1", 4, 5);
  /* "class H" inside a string is not a definition */
  extract("s = '''\nclass H:\n    fake\n'''\nclass H:\n    real = 1\n", "H",
          "class H:\n    real = 1", 5, 6);
}

static void test_source_extract_errors(void **state) {
  (void)state;
  ClassSource s;
  Error e;
  err_clear(&e);
  const char *py = "class Other:\n    pass\n";
  assert_int_equal(source_extract(py, strlen(py), "Missing", &s, &e), -1);
  assert_string_equal(e.msg, "class Missing is not defined in it");
  assert_null(s.text);
  err_clear(&e);
  assert_int_equal(source_extract("", 0, "A", &s, &e), -1);
  /* a huge class is refused rather than sent */
  Buf b;
  buf_init(&b);
  buf_puts(&b, "class Big:\n");
  for (int i = 0; i < 20000; i++)
    buf_printf(&b, "    x%d = %d\n", i, i);
  err_clear(&e);
  assert_int_equal(source_extract(b.data, b.len, "Big", &s, &e), -1);
  assert_contains(e.msg, "more than the 256 kB lmgen sends");
  buf_free(&b);
}

static void test_source_from_file(void **state) {
  (void)state;
  ClassSource s;
  Error e;
  err_clear(&e);
  const char *f = TREE "/src/transformers/models/toy/modeling_toy.py";
  assert_int_equal(source_from_file(f, "ToyNorm", &s, &e), 0);
  assert_string_equal(s.file, f);
  assert_int_equal(s.line_start, 7);
  assert_int_equal(s.line_end, 18);
  assert_contains(s.text, "The docstring runs back to column 0 on purpose");
  assert_contains(s.text, "return x / torch.sqrt(");
  assert_not_contains(s.text, "unrelated");
  source_free(&s);
  assert_int_equal(source_from_file(f, "ToyGatedMLP", &s, &e), 0);
  assert_int_equal(s.line_start, 26);
  assert_int_equal(s.line_end, 39);
  assert_true(strncmp(s.text, "class ToyGatedMLP(\n    nn.Module,\n):", 36) ==
              0);
  assert_contains(s.text, "            gate * self.up_proj(x)\n        )");
  assert_not_contains(s.text, "belongs to what follows");
  assert_not_contains(s.text, "ToyGatedMLPV2");
  source_free(&s);

  assert_int_equal(source_from_file(f, "Nope", &s, &e), -1);
  assert_string_equal(e.file, f);
  assert_string_equal(e.msg, "class Nope is not defined in it");
  err_clear(&e);
  assert_int_equal(source_from_file("no/such/file.py", "X", &s, &e), -1);
  assert_contains(e.msg, "cannot open");
}

static void test_source_from_roots(void **state) {
  (void)state;
  ClassSource s;
  Error e;
  err_clear(&e);
  /* transformers layout: <root>/src/transformers/... */
  assert_int_equal(source_from_roots(TREE,
                                     "transformers.models.toy.modeling_toy."
                                     "ToyGatedMLP",
                                     &s, &e),
                   0);
  assert_string_equal(s.file, "src/transformers/models/toy/modeling_toy.py");
  source_free(&s);
  /* torch layout: <root>/torch/...; roots are a ':' list */
  assert_int_equal(source_from_roots("/nonexistent:" TREE,
                                     "torch.nn.modules.activation.SiLU", &s,
                                     &e),
                   0);
  assert_string_equal(s.file, "torch/nn/modules/activation.py");
  assert_int_equal(s.line_start, 11);
  assert_contains(s.text, "return F.silu(input, inplace=self.inplace)");
  assert_not_contains(s.text, "class Mish");
  source_free(&s);

  /* nothing there: every path tried is listed */
  err_clear(&e);
  assert_int_equal(source_from_roots(TREE, "torch.nn.SiLU", &s, &e), -1);
  assert_contains(e.msg,
                  "no source file for torch.nn.SiLU under "
                  "LMGEN_SOURCE_ROOT; tried:\n  " TREE "/src/torch/nn.py\n"
                  "  " TREE "/torch/nn.py\n  " TREE
                  "/src/torch/nn/__init__.py\n  " TREE "/torch/nn/__init__.py");
  assert_contains(e.msg, "--source PATH");
  /* the file exists but lacks the class */
  err_clear(&e);
  assert_int_equal(
      source_from_roots(TREE, "torch.nn.modules.activation.GELU", &s, &e), -1);
  assert_string_equal(e.msg, "class GELU is not defined in it");
  assert_string_equal(e.file, TREE "/torch/nn/modules/activation.py");
  err_clear(&e);
  assert_int_equal(source_from_roots(TREE, "NoDots", &s, &e), -1);
  assert_contains(e.msg, "is not a full class name");
}

/* A family's whole modeling file, for lmgen --arch. */
static void test_source_module_file(void **state) {
  (void)state;
  ClassSource s;
  Error e;
  err_clear(&e);
  assert_int_equal(source_module_from_roots(
                       "/nonexistent:" TREE,
                       "transformers.models.minillama.modeling_minillama", &s,
                       &e),
                   0);
  assert_string_equal(s.file,
                      "src/transformers/models/minillama/modeling_minillama.py");
  assert_int_equal(s.line_start, 1);
  assert_int_equal(s.line_end, 67); /* wc -l of the fixture */
  assert_true(strncmp(s.text, "# modeling_minillama.py", 23) == 0);
  assert_contains(s.text, "class MiniLlamaForCausalLM(nn.Module):");
  source_free(&s);
  err_clear(&e);
  assert_int_equal(source_module_from_roots(
                       TREE, "transformers.models.nope.modeling_nope", &s, &e),
                   -1);
  assert_contains(e.msg, "no source file for "
                         "transformers.models.nope.modeling_nope under "
                         "LMGEN_SOURCE_ROOT; tried:\n  " TREE
                         "/src/transformers/models/nope/modeling_nope.py\n  " TREE
                         "/transformers/models/nope/modeling_nope.py");
  /* a file over 256 kB is refused rather than sent */
  char *dir = tu_tmpdir();
  char *big = path_join(dir, "big.py");
  FILE *f = fopen(big, "w");
  for (int i = 0; i < 300 * 1024 / 16; i++)
    fputs("x = 1234567890\n", f);
  fclose(f);
  err_clear(&e);
  assert_int_equal(source_whole_file(big, &s, &e), -1);
  assert_contains(e.msg, "more than the 256 kB lmgen sends");
  tu_rm_rf(dir);
  free(big);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_source_module_file),
      cmocka_unit_test(test_source_extract_cases),
      cmocka_unit_test(test_source_extract_errors),
      cmocka_unit_test(test_source_from_file),
      cmocka_unit_test(test_source_from_roots),
  };
  return cmocka_run_group_tests_name("source", tests, NULL, NULL);
}
