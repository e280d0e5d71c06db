/* test_lmgen_cli.c: end-to-end tests of the lmgen command, each in a fresh
 * temporary directory with a copy of a database. */
#include "testutil.h"
#include "gen.h"

typedef struct Fix {
  char *dir, *db, *out;
} Fix;

static int setup(void **state) {
  Fix *f = xcalloc(1, sizeof(Fix));
  f->dir = tu_tmpdir();
  f->db = path_join(f->dir, "mini_db.json");
  f->out = path_join(f->dir, "gen");
  tu_copy("test/data/mini_db.json", f->db);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f->db);
  free(f->out);
  free(f);
  return 0;
}

static int lmgen(Fix *f, char **out, const char *args) {
  return tu_run(out, "%s --db %s --out %s %s", tu_bin("lmgen"), f->db, f->out,
                args);
}

static char *gen_file(Fix *f, const char *name) {
  char *p = path_join(f->out, name);
  char *s = tu_read(p);
  free(p);
  return s;
}

/* Generated files in dir (the database index beside them is counted by
 * index_matches). */
static int count_files(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    n += de->d_name[0] != '.' && strcmp(de->d_name, "module_db.index") != 0;
  closedir(d);
  return n;
}

/* Every lmgen write leaves out/module_db.index, the index of the database
 * as it is now on disk. */
static void index_matches(const Fix *f) {
  char *p = path_join(f->out, "module_db.index");
  char *have = tu_read(p), *want = dbindex_build(f->db, NULL);
  assert_non_null(have);
  assert_non_null(want);
  assert_string_equal(have, want);
  free(have);
  free(want);
  free(p);
}

static void test_lmgen_all_then_idempotent(void **state) {
  Fix *f = *state;
  char *before = tu_read(f->db), *out = NULL;
  assert_int_equal(lmgen(f, &out, "--all"), 0);
  assert_contains(out, "stored names for 1 entry");
  assert_contains(out, "4 modules, 4 written, 0 unchanged");
  free(out);
  assert_int_equal(count_files(f->out), 4);
  index_matches(f); /* of the database with the names stored */
  /* the new names were written back; nothing else changed */
  char *after = tu_read(f->db);
  char *want = tu_replace(
      before,
      "\"validation\": {\n        \"status\": \"validated\"\n      }\n    }\n  }\n}",
      "\"validation\": {\n        \"status\": \"validated\"\n      },\n"
      "      \"generated_file_name\": \"example_toy_block.c\",\n"
      "      \"generated_class_name\": \"ExampleToyBlock\"\n    }\n  }\n}");
  assert_string_equal(after, want);
  char *blk = gen_file(f, "example_toy_block.c");
  assert_contains(blk, "entry:       example.models.toy.ToyBlock");
  char *golden = tu_read("test/golden/example_toy_attention.c");
  char *att = gen_file(f, "example_toy_attention.c");
  assert_string_equal(att, golden);

  /* a second run changes nothing */
  assert_int_equal(lmgen(f, &out, "--all"), 0);
  assert_contains(out, "4 modules, 0 written, 4 unchanged");
  assert_not_contains(out, "stored names");
  free(out);
  char *again = tu_read(f->db);
  assert_string_equal(again, after);
  char *blk2 = gen_file(f, "example_toy_block.c");
  assert_string_equal(blk2, blk);
  assert_int_equal(lmgen(f, &out, "--check --all"), 0);
  assert_contains(out, "4 generated files match");
  free(out);
  free(before);
  free(after);
  free(want);
  free(blk);
  free(blk2);
  free(golden);
  free(att);
  free(again);
}

static void test_lmgen_by_name_generates_callees(void **state) {
  Fix *f = *state;
  char *out = NULL;
  assert_int_equal(lmgen(f, &out, "Softmax"), 0);
  assert_contains(out, "1 module, 1 written");
  free(out);
  assert_int_equal(count_files(f->out), 1);
  char *s = gen_file(f, "torch_softmax.c");
  assert_non_null(s);
  free(s);
  /* ToyAttention calls Softmax: both are generated */
  assert_int_equal(lmgen(f, &out, "example.models.toy.ToyAttention"), 0);
  assert_contains(out, "2 modules, 1 written, 1 unchanged");
  free(out);
  assert_int_equal(count_files(f->out), 2);
}

