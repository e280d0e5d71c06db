/* fuzz_db.c: libFuzzer target for the module database loader (JSON syntax,
 * schema, formulas, call cycles, stored names), then every entry named,
 * emitted and compiled with libtcc (code that does not build is a
 * finding). */
#include "gen.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Error e;
  err_clear(&e);
  Db *db = db_load_text("fuzz_db.json", (const char *)data, size, &e);
  if (db) {
    /* every entry named, emitted and compiled with libtcc as lmgen does:
     * a database that loads must generate code that builds (issue 9: a
     * parameter named like a macro did not) */
    GenBatch b;
    Error e2;
    err_clear(&e2);
    if (gen_prepare(db, db->mods, db->nmods, "/nonexistent-fuzz-out", &b,
                    &e2) < 0 &&
        strstr(e2.msg, "does not compile")) {
      err_print(stderr, &e2);
      abort();
    }
    gen_batch_free(&b);
    free(db_dump(db));
    db_free(db);
  } else {
    FILE *f = fopen("/dev/null", "w");
    if (f) {
      err_print(f, &e);
      fclose(f);
    }
  }
  return 0;
}
