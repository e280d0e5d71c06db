/* test_fsutil.c: atomic writes, reads, locks, paths. */
#include "testutil.h"

#include <sys/file.h>
#include <fcntl.h>

static void test_fsutil_atomic_write(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *p = path_join(dir, "f.txt");
  Error e;
  err_clear(&e);
  assert_int_equal(fs_write_atomic(p, "one\n", 4, &e), 0);
  char *s = tu_read(p);
  assert_string_equal(s, "one\n");
  free(s);
  assert_true(fs_same_content(p, "one\n", 4));
  assert_false(fs_same_content(p, "one", 3));
  assert_int_equal(fs_write_atomic(p, "two", 3, &e), 0);
  s = tu_read(p);
  assert_string_equal(s, "two");
  free(s);
  /* no temporary files are left behind */
  char *out = NULL;
  assert_int_equal(tu_run(&out, "ls -A %s", dir), 0);
  assert_string_equal(out, "f.txt\n");
  free(out);
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 0077, 0644 & ~(mode_t)umask(022) & 0077);

  /* a failed write leaves the old file alone */
  char *bad = path_join(dir, "no/such/dir/f.txt");
  err_clear(&e);
  assert_int_equal(fs_write_atomic(bad, "x", 1, &e), -1);
  assert_contains(e.msg, "cannot create temporary file");
  free(bad);
  tu_rm_rf(dir);
  free(dir);
  free(p);
}

static void test_fsutil_read_errors(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  assert_null(fs_read("/nonexistent/x", NULL, &e));
  assert_string_equal(e.file, "/nonexistent/x");
  assert_contains(e.msg, "No such file");
}

static void test_fsutil_lock_excludes(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *p = path_join(dir, "db.lock");
  int fd = fs_lock(p, NULL);
  assert_true(fd >= 0);
  int other = open(p, O_RDWR);
  assert_true(other >= 0);
  assert_int_equal(flock(other, LOCK_EX | LOCK_NB), -1); /* held */
  fs_unlock(fd);
  assert_int_equal(flock(other, LOCK_EX | LOCK_NB), 0);
  close(other);
  tu_rm_rf(dir);
  free(dir);
  free(p);
}

static void test_fsutil_paths(void **state) {
  (void)state;
  char *p = path_join("a/b", "c.c");
  assert_string_equal(p, "a/b/c.c");
  free(p);
  p = path_join("a/b/", "c.c");
  assert_string_equal(p, "a/b/c.c");
  free(p);
  p = path_join("a", "/abs");
  assert_string_equal(p, "/abs");
  free(p);
  p = path_join(NULL, "x");
  assert_string_equal(p, "x");
  free(p);
  char cwd[4096];
  assert_non_null(getcwd(cwd, sizeof(cwd)));
  char *abs = path_join(cwd, "module_db.json");
  assert_string_equal(path_display(abs), "module_db.json");
  assert_string_equal(path_display("/elsewhere/x"), "/elsewhere/x");
  free(abs);
  /* the test binaries live in build/; the install root is found above */
  const char *home = lm_home();
  char *db = path_join(home, "module_db.json");
  assert_int_equal(access(db, R_OK), 0);
  free(db);
}

/* Only regular files are read, and at most FS_MAX_READ bytes of them
 * (issue 9: `lmrun /dev/zero` grew to tens of GB; a FIFO waited forever). */
static void test_fsutil_read_limits(void **state) {
  (void)state;
  Error e;
  char *dir = tu_tmpdir();
  err_clear(&e);
  assert_null(fs_read(dir, NULL, &e));
  assert_contains(e.msg, "a directory, not a regular file");
  err_clear(&e);
  assert_null(fs_read("/dev/zero", NULL, &e));
  assert_contains(e.msg, "a character device, not a regular file");
  assert_string_equal(e.file, "/dev/zero");
  char *fifo = path_join(dir, "fifo");
  assert_int_equal(mkfifo(fifo, 0600), 0);
  err_clear(&e);
  assert_null(fs_read(fifo, NULL, &e)); /* no writer: must not block */
  assert_contains(e.msg, "a FIFO, not a regular file");
  /* a (sparse) file one byte over the limit, and one at it */
  char *big = path_join(dir, "big.json");
  int fd = open(big, O_WRONLY | O_CREAT, 0644);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, (off_t)FS_MAX_READ + 1), 0);
  close(fd);
  err_clear(&e);
  assert_null(fs_read(big, NULL, &e));
  assert_contains(e.msg, "67108865 bytes is over the limit of 64 MiB");
  assert_int_equal(truncate(big, (off_t)FS_MAX_READ), 0);
  size_t n = 0;
  char *s = fs_read(big, &n, &e);
  assert_non_null(s);
  assert_int_equal(n, FS_MAX_READ);
  free(s);
  /* a symlink to a regular file is read */
  char *link = path_join(dir, "link");
  assert_int_equal(symlink("big.json", link), 0);
  s = fs_read(link, &n, &e);
  assert_non_null(s);
  free(s);
  tu_rm_rf(dir);
  free(dir);
  free(fifo);
  free(big);
  free(link);
}

