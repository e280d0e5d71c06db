/* test_generate.c: gen/generate.c, the batch lmgen and the agent write
 * through: closure of callees, names, dry run, writes, stale files, and
 * gen_run's answers. Runs on test/data/mini_db.json in a temporary
 * directory; stdout is captured to check what a run says. */
#include "testutil.h"

#define ATTN "example.models.toy.ToyAttention"
#define SOFTMAX "torch.nn.modules.activation.Softmax"
#define BLOCK "example.models.toy.ToyBlock"

typedef struct Fix {
  char *dir, *db_path, *out;
  Db *db;
} Fix;

static int setup(void **state) {
  Fix *f = xcalloc(1, sizeof(Fix));
  f->dir = tu_tmpdir();
  f->db_path = path_join(f->dir, "mini_db.json");
  f->out = path_join(f->dir, "gen");
  tu_copy("test/data/mini_db.json", f->db_path);
  f->db = tu_load_db(f->db_path);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  db_free(f->db);
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f->db_path);
  free(f->out);
  free(f);
  return 0;
}

/* stdout and stderr of the calls between capture_start and capture_end. */
static int saved_fd = -1, saved_fd2 = -1;
static char cap_path[4096];
static void capture_start(const char *dir) {
  snprintf(cap_path, sizeof(cap_path), "%s/stdout.txt", dir);
  fflush(stdout);
  fflush(stderr);
  saved_fd = dup(1);
  saved_fd2 = dup(2);
  FILE *c = fopen(cap_path, "w");
  assert_non_null(c);
  dup2(fileno(c), 1);
  dup2(fileno(c), 2);
  fclose(c);
}
static char *capture_end(void) {
  fflush(stdout);
  fflush(stderr);
  dup2(saved_fd, 1);
  dup2(saved_fd2, 2);
  close(saved_fd);
  close(saved_fd2);
  char *s = tu_read(cap_path);
  unlink(cap_path);
  return s;
}

static ModuleDef *mod(Fix *f, const char *name) {
  ModuleDef *md = hashmap_get(&f->db->by_full, name);
  assert_non_null(md);
  return md;
}

/* ToyAttention calls Softmax: the batch is both, the root first. */
static void test_prepare_takes_callees(void **state) {
  Fix *f = *state;
  ModuleDef *root = mod(f, ATTN);
  GenBatch b;
  Error e;
  err_clear(&e);
  assert_int_equal(gen_prepare(f->db, &root, 1, f->out, &b, &e), 0);
  assert_int_equal(b.n, 2);
  assert_int_equal(b.assigned, 0);
  assert_string_equal(b.t[0].md->full_name, ATTN);
  assert_string_equal(b.t[1].md->full_name, SOFTMAX);
  char *p = path_join(f->out, "torch_softmax.c");
  assert_string_equal(b.t[1].path, p);
  free(p);
  char *text = emit_module(b.t[1].md, "mini_db.json", NULL);
  assert_string_equal(b.t[1].text, text);
  free(text);
  gen_batch_free(&b);
  assert_int_equal(b.n, 0);
}

/* Softmax asked for twice, and as a callee: one target. */
static void test_prepare_no_duplicates(void **state) {
  Fix *f = *state;
  ModuleDef *roots[3] = {mod(f, SOFTMAX), mod(f, ATTN), mod(f, SOFTMAX)};
  GenBatch b;
  assert_int_equal(gen_prepare(f->db, roots, 3, f->out, &b, NULL), 0);
  assert_int_equal(b.n, 2);
  assert_string_equal(b.t[0].md->full_name, SOFTMAX);
  assert_string_equal(b.t[1].md->full_name, ATTN);
  gen_batch_free(&b);
}