static void test_lmgen_real_db_silu_only(void **state) {
  Fix *f = *state;
  free(f->db);
  f->db = path_join(f->dir, "module_db.json");
  tu_copy("module_db.json", f->db);
  char *out = NULL;
  assert_int_equal(lmgen(f, &out, "SiLU"), 0);
  free(out);
  assert_int_equal(count_files(f->out), 1);
  char *got = gen_file(f, "torch_silu.c");
  char *committed = tu_read("generated_modules/torch_silu.c");
  assert_string_equal(got, committed);
  free(got);
  free(committed);
  char *db = tu_read(f->db), *orig = tu_read("module_db.json");
  assert_string_equal(db, orig); /* names were already stored */
  free(db);
  free(orig);
  /* one entry written, the whole database's index with it */
  index_matches(f);
}

static void test_lmgen_name_errors(void **state) {
  Fix *f = *state;
  char *out = NULL;
  assert_int_equal(lmgen(f, &out, "NoSuchModule"), 1);
  assert_contains(out, "error: module 'NoSuchModule' is not in");
  free(out);
  char *text = tu_read(f->db);
  char *two = tu_replace(text, "\"example.models.toy.ToyBlock\": {\n      \"short_name\": \"ToyBlock\"",
                         "\"example.other.Softmax\": {\n      \"short_name\": \"Softmax\"");
  tu_write(f->db, two);
  assert_int_equal(lmgen(f, &out, "Softmax"), 1);
  assert_contains(out, "short name 'Softmax' is ambiguous; use one of:\n"
                       "  torch.nn.modules.activation.Softmax\n"
                       "  example.other.Softmax");
  free(out);
  assert_int_equal(count_files(f->out), 0);
  free(text);
  free(two);
}

static void test_lmgen_usage(void **state) {
  Fix *f = *state;
  char *out = NULL;
  assert_int_equal(lmgen(f, &out, ""), 2);
  assert_contains(out, "nothing to generate");
  free(out);
  assert_int_equal(lmgen(f, &out, "--all Softmax"), 2);
  free(out);
  assert_int_equal(lmgen(f, &out, "--bogus"), 2);
  assert_contains(out, "usage: lmgen");
  free(out);
  assert_int_equal(lmgen(f, &out, "--index --all"), 2);
  assert_contains(out, "lmgen: --index takes only --db and --out");
  free(out);
  assert_int_equal(lmgen(f, &out, "--index Softmax"), 2);
  free(out);
  /* a database that fails its checks gets no index */
  tu_write(f->db, "{\"format\": \"lm-predictor-module-db\"}");
  assert_int_equal(lmgen(f, &out, "--index"), 1);
  assert_contains(out, "required");
  free(out);
  assert_int_equal(count_files(f->out), 0);
  char *ip = path_join(f->out, "module_db.index");
  assert_int_equal(access(ip, F_OK), -1);
  free(ip);
  assert_int_equal(tu_run(&out, "%s --help", tu_bin("lmgen")), 0);
  assert_contains(out, "usage: lmgen");
  free(out);
}

/* Malformed or malicious entries: a clear located error, exit 1, and not
 * a byte written anywhere. */
