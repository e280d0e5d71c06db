/* fuzz_db.c: libFuzzer target for the module database loader (JSON syntax,
 * schema, formulas, call cycles, stored names), then emission of every
 * entry that has stored names. */
#include "gen.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Error e;
  err_clear(&e);
  Db *db = db_load_text("fuzz_db.json", (const char *)data, size, &e);
  if (db) {
    for (int i = 0; i < db->nmods; i++) {
      Error e2;
      err_clear(&e2);
      free(emit_module(db->mods[i], "fuzz_db.json", &e2));
    }
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