/* ToyBlock has no stored names: it gets them (naming rule), in memory. */
static void test_prepare_assigns_names(void **state) {
  Fix *f = *state;
  ModuleDef *root = mod(f, BLOCK);
  GenBatch b;
  assert_int_equal(gen_prepare(f->db, &root, 1, f->out, &b, NULL), 0);
  assert_int_equal(b.assigned, 1);
  assert_string_equal(root->file_name, "example_toy_block.c");
  gen_batch_free(&b);
}

/* A dry run writes nothing and counts what it would write. */
static void test_apply_dry_run(void **state) {
  Fix *f = *state;
  ModuleDef *root = mod(f, ATTN);
  GenBatch b;
  assert_int_equal(gen_prepare(f->db, &root, 1, f->out, &b, NULL), 0);
  int count = -1;
  capture_start(f->dir);
  int rc = gen_apply(&b, f->db, "would do X", true, &count, NULL);
  char *out = capture_end();
  assert_int_equal(rc, 0);
  assert_int_equal(count, 2);
  char *want = xcalloc(1, 4 * strlen(f->out) + 200);
  sprintf(want,
          "lmgen: would do X\n"
          "lmgen: would write %s/example_toy_attention.c\n"
          "lmgen: would write %s/torch_softmax.c\n",
          f->out, f->out);
  assert_string_equal(out, want);
  free(want);
  struct stat st;
  assert_int_not_equal(stat(f->out, &st), 0);
  free(out);
  gen_batch_free(&b);
}

/* Writes create out, write each file, and say so; a second run changes
 * nothing. (The temporary directory is outside the working directory, so
 * messages show its paths whole.) */
static void test_apply_writes_then_unchanged(void **state) {
  Fix *f = *state;
  ModuleDef *root = mod(f, ATTN);
  GenBatch b;
  assert_int_equal(gen_prepare(f->db, &root, 1, f->out, &b, NULL), 0);
  int count;
  capture_start(f->dir);
  int rc = gen_apply(&b, NULL, "not printed", false, &count, NULL);
  char *out1 = capture_end();
  capture_start(f->dir);
  int rc2 = gen_apply(&b, NULL, NULL, false, &count, NULL);
  char *out2 = capture_end();
  assert_int_equal(rc, 0);
  char *want = xcalloc(1, 4 * strlen(f->out) + 200);
  sprintf(want,
          "lmgen: wrote %s/example_toy_attention.c\n"
          "lmgen: wrote %s/torch_softmax.c\n"
          "lmgen: 2 modules, 2 written, 0 unchanged\n",
          f->out, f->out);
  assert_string_equal(out1, want);
  free(want);
  assert_int_equal(rc2, 0);
  assert_int_equal(count, 0);
  assert_string_equal(out2, "lmgen: 2 modules, 0 written, 2 unchanged\n");
  for (int i = 0; i < b.n; i++) {
    char *t = tu_read(b.t[i].path);
    assert_string_equal(t, b.t[i].text);
    free(t);
  }
  free(out1);
  free(out2);
  gen_batch_free(&b);
}

/* save: the database is written first, with the names decided. */
static void test_apply_saves_db(void **state) {
  Fix *f = *state;
  ModuleDef *root = mod(f, BLOCK);
  GenBatch b;
  assert_int_equal(gen_prepare(f->db, &root, 1, f->out, &b, NULL), 0);
  int count;
  capture_start(f->dir);
  int rc = gen_apply(&b, f->db, "stored", false, &count, NULL);
  char *out = capture_end();
  assert_int_equal(rc, 0);
  assert_contains(out, "lmgen: stored\n");
  json_t *j = json_load_file(f->db_path, 0, NULL);
  assert_non_null(j);
  json_t *e = json_object_get(json_object_get(j, "modules"), BLOCK);
  assert_string_equal(
      json_string_value(json_object_get(e, "generated_file_name")),
      "example_toy_block.c");
  json_decref(j);
  free(out);
  gen_batch_free(&b);
}

/* Stale: a file with the marker that no target claims; a hand-written
 * file is never touched. Applying removes the stale one. */
