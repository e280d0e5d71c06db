/* fuzz_formula.c: libFuzzer target for the formula language: tokenize,
 * parse, check (against module_db.json's modules and a fixed parameter
 * list), print, interpret. Any input must give a tree or an Error, never a
 * crash, a leak or undefined behaviour. */
#include "gen.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static Db *db;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  Error e;
  err_clear(&e);
  db = db_load("module_db.json", &e);
  if (!db) {
    err_print(stderr, &e);
    abort();
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const names[] = {"N", "in_features", "out_features",
                                      "B", "T", "a_bytes", "x"};
  char *text = xstrndup((const char *)data, size);
  Arena a;
  arena_init(&a);
  Error e;
  err_clear(&e);
  JsonPath jp;
  jp_init(&jp);
  jp_key(&jp, "formula");
  FormulaSrc src = {.text = text, .path = &jp};
  Node *n = parse_formula(&a, &src, &e);
  if (n) {
    Scope sc = {.names = names,
                .nnames = (int)LM_ARRAY_LEN(names),
                .modules = &db->by_full,
                .what = "parameter"};
    if (check_formula(n, &src, &sc, &e) == 0) {
      Buf s;
      buf_init(&s);
      node_sexpr(n, &s);
      buf_free(&s);
      double args[64];
      for (int i = 0; i < 64; i++)
        args[i] = i + 1;
      (void)node_eval(n, args, M_FLOPS);
      (void)node_is_const(n);
    }
  }
  if (e.set) {
    FILE *f = fopen("/dev/null", "w");
    if (f) {
      err_print(f, &e);
      fclose(f);
    }
  }
  arena_free(&a);
  free(text);
  return 0;
}
