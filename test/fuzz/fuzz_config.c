/* fuzz_config.c: libFuzzer target for the Hugging Face config.json reader
 * (issue 9: "once it exists, the config.json reader"): the input is a
 * config.json filled into the repository's architecture templates
 * (models/arch/), against the repository's module database and generated
 * modules (all compiled once), then the walk: plan_build and one
 * evaluation of each phase. */
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
  Model *m = model_from_config("fuzz_config.json", (const char *)data, size,
                               NULL, "models/arch", reg, &e);
  if (m) {
    Plan *p = plan_build(m, ATTN_FLASH, &e);
    if (p) {
      Values *v = values_new(p);
      double run[V_COUNT] = {[V_B] = 2,       [V_S] = 512,    [V_T] = 512,
                             [V_L] = 512,     [V_W_BYTES] = 2, [V_A_BYTES] = 2,
                             [V_KV_BYTES] = 2, [V_SRAM_BYTES] = 233472,
                             [V_E_BYTES] = 2};
      if (plan_eval(p, run, v, &e) == 0) {
        run[V_T] = 1;
        (void)plan_eval(p, run, v, &e);
      }
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
