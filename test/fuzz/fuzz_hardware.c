/* fuzz_hardware.c: libFuzzer target for the hardware database loader. */
#include "runtime.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Error e;
  err_clear(&e);
  GpuDb *g = gpudb_load_text("fuzz_hardware.json", (const char *)data, size,
                             &e);
  if (g) {
    for (int i = 0; i < g->n; i++)
      (void)gpudb_find(g, g->gpus[i].id);
    gpudb_free(g);
  } else {
    FILE *f = fopen("/dev/null", "w");
    if (f) {
      err_print(f, &e);
      fclose(f);
    }
  }
  return 0;
}
