/* fuzz_collective.c: libFuzzer target for the collective time tables
 * (calibration/collectives.json, custom_all_reduce.json; runtime/
 * collective.c). The first input byte splits the rest in two: the first
 * part is loaded (collcal_load_text), the second added to it
 * (collcal_extend), as lmpredict loads the two shipped files. Every time
 * a loaded set gives must be finite and non-negative, or -1 (no table):
 * anything else is a finding (abort). */
#include "runtime.h"

#include <math.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const CollCal *c) {
  static const char *const hw[] = {"h100-sxm", "a100-sxm-80gb"};
  static const char *const kernel[] = {NULL, "vllm_custom"};
  static const double bytes[] = {0, 1, 2048, 1e6, 1e9, 1e12};
  for (size_t h = 0; h < 2; h++)
    for (size_t kn = 0; kn < 2; kn++)
      for (int k = 0; k < COLL_COUNT; k++)
        for (int n = 2; n <= 8; n *= 2)
          for (int nodes = 0; nodes < 2; nodes++)
            for (size_t b = 0; b < sizeof bytes / sizeof bytes[0]; b++) {
              double t = collcal_time(c, hw[h], kernel[kn], (CollKind)k, n,
                                      nodes, bytes[b]);
              if (!(t == -1 || (isfinite(t) && t >= 0)))
                abort();
            }
}

static void drop(Error *e) {
  FILE *f = fopen("/dev/null", "w");
  if (f) {
    err_print(f, e);
    fclose(f);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t cut = (size_t)data[0] * (size - 1) / 255;
  const char *text = (const char *)data + 1;
  Error e;
  err_clear(&e);
  CollCal *c = collcal_load_text("fuzz_collectives.json", text, cut, &e);
  if (!c) {
    drop(&e);
    return 0;
  }
  check(c);
  if (collcal_extend(c, "fuzz_custom.json", text + cut, size - 1 - cut,
                     &e) != 0)
    drop(&e);
  check(c);
  collcal_free(c);
  return 0;
}