/* An atomic write goes through a symbolic link to the file it names (the
 * link stays a link) and keeps an existing file's mode (issue 9: lmgen
 * replaced a symlinked module_db.json with a 0644 regular file). */
static void test_fsutil_write_through_link_keeps_mode(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *sub = path_join(dir, "real");
  assert_int_equal(mkdir(sub, 0755), 0);
  char *target = path_join(sub, "db.json");
  tu_write(target, "old");
  assert_int_equal(chmod(target, 0640), 0);
  char *link = path_join(dir, "db.json");
  assert_int_equal(symlink("real/db.json", link), 0);
  Error e;
  err_clear(&e);
  assert_int_equal(fs_write_atomic(link, "new", 3, &e), 0);
  struct stat st;
  assert_int_equal(lstat(link, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  char *s = tu_read(target);
  assert_string_equal(s, "new");
  free(s);
  assert_int_equal(stat(target, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0640);
  /* a plain file keeps its mode too */
  assert_int_equal(chmod(target, 0600), 0);
  assert_int_equal(fs_write_atomic(target, "x", 1, &e), 0);
  assert_int_equal(stat(target, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  /* no temporary file is left in either directory */
  char *out = NULL;
  assert_int_equal(tu_run(&out, "ls -A %s %s", dir, sub), 0);
  assert_not_contains(out, ".tmp.");
  free(out);
  /* a dangling link is an error naming the link; nothing is created */
  char *dangling = path_join(dir, "gone.json");
  assert_int_equal(symlink("real/missing.json", dangling), 0);
  err_clear(&e);
  assert_int_equal(fs_write_atomic(dangling, "x", 1, &e), -1);
  assert_contains(e.msg, "cannot follow the symbolic link");
  assert_string_equal(e.file, dangling);
  tu_rm_rf(dir);
  free(dir);
  free(sub);
  free(target);
  free(link);
  free(dangling);
}

/* A file read to its end in the buffer of its size (no doubling), and one
 * that holds more than its size says (a /proc file reports 0 bytes) read
 * whole all the same, as stdio reads it. */
static void test_fsutil_read_sizes(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *p = path_join(dir, "f");
  const char *texts[] = {"", "x", "0123456789abcdef", "line\nline\n"};
  for (size_t i = 0; i < LM_ARRAY_LEN(texts); i++) {
    tu_write(p, texts[i]);
    size_t len = 99;
    char *got = fs_read(p, &len, NULL);
    assert_non_null(got);
    assert_int_equal(len, strlen(texts[i]));
    assert_string_equal(got, texts[i]);
    free(got);
  }
  struct stat st;
  assert_int_equal(stat("/proc/self/maps", &st), 0);
  assert_int_equal(st.st_size, 0);
  size_t len = 0;
  char *maps = fs_read("/proc/self/maps", &len, NULL);
  assert_non_null(maps);
  assert_true(len > 100);
  assert_int_equal(strlen(maps), len);
  assert_non_null(strstr(maps, "[stack]"));
  free(maps);
  free(p);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fsutil_atomic_write),
      cmocka_unit_test(test_fsutil_read_errors),
      cmocka_unit_test(test_fsutil_read_limits),
      cmocka_unit_test(test_fsutil_read_sizes),
      cmocka_unit_test(test_fsutil_write_through_link_keeps_mode),
      cmocka_unit_test(test_fsutil_lock_excludes),
      cmocka_unit_test(test_fsutil_paths),
  };
  return cmocka_run_group_tests_name("fsutil", tests, NULL, NULL);
}
