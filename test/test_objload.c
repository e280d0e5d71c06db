/* test_objload.c: the loader of libtcc's relocatable objects: what it
 * links runs as libtcc's own in-memory compile does, and a damaged object
 * (every truncation, every single-byte change) is refused or loaded
 * without the loader reading or writing out of bounds (the ASan build
 * runs this too). */
#include "testutil.h"
#include "runtime.h"

#include <elf.h>
#include <libtcc.h>

/* Compile src with libtcc to an object file and return its bytes. */
static char *object_of(const char *src, size_t *len) {
  char *dir = tu_tmpdir();
  char *path = path_join(dir, "x.o");
  TCCState *s = tcc_new();
  assert_non_null(s);
  tcc_set_options(s, "-nostdlib -nostdinc -Werror");
  tcc_set_output_type(s, TCC_OUTPUT_OBJ);
  assert_int_equal(tcc_compile_string(s, src), 0);
  assert_int_equal(tcc_output_file(s, path), 0);
  tcc_delete(s);
  char *bytes = fs_read(path, len, NULL);
  assert_non_null(bytes);
  tu_rm_rf(dir);
  free(dir);
  free(path);
  return bytes;
}

typedef double (*Fn)(const double *);

static Fn fn(ObjImage *o, const char *name) {
  void *p = obj_symbol(o, name);
  assert_non_null(p);
  Fn f;
  memcpy(&f, &p, sizeof(f));
  return f;
}

/* Calls between functions (PLT32), constants in .data (PC32), a static
 * helper, and a table of function pointers and of a constant's address
 * (absolute R_X86_64_64 relocations in .data). */
static const char *SRC =
    "static double half(double x) { return x * 0.5; }\n"
    "double sq(const double *a) { return a[0] * a[0]; }\n"
    "double f(const double *a) { return sq(a) + half(a[1]) + 2.25; }\n"
    "static const double k = 10.0;\n"
    "double (*const tab[2])(const double *) = {sq, f};\n"
    "const double *const kp = &k;\n"
    "double g(const double *a) { return tab[1](a) - tab[0](a) + *kp; }\n"
    "int counter;\n"
    "double bump(const double *a) { (void)a; counter += 3; return counter; }\n";

static void test_objload_links_and_runs(void **state) {
  (void)state;
  size_t len;
  char *obj = object_of(SRC, &len);
  Error e;
  err_clear(&e);
  ObjImage *o = obj_load(obj, len, &e);
  if (!o)
    err_print(stderr, &e);
  assert_non_null(o);
  double a[] = {3, 5};
  /* sq: 3*3 = 9; f: 9 + 5*0.5 + 2.25 = 13.75; g: 13.75 - 9 + 10 = 14.75 */
  assert_double_exact(fn(o, "sq")(a), 9);
  assert_double_exact(fn(o, "f")(a), 13.75);
  assert_double_exact(fn(o, "g")(a), 14.75);
  /* .bss starts at zero and is writable: 3, then 6 */
  assert_double_exact(fn(o, "bump")(a), 3);
  assert_double_exact(fn(o, "bump")(a), 6);
  assert_null(obj_symbol(o, "half")); /* static: not exported */
  assert_null(obj_symbol(o, "k"));
  assert_null(obj_symbol(o, "nope"));
  assert_non_null(obj_symbol(o, "tab"));
  obj_free(o);
  free(obj);
}

static void test_objload_refuses(void **state) {
  (void)state;
  Error e;
  err_clear(&e);
  assert_null(obj_load("", 0, &e));
  assert_contains(e.msg, "shorter than an ELF header");
  /* a call to a function the object does not define */
  size_t len;
  char *obj = object_of("double ext(const double *a);\n"
                        "double h(const double *a) { return ext(a); }\n",
                        &len);
  err_clear(&e);
  assert_null(obj_load(obj, len, &e));
  assert_contains(e.msg, "undefined symbol");
  /* another machine */
  Elf64_Ehdr *eh = (Elf64_Ehdr *)(void *)obj;
  eh->e_machine = EM_AARCH64;
  err_clear(&e);
  assert_null(obj_load(obj, len, &e));
  assert_contains(e.msg, "not an x86-64 relocatable object");
  free(obj);
  /* not ELF at all: a cache file's text */
  char text[128] = "lm-predictor-jit 1\nkey 0\nbody 0 0\n";
  err_clear(&e);
  assert_null(obj_load(text, sizeof(text), &e));
  assert_contains(e.msg, "not a little-endian ELF64 file");
}

/* libtcc writes the section headers last, so every truncation cuts them:
 * each is refused. */
static void test_objload_truncated(void **state) {
  (void)state;
  size_t len;
  char *obj = object_of(SRC, &len);
  for (size_t n = 0; n < len; n++) {
    char *cut = xmalloc(n + 1); /* exactly n bytes readable (ASan) */
    memcpy(cut, obj, n);
    Error e;
    err_clear(&e);
    ObjImage *o = obj_load(cut, n, &e);
    if (o)
      fail_msg("a truncation to %zu of %zu bytes was loaded", n, len);
    free(cut);
  }
  free(obj);
}

/* Each byte changed (all bits flipped) in turn: loaded or refused, never a
 * read or write outside the file or the image (ASan would stop here). */
static void test_objload_every_byte_changed(void **state) {
  (void)state;
  size_t len;
  char *obj = object_of(SRC, &len);
  int loaded = 0, refused = 0;
  for (size_t i = 0; i < len; i++) {
    obj[i] ^= (char)0xff;
    Error e;
    err_clear(&e);
    ObjImage *o = obj_load(obj, len, &e);
    if (o)
      loaded++;
    else
      refused++;
    obj_free(o);
    obj[i] ^= (char)0xff;
  }
  /* a flipped instruction byte still loads; a flipped ELF magic does not */
  assert_true(loaded > 0);
  assert_true(refused > 0);
  free(obj);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_objload_links_and_runs),
      cmocka_unit_test(test_objload_refuses),
      cmocka_unit_test(test_objload_truncated),
      cmocka_unit_test(test_objload_every_byte_changed),
  };
  return cmocka_run_group_tests_name("objload", tests, NULL, NULL);
}