static void test_stale_files(void **state) {
  Fix *f = *state;
  mkdir(f->out, 0755);
  char *stale = path_join(f->out, "old_module.c");
  char *hand = path_join(f->out, "hand.c");
  tu_write(stale, "/* " EMIT_MARKER " from x */\n");
  tu_write(hand, "/* written by hand */\n");
  ModuleDef *root = mod(f, SOFTMAX);
  GenBatch b;
  assert_int_equal(gen_prepare(f->db, &root, 1, f->out, &b, NULL), 0);
  gen_find_stale(&b);
  assert_int_equal(b.nstale, 1);
  assert_string_equal(b.stale[0], stale);
  int count;
  capture_start(f->dir);
  assert_int_equal(gen_apply(&b, NULL, NULL, false, &count, NULL), 0);
  char *out = capture_end();
  assert_contains(out, "(no entry claims it)\n");
  struct stat st;
  assert_int_not_equal(stat(stale, &st), 0);
  assert_int_equal(stat(hand, &st), 0);
  free(out);
  free(stale);
  free(hand);
  gen_batch_free(&b);
}

/* An output directory that cannot be created is a located error. */
static void test_apply_mkdir_error(void **state) {
  Fix *f = *state;
  char *file = path_join(f->dir, "file");
  tu_write(file, "x");
  char *out_dir = path_join(file, "gen");
  ModuleDef *root = mod(f, SOFTMAX);
  GenBatch b;
  assert_int_equal(gen_prepare(f->db, &root, 1, out_dir, &b, NULL), 0);
  Error e;
  err_clear(&e);
  int count;
  assert_int_equal(gen_apply(&b, NULL, NULL, false, &count, &e), -1);
  assert_string_equal(e.file, out_dir);
  assert_contains(e.msg, "cannot create directory");
  gen_batch_free(&b);
  free(out_dir);
  free(file);
}

/* gen_run: an unknown full name alone is the agent's case; an unknown
 * short name is an error; --check reports drift until a run writes. */
static void test_run_answers(void **state) {
  Fix *f = *state;
  char *unknown[] = {"a.b.NewThing"}, *shortn[] = {"NewThing"},
       *both[] = {"a.b.NewThing", "Softmax"}, *attn[] = {"ToyAttention"};
  GenArgs a = {
      .db_path = f->db_path, .out_dir = f->out, .names = unknown, .nnames = 1};
  capture_start(f->dir);
  int r1 = gen_run(&a);
  a.check = true;
  int r2 = gen_run(&a);
  a.check = false;
  a.names = shortn;
  int r3 = gen_run(&a);
  a.names = both;
  a.nnames = 2;
  int r4 = gen_run(&a);
  a.names = attn;
  a.nnames = 1;
  a.check = true;
  int r5 = gen_run(&a);
  a.check = false;
  int r6 = gen_run(&a);
  a.check = true;
  int r7 = gen_run(&a);
  char *out = capture_end();
  assert_int_equal(r1, GEN_RUN_ANALYSE);
  assert_int_equal(r2, 1);
  assert_int_equal(r3, 1);
  assert_int_equal(r4, 1);
  assert_int_equal(r5, 1);
  assert_int_equal(r6, 0);
  assert_int_equal(r7, 0);
  assert_contains(out, "error: module 'a.b.NewThing' is not in ");
  assert_contains(out, "mini_db.json; run lmgen NAME to analyse it\n");
  assert_contains(out, "error: module 'NewThing' is not in ");
  assert_contains(out, "mini_db.json; analyse it on its own: lmgen NAME\n");
  assert_contains(out, "example_toy_attention.c is out of date\n");
  assert_contains(out, "2 modules, 2 written, 0 unchanged\n");
  assert_contains(out, "2 generated files match");
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_prepare_takes_callees, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_prepare_no_duplicates, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_prepare_assigns_names, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_apply_dry_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_apply_writes_then_unchanged, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_apply_saves_db, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_apply_mkdir_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_answers, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
