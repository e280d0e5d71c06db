/* fuzz_parallel.c: libFuzzer target for the parallelism rules loader
 * (parallel.json, runtime/parallel.c). A loaded file's latencies must be
 * finite and non-negative: anything else is a finding (abort). */
#include "runtime.h"

#include <math.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Error e;
  err_clear(&e);
  ParDb *db = pardb_load_text("fuzz_parallel.json", (const char *)data, size,
                              &e);
  if (db) {
    for (int i = 0; i < 3; i++)
      if (!isfinite(db->lat[i]) || db->lat[i] < 0)
        abort();
    pardb_free(db);
  } else {
    FILE *f = fopen("/dev/null", "w");
    if (f) {
      err_print(f, &e);
      fclose(f);
    }
  }
  return 0;
}
