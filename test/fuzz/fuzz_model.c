/* fuzz_model.c: libFuzzer target for the model-file loader, against the
 * repository's module database and generated modules (compiled once), and
 * then the walk: plan_build and one evaluation. */
#include "runtime.h"

#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static Db *db;
static Registry *reg;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  Error e;
  err_clear(&e);
  db = db_load("module_db.json", &e);
  if (db)
    reg = reg_load(db, "generated_modules", &e);
  if (!reg) {
    err_print(stderr, &e);
    abort();
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Error e;
  err_clear(&e);
  Model *m = model_load_text("fuzz_model.json", (const char *)data, size, reg,
                             &e);
  if (m) {
    Plan *p = plan_build(m, ATTN_EAGER, &e);
    if (p) {
      Values *v = values_new(p);
      double run[V_COUNT] = {[V_B] = 1,       [V_S] = 2048,   [V_T] = 2048,
                             [V_L] = 2048,    [V_W_BYTES] = 2, [V_A_BYTES] = 2,
                             [V_KV_BYTES] = 2, [V_SRAM_BYTES] = 233472,
                             [V_E_BYTES] = 2};
      (void)plan_eval(p, run, v, &e);
      values_free(v);
      plan_free(p);
    }
    model_free(m);
  }
  if (e.set) {
    FILE *f = fopen("/dev/null", "w");
    if (f) {
      err_print(f, &e);
      fclose(f);
    }
  }
  return 0;
}