static void test_lmgen_bad_entries_write_nothing(void **state) {
  Fix *f = *state;
  char *orig = tu_read(f->db);
  struct {
    const char *from, *to, *msg;
  } cases[] = {
      {"\"5 * {rows} * {cols}\"", "\"5 * {rows} *\"",
       "error: expected a number"},
      {"\"5 * {rows} * {cols}\"", "\"5 * {rows} * {colz}\"",
       "error: unknown parameter 'colz'"},
      {"\"5 * {rows} * {cols}\"",
       "\"${example.models.toy.ToyAttention}(1, 2, 3, 4, 5, 6)\"",
       "error: call cycle: Softmax -> ToyAttention -> Softmax"},
      {"\"torch_softmax.c\"", "\"../x.c\"",
       "error: invalid value \"../x.c\": a bare file name"},
      {"\"TorchSoftmax\"", "\"int\"",
       "error: generated_class_name 'int' is a C keyword"},
      {"\"kind\": \"basic\",", "\"kind\": \"basic\", \"kind\": \"basic\",",
       "error: invalid JSON: duplicate object key"},
      {"\"5 * {rows} * {cols}\"", "\"1); system(\\\"touch pwned\\\"); (1\"",
       "error: unexpected character ';'"},
      {"\"generated_class_name\": \"TorchSoftmax\"",
       "\"generated_class_name\": \"TorchLinear\"",
       "is already used by torch.nn.modules.linear.Linear"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char *bad = tu_replace(orig, cases[i].from, cases[i].to);
    tu_write(f->db, bad);
    char *out = NULL;
    int rc = lmgen(f, &out, "--all");
    if (rc != 1 || !strstr(out, cases[i].msg) || !strstr(out, "db.json:"))
      print_error("case %zu: rc %d\n%s\n", i, rc, out);
    assert_int_equal(rc, 1);
    assert_contains(out, cases[i].msg);
    assert_contains(out, "^"); /* a caret under the offending text */
    char *now = tu_read(f->db);
    assert_string_equal(now, bad); /* byte-for-byte unchanged */
    assert_int_equal(count_files(f->out), 0);
    free(now);
    free(out);
    free(bad);
  }
  char *out = NULL;
  assert_int_equal(tu_run(&out, "ls %s", f->dir), 0);
  assert_not_contains(out, "pwned");
  assert_not_contains(out, ".tmp.");
  free(out);
  free(orig);
}

static void test_lmgen_check_detects_drift(void **state) {
  Fix *f = *state;
  char *out = NULL;
  /* an entry without stored names is drift */
  assert_int_equal(lmgen(f, &out, "--check --all"), 1);
  assert_contains(out, "1 entry of");
  assert_contains(out, "lack stored names");
  free(out);
  assert_int_equal(lmgen(f, &out, "--all"), 0);
  free(out);
  assert_int_equal(lmgen(f, &out, "--check --all"), 0);
  free(out);
  /* a hand-edited file */
  char *p = path_join(f->out, "torch_linear.c");
  char *s = tu_read(p);
  char *edited = tu_replace(s, "2.0 * p_N", "3.0 * p_N");
  tu_write(p, edited);
  assert_int_equal(lmgen(f, &out, "--check --all"), 1);
  assert_contains(out, "torch_linear.c is out of date");
  free(out);
  /* a formula changed in the database but not regenerated */
  tu_write(p, s);
  char *db = tu_read(f->db);
  char *db2 = tu_replace(db, "\"5 * {rows} * {cols}\"", "\"6 * {rows} * {cols}\"");
  tu_write(f->db, db2);
  assert_int_equal(lmgen(f, &out, "--check --all"), 1);
  assert_contains(out, "torch_softmax.c is out of date");
  assert_not_contains(out, "torch_linear.c");
  free(out);
  /* a generated file no entry claims; --all removes it, but never a file
   * lmgen did not generate */
  char *stale = path_join(f->out, "old_module.c");
  tu_write(stale, "/* old_module.c: generated by lmgen from mini_db.json. */\n");
  char *mine = path_join(f->out, "handwritten.c");
  tu_write(mine, "int x;\n");
  assert_int_equal(lmgen(f, &out, "--check --all"), 1);
  assert_contains(out, "old_module.c belongs to no entry");
  free(out);
  assert_int_equal(lmgen(f, &out, "--all"), 0);
  assert_contains(out, "removed");
  free(out);
  assert_int_not_equal(access(stale, F_OK), 0);
  assert_int_equal(access(mine, F_OK), 0);
  free(stale);
  free(mine);
  free(p);
  free(s);
  free(edited);
  free(db);
  free(db2);
}

/* Replace every occurrence. New string. */
static char *replace_all(const char *s, const char *from, const char *to) {
  char *cur = xstrdup(s);
  while (strstr(cur, from)) {
    char *next = tu_replace(cur, from, to);
    free(cur);
    cur = next;
  }
  return cur;
}

/* lmgen compiles what it generates, and what --check checks, with libtcc
 * as the runtime does: code that would not build is never written, and
 * --check does not call it in sync. (Parameter names the preprocessor
 * owns broke generated code while --check stayed green: issue 9.) */
static void test_lmgen_compiles_what_it_checks(void **state) {
  Fix *f = *state;
  char *out = NULL;
  assert_int_equal(lmgen(f, &out, "--all"), 0);
  free(out);
  assert_int_equal(lmgen(f, &out, "--check --all"), 0);
  assert_contains(out, "4 generated files match");
  assert_contains(out, "and compile");
  free(out);
  /* names the preprocessor owns (tcc's and gcc's predefined macros,
   * modabi.h's) are inert: generated code names parameters p_<name> */
  char *db = tu_read(f->db);
  char *db2 = replace_all(db, "in_features", "unix");
  char *db3 = replace_all(db2, "out_features", "__LINE__");
  char *db4 = replace_all(db3, "a_bytes", "LM_ABI_VERSION");
  tu_write(f->db, db4);
  assert_int_equal(lmgen(f, &out, "--all"), 0);
  assert_contains(out, "4 modules, 3 written, 1 unchanged");
  free(out);
  assert_int_equal(lmgen(f, &out, "--check --all"), 0);
  assert_contains(out, "and compile");
  free(out);
  char *lin = gen_file(f, "torch_linear.c");
  assert_contains(lin, "double p_unix = args[1];");
  assert_contains(lin, "double p___LINE__ = args[2];");
  free(lin);
  free(db);
  free(db2);
  free(db3);
  free(db4);
}

/* The committed generated_modules/ matches the committed database. */
static void test_lmgen_repo_is_in_sync(void **state) {
  (void)state;
  char *out = NULL;
  int rc = tu_run(&out, "%s --check --all --db module_db.json --out generated_modules",
                  tu_bin("lmgen"));
  if (rc != 0)
    print_error("%s", out);
  assert_int_equal(rc, 0);
  free(out);
}

/* lmgen writes through a symlinked database and keeps its mode (issue 9). */
static void test_lmgen_symlinked_db(void **state) {
  Fix *f = *state;
  char *real = path_join(f->dir, "real_db.json");
  assert_int_equal(rename(f->db, real), 0);
  assert_int_equal(chmod(real, 0640), 0);
  assert_int_equal(symlink("real_db.json", f->db), 0);
  char *out = NULL;
  assert_int_equal(lmgen(f, &out, "--all"), 0);
  assert_contains(out, "stored names for 1 entry");
  free(out);
  struct stat st;
  assert_int_equal(lstat(f->db, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  assert_int_equal(stat(real, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0640);
  char *text = tu_read(real);
  assert_contains(text, "\"generated_class_name\": \"ExampleToyBlock\"");
  free(text);
  assert_int_equal(lmgen(f, &out, "--check --all"), 0);
  free(out);
  free(real);
}

/* Temporary files a killed write left behind are reported by --check and
 * removed by the next run that writes (issue 9: --check said all was
 * well). Files that only look similar are left alone. */
static void test_lmgen_temp_files_after_kill(void **state) {
  Fix *f = *state;
  char *out = NULL;
  assert_int_equal(lmgen(f, &out, "--all"), 0);
  free(out);
  char *t1 = path_join(f->out, "torch_linear.c.tmp.AbC123");
  char *t2 = path_join(f->dir, "mini_db.json.tmp.x9Y8z7");
  char *keep1 = path_join(f->out, "notes.tmp.AbC123");
  char *keep2 = path_join(f->out, "torch_linear.c.tmp.toolong1");
  tu_write(t1, "/* torch_linear.c: generated by lmgen, cut short");
  tu_write(t2, "{\"format\": ");
  tu_write(keep1, "mine");
  tu_write(keep2, "mine");
  assert_int_equal(lmgen(f, &out, "--check --all"), 1);
  assert_contains(out, "torch_linear.c.tmp.AbC123 is a temporary file left "
                       "by an interrupted write");
  assert_contains(out, "mini_db.json.tmp.x9Y8z7 is a temporary file");
  assert_not_contains(out, "notes.tmp");
  assert_not_contains(out, "toolong1");
  free(out);
  assert_int_equal(lmgen(f, &out, "--dry-run --all"), 0);
  assert_contains(out, "would remove");
  free(out);
  assert_int_equal(access(t1, F_OK), 0);
  assert_int_equal(lmgen(f, &out, "Linear"), 0);
  assert_contains(out, "torch_linear.c.tmp.AbC123 (left by an interrupted "
                       "write)");
  free(out);
  assert_int_not_equal(access(t1, F_OK), 0);
  assert_int_not_equal(access(t2, F_OK), 0);
  assert_int_equal(access(keep1, F_OK), 0);
  assert_int_equal(access(keep2, F_OK), 0);
  assert_int_equal(lmgen(f, &out, "--check --all"), 0);
  free(out);
  free(t1);
  free(t2);
  free(keep1);
  free(keep2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_lmgen_all_then_idempotent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmgen_by_name_generates_callees, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmgen_real_db_silu_only, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmgen_name_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmgen_usage, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmgen_bad_entries_write_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmgen_check_detects_drift, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmgen_compiles_what_it_checks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmgen_symlinked_db, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmgen_temp_files_after_kill, setup, teardown),
      cmocka_unit_test(test_lmgen_repo_is_in_sync),
  };
  return cmocka_run_group_tests_name("lmgen_cli", tests, NULL, NULL);
}
