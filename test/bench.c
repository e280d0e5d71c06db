/* bench.c: `make bench`. Prints performance figures; asserts nothing.
 *
 * Each figure is the median of several timed batches, in-process, with
 * CLOCK_MONOTONIC, on whatever machine runs it.
 */
#include "common.h"
#include "gen.h"

#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median over `batches` of the mean time per call of fn over `iters`. */
static double time_it(void (*fn)(void *), void *arg, int batches, int iters) {
  double t[64];
  if (batches > 64)
    batches = 64;
  for (int b = 0; b < batches; b++) {
    double t0 = now_seconds();
    for (int i = 0; i < iters; i++)
      fn(arg);
    t[b] = (now_seconds() - t0) / iters;
  }
  qsort(t, (size_t)batches, sizeof(double), cmp_double);
  return t[batches / 2];
}

static void print_time(const char *what, double s) {
  if (s < 1e-6)
    printf("  %-52s %10.1f ns\n", what, s * 1e9);
  else if (s < 1e-3)
    printf("  %-52s %10.2f us\n", what, s * 1e6);
  else
    printf("  %-52s %10.3f ms\n", what, s * 1e3);
}

typedef struct DbBench {
  char *text;
  size_t len;
  Db *db;
} DbBench;

static void bench_load(void *arg) {
  DbBench *b = arg;
  Db *db = db_load_text("module_db.json", b->text, b->len, NULL);
  if (!db)
    abort();
  db_free(db);
}

static void bench_emit(void *arg) {
  DbBench *b = arg;
  for (int i = 0; i < b->db->nmods; i++)
    free(emit_module(b->db->mods[i], "module_db.json", NULL));
}

static void bench_load_emit(void *arg) {
  DbBench *b = arg;
  Db *db = db_load_text("module_db.json", b->text, b->len, NULL);
  for (int i = 0; i < db->nmods; i++)
    free(emit_module(db->mods[i], "module_db.json", NULL));
  db_free(db);
}

int main(void) {
  DbBench b = {0};
  Error e;
  err_clear(&e);
  b.text = fs_read("module_db.json", &b.len, &e);
  b.db = b.text ? db_load_text("module_db.json", b.text, b.len, &e) : NULL;
  if (!b.db) {
    err_print(stderr, &e);
    return 1;
  }
  int formulas = 0;
  for (int i = 0; i < b.db->nmods; i++) {
    for (int m = 0; m < M_COUNT; m++)
      formulas += b.db->mods[i]->formula[m] != NULL;
    for (int k = 0; k < b.db->mods[i]->nops; k++)
      for (int m = 0; m < M_TRAFFIC; m++)
        formulas += b.db->mods[i]->ops[k].formula[m] != NULL;
  }
  printf("generator (module_db.json: %d modules, %d formulas, %zu bytes)\n",
         b.db->nmods, formulas, b.len);
  print_time("load: JSON + schema + parse + check + cycles",
             time_it(bench_load, &b, 15, 200));
  print_time("emit C for every module", time_it(bench_emit, &b, 15, 200));
  print_time("parse, check and emit the whole database",
             time_it(bench_load_emit, &b, 15, 200));
  db_free(b.db);
  free(b.text);
  return 0;
}
